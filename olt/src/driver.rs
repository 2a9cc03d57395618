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
    if let Some(c) = capture {
        let mut inner = c.writer.into_inner();
        std::io::Write::flush(&mut inner).context("finishing the pcap")?;
    }
    Ok(olt)
}
