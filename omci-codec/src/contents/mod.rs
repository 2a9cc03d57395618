//! Typed message contents (G.988 Annex A, baseline A.3 and extended A.2), parsed with nom and
//! written by the mirror-image emitter.
//!
//! The contents of a baseline frame are 32 bytes: the typed fields, then zero padding. Padding
//! is ignored on parse and written as zero on emit (G.988 11.2: "unused bytes set to 0"), so
//! a frame re-emits byte-identically whenever its padding was zero, as every frame of a
//! conforming sender's is. The contents of an extended frame are exactly as long as its length
//! field: a byte left over after the typed fields is an error.
//!
//! No-panic promise: every parser here bounds each length before it takes, and every writer
//! is given a buffer of [`Contents::encoded_len`] bytes (or the 32-byte baseline area), checked
//! by its caller before writing.

use std::borrow::Cow;

use nom::IResult;
use nom::number::complete::{be_u8, be_u16, be_u32};
use smallvec::SmallVec;

use crate::error::{EmitError, ParseErrorKind};
use crate::frame::Format;
use crate::ids::{MeClass, MeId};
use crate::message_type::MessageType;
use crate::result::ResultCode;
use crate::software_image::SoftwareImageAttributes;

/// Bytes of contents in a baseline frame.
pub const BASELINE_CONTENTS_LEN: usize = 32;
/// Largest contents of an extended frame (G.988 11.2: 1980-byte frame less header, length, MIC).
pub const EXTENDED_MAX_CONTENTS_LEN: usize = 1966;
/// Data bytes of one baseline Download section (32 bytes less the section number).
pub const BASELINE_SECTION_DATA_LEN: usize = 31;
/// Largest data of one extended Download section.
pub const EXTENDED_MAX_SECTION_DATA_LEN: usize = EXTENDED_MAX_CONTENTS_LEN - 1;
/// Attribute value bytes of a baseline Get response (A.3.29: bytes 3..28 of contents).
pub const BASELINE_GET_VALUES_LEN: usize = 25;
/// Attribute value bytes of a baseline attribute value change (A.3.17: 32 less the mask).
pub const BASELINE_AVC_VALUES_LEN: usize = 30;
/// Attribute value bytes of a baseline MIB upload next response (A.3.16: 32 less the ME
/// class, instance and attribute mask).
pub const BASELINE_MIB_UPLOAD_VALUES_LEN: usize = 26;
/// Bytes of an alarm bitmap (A.3.12: 224 alarms, one bit each).
pub const ALARM_BITMAP_LEN: usize = 28;

/// A list of software image ME instances (`slot << 8 | image`), as Start and End software
/// download carry them ("number of circuit packs to be updated in parallel" and their ids).
pub type InstanceList = SmallVec<[u16; 2]>;

/// One instance's own result, as Start and End software download responses carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceResult {
    /// The software image ME instance.
    pub me_instance: u16,
    /// Its result.
    pub result: ResultCode,
}

/// Per-instance results of a response.
pub type InstanceResults = SmallVec<[InstanceResult; 2]>;

/// Start software download request (A.3.19 / A.2.19).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSoftwareDownloadRequest {
    /// "Window size − 1": the OLT's proposed sections per window, less one.
    pub window_size_minus_one: u8,
    /// Image size in bytes.
    pub image_size: u32,
    /// The software image instances to download into, updated in parallel.
    pub instances: InstanceList,
}

impl StartSoftwareDownloadRequest {
    /// Sections per window (1..=256).
    pub fn window_size(&self) -> u16 {
        u16::from(self.window_size_minus_one) + 1
    }
}

/// Start software download response (A.3.39 / A.2.39).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartSoftwareDownloadResponse {
    /// The result for the download as a whole.
    pub result: ResultCode,
    /// "Window size − 1" the ONU accepts: equal to or lower than the OLT's; the OLT adopts it.
    pub window_size_minus_one: u8,
    /// Per-instance results.
    pub instances: InstanceResults,
}

impl StartSoftwareDownloadResponse {
    /// Sections per window (1..=256).
    pub fn window_size(&self) -> u16 {
        u16::from(self.window_size_minus_one) + 1
    }
}

/// Download section request (A.3.20 / A.2.20). Only the last section of a window has AR set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadSectionRequest<'a> {
    /// Section number within its window; restarts at 0 with every window.
    pub section_number: u8,
    /// The image bytes of this section: 31 on a baseline frame (the image's last section is
    /// zero padded), up to 1965 on an extended one.
    pub data: Cow<'a, [u8]>,
}

/// Download section response (A.3.40 / A.2.40): the answer to a window's AR section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DownloadSectionResponse {
    /// Success when the window is complete; processing error when a section is missing.
    pub result: ResultCode,
    /// The section number being acknowledged.
    pub section_number: u8,
}

/// End software download request (A.3.21 / A.2.21).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndSoftwareDownloadRequest {
    /// CRC-32/BZIP2 of the whole image (0xFFFFFFFF with size 0 is the abort convention).
    pub crc: u32,
    /// Image size in bytes.
    pub image_size: u32,
    /// The software image instances the download went into.
    pub instances: InstanceList,
}

impl EndSoftwareDownloadRequest {
    /// True for the abort convention of open OLT stacks: image size 0 and CRC 0xFFFFFFFF.
    pub fn is_abort(&self) -> bool {
        self.image_size == 0 && self.crc == 0xFFFF_FFFF
    }
}

/// End software download response (A.3.41 / A.2.41).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndSoftwareDownloadResponse {
    /// The result; device busy means "still writing flash, ask again".
    pub result: ResultCode,
    /// Per-instance results.
    pub instances: InstanceResults,
}

/// Activate software request (A.3.22 / A.2.22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivateSoftwareRequest {
    /// Activate flags: 0 unconditionally, 1 only if no voice call is in progress, 2 only if no
    /// emergency call is in progress (other values are kept as received).
    pub activate_flags: u8,
}

/// Reboot request (A.3.25 / A.2.25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebootRequest {
    /// Reboot condition: 0 unconditionally, 1 only if no voice call is in progress, 2 only if
    /// no emergency call is in progress (G.988 A.3.25; other values are kept as received).
    pub reboot_condition: u8,
}

/// Get request (A.3.9 / A.2.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetRequest {
    /// The attributes asked for (bit 16 = attribute 1).
    pub attribute_mask: u16,
}

/// Attribute values as a Get response or an attribute value change carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValues<'a> {
    /// Values of the Software image ME (class 7), decoded by mask. Boxed: inline, these 61
    /// bytes would make every `Contents` (a Download section too) twice as large to move.
    SoftwareImage(Box<SoftwareImageAttributes>),
    /// Values of any other ME, or values that do not decode as class 7: the mask and the value
    /// bytes as they stand (on a baseline frame, the whole value area, padding included).
    Raw {
        /// The attribute mask.
        attribute_mask: u16,
        /// The value bytes.
        values: Cow<'a, [u8]>,
    },
}

impl AttributeValues<'_> {
    /// The attribute mask of these values.
    pub fn attribute_mask(&self) -> u16 {
        match self {
            AttributeValues::SoftwareImage(a) => a.mask(),
            AttributeValues::Raw { attribute_mask, .. } => *attribute_mask,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            AttributeValues::SoftwareImage(a) => a.encoded_len(),
            AttributeValues::Raw { values, .. } => values.len(),
        }
    }

    fn write(&self, out: &mut [u8]) {
        match self {
            AttributeValues::SoftwareImage(a) => {
                a.encode(out);
            }
            AttributeValues::Raw { values, .. } => out[..values.len()].copy_from_slice(values),
        }
    }

    fn into_owned(self) -> AttributeValues<'static> {
        match self {
            AttributeValues::SoftwareImage(a) => AttributeValues::SoftwareImage(a),
            AttributeValues::Raw {
                attribute_mask,
                values,
            } => AttributeValues::Raw {
                attribute_mask,
                values: Cow::Owned(values.into_owned()),
            },
        }
    }

    /// Decodes values of `me`'s class: typed for class 7 when they decode and nothing is lost
    /// (the rest of a baseline area is zero, an extended area has nothing left), else raw.
    fn decode(me: MeId, format: Format, attribute_mask: u16, bytes: &[u8]) -> AttributeValues<'_> {
        if me.class == MeClass::SOFTWARE_IMAGE
            && let Some((attrs, used)) = SoftwareImageAttributes::decode(attribute_mask, bytes)
        {
            let rest = &bytes[used..];
            let lossless = match format {
                Format::Baseline => rest.iter().all(|&b| b == 0),
                Format::Extended => rest.is_empty(),
            };
            if lossless {
                return AttributeValues::SoftwareImage(Box::new(attrs));
            }
        }
        AttributeValues::Raw {
            attribute_mask,
            values: Cow::Borrowed(bytes),
        }
    }
}

/// Get response (A.3.29 / A.2.29).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse<'a> {
    /// The result.
    pub result: ResultCode,
    /// The values returned, with their mask.
    pub attributes: AttributeValues<'a>,
    /// Optional-attribute mask: attributes not supported (meaningful with result 9).
    pub optional_attribute_mask: u16,
    /// Attribute execution mask: attributes that failed (meaningful with result 9).
    pub attribute_execution_mask: u16,
}

/// Attribute value change notification (A.3.17 / A.2.17), sent by the ONU on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeValueChange<'a> {
    /// The changed attributes' new values, with their mask.
    pub attributes: AttributeValues<'a>,
}

/// MIB upload response (A.3.14 / A.2.14). It carries **no result field**: its contents are
/// the number of MIB upload next commands the OLT must send to fetch the MIB. An ONU that
/// answers it as if it had a result (one byte of "not supported", then zeros) says, read as
/// G.988 reads it, that 512 commands follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MibUploadResponse {
    /// Number of subsequent MIB upload next commands.
    pub subsequent_commands: u16,
}

/// A "next" request of an upload (A.3.15 MIB upload next, A.3.11 Get all alarms next).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextRequest {
    /// Command sequence number: 0 for the first, one more for each.
    pub command_sequence_number: u16,
}

/// One managed entity's attributes as a MIB upload next response carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MibUploadRecord<'a> {
    /// The managed entity.
    pub me: MeId,
    /// The attributes whose values follow (bit 16 = attribute 1).
    pub attribute_mask: u16,
    /// Their values, in attribute order, as they stand: on a baseline frame the whole 26-byte
    /// area, padding included (the codec knows no attribute sizes but class 7's).
    pub values: Cow<'a, [u8]>,
}

/// MIB upload next response (A.3.16 / A.2.16): one ME's attributes (baseline: exactly one
/// record; extended: any number, each with its size), and no result field. An ONU answers a
/// sequence number past the end with ME class 0, instance 0, no attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MibUploadNextResponse<'a> {
    /// The records, in order.
    pub records: Vec<MibUploadRecord<'a>>,
}

/// Get all alarms request (A.3.10 / A.2.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetAllAlarmsRequest {
    /// Alarm retrieval mode: 0 every alarm, 1 only alarms not reported by an attribute value
    /// change (other values are kept as received).
    pub alarm_retrieval_mode: u8,
}

/// Get all alarms response (A.3.11 / A.2.11): no result field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetAllAlarmsResponse {
    /// Number of subsequent Get all alarms next commands (the MEs with an alarm active).
    pub subsequent_commands: u16,
}

/// One managed entity's alarms, as a Get all alarms next response carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmRecord {
    /// The managed entity.
    pub me: MeId,
    /// Bit n (byte n / 8, most significant bit first) set: alarm n is active.
    pub bitmap: [u8; ALARM_BITMAP_LEN],
}

/// Get all alarms next response (A.3.13 / A.2.13): baseline exactly one record, extended any
/// number; no result field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetAllAlarmsNextResponse {
    /// The records, in order.
    pub records: Vec<AlarmRecord>,
}

/// A message this lab has no typed form for: its action and AK bit, and its contents as they
/// stand (on a baseline frame, all 32 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherMessage<'a> {
    /// The action.
    pub message_type: MessageType,
    /// The AK bit: true for a response.
    pub ak: bool,
    /// The raw contents.
    pub contents: Cow<'a, [u8]>,
}

/// The typed contents of an OMCI message. The variant fixes the message type and the AK bit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // every variant is the G.988 message of the same name
pub enum Contents<'a> {
    StartSoftwareDownloadRequest(StartSoftwareDownloadRequest),
    StartSoftwareDownloadResponse(StartSoftwareDownloadResponse),
    DownloadSectionRequest(DownloadSectionRequest<'a>),
    DownloadSectionResponse(DownloadSectionResponse),
    EndSoftwareDownloadRequest(EndSoftwareDownloadRequest),
    EndSoftwareDownloadResponse(EndSoftwareDownloadResponse),
    ActivateSoftwareRequest(ActivateSoftwareRequest),
    ActivateSoftwareResponse {
        result: ResultCode,
    },
    CommitSoftwareRequest,
    CommitSoftwareResponse {
        result: ResultCode,
    },
    GetRequest(GetRequest),
    GetResponse(GetResponse<'a>),
    MibResetRequest,
    MibResetResponse {
        result: ResultCode,
    },
    RebootRequest(RebootRequest),
    RebootResponse {
        result: ResultCode,
    },
    MibUploadRequest,
    MibUploadResponse(MibUploadResponse),
    MibUploadNextRequest(NextRequest),
    MibUploadNextResponse(MibUploadNextResponse<'a>),
    GetAllAlarmsRequest(GetAllAlarmsRequest),
    GetAllAlarmsResponse(GetAllAlarmsResponse),
    GetAllAlarmsNextRequest(NextRequest),
    GetAllAlarmsNextResponse(GetAllAlarmsNextResponse),
    AttributeValueChange(AttributeValueChange<'a>),
    /// Any other message, kept raw.
    Other(OtherMessage<'a>),
}

impl<'a> Contents<'a> {
    /// The action this contents belongs to.
    pub fn message_type(&self) -> MessageType {
        use Contents::*;
        match self {
            StartSoftwareDownloadRequest(_) | StartSoftwareDownloadResponse(_) => {
                MessageType::StartSoftwareDownload
            }
            DownloadSectionRequest(_) | DownloadSectionResponse(_) => MessageType::DownloadSection,
            EndSoftwareDownloadRequest(_) | EndSoftwareDownloadResponse(_) => {
                MessageType::EndSoftwareDownload
            }
            ActivateSoftwareRequest(_) | ActivateSoftwareResponse { .. } => {
                MessageType::ActivateSoftware
            }
            CommitSoftwareRequest | CommitSoftwareResponse { .. } => MessageType::CommitSoftware,
            GetRequest(_) | GetResponse(_) => MessageType::Get,
            MibResetRequest | MibResetResponse { .. } => MessageType::MibReset,
            RebootRequest(_) | RebootResponse { .. } => MessageType::Reboot,
            MibUploadRequest | MibUploadResponse(_) => MessageType::MibUpload,
            MibUploadNextRequest(_) | MibUploadNextResponse(_) => MessageType::MibUploadNext,
            GetAllAlarmsRequest(_) | GetAllAlarmsResponse(_) => MessageType::GetAllAlarms,
            GetAllAlarmsNextRequest(_) | GetAllAlarmsNextResponse(_) => {
                MessageType::GetAllAlarmsNext
            }
            AttributeValueChange(_) => MessageType::AttributeValueChange,
            Other(o) => o.message_type,
        }
    }

    /// The AK bit: true for a response.
    pub fn ak(&self) -> bool {
        use Contents::*;
        match self {
            StartSoftwareDownloadResponse(_)
            | DownloadSectionResponse(_)
            | EndSoftwareDownloadResponse(_)
            | ActivateSoftwareResponse { .. }
            | CommitSoftwareResponse { .. }
            | GetResponse(_)
            | MibResetResponse { .. }
            | RebootResponse { .. }
            | MibUploadResponse(_)
            | MibUploadNextResponse(_)
            | GetAllAlarmsResponse(_)
            | GetAllAlarmsNextResponse(_) => true,
            Other(o) => o.ak,
            _ => false,
        }
    }

    /// The result of a response, `None` for requests, notifications, raw messages and the
    /// responses G.988 gives no result field (MIB upload, MIB upload next, Get all alarms,
    /// Get all alarms next).
    pub fn result(&self) -> Option<ResultCode> {
        use Contents::*;
        match self {
            StartSoftwareDownloadResponse(r) => Some(r.result),
            DownloadSectionResponse(r) => Some(r.result),
            EndSoftwareDownloadResponse(r) => Some(r.result),
            GetResponse(r) => Some(r.result),
            ActivateSoftwareResponse { result }
            | CommitSoftwareResponse { result }
            | MibResetResponse { result }
            | RebootResponse { result } => Some(*result),
            _ => None,
        }
    }

    /// A short name: the G.988 message type and "request", "response" or "notification".
    pub fn kind_name(&self) -> &'static str {
        use Contents::*;
        match self {
            StartSoftwareDownloadRequest(_) => "Start software download request",
            StartSoftwareDownloadResponse(_) => "Start software download response",
            DownloadSectionRequest(_) => "Download section request",
            DownloadSectionResponse(_) => "Download section response",
            EndSoftwareDownloadRequest(_) => "End software download request",
            EndSoftwareDownloadResponse(_) => "End software download response",
            ActivateSoftwareRequest(_) => "Activate software request",
            ActivateSoftwareResponse { .. } => "Activate software response",
            CommitSoftwareRequest => "Commit software request",
            CommitSoftwareResponse { .. } => "Commit software response",
            GetRequest(_) => "Get request",
            GetResponse(_) => "Get response",
            MibResetRequest => "MIB reset request",
            MibResetResponse { .. } => "MIB reset response",
            RebootRequest(_) => "Reboot request",
            RebootResponse { .. } => "Reboot response",
            MibUploadRequest => "MIB upload request",
            MibUploadResponse(_) => "MIB upload response",
            MibUploadNextRequest(_) => "MIB upload next request",
            MibUploadNextResponse(_) => "MIB upload next response",
            GetAllAlarmsRequest(_) => "Get all alarms request",
            GetAllAlarmsResponse(_) => "Get all alarms response",
            GetAllAlarmsNextRequest(_) => "Get all alarms next request",
            GetAllAlarmsNextResponse(_) => "Get all alarms next response",
            AttributeValueChange(_) => "Attribute value change notification",
            Other(o) if o.message_type.is_notification() && !o.ak => "notification",
            Other(o) if o.ak => "response",
            Other(_) => "request",
        }
    }

    /// The full name: [`Contents::kind_name`], with the message type spelled out for messages
    /// kept raw ("Set request", "MIB upload response").
    pub fn describe(&self) -> Cow<'static, str> {
        match self {
            Contents::Other(o) => Cow::Owned(format!("{} {}", o.message_type, self.kind_name())),
            typed => Cow::Borrowed(typed.kind_name()),
        }
    }

    /// The same contents owning all their bytes.
    pub fn into_owned(self) -> Contents<'static> {
        use Contents::*;
        match self {
            StartSoftwareDownloadRequest(m) => StartSoftwareDownloadRequest(m),
            StartSoftwareDownloadResponse(m) => StartSoftwareDownloadResponse(m),
            DownloadSectionRequest(m) => DownloadSectionRequest(self::DownloadSectionRequest {
                section_number: m.section_number,
                data: Cow::Owned(m.data.into_owned()),
            }),
            DownloadSectionResponse(m) => DownloadSectionResponse(m),
            EndSoftwareDownloadRequest(m) => EndSoftwareDownloadRequest(m),
            EndSoftwareDownloadResponse(m) => EndSoftwareDownloadResponse(m),
            ActivateSoftwareRequest(m) => ActivateSoftwareRequest(m),
            ActivateSoftwareResponse { result } => ActivateSoftwareResponse { result },
            CommitSoftwareRequest => CommitSoftwareRequest,
            CommitSoftwareResponse { result } => CommitSoftwareResponse { result },
            GetRequest(m) => GetRequest(m),
            GetResponse(m) => GetResponse(self::GetResponse {
                result: m.result,
                attributes: m.attributes.into_owned(),
                optional_attribute_mask: m.optional_attribute_mask,
                attribute_execution_mask: m.attribute_execution_mask,
            }),
            MibResetRequest => MibResetRequest,
            MibResetResponse { result } => MibResetResponse { result },
            RebootRequest(m) => RebootRequest(m),
            RebootResponse { result } => RebootResponse { result },
            MibUploadRequest => MibUploadRequest,
            MibUploadResponse(m) => MibUploadResponse(m),
            MibUploadNextRequest(m) => MibUploadNextRequest(m),
            MibUploadNextResponse(m) => MibUploadNextResponse(self::MibUploadNextResponse {
                records: m
                    .records
                    .into_iter()
                    .map(|r| MibUploadRecord {
                        me: r.me,
                        attribute_mask: r.attribute_mask,
                        values: Cow::Owned(r.values.into_owned()),
                    })
                    .collect(),
            }),
            GetAllAlarmsRequest(m) => GetAllAlarmsRequest(m),
            GetAllAlarmsResponse(m) => GetAllAlarmsResponse(m),
            GetAllAlarmsNextRequest(m) => GetAllAlarmsNextRequest(m),
            GetAllAlarmsNextResponse(m) => GetAllAlarmsNextResponse(m),
            AttributeValueChange(m) => AttributeValueChange(self::AttributeValueChange {
                attributes: m.attributes.into_owned(),
            }),
            Other(o) => Other(OtherMessage {
                message_type: o.message_type,
                ak: o.ak,
                contents: Cow::Owned(o.contents.into_owned()),
            }),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Parsing

    /// Parses the contents of a message whose header said `message_type`, `ak` and `me`.
    /// `contents` is the 32-byte area of a baseline frame or the exact contents of an extended
    /// one.
    #[inline(always)]
    pub(crate) fn parse(
        message_type: MessageType,
        ak: bool,
        me: MeId,
        format: Format,
        contents: &'a [u8],
    ) -> Result<Self, NomError> {
        let (rest, parsed) = parse_typed(message_type, ak, me, format, contents)?;
        if format == Format::Extended && !rest.is_empty() {
            return Err(NomError {
                at: addr(rest),
                kind: ParseErrorKind::TrailingContents {
                    count: rest.len(),
                    message: parsed.kind_name(),
                },
            });
        }
        Ok(parsed)
    }

    // ----------------------------------------------------------------------------------------
    // Emitting

    /// Bytes these contents take in an extended frame (a baseline frame always has 32), or why
    /// they do not fit `format`.
    ///
    /// A baseline frame's fixed-size fields must have exactly their size: Download section
    /// data 31 bytes (pad the image's last section with zeros), raw Get response values 25,
    /// raw attribute value change values 30, raw contents 32. Emit never pads on its own, so
    /// that what is parsed back is what was given.
    pub fn encoded_len(&self, format: Format) -> Result<usize, EmitError> {
        use Contents::*;
        let baseline = format == Format::Baseline;
        let exact = |field: &'static str, len: usize, size: usize, allowed: &'static str| {
            if baseline && len != size {
                Err(EmitError::FieldOutOfRange {
                    field,
                    value: len,
                    allowed,
                })
            } else {
                Ok(())
            }
        };
        let count = |n: usize| {
            if n > 255 {
                Err(EmitError::FieldOutOfRange {
                    field: "number of instances",
                    value: n,
                    allowed: "0..=255",
                })
            } else {
                Ok(n)
            }
        };
        let values = |a: &AttributeValues<'_>, size: usize, allowed: &'static str| match a {
            AttributeValues::Raw { values, .. } => {
                exact("attribute values", values.len(), size, allowed).map(|()| values.len())
            }
            AttributeValues::SoftwareImage(s) if baseline && s.encoded_len() > size => {
                Err(EmitError::ContentsTooLong {
                    message: "software image attribute values",
                    format: format.name(),
                    needed: s.encoded_len(),
                    max: size,
                })
            }
            AttributeValues::SoftwareImage(s) => Ok(s.encoded_len()),
        };
        let len = match self {
            StartSoftwareDownloadRequest(m) => 6 + 2 * count(m.instances.len())?,
            StartSoftwareDownloadResponse(m) => 3 + 3 * count(m.instances.len())?,
            DownloadSectionRequest(m) => {
                exact(
                    "download section data",
                    m.data.len(),
                    BASELINE_SECTION_DATA_LEN,
                    "exactly 31 bytes on a baseline frame (pad the image's last section with zeros)",
                )?;
                if m.data.is_empty() {
                    return Err(EmitError::FieldOutOfRange {
                        field: "download section data",
                        value: 0,
                        allowed: "1..=1965 bytes",
                    });
                }
                1 + m.data.len()
            }
            DownloadSectionResponse(_) => 2,
            EndSoftwareDownloadRequest(m) => 9 + 2 * count(m.instances.len())?,
            EndSoftwareDownloadResponse(m) => 2 + 3 * count(m.instances.len())?,
            ActivateSoftwareRequest(_) | RebootRequest(_) => 1,
            ActivateSoftwareResponse { .. }
            | CommitSoftwareResponse { .. }
            | MibResetResponse { .. }
            | RebootResponse { .. } => 1,
            CommitSoftwareRequest | MibResetRequest | MibUploadRequest => 0,
            GetRequest(_) => 2,
            GetAllAlarmsRequest(_) => 1,
            MibUploadResponse(_)
            | GetAllAlarmsResponse(_)
            | MibUploadNextRequest(_)
            | GetAllAlarmsNextRequest(_) => 2,
            MibUploadNextResponse(m) => {
                if baseline {
                    exact(
                        "MIB upload next records",
                        m.records.len(),
                        1,
                        "exactly one record on a baseline frame",
                    )?;
                    exact(
                        "attribute values",
                        m.records[0].values.len(),
                        BASELINE_MIB_UPLOAD_VALUES_LEN,
                        "exactly 26 bytes of values in a baseline MIB upload next response",
                    )?;
                    BASELINE_CONTENTS_LEN
                } else {
                    let mut n = 0;
                    for r in &m.records {
                        if r.values.len() > usize::from(u16::MAX) {
                            return Err(EmitError::FieldOutOfRange {
                                field: "attribute values",
                                value: r.values.len(),
                                allowed: "at most 65535 bytes a record",
                            });
                        }
                        n += 8 + r.values.len();
                    }
                    n
                }
            }
            GetAllAlarmsNextResponse(m) => {
                exact(
                    "Get all alarms next records",
                    m.records.len(),
                    1,
                    "exactly one record on a baseline frame",
                )?;
                (4 + ALARM_BITMAP_LEN) * m.records.len()
            }
            GetResponse(m) => {
                7 + values(
                    &m.attributes,
                    BASELINE_GET_VALUES_LEN,
                    "exactly 25 bytes of raw values on a baseline frame",
                )?
            }
            AttributeValueChange(m) => {
                2 + values(
                    &m.attributes,
                    BASELINE_AVC_VALUES_LEN,
                    "exactly 30 bytes of raw values on a baseline frame",
                )?
            }
            Other(o) => {
                exact(
                    "contents",
                    o.contents.len(),
                    BASELINE_CONTENTS_LEN,
                    "exactly 32 bytes of raw contents on a baseline frame",
                )?;
                o.contents.len()
            }
        };
        let max = match format {
            Format::Baseline => BASELINE_CONTENTS_LEN,
            Format::Extended => EXTENDED_MAX_CONTENTS_LEN,
        };
        if len > max {
            return Err(EmitError::ContentsTooLong {
                message: self.kind_name(),
                format: format.name(),
                needed: len,
                max,
            });
        }
        Ok(if baseline { BASELINE_CONTENTS_LEN } else { len })
    }

    /// Writes the contents into `out`: the zeroed 32-byte area of a baseline frame, or exactly
    /// [`Contents::encoded_len`] bytes of an extended one. Callers check `encoded_len` first.
    pub(crate) fn write(&self, format: Format, out: &mut [u8]) {
        use Contents::*;
        let mut w = Writer { out, at: 0 };
        match self {
            StartSoftwareDownloadRequest(m) => {
                w.u8(m.window_size_minus_one);
                w.u32(m.image_size);
                w.instances(&m.instances);
            }
            StartSoftwareDownloadResponse(m) => {
                w.u8(m.result.as_u8());
                w.u8(m.window_size_minus_one);
                w.instance_results(&m.instances);
            }
            DownloadSectionRequest(m) => {
                w.u8(m.section_number);
                w.bytes(&m.data);
            }
            DownloadSectionResponse(m) => {
                w.u8(m.result.as_u8());
                w.u8(m.section_number);
            }
            EndSoftwareDownloadRequest(m) => {
                w.u32(m.crc);
                w.u32(m.image_size);
                w.instances(&m.instances);
            }
            EndSoftwareDownloadResponse(m) => {
                w.u8(m.result.as_u8());
                w.instance_results(&m.instances);
            }
            ActivateSoftwareRequest(m) => w.u8(m.activate_flags),
            RebootRequest(m) => w.u8(m.reboot_condition),
            ActivateSoftwareResponse { result }
            | CommitSoftwareResponse { result }
            | MibResetResponse { result }
            | RebootResponse { result } => w.u8(result.as_u8()),
            CommitSoftwareRequest | MibResetRequest | MibUploadRequest => {}
            GetRequest(m) => w.u16(m.attribute_mask),
            GetAllAlarmsRequest(m) => w.u8(m.alarm_retrieval_mode),
            MibUploadResponse(m) => w.u16(m.subsequent_commands),
            GetAllAlarmsResponse(m) => w.u16(m.subsequent_commands),
            MibUploadNextRequest(m) | GetAllAlarmsNextRequest(m) => {
                w.u16(m.command_sequence_number)
            }
            MibUploadNextResponse(m) => {
                for r in &m.records {
                    if format == Format::Extended {
                        // encoded_len bounded each record's values by u16::MAX.
                        w.u16(r.values.len() as u16);
                    }
                    w.u16(r.me.class.0);
                    w.u16(r.me.instance);
                    w.u16(r.attribute_mask);
                    w.bytes(&r.values);
                }
            }
            GetAllAlarmsNextResponse(m) => {
                for r in &m.records {
                    w.u16(r.me.class.0);
                    w.u16(r.me.instance);
                    w.bytes(&r.bitmap);
                }
            }
            GetResponse(m) => {
                w.u8(m.result.as_u8());
                w.u16(m.attributes.attribute_mask());
                match format {
                    Format::Baseline => {
                        m.attributes
                            .write(&mut w.out[3..3 + BASELINE_GET_VALUES_LEN]);
                        w.at = 3 + BASELINE_GET_VALUES_LEN;
                        w.u16(m.optional_attribute_mask);
                        w.u16(m.attribute_execution_mask);
                    }
                    Format::Extended => {
                        w.u16(m.optional_attribute_mask);
                        w.u16(m.attribute_execution_mask);
                        let n = m.attributes.encoded_len();
                        m.attributes.write(&mut w.out[w.at..w.at + n]);
                    }
                }
            }
            AttributeValueChange(m) => {
                w.u16(m.attributes.attribute_mask());
                let n = m.attributes.encoded_len();
                m.attributes.write(&mut w.out[w.at..w.at + n]);
            }
            Other(o) => w.bytes(&o.contents),
        }
    }
}

mod wire;

pub(crate) use wire::addr;
use wire::*;
