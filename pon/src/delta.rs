//! Delta packages: a signed differential package that turns one base image into one target
//! image (docs/image-format.md, "Delta packages").
//!
//! A delta package is downloaded as any image is (G.988 leaves the content of a software
//! download to the vendor); the ONU recognises it by its magic at End software download,
//! checks its signature and its base, and rebuilds the target from the image it runs with
//! [`Patcher`], which reads the base and the package a chunk at a time and needs no more
//! memory for an image of 4 GiB than for one of 4 KiB.
//!
//! ```text
//!   0..8    magic "OMCIDLT1"
//!   8..10   format version: 1
//!  10..12   header length: 256
//!  12..16   reserved, 0
//!  16..144  the target image's header, verbatim (model, target version, security version,
//!           payload length and SHA-256, build: docs/image-format.md)
//! 144..158  base version, NUL padded (14 bytes)
//! 158..160  reserved, 0
//! 160..192  SHA-256 of the whole base image file
//! 192..224  SHA-256 of the whole target image file
//! 224..232  patch length
//! 232..256  reserved, 0
//! 256..     patch: bzip2 of a bsdiff 0.2 stream (below)
//! then      Ed25519ph signature (64 bytes) over header and patch, context
//!           [`DELTA_SIGNATURE_CONTEXT`]
//! ```
//!
//! The patch, once decompressed, is the `bsdiff` crate's stream: records of a control block
//! (mix length, u64 LE; copy length, u64 LE; seek, i64 sign-magnitude LE), `mix length` bytes
//! added byte-wise (wrapping) to the base from the current base position, then `copy length`
//! literal bytes; after the record the base position moves on by `mix length` and `seek`.
//! The rebuilt bytes are the whole target image file, its own signature included, so the
//! rebuilt image is byte-identical to the target and verifies as any full image does.

use std::io::{self, Write};

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256, Sha512};

use crate::firmware::{self, ImageError, ImageHeader, SIGNATURE_LEN, STREAM_CHUNK};

/// The first eight bytes of every delta package.
pub const DELTA_MAGIC: [u8; 8] = *b"OMCIDLT1";
/// The package format version this code writes and reads.
pub const DELTA_FORMAT_VERSION: u16 = 1;
/// Bytes of a delta package's header.
pub const DELTA_HEADER_LEN: usize = 256;
/// The Ed25519ph context of a delta package's signature (not an image's: a signature over a
/// package can never pass for one over an image, nor the reverse).
pub const DELTA_SIGNATURE_CONTEXT: &[u8] = b"omci-lab delta package v1";

/// A delta package's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaHeader {
    /// The header of the image the package rebuilds (its model, version, security version).
    pub target: ImageHeader,
    /// The version of the image the package applies to.
    pub base_version: String,
    /// SHA-256 of the whole base image file.
    pub base_sha256: [u8; 32],
    /// SHA-256 of the whole target image file.
    pub target_sha256: [u8; 32],
    /// Bytes of the (compressed) patch.
    pub patch_len: u64,
}

/// Why a delta package cannot be made, read or applied.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The package's header or the target header inside it is not one this code reads.
    #[error("not a delta package of this lab: {0}")]
    Format(ImageError),
    /// The package's lengths do not add up.
    #[error("delta package header says {expected} bytes, the package has {actual}")]
    LengthMismatch {
        /// What the header implies.
        expected: u64,
        /// What there is.
        actual: u64,
    },
    /// The package's signature does not verify with the device's key.
    #[error("the delta package's signature does not verify with this ONU's public key")]
    BadSignature,
    /// The package is for another base image.
    #[error("the delta package applies to base {want} (SHA-256 {want_sha}), not to this image")]
    WrongBase {
        /// The base version the package names.
        want: String,
        /// Its SHA-256, hex.
        want_sha: String,
    },
    /// The patch is damaged: it does not decompress, or its records leave the base or the
    /// target.
    #[error("the delta package's patch is damaged: {0}")]
    BadPatch(String),
    /// The flash could not be read or written.
    #[error("flash: {0}")]
    Io(String),
}

impl DeltaHeader {
    /// The 256 header bytes.
    pub fn to_bytes(&self) -> [u8; DELTA_HEADER_LEN] {
        let mut h = [0u8; DELTA_HEADER_LEN];
        h[0..8].copy_from_slice(&DELTA_MAGIC);
        h[8..10].copy_from_slice(&DELTA_FORMAT_VERSION.to_be_bytes());
        h[10..12].copy_from_slice(&(DELTA_HEADER_LEN as u16).to_be_bytes());
        h[16..144].copy_from_slice(&self.target.to_bytes());
        let v = self.base_version.as_bytes();
        let n = v.len().min(firmware::VERSION_LEN);
        h[144..144 + n].copy_from_slice(&v[..n]);
        h[160..192].copy_from_slice(&self.base_sha256);
        h[192..224].copy_from_slice(&self.target_sha256);
        h[224..232].copy_from_slice(&self.patch_len.to_be_bytes());
        h
    }

    /// Reads a delta header from the front of a package.
    pub fn parse(bytes: &[u8]) -> Result<DeltaHeader, DeltaError> {
        if bytes.len() < DELTA_HEADER_LEN {
            return Err(DeltaError::Format(ImageError::Truncated {
                len: bytes.len() as u64,
            }));
        }
        if bytes[0..8] != DELTA_MAGIC {
            return Err(DeltaError::Format(ImageError::BadMagic));
        }
        let format = u16::from_be_bytes([bytes[8], bytes[9]]);
        let header_len = u16::from_be_bytes([bytes[10], bytes[11]]);
        if format != DELTA_FORMAT_VERSION || usize::from(header_len) != DELTA_HEADER_LEN {
            return Err(DeltaError::Format(ImageError::UnsupportedFormat {
                format,
                header_len,
            }));
        }
        let target = ImageHeader::parse(&bytes[16..144]).map_err(DeltaError::Format)?;
        let v = &bytes[144..158];
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        let base_version = String::from_utf8(v[..end].to_vec())
            .map_err(|_| DeltaError::Format(ImageError::BadText))?;
        let sha = |r: std::ops::Range<usize>| {
            let mut s = [0u8; 32];
            s.copy_from_slice(&bytes[r]);
            s
        };
        let mut pl = [0u8; 8];
        pl.copy_from_slice(&bytes[224..232]);
        Ok(DeltaHeader {
            target,
            base_version,
            base_sha256: sha(160..192),
            target_sha256: sha(192..224),
            patch_len: u64::from_be_bytes(pl),
        })
    }

    /// Total package size: header, patch and signature.
    pub fn package_len(&self) -> u64 {
        DELTA_HEADER_LEN as u64 + self.patch_len + SIGNATURE_LEN as u64
    }

    /// Bytes of the target image the package rebuilds.
    pub fn target_len(&self) -> u64 {
        self.target.image_len()
    }
}

/// True when `head` (a package's or an image's first bytes) starts with the delta magic.
pub fn is_delta(head: &[u8]) -> bool {
    head.len() >= DELTA_MAGIC.len() && head[..DELTA_MAGIC.len()] == DELTA_MAGIC
}

/// The version of a whole image file (its header's), for the package's base field.
fn image_header(image: &[u8]) -> Result<ImageHeader, DeltaError> {
    ImageHeader::parse(image).map_err(DeltaError::Format)
}

/// Makes the signed delta package that rebuilds `target` from `base` (both whole image files
/// of this lab). The diff holds both images and its suffix array in memory: a tool's job,
/// not an ONU's.
pub fn build(base: &[u8], target: &[u8], key: &SigningKey) -> Result<Vec<u8>, DeltaError> {
    let base_header = image_header(base)?;
    let target_header = image_header(target)?;
    if target_header.image_len() != target.len() as u64 {
        return Err(DeltaError::LengthMismatch {
            expected: target_header.image_len(),
            actual: target.len() as u64,
        });
    }
    let mut raw = Vec::new();
    bsdiff::diff(base, target, &mut raw).map_err(|e| DeltaError::Io(e.to_string()))?;
    let mut z = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    z.write_all(&raw)
        .map_err(|e| DeltaError::Io(e.to_string()))?;
    let patch = z.finish().map_err(|e| DeltaError::Io(e.to_string()))?;
    let header = DeltaHeader {
        target: target_header,
        base_version: base_header.version,
        base_sha256: Sha256::digest(base).into(),
        target_sha256: Sha256::digest(target).into(),
        patch_len: patch.len() as u64,
    };
    let mut package = Vec::with_capacity(header.package_len() as usize);
    package.extend_from_slice(&header.to_bytes());
    package.extend_from_slice(&patch);
    let signature = key
        .sign_prehashed(
            Sha512::new().chain_update(&package),
            Some(DELTA_SIGNATURE_CONTEXT),
        )
        .map_err(|e| DeltaError::Io(e.to_string()))?;
    package.extend_from_slice(&signature.to_bytes());
    Ok(package)
}

/// What a pass over a package found, for `onu image inspect` and for the ONU's first check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaInspection {
    /// The header.
    pub header: DeltaHeader,
    /// Whether the signature verifies (None when no key was given).
    pub signature_ok: Option<bool>,
    /// SHA-256 of the whole package file (its manifest's checksum).
    pub file_sha256: [u8; 32],
}

/// Reads a package of `len` bytes through `read(offset, buf)` a chunk at a time: header,
/// lengths, and the signature when `key` is given. Memory does not depend on `len`.
pub fn inspect_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    key: Option<&VerifyingKey>,
) -> Result<DeltaInspection, DeltaError> {
    if len < (DELTA_HEADER_LEN + SIGNATURE_LEN) as u64 {
        return Err(DeltaError::Format(ImageError::Truncated { len }));
    }
    let io = |e: io::Error| DeltaError::Io(e.to_string());
    let mut head = [0u8; DELTA_HEADER_LEN];
    read(0, &mut head).map_err(io)?;
    let header = DeltaHeader::parse(&head)?;
    if header.package_len() != len {
        return Err(DeltaError::LengthMismatch {
            expected: header.package_len(),
            actual: len,
        });
    }
    let mut file = Sha256::new().chain_update(head);
    let mut prehash = Sha512::new().chain_update(head);
    let end = len - SIGNATURE_LEN as u64;
    let sig = firmware::read_signed(
        read,
        (DELTA_HEADER_LEN as u64, end),
        Some(&mut file),
        Some(&mut prehash),
        None,
    )
    .map_err(io)?;
    let signature_ok = key.map(|k| {
        k.verify_prehashed(
            prehash,
            Some(DELTA_SIGNATURE_CONTEXT),
            &Signature::from_bytes(&sig),
        )
        .is_ok()
    });
    Ok(DeltaInspection {
        header,
        signature_ok,
        file_sha256: file.finalize().into(),
    })
}

/// [`inspect_from`] over a package in memory.
pub fn inspect(package: &[u8], key: Option<&VerifyingKey>) -> Result<DeltaInspection, DeltaError> {
    inspect_from(
        package.len() as u64,
        &mut |o, b| {
            let s = o as usize;
            b.copy_from_slice(&package[s..s + b.len()]);
            Ok(())
        },
        key,
    )
}

/// What the device checks before it rebuilds: the package's lengths and signature with its
/// key, then that the package's base is the image it has (`base_sha256`, the committed
/// image's SHA-256). The target's own checks come after the rebuild, on the rebuilt image.
pub fn verify_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    key: &VerifyingKey,
    base_sha256: &[u8; 32],
) -> Result<DeltaHeader, DeltaError> {
    let found = inspect_from(len, read, Some(key))?;
    if found.signature_ok != Some(true) {
        return Err(DeltaError::BadSignature);
    }
    if &found.header.base_sha256 != base_sha256 {
        return Err(DeltaError::WrongBase {
            want: found.header.base_version.clone(),
            want_sha: hex::encode(found.header.base_sha256),
        });
    }
    Ok(found.header)
}

/// Where the patcher reads and writes: the package (in the slot it was downloaded into), the
/// base (the committed slot) and the target (the rebuild area).
pub trait PatchIo {
    /// Reads package bytes from `offset` (from the package's first byte).
    fn read_package(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Reads base image bytes from `offset`.
    fn read_base(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Writes target image bytes at `offset`.
    fn write_target(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
}

/// Where the patcher is in the decompressed stream.
#[derive(Clone, Copy, Debug)]
enum Record {
    /// Reading a 24-byte control block; `have` bytes of it so far.
    Control { block: [u8; 24], have: usize },
    /// Adding `left` more patch bytes to the base.
    Mix { left: u64 },
    /// Copying `left` more literal bytes.
    Copy { left: u64 },
}

/// Rebuilds a target image from a base image and a package's patch, in steps of bounded
/// work, with memory that does not depend on the image size (a few 64 KiB buffers and the
/// bzip2 decoder's state, under 4 MiB). Sans-IO: every byte goes through a [`PatchIo`].
pub struct Patcher {
    decoder: bzip2::Decompress,
    /// Package bytes read but not yet decompressed: `input[input_at..input_len]`.
    input: Vec<u8>,
    input_at: usize,
    input_len: usize,
    /// The next package offset to read, and the patch's end.
    package_at: u64,
    patch_end: u64,
    /// Decompressed bytes not yet applied: `plain[plain_at..plain_len]`.
    plain: Vec<u8>,
    plain_at: usize,
    plain_len: usize,
    /// Scratch for base bytes.
    base_buf: Vec<u8>,
    stream_end: bool,
    record: Record,
    /// Where the base position goes once the current record's mix is applied, and the
    /// record's copy length.
    pending_seek: u64,
    pending_copy: u64,
    base_pos: u64,
    base_len: u64,
    written: u64,
    target_len: u64,
}

impl std::fmt::Debug for Patcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patcher")
            .field("written", &self.written)
            .field("target_len", &self.target_len)
            .finish_non_exhaustive()
    }
}

impl Patcher {
    /// A patcher for the package `header` describes, over a base image of `base_len` bytes.
    pub fn new(header: &DeltaHeader, base_len: u64) -> Self {
        Self {
            decoder: bzip2::Decompress::new(false),
            input: vec![0; STREAM_CHUNK],
            input_at: 0,
            input_len: 0,
            package_at: DELTA_HEADER_LEN as u64,
            patch_end: DELTA_HEADER_LEN as u64 + header.patch_len,
            plain: vec![0; STREAM_CHUNK],
            plain_at: 0,
            plain_len: 0,
            base_buf: vec![0; STREAM_CHUNK],
            stream_end: false,
            record: Record::Control {
                block: [0; 24],
                have: 0,
            },
            pending_seek: 0,
            pending_copy: 0,
            base_pos: 0,
            base_len,
            written: 0,
            target_len: header.target_len(),
        }
    }

    /// Bytes of the target written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes of the target in all.
    pub fn target_len(&self) -> u64 {
        self.target_len
    }

    /// Rebuilds about `budget` more bytes of the target (at least one record's progress).
    /// `Ok(true)` once the whole target is written and the patch ends exactly there.
    pub fn step(&mut self, io: &mut dyn PatchIo, budget: u64) -> Result<bool, DeltaError> {
        let start = self.written;
        loop {
            if self.plain_at == self.plain_len && !self.refill(io)? {
                // The stream ended: the target must be complete, at a record's boundary.
                return match self.record {
                    Record::Control { have: 0, .. } if self.written == self.target_len => Ok(true),
                    _ => Err(DeltaError::BadPatch(format!(
                        "the patch ends after {} of the target's {} bytes",
                        self.written, self.target_len
                    ))),
                };
            }
            let room = budget.saturating_sub(self.written - start).max(1);
            self.apply(io, room)?;
            if self.written - start >= budget {
                return Ok(false);
            }
        }
    }

    /// Decompresses more of the patch into `plain`; false at the stream's end.
    fn refill(&mut self, io: &mut dyn PatchIo) -> Result<bool, DeltaError> {
        self.plain_at = 0;
        self.plain_len = 0;
        while self.plain_len == 0 {
            if self.stream_end {
                return Ok(false);
            }
            if self.input_at == self.input_len {
                let n = (self.patch_end - self.package_at).min(STREAM_CHUNK as u64) as usize;
                if n == 0 {
                    return Err(DeltaError::BadPatch(
                        "the compressed patch ends before its stream does".into(),
                    ));
                }
                io.read_package(self.package_at, &mut self.input[..n])
                    .map_err(|e| DeltaError::Io(e.to_string()))?;
                self.package_at += n as u64;
                self.input_at = 0;
                self.input_len = n;
            }
            let (in0, out0) = (self.decoder.total_in(), self.decoder.total_out());
            let status = self
                .decoder
                .decompress(&self.input[self.input_at..self.input_len], &mut self.plain)
                .map_err(|e| DeltaError::BadPatch(e.to_string()))?;
            self.input_at += (self.decoder.total_in() - in0) as usize;
            self.plain_len = (self.decoder.total_out() - out0) as usize;
            if matches!(status, bzip2::Status::StreamEnd) {
                self.stream_end = true;
                if self.input_at != self.input_len || self.package_at != self.patch_end {
                    return Err(DeltaError::BadPatch(
                        "bytes follow the end of the compressed patch".into(),
                    ));
                }
            }
        }
        Ok(true)
    }

    /// Applies what `plain` holds, record by record, until `room` target bytes are written.
    fn apply(&mut self, io: &mut dyn PatchIo, room: u64) -> Result<(), DeltaError> {
        let bad = |s: String| DeltaError::BadPatch(s);
        let ioe = |e: io::Error| DeltaError::Io(e.to_string());
        let stop = self.written + room;
        while self.plain_at < self.plain_len && self.written < stop {
            let room = stop - self.written;
            let avail = &self.plain[self.plain_at..self.plain_len];
            match &mut self.record {
                Record::Control { block, have } => {
                    let n = (24 - *have).min(avail.len());
                    block[*have..*have + n].copy_from_slice(&avail[..n]);
                    *have += n;
                    self.plain_at += n;
                    if *have < 24 {
                        continue;
                    }
                    let u = |r: std::ops::Range<usize>| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&block[r]);
                        b
                    };
                    let mix = u64::from_le_bytes(u(0..8));
                    let copy = u64::from_le_bytes(u(8..16));
                    let seek = offtin(u(16..24));
                    let (end, base_end) = (
                        self.written
                            .checked_add(mix)
                            .and_then(|x| x.checked_add(copy)),
                        self.base_pos.checked_add(mix),
                    );
                    if end.is_none_or(|e| e > self.target_len) {
                        return Err(bad("a record writes past the target's end".into()));
                    }
                    if base_end.is_none_or(|e| e > self.base_len) {
                        return Err(bad("a record reads past the base's end".into()));
                    }
                    let next = (self.base_pos + mix) as i64;
                    let moved = next.checked_add(seek).filter(|p| *p >= 0);
                    let Some(moved) = moved else {
                        return Err(bad("a record seeks before the base's start".into()));
                    };
                    // Checked above; the base position is only used when a mix follows.
                    self.pending_seek = moved as u64;
                    self.record = if mix > 0 {
                        Record::Mix { left: mix }
                    } else {
                        self.base_pos = self.pending_seek;
                        Record::Copy { left: copy }
                    };
                    self.pending_copy = copy;
                }
                Record::Mix { left } => {
                    let n = (*left).min(avail.len() as u64).min(room) as usize;
                    let base = &mut self.base_buf[..n];
                    io.read_base(self.base_pos, base).map_err(ioe)?;
                    for (b, p) in base.iter_mut().zip(avail[..n].iter()) {
                        *b = b.wrapping_add(*p);
                    }
                    io.write_target(self.written, base).map_err(ioe)?;
                    self.written += n as u64;
                    self.base_pos += n as u64;
                    self.plain_at += n;
                    *left -= n as u64;
                    if *left == 0 {
                        self.base_pos = self.pending_seek;
                        self.record = Record::Copy {
                            left: self.pending_copy,
                        };
                    }
                }
                Record::Copy { left } => {
                    let n = (*left).min(avail.len() as u64).min(room) as usize;
                    io.write_target(self.written, &avail[..n]).map_err(ioe)?;
                    self.written += n as u64;
                    self.plain_at += n;
                    *left -= n as u64;
                }
            }
            if let Record::Copy { left: 0 } = self.record {
                self.record = Record::Control {
                    block: [0; 24],
                    have: 0,
                };
            }
        }
        Ok(())
    }
}

/// bsdiff's sign-magnitude little-endian i64.
fn offtin(b: [u8; 8]) -> i64 {
    let y = i64::from_le_bytes(b);
    if y & (1 << 63) == 0 {
        y
    } else {
        -(y & !(1 << 63))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::{BuildSpec, Derivation, derive_payload, deterministic_payload};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn image(version: &str, payload: &[u8]) -> Vec<u8> {
        let spec = BuildSpec {
            model: "LAB-ONU-1".into(),
            version: version.into(),
            security_version: 2,
            build: 1,
            fails_to_boot: false,
        };
        firmware::build(&spec, payload, &key()).unwrap()
    }

    fn pair(len: usize) -> (Vec<u8>, Vec<u8>) {
        let old = deterministic_payload("base", len);
        let new = derive_payload(
            &old,
            &Derivation {
                changed_pct: 2.0,
                inserted_pct: 1.0,
                moved_pct: 5.0,
                seed: "t".into(),
            },
        );
        (image("V1", &old), image("V2", &new))
    }

    /// The rebuild over images in memory, `budget` bytes per step.
    struct Mem<'a> {
        package: &'a [u8],
        base: &'a [u8],
        target: Vec<u8>,
    }

    impl PatchIo for Mem<'_> {
        fn read_package(&mut self, o: u64, buf: &mut [u8]) -> io::Result<()> {
            buf.copy_from_slice(&self.package[o as usize..o as usize + buf.len()]);
            Ok(())
        }
        fn read_base(&mut self, o: u64, buf: &mut [u8]) -> io::Result<()> {
            buf.copy_from_slice(&self.base[o as usize..o as usize + buf.len()]);
            Ok(())
        }
        fn write_target(&mut self, o: u64, data: &[u8]) -> io::Result<()> {
            assert_eq!(
                o as usize,
                self.target.len(),
                "the target is written in order"
            );
            self.target.extend_from_slice(data);
            Ok(())
        }
    }

    fn rebuild(package: &[u8], base: &[u8], budget: u64) -> Result<Vec<u8>, DeltaError> {
        let header = DeltaHeader::parse(package)?;
        let mut p = Patcher::new(&header, base.len() as u64);
        let mut io = Mem {
            package,
            base,
            target: Vec::new(),
        };
        let mut steps = 0;
        while !p.step(&mut io, budget)? {
            steps += 1;
            assert!(steps < 1_000_000, "the rebuild makes progress");
        }
        Ok(io.target)
    }

    #[test]
    fn a_package_rebuilds_the_target_byte_for_byte_in_small_steps() {
        let (base, target) = pair(300_000);
        let package = build(&base, &target, &key()).unwrap();
        assert!(package.len() < target.len() / 3, "{} bytes", package.len());
        let found = inspect(&package, Some(&key().verifying_key())).unwrap();
        assert_eq!(found.signature_ok, Some(true));
        assert_eq!(found.header.base_version, "V1");
        assert_eq!(found.header.target.version, "V2");
        assert_eq!(found.header.target_len(), target.len() as u64);
        assert_eq!(
            found.header.target_sha256,
            <[u8; 32]>::from(Sha256::digest(&target))
        );
        assert_eq!(
            DeltaHeader::parse(&found.header.to_bytes()).unwrap(),
            found.header
        );
        for budget in [1, 4096, u64::MAX] {
            assert_eq!(
                rebuild(&package, &base, budget).unwrap(),
                target,
                "{budget}"
            );
        }
        let base_sha: [u8; 32] = Sha256::digest(&base).into();
        let mut read = |o: u64, b: &mut [u8]| {
            b.copy_from_slice(&package[o as usize..o as usize + b.len()]);
            Ok(())
        };
        verify_from(
            package.len() as u64,
            &mut read,
            &key().verifying_key(),
            &base_sha,
        )
        .unwrap();
    }

    #[test]
    fn wrong_base_tampering_and_a_damaged_patch_are_refused() {
        let (base, target) = pair(50_000);
        let package = build(&base, &target, &key()).unwrap();
        let len = package.len() as u64;
        let check = |p: &[u8], sha: &[u8; 32]| {
            let mut read = |o: u64, b: &mut [u8]| {
                b.copy_from_slice(&p[o as usize..o as usize + b.len()]);
                Ok(())
            };
            verify_from(len, &mut read, &key().verifying_key(), sha)
        };
        let other: [u8; 32] = Sha256::digest(&target).into();
        assert!(matches!(
            check(&package, &other),
            Err(DeltaError::WrongBase { .. })
        ));
        let base_sha: [u8; 32] = Sha256::digest(&base).into();
        for at in [20, 150, DELTA_HEADER_LEN + 5, package.len() - 3] {
            let mut t = package.clone();
            t[at] ^= 1;
            assert!(check(&t, &base_sha).is_err(), "byte {at}");
        }
        let mut other_key = package.clone();
        other_key.truncate(package.len() - SIGNATURE_LEN);
        let sig = SigningKey::from_bytes(&[8; 32])
            .sign_prehashed(
                Sha512::new().chain_update(&other_key),
                Some(DELTA_SIGNATURE_CONTEXT),
            )
            .unwrap();
        other_key.extend_from_slice(&sig.to_bytes());
        assert_eq!(check(&other_key, &base_sha), Err(DeltaError::BadSignature));
        // A patch damaged past its signature check (the patcher alone): refused, never a
        // panic, and never a target that differs silently.
        for at in [DELTA_HEADER_LEN + 10, package.len() / 2, package.len() - 70] {
            let mut t = package.clone();
            t[at] ^= 0x40;
            match rebuild(&t, &base, 4096) {
                Err(DeltaError::BadPatch(_)) => {}
                Ok(out) => assert_ne!(out, target, "byte {at}"),
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
        // Applied to another base: the records leave it, or the result is not the target.
        let short = &base[..base.len() / 2];
        assert!(rebuild(&package, short, 4096).is_err());
    }

    #[test]
    fn derivation_is_deterministic_and_sized_as_asked() {
        let old = deterministic_payload("o", 200_000);
        let how = Derivation {
            changed_pct: 1.0,
            inserted_pct: 2.0,
            moved_pct: 10.0,
            seed: "s".into(),
        };
        let a = derive_payload(&old, &how);
        assert_eq!(a, derive_payload(&old, &how));
        assert_eq!(a.len(), old.len() + 4000_usize.div_ceil(64) * 64);
        assert_ne!(a, old);
        let same = Derivation {
            changed_pct: 0.0,
            inserted_pct: 0.0,
            moved_pct: 0.0,
            seed: "s".into(),
        };
        assert_eq!(derive_payload(&old, &same), old);
    }
}
