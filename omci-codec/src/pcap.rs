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
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError, TsResolution};

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
    /// True when the packet's link type is Ethernet (the only one that carries OMCI here).
    pub ethernet: bool,
    /// The link-layer frame.
    pub data: Vec<u8>,
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

/// Reads the packets of a pcap or pcapng file (told apart by their magic numbers). Fails only
/// when the file's own header cannot be read; a damaged record later on ends the reading and
/// is reported in [`Capture::stopped`].
pub fn read_capture<R: Read>(mut reader: R) -> Result<Capture, PcapError> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(PcapError::IoError)?;
    let mut capture = Capture::default();
    if bytes.starts_with(&[0x0A, 0x0D, 0x0D, 0x0A]) {
        let mut ng = PcapNgReader::new(&bytes[..])?;
        while let Some(block) = ng.next_block() {
            let (interface, ticks, data) = match block {
                Err(e) => {
                    capture.stopped = Some(e.to_string());
                    break;
                }
                // pcap-file reads the raw time stamp as nanoseconds whatever the interface's
                // resolution; the raw ticks are rescaled below.
                Ok(Block::EnhancedPacket(p)) => (
                    Some(p.interface_id),
                    p.timestamp.as_nanos(),
                    p.data.into_owned(),
                ),
                Ok(Block::SimplePacket(p)) => (Some(0), 0, p.data.into_owned()),
                Ok(_) => continue,
            };
            let iface = interface.and_then(|i| ng.interfaces().get(i as usize));
            let resolution = iface
                .and_then(|i| {
                    i.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                        _ => None,
                    })
                })
                .unwrap_or(6);
            capture.packets.push(CapturedPacket {
                timestamp: ticks_to_duration(ticks, resolution),
                ethernet: iface.is_some_and(|i| i.linktype == DataLink::ETHERNET),
                data,
            });
        }
    } else {
        let mut pcap = PcapReader::new(&bytes[..])?;
        let header = pcap.header();
        let frac_ns = match header.ts_resolution {
            TsResolution::MicroSecond => 1_000,
            TsResolution::NanoSecond => 1,
        };
        // Raw records: a capture made with a snap length shorter than its packets is still read.
        while let Some(packet) = pcap.next_raw_packet() {
            match packet {
                Ok(p) => capture.packets.push(CapturedPacket {
                    timestamp: Duration::from_secs(u64::from(p.ts_sec))
                        + Duration::from_nanos(u64::from(p.ts_frac) * frac_ns),
                    ethernet: header.datalink == DataLink::ETHERNET,
                    data: p.data.into_owned(),
                }),
                Err(e) => {
                    capture.stopped = Some(e.to_string());
                    break;
                }
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
