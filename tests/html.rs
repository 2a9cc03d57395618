//! The picture of a rollout in a real browser: `scenario run --html` of four ONU processes,
//! one of which loses power during the busy phase of End software download, loaded in headless
//! Chromium (`harness::browser`): the page loads without a console message or a script error,
//! its script ran, and its DOM shows every ONU with the phases it went through and the power
//! cut on the right row. And a page of 128 ONUs with a failure, drawn by `olt::html` from a
//! report, loads as cleanly and shows every row and the failure's reason.
//!
//! Without Chromium on the PATH each test says in one line that it is skipped, unless
//! `LAB_REQUIRE_BROWSER=1` (as `.ci/run` sets it once Chromium is installed).

use std::time::Duration;

use harness::browser::{Chromium, Loaded};

harness::tools!();

const CUT: &str = r#"
name = "html-power-cut"
description = "4 ONUs; ONU 2 loses power during the busy phase of End software download; every ONU still ends on V2.0."
time_limit_s = 60

[topology]
onus = 4
busy_ms = 300

[image]
version = "V2.0"
size = 16384

[olt]
mode = "multicast"

[[faults]]
kind = "power-loss"
onus = "2"
point = "during-busy"

[expect]
failed = 0

[[expect.onus]]
onus = "all"
result = "upgraded"
committed = "V2.0"
active = "V2.0"
"#;

/// The part of the DOM that draws ONU `id`'s row of the timeline (PON 1).
fn row(dom: &str, id: u16) -> &str {
    let start = dom
        .find(&format!("id=\"row-1-{id}\""))
        .unwrap_or_else(|| panic!("no timeline row of ONU {id}"));
    let rest = &dom[start..];
    let end = rest[1..]
        .find("<g class=\"onu")
        .or_else(|| rest.find("</svg>"))
        .map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

/// The page loaded cleanly: no console message, no script error, the script ran.
fn assert_clean(page: &Loaded) {
    assert!(
        page.console.is_empty(),
        "the page wrote to the console:\n{}",
        page.console.join("\n")
    );
    assert!(
        page.dom.contains("data-ready=\"yes\""),
        "the page's script did not run to its end; the browser said:\n{}",
        page.log
    );
    assert!(
        page.dom
            .contains("<pre id=\"script-errors\" class=\"notok\" hidden=\"\"></pre>"),
        "a script error is shown on the page"
    );
}

#[test]
fn a_scenario_with_a_power_cut_draws_every_onu_and_the_cut() {
    let Some(browser) =
        Chromium::or_skip("a_scenario_with_a_power_cut_draws_every_onu_and_the_cut")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.toml");
    std::fs::write(&file, CUT).unwrap();
    let html = dir.path().join("cut.html");
    let out = scenario()
        .arg("run")
        .arg(&file)
        .arg(format!("--html={}", html.display()))
        .arg("--port=48600")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("page: {}", html.display())),
        "{text}"
    );
    let source = std::fs::read_to_string(&html).unwrap();
    for external in ["http://", "https://", " src=", "<link"] {
        assert!(
            !source.contains(external),
            "the page fetches something: {external}"
        );
    }

    let page = browser.load(&html, Duration::from_secs(60));
    assert_clean(&page);
    let dom = &page.dom;
    assert!(
        dom.contains("<span id=\"shown\">4</span>"),
        "the script counted the rows"
    );
    assert!(dom.contains("every expectation held"), "the verdict");
    assert!(
        dom.contains("<td class=\"result\">upgraded</td><td>V2.0</td><td>V2.0</td><td class=\"n\">4</td><td>1-4</td>"),
        "the summary table: 4 ONUs upgraded, committed and active V2.0"
    );
    assert!(dom.contains("the ONUs hold "), "the window progress");
    for id in 1..=4 {
        let r = row(dom, id);
        assert!(
            r.contains("data-result=\"upgraded\""),
            "ONU {id} upgraded: {r}"
        );
        for phase in ["download", "end", "busy", "activate", "reboot", "commit"] {
            assert!(
                r.contains(&format!("data-phase=\"{phase}\"")),
                "ONU {id}'s row shows its {phase} phase: {r}"
            );
        }
        assert!(
            dom.contains(&format!("id=\"onu-1-{id}\"")),
            "ONU {id} in the table"
        );
    }
    let cut = row(dom, 2);
    assert!(
        cut.contains("ONU 2: power cut during the busy phase of End software download"),
        "the power cut is marked on ONU 2's row, in words: {cut}"
    );
    assert!(
        cut.matches("data-phase=\"download\"").count() >= 2,
        "ONU 2 downloaded again after its power cut: {cut}"
    );
    for id in [1, 3, 4] {
        assert!(
            !row(dom, id).contains("class=\"mark fault\""),
            "no fault on ONU {id}'s row"
        );
    }
}

#[test]
fn a_page_of_128_onus_with_a_failure_loads_cleanly() {
    let Some(browser) = Chromium::or_skip("a_page_of_128_onus_with_a_failure_loads_cleanly") else {
        return;
    };
    use olt::engine::{Mode, PonPort};
    use olt::report::*;
    let onus: Vec<OnuReport> = (1..=128u16)
        .map(|id| {
            let failed = id == 77;
            OnuReport {
                pon: PonPort(1),
                id,
                serial: Some(format!("LABS{id:08X}")),
                result: if failed {
                    OnuResult::Failed
                } else {
                    OnuResult::Upgraded
                },
                reason: if failed {
                    "End software download answered 1 (command processing error) <for a test>"
                        .into()
                } else {
                    String::new()
                },
                wave: Some(1),
                model: None,
                from_version: Some("V1.0".into()),
                to_version: "V2.0".into(),
                committed_version: Some(if failed { "V1.0" } else { "V2.0" }.into()),
                active_version: Some(if failed { "V1.0" } else { "V2.0" }.into()),
                retries: 0,
                timeouts: 0,
                repaired_windows: 0,
                busy: 1,
                restarts: 0,
                frames: 10,
                frames_with_ar: 2,
                phases_s: Default::default(),
                timeline: ["discover", "start", "download", "end", "busy"]
                    .iter()
                    .chain(if failed {
                        &[][..]
                    } else {
                        &["verify", "activate", "reboot", "commit"][..]
                    })
                    .enumerate()
                    .map(|(i, p)| PhaseReport {
                        phase: p.to_string(),
                        start_s: i as f64 * 0.5 + f64::from(id) * 0.001,
                        duration_s: 0.5,
                    })
                    .collect(),
            }
        })
        .collect();
    let done = CampaignReport {
        outcome: CampaignOutcome::Completed,
        halt_reason: None,
        waves: vec![(1..=128).collect()],
    };
    let report = Report {
        format: Report::FORMAT.into(),
        format_version: Report::FORMAT_VERSION,
        tool_version: "test".into(),
        started_at: "2026-12-02T00:00:00.000Z".into(),
        listen: "127.0.0.1:47001".into(),
        tci_seed: 1,
        mode: Mode::Multicast,
        image: ImageReport {
            version: "V2.0".into(),
            size: 1 << 20,
            sha256: "00".into(),
        },
        duration_s: 5.0,
        campaign: done.clone(),
        totals: Totals {
            onus: 128,
            upgraded: 127,
            failed: 1,
            ..Totals::default()
        },
        pons: vec![PonReport {
            pon: PonPort(1),
            group: "239.255.0.1:47000".into(),
            campaign: done,
            totals: Totals::default(),
            windows: (0..=10)
                .map(|i| WindowSample {
                    t_s: i as f64 * 0.3,
                    held: 128 * 100 * i / 10,
                    of: 128 * 100,
                    group_sent: (100 * i / 10) as u32,
                    group_windows: 100,
                    repairs: i / 3,
                })
                .collect(),
            packages: Default::default(),
        }],
        onus,
    };
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("big.html");
    std::fs::write(
        &html,
        olt::html::render(&olt::html::Page::of_report(&report)),
    )
    .unwrap();

    let page = browser.load(&html, Duration::from_secs(60));
    assert_clean(&page);
    let dom = &page.dom;
    assert!(
        dom.contains("<span id=\"shown\">128</span>"),
        "128 rows drawn"
    );
    for id in 1..=128 {
        let r = row(dom, id);
        assert!(r.contains("data-phase=\"download\""), "ONU {id}'s download");
    }
    let failed = row(dom, 77);
    assert!(failed.contains("data-result=\"failed\""), "{failed}");
    assert!(
        failed.contains(
            "ONU 77: failed: End software download answered 1 (command processing error) &lt;for a test&gt;"
        ),
        "the failure is marked with its reason, escaped: {failed}"
    );
    assert_eq!(
        dom.matches("class=\"failure-mark\"").count(),
        1,
        "one failure marked"
    );
    assert!(
        dom.contains("<td class=\"n\">127</td><td>1-76, 78-128</td>"),
        "the summary table's upgraded ONUs"
    );
}
