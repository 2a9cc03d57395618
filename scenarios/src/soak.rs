//! The soak: many cases of random power cuts and SIGKILLs across every phase of an upgrade,
//! each followed by the operator's retry (`olt rollout --retry-failed`, with the journal the
//! case left), and three numbers: ONUs upgraded after the retry (must be all), ONUs that no
//! longer boot (`bricked`, must be 0) and committed images whose bytes changed (`data_lost`,
//! must be 0). Each case reports what every ONU ended as, and why.
//!
//! With [`SoakPlan::deltas`], every case is a mixed PON: a third of the ONUs on V1.0 and a
//! third on V1.1, each base with its delta package, the rest on V1.2 with the full image; the
//! power cuts also fall inside the rebuild (its three named points), and the case's report
//! says which ONUs rebuilt a delta.
//!
//! With [`SoakPlan::recovery`], some ONUs of every case start wrecked (both slots and both
//! metadata copies garbled, as a power cut in the middle of a flash write can leave them):
//! their bootloader enters recovery mode and fetches the golden image over TFTP from the
//! runner's embedded server, some of them losing power halfway through that restore, before
//! the OLT upgrades every ONU as usual. A wrecked ONU counts as upgraded only if recovery mode
//! brought it back and the rollout then upgraded it; one left in recovery mode is bricked.

use std::ffi::OsString;
use std::fmt::Write as _;

use anyhow::Result;
use olt::report::OnuResult;
use serde::Serialize;

use crate::run::{RunOptions, RunReport, run};
use crate::spec::{FaultPoint, parse};

/// What a soak runs.
#[derive(Clone, Copy, Debug)]
pub struct SoakPlan {
    /// Cases.
    pub cases: u32,
    /// The seed: the same seed runs the same cases.
    pub seed: u64,
    /// ONUs per case (1..=128).
    pub onus: u16,
    /// Payload bytes of the image.
    pub size: usize,
    /// Extended OMCI messages (1965-byte sections) instead of baseline.
    pub extended: bool,
    /// Cases that end in recovery: some ONUs start wrecked and restore their golden image over
    /// TFTP (some losing power mid-restore) before the rollout.
    pub recovery: bool,
    /// Cases of delta campaigns: ONUs on three bases, deltas for two of them, power cuts in
    /// the rebuild too (the image is then derived from V1.0's, of the golden image's size).
    pub deltas: bool,
}

/// How a soak ran.
#[derive(Debug, Serialize)]
pub struct SoakOutcome {
    /// Cases run.
    pub cases: u32,
    /// The seed.
    pub seed: u64,
    /// ONUs per case.
    pub onus_per_case: u16,
    /// Payload bytes of the image.
    pub size: usize,
    /// Extended OMCI messages.
    pub extended: bool,
    /// Cases that end in recovery ([`SoakPlan::recovery`]).
    pub recovery: bool,
    /// Cases of delta campaigns ([`SoakPlan::deltas`]).
    pub deltas: bool,
    /// ONUs that rebuilt a delta package (in the first run or the retry; deltas only).
    pub delta_onus: u32,
    /// ONUs in all.
    pub onus: u32,
    /// ONUs that started wrecked and had to go through recovery mode.
    pub wrecked: u32,
    /// Of the wrecked ONUs, those recovery mode brought back and the rollout then upgraded.
    pub recovered: u32,
    /// ONUs committed and active on the new image after their case's retry (must be all).
    pub upgraded: u32,
    /// ONUs the first run already upgraded (without the retry).
    pub upgraded_first: u32,
    /// ONUs that did not boot at the end of a case (must be 0).
    pub bricked: u32,
    /// ONUs whose committed image no longer verifies (its bytes changed; must be 0).
    pub data_lost: u32,
    /// Seconds of the whole soak.
    pub duration_s: f64,
    /// Every case.
    pub runs: Vec<CaseRow>,
    /// The human summary.
    #[serde(skip)]
    pub summary: String,
}

/// One case of a soak.
#[derive(Debug, Serialize)]
pub struct CaseRow {
    /// Its number.
    pub case: u32,
    /// Its scenario file.
    pub scenario: String,
    /// The faults as they happened.
    pub faults: Vec<String>,
    /// The ONUs that started wrecked (recovery mode first).
    pub wrecked: Vec<u16>,
    /// What each ONU ended as, after the first run and after the retry.
    pub onus: Vec<OnuRow>,
    /// Expectations of the first run that did not hold (or why it did not end).
    pub first_failures: Vec<String>,
    /// Expectations of the retry that did not hold (or why it did not end).
    pub retry_failures: Vec<String>,
    /// ONUs that did not boot.
    pub bricked: u32,
    /// ONUs whose committed image no longer verifies.
    pub data_lost: u32,
}

/// What one ONU of a case ended as.
#[derive(Debug, Serialize)]
pub struct OnuRow {
    /// Its ONU-ID.
    pub id: u16,
    /// Its result after the first run, and why.
    pub first: Option<(OnuResult, String)>,
    /// Its result after the retry, and why.
    pub retry: Option<(OnuResult, String)>,
    /// The version its flash holds committed and active at the end.
    pub committed: Option<String>,
    /// See `committed`.
    pub active: Option<String>,
}

/// A small seeded generator (xorshift64*), so that a case is the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The TOML of case `case`: `onus` ONUs, each with a random fault (a power cut at a random
/// point and occurrence, or a SIGKILL at a random protocol event), and no expectation but the
/// runner's own (every ONU boots). With [`SoakPlan::recovery`], about a third of the ONUs (at
/// least one) start wrecked, the golden image served over TFTP by the embedded server, and
/// half of the wrecked ones lose power halfway through a random block of the restore instead
/// of the usual fault.
pub fn case_toml(plan: &SoakPlan, case: u32) -> String {
    let SoakPlan {
        seed,
        onus,
        size,
        extended,
        recovery,
        deltas,
        ..
    } = *plan;
    let mut rng = Rng(seed ^ (u64::from(case) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Room for the largest cases: every ONU's image over unicast on a loaded machine.
    let limit = (120 + (u64::from(onus) * size as u64) / 20_000).min(crate::spec::TIME_LIMIT_S.max);
    // A delta case: the first third of the ONUs on V1.0, the second on V1.1, the rest on V1.2.
    let base_of = |id: u16| -> Option<&'static str> {
        if !deltas {
            return None;
        }
        let third = onus.div_ceil(3);
        Some(match (id - 1) / third {
            0 => "V1.0",
            1 => "V1.1",
            _ => "V1.2",
        })
    };
    let (groups, image) = if deltas {
        let mut groups = String::new();
        for id in 1..=onus {
            let _ = write!(
                groups,
                "\n[[topology.groups]]\nonus = \"{id}\"\nversion = \"{}\"\n",
                base_of(id).unwrap_or("V1.0")
            );
        }
        (groups, "deltas = [\"V1.0\", \"V1.1\"]".to_string())
    } else {
        (String::new(), format!("size = {size}"))
    };
    let mut t = format!(
        "name = \"soak-{case}\"\ndescription = \"random faults, case {case} of seed {seed}\"\n\
         seed = {}\ntime_limit_s = {limit}\n\n[topology]\nonus = {onus}\nbusy_ms = 150\n{groups}\n\
         [image]\nversion = \"V2.0\"\n{image}\nsecurity_version = 2\n\n\
         [olt]\nmode = \"{}\"\ntimeout_ms = 400\nretries = 6\nextended = {extended}\n",
        seed.wrapping_add(u64::from(case)),
        if rng.below(4) == 0 {
            "unicast"
        } else {
            "multicast"
        }
    );
    // A delta case's image is derived from the golden image, of its size.
    let size = if deltas {
        crate::run::GOLDEN_SIZE
    } else {
        size
    };
    let section = if extended { 1965 } else { 31 };
    let windows = size.div_ceil(section * 32) as u64;
    // Drawn only for recovery soaks, so that the other soaks' cases stay as they were.
    let wrecked: Vec<u16> = if recovery {
        let mut ids: Vec<u16> = (1..=onus).filter(|_| rng.below(3) == 0).collect();
        if ids.is_empty() {
            ids.push(1 + rng.below(u64::from(onus)) as u16);
        }
        let list: Vec<String> = ids.iter().map(u16::to_string).collect();
        let _ = write!(
            t,
            "\n[golden]\nserver = \"embedded\"\nwrecked = \"{}\"\n",
            list.join(",")
        );
        ids
    } else {
        Vec::new()
    };
    // The golden image (header, payload, signature) travels in TFTP blocks of 1428 bytes (the
    // size the ONU asks for): a cut in any of its blocks.
    let golden = pon::firmware::HEADER_LEN + crate::run::GOLDEN_SIZE + pon::firmware::SIGNATURE_LEN;
    let blocks = (golden as u64).div_ceil(1428);
    for id in 1..=onus {
        if wrecked.contains(&id) && rng.below(2) == 0 {
            let _ = write!(
                t,
                "\n[[faults]]\nkind = \"power-loss\"\nonus = \"{id}\"\npoint = \"{}\"\noccurrence = {}\n",
                FaultPoint::MidGoldenRestore.name(),
                1 + rng.below(blocks)
            );
            continue;
        }
        // An ONU with a delta: a third of its power cuts fall in the rebuild (drawn only in
        // delta soaks, so that the other soaks' cases stay as they were).
        let rebuilds = matches!(base_of(id), Some("V1.0" | "V1.1"));
        if rebuilds && rng.below(3) == 0 {
            let point = FaultPoint::DELTA[rng.below(FaultPoint::DELTA.len() as u64) as usize];
            let _ = write!(
                t,
                "\n[[faults]]\nkind = \"power-loss\"\nonus = \"{id}\"\npoint = \"{}\"\noccurrence = 1\n",
                point.name()
            );
            continue;
        }
        match rng.below(3) {
            0 | 1 => {
                let point =
                    FaultPoint::UPGRADE[rng.below(FaultPoint::UPGRADE.len() as u64) as usize];
                let occurrence = 1 + rng.below(match point {
                    FaultPoint::MidSectionWrite => 200,
                    FaultPoint::AfterWindowAck => windows.max(1),
                    FaultPoint::DuringBusy => 2,
                    FaultPoint::MidMetadataWrite => 4,
                    _ => 1,
                });
                let _ = write!(
                    t,
                    "\n[[faults]]\nkind = \"power-loss\"\nonus = \"{id}\"\npoint = \"{}\"\noccurrence = {occurrence}\n",
                    point.name()
                );
            }
            _ => {
                let on = match rng.below(5) {
                    0 => "download-started".to_string(),
                    1 => format!("window:{}", rng.below(windows.max(1))),
                    2 => "image-valid".to_string(),
                    3 => "activated".to_string(),
                    _ => "booted".to_string(),
                };
                let _ = write!(
                    t,
                    "\n[[faults]]\nkind = \"sigkill\"\nonus = \"{id}\"\non = \"{on}\"\n"
                );
            }
        }
    }
    t += "\n[[expect.onus]]\nonus = \"all\"\nresult = \"any\"\n";
    t
}

/// The retry of a case: the same ONUs (their flash as the case left it), the same working
/// directory and journal, no fault, and the operator's verb for it (`retry_failed`): every ONU
/// must end committed and active on the new image.
fn retry_toml(case_toml: &str) -> String {
    let head = case_toml
        .split("\n[[faults]]")
        .next()
        .unwrap_or(case_toml)
        .split("\n[[expect.onus]]")
        .next()
        .unwrap_or(case_toml)
        .replace("name = \"soak-", "name = \"retry-")
        .replace("retries = 6\n", "retries = 6\nretry_failed = true\n");
    head + "\n[[expect.onus]]\nonus = \"all\"\ncommitted = \"V2.0\"\nactive = \"V2.0\"\n"
}

/// ONUs of a run whose committed image no longer verifies (its bytes changed after it was
/// committed), or that have no committed image at all.
fn lost(report: &RunReport) -> u32 {
    report
        .flash
        .values()
        .filter(|f| !f.slots.iter().any(|s| s.committed && s.verifies))
        .count() as u32
}

/// ONUs of a run committed and active on `version`.
fn on_version(report: &RunReport, version: &str) -> u32 {
    report
        .flash
        .keys()
        .filter(|id| on_version_id(report, **id, version))
        .count() as u32
}

/// Whether ONU `id` ended the run committed and active on `version`.
fn on_version_id(report: &RunReport, id: u16, version: &str) -> bool {
    report.flash.get(&id).is_some_and(|f| {
        f.slots
            .iter()
            .any(|s| s.committed && s.active && s.version.as_deref() == Some(version))
    })
}

/// Runs the soak of `plan`.
pub async fn soak(plan: &SoakPlan, program: &[OsString], progress: bool) -> Result<SoakOutcome> {
    let started = std::time::Instant::now();
    let mut out = SoakOutcome {
        cases: 0,
        seed: plan.seed,
        onus_per_case: plan.onus,
        size: plan.size,
        extended: plan.extended,
        recovery: plan.recovery,
        deltas: plan.deltas,
        delta_onus: 0,
        onus: 0,
        wrecked: 0,
        recovered: 0,
        upgraded: 0,
        upgraded_first: 0,
        bricked: 0,
        data_lost: 0,
        duration_s: 0.0,
        runs: Vec::new(),
        summary: String::new(),
    };
    let mut lines = String::new();
    for case in 0..plan.cases {
        // A runner's working directory (removed on a signal, or by a later run if this one is
        // killed), kept across the case's two runs.
        let dir = crate::run::TempWorkDir::new()?;
        let text = case_toml(plan, case);
        let faulty = parse(&text).map_err(|e| anyhow::anyhow!("case {case}: {e}"))?;
        let wrecked: Vec<u16> = faulty
            .golden
            .wrecked
            .as_ref()
            .map(|set| set.resolve(plan.onus).into_iter().collect())
            .unwrap_or_default();
        let opts = RunOptions {
            keep: Some(dir.path().to_path_buf()),
            progress: false,
            ..RunOptions::default()
        };
        // A run that does not end (its time limit) is a failed case, not the end of the soak.
        let first = run(&faulty, &opts, program)
            .await
            .map_err(|e| format!("{e:#}"));
        let retry = parse(&retry_toml(&text)).map_err(|e| anyhow::anyhow!("retry {case}: {e}"))?;
        // The retry carries the faulty run on, on purpose: its journal and every ONU's flash.
        let carry_on = RunOptions {
            reuse: true,
            ..opts.clone()
        };
        let second = run(&retry, &carry_on, program)
            .await
            .map_err(|e| format!("{e:#}"));
        let (first_report, retry_report) = (report_of(&first), report_of(&second));
        let bricked =
            first_report.map_or(0, count_unbootable) + retry_report.map_or(0, count_unbootable);
        let data_lost = first_report.map_or(0, lost) + retry_report.map_or(0, lost);
        let upgraded = retry_report.map_or(0, |r| on_version(r, "V2.0"));
        let upgraded_first = first_report.map_or(0, |r| result_count(r, OnuResult::Upgraded));
        let recovered = retry_report.map_or(0, |r| {
            wrecked
                .iter()
                .filter(|id| on_version_id(r, **id, "V2.0"))
                .count() as u32
        });
        out.cases += 1;
        out.onus += u32::from(plan.onus);
        out.upgraded += upgraded;
        out.upgraded_first += upgraded_first;
        out.bricked += bricked;
        out.data_lost += data_lost;
        out.wrecked += wrecked.len() as u32;
        out.recovered += recovered;
        // Each ONU's package as the last run that sent it one says (the retry's over the first).
        let mut last_package: std::collections::BTreeMap<u16, bool> = Default::default();
        for o in [first_report, retry_report]
            .into_iter()
            .flatten()
            .filter_map(|r| r.olt.as_ref())
            .flat_map(|o| o.pons.iter().flat_map(|p| p.packages.onus.iter()))
        {
            last_package.insert(o.id, !o.fell_back && o.package.starts_with("delta"));
        }
        let rebuilt: std::collections::BTreeSet<u16> = last_package
            .into_iter()
            .filter(|(id, delta)| {
                *delta && retry_report.is_some_and(|r| on_version_id(r, *id, "V2.0"))
            })
            .map(|(id, _)| id)
            .collect();
        out.delta_onus += rebuilt.len() as u32;
        let failures = |r: &Result<crate::run::RunOutcome, String>| match r {
            Ok(o) => o.failures.clone(),
            Err(e) => vec![e.clone()],
        };
        let row = CaseRow {
            case,
            scenario: text,
            faults: first_report.map(|r| r.faults.clone()).unwrap_or_default(),
            wrecked: wrecked.clone(),
            onus: (1..=plan.onus)
                .map(|id| onu_row(id, first_report, retry_report))
                .collect(),
            first_failures: failures(&first),
            retry_failures: failures(&second),
            bricked,
            data_lost,
        };
        let recovery = if wrecked.is_empty() {
            String::new()
        } else {
            format!(
                "; {recovered}/{} wrecked brought back by recovery mode",
                wrecked.len()
            )
        };
        let delta = if plan.deltas {
            format!("; {} rebuilt a delta", rebuilt.len())
        } else {
            String::new()
        };
        let line = format!(
            "case {case:>4}: {} faults; {upgraded_first}/{n} upgraded at once, {upgraded}/{n} after the retry{recovery}{delta}; bricked {bricked}, data lost {data_lost}",
            row.faults.len(),
            n = plan.onus,
        );
        let mut text = line.clone();
        for o in row
            .onus
            .iter()
            .filter(|o| o.committed.as_deref() != Some("V2.0"))
        {
            let (result, why) = o
                .retry
                .clone()
                .or(o.first.clone())
                .unwrap_or((OnuResult::Unfinished, "no report".into()));
            let _ = write!(text, "\n    ONU {}: {} ({why})", o.id, result.word());
        }
        if progress {
            eprintln!("soak: {text}");
        }
        lines += &text;
        lines.push('\n');
        out.runs.push(row);
    }
    out.duration_s = started.elapsed().as_secs_f64();
    let recovery = if plan.recovery {
        format!(
            ", wrecked {} ({} brought back by recovery mode over TFTP and upgraded)",
            out.wrecked, out.recovered
        )
    } else {
        String::new()
    };
    let delta = if plan.deltas {
        format!(", {} rebuilt from a delta package", out.delta_onus)
    } else {
        String::new()
    };
    out.summary = format!(
        "{lines}\ncases {}, ONUs {}, upgraded {} ({} at once, {} after the retry){recovery}{delta}, bricked {}, data lost {}, in {:.0} s\n",
        out.cases,
        out.onus,
        out.upgraded,
        out.upgraded_first,
        out.upgraded.saturating_sub(out.upgraded_first),
        out.bricked,
        out.data_lost,
        out.duration_s
    );
    Ok(out)
}

/// The report of a run that ended.
fn report_of(r: &Result<crate::run::RunOutcome, String>) -> Option<&RunReport> {
    r.as_ref().ok().map(|o| &o.report)
}

/// ONUs of a run the OLT reports as `result`.
fn result_count(report: &RunReport, result: OnuResult) -> u32 {
    report.olt.as_ref().map_or(0, |o| {
        o.onus.iter().filter(|onu| onu.result == result).count() as u32
    })
}

/// What ONU `id` ended as in a case.
fn onu_row(id: u16, first: Option<&RunReport>, retry: Option<&RunReport>) -> OnuRow {
    let result = |r: Option<&RunReport>| {
        r.and_then(|r| r.olt.as_ref())
            .and_then(|o| o.onus.iter().find(|onu| onu.id == id))
            .map(|onu| (onu.result, onu.reason.clone()))
    };
    let last = retry.or(first);
    let version = |committed: bool| {
        last.and_then(|r| r.flash.get(&id)).and_then(|f| {
            f.slots
                .iter()
                .find(|s| if committed { s.committed } else { s.active })
                .and_then(|s| s.version.clone())
        })
    };
    OnuRow {
        id,
        first: result(first),
        retry: result(retry),
        committed: version(true),
        active: version(false),
    }
}

/// ONUs of a run that would not boot.
fn count_unbootable(report: &RunReport) -> u32 {
    report.flash.values().filter(|f| !f.bootable).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_read_every_onus_flash() {
        use crate::run::fixtures::{flash, on_v1, run_report, upgraded};
        let mut broken = flash(Some(("V2.0", "x")), 1, 1);
        broken.slots[1].verifies = false;
        broken.bootable = false;
        let rep = run_report(
            None,
            [
                (1, upgraded()),
                (2, on_v1()),
                (3, flash(Some(("V2.0", "x")), 0, 1)),
                (4, broken),
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(on_version(&rep, "V2.0"), 2, "ONUs 1 and 4");
        assert_eq!(on_version(&rep, "V1.0"), 1);
        assert_eq!(lost(&rep), 1);
        assert_eq!(count_unbootable(&rep), 1);
    }

    #[test]
    fn cases_are_valid_scenarios_and_the_same_for_the_same_seed() {
        let plan = |seed| SoakPlan {
            cases: 20,
            seed,
            onus: 8,
            size: 20_000,
            extended: false,
            recovery: false,
            deltas: false,
        };
        for case in 0..20 {
            let t = case_toml(&plan(7), case);
            assert_eq!(t, case_toml(&plan(7), case));
            parse(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
            let r = retry_toml(&t);
            assert!(!r.contains("[[faults]]"), "{r}");
            assert!(r.contains("retry_failed = true"), "{r}");
            parse(&r).unwrap_or_else(|e| panic!("{e}\n{r}"));
        }
        assert_ne!(case_toml(&plan(7), 0), case_toml(&plan(8), 0));
        let extended = SoakPlan {
            extended: true,
            ..plan(7)
        };
        parse(&case_toml(&extended, 3)).unwrap();
        // Without recovery, no case wrecks an ONU (and the cases of a seed stay as they were).
        for case in 0..20 {
            assert!(!case_toml(&plan(7), case).contains("[golden]"));
            assert!(!case_toml(&plan(7), case).contains("deltas"));
        }
    }

    #[test]
    fn delta_cases_put_the_onus_on_three_bases_and_cut_power_inside_the_rebuild() {
        let plan = SoakPlan {
            cases: 30,
            seed: 5,
            onus: 9,
            size: 20_000,
            extended: false,
            recovery: false,
            deltas: true,
        };
        let mut in_rebuild = std::collections::BTreeMap::new();
        for case in 0..30 {
            let t = case_toml(&plan, case);
            let s = parse(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert_eq!(s.image.deltas, ["V1.0", "V1.1"], "{t}");
            let version = |id: u16| {
                s.topology
                    .groups
                    .iter()
                    .rev()
                    .find(|g| g.onus.resolve(9).contains(&id))
                    .and_then(|g| g.version.clone())
            };
            let bases: Vec<Option<String>> = (1..=9).map(version).collect();
            let want = [
                "V1.0", "V1.0", "V1.0", "V1.1", "V1.1", "V1.1", "V1.2", "V1.2", "V1.2",
            ];
            assert_eq!(bases, want.map(|v| Some(v.to_string())), "{t}");
            for p in FaultPoint::DELTA {
                *in_rebuild.entry(p.name()).or_insert(0) += t.matches(p.name()).count();
            }
            // Only the ONUs that get a delta are cut in its rebuild.
            for f in t.split("[[faults]]").skip(1) {
                if FaultPoint::DELTA.iter().any(|p| f.contains(p.name())) {
                    let id: u16 = f
                        .split("onus = \"")
                        .nth(1)
                        .and_then(|x| x.split('"').next())
                        .and_then(|x| x.parse().ok())
                        .unwrap();
                    assert!(id <= 6, "ONU {id} gets the full image: {t}");
                }
            }
            // The retry keeps the bases and the deltas, not the faults.
            let r = parse(&retry_toml(&t)).unwrap();
            assert_eq!(r.image.deltas, s.image.deltas);
            assert_eq!(r.topology.groups.len(), 9);
        }
        // 180 delta ONUs, a third of them cut in the rebuild: each point drawn.
        for (p, n) in &in_rebuild {
            assert!(*n >= 10, "{p}: {n} cuts in {in_rebuild:?}");
        }
    }

    #[test]
    fn recovery_cases_wreck_some_onus_and_keep_them_wrecked_in_the_retry() {
        let plan = SoakPlan {
            cases: 40,
            seed: 3,
            onus: 8,
            size: 20_000,
            extended: false,
            recovery: true,
            deltas: false,
        };
        let (mut wrecked, mut mid_restore) = (0, 0);
        for case in 0..40 {
            let t = case_toml(&plan, case);
            let s = parse(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert_eq!(s.golden.server, crate::spec::GoldenServer::Embedded, "{t}");
            let ids = s.golden.wrecked.as_ref().expect("wrecked ONUs").resolve(8);
            assert!(!ids.is_empty(), "{t}");
            wrecked += ids.len();
            mid_restore += t.matches("mid-golden-restore").count();
            // The retry keeps the server and the set (the runner leaves a reused flash alone).
            let r = parse(&retry_toml(&t)).unwrap();
            assert_eq!(
                r.golden.wrecked.as_ref().map(|w| w.resolve(8)),
                Some(ids.clone())
            );
            assert!(!retry_toml(&t).contains("mid-golden-restore"));
        }
        // About a third of 320 ONUs wrecked, about half of those cut mid-restore.
        assert!((70..=150).contains(&wrecked), "{wrecked} wrecked");
        assert!(
            (wrecked / 4..=wrecked * 3 / 4).contains(&mid_restore),
            "{mid_restore} of {wrecked} cut mid-restore"
        );
    }
}
