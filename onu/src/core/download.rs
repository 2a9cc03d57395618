//! The software download (G.988 A.3.19 to A.3.22, I.3): Start, which erases the target and
//! agrees the window; Download sections, written to flash as they arrive, placed by the
//! window geometry ([`Windowing`]) and the window number of the lab's envelope; the AR
//! section that closes a window, answered with success or with processing error and the
//! missing-section bitmap (docs/wire.md, "The bitmap's contract"); discarding a download.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use omci_codec::contents::{
    Contents, DownloadSectionRequest, DownloadSectionResponse, InstanceResult,
    StartSoftwareDownloadRequest, StartSoftwareDownloadResponse,
};
use omci_codec::envelope::{Envelope, MISSING_LEN};
use omci_codec::software_image::SoftwareImageId;
use omci_codec::{Format, Message, ResultCode, WindowNo, Windowing};

use super::{Onu, OnuEvent, WINDOW_HORIZON};
use crate::faults::FaultPoint;
use crate::flash::Flash;
use crate::meta::SlotMeta;
use pon::firmware as image;

/// A download in progress: the target, the agreed window, and which sections arrived.
#[derive(Clone, Debug)]
pub(super) struct Download {
    pub(super) slot: u8,
    pub(super) instance: u16,
    pub(super) image_size: u32,
    window_size: u16,
    /// Data bytes per section: 31 on baseline frames, the first section's length on extended.
    section_len: Option<u32>,
    /// Every window below this one is complete and was acknowledged.
    next_window: u32,
    /// Sections received per window at or after `next_window`.
    windows: BTreeMap<u32, WindowState>,
    /// Windows at or after `next_window` already acknowledged with success.
    acked_ahead: BTreeSet<u32>,
    /// Without window numbers in the envelope (an OLT that sends strictly G.988), which
    /// window recent sections went to, by (TCI, section number): a retransmitted request
    /// carries its TCI again, so a section repeated after its window was acknowledged (a
    /// retransmitted AR section whose answer was lost, or a duplicate) is recognised and
    /// never written into the next window.
    recent: VecDeque<(u16, u8, u32)>,
    /// Window buffers no longer in use, kept for the next windows (no allocation per window).
    spare: Vec<Vec<u8>>,
    /// Bytes of the window buffers in `windows`.
    buffered: usize,
    /// At most this many.
    buffer_budget: usize,
    pub(super) last_activity: Instant,
}

/// Sections remembered by TCI for a download without window numbers: two windows' worth.
const RECENT_SECTIONS: usize = 512;

impl Download {
    /// How the image is cut into windows and sections (the one definition the OLT and the
    /// conformance suite use too), once the section size is known.
    fn geometry(&self) -> Option<Windowing> {
        self.section_len
            .map(|sl| Windowing::new(self.image_size, self.window_size, sl))
    }

    fn is_held(&self, w: u32) -> bool {
        w < self.next_window || self.acked_ahead.contains(&w)
    }

    /// The state of window `w`, created on its first section with a buffer for its bytes
    /// while the window buffers have room.
    fn window_state(&mut self, w: u32, g: &Windowing) -> &mut WindowState {
        if !self.windows.contains_key(&w) {
            let r = g.window_range(w);
            let len = (r.end - r.start) as usize;
            let buffer = (self.buffered + len <= self.buffer_budget).then(|| {
                self.buffered += len;
                let mut b = self.spare.pop().unwrap_or_default();
                b.clear();
                b.resize(len, 0);
                b
            });
            self.windows.insert(
                w,
                WindowState {
                    buffer,
                    ..WindowState::default()
                },
            );
        }
        self.windows.entry(w).or_default()
    }

    /// Forgets window `w`'s sections, keeping its buffer for another window.
    fn forget_window(&mut self, w: u32) {
        if let Some(b) = self.windows.remove(&w).and_then(|s| s.buffer) {
            self.buffered -= b.len();
            self.spare.push(b);
        }
    }

    pub(super) fn complete(&self) -> bool {
        self.geometry()
            .is_some_and(|g| self.next_window >= g.windows())
    }

    /// The sections of window `w` this ONU misses, as the lab's envelope carries them with a
    /// processing error (docs/wire.md): every section the window holds that has not arrived.
    /// When the window's sections are not known (the section size is not learned yet, or the
    /// window lies outside the image), every section of a full window.
    fn missing(&self, w: u32) -> [u8; MISSING_LEN] {
        let expected = match self.geometry().map(|g| g.sections_in(w)) {
            Some(n) if n > 0 => n,
            _ => u32::from(self.window_size),
        };
        let held = self.windows.get(&w).map_or([0; 4], |s| s.sections);
        let mut missing = [0u8; MISSING_LEN];
        for n in 0..expected.min(256) {
            if held[(n / 64) as usize] & (1 << (n % 64)) == 0 {
                missing[(n / 8) as usize] |= 1 << (n % 8);
            }
        }
        missing
    }
}

/// Which sections of a window arrived, whether any came from the multicast group (such a
/// window closes only with a matching window CRC: a rogue sender cannot slip a section in),
/// and, unless the window buffers are full, the window's bytes received so far.
#[derive(Clone, Debug, Default)]
struct WindowState {
    sections: [u64; 4],
    from_group: bool,
    /// The window's bytes, held until its AR section: checked there from memory and written
    /// to the slot with one call (G.988 lets an ONU hold a window until it answers it).
    /// `None`: the window's sections went to the slot as they came (the buffers were full).
    buffer: Option<Vec<u8>>,
}

/// Bytes of windows held in memory at once unless configured otherwise
/// ([`super::OnuConfig::window_buffer_bytes`]): the ONU's memory stays bounded whatever the
/// window size and however far ahead the OLT sends.
pub(super) const WINDOW_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Sets bit `n` of a 256-bit section set; true when it was not set before.
fn set_bit(bits: &mut [u64; 4], n: u8) -> bool {
    let (w, b) = (usize::from(n / 64), n % 64);
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    !was
}

/// Clears bit `n` of a 256-bit section set.
fn clear_bit(bits: &mut [u64; 4], n: u8) {
    bits[usize::from(n / 64)] &= !(1 << (n % 64));
}

fn count_prefix(bits: &[u64; 4], n: u32) -> bool {
    (0..n).all(|i| bits[(i / 64) as usize] & (1 << (i % 64)) != 0)
}

impl<F: Flash> Onu<F> {
    pub(super) fn discard_download(&mut self, reason: &str) {
        if self.download.take().is_some() {
            self.events.push_back(OnuEvent::DownloadDiscarded {
                reason: reason.to_string(),
            });
        }
        self.verification = None;
    }

    pub(super) fn on_start(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        r: &StartSoftwareDownloadRequest,
    ) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        let refusal = if slot == self.running {
            Some("the target is the active image".to_string())
        } else if slot == self.meta.committed {
            Some("the target is the committed image".to_string())
        } else if r.image_size < (image::HEADER_LEN + image::SIGNATURE_LEN) as u32 {
            Some("the image is too small to be an image".to_string())
        } else if u64::from(r.image_size) > self.cfg.slot_size {
            Some(format!(
                "the image ({} bytes) is larger than the slot ({} bytes)",
                r.image_size, self.cfg.slot_size
            ))
        } else if r.instances.iter().any(|i| *i != msg.me.instance) {
            Some("the instance list names another image".to_string())
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.events.push_back(OnuEvent::StartRefused { reason });
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        // A new Start discards any partial download and invalidates the target slot.
        self.discard_download("a new Start software download");
        let was_valid = self.meta.slots[usize::from(slot)].valid;
        self.meta.slots[usize::from(slot)] = SlotMeta {
            image_len: u64::from(r.image_size),
            ..SlotMeta::default()
        };
        if !self.persist() {
            return;
        }
        if let Err(e) = self.flash.erase_slot(slot) {
            self.drop_frame(format!("flash erase failed: {e}"));
            return self.respond_code(msg, ResultCode::ProcessingError);
        }
        let window_size = r.window_size().min(self.cfg.max_window_size.clamp(1, 256));
        self.download = Some(Download {
            slot,
            instance: msg.me.instance,
            image_size: r.image_size,
            window_size,
            section_len: (msg.format == Format::Baseline)
                .then_some(omci_codec::contents::BASELINE_SECTION_DATA_LEN as u32),
            next_window: 0,
            windows: BTreeMap::new(),
            acked_ahead: BTreeSet::new(),
            recent: VecDeque::new(),
            spare: Vec::new(),
            buffered: 0,
            buffer_budget: self.cfg.window_buffer_bytes,
            last_activity: now,
        });
        self.events.push_back(OnuEvent::DownloadStarted {
            slot,
            image_size: r.image_size,
            window_size,
        });
        self.respond(
            msg,
            Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                result: ResultCode::Success,
                window_size_minus_one: (window_size - 1) as u8,
                instances: [InstanceResult {
                    me_instance: msg.me.instance,
                    result: ResultCode::Success,
                }]
                .into_iter()
                .collect(),
            }),
        );
        if was_valid {
            self.notify_flags(slot);
        }
    }

    pub(super) fn on_section(
        &mut self,
        now: Instant,
        env: &Envelope,
        msg: &Message<'_>,
        s: &DownloadSectionRequest<'_>,
        multicast: bool,
    ) {
        // Sections are written once: a repeated or re-multicast section is counted, not
        // rewritten (a window whose CRC failed is cleared, and so is written again).
        let n = s.section_number;
        let Some(d) = self.download.as_mut() else {
            if msg.ar && !multicast {
                self.respond_section(msg, ResultCode::ProcessingError, n);
            } else {
                self.drop_frame("Download section without a download in progress");
            }
            return;
        };
        if msg.me.instance != d.instance {
            if multicast {
                return self.drop_frame("multicast section for another image");
            }
            return self.respond_section(msg, ResultCode::ParameterError, n);
        }
        d.last_activity = now;
        let window = match env.window_no {
            Some(w) => w.0,
            None => {
                let tci = msg.tci.0;
                match d.recent.iter().find(|(t, sn, _)| *t == tci && *sn == n) {
                    Some(&(_, _, w)) => w,
                    None => {
                        if d.recent.len() >= RECENT_SECTIONS {
                            d.recent.pop_front();
                        }
                        d.recent.push_back((tci, n, d.next_window));
                        d.next_window
                    }
                }
            }
        };
        let len = s.data.len() as u32;
        // The section size of an extended download is learned from a section that cannot be
        // the image's (shorter) last one: a section without AR, or the image's first section.
        if d.section_len.is_none() && (!msg.ar || (window == 0 && n == 0)) {
            d.section_len = Some(len);
        }
        let problem = match d.geometry() {
            None => Some("the section size is not known yet".to_string()),
            Some(g) => {
                let offset = g.offset(window, u32::from(n));
                if window >= g.windows() {
                    Some(format!("window {window} is past the image's end"))
                } else if u32::from(n) >= g.sections_in(window) {
                    Some(format!("section {n} is past the window's end"))
                } else if window >= d.next_window + WINDOW_HORIZON {
                    Some(format!("window {window} is beyond the horizon"))
                } else if len != g.section_len && offset + u64::from(len) != u64::from(d.image_size)
                {
                    Some(format!(
                        "a section of {len} bytes in a download of {}-byte sections",
                        g.section_len
                    ))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            // Counted as missing: the window's AR section reports it, with what the window
            // misses (a download is in progress: docs/wire.md's contract).
            let missing = d.missing(window);
            self.drop_frame(p);
            if msg.ar && !multicast {
                self.refuse_section(msg, n, missing);
            }
            return;
        }
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let Some(g) = d.geometry() else {
            return; // known: no problem above
        };
        if d.is_held(window) {
            // A repeated or re-multicast window this ONU already has: never rewrite it.
            self.counters.sections_duplicate += 1;
            if msg.ar {
                self.respond_section(msg, ResultCode::Success, n);
            }
            return;
        }
        // The image's bytes of this section (a baseline frame pads the image's last one).
        let range = g.section_range(window, u32::from(n));
        let offset = range.start;
        let useful = (range.end - range.start) as usize;
        let data = &s.data[..useful.min(s.data.len())];
        let slot = d.slot;
        let window_start = g.window_range(window).start;
        let state = d.window_state(window, &g);
        state.from_group |= multicast;
        if set_bit(&mut state.sections, n) {
            let at = (offset - window_start) as usize;
            if let Some(b) = &mut state.buffer {
                b[at..at + data.len()].copy_from_slice(data);
            }
            if self.faults.reach(FaultPoint::MidSectionWrite) {
                // The power fails while this section's bytes go to flash: with the window
                // buffered, the window's write is torn in the middle of this section.
                let _ = match &state.buffer {
                    Some(b) => self
                        .flash
                        .write_slot(slot, window_start, &b[..at + data.len() / 2]),
                    None => self.flash.write_slot(slot, offset, &data[..data.len() / 2]),
                };
                return self.die(FaultPoint::MidSectionWrite);
            }
            let written = match state.buffer {
                Some(_) => Ok(()),
                None => self.flash.write_slot(slot, offset, data),
            };
            if let Err(e) = written {
                // Not written, so not held: the section is missing, and the window's AR
                // section says so.
                if let Some(state) = self
                    .download
                    .as_mut()
                    .and_then(|d| d.windows.get_mut(&window))
                {
                    clear_bit(&mut state.sections, n);
                }
                self.drop_frame(format!("flash write failed: {e}"));
                if !msg.ar {
                    return;
                }
            } else {
                self.counters.sections_written += 1;
            }
        } else {
            self.counters.sections_duplicate += 1;
        }
        if msg.ar {
            self.close_window(msg, env, window, n, g);
        }
    }

    /// Processing error to the AR section `msg` (section `last`), with the sections its window
    /// misses in the envelope: the lab's extension, so that the OLT repairs those only (the
    /// OMCI answer itself is G.988's processing error).
    fn refuse_section(&mut self, msg: &Message<'_>, last: u8, missing: [u8; MISSING_LEN]) {
        let answer = Message::new(
            msg.tci,
            msg.format,
            msg.me,
            Contents::DownloadSectionResponse(DownloadSectionResponse {
                result: ResultCode::ProcessingError,
                section_number: last,
            }),
        );
        let envelope = Envelope {
            missing: Some(missing),
            ..Envelope::omcc(self.cfg.onu_id)
        };
        self.send_with(envelope, &answer);
    }

    fn respond_section(&mut self, msg: &Message<'_>, result: ResultCode, section_number: u8) {
        self.respond(
            msg,
            Contents::DownloadSectionResponse(DownloadSectionResponse {
                result,
                section_number,
            }),
        );
    }

    /// The AR section of `window` arrived: answer whether the window is complete.
    fn close_window(
        &mut self,
        msg: &Message<'_>,
        env: &Envelope,
        window: u32,
        last: u8,
        g: Windowing,
    ) {
        let Some(d) = self.download.as_mut() else {
            return;
        };
        let expected = g.sections_in(window);
        let (sections, from_group) = d
            .windows
            .get(&window)
            .map_or(([0; 4], false), |s| (s.sections, s.from_group));
        let mut failure = if u32::from(last) + 1 != expected {
            Some(format!(
                "AR on section {last}, the window has {expected} sections"
            ))
        } else if !count_prefix(&sections, expected) && !self.cfg.quirks.no_section_tracking {
            Some("a section is missing".to_string())
        } else if from_group && env.window_crc.is_none() {
            Some("sections came from the group but the AR section carries no window CRC".into())
        } else {
            None
        };
        let (slot, bytes) = (d.slot, g.window_range(window));
        let (window_start, len) = (bytes.start, bytes.end - bytes.start);
        let buffer = d.windows.get(&window).and_then(|s| s.buffer.as_deref());
        if failure.is_none()
            && !self.cfg.quirks.ignore_window_crc
            && let Some(want) = env.window_crc
        {
            // A buffered window is checked in memory, before it is written; one written as
            // it came is checked as written, so that a torn or misplaced write shows.
            let crc = match buffer {
                Some(b) => omci_codec::crc::crc32_bzip2(b),
                None => {
                    let flash = &mut self.flash;
                    image::crc_from(len, &mut |o, b| flash.read_slot(slot, window_start + o, b))
                        .unwrap_or(!want)
                }
            };
            if crc != want {
                self.counters.window_crc_failures += 1;
                failure = Some(format!(
                    "window CRC 0x{crc:08x} of what was received, 0x{want:08x} expected"
                ));
                if let Some(d) = self.download.as_mut() {
                    d.forget_window(window);
                }
            }
        }
        if failure.is_none()
            && let Some(d) = self.download.as_ref()
            && let Some(b) = d.windows.get(&window).and_then(|s| s.buffer.as_deref())
        {
            // The window in one write.
            if let Err(e) = self.flash.write_slot(slot, window_start, b) {
                failure = Some(format!("flash write failed: {e}"));
                if let Some(d) = self.download.as_mut() {
                    d.forget_window(window);
                }
            }
        }
        let window_no = WindowNo(window);
        match failure {
            Some(reason) => {
                self.counters.windows_failed += 1;
                self.events.push_back(OnuEvent::WindowIncomplete {
                    window: window_no,
                    reason,
                });
                // What the window misses (all of it after a window CRC failure: it was
                // cleared).
                let missing = self
                    .download
                    .as_ref()
                    .map_or([0xFF; MISSING_LEN], |d| d.missing(window));
                self.refuse_section(msg, last, missing);
            }
            None => {
                if self.cfg.sync_every_window {
                    let _ = self.flash.sync_slot(slot);
                }
                if let Some(d) = self.download.as_mut() {
                    d.forget_window(window);
                    if window == d.next_window {
                        d.next_window += 1;
                        while d.acked_ahead.remove(&d.next_window) {
                            d.next_window += 1;
                        }
                    } else {
                        d.acked_ahead.insert(window);
                    }
                }
                self.counters.windows_ok += 1;
                self.events
                    .push_back(OnuEvent::WindowComplete { window: window_no });
                self.respond_section(msg, ResultCode::Success, last);
                self.fault(FaultPoint::AfterWindowAck);
            }
        }
    }
}
