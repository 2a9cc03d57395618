//! The OMCI frame: header, contents and integrity trailer (G.988 clause 11.2).
//!
//! ```text
//! baseline (device identifier 0x0A), always 48 bytes
//!  0..2  TCI            2..3 message type (DB|AR|AK|MT)   3 device id 0x0A
//!  4..6  ME class       6..8 ME instance
//!  8..40 contents (32 bytes, zero padded)
//! 40     CPCS-UU 0x00  41 CPI 0x00  42..44 SDU length 0x0028
//! 44..48 CRC-32/BZIP2 over bytes 0..44
//!
//! extended (device identifier 0x0B), 10 + length (+ 4) bytes, at most 1980
//!  0..8  as above, device id 0x0B
//!  8..10 contents length (0..=1966)
//! 10..   contents
//!        integrity trailer: none, CRC-32/BZIP2, or the G.987.3 AES-CMAC MIC (see ExtendedTrailer)
//! ```
//!
//! No-panic promise: [`Codec::decode`] checks every length before it reads, and
//! [`Codec::emit`] checks the buffer against [`Codec::buffer_len`] before it writes; no input
//! makes either panic.

use aes::Aes128;
use cmac::{Cmac, Mac};

use crate::contents::{self, AttributeValues, Contents, EXTENDED_MAX_CONTENTS_LEN, addr};
use crate::crc::crc32_bzip2;
use crate::error::{EmitError, ParseError, ParseErrorKind};
use crate::ids::{MeClass, MeId, Tci};
use crate::message_type::{AK_BIT, AR_BIT, DB_BIT, MT_MASK, MessageType};

/// Length of every baseline frame.
pub const BASELINE_LEN: usize = 48;
/// Length of the header common to both formats (TCI to ME instance).
pub const HEADER_LEN: usize = 8;
/// Length of an extended frame's header plus its contents length field.
pub const EXTENDED_HEADER_LEN: usize = 10;
/// Largest extended frame, MIC included (G.988 11.2.1).
pub const EXTENDED_MAX_LEN: usize = 1980;
/// The fixed part of the baseline trailer: CPCS-UU 0, CPI 0, SDU length 40.
pub const BASELINE_TRAILER_PREFIX: [u8; 4] = [0x00, 0x00, 0x00, 0x28];

/// The OMCI message set a frame belongs to, named by its device identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Device identifier 0x0A: fixed 48-byte frames with 32 bytes of contents.
    #[default]
    Baseline,
    /// Device identifier 0x0B: variable contents up to 1966 bytes.
    Extended,
}

impl Format {
    /// The device identifier byte.
    pub fn device_id(self) -> u8 {
        match self {
            Format::Baseline => 0x0A,
            Format::Extended => 0x0B,
        }
    }

    /// The format of a device identifier byte.
    pub fn from_device_id(id: u8) -> Option<Self> {
        match id {
            0x0A => Some(Format::Baseline),
            0x0B => Some(Format::Extended),
            _ => None,
        }
    }

    /// `"baseline"` or `"extended"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Baseline => "baseline",
            Format::Extended => "extended",
        }
    }
}

/// The first eight bytes of every frame, readable before (and without) the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Transaction correlation identifier.
    pub tci: Tci,
    /// The reserved DB bit (bit 8 of the message type byte).
    pub db: bool,
    /// Acknowledge request.
    pub ar: bool,
    /// Acknowledgement: this is a response.
    pub ak: bool,
    /// The action.
    pub message_type: MessageType,
    /// Baseline or extended.
    pub format: Format,
    /// The managed entity addressed.
    pub me: MeId,
}

impl Header {
    /// Reads the header from the front of a frame.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        parse_header(bytes)
    }

    /// The message type byte: DB, AR, AK and the action.
    pub fn message_type_byte(&self) -> u8 {
        (if self.db { DB_BIT } else { 0 })
            | (if self.ar { AR_BIT } else { 0 })
            | (if self.ak { AK_BIT } else { 0 })
            | self.message_type.code()
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header, ParseError> {
    // nom would add nothing over fixed offsets here; every read is after this length check.
    let fail = |kind, offset| ParseError {
        kind,
        offset,
        header: None,
    };
    if bytes.len() < HEADER_LEN {
        let kind = ParseErrorKind::Truncated {
            needed: HEADER_LEN,
            available: bytes.len(),
        };
        return Err(fail(kind, bytes.len()));
    }
    let format = Format::from_device_id(bytes[3])
        .ok_or_else(|| fail(ParseErrorKind::BadDeviceId(bytes[3]), 3))?;
    let mt = bytes[2];
    let header = Header {
        tci: Tci(u16::from_be_bytes([bytes[0], bytes[1]])),
        db: mt & DB_BIT != 0,
        ar: mt & AR_BIT != 0,
        ak: mt & AK_BIT != 0,
        message_type: MessageType::from_code(mt & MT_MASK),
        format,
        me: MeId::new(
            MeClass(u16::from_be_bytes([bytes[4], bytes[5]])),
            u16::from_be_bytes([bytes[6], bytes[7]]),
        ),
    };
    Ok(header)
}

/// One OMCI message: header fields and typed contents.
///
/// The message type and the AK bit are not stored: they follow from the [`Contents`] variant,
/// so a message can never claim to be one thing and carry another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Transaction correlation identifier.
    pub tci: Tci,
    /// Acknowledge request: the sender wants a response.
    pub ar: bool,
    /// The reserved DB bit; false in G.988, kept so that any frame round-trips.
    pub db: bool,
    /// Baseline or extended message set.
    pub format: Format,
    /// The managed entity addressed.
    pub me: MeId,
    /// The typed contents.
    pub contents: Contents<'a>,
}

impl<'a> Message<'a> {
    /// A message with the AR bit G.988 expects for `contents`: set on requests, clear on
    /// responses and notifications (a Download section that is not its window's last must then
    /// clear it; see [`Message::with_ar`]).
    pub fn new(tci: Tci, format: Format, me: MeId, contents: Contents<'a>) -> Self {
        let ar = !contents.ak() && !contents.message_type().is_notification();
        Self {
            tci,
            ar,
            db: false,
            format,
            me,
            contents,
        }
    }

    /// The same message with the AR bit set as given.
    pub fn with_ar(mut self, ar: bool) -> Self {
        self.ar = ar;
        self
    }

    /// The action.
    pub fn message_type(&self) -> MessageType {
        self.contents.message_type()
    }

    /// The AK bit: true for a response.
    pub fn ak(&self) -> bool {
        self.contents.ak()
    }

    /// The header this message is sent with.
    pub fn header(&self) -> Header {
        Header {
            tci: self.tci,
            db: self.db,
            ar: self.ar,
            ak: self.ak(),
            message_type: self.message_type(),
            format: self.format,
            me: self.me,
        }
    }

    /// True when the message travels upstream (ONU to OLT): responses and notifications.
    pub fn is_upstream(&self) -> bool {
        self.ak() || self.message_type().is_notification()
    }

    /// The same message owning all its bytes.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            tci: self.tci,
            ar: self.ar,
            db: self.db,
            format: self.format,
            me: self.me,
            contents: self.contents.into_owned(),
        }
    }
}

/// An AES-128 key for the extended-message integrity check (the OMCI_IK of ITU-T G.987.3).
#[derive(Clone, PartialEq, Eq)]
pub struct MicKey(pub [u8; 16]);

impl std::fmt::Debug for MicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MicKey(..)") // never print key material
    }
}

impl MicKey {
    /// MIC = the first 4 bytes of AES-CMAC(OMCI_IK, C_dir || frame up to the MIC), where C_dir
    /// is 0x01 downstream (OLT to ONU) and 0x02 upstream (ITU-T G.987.3, OMCI integrity).
    pub fn mic(&self, upstream: bool, frame: &[u8]) -> u32 {
        let mut mac = <Cmac<Aes128> as cmac::digest::KeyInit>::new(&self.0.into());
        mac.update(&[if upstream { 0x02 } else { 0x01 }]);
        mac.update(frame);
        let tag = mac.finalize().into_bytes();
        u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])
    }
}

/// What follows the contents of an extended frame. G.988 leaves the integrity of extended
/// messages to the transmission convergence layer (a MIC on XG-PON); published test vectors
/// carry none. This lab makes it a setting.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ExtendedTrailer {
    /// No trailer: the frame ends with its contents (as the published vectors are).
    #[default]
    None,
    /// A 4-byte CRC-32/BZIP2 over the frame, as the baseline trailer's.
    Crc32,
    /// The 4-byte AES-CMAC message integrity check of G.987.3 with this key.
    Mic(MicKey),
}

impl ExtendedTrailer {
    /// Bytes the trailer takes.
    pub fn len(&self) -> usize {
        match self {
            ExtendedTrailer::None => 0,
            ExtendedTrailer::Crc32 | ExtendedTrailer::Mic(_) => 4,
        }
    }

    /// True when there is no trailer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the integrity trailer of a decoded frame said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrity {
    /// The CRC-32 trailer matched.
    CrcOk,
    /// The CRC-32 trailer did not match.
    CrcMismatch {
        /// Carried by the frame.
        found: u32,
        /// Computed.
        computed: u32,
    },
    /// The MIC matched.
    MicOk,
    /// The MIC did not match.
    MicMismatch {
        /// Carried by the frame.
        found: u32,
        /// Computed.
        computed: u32,
    },
    /// The frame has no integrity trailer.
    Absent,
}

impl Integrity {
    /// `Some(true)` for a matching CRC, `Some(false)` for a wrong one, `None` without a CRC.
    pub fn crc_ok(self) -> Option<bool> {
        match self {
            Integrity::CrcOk => Some(true),
            Integrity::CrcMismatch { .. } => Some(false),
            _ => None,
        }
    }

    /// Like [`Integrity::crc_ok`], for the MIC.
    pub fn mic_ok(self) -> Option<bool> {
        match self {
            Integrity::MicOk => Some(true),
            Integrity::MicMismatch { .. } => Some(false),
            _ => None,
        }
    }

    fn error(self) -> Option<ParseErrorKind> {
        match self {
            Integrity::CrcMismatch { found, computed } => {
                Some(ParseErrorKind::BadCrc { found, computed })
            }
            Integrity::MicMismatch { found, computed } => {
                Some(ParseErrorKind::BadMic { found, computed })
            }
            _ => None,
        }
    }
}

/// A frame decoded without judging its trailer: the message and what the trailer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The message.
    pub message: Message<'a>,
    /// The trailer's verdict.
    pub integrity: Integrity,
}

/// A frame whose header, lengths and trailer have been checked, its contents not yet parsed.
struct Checked<'a> {
    header: Header,
    contents_area: &'a [u8],
    integrity: Integrity,
}

impl<'a> Checked<'a> {
    fn fail(&self, kind: ParseErrorKind, offset: usize) -> ParseError {
        ParseError {
            kind,
            offset,
            header: Some(self.header),
        }
    }

    /// The message, contents parsed. Always inlined: it is built in the caller's return value,
    /// because moving a finished Message through another return costs more than the whole
    /// parse (docs/benchmarks.md).
    #[inline(always)]
    fn message(&self, frame: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let contents = Contents::parse(
            self.header.message_type,
            self.header.ak,
            self.header.me,
            self.header.format,
            self.contents_area,
        )
        .map_err(|e| self.fail(e.kind, e.at.saturating_sub(addr(frame))))?;
        Ok(Message {
            tci: self.header.tci,
            ar: self.header.ar,
            db: self.header.db,
            format: self.header.format,
            me: self.header.me,
            contents,
        })
    }
}

/// Frame-level settings shared by parse and emit: how extended frames end.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Codec {
    /// The trailer of extended frames (baseline frames always carry the CRC-32 trailer).
    pub extended_trailer: ExtendedTrailer,
}

impl Codec {
    /// A codec whose extended frames end with `extended_trailer`.
    pub const fn new(extended_trailer: ExtendedTrailer) -> Self {
        Self { extended_trailer }
    }

    /// Parses a frame and insists that its trailer is right: what a receiver does.
    ///
    /// The trailer is judged before the contents: a frame with a bad CRC or MIC is always
    /// [`ParseErrorKind::BadCrc`] / [`ParseErrorKind::BadMic`] (drop it), never a contents
    /// error that a receiver would answer.
    pub fn parse<'a>(&self, bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let checked = self.check_frame(bytes)?;
        if let Some(kind) = checked.integrity.error() {
            return Err(checked.fail(kind, bytes.len() - 4));
        }
        checked.message(bytes)
    }

    /// Parses a frame and reports what its trailer said without rejecting a mismatch: what an
    /// analyser does.
    pub fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Decoded<'a>, ParseError> {
        let checked = self.check_frame(bytes)?;
        Ok(Decoded {
            message: checked.message(bytes)?,
            integrity: checked.integrity,
        })
    }

    /// Checks everything but the contents: header, lengths, trailer.
    #[inline(always)]
    fn check_frame<'a>(&self, bytes: &'a [u8]) -> Result<Checked<'a>, ParseError> {
        let header = parse_header(bytes)?;
        let fail = |kind, offset| ParseError {
            kind,
            offset,
            header: Some(header),
        };
        // The datagram must be exactly the frame: shorter is truncated, longer has trailing bytes.
        let exact_len = |total: usize| match bytes.len().cmp(&total) {
            std::cmp::Ordering::Less => Err(fail(
                ParseErrorKind::Truncated {
                    needed: total,
                    available: bytes.len(),
                },
                bytes.len(),
            )),
            std::cmp::Ordering::Greater => Err(fail(
                ParseErrorKind::TrailingBytes {
                    count: bytes.len() - total,
                },
                total,
            )),
            std::cmp::Ordering::Equal => Ok(()),
        };
        let (contents_area, integrity) = match header.format {
            Format::Baseline => {
                exact_len(BASELINE_LEN)?;
                if bytes[40..44] != BASELINE_TRAILER_PREFIX {
                    let mut found = [0u8; 4];
                    found.copy_from_slice(&bytes[40..44]);
                    return Err(fail(ParseErrorKind::BadTrailer { found }, 40));
                }
                let found = u32::from_be_bytes([bytes[44], bytes[45], bytes[46], bytes[47]]);
                let computed = crc32_bzip2(&bytes[..44]);
                let integrity = if found == computed {
                    Integrity::CrcOk
                } else {
                    Integrity::CrcMismatch { found, computed }
                };
                (&bytes[HEADER_LEN..40], integrity)
            }
            Format::Extended => {
                if bytes.len() < EXTENDED_HEADER_LEN {
                    return Err(fail(
                        ParseErrorKind::Truncated {
                            needed: EXTENDED_HEADER_LEN,
                            available: bytes.len(),
                        },
                        bytes.len(),
                    ));
                }
                let length = usize::from(u16::from_be_bytes([bytes[8], bytes[9]]));
                if length > EXTENDED_MAX_CONTENTS_LEN {
                    return Err(fail(
                        ParseErrorKind::BadLength {
                            length,
                            max: EXTENDED_MAX_CONTENTS_LEN,
                        },
                        8,
                    ));
                }
                let end = EXTENDED_HEADER_LEN + length;
                let total = end + self.extended_trailer.len();
                exact_len(total)?;
                let trailer = &bytes[end..];
                let found = || u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
                let integrity = match &self.extended_trailer {
                    ExtendedTrailer::None => Integrity::Absent,
                    ExtendedTrailer::Crc32 => {
                        let computed = crc32_bzip2(&bytes[..end]);
                        if found() == computed {
                            Integrity::CrcOk
                        } else {
                            Integrity::CrcMismatch {
                                found: found(),
                                computed,
                            }
                        }
                    }
                    ExtendedTrailer::Mic(key) => {
                        let upstream = header.ak || header.message_type.is_notification();
                        let computed = key.mic(upstream, &bytes[..end]);
                        if found() == computed {
                            Integrity::MicOk
                        } else {
                            Integrity::MicMismatch {
                                found: found(),
                                computed,
                            }
                        }
                    }
                };
                (&bytes[EXTENDED_HEADER_LEN..end], integrity)
            }
        };
        Ok(Checked {
            header,
            contents_area,
            integrity,
        })
    }

    /// Bytes `message` takes on the wire, or why it cannot be written.
    pub fn buffer_len(&self, message: &Message<'_>) -> Result<usize, EmitError> {
        let typed_values = match &message.contents {
            Contents::GetResponse(g) => Some(&g.attributes),
            Contents::AttributeValueChange(a) => Some(&a.attributes),
            _ => None,
        };
        if let Some(AttributeValues::SoftwareImage(_)) = typed_values
            && message.me.class != MeClass::SOFTWARE_IMAGE
        {
            return Err(EmitError::FieldOutOfRange {
                field: "attributes",
                value: usize::from(message.me.class.0),
                allowed: "typed Software image attributes on ME class 7 only",
            });
        }
        let contents_len = message.contents.encoded_len(message.format)?;
        Ok(match message.format {
            Format::Baseline => BASELINE_LEN,
            Format::Extended => EXTENDED_HEADER_LEN + contents_len + self.extended_trailer.len(),
        })
    }

    /// Writes `message` to the front of `buf`, trailer filled in; returns the bytes written.
    pub fn emit(&self, message: &Message<'_>, buf: &mut [u8]) -> Result<usize, EmitError> {
        let total = self.buffer_len(message)?;
        if buf.len() < total {
            return Err(EmitError::BufferTooSmall {
                needed: total,
                available: buf.len(),
            });
        }
        let header = message.header();
        // One 8-byte store: the CRC below reads these bytes back at once.
        let word = (u64::from(header.tci.0) << 48)
            | (u64::from(header.message_type_byte()) << 40)
            | (u64::from(header.format.device_id()) << 32)
            | (u64::from(header.me.class.0) << 16)
            | u64::from(header.me.instance);
        buf[..HEADER_LEN].copy_from_slice(&word.to_be_bytes());
        match message.format {
            Format::Baseline => {
                let area = &mut buf[HEADER_LEN..40];
                area.fill(0);
                message.contents.write(Format::Baseline, area);
                buf[40..44].copy_from_slice(&BASELINE_TRAILER_PREFIX);
                let crc = crc32_bzip2(&buf[..44]);
                buf[44..48].copy_from_slice(&crc.to_be_bytes());
            }
            Format::Extended => {
                // buffer_len bounded the contents by 1966 bytes, so the length fits in u16.
                let contents_len = total - EXTENDED_HEADER_LEN - self.extended_trailer.len();
                buf[8..10].copy_from_slice(&(contents_len as u16).to_be_bytes());
                let end = EXTENDED_HEADER_LEN + contents_len;
                message
                    .contents
                    .write(Format::Extended, &mut buf[EXTENDED_HEADER_LEN..end]);
                match &self.extended_trailer {
                    ExtendedTrailer::None => {}
                    ExtendedTrailer::Crc32 => {
                        let crc = crc32_bzip2(&buf[..end]);
                        buf[end..end + 4].copy_from_slice(&crc.to_be_bytes());
                    }
                    ExtendedTrailer::Mic(key) => {
                        let mic = key.mic(message.is_upstream(), &buf[..end]);
                        buf[end..end + 4].copy_from_slice(&mic.to_be_bytes());
                    }
                }
            }
        }
        Ok(total)
    }

    /// [`Codec::emit`] into a new vector of exactly the frame's length.
    pub fn to_vec(&self, message: &Message<'_>) -> Result<Vec<u8>, EmitError> {
        let mut buf = vec![0u8; self.buffer_len(message)?];
        self.emit(message, &mut buf)?;
        Ok(buf)
    }
}

/// Parses a frame with the default [`Codec`] (extended frames without trailer).
pub fn parse(bytes: &[u8]) -> Result<Message<'_>, ParseError> {
    Codec::default().parse(bytes)
}

/// Emits a frame with the default [`Codec`]; returns the bytes written.
pub fn emit(message: &Message<'_>, buf: &mut [u8]) -> Result<usize, EmitError> {
    Codec::default().emit(message, buf)
}

// Keep the contents module's constant visible to readers of this one.
const _: () = assert!(
    EXTENDED_HEADER_LEN + contents::EXTENDED_MAX_CONTENTS_LEN + 4 == EXTENDED_MAX_LEN,
    "G.988: an extended frame is at most 1980 bytes"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A baseline Start request whose instance count (20) cannot fit the frame.
    fn overfull_start(good_crc: bool) -> Vec<u8> {
        let mut f = vec![0u8; 48];
        f[..14].copy_from_slice(&[0, 4, 0x53, 0x0a, 0, 7, 0, 1, 0xff, 0, 0x0f, 0x42, 0x40, 20]);
        f[40..44].copy_from_slice(&BASELINE_TRAILER_PREFIX);
        let crc = crc32_bzip2(&f[..44]) ^ u32::from(!good_crc);
        f[44..].copy_from_slice(&crc.to_be_bytes());
        f
    }

    #[test]
    fn contents_errors_are_answered_with_parameter_error() {
        let e = parse(&overfull_start(true)).unwrap_err();
        assert_eq!(e.result_code(), Some(crate::ResultCode::ParameterError));
        assert_eq!(e.header.unwrap().tci, Tci(4));
    }

    #[test]
    fn a_bad_crc_is_dropped_even_when_the_contents_are_bad_too() {
        let e = parse(&overfull_start(false)).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::BadCrc { .. }), "{e}");
        assert_eq!(e.result_code(), None);
        assert_eq!(e.offset, 44);
    }

    #[test]
    fn header_errors_have_no_header() {
        let mut f = overfull_start(true);
        f[3] = 0x0c;
        let e = parse(&f).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadDeviceId(0x0c));
        assert_eq!((e.offset, e.header, e.result_code()), (3, None, None));
    }

    #[test]
    fn mic_known_answers() {
        // AES-CMAC(key, C || frame) truncated to 4 bytes, computed independently (Python's
        // `cryptography`, which reproduces RFC 4493 example 2 with this key).
        let key = MicKey([
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ]);
        let commit_req = [0x00, 0x11, 0x57, 0x0b, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00];
        let commit_resp = [
            0x00, 0xaa, 0x37, 0x0b, 0x00, 0x07, 0x00, 0x01, 0x00, 0x01, 0x06,
        ];
        assert_eq!(key.mic(false, &commit_req), 0x389c_8f0f);
        assert_eq!(key.mic(true, &commit_resp), 0x8661_b541);
        // And through the codec: the direction follows the message.
        let codec = Codec::new(ExtendedTrailer::Mic(key));
        let req = codec.to_vec(&parse_ext(&commit_req)).unwrap();
        assert_eq!(req[10..], 0x389c_8f0fu32.to_be_bytes());
        let resp = codec.to_vec(&parse_ext(&commit_resp)).unwrap();
        assert_eq!(resp[11..], 0x8661_b541u32.to_be_bytes());
        assert!(codec.parse(&resp).is_ok());
        let mut tampered = resp.clone();
        tampered[10] = 0;
        assert!(matches!(
            codec.parse(&tampered).unwrap_err().kind,
            ParseErrorKind::BadMic { .. }
        ));
    }

    fn parse_ext(bytes: &[u8]) -> Message<'_> {
        Codec::new(ExtendedTrailer::None).parse(bytes).unwrap()
    }

    #[test]
    fn only_requests_that_ask_for_an_answer_get_one() {
        // An extended Download section without data is malformed (parameter error) ...
        let with_ar = [0, 8, 0x54, 0x0b, 0, 7, 0, 1, 0, 1, 0x05];
        let e = Codec::default().parse(&with_ar).unwrap_err();
        assert!(
            matches!(e.kind, ParseErrorKind::FieldOutOfRange { .. }),
            "{e}"
        );
        assert_eq!(e.result_code(), Some(crate::ResultCode::ParameterError));
        // ... but one inside a window (AR clear) gets no answer: the window's AR section will.
        let no_ar = [0, 8, 0x14, 0x0b, 0, 7, 0, 1, 0, 1, 0x05];
        assert_eq!(
            Codec::default().parse(&no_ar).unwrap_err().result_code(),
            None
        );
        // Nor does a malformed response: an ONU's answer is never answered.
        let bad_resp = [0, 8, 0x34, 0x0b, 0, 7, 0, 1, 0, 0];
        let e = Codec::default().parse(&bad_resp).unwrap_err();
        assert!(
            matches!(e.kind, ParseErrorKind::ContentsTruncated { .. }),
            "{e}"
        );
        assert_eq!(e.result_code(), None);
    }
}
