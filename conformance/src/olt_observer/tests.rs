//! The observer on exchanges written by hand: the rules no quirk of the lab's OLT breaks
//! (`window-exceeded`, `tci-reused`), and what the ONU's facts make it forget. The rules our
//! OLT's quirks break, against real ONU cores, are in `tests/conformance_sim.rs`.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use omci_codec::contents::{
    ActivateSoftwareRequest, AttributeValueChange, AttributeValues, Contents,
    DownloadSectionRequest, DownloadSectionResponse, EndSoftwareDownloadRequest,
    EndSoftwareDownloadResponse, GetRequest, StartSoftwareDownloadRequest,
    StartSoftwareDownloadResponse,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, ResultCode, Tci};

use super::*;

const ONU: OnuId = OnuId(1);
/// Image 1: the standby image of these exchanges.
const STANDBY: u16 = 1;

/// An OLT (these tests) and an ONU (these tests, answering), with the observer between.
struct Exchange {
    o: OltObserver,
    now: Instant,
    codec: Codec,
}

impl Exchange {
    fn new() -> Exchange {
        Exchange {
            o: OltObserver::new(ONU, ExtendedTrailer::Crc32, Keep::Every),
            now: Instant::now(),
            codec: Codec::new(ExtendedTrailer::Crc32),
        }
    }

    fn down(&mut self, m: &Message<'_>) {
        let d = Envelope::omcc(ONU).wrap(&self.codec.to_vec(m).unwrap());
        self.o.handle_downstream(self.now, &d);
    }

    fn up(&mut self, m: &Message<'_>) {
        let d = Envelope::omcc(ONU).wrap(&self.codec.to_vec(m).unwrap());
        self.o.handle_upstream(self.now, &d);
    }

    fn request(&mut self, tci: u16, contents: Contents<'_>) {
        self.down(&Message::new(Tci(tci), Format::Baseline, sw(), contents));
    }

    fn answer(&mut self, tci: u16, contents: Contents<'_>) {
        self.up(&Message::new(Tci(tci), Format::Baseline, sw(), contents));
    }

    /// Start of `image_size` bytes in windows of `window`, accepted.
    fn start(&mut self, tci: u16, image_size: u32, window: u16) {
        self.request(
            tci,
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (window - 1) as u8,
                image_size,
                instances: [STANDBY].into_iter().collect(),
            }),
        );
        self.answer(
            tci,
            Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                result: ResultCode::Success,
                window_size_minus_one: (window - 1) as u8,
                instances: Default::default(),
            }),
        );
    }

    fn section(&mut self, tci: u16, n: u8, ar: bool) {
        let m = Message::new(
            Tci(tci),
            Format::Baseline,
            sw(),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n,
                data: Cow::Owned(vec![0; 31]),
            }),
        )
        .with_ar(ar);
        self.down(&m);
    }

    fn end(&mut self, tci: u16, crc: u32, answer: ResultCode) {
        self.request(
            tci,
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc,
                image_size: 310,
                instances: [STANDBY].into_iter().collect(),
            }),
        );
        self.answer(
            tci,
            Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                result: answer,
                instances: Default::default(),
            }),
        );
    }

    /// The ONU announces image 1: not committed, not active, `valid`.
    fn announce(&mut self, valid: bool) {
        self.answer(
            0,
            Contents::AttributeValueChange(AttributeValueChange {
                attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                    is_committed: Some(false),
                    is_active: Some(false),
                    is_valid: Some(valid),
                    ..Default::default()
                })),
            }),
        );
    }

    fn get(&mut self, tci: u16) {
        self.request(
            tci,
            Contents::GetRequest(GetRequest {
                attribute_mask: 0x8000,
            }),
        );
    }

    fn rules(&self) -> Vec<Rule> {
        self.o.violations().iter().map(|v| v.rule).collect()
    }
}

fn sw() -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, STANDBY)
}

#[test]
fn a_section_beyond_the_window_the_onu_accepted_is_window_exceeded() {
    let mut x = Exchange::new();
    // Ten sections of 31 bytes in windows of 4: 4, 4 and 2.
    x.start(1, 310, 4);
    for n in 0..3 {
        x.section(2 + u16::from(n), n, false);
    }
    x.section(5, 4, false);
    assert_eq!(x.rules(), [Rule::WindowExceeded]);
    let v = &x.o.violations()[0];
    assert_eq!(
        v.detail,
        "section 4 in window 0: section 4 is past the window's end (the agreed window is smaller)"
    );
    assert_eq!(
        &v.frame[..8],
        "0005140a",
        "TCI 5, Download section without AR"
    );
    // The short last window holds two sections: section 2 there is beyond it too.
    let mut x = Exchange::new();
    x.start(1, 310, 4);
    for (w, last) in [(0u32, 3u8), (1, 3)] {
        for n in 0..=last {
            let tci = 10 * (w as u16 + 1) + u16::from(n);
            x.section(tci, n, n == last);
            if n == last {
                x.answer(
                    tci,
                    Contents::DownloadSectionResponse(DownloadSectionResponse {
                        result: ResultCode::Success,
                        section_number: n,
                    }),
                );
            }
        }
    }
    x.section(30, 0, false);
    x.section(31, 1, false);
    assert_eq!(x.rules(), []);
    x.section(32, 2, true);
    assert_eq!(x.rules(), [Rule::WindowExceeded]);
}

#[test]
fn a_tci_reused_for_another_request_in_flight_is_flagged_and_a_retransmission_is_not() {
    let mut x = Exchange::new();
    x.get(7);
    x.get(7); // the same request again: a retransmission
    assert_eq!(x.rules(), []);
    x.now += Duration::from_millis(500);
    x.request(
        7,
        Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
    );
    assert_eq!(x.rules(), [Rule::TciReused]);
    assert_eq!(
        x.o.violations()[0].detail,
        "TCI 0x0007 reused for another request within 2s"
    );
    // Once the first may no longer be answered, the TCI is free again.
    x.now += IN_FLIGHT + Duration::from_millis(1);
    x.get(7);
    assert_eq!(x.rules(), [Rule::TciReused]);
}

#[test]
fn end_left_unasked_after_busy_is_flagged_when_the_olt_goes_on_or_when_time_passes() {
    let mut x = Exchange::new();
    x.end(1, 0x1234, ResultCode::DeviceBusy);
    assert_eq!(x.o.poll_timeout(), Some(x.now + BUSY_RETRY));
    x.now += Duration::from_millis(200);
    x.end(2, 0x1234, ResultCode::Success); // asked again: fine
    x.get(3);
    assert_eq!(x.rules(), []);
    x.end(4, 0x1234, ResultCode::DeviceBusy);
    x.get(5); // went on
    x.end(6, 0x1234, ResultCode::DeviceBusy);
    x.now += BUSY_RETRY;
    x.o.handle_timeout(x.now); // never asked again
    assert_eq!(x.rules(), [Rule::NoBusyRetry, Rule::NoBusyRetry]);
    assert!(x.o.violations()[0].detail.contains("went on"));
    assert_eq!(x.o.violations()[1].frame, "", "time alone broke it");
}

#[test]
fn an_end_crc_mismatch_names_the_last_end_request() {
    let mut x = Exchange::new();
    x.end(9, 0xCAFE, ResultCode::DeviceBusy);
    x.o.handle_fact(OnuFact::EndCrcMismatch {
        written: 0xBEEF,
        end: 0xCAFE,
    });
    let v = x.o.violations()[0].clone();
    assert_eq!(v.rule, Rule::EndCrcMismatch);
    assert_eq!(
        v.detail,
        "image CRC 0x0000beef, End says 0x0000cafe: the End CRC does not match the sections the OLT sent"
    );
    assert_eq!(&v.frame[..8], "0009550a", "TCI 9, End software download");
    assert_eq!(x.o.poll_rule_broken(), Some(v));
    assert_eq!(x.o.poll_rule_broken(), None);
}

#[test]
fn an_onu_that_goes_down_and_boots_forgets_and_so_does_the_observer() {
    let mut x = Exchange::new();
    x.announce(false);
    x.end(1, 0x1234, ResultCode::DeviceBusy);
    // Down: what it is sent now, it never takes in (a Commit of an image not running, which
    // would also leave the busy End unasked).
    x.o.handle_fact(OnuFact::Down);
    x.request(2, Contents::CommitSoftwareRequest);
    assert_eq!(x.rules(), []);
    // Booted: the busy End is forgotten with the ONU's memory; the rules apply again.
    x.o.handle_fact(OnuFact::Booted);
    x.announce(false);
    x.get(3);
    assert_eq!(x.rules(), []);
    x.request(
        4,
        Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
    );
    assert_eq!(x.rules(), [Rule::ActivateInvalid]);
}

#[test]
fn a_download_the_onu_discarded_is_not_judged_until_the_next_start() {
    let mut x = Exchange::new();
    x.start(1, 310, 4);
    x.o.handle_fact(OnuFact::DownloadDiscarded);
    x.section(2, 2, false); // the ONU has no download: it drops this
    assert_eq!(x.rules(), []);
    x.start(3, 310, 4);
    x.section(4, 2, false); // a first pass that starts at section 2
    assert_eq!(x.rules(), [Rule::SectionsSkip]);
    assert_eq!(
        x.o.violations()[0].detail,
        "window 0: section 2 follows the window's start on a first pass"
    );
}

#[test]
fn the_report_is_the_json_of_the_process_contract() {
    let mut x = Exchange::new();
    x.end(1, 0x1234, ResultCode::DeviceBusy);
    x.get(2);
    let r = x.o.report();
    let text = serde_json::to_string(&r).unwrap();
    assert!(
        text.starts_with(r#"{"onu":1,"violations":1,"rules":[{"rule":"no-busy-retry","detail":"#),
        "{text}"
    );
    assert_eq!(serde_json::from_str::<OltReport>(&text).unwrap(), r);
}

#[test]
fn a_rule_broken_again_and_again_is_one_entry_with_its_count_first_and_last() {
    for keep in [Keep::Summary, Keep::Every] {
        let mut x = Exchange::new();
        x.o = OltObserver::new(ONU, ExtendedTrailer::Crc32, keep);
        x.get(7);
        // A thousand Activates reusing TCI 7, a Commit, one more Activate.
        for i in 0..1000u32 {
            x.now += Duration::from_millis(1);
            x.request(
                7,
                Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                    activate_flags: (i % 3) as u8,
                }),
            );
        }
        x.now += IN_FLIGHT + Duration::from_millis(1);
        x.get(8);
        x.now += Duration::from_millis(1);
        x.request(8, Contents::CommitSoftwareRequest);
        assert_eq!(x.o.count(Rule::TciReused), 1001, "{keep:?}");
        assert_eq!(x.o.total(), 1001);
        let s = x.o.summary().to_vec();
        assert_eq!(s.len(), 1, "{s:#?}");
        assert_eq!(s[0].source, "G.988 11.1");
        assert_eq!(&s[0].frame[..4], "0007", "the first: TCI 7");
        assert_eq!(&s[0].last_frame[..4], "0008", "the last: TCI 8");
        assert_eq!(
            s[0].last_detail,
            "TCI 0x0008 reused for another request within 2s"
        );
        // One warning per rule: the first violation, once.
        let first = x.o.poll_rule_broken().unwrap();
        assert_eq!((first.rule, &first.frame), (Rule::TciReused, &s[0].frame));
        assert_eq!(x.o.poll_rule_broken(), None);
        // Only what was asked for is kept.
        let r = x.o.report();
        assert_eq!(r.violations, 1001);
        match keep {
            Keep::Summary => {
                assert!(x.o.violations().is_empty());
                assert_eq!(r.all, None);
                assert!(!serde_json::to_string(&r).unwrap().contains("\"all\""));
            }
            Keep::Every => {
                assert_eq!(x.o.violations().len(), 1001);
                assert_eq!(r.all.as_ref().map(Vec::len), Some(1001));
            }
        }
    }
}

#[test]
fn a_second_rule_is_warned_of_once_and_the_counts_outlive_a_reboot() {
    let mut x = Exchange::new();
    x.o = OltObserver::new(ONU, ExtendedTrailer::Crc32, Keep::Summary);
    x.end(1, 0x1234, ResultCode::DeviceBusy);
    x.get(2); // went on: no-busy-retry
    assert_eq!(
        x.o.poll_rule_broken().map(|v| v.rule),
        Some(Rule::NoBusyRetry)
    );
    x.o.handle_fact(OnuFact::Down);
    x.o.handle_fact(OnuFact::Booted);
    x.announce(false);
    for tci in [3, 4] {
        x.request(
            tci,
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
        );
    }
    assert_eq!(x.o.count(Rule::NoBusyRetry), 1, "kept across the reboot");
    assert_eq!(x.o.count(Rule::ActivateInvalid), 2);
    let rules: Vec<Rule> = x.o.summary().iter().map(|s| s.rule).collect();
    assert_eq!(
        rules,
        [Rule::NoBusyRetry, Rule::ActivateInvalid],
        "in order of first break"
    );
    assert_eq!(
        x.o.poll_rule_broken().map(|v| v.rule),
        Some(Rule::ActivateInvalid)
    );
    assert_eq!(x.o.poll_rule_broken(), None);
}
