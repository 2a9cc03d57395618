//! What the core reports: its events ([`OnuEvent`], read back as tagged JSON by the scenario
//! runner), End's CRC mismatch ([`CrcMismatch`]) and the driver's [`Counters`].

use omci_codec::WindowNo;

use crate::boot;
use crate::faults::FaultPoint;

/// What the core reports, for logs, for tests and for the scenario runner, which reads them
/// from the ONU's log as tagged JSON (`{"event": "window-complete", "window": 3}`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum OnuEvent {
    /// The bootloader ran; the path says how the running image was chosen.
    Booted {
        /// Running slot.
        running: u8,
        /// Its version.
        version: String,
        /// The bootloader's steps.
        path: Vec<boot::BootPath>,
    },
    /// A download into `slot` began.
    DownloadStarted {
        /// Target slot.
        slot: u8,
        /// Image size.
        image_size: u32,
        /// Window size agreed.
        window_size: u16,
    },
    /// A window was acknowledged with success.
    WindowComplete {
        /// Which.
        window: WindowNo,
    },
    /// A window was answered with processing error.
    WindowIncomplete {
        /// Which.
        window: WindowNo,
        /// Why: missing sections, or a window CRC mismatch.
        reason: String,
    },
    /// Start software download was refused.
    StartRefused {
        /// Why.
        reason: String,
    },
    /// The download was discarded.
    DownloadDiscarded {
        /// Why.
        reason: String,
    },
    /// The downloaded delta package passed its checks (signature, base); its target is being
    /// rebuilt into the rebuild area.
    DeltaRebuildStarted {
        /// The slot the package was downloaded into, and the target goes to.
        slot: u8,
        /// The base image's version.
        base_version: String,
        /// The target's version.
        target_version: String,
        /// Bytes of the target.
        target_len: u64,
    },
    /// The downloaded image passed every check: the slot is valid.
    ImageValid {
        /// The slot.
        slot: u8,
        /// Its version.
        version: String,
    },
    /// The downloaded image was refused; the slot stays invalid.
    ImageRefused {
        /// The slot.
        slot: u8,
        /// Why.
        reason: String,
        /// When the refusal is End's CRC not matching what was written: both CRCs (a fact
        /// only the ONU knows, which the OLT observer of `onu run --check-olt` reports).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        crc_mismatch: Option<CrcMismatch>,
    },
    /// An image was activated; a reboot follows.
    Activated {
        /// The slot.
        slot: u8,
    },
    /// An image was committed.
    Committed {
        /// The slot.
        slot: u8,
    },
    /// The core asks to be rebooted.
    RebootRequested,
    /// A datagram or frame was dropped without an answer.
    Dropped {
        /// Why.
        reason: String,
    },
    /// The power was cut at a named point.
    PowerLost {
        /// Where.
        point: FaultPoint,
    },
    /// Recovery mode: no image can boot; the golden image is being fetched (attempt `attempt`).
    RecoveryStarted {
        /// The slot it goes into.
        slot: u8,
        /// Where from (`tftp://...`).
        source: String,
        /// Which attempt (from 1).
        attempt: u32,
    },
    /// Recovery mode: the attempt failed; the ONU stays in recovery mode and tries again.
    RecoveryFailed {
        /// Which attempt.
        attempt: u32,
        /// Why, in words.
        reason: String,
        /// When the next attempt starts (ms).
        retry_in_ms: u64,
    },
    /// Recovery mode: the golden image passed every check and is committed; it boots next.
    GoldenRestored {
        /// Its slot.
        slot: u8,
        /// Its version.
        version: String,
        /// Where it came from (`tftp://...`, or the fallback file).
        source: String,
    },
}

/// The image CRC at End did not match what was written (G.988 A.3.23).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CrcMismatch {
    /// CRC-32/BZIP2 over the `image size` bytes written to the slot.
    pub written: u32,
    /// The CRC End software download carried.
    pub end: u32,
}

/// Counters, as the driver reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams taken in.
    pub datagrams: u64,
    /// Datagrams and frames dropped without an answer.
    pub dropped: u64,
    /// Responses and notifications sent.
    pub sent: u64,
    /// Download sections written to flash.
    pub sections_written: u64,
    /// Sections that were already held (duplicates, re-multicast windows).
    pub sections_duplicate: u64,
    /// Windows acknowledged with success.
    pub windows_ok: u64,
    /// Windows answered with processing error.
    pub windows_failed: u64,
    /// Windows whose window CRC did not match what was written.
    pub window_crc_failures: u64,
}
