//! CRC-32/BZIP2, the checksum of the baseline OMCI trailer, of the End software download image
//! CRC and of this project's multicast window CRC.
//!
//! G.988 clause 11.2 (baseline message format) takes the trailer CRC from the AAL5 CPCS-PDU
//! trailer of ITU-T I.363.5: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, not reflected,
//! final XOR 0xFFFFFFFF. The `crc` crate calls this `CRC_32_BZIP2`. The same algorithm is what
//! open OLT stacks compute over the software image for End software download.
//!
//! A slice-by-16 table is used: it is what keeps a 44-byte trailer check near 10 ns.

use crc::{Crc, Table};

/// The CRC-32/BZIP2 engine, shared by everything in this crate and by its users.
pub static CRC32_BZIP2: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&crc::CRC_32_BZIP2);

/// CRC-32/BZIP2 over `bytes` in one call.
pub fn crc32_bzip2(bytes: &[u8]) -> u32 {
    CRC32_BZIP2.checksum(bytes)
}

/// The value a CRC-32/BZIP2 computed over data *and* its own big-endian CRC always gives.
///
/// A good 48-byte baseline frame therefore checks to this residue over all 48 bytes.
pub const CRC32_BZIP2_RESIDUE: u32 = 0x38FB_2284;

/// An incremental CRC-32/BZIP2, for data that arrives in pieces: an image streamed section by
/// section into flash, or a download window assembled from its sections.
pub struct Crc32Digest {
    inner: crc::Digest<'static, u32, Table<16>>,
}

impl Crc32Digest {
    /// A digest with nothing fed yet.
    pub fn new() -> Self {
        Self {
            inner: CRC32_BZIP2.digest(),
        }
    }

    /// Feeds the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The CRC of everything fed so far (the digest is consumed).
    pub fn finalize(self) -> u32 {
        self.inner.finalize()
    }
}

impl Default for Crc32Digest {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Crc32Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc32Digest").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_the_catalogue() {
        // The catalogue check value of CRC-32/BZIP2 over "123456789".
        assert_eq!(crc32_bzip2(b"123456789"), 0xFC89_1918);
    }

    #[test]
    fn residue_over_data_and_its_crc() {
        let data = b"any data at all";
        let mut framed = data.to_vec();
        framed.extend_from_slice(&crc32_bzip2(data).to_be_bytes());
        assert_eq!(crc32_bzip2(&framed) ^ 0xFFFF_FFFF, !CRC32_BZIP2_RESIDUE);
        assert_eq!(crc32_bzip2(&framed), CRC32_BZIP2_RESIDUE);
    }

    #[test]
    fn digest_matches_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut d = Crc32Digest::new();
        for chunk in data.chunks(31) {
            d.update(chunk);
        }
        assert_eq!(d.finalize(), crc32_bzip2(&data));
    }
}
