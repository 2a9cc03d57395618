//! Every frame of the shared test vectors decodes to the meaning its row states, re-emits
//! byte-identically, and renders as its reviewed snapshot.
//!
//! The vectors are kept in `tests/vectors/` so that a clone stands alone; when the project's
//! `shared/vectors/` is beside the clone, the copies are checked to be the same.

use std::path::Path;

use omci_codec::contents::Contents;
use omci_codec::crc::crc32_bzip2;
use omci_codec::json::{from_json, to_json};
use omci_codec::render::render_decoded;
use omci_codec::{Codec, ExtendedTrailer, Format, Integrity};
use serde_json::{Value, json};

struct Vector {
    name: String,
    bytes: Vec<u8>,
    meaning: String,
}

fn load(file: &str) -> Vec<Vector> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Vector {
                name: cols[0].to_string(),
                bytes: hex::decode(cols[1]).unwrap_or_else(|e| panic!("{}: {e}", cols[0])),
                meaning: cols.get(2).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

/// Hex of the byte run `from..=to`, then `zeros` zero bytes.
fn run(from: u8, to: u8, zeros: usize) -> String {
    let mut v: Vec<u8> = (from..=to).collect();
    v.extend(std::iter::repeat_n(0, zeros));
    hex::encode(v)
}

fn zeros(n: usize) -> String {
    "00".repeat(n)
}

/// The meaning of each row, as fields of `omci decode --json`.
fn expected(name: &str) -> Value {
    let start = "Start software download";
    let section = "Download section";
    let end = "End software download";
    let bcd31 = "01020304050607080910111213141516171819202122232425262728293031";
    match name {
        "libgo-01" => json!({"tci": 4, "message_type": start, "ar": true, "ak": false,
            "device_id": "baseline", "me_class": 7, "me_instance": 1, "window_size": 256,
            "image_size": 1_000_000, "instances": [1]}),
        "libgo-02" => json!({"tci": 4, "message_type": start, "ak": true, "result": 0,
            "window_size": 256, "instances": []}),
        "libgo-03" => json!({"tci": 8, "message_type": section, "ar": false, "ak": false,
            "section_number": 0xCC, "data": bcd31}),
        "libgo-04" => json!({"tci": 8, "message_type": section, "ar": true,
            "section_number": 0xCC, "data": bcd31}),
        "libgo-05" => json!({"tci": 0x0123, "ar": false, "me_instance": 0, "section_number": 0xCC,
            "data": format!("{}0000", &bcd31[..58])}),
        "libgo-06" => json!({"tci": 0x22, "message_type": section, "ak": true, "result": 6,
            "section_number": 0x1F}),
        "libgo-07" => json!({"tci": 0x8100, "message_type": end, "crc": 0xFF92_A226u32,
            "image_size": 1_000_000, "instances": [1]}),
        "libgo-08" => json!({"tci": 0x8123, "message_type": end, "ak": true, "result": 6,
            "instances": []}),
        "libgo-09" => json!({"tci": 0x8456, "me_instance": 0, "ak": true, "result": 1,
            "instances": []}),
        "libgo-10" => json!({"tci": 9, "message_type": "Activate software", "activate_flags": 2}),
        "libgo-11" => {
            json!({"tci": 9, "message_type": "Activate software", "ak": true, "result": 6})
        }
        "libgo-12" => json!({"tci": 0x11, "message_type": "Commit software", "ak": false,
            "me_instance": 1}),
        "libgo-13" => {
            json!({"tci": 0xAA, "message_type": "Commit software", "ak": true, "result": 6})
        }
        "libgo-14" => json!({"tci": 0x0109, "message_type": "MIB reset", "ak": false,
            "me_class": 2, "me_instance": 0}),
        "libgo-15" => json!({"tci": 1, "message_type": "MIB reset", "ak": true, "result": 0}),
        "libgo-16" => json!({"tci": 0x035E, "message_type": "Get", "ak": false, "me_class": 263,
            "attribute_mask": 0x0044}),
        "libgo-17" => json!({"tci": 0x035E, "message_type": "Get", "ak": true, "result": 0,
            "attribute_mask": 0x0044, "attribute_values": format!("dbcb05f1{}", zeros(21)),
            "optional_attribute_mask": 0, "attribute_execution_mask": 0}),
        "libgo-18" => json!({"tci": 0x0107, "message_type": "Set", "ak": false, "me_class": 256,
            "contents": format!("0200{}", zeros(30))}),
        "libgo-19" => json!({"tci": 0x0107, "message_type": "Set", "ak": true,
            "contents": zeros(32)}),
        "libgo-20" => json!({"tci": 1, "message_type": "Reboot", "me_class": 256,
            "reboot_condition": 1}),
        "libgo-21" => json!({"tci": 0x0360, "message_type": "MIB upload", "ak": false,
            "me_class": 2, "message": "MIB upload request"}),
        "libgo-22" => json!({"tci": 0x0360, "message_type": "MIB upload", "ak": true,
            "message": "MIB upload response", "subsequent_commands": 0x0112}),
        "mini-start-req" => json!({"tci": 1, "message_type": start, "window_size": 2,
            "image_size": 100, "instances": [1]}),
        "mini-start-resp" => json!({"tci": 1, "ak": true, "result": 0, "window_size": 2,
            "instances": []}),
        "mini-w0-sec0-0x14" => json!({"tci": 2, "ar": false, "section_number": 0,
            "data": run(0x00, 0x1E, 0)}),
        "mini-w0-sec1-0x54" => json!({"tci": 3, "ar": true, "section_number": 1,
            "data": run(0x1F, 0x3D, 0)}),
        "mini-w0-ack" | "mini-w1-ack" => json!({"message_type": section, "ak": true, "result": 0,
            "section_number": 1}),
        "mini-w1-sec0-0x14" => json!({"tci": 4, "ar": false, "section_number": 0,
            "data": run(0x3E, 0x5C, 0)}),
        "mini-w1-sec1-0x54" => json!({"tci": 5, "ar": true, "section_number": 1,
            "data": run(0x5D, 0x63, 24)}),
        "mini-end-req" => json!({"tci": 6, "message_type": end, "crc": 0xF265_3E82u32,
            "image_size": 100, "instances": [1]}),
        "mini-end-req-retry" => json!({"tci": 7, "message_type": end, "crc": 0xF265_3E82u32,
            "image_size": 100, "instances": [1]}),
        "mini-end-resp-busy" => json!({"tci": 6, "ak": true, "result": 6, "instances": []}),
        "mini-end-resp-ok" => json!({"tci": 7, "ak": true, "result": 0, "instances": []}),
        "mini-activate-req" => json!({"tci": 8, "message_type": "Activate software",
            "activate_flags": 0}),
        "mini-activate-resp" => json!({"tci": 8, "ak": true, "result": 0}),
        "mini-commit-req" => json!({"tci": 9, "message_type": "Commit software", "ak": false}),
        "mini-commit-resp" => json!({"tci": 9, "message_type": "Commit software", "result": 0}),
        "mini-abort" => json!({"tci": 10, "message_type": end, "crc": 0xFFFF_FFFFu32,
            "image_size": 0, "instances": [1], "abort": true}),
        "capture-55af-49" => json!({"tci": 0x55AF, "message_type": "Get", "me_class": 256,
            "me_instance": 0, "attribute_mask": 0xC000}),
        "capture-55b0-49" => {
            json!({"tci": 0x55B0, "message_type": "Get", "attribute_mask": 0x1100})
        }
        "capture-55d8-48" => json!({"tci": 0x55D8, "message_type": "Set", "me_class": 256,
            "contents": format!("0600{}", zeros(30))}),
        "libgo-ext-start-req" => json!({"tci": 4, "device_id": "extended", "message_type": start,
            "window_size": 256, "image_size": 1_000_000, "instances": [1]}),
        "libgo-ext-start-resp" => json!({"tci": 4, "ak": true, "result": 0, "window_size": 256,
            "instances": []}),
        "libgo-ext-section-resp" => json!({"tci": 0x22, "ak": true, "result": 6,
            "section_number": 0x1F}),
        "libgo-ext-end-req" => json!({"tci": 0x8100, "crc": 0xFF92_A226u32,
            "image_size": 1_000_000, "instances": [1]}),
        "libgo-ext-end-resp" => json!({"tci": 0x8123, "ak": true, "result": 6, "instances": []}),
        "libgo-ext-activate-req" => json!({"tci": 9, "activate_flags": 2}),
        "libgo-ext-activate-resp" => json!({"tci": 9, "ak": true, "result": 6}),
        "libgo-ext-commit-req" => json!({"tci": 0x11, "message_type": "Commit software",
            "ak": false}),
        "libgo-ext-commit-resp" => json!({"tci": 0xAA, "ak": true, "result": 6}),
        "libgo-ext-section-req" => {
            let block = "01020304050607080910111213141516171819202122232425";
            json!({"tci": 8, "ar": false, "section_number": 0x88, "data": block.repeat(8)})
        }
        "libgo-ext-mibreset-req" => {
            json!({"tci": 0x0109, "message_type": "MIB reset", "ak": false})
        }
        "libgo-ext-mibreset-resp" => json!({"tci": 1, "message_type": "MIB reset", "result": 6}),
        "libgo-ext-get-req" => json!({"tci": 0x035E, "message_type": "Get", "me_class": 0x0101,
            "attribute_mask": 0xFFFC}),
        "libgo-ext-set-req" => json!({"tci": 0x0107, "message_type": "Set", "me_class": 256,
            "contents": "020001"}),
        other => panic!("vector {other} has no stated meaning in this test: add one"),
    }
}

fn check(file: &str, format: Format) -> usize {
    let codec = Codec::new(ExtendedTrailer::None);
    let vectors = load(file);
    assert!(!vectors.is_empty());
    for v in &vectors {
        let decoded = codec
            .decode(&v.bytes)
            .unwrap_or_else(|e| panic!("{} ({}) does not decode: {e}", v.name, v.meaning));
        assert_eq!(decoded.message.format, format, "{}", v.name);
        match format {
            Format::Baseline => {
                assert_eq!(
                    decoded.integrity,
                    Integrity::CrcOk,
                    "{}: trailer CRC",
                    v.name
                );
                assert_eq!(crc32_bzip2(&v.bytes), omci_codec::crc::CRC32_BZIP2_RESIDUE);
            }
            Format::Extended => assert_eq!(decoded.integrity, Integrity::Absent),
        }
        // Byte-identical re-emission, into a buffer pre-filled so an unwritten byte shows.
        let mut buf = vec![0xa5u8; v.bytes.len() + 7];
        let n = codec.emit(&decoded.message, &mut buf).unwrap();
        assert_eq!(
            hex::encode(&buf[..n]),
            hex::encode(&v.bytes),
            "{} re-emits",
            v.name
        );
        // The stated meaning, as JSON fields.
        let got = to_json(&decoded);
        let want = expected(&v.name);
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(
                got.get(key),
                Some(value),
                "{}: field {key} (got {got})",
                v.name
            );
        }
        // JSON round trip reproduces the frame.
        let back = from_json(&got).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(back.message, decoded.message, "{}: JSON round trip", v.name);
        // The reviewed analyser view.
        insta::assert_snapshot!(v.name.clone(), render_decoded(&decoded, v.bytes.len()));
    }
    vectors.len()
}

#[test]
fn baseline_vectors_decode_mean_and_round_trip() {
    assert_eq!(check("omci-baseline-frames.tsv", Format::Baseline), 42);
}

#[test]
fn extended_vectors_decode_mean_and_round_trip() {
    assert_eq!(check("omci-extended-frames.tsv", Format::Extended), 14);
}

#[test]
fn the_mini_download_is_consistent() {
    // The constructed download moves the 100-byte image 0x00..0x63 in two windows of two
    // sections; its End request carries that image's CRC-32/BZIP2.
    let vectors = load("omci-baseline-frames.tsv");
    let codec = Codec::default();
    let mut image = Vec::new();
    let mut end_crc = None;
    for v in vectors.iter().filter(|v| v.name.starts_with("mini-")) {
        match codec.parse(&v.bytes).unwrap().contents {
            Contents::DownloadSectionRequest(s) => image.extend_from_slice(&s.data),
            Contents::EndSoftwareDownloadRequest(e) if !e.is_abort() => end_crc = Some(e.crc),
            _ => {}
        }
    }
    image.truncate(100);
    assert_eq!(image, (0u8..100).collect::<Vec<_>>());
    assert_eq!(end_crc, Some(crc32_bzip2(&image)));
}

#[test]
fn copies_match_the_shared_vectors() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors");
    if !shared.is_dir() {
        eprintln!(
            "no {} beside the clone: nothing to compare",
            shared.display()
        );
        return;
    }
    for file in ["omci-baseline-frames.tsv", "omci-extended-frames.tsv"] {
        let ours = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/vectors")
                .join(file),
        );
        let theirs = std::fs::read(shared.join(file));
        assert_eq!(
            ours.ok(),
            theirs.ok(),
            "tests/vectors/{file} differs from shared/vectors"
        );
    }
}
