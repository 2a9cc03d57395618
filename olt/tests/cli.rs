//! `olt`'s command line from the user's side: usage errors are one line and exit 2; inputs
//! that do not fit together are refused before anything is sent.

use std::process::{Command, Output};

const OLT: &str = env!("CARGO_BIN_EXE_olt");

fn olt(args: &[&str]) -> Output {
    Command::new(OLT).args(args).output().unwrap()
}

fn one_line_usage_error(out: &Output, mentions: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(mentions), "{err}");
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    one_line_usage_error(
        &olt(&[
            "rollout",
            "--image",
            "x",
            "--onus",
            "1-4@127.0.0.1:40001",
            "--mode",
            "broadcast",
        ]),
        "broadcast",
    );
    one_line_usage_error(
        &olt(&["rollout", "--image", "x", "--onus", "1-4@10.0.0.1:40001"]),
        "10.0.0.1",
    );
    one_line_usage_error(
        &olt(&[
            "rollout",
            "--image",
            "x",
            "--onus",
            "1-4@127.0.0.1:40001",
            "--canary",
            "150",
        ]),
        "150",
    );
    one_line_usage_error(
        &olt(&[
            "rollout",
            "--image",
            "x",
            "--onus",
            "1@127.0.0.1:40001",
            "--strict",
        ]),
        "--strict needs --mode unicast",
    );
    one_line_usage_error(&olt(&["abort"]), "--onus");
}

#[test]
fn a_manifest_that_does_not_match_the_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).display().to_string();
    let onu = std::path::Path::new(OLT).parent().unwrap().join("onu");
    if !onu.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-p", "onu", "--bin", "onu"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(built.success());
    }
    let sh = |args: &[&str]| assert!(Command::new(&onu).args(args).status().unwrap().success());
    sh(&["image", "keygen", "--out", &p("k")]);
    for (v, out) in [("V2", "a.img"), ("V3", "b.img")] {
        sh(&[
            "image",
            "build",
            "--key",
            &p("k.key"),
            "--model",
            "LAB-ONU-1",
            "--version",
            v,
            "--size",
            "1000",
            "--out",
            &p(out),
        ]);
    }
    // The manifest of b.img with the image a.img.
    let out = olt(&[
        "rollout",
        "--image",
        &p("a.img"),
        "--manifest",
        &p("b.json"),
        "--onus",
        "1@127.0.0.1:40001",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    // The input is wrong: exit 2 (the project's rule; it was 1 before the rule was applied).
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not match the checksum"), "{err}");
    // A journal of another image.
    std::fs::write(
        p("j.json"),
        r#"{"format":1,"image_sha256":"00","image_version":"V9","stage":"wave","wave":0,"halt_reason":null,"waves":[[1]],"onus":{}}"#,
    )
    .unwrap();
    let out = olt(&[
        "rollout",
        "--image",
        &p("a.img"),
        "--journal",
        &p("j.json"),
        "--onus",
        "1@127.0.0.1:40001",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another image (version V9)"), "{err}");
}
