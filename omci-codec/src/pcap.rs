//! OMCI frames in packet captures.
//!
//! Convention (that of the community Wireshark OMCI dissector and of OMCI analysis tools): each
//! OMCI frame is the payload of an Ethernet II frame with EtherType 0x88B5; the frame's
//! direction and ONU are told by its MAC addresses, which this lab derives from ids:
//!
//! | who                          | MAC address           |
//! |------------------------------|-----------------------|
//! | the OLT                      | `02:4f:4c:54:00:00`   |
//! | ONU `n` (0..=65535)          | `02:4f:4e:55:hi:lo`   |
//! | the multicast download group | `03:4f:4e:55:ff:ff`   |
//!
//! (`4f 4c 54` is "OLT", `4f 4e 55` is "ONU"; the first byte marks a locally administered
//! address, with the group bit set for the multicast group.) Downstream frames go from the OLT
//! to an ONU or to the group; upstream frames from an ONU to the OLT.
//!
//! Capture files are pcapng when written: one section, one Ethernet interface with nanosecond
//! time stamps, an Enhanced Packet Block per frame. A frame written with its transport envelope
//! ([`CaptureWriter::write_enveloped`]) carries the envelope's fields as the packet's comment
//! ([`comment`]: `omci-envelope/1 onu-id=65535 gem-port=4000 window=17 ...`), so that what the
//! envelope said (the window number above all, which G.988 does not carry) is in the capture
//! and nothing has to be guessed back. pcap and pcapng are both read as a stream, with memory
//! bounded whatever the file ([`CaptureReader`], in [`read`]); [`read_capture`] collects a
//! file's packets; [`merge_captures`] joins captures into one, comments kept.

use std::io::{Read, Write};
use std::time::Duration;

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness, PcapError};

use crate::envelope::{ALL_ONUS, Envelope};
use crate::ids::OnuId;

pub mod comment;
pub mod read;

pub use comment::{CommentError, envelope_comment, parse_envelope_comment};
pub use read::{CaptureError, CaptureReader, MAX_PACKET_LEN};

/// EtherType that marks an OMCI frame.
pub const ETHERTYPE_OMCI: u16 = 0x88B5;
/// MAC address of the OLT in captures.
pub const OLT_MAC: [u8; 6] = [0x02, 0x4f, 0x4c, 0x54, 0x00, 0x00];
/// MAC address of the multicast software-download group in captures.
pub const MULTICAST_MAC: [u8; 6] = [0x03, 0x4f, 0x4e, 0x55, 0xff, 0xff];
/// Bytes of the Ethernet II header before the OMCI frame.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// The shortest Ethernet frame without FCS: shorter frames on a real link are zero padded.
pub const ETHERNET_MIN_LEN: usize = 60;

/// MAC address of ONU `onu` in captures.
pub fn onu_mac(onu: OnuId) -> [u8; 6] {
    let [hi, lo] = onu.0.to_be_bytes();
    [0x02, 0x4f, 0x4e, 0x55, hi, lo]
}

/// The ONU a MAC address of this convention names, if it names one.
pub fn onu_of_mac(mac: &[u8; 6]) -> Option<OnuId> {
    (mac[..4] == [0x02, 0x4f, 0x4e, 0x55]).then(|| OnuId(u16::from_be_bytes([mac[4], mac[5]])))
}

/// Which way a captured frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// OLT to ONU (or to the multicast group).
    Downstream,
    /// ONU to OLT.
    Upstream,
}

impl Direction {
    /// `"downstream"` or `"upstream"`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Downstream => "downstream",
            Direction::Upstream => "upstream",
        }
    }
}

/// Who a captured frame was between: the OLT and one ONU, or the OLT and the multicast group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Peer {
    /// One ONU.
    Onu(OnuId),
    /// The multicast download group (downstream only).
    Multicast,
}

impl Peer {
    /// The peer an envelope names: the group for [`ALL_ONUS`], else its ONU.
    pub fn of(envelope: &Envelope) -> Self {
        if envelope.onu_id == ALL_ONUS {
            Peer::Multicast
        } else {
            Peer::Onu(envelope.onu_id)
        }
    }
}

/// The Ethernet frame that carries `omci` between the OLT and `peer`.
pub fn ethernet_frame(direction: Direction, peer: Peer, omci: &[u8]) -> Vec<u8> {
    let peer_mac = match peer {
        Peer::Onu(onu) => onu_mac(onu),
        Peer::Multicast => MULTICAST_MAC,
    };
    let (dst, src) = match direction {
        Direction::Downstream => (peer_mac, OLT_MAC),
        Direction::Upstream => (OLT_MAC, peer_mac),
    };
    let mut frame = Vec::with_capacity(ETHERNET_HEADER_LEN + omci.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ETHERTYPE_OMCI.to_be_bytes());
    frame.extend_from_slice(omci);
    frame
}

/// An OMCI frame found in an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetOmci<'a> {
    /// Which way it went, from the source MAC (`None` when neither MAC is this lab's OLT).
    pub direction: Option<Direction>,
    /// The ONU or group on the other end, when the MACs follow this lab's convention.
    pub peer: Option<Peer>,
    /// Source MAC.
    pub src: [u8; 6],
    /// Destination MAC.
    pub dst: [u8; 6],
    /// The OMCI frame, possibly followed by Ethernet padding (see [`omci_frame_len`]).
    pub omci: &'a [u8],
}

/// The OMCI frame of an Ethernet frame, or `None` when it is not EtherType 0x88B5.
pub fn parse_ethernet(frame: &[u8]) -> Option<EthernetOmci<'_>> {
    if frame.len() < ETHERNET_HEADER_LEN
        || u16::from_be_bytes([frame[12], frame[13]]) != ETHERTYPE_OMCI
    {
        return None;
    }
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&frame[0..6]);
    src.copy_from_slice(&frame[6..12]);
    let (direction, peer) = if src == OLT_MAC {
        let peer = if dst == MULTICAST_MAC {
            Some(Peer::Multicast)
        } else {
            onu_of_mac(&dst).map(Peer::Onu)
        };
        (Some(Direction::Downstream), peer)
    } else if dst == OLT_MAC {
        (Some(Direction::Upstream), onu_of_mac(&src).map(Peer::Onu))
    } else {
        (None, None)
    };
    Some(EthernetOmci {
        direction,
        peer,
        src,
        dst,
        omci: &frame[ETHERNET_HEADER_LEN..],
    })
}

/// The length of the OMCI frame at the front of `bytes` by its own header (48 for baseline,
/// 10 + length + `trailer_len` for extended), so that Ethernet padding after a short frame
/// can be cut off. `None` when the header cannot tell.
pub fn omci_frame_len(bytes: &[u8], extended_trailer_len: usize) -> Option<usize> {
    match bytes.get(3)? {
        0x0A => Some(crate::frame::BASELINE_LEN),
        0x0B => {
            let len = u16::from_be_bytes([*bytes.get(8)?, *bytes.get(9)?]);
            Some(crate::frame::EXTENDED_HEADER_LEN + usize::from(len) + extended_trailer_len)
        }
        _ => None,
    }
}

/// Writes OMCI frames to a pcapng file: one section, one Ethernet interface (nanosecond time
/// stamps), one Enhanced Packet Block per frame.
pub struct CaptureWriter<W: Write> {
    inner: PcapNgWriter<W>,
}

/// The section's comment: how to read the packets' comments.
const SECTION_COMMENT: &str = "OMCI frames (EtherType 0x88B5) of the GPON OMCI software-download \
     lab. A packet comment \"omci-envelope/1 ...\" holds the lab's transport envelope of the \
     frame (ONU-ID, GEM port, window number, window CRC, missing sections): see docs/wire.md.";

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture: writes the section header and the interface description.
    pub fn new(writer: W) -> Result<Self, PcapError> {
        let section = SectionHeaderBlock {
            endianness: Endianness::native(),
            options: vec![
                SectionHeaderOption::UserApplication(
                    concat!("omci-codec ", env!("CARGO_PKG_VERSION")).into(),
                ),
                SectionHeaderOption::Comment(SECTION_COMMENT.into()),
            ],
            ..SectionHeaderBlock::default()
        };
        let mut inner = PcapNgWriter::with_section_header(writer, section)?;
        inner.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0, // no limit
            options: vec![
                InterfaceDescriptionOption::IfName("omci".into()),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })?;
        Ok(Self { inner })
    }

    /// Appends one OMCI frame with its time stamp (since the Unix epoch, or since any origin
    /// the caller chooses: a simulated clock's zero, say), without an envelope comment.
    pub fn write(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        peer: Peer,
        omci: &[u8],
    ) -> Result<(), PcapError> {
        self.write_ethernet(timestamp, &ethernet_frame(direction, peer, omci), &[])
    }

    /// Appends one OMCI frame as it travelled behind `envelope`: the peer is the one the
    /// envelope names ([`Peer::of`]) and the envelope's fields become the packet's comment
    /// ([`envelope_comment`]).
    pub fn write_enveloped(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        envelope: &Envelope,
        omci: &[u8],
    ) -> Result<(), PcapError> {
        let frame = ethernet_frame(direction, Peer::of(envelope), omci);
        self.write_ethernet(timestamp, &frame, &[envelope_comment(envelope)])
    }

    /// Appends a packet read from a capture as it is: its bytes, its time stamp, its comments.
    /// Only Ethernet packets can be written (the capture has one Ethernet interface).
    pub fn write_packet(&mut self, packet: &CapturedPacket) -> Result<(), PcapError> {
        if !packet.ethernet {
            return Err(PcapError::InvalidField(
                "CaptureWriter: only Ethernet packets are written",
            ));
        }
        self.write_ethernet(packet.timestamp, &packet.data, &packet.comments)
    }

    fn write_ethernet(
        &mut self,
        timestamp: Duration,
        frame: &[u8],
        comments: &[String],
    ) -> Result<(), PcapError> {
        let len = u32::try_from(frame.len())
            .map_err(|_| PcapError::InvalidField("CaptureWriter: packet over 4 GiB"))?;
        self.inner.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // Written as nanoseconds: the interface's resolution (if_tsresol 9).
            timestamp,
            original_len: len,
            data: frame.into(),
            options: comments
                .iter()
                .map(|c| EnhancedPacketOption::Comment(c.as_str().into()))
                .collect(),
        })?;
        Ok(())
    }

    /// Ends the capture and gives the writer back.
    pub fn into_inner(self) -> W {
        self.inner.into_inner()
    }
}

/// Writes the Ethernet packets of `captures`, in order, into one capture on `out`, each with
/// its time stamp and its comments (the envelopes of a lab capture), and gives `out` back.
/// Packets of other link types are left out.
pub fn merge_captures<'a, W: Write>(
    captures: impl IntoIterator<Item = &'a Capture>,
    out: W,
) -> Result<W, PcapError> {
    let mut w = CaptureWriter::new(out)?;
    for capture in captures {
        for packet in capture.packets.iter().filter(|p| p.ethernet) {
            w.write_packet(packet)?;
        }
    }
    Ok(w.into_inner())
}

/// One packet of a capture file: its time stamp and its link-layer bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// Time stamp (since the Unix epoch, by pcap convention).
    pub timestamp: Duration,
    /// True when the packet's link type is Ethernet (the only one that carries OMCI here).
    pub ethernet: bool,
    /// The link-layer frame.
    pub data: Vec<u8>,
    /// The packet's comments (pcapng `opt_comment`; none in a classic pcap), in file order.
    pub comments: Vec<String>,
}

impl CapturedPacket {
    /// The transport envelope the packet's comment records, if it has an envelope comment
    /// ([`comment`]): `Some(Err(..))` when that comment is damaged.
    pub fn envelope(&self) -> Option<Result<Envelope, CommentError>> {
        self.comments
            .iter()
            .find_map(|c| parse_envelope_comment(c).transpose())
    }
}

/// What could be read from a capture file.
#[derive(Debug, Default)]
pub struct Capture {
    /// Every packet read, in file order.
    pub packets: Vec<CapturedPacket>,
    /// Why reading stopped before the end of the file, if it did: the packets before the fault
    /// are kept.
    pub stopped: Option<String>,
}

/// Reads the packets of a pcap or pcapng file (told apart by their magic numbers) into memory:
/// for captures this lab wrote; [`CaptureReader`] reads any file one packet at a time. Fails
/// only when the file's own header cannot be read; a damaged record later on ends the reading
/// and is reported in [`Capture::stopped`].
pub fn read_capture<R: Read>(reader: R) -> Result<Capture, CaptureError> {
    let mut capture = Capture::default();
    for packet in CaptureReader::new(reader)? {
        match packet {
            Ok(p) => capture.packets.push(p),
            Err(e) => {
                capture.stopped = Some(e.to_string());
                break;
            }
        }
    }
    Ok(capture)
}

/// A pcapng time stamp in units of its interface's `if_tsresol`: 10^-r seconds, or 2^-r when
/// the top bit of r is set.
fn ticks_to_duration(ticks: u128, resolution: u8) -> Duration {
    let nanos = if resolution & 0x80 != 0 {
        ticks.saturating_mul(1_000_000_000) >> u32::from(resolution & 0x7F).min(127)
    } else if resolution <= 9 {
        ticks.saturating_mul(10u128.pow(9 - u32::from(resolution)))
    } else {
        ticks / 10u128.pow(u32::from(resolution).min(38) - 9)
    };
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_name_their_owner() {
        let m = onu_mac(OnuId(0x0102));
        assert_eq!(m, [0x02, 0x4f, 0x4e, 0x55, 0x01, 0x02]);
        assert_eq!(onu_of_mac(&m), Some(OnuId(0x0102)));
        assert_eq!(onu_of_mac(&OLT_MAC), None);
        assert_eq!(MULTICAST_MAC[0] & 1, 1, "group bit set");
    }

    #[test]
    fn ethernet_mirror() {
        let omci = [0xa5u8; 48];
        for (dir, peer) in [
            (Direction::Downstream, Peer::Onu(OnuId(7))),
            (Direction::Upstream, Peer::Onu(OnuId(7))),
            (Direction::Downstream, Peer::Multicast),
        ] {
            let frame = ethernet_frame(dir, peer, &omci);
            let back = parse_ethernet(&frame).unwrap();
            assert_eq!(back.direction, Some(dir));
            assert_eq!(back.peer, Some(peer));
            assert_eq!(back.omci, &omci[..]);
        }
        let mut not_omci = ethernet_frame(Direction::Upstream, Peer::Multicast, &omci);
        not_omci[12] = 0x08;
        assert!(parse_ethernet(&not_omci).is_none());
    }

    #[test]
    fn capture_written_reads_back() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write(
            Duration::from_micros(1_500_000),
            Direction::Downstream,
            Peer::Multicast,
            &[1, 2, 3],
        )
        .unwrap();
        w.write(
            Duration::from_micros(1_600_000),
            Direction::Upstream,
            Peer::Onu(OnuId(3)),
            &[4, 5],
        )
        .unwrap();
        let bytes = w.into_inner();
        let capture = read_capture(&bytes[..]).unwrap();
        assert_eq!(capture.stopped, None);
        let packets = capture.packets;
        assert_eq!(packets.len(), 2);
        assert!(packets.iter().all(|p| p.ethernet));
        assert_eq!(packets[0].timestamp, Duration::from_micros(1_500_000));
        let second = parse_ethernet(&packets[1].data).unwrap();
        assert_eq!(second.peer, Some(Peer::Onu(OnuId(3))));
        assert_eq!(second.omci, &[4, 5]);
    }

    #[test]
    fn captures_are_pcapng_with_nanosecond_stamps() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        let t = Duration::new(1_700_000_000, 123_456_789);
        w.write(t, Direction::Upstream, Peer::Onu(OnuId(1)), &[0xa5; 48])
            .unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes[..4], [0x0A, 0x0D, 0x0D, 0x0A], "a pcapng section");
        let mut ng = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
        let mut interfaces = 0;
        while let Some(block) = ng.next_block() {
            if let pcap_file::pcapng::Block::InterfaceDescription(i) = block.unwrap() {
                interfaces += 1;
                assert_eq!(i.linktype, DataLink::ETHERNET);
                assert!(
                    i.options
                        .contains(&InterfaceDescriptionOption::IfTsResol(9))
                );
            }
        }
        assert_eq!(interfaces, 1);
        let capture = read_capture(&bytes[..]).unwrap();
        assert_eq!(capture.packets[0].timestamp, t, "nanoseconds kept");
        assert!(capture.packets[0].comments.is_empty());
        assert_eq!(capture.packets[0].envelope(), None);
    }

    #[test]
    fn an_enveloped_frame_keeps_what_its_envelope_said() {
        let group = Envelope {
            onu_id: ALL_ONUS,
            gem_port: crate::ids::GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(crate::ids::WindowNo(17)),
            window_crc: Some(0x1a2b_3c4d),
            missing: None,
        };
        let mut missing = [0u8; crate::envelope::MISSING_LEN];
        missing[0] = 0b0000_0110;
        let answer = Envelope {
            missing: Some(missing),
            ..Envelope::omcc(OnuId(3))
        };
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write_enveloped(
            Duration::from_secs(1),
            Direction::Downstream,
            &group,
            &[1; 48],
        )
        .unwrap();
        w.write_enveloped(
            Duration::from_secs(2),
            Direction::Upstream,
            &answer,
            &[2; 48],
        )
        .unwrap();
        let capture = read_capture(&w.into_inner()[..]).unwrap();
        let [first, second] = &capture.packets[..] else {
            panic!("{:?}", capture.packets)
        };
        assert_eq!(first.envelope(), Some(Ok(group)));
        assert_eq!(
            first.comments,
            ["omci-envelope/1 onu-id=65535 gem-port=4000 window=17 window-crc=0x1a2b3c4d"]
        );
        assert_eq!(
            parse_ethernet(&first.data).unwrap().peer,
            Some(Peer::Multicast)
        );
        assert_eq!(second.envelope(), Some(Ok(answer)));
        assert_eq!(
            second.comments,
            ["omci-envelope/1 onu-id=3 gem-port=3 missing=1-2"]
        );
        let eth = parse_ethernet(&second.data).unwrap();
        assert_eq!(eth.peer, Some(Peer::Onu(OnuId(3))));
        assert_eq!(eth.direction, Some(Direction::Upstream));
        assert_eq!(eth.omci, &[2; 48]);
    }

    #[test]
    fn a_damaged_envelope_comment_is_told_not_dropped() {
        let packet = CapturedPacket {
            timestamp: Duration::ZERO,
            ethernet: true,
            data: Vec::new(),
            comments: vec![
                "seen twice".into(),
                "omci-envelope/1 onu-id=1 gem-port=x".into(),
            ],
        };
        assert!(matches!(
            packet.envelope(),
            Some(Err(CommentError::Value { .. }))
        ));
    }

    #[test]
    fn merged_captures_keep_order_stamps_and_envelopes() {
        let mut a = CaptureWriter::new(Vec::new()).unwrap();
        a.write_enveloped(
            Duration::from_secs(1),
            Direction::Downstream,
            &Envelope::omcc(OnuId(1)),
            &[1; 48],
        )
        .unwrap();
        a.write(
            Duration::from_secs(2),
            Direction::Upstream,
            Peer::Onu(OnuId(1)),
            &[2; 48],
        )
        .unwrap();
        let a = read_capture(&a.into_inner()[..]).unwrap();
        // A classic pcap, as older captures of the lab are: its packets have no comments.
        let mut classic = pcap_file::pcap::PcapWriter::new(Vec::new()).unwrap();
        let frame = ethernet_frame(Direction::Upstream, Peer::Onu(OnuId(2)), &[3; 48]);
        classic
            .write_packet(&pcap_file::pcap::PcapPacket::new(
                Duration::from_secs(3),
                frame.len() as u32,
                &frame,
            ))
            .unwrap();
        let b = read_capture(&classic.into_writer()[..]).unwrap();
        assert_eq!(b.packets.len(), 1);
        let merged = merge_captures([&a, &b], Vec::new()).unwrap();
        let merged = read_capture(&merged[..]).unwrap();
        assert_eq!(merged.stopped, None);
        let expected: Vec<CapturedPacket> = a.packets.iter().chain(&b.packets).cloned().collect();
        assert_eq!(merged.packets, expected);
        assert_eq!(
            merged.packets[0].envelope(),
            Some(Ok(Envelope::omcc(OnuId(1))))
        );
    }

    #[test]
    fn a_damaged_record_keeps_what_came_before() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        for i in 0..3u8 {
            w.write(
                Duration::from_secs(1),
                Direction::Upstream,
                Peer::Onu(OnuId(1)),
                &[i; 48],
            )
            .unwrap();
        }
        let mut bytes = w.into_inner();
        bytes.truncate(bytes.len() - 10);
        let capture = read_capture(&bytes[..]).unwrap();
        assert_eq!(capture.packets.len(), 2);
        assert!(capture.stopped.is_some());
    }

    #[test]
    fn pcapng_resolutions() {
        assert_eq!(ticks_to_duration(1_500_000, 6), Duration::from_millis(1500));
        assert_eq!(ticks_to_duration(1_500, 3), Duration::from_millis(1500));
        assert_eq!(ticks_to_duration(7, 9), Duration::from_nanos(7));
        assert_eq!(
            ticks_to_duration(3 << 20, 0x80 | 20),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn frame_len_from_header() {
        assert_eq!(omci_frame_len(&[0, 0, 0x53, 0x0A], 0), Some(48));
        let ext = [0, 0, 0x53, 0x0B, 0, 7, 0, 1, 0, 8];
        assert_eq!(omci_frame_len(&ext, 4), Some(22));
        assert_eq!(omci_frame_len(&[0, 0, 0, 0x0C], 0), None);
        assert_eq!(omci_frame_len(&[0, 0], 0), None);
    }
}
