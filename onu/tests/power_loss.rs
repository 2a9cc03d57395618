//! Power loss at every named point, and at every occurrence of it in an upgrade: the ONU
//! reboots into a state G.988 allows, with a committed valid image, and the upgrade can be
//! finished afterwards.

mod harness;

use harness::*;
use omci_codec::ResultCode;
use onu::faults::FaultPoint;
use onu::flash::{Flash, MemFlash};
use sha2::{Digest, Sha256};

/// G.988's rules for the two images, as Get reports them.
fn assert_allowed<F: Flash + Clone>(lab: &mut Lab<F>, case: &str) {
    let s = lab.state();
    let committed = s.iter().filter(|i| i.0).count();
    let active = s.iter().filter(|i| i.1).count();
    assert_eq!(committed, 1, "{case}: exactly one committed image: {s:?}");
    assert_eq!(active, 1, "{case}: exactly one active image: {s:?}");
    for (i, (c, a, v)) in s.iter().enumerate() {
        if *c || *a {
            assert!(
                *v,
                "{case}: image {i} is committed or active but not valid: {s:?}"
            );
        }
    }
}

/// One upgrade of image 1 to `img`, stopping early if the power goes. Returns whether it ran
/// to the end.
fn try_upgrade<F: Flash + Clone>(lab: &mut Lab<F>, img: &[u8]) -> bool {
    let r = lab.try_start(1, img.len(), 8);
    if lab.stopped() || r.and_then(|r| r.contents.result()) != Some(ResultCode::Success) {
        return false;
    }
    for w in 0..img.len().div_ceil(31 * 8) as u32 {
        if lab.send_window(1, img, 8, w, &[]) != Some(ResultCode::Success) || lab.stopped() {
            return false;
        }
    }
    let crc = omci_codec::crc::crc32_bzip2(img);
    loop {
        let r = lab.try_end_with(1, crc, img.len() as u32);
        if lab.stopped() {
            return false;
        }
        match r {
            Some(ResultCode::DeviceBusy) => lab.advance(std::time::Duration::from_millis(100)),
            Some(ResultCode::Success) => break,
            _ => return false,
        }
        if lab.stopped() {
            return false;
        }
    }
    if lab.try_activate(1, 0) != Some(ResultCode::Success) || lab.stopped() {
        return false;
    }
    lab.try_commit(1) == Some(ResultCode::Success) && lab.is_dead().is_none()
}

/// After a cut, the OLT finishes where the ONU stands: nothing to do if V2 is committed, Commit
/// if it runs uncommitted, else the whole upgrade again. Then image 1 must hold `img` byte for
/// byte, committed, active and valid.
fn finish(lab: &mut Lab, img: &[u8], case: &str) {
    if lab.get_sw(1).is_committed != Some(true) || lab.version(1) != "V2" {
        if lab.state()[1].1 && lab.version(1) == "V2" {
            assert_eq!(lab.commit(1), ResultCode::Success, "{case}");
        } else {
            assert!(try_upgrade(lab, img), "{case}: the retry did not finish");
        }
    }
    assert_allowed(lab, case);
    assert_eq!(lab.state()[1], (true, true, true), "{case}");
    assert_eq!(lab.version(1), "V2", "{case}");
    let want = Sha256::digest(img);
    assert_eq!(Sha256::digest(&lab.flash().slots[1]), want, "{case}");
    assert_eq!(
        lab.onu().metadata().slots[1].image_sha256[..],
        want[..],
        "{case}"
    );
}

#[test]
fn every_named_point_at_every_occurrence_is_survived() {
    let v2 = image("V2", 2, 1200);
    let mut cases = 0;
    let mut fired = std::collections::BTreeSet::new();
    for point in FaultPoint::UPGRADE {
        for occurrence in 1..=12 {
            let case = format!("{point} #{occurrence}");
            let mut lab = Lab::new();
            lab.plan_power_loss(point, occurrence);
            let finished = try_upgrade(&mut lab, &v2);
            if lab.is_dead().is_none() {
                // This point is reached fewer times in one upgrade: nothing more to cut.
                assert!(finished, "{case}: no power loss and no finished upgrade");
                break;
            }
            assert_eq!(lab.is_dead(), Some(point), "{case}: cut at another point");
            fired.insert(point);
            cases += 1;
            // Power back: the bootloader runs on what the flash holds; the OLT finishes.
            lab.power_cycle();
            assert_allowed(&mut lab, &case);
            finish(&mut lab, &v2, &case);
        }
    }
    assert_eq!(
        fired.len(),
        FaultPoint::UPGRADE.len(),
        "points that never fired: {fired:?}"
    );
    eprintln!("{cases} power-loss cases");
    assert!(cases >= 20, "only {cases} cases ran");
}

/// One request of the upgrade, sent by the OLT of the test.
type Step = Box<dyn Fn(&mut Lab) -> bool>;

/// A small seeded generator, so that every case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The core with its flash, run for `budget` steps of an upgrade (a Start, a whole window, an
/// End, an Activate, a Commit), then the power is cut; half the cases also arm a named point.
/// The in-process stand-in for SIGKILL between requests; cuts inside a step are the named
/// points' and the flash-write cuts' part, SIGKILL of real processes the process tests'.
#[test]
fn power_cut_at_random_moments_is_always_survived() {
    let v2 = image("V2", 2, 1500);
    let cases = 300u64;
    for seed in 1..=cases {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let case = format!("seed {seed}");
        let mut lab = Lab::new();
        // Half the cases also arm a named point at a random occurrence.
        if rng.below(2) == 0 {
            let point = FaultPoint::UPGRADE[rng.below(6) as usize];
            lab.plan_power_loss(point, 1 + rng.below(4) as u32);
        }
        let budget = rng.below(80) as usize;
        let mut handled = 0usize;
        let window = [4u16, 8, 16][rng.below(3) as usize];
        // Drive the upgrade one request at a time, cutting after `budget` requests.
        let mut steps: Vec<Step> = Vec::new();
        let img = v2.clone();
        steps.push(Box::new(move |lab: &mut Lab| {
            lab.try_start(1, img.len(), window).is_some()
        }));
        let windows = v2.len().div_ceil(31 * usize::from(window)) as u32;
        for w in 0..windows {
            let img = v2.clone();
            steps.push(Box::new(move |lab: &mut Lab| {
                lab.send_window(1, &img, window, w, &[]).is_some()
            }));
        }
        for _ in 0..6 {
            let img = v2.clone();
            steps.push(Box::new(move |lab: &mut Lab| {
                let crc = omci_codec::crc::crc32_bzip2(&img);
                let r = lab.try_end_with(1, crc, img.len() as u32);
                lab.advance(std::time::Duration::from_millis(100));
                r.is_some()
            }));
        }
        steps.push(Box::new(|lab: &mut Lab| lab.try_activate(1, 0).is_some()));
        steps.push(Box::new(|lab: &mut Lab| lab.try_commit(1).is_some()));
        for step in &steps {
            if handled >= budget || lab.is_dead().is_some() {
                break;
            }
            step(&mut lab);
            handled += 1;
        }
        lab.power_cycle();
        assert_allowed(&mut lab, &case);
        finish(&mut lab, &v2, &case);
    }
}

/// Flash that loses power at its N-th write: that write is left half done (a slot write or a
/// metadata record torn in two, an erase not done) and every later write fails, as on a device
/// whose power is gone. Reads still see what reached the flash.
#[derive(Clone, Debug)]
struct CutFlash {
    inner: MemFlash,
    writes: u32,
    cut_at: u32,
}

impl CutFlash {
    fn cut(&self) -> bool {
        self.writes >= self.cut_at
    }

    /// Counts a write; `Ok(true)` to do it whole, `Ok(false)` to do half of it (the cut).
    fn write(&mut self) -> std::io::Result<bool> {
        if self.cut() {
            return Err(std::io::Error::other("power is off"));
        }
        self.writes += 1;
        Ok(self.writes < self.cut_at)
    }
}

impl Flash for CutFlash {
    fn slot_len(&mut self, slot: u8) -> std::io::Result<u64> {
        self.inner.slot_len(slot)
    }
    fn read_slot(&mut self, slot: u8, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_slot(slot, offset, buf)
    }
    fn write_slot(&mut self, slot: u8, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let whole = self.write()?;
        let n = if whole { data.len() } else { data.len() / 2 };
        self.inner.write_slot(slot, offset, &data[..n])?;
        if whole {
            Ok(())
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }
    fn erase_slot(&mut self, slot: u8) -> std::io::Result<()> {
        if self.write()? {
            self.inner.erase_slot(slot)
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }
    fn sync_slot(&mut self, slot: u8) -> std::io::Result<()> {
        self.inner.sync_slot(slot)
    }
    fn read_meta(&mut self, copy: u8) -> std::io::Result<Option<Vec<u8>>> {
        self.inner.read_meta(copy)
    }
    fn write_meta(&mut self, copy: u8, bytes: &[u8]) -> std::io::Result<()> {
        let whole = self.write()?;
        let n = if whole { bytes.len() } else { bytes.len() / 2 };
        self.inner.write_meta(copy, &bytes[..n])?;
        if whole {
            Ok(())
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }

    fn read_rebuild(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_rebuild(offset, buf)
    }
    fn write_rebuild(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let whole = self.write()?;
        let n = if whole { data.len() } else { data.len() / 2 };
        self.inner.write_rebuild(offset, &data[..n])?;
        if whole {
            Ok(())
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }
    fn erase_rebuild(&mut self) -> std::io::Result<()> {
        if self.write()? {
            self.inner.erase_rebuild()
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }
    fn promote_rebuild(&mut self, slot: u8) -> std::io::Result<()> {
        if self.write()? {
            self.inner.promote_rebuild(slot)
        } else {
            Err(std::io::Error::other("power cut"))
        }
    }
}

/// A cut between any two flash writes of an upgrade (and in the middle of any one of them),
/// including the bootloader's own writes at the reboot into the new image.
#[test]
fn a_cut_at_every_flash_write_of_an_upgrade_is_survived() {
    let v2 = image("V2", 2, 900);
    let base = Lab::new().flash();
    // Windows held in memory and written whole (the default), then each section written as
    // it comes (an ONU whose window buffers are full).
    for (buffers, at_least) in [(None, 10), (Some(0), 30)] {
        let tune = |c: &mut onu::core::OnuConfig| {
            if let Some(b) = buffers {
                c.window_buffer_bytes = b;
            }
        };
        let mut cases = 0;
        for cut_at in 1..=400u32 {
            let case = format!("cut at flash write {cut_at} (window buffers {buffers:?})");
            let flash = CutFlash {
                inner: base.clone(),
                writes: 0,
                cut_at,
            };
            let mut lab = Lab::on_flash(tune, flash);
            try_upgrade(&mut lab, &v2);
            let after = lab.flash();
            if !after.cut() {
                break; // the upgrade needs fewer writes: every one has been cut
            }
            cases += 1;
            // Power back on the flash as the cut left it.
            let mut back = Lab::on_flash(tune, after.inner);
            assert_allowed(&mut back, &case);
            finish(&mut back, &v2, &case);
        }
        eprintln!("{cases} flash-write cuts (window buffers {buffers:?})");
        assert!(
            cases >= at_least,
            "only {cases} writes in an upgrade (window buffers {buffers:?})?"
        );
    }
}

/// A delta package's upgrade, cut at every flash write (and in the middle of each): the
/// package's download, the rebuild area's erase, each rebuild write, the swap, the metadata.
/// Power back, the base (image 0) is byte for byte what it was, the ONU is in a state G.988
/// allows, and the OLT's restarted download rebuilds the target byte for byte.
#[test]
fn a_cut_at_every_flash_write_of_a_delta_upgrade_is_survived() {
    use pon::firmware::{BuildSpec, Derivation, build, derive_payload, deterministic_payload};
    // The golden image the harness's ONU starts on, and a new release of it.
    let base_image = image("V1", 1, 500);
    let how = Derivation {
        changed_pct: 5.0,
        inserted_pct: 2.0,
        moved_pct: 0.0,
        seed: "cut".into(),
    };
    let spec = BuildSpec {
        model: MODEL.into(),
        version: "V2".into(),
        security_version: 2,
        build: 1,
        fails_to_boot: false,
    };
    let target = build(
        &spec,
        &derive_payload(&deterministic_payload("V1", 500), &how),
        &key(),
    )
    .unwrap();
    let package = pon::delta::build(&base_image, &target, &key()).unwrap();
    let tune = |c: &mut onu::core::OnuConfig| c.rebuild_step = 64;
    let fresh = Lab::with(tune).flash();
    assert_eq!(
        fresh.slots[0], base_image,
        "the ONU starts on the golden image"
    );
    let mut cases = 0;
    for cut_at in 1..=400u32 {
        let case = format!("delta: cut at flash write {cut_at}");
        let flash = CutFlash {
            inner: fresh.clone(),
            writes: 0,
            cut_at,
        };
        let mut lab = Lab::on_flash(tune, flash);
        let finished = try_upgrade(&mut lab, &package);
        let after = lab.flash();
        if !after.cut() {
            assert!(finished, "{case}: no cut and no finished upgrade");
            assert_eq!(after.inner.slots[1], target, "{case}");
            break; // the upgrade needs fewer writes: every one has been cut
        }
        cases += 1;
        let mut back = Lab::on_flash(tune, after.inner);
        assert_allowed(&mut back, &case);
        if back.get_sw(1).is_committed != Some(true) || back.version(1) != "V2" {
            // Not yet committed on V2: the base still runs, untouched.
            assert_eq!(
                back.flash().slots[0],
                base_image,
                "{case}: the base changed"
            );
            if back.state()[1].1 && back.version(1) == "V2" {
                assert_eq!(back.commit(1), ResultCode::Success, "{case}");
            } else {
                assert!(try_upgrade(&mut back, &package), "{case}: the restart");
            }
        }
        assert_allowed(&mut back, &case);
        assert_eq!(back.state()[1], (true, true, true), "{case}");
        assert_eq!(back.flash().slots[1], target, "{case}: the rebuilt image");
    }
    eprintln!("{cases} flash-write cuts of a delta upgrade");
    // The package's windows are each written once: most writes are the rebuild's.
    assert!(cases >= 25, "only {cases} writes in a delta upgrade?");
}
