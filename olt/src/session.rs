//! One ONU's upgrade, as a sans-IO state machine.
//!
//! The standard G.988 procedure, as open OLT stacks run it, one request in flight at a time:
//!
//! 1. Get software images 0 and 1; the target is the image that is neither active nor
//!    committed (an ONU already running the version is skipped).
//! 2. Start software download; the window the ONU answers is adopted (never a larger one).
//! 3. Every window: its sections, AR on the last; the envelope carries the absolute window
//!    number and, on the last section, the window CRC. Success: the next window. Processing
//!    error or silence: the window again.
//! 4. End software download; "device busy" is asked again after a pause.
//! 5. Get: the target must be valid, of the new version, not active.
//! 6. Activate; the ONU reboots; Get until it answers with the target active.
//! 7. Commit; Get: the target must be committed.
//!
//! Every request has a timeout and retries (G.988 leaves them to the OLT; 3 s and 2 retries by
//! default, as open OLT stacks); a session that runs out ends failed, with the reason.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use omci_codec::contents::{
    ActivateSoftwareRequest, AttributeValues, Contents, DownloadSectionRequest,
    EndSoftwareDownloadRequest, GetRequest, StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::{SoftwareImageAttributes, mask};
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, ResultCode, Tci, WindowNo,
};

use crate::image::{Cut, UpgradeImage};

/// Timeouts, retries and sizes of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// How long to wait for a response.
    pub timeout: Duration,
    /// Retransmissions of a request before the session fails.
    pub retries: u8,
    /// The window proposed at Start (1..=256 sections).
    pub window_size: u16,
    /// Times one window may be sent again before the session fails.
    pub window_retries: u16,
    /// Pause before asking End again after "device busy".
    pub busy_interval: Duration,
    /// "Device busy" answers accepted before the session fails.
    pub max_busy: u32,
    /// How long the ONU may take to come back after Activate.
    pub reboot_timeout: Duration,
    /// How often the ONU is asked whether it is back.
    pub reboot_poll: Duration,
    /// Baseline or extended messages.
    pub format: Format,
    /// Data bytes per section on extended frames (baseline sections are 31).
    pub extended_section_len: usize,
    /// Only ONUs of this model (ONU2-G equipment ID) are upgraded; others are refused before
    /// any download. None: no check.
    pub model: Option<String>,
    /// The campaign's health gate: once the ONU is back, active on the new version (and still
    /// so after `health_settle`), the session holds before Commit until the campaign says
    /// [`Session::commit`] or [`Session::halt`].
    pub hold_before_commit: bool,
    /// After the ONU is back on the new image, ask again after this long: an image that falls
    /// back (or reboots) shortly after booting fails the health gate. Zero: no second look.
    pub health_settle: Duration,
    /// Survey only: read the ONU's model and images, decide, and end with
    /// [`Outcome::Eligible`] instead of downloading.
    pub survey: bool,
    /// Activate software's flags (G.988 9.1.4): 0 unconditionally, 1 unless a voice call is in
    /// progress, 2 unless an emergency call is; the ONU answers "device busy" to defer.
    pub activate_flags: u8,
    /// How long a deferred activation is asked again before the session gives up.
    pub activate_defer: Duration,
    /// Unicast mode: put the window number and CRC in the transport envelope (this lab's
    /// extension, which lets the ONU check each window). False: strictly G.988, as open OLT
    /// stacks send it; the multicast mode always needs them.
    pub envelope_extensions: bool,
    /// Rules broken on purpose (`olt rollout --quirk`), so that the ONU's OLT checker can be
    /// seen to catch them. None by default.
    pub quirks: OltQuirks,
    /// Abort only (`olt abort`, or a campaign halted when its OLT stopped): read the images,
    /// then abort any download into the standby image and send an ONU that runs an
    /// uncommitted image back to its committed one; the reason given is reported.
    pub abort: Option<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            retries: 2,
            window_size: 32,
            window_retries: 8,
            busy_interval: Duration::from_millis(200),
            max_busy: 300,
            reboot_timeout: Duration::from_secs(60),
            reboot_poll: Duration::from_millis(500),
            format: Format::Baseline,
            extended_section_len: 1965,
            model: None,
            hold_before_commit: false,
            health_settle: Duration::ZERO,
            survey: false,
            envelope_extensions: true,
            activate_flags: 0,
            activate_defer: Duration::from_secs(60),
            quirks: OltQuirks::default(),
            abort: None,
        }
    }
}

/// Faults of weaker OLTs, each a rule of G.988 broken on purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OltQuirks {
    /// AR set on every Download section, not only on each window's last.
    pub ar_on_every_section: bool,
    /// End software download with a CRC that does not match the image.
    pub wrong_end_crc: bool,
    /// Take "device busy" at End as success and go on.
    pub no_busy_retry: bool,
}

impl OltQuirks {
    /// The names `olt rollout --quirk` takes.
    pub const NAMES: [&'static str; 3] = ["ar-on-every-section", "wrong-end-crc", "no-busy-retry"];

    /// Turns on the quirk called `name`; false for an unknown name.
    pub fn set(&mut self, name: &str) -> bool {
        match name {
            "ar-on-every-section" => self.ar_on_every_section = true,
            "wrong-end-crc" => self.wrong_end_crc = true,
            "no-busy-retry" => self.no_busy_retry = true,
            _ => return false,
        }
        true
    }
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The new image is committed and active.
    Upgraded,
    /// Nothing to do: the ONU already runs the version.
    Skipped(String),
    /// The upgrade stopped; the ONU still runs a committed image.
    Failed(String),
    /// The ONU is of another model than the image's: refused before any download.
    Refused(String),
    /// Stopped by the campaign's kill switch or an abort: the download was aborted, or the
    /// new image, activated but not committed, was left for the committed one. The ONU runs
    /// its committed image.
    Halted(String),
    /// Survey only: the ONU is of the model and needs the image.
    Eligible,
}

/// What a session counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames sent.
    pub frames: u64,
    /// Of which with AR set.
    pub frames_with_ar: u64,
    /// Bytes sent (datagrams, envelope included).
    pub bytes: u64,
    /// Requests sent again after a timeout.
    pub retries: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Windows sent again (after a processing error or a timeout).
    pub repaired_windows: u64,
    /// "Device busy" answers.
    pub busy: u64,
    /// Times the session started again because the ONU lost its download (it rebooted).
    pub restarts: u64,
    /// Time spent in each phase, in order.
    pub phases: Vec<(&'static str, Duration)>,
}

/// A datagram for one ONU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The ONU.
    pub onu: OnuId,
    /// Envelope and OMCI frame.
    pub datagram: Vec<u8>,
    /// A Download section (pacing counts these).
    pub section: bool,
    /// With AR set.
    pub ar: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Get ONU2-G equipment ID (the model).
    Survey,
    Discover(u8),
    Start,
    Window(u32),
    End,
    VerifyValid,
    Activate,
    AwaitReboot,
    Commit,
    VerifyCommitted,
    /// Multicast mode: Start done, the engine's group download moves the windows.
    Group,
    /// The health gate's second look, `health_settle` after the ONU came back.
    Confirm,
    /// Healthy, active on the new version, not committed: waits for the campaign.
    Held,
    /// The campaign said commit: one more Get first (the ONU may have left the new image
    /// while held), then Commit.
    Recheck,
    /// Halting: End download with the abort convention sent.
    Abort,
    /// Halting: Activate of the committed image sent (false), answered (true: Get until the
    /// committed image runs).
    Revert(bool),
    /// After a failure or a halt: Get both images to report what the ONU runs.
    Inspect(u8),
    Over,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Survey => "discover",
            Phase::Discover(_) => "discover",
            Phase::Start => "start",
            Phase::Window(_) => "download",
            Phase::End => "end",
            Phase::VerifyValid => "verify",
            Phase::Activate => "activate",
            Phase::AwaitReboot => "reboot",
            Phase::Commit => "commit",
            Phase::VerifyCommitted => "verify-commit",
            Phase::Group => "download",
            Phase::Confirm => "health",
            Phase::Held => "held",
            Phase::Recheck => "health",
            Phase::Abort => "abort",
            Phase::Revert(_) => "rollback",
            Phase::Inspect(_) => "inspect",
            Phase::Over => "over",
        }
    }
}

/// What the session waits for.
#[derive(Clone, Debug)]
enum Wait {
    /// The response to `tci`; `resend` is sent again at `deadline` (up to the retries).
    Response {
        tci: Tci,
        deadline: Instant,
        tries: u8,
        resend: Vec<u8>,
    },
    /// Nothing until `at` (a pause after "busy", the next poll of a rebooting ONU).
    Until(Instant),
    /// Nothing: the session is over.
    Nothing,
}

/// One ONU's upgrade.
#[derive(Debug)]
pub struct Session {
    onu: OnuId,
    cfg: SessionConfig,
    image: UpgradeImage,
    codec: Codec,
    phase: Phase,
    phase_since: Instant,
    wait: Wait,
    tci: u16,
    target: u8,
    images: [Option<SoftwareImageAttributes>; 2],
    window_size: u16,
    window_tries: u16,
    busy: u32,
    reboot_deadline: Option<Instant>,
    /// The ONU went down after Activate: its answers stopped, or it announced a boot (the
    /// attribute value change every boot sends).
    went_down: bool,
    /// Multicast mode: the windows go to the group, the engine moves them.
    multicast: bool,
    /// After Activate, the ONU announced the new image active: it did boot it (if it then
    /// comes back on its committed image, it rebooted before Commit, and is activated again).
    booted_new: bool,
    /// Activations sent again after such a reboot.
    reactivations: u32,
    /// When the first Activate was sent (a deferred activation is asked again until
    /// `activate_defer` has passed).
    activate_since: Option<Instant>,
    /// The ONU announced a boot (an attribute value change) during the download: if it then
    /// answers as if it had no download in progress, it lost it (a power cut) and the session
    /// starts again.
    rebooted: bool,
    /// Times the session started again after the ONU lost its download.
    restarts: u32,
    /// The model the ONU said it is (ONU2-G equipment ID).
    model: Option<String>,
    /// The version the ONU ran when the session began.
    from_version: Option<String>,
    /// The window last sent and its sections' TCIs (reused when it is sent again).
    window_tcis: (Option<u32>, Vec<Tci>),
    /// Halting (kill switch or abort): why. The session winds down instead of going on.
    halting: Option<String>,
    /// The outcome decided, reported once the final inspection is done.
    pending_outcome: Option<Outcome>,
    out: VecDeque<Outgoing>,
    outcome: Option<Outcome>,
    stats: SessionStats,
}

impl Session {
    /// A session for `onu`, starting now with the first Get. With `multicast`, the session
    /// stops after Start ([`Session::accepted_window`]) and the engine's group download moves
    /// the windows, then hands it back ([`Session::group_done`]).
    pub fn new(
        onu: OnuId,
        image: UpgradeImage,
        cfg: SessionConfig,
        multicast: bool,
        now: Instant,
    ) -> Session {
        let mut s = Session {
            onu,
            image,
            codec: Codec::new(ExtendedTrailer::Crc32),
            phase: Phase::Discover(0),
            phase_since: now,
            wait: Wait::Nothing,
            tci: 0,
            target: 1,
            images: [None, None],
            window_size: cfg.window_size.clamp(1, 256),
            window_tries: 0,
            busy: 0,
            reboot_deadline: None,
            went_down: false,
            multicast,
            rebooted: false,
            restarts: 0,
            activate_since: None,
            booted_new: false,
            reactivations: 0,
            model: None,
            from_version: None,
            window_tcis: (None, Vec::new()),
            halting: None,
            pending_outcome: None,
            out: VecDeque::new(),
            outcome: None,
            stats: SessionStats::default(),
            cfg,
        };
        if s.cfg.model.is_some() {
            s.phase = Phase::Survey;
            s.request(
                now,
                MeId::new(MeClass::ONU2_G, 0),
                Contents::GetRequest(GetRequest {
                    attribute_mask: 0x8000,
                }),
            );
        } else {
            s.get(now, 0);
        }
        s
    }

    /// The ONU.
    pub fn onu(&self) -> OnuId {
        self.onu
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// What it counted.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The phase the session is in ("discover", "download", "end", ... "over").
    pub fn phase_name(&self) -> &'static str {
        self.phase.name()
    }

    /// The image the download went into.
    pub fn target(&self) -> u8 {
        self.target
    }

    /// The version the ONU ran when the session began (its active image), once known.
    pub fn from_version(&self) -> Option<String> {
        self.from_version.clone()
    }

    /// The version of the ONU's committed image, as last read with Get.
    pub fn committed_version(&self) -> Option<String> {
        self.version_where(|a| a.is_committed == Some(true))
    }

    /// The version of the ONU's active (running) image, as last read with Get.
    pub fn active_version(&self) -> Option<String> {
        self.version_where(|a| a.is_active == Some(true))
    }

    /// The model the ONU said it is (ONU2-G equipment ID), when asked.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    fn version_where(&self, f: impl Fn(&SoftwareImageAttributes) -> bool) -> Option<String> {
        self.images
            .iter()
            .flatten()
            .find(|a| f(a))
            .and_then(|a| a.version)
            .map(|v| version_text(&v))
    }

    /// True while the session holds before Commit (the campaign's health gate passed).
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held
    }

    /// True once the session was told to halt (it may still be winding down).
    pub fn is_halting(&self) -> bool {
        self.halting.is_some()
    }

    /// The next datagram to send. `now` is when it leaves: the wait for its answer starts
    /// then (a paced OLT may hold a datagram back for a while).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        let out = self.out.pop_front()?;
        if self.out.is_empty()
            && let Wait::Response { deadline, .. } = &mut self.wait
        {
            *deadline = (*deadline).max(now + self.cfg.timeout);
        }
        Some(out)
    }

    /// True when the next datagram is a Download section (what pacing counts).
    pub fn next_is_section(&self) -> bool {
        self.out.front().is_some_and(|o| o.section)
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.wait {
            // The wait for an answer starts when the request leaves (pacing may hold it).
            Wait::Response { .. } if !self.out.is_empty() => None,
            Wait::Response { deadline, .. } => Some(*deadline),
            Wait::Until(at) => Some(*at),
            Wait::Nothing => None,
        }
    }

    fn next_tci(&mut self) -> Tci {
        // 1..0x4000: 0 is the ONU's own notifications', 0x4000.. the group download's.
        self.tci = if self.tci >= 0x3FFF { 1 } else { self.tci + 1 };
        Tci(self.tci)
    }

    fn sw(&self, image: u8) -> MeId {
        MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(image))
    }

    fn enter(&mut self, now: Instant, phase: Phase) {
        if std::mem::discriminant(&phase) != std::mem::discriminant(&self.phase) {
            self.stats
                .phases
                .push((self.phase.name(), now - self.phase_since));
            self.phase_since = now;
        }
        self.phase = phase;
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.enter(now, Phase::Over);
        self.wait = Wait::Nothing;
        self.outcome = Some(outcome);
    }

    fn fail(&mut self, now: Instant, reason: String) {
        self.conclude(now, Outcome::Failed(reason));
    }

    /// Ends with `outcome` after reading both images once more (what the ONU runs now goes in
    /// the report), unless the ONU has stopped answering.
    fn conclude(&mut self, now: Instant, outcome: Outcome) {
        let silent = matches!(&outcome, Outcome::Failed(why) if why.starts_with("no answer"));
        if silent || matches!(self.phase, Phase::Inspect(_)) {
            return self.finish(now, outcome);
        }
        self.pending_outcome = Some(outcome);
        self.enter(now, Phase::Inspect(0));
        self.get(now, 0);
    }

    fn halted(&mut self, now: Instant, what: &str) {
        let why = self.halting.clone().unwrap_or_else(|| "halted".into());
        self.conclude(now, Outcome::Halted(format!("{why}: {what}")));
    }

    /// Stops this ONU's upgrade, leaving it on its committed image: a download in progress is
    /// aborted (End download with size 0 and CRC 0xFFFFFFFF), an image activated but not
    /// committed is left for the committed one (Activate of the committed image: the ONU
    /// reboots into it), a rebooting ONU is waited for first. A Commit already sent finishes.
    pub fn halt(&mut self, now: Instant, reason: &str) {
        if self.outcome.is_some() || self.halting.is_some() {
            return;
        }
        self.halting = Some(reason.to_string());
        match self.phase {
            Phase::Survey | Phase::Discover(_) => {
                self.halted(now, "stopped before the download began")
            }
            Phase::Start | Phase::Group | Phase::Window(_) | Phase::End | Phase::VerifyValid => {
                self.abort(now)
            }
            Phase::Confirm | Phase::Held | Phase::Recheck => self.revert(now),
            // Activate, the reboot: see where the ONU comes back. Commit: it finishes.
            _ => {}
        }
    }

    /// The campaign's gate passed: Commit, once a last Get shows the ONU still runs the new
    /// image (it may have rebooted back to its committed one while held; committing an image
    /// that is not running would make the ONU boot it untried).
    pub fn commit(&mut self, now: Instant) {
        if self.phase == Phase::Held {
            self.enter(now, Phase::Recheck);
            self.get(now, self.target);
        }
    }

    fn abort(&mut self, now: Instant) {
        self.enter(now, Phase::Abort);
        self.out.clear();
        self.request(
            now,
            self.sw(self.target),
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc: 0xFFFF_FFFF,
                image_size: 0,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    /// Back to the committed image: Activate it (the ONU reboots into it).
    fn revert(&mut self, now: Instant) {
        self.enter(now, Phase::Revert(false));
        self.went_down = false;
        self.reboot_deadline = Some(now + self.cfg.reboot_timeout);
        self.request(
            now,
            self.sw(1 - self.target),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
        );
    }

    /// The ONU is back, active on the new version: the health gate's second look, then hold or
    /// Commit.
    fn came_back(&mut self, now: Instant) {
        if self.halting.is_some() {
            return self.revert(now);
        }
        if !self.cfg.health_settle.is_zero() && self.phase != Phase::Confirm {
            self.enter(now, Phase::Confirm);
            self.wait = Wait::Until(now + self.cfg.health_settle);
            return;
        }
        if self.cfg.hold_before_commit {
            self.enter(now, Phase::Held);
            self.wait = Wait::Nothing;
            return;
        }
        self.enter(now, Phase::Commit);
        self.request(now, self.sw(self.target), Contents::CommitSoftwareRequest);
    }

    fn push(&mut self, envelope: Envelope, msg: &Message<'_>) -> Vec<u8> {
        let frame = match self.codec.to_vec(msg) {
            Ok(f) => f,
            Err(e) => unreachable_encode(e),
        };
        let datagram = envelope.wrap(&frame);
        self.stats.frames += 1;
        self.stats.frames_with_ar += u64::from(msg.ar);
        self.stats.bytes += datagram.len() as u64;
        self.out.push_back(Outgoing {
            onu: self.onu,
            datagram: datagram.clone(),
            section: matches!(msg.contents, Contents::DownloadSectionRequest(_)),
            ar: msg.ar,
        });
        datagram
    }

    /// Sends a request and waits for its response.
    fn request(&mut self, now: Instant, me: MeId, contents: Contents<'_>) {
        let tci = self.next_tci();
        let msg = Message::new(tci, self.cfg.format, me, contents);
        let resend = self.push(Envelope::omcc(self.onu), &msg);
        self.wait = Wait::Response {
            tci,
            deadline: now + self.cfg.timeout,
            tries: 0,
            resend,
        };
    }

    fn get(&mut self, now: Instant, image: u8) {
        self.request(
            now,
            self.sw(image),
            Contents::GetRequest(GetRequest {
                attribute_mask: mask::VERSION
                    | mask::IS_COMMITTED
                    | mask::IS_ACTIVE
                    | mask::IS_VALID,
            }),
        );
    }

    fn cut(&self) -> Cut {
        self.image.cut(
            self.cfg.format,
            self.window_size,
            self.cfg.extended_section_len,
        )
    }

    /// Sends window `w`: its sections, AR on the last, which carries the window CRC. A repeat
    /// of the window (`w` the window last sent) reuses its TCIs: a retransmission in G.988's
    /// sense, so that an ONU counting windows itself (no window number in the envelope) puts
    /// the sections where they belong even if it had acknowledged the window already.
    fn send_window(&mut self, now: Instant, w: u32) {
        let cut = self.cut();
        let sections = self.image.sections_in(cut, w);
        let window_crc = self.image.window_crc(cut, w);
        self.drop_queued();
        let repeat = self.window_tcis.0 == Some(w) && self.window_tcis.1.len() == sections;
        if !repeat {
            let tcis = (0..sections).map(|_| self.next_tci()).collect();
            self.window_tcis = (Some(w), tcis);
        }
        let mut ar_tci = Tci(0);
        let mut ar_datagram = Vec::new();
        for n in 0..sections {
            let ar = n + 1 == sections;
            let tci = self.window_tcis.1[n];
            let msg = Message::new(
                tci,
                self.cfg.format,
                self.sw(self.target),
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: n as u8,
                    data: Cow::Owned(self.image.section(cut, w, n)),
                }),
            )
            .with_ar(ar || self.cfg.quirks.ar_on_every_section);
            let ext = self.cfg.envelope_extensions;
            let envelope = Envelope {
                window_no: ext.then_some(WindowNo(w)),
                window_crc: (ext && ar).then_some(window_crc),
                ..Envelope::omcc(self.onu)
            };
            let datagram = self.push(envelope, &msg);
            if ar {
                ar_tci = tci;
                ar_datagram = datagram;
            }
        }
        // No answer: the AR section is retransmitted as it was, TCI included (G.988's
        // retransmission; an ONU that has the window answers again, one that misses sections
        // says so), and after the retries the whole window goes again.
        self.wait = Wait::Response {
            tci: ar_tci,
            deadline: now + self.cfg.timeout,
            tries: 0,
            resend: ar_datagram,
        };
    }

    /// Activate software of the target, with the configured flags.
    fn activate(&mut self, now: Instant) {
        self.request(
            now,
            self.sw(self.target),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                activate_flags: self.cfg.activate_flags,
            }),
        );
    }

    fn end(&mut self, now: Instant) {
        self.request(
            now,
            self.sw(self.target),
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc: self.image.crc ^ u32::from(self.cfg.quirks.wrong_end_crc),
                image_size: self.image.len() as u32,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.wait, Wait::Response { .. }) && !self.out.is_empty() {
            return; // not sent yet: nothing to time out
        }
        match self.wait.clone() {
            Wait::Until(at) if now >= at => match self.phase {
                Phase::End => self.end(now),
                Phase::Activate => self.activate(now),
                Phase::AwaitReboot | Phase::Confirm => self.get(now, self.target),
                Phase::Revert(_) => self.get(now, 1 - self.target),
                _ => {}
            },
            Wait::Response {
                tci,
                deadline,
                tries,
                resend,
            } if now >= deadline => {
                self.stats.timeouts += 1;
                if let Phase::Window(w) = self.phase
                    && tries >= self.cfg.retries
                {
                    return self.repeat_window(now, w, "no answer to the window's last section");
                }
                if self.phase == Phase::AwaitReboot || self.phase == Phase::Revert(true) {
                    // A rebooting ONU is silent: keep asking until the reboot deadline.
                    self.went_down = true;
                    return self.poll_reboot(now);
                }
                if self.phase == Phase::Revert(false) && tries >= self.cfg.retries {
                    // As after Activate: the answer may have been lost as the ONU went down.
                    self.phase = Phase::Revert(true);
                    self.went_down = true;
                    return self.get(now, 1 - self.target);
                }
                if let (Phase::Inspect(_), true) = (self.phase, tries >= self.cfg.retries) {
                    let outcome = self.pending_outcome.take();
                    return self
                        .finish(now, outcome.unwrap_or(Outcome::Failed("no answer".into())));
                }
                if self.phase == Phase::Abort && tries >= self.cfg.retries {
                    let why = self.halting.clone().unwrap_or_default();
                    return self.finish(
                        now,
                        Outcome::Halted(format!("{why}: the abort got no answer")),
                    );
                }
                if self.phase == Phase::Activate && tries >= self.cfg.retries {
                    // No answer to Activate: it may have been lost while the ONU went down to
                    // reboot into the image. Whether it did, Get will tell.
                    self.enter(now, Phase::AwaitReboot);
                    self.reboot_deadline = Some(now + self.cfg.reboot_timeout);
                    self.went_down = true;
                    return self.get(now, self.target);
                }
                if tries >= self.cfg.retries {
                    if matches!(self.phase, Phase::Commit | Phase::VerifyCommitted) {
                        // Whether the Commit took, the final Get may still tell.
                        return self.fail(now, "Commit software went unanswered".into());
                    }
                    let what = self.phase.name();
                    return self.fail(now, format!("no answer in the {what} phase"));
                }
                self.stats.retries += 1;
                self.stats.frames += 1;
                self.stats.bytes += resend.len() as u64;
                self.out.push_back(Outgoing {
                    onu: self.onu,
                    datagram: resend.clone(),
                    section: matches!(self.phase, Phase::Window(_)),
                    ar: matches!(self.phase, Phase::Window(_)),
                });
                self.wait = Wait::Response {
                    tci,
                    deadline: now + self.cfg.timeout,
                    tries: tries + 1,
                    resend,
                };
            }
            _ => {}
        }
    }

    /// Forgets datagrams still queued (a window about to be sent again makes them stale); the
    /// counters count what was sent, so they are taken back.
    fn drop_queued(&mut self) {
        for o in self.out.drain(..) {
            self.stats.frames -= 1;
            self.stats.bytes -= o.datagram.len() as u64;
            self.stats.frames_with_ar -= u64::from(o.ar);
        }
    }

    fn repeat_window(&mut self, now: Instant, w: u32, why: &str) {
        self.window_tries += 1;
        if self.window_tries > self.cfg.window_retries {
            return self.fail(
                now,
                format!("window {w} failed {} times: {why}", self.window_tries),
            );
        }
        self.stats.repaired_windows += 1;
        self.send_window(now, w);
    }

    fn poll_reboot(&mut self, now: Instant) {
        match self.reboot_deadline {
            Some(d) if now >= d => {
                let what = if matches!(self.phase, Phase::Revert(_)) {
                    "the rollback to the committed image"
                } else {
                    "Activate"
                };
                self.fail(
                    now,
                    format!("no answer: the ONU did not come back after {what}"),
                )
            }
            _ => self.wait = Wait::Until(now + self.cfg.reboot_poll),
        }
    }

    /// A response or notification from this ONU.
    pub fn handle_response(&mut self, now: Instant, msg: &Message<'_>) {
        if msg.message_type() == omci_codec::MessageType::AttributeValueChange && !msg.ak() {
            // Every boot of the ONU announces itself: after Activate, that is the reboot.
            if matches!(
                self.phase,
                Phase::Activate | Phase::AwaitReboot | Phase::Revert(_)
            ) {
                self.went_down = true;
            }
            if matches!(
                self.phase,
                Phase::Start | Phase::Window(_) | Phase::Group | Phase::End | Phase::VerifyValid
            ) {
                self.rebooted = true;
            }
            if matches!(self.phase, Phase::Activate | Phase::AwaitReboot)
                && msg.me.instance == u16::from(self.target)
                && let Contents::AttributeValueChange(avc) = &msg.contents
                && let AttributeValues::SoftwareImage(a) = &avc.attributes
                && a.is_active == Some(true)
            {
                self.booted_new = true;
            }
            return;
        }
        let Wait::Response { tci, .. } = &self.wait else {
            return;
        };
        if msg.tci != *tci || !msg.ak() {
            return; // a late or duplicated answer to an earlier request
        }
        let result = msg.contents.result();
        if let Contents::GetResponse(g) = &msg.contents
            && msg.me.class == MeClass::SOFTWARE_IMAGE
            && let Some(a) = software_image(g.result, &g.attributes)
        {
            self.note_image(msg.me.instance, a);
        }
        match (self.phase, &msg.contents) {
            (Phase::Survey, Contents::GetResponse(g)) => {
                let model = match (&g.result, &g.attributes) {
                    (ResultCode::Success, AttributeValues::Raw { values, .. }) => {
                        version_text(&values[..values.len().min(20)])
                    }
                    _ => {
                        return self.conclude(
                            now,
                            Outcome::Refused(format!(
                                "its model could not be read (Get ONU2-G answered {})",
                                g.result
                            )),
                        );
                    }
                };
                self.model = Some(model.clone());
                match &self.cfg.model {
                    Some(want) if *want != model => self.conclude(
                        now,
                        Outcome::Refused(format!(
                            "it is a {model}, the image is for {want}: nothing was downloaded"
                        )),
                    ),
                    _ => {
                        self.enter(now, Phase::Discover(0));
                        self.get(now, 0)
                    }
                }
            }
            (Phase::Inspect(i), Contents::GetResponse(_)) => {
                if i == 0 {
                    self.phase = Phase::Inspect(1);
                    return self.get(now, 1);
                }
                let outcome = self.pending_outcome.take();
                self.finish(now, outcome.unwrap_or(Outcome::Failed("inspected".into())));
            }
            (Phase::Abort, Contents::EndSoftwareDownloadResponse(r)) => {
                if r.result == ResultCode::Success {
                    self.halted(
                        now,
                        "download aborted (End software download, abort convention)",
                    )
                } else {
                    self.halted(
                        now,
                        &format!("the abort (End software download) answered {}", r.result),
                    )
                }
            }
            (Phase::Revert(false), _) if result.is_some() => {
                if result != Some(ResultCode::Success) {
                    return self.fail(
                        now,
                        format!(
                            "the rollback's Activate of the committed image answered {}",
                            result.unwrap_or(ResultCode::Success)
                        ),
                    );
                }
                self.phase = Phase::Revert(true);
                self.wait = Wait::Until(now + self.cfg.reboot_poll);
            }
            (Phase::Revert(true), Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a) if a.is_active == Some(true) && a.is_committed == Some(true) => self
                        .halted(
                            now,
                            "rolled back, the ONU runs its committed image again (the new one stays valid, uncommitted, in the standby image)",
                        ),
                    _ => self.poll_reboot(now),
                }
            }
            (Phase::Recheck, Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a)
                        if a.is_active == Some(true) && a.version == Some(self.image.version()) =>
                    {
                        self.enter(now, Phase::Commit);
                        self.request(now, self.sw(self.target), Contents::CommitSoftwareRequest);
                    }
                    _ => self.fail(
                        now,
                        "the health gate: the ONU left the new image while it was held, before Commit"
                            .into(),
                    ),
                }
            }
            (Phase::Confirm, Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a)
                        if a.is_active == Some(true) && a.version == Some(self.image.version()) =>
                    {
                        self.came_back(now)
                    }
                    _ => self.fail(
                        now,
                        "the health gate: the ONU fell back to its committed image after booting the new one"
                            .into(),
                    ),
                }
            }
            (Phase::Discover(i), Contents::GetResponse(g)) => {
                let Some(attrs) = software_image(g.result, &g.attributes) else {
                    return self.fail(
                        now,
                        format!("Get of software image {i} answered {}", g.result),
                    );
                };
                self.images[usize::from(i)] = Some(attrs);
                if i == 0 {
                    self.phase = Phase::Discover(1);
                    return self.get(now, 1);
                }
                self.choose_target(now);
            }
            (Phase::Start, Contents::StartSoftwareDownloadResponse(r)) => {
                if r.result != ResultCode::Success {
                    return self.fail(
                        now,
                        format!("Start software download answered {}", r.result),
                    );
                }
                if r.window_size() > self.window_size {
                    return self.fail(
                        now,
                        format!(
                            "the ONU raised the window from {} to {} (G.988 lets it only lower it)",
                            self.window_size,
                            r.window_size()
                        ),
                    );
                }
                self.window_size = r.window_size();
                if self.multicast {
                    self.enter(now, Phase::Group);
                    self.wait = Wait::Nothing;
                    return;
                }
                self.enter(now, Phase::Window(0));
                self.window_tries = 0;
                self.send_window(now, 0);
            }
            (Phase::Window(w), Contents::DownloadSectionResponse(r)) => {
                if r.result != ResultCode::Success && self.rebooted {
                    return self.start_again(now, "the ONU rebooted and lost its download");
                }
                if r.result != ResultCode::Success {
                    return self.repeat_window(now, w, "a section was missing");
                }
                self.window_tries = 0;
                if w + 1 < self.image.windows(self.cut()) {
                    self.phase = Phase::Window(w + 1);
                    self.send_window(now, w + 1);
                } else {
                    self.enter(now, Phase::End);
                    self.end(now);
                }
            }
            (Phase::End, Contents::EndSoftwareDownloadResponse(r)) => match r.result {
                ResultCode::Success => {
                    self.enter(now, Phase::VerifyValid);
                    self.get(now, self.target);
                }
                ResultCode::DeviceBusy if self.cfg.quirks.no_busy_retry => {
                    self.stats.busy += 1;
                    self.enter(now, Phase::VerifyValid);
                    self.get(now, self.target);
                }
                ResultCode::DeviceBusy => {
                    self.stats.busy += 1;
                    self.busy += 1;
                    if self.busy > self.cfg.max_busy {
                        return self.fail(now, "End software download stayed busy".into());
                    }
                    self.wait = Wait::Until(now + self.cfg.busy_interval);
                }
                other if self.rebooted => self.start_again(
                    now,
                    &format!("End software download answered {other} after the ONU rebooted"),
                ),
                other => self.fail(now, format!("End software download answered {other}")),
            },
            (Phase::VerifyValid, Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a)
                        if a.is_valid == Some(true)
                            && a.is_active == Some(false)
                            && a.version == Some(self.image.version()) =>
                    {
                        self.enter(now, Phase::Activate);
                        self.activate_since = Some(now);
                        self.activate(now);
                    }
                    _ if self.rebooted => {
                        self.start_again(now, "the ONU rebooted before its image was verified")
                    }
                    other => self.fail(now, format!("after End the image reads {other:?}")),
                }
            }
            (Phase::Activate, _) if result == Some(ResultCode::DeviceBusy) => {
                // Flags 1 or 2 and a call in progress: the ONU defers activation.
                self.stats.busy += 1;
                let since = self.activate_since.unwrap_or(now);
                if now.saturating_duration_since(since) >= self.cfg.activate_defer {
                    return self.fail(
                        now,
                        format!(
                            "Activate deferred: a call stayed in progress for {:.0} s (the new image waits, valid, in the standby image)",
                            self.cfg.activate_defer.as_secs_f64()
                        ),
                    );
                }
                self.wait =
                    Wait::Until(now + self.cfg.busy_interval.max(Duration::from_millis(500)));
            }
            (Phase::Activate, _) if result.is_some() => {
                if result != Some(ResultCode::Success) {
                    return self.fail(
                        now,
                        format!(
                            "Activate software answered {}",
                            result.unwrap_or(ResultCode::Success)
                        ),
                    );
                }
                self.enter(now, Phase::AwaitReboot);
                self.reboot_deadline = Some(now + self.cfg.reboot_timeout);
                self.wait = Wait::Until(now + self.cfg.reboot_poll);
            }
            (Phase::AwaitReboot, Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a)
                        if a.is_active == Some(true) && a.version == Some(self.image.version()) =>
                    {
                        self.came_back(now)
                    }
                    Some(a) if a.is_valid == Some(true) && a.is_active == Some(false) => {
                        if self.went_down && self.halting.is_some() {
                            return self.halted(now, "the ONU is back on its committed image");
                        }
                        if self.went_down && self.booted_new && self.reactivations < 2 {
                            // It booted the new image, then rebooted before Commit (a power
                            // cut): the bootloader went back to the committed image, as it
                            // must. The new image is still valid: activate it again.
                            self.reactivations += 1;
                            self.booted_new = false;
                            self.went_down = false;
                            self.enter(now, Phase::Activate);
                            return self.activate(now);
                        }
                        if self.went_down {
                            // It went down and came back on the committed image: the new one
                            // did not boot.
                            return self.fail(
                                now,
                                "the ONU came back on its committed image: the new one did not boot"
                                    .into(),
                            );
                        }
                        // Not gone down yet: ask again.
                        self.poll_reboot(now)
                    }
                    other => self.fail(now, format!("after Activate the image reads {other:?}")),
                }
            }
            (Phase::Commit, _) if result.is_some() => {
                if result != Some(ResultCode::Success) {
                    return self.fail(
                        now,
                        format!(
                            "Commit software answered {}",
                            result.unwrap_or(ResultCode::Success)
                        ),
                    );
                }
                self.enter(now, Phase::VerifyCommitted);
                self.get(now, self.target);
            }
            (Phase::VerifyCommitted, Contents::GetResponse(g)) => {
                match software_image(g.result, &g.attributes) {
                    Some(a) if a.is_committed == Some(true) && a.is_active == Some(true) => {
                        self.finish(now, Outcome::Upgraded)
                    }
                    other => self.fail(now, format!("after Commit the image reads {other:?}")),
                }
            }
            _ => {}
        }
    }

    /// Multicast mode: true while the session may still join the group download (it is
    /// finding out where its ONU is, or starting the download).
    pub fn may_join_group(&self) -> bool {
        self.outcome.is_none()
            && self.halting.is_none()
            && matches!(
                self.phase,
                Phase::Survey | Phase::Discover(_) | Phase::Start
            )
    }

    /// True while the ONU's downloads go through the multicast group (false in unicast mode,
    /// and after the session started again on its own).
    pub fn is_multicast(&self) -> bool {
        self.multicast
    }

    /// True when the ONU announced a boot since its download began.
    pub fn rebooted(&self) -> bool {
        self.rebooted
    }

    /// The ONU lost its download (it rebooted: a power cut): start again from the Gets, with
    /// windows of its own (the group has moved on), up to 3 times; then fail with `why`.
    pub fn start_again(&mut self, now: Instant, why: &str) {
        if self.restarts >= 3 {
            return self.fail(now, format!("{why} ({} times)", self.restarts + 1));
        }
        self.restarts += 1;
        self.stats.restarts += 1;
        self.multicast = false;
        self.rebooted = false;
        self.window_tcis = (None, Vec::new());
        self.window_tries = 0;
        self.busy = 0;
        self.drop_queued();
        self.enter(now, Phase::Discover(0));
        self.get(now, 0);
    }

    /// Multicast mode: the window this ONU accepted, once it waits for the group download.
    pub fn accepted_window(&self) -> Option<u16> {
        (self.phase == Phase::Group).then_some(self.window_size)
    }

    /// Multicast mode: Start again with a smaller window, the one the whole group can take.
    pub fn restart(&mut self, now: Instant, window_size: u16) {
        self.window_size = window_size;
        self.enter(now, Phase::Start);
        self.request(
            now,
            self.sw(self.target),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (window_size - 1) as u8,
                image_size: self.image.len() as u32,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    /// Multicast mode: every window reached this ONU; it goes on alone with End.
    pub fn group_done(&mut self, now: Instant) {
        if self.phase == Phase::Group {
            self.enter(now, Phase::End);
            self.end(now);
        }
    }

    /// Multicast mode: the group download gave up on this ONU.
    pub fn group_failed(&mut self, now: Instant, reason: String) {
        self.fail(now, reason);
    }

    /// Counts frames the engine sent to this ONU alone for the group download (repairs).
    pub fn count_repair(&mut self, frames: u64, with_ar: u64, bytes: u64) {
        self.stats.frames += frames;
        self.stats.frames_with_ar += with_ar;
        self.stats.bytes += bytes;
    }

    /// Counts a window the group download sent this ONU again.
    pub fn count_repaired_window(&mut self) {
        self.stats.repaired_windows += 1;
    }

    /// What a Get said of image `instance`; the other image is then neither active nor
    /// committed if this one is (an ONU runs one image and has one committed).
    fn note_image(&mut self, instance: u16, a: SoftwareImageAttributes) {
        let Some(i) = [0u16, 1].iter().position(|n| *n == instance) else {
            return;
        };
        if let Some(other) = &mut self.images[1 - i] {
            if a.is_active == Some(true) {
                other.is_active = Some(false);
            }
            if a.is_committed == Some(true) {
                other.is_committed = Some(false);
            }
        }
        self.images[i] = Some(a);
    }

    fn choose_target(&mut self, now: Instant) {
        let want = self.image.version();
        let [Some(a), Some(b)] = self.images.clone() else {
            return;
        };
        let images = [a, b];
        self.from_version = self.active_version();
        if let Some(why) = self.cfg.abort.clone() {
            self.halting = Some(why);
            if let Some(i) = images
                .iter()
                .position(|img| img.is_active == Some(true) && img.is_committed != Some(true))
            {
                self.target = i as u8;
                return self.revert(now);
            }
            if let Some(i) = images
                .iter()
                .position(|img| img.is_active != Some(true) && img.is_committed != Some(true))
            {
                if images[i].is_valid == Some(true) {
                    // A valid standby image: no download is in progress (Start invalidates it).
                    return self.halted(
                        now,
                        "nothing to abort: the standby image is complete and valid, not active",
                    );
                }
                self.target = i as u8;
                return self.abort(now);
            }
            return self.halted(now, "nothing to abort");
        }
        if let Some(i) = images.iter().position(|img| {
            img.is_active == Some(true)
                && img.is_committed == Some(true)
                && img.version == Some(want)
        }) {
            return self.finish(
                now,
                Outcome::Skipped(format!("already runs the version, committed, in image {i}")),
            );
        }
        // An earlier, interrupted upgrade: the version runs uncommitted (S4, only Commit is
        // missing), or sits valid in the standby image (S3, Activate and Commit are missing).
        if let Some(i) = images.iter().position(|img| {
            img.is_active == Some(true)
                && img.is_committed != Some(true)
                && img.version == Some(want)
        }) {
            self.target = i as u8;
            if self.cfg.survey {
                return self.finish(now, Outcome::Eligible);
            }
            // What the reboot would have led to: the health gate, then Commit.
            self.enter(now, Phase::AwaitReboot);
            return self.came_back(now);
        }
        if let Some(i) = images.iter().position(|img| {
            img.is_active != Some(true)
                && img.is_committed != Some(true)
                && img.is_valid == Some(true)
                && img.version == Some(want)
        }) {
            self.target = i as u8;
            if self.cfg.survey {
                return self.finish(now, Outcome::Eligible);
            }
            self.enter(now, Phase::Activate);
            self.activate_since = Some(now);
            return self.activate(now);
        }
        let standby = images
            .iter()
            .position(|img| img.is_active != Some(true) && img.is_committed != Some(true));
        let Some(target) = standby else {
            return self.fail(
                now,
                "no image is free: one is active and the other committed".into(),
            );
        };
        self.target = target as u8;
        if self.cfg.survey {
            return self.finish(now, Outcome::Eligible);
        }
        self.enter(now, Phase::Start);
        self.request(
            now,
            self.sw(self.target),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (self.window_size - 1) as u8,
                image_size: self.image.len() as u32,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }
}

/// A version (or model) field as text: the bytes up to the first NUL.
fn version_text(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// The Software image attributes of a successful Get response.
fn software_image(result: ResultCode, a: &AttributeValues<'_>) -> Option<SoftwareImageAttributes> {
    match (result, a) {
        (ResultCode::Success, AttributeValues::SoftwareImage(s)) => Some((**s).clone()),
        _ => None,
    }
}

/// Every message a session builds fits its format; a failure here is a bug in this module.
fn unreachable_encode(e: omci_codec::EmitError) -> Vec<u8> {
    panic!("a session built a message its format cannot carry: {e}")
}
