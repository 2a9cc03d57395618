//! The `omci` tool as a user runs it: the vectors through `decode --json`, back through
//! `encode`, a capture through `pcap`, and the errors a user can make.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use omci_codec::OnuId;
use omci_codec::pcap::{CaptureWriter, Direction, Peer};
use serde_json::Value;

fn omci(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omci"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("omci runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn vector_hex(file: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn decode_json_prints_the_named_fields_for_every_vector() {
    for (file, device, crc) in [
        ("omci-baseline-frames.tsv", "baseline", Value::Bool(true)),
        ("omci-extended-frames.tsv", "extended", Value::Null),
    ] {
        let hex = vector_hex(file);
        let out = omci(&["decode", "--json"], &hex.join("\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let objects = json_lines(&out);
        assert_eq!(objects.len(), hex.len());
        for o in &objects {
            for key in [
                "tci",
                "message_type",
                "ar",
                "ak",
                "device_id",
                "me_class",
                "me_instance",
                "crc_ok",
            ] {
                assert!(o.get(key).is_some(), "{key} missing in {o}");
            }
            assert_eq!(o["device_id"], device);
            assert_eq!(o["crc_ok"], crc);
            let name = o["message_type"].as_str().unwrap();
            let code = o["message_type_code"].as_u64().unwrap();
            let known = omci_codec::MessageType::from_name(name);
            assert!(
                known.is_some_and(|mt| u64::from(mt.code()) == code)
                    || name == format!("Unknown ({code})"),
                "{name} / {code}"
            );
        }
        // Typed contents carry G.988 field names.
        let has = |k: &str| objects.iter().any(|o| o.get(k).is_some());
        for k in [
            "window_size",
            "image_size",
            "crc",
            "result",
            "activate_flags",
        ] {
            assert!(has(k), "{file}: no frame has {k}");
        }
        if device == "baseline" {
            assert!(has("section_number"));
        }
    }
}

#[test]
fn decode_then_encode_reproduces_the_input() {
    for file in ["omci-baseline-frames.tsv", "omci-extended-frames.tsv"] {
        let hex = vector_hex(file);
        let decoded = omci(&["decode", "--json"], &hex.join("\n"));
        let encoded = omci(&["encode"], &String::from_utf8(decoded.stdout).unwrap());
        assert!(
            encoded.status.success(),
            "{}",
            String::from_utf8_lossy(&encoded.stderr)
        );
        let lines: Vec<String> = String::from_utf8(encoded.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines, hex, "{file}");
    }
}

#[test]
fn extended_frames_with_a_crc_trailer_round_trip_too() {
    let start = "0004530b000700010008ff000f4240010001";
    // Make a CRC-trailed frame with the tool itself, then decode it by auto-detection.
    let json = omci(&["decode", "--json", start], "");
    let with_crc = String::from_utf8(json.stdout)
        .unwrap()
        .replace("\"crc_ok\":null", "\"crc_ok\":true");
    let framed = omci(&["encode"], &with_crc);
    let hex = String::from_utf8(framed.stdout).unwrap().trim().to_string();
    assert_eq!(hex.len(), start.len() + 8);
    let back = json_lines(&omci(&["decode", "--json", &hex], ""));
    assert_eq!(back[0]["crc_ok"], true);
    assert_eq!(back[0]["window_size"], 256);
}

#[test]
fn a_frame_that_does_not_decode_names_offset_and_reason() {
    let out = omci(
        &["decode", "--json"],
        "0004530a0007\n0004530c00070001ff000f424001000100000000000000000000000000000000000000000000000000000028f4e43110\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let objects = json_lines(&out);
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["input"], 1);
    assert!(objects[0]["error"].as_str().unwrap().contains("truncated"));
    assert_eq!(objects[0]["offset"], 6);
    assert_eq!(objects[1]["offset"], 3);
    assert!(
        objects[1]["error"]
            .as_str()
            .unwrap()
            .contains("device identifier")
    );
}

#[test]
fn a_bad_crc_is_shown_and_fails_the_run() {
    let mut hex = vector_hex("omci-baseline-frames.tsv")[0].clone();
    hex.replace_range(hex.len() - 2.., "00");
    let out = omci(&["decode", "--json", &hex], "");
    assert_eq!(out.status.code(), Some(1));
    let o = &json_lines(&out)[0];
    assert_eq!(o["crc_ok"], false);
    assert_eq!(o["window_size"], 256);
    let text = omci(&["decode", &hex], "");
    assert!(
        String::from_utf8(text.stdout)
            .unwrap()
            .contains("CRC-32 BAD")
    );
}

#[test]
fn contents_errors_carry_the_result_code_an_onu_answers() {
    // A Start request claiming 20 instances cannot fit a baseline frame: parameter error (3).
    let mut frame = hex::decode(&vector_hex("omci-baseline-frames.tsv")[0]).unwrap();
    frame[13] = 20;
    let crc = omci_codec::crc::crc32_bzip2(&frame[..44]);
    frame[44..].copy_from_slice(&crc.to_be_bytes());
    let out = omci(&["decode", "--json", &hex::encode(&frame)], "");
    assert_eq!(out.status.code(), Some(1));
    let o = &json_lines(&out)[0];
    assert_eq!(o["result_code"], 3, "{o}");
    assert_eq!(o["tci"], 4);
    assert!(
        o["error"]
            .as_str()
            .unwrap()
            .contains("software image ME id"),
        "{o}"
    );
}

#[test]
fn encode_names_the_line_and_field_at_fault() {
    let out = omci(
        &["encode"],
        "{\"tci\":1,\"message_type\":\"Start software download\",\"device_id\":\"baseline\",\"me_class\":7,\"me_instance\":1,\"window_size\":300,\"image_size\":5,\"instances\":[1]}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 1"), "{err}");
    assert!(err.contains("window_size"), "{err}");
    let typo = omci(
        &["encode"],
        "{\"tci\":1,\"message_type\":\"Get\",\"device_id\":\"baseline\",\"me_class\":7,\"me_instance\":1,\"atribute_mask\":1}\n",
    );
    let err = String::from_utf8(typo.stderr).unwrap();
    assert!(
        err.contains("`atribute_mask`: unknown field (did you mean `attribute_mask`?)"),
        "{err}"
    );
}

fn one_line_exit_2(args: &[&str], must_name: &[&str]) {
    let out = omci(args, "");
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    for word in must_name {
        assert!(err.contains(word), "{args:?} should name {word}: {err}");
    }
}

#[test]
fn every_usage_error_is_one_line_naming_what_is_wrong() {
    one_line_exit_2(&["pcap"], &["<FILE>"]);
    one_line_exit_2(&[], &["decode", "encode", "pcap"]);
    one_line_exit_2(
        &["decode", "--extended-trailer", "mic", "00"],
        &["--mic-key"],
    );
    one_line_exit_2(&["frob"], &["frob"]);
}

#[test]
fn a_mistyped_flag_is_one_line_and_exit_2() {
    let out = omci(&["decode", "--jsn"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("--jsn") && err.contains("--json"), "{err}");
    let bad_value = omci(&["decode", "--extended-trailer", "sha1"], "");
    assert_eq!(bad_value.status.code(), Some(2));
    let err = String::from_utf8(bad_value.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("auto") && err.contains("crc32"),
        "names allowed values: {err}"
    );
}

#[test]
fn pcap_decodes_frames_with_time_and_direction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.pcap");
    let hex = vector_hex("omci-baseline-frames.tsv");
    let start = hex::decode(&hex[22]).unwrap(); // mini-start-req
    let resp = hex::decode(&hex[23]).unwrap(); // mini-start-resp
    let section = hex::decode(&hex[24]).unwrap(); // mini-w0-sec0
    let mut w = CaptureWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let t0 = Duration::from_secs(1_700_000_000);
    w.write(t0, Direction::Downstream, Peer::Onu(OnuId(5)), &start)
        .unwrap();
    w.write(
        t0 + Duration::from_millis(3),
        Direction::Upstream,
        Peer::Onu(OnuId(5)),
        &resp,
    )
    .unwrap();
    w.write(
        t0 + Duration::from_millis(5),
        Direction::Downstream,
        Peer::Multicast,
        &section,
    )
    .unwrap();
    drop(w);

    let out = omci(&["pcap", path.to_str().unwrap(), "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = json_lines(&out);
    assert_eq!(o.len(), 3);
    assert_eq!(o[0]["direction"], "downstream");
    assert_eq!(o[0]["peer"], "onu-5");
    assert_eq!(o[0]["message"], "Start software download request");
    assert_eq!(o[1]["direction"], "upstream");
    assert_eq!(o[1]["time_s"], 0.003);
    assert_eq!(o[2]["peer"], "multicast");
    assert_eq!(o[2]["section_number"], 0);

    let text = omci(&["pcap", path.to_str().unwrap()], "");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("OLT -> onu-5"), "{text}");
    assert!(text.contains("onu-5 -> OLT"), "{text}");
    assert!(
        text.contains("3 OMCI frames, 0 other packets skipped"),
        "{text}"
    );

    let damaged = dir.path().join("damaged.pcap");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 5);
    std::fs::write(&damaged, bytes).unwrap();
    let out = omci(&["pcap", damaged.to_str().unwrap(), "--json"], "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "a damaged capture fails the run"
    );
    assert_eq!(
        json_lines(&out).len(),
        2,
        "the frames before the damage are shown"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("damaged after packet 2")
    );

    let missing = omci(&["pcap", "/nonexistent/x.pcap"], "");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8(missing.stderr)
            .unwrap()
            .contains("/nonexistent/x.pcap")
    );
}

#[test]
fn pcap_shows_the_envelope_the_capture_kept() {
    use omci_codec::envelope::{ALL_ONUS, Envelope, MISSING_LEN};
    use omci_codec::{GemPort, WindowNo};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.pcap");
    let hex = vector_hex("omci-baseline-frames.tsv");
    let section = hex::decode(&hex[24]).unwrap(); // mini-w0-sec0
    let resp = hex::decode(&hex[23]).unwrap();
    let mut w = CaptureWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    let group = Envelope {
        onu_id: ALL_ONUS,
        gem_port: GemPort::MULTICAST_DOWNLOAD,
        window_no: Some(WindowNo(5)),
        window_crc: Some(0xdead_beef),
        missing: None,
    };
    let mut missing = [0u8; MISSING_LEN];
    missing[0] = 0b1000_0010; // sections 1 and 7
    let answer = Envelope {
        missing: Some(missing),
        ..Envelope::omcc(OnuId(4))
    };
    let t0 = Duration::from_secs(1_700_000_000);
    w.write_enveloped(t0, Direction::Downstream, &group, &section)
        .unwrap();
    w.write_enveloped(t0, Direction::Upstream, &answer, &resp)
        .unwrap();
    w.write(t0, Direction::Upstream, Peer::Onu(OnuId(4)), &resp)
        .unwrap();
    drop(w);

    let out = omci(&["pcap", path.to_str().unwrap(), "--json"], "");
    assert!(out.status.success());
    let o = json_lines(&out);
    assert_eq!(o[0]["peer"], "multicast");
    assert_eq!(
        o[0]["envelope"],
        serde_json::json!({"onu_id": 65535, "gem_port": 4000, "window": 5, "window_crc": 0xdead_beefu32})
    );
    assert_eq!(
        o[1]["envelope"],
        serde_json::json!({"onu_id": 4, "gem_port": 4, "missing": [1, 7]})
    );
    assert_eq!(o[2]["envelope"], Value::Null, "no comment, no envelope");

    let text = omci(&["pcap", path.to_str().unwrap()], "");
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains(
            "OLT -> multicast\n  Envelope: onu-id=65535 gem-port=4000 window=5 window-crc=0xdeadbeef\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("onu-4 -> OLT\n  Envelope: onu-id=4 gem-port=4 missing=1,7\n"),
        "{text}"
    );
    assert_eq!(text.matches("Envelope:").count(), 2, "{text}");
}

#[test]
fn pcapng_time_stamps_follow_the_interface_resolution() {
    use pcap_file::DataLink;
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("download.pcapng");
    let hex = vector_hex("omci-baseline-frames.tsv");
    let start = hex::decode(&hex[22]).unwrap();
    let mut w = PcapNgWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    // The default interface resolution is microseconds (if_tsresol absent).
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::ETHERNET,
        snaplen: 0,
        options: vec![],
    })
    .unwrap();
    for (i, ticks) in [1_700_000_000_000_000u64, 1_700_000_000_002_500]
        .into_iter()
        .enumerate()
    {
        let frame = omci_codec::pcap::ethernet_frame(
            if i == 0 {
                Direction::Downstream
            } else {
                Direction::Upstream
            },
            Peer::Onu(OnuId(2)),
            &start,
        );
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            // pcap-file writes this value's nanoseconds as the raw tick count.
            timestamp: Duration::from_nanos(ticks),
            original_len: frame.len() as u32,
            data: frame.into(),
            options: vec![],
        })
        .unwrap();
    }
    drop(w);
    let out = omci(&["pcap", path.to_str().unwrap(), "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = json_lines(&out);
    assert_eq!(o[0]["timestamp_us"], 1_700_000_000_000_000u64);
    assert_eq!(o[1]["time_s"], 0.0025);
    assert_eq!(o[1]["peer"], "onu-2");
}

#[test]
fn ethernet_padding_is_cut_from_short_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("padded.pcap");
    // An extended Activate request (11 bytes) without trailer, and one with a CRC-32 trailer,
    // each padded to Ethernet's 60 bytes as a real link would.
    let plain = hex::decode("0009560b00070001000102").unwrap();
    let mut with_crc = plain.clone();
    with_crc.extend_from_slice(&omci_codec::crc::crc32_bzip2(&plain).to_be_bytes());
    let mut w = pcap_file::pcap::PcapWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    for omci_frame in [&plain, &with_crc] {
        let mut frame = omci_codec::pcap::ethernet_frame(
            Direction::Downstream,
            Peer::Onu(OnuId(9)),
            omci_frame,
        );
        frame.resize(60, 0);
        w.write_packet(&pcap_file::pcap::PcapPacket::new(
            Duration::ZERO,
            60,
            &frame,
        ))
        .unwrap();
    }
    drop(w);
    let out = omci(&["pcap", path.to_str().unwrap(), "--json"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let o = json_lines(&out);
    assert_eq!(o[0]["crc_ok"], Value::Null);
    assert_eq!(o[0]["activate_flags"], 2);
    assert_eq!(o[1]["crc_ok"], true);
    assert_eq!(o[1]["activate_flags"], 2);
}

/// `omci` with `stdin` given as bytes.
fn omci_bytes(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_omci"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("omci runs");
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    // Written from another thread, so that a large input cannot block on a full stdout.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

#[test]
fn a_line_that_is_not_text_is_reported_and_the_next_ones_decoded() {
    let hex = vector_hex("omci-baseline-frames.tsv");
    let mut input = Vec::new();
    input.extend(hex[0].as_bytes());
    input.extend(b"\n\xff\xfe not text\n");
    input.extend(vec![b'0'; 100_000]); // a line past 64 KiB
    input.push(b'\n');
    input.extend(hex[1].as_bytes());
    input.push(b'\n');
    let out = omci_bytes(&["decode", "--json"], &input);
    assert_eq!(out.status.code(), Some(1), "a failed line fails the run");
    let o = json_lines(&out);
    assert_eq!(o.len(), 4, "{o:?}");
    assert_eq!(o[0]["crc_ok"], true);
    assert_eq!(o[1]["line"], 2);
    assert_eq!(o[1]["error"], "line 2 is not UTF-8 text");
    assert_eq!(o[2]["line"], 3);
    assert!(
        o[2]["error"]
            .as_str()
            .unwrap()
            .contains("longer than 65536 bytes"),
        "{}",
        o[2]
    );
    assert_eq!(o[3]["crc_ok"], true, "decoded after them");
    assert_eq!(
        o[3]["line"],
        Value::Null,
        "a good frame has no error fields"
    );
    // The readable form names the line too.
    let text = omci_bytes(&["decode"], &input);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("frame 2 (line 2): line 2 is not UTF-8 text"),
        "{text}"
    );
    // And encode goes on after one.
    let json = String::from_utf8(omci(&["decode", "--json", &hex[0]], "").stdout).unwrap();
    let mut input = b"\xc3\x28\n".to_vec();
    input.extend(json.as_bytes());
    let out = omci_bytes(&["encode"], &input);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("omci encode: line 1: not UTF-8 text"), "{err}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), hex[0]);
}

#[test]
fn pcap_refuses_what_is_no_capture_at_once() {
    let started = std::time::Instant::now();
    let out = omci(&["pcap", "/dev/zero"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("not a pcap or pcapng capture"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A classic pcap header (little endian, microseconds, Ethernet) and `n` records of `len`
/// bytes each that are not OMCI (EtherType 0x0800).
fn classic_pcap(n: usize, len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        f.extend(v.to_le_bytes());
    }
    let mut packet = vec![0u8; len];
    packet[12..14].copy_from_slice(&[0x08, 0x00]);
    for i in 0..n {
        for v in [i as u32, 0, len as u32, len as u32] {
            f.extend(v.to_le_bytes());
        }
        f.extend(&packet);
    }
    f
}

#[test]
fn pcap_refuses_a_packet_past_its_bound_and_keeps_the_ones_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.pcap");
    let mut bytes = classic_pcap(2, 64);
    for v in [9u32, 0, u32::MAX, u32::MAX] {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    let out = omci(&["pcap", path.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2 packets in all"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("damaged after packet 2")
            && err.contains("a packet of 4294967295 bytes is longer than the 262144 bytes"),
        "{err}"
    );
}

#[test]
fn pcap_memory_stays_bounded_whatever_the_file() {
    // 96 MiB of capture through a pipe: the old reader held all of it (and its packets) in
    // memory; one packet at a time needs a few MiB.
    let mut child = Command::new(env!("CARGO_BIN_EXE_omci"))
        .args(["pcap", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut input = child.stdin.take().unwrap();
    let chunk = classic_pcap(1, 2048);
    input.write_all(&chunk).unwrap();
    let record = &chunk[24..];
    let mut block = Vec::new();
    for _ in 0..512 {
        block.extend_from_slice(record);
    }
    for _ in 0..(96 << 20) / block.len() {
        input.write_all(&block).unwrap();
    }
    // Read its peak while it still runs (its input is open).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peak_kib < 32 * 1024,
        "omci pcap peaked at {peak_kib} KiB on a 96 MiB capture"
    );
}
