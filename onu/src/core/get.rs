//! The Get answers: the software image ME's attributes (G.988 9.1.4) from the live state, and
//! ONU-G's and ONU2-G's; what does not fit the frame is named in the attribute execution mask.

use std::borrow::Cow;

use omci_codec::contents::{AttributeValues, Contents, GetResponse};
use omci_codec::software_image::{SoftwareImageAttributes, SoftwareImageId, mask};
use omci_codec::{Format, MeClass, Message, ResultCode};

use super::{Onu, valid_image_instance};
use crate::flash::Flash;

impl<F: Flash> Onu<F> {
    pub(super) fn software_image_attributes(&self, slot: u8) -> SoftwareImageAttributes {
        let s = &self.meta.slots[usize::from(slot)];
        let mut hash = [0u8; 16];
        hash.copy_from_slice(&s.image_sha256[..16]);
        let mut product_code = [0u8; 25];
        let model = self.cfg.model.as_bytes();
        product_code[..model.len().min(25)].copy_from_slice(&model[..model.len().min(25)]);
        SoftwareImageAttributes {
            version: Some(s.version),
            is_committed: Some(self.meta.committed == slot),
            is_active: Some(self.running == slot),
            is_valid: Some(s.valid || self.cfg.quirks.always_valid),
            product_code: Some(product_code),
            image_hash: Some(hash),
        }
    }

    pub(super) fn on_get(&mut self, msg: &Message<'_>, requested: u16) {
        let me = msg.me;
        let (values, supported): (Vec<(u16, Vec<u8>)>, u16) = match (me.class, me.instance) {
            (MeClass::SOFTWARE_IMAGE, i) if valid_image_instance(i) => {
                let a = self.software_image_attributes(SoftwareImageId::from_instance(i).image);
                let mut v = Vec::new();
                let mut put = |m: u16, bytes: &[u8]| v.push((m, bytes.to_vec()));
                put(mask::VERSION, &a.version.unwrap_or_default());
                put(
                    mask::IS_COMMITTED,
                    &[u8::from(a.is_committed == Some(true))],
                );
                put(mask::IS_ACTIVE, &[u8::from(a.is_active == Some(true))]);
                put(mask::IS_VALID, &[u8::from(a.is_valid == Some(true))]);
                put(mask::PRODUCT_CODE, &a.product_code.unwrap_or_default());
                put(mask::IMAGE_HASH, &a.image_hash.unwrap_or_default());
                (v, mask::ALL)
            }
            (MeClass::ONU_G, 0) => {
                let mut version = [0u8; 14];
                let run = &self.meta.slots[usize::from(self.running)].version;
                version.copy_from_slice(run);
                (
                    vec![
                        (0x8000, self.cfg.vendor_id.to_vec()),
                        (0x4000, version.to_vec()),
                        (0x2000, self.cfg.serial_number.to_vec()),
                    ],
                    0xE000,
                )
            }
            (MeClass::ONU2_G, 0) => {
                let mut equipment_id = [0u8; 20];
                let model = self.cfg.model.as_bytes();
                equipment_id[..model.len().min(20)].copy_from_slice(&model[..model.len().min(20)]);
                // OMCC version 0xA3: G.988 (2010) baseline and extended message sets.
                (
                    vec![(0x8000, equipment_id.to_vec()), (0x4000, vec![0xA3])],
                    0xC000,
                )
            }
            (MeClass::SOFTWARE_IMAGE | MeClass::ONU_G | MeClass::ONU2_G, _) => {
                return self.respond_code(msg, ResultCode::UnknownInstance);
            }
            _ => return self.respond_code(msg, ResultCode::UnknownMe),
        };
        let room = match msg.format {
            Format::Baseline => omci_codec::contents::BASELINE_GET_VALUES_LEN,
            Format::Extended => omci_codec::contents::EXTENDED_MAX_CONTENTS_LEN - 7,
        };
        let mut bytes = Vec::new();
        let mut answered = 0u16;
        let mut failed = 0u16;
        for (m, v) in values {
            if requested & m == 0 {
                continue;
            }
            if bytes.len() + v.len() <= room {
                bytes.extend_from_slice(&v);
                answered |= m;
            } else {
                failed |= m; // does not fit this frame: ask for it separately
            }
        }
        let unsupported = requested & !supported;
        let result = if unsupported | failed != 0 {
            ResultCode::AttributeFailure
        } else {
            ResultCode::Success
        };
        if msg.format == Format::Baseline {
            bytes.resize(room, 0);
        }
        let attributes = if me.class == MeClass::SOFTWARE_IMAGE {
            let decoded = SoftwareImageAttributes::decode(answered, &bytes);
            match decoded {
                Some((a, _)) => AttributeValues::SoftwareImage(Box::new(a)),
                None => AttributeValues::Raw {
                    attribute_mask: answered,
                    values: Cow::Owned(bytes),
                },
            }
        } else {
            AttributeValues::Raw {
                attribute_mask: answered,
                values: Cow::Owned(bytes),
            }
        };
        self.respond(
            msg,
            Contents::GetResponse(GetResponse {
                result,
                attributes,
                optional_attribute_mask: unsupported,
                attribute_execution_mask: failed,
            }),
        );
    }
}
