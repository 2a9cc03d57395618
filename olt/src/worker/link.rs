//! The driver's line to the fleet while a controller runs its ports ([`driver::Link`]): each
//! ONU's record sent as it changes, the leases heartbeaten, and the fleet's orders (halt, lease
//! lost) and the operator's stop turned into the driver's [`Order`]s. The HTTP calls run on a
//! reporter thread, so that the driver never waits for the fleet.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::{ClientError, FleetClient};
use crate::driver::{self, Campaigns, Order};
use crate::engine::PonPort;
use crate::fleet_api::{
    Heartbeat, HeartbeatAnswer, Lease, OnuReport, Registered, Results, ResultsAnswer,
};

/// The operator's stop (SIGINT, SIGTERM), seen by every loop of the controller.
#[derive(Clone, Debug)]
pub(super) struct Stop(Arc<AtomicBool>);

impl Stop {
    /// Listens for SIGINT and SIGTERM on a thread of its own.
    pub(super) fn install() -> Result<Stop> {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                runtime.block_on(crate::cli::ctrl_c());
                set.store(true, Ordering::SeqCst);
            })?;
        Ok(Stop(flag))
    }

    /// True once stopped.
    pub(super) fn stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps `d`, or less when stopped meanwhile.
    pub(super) fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}

enum Msg {
    Results(PonPort, Vec<OnuReport>),
    Done,
}

/// The link of one run of the driver.
pub(super) struct FleetLink {
    tx: mpsc::Sender<Msg>,
    orders: UnboundedReceiver<Order>,
    queued: Vec<Order>,
    sent: BTreeMap<PonPort, BTreeMap<u16, OnuReport>>,
    last_diff: Option<Instant>,
    stop: Stop,
    stopping: bool,
    ports: Vec<PonPort>,
    reporter: Option<std::thread::JoinHandle<BTreeSet<PonPort>>>,
}

/// What a run of the link leaves: the ports whose lease was lost, and each port's last records.
pub(super) struct Ended {
    /// Lost (or fenced): not this controller's to give back.
    pub(super) lost: BTreeSet<PonPort>,
    /// The records last sent, by port.
    pub(super) last: BTreeMap<PonPort, Vec<OnuReport>>,
}

impl FleetLink {
    /// Starts the reporter thread for the works `held` (by port).
    pub(super) fn start(
        client: FleetClient,
        controller: String,
        olt: String,
        held: BTreeMap<PonPort, i64>,
        timing: &Registered,
        stop: Stop,
    ) -> FleetLink {
        let (tx, rx) = mpsc::channel();
        let (otx, orx) = unbounded_channel();
        let ports = held.keys().copied().collect();
        let reporter = Reporter {
            client,
            controller,
            olt,
            held,
            orders: otx,
            heartbeat: Duration::from_millis(timing.heartbeat_ms.max(50)),
            lease: Duration::from_millis(timing.lease_ms.max(100)),
            pending: BTreeMap::new(),
            lost: BTreeSet::new(),
            halted: BTreeSet::new(),
        };
        let handle = std::thread::Builder::new()
            .name("fleet-reporter".into())
            .spawn(move || reporter.run(rx))
            .ok();
        FleetLink {
            tx,
            orders: orx,
            queued: Vec::new(),
            sent: BTreeMap::new(),
            last_diff: None,
            stop,
            stopping: false,
            ports,
            reporter: handle,
        }
    }

    /// Stops the reporter (after it has sent what it holds) and says what was lost.
    pub(super) fn finish(mut self) -> Ended {
        let _ = self.tx.send(Msg::Done);
        let lost = self
            .reporter
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        Ended {
            lost,
            last: self
                .sent
                .into_iter()
                .map(|(p, m)| (p, m.into_values().collect()))
                .collect(),
        }
    }
}

impl driver::Link for FleetLink {
    fn step(&mut self, campaigns: &Campaigns, changed: bool) -> Result<()> {
        // Each ONU's record compared with what was sent: on every change of a result, and
        // five times a second for the rest (versions and models read along the way).
        if !changed
            && self
                .last_diff
                .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return Ok(());
        }
        self.last_diff = Some(Instant::now());
        for (pon, c) in campaigns {
            let sent = self.sent.entry(*pon).or_default();
            let new: Vec<OnuReport> = super::reports(c)
                .into_iter()
                .filter(|r| sent.get(&r.onu_id) != Some(r))
                .collect();
            if new.is_empty() {
                continue;
            }
            for r in &new {
                sent.insert(r.onu_id, r.clone());
            }
            let _ = self.tx.send(Msg::Results(*pon, new));
        }
        Ok(())
    }

    fn order(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Order> + '_>> {
        Box::pin(async move {
            loop {
                if let Some(o) = self.queued.pop() {
                    return o;
                }
                if self.stop.stopped() && !self.stopping {
                    // Stopped by the operator: every port given back as it stands.
                    self.stopping = true;
                    self.queued = self.ports.iter().map(|p| Order::Drop(*p)).collect();
                    continue;
                }
                tokio::select! {
                    o = self.orders.recv() => match o {
                        Some(o) => return o,
                        None => std::future::pending::<()>().await,
                    },
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        })
    }
}

/// The reporter thread: every HTTP call of a run.
struct Reporter {
    client: FleetClient,
    controller: String,
    olt: String,
    held: BTreeMap<PonPort, i64>,
    orders: UnboundedSender<Order>,
    heartbeat: Duration,
    lease: Duration,
    /// Records not yet taken by the fleet, by port and ONU (the newest of each).
    pending: BTreeMap<PonPort, BTreeMap<u16, OnuReport>>,
    lost: BTreeSet<PonPort>,
    halted: BTreeSet<PonPort>,
}

impl Reporter {
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> BTreeSet<PonPort> {
        let mut last_ok = Instant::now();
        let mut next_beat = Instant::now() + self.heartbeat;
        loop {
            let wait = next_beat.saturating_duration_since(Instant::now());
            let mut done = false;
            let mut got = rx.recv_timeout(wait.min(Duration::from_millis(100)));
            // Everything queued, then one send of it.
            loop {
                match got {
                    Ok(Msg::Results(pon, reports)) => {
                        let p = self.pending.entry(pon).or_default();
                        for r in reports {
                            p.insert(r.onu_id, r);
                        }
                    }
                    Ok(Msg::Done) | Err(mpsc::RecvTimeoutError::Disconnected) => done = true,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                }
                if done {
                    break;
                }
                got = rx.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
                });
            }
            self.flush();
            if done {
                return self.lost;
            }
            if Instant::now() >= next_beat {
                let sent_at = Instant::now();
                if self.beat() {
                    last_ok = sent_at;
                }
                next_beat = sent_at + self.heartbeat;
                self.flush();
            }
            // Fencing: no heartbeat answered for a lease (less one beat): the fleet may have
            // given these ports to another controller; stop touching them.
            if last_ok.elapsed() + self.heartbeat >= self.lease {
                for (pon, _) in self.held.clone() {
                    if self.lost.insert(pon) {
                        tracing::warn!(
                            pon = pon.0,
                            "no heartbeat answered for a lease: stopping this port"
                        );
                        let _ = self.orders.send(Order::Drop(pon));
                    }
                }
            }
        }
    }

    fn lose(&mut self, pon: PonPort) {
        if self.lost.insert(pon) {
            let _ = self.orders.send(Order::Drop(pon));
        }
    }

    /// Sends the records pending; those the fleet does not answer wait for the next try.
    fn flush(&mut self) {
        let ports: Vec<PonPort> = self.pending.keys().copied().collect();
        for pon in ports {
            let Some(work) = self.held.get(&pon).copied() else {
                continue;
            };
            if self.lost.contains(&pon) {
                self.pending.remove(&pon);
                continue;
            }
            let onus: Vec<OnuReport> = self.pending[&pon].values().cloned().collect();
            let r = Results {
                controller: self.controller.clone(),
                onus,
            };
            match self
                .client
                .post::<_, ResultsAnswer>(&format!("/api/work/{work}/results"), &r)
            {
                Ok(a) if a.accepted => {
                    self.pending.remove(&pon);
                }
                Ok(_) => {
                    self.pending.remove(&pon);
                    self.lose(pon);
                }
                Err(e) => tracing::warn!("reporting: {e}"),
            }
        }
    }

    /// One heartbeat; true when the fleet answered it.
    fn beat(&mut self) -> bool {
        let work: Vec<i64> = self
            .held
            .iter()
            .filter(|(p, _)| !self.lost.contains(p))
            .map(|(_, w)| *w)
            .collect();
        if work.is_empty() {
            return true;
        }
        let h = Heartbeat {
            controller: self.controller.clone(),
            olt: self.olt.clone(),
            work,
        };
        match self
            .client
            .post::<_, HeartbeatAnswer>("/api/controllers/heartbeat", &h)
        {
            Ok(a) => {
                for l in a.leases {
                    let Some(pon) = self
                        .held
                        .iter()
                        .find(|(_, w)| **w == l.work)
                        .map(|(p, _)| *p)
                    else {
                        continue;
                    };
                    match l.lease {
                        Lease::Held { .. } => {}
                        Lease::Halt { reason } => {
                            if self.halted.insert(pon) {
                                let _ = self.orders.send(Order::Abort(pon, reason));
                            }
                        }
                        Lease::Lost => self.lose(pon),
                    }
                }
                true
            }
            Err(ClientError::Refused { message, .. }) => {
                tracing::warn!("heartbeat refused: {message}");
                false
            }
            Err(e) => {
                tracing::warn!("heartbeat: {e}");
                false
            }
        }
    }
}
