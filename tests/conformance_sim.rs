//! The conformance suites in-process, on the simulated PON's virtual clock (`harness::sim`):
//! the ONU suite against real ONU cores (clean, and with each quirk of a weaker emulator), and
//! the OLT observer beside ONU cores that our OLT engine upgrades (clean, and with each quirk
//! of a weaker OLT). The same faces run against real processes in `conformance.rs`.

use std::time::Duration;

use conformance::{CATALOGUE, Keep, OnuSuite, Report, Rule, Target, Verdict, Violation};
use harness::images::image;
use harness::sim::Pon;
use olt::engine::Mode;
use olt::image::UpgradeImage;
use olt::session::SessionConfig;
use omci_codec::{Format, OnuId};
use onu::core::{OnuConfig, Quirks};

/// Virtual time the whole suite may take (it waits out timeouts and reboots).
const SUITE_LIMIT: Duration = Duration::from_secs(600);

/// The images of the process tests: V1 golden, V2 the target.
fn images() -> (Vec<u8>, Vec<u8>) {
    (
        image("V1.0", 1, 8000, false),
        image("V2.0", 2, 20_000, false),
    )
}

/// The ONU suite against one ONU core tuned by `tune` (with a voice and an emergency call in
/// progress, as the process tests run it): the PON when the suite has ended.
fn suite(tune: impl Fn(&mut OnuConfig)) -> Pon<OnuSuite> {
    let (v1, v2) = images();
    let target = Target {
        name: "ONU 1 (in-process)".into(),
        onu: OnuId(1),
        image: UpgradeImage::new(v2).unwrap(),
        timeout: Duration::from_millis(500),
        reboot_timeout: Duration::from_secs(5),
        call_in_progress: true,
        emergency_call_in_progress: true,
    };
    let mut pon = Pon::build(
        1,
        &v1,
        |_, c| {
            c.voice_call_in_progress = true;
            c.emergency_call_in_progress = true;
            tune(c);
        },
        |_, now| OnuSuite::new(target, now),
    );
    pon.run(SUITE_LIMIT);
    pon
}

fn failed(r: &Report) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail { .. }))
        .map(|c| &*c.id)
        .collect()
}

#[test]
fn the_clean_onu_core_passes_all_44_checks_in_catalogue_order() {
    let pon = suite(|_| {});
    assert!(pon.olt.is_finished());
    assert!(pon.olt.error().is_none(), "{:?}", pon.olt.error());
    let r = pon.olt.report();
    assert_eq!((r.passed, r.failed, r.skipped), (44, 0, 0), "{}", r.table());
    let ran: Vec<(&str, &str, &str)> = r
        .checks
        .iter()
        .map(|c| (&*c.id, &*c.title, &*c.source))
        .collect();
    let catalogue: Vec<(&str, &str, &str)> = CATALOGUE
        .iter()
        .map(|c| (c.id, c.title, c.source))
        .collect();
    assert_eq!(ran, catalogue);
    // The suite leaves the ONU running the target image, committed.
    let onu = pon.onus[&OnuId(1)].as_ref().expect("ONU up");
    assert_eq!(onu.running(), onu.metadata().committed);
    assert_eq!(
        pon.flash(OnuId(1)).slots[usize::from(onu.running())],
        images().1
    );
}

#[test]
fn each_onu_quirk_fails_the_checks_it_breaks_and_no_other() {
    // The process tests (conformance.rs) ask for the first checks of each row; on virtual
    // time the whole list is exact. An image never written (end-before-write) also fails the
    // checks that need it valid.
    for (quirk, fails) in [
        ("no-section-tracking", &["STA-06", "DLS-06"][..]),
        ("always-valid", &["END-03", "END-07"][..]),
        ("no-fallback", &["ACT-04"][..]),
        ("ignore-window-crc", &["DLS-10"][..]),
        (
            "end-before-write",
            &["END-02", "END-06", "ACT-02", "ACT-05", "ACT-03"][..],
        ),
    ] {
        let pon = suite(|c| {
            assert!(c.quirks.set(quirk));
        });
        assert!(pon.olt.error().is_none(), "{quirk}: {:?}", pon.olt.error());
        let r = pon.olt.report();
        assert_eq!(r.checks.len(), CATALOGUE.len(), "{quirk}");
        assert_eq!(failed(&r), fails, "{quirk}: {}", r.table());
    }
    assert_eq!(Quirks::NAMES.len(), 5, "a new quirk needs its row here");
}

#[test]
fn a_silent_onu_ends_the_suite_at_once_with_one_error() {
    let (v1, v2) = images();
    let target = Target {
        name: "ONU 1 (in-process)".into(),
        onu: OnuId(1),
        image: UpgradeImage::new(v2).unwrap(),
        timeout: Duration::from_millis(300),
        reboot_timeout: Duration::from_secs(5),
        call_in_progress: false,
        emergency_call_in_progress: false,
    };
    let start = std::time::Instant::now();
    let mut pon = Pon::build(1, &v1, |_, _| {}, |_, now| OnuSuite::new(target, now));
    let began = pon.now;
    pon.silent.push(OnuId(1));
    pon.run(SUITE_LIMIT);
    // Two Gets, each sent twice: four timeouts of virtual time.
    assert_eq!(pon.now - began, Duration::from_millis(4 * 300));
    let stopped = pon.olt.finish().unwrap_err();
    assert!(
        matches!(stopped.error, conformance::SuiteError::Silent { .. }),
        "{:?}",
        stopped.error
    );
    assert_eq!(
        stopped.error.to_string(),
        "ONU 1 (in-process) does not answer (Get of ONU-G and of software image 0, 300 ms each, twice)"
    );
    assert!(stopped.report.checks.is_empty());
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// Our OLT engine upgrades `n` ONU cores in `mode`, each with an OLT observer beside it: the
/// violations each observer recorded.
fn observed_violations(n: u16, mode: Mode, cfg: &SessionConfig) -> Vec<Vec<Violation>> {
    let (v1, v2) = images();
    let target = UpgradeImage::new(v2).unwrap();
    let mut pon = Pon::with_mode(n, &v1, &target, cfg, mode, |_, _| {});
    pon.watch_olt();
    pon.run(Duration::from_secs(120));
    pon.observers
        .values()
        .map(|o| o.violations().to_vec())
        .collect()
}

/// The rules each observer recorded (sorted, without repeats).
fn observed(n: u16, mode: Mode, cfg: &SessionConfig) -> Vec<Vec<Rule>> {
    observed_violations(n, mode, cfg)
        .into_iter()
        .map(|found| {
            let mut rules: Vec<Rule> = found.iter().map(|v| v.rule).collect();
            rules.sort();
            rules.dedup();
            rules
        })
        .collect()
}

#[test]
fn our_olt_is_flagged_for_nothing_in_unicast_strict_unicast_and_multicast() {
    let lab = SessionConfig::default();
    let strict = SessionConfig {
        envelope_extensions: false,
        ..SessionConfig::default()
    };
    for (n, mode, cfg, what) in [
        (2, Mode::Unicast, &lab, "unicast"),
        (
            2,
            Mode::Unicast,
            &strict,
            "strict unicast (plain G.988 frames)",
        ),
        (4, Mode::Multicast, &lab, "multicast"),
    ] {
        let rules = observed(n, mode, cfg);
        assert_eq!(rules, vec![Vec::<Rule>::new(); usize::from(n)], "{what}");
    }
}

#[test]
fn the_onu_suite_is_flagged_for_the_rules_it_breaks_on_purpose() {
    // DLS-06 leaves section 1 out and DLS-07 sends a window backwards, END-02 ends with a
    // wrong CRC, ACT-01 activates and COM-01 commits an image that is not valid: the observer
    // beside the ONU sees each.
    let (v1, v2) = images();
    let target = Target {
        name: "ONU 1 (in-process)".into(),
        onu: OnuId(1),
        image: UpgradeImage::new(v2).unwrap(),
        timeout: Duration::from_millis(500),
        reboot_timeout: Duration::from_secs(5),
        call_in_progress: false,
        emergency_call_in_progress: false,
    };
    let mut pon = Pon::build(1, &v1, |_, _| {}, |_, now| OnuSuite::new(target, now));
    pon.watch_olt();
    pon.run(SUITE_LIMIT);
    let found = pon.observers[&OnuId(1)].violations();
    let has = |rule: Rule, detail: &str| {
        found
            .iter()
            .any(|v| v.rule == rule && v.detail.contains(detail) && !v.frame.is_empty())
    };
    assert!(
        has(Rule::SectionsSkip, "window 0: section 2 follows section 0"),
        "{found:#?}"
    );
    assert!(has(Rule::SectionsSkip, "window 1: section"), "{found:#?}");
    assert!(has(Rule::EndCrcMismatch, "End says"), "{found:#?}");
    assert!(
        has(Rule::ActivateInvalid, "Activate of image 1"),
        "{found:#?}"
    );
    assert!(
        has(Rule::CommitBeforeActivate, "Commit of image 1"),
        "{found:#?}"
    );
    let mut rules: Vec<Rule> = found.iter().map(|v| v.rule).collect();
    rules.sort();
    rules.dedup();
    assert_eq!(
        rules,
        [
            Rule::SectionsSkip,
            Rule::EndCrcMismatch,
            Rule::ActivateInvalid,
            Rule::CommitBeforeActivate
        ],
        "{found:#?}"
    );
}

#[test]
fn power_cuts_anywhere_do_not_make_our_olt_look_guilty() {
    // An ONU that loses power forgets its download and End's busy wait: the observer beside
    // it forgets them too (the ONU goes down, then boots), so the OLT's restarts are no
    // violation.
    use onu::core::Onu;
    use onu::faults::{FaultPoint, Faults, PowerLossPlan};
    let (v1, v2) = images();
    let target = UpgradeImage::new(v2).unwrap();
    let cfg = SessionConfig {
        timeout: Duration::from_millis(300),
        ..SessionConfig::default()
    };
    for mode in [Mode::Unicast, Mode::Multicast] {
        let mut pon = Pon::with_mode(6, &v1, &target, &cfg, mode, |_, _| {});
        for (id, point, occurrence) in [
            (2, FaultPoint::MidSectionWrite, 300),
            (3, FaultPoint::AfterWindowAck, 5),
            (4, FaultPoint::DuringBusy, 1),
            (5, FaultPoint::AfterActivate, 1),
            (6, FaultPoint::AfterRebootBeforeCommit, 1),
        ] {
            let id = OnuId(id);
            let onu = pon.onus.get_mut(&id).unwrap().take().unwrap();
            let (flash, _) = onu.into_parts();
            let faults = Faults::power_loss(PowerLossPlan { point, occurrence });
            let booted =
                Onu::boot(pon.cfg[&id].clone(), flash, faults).unwrap_or_else(|_| panic!());
            pon.onus.insert(id, Some(booted));
        }
        pon.watch_olt();
        pon.run(Duration::from_secs(300));
        let upgraded = pon
            .olt
            .outcomes()
            .iter()
            .filter(|(_, o)| **o == Some(olt::session::Outcome::Upgraded))
            .count();
        assert_eq!(upgraded, 6, "{mode:?}");
        for (id, o) in &pon.observers {
            assert_eq!(o.violations(), [], "{mode:?}: ONU {id}");
        }
    }
}

#[test]
fn each_olt_quirk_is_flagged() {
    for (quirk, rule) in [
        ("ar-on-every-section", Rule::ArBeforeLast),
        ("wrong-end-crc", Rule::EndCrcMismatch),
        ("no-busy-retry", Rule::NoBusyRetry),
    ] {
        let mut cfg = SessionConfig::default();
        assert!(cfg.quirks.set(quirk));
        let rules = observed(1, Mode::Unicast, &cfg);
        assert_eq!(rules[0], [rule], "{quirk}");
    }
}

#[test]
fn ar_on_every_section_is_flagged_once_per_section_in_every_window_with_or_without_window_numbers()
{
    // Every section but each window's last: the observer follows the windows on its own when
    // the envelope does not number them (a strictly G.988 OLT).
    let (_, v2) = images();
    let target = UpgradeImage::new(v2).unwrap();
    for envelope_extensions in [true, false] {
        let mut cfg = SessionConfig {
            envelope_extensions,
            ..SessionConfig::default()
        };
        assert!(cfg.quirks.set("ar-on-every-section"));
        let cut = target.cut(Format::Baseline, cfg.window_size, 0);
        let windows = target.windows(cut);
        let sections: usize = (0..windows).map(|w| target.sections_in(cut, w)).sum();
        let found = &observed_violations(1, Mode::Unicast, &cfg)[0];
        assert!(
            found.iter().all(|v| v.rule == Rule::ArBeforeLast),
            "{found:#?}"
        );
        assert_eq!(
            found.len(),
            sections - windows as usize,
            "envelope_extensions {envelope_extensions}"
        );
    }
}

#[test]
fn a_rule_broken_at_every_window_is_counted_in_constant_memory() {
    // The observer as `onu run --check-olt` runs it (the summary only), beside one that keeps
    // every violation: the same counts, the same first and last frames, and no list.
    let (_, v2) = images();
    let target = UpgradeImage::new(v2).unwrap();
    let mut cfg = SessionConfig::default();
    assert!(cfg.quirks.set("ar-on-every-section"));
    let cut = target.cut(Format::Baseline, cfg.window_size, 0);
    let windows = target.windows(cut);
    let sections: usize = (0..windows).map(|w| target.sections_in(cut, w)).sum();
    let expected = (sections - windows as usize) as u64;
    let mut seen = Vec::new();
    for keep in [Keep::Summary, Keep::Every] {
        let (v1, _) = images();
        let mut pon = Pon::with_mode(1, &v1, &target, &cfg, Mode::Unicast, |_, _| {});
        pon.watch_olt_keeping(keep);
        pon.run(Duration::from_secs(120));
        let o = &pon.observers[&OnuId(1)];
        assert_eq!(o.count(Rule::ArBeforeLast), expected, "{keep:?}");
        assert_eq!(o.total(), expected, "{keep:?}");
        let summary = o.summary();
        assert_eq!(summary.len(), 1, "one entry per rule: {summary:#?}");
        let s = &summary[0];
        assert_eq!((s.rule, s.count), (Rule::ArBeforeLast, expected));
        assert_eq!(s.source, "G.988 A.3.22, I.3");
        assert!(!s.frame.is_empty() && s.frame != s.last_frame, "{s:#?}");
        let report = o.report();
        match keep {
            Keep::Summary => {
                assert_eq!(o.violations(), [], "no list kept");
                assert_eq!(report.all, None);
            }
            Keep::Every => {
                let all = report.all.clone().unwrap();
                assert_eq!(all.len() as u64, expected);
                assert_eq!(
                    (&all[0].frame, &all[all.len() - 1].frame),
                    (&s.frame, &s.last_frame)
                );
            }
        }
        seen.push(summary.to_vec());
    }
    assert_eq!(
        seen[0], seen[1],
        "the summary does not depend on what else is kept"
    );
}
