//! A PON projection: the real OLT engine and real ONU cores, in one process, over a timing
//! model of a GPON instead of loopback, on a virtual clock. It answers "how long would this
//! rollout take on a real PON?" for a given set of assumptions, in each mode.
//!
//! The model ([`PonModel`], every figure a parameter):
//!
//! - **Downstream**: one shared channel (G.984: 2.48832 Gb/s) that carries every OMCI frame in
//!   a GEM frame (5-byte header), one after the other. A frame to the multicast group is sent
//!   **once** and heard by every ONU (a multicast GEM port); a frame to one ONU takes the same
//!   channel time. GTC framing overhead (PCBd, bandwidth maps) is left out: it is a few
//!   per cent.
//! - **Upstream**: one shared channel (1.24416 Gb/s); an ONU's answer waits for its next
//!   grant (`upstream_grant`) and then its own serialization.
//! - **Fibre**: `fiber_km` of propagation each way (5 µs per km).
//! - **ONU processing**: each ONU handles its OMCI frames one at a time, in arrival order: a
//!   Download section costs `onu_section`, the window's last one (AR set: the window is
//!   checked, written to flash and answered) `onu_section + onu_ack`, any other message
//!   `onu_message`. Frames wait in the ONU's queue while it is busy (no queue limit).
//!   Validating the image after End takes `onu_validate` (the ONU answers "busy" meanwhile);
//!   a reboot takes `onu_reboot`.
//! - **OLT**: its own processing is not modelled (it is a fast machine, see
//!   docs/benchmarks.md for what ours costs); `olt_sections_per_s` caps the Download sections
//!   it puts on the PON per second, if the OLT's OMCI path has such a limit.
//!
//! Nothing is lost or corrupted: the projection is of a healthy PON.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use omci_codec::envelope::Envelope;
use omci_codec::{Format, OnuId};
use onu::core::{Onu, OnuConfig};
use onu::faults::Faults;
use onu::flash::MemFlash;
use pon::firmware::{BuildSpec, build, deterministic_payload};

use olt::engine::{Dest, Mode, MulticastConfig, Olt};
use olt::image::UpgradeImage;
use olt::session::{Job, Outcome, SessionConfig};

/// The assumptions of a projection. [`PonModel::default`] is a G.984 GPON with 20 km of fibre
/// and an ONU that takes 1 ms per section and 20 ms per window.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PonModel {
    /// Downstream line rate, bits per second.
    pub downstream_bps: f64,
    /// Upstream line rate, bits per second.
    pub upstream_bps: f64,
    /// GEM header bytes per OMCI frame.
    pub gem_header: usize,
    /// Fibre length, km (5 µs per km each way).
    pub fiber_km: f64,
    /// How long an ONU's answer waits for its upstream grant.
    pub upstream_grant: Duration,
    /// An ONU's time per Download section.
    pub onu_section: Duration,
    /// An ONU's extra time for a window's last section (check, flash write, answer).
    pub onu_ack: Duration,
    /// An ONU's time per other OMCI message.
    pub onu_message: Duration,
    /// How long an ONU checks an image after End (answering busy).
    pub onu_validate: Duration,
    /// How long an ONU takes to reboot.
    pub onu_reboot: Duration,
    /// A cap on the Download sections the OLT sends per second (None: none).
    pub olt_sections_per_s: Option<u32>,
}

impl Default for PonModel {
    fn default() -> Self {
        Self {
            downstream_bps: 2_488_320_000.0,
            upstream_bps: 1_244_160_000.0,
            gem_header: 5,
            fiber_km: 20.0,
            upstream_grant: Duration::from_micros(125),
            onu_section: Duration::from_millis(1),
            onu_ack: Duration::from_millis(20),
            onu_message: Duration::from_millis(1),
            onu_validate: Duration::from_secs(2),
            onu_reboot: Duration::from_secs(60),
            olt_sections_per_s: None,
        }
    }
}

/// What to project.
#[derive(Clone, Debug)]
pub struct ProjectionCase {
    /// ONUs on the PON.
    pub onus: u16,
    /// Image payload bytes.
    pub image_bytes: usize,
    /// How the windows travel.
    pub mode: Mode,
    /// Baseline or extended frames.
    pub format: Format,
    /// Sections per window.
    pub window: u16,
}

/// What a projection found, in virtual (PON) time.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Projection {
    /// ONUs upgraded (committed on the new image).
    pub upgraded: usize,
    /// ONUs on the PON.
    pub onus: u16,
    /// Seconds until every ONU held the whole image (the last download phase to end, from
    /// the start of the rollout).
    pub image_everywhere_s: f64,
    /// Seconds of the whole rollout, activation, reboot and commit included.
    pub rollout_s: f64,
    /// Seconds the downstream channel was busy.
    pub downstream_busy_s: f64,
    /// OMCI frames the OLT put on the downstream channel.
    pub downstream_frames: u64,
    /// Bytes on the downstream channel (GEM headers included).
    pub downstream_bytes: u64,
    /// Frames each ONU handled, summed over the ONUs.
    pub onu_frames: u64,
}

/// Why a projection could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The image could not be built.
    #[error("building the image: {0}")]
    Image(String),
    /// An ONU could not boot.
    #[error("ONU {0} could not boot: {1}")]
    Boot(u16, String),
    /// Nothing was left to happen, and the rollout had not ended.
    #[error("the rollout stopped with nothing left to happen (a bug of the model or the OLT)")]
    Stuck,
    /// The rollout had not ended after this much virtual time.
    #[error("the rollout had not ended after {0:?} of PON time")]
    TooLong(Duration),
}

const MODEL: &str = "LAB-ONU-1";

enum Event {
    /// The OLT's deadline (the one it had when this was scheduled) may be due.
    OltTimer(Instant),
    /// An answer reaches the OLT.
    ToOlt(OnuId, Vec<u8>),
    /// ONU `id` has processed this frame (it arrived earlier and waited its turn), unless it
    /// has rebooted since (its life then is no longer this one).
    Processed(OnuId, u32, Rc<Vec<u8>>),
    /// ONU `id`'s deadline (the one it had when this was scheduled) may be due.
    OnuTimer(OnuId, Instant),
    /// ONU `id` is up again after a reboot.
    Boot(OnuId),
}

struct Sim {
    model: PonModel,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    events: BTreeMap<u64, Event>,
    seq: u64,
    olt: Olt,
    onus: BTreeMap<OnuId, Option<Onu<MemFlash>>>,
    down: BTreeMap<OnuId, (MemFlash, Faults)>,
    cfg: BTreeMap<OnuId, OnuConfig>,
    /// When each ONU is done with the frames it has so far.
    busy_until: BTreeMap<OnuId, Instant>,
    /// Each ONU's life: counts its reboots.
    life: BTreeMap<OnuId, u32>,
    downstream_free: Instant,
    upstream_free: Instant,
    olt_timer: Option<Instant>,
    onu_timer: BTreeMap<OnuId, Instant>,
    image_everywhere: Option<Instant>,
    result: Projection,
}

impl Sim {
    fn at(&mut self, t: Instant, e: Event) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, e);
    }

    fn propagation(&self) -> Duration {
        Duration::from_secs_f64(self.model.fiber_km * 5e-6)
    }

    /// The ONU's time for this frame: by message type (the OMCI header's third byte).
    fn cost(&self, datagram: &[u8]) -> Duration {
        let Ok((_, frame)) = Envelope::parse(datagram) else {
            return self.model.onu_message;
        };
        match frame.get(2) {
            Some(mt) if mt & 0x1F == 20 && mt & 0x40 != 0 => {
                self.model.onu_section + self.model.onu_ack
            }
            Some(mt) if mt & 0x1F == 20 => self.model.onu_section,
            _ => self.model.onu_message,
        }
    }

    /// Everything the OLT has to send now goes on the downstream channel, in order.
    fn olt_out(&mut self) {
        while let Some(t) = self.olt.poll_transmit(self.now) {
            let frame_len = Envelope::parse(&t.datagram).map_or(t.datagram.len(), |(_, f)| f.len());
            let bytes = frame_len + self.model.gem_header;
            let start = self.now.max(self.downstream_free);
            let end =
                start + Duration::from_secs_f64(bytes as f64 * 8.0 / self.model.downstream_bps);
            self.downstream_free = end;
            self.result.downstream_busy_s += (end - start).as_secs_f64();
            self.result.downstream_frames += 1;
            self.result.downstream_bytes += bytes as u64;
            let arrival = end + self.propagation();
            let cost = self.cost(&t.datagram);
            let d = Rc::new(t.datagram);
            let to: Vec<OnuId> = match t.dest {
                Dest::Onu(id) => vec![id],
                Dest::Group => self.onus.keys().copied().collect(),
            };
            for id in to {
                if !matches!(self.onus.get(&id), Some(Some(_))) {
                    continue; // down (rebooting): the frame is lost
                }
                let free = self.busy_until.get(&id).copied().unwrap_or(arrival);
                let done = arrival.max(free) + cost;
                self.busy_until.insert(id, done);
                let life = self.life.get(&id).copied().unwrap_or(0);
                self.at(done, Event::Processed(id, life, Rc::clone(&d)));
            }
        }
        if let Some(t) = self.olt.poll_timeout()
            && self.olt_timer != Some(t)
        {
            self.olt_timer = Some(t);
            self.at(t.max(self.now), Event::OltTimer(t));
        }
    }

    /// ONU `id`'s answers go upstream; a reboot it asked for takes it down.
    fn onu_out(&mut self, id: OnuId) {
        let mut answers = Vec::new();
        let mut reboot = false;
        let mut timer = None;
        if let Some(Some(onu)) = self.onus.get_mut(&id) {
            while let Some(d) = onu.poll_transmit() {
                answers.push(d);
            }
            while onu.poll_event().is_some() {}
            reboot = onu.reboot_requested();
            timer = onu.poll_timeout();
        }
        for d in answers {
            let frame_len = Envelope::parse(&d).map_or(d.len(), |(_, f)| f.len());
            let bytes = frame_len + self.model.gem_header;
            let start = (self.now + self.model.upstream_grant).max(self.upstream_free);
            let end = start + Duration::from_secs_f64(bytes as f64 * 8.0 / self.model.upstream_bps);
            self.upstream_free = end;
            let t = end + self.propagation();
            self.at(t, Event::ToOlt(id, d));
        }
        if reboot {
            if let Some(onu) = self.onus.get_mut(&id).and_then(Option::take) {
                self.down.insert(id, onu.into_parts());
                self.busy_until.remove(&id);
                *self.life.entry(id).or_insert(0) += 1;
                self.at(self.now + self.model.onu_reboot, Event::Boot(id));
            }
        } else if let Some(t) = timer
            && self.onu_timer.get(&id) != Some(&t)
        {
            self.onu_timer.insert(id, t);
            self.at(t.max(self.now), Event::OnuTimer(id, t));
        }
    }

    fn boot(&mut self, id: OnuId) -> Result<(), ProjectionError> {
        let Some((mut flash, mut faults)) = self.down.remove(&id) else {
            return Ok(());
        };
        loop {
            match Onu::boot(self.cfg[&id].clone(), flash, faults) {
                Ok(onu) => {
                    self.onus.insert(id, Some(onu));
                    return Ok(());
                }
                Err((f, p, onu::boot::BootError::ImageFailed { .. })) => {
                    flash = f;
                    faults = p;
                }
                Err((_, _, e)) => return Err(ProjectionError::Boot(id.0, e.to_string())),
            }
        }
    }

    /// Notes when the last ONU's download phase ended.
    fn watch_downloads(&mut self) {
        if self.image_everywhere.is_some() {
            return;
        }
        let all = self.olt.sessions().all(|s| {
            s.outcome().is_some() || s.stats().phases.iter().any(|p| p.name == "download")
        });
        if all {
            self.image_everywhere = Some(self.now);
        }
    }
}

/// Runs `case` over a PON of `model`; stops with an error after `limit` of PON time.
pub fn project(
    model: &PonModel,
    case: &ProjectionCase,
    limit: Duration,
) -> Result<Projection, ProjectionError> {
    let key = SigningKey::from_bytes(&[7; 32]);
    let spec = |version: &str, security: u32| BuildSpec {
        model: MODEL.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot: false,
    };
    let golden = build(&spec("V1", 1), &deterministic_payload("V1", 4096), &key)
        .map_err(|e| ProjectionError::Image(e.to_string()))?;
    let target = build(
        &spec("V2", 2),
        &deterministic_payload("V2", case.image_bytes),
        &key,
    )
    .map_err(|e| ProjectionError::Image(e.to_string()))?;
    let target = UpgradeImage::new(target).map_err(|e| ProjectionError::Image(e.to_string()))?;
    let start = Instant::now();
    let ids: Vec<OnuId> = (1..=case.onus).map(OnuId).collect();
    let golden: std::sync::Arc<[u8]> = golden.into();
    let mut onus = BTreeMap::new();
    let mut cfgs = BTreeMap::new();
    for &id in &ids {
        let mut c = OnuConfig::lab(id, MODEL, key.verifying_key());
        c.golden = Some(golden.clone());
        c.busy_duration = model.onu_validate;
        c.stale_download_timeout = Duration::from_secs(3600);
        let onu = Onu::boot(c.clone(), MemFlash::default(), Faults::none())
            .map_err(|(_, _, e)| ProjectionError::Boot(id.0, e.to_string()))?;
        onus.insert(id, Some(onu));
        cfgs.insert(id, c);
    }
    // An answer wait long enough for a window queued at the ONU behind every window in flight
    // (the multicast pipeline keeps `depth` of them there) and processed, twice over: an OLT
    // that waits less sends repairs for windows that are only queued.
    let window_time = model.onu_section * u32::from(case.window) + model.onu_ack;
    let mcfg = MulticastConfig::default();
    let in_flight = u32::try_from(mcfg.depth).unwrap_or(8) + 1;
    let cfg = SessionConfig {
        timeout: (window_time * in_flight * 2).max(Duration::from_secs(2)),
        retries: 10,
        window_size: case.window,
        format: case.format,
        reboot_timeout: model.onu_reboot * 3 + Duration::from_secs(30),
        reboot_poll: Duration::from_secs(5),
        busy_interval: Duration::from_millis(500),
        max_busy: u32::try_from(model.onu_validate.as_millis() / 500 + 20).unwrap_or(u32::MAX),
        ..SessionConfig::default()
    };
    let olt = Olt::new(
        &Job::Upgrade { image: target },
        &ids,
        case.mode,
        &cfg,
        &mcfg,
        start,
    )
    .with_pacing(model.olt_sections_per_s);
    let mut sim = Sim {
        model: model.clone(),
        start,
        now: start,
        queue: BinaryHeap::new(),
        events: BTreeMap::new(),
        seq: 0,
        olt,
        onus,
        down: BTreeMap::new(),
        cfg: cfgs,
        busy_until: BTreeMap::new(),
        life: BTreeMap::new(),
        downstream_free: start,
        upstream_free: start,
        olt_timer: None,
        onu_timer: BTreeMap::new(),
        image_everywhere: None,
        result: Projection {
            upgraded: 0,
            onus: case.onus,
            image_everywhere_s: 0.0,
            rollout_s: 0.0,
            downstream_busy_s: 0.0,
            downstream_frames: 0,
            downstream_bytes: 0,
            onu_frames: 0,
        },
    };
    sim.olt_out();
    while !sim.olt.finished() {
        let Some(Reverse((t, seq))) = sim.queue.pop() else {
            // Nothing will ever happen again, and the OLT has not finished.
            return Err(ProjectionError::Stuck);
        };
        if t - sim.start > limit {
            return Err(ProjectionError::TooLong(limit));
        }
        sim.now = sim.now.max(t);
        let now = sim.now;
        let Some(event) = sim.events.remove(&seq) else {
            continue;
        };
        match event {
            // A deadline that has changed since is stale: the new one has its own event.
            Event::OltTimer(t) if sim.olt_timer != Some(t) => {}
            Event::OltTimer(_) => {
                sim.olt_timer = None;
                sim.olt.handle_timeout(now);
                sim.watch_downloads();
                sim.olt_out();
            }
            Event::ToOlt(from, d) => {
                sim.olt.handle_datagram(now, Some(from), &d);
                sim.watch_downloads();
                sim.olt_out();
            }
            Event::Processed(id, life, d) => {
                if sim.life.get(&id).copied().unwrap_or(0) != life {
                    continue; // queued before a reboot: lost with it
                }
                if let Some(Some(onu)) = sim.onus.get_mut(&id) {
                    onu.handle_datagram(now, &d);
                    sim.result.onu_frames += 1;
                    sim.onu_out(id);
                }
            }
            Event::OnuTimer(id, t) if sim.onu_timer.get(&id) != Some(&t) => {}
            Event::OnuTimer(id, _) => {
                sim.onu_timer.remove(&id);
                if let Some(Some(onu)) = sim.onus.get_mut(&id)
                    && onu.poll_timeout().is_some_and(|t| t <= now)
                {
                    onu.handle_timeout(now);
                }
                sim.onu_out(id);
            }
            Event::Boot(id) => {
                sim.boot(id)?;
                sim.onu_out(id);
            }
        }
    }
    sim.watch_downloads();
    sim.result.rollout_s = (sim.now - sim.start).as_secs_f64();
    sim.result.image_everywhere_s = sim
        .image_everywhere
        .map_or(sim.result.rollout_s, |t| (t - sim.start).as_secs_f64());
    sim.result.upgraded = sim
        .olt
        .outcomes()
        .values()
        .filter(|o| **o == Some(Outcome::Upgraded))
        .count();
    Ok(sim.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(onus: u16, mode: Mode) -> ProjectionCase {
        ProjectionCase {
            onus,
            image_bytes: 31 * 32 * 20,
            mode,
            format: Format::Baseline,
            window: 32,
        }
    }

    /// ONUs that take no time: only the channels count.
    fn instant_onus() -> PonModel {
        PonModel {
            onu_section: Duration::ZERO,
            onu_ack: Duration::ZERO,
            onu_message: Duration::ZERO,
            onu_validate: Duration::from_millis(10),
            onu_reboot: Duration::from_millis(100),
            ..PonModel::default()
        }
    }

    #[test]
    fn multicast_puts_one_copy_on_the_channel_and_unicast_one_per_onu() {
        let model = instant_onus();
        let limit = Duration::from_secs(3600);
        let m = project(&model, &case(8, Mode::Multicast), limit).unwrap();
        let u = project(&model, &case(8, Mode::Unicast), limit).unwrap();
        assert_eq!((m.upgraded, u.upgraded), (8, 8));
        let sections = (31 * 32 * 20_usize).div_ceil(31) as u64;
        // The image's sections (plus the signed trailer's) once on the group, against once per ONU.
        assert!(m.downstream_frames < sections + 200, "{m:?}");
        assert!(u.downstream_frames > 8 * sections, "{u:?}");
        // Channel time is bytes over the line rate (each frame's time rounded to the ns).
        let expect = u.downstream_bytes as f64 * 8.0 / model.downstream_bps;
        assert!(
            (u.downstream_busy_s - expect).abs() < expect * 1e-2,
            "{u:?}"
        );
    }

    #[test]
    fn slow_onus_make_the_time_and_a_window_costs_its_sections_and_its_ack() {
        let model = PonModel {
            onu_section: Duration::from_millis(1),
            onu_ack: Duration::from_millis(10),
            ..instant_onus()
        };
        let p = project(&model, &case(4, Mode::Multicast), Duration::from_secs(3600)).unwrap();
        assert_eq!(p.upgraded, 4);
        // 20 windows of 32 sections (and the trailer's sections): at least 20 x (32 ms + 10 ms)
        // of processing at each ONU, which the channel (microseconds) cannot hide.
        assert!(p.image_everywhere_s >= 20.0 * 0.042, "{p:?}");
        assert!(p.image_everywhere_s < 2.0, "{p:?}");
        assert!(p.rollout_s > p.image_everywhere_s);
    }

    #[test]
    fn a_cap_on_the_olt_sections_makes_unicast_n_times_slower_than_multicast() {
        let model = PonModel {
            olt_sections_per_s: Some(2000),
            ..instant_onus()
        };
        let limit = Duration::from_secs(3600);
        let m = project(&model, &case(8, Mode::Multicast), limit).unwrap();
        let u = project(&model, &case(8, Mode::Unicast), limit).unwrap();
        let ratio = u.image_everywhere_s / m.image_everywhere_s;
        assert!((6.0..10.0).contains(&ratio), "{ratio}: {m:?} {u:?}");
    }
}
