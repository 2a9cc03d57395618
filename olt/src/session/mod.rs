//! One ONU's part in a rollout, as a sans-IO state machine.
//!
//! The standard G.988 procedure, as open OLT stacks run it, one request in flight at a time:
//!
//! 1. Get software images 0 and 1; the target is the image that is neither active nor
//!    committed (an ONU already running the version is skipped).
//! 2. Start software download; the window the ONU answers is adopted (never a larger one).
//! 3. Every window: its sections, AR on the last; the envelope carries the absolute window
//!    number and, on the last section, the window CRC. Success: the next window. Processing
//!    error or silence: the window again. (In multicast mode the engine's group download moves
//!    the windows instead, and hands the session back for End.)
//! 4. End software download; "device busy" is asked again after a pause.
//! 5. Get: the target must be valid, of the new version, not active.
//! 6. Activate; the ONU reboots; Get until it answers with the target active, then the other
//!    image (both are checked against G.988's rules).
//! 7. Commit; Get both images: the target must be committed and active.
//!
//! Every request has a timeout and retries (G.988 leaves them to the OLT; 3 s and 2 retries by
//! default, as open OLT stacks); a session that runs out ends failed, with the reason.
//!
//! ## Reboots
//!
//! Every boot of an ONU announces itself: an attribute value change of the software image it
//! runs, with "is active" set. Whatever the phase, the session knows what such a boot means
//! ([`Phase::on_boot`](self)): during the download, End or its check, the download is lost; after
//! Activate it is the expected reboot (into the new image, or back to the old one); once the
//! new image runs uncommitted, a reboot falls back to the committed one. A lost download does not
//! spend window retries: the session reads both images again and goes on from what the ONU
//! really holds (a download again, Activate again, or just Commit), within a budget of restarts
//! ([`SessionConfig::max_restarts`]) that ends with a clear reason. A window answered
//! "processing error" without this lab's missing-section bitmap means the same (the lab's ONU
//! sends the bitmap whenever it has a download in progress).
//!
//! ## Map
//! - `config`: [`SessionConfig`] and [`OltQuirks`].
//! - `images`: the two images as read, and G.988's rules for them (S1..S4, impossible states).
//! - `flow`: what each answer and each boot means in each phase.
//! - `wind_down`: a halted session (kill switch, abort): abort, roll back, inspect.

mod config;
mod flow;
mod images;
mod wind_down;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use omci_codec::contents::{
    ActivateSoftwareRequest, Contents, DownloadSectionRequest, EndSoftwareDownloadRequest,
    GetRequest, StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::mask;
use omci_codec::{Codec, ExtendedTrailer, MeClass, MeId, Message, OnuId, Tci, WindowNo};

pub use config::{OltQuirks, SessionConfig, Stages};
pub(crate) use images::version_text;

use crate::image::{Cut, UpgradeImage};
use crate::tci;
use images::Images;

/// What a session is for.
#[derive(Clone, Debug)]
pub enum Job {
    /// Read the ONU's model (when one is required) and images, and say whether it needs the
    /// image ([`Outcome::Eligible`]), already runs it, or is of another model.
    Survey {
        /// The image the campaign rolls out.
        image: UpgradeImage,
        /// Only ONUs of this model (ONU2-G equipment ID) are eligible; None: no check.
        model: Option<String>,
        /// Only ONUs with one of these serial numbers (ONU-G, as `LABS0000000A`, in capitals:
        /// compared without regard to case) are eligible; the others are skipped. None: every
        /// serial number.
        serials: Option<std::collections::BTreeSet<String>>,
    },
    /// Download, activate and commit the image.
    Upgrade {
        /// The image.
        image: UpgradeImage,
    },
    /// Only read: the ONU's identity (ONU-G vendor and serial number) and both images, for
    /// `olt status`. Nothing is changed.
    Status,
    /// Only undo: read the images, abort a download into the standby image, and send an ONU
    /// running an uncommitted image back to its committed one (`olt abort`, or a campaign that
    /// was halting when its OLT stopped). Nothing is downloaded.
    Abort {
        /// Why, as reported.
        reason: String,
    },
}

impl Job {
    /// The image the job rolls out (none for an abort).
    pub fn image(&self) -> Option<&UpgradeImage> {
        match self {
            Job::Survey { image, .. } | Job::Upgrade { image } => Some(image),
            Job::Abort { .. } | Job::Status => None,
        }
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
    /// A staged upgrade's download (`olt download`): the image waits, valid, in the standby
    /// image (S3); the ONU still runs its committed one.
    Downloaded(String),
    /// A staged upgrade's activation (`olt activate`, or `olt download --activate-on-success`):
    /// the ONU runs the new image, not committed (S4); a reboot would fall back.
    Activated(String),
    /// A status job read the ONU (its identity and images are in the session).
    Read,
}

/// Who an ONU says it is (ONU-G, G.988 9.1.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Vendor id: four ASCII letters.
    pub vendor: String,
    /// Serial number as operators write it: the vendor id and eight hex digits
    /// (`LABS00000001`, G.984.3 9.2.4.1).
    pub serial: String,
    /// The ONU-G version attribute (the equipment's version; the lab's ONUs give their running
    /// software's), when read: `olt status` reads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
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
    /// Each phase it went through, in order: its name, when it began, how long it lasted.
    pub phases: Vec<PhaseSpan>,
}

/// One phase of a session: its name ("download", "end", "reboot", ...; the session's
/// `phase_name`), when it began and how long it lasted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseSpan {
    /// The phase, in the report's word.
    pub name: &'static str,
    /// When it began.
    pub start: Instant,
    /// How long it lasted.
    pub duration: Duration,
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

/// Where a session is, with what that phase needs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// Get ONU-G vendor id and serial number (every job but an abort).
    Identity,
    /// Get ONU-G version (a status job).
    IdentityVersion,
    /// Get ONU2-G equipment ID (the model).
    Model,
    /// Get software image 0, then 1.
    Discover(u8),
    /// Start software download sent.
    Start,
    /// Unicast: window `w` sent; `tries` repeats so far, `blank` of them answered
    /// "processing error" without the missing-section bitmap.
    Window { w: u32, tries: u16, blank: u16 },
    /// Multicast mode: Start done, the engine's group download moves the windows.
    Group,
    /// End software download sent; `busy` "device busy" answers so far.
    End { busy: u32 },
    /// Get of the target after End.
    VerifyValid,
    /// Activate sent; first sent at `since` (a deferred activation is asked again until
    /// `activate_defer` has passed).
    Activate { since: Instant },
    /// Activate accepted: waiting for the ONU to come back on the new image. `went_down` once
    /// it stopped answering or announced a boot; `booted_new` once a boot announced the new
    /// image active.
    AwaitReboot {
        deadline: Instant,
        went_down: bool,
        booted_new: bool,
    },
    /// The ONU is back on the new image: Get of the other image (both are checked together).
    CameBack,
    /// The health gate's second look, `health_settle` after the ONU came back.
    Confirm,
    /// Healthy, active on the new version, not committed: waits for the campaign.
    Held,
    /// The campaign said commit: one more Get first (the ONU may have left the new image
    /// while held), then Commit.
    Recheck,
    /// Commit sent.
    Commit,
    /// After Commit: Get of the target (0), then of the other image (1).
    VerifyCommitted(u8),
    /// Halting: End download with the abort convention sent.
    Abort,
    /// Halting: Activate of the committed image sent; `answered` once accepted (then Get until
    /// the committed image runs).
    Revert { answered: bool, deadline: Instant },
    /// After a failure or a halt: Get image `image` (0, then 1) to report what the ONU runs,
    /// then end with `outcome`.
    Inspect { image: u8, outcome: Outcome },
    /// Ended.
    Over,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Identity | Phase::IdentityVersion | Phase::Model | Phase::Discover(_) => {
                "discover"
            }
            Phase::Start => "start",
            Phase::Window { .. } | Phase::Group => "download",
            // End answered "device busy" at least once: the ONU is still writing its flash.
            Phase::End { busy: 0 } => "end",
            Phase::End { .. } => "busy",
            Phase::VerifyValid => "verify",
            Phase::Activate { .. } => "activate",
            Phase::AwaitReboot { .. } | Phase::CameBack => "reboot",
            Phase::Commit => "commit",
            Phase::VerifyCommitted(_) => "verify-commit",
            Phase::Confirm | Phase::Recheck => "health",
            Phase::Held => "held",
            Phase::Abort => "abort",
            Phase::Revert { .. } => "rollback",
            Phase::Inspect { .. } => "inspect",
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
    /// Nothing (the session is over, held, or waits for the group download).
    Nothing,
}

/// One ONU's part in a rollout.
#[derive(Debug)]
pub struct Session {
    onu: OnuId,
    job: Job,
    cfg: SessionConfig,
    codec: Codec,
    tci: tci::Counter,
    phase: Phase,
    phase_since: Instant,
    wait: Wait,
    images: Images,
    /// The image the download goes into.
    target: u8,
    /// The window agreed (proposed until Start is answered).
    window_size: u16,
    /// Multicast mode: the windows go to the group, the engine moves them. False in unicast
    /// mode, and once the session goes on alone.
    in_group: bool,
    /// Times the session started again after the ONU lost its download.
    restarts: u32,
    /// Activations sent again after the ONU came back on its committed image.
    reactivations: u32,
    /// The model the ONU said it is (ONU2-G equipment ID).
    model: Option<String>,
    /// Who it said it is (ONU-G), when asked.
    identity: Option<Identity>,
    /// The version the ONU ran when the session began.
    from_version: Option<String>,
    /// The window last sent and its sections' TCIs (reused when it is sent again).
    window_tcis: (Option<u32>, Vec<Tci>),
    /// Halting (kill switch or abort): why. The session winds down instead of going on.
    halting: Option<String>,
    out: VecDeque<Outgoing>,
    /// The window being sent, encoded a section at a time as it leaves (memory stays one
    /// datagram per session whatever the window size): window, next section, and the end of
    /// the sections before the AR section, which waits, encoded, in `out`.
    window_out: Option<(u32, usize, usize)>,
    outcome: Option<Outcome>,
    stats: SessionStats,
}

impl Session {
    /// A session for `onu` doing `job`, starting now with the first Get. With `in_group`
    /// (multicast mode), the session stops after Start ([`Session::accepted_window`]) and the
    /// engine's group download moves the windows, then hands it back ([`Session::group_done`]).
    pub fn new(onu: OnuId, job: Job, cfg: SessionConfig, in_group: bool, now: Instant) -> Session {
        let mut s = Session {
            onu,
            codec: Codec::new(ExtendedTrailer::Crc32),
            tci: tci::Counter::new(tci::SESSION, cfg.tci_seed, u64::from(onu.0)),
            phase: Phase::Discover(0),
            phase_since: now,
            wait: Wait::Nothing,
            images: Images::default(),
            target: 1,
            window_size: cfg.window_size.clamp(1, 256),
            in_group,
            restarts: 0,
            reactivations: 0,
            model: None,
            identity: None,
            from_version: None,
            window_tcis: (None, Vec::new()),
            halting: None,
            out: VecDeque::new(),
            window_out: None,
            outcome: None,
            stats: SessionStats::default(),
            cfg,
            job,
        };
        if let Job::Abort { reason } = &s.job {
            s.halting = Some(reason.clone());
        }
        if matches!(s.job, Job::Abort { .. }) {
            s.get(now, 0);
        } else {
            // Who it is first: the serial number names the ONU in the report (and selects it
            // with --serials), as operators know it.
            s.phase = Phase::Identity;
            s.request(
                now,
                MeId::new(MeClass::ONU_G, 0),
                Contents::GetRequest(GetRequest {
                    // Vendor id and serial number (12 bytes: they fit one baseline Get).
                    attribute_mask: 0xA000,
                }),
            );
        }
        s
    }

    /// The identity read (or not: an ONU without ONU-G still has its images read): a survey
    /// that selects serial numbers skips the others; then the model, when one is required,
    /// else both images.
    pub(super) fn after_identity(&mut self, now: Instant) {
        if let Job::Survey {
            serials: Some(want),
            ..
        } = &self.job
        {
            match self.identity.as_ref().map(|i| i.serial.clone()) {
                Some(sn) if !want.contains(&sn.to_ascii_uppercase()) => {
                    return self.conclude(
                        now,
                        Outcome::Skipped(format!(
                            "not selected: its serial number {sn} is not among --serials"
                        )),
                    );
                }
                Some(_) => {}
                None => {
                    return self.conclude(
                        now,
                        Outcome::Refused(
                            "its serial number could not be read (Get ONU-G), and --serials \
                             selects ONUs by it: nothing was downloaded"
                                .into(),
                        ),
                    );
                }
            }
        }
        if matches!(&self.job, Job::Survey { model: Some(_), .. }) {
            self.enter(now, Phase::Model);
            self.request(
                now,
                MeId::new(MeClass::ONU2_G, 0),
                Contents::GetRequest(GetRequest {
                    attribute_mask: 0x8000,
                }),
            );
        } else {
            self.enter(now, Phase::Discover(0));
            self.get(now, 0);
        }
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

    /// The version the ONU ran when the session began (its active image), once known. A
    /// session that ended before it chose what to do (an ONU refused or skipped before its
    /// images were weighed) changed nothing: the version it runs is the one it ran.
    pub fn from_version(&self) -> Option<String> {
        self.from_version.clone().or_else(|| self.active_version())
    }

    /// The version of the ONU's committed image, as last read with Get.
    pub fn committed_version(&self) -> Option<String> {
        self.images.version_where(|a| a.is_committed == Some(true))
    }

    /// The version of the ONU's active (running) image, as last read with Get.
    pub fn active_version(&self) -> Option<String> {
        self.images.version_where(|a| a.is_active == Some(true))
    }

    /// The model the ONU said it is (ONU2-G equipment ID), when asked.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Who the ONU said it is (ONU-G), when asked.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Image `i` (0 or 1) as last read: version, committed, active, valid.
    pub fn image_attributes(&self, i: u8) -> Option<&omci_codec::SoftwareImageAttributes> {
        self.images.get(i)
    }

    /// True while the session holds before Commit (the campaign's health gate passed).
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held
    }

    /// True once the session was told to halt (it may still be winding down).
    pub fn is_halting(&self) -> bool {
        self.halting.is_some()
    }

    /// Multicast mode: true while the session may still join the group download (it is
    /// finding out where its ONU is, or starting the download).
    pub fn may_join_group(&self) -> bool {
        self.in_group
            && self.outcome.is_none()
            && self.halting.is_none()
            && matches!(self.phase, Phase::Model | Phase::Discover(_) | Phase::Start)
    }

    /// How far the image has reached this ONU, in windows: (held, of). None while the group
    /// download moves its windows (the engine knows), or for a job with nothing to download.
    pub fn windows_held(&self) -> Option<(u32, u32)> {
        let cut = self.cut()?;
        let of = cut.windowing.windows();
        Some(match &self.phase {
            Phase::Group => return None,
            Phase::Window { w, .. } => (*w, of),
            Phase::Identity
            | Phase::IdentityVersion
            | Phase::Model
            | Phase::Discover(_)
            | Phase::Start => (0, of),
            // Past the download (or over: nothing more will be sent to it).
            _ => (of, of),
        })
    }

    /// The windows the image is cut into for this ONU (None for a job with nothing to send).
    pub fn windows_held_of(&self) -> Option<u32> {
        self.cut().map(|c| c.windowing.windows())
    }

    /// Multicast mode: the window this ONU accepted, while it waits for the group download.
    pub fn accepted_window(&self) -> Option<u16> {
        (self.phase == Phase::Group).then_some(self.window_size)
    }

    /// The next datagram to send. `now` is when it leaves: the wait for its answer starts
    /// then (a paced OLT may hold a datagram back for a while).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Outgoing> {
        if let Some((w, n, end)) = self.window_out {
            self.window_out = (n + 1 < end).then_some((w, n + 1, end));
            if let Some(o) = self.section_out(w, n) {
                return Some(o);
            }
        }
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
        self.window_out.is_some() || self.out.front().is_some_and(|o| o.section)
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.wait {
            // The wait for an answer starts when the request leaves (pacing may hold it).
            Wait::Response { .. } if self.queued() => None,
            Wait::Response { deadline, .. } => Some(*deadline),
            Wait::Until(at) => Some(*at),
            Wait::Nothing => None,
        }
    }

    /// Multicast mode: Start again with a smaller window, the one the whole group can take.
    pub fn restart(&mut self, now: Instant, window_size: u16) {
        self.window_size = window_size.clamp(1, 256);
        self.start(now);
    }

    /// Multicast mode: every window reached this ONU; it goes on alone with End.
    pub fn group_done(&mut self, now: Instant) {
        if self.phase == Phase::Group {
            self.enter(now, Phase::End { busy: 0 });
            self.end(now);
        }
    }

    /// Multicast mode: the group download gave up on this ONU.
    pub fn group_failed(&mut self, now: Instant, reason: String) {
        if self.phase == Phase::Group {
            self.fail(now, reason);
        }
    }

    /// Multicast mode: the group download is under way without this ONU (it started late,
    /// or again after a reboot): its windows go to it alone, from the first.
    pub fn go_alone(&mut self, now: Instant) {
        self.in_group = false;
        if self.phase == Phase::Group {
            self.enter(
                now,
                Phase::Window {
                    w: 0,
                    tries: 0,
                    blank: 0,
                },
            );
            self.send_window(now, 0);
        }
    }

    /// Multicast mode: the ONU answered a group window "processing error" without the
    /// missing-section bitmap: it has no download in progress (it rebooted), so it starts again.
    pub fn download_lost(&mut self, now: Instant) {
        if self.phase == Phase::Group {
            self.start_again(now, "the ONU lost its download (it has none in progress)");
        }
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

    /// The campaign's gate passed: Commit, once a last Get shows the ONU still runs the new
    /// image (it may have rebooted back to its committed one while held; committing an image
    /// that is not running would make the ONU boot it untried).
    pub fn commit(&mut self, now: Instant) {
        if self.phase == Phase::Held {
            self.enter(now, Phase::Recheck);
            self.get(now, self.target);
        }
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.wait, Wait::Response { .. }) && self.queued() {
            return; // not sent yet: nothing to time out
        }
        match self.wait.clone() {
            Wait::Until(at) if now >= at => self.wake(now),
            Wait::Response {
                tci,
                deadline,
                tries,
                resend,
            } if now >= deadline => {
                self.stats.timeouts += 1;
                if matches!(
                    self.phase,
                    Phase::AwaitReboot { .. } | Phase::Revert { answered: true, .. }
                ) {
                    // A rebooting ONU is silent: keep asking until the reboot deadline.
                    if let Phase::AwaitReboot { went_down, .. } = &mut self.phase {
                        *went_down = true;
                    }
                    return self.poll_reboot(now);
                }
                if tries >= self.cfg.retries {
                    return self.gave_up(now);
                }
                self.stats.retries += 1;
                self.stats.frames += 1;
                self.stats.bytes += resend.len() as u64;
                let window = matches!(self.phase, Phase::Window { .. });
                self.out.push_back(Outgoing {
                    onu: self.onu,
                    datagram: resend.clone(),
                    section: window,
                    ar: window,
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

    // ----------------------------------------------------------------------------------------
    // Plumbing

    fn sw(&self, image: u8) -> MeId {
        MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(image))
    }

    /// The image being rolled out (an abort has none, and never asks).
    fn image(&self) -> Option<&UpgradeImage> {
        self.job.image()
    }

    fn enter(&mut self, now: Instant, phase: Phase) {
        // A span per phase name: Get of image 0 then 1 is one "discover", End's busy answers
        // one "busy".
        if phase.name() != self.phase.name() {
            self.stats.phases.push(PhaseSpan {
                name: self.phase.name(),
                start: self.phase_since,
                duration: now - self.phase_since,
            });
            self.phase_since = now;
        }
        self.phase = phase;
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.enter(now, Phase::Over);
        self.wait = Wait::Nothing;
        self.clear_out();
        self.outcome = Some(outcome);
    }

    fn fail(&mut self, now: Instant, reason: String) {
        self.conclude(now, Outcome::Failed(reason));
    }

    /// Ends with `outcome` after reading both images once more (what the ONU runs now goes in
    /// the report), unless the ONU has stopped answering.
    fn conclude(&mut self, now: Instant, outcome: Outcome) {
        let silent = matches!(&outcome, Outcome::Failed(why) if why.starts_with("no answer"));
        if silent || matches!(self.phase, Phase::Inspect { .. }) {
            return self.finish(now, outcome);
        }
        self.enter(now, Phase::Inspect { image: 0, outcome });
        self.get(now, 0);
    }

    fn push(&mut self, envelope: Envelope, msg: &Message<'_>) -> Vec<u8> {
        let datagram = self.encode(envelope, msg);
        self.out.push_back(Outgoing {
            onu: self.onu,
            datagram: datagram.clone(),
            section: matches!(msg.contents, Contents::DownloadSectionRequest(_)),
            ar: msg.ar,
        });
        datagram
    }

    /// `msg` in `envelope`, counted as sent.
    fn encode(&mut self, envelope: Envelope, msg: &Message<'_>) -> Vec<u8> {
        let frame = match self.codec.to_vec(msg) {
            Ok(f) => f,
            Err(e) => unreachable_encode(e),
        };
        let datagram = envelope.wrap(&frame);
        self.stats.frames += 1;
        self.stats.frames_with_ar += u64::from(msg.ar);
        self.stats.bytes += datagram.len() as u64;
        datagram
    }

    /// True while something waits to be sent.
    fn queued(&self) -> bool {
        self.window_out.is_some() || !self.out.is_empty()
    }

    /// Forgets what waits to be sent.
    fn clear_out(&mut self) {
        self.out.clear();
        self.window_out = None;
    }

    /// Section `n` of window `w` (not its last) as it leaves.
    fn section_out(&mut self, w: u32, n: usize) -> Option<Outgoing> {
        let (envelope, msg) = self.section_message(w, n)?;
        let datagram = self.encode(envelope, &msg);
        Some(Outgoing {
            onu: self.onu,
            datagram,
            section: true,
            ar: msg.ar,
        })
    }

    /// Section `n` of window `w`, with AR on the window's last, and its envelope.
    fn section_message(&self, w: u32, n: usize) -> Option<(Envelope, Message<'static>)> {
        let (cut, image) = (self.cut()?, self.image()?);
        let sections = image.sections_in(cut, w);
        let ar = n + 1 == sections;
        let tci = *self.window_tcis.1.get(n)?;
        let msg = Message::new(
            tci,
            self.cfg.format,
            self.sw(self.target),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n as u8,
                data: Cow::Owned(image.section(cut, w, n)),
            }),
        )
        .with_ar(ar || self.cfg.quirks.ar_on_every_section);
        let ext = self.cfg.envelope_extensions;
        let envelope = Envelope {
            window_no: ext.then_some(WindowNo(w)),
            window_crc: (ext && ar).then(|| image.window_crc(cut, w)),
            ..Envelope::omcc(self.onu)
        };
        Some((envelope, msg))
    }

    /// Sends a request and waits for its response.
    fn request(&mut self, now: Instant, me: MeId, contents: Contents<'_>) {
        let tci = self.tci.next_tci();
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

    /// Start software download into the target, with the window proposed (or agreed).
    fn start(&mut self, now: Instant) {
        let size = self.image().map_or(0, |i| i.len() as u32);
        self.enter(now, Phase::Start);
        self.request(
            now,
            self.sw(self.target),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (self.window_size - 1) as u8,
                image_size: size,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    fn cut(&self) -> Option<Cut> {
        let image = self.image()?;
        Some(image.cut(
            self.cfg.format,
            self.window_size,
            self.cfg.extended_section_len,
        ))
    }

    /// Sends window `w`: its sections, AR on the last, which carries the window CRC. A repeat
    /// of the window (`w` the window last sent) reuses its TCIs: a retransmission in G.988's
    /// sense, so that an ONU counting windows itself (no window number in the envelope) puts
    /// the sections where they belong even if it had acknowledged the window already.
    fn send_window(&mut self, now: Instant, w: u32) {
        let (Some(cut), Some(image)) = (self.cut(), self.image().cloned()) else {
            return;
        };
        let sections = image.sections_in(cut, w);
        self.drop_queued();
        let repeat = self.window_tcis.0 == Some(w) && self.window_tcis.1.len() == sections;
        if !repeat {
            let tcis = (0..sections).map(|_| self.tci.next_tci()).collect();
            self.window_tcis = (Some(w), tcis);
        }
        // The sections before the last are encoded as they leave; the AR section now, for
        // its retransmission.
        self.window_out = (sections > 1).then_some((w, 0, sections - 1));
        let Some((envelope, msg)) = self.section_message(w, sections.saturating_sub(1)) else {
            return;
        };
        let ar_tci = msg.tci;
        let ar_datagram = self.push(envelope, &msg);
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
        let Some(image) = self.image() else {
            return;
        };
        let (crc, size) = (image.crc, image.len() as u32);
        self.request(
            now,
            self.sw(self.target),
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc: crc ^ u32::from(self.cfg.quirks.wrong_end_crc),
                image_size: size,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    /// Forgets datagrams still queued (a window about to be sent again makes them stale); the
    /// counters count what was sent, so they are taken back.
    fn drop_queued(&mut self) {
        self.window_out = None;
        for o in self.out.drain(..) {
            self.stats.frames -= 1;
            self.stats.bytes -= o.datagram.len() as u64;
            self.stats.frames_with_ar -= u64::from(o.ar);
        }
    }
}

/// Every message a session builds fits its format; a failure here is a bug in this module.
fn unreachable_encode(e: omci_codec::EmitError) -> Vec<u8> {
    panic!("a session built a message its format cannot carry: {e}")
}
