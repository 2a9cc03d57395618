//! What `scenario run` leaves behind, however it ends: nothing. A signal (SIGINT, SIGTERM,
//! SIGHUP) mid-rollout or while the runner is busy building a large image stops every process
//! it started and removes its working directory; a SIGKILL takes its processes with it (their
//! parent-death signal) and the next run removes the directory it left. And a `--keep`
//! directory that is not empty is refused unless `--reuse`.
//!
//! Each test gives the runner a TMPDIR of its own, so that "every process it started" is
//! every process whose command line names that directory, and "its working directory" is
//! whatever `scenario-*` that directory holds; and a port range of its own.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::process::Proc;

harness::tools!();

/// A `scenario run` in progress, its standard error read line by line.
struct Running {
    proc: Proc,
    lines: mpsc::Receiver<String>,
    /// Every line so far.
    said: Vec<String>,
}

/// Starts `scenario run ARGS` with `tmp` as its TMPDIR.
fn start(tmp: &Path, args: &[&str]) -> Running {
    let mut child = scenario()
        .arg("run")
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running {
        proc: Proc(child),
        lines,
        said: Vec::new(),
    }
}

impl Running {
    fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Waits (at most `within`) for a line that contains `what`; returns it.
    fn wait_for(&mut self, what: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {what:?} within {within:?}: {:#?}", self.said),
            }
        }
    }

    /// Sends `sig` (a name: INT, TERM, HUP, KILL).
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits (at most `within`) until it ends; then everything it said.
    fn ends_within(&mut self, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(st) = self.proc.0.try_wait().unwrap() {
                break st;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after the signal: {:#?}",
                self.said
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // What it wrote before it ended (the reader ends at the pipe's end).
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.said.push(line);
        }
        (status, self.said.join("\n"))
    }
}

/// The processes whose command line names `dir` (every process a run started names its
/// working directory: `--state-dir`, `--journal`): their PIDs and command lines.
fn naming_pids(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter_map(|(pid, p)| Some((pid, std::fs::read(p.join("cmdline")).ok()?)))
        .map(|(pid, c)| (pid, String::from_utf8_lossy(&c).replace('\0', " ")))
        .filter(|(_, c)| c.contains(&needle))
        .collect()
}

/// The command lines of [`naming_pids`].
fn naming(dir: &Path) -> Vec<String> {
    naming_pids(dir).into_iter().map(|(_, c)| c).collect()
}

/// A test's TMPDIR: when the test is done (and above all when it failed), any process that
/// still names it is killed, so that a failing test leaves nothing running either.
struct Tmp(tempfile::TempDir);

impl Tmp {
    fn new() -> Tmp {
        Tmp(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        for (pid, _) in naming_pids(self.path()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// The working directories `tmp` holds.
fn workdirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("scenario-")
        })
        .collect()
}

/// The ONU and OLT ports of the run, from its line `starting N ONU processes on
/// 127.0.0.1:A..B (...)`: A to B + 1.
fn ports_of(starting: &str) -> std::ops::RangeInclusive<u16> {
    let range = starting
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    let (a, b) = range.split_once("..").unwrap();
    a.parse().unwrap()..=b.parse::<u16>().unwrap() + 1
}

/// Polls (at most `within`) until no process names `tmp` and every port is free; panics
/// with what is left otherwise.
fn processes_gone(tmp: &Path, ports: std::ops::RangeInclusive<u16>, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = naming(tmp);
        let bound: Vec<u16> = ports
            .clone()
            .filter(|p| std::net::UdpSocket::bind(("127.0.0.1", *p)).is_err())
            .collect();
        if left.is_empty() && bound.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{within:?} later, still running: {left:#?}; ports still bound: {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a library scenario, signals it mid-rollout with `sig`, and checks that it exits
/// with `code` within a few seconds, leaving no process and no directory.
fn signalled_mid_rollout(name: &str, onus: &str, port: &str, sig: &str, code: i32) {
    let tmp = Tmp::new();
    let mut run = start(tmp.path(), &[name, "--onus", onus, "--port", port]);
    let starting = run.wait_for("ONU processes on", Duration::from_secs(60));
    let ports = ports_of(&starting);
    run.wait_for("the OLT starts the rollout", Duration::from_secs(60));
    // Into the download, well before its end (a small rollout on a fast machine is over in
    // half a second: the signal must find it running).
    std::thread::sleep(Duration::from_millis(150));
    let n: usize = onus.parse().unwrap();
    let running = naming(tmp.path()).len();
    assert!(running > n, "the ONUs and the OLT run: {running}");
    run.signal(sig);
    let (status, said) = run.ends_within(Duration::from_secs(5));
    assert!(
        !said.contains("the OLT ended"),
        "signalled mid-rollout, not after it: {said}"
    );
    assert_eq!(status.code(), Some(code), "{said}");
    assert!(
        said.contains(&format!(
            "interrupted by SIG{sig}; every process stopped, the working directory removed"
        )),
        "{said}"
    );
    processes_gone(tmp.path(), ports, Duration::from_secs(3));
    assert_eq!(workdirs(tmp.path()), Vec::<PathBuf>::new(), "{said}");
}

#[test]
fn sigint_mid_rollout_stops_everything_and_exits_130() {
    signalled_mid_rollout("lossy-pon", "6", "36000", "INT", 130);
}

#[test]
fn sigterm_mid_rollout_stops_everything_and_exits_143() {
    signalled_mid_rollout("unicast-baseline", "16", "36100", "TERM", 143);
}

#[test]
fn sighup_mid_rollout_stops_everything_and_exits_129() {
    signalled_mid_rollout("rogue-multicast-sender", "4", "36200", "HUP", 129);
}

#[test]
fn sigkill_takes_the_processes_along_and_the_next_run_removes_the_directory() {
    let tmp = Tmp::new();
    let mut run = start(tmp.path(), &["lossy-pon", "--onus", "4", "--port", "36300"]);
    let starting = run.wait_for("ONU processes on", Duration::from_secs(60));
    let ports = ports_of(&starting);
    run.wait_for("the OLT starts the rollout", Duration::from_secs(60));
    // Into the download, well before its end (a small rollout on a fast machine is over in
    // half a second: the signal must find it running).
    std::thread::sleep(Duration::from_millis(150));
    assert!(naming(tmp.path()).len() > 4, "the ONUs and the OLT run");
    run.signal("KILL");
    let (status, said) = run.ends_within(Duration::from_secs(5));
    assert_eq!(status.signal(), Some(9), "{said}");
    // Nothing in the runner ran: its children ended by their parent-death signal ...
    processes_gone(tmp.path(), ports, Duration::from_secs(3));
    // ... and its directory stays until the next run.
    let left = workdirs(tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("scenario-{}-", run.pid())),
        "named after its runner: {left:?}"
    );
    // (A run with --keep sweeps as well as one in a temporary directory.)
    let next = scenario()
        .args(["run", "teach-one-onu", "--port", "36350"])
        .arg(format!("--keep={}", tmp.path().join("kept").display()))
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(workdirs(tmp.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_signal_while_the_runner_builds_a_large_image_is_taken_at_once() {
    // Building and signing a 64 MiB image takes the runner's thread for a while (over a minute
    // in a debug build), before any ONU starts: the signal is not left waiting for it.
    let tmp = Tmp::new();
    let file = tmp.path().join("large.toml");
    std::fs::write(
        &file,
        "name = \"large\"\n[topology]\nonus = 2\n[image]\nversion = \"V2.0\"\nsize = 67108672\n",
    )
    .unwrap();
    let mut run = start(tmp.path(), &[file.to_str().unwrap(), "--port", "36400"]);
    // Its working directory is made (and marked) first, then the images are built.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !workdirs(tmp.path())
        .iter()
        .any(|d| d.join(scenarios::run::MARKER).exists())
    {
        assert!(Instant::now() < deadline, "no working directory made");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    run.signal("TERM");
    let (status, said) = run.ends_within(Duration::from_secs(3));
    assert!(!said.contains("ONU processes on"), "still building: {said}");
    assert_eq!(status.code(), Some(143), "{said}");
    assert!(said.contains("interrupted by SIGTERM"), "{said}");
    assert_eq!(workdirs(tmp.path()), Vec::<PathBuf>::new(), "{said}");
    assert_eq!(naming(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_kept_directory_that_is_not_empty_is_refused_unless_reuse() {
    let dir = Tmp::new();
    let keep = dir.path().join("work");
    // An empty directory is used as it is.
    std::fs::create_dir(&keep).unwrap();
    let keep_arg = format!("--keep={}", keep.display());
    let run = |keep_arg: &str, extra: &[&str]| {
        scenario()
            .args(["run", "teach-one-onu", "--port", "36500", keep_arg])
            .args(extra)
            .env("TMPDIR", dir.path())
            .output()
            .unwrap()
    };
    let first = run(&keep_arg, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let journal = std::fs::read(keep.join("journal.json")).unwrap();
    // Again: refused, in one line, before anything runs; the directory as it was.
    let again = run(&keep_arg, &[]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("it is not empty (an earlier run: journal.json, the flash of 1 ONU)")
            && err.contains("--reuse"),
        "{err}"
    );
    assert_eq!(std::fs::read(keep.join("journal.json")).unwrap(), journal);
    // Deliberately: carried on, and said so.
    let reused = run(&keep_arg, &["--reuse"]);
    let err = String::from_utf8_lossy(&reused.stderr);
    assert!(reused.status.success(), "{err}");
    assert!(
        err.contains("--reuse: running in")
            && err.contains("as it is (an earlier run: journal.json"),
        "{err}"
    );
    // Any file makes a directory not empty; a file is not a directory.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine\n").unwrap();
    let refused = run(&format!("--keep={}", other.display()), &[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("it is not empty (notes.txt)"), "{err}");
    let file = run(
        &format!("--keep={}", other.join("notes.txt").display()),
        &[],
    );
    let err = String::from_utf8_lossy(&file.stderr);
    assert_eq!(file.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("notes.txt: it is not a directory"), "{err}");
    assert_eq!(std::fs::read(other.join("notes.txt")).unwrap(), b"mine\n");
    // --reuse means nothing without --keep.
    let alone = scenario()
        .args(["run", "teach-one-onu", "--reuse"])
        .output()
        .unwrap();
    assert_eq!(alone.status.code(), Some(2));
    let err = String::from_utf8_lossy(&alone.stderr);
    assert!(err.contains("--keep"), "{err}");
}
