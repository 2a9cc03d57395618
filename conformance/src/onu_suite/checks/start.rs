//! END-01 and STA-01..06: what Start software download (G.988 A.3.21, I.3) must refuse, how
//! the window is negotiated, and that a new Start discards a partial download. End without a
//! Start comes first, while no download is in progress.

use omci_codec::contents::Contents;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Format, ResultCode};

use super::super::catalogue::{END_01, STA_01, STA_02, STA_03, STA_04, STA_05, STA_06};
use super::super::client::{Client, EXTENDED_SECTION_LEN};
use super::{SuiteError, pass_if, refused, result_of};

/// An image size no slot holds (2 GiB).
const TOO_LARGE: u32 = 0x7FFF_FFFF;

/// Runs the checks from the images as they were (`before`); the standby image, which every
/// download after them goes to.
pub(super) async fn checks(
    c: &mut Client,
    before: &[SoftwareImageAttributes; 2],
) -> Result<u16, SuiteError> {
    let size = c.t.image.len() as u32;
    let img_crc = c.t.image.crc;
    let standby = c.standby().await?;
    let active = (0..2u16)
        .find(|i| before[usize::from(*i)].is_active == Some(true))
        .unwrap_or(1 - standby);
    c.abort(standby).await?;
    let now = c.now();
    let (r, _) = c.end(standby, img_crc, size, Format::Baseline).await?;
    c.record(
        END_01,
        format!("End software download of image {standby}, no download in progress"),
        pass_if(
            r.is_some() && r != Some(ResultCode::Success),
            "an error result",
            format!("{r:?}"),
        ),
        now,
    );

    let now = c.now();
    let a = c.start(active, size, 32, Format::Baseline).await?;
    c.record(
        STA_01,
        format!("Start software download of image {active} (active)"),
        refused(&a),
        now,
    );
    let committed = (0..2u16)
        .find(|i| before[usize::from(*i)].is_committed == Some(true))
        .unwrap_or(active);
    let now = c.now();
    // Often the same image as the active one (STA-01); asked again for its own verdict.
    let a = c.start(committed, size, 32, Format::Baseline).await?;
    c.record(
        STA_02,
        format!("Start software download of image {committed} (committed)"),
        refused(&a),
        now,
    );
    let now = c.now();
    let a = c.start(standby, TOO_LARGE, 32, Format::Baseline).await?;
    c.record(STA_03, "Start software download of 2 GiB", refused(&a), now);
    for (spec, proposed) in [(STA_04, 256u16), (STA_05, 8)] {
        let now = c.now();
        let a = c.start(standby, size, proposed, Format::Baseline).await?;
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                pass_if(
                    r.window_size() <= proposed,
                    format!("a window of at most {proposed}"),
                    format!("{}", r.window_size()),
                )
            }
            _ => pass_if(false, "success", result_of(&a)),
        };
        c.record(
            spec,
            format!("Start software download, window {proposed}"),
            v,
            now,
        );
        c.abort(standby).await?;
    }
    // Start during a download discards the partial image.
    let now = c.now();
    let _ = c.start(standby, size, 8, Format::Baseline).await?;
    let cut8 = c.t.image.cut(Format::Baseline, 8, EXTENDED_SECTION_LEN);
    let first = c.in_order(cut8, 0);
    // Plain G.988 frames (no window number or CRC in the envelope): G.988's own rules.
    let _ = c.window(standby, cut8, 0, &first, None, true).await?;
    let _ = c.start(standby, size, 8, Format::Baseline).await?;
    // Only window 0's AR section again: a fresh download misses the rest.
    let last = c.t.image.sections_in(cut8, 0) - 1;
    let r = c.window(standby, cut8, 0, &[last], None, true).await?;
    c.record(
        STA_06,
        "Start, window 0, Start again, then window 0's AR section alone",
        pass_if(
            r == Some(ResultCode::ProcessingError),
            "processing error (window 0 is incomplete again)",
            format!("{r:?}"),
        ),
        now,
    );
    c.abort(standby).await?;
    Ok(standby)
}
