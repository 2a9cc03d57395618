//! Recovery mode over TFTP, in process: the ONU's recovery state machine against the lab's
//! sans-IO TFTP server, over an in-memory network with delays and outages, on a virtual
//! clock. Every fault of issue 20: the server down then up, slow, a truncated, tampered or
//! wrong-model golden image, an image below the anti-rollback floor, a power cut in the
//! middle of the restore. Each asserts that nothing boots until a good image is committed
//! (the bootloader keeps asking for recovery), and that the ONU ends bootable, on exactly the
//! good image's bytes, once a good server is reachable.

mod harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{MODEL, ONU, image, image_with, key};
use onu::boot::BootError;
use onu::core::{Onu, OnuConfig, OnuEvent};
use onu::faults::{FaultPoint, Faults, PowerLossPlan};
use onu::flash::{Flash, MemFlash, read_whole_slot};
use onu::meta::{self, Metadata};
use onu::recovery::{Recovery, RecoveryConfig};
use pon::tftp::{Answer, Transfer};

const SERVER: &str = "127.0.0.1:6969";
/// The server's transfer ID (the port of its answers).
const TID: &str = "127.0.0.1:7000";
const ONU_ADDR: &str = "127.0.0.1:9000";

fn cfg() -> OnuConfig {
    let mut c = OnuConfig::lab(ONU, MODEL, key().verifying_key());
    c.network_golden = true;
    c
}

fn good() -> Vec<u8> {
    image("GOLD", 1, 9000)
}

/// What a power cut left: both slots and both metadata copies garbled.
fn wrecked() -> MemFlash {
    let mut f = MemFlash::default();
    f.write_slot(0, 0, &vec![0x5A; 3000]).unwrap();
    f.write_slot(1, 0, &image("V2", 2, 2000)[..1000]).unwrap();
    f.meta = [Some(vec![0xFF; 100]), Some(vec![1; meta::RECORD_LEN])];
    f
}

/// The server's side: what it serves, and how.
struct Server {
    file: Arc<[u8]>,
    /// Answers nothing until then (down, then up).
    down_until: Option<Instant>,
    /// Every packet it sends takes this long to arrive.
    delay: Duration,
    honour_options: bool,
}

impl Server {
    fn serving(file: Vec<u8>) -> Server {
        Server {
            file: file.into(),
            down_until: None,
            delay: Duration::ZERO,
            honour_options: true,
        }
    }
}

/// A recovery in progress, the server, the network between them and the virtual clock.
struct Net {
    now: Instant,
    recovery: Option<Recovery<MemFlash>>,
    transfer: Option<Transfer>,
    server: Server,
    /// Packets for the ONU, with when they arrive.
    to_onu: Vec<(Instant, Vec<u8>)>,
    events: Vec<OnuEvent>,
    /// The flash after a power cut, waiting to be powered on.
    off: Option<(MemFlash, Faults)>,
}

fn recovery_cfg() -> RecoveryConfig {
    RecoveryConfig::lab(
        format!("tftp://{SERVER}/golden.img").parse().unwrap(),
        1 << 20,
    )
}

impl Net {
    /// Powers `flash` on: the bootloader must ask for recovery (never boot what is there).
    fn power_on(now: Instant, flash: MemFlash, faults: Faults, server: Server) -> Net {
        let mut n = Net::new(now, server);
        n.boot_into_recovery(flash, faults, recovery_cfg());
        n
    }

    /// No ONU yet.
    fn new(now: Instant, server: Server) -> Net {
        Net {
            now,
            recovery: None,
            transfer: None,
            server,
            to_onu: Vec::new(),
            events: Vec::new(),
            off: None,
        }
    }

    fn boot_into_recovery(&mut self, flash: MemFlash, faults: Faults, rc: RecoveryConfig) {
        match Onu::boot(cfg(), flash, faults) {
            Err((
                f,
                faults,
                BootError::RecoveryNeeded {
                    slot,
                    anti_rollback_floor,
                },
            )) => {
                self.recovery = Some(Recovery::new(
                    self.now,
                    rc,
                    cfg().boot_config(),
                    f,
                    faults,
                    slot,
                    anti_rollback_floor,
                ));
                self.transfer = None;
                self.to_onu.clear();
            }
            Ok(onu) => panic!("booted {:?} with no good image in flash", onu.running()),
            Err((_, _, e)) => panic!("the bootloader did not ask for recovery: {e}"),
        }
    }

    /// Moves packets and time until the golden image is restored, the power is cut, or
    /// `limit` of virtual time has passed. True when restored.
    fn run(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        let server: SocketAddr = SERVER.parse().unwrap();
        let tid: SocketAddr = TID.parse().unwrap();
        let onu: SocketAddr = ONU_ADDR.parse().unwrap();
        loop {
            let up = self.server.down_until.is_none_or(|t| self.now >= t);
            let r = self.recovery.as_mut().expect("in recovery mode");
            while let Some((to, p)) = r.poll_transmit() {
                if !up {
                    continue; // nobody listens
                }
                if to == server {
                    let file = self.server.file.clone();
                    match Transfer::answer(self.now, &p, |_| Some(file), self.server.honour_options)
                    {
                        Answer::Started(t) => self.transfer = Some(t),
                        Answer::Refused(e) => self.to_onu.push((self.now + self.server.delay, e)),
                    }
                } else if to == tid
                    && let Some(t) = self.transfer.as_mut()
                {
                    t.handle_datagram(self.now, &p);
                }
            }
            if let Some(t) = self.transfer.as_mut() {
                while let Some(p) = t.poll_transmit() {
                    self.to_onu.push((self.now + self.server.delay, p));
                }
            }
            while let Some(e) = r.poll_event() {
                self.events.push(e);
            }
            if r.restored() {
                return true;
            }
            if r.power_lost().is_some() {
                let (f, faults) = self.recovery.take().unwrap().into_parts();
                self.off = Some((f, faults));
                return false;
            }
            // Deliver what is due, else jump to the next deadline.
            if let Some(i) = self.to_onu.iter().position(|(at, _)| *at <= self.now) {
                let (_, p) = self.to_onu.remove(i);
                r.handle_datagram(self.now, tid, &p);
                continue;
            }
            let next = [
                r.poll_timeout(),
                self.transfer.as_ref().and_then(Transfer::poll_timeout),
                self.to_onu.iter().map(|(at, _)| *at).min(),
                self.server.down_until.filter(|t| *t > self.now),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("recovery always has a deadline");
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            r.handle_timeout(self.now);
            if let Some(t) = self.transfer.as_mut() {
                t.handle_timeout(self.now);
            }
            let _ = onu;
        }
    }

    /// The reasons of the failed attempts so far.
    fn failures(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                OnuEvent::RecoveryFailed { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    /// Asserts that the flash as it stands boots nothing: power it on, and the bootloader
    /// asks for recovery again.
    fn assert_boots_nothing(&self) {
        let flash = self
            .recovery
            .as_ref()
            .expect("in recovery mode")
            .flash()
            .clone();
        match Onu::boot(cfg(), flash, Faults::none()) {
            Err((_, _, BootError::RecoveryNeeded { .. })) => {}
            Ok(onu) => panic!("an unverified image booted from slot {}", onu.running()),
            Err((_, _, e)) => panic!("unexpected: {e}"),
        }
    }

    /// The golden image is committed: the ONU boots it, byte for byte `want`, and a
    /// bootloader without any golden source boots it again.
    fn assert_boots(self, want: &[u8]) -> MemFlash {
        let (mut flash, _) = self.recovery.expect("in recovery mode").into_parts();
        let m = meta::load(&mut flash).unwrap().expect("readable metadata");
        assert_eq!(read_whole_slot(&mut flash, m.committed).unwrap(), want);
        let mut plain = cfg();
        plain.network_golden = false;
        let onu = Onu::boot(plain, flash, Faults::none()).expect("bootable");
        assert_eq!(onu.running(), m.committed);
        assert!(onu.metadata().slots[usize::from(m.committed)].valid);
        onu.into_flash()
    }
}

#[test]
fn a_wrecked_flash_is_restored_over_tftp_and_boots() {
    let mut n = Net::power_on(
        Instant::now(),
        wrecked(),
        Faults::none(),
        Server::serving(good()),
    );
    assert!(n.run(Duration::from_secs(10)));
    assert!(n.failures().is_empty(), "{:?}", n.failures());
    assert!(
        n.events
            .iter()
            .any(|e| matches!(e, OnuEvent::GoldenRestored { version, .. } if version == "GOLD"))
    );
    n.assert_boots(&good());
}

#[test]
fn a_server_that_is_down_is_retried_with_backoff_until_it_is_up() {
    let start = Instant::now();
    let mut server = Server::serving(good());
    server.down_until = Some(start + Duration::from_secs(40));
    let mut n = Net::power_on(start, wrecked(), Faults::none(), server);
    assert!(
        !n.run(Duration::from_secs(39)),
        "restored while the server was down"
    );
    let failures = n.failures();
    assert!(failures.len() >= 3, "{failures:?}");
    assert!(
        failures[0].contains("no answer from the TFTP server 127.0.0.1:6969"),
        "{}",
        failures[0]
    );
    // The waits between attempts double, and are bounded.
    let waits: Vec<u64> = n
        .events
        .iter()
        .filter_map(|e| match e {
            OnuEvent::RecoveryFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            _ => None,
        })
        .collect();
    assert_eq!(&waits[..3], &[1000, 2000, 4000]);
    assert!(waits.iter().all(|w| *w <= 30_000));
    n.assert_boots_nothing();
    assert!(
        n.run(Duration::from_secs(60)),
        "never restored once the server was up"
    );
    n.assert_boots(&good());
}

#[test]
fn a_server_slower_than_the_timeout_fails_and_one_within_it_succeeds() {
    let mut slow = Server::serving(good());
    // Past the 1 s timeout, every packet: the read still moves (each block is sent again
    // before its answer comes), but slower than the transfer limit allows.
    slow.delay = Duration::from_millis(1500);
    let mut n = Net::new(Instant::now(), slow);
    let mut rc = recovery_cfg();
    rc.tftp.transfer_limit = Duration::from_secs(5);
    n.boot_into_recovery(wrecked(), Faults::none(), rc);
    assert!(!n.run(Duration::from_secs(20)));
    assert!(
        n.failures()
            .iter()
            .all(|f| f.contains("took longer than 5 s")),
        "{:?}",
        n.failures()
    );
    n.assert_boots_nothing();
    n.server.delay = Duration::from_millis(300);
    assert!(n.run(Duration::from_secs(120)));
    n.assert_boots(&good());
}

/// Serves `bad` first: refused with a reason containing `why`, nothing boots; then the good
/// image, which is restored.
fn refused_then_restored(bad: Vec<u8>, why: &str) {
    let mut n = Net::power_on(
        Instant::now(),
        wrecked(),
        Faults::none(),
        Server::serving(bad),
    );
    assert!(
        !n.run(Duration::from_secs(8)),
        "a bad golden image was committed"
    );
    let failures = n.failures();
    assert!(!failures.is_empty());
    assert!(
        failures.iter().all(|f| f.contains(why)),
        "{why}: {failures:?}"
    );
    assert!(
        !n.events
            .iter()
            .any(|e| matches!(e, OnuEvent::GoldenRestored { .. }))
    );
    n.assert_boots_nothing();
    n.server.file = good().into();
    assert!(n.run(Duration::from_secs(60)));
    n.assert_boots(&good());
}

#[test]
fn a_truncated_golden_image_is_refused() {
    let g = good();
    refused_then_restored(g[..g.len() - 100].to_vec(), "header says");
}

#[test]
fn a_tampered_golden_image_is_refused() {
    let mut g = good();
    g[4000] ^= 0x01;
    refused_then_restored(g, "SHA-256 does not match");
}

#[test]
fn a_golden_image_signed_by_another_key_is_refused() {
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    refused_then_restored(
        image_with(MODEL, "GOLD", 1, 9000, false, &stranger),
        "signature does not verify",
    );
}

#[test]
fn a_golden_image_for_another_model_is_refused() {
    refused_then_restored(
        image_with("OTHER-ONU", "GOLD", 1, 9000, false, &key()),
        "is for model \"OTHER-ONU\"",
    );
}

#[test]
fn a_golden_image_below_the_anti_rollback_floor_is_refused() {
    // Readable metadata with a floor of 3, both slots garbled.
    let mut flash = wrecked();
    flash.meta = [None, None];
    let mut m = Metadata {
        anti_rollback_floor: 3,
        ..Metadata::default()
    };
    meta::store(&mut flash, &mut m).unwrap();
    let mut n = Net::power_on(
        Instant::now(),
        flash,
        Faults::none(),
        Server::serving(good()),
    );
    assert!(!n.run(Duration::from_secs(8)));
    assert!(
        n.failures()[0].contains("below this ONU's anti-rollback floor 3"),
        "{:?}",
        n.failures()
    );
    n.assert_boots_nothing();
    let newer = image("GOLD3", 3, 9000);
    n.server.file = newer.clone().into();
    assert!(n.run(Duration::from_secs(60)));
    n.assert_boots(&newer);
}

#[test]
fn a_plain_rfc_1350_server_is_enough() {
    let mut s = Server::serving(good());
    s.honour_options = false;
    let mut n = Net::power_on(Instant::now(), wrecked(), Faults::none(), s);
    assert!(n.run(Duration::from_secs(10)));
    n.assert_boots(&good());
}

#[test]
fn a_power_cut_in_the_middle_of_the_restore_restarts_recovery_at_the_next_boot() {
    for block in [1, 3, 7] {
        let plan = Faults::power_loss(PowerLossPlan {
            point: FaultPoint::MidGoldenRestore,
            occurrence: block,
        });
        let mut n = Net::power_on(Instant::now(), wrecked(), plan, Server::serving(good()));
        assert!(
            !n.run(Duration::from_secs(10)),
            "block {block}: restored through a power cut"
        );
        let (flash, faults) = n.off.take().expect("the power was cut");
        assert!(n.events.contains(&OnuEvent::PowerLost {
            point: FaultPoint::MidGoldenRestore
        }));
        // Half a block reached the slot, and the metadata calls it not valid: power on again,
        // the bootloader enters recovery mode again (it boots nothing), which restores.
        let now = n.now + Duration::from_secs(1);
        let mut n = Net::power_on(now, flash, faults, Server::serving(good()));
        assert!(
            n.run(Duration::from_secs(10)),
            "block {block}: not restored after the cut"
        );
        n.assert_boots(&good());
    }
}

#[test]
fn the_fallback_file_is_used_when_the_server_fails_and_a_bad_one_is_not() {
    let mut down = Server::serving(good());
    down.down_until = Some(Instant::now() + Duration::from_secs(3600));
    let mut n = Net::power_on(Instant::now(), wrecked(), Faults::none(), down);
    // A bad fallback (tampered): still in recovery mode.
    let mut tampered = good();
    tampered[300] ^= 0x80;
    let flash = n.recovery.take().unwrap().into_parts().0;
    let mut rc = recovery_cfg();
    rc.fallback = Some(tampered.into());
    n.boot_into_recovery(flash, Faults::none(), rc);
    assert!(!n.run(Duration::from_secs(20)));
    assert!(
        n.failures()[0].contains("the fallback file: the golden image is refused"),
        "{:?}",
        n.failures()
    );
    n.assert_boots_nothing();
    // A good one: restored from it at the first failed attempt.
    let flash = n.recovery.take().unwrap().into_parts().0;
    let mut rc = recovery_cfg();
    rc.fallback = Some(good().into());
    n.events.clear();
    n.boot_into_recovery(flash, Faults::none(), rc);
    assert!(n.run(Duration::from_secs(20)));
    assert!(n.events.iter().any(
        |e| matches!(e, OnuEvent::GoldenRestored { source, .. } if source == "the fallback file")
    ));
    n.assert_boots(&good());
}

#[test]
fn a_golden_image_larger_than_a_slot_is_refused_before_a_byte_is_written() {
    let mut n = Net::power_on(
        Instant::now(),
        wrecked(),
        Faults::none(),
        Server::serving(image("BIG", 1, 2 << 20)),
    );
    assert!(!n.run(Duration::from_secs(5)));
    assert!(
        n.failures()[0].contains("larger than the 1048576 bytes"),
        "{:?}",
        n.failures()
    );
    let mut flash = n.recovery.as_ref().unwrap().flash().clone();
    let slot = (0..2u8).find(|s| flash.slot_len(*s).unwrap() == 0);
    assert!(slot.is_some(), "the slot being restored holds nothing");
}

#[test]
fn a_crashing_committed_image_with_nothing_beside_it_gets_the_golden_image_over_tftp() {
    // Slot 0: a committed test image that fails to boot; slot 1: nothing valid.
    let bad = image_with(MODEL, "BAD", 1, 500, true, &key());
    let mut flash = MemFlash::default();
    flash.write_slot(0, 0, &bad).unwrap();
    let mut m = Metadata::default();
    m.slots[0] = onu::boot::slot_meta(&pon::firmware::inspect(&bad, None).unwrap());
    meta::store(&mut flash, &mut m).unwrap();
    let faults = loop {
        match Onu::boot(cfg(), flash, Faults::none()) {
            Err((f, _, BootError::ImageFailed { .. })) => flash = f,
            Err((f, faults, BootError::RecoveryNeeded { slot, .. })) => {
                assert_eq!(slot, 1, "the golden image goes beside the crashing one");
                flash = f;
                break faults;
            }
            Ok(_) => panic!("a crashing image booted"),
            Err((_, _, e)) => panic!("{e}"),
        }
    };
    // Recovery mode starts from where the bootloader stopped (no boot in between).
    let mut n = Net::new(Instant::now(), Server::serving(good()));
    n.recovery = Some(Recovery::new(
        n.now,
        recovery_cfg(),
        cfg().boot_config(),
        flash,
        faults,
        1,
        0,
    ));
    assert!(n.run(Duration::from_secs(10)));
    let mut flash = n.assert_boots(&good());
    assert_eq!(
        read_whole_slot(&mut flash, 0).unwrap(),
        bad,
        "the crashing image was not overwritten"
    );
}
