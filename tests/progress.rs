//! The progress an operator watches: `olt rollout` under a pseudo-terminal (util-linux
//! `script`) draws its bar, and what it shows moves during the download: the share of the
//! image delivered rises, before the rollout ends.

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::process::{Proc, free_ports};

harness::tools!();

#[test]
fn the_bar_on_a_terminal_moves_during_the_download() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return;
    }
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
    for (v, security, size) in [("V1.0", "1", "8000"), ("V2.0", "2", "600000")] {
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
    let base = free_ports(44100, 17);
    let olt_addr = format!("127.0.0.1:{}", base + 16);
    let group = "239.255.9.40:47240";
    let _onus = Proc(
        onu()
            .args(["run", "--count", "16", "--base-id", "1", "--supervise"])
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
    // The OLT's command, run by `script` on a pseudo-terminal (its output is the terminal's).
    let olt_cmd = format!(
        "{} olt rollout --image {} --onus 1-16@127.0.0.1:{base} --listen {olt_addr} --group {group} --timeout-ms 1000 --pace 4000",
        env!("CARGO_BIN_EXE_lab"),
        p("V2.0.img"),
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &olt_cmd, "/dev/null"])
        .env("COLUMNS", "400")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("16 upgraded"), "{text}");
    // Every drawing of the bar says how much of the image has reached the ONUs.
    let shown: Vec<u32> = text
        .split("image ")
        .skip(1)
        .filter_map(|t| t.split(" %").next()?.trim().parse().ok())
        .collect();
    let during: Vec<u32> = shown.iter().copied().filter(|p| *p < 100).collect();
    assert!(
        during.windows(2).all(|w| w[0] <= w[1]),
        "the share never goes back: {shown:?}"
    );
    let distinct: std::collections::BTreeSet<u32> = during.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "the bar moved through several values during the download: {shown:?}"
    );
}
