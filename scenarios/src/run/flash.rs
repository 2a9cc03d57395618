//! Every ONU's flash read back at the end, offline, by the ONU's own bootloader code
//! (`onu status`): which image is committed, which would boot, whether any would.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use onu::status::{FlashStatus, SlotStatus};

use super::images::Images;
use super::plan::OnuPlan;

/// The flash of every ONU of `plans`, its state directory under `dir`.
pub(super) fn read_all(
    dir: &Path,
    plans: &BTreeMap<u16, OnuPlan>,
    images: &Images,
) -> Result<BTreeMap<u16, FlashStatus>> {
    plans
        .values()
        .map(|p| Ok((p.id, read(dir, p, images)?)))
        .collect()
}

/// One ONU's flash.
fn read(dir: &Path, p: &OnuPlan, images: &Images) -> Result<FlashStatus> {
    let mut flash = onu::flash::FileFlash::open(&dir.join(format!("onu-{}", p.id)))?;
    // As the ONU has it: its golden file, or a server (then only what the flash holds boots).
    let served = images.tftp.is_some();
    let golden = if served {
        None
    } else {
        Some(std::fs::read(images.golden(p))?.into())
    };
    let cfg = onu::boot::BootConfig {
        model: p.model.clone(),
        public_key: images.key.verifying_key(),
        golden,
        network_golden: served,
        boot_attempts: 3,
    };
    Ok(onu::status::status(&mut flash, &cfg)?)
}

/// The committed slot.
pub(super) fn committed(f: &FlashStatus) -> Option<&SlotStatus> {
    f.slots.iter().find(|s| s.committed)
}

/// The slot that boots next.
pub(super) fn active(f: &FlashStatus) -> Option<&SlotStatus> {
    f.slots.iter().find(|s| s.active)
}

/// The version of a slot, if it has one.
pub(super) fn version(slot: Option<&SlotStatus>) -> Option<String> {
    slot.and_then(|s| s.version.clone())
}
