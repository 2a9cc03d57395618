//! The driver's side of `onu run --check-olt` on a real core: what [`take_outputs`] shows the
//! OLT observer, and in which order. (The observer's rules themselves are tested in the
//! conformance crate, and against our OLT in `tests/conformance_sim.rs`.)

mod harness;

use std::borrow::Cow;

use conformance::{Keep, OltObserver, Rule};
use harness::*;
use omci_codec::contents::{
    ActivateSoftwareRequest, Contents, DownloadSectionRequest, RebootRequest,
    StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::{ExtendedTrailer, Format, MeClass, MeId, Message, Tci};
use onu::core::Onu;
use onu::driver::take_outputs;

/// The observer beside the Lab's ONU, fed as the process driver feeds it.
struct Watched {
    lab: Lab,
    observer: OltObserver,
}

impl Watched {
    /// The Lab's ONU, booted again with the observer beside it from its first datagram.
    fn new() -> Watched {
        Watched::with(Lab::new())
    }

    fn with(lab: Lab) -> Watched {
        let mut w = Watched {
            lab,
            observer: OltObserver::new(ONU, ExtendedTrailer::Crc32, Keep::Every),
        };
        w.boot_again();
        w
    }

    /// Boots the core again from its flash, as the driver does after a reboot.
    fn boot_again(&mut self) {
        let (flash, faults) = self.lab.onu.take().unwrap().into_parts();
        let mut onu = Onu::boot(self.lab.cfg.clone(), flash, faults).unwrap_or_else(|_| panic!());
        let (mut events, mut datagrams) = (Vec::new(), Vec::new());
        take_outputs(
            &mut onu,
            Some(&mut self.observer),
            self.lab.now,
            &mut events,
            &mut datagrams,
        );
        self.lab.onu = Some(onu);
    }

    fn send(&mut self, msg: &Message<'_>) {
        let d = Envelope::omcc(ONU).wrap(&codec().to_vec(msg).unwrap());
        let now = self.lab.now;
        self.observer.handle_downstream(now, &d);
        let onu = self.lab.onu();
        onu.handle_datagram(now, &d);
        let (mut events, mut datagrams) = (Vec::new(), Vec::new());
        take_outputs(
            onu,
            Some(&mut self.observer),
            now,
            &mut events,
            &mut datagrams,
        );
    }

    fn start(&mut self, tci: u16, size: u32) {
        self.send(&Message::new(
            Tci(tci),
            Format::Baseline,
            sw(1),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: 7,
                image_size: size,
                instances: [1u16].into_iter().collect(),
            }),
        ));
    }

    fn section(&mut self, tci: u16, n: u8) {
        self.send(
            &Message::new(
                Tci(tci),
                Format::Baseline,
                sw(1),
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: n,
                    data: Cow::Owned(vec![0; 31]),
                }),
            )
            .with_ar(false),
        );
    }
}

#[test]
fn a_new_start_over_a_partial_download_is_followed_by_the_observer() {
    // The core reports the old download discarded, then answers the new Start: the observer
    // must hear of the discard first, or it would drop the new download and judge nothing.
    let size = image("V2", 2, 3000).len() as u32;
    let mut w = Watched::new();
    w.start(1, size);
    w.section(2, 0);
    w.section(3, 1);
    w.start(4, size);
    w.section(5, 2); // a first pass of window 0 that starts at section 2
    let rules: Vec<Rule> = w.observer.violations().iter().map(|v| v.rule).collect();
    assert_eq!(rules, [Rule::SectionsSkip], "{:?}", w.observer.violations());
}

#[test]
fn a_reboot_is_followed_by_the_observer_and_the_booted_onus_flags_reach_it() {
    // Reboot: the core goes down (the observer stops judging), boots again from its flash and
    // announces both images; after that an Activate of the invalid standby image is judged.
    let mut w = Watched::new();
    w.send(&Message::new(
        Tci(1),
        Format::Baseline,
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    ));
    assert!(w.lab.onu().reboot_requested());
    let activate = Message::new(
        Tci(2),
        Format::Baseline,
        sw(1),
        Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
    );
    // While it goes down, nothing it is sent counts.
    w.send(&activate);
    assert_eq!(w.observer.violations(), []);
    w.boot_again();
    w.send(&activate);
    let rules: Vec<Rule> = w.observer.violations().iter().map(|v| v.rule).collect();
    assert_eq!(rules, [Rule::ActivateInvalid]);
}

#[test]
fn a_download_the_onu_drops_when_idle_is_dropped_by_the_observer_too() {
    let mut w = Watched::with(Lab::with(|c| {
        c.stale_download_timeout = std::time::Duration::from_secs(5)
    }));
    let size = image("V2", 2, 3000).len() as u32;
    w.start(1, size);
    w.section(2, 0);
    w.lab.now += std::time::Duration::from_secs(6);
    let now = w.lab.now;
    let onu = w.lab.onu();
    onu.handle_timeout(now);
    let (mut events, mut datagrams) = (Vec::new(), Vec::new());
    take_outputs(onu, Some(&mut w.observer), now, &mut events, &mut datagrams);
    // The ONU holds no download now: a section it drops breaks no rule of a download.
    w.section(3, 5);
    assert_eq!(w.observer.violations(), []);
}
