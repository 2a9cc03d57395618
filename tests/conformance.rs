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

/// Upgrades a fresh ONU run with `--check-olt` (and `onu_flags`) by `olt rollout` with
/// `quirks`; the report the ONU's checker wrote when it was stopped.
fn olt_check_report(
    dir: &Path,
    port: u16,
    mode: &str,
    quirks: &[&str],
    onu_flags: &[&str],
) -> serde_json::Value {
    let p = |f: &str| dir.join(f).display().to_string();
    let report = dir.join(format!("check-{port}.json"));
    let onu = Proc(
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
            .args(onu_flags)
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
    // The report is written when the ONU ends (SIGTERM here).
    drop(onu);
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

/// Upgrades a fresh ONU run with `--check-olt` by `olt rollout` with `quirks`; the rules the
/// ONU's checker recorded.
fn olt_check(dir: &Path, port: u16, mode: &str, quirks: &[&str]) -> Vec<String> {
    let r = olt_check_report(dir, port, mode, quirks, &[]);
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

#[test]
fn the_onus_olt_checker_counts_a_rule_broken_at_every_window_once_per_violation() {
    // V2.0: 128 + 20000 + 64 bytes, 652 sections of 31 bytes in 21 windows of 32 (the OLT's
    // default): AR on every section but each window's last breaks ar-before-last 631 times
    // (more only if the OLT had to send an AR section again).
    let dir = lab();
    let expected = 652 - 21;
    let check = |port: u16, flags: &[&str]| {
        let r = olt_check_report(dir.path(), port, "unicast", &["ar-on-every-section"], flags);
        let rules = r["rules"].as_array().unwrap().clone();
        assert_eq!(rules.len(), 1, "one entry per rule: {r:#}");
        let ar = &rules[0];
        assert_eq!(ar["rule"], "ar-before-last", "{r:#}");
        assert_eq!(ar["source"], "G.988 A.3.22, I.3");
        let count = ar["count"].as_u64().unwrap();
        assert!(count >= expected, "{count} < {expected}: {r:#}");
        assert_eq!(r["violations"].as_u64(), Some(count));
        let (first, last) = (
            ar["frame"].as_str().unwrap(),
            ar["last_frame"].as_str().unwrap(),
        );
        assert!(
            !first.is_empty() && !last.is_empty() && first != last,
            "{r:#}"
        );
        (r, count)
    };
    // By default the summary alone: no list of every violation.
    let (r, _) = check(46451, &[]);
    assert!(r.get("all").is_none(), "{r:#}");
    // With --check-olt-all, the list too, and the count is its length.
    let (r, count) = check(46461, &["--check-olt-all"]);
    let all = r["all"].as_array().unwrap();
    assert_eq!(all.len() as u64, count);
    assert!(all.iter().all(|v| v["rule"] == "ar-before-last"));
    assert_eq!(
        all[0]["frame"], r["rules"][0]["frame"],
        "the first is the first"
    );
    assert_eq!(
        all[all.len() - 1]["frame"],
        r["rules"][0]["last_frame"],
        "the last is the last"
    );
}

#[test]
fn ten_thousand_violations_neither_slow_the_onu_nor_grow_its_report() {
    use omci_codec::contents::{ActivateSoftwareRequest, Contents, GetRequest};
    use omci_codec::envelope::Envelope;
    use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, Tci};
    let dir = lab();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let port = 46471;
    let report = dir.path().join("flood.json");
    let olt = std::net::UdpSocket::bind(("127.0.0.1", port + 1)).unwrap();
    olt.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let onu = Proc(
        onu()
            .args(["run", "--supervise", "--check-olt"])
            .arg(format!("--report={}", report.display()))
            .arg(format!("--state-dir={}", p("flood")))
            .arg(format!("--public-key={}", p("lab.pub")))
            .arg(format!("--golden={}", p("V1.0.img")))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--olt=127.0.0.1:{}", port + 1))
            .arg(format!("--group=239.255.9.41:{}", port + 2))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut onu = onu;
    let mut log = onu.0.stderr.take().unwrap();
    let codec = Codec::new(ExtendedTrailer::Crc32);
    let datagram = |tci: u16, me: MeId, contents: Contents<'static>| {
        let m = Message::new(Tci(tci), Format::Baseline, me, contents);
        Envelope::omcc(OnuId(1)).wrap(&codec.to_vec(&m).unwrap())
    };
    let get = |tci: u16| {
        datagram(
            tci,
            MeId::new(MeClass::ONU_G, 0),
            Contents::GetRequest(GetRequest {
                attribute_mask: 0x2000,
            }),
        )
    };
    // Answers heard for TCI `tci` within `patience`, and how many answers in all.
    let listen = |want: Option<u16>, patience: Duration| -> (bool, usize) {
        let (mut buf, mut heard) = ([0u8; 256], 0);
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if let Ok(n) = olt.recv(&mut buf) {
                heard += 1;
                // The TCI: the frame's first two bytes, after the 16-byte envelope.
                if want.is_some_and(|t| n >= 18 && buf[16..18] == t.to_be_bytes()) {
                    return (true, heard);
                }
            }
        }
        (false, heard)
    };
    let up_by = Instant::now() + Duration::from_secs(10);
    loop {
        olt.send_to(&get(0x7000), ("127.0.0.1", port)).unwrap();
        if listen(Some(0x7000), Duration::from_millis(100)).0 {
            break;
        }
        assert!(Instant::now() < up_by, "the ONU did not answer");
    }
    // 10,000 Activates of the invalid standby image, each a new TCI: activate-invalid each
    // time. Sent 250 at a time (none is lost to a full socket buffer), each batch answered
    // before the next; the Get goes right behind the last batch, and is answered behind it.
    let activate = Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 });
    let sw1 = MeId::new(MeClass::SOFTWARE_IMAGE, 1);
    let mut asked = Instant::now();
    for batch in 0..40u16 {
        for k in 0..250u16 {
            let d = datagram(1 + batch * 250 + k, sw1, activate.clone());
            olt.send_to(&d, ("127.0.0.1", port)).unwrap();
        }
        if batch == 39 {
            asked = Instant::now();
            olt.send_to(&get(0x7001), ("127.0.0.1", port)).unwrap();
            break;
        }
        let mut heard = 0;
        let by = Instant::now() + Duration::from_secs(10);
        while heard < 250 && Instant::now() < by {
            heard += listen(None, Duration::from_millis(20)).1;
        }
        assert_eq!(heard, 250, "batch {batch} was not answered");
    }
    let (answered, _) = listen(Some(0x7001), Duration::from_secs(10));
    let took = asked.elapsed();
    assert!(answered, "no answer to the Get behind 10,000 violations");
    // The 250 requests before it take about a tenth of a second here (a debug build);
    // rewriting a report of every violation as they came took over a second more.
    assert!(took < Duration::from_millis(500), "the Get took {took:?}");
    drop(onu); // SIGTERM: the report is written now
    let mut text = String::new();
    std::io::Read::read_to_string(&mut log, &mut text).unwrap();
    let warned: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warned.len(), 1, "one warning, the first time: {text}");
    assert!(warned[0].contains("activate-invalid"), "{text}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["violations"], 10_000, "{r:#}");
    let rules = r["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{r:#}");
    assert_eq!(
        (&rules[0]["rule"], &rules[0]["count"]),
        (&"activate-invalid".into(), &10_000.into())
    );
    assert!(r.get("all").is_none());
    let size = std::fs::metadata(&report).unwrap().len();
    assert!(
        size < 2048,
        "the report holds one entry per rule: {size} bytes"
    );
}
