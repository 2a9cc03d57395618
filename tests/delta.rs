//! Delta campaigns, in-process over the simulated PON with real ONU cores and a virtual
//! clock: ONUs on three base versions, delta packages for two of them, the full image for the
//! rest; an ONU whose base has the right version but other bytes refuses its delta and falls
//! back to the full image. Every ONU ends on the target, its flash byte-identical to it.

use std::time::Duration;

use harness::images::{MODEL, key};
use harness::sim::Pon;
use olt::campaign::{Campaign, CampaignPlan, DeltaPolicy, Package, Setup};
use olt::engine::{Mode, MulticastConfig};
use olt::image::UpgradeImage;
use olt::session::{Outcome, SessionConfig};
use omci_codec::OnuId;
use pon::firmware::{BuildSpec, Derivation, build, derive_payload, deterministic_payload};
use sha2::{Digest, Sha256};

fn image_of(version: &str, security: u32, payload: &[u8]) -> Vec<u8> {
    let spec = BuildSpec {
        model: MODEL.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot: false,
    };
    build(&spec, payload, &key()).unwrap()
}

/// The three bases (each derived from the one before) and the target derived from the last.
struct Release {
    bases: [Vec<u8>; 3],
    /// A base with V1.1's version but other bytes.
    impostor: Vec<u8>,
    target: Vec<u8>,
}

fn release() -> Release {
    let how = |seed: &str| Derivation {
        changed_pct: 2.0,
        inserted_pct: 0.5,
        moved_pct: 3.0,
        seed: seed.into(),
    };
    let p0 = deterministic_payload("delta campaign", 30_000);
    let p1 = derive_payload(&p0, &how("1"));
    let p2 = derive_payload(&p1, &how("2"));
    let p3 = derive_payload(&p2, &how("3"));
    Release {
        bases: [
            image_of("V1.0", 1, &p0),
            image_of("V1.1", 1, &p1),
            image_of("V1.2", 1, &p2),
        ],
        impostor: image_of("V1.1", 1, &deterministic_payload("impostor", 30_000)),
        target: image_of("V2.0", 2, &p3),
    }
}

/// ONUs 1-2 on V1.0, 3-4 on V1.1 (4 on the impostor), 5-6 on V1.2; deltas from V1.0 and V1.1.
fn mixed_pon(mode: Mode) -> (Pon<Campaign>, Release) {
    let (pon, r, _) = mixed_pon_and_setup(mode);
    (pon, r)
}

/// [`mixed_pon`], and the campaign's setup (for a resumed campaign).
fn mixed_pon_and_setup(mode: Mode) -> (Pon<Campaign>, Release, Setup) {
    mixed_pon_with(mode, DeltaPolicy::PerBase)
}

/// [`mixed_pon_and_setup`] with the delta policy `policy`.
fn mixed_pon_with(mode: Mode, policy: DeltaPolicy) -> (Pon<Campaign>, Release, Setup) {
    let r = release();
    let setup = Setup {
        image: UpgradeImage::new(r.target.clone()).unwrap(),
        deltas: [&r.bases[0], &r.bases[1]]
            .into_iter()
            .map(|b| UpgradeImage::new(pon::delta::build(b, &r.target, &key()).unwrap()).unwrap())
            .collect(),
        image_sha256: hex::encode(Sha256::digest(&r.target)),
        mode,
        session: SessionConfig::default(),
        multicast: MulticastConfig::default(),
        plan: CampaignPlan {
            delta_policy: policy,
            ..CampaignPlan::rollout()
        },
    };
    let goldens = [
        r.bases[0].clone(),
        r.bases[0].clone(),
        r.bases[1].clone(),
        r.impostor.clone(),
        r.bases[2].clone(),
        r.bases[2].clone(),
    ];
    let pon = Pon::build(
        6,
        &r.bases[0],
        |id, cfg| {
            cfg.golden = Some(goldens[usize::from(id.0 - 1)].clone().into());
            cfg.rebuild_step = 8192;
        },
        |ids, now| Campaign::new(&setup, ids, now),
    );
    (pon, r, setup)
}

/// ONU `id` is upgraded, runs its committed image, and that image read back from its flash is
/// the target byte for byte.
fn assert_upgraded_to_target(pon: &Pon<Campaign>, r: &Release, id: u16, case: &str) {
    let rec = &pon.olt.records()[&OnuId(id)];
    assert_eq!(rec.outcome, Some(Outcome::Upgraded), "{case}");
    let onu = pon.onus[&OnuId(id)].as_ref().expect("up");
    let slot = usize::from(onu.running());
    assert_eq!(onu.metadata().committed, onu.running(), "{case}");
    assert_eq!(
        pon.flash(OnuId(id)).slots[slot],
        r.target,
        "{case}: the flash"
    );
}

fn run(mode: Mode) {
    let (mut pon, r) = mixed_pon(mode);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "{mode:?}: the campaign did not end");
    let records = pon.olt.records();
    for id in 1..=6u16 {
        assert_upgraded_to_target(&pon, &r, id, &format!("{mode:?}: ONU {id}"));
    }
    let package = |id: u16| records[&OnuId(id)].package.clone();
    let delta = |b: &str| Some(Package::Delta { base: b.into() });
    assert_eq!(package(1), delta("V1.0"));
    assert_eq!(package(2), delta("V1.0"));
    assert_eq!(package(3), delta("V1.1"));
    // The impostor refused the delta for V1.1 (its bytes are not that base's) and got the
    // full image after it.
    assert_eq!(package(4), Some(Package::Full));
    assert!(records[&OnuId(4)].fell_back && !records[&OnuId(3)].fell_back);
    assert_eq!(package(5), Some(Package::Full));
    assert_eq!(package(6), Some(Package::Full));
    let bytes = pon.olt.package_bytes();
    let full = r.target.len() as u64;
    let d: Vec<u64> = pon.olt.deltas().iter().map(|d| d.len() as u64).collect();
    match mode {
        // One download per base, then one of the full image for V1.2 and the fallback; without
        // deltas, one download of the full image would have reached all six.
        Mode::Multicast => {
            assert_eq!(bytes.sent, d[0] + d[1] + full);
            assert_eq!(bytes.full_image_cost, full);
        }
        // Per ONU: two of each delta (the impostor's counted), then three full images; without
        // deltas, six full images.
        _ => {
            assert_eq!(bytes.sent, 2 * d[0] + 2 * d[1] + 3 * full);
            assert_eq!(bytes.full_image_cost, 6 * full);
        }
    }
    assert!(d[0] < full / 4 && d[1] < full / 4, "{d:?} against {full}");
}

#[test]
fn a_mixed_pon_ends_on_the_target_with_deltas_per_base_multicast() {
    run(Mode::Multicast);
}

#[test]
fn a_mixed_pon_ends_on_the_target_with_deltas_per_base_unicast() {
    run(Mode::Unicast);
}

/// The OLT dies once the first base's ONUs are upgraded by their delta, while the next base's
/// delta is downloading; a new OLT resumes from the journal. The journal keeps each ONU's
/// result only, so the resumed campaign surveys the others again, groups them by base, and
/// ends with every ONU on the target byte for byte, the upgraded ones sent nothing again.
#[test]
fn a_delta_campaign_resumes_from_its_journal() {
    let (mut pon, r, setup) = mixed_pon_and_setup(Mode::Multicast);
    let upgraded = |pon: &Pon<Campaign>, id: u16| {
        pon.olt.records()[&OnuId(id)].outcome == Some(Outcome::Upgraded)
    };
    pon.run_until(|pon| {
        upgraded(pon, 1) && upgraded(pon, 2) && pon.olt.counters().frames_multicast > 0
    });
    assert!(!upgraded(&pon, 3), "the V1.1 ONUs are not done yet");
    let journal: olt::journal::Journal =
        serde_json::from_str(&serde_json::to_string(&pon.olt.journal().unwrap()).unwrap()).unwrap();
    assert_eq!(journal.onus[&1].result, "upgraded");
    let ids: Vec<OnuId> = (1..=6).map(OnuId).collect();
    pon.olt = Campaign::resume(&journal, &setup, &ids, false, pon.now);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "the resumed campaign did not end");
    let records = pon.olt.records();
    for id in 1..=6u16 {
        assert_upgraded_to_target(&pon, &r, id, &format!("ONU {id}"));
    }
    // The two upgraded before the restart got nothing from the new OLT.
    for id in [1, 2] {
        assert_eq!(records[&OnuId(id)].stats.frames, 0, "ONU {id}");
    }
    // The V1.1 ONU still got its delta from the resumed campaign, the impostor the full image.
    assert_eq!(
        records[&OnuId(3)].package,
        Some(Package::Delta {
            base: "V1.1".into()
        })
    );
    assert_eq!(records[&OnuId(4)].package, Some(Package::Full));
}

#[test]
fn when_saving_a_multicast_wave_that_needs_the_full_image_sends_it_to_all_in_one_download() {
    // V1.2's ONUs have no delta, so the full image goes to the group anyway: with when-saving,
    // all six take it in one download (the deltas would only add to it).
    let (mut pon, r, _) = mixed_pon_with(Mode::Multicast, DeltaPolicy::WhenSaving);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "the campaign did not end");
    for id in 1..=6u16 {
        assert_upgraded_to_target(&pon, &r, id, &format!("ONU {id}"));
        let rec = &pon.olt.records()[&OnuId(id)];
        assert_eq!(rec.package, Some(Package::Full), "ONU {id}");
        assert!(!rec.fell_back, "ONU {id}");
    }
    let bytes = pon.olt.package_bytes();
    let full = r.target.len() as u64;
    assert_eq!((bytes.sent, bytes.full_image_cost), (full, full));
}

#[test]
fn when_saving_sends_the_deltas_in_unicast_and_in_a_wave_whose_onus_all_have_one() {
    // Unicast: every delta saves its ONU's bytes, so when-saving is per-base.
    let (mut pon, r, _) = mixed_pon_with(Mode::Unicast, DeltaPolicy::WhenSaving);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "unicast: the campaign did not end");
    let package = |pon: &Pon<Campaign>, id: u16| pon.olt.records()[&OnuId(id)].package.clone();
    assert_eq!(
        package(&pon, 1),
        Some(Package::Delta {
            base: "V1.0".into()
        })
    );
    assert_eq!(package(&pon, 5), Some(Package::Full));
    // Multicast, a PON of V1.0 and V1.1 only (V1.2's ONUs left out): the deltas go.
    let (mut pon, r2, setup) = mixed_pon_with(Mode::Multicast, DeltaPolicy::WhenSaving);
    let ids: Vec<OnuId> = (1..=3).map(OnuId).collect();
    pon.olt = Campaign::new(&setup, &ids, pon.now);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "multicast: the campaign did not end");
    for id in 1..=3u16 {
        assert_upgraded_to_target(&pon, &r2, id, &format!("ONU {id}"));
    }
    assert_eq!(
        package(&pon, 3),
        Some(Package::Delta {
            base: "V1.1".into()
        })
    );
    let bytes = pon.olt.package_bytes();
    assert!(bytes.sent < bytes.full_image_cost / 2, "{bytes:?}");
    drop(r);
}

#[test]
fn when_saving_sends_the_full_image_when_the_deltas_add_up_to_it() {
    // ONUs 1-2 on V1.0 and 4 on the impostor, each with a delta: the impostor's, made from
    // unrelated bytes, is about the image's size, so the two deltas together outweigh the full
    // image and when-saving sends the full image to all three in one download.
    let (_, r, mut setup) = mixed_pon_with(Mode::Multicast, DeltaPolicy::WhenSaving);
    let big =
        UpgradeImage::new(pon::delta::build(&r.impostor, &r.target, &key()).unwrap()).unwrap();
    setup.deltas[1] = big;
    let sizes: u64 = setup.deltas.iter().map(|d| d.len() as u64).sum();
    assert!(
        sizes >= r.target.len() as u64,
        "the test needs deltas of {sizes} bytes to outweigh the {}-byte image",
        r.target.len()
    );
    let (mut pon, ..) = mixed_pon_with(Mode::Multicast, DeltaPolicy::WhenSaving);
    let ids = [OnuId(1), OnuId(2), OnuId(4)];
    pon.olt = Campaign::new(&setup, &ids, pon.now);
    pon.run(Duration::from_secs(300));
    assert!(pon.olt.finished(), "the campaign did not end");
    for id in [1u16, 2, 4] {
        assert_upgraded_to_target(&pon, &r, id, &format!("ONU {id}"));
        assert_eq!(
            pon.olt.records()[&OnuId(id)].package,
            Some(Package::Full),
            "ONU {id}"
        );
    }
    assert_eq!(pon.olt.package_bytes().sent, r.target.len() as u64);
}
