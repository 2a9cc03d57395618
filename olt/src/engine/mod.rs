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
//!
//! ## Map
//! - this file: [`Olt`], the sessions, what leaves next and when to wake.
//! - `group`: the multicast group download: its windows, rounds, repairs and round timer.

mod group;

pub use group::GroupDownload;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use omci_codec::contents::Contents;
use omci_codec::envelope::Envelope;
use omci_codec::{Codec, ExtendedTrailer, OnuId, Tci};

use crate::image::UpgradeImage;
use crate::session::{Job, Outcome, Session, SessionConfig};

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

/// One of the OLT's PON ports: a separate optical tree of up to 128 ONUs, with its own ONU
/// set, multicast group and engine. ONU-IDs are per PON port (ONU 1 of port 1 is not ONU 1 of
/// port 2). Ports are numbered from 1; a one-PON OLT has port 1 only.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PonPort(pub u8);

impl PonPort {
    /// The first (and on a one-PON OLT the only) port.
    pub const FIRST: PonPort = PonPort(1);
    /// The most ports an OLT of this lab has.
    pub const MAX: u8 = 16;
}

impl std::fmt::Display for PonPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PON {}", self.0)
    }
}

/// Settings of the multicast group download.
#[derive(Clone, Debug)]
pub struct MulticastConfig {
    /// Windows sent before the first of them is acknowledged (pipelining), at most.
    pub depth: usize,
    /// Image bytes in flight at most: large windows are pipelined less deep
    /// ([`MulticastConfig::depth_for`]), so that what is in flight fits an ONU's receive
    /// buffer while it is busy elsewhere (every datagram lost there costs a repair).
    pub bytes_in_flight: u64,
    /// A window is sent to the group again when at least this share of the group needs it
    /// (and at least `min_remulticast` ONUs); fewer get it by unicast.
    pub remulticast_share: f64,
    /// See `remulticast_share`.
    pub min_remulticast: usize,
}

impl MulticastConfig {
    /// Windows of `window_bytes` each in flight at most: `depth`, fewer when they would hold
    /// more than `bytes_in_flight` (at least one). Extended windows of 256 sections (503 KB)
    /// go 4 deep by default, all others 8.
    pub fn depth_for(&self, window_bytes: u64) -> usize {
        let fits = self.bytes_in_flight / window_bytes.max(1);
        self.depth
            .min(usize::try_from(fits).unwrap_or(usize::MAX))
            .max(1)
    }
}

impl Default for MulticastConfig {
    fn default() -> Self {
        Self {
            depth: 8,
            bytes_in_flight: 2 << 20,
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
    /// Every AR section the groups sent: its TCI's group and window, so that an answer that
    /// comes late (or twice, to a window sent to the group again) is still known for one; kept
    /// until the group closes (a TCI reused after the counter wraps takes its new meaning).
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

    /// How much of the image has reached the ONUs: windows held, of windows to deliver, over
    /// every ONU of this engine (an ONU that ended counts as complete: nothing more goes to it).
    pub fn delivered(&self) -> (u64, u64) {
        let mut held = 0u64;
        let mut of = 0u64;
        for (id, s) in &self.sessions {
            let w = match s.windows_held() {
                Some(w) => w,
                None => {
                    let g = self.groups.iter().find(|g| g.members.contains(id));
                    match (g, s.windows_held_of()) {
                        (Some(g), Some(total)) => (g.held_by(*id).min(total), total),
                        (None, Some(total)) => (0, total),
                        _ => continue,
                    }
                }
            };
            held += u64::from(w.0);
            of += u64::from(w.1);
        }
        (held, of)
    }

    /// The group downloads' windows sent to the group so far, and their windows in all
    /// (0, 0 in unicast mode).
    pub fn group_windows(&self) -> (u32, u32) {
        self.groups.iter().fold((0, 0), |(sent, all), g| {
            (sent + g.next_window.min(g.windows), all + g.windows)
        })
    }

    /// PON counters.
    pub fn counters(&self) -> &PonCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::MulticastConfig;

    #[test]
    fn large_windows_are_pipelined_less_deep() {
        let m = MulticastConfig::default();
        // Baseline windows of 32 or 256 sections, extended of 8 or 32: 8 deep.
        for bytes in [32 * 31, 256 * 31, 8 * 1965, 32 * 1965] {
            assert_eq!(m.depth_for(bytes), 8, "{bytes}-byte windows");
        }
        // Extended windows of 256 sections (503 KB): 4 fit in 2 MiB.
        assert_eq!(m.depth_for(256 * 1965), 4);
        // A window larger than the budget still goes, one at a time.
        assert_eq!(m.depth_for(64 << 20), 1);
        assert_eq!(m.depth_for(0), 8);
    }
}
