//! `olt`: upgrade the ONUs of a PON on this machine, by unicast or by multicast.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use olt::driver::{self, DriverConfig};
use olt::engine::{Mode, MulticastConfig, Olt};
use olt::image::UpgradeImage;
use olt::session::{Outcome, SessionConfig};
use omci_codec::OnuId;
use onu::net;
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
    /// Download, activate and commit an image on every ONU given.
    Rollout(RolloutArgs),
    /// The whole thing on this machine: N ONU processes, a new image, a rollout, a summary.
    Demo(DemoArgs),
    /// One ONU process of `olt demo` (internal: the same code as `onu run`).
    #[command(hide = true, name = "demo-onu")]
    DemoOnu(DemoOnuArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// How many ONUs (one process each).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u16).range(1..=256))]
    onus: u16,
    /// How the windows travel.
    #[arg(long, value_enum, default_value_t = ModeArg::Multicast)]
    mode: ModeArg,
    /// Payload bytes of the new image.
    #[arg(long, default_value_t = 256 * 1024)]
    size: usize,
    /// First ONU port (the ONUs take consecutive ports, the OLT the one after them).
    #[arg(long, default_value_t = 44001)]
    port: u16,
    /// The multicast download group.
    #[arg(long, default_value = "239.255.0.1:47000", value_parser = net::parse_group)]
    group: SocketAddrV4,
    /// Keep the ONUs' flash, the images and the report in this directory (default: a
    /// temporary one, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Write every OMCI frame sent and received to this pcap.
    #[arg(long)]
    pcap: Option<PathBuf>,
}

#[derive(Args)]
struct DemoOnuArgs {
    #[arg(long)]
    onu_id: u16,
    #[arg(long)]
    listen: SocketAddrV4,
    #[arg(long)]
    olt: SocketAddrV4,
    #[arg(long)]
    group: SocketAddrV4,
    #[arg(long)]
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// One window stream on the multicast group for all ONUs.
    Multicast,
    /// Each ONU its own window stream (the standard procedure).
    Unicast,
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
    #[arg(long, value_enum, default_value_t = ModeArg::Multicast)]
    mode: ModeArg,
    /// The multicast download group (joined by the ONUs on the loopback interface).
    #[arg(long, default_value = "239.255.0.1:47000", value_parser = net::parse_group)]
    group: SocketAddrV4,
    /// The OLT's own address (loopback only).
    #[arg(long, default_value = "127.0.0.1:47001", value_parser = net::parse_loopback)]
    listen: SocketAddrV4,
    /// Sections per window proposed at Start (1..=256).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=256))]
    window: u16,
    /// Response timeout (ms).
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
    /// Retransmissions of a request before an ONU fails.
    #[arg(long, default_value_t = 2)]
    retries: u8,
    /// How long an ONU may take to come back after Activate (s).
    #[arg(long, default_value_t = 60)]
    reboot_timeout_s: u64,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write every OMCI frame sent and received to this pcap (EtherType 0x88B5; `omci pcap`
    /// and Wireshark's community OMCI dissector read it).
    #[arg(long)]
    pcap: Option<PathBuf>,
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

fn main() -> ExitCode {
    let cli = match omci_codec::cli::parse_or_exit::<Cli>() {
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
        Command::Demo(args) => demo(args),
        Command::DemoOnu(args) => demo_onu(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("olt: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn rollout(a: RolloutArgs) -> Result<ExitCode> {
    let bytes =
        std::fs::read(&a.image).with_context(|| format!("reading {}", a.image.display()))?;
    let mut onus = BTreeMap::new();
    for (id, addr) in a.onus.into_iter().flatten() {
        if onus.insert(id, addr).is_some() {
            bail!("ONU {} is given twice", id.0);
        }
    }
    let cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        window_size: a.window,
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        ..SessionConfig::default()
    };
    let name = a.image.display().to_string();
    let target = Target {
        mode: a.mode,
        listen: a.listen,
        group: a.group,
        onus,
        pcap: a.pcap,
    };
    run_rollout(&bytes, &name, target, &cfg, a.report.as_deref())
}

/// Who a rollout goes to, and how.
struct Target {
    mode: ModeArg,
    listen: SocketAddrV4,
    group: SocketAddrV4,
    onus: BTreeMap<OnuId, SocketAddrV4>,
    pcap: Option<PathBuf>,
}

/// Runs one rollout of `bytes`, prints the summary, writes the report; exit 1 if any ONU
/// failed.
fn run_rollout(
    bytes: &[u8],
    name: &str,
    t: Target,
    cfg: &SessionConfig,
    report_path: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let image = UpgradeImage::new(bytes.to_vec())
        .with_context(|| format!("{name} is not an image of this lab"))?;
    let ids: Vec<OnuId> = t.onus.keys().copied().collect();
    let mode = match t.mode {
        ModeArg::Multicast => Mode::Multicast,
        ModeArg::Unicast => Mode::Unicast,
    };
    let started = Instant::now();
    let olt = Olt::new(
        &image,
        &ids,
        mode,
        cfg,
        &MulticastConfig::default(),
        started,
    );
    let dcfg = DriverConfig {
        listen: t.listen,
        group: t.group,
        onus: t.onus,
        pcap: t.pcap,
        progress: true,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let olt = runtime.block_on(driver::run(olt, &dcfg, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    let elapsed = started.elapsed();
    print_summary(&olt, &image, mode, elapsed);
    let report = report(&olt, &image, bytes, mode, elapsed);
    if let Some(path) = report_path {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = olt
        .outcomes()
        .values()
        .any(|o| !matches!(o, Some(Outcome::Upgraded | Outcome::Skipped(_))));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn result_name(o: Option<&Outcome>) -> (&'static str, String) {
    match o {
        Some(Outcome::Upgraded) => ("upgraded", String::new()),
        Some(Outcome::Skipped(why)) => ("skipped", why.clone()),
        Some(Outcome::Failed(why)) => ("failed", why.clone()),
        None => ("unfinished", "stopped before it ended".into()),
    }
}

fn print_summary(olt: &Olt, image: &UpgradeImage, mode: Mode, elapsed: Duration) {
    println!(
        "{} rollout of {} ({} bytes) to {} ONUs in {:.1} s",
        match mode {
            Mode::Multicast => "Multicast",
            Mode::Unicast => "Unicast",
        },
        image.header.version,
        image.len(),
        olt.sessions().count(),
        elapsed.as_secs_f64()
    );
    println!(
        "{:>5}  {:<10} {:<12} {:>7} {:>8}  note",
        "ONU", "result", "from", "frames", "repairs"
    );
    let mut counts = BTreeMap::new();
    for s in olt.sessions() {
        let (name, why) = result_name(s.outcome());
        *counts.entry(name).or_insert(0) += 1;
        println!(
            "{:>5}  {:<10} {:<12} {:>7} {:>8}  {}",
            s.onu().0,
            name,
            s.from_version().unwrap_or_else(|| "?".into()),
            s.stats().frames,
            s.stats().repaired_windows,
            why
        );
    }
    let c = olt.counters();
    let unicast: u64 = olt.sessions().map(|s| s.stats().frames).sum();
    println!(
        "{} upgraded, {} skipped, {} failed; frames sent: {} multicast, {} unicast",
        counts.get("upgraded").unwrap_or(&0),
        counts.get("skipped").unwrap_or(&0),
        counts.get("failed").unwrap_or(&0) + counts.get("unfinished").unwrap_or(&0),
        c.frames_multicast,
        unicast
    );
}

fn report(
    olt: &Olt,
    image: &UpgradeImage,
    bytes: &[u8],
    mode: Mode,
    elapsed: Duration,
) -> serde_json::Value {
    let onus: Vec<serde_json::Value> = olt
        .sessions()
        .map(|s| {
            let (result, reason) = result_name(s.outcome());
            let upgraded = matches!(s.outcome(), Some(Outcome::Upgraded));
            let phases: serde_json::Map<String, serde_json::Value> = s
                .stats()
                .phases
                .iter()
                .map(|(p, d)| (p.to_string(), json!(d.as_secs_f64())))
                .collect();
            json!({
                "id": s.onu().0,
                "result": result,
                "reason": reason,
                "from_version": s.from_version(),
                "to_version": image.header.version,
                "committed_version": if upgraded { Some(image.header.version.clone()) } else { s.from_version() },
                "active_version": if upgraded { Some(image.header.version.clone()) } else { s.from_version() },
                "retries": s.stats().retries,
                "timeouts": s.stats().timeouts,
                "repaired_windows": s.stats().repaired_windows,
                "frames": s.stats().frames,
                "frames_with_ar": s.stats().frames_with_ar,
                "phases_s": phases,
            })
        })
        .collect();
    let count = |r: &str| onus.iter().filter(|o| o["result"] == r).count();
    let c = olt.counters();
    let unicast_frames: u64 = olt.sessions().map(|s| s.stats().frames).sum();
    let unicast_bytes: u64 = olt.sessions().map(|s| s.stats().bytes).sum();
    json!({
        "mode": match mode { Mode::Multicast => "multicast", Mode::Unicast => "unicast" },
        "image": {
            "version": image.header.version,
            "size": image.len(),
            "sha256": hex::encode(Sha256::digest(bytes)),
        },
        "duration_s": elapsed.as_secs_f64(),
        "onus": onus,
        "totals": {
            "onus": onus.len(),
            "upgraded": count("upgraded"),
            "failed": count("failed") + count("unfinished"),
            "skipped": count("skipped"),
            "frames_multicast": c.frames_multicast,
            "frames_unicast": unicast_frames,
            "bytes_sent": c.bytes_multicast + unicast_bytes,
            "remulticast_windows": c.remulticast_windows,
        },
    })
}

/// The demo's signing key: fixed, so that the demo needs no key file (a lab, not a release).
fn demo_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x42; 32])
}

/// Kills the demo's ONU processes however the demo ends.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn demo(a: DemoArgs) -> Result<ExitCode> {
    use onu::image::{BuildSpec, build, deterministic_payload};
    let temp;
    let dir = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let image = |version: &str, security, size| {
        let spec = BuildSpec {
            model: "LAB-ONU-1".into(),
            version: version.into(),
            security_version: security,
            build: 1,
            fails_to_boot: false,
        };
        build(&spec, &deterministic_payload(version, size), &demo_key())
    };
    std::fs::write(dir.join("golden.img"), image("V1.0", 1, 64 * 1024)?)?;
    let v2 = image("V2.0", 2, a.size)?;
    std::fs::write(dir.join("v2.img"), &v2)?;
    if u32::from(a.port) + u32::from(a.onus) > 65535 {
        bail!("--port {} with --onus {} passes port 65535", a.port, a.onus);
    }
    let olt_addr = SocketAddrV4::new(net::LOOPBACK, a.port + a.onus);
    println!(
        "Starting {} ONU processes on 127.0.0.1:{}..{} (their flash in {})",
        a.onus,
        a.port,
        a.port + a.onus - 1,
        dir.display()
    );
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::new());
    let mut onus = BTreeMap::new();
    for i in 0..a.onus {
        let id = OnuId(1 + i);
        let listen = SocketAddrV4::new(net::LOOPBACK, a.port + i);
        children.0.push(
            std::process::Command::new(&exe)
                .arg("demo-onu")
                .arg(format!("--onu-id={}", id.0))
                .arg(format!("--listen={listen}"))
                .arg(format!("--olt={olt_addr}"))
                .arg(format!("--group={}", a.group))
                .arg(format!(
                    "--dir={}",
                    dir.join(format!("onu-{}", id.0)).display()
                ))
                .stdin(std::process::Stdio::null())
                .spawn()
                .context("starting an ONU process")?,
        );
        onus.insert(id, listen);
    }
    // Let them boot (install the golden image, join the group).
    std::thread::sleep(Duration::from_millis(500 + 10 * u64::from(a.onus)));
    // Loopback answers in well under a millisecond: a short timeout keeps one ONU's lost answer
    // from holding the whole group's window pipeline for long.
    let cfg = SessionConfig {
        timeout: Duration::from_millis(500),
        retries: 8,
        window_retries: 20,
        ..SessionConfig::default()
    };
    let target = Target {
        mode: a.mode,
        listen: olt_addr,
        group: a.group,
        onus,
        pcap: a.pcap.clone(),
    };
    let report = dir.join("report.json");
    let code = run_rollout(&v2, "the demo image", target, &cfg, Some(&report))?;
    if a.keep.is_some() {
        println!("report: {}", report.display());
    }
    drop(children);
    Ok(code)
}

fn demo_onu(a: DemoOnuArgs) -> Result<ExitCode> {
    use onu::core::OnuConfig;
    use onu::driver::{self as onu_driver, DriverConfig as OnuDriverConfig};
    let golden = std::fs::read(a.dir.parent().unwrap_or(&a.dir).join("golden.img"))?;
    let mut onu = OnuConfig::lab(OnuId(a.onu_id), "LAB-ONU-1", demo_key().verifying_key());
    onu.golden = Some(golden.into());
    onu.busy_duration = Duration::from_millis(200);
    let cfg = OnuDriverConfig {
        onu,
        state_dir: a.dir,
        listen: a.listen,
        olt: a.olt,
        group: a.group,
        faults: onu::faults::Faults::none(),
        rx_faults: Default::default(),
        tx_faults: Default::default(),
        seed: 1,
        supervise: true,
        reboot_delay: Duration::from_millis(200),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let exit = runtime.block_on(onu_driver::run(cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    }))?;
    Ok(ExitCode::from(exit.code()))
}
