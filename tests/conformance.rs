//! `olt conform onu` against real `onu` processes: a clean ONU passes every check (the voice
//! call check included), and each `--quirk` of a weaker emulator fails the checks it breaks.
//! A target that does not answer ends the suite at once with one clear error.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use harness::process::Proc;

harness::tools!();

/// Keys and images, once per test.
fn lab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let sh = |args: &[&str]| {
        let out = onu().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
    };
    sh(&["image", "keygen", "--out", &p("lab")]);
    for (v, sec, size) in [("V1.0", "1", "8000"), ("V2.0", "2", "20000")] {
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
            sec,
            "--size",
            size,
            "--out",
            &p(&format!("{v}.img")),
        ]);
    }
    dir
}

/// Runs the suite against a fresh ONU with `quirks`; the JSON report.
fn suite(dir: &Path, port: u16, quirks: &[&str]) -> serde_json::Value {
    let p = |f: &str| dir.join(f).display().to_string();
    let state = dir.join(format!("onu-{port}"));
    let mut onu = onu();
    onu.args([
        "run",
        "--supervise",
        "--busy-ms",
        "200",
        "--reboot-ms",
        "200",
        "--voice-call",
        "--emergency-call",
    ])
    .arg(format!("--state-dir={}", state.display()))
    .arg(format!("--public-key={}", p("lab.pub")))
    .arg(format!("--golden={}", p("V1.0.img")))
    .arg(format!("--listen=127.0.0.1:{port}"))
    .arg(format!("--olt=127.0.0.1:{}", port + 1))
    .arg("--group=239.255.9.40:47240")
    .stderr(Stdio::null());
    for q in quirks {
        onu.arg(format!("--quirk={q}"));
    }
    let _onu = Proc(onu.spawn().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    let json = dir.join(format!("conform-{port}.json"));
    let junit = dir.join(format!("conform-{port}.xml"));
    let out = olt()
        .args([
            "conform",
            "onu",
            "--call-in-progress",
            "--emergency-call-in-progress",
            "--timeout-ms",
            "500",
            "--reboot-timeout-s",
            "5",
        ])
        .arg(format!("--target=127.0.0.1:{port}"))
        .arg(format!("--listen=127.0.0.1:{}", port + 1))
        .arg(format!("--image={}", p("V2.0.img")))
        .arg(format!("--json={}", json.display()))
        .arg(format!("--junit={}", junit.display()))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let failed = report["failed"].as_u64().unwrap();
    assert_eq!(out.status.code(), Some(i32::from(failed > 0)), "{table}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(
        xml.matches("<testcase ").count(),
        report["checks"].as_array().unwrap().len()
    );
    assert_eq!(xml.matches("<failure ").count() as u64, failed);
    report
}

fn failed_ids(r: &serde_json::Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_clean_onu_passes_every_check() {
    let dir = lab();
    let r = suite(dir.path(), 46301, &[]);
    assert!(r["checks"].as_array().unwrap().len() >= 30, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["skipped"], 0, "{r}");
    for c in r["checks"].as_array().unwrap() {
        assert!(!c["source"].as_str().unwrap().is_empty(), "{c}");
    }
}

#[test]
fn each_quirk_fails_the_checks_it_breaks() {
    let dir = lab();
    for (i, (quirk, must_fail)) in [
        ("no-section-tracking", &["DLS-06", "STA-06"][..]),
        ("always-valid", &["END-03", "END-07"][..]),
        ("no-fallback", &["ACT-04"][..]),
        ("ignore-window-crc", &["DLS-10"][..]),
        ("end-before-write", &["END-02"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        let r = suite(dir.path(), 46311 + 10 * i as u16, &[quirk]);
        let failed = failed_ids(&r);
        for id in must_fail {
            assert!(
                failed.iter().any(|f| f == id),
                "{quirk}: {id} passed; failed: {failed:?}"
            );
        }
    }
}

#[test]
fn a_target_that_does_not_answer_ends_the_suite_with_one_error() {
    let dir = lab();
    let start = Instant::now();
    let out = olt()
        .args(["conform", "onu", "--timeout-ms", "300"])
        .arg("--target=127.0.0.1:46391")
        .arg("--listen=127.0.0.1:46392")
        .arg(format!("--image={}", dir.path().join("V2.0.img").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not answer"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Upgrades a fresh ONU run with `--check-olt` by `olt rollout` with `quirks`; the rules the
/// ONU's checker recorded.
fn olt_check(dir: &Path, port: u16, mode: &str, quirks: &[&str]) -> Vec<String> {
    let p = |f: &str| dir.join(f).display().to_string();
    let report = dir.join(format!("check-{port}.json"));
    let _onu = Proc(
        onu()
            .args([
                "run",
                "--supervise",
                "--busy-ms",
                "400",
                "--reboot-ms",
                "200",
                "--check-olt",
            ])
            .arg(format!("--report={}", report.display()))
            .arg(format!(
                "--state-dir={}",
                dir.join(format!("onu-{port}")).display()
            ))
            .arg(format!("--public-key={}", p("lab.pub")))
            .arg(format!("--golden={}", p("V1.0.img")))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--olt=127.0.0.1:{}", port + 1))
            .arg(format!("--group=239.255.9.41:{}", port + 2))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut olt = olt();
    olt.args(["rollout", "--timeout-ms", "500", "--reboot-timeout-s", "5"])
        .arg(format!("--mode={mode}"))
        .arg(format!("--image={}", p("V2.0.img")))
        .arg(format!("--onus=1@127.0.0.1:{port}"))
        .arg(format!("--listen=127.0.0.1:{}", port + 1))
        .arg(format!("--group=239.255.9.41:{}", port + 2))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for q in quirks {
        olt.arg(format!("--quirk={q}"));
    }
    let _ = olt.status().unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let mut rules: Vec<String> = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert!(!v["frame"].as_str().unwrap().is_empty() || v["rule"] == "no-busy-retry");
            v["rule"].as_str().unwrap().to_string()
        })
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

#[test]
fn the_onus_olt_checker_finds_nothing_wrong_with_our_olt() {
    let dir = lab();
    assert_eq!(
        olt_check(dir.path(), 46401, "unicast", &[]),
        Vec::<String>::new()
    );
    assert_eq!(
        olt_check(dir.path(), 46411, "multicast", &[]),
        Vec::<String>::new()
    );
}

#[test]
fn the_onus_olt_checker_flags_each_olt_quirk() {
    let dir = lab();
    for (i, (quirk, rule)) in [
        ("ar-on-every-section", "ar-before-last"),
        ("wrong-end-crc", "end-crc-mismatch"),
        ("no-busy-retry", "no-busy-retry"),
    ]
    .into_iter()
    .enumerate()
    {
        let rules = olt_check(dir.path(), 46421 + 10 * i as u16, "unicast", &[quirk]);
        assert!(rules.iter().any(|r| r == rule), "{quirk}: {rules:?}");
    }
}
