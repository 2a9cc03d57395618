//! `omci`: decode, encode and inspect OMCI frames from the command line.
//!
//! - `omci decode [--json] [HEX ...]` prints each frame as a protocol analyser would (or as one
//!   JSON object per line); without arguments it reads one frame per line of standard input.
//! - `omci encode` reads those JSON objects, one per line, and prints each frame in hex with its
//!   trailer filled in, so `omci decode --json F | omci encode` gives F back.
//! - `omci pcap FILE` decodes every OMCI frame (EtherType 0x88B5) of a pcap or pcapng file,
//!   with the lab's transport envelope when the packet's comment keeps it.
//!
//! Exit status: 0 when every frame was good, 1 when any frame failed, 2 for a usage error.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use omci_codec::json::{JsonTrailer, from_json, to_json};
use omci_codec::pcap::{
    Direction, ETHERNET_MIN_LEN, Peer, envelope_comment, omci_frame_len, parse_ethernet,
    read_capture,
};
use omci_codec::render::render_decoded;
use omci_codec::{Codec, Decoded, Envelope, ExtendedTrailer, MicKey, ParseError};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "omci",
    version,
    about = "Decode, encode and inspect OMCI (ITU-T G.988) frames"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode frames given in hex (arguments, or one per line of standard input).
    Decode {
        /// One JSON object per frame instead of the readable tree.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trailer: TrailerArgs,
        /// Frames in hex (spaces, ':' and a leading 0x are allowed inside one argument).
        hex: Vec<String>,
    },
    /// Encode the JSON objects of `omci decode --json` (one per line of standard input) to hex.
    Encode {
        #[command(flatten)]
        trailer: TrailerArgs,
    },
    /// Decode every OMCI frame of a pcap or pcapng capture (Ethernet, EtherType 0x88B5).
    Pcap {
        /// The capture file.
        file: PathBuf,
        /// One JSON object per frame instead of the readable tree.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        trailer: TrailerArgs,
    },
}

#[derive(Args, Clone)]
struct TrailerArgs {
    /// What ends an extended (0x0B) frame: `auto` tells no trailer from a CRC-32 by the length
    /// field (and tries the MIC when a key is given).
    #[arg(long, value_enum, default_value_t = TrailerChoice::Auto)]
    extended_trailer: TrailerChoice,
    /// AES-128 key (32 hex digits) for the G.987.3 message integrity check of extended frames.
    #[arg(long, value_name = "HEX", value_parser = parse_mic_key,
          required_if_eq("extended_trailer", "mic"))]
    mic_key: Option<MicKey>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TrailerChoice {
    /// Decide from the frame's length field.
    Auto,
    /// Extended frames end with their contents.
    None,
    /// Extended frames end with a CRC-32/BZIP2.
    Crc32,
    /// Extended frames end with an AES-CMAC MIC (needs --mic-key).
    Mic,
}

fn parse_mic_key(s: &str) -> Result<MicKey, String> {
    let bytes = hex::decode(s.trim_start_matches("0x")).map_err(|e| format!("not hex: {e}"))?;
    let key: [u8; 16] = bytes
        .try_into()
        .map_err(|_| "expected 16 bytes (32 hex digits)".to_string())?;
    Ok(MicKey(key))
}

impl TrailerArgs {
    /// The codec for one frame: fixed by the flags, or by the frame's length under `auto`.
    fn codec_for(&self, frame: &[u8]) -> Codec {
        let trailer = match self.extended_trailer {
            TrailerChoice::None => ExtendedTrailer::None,
            TrailerChoice::Crc32 => ExtendedTrailer::Crc32,
            // clap requires --mic-key with `mic`.
            TrailerChoice::Mic => self
                .mic_key
                .clone()
                .map_or(ExtendedTrailer::None, ExtendedTrailer::Mic),
            TrailerChoice::Auto => match omci_frame_len(frame, 0) {
                Some(n) if frame.get(3) == Some(&0x0B) && frame.len() == n + 4 => {
                    match &self.mic_key {
                        Some(key) => {
                            let mic = Codec::new(ExtendedTrailer::Mic(key.clone()));
                            if mic.parse(frame).is_ok() {
                                ExtendedTrailer::Mic(key.clone())
                            } else {
                                ExtendedTrailer::Crc32
                            }
                        }
                        None => ExtendedTrailer::Crc32,
                    }
                }
                _ => ExtendedTrailer::None,
            },
        };
        Codec::new(trailer)
    }

    /// The OMCI frame of an Ethernet payload, Ethernet padding cut off. Only a frame shorter
    /// than Ethernet's minimum (60 bytes) was padded; for an extended frame under `auto`, four
    /// bytes past the contents are kept only if they are a CRC-32 or MIC that checks.
    fn unpad<'a>(&self, omci: &'a [u8], ethernet_len: usize) -> &'a [u8] {
        let Some(n) = omci_frame_len(omci, 0) else {
            return omci;
        };
        if ethernet_len > ETHERNET_MIN_LEN || omci.len() <= n {
            return omci;
        }
        let keep = if omci[3] == 0x0A {
            n
        } else {
            match self.extended_trailer {
                TrailerChoice::None => n,
                TrailerChoice::Crc32 | TrailerChoice::Mic => n + 4,
                TrailerChoice::Auto => {
                    let with_trailer = &omci[..(n + 4).min(omci.len())];
                    let checks = |t: ExtendedTrailer| Codec::new(t).parse(with_trailer).is_ok();
                    if with_trailer.len() == n + 4
                        && (checks(ExtendedTrailer::Crc32)
                            || self
                                .mic_key
                                .clone()
                                .is_some_and(|k| checks(ExtendedTrailer::Mic(k))))
                    {
                        n + 4
                    } else {
                        n
                    }
                }
            }
        };
        &omci[..keep.min(omci.len())]
    }
}

fn main() -> ExitCode {
    let cli = match omci_codec::cli::parse_or_exit::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        // The reader went away (`omci decode ... | head`): not an error of ours.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("omci: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<bool> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let ok = match cli.command {
        Command::Decode { json, trailer, hex } => {
            if hex.is_empty() {
                // One frame per line, each printed as soon as it is read.
                let lines = io::stdin().lock().lines();
                decode_all(lines, json, &trailer, &mut out)?
            } else {
                decode_all(hex.into_iter().map(Ok), json, &trailer, &mut out)?
            }
        }
        Command::Encode { trailer } => encode_all(&trailer, &mut out)?,
        Command::Pcap {
            file,
            json,
            trailer,
        } => pcap(&file, json, &trailer, &mut out)?,
    };
    out.flush()?;
    Ok(ok)
}

/// Hex from a line: spaces, tabs, ':' and '-' separators and a leading 0x are allowed.
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | ':' | '-'))
        .collect();
    hex::decode(&cleaned).map_err(|e| format!("not hex: {e}"))
}

fn error_json(input: usize, e: &ParseError) -> Value {
    let mut v = json!({
        "input": input,
        "error": e.kind.to_string(),
        "offset": e.offset,
        "result_code": e.result_code().map(|r| r.as_u8()),
    });
    if let Some(h) = &e.header {
        // The same names as a decoded frame's.
        v["tci"] = json!(h.tci.0);
        v["message_type"] = json!(h.message_type.name().map_or_else(
            || format!("Unknown ({})", h.message_type.code()),
            str::to_string
        ));
        v["message_type_code"] = json!(h.message_type.code());
        v["ar"] = json!(h.ar);
        v["ak"] = json!(h.ak);
        v["device_id"] = json!(h.format.name());
        v["me_class"] = json!(h.me.class.0);
        v["me_instance"] = json!(h.me.instance);
    }
    v
}

fn integrity_ok(d: &Decoded<'_>) -> bool {
    d.integrity.crc_ok() != Some(false) && d.integrity.mic_ok() != Some(false)
}

fn decode_all(
    inputs: impl Iterator<Item = io::Result<String>>,
    as_json: bool,
    trailer: &TrailerArgs,
    out: &mut impl Write,
) -> Result<bool> {
    let mut all_ok = true;
    let mut n = 0usize;
    for line in inputs {
        let line = line.context("reading standard input")?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        n += 1;
        let bytes = match parse_hex(text) {
            Ok(b) => b,
            Err(reason) => {
                all_ok = false;
                if as_json {
                    let v =
                        json!({"input": n, "error": reason, "offset": null, "result_code": null});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "frame {n}: {reason}\n")?;
                }
                continue;
            }
        };
        let codec = trailer.codec_for(&bytes);
        match codec.decode(&bytes) {
            Ok(decoded) => {
                let good = integrity_ok(&decoded);
                all_ok &= good;
                if as_json {
                    let mut v = to_json(&decoded);
                    // A good frame whose padding was not zero does not re-emit identically.
                    if good && codec.to_vec(&decoded.message).ok().as_deref() != Some(&bytes[..]) {
                        v["canonical"] = json!(false);
                    }
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "{}", render_decoded(&decoded, bytes.len()))?;
                }
            }
            Err(e) => {
                all_ok = false;
                if as_json {
                    writeln!(out, "{}", error_json(n, &e))?;
                } else {
                    writeln!(out, "frame {n}: does not decode: {e}\n")?;
                }
            }
        }
        out.flush()?;
    }
    Ok(all_ok)
}

fn encode_all(trailer: &TrailerArgs, out: &mut impl Write) -> Result<bool> {
    let mut all_ok = true;
    for (i, line) in io::stdin().lock().lines().enumerate() {
        let line = line.context("reading standard input")?;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let result = serde_json::from_str::<Value>(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| from_json(&v).map_err(|e| e.to_string()))
            .and_then(|frame| {
                let ext = match (trailer.extended_trailer, frame.trailer) {
                    (TrailerChoice::None, _) | (TrailerChoice::Auto, JsonTrailer::None) => {
                        ExtendedTrailer::None
                    }
                    (TrailerChoice::Crc32, _) | (TrailerChoice::Auto, JsonTrailer::Crc32) => {
                        ExtendedTrailer::Crc32
                    }
                    (TrailerChoice::Mic, _) | (TrailerChoice::Auto, JsonTrailer::Mic) => {
                        match &trailer.mic_key {
                            Some(key) => ExtendedTrailer::Mic(key.clone()),
                            None => return Err("mic_ok is set: give --mic-key".to_string()),
                        }
                    }
                };
                Codec::new(ext)
                    .to_vec(&frame.message)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(bytes) => writeln!(out, "{}", hex::encode(bytes))?,
            Err(reason) => {
                all_ok = false;
                out.flush()?;
                eprintln!("omci encode: line {}: {reason}", i + 1);
            }
        }
    }
    Ok(all_ok)
}

fn pcap(
    file: &PathBuf,
    as_json: bool,
    trailer: &TrailerArgs,
    out: &mut impl Write,
) -> Result<bool> {
    let reader =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let capture = read_capture(io::BufReader::new(reader))
        .with_context(|| format!("reading {} as pcap or pcapng", file.display()))?;
    let packets = &capture.packets;
    let first = packets.first().map(|p| p.timestamp).unwrap_or_default();
    let mut all_ok = capture.stopped.is_none();
    let (mut frames, mut not_omci, mut not_ethernet) = (0usize, 0usize, 0usize);
    for (index, packet) in packets.iter().enumerate() {
        if !packet.ethernet {
            not_ethernet += 1;
            continue;
        }
        let Some(eth) = parse_ethernet(&packet.data) else {
            not_omci += 1;
            continue;
        };
        frames += 1;
        let omci = trailer.unpad(eth.omci, packet.data.len());
        let direction = eth.direction.map(Direction::name);
        let peer = match eth.peer {
            Some(Peer::Onu(onu)) => Some(onu.to_string()),
            Some(Peer::Multicast) => Some("multicast".to_string()),
            None => None,
        };
        let rel = packet.timestamp.saturating_sub(first).as_secs_f64();
        // What the lab's transport envelope said, when the capture kept it (docs/wire.md).
        let envelope = packet.envelope();
        let codec = trailer.codec_for(omci);
        let decoded = codec.decode(omci);
        if as_json {
            let mut v = match &decoded {
                Ok(d) => to_json(d),
                Err(e) => error_json(frames, e),
            };
            v["packet"] = json!(index + 1);
            v["timestamp_us"] = json!(packet.timestamp.as_micros() as u64);
            v["time_s"] = json!(rel);
            v["direction"] = json!(direction);
            v["peer"] = json!(peer);
            v["src_mac"] = json!(mac(&eth.src));
            v["dst_mac"] = json!(mac(&eth.dst));
            match &envelope {
                Some(Ok(e)) => v["envelope"] = envelope_json(e),
                Some(Err(why)) => v["envelope_error"] = json!(why.to_string()),
                None => {}
            }
            writeln!(out, "{v}")?;
        } else {
            let arrow = match (eth.direction, &peer) {
                (Some(Direction::Downstream), Some(p)) => format!("OLT -> {p}"),
                (Some(Direction::Upstream), Some(p)) => format!("{p} -> OLT"),
                _ => format!("{} -> {}", mac(&eth.src), mac(&eth.dst)),
            };
            writeln!(
                out,
                "#{} {rel:.6}s {} {arrow}",
                index + 1,
                direction.unwrap_or("unknown direction")
            )?;
            match &envelope {
                Some(Ok(e)) => {
                    let fields = envelope_comment(e);
                    let fields = fields.split_once(' ').map_or("", |(_, f)| f);
                    writeln!(out, "  Envelope: {fields}")?;
                }
                Some(Err(why)) => writeln!(out, "  Envelope comment does not read: {why}")?,
                None => {}
            }
            match &decoded {
                Ok(d) => writeln!(out, "{}", render_decoded(d, omci.len()))?,
                Err(e) => writeln!(out, "  does not decode: {e}\n")?,
            }
        }
        all_ok &= decoded.as_ref().is_ok_and(integrity_ok);
    }
    if !as_json {
        writeln!(
            out,
            "{frames} OMCI frames, {not_omci} other packets skipped, {} packets in all",
            packets.len()
        )?;
    }
    out.flush()?;
    if not_ethernet > 0 {
        eprintln!(
            "omci pcap: {not_ethernet} packets of a link type other than Ethernet skipped \
             (OMCI is read from Ethernet frames of EtherType 0x88B5)"
        );
    }
    if let Some(why) = &capture.stopped {
        eprintln!(
            "omci pcap: {} is damaged after packet {}: {why}",
            file.display(),
            packets.len()
        );
    }
    Ok(all_ok)
}

/// The envelope's fields as JSON: numbers, and the missing sections as a list.
fn envelope_json(e: &Envelope) -> Value {
    let mut v = json!({"onu_id": e.onu_id.0, "gem_port": e.gem_port.0});
    if let Some(w) = e.window_no {
        v["window"] = json!(w.0);
    }
    if let Some(crc) = e.window_crc {
        v["window_crc"] = json!(crc);
    }
    if let Some(m) = &e.missing {
        let sections: Vec<usize> = (0..m.len() * 8)
            .filter(|n| m[n / 8] & (1 << (n % 8)) != 0)
            .collect();
        v["missing"] = json!(sections);
    }
    v
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
