//! The analysis both outputs share: the Download sections grouped in bursts (one window's
//! sections to one destination), the window of every burst, the ONUs' answers tied to the
//! windows they answer, and every event in capture order.
//!
//! G.988 numbers sections within a window and never numbers windows; the lab's transport
//! envelope does (the absolute window number of every Download section, the window CRC on a
//! window's AR section, the sections an ONU misses beside its processing error), and the
//! capture keeps each frame's envelope (docs/wire.md). So a burst's window is the one its
//! sections' envelope names, its window CRC the one its AR section carried, and an answer's
//! missing sections the ones its bitmap names: read, not guessed.
//!
//! A burst whose envelope carried no window number (strict G.988, or a capture without
//! envelopes) to one ONU is counted as a G.988 ONU counts: the window after the last one that
//! ONU answered success. Sections to the group always carry their number; without one they
//! are left without a window ("window ?").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
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

impl Dest {
    fn of(peer: Peer) -> Self {
        match peer {
            Peer::Multicast => Dest::Group,
            Peer::Onu(o) => Dest::Onu(o.0),
        }
    }
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
    /// The window: the one the envelope named, or the one counted when it named none.
    pub(super) window: Option<u32>,
    /// True when `window` was counted, not read from the envelope.
    pub(super) counted: bool,
    /// Sections 0..=AR, every one: a whole window.
    pub(super) full: bool,
    /// The window was sent to this destination (or to the ONU's group) before.
    pub(super) repeat: bool,
    /// The window CRC the AR section's envelope carried (whole windows).
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
    /// For a processing error: how many sections the ONU said it misses (its envelope's
    /// bitmap), when it named any.
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

/// Per stream (a destination and an image instance) since its download began: the windows
/// sent, and the window a burst without a window number belongs to (G.988's count).
#[derive(Default)]
struct Stream {
    sent: HashSet<u32>,
    counted: u32,
}

/// Where the window numbers of a capture's bursts come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Numbering {
    /// Every one from the envelope (or there is no burst).
    Envelope,
    /// Every one counted: no envelope named a window.
    Counted,
    /// Some of each.
    Both,
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

impl<'f> Analysis<'f> {
    pub(super) fn new(frames: &'f [Frame]) -> Self {
        let mut b = Builder {
            frames,
            bursts: Vec::new(),
            answers: Vec::new(),
            events: Vec::new(),
            open: BTreeMap::new(),
            streams: HashMap::new(),
            onu_target: HashMap::new(),
            ar_index: HashMap::new(),
            group_restart: HashSet::new(),
        };
        for (i, f) in frames.iter().enumerate() {
            if i > 0 && f.file != frames[i - 1].file {
                // The OLT's first life ended: whatever it was sending stops here.
                b.close_all();
                b.events.push((i, Ev::FileStart(i)));
            }
            b.frame(i, f);
        }
        b.close_all();
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

    /// Where the bursts' window numbers come from.
    pub(super) fn numbering(&self) -> Numbering {
        match (
            self.bursts.iter().any(|b| !b.counted),
            self.bursts.iter().any(|b| b.counted),
        ) {
            (_, false) => Numbering::Envelope,
            (false, true) => Numbering::Counted,
            (true, true) => Numbering::Both,
        }
    }
}

struct Builder<'f> {
    frames: &'f [Frame],
    bursts: Vec<Burst>,
    answers: Vec<Answer>,
    /// (anchor frame, event): sorted by anchor at the end.
    events: Vec<(usize, Ev)>,
    /// Open bursts by (destination, instance).
    open: BTreeMap<(Dest, u16), Burst>,
    streams: HashMap<(Dest, u16), Stream>,
    /// The image instance each ONU downloads into.
    onu_target: HashMap<u16, u16>,
    /// (destination, instance, TCI) of an AR section -> its burst.
    ar_index: HashMap<(Dest, u16, u16), usize>,
    /// Instances a Start was sent for since their group last sent a section.
    group_restart: HashSet<u16>,
}

impl Builder<'_> {
    fn frame(&mut self, i: usize, f: &Frame) {
        match (&f.body, f.direction) {
            (Body::Section { number, .. }, Direction::Downstream) => {
                let dest = Dest::of(f.peer);
                let key = (dest, f.me_instance);
                let window = f.envelope.and_then(|e| e.window_no).map(|w| w.0);
                if self.open.get(&key).is_some_and(|b| {
                    // Numbers go up within a window, and a window keeps its number: this
                    // section begins another.
                    b.sections.last().is_some_and(|&l| *number <= l) || b.window != window
                }) {
                    self.close(key);
                }
                let burst = self.open.entry(key).or_insert_with(|| Burst {
                    dest,
                    instance: f.me_instance,
                    frames: Vec::new(),
                    sections: Vec::new(),
                    ar: None,
                    window,
                    counted: false,
                    full: false,
                    repeat: false,
                    crc: None,
                });
                burst.frames.push(i);
                burst.sections.push(*number);
                if f.ar {
                    burst.ar = Some(*number);
                    burst.crc = f.envelope.and_then(|e| e.window_crc);
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
                if let Some(b) = burst.map(|b| &self.bursts[b])
                    && b.counted
                    && let (Dest::Onu(_), Some(w)) = (b.dest, b.window)
                    && result.is_success()
                {
                    // G.988's count: after a success the OLT sends the next window.
                    let stream = self.streams.entry((b.dest, b.instance)).or_default();
                    stream.counted = stream.counted.max(w + 1);
                }
                let missing = f
                    .envelope
                    .and_then(|e| e.missing)
                    .map(|m| m.iter().map(|b| b.count_ones() as usize).sum())
                    .filter(|&n: &usize| n > 0 && *result == ResultCode::ProcessingError);
                let id = self.answers.len();
                self.answers.push(Answer {
                    frame: i,
                    onu,
                    burst,
                    window,
                    result: *result,
                    missing,
                });
                self.events.push((i, Ev::Answer(id)));
            }
            (Body::StartDownload { .. }, Direction::Downstream) => {
                if let Some(onu) = f.onu() {
                    let inst = f.me_instance;
                    self.close((Dest::Onu(onu), inst));
                    self.streams.remove(&(Dest::Onu(onu), inst));
                    // A Start may open a new group download (a new wave): the group's next
                    // whole window 0 then begins it (see `close`).
                    self.group_restart.insert(inst);
                    self.onu_target.insert(onu, inst);
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

    fn close_all(&mut self) {
        let open: Vec<_> = self.open.keys().copied().collect();
        for key in open {
            self.close(key);
        }
    }

    /// Closes the open burst of `key` (if any): settles its window and records it.
    fn close(&mut self, key: (Dest, u16)) {
        let Some(mut b) = self.open.remove(&key) else {
            return;
        };
        let (dest, inst) = key;
        b.full = b.ar.is_some()
            && b.sections
                .iter()
                .enumerate()
                .all(|(n, &s)| usize::from(s) == n);
        if !b.full {
            b.crc = None;
        }
        if b.window.is_none() && dest != Dest::Group {
            b.window = Some(self.streams.get(&key).map_or(0, |s| s.counted));
            b.counted = true;
        }
        if dest == Dest::Group && self.group_restart.remove(&inst) && b.window == Some(0) && b.full
        {
            // A whole window 0 after a Start: a new group download begins.
            self.streams.remove(&key);
        }
        let group_key = match dest {
            Dest::Onu(o) => self.onu_target.get(&o).map(|&t| (Dest::Group, t)),
            Dest::Group => None,
        };
        if let Some(w) = b.window {
            let sent = |k: &(Dest, u16)| self.streams.get(k).is_some_and(|s| s.sent.contains(&w));
            b.repeat = sent(&key) || group_key.is_some_and(|g| sent(&g));
            self.streams.entry(key).or_default().sent.insert(w);
        }
        let id = self.bursts.len();
        let anchor = *b.frames.last().unwrap_or(&0);
        if b.ar.is_some()
            && let Some(&last) = b.frames.last()
        {
            self.ar_index
                .insert((dest, inst, self.frames[last].tci), id);
        }
        self.bursts.push(b);
        self.events.push((anchor, Ev::Burst(id)));
    }
}

pub(super) fn ev_frame(a: &Analysis<'_>, e: Ev) -> usize {
    match e {
        Ev::Burst(b) => a.bursts[b].frames[0],
        Ev::Answer(x) => a.answers[x].frame,
        Ev::Frame(f) | Ev::FileStart(f) => f,
    }
}
