//! Runs a scenario with real processes: ONU processes on loopback, the OLT, the faults, then
//! every ONU's flash read back and the expectations checked.
//!
//! The runner is the ONUs' power supply: it starts each ONU process, starts it again when it
//! dies (a power cut at a named point aborts the process; a SIGKILL fault kills it), and stops
//! them all at the end. It reads every ONU's JSON log to see its protocol events, which is how
//! a fault is triggered "at window 3 of ONU 5". Everything it starts is killed and everything it
//! writes is removed however it ends: when it returns (success, failure, an error), on SIGINT,
//! SIGTERM or SIGHUP, and when the runner is killed (its children with it; its directory by
//! the next run): see `lifecycle`.
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
//! - `summary`: the text a person reads; `report`: the JSON a program reads; `picture`: the
//!   faults and events as they happened (notes and marks) and the page of `--html`;
//! - `usage`: what a process costs, from /proc, for the benchmark;
//! - `fleet`: a fleet scenario instead (`[fleet]`): the fleet service, many OLTs and their
//!   controllers, one campaign, the fleet's faults, its own checks and summary;
//! - `lifecycle`, under all of them: the children and the working directory, stopped and
//!   removed however the runner ends.
//!
//! Only this module's face is public: [`run`], [`RunOptions`], [`RunOutcome`], [`KeepRefused`],
//! the report's types and [`format_set`]; and for the `scenario` tool's `main`,
//! [`stop_on_signals`] and [`die_with_parent`].

mod captures;
mod expect;
mod faults;
#[cfg(test)]
pub(crate) mod fixtures;
mod flash;
mod fleet;
mod golden;
mod images;
pub(crate) use images::GOLDEN_SIZE;
mod lifecycle;
mod picture;
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

pub use expect::{Check, Verdict};
pub use fleet::{
    FLEET_TOOL_ENV, FleetOptions, FleetOutcome, FleetReport, Kill, KilledWork, NoFleetTool,
    NotEmpty, Upgraded, WaveTime, fleet_tool, run_fleet,
};
pub use golden::tftpd_hpa_unavailable;
pub use lifecycle::{
    MARKER, PARENT_FLAG, TempWorkDir, die_with_parent, stop_on_signals, unless_stopping,
};
pub use report::{Addresses, RunReport, UsageReport};
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
    /// Draw the run as a self-contained HTML page here (`olt::html`: each ONU's phases on a
    /// timeline with the faults, the window progress, the summary table, the checks).
    pub html: Option<PathBuf>,
    /// Narrate the upgrade of one ONU for a learner.
    pub explain: bool,
    /// Keep the working directory (keys, images, flash, logs) here instead of removing it.
    /// A directory that is not empty (an earlier run's journal and flash, say) is refused
    /// ([`KeepRefused`]) unless `reuse`.
    pub keep: Option<PathBuf>,
    /// Run in `keep` as it is, carrying on the earlier run it holds: its journal and the
    /// ONUs' flash, as it left them (the soak's retry does).
    pub reuse: bool,
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

/// A `--keep` directory this run will not use. The `scenario` tool says so in one line and
/// exits 2 (the user's input error).
#[derive(Debug, thiserror::Error)]
pub enum KeepRefused {
    /// It holds something (an earlier run's journal and flash, which this run would carry on:
    /// the OLT resumes the journal, the ONUs boot from their flash), and [`RunOptions::reuse`]
    /// was not given.
    #[error(
        "--keep {}: it is not empty ({found}); give an empty or new directory, or add --reuse \
         to run in it as it is (an earlier run's journal and flash are carried on)",
        dir.display()
    )]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
        /// What it holds: `an earlier run: journal.json, the flash of 6 ONUs`, or its first
        /// names.
        found: String,
    },
    /// It is there, and not a directory.
    #[error("--keep {}: it is not a directory", dir.display())]
    NotADirectory {
        /// The path.
        dir: PathBuf,
    },
}

/// What `dir` holds (but a runner's [`MARKER`]), in words: an earlier run's OLT journals and
/// report and ONUs' flash, else the first names; None when it does not exist or is empty.
fn holds(dir: &Path) -> Option<String> {
    let mut journals = Vec::new();
    let mut flash = 0;
    let mut report = false;
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "journal.json" || (name.starts_with("journal-") && name.ends_with(".json")) {
            journals.push(name);
        } else if name.starts_with("onu-") && entry.path().is_dir() {
            flash += 1;
        } else if name == processes::REPORT {
            report = true;
        } else if name != MARKER {
            others.push(name);
        }
    }
    journals.sort();
    let mut run = journals;
    match flash {
        0 => {}
        1 => run.push("the flash of 1 ONU".into()),
        n => run.push(format!("the flash of {n} ONUs")),
    }
    if report && run.is_empty() {
        run.push(processes::REPORT.into());
    }
    if !run.is_empty() {
        return Some(format!("an earlier run: {}", run.join(", ")));
    }
    others.sort();
    match others.len() {
        0 => None,
        1..=3 => Some(others.join(", ")),
        n => Some(format!("{}, and {} more", others[..3].join(", "), n - 3)),
    }
}

/// The working directory of a run: removed at the end unless it is to be kept.
enum WorkDir {
    Kept(lifecycle::Keeping),
    Temp(TempWorkDir),
}

impl WorkDir {
    fn new(opts: &RunOptions) -> Result<WorkDir> {
        // A run killed earlier left its directory: removed now (once per process).
        lifecycle::sweep_once();
        Ok(match opts.keep.as_deref() {
            Some(d) => {
                if d.exists() && !d.is_dir() {
                    return Err(KeepRefused::NotADirectory {
                        dir: d.to_path_buf(),
                    }
                    .into());
                }
                match (holds(d), opts.reuse) {
                    (Some(found), false) => {
                        return Err(KeepRefused::NotEmpty {
                            dir: d.to_path_buf(),
                            found,
                        }
                        .into());
                    }
                    (Some(found), true) => opts.say(format!(
                        "--reuse: running in {} as it is ({found})",
                        d.display()
                    )),
                    (None, _) => {}
                }
                std::fs::create_dir_all(d)
                    .with_context(|| format!("--keep {}: creating it", d.display()))?;
                WorkDir::Kept(lifecycle::keeping(d))
            }
            None => WorkDir::Temp(TempWorkDir::new().context("making the working directory")?),
        })
    }

    fn path(&self) -> &Path {
        match self {
            WorkDir::Kept(k) => k.path(),
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
    let started_at = std::time::SystemTime::now();
    // Declared first, so removed last: after every process writing into it is dropped (killed).
    let work = WorkDir::new(opts)?;
    let dir = work.path();
    let tools = Tools::new(program);

    let mut plan = Plan::new(s, opts)?;
    let mut images = Images::write(s, &plan.onus, dir)?;
    let n = plan.n;
    // Declared before the ONUs, so stopped after them.
    let golden = golden::GoldenService::start(s, &images)?;
    images.tftp = golden.addr();
    golden::prepare_flash(s, &plan, &images, dir, images.tftp.is_some(), opts.reuse)?;
    if images.tftp.is_some() {
        opts.say(format!(
            "{}: golden images served by {}",
            s.name,
            golden.describe()
        ));
    }
    opts.say(format!(
        "{}: starting {n} ONU {} on 127.0.0.1:{}..{} (group {}); working directory {}",
        s.name,
        if n == 1 { "process" } else { "processes" },
        plan.ports.base,
        plan.ports.base + n - 1,
        plan.ports.group,
        dir.display()
    ));
    let mut onus = Onus::start(s, &plan, &images, dir, &tools)?;
    // Power cuts and restarts while the ONUs boot (recovery mode), noted before the rollout's.
    let before: Vec<String> = onus
        .wait_booted()
        .await?
        .into_iter()
        .map(|n| format!("before the rollout, {}", n.trim_start()))
        .collect();
    for line in before.iter().chain(&onus.recovery) {
        opts.say(format!("{}: {line}", s.name));
    }
    onus.recovery.clear();

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
        notes: &rollout.happenings.notes,
        sections: images.sections,
        explanation: explanation.as_deref(),
    }
    .render();
    let report = RunReport {
        format: RunReport::FORMAT,
        format_version: RunReport::FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION"),
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        seed: s.seed,
        addresses: report::Addresses {
            first_onu: plan.ports.onu(1).to_string(),
            last_onu: plan.ports.onu(n.max(1)).to_string(),
            olt: plan.ports.olt.to_string(),
            groups: plan.ports.groups.iter().map(ToString::to_string).collect(),
        },
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
        faults: before
            .iter()
            .chain(&rollout.happenings.notes)
            .cloned()
            .collect(),
        olt_error: olt_error.flatten(),
        olt: olt_report.ok(),
        olt_summary: olt.summary(),
        flash,
    };
    if let Some(out) = &opts.report {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(out) = &opts.html {
        picture::write(
            out,
            &report,
            &rollout.happenings.marks,
            olt.rollout_started_at(),
            plan.per_pon,
        )?;
    }
    Ok(RunOutcome {
        passed: failures.is_empty(),
        failures,
        summary,
        report,
    })
}
