//! A small multicast rollout written to a capture in memory, and what the diagram and the
//! narration must say of it.

use std::borrow::Cow;
use std::time::Duration;

use omci_codec::contents::{
    AttributeValues, DownloadSectionRequest, DownloadSectionResponse, EndSoftwareDownloadRequest,
    EndSoftwareDownloadResponse, GetRequest, GetResponse, StartSoftwareDownloadRequest,
    StartSoftwareDownloadResponse,
};
use omci_codec::envelope::{ALL_ONUS, MISSING_LEN};
use omci_codec::pcap::{CaptureWriter, Direction, Peer};
use omci_codec::{
    Contents, Envelope, Format, GemPort, MeClass, MeId, Message, OnuId, ResultCode,
    SoftwareImageAttributes, Tci, WindowNo,
};

use super::{Body, Frame, explain, merge_captures, mermaid, read_frames};

const WS: u8 = 4;

/// Writes OMCI frames to a capture in memory, each with the envelope the lab's OLT and ONUs
/// would have put around it (as the OLT's capture keeps it), or none (`bare`: a capture of
/// strict G.988, or one written by other tools).
struct Script {
    w: CaptureWriter<Vec<u8>>,
    t: Duration,
    bare: bool,
}

impl Script {
    fn new() -> Self {
        Self {
            w: CaptureWriter::new(Vec::new()).unwrap(),
            t: Duration::from_secs(1_000_000),
            bare: false,
        }
    }

    fn bare() -> Self {
        Self {
            bare: true,
            ..Self::new()
        }
    }

    fn put(&mut self, dir: Direction, envelope: Envelope, m: Message<'_>) {
        self.t += Duration::from_millis(1);
        let mut buf = [0u8; 48];
        let n = omci_codec::emit(&m, &mut buf).unwrap();
        if self.bare {
            let peer = Peer::of(&envelope);
            self.w.write(self.t, dir, peer, &buf[..n]).unwrap();
        } else {
            self.w
                .write_enveloped(self.t, dir, &envelope, &buf[..n])
                .unwrap();
        }
    }

    fn down(&mut self, onu: u16, m: Message<'_>) {
        self.put(Direction::Downstream, Envelope::omcc(OnuId(onu)), m);
    }

    fn up(&mut self, onu: u16, m: Message<'_>) {
        self.put(Direction::Upstream, Envelope::omcc(OnuId(onu)), m);
    }

    /// A Download section of window `window` to `to` (an ONU, or the group), as the lab's OLT
    /// sends it: the window number in the envelope, and the window CRC `crc` with the AR set.
    fn section(&mut self, to: Peer, window: u32, crc: u32, m: Message<'_>) {
        let mut envelope = match to {
            Peer::Onu(o) => Envelope::omcc(o),
            Peer::Multicast => Envelope {
                onu_id: ALL_ONUS,
                gem_port: GemPort::MULTICAST_DOWNLOAD,
                ..Envelope::omcc(OnuId(0))
            },
        };
        envelope.window_no = Some(WindowNo(window));
        envelope.window_crc = m.ar.then_some(crc);
        self.put(Direction::Downstream, envelope, m);
    }

    /// ONU `onu`'s answer to a window's AR section; for a processing error, with the bitmap of
    /// the sections it misses in the envelope, as the lab's ONU sends it.
    fn answer(&mut self, onu: u16, tci: u16, result: ResultCode, missing: &[u8]) {
        let mut envelope = Envelope::omcc(OnuId(onu));
        if result == ResultCode::ProcessingError {
            let mut m = [0u8; MISSING_LEN];
            for &n in missing {
                m[usize::from(n / 8)] |= 1 << (n % 8);
            }
            envelope.missing = Some(m);
        }
        self.put(Direction::Upstream, envelope, answer(tci, result));
    }

    fn wait(&mut self, ms: u64) {
        self.t += Duration::from_millis(ms);
    }

    fn bytes(self) -> Vec<u8> {
        self.w.into_inner()
    }
}

fn msg(tci: u16, inst: u16, c: Contents<'static>) -> Message<'static> {
    Message::new(
        Tci(tci),
        Format::Baseline,
        MeId::new(MeClass::SOFTWARE_IMAGE, inst),
        c,
    )
}

fn section_data(window: u8, section: u8) -> Vec<u8> {
    (0..31u8)
        .map(|k| window.wrapping_mul(37) ^ section.wrapping_mul(11) ^ k)
        .collect()
}

fn section(tci: u16, window: u8, s: u8, ar: bool) -> Message<'static> {
    msg(
        tci,
        1,
        Contents::DownloadSectionRequest(DownloadSectionRequest {
            section_number: s,
            data: Cow::Owned(section_data(window, s)),
        }),
    )
    .with_ar(ar)
}

fn get_resp(tci: u16, inst: u16, v: &str, c: bool, a: bool, ok: bool) -> Message<'static> {
    let mut version = [0u8; 14];
    version[..v.len()].copy_from_slice(v.as_bytes());
    msg(
        tci,
        inst,
        Contents::GetResponse(GetResponse {
            result: ResultCode::Success,
            attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                version: Some(version),
                is_committed: Some(c),
                is_active: Some(a),
                is_valid: Some(ok),
                ..Default::default()
            })),
            optional_attribute_mask: 0,
            attribute_execution_mask: 0,
        }),
    )
}

fn avc(inst: u16, c: bool, a: bool, ok: bool) -> Message<'static> {
    msg(
        0,
        inst,
        Contents::AttributeValueChange(omci_codec::contents::AttributeValueChange {
            attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                is_committed: Some(c),
                is_active: Some(a),
                is_valid: Some(ok),
                ..Default::default()
            })),
        }),
    )
}

fn get(tci: u16, inst: u16) -> Message<'static> {
    msg(
        tci,
        inst,
        Contents::GetRequest(GetRequest {
            attribute_mask: 0xf000,
        }),
    )
}

fn answer(tci: u16, result: ResultCode) -> Message<'static> {
    msg(
        tci,
        1,
        Contents::DownloadSectionResponse(DownloadSectionResponse {
            result,
            section_number: WS - 1,
        }),
    )
}

/// Start software download of the rollout's image into image 1, windows of 4.
fn start(tci: u16) -> Message<'static> {
    msg(
        tci,
        1,
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: WS - 1,
            image_size: IMAGE_SIZE,
            instances: [1u16].into_iter().collect(),
        }),
    )
}

/// Sections per window: 4, 4, 2.
fn window_len(w: u8) -> u8 {
    if w == 2 { 2 } else { WS }
}

/// Bytes of the rollout's image: 10 sections, the last one zero padded.
const IMAGE_SIZE: u32 = 310;

/// The window CRC the OLT sends with window `w` of the rollout: CRC-32/BZIP2 of the window's
/// image bytes (the padding of the image's last section is not part of it).
fn window_crc(w: u8) -> u32 {
    let mut bytes: Vec<u8> = (0..window_len(w))
        .flat_map(|s| section_data(w, s))
        .collect();
    let start = u32::from(w) * u32::from(WS) * 31;
    bytes.truncate((IMAGE_SIZE - start).min(bytes.len() as u32) as usize);
    omci_codec::crc::crc32_bzip2(&bytes)
}

fn rollout() -> Vec<u8> {
    let mut s = Script::new();
    let onus = [1u16, 2];
    for &o in &onus {
        s.down(o, get(1, 0));
        s.up(o, get_resp(1, 0, "V1.0", true, true, true));
        s.down(o, get(2, 1));
        s.up(o, get_resp(2, 1, "", false, false, false));
        s.down(o, start(3));
        s.up(
            o,
            msg(
                3,
                1,
                Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                    result: ResultCode::Success,
                    window_size_minus_one: WS - 1,
                    instances: Default::default(),
                }),
            ),
        );
    }
    let mut tci = 0x4000u16;
    for win in 0..3u8 {
        let n = window_len(win);
        for sec in 0..n {
            tci += 1;
            let m = section(tci, win, sec, sec == n - 1);
            s.section(Peer::Multicast, win.into(), window_crc(win), m);
        }
        s.answer(1, tci, ResultCode::Success, &[]);
        if win == 1 {
            // ONU 2 lost sections 1 and 2 of window 1: repaired by unicast.
            s.answer(2, tci, ResultCode::ProcessingError, &[1, 2]);
            for sec in [1u8, 2, 3] {
                tci += 1;
                let m = section(tci, win, sec, sec == 3);
                s.section(Peer::Onu(OnuId(2)), win.into(), window_crc(win), m);
            }
        }
        s.answer(2, tci, ResultCode::Success, &[]);
    }
    for &o in &onus {
        let end = |t| {
            msg(
                t,
                1,
                Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                    crc: 0x1234_5678,
                    image_size: IMAGE_SIZE,
                    instances: [1u16].into_iter().collect(),
                }),
            )
        };
        let end_resp = |t, r| {
            msg(
                t,
                1,
                Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                    result: r,
                    instances: Default::default(),
                }),
            )
        };
        s.down(o, end(4));
        s.up(o, end_resp(4, ResultCode::DeviceBusy));
        s.wait(200);
        s.down(o, end(5));
        s.up(o, end_resp(5, ResultCode::DeviceBusy));
        s.wait(200);
        s.down(o, end(6));
        s.up(o, avc(1, false, false, true));
        s.up(o, end_resp(6, ResultCode::Success));
        s.down(o, get(7, 1));
        s.up(o, get_resp(7, 1, "V2.0", false, false, true));
        s.down(
            o,
            msg(
                8,
                1,
                Contents::ActivateSoftwareRequest(omci_codec::contents::ActivateSoftwareRequest {
                    activate_flags: 0,
                }),
            ),
        );
        s.up(
            o,
            msg(
                8,
                1,
                Contents::ActivateSoftwareResponse {
                    result: ResultCode::Success,
                },
            ),
        );
        s.wait(300);
        s.up(o, avc(0, true, false, true));
        s.up(o, avc(1, false, true, true));
        s.down(o, get(9, 1));
        s.up(o, get_resp(9, 1, "V2.0", false, true, true));
        s.down(o, msg(10, 1, Contents::CommitSoftwareRequest));
        s.up(
            o,
            msg(
                10,
                1,
                Contents::CommitSoftwareResponse {
                    result: ResultCode::Success,
                },
            ),
        );
        s.down(o, get(11, 1));
        s.up(o, get_resp(11, 1, "V2.0", true, true, true));
    }
    s.bytes()
}

fn frames_of(bytes: &[u8]) -> Vec<Frame> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("olt.pcap");
    std::fs::write(&path, bytes).unwrap();
    read_frames(&[path]).unwrap()
}

#[test]
fn reads_frames_with_times_from_the_first() {
    let frames = frames_of(&rollout());
    assert_eq!(frames[0].time, Duration::ZERO);
    assert_eq!(frames[0].peer, Peer::Onu(OnuId(1)));
    assert!(matches!(
        frames[0].body,
        Body::Get {
            attribute_mask: 0xf000
        }
    ));
    assert!(frames.iter().any(|f| f.peer == Peer::Multicast && f.ar));
    assert!(frames.windows(2).all(|p| p[0].time <= p[1].time));
}

#[test]
fn sections_of_a_window_collapse_into_one_arrow() {
    let frames = frames_of(&rollout());
    let md = mermaid(&frames, &[1, 2]);
    assert!(md.starts_with("```mermaid\nsequenceDiagram\n"), "{md}");
    assert!(md.ends_with("```"), "{md}");
    assert!(md.contains("participant Group"));
    assert!(md.contains("participant ONU1 as ONU 1"));
    // One arrow per window on the group, none per section.
    assert!(
        md.contains("OLT->>Group: window 0: sections 0-3, AR on 3, window CRC 0x"),
        "{md}"
    );
    assert!(
        md.contains("OLT->>Group: window 1: sections 0-3, AR on 3"),
        "{md}"
    );
    assert!(
        md.contains("OLT->>Group: window 2: sections 0-1, AR on 1"),
        "{md}"
    );
    assert!(!md.contains("Download section 0"), "{md}");
    assert_eq!(md.matches("->>Group").count(), 3, "{md}");
    // The repair and its answers.
    assert!(
        md.contains("ONU2-->>OLT: window 1: processing error (missing 2 sections)"),
        "{md}"
    );
    assert!(
        md.contains("OLT->>ONU2: window 1 repair: sections 1-3, AR on 3"),
        "{md}"
    );
    assert!(md.contains("ONU2-->>OLT: window 1: success"), "{md}");
    assert!(md.contains("ONU1-->>OLT: window 2: success"), "{md}");
    assert!(!md.contains(';'));
}

#[test]
fn the_window_crc_is_the_one_the_envelope_carried() {
    let frames = frames_of(&rollout());
    let md = mermaid(&frames, &[1]);
    assert!(
        md.contains(&format!(
            "window 2: sections 0-1, AR on 1, window CRC 0x{:08x}",
            window_crc(2)
        )),
        "{md}"
    );
    // Read from the envelope, not worked out from the sections.
    let mut s = Script::new();
    s.section(Peer::Multicast, 0, 0x0bad_cafe, section(1, 0, 0, false));
    s.section(Peer::Multicast, 0, 0x0bad_cafe, section(2, 0, 1, true));
    let md = mermaid(&frames_of(&s.bytes()), &[]);
    assert!(
        md.contains("OLT->>Group: window 0: sections 0-1, AR on 1, window CRC 0x0badcafe"),
        "{md}"
    );
}

/// Windows 0 and 1 of 4 sections to the group, each missed by ONU 2 (section 1 of window 0,
/// section 2 of window 1); the OLT repairs both by unicast, one section after the other and
/// without AR, then asks again on the group. The capture's envelopes say which window each
/// section belongs to (the sections' bytes could not: a guess merged the two into one burst of
/// no known window).
#[test]
fn a_repair_of_two_windows_is_told_window_by_window() {
    let mut s = Script::new();
    s.down(2, start(1));
    let tci = |w: u8, sec: u8| 0x4001 + u16::from(w) * 4 + u16::from(sec);
    for w in 0..2u8 {
        for sec in 0..WS {
            let m = section(tci(w, sec), w, sec, sec == WS - 1);
            s.section(Peer::Multicast, w.into(), 0x100 + u32::from(w), m);
        }
    }
    s.answer(2, tci(0, 3), ResultCode::ProcessingError, &[1]);
    s.answer(2, tci(1, 3), ResultCode::ProcessingError, &[2]);
    s.section(Peer::Onu(OnuId(2)), 0, 0x100, section(0x5000, 0, 1, false));
    s.section(Peer::Onu(OnuId(2)), 1, 0x101, section(0x5001, 1, 2, false));
    for w in 0..2u8 {
        let m = section(tci(w, 3), w, 3, true);
        s.section(Peer::Multicast, w.into(), 0x100 + u32::from(w), m);
        s.answer(2, tci(w, 3), ResultCode::Success, &[]);
    }
    let frames = frames_of(&s.bytes());
    let md = mermaid(&frames, &[2]);
    for line in [
        "ONU2-->>OLT: window 0: processing error (missing 1 section)",
        "ONU2-->>OLT: window 1: processing error (missing 1 section)",
        "OLT->>ONU2: window 0 repair: section 1, no AR section (cut short)",
        "OLT->>ONU2: window 1 repair: section 2, no AR section (cut short)",
        "OLT->>Group: window 0: section 3 again, AR set (the answer is asked for again)",
        "ONU2-->>OLT: window 1: success",
    ] {
        assert!(md.contains(line), "{line}:\n{md}");
    }
    assert!(!md.contains("window ?"), "{md}");
}

/// The number of missing sections is the ONU's own (its bitmap), also when the OLT sends the
/// whole window again; a processing error with no section missing (a window CRC mismatch)
/// gets no count.
#[test]
fn missing_sections_are_the_ones_the_onu_named() {
    let mut s = Script::new();
    let mut tci = 0x10;
    for (round, missing) in [(0, &[1u8, 2][..]), (1, &[][..]), (2, &[][..])] {
        for sec in 0..WS {
            tci += 1;
            let m = section(tci, 0, sec, sec == WS - 1);
            s.section(Peer::Onu(OnuId(1)), 0, 0x77, m);
        }
        let result = if round < 2 {
            ResultCode::ProcessingError
        } else {
            ResultCode::Success
        };
        s.answer(1, tci, result, missing);
    }
    let md = mermaid(&frames_of(&s.bytes()), &[1]);
    assert!(
        md.contains("ONU1-->>OLT: window 0: processing error (missing 2 sections)"),
        "{md}"
    );
    assert!(
        md.contains("ONU1-->>OLT: window 0: processing error\n"),
        "{md}"
    );
    assert_eq!(
        md.matches("OLT->>ONU1: window 0 again: sections 0-3")
            .count(),
        2,
        "{md}"
    );
}

/// A capture without envelopes (strict G.988, or written by other tools): windows to one ONU
/// are counted as a G.988 ONU counts them, the next after a success and the same one again
/// after anything else; there is no window CRC to show, and the group's windows are unknown.
#[test]
fn without_envelopes_windows_are_counted_as_g988_counts_them() {
    let mut s = Script::bare();
    s.down(1, start(1));
    let mut tci = 0x10;
    for (w, result) in [
        (0u8, ResultCode::Success),
        (1, ResultCode::ProcessingError),
        (1, ResultCode::Success),
        (2, ResultCode::Success),
    ] {
        let n = window_len(w);
        for sec in 0..n {
            tci += 1;
            let m = section(tci, w, sec, sec == n - 1);
            s.section(Peer::Onu(OnuId(1)), 99, 0x1234, m); // written without the envelope
        }
        s.answer(1, tci, result, &[0]);
    }
    s.section(Peer::Multicast, 99, 0, section(0x4001, 0, 0, true));
    let frames = frames_of(&s.bytes());
    assert!(frames.iter().all(|f| f.envelope.is_none()));
    let md = mermaid(&frames, &[1]);
    for line in [
        "OLT->>ONU1: window 0: sections 0-3, AR on 3\n",
        "ONU1-->>OLT: window 0: success",
        "OLT->>ONU1: window 1: sections 0-3, AR on 3\n",
        "ONU1-->>OLT: window 1: processing error\n",
        "OLT->>ONU1: window 1 again: sections 0-3, AR on 3\n",
        "OLT->>ONU1: window 2: sections 0-1, AR on 1\n",
        "ONU1-->>OLT: window 2: success",
        "OLT->>Group: window ?: section 0, AR on 0\n",
    ] {
        assert!(md.contains(line), "{line}:\n{md}");
    }
    assert!(!md.contains("window CRC"), "{md}");
    let text = explain(&frames, 1);
    assert!(
        text.contains("windows are counted as a G.988 ONU counts them"),
        "{text}"
    );
    let with = explain(&frames_of(&rollout()), 1);
    assert!(
        with.contains("the window numbers below are the envelope's") && !with.contains("counted"),
        "{with}"
    );
}

#[test]
fn busy_answers_are_collapsed_and_explained() {
    let frames = frames_of(&rollout());
    let md = mermaid(&frames, &[1, 2]);
    assert!(
        md.contains("OLT->>ONU1: End software download: CRC 0x12345678, 310 bytes ×3"),
        "{md}"
    );
    assert!(
        md.contains("ONU1-->>OLT: End software download: device busy ×2"),
        "{md}"
    );
    assert!(
        md.contains("ONU1-->>OLT: End software download: success"),
        "{md}"
    );
    assert_eq!(
        md.matches("OLT->>ONU1: End software download").count(),
        1,
        "{md}"
    );
    let text = explain(&frames, 1);
    assert!(text.contains("(×2, until"), "{text}");
    assert!(text.contains("device busy 2 times"), "{text}");
    assert!(text.contains("still writing the image to flash"), "{text}");
}

#[test]
fn the_explanation_names_the_phases_in_order() {
    let frames = frames_of(&rollout());
    let text = explain(&frames, 2);
    let mut at = 0;
    for heading in [
        "1. Discovery",
        "2. Start software download",
        "3. Download",
        "4. End software download",
        "5. Verify",
        "6. Activate software",
        "7. Reboot",
        "8. Commit software",
        "9. Final state",
    ] {
        let found = text[at..]
            .find(heading)
            .unwrap_or_else(|| panic!("{heading} after byte {at}:\n{text}"));
        at += found + heading.len();
    }
    assert!(
        text.contains("The target is image 1: the image neither active nor committed"),
        "{text}"
    );
    assert!(
        text.contains("Windows 0-2 (4 sections each, the last 2) arrived on the multicast group"),
        "{text}"
    );
    assert!(text.contains("Window 1 needed a repair"), "{text}");
    assert!(
        text.contains("processing error (2 sections missing)"),
        "{text}"
    );
    assert!(text.contains("falls back to the committed image"), "{text}");
    assert!(text.contains("anti-rollback floor"), "{text}");
    assert!(text.contains("boot announcement"), "{text}");
    assert!(text.contains("ONU 2 is upgraded"), "{text}");
    let text1 = explain(&frames, 1);
    assert!(
        text1.contains("Every window was answered success at the first try"),
        "{text1}"
    );
    assert!(explain(&frames, 9).contains("does not appear"));
}

#[test]
fn a_long_diagram_keeps_its_ends() {
    // 300 windows of 4 sections by unicast to one ONU: 600 arrows.
    let mut s = Script::new();
    s.down(
        1,
        msg(
            1,
            1,
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: WS - 1,
                image_size: 300 * 4 * 31,
                instances: [1u16].into_iter().collect(),
            }),
        ),
    );
    let mut tci = 1u16;
    for win in 0..300u16 {
        for sec in 0..WS {
            tci += 1;
            let [hi, lo] = win.to_be_bytes();
            let data: Vec<u8> = (0..31u8)
                .map(|k| match k {
                    0 => hi,
                    1 => lo,
                    2 => sec,
                    k => k,
                })
                .collect();
            let m = msg(
                tci,
                1,
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: sec,
                    data: Cow::Owned(data),
                }),
            )
            .with_ar(sec == WS - 1);
            s.section(Peer::Onu(OnuId(1)), win.into(), win.into(), m);
        }
        s.answer(1, tci, ResultCode::Success, &[]);
    }
    let frames = frames_of(&s.bytes());
    let md = mermaid(&frames, &[1]);
    let arrows = md.lines().filter(|l| l.contains("->>")).count();
    assert!(arrows <= 410, "{arrows}");
    assert!(md.contains("exchanges omitted"), "{md}");
    assert!(md.contains("OLT->>ONU1: window 0: sections 0-3"), "{md}");
    assert!(md.contains("OLT->>ONU1: window 299: sections 0-3"), "{md}");
    assert!(md.ends_with("```"));
    let text = explain(&frames, 1);
    assert!(
        text.contains("Windows 0-299 (4 sections each) were sent to this ONU alone"),
        "{text}"
    );
    assert!(text.lines().count() < 60, "{text}");
}

#[test]
fn a_restarted_olt_writes_a_second_file() {
    let mut first = Script::new();
    first.down(1, get(1, 0));
    first.up(1, get_resp(1, 0, "V1.0", true, true, true));
    let mut second = Script::new();
    second.t = first.t + Duration::from_secs(2);
    second.down(1, get(1, 0));
    second.up(1, get_resp(1, 0, "V1.0", true, true, true));
    let dir = tempfile::tempdir().unwrap();
    let paths = [dir.path().join("olt-1.pcap"), dir.path().join("olt-2.pcap")];
    std::fs::write(&paths[0], first.bytes()).unwrap();
    std::fs::write(&paths[1], second.bytes()).unwrap();
    let frames = read_frames(&paths).unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!((frames[1].file, frames[2].file), (0, 1));
    assert_eq!(frames[2].time, Duration::from_millis(2002));
    let md = mermaid(&frames, &[]);
    assert!(md.contains("participant ONU1 as ONU 1"), "{md}");
    assert!(!md.contains("participant Group"), "{md}");
    assert!(
        md.contains("Note over OLT,ONU1: Capture file 2 begins at 2.002 s"),
        "{md}"
    );
    let text = explain(&frames, 1);
    assert!(
        text.contains("Capture file 2 begins: the OLT was restarted"),
        "{text}"
    );
    assert!(text.contains("Discovery (again)"), "{text}");
    assert!(read_frames(&[dir.path().join("missing.pcap")]).is_err());
}

#[test]
fn the_lives_of_an_olt_merge_into_one_capture_with_their_envelopes() {
    let mut first = Script::new();
    first.down(1, get(1, 0));
    first.section(Peer::Multicast, 7, 0x99, section(0x4001, 7, 0, true));
    let mut second = Script::new();
    second.t = first.t + Duration::from_secs(2);
    second.answer(1, 0x4001, ResultCode::ProcessingError, &[3]);
    let dir = tempfile::tempdir().unwrap();
    let paths = [
        dir.path().join("olt-1.pcap"),
        dir.path().join("never-written.pcap"),
        dir.path().join("olt-2.pcap"),
    ];
    std::fs::write(&paths[0], first.bytes()).unwrap();
    std::fs::write(&paths[2], second.bytes()).unwrap();
    let out = dir.path().join("all.pcap");
    merge_captures(&paths, &out).unwrap();
    let merged = read_frames(std::slice::from_ref(&out)).unwrap();
    let apart = read_frames(&[paths[0].clone(), paths[2].clone()]).unwrap();
    assert_eq!(merged.len(), 3);
    for (m, a) in merged.iter().zip(&apart) {
        assert_eq!((m.time, m.peer, &m.body), (a.time, a.peer, &a.body));
        assert_eq!(m.envelope, a.envelope);
        assert!(m.envelope.is_some());
    }
    assert_eq!(merged[1].envelope.unwrap().window_no, Some(WindowNo(7)));
    assert!(merged[2].envelope.unwrap().missing.is_some());
}
