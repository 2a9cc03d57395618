//! The `onu` command as a user runs it: keys, images, manifests, inspection, flash status, and
//! the errors a user can make.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_onu");

fn onu(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("onu runs")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn keygen_build_inspect_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("lab");
    assert!(
        onu(&["image", "keygen", "--out", p(&prefix)])
            .status
            .success()
    );
    let key = dir.path().join("lab.key");
    let public = dir.path().join("lab.pub");
    assert_eq!(std::fs::read_to_string(&public).unwrap().trim().len(), 64);
    let img = dir.path().join("v2.img");
    let out = onu(&[
        "image",
        "build",
        "--key",
        p(&key),
        "--model",
        "LAB-ONU-1",
        "--version",
        "V2.0",
        "--security-version",
        "4",
        "--build",
        "17",
        "--size",
        "5000",
        "--out",
        p(&img),
        "--rollout-percent",
        "25",
        "--rollout-start",
        "2026-12-01T02:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&img).unwrap();
    assert_eq!(bytes.len(), 128 + 5000 + 64);
    // The manifest, next to the image.
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("v2.json")).unwrap())
            .unwrap();
    assert_eq!(m["device_model"], "LAB-ONU-1");
    assert_eq!(m["version"], "V2.0");
    assert_eq!(m["build"], 17);
    assert_eq!(m["type"], "full");
    assert_eq!(m["rollout"]["percent"], 25);
    assert_eq!(m["rollout"]["start"], "2026-12-01T02:00:00Z");
    assert!(m["url"].as_str().unwrap().starts_with("file:///"));
    assert_eq!(m["signature"], hex::encode(&bytes[bytes.len() - 64..]));
    use sha2::Digest;
    assert_eq!(
        m["checksum"],
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)))
    );
    // Inspect: header, hash and signature.
    let out = onu(&[
        "image",
        "inspect",
        p(&img),
        "--public-key",
        p(&public),
        "--json",
    ]);
    assert!(out.status.success());
    let i: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["version"], "V2.0");
    assert_eq!(i["security_version"], 4);
    assert_eq!(i["hash_ok"], true);
    assert_eq!(i["signature_ok"], true);
    assert_eq!(i["checksum"], m["checksum"]);
    // A tampered payload: inspect says so and fails.
    let mut bad = bytes.clone();
    bad[300] ^= 1;
    let tampered = dir.path().join("bad.img");
    std::fs::write(&tampered, bad).unwrap();
    let out = onu(&[
        "image",
        "inspect",
        p(&tampered),
        "--public-key",
        p(&public),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let i: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(i["hash_ok"], false);
    // Another key: the signature fails.
    assert!(
        onu(&["image", "keygen", "--out", p(&dir.path().join("other"))])
            .status
            .success()
    );
    let out = onu(&[
        "image",
        "inspect",
        p(&img),
        "--public-key",
        p(&dir.path().join("other.pub")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("signature:        BAD"));
}

#[test]
fn status_reads_a_flash_the_onu_left() {
    use ed25519_dalek::SigningKey;
    use onu::boot::slot_meta;
    use onu::flash::{FileFlash, Flash};
    use pon::firmware::{BuildSpec, build, deterministic_payload, inspect};
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let public = dir.path().join("lab.pub");
    std::fs::write(&public, hex::encode(key.verifying_key().to_bytes())).unwrap();
    let img = |v: &str| {
        let spec = BuildSpec {
            model: "LAB-ONU-1".into(),
            version: v.into(),
            security_version: 1,
            build: 1,
            fails_to_boot: false,
        };
        build(&spec, &deterministic_payload(v, 400), &key).unwrap()
    };
    // Image 0 committed, image 1 valid and pending activation.
    let state = dir.path().join("state");
    let mut flash = FileFlash::open(&state).unwrap();
    let (a, b) = (img("V1"), img("V2"));
    flash.write_slot(0, 0, &a).unwrap();
    flash.write_slot(1, 0, &b).unwrap();
    let mut m = onu::meta::Metadata::default();
    m.slots[0] = slot_meta(&inspect(&a, None).unwrap());
    m.slots[1] = slot_meta(&inspect(&b, None).unwrap());
    m.pending = Some(1);
    onu::meta::store(&mut flash, &mut m).unwrap();
    let before: Vec<Vec<u8>> = ["meta0.bin", "meta1.bin", "slot0.img", "slot1.img"]
        .iter()
        .map(|f| std::fs::read(state.join(f)).unwrap_or_default())
        .collect();
    let out = onu(&[
        "status",
        "--state-dir",
        p(&state),
        "--public-key",
        p(&public),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["bootable"], true);
    assert_eq!(s["boots"], 1, "the pending image would boot next");
    assert_eq!(s["slots"][0]["committed"], true);
    assert_eq!(s["slots"][1]["active"], true);
    assert_eq!(s["slots"][1]["version"], "V2");
    // Reading changed nothing.
    let after: Vec<Vec<u8>> = ["meta0.bin", "meta1.bin", "slot0.img", "slot1.img"]
        .iter()
        .map(|f| std::fs::read(state.join(f)).unwrap_or_default())
        .collect();
    assert_eq!(before, after);
    // Both slots destroyed and no golden image: not bootable, exit 1, said plainly.
    std::fs::write(state.join("slot0.img"), b"garbage").unwrap();
    std::fs::write(state.join("slot1.img"), b"garbage").unwrap();
    let out = onu(&[
        "status",
        "--state-dir",
        p(&state),
        "--public-key",
        p(&public),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bootable: NO"));
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    for (args, must) in [
        (vec!["run"], "--state-dir"),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--olt",
                "192.168.1.1:5",
            ],
            "loopback",
        ),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--group",
                "127.0.0.1:5",
            ],
            "multicast",
        ),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--drop",
                "1.5",
            ],
            "between 0 and 1",
        ),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--fault",
                "after-window-ack@0",
            ],
            "occurrence",
        ),
        (vec!["image", "build", "--key", "k"], "--model"),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--onu-id",
                "65535",
            ],
            "65534",
        ),
        (
            vec![
                "run",
                "--state-dir",
                "x",
                "--public-key",
                "k",
                "--onu-id",
                "65530",
                "--count",
                "9",
            ],
            "65534",
        ),
        (vec![], "run, image, status"),
    ] {
        let out = onu(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(must), "{args:?} should say {must}: {err}");
    }
}

#[test]
fn count_gives_up_on_children_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // No such key file: every child fails at once; the parent must stop, not respawn forever.
    let out = Command::new(BIN)
        .args(["run", "--count", "2", "--listen", "127.0.0.1:45901"])
        .arg(format!("--state-dir={}", dir.path().display()))
        .arg(format!(
            "--public-key={}",
            dir.path().join("missing.pub").display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fails to start"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn durations_sizes_and_counts_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("lab");
    assert!(
        onu(&["image", "keygen", "--out", p(&prefix)])
            .status
            .success()
    );
    let (key, public) = (dir.path().join("lab.key"), dir.path().join("lab.pub"));
    let huge = "18446744073709551615";
    let run = |flag: &str, value: &str| -> Vec<String> {
        [
            "run",
            "--state-dir",
            p(dir.path()),
            "--public-key",
            p(&public),
            flag,
            value,
        ]
        .map(String::from)
        .to_vec()
    };
    let build = |extra: &[&str]| -> Vec<String> {
        let img = dir.path().join("x.img");
        let mut v: Vec<String> = [
            "image",
            "build",
            "--model",
            "LAB-ONU-1",
            "--version",
            "V2",
            "--out",
            p(&img),
        ]
        .map(String::from)
        .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    // The public key copied over the secret one (`cp lab.pub lab.key`): the .pub beside it
    // holds the same bytes.
    std::fs::create_dir(dir.path().join("mixed")).unwrap();
    let copy = dir.path().join("mixed/lab.key");
    std::fs::copy(&public, &copy).unwrap();
    std::fs::copy(&public, dir.path().join("mixed/lab.pub")).unwrap();
    for (args, must) in [
        (run("--stale-download-s", huge), "--stale-download-s"),
        (run("--stale-download-s", "0"), "1..=86400"),
        (run("--busy-ms", huge), "--busy-ms"),
        (run("--reboot-ms", huge), "--reboot-ms"),
        (run("--slot-size", huge), "--slot-size"),
        (run("--slot-size", "100"), "192..=4294967295"),
        (run("--count", "129"), "--count"),
        (build(&["--key", p(&key), "--size", huge]), "--size"),
        (
            build(&["--key", p(&key), "--size", "67108800"]),
            "--slot-size 67108864",
        ),
        (
            build(&["--key", p(&key), "--size", "5000", "--slot-size", "4096"]),
            "--slot-size 4096",
        ),
        (
            build(&["--key", p(&key), "--size", "1", "--slot-size", huge]),
            "--slot-size",
        ),
        (
            build(&["--key", p(&public), "--size", "100"]),
            "is the public key of",
        ),
        (build(&["--key", p(&copy), "--size", "100"]), "public key"),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(must), "{args:?} should say {must}: {err}");
    }
    // No image was written by any of them.
    assert!(!dir.path().join("x.img").exists());
    // The largest image that fits the slot builds.
    let out = Command::new(BIN)
        .args(build(&[
            "--key",
            p(&key),
            "--size",
            "3904",
            "--slot-size",
            "4096",
        ]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("x.img")).unwrap().len(),
        4096
    );
}

#[test]
fn keygen_writes_the_secret_key_for_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("lab");
    // A secret key file left world-readable by an earlier tool is tightened too.
    std::fs::write(dir.path().join("lab.key"), "old\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("lab.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert!(
        onu(&["image", "keygen", "--out", p(&prefix)])
            .status
            .success()
    );
    let mode = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("lab.key"), 0o600);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("lab.key"))
            .unwrap()
            .trim()
            .len(),
        64
    );
    assert_eq!(
        mode("lab.pub") & 0o600,
        0o600,
        "the public key stays readable"
    );
}
