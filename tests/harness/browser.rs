//! A real headless browser for the tests that check a page: Chromium found on the PATH
//! (`chromium`, else `chromium-browser`), started with a throwaway profile, no network (every
//! host name resolves to nothing) and, as root only, `--no-sandbox` (Chromium refuses to run
//! as root with its sandbox). [`Chromium::load`] gives the DOM after the page's scripts ran
//! and every console message the page printed.
//!
//! When no Chromium is installed a test calls [`Chromium::or_skip`]: it says in one line that it
//! is skipped and why, unless `LAB_REQUIRE_BROWSER=1` (set by `.ci/run` when it has installed
//! Chromium), which makes a missing browser a failure.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable that makes a missing browser a failure.
pub const REQUIRE: &str = "LAB_REQUIRE_BROWSER";

/// A Chromium to load pages with.
#[derive(Clone, Debug)]
pub struct Chromium {
    /// The program.
    pub program: PathBuf,
}

/// A page as the browser left it.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The DOM after the scripts ran (`--dump-dom`).
    pub dom: String,
    /// Every console message of the page (an uncaught error is one), as Chromium logged it.
    pub console: Vec<String>,
    /// All the browser wrote on its standard error, for a failure's message.
    pub log: String,
}

impl Chromium {
    /// The Chromium on the PATH, if there is one.
    pub fn find() -> Option<Chromium> {
        let path = std::env::var_os("PATH")?;
        for name in ["chromium", "chromium-browser"] {
            for dir in std::env::split_paths(&path) {
                let p = dir.join(name);
                if p.is_file() {
                    return Some(Chromium { program: p });
                }
            }
        }
        None
    }

    /// The Chromium on the PATH; without one, None after one line saying `test` is skipped
    /// and why, or a panic when `LAB_REQUIRE_BROWSER=1`.
    pub fn or_skip(test: &str) -> Option<Chromium> {
        if let Some(c) = Chromium::find() {
            return Some(c);
        }
        let why = "no chromium or chromium-browser on the PATH (Debian: apt-get install chromium)";
        if std::env::var(REQUIRE).is_ok_and(|v| v == "1") {
            panic!("{test}: {why}, and {REQUIRE}=1 says a browser is required");
        }
        // Past the test harness's capture (which hides `eprintln!` of a passing test), so
        // that the skip is seen.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("{test}: skipped: {why}\n").as_bytes(),
        );
        None
    }

    /// Loads `file` and waits (at most `limit`) for the browser to end: the DOM after the
    /// page's scripts ran, and its console messages. Panics when the browser does not start,
    /// fails or takes longer (it is then killed).
    pub fn load(&self, file: &Path, limit: Duration) -> Loaded {
        let profile = tempfile::tempdir().expect("a profile directory");
        let file = std::fs::canonicalize(file).expect("the page exists");
        let mut c = Command::new(&self.program);
        c.args([
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-proxy-server",
            // Nothing leaves the machine: every host name resolves to nothing.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            // Time enough for the page's scripts (virtual time: no real wait).
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
        if running_as_root() {
            // Chromium will not run as root with its sandbox; only then is it turned off.
            c.arg("--no-sandbox");
        }
        c.arg("--dump-dom")
            .arg(format!("file://{}", file.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("starting chromium");
        // Read both pipes on their own threads, so that a full pipe never stalls the browser.
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("waiting for chromium") {
                break st;
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let log = err.join().unwrap_or_default();
                panic!(
                    "chromium did not end within {} s; it said:\n{log}",
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let dom = out.join().unwrap_or_default();
        let log = err.join().unwrap_or_default();
        assert!(status.success(), "chromium {status}; it said:\n{log}");
        let console = log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect();
        Loaded { dom, console, log }
    }
}

/// Whether this process runs as root (uid 0), from /proc/self/status.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
