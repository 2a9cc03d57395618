//! The campaign journal: what a restarted OLT needs to carry a campaign on, stored as JSON and
//! written atomically (a temporary file renamed over the old one), so that a crash leaves the
//! old journal or the new one, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::PonPort;
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
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)? + "\n";
        store_text(path, &text)
    }
}

/// The journal file: one campaign's journal (format 1) for an OLT of one PON port, or every
/// port's (format 2: `{"format": 2, "pons": {"1": JOURNAL, "2": JOURNAL}}`).
#[derive(Clone, Debug, PartialEq)]
pub enum JournalFile {
    /// The campaign of PON port 1, alone.
    One(Journal),
    /// Each port's campaign.
    Pons(BTreeMap<PonPort, Journal>),
}

/// The form of a journal file of several ports.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PonsFile {
    format: u32,
    pons: BTreeMap<PonPort, Journal>,
}

impl JournalFile {
    /// The format of a journal file of several ports.
    pub const FORMAT_PONS: u32 = 2;

    /// The journal of `campaigns` (none when no campaign has one: an abort).
    pub fn of(campaigns: &BTreeMap<PonPort, crate::campaign::Campaign>) -> Option<JournalFile> {
        let journals: BTreeMap<PonPort, Journal> = campaigns
            .iter()
            .filter_map(|(p, c)| c.journal().map(|j| (*p, j)))
            .collect();
        if journals.is_empty() {
            return None;
        }
        Some(match journals.first_key_value() {
            Some((&PonPort::FIRST, j)) if journals.len() == 1 => JournalFile::One(j.clone()),
            _ => JournalFile::Pons(journals),
        })
    }

    /// Reads a journal file from its JSON text (either format).
    pub fn parse(text: &str) -> Result<JournalFile, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        if v.get("pons").is_some() {
            let f: PonsFile = serde_json::from_value(v)?;
            if f.format != Self::FORMAT_PONS {
                return Err(serde::de::Error::custom(format!(
                    "journal format {} (this OLT reads 1 and 2)",
                    f.format
                )));
            }
            return Ok(JournalFile::Pons(f.pons));
        }
        serde_json::from_value(v).map(JournalFile::One)
    }

    /// The journal of port `pon`, if the file has one.
    pub fn pon(&self, pon: PonPort) -> Option<&Journal> {
        match self {
            JournalFile::One(j) if pon == PonPort::FIRST => Some(j),
            JournalFile::One(_) => None,
            JournalFile::Pons(m) => m.get(&pon),
        }
    }

    /// Every port's journal.
    pub fn journals(&self) -> Vec<(PonPort, &Journal)> {
        match self {
            JournalFile::One(j) => vec![(PonPort::FIRST, j)],
            JournalFile::Pons(m) => m.iter().map(|(p, j)| (*p, j)).collect(),
        }
    }

    /// Writes the file atomically (see [`Journal::store`]).
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        match self {
            JournalFile::One(j) => j.store(path),
            JournalFile::Pons(pons) => {
                let file = PonsFile {
                    format: Self::FORMAT_PONS,
                    pons: pons.clone(),
                };
                let text = serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?;
                store_text(path, &(text + "\n"))
            }
        }
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, synced, then renamed over it.
fn store_text(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
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
    /// Its serial number (ONU-G), once read (absent from journals before serial numbers).
    #[serde(default)]
    pub serial: Option<String>,
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
                    serial: Some("LABS00000002".into()),
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
        // One port: the file is the journal itself (format 1); several: format 2.
        let one = JournalFile::parse(&text).unwrap();
        assert_eq!(one.pon(PonPort::FIRST), Some(&j));
        let two = JournalFile::Pons([(PonPort(1), j.clone()), (PonPort(3), j.clone())].into());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.json");
        two.store(&path).unwrap();
        let back = JournalFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, two);
        assert_eq!(back.pon(PonPort(3)), Some(&j));
        assert_eq!(back.pon(PonPort(2)), None);
    }
}
