//! Every scenario of the library, run as a user runs it: `scenario run NAME` (the library's
//! scenarios by name, from any directory) with real `olt` and `onu` processes on loopback, its
//! expectations checked by the runner (exit 0 when they all hold). The larger ones run with
//! fewer ONUs here (`--onus`); `quickstart` runs at its full 128 in `tests/quickstart.rs`, a
//! test binary of its own so that it has the machine to itself. Each test has its own port
//! range, so they can run in parallel. And the library as a user sees it: `scenario list`,
//! `scenario check`, a name that is not in it. (How a run ends by a signal: `lifecycle.rs`.)

harness::tools!();

/// Runs the library's scenario `name` by its name, from a directory that is not the
/// repository's.
fn run(name: &str, port: u16, extra: &[&str]) -> String {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = scenario()
        .arg("run")
        .arg(name)
        .arg(format!("--port={port}"))
        .args(extra)
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    assert!(text.contains("PASSED"), "{text}");
    text
}

/// The library's files: `scenarios/*.toml` but the crate's manifest.
fn library_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(harness::process::library())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn staged_maintenance_window() {
    let text = run("staged-maintenance-window", 23700, &[]);
    assert!(text.contains("`olt activate` starts"), "{text}");
    assert!(text.contains("`olt commit` starts"), "{text}");
}

#[test]
fn two_pons() {
    let text = run("two-pons", 23500, &[]);
    assert!(text.contains("of 2 PON ports"), "{text}");
    assert!(
        text.contains("ONU 11 process ended"),
        "the power cut happened: {text}"
    );
}

#[test]
fn unicast_baseline() {
    run("unicast-baseline", 23000, &["--onus", "8"]);
}

#[test]
fn lossy_pon() {
    run("lossy-pon", 24000, &["--onus", "12"]);
}

#[test]
fn power_loss_everywhere() {
    let text = run("power-loss-everywhere", 25000, &[]);
    assert!(text.contains("SIGABRT"), "the power cuts happened: {text}");
}

#[test]
fn canary_kill_switch() {
    let text = run("canary-kill-switch", 26000, &[]);
    assert!(text.contains("Campaign halted: kill switch"), "{text}");
}

#[test]
fn downgrade_refused() {
    run("downgrade-refused", 27000, &["--onus", "4"]);
}

#[test]
fn mixed_pon_deltas() {
    run("mixed-pon-deltas", 53000, &[]);
}

#[test]
fn mixed_pon_when_saving() {
    let text = run("mixed-pon-when-saving", 53800, &[]);
    assert!(
        text.contains("1.00 downloads"),
        "one download of the full image: {text}"
    );
}

#[test]
fn delta_wrong_base() {
    run("delta-wrong-base", 53200, &[]);
}

#[test]
fn delta_tampered() {
    run("delta-tampered", 53400, &[]);
}

#[test]
fn delta_power_cut() {
    let out = run("delta-power-cut", 53600, &[]);
    // Each ONU lost its power once, during its rebuild, and came back.
    assert_eq!(
        out.matches("the power supply starts it again").count(),
        3,
        "{out}"
    );
}

#[test]
fn tampered_image() {
    run("tampered-image", 28000, &["--onus", "4"]);
}

#[test]
fn wrong_model() {
    run("wrong-model", 29000, &[]);
}

#[test]
fn rogue_multicast_sender() {
    let text = run("rogue-multicast-sender", 30000, &["--onus", "8"]);
    assert!(text.contains("rogue sender put 400"), "{text}");
}

#[test]
fn olt_restart_resume() {
    let text = run("olt-restart-resume", 31000, &[]);
    assert!(text.contains("2 OLT processes"), "{text}");
}

#[test]
fn voice_call_defers_activation() {
    run("voice-call-defers-activation", 32000, &[]);
}

#[test]
fn teach_one_onu_explains_and_draws() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("teach.md");
    let pcap = dir.path().join("teach.pcap");
    let report = dir.path().join("teach.json");
    // A path still works (the others run by name).
    let file = harness::process::library().join("teach-one-onu.toml");
    let text = run(
        file.to_str().unwrap(),
        33000,
        &[
            &format!("--mermaid={}", md.display()),
            &format!("--pcap={}", pcap.display()),
            &format!("--report={}", report.display()),
        ],
    );
    // The narration is in the summary; the diagram went to its file.
    assert!(text.contains("Start software download"), "{text}");
    let diagram = std::fs::read_to_string(&md).unwrap();
    assert!(diagram.contains("```mermaid") && diagram.contains("sequenceDiagram"));
    let capture = omci_codec::pcap::read_capture(std::fs::File::open(&pcap).unwrap()).unwrap();
    assert!(capture.packets.len() > 20);
    assert!(
        capture.packets.iter().all(|p| p.envelope().is_some()),
        "the merged capture keeps every frame's envelope"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["passed"], true);
    assert_eq!(r["olt"]["totals"]["upgraded"], 1);
    // Self-describing: what it is, who wrote it, when, with which seed, where.
    assert_eq!(r["format"], "scenario-report");
    assert_eq!(r["format_version"], 1);
    assert!(r["tool_version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(
        r["started_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{}",
        r["started_at"]
    );
    assert!(r["seed"].is_u64());
    assert!(
        r["addresses"]["first_onu"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert!(
        r["addresses"]["groups"][0]
            .as_str()
            .is_some_and(|a| a.starts_with("239."))
    );
    // Each check as a structured object.
    let bricked = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bricked")
        .unwrap_or_else(|| panic!("{}", r["checks"]));
    assert_eq!(bricked["expected"], "0");
    assert_eq!(bricked["observed"], "0");
    assert_eq!(bricked["verdict"], "held");
}

#[test]
fn every_library_file_is_valid() {
    let files = library_files();
    assert!(files.len() >= 12, "{files:?}");
    let out = scenario().arg("check").args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_scenario_file_names_the_line_the_key_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    std::fs::write(
        &f,
        "name = \"bad\"\n[topology]\nonus = 4\n[image]\nversion = \"V2\"\n[olt]\nmode = \"broadcast\"\n",
    )
    .unwrap();
    let out = scenario().arg("run").arg(&f).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml") && err.contains("line 7, key `mode`"),
        "{err}"
    );
    assert!(
        err.contains("multicast") && err.contains("unicast"),
        "{err}"
    );
}

/// Runs `scenario ARGS --report FILE` (a soak), which must succeed: what it printed, and its
/// report.
fn soak(args: &[&str]) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("soak.json");
    let out = scenario()
        .args(args)
        .arg(format!("--report={}", report.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (text, r)
}

#[test]
fn soak_finds_nothing_bricked_and_no_data_lost() {
    let (text, r) = soak(&["soak", "--cases", "3", "--onus", "4", "--seed", "11"]);
    assert_eq!(r["cases"], 3, "{text}");
    assert_eq!(r["bricked"], 0, "{text}");
    assert_eq!(r["data_lost"], 0, "{text}");
    assert_eq!(r["upgraded"], 12, "{text}");
}

#[test]
fn a_recovery_soak_brings_every_wrecked_onu_back_over_tftp() {
    // Wrecked flashes restored over the embedded TFTP server, some losing power mid-restore,
    // then upgraded with the usual random faults: every wrecked ONU must end on V2.0.
    let (text, r) = soak(&[
        "soak",
        "--recovery",
        "--cases",
        "2",
        "--onus",
        "4",
        "--seed",
        "5",
    ]);
    assert_eq!(r["recovery"], true);
    assert_eq!(r["bricked"], 0, "{text}");
    assert_eq!(r["data_lost"], 0, "{text}");
    assert_eq!(r["upgraded"], 8, "{text}");
    let wrecked = r["wrecked"].as_u64().unwrap();
    assert!(wrecked >= 2, "every case wrecks at least one ONU:\n{text}");
    assert_eq!(r["recovered"].as_u64(), Some(wrecked), "{text}");
    // The seed cuts at least one restore halfway, and that ONU came back.
    let cut: Vec<&str> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["faults"].as_array().unwrap())
        .filter_map(|f| f.as_str())
        .filter(|f| f.contains("mid-golden-restore"))
        .collect();
    assert!(!cut.is_empty(), "no power cut mid-restore:\n{text}");
    assert!(
        text.contains("wrecked brought back by recovery mode"),
        "{text}"
    );
}

#[test]
fn a_delta_soak_rebuilds_through_power_cuts_inside_the_rebuild() {
    // Mixed PONs (V1.0 and V1.1 with their deltas, V1.2 with the full image), the usual random
    // faults plus power cuts at the rebuild's named points: nothing bricked, every ONU on
    // V2.0, each delta ONU rebuilt it.
    let (text, r) = soak(&[
        "soak", "--deltas", "--cases", "2", "--onus", "6", "--seed", "2",
    ]);
    assert_eq!(r["deltas"], true);
    assert_eq!(r["bricked"], 0, "{text}");
    assert_eq!(r["data_lost"], 0, "{text}");
    assert_eq!(r["upgraded"], 12, "{text}");
    assert_eq!(
        r["delta_onus"], 8,
        "4 of each case's 6 ONUs are on a delta base:\n{text}"
    );
    // The seed cuts power inside a rebuild, and those ONUs' processes did die there.
    let mut cut = 0;
    for case in r["runs"].as_array().unwrap() {
        let toml = case["scenario"].as_str().unwrap();
        let happened: Vec<&str> = case["faults"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        for f in toml.split("[[faults]]").skip(1) {
            if ![
                "mid-delta-rebuild",
                "delta-rebuilt-before-swap",
                "delta-swapped-before-metadata",
            ]
            .iter()
            .any(|p| f.contains(p))
            {
                continue;
            }
            let id = f
                .split("onus = \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let ended = format!("ONU {id} process ended");
            assert!(
                happened.iter().any(|h| h.contains(&ended)),
                "the rebuild cut of ONU {id} never happened: {happened:?}"
            );
            cut += 1;
        }
    }
    assert!(cut >= 1, "no power cut inside a rebuild:\n{text}");
    assert!(text.contains("rebuilt from a delta package"), "{text}");
}

#[test]
fn sigkills_and_a_silent_onu_on_a_random_share() {
    // Faults the library files do not use: a SIGKILL on a seeded share of the ONUs at a
    // protocol event, and an ONU silent for a while, mid-download.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("faults.toml");
    std::fs::write(
        &f,
        r#"
name = "faults"
seed = 5
[topology]
onus = 8
[image]
version = "V2.0"
size = 65536
security_version = 2
[[faults]]
kind = "sigkill"
share = 0.25
on = "window:4"
[[faults]]
kind = "silent"
onus = "8"
on = "window:2"
duration_s = 1.5
[expect]
upgraded = 8
"#,
    )
    .unwrap();
    let out = scenario()
        .arg("run")
        .arg(&f)
        .arg("--port=35000")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.matches("SIGKILL to ONU").count(), 2, "{text}");
    assert!(text.contains("ONU 8 silent (SIGSTOP)"), "{text}");
}

#[test]
fn list_shows_every_library_scenario_by_name_with_its_description() {
    // From the repository's root (as `cargo run -p scenarios -- list` runs it) and from
    // anywhere else, the same library.
    let root = harness::process::library().join("..");
    let elsewhere = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for dir in [root.as_path(), elsewhere.path()] {
        let out = scenario().arg("list").current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(String::from_utf8(out.stdout).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    let lines: Vec<&str> = outputs[0].lines().collect();
    let files = library_files();
    assert_eq!(lines.len(), files.len(), "{lines:#?}");
    for (line, file) in lines.iter().zip(&files) {
        let name = file.file_stem().unwrap().to_str().unwrap();
        let s = scenarios::spec::load(file).unwrap();
        let (first, rest) = line.split_once(' ').unwrap();
        assert_eq!(first, name, "{line}");
        assert_eq!(rest.trim(), s.description, "{line}");
    }
}

#[test]
fn list_and_run_read_the_library_that_the_environment_or_the_flag_names() {
    let lib = tempfile::tempdir().unwrap();
    std::fs::write(
        lib.path().join("mine.toml"),
        "name = \"mine\"\ndescription = \"my own\"\n[topology]\nonus = 1\n\
         [image]\nversion = \"V2.0\"\nsize = 4096\n",
    )
    .unwrap();
    let out = scenario()
        .arg("list")
        .env("SCENARIO_LIBRARY", lib.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mine  my own\n");
    // A broken file is named, the others still listed, and the exit code says so.
    std::fs::write(
        lib.path().join("broken.toml"),
        "name = \"broken\"\n[olt]\nmode = 3\n",
    )
    .unwrap();
    let out = scenario()
        .arg("list")
        .arg(format!("--library={}", lib.path().display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mine  my own\n");
    assert!(
        err.contains("broken.toml") && err.contains("line 3"),
        "{err}"
    );
    // A name of that library runs; the default library's names are not in it.
    let ran = scenario()
        .args(["run", "mine", "--port=33500"])
        .env("SCENARIO_LIBRARY", lib.path())
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(String::from_utf8_lossy(&ran.stdout).contains("PASSED"));
    let missing = scenario()
        .args(["run", "teach-one-onu"])
        .env("SCENARIO_LIBRARY", lib.path())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_name_that_is_not_in_the_library_is_one_line_and_exit_2() {
    let out = scenario().args(["run", "lossy-pn"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("\"lossy-pn\" is neither a file nor a scenario of the library")
            && err.contains("did you mean lossy-pon?"),
        "{err}"
    );
}

#[test]
fn check_of_a_broken_file_exits_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n[topology]\nonus = 400\n[image]\nversion = \"V2\"\n",
    )
    .unwrap();
    let good = harness::process::library().join("lossy-pon.toml");
    let out = scenario()
        .arg("check")
        .arg(&good)
        .arg(&bad)
        .arg("teach-one-onu")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml: line 3, key `onus`"),
        "the file, the line, the key: {err}"
    );
    // The good ones (a path, a name) are still checked.
    assert!(
        text.contains("lossy-pon.toml: ok") && text.contains("teach-one-onu.toml: ok"),
        "{text}"
    );
    // A file that is not there is the user's error too.
    let out = scenario()
        .arg("check")
        .arg(dir.path().join("nothing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
