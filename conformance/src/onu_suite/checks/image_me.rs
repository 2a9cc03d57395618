//! SWI-01..06: the Software image ME (G.988 9.1.4) as the ONU reports it, before anything is
//! changed: both instances exist, their flags are consistent, Get answers by mask. SWI-02..04
//! are judged on SWI-01's answers and need no more of the target.

use omci_codec::ResultCode;
use omci_codec::contents::{AttributeValues, Contents};
use omci_codec::software_image::mask;

use super::super::catalogue::{SWI_01, SWI_02, SWI_03, SWI_04, SWI_05, SWI_06};
use super::super::client::{Client, sw};
use super::super::words;
use super::{SuiteError, pass_if};

pub(super) async fn checks(c: &mut Client) -> Result<(), SuiteError> {
    let sent = "Get software image 0 and 1 (version, committed, active, valid)";
    let mut both = None;
    if c.begin(SWI_01, sent).await? {
        let now = c.now();
        let (a0, a1) = (c.image(0).await?, c.image(1).await?);
        let said = |a: &Option<_>| {
            a.as_ref()
                .map_or("not answered with its attributes".to_string(), words::image)
        };
        c.record(
            SWI_01,
            sent,
            pass_if(
                a0.is_some() && a1.is_some(),
                "both answered with result 0, command processed successfully, and their attributes",
                format!("image 0: {}; image 1: {}", said(&a0), said(&a1)),
            ),
            now,
        );
        if let (Some(a0), Some(a1)) = (a0, a1) {
            both = Some([a0, a1]);
        }
    }
    // Judged on SWI-01's answers: no request of their own.
    let judged = [
        (SWI_02, "at most one image with is committed 1"),
        (SWI_03, "at most one image with is active 1"),
        (SWI_04, "exactly one image with is active 1"),
    ];
    for (spec, expected) in judged {
        let now = c.now();
        let Some(imgs) = &both else {
            c.skip(
                spec,
                "(SWI-01's answers)",
                "needs both software images as SWI-01 reads them",
            );
            continue;
        };
        let count = |f: fn(&omci_codec::SoftwareImageAttributes) -> Option<bool>| {
            imgs.iter().filter(|a| f(a) == Some(true)).count()
        };
        let ok = match spec.id {
            "SWI-02" => count(|a| a.is_committed) <= 1,
            "SWI-03" => count(|a| a.is_active) <= 1,
            _ => count(|a| a.is_active) == 1,
        };
        c.record(
            spec,
            "(SWI-01's answers)",
            pass_if(ok, expected, words::images(imgs)),
            now,
        );
    }
    // Get by mask: only what was asked comes back.
    let sent = "Get software image 0, mask 0x2000 (is active)";
    if c.begin(SWI_05, sent).await? {
        let now = c.now();
        let a = c.get(sw(0), mask::IS_ACTIVE).await?;
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::GetResponse(g)) => {
                let m = g.attributes.attribute_mask();
                pass_if(
                    g.result == ResultCode::Success && m == mask::IS_ACTIVE,
                    "result 0, command processed successfully, with attribute mask 0x2000 (is active) only",
                    format!("{}, attribute mask 0x{m:04x}", words::result(g.result)),
                )
            }
            _ => pass_if(false, "a Get response", words::answer(&a)),
        };
        c.record(SWI_05, sent, v, now);
    }
    let sent = "Get software image 0, mask 0x8000 (version)";
    if c.begin(SWI_06, sent).await? {
        let now = c.now();
        let a = c.get(sw(0), mask::VERSION).await?;
        let expected =
            "result 0, command processed successfully, attribute mask 0x8000 and a 14-byte version";
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::GetResponse(g)) if g.result != ResultCode::Success => {
                pass_if(false, expected, words::result(g.result))
            }
            Some(Contents::GetResponse(g)) => match &g.attributes {
                AttributeValues::SoftwareImage(x) => pass_if(
                    x.version.is_some() && g.attributes.attribute_mask() == mask::VERSION,
                    expected,
                    format!("attribute mask 0x{:04x}", g.attributes.attribute_mask()),
                ),
                // Values that do not read as a 14-byte version and nothing else.
                AttributeValues::Raw {
                    attribute_mask,
                    values,
                } => pass_if(
                    false,
                    expected,
                    format!(
                        "attribute mask 0x{attribute_mask:04x} with {} value bytes that are not a version alone",
                        values.len()
                    ),
                ),
            },
            _ => pass_if(false, "a Get response", words::answer(&a)),
        };
        c.record(SWI_06, sent, v, now);
    }
    Ok(())
}
