//! ERR-01..04: the result codes of requests the ONU cannot carry out (G.988 A.1.1), and a MIB
//! reset, which must leave the software images alone.

use std::borrow::Cow;

use omci_codec::contents::{BASELINE_CONTENTS_LEN, Contents, OtherMessage};
use omci_codec::software_image::{SoftwareImageAttributes, mask};
use omci_codec::{MeClass, MeId, MessageType, ResultCode};

use super::super::catalogue::{ERR_01, ERR_02, ERR_03, ERR_04};
use super::super::client::{Client, sw};
use super::{SuiteError, code, fmt_img, pass_if, result_of};

/// An ME class no ONU has.
const UNKNOWN_CLASS: MeClass = MeClass(9999);
/// A software image instance no ONU has (slot 0 holds images 0 and 1).
const UNKNOWN_INSTANCE: u16 = 7;

/// Runs the checks; both images as they were before the MIB reset.
pub(super) async fn checks(c: &mut Client) -> Result<[SoftwareImageAttributes; 2], SuiteError> {
    let now = c.now();
    let a = c.get(MeId::new(UNKNOWN_CLASS, 0), 0x8000).await?;
    c.record(
        ERR_01,
        "Get ME class 9999",
        pass_if(
            code(&a) == Some(ResultCode::UnknownMe),
            "4 (unknown managed entity)",
            result_of(&a),
        ),
        now,
    );
    let now = c.now();
    let a = c.get(sw(UNKNOWN_INSTANCE), mask::VERSION).await?;
    c.record(
        ERR_02,
        "Get software image instance 7",
        pass_if(
            code(&a) == Some(ResultCode::UnknownInstance),
            "5 (unknown managed entity instance)",
            result_of(&a),
        ),
        now,
    );
    let now = c.now();
    let a = c
        .ask(
            sw(0),
            Contents::Other(OtherMessage {
                message_type: MessageType::Test,
                ak: false,
                contents: Cow::Owned(vec![0; BASELINE_CONTENTS_LEN]),
            }),
        )
        .await?;
    c.record(
        ERR_03,
        "Test on software image 0",
        pass_if(
            code(&a) == Some(ResultCode::NotSupported),
            "2 (command not supported)",
            result_of(&a),
        ),
        now,
    );
    let now = c.now();
    let before = c.images().await?;
    let a = c
        .ask(MeId::new(MeClass::ONU_DATA, 0), Contents::MibResetRequest)
        .await?;
    let after = c.images().await?;
    c.record(
        ERR_04,
        "MIB reset on ONU data, then Get both images",
        pass_if(
            a.is_some() && before == after,
            "answered, images as before",
            format!(
                "{}; before {} / {}, after {} / {}",
                result_of(&a),
                fmt_img(&before[0]),
                fmt_img(&before[1]),
                fmt_img(&after[0]),
                fmt_img(&after[1])
            ),
        ),
        now,
    );
    Ok(before)
}
