//! `olt rollout` against 16 real `onu` processes on loopback, in both modes; every ONU's flash
//! is then read with `onu status`. Processes and temporary directories are cleaned up on drop,
//! whether the test passes or fails.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use harness::process::{Proc, free_ports};

harness::tools!();

fn run(mode: &str, group: &str, ports_from: u16) {
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
    sh(&[
        "image",
        "build",
        "--key",
        &p("lab.key"),
        "--model",
        "LAB-ONU-1",
        "--version",
        "V1.0",
        "--size",
        "8000",
        "--out",
        &p("v1.img"),
    ]);
    sh(&[
        "image",
        "build",
        "--key",
        &p("lab.key"),
        "--model",
        "LAB-ONU-1",
        "--version",
        "V2.0",
        "--security-version",
        "2",
        "--size",
        "40000",
        "--out",
        &p("v2.img"),
    ]);
    let base = free_ports(ports_from, 17);
    let olt_addr = format!("127.0.0.1:{}", base + 16);
    let _onus = Proc(
        onu()
            .args(["run", "--count", "16", "--base-id", "1", "--supervise"])
            .args(["--busy-ms", "100", "--reboot-ms", "100"])
            .arg(format!("--listen=127.0.0.1:{base}"))
            .arg(format!("--olt={olt_addr}"))
            .arg(format!("--group={group}"))
            .arg(format!("--state-dir={}", p("onus")))
            .arg(format!("--public-key={}", p("lab.pub")))
            .arg(format!("--golden={}", p("v1.img")))
            .env("RUST_LOG", "error")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = olt()
        .args([
            "rollout",
            "--mode",
            mode,
            "--timeout-ms",
            "1000",
            "--retries",
            "4",
        ])
        .arg(format!("--image={}", p("v2.img")))
        .arg(format!("--onus=1-16@127.0.0.1:{base}"))
        .arg(format!("--listen={olt_addr}"))
        .arg(format!("--group={group}"))
        .arg(format!("--report={}", p("report.json")))
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains("16 upgraded, 0 skipped, 0 failed"),
        "{summary}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(p("report.json")).unwrap()).unwrap();
    assert_eq!(report["mode"], mode);
    assert_eq!(report["totals"]["upgraded"], 16);
    assert_eq!(report["image"]["version"], "V2.0");
    let sections = 40_192u64.div_ceil(31);
    match mode {
        "multicast" => {
            // The image crossed the group about once, not 16 times.
            let group = report["totals"]["frames_multicast"].as_u64().unwrap();
            assert!(
                group >= sections && group < 2 * sections,
                "{group} for {sections}"
            );
        }
        _ => assert_eq!(report["totals"]["frames_multicast"], 0),
    }
    drop(_onus);
    // Every flash, read offline: V2.0 committed, active, its bytes those of the image.
    let want = hex_sha256(&std::fs::read(p("v2.img")).unwrap());
    for id in 1..=16 {
        let out = onu()
            .args(["status", "--json"])
            .arg(format!(
                "--state-dir={}",
                dir.path().join(format!("onus/onu-{id}")).display()
            ))
            .arg(format!("--public-key={}", p("lab.pub")))
            .output()
            .unwrap();
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        let slot = s["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["committed"] == true)
            .unwrap_or_else(|| panic!("ONU {id}: {s}"));
        assert_eq!(slot["version"], "V2.0", "ONU {id}: {s}");
        assert_eq!(slot["active"], true, "ONU {id}: {s}");
        assert_eq!(slot["sha256"], want, "ONU {id}");
    }
}

fn hex_sha256(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn sixteen_onu_processes_are_upgraded_by_multicast() {
    run("multicast", "239.255.9.1:47201", 43000);
}

#[test]
fn sixteen_onu_processes_are_upgraded_by_unicast() {
    run("unicast", "239.255.9.2:47202", 52000);
}

#[test]
fn the_demo_upgrades_its_onus_and_cleans_up() {
    let keep = tempfile::tempdir().unwrap();
    let base = free_ports(58000, 9);
    let pcap = keep.path().join("rollout.pcap");
    let out = scenario()
        .args(["demo", "--onus", "8", "--size", "20000"])
        .arg(format!("--port={base}"))
        .args(["--group", "239.255.9.3:47203"])
        .arg(format!("--keep={}", keep.path().display()))
        .arg(format!("--pcap={}", pcap.display()))
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        summary.contains("8 upgraded, 0 skipped, 0 failed"),
        "{summary}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(keep.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["totals"]["upgraded"], 8);
    // The capture holds every frame: the group's sections once, each ONU's answers.
    let capture = omci_codec::pcap::read_capture(std::fs::File::open(&pcap).unwrap()).unwrap();
    assert!(capture.stopped.is_none());
    let frames: Vec<_> = capture
        .packets
        .iter()
        .map(|p| omci_codec::pcap::parse_ethernet(&p.data).expect("EtherType 0x88B5"))
        .collect();
    let to_group = frames
        .iter()
        .filter(|f| f.peer == Some(omci_codec::pcap::Peer::Multicast))
        .count() as u64;
    assert_eq!(
        to_group,
        report["totals"]["frames_multicast"].as_u64().unwrap()
    );
    let upstream = frames
        .iter()
        .filter(|f| f.direction == Some(omci_codec::pcap::Direction::Upstream))
        .count();
    assert!(upstream >= 8 * 6, "{upstream} upstream frames");
    let codec = omci_codec::Codec::new(omci_codec::ExtendedTrailer::Crc32);
    assert!(
        frames.iter().all(|f| codec.parse(f.omci).is_ok()),
        "every frame decodes"
    );
    // The OLT's own capture keeps what each frame's envelope said (docs/wire.md): every frame
    // to the group is for every ONU, on the download port, with its window number.
    let olt_capture = omci_codec::pcap::read_capture(
        std::fs::File::open(keep.path().join("olt-1.pcap")).unwrap(),
    )
    .unwrap();
    assert_eq!(olt_capture.packets.len(), capture.packets.len());
    let mut group_frames = 0;
    for p in &olt_capture.packets {
        let e = p.envelope().expect("an envelope comment").unwrap();
        let f = omci_codec::pcap::parse_ethernet(&p.data).unwrap();
        if f.peer == Some(omci_codec::pcap::Peer::Multicast) {
            group_frames += 1;
            assert_eq!(e.onu_id, omci_codec::envelope::ALL_ONUS);
            assert_eq!(e.gem_port, omci_codec::GemPort::MULTICAST_DOWNLOAD);
            assert!(e.window_no.is_some(), "{e:?}");
        } else {
            assert_eq!(f.peer, Some(omci_codec::pcap::Peer::Onu(e.onu_id)));
        }
    }
    assert_eq!(group_frames, to_group);
    // The ONU processes are gone: their ports are free again.
    assert!((0..8).all(|k| std::net::UdpSocket::bind(("127.0.0.1", base + k)).is_ok()));
}
