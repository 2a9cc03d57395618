//! `scenario project` from the user's side: a small PON projected in both modes.

use std::process::Command;

fn scenario(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scenario"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_projection_prints_both_modes_and_writes_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("p.json");
    let out = scenario(&[
        "project",
        "--onus",
        "4",
        "--size",
        "20000",
        "--section-ms",
        "2",
        "--ack-ms",
        "10",
        "--olt-sections-per-s",
        "500",
        "--reboot-s",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| 2 ms/section, 10 ms/window |"), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let time = |mode: &str| {
        runs.iter().find(|r| r["mode"] == mode).unwrap()["result"]["image_everywhere_s"]
            .as_f64()
            .unwrap()
    };
    for r in runs {
        assert_eq!(r["result"]["upgraded"], 4);
    }
    // 646 sections at 500 per second: about 1.3 s for the group, four times that by unicast
    // (the ONUs, at 2 ms a section, keep up with either).
    let (m, u) = (time("multicast"), time("unicast"));
    assert!((1.2..3.0).contains(&m), "multicast {m}");
    assert!(u / m > 3.0, "unicast {u} against multicast {m}");
}

#[test]
fn a_bad_number_is_one_line_and_exit_2() {
    let out = scenario(&["project", "--onus", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--onus"), "{err}");
}
