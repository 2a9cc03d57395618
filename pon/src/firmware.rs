//! The firmware image format of this lab's ONUs (docs/image-format.md).
//!
//! An image is what the OLT downloads into a software image slot, byte for byte:
//!
//! ```text
//!   0..8    magic "OMCIIMG1"
//!   8..10   format version: 2
//!  10..12   header length: 128
//!  12..44   device model, UTF-8, NUL padded (32 bytes)
//!  44..58   version, NUL padded (14 bytes: the Software image ME's version attribute)
//!  58..62   anti-rollback (security) version
//!  62       flags: bit 0 = this image fails to boot (a test image)
//!  63       reserved, 0
//!  64..72   payload length
//!  72..104  SHA-256 of the payload
//! 104..112  build number
//! 112..128  reserved, 0
//! 128..     payload
//! then      Ed25519ph signature (64 bytes) over the header
//! ```
//!
//! The signature is Ed25519ph (RFC 8032, the pre-hashed variant, context
//! [`SIGNATURE_CONTEXT`]) over SHA-512 of the header, which carries the payload's SHA-256:
//! an ONU verifies a slot of any size by streaming its payload through SHA-256 once, with
//! memory that does not grow with the image (format version 1 signed header and payload,
//! which cost a SHA-512 pass over the payload as well; docs/decisions.md, "Image format 2").
//!
//! All integers are big-endian. An ONU sets "is valid" only when the download's CRC matches
//! and [`verify`] passes: magic and lengths, model, anti-rollback floor, payload SHA-256 and
//! signature against the ONU's provisioned public key.

use std::fmt;
use std::io;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use omci_codec::crc::Crc32Digest;
use sha2::{Digest, Sha256, Sha512};

/// The Ed25519ph context string of this lab's image signatures.
pub const SIGNATURE_CONTEXT: &[u8] = b"omci-lab firmware image v2";

/// Bytes read from flash at a time when an image is streamed.
pub const STREAM_CHUNK: usize = 64 * 1024;

/// The first eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"OMCIIMG1";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 2;
/// Bytes of the header.
pub const HEADER_LEN: usize = 128;
/// Bytes of the signature after the payload.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of the model field.
pub const MODEL_LEN: usize = 32;
/// Bytes of the version field (the Software image ME's version attribute).
pub const VERSION_LEN: usize = 14;
/// Header flag: the image is built to fail its boot (for rehearsing a bad release).
pub const FLAG_FAILS_TO_BOOT: u8 = 0x01;

/// The largest image G.988 can download: Start software download carries the image size in
/// 4 bytes.
pub const MAX_IMAGE_LEN: u64 = u32::MAX as u64;
/// Bytes a software image slot of the lab's ONU holds unless told otherwise (`onu run
/// --slot-size`): an ONU refuses a larger image at Start software download.
pub const DEFAULT_SLOT_SIZE: u64 = 64 << 20;
/// The largest payload of an image that fits a slot of [`DEFAULT_SLOT_SIZE`] (the header and
/// the signature take the rest). A scenario's `image.size` is refused above it.
pub const MAX_PAYLOAD_LEN: u64 = DEFAULT_SLOT_SIZE - (HEADER_LEN + SIGNATURE_LEN) as u64;

/// The header's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// The device model the image is for; an ONU of another model refuses it.
    pub model: String,
    /// The version string, at most 14 bytes: what the Software image ME reports.
    pub version: String,
    /// Anti-rollback (security) version: an ONU refuses an image below its floor.
    pub security_version: u32,
    /// A test image that fails to boot.
    pub fails_to_boot: bool,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
    /// Build number.
    pub build: u64,
}

impl ImageHeader {
    /// The 128 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        h[10..12].copy_from_slice(&(HEADER_LEN as u16).to_be_bytes());
        let model = self.model.as_bytes();
        h[12..12 + model.len().min(MODEL_LEN)]
            .copy_from_slice(&model[..model.len().min(MODEL_LEN)]);
        let version = self.version.as_bytes();
        let n = version.len().min(VERSION_LEN);
        h[44..44 + n].copy_from_slice(&version[..n]);
        h[58..62].copy_from_slice(&self.security_version.to_be_bytes());
        h[62] = if self.fails_to_boot {
            FLAG_FAILS_TO_BOOT
        } else {
            0
        };
        h[64..72].copy_from_slice(&self.payload_len.to_be_bytes());
        h[72..104].copy_from_slice(&self.payload_sha256);
        h[104..112].copy_from_slice(&self.build.to_be_bytes());
        h
    }

    /// Reads a header from the front of an image.
    pub fn parse(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
        if bytes.len() < HEADER_LEN {
            return Err(ImageError::Truncated {
                len: bytes.len() as u64,
            });
        }
        if bytes[0..8] != MAGIC {
            return Err(ImageError::BadMagic);
        }
        let format = u16::from_be_bytes([bytes[8], bytes[9]]);
        let header_len = u16::from_be_bytes([bytes[10], bytes[11]]);
        if format != FORMAT_VERSION || usize::from(header_len) != HEADER_LEN {
            return Err(ImageError::UnsupportedFormat { format, header_len });
        }
        let text = |b: &[u8]| -> Result<String, ImageError> {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8(b[..end].to_vec()).map_err(|_| ImageError::BadText)
        };
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&bytes[72..104]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[i..i + 8]);
            u64::from_be_bytes(b)
        };
        Ok(ImageHeader {
            model: text(&bytes[12..44])?,
            version: text(&bytes[44..58])?,
            security_version: u32::from_be_bytes([bytes[58], bytes[59], bytes[60], bytes[61]]),
            fails_to_boot: bytes[62] & FLAG_FAILS_TO_BOOT != 0,
            payload_len: u64_at(64),
            payload_sha256: sha,
            build: u64_at(104),
        })
    }

    /// Total image size: header, payload and signature.
    pub fn image_len(&self) -> u64 {
        HEADER_LEN as u64 + self.payload_len + SIGNATURE_LEN as u64
    }

    /// The version as the 14-byte Software image attribute.
    pub fn version_attribute(&self) -> [u8; VERSION_LEN] {
        let mut v = [0u8; VERSION_LEN];
        let b = self.version.as_bytes();
        let n = b.len().min(VERSION_LEN);
        v[..n].copy_from_slice(&b[..n]);
        v
    }
}

/// What building an image needs.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    /// Device model, at most 32 bytes.
    pub model: String,
    /// Version, at most 14 bytes.
    pub version: String,
    /// Anti-rollback version.
    pub security_version: u32,
    /// Build number.
    pub build: u64,
    /// Build an image that fails to boot.
    pub fails_to_boot: bool,
}

/// Why an image was refused. Each check of [`verify`] has its own reason.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Shorter than a header plus a signature.
    #[error("image of {len} bytes is too short to hold a header and a signature")]
    Truncated {
        /// The image length.
        len: u64,
    },
    /// Not this format's magic.
    #[error("not an image of this lab (bad magic)")]
    BadMagic,
    /// A format version or header length this code does not read.
    #[error(
        "image format version {format} with a {header_len}-byte header: this lab reads format 2 with a 128-byte header (build the image again with `onu image build`)"
    )]
    UnsupportedFormat {
        /// Format version.
        format: u16,
        /// Header length.
        header_len: u16,
    },
    /// Model or version not UTF-8.
    #[error("model or version is not UTF-8")]
    BadText,
    /// Header length + payload length + signature != image length.
    #[error("header says {expected} bytes, the image has {actual}")]
    LengthMismatch {
        /// What the header implies.
        expected: u64,
        /// What there is.
        actual: u64,
    },
    /// Built for another device model.
    #[error("image is for model {image:?}, this ONU is {device:?}")]
    WrongModel {
        /// The image's model.
        image: String,
        /// The device's.
        device: String,
    },
    /// Below the anti-rollback floor: a downgrade.
    #[error("security version {image} is below this ONU's anti-rollback floor {floor}")]
    Downgrade {
        /// The image's security version.
        image: u32,
        /// The ONU's floor.
        floor: u32,
    },
    /// The payload does not hash to the header's SHA-256.
    #[error("payload SHA-256 does not match the header")]
    HashMismatch,
    /// The signature does not verify with the ONU's public key.
    #[error("signature does not verify with this ONU's public key")]
    BadSignature,
    /// The image could not be read.
    #[error("reading the image: {0}")]
    Io(String),
    /// Invalid text for a model or version when building.
    #[error("{field} {value:?} is longer than {max} bytes")]
    FieldTooLong {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// Its maximum.
        max: usize,
    },
}

/// A public key file's text (`onu image keygen`'s PREFIX.pub: 32 bytes in hex), or why not.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, &'static str> {
    let bytes = hex::decode(text.trim()).map_err(|_| "is not a hex key")?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| "is not a 32-byte key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "is not an Ed25519 public key")
}

/// What verification needs to know about the device.
#[derive(Clone, Debug)]
pub struct DevicePolicy {
    /// The device's model.
    pub model: String,
    /// The lowest security version the device accepts.
    pub anti_rollback_floor: u32,
    /// The key release images are signed with.
    pub public_key: VerifyingKey,
}

/// Builds a signed image around `payload`.
pub fn build(spec: &BuildSpec, payload: &[u8], key: &SigningKey) -> Result<Vec<u8>, ImageError> {
    for (field, value, max) in [
        ("model", &spec.model, MODEL_LEN),
        ("version", &spec.version, VERSION_LEN),
    ] {
        if value.len() > max {
            return Err(ImageError::FieldTooLong {
                field,
                value: value.clone(),
                max,
            });
        }
    }
    let header = ImageHeader {
        model: spec.model.clone(),
        version: spec.version.clone(),
        security_version: spec.security_version,
        fails_to_boot: spec.fails_to_boot,
        payload_len: payload.len() as u64,
        payload_sha256: Sha256::digest(payload).into(),
        build: spec.build,
    };
    let mut image = Vec::with_capacity(header.image_len() as usize);
    image.extend_from_slice(&header.to_bytes());
    image.extend_from_slice(payload);
    let signature = key
        .sign_prehashed(
            Sha512::new().chain_update(&image[..HEADER_LEN]),
            Some(SIGNATURE_CONTEXT),
        )
        .map_err(|e| ImageError::Io(e.to_string()))?;
    image.extend_from_slice(&signature.to_bytes());
    Ok(image)
}

/// `len` bytes of deterministic, incompressible payload: SHA-256 in counter mode over `seed`.
/// The same seed and length always give the same bytes, so a scenario needs no payload file.
pub fn deterministic_payload(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// How to derive a new payload from an old one, for realistic delta tests: shares of the old
/// payload's length, in percent, that are changed in place (16-byte runs), inserted (64-byte
/// runs of new bytes) and moved elsewhere (16 KiB blocks). The same seed gives the same bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivation {
    /// Percent of the bytes changed in place, spread over the payload.
    pub changed_pct: f64,
    /// Percent of the length inserted as new bytes.
    pub inserted_pct: f64,
    /// Percent of the bytes moved to another place.
    pub moved_pct: f64,
    /// Seed of the positions and the new bytes.
    pub seed: String,
}

/// A deterministic stream of numbers from `seed` (SHA-256 in counter mode).
struct Draw {
    bytes: Vec<u8>,
    at: usize,
}

impl Draw {
    fn new(seed: &str, what: &str, n: usize) -> Self {
        Self {
            bytes: deterministic_payload(&format!("{seed}/{what}"), n * 8),
            at: 0,
        }
    }
    /// A number below `bound` (`bound` > 0).
    fn below(&mut self, bound: usize) -> usize {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[self.at..self.at + 8]);
        self.at += 8;
        (u64::from_be_bytes(b) % bound as u64) as usize
    }
}

/// A new payload derived from `old` as `how` says (moves first, then changes, then
/// insertions). Memory: the old and the new payload.
pub fn derive_payload(old: &[u8], how: &Derivation) -> Vec<u8> {
    const RUN: usize = 16;
    const INSERT: usize = 64;
    const BLOCK: usize = 16 << 10;
    let share = |pct: f64| ((old.len() as f64) * pct.clamp(0.0, 100.0) / 100.0) as usize;
    let mut new = old.to_vec();
    // Moves: a block cut out and put back elsewhere.
    let moves = share(how.moved_pct)
        .div_ceil(BLOCK)
        .min(new.len() / BLOCK.max(1));
    let mut d = Draw::new(&how.seed, "moves", moves * 2);
    for _ in 0..moves {
        let len = new.len();
        if len <= BLOCK {
            break;
        }
        let from = d.below(len - BLOCK);
        let block: Vec<u8> = new.drain(from..from + BLOCK).collect();
        let to = d.below(new.len());
        new.splice(to..to, block);
    }
    // Changes: runs of bytes flipped in place, one per stretch of the payload.
    let runs = share(how.changed_pct).div_ceil(RUN);
    if runs > 0 && !new.is_empty() {
        let stretch = (new.len() / runs).max(1);
        let mut d = Draw::new(&how.seed, "changes", runs);
        for i in 0..runs {
            let at = i * stretch + d.below(stretch.saturating_sub(RUN).max(1));
            for b in new.iter_mut().skip(at).take(RUN) {
                *b ^= 0xA5;
            }
        }
    }
    // Insertions: runs of new bytes at sorted positions, in one pass.
    let inserts = share(how.inserted_pct).div_ceil(INSERT);
    if inserts > 0 {
        let mut d = Draw::new(&how.seed, "inserts", inserts);
        let mut at: Vec<usize> = (0..inserts).map(|_| d.below(new.len() + 1)).collect();
        at.sort_unstable();
        let fresh = deterministic_payload(&format!("{}/inserted", how.seed), inserts * INSERT);
        let mut out = Vec::with_capacity(new.len() + fresh.len());
        let mut from = 0;
        for (i, p) in at.into_iter().enumerate() {
            out.extend_from_slice(&new[from..p]);
            out.extend_from_slice(&fresh[i * INSERT..(i + 1) * INSERT]);
            from = p;
        }
        out.extend_from_slice(&new[from..]);
        new = out;
    }
    new
}

/// Everything a pass over an image found, for `onu image inspect` and for the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The header.
    pub header: ImageHeader,
    /// Whether the payload hashes to the header's SHA-256.
    pub hash_ok: bool,
    /// Whether the signature verifies (None when no key was given).
    pub signature_ok: Option<bool>,
    /// SHA-256 of the whole image file (the manifest's checksum).
    pub file_sha256: [u8; 32],
}

/// Reads the bytes `[from, end)` through `read(offset, buf)` a chunk at a time into each hash
/// given (`file`, `prehash`, `payload`), then the signature that follows them, which `file`
/// takes too: the one pass over a signed file (an image or a delta package) that inspection
/// makes, in memory that does not depend on its size.
pub(crate) fn read_signed(
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    (from, end): (u64, u64),
    mut file: Option<&mut Sha256>,
    mut prehash: Option<&mut Sha512>,
    mut payload: Option<&mut Sha256>,
) -> io::Result<[u8; SIGNATURE_LEN]> {
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut at = from;
    while at < end {
        let n = (end - at).min(STREAM_CHUNK as u64) as usize;
        read(at, &mut buf[..n])?;
        if let Some(f) = file.as_mut() {
            f.update(&buf[..n]);
        }
        if let Some(p) = prehash.as_mut() {
            p.update(&buf[..n]);
        }
        if let Some(p) = payload.as_mut() {
            p.update(&buf[..n]);
        }
        at += n as u64;
    }
    let mut sig = [0u8; SIGNATURE_LEN];
    read(end, &mut sig)?;
    if let Some(f) = file {
        f.update(sig);
    }
    Ok(sig)
}

/// Reads `len` bytes of image through `read(offset, buf)`, chunk by chunk, and checks what
/// can be checked without a device: header, lengths, payload hash, and the signature when a
/// key is given. Memory use does not depend on `len`.
pub fn inspect_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    key: Option<&VerifyingKey>,
) -> Result<Inspection, ImageError> {
    let mut file = Sha256::new();
    let (header, hash_ok, signature_ok) = pass(len, read, key, Some(&mut file))?;
    Ok(Inspection {
        header,
        hash_ok,
        signature_ok,
        file_sha256: file.finalize().into(),
    })
}

/// The one pass over an image: its header, whether the payload hashes to the header's
/// SHA-256, whether the signature verifies (when a key is given); `file`, when given, takes
/// every byte.
fn pass(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    key: Option<&VerifyingKey>,
    mut file: Option<&mut Sha256>,
) -> Result<(ImageHeader, bool, Option<bool>), ImageError> {
    if len < (HEADER_LEN + SIGNATURE_LEN) as u64 {
        return Err(ImageError::Truncated { len });
    }
    let io = |e: io::Error| ImageError::Io(e.to_string());
    let mut head = [0u8; HEADER_LEN];
    read(0, &mut head).map_err(io)?;
    let header = ImageHeader::parse(&head)?;
    check_length(&header, len)?;
    if let Some(f) = file.as_mut() {
        f.update(head);
    }
    let mut payload = Sha256::new();
    let payload_end = HEADER_LEN as u64 + header.payload_len;
    let sig = read_signed(
        read,
        (HEADER_LEN as u64, payload_end),
        file,
        None,
        Some(&mut payload),
    )
    .map_err(io)?;
    let signature_ok = key.map(|k| {
        k.verify_prehashed(
            Sha512::new().chain_update(head),
            Some(SIGNATURE_CONTEXT),
            &Signature::from_bytes(&sig),
        )
        .is_ok()
    });
    let hash_ok = payload.finalize()[..] == header.payload_sha256;
    Ok((header, hash_ok, signature_ok))
}

/// [`inspect_from`] over an image in memory.
pub fn inspect(image: &[u8], key: Option<&VerifyingKey>) -> Result<Inspection, ImageError> {
    inspect_from(image.len() as u64, &mut slice_reader(image), key)
}

fn slice_reader(image: &[u8]) -> impl FnMut(u64, &mut [u8]) -> io::Result<()> + '_ {
    move |offset, buf| {
        let start = offset as usize;
        buf.copy_from_slice(&image[start..start + buf.len()]);
        Ok(())
    }
}

fn check_length(header: &ImageHeader, actual: u64) -> Result<(), ImageError> {
    let expected = header.image_len();
    if expected != actual {
        return Err(ImageError::LengthMismatch { expected, actual });
    }
    Ok(())
}

/// The device's checks, in order: header and lengths, model, anti-rollback floor, payload
/// SHA-256, signature. Streams the image; returns what the pass found.
pub fn verify_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    policy: &DevicePolicy,
) -> Result<Inspection, ImageError> {
    let found = inspect_from(len, read, Some(&policy.public_key))?;
    policy.check(&found.header, found.hash_ok, found.signature_ok)?;
    Ok(found)
}

/// [`verify_from`]'s checks without the SHA-256 of the whole file, which only a download
/// records (the slot's identity): what a bootloader needs, one hash pass over the payload.
/// Returns the header.
pub fn check_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    policy: &DevicePolicy,
) -> Result<ImageHeader, ImageError> {
    let (header, hash_ok, signature_ok) = pass(len, read, Some(&policy.public_key), None)?;
    policy.check(&header, hash_ok, signature_ok)?;
    Ok(header)
}

/// [`verify_from`] over an image in memory.
pub fn verify(image: &[u8], policy: &DevicePolicy) -> Result<Inspection, ImageError> {
    verify_from(image.len() as u64, &mut slice_reader(image), policy)
}

impl DevicePolicy {
    /// The checks after a pass over an image, in order: model, anti-rollback floor, payload
    /// SHA-256, signature.
    fn check(
        &self,
        h: &ImageHeader,
        hash_ok: bool,
        signature_ok: Option<bool>,
    ) -> Result<(), ImageError> {
        if h.model != self.model {
            return Err(ImageError::WrongModel {
                image: h.model.clone(),
                device: self.model.clone(),
            });
        }
        if h.security_version < self.anti_rollback_floor {
            return Err(ImageError::Downgrade {
                image: h.security_version,
                floor: self.anti_rollback_floor,
            });
        }
        if !hash_ok {
            return Err(ImageError::HashMismatch);
        }
        if signature_ok != Some(true) {
            return Err(ImageError::BadSignature);
        }
        Ok(())
    }
}

/// [`verify_from`] and the CRC-32/BZIP2 of the same `len` bytes, in one pass over them: End
/// software download checks its CRC and the image together, reading the slot once. The CRC
/// covers all `len` bytes even when a check stops early (what the check did not read is read
/// for the CRC alone); an `Err` is a read that failed.
pub fn verify_and_crc_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
    policy: &DevicePolicy,
) -> io::Result<(u32, Result<Inspection, ImageError>)> {
    let mut crc = Crc32Digest::new();
    // The bytes before `at` have been taken into the CRC (the checks read in order).
    let mut at = 0u64;
    let found = verify_from(
        len,
        &mut |offset, buf| {
            read(offset, buf)?;
            if offset == at {
                crc.update(buf);
                at += buf.len() as u64;
            }
            Ok(())
        },
        policy,
    );
    if let Err(ImageError::Io(e)) = &found {
        return Err(io::Error::other(e.clone()));
    }
    let mut buf = vec![0u8; STREAM_CHUNK];
    while at < len {
        let n = (len - at).min(STREAM_CHUNK as u64) as usize;
        read(at, &mut buf[..n])?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    Ok((crc.finalize(), found))
}

/// CRC-32/BZIP2 of `len` bytes read through `read`, chunk by chunk (End software download).
pub fn crc_from(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<u32> {
    let mut crc = Crc32Digest::new();
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(STREAM_CHUNK as u64) as usize;
        read(at, &mut buf[..n])?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    Ok(crc.finalize())
}

impl fmt::Display for ImageHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model:            {}", self.model)?;
        writeln!(f, "version:          {}", self.version)?;
        writeln!(f, "security version: {}", self.security_version)?;
        writeln!(f, "build:            {}", self.build)?;
        writeln!(
            f,
            "fails to boot:    {}",
            if self.fails_to_boot {
                "yes (test image)"
            } else {
                "no"
            }
        )?;
        writeln!(f, "payload:          {} bytes", self.payload_len)?;
        write!(f, "payload SHA-256:  {}", hex::encode(self.payload_sha256))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn spec() -> BuildSpec {
        BuildSpec {
            model: "LAB-ONU-1".into(),
            version: "V2.0.0".into(),
            security_version: 5,
            build: 42,
            fails_to_boot: false,
        }
    }

    fn policy() -> DevicePolicy {
        DevicePolicy {
            model: "LAB-ONU-1".into(),
            anti_rollback_floor: 3,
            public_key: key(1).verifying_key(),
        }
    }

    #[test]
    fn a_built_image_verifies_and_reads_back() {
        let payload = deterministic_payload("x", 1000);
        let image = build(&spec(), &payload, &key(1)).unwrap();
        assert_eq!(image.len(), 128 + 1000 + 64);
        let h = verify(&image, &policy()).unwrap().header;
        assert_eq!(h.version, "V2.0.0");
        assert_eq!(h.build, 42);
        assert_eq!(&h.version_attribute()[..6], b"V2.0.0");
        let i = inspect(&image, Some(&key(1).verifying_key())).unwrap();
        assert!(i.hash_ok && i.signature_ok == Some(true));
    }

    #[test]
    fn every_check_refuses_its_fault() {
        let image = build(&spec(), &deterministic_payload("x", 100), &key(1)).unwrap();
        let mut p = policy();
        p.model = "OTHER".into();
        assert!(matches!(
            verify(&image, &p),
            Err(ImageError::WrongModel { .. })
        ));
        let mut p = policy();
        p.anti_rollback_floor = 6;
        assert_eq!(
            verify(&image, &p),
            Err(ImageError::Downgrade { image: 5, floor: 6 })
        );
        let mut tampered = image.clone();
        tampered[HEADER_LEN + 10] ^= 1;
        assert_eq!(verify(&tampered, &policy()), Err(ImageError::HashMismatch));
        let mut p = policy();
        p.public_key = key(2).verifying_key();
        assert_eq!(verify(&image, &p), Err(ImageError::BadSignature));
        // A header edited after signing (the rollback version raised) fails the signature.
        let mut forged = image.clone();
        forged[61] = 9;
        assert_eq!(verify(&forged, &policy()), Err(ImageError::BadSignature));
        assert!(matches!(
            verify(&image[..image.len() - 1], &policy()),
            Err(ImageError::LengthMismatch { .. })
        ));
        assert!(matches!(
            verify(&image[..100], &policy()),
            Err(ImageError::Truncated { .. })
        ));
        let mut not_ours = image;
        not_ours[0] = b'X';
        assert_eq!(verify(&not_ours, &policy()), Err(ImageError::BadMagic));
    }

    #[test]
    fn the_signature_covers_the_payload_through_its_hash() {
        let image = build(&spec(), &deterministic_payload("x", 100), &key(1)).unwrap();
        // A new payload with its SHA-256 written into the header: the header no longer is
        // the one signed.
        let mut forged = image.clone();
        forged[HEADER_LEN + 10] ^= 1;
        let hash: [u8; 32] = Sha256::digest(&forged[HEADER_LEN..HEADER_LEN + 100]).into();
        forged[72..104].copy_from_slice(&hash);
        assert_eq!(verify(&forged, &policy()), Err(ImageError::BadSignature));
        // The bootloader's check without the file's SHA-256 agrees with the full one.
        let check = |img: &[u8]| check_from(img.len() as u64, &mut slice_reader(img), &policy());
        assert_eq!(check(&forged), Err(ImageError::BadSignature));
        assert_eq!(
            check(&image).unwrap(),
            verify(&image, &policy()).unwrap().header
        );
        // An image of format version 1 (signed over header and payload) is not read.
        let mut v1 = image;
        v1[8..10].copy_from_slice(&1u16.to_be_bytes());
        assert!(matches!(
            verify(&v1, &policy()),
            Err(ImageError::UnsupportedFormat { .. })
        ));
    }

    #[test]
    fn fields_too_long_are_refused() {
        let mut s = spec();
        s.version = "V1234567890.12345".into();
        assert!(matches!(
            build(&s, &[], &key(1)),
            Err(ImageError::FieldTooLong { .. })
        ));
    }

    #[test]
    fn payload_is_deterministic() {
        assert_eq!(
            deterministic_payload("a", 100),
            deterministic_payload("a", 100)
        );
        assert_ne!(
            deterministic_payload("a", 100),
            deterministic_payload("b", 100)
        );
        assert_eq!(
            deterministic_payload("a", 33)[..],
            deterministic_payload("a", 100)[..33]
        );
    }
}
