//! STA-04, STA-05, then STA-01..03 and STA-06: how the window is negotiated at Start software
//! download (G.988 A.3.21), what Start must refuse (I.3), and that a new Start discards a
//! partial download. The successful Starts come first: a refusal is judged only from a target
//! that has accepted a Start.

use omci_codec::contents::Contents;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Format, MessageType, ResultCode};

use super::super::catalogue::{STA_01, STA_02, STA_03, STA_04, STA_05, STA_06};
use super::super::client::{Client, EXTENDED_SECTION_LEN};
use super::super::report::Verdict;
use super::super::words;
use super::{REFUSED, Standby, SuiteError, code, pass_if, refusal};

/// An image size no slot holds (2 GiB).
const TOO_LARGE: u32 = 0x7FFF_FFFF;

/// Which image is which, as the ONU reports them.
#[derive(Clone, Copy, Debug)]
struct Roles {
    /// Neither active nor committed: where every download goes.
    standby: u16,
    active: u16,
    committed: u16,
}

fn roles(imgs: Result<[SoftwareImageAttributes; 2], String>) -> Result<Roles, String> {
    let imgs = imgs?;
    let is = |i: u16, f: fn(&SoftwareImageAttributes) -> Option<bool>| {
        f(&imgs[usize::from(i)]) == Some(true)
    };
    let standby = (0..2u16)
        .find(|i| !is(*i, |a| a.is_active) && !is(*i, |a| a.is_committed))
        .ok_or_else(|| {
            format!(
                "no image is neither active nor committed ({}): there is nowhere to download to",
                words::images(&imgs)
            )
        })?;
    let active = (0..2u16)
        .find(|i| is(*i, |a| a.is_active))
        .unwrap_or(1 - standby);
    let committed = (0..2u16)
        .find(|i| is(*i, |a| a.is_committed))
        .unwrap_or(active);
    Ok(Roles {
        standby,
        active,
        committed,
    })
}

/// Runs the checks; the standby image, which every download after them goes to (or why there
/// is none).
pub(super) async fn checks(c: &mut Client) -> Result<Standby, SuiteError> {
    let size = c.t.image.len() as u32;
    let mut found: Result<Roles, String> = Err("the target stopped answering".into());
    for (spec, proposed) in [(STA_04, 256u16), (STA_05, 8)] {
        let sent = format!("Start software download, window {proposed}");
        if !c.begin(spec, &sent).await? {
            continue;
        }
        if spec == STA_04 {
            found = roles(c.images().await?);
        }
        let roles = match &found {
            Ok(r) => *r,
            Err(why) => {
                c.skip(spec, sent, why.clone());
                continue;
            }
        };
        let now = c.now();
        c.abort(roles.standby).await?;
        let a = c
            .start(roles.standby, size, proposed, Format::Baseline)
            .await?;
        let expected = format!(
            "result 0, command processed successfully, with a window of at most {proposed} sections (and, if it lists instances, image {} with result 0)",
            roles.standby
        );
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                let instances_ok = r
                    .instances
                    .iter()
                    .all(|i| i.me_instance == roles.standby && i.result == ResultCode::Success);
                pass_if(
                    r.window_size() <= proposed && instances_ok,
                    expected,
                    format!(
                        "result 0, window of {} sections, instances [{}]",
                        r.window_size(),
                        r.instances
                            .iter()
                            .map(|i| format!(
                                "image {}: {}",
                                i.me_instance,
                                words::result(i.result)
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            }
            _ => pass_if(false, expected, words::answer(&a)),
        };
        c.record(spec, sent, v, now);
        c.abort(roles.standby).await?;
    }
    let by = "to a Start into the standby image (STA-04, STA-05)";
    // Start into an image that may not take one: refused, with what G.988 prescribes.
    for (spec, which) in [
        (STA_01, "active"),
        (STA_02, "committed"),
        (STA_03, "too large"),
    ] {
        let sent = match (&found, which) {
            (Ok(r), "active") => format!("Start software download of image {} (active)", r.active),
            (Ok(r), "committed") => {
                format!(
                    "Start software download of image {} (committed)",
                    r.committed
                )
            }
            _ if which == "too large" => "Start software download of 2 GiB".to_string(),
            _ => format!("Start software download of the {which} image"),
        };
        if !c.begin(spec, &sent).await? {
            continue;
        }
        let roles = match &found {
            Ok(r) => *r,
            Err(why) => {
                c.skip(spec, sent, why.clone());
                continue;
            }
        };
        if let Err(why) = c.needs_shown(MessageType::StartSoftwareDownload, by) {
            c.skip(spec, sent, why);
            continue;
        }
        let now = c.now();
        let (instance, image_size) = match which {
            "active" => (roles.active, size),
            "committed" => (roles.committed, size),
            _ => (roles.standby, TOO_LARGE),
        };
        let a = c.start(instance, image_size, 32, Format::Baseline).await?;
        c.record(spec, sent, refusal(&a, &REFUSED), now);
        if code(&a) == Some(ResultCode::Success) {
            // It took the download: end it, so that the image is left as it was.
            c.abort(instance).await?;
        }
    }
    // Start during a download discards the partial image.
    let sent = "Start, window 0, Start again, then window 0's AR section alone";
    if c.begin(STA_06, sent).await? {
        match &found {
            Err(why) => c.skip(STA_06, sent, why.clone()),
            Ok(roles) => {
                let standby = roles.standby;
                let now = c.now();
                let v = match c.start_accepted(standby, size, 8, Format::Baseline).await? {
                    Err(why) => Verdict::Skip {
                        why: format!("needs a download in progress: {why}"),
                    },
                    Ok(accepted) => {
                        let cut =
                            c.t.image
                                .cut(Format::Baseline, accepted, EXTENDED_SECTION_LEN);
                        let first = c.in_order(cut, 0);
                        // Plain G.988 frames (no window number or CRC in the envelope): G.988's
                        // own rules.
                        let r0 = c.window(standby, cut, 0, &first, None, true).await?;
                        if r0 != Some(ResultCode::Success) {
                            Verdict::Skip {
                                why: format!(
                                    "window 0 {} on its first pass: there is no partial image to discard",
                                    words::reply(r0)
                                ),
                            }
                        } else if first.len() == 1 {
                            Verdict::Skip {
                                why: "the ONU accepted windows of 1 section: a window of one section is never incomplete".into(),
                            }
                        } else {
                            let again = c.start(standby, size, 8, Format::Baseline).await?;
                            // Only window 0's AR section again: a fresh download misses the rest.
                            let last = first.len() - 1;
                            let r = c.window(standby, cut, 0, &[last], None, true).await?;
                            pass_if(
                                code(&again) == Some(ResultCode::Success)
                                    && r == Some(ResultCode::ProcessingError),
                                "the second Start answered result 0, then result 1, command processing error, to the AR section alone (window 0 is incomplete again)",
                                format!(
                                    "the second Start {}, then the AR section {}",
                                    words::reply_to(&again),
                                    words::reply(r)
                                ),
                            )
                        }
                    }
                };
                c.record(STA_06, sent, v, now);
                c.abort(standby).await?;
            }
        }
    }
    Ok(found.map(|r| r.standby))
}
