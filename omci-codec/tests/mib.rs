//! The MIB synchronisation messages (G.988 A.3.10..A.3.16, extended A.2.10..A.2.16): MIB
//! upload, MIB upload next, Get all alarms and Get all alarms next, requests and responses, in
//! both formats. The frames are omci-lib-go's test frames where it has them (its baseline
//! strings stop before the CRC, which is added here), and built by their layout otherwise. Each decodes to its typed contents, re-emits byte for
//! byte, and survives the JSON form.

use omci_codec::contents::{
    ALARM_BITMAP_LEN, AlarmRecord, BASELINE_MIB_UPLOAD_VALUES_LEN, Contents,
    GetAllAlarmsNextResponse, GetAllAlarmsRequest, GetAllAlarmsResponse, MibUploadNextResponse,
    MibUploadRecord, MibUploadResponse, NextRequest,
};
use omci_codec::crc::crc32_bzip2;
use omci_codec::json::{from_json, to_json};
use omci_codec::{Codec, Decoded, ExtendedTrailer, Format, Integrity, MeClass, MeId, Message, Tci};

/// A baseline frame from its first 44 bytes (hex), CRC-32 added.
fn baseline(hex44: &str) -> Vec<u8> {
    let mut f = hex::decode(hex44).unwrap();
    assert_eq!(f.len(), 44, "{hex44}");
    let crc = crc32_bzip2(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

/// Decodes `frame`, checks its contents, re-emits it byte for byte, and reads it back from its
/// JSON form.
fn round_trip(frame: &[u8], tci: u16, want: Contents<'_>) {
    let codec = Codec::new(ExtendedTrailer::None);
    let m = codec.parse(frame).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.tci, Tci(tci));
    assert_eq!(m.me, MeId::new(MeClass::ONU_DATA, 0));
    assert_eq!(m.contents, want);
    assert_eq!(codec.to_vec(&m).unwrap(), frame, "re-emits byte for byte");
    let integrity = match m.format {
        Format::Baseline => Integrity::CrcOk,
        Format::Extended => Integrity::Absent,
    };
    let json = to_json(&Decoded {
        message: m.clone(),
        integrity,
    });
    let text = json.to_string();
    let back = from_json(&serde_json::from_str(&text).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.message, m, "{text}");
}

fn record(class: u16, instance: u16, mask: u16, values: Vec<u8>) -> MibUploadRecord<'static> {
    MibUploadRecord {
        me: MeId::new(MeClass(class), instance),
        attribute_mask: mask,
        values: values.into(),
    }
}

#[test]
fn mib_upload_request_and_response() {
    // omci-lib-go TestMibUploadRequestDecodeExtended / TestMibUploadResponseDecodeExtended
    // (the baseline pair is in the shared vectors, libgo-21 and libgo-22).
    round_trip(
        &hex::decode("03604d0b000200000000").unwrap(),
        0x0360,
        Contents::MibUploadRequest,
    );
    round_trip(
        &hex::decode("03602d0b0002000000020112").unwrap(),
        0x0360,
        Contents::MibUploadResponse(MibUploadResponse {
            subsequent_commands: 0x0112,
        }),
    );
}

#[test]
fn mib_upload_next_request() {
    let want = Contents::MibUploadNextRequest(NextRequest {
        command_sequence_number: 0x3a,
    });
    // omci-lib-go TestMibUploadNextRequestDecode and ...DecodeExtended.
    round_trip(
        &baseline(
            "02864e0a00020000003a00000000000000000000000000000000000000000000000000000000000000000028",
        ),
        0x0286,
        want.clone(),
    );
    round_trip(
        &hex::decode("02864e0b000200000002003a").unwrap(),
        0x0286,
        want,
    );
}

#[test]
fn mib_upload_next_response_baseline_is_one_me_in_26_bytes() {
    // omci-lib-go TestMibUploadNextResponseDecode: a Priority queue (class 277), instance 0,
    // attribute mask 0xfff0, its values in the 26 bytes that follow.
    let frame = baseline(
        "02862e0a0002000001150000fff0000000000000000000010100000000010000000000000000000000000028",
    );
    let values = hex::decode("0000000000000000000101000000000100000000000000000000").unwrap();
    assert_eq!(values.len(), BASELINE_MIB_UPLOAD_VALUES_LEN);
    round_trip(
        &frame,
        0x0286,
        Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: vec![record(0x0115, 0, 0xfff0, values)],
        }),
    );
}

#[test]
fn mib_upload_next_response_extended_carries_each_me_with_its_size() {
    // omci-lib-go TestMibUploadNextResponseDecodeExtendedOneMe and ...ThreeMe: each record is
    // the size of its values (2), ME class, instance, attribute mask, then the values.
    let values = hex::decode("01123443215678876501010000FFBB011234000000006789").unwrap();
    let one = "001801150000ffe001123443215678876501010000FFBB011234000000006789";
    round_trip(
        &hex::decode(format!("02862e0b000200000020{one}")).unwrap(),
        0x0286,
        Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: vec![record(0x0115, 0, 0xffe0, values.clone())],
        }),
    );
    let three: String = (0..3)
        .map(|i| format!("00180115000{i}ffe001123443215678876501010000FFBB011234000000006789"))
        .collect();
    round_trip(
        &hex::decode(format!("02862e0b000200000060{three}")).unwrap(),
        0x0286,
        Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: (0..3)
                .map(|i| record(0x0115, i, 0xffe0, values.clone()))
                .collect(),
        }),
    );
    // A record whose size runs past the contents is a parameter error, not a short record.
    let cut = hex::decode("02862e0b00020000000a0018011500000ffe0011").unwrap();
    let e = Codec::new(ExtendedTrailer::None).parse(&cut).unwrap_err();
    assert_eq!(e.result_code(), None, "a response is never answered: {e}");
    assert!(e.to_string().contains("attribute values"), "{e}");
}

#[test]
fn get_all_alarms_request_and_response() {
    // By G.988 A.3.10/A.3.11's layout (omci-lib-go's GetAllAlarmsRequest and Response):
    // the request carries the alarm retrieval mode, the response the number of next commands.
    round_trip(
        &baseline(
            "04004b0a00020000010000000000000000000000000000000000000000000000000000000000000000000028",
        ),
        0x0400,
        Contents::GetAllAlarmsRequest(GetAllAlarmsRequest {
            alarm_retrieval_mode: 1,
        }),
    );
    round_trip(
        &hex::decode("04004b0b00020000000100").unwrap(),
        0x0400,
        Contents::GetAllAlarmsRequest(GetAllAlarmsRequest {
            alarm_retrieval_mode: 0,
        }),
    );
    round_trip(
        &baseline(
            "04002b0a00020000000300000000000000000000000000000000000000000000000000000000000000000028",
        ),
        0x0400,
        Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
            subsequent_commands: 3,
        }),
    );
    round_trip(
        &hex::decode("04002b0b0002000000020003").unwrap(),
        0x0400,
        Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
            subsequent_commands: 3,
        }),
    );
    round_trip(
        &hex::decode("04014c0b0002000000020004").unwrap(),
        0x0401,
        Contents::GetAllAlarmsNextRequest(NextRequest {
            command_sequence_number: 4,
        }),
    );
}

#[test]
fn get_all_alarms_next_response_names_an_me_and_its_alarm_bitmap() {
    // omci-lib-go TestGetAllAlarmsNextResponseDecode: a PPTP Ethernet UNI (class 11),
    // instance 0x0102, alarm 0 active. (Its string ends with 0xf040fc87, which is no CRC-32 of
    // the frame in any common variant: omci-lib-go does not check the trailer. The CRC here is
    // G.988's.)
    let frame = baseline(
        "02342c0a00020000000b01028000000000000000000000000000000000000000000000000000000000000028",
    );
    let mut bitmap = [0u8; ALARM_BITMAP_LEN];
    bitmap[0] = 0x80;
    let alarm = |instance| AlarmRecord {
        me: MeId::new(MeClass(11), instance),
        bitmap,
    };
    round_trip(
        &frame,
        0x0234,
        Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
            records: vec![alarm(0x0102)],
        }),
    );
    // Extended: any number of 32-byte records.
    let rec = |i: u16| format!("000b{i:04x}80{}", "00".repeat(27));
    let ext = format!("02342c0b000200000040{}{}", rec(1), rec(2));
    round_trip(
        &hex::decode(ext).unwrap(),
        0x0234,
        Contents::GetAllAlarmsNextResponse(GetAllAlarmsNextResponse {
            records: vec![alarm(1), alarm(2)],
        }),
    );
}

#[test]
fn a_not_supported_answer_to_mib_upload_reads_as_512_commands() {
    // An ONU that answers MIB upload as if its response had a result byte (2, not supported,
    // then zeros) sends what G.988 reads as "512 MIB upload next commands follow": the codec
    // says so, and leaves telling the two apart to whoever knows the exchange (the
    // conformance suite asks the next command, docs/conformance.md).
    let mut contents = [0u8; 44];
    contents[..8].copy_from_slice(&[0x00, 0x07, 0x2d, 0x0a, 0x00, 0x02, 0x00, 0x00]);
    contents[8] = 2;
    contents[40..44].copy_from_slice(&[0, 0, 0, 0x28]);
    let frame = baseline(&hex::encode(contents));
    let m = omci_codec::parse(&frame).unwrap();
    assert_eq!(
        m.contents,
        Contents::MibUploadResponse(MibUploadResponse {
            subsequent_commands: 512
        })
    );
    assert_eq!(m.contents.result(), None, "G.988 gives it no result field");
}

#[test]
fn baseline_emit_refuses_what_one_frame_cannot_hold() {
    let two = Message::new(
        Tci(1),
        Format::Baseline,
        MeId::new(MeClass::ONU_DATA, 0),
        Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: vec![
                record(256, 0, 0x8000, vec![0; BASELINE_MIB_UPLOAD_VALUES_LEN]),
                record(257, 0, 0x8000, vec![0; BASELINE_MIB_UPLOAD_VALUES_LEN]),
            ],
        }),
    );
    assert!(Codec::default().to_vec(&two).is_err());
    let short = Message::new(
        Tci(1),
        Format::Baseline,
        MeId::new(MeClass::ONU_DATA, 0),
        Contents::MibUploadNextResponse(MibUploadNextResponse {
            records: vec![record(256, 0, 0x8000, vec![1, 2, 3, 4])],
        }),
    );
    let e = Codec::default().to_vec(&short).unwrap_err();
    assert!(e.to_string().contains("26 bytes"), "{e}");
    // The same record fits an extended frame as it is.
    let ext = Message {
        format: Format::Extended,
        ..short
    };
    let bytes = Codec::default().to_vec(&ext).unwrap();
    assert_eq!(hex::encode(&bytes[8..]), "000c000401000000800001020304");
}
