//! Delta packages at the ONU core, on a simulated clock: a package downloads as any image,
//! is checked at End (signature, base), rebuilt into the rebuild area while End answers
//! device busy, verified as a full image, swapped into the slot; a package for another base,
//! a tampered one, or one whose rebuilt image does not verify leaves is valid 0 with End
//! answered processing error; a power cut at every rebuild point, at every occurrence, leaves
//! the base untouched and the download restartable.

mod harness;

use std::time::Duration;

use ed25519_dalek::SigningKey;
use harness::*;
use omci_codec::ResultCode;
use onu::core::OnuEvent;
use onu::faults::FaultPoint;
use pon::firmware::{BuildSpec, Derivation, build, derive_payload, deterministic_payload};
use sha2::{Digest, Sha256};

/// The base every test's ONU runs: its golden image, committed in image 0.
fn base() -> Vec<u8> {
    image_of(
        "V1",
        1,
        &deterministic_payload("delta base", 40_000),
        &key(),
    )
}

fn image_of(version: &str, security: u32, payload: &[u8], key: &SigningKey) -> Vec<u8> {
    let spec = BuildSpec {
        model: MODEL.into(),
        version: version.into(),
        security_version: security,
        build: 2,
        fails_to_boot: false,
    };
    build(&spec, payload, key).unwrap()
}

/// V2: the base's payload with 3 % changed, 1 % inserted, 5 % moved.
fn target_signed_by(key: &SigningKey) -> Vec<u8> {
    let old = deterministic_payload("delta base", 40_000);
    let how = Derivation {
        changed_pct: 3.0,
        inserted_pct: 1.0,
        moved_pct: 5.0,
        seed: "V2".into(),
    };
    image_of("V2", 2, &derive_payload(&old, &how), key)
}

/// An ONU on `base()`, rebuilding 4 KiB per step (so a rebuild takes many steps).
fn lab() -> Lab {
    Lab::with(|cfg| {
        cfg.golden = Some(base().into());
        cfg.rebuild_step = 4096;
    })
}

/// Start, windows, then End until it stops answering busy (at most `max_busy` times, 100 ms
/// apart); `None` when the power went.
fn download(lab: &mut Lab, pkg: &[u8]) -> Option<(ResultCode, u32)> {
    let r = lab.try_start(1, pkg.len(), 8)?;
    if lab.stopped() || r.contents.result() != Some(ResultCode::Success) {
        return None;
    }
    for w in 0..pkg.len().div_ceil(31 * 8) as u32 {
        if lab.send_window(1, pkg, 8, w, &[]) != Some(ResultCode::Success) || lab.stopped() {
            return None;
        }
    }
    let crc = omci_codec::crc::crc32_bzip2(pkg);
    let mut busy = 0;
    loop {
        let r = lab.try_end_with(1, crc, pkg.len() as u32);
        if lab.stopped() {
            return None;
        }
        match r? {
            ResultCode::DeviceBusy if busy < 200 => {
                busy += 1;
                lab.advance(Duration::from_millis(100));
                if lab.stopped() {
                    return None;
                }
            }
            other => return Some((other, busy)),
        }
    }
}

fn package(base: &[u8], target: &[u8]) -> Vec<u8> {
    pon::delta::build(base, target, &key()).unwrap()
}

/// Image 0 holds the base byte for byte, committed, active, valid; image 1 is not valid.
fn assert_on_base(lab: &mut Lab, case: &str) {
    assert_eq!(
        lab.flash().slots[0],
        base(),
        "{case}: the base image changed"
    );
    assert_eq!(lab.state()[0], (true, true, true), "{case}");
    assert!(!lab.state()[1].2, "{case}: image 1 is valid");
    assert_eq!(lab.version(0), "V1", "{case}");
}

#[test]
fn a_delta_rebuilds_the_target_byte_for_byte_and_upgrades() {
    let target = target_signed_by(&key());
    let pkg = package(&base(), &target);
    assert!(
        pkg.len() < target.len() / 4,
        "package of {} bytes",
        pkg.len()
    );
    let mut lab = lab();
    let (result, busy) = download(&mut lab, &pkg).expect("no power cut");
    assert_eq!(result, ResultCode::Success);
    // 4 KiB per step over a 40 KB target: End answered busy while it was rebuilt.
    assert!(busy >= 10, "End was busy {busy} times only");
    assert!(lab.events.iter().any(
        |e| matches!(e, OnuEvent::DeltaRebuildStarted { base_version, .. } if base_version == "V1")
    ));
    assert_eq!(
        lab.flash().slots[1],
        target,
        "the rebuilt image is the target"
    );
    assert_eq!(lab.flash().slots[0], base(), "the base is untouched");
    assert_eq!(
        lab.onu().metadata().slots[1].image_sha256[..],
        Sha256::digest(&target)[..]
    );
    assert_eq!(lab.state()[1], (false, false, true));
    assert_eq!(lab.version(1), "V2");
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.commit(1), ResultCode::Success);
    assert_eq!(lab.state()[1], (true, true, true));
    assert_eq!(lab.version(1), "V2");
}

/// The package is refused at End with processing error; image 1 stays invalid and the base
/// untouched; the reason names what was wrong.
fn assert_refused(pkg: &[u8], words: &str) {
    let mut lab = lab();
    let (result, _) = download(&mut lab, pkg).expect("no power cut");
    assert_eq!(result, ResultCode::ProcessingError, "{words}");
    assert_on_base(&mut lab, words);
    let reasons: Vec<&String> = lab
        .events
        .iter()
        .filter_map(|e| match e {
            OnuEvent::ImageRefused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains(words)),
        "{words}: {reasons:?}"
    );
    // A repeated End keeps the answer; a new download of a good package still works.
    let good = package(&base(), &target_signed_by(&key()));
    assert_eq!(download(&mut lab, &good).unwrap().0, ResultCode::Success);
}

#[test]
fn a_delta_for_another_base_is_refused() {
    let other = image_of(
        "V1",
        1,
        &deterministic_payload("another V1", 40_000),
        &key(),
    );
    assert_refused(
        &package(&other, &target_signed_by(&key())),
        "applies to base V1",
    );
}

#[test]
fn a_tampered_delta_is_refused() {
    let mut pkg = package(&base(), &target_signed_by(&key()));
    let at = pkg.len() / 2;
    pkg[at] ^= 0x01;
    assert_refused(&pkg, "signature does not verify");
}

#[test]
fn a_delta_whose_rebuilt_image_does_not_verify_is_refused() {
    // The package is signed by the ONU's key, the target inside by another: the rebuild runs
    // to its end, and the rebuilt image fails the full image's signature check.
    let target = target_signed_by(&SigningKey::from_bytes(&[9; 32]));
    assert_refused(&package(&base(), &target), "the rebuilt image");
}

#[test]
fn a_delta_below_the_anti_rollback_floor_is_refused_before_the_rebuild() {
    let old = image_of("V0", 0, &deterministic_payload("old", 1000), &key());
    let mut lab = lab();
    let (result, _) = download(&mut lab, &package(&base(), &old)).unwrap();
    // Security version 0 is below the floor of 1 the golden image set.
    assert_eq!(result, ResultCode::ProcessingError);
    assert!(
        !lab.events
            .iter()
            .any(|e| matches!(e, OnuEvent::DeltaRebuildStarted { .. }))
    );
    assert_on_base(&mut lab, "downgrade");
}

#[test]
fn a_power_cut_at_every_rebuild_point_leaves_the_base_and_a_restartable_download() {
    let target = target_signed_by(&key());
    let pkg = package(&base(), &target);
    let mut fired = std::collections::BTreeMap::new();
    for point in FaultPoint::DELTA {
        for occurrence in 1..=40 {
            let case = format!("{point} #{occurrence}");
            let mut lab = lab();
            lab.plan_power_loss(point, occurrence);
            let done = download(&mut lab, &pkg);
            if lab.is_dead().is_none() {
                assert_eq!(done.map(|d| d.0), Some(ResultCode::Success), "{case}");
                break;
            }
            assert_eq!(lab.is_dead(), Some(point), "{case}");
            *fired.entry(point).or_insert(0) += 1;
            // Power back: the committed base boots; image 1 is not valid (S1): the OLT
            // starts the download again, and it finishes.
            lab.power_cycle();
            assert_on_base(&mut lab, &case);
            let again = download(&mut lab, &pkg).expect("no second cut");
            assert_eq!(again.0, ResultCode::Success, "{case}: the restart");
            assert_eq!(lab.flash().slots[1], target, "{case}");
            assert_eq!(lab.flash().slots[0], base(), "{case}");
            assert_eq!(lab.activate(1, 0), ResultCode::Success, "{case}");
            assert_eq!(lab.commit(1), ResultCode::Success, "{case}");
            assert_eq!(lab.version(1), "V2", "{case}");
        }
    }
    assert_eq!(fired.len(), FaultPoint::DELTA.len(), "{fired:?}");
    // 4 KiB steps over a 40 KB target: the rebuild was cut after each of its steps.
    assert!(fired[&FaultPoint::MidDeltaRebuild] >= 10, "{fired:?}");
}
