//! The JSON form of a message, as `omci decode --json` prints it and `omci encode` reads it.
//!
//! One flat object per frame. Header fields: `tci`, `message_type` (the G.988 name),
//! `message_type_code`, `message` (e.g. "Start software download request"), `ar`, `ak`, `db`,
//! `device_id` (`"baseline"` or `"extended"`), `me_class`, `me_class_name`, `me_instance`,
//! `crc_ok` (null where the frame has no CRC) and, for MIC-protected frames, `mic_ok`. Then the
//! typed contents with G.988 field names: `window_size` (sections per window: the wire carries
//! it less one), `image_size`, `instances`, `section_number`, `data` (hex), `crc`, `result`,
//! `activate_flags`, `reboot_condition`, `attribute_mask`, `attributes` (class 7, by name) or
//! `attribute_values` (hex), `optional_attribute_mask`, `attribute_execution_mask`,
//! `subsequent_commands`, `command_sequence_number`, `alarm_retrieval_mode`, `records` (MIB
//! upload next), `alarms` (Get all alarms next), and `contents` (hex) for messages without a
//! typed form. Integers are JSON numbers; byte
//! strings are lowercase hex; string attributes are text (bytes as Latin-1, NUL padding cut).
//!
//! [`from_json`] is the inverse of [`to_json`]: every field it does not know is an error, so
//! a typo never goes unnoticed. Informational fields (`message`, `me_class_name`, `abort`)
//! are accepted and ignored.

use std::borrow::Cow;

use serde_json::{Map, Value, json};

use crate::contents::{
    ALARM_BITMAP_LEN, ActivateSoftwareRequest, AlarmRecord, AttributeValueChange, AttributeValues,
    BASELINE_AVC_VALUES_LEN, BASELINE_CONTENTS_LEN, BASELINE_GET_VALUES_LEN,
    BASELINE_MIB_UPLOAD_VALUES_LEN, BASELINE_SECTION_DATA_LEN, Contents, DownloadSectionRequest,
    DownloadSectionResponse, EndSoftwareDownloadRequest, EndSoftwareDownloadResponse,
    GetAllAlarmsNextResponse, GetAllAlarmsRequest, GetAllAlarmsResponse, GetRequest, GetResponse,
    InstanceList, InstanceResult, InstanceResults, MibUploadNextResponse, MibUploadRecord,
    MibUploadResponse, NextRequest, OtherMessage, RebootRequest, StartSoftwareDownloadRequest,
    StartSoftwareDownloadResponse,
};
use crate::frame::{Decoded, Format, Integrity, Message};
use crate::ids::{MeClass, MeId, Tci};
use crate::message_type::MessageType;
use crate::result::ResultCode;
use crate::software_image::{
    IMAGE_HASH_LEN, SoftwareImageAttributes, attribute_string, string_attribute,
};

/// A JSON object that does not describe a message: the field at fault and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct JsonError {
    /// The field at fault.
    pub field: String,
    /// Why.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> JsonError {
    JsonError {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Which trailer an extended frame read from JSON should carry (baseline frames always carry
/// the CRC-32 trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonTrailer {
    /// `crc_ok` and `mic_ok` both null or absent: no trailer.
    None,
    /// `crc_ok` true or false: a CRC-32 trailer.
    Crc32,
    /// `mic_ok` true or false: a MIC trailer (the key comes from elsewhere).
    Mic,
}

/// A message read from JSON, with the trailer its extended frame should carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonFrame {
    /// The message.
    pub message: Message<'static>,
    /// The trailer.
    pub trailer: JsonTrailer,
}

/// The JSON object of a decoded frame.
pub fn to_json(decoded: &Decoded<'_>) -> Value {
    let mut obj = message_fields(&decoded.message);
    obj.insert("crc_ok".into(), json!(decoded.integrity.crc_ok()));
    if let Some(mic_ok) = decoded.integrity.mic_ok() {
        obj.insert("mic_ok".into(), json!(mic_ok));
    }
    if let Integrity::CrcMismatch { found, computed } | Integrity::MicMismatch { found, computed } =
        decoded.integrity
    {
        obj.insert("trailer_found".into(), json!(found));
        obj.insert("trailer_computed".into(), json!(computed));
    }
    Value::Object(obj)
}

/// The header and contents fields of a message (no trailer verdict).
pub fn message_fields(m: &Message<'_>) -> Map<String, Value> {
    let mut o = Map::new();
    let h = m.header();
    o.insert("tci".into(), json!(h.tci.0));
    o.insert(
        "message_type".into(),
        json!(h.message_type.name().map_or_else(
            || format!("Unknown ({})", h.message_type.code()),
            str::to_string
        )),
    );
    o.insert("message_type_code".into(), json!(h.message_type.code()));
    o.insert("message".into(), json!(m.contents.describe()));
    o.insert("ar".into(), json!(h.ar));
    o.insert("ak".into(), json!(h.ak));
    o.insert("db".into(), json!(h.db));
    o.insert("device_id".into(), json!(m.format.name()));
    o.insert("me_class".into(), json!(m.me.class.0));
    if let Some(name) = m.me.class.name() {
        o.insert("me_class_name".into(), json!(name));
    }
    o.insert("me_instance".into(), json!(m.me.instance));
    contents_fields(&m.contents, &mut o);
    o
}

fn instance_results_json(rs: &[InstanceResult]) -> Value {
    Value::Array(
        rs.iter()
            .map(|r| json!({"me_instance": r.me_instance, "result": r.result.as_u8()}))
            .collect(),
    )
}

fn attributes_fields(a: &AttributeValues<'_>, o: &mut Map<String, Value>) {
    o.insert("attribute_mask".into(), json!(a.attribute_mask()));
    match a {
        AttributeValues::SoftwareImage(s) => {
            let mut attrs = Map::new();
            if let Some(v) = &s.version {
                attrs.insert("version".into(), json!(attribute_string(v)));
            }
            if let Some(v) = s.is_committed {
                attrs.insert("is_committed".into(), json!(v));
            }
            if let Some(v) = s.is_active {
                attrs.insert("is_active".into(), json!(v));
            }
            if let Some(v) = s.is_valid {
                attrs.insert("is_valid".into(), json!(v));
            }
            if let Some(v) = &s.product_code {
                attrs.insert("product_code".into(), json!(attribute_string(v)));
            }
            if let Some(v) = &s.image_hash {
                attrs.insert("image_hash".into(), json!(hex::encode(v)));
            }
            o.insert("attributes".into(), Value::Object(attrs));
        }
        AttributeValues::Raw { values, .. } => {
            o.insert("attribute_values".into(), json!(hex::encode(values)));
        }
    }
}

fn contents_fields(c: &Contents<'_>, o: &mut Map<String, Value>) {
    use Contents::*;
    let mut put = |k: &str, v: Value| {
        o.insert(k.into(), v);
    };
    match c {
        StartSoftwareDownloadRequest(m) => {
            put("window_size", json!(m.window_size()));
            put("image_size", json!(m.image_size));
            put("instances", json!(m.instances.as_slice()));
        }
        StartSoftwareDownloadResponse(m) => {
            put("result", json!(m.result.as_u8()));
            put("window_size", json!(m.window_size()));
            put("instances", instance_results_json(&m.instances));
        }
        DownloadSectionRequest(m) => {
            put("section_number", json!(m.section_number));
            put("data", json!(hex::encode(&m.data)));
        }
        DownloadSectionResponse(m) => {
            put("result", json!(m.result.as_u8()));
            put("section_number", json!(m.section_number));
        }
        EndSoftwareDownloadRequest(m) => {
            put("crc", json!(m.crc));
            put("image_size", json!(m.image_size));
            put("instances", json!(m.instances.as_slice()));
            if m.is_abort() {
                put("abort", json!(true));
            }
        }
        EndSoftwareDownloadResponse(m) => {
            put("result", json!(m.result.as_u8()));
            put("instances", instance_results_json(&m.instances));
        }
        ActivateSoftwareRequest(m) => put("activate_flags", json!(m.activate_flags)),
        RebootRequest(m) => put("reboot_condition", json!(m.reboot_condition)),
        ActivateSoftwareResponse { result }
        | CommitSoftwareResponse { result }
        | MibResetResponse { result }
        | RebootResponse { result } => put("result", json!(result.as_u8())),
        CommitSoftwareRequest | MibResetRequest => {}
        GetRequest(m) => put("attribute_mask", json!(m.attribute_mask)),
        GetResponse(m) => {
            put("result", json!(m.result.as_u8()));
            put("optional_attribute_mask", json!(m.optional_attribute_mask));
            put(
                "attribute_execution_mask",
                json!(m.attribute_execution_mask),
            );
            attributes_fields(&m.attributes, o);
        }
        AttributeValueChange(m) => attributes_fields(&m.attributes, o),
        MibUploadRequest => {}
        MibUploadResponse(m) => put("subsequent_commands", json!(m.subsequent_commands)),
        GetAllAlarmsResponse(m) => put("subsequent_commands", json!(m.subsequent_commands)),
        MibUploadNextRequest(m) | GetAllAlarmsNextRequest(m) => {
            put("command_sequence_number", json!(m.command_sequence_number))
        }
        GetAllAlarmsRequest(m) => put("alarm_retrieval_mode", json!(m.alarm_retrieval_mode)),
        MibUploadNextResponse(m) => put(
            "records",
            Value::Array(
                m.records
                    .iter()
                    .map(|r| {
                        json!({"me_class": r.me.class.0, "me_instance": r.me.instance,
                            "attribute_mask": r.attribute_mask,
                            "attribute_values": hex::encode(&r.values)})
                    })
                    .collect(),
            ),
        ),
        GetAllAlarmsNextResponse(m) => put(
            "alarms",
            Value::Array(
                m.records
                    .iter()
                    .map(|r| {
                        json!({"me_class": r.me.class.0, "me_instance": r.me.instance,
                            "alarm_bitmap": hex::encode(r.bitmap)})
                    })
                    .collect(),
            ),
        ),
        Other(m) => put("contents", json!(hex::encode(&m.contents))),
    }
}

// --------------------------------------------------------------------------------------------
// Reading

/// Fields every object may carry; the informational ones are read and ignored.
const COMMON: &[&str] = &[
    "tci",
    "message_type",
    "message_type_code",
    "message",
    "ar",
    "ak",
    "db",
    "device_id",
    "me_class",
    "me_class_name",
    "me_instance",
    "crc_ok",
    "mic_ok",
    "trailer_found",
    "trailer_computed",
    "abort",
];

/// Every contents field some message has: a key outside this list and [`COMMON`] is a typo.
const CONTENTS_FIELDS: &[&str] = &[
    "window_size",
    "image_size",
    "instances",
    "section_number",
    "data",
    "crc",
    "result",
    "activate_flags",
    "reboot_condition",
    "attribute_mask",
    "attributes",
    "attribute_values",
    "optional_attribute_mask",
    "attribute_execution_mask",
    "subsequent_commands",
    "command_sequence_number",
    "alarm_retrieval_mode",
    "records",
    "alarms",
    "contents",
];

/// The first key no message has, with the nearest real field name as a suggestion.
fn unknown_key(map: &Map<String, Value>) -> Option<JsonError> {
    let key = map
        .keys()
        .find(|k| !COMMON.contains(&k.as_str()) && !CONTENTS_FIELDS.contains(&k.as_str()))?;
    let nearest = COMMON
        .iter()
        .chain(CONTENTS_FIELDS)
        .map(|f| (strsim::levenshtein(key, f), *f))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, f)| format!(" (did you mean `{f}`?)"))
        .unwrap_or_default();
    Some(err(key, format!("unknown field{nearest}")))
}

/// An object being read, remembering which keys were used.
struct Reader<'v> {
    map: &'v Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'v> Reader<'v> {
    fn get(&mut self, key: &'static str) -> Option<&'v Value> {
        self.used.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn uint(&mut self, key: &'static str, max: u64) -> Result<u64, JsonError> {
        let v = self.get(key).ok_or_else(|| err(key, "missing"))?;
        let n = v
            .as_u64()
            .ok_or_else(|| err(key, format!("expected a whole number, got {v}")))?;
        if n > max {
            return Err(err(key, format!("{n} is out of range (0..={max})")));
        }
        Ok(n)
    }

    fn uint_or(&mut self, key: &'static str, max: u64, default: u64) -> Result<u64, JsonError> {
        if self.map.get(key).is_none_or(Value::is_null) {
            self.used.push(key);
            return Ok(default);
        }
        self.uint(key, max)
    }

    fn boolean_or(&mut self, key: &'static str, default: bool) -> Result<bool, JsonError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| err(key, format!("expected true or false, got {v}"))),
        }
    }

    fn text(&mut self, key: &'static str) -> Result<&'v str, JsonError> {
        let v = self.get(key).ok_or_else(|| err(key, "missing"))?;
        v.as_str()
            .ok_or_else(|| err(key, format!("expected a string, got {v}")))
    }

    fn hex(&mut self, key: &'static str) -> Result<Vec<u8>, JsonError> {
        let s = self.text(key)?;
        hex::decode(s).map_err(|e| err(key, format!("not hex: {e}")))
    }

    fn result(&mut self) -> Result<ResultCode, JsonError> {
        Ok(ResultCode::from_u8(self.uint("result", 255)? as u8))
    }

    fn window(&mut self) -> Result<u8, JsonError> {
        let w = self.uint("window_size", 256)?;
        if w == 0 {
            return Err(err("window_size", "0 is out of range (1..=256)"));
        }
        Ok((w - 1) as u8)
    }

    fn instances(&mut self) -> Result<InstanceList, JsonError> {
        let v = self
            .get("instances")
            .ok_or_else(|| err("instances", "missing"))?;
        let arr = v
            .as_array()
            .ok_or_else(|| err("instances", "expected an array of ME instance numbers"))?;
        arr.iter()
            .map(|x| {
                x.as_u64()
                    .filter(|n| *n <= 0xFFFF)
                    .map(|n| n as u16)
                    .ok_or_else(|| {
                        err(
                            "instances",
                            format!("{x} is not an ME instance (0..=65535)"),
                        )
                    })
            })
            .collect()
    }

    fn instance_results(&mut self) -> Result<InstanceResults, JsonError> {
        let v = self
            .get("instances")
            .ok_or_else(|| err("instances", "missing"))?;
        let arr = v.as_array().ok_or_else(|| {
            err(
                "instances",
                "expected an array of {\"me_instance\": n, \"result\": n}",
            )
        })?;
        arr.iter()
            .map(|x| {
                let me_instance = x
                    .get("me_instance")
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= 0xFFFF);
                let result = x
                    .get("result")
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= 255);
                match (me_instance, result, x.as_object().map(Map::len)) {
                    (Some(i), Some(r), Some(2)) => Ok(InstanceResult {
                        me_instance: i as u16,
                        result: ResultCode::from_u8(r as u8),
                    }),
                    _ => Err(err(
                        "instances",
                        format!("{x} is not {{\"me_instance\": 0..=65535, \"result\": 0..=255}}"),
                    )),
                }
            })
            .collect()
    }

    fn attributes(
        &mut self,
        me: MeId,
        pad: impl Fn(Vec<u8>) -> Vec<u8>,
    ) -> Result<AttributeValues<'static>, JsonError> {
        let mask = self.get("attribute_mask").map(|_| ());
        let typed = self.get("attributes");
        let raw = self.get("attribute_values");
        match (typed, raw) {
            (Some(_), Some(_)) => Err(err(
                "attributes",
                "give either `attributes` or `attribute_values`, not both",
            )),
            (Some(t), None) => {
                if me.class != MeClass::SOFTWARE_IMAGE {
                    return Err(err(
                        "attributes",
                        "typed attributes exist for the Software image ME (class 7) only; \
                         give `attribute_values` in hex for other classes",
                    ));
                }
                let attrs = software_image_attributes(t)?;
                if mask.is_some() {
                    let given = self.uint("attribute_mask", 0xFFFF)? as u16;
                    if given != attrs.mask() {
                        return Err(err(
                            "attribute_mask",
                            format!(
                                "0x{given:04x} disagrees with the attributes given (0x{:04x})",
                                attrs.mask()
                            ),
                        ));
                    }
                }
                Ok(AttributeValues::SoftwareImage(Box::new(attrs)))
            }
            (None, Some(_)) => Ok(AttributeValues::Raw {
                attribute_mask: self.uint("attribute_mask", 0xFFFF)? as u16,
                values: Cow::Owned(pad(self.hex("attribute_values")?)),
            }),
            (None, None) => Ok(AttributeValues::Raw {
                attribute_mask: self.uint_or("attribute_mask", 0xFFFF, 0)? as u16,
                values: Cow::Owned(pad(Vec::new())),
            }),
        }
    }

    /// The `records` of a MIB upload next response; baseline values are zero padded to 26.
    fn mib_records(&mut self, format: Format) -> Result<Vec<MibUploadRecord<'static>>, JsonError> {
        let v = self
            .get("records")
            .ok_or_else(|| err("records", "missing"))?;
        let arr = v.as_array().ok_or_else(|| {
            err(
                "records",
                "expected an array of {\"me_class\", \"me_instance\", \"attribute_mask\", \"attribute_values\"}",
            )
        })?;
        arr.iter()
            .map(|x| {
                let bad = || {
                    err(
                        "records",
                        format!(
                            "{x} is not {{\"me_class\": 0..=65535, \"me_instance\": 0..=65535, \"attribute_mask\": 0..=65535, \"attribute_values\": hex}}"
                        ),
                    )
                };
                let obj = x.as_object().filter(|o| o.len() == 4).ok_or_else(bad)?;
                let n = |k: &str| {
                    obj.get(k)
                        .and_then(Value::as_u64)
                        .filter(|n| *n <= 0xFFFF)
                        .map(|n| n as u16)
                        .ok_or_else(bad)
                };
                let mut values = obj
                    .get("attribute_values")
                    .and_then(Value::as_str)
                    .and_then(|h| hex::decode(h).ok())
                    .ok_or_else(bad)?;
                if format == Format::Baseline && values.len() < BASELINE_MIB_UPLOAD_VALUES_LEN {
                    values.resize(BASELINE_MIB_UPLOAD_VALUES_LEN, 0);
                }
                Ok(MibUploadRecord {
                    me: MeId::new(MeClass(n("me_class")?), n("me_instance")?),
                    attribute_mask: n("attribute_mask")?,
                    values: Cow::Owned(values),
                })
            })
            .collect()
    }

    /// The `alarms` of a Get all alarms next response; a short bitmap is zero padded.
    fn alarm_records(&mut self) -> Result<Vec<AlarmRecord>, JsonError> {
        let v = self.get("alarms").ok_or_else(|| err("alarms", "missing"))?;
        let arr = v.as_array().ok_or_else(|| {
            err(
                "alarms",
                "expected an array of {\"me_class\", \"me_instance\", \"alarm_bitmap\"}",
            )
        })?;
        arr.iter()
            .map(|x| {
                let bad = || {
                    err(
                        "alarms",
                        format!(
                            "{x} is not {{\"me_class\": 0..=65535, \"me_instance\": 0..=65535, \"alarm_bitmap\": up to 28 bytes of hex}}"
                        ),
                    )
                };
                let obj = x.as_object().filter(|o| o.len() == 3).ok_or_else(bad)?;
                let n = |k: &str| {
                    obj.get(k)
                        .and_then(Value::as_u64)
                        .filter(|n| *n <= 0xFFFF)
                        .map(|n| n as u16)
                        .ok_or_else(bad)
                };
                let bytes = obj
                    .get("alarm_bitmap")
                    .and_then(Value::as_str)
                    .and_then(|h| hex::decode(h).ok())
                    .filter(|b| b.len() <= ALARM_BITMAP_LEN)
                    .ok_or_else(bad)?;
                let mut bitmap = [0u8; ALARM_BITMAP_LEN];
                bitmap[..bytes.len()].copy_from_slice(&bytes);
                Ok(AlarmRecord {
                    me: MeId::new(MeClass(n("me_class")?), n("me_instance")?),
                    bitmap,
                })
            })
            .collect()
    }

    fn finish(self) -> Result<(), JsonError> {
        for key in self.map.keys() {
            if !COMMON.contains(&key.as_str()) && !self.used.contains(&key.as_str()) {
                return Err(err(key, "unknown field for this message"));
            }
        }
        Ok(())
    }
}

fn software_image_attributes(v: &Value) -> Result<SoftwareImageAttributes, JsonError> {
    let obj = v
        .as_object()
        .ok_or_else(|| err("attributes", "expected an object"))?;
    let mut a = SoftwareImageAttributes::default();
    for (k, val) in obj {
        let field = format!("attributes.{k}");
        let text = || {
            val.as_str()
                .ok_or_else(|| err(&field, format!("expected a string, got {val}")))
        };
        let flag = || {
            val.as_bool()
                .ok_or_else(|| err(&field, format!("expected true or false, got {val}")))
        };
        match k.as_str() {
            "version" => {
                a.version = Some(string_attribute(text()?).map_err(|e| err(&field, e.to_string()))?)
            }
            "product_code" => {
                a.product_code =
                    Some(string_attribute(text()?).map_err(|e| err(&field, e.to_string()))?)
            }
            "image_hash" => {
                let bytes = hex::decode(text()?).map_err(|e| err(&field, e.to_string()))?;
                let arr: [u8; IMAGE_HASH_LEN] = bytes
                    .try_into()
                    .map_err(|_| err(&field, "expected 16 bytes of hex"))?;
                a.image_hash = Some(arr);
            }
            "is_committed" => a.is_committed = Some(flag()?),
            "is_active" => a.is_active = Some(flag()?),
            "is_valid" => a.is_valid = Some(flag()?),
            _ => {
                return Err(err(
                    &field,
                    "not a Software image attribute (version, is_committed, is_active, \
                     is_valid, product_code, image_hash)",
                ));
            }
        }
    }
    Ok(a)
}

/// Reads the message an object describes: the inverse of [`to_json`].
pub fn from_json(v: &Value) -> Result<JsonFrame, JsonError> {
    let map = v
        .as_object()
        .ok_or_else(|| err("(frame)", "expected a JSON object"))?;
    if let Some(typo) = unknown_key(map) {
        return Err(typo);
    }
    let mut r = Reader {
        map,
        used: Vec::new(),
    };
    let tci = Tci(r.uint("tci", 0xFFFF)? as u16);
    let message_type = match (r.get("message_type"), r.get("message_type_code")) {
        (_, Some(code)) => {
            let code = code
                .as_u64()
                .filter(|c| *c < 32)
                .ok_or_else(|| err("message_type_code", format!("{code} is not 0..=31")))?;
            let mt = MessageType::from_code(code as u8);
            if let Some(name) = map.get("message_type").filter(|v| !v.is_null()) {
                let name = name
                    .as_str()
                    .ok_or_else(|| err("message_type", "expected a G.988 message type name"))?;
                // The decoder writes "Unknown (n)" for a code G.988 gives no name.
                let agrees = match MessageType::from_name(name) {
                    Some(named) => named == mt,
                    None => name == format!("Unknown ({code})"),
                };
                if !agrees {
                    return Err(err(
                        "message_type",
                        format!("{name:?} disagrees with message_type_code {code}"),
                    ));
                }
            }
            mt
        }
        (Some(name), None) => {
            let name = name
                .as_str()
                .ok_or_else(|| err("message_type", "expected a G.988 message type name"))?;
            MessageType::from_name(name).ok_or_else(|| {
                err(
                    "message_type",
                    format!("{name:?} is not a G.988 message type name (e.g. \"Start software download\")"),
                )
            })?
        }
        (None, None) => return Err(err("message_type", "missing")),
    };
    let ak = r.boolean_or("ak", false)?;
    let format = match r.text("device_id")? {
        "baseline" => Format::Baseline,
        "extended" => Format::Extended,
        other => {
            return Err(err(
                "device_id",
                format!("{other:?} is not \"baseline\" or \"extended\""),
            ));
        }
    };
    let me = MeId::new(
        MeClass(r.uint("me_class", 0xFFFF)? as u16),
        r.uint("me_instance", 0xFFFF)? as u16,
    );
    let contents = read_contents(&mut r, message_type, ak, me, format)?;
    let default_ar = !ak && !message_type.is_notification();
    let ar = r.boolean_or("ar", default_ar)?;
    let db = r.boolean_or("db", false)?;
    let trailer = if format == Format::Baseline {
        JsonTrailer::None
    } else if map.get("mic_ok").is_some_and(|v| !v.is_null()) {
        JsonTrailer::Mic
    } else if map.get("crc_ok").is_some_and(|v| !v.is_null()) {
        JsonTrailer::Crc32
    } else {
        JsonTrailer::None
    };
    r.finish()?;
    Ok(JsonFrame {
        message: Message {
            tci,
            ar,
            db,
            format,
            me,
            contents,
        },
        trailer,
    })
}

fn read_contents(
    r: &mut Reader<'_>,
    message_type: MessageType,
    ak: bool,
    me: MeId,
    format: Format,
) -> Result<Contents<'static>, JsonError> {
    use MessageType as T;
    // A baseline frame's fixed-size fields are zero padded: a person writing JSON need not
    // count bytes (longer than the field is still an error, reported by the emitter).
    let pad = |mut bytes: Vec<u8>, size: usize| {
        if format == Format::Baseline && bytes.len() < size {
            bytes.resize(size, 0);
        }
        bytes
    };
    Ok(match (message_type, ak) {
        (T::StartSoftwareDownload, false) => {
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: r.window()?,
                image_size: r.uint("image_size", u64::from(u32::MAX))? as u32,
                instances: r.instances()?,
            })
        }
        (T::StartSoftwareDownload, true) => {
            Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                result: r.result()?,
                window_size_minus_one: r.window()?,
                instances: r.instance_results()?,
            })
        }
        (T::DownloadSection, false) => Contents::DownloadSectionRequest(DownloadSectionRequest {
            section_number: r.uint("section_number", 255)? as u8,
            data: Cow::Owned(pad(r.hex("data")?, BASELINE_SECTION_DATA_LEN)),
        }),
        (T::DownloadSection, true) => Contents::DownloadSectionResponse(DownloadSectionResponse {
            result: r.result()?,
            section_number: r.uint("section_number", 255)? as u8,
        }),
        (T::EndSoftwareDownload, false) => {
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc: r.uint("crc", u64::from(u32::MAX))? as u32,
                image_size: r.uint("image_size", u64::from(u32::MAX))? as u32,
                instances: r.instances()?,
            })
        }
        (T::EndSoftwareDownload, true) => {
            Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                result: r.result()?,
                instances: r.instance_results()?,
            })
        }
        (T::ActivateSoftware, false) => {
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                activate_flags: r.uint("activate_flags", 255)? as u8,
            })
        }
        (T::ActivateSoftware, true) => Contents::ActivateSoftwareResponse {
            result: r.result()?,
        },
        (T::CommitSoftware, false) => Contents::CommitSoftwareRequest,
        (T::CommitSoftware, true) => Contents::CommitSoftwareResponse {
            result: r.result()?,
        },
        (T::Get, false) => Contents::GetRequest(GetRequest {
            attribute_mask: r.uint("attribute_mask", 0xFFFF)? as u16,
        }),
        (T::Get, true) => Contents::GetResponse(GetResponse {
            result: r.result()?,
            optional_attribute_mask: r.uint_or("optional_attribute_mask", 0xFFFF, 0)? as u16,
            attribute_execution_mask: r.uint_or("attribute_execution_mask", 0xFFFF, 0)? as u16,
            attributes: r.attributes(me, |v| pad(v, BASELINE_GET_VALUES_LEN))?,
        }),
        (T::MibReset, false) => Contents::MibResetRequest,
        (T::MibReset, true) => Contents::MibResetResponse {
            result: r.result()?,
        },
        (T::Reboot, false) => Contents::RebootRequest(RebootRequest {
            reboot_condition: r.uint("reboot_condition", 255)? as u8,
        }),
        (T::Reboot, true) => Contents::RebootResponse {
            result: r.result()?,
        },
        (T::MibUpload, false) => Contents::MibUploadRequest,
        (T::MibUpload, true) => Contents::MibUploadResponse(MibUploadResponse {
            subsequent_commands: r.uint("subsequent_commands", 0xFFFF)? as u16,
        }),
        (T::MibUploadNext, false) => Contents::MibUploadNextRequest(NextRequest {
            command_sequence_number: r.uint("command_sequence_number", 0xFFFF)? as u16,
        }),
        (T::MibUploadNext, true) => Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: r.mib_records(format)?,
        }),
        (T::GetAllAlarms, false) => Contents::GetAllAlarmsRequest(GetAllAlarmsRequest {
            alarm_retrieval_mode: r.uint("alarm_retrieval_mode", 255)? as u8,
        }),
        (T::GetAllAlarms, true) => Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
            subsequent_commands: r.uint("subsequent_commands", 0xFFFF)? as u16,
        }),
        (T::GetAllAlarmsNext, false) => Contents::GetAllAlarmsNextRequest(NextRequest {
            command_sequence_number: r.uint("command_sequence_number", 0xFFFF)? as u16,
        }),
        (T::GetAllAlarmsNext, true) => {
            Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
                records: r.alarm_records()?,
            })
        }
        (T::AttributeValueChange, false) => Contents::AttributeValueChange(AttributeValueChange {
            attributes: r.attributes(me, |v| pad(v, BASELINE_AVC_VALUES_LEN))?,
        }),
        (message_type, ak) => Contents::Other(OtherMessage {
            message_type,
            ak,
            contents: Cow::Owned(pad(r.hex("contents")?, BASELINE_CONTENTS_LEN)),
        }),
    })
}
