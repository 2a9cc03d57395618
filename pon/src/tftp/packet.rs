//! TFTP packets (RFC 1350 section 5, with the option extension of RFC 2347): parse and emit,
//! mirror images of each other.
//!
//! ```text
//!  RRQ   | 01 | filename | 0 | mode | 0 | option | 0 | value | 0 | ...
//!  DATA  | 03 | block (2) | 0..blksize bytes
//!  ACK   | 04 | block (2)
//!  ERROR | 05 | code (2) | message | 0
//!  OACK  | 06 | option | 0 | value | 0 | ...          (RFC 2347)
//! ```
//! Every number is big-endian. After the length checks no parser indexes out of bounds: a
//! datagram of any bytes parses to a [`Packet`] or a [`PacketError`], never a panic.

/// The largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// The smallest block size RFC 2348 allows.
pub const MIN_BLKSIZE: u16 = 8;
/// RFC 1350's block size, when no option is negotiated.
pub const DEFAULT_BLKSIZE: u16 = 512;
/// The longest file name, mode, option or value this code reads or writes.
const MAX_TEXT: usize = 255;

/// The error codes of RFC 1350 (and 8, RFC 2347), open for the ones it does not name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 8: the options were refused (RFC 2347).
    OptionsRefused,
    /// Any other.
    Unknown(u16),
}

impl ErrorCode {
    /// The code on the wire.
    pub fn raw(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::OptionsRefused => 8,
            ErrorCode::Unknown(c) => c,
        }
    }

    /// The code of `raw`.
    pub fn from_raw(raw: u16) -> ErrorCode {
        match raw {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            8 => ErrorCode::OptionsRefused,
            c => ErrorCode::Unknown(c),
        }
    }
}

/// One TFTP packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Read request: the file, the transfer mode (`octet` here), the options asked for.
    Rrq {
        /// The file's name on the server.
        filename: String,
        /// `octet` or `netascii` (case-insensitive on the wire).
        mode: String,
        /// Options (RFC 2347), name lower-cased, in the order sent.
        options: Vec<(String, String)>,
    },
    /// Write request (parsed to be refused: the lab's servers only serve).
    Wrq {
        /// The file's name.
        filename: String,
    },
    /// A block of the file; block numbers start at 1.
    Data {
        /// Its number (wraps after 65535).
        block: u16,
        /// Its bytes: a full block, or fewer for the last one.
        data: Vec<u8>,
    },
    /// Acknowledges a block (0 acknowledges an OACK).
    Ack {
        /// The block acknowledged.
        block: u16,
    },
    /// The transfer is over, with a reason.
    Error {
        /// Why, as a code.
        code: ErrorCode,
        /// Why, in words.
        message: String,
    },
    /// The options the server accepts (RFC 2347).
    Oack {
        /// The options, name lower-cased.
        options: Vec<(String, String)>,
    },
}

/// Why bytes are not a TFTP packet.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than the opcode's bytes.
    #[error("a TFTP packet of {0} bytes is too short")]
    TooShort(usize),
    /// An opcode RFC 1350 and 2347 do not define.
    #[error("unknown TFTP opcode {0}")]
    UnknownOpcode(u16),
    /// A string without its terminating zero byte, or too long.
    #[error("a TFTP text field is not terminated or longer than 255 bytes")]
    BadText,
    /// A text field that is not UTF-8 (names here are ASCII).
    #[error("a TFTP text field is not UTF-8")]
    NotUtf8,
    /// An option name without its value.
    #[error("a TFTP option has no value")]
    OptionWithoutValue,
    /// Bytes after the last field of a fixed-size packet.
    #[error("{0} bytes after the end of a TFTP packet")]
    TrailingBytes(usize),
}

/// Splits zero-terminated strings off `b`.
fn strings(mut b: &[u8]) -> Result<Vec<String>, PacketError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let end = b
            .iter()
            .position(|&c| c == 0)
            .filter(|&e| e <= MAX_TEXT)
            .ok_or(PacketError::BadText)?;
        let s = std::str::from_utf8(&b[..end]).map_err(|_| PacketError::NotUtf8)?;
        out.push(s.to_string());
        b = &b[end + 1..];
    }
    Ok(out)
}

fn options(words: &[String]) -> Result<Vec<(String, String)>, PacketError> {
    if !words.len().is_multiple_of(2) {
        return Err(PacketError::OptionWithoutValue);
    }
    Ok(words
        .chunks(2)
        .map(|p| (p[0].to_ascii_lowercase(), p[1].clone()))
        .collect())
}

fn u16_at(b: &[u8], i: usize) -> Result<u16, PacketError> {
    match b.get(i..i + 2) {
        Some(&[hi, lo]) => Ok(u16::from_be_bytes([hi, lo])),
        _ => Err(PacketError::TooShort(b.len())),
    }
}

impl Packet {
    /// Parses one datagram.
    pub fn parse(b: &[u8]) -> Result<Packet, PacketError> {
        let opcode = u16_at(b, 0)?;
        let rest = &b[2..];
        match opcode {
            1 | 2 => {
                let words = strings(rest)?;
                let (filename, mode) = match words.as_slice() {
                    [f, m, ..] => (f.clone(), m.clone()),
                    _ => return Err(PacketError::BadText),
                };
                if opcode == 2 {
                    return Ok(Packet::Wrq { filename });
                }
                Ok(Packet::Rrq {
                    filename,
                    mode,
                    options: options(&words[2..])?,
                })
            }
            3 => Ok(Packet::Data {
                block: u16_at(b, 2)?,
                data: b[4..].to_vec(),
            }),
            4 => {
                let block = u16_at(b, 2)?;
                if b.len() > 4 {
                    return Err(PacketError::TrailingBytes(b.len() - 4));
                }
                Ok(Packet::Ack { block })
            }
            5 => {
                let code = ErrorCode::from_raw(u16_at(b, 2)?);
                // Some servers omit the message's zero byte: take what is there.
                let text = &b[4..];
                let end = text.iter().position(|&c| c == 0).unwrap_or(text.len());
                Ok(Packet::Error {
                    code,
                    message: String::from_utf8_lossy(&text[..end.min(MAX_TEXT)]).into_owned(),
                })
            }
            6 => Ok(Packet::Oack {
                options: options(&strings(rest)?)?,
            }),
            other => Err(PacketError::UnknownOpcode(other)),
        }
    }

    /// The packet's bytes.
    pub fn emit(&self) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, s: &str) {
            let s = s.as_bytes();
            out.extend_from_slice(&s[..s.len().min(MAX_TEXT)]);
            out.push(0);
        }
        let mut out = Vec::new();
        match self {
            Packet::Rrq {
                filename,
                mode,
                options,
            } => {
                out.extend_from_slice(&1u16.to_be_bytes());
                text(&mut out, filename);
                text(&mut out, mode);
                for (k, v) in options {
                    text(&mut out, k);
                    text(&mut out, v);
                }
            }
            Packet::Wrq { filename } => {
                out.extend_from_slice(&2u16.to_be_bytes());
                text(&mut out, filename);
                text(&mut out, "octet");
            }
            Packet::Data { block, data } => {
                out.extend_from_slice(&3u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
                out.extend_from_slice(data);
            }
            Packet::Ack { block } => {
                out.extend_from_slice(&4u16.to_be_bytes());
                out.extend_from_slice(&block.to_be_bytes());
            }
            Packet::Error { code, message } => {
                out.extend_from_slice(&5u16.to_be_bytes());
                out.extend_from_slice(&code.raw().to_be_bytes());
                text(&mut out, message);
            }
            Packet::Oack { options } => {
                out.extend_from_slice(&6u16.to_be_bytes());
                for (k, v) in options {
                    text(&mut out, k);
                    text(&mut out, v);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_request_with_options_has_these_bytes() {
        let rrq = Packet::Rrq {
            filename: "g.img".into(),
            mode: "octet".into(),
            options: vec![("blksize".into(), "1024".into())],
        };
        let bytes = b"\x00\x01g.img\x00octet\x00blksize\x001024\x00";
        assert_eq!(rrq.emit(), bytes);
        assert_eq!(Packet::parse(bytes), Ok(rrq));
    }

    #[test]
    fn every_packet_parses_back_to_itself() {
        let all = [
            Packet::Data {
                block: 0xFFFF,
                data: vec![1, 2, 3],
            },
            Packet::Data {
                block: 1,
                data: vec![],
            },
            Packet::Ack { block: 7 },
            Packet::Error {
                code: ErrorCode::FileNotFound,
                message: "no such file".into(),
            },
            Packet::Oack {
                options: vec![("tsize".into(), "300".into())],
            },
            Packet::Wrq {
                filename: "x".into(),
            },
        ];
        for p in all {
            assert_eq!(Packet::parse(&p.emit()), Ok(p));
        }
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(Packet::parse(&[0]), Err(PacketError::TooShort(1)));
        assert_eq!(Packet::parse(&[0, 9]), Err(PacketError::UnknownOpcode(9)));
        assert_eq!(Packet::parse(b"\x00\x01name"), Err(PacketError::BadText));
        assert_eq!(
            Packet::parse(b"\x00\x06blksize\x00"),
            Err(PacketError::OptionWithoutValue)
        );
        assert_eq!(
            Packet::parse(&[0, 4, 0, 1, 9]),
            Err(PacketError::TrailingBytes(1))
        );
        // Any two to twelve bytes: an answer, never a panic.
        for a in 0..=255u8 {
            for len in 2..12 {
                let mut b = vec![0, a % 8];
                b.extend(std::iter::repeat_n(a, len - 2));
                let _ = Packet::parse(&b);
            }
        }
    }
}
