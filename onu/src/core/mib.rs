//! The ONU's MIB: the few managed entities an ONU of this kind reports, as G.988 lays them
//! out, and the MIB synchronisation an OLT runs at activation (G.988 I.1.2: MIB reset, MIB
//! upload, MIB upload next until done, Get all alarms and Get all alarms next).
//!
//! | ME (class/instance) | attributes (mask) |
//! |---|---|
//! | ONU data (2/0) | 1 MIB data sync (0x8000) |
//! | ONU-G (256/0) | 1 vendor id, 2 version, 3 serial number (0xE000) |
//! | ONU2-G (257/0) | 1 equipment id, 2 OMCC version 0xA3 (0xC000) |
//! | software image (7/0, 7/1) | version, is committed, is active, is valid (0xF000); product code (0x0800); image hash (0x0400) |
//! | circuit pack (6/0x0180) | 1 type 248, GPON 2488/1244 (0x8000): the PON interface of slot 0x80 |
//! | ANI-G (263/0x8001) | 1 SR indication, true (0x8000): the PON port of that slot |
//!
//! One table (`Onu::mib`) is what Get answers and what MIB upload snapshots, so the two never
//! disagree; the software images come from the live state, which is the flash's metadata.
//! The MIB data sync is 0 after a boot and after MIB reset; this ONU creates, deletes and sets
//! no ME, so nothing moves it. The ONU raises no alarm: Get all alarms announces 0 commands.

use std::borrow::Cow;

use omci_codec::contents::{
    AlarmRecord, BASELINE_MIB_UPLOAD_VALUES_LEN, Contents, GetAllAlarmsNextResponse,
    GetAllAlarmsResponse, MibUploadNextResponse, MibUploadRecord, MibUploadResponse,
};
use omci_codec::software_image::{SoftwareImageId, mask};
use omci_codec::{Format, MeClass, MeId, Message, ResultCode};

use super::{Onu, unknown};
use crate::flash::Flash;

/// Circuit pack (G.988 9.1.6).
pub const CIRCUIT_PACK: MeClass = MeClass(6);
/// The circuit pack of the PON interface: integrated equipment (0x01), slot 0x80.
pub const CIRCUIT_PACK_INSTANCE: u16 = 0x0180;
/// Circuit pack type 248: GPON 2488 Mbit/s down, 1244 Mbit/s up (G.988 table 9.1.5-1).
pub const CIRCUIT_PACK_TYPE: u8 = 248;
/// The ANI-G of that slot's port 1.
pub const ANI_G_INSTANCE: u16 = 0x8001;

/// One ME's attributes: (mask of one attribute, its value), in attribute order.
pub(super) type Attributes = Vec<(u16, Vec<u8>)>;

/// The MEs in upload order, with every attribute they report.
pub(super) struct Mib {
    /// (ME, attributes) in the order MIB upload reports them.
    pub(super) entities: Vec<(MeId, Attributes)>,
}

impl Mib {
    /// The attributes of `me`, or the result that says why there are none (4 unknown ME,
    /// 5 unknown instance).
    pub(super) fn get(&self, me: MeId) -> Result<&Attributes, ResultCode> {
        match self.entities.iter().find(|(id, _)| *id == me) {
            Some((_, a)) => Ok(a),
            None if self.entities.iter().any(|(id, _)| id.class == me.class) => {
                Err(ResultCode::UnknownInstance)
            }
            None => Err(ResultCode::UnknownMe),
        }
    }

    /// The MIB upload's records: each ME's attributes in as few records as fit, one record
    /// per MIB upload next command, never more value bytes than a baseline record holds (so
    /// that the same snapshot serves both formats). An attribute is never split.
    pub(super) fn records(&self) -> Vec<MibUploadRecord<'static>> {
        let mut out = Vec::new();
        for (me, attributes) in &self.entities {
            let mut record = (0u16, Vec::new());
            for (m, v) in attributes {
                if !record.1.is_empty() && record.1.len() + v.len() > BASELINE_MIB_UPLOAD_VALUES_LEN
                {
                    out.push(upload_record(*me, std::mem::take(&mut record)));
                }
                record.0 |= m;
                record.1.extend_from_slice(v);
            }
            if record.0 != 0 {
                out.push(upload_record(*me, record));
            }
        }
        out
    }
}

fn upload_record(me: MeId, (attribute_mask, values): (u16, Vec<u8>)) -> MibUploadRecord<'static> {
    MibUploadRecord {
        me,
        attribute_mask,
        values: Cow::Owned(values),
    }
}

/// `bytes` in a field of `n` bytes: cut, or padded with NULs.
fn field(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut v = bytes[..bytes.len().min(n)].to_vec();
    v.resize(n, 0);
    v
}

/// What a MIB upload next (or Get all alarms next) beyond the announced count is answered
/// with: a record of no ME (class 0, instance 0), nothing set.
fn no_me() -> MeId {
    MeId::new(MeClass(0), 0)
}

impl<F: Flash> Onu<F> {
    /// The MIB as it stands.
    pub(super) fn mib(&self) -> Mib {
        let mut entities = vec![
            (
                MeId::new(MeClass::ONU_DATA, 0),
                vec![(0x8000, vec![self.mib_data_sync])],
            ),
            (
                MeId::new(MeClass::ONU_G, 0),
                vec![
                    (0x8000, self.cfg.vendor_id.to_vec()),
                    (
                        0x4000,
                        self.meta.slots[usize::from(self.running)].version.to_vec(),
                    ),
                    (0x2000, self.cfg.serial_number.to_vec()),
                ],
            ),
            (
                MeId::new(MeClass::ONU2_G, 0),
                // OMCC version 0xA3: G.988 (2010) baseline and extended message sets.
                vec![
                    (0x8000, field(self.cfg.model.as_bytes(), 20)),
                    (0x4000, vec![0xA3]),
                ],
            ),
        ];
        for slot in 0..2u8 {
            let a = self.software_image_attributes(slot);
            entities.push((
                MeId::new(
                    MeClass::SOFTWARE_IMAGE,
                    SoftwareImageId::onu(slot).instance(),
                ),
                vec![
                    (mask::VERSION, a.version.unwrap_or_default().to_vec()),
                    (
                        mask::IS_COMMITTED,
                        vec![u8::from(a.is_committed == Some(true))],
                    ),
                    (mask::IS_ACTIVE, vec![u8::from(a.is_active == Some(true))]),
                    (mask::IS_VALID, vec![u8::from(a.is_valid == Some(true))]),
                    (
                        mask::PRODUCT_CODE,
                        a.product_code.unwrap_or_default().to_vec(),
                    ),
                    (mask::IMAGE_HASH, a.image_hash.unwrap_or_default().to_vec()),
                ],
            ));
        }
        entities.push((
            MeId::new(CIRCUIT_PACK, CIRCUIT_PACK_INSTANCE),
            vec![(0x8000, vec![CIRCUIT_PACK_TYPE])],
        ));
        entities.push((
            MeId::new(MeClass::ANI_G, ANI_G_INSTANCE),
            vec![(0x8000, vec![1])],
        ));
        Mib { entities }
    }

    /// MIB reset, MIB upload, MIB upload next, Get all alarms, Get all alarms next: all on
    /// ONU data instance 0 (another ME: 4 or 5, as the response has a result field; MIB
    /// upload's and Get all alarms' have none, so theirs is dropped and counted instead).
    /// False when `msg` is none of these.
    pub(super) fn on_mib(&mut self, msg: &Message<'_>) -> bool {
        let on_onu_data = msg.me == MeId::new(MeClass::ONU_DATA, 0);
        let contents = match &msg.contents {
            Contents::MibResetRequest if !on_onu_data => {
                self.respond_code(msg, unknown(msg.me, MeClass::ONU_DATA));
                return true;
            }
            Contents::MibResetRequest => {
                self.mib_data_sync = 0;
                self.mib_upload = None;
                self.alarm_upload = None;
                Contents::MibResetResponse {
                    result: ResultCode::Success,
                }
            }
            Contents::MibUploadRequest
            | Contents::MibUploadNextRequest(_)
            | Contents::GetAllAlarmsRequest(_)
            | Contents::GetAllAlarmsNextRequest(_)
                if !on_onu_data =>
            {
                // G.988 gives these responses no result field: an answer would be read as a
                // count or a record. Not answered, counted.
                self.drop_frame(format!(
                    "{} on {}, not ONU data instance 0",
                    msg.message_type(),
                    msg.me
                ));
                return true;
            }
            Contents::MibUploadRequest => {
                let records = self.mib().records();
                let n = records.len() as u16;
                self.mib_upload = Some(records);
                Contents::MibUploadResponse(MibUploadResponse {
                    subsequent_commands: n,
                })
            }
            Contents::MibUploadNextRequest(n) => {
                let record = self
                    .mib_upload
                    .as_ref()
                    .and_then(|r| r.get(usize::from(n.command_sequence_number)))
                    .cloned()
                    .unwrap_or_else(|| MibUploadRecord {
                        me: no_me(),
                        attribute_mask: 0,
                        values: Cow::Owned(Vec::new()),
                    });
                Contents::MibUploadNextResponse(MibUploadNextResponse {
                    records: vec![pad(record, msg.format)],
                })
            }
            Contents::GetAllAlarmsRequest(_) => {
                // No ME of this ONU has an alarm active.
                let alarms: Vec<AlarmRecord> = Vec::new();
                let n = alarms.len() as u16;
                self.alarm_upload = Some(alarms);
                Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
                    subsequent_commands: n,
                })
            }
            Contents::GetAllAlarmsNextRequest(n) => {
                let record = self
                    .alarm_upload
                    .as_ref()
                    .and_then(|a| a.get(usize::from(n.command_sequence_number)))
                    .copied()
                    .unwrap_or(AlarmRecord {
                        me: no_me(),
                        bitmap: [0; omci_codec::contents::ALARM_BITMAP_LEN],
                    });
                Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
                    records: vec![record],
                })
            }
            _ => return false,
        };
        self.respond(msg, contents);
        true
    }
}

/// A record as `format` carries it: on a baseline frame, its values padded to the 26-byte
/// area.
fn pad(mut r: MibUploadRecord<'static>, format: Format) -> MibUploadRecord<'static> {
    if format == Format::Baseline {
        let mut v = r.values.into_owned();
        v.resize(BASELINE_MIB_UPLOAD_VALUES_LEN, 0);
        r.values = Cow::Owned(v);
    }
    r
}
