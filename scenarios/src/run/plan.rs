//! What a run settles before any process starts: each ONU's plan (model, version, link faults,
//! a power cut), the loopback ports and the multicast group, and which ONUs each fault hits.
//! Nothing here starts a process; [`Plan::new`] only binds and releases sockets to find free
//! ports.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use anyhow::{Context, Result};
use onu::faults::{FaultPoint, PowerLossPlan};
use pon::transport::LOOPBACK;

use super::RunOptions;
use super::faults::Pending;
use crate::spec::{FaultKind, LinkSpec, Scenario};

/// What one ONU is at the start.
#[derive(Clone, Debug)]
pub(super) struct OnuPlan {
    /// Its number in the run (ONUs are numbered across PON ports: port 2's first ONU is
    /// `per_pon + 1`).
    pub(super) id: u16,
    /// Its PON port (from 1).
    pub(super) pon: u8,
    /// Its ONU-ID on its port.
    pub(super) onu_id: u16,
    /// Its model (ONU2-G equipment ID).
    pub(super) model: String,
    /// The version of its factory (golden) image.
    pub(super) version: String,
    /// How long End software download answers "device busy" (ms).
    pub(super) busy_ms: u64,
    /// A voice call is in progress.
    pub(super) voice_call: bool,
    /// The largest window it accepts.
    pub(super) max_window: Option<u16>,
    /// Its link's faults for the whole run.
    pub(super) link: Option<LinkSpec>,
    /// A power cut at a named point, in its first life only.
    pub(super) power_loss: Option<PowerLossPlan>,
}

/// Where everything listens, all on loopback.
#[derive(Clone, Debug)]
pub(super) struct Ports {
    /// ONU `id` listens on `base + id - 1`.
    pub(super) base: u16,
    /// The OLT's one port for every reply (after the ONUs').
    pub(super) olt: SocketAddrV4,
    /// The multicast download group of PON port 1 (where a rogue sender sends).
    pub(super) group: SocketAddrV4,
    /// Each PON port's multicast download group (port 1's first).
    pub(super) groups: Vec<SocketAddrV4>,
}

impl Ports {
    /// Where ONU `id` listens.
    pub(super) fn onu(&self, id: u16) -> SocketAddrV4 {
        SocketAddrV4::new(LOOPBACK, self.base + id - 1)
    }
}

/// The whole plan of a run.
#[derive(Debug)]
pub(super) struct Plan {
    /// ONUs in the run, over every PON port (numbers 1..=n).
    pub(super) n: u16,
    /// ONUs on each PON port.
    pub(super) per_pon: u16,
    /// PON ports.
    pub(super) pons: u8,
    /// Every ONU's plan, by ONU-ID.
    pub(super) onus: BTreeMap<u16, OnuPlan>,
    /// The ports and the group.
    pub(super) ports: Ports,
    /// The faults that wait for a time or an event (power cuts are in the ONUs' plans).
    pub(super) faults: Vec<Pending>,
}

impl Plan {
    /// The number in the run of ONU `onu_id` of PON port `pon`.
    pub(super) fn number(&self, pon: u8, onu_id: u16) -> u16 {
        (u16::from(pon.max(1)) - 1) * self.per_pon + onu_id
    }

    /// The plan of `s` as `opts` runs it.
    pub(super) fn new(s: &Scenario, opts: &RunOptions) -> Result<Plan> {
        let per_pon = opts.onus.unwrap_or(s.topology.onus.0).clamp(1, 128);
        let pons = s.topology.pons.clamp(1, olt::engine::PonPort::MAX);
        let n = per_pon * u16::from(pons);
        let mut onus = onu_plans(s, n, per_pon);
        let base = free_ports(
            opts.port.unwrap_or(41000 + (s.seed % 97) as u16 * 131),
            n + 1,
        )?;
        let first = opts.group.unwrap_or(SocketAddrV4::new(
            Ipv4Addr::new(239, 255, 60 + (base % 150) as u8, 1 + (base % 250) as u8),
            base + n + 1,
        ));
        // Port P's group: port 1's address, its last byte moved on by P - 1.
        let groups = (0..pons)
            .map(|k| {
                let [a, b, c, d] = first.ip().octets();
                SocketAddrV4::new(Ipv4Addr::new(a, b, c, d.wrapping_add(k)), first.port())
            })
            .collect();
        let ports = Ports {
            base,
            olt: SocketAddrV4::new(LOOPBACK, base + n),
            group: first,
            groups,
        };
        let ids: Vec<u16> = (1..=n).collect();
        let mut faults = Vec::new();
        for (i, f) in s.faults.iter().enumerate() {
            // A fault of one PON port names its ONUs by their ONU-IDs on that port.
            let (ids, offset) = match f.pon {
                Some(p) => (
                    (1..=per_pon).collect::<Vec<u16>>(),
                    (u16::from(p.clamp(1, pons)) - 1) * per_pon,
                ),
                None => (ids.clone(), 0),
            };
            let scope = ids.len() as u16;
            let targets: BTreeSet<u16> = match (&f.onus, f.share) {
                (Some(set), _) => set.resolve(scope),
                (None, Some(share)) => choose(&ids, share.0, s.seed ^ (i as u64 + 1)),
                (None, None) => BTreeSet::new(),
            };
            let mut targets: BTreeSet<u16> = targets.into_iter().map(|id| id + offset).collect();
            if f.kind == FaultKind::PowerLoss {
                let plan = PowerLossPlan {
                    point: f.point.unwrap_or(FaultPoint::MidSectionWrite),
                    occurrence: f.occurrence.unwrap_or(1),
                };
                for id in &targets {
                    if let Some(p) = onus.get_mut(id) {
                        p.power_loss = Some(plan);
                    }
                }
                continue;
            }
            if matches!(f.kind, FaultKind::OltRestart | FaultKind::RogueSender) && f.on.is_some() {
                // The event of the first ONU named (ONU 1 by default).
                targets = targets.into_iter().take(1).collect();
                if targets.is_empty() {
                    targets.insert(1);
                }
            }
            faults.push(Pending::new(i, f, targets));
        }
        Ok(Plan {
            n,
            per_pon,
            pons,
            onus,
            ports,
            faults,
        })
    }
}

/// The number in the run of an ONU of the OLT's report (ONUs are numbered across PON ports,
/// `per_pon` on each).
pub(super) fn numbered(o: &olt::report::OnuReport, per_pon: u16) -> u16 {
    (u16::from(o.pon.0.max(1)) - 1) * per_pon + o.id
}

/// Each ONU's plan: the topology's defaults, then its groups in order.
fn onu_plans(s: &Scenario, n: u16, per_pon: u16) -> BTreeMap<u16, OnuPlan> {
    let t = &s.topology;
    (1..=n)
        .map(|id| {
            let mut p = OnuPlan {
                id,
                pon: ((id - 1) / per_pon + 1) as u8,
                onu_id: (id - 1) % per_pon + 1,
                model: t.model.clone(),
                version: t.version.clone(),
                busy_ms: t.busy_ms,
                voice_call: false,
                max_window: None,
                link: None,
                power_loss: None,
            };
            for g in &t.groups {
                if g.onus.resolve(n).contains(&id) {
                    if let Some(m) = &g.model {
                        p.model = m.clone();
                    }
                    if let Some(v) = &g.version {
                        p.version = v.clone();
                    }
                    if let Some(b) = g.busy_ms {
                        p.busy_ms = b;
                    }
                    p.voice_call |= g.voice_call;
                    if g.max_window.is_some() {
                        p.max_window = g.max_window;
                    }
                    if g.link.is_some() {
                        p.link = g.link.clone();
                    }
                }
            }
            (id, p)
        })
        .collect()
}

/// The deterministic choice of `share` of `ids` (the scenario's seed and the fault's index).
fn choose(ids: &[u16], share: f64, seed: u64) -> BTreeSet<u16> {
    let want = ((ids.len() as f64) * share).round() as usize;
    let mut order: Vec<(u64, u16)> = ids
        .iter()
        .map(|id| {
            let mut x = seed ^ (u64::from(*id).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            (x, *id)
        })
        .collect();
    order.sort();
    order.into_iter().take(want).map(|(_, id)| id).collect()
}

/// `n` consecutive free UDP ports on loopback from about `from`.
fn free_ports(from: u16, n: u16) -> Result<u16> {
    (0..400u16)
        .map(|i| from.wrapping_add(i.wrapping_mul(37)))
        .filter(|p| *p >= 20000 && u32::from(*p) + u32::from(n) < 65000)
        .find(|p| (0..n).all(|k| std::net::UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .context("no free range of loopback ports")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    const GROUPS: &str = r#"
name = "t"
seed = 3
[topology]
onus = 8
busy_ms = 100
[[topology.groups]]
onus = "1-4"
version = "V0.9"
max_window = 8
[[topology.groups]]
onus = "3-6"
busy_ms = 700
voice_call = true
[image]
version = "V2.0"
[[faults]]
kind = "power-loss"
onus = "2,7"
point = "during-busy"
occurrence = 2
[[faults]]
kind = "sigkill"
share = 0.5
on = "window:1"
[[faults]]
kind = "olt-restart"
onus = "5-6"
on = "activated"
"#;

    #[test]
    fn groups_apply_in_order_and_power_cuts_go_into_the_plans() {
        let s = parse(GROUPS).unwrap();
        let plan = Plan::new(&s, &RunOptions::default()).unwrap();
        assert_eq!(plan.n, 8);
        let p = |id: u16| &plan.onus[&id];
        assert_eq!((p(1).version.as_str(), p(1).busy_ms), ("V0.9", 100));
        assert_eq!((p(3).version.as_str(), p(3).busy_ms), ("V0.9", 700));
        assert!(p(3).voice_call && !p(2).voice_call);
        assert_eq!((p(4).max_window, p(5).max_window), (Some(8), None));
        let cut = PowerLossPlan {
            point: FaultPoint::DuringBusy,
            occurrence: 2,
        };
        let cuts: Vec<u16> = (1..=8).filter(|i| p(*i).power_loss.is_some()).collect();
        assert_eq!(cuts, [2, 7]);
        assert_eq!(p(7).power_loss, Some(cut));
        // The power cut waits for nothing; the SIGKILL takes half the ONUs, the same half
        // for the same seed; the OLT restart waits for the first ONU named.
        assert_eq!(plan.faults.len(), 2);
        let again = Plan::new(&s, &RunOptions::default()).unwrap();
        assert_eq!(plan.faults[0].targets.len(), 4);
        assert_eq!(plan.faults[0].targets, again.faults[0].targets);
        assert_eq!(plan.faults[1].targets, [5].into_iter().collect());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 500, ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn what_parses_plans_without_a_panic(
            text in crate::spec::tests::scenario_texts(),
            n in 1u16..=128,
        ) {
            let Ok(s) = parse(&text) else { return Ok(()) };
            let plans = onu_plans(&s, n, n);
            proptest::prop_assert_eq!(plans.len(), usize::from(n));
            let ids: Vec<u16> = (1..=n).collect();
            for (i, f) in s.faults.iter().enumerate() {
                let targets = match (&f.onus, f.share) {
                    (Some(set), _) => set.resolve(n),
                    (None, Some(share)) => choose(&ids, share.0, s.seed ^ (i as u64 + 1)),
                    (None, None) => BTreeSet::new(),
                };
                proptest::prop_assert!(targets.iter().all(|t| (1..=n).contains(t)));
                let mut p = Pending::new(i, f, targets);
                let _ = p.due_by_time(std::time::Duration::from_secs(s.time_limit_s));
            }
        }
    }

    #[test]
    fn fewer_onus_cut_the_sets_and_the_ports_follow_each_other() {
        let s = parse(GROUPS).unwrap();
        let opts = RunOptions {
            onus: Some(2),
            ..RunOptions::default()
        };
        let plan = Plan::new(&s, &opts).unwrap();
        assert_eq!(plan.onus.len(), 2);
        assert_eq!(plan.ports.onu(2).port(), plan.ports.base + 1);
        assert_eq!(plan.ports.olt.port(), plan.ports.base + 2);
        assert!(plan.ports.group.ip().is_multicast());
        assert_eq!(*plan.ports.olt.ip(), LOOPBACK);
    }
}
