//! The fleet with real processes on loopback: a `fleet` service, `olt worker` controllers and
//! `onu` processes. Each test runs on SQLite, and again on PostgreSQL when
//! `FLEET_TEST_POSTGRES_URL` names a server (`.ci/postgres` starts one).
//!
//! - Only the right token changes the fleet: no token, a viewer's, a controller's.
//! - The library's fleet scenarios, by name (`scenario run NAME`, their expectations in the
//!   files, checked by the runner): `fleet-kill-switch`, a 4-OLT fleet whose canary wave of an
//!   image built to fail its boot trips the fleet-wide kill switch (no ONU past the canary
//!   touched, every ONU still boots V1.0); `fleet-takeover`, a controller SIGKILLed mid-wave
//!   whose standby takes the PON over from what the store recorded (an ONU committed before
//!   the kill is not upgraded again, the PON never has two holders), the fleet service itself
//!   restarted mid-campaign, every ONU on V2.0 at the end.
//! - `fleet-deltas`: 2 OLTs of 2 PONs, every ONU on V1.0 rebuilds V2.0 from the store's delta.
//! - Delta packages: a campaign of the full image sends each base's ONUs the store's delta
//!   from their version, falls back to the full image for an ONU that refuses its delta, and
//!   records per ONU the package it was sent; a campaign of a delta package is refused.
//! - Two controllers, two PONs each: a canary spread over the PONs, then cascading groups,
//!   each started only once the wave before it was healthy, never more PONs at once than the
//!   cap, ending with every ONU upgraded.

use std::time::{Duration, Instant};

use harness::fleet::{Backend, FleetLab, slot};
use olt::worker::ClientError;
use serde_json::{Value, json};

harness::tools!();

fn lab(backend: &Backend) -> FleetLab {
    FleetLab::new(
        env!("CARGO_BIN_EXE_lab"),
        env!("CARGO_BIN_EXE_lab-fleet"),
        backend,
    )
}

fn add_package(l: &FleetLab, version: &str) -> String {
    l.fleet_cli(&[
        "package",
        "add",
        &format!("--image={}", l.p(&format!("{version}.img"))),
        &format!("--manifest={}", l.p(&format!("{version}.json"))),
        &format!("--id=lab-{version}"),
    ]);
    format!("lab-{version}")
}

fn status(e: &ClientError) -> u16 {
    match e {
        ClientError::Refused { status, .. } => *status,
        other => panic!("not a refusal but: {other}"),
    }
}

#[test]
fn only_an_operator_token_changes_the_fleet_and_every_change_says_who() {
    for backend in Backend::all("only_an_operator_token_changes_the_fleet") {
        let b = backend.name();
        let l = lab(&backend);
        l.build("V2.0", 3000, false);
        let image = std::fs::read(l.p("V2.0.img")).unwrap();
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(l.p("V2.0.json")).unwrap()).unwrap();
        use base64::Engine;
        let upload = json!({
            "manifest": manifest,
            "image_base64": base64::engine::general_purpose::STANDARD.encode(&image),
        });
        let spec = json!({ "name": "x", "package": "LAB-ONU-1-V2.0" });
        let nobody = olt::worker::FleetClient::new(&l.url(), "", Duration::from_secs(30));
        let forged =
            olt::worker::FleetClient::new(&l.url(), &"ab".repeat(32), Duration::from_secs(30));
        for (who, c, want) in [
            ("no token", nobody, 401),
            ("a forged token", forged, 401),
            ("a viewer", l.client("viewer"), 403),
            ("a controller", l.client("controller"), 403),
        ] {
            for (path, body) in [
                ("/api/packages", &upload),
                ("/api/campaigns", &spec),
                ("/api/campaigns/1/start", &json!({})),
                ("/api/campaigns/1/halt", &json!({ "reason": "r" })),
            ] {
                let e = c.post::<_, Value>(path, body).unwrap_err();
                assert_eq!(status(&e), want, "{b}: {who} POST {path}: {e}");
            }
        }
        // Nothing changed.
        let op = l.client("operator");
        let rows: Value = op.get("/api/status").unwrap();
        for t in ["packages", "campaigns", "audit"] {
            assert_eq!(rows["rows"][t], 0, "{b}: {t}: {rows}");
        }
        // A viewer reads; reads without a token are refused too.
        let _: Value = l.client("viewer").get("/api/campaigns").unwrap();
        let e = olt::worker::FleetClient::new(&l.url(), "", Duration::from_secs(30))
            .get::<Value>("/api/inventory")
            .unwrap_err();
        assert_eq!(status(&e), 401, "{b}");
        // The operator changes it, and the audit log says who did.
        let _: Value = op.post("/api/packages", &upload).unwrap();
        let created: Value = op.post("/api/campaigns", &spec).unwrap();
        let id = created["id"].as_i64().unwrap();
        let _: Value = op
            .post(
                &format!("/api/campaigns/{id}/halt"),
                &json!({ "reason": "test" }),
            )
            .unwrap();
        let audit: Value = l.client("viewer").get("/api/audit").unwrap();
        let actions: Vec<(String, String)> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["actor"].as_str().unwrap().into(),
                    a["action"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = ["package-add", "campaign-create", "campaign-halt"]
            .iter()
            .map(|a| ("operator".to_string(), a.to_string()))
            .collect();
        assert_eq!(actions, want, "{b}");
        // The tokens file is its owner's alone.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(l.p("fleet-state/tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{b}");
    }
}

/// Runs the library's fleet scenario `name` on every backend: it must pass, and its report
/// must hold the checks named in `must_check` (so that the file cannot lose them unseen).
fn library_scenario(name: &str, port: u16, must_check: &[&str]) -> Vec<Value> {
    let mut reports = Vec::new();
    for backend in Backend::all(name) {
        let b = backend.name();
        let started = Instant::now();
        let run = harness::fleet::run_scenario(
            env!("CARGO_BIN_EXE_lab"),
            env!("CARGO_BIN_EXE_lab-fleet"),
            name,
            &backend,
            port,
            180,
        );
        assert_eq!(run.code, Some(0), "{b}: {name} failed:\n{}", run.text);
        assert!(run.text.contains("PASSED"), "{b}: {}", run.text);
        let r = &run.report;
        assert_eq!(r["format"], "fleet-scenario-report", "{b}: {}", run.text);
        assert_eq!(r["passed"], true, "{b}");
        assert_eq!(r["database"], b, "{b}: the run used the backend asked for");
        let checks: Vec<&str> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for want in must_check {
            assert!(
                checks.contains(want),
                "{b}: no check {want:?} in {checks:?}"
            );
        }
        eprintln!("{b}: {name} in {:.1} s", started.elapsed().as_secs_f64());
        reports.push(run.report);
    }
    reports
}

#[test]
fn fleet_kill_switch_a_canary_that_fails_to_boot_halts_the_fleet_before_the_other_olts() {
    // scenarios/fleet-kill-switch.toml: 4 OLTs, one canary ONU on each, the kill switch.
    for r in library_scenario(
        "fleet-kill-switch",
        36000,
        &[
            "bricked",
            "outcome",
            "kill switch tripped",
            "waves",
            "untouched",
            "canary results",
            "OLTs with a canary",
            "every ONU committed",
            "untouched ONUs",
            "one holder",
        ],
    ) {
        let d = &r["campaign"];
        let reason = d["campaign"]["halt_reason"].as_str().unwrap();
        assert!(reason.starts_with("kill switch: "), "{reason}");
        assert_eq!(d["summary"]["results"]["untouched"], 12);
        assert_eq!(r["onus"], 16);
        assert_eq!(r["controllers"].as_array().unwrap().len(), 4);
    }
}

#[test]
fn fleet_deltas_every_pon_gets_the_delta_from_v1_0_and_rebuilds_the_image_byte_for_byte() {
    // scenarios/fleet-deltas.toml: the full V2.0 and its delta from V1.0 in the store, a
    // campaign of the full image; every ONU is on V1.0, so every one gets the delta.
    for r in library_scenario(
        "fleet-deltas",
        39000,
        &[
            "bricked",
            "outcome",
            "upgraded",
            "delta ONUs",
            "fell back",
            "rebuilt byte for byte",
            "every ONU committed",
        ],
    ) {
        let results = r["campaign"]["results"].as_array().unwrap();
        assert_eq!(results.len(), 16);
        for o in results {
            assert_eq!(o["package"], "delta from V1.0", "{o}");
        }
    }
}

#[test]
fn fleet_takeover_a_controller_killed_mid_wave_is_replaced_and_a_restarted_fleet_carries_on() {
    // scenarios/fleet-takeover.toml: olt-1's working controller SIGKILLed in wave 2, its
    // standby resumes the PON from the store, the fleet service restarts, all upgraded.
    for r in library_scenario(
        "fleet-takeover",
        37000,
        &[
            "bricked",
            "outcome",
            "upgraded",
            "one holder",
            "faults",
            "takeover: one holder while alive",
            "takeover: events of olt-1 PON 1 in wave 2",
            "takeover: after the lease",
            "takeover: by the standby",
            "takeover: committed ONUs untouched",
            "takeover: finished by the standby",
        ],
    ) {
        let kills = r["kills"].as_array().unwrap();
        assert_eq!(kills.len(), 1, "{kills:?}");
        assert_eq!(kills[0]["olt"], "olt-1");
        assert_eq!(kills[0]["work"]["wave"], 1, "killed in the second wave");
        let faults: Vec<&str> = r["faults"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert!(
            faults[1].contains("the fleet service stopped"),
            "{faults:?}"
        );
        assert!(
            faults[1].contains("campaign running"),
            "restarted mid-campaign: {faults:?}"
        );
        assert_eq!(r["campaign"]["summary"]["results"]["upgraded"], 8);
    }
}

/// The most work rows of `d` that ran at the same moment (by their start and finish times).
fn most_at_once(d: &Value) -> usize {
    let spans: Vec<(i64, i64)> = d["work"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| Some((w["started_at"].as_i64()?, w["finished_at"].as_i64()?)))
        .collect();
    spans
        .iter()
        .map(|(s, _)| spans.iter().filter(|(a, b)| a <= s && s < b).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_campaign_across_two_controllers_and_four_pons_cascades_from_the_canary_to_all_upgraded() {
    for backend in Backend::all("a_campaign_across_two_controllers_and_four_pons_cascades") {
        let b = backend.name();
        let started = Instant::now();
        let mut l = lab(&backend);
        l.build("V2.0", 4000, false);
        l.add_olt("olt-1", 2, 3, 1);
        l.add_olt("olt-2", 2, 3, 21);
        std::thread::sleep(Duration::from_millis(1200));
        l.start_controller(0, "ctl-1");
        l.start_controller(1, "ctl-2");
        let inv = l.wait_for("12 ONUs in the inventory", "/api/inventory", 45, |v| {
            v["onus"].as_array().is_some_and(|o| o.len() == 12)
        });
        for o in inv["onus"].as_array().unwrap() {
            assert_eq!(o["active_version"], "V1.0", "{b}: {o}");
        }
        let pkg = add_package(&l, "V2.0");
        let id = l
            .fleet_cli(&[
                "campaign",
                "create",
                "--name=cascade",
                &format!("--package={pkg}"),
                "--canary=25",
                "--groups=2",
                "--kill-threshold=20",
                "--health-settle-ms=200",
                "--max-parallel-pons=2",
                "--start",
            ])
            .trim()
            .to_string();
        let d = wait_for_campaign(&l, b, &id);
        assert_eq!(d["campaign"]["state"], "completed", "{b}");
        assert_eq!(d["summary"]["kill_switch"]["tripped"], false, "{b}");
        // A canary (3 ONUs, each on a different PON), then two groups, each started only
        // after the wave before it was judged healthy.
        let waves = d["waves"].as_array().unwrap();
        let kinds: Vec<&str> = waves.iter().map(|w| w["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["canary", "group", "group"], "{b}");
        for w in waves {
            assert_eq!(w["state"], "healthy", "{b}: {w}");
        }
        for pair in waves.windows(2) {
            let judged = pair[0]["finished_at"].as_i64().unwrap();
            let next = pair[1]["started_at"].as_i64().unwrap();
            assert!(
                next >= judged,
                "{b}: wave {} started before wave {} was healthy",
                pair[1]["wave"],
                pair[0]["wave"]
            );
        }
        let results = d["results"].as_array().unwrap();
        assert_eq!(results.len(), 12, "{b}");
        let canary: Vec<&Value> = results.iter().filter(|r| r["wave"] == 0).collect();
        assert_eq!(canary.len(), 3, "{b}: 25 % of 12");
        let canary_pons: std::collections::BTreeSet<(String, u64)> = canary
            .iter()
            .map(|r| {
                (
                    r["olt"].as_str().unwrap().to_string(),
                    r["pon"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            canary_pons.len(),
            3,
            "{b}: the canary spread over the PONs: {canary:?}"
        );
        for r in results {
            assert_eq!(r["result"], "upgraded", "{b}: {r}");
            assert_eq!(r["committed_version"], "V2.0", "{b}: {r}");
            let wave = &waves[r["wave"].as_u64().unwrap() as usize];
            assert!(
                r["started_at"].as_i64().unwrap() >= wave["started_at"].as_i64().unwrap(),
                "{b}: {r} began before its wave"
            );
            let ctl = if r["olt"] == "olt-1" {
                "ctl-1"
            } else {
                "ctl-2"
            };
            assert_eq!(r["controller"], ctl, "{b}: {r}");
        }
        // Every wave had work on both OLTs' PONs, never more than two PONs at once.
        assert!(
            most_at_once(&d) <= 2,
            "{b}: more than 2 PONs at once: {:#}",
            d["work"]
        );
        for w in d["work"].as_array().unwrap() {
            assert_eq!(w["state"], "done", "{b}: {w}");
            assert_eq!(w["attempts"], 1, "{b}: {w}");
        }
        // The inventory has caught up, and the flash agrees.
        let inv = l.wait_for(
            "the inventory to show V2.0 everywhere",
            "/api/inventory",
            10,
            |v| {
                v["onus"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["active_version"] == "V2.0" && o["committed_version"] == "V2.0")
            },
        );
        assert_eq!(inv["onus"].as_array().unwrap().len(), 12, "{b}");
        for (olt, id, s) in l.flash() {
            assert_eq!(slot(&s, "committed"), "V2.0", "{b}: {olt} ONU {id}: {s}");
            assert_eq!(slot(&s, "active"), "V2.0", "{b}: {olt} ONU {id}: {s}");
        }
        eprintln!(
            "{b}: cascading campaign in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Waits for campaign `id` with `fleet campaign wait` (exit 0 once it has completed), then
/// the campaign as the API has it.
fn wait_for_campaign(l: &FleetLab, b: &str, id: &str) -> Value {
    let out = fleet()
        .args(["campaign", "wait", id, "--timeout-s=90"])
        .arg(format!("--url={}", l.url()))
        .arg(format!("--state-dir={}", l.p("fleet-state")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{b}: fleet campaign wait: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    l.client("viewer")
        .get(&format!("/api/campaigns/{id}"))
        .unwrap()
}

/// SHA-256 of a file, hex.
fn sha256_of(path: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_fleet_campaign_sends_each_base_its_delta_and_falls_back_to_the_full_image() {
    for backend in Backend::all("a_fleet_campaign_sends_each_base_its_delta") {
        let b = backend.name();
        let mut l = lab(&backend);
        // V2.0 and V1.1 derive from V1.0 (the golden image); "V1.1-other" is another build of
        // V1.1, so its delta is one the V1.1 ONUs refuse (its base is not their image).
        let derive = |version: &str, out: &str, changed: &str, build: &str| {
            l.onu_tool(&[
                "image",
                "build",
                &format!("--key={}", l.p("lab.key")),
                "--model=LAB-ONU-1",
                &format!("--version={version}"),
                &format!("--build={build}"),
                &format!("--derive-from={}", l.p("V1.0.img")),
                &format!("--changed={changed}"),
                &format!("--out={}", l.p(&format!("{out}.img"))),
            ]);
        };
        derive("V1.1", "V1.1", "2", "1");
        derive("V1.1", "V1.1-other", "3", "2");
        derive("V2.0", "V2.0", "5", "1");
        for (from, out) in [("V1.0", "from-V1.0"), ("V1.1-other", "from-V1.1")] {
            l.onu_tool(&[
                "image",
                "delta",
                &format!("--from={}", l.p(&format!("{from}.img"))),
                &format!("--to={}", l.p("V2.0.img")),
                &format!("--key={}", l.p("lab.key")),
                &format!("--out={}", l.p(&format!("{out}.pkg"))),
            ]);
        }
        // ONUs 1-2 on V1.0, 3-4 on V1.1.
        l.add_olt_on("olt-1", 1, 4, 1, &["V1.0", "V1.1"]);
        std::thread::sleep(Duration::from_millis(1200));
        l.start_controller(0, "ctl-1");
        l.wait_for("4 ONUs in the inventory", "/api/inventory", 45, |v| {
            v["onus"].as_array().is_some_and(|o| o.len() == 4)
        });
        let full = add_package(&l, "V2.0");
        // The deltas' ids default to MODEL-VERSION-from-BASE, their bases read from the
        // packages themselves.
        let added = l.fleet_cli(&[
            "package",
            "add",
            &format!("--image={}", l.p("from-V1.0.pkg")),
            &format!("--manifest={}", l.p("from-V1.0.json")),
        ]);
        assert!(
            added.contains("package LAB-ONU-1-V2.0-from-V1.0:"),
            "{b}: {added}"
        );
        l.fleet_cli(&[
            "package",
            "add",
            &format!("--image={}", l.p("from-V1.1.pkg")),
            &format!("--manifest={}", l.p("from-V1.1.json")),
        ]);
        let packages: Value = l.client("viewer").get("/api/packages").unwrap();
        let kinds: Vec<(String, String, Value)> = packages
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["id"].as_str().unwrap().to_string(),
                    p["kind"].as_str().unwrap().to_string(),
                    p["base_version"].clone(),
                )
            })
            .collect();
        assert!(
            kinds.contains(&(
                "LAB-ONU-1-V2.0-from-V1.1".into(),
                "delta".into(),
                json!("V1.1")
            )),
            "{b}: {kinds:?}"
        );
        // A campaign names the full image: a delta package is refused there (exit 2).
        let out = fleet()
            .args(["campaign", "create", "--name=wrong"])
            .arg("--package=LAB-ONU-1-V2.0-from-V1.0")
            .arg(format!("--url={}", l.url()))
            .arg(format!("--state-dir={}", l.p("fleet-state")))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{b}: {err}");
        assert!(err.contains("is a delta package (from V1.0)"), "{b}: {err}");
        let id = l
            .fleet_cli(&[
                "campaign",
                "create",
                "--name=deltas",
                &format!("--package={full}"),
                "--canary=0",
                "--groups=1",
                "--health-settle-ms=200",
                "--start",
            ])
            .trim()
            .to_string();
        let d = wait_for_campaign(&l, b, &id);
        assert_eq!(d["campaign"]["state"], "completed", "{b}: {d:#}");
        let results = d["results"].as_array().unwrap();
        assert_eq!(results.len(), 4, "{b}");
        for r in results {
            assert_eq!(r["result"], "upgraded", "{b}: {r}");
            let want = if r["onu_id"].as_u64().unwrap() <= 2 {
                "delta from V1.0"
            } else {
                "full (delta refused)"
            };
            assert_eq!(r["package"], want, "{b}: {r}");
        }
        // The controller said what it sent, and what the full image alone would have cost.
        let events: Value = l.client("viewer").get("/api/events?limit=1000").unwrap();
        let said: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "pon-packages")
            .map(|e| e["detail"].as_str().unwrap())
            .collect();
        assert_eq!(said.len(), 1, "{b}: {events:#}");
        assert!(
            said[0].starts_with(
                "packages: delta from V1.0 to 2 ONUs, full to 2 ONUs, 2 ONUs refused the delta"
            ),
            "{b}: {}",
            said[0]
        );
        // Every flash holds the target byte for byte, committed and active.
        let target = sha256_of(&l.p("V2.0.img"));
        for (olt, onu, s) in l.flash() {
            assert_eq!(slot(&s, "committed"), "V2.0", "{b}: {olt} ONU {onu}: {s}");
            assert_eq!(slot(&s, "active"), "V2.0", "{b}: {olt} ONU {onu}: {s}");
            let sha = s["slots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["committed"] == true)
                .map(|x| x["sha256"].as_str().unwrap().to_string());
            assert_eq!(sha.as_deref(), Some(target.as_str()), "{b}: ONU {onu}: {s}");
        }
    }
}

/// How many times `needle` occurs in `hay`.
fn occurrences(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn the_dashboard_loads_in_a_headless_browser_without_console_errors_and_shows_the_campaign() {
    let Some(chrome) = harness::fleet::chromium() else {
        if std::env::var_os("FLEET_TEST_REQUIRE_BROWSER").is_some() {
            panic!("FLEET_TEST_REQUIRE_BROWSER is set but no chromium was found");
        }
        eprintln!(
            "the_dashboard_loads_in_a_headless_browser: skipped: no chromium on this machine (apt-get install chromium; .ci/run installs it)"
        );
        return;
    };
    let mut l = lab(&Backend::Sqlite);
    l.build("V2.0", 200_000, false);
    l.add_olt("olt-1", 1, 3, 1);
    l.add_olt("olt-2", 1, 3, 11);
    std::thread::sleep(Duration::from_millis(1200));
    l.start_controller(0, "ctl-1");
    l.start_controller(1, "ctl-2");
    l.wait_for("6 ONUs in the inventory", "/api/inventory", 45, |v| {
        v["onus"].as_array().is_some_and(|o| o.len() == 6)
    });
    let profile = l.dir.path().join("chromium");
    let viewer = l.token("viewer");
    let page = format!("{}/#token={viewer}", l.url());

    // The page is self-contained: nothing it loads comes from another host.
    let html = l.client("viewer").get_bytes("/").unwrap();
    let html = String::from_utf8_lossy(&html);
    for bad in ["src=\"http", "href=\"http", "@import", "url(http", "//cdn"] {
        assert!(
            !html.contains(bad),
            "the dashboard loads {bad}… from the network"
        );
    }

    // Without a token: it says how to give one, and nothing goes wrong.
    let bare = harness::fleet::load_in_browser(&chrome, &profile, &format!("{}/", l.url()), 1500);
    assert!(bare.console.is_empty(), "console: {:#?}", bare.console);
    assert!(bare.dom.contains("No token yet"), "{}", bare.dom);

    let pkg = add_package(&l, "V2.0");
    let id = l
        .fleet_cli(&[
            "campaign",
            "create",
            "--name=watched",
            &format!("--package={pkg}"),
            "--canary=25",
            "--groups=1",
            "--health-settle-ms=200",
            "--mode=unicast",
            "--pace=2500",
            "--start",
        ])
        .trim()
        .to_string();
    let path = format!("/api/campaigns/{id}");
    // Mid-campaign: the canary healthy, the group running on both PONs.
    l.wait_for("the group wave to run, its ONUs started", &path, 30, |d| {
        d["waves"][0]["state"] == "healthy"
            && d["waves"][1]["state"] == "running"
            && d["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["wave"] == 1 && !r["from_version"].is_null())
                .count()
                >= 2
    });
    let running = harness::fleet::load_in_browser(&chrome, &profile, &page, 2500);
    assert!(
        running.console.is_empty(),
        "console: {:#?}",
        running.console
    );
    let dom = &running.dom;
    assert!(
        dom.contains(r#"<span class="badge running">running</span>"#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-wave="0" data-state="healthy""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"data-wave="1" data-state="running""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"id="kill-switch" data-tripped="false""#),
        "{dom}"
    );
    assert!(dom.contains("ctl-1") && dom.contains("ctl-2"), "{dom}");
    assert_eq!(
        occurrences(dom, r#"title="LABS"#),
        6,
        "a cell per ONU: {dom}"
    );
    assert_eq!(
        occurrences(dom, r#"<div class="onu" data-result="upgraded""#),
        2,
        "the canaries, one per PON: {dom}"
    );
    assert!(
        dom.contains(r#"<div class="onu running" data-result="pending""#),
        "{dom}"
    );
    assert!(
        dom.contains(r#"id="error" style="display: none;""#),
        "{dom}"
    );
    assert!(dom.contains("lease-granted"), "the events: {dom}");
    assert_eq!(
        occurrences(dom, r#"<button id="halt">"#),
        2,
        "a halt button: {dom}"
    );

    // Halted by the operator: the page says so, and why, and which ONUs it stopped.
    let _: Value = l
        .client("operator")
        .post(
            &format!("/api/campaigns/{id}/halt"),
            &json!({ "reason": "stopped to look at the canary" }),
        )
        .unwrap();
    l.wait_for(
        "the campaign to halt and its PONs be given back",
        &path,
        30,
        |d| {
            d["campaign"]["state"] == "halted"
                && d["work"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|w| w["state"] == "done" || w["state"] == "cancelled")
        },
    );
    let halted = harness::fleet::load_in_browser(&chrome, &profile, &page, 2500);
    assert!(halted.console.is_empty(), "console: {:#?}", halted.console);
    let dom = &halted.dom;
    assert!(
        dom.contains(r#"<span class="badge halted">halted</span>"#),
        "{dom}"
    );
    assert!(dom.contains("stopped to look at the canary"), "{dom}");
    // (The one left is in the page's script.)
    assert_eq!(
        occurrences(dom, r#"<button id="halt">"#),
        1,
        "no halt button: {dom}"
    );
    assert!(!dom.contains(r#"<div class="onu running""#), "{dom}");
    assert_eq!(
        occurrences(dom, r#"<div class="onu" data-result="halted""#),
        4,
        "the group's ONUs: {dom}"
    );
    assert_eq!(
        occurrences(dom, r#"<tr data-result="halted">"#),
        4,
        "the failures table: {dom}"
    );
}

#[test]
fn the_fleet_benchmark_file_reads_and_is_the_size_it_says() {
    // docs/bench/fleet-1024.toml is run by hand (docs/benchmarks.md), not here: it must
    // still read, and still be 2 controllers and 8 PONs of 128 ONUs.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench/fleet-1024.toml");
    let s = scenarios::spec::load(&path).unwrap();
    let f = s.fleet.as_ref().unwrap();
    assert_eq!(f.olts, 2);
    assert!(f.standby.is_empty(), "one controller per OLT: two in all");
    assert_eq!(u32::from(s.topology.pons) * u32::from(f.olts), 8);
    assert_eq!(s.topology.onus.0, 128);
    assert!(
        f.campaign.canary > 0 && f.campaign.groups >= 2,
        "canary and cascading waves"
    );
}

#[test]
fn a_fleet_scenario_without_its_tool_or_with_a_one_olt_flag_is_one_line_and_exit_2() {
    for (args, want) in [
        (
            vec!["run", "fleet-kill-switch", "--fleet-bin=/nonexistent/fleet"],
            "--fleet-bin /nonexistent/fleet: no such file",
        ),
        (
            vec!["run", "fleet-kill-switch", "--pcap=x.pcap"],
            "--pcap is for a scenario of one OLT",
        ),
        (
            vec!["run", "fleet-kill-switch", "--fleet-db=mysql://x"],
            "--fleet-db \"mysql://x\": give postgres://",
        ),
    ] {
        let out = scenario().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_fleet_scenario_refuses_a_database_an_earlier_fleet_used() {
    // Its OLTs and campaign would be mixed into the new run's: one line, exit 2, before any
    // ONU starts.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fleet.db").display());
    let run = |port: u16| {
        scenario()
            .args(["run", "fleet-kill-switch"])
            .arg(format!("--fleet-bin={}", env!("CARGO_BIN_EXE_lab-fleet")))
            .arg(format!("--fleet-db={db}"))
            .arg(format!("--port={port}"))
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let first = run(38000);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let second = run(38000);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the database holds an earlier fleet (4 OLTs, 1 campaign); give an empty one"),
        "{err}"
    );
    assert!(!err.contains("starting"), "no ONU started: {err}");
}
