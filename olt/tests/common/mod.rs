//! What the OLT's process tests share: the `onu` binary, a child process killed on drop, and
//! free loopback ports.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

/// The `olt` binary under test.
pub(crate) const OLT: &str = env!("CARGO_BIN_EXE_olt");

/// The `onu` binary next to `olt`'s (built first if this run did not build it).
pub(crate) fn onu_bin() -> PathBuf {
    let onu = Path::new(OLT).parent().unwrap().join("onu");
    if !onu.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "onu", "--bin", "onu"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
    }
    onu
}

/// A child process stopped when dropped: SIGTERM, then SIGKILL after 2 s.
pub(crate) struct Proc(pub(crate) Child);

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
pub(crate) fn free_ports(from: u16, n: u16) -> u16 {
    (0..100)
        .map(|i| from + 41 * i)
        .find(|p| (0..n).all(|k| std::net::UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .expect("free ports")
}
