//! Sockets of the lab's transport, bound where DESIGN.md section 4 says: unicast on
//! 127.0.0.0/8 only, multicast joined on the loopback interface with TTL 0, so that no packet
//! of the lab can leave the machine; and the two framings a datagram can have ([`Framing`]:
//! the lab's envelope, or the Broadband Forum's OB-BAA header).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, sendmsg,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use std::borrow::Cow;

use omci_codec::envelope::{ALL_ONUS, Envelope, EnvelopeError};
use omci_codec::obbaa::{self, CtermName, ObbaaError, ObbaaHeader};
use omci_codec::{ExtendedTrailer, GemPort};

/// The loopback interface address multicast is bound to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The default multicast download group (administratively scoped, DESIGN.md section 4).
pub const DEFAULT_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 1), 47000);

/// The broadcast address of 127.0.0.0/8: it passes `is_loopback`, but a datagram sent to it
/// is refused by the kernel (EACCES without SO_BROADCAST) and reaches no peer.
pub const LOOPBACK_BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

/// Why an address is refused.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// Not in 127.0.0.0/8.
    #[error("{0} is not a loopback address: this lab only talks on 127.0.0.0/8")]
    NotLoopback(SocketAddr),
    /// The broadcast address of 127.0.0.0/8.
    #[error(
        "{0} is the broadcast address of 127.0.0.0/8, not one process: give another 127.x.y.z \
         (the lab's default is 127.0.0.1)"
    )]
    Broadcast(SocketAddr),
    /// Port 0: the kernel would choose one, and no peer would know it.
    #[error("{0}: port 0 is no port a peer can send to: give a port from 1 to 65535")]
    PortZero(SocketAddr),
    /// Not an IPv4 multicast group.
    #[error("{0} is not an IPv4 multicast group (224.0.0.0/4; the lab's default is 239.255.0.1)")]
    NotMulticast(SocketAddr),
}

/// The address, if it is an IPv4 loopback address of one process (not the broadcast address).
/// Any port, 0 included: what a socket may be bound to (port 0: the kernel chooses).
pub fn loopback(addr: SocketAddr) -> Result<SocketAddrV4, AddressError> {
    match addr {
        SocketAddr::V4(a) if *a.ip() == LOOPBACK_BROADCAST => Err(AddressError::Broadcast(addr)),
        SocketAddr::V4(a) if a.ip().is_loopback() => Ok(a),
        _ => Err(AddressError::NotLoopback(addr)),
    }
}

/// The address, if a peer can reach it: a [`loopback`] address with a port other than 0.
///
/// Every address on the lab's command lines is one a peer must know: the OLT sends to the
/// addresses `--onus` gives and the ONUs answer to the one their `--olt` gives, so an OLT or
/// an ONU listening on a port the kernel chose would never hear from its peers. That is why the
/// `--listen` addresses are peer addresses too.
pub fn peer(addr: SocketAddr) -> Result<SocketAddrV4, AddressError> {
    let a = loopback(addr)?;
    if a.port() == 0 {
        return Err(AddressError::PortZero(addr));
    }
    Ok(a)
}

/// The address, if it is an IPv4 multicast group with a port other than 0.
pub fn multicast_group(addr: SocketAddr) -> Result<SocketAddrV4, AddressError> {
    match addr {
        SocketAddr::V4(a) if a.ip().is_multicast() && a.port() == 0 => {
            Err(AddressError::PortZero(addr))
        }
        SocketAddr::V4(a) if a.ip().is_multicast() => Ok(a),
        _ => Err(AddressError::NotMulticast(addr)),
    }
}

/// Reads a peer address on loopback from a command line (`127.0.0.1:40001`): a clap value
/// parser. Refuses other networks, the broadcast address and port 0 ([`peer`]).
pub fn parse_loopback(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:40001"))?;
    peer(a).map_err(|e| e.to_string())
}

/// Reads a multicast group from a command line (`239.255.0.1:47000`): a clap value parser.
pub fn parse_group(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not an address like 239.255.0.1:47000"))?;
    multicast_group(a).map_err(|e| e.to_string())
}

/// Reads a channel termination name from a command line (`--cterm CT_1`): a clap value
/// parser.
pub fn parse_cterm(s: &str) -> Result<CtermName, String> {
    CtermName::new(s).map_err(|e| e.to_string())
}

// --------------------------------------------------------------------------------------------
// Framings: how a datagram carries an OMCI frame

/// How a datagram carries an OMCI frame (DESIGN.md section 4, docs/wire.md): the command
/// lines' `--transport`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    /// The lab's envelope (ONU-ID, GEM port, the multicast download's window fields), then
    /// the frame with its trailer.
    #[default]
    Lab,
    /// The Broadband Forum's OB-BAA framing (`cterm_name`, ONU-ID, then the frame without its
    /// trailer), for the OB-BAA ONU and pOLT simulators and vOMCI. Unicast only.
    Obbaa,
}

/// A framing and what it needs: the one conversion between the lab's datagrams (what the
/// OLT engine, the ONU core and the conformance suite read and write) and the wire.
///
/// Everything above the drivers speaks the lab's form, envelope and trailer included; a
/// driver (or the suite's client) passes what it sends through [`Framing::to_wire`] and what
/// it receives through [`Framing::from_wire`]. On [`Framing::Lab`] both are the identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The lab's envelope.
    Lab,
    /// The OB-BAA framing of one channel termination.
    Obbaa {
        /// The channel termination's name: written on every datagram sent, and required,
        /// byte for byte, of every datagram received.
        cterm: CtermName,
        /// The trailer the lab's side gives extended frames (the lab's transport: CRC-32):
        /// taken off before sending, put back on receipt.
        extended_trailer: ExtendedTrailer,
    },
}

/// Why a datagram does not convert between the lab's form and the wire's.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The lab's datagram has no readable envelope.
    #[error("the lab's envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The OB-BAA framing refuses it.
    #[error("{0}")]
    Obbaa(#[from] ObbaaError),
    /// A datagram for the multicast group: the OB-BAA framing has no group.
    #[error(
        "the OB-BAA framing is unicast only: a datagram for every ONU (the multicast group) cannot travel on it"
    )]
    Multicast,
    /// Window fields the receiver would rely on: the OB-BAA framing has no room for them.
    #[error(
        "the OB-BAA framing carries no window number or window CRC (send plain G.988: the OLT's strict mode)"
    )]
    WindowFields,
    /// A datagram of another channel termination.
    #[error("a datagram of channel termination {found:?}, not {ours:?}")]
    OtherCterm {
        /// The name it carried.
        found: String,
        /// Ours.
        ours: String,
    },
}

impl Framing {
    /// The OB-BAA framing of channel termination `cterm`, for the lab's transport (extended
    /// frames carry a CRC-32 on the lab's side).
    pub fn obbaa(cterm: CtermName) -> Framing {
        Framing::Obbaa {
            cterm,
            extended_trailer: ExtendedTrailer::Crc32,
        }
    }

    /// Which framing this is.
    pub fn kind(&self) -> TransportKind {
        match self {
            Framing::Lab => TransportKind::Lab,
            Framing::Obbaa { .. } => TransportKind::Obbaa,
        }
    }

    /// True when frames travel with their integrity trailer (a receiver can tell a damaged
    /// frame by it).
    pub fn carries_trailer(&self) -> bool {
        matches!(self, Framing::Lab)
    }

    /// True when the lab's window number, window CRC and missing-section bitmap travel.
    pub fn carries_window_fields(&self) -> bool {
        matches!(self, Framing::Lab)
    }

    /// The datagram to put on the wire for `lab`, a datagram in the lab's form (envelope, then
    /// the frame with its trailer). On OB-BAA: the header of the envelope's ONU, then the frame
    /// without its trailer; a datagram for the group, or one whose envelope carries a window
    /// number or window CRC, is refused. The missing-section bitmap of an ONU's processing
    /// error is a hint the OLT does without (it repeats the whole window): it is left out.
    pub fn to_wire(&self, lab: Vec<u8>) -> Result<Vec<u8>, FramingError> {
        let Framing::Obbaa {
            cterm,
            extended_trailer,
        } = self
        else {
            return Ok(lab);
        };
        let (envelope, frame) = Envelope::parse(&lab)?;
        if envelope.onu_id == ALL_ONUS || envelope.gem_port == GemPort::MULTICAST_DOWNLOAD {
            return Err(FramingError::Multicast);
        }
        if envelope.window_no.is_some() || envelope.window_crc.is_some() {
            return Err(FramingError::WindowFields);
        }
        let untrailed = obbaa::strip_trailer(frame, extended_trailer)?;
        Ok(ObbaaHeader::new(*cterm, envelope.onu_id).wrap(untrailed))
    }

    /// The lab's form of `wire`, a datagram received: on OB-BAA, the envelope of the header's
    /// ONU on its OMCC port, then the frame with the trailer the lab's side expects. A datagram
    /// of another channel termination is refused.
    pub fn from_wire<'a>(&self, wire: &'a [u8]) -> Result<Cow<'a, [u8]>, FramingError> {
        let Framing::Obbaa {
            cterm,
            extended_trailer,
        } = self
        else {
            return Ok(Cow::Borrowed(wire));
        };
        let (header, untrailed) = ObbaaHeader::parse(wire)?;
        if !header.is_for(cterm) {
            return Err(FramingError::OtherCterm {
                found: header.cterm_lossy(),
                ours: cterm.to_string(),
            });
        }
        let frame = obbaa::add_trailer(untrailed, extended_trailer)?;
        Ok(Cow::Owned(Envelope::omcc(header.onu_id).wrap(&frame)))
    }
}

/// The receive buffer asked for on the lab's sockets (the kernel may grant less).
pub const RECEIVE_BUFFER: usize = 4 << 20;

/// The receive buffer the kernel granted `socket`, when it is less than [`RECEIVE_BUFFER`]
/// (it caps requests at `net.core.rmem_max`; Linux reports twice the size asked for).
pub fn short_receive_buffer(socket: &impl AsFd) -> Option<usize> {
    let granted = socket2::SockRef::from(socket).recv_buffer_size().ok()?;
    (granted < RECEIVE_BUFFER).then_some(granted)
}

/// A non-blocking UDP socket bound to a loopback address.
pub fn bind_unicast(addr: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    s.bind(&SockAddr::from(addr))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A non-blocking socket that receives `group` on the loopback interface. Several ONU
/// processes bind the same group and port (SO_REUSEADDR); each receives every datagram.
pub fn bind_multicast_receiver(group: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    restrict_multicast(&s)?;
    // Room for a few pipelined windows while the ONU writes flash: the kernel caps this at
    // net.core.rmem_max (an error here is no reason to fail).
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    // Bound to the group itself, so unicast datagrams to the same port are not received.
    s.bind(&SockAddr::from(group))?;
    s.join_multicast_v4(group.ip(), &LOOPBACK)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A non-blocking socket that sends to multicast groups, only on the loopback interface.
pub fn bind_multicast_sender(local: SocketAddrV4) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    restrict_multicast(&s)?;
    // The OLT's socket: every ONU answers each window here at about the same moment (128
    // answers per window, several windows in flight); the default buffer (208 KiB) drops
    // hundreds of them per second, and each lost answer costs a repair timeout.
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    s.bind(&SockAddr::from(local))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Datagrams sent or received per system call at most ([`send_batch`], [`RecvBatch`]).
pub const BATCH: usize = 64;

/// The largest datagram of the lab (an envelope and an extended OMCI frame, with room).
pub const MAX_DATAGRAM: usize = 4096;

/// Datagrams of one GSO send at most (the kernel's UDP_MAX_SEGMENTS is 64 or more).
const GSO_SEGMENTS: usize = 64;
/// Bytes of one GSO send at most (an IP datagram's limit, with room for headers).
const GSO_BYTES: usize = 60_000;

/// Set once a GSO send failed: the kernel or the interface cannot segment, and every later
/// run goes by `sendmmsg`.
static GSO_OFF: AtomicBool = AtomicBool::new(false);

/// Sends `datagrams` in order with as few system calls as the kernel allows, on a
/// non-blocking socket. Returns how many were sent (the rest did not fit in the socket's
/// buffer: wait until it is writable and send them); `WouldBlock` when none was.
///
/// Why: a multicast window is 8 to 32 datagrams that every receiver wakes up for. Sent one
/// at a time, the kernel delivers datagram 1 to all 128 receivers, then datagram 2, and so
/// on, so that each receiver sees its datagrams 50 µs apart, wakes for each, and the machine
/// spends its time switching between processes. So:
///
/// - a run of datagrams to the same address, all of one size (the last may be shorter), goes
///   as **one** datagram with UDP segmentation offload (`UDP_SEGMENT`): the kernel cuts it
///   up for each receiving socket in turn, so that each receiver finds the whole run in its
///   buffer at once and reads it with one [`RecvBatch::recv`]. The receivers see ordinary
///   datagrams, byte for byte the same;
/// - everything else goes by `sendmmsg`, up to [`BATCH`] per call.
pub fn send_batch(socket: &impl AsFd, datagrams: &[(&[u8], SocketAddrV4)]) -> io::Result<usize> {
    let fd = socket.as_fd().as_raw_fd();
    let mut sent = 0;
    while sent < datagrams.len() {
        let rest = &datagrams[sent..];
        let run = gso_run(rest);
        let n = if run >= 2 && !GSO_OFF.load(Ordering::Relaxed) {
            match send_gso(fd, &rest[..run]) {
                Ok(()) => run,
                Err(Errno::EAGAIN) => 0,
                Err(Errno::EIO | Errno::EINVAL | Errno::ENOPROTOOPT | Errno::EOPNOTSUPP) => {
                    GSO_OFF.store(true, Ordering::Relaxed);
                    continue;
                }
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e.into()) },
            }
        } else {
            // Up to the next run worth segmenting (looked for within one call's worth), by
            // sendmmsg.
            let most = rest.len().min(BATCH);
            let upto = if GSO_OFF.load(Ordering::Relaxed) {
                most
            } else {
                (1..most)
                    .find(|&i| gso_run(&rest[i..]) >= 2)
                    .unwrap_or(most)
            };
            match send_mmsg(fd, &rest[..upto]) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => 0,
                Err(e) => return if sent > 0 { Ok(sent) } else { Err(e.into()) },
            }
        };
        if n == 0 {
            // The socket's buffer is full.
            break;
        }
        sent += n;
    }
    if sent == 0 && !datagrams.is_empty() {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    Ok(sent)
}

/// False once the kernel refused a segmented send: [`send_batch`] then sends every datagram
/// by `sendmmsg` (slower, the same datagrams).
pub fn segmentation_offload() -> bool {
    !GSO_OFF.load(Ordering::Relaxed)
}

/// How many datagrams from the first one can go as one GSO send: same address, same size
/// (the last may be shorter), within the kernel's limits.
fn gso_run(datagrams: &[(&[u8], SocketAddrV4)]) -> usize {
    let Some((first, to)) = datagrams.first() else {
        return 0;
    };
    let size = first.len();
    let mut n = 1;
    let mut bytes = size;
    for (d, a) in &datagrams[1..] {
        if a != to
            || d.len() > size
            || d.is_empty()
            || n == GSO_SEGMENTS
            || bytes + d.len() > GSO_BYTES
        {
            break;
        }
        n += 1;
        bytes += d.len();
        if d.len() < size {
            break; // a shorter one can only be the last
        }
    }
    n
}

fn send_gso(fd: RawFd, run: &[(&[u8], SocketAddrV4)]) -> nix::Result<()> {
    let size = run[0].0.len() as u16;
    let iov: Vec<IoSlice<'_>> = run.iter().map(|(d, _)| IoSlice::new(d)).collect();
    let to = SockaddrIn::from(run[0].1);
    sendmsg(
        fd,
        &iov,
        &[ControlMessage::UdpGsoSegments(&size)],
        MsgFlags::empty(),
        Some(&to),
    )
    .map(|_| ())
}

fn send_mmsg(fd: RawFd, chunk: &[(&[u8], SocketAddrV4)]) -> nix::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = chunk.iter().map(|(d, _)| [IoSlice::new(d)]).collect();
    let addrs: Vec<Option<SockaddrIn>> = chunk
        .iter()
        .map(|(_, a)| Some(SockaddrIn::from(*a)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(chunk.len(), None);
    sendmmsg(
        fd,
        &mut headers,
        &slices,
        &addrs,
        [] as [ControlMessage<'_>; 0],
        MsgFlags::empty(),
    )
    .map(Iterator::count)
}

/// Receive buffers for [`RecvBatch::recv`]: up to [`BATCH`] datagrams per system call
/// (`recvmmsg`) from a non-blocking socket.
#[derive(Debug)]
pub struct RecvBatch {
    bufs: Vec<Vec<u8>>,
    /// (buffer, length, sender) of each datagram of the last call.
    got: Vec<(usize, usize, Option<SocketAddrV4>)>,
    truncated: u64,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Room for [`BATCH`] datagrams of up to [`MAX_DATAGRAM`] bytes.
    pub fn new() -> Self {
        Self {
            bufs: vec![vec![0u8; MAX_DATAGRAM]; BATCH],
            got: Vec::with_capacity(BATCH),
            truncated: 0,
        }
    }

    /// Reads every datagram waiting on `socket`, up to [`BATCH`], in one system call; returns
    /// how many (then see [`RecvBatch::datagram`]). `WouldBlock` when none is waiting.
    pub fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.got.clear();
        let mut headers = MultiHeaders::<SockaddrIn>::preallocate(BATCH, None);
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [IoSliceMut::new(b.as_mut_slice())])
            .collect();
        let results = recvmmsg(
            socket.as_fd().as_raw_fd(),
            &mut headers,
            &mut slices,
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for (i, r) in results.enumerate() {
            if r.flags.contains(MsgFlags::MSG_TRUNC) {
                // Longer than any datagram of the lab: dropped, not taken for a shorter one.
                self.truncated += 1;
                continue;
            }
            self.got
                .push((i, r.bytes, r.address.map(SocketAddrV4::from)));
        }
        Ok(self.got.len())
    }

    /// The `i`th datagram of the last [`RecvBatch::recv`] and who sent it.
    pub fn datagram(&self, i: usize) -> (&[u8], Option<SocketAddrV4>) {
        let (b, n, from) = self.got[i];
        (&self.bufs[b][..n.min(MAX_DATAGRAM)], from)
    }

    /// Datagrams dropped so far because they were longer than [`MAX_DATAGRAM`].
    pub fn truncated(&self) -> u64 {
        self.truncated
    }
}

/// Multicast out of the loopback interface only, never routed (TTL 0), looped back to the
/// local receivers.
fn restrict_multicast(s: &Socket) -> io::Result<()> {
    s.set_multicast_if_v4(&LOOPBACK)?;
    s.set_multicast_ttl_v4(0)?;
    s.set_multicast_loop_v4(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    use omci_codec::contents::{Contents, GetRequest, StartSoftwareDownloadRequest};
    use omci_codec::{Codec, Format, MeClass, MeId, Message, OnuId, Tci, WindowNo};

    fn lab_datagram(format: Format, envelope: Envelope) -> (Vec<u8>, Vec<u8>) {
        let msg = Message::new(
            Tci(7),
            format,
            MeId::new(MeClass::SOFTWARE_IMAGE, 1),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: 31,
                image_size: 20_000,
                instances: [1u16].into_iter().collect(),
            }),
        );
        let frame = Codec::new(ExtendedTrailer::Crc32).to_vec(&msg).unwrap();
        (envelope.wrap(&frame), frame)
    }

    #[test]
    fn the_lab_framing_is_the_identity() {
        let (d, _) = lab_datagram(Format::Baseline, Envelope::omcc(OnuId(3)));
        assert_eq!(Framing::Lab.to_wire(d.clone()).unwrap(), d);
        assert_eq!(&*Framing::Lab.from_wire(&d).unwrap(), &d[..]);
    }

    #[test]
    fn obbaa_takes_the_envelope_and_the_trailer_off_and_puts_them_back() {
        let cterm = CtermName::new("CT_1").unwrap();
        let f = Framing::obbaa(cterm);
        for format in [Format::Baseline, Format::Extended] {
            let (lab, frame) = lab_datagram(format, Envelope::omcc(OnuId(3)));
            let wire = f.to_wire(lab.clone()).unwrap();
            assert_eq!(&wire[..4], b"CT_1");
            assert!(wire[4..30].iter().all(|b| *b == 0));
            assert_eq!(&wire[30..32], &[0, 3]);
            assert_eq!(&wire[32..], &frame[..frame.len() - 4], "{format:?}");
            // And back: the same lab datagram (the envelope of ONU 3's OMCC, the trailer).
            assert_eq!(&*f.from_wire(&wire).unwrap(), &lab[..], "{format:?}");
        }
    }

    #[test]
    fn obbaa_refuses_the_group_window_fields_and_other_channel_terminations() {
        let f = Framing::obbaa(CtermName::new("CT_1").unwrap());
        let (group, _) = lab_datagram(Format::Baseline, Envelope::omcc(ALL_ONUS));
        assert!(matches!(f.to_wire(group), Err(FramingError::Multicast)));
        let windowed = Envelope {
            window_no: Some(WindowNo(4)),
            ..Envelope::omcc(OnuId(1))
        };
        let (d, _) = lab_datagram(Format::Baseline, windowed);
        assert!(matches!(f.to_wire(d), Err(FramingError::WindowFields)));
        let other = Framing::obbaa(CtermName::new("CT_2").unwrap());
        let (d, _) = lab_datagram(Format::Baseline, Envelope::omcc(OnuId(1)));
        let wire = other.to_wire(d).unwrap();
        let e = f.from_wire(&wire).unwrap_err();
        assert!(matches!(e, FramingError::OtherCterm { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "a datagram of channel termination \"CT_2\", not \"CT_1\""
        );
        // A processing error's missing-section bitmap is a hint: left out, not refused.
        let missing = Envelope {
            missing: Some([0xFF; 32]),
            ..Envelope::omcc(OnuId(1))
        };
        let get = Message::new(
            Tci(9),
            Format::Baseline,
            MeId::new(MeClass::ONU_G, 0),
            Contents::GetRequest(GetRequest {
                attribute_mask: 0x8000,
            }),
        );
        let frame = Codec::default().to_vec(&get).unwrap();
        let wire = f.to_wire(missing.wrap(&frame)).unwrap();
        assert_eq!(wire.len(), 32 + 44);
    }

    #[test]
    fn only_loopback_and_multicast_addresses_pass() {
        assert!(loopback("127.0.0.1:1".parse().unwrap()).is_ok());
        assert!(loopback("127.3.2.1:1".parse().unwrap()).is_ok());
        assert!(loopback("10.0.0.1:1".parse().unwrap()).is_err());
        assert!(loopback("0.0.0.0:1".parse().unwrap()).is_err());
        assert!(loopback("[::1]:1".parse().unwrap()).is_err());
        assert!(multicast_group("239.255.0.1:47000".parse().unwrap()).is_ok());
        assert!(multicast_group("127.0.0.1:47000".parse().unwrap()).is_err());
    }

    #[test]
    fn the_broadcast_address_and_port_0_are_refused_in_one_line() {
        let e = parse_loopback("127.255.255.255:40001").unwrap_err();
        assert!(
            e.contains("broadcast address") && e.contains("127.0.0.1"),
            "{e}"
        );
        let e = parse_loopback("127.0.0.1:0").unwrap_err();
        assert!(e.contains("port 0") && e.contains("1 to 65535"), "{e}");
        let e = parse_group("239.255.0.1:0").unwrap_err();
        assert!(e.contains("port 0"), "{e}");
        assert!(parse_loopback("127.0.0.1:1").is_ok());
        assert!(parse_loopback("127.255.255.254:65535").is_ok());
        // A socket may still be bound to port 0 (the kernel's choice), never to the broadcast.
        assert!(loopback("127.0.0.1:0".parse().unwrap()).is_ok());
        assert!(loopback("127.255.255.255:1".parse().unwrap()).is_err());
        for e in [
            parse_loopback("10.0.0.1:1").unwrap_err(),
            parse_loopback("127.0.0.1").unwrap_err(),
            parse_group("127.0.0.1:47000").unwrap_err(),
        ] {
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 1024, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn address_parsers_never_panic_and_keep_their_promise(
            s in proptest::prop_oneof![
                "\\PC{0,32}",
                "(127|239|10|0|255)\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,6}",
                "\\[[0-9a-f:]{0,12}\\]:[0-9]{1,5}",
            ]
        ) {
            if let Ok(a) = parse_loopback(&s) {
                proptest::prop_assert!(a.ip().is_loopback() && *a.ip() != LOOPBACK_BROADCAST);
                proptest::prop_assert!(a.port() != 0);
            }
            if let Ok(g) = parse_group(&s) {
                proptest::prop_assert!(g.ip().is_multicast() && g.port() != 0);
            }
        }
    }

    #[test]
    fn multicast_sockets_stay_on_loopback_with_ttl_0() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 99), 47999);
        for s in [
            bind_multicast_receiver(group).unwrap(),
            bind_multicast_sender(SocketAddrV4::new(LOOPBACK, 0)).unwrap(),
        ] {
            let s = Socket::from(s);
            assert_eq!(s.multicast_if_v4().unwrap(), LOOPBACK);
            assert_eq!(s.multicast_ttl_v4().unwrap(), 0);
            assert!(s.multicast_loop_v4().unwrap());
        }
    }

    #[test]
    fn a_batch_sent_in_one_call_is_received_in_one_call_in_order() {
        let rx = bind_unicast(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        let to = match rx.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!(),
        };
        let tx = bind_unicast(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        let payloads: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
        let batch: Vec<(&[u8], SocketAddrV4)> =
            payloads.iter().map(|p| (p.as_slice(), to)).collect();
        assert_eq!(send_batch(&tx, &batch).unwrap(), 100);
        let mut got = Vec::new();
        let mut rb = RecvBatch::new();
        let from = tx.local_addr().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while got.len() < 100 && std::time::Instant::now() < deadline {
            match rb.recv(&rx) {
                Ok(n) => {
                    assert!(n <= BATCH);
                    for i in 0..n {
                        let (d, a) = rb.datagram(i);
                        assert_eq!(a.map(SocketAddr::V4), Some(from));
                        got.push(d.to_vec());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, payloads);
        // Longer than the lab's largest datagram: dropped and counted, never cut short.
        tx.send_to(&vec![7u8; MAX_DATAGRAM + 1], to).unwrap();
        tx.send_to(b"after", to).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(rb.recv(&rx).unwrap(), 1);
        assert_eq!(rb.datagram(0).0, b"after");
        assert_eq!(rb.truncated(), 1);
        // Nothing waiting: WouldBlock, not an empty success.
        assert_eq!(rb.recv(&rx).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn runs_to_the_group_arrive_as_the_same_datagrams_in_order() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 97), 47997);
        let rxs = [
            bind_multicast_receiver(group).unwrap(),
            bind_multicast_receiver(group).unwrap(),
        ];
        let tx = bind_multicast_sender(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        // A window: 31 sections of one size, a shorter one, an AR section longer than all;
        // then one of another size, twice. Segmentation must not change a byte or the order.
        let mut payloads: Vec<Vec<u8>> = (0..31u8).map(|i| vec![i; 64]).collect();
        payloads.push(vec![0xEE; 20]);
        payloads.push(vec![0xAA; 70]);
        payloads.push(vec![1; 100]);
        payloads.push(vec![2; 100]);
        let batch: Vec<(&[u8], SocketAddrV4)> =
            payloads.iter().map(|p| (p.as_slice(), group)).collect();
        assert_eq!(gso_run(&batch), 32, "31 of one size and a shorter last");
        assert_eq!(
            gso_run(&batch[32..]),
            1,
            "a longer one starts a run of its own"
        );
        assert_eq!(send_batch(&tx, &batch).unwrap(), payloads.len());
        assert!(
            segmentation_offload(),
            "this kernel refused UDP segmentation offload (Linux 4.18 and later have it)"
        );
        for rx in &rxs {
            let mut got = Vec::new();
            let mut rb = RecvBatch::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while got.len() < payloads.len() && std::time::Instant::now() < deadline {
                match rb.recv(rx) {
                    Ok(n) => (0..n).for_each(|i| got.push(rb.datagram(i).0.to_vec())),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, payloads);
        }
    }

    #[test]
    fn every_receiver_of_the_group_gets_each_datagram() {
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 98), 47998);
        let a = bind_multicast_receiver(group).unwrap();
        let b = bind_multicast_receiver(group).unwrap();
        let tx = bind_multicast_sender(SocketAddrV4::new(LOOPBACK, 0)).unwrap();
        tx.send_to(b"window", group).unwrap();
        for rx in [a, b] {
            rx.set_nonblocking(false).unwrap();
            rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"window");
            assert!(from.ip().is_loopback());
        }
    }
}
