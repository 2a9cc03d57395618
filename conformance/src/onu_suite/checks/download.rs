//! DLS-01..11: Download section (G.988 A.3.22, I.3). Whole downloads in windows of 1 to 256
//! sections, then one download in windows of 16 that goes through a missing section,
//! sections out of order, duplicated sections, a frame with a bad trailer, a window with a
//! wrong window CRC (this lab's envelope) and the image's short last window. That download is
//! left complete but not ended: [`super::end`] ends it.

use omci_codec::contents::{Contents, GetRequest};
use omci_codec::software_image::mask;
use omci_codec::{Format, Message, ResultCode};

use super::super::catalogue::{
    CheckSpec, DLS_01, DLS_02, DLS_03, DLS_04, DLS_05, DLS_06, DLS_07, DLS_08, DLS_09, DLS_10,
    DLS_11,
};
use super::super::client::{Client, EXTENDED_SECTION_LEN, sw};
use super::super::report::Verdict;
use super::{SuiteError, pass_if, result_of};

/// The window sizes of the whole downloads, each with its check.
const WINDOW_SIZES: [(CheckSpec, u16); 5] = [
    (DLS_01, 1),
    (DLS_02, 16),
    (DLS_03, 32),
    (DLS_04, 64),
    (DLS_05, 256),
];

/// The window size proposed for the download the section checks go through.
const SECTION_CHECKS_WINDOW: u16 = 16;

pub(super) async fn checks(c: &mut Client, standby: u16) -> Result<(), SuiteError> {
    let size = c.t.image.len() as u32;
    for (spec, w) in WINDOW_SIZES {
        let now = c.now();
        let r = c.download(standby, w, Format::Baseline).await?;
        c.record(
            spec,
            format!("the whole image in windows of {w} (or the ONU's lower choice), End"),
            pass_if(
                r.is_ok(),
                "every window and End success",
                r.err().unwrap_or_default(),
            ),
            now,
        );
        c.abort(standby).await?;
    }
    // Within one download: missing, out of order, duplicated, bad CRC, short last window.
    let accepted = match c
        .start(standby, size, SECTION_CHECKS_WINDOW, Format::Baseline)
        .await?
        .map(|m| m.contents)
    {
        Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
            r.window_size()
        }
        other => {
            return Err(SuiteError::StartFailed {
                answer: format!("{other:?}"),
            });
        }
    };
    let image = c.t.image.clone();
    let cut = image.cut(Format::Baseline, accepted, EXTENDED_SECTION_LEN);
    let windows = image.windows(cut);
    let n0 = image.sections_in(cut, 0);
    let now = c.now();
    let missing: Vec<usize> = (0..n0).filter(|n| *n != 1 || n0 == 1).collect();
    // Plain G.988 frames: the answer must come from the sections the ONU tracked, not from the
    // lab's window CRC.
    let r1 = c.window(standby, cut, 0, &missing, None, true).await?;
    let all0 = c.in_order(cut, 0);
    let r2 = c.window(standby, cut, 0, &all0, None, true).await?;
    c.record(
        DLS_06,
        "window 0 without section 1, then window 0 whole",
        pass_if(
            (n0 == 1 || r1 == Some(ResultCode::ProcessingError)) && r2 == Some(ResultCode::Success),
            "processing error, then success",
            format!("{r1:?}, then {r2:?}"),
        ),
        now,
    );
    let now = c.now();
    let v = if windows > 1 {
        let n = image.sections_in(cut, 1);
        let mut order: Vec<usize> = (0..n).rev().collect();
        order.rotate_left(1); // AR section last, the others reversed
        let r = c.window(standby, cut, 1, &order, None, false).await?;
        pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
    } else {
        Verdict::Skip {
            why: "the image has one window".into(),
        }
    };
    c.record(
        DLS_07,
        "window 1 with its sections in reverse order",
        v,
        now,
    );
    let now = c.now();
    let v = if windows > 2 {
        let n = image.sections_in(cut, 2);
        let mut order: Vec<usize> = Vec::new();
        for k in 0..n {
            order.push(k);
            if k + 1 < n {
                order.push(k);
            }
        }
        let r = c.window(standby, cut, 2, &order, None, false).await?;
        pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
    } else {
        Verdict::Skip {
            why: "the image has fewer than 3 windows".into(),
        }
    };
    c.record(DLS_08, "window 2 with every section twice", v, now);
    // A frame with a bad CRC: no answer at all.
    let now = c.now();
    let tci = c.next_tci();
    let msg = Message::new(
        tci,
        Format::Baseline,
        sw(0),
        Contents::GetRequest(GetRequest {
            attribute_mask: mask::VERSION,
        }),
    );
    c.send_damaged(&msg)?;
    let a = c.wait(tci, c.t.timeout).await;
    c.record(
        DLS_09,
        "Get with its CRC-32 trailer damaged",
        pass_if(a.is_none(), "no answer", result_of(&a)),
        now,
    );
    // The lab's window CRC.
    let now = c.now();
    let v = if windows > 3 {
        let order = c.in_order(cut, 3);
        let wrong = image.window_crc(cut, 3) ^ 1;
        let r = c
            .window(standby, cut, 3, &order, Some(wrong), false)
            .await?;
        let ok = c.window(standby, cut, 3, &order, None, false).await?;
        pass_if(
            r == Some(ResultCode::ProcessingError) && ok == Some(ResultCode::Success),
            "processing error, then success with the right CRC",
            format!("{r:?}, then {ok:?}"),
        )
    } else {
        Verdict::Skip {
            why: "the image has fewer than 4 windows".into(),
        }
    };
    c.record(
        DLS_10,
        "window 3 with a wrong window CRC, then with the right one",
        v,
        now,
    );
    // The rest, including the image's short last window.
    let now = c.now();
    let mut r = Some(ResultCode::Success);
    for w in 4.min(windows)..windows {
        let order = c.in_order(cut, w);
        r = c.window(standby, cut, w, &order, None, false).await?;
        if r != Some(ResultCode::Success) {
            break;
        }
    }
    let last = image.sections_in(cut, windows - 1);
    let short = last < usize::from(accepted);
    c.record(
        DLS_11,
        format!("the remaining windows; the last has {last} of {accepted} sections"),
        if short {
            pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
        } else {
            Verdict::Skip {
                why: "the image fills its last window".into(),
            }
        },
        now,
    );
    Ok(())
}
