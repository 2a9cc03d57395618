//! A fleet scenario's expectations, checked against what the fleet's API recorded (the
//! campaign, its waves, work and results, the events) and what every ONU's flash holds. Some
//! hold whatever the file says: every ONU boots, an ONU whose wave never started never held
//! the new image, every ONU has a result, a PON never had two lease holders at once, and
//! never more PONs ran at once than the cap.

use std::collections::{BTreeMap, BTreeSet};

use onu::status::FlashStatus;
use serde_json::Value;

use super::super::flash;
use super::super::summary::format_set;
use super::super::{Check, Verdict};
use super::Kill;
use crate::spec::{FleetSpec, Scenario};

/// What a run found.
pub(super) struct Found<'a> {
    pub(super) s: &'a Scenario,
    pub(super) f: &'a FleetSpec,
    /// The campaign as the API has it at the end.
    pub(super) detail: &'a Value,
    /// Every event.
    pub(super) events: &'a [Value],
    /// Every ONU's flash, by fleet-wide ONU-ID.
    pub(super) flash: &'a BTreeMap<u16, FlashStatus>,
    /// Fleet-wide ONU-ID -> (OLT, PON).
    pub(super) onus: &'a BTreeMap<u16, (String, u8)>,
    /// The controllers the faults killed.
    pub(super) kills: &'a [Kill],
    /// The campaign did not end within the time limit.
    pub(super) timed_out: bool,
    /// The faults of the file that never happened (their moment never came), in words.
    pub(super) not_done: &'a [String],
    /// The fleet's lease (ms).
    pub(super) lease_ms: u64,
    /// The new image's SHA-256 (hex): what a rebuilt delta must be, byte for byte.
    pub(super) image_sha256: &'a str,
}

fn value(name: &str, expected: String, observed: String, ok: bool) -> Check {
    let text = format!(
        "[{}] {name} = {expected} (found {observed})",
        if ok { "ok" } else { "FAILED" }
    );
    Check {
        name: name.into(),
        expected,
        observed,
        verdict: if ok { Verdict::Held } else { Verdict::Failed },
        ok,
        text,
    }
}

/// A check whose words are a sentence rather than `name = value`.
fn said(name: &str, expected: &str, observed: String, ok: bool) -> Check {
    let text = if ok {
        format!("[ok] {expected}")
    } else {
        format!("[FAILED] {expected} ({observed})")
    };
    Check {
        name: name.into(),
        expected: expected.into(),
        observed,
        verdict: if ok { Verdict::Held } else { Verdict::Failed },
        ok,
        text,
    }
}

fn rows<'a>(d: &'a Value, key: &str) -> Vec<&'a Value> {
    d[key]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn word(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// `olt-1 ONUs 3, 5`, per OLT.
fn named(ids: &[u16], onus: &BTreeMap<u16, (String, u8)>) -> String {
    let mut by_olt: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for id in ids {
        if let Some((olt, _)) = onus.get(id) {
            by_olt.entry(olt).or_default().push(*id);
        }
    }
    by_olt
        .iter()
        .map(|(olt, ids)| format!("{olt} ONU {}", format_set(&ids.iter().copied().collect())))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every expectation, in order.
pub(super) fn check(x: &Found) -> Vec<Check> {
    let d = x.detail;
    let e = &x.f.expect;
    let mut out = Vec::new();
    let state = word(&d["campaign"]["state"]).to_string();
    out.push(said(
        "ended",
        "the campaign ended within time_limit_s, every PON given back",
        if x.timed_out {
            format!("still {state} after {} s", x.s.time_limit_s)
        } else {
            state.clone()
        },
        !x.timed_out,
    ));

    if !x.f.faults.is_empty() {
        out.push(said(
            "faults",
            &format!("every fault of the file happened ({})", x.f.faults.len()),
            format!("never: {}", x.not_done.join(", ")),
            x.not_done.is_empty(),
        ));
    }

    // Every ONU boots.
    let bricked: Vec<u16> = x
        .flash
        .iter()
        .filter(|(_, f)| !f.bootable)
        .map(|(id, _)| *id)
        .collect();
    out.push(value(
        "bricked",
        "0".into(),
        if bricked.is_empty() {
            "0".into()
        } else {
            format!("{}: {}", bricked.len(), named(&bricked, x.onus))
        },
        bricked.is_empty(),
    ));

    // Every ONU of the fleet has its result row.
    let results = rows(d, "results");
    out.push(value(
        "results",
        format!("one per ONU, {}", x.onus.len()),
        results.len().to_string(),
        results.len() == x.onus.len(),
    ));

    if let Some(o) = e.outcome {
        let want = match o {
            crate::spec::Outcome::Completed => "completed",
            crate::spec::Outcome::Halted => "halted",
        };
        let reason = d["campaign"]["halt_reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        out.push(value(
            "outcome",
            want.into(),
            format!("{state}{reason}"),
            state == want,
        ));
    }
    if let Some(k) = e.kill_switch {
        // The kill switch itself, fleet-wide and mid-wave, not a wave's health gate (the
        // dashboard shows both as tripped).
        let tripped = d["campaign"]["halt_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("kill switch"));
        out.push(value(
            "kill switch tripped",
            k.to_string(),
            tripped.to_string(),
            tripped == k,
        ));
    }
    if let Some(want) = &e.waves {
        let got: Vec<&str> = rows(d, "waves").iter().map(|w| word(&w["state"])).collect();
        let want: Vec<&str> = want.iter().map(|w| w.word()).collect();
        out.push(value("waves", want.join(", "), got.join(", "), got == want));
    }
    let count_of =
        |word: &str| -> u32 { d["summary"]["results"][word].as_u64().unwrap_or(0) as u32 };
    for (key, want) in [
        ("upgraded", e.upgraded),
        ("failed", e.failed),
        ("halted", e.halted),
        ("untouched", e.untouched),
    ] {
        if let Some(want) = want {
            let n = count_of(key);
            out.push(value(key, want.to_string(), n.to_string(), want.holds(n)));
        }
    }
    // Delta packages: which package each ONU was sent, as the results record it.
    let sent = |pick: fn(&str) -> bool| {
        results
            .iter()
            .filter(|r| pick(r["package"].as_str().unwrap_or("")))
            .count() as u32
    };
    for (key, want, n) in [
        ("delta ONUs", e.delta_onus, sent(|p| p.starts_with("delta"))),
        (
            "fell back",
            e.fell_back,
            sent(|p| p.ends_with("(delta refused)")),
        ),
    ] {
        if let Some(want) = want {
            out.push(value(key, want.to_string(), n.to_string(), want.holds(n)));
        }
    }
    if !x.s.image.deltas.is_empty() {
        // Every ONU that committed the new version holds it byte for byte (a rebuilt delta
        // included), as its bootloader reads the flash back.
        let wrong: Vec<u16> = x
            .flash
            .iter()
            .filter(|(_, f)| {
                flash::committed(f).is_some_and(|c| {
                    c.version.as_deref() == Some(x.s.image.version.as_str())
                        && c.sha256 != x.image_sha256
                })
            })
            .map(|(id, _)| *id)
            .collect();
        out.push(said(
            "rebuilt byte for byte",
            &format!(
                "every ONU on {} holds the image byte for byte",
                x.s.image.version
            ),
            format!("other bytes on {}", named(&wrong, x.onus)),
            wrong.is_empty(),
        ));
    }
    let canaries: Vec<&Value> = results.iter().copied().filter(|r| r["wave"] == 0).collect();
    let is_canary_wave = rows(d, "waves")
        .first()
        .is_some_and(|w| w["kind"] == "canary");
    if let Some(allowed) = &e.canary {
        let allowed: Vec<&str> = allowed.iter().map(|r| result_word(*r)).collect();
        let bad: Vec<String> = canaries
            .iter()
            .filter(|r| !allowed.contains(&"any") && !allowed.contains(&word(&r["result"])))
            .map(|r| {
                format!(
                    "{} ONU {} {}",
                    word(&r["olt"]),
                    r["onu_id"],
                    word(&r["result"])
                )
            })
            .collect();
        let no_reason = canaries
            .iter()
            .filter(|r| r["result"] != "upgraded" && r["reason"].as_str().is_none_or(str::is_empty))
            .count();
        out.push(said(
            "canary results",
            &format!(
                "every canary ONU ended {}, each failure with its reason",
                allowed.join(" or ")
            ),
            if !is_canary_wave {
                "there was no canary wave".into()
            } else if bad.is_empty() {
                format!("{no_reason} without a reason")
            } else {
                bad.join(", ")
            },
            is_canary_wave && bad.is_empty() && no_reason == 0 && !canaries.is_empty(),
        ));
    }
    if let Some(want) = e.canary_olts {
        let olts: BTreeSet<&str> = canaries.iter().map(|r| word(&r["olt"])).collect();
        out.push(value(
            "OLTs with a canary",
            want.to_string(),
            olts.len().to_string(),
            olts.len() == usize::from(want),
        ));
    }
    for (key, want) in [("committed", &e.committed), ("active", &e.active)] {
        if let Some(want) = want {
            let wrong: Vec<u16> = x
                .flash
                .iter()
                .filter(|(_, f)| {
                    let slot = if key == "committed" {
                        flash::committed(f)
                    } else {
                        flash::active(f)
                    };
                    flash::version(slot).as_deref() != Some(want.as_str())
                })
                .map(|(id, _)| *id)
                .collect();
            out.push(value(
                &format!("every ONU {key}"),
                want.clone(),
                if wrong.is_empty() {
                    want.clone()
                } else {
                    format!("not on {}", named(&wrong, x.onus))
                },
                wrong.is_empty(),
            ));
        }
    }

    // An ONU whose wave never started never held the new image.
    let new = &x.s.image.version;
    let touched: Vec<u16> = results
        .iter()
        .filter(|r| r["result"] == "untouched")
        .filter_map(|r| {
            let id = r["onu_id"].as_u64()? as u16;
            let f = x.flash.get(&id)?;
            f.slots
                .iter()
                .any(|s| s.valid && s.version.as_deref() == Some(new.as_str()))
                .then_some(id)
        })
        .collect();
    out.push(said(
        "untouched ONUs",
        &format!("no ONU left untouched holds {new}"),
        named(&touched, x.onus),
        touched.is_empty(),
    ));

    // A PON's lease has one holder at a time.
    let twice = granted_twice(x.events);
    out.push(said(
        "one holder",
        "no PON was leased to two controllers at once",
        twice.join("; "),
        twice.is_empty(),
    ));

    let cap = x.f.campaign.max_parallel_pons;
    if cap > 0 {
        let most = most_at_once(d);
        out.push(value(
            "PONs at once",
            format!("at most {cap}"),
            most.to_string(),
            most <= cap as usize,
        ));
    }

    if e.takeover {
        for k in x.kills {
            out.extend(takeover(x, k));
        }
    }
    out
}

/// The API's word for a result expectation.
fn result_word(r: crate::spec::ResultExpect) -> &'static str {
    use crate::spec::ResultExpect as R;
    match r {
        R::Any => "any",
        R::Upgraded => "upgraded",
        R::Skipped => "skipped",
        R::Refused => "refused",
        R::Failed => "failed",
        R::Halted => "halted",
        R::Untouched => "untouched",
    }
}

/// The work whose lease was granted again while it was held, in words.
fn granted_twice(events: &[Value]) -> Vec<String> {
    let mut held: BTreeMap<(String, u64, String), bool> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        let wave = word(&e["detail"])
            .strip_prefix("wave ")
            .and_then(|r| r.split(':').next())
            .unwrap_or("?")
            .to_string();
        let key = (
            word(&e["olt"]).to_string(),
            e["pon"].as_u64().unwrap_or(0),
            wave,
        );
        match word(&e["kind"]) {
            "lease-granted" if held.insert(key.clone(), true) == Some(true) => {
                out.push(format!("{} PON {} wave {}", key.0, key.1, key.2));
            }
            "lease-expired" | "lease-released" | "pon-finished" => {
                held.insert(key, false);
            }
            _ => {}
        }
    }
    out
}

/// The most work rows that ran at the same moment (by their start and finish times).
fn most_at_once(d: &Value) -> usize {
    let spans: Vec<(i64, i64)> = rows(d, "work")
        .iter()
        .filter_map(|w| Some((w["started_at"].as_i64()?, w["finished_at"].as_i64()?)))
        .collect();
    spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

/// The PON a killed controller held was taken over: by the OLT's other controller, only
/// after the lease ended, resumed from the store, the ONUs committed before kept as they were.
fn takeover(x: &Found, k: &Kill) -> Vec<Check> {
    let d = x.detail;
    let Some(w) = &k.work else {
        return vec![said(
            "takeover",
            &format!("{} held a PON when it was killed", k.controller),
            "it held nothing".into(),
            false,
        )];
    };
    let mut out = Vec::new();
    let wave = w.wave + 1;
    let pon_name = format!("{} PON {} in wave {wave}", k.olt, w.pon);
    out.push(said(
        "takeover: one holder while alive",
        &format!("{pon_name} had one lease until its holder was killed (its standby got nothing)"),
        format!("{} leases", w.attempts),
        w.attempts == 1,
    ));
    // The story of that PON after the kill.
    let story: Vec<(&str, i64, &str)> = x
        .events
        .iter()
        .filter(|e| {
            e["olt"] == k.olt.as_str()
                && e["pon"] == u64::from(w.pon)
                && word(&e["detail"]).starts_with(&format!("wave {wave}:"))
        })
        .map(|e| {
            (
                word(&e["kind"]),
                e["at"].as_i64().unwrap_or(0),
                word(&e["detail"]),
            )
        })
        .filter(|(kind, _, _)| ["lease-granted", "lease-expired", "pon-resumed"].contains(kind))
        .collect();
    let kinds: Vec<&str> = story.iter().map(|(k, _, _)| *k).collect();
    let want = [
        "lease-granted",
        "lease-expired",
        "lease-granted",
        "pon-resumed",
    ];
    out.push(value(
        &format!("takeover: events of {pon_name}"),
        want.join(", "),
        kinds.join(", "),
        kinds.get(..4) == Some(&want[..]),
    ));
    let regranted = story
        .iter()
        .filter(|(kind, _, _)| *kind == "lease-granted")
        .nth(1);
    let after_ms = regranted.map(|(_, at, _)| at - k.at_ms);
    out.push(said(
        "takeover: after the lease",
        &format!(
            "{pon_name} was offered again only after the killed holder's lease ran out (at least half of {} ms)",
            x.lease_ms
        ),
        match after_ms {
            Some(ms) => format!("leased again {ms} ms after the kill"),
            None => "never leased again".into(),
        },
        after_ms.is_some_and(|ms| ms >= (x.lease_ms / 2) as i64),
    ));
    let by_other =
        regranted.is_some_and(|(_, _, detail)| !detail.contains(&format!(" {} ", k.controller)));
    out.push(said(
        "takeover: by the standby",
        &format!(
            "another controller than {} took {pon_name} over",
            k.controller
        ),
        regranted.map_or("nobody".into(), |(_, _, d)| d.to_string()),
        by_other,
    ));
    // The ONUs upgraded before the kill keep their record: nobody upgraded them again.
    let results = rows(d, "results");
    let changed: Vec<String> = k
        .upgraded_before
        .iter()
        .filter_map(|u| {
            let r = results
                .iter()
                .find(|r| r["olt"] == k.olt.as_str() && r["onu_id"] == u64::from(u.onu_id))?;
            (r["controller"] != u.controller.as_str()
                || r["finished_at"].as_i64() != Some(u.finished_at)
                || r["result"] != "upgraded")
                .then(|| {
                    format!(
                        "ONU {}: {} by {} at {}, recorded by {} at {} before",
                        u.onu_id,
                        word(&r["result"]),
                        word(&r["controller"]),
                        r["finished_at"],
                        u.controller,
                        u.finished_at
                    )
                })
        })
        .collect();
    out.push(said(
        "takeover: committed ONUs untouched",
        &format!(
            "the {} ONUs of {} upgraded before the kill kept their record",
            k.upgraded_before.len(),
            k.olt
        ),
        changed.join(", "),
        changed.is_empty(),
    ));
    // The rest of that PON was finished by another controller.
    let before: BTreeSet<u16> = k.upgraded_before.iter().map(|u| u.onu_id).collect();
    let finished_by: Vec<String> = results
        .iter()
        .filter(|r| {
            r["olt"] == k.olt.as_str()
                && r["pon"] == u64::from(w.pon)
                && r["wave"] == u64::from(w.wave)
                && r["onu_id"]
                    .as_u64()
                    .is_some_and(|id| !before.contains(&(id as u16)))
        })
        .filter(|r| r["controller"] == k.controller.as_str())
        .map(|r| format!("ONU {}", r["onu_id"]))
        .collect();
    out.push(said(
        "takeover: finished by the standby",
        &format!(
            "no ONU of {pon_name} was last reported by the killed {}",
            k.controller
        ),
        finished_by.join(", "),
        finished_by.is_empty(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Count;
    use serde_json::json;

    #[test]
    fn a_lease_granted_again_while_held_is_found() {
        let ev = |kind: &str, detail: &str| json!({"olt": "olt-1", "pon": 1, "kind": kind, "detail": detail});
        let fine = [
            ev("lease-granted", "wave 1: olt-1 PON 1 leased to a"),
            ev("lease-expired", "wave 1: a's lease on olt-1 PON 1 ended"),
            ev("lease-granted", "wave 1: olt-1 PON 1 leased to b"),
            ev("pon-finished", "wave 1: olt-1 PON 1 by b: 4 upgraded"),
            ev("lease-granted", "wave 2: olt-1 PON 1 leased to b"),
        ];
        assert!(granted_twice(&fine).is_empty());
        let twice = [
            ev("lease-granted", "wave 1: olt-1 PON 1 leased to a"),
            ev("lease-granted", "wave 1: olt-1 PON 1 leased to b"),
        ];
        assert_eq!(granted_twice(&twice), ["olt-1 PON 1 wave 1"]);
    }

    #[test]
    fn the_most_pons_at_once_counts_overlapping_work() {
        let d = json!({"work": [
            {"started_at": 0, "finished_at": 10},
            {"started_at": 5, "finished_at": 15},
            {"started_at": 10, "finished_at": 20},
            {"started_at": 30, "finished_at": null},
        ]});
        assert_eq!(most_at_once(&d), 2);
    }

    #[test]
    fn a_count_is_exact_or_a_range() {
        assert!(Count::Exactly(3).holds(3) && !Count::Exactly(3).holds(4));
        let r = Count::Between {
            min: Some(3),
            max: None,
        };
        assert!(r.holds(3) && r.holds(9) && !r.holds(2));
        assert_eq!(r.to_string(), "at least 3");
    }
}
