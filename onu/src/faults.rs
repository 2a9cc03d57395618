//! Named power-loss points and link faults.
//!
//! A power-loss point makes the ONU core stop dead at a precise moment of the upgrade, leaving
//! its flash exactly as a real power cut would: the frames it had already queued are sent
//! (they were on the wire), nothing after. The process driver then aborts (no cleanup, as a
//! SIGKILL would), and the in-process simulator drops the core and boots a new one from the
//! same flash.

use std::fmt;
use std::str::FromStr;

/// The moments at which power can be cut on purpose: one definition for the ONU core, its
/// command line (`onu run --fault POINT@N`) and the scenario files (`point = "..."`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPoint {
    /// Halfway through writing a Download section to the slot (a torn write).
    MidSectionWrite,
    /// Right after acknowledging a window (the acknowledgement was sent).
    AfterWindowAck,
    /// During the busy phase of End software download (flash write and verification).
    DuringBusy,
    /// Halfway through writing the metadata record (a torn record).
    MidMetadataWrite,
    /// After answering Activate, before the reboot into the new image.
    AfterActivate,
    /// After booting the activated image, before Commit arrives.
    AfterRebootBeforeCommit,
    /// In recovery mode, halfway through writing the golden image fetched over TFTP into its
    /// slot (the metadata does not yet call the slot valid).
    MidGoldenRestore,
    /// During a delta package's rebuild, after a step's bytes reached the rebuild area (the
    /// `n`-th time is after the `n`-th step; the last step's is the whole target written,
    /// not yet verified).
    MidDeltaRebuild,
    /// The target is rebuilt and verified in the rebuild area; the slot still holds the
    /// package.
    DeltaRebuiltBeforeSwap,
    /// The rebuilt target has replaced the package in the slot; the metadata does not yet
    /// call the slot valid.
    DeltaSwappedBeforeMetadata,
}

impl FaultPoint {
    /// Every point: the upgrade's, in upgrade order, then recovery mode's, then a delta
    /// rebuild's.
    pub const ALL: [FaultPoint; 10] = [
        FaultPoint::MidSectionWrite,
        FaultPoint::AfterWindowAck,
        FaultPoint::DuringBusy,
        FaultPoint::MidMetadataWrite,
        FaultPoint::AfterActivate,
        FaultPoint::AfterRebootBeforeCommit,
        FaultPoint::MidGoldenRestore,
        FaultPoint::MidDeltaRebuild,
        FaultPoint::DeltaRebuiltBeforeSwap,
        FaultPoint::DeltaSwappedBeforeMetadata,
    ];

    /// The points only a delta package's rebuild passes (at End software download, after the
    /// package's checks), in rebuild order.
    pub const DELTA: [FaultPoint; 3] = [
        FaultPoint::MidDeltaRebuild,
        FaultPoint::DeltaRebuiltBeforeSwap,
        FaultPoint::DeltaSwappedBeforeMetadata,
    ];

    /// The points an OLT's upgrade passes (all but recovery mode's), in upgrade order.
    pub const UPGRADE: [FaultPoint; 6] = [
        FaultPoint::MidSectionWrite,
        FaultPoint::AfterWindowAck,
        FaultPoint::DuringBusy,
        FaultPoint::MidMetadataWrite,
        FaultPoint::AfterActivate,
        FaultPoint::AfterRebootBeforeCommit,
    ];

    /// The name used on command lines and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::MidSectionWrite => "mid-section-write",
            FaultPoint::AfterWindowAck => "after-window-ack",
            FaultPoint::DuringBusy => "during-busy",
            FaultPoint::MidMetadataWrite => "mid-metadata-write",
            FaultPoint::AfterActivate => "after-activate",
            FaultPoint::AfterRebootBeforeCommit => "after-reboot-before-commit",
            FaultPoint::MidGoldenRestore => "mid-golden-restore",
            FaultPoint::MidDeltaRebuild => "mid-delta-rebuild",
            FaultPoint::DeltaRebuiltBeforeSwap => "delta-rebuilt-before-swap",
            FaultPoint::DeltaSwappedBeforeMetadata => "delta-swapped-before-metadata",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultPoint::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultPoint::ALL.iter().map(|p| p.name()).collect();
                format!("unknown fault point {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// When to cut the power: at the `occurrence`-th time (from 1) the core reaches `point`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLossPlan {
    /// Where.
    pub point: FaultPoint,
    /// Which time it is reached (1 = the first).
    pub occurrence: u32,
}

/// Counts the fault points reached and says when the plan fires.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    plan: Option<PowerLossPlan>,
    reached: [u32; FaultPoint::ALL.len()],
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Power is cut as `plan` says.
    pub fn power_loss(plan: PowerLossPlan) -> Self {
        Self {
            plan: Some(plan),
            reached: [0; FaultPoint::ALL.len()],
        }
    }

    /// How many times `point` was reached so far (across the lives this plan went through).
    pub fn reached(&self, point: FaultPoint) -> u32 {
        self.reached[point as usize]
    }

    /// Records that `point` is reached; true when the power must be cut here.
    pub fn reach(&mut self, point: FaultPoint) -> bool {
        let i = point as usize;
        self.reached[i] += 1;
        self.plan
            .is_some_and(|p| p.point == point && p.occurrence == self.reached[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in FaultPoint::ALL {
            assert_eq!(p.name().parse::<FaultPoint>(), Ok(p));
        }
        assert!(
            "nope"
                .parse::<FaultPoint>()
                .unwrap_err()
                .contains("mid-section-write")
        );
    }

    #[test]
    fn fires_at_the_planned_occurrence_only() {
        let mut f = Faults::power_loss(PowerLossPlan {
            point: FaultPoint::AfterWindowAck,
            occurrence: 2,
        });
        assert!(!f.reach(FaultPoint::AfterWindowAck));
        assert!(!f.reach(FaultPoint::DuringBusy));
        assert!(f.reach(FaultPoint::AfterWindowAck));
        assert!(!f.reach(FaultPoint::AfterWindowAck));
    }
}
