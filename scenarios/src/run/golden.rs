//! The golden image's server for ONUs in recovery mode (`[golden]` of the scenario file), and
//! the flash each ONU starts from.
//!
//! With `server = "embedded"` the runner serves the golden images itself (`pon::tftp`, in
//! this process); with `server = "tftpd-hpa"` it starts Debian's `in.tftpd` on a loopback
//! port, in the foreground, chrooted (`--secure`) into a directory of its own holding the
//! images, so that the ONU is tested against a TFTP implementation nobody here wrote.
//! `in.tftpd` drops its privileges to a user of its own at each request, which only a process
//! with the right to change its user can do: the runner starts it as user `nobody` with just
//! the capabilities to change user and group and to chroot (`setpriv`), which needs the
//! runner to be root; otherwise the run stops with one line saying so.
//!
//! Before the ONUs start, each gets its flash: the wrecked ones both slots and both metadata
//! copies garbled (what a power cut in the middle of a flash write can leave); the others,
//! when a server is used, the golden image installed as at the factory (by the ONU's own
//! bootloader code), so that only the wrecked ones go through recovery mode.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::images::Images;
use super::lifecycle::{self, Child, TempWorkDir};
use super::plan::Plan;
use crate::spec::{GoldenServer, Scenario};

/// The `in.tftpd` of tftpd-hpa.
pub(super) const IN_TFTPD: &str = "/usr/sbin/in.tftpd";

/// Why `in.tftpd` cannot be used here, if it cannot (not installed, or the runner is not
/// root): the line a run or a test that needs it says.
pub fn tftpd_hpa_unavailable() -> Option<String> {
    if !Path::new(IN_TFTPD).exists() {
        return Some(format!(
            "{IN_TFTPD} is not installed (Debian's tftpd-hpa: apt-get install tftpd-hpa)"
        ));
    }
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to this process's effective user.
    if std::fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        return Some(
            "in.tftpd must be started by root: it changes its user at each request \
             (the runner starts it as nobody with only that right)"
                .into(),
        );
    }
    if which("setpriv").is_none() {
        return Some("setpriv (util-linux) is not installed".into());
    }
    None
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
    })
}

/// The running server, stopped when dropped.
pub(super) enum GoldenService {
    /// Each ONU reads its own file.
    Files,
    /// The embedded server.
    Embedded(pon::tftp::TftpServer),
    /// `in.tftpd` (killed when dropped, and by the runner's signal handling like every
    /// child), its port, and its root directory (removed with it, or swept).
    TftpdHpa {
        child: Child,
        addr: SocketAddrV4,
        _root: TempWorkDir,
    },
}

impl GoldenService {
    /// Starts the server `s` asks for, serving every golden image of `images` (tampered if
    /// the scenario says).
    pub(super) fn start(s: &Scenario, images: &Images) -> Result<GoldenService> {
        let served = |bytes: Vec<u8>| -> Vec<u8> {
            let mut b = bytes;
            if s.golden.tampered {
                // One payload byte, after signing: the hash and signature no longer match.
                let at = pon::firmware::HEADER_LEN + 100;
                if let Some(x) = b.get_mut(at) {
                    *x ^= 0x01;
                }
            }
            b
        };
        match s.golden.server {
            GoldenServer::File => Ok(GoldenService::Files),
            GoldenServer::Embedded => {
                let files = pon::tftp::Files::default();
                for (name, path) in images.golden_files() {
                    files.put(&name, served(std::fs::read(path)?));
                }
                let server =
                    pon::tftp::TftpServer::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), files)
                        .context("starting the embedded TFTP server on 127.0.0.1")?;
                Ok(GoldenService::Embedded(server))
            }
            GoldenServer::TftpdHpa => {
                if let Some(why) = tftpd_hpa_unavailable() {
                    bail!("golden.server = \"tftpd-hpa\" cannot run here: {why}");
                }
                let root = TempWorkDir::new().context("making in.tftpd's directory")?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755))?;
                let mut first = None;
                for (name, path) in images.golden_files() {
                    let dest = root.path().join(&name);
                    std::fs::write(&dest, served(std::fs::read(path)?))?;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644))?;
                    first.get_or_insert(name);
                }
                // A free loopback port (released just before in.tftpd binds it).
                let port = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?
                    .local_addr()?
                    .port();
                let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
                let caps = "+setuid,+setgid,+sys_chroot";
                let mut cmd = tokio::process::Command::new("setpriv");
                cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                    .arg(format!("--inh-caps={caps}"))
                    .arg(format!("--ambient-caps={caps}"))
                    .arg(IN_TFTPD)
                    .args(["--listen", "--address"])
                    .arg(addr.to_string())
                    .arg("--secure")
                    .arg(root.path())
                    .args(["--foreground", "--user", "nobody"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                let child = lifecycle::spawn(&mut cmd).context("starting in.tftpd")?;
                let mut service = GoldenService::TftpdHpa {
                    child,
                    addr,
                    _root: root,
                };
                service.wait_answering(first.as_deref().unwrap_or("none"))?;
                Ok(service)
            }
        }
    }

    /// Waits (3 s at most) until `in.tftpd` answers a read request for `name`.
    fn wait_answering(&mut self, name: &str) -> Result<()> {
        let GoldenService::TftpdHpa { child, addr, .. } = self else {
            return Ok(());
        };
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        probe.set_read_timeout(Some(Duration::from_millis(100)))?;
        let rrq = pon::tftp::Packet::Rrq {
            filename: name.into(),
            mode: "octet".into(),
            options: Vec::new(),
        }
        .emit();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = [0u8; 1024];
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                bail!("in.tftpd ended at once ({st}); it logs to syslog");
            }
            probe.send_to(&rrq, *addr)?;
            if let Ok((_, from)) = probe.recv_from(&mut buf) {
                // Tell it the probe is over.
                let bye = pon::tftp::Packet::Error {
                    code: pon::tftp::ErrorCode::NotDefined,
                    message: "probe".into(),
                };
                let _ = probe.send_to(&bye.emit(), from);
                return Ok(());
            }
        }
        bail!("in.tftpd did not answer on {addr} within 3 s")
    }

    /// Where the ONUs fetch their golden image (None: each reads its own file).
    pub(super) fn addr(&self) -> Option<SocketAddrV4> {
        match self {
            GoldenService::Files => None,
            GoldenService::Embedded(s) => match s.addr() {
                std::net::SocketAddr::V4(a) => Some(a),
                std::net::SocketAddr::V6(_) => None,
            },
            GoldenService::TftpdHpa { addr, .. } => Some(*addr),
        }
    }

    /// The server's name, for the progress lines.
    pub(super) fn describe(&self) -> String {
        match (self, self.addr()) {
            (GoldenService::Embedded(_), Some(a)) => format!("the embedded TFTP server on {a}"),
            (GoldenService::TftpdHpa { .. }, Some(a)) => format!("tftpd-hpa's in.tftpd on {a}"),
            _ => "golden image files".into(),
        }
    }
}

/// Lays each ONU's flash under `dir` before it starts: wrecked, or (with a server) the golden
/// image installed as at the factory. With `reuse` (`--reuse`: the run carries an earlier one
/// on), a flash that is already there stays exactly as that run left it: it is not wrecked
/// again, nor given its factory image.
pub(super) fn prepare_flash(
    s: &Scenario,
    plan: &Plan,
    images: &Images,
    dir: &Path,
    served: bool,
    reuse: bool,
) -> Result<()> {
    let wrecked: BTreeSet<u16> = s
        .golden
        .wrecked
        .as_ref()
        .map(|set| set.resolve(plan.n))
        .unwrap_or_default();
    for p in plan.onus.values() {
        let state = dir.join(format!("onu-{}", p.id));
        let laid = std::fs::read_dir(&state).is_ok_and(|mut d| d.next().is_some());
        if reuse && laid {
            continue;
        }
        if wrecked.contains(&p.id) {
            std::fs::create_dir_all(&state)?;
            let golden = std::fs::read(images.golden(p))?;
            // Slot 0: garbage; slot 1: half an image; the metadata: torn records.
            std::fs::write(state.join("slot0.img"), vec![0x5Au8; golden.len()])?;
            std::fs::write(state.join("slot1.img"), &golden[..golden.len() / 2])?;
            std::fs::write(state.join("meta0.bin"), [0xFFu8; 100])?;
            std::fs::write(state.join("meta1.bin"), [0x01u8; onu::meta::RECORD_LEN])?;
        } else if served {
            let mut flash = onu::flash::FileFlash::open(&state)?;
            let cfg = onu::boot::BootConfig {
                model: p.model.clone(),
                public_key: images.key.verifying_key(),
                golden: Some(std::fs::read(images.golden(p))?.into()),
                network_golden: false,
                boot_attempts: 3,
            };
            onu::boot::boot(&mut flash, &cfg)
                .with_context(|| format!("installing ONU {}'s factory image", p.id))?;
        }
    }
    Ok(())
}
