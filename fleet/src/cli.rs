//! The `fleet` command line: `fleet serve` runs the service; every other command asks a
//! running service over its HTTP API (the same API the dashboard and the controllers use).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use clap::{Args, Parser, Subcommand};
use olt::worker::FleetClient;

use crate::api::{CampaignDetail, HaltRequest, PackageUpload, Timing};
use crate::auth::{Role, Tokens};
use crate::model::{CampaignRow, CampaignSpec, CampaignState, Millis, Mode, Target};
use crate::store::Store;

#[derive(Parser)]
#[command(
    name = "fleet",
    version,
    about = "The lab's fleet service: one campaign across many OLTs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: the API, the dashboard, the campaigns.
    Serve(ServeArgs),
    /// Print one of the service's tokens (read from its state directory).
    Token(TokenArgs),
    /// Packages: a manifest and its image.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Campaigns.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// The inventory: OLTs, PON ports, ONUs.
    Inventory(ReadArgs),
    /// The events the OLTs and the campaigns reported, newest last.
    Events(ReadArgs),
    /// The audit log: every change, and who made it.
    Audit(ReadArgs),
    /// The database and its row counts.
    Status(ReadArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// The database: sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB (default: SQLite in
    /// the state directory).
    #[arg(long)]
    db: Option<String>,
    /// Where the tokens (and the default SQLite database) are kept.
    #[arg(long, default_value = "fleet-state")]
    state_dir: PathBuf,
    /// The address to serve on: loopback by default; another needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1:8700")]
    listen: SocketAddr,
    /// Serve on an address that is not loopback (the tokens still guard every change).
    #[arg(long)]
    allow_remote: bool,
    /// A lease lasts this long after its last heartbeat (ms).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(200..=3_600_000))]
    lease_ms: u64,
    /// Controllers heartbeat this often (ms).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    heartbeat_ms: u64,
    /// Idle controllers ask for work this often (ms).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    poll_ms: u64,
    /// The campaigns are driven this often (ms).
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    tick_ms: u64,
}

#[derive(Args)]
struct TokenArgs {
    /// The service's state directory.
    #[arg(long, default_value = "fleet-state")]
    state_dir: PathBuf,
    /// Which token.
    #[arg(long, value_enum, default_value_t = RoleArg::Operator)]
    role: RoleArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Operator,
    Controller,
    Viewer,
}

/// Where the service is and the token to show it.
#[derive(Args, Clone)]
struct Remote {
    /// The service.
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// The token (default: FLEET_TOKEN, else the operator token of --state-dir).
    #[arg(long)]
    token: Option<String>,
    /// The service's state directory, to read the operator token from.
    #[arg(long, default_value = "fleet-state")]
    state_dir: PathBuf,
}

impl Remote {
    fn client(&self) -> Result<FleetClient> {
        let token = match self
            .token
            .clone()
            .or_else(|| std::env::var("FLEET_TOKEN").ok())
        {
            Some(t) => t,
            None => Tokens::load(&Tokens::path(&self.state_dir))
                .with_context(|| {
                    format!(
                        "no --token or FLEET_TOKEN, and no tokens in {}",
                        self.state_dir.display()
                    )
                })?
                .of(Role::Operator)
                .map(|t| t.token.clone())
                .context("no operator token")?,
        };
        Ok(FleetClient::new(&self.url, &token, Duration::from_secs(60)))
    }
}

#[derive(Args)]
struct ReadArgs {
    #[command(flatten)]
    remote: Remote,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PackageCommand {
    /// Add a package: an image (from `onu image build`) and its release manifest.
    Add(PackageAddArgs),
    /// List the packages.
    List(ReadArgs),
}

#[derive(Args)]
struct PackageAddArgs {
    #[command(flatten)]
    remote: Remote,
    /// The image file.
    #[arg(long)]
    image: PathBuf,
    /// Its release manifest (JSON).
    #[arg(long)]
    manifest: PathBuf,
    /// The package's id (default MODEL-VERSION; MODEL-VERSION-from-BASE for a delta package).
    #[arg(long)]
    id: Option<String>,
    /// A delta package's base version: optional (the package names its own), refused when it
    /// disagrees.
    #[arg(long)]
    base_version: Option<String>,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Create a campaign (a draft; --start starts it too).
    Create(CreateArgs),
    /// Start a draft: it runs from its start time on.
    Start(IdArgs),
    /// Halt a campaign: no further wave starts; the PONs running wind down.
    Halt(HaltArgs),
    /// Show a campaign: its waves, PONs, results.
    Show(ShowArgs),
    /// List the campaigns.
    List(ReadArgs),
    /// Wait until a campaign has completed or halted and every PON has been given back; exit
    /// 0 when it completed, 1 otherwise.
    Wait(WaitArgs),
}

#[derive(Args)]
struct CreateArgs {
    #[command(flatten)]
    remote: Remote,
    /// A name for people.
    #[arg(long)]
    name: String,
    /// The package rolled out.
    #[arg(long)]
    package: String,
    /// Only ONUs of this model (default: the package's).
    #[arg(long)]
    model: Option<String>,
    /// Only ONUs running this version (repeatable; default: any but the package's).
    #[arg(long = "from-version")]
    from_versions: Vec<String>,
    /// Only this OLT (repeatable; default: every OLT).
    #[arg(long = "olt")]
    olts: Vec<String>,
    /// Only OLTs of this region.
    #[arg(long)]
    region: Option<String>,
    /// The canary wave's share of the fleet's targeted ONUs (percent, 0: none).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    canary: u8,
    /// Cascading groups after the canary.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    groups: u32,
    /// Kill switch and health gate: halt when more than this percent have failed.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u8).range(0..=100))]
    kill_threshold: u8,
    /// A wave done soaks this long before it is judged (ms).
    #[arg(long, default_value_t = 0)]
    soak_ms: u64,
    /// The OLT's health gate per ONU (ms).
    #[arg(long, default_value_t = 1000)]
    health_settle_ms: u64,
    /// At most this many PONs download at once (0: no cap).
    #[arg(long, default_value_t = 0)]
    max_parallel_pons: u32,
    /// Start no earlier than this (RFC 3339).
    #[arg(long)]
    start_at: Option<String>,
    /// How the windows travel.
    #[arg(long, value_enum, default_value_t = Mode::Multicast)]
    mode: Mode,
    /// At most this many Download sections per second on each PON.
    #[arg(long)]
    pace: Option<u32>,
    /// Start it at once (scheduled for --start-at when given).
    #[arg(long)]
    start: bool,
}

#[derive(Args)]
struct IdArgs {
    #[command(flatten)]
    remote: Remote,
    /// The campaign.
    id: i64,
}

#[derive(Args)]
struct HaltArgs {
    #[command(flatten)]
    remote: Remote,
    /// The campaign.
    id: i64,
    /// Why.
    #[arg(long, default_value = "halted by the operator")]
    reason: String,
}

#[derive(Args)]
struct ShowArgs {
    #[command(flatten)]
    remote: Remote,
    /// The campaign.
    id: i64,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct WaitArgs {
    #[command(flatten)]
    remote: Remote,
    /// The campaign.
    id: i64,
    /// Give up after this long (s).
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
}

/// Runs the `fleet` command line.
pub fn main() -> ExitCode {
    let cli = match parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleet: {e:#}");
            // The fleet refused the request as invalid (400, 422) or naming nothing it has
            // (404): the input was wrong. Anything else: the work failed.
            let refused_input = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<olt::worker::ClientError>(),
                    Some(olt::worker::ClientError::Refused {
                        status: 400 | 404 | 422,
                        ..
                    })
                )
            });
            ExitCode::from(if refused_input { 2 } else { 1 })
        }
    }
}

/// Parses the arguments; a usage error is printed and exits 2, `--help` exits 0.
fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let code = if e.use_stderr() { 2 } else { 0 };
        let _ = e.print();
        ExitCode::from(code)
    })
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(a) => serve(a),
        Command::Token(a) => {
            let t = Tokens::load(&Tokens::path(&a.state_dir))?;
            let role = match a.role {
                RoleArg::Operator => Role::Operator,
                RoleArg::Controller => Role::Controller,
                RoleArg::Viewer => Role::Viewer,
            };
            println!("{}", t.of(role).context("no token of that role")?.token);
            Ok(ExitCode::SUCCESS)
        }
        Command::Package(PackageCommand::Add(a)) => {
            let c = a.remote.client()?;
            let image = std::fs::read(&a.image)
                .with_context(|| format!("reading {}", a.image.display()))?;
            let manifest: pon::manifest::Manifest = serde_json::from_str(
                &std::fs::read_to_string(&a.manifest)
                    .with_context(|| format!("reading {}", a.manifest.display()))?,
            )
            .with_context(|| format!("{} is not a release manifest", a.manifest.display()))?;
            let up = PackageUpload {
                id: a.id,
                manifest,
                base_version: a.base_version,
                image_base64: base64::engine::general_purpose::STANDARD.encode(&image),
            };
            let row: crate::store::PackageRow = c.post("/api/packages", &up)?;
            println!(
                "package {}: {} {} ({}, {} bytes)",
                row.id,
                row.model,
                row.version,
                row.kind.word(),
                row.size
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Package(PackageCommand::List(a)) => {
            let rows: Vec<crate::store::PackageRow> = a.remote.client()?.get("/api/packages")?;
            if a.json {
                print_json(&rows)?;
            } else {
                for p in rows {
                    println!(
                        "{:<24} {:<12} {:<14} {:<6} {} bytes",
                        p.id,
                        p.model,
                        p.version,
                        p.kind.word(),
                        p.size
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Campaign(c) => campaign(c),
        Command::Inventory(a) => {
            let inv: crate::store::Inventory = a.remote.client()?.get("/api/inventory")?;
            if a.json {
                return print_json(&inv).map(|()| ExitCode::SUCCESS);
            }
            for o in &inv.olts {
                println!(
                    "{} ({}): {} PON ports, controller {}",
                    o.id,
                    o.region,
                    o.pons.len(),
                    o.controller.as_deref().unwrap_or("-")
                );
            }
            for o in &inv.onus {
                println!(
                    "  {} {} PON {} ONU {:>3} {:<12} active {:<10} committed {}",
                    o.onu.serial,
                    o.onu.olt,
                    o.onu.pon,
                    o.onu.onu_id,
                    o.onu.model.as_deref().unwrap_or("?"),
                    o.onu.active_version.as_deref().unwrap_or("?"),
                    o.onu.committed_version.as_deref().unwrap_or("?")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Events(a) => {
            let rows: Vec<crate::store::EventRow> =
                a.remote.client()?.get("/api/events?limit=1000")?;
            if a.json {
                return print_json(&rows).map(|()| ExitCode::SUCCESS);
            }
            for e in rows {
                println!(
                    "{} {:<22} {}{}",
                    e.at.rfc3339(),
                    e.kind,
                    e.olt.map(|o| format!("{o}: ")).unwrap_or_default(),
                    e.detail
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(a) => {
            let rows: Vec<crate::store::AuditRow> = a.remote.client()?.get("/api/audit")?;
            if a.json {
                return print_json(&rows).map(|()| ExitCode::SUCCESS);
            }
            for r in rows {
                println!(
                    "{} {:<10} {:<16} {}",
                    r.at.rfc3339(),
                    r.actor,
                    r.action,
                    r.detail
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(a) => {
            let v: serde_json::Value = a.remote.client()?.get("/api/status")?;
            print_json(&v)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    if !a.listen.ip().is_loopback() && !a.allow_remote {
        eprintln!(
            "fleet: --listen {} is not a loopback address: add --allow-remote to serve on it",
            a.listen
        );
        return Ok(ExitCode::from(2));
    }
    let (tokens, made) = Tokens::load_or_create(&a.state_dir)?;
    let db = a.db.clone().unwrap_or_else(|| default_db(&a.state_dir));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(&db).await?;
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .with_context(|| format!("binding {}", a.listen))?;
        let addr = listener.local_addr()?;
        println!("fleet: listening on http://{addr}");
        println!(
            "fleet: database {} ({})",
            redact(&db),
            store.dialect().name()
        );
        println!(
            "fleet: tokens in {}{} (fleet token --state-dir {} --role operator|controller|viewer)",
            Tokens::path(&a.state_dir).display(),
            if made { ", made now" } else { "" },
            a.state_dir.display()
        );
        println!("fleet: dashboard http://{addr}/#token=VIEWER-TOKEN");
        std::io::stdout().flush()?;
        let timing = Timing {
            lease_ms: a.lease_ms,
            heartbeat_ms: a.heartbeat_ms,
            poll_ms: a.poll_ms,
            tick_ms: a.tick_ms,
        };
        crate::api::serve(listener, store, tokens, timing, async {
            let _ = interrupted().await;
        })
        .await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let auth = &url[s + 3..at];
            match auth.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn rfc3339_millis(s: &str) -> Result<Millis> {
    let t = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("--start-at {s:?} is not an RFC 3339 time"))?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .context("--start-at before 1970")?;
    Ok(Millis(d.as_millis() as i64))
}

fn campaign(c: CampaignCommand) -> Result<ExitCode> {
    match c {
        CampaignCommand::Create(a) => {
            let spec = CampaignSpec {
                name: a.name,
                package: a.package,
                target: Target {
                    model: a.model,
                    from_versions: a.from_versions,
                    olts: a.olts,
                    region: a.region,
                },
                canary_percent: a.canary,
                groups: a.groups,
                kill_threshold: f64::from(a.kill_threshold) / 100.0,
                wave_soak_ms: a.soak_ms,
                health_settle_ms: a.health_settle_ms,
                max_parallel_pons: a.max_parallel_pons,
                start_at: a.start_at.as_deref().map(rfc3339_millis).transpose()?,
                mode: a.mode,
                pace: a.pace,
            };
            let client = a.remote.client()?;
            let v: serde_json::Value = client.post("/api/campaigns", &spec)?;
            let id = v["id"].as_i64().context("the fleet's answer has no id")?;
            if a.start {
                let _: serde_json::Value = client.post(
                    &format!("/api/campaigns/{id}/start"),
                    &serde_json::json!({}),
                )?;
            }
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Start(a) => {
            let _: serde_json::Value = a.remote.client()?.post(
                &format!("/api/campaigns/{}/start", a.id),
                &serde_json::json!({}),
            )?;
            println!("campaign {} started", a.id);
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Halt(a) => {
            let _: serde_json::Value = a.remote.client()?.post(
                &format!("/api/campaigns/{}/halt", a.id),
                &HaltRequest { reason: a.reason },
            )?;
            println!("campaign {} halted", a.id);
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Show(a) => {
            let d: CampaignDetail = a
                .remote
                .client()?
                .get(&format!("/api/campaigns/{}", a.id))?;
            if a.json {
                print_json(&d)?;
            } else {
                print_detail(&d);
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::List(a) => {
            let rows: Vec<CampaignRow> = a.remote.client()?.get("/api/campaigns")?;
            if a.json {
                return print_json(&rows).map(|()| ExitCode::SUCCESS);
            }
            for c in rows {
                println!(
                    "{:>4} {:<20} {:<10} {}{}",
                    c.id,
                    c.spec.name,
                    c.state.word(),
                    c.spec.package,
                    c.halt_reason.map(|r| format!(" ({r})")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Wait(a) => wait(&a.remote.client()?, a.id, a.timeout_s),
    }
}

fn wait(client: &FleetClient, id: i64, timeout_s: u64) -> Result<ExitCode> {
    let end = Instant::now() + Duration::from_secs(timeout_s);
    loop {
        match client.get::<CampaignDetail>(&format!("/api/campaigns/{id}")) {
            Ok(d) => {
                let c = &d.view.campaign;
                let settled = !d.view.work.iter().any(|w| {
                    matches!(
                        w.state,
                        crate::model::WorkState::Leased | crate::model::WorkState::Ready
                    )
                });
                if matches!(c.state, CampaignState::Completed | CampaignState::Halted) && settled {
                    print_detail(&d);
                    return Ok(if c.state == CampaignState::Completed {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    });
                }
            }
            Err(olt::worker::ClientError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= end {
            bail!("campaign {id} has not ended after {timeout_s} s");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn print_detail(d: &CampaignDetail) {
    let c = &d.view.campaign;
    println!(
        "Campaign {} {:?}: {} ({} {}), {}",
        c.id,
        c.spec.name,
        c.state.word(),
        c.package_model,
        c.package_version,
        c.halt_reason.as_deref().unwrap_or("")
    );
    let k = &d.summary.kill_switch;
    println!(
        "Kill switch: {} ({} of {} failed, trips above {:.0} %)",
        if k.tripped { "tripped" } else { "not tripped" },
        k.failed,
        k.of,
        k.threshold * 100.0
    );
    for w in &d.view.waves {
        let rs: Vec<_> = d.view.results.iter().filter(|r| r.wave == w.wave).collect();
        let up = rs
            .iter()
            .filter(|r| r.result == crate::model::OnuResult::Upgraded)
            .count();
        let failed = rs
            .iter()
            .filter(|r| r.result == crate::model::OnuResult::Failed)
            .count();
        let pons = d.view.work.iter().filter(|x| x.wave == w.wave).count();
        println!(
            "  wave {} {:<6} {:<9} {pons} PONs, {} ONUs: {up} upgraded, {failed} failed",
            w.wave + 1,
            w.kind.word(),
            w.state.word(),
            rs.len()
        );
    }
    let counts: Vec<String> = d
        .summary
        .results
        .iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    println!("ONUs: {}", counts.join(", "));
}

/// The default database of a state directory.
pub fn default_db(state_dir: &Path) -> String {
    format!("sqlite://{}", state_dir.join("fleet.db").display())
}
