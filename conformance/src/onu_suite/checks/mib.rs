//! MIB-01..04: the MIB synchronisation an OLT runs when an ONU comes up, before it touches the
//! software image (G.988 I.1.2: MIB reset, MIB upload, MIB upload next until done, Get all
//! alarms): MIB reset (A.3.15) and the MIB data sync it zeroes (9.1.3), MIB upload (A.3.13,
//! A.3.14) and its count, MIB upload next (A.3.16) and the MEs it must hold, Get all alarms
//! (A.3.10..A.3.13).
//!
//! MIB upload's and Get all alarms' responses have no result field: their first bytes are a
//! count. An ONU that does not implement them but answers as if they had a result ("not
//! supported", 2, then zeros) says, read as G.988 reads it, "512 commands follow". The suite
//! tells the two apart by the next command: if the first MIB upload next (Get all alarms next)
//! is answered with the same result byte and zeros where an ME would be, the ONU was saying
//! "not supported", and the check is skipped with that reason; any other result byte there is a
//! failure (the count field is no place for it).

use omci_codec::contents::{
    AlarmRecord, Contents, GetAllAlarmsRequest, MibUploadRecord, NextRequest,
};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{MeClass, MeId, ResultCode};

use super::super::catalogue::{MIB_01, MIB_02, MIB_03, MIB_04};
use super::super::client::Client;
use super::super::report::Verdict;
use super::super::words;
use super::{SuiteError, code, pass_if};

/// ONU data attribute 1, MIB data sync (G.988 9.1.3).
const MIB_DATA_SYNC: u16 = 0x8000;
/// The most MIB upload next (or Get all alarms next) commands the suite sends in one upload.
pub(super) const MAX_COMMANDS: u16 = 4096;
/// Circuit pack (G.988 9.1.6).
const CIRCUIT_PACK: MeClass = MeClass(6);

fn onu_data() -> MeId {
    MeId::new(MeClass::ONU_DATA, 0)
}

/// The result code a count of `n` would be, had the ONU written a result byte and zeros where
/// G.988 puts the count: `Some(code)` when `n` is a non-success result code times 256.
fn result_in_count(n: u16) -> Option<ResultCode> {
    let r = ResultCode::from_u8((n >> 8) as u8);
    (n & 0xFF == 0 && !matches!(r, ResultCode::Success | ResultCode::Unknown(_))).then_some(r)
}

/// What the record of a MIB upload next (or Get all alarms next) is when the ONU wrote a result
/// byte `r` and zeros: ME class `r` × 256, instance 0, nothing set.
fn result_only_mib(records: &[MibUploadRecord<'_>], r: ResultCode) -> bool {
    matches!(records, [one] if one.me == MeId::new(MeClass(u16::from(r.as_u8()) << 8), 0)
        && one.attribute_mask == 0
        && one.values.iter().all(|b| *b == 0))
}

fn result_only_alarm(records: &[AlarmRecord], r: ResultCode) -> bool {
    matches!(records, [one] if one.me == MeId::new(MeClass(u16::from(r.as_u8()) << 8), 0)
        && one.bitmap.iter().all(|b| *b == 0))
}

/// The skip reason for an ONU that answers `what` and its next command with result 2.
fn not_supported(what: &str) -> String {
    format!(
        "the target answered {what} and {what} next with the bytes of result 2, command not supported (G.988 gives these responses no result field: read as a count, 512 commands): it does not implement {what}"
    )
}

/// A result byte where the count belongs, with another code than "not supported".
fn result_byte(what: &str, r: ResultCode, n: u16) -> Verdict {
    pass_if(
        false,
        format!("the number of {what} next commands (G.988 gives the response no result field)"),
        format!(
            "{} written where the count belongs, then zeros (read as G.988 reads it, {n} commands), and the same in {what} next 0",
            words::result(r)
        ),
    )
}

pub(super) async fn checks(c: &mut Client) -> Result<(), SuiteError> {
    // ---------------------------------------------------------------- MIB-01
    let sent = "MIB reset on ONU data, then Get ONU data, mask 0x8000 (MIB data sync)";
    if c.begin(MIB_01, sent).await? {
        let now = c.now();
        let a = c.ask(onu_data(), Contents::MibResetRequest).await?;
        let v = match code(&a) {
            Some(ResultCode::NotSupported) => Verdict::Skip {
                why: "the target answered MIB reset with result 2, command not supported: it does not implement MIB synchronisation".into(),
            },
            Some(ResultCode::Success) => {
                let g = c.get(onu_data(), MIB_DATA_SYNC).await?;
                let expected = "after MIB reset, Get of ONU data (mandatory, G.988 9.1.3) answered with result 0 and MIB data sync 0";
                match g.as_ref().map(|m| &m.contents) {
                    Some(Contents::GetResponse(r))
                        if r.result == ResultCode::Success
                            && r.attributes.attribute_mask() == MIB_DATA_SYNC =>
                    {
                        let sync = match &r.attributes {
                            omci_codec::contents::AttributeValues::Raw { values, .. } => {
                                values.first().copied()
                            }
                            _ => None,
                        };
                        pass_if(
                            sync == Some(0),
                            expected,
                            format!(
                                "MIB data sync {}",
                                sync.map_or("missing".into(), |s| s.to_string())
                            ),
                        )
                    }
                    Some(Contents::GetResponse(r)) => pass_if(
                        false,
                        expected,
                        format!(
                            "{}, attribute mask 0x{:04x}",
                            words::result(r.result),
                            r.attributes.attribute_mask()
                        ),
                    ),
                    _ => pass_if(false, expected, words::answer(&g)),
                }
            }
            _ => pass_if(
                false,
                "MIB reset answered with result 0, command processed successfully",
                words::answer(&a),
            ),
        };
        c.record(MIB_01, sent, v, now);
    }

    // ---------------------------------------------------------------- MIB-02
    let mut uploaded: Option<Vec<MibUploadRecord<'static>>> = None;
    let sent = "MIB upload on ONU data, then MIB upload next 0, 1, ... as many as it announces";
    if c.begin(MIB_02, sent).await? {
        let now = c.now();
        let a = c.ask(onu_data(), Contents::MibUploadRequest).await?;
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::MibUploadResponse(r)) => {
                let n = r.subsequent_commands;
                let first = upload_next(c, 0).await?;
                match (result_in_count(n), &first) {
                    (Some(r), Ok(recs)) if result_only_mib(recs, r) => {
                        if r == ResultCode::NotSupported {
                            Verdict::Skip {
                                why: not_supported("MIB upload"),
                            }
                        } else {
                            result_byte("MIB upload", r, n)
                        }
                    }
                    _ if n == 0 => pass_if(
                        false,
                        "at least one MIB upload next command (ONU data, ONU-G and the software images are in every MIB)",
                        "0 commands",
                    ),
                    _ if n > MAX_COMMANDS => Verdict::Skip {
                        why: format!(
                            "the target announces {n} MIB upload next commands: more than the suite uploads ({MAX_COMMANDS})"
                        ),
                    },
                    _ => {
                        let mut all = Vec::new();
                        let mut problem = None;
                        let mut next = Some(first);
                        for k in 0..n {
                            let got = match next.take() {
                                Some(g) => g,
                                None => upload_next(c, k).await?,
                            };
                            match got {
                                Ok(recs)
                                    if recs.iter().all(|r| r.me.class.0 != 0)
                                        && !recs.is_empty() =>
                                {
                                    all.extend(recs)
                                }
                                Ok(_) => {
                                    problem = Some(format!(
                                        "MIB upload next {k} was answered with no managed entity (ME class 0): the upload ended early"
                                    ));
                                    break;
                                }
                                Err(why) => {
                                    problem = Some(format!("MIB upload next {k}: {why}"));
                                    break;
                                }
                            }
                        }
                        match problem {
                            Some(p) => pass_if(
                                false,
                                format!(
                                    "{n} MIB upload next commands, as the MIB upload response says, each answered with a managed entity"
                                ),
                                p,
                            ),
                            None => {
                                uploaded = Some(all);
                                Verdict::Pass
                            }
                        }
                    }
                }
            }
            _ => pass_if(false, "a MIB upload response", words::answer(&a)),
        };
        c.record(MIB_02, sent, v, now);
    }

    // ---------------------------------------------------------------- MIB-03
    let sent = "(MIB-02's upload), then Get software image 0 and 1";
    if c.begin(MIB_03, sent).await? {
        let now = c.now();
        let v = match &uploaded {
            None => Verdict::Skip {
                why: "needs the MIB upload of MIB-02".into(),
            },
            Some(records) => {
                let imgs = c.images().await?;
                judge_mib(records, &imgs)
            }
        };
        c.record(MIB_03, sent, v, now);
    }

    // ---------------------------------------------------------------- MIB-04
    let sent =
        "Get all alarms (mode 0, every alarm) on ONU data, then Get all alarms next 0, 1, ...";
    if c.begin(MIB_04, sent).await? {
        let now = c.now();
        let a = c
            .ask(
                onu_data(),
                Contents::GetAllAlarmsRequest(GetAllAlarmsRequest {
                    alarm_retrieval_mode: 0,
                }),
            )
            .await?;
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::GetAllAlarmsResponse(r)) => {
                let n = r.subsequent_commands;
                match result_in_count(n) {
                    Some(r) => match alarms_next(c, 0).await? {
                        Ok(recs) if result_only_alarm(&recs, r) => {
                            if r == ResultCode::NotSupported {
                                Verdict::Skip {
                                    why: not_supported("Get all alarms"),
                                }
                            } else {
                                result_byte("Get all alarms", r, n)
                            }
                        }
                        first => judge_alarms(c, n, Some(first), uploaded.as_deref()).await?,
                    },
                    None => judge_alarms(c, n, None, uploaded.as_deref()).await?,
                }
            }
            _ => pass_if(false, "a Get all alarms response", words::answer(&a)),
        };
        c.record(MIB_04, sent, v, now);
    }
    Ok(())
}

/// MIB upload next `seq`: its records, or what it was answered with instead.
async fn upload_next(
    c: &mut Client,
    seq: u16,
) -> Result<Result<Vec<MibUploadRecord<'static>>, String>, SuiteError> {
    let a = c
        .ask(
            onu_data(),
            Contents::MibUploadNextRequest(NextRequest {
                command_sequence_number: seq,
            }),
        )
        .await?;
    Ok(match a.map(|m| m.contents) {
        Some(Contents::MibUploadNextResponse(r)) => Ok(r.records),
        None => Err("no answer".into()),
        Some(other) => Err(format!("answered with a {}", other.describe())),
    })
}

/// Get all alarms next `seq`: its records, or what it was answered with instead.
async fn alarms_next(
    c: &mut Client,
    seq: u16,
) -> Result<Result<Vec<AlarmRecord>, String>, SuiteError> {
    let a = c
        .ask(
            onu_data(),
            Contents::GetAllAlarmsNextRequest(NextRequest {
                command_sequence_number: seq,
            }),
        )
        .await?;
    Ok(match a.map(|m| m.contents) {
        Some(Contents::GetAllAlarmsNextResponse(r)) => Ok(r.records),
        None => Err("no answer".into()),
        Some(other) => Err(format!("answered with a {}", other.describe())),
    })
}

/// The MEs every MIB must upload, with their G.988 names: by class and, where the instance is
/// fixed, by instance.
const EXPECTED: [(MeClass, Option<u16>, &str); 7] = [
    (MeClass::ONU_DATA, Some(0), "ONU data (class 2) instance 0"),
    (MeClass::ONU_G, Some(0), "ONU-G (class 256) instance 0"),
    (MeClass::ONU2_G, Some(0), "ONU2-G (class 257) instance 0"),
    (
        MeClass::SOFTWARE_IMAGE,
        Some(0),
        "software image (class 7) instance 0",
    ),
    (
        MeClass::SOFTWARE_IMAGE,
        Some(1),
        "software image (class 7) instance 1",
    ),
    (CIRCUIT_PACK, None, "a circuit pack (class 6)"),
    (MeClass::ANI_G, None, "an ANI-G (class 263)"),
];

/// MIB-03's verdict: every expected ME is in the upload, and each software image's version and
/// flags, as the upload gives them (merged over its records), are what Get says.
fn judge_mib(
    records: &[MibUploadRecord<'_>],
    imgs: &Result<[SoftwareImageAttributes; 2], String>,
) -> Verdict {
    let missing: Vec<&str> = EXPECTED
        .iter()
        .filter(|(class, instance, _)| {
            !records
                .iter()
                .any(|r| r.me.class == *class && instance.is_none_or(|i| r.me.instance == i))
        })
        .map(|(_, _, name)| *name)
        .collect();
    if !missing.is_empty() {
        return pass_if(
            false,
            "ONU data, ONU-G, ONU2-G, both software images, a circuit pack and an ANI-G in the MIB upload",
            format!(
                "the upload of {} records lacks {}",
                records.len(),
                missing.join(", ")
            ),
        );
    }
    let imgs = match imgs {
        Ok(i) => i,
        Err(why) => {
            return Verdict::Skip {
                why: format!("the uploaded software images cannot be compared: {why}"),
            };
        }
    };
    for (instance, got) in imgs.iter().enumerate() {
        let up = uploaded_image(records, instance as u16);
        let lacks: Vec<&str> = [
            ("version", up.version.is_none()),
            ("is committed", up.is_committed.is_none()),
            ("is active", up.is_active.is_none()),
            ("is valid", up.is_valid.is_none()),
        ]
        .iter()
        .filter(|(_, none)| *none)
        .map(|(n, _)| *n)
        .collect();
        let expected = format!(
            "software image {instance} in the upload as Get shows it: {}",
            words::image(got)
        );
        if !lacks.is_empty() {
            return pass_if(
                false,
                expected,
                format!(
                    "the upload of software image {instance} lacks {}",
                    lacks.join(", ")
                ),
            );
        }
        let same = up.version == got.version
            && up.is_committed == got.is_committed
            && up.is_active == got.is_active
            && up.is_valid == got.is_valid;
        if !same {
            return pass_if(
                false,
                expected,
                format!("the upload says {}", words::image(&up)),
            );
        }
    }
    Verdict::Pass
}

/// Software image `instance` as the upload gives it: the attributes of all its records (an ME's
/// attributes may be spread over several).
fn uploaded_image(records: &[MibUploadRecord<'_>], instance: u16) -> SoftwareImageAttributes {
    let mut merged = SoftwareImageAttributes::default();
    let wanted = MeId::new(MeClass::SOFTWARE_IMAGE, instance);
    for r in records.iter().filter(|r| r.me == wanted) {
        let Some((a, _)) = SoftwareImageAttributes::decode(r.attribute_mask, &r.values) else {
            continue;
        };
        merged.version = merged.version.or(a.version);
        merged.is_committed = merged.is_committed.or(a.is_committed);
        merged.is_active = merged.is_active.or(a.is_active);
        merged.is_valid = merged.is_valid.or(a.is_valid);
        merged.product_code = merged.product_code.or(a.product_code);
        merged.image_hash = merged.image_hash.or(a.image_hash);
    }
    merged
}

/// MIB-04's verdict for a count of `n` (and the first next command's answer, when it was
/// asked already): `n` Get all alarms next commands, each naming an ME of the MIB upload with
/// an alarm set. A count of 0 is judged only for an ONU whose counts MIB-02 showed are counts.
async fn judge_alarms(
    c: &mut Client,
    n: u16,
    mut first: Option<Result<Vec<AlarmRecord>, String>>,
    uploaded: Option<&[MibUploadRecord<'_>]>,
) -> Result<Verdict, SuiteError> {
    if n == 0 {
        return Ok(match uploaded {
            Some(_) => Verdict::Pass,
            None => Verdict::Skip {
                why: "Get all alarms answered 0 alarms, but the MIB upload (MIB-02) did not show that this target's counts are counts: 0 cannot be told from a zeroed answer".into(),
            },
        });
    }
    if n > MAX_COMMANDS {
        return Ok(Verdict::Skip {
            why: format!(
                "the target announces {n} Get all alarms next commands: more than the suite asks ({MAX_COMMANDS})"
            ),
        });
    }
    let expected = format!(
        "{n} Get all alarms next commands, as the Get all alarms response says, each naming a managed entity of the MIB with an alarm set"
    );
    for k in 0..n {
        let got = match first.take() {
            Some(g) => g,
            None => alarms_next(c, k).await?,
        };
        let problem = match got {
            Err(why) => Some(format!("Get all alarms next {k}: {why}")),
            Ok(recs) if recs.is_empty() => {
                Some(format!("Get all alarms next {k} named no managed entity"))
            }
            Ok(recs) => recs.iter().find_map(|r| {
                if r.me.class.0 == 0 {
                    Some(format!(
                        "Get all alarms next {k} named ME class 0: the alarms ended early"
                    ))
                } else if r.bitmap.iter().all(|b| *b == 0) {
                    Some(format!(
                        "Get all alarms next {k} named class {} instance {} with no alarm set",
                        r.me.class.0, r.me.instance
                    ))
                } else if uploaded.is_some_and(|u| !u.iter().any(|m| m.me == r.me)) {
                    Some(format!(
                        "Get all alarms next {k} named class {} instance {}, which the MIB upload does not hold",
                        r.me.class.0, r.me.instance
                    ))
                } else {
                    None
                }
            }),
        };
        if let Some(p) = problem {
            return Ok(pass_if(false, expected, p));
        }
    }
    Ok(Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_byte_in_the_count_is_told_by_its_shape() {
        assert_eq!(result_in_count(0x0200), Some(ResultCode::NotSupported));
        assert_eq!(result_in_count(0x0100), Some(ResultCode::ProcessingError));
        assert_eq!(result_in_count(0x0000), None);
        assert_eq!(result_in_count(0x0112), None);
        assert_eq!(result_in_count(0x0800), None, "8 is no result code");
        let zeros = vec![0u8; 26];
        let rec = |class: u16, mask: u16| MibUploadRecord {
            me: MeId::new(MeClass(class), 0),
            attribute_mask: mask,
            values: zeros.clone().into(),
        };
        assert!(result_only_mib(&[rec(0x0200, 0)], ResultCode::NotSupported));
        assert!(!result_only_mib(
            &[rec(0x0200, 0x8000)],
            ResultCode::NotSupported
        ));
        assert!(!result_only_mib(&[rec(256, 0)], ResultCode::NotSupported));
    }
}
