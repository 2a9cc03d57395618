//! The campaign journal: what a restarted OLT needs to carry a campaign on, stored as JSON and
//! written atomically (a temporary file renamed over the old one), so that a crash leaves the
//! old journal or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::report::OnuResult;

/// The journal of one campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    /// The journal's own format ([`Journal::FORMAT`]).
    pub format: u32,
    /// Hex SHA-256 of the image file the campaign rolls out.
    pub image_sha256: String,
    /// The image's version.
    pub image_version: String,
    /// Where the campaign was.
    pub stage: JournalStage,
    /// The wave running (or halted).
    pub wave: usize,
    /// Why the campaign halted.
    pub halt_reason: Option<String>,
    /// The waves' ONU-IDs.
    pub waves: Vec<Vec<u16>>,
    /// What is known of each ONU.
    pub onus: BTreeMap<u16, JournalOnu>,
}

impl Journal {
    /// The format this code writes and reads.
    pub const FORMAT: u32 = 1;

    /// Reads a journal from its JSON text.
    pub fn parse(text: &str) -> Result<Journal, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Writes the journal to `path` atomically: a temporary file beside it, synced, then
    /// renamed over it.
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)
    }
}

/// Where a journaled campaign was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JournalStage {
    /// Reading every ONU's model and images.
    Survey,
    /// Running a wave.
    Wave,
    /// The kill switch or an abort was winding the wave down.
    Halting,
    /// Stopped; no further wave starts.
    Halted,
    /// Every wave ran.
    Completed,
}

impl JournalStage {
    /// The stage's word, as the journal writes it.
    pub fn word(self) -> &'static str {
        match self {
            JournalStage::Survey => "survey",
            JournalStage::Wave => "wave",
            JournalStage::Halting => "halting",
            JournalStage::Halted => "halted",
            JournalStage::Completed => "completed",
        }
    }
}

/// A stage equals its word (`stage == "halted"`), as the journal writes it.
impl PartialEq<&str> for JournalStage {
    fn eq(&self, other: &&str) -> bool {
        self.word() == *other
    }
}

/// One ONU in the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalOnu {
    /// Its result so far (`pending` while its upgrade has not ended).
    pub result: OnuResult,
    /// Why (for any result but upgraded and pending).
    pub reason: String,
    /// Its wave.
    pub wave: Option<usize>,
    /// Versions before, committed and active, as last read.
    pub from_version: Option<String>,
    /// See `from_version`.
    pub committed_version: Option<String>,
    /// See `from_version`.
    pub active_version: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_round_trips_through_its_json_with_typed_stage_and_results() {
        let j = Journal {
            format: Journal::FORMAT,
            image_sha256: "ab".into(),
            image_version: "V2.0".into(),
            stage: JournalStage::Halting,
            wave: 1,
            halt_reason: Some("kill switch".into()),
            waves: vec![vec![1], vec![2, 3]],
            onus: [(
                2,
                JournalOnu {
                    result: OnuResult::Failed,
                    reason: "window 0 failed".into(),
                    wave: Some(1),
                    from_version: Some("V1.0".into()),
                    committed_version: Some("V1.0".into()),
                    active_version: None,
                },
            )]
            .into_iter()
            .collect(),
        };
        let text = serde_json::to_string(&j).unwrap();
        assert!(text.contains(r#""stage":"halting""#), "{text}");
        assert!(text.contains(r#""result":"failed""#), "{text}");
        assert_eq!(Journal::parse(&text).unwrap(), j);
        assert!(Journal::parse(&text.replace("halting", "resting")).is_err());
    }
}
