//! `scenario project`: the rollout projected onto a real GPON ([`crate::projection`]): the real
//! OLT engine and ONU cores over a timing model, on a virtual clock, in each mode, for one or
//! several ONU speed profiles. Writes a JSON file of the figures and a Markdown table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::projection::{PonModel, ProjectionCase, project};
use anyhow::{Result, bail};
use olt::engine::Mode;
use omci_codec::Format;
use serde_json::{Value, json};

/// An ONU speed profile: the per-section and per-window (ack) processing times.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Its name in the table.
    pub name: String,
    /// Per Download section.
    pub section: Duration,
    /// Extra per window (the AR section: check, flash write, answer).
    pub ack: Duration,
    /// A cap on the OLT's sections per second.
    pub olt_sections_per_s: Option<u32>,
}

/// The profiles `scenario bench` projects: a fast ONU, a typical one, and one calibrated on
/// the budget open OLT stacks give (60 minutes per 4 MB for one ONU); the typical ONU once
/// more behind an OLT whose OMCI path takes at most 2 000 sections per second.
pub fn default_profiles() -> Vec<Profile> {
    let p = |name: &str, section_us: u64, ack_ms: u64, cap: Option<u32>| Profile {
        name: name.into(),
        section: Duration::from_micros(section_us),
        ack: Duration::from_millis(ack_ms),
        olt_sections_per_s: cap,
    };
    vec![
        p("fast ONU (0.1 ms/section, 5 ms/window)", 100, 5, None),
        p("typical ONU (1 ms/section, 20 ms/window)", 1000, 20, None),
        p(
            "typical ONU, OLT capped at 2000 sections/s",
            1000,
            20,
            Some(2000),
        ),
        p(
            "slow ONU (25 ms/section, 50 ms/window: 4 MB in 60 min)",
            25_000,
            50,
            None,
        ),
    ]
}

/// Projects `bytes` of image to `onus` ONUs in both modes for each profile, the runs spread
/// over the machine's cores; prints a line per run on stderr. `extended`: extended frames
/// (1965-byte sections, windows of 8).
pub fn projections(
    base: &PonModel,
    profiles: &[Profile],
    onus: u16,
    bytes: usize,
    extended: bool,
) -> Result<Value> {
    let mut cases = Vec::new();
    for p in profiles {
        for mode in ["multicast", "unicast"] {
            cases.push((p.clone(), mode));
        }
    }
    let next = std::sync::Mutex::new(0usize);
    let results: std::sync::Mutex<Vec<Option<Result<Value>>>> =
        std::sync::Mutex::new(cases.iter().map(|_| None).collect());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(cases.len()) {
            scope.spawn(|| {
                loop {
                    let i = {
                        let Ok(mut n) = next.lock() else { return };
                        *n += 1;
                        *n - 1
                    };
                    let Some((p, mode)) = cases.get(i) else {
                        return;
                    };
                    let r = one(base, p, mode, onus, bytes, extended);
                    if let Ok(mut all) = results.lock() {
                        all[i] = Some(r);
                    }
                }
            });
        }
    });
    let mut rows = Vec::new();
    for r in results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a projection panicked"))?
    {
        rows.push(r.unwrap_or_else(|| Err(anyhow::anyhow!("a projection did not run")))?);
    }
    Ok(json!({ "model": base, "runs": rows }))
}

fn one(
    base: &PonModel,
    p: &Profile,
    name: &str,
    onus: u16,
    bytes: usize,
    extended: bool,
) -> Result<Value> {
    let model = PonModel {
        onu_section: p.section,
        onu_ack: p.ack,
        olt_sections_per_s: p.olt_sections_per_s,
        ..base.clone()
    };
    let case = ProjectionCase {
        onus,
        image_bytes: bytes,
        mode: if name == "multicast" {
            Mode::Multicast
        } else {
            Mode::Unicast
        },
        format: if extended {
            Format::Extended
        } else {
            Format::Baseline
        },
        window: if extended { 8 } else { 32 },
    };
    let t = Instant::now();
    let r = project(&model, &case, Duration::from_secs(30 * 24 * 3600))?;
    if r.upgraded != usize::from(onus) {
        bail!(
            "projection {} {name}: {} of {onus} ONUs upgraded",
            p.name,
            r.upgraded
        );
    }
    eprintln!(
        "project: {} {name}: image everywhere after {:.0} s of PON time, rollout {:.0} s ({:.1} s to compute)",
        p.name,
        r.image_everywhere_s,
        r.rollout_s,
        t.elapsed().as_secs_f64()
    );
    Ok(json!({
        "profile": p.name,
        "mode": name,
        "onus": onus,
        "image_bytes": bytes,
        "format": if extended { "extended" } else { "baseline" },
        "onu_section_ms": p.section.as_secs_f64() * 1e3,
        "onu_ack_ms": p.ack.as_secs_f64() * 1e3,
        "olt_sections_per_s": p.olt_sections_per_s,
        "result": r,
    }))
}

fn human(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}

/// The Markdown table of [`projections`]: per profile, both modes side by side.
pub fn table(v: &Value) -> String {
    let mut o = String::from(
        "| ONU profile | image to every ONU, multicast | unicast | unicast / multicast | whole rollout, multicast | unicast | downstream busy, multicast | unicast |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let runs = v["runs"].as_array().cloned().unwrap_or_default();
    let mut profiles: Vec<String> = Vec::new();
    for r in &runs {
        let p = r["profile"].as_str().unwrap_or("?").to_string();
        if !profiles.contains(&p) {
            profiles.push(p);
        }
    }
    for p in profiles {
        let get = |mode: &str, key: &str| {
            runs.iter()
                .find(|r| r["profile"] == p.as_str() && r["mode"] == mode)
                .and_then(|r| r["result"][key].as_f64())
                .unwrap_or(f64::NAN)
        };
        let (m, u) = (
            get("multicast", "image_everywhere_s"),
            get("unicast", "image_everywhere_s"),
        );
        let _ = writeln!(
            o,
            "| {p} | {} | {} | {:.1}× | {} | {} | {} | {} |",
            human(m),
            human(u),
            u / m,
            human(get("multicast", "rollout_s")),
            human(get("unicast", "rollout_s")),
            human(get("multicast", "downstream_busy_s")),
            human(get("unicast", "downstream_busy_s")),
        );
    }
    o
}
