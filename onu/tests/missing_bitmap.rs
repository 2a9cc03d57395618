//! The contract between the ONU and the OLT about the missing-section bitmap (docs/wire.md,
//! docs/olt.md "Reboots"): a processing error answered to a window's AR section carries the
//! bitmap of what that window misses **whenever a download is in progress**, and only then.
//! An answer without the bitmap therefore means "no download in progress" (the ONU rebooted),
//! and the OLT starts again. One test per way a window can fail.

mod harness;

use std::borrow::Cow;
use std::cell::Cell;
use std::io;
use std::rc::Rc;

use harness::*;
use omci_codec::contents::*;
use omci_codec::crc::crc32_bzip2;
use omci_codec::envelope::Envelope;
use omci_codec::{Format, Message, ResultCode, WindowNo};
use onu::flash::{Flash, MemFlash};

/// The sections the bitmap of the ONU's last answer names; `None` without a bitmap.
fn named_missing<F: Flash>(lab: &Lab<F>) -> Option<Vec<u32>> {
    let m = lab.envelopes.last().expect("an answer").missing?;
    Some(
        (0..256u32)
            .filter(|n| m[(n / 8) as usize] & (1 << (n % 8)) != 0)
            .collect(),
    )
}

/// Sends `msg` as a section of window `w` by unicast (with `crc` as its window CRC); the
/// answer's result.
fn send<F: Flash + Clone>(
    lab: &mut Lab<F>,
    w: u32,
    crc: Option<u32>,
    msg: &Message<'_>,
) -> Option<ResultCode> {
    let env = Envelope {
        window_no: Some(WindowNo(w)),
        window_crc: crc,
        ..Envelope::omcc(ONU)
    };
    let r = lab.send_with(env, msg);
    r.first().and_then(|m| m.contents.result())
}

#[test]
fn without_a_download_a_processing_error_carries_no_bitmap() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 600);
    let ar = lab.section(1, 0, &v2[..31], true);
    assert_eq!(
        send(&mut lab, 0, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), None, "before any Start");
    // After a download ended, and after one was discarded by a power cut.
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    let ar = lab.section(1, 15, &v2[..31], true);
    assert_eq!(
        send(&mut lab, 0, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), None, "after End");
    lab.start(1, v2.len(), 16);
    lab.send_window(1, &v2, 16, 0, &[]);
    lab.power_cycle();
    assert_eq!(
        send(&mut lab, 1, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(
        named_missing(&lab),
        None,
        "after a reboot during the download"
    );
}

#[test]
fn a_missing_section_is_named() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    assert_eq!(
        lab.send_window(1, &v2, 16, 0, &[2, 9]),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![2, 9]));
}

#[test]
fn a_window_crc_failure_names_every_section_of_the_cleared_window() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    for (n, chunk) in chunks.iter().enumerate().take(15) {
        let m = lab.section(1, n as u8, chunk, false);
        send(&mut lab, 0, None, &m);
    }
    let close = lab.section(1, 15, chunks[15], true);
    let wrong = crc32_bzip2(&v2[..16 * 31]) ^ 1;
    assert_eq!(
        send(&mut lab, 0, Some(wrong), &close),
        Some(ResultCode::ProcessingError)
    );
    // The window was cleared (it is written again when repeated): all of it is missing.
    assert_eq!(named_missing(&lab), Some((0..16).collect()));
}

#[test]
fn a_window_beyond_the_horizon_names_every_section_of_that_window() {
    let mut lab = Lab::new();
    // Windows of 2 sections: 330 windows, far more than the 64 tracked ahead.
    let v2 = image("V2", 2, 20_000);
    lab.start(1, v2.len(), 2);
    let inner = lab.section(1, 0, &v2[..31], false);
    send(&mut lab, 70, None, &inner);
    let ar = lab.section(1, 1, &v2[31..62], true);
    assert_eq!(
        send(&mut lab, 70, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![0, 1]));
}

#[test]
fn a_window_past_the_images_end_names_a_whole_window() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 600); // 2 windows of 16
    lab.start(1, v2.len(), 16);
    let ar = lab.section(1, 15, &v2[..31], true);
    assert_eq!(
        send(&mut lab, 9, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some((0..16).collect()));
}

#[test]
fn an_ar_section_past_the_windows_end_names_what_the_window_misses() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    for (n, chunk) in chunks.iter().enumerate().take(16) {
        if n != 4 {
            let m = lab.section(1, n as u8, chunk, false);
            send(&mut lab, 0, None, &m);
        }
    }
    // Section 16 of a window of 16 sections (0..=15), with AR.
    let beyond = lab.section(1, 16, chunks[16], true);
    assert_eq!(
        send(&mut lab, 0, None, &beyond),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![4]));
}

/// An extended Start of `img` into image 1, windows of `window` sections.
fn extended_start(lab: &mut Lab, img: &[u8], window: u16) {
    let start = Message::new(
        lab.next_tci(),
        Format::Extended,
        sw(1),
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: (window - 1) as u8,
            image_size: img.len() as u32,
            instances: [1u16].into_iter().collect(),
        }),
    );
    let r = lab.send_with(Envelope::omcc(ONU), &start);
    assert_eq!(r[0].contents.result(), Some(ResultCode::Success));
}

fn extended_section(lab: &mut Lab, n: u8, data: &[u8], ar: bool) -> Message<'static> {
    Message::new(
        lab.next_tci(),
        Format::Extended,
        sw(1),
        Contents::DownloadSectionRequest(DownloadSectionRequest {
            section_number: n,
            data: Cow::Owned(data.to_vec()),
        }),
    )
    .with_ar(ar)
}

#[test]
fn an_ar_section_before_the_section_size_is_known_names_a_whole_window() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 5000);
    extended_start(&mut lab, &v2, 4);
    // The first section the ONU sees is window 1's AR section: it cannot tell the size.
    let ar = extended_section(&mut lab, 3, &v2[..500], true);
    assert_eq!(
        send(&mut lab, 1, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![0, 1, 2, 3]));
}

#[test]
fn an_ar_section_of_the_wrong_size_names_what_the_window_misses() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 5000);
    extended_start(&mut lab, &v2, 4);
    for n in 0..3u8 {
        let m = extended_section(&mut lab, n, &v2[usize::from(n) * 500..][..500], false);
        send(&mut lab, 0, None, &m);
    }
    // 400 bytes in a download of 500-byte sections, not the image's last section.
    let ar = extended_section(&mut lab, 3, &v2[1500..1900], true);
    assert_eq!(
        send(&mut lab, 0, None, &ar),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![3]));
}

/// Flash whose slot writes fail while `failing` is set (a worn-out block).
#[derive(Clone, Debug, Default)]
struct FailingFlash {
    inner: MemFlash,
    failing: Rc<Cell<bool>>,
}

impl Flash for FailingFlash {
    fn slot_len(&mut self, slot: u8) -> io::Result<u64> {
        self.inner.slot_len(slot)
    }
    fn read_slot(&mut self, slot: u8, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_slot(slot, offset, buf)
    }
    fn write_slot(&mut self, slot: u8, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.failing.get() {
            return Err(io::Error::other("a worn-out block"));
        }
        self.inner.write_slot(slot, offset, data)
    }
    fn erase_slot(&mut self, slot: u8) -> io::Result<()> {
        self.inner.erase_slot(slot)
    }
    fn sync_slot(&mut self, slot: u8) -> io::Result<()> {
        self.inner.sync_slot(slot)
    }
    fn read_meta(&mut self, copy: u8) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_meta(copy)
    }
    fn write_meta(&mut self, copy: u8, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_meta(copy, bytes)
    }
    fn read_rebuild(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_rebuild(offset, buf)
    }
    fn write_rebuild(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.failing.get() {
            return Err(io::Error::other("a worn-out block"));
        }
        self.inner.write_rebuild(offset, data)
    }
    fn erase_rebuild(&mut self) -> io::Result<()> {
        self.inner.erase_rebuild()
    }
    fn promote_rebuild(&mut self, slot: u8) -> io::Result<()> {
        self.inner.promote_rebuild(slot)
    }
}

#[test]
fn a_window_the_flash_failed_to_write_is_missing_whole_and_written_when_sent_again() {
    let flash = FailingFlash::default();
    let failing = flash.failing.clone();
    let mut lab = Lab::on_flash(|_| {}, flash);
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    let crc = omci_codec::crc::crc32_bzip2(&v2[..16 * 31]);
    // The window is held in memory and written in one call at its AR section: that write
    // fails, so no section of it is held.
    for (n, chunk) in chunks.iter().enumerate().take(15) {
        let m = lab.section(1, n as u8, chunk, false);
        send(&mut lab, 0, Some(crc), &m);
    }
    failing.set(true);
    let close = lab.section(1, 15, chunks[15], true);
    assert_eq!(
        send(&mut lab, 0, Some(crc), &close),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some((0..16).collect()));
    // Sent again to a flash that works, it is written, checked and acknowledged.
    failing.set(false);
    for (n, chunk) in chunks.iter().enumerate().take(16) {
        let m = lab.section(1, n as u8, chunk, n == 15);
        let answer = send(&mut lab, 0, Some(crc), &m);
        if n == 15 {
            assert_eq!(answer, Some(ResultCode::Success));
        }
    }
    let mut written = vec![0u8; 16 * 31];
    lab.flash().inner.read_slot(1, 0, &mut written).unwrap();
    assert_eq!(written, v2[..16 * 31], "the window's bytes are in the slot");
}

#[test]
fn a_section_the_flash_failed_to_write_is_missing_and_named() {
    let flash = FailingFlash::default();
    let failing = flash.failing.clone();
    // No window buffers: each section goes to flash as it arrives (what the ONU does once
    // its buffers are full).
    let mut lab = Lab::on_flash(|cfg| cfg.window_buffer_bytes = 0, flash);
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    for (n, chunk) in chunks.iter().enumerate().take(15) {
        failing.set(n == 6);
        let m = lab.section(1, n as u8, chunk, false);
        send(&mut lab, 0, None, &m);
    }
    failing.set(false);
    // Without a window CRC only the bookkeeping can tell: section 6 was never written.
    let close = lab.section(1, 15, chunks[15], true);
    assert_eq!(
        send(&mut lab, 0, None, &close),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![6]));
    // Section 6 again, then the window closes.
    let m = lab.section(1, 6, chunks[6], false);
    send(&mut lab, 0, None, &m);
    let close = lab.section(1, 15, chunks[15], true);
    assert_eq!(send(&mut lab, 0, None, &close), Some(ResultCode::Success));
    // The AR section itself not written: still an answer, naming it.
    for (n, chunk) in chunks[16..31].iter().enumerate() {
        let m = lab.section(1, n as u8, chunk, false);
        send(&mut lab, 1, None, &m);
    }
    failing.set(true);
    let close = lab.section(1, 15, chunks[31], true);
    assert_eq!(
        send(&mut lab, 1, None, &close),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(named_missing(&lab), Some(vec![15]));
}
