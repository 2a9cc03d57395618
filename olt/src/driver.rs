//! The tokio driver of the OLT process: owns the sockets, the timer and the signals, feeds the
//! engine, and does nothing else. This is the one place of the OLT that reads the clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use omci_codec::OnuId;
use omci_codec::envelope::Envelope;
use omci_codec::pcap::{CaptureWriter, Direction};
use pon::transport::{self as net, Framing};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::campaign::Campaign;
use crate::engine::{Dest, PonPort};
use crate::journal::JournalFile;
use crate::progress::{Meter, Progress};

/// Datagrams taken from the campaigns before they are sent: the OLT's memory for what is on
/// its way out stays a few MiB whatever the ONU count and window size.
const SEND_BUDGET: usize = 2048;

/// Where one PON port's ONUs are, and how their datagrams are framed.
#[derive(Clone, Debug)]
pub struct PonTarget {
    /// The port's multicast download group.
    pub group: SocketAddrV4,
    /// Each ONU's address.
    pub onus: BTreeMap<OnuId, SocketAddrV4>,
    /// How this port's datagrams carry their frames: the lab's envelope, or the OB-BAA
    /// framing of its channel termination (unicast only). The engine speaks the lab's form;
    /// the driver converts at the socket.
    pub framing: Framing,
}

/// Where the OLT and its ONUs are.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// The OLT's own address: every ONU of every PON port answers here.
    pub listen: SocketAddrV4,
    /// Each PON port's group and ONUs.
    pub pons: BTreeMap<PonPort, PonTarget>,
    /// Write every OMCI frame sent and received to this pcap file.
    pub pcap: Option<PathBuf>,
    /// Show progress: a bar on a terminal, a line every few seconds otherwise.
    pub progress: bool,
    /// Keep the campaigns' journal in this file.
    pub journal: Option<PathBuf>,
}

/// Every PON port's campaign, by port.
pub type Campaigns = BTreeMap<PonPort, Campaign>;

/// The capture of a run: every OMCI frame as an Ethernet frame of EtherType 0x88B5, with what
/// its transport envelope said (ONU-ID, GEM port, window number, window CRC, missing sections)
/// as the packet's comment (docs/wire.md, Captures).
struct Capture {
    writer: CaptureWriter<std::io::BufWriter<std::fs::File>>,
}

impl Capture {
    fn record(&mut self, direction: Direction, datagram: &[u8]) {
        let Ok((envelope, frame)) = Envelope::parse(datagram) else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if let Err(e) = self
            .writer
            .write_enveloped(now, direction, &envelope, frame)
        {
            tracing::warn!("pcap: {e}");
        }
    }
}

/// A line from a running driver to whoever watches it from outside (the fleet controller,
/// [`crate::worker`]): told of the campaigns after every step, heard for orders.
pub trait Link {
    /// The campaigns after a step; `changed`: a journal changed (an ONU's result, a stage).
    /// An error stops the driver.
    fn step(&mut self, campaigns: &Campaigns, changed: bool) -> Result<()>;
    /// Resolves with the next order.
    fn order(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Order> + '_>>;
}

/// What a [`Link`] may order.
#[derive(Clone, Debug, PartialEq)]
pub enum Order {
    /// Wind this port's campaign down as an abort does ([`Campaign::abort`]), for this reason.
    Abort(PonPort, String),
    /// Stop touching this port at once (its campaign is dropped and not given back).
    Drop(PonPort),
}

/// Runs every PON port's campaign until each has completed or halted; gives them back. The
/// first time `interrupt` yields, every campaign is aborted (it winds down to the committed
/// images, see [`Campaign::abort`]); the second time, the driver stops at once.
pub async fn run(
    campaigns: Campaigns,
    cfg: &DriverConfig,
    interrupt: impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()>>>,
) -> Result<Campaigns> {
    run_linked(campaigns, cfg, interrupt, None).await
}

/// [`run`], with a [`Link`] told of every step and obeyed.
pub async fn run_linked(
    mut campaigns: Campaigns,
    cfg: &DriverConfig,
    mut interrupt: impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = ()>>>,
    mut link: Option<&mut dyn Link>,
) -> Result<Campaigns> {
    // One socket for everything: the ONUs answer to it, and the group's datagrams leave from
    // it (the multicast interface is loopback, TTL 0), so that an ONU can tell the OLT's
    // group datagrams from anyone else's by their source address.
    let socket =
        UdpSocket::from_std(net::bind_multicast_sender(cfg.listen).with_context(|| {
            format!(
                "binding {} (multicast on the loopback interface)",
                cfg.listen
            )
        })?)?;
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
    let mut journal_error = None;
    let bar = cfg.progress.then(|| {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = indicatif::ProgressBar::new(1000);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        }
    });
    let mut last_line = Instant::now();
    let mut meter = Meter::default();
    let mut interrupted = false;
    let mut stop = interrupt();
    if let Some(granted) = net::short_receive_buffer(&socket) {
        // 128 ONUs answer each window at about the same moment: a small buffer drops answers,
        // and each costs a repair timeout (docs/decisions.md, Transport).
        tracing::warn!(
            granted,
            asked = net::RECEIVE_BUFFER,
            "the kernel granted a smaller receive buffer than asked (net.core.rmem_max): answers may be dropped under load"
        );
    }
    // Who is who: an answer is taken only from the address the OLT sends that ONU's OMCC to.
    let senders: std::collections::HashMap<SocketAddrV4, (PonPort, OnuId)> = cfg
        .pons
        .iter()
        .flat_map(|(pon, t)| t.onus.iter().map(|(id, addr)| (*addr, (*pon, *id))))
        .collect();
    let groups: std::collections::HashSet<SocketAddrV4> =
        cfg.pons.values().map(|t| t.group).collect();
    // How each ONU's datagrams are framed, when any port is not on the lab's envelope.
    let framings: Option<std::collections::HashMap<SocketAddrV4, Framing>> = cfg
        .pons
        .values()
        .any(|t| t.framing != Framing::Lab)
        .then(|| {
            cfg.pons
                .values()
                .flat_map(|t| t.onus.values().map(|addr| (*addr, t.framing.clone())))
                .collect()
        });
    let mut inbox = net::RecvBatch::new();
    let mut out: Vec<(Vec<u8>, SocketAddrV4)> = Vec::new();
    loop {
        let changed = campaigns
            .values_mut()
            .fold(false, |changed, c| c.take_journal().is_some() | changed);
        if let (Some(path), true) = (&cfg.journal, changed)
            && let Some(j) = JournalFile::of(&campaigns)
            && let Err(e) = j
                .store(path)
                .with_context(|| format!("writing the journal {}", path.display()))
        {
            // Without its journal a campaign cannot be resumed: stop, and say why.
            journal_error = Some(e);
            break;
        }
        if let Some(l) = link.as_deref_mut() {
            l.step(&campaigns, changed)?;
        }
        if campaigns.values().all(Campaign::finished) {
            break;
        }
        // Everything due now, in order, then out in as few system calls as the kernel takes
        // (a window's sections and AR to the group in one).
        out.clear();
        let now = Instant::now();
        // At most this many datagrams at a time: what waits (128 unicast windows of 256
        // extended sections are 64 MiB) is encoded as it leaves, not all at once.
        let mut budget = SEND_BUDGET;
        for (pon, campaign) in &mut campaigns {
            let Some(target) = cfg.pons.get(pon) else {
                continue;
            };
            while budget > 0
                && let Some(t) = campaign.poll_transmit(now)
            {
                budget -= 1;
                let to = match t.dest {
                    Dest::Onu(id) => target.onus.get(&id).copied(),
                    Dest::Group => Some(target.group),
                };
                if let Some(to) = to {
                    out.push((t.datagram, to));
                }
            }
        }
        // Each destination's datagrams together, in their order (a stable sort): a window to
        // one ONU, or to the group, then leaves as one segmented send (see net::send_batch).
        // The ONUs' own datagrams go before the group's, on purpose: a repair sends an ONU its
        // missing sections alone and the closing AR section to the group, and the ONU reads
        // its own socket first (as the lab's ONU does), so that the AR finds the sections there.
        out.sort_by_key(|(_, to)| (groups.contains(to), *to));
        if let Some(c) = &mut capture {
            for (d, _) in &out {
                c.record(Direction::Downstream, d);
            }
        }
        // The wire's framing, after the capture (which keeps the lab's envelope).
        if let Some(framings) = &framings {
            out = std::mem::take(&mut out)
                .into_iter()
                .filter_map(|(d, to)| {
                    let framing = framings.get(&to).unwrap_or(&Framing::Lab);
                    match framing.to_wire(d) {
                        Ok(w) => Some((w, to)),
                        Err(e) => {
                            tracing::error!(%to, "not sent: {e}");
                            None
                        }
                    }
                })
                .collect();
        }
        let mut done = 0;
        while done < out.len() {
            let batch: Vec<(&[u8], SocketAddrV4)> = out[done..]
                .iter()
                .map(|(d, a)| (d.as_slice(), *a))
                .collect();
            match socket.try_io(Interest::WRITABLE, || net::send_batch(&socket, &batch)) {
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.writable().await?,
                Err(e) => return Err(e).context("sending"),
            }
        }
        if let Some(bar) = &bar {
            // A plain line every 5 s when standard error is not a terminal, else the bar.
            let every = if bar.is_hidden() {
                std::time::Duration::from_secs(5)
            } else {
                std::time::Duration::from_millis(200)
            };
            if last_line.elapsed() >= every {
                let p = Progress::of(&campaigns);
                meter.update(Instant::now(), p.fraction());
                if bar.is_hidden() {
                    eprintln!("olt: {}", p.line(&meter));
                } else {
                    bar.set_position((p.fraction() * 1000.0) as u64);
                    bar.set_message(p.line(&meter));
                }
                last_line = Instant::now();
            }
        }
        if budget == 0 {
            continue; // more is due now: no wait
        }
        let deadline = campaigns.values().filter_map(Campaign::poll_timeout).min();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let order = async {
            match link.as_deref_mut() {
                Some(l) => l.order().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.readable() => {
                r?;
                // Every answer waiting, in one system call (128 ONUs answer each window at
                // about the same moment).
                match socket.try_io(Interest::READABLE, || inbox.recv(&socket)) {
                    Ok(n) => {
                        let now = Instant::now();
                        for i in 0..n {
                            let (wire, addr) = inbox.datagram(i);
                            // The lab's form of what arrived (an ONU's own framing; a
                            // stranger's datagram is taken as it is).
                            let framing = framings
                                .as_ref()
                                .and_then(|f| addr.and_then(|a| f.get(&a)))
                                .unwrap_or(&Framing::Lab);
                            let d = match framing.from_wire(wire) {
                                Ok(d) => d,
                                Err(e) => {
                                    tracing::debug!(from = ?addr, "dropped: {e}");
                                    continue;
                                }
                            };
                            let d = &d[..];
                            if let Some(c) = &mut capture {
                                c.record(Direction::Upstream, d);
                            }
                            let from = addr.and_then(|a| senders.get(&a).copied());
                            match from {
                                Some((pon, onu)) => {
                                    if let Some(c) = campaigns.get_mut(&pon) {
                                        c.handle_datagram(now, Some(onu), d);
                                    }
                                }
                                // Nobody's: every port counts it as a stranger's once.
                                None => {
                                    if let Some(c) = campaigns.values_mut().next() {
                                        c.handle_datagram(now, None, d);
                                    }
                                }
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e).context("receiving"),
                }
            }
            () = sleep => {
                let now = Instant::now();
                for c in campaigns.values_mut() {
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_timeout(now);
                    }
                }
            }
            () = &mut stop => {
                if interrupted {
                    tracing::warn!("stopped before every ONU finished");
                    break;
                }
                interrupted = true;
                eprintln!("olt: aborting: the ONUs go back to their committed images (interrupt again to stop at once)");
                for c in campaigns.values_mut() {
                    c.abort(Instant::now(), "aborted by the operator");
                }
                stop = interrupt();
            }
            o = order => match o {
                Order::Abort(pon, why) => {
                    if let Some(c) = campaigns.get_mut(&pon) {
                        c.abort(Instant::now(), &why);
                    }
                }
                Order::Drop(pon) => {
                    campaigns.remove(&pon);
                }
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
    if let Some(e) = journal_error {
        return Err(e);
    }
    Ok(campaigns)
}
