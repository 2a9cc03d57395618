//! The tokio driver of the OLT process: owns the sockets, the timer and the signals, feeds the
//! engine, and does nothing else. This is the one place of the OLT that reads the clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddrV4;
use std::pin::pin;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use omci_codec::OnuId;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::pcap::{CaptureWriter, Direction, Peer};
use onu::net;
use tokio::net::UdpSocket;

use crate::engine::{Dest, Olt};

/// Where the OLT and its ONUs are.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The OLT's own address: every ONU answers here.
    pub listen: SocketAddrV4,
    /// The multicast download group.
    pub group: SocketAddrV4,
    /// Each ONU's address.
    pub onus: BTreeMap<OnuId, SocketAddrV4>,
    /// Write every OMCI frame sent and received to this pcap file.
    pub pcap: Option<std::path::PathBuf>,
    /// Show progress: a bar on a terminal, a line every few seconds otherwise.
    pub progress: bool,
}

/// What the ONUs are doing, in one line: how many in each phase, frames on the group, failures.
fn progress_line(olt: &Olt) -> String {
    let mut phases: BTreeMap<&'static str, usize> = BTreeMap::new();
    let (mut upgraded, mut skipped, mut failed) = (0, 0, 0);
    for s in olt.sessions() {
        match s.outcome() {
            Some(crate::session::Outcome::Upgraded) => upgraded += 1,
            Some(crate::session::Outcome::Skipped(_)) => skipped += 1,
            Some(crate::session::Outcome::Failed(_)) => failed += 1,
            None => *phases.entry(s.phase_name()).or_insert(0) += 1,
        }
    }
    let running: Vec<String> = phases.iter().map(|(p, n)| format!("{n} {p}")).collect();
    format!(
        "{} | {upgraded} upgraded, {skipped} skipped, {failed} failed | {} frames on the group",
        if running.is_empty() {
            "done".to_string()
        } else {
            running.join(", ")
        },
        olt.counters().frames_multicast
    )
}

/// The capture of a run: every OMCI frame, without the transport envelope, as an Ethernet
/// frame of EtherType 0x88B5 (docs/wire.md).
struct Capture {
    writer: CaptureWriter<std::io::BufWriter<std::fs::File>>,
}

impl Capture {
    fn record(&mut self, direction: Direction, datagram: &[u8]) {
        let Ok((envelope, frame)) = Envelope::parse(datagram) else {
            return;
        };
        let peer = if envelope.onu_id == ALL_ONUS {
            Peer::Multicast
        } else {
            Peer::Onu(envelope.onu_id)
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if let Err(e) = self.writer.write(now, direction, peer, frame) {
            tracing::warn!("pcap: {e}");
        }
    }
}

/// Runs `olt` until every session has ended or `shutdown` completes; gives the engine back.
pub async fn run(
    mut olt: Olt,
    cfg: &DriverConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Olt> {
    let socket = UdpSocket::from_std(
        net::bind_unicast(cfg.listen).with_context(|| format!("binding {}", cfg.listen))?,
    )?;
    let sender = UdpSocket::from_std(
        net::bind_multicast_sender(std::net::SocketAddrV4::new(net::LOOPBACK, 0))
            .context("opening the multicast sender on the loopback interface")?,
    )?;
    let mut capture = match &cfg.pcap {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            Some(Capture {
                writer: CaptureWriter::new(std::io::BufWriter::new(file))
                    .with_context(|| format!("writing {}", path.display()))?,
            })
        }
        None => None,
    };
    let total = olt.sessions().count() as u64;
    let bar = cfg.progress.then(|| {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed:>4} [{bar:30}] {pos}/{len} ONUs finished  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        }
    });
    let mut last_line = Instant::now();
    let mut shutdown = pin!(shutdown);
    let mut buf = vec![0u8; 4096];
    while !olt.finished() {
        while let Some(t) = olt.poll_transmit() {
            if let Some(c) = &mut capture {
                c.record(Direction::Downstream, &t.datagram);
            }
            match t.dest {
                Dest::Onu(id) => {
                    if let Some(addr) = cfg.onus.get(&id) {
                        socket.send_to(&t.datagram, *addr).await?;
                    }
                }
                Dest::Group => {
                    sender.send_to(&t.datagram, cfg.group).await?;
                }
            }
        }
        if let Some(bar) = &bar {
            let done = olt.sessions().filter(|s| s.outcome().is_some()).count() as u64;
            if bar.is_hidden() {
                // Not a terminal: a plain line every 5 s.
                if last_line.elapsed() >= std::time::Duration::from_secs(5) {
                    eprintln!(
                        "olt: {done}/{total} ONUs finished | {}",
                        progress_line(&olt)
                    );
                    last_line = Instant::now();
                }
            } else if last_line.elapsed() >= std::time::Duration::from_millis(100) {
                bar.set_position(done);
                bar.set_message(progress_line(&olt));
                last_line = Instant::now();
            }
        }
        let deadline = olt.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, _) = r?;
                if let Some(c) = &mut capture {
                    c.record(Direction::Upstream, &buf[..n]);
                }
                olt.handle_datagram(Instant::now(), &buf[..n]);
            }
            () = sleep => olt.handle_timeout(Instant::now()),
            () = &mut shutdown => {
                tracing::warn!("stopped before every ONU finished");
                break;
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(c) = capture {
        let mut inner = c.writer.into_inner();
        std::io::Write::flush(&mut inner).context("finishing the pcap")?;
    }
    Ok(olt)
}
