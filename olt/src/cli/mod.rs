//! The `olt` command line: upgrade the ONUs of a PON on this machine, by unicast or by multicast.
//!
//! The `olt` binary is [`main_with`] with its own name; `scenario` runs the same code as
//! `scenario olt ...` so that one `cargo run` builds every process a scenario starts.

//!
//! ## Map
//! - [`args`](self): the arguments of each subcommand, range-checked where they are parsed.
//! - `rollout`: `olt rollout` and `olt abort` (inputs read and checked, the campaign run by
//!   the driver, the report written).
//! - `summary`: the table `olt rollout` prints.
//! - `status`: `olt status`, what every ONU runs, read over OMCI.
//! - `conform`: `olt conform onu`.
//! - `worker`: `olt worker`, the OLT as a fleet's controller ([`crate::worker`]).

mod args;
mod conform;
mod rollout;
mod status;
mod summary;
mod worker;

use std::process::ExitCode;

use crate::session::Stages;
use args::{AbortArgs, ActivateArgs, ConformCommand, DownloadArgs, RolloutArgs, StatusArgs};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "olt",
    version,
    about = "The OLT of the lab: upgrade a PON of ONUs over OMCI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download, activate and commit an image on every ONU given; with --manifest (or
    /// --canary), a campaign: model check, canary wave, health gate, kill switch.
    Rollout(RolloutArgs),
    /// A staged upgrade, first stage: download the image into every ONU's standby image and
    /// stop there (valid, not active), unless --activate-on-success or --commit-on-success.
    Download(DownloadArgs),
    /// Second stage: activate the image the ONUs hold valid in their standby image (they
    /// reboot into it), optionally in a maintenance window (--start-at, --until).
    Activate(ActivateArgs),
    /// Third stage: commit the image the ONUs run, activated but not committed.
    Commit(RolloutArgs),
    /// What every ONU runs, read over OMCI: serial number and both software images.
    Status(StatusArgs),
    /// Conformance suites: check an ONU against the G.988 software-download rules.
    #[command(subcommand)]
    Conform(ConformCommand),
    /// Stop an upgrade left half done: abort any download into the standby image, and send an
    /// ONU running an uncommitted image back to its committed one.
    Abort(AbortArgs),
    /// Be one controller of a fleet: register this OLT's PON ports and ONUs with the fleet
    /// service, claim their work under leases, run it, report every ONU's result.
    Worker(worker::WorkerArgs),
}

/// Runs the `olt` command line `args` (the program name first).
pub fn main_with(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match omci_codec::cli::parse_from_or_exit::<Cli>(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Rollout(args) => rollout::rollout(args, Stages::ALL, None),
        Command::Download(a) => {
            let stages = Stages {
                download: true,
                activate: a.activate_on_success || a.commit_on_success,
                commit: a.commit_on_success,
            };
            rollout::rollout(a.rollout, stages, None)
        }
        Command::Activate(a) => {
            let stages = Stages {
                download: false,
                activate: true,
                commit: a.commit_on_success,
            };
            rollout::rollout(a.rollout, stages, a.until)
        }
        Command::Commit(a) => {
            let stages = Stages {
                download: false,
                activate: false,
                commit: true,
            };
            rollout::rollout(a, stages, None)
        }
        Command::Abort(args) => rollout::abort(args),
        Command::Status(args) => status::status(args),
        Command::Conform(ConformCommand::Onu(args)) => conform::conform_onu(args),
        Command::Worker(args) => worker::worker(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("olt: {}", omci_codec::cli::plain(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// A usage error found after parsing: one line, exit code 2, as clap's own.
pub(crate) fn usage(message: &str) -> ExitCode {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let e = cmd.error(clap::error::ErrorKind::ArgumentConflict, message);
    omci_codec::cli::usage_error("olt", &cmd, e)
}

/// Resolves when the user presses Ctrl-C or the process gets SIGTERM.
pub(crate) fn ctrl_c() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match &mut term {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    })
}
