//! Window geometry of a software download: how an image of `image_size` bytes is cut into
//! windows of Download sections (G.988 clause A.2.28 and I.3), and the window CRC of this lab's
//! multicast extension.
//!
//! Both ends of a download must cut the image the same way: the OLT to send each section and
//! close each window with AR, the ONU to place each section and to know when a window and the
//! whole image are complete. This is the one place that says how, for the OLT's sessions, its
//! multicast group download, the ONU core and the conformance suite alike.
//!
//! ```text
//!  image:    |<------------------------------ image_size ------------------------------>|
//!  windows:  |<-- window 0: window_size sections -->|<-- window 1 -->| ... |<-- last -->|
//!  sections: |s0 |s1 |s2 | ... |s(window_size - 1)|s0 |s1 | ...            |s0 | .. |sk|
//! ```
//!
//! Every section holds `section_len` image bytes (31 on baseline frames; on extended frames the
//! OLT's choice, up to 1965); only the image's last section may hold fewer (baseline frames pad
//! it with zeros). Section numbers restart at 0 in each window; the window number itself never
//! travels in a G.988 frame (this lab's envelope carries it, docs/multicast.md).

use std::ops::Range;

use crate::Format;
use crate::contents::{BASELINE_SECTION_DATA_LEN, EXTENDED_MAX_SECTION_DATA_LEN};
use crate::crc::crc32_bzip2;

/// Windows beyond the next one an ONU still expects that it keeps track of at once: the lab's
/// multicast contract (docs/multicast.md). The OLT pipelines at most this many windows ahead of
/// the oldest one still open; an ONU drops (and counts) sections of windows further ahead.
pub const WINDOW_HORIZON: u32 = 64;

/// The largest window G.988 allows: the Start request's "window size - 1" is one byte.
pub const MAX_WINDOW_SIZE: u16 = 256;

/// How one download cuts its image: sections per window, bytes per section, image size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windowing {
    /// Sections per window, 1..=256: what the ONU accepted at Start.
    pub window_size: u16,
    /// Image bytes per section (at least 1).
    pub section_len: u32,
    /// Bytes of the image, as Start software download announced it.
    pub image_size: u32,
}

impl Windowing {
    /// The geometry for `image_size` bytes in windows of `window_size` sections of
    /// `section_len` bytes; the window is clamped to 1..=256 sections, the section to at least
    /// one byte.
    pub fn new(image_size: u32, window_size: u16, section_len: u32) -> Windowing {
        Windowing {
            window_size: window_size.clamp(1, MAX_WINDOW_SIZE),
            section_len: section_len.max(1),
            image_size,
        }
    }

    /// The section size of `format`: 31 bytes on baseline frames, `extended_section_len`
    /// (clamped to 1..=1965) on extended frames.
    pub fn section_len_for(format: Format, extended_section_len: usize) -> u32 {
        match format {
            Format::Baseline => BASELINE_SECTION_DATA_LEN as u32,
            Format::Extended => extended_section_len.clamp(1, EXTENDED_MAX_SECTION_DATA_LEN) as u32,
        }
    }

    /// Image bytes in a full window.
    pub fn window_bytes(&self) -> u64 {
        u64::from(self.window_size) * u64::from(self.section_len)
    }

    /// Windows the image is cut into (the last may be short).
    pub fn windows(&self) -> u32 {
        u64::from(self.image_size).div_ceil(self.window_bytes()) as u32
    }

    /// The image bytes of window `w` (empty past the image's end).
    pub fn window_range(&self, w: u32) -> Range<u64> {
        let size = u64::from(self.image_size);
        let start = (u64::from(w) * self.window_bytes()).min(size);
        start..(start + self.window_bytes()).min(size)
    }

    /// Sections window `w` holds: `window_size`, fewer in the image's last window, 0 past it.
    pub fn sections_in(&self, w: u32) -> u32 {
        let r = self.window_range(w);
        (r.end - r.start).div_ceil(u64::from(self.section_len)) as u32
    }

    /// The image bytes of section `n` of window `w` (empty when there is no such section).
    pub fn section_range(&self, w: u32, n: u32) -> Range<u64> {
        let window = self.window_range(w);
        let start = (window.start + u64::from(n) * u64::from(self.section_len)).min(window.end);
        start..(start + u64::from(self.section_len)).min(window.end)
    }

    /// Where section `n` of window `w` starts in the image, wherever that is (the ONU checks
    /// the section against the image's end itself).
    pub fn offset(&self, w: u32, n: u32) -> u64 {
        u64::from(w) * self.window_bytes() + u64::from(n) * u64::from(self.section_len)
    }

    /// The data of section `n` of window `w` taken from `image` (the whole image, `image_size`
    /// bytes), zero padded to `section_len` when `pad` is set (baseline frames carry 31 bytes).
    pub fn section<'a>(
        &self,
        image: &'a [u8],
        w: u32,
        n: u32,
        pad: bool,
    ) -> std::borrow::Cow<'a, [u8]> {
        let r = self.section_range(w, n);
        let data = slice(image, r);
        if pad && data.len() < self.section_len as usize {
            let mut v = data.to_vec();
            v.resize(self.section_len as usize, 0);
            std::borrow::Cow::Owned(v)
        } else {
            std::borrow::Cow::Borrowed(data)
        }
    }

    /// The window CRC of this lab's envelope: CRC-32/BZIP2 of window `w`'s bytes of `image`.
    pub fn window_crc(&self, image: &[u8], w: u32) -> u32 {
        crc32_bzip2(slice(image, self.window_range(w)))
    }
}

fn slice(image: &[u8], r: Range<u64>) -> &[u8] {
    let len = image.len() as u64;
    let (start, end) = (r.start.min(len) as usize, r.end.min(len) as usize);
    &image[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_sections_cover_the_image_once() {
        let image: Vec<u8> = (0..1192u32).map(|i| (i * 7) as u8).collect();
        for (w, s) in [(8u16, 31u32), (3, 100), (1, 1965), (256, 31)] {
            let g = Windowing::new(image.len() as u32, w, s);
            let mut joined = Vec::new();
            for win in 0..g.windows() {
                let mut window = Vec::new();
                for n in 0..g.sections_in(win) {
                    window.extend_from_slice(&g.section(&image, win, n, false));
                }
                assert_eq!(
                    g.window_crc(&image, win),
                    crc32_bzip2(&window),
                    "{g:?} {win}"
                );
                joined.extend_from_slice(&window);
            }
            assert_eq!(joined, image, "{g:?}");
            assert_eq!(g.sections_in(g.windows()), 0, "nothing past the end");
        }
        let g = Windowing::new(1192, 8, 31);
        assert_eq!(g.sections_in(4), 7, "the last window is short");
        assert_eq!(
            g.section(&image, 4, 6, true).len(),
            31,
            "baseline sections are padded"
        );
        assert_eq!(
            Windowing::new(10, 0, 0),
            Windowing::new(10, 1, 1),
            "clamped"
        );
        assert_eq!(Windowing::new(10, 999, 1).window_size, 256);
        assert_eq!(Windowing::section_len_for(Format::Extended, 5000), 1965);
        assert_eq!(Windowing::section_len_for(Format::Baseline, 5000), 31);
    }
}
