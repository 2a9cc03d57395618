//! EXT-01, ACT-03, ACT-04, COM-02, COM-03, SWI-07, ACT-02, ACT-05, ACT-01, COM-01: a download
//! in the extended message set (when the ONU announces it), Activate (G.988 A.3.25) and the
//! reboot into the new image, the fallback of a reboot before Commit, Commit (A.3.27), a reboot
//! after it, the final state of both images; and last what may not be done, judged now that
//! the target has shown Activate and Commit work: Activate deferred by a call (flags 1 and 2,
//! answered busy), Activate and Commit of an image that is not valid (refused).
//!
//! The suite leaves the ONU running the target's image, committed; the other image is left
//! not valid (ACT-01 and COM-01 need one that is not).

use omci_codec::contents::{AttributeValues, Contents, RebootRequest};
use omci_codec::{Format, MeClass, MeId, MessageType, ResultCode};

use super::super::catalogue::{
    ACT_01, ACT_02, ACT_03, ACT_04, ACT_05, COM_01, COM_02, COM_03, EXT_01, SWI_07,
};
use super::super::client::{Answer, Client};
use super::super::report::Verdict;
use super::super::words;
use super::{REFUSED, Standby, SuiteError, code, pass_if, refusal};

/// ONU2-G attribute 2, the OMCC version (G.988 9.1.2).
const OMCC_VERSION: u16 = 0x4000;
/// The first OMCC version that announces the extended message set (G.988 9.1.2: 0x96).
const FIRST_EXTENDED_OMCC_VERSION: u8 = 0x96;
/// The window of the extended download, and of the final baseline one without it.
const EXTENDED_WINDOW: u16 = 8;
const BASELINE_WINDOW: u16 = 32;

pub(super) async fn checks(c: &mut Client, standby: &Standby) -> Result<(), SuiteError> {
    // ---------------------------------------------------------------- Extended message set
    // `ready`: the target's image is valid in the standby image, ready to activate (or why not).
    let mut ready: Result<u16, String> = Err("the target stopped answering".into());
    let sent = "Get ONU2-G (OMCC version); the whole image in extended frames of 1965-byte sections, End, Get";
    if c.begin(EXT_01, sent).await? {
        match standby {
            Err(why) => {
                c.skip(EXT_01, sent, why.clone());
                ready = Err(why.clone());
            }
            Ok(s) => {
                let s = *s;
                let now = c.now();
                let omcc = c.get(MeId::new(MeClass::ONU2_G, 0), OMCC_VERSION).await?;
                let version = match omcc.as_ref().map(|m| &m.contents) {
                    Some(Contents::GetResponse(g)) if g.result == ResultCode::Success => {
                        match &g.attributes {
                            AttributeValues::Raw { values, .. } => values.first().copied(),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let extended = version.is_some_and(|v| v >= FIRST_EXTENDED_OMCC_VERSION);
                let v = if extended {
                    let r = c.download(s, EXTENDED_WINDOW, Format::Extended).await?;
                    let v = pass_if(
                        r.is_ok(),
                        "every window answered result 0, End answered result 0, then Get: the image valid, in the image's version",
                        r.clone().err().unwrap_or_default(),
                    );
                    if r.is_ok() {
                        ready = Ok(s);
                    }
                    v
                } else {
                    Verdict::Skip {
                        why: match version {
                            Some(v) => format!(
                                "the ONU's OMCC version (0x{v:02x}) does not announce the extended message set"
                            ),
                            None => format!(
                                "Get of the ONU2-G's OMCC version {}",
                                words::reply_to(&omcc)
                            ),
                        },
                    }
                };
                c.record(EXT_01, sent, v, now);
                if ready.is_err() {
                    // The activation checks need the image: downloaded again in baseline.
                    c.abort(s).await?;
                    ready = c
                        .download(s, BASELINE_WINDOW, Format::Baseline)
                        .await?
                        .map(|()| s)
                        .map_err(|why| format!("needs the image downloaded: {why}"));
                }
            }
        }
    }

    // ---------------------------------------------------------------- Activate, reboot, Commit
    let reboot_timeout = c.t.reboot_timeout;
    let name = |s: &Result<u16, String>| {
        s.as_ref()
            .map_or("the new image".to_string(), |s| format!("image {s}"))
    };
    let sent = format!(
        "Activate software {}, flags 0; Get until back",
        name(&ready)
    );
    let mut on_new = false;
    if c.begin(ACT_03, &sent).await? {
        match &ready {
            Err(why) => c.skip(ACT_03, sent, why.clone()),
            Ok(s) => {
                let (s, now) = (*s, c.now());
                let new = usize::from(s);
                let a = c.activate(s, 0).await?;
                let booted = c.await_boot(|i| i[new].is_active == Some(true)).await?;
                on_new = booted.is_some();
                c.record(
                    ACT_03,
                    sent,
                    pass_if(
                        code(&a) == Some(ResultCode::Success)
                            && booted
                                .as_ref()
                                .is_some_and(|i| i[new].is_committed == Some(false)),
                        format!(
                            "result 0, then the ONU back on image {s}: is active 1, is committed 0"
                        ),
                        match &booted {
                            Some(i) => format!("{}; {}", words::answer(&a), words::images(i)),
                            None => format!(
                                "{}; not back on the new image within {reboot_timeout:?}",
                                words::answer(&a)
                            ),
                        },
                    ),
                    now,
                );
            }
        }
    }
    let sent = "Reboot (ONU-G) with the new image active, not committed; Get until back";
    let mut reboot_reboots = false;
    if c.begin(ACT_04, sent).await? {
        match &ready {
            Err(why) => c.skip(ACT_04, sent, why.clone()),
            Ok(_) if !on_new => c.skip(ACT_04, sent, "ACT-03 did not leave the new image active"),
            Ok(s) => {
                let (old, now) = (usize::from(1 - *s), c.now());
                let r = reboot(c).await?;
                let back = c.await_boot(|i| i[old].is_active == Some(true)).await?;
                reboot_reboots = back.is_some();
                c.record(
                    ACT_04,
                    sent,
                    pass_if(
                        code(&r) == Some(ResultCode::Success) && back.is_some(),
                        "result 0, then the ONU back on the committed image",
                        match &back {
                            Some(i) => format!("{}; {}", words::answer(&r), words::images(i)),
                            None => format!(
                                "{}; still on the uncommitted image after {reboot_timeout:?}",
                                words::answer(&r)
                            ),
                        },
                    ),
                    now,
                );
            }
        }
    }
    let sent = format!("Commit software {}", name(&ready));
    let mut committed = false;
    if c.begin(COM_02, &sent).await? {
        match &ready {
            Err(why) => c.skip(COM_02, sent, why.clone()),
            Ok(s) => {
                let (s, now) = (*s, c.now());
                let new = usize::from(s);
                // Activate again (if it fell back), then Commit.
                let imgs = c.images().await?;
                let mut on = imgs.as_ref().is_ok_and(|i| i[new].is_active == Some(true));
                if !on {
                    let _ = c.activate(s, 0).await?;
                    on = c
                        .await_boot(|i| i[new].is_active == Some(true))
                        .await?
                        .is_some();
                }
                let v = if !on {
                    Verdict::Skip {
                        why: format!("image {s} could not be made active again to be committed"),
                    }
                } else {
                    let a = c.commit(s).await?;
                    let after = c.image(s).await?;
                    committed = code(&a) == Some(ResultCode::Success)
                        && after.as_ref().is_some_and(|x| {
                            x.is_committed == Some(true) && x.is_active == Some(true)
                        });
                    pass_if(
                        committed,
                        "result 0, then is committed 1, is active 1",
                        format!(
                            "{}; then {}",
                            words::answer(&a),
                            after
                                .as_ref()
                                .map_or("Get not answered".into(), words::image)
                        ),
                    )
                };
                c.record(COM_02, sent, v, now);
            }
        }
    }
    let sent = "Reboot (ONU-G), Get until back";
    if c.begin(COM_03, sent).await? {
        match &ready {
            Err(why) => c.skip(COM_03, sent, why.clone()),
            Ok(_) if !committed => c.skip(COM_03, sent, "needs COM-02's Commit"),
            Ok(_) if !reboot_reboots => c.skip(
                COM_03,
                sent,
                "the ONU has not shown that Reboot reboots it (ACT-04): being on the committed image after one says nothing",
            ),
            Ok(s) => {
                let (new, now) = (usize::from(*s), c.now());
                let r = reboot(c).await?;
                let back = c
                    .await_boot(|i| {
                        i[new].is_active == Some(true) && i[new].is_committed == Some(true)
                    })
                    .await?;
                c.record(
                    COM_03,
                    sent,
                    pass_if(
                        code(&r) == Some(ResultCode::Success) && back.is_some(),
                        "result 0, then the ONU back on the committed new image",
                        match &back {
                            Some(i) => format!("{}; {}", words::answer(&r), words::images(i)),
                            None => format!("{}; not back on it", words::answer(&r)),
                        },
                    ),
                    now,
                );
            }
        }
    }
    let sent = "Get both images";
    if c.begin(SWI_07, sent).await? {
        match &ready {
            Err(why) => c.skip(SWI_07, sent, why.clone()),
            Ok(_) if !committed => c.skip(SWI_07, sent, "needs the upgrade (COM-02)"),
            Ok(s) => {
                let (s, now) = (*s, c.now());
                let (new, old) = (usize::from(s), usize::from(1 - s));
                let imgs = c.images().await?;
                c.record(
                    SWI_07,
                    sent,
                    match &imgs {
                        Ok(i) => pass_if(
                            i[new].is_committed == Some(true)
                                && i[new].is_active == Some(true)
                                && i[old].is_committed != Some(true)
                                && i[old].is_active != Some(true),
                            format!(
                                "image {s} is committed 1, is active 1; image {} is committed 0, is active 0",
                                1 - s
                            ),
                            words::images(i),
                        ),
                        Err(why) => pass_if(false, "both images answered", why.clone()),
                    },
                    now,
                );
            }
        }
    }

    // ---------------------------------------------------------------- what may not be done
    let old = ready.as_ref().ok().map(|s| 1 - *s);
    let other =
        |old: Option<u16>| old.map_or("the other image".to_string(), |o| format!("image {o}"));
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
        let sent = format!("Activate software {}, flags {flags}", other(old));
        if !c.begin(spec, &sent).await? {
            continue;
        }
        let Some(o) = old else {
            c.skip(spec, sent, ready.clone().err().unwrap_or_default());
            continue;
        };
        if !call {
            c.skip(spec, sent, why);
            continue;
        }
        if let Err(why) = c.needs_shown(MessageType::ActivateSoftware, "to ACT-03's Activate") {
            c.skip(spec, sent, why);
            continue;
        }
        let now = c.now();
        let valid = c.image(o).await?;
        if valid.as_ref().is_none_or(|a| a.is_valid != Some(true)) {
            c.skip(
                spec,
                sent,
                format!(
                    "needs a valid image to activate: image {o} is {}",
                    valid.as_ref().map_or("not answered".into(), words::image)
                ),
            );
            continue;
        }
        let a = c.activate(o, flags).await?;
        c.record(spec, sent, refusal(&a, &[ResultCode::DeviceBusy]), now);
        if code(&a) == Some(ResultCode::Success) {
            // It activated despite the call: back to the committed image.
            back_to_committed(c, o).await?;
        }
    }
    let sent = format!(
        "Start into {}, End with size 0 and CRC 0xFFFFFFFF, Get; Activate software {}",
        other(old),
        other(old)
    );
    let mut invalid = Err("the target stopped answering".to_string());
    if c.begin(ACT_01, &sent).await? {
        let now = c.now();
        let v = match old {
            None => Verdict::Skip {
                why: ready.clone().err().unwrap_or_default(),
            },
            Some(o) => match c.needs_shown(MessageType::ActivateSoftware, "to ACT-03's Activate") {
                Err(why) => Verdict::Skip { why },
                Ok(()) => {
                    invalid = make_invalid(c, o).await?;
                    match &invalid {
                        Err(why) => Verdict::Skip { why: why.clone() },
                        Ok(()) => {
                            let a = c.activate(o, 0).await?;
                            if code(&a) == Some(ResultCode::Success) {
                                back_to_committed(c, o).await?;
                            }
                            refusal(&a, &REFUSED)
                        }
                    }
                }
            },
        };
        c.record(ACT_01, sent, v, now);
    }
    let sent = format!("Commit software {} (not valid)", other(old));
    if c.begin(COM_01, &sent).await? {
        let now = c.now();
        let v = match (old, &invalid) {
            (None, _) => Verdict::Skip {
                why: ready.clone().err().unwrap_or_default(),
            },
            (_, Err(why)) => Verdict::Skip {
                why: format!("needs the image made not valid by ACT-01: {why}"),
            },
            (Some(o), Ok(())) => {
                match c.needs_shown(MessageType::CommitSoftware, "to COM-02's Commit") {
                    Err(why) => Verdict::Skip { why },
                    Ok(()) => refusal(&c.commit(o).await?, &REFUSED),
                }
            }
        };
        c.record(COM_01, sent, v, now);
    }
    Ok(())
}

/// Start into image `o` (neither active nor committed), then the abort convention: `Ok` when
/// the ONU then reports it not valid.
async fn make_invalid(c: &mut Client, o: u16) -> Result<Result<(), String>, SuiteError> {
    let size = c.t.image.len() as u32;
    if let Err(why) = c
        .start_accepted(o, size, BASELINE_WINDOW, Format::Baseline)
        .await?
    {
        return Ok(Err(format!("image {o} could not be made not valid: {why}")));
    }
    let ab = c.abort(o).await?;
    let after = c.image(o).await?;
    Ok(match after {
        Some(a) if a.is_valid == Some(false) => Ok(()),
        Some(a) => Err(format!(
            "after Start and the abort convention (which {}), image {o} still says {}",
            words::reply(ab),
            words::image(&a)
        )),
        None => Err(format!(
            "Get of image {o} was not answered with its attributes"
        )),
    })
}

/// The ONU activated image `o` when it should not have: wait for it to come back on it, then
/// reboot it back to its committed image (a reboot before Commit falls back).
async fn back_to_committed(c: &mut Client, o: u16) -> Result<(), SuiteError> {
    let (o, new) = (usize::from(o), usize::from(1 - o));
    let _ = c.await_boot(|i| i[o].is_active == Some(true)).await?;
    let _ = reboot(c).await?;
    let _ = c.await_boot(|i| i[new].is_active == Some(true)).await?;
    Ok(())
}

/// Reboot of the ONU-G, unconditional.
async fn reboot(c: &mut Client) -> Result<Answer, SuiteError> {
    c.ask(
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    )
    .await
}
