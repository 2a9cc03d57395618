//! The OB-BAA framing's test vectors (docs/wire.md): request and answer datagrams in both
//! formats, written out byte by byte from the layout of the Broadband Forum's ONU simulator
//! (`obbaa_onusim/message.py`: `cterm_name` as 30 bytes NUL padded, the ONU-ID big-endian,
//! then the OMCI frame; a baseline frame stops after its SDU length, an extended one after its
//! contents).

use std::borrow::Cow;

use omci_codec::contents::{
    AttributeValues, Contents, GetRequest, GetResponse, InstanceResult,
    StartSoftwareDownloadRequest, StartSoftwareDownloadResponse,
};
use omci_codec::obbaa::{
    self, BASELINE_UNTRAILED_LEN, CtermName, HEADER_LEN, ObbaaError, ObbaaHeader,
};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, Tci};

/// "CT_1", NUL padded to 30 bytes, then ONU-ID 1.
const HEADER: &str = concat!(
    "43545f31",
    "0000000000000000000000000000000000000000000000000000",
    "0001"
);

struct Vector {
    name: &'static str,
    datagram: String,
    message: Message<'static>,
}

fn sw(instance: u16) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, instance)
}

fn vectors() -> Vec<Vector> {
    let mut version = [0u8; 14];
    version[..4].copy_from_slice(b"V1.0");
    vec![
        Vector {
            name: "baseline request: Get of software image 0, mask 0xf000",
            datagram: [
                HEADER,
                "0001", // TCI
                "49",   // Get, AR
                "0a",   // baseline
                "0007", // Software image
                "0000", // instance 0
                "f000", // attribute mask
                "000000000000000000000000000000000000000000000000000000000000",
                "00000028", // CPCS-UU, CPI, SDU length; no CRC
            ]
            .concat(),
            message: Message::new(
                Tci(1),
                Format::Baseline,
                sw(0),
                Contents::GetRequest(GetRequest {
                    attribute_mask: 0xf000,
                }),
            ),
        },
        Vector {
            name: "baseline answer: its Get response",
            datagram: [
                HEADER,
                "0001",
                "29", // Get, AK
                "0a",
                "0007",
                "0000",
                "00",                           // result 0
                "f000",                         // attribute mask
                "56312e3000000000000000000000", // version "V1.0", 14 bytes NUL padded
                "010101",                       // committed, active, valid
                "0000000000000000",             // padding to 25 value bytes
                "0000",                         // optional-attribute mask
                "0000",                         // attribute execution mask
                "00000028",
            ]
            .concat(),
            message: Message::new(
                Tci(1),
                Format::Baseline,
                sw(0),
                Contents::GetResponse(GetResponse {
                    result: omci_codec::ResultCode::Success,
                    attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                        version: Some(version),
                        is_committed: Some(true),
                        is_active: Some(true),
                        is_valid: Some(true),
                        ..Default::default()
                    })),
                    optional_attribute_mask: 0,
                    attribute_execution_mask: 0,
                }),
            ),
        },
        Vector {
            name: "extended request: Start software download of image 1",
            datagram: [
                HEADER, "0002", // TCI
                "53",   // Start software download, AR
                "0b",   // extended
                "0007", "0001", "0008",     // contents length
                "1f",       // window size - 1 (32 sections)
                "00004e20", // image size 20000
                "01", "0001", // one instance, image 1; no MIC
            ]
            .concat(),
            message: Message::new(
                Tci(2),
                Format::Extended,
                sw(1),
                Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                    window_size_minus_one: 31,
                    image_size: 20_000,
                    instances: [1u16].into_iter().collect(),
                }),
            ),
        },
        Vector {
            name: "extended answer: its Start response",
            datagram: [
                HEADER, "0002", "33", // Start software download, AK
                "0b", "0007", "0001", "0006", "00", // result 0
                "1f", // window size - 1 accepted
                "01", "0001", "00", // one instance result: image 1, result 0
            ]
            .concat(),
            message: Message::new(
                Tci(2),
                Format::Extended,
                sw(1),
                Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                    result: omci_codec::ResultCode::Success,
                    window_size_minus_one: 31,
                    instances: [InstanceResult {
                        me_instance: 1,
                        result: omci_codec::ResultCode::Success,
                    }]
                    .into_iter()
                    .collect(),
                }),
            ),
        },
    ]
}

#[test]
fn every_vector_parses_to_its_message_and_emits_to_its_bytes() {
    let header = ObbaaHeader::new(CtermName::new("CT_1").unwrap(), OnuId(1));
    for v in vectors() {
        let bytes = hex::decode(&v.datagram).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let expected_len = HEADER_LEN
            + match v.message.format {
                Format::Baseline => BASELINE_UNTRAILED_LEN,
                Format::Extended => bytes.len() - HEADER_LEN,
            };
        assert_eq!(bytes.len(), expected_len, "{}", v.name);
        let (h, m) = obbaa::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(h, header, "{}", v.name);
        assert_eq!(m, v.message, "{}", v.name);
        assert_eq!(
            hex::encode(obbaa::emit(&header, &v.message).unwrap()),
            v.datagram,
            "{}",
            v.name
        );
    }
}

#[test]
fn the_lab_form_of_each_frame_is_the_same_frame_with_its_trailer() {
    // The lab's transport carries baseline frames with their CRC-32 and extended frames with
    // a CRC-32 trailer: add it, parse with the lab's codec, strip it again.
    let lab = Codec::new(ExtendedTrailer::Crc32);
    for v in vectors() {
        let bytes = hex::decode(&v.datagram).unwrap();
        let untrailed = &bytes[HEADER_LEN..];
        let frame = obbaa::add_trailer(untrailed, &ExtendedTrailer::Crc32).unwrap();
        assert_eq!(frame.len(), untrailed.len() + 4, "{}", v.name);
        assert_eq!(lab.parse(&frame).unwrap(), v.message, "{}", v.name);
        assert_eq!(lab.to_vec(&v.message).unwrap(), frame, "{}", v.name);
        assert_eq!(
            obbaa::strip_trailer(&frame, &ExtendedTrailer::Crc32).unwrap(),
            untrailed,
            "{}",
            v.name
        );
    }
}

#[test]
fn frames_of_the_wrong_length_are_refused() {
    let v = &vectors()[0];
    let mut bytes = hex::decode(&v.datagram).unwrap();
    // A baseline frame that kept its CRC is not the OB-BAA form.
    let crc = omci_codec::crc::crc32_bzip2(&bytes[HEADER_LEN..]);
    bytes.extend_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        obbaa::parse(&bytes),
        Err(ObbaaError::FrameLength { len: 48, .. })
    ));
    // Nor is an extended frame with bytes past its length field (a MIC, say).
    let mut ext = hex::decode(&vectors()[2].datagram).unwrap();
    ext.extend_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(
        obbaa::parse(&ext),
        Err(ObbaaError::FrameLength { .. })
    ));
    assert!(matches!(
        obbaa::parse(&bytes[..20]),
        Err(ObbaaError::Truncated(20))
    ));
}

#[test]
fn the_header_is_thirty_bytes_of_name_then_the_onu_id() {
    let h = ObbaaHeader::new(CtermName::new("olt-1.ct-2").unwrap(), OnuId(0x1234));
    let d = h.wrap(&[]);
    assert_eq!(d.len(), 32);
    assert_eq!(&d[..10], b"olt-1.ct-2");
    assert!(d[10..30].iter().all(|b| *b == 0));
    assert_eq!(&d[30..], &[0x12, 0x34]);
    let raw = Cow::Borrowed(&d[..]);
    assert_eq!(ObbaaHeader::parse(&raw).unwrap().0, h);
}
