//! The transport envelope: what stands for the GEM layer around each OMCI frame that this lab
//! carries in a UDP datagram.
//!
//! On a real PON an OMCI frame travels in a GEM frame whose header names the GEM port (the
//! ONU's OMCC channel). Over UDP on one machine, each datagram carries one OMCI frame behind
//! this 16-byte envelope:
//!
//! ```text
//!  0..2   magic "OG" (0x4F 0x47)
//!  2      version: 1
//!  3      flags: bit 0 window number present, bit 1 window CRC present, bit 2 missing-section
//!         bitmap present, bits 3..7 zero
//!  4..6   ONU-ID (big-endian); 0xFFFF = every ONU (multicast)
//!  6..8   GEM port (big-endian): the ONU's OMCC port, or 4000 for the multicast download
//!  8..12  absolute window number (big-endian; 0 when absent)
//! 12..16  window CRC: CRC-32/BZIP2 of the window's image bytes (0 when absent)
//! 16..48  (bit 2 only) missing-section bitmap: bit n (byte n / 8, bit n % 8) = section n of
//!         the window is missing
//! 16.. or 48..  the OMCI frame (baseline or extended, with its trailer)
//! ```
//!
//! The window fields are this lab's extension for the multicast software download
//! (docs/multicast.md): every Download section the lab's OLT sends carries its absolute window
//! number, and a window's last section (the one with AR set) carries the window CRC, which the
//! ONU checks against what it wrote before it acknowledges. An ONU that answers a window's AR
//! section with "processing error" adds the bitmap of the sections it misses, so that the OLT
//! repairs those sections only (G.988's answer says only that something is missing). The OMCI
//! frame inside is standard G.988 in every case; an ONU or OLT that ignores these fields still
//! sees a standard download.

use crate::ids::{GemPort, OnuId, WindowNo};

/// Bytes of the envelope before the OMCI frame (without a missing-section bitmap).
pub const ENVELOPE_LEN: usize = 16;
/// Bytes of the missing-section bitmap (one bit per section of a 256-section window).
pub const MISSING_LEN: usize = 32;
/// The envelope's first two bytes.
pub const MAGIC: [u8; 2] = *b"OG";
/// The envelope version this code writes and reads.
pub const VERSION: u8 = 1;
/// ONU-ID of a datagram meant for every ONU (sent to the multicast group).
pub const ALL_ONUS: OnuId = OnuId(0xFFFF);

const FLAG_WINDOW_NO: u8 = 0x01;
const FLAG_WINDOW_CRC: u8 = 0x02;
const FLAG_MISSING: u8 = 0x04;

/// The envelope's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The ONU the frame is for or from ([`ALL_ONUS`] on the multicast group).
    pub onu_id: OnuId,
    /// The channel: the ONU's OMCC port or the multicast download port.
    pub gem_port: GemPort,
    /// For a Download section of the lab's OLT: its absolute window number.
    pub window_no: Option<WindowNo>,
    /// For a window's last Download section: CRC-32/BZIP2 of the window's image bytes.
    pub window_crc: Option<u32>,
    /// With an ONU's "processing error" to a window's AR section: the sections it misses.
    pub missing: Option<[u8; MISSING_LEN]>,
}

impl Envelope {
    /// An envelope for ordinary OMCC traffic of one ONU.
    pub const fn omcc(onu_id: OnuId) -> Self {
        Self {
            onu_id,
            gem_port: GemPort::omcc(onu_id),
            window_no: None,
            window_crc: None,
            missing: None,
        }
    }

    /// Bytes of this envelope (16, or 48 with a missing-section bitmap).
    pub fn len(&self) -> usize {
        ENVELOPE_LEN + self.missing.map_or(0, |_| MISSING_LEN)
    }

    /// Never empty; see [`Envelope::len`].
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the envelope into the first [`Envelope::len`] bytes of `out`.
    ///
    /// # Panics
    /// If `out` is shorter than [`Envelope::len`]; callers size their buffers with it.
    pub fn write(&self, out: &mut [u8]) {
        let flags = self.window_no.map_or(0, |_| FLAG_WINDOW_NO)
            | self.window_crc.map_or(0, |_| FLAG_WINDOW_CRC)
            | self.missing.map_or(0, |_| FLAG_MISSING);
        out[0..2].copy_from_slice(&MAGIC);
        out[2] = VERSION;
        out[3] = flags;
        out[4..6].copy_from_slice(&self.onu_id.0.to_be_bytes());
        out[6..8].copy_from_slice(&self.gem_port.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.window_no.map_or(0, |w| w.0).to_be_bytes());
        out[12..16].copy_from_slice(&self.window_crc.unwrap_or(0).to_be_bytes());
        if let Some(m) = &self.missing {
            out[ENVELOPE_LEN..ENVELOPE_LEN + MISSING_LEN].copy_from_slice(m);
        }
    }

    /// A datagram: this envelope followed by `frame`.
    pub fn wrap(&self, frame: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; self.len() + frame.len()];
        self.write(&mut out);
        out[self.len()..].copy_from_slice(frame);
        out
    }

    /// Splits a datagram into its envelope and OMCI frame.
    pub fn parse(datagram: &[u8]) -> Result<(Envelope, &[u8]), EnvelopeError> {
        if datagram.len() < ENVELOPE_LEN {
            return Err(EnvelopeError::Truncated(datagram.len()));
        }
        if datagram[0..2] != MAGIC {
            return Err(EnvelopeError::BadMagic([datagram[0], datagram[1]]));
        }
        if datagram[2] != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(datagram[2]));
        }
        let flags = datagram[3];
        if flags & !(FLAG_WINDOW_NO | FLAG_WINDOW_CRC | FLAG_MISSING) != 0 {
            return Err(EnvelopeError::ReservedFlags(flags));
        }
        let has_missing = flags & FLAG_MISSING != 0;
        let len = ENVELOPE_LEN + if has_missing { MISSING_LEN } else { 0 };
        if datagram.len() < len {
            return Err(EnvelopeError::Truncated(datagram.len()));
        }
        let u16_at = |i: usize| u16::from_be_bytes([datagram[i], datagram[i + 1]]);
        let u32_at = |i: usize| {
            u32::from_be_bytes([
                datagram[i],
                datagram[i + 1],
                datagram[i + 2],
                datagram[i + 3],
            ])
        };
        let envelope = Envelope {
            onu_id: OnuId(u16_at(4)),
            gem_port: GemPort(u16_at(6)),
            window_no: (flags & FLAG_WINDOW_NO != 0).then(|| WindowNo(u32_at(8))),
            window_crc: (flags & FLAG_WINDOW_CRC != 0).then(|| u32_at(12)),
            missing: has_missing.then(|| {
                let mut m = [0u8; MISSING_LEN];
                m.copy_from_slice(&datagram[ENVELOPE_LEN..len]);
                m
            }),
        };
        Ok((envelope, &datagram[len..]))
    }
}

/// Why a datagram is not a frame of this lab's transport. Such datagrams are dropped and
/// counted, never answered.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than the envelope.
    #[error("datagram of {0} bytes is shorter than its envelope")]
    Truncated(usize),
    /// Not this lab's magic.
    #[error("bad envelope magic {0:02x?} (expected \"OG\")")]
    BadMagic([u8; 2]),
    /// A version this code does not read.
    #[error("envelope version {0} is not supported (this is version 1)")]
    UnsupportedVersion(u8),
    /// Flag bits that version 1 reserves.
    #[error("reserved envelope flag bits set: 0x{0:02x}")]
    ReservedFlags(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        let e = Envelope {
            onu_id: OnuId(0x0102),
            gem_port: GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(WindowNo(0x0A0B0C0D)),
            window_crc: Some(0xDEADBEEF),
            missing: None,
        };
        let d = e.wrap(&[0x55; 3]);
        assert_eq!(
            hex::encode(&d),
            "4f47010301020fa00a0b0c0ddeadbeef555555",
            "magic, version, flags, ONU-ID, GEM port 4000, window, CRC, frame"
        );
        let (back, frame) = Envelope::parse(&d).unwrap();
        assert_eq!(back, e);
        assert_eq!(frame, &[0x55; 3]);
    }

    #[test]
    fn absent_window_fields_stay_absent() {
        let e = Envelope::omcc(OnuId(7));
        assert_eq!(e.gem_port, GemPort(7));
        let d = e.wrap(&[]);
        assert_eq!(d[3], 0);
        assert_eq!(Envelope::parse(&d).unwrap().0, e);
    }

    #[test]
    fn a_missing_section_bitmap_rides_between_envelope_and_frame() {
        let mut missing = [0u8; MISSING_LEN];
        missing[0] = 0b1000_0001; // sections 0 and 7
        let e = Envelope {
            missing: Some(missing),
            ..Envelope::omcc(OnuId(9))
        };
        let d = e.wrap(&[0x77; 2]);
        assert_eq!(d.len(), 16 + 32 + 2);
        assert_eq!(d[3], 0x04);
        let (back, frame) = Envelope::parse(&d).unwrap();
        assert_eq!(back, e);
        assert_eq!(frame, &[0x77; 2]);
        assert_eq!(Envelope::parse(&d[..40]), Err(EnvelopeError::Truncated(40)));
    }

    #[test]
    fn what_is_not_ours_is_refused() {
        let good = Envelope::omcc(OnuId(1)).wrap(&[1]);
        assert_eq!(
            Envelope::parse(&good[..15]),
            Err(EnvelopeError::Truncated(15))
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            Envelope::parse(&bad),
            Err(EnvelopeError::BadMagic(_))
        ));
        let mut bad = good.clone();
        bad[2] = 2;
        assert_eq!(
            Envelope::parse(&bad),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
        let mut bad = good;
        bad[3] = 0x80;
        assert_eq!(
            Envelope::parse(&bad),
            Err(EnvelopeError::ReservedFlags(0x80))
        );
    }
}
