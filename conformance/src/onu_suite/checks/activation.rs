//! EXT-01, ACT-02..05, COM-02..03 and SWI-07: a download in the extended message set (when
//! the ONU announces it), then Activate (G.988 A.3.25) deferred by a call, Activate and the
//! reboot into the new image, the fallback of a reboot before Commit, Commit (A.3.27), a reboot
//! after it, and the final state of both images.

use omci_codec::contents::{AttributeValues, Contents, RebootRequest};
use omci_codec::{Format, MeClass, MeId, ResultCode};

use super::super::catalogue::{ACT_02, ACT_03, ACT_04, ACT_05, COM_02, COM_03, EXT_01, SWI_07};
use super::super::client::Client;
use super::super::report::Verdict;
use super::{SuiteError, code, fmt_both, fmt_img, pass_if, result_of};

/// ONU2-G attribute 2, the OMCC version (G.988 9.1.2).
const OMCC_VERSION: u16 = 0x4000;
/// The first OMCC version that announces the extended message set (G.988 9.1.2: 0x96).
const FIRST_EXTENDED_OMCC_VERSION: u8 = 0x96;
/// The window of the extended download, and of the final baseline one without it.
const EXTENDED_WINDOW: u16 = 8;
const BASELINE_WINDOW: u16 = 32;

pub(super) async fn checks(c: &mut Client, standby: u16) -> Result<(), SuiteError> {
    // ---------------------------------------------------------------- Extended message set
    let now = c.now();
    let omcc = c.get(MeId::new(MeClass::ONU2_G, 0), OMCC_VERSION).await?;
    let extended = matches!(
        omcc.as_ref().map(|m| &m.contents),
        Some(Contents::GetResponse(g)) if matches!(
            &g.attributes,
            AttributeValues::Raw { values, .. }
                if values.first().is_some_and(|v| *v >= FIRST_EXTENDED_OMCC_VERSION)
        )
    );
    let v = if extended {
        let r = c
            .download(standby, EXTENDED_WINDOW, Format::Extended)
            .await?;
        pass_if(
            r.is_ok(),
            "every window and End success",
            r.err().unwrap_or_default(),
        )
    } else {
        Verdict::Skip {
            why: format!(
                "the ONU's OMCC version ({}) does not announce the extended message set",
                result_of(&omcc)
            ),
        }
    };
    c.record(
        EXT_01,
        "the whole image in extended frames of 1965-byte sections, End",
        v,
        now,
    );
    if !extended {
        let r = c
            .download(standby, BASELINE_WINDOW, Format::Baseline)
            .await?;
        if let Err(why) = r {
            return Err(SuiteError::FinalDownloadFailed { why });
        }
    }

    // ---------------------------------------------------------------- Activate, reboot, fallback, Commit
    // Activate flags 1 and 2 defer activation during a call: checked when the ONU has one.
    for (spec, flags, call, why) in [
        (
            ACT_02,
            1u8,
            c.t.call_in_progress,
            "needs an ONU with a voice call in progress (`onu run --voice-call`, then --call-in-progress here)",
        ),
        (
            ACT_05,
            2,
            c.t.emergency_call_in_progress,
            "needs an ONU with an emergency call in progress (`onu run --emergency-call`, then --emergency-call-in-progress here)",
        ),
    ] {
        let now = c.now();
        let v = if call {
            let a = c.activate(standby, flags).await?;
            pass_if(
                code(&a) == Some(ResultCode::DeviceBusy),
                "6 (device busy)",
                result_of(&a),
            )
        } else {
            Verdict::Skip { why: why.into() }
        };
        c.record(
            spec,
            format!("Activate software image {standby}, flags {flags}"),
            v,
            now,
        );
    }
    let new = usize::from(standby);
    let old = usize::from(1 - standby);
    let now = c.now();
    let a = c.activate(standby, 0).await?;
    let booted = c.await_boot(|i| i[new].is_active == Some(true)).await?;
    let reboot_timeout = c.t.reboot_timeout;
    c.record(
        ACT_03,
        format!("Activate software image {standby}, flags 0; Get until back"),
        pass_if(
            a.is_some()
                && booted
                    .as_ref()
                    .is_some_and(|i| i[new].is_committed == Some(false)),
            "active, not committed",
            booted.as_ref().map(fmt_both).unwrap_or_else(|| {
                format!(
                    "{}; not back on the new image within {reboot_timeout:?}",
                    result_of(&a),
                )
            }),
        ),
        now,
    );
    let now = c.now();
    let v = if booted.is_some() {
        let r = reboot(c).await?;
        let back = c.await_boot(|i| i[old].is_active == Some(true)).await?;
        pass_if(
            back.is_some(),
            "back on the committed image",
            back.as_ref().map(fmt_both).unwrap_or_else(|| {
                format!(
                    "{}; still on the uncommitted image after {reboot_timeout:?}",
                    result_of(&r),
                )
            }),
        )
    } else {
        Verdict::Skip {
            why: "ACT-03 did not leave the new image active".into(),
        }
    };
    c.record(
        ACT_04,
        "Reboot (ONU-G) with the new image active, not committed",
        v,
        now,
    );
    // Activate again (if it fell back), then Commit.
    let imgs = c.images().await?;
    if imgs[new].is_active != Some(true) {
        let _ = c.activate(standby, 0).await?;
        let _ = c.await_boot(|i| i[new].is_active == Some(true)).await?;
    }
    let now = c.now();
    let a = c.commit(standby).await?;
    let after = c.image(standby).await?;
    c.record(
        COM_02,
        format!("Commit software image {standby}"),
        pass_if(
            code(&a) == Some(ResultCode::Success)
                && after
                    .as_ref()
                    .is_some_and(|x| x.is_committed == Some(true) && x.is_active == Some(true)),
            "success; committed and active",
            format!(
                "{}; {}",
                result_of(&a),
                after.as_ref().map(fmt_img).unwrap_or_default()
            ),
        ),
        now,
    );
    let now = c.now();
    let _ = reboot(c).await?;
    let back = c
        .await_boot(|i| i[new].is_active == Some(true) && i[new].is_committed == Some(true))
        .await?;
    c.record(
        COM_03,
        "Reboot (ONU-G), Get until back",
        pass_if(
            back.is_some(),
            "the committed new image active",
            back.as_ref()
                .map(fmt_both)
                .unwrap_or_else(|| "not back on it".into()),
        ),
        now,
    );
    let now = c.now();
    let imgs = c.images().await?;
    c.record(
        SWI_07,
        "Get both images",
        pass_if(
            imgs.iter().filter(|a| a.is_committed == Some(true)).count() == 1
                && imgs[new].is_committed == Some(true)
                && imgs[new].is_active == Some(true),
            "image {standby} committed and active, the other neither",
            fmt_both(&imgs),
        ),
        now,
    );
    Ok(())
}

/// Reboot of the ONU-G, unconditional.
async fn reboot(c: &mut Client) -> Result<super::super::client::Answer, SuiteError> {
    c.ask(
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    )
    .await
}
