//! The OLT engine against real ONU cores, in-process, over a simulated PON with a seeded lossy
//! network and a virtual clock: the unicast and the multicast modes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use harness::images::{MODEL, image, image_for};
use harness::sim::{Node, Pon, REBOOT};
use olt::campaign::{Campaign, CampaignPlan, Setup, Stage};
use olt::engine::{Mode, MulticastConfig, Olt};
use olt::image::UpgradeImage;
use olt::session::{Job, Outcome, SessionConfig};
use omci_codec::OnuId;
use onu::core::{Onu, OnuConfig};
use onu::faults::Faults;

fn assert_all_upgraded(pon: &Pon, img: &[u8], n: u16) {
    for (id, outcome) in pon.olt.outcomes() {
        assert_eq!(outcome, Some(Outcome::Upgraded), "{id}");
        let session = pon.olt.sessions().find(|s| s.onu() == id).unwrap();
        let flash = pon.flash(id);
        let slot = session.target();
        assert_eq!(flash.slots[usize::from(slot)], img, "{id}: image bytes");
        let onu = pon.onus[&id].as_ref().unwrap();
        assert_eq!(onu.running(), slot, "{id}: active");
        assert_eq!(onu.metadata().committed, slot, "{id}: committed");
    }
    assert_eq!(pon.olt.outcomes().len(), usize::from(n));
}

#[test]
fn sixteen_onus_are_upgraded_in_parallel() {
    let v2 = image("V2", 2, 20_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let mut pon = Pon::new(
        16,
        &image("V1", 1, 5000, false),
        &target,
        &SessionConfig::default(),
    );
    pon.run(Duration::from_secs(120));
    assert_all_upgraded(&pon, &v2, 16);
    let frames: u64 = pon.olt.sessions().map(|s| s.stats().frames).sum();
    let windows = v2.len().div_ceil(31 * 32) as u64;
    // Per ONU: every section once, plus 2 Gets, Start, End (and its busy repeats), Get,
    // Activate, polls while it reboots, Commit, Get.
    let sections = v2.len().div_ceil(31) as u64;
    assert!(frames >= 16 * (sections + 8), "{frames}");
    assert!(pon.olt.sessions().all(|s| s.stats().repaired_windows == 0));
    // Without loss, the frames without AR are exactly the windows' inner sections.
    for s in pon.olt.sessions() {
        assert_eq!(
            s.stats().frames - s.stats().frames_with_ar,
            sections - windows,
            "{}",
            s.onu()
        );
    }
}

#[test]
fn a_lossy_duplicating_pon_still_upgrades_every_onu() {
    let v2 = image("V2", 2, 12_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(500),
        retries: 5,
        window_retries: 30,
        ..SessionConfig::default()
    };
    let mut pon = Pon::new(16, &image("V1", 1, 5000, false), &target, &cfg);
    pon.loss = 0.05;
    pon.duplicate = 0.03;
    pon.run(Duration::from_secs(600));
    assert_all_upgraded(&pon, &v2, 16);
    let repaired: u64 = pon.olt.sessions().map(|s| s.stats().repaired_windows).sum();
    assert!(repaired > 0, "5 % loss must cost some window repairs");
}

#[test]
fn an_onu_already_on_the_version_is_skipped() {
    let v1 = image("V1", 1, 5000, false);
    let target = UpgradeImage::new(v1.clone()).unwrap();
    let mut pon = Pon::new(2, &v1, &target, &SessionConfig::default());
    pon.run(Duration::from_secs(10));
    for (id, outcome) in pon.olt.outcomes() {
        assert!(
            matches!(outcome, Some(Outcome::Skipped(_))),
            "{id}: {outcome:?}"
        );
    }
}

#[test]
fn an_image_that_fails_to_boot_ends_in_failure_on_the_old_image() {
    let bad = image("V2", 2, 4000, true);
    let target = UpgradeImage::new(bad).unwrap();
    let cfg = SessionConfig {
        reboot_timeout: Duration::from_secs(5),
        ..SessionConfig::default()
    };
    let mut pon = Pon::new(2, &image("V1", 1, 5000, false), &target, &cfg);
    let start = pon.now;
    pon.run(Duration::from_secs(60));
    // Noticed when the ONU came back on its old image, not at the reboot deadline.
    assert!(
        pon.now - start < Duration::from_secs(4),
        "{:?}",
        pon.now - start
    );
    for (id, outcome) in pon.olt.outcomes() {
        match outcome {
            Some(Outcome::Failed(why)) => assert!(why.contains("did not boot"), "{id}: {why}"),
            other => panic!("{id}: {other:?}"),
        }
        let onu = pon.onus[&id].as_ref().unwrap();
        assert_eq!(
            onu.running(),
            onu.metadata().committed,
            "{id}: back on the committed image"
        );
    }
}

#[test]
fn an_onu_that_never_answers_fails_alone() {
    let v2 = image("V2", 2, 3000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    let mut pon = Pon::new(3, &image("V1", 1, 5000, false), &target, &cfg);
    pon.silent.push(OnuId(2));
    pon.run(Duration::from_secs(60));
    let outcomes = pon.olt.outcomes();
    assert!(
        matches!(&outcomes[&OnuId(2)], Some(Outcome::Failed(why)) if why.contains("no answer"))
    );
    assert_eq!(outcomes[&OnuId(1)], Some(Outcome::Upgraded));
    assert_eq!(outcomes[&OnuId(3)], Some(Outcome::Upgraded));
}

/// Frames of one ONU's whole download: every section once.
fn sections(img: &[u8]) -> u64 {
    img.len().div_ceil(31) as u64
}

/// A multicast rollout to `n` ONUs over a PON that loses `loss` of the datagrams (each way,
/// each ONU's copy of a group datagram on its own) and, when lossy, duplicates 2 %, reorders
/// 2 % and corrupts 1 %.
fn multicast(n: u16, loss: f64, img: &[u8]) -> Pon {
    let target = UpgradeImage::new(img.to_vec()).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(500),
        retries: 6,
        window_retries: 40,
        ..SessionConfig::default()
    };
    let mut pon = Pon::with_mode(
        n,
        &image("V1", 1, 5000, false),
        &target,
        &cfg,
        Mode::Multicast,
        |_, _| {},
    );
    pon.loss = loss;
    if loss > 0.0 {
        pon.duplicate = 0.02;
        pon.reorder = 0.02;
        pon.corrupt = 0.01;
    }
    pon.run(Duration::from_secs(1200));
    pon
}

/// Issue 4's bound: the group carries at most (1 + loss share + 5 %) times the frames of one
/// ONU's download; and what went to ONUs alone, said for the record.
fn assert_group_bound(pon: &Pon, img: &[u8], loss: f64) {
    let c = pon.olt.counters();
    let unicast: u64 = pon.olt.sessions().map(|s| s.stats().frames).sum();
    let repairs: u64 = pon.olt.sessions().map(|s| s.stats().repaired_windows).sum();
    let ratio = c.frames_multicast as f64 / sections(img) as f64;
    eprintln!(
        "{:.0} % loss, {} ONUs: group frames {} for {} sections ({ratio:.3}x), {} windows \
         re-multicast, {} AR-only re-multicasts, {repairs} ONU window repairs; unicast frames \
         {unicast} ({:.2}x one download)",
        loss * 100.0,
        pon.olt.sessions().count(),
        c.frames_multicast,
        sections(img),
        c.remulticast_windows,
        c.remulticast_ar_only,
        unicast as f64 / sections(img) as f64
    );
    assert!(
        ratio <= 1.0 + loss + 0.05,
        "{} group frames for {} sections: {ratio:.3}x > {:.2}x",
        c.frames_multicast,
        sections(img),
        1.0 + loss + 0.05
    );
}

#[test]
fn a_128_onu_pon_is_upgraded_by_multicast_at_the_cost_of_one_download() {
    let v2 = image("V2", 2, 30_000, false);
    let pon = multicast(128, 0.0, &v2);
    assert_all_upgraded(&pon, &v2, 128);
    let c = pon.olt.counters();
    assert_eq!(
        c.frames_multicast,
        sections(&v2),
        "each section once on the group"
    );
    assert_eq!(c.remulticast_windows, 0);
    assert_group_bound(&pon, &v2, 0.0);
    // What went to each ONU alone: Gets, Start, End, Activate, polls, Commit: no sections.
    for s in pon.olt.sessions() {
        assert!(s.stats().frames < 20, "{}: {:?}", s.onu(), s.stats());
    }
}

#[test]
fn multicast_with_two_percent_loss_repairs_and_upgrades_all_128() {
    let v2 = image("V2", 2, 30_000, false);
    let pon = multicast(128, 0.02, &v2);
    assert_all_upgraded(&pon, &v2, 128);
    let c = pon.olt.counters();
    let unicast_repairs: u64 = pon.olt.sessions().map(|s| s.stats().repaired_windows).sum();
    assert!(unicast_repairs + c.remulticast_windows > 0);
    assert_group_bound(&pon, &v2, 0.02);
}

#[test]
fn multicast_with_ten_percent_loss_upgrades_all_128_within_the_bound() {
    let v2 = image("V2", 2, 30_000, false);
    let pon = multicast(128, 0.10, &v2);
    assert_all_upgraded(&pon, &v2, 128);
    assert_group_bound(&pon, &v2, 0.10);
}

#[test]
fn the_group_adopts_the_smallest_window_any_onu_accepts() {
    let v2 = image("V2", 2, 8_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let mut pon = Pon::with_mode(
        4,
        &image("V1", 1, 5000, false),
        &target,
        &SessionConfig::default(),
        Mode::Multicast,
        |id, c| {
            if id == OnuId(3) {
                c.max_window_size = 8;
            }
        },
    );
    pon.run(Duration::from_secs(60));
    assert_all_upgraded(&pon, &v2, 4);
    // Windows of 8 sections: the group sent as many AR sections as windows of 8.
    assert_eq!(
        pon.olt.counters().frames_multicast_ar,
        v2.len().div_ceil(31 * 8) as u64
    );
}

#[test]
fn an_onu_left_activated_but_uncommitted_is_finished_with_a_commit() {
    let v2 = image("V2", 2, 4000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let mut pon = Pon::new(
        1,
        &image("V1", 1, 5000, false),
        &target,
        &SessionConfig::default(),
    );
    // A first OLT gets as far as the reboot into V2; then it is gone: S4.
    pon.run_until(|pon| {
        pon.onus[&OnuId(1)]
            .as_ref()
            .is_some_and(|o| o.running() == 1 && o.metadata().committed == 0)
    });
    // A new OLT (restarted) finds the version running uncommitted and only commits it.
    pon.olt = Olt::new(
        &Job::Upgrade {
            image: target.clone(),
        },
        &[OnuId(1)],
        Mode::Unicast,
        &SessionConfig::default(),
        &MulticastConfig::default(),
        pon.now,
    );
    pon.run(Duration::from_secs(30));
    assert_all_upgraded(&pon, &v2, 1);
    let s = pon.olt.sessions().next().unwrap();
    assert!(
        s.stats().frames < 8,
        "only Gets and a Commit: {:?}",
        s.stats()
    );
}

#[test]
fn an_onu_that_goes_silent_in_a_multicast_download_fails_alone() {
    let v2 = image("V2", 2, 30_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    let mut pon = Pon::with_mode(
        6,
        &image("V1", 1, 5000, false),
        &target,
        &cfg,
        Mode::Multicast,
        |_, _| {},
    );
    // Once the group is sending, ONU 4 stops answering for good.
    pon.run_until(|pon| pon.olt.counters().frames_multicast > 40);
    pon.silent.push(OnuId(4));
    pon.run(Duration::from_secs(120));
    let outcomes = pon.olt.outcomes();
    match &outcomes[&OnuId(4)] {
        Some(Outcome::Failed(why)) => assert!(why.contains("window"), "{why}"),
        other => panic!("{other:?}"),
    }
    for id in [1u16, 2, 3, 5, 6] {
        assert_eq!(outcomes[&OnuId(id)], Some(Outcome::Upgraded), "ONU {id}");
        let onu = pon.onus[&OnuId(id)].as_ref().unwrap();
        assert_eq!(
            onu.flash().slots[usize::from(onu.running())],
            v2,
            "ONU {id}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Campaigns: survey, waves, health gate, kill switch, journal, abort, pacing.

fn sha(img: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(img))
}

/// A campaign of `img` over `n` ONUs (booted from V1, each tuned).
fn campaign(
    n: u16,
    img: &[u8],
    mode: Mode,
    cfg: &SessionConfig,
    plan: &CampaignPlan,
    tune: impl Fn(OnuId, &mut OnuConfig),
) -> Pon<Campaign> {
    let golden = image("V1", 1, 5000, false);
    let setup = setup(img, mode, cfg, plan);
    Pon::build(n, &golden, tune, |ids, now| Campaign::new(&setup, ids, now))
}

fn setup(img: &[u8], mode: Mode, cfg: &SessionConfig, plan: &CampaignPlan) -> Setup {
    Setup {
        deltas: Vec::new(),
        image: UpgradeImage::new(img.to_vec()).unwrap(),
        image_sha256: sha(img),
        mode,
        session: cfg.clone(),
        multicast: MulticastConfig::default(),
        plan: plan.clone(),
    }
}

fn plan(canary: u8) -> CampaignPlan {
    CampaignPlan {
        model: Some(MODEL.into()),
        canary_percent: canary,
        kill_threshold: 0.2,
        gate: true,
        health_settle: Duration::from_millis(500),
        pace: None,
        serials: None,
        delta_policy: Default::default(),
    }
}

fn outcome(pon: &Pon<Campaign>, id: u16) -> Option<Outcome> {
    pon.olt.records()[&OnuId(id)].outcome.clone()
}

/// The ONU runs its committed image, of version `v`.
fn assert_on_committed(pon: &Pon<Campaign>, id: u16, v: &str) {
    let onu = pon.onus[&OnuId(id)].as_ref().expect("ONU up");
    assert_eq!(
        onu.running(),
        onu.metadata().committed,
        "ONU {id} runs its committed image"
    );
    let slot = &onu.metadata().slots[usize::from(onu.running())];
    assert!(
        slot.version.starts_with(v.as_bytes()),
        "ONU {id}: {:?}",
        slot.version
    );
    let r = &pon.olt.records()[&OnuId(id)];
    assert_eq!(r.committed_version.as_deref(), Some(v), "ONU {id}: report");
    assert_eq!(r.active_version.as_deref(), Some(v), "ONU {id}: report");
}

#[test]
fn a_campaign_refuses_other_models_skips_the_current_version_and_runs_two_waves() {
    let v2 = image("V2", 2, 12_000, false);
    let other_golden = image_for("OTHER-ONU", "V1", 1, 5000, false);
    let v2_golden = v2.clone();
    let mut pon = campaign(
        8,
        &v2,
        Mode::Multicast,
        &SessionConfig::default(),
        &plan(25),
        |id, c| {
            if id == OnuId(3) {
                c.model = "OTHER-ONU".into();
                c.golden = Some(other_golden.clone().into());
            }
            if id == OnuId(5) {
                c.golden = Some(v2_golden.clone().into());
            }
        },
    );
    pon.run(Duration::from_secs(120));
    let c = &pon.olt;
    assert_eq!(c.stage(), &Stage::Completed);
    // Eligible: 1, 2, 4, 6, 7, 8; canary 25 % of 6 = 2 (rounded up).
    assert_eq!(
        c.waves(),
        &[
            vec![OnuId(1), OnuId(2)],
            vec![OnuId(4), OnuId(6), OnuId(7), OnuId(8)]
        ]
    );
    match outcome(&pon, 3) {
        Some(Outcome::Refused(why)) => assert!(why.contains("OTHER-ONU"), "{why}"),
        other => panic!("ONU 3: {other:?}"),
    }
    // Refused before any download: only Gets went to it; its standby slot is empty.
    let r3 = &c.records()[&OnuId(3)];
    assert!(r3.stats.frames <= 5, "{:?}", r3.stats);
    assert!(!pon.onus[&OnuId(3)].as_ref().unwrap().metadata().slots[1].valid);
    assert_on_committed(&pon, 3, "V1");
    assert!(matches!(outcome(&pon, 5), Some(Outcome::Skipped(_))));
    for id in [1, 2, 4, 6, 7, 8] {
        assert_eq!(outcome(&pon, id), Some(Outcome::Upgraded), "ONU {id}");
        assert_on_committed(&pon, id, "V2");
        assert_eq!(pon.flash(OnuId(id)).slots[1], v2, "ONU {id}: image bytes");
    }
    // The canaries were committed before the second wave began.
    let phases = &c.records()[&OnuId(1)].stats.phases;
    assert!(phases.iter().any(|p| p.name == "held"), "{phases:?}");
}

#[test]
fn serial_numbers_select_the_onus_and_name_every_onu_in_the_report() {
    let v2 = image("V2", 2, 8000, false);
    let chosen: std::collections::BTreeSet<String> =
        ["LABS00000002", "LABS0000000A"].map(String::from).into();
    let plan = CampaignPlan {
        serials: Some(chosen),
        delta_policy: Default::default(),
        ..CampaignPlan::rollout()
    };
    // Every ONU carries the default serial number (LABS and its ONU-ID in 8 hex digits: ONU 10
    // is LABS0000000A) but ONU 4, given another vendor's by hand.
    let mut pon = campaign(
        12,
        &v2,
        Mode::Multicast,
        &SessionConfig::default(),
        &plan,
        |id, c| {
            if id == OnuId(4) {
                c.serial_number = *b"ACME\x00\x00\x12\x34";
            }
        },
    );
    pon.run(Duration::from_secs(120));
    let c = &pon.olt;
    assert_eq!(c.stage(), &Stage::Completed);
    for id in 1..=12u16 {
        let r = &c.records()[&OnuId(id)];
        let want = if id == 4 {
            "ACME00001234".to_string()
        } else {
            format!("LABS{id:08X}")
        };
        assert_eq!(r.serial.as_deref(), Some(want.as_str()), "ONU {id}");
        if id == 2 || id == 10 {
            assert_eq!(outcome(&pon, id), Some(Outcome::Upgraded), "ONU {id}");
            assert_on_committed(&pon, id, "V2");
        } else {
            match outcome(&pon, id) {
                Some(Outcome::Skipped(why)) => {
                    assert!(why.contains(&want) && why.contains("--serials"), "{why}")
                }
                other => panic!("ONU {id}: {other:?}"),
            }
            assert_on_committed(&pon, id, "V1");
            // Not one frame of the download went to it: its standby image is empty.
            assert!(!pon.onus[&OnuId(id)].as_ref().unwrap().metadata().slots[1].valid);
        }
    }
}

#[test]
fn a_canary_wave_that_fails_to_boot_halts_the_campaign_and_spares_the_rest() {
    let bad = image("V2", 2, 6_000, true);
    let cfg = SessionConfig {
        reboot_timeout: Duration::from_secs(10),
        ..SessionConfig::default()
    };
    let mut pon = campaign(10, &bad, Mode::Multicast, &cfg, &plan(20), |_, _| {});
    pon.run(Duration::from_secs(120));
    let c = &pon.olt;
    match c.stage() {
        Stage::Halted(why) => assert!(why.contains("kill switch"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.waves()[0], vec![OnuId(1), OnuId(2)]);
    for id in [1, 2] {
        assert!(
            matches!(outcome(&pon, id), Some(Outcome::Failed(_))),
            "ONU {id}"
        );
        assert_on_committed(&pon, id, "V1");
    }
    for id in 3..=10 {
        assert_eq!(outcome(&pon, id), None, "ONU {id} never touched");
        let onu = pon.onus[&OnuId(id)].as_ref().unwrap();
        assert!(
            !onu.metadata().slots[1].valid,
            "ONU {id}: nothing downloaded"
        );
        assert!(
            c.records()[&OnuId(id)].stats.frames <= 4,
            "ONU {id}: only the survey's Gets (ONU-G, ONU2-G, both images)"
        );
    }
    let j = pon.olt.journal().expect("a rollout has a journal");
    assert_eq!(j.stage, "halted");
}

#[test]
fn the_kill_switch_sends_held_onus_back_to_their_committed_image() {
    let v2 = image("V2", 2, 6_000, false);
    // ONU 4 stays busy at End long after the others have passed the health gate: its session
    // runs out of busy retries, one failure in four crosses the 20 % threshold.
    let cfg = SessionConfig {
        max_busy: 15,
        ..SessionConfig::default()
    };
    let mut pon = campaign(4, &v2, Mode::Multicast, &cfg, &plan(0), |id, c| {
        if id == OnuId(4) {
            c.busy_duration = Duration::from_secs(30);
        }
    });
    pon.run_until(|pon| pon.olt.olt().sessions().filter(|s| s.is_held()).count() == 3);
    pon.run(Duration::from_secs(120));
    match pon.olt.stage() {
        Stage::Halted(why) => assert!(why.contains("1 of the 4"), "{why}"),
        other => panic!("{other:?}"),
    }
    match outcome(&pon, 4) {
        Some(Outcome::Failed(why)) => assert!(why.contains("busy"), "{why}"),
        other => panic!("ONU 4: {other:?}"),
    }
    for id in 1..=3 {
        match outcome(&pon, id) {
            Some(Outcome::Halted(why)) => assert!(why.contains("rolled back"), "ONU {id}: {why}"),
            other => panic!("ONU {id}: {other:?}"),
        }
        assert_on_committed(&pon, id, "V1");
        // The new image stays valid, uncommitted, in the standby slot.
        let onu = pon.onus[&OnuId(id)].as_ref().unwrap();
        assert!(onu.metadata().slots[1].valid);
    }
}

#[test]
fn an_olt_restarted_mid_campaign_resumes_from_its_journal() {
    let v2 = image("V2", 2, 12_000, false);
    let p = plan(25);
    let cfg = SessionConfig::default();
    let mut pon = campaign(8, &v2, Mode::Multicast, &cfg, &p, |_, _| {});
    // The OLT dies once the second wave is downloading.
    pon.run_until(|pon| {
        pon.olt.stage() == &Stage::Wave(1) && pon.olt.counters().frames_multicast > 100
    });
    let journal: olt::journal::Journal =
        serde_json::from_str(&serde_json::to_string(&pon.olt.journal().unwrap()).unwrap()).unwrap();
    assert_eq!(journal.stage, "wave");
    assert_eq!(journal.wave, 1);
    assert_eq!(journal.onus[&1].result, "upgraded");
    let ids: Vec<OnuId> = (1..=8).map(OnuId).collect();
    pon.olt = Campaign::resume(
        &journal,
        &setup(&v2, Mode::Multicast, &cfg, &p),
        &ids,
        false,
        pon.now,
    );
    pon.run(Duration::from_secs(120));
    assert_eq!(pon.olt.stage(), &Stage::Completed);
    for id in 1..=8u16 {
        assert_eq!(outcome(&pon, id), Some(Outcome::Upgraded), "ONU {id}");
        assert_on_committed(&pon, id, "V2");
    }
    // The canaries, committed before the restart, got nothing from the new OLT.
    for id in [1, 2] {
        assert_eq!(pon.olt.records()[&OnuId(id)].stats.frames, 0, "ONU {id}");
    }
}

#[test]
fn an_abort_mid_download_leaves_every_onu_on_its_committed_image() {
    let v2 = image("V2", 2, 30_000, false);
    let mut pon = campaign(
        6,
        &v2,
        Mode::Multicast,
        &SessionConfig::default(),
        &plan(0),
        |_, _| {},
    );
    pon.run_until(|pon| pon.olt.counters().frames_multicast > 300);
    let now = pon.now;
    pon.olt.abort(now, "aborted by the operator");
    pon.run(Duration::from_secs(60));
    assert!(matches!(pon.olt.stage(), Stage::Halted(why) if why.contains("operator")));
    for id in 1..=6u16 {
        match outcome(&pon, id) {
            Some(Outcome::Halted(why)) => assert!(why.contains("download aborted"), "{why}"),
            other => panic!("ONU {id}: {other:?}"),
        }
        assert_on_committed(&pon, id, "V1");
        let onu = pon.onus[&OnuId(id)].as_ref().unwrap();
        assert!(
            !onu.metadata().slots[1].valid,
            "ONU {id}: the partial image is not valid"
        );
    }
}

#[test]
fn pacing_caps_the_sections_per_second() {
    let v2 = image("V2", 2, 20_000, false);
    let sections = sections(&v2);
    let run = |pace: Option<u32>| {
        let p = CampaignPlan {
            pace,
            ..CampaignPlan::rollout()
        };
        let mut pon = campaign(
            2,
            &v2,
            Mode::Multicast,
            &SessionConfig::default(),
            &p,
            |_, _| {},
        );
        let start = pon.now;
        pon.run_until(|pon| pon.olt.counters().frames_multicast >= sections);
        pon.run(Duration::from_secs(120));
        assert!(
            pon.olt
                .records()
                .values()
                .all(|r| r.outcome == Some(Outcome::Upgraded))
        );
        pon.now - start
    };
    let free = run(None);
    let paced = run(Some(200));
    // 200 sections per second: the download alone takes sections / 200 s.
    let floor = Duration::from_secs_f64(sections as f64 / 200.0);
    assert!(paced >= floor, "{paced:?} < {floor:?}");
    assert!(free < floor, "{free:?}");
}

#[test]
fn strict_unicast_sends_nothing_but_g988_and_still_upgrades() {
    let v2 = image("V2", 2, 20_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        envelope_extensions: false,
        timeout: Duration::from_millis(500),
        retries: 5,
        window_retries: 30,
        ..SessionConfig::default()
    };
    let mut pon = Pon::new(4, &image("V1", 1, 5000, false), &target, &cfg);
    // Without window numbers, the ONU knows a retransmitted section by its TCI. G.988 assumes
    // an OMCC that loses frames but neither duplicates nor reorders them (GEM over the PON):
    // loss only here. Over a duplicating link only the envelope's window numbers keep the
    // windows apart (strict mode then fails safe: End finds the CRC wrong).
    pon.loss = 0.05;
    pon.run(Duration::from_secs(300));
    assert_all_upgraded(&pon, &v2, 4);
    assert_eq!(
        pon.with_window_fields, 0,
        "no window number or CRC in any envelope"
    );
}

#[test]
fn onus_on_different_images_form_two_groups_and_all_are_upgraded() {
    // ONUs 1-4 first go to V2 (which lands in image 1); then V3 goes to all eight: ONUs 1-4
    // take it into image 0, ONUs 5-8 into image 1: two groups, one per target instance.
    let v2 = image("V2", 2, 6_000, false);
    let v3 = image("V3", 3, 9_000, false);
    let first = UpgradeImage::new(v2.clone()).unwrap();
    let mut pon = Pon::with_mode(
        8,
        &image("V1", 1, 5000, false),
        &first,
        &SessionConfig::default(),
        Mode::Multicast,
        |_, _| {},
    );
    pon.olt = Olt::new(
        &Job::Upgrade {
            image: first.clone(),
        },
        &(1..=4).map(OnuId).collect::<Vec<_>>(),
        Mode::Multicast,
        &SessionConfig::default(),
        &MulticastConfig::default(),
        pon.now,
    );
    pon.run(Duration::from_secs(60));
    let second = UpgradeImage::new(v3.clone()).unwrap();
    pon.olt = Olt::new(
        &Job::Upgrade {
            image: second.clone(),
        },
        &(1..=8).map(OnuId).collect::<Vec<_>>(),
        Mode::Multicast,
        &SessionConfig::default(),
        &MulticastConfig::default(),
        pon.now,
    );
    pon.run(Duration::from_secs(60));
    assert_all_upgraded(&pon, &v3, 8);
    for s in pon.olt.sessions() {
        let want = if s.onu().0 <= 4 { 0 } else { 1 };
        assert_eq!(s.target(), want, "{}", s.onu());
        assert_eq!(
            s.from_version().as_deref(),
            Some(if want == 0 { "V2" } else { "V1" })
        );
    }
    // Each group got the image once.
    assert_eq!(pon.olt.counters().frames_multicast, 2 * sections(&v3));
}

// ---------------------------------------------------------------------------------------------
// Regressions found in review: each was a hang, a wrong outcome or a wasted retry.

fn journal_roundtrip(c: &Campaign) -> olt::journal::Journal {
    serde_json::from_str(&serde_json::to_string(&c.journal().unwrap()).unwrap()).unwrap()
}

#[test]
fn an_olt_that_dies_while_the_kill_switch_rolls_back_finishes_the_rollback_on_resume() {
    let v2 = image("V2", 2, 6_000, false);
    let cfg = SessionConfig {
        max_busy: 15,
        ..SessionConfig::default()
    };
    let p = plan(0);
    let mut pon = campaign(4, &v2, Mode::Multicast, &cfg, &p, |id, c| {
        if id == OnuId(4) {
            c.busy_duration = Duration::from_secs(30);
        }
    });
    pon.run_until(|pon| matches!(pon.olt.stage(), Stage::Halting(..)));
    pon.in_flight.clear(); // the OLT dies: what it had just sent is lost with it
    let j = journal_roundtrip(&pon.olt);
    assert_eq!(j.stage, "halting");
    let ids: Vec<OnuId> = (1..=4).map(OnuId).collect();
    pon.olt = Campaign::resume(
        &j,
        &setup(&v2, Mode::Multicast, &cfg, &p),
        &ids,
        false,
        pon.now,
    );
    pon.run(Duration::from_secs(120));
    assert!(matches!(pon.olt.stage(), Stage::Halted(why) if why.contains("kill switch")));
    for id in 1..=3u16 {
        match outcome(&pon, id) {
            Some(Outcome::Halted(why)) => {
                assert!(
                    why.contains("kill switch") && why.contains("rolled back"),
                    "{why}"
                )
            }
            other => panic!("ONU {id}: {other:?}"),
        }
        assert_on_committed(&pon, id, "V1");
    }
}

#[test]
fn an_abort_during_the_survey_is_not_undone_by_a_resume() {
    let v2 = image("V2", 2, 12_000, false);
    let p = plan(25);
    let cfg = SessionConfig::default();
    let mut pon = campaign(4, &v2, Mode::Multicast, &cfg, &p, |_, _| {});
    let now = pon.now;
    pon.olt.abort(now, "aborted by the operator");
    pon.run(Duration::from_secs(60));
    let j = journal_roundtrip(&pon.olt);
    let ids: Vec<OnuId> = (1..=4).map(OnuId).collect();
    pon.olt = Campaign::resume(
        &j,
        &setup(&v2, Mode::Multicast, &cfg, &p),
        &ids,
        false,
        pon.now,
    );
    pon.run(Duration::from_secs(60));
    assert!(matches!(pon.olt.stage(), Stage::Halted(_)));
    for id in 1..=4u16 {
        assert!(matches!(outcome(&pon, id), Some(Outcome::Halted(_))));
        assert!(!pon.onus[&OnuId(id)].as_ref().unwrap().metadata().slots[1].valid);
    }
}

#[test]
fn an_olt_that_dies_between_a_commit_and_the_journal_still_reports_the_upgrade() {
    let v2 = image("V2", 2, 6_000, false);
    let cfg = SessionConfig::default();
    let p = plan(0);
    let mut pon = campaign(2, &v2, Mode::Multicast, &cfg, &p, |_, _| {});
    pon.run_until(|pon| {
        pon.onus[&OnuId(1)]
            .as_ref()
            .is_some_and(|o| o.metadata().committed == 1)
    });
    let j = journal_roundtrip(&pon.olt);
    assert_eq!(j.onus[&1].result, "pending");
    let ids: Vec<OnuId> = (1..=2).map(OnuId).collect();
    pon.olt = Campaign::resume(
        &j,
        &setup(&v2, Mode::Multicast, &cfg, &p),
        &ids,
        false,
        pon.now,
    );
    pon.run(Duration::from_secs(120));
    for id in 1..=2u16 {
        assert_eq!(outcome(&pon, id), Some(Outcome::Upgraded), "ONU {id}");
    }
}

#[test]
fn pacing_never_times_out_requests_that_have_not_left() {
    let v2 = image("V2", 2, 30_000, false);
    let p = CampaignPlan {
        pace: Some(100),
        ..CampaignPlan::rollout()
    };
    let mut pon = campaign(
        16,
        &v2,
        Mode::Unicast,
        &SessionConfig::default(),
        &p,
        |_, _| {},
    );
    pon.run(Duration::from_secs(3000));
    for (id, r) in pon.olt.records() {
        assert_eq!(r.outcome, Some(Outcome::Upgraded), "{id}");
        assert_eq!(
            (r.stats.retries, r.stats.timeouts),
            (0, 0),
            "{id}: {:?}",
            r.stats
        );
    }
}

#[test]
fn an_onu_that_reboots_while_held_is_not_committed() {
    let v2 = image("V2", 2, 6_000, false);
    let p = CampaignPlan {
        kill_threshold: 1.0,
        ..plan(0)
    };
    let mut pon = campaign(
        2,
        &v2,
        Mode::Multicast,
        &SessionConfig::default(),
        &p,
        |id, c| {
            if id == OnuId(2) {
                c.busy_duration = Duration::from_secs(20); // holds the wave open
            }
        },
    );
    pon.run_until(|pon| {
        pon.olt
            .olt()
            .sessions()
            .any(|s| s.onu() == OnuId(1) && s.is_held())
    });
    // ONU 1 loses power while held: it comes back on its committed image.
    let onu = pon.onus.get_mut(&OnuId(1)).unwrap().take().unwrap();
    let (flash, faults) = onu.into_parts();
    pon.down.insert(OnuId(1), (pon.now + REBOOT, flash, faults));
    pon.run(Duration::from_secs(120));
    match outcome(&pon, 1) {
        Some(Outcome::Failed(why)) => assert!(why.contains("while it was held"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_on_committed(&pon, 1, "V1");
    let onu = pon.onus[&OnuId(1)].as_ref().unwrap();
    assert!(
        onu.metadata().anti_rollback_floor < 2,
        "the floor was not raised to V2's security version"
    );
}

#[test]
fn a_gated_multicast_wave_with_an_onu_already_activated_completes() {
    let v2 = image("V2", 2, 12_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let golden = image("V1", 1, 5000, false);
    // An earlier OLT left ONU 1 running V2 uncommitted (it died at the gate).
    let held = SessionConfig {
        hold_before_commit: true,
        ..SessionConfig::default()
    };
    let mut first: Pon = Pon::new(3, &golden, &target, &held);
    first.olt = Olt::new(
        &Job::Upgrade {
            image: target.clone(),
        },
        &[OnuId(1)],
        Mode::Multicast,
        &held,
        &MulticastConfig::default(),
        first.now,
    );
    first.run_until(|p| p.olt.sessions().all(|s| s.is_held()));
    let s = setup(&v2, Mode::Multicast, &SessionConfig::default(), &plan(0));
    let mut pon: Pon<Campaign> =
        Pon::build(3, &golden, |_, _| {}, |_, now| Campaign::new(&s, &[], now));
    pon.onus
        .insert(OnuId(1), first.onus.get_mut(&OnuId(1)).unwrap().take());
    pon.now = first.now;
    pon.olt = Campaign::new(&s, &(1..=3).map(OnuId).collect::<Vec<_>>(), pon.now);
    pon.run(Duration::from_secs(120));
    assert_eq!(pon.olt.stage(), &Stage::Completed);
    for id in 1..=3u16 {
        assert_eq!(outcome(&pon, id), Some(Outcome::Upgraded), "ONU {id}");
    }
}

#[test]
fn a_group_whose_last_member_fails_leaves_no_deadline_in_the_past() {
    let v2 = image("V2", 2, 6_000, false);
    let v3 = image("V3", 3, 60_000, false);
    let first = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig::default();
    let mut pon = Pon::with_mode(
        8,
        &image("V1", 1, 5000, false),
        &first,
        &cfg,
        Mode::Multicast,
        |_, _| {},
    );
    pon.olt = Olt::new(
        &Job::Upgrade {
            image: first.clone(),
        },
        &[OnuId(1)],
        Mode::Multicast,
        &cfg,
        &MulticastConfig::default(),
        pon.now,
    );
    pon.run(Duration::from_secs(60));
    let second = UpgradeImage::new(v3).unwrap();
    let all: Vec<OnuId> = (1..=8).map(OnuId).collect();
    pon.olt = Olt::new(
        &Job::Upgrade {
            image: second.clone(),
        },
        &all,
        Mode::Multicast,
        &cfg,
        &MulticastConfig::default(),
        pon.now,
    );
    // ONU 1, alone in the group of image 0, goes silent once the download runs.
    pon.run_until(|pon| pon.olt.counters().frames_multicast > 50);
    pon.silent.push(OnuId(1));
    let end = pon.now + Duration::from_secs(300);
    let mut in_the_past = 0;
    while !pon.olt.finished() {
        let t = pon.next_event().expect("something to wait for");
        assert!(t <= end);
        if pon.olt.poll_timeout().is_some_and(|d| d < pon.now) {
            in_the_past += 1;
            assert!(
                in_the_past < 10,
                "the engine keeps asking to be woken in the past"
            );
        } else {
            in_the_past = 0;
        }
        pon.step(t.max(pon.now + Duration::from_millis(1)));
    }
    assert!(matches!(
        pon.olt.outcomes()[&OnuId(1)],
        Some(Outcome::Failed(_))
    ));
    assert!((2..=8).all(|i| pon.olt.outcomes()[&OnuId(i)] == Some(Outcome::Upgraded)));
}

#[test]
fn strict_unicast_survives_lost_answers_to_an_ar_section_and_its_retransmissions() {
    use omci_codec::contents::Contents;
    let v2 = image("V2", 2, 20_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        envelope_extensions: false,
        timeout: Duration::from_millis(500),
        ..SessionConfig::default()
    };
    let mut pon = Pon::new(1, &image("V1", 1, 5000, false), &target, &cfg);
    // The answers to window 3's AR section and to both its retransmissions are lost: the
    // whole window goes again, which the ONU already acknowledged.
    let codec = omci_codec::Codec::new(omci_codec::ExtendedTrailer::Crc32);
    let (mut answers, mut seen) = (0u32, std::collections::HashSet::new());
    let end = pon.now + Duration::from_secs(120);
    pon.flush();
    while !pon.olt.finished() {
        let t = pon.next_event().expect("something to wait for");
        assert!(t <= end);
        let mut keep = BinaryHeap::new();
        while let Some(Reverse((tt, seq, i))) = pon.in_flight.pop() {
            let mut lost = false;
            if let (true, Some((Node::Olt, d))) = (seen.insert(i), &pon.payloads[i])
                && let Ok((_, f)) = omci_codec::envelope::Envelope::parse(d)
                && let Ok(m) = codec.parse(f)
                && matches!(m.contents, Contents::DownloadSectionResponse(_))
            {
                answers += 1;
                lost = (4..=6).contains(&answers);
            }
            if !lost {
                keep.push(Reverse((tt, seq, i)));
            }
        }
        pon.in_flight = keep;
        pon.step(t);
    }
    assert!(answers > 6);
    assert_all_upgraded(&pon, &v2, 1);
}

#[test]
fn onus_that_lose_power_anywhere_are_started_again_and_upgraded() {
    use onu::faults::{FaultPoint, PowerLossPlan};
    let v2 = image("V2", 2, 30_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    let mut pon = Pon::with_mode(
        6,
        &image("V1", 1, 5000, false),
        &target,
        &cfg,
        Mode::Multicast,
        |_, _| {},
    );
    // Power cuts planned before the rollout starts: the ONUs boot again with them.
    let plans = [
        (2, FaultPoint::MidSectionWrite, 300),
        (3, FaultPoint::AfterWindowAck, 5),
        (4, FaultPoint::DuringBusy, 1),
        (5, FaultPoint::AfterActivate, 1),
        (6, FaultPoint::AfterRebootBeforeCommit, 1),
    ];
    for (id, point, occurrence) in plans {
        let id = OnuId(id);
        let onu = pon.onus.get_mut(&id).unwrap().take().unwrap();
        let (flash, _) = onu.into_parts();
        let faults = Faults::power_loss(PowerLossPlan { point, occurrence });
        let booted = Onu::boot(pon.cfg[&id].clone(), flash, faults).unwrap_or_else(|_| panic!());
        pon.onus.insert(id, Some(booted));
    }
    pon.run(Duration::from_secs(300));
    assert_all_upgraded(&pon, &v2, 6);
    let restarts = |id: u16| {
        pon.olt
            .sessions()
            .find(|s| s.onu() == OnuId(id))
            .unwrap()
            .stats()
            .restarts
    };
    // The ONUs that lost their download were started again (on their own windows).
    assert!(restarts(2) >= 1 && restarts(3) >= 1 && restarts(4) >= 1);
    assert_eq!(restarts(1), 0);
}
