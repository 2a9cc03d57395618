//! ERR-01..04: the result codes of requests the ONU cannot carry out (G.988 A.1.1), and a MIB
//! reset, which must leave the software images alone. A target that answers every Get with
//! "unknown ME" would pass ERR-01 without knowing any ME: the error checks are judged only
//! once the target has answered a Get with success.

use std::borrow::Cow;

use omci_codec::contents::{BASELINE_CONTENTS_LEN, Contents, OtherMessage};
use omci_codec::software_image::mask;
use omci_codec::{MeClass, MeId, MessageType, ResultCode};

use super::super::catalogue::{ERR_01, ERR_02, ERR_03, ERR_04};
use super::super::client::{Client, sw};
use super::super::report::Verdict;
use super::super::words;
use super::{SuiteError, code, pass_if, refusal};

/// An ME class no ONU has.
const UNKNOWN_CLASS: MeClass = MeClass(9999);
/// A software image instance no ONU has (slot 0 holds images 0 and 1).
const UNKNOWN_INSTANCE: u16 = 7;

pub(super) async fn checks(c: &mut Client) -> Result<(), SuiteError> {
    let by = "to a Get of ONU-G or a software image";
    let sent = "Get ME class 9999";
    if c.begin(ERR_01, sent).await? {
        let now = c.now();
        let v = match c.needs_shown(MessageType::Get, by) {
            Err(why) => Verdict::Skip { why },
            Ok(()) => {
                let a = c.get(MeId::new(UNKNOWN_CLASS, 0), 0x8000).await?;
                refusal(&a, &[ResultCode::UnknownMe])
            }
        };
        c.record(ERR_01, sent, v, now);
    }
    let sent = "Get software image instance 7";
    if c.begin(ERR_02, sent).await? {
        let now = c.now();
        let v = match c.needs_shown(MessageType::Get, by) {
            Err(why) => Verdict::Skip { why },
            Ok(()) => {
                let a = c.get(sw(UNKNOWN_INSTANCE), mask::VERSION).await?;
                refusal(&a, &[ResultCode::UnknownInstance])
            }
        };
        c.record(ERR_02, sent, v, now);
    }
    let sent = "Test on software image 0";
    if c.begin(ERR_03, sent).await? {
        let now = c.now();
        let v = match c.needs_shown(MessageType::Get, by) {
            Err(why) => Verdict::Skip { why },
            Ok(()) => {
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
                refusal(&a, &[ResultCode::NotSupported])
            }
        };
        c.record(ERR_03, sent, v, now);
    }
    let sent = "MIB reset on ONU data, then Get both images";
    if c.begin(ERR_04, sent).await? {
        let now = c.now();
        let before = c.images().await?;
        let a = c
            .ask(MeId::new(MeClass::ONU_DATA, 0), Contents::MibResetRequest)
            .await?;
        let v = match code(&a) {
            Some(ResultCode::Success) => {
                let after = c.images().await?;
                match (&before, &after) {
                    (Ok(b), Ok(a)) => pass_if(
                        b == a,
                        "the images as before the MIB reset",
                        format!("before: {}; after: {}", words::images(b), words::images(a)),
                    ),
                    (Err(why), _) => Verdict::Skip {
                        why: format!("before the MIB reset: {why}"),
                    },
                    (_, Err(why)) => pass_if(
                        false,
                        "the images as before the MIB reset",
                        format!("after the MIB reset: {why}"),
                    ),
                }
            }
            Some(ResultCode::NotSupported) => Verdict::Skip {
                why: "the target answered MIB reset with result 2, command not supported: nothing was reset".into(),
            },
            _ => pass_if(
                false,
                "MIB reset answered with result 0, command processed successfully",
                words::answer(&a),
            ),
        };
        c.record(ERR_04, sent, v, now);
    }
    Ok(())
}
