//! The message type field (G.988 clause 11.2.2, Table 11.2.2-1).
//!
//! The byte is `DB | AR | AK | MT`: bit 8 (DB) is reserved and 0, bit 7 (AR) asks for an
//! acknowledgement, bit 6 (AK) marks the acknowledgement (response), bits 5..1 are the action.

use std::fmt;

/// Bit 7 of the message type byte: acknowledge request.
pub const AR_BIT: u8 = 0x40;
/// Bit 6 of the message type byte: this message is an acknowledgement.
pub const AK_BIT: u8 = 0x20;
/// Bit 8 of the message type byte: reserved (DB), 0 in G.988; kept so frames round-trip.
pub const DB_BIT: u8 = 0x80;
/// Bits 5..1 of the message type byte: the action.
pub const MT_MASK: u8 = 0x1F;

/// The action of an OMCI message (G.988 Table 11.2.2-1). Open: an action this lab has no name
/// for still parses, as [`MessageType::Unknown`], and can be answered "not supported".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // each variant is the G.988 action of the same name
pub enum MessageType {
    Create,
    Delete,
    Set,
    Get,
    GetAllAlarms,
    GetAllAlarmsNext,
    MibUpload,
    MibUploadNext,
    MibReset,
    Alarm,
    AttributeValueChange,
    Test,
    StartSoftwareDownload,
    DownloadSection,
    EndSoftwareDownload,
    ActivateSoftware,
    CommitSoftware,
    SynchronizeTime,
    Reboot,
    GetNext,
    TestResult,
    GetCurrentData,
    SetTable,
    /// An action value G.988 reserves or this lab does not know (5 bits).
    Unknown(u8),
}

/// Every named action with its code and G.988 name, in code order.
const TABLE: &[(MessageType, u8, &str)] = &[
    (MessageType::Create, 4, "Create"),
    (MessageType::Delete, 6, "Delete"),
    (MessageType::Set, 8, "Set"),
    (MessageType::Get, 9, "Get"),
    (MessageType::GetAllAlarms, 11, "Get all alarms"),
    (MessageType::GetAllAlarmsNext, 12, "Get all alarms next"),
    (MessageType::MibUpload, 13, "MIB upload"),
    (MessageType::MibUploadNext, 14, "MIB upload next"),
    (MessageType::MibReset, 15, "MIB reset"),
    (MessageType::Alarm, 16, "Alarm"),
    (
        MessageType::AttributeValueChange,
        17,
        "Attribute value change",
    ),
    (MessageType::Test, 18, "Test"),
    (
        MessageType::StartSoftwareDownload,
        19,
        "Start software download",
    ),
    (MessageType::DownloadSection, 20, "Download section"),
    (
        MessageType::EndSoftwareDownload,
        21,
        "End software download",
    ),
    (MessageType::ActivateSoftware, 22, "Activate software"),
    (MessageType::CommitSoftware, 23, "Commit software"),
    (MessageType::SynchronizeTime, 24, "Synchronize time"),
    (MessageType::Reboot, 25, "Reboot"),
    (MessageType::GetNext, 26, "Get next"),
    (MessageType::TestResult, 27, "Test result"),
    (MessageType::GetCurrentData, 28, "Get current data"),
    (MessageType::SetTable, 29, "Set table"),
];

impl MessageType {
    /// The action from the low five bits of the message type byte.
    pub fn from_code(code: u8) -> Self {
        let code = code & MT_MASK;
        TABLE
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(MessageType::Unknown(code), |(mt, _, _)| *mt)
    }

    /// The five-bit code of this action.
    pub fn code(self) -> u8 {
        match self {
            MessageType::Unknown(code) => code & MT_MASK,
            known => TABLE
                .iter()
                .find(|(mt, _, _)| *mt == known)
                .map(|(_, c, _)| *c)
                .unwrap_or(0),
        }
    }

    /// The G.988 name ("Start software download"), or `None` for an unknown code.
    pub fn name(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(mt, _, _)| *mt == self)
            .map(|(_, _, n)| *n)
    }

    /// Looks an action up by its G.988 name, ignoring case, spaces, `-` and `_`
    /// (`"Start software download"`, `"start_software_download"` and
    /// `"StartSoftwareDownload"` are the same).
    pub fn from_name(name: &str) -> Option<Self> {
        let fold = |s: &str| -> String {
            s.chars()
                .filter(|c| !matches!(c, ' ' | '-' | '_'))
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = fold(name);
        TABLE
            .iter()
            .find(|(_, _, n)| fold(n) == wanted)
            .map(|(mt, _, _)| *mt)
    }

    /// True for the messages an ONU sends on its own, without a request (G.988 clause 11.2.2):
    /// alarm, attribute value change and test result.
    pub fn is_notification(self) -> bool {
        matches!(
            self,
            MessageType::Alarm | MessageType::AttributeValueChange | MessageType::TestResult
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Unknown message type {}", self.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..32u8 {
            assert_eq!(MessageType::from_code(code).code(), code);
        }
    }

    #[test]
    fn software_download_codes_are_g988s() {
        assert_eq!(MessageType::StartSoftwareDownload.code(), 19);
        assert_eq!(MessageType::DownloadSection.code(), 20);
        assert_eq!(MessageType::EndSoftwareDownload.code(), 21);
        assert_eq!(MessageType::ActivateSoftware.code(), 22);
        assert_eq!(MessageType::CommitSoftware.code(), 23);
        assert_eq!(MessageType::Reboot.code(), 25);
        assert_eq!(
            MessageType::from_code(0x53 & MT_MASK),
            MessageType::StartSoftwareDownload
        );
    }

    #[test]
    fn names_fold() {
        assert_eq!(
            MessageType::from_name("start_software_download"),
            Some(MessageType::StartSoftwareDownload)
        );
        assert_eq!(
            MessageType::from_name("MIB reset"),
            Some(MessageType::MibReset)
        );
        assert_eq!(
            MessageType::from_name("MibReset"),
            Some(MessageType::MibReset)
        );
        assert_eq!(MessageType::from_name("nonsense"), None);
    }
}
