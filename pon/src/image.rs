//! The image a download sends: its bytes once, shared by every session that sends it, and
//! what the sender checks against (size, CRC for End software download, the version the ONU
//! must report once upgraded); and how it is cut into windows and sections ([`Cut`]), the same
//! for the OLT's unicast sessions, its multicast group and the conformance suite.

use std::sync::Arc;

use crate::firmware::{ImageError, ImageHeader};
use omci_codec::crc::crc32_bzip2;
use omci_codec::{Format, Windowing};

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
                self.len() as u32,
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
        cut.windowing.window_crc(&self.bytes, w)
    }

    /// The data of section `n` of window `w`, zero padded to 31 bytes on baseline frames.
    pub fn section(&self, cut: Cut, w: u32, n: usize) -> Vec<u8> {
        cut.windowing
            .section(&self.bytes, w, n as u32, cut.format == Format::Baseline)
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::{BuildSpec, build, deterministic_payload};
    use ed25519_dalek::SigningKey;

    #[test]
    fn the_cut_covers_the_image_once_with_baseline_sections_padded() {
        let spec = BuildSpec {
            model: "M".into(),
            version: "V".into(),
            security_version: 1,
            build: 1,
            fails_to_boot: false,
        };
        let bytes = build(
            &spec,
            &deterministic_payload("x", 1000),
            &SigningKey::from_bytes(&[1; 32]),
        );
        let img = UpgradeImage::new(bytes.unwrap()).unwrap();
        for cut in [
            img.cut(Format::Baseline, 8, 0),
            img.cut(Format::Extended, 3, 100),
        ] {
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
            assert_eq!(joined, img.bytes.to_vec(), "{cut:?}");
        }
        assert_eq!(
            img.cut(Format::Extended, 1, 5000).windowing.section_len,
            1965
        );
    }
}
