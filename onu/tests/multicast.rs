//! Download sections through the multicast group (docs/multicast.md): window numbers and the
//! window CRC in the envelope, repeated windows ignored, forged sections caught.

mod harness;

use harness::*;
use omci_codec::crc::crc32_bzip2;
use omci_codec::{ResultCode, WindowNo};
use onu::core::OnuEvent;

/// Sends window `w` of `img` to the group: inner sections without AR, then the AR section with
/// the window CRC. Returns the ONU's answer to the AR section.
fn multicast_window(
    lab: &mut Lab,
    img: &[u8],
    window: usize,
    w: usize,
    skip: &[usize],
) -> Option<ResultCode> {
    let chunks: Vec<&[u8]> = img.chunks(31).collect();
    let first = w * window;
    let last = (first + window).min(chunks.len());
    let crc = crc32_bzip2(&img[first * 31..(last * 31).min(img.len())]);
    let mut answer = None;
    for (i, chunk) in chunks.iter().enumerate().take(last).skip(first) {
        if skip.contains(&(i - first)) {
            continue;
        }
        let ar = i + 1 == last;
        let m = lab.section(1, (i - first) as u8, chunk, ar);
        let r = lab.multicast(w as u32, ar.then_some(crc), &m);
        if ar {
            answer = r.first().and_then(|m| m.contents.result());
        } else {
            assert!(r.is_empty());
        }
    }
    answer
}

/// Windows `from..` of `img` to the group, each acknowledged with success; then End, and the
/// slot must hold `img`.
fn multicast_rest(lab: &mut Lab, img: &[u8], window: usize, from: usize) {
    for w in from..img.len().div_ceil(31 * window) {
        assert_eq!(
            multicast_window(lab, img, window, w, &[]),
            Some(ResultCode::Success),
            "window {w}"
        );
    }
    assert_eq!(lab.finish_end(1, img), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], img);
}

#[test]
fn a_whole_image_arrives_by_multicast() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 4000);
    lab.start(1, v2.len(), 32);
    multicast_rest(&mut lab, &v2, 32, 0);
}

#[test]
fn a_missed_section_is_repaired_by_unicast_and_a_re_multicast_is_ignored() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[5]),
        Some(ResultCode::ProcessingError)
    );
    // Repair by unicast (window number in the envelope).
    assert_eq!(
        lab.send_window(1, &v2, 16, 0, &[]),
        Some(ResultCode::Success)
    );
    // The group gets window 0 again for other ONUs: this one holds it and writes nothing.
    let written = lab.onu().counters().sections_written;
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[]),
        Some(ResultCode::Success)
    );
    assert_eq!(lab.onu().counters().sections_written, written);
    multicast_rest(&mut lab, &v2, 16, 1);
}

#[test]
fn pipelined_windows_are_acknowledged_out_of_order() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    // Window 0 loses a section; windows 1 and 2 arrive whole before window 0 is repaired.
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[0]),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 1, &[]),
        Some(ResultCode::Success)
    );
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 2, &[]),
        Some(ResultCode::Success)
    );
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[]),
        Some(ResultCode::Success)
    );
    multicast_rest(&mut lab, &v2, 16, 3);
}

#[test]
fn a_forged_section_is_caught_by_the_window_crc() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    // A rogue sender gets its section 2 of window 0 in first, with a valid frame CRC.
    let forged = lab.section(1, 2, &[0xEE; 31], false);
    lab.multicast(0, None, &forged);
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[]),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(lab.onu().counters().window_crc_failures, 1);
    assert!(lab.events.iter().any(|e| matches!(e, OnuEvent::WindowIncomplete { window: WindowNo(0), reason } if reason.contains("CRC"))));
    // The window sent again is written again, and checks.
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[]),
        Some(ResultCode::Success)
    );
    multicast_rest(&mut lab, &v2, 16, 1);
}

#[test]
fn multicast_without_a_download_or_for_another_image_is_dropped() {
    let mut lab = Lab::new();
    let m = lab.section(1, 0, &[1; 31], false);
    assert!(lab.multicast(0, None, &m).is_empty());
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    let other = lab.section(0, 0, &[1; 31], false);
    let before = lab.onu().counters().dropped;
    assert!(lab.multicast(0, None, &other).is_empty());
    assert_eq!(lab.onu().counters().dropped, before + 1);
}

#[test]
fn multicast_ar_sections_get_no_answer_from_an_onu_without_a_download() {
    let mut lab = Lab::new();
    let m = lab.section(1, 0, &[1; 31], true);
    assert!(lab.multicast(0, Some(0), &m).is_empty());
}

#[test]
fn a_window_with_sections_from_the_group_needs_the_window_crc() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    // A forged section from the group, then the genuine window by unicast without a CRC.
    let forged = lab.section(1, 2, &[0xEE; 31], false);
    lab.multicast(0, None, &forged);
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    let mut last = None;
    for (i, c) in chunks.iter().enumerate().take(16) {
        let m = lab.section(1, i as u8, c, i == 15);
        let env = omci_codec::envelope::Envelope {
            window_no: Some(WindowNo(0)),
            ..omci_codec::envelope::Envelope::omcc(ONU)
        };
        last = lab
            .send_with(env, &m)
            .first()
            .and_then(|r| r.contents.result());
    }
    assert_eq!(
        last,
        Some(ResultCode::ProcessingError),
        "closed without checking the forged section"
    );
}

#[test]
fn a_processing_error_names_the_missing_sections() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    assert_eq!(
        multicast_window(&mut lab, &v2, 16, 0, &[3, 5]),
        Some(ResultCode::ProcessingError)
    );
    let missing = lab
        .envelopes
        .last()
        .unwrap()
        .missing
        .expect("a missing-section bitmap");
    let named: Vec<usize> = (0..256)
        .filter(|n| missing[n / 8] & (1 << (n % 8)) != 0)
        .collect();
    assert_eq!(named, vec![3, 5]);
    // Sending just those two, then the closing section again, completes the window.
    let chunks: Vec<&[u8]> = v2.chunks(31).collect();
    for n in [3usize, 5] {
        let m = lab.section(1, n as u8, chunks[n], false);
        lab.multicast(0, None, &m);
    }
    let crc = crc32_bzip2(&v2[..16 * 31]);
    let close = lab.section(1, 15, chunks[15], true);
    let r = lab.multicast(0, Some(crc), &close);
    assert_eq!(r[0].contents.result(), Some(ResultCode::Success));
    assert!(
        lab.envelopes.last().unwrap().missing.is_none(),
        "success carries no bitmap"
    );
}
