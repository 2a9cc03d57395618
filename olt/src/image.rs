//! The image being rolled out: its bytes once, shared by every session, and what the OLT
//! checks against (size, CRC for End software download, the version the ONUs must report);
//! and how it is cut into windows and sections ([`Cut`]), the same for unicast sessions and the
//! multicast group.

use std::sync::Arc;

use omci_codec::Format;
use omci_codec::contents::{BASELINE_SECTION_DATA_LEN, EXTENDED_MAX_SECTION_DATA_LEN};
use omci_codec::crc::crc32_bzip2;
use onu::image::{ImageError, ImageHeader};

/// An image ready to send.
#[derive(Clone, Debug)]
pub struct UpgradeImage {
    /// The image file, byte for byte.
    pub bytes: Arc<[u8]>,
    /// Its header.
    pub header: ImageHeader,
    /// CRC-32/BZIP2 over the whole image, as End software download carries it.
    pub crc: u32,
}

impl UpgradeImage {
    /// Reads the header of `bytes` (the ONUs check the rest).
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Result<Self, ImageError> {
        let bytes: Arc<[u8]> = bytes.into();
        let header = ImageHeader::parse(&bytes)?;
        Ok(Self {
            crc: crc32_bzip2(&bytes),
            header,
            bytes,
        })
    }

    /// No image: what `olt abort` hands the engine, whose sessions then only read the images,
    /// abort and roll back (nothing is ever sent from it; its version matches no ONU's).
    pub fn placeholder() -> Self {
        Self {
            bytes: Arc::from(Vec::new()),
            header: ImageHeader {
                model: String::new(),
                version: String::new(),
                security_version: 0,
                fails_to_boot: false,
                payload_len: 0,
                payload_sha256: [0; 32],
                build: 0,
            },
            crc: crc32_bzip2(&[]),
        }
    }

    /// Bytes of the image.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty image (never, for a parsed one).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The Software image version attribute the ONUs must report once upgraded.
    pub fn version(&self) -> [u8; 14] {
        self.header.version_attribute()
    }
}

/// How an image is cut for one download: the frame format, the agreed window and the section
/// size (31 data bytes on baseline frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Baseline or extended frames.
    pub format: Format,
    /// Sections per window (1..=256).
    pub window_size: u16,
    /// Data bytes per section.
    pub section_len: usize,
}

impl Cut {
    /// The cut for `format` and `window_size`; `extended_section_len` is the section size of
    /// extended frames (clamped to 1..=1965; baseline sections are always 31 bytes).
    pub fn new(format: Format, window_size: u16, extended_section_len: usize) -> Cut {
        Cut {
            format,
            window_size: window_size.clamp(1, 256),
            section_len: match format {
                Format::Baseline => BASELINE_SECTION_DATA_LEN,
                Format::Extended => extended_section_len.clamp(1, EXTENDED_MAX_SECTION_DATA_LEN),
            },
        }
    }

    fn window_bytes(&self) -> usize {
        self.section_len * usize::from(self.window_size)
    }
}

impl UpgradeImage {
    /// Windows the image is cut into.
    pub fn windows(&self, cut: Cut) -> u32 {
        self.len().div_ceil(cut.window_bytes()) as u32
    }

    /// The image bytes of window `w`.
    fn window_range(&self, cut: Cut, w: u32) -> std::ops::Range<usize> {
        let start = (w as usize * cut.window_bytes()).min(self.len());
        start..(start + cut.window_bytes()).min(self.len())
    }

    /// Sections window `w` holds (the image's last window may hold fewer).
    pub fn sections_in(&self, cut: Cut, w: u32) -> usize {
        self.window_range(cut, w).len().div_ceil(cut.section_len)
    }

    /// CRC-32/BZIP2 of window `w`'s bytes: the window CRC of the envelope.
    pub fn window_crc(&self, cut: Cut, w: u32) -> u32 {
        crc32_bzip2(&self.bytes[self.window_range(cut, w)])
    }

    /// The data of section `n` of window `w`, zero padded to 31 bytes on baseline frames.
    pub fn section(&self, cut: Cut, w: u32, n: usize) -> Vec<u8> {
        let window = self.window_range(cut, w);
        let from = (window.start + n * cut.section_len).min(window.end);
        let mut data = self.bytes[from..(from + cut.section_len).min(window.end)].to_vec();
        if cut.format == Format::Baseline {
            data.resize(cut.section_len, 0);
        }
        data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use onu::image::{BuildSpec, build, deterministic_payload};

    fn image(len: usize) -> UpgradeImage {
        let spec = BuildSpec {
            model: "M".into(),
            version: "V".into(),
            security_version: 1,
            build: 1,
            fails_to_boot: false,
        };
        let bytes = build(
            &spec,
            &deterministic_payload("x", len),
            &SigningKey::from_bytes(&[1; 32]),
        );
        UpgradeImage::new(bytes.unwrap()).unwrap()
    }

    #[test]
    fn windows_and_sections_cover_the_image_once() {
        let img = image(1000); // 1192 bytes
        for cut in [
            Cut::new(Format::Baseline, 8, 0),
            Cut::new(Format::Extended, 3, 100),
            Cut::new(Format::Extended, 1, 5000),
        ] {
            let mut joined = Vec::new();
            for w in 0..img.windows(cut) {
                let mut window = Vec::new();
                for n in 0..img.sections_in(cut, w) {
                    let s = img.section(cut, w, n);
                    if cut.format == Format::Baseline {
                        assert_eq!(s.len(), 31, "baseline sections are padded");
                    }
                    window.extend_from_slice(&s);
                }
                let real = window.len().min(img.len() - joined.len());
                window.truncate(real);
                assert_eq!(
                    img.window_crc(cut, w),
                    crc32_bzip2(&window),
                    "{cut:?} window {w}"
                );
                joined.extend_from_slice(&window);
            }
            assert_eq!(joined, img.bytes.to_vec(), "{cut:?}");
        }
        assert_eq!(Cut::new(Format::Extended, 1, 5000).section_len, 1965);
        assert_eq!(
            img.sections_in(Cut::new(Format::Baseline, 8, 0), 4),
            7,
            "the last window is short"
        );
    }
}
