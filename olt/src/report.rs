//! The OLT's report: what a rollout did to each ONU and what it cost, as `olt rollout --report`
//! writes it (JSON). One type, [`Report`], serialised by the OLT and read back by the scenario
//! runner and the benchmark, so that a renamed field breaks the build, not a fault trigger.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::campaign::{Campaign, OnuRecord, Stage};
use crate::engine::{Drops, Mode, PonPort};
use crate::image::UpgradeImage;
use crate::session::Outcome;

/// The whole report of one `olt rollout` (or campaign).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What this document is: [`Report::FORMAT`].
    #[serde(default)]
    pub format: String,
    /// The version of its format: [`Report::FORMAT_VERSION`].
    #[serde(default)]
    pub format_version: u32,
    /// The `olt` that wrote it.
    #[serde(default)]
    pub tool_version: String,
    /// When the rollout began (RFC 3339, UTC, to the millisecond): every `start_s` and `t_s`
    /// of the report counts from here.
    #[serde(default)]
    pub started_at: String,
    /// The OLT's address (every ONU answered there).
    #[serde(default)]
    pub listen: String,
    /// Where this run's transaction identifiers started (docs/decisions.md, Attribution):
    /// with it, a run's TCIs can be told again.
    #[serde(default)]
    pub tci_seed: u64,
    /// How the windows travelled.
    pub mode: Mode,
    /// The image rolled out.
    pub image: ImageReport,
    /// Wall time of the rollout, seconds.
    pub duration_s: f64,
    /// How the campaign ended and its waves.
    pub campaign: CampaignReport,
    /// Every ONU, by PON port and ONU-ID.
    pub onus: Vec<OnuReport>,
    /// Counts and counters over the whole rollout (every PON port).
    pub totals: Totals,
    /// Each PON port's campaign and counts.
    pub pons: Vec<PonReport>,
}

/// One PON port of a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PonReport {
    /// The port.
    pub pon: PonPort,
    /// Its multicast download group.
    #[serde(default)]
    pub group: String,
    /// How its campaign ended and its waves.
    pub campaign: CampaignReport,
    /// Its counts and counters.
    pub totals: Totals,
    /// The image's delivery over time (a few hundred samples at most; empty in a report
    /// of format version 2).
    #[serde(default)]
    pub windows: Vec<WindowSample>,
    /// Which package each ONU was sent, and the bytes of the packages against the full
    /// image's cost (docs/multicast.md, "Per-base grouping").
    #[serde(default)]
    pub packages: PackagesReport,
}

/// The packages of one PON port's campaign: a full image, and delta packages per base.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagesReport {
    /// The delta packages the campaign carried, by base version.
    pub deltas: Vec<String>,
    /// Bytes of the packages sent: once per multicast download, once per ONU in unicast
    /// (repairs and the OMCI framing not counted: the frames' bytes are in `totals`).
    pub sent_bytes: u64,
    /// What the campaign would have sent without its delta packages: the full image once per
    /// wave in multicast, once per ONU in unicast.
    pub full_image_cost_bytes: u64,
    /// Per ONU that was sent something: which package.
    pub onus: Vec<OnuPackage>,
}

/// The package one ONU was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnuPackage {
    /// The ONU.
    pub id: u16,
    /// `"full"`, or `"delta from V1"`.
    pub package: String,
    /// It refused its delta package and was sent the full image after it.
    pub fell_back: bool,
}

/// The packages part of port `c`'s report.
fn packages_report(c: &Campaign) -> PackagesReport {
    let bytes = c.package_bytes();
    PackagesReport {
        deltas: c
            .deltas()
            .iter()
            .filter_map(|d| d.delta.as_ref().map(|h| h.base_version.clone()))
            .collect(),
        sent_bytes: bytes.sent,
        full_image_cost_bytes: bytes.full_image_cost,
        onus: c
            .records()
            .iter()
            .filter_map(|(id, r)| {
                Some(OnuPackage {
                    id: id.0,
                    package: r.package.as_ref()?.words(),
                    fell_back: r.fell_back,
                })
            })
            .collect(),
    }
}

/// The image's delivery at one moment of a PON port's campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowSample {
    /// Seconds since the rollout began.
    pub t_s: f64,
    /// Windows the ONUs hold (over every ONU: a group window reaching 4 ONUs counts 4).
    pub held: u64,
    /// Windows to deliver, counted the same way.
    pub of: u64,
    /// Windows sent to the multicast group so far (0 in unicast mode).
    pub group_sent: u32,
    /// The group's windows in all (0 in unicast mode).
    pub group_windows: u32,
    /// Windows sent again so far (re-multicast rounds and unicast repairs).
    pub repairs: u64,
}

impl WindowSample {
    /// The same counts as `o` (whatever the time).
    pub(crate) fn same_counts(&self, o: &WindowSample) -> bool {
        (
            self.held,
            self.of,
            self.group_sent,
            self.group_windows,
            self.repairs,
        ) == (o.held, o.of, o.group_sent, o.group_windows, o.repairs)
    }
}

/// One phase of an ONU's upgrade, on the report's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// The phase: "discover", "start", "download", "end", "busy" (End answered "device busy":
    /// the ONU still writes its flash), "verify", "activate", "reboot",
    /// "health", "held", "commit", "verify-commit", "abort", "rollback", "inspect".
    pub phase: String,
    /// When it began, seconds since the rollout began.
    pub start_s: f64,
    /// How long it lasted, seconds.
    pub duration_s: f64,
}

/// The image of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// Its version (what the Software image ME reports once upgraded).
    pub version: String,
    /// Bytes.
    pub size: usize,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// How a campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignOutcome {
    /// Every wave ran.
    Completed,
    /// The kill switch or an abort stopped it.
    Halted,
    /// The OLT stopped before the campaign ended (a second interrupt).
    Stopped,
}

impl CampaignOutcome {
    /// The word of the report and the summary.
    pub fn word(self) -> &'static str {
        match self {
            CampaignOutcome::Completed => "completed",
            CampaignOutcome::Halted => "halted",
            CampaignOutcome::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for CampaignOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// The campaign part of a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignReport {
    /// How it ended.
    pub outcome: CampaignOutcome,
    /// Why it halted.
    pub halt_reason: Option<String>,
    /// The waves' ONU-IDs (the canary wave first).
    pub waves: Vec<Vec<u16>>,
}

/// What became of one ONU, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnuResult {
    /// The new image is committed and active.
    Upgraded,
    /// It already ran the version.
    Skipped,
    /// The upgrade stopped; the ONU runs a committed image.
    Failed,
    /// Another model than the image's: nothing was downloaded.
    Refused,
    /// Stopped by the kill switch or an abort, back on its committed image.
    Halted,
    /// The campaign halted before its wave began.
    Untouched,
    /// The OLT stopped before this ONU's upgrade ended.
    Unfinished,
    /// Its wave has not run yet (a survey that found it eligible, or a journal's pending ONU).
    Pending,
    /// A staged download ended: the image waits valid in the standby image.
    Downloaded,
    /// A staged activation ended: the ONU runs the new image, not committed.
    Activated,
    /// `olt status` read it.
    Read,
}

impl OnuResult {
    /// The word of the report, the summary and the journal.
    pub fn word(self) -> &'static str {
        match self {
            OnuResult::Upgraded => "upgraded",
            OnuResult::Skipped => "skipped",
            OnuResult::Failed => "failed",
            OnuResult::Refused => "refused",
            OnuResult::Halted => "halted",
            OnuResult::Untouched => "untouched",
            OnuResult::Unfinished => "unfinished",
            OnuResult::Pending => "pending",
            OnuResult::Downloaded => "downloaded",
            OnuResult::Activated => "activated",
            OnuResult::Read => "read",
        }
    }

    /// The result an outcome reports (`None`: still running, or never started).
    pub fn of(outcome: Option<&Outcome>) -> OnuResult {
        match outcome {
            Some(Outcome::Upgraded) => OnuResult::Upgraded,
            Some(Outcome::Skipped(_)) => OnuResult::Skipped,
            Some(Outcome::Failed(_)) => OnuResult::Failed,
            Some(Outcome::Refused(_)) => OnuResult::Refused,
            Some(Outcome::Halted(_)) => OnuResult::Halted,
            Some(Outcome::Downloaded(_)) => OnuResult::Downloaded,
            Some(Outcome::Activated(_)) => OnuResult::Activated,
            Some(Outcome::Read) => OnuResult::Read,
            Some(Outcome::Eligible) | None => OnuResult::Pending,
        }
    }

    /// The result and reason of `r` at the end of a campaign in `stage`: an ONU without an
    /// outcome is untouched (its wave never started) or unfinished (the OLT stopped).
    pub fn at_end(r: &OnuRecord, stage: &Stage) -> (OnuResult, String) {
        match &r.outcome {
            None if matches!(stage, Stage::Halted(_)) => (
                OnuResult::Untouched,
                "the campaign halted before its wave".into(),
            ),
            None => (OnuResult::Unfinished, "stopped before it ended".into()),
            o => (OnuResult::of(o.as_ref()), reason(o.as_ref())),
        }
    }
}

impl std::fmt::Display for OnuResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// A result equals its word (`result == "upgraded"`), as the report writes it.
impl PartialEq<&str> for OnuResult {
    fn eq(&self, other: &&str) -> bool {
        self.word() == *other
    }
}

/// The reason an outcome carries ("" for upgraded).
pub fn reason(o: Option<&Outcome>) -> String {
    match o {
        Some(
            Outcome::Skipped(r)
            | Outcome::Failed(r)
            | Outcome::Refused(r)
            | Outcome::Halted(r)
            | Outcome::Downloaded(r)
            | Outcome::Activated(r),
        ) => r.clone(),
        _ => String::new(),
    }
}

/// One ONU in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnuReport {
    /// Its PON port.
    #[serde(default = "first_port")]
    pub pon: PonPort,
    /// Its ONU-ID (on its port).
    pub id: u16,
    /// Its serial number (ONU-G: the vendor id and eight hex digits), once read; absent from
    /// reports before serial numbers, and for an ONU that never answered.
    #[serde(default)]
    pub serial: Option<String>,
    /// What became of it.
    pub result: OnuResult,
    /// Why (empty for upgraded).
    pub reason: String,
    /// Its wave, from 1 (none: not eligible).
    pub wave: Option<usize>,
    /// Its model, as it said (only when the campaign asked).
    pub model: Option<String>,
    /// The version it ran before.
    pub from_version: Option<String>,
    /// The version rolled out.
    pub to_version: String,
    /// Its committed image's version, as last read with Get.
    pub committed_version: Option<String>,
    /// Its active image's version, as last read with Get.
    pub active_version: Option<String>,
    /// Requests sent again after a timeout.
    pub retries: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Windows sent again.
    pub repaired_windows: u64,
    /// "Device busy" answers.
    pub busy: u64,
    /// Times its upgrade started again after it lost its download.
    pub restarts: u64,
    /// Frames sent to it alone.
    pub frames: u64,
    /// Of which with AR set.
    pub frames_with_ar: u64,
    /// Seconds spent in each phase ("discover", "download", "end", ...).
    pub phases_s: BTreeMap<String, f64>,
    /// Each phase in order, when it began and how long it lasted (empty in a report of
    /// format version 2).
    #[serde(default)]
    pub timeline: Vec<PhaseReport>,
}

fn first_port() -> PonPort {
    PonPort::FIRST
}

/// Counts and counters over a whole rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// ONUs in the rollout.
    pub onus: usize,
    /// Upgraded.
    pub upgraded: usize,
    /// Failed, or unfinished when the OLT stopped.
    pub failed: usize,
    /// Already on the version.
    pub skipped: usize,
    /// Of another model.
    pub refused: usize,
    /// Stopped by the kill switch or an abort.
    pub halted: usize,
    /// Never reached (the campaign halted before their wave).
    pub untouched: usize,
    /// A staged download ended: valid in the standby image.
    #[serde(default)]
    pub downloaded: usize,
    /// A staged activation ended: running the new image, not committed.
    #[serde(default)]
    pub activated: usize,
    /// Frames sent to the multicast group.
    pub frames_multicast: u64,
    /// Of which with AR set.
    pub frames_multicast_ar: u64,
    /// Frames sent to single ONUs.
    pub frames_unicast: u64,
    /// Bytes sent, datagrams with their envelope.
    pub bytes_sent: u64,
    /// Repair rounds that sent sections to the group again.
    pub remulticast_windows: u64,
    /// Answers taken in.
    pub responses: u64,
    /// Datagrams dropped (not an answer the OLT was waiting for from that ONU).
    pub dropped: u64,
    /// The same, by reason.
    pub drops: Drops,
    /// Answers to a group window that came after their round was given up (slow ONUs).
    pub late_answers: u64,
}

/// Where and when a rollout ran, for its report.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// When it began.
    pub started_at: Option<std::time::SystemTime>,
    /// The OLT's address.
    pub listen: String,
    /// Each PON port's multicast download group.
    pub groups: BTreeMap<PonPort, String>,
    /// Where its TCIs started.
    pub tci_seed: u64,
}

impl Report {
    /// What a report says it is.
    pub const FORMAT: &'static str = "olt-report";
    /// The version of the format this code writes (3: each ONU's `timeline` and each PON
    /// port's `windows`, `started_at` to the millisecond; 2: PON ports, drops by reason, where
    /// and when; 1 had neither).
    pub const FORMAT_VERSION: u32 = 3;

    /// The report of `campaigns` (one per PON port), which rolled out `image` (SHA-256
    /// `sha256`) in `mode` in `elapsed`, run as `info` says.
    pub fn new(
        campaigns: &BTreeMap<PonPort, Campaign>,
        image: &UpgradeImage,
        sha256: &str,
        mode: Mode,
        elapsed: Duration,
        info: &RunInfo,
    ) -> Report {
        let mut onus = Vec::new();
        let mut pons = Vec::new();
        // The report's clock: from the first campaign's start (every port starts together).
        let origin = campaigns.values().map(Campaign::origin).min();
        for (pon, c) in campaigns {
            let these = onu_reports(*pon, c, image, origin.unwrap_or(c.origin()));
            let shift = c
                .origin()
                .saturating_duration_since(origin.unwrap_or(c.origin()))
                .as_secs_f64();
            pons.push(PonReport {
                pon: *pon,
                group: info.groups.get(pon).cloned().unwrap_or_default(),
                campaign: campaign_report(c),
                totals: totals(&these, c),
                windows: c
                    .window_samples()
                    .iter()
                    .map(|w| WindowSample {
                        t_s: w.t_s + shift,
                        ..w.clone()
                    })
                    .collect(),
                packages: packages_report(c),
            });
            onus.extend(these);
        }
        let all = |f: fn(&Totals) -> usize| pons.iter().map(|p| f(&p.totals)).sum::<usize>();
        let all64 = |f: fn(&Totals) -> u64| pons.iter().map(|p| f(&p.totals)).sum::<u64>();
        let totals = Totals {
            onus: all(|t| t.onus),
            upgraded: all(|t| t.upgraded),
            failed: all(|t| t.failed),
            skipped: all(|t| t.skipped),
            refused: all(|t| t.refused),
            halted: all(|t| t.halted),
            untouched: all(|t| t.untouched),
            downloaded: all(|t| t.downloaded),
            activated: all(|t| t.activated),
            frames_multicast: all64(|t| t.frames_multicast),
            frames_multicast_ar: all64(|t| t.frames_multicast_ar),
            frames_unicast: all64(|t| t.frames_unicast),
            bytes_sent: all64(|t| t.bytes_sent),
            remulticast_windows: all64(|t| t.remulticast_windows),
            responses: all64(|t| t.responses),
            dropped: all64(|t| t.dropped),
            drops: pons
                .iter()
                .fold(Drops::default(), |d, p| d.plus(&p.totals.drops)),
            late_answers: all64(|t| t.late_answers),
        };
        // The campaign as a whole: halted if any port halted, stopped if any stopped; the
        // waves of a one-port OLT, else each wave's ONU-IDs over every port (see `pons`).
        let outcome = pons
            .iter()
            .map(|p| p.campaign.outcome)
            .max_by_key(|o| match o {
                CampaignOutcome::Completed => 0,
                CampaignOutcome::Stopped => 1,
                CampaignOutcome::Halted => 2,
            })
            .unwrap_or(CampaignOutcome::Completed);
        let halt_reason = pons.iter().find_map(|p| p.campaign.halt_reason.clone());
        let mut waves: Vec<Vec<u16>> = Vec::new();
        for p in &pons {
            for (n, w) in p.campaign.waves.iter().enumerate() {
                if waves.len() <= n {
                    waves.push(Vec::new());
                }
                waves[n].extend(w);
            }
        }
        Report {
            format: Report::FORMAT.into(),
            format_version: Report::FORMAT_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            started_at: info
                .started_at
                .map(|t| humantime::format_rfc3339_millis(t).to_string())
                .unwrap_or_default(),
            listen: info.listen.clone(),
            tci_seed: info.tci_seed,
            mode,
            image: ImageReport {
                version: image.header.version.clone(),
                size: image.len(),
                sha256: sha256.to_string(),
            },
            duration_s: elapsed.as_secs_f64(),
            campaign: CampaignReport {
                outcome,
                halt_reason,
                waves,
            },
            onus,
            totals,
            pons,
        }
    }
}

/// Each ONU of port `pon`'s campaign `c`.
fn onu_reports(
    pon: PonPort,
    c: &Campaign,
    image: &UpgradeImage,
    origin: std::time::Instant,
) -> Vec<OnuReport> {
    c.records()
        .iter()
        .map(|(id, r)| {
            let (result, reason) = OnuResult::at_end(r, c.stage());
            let mut phases_s = BTreeMap::new();
            for p in &r.stats.phases {
                *phases_s.entry(p.name.to_string()).or_insert(0.0) += p.duration.as_secs_f64();
            }
            let timeline = r
                .stats
                .phases
                .iter()
                .map(|p| PhaseReport {
                    phase: p.name.to_string(),
                    start_s: p.start.saturating_duration_since(origin).as_secs_f64(),
                    duration_s: p.duration.as_secs_f64(),
                })
                .collect();
            OnuReport {
                pon,
                id: id.0,
                serial: r.serial.clone(),
                result,
                reason,
                wave: r.wave.map(|w| w + 1),
                model: r.model.clone(),
                from_version: r.from_version.clone(),
                to_version: image.header.version.clone(),
                committed_version: r.committed_version.clone(),
                active_version: r.active_version.clone(),
                retries: r.stats.retries,
                timeouts: r.stats.timeouts,
                repaired_windows: r.stats.repaired_windows,
                busy: r.stats.busy,
                restarts: r.stats.restarts,
                frames: r.stats.frames,
                frames_with_ar: r.stats.frames_with_ar,
                phases_s,
                timeline,
            }
        })
        .collect()
}

/// How campaign `c` ended, and its waves.
fn campaign_report(c: &Campaign) -> CampaignReport {
    let (outcome, halt_reason) = match c.stage() {
        Stage::Completed => (CampaignOutcome::Completed, None),
        Stage::Halted(why) => (CampaignOutcome::Halted, Some(why.clone())),
        _ => (CampaignOutcome::Stopped, None),
    };
    CampaignReport {
        outcome,
        halt_reason,
        waves: c
            .waves()
            .iter()
            .map(|w| w.iter().map(|id| id.0).collect())
            .collect(),
    }
}

/// The counts of `onus`, and the counters of their campaign `c`.
fn totals(onus: &[OnuReport], c: &Campaign) -> Totals {
    let count = |k: OnuResult| onus.iter().filter(|o| o.result == k).count();
    let counters = c.counters();
    Totals {
        onus: onus.len(),
        upgraded: count(OnuResult::Upgraded),
        failed: count(OnuResult::Failed) + count(OnuResult::Unfinished),
        skipped: count(OnuResult::Skipped),
        refused: count(OnuResult::Refused),
        halted: count(OnuResult::Halted),
        untouched: count(OnuResult::Untouched),
        downloaded: count(OnuResult::Downloaded),
        activated: count(OnuResult::Activated),
        frames_multicast: counters.frames_multicast,
        frames_multicast_ar: counters.frames_multicast_ar,
        frames_unicast: c.records().values().map(|r| r.stats.frames).sum(),
        bytes_sent: counters.bytes_multicast
            + c.records().values().map(|r| r.stats.bytes).sum::<u64>(),
        remulticast_windows: counters.remulticast_windows,
        responses: counters.responses,
        dropped: counters.drops.total(),
        drops: counters.drops.clone(),
        late_answers: counters.late_answers,
    }
}

/// What `olt abort --report` writes: each ONU's result and the images it runs after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortReport {
    /// Every ONU, by ONU-ID.
    pub onus: Vec<AbortedOnu>,
}

/// One ONU of an abort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedOnu {
    /// Its PON port.
    #[serde(default = "first_port")]
    pub pon: PonPort,
    /// Its ONU-ID.
    pub id: u16,
    /// Halted when the abort did what it had to.
    pub result: OnuResult,
    /// What was done, or why not.
    pub reason: String,
    /// Its committed image's version.
    pub committed_version: Option<String>,
    /// Its active image's version.
    pub active_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_the_reports_words() {
        for o in [
            CampaignOutcome::Completed,
            CampaignOutcome::Halted,
            CampaignOutcome::Stopped,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.word());
        }
        for r in [
            OnuResult::Upgraded,
            OnuResult::Skipped,
            OnuResult::Failed,
            OnuResult::Refused,
            OnuResult::Halted,
            OnuResult::Untouched,
            OnuResult::Unfinished,
            OnuResult::Pending,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.word());
        }
    }

    #[test]
    fn a_report_round_trips_through_its_json() {
        let report = Report {
            format: Report::FORMAT.into(),
            format_version: Report::FORMAT_VERSION,
            tool_version: "0.1.0".into(),
            started_at: "2026-12-01T20:00:00Z".into(),
            listen: "127.0.0.1:47001".into(),
            tci_seed: 7,
            mode: Mode::Multicast,
            image: ImageReport {
                version: "V2.0".into(),
                size: 4096,
                sha256: "00".into(),
            },
            duration_s: 1.5,
            campaign: CampaignReport {
                outcome: CampaignOutcome::Halted,
                halt_reason: Some("kill switch".into()),
                waves: vec![vec![1], vec![2]],
            },
            onus: vec![OnuReport {
                pon: PonPort(1),
                id: 2,
                serial: Some("LABS00000002".into()),
                result: OnuResult::Untouched,
                reason: "the campaign halted before its wave".into(),
                wave: Some(2),
                model: None,
                from_version: Some("V1.0".into()),
                to_version: "V2.0".into(),
                committed_version: Some("V1.0".into()),
                active_version: Some("V1.0".into()),
                retries: 1,
                timeouts: 2,
                repaired_windows: 3,
                busy: 4,
                restarts: 0,
                frames: 10,
                frames_with_ar: 5,
                phases_s: [("download".to_string(), 0.5)].into_iter().collect(),
                timeline: vec![PhaseReport {
                    phase: "download".into(),
                    start_s: 0.25,
                    duration_s: 0.5,
                }],
            }],
            totals: Totals {
                onus: 2,
                untouched: 1,
                ..Totals::default()
            },
            pons: Vec::new(),
        };
        let text = serde_json::to_string(&report).unwrap();
        for want in [
            r#""mode":"multicast""#,
            r#""outcome":"halted""#,
            r#""result":"untouched""#,
            r#""phases_s":{"download":0.5}"#,
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), report);
    }
}
