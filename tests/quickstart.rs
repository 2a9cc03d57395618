//! The README's main job, as CI runs it: `scenario run scenarios/quickstart.toml`, 128 ONU
//! processes and the OLT on loopback, every expectation of the file checked (alone in its test
//! binary: cargo runs test binaries one after the other, so nothing else competes for the CPU).

harness::tools!();

#[test]
fn quickstart_upgrades_128_onus_by_multicast() {
    let file = harness::process::library().join("quickstart.toml");
    let out = scenario()
        .arg("run")
        .arg(&file)
        .arg("--port=21000")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("upgraded    V2.0       V2.0         128  1-128"),
        "{text}"
    );
    assert!(text.contains("PASSED"), "{text}");
}
