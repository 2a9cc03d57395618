//! `onu status`: the flash read offline, as the bootloader would read it.
//!
//! The state directory is copied into memory and the real bootloader runs on the copy, so the
//! answer to "which image would boot next, and would anything boot at all" is the bootloader's
//! own, and the directory is never written.

use serde::Serialize;

use crate::boot::{self, BootConfig, BootError, BootPath};
use crate::flash::{Flash, MemFlash, read_whole_slot};
use crate::meta;
use pon::firmware as image;

/// One slot as the flash holds it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SlotStatus {
    /// 0 or 1.
    pub slot: u8,
    /// The image's version (from its header), if the slot holds a readable header.
    pub version: Option<String>,
    /// The metadata marks it committed.
    pub committed: bool,
    /// The image that would boot next (the active image after the next boot).
    pub active: bool,
    /// The metadata marks it valid.
    pub valid: bool,
    /// The image passes the bootloader's checks now (hash, signature, model).
    pub verifies: bool,
    /// Bytes stored.
    pub bytes: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: String,
}

/// The whole flash.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FlashStatus {
    /// Whether a metadata copy is readable.
    pub metadata_readable: bool,
    /// Sequence number of the newest readable record.
    pub sequence: Option<u64>,
    /// The slot pending activation.
    pub pending_activation: Option<u8>,
    /// Anti-rollback floor.
    pub anti_rollback_floor: Option<u32>,
    /// The two slots.
    pub slots: Vec<SlotStatus>,
    /// Whether an image would boot.
    pub bootable: bool,
    /// The slot that would boot next.
    pub boots: Option<u8>,
    /// What the bootloader would do, in words.
    pub boot_path: Vec<String>,
}

/// Reads `flash` and runs the bootloader on a copy.
pub fn status(flash: &mut dyn Flash, cfg: &BootConfig) -> std::io::Result<FlashStatus> {
    let mut copy = MemFlash::default();
    for slot in 0..2u8 {
        copy.slots[usize::from(slot)] = read_whole_slot(flash, slot)?;
    }
    for c in 0..2u8 {
        copy.meta[usize::from(c)] = flash.read_meta(c)?;
    }
    let record = meta::load(&mut copy)?;
    let before = copy.clone();
    let mut outcome = Err(BootError::Unbootable("not tried".into()));
    let mut paths = Vec::new();
    for _ in 0..=u32::from(cfg.boot_attempts) * 3 + 3 {
        outcome = boot::boot(&mut copy, cfg);
        match &outcome {
            Err(BootError::ImageFailed { slot, .. }) => {
                paths.push(format!("image in slot {slot} fails to boot"))
            }
            _ => break,
        }
    }
    let (bootable, boots) = match &outcome {
        Ok(b) => {
            paths.extend(b.path.iter().map(describe));
            (true, Some(b.running))
        }
        Err(e) => {
            paths.push(e.to_string());
            (false, None)
        }
    };
    let mut slots = Vec::new();
    for slot in 0..2u8 {
        let bytes = &before.slots[usize::from(slot)];
        let header = image::ImageHeader::parse(bytes).ok();
        let verifies = boot::verify_slot(&mut before.clone(), slot, cfg).is_ok();
        use sha2::{Digest, Sha256};
        slots.push(SlotStatus {
            slot,
            version: header.map(|h| h.version),
            committed: record.as_ref().is_some_and(|m| m.committed == slot),
            active: boots == Some(slot),
            valid: record
                .as_ref()
                .is_some_and(|m| m.slots[usize::from(slot)].valid),
            verifies,
            bytes: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        });
    }
    Ok(FlashStatus {
        metadata_readable: record.is_some(),
        sequence: record.as_ref().map(|m| m.sequence),
        pending_activation: record.as_ref().and_then(|m| m.pending),
        anti_rollback_floor: record.as_ref().map(|m| m.anti_rollback_floor),
        slots,
        bootable,
        boots,
        boot_path: paths,
    })
}

fn describe(p: &BootPath) -> String {
    match p {
        BootPath::Committed => "boots the committed image".into(),
        BootPath::Activated => "boots the image pending activation (uncommitted)".into(),
        BootPath::FellBack { abandoned, reason } => {
            format!("abandons slot {abandoned}: {reason}")
        }
        BootPath::Rebuilt => "rebuilds unreadable metadata from the slots".into(),
        BootPath::Recovered => "restores the golden image".into(),
    }
}
