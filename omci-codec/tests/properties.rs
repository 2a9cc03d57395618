//! Properties of the codec over generated input: parse(emit(m)) == m for every message in
//! both formats and under every extended trailer; the JSON form round-trips; arbitrary bytes
//! never panic any entry point; any single flipped bit of a baseline frame is caught; the JSON
//! `omci encode` reads, mutated, and capture files, mutated, never panic their readers.

use std::borrow::Cow;

use omci_codec::OnuId;
use omci_codec::contents::*;
use omci_codec::envelope::Envelope;
use omci_codec::json::{from_json, to_json};
use omci_codec::pcap::{
    CaptureReader, CaptureWriter, Direction, MAX_PACKET_LEN, Peer, ethernet_frame, parse_ethernet,
    read_capture,
};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{
    Codec, Decoded, ExtendedTrailer, Format, Header, Integrity, MeClass, MeId, Message,
    MessageType, MicKey, ResultCode, Tci,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn result() -> impl Strategy<Value = ResultCode> {
    any::<u8>().prop_map(ResultCode::from_u8)
}

fn instances(max: usize) -> impl Strategy<Value = InstanceList> {
    vec(any::<u16>(), 0..=max).prop_map(|v| v.into_iter().collect())
}

fn instance_results(max: usize) -> impl Strategy<Value = InstanceResults> {
    vec((any::<u16>(), result()), 0..=max).prop_map(|v| {
        v.into_iter()
            .map(|(me_instance, result)| InstanceResult {
                me_instance,
                result,
            })
            .collect()
    })
}

/// Software image attributes whose values fit `max` bytes.
fn software_image_attributes(max: usize) -> impl Strategy<Value = SoftwareImageAttributes> {
    (
        proptest::option::of(any::<[u8; 14]>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<[u8; 25]>()),
        proptest::option::of(any::<[u8; 16]>()),
    )
        .prop_map(
            |(version, c, a, v, product_code, image_hash)| SoftwareImageAttributes {
                version,
                is_committed: c,
                is_active: a,
                is_valid: v,
                product_code,
                image_hash,
            },
        )
        .prop_filter("fits the value area", move |a| a.encoded_len() <= max)
}

/// Attribute values of a class-7 or other ME: typed values for class 7, raw for others (on a
/// baseline frame the raw area is all `area` bytes, as a parse gives it).
fn attribute_values(
    format: Format,
    area: usize,
) -> impl Strategy<Value = (MeClass, AttributeValues<'static>)> {
    let raw_len = match format {
        Format::Baseline => area..=area,
        Format::Extended => 0..=200,
    };
    prop_oneof![
        software_image_attributes(area).prop_map(|a| (
            MeClass::SOFTWARE_IMAGE,
            AttributeValues::SoftwareImage(Box::new(a))
        )),
        (
            any::<u16>().prop_filter("not class 7", |c| *c != 7),
            any::<u16>(),
            vec(any::<u8>(), raw_len)
        )
            .prop_map(|(class, attribute_mask, values)| (
                MeClass(class),
                AttributeValues::Raw {
                    attribute_mask,
                    values: Cow::Owned(values)
                }
            )),
    ]
}

/// The records of a MIB upload next response: one of 26 value bytes on a baseline frame, any
/// few of any size on an extended one.
fn mib_records(format: Format) -> impl Strategy<Value = Vec<MibUploadRecord<'static>>> {
    let (count, len) = match format {
        Format::Baseline => (
            1..=1,
            BASELINE_MIB_UPLOAD_VALUES_LEN..=BASELINE_MIB_UPLOAD_VALUES_LEN,
        ),
        Format::Extended => (0..=4, 0..=200),
    };
    vec(
        (
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            vec(any::<u8>(), len),
        ),
        count,
    )
    .prop_map(|rs| {
        rs.into_iter()
            .map(|(c, i, m, v)| MibUploadRecord {
                me: MeId::new(MeClass(c), i),
                attribute_mask: m,
                values: Cow::Owned(v),
            })
            .collect()
    })
}

/// Message types and AK bits that have no typed form.
fn untyped() -> impl Strategy<Value = (MessageType, bool)> {
    (0u8..32, any::<bool>())
        .prop_map(|(code, ak)| (MessageType::from_code(code), ak))
        .prop_filter("no typed form", |(mt, ak)| {
            use MessageType::*;
            !matches!(
                (mt, ak),
                (
                    StartSoftwareDownload
                        | DownloadSection
                        | EndSoftwareDownload
                        | ActivateSoftware
                        | CommitSoftware
                        | Get
                        | MibReset
                        | Reboot
                        | MibUpload
                        | MibUploadNext
                        | GetAllAlarms
                        | GetAllAlarmsNext,
                    _
                ) | (AttributeValueChange, false)
            )
        })
}

/// Contents that fit `format`, with the ME class they need (None: any class).
fn contents(format: Format) -> BoxedStrategy<(Option<MeClass>, Contents<'static>)> {
    let base = format == Format::Baseline;
    let pick = |b: usize, e: usize| if base { b } else { e };
    let any_class = |c: Contents<'static>| (None, c);
    let section_len = if base { 31..=31 } else { 1..=1965 };
    let other_len = if base { 32..=32 } else { 0..=300 };
    prop_oneof![
        (any::<u8>(), any::<u32>(), instances(pick(13, 255))).prop_map(move |(w, s, i)| any_class(
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: w,
                image_size: s,
                instances: i
            })
        )),
        (result(), any::<u8>(), instance_results(pick(9, 255))).prop_map(move |(r, w, i)| {
            any_class(Contents::StartSoftwareDownloadResponse(
                StartSoftwareDownloadResponse {
                    result: r,
                    window_size_minus_one: w,
                    instances: i,
                },
            ))
        }),
        (any::<u8>(), vec(any::<u8>(), section_len)).prop_map(move |(n, d)| any_class(
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n,
                data: Cow::Owned(d)
            })
        )),
        (result(), any::<u8>()).prop_map(move |(r, n)| any_class(
            Contents::DownloadSectionResponse(DownloadSectionResponse {
                result: r,
                section_number: n
            })
        )),
        (any::<u32>(), any::<u32>(), instances(pick(11, 255))).prop_map(move |(c, s, i)| {
            any_class(Contents::EndSoftwareDownloadRequest(
                EndSoftwareDownloadRequest {
                    crc: c,
                    image_size: s,
                    instances: i,
                },
            ))
        }),
        (result(), instance_results(pick(10, 255))).prop_map(move |(r, i)| any_class(
            Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                result: r,
                instances: i
            })
        )),
        any::<u8>().prop_map(move |f| any_class(Contents::ActivateSoftwareRequest(
            ActivateSoftwareRequest { activate_flags: f }
        ))),
        result().prop_map(move |r| any_class(Contents::ActivateSoftwareResponse { result: r })),
        Just(any_class(Contents::CommitSoftwareRequest)),
        result().prop_map(move |r| any_class(Contents::CommitSoftwareResponse { result: r })),
        any::<u16>()
            .prop_map(move |m| any_class(Contents::GetRequest(GetRequest { attribute_mask: m }))),
        (
            result(),
            attribute_values(format, BASELINE_GET_VALUES_LEN),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(move |(r, (class, a), o, x)| (
                Some(class),
                Contents::GetResponse(GetResponse {
                    result: r,
                    attributes: a,
                    optional_attribute_mask: o,
                    attribute_execution_mask: x
                })
            )),
        Just(any_class(Contents::MibResetRequest)),
        result().prop_map(move |r| any_class(Contents::MibResetResponse { result: r })),
        any::<u8>().prop_map(move |c| any_class(Contents::RebootRequest(RebootRequest {
            reboot_condition: c
        }))),
        result().prop_map(move |r| any_class(Contents::RebootResponse { result: r })),
        attribute_values(format, BASELINE_AVC_VALUES_LEN).prop_map(move |(class, a)| (
            Some(class),
            Contents::AttributeValueChange(AttributeValueChange { attributes: a })
        )),
        Just(any_class(Contents::MibUploadRequest)),
        any::<u16>().prop_map(
            move |n| any_class(Contents::MibUploadResponse(MibUploadResponse {
                subsequent_commands: n
            }))
        ),
        any::<u16>().prop_map(
            move |n| any_class(Contents::MibUploadNextRequest(NextRequest {
                command_sequence_number: n
            }))
        ),
        mib_records(format).prop_map(move |records| any_class(Contents::MibUploadNextResponse(
            MibUploadNextResponse { records }
        ))),
        any::<u8>().prop_map(move |m| any_class(Contents::GetAllAlarmsRequest(
            GetAllAlarmsRequest {
                alarm_retrieval_mode: m
            }
        ))),
        any::<u16>().prop_map(move |n| any_class(Contents::GetAllAlarmsResponse(
            GetAllAlarmsResponse {
                subsequent_commands: n
            }
        ))),
        any::<u16>().prop_map(
            move |n| any_class(Contents::GetAllAlarmsNextRequest(NextRequest {
                command_sequence_number: n
            }))
        ),
        vec(
            (any::<u16>(), any::<u16>(), any::<[u8; ALARM_BITMAP_LEN]>()),
            if base { 1..=1 } else { 0..=10 }
        )
        .prop_map(move |rs| any_class(Contents::GetAllAlarmsNextResponse(
            GetAllAlarmsNextResponse {
                records: rs
                    .into_iter()
                    .map(|(c, i, bitmap)| AlarmRecord {
                        me: MeId::new(MeClass(c), i),
                        bitmap
                    })
                    .collect()
            }
        ))),
        (untyped(), vec(any::<u8>(), other_len)).prop_map(move |((mt, ak), c)| any_class(
            Contents::Other(OtherMessage {
                message_type: mt,
                ak,
                contents: Cow::Owned(c)
            })
        )),
    ]
    .boxed()
}

fn message() -> impl Strategy<Value = Message<'static>> {
    prop_oneof![message_in(Format::Baseline), message_in(Format::Extended)]
}

fn message_in(format: Format) -> impl Strategy<Value = Message<'static>> {
    {
        (
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            contents(format),
        )
            .prop_map(
                move |(tci, ar, db, class, instance, (need_class, contents))| {
                    let class = need_class.unwrap_or(MeClass(class));
                    Message {
                        tci: Tci(tci),
                        ar,
                        db,
                        format,
                        me: MeId::new(class, instance),
                        contents,
                    }
                },
            )
    }
}

fn trailer() -> impl Strategy<Value = ExtendedTrailer> {
    prop_oneof![
        Just(ExtendedTrailer::None),
        Just(ExtendedTrailer::Crc32),
        any::<[u8; 16]>().prop_map(|k| ExtendedTrailer::Mic(MicKey(k))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_emit_is_identity(m in message(), t in trailer()) {
        let codec = Codec::new(t);
        let len = codec.buffer_len(&m).unwrap();
        let mut buf = vec![0xa5u8; len + 3];
        prop_assert_eq!(codec.emit(&m, &mut buf).unwrap(), len);
        let back = codec.parse(&buf[..len]).unwrap();
        prop_assert_eq!(&back, &m);
        // And emitting what was parsed writes the same bytes again.
        prop_assert_eq!(codec.to_vec(&back).unwrap(), buf[..len].to_vec());
        // Too small a buffer is an error, never a panic or a partial frame.
        prop_assert!(codec.emit(&m, &mut buf[..len - 1]).is_err());
    }

    #[test]
    fn json_round_trips(m in message()) {
        let codec = Codec::default();
        let integrity = if m.format == Format::Baseline { Integrity::CrcOk } else { Integrity::Absent };
        let v = to_json(&Decoded { message: m.clone(), integrity });
        let text = v.to_string();
        let reread: serde_json::Value = serde_json::from_str(&text).unwrap();
        let back = from_json(&reread).unwrap();
        prop_assert_eq!(&back.message, &m);
        prop_assert_eq!(codec.to_vec(&back.message).unwrap(), codec.to_vec(&m).unwrap());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2100), t in trailer()) {
        let codec = Codec::new(t);
        let _ = Header::parse(&bytes);
        let _ = parse_ethernet(&bytes);
        if let Ok(d) = codec.decode(&bytes) {
            // Whatever decodes re-emits, and re-parses to the same message.
            let again = codec.to_vec(&d.message).unwrap();
            prop_assert_eq!(codec.decode(&again).unwrap().message, d.message);
        }
    }

    #[test]
    fn frame_shaped_bytes_never_panic(
        mut bytes in vec(any::<u8>(), 48..=48),
        device in prop_oneof![Just(0x0Au8), Just(0x0B)],
        len in prop_oneof![Just(None), (0u16..2000).prop_map(Some)],
        t in trailer(),
    ) {
        // Random bytes that pass the header checks reach every contents parser: the extended
        // length field mostly matches the 48 bytes (38 of contents less the trailer).
        let len = len.unwrap_or(38 - t.len() as u16);
        bytes[3] = device;
        bytes[8..10].copy_from_slice(&len.to_be_bytes());
        bytes[40..44].copy_from_slice(&[0, 0, 0, 0x28]);
        let codec = Codec::new(t);
        if let Ok(d) = codec.decode(&bytes) {
            let again = codec.to_vec(&d.message).unwrap();
            prop_assert_eq!(codec.decode(&again).unwrap().message, d.message);
        }
        if let Err(e) = codec.decode(&bytes) {
            prop_assert!(e.offset <= bytes.len());
        }
    }

    #[test]
    fn every_single_bit_error_in_a_baseline_frame_is_caught(
        m in message_in(Format::Baseline),
        bit in 0usize..384,
    ) {
        let mut frame = Codec::default().to_vec(&m).unwrap();
        frame[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Codec::default().parse(&frame).is_err());
    }

    #[test]
    fn emit_either_refuses_or_round_trips(
        format in prop_oneof![Just(Format::Baseline), Just(Format::Extended)],
        class in prop_oneof![Just(7u16), any::<u16>()],
        tci in any::<u16>(),
        shape in 0u8..4,
        bytes in vec(any::<u8>(), 0..40),
        attrs in software_image_attributes(58),
        mask in any::<u16>(),
    ) {
        // Messages outside the canonical shapes the other generators make: short or long
        // fixed-size fields, typed attributes on any class, raw values on class 7.
        let attributes = if shape % 2 == 0 {
            AttributeValues::SoftwareImage(Box::new(attrs))
        } else {
            AttributeValues::Raw { attribute_mask: mask, values: Cow::Owned(bytes.clone()) }
        };
        let contents = match shape {
            0 | 1 => Contents::GetResponse(GetResponse {
                result: ResultCode::Success,
                attributes,
                optional_attribute_mask: 0,
                attribute_execution_mask: 0,
            }),
            2 => Contents::AttributeValueChange(AttributeValueChange { attributes }),
            _ => Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: 1,
                data: Cow::Owned(bytes.clone()),
            }),
        };
        let m = Message::new(Tci(tci), format, MeId::new(MeClass(class), 0), contents);
        if let Ok(frame) = Codec::default().to_vec(&m) {
            let back = Codec::default().parse(&frame).unwrap();
            // Raw values on class 7 that decode come back typed: the same bytes either way.
            prop_assert_eq!(&Codec::default().to_vec(&back).unwrap(), &frame);
            let raw_on_class_7 = class == 7 && shape % 2 == 1;
            if !raw_on_class_7 {
                prop_assert_eq!(back, m);
            }
        }
    }

    #[test]
    fn json_of_arbitrary_values_never_panics(v in json_value()) {
        let _ = from_json(&v);
    }

    #[test]
    fn mutated_json_of_real_frames_never_panics(
        m in message(),
        edits in vec((any::<proptest::sample::Index>(), 0u8..3, json_leaf()), 1..4),
    ) {
        // What `omci encode` reads: a frame's own JSON with a field changed, dropped or added.
        let mut v = to_json(&Decoded { message: m, integrity: Integrity::CrcOk });
        let obj = v.as_object_mut().unwrap();
        for (at, op, value) in edits {
            let keys: Vec<String> = obj.keys().cloned().collect();
            let key = keys[at.index(keys.len())].clone();
            match op {
                0 => { obj.insert(key, value); }
                1 => { obj.remove(&key); }
                _ => { obj.insert(format!("{key}_"), value); }
            }
            if obj.is_empty() {
                break;
            }
        }
        if let Ok(frame) = from_json(&v) {
            // Whatever reads either emits or is refused, never a panic.
            for t in [ExtendedTrailer::None, ExtendedTrailer::Crc32] {
                let _ = Codec::new(t).to_vec(&frame.message);
            }
        }
    }

    #[test]
    fn capture_bytes_never_panic_and_packets_stay_bounded(bytes in capture_bytes()) {
        if let Ok(reader) = CaptureReader::new(&bytes[..]) {
            for packet in reader.take(10_000) {
                match packet {
                    Ok(p) => {
                        prop_assert!(p.data.len() <= MAX_PACKET_LEN);
                        let _ = p.envelope();
                        let _ = parse_ethernet(&p.data);
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
        let _ = read_capture(&bytes[..]);
    }
}

/// JSON values of every kind, the edges of the fields' ranges and past them.
fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        proptest::sample::select(vec![
            0i64, 1, 255, 256, 65535, 65536, 4294967295, 4294967296, -1
        ])
        .prop_map(serde_json::Value::from),
        "[0-9a-f]{0,80}".prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
        vec(any::<u16>(), 0..40).prop_map(serde_json::Value::from),
    ]
}

/// Capture files: arbitrary bytes, and captures of this lab (pcapng with envelope comments, or
/// classic pcap) with bytes changed, lengths made huge, cut short or spliced.
fn capture_bytes() -> impl Strategy<Value = Vec<u8>> {
    let packets = vec((vec(any::<u8>(), 0..120), any::<bool>()), 1..5);
    let capture = (packets, any::<bool>()).prop_map(|(packets, classic)| {
        if classic {
            let mut w = pcap_file::pcap::PcapWriter::new(Vec::new()).unwrap();
            for (data, _) in &packets {
                let frame = ethernet_frame(Direction::Upstream, Peer::Onu(OnuId(1)), data);
                w.write_packet(&pcap_file::pcap::PcapPacket::new(
                    std::time::Duration::from_secs(1),
                    frame.len() as u32,
                    &frame,
                ))
                .unwrap();
            }
            w.into_writer()
        } else {
            let mut w = CaptureWriter::new(Vec::new()).unwrap();
            for (i, (data, enveloped)) in packets.iter().enumerate() {
                let t = std::time::Duration::from_millis(i as u64);
                if *enveloped {
                    let e = Envelope::omcc(OnuId(i as u16));
                    w.write_enveloped(t, Direction::Downstream, &e, data)
                        .unwrap();
                } else {
                    w.write(t, Direction::Upstream, Peer::Multicast, data)
                        .unwrap();
                }
            }
            w.into_inner()
        }
    });
    let edit = (
        any::<proptest::sample::Index>(),
        0u8..4,
        any::<u8>(),
        vec(any::<u8>(), 0..16),
    );
    prop_oneof![
        vec(any::<u8>(), 0..600),
        (capture, vec(edit, 0..6)).prop_map(|(mut bytes, edits)| {
            for (at, op, byte, piece) in edits {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] ^= byte | 1,
                    1 => {
                        // A length field made huge, or small.
                        let i = i & !3;
                        let v = if byte % 2 == 0 {
                            u32::MAX - u32::from(byte)
                        } else {
                            u32::from(byte)
                        };
                        let end = (i + 4).min(bytes.len());
                        bytes[i..end].copy_from_slice(&v.to_ne_bytes()[..end - i]);
                    }
                    2 => bytes.truncate(i),
                    _ => {
                        bytes.splice(i..i, piece);
                    }
                }
            }
            bytes
        }),
    ]
}

/// JSON objects with the keys `from_json` reads, and values of every JSON kind.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<u32>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[0-9a-f]{0,70}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("baseline"),
            Just("extended"),
            Just("Get"),
            Just("Download section")
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("tci"),
        Just("message_type"),
        Just("message_type_code"),
        Just("ak"),
        Just("ar"),
        Just("device_id"),
        Just("me_class"),
        Just("me_instance"),
        Just("window_size"),
        Just("image_size"),
        Just("instances"),
        Just("data"),
        Just("section_number"),
        Just("result"),
        Just("attributes"),
        Just("attribute_values"),
        Just("attribute_mask"),
        Just("contents"),
        Just("crc"),
        Just("version"),
    ];
    let value = leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(keys, value, 0..12).prop_map(|m| {
        serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}
