//! The catalogue of the ONU suite: every check's id, title and source, in the order the
//! checks run. The checks ([`super::checks`]) name their entry here; a report lists what ran,
//! and this list is what could have run (docs/conformance.md has the same table, with what
//! each check sends).

/// What a check is, before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// Stable id: a topic (SWI software image ME, ERR error results, MIB MIB
    /// synchronisation, END End software download, STA Start software download, DLS Download
    /// section, ACT Activate, COM Commit, EXT the extended message set) and a number.
    pub id: &'static str,
    /// The rule, in a line.
    pub title: &'static str,
    /// Where the rule comes from: a G.988 clause, "industry practice", or this lab.
    pub source: &'static str,
}

const fn spec(id: &'static str, title: &'static str, source: &'static str) -> CheckSpec {
    CheckSpec { id, title, source }
}

const SWI: &str = "G.988 9.1.4";
const RESULTS: &str = "G.988 A.1.1 (result codes)";
const PROCEDURE: &str = "G.988 I.3";
const WINDOWS: &str = "G.988 I.3, A.3.22";

// Software image ME (read only).
pub(super) const SWI_01: CheckSpec = spec("SWI-01", "Both Software image instances exist", SWI);
pub(super) const SWI_02: CheckSpec = spec("SWI-02", "Never both images committed", SWI);
pub(super) const SWI_03: CheckSpec = spec("SWI-03", "Never both images active", SWI);
pub(super) const SWI_04: CheckSpec = spec("SWI-04", "Exactly one image is active", SWI);
pub(super) const SWI_05: CheckSpec = spec(
    "SWI-05",
    "Get returns exactly the attributes asked for",
    "G.988 A.3.13",
);
pub(super) const SWI_06: CheckSpec = spec("SWI-06", "The version attribute is 14 bytes", SWI);
// Error results.
pub(super) const ERR_01: CheckSpec = spec("ERR-01", "An unknown ME class gives result 4", RESULTS);
pub(super) const ERR_02: CheckSpec = spec("ERR-02", "An unknown instance gives result 5", RESULTS);
pub(super) const ERR_03: CheckSpec = spec(
    "ERR-03",
    "An unsupported message type gives result 2",
    RESULTS,
);
pub(super) const ERR_04: CheckSpec = spec(
    "ERR-04",
    "A MIB reset leaves the software images unchanged",
    "G.988 9.1.3, I.1",
);
// MIB synchronisation, as an OLT runs it at activation.
const MIB: &str = "G.988 I.1.2 (MIB synchronisation)";
pub(super) const MIB_01: CheckSpec = spec(
    "MIB-01",
    "MIB reset is answered with success and sets the MIB data sync to 0",
    "G.988 A.3.15, 9.1.3 (ONU data)",
);
pub(super) const MIB_02: CheckSpec = spec(
    "MIB-02",
    "MIB upload gives the number of MIB upload next commands, and that many follow",
    "G.988 A.3.13, A.3.14, A.3.16",
);
pub(super) const MIB_03: CheckSpec = spec(
    "MIB-03",
    "The MIB upload holds ONU-G, ONU2-G, ONU data, both software images, a circuit pack and an ANI-G, each as Get shows it",
    MIB,
);
pub(super) const MIB_04: CheckSpec = spec(
    "MIB-04",
    "Get all alarms gives the number of Get all alarms next commands, and each names an ME with an alarm",
    "G.988 A.3.10..A.3.13, I.1.2",
);
// Start software download.
pub(super) const END_01: CheckSpec = spec(
    "END-01",
    "End software download without Start is refused",
    PROCEDURE,
);
pub(super) const STA_01: CheckSpec = spec(
    "STA-01",
    "Start into the active image is refused",
    PROCEDURE,
);
pub(super) const STA_02: CheckSpec = spec(
    "STA-02",
    "Start into the committed image is refused",
    PROCEDURE,
);
pub(super) const STA_03: CheckSpec = spec(
    "STA-03",
    "An image too large for the slot is refused at Start",
    "G.988 A.3.21, industry practice",
);
pub(super) const STA_04: CheckSpec = spec(
    "STA-04",
    "Window negotiation: a proposal of 256 is answered with at most 256",
    "G.988 A.3.21",
);
pub(super) const STA_05: CheckSpec = spec(
    "STA-05",
    "The ONU may lower the window, never raise it (proposal 8)",
    "G.988 A.3.21",
);
pub(super) const STA_06: CheckSpec = spec(
    "STA-06",
    "Start during a download discards the partial image",
    PROCEDURE,
);
// Download section.
pub(super) const DLS_01: CheckSpec = spec("DLS-01", "A download in windows of 1 section", WINDOWS);
pub(super) const DLS_02: CheckSpec =
    spec("DLS-02", "A download in windows of 16 sections", WINDOWS);
pub(super) const DLS_03: CheckSpec =
    spec("DLS-03", "A download in windows of 32 sections", WINDOWS);
pub(super) const DLS_04: CheckSpec =
    spec("DLS-04", "A download in windows of 64 sections", WINDOWS);
pub(super) const DLS_05: CheckSpec =
    spec("DLS-05", "A download in windows of 256 sections", WINDOWS);
pub(super) const DLS_06: CheckSpec = spec(
    "DLS-06",
    "A missing section gives processing error on the AR section; the repeat succeeds",
    WINDOWS,
);
pub(super) const DLS_07: CheckSpec = spec(
    "DLS-07",
    "Sections out of order within a window are accepted",
    PROCEDURE,
);
pub(super) const DLS_08: CheckSpec = spec("DLS-08", "Duplicated sections are accepted", PROCEDURE);
pub(super) const DLS_09: CheckSpec = spec(
    "DLS-09",
    "A frame with a bad CRC is dropped without a response",
    "G.988 11.2 (trailer), industry practice",
);
pub(super) const DLS_10: CheckSpec = spec(
    "DLS-10",
    "A window whose CRC does not match what was written is refused",
    "this lab's envelope (docs/wire.md)",
);
pub(super) const DLS_11: CheckSpec = spec(
    "DLS-11",
    "A short last window is accepted, and End then finds the image the windows built",
    PROCEDURE,
);
// End software download.
pub(super) const END_02: CheckSpec = spec(
    "END-02",
    "End with a wrong CRC gives an error",
    "G.988 A.3.23",
);
pub(super) const END_03: CheckSpec = spec(
    "END-03",
    "After a failed End the image is not valid",
    "G.988 9.1.4, I.3",
);
pub(super) const END_04: CheckSpec = spec(
    "END-04",
    "End with a wrong size gives an error",
    "G.988 A.3.23",
);
pub(super) const END_05: CheckSpec = spec(
    "END-05",
    "End answers device busy while it writes, then success",
    "G.988 A.3.23, I.3",
);
pub(super) const END_06: CheckSpec = spec(
    "END-06",
    "After a successful End the image is valid, not active",
    SWI,
);
pub(super) const END_07: CheckSpec = spec(
    "END-07",
    "The abort convention (size 0, CRC 0xFFFFFFFF) discards the download",
    "industry practice (open OLT stacks)",
);
// Activate and Commit of an image that is not valid.
pub(super) const ACT_01: CheckSpec = spec(
    "ACT-01",
    "Activate of an image that is not valid is refused",
    "G.988 A.3.25",
);
pub(super) const COM_01: CheckSpec = spec(
    "COM-01",
    "Commit of an image that is not valid is refused",
    "G.988 A.3.27",
);
// The extended message set.
pub(super) const EXT_01: CheckSpec = spec(
    "EXT-01",
    "A download with the extended message set",
    "G.988 A.3 (extended), 9.1.2 (OMCC version)",
);
// Activate, reboot, fall back, Commit.
pub(super) const ACT_02: CheckSpec = spec(
    "ACT-02",
    "Activate with flag 1 during a voice call answers busy",
    "G.988 A.3.25 (activate flags)",
);
pub(super) const ACT_05: CheckSpec = spec(
    "ACT-05",
    "Activate with flag 2 during an emergency call answers busy",
    "G.988 A.3.25 (activate flags)",
);
pub(super) const ACT_03: CheckSpec = spec(
    "ACT-03",
    "Activate of a valid image reboots into it: active, not committed",
    "G.988 9.1.4, I.3",
);
pub(super) const ACT_04: CheckSpec = spec(
    "ACT-04",
    "A reboot before Commit falls back to the committed image",
    "G.988 I.3 (activate then commit), industry practice",
);
pub(super) const COM_02: CheckSpec = spec(
    "COM-02",
    "Commit makes the running image committed",
    "G.988 A.3.27, 9.1.4",
);
pub(super) const COM_03: CheckSpec =
    spec("COM-03", "After Commit the image boots after a reboot", SWI);
pub(super) const SWI_07: CheckSpec = spec(
    "SWI-07",
    "After the upgrade: one committed, one active, the same image",
    SWI,
);

/// Every check of the ONU suite, in the order it runs. A refusal is judged only after the
/// target has shown it implements the message refused (docs/conformance.md), so the checks that
/// succeed come first: Start's window negotiation before Start's refusals, the downloads
/// before End without Start, and the activation and commit before Activate and Commit of an
/// image that is not valid.
pub const CATALOGUE: [CheckSpec; 48] = [
    SWI_01, SWI_02, SWI_03, SWI_04, SWI_05, SWI_06, ERR_01, ERR_02, ERR_03, ERR_04, MIB_01, MIB_02,
    MIB_03, MIB_04, STA_04, STA_05, STA_01, STA_02, STA_03, STA_06, DLS_01, DLS_02, DLS_03, DLS_04,
    DLS_05, END_01, DLS_06, DLS_07, DLS_08, DLS_09, DLS_10, DLS_11, END_02, END_03, END_04, END_05,
    END_06, END_07, EXT_01, ACT_03, ACT_04, COM_02, COM_03, SWI_07, ACT_02, ACT_05, ACT_01, COM_01,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_check_has_a_source() {
        let mut ids: Vec<&str> = CATALOGUE.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CATALOGUE.len());
        assert!(
            CATALOGUE
                .iter()
                .all(|c| !c.source.is_empty() && !c.title.is_empty())
        );
    }
}
