//! What can go wrong decoding or encoding a frame, and what an ONU does about it.

use crate::{Header, ResultCode};

/// Why a frame did not decode: the reason, where in the frame, and the header when the header
/// itself was readable (so that a responder can still answer with a result code).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind} (at byte {offset})")]
pub struct ParseError {
    /// The reason.
    pub kind: ParseErrorKind,
    /// Byte offset in the frame where the fault was found.
    pub offset: usize,
    /// The header, when the first bytes of the frame were a readable OMCI header.
    pub header: Option<Header>,
}

impl ParseError {
    /// The G.988 result an ONU answers a frame with that failed this way, or `None` when the
    /// frame must be dropped without a response: a frame whose trailer or header cannot be
    /// trusted (the OLT's timeout recovers), and any frame that asked for no answer (a
    /// response, a notification, or a request without AR such as a window's inner Download
    /// section, whose loss the window's AR section reports).
    pub fn result_code(&self) -> Option<ResultCode> {
        let h = self.header.as_ref()?;
        if h.ak || h.message_type.is_notification() || !h.ar {
            return None;
        }
        self.kind.result_code()
    }
}

/// The reasons a frame does not decode.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The frame ends before its format says it does.
    #[error("truncated: {needed} bytes needed, {available} present")]
    Truncated {
        /// Bytes the format requires.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// The device identifier is neither 0x0A (baseline) nor 0x0B (extended).
    #[error("bad device identifier 0x{0:02x} (0x0a baseline, 0x0b extended)")]
    BadDeviceId(u8),
    /// The extended contents length is larger than G.988 allows.
    #[error("bad contents length {length} (at most {max})")]
    BadLength {
        /// The length field.
        length: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A baseline trailer whose CPCS-UU, CPI or SDU length is not 0x00, 0x00, 0x0028.
    #[error("bad baseline trailer: CPCS-UU/CPI/length {found:02x?}, expected [00, 00, 00, 28]")]
    BadTrailer {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The CRC-32 trailer does not match the frame.
    #[error("bad CRC: frame says 0x{found:08x}, computed 0x{computed:08x}")]
    BadCrc {
        /// The CRC carried by the frame.
        found: u32,
        /// The CRC computed over the frame.
        computed: u32,
    },
    /// The message integrity check of an extended frame does not match.
    #[error("bad MIC: frame says 0x{found:08x}, computed 0x{computed:08x}")]
    BadMic {
        /// The MIC carried by the frame.
        found: u32,
        /// The MIC computed over the frame.
        computed: u32,
    },
    /// Bytes after the end of the frame.
    #[error("{count} trailing bytes after the frame")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// A typed field runs past the end of the contents.
    #[error("contents truncated: {field} does not fit")]
    ContentsTruncated {
        /// The G.988 field that did not fit.
        field: &'static str,
    },
    /// Extended contents longer than the message they carry.
    #[error("{count} unexpected bytes after the {message} contents")]
    TrailingContents {
        /// How many.
        count: usize,
        /// The message they follow.
        message: &'static str,
    },
    /// A field holds a value its message does not allow.
    #[error("field {field} = {value} out of range ({allowed})")]
    FieldOutOfRange {
        /// The G.988 field.
        field: &'static str,
        /// The value found.
        value: u32,
        /// What is allowed.
        allowed: &'static str,
    },
}

impl ParseErrorKind {
    /// The G.988 result for a frame that failed this way, or `None` to drop it (see
    /// [`ParseError::result_code`]).
    pub fn result_code(&self) -> Option<ResultCode> {
        match self {
            ParseErrorKind::Truncated { .. }
            | ParseErrorKind::BadDeviceId(_)
            | ParseErrorKind::BadLength { .. }
            | ParseErrorKind::BadTrailer { .. }
            | ParseErrorKind::BadCrc { .. }
            | ParseErrorKind::BadMic { .. }
            | ParseErrorKind::TrailingBytes { .. } => None,
            ParseErrorKind::ContentsTruncated { .. }
            | ParseErrorKind::TrailingContents { .. }
            | ParseErrorKind::FieldOutOfRange { .. } => Some(ResultCode::ParameterError),
        }
    }
}

/// Why a message could not be written.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The output buffer is smaller than the frame.
    #[error("buffer of {available} bytes, frame needs {needed}")]
    BufferTooSmall {
        /// Bytes the frame takes.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The contents do not fit the frame format (32 bytes baseline, 1966 extended).
    #[error("{message} contents need {needed} bytes, the {format} format has {max}")]
    ContentsTooLong {
        /// The message.
        message: &'static str,
        /// The format.
        format: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes the format has.
        max: usize,
    },
    /// A field holds a value that cannot be written.
    #[error("field {field} = {value} out of range ({allowed})")]
    FieldOutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: usize,
        /// What is allowed.
        allowed: &'static str,
    },
}
