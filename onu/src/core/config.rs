//! How an ONU is provisioned ([`OnuConfig`]), and the faults of weaker emulators it can be
//! told to reproduce ([`Quirks`], `onu run --quirk`).

use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use omci_codec::{ExtendedTrailer, OnuId};

use crate::boot::BootConfig;

/// How an ONU is provisioned.
#[derive(Clone, Debug)]
pub struct OnuConfig {
    /// Its ONU-ID on the PON.
    pub onu_id: OnuId,
    /// Behaviours of weaker emulators, reproduced on purpose (`onu run --quirk`), so that the
    /// conformance suite can be seen to fail. None by default.
    pub quirks: Quirks,
    /// Vendor id (ONU-G attribute 1), four ASCII letters.
    pub vendor_id: [u8; 4],
    /// Serial number (ONU-G attribute 3): vendor id and four bytes.
    pub serial_number: [u8; 8],
    /// Device model; images for other models are refused.
    pub model: String,
    /// The key release images are signed with.
    pub public_key: VerifyingKey,
    /// The factory image restored when nothing else boots (shared, not copied, at each boot).
    pub golden: Option<std::sync::Arc<[u8]>>,
    /// The golden image comes from a TFTP server (`onu run --golden tftp://...`): the
    /// bootloader hands over to recovery mode (`crate::recovery`) instead of restoring
    /// `golden`.
    pub network_golden: bool,
    /// Tries before an image that fails to boot is abandoned.
    pub boot_attempts: u8,
    /// The largest window (sections) the ONU accepts; it answers Start with the smaller of
    /// this and the OLT's proposal.
    pub max_window_size: u16,
    /// Bytes a software image slot holds: Start with a larger image is refused.
    pub slot_size: u64,
    /// How long End software download keeps answering "device busy" while the image is
    /// written and verified.
    pub busy_duration: Duration,
    /// Bytes of the target a delta rebuild writes per step (End is answered busy between
    /// steps); at least 1.
    pub rebuild_step: u64,
    /// A download with no traffic for this long is discarded.
    pub stale_download_timeout: Duration,
    /// Make every acknowledged window durable (`fsync`) before its answer, and the whole
    /// image before End records it valid (`onu run --sync-every-window`). Off by default: a
    /// download does not survive a reboot in any case, the page cache keeps what was written
    /// across the lab's power cuts, and the bootloader checks every image before it runs
    /// (docs/onu.md, "Durability").
    pub sync_every_window: bool,
    /// Bytes of windows held in memory at once, each checked there at its AR section and
    /// written with one call; a window beyond them goes to flash section by section and is
    /// checked by reading it back. Bounds the ONU's memory whatever the window size.
    pub window_buffer_bytes: usize,
    /// A voice call is in progress: Activate and Reboot with condition 1 answer busy.
    pub voice_call_in_progress: bool,
    /// An emergency call is in progress: Activate and Reboot with condition 2 answer busy.
    pub emergency_call_in_progress: bool,
    /// The trailer of extended frames on this lab's transport.
    pub extended_trailer: ExtendedTrailer,
}

impl OnuConfig {
    /// A lab ONU with the defaults of docs/onu.md.
    pub fn lab(onu_id: OnuId, model: &str, public_key: VerifyingKey) -> Self {
        let mut serial_number = *b"LABS\0\0\0\0";
        serial_number[4..].copy_from_slice(&u32::from(onu_id.0).to_be_bytes());
        Self {
            onu_id,
            vendor_id: *b"LABS",
            serial_number,
            model: model.to_string(),
            public_key,
            golden: None,
            network_golden: false,
            boot_attempts: 3,
            max_window_size: 256,
            slot_size: 64 * 1024 * 1024,
            busy_duration: Duration::from_millis(300),
            rebuild_step: super::end::REBUILD_STEP,
            stale_download_timeout: Duration::from_secs(60),
            sync_every_window: false,
            window_buffer_bytes: super::download::WINDOW_BUFFER_BYTES,
            voice_call_in_progress: false,
            emergency_call_in_progress: false,
            extended_trailer: ExtendedTrailer::Crc32,
            quirks: Quirks::default(),
        }
    }

    /// What the bootloader needs of this provisioning.
    pub fn boot_config(&self) -> BootConfig {
        BootConfig {
            model: self.model.clone(),
            public_key: self.public_key,
            golden: self.golden.clone(),
            network_golden: self.network_golden,
            boot_attempts: self.boot_attempts,
        }
    }
}

/// Faults of weaker ONU emulators, each a rule of G.988 (or of this lab) broken on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Answer every AR section with success, whatever sections arrived.
    pub no_section_tracking: bool,
    /// Report every image as valid.
    pub always_valid: bool,
    /// On a reboot, keep running an activated image that is not committed (never fall back).
    pub no_fallback: bool,
    /// Ignore the window CRC of the envelope.
    pub ignore_window_crc: bool,
    /// Answer End software download with success at once, before the image is written and
    /// checked.
    pub end_before_write: bool,
    /// Answer result 2 (command not supported) to the whole software download (Start,
    /// Download section with AR, End, Activate, Commit), as an ONU without it would; sections
    /// without AR are dropped.
    pub not_supported: bool,
}

impl Quirks {
    /// The names `onu run --quirk` takes.
    pub const NAMES: [&'static str; 6] = [
        "no-section-tracking",
        "always-valid",
        "no-fallback",
        "ignore-window-crc",
        "end-before-write",
        "not-supported",
    ];

    /// Turns on the quirk called `name`; false for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "no-section-tracking" => self.no_section_tracking = true,
            "always-valid" => self.always_valid = true,
            "no-fallback" => self.no_fallback = true,
            "ignore-window-crc" => self.ignore_window_crc = true,
            "end-before-write" => self.end_before_write = true,
            "not-supported" => self.not_supported = true,
            _ => return false,
        }
        true
    }
}
