//! A campaign: one image rolled out to a PON in waves, with a health gate and a kill switch,
//! journaled so that a restarted OLT carries on where it stopped.
//!
//! Sans-IO like the engine it drives: datagrams and time in, datagrams out, the next deadline;
//! plus a [`Journal`] to store whenever [`Campaign::take_journal`] has a new one.
//!
//! The stages:
//!
//! 1. **Survey** (when the campaign names a model or has a canary wave): every ONU is asked
//!    its model (ONU2-G equipment ID) and its two images. An ONU of another model is
//!    **refused** before anything is downloaded; one already running the version, committed,
//!    is **skipped**; the others are eligible.
//! 2. **Waves**: the canary wave (the first `canary_percent` of the eligible ONUs, by ONU-ID,
//!    at least one), then the rest. A wave is a whole download run by the engine ([`Olt`]),
//!    unicast or multicast. With the **health gate**, each ONU of a wave holds after its
//!    reboot until it has shown that it is back, active on the new version, and still so
//!    `health_settle` later; once every ONU of the wave has passed or failed, the passed ones
//!    are committed together.
//!    With **delta packages** (docs/multicast.md, "Per-base grouping"), a wave runs in legs:
//!    first, for each delta package, the wave's ONUs whose committed and active version is
//!    the package's base, in one download of that package (one multicast group per base);
//!    then one download of the full image for the ONUs on a base without a delta and for
//!    every ONU that refused its delta (the fallback). An ONU's delta failure is not a
//!    failure of the campaign until the full image has failed too.
//! 3. **Kill switch**: as soon as the failed share of the current wave exceeds the threshold,
//!    the campaign halts: the wave's downloads are aborted, its ONUs that run the new image
//!    uncommitted are sent back to their committed image, and no further wave starts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use omci_codec::OnuId;

use crate::engine::{Mode, MulticastConfig, Olt, PonCounters, Transmit};
use crate::image::UpgradeImage;
use crate::journal::{Journal, JournalOnu, JournalStage};
use crate::report::{OnuResult, WindowSample, reason};
use crate::session::{Job, Outcome, SessionConfig, SessionStats};

mod legs;

use legs::Leg;
pub use legs::{DeltaPolicy, Package};

/// What a campaign does beyond one plain rollout.
#[derive(Clone, Debug)]
pub struct CampaignPlan {
    /// Only ONUs of this model are upgraded; the others are refused before any download.
    pub model: Option<String>,
    /// The canary wave's share of the eligible ONUs, in percent; 0 or 100: a single wave.
    pub canary_percent: u8,
    /// The kill switch: the campaign halts when more than this share (0.0..=1.0) of the
    /// current wave's ONUs has failed. 1.0: never.
    pub kill_threshold: f64,
    /// The health gate: ONUs hold before Commit until their whole wave has been through
    /// activation (and the kill switch has had its say).
    pub gate: bool,
    /// The gate's second look at an ONU back on the new image, this long after.
    pub health_settle: Duration,
    /// A cap on Download sections per second.
    pub pace: Option<u32>,
    /// Only ONUs with one of these serial numbers are upgraded; the others are skipped before
    /// any download. None: every ONU.
    pub serials: Option<std::collections::BTreeSet<String>>,
    /// When a wave's ONUs get their base's delta package.
    pub delta_policy: DeltaPolicy,
}

impl CampaignPlan {
    /// A plain rollout: every ONU in one wave, no model check, no gate, no kill switch.
    pub fn rollout() -> CampaignPlan {
        CampaignPlan {
            model: None,
            canary_percent: 0,
            kill_threshold: 1.0,
            gate: false,
            health_settle: Duration::ZERO,
            pace: None,
            serials: None,
            delta_policy: DeltaPolicy::PerBase,
        }
    }
}

/// Everything a campaign is made of but its ONUs: the image and how to roll it out.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The image.
    pub image: UpgradeImage,
    /// Delta packages to the image's version, each from one base version (at most one per
    /// base); ONUs on a base without one get the full image.
    pub deltas: Vec<UpgradeImage>,
    /// Hex SHA-256 of the image file (the journal names the image by it).
    pub image_sha256: String,
    /// How the windows travel.
    pub mode: Mode,
    /// Per-ONU timeouts, retries, window.
    pub session: SessionConfig,
    /// The group download's settings.
    pub multicast: MulticastConfig,
    /// Waves, gate, kill switch, pacing.
    pub plan: CampaignPlan,
}

/// Where a campaign is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Reading every ONU's model and images.
    Survey,
    /// Running wave `n` (0 is the canary wave when there are two).
    Wave(usize),
    /// The kill switch or an abort stopped wave `n`; the campaign winds it down.
    Halting(usize, String),
    /// Stopped for the reason given; no further wave starts.
    Halted(String),
    /// Every wave has run.
    Completed,
}

/// One ONU's part in the campaign.
#[derive(Clone, Debug, Default)]
pub struct OnuRecord {
    /// The wave it is in (None: not eligible, or not surveyed yet).
    pub wave: Option<usize>,
    /// How its upgrade ended; None while it runs or if its wave never started.
    pub outcome: Option<Outcome>,
    /// Its model, as it said.
    pub model: Option<String>,
    /// Its serial number (ONU-G), as it said.
    pub serial: Option<String>,
    /// The version it ran before the campaign.
    pub from_version: Option<String>,
    /// Its committed image's version, as last read.
    pub committed_version: Option<String>,
    /// Its active image's version, as last read.
    pub active_version: Option<String>,
    /// What the OLT sent it and how it went, over every stage.
    pub stats: SessionStats,
    /// The package it was last sent (None: nothing was downloaded to it).
    pub package: Option<Package>,
    /// It refused its delta package and was sent the full image.
    pub fell_back: bool,
}

/// The bytes of the packages a campaign sent, against what it would have sent without deltas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PackageBytes {
    /// Bytes of the packages sent: once per multicast download, once per ONU in unicast.
    pub sent: u64,
    /// What the campaign would have sent without its delta packages: the full image once per
    /// wave in multicast (one group download reaches every ONU of the wave), once per ONU in
    /// unicast. In multicast, a wave that needs the full image for some of its ONUs sends
    /// more than this, not less: its deltas save bytes only when they replace the full image
    /// for every ONU of the wave.
    pub full_image_cost: u64,
}

/// A campaign over one PON.
#[derive(Debug)]
pub struct Campaign {
    /// The image rolled out (none for an abort-only campaign, `olt abort`).
    image: Option<UpgradeImage>,
    /// The delta packages to the image's version.
    deltas: Vec<UpgradeImage>,
    /// The current wave's downloads, and which one runs.
    legs: Vec<Leg>,
    leg: usize,
    /// Package bytes sent, against what the campaign would have sent without deltas.
    package_bytes: PackageBytes,
    image_sha256: String,
    mode: Mode,
    cfg: SessionConfig,
    mcfg: MulticastConfig,
    plan: CampaignPlan,
    stage: Stage,
    /// The engine of the current stage (survey or wave).
    olt: Olt,
    waves: Vec<Vec<OnuId>>,
    records: BTreeMap<OnuId, OnuRecord>,
    /// Counters of the stages already over.
    past: PonCounters,
    /// Windows delivered and to deliver in the stages already over.
    past_delivered: (u64, u64),
    /// When the campaign began: the report's times count from here.
    origin: Instant,
    /// The image's delivery over time, for the report's picture.
    windows: WindowLog,
    journal_dirty: bool,
}

/// The image's delivery sampled over a campaign: at most [`WindowLog::MAX`] samples, at most
/// one per `every` (which doubles, keeping every other sample, each time the log fills), so
/// that a long rollout costs no more than a short one.
#[derive(Clone, Debug)]
struct WindowLog {
    every: Duration,
    last: Option<Instant>,
    samples: Vec<WindowSample>,
}

impl WindowLog {
    const MAX: usize = 512;

    fn new() -> WindowLog {
        WindowLog {
            every: Duration::from_millis(50),
            last: None,
            samples: Vec::new(),
        }
    }

    /// Whether a sample is due at `now` (`force`: whatever the time, as at the end).
    fn due(&self, now: Instant, force: bool) -> bool {
        force
            || self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= self.every)
    }

    fn push(&mut self, now: Instant, sample: WindowSample) {
        if self.samples.last().is_some_and(|l| l.same_counts(&sample)) {
            return;
        }
        self.last = Some(now);
        if self.samples.len() >= Self::MAX {
            let kept: Vec<WindowSample> = self.samples.iter().step_by(2).cloned().collect();
            self.samples = kept;
            self.every *= 2;
        }
        self.samples.push(sample);
    }
}

impl Campaign {
    /// A campaign of `setup` over `onus` at `stage`, with no engine running yet.
    fn blank(setup: &Setup, onus: &[OnuId], stage: Stage, now: Instant) -> Campaign {
        Campaign {
            image: Some(setup.image.clone()),
            deltas: setup.deltas.clone(),
            legs: Vec::new(),
            leg: 0,
            package_bytes: PackageBytes::default(),
            image_sha256: setup.image_sha256.clone(),
            mode: setup.mode,
            cfg: setup.session.clone(),
            mcfg: setup.multicast.clone(),
            plan: setup.plan.clone(),
            stage,
            olt: Olt::new(
                &Job::Upgrade {
                    image: setup.image.clone(),
                },
                &[],
                setup.mode,
                &setup.session,
                &setup.multicast,
                now,
            ),
            waves: Vec::new(),
            records: onus.iter().map(|id| (*id, OnuRecord::default())).collect(),
            past: PonCounters::default(),
            past_delivered: (0, 0),
            origin: now,
            windows: WindowLog::new(),
            journal_dirty: true,
        }
    }

    /// A new campaign over `onus`, starting at `now`.
    pub fn new(setup: &Setup, onus: &[OnuId], now: Instant) -> Campaign {
        let mut c = Campaign::blank(setup, onus, Stage::Survey, now);
        let plan = &setup.plan;
        let single = !(1..100).contains(&plan.canary_percent);
        // Deltas need the survey: each ONU's base decides its package.
        if plan.model.is_none() && plan.serials.is_none() && single && setup.deltas.is_empty() {
            // Nothing to learn first: one wave of everyone (each session skips on its own).
            c.waves = vec![onus.to_vec()];
            c.start_wave(0, now);
        } else {
            let survey = Job::Survey {
                image: setup.image.clone(),
                model: plan.model.clone(),
                serials: plan.serials.clone(),
            };
            c.olt = Olt::new(
                &survey,
                onus,
                setup.mode,
                &setup.session,
                &setup.multicast,
                now,
            );
        }
        c.advance(now);
        c
    }

    /// An abort of whatever is half done on `onus` (`olt abort`, after an OLT died mid-upgrade):
    /// each ONU's images are read, a download into the standby image is aborted, an ONU running
    /// an uncommitted image is sent back to its committed one. Nothing is downloaded.
    pub fn abort_only(onus: &[OnuId], cfg: &SessionConfig, reason: &str, now: Instant) -> Campaign {
        let job = Job::Abort {
            reason: reason.to_string(),
        };
        Campaign::one_job(job, Stage::Halting(0, reason.to_string()), onus, cfg, now)
    }

    /// A read of every ONU's identity and images (`olt status`): nothing is changed.
    pub fn status_only(onus: &[OnuId], cfg: &SessionConfig, now: Instant) -> Campaign {
        Campaign::one_job(Job::Status, Stage::Wave(0), onus, cfg, now)
    }

    /// A campaign of one engine running `job` (no image) on `onus`, in `stage`.
    fn one_job(
        job: Job,
        stage: Stage,
        onus: &[OnuId],
        cfg: &SessionConfig,
        now: Instant,
    ) -> Campaign {
        let mut c = Campaign {
            image: None,
            deltas: Vec::new(),
            legs: Vec::new(),
            leg: 0,
            package_bytes: PackageBytes::default(),
            image_sha256: String::new(),
            mode: Mode::Unicast,
            cfg: cfg.clone(),
            mcfg: MulticastConfig::default(),
            plan: CampaignPlan::rollout(),
            stage,
            olt: Olt::new(
                &job,
                onus,
                Mode::Unicast,
                cfg,
                &MulticastConfig::default(),
                now,
            ),
            waves: vec![onus.to_vec()],
            records: onus.iter().map(|id| (*id, OnuRecord::default())).collect(),
            past: PonCounters::default(),
            past_delivered: (0, 0),
            origin: now,
            windows: WindowLog::new(),
            journal_dirty: false,
        };
        c.advance(now);
        c
    }

    /// Carries on the campaign `journal` recorded (same image, same ONUs): ONUs with a final
    /// result keep it and are not touched again; the wave that was running runs again for its
    /// other ONUs (an ONU left running the new image uncommitted is only gated and committed);
    /// a halted or completed campaign stays so. With `retry_failed`, the ONUs the journal
    /// records as failed are tried again (an operator's retry after a transient fault): the
    /// campaign carries on from the first wave that holds one. Committed ONUs are never touched
    /// again.
    pub fn resume(
        journal: &Journal,
        setup: &Setup,
        onus: &[OnuId],
        retry_failed: bool,
        now: Instant,
    ) -> Campaign {
        if journal.stage == JournalStage::Survey
            || (journal.stage == JournalStage::Wave && journal.waves.is_empty())
        {
            return Campaign::new(setup, onus, now);
        }
        // A halted campaign stays halted: its kill switch (or an abort) said no more.
        let retry_failed =
            retry_failed && !matches!(journal.stage, JournalStage::Halted | JournalStage::Halting);
        let mut c = Campaign::blank(setup, onus, Stage::Completed, now);
        c.waves = journal
            .waves
            .iter()
            .map(|w| w.iter().map(|id| OnuId(*id)).collect())
            .collect();
        for (id, j) in &journal.onus {
            let Some(r) = c.records.get_mut(&OnuId(*id)) else {
                continue;
            };
            r.wave = j.wave;
            r.serial = j.serial.clone();
            r.from_version = j.from_version.clone();
            r.committed_version = j.committed_version.clone();
            r.active_version = j.active_version.clone();
            let why = format!("{} (from the journal)", j.reason);
            r.outcome = match j.result {
                OnuResult::Upgraded => Some(Outcome::Upgraded),
                OnuResult::Skipped => Some(Outcome::Skipped(why)),
                OnuResult::Refused => Some(Outcome::Refused(why)),
                OnuResult::Failed if retry_failed => None,
                OnuResult::Failed => Some(Outcome::Failed(why)),
                OnuResult::Halted => Some(Outcome::Halted(why)),
                OnuResult::Downloaded => Some(Outcome::Downloaded(why)),
                OnuResult::Activated => Some(Outcome::Activated(why)),
                OnuResult::Read => Some(Outcome::Read),
                OnuResult::Untouched | OnuResult::Unfinished | OnuResult::Pending => None,
            };
        }
        let why = journal.halt_reason.clone().unwrap_or_default();
        // The first wave holding an ONU to try again (with `retry_failed`).
        let retry = journal
            .onus
            .values()
            .filter(|j| retry_failed && j.result == OnuResult::Failed)
            .filter_map(|j| j.wave)
            .min();
        match journal.stage {
            JournalStage::Halted => c.stage = Stage::Halted(why),
            // Stopped while winding down: finish winding down (nothing to undo after a survey).
            JournalStage::Halting if c.waves.is_empty() => c.stage = Stage::Halted(why),
            JournalStage::Halting => c.start_winding_down(journal.wave, why, now),
            JournalStage::Completed => match retry {
                Some(w) => c.start_wave(w, now),
                None => c.stage = Stage::Completed,
            },
            JournalStage::Survey | JournalStage::Wave => {
                c.start_wave(retry.map_or(journal.wave, |w| w.min(journal.wave)), now)
            }
        }
        c.advance(now);
        c
    }

    /// Wave `n` was being halted when the OLT stopped: its ONUs without a final result get
    /// abort sessions (read the images; abort a download, roll back an uncommitted image).
    fn start_winding_down(&mut self, n: usize, why: String, now: Instant) {
        let ids: Vec<OnuId> = self
            .waves
            .get(n)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.records.get(id).is_some_and(|r| r.outcome.is_none()))
            .collect();
        let job = Job::Abort {
            reason: why.clone(),
        };
        self.fold_counters();
        self.olt = Olt::new(&job, &ids, self.mode, &self.cfg, &self.mcfg, now);
        self.stage = Stage::Halting(n, why);
        self.journal_dirty = true;
    }

    /// A datagram from the PON, from the address of ONU `from` (None: no ONU's address).
    pub fn handle_datagram(&mut self, now: Instant, from: Option<OnuId>, datagram: &[u8]) {
        self.olt.handle_datagram(now, from, datagram);
        self.advance(now);
        self.sample(now, self.finished());
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.olt.handle_timeout(now);
        self.advance(now);
        self.sample(now, self.finished());
    }

    /// When the campaign began: the report's times count from here.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The image's delivery over time (at most a few hundred samples), the last one as the
    /// campaign stands now.
    pub fn window_samples(&self) -> &[WindowSample] {
        &self.windows.samples
    }

    /// The image's delivery as it stands at `now`: windows the ONUs hold of those to deliver
    /// (every stage so far), windows sent to the group, repairs.
    pub fn window_sample(&self, now: Instant) -> WindowSample {
        let (held, of) = self.olt.delivered();
        let (sent, windows) = self.olt.group_windows();
        let unicast_repairs: u64 = self
            .records
            .values()
            .map(|r| r.stats.repaired_windows)
            .chain(self.olt.sessions().map(|s| s.stats().repaired_windows))
            .sum();
        WindowSample {
            t_s: now.saturating_duration_since(self.origin).as_secs_f64(),
            held: self.past_delivered.0 + held,
            of: self.past_delivered.1 + of,
            group_sent: sent,
            group_windows: windows,
            repairs: unicast_repairs + self.counters().remulticast_windows,
        }
    }

    fn sample(&mut self, now: Instant, force: bool) {
        if self.windows.due(now, force) {
            let s = self.window_sample(now);
            self.windows.push(now, s);
        }
    }

    /// The next datagram to send at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.olt.poll_transmit(now)
    }

    /// When [`Campaign::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.olt.poll_timeout()
    }

    /// True once the campaign has completed or halted.
    pub fn finished(&self) -> bool {
        matches!(self.stage, Stage::Completed | Stage::Halted(_))
    }

    /// Where the campaign is.
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The waves (empty until the survey is over).
    pub fn waves(&self) -> &[Vec<OnuId>] {
        &self.waves
    }

    /// The image rolled out (none for an abort).
    pub fn image(&self) -> Option<&UpgradeImage> {
        self.image.as_ref()
    }

    /// The delta packages the campaign carries.
    pub fn deltas(&self) -> &[UpgradeImage] {
        &self.deltas
    }

    /// Bytes of the packages sent so far, against what the campaign would have sent without
    /// deltas.
    pub fn package_bytes(&self) -> PackageBytes {
        self.package_bytes
    }

    /// The engine of the current stage (its sessions show who is where).
    pub fn olt(&self) -> &Olt {
        &self.olt
    }

    /// Every ONU's part so far.
    pub fn records(&self) -> &BTreeMap<OnuId, OnuRecord> {
        &self.records
    }

    /// Counters over every stage.
    pub fn counters(&self) -> PonCounters {
        self.past.plus(self.olt.counters())
    }

    /// Stops the campaign (an operator's abort): like the kill switch, the current wave winds
    /// down to the committed images and no further wave starts.
    pub fn abort(&mut self, now: Instant, reason: &str) {
        match self.stage.clone() {
            Stage::Survey => {
                self.olt.halt(now, reason);
                self.stage = Stage::Halting(0, reason.to_string());
            }
            Stage::Wave(n) => {
                self.olt.halt(now, reason);
                self.stage = Stage::Halting(n, reason.to_string());
            }
            _ => {}
        }
        self.journal_dirty = true;
        self.advance(now);
    }

    /// The journal, when it changed since last taken.
    pub fn take_journal(&mut self) -> Option<Journal> {
        if !std::mem::take(&mut self.journal_dirty) {
            return None;
        }
        self.journal()
    }

    /// The journal as it stands (none for an abort-only campaign, which has nothing to
    /// resume).
    pub fn journal(&self) -> Option<Journal> {
        let image = self.image.as_ref()?;
        let (stage, wave, halt_reason) = match &self.stage {
            Stage::Survey => (JournalStage::Survey, 0, None),
            Stage::Wave(n) => (JournalStage::Wave, *n, None),
            Stage::Halting(n, why) => (JournalStage::Halting, *n, Some(why.clone())),
            Stage::Halted(r) => (JournalStage::Halted, self.current_wave(), Some(r.clone())),
            Stage::Completed => (
                JournalStage::Completed,
                self.waves.len().saturating_sub(1),
                None,
            ),
        };
        Some(Journal {
            format: Journal::FORMAT,
            image_sha256: self.image_sha256.clone(),
            image_version: image.header.version.clone(),
            stage,
            wave,
            halt_reason,
            waves: self
                .waves
                .iter()
                .map(|w| w.iter().map(|id| id.0).collect())
                .collect(),
            onus: self
                .records
                .iter()
                .map(|(id, r)| {
                    (
                        id.0,
                        JournalOnu {
                            result: OnuResult::of(r.outcome.as_ref()),
                            reason: reason(r.outcome.as_ref()),
                            wave: r.wave,
                            serial: r.serial.clone(),
                            from_version: r.from_version.clone(),
                            committed_version: r.committed_version.clone(),
                            active_version: r.active_version.clone(),
                        },
                    )
                })
                .collect(),
        })
    }

    fn current_wave(&self) -> usize {
        self.records
            .values()
            .filter(|r| r.outcome.is_some())
            .filter_map(|r| r.wave)
            .max()
            .unwrap_or(0)
    }

    fn start_wave(&mut self, n: usize, now: Instant) {
        let (Some(wave), Some(full_len)) = (
            self.waves.get(n),
            self.image.as_ref().map(|i| i.len() as u64),
        ) else {
            self.stage = Stage::Completed;
            self.journal_dirty = true;
            return;
        };
        // ONUs with a final result (from the journal) are not touched again.
        let ids: Vec<OnuId> = wave
            .iter()
            .copied()
            .filter(|id| self.records.get(id).is_some_and(|r| r.outcome.is_none()))
            .collect();
        for id in wave {
            if let Some(r) = self.records.get_mut(id) {
                r.wave = Some(n);
            }
        }
        // Without deltas, the wave would have been one download of the full image.
        self.package_bytes.full_image_cost += full_len
            * match self.mode {
                Mode::Unicast => ids.len() as u64,
                _ => u64::from(!ids.is_empty()),
            };
        // Per base: the ONUs whose committed and active image is the delta's base.
        let records = &self.records;
        self.legs = legs::plan(
            ids,
            |id| {
                let r = records.get(&id)?;
                match (&r.committed_version, &r.active_version) {
                    (Some(c), Some(a)) if c == a => Some(c.as_str()),
                    _ => None,
                }
            },
            &self.deltas,
            full_len,
            self.plan.delta_policy,
            self.mode,
        );
        self.leg = 0;
        self.stage = Stage::Wave(n);
        self.start_leg(now);
    }

    /// Starts the current leg of the current wave: its package to its ONUs.
    fn start_leg(&mut self, now: Instant) {
        let (Some(leg), Some(full)) = (self.legs.get(self.leg).cloned(), self.image.clone()) else {
            return;
        };
        let image = match leg.delta {
            Some(i) => self.deltas[i].clone(),
            None => full.clone(),
        };
        let package = match leg.delta.and_then(|i| self.deltas[i].delta.as_ref()) {
            Some(h) => Package::Delta {
                base: h.base_version.clone(),
            },
            None => Package::Full,
        };
        for id in &leg.onus {
            if let Some(r) = self.records.get_mut(id) {
                r.package = Some(package.clone());
            }
        }
        let copies = match self.mode {
            Mode::Unicast => leg.onus.len() as u64,
            _ => u64::from(!leg.onus.is_empty()),
        };
        self.package_bytes.sent += image.len() as u64 * copies;
        let cfg = SessionConfig {
            hold_before_commit: self.plan.gate,
            health_settle: self.plan.health_settle,
            ..self.cfg.clone()
        };
        self.fold_counters();
        self.olt = Olt::new(
            &Job::Upgrade { image },
            &leg.onus,
            self.mode,
            &cfg,
            &self.mcfg,
            now,
        )
        .with_pacing(self.plan.pace);
        self.journal_dirty = true;
        tracing::info!(
            stage = ?self.stage,
            onus = leg.onus.len(),
            package = %package.words(),
            "download starts"
        );
    }

    /// The current leg is a delta package's.
    fn in_delta_leg(&self) -> bool {
        self.legs.get(self.leg).is_some_and(|l| l.delta.is_some())
    }

    /// The current leg is over: its ONUs that failed a delta go to the full image's leg
    /// (made if there is none); then the next leg, or the next wave.
    fn next_leg(&mut self, n: usize, now: Instant) {
        if self.in_delta_leg() {
            let refused: Vec<OnuId> = self
                .olt
                .sessions()
                .filter(|s| matches!(s.outcome(), Some(Outcome::Failed(_))))
                .map(|s| s.onu())
                .collect();
            if !refused.is_empty() {
                for id in &refused {
                    if let Some(r) = self.records.get_mut(id) {
                        r.outcome = None;
                        r.fell_back = true;
                    }
                }
                tracing::info!(
                    onus = refused.len(),
                    "delta refused: the full image follows"
                );
                match self
                    .legs
                    .iter_mut()
                    .skip(self.leg + 1)
                    .find(|l| l.delta.is_none())
                {
                    Some(full) => full.onus.extend(refused),
                    None => self.legs.push(Leg {
                        delta: None,
                        onus: refused,
                    }),
                }
            }
        }
        self.leg += 1;
        if self.leg < self.legs.len() {
            self.start_leg(now);
        } else {
            self.start_wave(n + 1, now);
        }
    }

    fn fold_counters(&mut self) {
        self.past = self.counters();
        let (held, of) = self.olt.delivered();
        self.past_delivered.0 += held;
        self.past_delivered.1 += of;
    }

    /// Copies what the current engine's sessions know into the records.
    fn collect(&mut self) {
        let delta_leg = self.in_delta_leg();
        for s in self.olt.sessions() {
            let Some(r) = self.records.get_mut(&s.onu()) else {
                continue;
            };
            if s.model().is_some() {
                r.model = s.model().map(str::to_string);
            }
            if let Some(id) = s.identity() {
                r.serial = Some(id.serial.clone());
            }
            if r.from_version.is_none() {
                r.from_version = s.from_version();
            }
            if let Some(v) = s.committed_version() {
                r.committed_version = Some(v);
            }
            if let Some(v) = s.active_version() {
                r.active_version = Some(v);
            }
            let mut final_now = s.outcome().filter(|o| **o != Outcome::Eligible).cloned();
            if delta_leg && matches!(final_now, Some(Outcome::Failed(_))) {
                // Not final: the full image follows (`next_leg`).
                final_now = None;
            }
            // Found already on the version, by a campaign resumed after the OLT died between
            // the ONU's Commit and the journal's update: the campaign did upgrade it.
            if let (Some(Outcome::Skipped(_)), Some(before), Some(image)) =
                (&final_now, &r.from_version, &self.image)
                && *before != image.header.version
                && r.committed_version.as_deref() == Some(image.header.version.as_str())
            {
                final_now = Some(Outcome::Upgraded);
            }
            if final_now.is_some() && r.outcome != final_now {
                r.outcome = final_now;
                self.journal_dirty = true;
            }
        }
    }

    fn advance(&mut self, now: Instant) {
        self.collect();
        match self.stage.clone() {
            Stage::Survey if self.olt.finished() => {
                let eligible: Vec<OnuId> = self
                    .olt
                    .sessions()
                    .filter(|s| s.outcome() == Some(&Outcome::Eligible))
                    .map(|s| s.onu())
                    .collect();
                for s in self.olt.sessions() {
                    if let Some(r) = self.records.get_mut(&s.onu()) {
                        r.stats = s.stats().clone();
                    }
                }
                self.waves = split(&eligible, self.plan.canary_percent);
                for (n, wave) in self.waves.iter().enumerate() {
                    for id in wave {
                        if let Some(r) = self.records.get_mut(id) {
                            r.wave = Some(n);
                        }
                    }
                }
                self.start_wave(0, now);
                self.advance(now);
            }
            Stage::Wave(n) => {
                // The share is of the wave's ONUs that were to be upgraded (without a survey,
                // the wave holds the ONUs that turn out to be skipped too).
                let wave = self.waves[n]
                    .iter()
                    .filter(|id| {
                        !matches!(
                            self.records.get(id).and_then(|r| r.outcome.as_ref()),
                            Some(Outcome::Skipped(_) | Outcome::Refused(_))
                        )
                    })
                    .count();
                let failed = self
                    .records
                    .values()
                    .filter(|r| r.wave == Some(n) && matches!(r.outcome, Some(Outcome::Failed(_))))
                    .count();
                if wave > 0 && failed as f64 / wave as f64 > self.plan.kill_threshold {
                    let why = format!(
                        "kill switch: {failed} of the {wave} ONUs of wave {} failed (threshold {:.0} %)",
                        n + 1,
                        self.plan.kill_threshold * 100.0
                    );
                    tracing::warn!("{why}");
                    self.olt.halt(now, &why);
                    self.stage = Stage::Halting(n, why);
                    self.journal_dirty = true;
                    return self.advance(now);
                }
                if self.olt.settled() && !self.olt.finished() {
                    self.olt.commit_held(now);
                }
                if self.olt.finished() {
                    self.end_stage();
                    self.next_leg(n, now);
                    self.advance(now);
                }
            }
            Stage::Halting(_, why) if self.olt.finished() => {
                self.end_stage();
                self.stage = Stage::Halted(why);
                self.journal_dirty = true;
            }
            _ => {}
        }
    }

    /// The stage's sessions are over: their counters join the records'.
    fn end_stage(&mut self) {
        for s in self.olt.sessions() {
            if let Some(r) = self.records.get_mut(&s.onu()) {
                merge(&mut r.stats, s.stats());
            }
        }
    }
}

fn merge(into: &mut SessionStats, s: &SessionStats) {
    into.frames += s.frames;
    into.frames_with_ar += s.frames_with_ar;
    into.bytes += s.bytes;
    into.retries += s.retries;
    into.timeouts += s.timeouts;
    into.repaired_windows += s.repaired_windows;
    into.busy += s.busy;
    into.restarts += s.restarts;
    into.phases.extend(s.phases.iter().cloned());
}

/// The waves of `eligible` (in ONU-ID order): the first `percent` % (at least one, and at
/// least one left for the rest), then the rest; one wave when `percent` is 0 or 100 or there
/// are fewer than two ONUs.
pub fn split(eligible: &[OnuId], percent: u8) -> Vec<Vec<OnuId>> {
    let mut ids = eligible.to_vec();
    ids.sort();
    if ids.is_empty() {
        return Vec::new();
    }
    if !(1..100).contains(&percent) || ids.len() < 2 {
        return vec![ids];
    }
    let canary = (ids.len() * usize::from(percent))
        .div_ceil(100)
        .clamp(1, ids.len() - 1);
    let rest = ids.split_off(canary);
    vec![ids, rest]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_split_the_canary_share_first() {
        let ids: Vec<OnuId> = (1..=16).map(OnuId).collect();
        let w = split(&ids, 10);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0], vec![OnuId(1), OnuId(2)], "ceil(1.6) = 2 canaries");
        assert_eq!(w[1].len(), 14);
        assert_eq!(split(&ids, 0).len(), 1);
        assert_eq!(split(&ids, 100).len(), 1);
        assert_eq!(split(&ids[..1], 50).len(), 1);
        assert_eq!(split(&ids[..2], 99), vec![vec![OnuId(1)], vec![OnuId(2)]]);
        assert!(split(&[], 10).is_empty());
    }
}
