//! The tokio driver of one ONU process: owns the sockets, the timer and the signals, feeds the
//! core, and does nothing else. This is the one place of the ONU that reads the clock.
//!
//! A reboot the core asks for (Activate, Reboot) is carried out by booting a new core from the
//! same flash after `reboot_delay`, in the same process when `supervise` is set (the process
//! keeps its identity, so an upgrade can be watched end to end), else by ending the process
//! with [`Exit::Reboot`] for whoever started it to start it again. A power-loss point aborts the
//! process at once, with no cleanup, exactly as a SIGKILL would.

use std::future::Future;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::boot::BootError;
use crate::core::{Onu, OnuConfig, OnuEvent};
use crate::faults::Faults;
use crate::flash::FileFlash;
use pon::link::{Link, LinkFaultRates, Paths};
use pon::transport as net;

/// How one ONU process runs.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The ONU's provisioning.
    pub onu: OnuConfig,
    /// Its flash.
    pub state_dir: PathBuf,
    /// Its own address (OMCC traffic from the OLT arrives here).
    pub listen: SocketAddrV4,
    /// The OLT's address (responses go there).
    pub olt: SocketAddrV4,
    /// The multicast download group.
    pub group: SocketAddrV4,
    /// Power-loss plan.
    pub faults: Faults,
    /// Faults of the downstream path (into the ONU).
    pub rx_faults: LinkFaultRates,
    /// Which downstream channels `rx_faults` applies to.
    pub rx_paths: Paths,
    /// Faults of the upstream path (out of the ONU).
    pub tx_faults: LinkFaultRates,
    /// Seed of the link faults.
    pub seed: u64,
    /// Reboot in the same process.
    pub supervise: bool,
    /// How long a reboot takes.
    pub reboot_delay: Duration,
    /// With the OLT checker on (`onu.check_olt`): write every rule the OLT broke here (JSON),
    /// rewritten at each new one.
    pub olt_report: Option<PathBuf>,
}

/// How the process ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by a signal.
    Stopped,
    /// The core asked for a reboot and the driver does not supervise: start the process again.
    Reboot,
    /// The image failed to boot (the try was counted) and the driver does not supervise.
    BootFailed,
}

impl Exit {
    /// The process exit status for this end (0, 75 for reboot, 76 for a failed boot).
    pub fn code(self) -> u8 {
        match self {
            Exit::Stopped => 0,
            Exit::Reboot => 75,
            Exit::BootFailed => 76,
        }
    }
}

/// The OLT checker's report: every rule broken so far, with its frame.
fn write_violations(
    path: &std::path::Path,
    onu: u16,
    v: &[crate::olt_check::Violation],
) -> Result<()> {
    let report = serde_json::json!({
        "onu": onu,
        "violations": v.len(),
        "rules": v,
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// An event as the log carries it: tagged JSON (`{"event":"window-complete","window":3}`),
/// which the scenario runner reads back with serde.
fn event_json(e: &OnuEvent) -> String {
    serde_json::to_string(e).unwrap_or_default()
}

fn log_event(onu: u16, e: &OnuEvent) {
    match e {
        OnuEvent::Dropped { reason } => tracing::debug!(onu, %reason, "dropped"),
        OnuEvent::Booted {
            running, version, ..
        } => {
            tracing::info!(onu, slot = running, %version, event = %event_json(e), "booted")
        }
        OnuEvent::PowerLost { point } => tracing::warn!(onu, %point, "power lost"),
        // One per window per ONU (a thousand per megabyte): detail, not news.
        OnuEvent::WindowComplete { .. } | OnuEvent::WindowIncomplete { .. } => {
            tracing::debug!(onu, event = %event_json(e))
        }
        OnuEvent::OltViolation { violation: v } => {
            tracing::warn!(onu, rule = %v.rule, detail = %v.detail, frame = %v.frame, "the OLT broke a rule")
        }
        other => tracing::info!(onu, event = %event_json(other)),
    }
}

/// Runs the ONU until `shutdown` completes or the process must end.
pub async fn run(cfg: DriverConfig, shutdown: impl Future<Output = ()>) -> Result<Exit> {
    let id = cfg.onu.onu_id.0;
    let unicast = UdpSocket::from_std(
        net::bind_unicast(cfg.listen).with_context(|| format!("binding {}", cfg.listen))?,
    )?;
    let group = UdpSocket::from_std(
        net::bind_multicast_receiver(cfg.group)
            .with_context(|| format!("joining {} on the loopback interface", cfg.group))?,
    )?;
    let mut rx_link = Link::new(cfg.rx_faults, cfg.seed);
    let mut clean = Link::new(LinkFaultRates::default(), cfg.seed);
    let (faulty_unicast, faulty_group) = cfg.rx_paths.applies();
    let mut tx_link = Link::new(cfg.tx_faults, cfg.seed ^ 0x5555_5555);
    let mut flash = FileFlash::open(&cfg.state_dir)
        .with_context(|| format!("opening the flash in {}", cfg.state_dir.display()))?;
    let mut faults = cfg.faults.clone();
    let mut shutdown = pin!(shutdown);
    let mut inbox = net::RecvBatch::new();
    let mut violations: Vec<crate::olt_check::Violation> = Vec::new();
    if let Some(path) = &cfg.olt_report {
        write_violations(path, id, &violations)?;
    }
    tracing::info!(onu = id, listen = %cfg.listen, olt = %cfg.olt, group = %cfg.group, "ONU up");
    loop {
        // The bootloader.
        let mut onu = loop {
            match Onu::boot(cfg.onu.clone(), flash, faults) {
                Ok(onu) => break onu,
                Err((
                    f,
                    plan,
                    BootError::ImageFailed {
                        slot,
                        tries,
                        attempts,
                    },
                )) => {
                    tracing::warn!(onu = id, slot, tries, attempts, "image failed to boot");
                    if !cfg.supervise {
                        return Ok(Exit::BootFailed);
                    }
                    flash = f;
                    faults = plan;
                    tokio::time::sleep(cfg.reboot_delay).await;
                }
                Err((_, _, e)) => return Err(e).context("the bootloader found nothing to boot"),
            }
        };
        // The running image.
        loop {
            while let Some(d) = onu.poll_transmit() {
                for d in tx_link.pass(d) {
                    unicast.send_to(&d, cfg.olt).await?;
                }
            }
            while let Some(e) = onu.poll_event() {
                log_event(id, &e);
                if let OnuEvent::OltViolation { violation: v } = e {
                    violations.push(v);
                    if let Some(path) = &cfg.olt_report {
                        write_violations(path, id, &violations)?;
                    }
                }
            }
            if onu.power_lost().is_some() {
                // No cleanup: what is in flash is what a power cut leaves.
                std::process::abort();
            }
            if onu.reboot_requested() {
                break;
            }
            let deadline = onu.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // In this order: a stop, a deadline, then its own socket before the group's (a
            // repair's sections come to its own, the closing AR section to the group, and the
            // OLT sends them in that order).
            let (socket, faulty, group_datagrams) = tokio::select! {
                biased;
                () = &mut shutdown => {
                    tracing::info!(onu = id, "stopping");
                    return Ok(Exit::Stopped);
                }
                () = sleep => {
                    onu.handle_timeout(Instant::now());
                    continue;
                }
                r = unicast.readable() => { r?; (&unicast, faulty_unicast, false) }
                r = group.readable() => { r?; (&group, faulty_group, true) }
            };
            // Every datagram waiting, in one call (a window's sections arrive together).
            let n = match socket.try_io(Interest::READABLE, || inbox.recv(socket)) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e).context("receiving"),
            };
            let link = if faulty { &mut rx_link } else { &mut clean };
            for i in 0..n {
                let (d, from) = inbox.datagram(i);
                if group_datagrams && from != Some(cfg.olt) {
                    // Only the OLT sends on the download group (on a PON the downstream is the
                    // OLT's alone); anyone else's datagram is dropped unread.
                    onu.drop_foreign(format!(
                        "a multicast datagram from {}, not the OLT",
                        from.map_or("an unknown sender".to_string(), |a| a.to_string())
                    ));
                    continue;
                }
                for d in link.pass(d.to_vec()) {
                    onu.handle_datagram(Instant::now(), &d);
                }
                if onu.power_lost().is_some() {
                    break; // the power is off: the rest is lost
                }
            }
        }
        tracing::info!(onu = id, "rebooting");
        let (f, fl) = onu.into_parts();
        (flash, faults) = (f, fl);
        if !cfg.supervise {
            return Ok(Exit::Reboot);
        }
        tokio::time::sleep(cfg.reboot_delay).await;
    }
}
