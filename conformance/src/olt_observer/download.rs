//! The download as the ONU sees it, rebuilt from the exchange: which image, the window agreed
//! at Start, which window each Download section belongs to, which sections of each open
//! window arrived, which windows the ONU acknowledged. The section rules (`window-exceeded`,
//! `sections-skip`, `ar-before-last`) are judged against it.
//!
//! It follows the ONU's own bookkeeping (G.988 I.3, A.3.22): a section without a window
//! number in the envelope (a strictly G.988 OLT) belongs to the next window the ONU expects,
//! unless its TCI and section number were seen lately (a retransmission); a section of a
//! window the ONU already acknowledged is a repeat, and no rule looks at it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use omci_codec::contents::BASELINE_SECTION_DATA_LEN;
use omci_codec::windowing::WINDOW_HORIZON;
use omci_codec::{Format, Windowing};

/// Sections remembered by TCI for a download without window numbers: two windows' worth.
const RECENT_SECTIONS: usize = 512;

/// A download in progress, as the ONU accepted it.
#[derive(Debug)]
pub(super) struct Download {
    /// The software image instance it goes to.
    pub(super) instance: u16,
    image_size: u32,
    /// What the ONU answered Start with (it may be lower than the OLT's proposal).
    window_size: u16,
    /// Data bytes per section: 31 on baseline frames; on extended frames learned from a
    /// section that cannot be the image's shorter last one.
    section_len: Option<u32>,
    /// Every window below this one was acknowledged.
    next_window: u32,
    /// The open windows at or after `next_window`.
    windows: BTreeMap<u32, Window>,
    /// Windows after `next_window` already acknowledged (multicast windows are pipelined).
    acked_ahead: BTreeSet<u32>,
    /// Without window numbers: the window of recent sections by (TCI, section number).
    recent: VecDeque<(u16, u8, u32)>,
    /// Sections of this download came from the multicast group: its repairs to one ONU then
    /// carry only what that ONU misses, and `sections-skip` does not apply.
    group_seen: bool,
}

/// What arrived of one open window.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    /// A bit per section number.
    sections: [u64; 4],
    /// Its AR section was answered with processing error: what follows is a repair, not a
    /// first pass.
    answered: bool,
}

impl Window {
    fn highest(&self) -> Option<u16> {
        (0..256u16)
            .rev()
            .find(|k| self.sections[usize::from(*k) / 64] & (1 << (k % 64)) != 0)
    }

    fn set(&mut self, n: u8) {
        self.sections[usize::from(n / 64)] |= 1 << (n % 64);
    }
}

/// One Download section, as the observer saw it arrive.
pub(super) struct Section {
    pub(super) tci: u16,
    pub(super) number: u8,
    pub(super) ar: bool,
    /// Bytes of data it carries.
    pub(super) len: u32,
    /// The window number of the lab's envelope, if it carried one.
    pub(super) window_no: Option<u32>,
    /// It came on the multicast download port.
    pub(super) multicast: bool,
}

/// What a section broke, and what its AR answer will say.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Rules broken, with their detail.
    pub(super) broken: Vec<(super::Rule, String)>,
    /// The section closes this window: its answer says whether the window is complete.
    pub(super) closes: Option<u32>,
}

impl Download {
    /// The download the ONU accepted: `image_size` bytes in `format`, windows of
    /// `window_size`.
    pub(super) fn new(instance: u16, image_size: u32, window_size: u16, format: Format) -> Self {
        Download {
            instance,
            image_size,
            window_size,
            section_len: (format == Format::Baseline).then_some(BASELINE_SECTION_DATA_LEN as u32),
            next_window: 0,
            windows: BTreeMap::new(),
            acked_ahead: BTreeSet::new(),
            recent: VecDeque::new(),
            group_seen: false,
        }
    }

    fn is_held(&self, w: u32) -> bool {
        w < self.next_window || self.acked_ahead.contains(&w)
    }

    /// A Download section for this download arrived.
    pub(super) fn section(&mut self, s: &Section) -> Seen {
        let mut seen = Seen::default();
        let n = s.number;
        let window = match s.window_no {
            Some(w) => w,
            None => match self
                .recent
                .iter()
                .find(|(t, sn, _)| *t == s.tci && *sn == n)
            {
                Some(&(_, _, w)) => w,
                None => {
                    if self.recent.len() >= RECENT_SECTIONS {
                        self.recent.pop_front();
                    }
                    self.recent.push_back((s.tci, n, self.next_window));
                    self.next_window
                }
            },
        };
        if self.section_len.is_none() && (!s.ar || (window == 0 && n == 0)) {
            self.section_len = Some(s.len);
        }
        let Some(section_len) = self.section_len else {
            return seen; // the ONU cannot place it yet
        };
        let cut = Windowing::new(self.image_size, self.window_size, section_len);
        if window >= cut.windows() {
            return seen; // past the image: dropped, no rule of the OLT's window
        }
        if u32::from(n) >= cut.sections_in(window) {
            seen.broken.push((
                super::Rule::WindowExceeded,
                format!(
                    "section {n} in window {window}: section {n} is past the window's end (the agreed window is smaller)"
                ),
            ));
            return seen;
        }
        let offset = cut.offset(window, u32::from(n));
        if window >= self.next_window + WINDOW_HORIZON
            || (s.len != section_len && offset + u64::from(s.len) != u64::from(self.image_size))
        {
            return seen; // dropped by the ONU, counted as missing
        }
        if self.is_held(window) {
            return seen; // a repeat of a window the ONU has
        }
        self.group_seen |= s.multicast;
        let group_seen = self.group_seen;
        let state = self.windows.entry(window).or_default();
        let highest = state.highest();
        // Only windows that travel on the ONU's own channel, on their first pass.
        let skipped = !group_seen
            && !state.answered
            && match highest {
                None => n > 0 && !s.ar,
                Some(h) => u16::from(n) > h + 1,
            };
        if skipped {
            let from = highest.map_or("the window's start".to_string(), |h| format!("section {h}"));
            seen.broken.push((
                super::Rule::SectionsSkip,
                format!("window {window}: section {n} follows {from} on a first pass"),
            ));
        }
        state.set(n);
        if s.ar {
            let expected = cut.sections_in(window);
            if u32::from(n) + 1 < expected {
                seen.broken.push((
                    super::Rule::ArBeforeLast,
                    format!(
                        "AR set on section {n} of window {window}, which has {expected} sections"
                    ),
                ));
            }
            seen.closes = Some(window);
        }
        seen
    }

    /// The ONU acknowledged `window` with success.
    pub(super) fn acknowledged(&mut self, window: u32) {
        self.windows.remove(&window);
        if window == self.next_window {
            self.next_window += 1;
            while self.acked_ahead.remove(&self.next_window) {
                self.next_window += 1;
            }
        } else if window > self.next_window {
            self.acked_ahead.insert(window);
        }
    }

    /// The ONU answered `window`'s AR section with processing error: a repair follows.
    pub(super) fn refused(&mut self, window: u32) {
        if let Some(w) = self.windows.get_mut(&window) {
            w.answered = true;
        }
    }
}
