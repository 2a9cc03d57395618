//! `olt worker`: the OLT as a controller of a fleet (see [`crate::worker`]).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use pon::transport as net;

use super::args::{OnuRange, default_group, onu_map, parse_onus, parse_pon_group};
use super::usage;
use crate::driver::PonTarget;
use crate::engine::PonPort;
use crate::limits;
use crate::session::SessionConfig;
use crate::worker::{self, WorkerConfig};

#[derive(Args)]
pub(super) struct WorkerArgs {
    /// The fleet service (http://HOST:PORT).
    #[arg(long)]
    fleet: String,
    /// A controller's token (from the fleet's tokens.json); default: the FLEET_TOKEN
    /// environment variable (which keeps it out of `ps`).
    #[arg(long)]
    token: Option<String>,
    /// The OLT's name in the fleet's inventory.
    #[arg(long)]
    olt_id: String,
    /// The OLT's region tag (campaigns may target a region).
    #[arg(long, default_value = "default")]
    region: String,
    /// This controller's name (default OLT/HOST/PID): two controllers of one OLT (a standby)
    /// have two names.
    #[arg(long)]
    controller: Option<String>,
    /// ONUs: [PON/]ID@ADDR or [PON/]FIRST-LAST@ADDR, as `olt rollout --onus`; repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    onus: Vec<OnuRange>,
    /// A PON port's multicast download group: [PON/]ADDR; repeatable.
    #[arg(long = "group", value_parser = parse_pon_group)]
    group: Vec<(PonPort, SocketAddrV4)>,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(limits::TIMEOUT_MS.u64_range()))]
    timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(limits::RETRIES.i64_range()))]
    retries: u8,
    /// How long an ONU may take to come back after Activate (s, 1..=3600).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(limits::REBOOT_TIMEOUT_S.u64_range()))]
    reboot_timeout_s: u64,
    /// Sections per window proposed at Start (1..=256).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(limits::WINDOW.i64_range()))]
    window: u16,
    /// Where fetched images are kept (default: a directory under the system's temporary one).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Read the ONUs again and re-register this often while idle (s).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    rescan_s: u64,
}

/// `olt worker`.
pub(super) fn worker(a: WorkerArgs) -> Result<ExitCode> {
    if !(a.fleet.starts_with("http://")) {
        return Ok(usage(&format!(
            "--fleet {:?} is not http://HOST:PORT",
            a.fleet
        )));
    }
    let Some(token) = a.token.or_else(|| std::env::var("FLEET_TOKEN").ok()) else {
        return Ok(usage(
            "a controller's token is needed: --token or FLEET_TOKEN",
        ));
    };
    let onus = onu_map(a.onus)?;
    let mut groups: BTreeMap<PonPort, SocketAddrV4> = BTreeMap::new();
    for (pon, g) in &a.group {
        if groups.insert(*pon, *g).is_some() {
            return Ok(usage(&format!("--group: {pon} is given two groups")));
        }
    }
    let pons = onus
        .into_iter()
        .map(|(pon, onus)| {
            let group = groups
                .get(&pon)
                .copied()
                .unwrap_or_else(|| default_group(pon));
            (
                pon,
                PonTarget {
                    group,
                    onus,
                    // A fleet controller speaks the lab's framing (multicast needs it).
                    framing: pon::transport::Framing::Lab,
                },
            )
        })
        .collect();
    let controller = a.controller.unwrap_or_else(|| {
        format!(
            "{}/{}/{}",
            a.olt_id,
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            std::process::id()
        )
    });
    let session = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        window_size: a.window,
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        tci_seed: super::rollout::tci_seed(),
        ..SessionConfig::default()
    };
    let cache_dir = a
        .cache_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("olt-worker-{}", std::process::id())));
    worker::run(WorkerConfig {
        fleet: a.fleet,
        token,
        olt: a.olt_id,
        region: a.region,
        controller,
        listen: a.listen,
        pons,
        session,
        cache_dir,
        rescan: Duration::from_secs(a.rescan_s),
    })
}
