//! Scripted targets for the conformance suite ([`crate::sim::Script`]): what the suite must be
//! right about without ever having seen it.
//!
//! - [`mib`]: the ONU core's MIB synchronisation (ONU data and its MIB data sync, MIB reset,
//!   MIB upload and MIB upload next, Get all alarms) written again in front of it, with a
//!   [`MibFlaw`] that breaks one rule, so that each MIB check can be seen to fail.
//! - [`garbage`]: answers every request with bytes that are no answer.
//!
//! Each stands in front of a real ONU core and answers what it scripts; everything else goes
//! to the core.

use std::borrow::Cow;
use std::time::Instant;

use omci_codec::contents::{
    AlarmRecord, AttributeValues, BASELINE_GET_VALUES_LEN, BASELINE_MIB_UPLOAD_VALUES_LEN,
    Contents, GetAllAlarmsNextResponse, GetAllAlarmsResponse, GetResponse, MibUploadNextResponse,
    MibUploadRecord, MibUploadResponse,
};
use omci_codec::envelope::Envelope;
use omci_codec::{Codec, ExtendedTrailer, MeClass, MeId, Message, OnuId, ResultCode};
use onu::core::Onu;
use onu::flash::MemFlash;

use crate::sim::Script;

/// The lab transport's codec (extended frames with a CRC-32 trailer).
fn codec() -> Codec {
    Codec::new(ExtendedTrailer::Crc32)
}

/// The request a lab datagram carries, with its ONU.
fn request(d: &[u8]) -> Option<(OnuId, Message<'static>)> {
    let (env, frame) = Envelope::parse(d).ok()?;
    let m = codec().parse(frame).ok()?;
    Some((env.onu_id, m.into_owned()))
}

/// The lab datagram of `contents` answering `req` for ONU `onu`.
fn answer(onu: OnuId, req: &Message<'_>, contents: Contents<'_>) -> Vec<u8> {
    let resp = Message::new(req.tci, req.format, req.me, contents);
    Envelope::omcc(onu).wrap(&codec().to_vec(&resp).expect("a response that encodes"))
}

/// An ONU that answers every request with a datagram that is no answer (a frame with its
/// TCI changed and its bytes scrambled).
pub fn garbage() -> Script {
    Box::new(|_now: Instant, d: &[u8], _onu: Option<&Onu<MemFlash>>| {
        let (onu, req) = request(d)?;
        if !req.ar {
            return Some(Vec::new());
        }
        let mut g = answer(
            onu,
            &req,
            Contents::GetResponse(GetResponse {
                result: ResultCode::Success,
                attributes: AttributeValues::Raw {
                    attribute_mask: 0,
                    values: Cow::Owned(vec![0x5a; BASELINE_GET_VALUES_LEN]),
                },
                optional_attribute_mask: 0,
                attribute_execution_mask: 0,
            }),
        );
        // Another TCI, and a CRC that no longer matches.
        g[16] ^= 0xFF;
        let n = g.len();
        g[n - 1] ^= 0x01;
        Some(vec![g])
    })
}

/// Ways a MIB can be wrong, each breaking one MIB check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MibFlaw {
    /// None: the MIB as the ONU core has it (core/mib.rs).
    None,
    /// MIB upload and Get all alarms, and their next commands, answered with a result byte
    /// "not supported" and zeros, where G.988 puts a count or a record (as the ONU answered
    /// before it had a MIB).
    ResultByte,
    /// MIB reset leaves the MIB data sync as it was (MIB-01).
    SyncNotReset,
    /// MIB upload announces one command more than there are records (MIB-02).
    CountOneMore,
    /// The upload has no ANI-G (MIB-03).
    NoAniG,
    /// The upload's software images swap their committed flags (MIB-03).
    StaleSoftwareImage,
    /// Get all alarms announces an alarm whose next command names no ME (MIB-04).
    GhostAlarm,
}

/// The ONU core's MIB, written again in front of it, with `flaw`.
pub fn mib(flaw: MibFlaw) -> Script {
    let every_image_valid = false;
    let mut sync: u8 = 1;
    let mut snapshot: Vec<MibUploadRecord<'static>> = Vec::new();
    let mut alarms: Vec<AlarmRecord> = Vec::new();
    Box::new(
        move |_now: Instant, d: &[u8], core: Option<&Onu<MemFlash>>| {
            let (onu, req) = request(d)?;
            let onu_data = MeId::new(MeClass::ONU_DATA, 0);
            if flaw == MibFlaw::ResultByte {
                let result_byte = MeId::new(MeClass(0x0200), 0);
                let contents = match &req.contents {
                    Contents::MibUploadRequest => Contents::MibUploadResponse(MibUploadResponse {
                        subsequent_commands: 0x0200,
                    }),
                    Contents::MibUploadNextRequest(_) => {
                        Contents::MibUploadNextResponse(MibUploadNextResponse {
                            records: vec![MibUploadRecord {
                                me: result_byte,
                                attribute_mask: 0,
                                values: Cow::Owned(vec![0; BASELINE_MIB_UPLOAD_VALUES_LEN]),
                            }],
                        })
                    }
                    Contents::GetAllAlarmsRequest(_) => {
                        Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
                            subsequent_commands: 0x0200,
                        })
                    }
                    Contents::GetAllAlarmsNextRequest(_) => {
                        Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
                            records: vec![AlarmRecord {
                                me: result_byte,
                                bitmap: [0; 28],
                            }],
                        })
                    }
                    _ => return None,
                };
                return Some(vec![answer(onu, &req, contents)]);
            }
            let contents = match &req.contents {
                Contents::GetRequest(g) if req.me == onu_data => {
                    let mut values = vec![0u8; BASELINE_GET_VALUES_LEN];
                    let (result, mask) = if g.attribute_mask == 0x8000 {
                        values[0] = sync;
                        (ResultCode::Success, 0x8000)
                    } else {
                        (ResultCode::AttributeFailure, 0)
                    };
                    Contents::GetResponse(GetResponse {
                        result,
                        attributes: AttributeValues::Raw {
                            attribute_mask: mask,
                            values: Cow::Owned(values),
                        },
                        optional_attribute_mask: 0,
                        attribute_execution_mask: g.attribute_mask & !0x8000,
                    })
                }
                Contents::MibResetRequest if req.me == onu_data => {
                    if flaw != MibFlaw::SyncNotReset {
                        sync = 0;
                    }
                    Contents::MibResetResponse {
                        result: ResultCode::Success,
                    }
                }
                Contents::MibUploadRequest if req.me == onu_data => {
                    snapshot = records(core?, sync, flaw, every_image_valid);
                    let extra = u16::from(flaw == MibFlaw::CountOneMore);
                    Contents::MibUploadResponse(MibUploadResponse {
                        subsequent_commands: snapshot.len() as u16 + extra,
                    })
                }
                Contents::MibUploadNextRequest(n) if req.me == onu_data => {
                    let record = snapshot
                        .get(usize::from(n.command_sequence_number))
                        .cloned()
                        .unwrap_or(MibUploadRecord {
                            me: MeId::new(MeClass(0), 0),
                            attribute_mask: 0,
                            values: Cow::Owned(vec![0; BASELINE_MIB_UPLOAD_VALUES_LEN]),
                        });
                    Contents::MibUploadNextResponse(MibUploadNextResponse {
                        records: vec![record],
                    })
                }
                Contents::GetAllAlarmsRequest(_) if req.me == onu_data => {
                    alarms = Vec::new();
                    let count = u16::from(flaw == MibFlaw::GhostAlarm);
                    Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
                        subsequent_commands: alarms.len() as u16 + count,
                    })
                }
                Contents::GetAllAlarmsNextRequest(n) if req.me == onu_data => {
                    let record = alarms
                        .get(usize::from(n.command_sequence_number))
                        .copied()
                        .unwrap_or(AlarmRecord {
                            me: MeId::new(MeClass(0), 0),
                            bitmap: [0; 28],
                        });
                    Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
                        records: vec![record],
                    })
                }
                _ => return None,
            };
            Some(vec![answer(onu, &req, contents)])
        },
    )
}

/// One record of 26 value bytes.
fn record(class: u16, instance: u16, mask: u16, values: &[u8]) -> MibUploadRecord<'static> {
    let mut v = values.to_vec();
    v.resize(BASELINE_MIB_UPLOAD_VALUES_LEN, 0);
    MibUploadRecord {
        me: MeId::new(MeClass(class), instance),
        attribute_mask: mask,
        values: Cow::Owned(v),
    }
}

/// The MIB of an ONU whose core is `core`: the records docs/conformance.md lists, the software
/// images as the core has them.
fn records(
    core: &Onu<MemFlash>,
    sync: u8,
    flaw: MibFlaw,
    every_image_valid: bool,
) -> Vec<MibUploadRecord<'static>> {
    let meta = core.metadata();
    let mut out = vec![
        record(2, 0, 0x8000, &[sync]),
        // ONU-G: vendor id, version, serial number.
        record(
            256,
            0,
            0xE000,
            &[b"LABO".as_slice(), &[0; 14], b"LABO0001"].concat(),
        ),
        // ONU2-G: equipment id, OMCC version 0xA3.
        record(257, 0, 0xC000, &[[b'L'; 20].as_slice(), &[0xA3]].concat()),
    ];
    for image in 0..2u8 {
        let slot = &meta.slots[usize::from(image)];
        let mut committed = meta.committed == image;
        if flaw == MibFlaw::StaleSoftwareImage {
            committed = !committed;
        }
        let flags = [
            u8::from(committed),
            u8::from(core.running() == image),
            u8::from(slot.valid || every_image_valid),
        ];
        out.push(record(
            7,
            u16::from(image),
            0xF000,
            &[slot.version.as_slice(), &flags].concat(),
        ));
        out.push(record(7, u16::from(image), 0x0800, b"LAB-ONU-1"));
        out.push(record(
            7,
            u16::from(image),
            0x0400,
            &slot.image_sha256[..16],
        ));
    }
    // A circuit pack (the PON interface card) and its ANI-G.
    out.push(record(6, 0x0180, 0x8000, &[248]));
    if flaw != MibFlaw::NoAniG {
        out.push(record(263, 0x8001, 0x8000, &[1]));
    }
    out
}
