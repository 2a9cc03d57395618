//! The analysis both outputs share: the Download sections grouped in bursts (one window's
//! sections to one destination), the window of every burst, the ONUs' answers tied to the
//! windows they answer, and every event in capture order.
//!
//! A capture holds only the OMCI frames, not the lab's transport envelope, so the absolute
//! window number the OLT puts in the envelope is not in it. G.988 numbers sections within a
//! window and never numbers windows, so the window of every burst is recovered from the
//! sections' contents: the first time a window's sections are seen they open the next window
//! of their stream (the group, or one ONU), and a later burst that carries the same bytes at
//! the same section numbers is that window again (a repair).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use omci_codec::ResultCode;
use omci_codec::pcap::{Direction, Peer};

use super::frame::{Body, Frame};

/// Where a burst of Download sections went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Dest {
    Group,
    Onu(u16),
}

/// The consecutive Download sections of one window sent to one destination, closed by the
/// section with AR set (or by the end of the capture).
#[derive(Clone, Debug)]
pub(super) struct Burst {
    pub(super) dest: Dest,
    pub(super) instance: u16,
    /// Frame indices of its sections, in order.
    pub(super) frames: Vec<usize>,
    /// Their section numbers.
    pub(super) sections: Vec<u8>,
    /// The AR section's number, when the burst was closed by one.
    pub(super) ar: Option<u8>,
    /// The window, as recovered from the contents.
    pub(super) window: Option<u32>,
    /// Sections 0..=AR, every one: a whole window.
    pub(super) full: bool,
    /// The window was sent to this destination (or to the ONU's group) before.
    pub(super) repeat: bool,
    /// CRC-32/BZIP2 of the window's image bytes (whole windows).
    pub(super) crc: Option<u32>,
}

/// An ONU's Download section response, tied to the window it answers.
#[derive(Clone, Debug)]
pub(super) struct Answer {
    pub(super) frame: usize,
    pub(super) onu: u16,
    /// The burst whose AR section it answers.
    pub(super) burst: Option<usize>,
    pub(super) window: Option<u32>,
    pub(super) result: ResultCode,
    /// For a processing error: how many sections the OLT then sent again (the ONU's missing
    /// ones), when that could be told.
    pub(super) missing: Option<usize>,
}

/// What happened, in capture order.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ev {
    /// A new capture file begins (the OLT was restarted) at this frame.
    FileStart(usize),
    /// A burst of sections (its index in `bursts`).
    Burst(usize),
    /// A Download section response (its index in `answers`).
    Answer(usize),
    /// Any other frame.
    Frame(usize),
}

/// Per stream (a destination and an image instance): the next window never sent, and the
/// windows sent.
#[derive(Default)]
struct Stream {
    pub(super) next_new: u32,
    pub(super) sent: HashSet<u32>,
}

/// Windows known by their contents, per window size.
#[derive(Default)]
struct Catalog {
    /// (window size, section number, hash of the data) -> windows holding it.
    pub(super) index: HashMap<(u16, u8, u64), Vec<u32>>,
    /// (window size, window) -> number of sections, from a whole burst.
    pub(super) sections: HashMap<(u16, u32), usize>,
}

/// A processing error waiting for the repair that tells how many sections were missing.
struct PendingRepair {
    pub(super) answer: usize,
    pub(super) sections: BTreeSet<u8>,
    pub(super) last_ar: Option<u8>,
}

pub(super) struct Analysis<'f> {
    pub(super) frames: &'f [Frame],
    pub(super) bursts: Vec<Burst>,
    pub(super) answers: Vec<Answer>,
    pub(super) events: Vec<Ev>,
    pub(super) has_group: bool,
    /// Every ONU seen, ascending.
    pub(super) onus: Vec<u16>,
}

fn data_hash(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

impl<'f> Analysis<'f> {
    pub(super) fn new(frames: &'f [Frame]) -> Self {
        let mut b = Builder {
            frames,
            bursts: Vec::new(),
            answers: Vec::new(),
            events: Vec::new(),
            open: BTreeMap::new(),
            streams: HashMap::new(),
            catalog: Catalog::default(),
            onu_window: HashMap::new(),
            onu_target: HashMap::new(),
            group_window: HashMap::new(),
            image_size: HashMap::new(),
            ar_index: HashMap::new(),
            pending: HashMap::new(),
            group_restart: HashSet::new(),
        };
        for (i, f) in frames.iter().enumerate() {
            if i > 0 && f.file != frames[i - 1].file {
                // The OLT's first life ended: whatever it was sending stops here.
                let open: Vec<_> = b.open.keys().copied().collect();
                for key in open {
                    b.close(key);
                }
                b.events.push((i, Ev::FileStart(i)));
            }
            b.frame(i, f);
        }
        let open: Vec<_> = b.open.keys().copied().collect();
        for key in open {
            b.close(key);
        }
        for (_, p) in std::mem::take(&mut b.pending) {
            b.finish_repair(p, None);
        }
        b.events.sort_by_key(|(at, _)| *at);
        let onus: BTreeSet<u16> = frames.iter().filter_map(Frame::onu).collect();
        Analysis {
            frames,
            bursts: b.bursts,
            answers: b.answers,
            events: b.events.into_iter().map(|(_, e)| e).collect(),
            has_group: frames.iter().any(|f| f.peer == Peer::Multicast),
            onus: onus.into_iter().collect(),
        }
    }

    pub(super) fn time(&self, frame: usize) -> Duration {
        self.frames[frame].time
    }
}

struct Builder<'f> {
    pub(super) frames: &'f [Frame],
    pub(super) bursts: Vec<Burst>,
    pub(super) answers: Vec<Answer>,
    /// (anchor frame, event): sorted by anchor at the end.
    pub(super) events: Vec<(usize, Ev)>,
    /// Open bursts by (destination, instance).
    pub(super) open: BTreeMap<(Dest, u16), Burst>,
    pub(super) streams: HashMap<(Dest, u16), Stream>,
    pub(super) catalog: Catalog,
    /// Window size each ONU accepted.
    pub(super) onu_window: HashMap<u16, u16>,
    /// The image instance each ONU downloads into.
    pub(super) onu_target: HashMap<u16, u16>,
    /// Window size of the group of an instance.
    pub(super) group_window: HashMap<u16, u16>,
    /// Image size by instance (last Start).
    pub(super) image_size: HashMap<u16, u32>,
    /// (destination, instance, TCI) of an AR section -> its burst.
    pub(super) ar_index: HashMap<(Dest, u16, u16), usize>,
    /// (ONU, window) -> a processing error waiting for its repair.
    pub(super) pending: HashMap<(u16, u32), PendingRepair>,
    /// Instances a Start was sent for since their group last sent a section.
    pub(super) group_restart: HashSet<u16>,
}

impl Builder<'_> {
    pub(super) fn frame(&mut self, i: usize, f: &Frame) {
        match (&f.body, f.direction) {
            (Body::Section { number, .. }, Direction::Downstream) => {
                let dest = match f.peer {
                    Peer::Multicast => Dest::Group,
                    Peer::Onu(o) => Dest::Onu(o.0),
                };
                let key = (dest, f.me_instance);
                if self
                    .open
                    .get(&key)
                    .is_some_and(|b| b.sections.last().is_some_and(|&l| *number <= l))
                {
                    // Numbers go up within a window: this one begins another.
                    self.close(key);
                }
                let burst = self.open.entry(key).or_insert_with(|| Burst {
                    dest,
                    instance: f.me_instance,
                    frames: Vec::new(),
                    sections: Vec::new(),
                    ar: None,
                    window: None,
                    full: false,
                    repeat: false,
                    crc: None,
                });
                burst.frames.push(i);
                burst.sections.push(*number);
                if f.ar {
                    burst.ar = Some(*number);
                    self.close(key);
                }
            }
            (Body::SectionResponse { result, .. }, Direction::Upstream) => {
                let Some(onu) = f.onu() else { return };
                let inst = f.me_instance;
                let burst = [Dest::Onu(onu), Dest::Group]
                    .iter()
                    .filter_map(|d| self.ar_index.get(&(*d, inst, f.tci)).copied())
                    .max();
                let window = burst.and_then(|b| self.bursts[b].window);
                let id = self.answers.len();
                self.answers.push(Answer {
                    frame: i,
                    onu,
                    burst,
                    window,
                    result: *result,
                    missing: None,
                });
                self.events.push((i, Ev::Answer(id)));
                if let Some(w) = window {
                    if let Some(p) = self.pending.remove(&(onu, w)) {
                        self.finish_repair(p, Some(w));
                    }
                    if *result == ResultCode::ProcessingError {
                        self.pending.insert(
                            (onu, w),
                            PendingRepair {
                                answer: id,
                                sections: BTreeSet::new(),
                                last_ar: None,
                            },
                        );
                    }
                }
            }
            (
                Body::StartDownload {
                    window_size,
                    image_size,
                    ..
                },
                Direction::Downstream,
            ) => {
                if let Some(onu) = f.onu() {
                    let inst = f.me_instance;
                    self.close((Dest::Onu(onu), inst));
                    self.streams.remove(&(Dest::Onu(onu), inst));
                    // A Start may open a new group download (a new wave): the group's next
                    // whole window 0 then begins it (see `close`).
                    self.group_restart.insert(inst);
                    self.onu_target.insert(onu, inst);
                    self.onu_window.insert(onu, *window_size);
                    self.image_size.insert(inst, *image_size);
                    self.group_window.entry(inst).or_insert(*window_size);
                }
                self.events.push((i, Ev::Frame(i)));
            }
            (
                Body::StartDownloadResponse {
                    result,
                    window_size,
                },
                Direction::Upstream,
            ) => {
                if let Some(onu) = f.onu()
                    && result.is_success()
                {
                    self.onu_window.insert(onu, *window_size);
                    self.group_window.insert(f.me_instance, *window_size);
                }
                self.events.push((i, Ev::Frame(i)));
            }
            (Body::EndDownload { .. }, Direction::Downstream) => {
                if let Some(onu) = f.onu() {
                    self.close((Dest::Onu(onu), f.me_instance));
                }
                self.events.push((i, Ev::Frame(i)));
            }
            _ => self.events.push((i, Ev::Frame(i))),
        }
    }

    /// Closes the open burst of `key` (if any): recovers its window and records it.
    fn close(&mut self, key: (Dest, u16)) {
        let Some(mut b) = self.open.remove(&key) else {
            return;
        };
        let (dest, inst) = key;
        let ws = match dest {
            Dest::Group => self.group_window.get(&inst).copied(),
            Dest::Onu(o) => self.onu_window.get(&o).copied(),
        }
        .unwrap_or(0);
        let datas: Vec<&[u8]> = b
            .frames
            .iter()
            .map(|&i| match &self.frames[i].body {
                Body::Section { data, .. } => data.as_slice(),
                _ => &[],
            })
            .collect();
        let keys: Vec<(u16, u8, u64)> = b
            .sections
            .iter()
            .zip(&datas)
            .map(|(&s, d)| (ws, s, data_hash(d)))
            .collect();
        // Windows holding every section of the burst.
        let mut candidates: Option<BTreeSet<u32>> = None;
        for k in &keys {
            let has: BTreeSet<u32> = self
                .catalog
                .index
                .get(k)
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default();
            candidates = Some(match candidates {
                None => has,
                Some(c) => c.intersection(&has).copied().collect(),
            });
        }
        let candidates = candidates.unwrap_or_default();
        b.full = b.ar.is_some()
            && b.sections
                .iter()
                .enumerate()
                .all(|(n, &s)| usize::from(s) == n);
        let group_key = match dest {
            Dest::Onu(o) => self.onu_target.get(&o).map(|&t| (Dest::Group, t)),
            Dest::Group => None,
        };
        let stream = self.streams.entry(key).or_default();
        let next = stream.next_new;
        let sent_here = |w: &u32, streams: &HashMap<(Dest, u16), Stream>| {
            streams.get(&key).is_some_and(|s| s.sent.contains(w))
                || group_key.is_some_and(|g| streams.get(&g).is_some_and(|s| s.sent.contains(w)))
        };
        let window = if candidates.contains(&next) {
            Some(next)
        } else if !candidates.is_empty() {
            let sent: Vec<u32> = candidates
                .iter()
                .copied()
                .filter(|w| sent_here(w, &self.streams))
                .collect();
            if sent.is_empty() && b.full && !self.catalog.sections.contains_key(&(ws, next)) {
                // The same bytes as an older window, but a whole window never sent here: the
                // next one (an image with repeated contents).
                Some(next)
            } else {
                sent.last().copied().or_else(|| candidates.first().copied())
            }
        } else if b.full {
            Some(next)
        } else {
            None
        };
        if dest == Dest::Group && self.group_restart.remove(&inst) && window == Some(0) && b.full {
            // A whole window 0 after a Start: a new group download begins.
            self.streams.remove(&key);
        }
        if let Some(w) = window {
            b.repeat = sent_here(&w, &self.streams);
            let stream = self.streams.entry(key).or_default();
            if w >= stream.next_new {
                stream.next_new = w + 1;
            }
            stream.sent.insert(w);
            for k in keys {
                let v = self.catalog.index.entry(k).or_default();
                if !v.contains(&w) {
                    v.push(w);
                }
            }
            if b.full {
                self.catalog
                    .sections
                    .entry((ws, w))
                    .or_insert(b.sections.len());
                // The window CRC covers the window's image bytes: the zero padding of the
                // image's last section is not part of it.
                let mut bytes: Vec<u8> = datas.concat();
                if let (Some(&size), Some(first)) = (self.image_size.get(&inst), datas.first()) {
                    let start = u64::from(w) * u64::from(ws) * first.len() as u64;
                    let left = u64::from(size).saturating_sub(start);
                    if left < bytes.len() as u64 {
                        bytes.truncate(left as usize);
                    }
                }
                b.crc = Some(omci_codec::crc::crc32_bzip2(&bytes));
            }
        }
        b.window = window;
        let id = self.bursts.len();
        let anchor = *b.frames.last().unwrap_or(&0);
        if b.ar.is_some()
            && let Some(&last) = b.frames.last()
        {
            self.ar_index
                .insert((dest, inst, self.frames[last].tci), id);
        }
        // Repairs: sections sent again after an ONU said some were missing.
        if let Some(w) = window {
            for ((onu, pw), p) in self.pending.iter_mut() {
                let reaches = match dest {
                    Dest::Onu(o) => o == *onu,
                    Dest::Group => self.onu_target.get(onu) == Some(&inst),
                };
                if *pw == w && reaches {
                    p.sections.extend(b.sections.iter().copied());
                    if b.ar.is_some() {
                        p.last_ar = b.ar;
                    }
                }
            }
        }
        self.bursts.push(b);
        self.events.push((anchor, Ev::Burst(id)));
    }

    /// Tells a processing error how many sections its repair carried.
    fn finish_repair(&mut self, p: PendingRepair, window: Option<u32>) {
        let mut s = p.sections;
        let whole = window.and_then(|w| {
            let ws = self.onu_window.get(&self.answers[p.answer].onu).copied()?;
            self.catalog.sections.get(&(ws, w)).copied()
        });
        if s.is_empty() || whole.is_some_and(|n| s.len() >= n) {
            return; // nothing sent again, or the whole window: the count is unknown
        }
        // The closing AR section is sent again whether it was missing or not.
        if let Some(ar) = p.last_ar {
            s.remove(&ar);
        }
        if !s.is_empty() {
            self.answers[p.answer].missing = Some(s.len());
        }
    }
}

pub(super) fn ev_frame(a: &Analysis<'_>, e: Ev) -> usize {
    match e {
        Ev::Burst(b) => a.bursts[b].frames[0],
        Ev::Answer(x) => a.answers[x].frame,
        Ev::Frame(f) | Ev::FileStart(f) => f,
    }
}
