//! The OB-BAA framing with real processes: `olt rollout --transport obbaa` and `olt conform
//! onu --transport obbaa`, their usage errors and `onu run`'s, both against the lab's `onu`
//! through a relay (`harness::relay`, an OB-BAA tool's stand-in between a lab ONU and the
//! wire) and against `onu run --transport obbaa --cterm CT_1`, which speaks it itself.

use std::net::SocketAddrV4;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use harness::process::{Proc, free_port};
use harness::relay::ObbaaRelay;
use serde_json::Value;

harness::tools!();

/// Keys and images (V1 golden, V2 the target), once per test.
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

/// `onu run` of ONU `id` at `listen`, answering to `olt`, with `extra` arguments.
fn onu_process(
    dir: &Path,
    id: u16,
    listen: SocketAddrV4,
    olt: SocketAddrV4,
    extra: &[&str],
) -> Proc {
    let p = |f: &str| dir.join(f).display().to_string();
    Proc(
        onu()
            .args([
                "run",
                "--supervise",
                "--busy-ms",
                "200",
                "--reboot-ms",
                "200",
            ])
            .args(["--voice-call", "--emergency-call"])
            .arg(format!("--onu-id={id}"))
            .arg(format!(
                "--state-dir={}",
                p(&format!("onu-{}", listen.port()))
            ))
            .arg(format!("--public-key={}", p("lab.pub")))
            .arg(format!("--golden={}", p("V1.0.img")))
            .arg(format!("--listen={listen}"))
            .arg(format!("--olt={olt}"))
            .args(
                (!extra.contains(&"--transport"))
                    .then(|| format!("--group=239.255.9.50:{}", listen.port() + 1)),
            )
            .args(extra)
            .env("RUST_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn loopback(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
}

fn one_line_usage_error(args: &[&str], mentions: &str) {
    let out = olt().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.contains(mentions), "{args:?}: {err}");
}

#[test]
fn asking_the_obbaa_framing_for_what_it_cannot_carry_is_a_usage_error() {
    let dir = lab();
    let img = dir.path().join("V2.0.img").display().to_string();
    let rollout = |extra: &[&str]| {
        let mut a = vec!["rollout", "--image", &img, "--onus", "1@127.0.0.1:46601"];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let call = |v: Vec<String>, mentions: &str| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        one_line_usage_error(&refs, mentions);
    };
    call(
        rollout(&[
            "--transport",
            "obbaa",
            "--cterm",
            "CT_1",
            "--mode",
            "multicast",
        ]),
        "unicast only",
    );
    call(rollout(&["--transport", "obbaa"]), "--cterm");
    call(
        rollout(&["--cterm", "CT_1"]),
        "--cterm needs --transport obbaa",
    );
    call(
        rollout(&[
            "--transport",
            "obbaa",
            "--cterm",
            "CT_1",
            "--group",
            "239.255.9.1:47000",
        ]),
        "--group",
    );
    call(
        rollout(&["--transport", "obbaa", "--cterm", &"x".repeat(31)]),
        "channel termination name",
    );
    call(
        rollout(&["--transport", "obbaa", "--cterm", "2/CT_2"]),
        "--cterm names PON 2, which has no --onus",
    );
    call(
        rollout(&[
            "--transport",
            "obbaa",
            "--cterm",
            "CT_1",
            "--onus",
            "2/1@127.0.0.1:46602",
        ]),
        "PON 2 has none",
    );
    let conform = |extra: &[&str]| {
        let mut a = vec![
            "conform",
            "onu",
            "--target",
            "127.0.0.1:46601",
            "--image",
            &img,
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    call(conform(&["--transport", "obbaa"]), "--cterm");
    call(
        conform(&["--cterm", "CT_1"]),
        "--cterm needs --transport obbaa",
    );
    call(
        conform(&["--transport", "obbaa", "--cterm", &"x".repeat(31)]),
        "channel termination name",
    );
}

/// `olt conform onu --transport obbaa --cterm CT_1` against the ONU at `target`, listening on
/// `listen` (the ONU's `--olt`); its exit code and JSON report.
fn conform_obbaa(dir: &Path, target: SocketAddrV4, listen: SocketAddrV4) -> (Option<i32>, Value) {
    let p = |f: &str| dir.join(f).display().to_string();
    let out = olt()
        .args(["conform", "onu", "--transport", "obbaa", "--cterm", "CT_1"])
        .args(["--call-in-progress", "--emergency-call-in-progress"])
        .args(["--timeout-ms", "500", "--reboot-timeout-s", "10"])
        .arg(format!("--target={target}"))
        .arg(format!("--listen={listen}"))
        .arg(format!("--image={}", p("V2.0.img")))
        .arg(format!("--json={}", p("conform.json")))
        .output()
        .unwrap();
    let report =
        serde_json::from_str(&std::fs::read_to_string(p("conform.json")).unwrap()).unwrap();
    (out.status.code(), report)
}

fn verdicts(r: &Value, verdict: &str) -> Vec<String> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == verdict)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn olt_conform_onu_over_obbaa_judges_the_onu_behind_a_relay() {
    // The lab's ONU through the relay: every check passes but those the framing cannot carry
    // (skipped: the trailer of DLS-09, the window CRC of DLS-10), so the exit code is 0.
    let dir = lab();
    let listen = loopback(free_port());
    let relay = ObbaaRelay::spawn("CT_1", &[listen]);
    let _onu = onu_process(dir.path(), 1, listen, relay.lab[0], &[]);
    std::thread::sleep(Duration::from_millis(500));
    let (code, r) = conform_obbaa(dir.path(), relay.wire[0], loopback(free_port()));
    assert_eq!(r["transport"], "obbaa", "{r}");
    assert_eq!(r["end"], "completed", "{r}");
    assert_eq!(verdicts(&r, "fail"), Vec::<String>::new(), "{r}");
    assert_eq!(verdicts(&r, "skip"), ["DLS-09", "DLS-10"], "{r}");
    assert_eq!(code, Some(0));
    assert_eq!(relay.refused.load(Ordering::Relaxed), 0);
}

#[test]
fn olt_conform_onu_over_obbaa_judges_an_onu_that_speaks_it() {
    let dir = lab();
    let listen = loopback(free_port());
    let olt_addr = loopback(free_port());
    let _onu = onu_process(
        dir.path(),
        1,
        listen,
        olt_addr,
        &["--transport", "obbaa", "--cterm", "CT_1"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, r) = conform_obbaa(dir.path(), listen, olt_addr);
    assert_eq!(r["transport"], "obbaa", "{r}");
    assert_eq!(r["end"], "completed", "{r}");
    assert_eq!(verdicts(&r, "fail"), Vec::<String>::new(), "{r}");
    assert_eq!(verdicts(&r, "skip"), ["DLS-09", "DLS-10"], "{r}");
    assert_eq!(code, Some(0));
}

#[test]
fn an_onu_on_the_obbaa_framing_ignores_another_channel_termination() {
    // The same suite for CT_1 against an ONU of CT_2: every datagram is dropped (counted),
    // none answered, so the target is unreachable (exit 3), and the report is still written.
    let dir = lab();
    let listen = loopback(free_port());
    let olt_addr = loopback(free_port());
    let _onu = onu_process(
        dir.path(),
        1,
        listen,
        olt_addr,
        &["--transport", "obbaa", "--cterm", "CT_2"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, r) = conform_obbaa(dir.path(), listen, olt_addr);
    assert_eq!(r["end"], "unreachable", "{r}");
    assert_eq!(code, Some(3));
}

#[test]
fn onu_run_refuses_what_the_obbaa_framing_cannot_carry() {
    let dir = lab();
    let p = |f: &str| dir.path().join(f).display().to_string();
    for (extra, mentions) in [
        (&["--transport", "obbaa"][..], "--cterm"),
        (&["--cterm", "CT_1"][..], "--cterm needs --transport obbaa"),
        (
            &[
                "--transport",
                "obbaa",
                "--cterm",
                "CT_1",
                "--group",
                "239.255.9.1:47000",
            ][..],
            "unicast only",
        ),
    ] {
        let out = onu()
            .args(["run", "--listen", "127.0.0.1:46690"])
            .arg(format!("--state-dir={}", p("onu-usage")))
            .arg(format!("--public-key={}", p("lab.pub")))
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(mentions), "{extra:?}: {err}");
    }
}

/// `olt rollout --transport obbaa --mode unicast` of two ONUs at `addrs`; the report.
fn rollout_obbaa(dir: &Path, addrs: &[SocketAddrV4], listen: SocketAddrV4) -> Value {
    let p = |f: &str| dir.join(f).display().to_string();
    let mut cmd = olt();
    cmd.args([
        "rollout",
        "--transport",
        "obbaa",
        "--cterm",
        "CT_1",
        "--mode",
        "unicast",
    ])
    .args(["--timeout-ms", "500", "--reboot-timeout-s", "10"])
    .arg(format!("--image={}", p("V2.0.img")))
    .arg(format!("--listen={listen}"))
    .arg(format!("--report={}", p("report.json")));
    for (i, a) in addrs.iter().enumerate() {
        cmd.arg(format!("--onus={}@{a}", i + 1));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(p("report.json")).unwrap()).unwrap()
}

#[test]
fn olt_rollout_over_obbaa_upgrades_the_onus_behind_a_relay() {
    let dir = lab();
    let listens = [loopback(free_port()), loopback(free_port())];
    let relay = ObbaaRelay::spawn("CT_1", &listens);
    let _onus: Vec<Proc> = listens
        .iter()
        .zip(&relay.lab)
        .enumerate()
        .map(|(i, (l, olt))| onu_process(dir.path(), i as u16 + 1, *l, *olt, &[]))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let report = rollout_obbaa(dir.path(), &relay.wire, loopback(free_port()));
    assert_eq!(report["mode"], "unicast", "{report}");
    assert_eq!(report["totals"]["upgraded"], 2, "{report}");
    assert_eq!(report["totals"]["frames_multicast"], 0, "{report}");
    // Every datagram the OLT sent was OB-BAA, for CT_1.
    assert_eq!(relay.refused.load(Ordering::Relaxed), 0);
}

#[test]
fn olt_rollout_over_obbaa_upgrades_onus_that_speak_it() {
    let dir = lab();
    let olt_addr = loopback(free_port());
    let addrs = [loopback(free_port()), loopback(free_port())];
    let _onus: Vec<Proc> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            onu_process(
                dir.path(),
                i as u16 + 1,
                *a,
                olt_addr,
                &["--transport", "obbaa", "--cterm", "CT_1"],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let report = rollout_obbaa(dir.path(), &addrs, olt_addr);
    assert_eq!(report["mode"], "unicast", "{report}");
    assert_eq!(report["totals"]["upgraded"], 2, "{report}");
    assert_eq!(report["totals"]["frames_multicast"], 0, "{report}");
}
