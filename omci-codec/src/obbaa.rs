//! The OB-BAA framing: how the Broadband Forum's OB-BAA tools (the ONU simulator, the pOLT
//! simulator, vOMCI; TR-451) carry one OMCI frame in a UDP datagram. The second framing of
//! this lab (DESIGN.md section 4), beside [`crate::envelope`]; for interoperation, unicast only.
//!
//! ```text
//!  0..30  cterm_name: the channel termination's name, UTF-8, NUL padded to 30 bytes
//!         ("C zero-terminated if shorter than 30"); a receiver matches all 30 bytes
//! 30..32  ONU-ID, big-endian
//! 32..    the OMCI frame without its integrity trailer:
//!           baseline  44 bytes: header (8), contents (32), CPCS-UU, CPI, SDU length 0x0028;
//!                     the CRC-32 is left out
//!           extended  header (8), contents length (2), contents; no MIC
//! ```
//!
//! (BroadbandForum/obbaa-onu-simulator `obbaa_onusim/message.py`, `Message.encode`; the pOLT
//! simulator's README: "`char cterm_name[30]; uint16_t onu_id; // in network order; <omci
//! packet without MIC>`".) Answers go back to the request's source address with the same
//! header. There is no GEM port, no window number or CRC and no multicast: the lab's
//! multicast download needs [`crate::envelope`].
//!
//! The lab's codec parses and emits frames *with* their trailer, so [`add_trailer`] and
//! [`strip_trailer`] convert between the two forms, and [`parse`] and [`emit`] go straight
//! between a datagram and a [`Message`].
//!
//! No-panic promise: every function checks lengths before it reads; [`ObbaaHeader::write`]
//! panics only on a buffer shorter than [`HEADER_LEN`], which its callers size.

use std::fmt;

use crate::crc::crc32_bzip2;
use crate::frame::{
    BASELINE_LEN, Codec, EXTENDED_HEADER_LEN, ExtendedTrailer, Format, HEADER_LEN as OMCI_HEADER,
    Header, Message,
};
use crate::ids::OnuId;
use crate::{EmitError, ParseError};

/// Bytes of the `cterm_name` field.
pub const CTERM_NAME_LEN: usize = 30;
/// Bytes of the OB-BAA header before the OMCI frame.
pub const HEADER_LEN: usize = CTERM_NAME_LEN + 2;
/// Bytes of a baseline frame without its CRC-32.
pub const BASELINE_UNTRAILED_LEN: usize = BASELINE_LEN - 4;

/// A channel termination name (TR-451 `cterm_name`): 1 to 30 bytes of UTF-8 without NUL, kept
/// as the 30 NUL-padded bytes that travel.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtermName([u8; CTERM_NAME_LEN]);

impl CtermName {
    /// The name, if it is 1 to 30 bytes of UTF-8 and holds no NUL.
    pub fn new(name: &str) -> Result<CtermName, ObbaaError> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > CTERM_NAME_LEN || b.contains(&0) {
            return Err(ObbaaError::BadCtermName(name.to_string()));
        }
        let mut field = [0u8; CTERM_NAME_LEN];
        field[..b.len()].copy_from_slice(b);
        Ok(CtermName(field))
    }

    /// The 30 bytes on the wire.
    pub fn as_bytes(&self) -> &[u8; CTERM_NAME_LEN] {
        &self.0
    }

    /// The name, NUL padding cut.
    pub fn as_str(&self) -> &str {
        let end = self
            .0
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(CTERM_NAME_LEN);
        // Built from a &str cut at a NUL it does not contain: always UTF-8.
        std::str::from_utf8(&self.0[..end]).unwrap_or("")
    }
}

impl fmt::Display for CtermName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CtermName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CtermName({:?})", self.as_str())
    }
}

impl std::str::FromStr for CtermName {
    type Err = ObbaaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CtermName::new(s)
    }
}

/// The 32 bytes before the OMCI frame: which channel termination and which ONU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObbaaHeader {
    /// The channel termination, byte for byte as it travels (a receiver matches all 30).
    pub cterm_name: [u8; CTERM_NAME_LEN],
    /// The ONU.
    pub onu_id: OnuId,
}

impl ObbaaHeader {
    /// The header of `onu` on channel termination `cterm`.
    pub fn new(cterm: CtermName, onu: OnuId) -> ObbaaHeader {
        ObbaaHeader {
            cterm_name: cterm.0,
            onu_id: onu,
        }
    }

    /// True when the header names channel termination `cterm`, all 30 bytes alike.
    pub fn is_for(&self, cterm: &CtermName) -> bool {
        self.cterm_name == cterm.0
    }

    /// The name as it travelled, NUL padding cut, for messages (bytes that are not UTF-8 are
    /// replaced).
    pub fn cterm_lossy(&self) -> String {
        let end = self
            .cterm_name
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(CTERM_NAME_LEN);
        String::from_utf8_lossy(&self.cterm_name[..end]).into_owned()
    }

    /// Splits a datagram into its header and the OMCI frame without trailer (not checked).
    pub fn parse(datagram: &[u8]) -> Result<(ObbaaHeader, &[u8]), ObbaaError> {
        if datagram.len() < HEADER_LEN {
            return Err(ObbaaError::Truncated(datagram.len()));
        }
        let mut cterm_name = [0u8; CTERM_NAME_LEN];
        cterm_name.copy_from_slice(&datagram[..CTERM_NAME_LEN]);
        let onu_id = OnuId(u16::from_be_bytes([datagram[30], datagram[31]]));
        Ok((ObbaaHeader { cterm_name, onu_id }, &datagram[HEADER_LEN..]))
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`HEADER_LEN`].
    pub fn write(&self, out: &mut [u8]) {
        out[..CTERM_NAME_LEN].copy_from_slice(&self.cterm_name);
        out[30..32].copy_from_slice(&self.onu_id.0.to_be_bytes());
    }

    /// A datagram: this header, then `untrailed` (an OMCI frame without its trailer).
    pub fn wrap(&self, untrailed: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN + untrailed.len()];
        self.write(&mut out);
        out[HEADER_LEN..].copy_from_slice(untrailed);
        out
    }
}

/// Why a datagram or frame does not fit the OB-BAA framing.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObbaaError {
    /// Shorter than the 32-byte header.
    #[error("an OB-BAA datagram of {0} bytes: shorter than its 32-byte header")]
    Truncated(usize),
    /// Not a channel termination name.
    #[error("{0:?} is not a channel termination name (1 to 30 bytes of UTF-8, no NUL)")]
    BadCtermName(String),
    /// The OMCI frame's length does not match its format.
    #[error("an OMCI frame of {len} bytes: {expected}")]
    FrameLength {
        /// Bytes there are.
        len: usize,
        /// What the format wants.
        expected: String,
    },
    /// The frame's header does not read.
    #[error("OMCI header: {0}")]
    Header(ParseError),
    /// The frame does not parse.
    #[error("OMCI frame: {0}")]
    Frame(ParseError),
}

/// The OMCI frame of a datagram of the OB-BAA framing (`untrailed`) with the trailer the lab's
/// codec expects: the CRC-32 of a baseline frame, and `extended`'s trailer on an extended one
/// (a MIC's direction follows from the message, as [`Codec`] decides it). Lengths are checked:
/// a baseline frame is 44 bytes, an extended one its header and contents length.
pub fn add_trailer(untrailed: &[u8], extended: &ExtendedTrailer) -> Result<Vec<u8>, ObbaaError> {
    let header = Header::parse(untrailed).map_err(ObbaaError::Header)?;
    let mut frame = untrailed.to_vec();
    match header.format {
        Format::Baseline => {
            if untrailed.len() != BASELINE_UNTRAILED_LEN {
                return Err(ObbaaError::FrameLength {
                    len: untrailed.len(),
                    expected: "a baseline frame without its CRC is 44 bytes".into(),
                });
            }
            frame.extend_from_slice(&crc32_bzip2(untrailed).to_be_bytes());
        }
        Format::Extended => {
            let length = match untrailed.get(OMCI_HEADER..EXTENDED_HEADER_LEN) {
                Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])),
                None => {
                    return Err(ObbaaError::FrameLength {
                        len: untrailed.len(),
                        expected: "an extended frame has a 10-byte header".into(),
                    });
                }
            };
            if untrailed.len() != EXTENDED_HEADER_LEN + length {
                return Err(ObbaaError::FrameLength {
                    len: untrailed.len(),
                    expected: format!(
                        "its length field says {length} bytes of contents, so {} in all",
                        EXTENDED_HEADER_LEN + length
                    ),
                });
            }
            match extended {
                ExtendedTrailer::None => {}
                ExtendedTrailer::Crc32 => {
                    frame.extend_from_slice(&crc32_bzip2(untrailed).to_be_bytes())
                }
                ExtendedTrailer::Mic(key) => {
                    let upstream = header.ak || header.message_type.is_notification();
                    frame.extend_from_slice(&key.mic(upstream, untrailed).to_be_bytes());
                }
            }
        }
    }
    Ok(frame)
}

/// The OMCI frame `frame` (with its trailer: the lab codec's form) without it, as the OB-BAA
/// framing carries it. `extended` is the trailer the frame's extended form carries.
pub fn strip_trailer<'a>(
    frame: &'a [u8],
    extended: &ExtendedTrailer,
) -> Result<&'a [u8], ObbaaError> {
    let header = Header::parse(frame).map_err(ObbaaError::Header)?;
    match header.format {
        Format::Baseline if frame.len() == BASELINE_LEN => Ok(&frame[..BASELINE_UNTRAILED_LEN]),
        Format::Baseline => Err(ObbaaError::FrameLength {
            len: frame.len(),
            expected: "a baseline frame is 48 bytes".into(),
        }),
        Format::Extended if frame.len() >= EXTENDED_HEADER_LEN + extended.len() => {
            Ok(&frame[..frame.len() - extended.len()])
        }
        Format::Extended => Err(ObbaaError::FrameLength {
            len: frame.len(),
            expected: format!(
                "an extended frame has a 10-byte header and a {}-byte trailer",
                extended.len()
            ),
        }),
    }
}

/// `message` as a datagram of the OB-BAA framing behind `header`.
pub fn emit(header: &ObbaaHeader, message: &Message<'_>) -> Result<Vec<u8>, EmitError> {
    let frame = Codec::new(ExtendedTrailer::None).to_vec(message)?;
    let untrailed = match message.format {
        Format::Baseline => &frame[..BASELINE_UNTRAILED_LEN],
        Format::Extended => &frame[..],
    };
    Ok(header.wrap(untrailed))
}

/// A datagram of the OB-BAA framing: its header and message (receiver rules: a frame that does
/// not parse is an error; it carries no trailer to judge).
pub fn parse(datagram: &[u8]) -> Result<(ObbaaHeader, Message<'static>), ObbaaError> {
    let (header, untrailed) = ObbaaHeader::parse(datagram)?;
    let frame = add_trailer(untrailed, &ExtendedTrailer::None)?;
    let message = Codec::new(ExtendedTrailer::None)
        .parse(&frame)
        .map_err(ObbaaError::Frame)?
        .into_owned();
    Ok((header, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_thirty_bytes_without_nul() {
        assert!(CtermName::new("").is_err());
        assert!(CtermName::new("a\0b").is_err());
        assert!(CtermName::new(&"x".repeat(31)).is_err());
        let full = CtermName::new(&"x".repeat(30)).unwrap();
        assert_eq!(full.as_str().len(), 30);
        let n = CtermName::new("CT_1").unwrap();
        assert_eq!(&n.as_bytes()[..5], b"CT_1\0");
        assert_eq!(n.to_string(), "CT_1");
    }

    #[test]
    fn a_header_matches_only_its_own_thirty_bytes() {
        let n = CtermName::new("CT_1").unwrap();
        let h = ObbaaHeader::new(n, OnuId(1));
        assert!(h.is_for(&n));
        assert!(!h.is_for(&CtermName::new("CT_10").unwrap()));
        // A name that reads the same but is not NUL padded is another name.
        let mut other = h;
        other.cterm_name[29] = b' ';
        assert!(!other.is_for(&n));
        assert_eq!(other.cterm_lossy(), "CT_1");
    }

    #[test]
    fn short_datagrams_and_frames_are_errors_not_panics() {
        for n in 0..HEADER_LEN + 12 {
            let d = vec![0x0a; n];
            let _ = parse(&d);
            let _ = add_trailer(&d, &ExtendedTrailer::Crc32);
            let _ = strip_trailer(&d, &ExtendedTrailer::Crc32);
        }
    }
}
