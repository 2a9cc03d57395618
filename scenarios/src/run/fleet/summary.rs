//! The words of a fleet scenario: what ran, how the campaign went wave by wave, the ONUs by
//! result, the failures with their reasons, the faults, the store, the expectations.

use std::fmt::Write as _;

use serde_json::Value;

use super::{FleetReport, WaveTime};
use crate::spec::Scenario;

fn word(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// Each wave's kind, state, size and times, from the campaign the API gave.
pub(super) fn wave_times(d: &Value) -> Vec<WaveTime> {
    let work = d["work"].as_array().cloned().unwrap_or_default();
    let results = d["results"].as_array().cloned().unwrap_or_default();
    d["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let n = w["wave"].as_u64().unwrap_or(0);
            let since = |key: &str| -> Option<f64> {
                Some((w[key].as_i64()? - w["started_at"].as_i64()?) as f64 / 1000.0)
            };
            WaveTime {
                wave: n + 1,
                kind: word(&w["kind"]).into(),
                state: word(&w["state"]).into(),
                pons: work.iter().filter(|x| x["wave"] == n).count(),
                onus: results.iter().filter(|x| x["wave"] == n).count(),
                run_s: since("done_at"),
                judged_s: since("finished_at"),
            }
        })
        .collect()
}

/// `12.3 s`, or `-`.
fn secs(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{s:.1} s"))
}

/// A size in bytes, in KiB or MiB.
fn size(bytes: i64) -> String {
    if bytes >= 10 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{} KiB", (bytes + 1023) / 1024)
    }
}

/// `4 OLTs, each with 2 PON ports of 8 ONUs`.
pub(super) fn shape(olts: usize, pons: u8, per_pon: u16) -> String {
    let s = |n: usize| if n == 1 { "" } else { "s" };
    format!(
        "{olts} OLT{}, each with {pons} PON port{} of {per_pon} ONU{}",
        s(olts),
        s(usize::from(pons)),
        s(usize::from(per_pon))
    )
}

/// The summary a person reads.
pub(super) fn render(s: &Scenario, r: &FleetReport) -> String {
    let mut o = String::new();
    let d = &r.campaign;
    let _ = writeln!(o, "Scenario {}: {}", s.name, s.description.trim());
    let _ = writeln!(
        o,
        "{} ONU processes on {}; {} controllers ({}); the fleet on {}; image {}, {} mode",
        r.onus,
        shape(usize::from(r.olts), r.pons_per_olt, r.onus_per_pon),
        r.controllers.len(),
        r.controllers.join(", "),
        r.database,
        s.image.version,
        s.olt.mode.name()
    );
    let reason = d["campaign"]["halt_reason"]
        .as_str()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "Campaign {}{reason} in {:.1} s; {:.1} s in all (the ONUs in the inventory after {:.1} s)",
        word(&d["campaign"]["state"]),
        r.campaign_s,
        r.duration_s,
        r.inventory_s
    );
    let k = &d["summary"]["kill_switch"];
    let _ = writeln!(
        o,
        "Kill switch: {}: {} of {} ONUs failed in the waves started (it trips above {:.0} %)",
        if k["tripped"] == true {
            "TRIPPED"
        } else {
            "not tripped"
        },
        k["failed"],
        k["of"],
        k["threshold"].as_f64().unwrap_or(0.0) * 100.0
    );
    let _ = writeln!(o, "\nwave  kind    state      PONs  ONUs  ran      judged");
    for w in &r.waves {
        let _ = writeln!(
            o,
            "{:<5} {:<7} {:<10} {:>4} {:>5}  {:<8} {}",
            w.wave,
            w.kind,
            w.state,
            w.pons,
            w.onus,
            secs(w.run_s),
            secs(w.judged_s)
        );
    }
    let _ = writeln!(o, "\nresult      count");
    for (result, n) in d["summary"]["results"].as_object().into_iter().flatten() {
        let _ = writeln!(o, "{result:<11} {n:>5}");
    }
    // With delta packages: which package the ONUs were sent.
    let mut packages: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in d["results"].as_array().into_iter().flatten() {
        if let Some(p) = r["package"].as_str() {
            *packages.entry(p).or_default() += 1;
        }
    }
    if packages.keys().any(|p| *p != "full") {
        let _ = writeln!(
            o,
            "
package                 ONUs"
        );
        for (p, n) in &packages {
            let _ = writeln!(o, "{p:<22} {n:>5}");
        }
    }
    let failures: Vec<&Value> = d["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| matches!(r["result"].as_str(), Some("failed" | "halted")))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(o, "\nFailures:");
        for f in failures.iter().take(20) {
            let _ = writeln!(
                o,
                "  {} PON {} ONU {} ({}), wave {}: {}: {}",
                word(&f["olt"]),
                f["pon"],
                f["onu_id"],
                word(&f["serial"]),
                f["wave"].as_u64().unwrap_or(0) + 1,
                word(&f["result"]),
                word(&f["reason"])
            );
        }
        if failures.len() > 20 {
            let _ = writeln!(o, "  ... and {} more", failures.len() - 20);
        }
    }
    if !r.faults.is_empty() {
        let _ = writeln!(o, "\nFaults, as they happened (from the campaign's start):");
        for f in &r.faults {
            let _ = writeln!(o, "  {f}");
        }
    }
    let rows: Vec<String> = r.store["rows"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    let _ = writeln!(
        o,
        "\nStore ({}, {}): {}",
        r.database,
        r.store["size_bytes"].as_i64().map_or("size ?".into(), size),
        rows.join(", ")
    );
    let _ = writeln!(o, "\nExpectations:");
    for c in &r.checks {
        let _ = writeln!(o, "  {}", c.text);
    }
    let failed = r.checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        let _ = writeln!(o, "\nPASSED: {} expectations held", r.checks.len());
    } else {
        let _ = writeln!(
            o,
            "\nFAILED: {failed} of {} expectations did not hold",
            r.checks.len()
        );
    }
    o
}
