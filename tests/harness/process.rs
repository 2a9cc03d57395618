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

/// Supervised ONU processes on V1.0 (ONU-IDs 1 to `count`, default serial numbers) on
/// consecutive loopback ports, the images V1.0 and V2.0 signed with a lab key of their own,
/// and the OLT's common arguments for them: the bench of the operator's process tests.
pub struct OnuBench {
    lab: String,
    dir: tempfile::TempDir,
    /// `--onus=1-N@127.0.0.1:BASE`.
    pub onus: String,
    /// The OLT's address (`--listen`).
    pub olt_addr: String,
    /// The multicast group (`--group`).
    pub group: &'static str,
    _onus: Proc,
}

impl OnuBench {
    /// Builds the images (V2.0 of `v2_size` payload bytes) with `lab` (the lab's binary) and
    /// starts `count` ONUs from the first free ports at `from_port`, then waits for them to boot.
    pub fn start(
        lab: &str,
        count: u16,
        v2_size: u32,
        from_port: u16,
        group: &'static str,
    ) -> OnuBench {
        let dir = tempfile::tempdir().unwrap();
        let p = |f: &str| dir.path().join(f).display().to_string();
        let sh = |args: &[&str]| {
            let out = tool(lab, Some("onu")).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(&["image", "keygen", "--out", &p("lab")]);
        let v2 = v2_size.to_string();
        for (v, security, size) in [("V1.0", "1", "4000"), ("V2.0", "2", v2.as_str())] {
            sh(&[
                "image",
                "build",
                "--key",
                &p("lab.key"),
                "--model",
                "LAB-ONU-1",
                "--version",
                v,
                "--security-version",
                security,
                "--size",
                size,
                "--out",
                &p(&format!("{v}.img")),
            ]);
        }
        let base = free_ports(from_port, count + 1);
        let olt_addr = format!("127.0.0.1:{}", base + count);
        let onus = Proc(
            tool(lab, Some("onu"))
                .args(["run", "--count", &count.to_string(), "--base-id", "1"])
                .args(["--supervise", "--busy-ms", "100", "--reboot-ms", "100"])
                .arg(format!("--listen=127.0.0.1:{base}"))
                .arg(format!("--olt={olt_addr}"))
                .arg(format!("--group={group}"))
                .arg(format!("--state-dir={}", p("onus")))
                .arg(format!("--public-key={}", p("lab.pub")))
                .arg(format!("--golden={}", p("V1.0.img")))
                .env("RUST_LOG", "error")
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(1500));
        OnuBench {
            lab: lab.to_string(),
            onus: format!("--onus=1-{count}@127.0.0.1:{base}"),
            dir,
            olt_addr,
            group,
            _onus: onus,
        }
    }

    /// A file of the bench's directory.
    pub fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    /// `olt VERB` for the bench's ONUs (with V2.0 and the group, but for `status`).
    pub fn olt(&self, verb: &str) -> Command {
        let mut c = tool(&self.lab, Some("olt"));
        c.arg(verb)
            .arg(&self.onus)
            .arg(format!("--listen={}", self.olt_addr))
            .arg("--timeout-ms=800");
        if verb != "status" {
            c.arg(format!("--image={}", self.path("V2.0.img")))
                .arg(format!("--group={}", self.group));
        }
        c
    }

    /// `olt status --json`, which must succeed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.olt("status").arg("--json").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["format"], "olt-status");
        v
    }
}
