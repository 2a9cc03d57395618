//! Real processes on loopback: the lab's tools built with the tests, a child process stopped
//! however a test ends, free loopback ports, and the scenario library.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// Defines `olt()`, `onu()`, `scenario()` and `fleet()` in a test file: a [`Command`] for each of the
/// lab's tools, built with this package (the `lab` binary), so never stale.
#[macro_export]
macro_rules! tools {
    () => {
        /// The `olt` tool.
        #[allow(dead_code)]
        fn olt() -> std::process::Command {
            $crate::process::tool(env!("CARGO_BIN_EXE_lab"), Some("olt"))
        }
        /// The `onu` tool.
        #[allow(dead_code)]
        fn onu() -> std::process::Command {
            $crate::process::tool(env!("CARGO_BIN_EXE_lab"), Some("onu"))
        }
        /// The `scenario` tool.
        #[allow(dead_code)]
        fn scenario() -> std::process::Command {
            $crate::process::tool(env!("CARGO_BIN_EXE_lab"), None)
        }
        /// The `fleet` service and its command line.
        #[allow(dead_code)]
        fn fleet() -> std::process::Command {
            $crate::process::tool(env!("CARGO_BIN_EXE_lab-fleet"), None)
        }
    };
}

/// A command running `lab` as the tool `name` (`None`: the scenario tool itself).
pub fn tool(lab: &str, name: Option<&str>) -> Command {
    let mut c = Command::new(lab);
    if let Some(name) = name {
        c.arg(name);
    }
    c
}

/// The scenario library (`scenarios/*.toml`).
pub fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// A child process stopped when dropped: SIGTERM, then SIGKILL after 2 s.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` consecutive free ports from `from` on (each test searches its own range, since tests
/// run in parallel).
pub fn free_ports(from: u16, n: u16) -> u16 {
    (0..100)
        .map(|i| from + 41 * i)
        .find(|p| (0..n).all(|k| std::net::UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .expect("free ports")
}

/// A free loopback UDP port (the kernel's choice).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits for `child` (its standard output and error piped) at most `limit`, reading both as it
/// goes; None (the child killed) when it is not done by then.
pub fn wait_output(mut child: Child, limit: Duration) -> Option<std::process::Output> {
    use std::io::Read;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let o = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut b);
        }
        b
    });
    let e = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut b);
        }
        b
    });
    let end = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().ok().flatten() {
            break Some(s);
        }
        if std::time::Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = o.join().unwrap_or_default();
    let stderr = e.join().unwrap_or_default();
    status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    })
}
