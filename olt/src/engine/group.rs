//! The multicast group download (this lab's extension, docs/multicast.md): per target image,
//! one stream of windows to the group, its rounds of answers, their repair, and how long a round
//! waits.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use omci_codec::contents::{Contents, DownloadSectionRequest};
use omci_codec::envelope::{ALL_ONUS, Envelope, MISSING_LEN};
use omci_codec::{GemPort, MeClass, MeId, Message, OnuId, ResultCode, Tci, WindowNo};

use super::{Dest, Mode, Olt, Queued, Transmit};
use crate::image::Cut;
use crate::session::Session;
use crate::tci;

/// One window in flight: who still owes an answer (and to which TCI), who answered failure
/// and, when it said, which sections it misses.
#[derive(Debug)]
pub(super) struct Round {
    pub(super) window: u32,
    /// AR sections of this round still queued: the wait for answers starts when the last
    /// leaves (pacing may hold them back).
    pub(super) unsent: usize,
    /// When the last AR section of the round left (the round-trip samples start there).
    pub(super) sent_at: Option<Instant>,
    pub(super) deadline: Instant,
    pub(super) pending: BTreeMap<OnuId, Tci>,
    pub(super) failed: BTreeSet<OnuId>,
    pub(super) missing: BTreeMap<OnuId, [u8; MISSING_LEN]>,
}

/// How long the group waits for its members' answers: the configured timeout, or more when
/// the members answer slowly (a loaded machine, slow ONUs): the smoothed round-trip time and
/// four times its variation (RFC 6298's estimator, over every answer), at most [`RoundTimer::MAX`]
/// times the configured timeout.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RoundTimer {
    pub(super) srtt: Option<Duration>,
    pub(super) rttvar: Duration,
}

impl RoundTimer {
    const MAX: u32 = 20;

    pub(super) fn sample(&mut self, rtt: Duration) {
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

    pub(super) fn timeout(&self, base: Duration) -> Duration {
        let rto = self.srtt.map_or(base, |s| s + self.rttvar * 4);
        rto.clamp(base, base.saturating_mul(Self::MAX))
    }
}

/// The group download of every ONU that targets the same image.
#[derive(Debug)]
pub struct GroupDownload {
    pub(super) target: u8,
    pub(super) members: BTreeSet<OnuId>,
    pub(super) window_size: Option<u16>,
    pub(super) windows: u32,
    pub(super) next_window: u32,
    pub(super) rounds: VecDeque<Round>,
    pub(super) tries: BTreeMap<(OnuId, u32), u16>,
    pub(super) tci: tci::Counter,
    pub(super) timer: RoundTimer,
    pub(super) started: bool,
    pub(super) done: bool,
}

impl GroupDownload {
    /// Windows member `onu` holds: those sent to the group whose round no longer waits for it.
    pub(super) fn held_by(&self, onu: OnuId) -> u32 {
        let open = self
            .rounds
            .iter()
            .filter(|r| r.pending.contains_key(&onu) || r.failed.contains(&onu))
            .map(|r| r.window)
            .collect::<BTreeSet<u32>>()
            .len() as u32;
        self.next_window.saturating_sub(open)
    }
}

impl Olt {
    /// A member's answer to the AR section of window `w` (TCI `tci`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group_answer(
        &mut self,
        now: Instant,
        gi: usize,
        w: u32,
        onu: OnuId,
        tci: Tci,
        result: ResultCode,
        envelope: &Envelope,
    ) {
        // At most `depth` rounds are open (8 by default), whatever the ONU count: the answer's
        // rounds are found among them without allocating.
        let g = &mut self.groups[gi];
        let is_open = |r: &Round| r.window == w && r.pending.contains_key(&onu);
        if !g.rounds.iter().any(is_open) {
            return; // already settled: a duplicate
        }
        if result == ResultCode::Success {
            // It holds the window, whichever of the window's AR sections this answers: every
            // open round of the window is settled for it (a late answer counts).
            for r in g.rounds.iter_mut().filter(|r| is_open(r)) {
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
        let Some(r) = g.rounds.iter_mut().rev().find(|r| is_open(r)) else {
            return;
        };
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

    /// Moves the multicast group downloads on.
    pub(super) fn drive_groups(&mut self, now: Instant) {
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
        let depth = self.mcfg.depth_for(cut.windowing.window_bytes());
        let reach = depth.clamp(1, omci_codec::windowing::WINDOW_HORIZON as usize) as u32;
        while !self.groups[gi].members.is_empty()
            && self.groups[gi].rounds.len() < depth
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
