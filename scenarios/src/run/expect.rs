//! The expectations of a scenario checked against what happened: the OLT's report (its
//! counts, its campaign outcome, each ONU's result) and every ONU's flash as read back (the
//! versions committed and active, the bytes it runs). One expectation is never negotiable:
//! every ONU boots.

use std::collections::{BTreeMap, BTreeSet};

use olt::report::{OnuResult, Report};
use onu::status::FlashStatus;
use serde::Serialize;

use super::flash;
use super::summary::format_set;
use crate::spec::{OnuExpect, OnuSet, ResultExpect, Scenario};

/// One expectation and whether it held: what it is about, what was expected and what was
/// observed (each in words), the verdict, and the line the summary prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What the expectation is about: `bricked`, `upgraded`, `failed`, `skipped`, `refused`,
    /// `outcome`, `group downloads`, `report`, or `ONUs 1-4` for an `[[expect.onus]]` entry.
    pub name: String,
    /// What was expected, in words ("0", "upgraded, committed V2.0").
    pub expected: String,
    /// What was observed, in words ("0", "ONU 3 failed").
    pub observed: String,
    /// `held` or `failed`.
    pub verdict: Verdict,
    /// It held (the same as `verdict`, for a reader that wants a boolean).
    pub ok: bool,
    /// The whole line, as the summary prints it.
    #[serde(rename = "check")]
    pub text: String,
}

/// Whether an expectation held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// It held.
    Held,
    /// It did not.
    Failed,
}

impl Check {
    fn new(name: &str, expected: String, observed: String, ok: bool, text: String) -> Check {
        Check {
            name: name.into(),
            expected,
            observed,
            verdict: if ok { Verdict::Held } else { Verdict::Failed },
            ok,
            text,
        }
    }
}

/// What a run found, for the checks.
pub(super) struct Found<'a> {
    /// ONUs in the run.
    pub(super) n: u16,
    /// ONUs on each PON port (the OLT's report numbers them by port).
    pub(super) per_pon: u16,
    /// The run had another ONU count than the file's: counts are not checked.
    pub(super) scaled: bool,
    /// The OLT's report, or why there is none.
    pub(super) olt: Result<&'a Report, &'a str>,
    /// Every ONU's flash.
    pub(super) flash: &'a BTreeMap<u16, FlashStatus>,
    /// SHA-256 (hex) of the image rolled out.
    pub(super) image_sha256: &'a str,
    /// Its Download sections.
    pub(super) sections: u64,
}

/// Every expectation of `s`, with whether it held.
pub(super) fn check(s: &Scenario, found: &Found) -> Vec<Check> {
    let mut out = Vec::new();
    let e = &s.expect;
    let in_recovery: BTreeSet<u16> = e
        .in_recovery
        .as_ref()
        .map(|set| set.resolve(found.n))
        .unwrap_or_default();
    let bricked: Vec<u16> = found
        .flash
        .iter()
        .filter(|(id, f)| !f.bootable && !in_recovery.contains(id))
        .map(|(id, _)| *id)
        .collect();
    if !in_recovery.is_empty() {
        // Still in recovery mode: the flash boots nothing of what it holds.
        let booting: BTreeSet<u16> = in_recovery
            .iter()
            .copied()
            .filter(|id| found.flash.get(id).is_some_and(|f| f.bootable))
            .collect();
        out.push(Check::new(
            "in recovery",
            format!("ONUs {} in recovery mode", format_set(&in_recovery)),
            if booting.is_empty() {
                "in recovery mode".into()
            } else {
                format!("ONUs {} boot an image", format_set(&booting))
            },
            booting.is_empty(),
            if booting.is_empty() {
                format!("ONUs {} in recovery mode", format_set(&in_recovery))
            } else {
                format!(
                    "ONUs {} in recovery mode (but ONUs {} boot an image)",
                    format_set(&in_recovery),
                    format_set(&booting)
                )
            },
        ));
    }
    out.push(Check::new(
        "bricked",
        "0".into(),
        if bricked.is_empty() {
            "0".into()
        } else {
            format!(
                "{}: ONUs {}",
                bricked.len(),
                format_set(&bricked.iter().copied().collect())
            )
        },
        bricked.is_empty(),
        if bricked.is_empty() {
            "bricked = 0 (found 0)".to_string()
        } else {
            format!(
                "bricked = 0 (found {}: ONUs {})",
                bricked.len(),
                format_set(&bricked.iter().copied().collect())
            )
        },
    ));
    let olt = match found.olt {
        Ok(r) => r,
        Err(why) => {
            out.push(Check::new(
                "report",
                "the OLT wrote a report".into(),
                why.to_string(),
                false,
                format!("the OLT wrote a report ({why})"),
            ));
            return out;
        }
    };
    let totals = &olt.totals;
    if !found.scaled {
        for (name, want, got) in [
            ("upgraded", e.upgraded, totals.upgraded),
            ("failed", e.failed, totals.failed),
            ("skipped", e.skipped, totals.skipped),
            ("refused", e.refused, totals.refused),
        ] {
            if let Some(want) = want {
                out.push(Check::new(
                    name,
                    want.to_string(),
                    got.to_string(),
                    got as u64 == u64::from(want),
                    format!("{name} = {want} (the OLT reports {got})"),
                ));
            }
        }
    }
    if let Some(want) = e.outcome {
        let (want, got) = (want.campaign(), olt.campaign.outcome);
        out.push(Check::new(
            "outcome",
            want.to_string(),
            got.to_string(),
            got == want,
            format!(
                "outcome = {want} (the OLT reports {got}{})",
                olt.campaign
                    .halt_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    let packages = || olt.pons.iter().flat_map(|p| p.packages.onus.iter());
    for (name, want, got) in [
        (
            "fell back",
            e.fell_back,
            packages().filter(|o| o.fell_back).count(),
        ),
        (
            "delta ONUs",
            e.delta_onus,
            packages()
                .filter(|o| !o.fell_back && o.package.starts_with("delta"))
                .count(),
        ),
    ] {
        if let Some(want) = want {
            let ok = got as u64 == u64::from(want);
            out.push(Check::new(
                name,
                want.to_string(),
                got.to_string(),
                ok,
                format!("{name} = {want} (found {got})"),
            ));
        }
    }
    if let Some(max) = e.max_group_downloads {
        // Per PON port: each port's group carries its own copy of the image.
        let ports = found.n.div_ceil(found.per_pon.max(1)).max(1);
        let got = totals.frames_multicast as f64 / found.sections as f64 / f64::from(ports);
        out.push(Check::new(
            "group downloads",
            format!("at most {max}"),
            format!("{got:.3}"),
            got <= max,
            format!("frames on the group <= {max} downloads (sent {got:.3})"),
        ));
    }
    // Per ONU: the entries in order; ONUs no entry names must be upgraded.
    let results: BTreeMap<u16, OnuResult> = olt
        .onus
        .iter()
        .map(|o| (super::plan::numbered(o, found.per_pon), o.result))
        .collect();
    let mut named: BTreeSet<u16> = BTreeSet::new();
    let mut entries = e.onus.clone();
    if !entries
        .iter()
        .any(|x| matches!(x.onus, OnuSet::Rest | OnuSet::All))
    {
        entries.push(OnuExpect {
            onus: OnuSet::Rest,
            result: ResultExpect::Upgraded,
            committed: Some(s.image.version.clone()),
            active: Some(s.image.version.clone()),
        });
    }
    for x in &entries {
        let ids: BTreeSet<u16> = match &x.onus {
            OnuSet::Rest => (1..=found.n).filter(|i| !named.contains(i)).collect(),
            other => other.resolve(found.n),
        };
        named.extend(ids.iter().copied());
        if ids.is_empty() {
            continue;
        }
        out.push(check_onus(x, &ids, &results, found));
    }
    out
}

/// The check of one entry of `[[expect.onus]]` on its ONUs `ids`.
fn check_onus(
    x: &OnuExpect,
    ids: &BTreeSet<u16>,
    results: &BTreeMap<u16, OnuResult>,
    found: &Found,
) -> Check {
    let mut bad: Vec<String> = Vec::new();
    for id in ids {
        let f = &found.flash[id];
        if let Some(want) = x.result.result() {
            let got = results.get(id).copied();
            if got != Some(want) {
                bad.push(format!("ONU {id} {}", got.map_or("none", OnuResult::word)));
                continue;
            }
        }
        for (flag, want, slot) in [
            ("committed", &x.committed, flash::committed(f)),
            ("active", &x.active, flash::active(f)),
        ] {
            if let Some(want) = want {
                let got = flash::version(slot).unwrap_or_else(|| "none".into());
                if &got != want {
                    bad.push(format!("ONU {id} {flag} {got}"));
                }
            }
        }
        // An ONU that runs the new version runs exactly its bytes.
        if x.result == ResultExpect::Upgraded
            && let Some(active) = flash::active(f)
            && active.sha256 != found.image_sha256
        {
            bad.push(format!("ONU {id} runs other bytes than the image"));
        }
    }
    let mut what = vec![];
    if let Some(w) = x.result.result() {
        what.push(w.to_string());
    }
    if let Some(c) = &x.committed {
        what.push(format!("committed {c}"));
    }
    if let Some(a) = &x.active {
        what.push(format!("active {a}"));
    }
    Check::new(
        &format!("ONUs {}", format_set(ids)),
        what.join(", "),
        if bad.is_empty() {
            what.join(", ")
        } else {
            bad.join(", ")
        },
        bad.is_empty(),
        format!(
            "ONUs {}: {}{}",
            format_set(ids),
            what.join(", "),
            if bad.is_empty() {
                String::new()
            } else {
                format!(" (but {})", bad.join(", "))
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixtures::{NEW_SHA, flash as flash_of, on_v1, report, upgraded};
    use crate::spec::parse;
    use olt::report::CampaignOutcome;

    const FOUR: &str = "name = \"t\"\n[topology]\nonus = 4\n[image]\nversion = \"V2.0\"\n";

    fn run_checks(
        toml: &str,
        olt: Result<&Report, &str>,
        flash: &BTreeMap<u16, FlashStatus>,
        scaled: bool,
    ) -> Vec<Check> {
        let s = parse(toml).unwrap();
        check(
            &s,
            &Found {
                n: 4,
                per_pon: 4,
                scaled,
                olt,
                flash,
                image_sha256: NEW_SHA,
                sections: 100,
            },
        )
    }

    fn all_upgraded() -> (Report, BTreeMap<u16, FlashStatus>) {
        let r = report(&[1, 2, 3, 4].map(|id| (id, OnuResult::Upgraded, "")));
        (r, (1..=4).map(|id| (id, upgraded())).collect())
    }

    fn texts(checks: &[Check]) -> Vec<(bool, &str)> {
        checks.iter().map(|c| (c.ok, c.text.as_str())).collect()
    }

    #[test]
    fn onus_no_entry_names_must_be_upgraded_on_the_images_bytes() {
        let (r, mut flash) = all_upgraded();
        let checks = run_checks(
            &format!("{FOUR}[expect]\nupgraded = 4\nmax_group_downloads = 1.0\n"),
            Ok(&r),
            &flash,
            false,
        );
        assert_eq!(
            texts(&checks),
            [
                (true, "bricked = 0 (found 0)"),
                (true, "upgraded = 4 (the OLT reports 4)"),
                (true, "frames on the group <= 1 downloads (sent 1.000)"),
                (true, "ONUs 1-4: upgraded, committed V2.0, active V2.0"),
            ]
        );
        flash.insert(3, flash_of(Some(("V2.0", "other")), 1, 1));
        flash.get_mut(&4).unwrap().bootable = false;
        let checks = run_checks(FOUR, Ok(&r), &flash, false);
        assert_eq!(
            texts(&checks),
            [
                (false, "bricked = 0 (found 1: ONUs 4)"),
                (
                    false,
                    "ONUs 1-4: upgraded, committed V2.0, active V2.0 (but ONU 3 runs other bytes than the image)"
                ),
            ]
        );
    }

    #[test]
    fn entries_name_results_and_versions_and_the_rest_takes_the_others() {
        let mut r = report(&[
            (1, OnuResult::Failed, "timeout"),
            (2, OnuResult::Upgraded, ""),
            (3, OnuResult::Upgraded, ""),
        ]);
        let flash: BTreeMap<u16, FlashStatus> = [
            (1, on_v1()),
            (2, upgraded()),
            (3, flash_of(Some(("V2.0", NEW_SHA)), 0, 1)),
            (4, upgraded()),
        ]
        .into_iter()
        .collect();
        let toml = format!(
            "{FOUR}[[expect.onus]]\nonus = \"1-2\"\nresult = \"failed\"\ncommitted = \"V1.0\"\n\
             [[expect.onus]]\nonus = \"rest\"\nresult = \"upgraded\"\ncommitted = \"V2.0\"\n"
        );
        let checks = run_checks(&toml, Ok(&r), &flash, false);
        assert_eq!(
            texts(&checks)[1..],
            [
                (
                    false,
                    "ONUs 1-2: failed, committed V1.0 (but ONU 2 upgraded)"
                ),
                (
                    false,
                    "ONUs 3-4: upgraded, committed V2.0 (but ONU 3 committed V1.0, ONU 4 none)"
                ),
            ]
        );
        // The campaign's outcome, with the OLT's reason.
        r.campaign.outcome = CampaignOutcome::Halted;
        r.campaign.halt_reason = Some("kill switch".into());
        let toml = format!("{FOUR}[expect]\noutcome = \"completed\"\nupgraded = 3\n");
        let checks = run_checks(&toml, Ok(&r), &flash, false);
        assert_eq!(
            texts(&checks)[1..3],
            [
                (false, "upgraded = 3 (the OLT reports 2)"),
                (
                    false,
                    "outcome = completed (the OLT reports halted: kill switch)"
                ),
            ]
        );
        // With another ONU count, counts are not checked.
        let checks = run_checks(&toml, Ok(&r), &flash, true);
        assert!(checks.iter().all(|c| !c.text.starts_with("upgraded =")));
    }

    #[test]
    fn without_the_olts_report_only_the_flash_is_checked() {
        let (_, flash) = all_upgraded();
        let checks = run_checks(FOUR, Err("none found"), &flash, false);
        assert_eq!(
            texts(&checks),
            [
                (true, "bricked = 0 (found 0)"),
                (false, "the OLT wrote a report (none found)"),
            ]
        );
        let json = serde_json::to_value(&checks[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "report",
                "expected": "the OLT wrote a report",
                "observed": "none found",
                "verdict": "failed",
                "ok": false,
                "check": "the OLT wrote a report (none found)"
            })
        );
    }
}
