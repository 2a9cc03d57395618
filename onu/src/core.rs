//! The ONU core: a sans-IO state machine that answers OMCI as a careful ONU does.
//!
//! It takes datagrams ([`Onu::handle_datagram`]) and the passing of time
//! ([`Onu::handle_timeout`]), both with `now` given by the caller, and yields datagrams for
//! the OLT ([`Onu::poll_transmit`]), events ([`Onu::poll_event`]) and its next deadline
//! ([`Onu::poll_timeout`]). It reads and writes its [`Flash`]; it owns no socket and reads no
//! clock, so every exchange and every fault can be replayed in a test.
//!
//! After Activate or Reboot it asks to be restarted ([`Onu::reboot_requested`]): the driver
//! drops it and runs the bootloader again ([`Onu::boot`]). After a power-loss point fires it is
//! dead ([`Onu::power_lost`]): it takes no more input, and only the frames queued before the
//! cut may be sent.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use omci_codec::contents::{
    AttributeValues, Contents, DownloadSectionRequest, DownloadSectionResponse,
    EndSoftwareDownloadRequest, EndSoftwareDownloadResponse, GetResponse, InstanceResult,
    StartSoftwareDownloadRequest, StartSoftwareDownloadResponse,
};
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::software_image::{SoftwareImageAttributes, SoftwareImageId};
use omci_codec::{
    Codec, ExtendedTrailer, Format, GemPort, MeClass, MeId, Message, MessageType, OnuId,
    ResultCode, Tci, WindowNo,
};

pub mod mib;

use crate::boot::{self, BootConfig, BootError, Booted, slot_meta};
use crate::faults::{FaultPoint, Faults};
use crate::flash::Flash;
use crate::meta::{self, Metadata, SlotMeta};
use pon::firmware::{self as image, DevicePolicy, ImageError};

/// Windows beyond the next expected one that the ONU keeps track of at once (multicast windows
/// may be pipelined). Sections of windows further ahead are dropped and counted.
pub const WINDOW_HORIZON: u32 = 64;

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
    /// A download with no traffic for this long is discarded.
    pub stale_download_timeout: Duration,
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
            boot_attempts: 3,
            max_window_size: 256,
            slot_size: 64 * 1024 * 1024,
            busy_duration: Duration::from_millis(300),
            stale_download_timeout: Duration::from_secs(60),
            voice_call_in_progress: false,
            emergency_call_in_progress: false,
            extended_trailer: ExtendedTrailer::Crc32,
            quirks: Quirks::default(),
        }
    }

    fn boot_config(&self) -> BootConfig {
        BootConfig {
            model: self.model.clone(),
            public_key: self.public_key,
            golden: self.golden.clone(),
            boot_attempts: self.boot_attempts,
        }
    }
}

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

/// A download in progress: the target, the agreed window, and which sections arrived.
#[derive(Clone, Debug)]
struct Download {
    slot: u8,
    instance: u16,
    image_size: u32,
    window_size: u16,
    /// Data bytes per section: 31 on baseline frames, the first section's length on extended.
    section_len: Option<u32>,
    /// Every window below this one is complete and was acknowledged.
    next_window: u32,
    /// Sections received per window at or after `next_window`.
    windows: BTreeMap<u32, WindowState>,
    /// Windows at or after `next_window` already acknowledged with success.
    acked_ahead: BTreeSet<u32>,
    /// Without window numbers in the envelope (an OLT that sends strictly G.988), which
    /// window recent sections went to, by (TCI, section number): a retransmitted request
    /// carries its TCI again, so a section repeated after its window was acknowledged (a
    /// retransmitted AR section whose answer was lost, or a duplicate) is recognised and
    /// never written into the next window.
    recent: VecDeque<(u16, u8, u32)>,
    last_activity: Instant,
}

/// Sections remembered by TCI for a download without window numbers: two windows' worth.
const RECENT_SECTIONS: usize = 512;

impl Download {
    fn window_bytes(&self, section_len: u32) -> u64 {
        u64::from(self.window_size) * u64::from(section_len)
    }

    fn window_count(&self, section_len: u32) -> u32 {
        u64::from(self.image_size)
            .div_ceil(self.window_bytes(section_len))
            .max(1) as u32
    }

    /// Sections window `w` holds: the negotiated size, fewer in the image's last window.
    fn sections_in(&self, w: u32, section_len: u32) -> u32 {
        let start = u64::from(w) * self.window_bytes(section_len);
        let rest = u64::from(self.image_size).saturating_sub(start);
        rest.div_ceil(u64::from(section_len))
            .min(u64::from(self.window_size)) as u32
    }

    fn is_held(&self, w: u32) -> bool {
        w < self.next_window || self.acked_ahead.contains(&w)
    }

    fn complete(&self) -> bool {
        self.section_len
            .is_some_and(|sl| self.next_window >= self.window_count(sl))
    }
}

/// Which sections of a window arrived, and whether any came from the multicast group (such a
/// window closes only with a matching window CRC: a rogue sender cannot slip a section in).
#[derive(Clone, Copy, Debug, Default)]
struct WindowState {
    sections: [u64; 4],
    from_group: bool,
}

/// The state of End software download after the first End request.
#[derive(Clone, Debug)]
enum Verification {
    /// Writing and verifying until `until`; End is answered busy.
    Busy {
        until: Instant,
        slot: u8,
        request: EndSoftwareDownloadRequest,
    },
    /// Done; End is answered with `result`.
    Done {
        slot: u8,
        request: EndSoftwareDownloadRequest,
        result: ResultCode,
    },
}

/// Sets bit `n` of a 256-bit section set; true when it was not set before.
fn set_bit(bits: &mut [u64; 4], n: u8) -> bool {
    let (w, b) = (usize::from(n / 64), n % 64);
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    !was
}

fn count_prefix(bits: &[u64; 4], n: u32) -> bool {
    (0..n).all(|i| bits[(i / 64) as usize] & (1 << (i % 64)) != 0)
}

/// The ONU.
pub struct Onu<F: Flash> {
    cfg: OnuConfig,
    flash: F,
    codec: Codec,
    meta: Metadata,
    running: u8,
    download: Option<Download>,
    verification: Option<Verification>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<OnuEvent>,
    counters: Counters,
    faults: Faults,
    reboot: bool,
    dead: Option<FaultPoint>,
    /// ONU data's MIB data sync (G.988 9.1.3): 0 after a boot and after MIB reset.
    mib_data_sync: u8,
    /// The snapshot the last MIB upload took, which MIB upload next reads.
    mib_upload: Option<Vec<omci_codec::contents::MibUploadRecord<'static>>>,
    /// The snapshot the last Get all alarms took, which Get all alarms next reads.
    alarm_upload: Option<Vec<omci_codec::contents::AlarmRecord>>,
}

impl<F: Flash> std::fmt::Debug for Onu<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onu")
            .field("onu_id", &self.cfg.onu_id)
            .field("running", &self.running)
            .field("committed", &self.meta.committed)
            .field("downloading", &self.download.as_ref().map(|d| d.slot))
            .finish_non_exhaustive()
    }
}

/// Result of [`Onu::boot`]: on failure, the flash and the fault plan come back with the
/// reason, for the next try.
pub type BootResult<F> = Result<Onu<F>, (F, Faults, BootError)>;

impl<F: Flash> Onu<F> {
    /// Runs the bootloader on `flash` and starts the core on the image it chose. On a boot
    /// failure the flash is handed back with the reason: boot again (the try was counted).
    pub fn boot(cfg: OnuConfig, mut flash: F, faults: Faults) -> BootResult<F> {
        let booted = match boot::boot(&mut flash, &cfg.boot_config()) {
            Ok(b) => b,
            Err(e) => return Err((flash, faults, e)),
        };
        let Booted {
            running,
            header,
            meta,
            path,
        } = booted;
        let activated = path.contains(&boot::BootPath::Activated);
        let mut onu = Onu {
            codec: Codec::new(cfg.extended_trailer.clone()),
            cfg,
            flash,
            meta,
            running,
            download: None,
            verification: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            faults,
            reboot: false,
            dead: None,
            mib_data_sync: 0,
            mib_upload: None,
            alarm_upload: None,
        };
        onu.events.push_back(OnuEvent::Booted {
            running,
            version: header.version,
            path,
        });
        // "I am up": after every boot the OLT learns which image is active and committed
        // (is active changes at a reboot), without having to poll.
        onu.notify_flags(0);
        onu.notify_flags(1);
        if activated {
            onu.fault(FaultPoint::AfterRebootBeforeCommit);
        }
        Ok(onu)
    }

    /// The running (active) slot.
    pub fn running(&self) -> u8 {
        self.running
    }

    /// The metadata as the core last stored it.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Counters since boot.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The flash, to look at (`onu status` reads the same bytes offline).
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash, for the driver and for tests (a power cut keeps it).
    pub fn into_flash(self) -> F {
        self.flash
    }

    /// The fault plan and what it has counted.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The flash and the fault plan with what it has counted, so that a reboot into a new core
    /// carries the plan on (a plan names the n-th time a point is reached across reboots).
    pub fn into_parts(self) -> (F, Faults) {
        (self.flash, self.faults)
    }

    /// True once the core asked to be rebooted (after its last response was queued).
    pub fn reboot_requested(&self) -> bool {
        self.reboot
    }

    /// The fault point at which the power was cut, if it was.
    pub fn power_lost(&self) -> Option<FaultPoint> {
        self.dead
    }

    /// Next datagram for the OLT.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<OnuEvent> {
        self.events.pop_front()
    }

    /// When [`Onu::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.dead.is_some() {
            return None;
        }
        let verify = match &self.verification {
            Some(Verification::Busy { until, .. }) => Some(*until),
            _ => None,
        };
        let stale = self
            .download
            .as_ref()
            .map(|d| d.last_activity + self.cfg.stale_download_timeout);
        [verify, stale].into_iter().flatten().min()
    }

    /// Time has reached `now`: finish a verification, expire a stale download.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead.is_some() {
            return;
        }
        if let Some(Verification::Busy {
            until,
            slot,
            request,
        }) = &self.verification
            && now >= *until
        {
            let (slot, request) = (*slot, request.clone());
            self.finish_verification(slot, request);
        }
        if let Some(d) = &self.download
            && now >= d.last_activity + self.cfg.stale_download_timeout
        {
            self.discard_download("no download traffic for the stale-download timeout");
        }
    }

    /// Reaches `point`; true when the power is cut there (or was before).
    fn fault(&mut self, point: FaultPoint) -> bool {
        if self.dead.is_none() && self.faults.reach(point) {
            self.die(point);
        }
        self.dead.is_some()
    }

    fn die(&mut self, point: FaultPoint) {
        self.dead = Some(point);
        self.events.push_back(OnuEvent::PowerLost { point });
    }

    /// A datagram the driver refused before the core saw it (a multicast datagram from another
    /// sender than the OLT): counted and reported like any dropped frame.
    pub fn drop_foreign(&mut self, reason: impl Into<String>) {
        self.drop_frame(reason);
    }

    fn drop_frame(&mut self, reason: impl Into<String>) {
        self.counters.dropped += 1;
        self.events.push_back(OnuEvent::Dropped {
            reason: reason.into(),
        });
    }

    /// Stores the metadata, honouring the torn-write fault point. False when power was cut.
    fn persist(&mut self) -> bool {
        if self.faults.reach(FaultPoint::MidMetadataWrite) {
            let _ = meta::store_torn(&mut self.flash, &self.meta, meta::RECORD_LEN / 2);
            self.die(FaultPoint::MidMetadataWrite);
            return false;
        }
        if let Err(e) = meta::store(&mut self.flash, &mut self.meta) {
            self.drop_frame(format!("metadata write failed: {e}"));
            return false;
        }
        true
    }

    /// Takes one datagram from the PON.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if self.dead.is_some() {
            return;
        }
        if self.reboot {
            // Going down: what arrives now is lost, as it would be on a real ONU.
            return self.drop_frame("rebooting");
        }
        self.counters.datagrams += 1;
        let (envelope, frame) = match Envelope::parse(datagram) {
            Ok(x) => x,
            Err(e) => return self.drop_frame(format!("envelope: {e}")),
        };
        let multicast = envelope.onu_id == ALL_ONUS;
        if multicast && envelope.gem_port != GemPort::MULTICAST_DOWNLOAD {
            return self.drop_frame("multicast on a port other than the download port");
        }
        if !multicast && envelope.onu_id != self.cfg.onu_id {
            return self.drop_frame(format!("for {}, not this ONU", envelope.onu_id));
        }
        let msg = match self.codec.parse(frame) {
            Ok(m) => m,
            Err(e) => {
                match (e.result_code(), e.header) {
                    (Some(code), Some(h)) if !multicast => {
                        self.respond_raw(h.tci, h.format, h.me, h.message_type, code)
                    }
                    _ => self.drop_frame(format!("frame: {e}")),
                }
                return;
            }
        };
        if msg.ak() || msg.message_type().is_notification() {
            return self.drop_frame("a response or notification sent to the ONU");
        }
        if multicast && !matches!(msg.contents, Contents::DownloadSectionRequest(_)) {
            return self.drop_frame("only Download sections travel on the multicast port");
        }
        self.dispatch(now, &envelope, msg, multicast);
    }

    fn dispatch(&mut self, now: Instant, env: &Envelope, msg: Message<'_>, multicast: bool) {
        let me = msg.me;
        let is_sw = me.class == MeClass::SOFTWARE_IMAGE;
        let download = matches!(
            msg.contents,
            Contents::StartSoftwareDownloadRequest(_)
                | Contents::DownloadSectionRequest(_)
                | Contents::EndSoftwareDownloadRequest(_)
                | Contents::ActivateSoftwareRequest(_)
                | Contents::CommitSoftwareRequest
        );
        if download && self.cfg.quirks.not_supported {
            // The quirk: an ONU without the software download.
            return if msg.ar {
                self.respond_code(&msg, ResultCode::NotSupported)
            } else {
                self.drop_frame(format!("{} without AR", msg.message_type()))
            };
        }
        match &msg.contents {
            Contents::StartSoftwareDownloadRequest(_)
            | Contents::DownloadSectionRequest(_)
            | Contents::EndSoftwareDownloadRequest(_)
            | Contents::ActivateSoftwareRequest(_)
            | Contents::CommitSoftwareRequest
                if !is_sw =>
            {
                self.respond_code(&msg, ResultCode::UnknownMe);
            }
            Contents::StartSoftwareDownloadRequest(_)
            | Contents::DownloadSectionRequest(_)
            | Contents::EndSoftwareDownloadRequest(_)
            | Contents::ActivateSoftwareRequest(_)
            | Contents::CommitSoftwareRequest
                if !valid_image_instance(me.instance) =>
            {
                self.respond_code(&msg, ResultCode::UnknownInstance);
            }
            Contents::StartSoftwareDownloadRequest(r) => self.on_start(now, &msg, r),
            Contents::DownloadSectionRequest(s) => self.on_section(now, env, &msg, s, multicast),
            Contents::EndSoftwareDownloadRequest(r) => self.on_end(now, &msg, r),
            Contents::ActivateSoftwareRequest(a) => self.on_activate(&msg, a.activate_flags),
            Contents::CommitSoftwareRequest => self.on_commit(&msg),
            Contents::GetRequest(g) => self.on_get(&msg, g.attribute_mask),
            Contents::RebootRequest(r) => self.on_reboot(&msg, r.reboot_condition),
            _ if self.on_mib(&msg) => {}
            _ if msg.ar => self.respond_code(&msg, ResultCode::NotSupported),
            _ => self.drop_frame(format!("{} without AR", msg.message_type())),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Responses

    fn send(&mut self, msg: &Message<'_>) {
        self.send_with(Envelope::omcc(self.cfg.onu_id), msg);
    }

    fn send_with(&mut self, envelope: Envelope, msg: &Message<'_>) {
        match self.codec.to_vec(msg) {
            Ok(frame) => {
                self.outbox.push_back(envelope.wrap(&frame));
                self.counters.sent += 1;
            }
            Err(e) => self.drop_frame(format!("could not encode a response: {e}")),
        }
    }

    fn respond(&mut self, req: &Message<'_>, contents: Contents<'_>) {
        let resp = Message::new(req.tci, req.format, req.me, contents);
        self.send(&resp);
    }

    fn respond_code(&mut self, req: &Message<'_>, code: ResultCode) {
        self.respond_raw(req.tci, req.format, req.me, req.message_type(), code);
    }

    /// The response of `message_type` carrying only `code` (the other fields zero).
    fn respond_raw(
        &mut self,
        tci: Tci,
        format: Format,
        me: MeId,
        message_type: MessageType,
        code: ResultCode,
    ) {
        let contents = match message_type {
            MessageType::StartSoftwareDownload => {
                Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                    result: code,
                    window_size_minus_one: 0,
                    instances: Default::default(),
                })
            }
            MessageType::DownloadSection => {
                Contents::DownloadSectionResponse(DownloadSectionResponse {
                    result: code,
                    section_number: 0,
                })
            }
            MessageType::EndSoftwareDownload => {
                Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                    result: code,
                    instances: Default::default(),
                })
            }
            MessageType::ActivateSoftware => Contents::ActivateSoftwareResponse { result: code },
            MessageType::CommitSoftware => Contents::CommitSoftwareResponse { result: code },
            MessageType::MibReset => Contents::MibResetResponse { result: code },
            MessageType::Reboot => Contents::RebootResponse { result: code },
            MessageType::Get => Contents::GetResponse(GetResponse {
                result: code,
                attributes: AttributeValues::Raw {
                    attribute_mask: 0,
                    values: Cow::Owned(match format {
                        Format::Baseline => {
                            vec![0; omci_codec::contents::BASELINE_GET_VALUES_LEN]
                        }
                        Format::Extended => Vec::new(),
                    }),
                },
                optional_attribute_mask: 0,
                attribute_execution_mask: 0,
            }),
            other => Contents::Other(omci_codec::contents::OtherMessage {
                message_type: other,
                ak: true,
                contents: Cow::Owned(match format {
                    Format::Baseline => {
                        let mut c = vec![0u8; 32];
                        c[0] = code.as_u8();
                        c
                    }
                    Format::Extended => vec![code.as_u8()],
                }),
            }),
        };
        let resp = Message::new(tci, format, me, contents);
        self.send(&resp);
    }

    /// An attribute value change of a software image's flags.
    fn notify_flags(&mut self, slot: u8) {
        let attrs = self.software_image_attributes(slot);
        let notification = SoftwareImageAttributes {
            is_committed: attrs.is_committed,
            is_active: attrs.is_active,
            is_valid: attrs.is_valid,
            ..Default::default()
        };
        let msg = Message::new(
            Tci(0),
            Format::Baseline,
            MeId::new(
                MeClass::SOFTWARE_IMAGE,
                SoftwareImageId::onu(slot).instance(),
            ),
            Contents::AttributeValueChange(omci_codec::contents::AttributeValueChange {
                attributes: AttributeValues::SoftwareImage(Box::new(notification)),
            }),
        );
        self.send(&msg);
    }

    // ----------------------------------------------------------------------------------------
    // Software image attributes

    fn software_image_attributes(&self, slot: u8) -> SoftwareImageAttributes {
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

    fn on_get(&mut self, msg: &Message<'_>, requested: u16) {
        let me = msg.me;
        // One table answers Get and MIB upload alike (core/mib.rs).
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

    // ----------------------------------------------------------------------------------------
    // Software download

    fn discard_download(&mut self, reason: &str) {
        if self.download.take().is_some() {
            self.events.push_back(OnuEvent::DownloadDiscarded {
                reason: reason.to_string(),
            });
        }
        self.verification = None;
    }

    fn on_start(&mut self, now: Instant, msg: &Message<'_>, r: &StartSoftwareDownloadRequest) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        let refusal = if slot == self.running {
            Some("the target is the active image".to_string())
        } else if slot == self.meta.committed {
            Some("the target is the committed image".to_string())
        } else if r.image_size < (image::HEADER_LEN + image::SIGNATURE_LEN) as u32 {
            Some("the image is too small to be an image".to_string())
        } else if u64::from(r.image_size) > self.cfg.slot_size {
            Some(format!(
                "the image ({} bytes) is larger than the slot ({} bytes)",
                r.image_size, self.cfg.slot_size
            ))
        } else if r.instances.iter().any(|i| *i != msg.me.instance) {
            Some("the instance list names another image".to_string())
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.events.push_back(OnuEvent::StartRefused { reason });
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        // A new Start discards any partial download and invalidates the target slot.
        self.discard_download("a new Start software download");
        let was_valid = self.meta.slots[usize::from(slot)].valid;
        self.meta.slots[usize::from(slot)] = SlotMeta {
            image_len: u64::from(r.image_size),
            ..SlotMeta::default()
        };
        if !self.persist() {
            return;
        }
        if let Err(e) = self.flash.erase_slot(slot) {
            self.drop_frame(format!("flash erase failed: {e}"));
            return self.respond_code(msg, ResultCode::ProcessingError);
        }
        let window_size = r.window_size().min(self.cfg.max_window_size.clamp(1, 256));
        self.download = Some(Download {
            slot,
            instance: msg.me.instance,
            image_size: r.image_size,
            window_size,
            section_len: (msg.format == Format::Baseline)
                .then_some(omci_codec::contents::BASELINE_SECTION_DATA_LEN as u32),
            next_window: 0,
            windows: BTreeMap::new(),
            acked_ahead: BTreeSet::new(),
            recent: VecDeque::new(),
            last_activity: now,
        });
        self.events.push_back(OnuEvent::DownloadStarted {
            slot,
            image_size: r.image_size,
            window_size,
        });
        self.respond(
            msg,
            Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                result: ResultCode::Success,
                window_size_minus_one: (window_size - 1) as u8,
                instances: [InstanceResult {
                    me_instance: msg.me.instance,
                    result: ResultCode::Success,
                }]
                .into_iter()
                .collect(),
            }),
        );
        if was_valid {
            self.notify_flags(slot);
        }
    }

    fn on_section(
        &mut self,
        now: Instant,
        env: &Envelope,
        msg: &Message<'_>,
        s: &DownloadSectionRequest<'_>,
        multicast: bool,
    ) {
        // Sections are written once: a repeated or re-multicast section is counted, not
        // rewritten (a window whose CRC failed is cleared, and so is written again).
        let n = s.section_number;
        let Some(d) = self.download.as_mut() else {
            if msg.ar && !multicast {
                self.respond_section(msg, ResultCode::ProcessingError, n);
            } else {
                self.drop_frame("Download section without a download in progress");
            }
            return;
        };
        if msg.me.instance != d.instance {
            if multicast {
                return self.drop_frame("multicast section for another image");
            }
            return self.respond_section(msg, ResultCode::ParameterError, n);
        }
        d.last_activity = now;
        let window = match env.window_no {
            Some(w) => w.0,
            None => {
                let tci = msg.tci.0;
                match d.recent.iter().find(|(t, sn, _)| *t == tci && *sn == n) {
                    Some(&(_, _, w)) => w,
                    None => {
                        if d.recent.len() >= RECENT_SECTIONS {
                            d.recent.pop_front();
                        }
                        d.recent.push_back((tci, n, d.next_window));
                        d.next_window
                    }
                }
            }
        };
        let len = s.data.len() as u32;
        // The section size of an extended download is learned from a section that cannot be
        // the image's (shorter) last one: a section without AR, or the image's first section.
        if d.section_len.is_none() && (!msg.ar || (window == 0 && n == 0)) {
            d.section_len = Some(len);
        }
        let problem = match d.section_len {
            None => Some("the section size is not known yet".to_string()),
            Some(section_len) => {
                let window_total = d.window_count(section_len);
                let offset = u64::from(window) * d.window_bytes(section_len)
                    + u64::from(n) * u64::from(section_len);
                if window >= window_total {
                    Some(format!("window {window} is past the image's end"))
                } else if u32::from(n) >= d.sections_in(window, section_len) {
                    Some(format!("section {n} is past the window's end"))
                } else if window >= d.next_window + WINDOW_HORIZON {
                    Some(format!("window {window} is beyond the horizon"))
                } else if len != section_len && offset + u64::from(len) != u64::from(d.image_size) {
                    Some(format!(
                        "a section of {len} bytes in a download of {section_len}-byte sections"
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            // Counted as missing: the window's AR section reports it.
            self.drop_frame(p);
            if msg.ar && !multicast {
                self.respond_section(msg, ResultCode::ProcessingError, n);
            }
            return;
        }
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let section_len = d.section_len.unwrap_or(len);
        if d.is_held(window) {
            // A repeated or re-multicast window this ONU already has: never rewrite it.
            self.counters.sections_duplicate += 1;
            if msg.ar {
                self.respond_section(msg, ResultCode::Success, n);
            }
            return;
        }
        let offset =
            u64::from(window) * d.window_bytes(section_len) + u64::from(n) * u64::from(section_len);
        let useful = (u64::from(d.image_size) - offset).min(u64::from(section_len)) as usize;
        let data = &s.data[..useful.min(s.data.len())];
        let slot = d.slot;
        let state = d.windows.entry(window).or_default();
        state.from_group |= multicast;
        if set_bit(&mut state.sections, n) {
            if self.faults.reach(FaultPoint::MidSectionWrite) {
                let _ = self.flash.write_slot(slot, offset, &data[..data.len() / 2]);
                self.die(FaultPoint::MidSectionWrite);
                return;
            }
            if let Err(e) = self.flash.write_slot(slot, offset, data) {
                self.drop_frame(format!("flash write failed: {e}"));
                return;
            }
            self.counters.sections_written += 1;
        } else {
            self.counters.sections_duplicate += 1;
        }
        if msg.ar {
            self.close_window(msg, env, window, n, section_len);
        }
    }

    fn respond_section(&mut self, msg: &Message<'_>, result: ResultCode, section_number: u8) {
        self.respond(
            msg,
            Contents::DownloadSectionResponse(DownloadSectionResponse {
                result,
                section_number,
            }),
        );
    }

    /// The AR section of `window` arrived: answer whether the window is complete.
    fn close_window(
        &mut self,
        msg: &Message<'_>,
        env: &Envelope,
        window: u32,
        last: u8,
        section_len: u32,
    ) {
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let expected = d.sections_in(window, section_len);
        let state = d.windows.get(&window).copied().unwrap_or_default();
        let mut failure = if u32::from(last) + 1 != expected {
            Some(format!(
                "AR on section {last}, the window has {expected} sections"
            ))
        } else if !count_prefix(&state.sections, expected) && !self.cfg.quirks.no_section_tracking {
            Some("a section is missing".to_string())
        } else if state.from_group && env.window_crc.is_none() {
            Some("sections came from the group but the AR section carries no window CRC".into())
        } else {
            None
        };
        let (slot, window_start, image_size) = (
            d.slot,
            u64::from(window) * d.window_bytes(section_len),
            u64::from(d.image_size),
        );
        if failure.is_none()
            && !self.cfg.quirks.ignore_window_crc
            && let Some(want) = env.window_crc
        {
            // Check what was written, not what was received: a torn or misplaced write shows.
            let len = (image_size - window_start).min(d.window_bytes(section_len));
            let flash = &mut self.flash;
            let crc = image::crc_from(len, &mut |o, b| flash.read_slot(slot, window_start + o, b))
                .unwrap_or(!want);
            if crc != want {
                self.counters.window_crc_failures += 1;
                failure = Some(format!(
                    "window CRC 0x{crc:08x} of what was written, 0x{want:08x} expected"
                ));
                if let Some(d) = self.download.as_mut() {
                    d.windows.remove(&window);
                }
            }
        }
        let window_no = WindowNo(window);
        match failure {
            Some(reason) => {
                self.counters.windows_failed += 1;
                self.events.push_back(OnuEvent::WindowIncomplete {
                    window: window_no,
                    reason,
                });
                // The sections this ONU misses, so that the OLT repairs those only (the lab's
                // envelope extension; the OMCI answer itself is G.988's processing error).
                let held = self
                    .download
                    .as_ref()
                    .and_then(|d| d.windows.get(&window))
                    .map_or([0; 4], |w| w.sections);
                let mut missing = [0u8; omci_codec::envelope::MISSING_LEN];
                for n in 0..expected.min(256) {
                    if held[(n / 64) as usize] & (1 << (n % 64)) == 0 {
                        missing[(n / 8) as usize] |= 1 << (n % 8);
                    }
                }
                let answer = Message::new(
                    msg.tci,
                    msg.format,
                    msg.me,
                    Contents::DownloadSectionResponse(DownloadSectionResponse {
                        result: ResultCode::ProcessingError,
                        section_number: last,
                    }),
                );
                let envelope = Envelope {
                    missing: Some(missing),
                    ..Envelope::omcc(self.cfg.onu_id)
                };
                self.send_with(envelope, &answer);
            }
            None => {
                let _ = self.flash.sync_slot(slot);
                if let Some(d) = self.download.as_mut() {
                    d.windows.remove(&window);
                    if window == d.next_window {
                        d.next_window += 1;
                        while d.acked_ahead.remove(&d.next_window) {
                            d.next_window += 1;
                        }
                    } else {
                        d.acked_ahead.insert(window);
                    }
                }
                self.counters.windows_ok += 1;
                self.events
                    .push_back(OnuEvent::WindowComplete { window: window_no });
                self.respond_section(msg, ResultCode::Success, last);
                self.fault(FaultPoint::AfterWindowAck);
            }
        }
    }

    fn respond_end(&mut self, msg: &Message<'_>, result: ResultCode) {
        self.respond(
            msg,
            Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                result,
                instances: [InstanceResult {
                    me_instance: msg.me.instance,
                    result,
                }]
                .into_iter()
                .collect(),
            }),
        );
    }

    fn on_end(&mut self, now: Instant, msg: &Message<'_>, r: &EndSoftwareDownloadRequest) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        if r.is_abort() {
            // Abort what concerns the named image only; aborting nothing is no error.
            if self.download.as_ref().is_some_and(|d| d.slot == slot) {
                self.discard_download("aborted by the OLT (End with size 0 and CRC 0xFFFFFFFF)");
            }
            if let Some(Verification::Busy { slot: s, .. } | Verification::Done { slot: s, .. }) =
                &self.verification
                && *s == slot
            {
                self.verification = None;
                self.events.push_back(OnuEvent::DownloadDiscarded {
                    reason: "aborted by the OLT during verification".into(),
                });
            }
            return self.respond_end(msg, ResultCode::Success);
        }
        // A repeated End while (or after) verifying: busy, then the stored result.
        match &self.verification {
            Some(Verification::Busy { request, .. }) if request == r => {
                return self.respond_end(msg, ResultCode::DeviceBusy);
            }
            Some(Verification::Done {
                request, result, ..
            }) if request == r => {
                let result = *result;
                return self.respond_end(msg, result);
            }
            Some(Verification::Busy { slot: s, .. }) => {
                // Another End while verifying: the OLT and the ONU disagree on the image.
                let s = *s;
                self.verification = None;
                self.events.push_back(OnuEvent::ImageRefused {
                    slot: s,
                    reason: "a different End software download arrived during verification".into(),
                    crc_mismatch: None,
                });
                return self.respond_end(msg, ResultCode::ParameterError);
            }
            _ => {}
        }
        let Some(d) = self.download.as_ref() else {
            return self.respond_end(msg, ResultCode::ProcessingError);
        };
        if d.instance != msg.me.instance {
            return self.respond_end(msg, ResultCode::ParameterError);
        }
        let (slot, size, complete) = (d.slot, d.image_size, d.complete());
        let failure = if r.image_size != size {
            Some((
                ResultCode::ParameterError,
                format!("End says {} bytes, Start said {size}", r.image_size),
            ))
        } else if !complete {
            Some((
                ResultCode::ProcessingError,
                "not every window was received".to_string(),
            ))
        } else {
            None
        };
        if let Some((code, reason)) = failure {
            self.discard_download(&reason);
            self.events.push_back(OnuEvent::ImageRefused {
                slot,
                reason,
                crc_mismatch: None,
            });
            return self.respond_end(msg, code);
        }
        self.download = None;
        self.verification = Some(Verification::Busy {
            until: now + self.cfg.busy_duration,
            slot,
            request: r.clone(),
        });
        if self.cfg.quirks.end_before_write {
            // The quirk: success before the flash is written or the image checked.
            return self.respond_end(msg, ResultCode::Success);
        }
        if self.cfg.busy_duration.is_zero() {
            self.finish_verification(slot, r.clone());
            let result = match &self.verification {
                Some(Verification::Done { result, .. }) => *result,
                _ => return,
            };
            return self.respond_end(msg, result);
        }
        self.respond_end(msg, ResultCode::DeviceBusy);
        self.fault(FaultPoint::DuringBusy);
    }

    /// The flash write is done: check CRC, size and the image itself, and record the outcome.
    fn finish_verification(&mut self, slot: u8, request: EndSoftwareDownloadRequest) {
        // Streamed from flash: what was written is what is checked, and memory stays small.
        let policy = DevicePolicy {
            model: self.cfg.model.clone(),
            anti_rollback_floor: self.meta.anti_rollback_floor,
            public_key: self.cfg.public_key,
        };
        let flash = &mut self.flash;
        let size = u64::from(request.image_size);
        // A refusal: why, and whether it is End's CRC against what was written.
        let outcome = image::crc_from(size, &mut |o, b| flash.read_slot(slot, o, b))
            .map_err(|e| (format!("flash read failed: {e}"), None))
            .and_then(|crc| {
                if crc != request.crc {
                    return Err((
                        format!("image CRC 0x{crc:08x}, End says 0x{:08x}", request.crc),
                        Some(CrcMismatch {
                            written: crc,
                            end: request.crc,
                        }),
                    ));
                }
                image::verify_from(size, &mut |o, b| flash.read_slot(slot, o, b), &policy)
                    .map(|found| slot_meta(&found))
                    .map_err(|e: ImageError| (e.to_string(), None))
            });
        let result = match outcome {
            Ok(slot_meta) => {
                let version = String::from_utf8_lossy(&slot_meta.version)
                    .trim_end_matches('\0')
                    .to_string();
                let before = self.meta.slots[usize::from(slot)].clone();
                self.meta.slots[usize::from(slot)] = slot_meta;
                if !self.persist() {
                    if self.dead.is_some() {
                        return;
                    }
                    // The flash refused the record: the image is not valid after all.
                    self.meta.slots[usize::from(slot)] = before;
                    self.events.push_back(OnuEvent::ImageRefused {
                        slot,
                        reason: "the metadata could not be written".into(),
                        crc_mismatch: None,
                    });
                    self.verification = Some(Verification::Done {
                        slot,
                        request,
                        result: ResultCode::ProcessingError,
                    });
                    return;
                }
                self.events
                    .push_back(OnuEvent::ImageValid { slot, version });
                self.notify_flags(slot);
                ResultCode::Success
            }
            Err((reason, crc_mismatch)) => {
                self.events.push_back(OnuEvent::ImageRefused {
                    slot,
                    reason,
                    crc_mismatch,
                });
                ResultCode::ProcessingError
            }
        };
        self.verification = Some(Verification::Done {
            slot,
            request,
            result,
        });
    }

    // ----------------------------------------------------------------------------------------
    // Activate, commit, reboot

    fn call_blocks(&self, condition: u8) -> Option<ResultCode> {
        match condition {
            0 => None,
            1 if self.cfg.voice_call_in_progress => Some(ResultCode::DeviceBusy),
            2 if self.cfg.emergency_call_in_progress => Some(ResultCode::DeviceBusy),
            1 | 2 => None,
            _ => Some(ResultCode::ParameterError),
        }
    }

    fn on_activate(&mut self, msg: &Message<'_>, flags: u8) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        if !self.meta.slots[usize::from(slot)].valid {
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        if let Some(code) = self.call_blocks(flags) {
            return self.respond_code(msg, code);
        }
        if slot == self.running {
            return self.respond_code(msg, ResultCode::Success);
        }
        self.meta.pending = Some(slot);
        self.meta.boot_tries = 0;
        if !self.persist() {
            return;
        }
        self.events.push_back(OnuEvent::Activated { slot });
        self.respond_code(msg, ResultCode::Success);
        if self.fault(FaultPoint::AfterActivate) {
            return;
        }
        self.request_reboot();
    }

    fn on_commit(&mut self, msg: &Message<'_>) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        let s = &self.meta.slots[usize::from(slot)];
        if !s.valid {
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        if self.meta.committed != slot {
            let floor = s.security_version.max(self.meta.anti_rollback_floor);
            let before = self.meta.committed;
            self.meta.committed = slot;
            self.meta.anti_rollback_floor = floor;
            if !self.persist() {
                return;
            }
            self.events.push_back(OnuEvent::Committed { slot });
            self.respond_code(msg, ResultCode::Success);
            self.notify_flags(slot);
            self.notify_flags(before);
        } else {
            self.respond_code(msg, ResultCode::Success);
        }
    }

    fn on_reboot(&mut self, msg: &Message<'_>, condition: u8) {
        if msg.me.class != MeClass::ONU_G {
            return self.respond_code(msg, unknown(msg.me, MeClass::ONU_G));
        }
        if msg.me.instance != 0 {
            return self.respond_code(msg, ResultCode::UnknownInstance);
        }
        if let Some(code) = self.call_blocks(condition) {
            return self.respond_code(msg, code);
        }
        self.respond_code(msg, ResultCode::Success);
        if self.cfg.quirks.no_fallback && self.running != self.meta.committed {
            // The quirk: boot the uncommitted running image again instead of the committed one.
            self.meta.pending = Some(self.running);
            self.meta.boot_tries = 0;
            if !self.persist() {
                return;
            }
        }
        self.request_reboot();
    }

    fn request_reboot(&mut self) {
        self.reboot = true;
        self.events.push_back(OnuEvent::RebootRequested);
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

/// Slot 0's two images are the only software image instances of this ONU.
fn valid_image_instance(instance: u16) -> bool {
    let id = SoftwareImageId::from_instance(instance);
    id.slot == 0 && id.image <= 1
}

fn unknown(me: MeId, class: MeClass) -> ResultCode {
    if me.class == class {
        ResultCode::UnknownInstance
    } else {
        ResultCode::UnknownMe
    }
}
