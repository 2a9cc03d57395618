//! Words both outputs share: the names of MEs, images, attributes and results, lists and
//! ranges, times, and one line for a frame or a burst of sections.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use omci_codec::software_image::{SoftwareImageId, mask};
use omci_codec::{MeClass, ResultCode};

use super::frame::{Body, Frame};
use super::phases::Boot;
use super::windows::Burst;

pub(super) fn printable(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    bytes[..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

pub(super) fn version_text(v: &str) -> String {
    if v.is_empty() {
        "(empty)".to_string()
    } else {
        v.to_string()
    }
}

pub(super) fn image_name(instance: u16) -> String {
    let id = SoftwareImageId::from_instance(instance);
    if id.slot == 0 {
        format!("image {}", id.image)
    } else {
        id.to_string()
    }
}

pub(super) fn image_list(instances: &[u16]) -> String {
    let names: Vec<String> = instances.iter().map(|&i| image_name(i)).collect();
    names.join(", ")
}

/// The ME a frame addresses: "Software image 1", "ONU2-G", "ME class 11 instance 3".
pub(super) fn me_name(class: u16, instance: u16) -> String {
    if class == MeClass::SOFTWARE_IMAGE.0 {
        let id = SoftwareImageId::from_instance(instance);
        if id.slot == 0 {
            return format!("Software image {}", id.image);
        }
        return format!("Software image ({id})");
    }
    match MeClass(class).name() {
        Some(name) if instance == 0 => name.to_string(),
        Some(name) => format!("{name} {instance}"),
        None => format!("ME class {class} instance {instance}"),
    }
}

/// The attributes a Get asks for, by name for class 7.
pub(super) fn attribute_names(class: u16, attribute_mask: u16) -> String {
    if class == MeClass::ONU2_G.0 && attribute_mask == 0x8000 {
        return "equipment ID".to_string();
    }
    if class == MeClass::ONU_G.0 && attribute_mask == 0xA000 {
        return "vendor ID, serial number".to_string();
    }
    if class != MeClass::SOFTWARE_IMAGE.0 {
        return format!("attribute mask 0x{attribute_mask:04x}");
    }
    let names: Vec<&str> = omci_codec::software_image::ATTRIBUTES
        .iter()
        .filter(|a| attribute_mask & a.mask != 0)
        .map(|a| a.name)
        .collect();
    let unknown = attribute_mask & !mask::ALL;
    let mut s = names.join(", ");
    if unknown != 0 {
        let _ = write!(
            s,
            "{}bits 0x{unknown:04x}",
            if s.is_empty() { "" } else { ", " }
        );
    }
    s
}

pub(super) fn result_words(r: ResultCode) -> String {
    match r {
        ResultCode::Success => "success".to_string(),
        ResultCode::ProcessingError => "processing error".to_string(),
        ResultCode::DeviceBusy => "device busy".to_string(),
        ResultCode::Unknown(v) => format!("result {v} (reserved)"),
        other => other.description().to_string(),
    }
}

/// "0-31", "5-9, 12, 31".
pub(super) fn ranges<I: IntoIterator<Item = u32>>(numbers: I) -> String {
    let set: BTreeSet<u32> = numbers.into_iter().collect();
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

/// "a", "a and b", "a, b and c".
pub(super) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

pub(super) fn secs(t: Duration) -> String {
    format!("{:.3} s", t.as_secs_f64())
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a burst carried: "window 3: sections 0-31, AR on 31, window CRC 0x1a2b3c4d".
pub(super) fn burst_text(b: &Burst) -> String {
    let w = b
        .window
        .map_or_else(|| "window ?".to_string(), |w| format!("window {w}"));
    let secs = ranges(b.sections.iter().map(|&s| u32::from(s)));
    let n = b.sections.len();
    let mut s = if b.repeat && b.ar.is_some() && n == 1 {
        format!("{w}: section {secs} again, AR set (the answer is asked for again)")
    } else if b.repeat && b.full {
        format!("{w} again: sections {secs}")
    } else if b.repeat {
        format!(
            "{w} repair: {} {secs}",
            if n == 1 { "section" } else { "sections" }
        )
    } else {
        format!(
            "{w}: {} {secs}",
            if n == 1 { "section" } else { "sections" }
        )
    };
    if !(b.repeat && n == 1 && b.ar.is_some()) {
        match b.ar {
            Some(ar) => {
                let _ = write!(s, ", AR on {ar}");
            }
            None => s.push_str(", no AR section (cut short)"),
        }
    }
    if let Some(crc) = b.crc {
        let _ = write!(s, ", window CRC 0x{crc:08x}");
    }
    s
}

/// One line for a frame that is neither a section nor a section response.
pub(super) fn frame_text(f: &Frame, boot: Boot) -> String {
    let me = me_name(f.me_class, f.me_instance);
    match &f.body {
        Body::Get { attribute_mask } => {
            format!("Get {me}: {}", attribute_names(f.me_class, *attribute_mask))
        }
        Body::GetResponse {
            result,
            image,
            attribute_mask,
            equipment_id,
            serial,
        } => match image {
            Some(s) if result.is_success() => format!("Get response {me}: {}", s.compact()),
            Some(s) => format!(
                "Get response {me}: {}, {}",
                result_words(*result),
                s.compact()
            ),
            None => match (equipment_id, serial) {
                (Some(id), _) if f.me_class == MeClass::ONU2_G.0 => format!(
                    "Get response {me}: {}, equipment ID {}",
                    result_words(*result),
                    version_text(id)
                ),
                (_, Some(sn)) if f.me_class == MeClass::ONU_G.0 => format!(
                    "Get response {me}: {}, serial number {sn}",
                    result_words(*result)
                ),
                _ => format!(
                    "Get response {me}: {}, attribute mask 0x{attribute_mask:04x}",
                    result_words(*result)
                ),
            },
        },
        Body::StartDownload {
            window_size,
            image_size,
            instances,
        } => format!(
            "Start software download: {}, {image_size} bytes, windows of {window_size} sections",
            image_list(instances)
        ),
        Body::StartDownloadResponse {
            result,
            window_size,
        } => {
            if result.is_success() {
                format!("Start software download: success, window {window_size} sections")
            } else {
                format!("Start software download: {}", result_words(*result))
            }
        }
        Body::Section { number, .. } => format!("Download section {number}"),
        Body::SectionResponse { result, number } => {
            format!("Download section {number}: {}", result_words(*result))
        }
        Body::EndDownload {
            crc,
            image_size,
            instances,
        } => {
            if *image_size == 0 && *crc == 0xFFFF_FFFF {
                format!(
                    "End software download: abort {} (size 0, CRC 0xffffffff)",
                    image_list(instances)
                )
            } else {
                format!("End software download: CRC 0x{crc:08x}, {image_size} bytes")
            }
        }
        Body::EndDownloadResponse { result } => {
            format!("End software download: {}", result_words(*result))
        }
        Body::Activate { flags } => {
            if *flags == 0 {
                format!("Activate software {}", image_name(f.me_instance))
            } else {
                format!(
                    "Activate software {} (flags {flags})",
                    image_name(f.me_instance)
                )
            }
        }
        Body::ActivateResponse { result } => {
            format!("Activate software: {}", result_words(*result))
        }
        Body::Commit => format!("Commit software {}", image_name(f.me_instance)),
        Body::CommitResponse { result } => format!("Commit software: {}", result_words(*result)),
        Body::MibReset => format!("MIB reset ({me})"),
        Body::MibResetResponse { result } => format!("MIB reset: {}", result_words(*result)),
        Body::Reboot { condition } => {
            if *condition == 0 {
                format!("Reboot ({me})")
            } else {
                format!("Reboot ({me}, condition {condition})")
            }
        }
        Body::RebootResponse { result } => format!("Reboot: {}", result_words(*result)),
        Body::AttributeValueChange {
            image,
            attribute_mask,
        } => {
            let what = match image {
                Some(s) => format!("{}: {}", image_name(f.me_instance), s.compact()),
                None => format!("{me}, attribute mask 0x{attribute_mask:04x}"),
            };
            format!("Attribute value change{} {what}", boot.label())
        }
        Body::Other { name, .. } => format!("{name} ({me})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_lists() {
        assert_eq!(ranges([0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(ranges(Vec::<u32>::new()), "");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
