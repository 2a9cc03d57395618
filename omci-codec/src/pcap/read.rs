//! Reading capture files as a stream: one packet at a time, with memory bounded whatever the
//! file, and never a panic.
//!
//! Both formats are read here, told apart by their first four bytes:
//!
//! - pcap (libpcap's classic format): a 24-byte file header (magic `a1b2c3d4` for microsecond
//!   or `a1b23c4d` for nanosecond time stamps, in the writer's byte order, then the link type
//!   at bytes 20..24), then records of a 16-byte header (seconds, fraction, captured length,
//!   original length) and the captured bytes;
//! - pcapng: blocks of type, total length, body and total length again. Section headers
//!   (`0a0d0d0a`, whose byte-order magic sets the order of what follows), interface
//!   descriptions (link type, `if_tsresol`), enhanced and simple packets (with their comments)
//!   are read; every other block is skipped without being held in memory.
//!
//! No accessor panics: each reads a field of a buffer whose length was checked first (the
//! fixed fields of a block before its accessors, a whole block before its fields).
//!
//! Every length is checked before anything is read into memory: a packet longer than
//! [`MAX_PACKET_LEN`] or a block to be read longer than [`MAX_BLOCK_LEN`] is an error, not an
//! allocation, and so are more than [`MAX_INTERFACES`] interfaces in a section. After an
//! error the reader ends; the packets before it have been given.

use std::io::{self, Read};
use std::time::Duration;

use super::CapturedPacket;

/// The longest packet read: tcpdump's largest snap length. An OMCI frame in an Ethernet frame
/// is at most 14 + 1980 bytes.
pub const MAX_PACKET_LEN: usize = 262_144;
/// The longest pcapng block read into memory (a packet with its options, an interface
/// description, a section header); longer blocks of other types are skipped as they stream by.
pub const MAX_BLOCK_LEN: usize = MAX_PACKET_LEN + 65_536;
/// The most interface descriptions a pcapng section may have here.
pub const MAX_INTERFACES: usize = 4096;

/// LINKTYPE_ETHERNET, in pcap file headers and pcapng interface descriptions.
const ETHERNET: u32 = 1;

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Its first bytes are neither a pcap nor a pcapng header.
    #[error("not a pcap or pcapng capture (its first bytes are {0})")]
    NotACapture(String),
    /// It ends inside a header, record or block.
    #[error("it ends in the middle of {0}")]
    Truncated(&'static str),
    /// A packet or block is longer than this reader takes.
    #[error("{what} of {len} bytes is longer than the {max} bytes read at most")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The most read.
        max: usize,
    },
    /// A field holds what the format does not allow.
    #[error("{0}")]
    Malformed(String),
}

/// One interface of a pcapng section: what the packets on it are.
#[derive(Clone, Copy, Debug)]
struct Interface {
    ethernet: bool,
    /// `if_tsresol`: 10^-r s, or 2^-r s with the top bit set (6 unless said).
    resolution: u8,
}

/// What the reader is reading.
#[derive(Debug)]
enum Format {
    Pcap {
        big_endian: bool,
        nanoseconds: bool,
        ethernet: bool,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// A pcap or pcapng file read packet by packet ([`CaptureReader::next`]).
#[derive(Debug)]
pub struct CaptureReader<R: Read> {
    reader: R,
    format: Format,
    /// An error was given (or the end reached): nothing more is read.
    done: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file's header. Fails when the first bytes are not a capture's.
    pub fn new(mut reader: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        match read_full(&mut reader, &mut magic)? {
            4 => {}
            0 => {
                return Err(CaptureError::NotACapture(
                    "missing: the file is empty".into(),
                ));
            }
            _ => return Err(CaptureError::Truncated("the file header")),
        }
        let format = match magic {
            [0x0A, 0x0D, 0x0D, 0x0A] => {
                let mut len = [0u8; 4];
                exact(&mut reader, &mut len, "a section header")?;
                let big_endian = read_section(&mut reader, len)?;
                Format::PcapNg {
                    big_endian,
                    interfaces: Vec::new(),
                }
            }
            _ => {
                let (big_endian, nanoseconds) = match magic {
                    [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
                    [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
                    [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
                    [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
                    m => return Err(CaptureError::NotACapture(hex(&m))),
                };
                let mut rest = [0u8; 20];
                exact(&mut reader, &mut rest, "the file header")?;
                // The link type's low 16 bits (the upper ones may carry FCS information).
                let link = u32_at(&rest, 16, big_endian) & 0xFFFF;
                Format::Pcap {
                    big_endian,
                    nanoseconds,
                    ethernet: link == ETHERNET,
                }
            }
        };
        Ok(CaptureReader {
            reader,
            format,
            done: false,
        })
    }

    /// The next packet, an error (after which there is none), or `None` at the end.
    pub fn next_packet(&mut self) -> Option<Result<CapturedPacket, CaptureError>> {
        if self.done {
            return None;
        }
        let next = match self.format {
            Format::Pcap { .. } => self.next_record(),
            Format::PcapNg { .. } => self.next_block(),
        };
        match next {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn next_record(&mut self) -> Result<Option<CapturedPacket>, CaptureError> {
        let Format::Pcap {
            big_endian,
            nanoseconds,
            ethernet,
        } = self.format
        else {
            return Ok(None);
        };
        let mut header = [0u8; 16];
        match read_full(&mut self.reader, &mut header)? {
            0 => return Ok(None),
            16 => {}
            _ => return Err(CaptureError::Truncated("a record header")),
        }
        let seconds = u32_at(&header, 0, big_endian);
        let fraction = u32_at(&header, 4, big_endian);
        let captured = u32_at(&header, 8, big_endian);
        let len = bounded(u64::from(captured), "a packet", MAX_PACKET_LEN)?;
        let mut data = vec![0u8; len];
        exact(&mut self.reader, &mut data, "a packet")?;
        let fraction_ns = if nanoseconds { 1 } else { 1_000 };
        Ok(Some(CapturedPacket {
            timestamp: Duration::from_secs(u64::from(seconds))
                .saturating_add(Duration::from_nanos(u64::from(fraction) * fraction_ns)),
            ethernet,
            data,
            comments: Vec::new(),
        }))
    }

    fn next_block(&mut self) -> Result<Option<CapturedPacket>, CaptureError> {
        loop {
            let Format::PcapNg { big_endian, .. } = self.format else {
                return Ok(None);
            };
            let mut head = [0u8; 8];
            match read_full(&mut self.reader, &mut head)? {
                0 => return Ok(None),
                8 => {}
                _ => return Err(CaptureError::Truncated("a block header")),
            }
            if head[..4] == [0x0A, 0x0D, 0x0D, 0x0A] {
                // A new section: its own byte order, its own interfaces.
                let len = [head[4], head[5], head[6], head[7]];
                let big_endian = read_section(&mut self.reader, len)?;
                self.format = Format::PcapNg {
                    big_endian,
                    interfaces: Vec::new(),
                };
                continue;
            }
            let kind = u32_at(&head, 0, big_endian);
            let total = u32_at(&head, 4, big_endian);
            if total < 12 || !total.is_multiple_of(4) {
                return Err(CaptureError::Malformed(format!(
                    "a block's length is {total}: a pcapng block is a multiple of 4 bytes, at least 12"
                )));
            }
            // The body and the trailing length.
            let rest = u64::from(total) - 8;
            match kind {
                // Interface description, simple packet, enhanced packet.
                1 | 3 | 6 => {
                    let len = bounded(rest, "a block", MAX_BLOCK_LEN)?;
                    let mut body = vec![0u8; len];
                    exact(&mut self.reader, &mut body, "a block")?;
                    let trailer = u32_at(&body, len - 4, big_endian);
                    if trailer != total {
                        return Err(CaptureError::Malformed(format!(
                            "a block's lengths differ ({total} before it, {trailer} after it)"
                        )));
                    }
                    body.truncate(len - 4);
                    if let Some(p) = self.block(kind, &body)? {
                        return Ok(Some(p));
                    }
                }
                // Anything else streams by.
                _ => {
                    let skipped = io::copy(&mut (&mut self.reader).take(rest), &mut io::sink())?;
                    if skipped < rest {
                        return Err(CaptureError::Truncated("a block"));
                    }
                }
            }
        }
    }

    /// A block read into memory: an interface is noted, a packet given.
    fn block(&mut self, kind: u32, body: &[u8]) -> Result<Option<CapturedPacket>, CaptureError> {
        let Format::PcapNg {
            big_endian,
            interfaces,
        } = &mut self.format
        else {
            return Ok(None);
        };
        let be = *big_endian;
        let short = |what: &str| {
            CaptureError::Malformed(format!("{what} is shorter than its fixed fields"))
        };
        match kind {
            1 => {
                if body.len() < 8 {
                    return Err(short("an interface description"));
                }
                if interfaces.len() == MAX_INTERFACES {
                    return Err(CaptureError::Malformed(format!(
                        "more than {MAX_INTERFACES} interfaces in one section"
                    )));
                }
                let link = u32::from(u16_at(body, 0, be));
                let mut resolution = 6;
                for (code, value) in options(&body[8..], be) {
                    if code == 9 && value.len() == 1 {
                        resolution = value[0];
                    }
                }
                interfaces.push(Interface {
                    ethernet: link == ETHERNET,
                    resolution,
                });
                Ok(None)
            }
            3 => {
                if body.len() < 4 {
                    return Err(short("a simple packet"));
                }
                let original = u32_at(body, 0, be) as usize;
                let data = &body[4..];
                Ok(Some(CapturedPacket {
                    timestamp: Duration::ZERO,
                    ethernet: interfaces.first().is_some_and(|i| i.ethernet),
                    data: data[..original.min(data.len())].to_vec(),
                    comments: Vec::new(),
                }))
            }
            _ => {
                if body.len() < 20 {
                    return Err(short("an enhanced packet"));
                }
                let interface = interfaces.get(u32_at(body, 0, be) as usize).copied();
                let ticks = (u64::from(u32_at(body, 4, be)) << 32) | u64::from(u32_at(body, 8, be));
                let captured =
                    bounded(u64::from(u32_at(body, 12, be)), "a packet", MAX_PACKET_LEN)?;
                let padded = captured.div_ceil(4) * 4;
                let Some(data) = body.get(20..20 + captured) else {
                    return Err(CaptureError::Malformed(format!(
                        "an enhanced packet says {captured} bytes were captured, its block holds {}",
                        body.len() - 20
                    )));
                };
                let comments = options(body.get(20 + padded..).unwrap_or_default(), be)
                    .filter(|(code, _)| *code == 1)
                    .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
                    .collect();
                Ok(Some(CapturedPacket {
                    timestamp: super::ticks_to_duration(
                        u128::from(ticks),
                        interface.map_or(6, |i| i.resolution),
                    ),
                    ethernet: interface.is_some_and(|i| i.ethernet),
                    data: data.to_vec(),
                    comments,
                }))
            }
        }
    }
}

impl<R: Read> Iterator for CaptureReader<R> {
    type Item = Result<CapturedPacket, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

/// The options of a block's tail: (code, value) up to `opt_endofopt` or the end; an option
/// that runs past the end ends them.
fn options(mut bytes: &[u8], big_endian: bool) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let code = u16_at(bytes, 0, big_endian);
        let len = usize::from(u16_at(bytes, 2, big_endian));
        if code == 0 {
            return None;
        }
        let value = bytes.get(4..4 + len)?;
        bytes = bytes.get(4 + len.div_ceil(4) * 4..).unwrap_or_default();
        Some((code, value))
    })
}

/// Reads the rest of a section header whose type and total length `len` (in the section's
/// byte order, not yet known) are read: its byte-order magic, then the rest skipped. Gives
/// the section's order: big endian or not.
fn read_section(reader: &mut impl Read, len: [u8; 4]) -> Result<bool, CaptureError> {
    let mut magic = [0u8; 4];
    exact(reader, &mut magic, "a section header")?;
    let big_endian = match magic {
        [0x1A, 0x2B, 0x3C, 0x4D] => true,
        [0x4D, 0x3C, 0x2B, 0x1A] => false,
        m => {
            return Err(CaptureError::Malformed(format!(
                "a section header's byte-order magic is {}, not 1a2b3c4d",
                hex(&m)
            )));
        }
    };
    let total = u32_at(&len, 0, big_endian);
    if total < 28 || !total.is_multiple_of(4) {
        return Err(CaptureError::Malformed(format!(
            "a section header's length is {total}: it is a multiple of 4 bytes, at least 28"
        )));
    }
    // Type, length and magic are read: the rest (version, section length, options, the
    // length again) streams by.
    let rest = u64::from(total) - 12;
    if io::copy(&mut reader.take(rest), &mut io::sink())? < rest {
        return Err(CaptureError::Truncated("a section header"));
    }
    Ok(big_endian)
}

/// `len` as a length to read, if it is at most `max`.
fn bounded(len: u64, what: &'static str, max: usize) -> Result<usize, CaptureError> {
    usize::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or(CaptureError::TooLong { what, len, max })
}

/// Fills `buf`, or says what was cut short.
fn exact(reader: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), CaptureError> {
    if read_full(reader, buf)? < buf.len() {
        return Err(CaptureError::Truncated(what));
    }
    Ok(())
}

/// Reads into `buf` until it is full or the input ends; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let v = [b[at], b[at + 1]];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OnuId;
    use crate::pcap::{CaptureWriter, Direction, Peer, parse_ethernet};

    /// A classic pcap of `packets`, in either byte order and time resolution.
    fn classic(big_endian: bool, nanoseconds: bool, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend(w32(if nanoseconds {
            0xa1b2_3c4d
        } else {
            0xa1b2_c3d4
        }));
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend(w32(0));
        f.extend(w32(0));
        f.extend(w32(65535));
        f.extend(w32(ETHERNET));
        for (s, frac, data) in packets {
            f.extend(w32(*s));
            f.extend(w32(*frac));
            f.extend(w32(data.len() as u32));
            f.extend(w32(data.len() as u32));
            f.extend_from_slice(data);
        }
        f
    }

    fn all(bytes: &[u8]) -> (Vec<CapturedPacket>, Option<CaptureError>) {
        let mut packets = Vec::new();
        for p in CaptureReader::new(bytes).unwrap() {
            match p {
                Ok(p) => packets.push(p),
                Err(e) => return (packets, Some(e)),
            }
        }
        (packets, None)
    }

    #[test]
    fn classic_pcaps_of_either_order_and_resolution_read() {
        for (be, ns) in [(false, false), (true, false), (false, true), (true, true)] {
            let f = classic(be, ns, &[(7, 250, b"first"), (8, 0, b"second!")]);
            let (packets, err) = all(&f);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(packets.len(), 2);
            assert!(packets.iter().all(|p| p.ethernet && p.comments.is_empty()));
            assert_eq!(packets[0].data, b"first");
            let frac = if ns { 250 } else { 250_000 };
            assert_eq!(packets[0].timestamp, Duration::new(7, frac));
        }
    }

    #[test]
    fn a_big_endian_pcapng_reads_with_its_comments() {
        let section = pcap_file::pcapng::blocks::section_header::SectionHeaderBlock {
            endianness: pcap_file::Endianness::Big,
            ..Default::default()
        };
        let mut w =
            pcap_file::pcapng::PcapNgWriter::with_section_header(Vec::new(), section).unwrap();
        w.write_pcapng_block(
            pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock {
                linktype: pcap_file::DataLink::ETHERNET,
                snaplen: 0,
                // pcap-file writes its time stamps in nanoseconds.
                options: vec![
                    pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption::IfTsResol(9),
                ],
            },
        )
        .unwrap();
        w.write_pcapng_block(
            pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock {
                interface_id: 0,
                timestamp: Duration::from_micros(1_500_000),
                original_len: 3,
                data: vec![1, 2, 3].into(),
                options: vec![
                    pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption::Comment(
                        "hello".into(),
                    ),
                ],
            },
        )
        .unwrap();
        let bytes = w.into_inner();
        assert_eq!(bytes[8..12], [0x1A, 0x2B, 0x3C, 0x4D], "big endian");
        let (packets, err) = all(&bytes);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].data, [1, 2, 3]);
        assert_eq!(packets[0].comments, ["hello"]);
        assert_eq!(packets[0].timestamp, Duration::from_micros(1_500_000));
    }

    #[test]
    fn a_second_section_starts_over_with_its_own_interfaces() {
        let one = |id: u16| {
            let mut w = CaptureWriter::new(Vec::new()).unwrap();
            w.write(
                Duration::from_secs(1),
                Direction::Upstream,
                Peer::Onu(OnuId(id)),
                &[id as u8; 48],
            )
            .unwrap();
            w.into_inner()
        };
        let mut both = one(1);
        both.extend(one(2));
        let (packets, err) = all(&both);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(packets.len(), 2);
        for (p, id) in packets.iter().zip([1, 2]) {
            assert!(p.ethernet);
            assert_eq!(
                parse_ethernet(&p.data).unwrap().peer,
                Some(Peer::Onu(OnuId(id)))
            );
        }
    }

    #[test]
    fn what_is_not_a_capture_is_refused_at_once() {
        // /dev/zero, as `omci pcap /dev/zero` reads it: refused after four bytes.
        let e = CaptureReader::new(io::repeat(0)).unwrap_err();
        assert!(matches!(e, CaptureError::NotACapture(_)), "{e}");
        assert!(e.to_string().contains("00000000"), "{e}");
        assert!(matches!(
            CaptureReader::new(&[][..]).unwrap_err(),
            CaptureError::NotACapture(_)
        ));
        assert!(matches!(
            CaptureReader::new(&[0xd4, 0xc3][..]).unwrap_err(),
            CaptureError::Truncated(_)
        ));
    }

    #[test]
    fn a_packet_past_the_bound_is_an_error_not_an_allocation() {
        // A record that claims 4 GiB, followed by an endless stream.
        let mut f = classic(false, false, &[(1, 0, b"ok")]);
        f.extend(1u32.to_le_bytes());
        f.extend(0u32.to_le_bytes());
        f.extend(u32::MAX.to_le_bytes());
        f.extend(u32::MAX.to_le_bytes());
        let mut r = CaptureReader::new(io::Read::chain(&f[..], io::repeat(0))).unwrap();
        assert_eq!(r.next().unwrap().unwrap().data, b"ok");
        let e = r.next().unwrap().unwrap_err();
        assert!(
            matches!(
                e,
                CaptureError::TooLong {
                    len: 4294967295,
                    max: MAX_PACKET_LEN,
                    ..
                }
            ),
            "{e}"
        );
        assert!(r.next().is_none(), "nothing after an error");
        // The same in a pcapng enhanced packet, and a block past its bound.
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write(
            Duration::ZERO,
            Direction::Upstream,
            Peer::Onu(OnuId(1)),
            &[0; 48],
        )
        .unwrap();
        let mut ng = w.into_inner();
        ng.extend(6u32.to_ne_bytes());
        ng.extend(u32::MAX.to_ne_bytes().map(|b| b & 0xFC));
        let (packets, err) = all(&ng);
        assert_eq!(packets.len(), 1);
        assert!(
            matches!(
                err,
                Some(CaptureError::TooLong {
                    what: "a block",
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_long_block_of_another_kind_streams_by() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write(
            Duration::ZERO,
            Direction::Upstream,
            Peer::Onu(OnuId(1)),
            &[1; 48],
        )
        .unwrap();
        let mut f = w.into_inner();
        // A 64 MiB custom block (type 0x0BAD), never held in memory, then one more packet.
        let len: u32 = 64 << 20;
        f.extend(0x0BADu32.to_ne_bytes());
        f.extend(len.to_ne_bytes());
        let body = io::repeat(0).take(u64::from(len) - 12);
        let mut tail = len.to_ne_bytes().to_vec();
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write(
            Duration::ZERO,
            Direction::Upstream,
            Peer::Onu(OnuId(2)),
            &[2; 48],
        )
        .unwrap();
        let second = w.into_inner();
        tail.extend(&second);
        let reader = io::Read::chain(io::Read::chain(&f[..], body), &tail[..]);
        let packets: Vec<_> = CaptureReader::new(reader).unwrap().collect();
        assert_eq!(packets.len(), 2, "{packets:?}");
        assert!(packets.iter().all(Result::is_ok));
    }

    #[test]
    fn without_if_tsresol_the_ticks_are_microseconds() {
        let mut f = Vec::new();
        let le = |v: u32| v.to_le_bytes();
        // Section header (28 bytes), interface (20), enhanced packet (32 + 4 data).
        for v in [
            0x0A0D_0D0A,
            28,
            0x1A2B_3C4D,
            1,
            0xFFFF_FFFF,
            0xFFFF_FFFF,
            28,
        ] {
            f.extend(le(v));
        }
        for v in [1, 20, 1, 0, 20] {
            f.extend(le(v));
        }
        for v in [6, 36, 0, 0, 1_500_000, 4, 4, 0xA5A5_A5A5, 36] {
            f.extend(le(v));
        }
        let (packets, err) = all(&f);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(packets[0].timestamp, Duration::from_millis(1500));
        assert_eq!(packets[0].data, [0xA5; 4]);
        assert!(packets[0].ethernet);
    }

    #[test]
    fn a_block_whose_lengths_disagree_is_malformed() {
        let mut w = CaptureWriter::new(Vec::new()).unwrap();
        w.write(
            Duration::ZERO,
            Direction::Upstream,
            Peer::Onu(OnuId(1)),
            &[1; 48],
        )
        .unwrap();
        let mut f = w.into_inner();
        let last = f.len() - 4;
        f[last] ^= 0x04;
        let (packets, err) = all(&f);
        assert!(packets.is_empty());
        assert!(matches!(err, Some(CaptureError::Malformed(_))), "{err:?}");
    }
}
