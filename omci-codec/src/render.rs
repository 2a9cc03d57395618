//! A protocol-analyser view of a message: one field a line, indented as a tree, with G.988
//! names and the meaning of each value. Used by `omci decode` and by the lab's logs.

use std::fmt::{self, Write};

use crate::contents::{AttributeValues, Contents, InstanceResult};
use crate::frame::{Decoded, Format, Integrity, Message};
use crate::ids::MeClass;
use crate::message_type::{AK_BIT, AR_BIT, DB_BIT};
use crate::software_image::{SoftwareImageAttributes, SoftwareImageId, attribute_string};

/// Renders a decoded frame: a first line with format, length and trailer verdict, then the
/// message tree.
pub fn render_decoded(decoded: &Decoded<'_>, frame_len: usize) -> String {
    let mut out = String::new();
    let m = &decoded.message;
    let verdict = match decoded.integrity {
        Integrity::CrcOk => "CRC-32 ok".to_string(),
        Integrity::CrcMismatch { found, computed } => {
            format!("CRC-32 BAD (frame 0x{found:08x}, computed 0x{computed:08x})")
        }
        Integrity::MicOk => "MIC ok".to_string(),
        Integrity::MicMismatch { found, computed } => {
            format!("MIC BAD (frame 0x{found:08x}, computed 0x{computed:08x})")
        }
        Integrity::Absent => "no integrity trailer".to_string(),
    };
    let _ = writeln!(
        out,
        "OMCI {} frame, {} bytes, {}",
        m.format.name(),
        frame_len,
        verdict
    );
    let _ = write_tree(&mut out, m, "  ");
    out
}

impl fmt::Display for Message<'_> {
    /// The message tree, without the frame line of [`render_decoded`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_tree(&mut s, self, "")?;
        f.write_str(s.trim_end())
    }
}

fn write_tree(out: &mut String, m: &Message<'_>, ind: &str) -> fmt::Result {
    let h = m.header();
    writeln!(out, "{ind}Transaction correlation identifier: {}", h.tci)?;
    writeln!(
        out,
        "{ind}Message type: 0x{:02x}, {}",
        h.message_type_byte(),
        m.contents.describe()
    )?;
    writeln!(
        out,
        "{ind}  DB {} | AR {} | AK {} | MT {} ({})",
        u8::from(h.message_type_byte() & DB_BIT != 0),
        u8::from(h.message_type_byte() & AR_BIT != 0),
        u8::from(h.message_type_byte() & AK_BIT != 0),
        h.message_type.code(),
        h.message_type
    )?;
    writeln!(
        out,
        "{ind}Device identifier: 0x{:02x} ({})",
        m.format.device_id(),
        m.format.name()
    )?;
    write!(out, "{ind}Managed entity: class {}", m.me.class)?;
    if m.me.class == MeClass::SOFTWARE_IMAGE {
        writeln!(
            out,
            ", instance 0x{:04x} ({})",
            m.me.instance,
            SoftwareImageId::from_instance(m.me.instance)
        )?;
    } else {
        writeln!(out, ", instance 0x{:04x}", m.me.instance)?;
    }
    writeln!(out, "{ind}Contents:")?;
    let ind2 = format!("{ind}  ");
    write_contents(out, &m.contents, m.format, &ind2)
}

fn write_contents(out: &mut String, c: &Contents<'_>, format: Format, i: &str) -> fmt::Result {
    use Contents::*;
    match c {
        StartSoftwareDownloadRequest(m) => {
            writeln!(
                out,
                "{i}Window size - 1: {} ({} sections per window)",
                m.window_size_minus_one,
                m.window_size()
            )?;
            writeln!(out, "{i}Image size: {} bytes", m.image_size)?;
            write_instances(out, &m.instances, i)?;
        }
        StartSoftwareDownloadResponse(m) => {
            writeln!(out, "{i}Result: {}", m.result)?;
            writeln!(
                out,
                "{i}Window size - 1: {} ({} sections per window accepted)",
                m.window_size_minus_one,
                m.window_size()
            )?;
            write_instance_results(out, &m.instances, i)?;
        }
        DownloadSectionRequest(m) => {
            writeln!(out, "{i}Download section number: {}", m.section_number)?;
            writeln!(out, "{i}Data: {} bytes", m.data.len())?;
            write_hex(out, &m.data, &format!("{i}  "))?;
        }
        DownloadSectionResponse(m) => {
            writeln!(out, "{i}Result: {}", m.result)?;
            writeln!(out, "{i}Download section number: {}", m.section_number)?;
        }
        EndSoftwareDownloadRequest(m) => {
            writeln!(out, "{i}CRC-32: 0x{:08x}", m.crc)?;
            writeln!(out, "{i}Image size: {} bytes", m.image_size)?;
            write_instances(out, &m.instances, i)?;
            if m.is_abort() {
                writeln!(
                    out,
                    "{i}(size 0 with CRC 0xffffffff: the abort convention of open OLT stacks)"
                )?;
            }
        }
        EndSoftwareDownloadResponse(m) => {
            writeln!(out, "{i}Result: {}", m.result)?;
            write_instance_results(out, &m.instances, i)?;
        }
        ActivateSoftwareRequest(m) => {
            let meaning = match m.activate_flags {
                0 => "activate unconditionally",
                1 => "activate only if no POTS/VoIP calls are in progress",
                2 => "activate only if no emergency call is in progress",
                _ => "reserved value",
            };
            writeln!(out, "{i}Activate flags: {} ({meaning})", m.activate_flags)?;
        }
        RebootRequest(m) => {
            let meaning = match m.reboot_condition {
                0 => "reboot unconditionally",
                1 => "reboot only if no POTS/VoIP calls are in progress",
                2 => "reboot only if no emergency call is in progress",
                _ => "reserved value",
            };
            writeln!(
                out,
                "{i}Reboot condition: {} ({meaning})",
                m.reboot_condition
            )?;
        }
        ActivateSoftwareResponse { result }
        | CommitSoftwareResponse { result }
        | MibResetResponse { result }
        | RebootResponse { result } => writeln!(out, "{i}Result: {result}")?,
        CommitSoftwareRequest | MibResetRequest => writeln!(out, "{i}(no contents)")?,
        GetRequest(m) => writeln!(out, "{i}Attribute mask: 0x{:04x}", m.attribute_mask)?,
        GetResponse(m) => {
            writeln!(out, "{i}Result: {}", m.result)?;
            write_attributes(out, &m.attributes, i)?;
            if format == Format::Baseline || m.optional_attribute_mask != 0 {
                writeln!(
                    out,
                    "{i}Optional-attribute mask: 0x{:04x}",
                    m.optional_attribute_mask
                )?;
            }
            if format == Format::Baseline || m.attribute_execution_mask != 0 {
                writeln!(
                    out,
                    "{i}Attribute execution mask: 0x{:04x}",
                    m.attribute_execution_mask
                )?;
            }
        }
        AttributeValueChange(m) => write_attributes(out, &m.attributes, i)?,
        MibUploadRequest => writeln!(out, "{i}(no contents)")?,
        MibUploadResponse(m) => writeln!(
            out,
            "{i}Number of subsequent MIB upload next commands: {} (no result field)",
            m.subsequent_commands
        )?,
        GetAllAlarmsRequest(m) => {
            let meaning = match m.alarm_retrieval_mode {
                0 => "every alarm",
                1 => "only alarms not reported by an attribute value change",
                _ => "reserved value",
            };
            writeln!(
                out,
                "{i}Alarm retrieval mode: {} ({meaning})",
                m.alarm_retrieval_mode
            )?;
        }
        GetAllAlarmsResponse(m) => writeln!(
            out,
            "{i}Number of subsequent Get all alarms next commands: {} (no result field)",
            m.subsequent_commands
        )?,
        MibUploadNextRequest(m) | GetAllAlarmsNextRequest(m) => writeln!(
            out,
            "{i}Command sequence number: {}",
            m.command_sequence_number
        )?,
        MibUploadNextResponse(m) => {
            if m.records.is_empty() {
                writeln!(out, "{i}(no managed entity)")?;
            }
            for r in &m.records {
                writeln!(
                    out,
                    "{i}Managed entity: class {}, instance 0x{:04x}",
                    r.me.class, r.me.instance
                )?;
                writeln!(out, "{i}  Attribute mask: 0x{:04x}", r.attribute_mask)?;
                writeln!(out, "{i}  Attribute values: {} bytes", r.values.len())?;
                write_hex(out, &r.values, &format!("{i}    "))?;
            }
        }
        GetAllAlarmsNextResponse(m) => {
            if m.records.is_empty() {
                writeln!(out, "{i}(no managed entity)")?;
            }
            for r in &m.records {
                writeln!(
                    out,
                    "{i}Managed entity: class {}, instance 0x{:04x}",
                    r.me.class, r.me.instance
                )?;
                let active: Vec<String> = (0..r.bitmap.len() * 8)
                    .filter(|n| r.bitmap[n / 8] & (0x80 >> (n % 8)) != 0)
                    .map(|n| n.to_string())
                    .collect();
                writeln!(
                    out,
                    "{i}  Alarms active: {}",
                    if active.is_empty() {
                        "none".to_string()
                    } else {
                        active.join(", ")
                    }
                )?;
            }
        }
        Other(o) => {
            writeln!(out, "{i}Raw contents: {} bytes", o.contents.len())?;
            write_hex(out, &o.contents, &format!("{i}  "))?;
        }
    }
    Ok(())
}

fn write_instances(out: &mut String, ids: &[u16], i: &str) -> fmt::Result {
    writeln!(out, "{i}Number of instances: {}", ids.len())?;
    for id in ids {
        writeln!(
            out,
            "{i}  Software image ME id: 0x{id:04x} ({})",
            SoftwareImageId::from_instance(*id)
        )?;
    }
    Ok(())
}

fn write_instance_results(out: &mut String, rs: &[InstanceResult], i: &str) -> fmt::Result {
    writeln!(out, "{i}Number of instances: {}", rs.len())?;
    for r in rs {
        writeln!(
            out,
            "{i}  Software image ME id: 0x{:04x} ({}), result: {}",
            r.me_instance,
            SoftwareImageId::from_instance(r.me_instance),
            r.result
        )?;
    }
    Ok(())
}

fn write_attributes(out: &mut String, a: &AttributeValues<'_>, i: &str) -> fmt::Result {
    writeln!(out, "{i}Attribute mask: 0x{:04x}", a.attribute_mask())?;
    match a {
        AttributeValues::SoftwareImage(s) => write_software_image(out, s, i),
        AttributeValues::Raw { values, .. } => {
            writeln!(out, "{i}Attribute values: {} bytes", values.len())?;
            write_hex(out, values, &format!("{i}  "))
        }
    }
}

fn write_software_image(out: &mut String, s: &SoftwareImageAttributes, i: &str) -> fmt::Result {
    if let Some(v) = &s.version {
        writeln!(out, "{i}  Version: {:?}", attribute_string(v))?;
    }
    let yes_no = |b: bool| if b { "1 (true)" } else { "0 (false)" };
    if let Some(v) = s.is_committed {
        writeln!(out, "{i}  Is committed: {}", yes_no(v))?;
    }
    if let Some(v) = s.is_active {
        writeln!(out, "{i}  Is active: {}", yes_no(v))?;
    }
    if let Some(v) = s.is_valid {
        writeln!(out, "{i}  Is valid: {}", yes_no(v))?;
    }
    if let Some(v) = &s.product_code {
        writeln!(out, "{i}  Product code: {:?}", attribute_string(v))?;
    }
    if let Some(v) = &s.image_hash {
        writeln!(out, "{i}  Image hash: {}", hex::encode(v))?;
    }
    Ok(())
}

/// Hex lines of 16 bytes, trailing zero padding summarised.
fn write_hex(out: &mut String, bytes: &[u8], i: &str) -> fmt::Result {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    for (n, chunk) in bytes[..end].chunks(16).enumerate() {
        write!(out, "{i}{:04x}:", n * 16)?;
        for b in chunk {
            write!(out, " {b:02x}")?;
        }
        writeln!(out)?;
    }
    if end < bytes.len() {
        writeln!(out, "{i}(+{} zero bytes)", bytes.len() - end)?;
    }
    Ok(())
}
