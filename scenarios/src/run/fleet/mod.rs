//! A fleet scenario run (a scenario with a `[fleet]` section, `spec::fleet`): a `fleet serve`
//! service, `fleet.olts` OLTs each with its ONU processes and one or two `olt worker`
//! controllers, one campaign across them, the fleet's own faults, every ONU's flash read back
//! and the expectations checked.
//!
//! The fleet service is the `fleet` tool, run as a process of its own: this crate does not
//! depend on the `fleet` crate (it is above this one), only on its command line and its HTTP
//! API (through the one client of it, `olt::worker::FleetClient`). Where the tool is: see
//! [`fleet_tool`]. The ONUs (`scenario onu run --count`, one supervisor per PON port) and the
//! controllers (`scenario olt worker`) are this lab's own tools, started like every other child
//! of a run (`lifecycle`): in a process group of their own, dying with the runner, stopped on a
//! signal, killed when dropped. The fleet service too, through `setpriv --pdeathsig` where the
//! machine has it.
//!
//! The rooms: this file starts and watches the processes and carries out the faults;
//! `checks` judges what happened against `[fleet.expect]`; `summary` writes the words.

mod checks;
mod processes;
mod summary;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use olt::worker::FleetClient;
use serde::Serialize;
use serde_json::Value;

use super::images::Images;
use super::lifecycle::{self, Child};
use super::plan::OnuPlan;
use super::{Check, RunOptions, WorkDir};
use crate::spec::{CampaignSpec, FleetFaultKind, FleetTrigger, Scenario};
use processes::{Controller, Layout, Service, epoch_ms, signal, tool};
pub use processes::{FLEET_TOOL_ENV, NoFleetTool, fleet_tool};

/// How to run a fleet scenario, beyond [`RunOptions`].
#[derive(Clone, Debug, Default)]
pub struct FleetOptions {
    /// The `fleet` tool (default: see [`fleet_tool`]).
    pub fleet_bin: Option<PathBuf>,
    /// The fleet's database (a `postgres://` URL, or `sqlite:PATH`); default: SQLite in the
    /// working directory.
    pub db: Option<String>,
    /// Keep the fleet service (and its dashboard) up this long after the checks.
    pub linger: Duration,
}

/// How a fleet scenario went.
#[derive(Debug)]
pub struct FleetOutcome {
    /// Every expectation held.
    pub passed: bool,
    /// The expectations that did not hold.
    pub failures: Vec<String>,
    /// The human summary.
    pub summary: String,
    /// The report (`--report`): format `fleet-scenario-report`.
    pub report: FleetReport,
}

/// A controller killed by a fault, and what the store said at that moment.
#[derive(Clone, Debug, Serialize)]
pub struct Kill {
    /// Its OLT.
    pub olt: String,
    /// The controller.
    pub controller: String,
    /// Seconds after the campaign started.
    pub at_s: f64,
    /// The fleet's clock then (ms since the epoch).
    pub at_ms: i64,
    /// The work it held: its wave (from 0), PON, id and leases given so far.
    pub work: Option<KilledWork>,
    /// The ONUs of its OLT upgraded then.
    pub upgraded_before: Vec<Upgraded>,
}

/// An ONU recorded upgraded, as the store had it.
#[derive(Clone, Debug, Serialize)]
pub struct Upgraded {
    /// Its ONU-ID.
    pub onu_id: u16,
    /// When its result was recorded final (ms since the epoch).
    pub finished_at: i64,
    /// The controller that reported it.
    pub controller: String,
}

/// The work a killed controller held.
#[derive(Clone, Debug, Serialize)]
pub struct KilledWork {
    /// Its wave, from 0.
    pub wave: u32,
    /// Its PON port.
    pub pon: u8,
    /// Its id.
    pub id: i64,
    /// Leases given for it until then.
    pub attempts: u64,
}

/// The report of a fleet scenario (`--report`).
#[derive(Debug, Serialize)]
pub struct FleetReport {
    /// `fleet-scenario-report`.
    pub format: &'static str,
    /// 1.
    pub format_version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// What it rehearses.
    pub description: String,
    /// Every expectation held.
    pub passed: bool,
    /// Each expectation.
    pub checks: Vec<Check>,
    /// OLTs, PON ports per OLT, ONUs per PON port, ONUs in all.
    pub olts: u16,
    /// PON ports of each OLT.
    pub pons_per_olt: u8,
    /// ONUs on each PON port.
    pub onus_per_pon: u16,
    /// ONU processes in all.
    pub onus: usize,
    /// The controllers' names.
    pub controllers: Vec<String>,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// The run, from the first process started to the flash read back (s).
    pub duration_s: f64,
    /// From the ONUs' start until every ONU was in the inventory (s).
    pub inventory_s: f64,
    /// From the campaign's start to its end (s).
    pub campaign_s: f64,
    /// Each wave: its kind, state, PONs, ONUs and how long it ran (s) and took to be judged.
    pub waves: Vec<WaveTime>,
    /// The faults as they happened, in words.
    pub faults: Vec<String>,
    /// The controllers the faults killed.
    pub kills: Vec<Kill>,
    /// The store at the end: its rows per table and its size in bytes.
    pub store: Value,
    /// The campaign as the fleet's API has it at the end (waves, work, results, summary).
    pub campaign: Value,
    /// Every event of the run.
    pub events: Vec<Value>,
}

/// One wave's times.
#[derive(Clone, Debug, Serialize)]
pub struct WaveTime {
    /// From 1.
    pub wave: u64,
    /// `canary` or `group`.
    pub kind: String,
    /// Its end state.
    pub state: String,
    /// PONs it had work on.
    pub pons: usize,
    /// ONUs it had.
    pub onus: usize,
    /// From its start until its last PON was done (s).
    pub run_s: Option<f64>,
    /// From its start until it was judged (s; the soak and the gate included).
    pub judged_s: Option<f64>,
}

/// Runs the fleet scenario `s` (it has a `[fleet]` section).
pub async fn run_fleet(
    s: &Scenario,
    opts: &RunOptions,
    fopts: &FleetOptions,
    program: &[OsString],
) -> Result<FleetOutcome> {
    let f = s.fleet.as_ref().context("not a fleet scenario")?;
    let bin = fleet_tool(fopts.fleet_bin.as_deref())?;
    let started = Instant::now();
    // Declared first, so removed last.
    let work = WorkDir::new(opts)?;
    let dir = work.path().to_path_buf();
    let layout = Layout::new(s, f, opts.port)?;
    let n = layout.n();

    // The images: the factory (golden) one, the new one and its manifest.
    let mut with_manifest = s.clone();
    with_manifest.olt.campaign = Some(CampaignSpec {
        canary: None,
        kill_threshold: f.campaign.kill_threshold,
        health_settle_ms: f.campaign.health_settle_ms,
        pace: f.campaign.pace,
        start_in_s: None,
    });
    let plans: BTreeMap<u16, OnuPlan> = layout
        .onus
        .iter()
        .map(|(id, (_, pon))| {
            (
                *id,
                OnuPlan {
                    id: *id,
                    pon: *pon,
                    onu_id: *id,
                    model: s.topology.model.clone(),
                    version: s.topology.version.clone(),
                    busy_ms: s.topology.busy_ms,
                    voice_call: false,
                    max_window: None,
                    link: None,
                    power_loss: None,
                },
            )
        })
        .collect();
    let images = Images::write(&with_manifest, &plans, &dir)?;
    let manifest = images.manifest.clone().context("no manifest written")?;
    let golden = images.golden(plans.values().next().context("no ONUs")?);

    // The fleet service.
    let db = fopts.db.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            dir.join("fleet-state").join("fleet.db").display()
        )
    });
    let database = if db.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let mut service = Service {
        bin,
        dir: dir.clone(),
        db,
        listen: "127.0.0.1:0".into(),
        url: String::new(),
        lives: 0,
        child: None,
        lease_ms: f.lease_ms,
        heartbeat_ms: f.heartbeat_ms,
    };
    service.start().await?;
    let viewer_token = service.token("viewer")?;
    let controller_token = service.token("controller")?;
    let viewer = FleetClient::new(&service.url, &viewer_token, Duration::from_secs(20));
    // A database an earlier fleet used would mix its OLTs and campaigns into this one's.
    if let Some(url) = &fopts.db {
        let rows = viewer
            .get::<Value>("/api/status")
            .context("asking the fleet service for its database's rows")?;
        let count = |t: &str| rows["rows"][t].as_i64().unwrap_or(0);
        if count("olts") > 0 || count("campaigns") > 0 {
            service.stop().await;
            return Err(NotEmpty(format!(
                "--fleet-db {}: the database holds an earlier fleet ({} OLT{}, {} campaign{}); \
                 give an empty one",
                redact(url),
                count("olts"),
                if count("olts") == 1 { "" } else { "s" },
                count("campaigns"),
                if count("campaigns") == 1 { "" } else { "s" }
            ))
            .into());
        }
    }
    opts.say(format!(
        "{}: the fleet service is up on {} ({database}); its dashboard: {}/#token={viewer_token}",
        s.name, service.url, service.url
    ));

    // The ONUs: one supervisor per PON port, one process per ONU under it.
    opts.say(format!(
        "{}: starting {n} ONU processes on {}; working directory {}",
        s.name,
        summary::shape(layout.olts.len(), s.topology.pons, layout.per_pon),
        dir.display()
    ));
    let onus_started = Instant::now();
    let mut supervisors: Vec<Child> = Vec::new();
    for o in &layout.olts {
        for p in &o.pons {
            let log = std::fs::File::create(dir.join(format!("{}-pon-{}.log", o.name, p.pon)))?;
            let mut c = tool(program, "onu");
            c.args(["run", "--supervise"])
                .arg(format!("--count={}", layout.per_pon))
                .arg(format!("--onu-id={}", p.first_id))
                .arg(format!("--model={}", s.topology.model))
                .arg(format!("--listen=127.0.0.1:{}", p.first_port))
                .arg(format!("--olt={}", o.listen))
                .arg(format!("--group={}", p.group))
                .arg(format!("--state-dir={}", dir.join("onus").display()))
                .arg(format!("--public-key={}", images.public_key.display()))
                .arg(format!("--golden={}", golden.display()))
                .arg(format!("--busy-ms={}", s.topology.busy_ms))
                .arg(format!("--reboot-ms={}", s.topology.reboot_ms))
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            supervisors.push(lifecycle::spawn(&mut c).context("starting the ONU processes")?);
        }
    }

    // The controllers: one per OLT, and a standby where the file asks for one.
    let mut controllers: Vec<Controller> = Vec::new();
    for (i, o) in layout.olts.iter().enumerate() {
        let mut names = vec![format!("{}-a", o.name)];
        if f.standby.contains(&o.number) {
            names.push(format!("{}-b", o.name));
        }
        for name in names {
            let mut c = tool(program, "olt");
            c.arg("worker")
                .arg(format!("--fleet={}", service.url))
                .arg(format!("--olt-id={}", o.name))
                .arg(format!("--region={}", o.region))
                .arg(format!("--controller={name}"))
                .arg(format!("--listen={}", o.listen))
                .arg(format!("--timeout-ms={}", s.olt.timeout_ms))
                .arg(format!("--retries={}", s.olt.retries))
                .arg(format!("--window={}", s.olt.window))
                .arg("--reboot-timeout-s=30")
                .arg("--rescan-s=2")
                .arg(format!(
                    "--cache-dir={}",
                    dir.join(format!("cache-{name}")).display()
                ));
            for p in &o.pons {
                c.arg(format!(
                    "--onus={}/{}-{}@127.0.0.1:{}",
                    p.pon,
                    p.first_id,
                    p.first_id + layout.per_pon - 1,
                    p.first_port
                ))
                .arg(format!("--group={}/{}", p.pon, p.group));
            }
            c.env("FLEET_TOKEN", &controller_token)
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.join(format!("{name}.out")))?)
                .stderr(std::fs::File::create(dir.join(format!("{name}.err")))?);
            controllers.push(Controller {
                name,
                olt: i,
                child: Some(lifecycle::spawn(&mut c).context("starting a controller")?),
            });
        }
    }

    // Every ONU in the inventory, as its controller read it.
    let boot_limit = Duration::from_secs(30) + Duration::from_millis(60 * n as u64);
    let deadline = onus_started + boot_limit;
    loop {
        let got = viewer
            .get::<Value>("/api/inventory")
            .ok()
            .and_then(|v| v["onus"].as_array().map(Vec::len))
            .unwrap_or(0);
        if got >= n {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{got} of {n} ONUs reached the fleet's inventory within {} s{}",
                boot_limit.as_secs(),
                said(&dir, &controllers)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inventory_s = onus_started.elapsed().as_secs_f64();
    opts.say(format!(
        "{}: {n} ONUs in the inventory after {inventory_s:.1} s; the campaign starts",
        s.name
    ));

    // The package and the campaign.
    let pkg = format!("{}-{}", s.topology.model, s.image.version);
    service.cli(&[
        "package".into(),
        "add".into(),
        format!("--image={}", images.image.display()),
        format!("--manifest={}", manifest.display()),
        format!("--id={pkg}"),
    ])?;
    // Its delta packages: the campaign of the full image takes them to the ONUs on each base.
    for (image, manifest) in images.deltas.iter().zip(&images.delta_manifests) {
        service.cli(&[
            "package".into(),
            "add".into(),
            format!("--image={}", image.display()),
            format!("--manifest={}", manifest.display()),
        ])?;
    }
    let c = &f.campaign;
    let mut create = vec![
        "campaign".to_string(),
        "create".into(),
        format!("--name={}", s.name),
        format!("--package={pkg}"),
        format!("--canary={}", c.canary),
        format!("--groups={}", c.groups),
        format!("--kill-threshold={}", c.kill_threshold),
        format!("--health-settle-ms={}", c.health_settle_ms),
        format!("--soak-ms={}", c.soak_ms),
        format!("--max-parallel-pons={}", c.max_parallel_pons),
        format!("--mode={}", s.olt.mode.name()),
        "--start".into(),
    ];
    if let Some(p) = c.pace {
        create.push(format!("--pace={p}"));
    }
    let id: i64 = service
        .cli(&create)?
        .trim()
        .parse()
        .context("the fleet tool did not print the campaign's id")?;
    let campaign_started = Instant::now();
    let path = format!("/api/campaigns/{id}");

    // Watch it, carrying out the faults, until it ends and every PON is given back.
    let mut pending: Vec<usize> = (0..f.faults.len()).collect();
    let mut notes: Vec<String> = Vec::new();
    let mut kills: Vec<Kill> = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    let mut last_event = 0i64;
    let mut last: Value = Value::Null;
    let limit = Duration::from_secs(s.time_limit_s);
    let mut timed_out = false;
    let mut last_say = Instant::now();
    // The campaign's whole detail is read at each look: five times a second for a small
    // fleet, once a second past 256 ONUs (its JSON grows with them, and so the service's work).
    let poll = Duration::from_millis(if n > 256 { 1000 } else { 200 });
    loop {
        let t = campaign_started.elapsed();
        if t > limit {
            timed_out = true;
            break;
        }
        if let Ok(d) = viewer.get::<Value>(&path) {
            last = d;
        } else {
            // The service is restarting, or busy: ask again.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        fetch_events(&viewer, &mut events, &mut last_event);
        let t_s = t.as_secs_f64();
        let mut fired = Vec::new();
        for &i in &pending {
            let fault = &f.faults[i];
            let due = match (fault.on, fault.at_s) {
                (_, Some(at)) => t_s >= at,
                (Some(FleetTrigger::Wave(w)), None) => wave_under_way(
                    &last,
                    w - 1,
                    fault
                        .olt
                        .map(|k| layout.olts[usize::from(k) - 1].name.as_str()),
                ),
                (Some(FleetTrigger::PonResumed), None) => {
                    events.iter().any(|e| e["kind"] == "pon-resumed")
                }
                (None, None) => false,
            };
            if !due {
                continue;
            }
            fired.push(i);
            match fault.kind {
                FleetFaultKind::ControllerSigkill => {
                    let olt = &layout.olts[usize::from(fault.olt.unwrap_or(1)) - 1];
                    let held = holding(&last, &olt.name);
                    let victim = match &held {
                        Some((owner, _)) => controllers
                            .iter()
                            .position(|c| &c.name == owner && c.child.is_some()),
                        None => controllers
                            .iter()
                            .position(|c| c.child.is_some() && layout.olts[c.olt].name == olt.name),
                    };
                    let Some(v) = victim else {
                        notes.push(format!(
                            "{t_s:.1} s: controller-sigkill on {}: no controller of it is running",
                            olt.name
                        ));
                        continue;
                    };
                    let ctl = &mut controllers[v];
                    if let Some(mut child) = ctl.child.take() {
                        let _ = child.kill().await;
                    }
                    let upgraded_before = last["results"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|r| r["olt"] == olt.name.as_str() && r["result"] == "upgraded")
                        .filter_map(|r| {
                            Some(Upgraded {
                                onu_id: r["onu_id"].as_u64()? as u16,
                                finished_at: r["finished_at"].as_i64()?,
                                controller: r["controller"].as_str()?.to_string(),
                            })
                        })
                        .collect();
                    let work = held.map(|(_, w)| KilledWork {
                        wave: w["wave"].as_u64().unwrap_or(0) as u32,
                        pon: w["pon"].as_u64().unwrap_or(0) as u8,
                        id: w["id"].as_i64().unwrap_or(0),
                        attempts: w["attempts"].as_u64().unwrap_or(0),
                    });
                    notes.push(format!(
                        "{t_s:.1} s: SIGKILL to controller {}{}",
                        ctl.name,
                        match &work {
                            Some(w) => format!(
                                " (it held {} PON {} in wave {})",
                                olt.name,
                                w.pon,
                                w.wave + 1
                            ),
                            None => " (it held nothing)".into(),
                        }
                    ));
                    opts.say(format!(
                        "{}: {}",
                        s.name,
                        notes.last().unwrap_or(&String::new())
                    ));
                    kills.push(Kill {
                        olt: olt.name.clone(),
                        controller: ctl.name.clone(),
                        at_s: t_s,
                        at_ms: epoch_ms(),
                        work,
                        upgraded_before,
                    });
                }
                FleetFaultKind::FleetRestart => {
                    let state = last["campaign"]["state"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string();
                    service.stop().await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    service.start().await?;
                    notes.push(format!(
                        "{t_s:.1} s: the fleet service stopped (SIGTERM) with the campaign \
                         {state}, and started again on the same database"
                    ));
                    opts.say(format!(
                        "{}: {}",
                        s.name,
                        notes.last().unwrap_or(&String::new())
                    ));
                }
            }
        }
        pending.retain(|i| !fired.contains(i));
        if ended(&last) {
            break;
        }
        if last_say.elapsed() > Duration::from_secs(5) {
            last_say = Instant::now();
            opts.say(format!("{}: {:.0} s: {}", s.name, t_s, progress(&last)));
        }
        tokio::time::sleep(poll).await;
    }
    let campaign_s = campaign_started.elapsed().as_secs_f64();
    fetch_events(&viewer, &mut events, &mut last_event);
    let store = viewer.get::<Value>("/api/status").unwrap_or(Value::Null);
    opts.say(format!(
        "{}: the campaign {} after {campaign_s:.1} s; reading every flash",
        s.name,
        if timed_out {
            "ran out of time".to_string()
        } else {
            last["campaign"]["state"]
                .as_str()
                .unwrap_or("?")
                .to_string()
        }
    ));

    // Stop the controllers and the ONUs, read every flash.
    for c in &mut controllers {
        if let Some(mut child) = c.child.take() {
            let _ = child.kill().await;
        }
    }
    for sup in &supervisors {
        signal(sup.id(), nix::sys::signal::Signal::SIGTERM);
    }
    for sup in &mut supervisors {
        if tokio::time::timeout(Duration::from_secs(6), sup.wait())
            .await
            .is_err()
        {
            let _ = sup.kill().await;
        }
    }
    // The supervisors' children end on their parent's death signal: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let flash = super::flash::read_all(&dir.join("onus"), &plans, &images)?;

    let not_done: Vec<String> = pending
        .iter()
        .map(|&i| {
            let x = &f.faults[i];
            format!(
                "{}{}",
                x.kind.name(),
                x.olt.map(|n| format!(" of OLT {n}")).unwrap_or_default()
            )
        })
        .collect();
    let found = checks::Found {
        s,
        f,
        not_done: &not_done,
        detail: &last,
        events: &events,
        flash: &flash,
        onus: &layout.onus,
        kills: &kills,
        timed_out,
        lease_ms: f.lease_ms,
        image_sha256: &images.sha256,
    };
    let checks = checks::check(&found);
    let failures: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.clone())
        .collect();
    let waves = summary::wave_times(&last);
    let report = FleetReport {
        format: "fleet-scenario-report",
        format_version: 1,
        scenario: s.name.clone(),
        description: s.description.clone(),
        passed: failures.is_empty(),
        checks,
        olts: f.olts,
        pons_per_olt: s.topology.pons,
        onus_per_pon: layout.per_pon,
        onus: n,
        controllers: controllers.iter().map(|c| c.name.clone()).collect(),
        database: database.into(),
        duration_s: started.elapsed().as_secs_f64(),
        inventory_s,
        campaign_s,
        waves,
        faults: notes,
        kills,
        store,
        campaign: last,
        events,
    };
    let text = summary::render(s, &report);
    if let Some(out) = &opts.report {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if !fopts.linger.is_zero() {
        print!("{text}");
        println!(
            "The fleet service stays up for {} s: its dashboard is {}/#token={viewer_token}",
            fopts.linger.as_secs(),
            service.url
        );
        tokio::time::sleep(fopts.linger).await;
    }
    service.stop().await;
    Ok(FleetOutcome {
        passed: failures.is_empty(),
        failures,
        summary: if fopts.linger.is_zero() {
            text
        } else {
            String::new()
        },
        report,
    })
}

/// The `--fleet-db` database is not empty: the run did not start its fleet. The `scenario`
/// tool says so in one line and exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotEmpty(pub String);

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// `; olt-1-a said: ...` for the first controller that wrote an error, or nothing.
fn said(dir: &Path, controllers: &[Controller]) -> String {
    controllers
        .iter()
        .find_map(|c| {
            let t = std::fs::read_to_string(dir.join(format!("{}.err", c.name))).ok()?;
            let l = t.lines().rev().find(|l| !l.trim().is_empty())?.to_string();
            Some(format!("; {} said: {l}", c.name))
        })
        .unwrap_or_default()
}

/// The events after `last`, added to `events` (the API gives at most 1000 at a time).
fn fetch_events(c: &FleetClient, events: &mut Vec<Value>, last: &mut i64) {
    while let Ok(batch) = c.get::<Vec<Value>>(&format!("/api/events?after={last}&limit=1000")) {
        let got = batch.len();
        for e in batch {
            if let Some(id) = e["id"].as_i64() {
                *last = (*last).max(id);
            }
            events.push(e);
        }
        if got < 1000 {
            break;
        }
    }
}

/// The campaign has ended (completed or halted) and every PON has been given back.
fn ended(d: &Value) -> bool {
    matches!(
        d["campaign"]["state"].as_str(),
        Some("completed" | "halted")
    ) && d["work"].as_array().is_some_and(|w| {
        w.iter()
            .all(|w| w["state"] == "done" || w["state"] == "cancelled")
    })
}

/// Wave `wave` (from 0) is under way: a PON of it (of `olt`, when given) is leased and one of
/// its ONUs there has started.
fn wave_under_way(d: &Value, wave: u32, olt: Option<&str>) -> bool {
    let mine = |x: &Value| x["wave"] == wave && olt.is_none_or(|o| x["olt"] == o);
    let leased = d["work"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|w| mine(w) && w["state"] == "leased");
    let started = d["results"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| mine(r) && !r["from_version"].is_null());
    leased && started
}

/// Who holds a lease on a PON of `olt` now, and that work row.
fn holding(d: &Value, olt: &str) -> Option<(String, Value)> {
    d["work"]
        .as_array()?
        .iter()
        .find(|w| w["olt"] == olt && w["state"] == "leased" && w["lease_owner"].is_string())
        .map(|w| {
            (
                w["lease_owner"].as_str().unwrap_or("").to_string(),
                w.clone(),
            )
        })
}

/// The campaign in one line: its state, its waves, its ONUs by result.
fn progress(d: &Value) -> String {
    let waves: Vec<String> = d["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["state"].as_str().unwrap_or("?").to_string())
        .collect();
    let results: Vec<String> = d["summary"]["results"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    format!(
        "campaign {}; waves {}; ONUs {}",
        d["campaign"]["state"].as_str().unwrap_or("?"),
        waves.join(", "),
        results.join(", ")
    )
}
