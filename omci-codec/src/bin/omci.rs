//! `omci`: decode, encode and inspect OMCI frames from the command line.
//!
//! - `omci decode [--json] [HEX ...]` prints each frame as a protocol analyser would (or as one
//!   JSON object per line); without arguments it reads one frame per line of standard input.
//! - `omci encode` reads those JSON objects, one per line, and prints each frame in hex with its
//!   trailer filled in, so `omci decode --json F | omci encode` gives F back.
//! - `omci pcap FILE` decodes every OMCI frame (EtherType 0x88B5) of a pcap or pcapng file.
//!
//! Exit status: 0 when every frame was good, 1 when any frame failed, 2 for a usage error.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use omci_codec::json::{JsonTrailer, from_json, to_json};
use omci_codec::pcap::{Direction, Peer, omci_frame_len, parse_ethernet, read_capture};
use omci_codec::render::render_decoded;
use omci_codec::{Codec, ExtendedTrailer, MicKey, ParseError};
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
    #[arg(long, value_name = "HEX", value_parser = parse_mic_key)]
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
    fn codec_for(&self, frame: &[u8]) -> Result<Codec> {
        let trailer = match self.extended_trailer {
            TrailerChoice::None => ExtendedTrailer::None,
            TrailerChoice::Crc32 => ExtendedTrailer::Crc32,
            TrailerChoice::Mic => ExtendedTrailer::Mic(self.require_key()?),
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
        Ok(Codec::new(trailer))
    }

    fn require_key(&self) -> Result<MicKey> {
        match &self.mic_key {
            Some(k) => Ok(k.clone()),
            None => bail!("--extended-trailer mic needs --mic-key"),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("omci: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Help and version go to standard output as clap writes them; a usage error is one line
/// naming the fault (and clap's suggestion, if it has one), with exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    {
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            },
        );
    }
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid usage");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let extra: String = lines
        .filter(|l| l.starts_with("tip:") || l.starts_with("[possible values"))
        .map(|l| format!("; {}", l.trim_start_matches('[').trim_end_matches(']')))
        .collect();
    eprintln!("omci: {first}{extra} (see omci --help)");
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<bool> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let ok = match cli.command {
        Command::Decode { json, trailer, hex } => {
            let inputs: Vec<String> = if hex.is_empty() {
                io::stdin()
                    .lock()
                    .lines()
                    .collect::<io::Result<_>>()
                    .context("reading standard input")?
            } else {
                hex
            };
            decode_all(&inputs, json, &trailer, &mut out)?
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
        v["tci"] = json!(h.tci.0);
        v["message_type"] = json!(h.message_type.to_string());
        v["device_id"] = json!(h.format.name());
        v["me_class"] = json!(h.me.class.0);
        v["me_instance"] = json!(h.me.instance);
    }
    v
}

fn decode_all(
    inputs: &[String],
    as_json: bool,
    trailer: &TrailerArgs,
    out: &mut impl Write,
) -> Result<bool> {
    let mut all_ok = true;
    let mut n = 0usize;
    for line in inputs {
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
                    writeln!(
                        out,
                        "{}",
                        json!({"input": n, "error": reason, "offset": null})
                    )?;
                } else {
                    writeln!(out, "frame {n}: {reason}\n")?;
                }
                continue;
            }
        };
        let codec = trailer.codec_for(&bytes)?;
        match codec.decode(&bytes) {
            Ok(decoded) => {
                let good = decoded.integrity.crc_ok() != Some(false)
                    && decoded.integrity.mic_ok() != Some(false);
                all_ok &= good;
                if as_json {
                    let mut v = to_json(&decoded);
                    // A frame whose padding was not zero does not re-emit identically.
                    let canonical = codec.to_vec(&decoded.message).ok().as_deref() == Some(&bytes);
                    if !canonical {
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
    }
    Ok(all_ok)
}

fn encode_all(trailer: &TrailerArgs, out: &mut impl Write) -> Result<bool> {
    let mut all_ok = true;
    for (i, line) in io::stdin().lock().lines().enumerate() {
        let line = line.context("reading standard input")?;
        if line.trim().is_empty() {
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
                        ExtendedTrailer::Mic(trailer.require_key().map_err(|e| e.to_string())?)
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
    let packets = read_capture(io::BufReader::new(reader))
        .with_context(|| format!("reading {} as pcap or pcapng", file.display()))?;
    let first = packets.first().map(|p| p.timestamp).unwrap_or_default();
    let mut all_ok = true;
    let mut skipped = 0usize;
    let mut frames = 0usize;
    for (index, packet) in packets.iter().enumerate() {
        let Some(eth) = parse_ethernet(&packet.data) else {
            skipped += 1;
            continue;
        };
        frames += 1;
        // A short frame on a real link is padded to 60 bytes: cut the padding off.
        let mut omci = eth.omci;
        if let Some(n) = omci_frame_len(omci, 0) {
            let with_trailer = n + 4;
            if omci.len() > with_trailer && packet.data.len() <= 60 {
                omci = &omci[..with_trailer.min(omci.len())];
            }
        }
        let direction = eth.direction.map(Direction::name);
        let peer = match eth.peer {
            Some(Peer::Onu(onu)) => Some(onu.to_string()),
            Some(Peer::Multicast) => Some("multicast".to_string()),
            None => None,
        };
        let ts = packet.timestamp.as_secs_f64();
        let rel = packet.timestamp.saturating_sub(first).as_secs_f64();
        let codec = trailer.codec_for(omci)?;
        let decoded = codec.decode(omci);
        if as_json {
            let mut v = match &decoded {
                Ok(d) => to_json(d),
                Err(e) => error_json(frames, e),
            };
            v["packet"] = json!(index + 1);
            v["timestamp"] = json!(ts);
            v["time_s"] = json!(rel);
            v["direction"] = json!(direction);
            v["peer"] = json!(peer);
            v["src_mac"] = json!(mac(&eth.src));
            v["dst_mac"] = json!(mac(&eth.dst));
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
            match &decoded {
                Ok(d) => writeln!(out, "{}", render_decoded(d, omci.len()))?,
                Err(e) => writeln!(out, "  does not decode: {e}\n")?,
            }
        }
        match decoded {
            Ok(d) => {
                all_ok &= d.integrity.crc_ok() != Some(false) && d.integrity.mic_ok() != Some(false)
            }
            Err(_) => all_ok = false,
        }
    }
    if !as_json {
        writeln!(
            out,
            "{frames} OMCI frames, {skipped} other packets skipped, {} packets in all",
            packets.len()
        )?;
    }
    Ok(all_ok)
}

fn mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
