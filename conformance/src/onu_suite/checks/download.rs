//! DLS-01..05, END-01, DLS-06..11: Download section (G.988 A.3.22, I.3). Whole downloads in
//! windows of 1 to 256 sections, each ended and the image then read back valid in its version;
//! End without a Start (judged now that End has been seen to succeed); then one download in
//! windows of 16 that goes through a missing section, sections out of order, duplicated
//! sections, a frame with a bad trailer, a window with a wrong window CRC (this lab's
//! envelope) and the image's short last window, and is ended: End must find the image those
//! windows built.

use omci_codec::contents::{Contents, GetRequest};
use omci_codec::software_image::mask;
use omci_codec::{Format, Message, MessageType, ResultCode};

use super::super::catalogue::{
    CheckSpec, DLS_01, DLS_02, DLS_03, DLS_04, DLS_05, DLS_06, DLS_07, DLS_08, DLS_09, DLS_10,
    DLS_11, END_01,
};
use super::super::client::{Client, EXTENDED_SECTION_LEN, sw};
use super::super::report::Verdict;
use super::super::words;
use super::{REFUSED, Standby, SuiteError, pass_if, refused};

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

const WHOLE: &str = "every window answered result 0, End answered result 0, then Get: the image valid, in the image's version";

pub(super) async fn checks(c: &mut Client, standby: &Standby) -> Result<(), SuiteError> {
    let size = c.t.image.len() as u32;
    for (spec, w) in WINDOW_SIZES {
        let sent =
            format!("the whole image in windows of {w} (or the ONU's lower choice), End, Get");
        if !c.begin(spec, &sent).await? {
            continue;
        }
        let standby = match standby {
            Ok(s) => *s,
            Err(why) => {
                c.skip(spec, sent, why.clone());
                continue;
            }
        };
        let now = c.now();
        let r = c.download(standby, w, Format::Baseline).await?;
        c.record(
            spec,
            sent,
            pass_if(r.is_ok(), WHOLE, r.err().unwrap_or_default()),
            now,
        );
        c.abort(standby).await?;
    }

    // End without a Start: refused, once End has been seen to work.
    let sent = match standby {
        Ok(s) => format!("End software download of image {s}, no download in progress"),
        Err(_) => "End software download, no download in progress".to_string(),
    };
    if c.begin(END_01, &sent).await? {
        match standby {
            Err(why) => c.skip(END_01, sent, why.clone()),
            Ok(s) => {
                let s = *s;
                match c.needs_shown(
                    MessageType::EndSoftwareDownload,
                    "to the End of a whole download (DLS-01..05)",
                ) {
                    Err(why) => c.skip(END_01, sent, why),
                    Ok(()) => {
                        let now = c.now();
                        c.abort(s).await?;
                        let (r, _) = c.end(s, c.t.image.crc, size, Format::Baseline).await?;
                        c.record(END_01, sent, refused(r, &REFUSED), now);
                    }
                }
            }
        }
    }

    // Within one download: missing, out of order, duplicated, bad CRC, short last window.
    let mut section = SectionRun::default();
    for spec in [DLS_06, DLS_07, DLS_08, DLS_09, DLS_10, DLS_11] {
        section_check(c, spec, standby, &mut section).await?;
    }
    Ok(())
}

/// What the section checks share: the download they go through, once started.
#[derive(Default)]
struct SectionRun {
    /// The download: its standby image and cut, or why there is none.
    download: Option<Result<(u16, pon::image::Cut), String>>,
    /// DLS-06 showed the ONU answers a window with a section missing with processing error:
    /// its success on the windows after says something.
    tracks_sections: bool,
}

/// The sent text of each section check, given the download's geometry.
fn sent_of(spec: CheckSpec, last: Option<(usize, u16)>) -> String {
    match spec.id {
        "DLS-06" => "window 0 without section 1, then window 0 whole".into(),
        "DLS-07" => "window 1 with its sections in reverse order (AR last)".into(),
        "DLS-08" => "window 2 with every section twice".into(),
        "DLS-09" => "Get with its CRC-32 trailer damaged, then the same Get intact".into(),
        "DLS-10" => "window 3 with a wrong window CRC, then with the right one".into(),
        _ => match last {
            Some((n, w)) => {
                format!("the remaining windows (the last has {n} of {w} sections), End, Get")
            }
            None => "the remaining windows, End, Get".into(),
        },
    }
}

async fn section_check(
    c: &mut Client,
    spec: CheckSpec,
    standby: &Standby,
    run: &mut SectionRun,
) -> Result<(), SuiteError> {
    let image = c.t.image.clone();
    let geometry = match &run.download {
        Some(Ok((_, cut))) => {
            let windows = image.windows(*cut);
            Some((
                image.sections_in(*cut, windows - 1),
                cut.windowing.window_size,
            ))
        }
        _ => None,
    };
    let sent = sent_of(spec, geometry);
    if !c.begin(spec, &sent).await? {
        return Ok(());
    }
    if run.download.is_none() {
        // The download starts with the first section check that runs.
        run.download = Some(match standby {
            Err(why) => Err(why.clone()),
            Ok(s) => {
                let s = *s;
                let size = image.len() as u32;
                match c
                    .start_accepted(s, size, SECTION_CHECKS_WINDOW, Format::Baseline)
                    .await?
                {
                    Ok(accepted) => Ok((
                        s,
                        image.cut(Format::Baseline, accepted, EXTENDED_SECTION_LEN),
                    )),
                    Err(why) => Err(format!("needs a download in progress: {why}")),
                }
            }
        });
    }
    let (standby, cut) = match run.download.as_ref() {
        Some(Ok(d)) => *d,
        Some(Err(why)) => {
            let why = why.clone();
            c.skip(spec, sent, why);
            return Ok(());
        }
        None => return Ok(()),
    };
    let windows = image.windows(cut);
    let now = c.now();
    // A success from an ONU that has not shown it notices a missing section says nothing.
    let tracked = |run: &SectionRun| -> Result<(), String> {
        if run.tracks_sections {
            Ok(())
        } else {
            Err("the ONU has not shown (DLS-06) that it answers a window with a section missing with result 1, command processing error: its success here says nothing".into())
        }
    };
    let v = match spec.id {
        "DLS-06" => {
            let n0 = image.sections_in(cut, 0);
            if n0 == 1 {
                let all0 = c.in_order(cut, 0);
                let _ = c.window(standby, cut, 0, &all0, None, true).await?;
                Verdict::Skip {
                    why: "the ONU accepted windows of 1 section: no section can be left out of one"
                        .into(),
                }
            } else {
                let missing: Vec<usize> = (0..n0).filter(|n| *n != 1).collect();
                // Plain G.988 frames: the answer must come from the sections the ONU tracked,
                // not from the lab's window CRC.
                let r1 = c.window(standby, cut, 0, &missing, None, true).await?;
                let all0 = c.in_order(cut, 0);
                let r2 = c.window(standby, cut, 0, &all0, None, true).await?;
                run.tracks_sections = r1 == Some(ResultCode::ProcessingError);
                pass_if(
                    r1 == Some(ResultCode::ProcessingError) && r2 == Some(ResultCode::Success),
                    "result 1, command processing error, then result 0, command processed successfully",
                    format!("{}, then {}", words::code(r1), words::code(r2)),
                )
            }
        }
        "DLS-07" if windows > 1 => {
            let n = image.sections_in(cut, 1);
            let mut order: Vec<usize> = (0..n).rev().collect();
            order.rotate_left(1); // AR section last, the others reversed
            let r = c.window(standby, cut, 1, &order, None, false).await?;
            match tracked(run) {
                Err(why) => Verdict::Skip { why },
                Ok(()) => pass_if(
                    r == Some(ResultCode::Success),
                    "result 0, command processed successfully",
                    words::code(r),
                ),
            }
        }
        "DLS-07" => Verdict::Skip {
            why: "the image has one window".into(),
        },
        "DLS-08" if windows > 2 => {
            let n = image.sections_in(cut, 2);
            let mut order: Vec<usize> = Vec::new();
            for k in 0..n {
                order.push(k);
                if k + 1 < n {
                    order.push(k);
                }
            }
            let r = c.window(standby, cut, 2, &order, None, false).await?;
            match tracked(run) {
                Err(why) => Verdict::Skip { why },
                Ok(()) => pass_if(
                    r == Some(ResultCode::Success),
                    "result 0, command processed successfully",
                    words::code(r),
                ),
            }
        }
        "DLS-08" => Verdict::Skip {
            why: "the image has fewer than 3 windows".into(),
        },
        "DLS-09" if !c.t.framing.carries_trailer() => Verdict::Skip {
            why: "the OB-BAA framing carries no integrity trailer: there is no CRC to damage"
                .into(),
        },
        "DLS-09" => {
            // A frame with a bad CRC: no answer at all; the same frame intact: an answer.
            let get = |tci| {
                Message::new(
                    tci,
                    Format::Baseline,
                    sw(0),
                    Contents::GetRequest(GetRequest {
                        attribute_mask: mask::VERSION,
                    }),
                )
            };
            let tci = c.next_tci();
            c.send_damaged(&get(tci))?;
            let damaged = c.wait(tci, c.t.timeout).await;
            let intact = c.get(sw(0), mask::VERSION).await?;
            pass_if(
                damaged.is_none() && intact.is_some(),
                "no answer to the damaged Get, an answer to the intact one",
                format!(
                    "damaged: {}; intact: {}",
                    words::answer(&damaged),
                    words::answer(&intact)
                ),
            )
        }
        "DLS-10" if !c.t.framing.carries_window_fields() || windows <= 3 => {
            if windows > 3 {
                let order = c.in_order(cut, 3);
                let _ = c.window(standby, cut, 3, &order, None, false).await?;
            }
            Verdict::Skip {
                why: if windows > 3 {
                    "the OB-BAA framing carries no window CRC (the lab's envelope does)".into()
                } else {
                    "the image has fewer than 4 windows".into()
                },
            }
        }
        "DLS-10" => {
            let order = c.in_order(cut, 3);
            let wrong = image.window_crc(cut, 3) ^ 1;
            let r = c
                .window(standby, cut, 3, &order, Some(wrong), false)
                .await?;
            let ok = c.window(standby, cut, 3, &order, None, false).await?;
            pass_if(
                r == Some(ResultCode::ProcessingError) && ok == Some(ResultCode::Success),
                "result 1, command processing error, then result 0 with the right window CRC",
                format!("{}, then {}", words::code(r), words::code(ok)),
            )
        }
        _ => {
            // DLS-11: the rest, the image's short last window included, then End: the image
            // the windows built (reversed, doubled, repeated) must be the image.
            let rest = c.windows_from(standby, cut, 4.min(windows)).await?;
            let last = image.sections_in(cut, windows - 1);
            let short = last < usize::from(cut.windowing.window_size);
            let ended = match rest {
                Ok(()) => c.end_and_verify(standby, Format::Baseline).await?,
                Err(why) => Err(why),
            };
            if !short {
                Verdict::Skip {
                    why: "the image fills its last window".into(),
                }
            } else {
                pass_if(
                    ended.is_ok(),
                    "every window answered result 0, End answered result 0 (the image the windows built is the image), then Get: the image valid, in its version",
                    ended.err().unwrap_or_default(),
                )
            }
        }
    };
    c.record(spec, sent, v, now);
    Ok(())
}
