//! The narration's sentences: a frame in long words, why each phase exists, the remark an
//! answer needs, and paragraphs wrapped to the page.

use std::fmt::Write as _;

use omci_codec::software_image::SoftwareImageId;
use omci_codec::{MeClass, ResultCode};

use super::frame::{Body, Frame};
use super::phases::{Boot, OnuState, Phase};
use super::windows::{Analysis, Numbering};
use super::wording::{attribute_names, frame_text, image_list, image_name, me_name, result_words};

/// A frame in words, with the G.988 message name.
pub(super) fn long_text(f: &Frame) -> String {
    let me = me_name(f.me_class, f.me_instance);
    match &f.body {
        Body::Get { attribute_mask } => format!(
            "Get request, {me}: {}",
            attribute_names(f.me_class, *attribute_mask)
        ),
        Body::GetResponse {
            result,
            image: Some(s),
            ..
        } => format!(
            "Get response: {}, {} is {}",
            result_words(*result),
            image_name(f.me_instance),
            s.words()
        ),
        Body::GetResponse {
            result,
            equipment_id: Some(id),
            ..
        } if f.me_class == MeClass::ONU2_G.0 => format!(
            "Get response ({me}): {}, equipment ID \"{id}\" (the model: a campaign upgrades \
             only the model its image is built for)",
            result_words(*result)
        ),
        Body::GetResponse {
            result,
            serial: Some(sn),
            ..
        } if f.me_class == MeClass::ONU_G.0 => format!(
            "Get response ({me}): {}, serial number {sn} (who the ONU is: the name operators \
             know it by, and what `olt rollout --serials` selects)",
            result_words(*result)
        ),
        Body::GetResponse {
            result,
            attribute_mask,
            ..
        } => format!(
            "Get response ({me}): {}, attribute mask 0x{attribute_mask:04x}",
            result_words(*result)
        ),
        Body::StartDownload {
            window_size,
            image_size,
            instances,
        } => format!(
            "Start software download request: {image_size} bytes into {}, windows of {window_size} sections",
            image_list(instances)
        ),
        Body::StartDownloadResponse {
            result,
            window_size,
        } => format!(
            "Start software download response: {}, the ONU accepts windows of {window_size} sections",
            result_words(*result)
        ),
        Body::EndDownload {
            crc,
            image_size,
            instances,
        } => {
            if *image_size == 0 && *crc == 0xFFFF_FFFF {
                format!(
                    "End software download request with size 0 and CRC 0xffffffff: abort the download into {}",
                    image_list(instances)
                )
            } else {
                format!(
                    "End software download request: image CRC-32 0x{crc:08x}, {image_size} bytes, {}",
                    image_list(instances)
                )
            }
        }
        Body::EndDownloadResponse { result } => {
            format!("End software download response: {}", result_words(*result))
        }
        Body::Activate { flags } => format!(
            "Activate software request, {}{}",
            image_name(f.me_instance),
            match flags {
                0 => String::new(),
                1 => " (only if no voice call is in progress)".to_string(),
                2 => " (only if no emergency call is in progress)".to_string(),
                f => format!(" (flags {f})"),
            }
        ),
        Body::ActivateResponse { result } => {
            format!("Activate software response: {}", result_words(*result))
        }
        Body::Commit => format!("Commit software request, {}", image_name(f.me_instance)),
        Body::CommitResponse { result } => {
            format!("Commit software response: {}", result_words(*result))
        }
        Body::MibReset => format!(
            "MIB reset request ({me}): the ONU's configuration returns to its defaults; the software images are untouched"
        ),
        Body::MibResetResponse { result } => {
            format!("MIB reset response: {}", result_words(*result))
        }
        Body::Reboot { .. } => {
            format!("Reboot request ({me}): the ONU restarts, from its committed image")
        }
        Body::RebootResponse { result } => format!("Reboot response: {}", result_words(*result)),
        _ => frame_text(f, Boot::No),
    }
}

/// Why a phase exists, printed the first time it comes.
pub(super) fn intro(
    w: &mut String,
    phase: Phase,
    st: &OnuState,
    a: &Analysis<'_>,
    onu: u16,
    first: Option<&Frame>,
) {
    let text: String = match phase {
        Phase::Discover => "The OLT first asks the ONU who it is (Get of ONU-G: its vendor ID \
             and serial number), then reads both Software image MEs (Get): their version and \
             whether each is committed, active and valid. That tells it which image it may \
             overwrite."
            .into(),
        Phase::Start => {
            let mut t = String::new();
            if let Some(target) = first.map(|f| f.me_instance) {
                let other = SoftwareImageId::from_instance(target).other().instance();
                let other_state = st
                    .images
                    .get(&other)
                    .map(|s| format!(" ({} is {})", image_name(other), s.words()))
                    .unwrap_or_default();
                let _ = write!(
                    t,
                    "The target is {}: the image neither active nor committed{other_state}. \
                     Overwriting it disturbs neither the software running now nor the one the \
                     ONU would boot after a power cut. ",
                    image_name(target)
                );
            }
            t.push_str(
                "Start software download announces the image size; the ONU erases the target \
                 and says how many sections per window it accepts (it may lower the OLT's \
                 proposal, never raise it).",
            );
            t
        }
        Phase::Download => {
            let mut t = String::from(
                "The image travels in Download section messages (31 bytes of image each in a \
                 baseline frame), grouped in windows. Only a window's last section has AR \
                 (acknowledge request) set; the ONU answers it with success (it holds the whole \
                 window) or processing error (sections are missing). ",
            );
            t.push_str(match a.numbering() {
                Numbering::Envelope => {
                    "G.988 does not number windows; the lab's envelope does, and the capture \
                     keeps each frame's envelope: the window numbers below are the envelope's."
                }
                Numbering::Counted => {
                    "G.988 does not number windows, and here the lab's envelope did not either \
                     (strict G.988, or a capture without envelopes): windows are counted as a \
                     G.988 ONU counts them, the next one after a success and the same one again \
                     after anything else."
                }
                Numbering::Both => {
                    "G.988 does not number windows; the lab's envelope does, and the capture \
                     keeps each frame's envelope: the window numbers below are the envelope's. \
                     Where it carried none (strict G.988), windows are counted as a G.988 ONU \
                     counts them, the next one after a success and the same one again after \
                     anything else."
                }
            });
            if a.has_group {
                t.push_str(
                    " On the multicast group one copy of each window serves every ONU; repairs \
                     go to the group when many ONUs miss a section, else to the ONU alone.",
                );
            }
            t
        }
        Phase::End => "End software download gives the CRC-32 and the size of the whole \
             image. The ONU checks the image it wrote (CRC, header, signature, anti-rollback \
             floor) before it answers success; while it is still writing and verifying flash it \
             answers device busy, and the OLT asks again with the same request."
            .into(),
        Phase::Verify => "The OLT reads the target back: it must be valid, carry the new \
             version and not be active."
            .into(),
        Phase::Activate => {
            let committed = st
                .images
                .iter()
                .find(|(_, s)| s.is_committed == Some(true))
                .map(|(i, _)| image_name(*i))
                .unwrap_or_else(|| "the committed image".into());
            format!(
                "Activate software makes the ONU reboot into the new image. It then runs \
                 (active) but is not committed: if it fails to boot, the ONU falls back to the \
                 committed image ({committed}), so a bad image cannot leave ONU {onu} without \
                 working software."
            )
        }
        Phase::Reboot => "While the ONU reboots it answers nothing. Back up, it announces \
             itself with attribute value changes of both images, and the OLT's Get confirms \
             which image runs."
            .into(),
        Phase::Health => "A while later the OLT checks again that the new image still runs, \
             before it commits it."
            .into(),
        Phase::Commit => "Commit software makes the new image the one that boots from now on; \
             the ONU raises its anti-rollback floor to the image's security version, so older, \
             vulnerable images are refused from then on. The OLT reads the image back to check \
             that it is committed."
            .into(),
        Phase::Inspect => {
            let why = st.failure.as_deref().unwrap_or("the upgrade failed");
            format!(
                "The upgrade failed ({why}). The OLT reads both images again, so that its report \
                 says what the ONU really runs."
            )
        }
        Phase::Abort => "End software download with size 0 and CRC 0xFFFFFFFF aborts: the ONU \
             discards the partial or unverified image and keeps running its committed one."
            .into(),
        Phase::Other => String::new(),
    };
    if !text.is_empty() {
        para(w, "   ", &text);
    }
}

/// Width the explanation's paragraphs are wrapped to.
const WIDTH: usize = 96;

/// Writes `text` wrapped to [`WIDTH`] columns, every line after `indent` (a text that starts
/// with "- " has its next lines indented under its first word).
pub(super) fn para(w: &mut String, indent: &str, text: &str) {
    let rest = if text.starts_with("- ") {
        format!("{indent}  ")
    } else {
        indent.to_string()
    };
    let mut line = String::from(indent);
    let mut fresh = true;
    for word in text.split_whitespace() {
        if !fresh && line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(w, "{line}");
            line.clone_from(&rest);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    if !fresh {
        let _ = writeln!(w, "{line}");
    }
}

/// A remark after an answer, where the answer needs one.
pub(super) fn comment(w: &mut String, req: &Frame, resp: &Frame, n: usize, st: &OnuState) {
    const INDENT: &str = "           ";
    match (&req.body, &resp.body) {
        (Body::EndDownload { .. }, Body::EndDownloadResponse { result }) => {
            if *result == ResultCode::DeviceBusy {
                let times = if n > 1 {
                    format!(" {n} times")
                } else {
                    String::new()
                };
                para(
                    w,
                    INDENT,
                    &format!(
                        "device busy{times}: the ONU is still writing the image to flash and \
                         verifying it; the OLT waits and sends the same End software download \
                         again."
                    ),
                );
            } else if *result == ResultCode::ProcessingError {
                para(
                    w,
                    INDENT,
                    "processing error: the image is incomplete or did not verify; it stays \
                     invalid, and the ONU keeps running its committed image.",
                );
            }
        }
        (Body::Activate { flags }, Body::ActivateResponse { result }) if !result.is_success() => {
            let why = match (result, flags) {
                (ResultCode::DeviceBusy, 1) => {
                    "device busy: a voice call is in progress and the flags ask the ONU not to \
                     reboot during one; the OLT asks again later"
                }
                (ResultCode::DeviceBusy, 2) => {
                    "device busy: an emergency call is in progress and the flags ask the ONU not \
                     to reboot during one; the OLT asks again later"
                }
                (ResultCode::DeviceBusy, _) => "device busy: the ONU cannot reboot now",
                _ => "the ONU refused to activate the image: it stays where it was",
            };
            para(w, INDENT, why);
        }
        (Body::Get { .. }, Body::GetResponse { image: Some(s), .. })
            if Some(req.me_instance) == st.target && st.activated =>
        {
            match (s.is_active, s.is_committed) {
                (Some(true), Some(true)) => {
                    para(w, INDENT, "=> the new image runs and is committed.");
                }
                (Some(true), _) => para(
                    w,
                    INDENT,
                    "=> the ONU runs the new image: active, not yet committed.",
                ),
                (Some(false), _) if !st.awaiting_boot => para(
                    w,
                    INDENT,
                    "=> the new image is not running: the ONU came back on its committed image \
                     (the new one did not boot, or the ONU rebooted again before Commit; in the \
                     second case the OLT activates it again).",
                ),
                _ => {}
            }
        }
        _ => {}
    }
}
