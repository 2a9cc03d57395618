//! The PON: every ONU's session, the multicast group download, what to send next, and when to
//! wake up.
//!
//! Sans-IO like the sessions: datagrams in with `now` and the ONU whose address they came from
//! ([`Olt::handle_datagram`]), time ([`Olt::handle_timeout`]), datagrams out
//! ([`Olt::poll_transmit`]: the group's first, then the sessions' in turn so that every ONU
//! progresses), the next deadline ([`Olt::poll_timeout`]).
//!
//! **Attribution.** An answer is taken only from the address the OLT sends that ONU's OMCC to
//! (the driver says which ONU, if any, an address belongs to), carrying that ONU's ONU-ID, and
//! to a TCI the OLT has outstanding for that ONU; everything else is dropped and counted by
//! reason ([`Drops`]).
//!
//! In **unicast** mode each session moves its own windows. In **multicast** mode (this lab's
//! extension, DESIGN.md section 5) the sessions stop after Start; per target image, one
//! [`GroupDownload`] sends each window once to the multicast group, its AR section too (every
//! ONU answers for itself), and repairs: the ONUs that answer "processing error" or stay
//! silent get the window again, by unicast when few need it, by re-multicast when many do. An
//! ONU that already holds a window ignores its repeat (the envelope carries the window number).
//! An answer that comes after its round was given up is still taken: a slow ONU is not a lost
//! one. A member that reboots (its session notices) leaves the group at once and goes on alone;
//! so does one that starts after the group download began.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use omci_codec::contents::{Contents, DownloadSectionRequest};
use omci_codec::envelope::{ALL_ONUS, Envelope, MISSING_LEN};
use omci_codec::{
    Codec, ExtendedTrailer, GemPort, MeClass, MeId, Message, OnuId, ResultCode, Tci, WindowNo,
};

use crate::image::{Cut, UpgradeImage};
use crate::session::{Job, Outcome, Session, SessionConfig};
use crate::tci;

/// How the windows travel: one definition for the engine, the `olt` command line
/// (`--mode`), the report and the scenario files (`[olt] mode = ...`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One window stream on the multicast group for all ONUs (this lab's extension).
    #[default]
    Multicast,
    /// Each ONU its own window stream (the standard procedure).
    Unicast,
}

impl Mode {
    /// The word the command line, the report and the scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Multicast => "multicast",
            Mode::Unicast => "unicast",
        }
    }
}

/// Settings of the multicast group download.
#[derive(Clone, Debug)]
pub struct MulticastConfig {
    /// Windows sent before the first of them is acknowledged (pipelining).
    pub depth: usize,
    /// A window is sent to the group again when at least this share of the group needs it
    /// (and at least `min_remulticast` ONUs); fewer get it by unicast.
    pub remulticast_share: f64,
    /// See `remulticast_share`.
    pub min_remulticast: usize,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            depth: 8,
            remulticast_share: 0.25,
            min_remulticast: 3,
        }
    }
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One ONU (its OMCC port).
    Onu(OnuId),
    /// The multicast download group.
    Group,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub dest: Dest,
    /// Envelope and OMCI frame.
    pub datagram: Vec<u8>,
}

/// Datagrams the OLT dropped, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Drops {
    /// From an address that is none of the ONUs'.
    pub unknown_sender: u64,
    /// From an ONU's address, naming another ONU-ID in the envelope (a forgery, or a
    /// misconfigured ONU).
    pub wrong_onu_id: u64,
    /// Not an envelope of this lab (too short, bad magic or version, ...).
    pub bad_envelope: u64,
    /// The OMCI frame inside did not decode (bad CRC, wrong length, unknown format, ...).
    pub bad_frame: u64,
    /// A request, not an answer (an OLT takes answers and notifications only).
    pub not_an_answer: u64,
    /// An answer to a TCI the OLT does not have outstanding for that ONU (late duplicates,
    /// guesses).
    pub unexpected_tci: u64,
}

impl Drops {
    /// Every drop.
    pub fn total(&self) -> u64 {
        self.unknown_sender
            + self.wrong_onu_id
            + self.bad_envelope
            + self.bad_frame
            + self.not_an_answer
            + self.unexpected_tci
    }

    /// The sum of two counts.
    pub fn plus(&self, o: &Drops) -> Drops {
        Drops {
            unknown_sender: self.unknown_sender + o.unknown_sender,
            wrong_onu_id: self.wrong_onu_id + o.wrong_onu_id,
            bad_envelope: self.bad_envelope + o.bad_envelope,
            bad_frame: self.bad_frame + o.bad_frame,
            not_an_answer: self.not_an_answer + o.not_an_answer,
            unexpected_tci: self.unexpected_tci + o.unexpected_tci,
        }
    }
}

/// Counters of the whole PON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PonCounters {
    /// Datagrams dropped, by reason.
    pub drops: Drops,
    /// Answers and notifications taken in.
    pub responses: u64,
    /// Frames sent to the multicast group.
    pub frames_multicast: u64,
    /// Of which with AR set.
    pub frames_multicast_ar: u64,
    /// Bytes sent to the multicast group.
    pub bytes_multicast: u64,
    /// Repair rounds that sent sections to the group again.
    pub remulticast_windows: u64,
    /// Repair rounds that only sent the closing AR section to the group again.
    pub remulticast_ar_only: u64,
    /// Answers to a group window that came after their round was given up (slow ONUs).
    pub late_answers: u64,
}

impl PonCounters {
    /// The sum of two sets of counters.
    pub fn plus(&self, o: &PonCounters) -> PonCounters {
        PonCounters {
            drops: self.drops.plus(&o.drops),
            responses: self.responses + o.responses,
            frames_multicast: self.frames_multicast + o.frames_multicast,
            frames_multicast_ar: self.frames_multicast_ar + o.frames_multicast_ar,
            bytes_multicast: self.bytes_multicast + o.bytes_multicast,
            remulticast_windows: self.remulticast_windows + o.remulticast_windows,
            remulticast_ar_only: self.remulticast_ar_only + o.remulticast_ar_only,
            late_answers: self.late_answers + o.late_answers,
        }
    }
}

/// One window in flight: who still owes an answer (and to which TCI), who answered failure
/// and, when it said, which sections it misses.
#[derive(Debug)]
struct Round {
    window: u32,
    /// AR sections of this round still queued: the wait for answers starts when the last
    /// leaves (pacing may hold them back).
    unsent: usize,
    /// When the last AR section of the round left (the round-trip samples start there).
    sent_at: Option<Instant>,
    deadline: Instant,
    pending: BTreeMap<OnuId, Tci>,
    failed: BTreeSet<OnuId>,
    missing: BTreeMap<OnuId, [u8; MISSING_LEN]>,
}

/// How long the group waits for its members' answers: the configured timeout, or more when
/// the members answer slowly (a loaded machine, slow ONUs): the smoothed round-trip time and
/// four times its variation (RFC 6298's estimator, over every answer), at most [`RoundTimer::MAX`]
/// times the configured timeout.
#[derive(Clone, Copy, Debug, Default)]
struct RoundTimer {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RoundTimer {
    const MAX: u32 = 20;

    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    fn timeout(&self, base: Duration) -> Duration {
        let rto = self.srtt.map_or(base, |s| s + self.rttvar * 4);
        rto.clamp(base, base.saturating_mul(Self::MAX))
    }
}

/// The group download of every ONU that targets the same image.
#[derive(Debug)]
pub struct GroupDownload {
    target: u8,
    members: BTreeSet<OnuId>,
    window_size: Option<u16>,
    windows: u32,
    next_window: u32,
    rounds: VecDeque<Round>,
    tries: BTreeMap<(OnuId, u32), u16>,
    tci: tci::Counter,
    timer: RoundTimer,
    started: bool,
    done: bool,
}

/// A cap on Download sections per second, over both the group and the ONUs' own channels.
#[derive(Clone, Copy, Debug)]
struct Pacer {
    interval: Duration,
    /// When the next section may leave.
    next: Option<Instant>,
}

impl Pacer {
    /// Up to this much unused time is credited, so that a driver that wakes a little late
    /// catches up with a short burst.
    const CREDIT: Duration = Duration::from_millis(10);

    fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|n| n <= now)
    }

    fn take(&mut self, now: Instant) {
        let floor = now.checked_sub(Self::CREDIT).unwrap_or(now);
        let base = self.next.map_or(now, |n| n.max(floor));
        self.next = Some(base + self.interval);
    }
}

/// A group datagram queued to leave, and the round whose answer wait starts when it does.
#[derive(Debug)]
struct Queued {
    transmit: Transmit,
    /// (group, TCI) of an AR section: the round waiting on that TCI times from its sending.
    opens: Option<(usize, Tci)>,
}

/// The OLT of one PON.
#[derive(Debug)]
pub struct Olt {
    sessions: BTreeMap<OnuId, Session>,
    groups: Vec<GroupDownload>,
    /// Every AR section the groups sent: its TCI's group and window (late answers find their
    /// window by it); forgotten once no round of that window is open.
    ar_tcis: HashMap<Tci, (usize, u32)>,
    mode: Mode,
    cfg: SessionConfig,
    mcfg: MulticastConfig,
    image: Option<UpgradeImage>,
    codec: Codec,
    group_out: VecDeque<Queued>,
    next: Option<OnuId>,
    counters: PonCounters,
    pacer: Option<Pacer>,
}

impl Olt {
    /// Starts `job` on `onus` at `now`.
    pub fn new(
        job: &Job,
        onus: &[OnuId],
        mode: Mode,
        cfg: &SessionConfig,
        mcfg: &MulticastConfig,
        now: Instant,
    ) -> Olt {
        let multicast = mode == Mode::Multicast && matches!(job, Job::Upgrade { .. });
        let sessions = onus
            .iter()
            .map(|&onu| {
                let s = Session::new(onu, job.clone(), cfg.clone(), multicast, now);
                (onu, s)
            })
            .collect();
        Olt {
            sessions,
            groups: Vec::new(),
            ar_tcis: HashMap::new(),
            mode,
            cfg: cfg.clone(),
            mcfg: mcfg.clone(),
            image: job.image().cloned(),
            codec: Codec::new(ExtendedTrailer::Crc32),
            group_out: VecDeque::new(),
            next: None,
            counters: PonCounters::default(),
            pacer: None,
        }
    }

    /// Caps the Download sections sent to at most `per_second` (group and unicast together);
    /// None or 0: no cap.
    pub fn with_pacing(mut self, per_second: Option<u32>) -> Olt {
        self.pacer = per_second.filter(|r| *r > 0).map(|r| Pacer {
            interval: Duration::from_secs(1) / r,
            next: None,
        });
        self
    }

    /// Stops every ONU's upgrade (the kill switch, or an abort): see [`Session::halt`]. The
    /// group download stops at once; the sessions wind down (abort, rollback) and end
    /// [`Outcome::Halted`].
    pub fn halt(&mut self, now: Instant, reason: &str) {
        for s in self.sessions.values_mut() {
            s.halt(now, reason);
        }
        self.group_out.clear();
        self.ar_tcis.clear();
        for g in &mut self.groups {
            g.rounds.clear();
            g.done = true;
        }
    }

    /// Every session held at the health gate goes on to Commit.
    pub fn commit_held(&mut self, now: Instant) {
        for s in self.sessions.values_mut() {
            s.commit(now);
        }
    }

    /// True when every session has ended or holds at the health gate.
    pub fn settled(&self) -> bool {
        self.sessions
            .values()
            .all(|s| s.outcome().is_some() || s.is_held())
    }

    /// A datagram from the PON, from the address of ONU `from` (None: an address that is no
    /// ONU's).
    pub fn handle_datagram(&mut self, now: Instant, from: Option<OnuId>, datagram: &[u8]) {
        let drops = &mut self.counters.drops;
        let Some(from) = from.filter(|id| self.sessions.contains_key(id)) else {
            drops.unknown_sender += 1;
            return;
        };
        let Ok((envelope, frame)) = Envelope::parse(datagram) else {
            drops.bad_envelope += 1;
            return;
        };
        if envelope.onu_id != from {
            drops.wrong_onu_id += 1;
            return;
        }
        let Ok(msg) = self.codec.parse(frame) else {
            drops.bad_frame += 1;
            return;
        };
        if !msg.ak() && !msg.message_type().is_notification() {
            drops.not_an_answer += 1;
            return;
        }
        if let Contents::DownloadSectionResponse(r) = &msg.contents
            && let Some(&(gi, w)) = self.ar_tcis.get(&msg.tci)
            && self.groups[gi].members.contains(&from)
        {
            self.counters.responses += 1;
            self.group_answer(now, gi, w, from, msg.tci, r.result, &envelope);
            self.drive_groups(now);
            return;
        }
        let Some(s) = self.sessions.get_mut(&from) else {
            return;
        };
        if s.handle_response(now, &envelope, &msg) {
            self.counters.responses += 1;
        } else {
            self.counters.drops.unexpected_tci += 1;
        }
        // A session that reaches the group download after it began (it started late, or again
        // after a reboot) goes on alone.
        if s.accepted_window().is_some()
            && !self.groups.is_empty()
            && !self
                .groups
                .iter()
                .any(|g| !g.done && g.members.contains(&from))
        {
            s.go_alone(now);
        }
        self.drive_groups(now);
    }

    /// A member's answer to the AR section of window `w` (TCI `tci`).
    #[allow(clippy::too_many_arguments)]
    fn group_answer(
        &mut self,
        now: Instant,
        gi: usize,
        w: u32,
        onu: OnuId,
        tci: Tci,
        result: ResultCode,
        envelope: &Envelope,
    ) {
        let g = &mut self.groups[gi];
        let open: Vec<usize> = (0..g.rounds.len())
            .filter(|&i| g.rounds[i].window == w && g.rounds[i].pending.contains_key(&onu))
            .collect();
        if open.is_empty() {
            return; // already settled: a duplicate
        }
        if result == ResultCode::Success {
            // It holds the window, whichever of the window's AR sections this answers: every
            // open round of the window is settled for it (a late answer counts).
            for i in open {
                let r = &mut g.rounds[i];
                if r.pending.get(&onu) != Some(&tci) {
                    self.counters.late_answers += 1;
                }
                r.pending.remove(&onu);
                r.failed.remove(&onu);
                r.missing.remove(&onu);
                if let Some(sent) = r.sent_at {
                    g.timer.sample(now.saturating_duration_since(sent));
                }
            }
            return;
        }
        // A failure counts only as an answer to the newest round of the window (an older one
        // says nothing the newer round will not say better).
        let Some(&i) = open.last() else {
            return;
        };
        let r = &mut g.rounds[i];
        if r.pending.get(&onu) != Some(&tci) {
            return;
        }
        r.pending.remove(&onu);
        if let Some(sent) = r.sent_at {
            g.timer.sample(now.saturating_duration_since(sent));
        }
        match envelope.missing {
            // Without the bitmap: the lab's ONU has no download in progress (it rebooted).
            None => {
                if let Some(s) = self.sessions.get_mut(&onu) {
                    s.download_lost(now);
                }
            }
            // An empty bitmap says nothing useful: treat it as no bitmap.
            Some(m) => {
                r.failed.insert(onu);
                if m.iter().any(|b| *b != 0) {
                    r.missing.insert(onu, m);
                }
            }
        }
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in self.sessions.values_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
        self.drive_groups(now);
    }

    /// The next datagram to send at `now`: the group's first, then each session's in turn
    /// (Download sections only as pacing allows).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let paced_out = self.pacer.is_some_and(|p| !p.ready(now));
        if !paced_out && let Some(q) = self.group_out.pop_front() {
            if let Some(p) = &mut self.pacer {
                p.take(now);
            }
            if let Some((gi, tci)) = q.opens
                && let Some(g) = self.groups.get_mut(gi)
            {
                let wait = g.timer.timeout(self.cfg.timeout);
                for r in g
                    .rounds
                    .iter_mut()
                    .filter(|r| r.pending.values().any(|t| *t == tci))
                {
                    r.unsent = r.unsent.saturating_sub(1);
                    r.sent_at = Some(now);
                    r.deadline = r.deadline.max(now + wait);
                }
            }
            return Some(q.transmit);
        }
        // Round robin from the session after the last one that sent, without collecting the
        // keys (this runs once per datagram sent).
        let start = self.next.unwrap_or(OnuId(0));
        let first = |sessions: std::collections::btree_map::RangeMut<'_, OnuId, Session>| {
            sessions
                .filter(|(_, s)| !(paced_out && s.next_is_section()))
                .find_map(|(id, s)| s.poll_transmit(now).map(|o| (*id, o)))
        };
        let (id, out) = match first(self.sessions.range_mut(start..)) {
            Some(f) => f,
            None => first(self.sessions.range_mut(..start))?,
        };
        if out.section
            && let Some(p) = &mut self.pacer
        {
            p.take(now);
        }
        self.next = Some(OnuId(id.0.wrapping_add(1)));
        Some(Transmit {
            dest: Dest::Onu(out.onu),
            datagram: out.datagram,
        })
    }

    /// The earliest deadline of any session or group round, or when pacing lets the next
    /// queued section leave.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.values().filter_map(Session::poll_timeout);
        let rounds = self.groups.iter().filter(|g| !g.done).flat_map(|g| {
            g.rounds
                .iter()
                .filter(|r| r.unsent == 0)
                .map(|r| r.deadline)
        });
        let queued =
            !self.group_out.is_empty() || self.sessions.values().any(Session::next_is_section);
        let paced = self.pacer.and_then(|p| p.next).filter(|_| queued);
        sessions.chain(rounds).chain(paced).min()
    }

    /// True when every session has ended.
    pub fn finished(&self) -> bool {
        self.sessions.values().all(|s| s.outcome().is_some())
    }

    /// Every session, by ONU.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// How each session ended (or None while it runs).
    pub fn outcomes(&self) -> BTreeMap<OnuId, Option<Outcome>> {
        self.sessions
            .iter()
            .map(|(id, s)| (*id, s.outcome().cloned()))
            .collect()
    }

    /// PON counters.
    pub fn counters(&self) -> &PonCounters {
        &self.counters
    }

    /// Moves the multicast group downloads on.
    fn drive_groups(&mut self, now: Instant) {
        if self.mode != Mode::Multicast || self.image.is_none() {
            return;
        }
        self.form_groups();
        for gi in 0..self.groups.len() {
            self.drive_group(gi, now);
        }
    }

    /// Once every session has either started (waits for the group) or ended, the waiting ones
    /// form one group per target image.
    fn form_groups(&mut self) {
        if !self.groups.is_empty() {
            return;
        }
        // Sessions still finding out where their ONU is (or starting) may yet join; the
        // others either wait for the group or took another path (S3/S4 resumes, failures).
        let all_ready = self.sessions.values().all(|s| !s.may_join_group());
        if !all_ready {
            return;
        }
        for target in 0..2u8 {
            let members: BTreeSet<OnuId> = self
                .sessions
                .values()
                .filter(|s| s.accepted_window().is_some() && s.target() == target)
                .map(Session::onu)
                .collect();
            if members.is_empty() {
                continue;
            }
            self.groups.push(GroupDownload {
                target,
                members,
                window_size: None,
                windows: 0,
                next_window: 0,
                rounds: VecDeque::new(),
                tries: BTreeMap::new(),
                tci: tci::Counter::new(tci::GROUP, self.cfg.tci_seed, u64::from(target)),
                timer: RoundTimer::default(),
                started: false,
                done: false,
            });
        }
    }

    /// How group `gi` cuts the image (its window agreed).
    fn cut(&self, gi: usize) -> Option<Cut> {
        let window = self.groups[gi].window_size.unwrap_or(1);
        let image = self.image.as_ref()?;
        Some(image.cut(self.cfg.format, window, self.cfg.extended_section_len))
    }

    fn drive_group(&mut self, gi: usize, now: Instant) {
        if self.groups[gi].done {
            return;
        }
        let Some(image) = self.image.clone() else {
            return;
        };
        // Members whose session ended (failed), halts, or left the group download (it
        // rebooted and started again, alone) leave the group.
        let started = self.groups[gi].started;
        let ended: Vec<OnuId> = self.groups[gi]
            .members
            .iter()
            .copied()
            .filter(|id| {
                let s = &self.sessions[id];
                s.outcome().is_some()
                    || s.is_halting()
                    || (started && s.accepted_window().is_none())
            })
            .collect();
        for id in ended {
            self.leave(gi, id);
        }
        if self.groups[gi].members.is_empty() {
            self.close(gi);
            return;
        }
        if !self.groups[gi].started {
            // The whole group uses the smallest window any member accepted: those that took a
            // larger one are started again with it.
            let windows: Vec<(OnuId, Option<u16>)> = self.groups[gi]
                .members
                .iter()
                .map(|id| (*id, self.sessions[id].accepted_window()))
                .collect();
            if windows.iter().any(|(_, w)| w.is_none()) {
                return; // a restarted member has not answered yet
            }
            let min = windows.iter().filter_map(|(_, w)| *w).min().unwrap_or(1);
            let mut restarted = false;
            for (id, w) in windows {
                if w != Some(min) {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.restart(now, min);
                    }
                    restarted = true;
                }
            }
            if restarted {
                return;
            }
            self.groups[gi].window_size = Some(min);
            let Some(cut) = self.cut(gi) else {
                return;
            };
            let g = &mut self.groups[gi];
            g.windows = image.windows(cut);
            g.started = true;
        }
        let Some(cut) = self.cut(gi) else {
            return;
        };
        // Rounds: answered or timed out ones are settled, in window order.
        let mut i = 0;
        while i < self.groups[gi].rounds.len() {
            let r = &self.groups[gi].rounds[i];
            if !r.pending.is_empty() && (r.unsent > 0 || now < r.deadline) {
                i += 1;
                continue;
            }
            let Some(r) = self.groups[gi].rounds.remove(i) else {
                break;
            };
            self.forget_window_if_closed(gi, r.window);
            let need: BTreeSet<OnuId> = r
                .failed
                .iter()
                .chain(r.pending.keys())
                .copied()
                .filter(|id| self.groups[gi].members.contains(id))
                .collect();
            let silent: BTreeSet<OnuId> = r.pending.keys().copied().collect();
            self.repair(gi, now, r.window, need, &r.missing, &silent);
        }
        // New windows stay within `depth` of the oldest one still open (and so within the
        // ONUs' horizon of windows ahead they keep track of).
        let reach = self
            .mcfg
            .depth
            .clamp(1, omci_codec::windowing::WINDOW_HORIZON as usize) as u32;
        while !self.groups[gi].members.is_empty()
            && self.groups[gi].rounds.len() < self.mcfg.depth.max(1)
            && self.groups[gi].next_window < self.groups[gi].windows
            && self.groups[gi]
                .rounds
                .iter()
                .map(|r| r.window)
                .min()
                .is_none_or(|oldest| self.groups[gi].next_window < oldest + reach)
        {
            let w = self.groups[gi].next_window;
            self.groups[gi].next_window += 1;
            let all: BTreeSet<usize> = (0..image.sections_in(cut, w)).collect();
            let tci = self.send_sections(gi, w, &all, None);
            let pending = self.groups[gi]
                .members
                .iter()
                .map(|id| (*id, tci))
                .collect();
            self.open_round(gi, now, w, pending);
        }
        if self.groups[gi].members.is_empty() {
            // The last members failed in the repairs above.
            self.close(gi);
            return;
        }
        // All windows held by every member: each goes on alone with End.
        let g = &self.groups[gi];
        if g.started && g.next_window >= g.windows && g.rounds.is_empty() {
            self.groups[gi].done = true;
            let members = self.groups[gi].members.clone();
            for id in members {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.group_done(now);
                }
            }
        }
    }

    /// Group `gi` has no members left: nothing more is sent or waited for.
    fn close(&mut self, gi: usize) {
        let g = &mut self.groups[gi];
        g.done = true;
        g.rounds.clear();
        self.ar_tcis.retain(|_, (group, _)| *group != gi);
    }

    /// Once no round of window `w` is open in group `gi`, its AR TCIs are forgotten.
    fn forget_window_if_closed(&mut self, gi: usize, w: u32) {
        if !self.groups[gi].rounds.iter().any(|r| r.window == w) {
            self.ar_tcis.retain(|_, k| *k != (gi, w));
        }
    }

    fn leave(&mut self, gi: usize, id: OnuId) {
        let g = &mut self.groups[gi];
        g.members.remove(&id);
        for r in &mut g.rounds {
            r.pending.remove(&id);
            r.failed.remove(&id);
            r.missing.remove(&id);
        }
    }

    /// Window `w` again for the ONUs in `need`, section by section: a section that many of them
    /// miss goes to the group, one that few miss goes to those alone. An ONU that reported no
    /// bitmap misses everything; one that was `silent` is only asked again (its answer, or the
    /// AR section, was what got lost; if it lost more, its answer to the AR says what). The
    /// window's last section closes the repair with AR: to the group if many take part, else
    /// to each alone.
    fn repair(
        &mut self,
        gi: usize,
        now: Instant,
        w: u32,
        need: BTreeSet<OnuId>,
        reported: &BTreeMap<OnuId, [u8; MISSING_LEN]>,
        silent: &BTreeSet<OnuId>,
    ) {
        let (Some(cut), Some(image)) = (self.cut(gi), self.image.clone()) else {
            return;
        };
        let mut retry = BTreeSet::new();
        for id in need {
            let tries = {
                let t = self.groups[gi].tries.entry((id, w)).or_insert(0);
                *t += 1;
                *t
            };
            if tries > self.cfg.window_retries {
                self.leave(gi, id);
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.group_failed(now, format!("window {w} failed {tries} times"));
                }
            } else {
                retry.insert(id);
            }
        }
        if retry.is_empty() {
            return;
        }
        for id in &retry {
            if let Some(s) = self.sessions.get_mut(id) {
                s.count_repaired_window();
            }
        }
        let count = image.sections_in(cut, w);
        let last = count - 1;
        // What an ONU misses: what its bitmap says; a silent one is only asked again (its
        // answer or the AR section is what got lost, or, if it lost more, its next answer will
        // carry the bitmap); one that answered failure without a bitmap misses everything.
        let misses = |id: &OnuId, n: usize| match reported.get(id) {
            Some(m) => m[n / 8] & (1 << (n % 8)) != 0,
            None => !silent.contains(id),
        };
        let members = self.groups[gi].members.len() as f64;
        let threshold = (self.mcfg.remulticast_share * members)
            .ceil()
            .max(self.mcfg.min_remulticast as f64) as usize;
        let to_group: BTreeSet<usize> = (0..last)
            .filter(|&n| retry.iter().filter(|id| misses(id, n)).count() >= threshold)
            .collect();
        // Sections few ONUs miss: to each of them alone (no AR yet).
        for id in &retry {
            let own: BTreeSet<usize> = (0..last)
                .filter(|&n| misses(id, n) && !to_group.contains(&n))
                .collect();
            if !own.is_empty() {
                self.send_sections(gi, w, &own, Some(*id));
            }
        }
        let close: BTreeSet<usize> = [last].into_iter().collect();
        let pending = if to_group.is_empty() && retry.len() < threshold {
            // Few ONUs, little to send: each gets the closing AR section alone.
            let mut pending = BTreeMap::new();
            for id in &retry {
                pending.insert(*id, self.send_sections(gi, w, &close, Some(*id)));
            }
            pending
        } else {
            if to_group.is_empty() {
                self.counters.remulticast_ar_only += 1;
            } else {
                self.counters.remulticast_windows += 1;
            }
            let mut sections = to_group;
            sections.insert(last);
            let tci = self.send_sections(gi, w, &sections, None);
            retry.iter().map(|id| (*id, tci)).collect()
        };
        self.open_round(gi, now, w, pending);
    }

    fn open_round(&mut self, gi: usize, now: Instant, w: u32, pending: BTreeMap<OnuId, Tci>) {
        let unsent = pending.values().collect::<BTreeSet<_>>().len();
        let wait = self.groups[gi].timer.timeout(self.cfg.timeout);
        self.groups[gi].rounds.push_back(Round {
            window: w,
            unsent,
            sent_at: None,
            deadline: now + wait,
            pending,
            failed: BTreeSet::new(),
            missing: BTreeMap::new(),
        });
    }

    /// Sends `sections` of window `w`, in order, to the group (`to` = None) or to one ONU;
    /// the window's last section, if among them, carries AR and the window CRC. Returns the TCI
    /// of the last frame sent (the AR section's when it was sent).
    fn send_sections(
        &mut self,
        gi: usize,
        w: u32,
        sections: &BTreeSet<usize>,
        to: Option<OnuId>,
    ) -> Tci {
        let (Some(cut), Some(image)) = (self.cut(gi), self.image.clone()) else {
            return Tci(0);
        };
        let count = image.sections_in(cut, w);
        let window_crc = image.window_crc(cut, w);
        let target = MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(self.groups[gi].target));
        let (mut frames, mut with_ar, mut sent) = (0u64, 0u64, 0u64);
        let mut last_tci = Tci(0);
        for &n in sections.iter().filter(|&&n| n < count) {
            let data = image.section(cut, w, n);
            let ar = n + 1 == count;
            let tci = self.groups[gi].tci.next_tci();
            let msg = Message::new(
                tci,
                self.cfg.format,
                target,
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: n as u8,
                    data: std::borrow::Cow::Owned(data),
                }),
            )
            .with_ar(ar || self.cfg.quirks.ar_on_every_section);
            let Ok(frame) = self.codec.to_vec(&msg) else {
                continue;
            };
            let envelope = Envelope {
                onu_id: to.unwrap_or(ALL_ONUS),
                gem_port: match to {
                    Some(id) => GemPort::omcc(id),
                    None => GemPort::MULTICAST_DOWNLOAD,
                },
                window_no: Some(WindowNo(w)),
                window_crc: ar.then_some(window_crc),
                missing: None,
            };
            let datagram = envelope.wrap(&frame);
            frames += 1;
            with_ar += u64::from(ar);
            sent += datagram.len() as u64;
            last_tci = tci;
            if ar {
                self.ar_tcis.insert(tci, (gi, w));
            }
            self.group_out.push_back(Queued {
                transmit: Transmit {
                    dest: to.map_or(Dest::Group, Dest::Onu),
                    datagram,
                },
                opens: ar.then_some((gi, tci)),
            });
        }
        match to {
            None => {
                self.counters.frames_multicast += frames;
                self.counters.frames_multicast_ar += with_ar;
                self.counters.bytes_multicast += sent;
            }
            Some(id) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.count_repair(frames, with_ar, sent);
                }
            }
        }
        last_tci
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_round_timer_grows_with_slow_answers_and_stays_bounded() {
        let base = Duration::from_millis(500);
        let mut t = RoundTimer::default();
        assert_eq!(t.timeout(base), base, "no samples: the configured timeout");
        for _ in 0..20 {
            t.sample(Duration::from_millis(50));
        }
        assert_eq!(t.timeout(base), base, "fast answers never shorten it");
        for _ in 0..20 {
            t.sample(Duration::from_millis(900));
        }
        assert!(
            t.timeout(base) > Duration::from_millis(900),
            "{:?}",
            t.timeout(base)
        );
        for _ in 0..50 {
            t.sample(Duration::from_secs(600));
        }
        assert_eq!(t.timeout(base), base * RoundTimer::MAX);
    }
}
