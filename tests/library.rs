//! Every scenario of the library, run as a user runs it: `scenario run FILE` with real `olt`
//! and `onu` processes on loopback, its expectations checked by the runner (exit 0 when they
//! all hold). The larger ones run with fewer ONUs here (`--onus`); `quickstart` runs at its
//! full 128 in `tests/quickstart.rs`, a test binary of its own so that it has the machine to
//! itself. Each test has its own port range, so they can run in parallel; the
//! runner kills its processes and removes its directory however it ends.

use std::path::Path;
use std::process::Command;

harness::tools!();

fn run(name: &str, port: u16, extra: &[&str]) -> String {
    let file = harness::process::library().join(format!("{name}.toml"));
    let out = scenario()
        .arg("run")
        .arg(&file)
        .arg(format!("--port={port}"))
        .args(extra)
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
    let text = run(
        "teach-one-onu",
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
}

#[test]
fn every_library_file_is_valid() {
    let dir = &harness::process::library();
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .collect();
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

#[test]
fn soak_finds_nothing_bricked_and_no_data_lost() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("soak.json");
    let out = scenario()
        .args(["soak", "--cases", "3", "--onus", "4", "--seed", "11"])
        .arg(format!("--report={}", report.display()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["cases"], 3);
    assert_eq!(r["bricked"], 0);
    assert_eq!(r["data_lost"], 0);
    assert_eq!(r["upgraded"], 12);
}

#[test]
fn ctrl_c_stops_every_process_and_removes_the_directory() {
    let file = harness::process::library().join("lossy-pon.toml");
    let child = scenario()
        .arg("run")
        .arg(&file)
        .args(["--onus", "6", "--port", "34500"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let it start its processes and the rollout.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // Its working directory is gone, and so are its processes: their ports are free.
    let dir = err
        .lines()
        .find_map(|l| l.split("working directory ").nth(1))
        .map(|d| d.trim().to_string());
    if let Some(d) = dir {
        assert!(!Path::new(&d).exists(), "{d} still exists");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for port in 34500..34507 {
        assert!(
            std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still bound"
        );
    }
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
