//! Test fixtures of the runner's rooms and of its readers (the soak, the benchmark): an OLT
//! report, ONU flashes and a run report as a run finds them.

use std::collections::BTreeMap;

use olt::engine::Mode;
use olt::report::{
    CampaignOutcome, CampaignReport, ImageReport, OnuReport, OnuResult, Report, Totals,
};
use onu::status::{FlashStatus, SlotStatus};

use super::{RunReport, UsageReport};

/// The SHA-256 of the fixtures' new image.
pub(crate) const NEW_SHA: &str = "5ha-of-v2";

/// The OLT's report of ONUs `(id, result, reason)`, a multicast rollout of V2.0 of 100
/// sections sent once to the group.
pub(crate) fn report(onus: &[(u16, OnuResult, &str)]) -> Report {
    let count = |r: OnuResult| onus.iter().filter(|o| o.1 == r).count();
    Report {
        format: Report::FORMAT.into(),
        format_version: Report::FORMAT_VERSION,
        tool_version: String::new(),
        started_at: String::new(),
        listen: String::new(),
        tci_seed: 0,
        mode: Mode::Multicast,
        image: ImageReport {
            version: "V2.0".into(),
            size: 3100,
            sha256: NEW_SHA.into(),
        },
        duration_s: 2.0,
        campaign: CampaignReport {
            outcome: CampaignOutcome::Completed,
            halt_reason: None,
            waves: vec![onus.iter().map(|o| o.0).collect()],
        },
        onus: onus
            .iter()
            .map(|&(id, result, reason)| OnuReport {
                pon: olt::engine::PonPort::FIRST,
                id,
                serial: Some(format!("LABS{id:08X}")),
                result,
                reason: reason.into(),
                wave: Some(1),
                model: None,
                from_version: Some("V1.0".into()),
                to_version: "V2.0".into(),
                committed_version: None,
                active_version: None,
                retries: 0,
                timeouts: 0,
                repaired_windows: 0,
                busy: 0,
                restarts: 0,
                frames: 5,
                frames_with_ar: 5,
                phases_s: BTreeMap::new(),
                timeline: Vec::new(),
            })
            .collect(),
        totals: Totals {
            onus: onus.len(),
            upgraded: count(OnuResult::Upgraded),
            failed: count(OnuResult::Failed),
            untouched: count(OnuResult::Untouched),
            frames_multicast: 100,
            frames_unicast: 5 * onus.len() as u64,
            ..Totals::default()
        },
        pons: Vec::new(),
    }
}

/// A flash: slot 0 holds V1.0, slot 1 `new` (version and SHA-256) if any; `committed` and
/// `active` say which slot is which.
pub(crate) fn flash(new: Option<(&str, &str)>, committed: u8, active: u8) -> FlashStatus {
    let slot = |n: u8, version: Option<&str>, sha: &str| SlotStatus {
        slot: n,
        version: version.map(str::to_string),
        committed: committed == n,
        active: active == n,
        valid: version.is_some(),
        verifies: version.is_some(),
        bytes: 3100,
        sha256: sha.into(),
    };
    FlashStatus {
        metadata_readable: true,
        sequence: Some(3),
        pending_activation: None,
        anti_rollback_floor: Some(1),
        slots: vec![
            slot(0, Some("V1.0"), "5ha-of-v1"),
            slot(1, new.map(|n| n.0), new.map_or("", |n| n.1)),
        ],
        bootable: true,
        boots: Some(active),
        boot_path: Vec::new(),
    }
}

/// ONU flashes upgraded to the fixtures' V2.0.
pub(crate) fn upgraded() -> FlashStatus {
    flash(Some(("V2.0", NEW_SHA)), 1, 1)
}

/// ONU flashes still on V1.0.
pub(crate) fn on_v1() -> FlashStatus {
    flash(None, 0, 0)
}

/// The run report of a run of the ONUs of `flash` whose OLT wrote `olt`.
pub(crate) fn run_report(olt: Option<Report>, flash: BTreeMap<u16, FlashStatus>) -> RunReport {
    RunReport {
        format: RunReport::FORMAT,
        format_version: RunReport::FORMAT_VERSION,
        tool_version: "0.1.0",
        started_at: "2026-12-02T01:00:00Z".into(),
        seed: 1,
        addresses: super::Addresses {
            first_onu: "127.0.0.1:40001".into(),
            last_onu: "127.0.0.1:40004".into(),
            olt: "127.0.0.1:40005".into(),
            groups: vec!["239.255.0.1:40006".into()],
        },
        scenario: "t".into(),
        description: String::new(),
        onus: flash.len() as u16,
        passed: true,
        failures: Vec::new(),
        checks: Vec::new(),
        duration_s: 3.0,
        rollout_s: 2.0,
        olt_processes: 1,
        usage: UsageReport::default(),
        sections: 100,
        olt_exit: Some(0),
        olt_error: None,
        faults: Vec::new(),
        olt,
        olt_summary: String::new(),
        flash,
    }
}
