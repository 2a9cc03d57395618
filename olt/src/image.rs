//! The image being rolled out: its bytes once, shared by every session, and what the OLT
//! checks against (size, CRC for End software download, the version the ONUs must report).

use std::sync::Arc;

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
