//! What the runner saw happen, as it happened (the faults it carried out, the ONU processes
//! that died, what the ONUs said), kept twice from one call: as the notes a person reads in the
//! summary and the report, and as marks with their ONU and time for the page
//! (`scenario run --html`), which [`write`] draws with the OLT's report (`olt::html`).

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use olt::engine::PonPort;
use olt::html::{CheckLine, Mark, MarkKind, Page};
use onu::core::OnuEvent;
use onu::faults::FaultPoint;

use super::expect::Check;
use super::report::RunReport;

/// A moment the runner marks: seconds after the OLT's start, the scenario's ONU number (None:
/// the whole rollout), what it is, in words.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RunMark {
    pub(super) t_s: f64,
    pub(super) onu: Option<u16>,
    pub(super) kind: MarkKind,
    pub(super) words: String,
}

/// The faults and deaths (notes, in the summary and the report) and every mark (the page).
#[derive(Clone, Debug, Default)]
pub(super) struct Happenings {
    pub(super) notes: Vec<String>,
    pub(super) marks: Vec<RunMark>,
}

impl Happenings {
    /// A fault or a death at `t` s on `onu` (None: the OLT, the group): a note and a mark.
    pub(super) fn note(&mut self, t: f64, onu: Option<u16>, words: String) {
        self.notes.push(format!("{t:>6.2} s  {words}"));
        self.marks.push(RunMark {
            t_s: t,
            onu,
            kind: MarkKind::Fault,
            words,
        });
    }

    /// Something ONU `onu` said at `t` s (its `boots`-th boot so far): a mark when it is worth
    /// one (a boot after the first, a power cut, a download discarded, an image refused).
    pub(super) fn event(&mut self, t: f64, onu: u16, event: &OnuEvent, boots: u32) {
        let (kind, words) = match event {
            OnuEvent::Booted {
                running, version, ..
            } if boots >= 2 => (
                MarkKind::Event,
                format!("booted again, running image {running} ({version})"),
            ),
            OnuEvent::PowerLost { point } => (
                MarkKind::Fault,
                format!("power cut {}", point_words(*point)),
            ),
            OnuEvent::DownloadDiscarded { reason } => {
                (MarkKind::Event, format!("download discarded: {reason}"))
            }
            OnuEvent::ImageRefused { slot, reason, .. } => {
                (MarkKind::Event, format!("image {slot} refused: {reason}"))
            }
            OnuEvent::StartRefused { reason } => (
                MarkKind::Event,
                format!("Start software download refused: {reason}"),
            ),
            _ => return,
        };
        self.marks.push(RunMark {
            t_s: t,
            onu: Some(onu),
            kind,
            words,
        });
    }
}

/// Where a power cut came, in words.
fn point_words(p: FaultPoint) -> &'static str {
    match p {
        FaultPoint::MidSectionWrite => "halfway through writing a Download section",
        FaultPoint::AfterWindowAck => "right after acknowledging a window",
        FaultPoint::DuringBusy => "during the busy phase of End software download",
        FaultPoint::MidMetadataWrite => "halfway through writing the metadata record",
        FaultPoint::AfterActivate => "after answering Activate, before the reboot",
        FaultPoint::AfterRebootBeforeCommit => "after booting the new image, before Commit",
        FaultPoint::MidGoldenRestore => {
            "halfway through restoring the golden image in recovery mode"
        }
        FaultPoint::MidDeltaRebuild => "while rebuilding a delta package's target",
        FaultPoint::DeltaRebuiltBeforeSwap => {
            "with the delta's target rebuilt and verified, before it replaced the package"
        }
        FaultPoint::DeltaSwappedBeforeMetadata => {
            "with the delta's target in its slot, before the metadata called it valid"
        }
    }
}

/// The page of a run, as one HTML document: the OLT's report (its clock starts at its
/// `started_at`; the runner's marks, counted from `olt_started`, are moved onto it), the
/// checks, the marks and the notes.
pub(super) fn page(
    report: &RunReport,
    marks: &[RunMark],
    olt_started: SystemTime,
    per_pon: u16,
) -> String {
    // The OLT's clock starts a little after the runner started its process.
    let shift = report
        .olt
        .as_ref()
        .and_then(|r| humantime::parse_rfc3339(&r.started_at).ok())
        .and_then(|t| t.duration_since(olt_started).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let per_pon = per_pon.max(1);
    let marks = marks
        .iter()
        .map(|m| Mark {
            t_s: (m.t_s - shift).max(0.0),
            onu: m.onu.map(|n| {
                (
                    PonPort(((n - 1) / per_pon + 1) as u8),
                    (n - 1) % per_pon + 1,
                )
            }),
            kind: m.kind,
            words: m.words.clone(),
        })
        .collect();
    let problem = match (&report.olt, &report.olt_error) {
        (Some(_), _) => None,
        (None, Some(said)) => Some(format!("it said: {said}")),
        (None, None) => Some(match report.olt_exit {
            Some(code) => format!("it exited with code {code} and wrote no error"),
            None => "it was ended by a signal".into(),
        }),
    };
    olt::html::render(&Page {
        title: format!("scenario {}", report.scenario),
        about: report.description.clone(),
        report: report.olt.as_ref(),
        passed: Some(report.passed),
        checks: report.checks.iter().map(check_line).collect(),
        marks,
        notes: report.faults.clone(),
        problem,
    })
}

fn check_line(c: &Check) -> CheckLine {
    CheckLine {
        text: c.text.clone(),
        ok: c.ok,
    }
}

/// Writes the page of a run to `path`.
pub(super) fn write(
    path: &Path,
    report: &RunReport,
    marks: &[RunMark],
    olt_started: SystemTime,
    per_pon: u16,
) -> Result<()> {
    std::fs::write(path, page(report, marks, olt_started, per_pon))
        .with_context(|| format!("--html {}: writing it", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_also_a_mark_and_events_are_marks_in_words() {
        let mut h = Happenings::default();
        h.note(1.5, Some(3), "fault 1: SIGKILL to ONU 3".into());
        assert_eq!(h.notes, ["  1.50 s  fault 1: SIGKILL to ONU 3"]);
        let booted = OnuEvent::Booted {
            running: 0,
            version: "V1.0".into(),
            path: Vec::new(),
        };
        h.event(0.0, 2, &booted, 1);
        assert_eq!(h.marks.len(), 1, "the first boot is no mark");
        h.event(2.0, 2, &booted, 2);
        h.event(
            2.5,
            4,
            &OnuEvent::PowerLost {
                point: FaultPoint::DuringBusy,
            },
            1,
        );
        let words: Vec<&str> = h.marks.iter().map(|m| m.words.as_str()).collect();
        assert_eq!(
            words,
            [
                "fault 1: SIGKILL to ONU 3",
                "booted again, running image 0 (V1.0)",
                "power cut during the busy phase of End software download"
            ]
        );
        assert_eq!(h.marks[2].kind, MarkKind::Fault);
        assert_eq!(h.notes.len(), 1, "events are not notes");
    }
}
