//! The summary a person reads at the end of a run: the scenario, the faults as they happened,
//! each ONU's result and final versions grouped, why the others did not upgrade, the frames
//! the OLT sent, the campaign's end, and every expectation with whether it held.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use olt::report::{OnuResult, Report};
use onu::status::FlashStatus;

use super::expect::Check;
use super::flash;
use crate::spec::Scenario;

/// Fault lines shown; the rest are counted.
const NOTES_SHOWN: usize = 40;

/// Reasons shown, the most common first.
const REASONS_SHOWN: usize = 6;

/// Everything the summary tells.
pub(super) struct Summary<'a> {
    /// The scenario.
    pub(super) s: &'a Scenario,
    /// ONUs in the run.
    pub(super) n: u16,
    /// ONUs on each PON port (the OLT's report numbers them by port).
    pub(super) per_pon: u16,
    /// The OLT's report, if it wrote one.
    pub(super) olt: Option<&'a Report>,
    /// Every ONU's flash.
    pub(super) flash: &'a BTreeMap<u16, FlashStatus>,
    /// The expectations.
    pub(super) checks: &'a [Check],
    /// Seconds from the OLT's start to its end.
    pub(super) rollout_s: f64,
    /// Seconds of the whole run.
    pub(super) total_s: f64,
    /// OLT processes started.
    pub(super) olt_lives: u32,
    /// The faults and deaths, as they happened.
    pub(super) notes: &'a [String],
    /// Download sections of the image.
    pub(super) sections: u64,
    /// A narration or a diagram to print before the verdict.
    pub(super) explanation: Option<&'a str>,
}

impl Summary<'_> {
    /// The summary's text.
    pub(super) fn render(&self) -> String {
        let mut o = String::new();
        let s = self.s;
        let _ = writeln!(o, "Scenario {}: {}", s.name, s.description.trim());
        let _ = writeln!(
            o,
            "{} {}, {} mode, image {} ({} sections); rollout {:.1} s, {:.1} s in all{}",
            self.n,
            if self.n == 1 { "ONU" } else { "ONUs" },
            self.olt.map_or("?", |r| r.mode.name()),
            s.image.version,
            self.sections,
            self.rollout_s,
            self.total_s,
            if self.olt_lives > 1 {
                format!(", {} OLT processes", self.olt_lives)
            } else {
                String::new()
            }
        );
        if !self.notes.is_empty() {
            let _ = writeln!(o, "\nFaults:");
            for n in self.notes.iter().take(NOTES_SHOWN) {
                let _ = writeln!(o, "  {n}");
            }
            if self.notes.len() > NOTES_SHOWN {
                let _ = writeln!(o, "  ... {} more", self.notes.len() - NOTES_SHOWN);
            }
        }
        self.outcomes(&mut o);
        self.reasons(&mut o);
        let t = self.olt.map(|r| r.totals.clone()).unwrap_or_default();
        let ports = self.n.div_ceil(self.per_pon.max(1)).max(1);
        let downloads = t.frames_multicast as f64 / self.sections as f64;
        let _ = if ports > 1 {
            writeln!(
                o,
                "\nFrames sent by the OLT: {} on the multicast groups of {ports} PON ports ({:.2} downloads a port), {} unicast",
                t.frames_multicast,
                downloads / f64::from(ports),
                t.frames_unicast
            )
        } else {
            writeln!(
                o,
                "\nFrames sent by the OLT: {} on the multicast group ({downloads:.2} downloads), {} unicast",
                t.frames_multicast, t.frames_unicast
            )
        };
        if let Some(c) = self.olt.map(|r| &r.campaign) {
            if let Some(r) = &c.halt_reason {
                let _ = writeln!(o, "Campaign halted: {r}");
            } else if c.waves.len() > 1 {
                let _ = writeln!(o, "Campaign completed in {} waves", c.waves.len());
            }
        }
        let _ = writeln!(o, "\nExpectations:");
        for c in self.checks {
            let _ = writeln!(o, "  [{}] {}", if c.ok { "ok" } else { "FAILED" }, c.text);
        }
        if let Some(e) = self.explanation {
            let _ = writeln!(o, "\n{e}");
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        let _ = writeln!(
            o,
            "\n{}",
            if failed == 0 {
                format!("PASSED: {} expectations held", self.checks.len())
            } else {
                format!(
                    "FAILED: {failed} of {} expectations did not hold",
                    self.checks.len()
                )
            }
        );
        o
    }

    /// The table of outcomes: result x (committed, active) -> ONUs.
    fn outcomes(&self, o: &mut String) {
        let mut rows: BTreeMap<(&str, String, String), BTreeSet<u16>> = BTreeMap::new();
        for x in self.olt.iter().flat_map(|r| &r.onus) {
            let id = super::plan::numbered(x, self.per_pon);
            let f = self.flash.get(&id);
            let version = |slot| flash::version(slot).unwrap_or_else(|| "-".into());
            rows.entry((
                x.result.word(),
                version(f.and_then(flash::committed)),
                version(f.and_then(flash::active)),
            ))
            .or_default()
            .insert(id);
        }
        let _ = writeln!(
            o,
            "\n{:<11} {:<10} {:<10} {:>5}  ONUs",
            "result", "committed", "active", "count"
        );
        for ((r, c, a), ids) in &rows {
            let _ = writeln!(
                o,
                "{r:<11} {c:<10} {a:<10} {:>5}  {}",
                ids.len(),
                format_set(ids)
            );
        }
    }

    /// Why ONUs did not end upgraded, most common first.
    fn reasons(&self, o: &mut String) {
        let mut why: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
        for x in self.olt.iter().flat_map(|r| &r.onus) {
            if x.result != OnuResult::Upgraded && !x.reason.is_empty() {
                why.entry(&x.reason)
                    .or_default()
                    .insert(super::plan::numbered(x, self.per_pon));
            }
        }
        if why.is_empty() {
            return;
        }
        let mut why: Vec<_> = why.into_iter().collect();
        why.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let _ = writeln!(o, "\nWhy:");
        for (r, ids) in why.iter().take(REASONS_SHOWN) {
            let _ = writeln!(o, "  ONUs {}: {r}", format_set(ids));
        }
    }
}

/// `1-4,7` for a set of IDs.
pub fn format_set(ids: &BTreeSet<u16>) -> String {
    let mut parts = Vec::new();
    let mut it = ids.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap_or(b);
        }
        parts.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixtures::{on_v1, report, upgraded};
    use crate::spec::parse;
    use olt::report::CampaignOutcome;

    #[test]
    fn sets_are_ranges() {
        let ids: BTreeSet<u16> = [1, 2, 3, 4, 7, 9, 10].into_iter().collect();
        assert_eq!(format_set(&ids), "1-4,7,9-10");
        assert_eq!(format_set(&BTreeSet::new()), "");
    }

    #[test]
    fn the_summary_groups_the_onus_and_says_why() {
        let s = parse(
            "name = \"canary\"\ndescription = \" A canary wave. \"\n[topology]\nonus = 5\n\
             [image]\nversion = \"V2.0\"\n",
        )
        .unwrap();
        let mut r = report(&[
            (1, OnuResult::Failed, "the new image did not boot"),
            (
                2,
                OnuResult::Untouched,
                "the campaign halted before its wave",
            ),
            (
                3,
                OnuResult::Untouched,
                "the campaign halted before its wave",
            ),
            (4, OnuResult::Upgraded, ""),
            (5, OnuResult::Failed, "the new image did not boot"),
        ]);
        r.campaign.outcome = CampaignOutcome::Halted;
        r.campaign.halt_reason = Some("kill switch: 2 of 2 failed".into());
        let flash: BTreeMap<u16, FlashStatus> = (1..=5)
            .map(|id| (id, if id == 4 { upgraded() } else { on_v1() }))
            .collect();
        let notes: Vec<String> = (0..42).map(|i| format!("note {i}")).collect();
        let checks = [
            Check {
                name: "bricked".into(),
                expected: "0".into(),
                observed: "0".into(),
                verdict: crate::run::Verdict::Held,
                ok: true,
                text: "bricked = 0 (found 0)".into(),
            },
            Check {
                name: "outcome".into(),
                expected: "completed".into(),
                observed: "halted".into(),
                verdict: crate::run::Verdict::Failed,
                ok: false,
                text: "outcome = completed (the OLT reports halted)".into(),
            },
        ];
        let text = Summary {
            s: &s,
            n: 5,
            per_pon: 5,
            olt: Some(&r),
            flash: &flash,
            checks: &checks,
            rollout_s: 1.54,
            total_s: 2.31,
            olt_lives: 2,
            notes: &notes,
            sections: 100,
            explanation: Some("Step 1."),
        }
        .render();
        let faults: String = (0..40).map(|i| format!("  note {i}\n")).collect();
        let want = format!(
            "Scenario canary: A canary wave.\n\
             5 ONUs, multicast mode, image V2.0 (100 sections); rollout 1.5 s, 2.3 s in all, 2 OLT processes\n\
             \nFaults:\n{faults}  ... 2 more\n\
             \nresult      committed  active     count  ONUs\n\
             failed      V1.0       V1.0           2  1,5\n\
             untouched   V1.0       V1.0           2  2-3\n\
             upgraded    V2.0       V2.0           1  4\n\
             \nWhy:\n  ONUs 2-3: the campaign halted before its wave\n  ONUs 1,5: the new image did not boot\n\
             \nFrames sent by the OLT: 100 on the multicast group (1.00 downloads), 25 unicast\n\
             Campaign halted: kill switch: 2 of 2 failed\n\
             \nExpectations:\n  [ok] bricked = 0 (found 0)\n  [FAILED] outcome = completed (the OLT reports halted)\n\
             \nStep 1.\n\
             \nFAILED: 1 of 2 expectations did not hold\n"
        );
        assert_eq!(text, want);
    }

    #[test]
    fn without_the_olts_report_the_summary_still_reads() {
        let s = parse("name = \"t\"\n[topology]\nonus = 1\n[image]\nversion = \"V2.0\"\n").unwrap();
        let flash: BTreeMap<u16, FlashStatus> = [(1, on_v1())].into_iter().collect();
        let mut r = report(&[(1, OnuResult::Upgraded, "")]);
        r.campaign.waves = vec![vec![1], vec![]];
        let summary = |olt| {
            Summary {
                s: &s,
                n: 1,
                per_pon: 1,
                olt,
                flash: &flash,
                checks: &[],
                rollout_s: 1.0,
                total_s: 2.0,
                olt_lives: 1,
                notes: &[],
                sections: 100,
                explanation: None,
            }
            .render()
        };
        let text = summary(None);
        assert!(text.contains("1 ONU, ? mode"), "{text}");
        assert!(
            text.contains("0 on the multicast group (0.00 downloads), 0 unicast"),
            "{text}"
        );
        assert!(!text.contains("Campaign") && text.ends_with("PASSED: 0 expectations held\n"));
        assert!(summary(Some(&r)).contains("Campaign completed in 2 waves"));
    }
}
