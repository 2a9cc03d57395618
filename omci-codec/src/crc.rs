//! CRC-32/BZIP2, the checksum of the baseline OMCI trailer, of the End software download image
//! CRC and of this project's multicast window CRC.
//!
//! G.988 clause 11.2 (baseline message format) takes the trailer CRC from the AAL5 CPCS-PDU
//! trailer of ITU-T I.363.5: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, not reflected,
//! final XOR 0xFFFFFFFF. The `crc` crate calls this `CRC_32_BZIP2`. The same algorithm is what
//! open OLT stacks compute over the software image for End software download.
//!
//! Two engines, chosen by length, give the same answer:
//! - up to [`SIMD_THRESHOLD`] bytes (a baseline frame, a section): slice-by-16 with the `crc`
//!   crate's tables, the last 4..15 bytes folded in one step with the same tables instead of one
//!   byte at a time. A 44-byte trailer check costs about a third of the crate's own loop.
//! - from [`SIMD_THRESHOLD`] bytes on (extended frames, whole images): the `crc-fast` crate's
//!   carry-less-multiply folding, several times faster on large inputs.

use crc::{Crc, Table};

/// The `crc` crate's CRC-32/BZIP2 engine; its tables drive the short-input path here.
pub static CRC32_BZIP2: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&crc::CRC_32_BZIP2);

/// Inputs of at least this many bytes go to the SIMD engine (measured crossover; see
/// docs/benchmarks.md).
pub const SIMD_THRESHOLD: usize = 256;

/// CRC-32/BZIP2 over `bytes` in one call.
pub fn crc32_bzip2(bytes: &[u8]) -> u32 {
    if bytes.len() >= SIMD_THRESHOLD {
        crc32_bzip2_simd(bytes)
    } else {
        crc32_bzip2_sliced(bytes)
    }
}

/// The short-input engine alone (slice-by-16 with a one-step tail). [`crc32_bzip2`] picks it
/// below [`SIMD_THRESHOLD`]; public so that the benchmark can place the threshold.
pub fn crc32_bzip2_sliced(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

/// The SIMD engine alone (`crc-fast`). [`crc32_bzip2`] picks it from [`SIMD_THRESHOLD`] on;
/// public so that the benchmark can place the threshold.
pub fn crc32_bzip2_simd(bytes: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Bzip2, bytes) as u32
}

/// Feeds `bytes` into a running (not yet finalised) CRC register, most significant bit first.
///
/// `table[k][b]` is the CRC of byte `b` followed by `k` zero bytes, so a block of `n` bytes
/// (4 <= n <= 16) folds into the register in one step: the register is XORed into the block's
/// first four bytes and each byte looks up the table for the number of bytes after it.
fn update(mut crc: u32, bytes: &[u8]) -> u32 {
    let table = CRC32_BZIP2.table();
    let (blocks, rest) = bytes.as_chunks::<16>();
    for block in blocks {
        crc = fold16(crc, table, block);
    }
    if rest.len() >= 4 {
        fold(crc, table, rest)
    } else {
        rest.iter().fold(crc, |crc, &b| {
            table[0][usize::from((crc >> 24) as u8 ^ b)] ^ (crc << 8)
        })
    }
}

/// One slice-by-16 step; the fixed size lets every index be a constant.
#[inline(always)]
fn fold16(crc: u32, table: &[[u32; 256]; 16], block: &[u8; 16]) -> u32 {
    let r = crc.to_be_bytes();
    let t = |k: usize, b: u8| table[k][usize::from(b)];
    // The twelve lookups that do not depend on the running CRC first: they overlap with the
    // previous block, and only the last four wait for it (order matters: ~2x on long inputs).
    let independent = t(0, block[15])
        ^ t(1, block[14])
        ^ t(2, block[13])
        ^ t(3, block[12])
        ^ t(4, block[11])
        ^ t(5, block[10])
        ^ t(6, block[9])
        ^ t(7, block[8])
        ^ t(8, block[7])
        ^ t(9, block[6])
        ^ t(10, block[5])
        ^ t(11, block[4]);
    independent
        ^ t(12, block[3] ^ r[3])
        ^ t(13, block[2] ^ r[2])
        ^ t(14, block[1] ^ r[1])
        ^ t(15, block[0] ^ r[0])
}

/// One slice-by-n step, 4 <= `block.len()` <= 15.
#[inline(always)]
fn fold(crc: u32, table: &[[u32; 256]; 16], block: &[u8]) -> u32 {
    let n = block.len();
    // Byte by byte, not as one 32-bit load: a frame is checksummed right after it is written,
    // and a wide load over several fresh narrow stores stalls store forwarding.
    let register = crc.to_be_bytes();
    let mut acc = 0u32;
    for (j, r) in register.iter().enumerate() {
        acc ^= table[n - 1 - j][usize::from(block[j] ^ r)];
    }
    for (j, b) in block.iter().enumerate().skip(4) {
        acc ^= table[n - 1 - j][usize::from(*b)];
    }
    acc
}

/// The value a CRC-32/BZIP2 computed over data *and* its own big-endian CRC always gives.
///
/// A good 48-byte baseline frame therefore checks to this residue over all 48 bytes.
pub const CRC32_BZIP2_RESIDUE: u32 = 0x38FB_2284;

/// An incremental CRC-32/BZIP2, for data that arrives in pieces: an image streamed section by
/// section into flash, or a download window assembled from its sections. Feeding the pieces
/// gives the same CRC as [`crc32_bzip2`] over their concatenation.
#[derive(Clone, Debug)]
pub struct Crc32Digest {
    register: u32,
}

impl Crc32Digest {
    /// A digest with nothing fed yet.
    pub fn new() -> Self {
        Self { register: !0 }
    }

    /// Feeds the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.register = update(self.register, bytes);
    }

    /// The CRC of everything fed so far.
    pub fn finalize(&self) -> u32 {
        !self.register
    }
}

impl Default for Crc32Digest {
    fn default() -> Self {
        Self::new()
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
    fn both_engines_agree_with_the_crate_at_every_length() {
        let data: Vec<u8> = (0..2000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            let bytes = &data[..len];
            assert_eq!(
                crc32_bzip2(bytes),
                CRC32_BZIP2.checksum(bytes),
                "length {len}"
            );
            let want = CRC32_BZIP2.checksum(bytes);
            assert_eq!(crc32_bzip2_sliced(bytes), want, "length {len}");
            assert_eq!(crc32_bzip2_simd(bytes), want, "length {len}");
        }
    }

    #[test]
    fn digest_matches_one_shot() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut d = Crc32Digest::new();
        for chunk in data.chunks(31) {
            d.update(chunk);
        }
        assert_eq!(d.finalize(), crc32_bzip2(&data));
        let mut odd = Crc32Digest::new();
        for chunk in data.chunks(7) {
            odd.update(chunk);
        }
        assert_eq!(odd.finalize(), crc32_bzip2(&data));
    }
}
