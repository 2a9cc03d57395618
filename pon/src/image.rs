//! The image a download sends: its bytes once, shared by every session that sends it, and
//! what the sender checks against (size, CRC for End software download, the version the ONU
//! must report once upgraded); and how it is cut into windows and sections ([`Cut`]), the same
//! for the OLT's unicast sessions, its multicast group and the conformance suite.
//!
//! An image of up to [`IN_MEMORY`] bytes is held in memory; a larger one stays in its file and
//! each section is read from it when it is sent, so that the OLT's memory does not grow with
//! the image (a few windows' worth at most). G.988's image size is a 32-bit field: an image of
//! 4 GiB or more cannot be announced in Start software download, and is refused before the
//! first frame.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::delta::{self, DELTA_HEADER_LEN, DeltaHeader};
use crate::firmware::{ImageError, ImageHeader, STREAM_CHUNK};
use omci_codec::crc::Crc32Digest;
use omci_codec::{Format, Windowing};
use sha2::{Digest, Sha256};

/// Images up to this size are held in memory; larger ones are read from their file.
pub const IN_MEMORY: u64 = 64 << 20;

/// The largest image G.988 can announce: Start software download's image size is 32 bits.
pub const MAX_IMAGE: u64 = u32::MAX as u64;

/// Why an image file cannot be rolled out.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// 4 GiB or more.
    #[error(
        "{path} is {len} bytes: Start software download carries the image size in 32 bits, so an image is at most 4294967295 bytes"
    )]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        len: u64,
    },
    /// Not a whole image of this lab's format.
    #[error("{path} is not a whole image of this lab: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        source: ImageError,
    },
}

/// Where an image's bytes are.
#[derive(Clone, Debug)]
enum Store {
    /// In memory.
    Memory(Arc<[u8]>),
    /// In its file, read when a section is sent.
    File(Arc<File>),
}

/// An image ready to send.
#[derive(Clone, Debug)]
pub struct UpgradeImage {
    store: Store,
    len: u32,
    /// Its header; for a delta package, the header of the target image it rebuilds.
    pub header: ImageHeader,
    /// For a delta package (docs/image-format.md), its header: the base it applies to.
    pub delta: Option<DeltaHeader>,
    /// CRC-32/BZIP2 over the whole image, as End software download carries it.
    pub crc: u32,
    /// SHA-256 of the whole file (what a manifest's checksum and the journal name it by).
    pub sha256: [u8; 32],
}

impl UpgradeImage {
    /// An image in memory: its header is read and its length checked against it (the ONUs
    /// check the rest).
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Result<Self, ImageError> {
        let bytes: Arc<[u8]> = bytes.into();
        if bytes.len() as u64 > MAX_IMAGE {
            return Err(ImageError::Truncated {
                len: bytes.len() as u64,
            });
        }
        let (header, delta) = check_header(&bytes, bytes.len() as u64)?;
        let mut crc = Crc32Digest::new();
        crc.update(&bytes);
        Ok(Self {
            len: bytes.len() as u32,
            crc: crc.finalize(),
            sha256: Sha256::digest(&bytes).into(),
            header,
            delta,
            store: Store::Memory(bytes),
        })
    }

    /// The image in the file at `path`: in memory up to [`IN_MEMORY`] bytes, read from the file
    /// as it is sent beyond. Refused before anything is sent when it is 4 GiB or more, or is
    /// not a whole image of this lab (a header, the payload it announces, a signature).
    pub fn open(path: &Path) -> Result<Self, ImageFileError> {
        let name = path.display().to_string();
        let io = |source| ImageFileError::Io {
            path: name.clone(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            // A device or a pipe has no length to trust (/dev/zero would be read forever).
            return Err(ImageFileError::Io {
                path: name,
                source: std::io::Error::other("not a regular file"),
            });
        }
        let len = meta.len();
        if len > MAX_IMAGE {
            return Err(ImageFileError::TooLarge { path: name, len });
        }
        if len <= IN_MEMORY {
            let bytes = std::fs::read(path).map_err(io)?;
            return UpgradeImage::new(bytes)
                .map_err(|source| ImageFileError::Format { path: name, source });
        }
        let mut head = [0u8; DELTA_HEADER_LEN];
        file.read_exact_at(&mut head, 0).map_err(io)?;
        let (header, delta) =
            check_header(&head, len).map_err(|source| ImageFileError::Format {
                path: name.clone(),
                source,
            })?;
        // One pass for the CRC of End software download and the file's SHA-256.
        let (mut crc, mut sha) = (Crc32Digest::new(), Sha256::new());
        let mut buf = vec![0u8; STREAM_CHUNK];
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(STREAM_CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], at).map_err(io)?;
            crc.update(&buf[..n]);
            sha.update(&buf[..n]);
            at += n as u64;
        }
        Ok(Self {
            store: Store::File(Arc::new(file)),
            len: len as u32,
            header,
            delta,
            crc: crc.finalize(),
            sha256: sha.finalize().into(),
        })
    }

    /// Bytes of the image.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True for an empty image (never, for a checked one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when the image stays in its file (it is larger than [`IN_MEMORY`]).
    pub fn is_streamed(&self) -> bool {
        matches!(self.store, Store::File(_))
    }

    /// The Software image version attribute the ONUs must report once upgraded.
    pub fn version(&self) -> [u8; 14] {
        self.header.version_attribute()
    }

    /// True for a delta package.
    pub fn is_delta(&self) -> bool {
        self.delta.is_some()
    }

    /// One pass over the whole image with the checks a device would make before it trusts
    /// it and that need no device: header and lengths, payload SHA-256, and the signature
    /// when `key` is given ([`crate::firmware::inspect_from`]). The OLT's pre-checks. For a
    /// delta package: its header, lengths and signature ([`crate::delta::inspect_from`]);
    /// `hash_ok` then stands for the lengths (the target's payload is checked by the ONU,
    /// once rebuilt), and `header` is the target's.
    pub fn inspect(
        &self,
        key: Option<&ed25519_dalek::VerifyingKey>,
    ) -> Result<crate::firmware::Inspection, ImageError> {
        let mut read = |offset: u64, buf: &mut [u8]| {
            let got = self.read(offset..offset + buf.len() as u64);
            if got.len() != buf.len() {
                return Err(std::io::Error::other("the image file could not be read"));
            }
            buf.copy_from_slice(&got);
            Ok(())
        };
        if self.delta.is_some() {
            return delta::inspect_from(u64::from(self.len), &mut read, key)
                .map(|found| crate::firmware::Inspection {
                    header: found.header.target,
                    hash_ok: true,
                    signature_ok: found.signature_ok,
                    file_sha256: found.file_sha256,
                })
                .map_err(|e| match e {
                    delta::DeltaError::Format(e) => e,
                    other => ImageError::Io(other.to_string()),
                });
        }
        crate::firmware::inspect_from(u64::from(self.len), &mut read, key)
    }

    /// The image bytes in `range` (an empty vector where the file cannot be read: the section
    /// then fails its window CRC at the ONU and is sent again).
    fn read(&self, range: std::ops::Range<u64>) -> std::borrow::Cow<'_, [u8]> {
        match &self.store {
            Store::Memory(b) => {
                let end = (range.end as usize).min(b.len());
                let start = (range.start as usize).min(end);
                std::borrow::Cow::Borrowed(&b[start..end])
            }
            Store::File(f) => {
                let mut buf = vec![0u8; (range.end - range.start) as usize];
                match f.read_exact_at(&mut buf, range.start) {
                    Ok(()) => std::borrow::Cow::Owned(buf),
                    Err(_) => std::borrow::Cow::Owned(Vec::new()),
                }
            }
        }
    }
}

/// The header of an image of `len` bytes, whose first bytes are `head` (and the delta header,
/// for a delta package); its lengths must add up to `len`.
fn check_header(head: &[u8], len: u64) -> Result<(ImageHeader, Option<DeltaHeader>), ImageError> {
    if delta::is_delta(head) {
        let d = DeltaHeader::parse(head).map_err(|e| match e {
            delta::DeltaError::Format(e) => e,
            other => ImageError::Io(other.to_string()),
        })?;
        if d.package_len() != len {
            return Err(ImageError::LengthMismatch {
                expected: d.package_len(),
                actual: len,
            });
        }
        return Ok((d.target.clone(), Some(d)));
    }
    let header = ImageHeader::parse(head)?;
    let expected = header.image_len();
    if expected != len {
        return Err(ImageError::LengthMismatch {
            expected,
            actual: len,
        });
    }
    Ok((header, None))
}

/// How a download cuts an image: the frame format and the agreed windowing
/// ([`omci_codec::Windowing`], the same geometry the ONU uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Baseline or extended frames (baseline sections are padded to 31 bytes).
    pub format: Format,
    /// Sections per window, bytes per section, image size.
    pub windowing: Windowing,
}

impl UpgradeImage {
    /// How this image is cut for `format` and `window_size`; `extended_section_len` is the
    /// section size of extended frames (clamped to 1..=1965; baseline sections are 31 bytes).
    pub fn cut(&self, format: Format, window_size: u16, extended_section_len: usize) -> Cut {
        Cut {
            format,
            windowing: Windowing::new(
                self.len,
                window_size,
                Windowing::section_len_for(format, extended_section_len),
            ),
        }
    }

    /// Windows the image is cut into.
    pub fn windows(&self, cut: Cut) -> u32 {
        cut.windowing.windows()
    }

    /// Sections window `w` holds (the image's last window may hold fewer).
    pub fn sections_in(&self, cut: Cut, w: u32) -> usize {
        cut.windowing.sections_in(w) as usize
    }

    /// CRC-32/BZIP2 of window `w`'s bytes: the window CRC of the envelope.
    pub fn window_crc(&self, cut: Cut, w: u32) -> u32 {
        let r = cut.windowing.window_range(w);
        let mut crc = Crc32Digest::new();
        crc.update(&self.read(r));
        crc.finalize()
    }

    /// The data of section `n` of window `w`, zero padded to 31 bytes on baseline frames.
    pub fn section(&self, cut: Cut, w: u32, n: usize) -> Vec<u8> {
        let mut data = self
            .read(cut.windowing.section_range(w, n as u32))
            .into_owned();
        if cut.format == Format::Baseline {
            data.resize(cut.windowing.section_len as usize, 0);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::{BuildSpec, build, deterministic_payload};
    use ed25519_dalek::SigningKey;

    fn bytes(len: usize) -> Vec<u8> {
        let spec = BuildSpec {
            model: "M".into(),
            version: "V".into(),
            security_version: 1,
            build: 1,
            fails_to_boot: false,
        };
        build(
            &spec,
            &deterministic_payload("x", len),
            &SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap()
    }

    fn joined(img: &UpgradeImage, cut: Cut) -> Vec<u8> {
        let mut joined = Vec::new();
        for w in 0..img.windows(cut) {
            for n in 0..img.sections_in(cut, w) {
                let s = img.section(cut, w, n);
                if cut.format == Format::Baseline {
                    assert_eq!(s.len(), 31, "baseline sections are padded");
                }
                joined.extend_from_slice(&s);
            }
        }
        joined.truncate(img.len());
        joined
    }

    #[test]
    fn the_cut_covers_the_image_once_with_baseline_sections_padded() {
        let raw = bytes(1000);
        let img = UpgradeImage::new(raw.clone()).unwrap();
        for cut in [
            img.cut(Format::Baseline, 8, 0),
            img.cut(Format::Extended, 3, 100),
        ] {
            assert_eq!(joined(&img, cut), raw, "{cut:?}");
        }
        assert_eq!(
            img.cut(Format::Extended, 1, 5000).windowing.section_len,
            1965
        );
        assert_eq!(img.sha256, <[u8; 32]>::from(Sha256::digest(&raw)));
    }

    #[test]
    fn an_image_read_from_its_file_is_cut_the_same() {
        let raw = bytes(5000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.img");
        std::fs::write(&path, &raw).unwrap();
        let memory = UpgradeImage::new(raw.clone()).unwrap();
        let file = File::open(&path).unwrap();
        let streamed = UpgradeImage {
            store: Store::File(Arc::new(file)),
            ..memory.clone()
        };
        let cut = memory.cut(Format::Baseline, 8, 0);
        assert_eq!(joined(&streamed, cut), raw);
        for w in 0..memory.windows(cut) {
            assert_eq!(streamed.window_crc(cut, w), memory.window_crc(cut, w));
        }
        let opened = UpgradeImage::open(&path).unwrap();
        assert_eq!((opened.crc, opened.sha256), (memory.crc, memory.sha256));
    }

    #[test]
    fn images_that_cannot_be_sent_are_refused_before_the_first_frame() {
        let dir = tempfile::tempdir().unwrap();
        // A header with nothing after it.
        let short = dir.path().join("short.img");
        std::fs::write(&short, &bytes(1000)[..crate::firmware::HEADER_LEN]).unwrap();
        let e = UpgradeImage::open(&short).unwrap_err().to_string();
        assert!(e.contains("not a whole image"), "{e}");
        // 4 GiB (sparse): refused by its size, without reading it.
        let huge = dir.path().join("huge.img");
        let f = File::create(&huge).unwrap();
        f.set_len(MAX_IMAGE + 1).unwrap();
        let e = UpgradeImage::open(&huge).unwrap_err().to_string();
        assert!(e.contains("32 bits"), "{e}");
        // Larger than held in memory: streamed, and refused when it is not an image.
        let big = dir.path().join("big.img");
        let f = File::create(&big).unwrap();
        f.set_len(IN_MEMORY + 1).unwrap();
        let e = UpgradeImage::open(&big).unwrap_err().to_string();
        assert!(e.contains("not a whole image"), "{e}");
    }
}
