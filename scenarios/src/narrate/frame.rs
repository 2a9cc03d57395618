//! One OMCI frame of a capture, owned and typed as far as this module needs: the messages of
//! a software upgrade by their contents, any other by its G.988 name.

use std::time::Duration;

use omci_codec::contents::AttributeValues;
use omci_codec::pcap::{Direction, Peer};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Contents, Envelope, Message, ResultCode};

use super::wording::{printable, version_text};

/// One OMCI frame of a capture, with everything this module needs, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Time since the first frame of the first capture file.
    pub time: Duration,
    /// Which capture file (0 for the first): a new file means the OLT was restarted.
    pub file: usize,
    /// Downstream (OLT to ONU or group) or upstream (ONU to OLT).
    pub direction: Direction,
    /// The ONU, or the multicast group, on the other end.
    pub peer: Peer,
    /// What the lab's transport envelope around the frame said (ONU-ID, GEM port, window
    /// number, window CRC, missing sections), when the capture kept it (docs/wire.md).
    pub envelope: Option<Envelope>,
    /// Transaction correlation identifier.
    pub tci: u16,
    /// The AR (acknowledge request) bit.
    pub ar: bool,
    /// ME class (7 = Software image).
    pub me_class: u16,
    /// ME instance (for class 7: `slot << 8 | image`).
    pub me_instance: u16,
    /// What the frame carries.
    pub body: Body,
}

/// The values of the Software image ME (class 7) a Get response or an attribute value change
/// carried; `None` for an attribute that was not in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageState {
    /// Version string, NUL padding cut.
    pub version: Option<String>,
    /// Is committed: the image the ONU boots by default.
    pub is_committed: Option<bool>,
    /// Is active: the image that runs.
    pub is_active: Option<bool>,
    /// Is valid: the image holds a complete, verified executable.
    pub is_valid: Option<bool>,
}

impl ImageState {
    fn from_attributes(a: &SoftwareImageAttributes) -> Self {
        Self {
            version: a.version.map(|v| printable(&v)),
            is_committed: a.is_committed,
            is_active: a.is_active,
            is_valid: a.is_valid,
        }
    }

    /// The attributes of `newer` that are present replace these.
    pub(super) fn merge(&mut self, newer: &ImageState) {
        if newer.version.is_some() {
            self.version.clone_from(&newer.version);
        }
        self.is_committed = newer.is_committed.or(self.is_committed);
        self.is_active = newer.is_active.or(self.is_active);
        self.is_valid = newer.is_valid.or(self.is_valid);
    }

    /// `version V1.0, is_committed 1, is_active 1, is_valid 1` (the attributes present).
    pub(super) fn compact(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(format!("version {}", version_text(v)));
        }
        for (name, value) in [
            ("is_committed", self.is_committed),
            ("is_active", self.is_active),
            ("is_valid", self.is_valid),
        ] {
            if let Some(b) = value {
                parts.push(format!("{name} {}", u8::from(b)));
            }
        }
        parts.join(", ")
    }

    /// `version "V1.0", committed, active, valid` (the attributes present).
    pub(super) fn words(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(if v.is_empty() {
                "no version".to_string()
            } else {
                format!("version \"{v}\"")
            });
        }
        for (yes, no, value) in [
            ("committed", "not committed", self.is_committed),
            ("active", "not active", self.is_active),
            ("valid", "not valid", self.is_valid),
        ] {
            if let Some(b) = value {
                parts.push(if b { yes } else { no }.to_string());
            }
        }
        parts.join(", ")
    }
}

/// The contents of a frame, owned: the messages of a software upgrade typed, any other kept
/// by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Get request.
    Get {
        /// The attributes asked for.
        attribute_mask: u16,
    },
    /// Get response.
    GetResponse {
        /// The result.
        result: ResultCode,
        /// The attributes returned.
        attribute_mask: u16,
        /// The Software image values, when the ME is class 7 and they decoded.
        image: Option<ImageState>,
        /// The equipment ID (the ONU's model), when the ME is ONU2-G and it was asked for.
        equipment_id: Option<String>,
        /// The serial number (vendor id and 8 hex digits), when the ME is ONU-G and its vendor
        /// id and serial number were asked for.
        serial: Option<String>,
    },
    /// Start software download request.
    StartDownload {
        /// Sections per window the OLT proposes.
        window_size: u16,
        /// Image size in bytes.
        image_size: u32,
        /// Software image instances to download into.
        instances: Vec<u16>,
    },
    /// Start software download response.
    StartDownloadResponse {
        /// The result.
        result: ResultCode,
        /// Sections per window the ONU accepts.
        window_size: u16,
    },
    /// Download section request.
    Section {
        /// Section number within its window.
        number: u8,
        /// The image bytes it carries.
        data: Vec<u8>,
    },
    /// Download section response (the answer to a window's AR section).
    SectionResponse {
        /// Success (window complete) or processing error (sections missing).
        result: ResultCode,
        /// The section number acknowledged.
        number: u8,
    },
    /// End software download request.
    EndDownload {
        /// CRC-32/BZIP2 of the image.
        crc: u32,
        /// Image size in bytes (0 with CRC 0xFFFFFFFF: abort).
        image_size: u32,
        /// Software image instances.
        instances: Vec<u16>,
    },
    /// End software download response.
    EndDownloadResponse {
        /// The result (device busy: still writing flash, ask again).
        result: ResultCode,
    },
    /// Activate software request.
    Activate {
        /// Activate flags.
        flags: u8,
    },
    /// Activate software response.
    ActivateResponse {
        /// The result.
        result: ResultCode,
    },
    /// Commit software request.
    Commit,
    /// Commit software response.
    CommitResponse {
        /// The result.
        result: ResultCode,
    },
    /// MIB reset request.
    MibReset,
    /// MIB reset response.
    MibResetResponse {
        /// The result.
        result: ResultCode,
    },
    /// Reboot request.
    Reboot {
        /// Reboot condition.
        condition: u8,
    },
    /// Reboot response.
    RebootResponse {
        /// The result.
        result: ResultCode,
    },
    /// Attribute value change notification.
    AttributeValueChange {
        /// The attributes that changed.
        attribute_mask: u16,
        /// Their values, when the ME is class 7 and they decoded.
        image: Option<ImageState>,
    },
    /// Any other message.
    Other {
        /// Its G.988 name ("Set request", "MIB upload response").
        name: String,
        /// True for a response.
        ak: bool,
    },
}

impl Body {
    fn from_contents(contents: &Contents<'_>) -> Self {
        let image = |a: &AttributeValues<'_>| match a {
            AttributeValues::SoftwareImage(s) => Some(ImageState::from_attributes(s)),
            AttributeValues::Raw { .. } => None,
        };
        match contents {
            Contents::StartSoftwareDownloadRequest(r) => Body::StartDownload {
                window_size: r.window_size(),
                image_size: r.image_size,
                instances: r.instances.to_vec(),
            },
            Contents::StartSoftwareDownloadResponse(r) => Body::StartDownloadResponse {
                result: r.result,
                window_size: r.window_size(),
            },
            Contents::DownloadSectionRequest(r) => Body::Section {
                number: r.section_number,
                data: r.data.to_vec(),
            },
            Contents::DownloadSectionResponse(r) => Body::SectionResponse {
                result: r.result,
                number: r.section_number,
            },
            Contents::EndSoftwareDownloadRequest(r) => Body::EndDownload {
                crc: r.crc,
                image_size: r.image_size,
                instances: r.instances.to_vec(),
            },
            Contents::EndSoftwareDownloadResponse(r) => {
                Body::EndDownloadResponse { result: r.result }
            }
            Contents::ActivateSoftwareRequest(r) => Body::Activate {
                flags: r.activate_flags,
            },
            Contents::ActivateSoftwareResponse { result } => {
                Body::ActivateResponse { result: *result }
            }
            Contents::CommitSoftwareRequest => Body::Commit,
            Contents::CommitSoftwareResponse { result } => Body::CommitResponse { result: *result },
            Contents::GetRequest(r) => Body::Get {
                attribute_mask: r.attribute_mask,
            },
            Contents::GetResponse(r) => Body::GetResponse {
                result: r.result,
                attribute_mask: r.attributes.attribute_mask(),
                image: image(&r.attributes),
                equipment_id: match &r.attributes {
                    // ONU2-G attribute 1, equipment ID: 20 bytes (G.988 9.1.2).
                    AttributeValues::Raw {
                        attribute_mask,
                        values,
                    } if attribute_mask & 0x8000 != 0 && values.len() >= 20 => {
                        Some(printable(&values[..20]))
                    }
                    _ => None,
                },
                serial: match &r.attributes {
                    // ONU-G attributes 1 and 3: vendor id (4 bytes), then the serial number
                    // (its own vendor id and 4 bytes, G.988 9.1.1).
                    AttributeValues::Raw {
                        attribute_mask: 0xA000,
                        values,
                    } if values.len() >= 12 => Some(format!(
                        "{}{}",
                        printable(&values[4..8]),
                        hex::encode_upper(&values[8..12])
                    )),
                    _ => None,
                },
            },
            Contents::MibResetRequest => Body::MibReset,
            Contents::MibResetResponse { result } => Body::MibResetResponse { result: *result },
            Contents::RebootRequest(r) => Body::Reboot {
                condition: r.reboot_condition,
            },
            Contents::RebootResponse { result } => Body::RebootResponse { result: *result },
            Contents::AttributeValueChange(a) => Body::AttributeValueChange {
                attribute_mask: a.attributes.attribute_mask(),
                image: image(&a.attributes),
            },
            other @ Contents::Other(o) => Body::Other {
                name: other.describe().into_owned(),
                ak: o.ak,
            },
            // MIB synchronisation: told by name, as every message without a story of its own.
            other @ (Contents::MibUploadRequest
            | Contents::MibUploadResponse(_)
            | Contents::MibUploadNextRequest(_)
            | Contents::MibUploadNextResponse(_)
            | Contents::GetAllAlarmsRequest(_)
            | Contents::GetAllAlarmsResponse(_)
            | Contents::GetAllAlarmsNextRequest(_)
            | Contents::GetAllAlarmsNextResponse(_)) => Body::Other {
                name: other.describe().into_owned(),
                ak: other.ak(),
            },
        }
    }

    /// The result of a response.
    pub(super) fn result(&self) -> Option<ResultCode> {
        match self {
            Body::GetResponse { result, .. }
            | Body::StartDownloadResponse { result, .. }
            | Body::SectionResponse { result, .. }
            | Body::EndDownloadResponse { result }
            | Body::ActivateResponse { result }
            | Body::CommitResponse { result }
            | Body::MibResetResponse { result }
            | Body::RebootResponse { result } => Some(*result),
            _ => None,
        }
    }

    /// True for a response (AK set).
    pub(super) fn is_response(&self) -> bool {
        match self {
            Body::Other { ak, .. } => *ak,
            other => other.result().is_some(),
        }
    }

    /// The G.988 action, so that a response can be paired with its request.
    pub(super) fn action(&self) -> &str {
        match self {
            Body::Get { .. } | Body::GetResponse { .. } => "Get",
            Body::StartDownload { .. } | Body::StartDownloadResponse { .. } => {
                "Start software download"
            }
            Body::Section { .. } | Body::SectionResponse { .. } => "Download section",
            Body::EndDownload { .. } | Body::EndDownloadResponse { .. } => "End software download",
            Body::Activate { .. } | Body::ActivateResponse { .. } => "Activate software",
            Body::Commit | Body::CommitResponse { .. } => "Commit software",
            Body::MibReset | Body::MibResetResponse { .. } => "MIB reset",
            Body::Reboot { .. } | Body::RebootResponse { .. } => "Reboot",
            Body::AttributeValueChange { .. } => "Attribute value change",
            Body::Other { name, .. } => name
                .strip_suffix(" request")
                .or_else(|| name.strip_suffix(" response"))
                .unwrap_or(name),
        }
    }
}

impl Frame {
    /// The frame of a decoded message.
    pub(super) fn new(
        time: Duration,
        file: usize,
        direction: Direction,
        peer: Peer,
        envelope: Option<Envelope>,
        m: &Message<'_>,
    ) -> Self {
        Self {
            time,
            file,
            direction,
            peer,
            envelope,
            tci: m.tci.0,
            ar: m.ar,
            me_class: m.me.class.0,
            me_instance: m.me.instance,
            body: Body::from_contents(&m.contents),
        }
    }

    pub(super) fn onu(&self) -> Option<u16> {
        match self.peer {
            Peer::Onu(o) => Some(o.0),
            Peer::Multicast => None,
        }
    }
}
