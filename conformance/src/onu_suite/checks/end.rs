//! END-02..07, ACT-01 and COM-01: End software download (G.988 A.3.23) with a wrong CRC and
//! a wrong size, with device busy while the ONU writes, the abort convention, and the image's
//! validity after each; then Activate and Commit of an image that is not valid, which must be
//! refused. Starts on the complete, not yet ended download [`super::download`] leaves.

use omci_codec::{Format, ResultCode};

use super::super::catalogue::{ACT_01, COM_01, END_02, END_03, END_04, END_05, END_06, END_07};
use super::super::client::{ABORT_CRC, Client, EXTENDED_SECTION_LEN};
use super::{SuiteError, fmt_img, pass_if, refused};

/// The window size of the downloads these checks make.
const WINDOW: u16 = 32;
/// What END-04 adds to the image size: one baseline section and more.
const SIZE_ERROR: u32 = 31;
/// What END-02 does to the image CRC.
const CRC_ERROR: u32 = 0xDEAD_BEEF;

pub(super) async fn checks(c: &mut Client, standby: u16) -> Result<(), SuiteError> {
    let size = c.t.image.len() as u32;
    let img_crc = c.t.image.crc;
    let now = c.now();
    let (bad, _) = c
        .end(standby, img_crc ^ CRC_ERROR, size, Format::Baseline)
        .await?;
    c.record(
        END_02,
        "End software download with the image CRC changed",
        pass_if(
            bad.is_some() && bad != Some(ResultCode::Success),
            "an error result",
            format!("{bad:?}"),
        ),
        now,
    );
    let now = c.now();
    let after = c.image(standby).await?;
    c.record(
        END_03,
        format!("Get software image {standby}"),
        pass_if(
            after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
            "is_valid = 0",
            after.as_ref().map(fmt_img).unwrap_or("no answer".into()),
        ),
        now,
    );
    let now = c.now();
    // A complete, verified download first: the End checks below start from the state it
    // leaves.
    let _ = c.download(standby, WINDOW, Format::Baseline).await?;
    c.abort(standby).await?;
    let _ = c.start(standby, size, WINDOW, Format::Baseline).await?;
    let cut32 =
        c.t.image
            .cut(Format::Baseline, WINDOW, EXTENDED_SECTION_LEN);
    let _ = c.all_windows(standby, cut32).await?;
    let (bad_size, _) = c
        .end(standby, img_crc, size + SIZE_ERROR, Format::Baseline)
        .await?;
    c.record(
        END_04,
        "a whole download, End with the size 31 bytes too large",
        pass_if(
            bad_size.is_some() && bad_size != Some(ResultCode::Success),
            "an error result",
            format!("{bad_size:?}"),
        ),
        now,
    );
    c.abort(standby).await?;
    let now = c.now();
    let _ = c.start(standby, size, WINDOW, Format::Baseline).await?;
    let w = c.all_windows(standby, cut32).await?;
    let (ok, busy) = c.end(standby, img_crc, size, Format::Baseline).await?;
    c.record(
        END_05,
        "a whole download, End asked again while busy",
        pass_if(
            w == Some(ResultCode::Success) && ok == Some(ResultCode::Success),
            "success (after any number of busy answers)",
            format!("{ok:?} after {busy} busy answers"),
        ),
        now,
    );
    let now = c.now();
    let valid = c.image(standby).await?;
    let version = c.t.image.version();
    c.record(
        END_06,
        format!("Get software image {standby}"),
        pass_if(
            valid.as_ref().is_some_and(|a| {
                a.is_valid == Some(true) && a.is_active == Some(false) && a.version == Some(version)
            }),
            "valid, not active, the image's version",
            valid.as_ref().map(fmt_img).unwrap_or("no answer".into()),
        ),
        now,
    );
    let now = c.now();
    let _ = c.start(standby, size, WINDOW, Format::Baseline).await?;
    let order = c.in_order(cut32, 0);
    let _ = c.window(standby, cut32, 0, &order, None, false).await?;
    let (ab, _) = c.end(standby, ABORT_CRC, 0, Format::Baseline).await?;
    let after = c.image(standby).await?;
    c.record(
        END_07,
        "Start, window 0, End with size 0 and CRC 0xFFFFFFFF",
        pass_if(
            ab == Some(ResultCode::Success)
                && after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
            "success, image not valid",
            format!(
                "{ab:?}, {}",
                after.as_ref().map(fmt_img).unwrap_or_default()
            ),
        ),
        now,
    );

    // Activate and Commit of an image that is not valid.
    let now = c.now();
    let a = c.activate(standby, 0).await?;
    c.record(
        ACT_01,
        format!("Activate software image {standby} (not valid)"),
        refused(&a),
        now,
    );
    let now = c.now();
    let a = c.commit(standby).await?;
    c.record(
        COM_01,
        format!("Commit software image {standby} (not valid)"),
        refused(&a),
        now,
    );
    Ok(())
}
