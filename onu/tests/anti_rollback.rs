//! The anti-rollback floor (docs/decisions.md): it rises to an image's security version only
//! once that image has booted and is committed, so a Commit of a standby image that then
//! fails to boot can neither lock the ONU out of its own running release nor leave the
//! abandoned image reported valid.

mod harness;

use harness::*;
use omci_codec::contents::{Contents, RebootRequest};
use omci_codec::{MeClass, MeId, ResultCode};
use onu::boot::BootPath;
use onu::core::OnuEvent;

/// (committed, active, valid) per image.
type State = [(bool, bool, bool); 2];

fn reboot(lab: &mut Lab) {
    let r = lab.result_of(
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    );
    assert_eq!(r, ResultCode::Success);
}

fn floor(lab: &mut Lab) -> u32 {
    lab.onu().metadata().anti_rollback_floor
}

#[test]
fn a_committed_image_that_never_booted_raises_no_floor_and_its_fallback_is_not_valid() {
    let mut lab = Lab::new();
    assert_eq!(floor(&mut lab), 1, "the golden V1 booted committed");
    // A test image that fails to boot, security version 2, downloaded and committed without
    // Activate (G.988 lets an OLT commit the standby image).
    let bad = image_with(MODEL, "V2-BAD", 2, 500, true, &key());
    assert_eq!(lab.download(1, &bad, 16), ResultCode::Success);
    assert_eq!(lab.commit(1), ResultCode::Success);
    let committed_standby: State = [(false, true, true), (true, false, true)];
    assert_eq!(lab.state(), committed_standby);
    assert_eq!(floor(&mut lab), 1, "committed, but it has not booted");
    // The reboot: image 1 crashes three times, then V1 boots again.
    lab.events.clear();
    reboot(&mut lab);
    assert_eq!(lab.onu().running(), 0);
    assert!(
        lab.events
            .iter()
            .any(|e| matches!(e, OnuEvent::Booted { path, .. }
            if path.iter().any(|p| matches!(p, BootPath::FellBack { abandoned: 1, .. })))),
        "{:?}",
        lab.events
    );
    assert_eq!(floor(&mut lab), 1, "the floor stays where it was");
    let fell_back: State = [(true, true, true), (false, false, false)];
    assert_eq!(lab.state(), fell_back, "the abandoned image is not valid");
    assert_eq!(lab.version(0), "V1");
    // The ONU takes its own running release again (security version 1).
    let v1 = image("V1", 1, 500);
    assert_eq!(lab.download(1, &v1, 16), ResultCode::Success);
    assert_eq!(lab.state()[1], (false, false, true));
    // And the floor survives a power cycle as it is.
    lab.power_cycle();
    assert_eq!(floor(&mut lab), 1);
}

#[test]
fn a_committed_standby_image_raises_the_floor_when_it_boots() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    assert_eq!(lab.commit(1), ResultCode::Success);
    assert_eq!(floor(&mut lab), 1, "not before it boots");
    reboot(&mut lab);
    assert_eq!(lab.onu().running(), 1);
    assert_eq!(floor(&mut lab), 2, "booted and committed");
    // V1 is below the floor now.
    let v1 = image("V1", 1, 500);
    assert_eq!(lab.download(0, &v1, 16), ResultCode::ProcessingError);
}

#[test]
fn commit_of_the_running_image_raises_the_floor_and_an_uncommitted_one_does_not() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.onu().running(), 1);
    assert_eq!(floor(&mut lab), 1, "running, not committed");
    // A reboot before Commit: back on V1 (S3), the floor untouched.
    reboot(&mut lab);
    assert_eq!((lab.onu().running(), floor(&mut lab)), (0, 1));
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.commit(1), ResultCode::Success);
    assert_eq!(floor(&mut lab), 2, "booted and committed");
}

#[test]
fn an_activated_image_that_fails_to_boot_leaves_the_floor_and_stays_valid_standby() {
    // The other fallback: an activated (not committed) image abandoned after its tries goes
    // back to S3, valid, as G.988 I.3 has it; the floor is untouched.
    let mut lab = Lab::new();
    let bad = image_with(MODEL, "V2-BAD", 2, 500, true, &key());
    assert_eq!(lab.download(1, &bad, 16), ResultCode::Success);
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.onu().running(), 0);
    let s3: State = [(true, true, true), (false, false, true)];
    assert_eq!(lab.state(), s3);
    assert_eq!(floor(&mut lab), 1);
}
