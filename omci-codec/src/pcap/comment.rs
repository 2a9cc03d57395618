//! The transport envelope of a captured frame, kept as the packet's comment.
//!
//! A capture holds the OMCI frame only (Ethernet, EtherType 0x88B5, for the OMCI dissector),
//! not the lab's envelope around it ([`crate::envelope`]): the window number, window CRC and
//! missing-section bitmap of the multicast download would be lost. So each packet of a capture
//! the lab writes carries a pcapng comment (`opt_comment` of its Enhanced Packet Block, which
//! Wireshark shows under "Packet comments") in this form, one line:
//!
//! ```text
//! omci-envelope/1 onu-id=65535 gem-port=4000 window=17 window-crc=0x1a2b3c4d
//! omci-envelope/1 onu-id=3 gem-port=3 missing=1,5-7
//! ```
//!
//! - `omci-envelope/1`: the tag, with the envelope version whose fields follow;
//! - then `key=value` fields, separated by one space, in this order when written:
//!   `onu-id` (decimal; 65535 = every ONU, the multicast group) and `gem-port` (decimal),
//!   always; `window` (the absolute window number, decimal), `window-crc` (`0x` and 8 hex
//!   digits) and `missing` (the sections the bitmap names, as ascending numbers and ranges
//!   `a-b` joined by commas, or `none` for a bitmap with no bit set), each only when the
//!   envelope carried it.
//!
//! A comment that does not start with `omci-envelope/` is someone else's and is left alone; one
//! that does but breaks these rules is an error ([`CommentError`]), never half read.

use std::fmt::Write as _;

use crate::envelope::{Envelope, MISSING_LEN, VERSION};
use crate::ids::{GemPort, OnuId, WindowNo};

/// What an envelope comment starts with, before its version.
pub const TAG: &str = "omci-envelope/";

/// The comment that records `envelope` (see the module documentation).
pub fn envelope_comment(envelope: &Envelope) -> String {
    let mut s = format!(
        "{TAG}{VERSION} onu-id={} gem-port={}",
        envelope.onu_id.0, envelope.gem_port.0
    );
    if let Some(w) = envelope.window_no {
        let _ = write!(s, " window={}", w.0);
    }
    if let Some(crc) = envelope.window_crc {
        let _ = write!(s, " window-crc=0x{crc:08x}");
    }
    if let Some(bitmap) = &envelope.missing {
        s.push_str(" missing=");
        s.push_str(&section_ranges(bitmap));
    }
    s
}

/// The envelope an envelope comment records; `Ok(None)` for a comment of another kind.
pub fn parse_envelope_comment(comment: &str) -> Result<Option<Envelope>, CommentError> {
    let Some(rest) = comment.strip_prefix(TAG) else {
        return Ok(None);
    };
    let mut words = rest.split(' ');
    let version = words.next().unwrap_or_default();
    if version != VERSION.to_string() {
        return Err(CommentError::Version(version.to_string()));
    }
    let mut onu_id = None;
    let mut gem_port = None;
    let mut envelope = Envelope::omcc(OnuId(0));
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| CommentError::Field(word.to_string()))?;
        let bad = || CommentError::Value {
            key: key.to_string(),
            value: value.to_string(),
        };
        let fresh = match key {
            "onu-id" => onu_id.replace(decimal(value).ok_or_else(bad)?).is_none(),
            "gem-port" => gem_port.replace(decimal(value).ok_or_else(bad)?).is_none(),
            "window" => envelope
                .window_no
                .replace(WindowNo(decimal(value).ok_or_else(bad)?))
                .is_none(),
            "window-crc" => envelope
                .window_crc
                .replace(crc(value).ok_or_else(bad)?)
                .is_none(),
            "missing" => envelope
                .missing
                .replace(bitmap(value).ok_or_else(bad)?)
                .is_none(),
            _ => return Err(CommentError::Field(word.to_string())),
        };
        if !fresh {
            return Err(CommentError::Repeated(key.to_string()));
        }
    }
    envelope.onu_id = OnuId(onu_id.ok_or(CommentError::Missing("onu-id"))?);
    envelope.gem_port = GemPort(gem_port.ok_or(CommentError::Missing("gem-port"))?);
    Ok(Some(envelope))
}

/// Why an envelope comment could not be read.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommentError {
    /// An envelope version this code does not read.
    #[error("envelope comment of version {0:?} (this code reads version {VERSION})")]
    Version(String),
    /// A word that is not `key=value` of a known key.
    #[error("envelope comment: unknown field {0:?}")]
    Field(String),
    /// A known key with a value out of its form or range.
    #[error("envelope comment: {key}={value:?} is not a valid value")]
    Value {
        /// The key.
        key: String,
        /// Its value as written.
        value: String,
    },
    /// A key given twice.
    #[error("envelope comment: {0} given twice")]
    Repeated(String),
    /// A field every envelope has is absent.
    #[error("envelope comment: no {0}")]
    Missing(&'static str),
}

/// A decimal number without sign, leading zeros or anything else ("0" itself is fine).
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// `0x` and exactly 8 hex digits.
fn crc(s: &str) -> Option<u32> {
    let hex = s.strip_prefix("0x")?;
    (hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

/// "1,5-7" (ascending, no overlap) or "none", as a missing-section bitmap: bit n (byte n / 8,
/// bit n % 8) for section n, as the envelope has it.
fn bitmap(s: &str) -> Option<[u8; MISSING_LEN]> {
    let mut m = [0u8; MISSING_LEN];
    if s == "none" {
        return Some(m);
    }
    let mut next = 0u16; // the lowest section the next range may start at
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (decimal::<u8>(a)?, decimal::<u8>(b)?),
            None => {
                let n = decimal::<u8>(part)?;
                (n, n)
            }
        };
        if u16::from(a) < next || b < a || (part.contains('-') && a == b) {
            return None;
        }
        for n in a..=b {
            m[usize::from(n / 8)] |= 1 << (n % 8);
        }
        next = u16::from(b) + 2; // adjacent ranges would have been written as one
    }
    Some(m)
}

/// The sections a bitmap names, as "1,5-7", or "none".
fn section_ranges(m: &[u8; MISSING_LEN]) -> String {
    let set = |n: usize| m[n / 8] & (1 << (n % 8)) != 0;
    let mut parts = Vec::new();
    let mut n = 0;
    while n < MISSING_LEN * 8 {
        if !set(n) {
            n += 1;
            continue;
        }
        let start = n;
        while n + 1 < MISSING_LEN * 8 && set(n + 1) {
            n += 1;
        }
        parts.push(if start == n {
            start.to_string()
        } else {
            format!("{start}-{n}")
        });
        n += 1;
    }
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::ALL_ONUS;

    fn missing(sections: &[u8]) -> [u8; MISSING_LEN] {
        let mut m = [0u8; MISSING_LEN];
        for &n in sections {
            m[usize::from(n / 8)] |= 1 << (n % 8);
        }
        m
    }

    #[test]
    fn layout_is_as_documented() {
        let group = Envelope {
            onu_id: ALL_ONUS,
            gem_port: GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(WindowNo(17)),
            window_crc: Some(0x1a2b_3c4d),
            missing: None,
        };
        assert_eq!(
            envelope_comment(&group),
            "omci-envelope/1 onu-id=65535 gem-port=4000 window=17 window-crc=0x1a2b3c4d"
        );
        let answer = Envelope {
            missing: Some(missing(&[1, 5, 6, 7])),
            ..Envelope::omcc(OnuId(3))
        };
        assert_eq!(
            envelope_comment(&answer),
            "omci-envelope/1 onu-id=3 gem-port=3 missing=1,5-7"
        );
        assert_eq!(
            envelope_comment(&Envelope {
                missing: Some([0; MISSING_LEN]),
                ..Envelope::omcc(OnuId(0))
            }),
            "omci-envelope/1 onu-id=0 gem-port=0 missing=none"
        );
    }

    #[test]
    fn every_envelope_reads_back() {
        let cases = [
            Envelope::omcc(OnuId(7)),
            Envelope {
                window_no: Some(WindowNo(u32::MAX)),
                ..Envelope::omcc(OnuId(0))
            },
            Envelope {
                onu_id: ALL_ONUS,
                gem_port: GemPort::MULTICAST_DOWNLOAD,
                window_no: Some(WindowNo(0)),
                window_crc: Some(0),
                missing: None,
            },
            Envelope {
                missing: Some([0xff; MISSING_LEN]),
                ..Envelope::omcc(OnuId(128))
            },
            Envelope {
                missing: Some(missing(&[0, 2, 3, 4, 254, 255])),
                ..Envelope::omcc(OnuId(1))
            },
        ];
        for e in cases {
            let text = envelope_comment(&e);
            assert_eq!(parse_envelope_comment(&text), Ok(Some(e)), "{text}");
        }
        assert_eq!(
            envelope_comment(&cases[3]),
            "omci-envelope/1 onu-id=128 gem-port=128 missing=0-255"
        );
    }

    #[test]
    fn other_comments_are_left_alone() {
        assert_eq!(parse_envelope_comment("retransmitted, see #12"), Ok(None));
        assert_eq!(parse_envelope_comment(""), Ok(None));
    }

    #[test]
    fn a_broken_envelope_comment_is_an_error() {
        let err = |s: &str| parse_envelope_comment(s).unwrap_err();
        assert_eq!(
            err("omci-envelope/2 onu-id=1 gem-port=1"),
            CommentError::Version("2".into())
        );
        assert!(matches!(
            err("omci-envelope/1 onu-id=1"),
            CommentError::Missing("gem-port")
        ));
        assert!(matches!(
            err("omci-envelope/1 gem-port=1"),
            CommentError::Missing("onu-id")
        ));
        assert!(matches!(
            err("omci-envelope/1 onu-id=1 gem-port=1 colour=red"),
            CommentError::Field(_)
        ));
        assert!(matches!(
            err("omci-envelope/1 onu-id=1 gem-port=1 window"),
            CommentError::Field(_)
        ));
        assert!(matches!(
            err("omci-envelope/1 onu-id=1  gem-port=1"),
            CommentError::Field(_)
        ));
        assert!(matches!(
            err("omci-envelope/1 onu-id=1 onu-id=2 gem-port=1"),
            CommentError::Repeated(_)
        ));
        for bad in [
            "onu-id=65536",
            "onu-id=-1",
            "onu-id=07",
            "onu-id=",
            "window=4294967296",
            "window=+3",
            "window-crc=1a2b3c4d",
            "window-crc=0x1a2b3c",
            "window-crc=0x1a2b3c4d5",
            "missing=",
            "missing=256",
            "missing=5,1",
            "missing=1-3,2",
            "missing=1,2",
            "missing=3-3",
            "missing=4-2",
            "missing=1,,2",
        ] {
            let text = format!("omci-envelope/1 onu-id=1 gem-port=1 {bad}");
            let text = text.replacen("onu-id=1 ", "", usize::from(bad.starts_with("onu-id")));
            assert!(
                matches!(
                    parse_envelope_comment(&text),
                    Err(CommentError::Value { .. })
                ),
                "{text}: {:?}",
                parse_envelope_comment(&text)
            );
        }
    }
}
