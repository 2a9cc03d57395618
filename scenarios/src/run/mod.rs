//! Runs a scenario with real processes: ONU processes on loopback, the OLT, the faults, then
//! every ONU's flash read back and the expectations checked.
//!
//! The runner is the ONUs' power supply: it starts each ONU process, starts it again when it
//! dies (a power cut at a named point aborts the process; a SIGKILL fault kills it), and stops
//! them all at the end. It reads every ONU's JSON log to see its protocol events, which is how
//! a fault is triggered "at window 3 of ONU 5". Everything it starts is killed and everything it
//! writes is removed when it returns, on success, failure or Ctrl-C.
//!
//! The rooms, in the order a run goes through them ([`run`] reads as that list):
//!
//! - `plan`: each ONU's plan, the ports and the group, which ONUs each fault hits;
//! - `images`: the keys, the golden images, the image rolled out, its manifest;
//! - `processes`: the ONU processes (their power supply and logs) and the OLT process;
//! - `rollout`: the rollout watched until the OLT ends, with `faults` carrying out each fault;
//! - `flash`: every ONU's flash read back by the bootloader's own code;
//! - `captures`: the merged pcap, the diagram and the narration;
//! - `expect`: the expectations checked;
//! - `summary`: the text a person reads; `report`: the JSON a program reads;
//! - `usage`: what a process costs, from /proc, for the benchmark.
//!
//! Only this module's face is public: [`run`], [`RunOptions`], [`RunOutcome`], the report's
//! types and [`format_set`].

mod captures;
mod expect;
mod faults;
#[cfg(test)]
pub(crate) mod fixtures;
mod flash;
mod golden;
mod images;
mod plan;
mod processes;
mod report;
mod rollout;
mod summary;
mod usage;

use std::ffi::OsString;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

pub use expect::Check;
pub use golden::tftpd_hpa_unavailable;
pub use report::{RunReport, UsageReport};
pub use summary::format_set;

use crate::spec::Scenario;
use images::Images;
use plan::Plan;
use processes::{OltProcess, Onus, Tools};

/// How to run a scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run with this many ONUs instead of the file's (sets are cut to the ONUs that exist;
    /// count expectations are then not checked).
    pub onus: Option<u16>,
    /// Write the scenario report (the OLT's report, the flash of every ONU, the checks) here.
    pub report: Option<PathBuf>,
    /// Write every OMCI frame the OLT sent and received here.
    pub pcap: Option<PathBuf>,
    /// Write a Mermaid sequence diagram of the upgrade here.
    pub mermaid: Option<PathBuf>,
    /// Narrate the upgrade of one ONU for a learner.
    pub explain: bool,
    /// Keep the working directory (keys, images, flash, logs) here instead of removing it.
    pub keep: Option<PathBuf>,
    /// First port to try (the ONUs, then the OLT, take consecutive ports).
    pub port: Option<u16>,
    /// The multicast download group (default: one derived from the ports).
    pub group: Option<SocketAddrV4>,
    /// Print progress lines.
    pub progress: bool,
    /// The ONU that `explain` narrates and the diagram shows (default: ONU 1, and the first
    /// three in the diagram).
    pub follow: Option<u16>,
    /// Measure the processes (CPU seconds, peak RSS, from /proc) for the benchmark.
    pub measure: bool,
}

impl RunOptions {
    /// A progress line, when they are asked for.
    fn say(&self, m: impl std::fmt::Display) {
        if self.progress {
            eprintln!("scenario: {m}");
        }
    }
}

/// How a scenario went.
#[derive(Debug)]
pub struct RunOutcome {
    /// Every expectation held.
    pub passed: bool,
    /// The expectations that did not hold, each with why.
    pub failures: Vec<String>,
    /// The human summary.
    pub summary: String,
    /// The scenario report (what `--report` writes as JSON).
    pub report: RunReport,
}

/// The working directory of a run: removed at the end unless it is to be kept.
enum WorkDir {
    Kept(PathBuf),
    Temp(tempfile::TempDir),
}

impl WorkDir {
    fn new(keep: Option<&Path>) -> Result<WorkDir> {
        Ok(match keep {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                WorkDir::Kept(d.to_path_buf())
            }
            None => WorkDir::Temp(tempfile::Builder::new().prefix("scenario-").tempdir()?),
        })
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(d) => d,
            WorkDir::Temp(t) => t.path(),
        }
    }
}

/// How a process ended, in words: `exited with code 2`, `was ended by a signal`.
fn ended(status: &std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => "was ended by a signal".into(),
    }
}

/// Runs `s`. `program` runs this lab's tools: `[exe, "onu"]` and `[exe, "olt"]` are built
/// from it by appending the tool's name.
pub async fn run(s: &Scenario, opts: &RunOptions, program: &[OsString]) -> Result<RunOutcome> {
    let started = Instant::now();
    // Declared first, so removed last: after every process writing into it is dropped (killed).
    let work = WorkDir::new(opts.keep.as_deref())?;
    let dir = work.path();
    let tools = Tools::new(program);

    let mut plan = Plan::new(s, opts)?;
    let mut images = Images::write(s, &plan.onus, dir)?;
    let n = plan.n;
    // Declared before the ONUs, so stopped after them.
    let golden = golden::GoldenService::start(s, &images)?;
    images.tftp = golden.addr();
    golden::prepare_flash(s, &plan, &images, dir, images.tftp.is_some())?;
    if images.tftp.is_some() {
        opts.say(format!(
            "{}: golden images served by {}",
            s.name,
            golden.describe()
        ));
    }
    opts.say(format!(
        "{}: starting {n} ONU processes on 127.0.0.1:{}..{} (group {}); working directory {}",
        s.name,
        plan.ports.base,
        plan.ports.base + n - 1,
        plan.ports.group,
        dir.display()
    ));
    let mut onus = Onus::start(s, &plan, &images, dir, &tools)?;
    onus.wait_booted().await?;
    for line in onus.recovery.drain(..) {
        opts.say(format!("{}: {line}", s.name));
    }

    opts.say(format!("{}: the OLT starts the rollout", s.name));
    let mut olt = OltProcess::start_rollout(s, &plan, &images, dir, &tools)?;
    let rollout =
        rollout::watch(s, opts, &plan.ports, &mut plan.faults, &mut onus, &mut olt).await?;
    opts.say(format!(
        "{}: the OLT ended ({}) after {:.1} s; reading every flash",
        s.name, rollout.status, rollout.seconds
    ));

    // Measure the ONUs (still running), stop them, read every flash and what the OLT wrote.
    let onu_usage = if opts.measure {
        onus.usage()
    } else {
        Vec::new()
    };
    onus.stop().await;
    let flash = flash::read_all(dir, &plan.onus, &images)?;
    // Without a report, what the OLT said is the reason (read before the directory goes).
    let olt_error = olt.report().err().map(|_| olt.error_line());
    let olt_report = olt.report().map_err(|why| {
        let ended = ended(&rollout.status);
        match olt_error.as_ref().and_then(Option::as_deref) {
            Some(said) => format!("{why}; the OLT {ended}: {said}"),
            None => format!("{why}; the OLT {ended} and wrote no error"),
        }
    });
    let explanation = captures::write(s, opts, n, olt.pcaps())?;

    let checks = expect::check(
        s,
        &expect::Found {
            n,
            per_pon: plan.per_pon,
            scaled: opts.onus.is_some(),
            olt: olt_report.as_ref().map_err(String::as_str),
            flash: &flash,
            image_sha256: &images.sha256,
            sections: images.sections,
        },
    );
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.clone())
        .collect();
    let summary = summary::Summary {
        s,
        n,
        per_pon: plan.per_pon,
        olt: olt_report.as_ref().ok(),
        flash: &flash,
        checks: &checks,
        rollout_s: rollout.seconds,
        total_s: started.elapsed().as_secs_f64(),
        olt_lives: olt.lives(),
        notes: &rollout.notes,
        sections: images.sections,
        explanation: explanation.as_deref(),
    }
    .render();
    let report = RunReport {
        scenario: s.name.clone(),
        description: s.description.clone(),
        onus: n,
        passed: failures.is_empty(),
        failures: failures.clone(),
        checks,
        duration_s: started.elapsed().as_secs_f64(),
        rollout_s: rollout.seconds,
        olt_processes: olt.lives(),
        usage: UsageReport::new(rollout.olt_usage, &onu_usage),
        sections: images.sections,
        olt_exit: rollout.status.code(),
        faults: rollout.notes,
        olt_error: olt_error.flatten(),
        olt: olt_report.ok(),
        olt_summary: olt.summary(),
        flash,
    };
    if let Some(out) = &opts.report {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(RunOutcome {
        passed: failures.is_empty(),
        failures,
        summary,
        report,
    })
}
