//! The Get answers: the software image ME's attributes (G.988 9.1.4) from the live state, and
//! those of every other ME of the MIB (mib.rs, one table for Get and MIB upload); what does not
//! fit the frame is named in the attribute execution mask.

use std::borrow::Cow;

use omci_codec::contents::{AttributeValues, Contents, GetResponse};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Format, MeClass, Message, ResultCode};

use super::Onu;
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
        // One table answers Get and MIB upload alike (mib.rs).
        let values = match self.mib().get(me) {
            Ok(a) => a.clone(),
            Err(code) => return self.respond_code(msg, code),
        };
        let supported = values.iter().fold(0, |m, (bit, _)| m | bit);
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
