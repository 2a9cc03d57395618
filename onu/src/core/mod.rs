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
//!
//! ## Map
//! One room per job, all behind this module's face ([`Onu`], [`OnuConfig`], [`Quirks`],
//! [`OnuEvent`], [`CrcMismatch`], [`Counters`]); the rooms are private and only this module
//! and its rooms touch the core's fields.
//! - this file: the core's plumbing: the state, the bootloader's hand-over ([`Onu::boot`]),
//!   the deadlines, taking a datagram in and dispatching it by message type, the power-loss
//!   points, metadata writes, drops;
//! - `config`: [`OnuConfig`] (how an ONU is provisioned) and [`Quirks`] (weaker emulators on
//!   purpose);
//! - `events`: what the core reports: [`OnuEvent`], [`CrcMismatch`], [`Counters`];
//! - `respond`: the answers on the wire: responses by result code, attribute value changes;
//! - `get`: the Get answers, from the MIB's table;
//! - [`mib`]: the MIB (ONU data, ONU-G, ONU2-G, both software images, circuit pack, ANI-G):
//!   the one table Get and MIB upload read, MIB reset, MIB upload (next), Get all alarms
//!   (next);
//! - `download`: the software download: Start, Download sections and windows, the
//!   missing-section bitmap, discarding a download;
//! - `end`: End software download: the busy phase and the image checks that make an image
//!   valid;
//! - `activation`: Activate, Commit and Reboot.

use std::collections::VecDeque;
use std::time::Instant;

use omci_codec::contents::Contents;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::software_image::SoftwareImageId;
use omci_codec::{Codec, GemPort, MeClass, MeId, Message, ResultCode};

use crate::boot::{self, BootError, Booted};
use crate::faults::{FaultPoint, Faults};
use crate::flash::Flash;
use crate::meta::{self, Metadata};

mod activation;
mod config;
mod download;
mod end;
mod events;
mod get;
pub mod mib;
mod respond;

pub use config::{OnuConfig, Quirks};
pub use events::{Counters, CrcMismatch, OnuEvent};

use download::Download;
use end::Verification;

/// Windows beyond the next expected one that the ONU keeps track of at once (multicast windows
/// may be pipelined). Sections of windows further ahead are dropped and counted.
pub use omci_codec::windowing::WINDOW_HORIZON;

/// The ONU.
pub struct Onu<F: Flash> {
    /// How it was provisioned.
    cfg: OnuConfig,
    /// Its two slots and metadata record: all that survives a reboot or a power cut.
    flash: F,
    /// Parses requests and emits answers (the extended trailer is the transport's).
    codec: Codec,
    /// The metadata record as last stored (committed image, pending activation, floor, slots).
    meta: Metadata,
    /// The slot the bootloader started: the active image.
    running: u8,
    /// The download in progress, if any (S2); lost with a reboot, as G.988 wants.
    download: Option<Download>,
    /// End software download's busy phase or its outcome, for a repeated End.
    verification: Option<Verification>,
    /// Datagrams for the OLT, in order ([`Onu::poll_transmit`]).
    outbox: VecDeque<Vec<u8>>,
    /// Events not yet taken ([`Onu::poll_event`]).
    events: VecDeque<OnuEvent>,
    /// What it counted since boot.
    counters: Counters,
    /// The power-loss plan, and how often each point was reached.
    faults: Faults,
    /// It asked to be rebooted: it takes nothing more in.
    reboot: bool,
    /// The power was cut at this point: it is dead.
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
            Some(Verification::Busy { until, .. }) => *until,
            Some(Verification::Rebuilding { next, .. }) => Some(*next),
            _ => None,
        };
        let stale = self.download.as_ref().and_then(|d| self.stale_at(d));
        [verify, stale].into_iter().flatten().min()
    }

    /// When `d` goes stale (`None`: a timeout past what an `Instant` can hold, never).
    fn stale_at(&self, d: &Download) -> Option<Instant> {
        d.last_activity.checked_add(self.cfg.stale_download_timeout)
    }

    /// Time has reached `now`: finish a verification, expire a stale download.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.dead.is_some() {
            return;
        }
        if let Some(Verification::Busy {
            until: Some(until),
            slot,
            request,
        }) = &self.verification
            && now >= *until
        {
            let (slot, request) = (*slot, request.clone());
            self.finish_verification(now, slot, request);
        }
        while let Some(Verification::Rebuilding { next, .. }) = &self.verification
            && now >= *next
            && self.dead.is_none()
        {
            self.rebuild_step(now);
        }
        if let Some(d) = &self.download
            && self.stale_at(d).is_some_and(|at| now >= at)
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

    /// A datagram the driver refused before the core saw it (from another sender than the
    /// OLT, on the multicast group or on the ONU's own port): counted and reported like any
    /// dropped frame, and never answered.
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
