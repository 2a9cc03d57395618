//! Staged upgrades, as operators run them (voltctl's `download`, `activate`, `commit`), on the
//! simulated PON: the download stops with the image valid in the standby image, the ONUs on
//! their committed one; a later activation reboots them into it, uncommitted; a later commit
//! finishes the upgrade. A stage that finds nothing to do says so; the one-shot forms
//! (activate-on-success, commit-on-success) run on.

use std::time::Duration;

use harness::images::image;
use harness::sim::Pon;
use olt::engine::{Mode, MulticastConfig, Olt};
use olt::image::UpgradeImage;
use olt::session::{Job, Outcome, SessionConfig, Stages};
use omci_codec::OnuId;

fn stages(download: bool, activate: bool, commit: bool) -> SessionConfig {
    SessionConfig {
        stages: Stages {
            download,
            activate,
            commit,
        },
        ..SessionConfig::default()
    }
}

/// The next stage on the same ONUs: a new engine, as a new `olt` command would be.
fn stage(pon: &mut Pon, target: &UpgradeImage, mode: Mode, cfg: SessionConfig) {
    let ids: Vec<OnuId> = pon.onus.keys().copied().collect();
    let job = Job::Upgrade {
        image: target.clone(),
    };
    pon.olt = Olt::new(&job, &ids, mode, &cfg, &MulticastConfig::default(), pon.now);
    pon.run(Duration::from_secs(120));
}

fn outcomes(pon: &Pon) -> Vec<Outcome> {
    pon.olt.outcomes().into_values().flatten().collect()
}

fn all(pon: &Pon, f: impl Fn(&Outcome) -> bool) -> bool {
    let o = outcomes(pon);
    o.len() == pon.onus.len() && o.iter().all(f)
}

#[test]
fn download_then_activate_then_commit() {
    for mode in [Mode::Multicast, Mode::Unicast] {
        let v2 = image("V2", 2, 8_000, false);
        let target = UpgradeImage::new(v2.clone()).unwrap();
        let golden = image("V1", 1, 3000, false);
        let mut pon = Pon::with_mode(
            4,
            &golden,
            &target,
            &stages(true, false, false),
            mode,
            |_, _| {},
        );
        pon.run(Duration::from_secs(120));
        assert!(
            all(&pon, |o| matches!(o, Outcome::Downloaded(_))),
            "{mode:?}: {:?}",
            outcomes(&pon)
        );
        for onu in pon.onus.values().flatten() {
            let standby = 1 - onu.running();
            assert_eq!(
                onu.flash().slots[usize::from(standby)],
                v2,
                "the image waits"
            );
            assert!(onu.metadata().slots[usize::from(standby)].valid);
            assert_eq!(onu.metadata().committed, onu.running(), "still on V1");
        }
        // Nothing to commit yet: the image does not run.
        stage(&mut pon, &target, mode, stages(false, false, true));
        assert!(
            all(
                &pon,
                |o| matches!(o, Outcome::Failed(why) if why.contains("nothing to commit"))
            ),
            "{:?}",
            outcomes(&pon)
        );
        // The maintenance window: activate.
        stage(&mut pon, &target, mode, stages(false, true, false));
        assert!(
            all(&pon, |o| matches!(o, Outcome::Activated(_))),
            "{:?}",
            outcomes(&pon)
        );
        for onu in pon.onus.values().flatten() {
            assert_ne!(
                onu.metadata().committed,
                onu.running(),
                "running V2, uncommitted"
            );
        }
        // Commit.
        stage(&mut pon, &target, mode, stages(false, false, true));
        assert!(
            all(&pon, |o| *o == Outcome::Upgraded),
            "{:?}",
            outcomes(&pon)
        );
        for onu in pon.onus.values().flatten() {
            assert_eq!(onu.metadata().committed, onu.running());
            assert_eq!(onu.flash().slots[usize::from(onu.running())], v2);
        }
    }
}

#[test]
fn the_one_shot_forms_run_on_and_nothing_to_activate_is_said() {
    let v2 = image("V2", 2, 8_000, false);
    let target = UpgradeImage::new(v2.clone()).unwrap();
    let golden = image("V1", 1, 3000, false);
    // Nothing downloaded yet: an activation has nothing to do.
    let mut pon = Pon::with_mode(
        2,
        &golden,
        &target,
        &stages(false, true, false),
        Mode::Multicast,
        |_, _| {},
    );
    pon.run(Duration::from_secs(120));
    assert!(
        all(
            &pon,
            |o| matches!(o, Outcome::Failed(why) if why.contains("nothing to activate"))
        ),
        "{:?}",
        outcomes(&pon)
    );
    // download --activate-on-success: ends activated, uncommitted.
    stage(
        &mut pon,
        &target,
        Mode::Multicast,
        stages(true, true, false),
    );
    assert!(
        all(&pon, |o| matches!(o, Outcome::Activated(_))),
        "{:?}",
        outcomes(&pon)
    );
    // activate --commit-on-success on ONUs already activated: committed.
    stage(
        &mut pon,
        &target,
        Mode::Multicast,
        stages(false, true, true),
    );
    assert!(
        all(&pon, |o| *o == Outcome::Upgraded),
        "{:?}",
        outcomes(&pon)
    );
}
