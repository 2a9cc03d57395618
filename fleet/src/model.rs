//! The fleet's vocabulary: campaigns and what they are made of, waves, the work leased to
//! controllers, results; each state an enum, each with the word the store and the API write.

use serde::{Deserialize, Serialize};

pub use olt::engine::Mode;
pub use olt::fleet_api::OnuResult;

/// A moment on the fleet's clock: milliseconds since the Unix epoch. The service reads the
/// clock once per request or tick and hands it down; nothing below reads it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// This moment plus `ms` milliseconds.
    pub fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)))
    }

    /// Now, by the system clock (the one place the fleet reads it).
    pub fn now() -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// RFC 3339, to the millisecond.
    pub fn rfc3339(self) -> String {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0));
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// Defines a state enum with the word the store and the API write for each variant.
macro_rules! words {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident => $w:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vm])* $v,)+ }

        impl $name {
            /// The word the store and the API write.
            pub fn word(self) -> &'static str {
                match self { $($name::$v => $w,)+ }
            }

            /// The variant a word names.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($w => Some($name::$v),)+ _ => None }
            }
        }
    };
}

words! {
    /// Where a campaign is.
    pub enum CampaignState {
        /// Created; not started.
        Draft => "draft",
        /// Started by an operator; waits for its start time.
        Scheduled => "scheduled",
        /// Its waves run.
        Running => "running",
        /// Its kill switch, its health gate or an operator stopped it: no further wave starts.
        Halted => "halted",
        /// Every wave ran and was healthy.
        Completed => "completed",
    }
}

words! {
    /// Where a wave is.
    pub enum WaveState {
        /// Not started.
        Pending => "pending",
        /// Its PONs' work is offered to (or leased by) the controllers.
        Running => "running",
        /// Every PON's work is done: the wave soaks (the kill switch still listens) before it
        /// is judged.
        Soaking => "soaking",
        /// Done, and its failure ratio under the threshold: the next wave may start.
        Healthy => "healthy",
        /// It failed its gate, or the campaign halted while it ran.
        Failed => "failed",
        /// The campaign halted before it started.
        Cancelled => "cancelled",
    }
}

words! {
    /// Where one PON's part of a wave is.
    pub enum WorkState {
        /// Its wave has not started.
        Pending => "pending",
        /// Offered: the next controller of its OLT to claim it gets it.
        Ready => "ready",
        /// A controller holds it under a lease.
        Leased => "leased",
        /// Every ONU of it has its final result.
        Done => "done",
        /// The campaign halted before anyone took it.
        Cancelled => "cancelled",
    }
}

/// Which wave a wave is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveKind {
    /// The canary share of the whole fleet, spread over its PONs.
    Canary,
    /// One of the cascading groups after it.
    Group,
}

impl WaveKind {
    /// The word the store writes.
    pub fn word(self) -> &'static str {
        match self {
            WaveKind::Canary => "canary",
            WaveKind::Group => "group",
        }
    }

    /// The kind a word names.
    pub fn parse(s: &str) -> Option<WaveKind> {
        match s {
            "canary" => Some(WaveKind::Canary),
            "group" => Some(WaveKind::Group),
            _ => None,
        }
    }
}

/// A package's kind (the manifest's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// The image replaces the whole software.
    Full,
    /// A delta package (docs/image-format.md, "Delta packages"): it applies over one base
    /// version, which the store reads from the package and keeps with it. A campaign never
    /// names one: it goes with the campaign of its full image, to the ONUs on its base
    /// (docs/fleet.md, "Delta packages").
    Delta,
}

impl PackageKind {
    /// The word the store and the manifest write.
    pub fn word(self) -> &'static str {
        match self {
            PackageKind::Full => "full",
            PackageKind::Delta => "delta",
        }
    }

    /// The kind a word names.
    pub fn parse(s: &str) -> Option<PackageKind> {
        match s {
            "full" => Some(PackageKind::Full),
            "delta" => Some(PackageKind::Delta),
            _ => None,
        }
    }
}

/// Which ONUs a campaign is for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Only ONUs of this model (the package's when not given).
    #[serde(default)]
    pub model: Option<String>,
    /// Only ONUs running one of these versions (empty: any but the package's).
    #[serde(default)]
    pub from_versions: Vec<String>,
    /// Only these OLTs (empty: every OLT).
    #[serde(default)]
    pub olts: Vec<String>,
    /// Only OLTs of this region tag.
    #[serde(default)]
    pub region: Option<String>,
}

/// What an operator asks for: a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// A name for people.
    pub name: String,
    /// The package rolled out.
    pub package: String,
    /// Which ONUs.
    #[serde(default)]
    pub target: Target,
    /// The canary wave's share of the whole fleet's targeted ONUs, in percent (0: no canary).
    #[serde(default = "defaults::canary")]
    pub canary_percent: u8,
    /// The cascading groups after the canary: the other PONs split into this many waves.
    #[serde(default = "defaults::groups")]
    pub groups: u32,
    /// The fleet-wide kill switch and every wave's health gate: halt when more than this share
    /// (0..=1) of the ONUs of the waves started so far (or of one wave, at its end) has failed.
    #[serde(default = "defaults::threshold")]
    pub kill_threshold: f64,
    /// A wave whose PONs are all done soaks this long before it is judged healthy (ms).
    #[serde(default)]
    pub wave_soak_ms: u64,
    /// The OLT's health gate on each PON: an ONU back on the new image must still be so this
    /// long later (ms).
    #[serde(default = "defaults::settle")]
    pub health_settle_ms: u64,
    /// At most this many PONs download at once, fleet-wide (0: no cap).
    #[serde(default)]
    pub max_parallel_pons: u32,
    /// Start no earlier than this (ms since the Unix epoch; None: when started).
    #[serde(default)]
    pub start_at: Option<Millis>,
    /// How the windows travel.
    #[serde(default)]
    pub mode: Mode,
    /// At most this many Download sections per second on each PON.
    #[serde(default)]
    pub pace: Option<u32>,
}

/// Defaults of [`CampaignSpec`].
mod defaults {
    pub(super) fn canary() -> u8 {
        10
    }
    pub(super) fn groups() -> u32 {
        2
    }
    pub(super) fn threshold() -> f64 {
        0.2
    }
    pub(super) fn settle() -> u64 {
        1000
    }
}

impl CampaignSpec {
    /// What is wrong with the spec, in one line (None: nothing).
    pub fn check(&self) -> Option<String> {
        if self.name.trim().is_empty() {
            return Some("the campaign needs a name".into());
        }
        if self.canary_percent > 100 {
            return Some(format!(
                "canary_percent {} is not 0..=100",
                self.canary_percent
            ));
        }
        if !(0.0..=1.0).contains(&self.kill_threshold) {
            return Some(format!(
                "kill_threshold {} is not 0..=1",
                self.kill_threshold
            ));
        }
        if self.groups == 0 || self.groups > 64 {
            return Some(format!("groups {} is not 1..=64", self.groups));
        }
        None
    }
}

/// An ONU of the inventory, as far as a campaign's planning needs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InventoryOnu {
    /// Its serial number.
    pub serial: String,
    /// Its OLT.
    pub olt: String,
    /// Its OLT's region.
    pub region: String,
    /// Its PON port.
    pub pon: u8,
    /// Its ONU-ID.
    pub onu_id: u16,
    /// Its model.
    pub model: Option<String>,
    /// The version it runs.
    pub active_version: Option<String>,
    /// The version it boots.
    pub committed_version: Option<String>,
}

/// The key of one PON port in the fleet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PonKey {
    /// Its OLT.
    pub olt: String,
    /// The port.
    pub pon: u8,
}

/// One result row: an ONU's part in a campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Its OLT.
    pub olt: String,
    /// Its PON port.
    pub pon: u8,
    /// Its ONU-ID.
    pub onu_id: u16,
    /// Its serial number.
    pub serial: String,
    /// Its wave.
    pub wave: u32,
    /// Its result so far.
    pub result: OnuResult,
    /// Why.
    pub reason: String,
    /// The version it ran before.
    pub from_version: Option<String>,
    /// The version it boots, as last reported.
    pub committed_version: Option<String>,
    /// The version it runs, as last reported.
    pub active_version: Option<String>,
    /// The package it was sent (`full`, `delta from V1.0`, `full (delta refused)`); None:
    /// nothing sent yet.
    #[serde(default)]
    pub package: Option<String>,
    /// The first report of it running.
    pub started_at: Option<Millis>,
    /// Its last report.
    pub updated_at: Option<Millis>,
    /// Its final result's time.
    pub finished_at: Option<Millis>,
    /// The controller that reported it last.
    pub controller: Option<String>,
}

/// One wave row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaveRow {
    /// Its number (0 first).
    pub wave: u32,
    /// Canary or group.
    pub kind: WaveKind,
    /// Where it is.
    pub state: WaveState,
    /// When it started.
    pub started_at: Option<Millis>,
    /// When its last PON was done.
    pub done_at: Option<Millis>,
    /// When it was judged (healthy or failed).
    pub finished_at: Option<Millis>,
}

/// One work row: one PON's part of one wave.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkRow {
    /// Its id.
    pub id: i64,
    /// Its wave.
    pub wave: u32,
    /// Its PON.
    pub olt: String,
    /// See `olt`.
    pub pon: u8,
    /// Its ONUs.
    pub onus: Vec<u16>,
    /// Where it is.
    pub state: WorkState,
    /// Who holds it (leased).
    pub lease_owner: Option<String>,
    /// Until when (leased).
    pub lease_until: Option<Millis>,
    /// A halt order for its holder.
    pub halt: Option<String>,
    /// Leases given for it so far.
    pub attempts: u32,
    /// When its first lease was given.
    pub started_at: Option<Millis>,
    /// When it was done.
    pub finished_at: Option<Millis>,
}

/// One campaign row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignRow {
    /// Its id.
    pub id: i64,
    /// What the operator asked for.
    pub spec: CampaignSpec,
    /// Where it is.
    pub state: CampaignState,
    /// Why it halted.
    pub halt_reason: Option<String>,
    /// The package's version (a target's ONUs already on it are not upgraded).
    pub package_version: String,
    /// The package's model.
    pub package_model: String,
    /// When it was made, and by whom.
    pub created_at: Millis,
    /// See `created_at`.
    pub created_by: String,
    /// When its first wave started.
    pub started_at: Option<Millis>,
    /// When it completed or halted.
    pub finished_at: Option<Millis>,
}

/// Everything the campaign logic reads of one campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignView {
    /// The campaign.
    pub campaign: CampaignRow,
    /// Its waves.
    pub waves: Vec<WaveRow>,
    /// Its work.
    pub work: Vec<WorkRow>,
    /// Its ONUs' results.
    pub results: Vec<ResultRow>,
}
