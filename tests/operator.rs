//! The operator's verbs against real ONU processes: a staged upgrade (`olt download`, then
//! `olt activate`, then `olt commit`), watched with `olt status` at each stage (what every ONU
//! runs, read over OMCI, with its serial number).

use std::process::Stdio;
use std::time::Duration;

use harness::process::{Proc, free_ports};
use serde_json::Value;

harness::tools!();

#[test]
fn a_staged_upgrade_watched_with_olt_status() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let sh = |args: &[&str]| {
        let out = onu().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&["image", "keygen", "--out", &p("lab")]);
    for (v, security, size) in [("V1.0", "1", "4000"), ("V2.0", "2", "20000")] {
        sh(&[
            "image",
            "build",
            "--key",
            &p("lab.key"),
            "--model",
            "LAB-ONU-1",
            "--version",
            v,
            "--security-version",
            security,
            "--size",
            size,
            "--out",
            &p(&format!("{v}.img")),
        ]);
    }
    let base = free_ports(44300, 5);
    let olt_addr = format!("127.0.0.1:{}", base + 4);
    let group = "239.255.9.41:47241";
    let _onus = Proc(
        onu()
            .args(["run", "--count", "4", "--base-id", "1", "--supervise"])
            .args(["--busy-ms", "100", "--reboot-ms", "100"])
            .arg(format!("--listen=127.0.0.1:{base}"))
            .arg(format!("--olt={olt_addr}"))
            .arg(format!("--group={group}"))
            .arg(format!("--state-dir={}", p("onus")))
            .arg(format!("--public-key={}", p("lab.pub")))
            .arg(format!("--golden={}", p("V1.0.img")))
            .env("RUST_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let onus = format!("--onus=1-4@127.0.0.1:{base}");
    let common = |verb: &str| {
        let mut c = olt();
        c.arg(verb)
            .arg(&onus)
            .arg(format!("--listen={olt_addr}"))
            .arg("--timeout-ms=800");
        c
    };
    let status = || {
        let out = common("status").arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["format"], "olt-status");
        v
    };
    let image = |v: &Value, onu: usize, i: usize| v["onus"][onu]["images"][i].clone();
    // Before: every ONU on V1.0, its serial number the lab's default for its ONU-ID.
    let before = status();
    for k in 0..4 {
        assert_eq!(before["onus"][k]["serial"], format!("LABS{:08X}", k + 1));
        assert_eq!(image(&before, k, 0)["version"], "V1.0");
        assert_eq!(image(&before, k, 0)["active"], true);
    }
    let run = |verb: &str, word: &str| {
        let out = common(verb)
            .arg(format!("--image={}", p("V2.0.img")))
            .arg(format!("--group={group}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{verb}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(&format!("4 {word}")), "{verb}: {text}");
    };
    run("download", "downloaded");
    let downloaded = status();
    for k in 0..4 {
        let standby = image(&downloaded, k, 1);
        assert_eq!(standby["version"], "V2.0", "{downloaded}");
        assert_eq!(
            (standby["valid"].clone(), standby["active"].clone()),
            (true.into(), false.into())
        );
    }
    run("activate", "activated");
    let activated = status();
    for k in 0..4 {
        let new = image(&activated, k, 1);
        assert_eq!(
            (new["active"].clone(), new["committed"].clone()),
            (true.into(), false.into())
        );
    }
    run("commit", "upgraded");
    let committed = status();
    for k in 0..4 {
        let new = image(&committed, k, 1);
        assert_eq!(
            (new["active"].clone(), new["committed"].clone()),
            (true.into(), true.into())
        );
    }
    // The table, as a person reads it.
    let out = common("status").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("LABS00000003"), "{table}");
    assert!(table.contains("V2.0 committed active valid"), "{table}");
}
