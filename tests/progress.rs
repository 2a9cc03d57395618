//! The progress an operator watches: `olt rollout` under a pseudo-terminal (util-linux
//! `script`) draws its bar, and what it shows moves during the download: the share of the
//! image delivered rises, before the rollout ends.

use std::process::Command;

use harness::process::OnuBench;

harness::tools!();

#[test]
fn the_bar_on_a_terminal_moves_during_the_download() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return;
    }
    let bench = OnuBench::start(
        env!("CARGO_BIN_EXE_lab"),
        16,
        600_000,
        44100,
        "239.255.9.40:47240",
    );
    // The OLT's command, run by `script` on a pseudo-terminal (its output is the terminal's).
    let olt_cmd = format!(
        "{} olt rollout --image {} {} --listen {} --group {} --timeout-ms 1000 --pace 4000",
        env!("CARGO_BIN_EXE_lab"),
        bench.path("V2.0.img"),
        bench.onus,
        bench.olt_addr,
        bench.group,
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
