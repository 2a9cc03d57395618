//! The campaign logic on rows in memory: a fleet simulated without a database or a clock.

use super::*;
use crate::model::{CampaignRow, CampaignSpec, Mode, Target};

fn inventory(olts: usize, pons: u8, onus: u16) -> Vec<InventoryOnu> {
    let mut v = Vec::new();
    for o in 0..olts {
        for p in 1..=pons {
            for id in 1..=onus {
                v.push(InventoryOnu {
                    serial: format!("LABS{:02}{:02}{:04}", o, p, id),
                    olt: format!("olt-{}", o + 1),
                    region: if o % 2 == 0 { "north" } else { "south" }.into(),
                    pon: p,
                    onu_id: id,
                    model: Some("LAB-ONU-1".into()),
                    active_version: Some("V1.0".into()),
                    committed_version: Some("V1.0".into()),
                });
            }
        }
    }
    v
}

fn spec() -> CampaignSpec {
    CampaignSpec {
        name: "c".into(),
        package: "p".into(),
        target: Target::default(),
        canary_percent: 25,
        groups: 2,
        kill_threshold: 0.3,
        wave_soak_ms: 1000,
        health_settle_ms: 0,
        max_parallel_pons: 0,
        start_at: None,
        mode: Mode::Multicast,
        pace: None,
    }
}

fn view(spec: CampaignSpec) -> CampaignView {
    CampaignView {
        campaign: CampaignRow {
            id: 1,
            spec,
            state: CampaignState::Scheduled,
            halt_reason: None,
            package_version: "V2.0".into(),
            package_model: "LAB-ONU-1".into(),
            created_at: Millis(0),
            created_by: "operator".into(),
            started_at: None,
            finished_at: None,
        },
        waves: Vec::new(),
        work: Vec::new(),
        results: Vec::new(),
    }
}

/// Runs the campaign's logic at `now` as the ticker does.
fn tick(v: &mut CampaignView, inv: &[InventoryOnu], now: Millis) -> Vec<Change> {
    let changes = step(v, inv, now);
    for c in &changes {
        apply(v, c, now);
    }
    changes
}

/// Controller `who` of `olt` claims what it may, leased for 5 s.
fn claim(v: &mut CampaignView, olt: &str, who: &str, now: Millis) -> Vec<i64> {
    let got: Vec<i64> = choose_claims(std::slice::from_ref(v), olt, who, now)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    for w in &got {
        lease(v, *w, who, now.plus(5000), now);
    }
    got
}

/// The work's ONUs all end with `result`, and the work is done.
fn finish(v: &mut CampaignView, work: i64, result: impl Fn(u16) -> OnuResult) {
    let w = v.work.iter_mut().find(|w| w.id == work).unwrap();
    w.state = WorkState::Done;
    let (olt, pon, onus) = (w.olt.clone(), w.pon, w.onus.clone());
    for r in v.results.iter_mut() {
        if r.olt == olt && r.pon == pon && onus.contains(&r.onu_id) && r.wave == w.wave {
            r.result = result(r.onu_id);
        }
    }
}

#[test]
fn the_canary_is_spread_one_onu_per_pon_and_the_groups_split_the_pons_evenly() {
    let inv = inventory(4, 2, 4); // 8 PONs, 32 ONUs
    let waves = plan_waves(&inv, 25, 3);
    assert_eq!(waves.len(), 4);
    assert_eq!(waves[0].kind, WaveKind::Canary);
    // 25 % of 32 = 8 canaries, one on each of the 8 PONs.
    assert_eq!(waves[0].work.len(), 8);
    assert!(
        waves[0]
            .work
            .iter()
            .all(|w| w.onus.len() == 1 && w.onus[0].0 == 1)
    );
    // The 8 PONs' other 24 ONUs, split 3 + 3 + 2 PONs.
    let sizes: Vec<usize> = waves[1..].iter().map(|w| w.work.len()).collect();
    assert_eq!(sizes, vec![3, 3, 2]);
    let mut all: Vec<String> = waves
        .iter()
        .flat_map(|w| {
            w.work
                .iter()
                .flat_map(|p| p.onus.iter().map(|o| o.1.clone()))
        })
        .collect();
    all.sort();
    let mut want: Vec<String> = inv.iter().map(|o| o.serial.clone()).collect();
    want.sort();
    assert_eq!(all, want, "every target in exactly one wave");
    // A bigger canary takes a second ONU of each PON in turn.
    let w = plan_waves(&inv, 40, 1);
    assert_eq!(w[0].work.iter().map(|p| p.onus.len()).sum::<usize>(), 13);
    assert_eq!(w[0].work[0].onus.len(), 2);
    // No canary: one group per PON at most.
    assert_eq!(plan_waves(&inv, 0, 64).len(), 8);
    assert_eq!(plan_waves(&inv[..1], 50, 2).len(), 1);
    assert!(plan_waves(&[], 10, 2).is_empty());
}

#[test]
fn targets_are_chosen_by_model_version_olt_and_region() {
    let mut inv = inventory(2, 1, 3);
    inv[0].model = Some("OTHER".into());
    inv[1].active_version = Some("V2.0".into());
    inv[1].committed_version = Some("V2.0".into());
    inv[2].active_version = Some("V0.9".into());
    let t = Target::default();
    let got = targets(&t, "LAB-ONU-1", "V2.0", &inv);
    assert_eq!(
        got.len(),
        4,
        "other model and the one already done left out"
    );
    let t = Target {
        from_versions: vec!["V1.0".into()],
        ..Target::default()
    };
    assert_eq!(targets(&t, "LAB-ONU-1", "V2.0", &inv).len(), 3);
    let t = Target {
        region: Some("south".into()),
        ..Target::default()
    };
    assert!(
        targets(&t, "LAB-ONU-1", "V2.0", &inv)
            .iter()
            .all(|o| o.olt == "olt-2")
    );
    let t = Target {
        olts: vec!["olt-1".into()],
        ..Target::default()
    };
    assert_eq!(targets(&t, "LAB-ONU-1", "V2.0", &inv).len(), 1);
}

#[test]
fn a_campaign_waits_for_its_start_then_runs_wave_after_healthy_wave_to_the_end() {
    let inv = inventory(2, 2, 4); // 4 PONs, 16 ONUs
    let mut v = view(CampaignSpec {
        start_at: Some(Millis(10_000)),
        max_parallel_pons: 3,
        ..spec()
    });
    assert!(
        tick(&mut v, &inv, Millis(9_999)).is_empty(),
        "not before its start"
    );
    let changes = tick(&mut v, &inv, Millis(10_000));
    assert!(matches!(changes[0], Change::Plan { .. }));
    assert_eq!(changes[1], Change::StartWave { wave: 0 });
    assert_eq!(v.campaign.state, CampaignState::Running);
    assert_eq!(v.results.len(), 16);
    // The canary: 4 ONUs, one on each PON; olt-1 takes its two PONs.
    let mut now = Millis(10_100);
    let a = claim(&mut v, "olt-1", "ctl-a", now);
    assert_eq!(a.len(), 2);
    // Another controller of olt-1 gets nothing while ctl-a drives it.
    assert!(claim(&mut v, "olt-1", "ctl-b", now).is_empty());
    // The cap: 3 PONs at once, so olt-2 gets one of its two.
    let b = claim(&mut v, "olt-2", "ctl-c", now);
    assert_eq!(b.len(), 1);
    assert!(claim(&mut v, "olt-2", "ctl-c", now).is_empty());
    for w in &a {
        finish(&mut v, *w, |_| OnuResult::Upgraded);
    }
    let c = claim(&mut v, "olt-2", "ctl-c", now);
    assert_eq!(c.len(), 1, "a PON freed under the cap");
    for w in b.iter().chain(&c) {
        finish(&mut v, *w, |_| OnuResult::Upgraded);
    }
    assert_eq!(tick(&mut v, &inv, now), vec![Change::WaveDone { wave: 0 }]);
    // It soaks 1 s before it is judged, and nothing of wave 1 is offered meanwhile.
    assert!(tick(&mut v, &inv, Millis(11_099)).is_empty());
    assert!(claim(&mut v, "olt-1", "ctl-a", Millis(11_099)).is_empty());
    now = Millis(11_100);
    assert_eq!(
        tick(&mut v, &inv, now),
        vec![
            Change::WaveHealthy { wave: 0 },
            Change::StartWave { wave: 1 }
        ]
    );
    // Waves 1 and 2 take two PONs each; run them to the end.
    for wave in 1..=2 {
        let mut got = claim(&mut v, "olt-1", "ctl-a", now);
        got.extend(claim(&mut v, "olt-2", "ctl-c", now));
        assert_eq!(got.len(), 2, "wave {wave}");
        for w in got {
            finish(&mut v, w, |_| OnuResult::Upgraded);
        }
        assert_eq!(tick(&mut v, &inv, now), vec![Change::WaveDone { wave }]);
        now = now.plus(1000);
        let changes = tick(&mut v, &inv, now);
        assert_eq!(changes[0], Change::WaveHealthy { wave });
    }
    assert_eq!(v.campaign.state, CampaignState::Completed);
    assert!(v.results.iter().all(|r| r.result == OnuResult::Upgraded));
}

#[test]
fn the_kill_switch_halts_the_fleet_on_the_canary_failures() {
    let inv = inventory(4, 1, 4); // 4 OLTs of one PON, 16 ONUs
    let mut v = view(CampaignSpec {
        kill_threshold: 0.5,
        ..spec()
    });
    tick(&mut v, &inv, Millis(0));
    let now = Millis(100);
    let mut got = Vec::new();
    for o in 1..=4 {
        got.extend(claim(&mut v, &format!("olt-{o}"), &format!("ctl-{o}"), now));
    }
    assert_eq!(got.len(), 4, "a canary on each OLT");
    // Two canaries fail: 2 of 4 is not more than 50 %.
    finish(&mut v, got[0], |_| OnuResult::Failed);
    finish(&mut v, got[1], |_| OnuResult::Failed);
    assert!(tick(&mut v, &inv, now).is_empty());
    // A third: the kill switch trips at once, before the wave ends.
    finish(&mut v, got[2], |_| OnuResult::Failed);
    let changes = tick(&mut v, &inv, now);
    let [Change::Halt { reason }] = &changes[..] else {
        panic!("{changes:?}");
    };
    assert!(
        reason.starts_with("kill switch: 3 of the 4 ONUs"),
        "{reason}"
    );
    assert_eq!(v.campaign.state, CampaignState::Halted);
    // The canary still running is told to wind down; the groups never start.
    let running = v.work.iter().find(|w| w.id == got[3]).unwrap();
    assert_eq!(running.halt.as_deref(), Some(reason.as_str()));
    assert!(
        v.work
            .iter()
            .filter(|w| w.wave > 0)
            .all(|w| w.state == WorkState::Cancelled)
    );
    assert!(v.waves[1..].iter().all(|w| w.state == WaveState::Cancelled));
    assert_eq!(v.waves[0].state, WaveState::Failed);
    let untouched = v
        .results
        .iter()
        .filter(|r| r.result == OnuResult::Untouched)
        .count();
    assert_eq!(untouched, 12, "no ONU past the canary is touched");
    // Nothing more is offered but the winding down of a dead holder's PON.
    for o in 1..=4 {
        assert!(claim(&mut v, &format!("olt-{o}"), "ctl-x", now).is_empty());
    }
    let later = Millis(6_000);
    assert!(matches!(
        tick(&mut v, &inv, later)[..],
        [Change::LeaseExpired { .. }]
    ));
    assert_eq!(claim(&mut v, "olt-4", "ctl-y", later), vec![got[3]]);
}

#[test]
fn a_lease_not_heartbeaten_ends_and_another_controller_takes_the_pon() {
    let inv = inventory(1, 2, 2);
    let mut v = view(CampaignSpec {
        canary_percent: 0,
        groups: 1,
        ..spec()
    });
    tick(&mut v, &inv, Millis(0));
    let a = claim(&mut v, "olt-1", "ctl-a", Millis(0));
    assert_eq!(a.len(), 2);
    // ctl-a dies. Until the lease ends, ctl-b gets nothing, and the lease is ctl-a's.
    assert!(claim(&mut v, "olt-1", "ctl-b", Millis(5000)).is_empty());
    let w = v.work.iter().find(|w| w.id == a[0]).unwrap().clone();
    assert!(holds(&w, "ctl-a", Millis(5000)) && !holds(&w, "ctl-b", Millis(5000)));
    assert!(!holds(&w, "ctl-a", Millis(5001)), "not past its end");
    let changes = tick(&mut v, &inv, Millis(5001));
    assert_eq!(changes.len(), 2);
    assert!(
        changes
            .iter()
            .all(|c| matches!(c, Change::LeaseExpired { owner, .. } if owner == "ctl-a"))
    );
    let b = claim(&mut v, "olt-1", "ctl-b", Millis(5001));
    assert_eq!(b, a, "the same PONs, once each");
    assert_eq!(v.work[0].attempts, 2);
    for w in b {
        finish(&mut v, w, |_| OnuResult::Upgraded);
    }
    tick(&mut v, &inv, Millis(5002));
    tick(&mut v, &inv, Millis(6002));
    assert_eq!(v.campaign.state, CampaignState::Completed);
}

#[test]
fn the_health_gate_stops_a_wave_over_the_threshold_the_fleet_ratio_forgave() {
    let inv = inventory(1, 2, 5); // two PONs of 5
    let mut v = view(CampaignSpec {
        canary_percent: 0,
        groups: 2,
        kill_threshold: 0.3,
        wave_soak_ms: 0,
        ..spec()
    });
    tick(&mut v, &inv, Millis(0));
    let w = claim(&mut v, "olt-1", "a", Millis(0));
    finish(&mut v, w[0], |_| OnuResult::Upgraded);
    tick(&mut v, &inv, Millis(1)); // wave 0 healthy, wave 1 starts
    let w = claim(&mut v, "olt-1", "a", Millis(1));
    // 2 of 5 fail: 2 of the 10 started (20 %) is under the kill switch; 40 % of the wave is not.
    finish(&mut v, w[0], |id| {
        if id <= 2 {
            OnuResult::Failed
        } else {
            OnuResult::Upgraded
        }
    });
    let changes = tick(&mut v, &inv, Millis(2));
    assert_eq!(changes[0], Change::WaveDone { wave: 1 });
    let Change::Halt { reason } = &changes[1] else {
        panic!("{changes:?}");
    };
    assert!(
        reason.starts_with("health gate: 2 of the 5 ONUs of wave 2"),
        "{reason}"
    );
}

#[test]
fn skipped_and_refused_onus_do_not_count_against_the_kill_switch() {
    let inv = inventory(1, 1, 4);
    let mut v = view(CampaignSpec {
        canary_percent: 0,
        groups: 1,
        kill_threshold: 0.3,
        ..spec()
    });
    tick(&mut v, &inv, Millis(0));
    let w = claim(&mut v, "olt-1", "a", Millis(0));
    finish(&mut v, w[0], |id| match id {
        1 => OnuResult::Failed,
        2 => OnuResult::Upgraded,
        3 => OnuResult::Upgraded,
        _ => OnuResult::Skipped,
    });
    // 1 of the 3 to upgrade (33 %) trips it; with the skipped one counted it would be 25 %.
    assert!(matches!(
        tick(&mut v, &inv, Millis(1))[..],
        [Change::Halt { .. }]
    ));
}
