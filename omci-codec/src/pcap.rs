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
//! Capture files are classic pcap (link type Ethernet, microsecond stamps) when written; pcap
//! and pcapng are both read.

use std::io::{Read, Write};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};

use crate::ids::OnuId;

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

/// Writes OMCI frames to a pcap file (link type Ethernet).
pub struct CaptureWriter<W: Write> {
    inner: PcapWriter<W>,
}

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture: writes the pcap global header.
    pub fn new(writer: W) -> Result<Self, PcapError> {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..PcapHeader::default()
        };
        Ok(Self {
            inner: PcapWriter::with_header(writer, header)?,
        })
    }

    /// Appends one OMCI frame with its time stamp (since the Unix epoch, or since any origin
    /// the caller chooses: a simulated clock's zero, say).
    pub fn write(
        &mut self,
        timestamp: Duration,
        direction: Direction,
        peer: Peer,
        omci: &[u8],
    ) -> Result<(), PcapError> {
        let frame = ethernet_frame(direction, peer, omci);
        let packet = PcapPacket::new(timestamp, frame.len() as u32, &frame);
        self.inner.write_packet(&packet)?;
        Ok(())
    }

    /// Ends the capture and gives the writer back.
    pub fn into_inner(self) -> W {
        self.inner.into_writer()
    }
}

/// One packet of a capture file: its time stamp and its link-layer bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedPacket {
    /// Time stamp (since the Unix epoch, by pcap convention).
    pub timestamp: Duration,
    /// The Ethernet frame.
    pub data: Vec<u8>,
}

/// Reads every packet of a pcap or pcapng file (told apart by their magic numbers).
pub fn read_capture<R: Read>(mut reader: R) -> Result<Vec<CapturedPacket>, PcapError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(PcapError::IoError)?;
    let mut out = Vec::new();
    if bytes.starts_with(&[0x0A, 0x0D, 0x0D, 0x0A]) {
        let mut ng = PcapNgReader::new(&bytes[..])?;
        while let Some(block) = ng.next_block() {
            match block? {
                Block::EnhancedPacket(p) => out.push(CapturedPacket {
                    timestamp: p.timestamp,
                    data: p.data.into_owned(),
                }),
                Block::SimplePacket(p) => out.push(CapturedPacket {
                    timestamp: Duration::ZERO,
                    data: p.data.into_owned(),
                }),
                _ => {}
            }
        }
    } else {
        let mut pcap = PcapReader::new(&bytes[..])?;
        while let Some(packet) = pcap.next_packet() {
            let packet = packet?;
            out.push(CapturedPacket {
                timestamp: packet.timestamp,
                data: packet.data.into_owned(),
            });
        }
    }
    Ok(out)
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
        let packets = read_capture(&bytes[..]).unwrap();
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].timestamp, Duration::from_micros(1_500_000));
        let second = parse_ethernet(&packets[1].data).unwrap();
        assert_eq!(second.peer, Some(Peer::Onu(OnuId(3))));
        assert_eq!(second.omci, &[4, 5]);
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
