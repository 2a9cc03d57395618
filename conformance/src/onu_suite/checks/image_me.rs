//! SWI-01..06: the Software image ME (G.988 9.1.4) as the ONU reports it, before anything is
//! changed: both instances exist, their flags are consistent, Get answers by mask.

use omci_codec::ResultCode;
use omci_codec::contents::{AttributeValues, Contents};
use omci_codec::software_image::mask;

use super::super::catalogue::{SWI_01, SWI_02, SWI_03, SWI_04, SWI_05, SWI_06};
use super::super::client::{Client, sw};
use super::{SuiteError, fmt_img, pass_if, result_of};

pub(super) async fn checks(c: &mut Client) -> Result<(), SuiteError> {
    let now = c.now();
    let (a0, a1) = (c.image(0).await?, c.image(1).await?);
    c.record(
        SWI_01,
        "Get software image 0 and 1 (version, committed, active, valid)",
        pass_if(
            a0.is_some() && a1.is_some(),
            "both answer success",
            format!("image 0: {}, image 1: {}", a0.is_some(), a1.is_some()),
        ),
        now,
    );
    let (Some(a0), Some(a1)) = (a0, a1) else {
        return Err(SuiteError::NoSoftwareImages);
    };
    let both = format!("{} / {}", fmt_img(&a0), fmt_img(&a1));
    let now = c.now();
    c.record(
        SWI_02,
        "Get both images",
        pass_if(
            !(a0.is_committed == Some(true) && a1.is_committed == Some(true)),
            "at most one committed",
            both.clone(),
        ),
        now,
    );
    let now = c.now();
    c.record(
        SWI_03,
        "Get both images",
        pass_if(
            !(a0.is_active == Some(true) && a1.is_active == Some(true)),
            "at most one active",
            both.clone(),
        ),
        now,
    );
    let now = c.now();
    let one_active = [a0.is_active, a1.is_active]
        .iter()
        .filter(|x| **x == Some(true))
        .count()
        == 1;
    c.record(
        SWI_04,
        "Get both images",
        pass_if(one_active, "one active image", both),
        now,
    );
    // Get by mask: only what was asked comes back.
    let now = c.now();
    let a = c.get(sw(0), mask::IS_ACTIVE).await?;
    let v = match a.as_ref().map(|m| &m.contents) {
        Some(Contents::GetResponse(g)) => {
            let m = g.attributes.attribute_mask();
            pass_if(
                g.result == ResultCode::Success && m == mask::IS_ACTIVE,
                "success, attribute mask 0x0800 only (is_active)",
                format!("{}, mask 0x{m:04x}", g.result),
            )
        }
        _ => pass_if(false, "a Get response", result_of(&a)),
    };
    c.record(SWI_05, "Get software image 0, mask is_active", v, now);
    let now = c.now();
    let a = c.get(sw(0), mask::VERSION).await?;
    let v = match a.as_ref().map(|m| &m.contents) {
        Some(Contents::GetResponse(g)) => match &g.attributes {
            AttributeValues::SoftwareImage(x) => {
                pass_if(x.version.is_some(), "a 14-byte version", "no version")
            }
            AttributeValues::Raw { values, .. } => pass_if(
                values.len() >= 14,
                "14 bytes of version",
                format!("{} bytes", values.len()),
            ),
        },
        _ => pass_if(false, "a Get response", result_of(&a)),
    };
    c.record(SWI_06, "Get software image 0, mask version", v, now);
    Ok(())
}
