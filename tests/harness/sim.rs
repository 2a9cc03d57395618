//! One simulated PON for every in-process test: a controller (the OLT engine, a campaign, or
//! any client with the same sans-IO face) and real ONU cores, over a seeded network that
//! loses, duplicates, reorders and corrupts datagrams, on a virtual clock that jumps to the
//! next deadline (quinn-proto's test `Pair`, for a PON). ONUs that ask to reboot, or lose
//! power at a named point, are down for [`REBOOT`] and boot again from the same flash.
//!
//! The controller may be the conformance crate's ONU suite ([`conformance::OnuSuite`]), and
//! each ONU may have an OLT observer beside it ([`Pon::watch_olt`]), fed exactly as the ONU's
//! process driver feeds it (`onu::driver::take_outputs` after every input).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use conformance::{Keep, OltObserver, OnuSuite};
use olt::campaign::Campaign;
use olt::engine::{Dest, Mode, MulticastConfig, Olt};
use olt::image::UpgradeImage;
use olt::session::{Job, SessionConfig};
use omci_codec::OnuId;
use omci_codec::envelope::Envelope;
use onu::boot::BootError;
use onu::core::{Onu, OnuConfig};
use onu::faults::Faults;
use onu::flash::MemFlash;

use crate::images::{MODEL, key};

/// A seeded coin for the network's faults.
pub struct Rng(pub u64);

impl Rng {
    pub fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        p > 0.0 && (self.0 >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// What drives the PON from the OLT's side: the engine alone, a campaign over it, or any
/// other sans-IO client with the same face.
pub trait Controller {
    /// A datagram from the address of ONU `from` (None: nobody's).
    fn handle_datagram(&mut self, now: Instant, from: Option<OnuId>, d: &[u8]);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self, now: Instant) -> Option<olt::engine::Transmit>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn finished(&self) -> bool;
}

impl Controller for Olt {
    fn handle_datagram(&mut self, now: Instant, from: Option<OnuId>, d: &[u8]) {
        Olt::handle_datagram(self, now, from, d)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Olt::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<olt::engine::Transmit> {
        Olt::poll_transmit(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Olt::poll_timeout(self)
    }
    fn finished(&self) -> bool {
        Olt::finished(self)
    }
}

impl Controller for Campaign {
    fn handle_datagram(&mut self, now: Instant, from: Option<OnuId>, d: &[u8]) {
        Campaign::handle_datagram(self, now, from, d)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Campaign::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<olt::engine::Transmit> {
        Campaign::poll_transmit(self, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Campaign::poll_timeout(self)
    }
    fn finished(&self) -> bool {
        Campaign::finished(self)
    }
}

/// The ONU suite, as the controller of a PON of the ONU it checks.
impl Controller for OnuSuite {
    fn handle_datagram(&mut self, now: Instant, _from: Option<OnuId>, d: &[u8]) {
        OnuSuite::handle_datagram(self, now, d)
    }
    fn handle_timeout(&mut self, now: Instant) {
        OnuSuite::handle_timeout(self, now)
    }
    fn poll_transmit(&mut self, _now: Instant) -> Option<olt::engine::Transmit> {
        let datagram = OnuSuite::poll_transmit(self)?;
        let (envelope, _) = Envelope::parse(&datagram).expect("the suite sends envelopes");
        Some(olt::engine::Transmit {
            dest: Dest::Onu(envelope.onu_id),
            datagram,
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        OnuSuite::poll_timeout(self)
    }
    fn finished(&self) -> bool {
        self.is_finished()
    }
}

pub enum Node {
    Olt,
    Onu(OnuId),
}

/// A SIGKILL planned for one ONU: right after it has handled its `after`-th datagram of the
/// run (counted across its lives), with the answers it made to it sent first (`answered`) or
/// lost with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kill {
    pub after: u64,
    pub answered: bool,
}

/// One PON: the OLT, the ONUs, and the datagrams in flight.
pub struct Pon<C: Controller = Olt> {
    pub now: Instant,
    pub olt: C,
    pub onus: BTreeMap<OnuId, Option<Onu<MemFlash>>>,
    pub down: BTreeMap<OnuId, (Instant, MemFlash, Faults)>,
    pub cfg: BTreeMap<OnuId, OnuConfig>,
    pub in_flight: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    pub payloads: Vec<Option<(Node, Vec<u8>)>>,
    /// Which ONU sent each datagram to the OLT (by its index in `payloads`): its source
    /// address, as the OLT's driver would see it.
    pub senders: BTreeMap<usize, OnuId>,
    pub seq: u64,
    pub rng: Rng,
    pub loss: f64,
    pub duplicate: f64,
    /// Share of datagrams held back 3 ms (so that later ones overtake them).
    pub reorder: f64,
    /// Share of datagrams with one byte flipped (the OMCI CRC or the envelope check drops them).
    pub corrupt: f64,
    /// Datagrams to ONUs whose envelope carried this lab's window fields.
    pub with_window_fields: u64,
    pub silent: Vec<OnuId>,
    /// SIGKILLs planned, per ONU, in the order they come.
    pub kills: BTreeMap<OnuId, Vec<Kill>>,
    /// Datagrams each ONU has handled so far, over all its lives.
    pub handled: BTreeMap<OnuId, u64>,
    /// The OMCI message type byte of each datagram each ONU handled, in order (0 for one that
    /// did not decode).
    pub handled_types: BTreeMap<OnuId, Vec<u8>>,
    /// OLT observers beside the ONUs that have one ([`Pon::watch_olt`]).
    pub observers: BTreeMap<OnuId, OltObserver>,
    /// What each ONU produced and the network has not taken yet: drained from the core after
    /// every input, so that an observer sees each answer right after its request.
    pub outbox: BTreeMap<OnuId, Vec<Vec<u8>>>,
}

pub const LATENCY: Duration = Duration::from_millis(1);
pub const REBOOT: Duration = Duration::from_millis(200);

impl Pon {
    pub fn new(n: u16, golden: &[u8], target: &UpgradeImage, cfg: &SessionConfig) -> Pon {
        Pon::with_mode(n, golden, target, cfg, Mode::Unicast, |_, _| {})
    }

    pub fn with_mode(
        n: u16,
        golden: &[u8],
        target: &UpgradeImage,
        cfg: &SessionConfig,
        mode: Mode,
        tune: impl Fn(OnuId, &mut OnuConfig),
    ) -> Pon {
        Pon::build(n, golden, tune, |ids, now| {
            let job = Job::Upgrade {
                image: target.clone(),
            };
            Olt::new(&job, ids, mode, cfg, &MulticastConfig::default(), now)
        })
    }
}

impl<C: Controller> Pon<C> {
    /// `n` ONUs booted from `golden` (each tuned), and the controller `make` builds.
    pub fn build(
        n: u16,
        golden: &[u8],
        tune: impl Fn(OnuId, &mut OnuConfig),
        make: impl FnOnce(&[OnuId], Instant) -> C,
    ) -> Pon<C> {
        let now = Instant::now();
        let ids: Vec<OnuId> = (1..=n).map(OnuId).collect();
        let mut onus = BTreeMap::new();
        let mut cfgs = BTreeMap::new();
        for &id in &ids {
            let mut c = OnuConfig::lab(id, MODEL, key().verifying_key());
            c.golden = Some(golden.to_vec().into());
            c.busy_duration = Duration::from_millis(300);
            tune(id, &mut c);
            let onu = match Onu::boot(c.clone(), MemFlash::default(), Faults::none()) {
                Ok(o) => o,
                Err((_, _, e)) => panic!("{e}"),
            };
            onus.insert(id, Some(onu));
            cfgs.insert(id, c);
        }
        Pon {
            now,
            olt: make(&ids, now),
            onus,
            down: BTreeMap::new(),
            cfg: cfgs,
            in_flight: BinaryHeap::new(),
            payloads: Vec::new(),
            senders: BTreeMap::new(),
            seq: 0,
            rng: Rng(0x1234_5678_9ABC_DEF1),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            with_window_fields: 0,
            silent: Vec::new(),
            kills: BTreeMap::new(),
            handled: BTreeMap::new(),
            handled_types: BTreeMap::new(),
            observers: BTreeMap::new(),
            outbox: BTreeMap::new(),
        }
    }

    /// An OLT observer beside every ONU, from now on (`onu run --check-olt --check-olt-all`),
    /// keeping every violation.
    pub fn watch_olt(&mut self) {
        self.watch_olt_keeping(Keep::Every);
    }

    /// An OLT observer beside every ONU, from now on, keeping `keep` of the rules broken
    /// (`Keep::Summary`: as `onu run --check-olt`).
    pub fn watch_olt_keeping(&mut self, keep: Keep) {
        for (id, cfg) in &self.cfg {
            self.observers.insert(
                *id,
                OltObserver::new(*id, cfg.extended_trailer.clone(), keep),
            );
        }
    }

    /// Takes what ONU `id` produced since its last input, as its process driver does.
    fn take(&mut self, id: OnuId) {
        if let Some(Some(onu)) = self.onus.get_mut(&id) {
            let mut events = Vec::new();
            let out = self.outbox.entry(id).or_default();
            onu::driver::take_outputs(onu, self.observers.get_mut(&id), self.now, &mut events, out);
        }
    }

    pub fn send(&mut self, to: Node, datagram: Vec<u8>) {
        self.send_from(None, to, datagram)
    }

    /// Puts `datagram` on the network, from ONU `from` (None: from the OLT, or nobody's).
    pub fn send_from(&mut self, from: Option<OnuId>, to: Node, datagram: Vec<u8>) {
        if matches!(to, Node::Onu(_))
            && omci_codec::envelope::Envelope::parse(&datagram)
                .is_ok_and(|(e, _)| e.window_no.is_some() || e.window_crc.is_some())
        {
            self.with_window_fields += 1;
        }
        if self.rng.chance(self.loss) {
            return;
        }
        let mut datagram = datagram;
        if self.rng.chance(self.corrupt) {
            let at = (self.seq as usize * 7919) % datagram.len();
            datagram[at] ^= 0x5A;
        }
        let copies = if self.rng.chance(self.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if self.rng.chance(self.reorder) {
                LATENCY * 4
            } else {
                LATENCY
            };
            self.seq += 1;
            self.payloads.push(Some((
                match &to {
                    Node::Olt => Node::Olt,
                    Node::Onu(id) => Node::Onu(*id),
                },
                datagram.clone(),
            )));
            if let Some(from) = from {
                self.senders.insert(self.payloads.len() - 1, from);
            }
            self.in_flight.push(Reverse((
                self.now + delay,
                self.seq,
                self.payloads.len() - 1,
            )));
        }
    }

    /// Moves every queued output onto the network and reboots ONUs that asked to.
    pub fn flush(&mut self) {
        while let Some(out) = self.olt.poll_transmit(self.now) {
            match out.dest {
                Dest::Onu(id) => self.send(Node::Onu(id), out.datagram),
                // The group: every ONU gets its own copy, each lost on its own.
                Dest::Group => {
                    let ids: Vec<OnuId> = self.onus.keys().copied().collect();
                    for id in ids {
                        self.send(Node::Onu(id), out.datagram.clone());
                    }
                }
            }
        }
        let ids: Vec<OnuId> = self.onus.keys().copied().collect();
        for id in ids {
            self.take(id);
            let outs = self.outbox.remove(&id).unwrap_or_default();
            let mut reboot = false;
            if let Some(Some(onu)) = self.onus.get(&id) {
                // A power cut: the ONU is down like for a reboot, and comes back from flash.
                reboot = onu.reboot_requested() || onu.power_lost().is_some();
            }
            for d in outs {
                if !self.silent.contains(&id) {
                    self.send_from(Some(id), Node::Olt, d);
                }
            }
            if reboot {
                let onu = self.onus.get_mut(&id).unwrap().take().unwrap();
                let (flash, faults) = onu.into_parts();
                self.down.insert(id, (self.now + REBOOT, flash, faults));
            }
        }
    }

    /// ONU `id` is killed (SIGKILL) now: what it queued is sent first when `answered`, else
    /// lost; it boots again from its flash after [`REBOOT`].
    pub fn kill(&mut self, id: OnuId, answered: bool) {
        self.take(id);
        let outs = self.outbox.remove(&id).unwrap_or_default();
        let Some(onu) = self.onus.get_mut(&id).and_then(Option::take) else {
            return;
        };
        if answered && !self.silent.contains(&id) {
            for d in outs {
                self.send_from(Some(id), Node::Olt, d);
            }
        }
        let (flash, faults) = onu.into_parts();
        self.down.insert(id, (self.now + REBOOT, flash, faults));
    }

    pub fn next_event(&self) -> Option<Instant> {
        let net = self.in_flight.peek().map(|Reverse((t, _, _))| *t);
        let olt = self.olt.poll_timeout();
        let onus = self
            .onus
            .values()
            .flatten()
            .filter_map(|o| o.poll_timeout())
            .min();
        let reboots = self.down.values().map(|(t, _, _)| *t).min();
        let observers = self
            .observers
            .values()
            .filter_map(|o| o.poll_timeout())
            .min();
        [net, olt, onus, reboots, observers]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        self.flush();
        while !self.olt.finished() {
            let Some(t) = self.next_event() else { break };
            assert!(t <= end, "the rollout did not finish within {limit:?}");
            self.step(t);
        }
    }

    /// Runs until `done` holds (bounded by 60 s of virtual time).
    pub fn run_until(&mut self, done: impl Fn(&Pon<C>) -> bool) {
        let end = self.now + Duration::from_secs(60);
        self.flush();
        while !done(self) {
            let Some(t) = self.next_event() else { break };
            assert!(t <= end, "the condition never held");
            self.step(t);
        }
    }

    /// Moves time to `t`: reboots due, datagrams due, timeouts, then everything queued.
    pub fn step(&mut self, t: Instant) {
        self.now = self.now.max(t);
        let now = self.now;
        // Reboots that are due.
        let due: Vec<OnuId> = self
            .down
            .iter()
            .filter(|(_, (t, _, _))| *t <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let (_, mut flash, mut faults) = self.down.remove(&id).unwrap();
            loop {
                match Onu::boot(self.cfg[&id].clone(), flash, faults) {
                    Ok(onu) => {
                        self.onus.insert(id, Some(onu));
                        // Its boot (and, to an observer, that it is up) before its first input.
                        self.take(id);
                        break;
                    }
                    Err((f, plan, BootError::ImageFailed { .. })) => {
                        flash = f;
                        faults = plan;
                    }
                    Err((_, _, e)) => panic!("ONU {id} unbootable: {e}"),
                }
            }
        }
        // Datagrams that are due.
        while let Some(Reverse((t, _, i))) = self.in_flight.peek().copied() {
            if t > now {
                break;
            }
            self.in_flight.pop();
            let (to, d) = self.payloads[i].take().unwrap();
            let from = self.senders.remove(&i);
            match to {
                Node::Olt => self.olt.handle_datagram(now, from, &d),
                Node::Onu(id) => {
                    if let Some(Some(onu)) = self.onus.get_mut(&id) {
                        if let Some(o) = self.observers.get_mut(&id) {
                            o.handle_downstream(now, &d);
                        }
                        onu.handle_datagram(now, &d);
                        self.take(id);
                        let kind = omci_codec::envelope::Envelope::parse(&d)
                            .ok()
                            .and_then(|(_, f)| f.get(2).copied())
                            .unwrap_or(0);
                        self.handled_types.entry(id).or_default().push(kind);
                        let n = self.handled.entry(id).or_insert(0);
                        *n += 1;
                        let n = *n;
                        let due = self.kills.get_mut(&id).and_then(|ks| {
                            let i = ks.iter().position(|k| k.after == n)?;
                            Some(ks.remove(i))
                        });
                        if let Some(k) = due {
                            self.kill(id, k.answered);
                        }
                    }
                }
            }
        }
        self.olt.handle_timeout(now);
        let ids: Vec<OnuId> = self.onus.keys().copied().collect();
        for id in ids {
            if let Some(Some(onu)) = self.onus.get_mut(&id)
                && onu.poll_timeout().is_some_and(|t| t <= now)
            {
                onu.handle_timeout(now);
                self.take(id);
            }
        }
        for o in self.observers.values_mut() {
            if o.poll_timeout().is_some_and(|t| t <= now) {
                o.handle_timeout(now);
            }
        }
        self.flush();
    }

    pub fn flash(&self, id: OnuId) -> &MemFlash {
        self.onus[&id].as_ref().expect("ONU up").flash()
    }
}
