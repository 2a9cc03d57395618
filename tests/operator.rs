//! The operator's verbs against real ONU processes: a staged upgrade (`olt download`, then
//! `olt activate`, then `olt commit`), watched with `olt status` at each stage (what every ONU
//! runs, read over OMCI, with its serial number), and a rollout that selects ONUs by serial
//! number (`--serials`).

use harness::process::OnuBench;
use serde_json::Value;

harness::tools!();

/// Four ONUs on V1.0 and the images, from the first free port at `from_port`.
fn bench(from_port: u16, group: &'static str) -> OnuBench {
    OnuBench::start(env!("CARGO_BIN_EXE_lab"), 4, 20_000, from_port, group)
}

#[test]
fn a_staged_upgrade_watched_with_olt_status() {
    let bench = bench(44300, "239.255.9.41:47241");
    let common = |verb: &str| bench.olt(verb);
    let status = || bench.status();
    let image = |v: &Value, onu: usize, i: usize| v["onus"][onu]["images"][i].clone();
    // Before: every ONU on V1.0, its serial number the lab's default for its ONU-ID.
    let before = status();
    for k in 0..4 {
        assert_eq!(before["onus"][k]["serial"], format!("LABS{:08X}", k + 1));
        assert_eq!(before["onus"][k]["vendor"], "LABS", "{before}");
        // ONU-G's version: the lab's ONUs give their running software's.
        assert_eq!(before["onus"][k]["version"], "V1.0", "{before}");
        assert_eq!(image(&before, k, 0)["version"], "V1.0");
        assert_eq!(image(&before, k, 0)["active"], true);
    }
    let run = |verb: &str, word: &str| {
        let out = common(verb).output().unwrap();
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

#[test]
fn a_rollout_by_serial_number_upgrades_only_those_onus_and_reports_every_serial() {
    let bench = bench(44320, "239.255.9.42:47242");
    let report = bench.path("r.json");
    let out = bench
        .olt("rollout")
        .args(["--serials", "labs00000002", "--serials=LABS00000004"])
        .arg(format!("--report={report}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 upgraded, 2 skipped, 0 failed"), "{text}");
    // The table names each ONU by its serial number too.
    assert!(text.contains("LABS00000003"), "{text}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for k in 0..4 {
        let onu = &r["onus"][k];
        let sn = format!("LABS{:08X}", k + 1);
        assert_eq!(onu["serial"], sn.as_str(), "{onu}");
        if k == 1 || k == 3 {
            assert_eq!(onu["result"], "upgraded", "{onu}");
        } else {
            assert_eq!(onu["result"], "skipped", "{onu}");
            let why = onu["reason"].as_str().unwrap();
            assert!(why.contains(&sn) && why.contains("--serials"), "{why}");
        }
    }
    // Read over OMCI afterwards: only ONUs 2 and 4 run V2.0.
    let after = bench.status();
    for k in 0..4 {
        let running: Vec<&Value> = after["onus"][k]["images"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["active"] == true)
            .collect();
        let want = if k == 1 || k == 3 { "V2.0" } else { "V1.0" };
        assert_eq!(running[0]["version"], want, "{after}");
    }
}
