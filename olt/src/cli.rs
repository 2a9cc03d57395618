//! The `olt` command line: upgrade the ONUs of a PON on this machine, by unicast or by multicast.
//!
//! The `olt` binary is [`main_with`] with its own name; `scenario` runs the same code as
//! `scenario olt ...` so that one `cargo run` builds every process a scenario starts.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::campaign::{
    Campaign, CampaignPlan, Journal, OnuRecord, Setup, Stage, reason, result_word,
};
use crate::driver::{self, DriverConfig};
use crate::engine::{Mode, MulticastConfig};
use crate::image::UpgradeImage;
use crate::session::{Outcome, SessionConfig};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use omci_codec::OnuId;
use pon::transport as net;
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(
    name = "olt",
    version,
    about = "The OLT of the lab: upgrade a PON of ONUs over OMCI"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download, activate and commit an image on every ONU given; with --manifest (or
    /// --canary), a campaign: model check, canary wave, health gate, kill switch.
    Rollout(RolloutArgs),
    /// Conformance suites: check an ONU against the G.988 software-download rules.
    #[command(subcommand)]
    Conform(ConformCommand),
    /// Stop an upgrade left half done: abort any download into the standby image, and send an
    /// ONU running an uncommitted image back to its committed one.
    Abort(AbortArgs),
}

#[derive(Args)]
struct RolloutArgs {
    /// The image file (from `onu image build`).
    #[arg(long)]
    image: PathBuf,
    /// ONUs: ID@ADDR or FIRST-LAST@ADDR (consecutive ports from ADDR); repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    onus: Vec<Vec<(OnuId, SocketAddrV4)>>,
    /// How the windows travel.
    #[arg(long, value_enum, default_value_t = Mode::Multicast)]
    mode: Mode,
    /// The multicast download group (joined by the ONUs on the loopback interface).
    #[arg(long, default_value = "239.255.0.1:47000", value_parser = net::parse_group)]
    group: SocketAddrV4,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// Sections per window proposed at Start (1..=256).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    window: u16,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=50))]
    retries: u8,
    /// How long an ONU may take to come back after Activate (s, 1..=3600).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    reboot_timeout_s: u64,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write every OMCI frame sent and received to this pcap (EtherType 0x88B5; `omci pcap`
    /// and Wireshark's community OMCI dissector read it).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// The release manifest (from `onu image build`): its checksum must match --image; its
    /// model is the only one upgraded (others are refused); its rollout percent and start
    /// make the canary wave and the scheduled start.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The canary wave's share of the eligible ONUs, in percent (overrides the manifest's);
    /// 0: a single wave.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    canary: Option<u8>,
    /// The kill switch: halt the campaign when more than this percent of a wave's ONUs fail.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    kill_threshold: u8,
    /// The health gate: how long an ONU must stay on the new image after its reboot (ms,
    /// 0..=3600000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    health_settle_ms: u64,
    /// Start no earlier than this (RFC 3339, e.g. 2026-11-23T06:00:00Z; overrides the
    /// manifest's rollout start), or "now".
    #[arg(long)]
    start_at: Option<String>,
    /// At most this many Download sections per second (group and unicast together).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pace: Option<u32>,
    /// Activate software's flags: 0 unconditionally, 1 unless a voice call is in progress, 2
    /// unless an emergency call is (the ONU then answers busy and the OLT asks again).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    activate_flags: u8,
    /// How long a deferred activation is asked again before that ONU fails (s).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    activate_defer_s: u64,
    /// Unicast mode: send strictly G.988, as open OLT stacks do (no window number or window
    /// CRC in the transport envelope; the ONU then counts windows itself).
    #[arg(long)]
    strict: bool,
    /// Extended OMCI messages (G.988 A.3 extended set): sections of 1965 bytes instead of 31.
    #[arg(long)]
    extended: bool,
    /// Break a rule on purpose (repeatable), to see an ONU's --check-olt catch it:
    /// ar-on-every-section, wrong-end-crc, no-busy-retry.
    #[arg(long = "quirk", value_parser = clap::builder::PossibleValuesParser::new(crate::session::OltQuirks::NAMES))]
    quirks: Vec<String>,
    /// Journal the campaign to this file; when it exists, the campaign it records is resumed
    /// (ONUs it has committed are not upgraded again).
    #[arg(long)]
    journal: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ConformCommand {
    /// Run the ONU conformance suite against one ONU (it ends upgraded to --image, committed).
    Onu(ConformOnuArgs),
}

#[derive(Args)]
struct ConformOnuArgs {
    /// The ONU's OMCC address (loopback only).
    #[arg(long, value_parser = net::parse_loopback)]
    target: SocketAddrV4,
    /// The address the ONU answers to (its --olt).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// The ONU's ONU-ID.
    #[arg(long, default_value_t = 1)]
    onu_id: u16,
    /// An image the ONU accepts (its model, signed with a key it trusts).
    #[arg(long)]
    image: PathBuf,
    /// Response timeout (ms).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    timeout_ms: u64,
    /// How long the ONU may take to reboot (s).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    reboot_timeout_s: u64,
    /// The ONU has a voice call in progress (onu run --voice-call): check that Activate with
    /// flag 1 answers busy.
    #[arg(long)]
    call_in_progress: bool,
    /// The ONU has an emergency call in progress (onu run --emergency-call): check that
    /// Activate with flag 2 answers busy.
    #[arg(long)]
    emergency_call_in_progress: bool,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct AbortArgs {
    /// ONUs: ID@ADDR or FIRST-LAST@ADDR (consecutive ports from ADDR); repeatable.
    #[arg(long = "onus", required = true, value_parser = parse_onus)]
    onus: Vec<Vec<(OnuId, SocketAddrV4)>>,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// Response timeout (ms, 1..=600000).
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails (0..=50).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=50))]
    retries: u8,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// `ID@ADDR` or `FIRST-LAST@ADDR`: ONU FIRST at ADDR, the next ones at the next ports.
fn parse_onus(s: &str) -> Result<Vec<(OnuId, SocketAddrV4)>, String> {
    let (ids, addr) = s.split_once('@').ok_or_else(|| {
        format!("{s:?} is not ID@ADDR or FIRST-LAST@ADDR (e.g. 1-16@127.0.0.1:40001)")
    })?;
    let addr = net::parse_loopback(addr)?;
    let id = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|n| *n <= 65534)
            .ok_or_else(|| format!("{t:?} is not an ONU-ID (0..=65534)"))
    };
    let (first, last) = match ids.split_once('-') {
        Some((a, b)) => (id(a)?, id(b)?),
        None => (id(ids)?, id(ids)?),
    };
    if last < first || last - first > 255 {
        return Err(format!(
            "{ids:?}: give FIRST-LAST with FIRST <= LAST, at most 256 ONUs"
        ));
    }
    (first..=last)
        .map(|n| {
            let port = addr
                .port()
                .checked_add(n - first)
                .ok_or_else(|| format!("{s:?}: the ports pass 65535"))?;
            Ok((OnuId(n), SocketAddrV4::new(*addr.ip(), port)))
        })
        .collect()
}

/// Runs the `olt` command line `args` (the program name first).
pub fn main_with(args: Vec<std::ffi::OsString>) -> ExitCode {
    let cli = match omci_codec::cli::parse_from_or_exit::<Cli>(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Rollout(args) => rollout(args),
        Command::Abort(args) => abort(args),
        Command::Conform(ConformCommand::Onu(args)) => conform_onu(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("olt: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A usage error found after parsing: one line, exit code 2, as clap's own.
fn usage(message: &str) -> ExitCode {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let e = cmd.error(clap::error::ErrorKind::ArgumentConflict, message);
    omci_codec::cli::usage_error("olt", &cmd, e)
}

fn onu_map(given: Vec<Vec<(OnuId, SocketAddrV4)>>) -> Result<BTreeMap<OnuId, SocketAddrV4>> {
    let mut onus = BTreeMap::new();
    for (id, addr) in given.into_iter().flatten() {
        if onus.insert(id, addr).is_some() {
            bail!("ONU {} is given twice", id.0);
        }
    }
    Ok(onus)
}

fn rollout(a: RolloutArgs) -> Result<ExitCode> {
    if a.strict && a.mode == Mode::Multicast {
        return Ok(usage(
            "--strict needs --mode unicast: the multicast download carries window numbers in the envelope",
        ));
    }
    let bytes =
        std::fs::read(&a.image).with_context(|| format!("reading {}", a.image.display()))?;
    let onus = onu_map(a.onus)?;

    let cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        window_size: a.window,
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        envelope_extensions: !a.strict,
        activate_flags: a.activate_flags,
        activate_defer: Duration::from_secs(a.activate_defer_s),
        format: if a.extended {
            omci_codec::Format::Extended
        } else {
            omci_codec::Format::Baseline
        },
        quirks: {
            let mut q = crate::session::OltQuirks::default();
            for name in &a.quirks {
                q.set(name);
            }
            q
        },
        ..SessionConfig::default()
    };
    let manifest = match &a.manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let m: pon::manifest::Manifest = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a release manifest", path.display()))?;
            if m.sha256() != Some(Sha256::digest(&bytes).into()) {
                bail!(
                    "{} does not match the checksum of {} ({}): refusing to roll it out",
                    a.image.display(),
                    path.display(),
                    m.checksum
                );
            }
            Some(m)
        }
        None => None,
    };
    let canary = a
        .canary
        .or(manifest.as_ref().map(|m| m.rollout.percent))
        .unwrap_or(0);
    let campaign = manifest.is_some() || a.canary.is_some();
    let plan = if campaign {
        CampaignPlan {
            model: manifest.as_ref().map(|m| m.device_model.clone()),
            canary_percent: canary,
            kill_threshold: f64::from(a.kill_threshold) / 100.0,
            gate: true,
            health_settle: Duration::from_millis(a.health_settle_ms),
            pace: a.pace,
        }
    } else {
        CampaignPlan {
            pace: a.pace,
            ..CampaignPlan::rollout()
        }
    };
    let start_at = match a.start_at.as_deref() {
        Some("now") => None,
        Some(t) => Some(t.to_string()),
        None => manifest.as_ref().map(|m| m.rollout.start.clone()),
    };
    let start_at = start_at
        .map(|t| {
            humantime::parse_rfc3339_weak(&t).with_context(|| {
                format!("{t:?} is not an RFC 3339 time (e.g. 2026-11-23T06:00:00Z)")
            })
        })
        .transpose()?;
    if let Some(m) = &manifest
        && let Ok(image) = UpgradeImage::new(bytes.clone())
        && image.header.version != m.version
    {
        bail!(
            "the manifest says version {} but the image is {}",
            m.version,
            image.header.version
        );
    }
    let name = a.image.display().to_string();
    let target = Target {
        mode: a.mode,
        listen: a.listen,
        group: a.group,
        onus,
        pcap: a.pcap,
        journal: a.journal,
        start_at,
    };
    run_rollout(&bytes, &name, target, &cfg, &plan, a.report.as_deref())
}

fn conform_onu(a: ConformOnuArgs) -> Result<ExitCode> {
    let bytes =
        std::fs::read(&a.image).with_context(|| format!("reading {}", a.image.display()))?;
    let image = UpgradeImage::new(bytes)
        .with_context(|| format!("{} is not an image of this lab", a.image.display()))?;
    let target = crate::conform::Target {
        addr: a.target,
        listen: a.listen,
        onu: OnuId(a.onu_id),
        image,
        timeout: Duration::from_millis(a.timeout_ms),
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        call_in_progress: a.call_in_progress,
        emergency_call_in_progress: a.emergency_call_in_progress,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(crate::conform::run(target))?;
    print!("{}", report.table());
    if let Some(p) = &a.junit {
        std::fs::write(p, report.junit()).with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn abort(a: AbortArgs) -> Result<ExitCode> {
    let onus = onu_map(a.onus)?;
    let cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        abort: Some("aborted by the operator".into()),
        ..SessionConfig::default()
    };
    // The sessions read the images, abort and roll back; no image is sent, but the engine
    // wants one to hold: an empty payload stands for it.
    let image = UpgradeImage::placeholder();
    let started = Instant::now();
    let setup = Setup {
        image,
        image_sha256: String::new(),
        mode: Mode::Unicast,
        session: cfg,
        multicast: MulticastConfig::default(),
        plan: CampaignPlan::rollout(),
    };
    let campaign = Campaign::new(&setup, &onus.keys().copied().collect::<Vec<_>>(), started);
    let dcfg = DriverConfig {
        listen: a.listen,
        group: SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 0, 1), 47000),
        onus,
        pcap: None,
        progress: false,
        journal: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let campaign = runtime.block_on(driver::run(campaign, &dcfg, ctrl_c))?;
    println!(
        "Abort of {} ONUs in {:.1} s",
        campaign.records().len(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:>5}  {:<8} {:<12} {:<12}  note",
        "ONU", "result", "committed", "active"
    );
    let mut ok = true;
    for (id, r) in campaign.records() {
        ok &= matches!(r.outcome, Some(Outcome::Halted(_)));
        println!(
            "{:>5}  {:<8} {:<12} {:<12}  {}",
            id.0,
            result_word(r.outcome.as_ref()),
            r.committed_version.as_deref().unwrap_or("?"),
            r.active_version.as_deref().unwrap_or("?"),
            reason(r.outcome.as_ref())
        );
    }
    if let Some(path) = &a.report {
        let onus: Vec<serde_json::Value> = campaign
            .records()
            .iter()
            .map(|(id, r)| {
                json!({
                    "id": id.0,
                    "result": result_word(r.outcome.as_ref()),
                    "reason": reason(r.outcome.as_ref()),
                    "committed_version": r.committed_version,
                    "active_version": r.active_version,
                })
            })
            .collect();
        std::fs::write(
            path,
            serde_json::to_string_pretty(&json!({ "onus": onus }))? + "\n",
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Who a rollout goes to, and how.
struct Target {
    mode: Mode,
    listen: SocketAddrV4,
    group: SocketAddrV4,
    onus: BTreeMap<OnuId, SocketAddrV4>,
    pcap: Option<PathBuf>,
    journal: Option<PathBuf>,
    start_at: Option<std::time::SystemTime>,
}

/// Resolves when the user presses Ctrl-C or the process gets SIGTERM.
fn ctrl_c() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match &mut term {
                    Some(t) => { t.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    })
}

/// Runs one rollout (or campaign) of `bytes`, prints the summary, writes the report; exit 1 if
/// any ONU failed or the campaign halted.
fn run_rollout(
    bytes: &[u8],
    name: &str,
    t: Target,
    cfg: &SessionConfig,
    plan: &CampaignPlan,
    report_path: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let image = UpgradeImage::new(bytes.to_vec())
        .with_context(|| format!("{name} is not an image of this lab"))?;
    let sha256 = hex::encode(Sha256::digest(bytes));
    let ids: Vec<OnuId> = t.onus.keys().copied().collect();
    let mode = t.mode;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let journal = match &t.journal {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let j: Journal = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a campaign journal", path.display()))?;
            if j.image_sha256 != sha256 {
                bail!(
                    "{} records a campaign of another image (version {}); remove it to start a new one",
                    path.display(),
                    j.image_version
                );
            }
            Some(j)
        }
        _ => None,
    };
    if journal.is_none()
        && let Some(at) = t.start_at
        && let Ok(wait) = at.duration_since(std::time::SystemTime::now())
    {
        println!(
            "Scheduled: the rollout starts at {} (in {:.0} s)",
            humantime::format_rfc3339_seconds(at),
            wait.as_secs_f64()
        );
        let started = runtime.block_on(async {
            tokio::select! {
                () = tokio::time::sleep(wait) => true,
                () = ctrl_c() => false,
            }
        });
        if !started {
            println!("Interrupted before the start: nothing was sent.");
            return Ok(ExitCode::from(1));
        }
    }
    let started = Instant::now();
    let setup = Setup {
        image: image.clone(),
        image_sha256: sha256.clone(),
        mode,
        session: cfg.clone(),
        multicast: MulticastConfig::default(),
        plan: plan.clone(),
    };
    let campaign = match &journal {
        Some(j) => {
            println!(
                "Resuming the campaign journaled in {} (stage {}, wave {})",
                t.journal
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                j.stage,
                j.wave + 1
            );
            Campaign::resume(j, &setup, &ids, started)
        }
        None => Campaign::new(&setup, &ids, started),
    };
    let dcfg = DriverConfig {
        listen: t.listen,
        group: t.group,
        onus: t.onus,
        pcap: t.pcap,
        progress: true,
        journal: t.journal.clone(),
    };
    let campaign = runtime.block_on(driver::run(campaign, &dcfg, ctrl_c))?;
    let elapsed = started.elapsed();
    print_summary(&campaign, &image, mode, elapsed);
    let report = report(&campaign, &image, &sha256, mode, elapsed);
    if let Some(path) = report_path {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = campaign.records().values().any(|r| {
        !matches!(
            r.outcome,
            Some(Outcome::Upgraded | Outcome::Skipped(_) | Outcome::Refused(_))
        )
    });
    Ok(if failed || !matches!(campaign.stage(), Stage::Completed) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn result_name(r: &OnuRecord, stage: &Stage) -> (&'static str, String) {
    match &r.outcome {
        None if matches!(stage, Stage::Halted(_)) => {
            ("untouched", "the campaign halted before its wave".into())
        }
        None => ("unfinished", "stopped before it ended".into()),
        o => (result_word(o.as_ref()), reason(o.as_ref())),
    }
}

fn print_summary(c: &Campaign, image: &UpgradeImage, mode: Mode, elapsed: Duration) {
    println!(
        "{} rollout of {} ({} bytes) to {} ONUs in {:.1} s",
        match mode {
            Mode::Multicast => "Multicast",
            Mode::Unicast => "Unicast",
        },
        image.header.version,
        image.len(),
        c.records().len(),
        elapsed.as_secs_f64()
    );
    let waves = c.waves().len() > 1;
    println!(
        "{:>5} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  note",
        "ONU", "wave", "result", "from", "committed", "active", "frames", "repairs"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, r) in c.records() {
        let (name, why) = result_name(r, c.stage());
        *counts.entry(name).or_insert(0) += 1;
        println!(
            "{:>5} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  {}",
            id.0,
            match (waves, r.wave) {
                (true, Some(w)) => (w + 1).to_string(),
                _ => "-".into(),
            },
            name,
            r.from_version.as_deref().unwrap_or("?"),
            r.committed_version.as_deref().unwrap_or("?"),
            r.active_version.as_deref().unwrap_or("?"),
            r.stats.frames,
            r.stats.repaired_windows,
            why
        );
    }
    let counters = c.counters();
    let unicast: u64 = c.records().values().map(|r| r.stats.frames).sum();
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let mut line = format!(
        "{} upgraded, {} skipped, {} failed",
        n("upgraded"),
        n("skipped"),
        n("failed") + n("unfinished")
    );
    for k in ["refused", "halted", "untouched"] {
        if n(k) > 0 {
            line += &format!(", {} {k}", n(k));
        }
    }
    println!(
        "{line}; frames sent: {} multicast, {} unicast",
        counters.frames_multicast, unicast
    );
    match c.stage() {
        Stage::Halted(why) => println!("Campaign HALTED: {why}"),
        Stage::Completed if waves => println!(
            "Campaign completed: canary wave of {}, then {}",
            c.waves()[0].len(),
            c.waves()[1..].iter().map(Vec::len).sum::<usize>()
        ),
        _ => {}
    }
}

fn report(
    c: &Campaign,
    image: &UpgradeImage,
    sha256: &str,
    mode: Mode,
    elapsed: Duration,
) -> serde_json::Value {
    let onus: Vec<serde_json::Value> = c
        .records()
        .iter()
        .map(|(id, r)| {
            let (result, reason) = result_name(r, c.stage());
            let phases: serde_json::Map<String, serde_json::Value> = r
                .stats
                .phases
                .iter()
                .map(|(p, d)| (p.to_string(), json!(d.as_secs_f64())))
                .collect();
            json!({
                "id": id.0,
                "result": result,
                "reason": reason,
                "wave": r.wave.map(|w| w + 1),
                "model": r.model,
                "from_version": r.from_version,
                "to_version": image.header.version,
                "committed_version": r.committed_version,
                "active_version": r.active_version,
                "retries": r.stats.retries,
                "timeouts": r.stats.timeouts,
                "repaired_windows": r.stats.repaired_windows,
                "busy": r.stats.busy,
                "restarts": r.stats.restarts,
                "frames": r.stats.frames,
                "frames_with_ar": r.stats.frames_with_ar,
                "phases_s": phases,
            })
        })
        .collect();
    let count = |r: &str| onus.iter().filter(|o| o["result"] == r).count();
    let counters = c.counters();
    let unicast_frames: u64 = c.records().values().map(|r| r.stats.frames).sum();
    let unicast_bytes: u64 = c.records().values().map(|r| r.stats.bytes).sum();
    let (outcome, halt_reason) = match c.stage() {
        Stage::Completed => ("completed", None),
        Stage::Halted(why) => ("halted", Some(why.clone())),
        _ => ("stopped", None),
    };
    json!({
        "mode": match mode { Mode::Multicast => "multicast", Mode::Unicast => "unicast" },
        "image": {
            "version": image.header.version,
            "size": image.len(),
            "sha256": sha256,
        },
        "duration_s": elapsed.as_secs_f64(),
        "campaign": {
            "outcome": outcome,
            "halt_reason": halt_reason,
            "waves": c.waves().iter().map(|w| w.iter().map(|id| id.0).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
        "onus": onus,
        "totals": {
            "onus": onus.len(),
            "upgraded": count("upgraded"),
            "failed": count("failed") + count("unfinished"),
            "skipped": count("skipped"),
            "refused": count("refused"),
            "halted": count("halted"),
            "untouched": count("untouched"),
            "frames_multicast": counters.frames_multicast,
            "frames_multicast_ar": counters.frames_multicast_ar,
            "frames_unicast": unicast_frames,
            "bytes_sent": counters.bytes_multicast + unicast_bytes,
            "remulticast_windows": counters.remulticast_windows,
            "responses": counters.responses,
            "dropped": counters.dropped,
        },
    })
}
