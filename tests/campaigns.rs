//! Campaigns with real processes: `olt rollout --manifest` against 16 `onu` processes on
//! loopback: the kill switch (an image built to fail its boot), an OLT killed mid-campaign and
//! resumed from its journal, and `olt abort` after an OLT died mid-download. Every ONU's flash
//! is read afterwards with `onu status`. Processes and temporary directories are cleaned up on
//! drop, whether a test passes or fails.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use harness::process::{Proc, free_ports};

harness::tools!();

/// A lab: keys, a V1 golden image, 16 ONU processes booted from it.
struct Lab {
    dir: tempfile::TempDir,
    base: u16,
    group: String,
    onus: Option<Proc>,
}

impl Lab {
    fn new(group: &str, ports_from: u16) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let mut lab = Lab {
            dir,
            base: 0,
            group: group.into(),
            onus: None,
        };
        lab.onu(&["image", "keygen", "--out", &lab.p("lab")]);
        lab.build("V1.0", 1, 8000, false, 10);
        lab.base = free_ports(ports_from, 17);
        lab.onus = Some(Proc(
            onu()
                .args(["run", "--count", "16", "--base-id", "1", "--supervise"])
                .args(["--busy-ms", "100", "--reboot-ms", "100"])
                .arg(format!("--listen=127.0.0.1:{}", lab.base))
                .arg(format!("--olt={}", lab.olt_addr()))
                .arg(format!("--group={}", lab.group))
                .arg(format!("--state-dir={}", lab.p("onus")))
                .arg(format!("--public-key={}", lab.p("lab.pub")))
                .arg(format!("--golden={}", lab.p("V1.0.img")))
                .env("RUST_LOG", "error")
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        std::thread::sleep(Duration::from_millis(1500));
        lab
    }

    fn p(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    fn olt_addr(&self) -> String {
        format!("127.0.0.1:{}", self.base + 16)
    }

    fn onu(&self, args: &[&str]) -> Output {
        let out = onu().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Builds `VERSION.img` and its manifest `VERSION.json` (rollout percent `canary`).
    fn build(&self, version: &str, security: u32, size: usize, fails: bool, canary: u8) {
        let mut args = vec![
            "image".to_string(),
            "build".into(),
            format!("--key={}", self.p("lab.key")),
            "--model=LAB-ONU-1".into(),
            format!("--version={version}"),
            format!("--security-version={security}"),
            format!("--size={size}"),
            format!("--out={}", self.p(&format!("{version}.img"))),
            format!("--rollout-percent={canary}"),
        ];
        if fails {
            args.push("--fails-to-boot".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.onu(&args);
    }

    /// `olt rollout` of `version` with its manifest, and these extra arguments.
    fn rollout(&self, version: &str, extra: &[&str]) -> Command {
        let mut c = olt();
        c.args(["rollout", "--timeout-ms", "1000", "--retries", "4"])
            .arg(format!("--image={}", self.p(&format!("{version}.img"))))
            .arg(format!("--manifest={}", self.p(&format!("{version}.json"))))
            .arg(format!("--onus=1-16@127.0.0.1:{}", self.base))
            .arg(format!("--listen={}", self.olt_addr()))
            .arg(format!("--group={}", self.group))
            .args(extra);
        c
    }

    /// Every ONU's flash, read offline with `onu status` (the ONU processes stopped first).
    fn flash(&mut self) -> Vec<Value> {
        self.onus.take();
        (1..=16)
            .map(|id| {
                let out = self.onu(&[
                    "status",
                    "--json",
                    &format!("--state-dir={}", self.p(&format!("onus/onu-{id}"))),
                    &format!("--public-key={}", self.p("lab.pub")),
                ]);
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect()
    }
}

/// The version of the slot with `flag` set (committed, active), and whether a slot holds a
/// valid image of `version`.
fn slot(s: &Value, flag: &str) -> String {
    s["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x[flag] == true)
        .map(|x| x["version"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn holds_valid(s: &Value, version: &str) -> bool {
    s["slots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["version"] == version && x["valid"] == true)
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_kill_switch_halts_on_a_canary_wave_that_fails_to_boot() {
    let mut lab = Lab::new("239.255.9.4:47204", 45000);
    lab.build("V2.0", 2, 20_000, true, 10);
    let out = lab
        .rollout("V2.0", &["--report", &lab.p("report.json")])
        .output()
        .unwrap();
    let summary = text(&out);
    println!("{summary}");
    assert_eq!(out.status.code(), Some(1), "{summary}");
    assert!(
        summary.contains("Campaign HALTED: kill switch"),
        "{summary}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["campaign"]["outcome"], "halted");
    // 10 % of 16, rounded up: two canaries; the first to fail its boot trips the switch (the
    // other, if still rebooting then, ends halted on its old image); the 14 others are never
    // touched.
    assert_eq!(report["campaign"]["waves"][0], serde_json::json!([1, 2]));
    let failed = report["totals"]["failed"].as_u64().unwrap();
    let halted = report["totals"]["halted"].as_u64().unwrap();
    assert!(failed >= 1 && failed + halted == 2, "{report}");
    assert_eq!(report["totals"]["untouched"], 14, "{report}");
    let onus = report["onus"].as_array().unwrap();
    for o in &onus[..2] {
        assert_eq!(o["committed_version"], "V1.0", "{o}");
        assert_eq!(o["active_version"], "V1.0", "{o}");
    }
    let flash = lab.flash();
    for (i, s) in flash.iter().enumerate() {
        assert_eq!(slot(s, "committed"), "V1.0", "ONU {}: {s}", i + 1);
        assert_eq!(slot(s, "active"), "V1.0", "ONU {}: {s}", i + 1);
        if i >= 2 {
            assert!(
                !holds_valid(s, "V2.0"),
                "ONU {}: nothing downloaded: {s}",
                i + 1
            );
        }
    }
}

#[test]
fn an_olt_killed_mid_campaign_resumes_from_its_journal() {
    let mut lab = Lab::new("239.255.9.5:47205", 47500);
    lab.build("V2.0", 2, 60_000, false, 25);
    let journal = lab.p("journal.json");
    // The first OLT, paced so that the second wave takes a while; killed once it has begun.
    let mut first = Proc(
        lab.rollout("V2.0", &["--journal", &journal, "--pace", "1500"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the second wave never began"
        );
        if let Ok(t) = std::fs::read_to_string(&journal)
            && let Ok(j) = serde_json::from_str::<Value>(&t)
            && j["stage"] == "wave"
            && j["wave"] == 1
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(700));
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j["stage"], "wave", "killed mid-campaign: {j}");
    for id in 1..=4 {
        assert_eq!(j["onus"][id.to_string()]["result"], "upgraded", "{j}");
    }
    // The second OLT carries on.
    let out = lab
        .rollout(
            "V2.0",
            &["--journal", &journal, "--report", &lab.p("report.json")],
        )
        .output()
        .unwrap();
    let summary = text(&out);
    assert!(out.status.success(), "{summary}");
    assert!(summary.contains("Resuming the campaign"), "{summary}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.p("report.json")).unwrap()).unwrap();
    assert_eq!(report["campaign"]["outcome"], "completed");
    assert_eq!(report["totals"]["upgraded"], 16, "{report}");
    // The canaries, committed before the kill, got not one frame from the second OLT.
    for o in &report["onus"].as_array().unwrap()[..4] {
        assert_eq!(o["frames"], 0, "{o}");
        assert!(o["reason"].as_str().unwrap_or("").is_empty(), "{o}");
    }
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j["stage"], "completed");
    for (i, s) in lab.flash().iter().enumerate() {
        assert_eq!(slot(s, "committed"), "V2.0", "ONU {}: {s}", i + 1);
        assert_eq!(slot(s, "active"), "V2.0", "ONU {}: {s}", i + 1);
    }
}

#[test]
fn olt_abort_cleans_up_after_an_olt_that_died_mid_download() {
    let mut lab = Lab::new("239.255.9.6:47206", 49500);
    lab.build("V2.0", 2, 200_000, false, 0);
    let mut first = Proc(
        lab.rollout("V2.0", &["--pace", "2000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(2500));
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let out = olt()
        .args(["abort", "--timeout-ms", "1000"])
        .arg(format!("--onus=1-16@127.0.0.1:{}", lab.base))
        .arg(format!("--listen={}", lab.olt_addr()))
        .arg(format!("--report={}", lab.p("abort.json")))
        .output()
        .unwrap();
    let summary = text(&out);
    assert!(out.status.success(), "{summary}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.p("abort.json")).unwrap()).unwrap();
    for o in report["onus"].as_array().unwrap() {
        assert_eq!(o["result"], "halted", "{o}");
        assert!(
            o["reason"].as_str().unwrap().contains("download aborted"),
            "{o}"
        );
        assert_eq!(o["committed_version"], "V1.0", "{o}");
    }
    for (i, s) in lab.flash().iter().enumerate() {
        assert_eq!(slot(s, "active"), "V1.0", "ONU {}: {s}", i + 1);
        assert!(!holds_valid(s, "V2.0"), "ONU {}: {s}", i + 1);
    }
}
