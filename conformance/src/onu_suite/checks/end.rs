//! END-02..07: End software download (G.988 A.3.23, its response A.3.41) with a wrong CRC and
//! a wrong size, with device busy while the ONU writes, the abort convention, and the image's
//! validity after each. Each End ends a whole download of its own.
//!
//! G.988 A.3.41 names the answer to a CRC that does not match: result 1, command processing
//! error ("CRC incorrect"). A size that is not the one Start announced is refused with 1 (the
//! image of that size cannot have the CRC given) or 3 (parameter error). Whether an image is
//! "not valid" after a failed End means something only for an ONU that has shown an image
//! valid after a good one.

use omci_codec::{Format, MessageType, ResultCode};

use super::super::catalogue::{END_02, END_03, END_04, END_05, END_06, END_07};
use super::super::client::{ABORT_CRC, Client, EXTENDED_SECTION_LEN};
use super::super::report::Verdict;
use super::super::words;
use super::{REFUSED, Standby, SuiteError, pass_if, refused};

/// The window size of the downloads these checks make.
const WINDOW: u16 = 32;
/// What END-04 adds to the image size: one baseline section and more.
const SIZE_ERROR: u32 = 31;
/// What END-02 does to the image CRC.
const CRC_ERROR: u32 = 0xDEAD_BEEF;

/// Start and every window of a whole download into `standby`: `Ok` when all were accepted.
async fn whole(c: &mut Client, standby: u16) -> Result<Result<(), String>, SuiteError> {
    let size = c.t.image.len() as u32;
    let accepted = match c
        .start_accepted(standby, size, WINDOW, Format::Baseline)
        .await?
    {
        Ok(w) => w,
        Err(why) => return Ok(Err(format!("needs a complete download: {why}"))),
    };
    let cut =
        c.t.image
            .cut(Format::Baseline, accepted, EXTENDED_SECTION_LEN);
    Ok(c.windows_from(standby, cut, 0)
        .await?
        .map_err(|why| format!("needs a complete download: {why}")))
}

pub(super) async fn checks(c: &mut Client, standby: &Standby) -> Result<(), SuiteError> {
    let size = c.t.image.len() as u32;
    let img_crc = c.t.image.crc;
    let by = "to the End of a whole download (DLS-01..05, DLS-11)";
    let mut bad_end = false;
    let mut good_end = false;
    let mut seen_valid = false;
    for spec in [END_02, END_03, END_04, END_05, END_06, END_07] {
        let sent = match spec.id {
            "END-02" => "a whole download, End with the image CRC changed".to_string(),
            "END-03" | "END-06" => match standby {
                Ok(s) => format!("Get software image {s}"),
                Err(_) => "Get software image".into(),
            },
            "END-04" => "a whole download, End with the size 31 bytes too large".into(),
            "END-05" => "a whole download, End asked again while busy".into(),
            _ => "Start, window 0, End with size 0 and CRC 0xFFFFFFFF, Get".into(),
        };
        if !c.begin(spec, &sent).await? {
            continue;
        }
        let s = match standby {
            Ok(s) => *s,
            Err(why) => {
                c.skip(spec, sent, why.clone());
                continue;
            }
        };
        let now = c.now();
        let v = match spec.id {
            "END-02" | "END-04" => match c.needs_shown(MessageType::EndSoftwareDownload, by) {
                Err(why) => Verdict::Skip { why },
                Ok(()) => match whole(c, s).await? {
                    Err(why) => Verdict::Skip { why },
                    Ok(()) => {
                        let (crc, end_size, allowed): (u32, u32, &[ResultCode]) =
                            if spec.id == "END-02" {
                                (img_crc ^ CRC_ERROR, size, &[ResultCode::ProcessingError])
                            } else {
                                (img_crc, size + SIZE_ERROR, &REFUSED)
                            };
                        let (r, _) = c.end(s, crc, end_size, Format::Baseline).await?;
                        bad_end |= spec.id == "END-02" && r.is_some();
                        let v = refused(r, allowed);
                        c.abort(s).await?;
                        v
                    }
                },
            },
            "END-03" if !bad_end => Verdict::Skip {
                why: "needs the End with a wrong CRC of END-02".into(),
            },
            "END-03" if !c.shown_valid() => Verdict::Skip {
                why: "the ONU has not shown an image valid after a good End (DLS-01..05, DLS-11): \"not valid\" after a failed one says nothing".into(),
            },
            "END-03" => {
                let after = c.image(s).await?;
                pass_if(
                    after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
                    "is valid 0",
                    after
                        .as_ref()
                        .map_or("Get not answered with the image's attributes".into(), words::image),
                )
            }
            "END-05" => match whole(c, s).await? {
                Err(why) => pass_if(false, "a complete download, then End answered result 0", why),
                Ok(()) => {
                    let (r, busy) = c.end(s, img_crc, size, Format::Baseline).await?;
                    good_end = r == Some(ResultCode::Success);
                    pass_if(
                        good_end,
                        "result 0, command processed successfully (after any number of result 6, device busy)",
                        format!("{} after {busy} answers of result 6, device busy", words::code(r)),
                    )
                }
            },
            "END-06" if !good_end => Verdict::Skip {
                why: "needs END-05's End answered with result 0".into(),
            },
            "END-06" => {
                let valid = c.image(s).await?;
                let version = c.t.image.version();
                seen_valid = valid.as_ref().is_some_and(|a| a.is_valid == Some(true));
                pass_if(
                    valid.as_ref().is_some_and(|a| {
                        a.is_valid == Some(true)
                            && a.is_active == Some(false)
                            && a.version == Some(version)
                    }),
                    format!(
                        "is valid 1, is active 0, version \"{}\"",
                        String::from_utf8_lossy(&version).trim_end_matches('\0')
                    ),
                    valid
                        .as_ref()
                        .map_or("Get not answered with the image's attributes".into(), words::image),
                )
            }
            _ if !seen_valid => Verdict::Skip {
                why: "the image was not valid before this download (END-06): its validity after the abort says nothing".into(),
            },
            _ => {
                // END-07: the abort convention discards the download.
                match c.start_accepted(s, size, WINDOW, Format::Baseline).await? {
                    Err(why) => Verdict::Skip {
                        why: format!("needs a download in progress: {why}"),
                    },
                    Ok(accepted) => {
                        let cut = c
                            .t
                            .image
                            .cut(Format::Baseline, accepted, EXTENDED_SECTION_LEN);
                        let order = c.in_order(cut, 0);
                        let _ = c.window(s, cut, 0, &order, None, false).await?;
                        let (ab, _) = c.end(s, ABORT_CRC, 0, Format::Baseline).await?;
                        let after = c.image(s).await?;
                        pass_if(
                            ab == Some(ResultCode::Success)
                                && after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
                            "result 0, command processed successfully, then is valid 0",
                            format!(
                                "{}, then {}",
                                words::code(ab),
                                after.as_ref().map_or(
                                    "Get not answered with the image's attributes".into(),
                                    words::image
                                )
                            ),
                        )
                    }
                }
            }
        };
        c.record(spec, sent, v, now);
    }
    Ok(())
}
