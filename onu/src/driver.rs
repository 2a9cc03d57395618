//! The tokio driver of one ONU process: owns the sockets, the timer and the signals, feeds the
//! core, and does nothing else. This is the one place of the ONU that reads the clock.
//!
//! A reboot the core asks for (Activate, Reboot) is carried out by booting a new core from the
//! same flash after `reboot_delay`, in the same process when `supervise` is set (the process
//! keeps its identity, so an upgrade can be watched end to end), else by ending the process
//! with [`Exit::Reboot`] for whoever started it to start it again. A power-loss point aborts the
//! process at once, with no cleanup, exactly as a SIGKILL would.
//!
//! With `check_olt` (`onu run --check-olt`) the driver also feeds an OLT observer (the
//! `conformance` crate's [`OltObserver`]): every datagram the core takes in, every one it
//! sends, and the facts among its events that only the ONU knows ([`olt_fact`]), in the
//! order [`take_outputs`] keeps. Each rule the OLT breaks is logged once, the first time (a
//! warning); the report (per rule: its source, how many times, the first and last frame;
//! every violation with `--check-olt-all`) is written once, when the process ends: stopped by
//! a signal, to reboot, after a failed boot, on an error, or at a power cut. The sans-IO part
//! of this ([`olt_fact`], [`take_outputs`]) is public, so that the in-process PON of the tests
//! feeds the observer exactly as this driver does.
//!
//! On the OB-BAA framing (`onu run --transport obbaa --cterm NAME`, docs/wire.md) the driver
//! converts at the socket and nowhere else: what arrives passes [`Framing::from_wire`] (a
//! datagram of another channel termination, or one that is no OB-BAA datagram, is a counted
//! drop), what the core sends passes [`Framing::to_wire`]. Requests are taken from `--olt`
//! only, as on the lab's framing, and answered there: to the request's source, as the OB-BAA
//! tools answer. The core, the
//! observer and the logs see the lab's form either way. The framing is unicast only: the
//! multicast group is not joined.

use std::future::Future;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use conformance::{Keep, OltObserver, OnuFact};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::boot::BootError;
use crate::core::{Onu, OnuConfig, OnuEvent};
use crate::faults::Faults;
use crate::flash::{FileFlash, Flash};
use crate::recovery::{Recovery, RecoveryConfig};
use pon::link::{Link, LinkFaultRates, Paths};
use pon::transport::{self as net, Framing};

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
    /// The multicast download group (not joined on the OB-BAA framing).
    pub group: SocketAddrV4,
    /// How datagrams carry OMCI frames on the wire: the lab's envelope, or OB-BAA's framing.
    pub framing: Framing,
    /// Recovery mode over TFTP (`--golden tftp://...`): where the golden image comes from when
    /// nothing in flash boots. Set with `onu.network_golden`.
    pub recovery: Option<RecoveryConfig>,
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
    /// Check the OLT (`onu run --check-olt`): an OLT observer watches the exchange, and each
    /// rule of the software download the OLT breaks is logged as a warning the first time.
    pub check_olt: bool,
    /// With `check_olt`: write the rules the OLT broke here (JSON), once, when the process
    /// ends.
    pub olt_report: Option<PathBuf>,
    /// With `check_olt`: keep every violation, and list them in the report (`--check-olt-all`);
    /// otherwise per rule only the count and the first and last (constant memory).
    pub olt_report_all: bool,
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

/// Writes the OLT observer's report to `path` (atomically: a reader sees the old file or the
/// new one).
fn write_report(path: &std::path::Path, observer: &OltObserver) -> Result<()> {
    let report = observer.report();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The end of `onu run --check-olt`: one line per rule broken (its source, how often, the
/// first and last frame) in the log, and the report, if one was asked for.
fn finish_check(id: u16, observer: Option<&OltObserver>, report: Option<&PathBuf>) -> Result<()> {
    let Some(o) = observer else {
        return Ok(());
    };
    for s in o.summary() {
        tracing::info!(
            onu = id,
            rule = %s.rule,
            source = %s.source,
            count = s.count,
            first = %s.frame,
            last = %s.last_frame,
            "the OLT broke a rule"
        );
    }
    if o.summary().is_empty() {
        tracing::info!(onu = id, "the OLT broke no rule");
    }
    match report {
        Some(path) => write_report(path, o),
        None => Ok(()),
    }
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
        OnuEvent::PowerLost { point } => {
            tracing::warn!(onu, %point, event = %event_json(e), "power lost")
        }
        OnuEvent::RecoveryFailed {
            attempt,
            reason,
            retry_in_ms,
        } => tracing::warn!(
            onu,
            attempt,
            %reason,
            retry_in_ms,
            event = %event_json(e),
            "recovery mode: the golden image could not be restored; still in recovery mode"
        ),
        // One per window per ONU (a thousand per megabyte): detail, not news.
        OnuEvent::WindowComplete { .. } | OnuEvent::WindowIncomplete { .. } => {
            tracing::debug!(onu, event = %event_json(e))
        }
        other => tracing::info!(onu, event = %event_json(other)),
    }
}

/// The fact an ONU event tells the OLT observer, if it tells one: the ONU booted or goes down,
/// it discarded its download, or End's CRC did not match what it wrote.
pub fn olt_fact(e: &OnuEvent) -> Option<OnuFact> {
    match e {
        OnuEvent::Booted { .. } => Some(OnuFact::Booted),
        OnuEvent::RebootRequested | OnuEvent::PowerLost { .. } => Some(OnuFact::Down),
        OnuEvent::DownloadDiscarded { .. } => Some(OnuFact::DownloadDiscarded),
        OnuEvent::ImageRefused {
            crc_mismatch: Some(m),
            ..
        } => Some(OnuFact::EndCrcMismatch {
            written: m.written,
            end: m.end,
        }),
        _ => None,
    }
}

/// Takes what `onu` produced since its last input (at `now`): its events into `events`, then
/// its datagrams into `datagrams`, each shown to `observer` in that order (the facts of an
/// input before the answers it caused, as [`OltObserver::handle_fact`] asks).
pub fn take_outputs<F: Flash>(
    onu: &mut Onu<F>,
    mut observer: Option<&mut OltObserver>,
    now: Instant,
    events: &mut Vec<OnuEvent>,
    datagrams: &mut Vec<Vec<u8>>,
) {
    while let Some(e) = onu.poll_event() {
        if let (Some(o), Some(fact)) = (observer.as_deref_mut(), olt_fact(&e)) {
            o.handle_fact(fact);
        }
        events.push(e);
    }
    while let Some(d) = onu.poll_transmit() {
        if let Some(o) = observer.as_deref_mut() {
            o.handle_upstream(now, &d);
        }
        datagrams.push(d);
    }
}

/// Warns of each rule the OLT broke for the first time since the last call (later breaks of
/// a rule are only counted, for the report).
fn warn_new_rules(id: u16, observer: &mut OltObserver) {
    while let Some(v) = observer.poll_rule_broken() {
        tracing::warn!(
            onu = id,
            rule = %v.rule,
            source = v.rule.source(),
            detail = %v.detail,
            frame = %v.frame,
            "the OLT broke a rule (the first time; the report counts them all)"
        );
    }
}

/// Why a datagram from `from`, not the OLT, is dropped: on the multicast group or on the ONU's
/// own OMCC port.
fn foreign_reason(group: bool, from: Option<SocketAddrV4>) -> String {
    let sender = from.map_or("an unknown sender".to_string(), |a| a.to_string());
    if group {
        format!("a multicast datagram from {sender}, not the OLT")
    } else {
        format!("a datagram on the ONU's own port from {sender}, not the OLT")
    }
}

/// Runs the ONU until `shutdown` completes or the process must end; with `check_olt`, writes
/// the observer's report then, however it ended.
pub async fn run(cfg: DriverConfig, shutdown: impl Future<Output = ()>) -> Result<Exit> {
    let keep = if cfg.olt_report_all {
        Keep::Every
    } else {
        Keep::Summary
    };
    let mut observer = cfg
        .check_olt
        .then(|| OltObserver::new(cfg.onu.onu_id, cfg.onu.extended_trailer.clone(), keep));
    let exit = run_onu(&cfg, shutdown, &mut observer).await;
    let written = finish_check(cfg.onu.onu_id.0, observer.as_ref(), cfg.olt_report.as_ref());
    let exit = exit?;
    written?;
    Ok(exit)
}

/// Recovery mode (`crate::recovery`) on a UDP socket of its own on loopback, until the golden
/// image is committed (the flash and the plan come back, to boot) or `shutdown` (None). A
/// power-loss point aborts the process, as everywhere else.
async fn recover<F: Flash>(
    id: u16,
    mut r: Recovery<F>,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<(F, Faults)>> {
    let sock = UdpSocket::from_std(
        net::bind_unicast(SocketAddrV4::new(net::LOOPBACK, 0))
            .context("binding the recovery socket on loopback")?,
    )?;
    // The largest TFTP block (RFC 2348) and its header.
    let mut buf = vec![0u8; usize::from(pon::tftp::MAX_BLKSIZE) + 4];
    loop {
        while let Some((to, d)) = r.poll_transmit() {
            if let Err(e) = sock.send_to(&d, to).await {
                // A lost datagram, as on a network: the read's timer sends it again.
                tracing::debug!(onu = id, %to, error = %e, "recovery: sending");
            }
        }
        while let Some(e) = r.poll_event() {
            log_event(id, &e);
        }
        if r.power_lost().is_some() {
            std::process::abort();
        }
        if r.restored() {
            return Ok(Some(r.into_parts()));
        }
        let deadline = r.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(None),
            () = sleep => r.handle_timeout(Instant::now()),
            got = sock.recv_from(&mut buf) => match got {
                Ok((n, from)) => r.handle_datagram(Instant::now(), from, &buf[..n]),
                // An ICMP "port unreachable" from a server that is down, on some systems.
                Err(e) => tracing::debug!(onu = id, error = %e, "recovery: receiving"),
            },
        }
    }
}

/// The ONU process itself, feeding `observer` if there is one.
async fn run_onu(
    cfg: &DriverConfig,
    shutdown: impl Future<Output = ()>,
    observer: &mut Option<OltObserver>,
) -> Result<Exit> {
    let id = cfg.onu.onu_id.0;
    let unicast = UdpSocket::from_std(
        net::bind_unicast(cfg.listen).with_context(|| format!("binding {}", cfg.listen))?,
    )?;
    let group = match cfg.framing {
        Framing::Lab => Some(UdpSocket::from_std(
            net::bind_multicast_receiver(cfg.group)
                .with_context(|| format!("joining {} on the loopback interface", cfg.group))?,
        )?),
        Framing::Obbaa { .. } => None,
    };
    let mut rx_link = Link::new(cfg.rx_faults, cfg.seed);
    let mut clean = Link::new(LinkFaultRates::default(), cfg.seed);
    let (faulty_unicast, faulty_group) = cfg.rx_paths.applies();
    let mut tx_link = Link::new(cfg.tx_faults, cfg.seed ^ 0x5555_5555);
    let mut flash = FileFlash::open(&cfg.state_dir)
        .with_context(|| format!("opening the flash in {}", cfg.state_dir.display()))?;
    let mut faults = cfg.faults.clone();
    let mut shutdown = pin!(shutdown);
    let mut inbox = net::RecvBatch::new();
    // What the core produced since it was last drained, sent and logged at the loop's top.
    let (mut events, mut outgoing) = (Vec::new(), Vec::new());
    match &cfg.framing {
        Framing::Lab => {
            tracing::info!(onu = id, listen = %cfg.listen, olt = %cfg.olt, group = %cfg.group, "ONU up")
        }
        Framing::Obbaa { cterm, .. } => {
            tracing::info!(onu = id, listen = %cfg.listen, olt = %cfg.olt, %cterm, "ONU up on the OB-BAA framing")
        }
    }
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
                Err((
                    f,
                    plan,
                    BootError::RecoveryNeeded {
                        slot,
                        anti_rollback_floor,
                    },
                )) => {
                    let Some(rc) = &cfg.recovery else {
                        anyhow::bail!("recovery mode needs a golden image and none is configured");
                    };
                    let boot = cfg.onu.boot_config();
                    let started = Recovery::new(
                        Instant::now(),
                        rc.clone(),
                        boot,
                        f,
                        plan,
                        slot,
                        anti_rollback_floor,
                    );
                    match recover(id, started, shutdown.as_mut()).await? {
                        Some((f, plan)) => (flash, faults) = (f, plan),
                        None => {
                            tracing::info!(onu = id, "stopping in recovery mode");
                            return Ok(Exit::Stopped);
                        }
                    }
                }
                Err((_, _, e)) => return Err(e).context("the bootloader found nothing to boot"),
            }
        };
        // The running image.
        loop {
            take_outputs(
                &mut onu,
                observer.as_mut(),
                Instant::now(),
                &mut events,
                &mut outgoing,
            );
            for d in outgoing.drain(..) {
                let d = match cfg.framing.to_wire(d) {
                    Ok(d) => d,
                    Err(e) => {
                        // Nothing the core sends is refused today (no group, no window
                        // fields on this framing); should it be, it is said, not sent.
                        tracing::warn!(onu = id, error = %e, "not sent");
                        continue;
                    }
                };
                for d in tx_link.pass(d) {
                    unicast.send_to(&d, cfg.olt).await?;
                }
            }
            for e in events.drain(..) {
                log_event(id, &e);
            }
            if let Some(o) = observer.as_mut() {
                warn_new_rules(id, o);
            }
            if onu.power_lost().is_some() {
                // No cleanup: what is in flash is what a power cut leaves. The observer is no
                // part of the ONU: its report is written first.
                if let Err(e) = finish_check(id, observer.as_ref(), cfg.olt_report.as_ref()) {
                    tracing::warn!(onu = id, error = %format!("{e:#}"), "the OLT report");
                }
                std::process::abort();
            }
            if onu.reboot_requested() {
                break;
            }
            let deadline = [
                onu.poll_timeout(),
                observer.as_ref().and_then(|o| o.poll_timeout()),
            ]
            .into_iter()
            .flatten()
            .min();
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
                    let now = Instant::now();
                    onu.handle_timeout(now);
                    if let Some(o) = observer.as_mut() {
                        o.handle_timeout(now);
                    }
                    continue;
                }
                r = unicast.readable() => { r?; (&unicast, faulty_unicast, false) }
                r = async {
                    match &group {
                        Some(g) => g.readable().await,
                        None => std::future::pending().await,
                    }
                } => { r?; (group.as_ref().expect("readable"), faulty_group, true) }
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
                if from != Some(cfg.olt) {
                    // Only the OLT sends downstream (on a PON the downstream is the OLT's
                    // alone), on the group and on this ONU's own port alike: anyone else's
                    // datagram is dropped unread, and never answered.
                    onu.drop_foreign(foreign_reason(group_datagrams, from));
                    continue;
                }
                let d = match cfg.framing.from_wire(d) {
                    Ok(d) => d,
                    Err(e) => {
                        onu.drop_foreign(format!("framing: {e}"));
                        take_outputs(
                            &mut onu,
                            observer.as_mut(),
                            Instant::now(),
                            &mut events,
                            &mut outgoing,
                        );
                        continue;
                    }
                };
                let mut deliver = |d: &[u8]| {
                    let now = Instant::now();
                    if let Some(o) = observer.as_mut() {
                        o.handle_downstream(now, d);
                    }
                    onu.handle_datagram(now, d);
                    // Drained after each datagram, so that the observer sees every answer
                    // right after its request.
                    take_outputs(&mut onu, observer.as_mut(), now, &mut events, &mut outgoing);
                };
                if link.is_clean() {
                    // As received: no copy of the datagram.
                    deliver(&d);
                } else {
                    for d in link.pass(d.into_owned()) {
                        deliver(&d);
                    }
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
