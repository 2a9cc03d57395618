//! The bootloader: the start of the ONU process decides which image runs.
//!
//! 1. It reads the metadata. If neither copy is readable it rebuilds the record from the slots
//!    (each image verified); if no slot holds a good image it restores the golden image.
//! 2. The image to boot is the one pending activation, else the committed one.
//! 3. It verifies the image (payload SHA-256, signature, model: secure boot). An image that
//!    fails is abandoned at once.
//! 4. It counts the try in flash *after* the verification and before starting the image, so an
//!    image that crashes on every boot is tried at most `boot_attempts` times, and a power cut
//!    during the (long) verification counts nothing. Then it is abandoned: a pending image for
//!    the committed one (G.988: an uncommitted image never survives a failed boot); a
//!    committed image for the other valid image, but only if that one verifies — otherwise
//!    the committed image keeps being booted; the golden image only when no slot verifies.
//!
//! A successful boot clears the pending activation: the image is now active but not
//! committed, and the next reboot or power cycle boots the committed image (G.988 I.3, state
//! S4), unless it is committed first.
//!
//! **The anti-rollback floor** (the lowest security version a download may carry) rises to
//! an image's security version only once that image has booted *and* is committed: here, when
//! the committed image boots, and at Commit of the running image (`core`'s activation). G.988
//! lets an OLT commit a standby image that never ran; if it then fails to boot, the fallback
//! leaves the floor where it was and marks the abandoned image not valid, so the ONU can
//! still take its own running release again (docs/decisions.md).

use std::io;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use crate::flash::Flash;
use crate::meta::{self, Metadata, SlotMeta};
use pon::firmware::{self as image, DevicePolicy, ImageError, ImageHeader, Inspection};

/// What the bootloader needs to know.
#[derive(Clone, Debug)]
pub struct BootConfig {
    /// The device model (images for other models never boot).
    pub model: String,
    /// The key images must be signed with.
    pub public_key: VerifyingKey,
    /// The factory image restored when nothing else can boot (the lab's "golden" file).
    pub golden: Option<Arc<[u8]>>,
    /// The golden image comes from the network (recovery mode, `crate::recovery`): when
    /// nothing else can boot, the bootloader prepares a slot and hands over
    /// ([`BootError::RecoveryNeeded`]) instead of restoring `golden`.
    pub network_golden: bool,
    /// How many times an image is tried before it is abandoned (G.988 leaves it open; 3).
    pub boot_attempts: u8,
}

/// How the running image was chosen.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum BootPath {
    /// The committed image, as usual.
    Committed,
    /// The image pending activation: it runs, not committed.
    Activated,
    /// An image was abandoned (failed its boots or its verification) and another runs.
    FellBack {
        /// The slot abandoned.
        abandoned: u8,
        /// Why.
        reason: String,
    },
    /// The metadata was unreadable and was rebuilt from the slots.
    Rebuilt,
    /// Nothing else could boot: the golden image was restored into a slot.
    Recovered,
}

/// A successful boot.
#[derive(Clone, Debug)]
pub struct Booted {
    /// The slot now running (the active image).
    pub running: u8,
    /// Its header.
    pub header: ImageHeader,
    /// The metadata after the boot, as stored.
    pub meta: Metadata,
    /// How the running image was chosen (every step, in order).
    pub path: Vec<BootPath>,
}

/// Why the ONU did not reach a running image.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The image started and crashed (a test image built to fail). The try was counted; boot
    /// again, and after `boot_attempts` tries it is abandoned.
    #[error("the image in slot {slot} failed to boot (try {tries} of {attempts})")]
    ImageFailed {
        /// Its slot.
        slot: u8,
        /// Tries counted so far.
        tries: u8,
        /// Tries allowed.
        attempts: u8,
    },
    /// No slot holds a bootable image and there is no (good) golden image.
    #[error("no image can boot: both slots are unusable and {0}")]
    Unbootable(String),
    /// Nothing can boot and the golden image comes from the network: recovery mode must
    /// fetch it into `slot` (already erased, and called not valid in the metadata), verify it
    /// against `anti_rollback_floor`, and [`install_golden`] it; then boot again.
    #[error("recovery mode: no image can boot; the golden image is to be fetched into slot {slot}")]
    RecoveryNeeded {
        /// The slot to write.
        slot: u8,
        /// The anti-rollback floor the metadata held (0 when it was unreadable).
        anti_rollback_floor: u32,
    },
    /// The flash could not be read or written.
    #[error("flash: {0}")]
    Io(#[from] io::Error),
}

impl BootConfig {
    fn policy(&self) -> DevicePolicy {
        // Anti-rollback applies to downloads; what is already in a slot was accepted then.
        DevicePolicy {
            model: self.model.clone(),
            anti_rollback_floor: 0,
            public_key: self.public_key,
        }
    }
}

/// Checks the image in `slot` as the bootloader does at every boot (secure boot), streaming
/// the slot through one hash (the payload's; the signature covers the header): its header.
pub fn check_slot(
    flash: &mut dyn Flash,
    slot: u8,
    cfg: &BootConfig,
) -> Result<ImageHeader, SlotFault> {
    let len = flash.slot_len(slot).map_err(SlotFault::Io)?;
    image::check_from(
        len,
        &mut |offset, buf| flash.read_slot(slot, offset, buf),
        &cfg.policy(),
    )
    .map_err(SlotFault::Image)
}

/// Verifies the image in `slot` as the bootloader does, and takes the SHA-256 of the whole
/// file as well (the slot's identity, which the metadata records), streaming the slot.
pub fn verify_slot(
    flash: &mut dyn Flash,
    slot: u8,
    cfg: &BootConfig,
) -> Result<Inspection, SlotFault> {
    let len = flash.slot_len(slot).map_err(SlotFault::Io)?;
    image::verify_from(
        len,
        &mut |offset, buf| flash.read_slot(slot, offset, buf),
        &cfg.policy(),
    )
    .map_err(SlotFault::Image)
}

/// Why a slot's image cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SlotFault {
    /// The image fails a check.
    #[error("{0}")]
    Image(ImageError),
    /// The flash could not be read.
    #[error("flash: {0}")]
    Io(io::Error),
}

/// Metadata of a slot holding a verified image.
pub fn slot_meta(found: &Inspection) -> SlotMeta {
    SlotMeta {
        image_sha256: found.file_sha256,
        ..header_meta(&found.header)
    }
}

/// Metadata of a slot holding a verified image with `h` for its header, all but the SHA-256
/// of the file.
fn header_meta(h: &ImageHeader) -> SlotMeta {
    SlotMeta {
        valid: true,
        fails_to_boot: h.fails_to_boot,
        security_version: h.security_version,
        image_len: h.image_len(),
        version: h.version_attribute(),
        image_sha256: [0; 32],
    }
}

/// Runs the bootloader on `flash`.
pub fn boot(flash: &mut dyn Flash, cfg: &BootConfig) -> Result<Booted, BootError> {
    let mut path = Vec::new();
    let mut meta = match meta::load(flash)? {
        Some(m) => m,
        None => rebuild(flash, cfg, &mut path)?,
    };
    // Each pass either boots, crashes, or abandons an image; at most four can be abandoned
    // (pending, committed, the other slot, the golden image).
    for _ in 0..6 {
        let target = meta.pending.unwrap_or(meta.committed);
        if !meta.slots[usize::from(target)].valid {
            // The metadata's is-valid gates the boot too: a slot being restored, or whose
            // image was refused, never boots, whatever its bytes.
            abandon(
                flash,
                cfg,
                &mut meta,
                target,
                "not valid in the metadata",
                &mut path,
            )?;
            continue;
        }
        let header = match check_slot(flash, target, cfg) {
            Ok(header) => header,
            Err(fault) => {
                meta.slots[usize::from(target)].valid = false;
                abandon(flash, cfg, &mut meta, target, &fault.to_string(), &mut path)?;
                continue;
            }
        };
        // Tries run out only by crashes, or by power cuts in the instant between counting a
        // try and recording the boot: a committed image that does not crash is kept.
        let crashes = header.fails_to_boot;
        if meta.boot_tries >= cfg.boot_attempts
            && (crashes || meta.pending.is_some())
            && abandon(flash, cfg, &mut meta, target, "failed to boot", &mut path)?
        {
            continue;
        }
        meta.boot_tries += 1;
        meta::store(flash, &mut meta)?;
        if crashes {
            return Err(BootError::ImageFailed {
                slot: target,
                tries: meta.boot_tries,
                attempts: cfg.boot_attempts,
            });
        }
        let activated = meta.pending.take().is_some();
        meta.boot_tries = 0;
        // What was just verified is what the slot holds: keep the metadata in step with it.
        // The record's SHA-256 of the file stands when the record describes this image (it
        // was taken when the image was written); otherwise it is taken now.
        let known = &meta.slots[usize::from(target)];
        let recorded = SlotMeta {
            image_sha256: known.image_sha256,
            ..header_meta(&header)
        };
        if *known != recorded {
            match verify_slot(flash, target, cfg) {
                Ok(found) => meta.slots[usize::from(target)] = slot_meta(&found),
                Err(fault) => {
                    meta.slots[usize::from(target)].valid = false;
                    abandon(flash, cfg, &mut meta, target, &fault.to_string(), &mut path)?;
                    continue;
                }
            }
        }
        if target == meta.committed {
            // Booted and committed: the floor rises to it (and never falls).
            meta.anti_rollback_floor = meta.anti_rollback_floor.max(header.security_version);
        }
        meta::store(flash, &mut meta)?;
        path.push(if activated {
            BootPath::Activated
        } else {
            BootPath::Committed
        });
        return Ok(Booted {
            running: target,
            header,
            meta,
            path,
        });
    }
    Err(BootError::Unbootable("every fallback failed".into()))
}

/// Gives up on `target` and stores what boots instead. Returns false when there is nothing
/// better: `target` is the committed image, it verifies, and neither the other slot nor a
/// golden image can take its place; it then keeps being booted (with its tries reset).
fn abandon(
    flash: &mut dyn Flash,
    cfg: &BootConfig,
    meta: &mut Metadata,
    target: u8,
    reason: &str,
    path: &mut Vec<BootPath>,
) -> Result<bool, BootError> {
    meta.boot_tries = 0;
    if meta.pending.take().is_some() {
        // The committed image boots next; the activated one stays valid, standby (G.988 I.3:
        // S4 falls back to S3).
    } else {
        let other = 1 - meta.committed;
        if meta.slots[usize::from(other)].valid && verify_slot(flash, other, cfg).is_ok() {
            meta.committed = other;
        } else if cfg.golden.is_some()
            || cfg.network_golden
            || !meta.slots[usize::from(target)].valid
        {
            // Into the slot that is not `target` when `target` still verifies.
            restore_golden(flash, cfg, meta, path)?;
        } else {
            meta::store(flash, meta)?;
            return Ok(false);
        }
        if meta.committed != target {
            // A committed image that cannot boot is not a valid image: Get says so, and the
            // OLT will not commit it again. The floor stays where it was: it never booted.
            meta.slots[usize::from(target)].valid = false;
        }
    }
    path.push(BootPath::FellBack {
        abandoned: target,
        reason: reason.to_string(),
    });
    meta::store(flash, meta)?;
    Ok(true)
}

/// Rebuilds lost metadata from what the slots hold. Which image was committed is lost with it:
/// the image with the highest security version that verifies (and is not a test image that
/// fails to boot) is committed, which may be one that was downloaded but never activated;
/// either choice is a state G.988 allows, and this one never goes back below a floor.
fn rebuild(
    flash: &mut dyn Flash,
    cfg: &BootConfig,
    path: &mut Vec<BootPath>,
) -> Result<Metadata, BootError> {
    let mut meta = Metadata::default();
    let mut best: Option<(u8, u32)> = None;
    for slot in 0..2u8 {
        if let Ok(found) = verify_slot(flash, slot, cfg) {
            meta.slots[usize::from(slot)] = slot_meta(&found);
            let h = found.header;
            if !h.fails_to_boot && best.is_none_or(|(_, v)| h.security_version > v) {
                best = Some((slot, h.security_version));
            }
        }
    }
    match best {
        Some((slot, _)) => {
            // The floor comes back when it boots (the floor's one rule, above).
            meta.committed = slot;
            path.push(BootPath::Rebuilt);
        }
        None => restore_golden(flash, cfg, &mut meta, path)?,
    }
    meta::store(flash, &mut meta)?;
    Ok(meta)
}

/// Writes the golden image into the committed slot (or slot 0) and commits it.
fn restore_golden(
    flash: &mut dyn Flash,
    cfg: &BootConfig,
    meta: &mut Metadata,
    path: &mut Vec<BootPath>,
) -> Result<(), BootError> {
    if cfg.network_golden {
        let slot = golden_slot(meta);
        meta.slots[usize::from(slot)] = SlotMeta::default();
        meta::store(flash, meta)?;
        flash.erase_slot(slot)?;
        flash.sync_slot(slot)?;
        return Err(BootError::RecoveryNeeded {
            slot,
            anti_rollback_floor: meta.anti_rollback_floor,
        });
    }
    let golden = cfg
        .golden
        .as_deref()
        .ok_or_else(|| BootError::Unbootable("no golden image is configured".into()))?;
    let found = image::verify(golden, &cfg.policy())
        .map_err(|e| BootError::Unbootable(format!("the golden image is refused: {e}")))?;
    if found.header.fails_to_boot {
        return Err(BootError::Unbootable(
            "the golden image is a test image that fails to boot".into(),
        ));
    }
    let slot = golden_slot(meta);
    meta.slots[usize::from(slot)] = SlotMeta::default();
    meta::store(flash, meta)?;
    flash.erase_slot(slot)?;
    flash.write_slot(slot, 0, golden)?;
    flash.sync_slot(slot)?;
    meta.slots[usize::from(slot)] = slot_meta(&found);
    meta.committed = slot;
    // Committed like any image: the anti-rollback floor rises to it when it boots.
    meta.pending = None;
    meta.boot_tries = 0;
    path.push(BootPath::Recovered);
    Ok(())
}

/// The slot the golden image goes into: one that holds nothing valid. The metadata stops
/// calling it valid before its bytes go (a power cut in between must not leave a "valid"
/// slot being overwritten).
fn golden_slot(meta: &Metadata) -> u8 {
    if meta.slots[0].valid && !meta.slots[1].valid {
        1
    } else {
        0
    }
}

/// Why recovery mode refuses the golden image it fetched.
#[derive(Debug, thiserror::Error)]
pub enum GoldenRefused {
    /// It fails one of the image checks (format, length, model, floor, SHA-256, signature).
    #[error("the golden image is refused: {0}")]
    Image(ImageError),
    /// It is a test image built to fail to boot.
    #[error("the golden image is a test image that fails to boot")]
    FailsToBoot,
    /// The flash could not be read or written.
    #[error("flash: {0}")]
    Io(#[from] io::Error),
}

/// Recovery mode's last step: verifies the golden image written into `slot` completely, as
/// secure boot does and against `anti_rollback_floor` too, and only then commits it in the
/// metadata. Until this returns Ok the slot is not valid, so nothing boots from it.
pub fn install_golden(
    flash: &mut dyn Flash,
    cfg: &BootConfig,
    slot: u8,
    anti_rollback_floor: u32,
) -> Result<Inspection, GoldenRefused> {
    let len = flash.slot_len(slot)?;
    let policy = DevicePolicy {
        anti_rollback_floor,
        ..cfg.policy()
    };
    let found = image::verify_from(
        len,
        &mut |offset, buf| flash.read_slot(slot, offset, buf),
        &policy,
    )
    .map_err(GoldenRefused::Image)?;
    if found.header.fails_to_boot {
        return Err(GoldenRefused::FailsToBoot);
    }
    let mut meta = meta::load(flash)?.unwrap_or_default();
    meta.slots[usize::from(slot)] = slot_meta(&found);
    meta.committed = slot;
    meta.pending = None;
    meta.boot_tries = 0;
    meta.anti_rollback_floor = meta.anti_rollback_floor.max(anti_rollback_floor);
    meta::store(flash, &mut meta)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::MemFlash;
    use ed25519_dalek::SigningKey;
    use pon::firmware::{BuildSpec, build, deterministic_payload};

    const MODEL: &str = "LAB-ONU-1";

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn img(version: &str, fails_to_boot: bool) -> Vec<u8> {
        let spec = BuildSpec {
            model: MODEL.into(),
            version: version.into(),
            security_version: 1,
            build: 1,
            fails_to_boot,
        };
        build(&spec, &deterministic_payload(version, 300), &key()).unwrap()
    }

    fn cfg(golden: Option<Vec<u8>>) -> BootConfig {
        BootConfig {
            model: MODEL.into(),
            public_key: key().verifying_key(),
            golden: golden.map(Into::into),
            network_golden: false,
            boot_attempts: 3,
        }
    }

    /// Flash with image `a` committed in slot 0 and `b` (if any) valid in slot 1.
    fn flash_with(a: &[u8], b: Option<&[u8]>) -> MemFlash {
        let mut f = MemFlash::default();
        f.write_slot(0, 0, a).unwrap();
        let mut m = Metadata::default();
        m.slots[0] = slot_meta(&image::inspect(a, None).unwrap());
        if let Some(b) = b {
            f.write_slot(1, 0, b).unwrap();
            m.slots[1] = slot_meta(&image::inspect(b, None).unwrap());
        }
        meta::store(&mut f, &mut m).unwrap();
        f
    }

    #[test]
    fn factory_fresh_flash_boots_the_golden_image() {
        let mut f = MemFlash::default();
        let b = boot(&mut f, &cfg(Some(img("V1", false)))).unwrap();
        assert_eq!(b.header.version, "V1");
        assert_eq!(b.path, vec![BootPath::Recovered, BootPath::Committed]);
        // And boots it again from flash, golden or not.
        let again = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!(
            (again.running, again.path),
            (b.running, vec![BootPath::Committed])
        );
    }

    #[test]
    fn no_image_and_no_golden_is_unbootable() {
        assert!(matches!(
            boot(&mut MemFlash::default(), &cfg(None)),
            Err(BootError::Unbootable(_))
        ));
    }

    #[test]
    fn an_activated_image_runs_once_uncommitted() {
        let mut f = flash_with(&img("V1", false), Some(&img("V2", false)));
        let mut m = meta::load(&mut f).unwrap().unwrap();
        m.pending = Some(1);
        meta::store(&mut f, &mut m).unwrap();
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.header.version.as_str()), (1, "V2"));
        assert_eq!(b.path, vec![BootPath::Activated]);
        assert_eq!(b.meta.committed, 0);
        // A power cycle before Commit: the committed image boots (G.988 S4).
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.header.version.as_str()), (0, "V1"));
    }

    #[test]
    fn an_image_that_fails_to_boot_is_abandoned_after_its_tries() {
        let mut f = flash_with(&img("V1", false), Some(&img("BAD", true)));
        let mut m = meta::load(&mut f).unwrap().unwrap();
        m.pending = Some(1);
        meta::store(&mut f, &mut m).unwrap();
        for try_no in 1..=3 {
            match boot(&mut f, &cfg(None)) {
                Err(BootError::ImageFailed { slot: 1, tries, .. }) => assert_eq!(tries, try_no),
                other => panic!("try {try_no}: {other:?}"),
            }
        }
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.header.version.as_str()), (0, "V1"));
        assert!(matches!(b.path[0], BootPath::FellBack { abandoned: 1, .. }));
        assert_eq!(b.meta.pending, None);
    }

    #[test]
    fn a_committed_image_that_cannot_boot_gives_way_to_the_other() {
        // G.988 lets an OLT commit an image that never ran; the ONU must still boot.
        let mut f = flash_with(&img("V1", false), Some(&img("BAD", true)));
        let mut m = meta::load(&mut f).unwrap().unwrap();
        m.committed = 1;
        meta::store(&mut f, &mut m).unwrap();
        while let Err(BootError::ImageFailed { .. }) = boot(&mut f, &cfg(None)) {}
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.meta.committed), (0, 0));
    }

    #[test]
    fn a_committed_image_that_crashes_with_nothing_else_gets_the_golden_image_beside_it() {
        let mut f = flash_with(&img("V1", false), Some(&img("BAD", true)));
        let mut m = meta::load(&mut f).unwrap().unwrap();
        m.committed = 1;
        m.slots[0].valid = false;
        meta::store(&mut f, &mut m).unwrap();
        let cfg = cfg(Some(img("GOLD", false)));
        let b = loop {
            match boot(&mut f, &cfg) {
                Err(BootError::ImageFailed { .. }) => continue,
                other => break other.unwrap(),
            }
        };
        assert_eq!((b.running, b.header.version.as_str()), (0, "GOLD"));
        assert_eq!(
            &f.slots[1],
            &img("BAD", true),
            "the crashing image was not overwritten"
        );
    }

    #[test]
    fn counted_tries_alone_never_abandon_a_good_committed_image() {
        // Power cuts between counting a try and recording the boot, over and over.
        let mut f = flash_with(&img("V1", false), None);
        let mut m = meta::load(&mut f).unwrap().unwrap();
        m.boot_tries = 9;
        meta::store(&mut f, &mut m).unwrap();
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.header.version.as_str()), (0, "V1"));
    }

    #[test]
    fn a_corrupted_committed_image_falls_back_then_to_golden() {
        let mut f = flash_with(&img("V1", false), Some(&img("V2", false)));
        f.slots[0][200] ^= 1;
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!((b.running, b.header.version.as_str()), (1, "V2"));
        assert!(!b.meta.slots[0].valid);
        // Now corrupt that one too: only the golden image is left.
        f.slots[1][200] ^= 1;
        let b = boot(&mut f, &cfg(Some(img("GOLD", false)))).unwrap();
        assert_eq!(b.header.version, "GOLD");
        assert!(b.path.contains(&BootPath::Recovered));
    }

    #[test]
    fn lost_metadata_is_rebuilt_from_the_slots() {
        let mut f = flash_with(&img("V1", false), Some(&img("V2", false)));
        f.meta = [Some(vec![0; 10]), None];
        let b = boot(&mut f, &cfg(None)).unwrap();
        assert_eq!(b.path, vec![BootPath::Rebuilt, BootPath::Committed]);
        assert!(b.meta.slots[0].valid && b.meta.slots[1].valid);
    }
}
