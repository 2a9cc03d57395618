//! The soak: many cases of random power cuts and SIGKILLs across every phase of an upgrade,
//! each followed by a clean retry, and two numbers that must stay zero: ONUs that no longer
//! boot (`bricked`) and committed images whose bytes changed (`data_lost`).

use std::ffi::OsString;
use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

use crate::run::{RunOptions, RunReport, run};
use crate::spec::{FaultPoint, parse};

/// How a soak ran.
#[derive(Debug)]
pub struct SoakOutcome {
    /// Cases run.
    pub cases: u32,
    /// ONUs committed and active on the new image after their case's retry.
    pub upgraded: u32,
    /// ONUs in all.
    pub onus: u32,
    /// ONUs that did not boot at the end of a case (must be 0).
    pub bricked: u32,
    /// ONUs whose committed image no longer verifies (its bytes changed; must be 0).
    pub data_lost: u32,
    /// The JSON report.
    pub report: Value,
    /// The human summary.
    pub summary: String,
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
pub fn case_toml(seed: u64, case: u32, onus: u16, size: usize) -> String {
    let mut rng = Rng(seed ^ (u64::from(case) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = format!(
        "name = \"soak-{case}\"\ndescription = \"random faults, case {case} of seed {seed}\"\n\
         seed = {}\ntime_limit_s = 120\n\n[topology]\nonus = {onus}\nbusy_ms = 150\n\n\
         [image]\nversion = \"V2.0\"\nsize = {size}\nsecurity_version = 2\n\n\
         [olt]\nmode = \"{}\"\ntimeout_ms = 400\nretries = 6\n",
        seed.wrapping_add(u64::from(case)),
        if rng.below(4) == 0 {
            "unicast"
        } else {
            "multicast"
        }
    );
    let windows = size.div_ceil(31 * 32) as u64;
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

/// The retry of a case: the same ONUs (their flash as the case left it), no fault; every ONU
/// must end committed and active on the new image.
fn retry_toml(case_toml: &str) -> String {
    let head = case_toml
        .split("\n[[faults]]")
        .next()
        .unwrap_or(case_toml)
        .split("\n[[expect.onus]]")
        .next()
        .unwrap_or(case_toml)
        .replace("name = \"soak-", "name = \"retry-");
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

/// Runs `cases` cases of `onus` ONUs.
pub async fn soak(
    cases: u32,
    seed: u64,
    onus: u16,
    size: usize,
    program: &[OsString],
    progress: bool,
) -> Result<SoakOutcome> {
    let mut out = SoakOutcome {
        cases: 0,
        upgraded: 0,
        onus: 0,
        bricked: 0,
        data_lost: 0,
        report: Value::Null,
        summary: String::new(),
    };
    let mut rows = Vec::new();
    let mut lines = String::new();
    for case in 0..cases {
        let dir = tempfile::Builder::new().prefix("soak-").tempdir()?;
        let text = case_toml(seed, case, onus, size);
        let faulty = parse(&text).map_err(|e| anyhow::anyhow!("case {case}: {e}"))?;
        let opts = RunOptions {
            keep: Some(dir.path().to_path_buf()),
            progress: false,
            ..RunOptions::default()
        };
        let first = run(&faulty, &opts, program).await?;
        let retry = parse(&retry_toml(&text)).map_err(|e| anyhow::anyhow!("retry {case}: {e}"))?;
        let second = run(&retry, &opts, program).await?;
        let bricked = count_unbootable(&first.report) + count_unbootable(&second.report);
        let data_lost = lost(&first.report) + lost(&second.report);
        out.cases += 1;
        out.onus += u32::from(onus);
        out.upgraded += on_version(&second.report, "V2.0");
        out.bricked += bricked;
        out.data_lost += data_lost;
        let line = format!(
            "case {case:>3}: {} faults, then {}: retry {}, bricked {bricked}, data lost {data_lost}",
            first.report.faults.len(),
            if first.passed { "boots" } else { "NOT BOOTING" },
            if second.passed {
                "upgraded all"
            } else {
                "FAILED"
            },
        );
        if progress {
            eprintln!("soak: {line}");
        }
        lines += &line;
        lines.push('\n');
        rows.push(json!({
            "case": case,
            "scenario": text,
            "faults": first.report.faults,
            "first_failures": first.failures,
            "retry_failures": second.failures,
            "bricked": bricked,
            "data_lost": data_lost,
        }));
    }
    out.summary = format!(
        "{lines}\ncases {}, ONUs {}, upgraded {}, bricked {}, data_lost {}\n",
        out.cases, out.onus, out.upgraded, out.bricked, out.data_lost
    );
    out.report = json!({
        "cases": out.cases,
        "seed": seed,
        "onus_per_case": onus,
        "onus": out.onus,
        "upgraded": out.upgraded,
        "bricked": out.bricked,
        "data_lost": out.data_lost,
        "runs": rows,
    });
    Ok(out)
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
        for case in 0..20 {
            let t = case_toml(7, case, 8, 20_000);
            assert_eq!(t, case_toml(7, case, 8, 20_000));
            parse(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
            let r = retry_toml(&t);
            assert!(!r.contains("[[faults]]"), "{r}");
            parse(&r).unwrap_or_else(|e| panic!("{e}\n{r}"));
        }
        assert_ne!(case_toml(7, 0, 8, 20_000), case_toml(8, 0, 8, 20_000));
    }
}
