//! What an OLT controller and the fleet service say to each other over HTTP/JSON: one definition
//! of every message, serialised by one side and read by the other (the `fleet` crate serves
//! these, [`crate::worker`] sends them). docs/fleet.md, The controllers' protocol.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /api/controllers/register` | [`Register`] | [`Registered`] |
//! | `POST /api/controllers/claim` | [`Claim`] | [`Claimed`] |
//! | `POST /api/controllers/heartbeat` | [`Heartbeat`] | [`HeartbeatAnswer`] |
//! | `POST /api/work/{id}/results` | [`Results`] | [`ResultsAnswer`] |
//! | `POST /api/work/{id}/release` | [`Release`] | [`ResultsAnswer`] |
//! | `POST /api/events` | [`Event`] | `{}` |
//! | `GET /api/packages/{id}/image` | | the image file's bytes |
//!
//! Every request carries `Authorization: Bearer TOKEN` (a controller's or an operator's token).

use serde::{Deserialize, Serialize};

use crate::engine::Mode;
pub use crate::report::OnuResult;

/// A controller says which OLT it drives, its PON ports and the ONUs it found on them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The controller's own name (unique per process: `olt-1/host/pid` by default).
    pub controller: String,
    /// The OLT's name in the inventory.
    pub olt: String,
    /// The OLT's region tag (campaigns may target a region).
    pub region: String,
    /// The host the controller runs on, as it names itself.
    pub host: String,
    /// False when the controller could not read its ONUs now (another controller of the OLT,
    /// the active one, holds the OLT's address): only the controller is registered, the
    /// inventory is left as it stands.
    pub read: bool,
    /// Each PON port and its ONUs as read just now.
    pub pons: Vec<PonInventory>,
}

/// One PON port of an OLT, as its controller read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PonInventory {
    /// The port (1..=16).
    pub pon: u8,
    /// Its ONUs.
    pub onus: Vec<OnuInventory>,
}

/// One ONU as its OLT read it (ONU-G, ONU2-G, both software images; G.988 9.1.1, 9.1.2,
/// 9.1.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnuInventory {
    /// Its ONU-ID on the port.
    pub onu_id: u16,
    /// ONU-G serial number: four vendor letters and eight hex digits (`LABS00000001`); None
    /// when the ONU did not answer.
    pub serial: Option<String>,
    /// ONU2-G equipment ID.
    pub model: Option<String>,
    /// The version of the image it runs.
    pub active_version: Option<String>,
    /// The version of the image it boots.
    pub committed_version: Option<String>,
}

/// The fleet's answer to [`Register`]: the timing the controller keeps to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    /// A lease lasts this long after its last heartbeat (ms).
    pub lease_ms: u64,
    /// Heartbeat this often while holding a lease (ms).
    pub heartbeat_ms: u64,
    /// Ask for work this often while idle (ms).
    pub poll_ms: u64,
}

/// A controller asks for the work of its OLT's PON ports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The controller (as registered).
    pub controller: String,
    /// Its OLT.
    pub olt: String,
}

/// The work leased to the controller (empty: nothing to do now).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claimed {
    /// Each PON port's part of the current wave of a campaign, now leased to the claimer.
    pub work: Vec<Work>,
}

/// One PON port's part of one wave: the unit leased to a controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    /// The work's id (its row in the store).
    pub id: i64,
    /// The campaign.
    pub campaign: i64,
    /// The wave (0: the canary wave).
    pub wave: u32,
    /// The PON port.
    pub pon: u8,
    /// The ONUs of this port in this wave.
    pub onus: Vec<u16>,
    /// The image to roll out: always a full image.
    pub package: PackageRef,
    /// The delta packages the store holds for the same model and version, newest first
    /// (docs/fleet.md, "Delta packages"): the controller sends each base's ONUs its delta, and
    /// uses only the deltas that rebuild exactly `package` (by SHA-256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<DeltaRef>,
    /// How.
    pub plan: WorkPlan,
    /// The lease ends then unless heartbeaten (ms since the Unix epoch, the fleet's clock).
    pub lease_until_ms: i64,
    /// The campaign halted while an earlier controller held this work, which died before it
    /// had wound the PON down: wind it down (the ONUs back on their committed images) and
    /// report. None: run it.
    pub halt: Option<String>,
    /// What earlier controllers recorded of these ONUs: a controller resumes from it (ONUs
    /// with a final result are never touched again).
    pub results: Vec<OnuReport>,
}

/// The package a work rolls out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageRef {
    /// Its id (`GET /api/packages/{id}/image`).
    pub id: String,
    /// The model it is for.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Hex SHA-256 of the image file: the controller checks what it fetched against it.
    pub sha256: String,
    /// The image file's length.
    pub size: u64,
}

/// A delta package a work may use beside its full image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRef {
    /// The package (its version is the target's).
    pub package: PackageRef,
    /// The version it applies over: ONUs that run and commit this version get it.
    pub base_version: String,
}

/// How a PON's work is run by the OLT's campaign machinery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkPlan {
    /// Unicast or multicast windows.
    pub mode: Mode,
    /// The OLT's health gate: an ONU back on the new image must still be so this long later
    /// before its PON commits (ms).
    pub health_settle_ms: u64,
    /// The PON's own kill switch (share of its ONUs failed, 0..=1); the fleet's is separate.
    pub kill_threshold: f64,
    /// At most this many Download sections per second.
    pub pace: Option<u32>,
}

/// A controller says it is alive and still working on these leases.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The controller.
    pub controller: String,
    /// Its OLT.
    pub olt: String,
    /// The works it holds.
    pub work: Vec<i64>,
}

/// What became of each lease heartbeaten.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatAnswer {
    /// One per work of the heartbeat.
    pub leases: Vec<LeaseAnswer>,
}

/// One lease's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseAnswer {
    /// The work.
    pub work: i64,
    /// Its lease.
    pub lease: Lease,
}

/// A lease as the fleet sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Lease {
    /// Held, extended to then (ms since the Unix epoch).
    Held {
        /// The new end of the lease.
        until_ms: i64,
    },
    /// Held, but the campaign halted (the fleet's kill switch, an operator): wind the PON down
    /// to the committed images and report.
    Halt {
        /// Why.
        reason: String,
    },
    /// Not this controller's any more (it expired and another took it, or the work is over):
    /// stop touching that PON at once.
    Lost,
}

/// Each ONU's result so far, as it happens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// The controller (it must hold the lease).
    pub controller: String,
    /// The ONUs whose record changed.
    pub onus: Vec<OnuReport>,
}

/// Whether the fleet took a [`Results`] or [`Release`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsAnswer {
    /// False: the lease is not the sender's (nothing was recorded); stop touching that PON.
    pub accepted: bool,
}

/// A controller gives a lease back: its PON's campaign has ended (`finished`), or the
/// controller is stopping and another may carry on at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// The controller.
    pub controller: String,
    /// True when the PON's campaign ended (every ONU has its final result); false: it stopped
    /// part way.
    pub finished: bool,
    /// The ONUs' last records.
    pub onus: Vec<OnuReport>,
}

/// One ONU's record in a campaign, as its controller knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnuReport {
    /// Its ONU-ID on the work's port.
    pub onu_id: u16,
    /// Its result so far (`pending` while its upgrade runs).
    pub result: OnuResult,
    /// Why (empty for upgraded and pending).
    pub reason: String,
    /// Its model, as it said.
    pub model: Option<String>,
    /// The version it ran before the campaign.
    pub from_version: Option<String>,
    /// The version it boots, as last read.
    pub committed_version: Option<String>,
    /// The version it runs, as last read.
    pub active_version: Option<String>,
    /// The package it was sent: `full`, `delta from V1.0`, or `full (delta refused)` when it
    /// refused its delta and got the full image after it. None: nothing sent (yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// Telemetry: something an OLT saw that the fleet keeps (`kind`: `controller-started`,
/// `pon-started`, `pon-finished`, `kill-switch`, `lease-lost`, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The OLT.
    pub olt: String,
    /// The PON port, when the event is one port's.
    pub pon: Option<u8>,
    /// What kind of event.
    pub kind: String,
    /// In words.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_and_results_read_as_documented() {
        let a = HeartbeatAnswer {
            leases: vec![
                LeaseAnswer {
                    work: 3,
                    lease: Lease::Held { until_ms: 10 },
                },
                LeaseAnswer {
                    work: 4,
                    lease: Lease::Halt {
                        reason: "kill switch".into(),
                    },
                },
                LeaseAnswer {
                    work: 5,
                    lease: Lease::Lost,
                },
            ],
        };
        let text = serde_json::to_string(&a).unwrap();
        assert!(
            text.contains(r#"{"work":3,"lease":{"state":"held","until_ms":10}}"#),
            "{text}"
        );
        assert!(text.contains(r#""state":"lost""#), "{text}");
        assert_eq!(serde_json::from_str::<HeartbeatAnswer>(&text).unwrap(), a);
        let r: OnuReport = serde_json::from_str(
            r#"{"onu_id":1,"result":"upgraded","reason":"","model":null,"from_version":"V1","committed_version":"V2","active_version":"V2"}"#,
        )
        .unwrap();
        assert_eq!(r.result, OnuResult::Upgraded);
        assert!(serde_json::from_str::<Claim>(r#"{"controller":"a","olt":"b","x":1}"#).is_err());
    }
}
