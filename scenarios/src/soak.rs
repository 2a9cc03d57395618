//! The soak: many cases of random power cuts and SIGKILLs across every phase of an upgrade,
//! each followed by the operator's retry (`olt rollout --retry-failed`, with the journal the
//! case left), and three numbers: ONUs upgraded after the retry (must be all), ONUs that no
//! longer boot (`bricked`, must be 0) and committed images whose bytes changed (`data_lost`,
//! must be 0). Each case reports what every ONU ended as, and why.

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
    /// ONUs in all.
    pub onus: u32,
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
/// runner's own (every ONU boots).
pub fn case_toml(plan: &SoakPlan, case: u32) -> String {
    let SoakPlan {
        seed,
        onus,
        size,
        extended,
        ..
    } = *plan;
    let mut rng = Rng(seed ^ (u64::from(case) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // Room for the largest cases: every ONU's image over unicast on a loaded machine.
    let limit = (120 + (u64::from(onus) * size as u64) / 20_000).min(crate::spec::TIME_LIMIT_S.max);
    let mut t = format!(
        "name = \"soak-{case}\"\ndescription = \"random faults, case {case} of seed {seed}\"\n\
         seed = {}\ntime_limit_s = {limit}\n\n[topology]\nonus = {onus}\nbusy_ms = 150\n\n\
         [image]\nversion = \"V2.0\"\nsize = {size}\nsecurity_version = 2\n\n\
         [olt]\nmode = \"{}\"\ntimeout_ms = 400\nretries = 6\nextended = {extended}\n",
        seed.wrapping_add(u64::from(case)),
        if rng.below(4) == 0 {
            "unicast"
        } else {
            "multicast"
        }
    );
    let section = if extended { 1965 } else { 31 };
    let windows = size.div_ceil(section * 32) as u64;
    for id in 1..=onus {
        match rng.below(3) {
            0 | 1 => {
                let point = FaultPoint::ALL[rng.below(FaultPoint::ALL.len() as u64) as usize];
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
        .values()
        .filter(|f| {
            f.slots
                .iter()
                .any(|s| s.committed && s.active && s.version.as_deref() == Some(version))
        })
        .count() as u32
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
        onus: 0,
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
        out.cases += 1;
        out.onus += u32::from(plan.onus);
        out.upgraded += upgraded;
        out.upgraded_first += upgraded_first;
        out.bricked += bricked;
        out.data_lost += data_lost;
        let failures = |r: &Result<crate::run::RunOutcome, String>| match r {
            Ok(o) => o.failures.clone(),
            Err(e) => vec![e.clone()],
        };
        let row = CaseRow {
            case,
            scenario: text,
            faults: first_report.map(|r| r.faults.clone()).unwrap_or_default(),
            onus: (1..=plan.onus)
                .map(|id| onu_row(id, first_report, retry_report))
                .collect(),
            first_failures: failures(&first),
            retry_failures: failures(&second),
            bricked,
            data_lost,
        };
        let line = format!(
            "case {case:>4}: {} faults; {upgraded_first}/{n} upgraded at once, {upgraded}/{n} after the retry; bricked {bricked}, data lost {data_lost}",
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
    out.summary = format!(
        "{lines}\ncases {}, ONUs {}, upgraded {} ({} at once, {} after the retry), bricked {}, data lost {}, in {:.0} s\n",
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
    }
}
