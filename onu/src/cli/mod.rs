//! The `onu` command line: run emulated ONUs, build and inspect firmware images, read an ONU's flash.
//!
//! The `onu` binary is [`main_with`] with its own name; `scenario` runs the same code as
//! `scenario onu ...` so that one `cargo run` builds every process a scenario starts.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::boot::BootConfig;
use crate::core::OnuConfig;
use crate::driver::{self, DriverConfig};
use crate::faults::{FaultPoint, Faults, PowerLossPlan};
use crate::flash::FileFlash;
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ed25519_dalek::{SigningKey, VerifyingKey};
use omci_codec::OnuId;
use omci_codec::obbaa::CtermName;
use pon::firmware::{self as image, BuildSpec};
use pon::link::{LinkFaultRates, Paths};
use pon::manifest::{Manifest, Rollout};
use pon::transport::{self as net, Framing, TransportKind};

/// The smallest image: a header and a signature around an empty payload.
const MIN_IMAGE: u64 = (image::HEADER_LEN + image::SIGNATURE_LEN) as u64;
/// The largest image: G.988's image size is 32 bits (Start and End software download).
const MAX_IMAGE: u64 = u32::MAX as u64;
/// The largest payload `onu image build --size` makes (the image stays within [`MAX_IMAGE`]).
const MAX_PAYLOAD: u64 = MAX_IMAGE - MIN_IMAGE;
/// A slot's bytes unless `--slot-size` says otherwise (docs/decisions.md).
const DEFAULT_SLOT_SIZE: u64 = 64 * 1024 * 1024;
/// `--busy-ms` at most: an hour.
const MAX_BUSY_MS: u64 = 3_600_000;
/// `--stale-download-s` at most: a day.
const MAX_STALE_S: u64 = 86_400;
/// `--reboot-ms` at most: ten minutes.
const MAX_REBOOT_MS: u64 = 600_000;
/// Bytes of a key file read at most (a hex key and a newline is 65).
const MAX_KEY_FILE: u64 = 4096;

/// A fault of the command line found after parsing (a value that contradicts another, a file
/// of the wrong kind): one line naming the flag, exit status 2, as clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// A [`UsageError`] saying `what`.
fn usage(what: impl Into<String>) -> anyhow::Error {
    UsageError(what.into()).into()
}

#[derive(Parser)]
#[command(
    name = "onu",
    version,
    about = "An emulated GPON ONU, its firmware images and its flash"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one ONU (or --count of them, one process each) on loopback.
    Run(RunArgs),
    /// Build, sign and inspect firmware images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Read an ONU's flash offline, as its bootloader would.
    Status(StatusArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Make an Ed25519 key pair: PREFIX.key (secret) and PREFIX.pub (public), hex.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build and sign an image, and write its manifest.
    Build(BuildArgs),
    /// Make the signed delta package that rebuilds --to from --from, and write its manifest.
    Delta(DeltaArgs),
    /// Rebuild a delta package's target from its base as the ONU does (the package's
    /// signature and base checked, the patch streamed, the result verified as a full image),
    /// and print the time and peak memory it took.
    Apply {
        /// The base image.
        #[arg(long)]
        base: PathBuf,
        /// The delta package.
        #[arg(long)]
        delta: PathBuf,
        /// Public key file the package and the rebuilt image must verify with.
        #[arg(long)]
        public_key: PathBuf,
        /// Where to write the rebuilt image.
        #[arg(long)]
        out: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print an image's or a delta package's header and check it (hash, and signature given
    /// the public key).
    Inspect {
        /// The image or delta package.
        image: PathBuf,
        /// Public key file: check the signature.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct BuildArgs {
    /// Secret key file (from `onu image keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Device model (at most 32 bytes).
    #[arg(long)]
    model: String,
    /// Version string (at most 14 bytes): what the Software image ME reports.
    #[arg(long)]
    version: String,
    /// Anti-rollback (security) version.
    #[arg(long, default_value_t = 1)]
    security_version: u32,
    /// Build number.
    #[arg(long, default_value_t = 1)]
    build: u64,
    /// Payload from this file.
    #[arg(long, conflicts_with_all = ["size", "derive_from"])]
    payload: Option<PathBuf>,
    /// Or the payload of this image, changed as --changed, --inserted and --moved say (a new
    /// version for delta tests; docs/image-format.md).
    #[arg(long, conflicts_with = "size")]
    derive_from: Option<PathBuf>,
    /// With --derive-from: percent of the payload's bytes changed in place (spread, 0..=100).
    #[arg(long, default_value_t = 1.0, requires = "derive_from", value_parser = percent)]
    changed: f64,
    /// With --derive-from: percent of the payload's length inserted as new bytes (0..=100).
    #[arg(long, default_value_t = 0.0, requires = "derive_from", value_parser = percent)]
    inserted: f64,
    /// With --derive-from: percent of the payload's bytes moved elsewhere (0..=100).
    #[arg(long, default_value_t = 0.0, requires = "derive_from", value_parser = percent)]
    moved: f64,
    /// Or a payload of this many deterministic bytes (e.g. 1048576); the image (128 header
    /// and 64 signature bytes around it) must fit --slot-size.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=MAX_PAYLOAD))]
    size: Option<u64>,
    /// The slot the image is for: the image must fit it (an ONU refuses a larger one at Start).
    #[arg(long, default_value_t = DEFAULT_SLOT_SIZE,
          value_parser = clap::value_parser!(u64).range(MIN_IMAGE..=MAX_IMAGE))]
    slot_size: u64,
    /// Build a test image that fails to boot.
    #[arg(long)]
    fails_to_boot: bool,
    /// Where to write the image.
    #[arg(long)]
    out: PathBuf,
    /// Where to write the manifest (default: the image path with .json).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The manifest's rollout percent (canary share).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    rollout_percent: u8,
    /// The manifest's rollout start, RFC 3339 (default: now).
    #[arg(long)]
    rollout_start: Option<String>,
}

/// A percentage, 0..=100.
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage (0 to 100)")),
    }
}

#[derive(Args)]
struct DeltaArgs {
    /// The base image: the one the ONUs run and commit.
    #[arg(long)]
    from: PathBuf,
    /// The target image: what the ONUs rebuild, byte for byte.
    #[arg(long)]
    to: PathBuf,
    /// Secret key file (from `onu image keygen`) the package is signed with.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the package.
    #[arg(long)]
    out: PathBuf,
    /// Where to write the manifest (default: the package path with .json).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The manifest's rollout percent (canary share).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    rollout_percent: u8,
    /// The manifest's rollout start, RFC 3339 (default: now).
    #[arg(long)]
    rollout_start: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    /// The ONU's state directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// Public key file images are checked with.
    #[arg(long)]
    public_key: PathBuf,
    /// Device model (default: the model of the image in slot 0 or 1).
    #[arg(long)]
    model: Option<String>,
    /// The golden image the bootloader would restore.
    #[arg(long)]
    golden: Option<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// ONU-ID on the PON, 0..=65534 (the first one with --count; 65535 means every ONU).
    #[arg(long, alias = "base-id", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(0..=65534))]
    onu_id: u16,
    /// Serial number: 4 vendor letters and 8 hex digits (default LABS + the ONU-ID).
    #[arg(long)]
    serial: Option<String>,
    /// Device model.
    #[arg(long, default_value = "LAB-ONU-1")]
    model: String,
    /// State directory (flash). With --count, each ONU gets DIR/onu-<id>.
    #[arg(long)]
    state_dir: PathBuf,
    /// The OLT's address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    olt: SocketAddrV4,
    /// This ONU's address, loopback only (with --count, the first; the others take the next
    /// ports).
    #[arg(long, default_value = "127.0.0.1:40001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// The multicast download group, joined on the loopback interface [default:
    /// 239.255.0.1:47000; none with --transport obbaa].
    #[arg(long, value_parser = net::parse_group)]
    group: Option<SocketAddrV4>,
    /// How datagrams carry OMCI frames: lab (the lab's envelope) or obbaa (the Broadband
    /// Forum's OB-BAA framing, unicast only, needs --cterm).
    #[arg(long, value_enum, default_value_t = TransportKind::Lab)]
    transport: TransportKind,
    /// With --transport obbaa: this ONU's channel termination name (1 to 30 bytes), required
    /// byte for byte of every datagram and written on every answer.
    #[arg(long, value_parser = net::parse_cterm)]
    cterm: Option<CtermName>,
    /// Public key file release images are signed with.
    #[arg(long)]
    public_key: PathBuf,
    /// The golden (factory) image, installed on a fresh flash and restored when nothing
    /// boots: a file, or tftp://127.0.0.1:PORT/NAME to fetch it in recovery mode from a TFTP
    /// server on loopback (docs/onu.md).
    #[arg(long, value_parser = parse_golden)]
    golden: Option<GoldenSource>,
    /// With --golden tftp://...: a local golden image tried when the server fails (the "USB
    /// stick" of the modelled bootloader).
    #[arg(long)]
    golden_fallback: Option<PathBuf>,
    /// With --golden tftp://...: the longest wait between recovery attempts (ms),
    /// 100..=600000; the wait starts at 1 s (or this, if shorter) and doubles.
    #[arg(long, default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    recovery_max_backoff_ms: u64,
    /// Cut the power at a named point, optionally its N-th time: POINT or POINT@N. Points:
    /// mid-section-write, after-window-ack, during-busy, mid-metadata-write, after-activate,
    /// after-reboot-before-commit, mid-golden-restore (recovery mode, TFTP), mid-delta-rebuild,
    /// delta-rebuilt-before-swap, delta-swapped-before-metadata (a delta package's rebuild).
    #[arg(long, value_parser = parse_fault)]
    fault: Option<PowerLossPlan>,
    /// Which downstream channels the downstream faults apply to.
    #[arg(long, value_enum, default_value_t = Paths::Both)]
    faults_on: Paths,
    /// Downstream datagram loss rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    drop: f64,
    /// Downstream duplication rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    duplicate: f64,
    /// Downstream reordering rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    reorder: f64,
    /// Downstream bit-corruption rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    corrupt: f64,
    /// Upstream datagram loss rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    drop_upstream: f64,
    /// Upstream duplication rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    duplicate_upstream: f64,
    /// Upstream reordering rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    reorder_upstream: f64,
    /// Upstream bit-corruption rate (0..1).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    corrupt_upstream: f64,
    /// Bytes a software image slot holds (larger images are refused at Start), 192..=4294967295
    /// (the smallest image, and G.988's 32-bit image size).
    #[arg(long, default_value_t = DEFAULT_SLOT_SIZE,
          value_parser = clap::value_parser!(u64).range(MIN_IMAGE..=MAX_IMAGE))]
    slot_size: u64,
    /// Seed of the link faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long End software download answers "device busy" (ms), 0..=3600000.
    #[arg(long, default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(0..=MAX_BUSY_MS))]
    busy_ms: u64,
    /// The largest window (sections) this ONU accepts (1..=256).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=256))]
    max_window: u16,
    /// Make every window durable (fsync) before acknowledging it, and the image before End
    /// records it valid (the strict behaviour; docs/onu.md, "Durability").
    #[arg(long)]
    sync_every_window: bool,
    /// Discard a download idle this long (s), 1..=86400.
    #[arg(long, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_STALE_S))]
    stale_download_s: u64,
    /// A voice call is in progress (Activate and Reboot with flag 1 answer busy).
    #[arg(long)]
    voice_call: bool,
    /// An emergency call is in progress (flag 2 answers busy).
    #[arg(long)]
    emergency_call: bool,
    /// Reboot in the same process (keep running across Activate and Reboot).
    #[arg(long)]
    supervise: bool,
    /// How long a reboot takes (ms), 0..=600000.
    #[arg(long, default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(0..=MAX_REBOOT_MS))]
    reboot_ms: u64,
    /// Start this many ONUs, one child process each, with consecutive ONU-IDs and ports.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=128))]
    count: u16,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Check the OLT: record every rule of the G.988 software download it breaks (docs/conformance.md).
    #[arg(long)]
    check_olt: bool,
    /// With --check-olt: write the rules broken to this JSON file when the process ends (per
    /// rule: its G.988 source, how many times, the first and last frame; with --count, each
    /// ONU to FILE with -onu<ID> before its extension).
    #[arg(long, requires = "check_olt")]
    report: Option<PathBuf>,
    /// With --report: list every violation too, in order (memory grows with them).
    #[arg(long, requires = "report")]
    check_olt_all: bool,
    /// Set by `--count` on each child it starts: the supervisor's process id. The child dies
    /// with it (a parent-death signal), and ends at once if it is already gone.
    #[arg(long, hide = true)]
    supervisor_pid: Option<u32>,
    /// Behave like a weaker emulator (repeatable), to see the conformance suite fail:
    /// no-section-tracking, always-valid, no-fallback, ignore-window-crc, end-before-write,
    /// not-supported.
    #[arg(long = "quirk", value_parser = clap::builder::PossibleValuesParser::new(crate::core::Quirks::NAMES))]
    quirks: Vec<String>,
}

/// Where `--golden` takes the golden image from.
#[derive(Clone, Debug)]
enum GoldenSource {
    /// A local file.
    File(PathBuf),
    /// A TFTP server on loopback (recovery mode).
    Tftp(crate::recovery::TftpUrl),
}

fn parse_golden(s: &str) -> Result<GoldenSource, String> {
    if s.contains("://") {
        s.parse().map(GoldenSource::Tftp)
    } else {
        Ok(GoldenSource::File(PathBuf::from(s)))
    }
}

fn rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a rate between 0 and 1"))
    }
}

fn parse_fault(s: &str) -> Result<PowerLossPlan, String> {
    let (point, occurrence) = match s.split_once('@') {
        Some((p, n)) => (
            p,
            n.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{n:?} is not an occurrence (1, 2, ...)"))?,
        ),
        None => (s, 1),
    };
    Ok(PowerLossPlan {
        point: point.parse::<FaultPoint>()?,
        occurrence,
    })
}

/// How this tool was invoked: the command that runs it again (for the child processes it
/// starts) and its arguments after the program name.
struct Invocation {
    program: Vec<std::ffi::OsString>,
    args: Vec<String>,
}

static INVOCATION: std::sync::OnceLock<Invocation> = std::sync::OnceLock::new();

/// The command that runs this tool again, and the arguments of this run.
fn invocation() -> &'static Invocation {
    INVOCATION.get_or_init(|| Invocation {
        program: std::env::current_exe()
            .into_iter()
            .map(Into::into)
            .collect(),
        args: std::env::args().skip(1).collect(),
    })
}

/// Runs the `onu` command line `args` (the program name first). `program` is the command
/// that runs this tool again (the binary itself, or `scenario onu`), for the child
/// processes it starts.
pub fn main_with(program: Vec<std::ffi::OsString>, args: Vec<std::ffi::OsString>) -> ExitCode {
    let _ = INVOCATION.set(Invocation {
        program,
        args: args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    });
    let cli = match omci_codec::cli::parse_from_or_exit::<Cli>(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Image(ImageCommand::Keygen { out }) => keygen(&out).map(|()| ExitCode::SUCCESS),
        Command::Image(ImageCommand::Build(args)) => build(&args).map(|()| ExitCode::SUCCESS),
        Command::Image(ImageCommand::Delta(args)) => delta(&args).map(|()| ExitCode::SUCCESS),
        Command::Image(ImageCommand::Apply {
            base,
            delta,
            public_key,
            out,
            json,
        }) => apply(&base, &delta, &public_key, &out, json),
        Command::Image(ImageCommand::Inspect {
            image,
            public_key,
            json,
        }) => inspect(&image, public_key.as_deref(), json),
        Command::Status(args) => status(&args),
    };
    result.unwrap_or_else(|e| match e.downcast_ref::<UsageError>() {
        Some(u) => {
            eprintln!("onu: {u} (see onu --help)");
            ExitCode::from(2)
        }
        None => {
            eprintln!("onu: {}", omci_codec::cli::plain(&format!("{e:#}")));
            ExitCode::from(1)
        }
    })
}

mod image_cmd;

use image_cmd::{apply, build, delta, inspect, keygen, public_key};

fn status(a: &StatusArgs) -> Result<ExitCode> {
    if !a.state_dir.is_dir() {
        return Err(usage(format!(
            "--state-dir {} is not a directory: give the --state-dir an `onu run` used",
            a.state_dir.display()
        )));
    }
    let mut flash = FileFlash::open(&a.state_dir)?;
    let model = match &a.model {
        Some(m) => m.clone(),
        None => (0..2u8)
            .find_map(|slot| {
                let mut head = [0u8; image::HEADER_LEN];
                use crate::flash::Flash;
                flash.read_slot(slot, 0, &mut head).ok()?;
                image::ImageHeader::parse(&head).ok().map(|h| h.model)
            })
            .unwrap_or_default(),
    };
    let cfg = BootConfig {
        model,
        public_key: public_key(&a.public_key)?,
        golden: a
            .golden
            .as_ref()
            .map(|g| std::fs::read(g).with_context(|| format!("reading {}", g.display())))
            .transpose()?
            .map(Into::into),
        network_golden: false,
        boot_attempts: 3,
    };
    let s = crate::status::status(&mut flash, &cfg)?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "metadata: {}",
            match s.sequence {
                Some(seq) => format!("readable (sequence {seq})"),
                None => "UNREADABLE".into(),
            }
        );
        for slot in &s.slots {
            println!(
                "slot {}: {:<14} committed={} active={} valid={} verifies={} {} bytes",
                slot.slot,
                slot.version.as_deref().unwrap_or("(empty)"),
                u8::from(slot.committed),
                u8::from(slot.active),
                u8::from(slot.valid),
                u8::from(slot.verifies),
                slot.bytes
            );
        }
        println!(
            "bootable: {}{}",
            if s.bootable { "yes" } else { "NO" },
            s.boots
                .map(|b| format!(", boots slot {b}"))
                .unwrap_or_default()
        );
        for step in &s.boot_path {
            println!("  bootloader: {step}");
        }
    }
    Ok(if s.bootable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(a: RunArgs) -> Result<ExitCode> {
    let (listen, olt) = (a.listen, a.olt);
    let (framing, group) = match (a.transport, &a.cterm, a.group) {
        (TransportKind::Lab, None, group) => (
            Framing::Lab,
            group.unwrap_or(SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 1), 47000)),
        ),
        (TransportKind::Lab, Some(_), _) => {
            eprintln!("onu: --cterm needs --transport obbaa (see onu --help)");
            return Ok(ExitCode::from(2));
        }
        (TransportKind::Obbaa, None, _) => {
            eprintln!("onu: --transport obbaa needs --cterm NAME (this ONU's channel termination)");
            return Ok(ExitCode::from(2));
        }
        (TransportKind::Obbaa, Some(_), Some(_)) => {
            eprintln!(
                "onu: --group: the OB-BAA framing is unicast only (no multicast download on it)"
            );
            return Ok(ExitCode::from(2));
        }
        (TransportKind::Obbaa, Some(cterm), None) => (
            Framing::obbaa(*cterm),
            SocketAddrV4::new(Ipv4Addr::new(239, 255, 0, 1), 47000),
        ),
    };
    if u32::from(a.onu_id) + u32::from(a.count) - 1 > 65534 {
        return Err(usage(format!(
            "--onu-id {} with --count {} passes ONU-ID 65534",
            a.onu_id, a.count
        )));
    }
    if u32::from(listen.port()) + u32::from(a.count) - 1 > 65535 {
        return Err(usage(format!(
            "--listen port {} with --count {} passes port 65535",
            listen.port(),
            a.count
        )));
    }
    if a.count > 1 {
        return run_many(&a, listen);
    }
    init_logs(a.log_format);
    if let Some(pid) = a.supervisor_pid
        && !die_with_supervisor(pid)?
    {
        tracing::info!(onu = a.onu_id, supervisor = pid, "the supervisor is gone");
        return Ok(ExitCode::SUCCESS);
    }
    let id = OnuId(a.onu_id);
    let mut onu = OnuConfig::lab(id, &a.model, public_key(&a.public_key)?);
    if let Some(sn) = &a.serial {
        onu.serial_number = parse_serial(sn)?;
        onu.vendor_id.copy_from_slice(&onu.serial_number[..4]);
    }
    let mut recovery = None;
    match &a.golden {
        None | Some(GoldenSource::File(_)) if a.golden_fallback.is_some() => {
            return Err(usage(
                "--golden-fallback needs --golden tftp://127.0.0.1:PORT/NAME (a file given to --golden is already local)",
            ));
        }
        None => {}
        Some(GoldenSource::File(path)) => {
            onu.golden = Some(read_golden(path, a.slot_size, "--golden")?.into());
        }
        Some(GoldenSource::Tftp(url)) => {
            let mut rc = crate::recovery::RecoveryConfig::lab(url.clone(), a.slot_size);
            rc.max_backoff = Duration::from_millis(a.recovery_max_backoff_ms);
            rc.first_backoff = rc.first_backoff.min(rc.max_backoff);
            rc.fallback = a
                .golden_fallback
                .as_ref()
                .map(|f| read_golden(f, a.slot_size, "--golden-fallback"))
                .transpose()?
                .map(Into::into);
            onu.network_golden = true;
            recovery = Some(rc);
        }
    }
    onu.max_window_size = a.max_window;
    onu.slot_size = a.slot_size;
    onu.busy_duration = Duration::from_millis(a.busy_ms);
    onu.sync_every_window = a.sync_every_window;
    onu.stale_download_timeout = Duration::from_secs(a.stale_download_s);
    onu.voice_call_in_progress = a.voice_call;
    for q in &a.quirks {
        onu.quirks.set(q);
    }
    onu.emergency_call_in_progress = a.emergency_call;
    let cfg = DriverConfig {
        onu,
        state_dir: a.state_dir.clone(),
        listen,
        olt,
        group,
        framing,
        recovery,
        faults: a.fault.map_or_else(Faults::none, Faults::power_loss),
        rx_faults: LinkFaultRates {
            drop: a.drop,
            duplicate: a.duplicate,
            reorder: a.reorder,
            corrupt: a.corrupt,
        },
        rx_paths: a.faults_on,
        tx_faults: LinkFaultRates {
            drop: a.drop_upstream,
            duplicate: a.duplicate_upstream,
            reorder: a.reorder_upstream,
            corrupt: a.corrupt_upstream,
        },
        seed: a.seed,
        supervise: a.supervise,
        reboot_delay: Duration::from_millis(a.reboot_ms),
        check_olt: a.check_olt,
        olt_report: a.report.clone(),
        olt_report_all: a.check_olt_all,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let exit = runtime.block_on(driver::run(cfg, shutdown_signal()))?;
    Ok(ExitCode::from(exit.code()))
}

/// The golden image file `flag` names; it must fit a slot (it is restored into one).
fn read_golden(path: &Path, slot_size: u64, flag: &str) -> Result<Vec<u8>> {
    let unreadable = |e: std::io::Error| {
        usage(format!(
            "{flag} {}: {}",
            path.display(),
            omci_codec::cli::io_words(&e)
        ))
    };
    let len = std::fs::metadata(path).map_err(unreadable)?.len();
    if len > slot_size {
        return Err(usage(format!(
            "{flag} {} is {len} bytes, larger than --slot-size {slot_size}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(unreadable)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn parse_serial(s: &str) -> Result<[u8; 8]> {
    let (vendor, rest) = s.split_at(s.len().min(4));
    let digits = hex::decode(rest).ok().filter(|d| d.len() == 4);
    match digits {
        Some(d) if vendor.len() == 4 && vendor.bytes().all(|b| b.is_ascii_uppercase()) => {
            let mut sn = [0u8; 8];
            sn[..4].copy_from_slice(vendor.as_bytes());
            sn[4..].copy_from_slice(&d);
            Ok(sn)
        }
        _ => bail!("--serial {s:?} is not 4 capital letters and 8 hex digits (e.g. LABS00000001)"),
    }
}

/// A child of `--count`: asks the kernel for SIGTERM when the supervisor dies (even by
/// SIGKILL), so that no ONU outlives it on its port. False when the supervisor `pid` is already
/// gone (it died before the request took): the child must end.
fn die_with_supervisor(pid: u32) -> Result<bool> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("asking for a parent-death signal")?;
    Ok(std::os::unix::process::parent_id() == pid)
}

/// Stops `children`: SIGTERM to each (an ONU stops cleanly: a `--check-olt` report is
/// written), SIGKILL to any still running after `grace`.
fn stop_children(children: &mut [std::process::Child], grace: Duration) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for c in children.iter_mut() {
        if matches!(c.try_wait(), Ok(None))
            && let Ok(pid) = i32::try_from(c.id())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = std::time::Instant::now() + grace;
    for c in children.iter_mut() {
        while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// `--count N`: one child process per ONU, consecutive ONU-IDs and ports, each in
/// DIR/onu-<id>. This parent is the ONUs' power supply: a child that ends, to reboot (75),
/// after a failed boot (76) or by a power cut (abort), is started again at once from its
/// flash, without `--fault` (a planned cut happens once). A child that fails on its own
/// (a bad key, a port in use) three times in a row stops them all with its error. Ctrl-C or
/// SIGTERM stops them all (SIGTERM to each, SIGKILL after 3 s); the children die with this
/// parent however it ends, SIGKILL included (a parent-death signal each sets on itself).
fn run_many(a: &RunArgs, first: SocketAddrV4) -> Result<ExitCode> {
    use std::process::{Child, Command as Process};
    let inv = invocation();
    let spawn = |i: u16, first_life: bool| -> Result<Child> {
        let id = a.onu_id + i;
        let port = first
            .port()
            .checked_add(i)
            .context("--listen port + --count passes 65535")?;
        let mut args: Vec<String> = inv.args.clone();
        // Drop the flags this parent rewrites, then add each child's own.
        let mut kept = Vec::new();
        let mut it = args.drain(..);
        while let Some(arg) = it.next() {
            let (name, has_value) = match arg.split_once('=') {
                Some((n, _)) => (n.to_string(), true),
                None => (arg.clone(), false),
            };
            const REWRITTEN: [&str; 8] = [
                "--count",
                "--onu-id",
                "--base-id",
                "--listen",
                "--state-dir",
                "--serial",
                "--report",
                "--supervisor-pid",
            ];
            if REWRITTEN.contains(&name.as_str()) || (!first_life && name == "--fault") {
                if !has_value {
                    it.next();
                }
                continue;
            }
            kept.push(arg);
        }
        let (exe, prefix) = inv.program.split_first().context("no program to run")?;
        let child = Process::new(exe)
            .args(prefix)
            .args(kept)
            .arg(format!("--onu-id={id}"))
            .arg(format!("--supervisor-pid={}", std::process::id()))
            .arg(format!("--listen={}:{port}", first.ip()))
            .arg(format!(
                "--state-dir={}",
                a.state_dir.join(format!("onu-{id}")).display()
            ))
            .args(a.report.as_ref().map(|r| {
                let stem = r.file_stem().unwrap_or_default().to_string_lossy();
                let ext = r
                    .extension()
                    .map(|e| format!(".{}", e.to_string_lossy()))
                    .unwrap_or_default();
                format!(
                    "--report={}",
                    r.with_file_name(format!("{stem}-onu{id}{ext}")).display()
                )
            }))
            .spawn()
            .with_context(|| format!("starting ONU {id}"))?;
        Ok(child)
    };
    let mut children: Vec<Child> = (0..a.count)
        .map(|i| spawn(i, true))
        .collect::<Result<_>>()?;
    let mut failures = vec![0u32; children.len()];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::spawn(move || {
            runtime.block_on(shutdown_signal());
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        for (i, child) in children.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                let id = a.onu_id + i as u16;
                match status.code() {
                    Some(75 | 76) => failures[i] = 0,
                    // Killed by a signal (a power cut aborts): power back on.
                    None => {
                        failures[i] = 0;
                        eprintln!("onu: ONU {id} lost power ({status}); power back on");
                    }
                    Some(_) => {
                        failures[i] += 1;
                        if failures[i] >= 3 {
                            stop_children(&mut children, Duration::from_secs(3));
                            bail!("ONU {id} fails to start ({status}); see its error above");
                        }
                    }
                }
                *child = spawn(i as u16, false)?;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop_children(&mut children, Duration::from_secs(3));
    Ok(ExitCode::SUCCESS)
}
