//! The campaign logic, sans-IO: what a campaign does next, decided from its rows and the time.
//!
//! Nothing here reads a clock, a socket or a database. The service's ticker loads a campaign's
//! rows ([`CampaignView`]), asks [`step`] what changes, and the store applies each [`Change`]
//! in one transaction; [`apply`] is the same change on the rows in memory, so that a whole
//! fleet can be simulated without a database (the tests below), and the store is tested to do
//! exactly what [`apply`] does.
//!
//! A campaign's life:
//!
//! 1. **Scheduled** until its start time. Then its targets are chosen from the inventory
//!    ([`targets`]: model, current version, OLTs or region) and its waves planned
//!    ([`plan_waves`]): the **canary** wave, a share of the whole fleet's targeted ONUs spread
//!    over as many PONs as it can reach, then the **cascading groups**, the other ONUs by PON.
//! 2. **Running**: one wave at a time. A wave's PONs are offered to the controllers of their
//!    OLTs ([`choose_claims`]: one controller per OLT at once, one lease per PON, at most
//!    `max_parallel_pons` PONs downloading fleet-wide); a lease not heartbeaten ends and its
//!    PON is offered again ([`Change::LeaseExpired`]). When every PON of the wave is done, the
//!    wave soaks `wave_soak_ms`, then its **health gate** judges it: more than
//!    `kill_threshold` of its ONUs failed halts the campaign, otherwise the next wave starts.
//! 3. The **kill switch** listens all along: as soon as more than `kill_threshold` of the ONUs
//!    of the waves started so far have failed, the campaign halts: no further wave starts, the
//!    PONs not yet taken are cancelled, and the controllers of those running are told to wind
//!    them down to their committed images.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    CampaignState, CampaignView, InventoryOnu, Millis, OnuResult, ResultRow, WaveKind, WaveRow,
    WaveState, WorkRow, WorkState,
};

/// One change to a campaign's rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The start time has come: these waves are planned (all pending) and the campaign runs.
    Plan {
        /// The waves, in order.
        waves: Vec<PlannedWave>,
    },
    /// A wave starts: its PONs' work is offered.
    StartWave {
        /// The wave.
        wave: u32,
    },
    /// A lease was not heartbeaten in time: its PON is offered again.
    LeaseExpired {
        /// The work.
        work: i64,
        /// Who held it.
        owner: String,
    },
    /// Every PON of the wave is done: it soaks.
    WaveDone {
        /// The wave.
        wave: u32,
    },
    /// The wave passed its health gate.
    WaveHealthy {
        /// The wave.
        wave: u32,
    },
    /// The kill switch, a health gate or an operator halts the campaign.
    Halt {
        /// Why, in words.
        reason: String,
    },
    /// Every wave ran and was healthy.
    Complete,
}

/// A wave as planned.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedWave {
    /// Canary or group.
    pub kind: WaveKind,
    /// Its PONs' work.
    pub work: Vec<PlannedWork>,
}

/// One PON's part of a planned wave.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedWork {
    /// The OLT.
    pub olt: String,
    /// The port.
    pub pon: u8,
    /// Its ONUs: ONU-ID and serial number.
    pub onus: Vec<(u16, String)>,
}

/// The ONUs of `inventory` a campaign of a package of `model`, `version` targets: of the
/// campaign's model (the package's when not given), on one of its versions (any but the
/// package's when none is given; never one already on the package's version, active and
/// committed), on one of its OLTs and in its region when given. By OLT, port and ONU-ID.
pub fn targets(
    target: &crate::model::Target,
    model: &str,
    version: &str,
    inventory: &[InventoryOnu],
) -> Vec<InventoryOnu> {
    let model = target.model.as_deref().unwrap_or(model);
    let mut out: Vec<InventoryOnu> = inventory
        .iter()
        .filter(|o| o.model.as_deref() == Some(model))
        .filter(|o| target.olts.is_empty() || target.olts.contains(&o.olt))
        .filter(|o| target.region.as_ref().is_none_or(|r| *r == o.region))
        .filter(|o| {
            let running = o.active_version.as_deref();
            let done = running == Some(version) && o.committed_version.as_deref() == Some(version);
            if done {
                return false;
            }
            target.from_versions.is_empty()
                || running.is_some_and(|v| target.from_versions.iter().any(|f| f == v))
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| (&a.olt, a.pon, a.onu_id).cmp(&(&b.olt, b.pon, b.onu_id)));
    out
}

/// The waves of `targets` (by OLT, port, ONU-ID): the canary wave, `canary_percent` % of all of
/// them (at least one, and at least one left for the groups), taken one ONU per PON in turn so
/// that it reaches as many PONs and OLTs as it can; then the other ONUs by PON, the PONs split
/// in order into `groups` waves as even as can be. No canary when `canary_percent` is 0 or 100
/// or there are fewer than two targets.
pub fn plan_waves(targets: &[InventoryOnu], canary_percent: u8, groups: u32) -> Vec<PlannedWave> {
    let mut by_pon: ByPon = BTreeMap::new();
    for o in targets {
        by_pon
            .entry((o.olt.clone(), o.pon))
            .or_default()
            .push((o.onu_id, o.serial.clone()));
    }
    for onus in by_pon.values_mut() {
        onus.sort();
    }
    let total = targets.len();
    let mut waves = Vec::new();
    if (1..100).contains(&canary_percent) && total >= 2 {
        let want = (total * usize::from(canary_percent))
            .div_ceil(100)
            .clamp(1, total - 1);
        let mut canary: ByPon = BTreeMap::new();
        let mut taken = 0;
        let mut round = 0;
        while taken < want {
            for (key, onus) in &by_pon {
                if taken == want {
                    break;
                }
                if let Some(o) = onus.get(round) {
                    canary.entry(key.clone()).or_default().push(o.clone());
                    taken += 1;
                }
            }
            round += 1;
        }
        for (key, picked) in &canary {
            if let Some(onus) = by_pon.get_mut(key) {
                onus.retain(|o| !picked.contains(o));
            }
        }
        by_pon.retain(|_, onus| !onus.is_empty());
        waves.push(PlannedWave {
            kind: WaveKind::Canary,
            work: works(canary),
        });
    }
    let n = by_pon.len();
    let groups = (groups.max(1) as usize).min(n);
    let mut rest = by_pon.into_iter();
    for g in 0..groups {
        // Group g takes its even share of the PONs left: the first n % groups get one more.
        let size = n / groups + usize::from(g < n % groups);
        let chunk: ByPon = rest.by_ref().take(size).collect();
        waves.push(PlannedWave {
            kind: WaveKind::Group,
            work: works(chunk),
        });
    }
    waves
}

/// ONUs (ONU-ID, serial number) by PON (OLT, port).
type ByPon = BTreeMap<(String, u8), Vec<(u16, String)>>;

fn works(m: ByPon) -> Vec<PlannedWork> {
    m.into_iter()
        .map(|((olt, pon), onus)| PlannedWork { olt, pon, onus })
        .collect()
}

/// True when `step` needs the inventory: the campaign's start time has come.
pub fn needs_inventory(view: &CampaignView, now: Millis) -> bool {
    view.campaign.state == CampaignState::Scheduled
        && view.campaign.spec.start_at.is_none_or(|at| at <= now)
}

/// The changes the campaign makes at `now`, in order (each applied before the next is
/// decided). `inventory` is read when [`needs_inventory`] says so.
pub fn step(view: &CampaignView, inventory: &[InventoryOnu], now: Millis) -> Vec<Change> {
    let mut v = view.clone();
    let mut changes = Vec::new();
    // Each change moves a row forward; a campaign has finitely many, so this ends. The bound
    // is a guard against a bug, not a limit a campaign reaches.
    for _ in 0..(4 * (v.waves.len() + v.work.len()) + 16) {
        let Some(c) = next(&v, inventory, now) else {
            break;
        };
        apply(&mut v, &c, now);
        changes.push(c);
    }
    changes
}

/// A lease is live while it has not reached its end.
pub fn live(w: &WorkRow, now: Millis) -> bool {
    w.state == WorkState::Leased && w.lease_until.is_some_and(|t| t >= now)
}

/// The next change, if any.
fn next(v: &CampaignView, inventory: &[InventoryOnu], now: Millis) -> Option<Change> {
    let spec = &v.campaign.spec;
    match v.campaign.state {
        CampaignState::Draft | CampaignState::Completed => None,
        CampaignState::Scheduled => needs_inventory(v, now).then(|| {
            let t = targets(
                &spec.target,
                &v.campaign.package_model,
                &v.campaign.package_version,
                inventory,
            );
            Change::Plan {
                waves: plan_waves(&t, spec.canary_percent, spec.groups),
            }
        }),
        CampaignState::Halted => expired(v, now),
        CampaignState::Running => {
            if let Some(c) = expired(v, now) {
                return Some(c);
            }
            if let Some(reason) = kill_switch(v) {
                return Some(Change::Halt { reason });
            }
            let Some(wave) = v.waves.iter().find(|w| w.state != WaveState::Healthy) else {
                return Some(Change::Complete);
            };
            match wave.state {
                WaveState::Pending => Some(Change::StartWave { wave: wave.wave }),
                WaveState::Running => v
                    .work
                    .iter()
                    .filter(|w| w.wave == wave.wave)
                    .all(|w| matches!(w.state, WorkState::Done | WorkState::Cancelled))
                    .then_some(Change::WaveDone { wave: wave.wave }),
                WaveState::Soaking => {
                    let due = wave.done_at.unwrap_or(now).plus(spec.wave_soak_ms);
                    if due > now {
                        return None;
                    }
                    let (failed, of) = failures(v, |r| r.wave == wave.wave);
                    if failed > 0 && failed as f64 / of as f64 > spec.kill_threshold {
                        Some(Change::Halt {
                            reason: format!(
                                "health gate: {failed} of the {of} ONUs of wave {} failed (threshold {:.0} %)",
                                wave.wave + 1,
                                spec.kill_threshold * 100.0
                            ),
                        })
                    } else {
                        Some(Change::WaveHealthy { wave: wave.wave })
                    }
                }
                // A failed or cancelled wave belongs to a halted campaign.
                WaveState::Healthy | WaveState::Failed | WaveState::Cancelled => None,
            }
        }
    }
}

/// The first lease past its end.
fn expired(v: &CampaignView, now: Millis) -> Option<Change> {
    v.work
        .iter()
        .find(|w| w.state == WorkState::Leased && !live(w, now))
        .map(|w| Change::LeaseExpired {
            work: w.id,
            owner: w.lease_owner.clone().unwrap_or_default(),
        })
}

/// The failed ONUs among those `of` selects that were to be upgraded (skipped and refused ones
/// were not), and how many those are.
fn failures(v: &CampaignView, of: impl Fn(&ResultRow) -> bool) -> (usize, usize) {
    let rows = v
        .results
        .iter()
        .filter(|r| of(r))
        .filter(|r| !matches!(r.result, OnuResult::Skipped | OnuResult::Refused));
    let (mut failed, mut total) = (0, 0);
    for r in rows {
        total += 1;
        failed += usize::from(r.result == OnuResult::Failed);
    }
    (failed, total)
}

/// What the kill switch reads: the failed ONUs of the waves started so far, and how many of
/// their ONUs were to be upgraded.
pub fn fleet_failures(v: &CampaignView) -> (usize, usize) {
    let started: BTreeSet<u32> = v
        .waves
        .iter()
        .filter(|w| !matches!(w.state, WaveState::Pending | WaveState::Cancelled))
        .map(|w| w.wave)
        .collect();
    failures(v, |r| started.contains(&r.wave))
}

/// The kill switch's verdict: why it trips, if it does.
fn kill_switch(v: &CampaignView) -> Option<String> {
    let (failed, of) = fleet_failures(v);
    let threshold = v.campaign.spec.kill_threshold;
    (failed > 0 && failed as f64 / of as f64 > threshold).then(|| {
        format!(
            "kill switch: {failed} of the {of} ONUs of the waves started so far failed (threshold {:.0} %)",
            threshold * 100.0
        )
    })
}

/// Applies `c` to the rows in memory, as the store applies it to its tables.
pub fn apply(v: &mut CampaignView, c: &Change, now: Millis) {
    match c {
        Change::Plan { waves } => {
            v.campaign.state = CampaignState::Running;
            v.campaign.started_at = Some(now);
            let mut next_id = v.work.iter().map(|w| w.id).max().unwrap_or(0) + 1;
            for (n, planned) in waves.iter().enumerate() {
                let n = n as u32;
                v.waves.push(WaveRow {
                    wave: n,
                    kind: planned.kind,
                    state: WaveState::Pending,
                    started_at: None,
                    done_at: None,
                    finished_at: None,
                });
                for w in &planned.work {
                    v.work.push(WorkRow {
                        id: next_id,
                        wave: n,
                        olt: w.olt.clone(),
                        pon: w.pon,
                        onus: w.onus.iter().map(|(id, _)| *id).collect(),
                        state: WorkState::Pending,
                        lease_owner: None,
                        lease_until: None,
                        halt: None,
                        attempts: 0,
                        started_at: None,
                        finished_at: None,
                    });
                    next_id += 1;
                    for (id, serial) in &w.onus {
                        v.results.push(ResultRow {
                            olt: w.olt.clone(),
                            pon: w.pon,
                            onu_id: *id,
                            serial: serial.clone(),
                            wave: n,
                            result: OnuResult::Pending,
                            reason: String::new(),
                            from_version: None,
                            committed_version: None,
                            active_version: None,
                            package: None,
                            started_at: None,
                            updated_at: None,
                            finished_at: None,
                            controller: None,
                        });
                    }
                }
            }
        }
        Change::StartWave { wave } => {
            for w in v.waves.iter_mut().filter(|w| w.wave == *wave) {
                w.state = WaveState::Running;
                w.started_at = Some(now);
            }
            for w in v
                .work
                .iter_mut()
                .filter(|w| w.wave == *wave && w.state == WorkState::Pending)
            {
                w.state = WorkState::Ready;
            }
        }
        Change::LeaseExpired { work, .. } => {
            for w in v.work.iter_mut().filter(|w| w.id == *work) {
                w.state = WorkState::Ready;
                w.lease_owner = None;
                w.lease_until = None;
            }
        }
        Change::WaveDone { wave } => {
            for w in v.waves.iter_mut().filter(|w| w.wave == *wave) {
                w.state = WaveState::Soaking;
                w.done_at = Some(now);
            }
        }
        Change::WaveHealthy { wave } => {
            for w in v.waves.iter_mut().filter(|w| w.wave == *wave) {
                w.state = WaveState::Healthy;
                w.finished_at = Some(now);
            }
        }
        Change::Halt { reason } => {
            v.campaign.state = CampaignState::Halted;
            v.campaign.halt_reason = Some(reason.clone());
            v.campaign.finished_at = Some(now);
            for w in &mut v.waves {
                match w.state {
                    WaveState::Running | WaveState::Soaking => {
                        w.state = WaveState::Failed;
                        w.finished_at = Some(now);
                    }
                    WaveState::Pending => w.state = WaveState::Cancelled,
                    _ => {}
                }
            }
            let mut cancelled = BTreeSet::new();
            for w in &mut v.work {
                match w.state {
                    WorkState::Pending | WorkState::Ready => {
                        w.state = WorkState::Cancelled;
                        cancelled.insert((w.olt.clone(), w.pon, w.wave));
                    }
                    WorkState::Leased => w.halt = Some(reason.clone()),
                    _ => {}
                }
            }
            for r in &mut v.results {
                if r.result == OnuResult::Pending
                    && cancelled.contains(&(r.olt.clone(), r.pon, r.wave))
                {
                    r.result = OnuResult::Untouched;
                    r.reason = UNTOUCHED.into();
                }
            }
        }
        Change::Complete => {
            v.campaign.state = CampaignState::Completed;
            v.campaign.finished_at = Some(now);
        }
    }
}

/// The reason an ONU of a PON the campaign halted before gets.
pub const UNTOUCHED: &str = "the campaign halted before its PON's turn";

/// The work controller `controller` of OLT `olt` may lease at `now` across `views` (every
/// campaign that is running or winding down): at most one work per PON; none when another
/// controller holds a live lease on this OLT (one controller drives an OLT at a time); no PON
/// that already has a live lease; a running campaign's work only while its wave runs and under
/// its cap on PONs downloading at once. A halted campaign's work with a halt order (its holder
/// died while winding it down) is given to be wound down, whatever the cap.
pub fn choose_claims(
    views: &[CampaignView],
    olt: &str,
    controller: &str,
    now: Millis,
) -> Vec<(i64, i64)> {
    let all = || views.iter().flat_map(|v| v.work.iter());
    if all().any(|w| w.olt == olt && live(w, now) && w.lease_owner.as_deref() != Some(controller)) {
        return Vec::new();
    }
    let mut busy: BTreeSet<u8> = all()
        .filter(|w| w.olt == olt && live(w, now))
        .map(|w| w.pon)
        .collect();
    let mut out = Vec::new();
    let mut views: Vec<&CampaignView> = views.iter().collect();
    views.sort_by_key(|v| v.campaign.id);
    for v in views {
        let running_waves: BTreeSet<u32> = v
            .waves
            .iter()
            .filter(|w| w.state == WaveState::Running)
            .map(|w| w.wave)
            .collect();
        let cap = v.campaign.spec.max_parallel_pons as usize;
        let mut leased = v.work.iter().filter(|w| live(w, now)).count();
        for w in v
            .work
            .iter()
            .filter(|w| w.olt == olt && w.state == WorkState::Ready)
        {
            if busy.contains(&w.pon) {
                continue;
            }
            let wind_down = w.halt.is_some();
            let offered = match v.campaign.state {
                CampaignState::Running => running_waves.contains(&w.wave),
                CampaignState::Halted => wind_down,
                _ => false,
            };
            if !offered || (!wind_down && cap > 0 && leased >= cap) {
                continue;
            }
            busy.insert(w.pon);
            leased += 1;
            out.push((v.campaign.id, w.id));
        }
    }
    out
}

/// Leases `work` of `v` to `controller` until `until`.
pub fn lease(v: &mut CampaignView, work: i64, controller: &str, until: Millis, now: Millis) {
    for w in v.work.iter_mut().filter(|w| w.id == work) {
        w.state = WorkState::Leased;
        w.lease_owner = Some(controller.to_string());
        w.lease_until = Some(until);
        w.attempts += 1;
        w.started_at.get_or_insert(now);
    }
}

/// True when `controller` holds `w`'s lease at `now`.
pub fn holds(w: &WorkRow, controller: &str, now: Millis) -> bool {
    live(w, now) && w.lease_owner.as_deref() == Some(controller)
}

/// Records what `controller` reported of an ONU at `now` in its result row: a final result is
/// never taken back, nor who reported it and when (a later report changes only the versions
/// read and the package it was sent); the version it ran before is the first one known, its
/// start is its first report and its end its first final result.
pub fn record(
    row: &mut ResultRow,
    report: &olt::fleet_api::OnuReport,
    controller: &str,
    now: Millis,
) {
    if report.committed_version.is_some() {
        row.committed_version = report.committed_version.clone();
    }
    if report.active_version.is_some() {
        row.active_version = report.active_version.clone();
    }
    if report.package.is_some() {
        row.package = report.package.clone();
    }
    row.updated_at = Some(now);
    if is_final(row.result) {
        // Its upgrade ended: how, when and by whom stay as they were.
        return;
    }
    row.result = report.result;
    row.reason = report.reason.clone();
    if row.from_version.is_none() {
        row.from_version = report.from_version.clone();
    }
    row.started_at.get_or_insert(now);
    if is_final(row.result) {
        row.finished_at = Some(now);
    }
    row.controller = Some(controller.to_string());
}

/// True for a result a controller reports at the end of an ONU's upgrade, never changed again.
pub fn is_final(r: OnuResult) -> bool {
    !matches!(
        r,
        OnuResult::Pending | OnuResult::Unfinished | OnuResult::Untouched
    )
}

#[cfg(test)]
mod tests;
