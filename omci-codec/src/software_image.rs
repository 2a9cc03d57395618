//! The Software image managed entity (G.988 clause 9.1.4, ME class 7).
//!
//! An ONU has two instances per circuit pack, image 0 and image 1; the ME instance is
//! `slot << 8 | image` (the slot is 0 for the ONU's own software). At any time at most one image
//! is committed (boots by default) and at most one is active (is running).

use std::fmt;

/// Which software image an instance of ME class 7 names: `instance = slot << 8 | image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SoftwareImageId {
    /// The circuit pack slot (0 for the ONU's main software; G.988 9.1.4 "first byte").
    pub slot: u8,
    /// The image within the slot: 0 or 1.
    pub image: u8,
}

impl SoftwareImageId {
    /// Image `image` of the ONU's own software (slot 0).
    pub const fn onu(image: u8) -> Self {
        Self { slot: 0, image }
    }

    /// The ME instance number of this image.
    pub const fn instance(self) -> u16 {
        ((self.slot as u16) << 8) | self.image as u16
    }

    /// The image named by an ME instance number.
    pub const fn from_instance(instance: u16) -> Self {
        Self {
            slot: (instance >> 8) as u8,
            image: (instance & 0xFF) as u8,
        }
    }

    /// The other image of the same slot (image 0 <-> image 1).
    pub const fn other(self) -> Self {
        Self {
            slot: self.slot,
            image: self.image ^ 1,
        }
    }
}

impl fmt::Display for SoftwareImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} image {}", self.slot, self.image)
    }
}

/// Attribute mask bits of the Software image ME (G.988 9.1.4; attribute 1 is bit 16 of the mask).
pub mod mask {
    /// Version: 14 bytes, a string naming the image's version.
    pub const VERSION: u16 = 0x8000;
    /// Is committed: 1 byte, 1 when this image boots by default.
    pub const IS_COMMITTED: u16 = 0x4000;
    /// Is active: 1 byte, 1 when this image is running.
    pub const IS_ACTIVE: u16 = 0x2000;
    /// Is valid: 1 byte, 1 when the image holds a complete, verified executable.
    pub const IS_VALID: u16 = 0x1000;
    /// Product code: 25 bytes, the vendor's product code string.
    pub const PRODUCT_CODE: u16 = 0x0800;
    /// Image hash: 16 bytes, a digest of the image (G.988 says MD5; see docs/wire.md).
    pub const IMAGE_HASH: u16 = 0x0400;
    /// Every attribute this ME has.
    pub const ALL: u16 = VERSION | IS_COMMITTED | IS_ACTIVE | IS_VALID | PRODUCT_CODE | IMAGE_HASH;
}

/// Size of the version attribute in bytes.
pub const VERSION_LEN: usize = 14;
/// Size of the product code attribute in bytes.
pub const PRODUCT_CODE_LEN: usize = 25;
/// Size of the image hash attribute in bytes.
pub const IMAGE_HASH_LEN: usize = 16;

/// One attribute of the Software image ME: its mask bit, G.988 name and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeDef {
    /// The attribute's bit in an attribute mask.
    pub mask: u16,
    /// The G.988 name, in snake case as this lab's JSON writes it.
    pub name: &'static str,
    /// Size of the value in bytes.
    pub size: usize,
}

/// The attribute table of ME class 7, in mask order (which is also wire order).
pub const ATTRIBUTES: [AttributeDef; 6] = [
    AttributeDef {
        mask: mask::VERSION,
        name: "version",
        size: VERSION_LEN,
    },
    AttributeDef {
        mask: mask::IS_COMMITTED,
        name: "is_committed",
        size: 1,
    },
    AttributeDef {
        mask: mask::IS_ACTIVE,
        name: "is_active",
        size: 1,
    },
    AttributeDef {
        mask: mask::IS_VALID,
        name: "is_valid",
        size: 1,
    },
    AttributeDef {
        mask: mask::PRODUCT_CODE,
        name: "product_code",
        size: PRODUCT_CODE_LEN,
    },
    AttributeDef {
        mask: mask::IMAGE_HASH,
        name: "image_hash",
        size: IMAGE_HASH_LEN,
    },
];

/// Bytes the values of the attributes in `mask` take (unknown bits count as zero bytes).
pub fn values_len(mask: u16) -> usize {
    ATTRIBUTES
        .iter()
        .filter(|a| mask & a.mask != 0)
        .map(|a| a.size)
        .sum()
}

/// A set of Software image attribute values, as carried by a Get response or an attribute value
/// change notification. An attribute is present exactly when its mask bit is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SoftwareImageAttributes {
    /// Version string, NUL padded (G.988: 14 bytes).
    pub version: Option<[u8; VERSION_LEN]>,
    /// Is committed.
    pub is_committed: Option<bool>,
    /// Is active.
    pub is_active: Option<bool>,
    /// Is valid.
    pub is_valid: Option<bool>,
    /// Product code string, NUL padded (25 bytes).
    pub product_code: Option<[u8; PRODUCT_CODE_LEN]>,
    /// Image hash (16 bytes).
    pub image_hash: Option<[u8; IMAGE_HASH_LEN]>,
}

impl SoftwareImageAttributes {
    /// The attribute mask of the values present.
    pub fn mask(&self) -> u16 {
        let mut m = 0;
        if self.version.is_some() {
            m |= mask::VERSION;
        }
        if self.is_committed.is_some() {
            m |= mask::IS_COMMITTED;
        }
        if self.is_active.is_some() {
            m |= mask::IS_ACTIVE;
        }
        if self.is_valid.is_some() {
            m |= mask::IS_VALID;
        }
        if self.product_code.is_some() {
            m |= mask::PRODUCT_CODE;
        }
        if self.image_hash.is_some() {
            m |= mask::IMAGE_HASH;
        }
        m
    }

    /// Bytes the present values take on the wire.
    pub fn encoded_len(&self) -> usize {
        values_len(self.mask())
    }

    /// Decodes the values of `mask` from the front of `bytes`, in attribute order.
    ///
    /// Returns the values and the number of bytes they took, or `None` when the mask names an
    /// attribute class 7 does not have, the bytes run out, or a boolean is neither 0 nor 1:
    /// callers then keep the values raw so that nothing is lost.
    pub fn decode(attr_mask: u16, bytes: &[u8]) -> Option<(Self, usize)> {
        if attr_mask & !mask::ALL != 0 || bytes.len() < values_len(attr_mask) {
            return None;
        }
        let mut out = Self::default();
        let mut at = 0usize;
        let mut take = |n: usize| {
            let s = &bytes[at..at + n];
            at += n;
            s
        };
        let boolean = |b: &[u8]| match b[0] {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        };
        if attr_mask & mask::VERSION != 0 {
            out.version = Some(take(VERSION_LEN).try_into().ok()?);
        }
        if attr_mask & mask::IS_COMMITTED != 0 {
            out.is_committed = Some(boolean(take(1))?);
        }
        if attr_mask & mask::IS_ACTIVE != 0 {
            out.is_active = Some(boolean(take(1))?);
        }
        if attr_mask & mask::IS_VALID != 0 {
            out.is_valid = Some(boolean(take(1))?);
        }
        if attr_mask & mask::PRODUCT_CODE != 0 {
            out.product_code = Some(take(PRODUCT_CODE_LEN).try_into().ok()?);
        }
        if attr_mask & mask::IMAGE_HASH != 0 {
            out.image_hash = Some(take(IMAGE_HASH_LEN).try_into().ok()?);
        }
        Some((out, at))
    }

    /// Writes the present values in attribute order; `out` must hold [`Self::encoded_len`] bytes.
    /// Returns the number of bytes written.
    pub fn encode(&self, out: &mut [u8]) -> usize {
        let mut at = 0usize;
        let mut put = |b: &[u8]| {
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        if let Some(v) = &self.version {
            put(v);
        }
        if let Some(v) = self.is_committed {
            put(&[v as u8]);
        }
        if let Some(v) = self.is_active {
            put(&[v as u8]);
        }
        if let Some(v) = self.is_valid {
            put(&[v as u8]);
        }
        if let Some(v) = &self.product_code {
            put(v);
        }
        if let Some(v) = &self.image_hash {
            put(v);
        }
        at
    }
}

/// A G.988 string attribute as text: the bytes up to the trailing NULs, each byte taken as the
/// Unicode code point of the same value (Latin-1), so that any byte string round-trips through
/// [`string_attribute`].
pub fn attribute_string(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    bytes[..end].iter().map(|&b| char::from(b)).collect()
}

/// The fixed-size, NUL padded attribute for `text`: the inverse of [`attribute_string`].
/// Fails when the text is longer than `N` bytes or has a character above U+00FF.
pub fn string_attribute<const N: usize>(text: &str) -> Result<[u8; N], StringAttributeError> {
    let mut out = [0u8; N];
    let count = text.chars().count();
    if count > N {
        return Err(StringAttributeError::TooLong { max: N, len: count });
    }
    for (slot, c) in out.iter_mut().zip(text.chars()) {
        *slot = u8::try_from(u32::from(c)).map_err(|_| StringAttributeError::NotLatin1(c))?;
    }
    Ok(out)
}

/// Why text does not fit a string attribute.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StringAttributeError {
    /// More characters than the attribute has bytes.
    #[error("{len} characters, at most {max} fit")]
    TooLong {
        /// The attribute size.
        max: usize,
        /// The text's length.
        len: usize,
    },
    /// A character that is not one byte.
    #[error("character {0:?} is not a single byte (U+0000..U+00FF)")]
    NotLatin1(char),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_numbering() {
        let id = SoftwareImageId::from_instance(0x0001);
        assert_eq!(id, SoftwareImageId { slot: 0, image: 1 });
        assert_eq!(id.other().instance(), 0x0000);
        assert_eq!(SoftwareImageId { slot: 2, image: 1 }.instance(), 0x0201);
    }

    #[test]
    fn decode_encode_mirror() {
        let attrs = SoftwareImageAttributes {
            version: Some(string_attribute("V2.0.1").unwrap()),
            is_committed: Some(false),
            is_active: Some(true),
            is_valid: Some(true),
            product_code: None,
            image_hash: Some([7; 16]),
        };
        assert_eq!(attrs.mask(), 0xF400);
        let mut buf = [0xa5u8; 64];
        let n = attrs.encode(&mut buf);
        assert_eq!(n, 14 + 3 + 16);
        let (back, used) = SoftwareImageAttributes::decode(attrs.mask(), &buf[..n]).unwrap();
        assert_eq!(used, n);
        assert_eq!(back, attrs);
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        assert!(SoftwareImageAttributes::decode(0x0200, &[0; 32]).is_none());
        assert!(SoftwareImageAttributes::decode(mask::IS_VALID, &[2]).is_none());
        assert!(SoftwareImageAttributes::decode(mask::VERSION, &[0; 13]).is_none());
    }

    #[test]
    fn strings_round_trip_latin1() {
        let raw: [u8; 14] = *b"V1\xe9\0\0\0\0\0\0\0\0\0\0\0";
        let text = attribute_string(&raw);
        assert_eq!(text, "V1é");
        assert_eq!(string_attribute::<14>(&text).unwrap(), raw);
        assert!(string_attribute::<3>("abcd").is_err());
        assert!(string_attribute::<14>("€").is_err());
    }
}
