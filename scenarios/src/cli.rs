//! The `scenario` command line: run the lab's scripted rollouts.
//!
//! `scenario onu ...` and `scenario olt ...` are the `onu` and `olt` tools themselves: the
//! runner starts its ONU and OLT processes that way, so that one `cargo run -p scenarios`
//! builds everything a scenario needs. The `scenario` binary is [`main`]; the end-to-end tests
//! build the same tool under another name (`tests/`), so that what they run is never stale.
//!
//! A runner's child starts as `scenario --die-with-parent=PID onu ...`: [`main`] takes that
//! option off, asks the kernel for SIGKILL when the runner ends, then runs the tool
//! (`run::die_with_parent`). The commands that start processes (`run`, `demo`, `soak`,
//! `bench`) take SIGINT, SIGTERM and SIGHUP on a thread of their own (`run::stop_on_signals`):
//! whatever the runner is doing, it stops every child, removes its working directory and
//! exits 130, 143 or 129.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::run::{RunOptions, run};
use crate::soak::soak;
use crate::spec;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "scenario",
    version,
    about = "Scripted rollouts: real olt and onu processes on this machine, faults, expectations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario (a file, or a name from `scenario list`) and check its expectations
    /// (exit 1 if one fails).
    Run(RunArgs),
    /// Check scenario files without running them (exit 2 if one is wrong).
    Check {
        /// The files (or names from `scenario list`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        library: LibraryArg,
    },
    /// The library of scenarios: each one's name (what `scenario run NAME` takes) and
    /// description.
    List {
        #[command(flatten)]
        library: LibraryArg,
    },
    /// The main job without a scenario file: N ONU processes, a new image rolled out to all of
    /// them, every flash read back, a summary.
    Demo(DemoArgs),
    /// Random power cuts and SIGKILLs across every phase, each case finished by a clean retry.
    Soak(SoakArgs),
    /// The benchmark: the loopback multicast limit, then rollouts at several ONU counts in both
    /// modes; writes bench.json, bench.md and bench.svg.
    Bench(BenchArgs),
    /// The rollout projected onto a real GPON: the real OLT engine and ONU cores over a timing
    /// model (docs/benchmarks.md says which), in both modes, for several ONU speeds.
    Project(ProjectArgs),
    /// One receiver of the benchmark's raw blaster (internal).
    #[command(hide = true, name = "bench-receive")]
    BenchReceive {
        #[arg(long)]
        group: std::net::SocketAddrV4,
        /// Read with recvmmsg.
        #[arg(long)]
        batched: bool,
        /// Bind an own loopback port instead of joining the group (and say which).
        #[arg(long)]
        unicast: bool,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Where to write bench.json, bench.md and bench.svg.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// ONU counts of the rollouts (comma-separated), on each PON port.
    #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
    onus: Vec<u16>,
    /// PON ports of the one OLT of every rollout (1..=16): `--pons 8 --onus 128` is 1,024 ONU
    /// processes, eight multicast groups and eight download engines in one `olt` process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    pons: u8,
    /// Receiver counts of the raw blaster.
    #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
    receivers: Vec<u16>,
    /// Baseline image payload bytes (1..=67108672: the image fits the ONU's 64 MiB slot).
    #[arg(long, default_value_t = 1 << 20, value_parser = payload_bytes)]
    size: usize,
    /// Extended image payload bytes (0: no extended rollouts; else as --size).
    #[arg(long, default_value_t = 16 << 20, value_parser = payload_bytes_or_0)]
    extended_size: usize,
    /// ONU counts of the extended rollouts.
    #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
    extended_onus: Vec<u16>,
    /// Sections per window of the baseline rollouts (1..=256; G.988's largest by default: an
    /// ONU answers once per window, 128 answers per window at 128 ONUs).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=256))]
    window: u16,
    /// Sections per window of the extended rollouts (1..=256).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=256))]
    extended_window: u16,
    /// Only this mode (default: both).
    #[arg(long)]
    mode: Option<String>,
    /// ONUs of the GPON projection (0: none; see `scenario project`).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(0..=128))]
    pon_onus: u16,
    /// Image payload bytes of the GPON projection.
    #[arg(long, default_value_t = 8 << 20)]
    pon_size: usize,
    /// Measure nothing: write bench.md and bench.svg again from the bench.json in --out.
    #[arg(long)]
    render: bool,
    /// The delta benchmark instead (delta.json and delta.md in --out): an image of
    /// --delta-size payload bytes with 1 %, 5 % and 20 % of it changed, inserted and moved.
    #[arg(long)]
    delta: bool,
    /// With --delta: the image's payload bytes.
    #[arg(long, default_value_t = (8 << 20) - 192, value_parser = payload_bytes)]
    delta_size: usize,
}

#[derive(Args)]
struct ProjectArgs {
    /// ONUs on the PON (1..=128).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=128))]
    onus: u16,
    /// Image payload bytes.
    #[arg(long, default_value_t = 8 << 20)]
    size: usize,
    /// Extended frames (1965-byte sections, windows of 8) instead of baseline.
    #[arg(long)]
    extended: bool,
    /// One profile instead of the four defaults: the ONU's milliseconds per section.
    #[arg(long)]
    section_ms: Option<f64>,
    /// With --section-ms: the ONU's extra milliseconds per window.
    #[arg(long, default_value_t = 20.0)]
    ack_ms: f64,
    /// With --section-ms: a cap on the OLT's sections per second.
    #[arg(long)]
    olt_sections_per_s: Option<u32>,
    /// Fibre length, km.
    #[arg(long, default_value_t = 20.0)]
    fiber_km: f64,
    /// Seconds an ONU takes to reboot.
    #[arg(long, default_value_t = 60.0)]
    reboot_s: f64,
    /// Write the figures (JSON) here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Where the library of scenarios is.
#[derive(Args)]
struct LibraryArg {
    /// The library's directory (default: $SCENARIO_LIBRARY, else the scenarios/ folder of the
    /// source tree this tool was built from).
    #[arg(long, value_name = "DIR")]
    library: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario: a file (TOML; see docs/scenarios.md), or the name of one of the library's
    /// (`scenario list`).
    file: PathBuf,
    #[command(flatten)]
    library: LibraryArg,
    /// Write the scenario report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write every OMCI frame the OLT sent and received here (pcap; Wireshark reads it).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Write a Mermaid sequence diagram of the upgrade here (Markdown).
    #[arg(long)]
    mermaid: Option<PathBuf>,
    /// Draw the run as a self-contained HTML page here: each ONU's phases on a timeline with
    /// the faults, the window progress, the summary table and the checks (docs/scenarios.md).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Narrate ONU 1's upgrade step by step, for a learner.
    #[arg(long)]
    explain: bool,
    /// The ONU that --explain narrates and --mermaid shows (default: ONU 1; the diagram shows
    /// the first three).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=128))]
    follow: Option<u16>,
    /// Run with this many ONUs instead of the file's (1..=128).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=128))]
    onus: Option<u16>,
    /// Keep the working directory (keys, images, flash, OLT output) here: a new or empty
    /// directory (one that is not empty is refused, unless --reuse).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// With --keep: run in the directory as it is, carrying on the earlier run it holds (the
    /// OLT resumes its journal, the ONUs boot from their flash).
    #[arg(long, requires = "keep")]
    reuse: bool,
    /// First loopback port to try.
    #[arg(long, value_parser = clap::value_parser!(u16).range(20000..=60000))]
    port: Option<u16>,
    /// A fleet scenario: the `fleet` tool to run (default: $SCENARIO_FLEET, else `fleet`
    /// beside this tool, else on the PATH).
    #[arg(long, value_name = "FILE")]
    fleet_bin: Option<PathBuf>,
    /// A fleet scenario: the fleet's database, postgres://USER:PASSWORD@HOST:PORT/DB (default:
    /// SQLite in the working directory).
    #[arg(long, value_name = "URL")]
    fleet_db: Option<String>,
    /// A fleet scenario: keep the fleet service and its dashboard up this many seconds after
    /// the summary (0..=3600).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3600))]
    linger_s: u64,
}

#[derive(Args)]
struct DemoArgs {
    /// How many ONUs (one process each).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=128))]
    onus: u16,
    /// How the windows travel.
    #[arg(long, value_enum, default_value_t = olt::engine::Mode::Multicast)]
    mode: olt::engine::Mode,
    /// Payload bytes of the new image (1..=67108672: the image fits the ONU's 64 MiB slot).
    #[arg(long, default_value_t = 256 * 1024, value_parser = payload_bytes)]
    size: usize,
    /// First ONU port (the ONUs take consecutive ports, the OLT the one after them).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1024..=65000))]
    port: Option<u16>,
    /// The multicast download group.
    #[arg(long, value_parser = pon::transport::parse_group)]
    group: Option<std::net::SocketAddrV4>,
    /// Keep the ONUs' flash, the images and the OLT's report (report.json) in this directory
    /// (default: a temporary one, removed at the end); one that is not empty is refused,
    /// unless --reuse.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// With --keep: run in the directory as it is, carrying on the earlier run it holds.
    #[arg(long, requires = "keep")]
    reuse: bool,
    /// Write every OMCI frame sent and received to this pcap.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Draw the rollout as a self-contained HTML page here (docs/scenarios.md).
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct SoakArgs {
    /// How many cases.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10000))]
    cases: u32,
    /// The seed: the same seed runs the same cases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// ONUs per case.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=128))]
    onus: u16,
    /// Image payload bytes (1..=67108672: the image fits the ONU's 64 MiB slot).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(spec::IMAGE_SIZE.u64_range()))]
    size: u64,
    /// Extended OMCI messages (1965-byte sections) instead of baseline.
    #[arg(long)]
    extended: bool,
    /// Cases that end in recovery: about a third of each case's ONUs start wrecked (both
    /// slots and the metadata garbled) and restore their golden image over TFTP from the
    /// embedded server, half of them losing power mid-restore, before the rollout.
    #[arg(long)]
    recovery: bool,
    /// Cases of delta campaigns: each case's ONUs on V1.0, V1.1 and V1.2, delta packages from
    /// the first two (the rest get the full image), power cuts inside the rebuild too. The
    /// image is then derived from V1.0's, of the golden image's size (so not with --size).
    #[arg(long, conflicts_with = "size")]
    deltas: bool,
    /// Write the soak report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// An image's payload bytes, as a scenario file's `image.size` allows them.
fn payload_bytes(s: &str) -> Result<usize, String> {
    let range = spec::IMAGE_SIZE;
    s.parse::<u64>()
        .ok()
        .filter(|n| range.contains(*n))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("{s:?} is not a payload size: allowed {range}"))
}

/// [`payload_bytes`], or 0 for none.
fn payload_bytes_or_0(s: &str) -> Result<usize, String> {
    match s.trim() {
        "0" => Ok(0),
        _ => payload_bytes(s).map_err(|e| format!("{e}, or 0 for no extended rollouts")),
    }
}

/// Runs the `scenario` command line of this process (`scenario onu ...` and `scenario olt ...`
/// are the `onu` and `olt` tools).
pub fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let exe: OsString = std::env::current_exe()
        .map(Into::into)
        .unwrap_or_else(|_| args[0].clone());
    // A runner's child: it dies with the runner (or does not start when the runner is gone).
    if let Some(parent) = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(|a| a.strip_prefix(crate::run::PARENT_FLAG))
        .and_then(|a| a.strip_prefix('='))
    {
        let Ok(parent) = parent.parse::<u32>() else {
            eprintln!("scenario: {}={parent}: not a PID", crate::run::PARENT_FLAG);
            return ExitCode::from(2);
        };
        if !crate::run::die_with_parent(parent) {
            eprintln!("scenario: the runner (PID {parent}) that started this process is gone");
            return ExitCode::from(1);
        }
        args.remove(1);
    }
    // The tools themselves, as child processes of a scenario.
    match args.get(1).and_then(|a| a.to_str()) {
        Some("onu") => return onu::cli::main_with(vec![exe, "onu".into()], args[1..].to_vec()),
        Some("olt") => return olt::cli::main_with(args[1..].to_vec()),
        _ => {}
    }
    let cli = match omci_codec::cli::parse_from_or_exit::<Cli>(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Before any thread starts: the signals are taken by a thread of their own.
    if matches!(
        cli.command,
        Command::Run(_) | Command::Demo(_) | Command::Soak(_) | Command::Bench(_)
    ) && let Err(e) = crate::run::stop_on_signals()
    {
        eprintln!("scenario: cannot take signals: {e}");
        return ExitCode::from(1);
    }
    let result = match cli.command {
        Command::Check { files, library } => check(&files, library.library.as_deref()),
        Command::List { library } => list(library.library.as_deref()),
        Command::Run(a) => runtime().and_then(|rt| rt.block_on(run_one(a, exe))),
        Command::Demo(a) => runtime().and_then(|rt| rt.block_on(run_demo(a, exe))),
        Command::Soak(a) => runtime().and_then(|rt| rt.block_on(run_soak(a, exe))),
        Command::Bench(a) => runtime().and_then(|rt| rt.block_on(run_bench(a, exe))),
        Command::Project(a) => run_project(&a),
        Command::BenchReceive {
            group,
            batched,
            unicast,
        } => runtime().and_then(|rt| {
            let n = rt.block_on(crate::bench::receive(
                group,
                std::time::Duration::from_millis(500),
                std::time::Duration::from_secs(60),
                batched,
                unicast,
            ))?;
            println!("{n}");
            Ok(ExitCode::SUCCESS)
        }),
    };
    // A signal that cut the command short has the last word (its line, its exit code).
    crate::run::unless_stopping();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scenario: {}", omci_codec::cli::plain(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

fn run_project(a: &ProjectArgs) -> Result<ExitCode> {
    use crate::project::{Profile, default_profiles, projections, table};
    let bad = |what: &str| anyhow::anyhow!("{what} must be a finite number of 0 or more");
    for (v, what) in [
        (a.fiber_km, "--fiber-km"),
        (a.reboot_s, "--reboot-s"),
        (a.ack_ms, "--ack-ms"),
        (a.section_ms.unwrap_or(0.0), "--section-ms"),
    ] {
        if !v.is_finite() || v < 0.0 {
            return Err(bad(what));
        }
    }
    let model = crate::projection::PonModel {
        fiber_km: a.fiber_km,
        onu_reboot: std::time::Duration::from_secs_f64(a.reboot_s),
        ..Default::default()
    };
    let profiles = match a.section_ms {
        Some(ms) => vec![Profile {
            name: format!("{ms} ms/section, {} ms/window", a.ack_ms),
            section: std::time::Duration::from_secs_f64(ms / 1e3),
            ack: std::time::Duration::from_secs_f64(a.ack_ms / 1e3),
            olt_sections_per_s: a.olt_sections_per_s,
        }],
        None => default_profiles(),
    };
    let v = projections(&model, &profiles, a.onus, a.size, a.extended)?;
    println!(
        "{} ONUs, {} bytes, {} frames, GPON 2.488/1.244 Gb/s, {} km:\n\n{}",
        a.onus,
        a.size,
        if a.extended { "extended" } else { "baseline" },
        a.fiber_km,
        table(&v)
    );
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&v)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `scenario list`: a line per scenario of the library; exit 2 when one does not read (each
/// such file named on standard error) or there is no library.
fn list(library: Option<&std::path::Path>) -> Result<ExitCode> {
    let listed = crate::library::dir(library).and_then(|d| crate::library::list(&d));
    let (out, broken) = match listed {
        Ok(l) => l,
        Err(why) => {
            eprintln!("scenario: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    print!("{out}");
    for e in &broken {
        eprintln!("scenario: {e}");
    }
    Ok(if broken.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// `scenario check`: exit 0 when every file reads, 2 when one does not (the user's input error;
/// each is named on standard error with its line, key and allowed values).
fn check(files: &[PathBuf], library: Option<&std::path::Path>) -> Result<ExitCode> {
    let mut bad = 0;
    for f in files {
        if f.file_name().is_some_and(|n| n == "Cargo.toml") {
            // `scenario check scenarios/*.toml` also names the crate's manifest.
            continue;
        }
        let f = match crate::library::resolve(f, library) {
            Ok(f) => f,
            Err(why) => {
                eprintln!("scenario: {why}");
                bad += 1;
                continue;
            }
        };
        match spec::load(&f) {
            Ok(s) => match &s.fleet {
                Some(fleet) => println!(
                    "{}: ok ({}, a fleet of {} OLTs, {} ONUs)",
                    f.display(),
                    s.name,
                    fleet.olts,
                    u32::from(fleet.olts)
                        * u32::from(s.topology.pons)
                        * u32::from(s.topology.onus.0)
                ),
                None => println!(
                    "{}: ok ({}, {} ONUs)",
                    f.display(),
                    s.name,
                    s.topology.onus.0
                ),
            },
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn run_one(a: RunArgs, exe: OsString) -> Result<ExitCode> {
    if let Some(code) = html_refused(a.html.as_deref()) {
        return Ok(code);
    }
    let file = match crate::library::resolve(&a.file, a.library.library.as_deref()) {
        Ok(f) => f,
        Err(why) => {
            eprintln!("scenario: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    let s = match spec::load(&file) {
        Ok(s) => s,
        Err(e) => {
            // A scenario file that does not read is the user's input error: one message, exit 2.
            eprintln!("scenario: {}", omci_codec::cli::plain(&e.to_string()));
            return Ok(ExitCode::from(2));
        }
    };
    if s.fleet.is_some() {
        return run_fleet_scenario(&s, a, exe).await;
    }
    let opts = RunOptions {
        onus: a.onus,
        report: a.report,
        pcap: a.pcap,
        mermaid: a.mermaid,
        html: a.html,
        explain: a.explain,
        keep: a.keep,
        reuse: a.reuse,
        port: a.port,
        group: None,
        progress: true,
        follow: a.follow,
        measure: false,
    };
    let program = [exe];
    // A signal is taken by `run::stop_on_signals`, whatever this is doing.
    let outcome = match run(&s, &opts, &program).await {
        Ok(o) => o,
        Err(e) => return refused(e).with_context(|| format!("scenario {}", s.name)),
    };
    print!("{}", outcome.summary);
    for (what, path) in [
        ("report", &opts.report),
        ("pcap", &opts.pcap),
        ("diagram", &opts.mermaid),
        ("page", &opts.html),
    ] {
        if let Some(p) = path {
            println!("{what}: {}", p.display());
        }
    }
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `scenario run` of a fleet scenario (one with a `[fleet]` section).
async fn run_fleet_scenario(s: &spec::Scenario, a: RunArgs, exe: OsString) -> Result<ExitCode> {
    // The one-OLT outputs have nothing to show of a fleet: refused in one line each.
    for (given, flag) in [
        (a.pcap.is_some(), "--pcap"),
        (a.mermaid.is_some(), "--mermaid"),
        (a.html.is_some(), "--html"),
        (a.explain, "--explain"),
        (a.follow.is_some(), "--follow"),
        (a.onus.is_some(), "--onus"),
    ] {
        if given {
            eprintln!(
                "scenario: {flag} is for a scenario of one OLT; {} is a fleet scenario (its \
                 report: --report FILE; its dashboard: the address the run prints)",
                s.name
            );
            return Ok(ExitCode::from(2));
        }
    }
    if let Some(db) = &a.fleet_db
        && !(db.starts_with("postgres://")
            || db.starts_with("postgresql://")
            || db.starts_with("sqlite:"))
    {
        eprintln!(
            "scenario: --fleet-db {db:?}: give postgres://USER:PASSWORD@HOST:PORT/DB or sqlite:PATH"
        );
        return Ok(ExitCode::from(2));
    }
    let opts = RunOptions {
        report: a.report,
        keep: a.keep,
        reuse: a.reuse,
        port: a.port,
        progress: true,
        ..RunOptions::default()
    };
    let fopts = crate::run::FleetOptions {
        fleet_bin: a.fleet_bin,
        db: a.fleet_db,
        linger: std::time::Duration::from_secs(a.linger_s),
    };
    let program = [exe];
    let outcome = match crate::run::run_fleet(s, &opts, &fopts, &program).await {
        Ok(o) => o,
        Err(e) => {
            if let Some(why) = e.downcast_ref::<crate::run::NoFleetTool>() {
                eprintln!("scenario: {why}");
                return Ok(ExitCode::from(2));
            }
            if let Some(why) = e.downcast_ref::<crate::run::NotEmpty>() {
                eprintln!("scenario: {why}");
                return Ok(ExitCode::from(2));
            }
            return refused(e).with_context(|| format!("scenario {}", s.name));
        }
    };
    print!("{}", outcome.summary);
    if let Some(p) = &opts.report {
        println!("report: {}", p.display());
    }
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--html PATH` where no page can be written: its one line, exit 2 (checked before any
/// process starts).
fn html_refused(path: Option<&std::path::Path>) -> Option<ExitCode> {
    let path = path?;
    let why = olt::html::check_output(path).err()?;
    eprintln!("scenario: --html {}: {why}", path.display());
    Some(ExitCode::from(2))
}

/// A run's error: a `--keep` directory it will not use is the user's input error (one line,
/// exit 2); any other stays an error.
fn refused(e: anyhow::Error) -> Result<ExitCode> {
    match e.downcast_ref::<crate::run::KeepRefused>() {
        Some(why) => {
            eprintln!("scenario: {why}");
            Ok(ExitCode::from(2))
        }
        None => Err(e),
    }
}

async fn run_demo(a: DemoArgs, exe: OsString) -> Result<ExitCode> {
    if let Some(code) = html_refused(a.html.as_deref()) {
        return Ok(code);
    }
    let demo = crate::demo::Demo {
        onus: a.onus,
        multicast: a.mode == olt::engine::Mode::Multicast,
        size: a.size,
    };
    let s = match demo.scenario() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scenario demo: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let opts = RunOptions {
        keep: a.keep.clone(),
        reuse: a.reuse,
        pcap: a.pcap,
        html: a.html.clone(),
        port: a.port,
        group: a.group,
        progress: true,
        ..RunOptions::default()
    };
    let program = [exe];
    let outcome = match run(&s, &opts, &program).await {
        Ok(o) => o,
        Err(e) => return refused(e).context("scenario demo"),
    };
    // The OLT's own summary (its table of every ONU), then the runner's (the flash read back).
    print!("{}", outcome.report.olt_summary);
    print!("{}", outcome.summary);
    if let Some(dir) = &a.keep {
        let path = dir.join("report.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&outcome.report.olt)? + "\n",
        )
        .with_context(|| format!("writing {}", path.display()))?;
        println!("report: {}", path.display());
    }
    if let Some(path) = &a.html {
        println!("page: {}", path.display());
    }
    Ok(if outcome.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run_soak(a: SoakArgs, exe: OsString) -> Result<ExitCode> {
    let program = [exe];
    let plan = crate::soak::SoakPlan {
        cases: a.cases,
        seed: a.seed,
        onus: a.onus,
        size: a.size as usize,
        extended: a.extended,
        recovery: a.recovery,
        deltas: a.deltas,
    };
    let out = soak(&plan, &program, true).await?;
    print!("{}", out.summary);
    if let Some(p) = &a.report {
        std::fs::write(p, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(
        if out.bricked == 0 && out.data_lost == 0 && out.upgraded == out.onus {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

async fn run_bench(a: BenchArgs, exe: OsString) -> Result<ExitCode> {
    if a.delta {
        crate::bench::delta_bench(&[exe], a.delta_size, &[1.0, 5.0, 20.0], &a.out).await?;
        println!("wrote {}/delta.json and delta.md", a.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    if a.render {
        let path = a.out.join("bench.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let result: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        std::fs::write(a.out.join("bench.md"), crate::bench::table(&result))?;
        std::fs::write(a.out.join("bench.svg"), crate::bench::svg(&result))?;
        println!("wrote {}/bench.md and bench.svg", a.out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let modes: Vec<&'static str> = match a.mode.as_deref() {
        Some("multicast") => vec!["multicast"],
        Some("unicast") => vec!["unicast"],
        Some(other) => anyhow::bail!("--mode {other:?}: give multicast or unicast"),
        None => vec!["multicast", "unicast"],
    };
    let plan = crate::bench::BenchPlan {
        onus: a.onus,
        pons: a.pons,
        receivers: a.receivers,
        datagram_sizes: vec![64, 2000],
        blast_s: 3.0,
        baseline_size: a.size,
        extended_size: a.extended_size,
        extended_onus: a.extended_onus,
        window: a.window,
        extended_window: a.extended_window,
        modes,
        pon_onus: a.pon_onus,
        pon_size: a.pon_size,
    };
    let program = [exe];
    let result = crate::bench::bench(&plan, &program, &a.out).await?;
    print!("{}", crate::bench::table(&result));
    println!(
        "wrote {}/bench.json, bench.md and bench.svg",
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
