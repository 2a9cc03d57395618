//! The `[fleet]` section: the same rehearsal across many OLTs, driven by a fleet service.
//!
//! A scenario with a `[fleet]` section is a fleet scenario: `fleet.olts` OLTs, each with
//! `topology.pons` PON ports of `topology.onus` ONUs, one `olt worker` controller each (and a
//! standby for the OLTs `fleet.standby` names), a `fleet serve` service on SQLite (or the
//! PostgreSQL database `scenario run --fleet-db URL` names), one campaign across all of them
//! (`[fleet.campaign]`), faults of the fleet's own processes (`[[fleet.faults]]`) and what must
//! hold at the end (`[fleet.expect]`). `[topology]` (but its groups), `[image]` and the OLT's
//! protocol settings of `[olt]` mean what they mean for one OLT; the one-OLT sections
//! (`[[faults]]`, `[expect]`, `[golden]`, `olt.campaign`, `olt.steps`) are refused there.

use serde::Deserialize;

use super::{Outcome, ResultExpect};

/// A fleet: its OLTs and controllers, the service's timing, the campaign, faults and
/// expectations.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// How many OLTs (1..=32), named `olt-1`, `olt-2`, ...; each has `topology.pons` PON
    /// ports of `topology.onus` ONUs. ONU-IDs (and so serial numbers) run on across the
    /// fleet: the first ONU of `olt-2` is the one after the last of `olt-1`.
    #[serde(deserialize_with = "read::olts")]
    pub olts: u16,
    /// The OLTs (by number) that get a second controller, a standby: `olt-N-b` beside
    /// `olt-N-a`. Both ask for work; the fleet leases each PON to one of them at a time.
    #[serde(default)]
    pub standby: Vec<u16>,
    /// Region tags, given to the OLTs in turn (`olt-1` the first, `olt-2` the second, ...).
    #[serde(default = "default_regions")]
    pub regions: Vec<String>,
    /// A lease lasts this long after its last heartbeat (ms, 200..=3600000).
    #[serde(default = "default_lease", deserialize_with = "read::lease_ms")]
    pub lease_ms: u64,
    /// Controllers heartbeat this often (ms, 50..=600000).
    #[serde(default = "default_heartbeat", deserialize_with = "read::heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// The campaign across the fleet.
    #[serde(default)]
    pub campaign: FleetCampaign,
    /// What goes wrong, and when.
    #[serde(default)]
    pub faults: Vec<FleetFault>,
    /// What must hold at the end.
    #[serde(default)]
    pub expect: FleetExpect,
}

fn default_regions() -> Vec<String> {
    vec!["north".into(), "south".into()]
}

fn default_lease() -> u64 {
    1500
}

fn default_heartbeat() -> u64 {
    250
}

/// The campaign: the canary wave, the cascading groups, the health gate and kill switch.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetCampaign {
    /// The canary wave's share of the fleet's ONUs (percent, 0..=100; 0: no canary).
    #[serde(default = "default_canary", deserialize_with = "read::canary")]
    pub canary: u8,
    /// Cascading groups after the canary (1..=64): the PONs split in order among them.
    #[serde(default = "default_groups", deserialize_with = "read::groups")]
    pub groups: u32,
    /// The kill switch and health gate: halt when more than this percent failed (0..=100).
    #[serde(default = "default_kill", deserialize_with = "read::kill_threshold")]
    pub kill_threshold: u8,
    /// The OLT's health gate per ONU (ms, 0..=3600000).
    #[serde(
        default = "default_settle",
        deserialize_with = "read::health_settle_ms"
    )]
    pub health_settle_ms: u64,
    /// A wave done soaks this long before it is judged (ms, 0..=3600000).
    #[serde(default, deserialize_with = "read::soak_ms")]
    pub soak_ms: u64,
    /// At most this many PONs download at once, fleet-wide (0: no cap; 0..=4096).
    #[serde(default, deserialize_with = "read::max_parallel_pons")]
    pub max_parallel_pons: u32,
    /// At most this many Download sections per second on each PON.
    #[serde(default, deserialize_with = "read::pace")]
    pub pace: Option<u32>,
}

impl Default for FleetCampaign {
    fn default() -> Self {
        FleetCampaign {
            canary: default_canary(),
            groups: default_groups(),
            kill_threshold: default_kill(),
            health_settle_ms: default_settle(),
            soak_ms: 0,
            max_parallel_pons: 0,
            pace: None,
        }
    }
}

fn default_canary() -> u8 {
    10
}

fn default_groups() -> u32 {
    2
}

fn default_kill() -> u8 {
    20
}

fn default_settle() -> u64 {
    500
}

/// A fault of the fleet's processes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetFault {
    /// What happens.
    pub kind: FleetFaultKind,
    /// `controller-sigkill`: the OLT (by number) whose working controller is killed.
    #[serde(default)]
    pub olt: Option<u16>,
    /// When: `wave:N` (the N-th wave, from 1, is under way: for `controller-sigkill`, the
    /// OLT's PON of that wave is leased and one of its ONUs has started; for `fleet-restart`,
    /// any PON of it), or `pon-resumed` (a controller resumed a PON from the store).
    #[serde(default)]
    pub on: Option<FleetTrigger>,
    /// ... or this many seconds after the campaign started.
    #[serde(default, deserialize_with = "read::at_s")]
    pub at_s: Option<f64>,
}

/// A fault's kind.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FleetFaultKind {
    /// The controller holding the OLT's lease is SIGKILLed; it is not started again.
    ControllerSigkill,
    /// The fleet service is stopped (SIGTERM) and started again on the same database.
    FleetRestart,
}

impl FleetFaultKind {
    /// Its name in the file.
    pub fn name(self) -> &'static str {
        match self {
            FleetFaultKind::ControllerSigkill => "controller-sigkill",
            FleetFaultKind::FleetRestart => "fleet-restart",
        }
    }
}

/// The moment of the campaign a fault waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetTrigger {
    /// The wave of this number (from 1) is under way.
    Wave(u32),
    /// A controller resumed a PON from what the store recorded.
    PonResumed,
}

impl<'de> Deserialize<'de> for FleetTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bad = || {
            serde::de::Error::custom(format!(
                "fleet.faults.on = {s:?}: give \"wave:N\" (N from 1) or \"pon-resumed\""
            ))
        };
        match s.as_str() {
            "pon-resumed" => Ok(FleetTrigger::PonResumed),
            _ => {
                let n = s.strip_prefix("wave:").ok_or_else(bad)?;
                match n.parse::<u32>() {
                    Ok(n) if (1..=65).contains(&n) => Ok(FleetTrigger::Wave(n)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

/// A count of ONUs: exactly `N`, or a range `{ min = A, max = B }` (either may be left out).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Count {
    /// Exactly this many.
    Exactly(u32),
    /// Between these.
    Between {
        /// At least this many.
        #[serde(default)]
        min: Option<u32>,
        /// At most this many.
        #[serde(default)]
        max: Option<u32>,
    },
}

impl Count {
    /// Whether `n` is counted right.
    pub fn holds(self, n: u32) -> bool {
        match self {
            Count::Exactly(want) => n == want,
            Count::Between { min, max } => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
        }
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exactly(n) => write!(f, "{n}"),
            Count::Between {
                min: Some(a),
                max: Some(b),
            } => write!(f, "{a} to {b}"),
            Count::Between { min: Some(a), .. } => write!(f, "at least {a}"),
            Count::Between { max: Some(b), .. } => write!(f, "at most {b}"),
            Count::Between { .. } => write!(f, "any number"),
        }
    }
}

/// A wave's state at the end.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum WaveEnd {
    /// It ran and its gate found it healthy.
    Healthy,
    /// Its gate (or the kill switch) found too many failures.
    Failed,
    /// It never started: the campaign halted before it.
    Cancelled,
}

impl WaveEnd {
    /// Its word, as the fleet's API spells it.
    pub fn word(self) -> &'static str {
        match self {
            WaveEnd::Healthy => "healthy",
            WaveEnd::Failed => "failed",
            WaveEnd::Cancelled => "cancelled",
        }
    }
}

/// What must hold at the end of a fleet scenario. Beside these, always: no ONU is bricked,
/// an ONU whose wave never started never held the new image, a PON never had two lease
/// holders at once, and never more PONs ran at once than `campaign.max_parallel_pons`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetExpect {
    /// How the campaign ended.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Whether the fleet-wide kill switch halted the campaign (a wave's health gate halting
    /// it after the wave does not count).
    #[serde(default)]
    pub kill_switch: Option<bool>,
    /// Each wave's end, in order (the canary first, when there is one).
    #[serde(default)]
    pub waves: Option<Vec<WaveEnd>>,
    /// ONUs the fleet records as upgraded.
    #[serde(default)]
    pub upgraded: Option<Count>,
    /// ... as failed.
    #[serde(default)]
    pub failed: Option<Count>,
    /// ... as halted (wound down by the kill switch or an operator).
    #[serde(default)]
    pub halted: Option<Count>,
    /// ... as untouched (their wave never started).
    #[serde(default)]
    pub untouched: Option<Count>,
    /// ONUs the results record as sent a delta package (`image.deltas`) that they kept (one
    /// that refused it is recorded as `full (delta refused)`).
    #[serde(default)]
    pub delta_onus: Option<Count>,
    /// ONUs that refused their delta and were sent the full image after it.
    #[serde(default)]
    pub fell_back: Option<Count>,
    /// The result of every canary ONU is one of these.
    #[serde(default)]
    pub canary: Option<Vec<ResultExpect>>,
    /// The canary reached this many OLTs.
    #[serde(default)]
    pub canary_olts: Option<u16>,
    /// Every ONU's flash at the end: the version committed.
    #[serde(default, deserialize_with = "read::committed")]
    pub committed: Option<String>,
    /// ... and the version it runs.
    #[serde(default, deserialize_with = "read::active")]
    pub active: Option<String>,
    /// Every `controller-sigkill`: the PON the killed controller held is taken over by the
    /// OLT's other controller only after the lease ended, resumed from the store, and the
    /// ONUs committed before the kill keep their record (nobody upgrades them again).
    #[serde(default)]
    pub takeover: bool,
}

/// The reader of each bounded key.
mod read {
    use super::super::values::*;
    use olt::limits as olt;
    use pon::limits::Bounds;

    whole!(olts: u16 = "fleet.olts" in Bounds::new(1, 32, "OLTs"));
    whole!(lease_ms: u64 = "fleet.lease_ms" in Bounds::new(200, 3_600_000, "ms"));
    whole!(heartbeat_ms: u64 = "fleet.heartbeat_ms" in Bounds::new(50, 600_000, "ms"));
    whole!(canary: u8 = "fleet.campaign.canary" in olt::CANARY);
    whole!(groups: u32 = "fleet.campaign.groups" in Bounds::new(1, 64, "groups"));
    whole!(kill_threshold: u8 = "fleet.campaign.kill_threshold" in olt::KILL_THRESHOLD);
    whole!(health_settle_ms: u64 = "fleet.campaign.health_settle_ms" in olt::HEALTH_SETTLE_MS);
    whole!(soak_ms: u64 = "fleet.campaign.soak_ms" in Bounds::new(0, 3_600_000, "ms"));
    whole!(max_parallel_pons: u32 = "fleet.campaign.max_parallel_pons" in Bounds::new(0, 4096, "PONs"));
    whole!(option pace: u32 = "fleet.campaign.pace" in olt::PACE);
    seconds!(at_s = "fleet.faults.at_s" in AT_S);
    text!(option committed = "fleet.expect.committed", VERSION_LEN);
    text!(option active = "fleet.expect.active", VERSION_LEN);
}

/// `line N: ` of the first line of `text` that sets `key` (`key =`) or opens its table
/// (`[key]`, `[[key]]`, `[x.key]`), or nothing.
fn line_in(text: &str, key: &str) -> String {
    text.lines()
        .enumerate()
        .find(|(_, l)| {
            let l = l.trim_start();
            let sets = l.starts_with(key) && l[key.len()..].trim_start().starts_with('=');
            let table = l.starts_with('[')
                && l.trim_start_matches('[')
                    .trim_end()
                    .trim_end_matches(']')
                    .rsplit('.')
                    .next()
                    == Some(key);
            sets || table
        })
        .map_or_else(String::new, |(n, _)| format!("line {}: ", n + 1))
}

/// What serde cannot check alone, for a scenario with a `[fleet]` section of `text`: the
/// one-OLT sections it does not take, OLT numbers that exist, faults that say when.
pub(super) fn check(s: &super::Scenario, f: &FleetSpec, text: &str) -> Result<(), String> {
    let line = |key: &str| line_in(text, key);
    let one_olt = [
        (!s.faults.is_empty(), "faults", "[[faults]]"),
        (s.olt.campaign.is_some(), "campaign", "olt.campaign"),
        (!s.olt.steps.is_empty(), "steps", "[[olt.steps]]"),
        (
            !s.topology.groups.is_empty(),
            "groups",
            "[[topology.groups]]",
        ),
        (expects_one_olt(&s.expect), "expect", "[expect]"),
        (golden_given(&s.golden), "golden", "[golden]"),
    ];
    if let Some((_, key, what)) = one_olt.iter().find(|(given, _, _)| *given) {
        return Err(format!(
            "{}{what} is for one OLT: a fleet scenario takes its campaign in [fleet.campaign], \
             its faults in [[fleet.faults]] and its expectations in [fleet.expect]",
            line(key)
        ));
    }
    if s.olt.delta_policy != olt::campaign::DeltaPolicy::PerBase {
        return Err(format!(
            "{}olt.delta_policy is for one OLT: a fleet's controllers send deltas only where \
             they save bytes (docs/fleet.md, \"Delta packages\")",
            line("delta_policy")
        ));
    }
    if s.olt.strict || s.olt.extended || s.olt.retry_failed {
        return Err(format!(
            "{}olt.strict, olt.extended and olt.retry_failed are for one OLT: a fleet's \
             controllers speak baseline OMCI and resume from the store",
            line("olt")
        ));
    }
    if f.regions.is_empty() || f.regions.iter().any(|r| r.trim().is_empty()) {
        return Err(format!(
            "{}fleet.regions: give at least one region, none empty",
            line("regions")
        ));
    }
    let olt_exists = |n: u16, key: &str| -> Result<(), String> {
        if n == 0 || n > f.olts {
            return Err(format!(
                "{}fleet.{key}: OLT {n} does not exist (fleet.olts = {}: 1 to {})",
                line(key.rsplit('.').next().unwrap_or(key)),
                f.olts,
                f.olts
            ));
        }
        Ok(())
    };
    for n in &f.standby {
        olt_exists(*n, "standby")?;
    }
    let onus = u32::from(f.olts) * u32::from(s.topology.pons) * u32::from(s.topology.onus.0);
    if onus > 65534 {
        return Err(format!(
            "{}fleet.olts = {}: {onus} ONUs in the fleet (fleet.olts x topology.pons x \
             topology.onus), and ONU-IDs run on across it up to 65534",
            line("olts"),
            f.olts
        ));
    }
    let waves = f.campaign.groups + u32::from(f.campaign.canary > 0);
    for fault in &f.faults {
        let kind = fault.kind.name();
        match (fault.on, fault.at_s) {
            (None, None) => {
                return Err(format!(
                    "{}fleet.faults: a {kind} fault needs `on` (\"wave:N\" or \
                     \"pon-resumed\") or `at_s` (seconds after the campaign starts)",
                    line("kind")
                ));
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}fleet.faults: give `on` or `at_s`, not both",
                    line("at_s")
                ));
            }
            _ => {}
        }
        if let Some(FleetTrigger::Wave(w)) = fault.on
            && w > waves
        {
            return Err(format!(
                "{}fleet.faults.on = \"wave:{w}\": the campaign has {waves} waves",
                line("on")
            ));
        }
        if let Some(at) = fault.at_s
            && at >= s.time_limit_s as f64
        {
            return Err(format!(
                "{}fleet.faults.at_s = {at} is after the run is stopped (time_limit_s = {})",
                line("at_s"),
                s.time_limit_s
            ));
        }
        match (fault.kind, fault.olt) {
            (FleetFaultKind::ControllerSigkill, None) => {
                return Err(format!(
                    "{}fleet.faults: a controller-sigkill fault needs `olt` (1 to {})",
                    line("kind"),
                    f.olts
                ));
            }
            (FleetFaultKind::ControllerSigkill, Some(n)) => olt_exists(n, "faults.olt")?,
            (FleetFaultKind::FleetRestart, Some(_)) => {
                return Err(format!(
                    "{}fleet.faults.olt: a fleet-restart fault is of the whole fleet; leave \
                     `olt` out",
                    line("olt")
                ));
            }
            (FleetFaultKind::FleetRestart, None) => {}
        }
    }
    if f.expect.takeover {
        let killed: Vec<u16> = f
            .faults
            .iter()
            .filter(|x| x.kind == FleetFaultKind::ControllerSigkill)
            .filter_map(|x| x.olt)
            .collect();
        if killed.is_empty() {
            return Err(format!(
                "{}fleet.expect.takeover needs a controller-sigkill fault",
                line("takeover")
            ));
        }
        if let Some(n) = killed.iter().find(|n| !f.standby.contains(n)) {
            return Err(format!(
                "{}fleet.expect.takeover: OLT {n} has no standby controller to take its PONs \
                 over (add it to fleet.standby)",
                line("takeover")
            ));
        }
    }
    if let Some(w) = &f.expect.waves
        && w.len() as u32 != waves
    {
        return Err(format!(
            "{}fleet.expect.waves names {} waves; the campaign has {waves} (a canary when \
             fleet.campaign.canary > 0, then fleet.campaign.groups)",
            line("waves"),
            w.len()
        ));
    }
    Ok(())
}

/// `[expect]` says something (it is for one OLT).
fn expects_one_olt(e: &super::Expect) -> bool {
    e.upgraded.is_some()
        || e.failed.is_some()
        || e.skipped.is_some()
        || e.refused.is_some()
        || e.outcome.is_some()
        || e.max_group_downloads.is_some()
        || !e.onus.is_empty()
        || e.in_recovery.is_some()
}

/// `[golden]` says something.
fn golden_given(g: &super::GoldenSpec) -> bool {
    g.server != super::GoldenServer::File || g.tampered || g.wrecked.is_some()
}

#[cfg(test)]
mod tests {
    use crate::spec::{FleetFaultKind, FleetTrigger, WaveEnd, parse};

    const FLEET: &str = r#"
name = "f"
[topology]
onus = 4
[image]
version = "V2.0"
[fleet]
olts = 3
standby = [2]
[fleet.campaign]
canary = 25
groups = 2
[[fleet.faults]]
kind = "controller-sigkill"
olt = 2
on = "wave:2"
[[fleet.faults]]
kind = "fleet-restart"
at_s = 3.5
[fleet.expect]
waves = ["healthy", "healthy", "healthy"]
failed = { max = 1 }
takeover = true
"#;

    #[test]
    fn a_fleet_scenario_reads() {
        let s = parse(FLEET).unwrap();
        let f = s.fleet.unwrap();
        assert_eq!(f.olts, 3);
        assert_eq!(f.standby, [2]);
        assert_eq!(f.faults[0].kind, FleetFaultKind::ControllerSigkill);
        assert_eq!(f.faults[0].on, Some(FleetTrigger::Wave(2)));
        assert_eq!(f.faults[1].at_s, Some(3.5));
        assert_eq!(f.expect.waves.as_deref(), Some(&[WaveEnd::Healthy; 3][..]));
        assert!(f.expect.failed.unwrap().holds(1) && !f.expect.failed.unwrap().holds(2));
        assert_eq!(f.lease_ms, 1500);
    }

    /// `FLEET` with `from` replaced by `to`: the error, which must name `want`.
    fn refused(from: &str, to: &str, want: &str) {
        let text = FLEET.replace(from, to);
        assert_ne!(text, FLEET, "{from}");
        let err = parse(&text).unwrap_err();
        assert!(err.contains(want), "{to}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn what_a_fleet_scenario_cannot_carry_out_is_refused_with_its_line() {
        refused("olts = 3", "olts = 40", "fleet.olts = 40 is out of range");
        let big = FLEET
            .replace("onus = 4\n", "onus = 128\npons = 16\n")
            .replace("olts = 3", "olts = 32");
        let err = parse(&big).unwrap_err();
        assert!(err.contains("fleet.olts = 32: 65536 ONUs"), "{err}");
        refused(
            "standby = [2]",
            "standby = [4]",
            "fleet.standby: OLT 4 does not exist",
        );
        refused("olt = 2\n", "", "needs `olt`");
        refused("olt = 2\n", "olt = 9\n", "OLT 9 does not exist");
        refused("\"wave:2\"", "\"wave:9\"", "the campaign has 3 waves");
        refused("\"wave:2\"", "\"window:2\"", "give \"wave:N\"");
        refused("at_s = 3.5", "olt = 1", "needs `on`");
        refused(
            "standby = [2]",
            "standby = [1]",
            "OLT 2 has no standby controller",
        );
        refused(
            "\"healthy\", \"healthy\", \"healthy\"",
            "\"healthy\"",
            "names 1 waves",
        );
        refused(
            "[fleet]",
            "[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\nat_s = 1\n[fleet]",
            "line 7: [[faults]] is for one OLT",
        );
        refused(
            "[fleet]",
            "[expect]\nupgraded = 4\n[fleet]",
            "[expect] is for one OLT",
        );
        refused(
            "takeover = true",
            "takeover = true\nbogus = 1",
            "unknown field `bogus`",
        );
    }
}
