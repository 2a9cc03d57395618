//! One rule for exit codes, for every command of every tool, as a table: 0 the work succeeded,
//! 1 the work failed, 2 the input was wrong. A usage error is one line on standard error that
//! names the flag, the file or the value at fault, in plain words (no Rust, no operating
//! system error numbers). docs/decisions.md states the rule; each tool's `--help` follows it.
//!
//! The cases that fail the work (exit 1) are the cheap ones: nothing answers, an image whose
//! signature does not verify, a flash that would not boot, a frame that does not decode.
//! `olt conform onu` says more than "failed" (docs/conformance.md): 3 when the target does not
//! answer or is lost, 4 when the suite itself stopped; CI systems tell a broken ONU (1) from
//! one that is not there (3).

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

harness::tools!();

/// The `omci` tool, built by this package from its own source.
fn omci() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lab-omci"))
}

/// Which tool a case runs.
#[derive(Clone, Copy, Debug)]
enum Tool {
    Omci,
    Onu,
    Olt,
    Scenario,
}

/// One row: the tool, its arguments (`{dir}` is the case directory, `{silent}` a loopback
/// port where nothing answers), what goes to standard input, the exit code, and words the
/// one line on standard error must hold (usage errors only).
struct Case {
    tool: Tool,
    args: &'static str,
    stdin: &'static str,
    code: i32,
    says: &'static [&'static str],
}

const fn case(tool: Tool, args: &'static str, code: i32, says: &'static [&'static str]) -> Case {
    Case {
        tool,
        args,
        stdin: "",
        code,
        says,
    }
}

use Tool::*;

/// Every command's usage errors (exit 2), its work failing (exit 1) and succeeding (exit 0).
const TABLE: &[Case] = &[
    // omci
    case(Omci, "--help", 0, &[]),
    case(Omci, "", 2, &["decode", "encode", "pcap"]),
    case(Omci, "nothing", 2, &["nothing"]),
    case(Omci, "decode --bogus", 2, &["--bogus"]),
    case(
        Omci,
        "pcap {dir}/none.pcap",
        2,
        &["none.pcap", "no such file"],
    ),
    case(
        Omci,
        "pcap {dir}/v2.img",
        2,
        &["v2.img", "not a pcap or pcapng capture"],
    ),
    Case {
        tool: Omci,
        args: "decode",
        stdin: "zz\n",
        code: 1,
        says: &[],
    },
    Case {
        tool: Omci,
        args: "encode",
        stdin: "{\n",
        code: 1,
        says: &[],
    },
    // onu
    case(Onu, "--help", 0, &[]),
    case(Onu, "", 2, &["run", "image", "status"]),
    case(Onu, "run", 2, &["--state-dir", "--public-key"]),
    case(
        Onu,
        "run --state-dir {dir}/s --public-key {dir}/lab.pub --listen 127.0.0.1:0",
        2,
        &["--listen", "port 0"],
    ),
    case(
        Onu,
        "run --state-dir {dir}/s --public-key {dir}/other.key",
        2,
        &[
            "--public-key",
            "other.key",
            "is the secret key of",
            "other.pub",
        ],
    ),
    case(
        Onu,
        "run --state-dir {dir}/s --public-key {dir}/none.pub",
        2,
        &["none.pub", "no such file"],
    ),
    case(Onu, "image keygen --out /nonexistent/dir/k", 2, &["--out"]),
    case(
        Onu,
        "image build --key {dir}/lab.pub --model M --version V --size 10 --out {dir}/x.img",
        2,
        &["--key", "public key"],
    ),
    case(
        Onu,
        "image build --key {dir}/none.key --model M --version V --size 10 --out {dir}/x.img",
        2,
        &["none.key", "no such file"],
    ),
    case(
        Onu,
        "image build --key {dir}/lab.key --model M --version V --size 99999999999 --out {dir}/x.img",
        2,
        &["--size"],
    ),
    case(
        Onu,
        "image inspect {dir}/none.img",
        2,
        &["none.img", "no such file"],
    ),
    case(
        Onu,
        "image inspect {dir}/v2.img --public-key {dir}/lab.key",
        2,
        &["--public-key", "is the secret key of", "lab.pub"],
    ),
    case(
        Onu,
        "image inspect {dir}/v2.img --public-key {dir}/lab.pub",
        0,
        &[],
    ),
    case(
        Onu,
        "image inspect {dir}/bad.img --public-key {dir}/lab.pub",
        1,
        &[],
    ),
    case(Onu, "image inspect {dir}/cut.img", 1, &[]),
    // delta packages
    case(
        Onu,
        "image delta --from {dir}/v1.img --to {dir}/v2.img --key {dir}/lab.key --out {dir}/d2.pkg",
        0,
        &[],
    ),
    case(
        Onu,
        "image delta --from {dir}/cut.img --to {dir}/v2.img --key {dir}/lab.key --out {dir}/d3.pkg",
        2,
        &["--from", "not a whole image"],
    ),
    case(
        Onu,
        "image inspect {dir}/d.pkg --public-key {dir}/lab.pub",
        0,
        &[],
    ),
    case(
        Onu,
        "image inspect {dir}/d.pkg --public-key {dir}/other.pub",
        1,
        &[],
    ),
    case(
        Onu,
        "image apply --base {dir}/v1.img --delta {dir}/d.pkg --public-key {dir}/lab.pub --out {dir}/r.img",
        0,
        &[],
    ),
    case(
        Onu,
        "image apply --base {dir}/v2.img --delta {dir}/d.pkg --public-key {dir}/lab.pub --out {dir}/r2.img",
        1,
        &[],
    ),
    case(
        Onu,
        "image build --key {dir}/lab.key --model M --version V3 --derive-from {dir}/v1.img --changed 101 --out {dir}/v3.img",
        2,
        &["--changed"],
    ),
    case(
        Onu,
        "status --state-dir {dir}/none --public-key {dir}/lab.pub",
        2,
        &["--state-dir"],
    ),
    case(
        Onu,
        "status --state-dir {dir}/empty --public-key {dir}/lab.pub",
        1,
        &[],
    ),
    // olt
    case(Olt, "--help", 0, &[]),
    case(Olt, "", 2, &["rollout", "status", "conform"]),
    case(Olt, "rollout", 2, &["--image", "--onus"]),
    case(
        Olt,
        "rollout --image {dir}/none.img --onus 1@127.0.0.1:{silent}",
        2,
        &["--image", "no such file"],
    ),
    case(
        Olt,
        "rollout --image {dir}/cut.img --onus 1@127.0.0.1:{silent}",
        2,
        &["--image", "not a whole image"],
    ),
    case(
        Olt,
        "rollout --image {dir}/d.pkg --onus 1@127.0.0.1:{silent}",
        2,
        &["--image", "delta package"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --delta {dir}/v1.img --onus 1@127.0.0.1:{silent}",
        2,
        &["--delta", "not a delta package"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v1.img --delta {dir}/d.pkg --onus 1@127.0.0.1:{silent}",
        2,
        &["--delta", "not --image"],
    ),
    case(
        Olt,
        "rollout --image {dir} --onus 1@127.0.0.1:{silent}",
        2,
        &["--image", "not a file"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@10.0.0.1:9",
        2,
        &["--onus", "loopback"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:0",
        2,
        &["--onus", "port 0"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --serials LABS0001",
        2,
        &["--serials", "not a serial number"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --window 0",
        2,
        &["--window"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --manifest {dir}/none.json",
        2,
        &["--manifest", "no such file"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --manifest {dir}/lab.pub",
        2,
        &["--manifest", "not a release manifest"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --journal {dir}/lab.pub",
        2,
        &["--journal", "not a campaign journal"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --html {dir}/none/r.html",
        2,
        &["--html", "does not exist"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --html {dir}",
        2,
        &["--html", "it is a folder"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --manifest {dir}/other-model.json",
        2,
        &["--manifest", "model"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --public-key {dir}/other.pub",
        2,
        &["--image", "signature does not verify"],
    ),
    case(
        Olt,
        "rollout --image {dir}/bad.img --onus 1@127.0.0.1:{silent} --public-key {dir}/lab.pub",
        2,
        &["--image", "damaged"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --public-key {dir}/none.pub",
        2,
        &["--public-key", "no such file"],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(
        Olt,
        "rollout --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --public-key {dir}/lab.pub --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(Olt, "download --image {dir}/v2.img", 2, &["--onus"]),
    case(
        Olt,
        "download --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(
        Olt,
        "activate --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --until garbage",
        2,
        &["--until", "RFC 3339"],
    ),
    case(
        Olt,
        "activate --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(Olt, "commit", 2, &["--image", "--onus"]),
    case(
        Olt,
        "commit --image {dir}/v2.img --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(Olt, "status", 2, &["--onus"]),
    case(
        Olt,
        "status --onus 1@127.0.0.1:{silent} --timeout-ms 0",
        2,
        &["--timeout-ms"],
    ),
    case(
        Olt,
        "status --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(Olt, "abort", 2, &["--onus"]),
    case(
        Olt,
        "abort --onus 1@127.0.0.1:{silent} --timeout-ms 50 --retries 0",
        1,
        &[],
    ),
    case(Olt, "conform onu", 2, &["--target", "--image"]),
    case(
        Olt,
        "conform onu --target 127.0.0.1:{silent} --image {dir}/v2.img --timeout-ms 0",
        2,
        &["--timeout-ms"],
    ),
    case(
        Olt,
        "conform onu --target 127.0.0.1:{silent} --image {dir}/none.img",
        2,
        &["--image"],
    ),
    case(
        Olt,
        "conform onu --target 127.0.0.1:{silent} --image {dir}/v2.img --timeout-ms 50",
        3,
        &[],
    ),
    // scenario
    case(Scenario, "--help", 0, &[]),
    case(Scenario, "", 2, &["run", "check", "soak"]),
    case(Scenario, "nothing", 2, &["nothing"]),
    case(Scenario, "list", 0, &[]),
    case(Scenario, "run no-such-scenario", 2, &["no-such-scenario"]),
    case(Scenario, "run {dir}/none.toml", 2, &["none.toml"]),
    case(
        Scenario,
        "run {dir}/bad.toml",
        2,
        &["bad.toml", "line 1", "name"],
    ),
    case(Scenario, "check {dir}/bad.toml", 2, &["bad.toml", "line 1"]),
    case(Scenario, "check {dir}/good.toml", 0, &[]),
    case(Scenario, "run {dir}/unmet.toml", 1, &[]),
    case(
        Scenario,
        "run {dir}/good.toml --html {dir}/none/r.html",
        2,
        &["--html", "does not exist"],
    ),
    case(
        Scenario,
        "demo --html {dir}/none/r.html",
        2,
        &["--html", "does not exist"],
    ),
    case(Scenario, "soak --cases 0", 2, &["--cases"]),
    case(Scenario, "soak --size 0", 2, &["--size"]),
    case(Scenario, "bench --bogus", 2, &["--bogus"]),
    case(Scenario, "project --bogus", 2, &["--bogus"]),
    case(Scenario, "demo --onus 0", 2, &["--onus"]),
    case(Scenario, "demo --onus 129", 2, &["--onus"]),
];

/// The files the table refers to: keys, a good image, a cut one, a tampered one, scenario
/// files, an empty state directory.
fn fixtures(dir: &Path) {
    let run = |args: &[&str]| {
        let out = onu().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    let d = dir.display().to_string();
    run(&["image", "keygen", "--out", &format!("{d}/lab")]);
    run(&["image", "keygen", "--out", &format!("{d}/other")]);
    run(&[
        "image",
        "build",
        "--key",
        &format!("{d}/lab.key"),
        "--model",
        "LAB-ONU-1",
        "--version",
        "V2.0",
        "--size",
        "2000",
        "--out",
        &format!("{d}/v2.img"),
        "--manifest",
        &format!("{d}/v2.json"),
    ]);
    run(&[
        "image",
        "build",
        "--key",
        &format!("{d}/lab.key"),
        "--model",
        "LAB-ONU-1",
        "--version",
        "V1.0",
        "--size",
        "2000",
        "--out",
        &format!("{d}/v1.img"),
    ]);
    run(&[
        "image",
        "delta",
        "--from",
        &format!("{d}/v1.img"),
        "--to",
        &format!("{d}/v2.img"),
        "--key",
        &format!("{d}/lab.key"),
        "--out",
        &format!("{d}/d.pkg"),
    ]);
    // v2.img's manifest, edited to target another model.
    let manifest = std::fs::read_to_string(dir.join("v2.json")).unwrap();
    assert!(manifest.contains("\"LAB-ONU-1\""), "{manifest}");
    std::fs::write(
        dir.join("other-model.json"),
        manifest.replace("\"LAB-ONU-1\"", "\"LAB-ONU-9\""),
    )
    .unwrap();
    let good = std::fs::read(dir.join("v2.img")).unwrap();
    std::fs::write(dir.join("cut.img"), &good[..300]).unwrap();
    let mut bad = good.clone();
    bad[600] ^= 0xff;
    std::fs::write(dir.join("bad.img"), bad).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::write(dir.join("bad.toml"), "name = 1\n").unwrap();
    let one =
        "name = \"exit-codes\"\n[topology]\nonus = 1\n[image]\nversion = \"V2.0\"\nsize = 2000\n";
    std::fs::write(dir.join("good.toml"), one).unwrap();
    // Runs, and its expectation (the ONU committed on a version never sent) cannot hold: the
    // work failed.
    std::fs::write(
        dir.join("unmet.toml"),
        format!("{one}[[expect.onus]]\nonus = \"all\"\ncommitted = \"V9.9\"\n"),
    )
    .unwrap();
}

/// No Rust and no operating-system error numbers in what a person reads.
fn plain(err: &str) -> Result<(), String> {
    for rust in [
        "Some(",
        "None",
        "Error {",
        "Os {",
        "kind:",
        "panicked",
        "os error",
        "RUST_BACKTRACE",
    ] {
        if err.contains(rust) {
            return Err(format!("{rust:?} in what a person reads"));
        }
    }
    Ok(())
}

fn check(c: &Case, dir: &Path, silent: u16) -> Result<(), String> {
    let args: Vec<String> = c
        .args
        .replace("{dir}", &dir.display().to_string())
        .replace("{silent}", &silent.to_string())
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut cmd = match c.tool {
        Omci => omci(),
        Onu => onu(),
        Olt => olt(),
        Scenario => scenario(),
    };
    cmd.args(&args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(c.stdin.as_bytes());
    }
    // Every case is quick; one that hangs is a failure, not a stuck CI run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("still running after 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code();
    if code != Some(c.code) {
        return Err(format!("exit {code:?}, expected {}: {err}", c.code));
    }
    plain(&err).map_err(|e| format!("{e}: {err}"))?;
    if c.code == 2 {
        if err.trim_end().lines().count() != 1 {
            return Err(format!("a usage error is one line: {err}"));
        }
        for w in c.says {
            if !err.contains(w) {
                return Err(format!("should name {w:?}: {err}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_command_follows_the_exit_code_rule() {
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    // A port where nothing answers: bound here and never read, so no one else takes it.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let failures: Vec<String> = TABLE
        .iter()
        .filter_map(|c| {
            check(c, dir.path(), port)
                .err()
                .map(|e| format!("{:?} {}: {e}", c.tool, c.args))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases break the rule:\n{}",
        failures.len(),
        TABLE.len(),
        failures.join("\n")
    );
}
