//! The fleet scenario's processes and where they listen: the `fleet` tool found, the OLTs'
//! ports and groups laid out, the fleet service started (and started again) and asked, the
//! controllers. Every child through `lifecycle`, like the rest of the runner's.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::process::Command;

use super::super::lifecycle::{self, Child};
use crate::spec::{FleetSpec, Scenario};

/// The environment variable that names the `fleet` tool (beside `--fleet-bin`).
pub const FLEET_TOOL_ENV: &str = "SCENARIO_FLEET";

/// The `fleet` tool was not found; the run did not start. The `scenario` tool says so in one
/// line and exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoFleetTool(pub String);

/// The `fleet` tool: `flag` (`--fleet-bin`), else [`FLEET_TOOL_ENV`], else `fleet` beside this
/// tool's own binary (`cargo build --release -p fleet` puts it in `target/release`), else
/// `fleet` on the PATH.
pub fn fleet_tool(flag: Option<&Path>) -> Result<PathBuf, NoFleetTool> {
    if let Some(f) = flag {
        return if f.is_file() {
            Ok(f.to_path_buf())
        } else {
            Err(NoFleetTool(format!(
                "--fleet-bin {}: no such file",
                f.display()
            )))
        };
    }
    if let Some(f) = std::env::var_os(FLEET_TOOL_ENV).filter(|f| !f.is_empty()) {
        let f = PathBuf::from(f);
        return if f.is_file() {
            Ok(f)
        } else {
            Err(NoFleetTool(format!(
                "{FLEET_TOOL_ENV}={}: no such file",
                f.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("fleet")));
    if let Some(b) = beside.as_ref().filter(|b| b.is_file()) {
        return Ok(b.clone());
    }
    if let Some(p) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("fleet"))
        .find(|p| p.is_file())
    {
        return Ok(p);
    }
    Err(NoFleetTool(format!(
        "a fleet scenario needs the `fleet` tool, which is neither beside this one ({}) nor on \
         the PATH: build it (cargo build --release -p fleet) or give --fleet-bin FILE",
        beside.map_or_else(|| "?".into(), |b| b.display().to_string())
    )))
}

/// One PON port of one OLT: its ONUs and where they are.
#[derive(Clone, Debug, Serialize)]
pub(super) struct PonLayout {
    pub(super) pon: u8,
    /// The fleet-wide ONU-ID of its first ONU (the others follow).
    pub(super) first_id: u16,
    /// Its first ONU's UDP port (the others follow).
    pub(super) first_port: u16,
    pub(super) group: SocketAddrV4,
}

/// One OLT.
#[derive(Clone, Debug, Serialize)]
pub(super) struct OltLayout {
    /// From 1.
    pub(super) number: u16,
    pub(super) name: String,
    pub(super) region: String,
    pub(super) listen: SocketAddrV4,
    pub(super) pons: Vec<PonLayout>,
}

/// Where everything is: the OLTs, their PON ports, the ONUs.
#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub(super) olts: Vec<OltLayout>,
    pub(super) per_pon: u16,
    /// Fleet-wide ONU-ID -> (OLT name, PON port).
    pub(super) onus: BTreeMap<u16, (String, u8)>,
}

impl Layout {
    pub(super) fn new(s: &Scenario, f: &FleetSpec, first_port: Option<u16>) -> Result<Layout> {
        let per_pon = s.topology.onus.0;
        let pons = s.topology.pons;
        let per_olt = u16::from(pons) * per_pon + 2;
        let total = u32::from(per_olt) * u32::from(f.olts);
        if u32::from(per_pon) * u32::from(pons) * u32::from(f.olts) > 65534 {
            bail!("more than 65534 ONUs in the fleet: ONU-IDs would run out");
        }
        let total = u16::try_from(total).context("too many ports for one machine")?;
        let from = first_port.unwrap_or(30000 + (std::process::id() % 64) as u16 * 97);
        let base = free_udp_ports(from, total)?;
        let mut olts = Vec::new();
        let mut onus = BTreeMap::new();
        let mut next_id = 1u16;
        for k in 0..f.olts {
            let start = base + k * per_olt;
            let listen = SocketAddrV4::new(Ipv4Addr::LOCALHOST, start + per_olt - 2);
            let name = format!("olt-{}", k + 1);
            let mut layout = OltLayout {
                number: k + 1,
                name: name.clone(),
                region: f.regions[usize::from(k) % f.regions.len()].clone(),
                listen,
                pons: Vec::new(),
            };
            for p in 1..=pons {
                let pon = PonLayout {
                    pon: p,
                    first_id: next_id,
                    first_port: start + (u16::from(p) - 1) * per_pon,
                    group: SocketAddrV4::new(
                        Ipv4Addr::new(239, 255, 100 + (k % 100) as u8, p),
                        start + per_olt - 1,
                    ),
                };
                for id in next_id..next_id + per_pon {
                    onus.insert(id, (name.clone(), p));
                }
                next_id += per_pon;
                layout.pons.push(pon);
            }
            olts.push(layout);
        }
        Ok(Layout {
            olts,
            per_pon,
            onus,
        })
    }

    pub(super) fn n(&self) -> usize {
        self.onus.len()
    }
}

/// `n` consecutive free UDP ports on loopback, from about `from`.
pub(super) fn free_udp_ports(from: u16, n: u16) -> Result<u16> {
    let last_start = 65000u16.saturating_sub(n);
    (0..400u16)
        .map(|i| from.saturating_add(i.saturating_mul(131)))
        .filter(|p| *p >= 1024 && *p <= last_start)
        .find(|p| (0..n).all(|k| std::net::UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .with_context(|| format!("no {n} free consecutive loopback ports"))
}

/// A command running this lab's tool `name` (`onu`, `olt`) as a child of the runner.
pub(super) fn tool(program: &[OsString], name: &str) -> Command {
    match program.split_first() {
        Some((exe, prefix)) => {
            let mut c = Command::new(exe);
            c.arg(lifecycle::parent_arg()).args(prefix).arg(name);
            c
        }
        None => Command::new(name),
    }
}

/// Sends `sig` to process `pid` (no error when it has gone).
pub(super) fn signal(pid: Option<u32>, sig: nix::sys::signal::Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Now, in milliseconds since the epoch (the fleet's clock).
pub(super) fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The fleet service: its process (one per life), its address and database.
pub(super) struct Service {
    pub(super) bin: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) db: String,
    /// The address it listens on (`127.0.0.1:0` until the first life has bound one).
    pub(super) listen: String,
    pub(super) url: String,
    pub(super) lives: u32,
    pub(super) child: Option<Child>,
    pub(super) lease_ms: u64,
    pub(super) heartbeat_ms: u64,
}

impl Service {
    pub(super) fn state_dir(&self) -> PathBuf {
        self.dir.join("fleet-state")
    }

    /// Starts a life and waits (at most 30 s) until it says where it listens.
    pub(super) async fn start(&mut self) -> Result<()> {
        self.lives += 1;
        let out = self.dir.join(format!("fleet-{}.out", self.lives));
        let err = self.dir.join(format!("fleet-{}.err", self.lives));
        // `setpriv --pdeathsig KILL`: the service dies with the runner, as its other children
        // do (the `fleet` tool does not take the runner's own option for it).
        let setpriv = Path::new("/usr/bin/setpriv");
        let mut c = if setpriv.is_file() {
            let mut c = Command::new(setpriv);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        c.args(["serve", "--tick-ms=100", "--poll-ms=150"])
            .arg(format!("--lease-ms={}", self.lease_ms))
            .arg(format!("--heartbeat-ms={}", self.heartbeat_ms))
            .arg(format!("--listen={}", self.listen))
            .arg(format!("--state-dir={}", self.state_dir().display()))
            .arg(format!("--db={}", self.db))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?);
        self.child = Some(lifecycle::spawn(&mut c).context("starting the fleet service")?);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(addr) = text
                .lines()
                .find_map(|l| l.strip_prefix("fleet: listening on http://"))
            {
                self.listen = addr.trim().to_string();
                self.url = format!("http://{}", self.listen);
                return Ok(());
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let said = std::fs::read_to_string(&err).unwrap_or_default();
                bail!(
                    "the fleet service {}: {}",
                    super::super::ended(&st),
                    said.lines().last().unwrap_or("it said nothing")
                );
            }
            if Instant::now() > deadline {
                bail!("the fleet service did not say where it listens within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it: SIGTERM, SIGKILL after 10 s.
    pub(super) async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), nix::sys::signal::Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(10), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }

    /// Runs `fleet ARGS` against it (the operator's token from its state directory).
    pub(super) fn cli(&self, args: &[String]) -> Result<String> {
        let out = std::process::Command::new(&self.bin)
            .args(args)
            .arg(format!("--url={}", self.url))
            .arg(format!("--state-dir={}", self.state_dir().display()))
            .output()
            .context("running the fleet tool")?;
        if !out.status.success() {
            bail!(
                "fleet {}: {}",
                args.first().map_or("", String::as_str),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// One of its tokens.
    pub(super) fn token(&self, role: &str) -> Result<String> {
        let out = std::process::Command::new(&self.bin)
            .args(["token", "--role", role])
            .arg(format!("--state-dir={}", self.state_dir().display()))
            .output()
            .context("running the fleet tool")?;
        if !out.status.success() {
            bail!(
                "fleet token: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// A controller process.
pub(super) struct Controller {
    pub(super) name: String,
    /// Index into the layout's OLTs.
    pub(super) olt: usize,
    pub(super) child: Option<Child>,
}
