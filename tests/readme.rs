//! The README's walk through the tools ("The tools, step by step") runs as written: every
//! command of its `sh` blocks, in order, in one bash shell, in a fresh directory, each exit
//! code 0. The tools on PATH are the ones this package just built (`lab` as `onu`, `olt` and
//! `scenario`; `lab-omci` as `omci`), so the two commands that build and put the release
//! binaries on PATH are the only ones not run; the test checks that no other is skipped. The
//! ONUs' first port is moved to a free one; the whole shell and everything it started is
//! killed at the end, however the test ends. And the README's fleet in two commands ("The
//! fleet"): the second runs as written, and the dashboard it prints answers.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The commands the test does not run, because it provides what they provide.
const PROVIDED: &[&str] = &["cargo build --release", "export PATH="];

/// The commands of the `sh` blocks between `from` and `to`, continuation lines joined,
/// comment and blank lines left out.
fn commands(readme: &str, from: &str, to: &str) -> Vec<String> {
    let start = readme
        .find(from)
        .expect("the README has the walk's heading");
    let end = start + readme[start..].find(to).expect("and the heading after it");
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```sh" && !in_block;
            continue;
        }
        if !in_block || (pending.is_empty() && line.trim_start().starts_with('#')) {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => {
                pending.push_str(line);
                out.push(std::mem::take(&mut pending).trim().to_string());
            }
        }
    }
    out
}

/// A port with `n` free UDP ports from it on loopback.
fn free_run(n: u16) -> u16 {
    harness::process::free_ports(41000, n)
}

/// A shell script in `dir` that runs `path` as `name`.
fn wrapper(dir: &Path, name: &str, target: &str, first: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let args: String = first.iter().map(|a| format!("{a} ")).collect();
    let f = dir.join(name);
    std::fs::write(&f, format!("#!/bin/sh\nexec '{target}' {args}\"$@\"\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Kills the shell's whole process group when dropped.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn every_command_of_the_readme_walk_runs_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let all = commands(&readme, "## The tools, step by step", "## The crates");
    let (provided, run): (Vec<String>, Vec<String>) = all
        .into_iter()
        .partition(|c| PROVIDED.iter().any(|p| c.starts_with(p)));
    assert_eq!(
        provided.len(),
        PROVIDED.len(),
        "the walk builds the tools and puts them on PATH, once each: {provided:?}"
    );
    assert!(run.len() >= 15, "the walk has its commands: {run:?}");

    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let lab = env!("CARGO_BIN_EXE_lab");
    wrapper(&bin, "onu", lab, &["onu"]);
    wrapper(&bin, "olt", lab, &["olt"]);
    wrapper(&bin, "scenario", lab, &[]);
    wrapper(&bin, "omci", env!("CARGO_BIN_EXE_lab-omci"), &[]);

    let port = free_run(16);
    let mut script = String::from("exec 3>\"$MARKS\"\n");
    for (n, c) in run.iter().enumerate() {
        let c = c.replace("127.0.0.1:40001", &format!("127.0.0.1:{port}"));
        script += &format!("{c}\necho \"{n} $?\" >&3\n");
    }
    let marks = dir.path().join("marks");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("TMPDIR", &tmp)
        .env("MARKS", &marks)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(child.id() as i32);
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(_group);
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let marks = std::fs::read_to_string(&marks).unwrap_or_default();
    let codes: Vec<(usize, i32)> = marks
        .lines()
        .filter_map(|l| {
            let (n, code) = l.split_once(' ')?;
            Some((n.parse().ok()?, code.parse().ok()?))
        })
        .collect();
    let context = format!("standard output:\n{out}\nstandard error:\n{err}");
    assert!(status.is_some(), "the walk took more than 240 s\n{context}");
    for (n, code) in &codes {
        assert_eq!(
            *code, 0,
            "README command {:?} exited {code}\n{context}",
            run[*n]
        );
    }
    assert_eq!(
        codes.len(),
        run.len(),
        "every command ran (the last to run: {:?})\n{context}",
        codes.last().map(|(n, _)| &run[*n])
    );
    // What the walk claims: every ONU upgraded, the report and the capture written.
    assert!(
        out.contains("16 upgraded, 0 skipped, 0 failed"),
        "the rollout upgraded the 16 ONUs\n{context}"
    );
    assert!(
        out.contains("bootable: yes"),
        "ONU 1's flash boots\n{context}"
    );
    let leftover = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(leftover, 0, "the walk removes its scratch directory");
}

/// The README's fleet in two commands ("The fleet"): the first builds the tools (provided
/// here: this package's `lab` as `target/release/scenario`, its `lab-fleet` as the fleet tool),
/// the second runs as written but for the time the service stays up after the summary (4 s
/// instead of 60). It must pass, print the dashboard's address, and that address must still
/// serve the dashboard 1.5 s after the summary.
#[test]
fn the_readme_fleet_runs_in_its_two_commands_and_its_dashboard_answers() {
    use std::io::BufRead;
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let all = commands(&readme, "## The fleet", "## The tools, step by step");
    assert_eq!(all.len(), 2, "the fleet in two commands: {all:?}");
    assert!(
        all[0].starts_with("cargo build --release") && all[0].contains("-p fleet"),
        "{all:?}"
    );
    assert!(
        all[1].starts_with("target/release/scenario run fleet-"),
        "{all:?}"
    );
    assert!(all[1].contains("--linger-s 60"), "{all:?}");
    let command = all[1].replace("--linger-s 60", "--linger-s 4");

    let dir = tempfile::tempdir().unwrap();
    let release = dir.path().join("target/release");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    wrapper(&release, "scenario", env!("CARGO_BIN_EXE_lab"), &[]);
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&command)
        .current_dir(dir.path())
        .env("TMPDIR", &tmp)
        .env("SCENARIO_FLEET", env!("CARGO_BIN_EXE_lab-fleet"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = Group(child.id() as i32);
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // Standard output, line by line: the dashboard is asked for while the service stays up.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut out = String::new();
    let mut dashboard = None;
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Some(url) = line.split("its dashboard is ").nth(1) {
            let (base, token) = url.trim().split_once("/#token=").unwrap();
            // Not at once: the service must stay up, not merely be still stopping.
            std::thread::sleep(Duration::from_millis(1500));
            let page =
                olt::worker::FleetClient::new(base, token, Duration::from_secs(10)).get_bytes("/");
            dashboard = Some(page.map(|b| String::from_utf8_lossy(&b).into_owned()));
        }
        out.push_str(&line);
        out.push('\n');
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(_group);
    let err = err.join().unwrap();
    let context = format!("standard output:\n{out}\nstandard error:\n{err}");
    assert!(
        status.is_some(),
        "the fleet took more than 180 s\n{context}"
    );
    assert!(status.unwrap().success(), "{command}\n{context}");
    assert!(out.contains("PASSED"), "{context}");
    assert!(
        err.contains("its dashboard: http://127.0.0.1:"),
        "the address is printed as soon as the service is up\n{context}"
    );
    let page = dashboard
        .unwrap_or_else(|| panic!("no dashboard address after the summary\n{context}"))
        .unwrap_or_else(|e| panic!("the dashboard did not answer: {e}\n{context}"));
    assert!(page.contains("<html"), "{page}");
    let leftover = std::fs::read_dir(&tmp).unwrap().count();
    assert_eq!(leftover, 0, "the run removes its working directory");
}
