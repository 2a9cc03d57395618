//! Recovery mode over TFTP with real processes: the library's recovery scenarios against the
//! runner's embedded server and against Debian's `in.tftpd` (tftpd-hpa; skipped, saying why,
//! where it cannot run), and one `onu run --golden tftp://...` process against a server that
//! is down and then up, with a power cut in the middle of the restore.

use std::path::Path;
use std::time::{Duration, Instant};

use harness::images::{image, key};
use harness::process::Proc;

harness::tools!();

/// Runs scenario `file` with `extra` arguments; its whole output. It must pass.
fn run(file: &Path, port: u16) -> String {
    let out = scenario()
        .arg("run")
        .arg(file)
        .arg(format!("--port={port}"))
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{} failed:\n{text}", file.display());
    assert!(text.contains("PASSED"), "{text}");
    text
}

fn library(name: &str) -> std::path::PathBuf {
    harness::process::library().join(format!("{name}.toml"))
}

fn assert_recovered(text: &str) {
    for id in [1, 2] {
        assert!(
            text.contains(&format!(
                "ONU {id} was in recovery mode: golden image V1.0 restored from tftp://127.0.0.1:"
            )),
            "ONU {id} did not go through recovery mode:\n{text}"
        );
    }
    assert!(!text.contains("ONU 3 was in recovery mode"), "{text}");
}

fn assert_refused(text: &str) {
    for id in [1, 2] {
        assert!(
            text.contains(&format!("ONU {id} stays in recovery mode: "))
                && text.contains("SHA-256 does not match"),
            "ONU {id} did not refuse the tampered golden image:\n{text}"
        );
    }
}

#[test]
fn a_wrecked_flash_is_recovered_over_the_embedded_server_then_upgraded() {
    assert_recovered(&run(&library("golden-recovery-tftp"), 29100));
}

#[test]
fn a_run_carried_on_with_reuse_finds_the_recovered_flash_as_it_was_left() {
    // The soak's retry and `--reuse` carry a run on: a wrecked ONU that recovery mode brought
    // back and the OLT upgraded must not be wrecked again, nor given its factory image.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrecked.toml");
    std::fs::write(
        &file,
        r#"
name = "wrecked-then-reused"
[topology]
onus = 2
[image]
version = "V2.0"
size = 8000
security_version = 2
[golden]
server = "embedded"
wrecked = "1"
[[expect.onus]]
onus = "all"
result = "any"
committed = "V2.0"
active = "V2.0"
"#,
    )
    .unwrap();
    let keep = dir.path().join("work");
    let pass = |reuse: bool| {
        let out = scenario()
            .arg("run")
            .arg(&file)
            .arg(format!("--keep={}", keep.display()))
            .args(reuse.then_some("--reuse"))
            .arg("--port=29500")
            .output()
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let first = pass(false);
    assert!(first.contains("ONU 1 was in recovery mode"), "{first}");
    let again = pass(true);
    assert!(
        !again.contains("recovery mode"),
        "the flash was laid again:\n{again}"
    );
}

#[test]
fn a_tampered_golden_image_on_the_embedded_server_is_refused() {
    assert_refused(&run(&library("golden-tampered"), 29200));
}

#[test]
fn both_scenarios_against_tftpd_hpa() {
    if let Some(why) = scenarios::run::tftpd_hpa_unavailable() {
        eprintln!("skipped: the tftpd-hpa runs of the recovery scenarios: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, port) in [("golden-recovery-tftp", 29300), ("golden-tampered", 29400)] {
        let text = std::fs::read_to_string(library(name)).unwrap();
        let text = text.replace("server = \"embedded\"", "server = \"tftpd-hpa\"");
        assert!(text.contains("tftpd-hpa"));
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = run(&file, port);
        assert!(out.contains("served by tftpd-hpa's in.tftpd"), "{out}");
        if name == "golden-tampered" {
            assert_refused(&out);
        } else {
            assert_recovered(&out);
        }
    }
}

/// Waits until the log at `path` contains `what` (at most `limit`); the log.
fn wait_for(path: &Path, what: &str, limit: Duration) -> String {
    let end = Instant::now() + limit;
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.contains(what) || Instant::now() > end {
            return log;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(dir: &Path) -> (bool, String) {
    let out = onu()
        .arg("status")
        .arg(format!("--state-dir={}", dir.join("onu").display()))
        .arg(format!("--public-key={}", dir.join("lab.pub").display()))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn an_onu_process_waits_out_a_down_server_and_a_power_cut_mid_restore() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let golden = image("V1.0", 1, 20_000, false);
    let files = pon::tftp::Files::default();
    files.put("golden.img", golden.clone());
    files.set_answering(false); // down
    let server = rt
        .block_on(async {
            pon::tftp::TftpServer::bind("127.0.0.1:0".parse().unwrap(), files.clone())
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lab.pub"),
        hex::encode(key().verifying_key().to_bytes()),
    )
    .unwrap();
    // A power cut wrecked both slots and the metadata.
    let state = dir.path().join("onu");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("slot0.img"), vec![0x5A; 5000]).unwrap();
    std::fs::write(state.join("meta0.bin"), [0xFF; 156]).unwrap();
    let port = harness::process::free_port();
    let start = |fault: Option<&str>, log: &Path| {
        let mut c = onu();
        c.arg("run")
            .arg(format!("--state-dir={}", state.display()))
            .arg(format!(
                "--public-key={}",
                dir.path().join("lab.pub").display()
            ))
            .arg(format!("--golden=tftp://{}/golden.img", server.addr()))
            .arg("--recovery-max-backoff-ms=500")
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--olt=127.0.0.1:{}", harness::process::free_port()))
            .arg("--log-format=json")
            .args(fault.map(|f| format!("--fault={f}")))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        Proc(c.spawn().unwrap())
    };
    let log1 = dir.path().join("life1.log");
    let mut first = start(Some("mid-golden-restore@3"), &log1);
    let log = wait_for(&log1, "recovery-failed", Duration::from_secs(15));
    assert!(
        log.contains("still in recovery mode") && log.contains("no answer from the TFTP server"),
        "{log}"
    );
    assert!(!status(dir.path()).0, "bootable while the server was down");
    // The server comes up: the restore starts, and the power fails at its third block.
    files.set_answering(true);
    let end = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(st) = first.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < end,
            "no power cut:\n{}",
            std::fs::read_to_string(&log1).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        exit.code(),
        None,
        "the power cut aborts the process ({exit})"
    );
    let (bootable, said) = status(dir.path());
    assert!(!bootable, "a half-written golden image boots:\n{said}");
    // Power back on: recovery mode again, from the start; then the golden image boots.
    let log2 = dir.path().join("life2.log");
    let _second = start(None, &log2);
    let log = wait_for(
        &log2,
        "\\\"event\\\":\\\"booted\\\"",
        Duration::from_secs(20),
    );
    assert!(log.contains("golden-restored"), "{log}");
    assert!(log.contains("\\\"event\\\":\\\"booted\\\""), "{log}");
    let (bootable, said) = status(dir.path());
    assert!(bootable, "{said}");
    assert!(said.contains("V1.0"), "{said}");
    assert_eq!(std::fs::read(state.join("slot0.img")).unwrap(), golden);
    drop(server);
}
