//! What a controller reports to the fleet of each ONU: its serial number (ONU-G attribute 3,
//! G.988 9.1.1, asked alone: with the vendor id and version it would not fit a baseline Get
//! response's 25 bytes), its model (ONU2-G equipment ID, 9.1.2) and both software images (9.1.4), read
//! with four Gets. Sans-IO like the sessions: datagrams and time in, datagrams out; [`read`]
//! drives it on a socket.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use omci_codec::contents::{AttributeValues, Contents, GetRequest};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::mask;
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, ResultCode,
    SoftwareImageAttributes, Tci,
};
use pon::transport as net;

use crate::fleet_api::OnuInventory;
use crate::session::version_text;

/// One of the four reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ask {
    /// ONU-G: serial number (mask 0x2000).
    OnuG,
    /// ONU2-G: equipment id (mask 0x8000).
    Onu2G,
    /// Software image 0 or 1: version, committed, active, valid.
    Image(u8),
}

const ASKS: [Ask; 4] = [Ask::OnuG, Ask::Onu2G, Ask::Image(0), Ask::Image(1)];

/// One ONU's reads.
#[derive(Debug)]
struct Reading {
    next: usize,
    /// The request outstanding: its TCI, when it times out, tries so far, its bytes.
    waiting: Option<(Tci, Instant, u8, Vec<u8>)>,
    found: OnuInventory,
    images: [Option<SoftwareImageAttributes>; 2],
    /// It did not answer (its last request ran out of tries).
    silent: bool,
}

/// The reads of a PON's ONUs.
#[derive(Debug)]
pub struct Reader {
    onus: BTreeMap<OnuId, Reading>,
    codec: Codec,
    tci: crate::tci::Counter,
    timeout: Duration,
    retries: u8,
    out: Vec<(OnuId, Vec<u8>)>,
}

impl Reader {
    /// Reads of `onus`, each request sent again `retries` times after `timeout`.
    pub fn new(onus: &[OnuId], timeout: Duration, retries: u8, seed: u64, now: Instant) -> Reader {
        let mut r = Reader {
            onus: onus
                .iter()
                .map(|id| {
                    (
                        *id,
                        Reading {
                            next: 0,
                            waiting: None,
                            found: OnuInventory {
                                onu_id: id.0,
                                serial: None,
                                model: None,
                                active_version: None,
                                committed_version: None,
                            },
                            images: [None, None],
                            silent: false,
                        },
                    )
                })
                .collect(),
            codec: Codec::new(ExtendedTrailer::Crc32),
            tci: crate::tci::Counter::new(crate::tci::SESSION, seed, 0x1f),
            timeout,
            retries,
            out: Vec::new(),
        };
        let ids: Vec<OnuId> = r.onus.keys().copied().collect();
        for id in ids {
            r.ask_next(id, now);
        }
        r
    }

    fn ask_next(&mut self, id: OnuId, now: Instant) {
        let Some(reading) = self.onus.get_mut(&id) else {
            return;
        };
        let Some(ask) = ASKS.get(reading.next).copied() else {
            reading.waiting = None;
            return;
        };
        let (me, attribute_mask) = match ask {
            Ask::OnuG => (MeId::new(MeClass::ONU_G, 0), 0x2000),
            Ask::Onu2G => (MeId::new(MeClass::ONU2_G, 0), 0x8000),
            Ask::Image(i) => (
                MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(i)),
                mask::VERSION | mask::IS_COMMITTED | mask::IS_ACTIVE | mask::IS_VALID,
            ),
        };
        let tci = self.tci.next_tci();
        let msg = Message::new(
            tci,
            Format::Baseline,
            me,
            Contents::GetRequest(GetRequest { attribute_mask }),
        );
        let Ok(frame) = self.codec.to_vec(&msg) else {
            // A Get always encodes; an ONU whose Get would not is reported unread.
            reading.silent = true;
            reading.waiting = None;
            return;
        };
        let bytes = Envelope::omcc(id).wrap(&frame);
        reading.waiting = Some((tci, now + self.timeout, 0, bytes.clone()));
        self.out.push((id, bytes));
    }

    /// A datagram from the address of ONU `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: OnuId, datagram: &[u8]) {
        let Ok((envelope, frame)) = Envelope::parse(datagram) else {
            return;
        };
        if envelope.onu_id != from {
            return;
        }
        let Ok(msg) = self.codec.parse(frame) else {
            return;
        };
        let Some(reading) = self.onus.get_mut(&from) else {
            return;
        };
        let Some((tci, ..)) = &reading.waiting else {
            return;
        };
        if msg.tci != *tci || !msg.ak() {
            return;
        }
        let Contents::GetResponse(g) = &msg.contents else {
            return;
        };
        match (ASKS[reading.next], g.result, &g.attributes) {
            (Ask::OnuG, ResultCode::Success, AttributeValues::Raw { values, .. })
                if values.len() >= 8 =>
            {
                reading.found.serial = serial_text(&values[..8]);
            }
            (Ask::Onu2G, ResultCode::Success, AttributeValues::Raw { values, .. }) => {
                reading.found.model = Some(version_text(&values[..values.len().min(20)]));
            }
            (Ask::Image(i), ResultCode::Success, AttributeValues::SoftwareImage(a)) => {
                reading.images[usize::from(i & 1)] = Some((**a).clone());
            }
            _ => {}
        }
        reading.next += 1;
        if reading.next == ASKS.len() {
            let version_where = |f: &dyn Fn(&SoftwareImageAttributes) -> bool| {
                reading
                    .images
                    .iter()
                    .flatten()
                    .find(|a| f(a))
                    .and_then(|a| a.version)
                    .map(|v| version_text(&v))
            };
            reading.found.active_version = version_where(&|a| a.is_active == Some(true));
            reading.found.committed_version = version_where(&|a| a.is_committed == Some(true));
        }
        self.ask_next(from, now);
    }

    /// Time has reached `now`: requests unanswered are sent again, or given up.
    pub fn handle_timeout(&mut self, now: Instant) {
        for reading in self.onus.values_mut() {
            let Some((_, deadline, tries, bytes)) = &mut reading.waiting else {
                continue;
            };
            if *deadline > now {
                continue;
            }
            if *tries >= self.retries {
                reading.silent = true;
                reading.waiting = None;
                continue;
            }
            *tries += 1;
            *deadline = now + self.timeout;
            self.out.push((OnuId(reading.found.onu_id), bytes.clone()));
        }
    }

    /// The datagrams to send, each with its ONU.
    pub fn take_transmits(&mut self) -> Vec<(OnuId, Vec<u8>)> {
        std::mem::take(&mut self.out)
    }

    /// When [`Reader::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.onus
            .values()
            .filter_map(|r| r.waiting.as_ref().map(|w| w.1))
            .min()
    }

    /// True once every ONU has answered all four reads or gone silent.
    pub fn finished(&self) -> bool {
        self.onus.values().all(|r| r.waiting.is_none())
    }

    /// What was read of each ONU (a silent ONU with what it said before going silent).
    pub fn found(&self) -> Vec<OnuInventory> {
        self.onus.values().map(|r| r.found.clone()).collect()
    }
}

/// ONU-G's serial number as text: the four vendor letters and the other four bytes in hex
/// (`LABS0000000A`); None when the vendor part is not letters.
pub fn serial_text(sn: &[u8]) -> Option<String> {
    let (vendor, rest) = sn.split_at_checked(4)?;
    if rest.len() != 4 || !vendor.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(vendor),
        hex::encode_upper(rest)
    ))
}

/// Reads every ONU of every port in `pons` from `listen` (the OLT's address, which they answer
/// to) and gives back what each said.
pub async fn read(
    listen: SocketAddrV4,
    pons: &BTreeMap<crate::engine::PonPort, BTreeMap<OnuId, SocketAddrV4>>,
    timeout: Duration,
    retries: u8,
) -> Result<BTreeMap<crate::engine::PonPort, Vec<OnuInventory>>> {
    let socket = tokio::net::UdpSocket::from_std(
        net::bind_multicast_sender(listen).with_context(|| format!("binding {listen}"))?,
    )?;
    let seed = std::collections::hash_map::RandomState::new();
    let seed = std::hash::BuildHasher::hash_one(&seed, 0u8);
    let now = Instant::now();
    let mut readers: BTreeMap<crate::engine::PonPort, Reader> = pons
        .iter()
        .map(|(p, onus)| {
            let ids: Vec<OnuId> = onus.keys().copied().collect();
            (
                *p,
                Reader::new(&ids, timeout, retries, seed ^ u64::from(p.0), now),
            )
        })
        .collect();
    let who: HashMap<SocketAddrV4, (crate::engine::PonPort, OnuId)> = pons
        .iter()
        .flat_map(|(p, onus)| onus.iter().map(|(id, a)| (*a, (*p, *id))))
        .collect();
    let mut buf = vec![0u8; 65536];
    loop {
        for (p, r) in &mut readers {
            for (id, d) in r.take_transmits() {
                if let Some(to) = pons.get(p).and_then(|o| o.get(&id)) {
                    socket.send_to(&d, *to).await?;
                }
            }
        }
        if readers.values().all(Reader::finished) {
            break;
        }
        let deadline = readers.values().filter_map(Reader::poll_timeout).min();
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r?;
                let std::net::SocketAddr::V4(from) = from else { continue };
                if let Some((p, id)) = who.get(&from)
                    && let Some(r) = readers.get_mut(p)
                {
                    r.handle_datagram(Instant::now(), *id, &buf[..n]);
                }
            }
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                for r in readers.values_mut() {
                    r.handle_timeout(now);
                }
            }
        }
    }
    Ok(readers.into_iter().map(|(p, r)| (p, r.found())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_number_reads_as_its_vendor_and_hex() {
        assert_eq!(
            serial_text(b"LABS\x00\x00\x00\x0a").as_deref(),
            Some("LABS0000000A")
        );
        assert_eq!(serial_text(b"LA\x00S\x00\x00\x00\x0a"), None);
        assert_eq!(serial_text(b"LABS"), None);
    }

    #[test]
    fn a_silent_onu_is_asked_again_then_given_up() {
        let t0 = Instant::now();
        let mut r = Reader::new(&[OnuId(1), OnuId(2)], Duration::from_millis(100), 2, 1, t0);
        assert_eq!(r.take_transmits().len(), 2, "one Get to each");
        assert!(!r.finished());
        for k in 1..=2u32 {
            r.handle_timeout(t0 + Duration::from_millis(100) * k);
            assert_eq!(r.take_transmits().len(), 2, "try {k}");
        }
        r.handle_timeout(t0 + Duration::from_millis(300));
        assert!(r.take_transmits().is_empty());
        assert!(r.finished());
        assert!(r.found().iter().all(|o| o.serial.is_none()));
    }
}
