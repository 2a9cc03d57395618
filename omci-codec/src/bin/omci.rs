//! `omci`: decode, encode and inspect OMCI frames from the command line.
//!
//! - `omci decode [--json] [HEX ...]` prints each frame as a protocol analyser would (or as one
//!   JSON object per line); without arguments it reads one frame per line of standard input.
//!   A line that is not UTF-8 text, or longer than [`MAX_LINE`], is reported with its line
//!   number and the next lines are decoded.
//! - `omci encode` reads those JSON objects, one per line, and prints each frame in hex with its
//!   trailer filled in, so `omci decode --json F | omci encode` gives F back.
//! - `omci pcap FILE` decodes every OMCI frame (EtherType 0x88B5) of a pcap or pcapng file,
//!   with the lab's transport envelope when the packet's comment keeps it. The file is read
//!   one packet at a time: memory stays bounded whatever its size (a packet longer than
//!   `omci_codec::pcap::MAX_PACKET_LEN` ends the reading with an error).
//!
//! Exit status: 0 when every frame was good, 1 when any frame or line failed, 2 for a usage
//! error.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use omci_codec::json::{JsonTrailer, from_json, to_json};
use omci_codec::pcap::{
    CaptureReader, Direction, ETHERNET_MIN_LEN, Peer, envelope_comment, omci_frame_len,
    parse_ethernet,
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

/// The person's input was wrong (a file that is not there, or not a capture): exit code 2.
#[derive(Debug)]
struct Usage(String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

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
        Err(e) if e.downcast_ref::<Usage>().is_some() => {
            eprintln!("omci: {e} (see omci --help)");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("omci: {}", omci_codec::cli::plain(&format!("{e:#}")));
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
                let lines = Lines::new(io::stdin().lock()).map(|(n, l)| (Input::Line(n), l));
                decode_all(lines, json, &trailer, &mut out)?
            } else {
                let args = hex
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| (Input::Argument(i + 1), Ok(Ok(h))));
                decode_all(args, json, &trailer, &mut out)?
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

/// The longest line `decode` and `encode` read: an extended frame is 1980 bytes, 3960 hex
/// digits (and its JSON a few more); a longer line is reported, not held in memory.
const MAX_LINE: usize = 64 * 1024;

/// Why a line of standard input is not text to read.
#[derive(Debug)]
enum LineError {
    /// Its bytes are not UTF-8.
    NotUtf8,
    /// It is longer than [`MAX_LINE`].
    TooLong,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::NotUtf8 => write!(f, "not UTF-8 text"),
            LineError::TooLong => write!(f, "longer than {MAX_LINE} bytes"),
        }
    }
}

/// The lines of a reader, numbered from 1, each read with memory bounded by [`MAX_LINE`]: a
/// line that is not UTF-8 or too long is an `Err` of its own and the next lines are read. A
/// read error ends the lines (it is given, then nothing).
struct Lines<R> {
    reader: R,
    n: usize,
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            n: 0,
            failed: false,
        }
    }

    /// The next line's bytes (without its newline), or `None` for a line past [`MAX_LINE`]
    /// (read through, not kept); `Ok(None)` at the end.
    fn next_bytes(&mut self) -> io::Result<Option<Option<Vec<u8>>>> {
        let mut line = Vec::new();
        let mut too_long = false;
        let mut any = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                break;
            }
            any = true;
            let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (&buf[..i], Some(i + 1)),
                None => (buf, None),
            };
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line.clear();
            } else if !too_long {
                line.extend_from_slice(chunk);
            }
            let used = done.unwrap_or(buf.len());
            self.reader.consume(used);
            if done.is_some() {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some((!too_long).then_some(line)))
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = (usize, io::Result<Result<String, LineError>>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let read = self.next_bytes();
        self.n += 1;
        Some((
            self.n,
            match read {
                Ok(None) => return None,
                Ok(Some(None)) => Ok(Err(LineError::TooLong)),
                Ok(Some(Some(bytes))) => {
                    Ok(String::from_utf8(bytes).map_err(|_| LineError::NotUtf8))
                }
                Err(e) => {
                    self.failed = true;
                    Err(e)
                }
            },
        ))
    }
}

/// Where a frame to decode came from.
#[derive(Clone, Copy)]
enum Input {
    /// This line of standard input.
    Line(usize),
    /// This argument.
    Argument(usize),
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Line(n) => write!(f, "line {n}"),
            Input::Argument(n) => write!(f, "argument {n}"),
        }
    }
}

fn decode_all(
    inputs: impl Iterator<Item = (Input, io::Result<Result<String, LineError>>)>,
    as_json: bool,
    trailer: &TrailerArgs,
    out: &mut impl Write,
) -> Result<bool> {
    let mut all_ok = true;
    let mut n = 0usize;
    for (from, line) in inputs {
        let line = line.with_context(|| format!("reading standard input at {from}"))?;
        // The line's number, for JSON (null for an argument).
        let line_no = match from {
            Input::Line(l) => json!(l),
            Input::Argument(_) => Value::Null,
        };
        let text = match &line {
            Ok(text) => text.trim(),
            Err(_) => "",
        };
        if line.is_ok() && (text.is_empty() || text.starts_with('#')) {
            continue;
        }
        n += 1;
        let bytes = match line
            .as_ref()
            .map_err(|e| format!("{from} is {e}"))
            .and_then(|_| parse_hex(text))
        {
            Ok(b) => b,
            Err(reason) => {
                all_ok = false;
                if as_json {
                    let v = json!({"input": n, "line": line_no, "error": reason, "offset": null, "result_code": null});
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "frame {n} ({from}): {reason}\n")?;
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
                    let mut v = error_json(n, &e);
                    v["line"] = line_no;
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(out, "frame {n} ({from}): does not decode: {e}\n")?;
                }
            }
        }
        out.flush()?;
    }
    Ok(all_ok)
}

fn encode_all(trailer: &TrailerArgs, out: &mut impl Write) -> Result<bool> {
    let mut all_ok = true;
    for (n, line) in Lines::new(io::stdin().lock()) {
        let line = match line.with_context(|| format!("reading standard input at line {n}"))? {
            Ok(line) => line,
            Err(why) => {
                all_ok = false;
                out.flush()?;
                eprintln!("omci encode: line {n}: {why}");
                continue;
            }
        };
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
                eprintln!("omci encode: line {n}: {reason}");
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
    let reader = std::fs::File::open(file).map_err(|e| {
        Usage(format!(
            "{}: {}",
            file.display(),
            omci_codec::cli::io_words(&e)
        ))
    })?;
    // One packet at a time: nothing of the file is kept but the packet being decoded.
    let packets = CaptureReader::new(io::BufReader::new(reader)).map_err(|e| {
        Usage(format!(
            "{}: {}",
            file.display(),
            omci_codec::cli::plain(&e.to_string())
        ))
    })?;
    let mut first = None;
    let mut stopped = None;
    let mut all_ok = true;
    let (mut read, mut frames, mut not_omci, mut not_ethernet) = (0usize, 0usize, 0usize, 0usize);
    for (index, packet) in packets.enumerate() {
        let packet = match packet {
            Ok(p) => p,
            Err(e) => {
                stopped = Some(e);
                all_ok = false;
                break;
            }
        };
        read += 1;
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
        let first = *first.get_or_insert(packet.timestamp);
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
            v["timestamp_us"] =
                json!(u64::try_from(packet.timestamp.as_micros()).unwrap_or(u64::MAX));
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
            "{frames} OMCI frames, {not_omci} other packets skipped, {read} packets in all"
        )?;
    }
    out.flush()?;
    if not_ethernet > 0 {
        eprintln!(
            "omci pcap: {not_ethernet} packets of a link type other than Ethernet skipped \
             (OMCI is read from Ethernet frames of EtherType 0x88B5)"
        );
    }
    if let Some(why) = &stopped {
        eprintln!(
            "omci pcap: {} is damaged after packet {read}: {why}",
            file.display()
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
