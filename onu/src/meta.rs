//! The metadata record: which image is committed, which is pending activation, what each slot
//! holds, and the anti-rollback floor.
//!
//! Written atomically in the sense that matters to a flash device: two copies, each with a
//! sequence number and a CRC-32. A write goes to the copy the previous write did not use, so
//! a write torn by power loss damages only that copy, and the other still holds the previous
//! record. Reading takes the valid copy with the higher sequence number.
//!
//! ```text
//!   0..4    magic "OMET"       4 format 1        5 committed image (0/1)
//!   6       pending image (0xFF none)             7 pending image: boot tries so far
//!   8..16   sequence           16..20 anti-rollback floor    20..24 reserved
//!  24..88   slot 0             88..152 slot 1
//! 152..156  CRC-32/BZIP2 of bytes 0..152
//! slot: 0 valid, 1 fails-to-boot flag, 2..4 reserved, 4..8 security version, 8..16 image
//!       length, 16..30 version, 30..32 reserved, 32..64 SHA-256 of the image
//! ```

use std::io;

use omci_codec::crc::crc32_bzip2;

use crate::flash::Flash;

/// Bytes of one encoded record.
pub const RECORD_LEN: usize = 156;
const MAGIC: [u8; 4] = *b"OMET";
const FORMAT: u8 = 1;
const NONE: u8 = 0xFF;

/// What the metadata says about one slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotMeta {
    /// The slot holds a complete image that passed every check.
    pub valid: bool,
    /// The image is a test image that fails to boot.
    pub fails_to_boot: bool,
    /// The image's anti-rollback version.
    pub security_version: u32,
    /// Bytes of the image (of the download in progress while not valid).
    pub image_len: u64,
    /// The version attribute.
    pub version: [u8; 14],
    /// SHA-256 of the whole image, as the manifest's checksum states it.
    pub image_sha256: [u8; 32],
}

/// The metadata record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Incremented by every write; the higher valid copy wins.
    pub sequence: u64,
    /// The committed image: the one that boots unless another is pending activation.
    pub committed: u8,
    /// An image activated but not yet booted: the next boot tries it.
    pub pending: Option<u8>,
    /// Boots of the image about to boot that have started without reaching "booted". The
    /// bootloader counts a try before it starts one, so a crash loop ends.
    pub boot_tries: u8,
    /// The lowest security version the ONU accepts (raised by Commit).
    pub anti_rollback_floor: u32,
    /// The two slots.
    pub slots: [SlotMeta; 2],
}

impl Metadata {
    /// The encoded record.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut b = [0u8; RECORD_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = FORMAT;
        b[5] = self.committed;
        b[6] = self.pending.unwrap_or(NONE);
        b[7] = self.boot_tries;
        b[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        b[16..20].copy_from_slice(&self.anti_rollback_floor.to_be_bytes());
        for (i, s) in self.slots.iter().enumerate() {
            let o = 24 + 64 * i;
            b[o] = u8::from(s.valid);
            b[o + 1] = u8::from(s.fails_to_boot);
            b[o + 4..o + 8].copy_from_slice(&s.security_version.to_be_bytes());
            b[o + 8..o + 16].copy_from_slice(&s.image_len.to_be_bytes());
            b[o + 16..o + 30].copy_from_slice(&s.version);
            b[o + 32..o + 64].copy_from_slice(&s.image_sha256);
        }
        let crc = crc32_bzip2(&b[..152]);
        b[152..156].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// Decodes a record; `None` when it is torn, damaged or of another format.
    pub fn decode(b: &[u8]) -> Option<Metadata> {
        if b.len() != RECORD_LEN
            || b[0..4] != MAGIC
            || b[4] != FORMAT
            || crc32_bzip2(&b[..152]).to_be_bytes() != b[152..156]
            || b[5] > 1
            || !(b[6] <= 1 || b[6] == NONE)
        {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        let slot = |o: usize| {
            let mut version = [0u8; 14];
            version.copy_from_slice(&b[o + 16..o + 30]);
            let mut image_sha256 = [0u8; 32];
            image_sha256.copy_from_slice(&b[o + 32..o + 64]);
            SlotMeta {
                valid: b[o] == 1,
                fails_to_boot: b[o + 1] == 1,
                security_version: u32_at(o + 4),
                image_len: u64_at(o + 8),
                version,
                image_sha256,
            }
        };
        Some(Metadata {
            sequence: u64_at(8),
            committed: b[5],
            pending: (b[6] != NONE).then_some(b[6]),
            boot_tries: b[7],
            anti_rollback_floor: u32_at(16),
            slots: [slot(24), slot(88)],
        })
    }

    /// The copy the next write goes to: never the one holding the current record.
    pub fn next_copy(&self) -> u8 {
        ((self.sequence + 1) % 2) as u8
    }
}

/// The newest valid record of the two copies, `None` when neither is readable.
pub fn load(flash: &mut dyn Flash) -> io::Result<Option<Metadata>> {
    let mut best: Option<Metadata> = None;
    for copy in 0..2 {
        if let Some(m) = flash.read_meta(copy)?.as_deref().and_then(Metadata::decode)
            && best.as_ref().is_none_or(|b| m.sequence > b.sequence)
        {
            best = Some(m);
        }
    }
    Ok(best)
}

/// Writes `meta` as the next record: its sequence is advanced and it goes to the other copy.
pub fn store(flash: &mut dyn Flash, meta: &mut Metadata) -> io::Result<()> {
    let copy = meta.next_copy();
    let mut next = meta.clone();
    next.sequence += 1;
    // Only a record that reached the flash advances the sequence: after a failed write the
    // next one still goes to the copy that does not hold the newest good record.
    flash.write_meta(copy, &next.encode())?;
    meta.sequence = next.sequence;
    Ok(())
}

/// What a write torn by power loss leaves: the first `keep` bytes of the next record in the
/// copy it was going to, nothing else. Used by the fault points.
pub fn store_torn(flash: &mut dyn Flash, meta: &Metadata, keep: usize) -> io::Result<()> {
    let mut next = meta.clone();
    let copy = next.next_copy();
    next.sequence += 1;
    let bytes = next.encode();
    flash.write_meta(copy, &bytes[..keep.min(RECORD_LEN)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::MemFlash;

    fn sample() -> Metadata {
        let mut m = Metadata {
            committed: 1,
            pending: Some(0),
            boot_tries: 2,
            anti_rollback_floor: 7,
            ..Default::default()
        };
        m.slots[0].valid = true;
        m.slots[0].version[..2].copy_from_slice(b"V1");
        m.slots[1].image_len = 12345;
        m.slots[1].image_sha256 = [9; 32];
        m
    }

    #[test]
    fn encode_decode_mirror() {
        let m = sample();
        assert_eq!(Metadata::decode(&m.encode()), Some(m));
    }

    #[test]
    fn a_torn_write_leaves_the_previous_record() {
        let mut flash = MemFlash::default();
        let mut m = sample();
        store(&mut flash, &mut m).unwrap();
        let first = m.clone();
        m.committed = 0;
        for keep in 0..RECORD_LEN {
            let mut f = flash.clone();
            store_torn(&mut f, &m, keep).unwrap();
            assert_eq!(load(&mut f).unwrap(), Some(first.clone()), "torn at {keep}");
        }
        store(&mut flash, &mut m).unwrap();
        assert_eq!(load(&mut flash).unwrap().unwrap().committed, 0);
    }

    #[test]
    fn any_damaged_byte_is_noticed() {
        let b = sample().encode();
        for i in 0..RECORD_LEN {
            let mut d = b;
            d[i] ^= 0x10;
            assert_eq!(Metadata::decode(&d), None, "byte {i}");
        }
    }
}
