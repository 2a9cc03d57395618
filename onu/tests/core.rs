//! The ONU core, driven by an OLT in the test: every state transition and every refusal of
//! issue 3, with a simulated clock and flash in memory.

mod harness;

use std::time::Duration;

use harness::*;
use omci_codec::contents::*;
use omci_codec::crc::crc32_bzip2;
use omci_codec::envelope::Envelope;
use omci_codec::{Format, MeClass, MeId, Message, MessageType, ResultCode, WindowNo};
use onu::core::OnuEvent;

/// (committed, active, valid) per image, as G.988's states name them.
const S1: [(bool, bool, bool); 2] = [(true, true, true), (false, false, false)];
const S3: [(bool, bool, bool); 2] = [(true, true, true), (false, false, true)];
const S4: [(bool, bool, bool); 2] = [(true, false, true), (false, true, true)];
const S1_PRIME: [(bool, bool, bool); 2] = [(false, false, true), (true, true, true)];

#[test]
fn a_fresh_onu_runs_its_golden_image_in_s1() {
    let mut lab = Lab::new();
    assert_eq!(lab.state(), S1);
    assert_eq!(lab.version(0), "V1");
    let a = lab.get_sw(1);
    assert_eq!(a.version, Some([0; 14]), "an empty slot has no version");
}

#[test]
fn a_full_upgrade_walks_s1_s2_s3_s4_and_commits() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 2000);
    let start = lab.start(1, v2.len(), 16);
    assert_eq!(start.contents.result(), Some(ResultCode::Success));
    // S2: downloading; image 1 not valid.
    assert_eq!(lab.state(), S1);
    let windows = v2.len().div_ceil(31 * 16) as u32;
    for w in 0..windows {
        assert_eq!(
            lab.send_window(1, &v2, 16, w, &[]),
            Some(ResultCode::Success)
        );
    }
    // End answers busy while the flash is written and the image verified, then success.
    assert_eq!(lab.end(1, &v2), ResultCode::DeviceBusy);
    lab.advance(Duration::from_millis(100));
    assert_eq!(lab.end(1, &v2), ResultCode::DeviceBusy);
    lab.advance(Duration::from_millis(250));
    assert_eq!(lab.end(1, &v2), ResultCode::Success);
    assert_eq!(lab.state(), S3);
    assert_eq!(lab.version(1), "V2");
    // The is-valid change was notified.
    assert!(lab.notifications.iter().any(|n| n.me.instance == 1));
    // Activate: reboot into image 1, active but not committed (S4).
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.onu().running(), 1);
    assert_eq!(lab.state(), S4);
    // Commit: image 1 committed and active (S1').
    assert_eq!(lab.commit(1), ResultCode::Success);
    assert_eq!(lab.state(), S1_PRIME);
    // It survives a power cycle.
    lab.power_cycle();
    assert_eq!(lab.state(), S1_PRIME);
    assert_eq!(lab.version(1), "V2");
    // And the flash holds the image byte for byte.
    assert_eq!(lab.flash().slots[1], v2);
}

#[test]
fn start_refuses_the_active_and_committed_images_and_nonsense() {
    let mut lab = Lab::new();
    assert_eq!(
        lab.start(0, 5000, 16).contents.result(),
        Some(ResultCode::ParameterError)
    );
    assert_eq!(
        lab.start(1, 10, 16).contents.result(),
        Some(ResultCode::ParameterError)
    );
    // Unknown instance and unknown ME.
    let r = lab.result_of(
        MeId::new(MeClass::SOFTWARE_IMAGE, 0x0002),
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: 0,
            image_size: 1000,
            instances: [2u16].into_iter().collect(),
        }),
    );
    assert_eq!(r, ResultCode::UnknownInstance);
    let r = lab.result_of(
        MeId::new(MeClass(999), 1),
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: 0,
            image_size: 1000,
            instances: [1u16].into_iter().collect(),
        }),
    );
    assert_eq!(r, ResultCode::UnknownMe);
}

#[test]
fn an_image_larger_than_the_slot_is_refused() {
    let mut lab = Lab::with(|c| c.slot_size = 4096);
    assert_eq!(
        lab.start(1, 4097, 16).contents.result(),
        Some(ResultCode::ParameterError)
    );
    assert_eq!(
        lab.start(1, 4096, 16).contents.result(),
        Some(ResultCode::Success)
    );
}

#[test]
fn every_boot_announces_both_images() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    lab.notifications.clear();
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    // After the reboot into image 1: an attribute value change per image, image 1 active.
    let active: Vec<(u16, Option<bool>)> = lab
        .notifications
        .iter()
        .filter_map(|n| match &n.contents {
            Contents::AttributeValueChange(a) => match &a.attributes {
                AttributeValues::SoftwareImage(s) => Some((n.me.instance, s.is_active)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(active, vec![(0, Some(false)), (1, Some(true))]);
}

#[test]
fn the_onu_may_lower_the_window_and_never_raises_it() {
    let mut lab = Lab::with(|c| c.max_window_size = 16);
    let r = lab.start(1, 5000, 256);
    match r.contents {
        Contents::StartSoftwareDownloadResponse(s) => assert_eq!(s.window_size(), 16),
        other => panic!("{other:?}"),
    }
    let r = lab.start(1, 5000, 8);
    match r.contents {
        Contents::StartSoftwareDownloadResponse(s) => assert_eq!(s.window_size(), 8),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_missing_section_fails_the_window_and_a_repeat_succeeds() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 1000);
    lab.start(1, v2.len(), 8);
    assert_eq!(
        lab.send_window(1, &v2, 8, 0, &[3]),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(
        lab.send_window(1, &v2, 8, 0, &[]),
        Some(ResultCode::Success)
    );
    let windows = v2.len().div_ceil(31 * 8) as u32;
    for w in 1..windows {
        assert_eq!(
            lab.send_window(1, &v2, 8, w, &[]),
            Some(ResultCode::Success)
        );
    }
    assert_eq!(lab.finish_end(1, &v2), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], v2);
}

#[test]
fn out_of_order_and_duplicated_sections_never_corrupt_the_slot() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 700);
    lab.start(1, v2.len(), 8);
    let chunks: Vec<Vec<u8>> = v2.chunks(31).map(<[u8]>::to_vec).collect();
    let windows = chunks.len().div_ceil(8);
    for w in 0..windows {
        let in_window: Vec<usize> = (w * 8..((w + 1) * 8).min(chunks.len())).collect();
        let last = *in_window.last().unwrap();
        // Reversed, every inner section twice, the AR section last.
        for &i in in_window.iter().rev().filter(|&&i| i != last) {
            for _ in 0..2 {
                let m = lab.section(1, (i - w * 8) as u8, &chunks[i], false);
                let env = Envelope {
                    window_no: Some(omci_codec::WindowNo(w as u32)),
                    ..Envelope::omcc(ONU)
                };
                assert!(lab.send_with(env, &m).is_empty(), "no answer without AR");
            }
        }
        let m = lab.section(1, (last - w * 8) as u8, &chunks[last], true);
        let env = Envelope {
            window_no: Some(omci_codec::WindowNo(w as u32)),
            ..Envelope::omcc(ONU)
        };
        let r = lab.send_with(env, &m);
        assert_eq!(r[0].contents.result(), Some(ResultCode::Success));
    }
    // The last window again (its acknowledgement was lost): held windows are not rewritten.
    assert_eq!(
        lab.send_window(1, &v2, 8, windows as u32 - 1, &[]),
        Some(ResultCode::Success)
    );
    assert!(lab.onu().counters().sections_duplicate > 0);
    assert_eq!(lab.finish_end(1, &v2), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], v2);
}

#[test]
fn ar_before_the_window_ends_is_answered_with_processing_error() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 1000);
    lab.start(1, v2.len(), 8);
    let m = lab.section(1, 2, &v2[62..93], true);
    let env = Envelope {
        window_no: Some(omci_codec::WindowNo(0)),
        ..Envelope::omcc(ONU)
    };
    let r = lab.send_with(env, &m);
    assert_eq!(r[0].contents.result(), Some(ResultCode::ProcessingError));
}

#[test]
fn an_end_crc_that_does_not_match_what_was_written_is_refused_with_both_crcs() {
    use onu::core::CrcMismatch;
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 600);
    lab.start(1, v2.len(), 16);
    for w in 0..v2.len().div_ceil(31 * 16) as u32 {
        lab.send_window(1, &v2, 16, w, &[]);
    }
    let (written, end) = (crc32_bzip2(&v2), crc32_bzip2(&v2) ^ 1);
    let mut r = lab.end_with(1, end, v2.len() as u32);
    while r == ResultCode::DeviceBusy {
        lab.advance(Duration::from_millis(100));
        r = lab.end_with(1, end, v2.len() as u32);
    }
    assert_eq!(r, ResultCode::ProcessingError);
    let refusals: Vec<_> = lab
        .events
        .iter()
        .filter_map(|e| match e {
            OnuEvent::ImageRefused { crc_mismatch, .. } => Some(*crc_mismatch),
            _ => None,
        })
        .collect();
    assert_eq!(refusals, [Some(CrcMismatch { written, end })]);
    // Any other refusal carries none.
    let mut lab = Lab::new();
    let other = image_with("OTHER-MODEL", "V2", 2, 500, false, &key());
    assert_eq!(lab.download(1, &other, 16), ResultCode::ProcessingError);
    assert!(lab.events.iter().any(|e| matches!(
        e,
        OnuEvent::ImageRefused {
            crc_mismatch: None,
            ..
        }
    )));
}

#[test]
fn end_download_checks_crc_size_and_that_a_download_exists() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 600);
    // End without Start.
    assert_eq!(lab.end(1, &v2), ResultCode::ProcessingError);
    // A wrong CRC: processing error, image 1 stays invalid.
    lab.start(1, v2.len(), 16);
    for w in 0..v2.len().div_ceil(31 * 16) as u32 {
        lab.send_window(1, &v2, 16, w, &[]);
    }
    let mut r = lab.end_with(1, crc32_bzip2(&v2) ^ 1, v2.len() as u32);
    while r == ResultCode::DeviceBusy {
        lab.advance(Duration::from_millis(100));
        r = lab.end_with(1, crc32_bzip2(&v2) ^ 1, v2.len() as u32);
    }
    assert_eq!(r, ResultCode::ProcessingError);
    assert!(!lab.get_sw(1).is_valid.unwrap());
    // A wrong size: parameter error.
    lab.start(1, v2.len(), 16);
    for w in 0..v2.len().div_ceil(31 * 16) as u32 {
        lab.send_window(1, &v2, 16, w, &[]);
    }
    assert_eq!(
        lab.end_with(1, crc32_bzip2(&v2), 5),
        ResultCode::ParameterError
    );
    // Not every window: processing error.
    lab.start(1, v2.len(), 16);
    lab.send_window(1, &v2, 16, 0, &[]);
    assert_eq!(lab.end(1, &v2), ResultCode::ProcessingError);
}

#[test]
fn the_abort_convention_discards_the_download() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 600);
    lab.start(1, v2.len(), 16);
    lab.send_window(1, &v2, 16, 0, &[]);
    assert_eq!(lab.end_with(1, 0xFFFF_FFFF, 0), ResultCode::Success);
    assert!(
        lab.events.iter().any(
            |e| matches!(e, OnuEvent::DownloadDiscarded { reason } if reason.contains("abort"))
        )
    );
    assert_eq!(
        lab.send_window(1, &v2, 16, 1, &[]),
        Some(ResultCode::ProcessingError)
    );
    assert_eq!(lab.state(), S1);
}

#[test]
fn a_new_start_discards_the_partial_image() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 3000);
    let v3 = image("V3", 3, 1000);
    lab.start(1, v2.len(), 16);
    lab.send_window(1, &v2, 16, 0, &[]);
    assert_eq!(lab.download(1, &v3, 16), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], v3);
    assert_eq!(lab.version(1), "V3");
}

#[test]
fn a_stale_download_is_discarded() {
    let mut lab = Lab::with(|c| c.stale_download_timeout = Duration::from_secs(5));
    let v2 = image("V2", 2, 3000);
    lab.start(1, v2.len(), 16);
    lab.send_window(1, &v2, 16, 0, &[]);
    lab.advance(Duration::from_secs(6));
    assert_eq!(
        lab.send_window(1, &v2, 16, 1, &[]),
        Some(ResultCode::ProcessingError)
    );
}

#[test]
fn timeouts_past_what_an_instant_holds_never_end_and_never_panic() {
    // What `onu run` once took unchecked (--stale-download-s 18446744073709551615): the
    // deadline `now + timeout` does not exist, so there is none.
    let mut lab = Lab::with(|c| {
        c.stale_download_timeout = Duration::MAX;
        c.busy_duration = Duration::MAX;
    });
    let v2 = image("V2", 2, 600);
    assert_eq!(
        lab.start(1, v2.len(), 16).contents.result(),
        Some(ResultCode::Success)
    );
    assert_eq!(lab.onu().poll_timeout(), None, "never stale");
    for w in 0..v2.len().div_ceil(31 * 16) as u32 {
        assert_eq!(
            lab.send_window(1, &v2, 16, w, &[]),
            Some(ResultCode::Success)
        );
    }
    lab.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(lab.end(1, &v2), ResultCode::DeviceBusy);
    assert_eq!(lab.onu().poll_timeout(), None, "busy without end");
    lab.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(lab.end(1, &v2), ResultCode::DeviceBusy);
}

#[test]
fn images_that_fail_a_check_are_refused_and_stay_invalid() {
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    for (img, why) in [
        (
            image_with("OTHER-MODEL", "V2", 2, 500, false, &key()),
            "model",
        ),
        (image_with(MODEL, "V0", 0, 500, false, &key()), "below"),
        (
            image_with(MODEL, "V2", 2, 500, false, &other_key),
            "signature",
        ),
    ] {
        let mut lab = Lab::new();
        // Raise the anti-rollback floor to 1 by committing a security-version-1 image first.
        lab.upgrade(1, &image("V1b", 1, 500));
        assert_eq!(
            lab.download(0, &img, 16),
            ResultCode::ProcessingError,
            "{why}"
        );
        assert!(!lab.get_sw(0).is_valid.unwrap(), "{why}");
        assert!(
            lab.events.iter().any(
                |e| matches!(e, OnuEvent::ImageRefused { reason, .. } if reason.contains(why))
            ),
            "{why}: {:?}",
            lab.events
        );
    }
    // A payload altered after signing (and its CRC recomputed by a forger).
    let mut lab = Lab::new();
    let mut tampered = image("V2", 2, 500);
    tampered[200] ^= 0xFF;
    assert_eq!(lab.download(1, &tampered, 16), ResultCode::ProcessingError);
}

#[test]
fn activate_and_commit_need_a_valid_image_and_honour_calls() {
    let mut lab = Lab::with(|c| {
        c.voice_call_in_progress = true;
        c.emergency_call_in_progress = true;
    });
    assert_eq!(lab.activate(1, 0), ResultCode::ParameterError);
    assert_eq!(lab.commit(1), ResultCode::ParameterError);
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    assert_eq!(lab.activate(1, 1), ResultCode::DeviceBusy);
    assert_eq!(lab.activate(1, 2), ResultCode::DeviceBusy);
    assert_eq!(lab.activate(1, 3), ResultCode::ParameterError);
    assert_eq!(lab.state(), S3);
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.state(), S4);
}

#[test]
fn a_reboot_before_commit_falls_back_to_the_committed_image() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.state(), S4);
    let r = lab.result_of(
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    );
    assert_eq!(r, ResultCode::Success);
    assert_eq!(lab.state(), S3, "image 0 runs again, image 1 still valid");
}

#[test]
fn an_image_that_fails_to_boot_returns_to_the_committed_one() {
    let mut lab = Lab::new();
    let bad = image_with(MODEL, "BAD", 2, 500, true, &key());
    assert_eq!(lab.download(1, &bad, 16), ResultCode::Success);
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    assert_eq!(lab.onu().running(), 0);
    assert_eq!(lab.state(), S3);
    assert!(
        lab.events
            .iter()
            .any(|e| matches!(e, OnuEvent::Booted { path, .. }
        if path.iter().any(|p| matches!(p, onu::boot::BootPath::FellBack { abandoned: 1, .. }))))
    );
}

#[test]
fn unknown_me_instance_and_message_get_their_result_codes() {
    let mut lab = Lab::new();
    let get = |mask| {
        Contents::GetRequest(GetRequest {
            attribute_mask: mask,
        })
    };
    assert_eq!(
        lab.result_of(MeId::new(MeClass(999), 0), get(0x8000)),
        ResultCode::UnknownMe
    );
    assert_eq!(
        lab.result_of(MeId::new(MeClass::SOFTWARE_IMAGE, 0x0100), get(0x8000)),
        ResultCode::UnknownInstance
    );
    assert_eq!(
        lab.result_of(MeId::new(MeClass::ONU_G, 1), get(0x8000)),
        ResultCode::UnknownInstance
    );
    // A Set (no typed form, AR set) is not supported.
    let set = Contents::Other(OtherMessage {
        message_type: MessageType::Set,
        ak: false,
        contents: std::borrow::Cow::Owned(vec![0; 32]),
    });
    let r = lab.request(MeId::new(MeClass::ONU_G, 0), set);
    assert_eq!(r[0].message_type(), MessageType::Set);
    match &r[0].contents {
        Contents::Other(o) => assert_eq!(o.contents[0], ResultCode::NotSupported.as_u8()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_reports_onu_g_and_unsupported_attributes() {
    let mut lab = Lab::new();
    let r = lab.request(
        MeId::new(MeClass::ONU_G, 0),
        Contents::GetRequest(GetRequest {
            attribute_mask: 0xA000,
        }),
    );
    match &r[0].contents {
        Contents::GetResponse(g) => {
            assert_eq!(g.result, ResultCode::Success);
            match &g.attributes {
                AttributeValues::Raw {
                    values,
                    attribute_mask,
                } => {
                    assert_eq!(*attribute_mask, 0xA000);
                    assert_eq!(&values[..4], b"LABS");
                    assert_eq!(&values[4..8], b"LABS");
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // All six software image attributes do not fit a baseline frame: attribute failure, with
    // the ones left out in the execution mask; 0x0200 is not an attribute at all.
    let r = lab.request(
        sw(0),
        Contents::GetRequest(GetRequest {
            attribute_mask: 0xFE00,
        }),
    );
    match &r[0].contents {
        Contents::GetResponse(g) => {
            assert_eq!(g.result, ResultCode::AttributeFailure);
            assert_eq!(g.optional_attribute_mask, 0x0200);
            assert_ne!(g.attribute_execution_mask, 0);
            assert_eq!(
                g.attributes.attribute_mask() | g.attribute_execution_mask,
                0xFC00
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mib_reset_leaves_the_software_images_alone() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 500);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    let r = lab.result_of(MeId::new(MeClass::ONU_DATA, 0), Contents::MibResetRequest);
    assert_eq!(r, ResultCode::Success);
    assert_eq!(lab.state(), S3);
}

#[test]
fn bad_frames_are_dropped_silently_and_counted() {
    let mut lab = Lab::new();
    let msg = Message::new(
        lab.next_tci(),
        Format::Baseline,
        sw(0),
        Contents::GetRequest(GetRequest {
            attribute_mask: 0x8000,
        }),
    );
    let mut frame = codec().to_vec(&msg).unwrap();
    frame[20] ^= 1; // the CRC no longer matches
    let before = lab.onu().counters().dropped;
    assert!(
        lab.send_datagram(&Envelope::omcc(ONU).wrap(&frame))
            .is_empty()
    );
    assert!(lab.send_datagram(b"not even an envelope").is_empty());
    // For another ONU.
    let other = Envelope::omcc(omci_codec::OnuId(8)).wrap(&codec().to_vec(&msg).unwrap());
    assert!(lab.send_datagram(&other).is_empty());
    assert_eq!(lab.onu().counters().dropped, before + 3);
}

#[test]
fn extended_frames_download_too() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 5000);
    let start = Message::new(
        lab.next_tci(),
        Format::Extended,
        sw(1),
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: 3,
            image_size: v2.len() as u32,
            instances: [1u16].into_iter().collect(),
        }),
    );
    let r = lab.send_with(Envelope::omcc(ONU), &start);
    assert_eq!(r[0].format, Format::Extended);
    assert_eq!(r[0].contents.result(), Some(ResultCode::Success));
    let sections: Vec<&[u8]> = v2.chunks(1000).collect();
    for (i, chunk) in sections.iter().enumerate() {
        let (w, n) = (i / 4, i % 4);
        let ar = n == 3 || i + 1 == sections.len();
        let m = Message::new(
            lab.next_tci(),
            Format::Extended,
            sw(1),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n as u8,
                data: std::borrow::Cow::Borrowed(chunk),
            }),
        )
        .with_ar(ar);
        let env = Envelope {
            window_no: Some(omci_codec::WindowNo(w as u32)),
            ..Envelope::omcc(ONU)
        };
        let r = lab.send_with(env, &m);
        if ar {
            assert_eq!(
                r[0].contents.result(),
                Some(ResultCode::Success),
                "window {w}"
            );
        }
    }
    assert_eq!(lab.finish_end(1, &v2), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], v2);
}

#[test]
fn an_abort_concerns_the_named_image_only() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 2000);
    lab.start(1, v2.len(), 16);
    assert_eq!(
        lab.send_window(1, &v2, 16, 0, &[]),
        Some(ResultCode::Success)
    );
    // An abort naming image 0 leaves the download into image 1 alone.
    assert_eq!(lab.end_with(0, 0xFFFF_FFFF, 0), ResultCode::Success);
    assert_eq!(
        lab.send_window(1, &v2, 16, 1, &[]),
        Some(ResultCode::Success)
    );
    for w in 2..v2.len().div_ceil(31 * 16) as u32 {
        lab.send_window(1, &v2, 16, w, &[]);
    }
    assert_eq!(lab.finish_end(1, &v2), ResultCode::Success);
}

#[test]
fn an_abort_or_another_end_during_verification_cancels_it() {
    for second in ["abort", "other End"] {
        let mut lab = Lab::new();
        let v2 = image("V2", 2, 600);
        lab.start(1, v2.len(), 16);
        for w in 0..v2.len().div_ceil(31 * 16) as u32 {
            lab.send_window(1, &v2, 16, w, &[]);
        }
        assert_eq!(lab.end(1, &v2), ResultCode::DeviceBusy);
        let r = match second {
            "abort" => lab.end_with(1, 0xFFFF_FFFF, 0),
            _ => lab.end_with(1, crc32_bzip2(&v2) ^ 1, v2.len() as u32),
        };
        assert_eq!(
            r,
            if second == "abort" {
                ResultCode::Success
            } else {
                ResultCode::ParameterError
            },
            "{second}"
        );
        lab.advance(Duration::from_secs(1));
        assert_eq!(lab.state(), S1, "{second}: the image never became valid");
        assert_eq!(lab.end(1, &v2), ResultCode::ProcessingError, "{second}");
    }
}

#[test]
fn an_extended_downloads_short_last_section_first_does_not_fix_the_section_size() {
    let mut lab = Lab::new();
    let v2 = image("V2", 2, 2500); // 2692 bytes: sections of 1000, 1000, 692
    let send = |lab: &mut Lab, w: u32, n: u8, data: &[u8], ar: bool| {
        let m = Message::new(
            lab.next_tci(),
            Format::Extended,
            sw(1),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n,
                data: std::borrow::Cow::Owned(data.to_vec()),
            }),
        )
        .with_ar(ar);
        let env = Envelope {
            window_no: Some(omci_codec::WindowNo(w)),
            ..Envelope::omcc(ONU)
        };
        lab.send_with(env, &m)
            .first()
            .and_then(|r| r.contents.result())
    };
    let start = Message::new(
        lab.next_tci(),
        Format::Extended,
        sw(1),
        Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
            window_size_minus_one: 0, // one section per window: every section has AR
            image_size: v2.len() as u32,
            instances: [1u16].into_iter().collect(),
        }),
    );
    lab.send_with(Envelope::omcc(ONU), &start);
    let chunks: Vec<&[u8]> = v2.chunks(1000).collect();
    // The last (short) section first: it cannot teach the section size.
    assert_eq!(
        send(&mut lab, 2, 0, chunks[2], true),
        Some(ResultCode::ProcessingError)
    );
    for (w, c) in chunks.iter().enumerate() {
        assert_eq!(
            send(&mut lab, w as u32, 0, c, true),
            Some(ResultCode::Success),
            "window {w}"
        );
    }
    // A section of the wrong size later is a missing section, not a short write.
    assert_eq!(lab.finish_end(1, &v2), ResultCode::Success);
    assert_eq!(lab.flash().slots[1], v2);
}

#[test]
fn events_round_trip_as_tagged_json() {
    use onu::boot::BootPath;
    use onu::faults::FaultPoint;
    let events = vec![
        OnuEvent::Booted {
            running: 1,
            version: "V2.0".into(),
            path: vec![
                BootPath::FellBack {
                    abandoned: 0,
                    reason: "3 failed boots".into(),
                },
                BootPath::Committed,
            ],
        },
        OnuEvent::DownloadStarted {
            slot: 1,
            image_size: 4000,
            window_size: 32,
        },
        OnuEvent::WindowComplete {
            window: WindowNo(3),
        },
        OnuEvent::ImageRefused {
            slot: 1,
            reason: "bad signature".into(),
            crc_mismatch: None,
        },
        OnuEvent::PowerLost {
            point: FaultPoint::MidSectionWrite,
        },
        OnuEvent::RebootRequested,
    ];
    for e in events {
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            serde_json::from_str::<OnuEvent>(&text).unwrap(),
            e,
            "{text}"
        );
    }
    assert_eq!(
        serde_json::to_string(&OnuEvent::WindowComplete {
            window: WindowNo(3)
        })
        .unwrap(),
        r#"{"event":"window-complete","window":3}"#
    );
    assert_eq!(
        serde_json::to_string(&OnuEvent::PowerLost {
            point: FaultPoint::AfterActivate
        })
        .unwrap(),
        r#"{"event":"power-lost","point":"after-activate"}"#
    );
}
