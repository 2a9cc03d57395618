//! The conformance suites in-process, on the simulated PON's virtual clock (`harness::sim`):
//! the ONU suite against real ONU cores (clean; with each quirk of a weaker emulator, the
//! not-supported one included; behind the scripted targets of `harness::targets`: a MIB with
//! one flaw, MIB answers with a result byte where a count belongs, garbage; dying after any
//! number of checks; and over the OB-BAA framing), and the OLT
//! observer beside ONU cores that our OLT engine upgrades (clean, and with each quirk of a
//! weaker OLT). The same faces run against real processes in `conformance.rs`.

use std::time::Duration;

use conformance::{CATALOGUE, Keep, OnuSuite, Report, Rule, RunEnd, Target, Verdict, Violation};
use harness::images::image;
use harness::sim::{Pon, Script};
use harness::targets::{self, MibFlaw};
use olt::engine::Mode;
use olt::image::UpgradeImage;
use olt::session::SessionConfig;
use omci_codec::obbaa::CtermName;
use omci_codec::{Format, OnuId};
use onu::core::{OnuConfig, Quirks};
use pon::transport::Framing;

/// Virtual time the whole suite may take (it waits out timeouts and reboots).
const SUITE_LIMIT: Duration = Duration::from_secs(600);
/// The suite's timeout per answer here.
const TIMEOUT: Duration = Duration::from_millis(500);

/// The images of the process tests: V1 golden, V2 the target.
fn images() -> (Vec<u8>, Vec<u8>) {
    (
        image("V1.0", 1, 8000, false),
        image("V2.0", 2, 20_000, false),
    )
}

fn target(framing: Framing) -> Target {
    Target {
        name: "ONU 1 (in-process)".into(),
        onu: OnuId(1),
        image: UpgradeImage::new(images().1).unwrap(),
        timeout: TIMEOUT,
        reboot_timeout: Duration::from_secs(5),
        call_in_progress: true,
        emergency_call_in_progress: true,
        framing,
    }
}

/// A PON of one ONU core tuned by `tune` (with a voice and an emergency call in progress, as
/// the process tests run it), `script` in front of it, the suite as its controller.
fn pon_of(
    tune: impl Fn(&mut OnuConfig),
    script: Option<Script>,
    framing: Framing,
) -> Pon<OnuSuite> {
    let (v1, _) = images();
    let t = target(framing.clone());
    let mut pon = Pon::build(
        1,
        &v1,
        |_, c| {
            c.voice_call_in_progress = true;
            c.emergency_call_in_progress = true;
            tune(c);
        },
        |_, now| OnuSuite::new(t, now),
    );
    if let Some(s) = script {
        pon.scripts.insert(OnuId(1), s);
    }
    if framing != Framing::Lab {
        pon.onu_framing.insert(OnuId(1), framing);
    }
    pon
}

/// The suite run to its end against an ONU core tuned by `tune`.
fn suite(tune: impl Fn(&mut OnuConfig)) -> Pon<OnuSuite> {
    let mut pon = pon_of(tune, None, Framing::Lab);
    pon.run(SUITE_LIMIT);
    pon
}

fn with(r: &Report, f: fn(&Verdict) -> bool) -> Vec<&str> {
    r.checks
        .iter()
        .filter(|c| f(&c.verdict))
        .map(|c| &*c.id)
        .collect()
}

fn failed(r: &Report) -> Vec<&str> {
    with(r, |v| matches!(v, Verdict::Fail { .. }))
}

fn skipped(r: &Report) -> Vec<&str> {
    with(r, |v| matches!(v, Verdict::Skip { .. }))
}

fn errors(r: &Report) -> Vec<&str> {
    with(r, |v| matches!(v, Verdict::Error { .. }))
}

fn why<'r>(r: &'r Report, id: &str) -> &'r str {
    match &r.checks.iter().find(|c| c.id == id).unwrap().verdict {
        Verdict::Skip { why } | Verdict::Error { why } => why,
        Verdict::Fail { observed, .. } => observed,
        Verdict::Pass => "",
    }
}

/// Every check of the catalogue, once, in catalogue order; and the three outputs complete.
fn assert_complete(r: &Report) {
    let ran: Vec<(&str, &str, &str)> = r
        .checks
        .iter()
        .map(|c| (&*c.id, &*c.title, &*c.source))
        .collect();
    let catalogue: Vec<(&str, &str, &str)> = CATALOGUE
        .iter()
        .map(|c| (c.id, c.title, c.source))
        .collect();
    assert_eq!(ran, catalogue, "{}", r.table());
    assert_eq!(r.passed + r.failed + r.skipped + r.errors, CATALOGUE.len());
    let junit = r.junit();
    assert_eq!(junit.matches("<testcase ").count(), CATALOGUE.len());
    assert_eq!(junit.matches("<failure ").count(), r.failed);
    assert_eq!(junit.matches("<skipped ").count(), r.skipped);
    assert_eq!(junit.matches("<error ").count(), r.errors);
    let json = serde_json::to_string(r).unwrap();
    assert_eq!(&serde_json::from_str::<Report>(&json).unwrap(), r);
    let table = r.table();
    for c in &r.checks {
        assert!(
            table.contains(&format!(" {:<7} {}  [", c.id, c.title)),
            "{}: {table}",
            c.id
        );
    }
    assert!(
        table.ends_with(&format!(
            "{} checks: {} passed, {} failed, {} skipped, {} errors; {}\n",
            CATALOGUE.len(),
            r.passed,
            r.failed,
            r.skipped,
            r.errors,
            r.end_line()
        )),
        "{table}"
    );
    // No verdict is said in Rust's words.
    for c in &r.checks {
        let text = serde_json::to_string(&c.verdict).unwrap();
        for rust in [
            "Some(",
            "None",
            "Success",
            "ProcessingError",
            "NotSupported",
        ] {
            assert!(!text.contains(rust), "{}: {text}", c.id);
        }
    }
}

#[test]
fn the_clean_onu_core_passes_all_48_checks_in_catalogue_order() {
    let pon = suite(|_| {});
    assert!(pon.olt.is_finished());
    let r = pon.olt.report();
    assert_eq!(r.end, RunEnd::Completed, "{}", r.table());
    assert_eq!(
        (r.passed, r.failed, r.skipped, r.errors),
        (48, 0, 0, 0),
        "{}",
        r.table()
    );
    assert_complete(&r);
    // The suite leaves the ONU running the target image, committed.
    let onu = pon.onus[&OnuId(1)].as_ref().expect("ONU up");
    assert_eq!(onu.running(), onu.metadata().committed);
    assert_eq!(
        pon.flash(OnuId(1)).slots[usize::from(onu.running())],
        images().1
    );
}

#[test]
fn an_onu_that_answers_the_mib_upload_with_a_result_byte_is_told_from_a_count() {
    // In front of the core, MIB upload and Get all alarms answered as this ONU once did: a
    // result byte, "not supported", where G.988 puts a count (read as a count: 512). The
    // suite tells it from a count by the next command, and skips with that reason.
    let mut pon = pon_of(
        |_| {},
        Some(targets::mib(MibFlaw::ResultByte)),
        Framing::Lab,
    );
    pon.run(SUITE_LIMIT);
    let r = pon.olt.report();
    assert_complete(&r);
    assert_eq!(r.end, RunEnd::Completed);
    assert_eq!(failed(&r), Vec::<&str>::new(), "{}", r.table());
    assert_eq!(skipped(&r), ["MIB-02", "MIB-03", "MIB-04"], "{}", r.table());
    assert!(
        why(&r, "MIB-02").contains("result 2, command not supported")
            && why(&r, "MIB-02").contains("512 commands"),
        "{}",
        r.table()
    );
    assert!(
        why(&r, "MIB-04").contains("does not implement Get all alarms"),
        "{}",
        r.table()
    );
    assert_eq!(r.passed, 45);
}

#[test]
fn each_mib_flaw_fails_its_check_and_no_other() {
    for (flaw, fails) in [
        (MibFlaw::SyncNotReset, "MIB-01"),
        (MibFlaw::CountOneMore, "MIB-02"),
        (MibFlaw::NoAniG, "MIB-03"),
        (MibFlaw::StaleSoftwareImage, "MIB-03"),
        (MibFlaw::GhostAlarm, "MIB-04"),
    ] {
        let mut pon = pon_of(|_| {}, Some(targets::mib(flaw)), Framing::Lab);
        pon.run(SUITE_LIMIT);
        let r = pon.olt.report();
        assert_complete(&r);
        assert_eq!(failed(&r), [fails], "{flaw:?}: {}", r.table());
        // A broken upload leaves nothing for MIB-03 to judge; a count of 0 alarms is then
        // told from no zeroed answer.
        let expect_skipped: &[&str] = match flaw {
            MibFlaw::CountOneMore => &["MIB-03", "MIB-04"],
            _ => &[],
        };
        assert_eq!(skipped(&r), expect_skipped, "{flaw:?}: {}", r.table());
    }
}
#[test]
fn each_onu_quirk_fails_the_checks_it_breaks_and_no_other() {
    // The process tests (conformance.rs) ask for the first checks of each row; on virtual
    // time the whole list is exact, and so is what each quirk leaves the suite unable to
    // judge (skipped, with why):
    // - no-section-tracking acknowledges window 0 with a section missing, so the repeat of
    //   window 0 is taken as window 1 and the image comes out wrong: End's CRC fails DLS-11;
    //   DLS-07 and DLS-08's successes say nothing from an ONU that acknowledges anything;
    // - always-valid reports the aborted image valid: ACT-01 and COM-01 have no image that is
    //   not valid to try;
    // - no-fallback stays on the new image at ACT-04's reboot: COM-03 has no evidence that a
    //   reboot reboots;
    // - end-before-write never writes an image: no download leaves it valid (DLS-01..05,
    //   DLS-11, EXT-01 and END-06 fail), so there is nothing to activate, and no "valid"
    //   that END-03 or END-07 could see go.
    for (quirk, fails, skips) in [
        (
            "no-section-tracking",
            &["STA-06", "DLS-06", "DLS-11"][..],
            &["DLS-07", "DLS-08"][..],
        ),
        (
            "always-valid",
            &["END-03", "END-07"][..],
            &["ACT-01", "COM-01"][..],
        ),
        ("no-fallback", &["ACT-04"][..], &["COM-03"][..]),
        ("ignore-window-crc", &["DLS-10"][..], &[][..]),
        (
            "end-before-write",
            &[
                "DLS-01", "DLS-02", "DLS-03", "DLS-04", "DLS-05", "DLS-11", "END-02", "END-06",
                "EXT-01",
            ][..],
            &[
                "END-03", "END-07", "ACT-03", "ACT-04", "COM-02", "COM-03", "SWI-07", "ACT-02",
                "ACT-05", "ACT-01", "COM-01",
            ][..],
        ),
    ] {
        let mut pon = pon_of(|c| assert!(c.quirks.set(quirk)), None, Framing::Lab);
        pon.run(SUITE_LIMIT);
        let r = pon.olt.report();
        assert_eq!(r.end, RunEnd::Completed, "{quirk}");
        assert_complete(&r);
        assert_eq!(failed(&r), fails, "{quirk}: {}", r.table());
        assert_eq!(skipped(&r), skips, "{quirk}: {}", r.table());
    }
    // not-supported has its own test (below): it fails or skips every download check.
    assert_eq!(Quirks::NAMES.len(), 6, "a new quirk needs its row here");
}

#[test]
fn a_target_that_answers_not_supported_to_the_software_download_passes_no_download_check() {
    // Result 2 to every Start, Download section, End, Activate and Commit (the ONU's
    // not-supported quirk): a refusal check must not take it for a refusal, and no positive
    // check may pass.
    let mut pon = pon_of(
        |c| assert!(c.quirks.set("not-supported")),
        None,
        Framing::Lab,
    );
    pon.run(SUITE_LIMIT);
    let r = pon.olt.report();
    assert_complete(&r);
    assert_eq!(r.end, RunEnd::Completed);
    let download = |id: &str| {
        ["STA", "DLS", "END", "EXT", "ACT", "COM"].contains(&id.split('-').next().unwrap())
            || id == "SWI-07"
    };
    let passed: Vec<&str> = with(&r, |v| *v == Verdict::Pass);
    assert!(passed.iter().all(|id| !download(id)), "{}", r.table());
    assert_eq!(
        passed,
        [
            "SWI-01", "SWI-02", "SWI-03", "SWI-04", "SWI-05", "SWI-06", "ERR-01", "ERR-02",
            "ERR-03", "ERR-04", "MIB-01", "MIB-02", "MIB-03", "MIB-04"
        ],
        "{}",
        r.table()
    );
    // What it fails: every check that needs a download to work.
    assert_eq!(
        failed(&r),
        [
            "STA-04", "STA-05", "DLS-01", "DLS-02", "DLS-03", "DLS-04", "DLS-05", "END-05",
            "EXT-01"
        ],
        "{}",
        r.table()
    );
    assert!(
        why(&r, "DLS-01").contains("result 2, command not supported"),
        "{}",
        r.table()
    );
    // Every refusal is skipped, for that reason.
    for id in ["STA-01", "STA-02", "STA-03", "END-01", "END-02", "END-04"] {
        assert!(
            why(&r, id).contains("has not shown that it implements"),
            "{id}: {}",
            r.table()
        );
    }
    for id in ["ACT-01", "ACT-02", "ACT-05", "COM-01", "ACT-03", "COM-02"] {
        assert!(skipped(&r).contains(&id), "{id}: {}", r.table());
    }
    assert_eq!(r.failed + r.skipped + r.passed, CATALOGUE.len());
}

/// The checks judged on answers already in, which need no live target (SWI-01's answers).
const OFFLINE: [&str; 3] = ["SWI-02", "SWI-03", "SWI-04"];

/// The index of the check after which a target lost once `n` checks have their verdict is
/// found lost: the `n`-th, or the last of the offline checks that follow it.
fn lost_after(n: usize) -> usize {
    let mut i = n - 1;
    while i + 1 < CATALOGUE.len() && OFFLINE.contains(&CATALOGUE[i + 1].id) {
        i += 1;
    }
    i
}

/// The suite against the clean ONU (with its MIB), which dies for good once `n` checks have
/// their verdict; the report.
fn dying_after(n: usize) -> (Report, Duration) {
    let mut pon = pon_of(|_| {}, None, Framing::Lab);
    let mut died = None;
    pon.run_with(SUITE_LIMIT, |p| {
        if died.is_none() && p.olt.checks_done() >= n {
            p.die(OnuId(1));
            died = Some(p.now);
        }
    });
    let after = pon.now - died.expect("it died");
    (pon.olt.report(), after)
}

#[test]
fn a_target_that_dies_after_any_number_of_checks_still_gets_a_complete_report() {
    for n in [1, 6, 10, 14, 17, 21, 26, 31, 38, 41, 45, 47] {
        let (r, after) = dying_after(n);
        assert_complete(&r);
        // It died right after the n-th verdict: that one stands (and so do the checks judged
        // on answers already in), every later one is an error that says after which check
        // the target was lost.
        let i = lost_after(n);
        let last = CATALOGUE[i].id;
        assert_eq!(
            r.end,
            RunEnd::Lost {
                during: last.into(),
                why: format!("the target stopped answering after {last}"),
            },
            "n = {n}: {}",
            r.table()
        );
        assert_eq!(
            errors(&r),
            CATALOGUE[i + 1..].iter().map(|c| c.id).collect::<Vec<_>>(),
            "n = {n}"
        );
        // The checks before the loss that judged a live target kept their verdicts: the clean
        // ONU passes them all.
        assert_eq!(failed(&r), Vec::<&str>::new(), "n = {n}: {}", r.table());
        // One probe (a Get sent twice), after at most one request that tidies up after the
        // check (an abort), not a timeout per check.
        assert!(after <= 4 * TIMEOUT, "n = {n}: {after:?}");
    }
}

#[test]
fn a_target_that_dies_during_a_check_makes_that_check_an_error() {
    // Dead in the middle of DLS-03's download (50 datagrams into it): DLS-03 reached no
    // verdict of its own, so it is the error that says so; DLS-02 before it passed.
    let mut pon = pon_of(|_| {}, None, Framing::Lab);
    let at = CATALOGUE.iter().position(|c| c.id == "DLS-03").unwrap();
    let mut from = None;
    pon.run_with(SUITE_LIMIT, |p| {
        if p.olt.checks_done() == at && from.is_none() {
            from = Some(p.handled.get(&OnuId(1)).copied().unwrap_or(0));
        }
        if let Some(f) = from
            && p.handled.get(&OnuId(1)).copied().unwrap_or(0) >= f + 50
            && p.onus[&OnuId(1)].is_some()
        {
            p.die(OnuId(1));
        }
    });
    let r = pon.olt.report();
    assert_complete(&r);
    assert_eq!(
        r.end,
        RunEnd::Lost {
            during: "DLS-03".into(),
            why: "the target stopped answering during DLS-03".into(),
        },
        "{}",
        r.table()
    );
    assert_eq!(
        why(&r, "DLS-03"),
        "the target stopped answering during DLS-03"
    );
    assert_eq!(
        errors(&r),
        CATALOGUE[at..].iter().map(|c| c.id).collect::<Vec<_>>()
    );
    assert_eq!(failed(&r), Vec::<&str>::new());
}

#[test]
fn a_target_that_starts_answering_garbage_is_lost_and_the_report_is_complete() {
    for n in [3, 20, 40] {
        let mut pon = pon_of(|_| {}, None, Framing::Lab);
        let mut garbage = false;
        pon.run_with(SUITE_LIMIT, |p| {
            if !garbage && p.olt.checks_done() >= n {
                p.scripts.insert(OnuId(1), targets::garbage());
                garbage = true;
            }
        });
        let r = pon.olt.report();
        assert_complete(&r);
        assert!(
            matches!(r.end, RunEnd::Lost { .. }),
            "n = {n}: {}",
            r.table()
        );
        assert_eq!(
            errors(&r),
            CATALOGUE[lost_after(n) + 1..]
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            "n = {n}"
        );
    }
}

#[test]
fn a_silent_onu_is_unreachable_at_once_and_every_check_says_so() {
    let start = std::time::Instant::now();
    let mut pon = pon_of(|_| {}, None, Framing::Lab);
    let began = pon.now;
    pon.silent.push(OnuId(1));
    pon.run(SUITE_LIMIT);
    // Two Gets, each sent twice: four timeouts of virtual time.
    assert_eq!(pon.now - began, 4 * TIMEOUT);
    let r = pon.olt.finish();
    let why = "ONU 1 (in-process) does not answer (Get of ONU-G and of software image 0, 500 ms each, twice)";
    assert_eq!(r.end, RunEnd::Unreachable { why: why.into() });
    assert_complete(&r);
    assert_eq!(r.errors, CATALOGUE.len());
    assert!(
        r.checks
            .iter()
            .all(|c| c.verdict == Verdict::Error { why: why.into() })
    );
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn over_the_obbaa_framing_the_suite_skips_what_needs_a_trailer_or_a_window_crc() {
    // The ONU side of the framing converts at the ONU, as `onu run --transport obbaa` will.
    let framing = Framing::obbaa(CtermName::new("CT_1").unwrap());
    let mut pon = pon_of(|_| {}, None, framing);
    pon.run(SUITE_LIMIT);
    let r = pon.olt.report();
    assert_complete(&r);
    assert_eq!(r.end, RunEnd::Completed, "{}", r.table());
    assert_eq!(r.transport, pon::transport::TransportKind::Obbaa);
    assert_eq!(failed(&r), Vec::<&str>::new(), "{}", r.table());
    assert_eq!(skipped(&r), ["DLS-09", "DLS-10"], "{}", r.table());
    assert!(why(&r, "DLS-09").contains("no integrity trailer"));
    assert!(why(&r, "DLS-10").contains("no window CRC"));
    // No datagram carried the lab's window fields.
    assert_eq!(pon.with_window_fields, 0);
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
    // wrong CRC, ACT-01 activates and COM-01 commits an image that is not valid (the old
    // image 0, made not valid once the new image 1 is committed): the observer beside the ONU
    // sees each.
    let (v1, _) = images();
    let t = Target {
        call_in_progress: false,
        emergency_call_in_progress: false,
        ..target(Framing::Lab)
    };
    let mut pon = Pon::build(1, &v1, |_, _| {}, |_, now| OnuSuite::new(t, now));
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
        has(Rule::ActivateInvalid, "Activate of image 0"),
        "{found:#?}"
    );
    assert!(
        has(Rule::CommitBeforeActivate, "Commit of image 0"),
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
