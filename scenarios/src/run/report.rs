//! The scenario report (`scenario run --report FILE`): the checks, the timings, what the
//! processes cost, the faults as they happened, the OLT's own report and table, and every
//! ONU's flash as read back. One type, [`RunReport`], serialised to JSON; its parts are the
//! OLT's [`Report`] and the ONU's [`FlashStatus`], so that the file says what those say.

use std::collections::BTreeMap;

use olt::report::Report;
use onu::status::FlashStatus;
use serde::Serialize;

use super::expect::Check;
use super::usage::Usage;

/// The whole report of one scenario run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// `"scenario-report"`: what this file is.
    pub format: &'static str,
    /// The version of its layout ([`RunReport::FORMAT_VERSION`]).
    pub format_version: u32,
    /// The `scenario` tool's version that wrote it.
    pub tool_version: &'static str,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The scenario's seed (link faults, random choices): the same seed runs the same faults.
    pub seed: u64,
    /// Where everything listened: the ONUs' ports, the OLT's address, each PON port's group.
    pub addresses: Addresses,
    /// The scenario's name.
    pub scenario: String,
    /// What it rehearses.
    pub description: String,
    /// ONUs in the run.
    pub onus: u16,
    /// Every expectation held.
    pub passed: bool,
    /// The expectations that did not hold, each with why.
    pub failures: Vec<String>,
    /// Every expectation, with whether it held.
    pub checks: Vec<Check>,
    /// Seconds of the whole run (images, boots, rollout, flash read back).
    pub duration_s: f64,
    /// Seconds from the OLT's start to its end.
    pub rollout_s: f64,
    /// OLT processes started (more than one after a restart fault).
    pub olt_processes: u32,
    /// What the processes cost (with `measure`; else every figure is null).
    pub usage: UsageReport,
    /// Download sections of the image.
    pub sections: u64,
    /// The last OLT process's exit code (null when a signal ended it).
    pub olt_exit: Option<i32>,
    /// The faults and deaths, as they happened.
    pub faults: Vec<String>,
    /// What the OLT said when it wrote no report: the last `olt:` line of its standard error
    /// (null when it wrote a report, or nothing).
    pub olt_error: Option<String>,
    /// The OLT's report (null when it wrote none).
    pub olt: Option<Report>,
    /// What the OLT printed: its table of every ONU.
    pub olt_summary: String,
    /// Every ONU's flash at the end, by ONU-ID.
    pub flash: BTreeMap<u16, FlashStatus>,
}

impl RunReport {
    /// What [`RunReport::format`] says.
    pub const FORMAT: &'static str = "scenario-report";
    /// Version 1: the first with a format name, the tool version, the start time, the seed,
    /// the addresses, and each check as name, expected, observed and verdict.
    pub const FORMAT_VERSION: u32 = 1;
}

/// Where a run's processes listened, all on loopback.
#[derive(Clone, Debug, Serialize)]
pub struct Addresses {
    /// ONU 1's address; ONU `id` listens on the port `id - 1` above it.
    pub first_onu: String,
    /// The last ONU's address.
    pub last_onu: String,
    /// The OLT's address (every ONU answers there).
    pub olt: String,
    /// Each PON port's multicast download group, port 1's first.
    pub groups: Vec<String>,
}

/// What the processes of a run cost, from /proc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct UsageReport {
    /// The OLT's CPU seconds (user and system).
    pub olt_cpu_s: Option<f64>,
    /// Of which in the OLT itself.
    pub olt_user_cpu_s: Option<f64>,
    /// The OLT's peak resident memory, KiB.
    pub olt_peak_rss_kib: Option<u64>,
    /// CPU seconds of all ONU processes together.
    pub onu_cpu_s_total: Option<f64>,
    /// The largest peak resident memory of an ONU process, KiB.
    pub onu_peak_rss_kib_max: Option<u64>,
}

impl UsageReport {
    /// The figures of the OLT's largest sample and of every ONU process.
    pub(super) fn new(olt: Option<Usage>, onus: &[Usage]) -> UsageReport {
        UsageReport {
            olt_cpu_s: olt.map(|u| u.cpu_s),
            olt_user_cpu_s: olt.map(|u| u.user_s),
            olt_peak_rss_kib: olt.map(|u| u.peak_rss_kib),
            onu_cpu_s_total: (!onus.is_empty()).then(|| onus.iter().map(|u| u.cpu_s).sum()),
            onu_peak_rss_kib_max: onus.iter().map(|u| u.peak_rss_kib).max(),
        }
    }
}
