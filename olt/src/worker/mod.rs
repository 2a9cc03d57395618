//! `olt worker`: the OLT as one controller of a fleet. It reads its ONUs ([`inventory`]),
//! registers its OLT, PON ports and ONUs with the fleet service, then claims the work of its
//! ports under leases, runs each with the campaign machinery of `olt rollout` (the driver, the
//! engine, the health gate), reports every ONU's result as it happens and heartbeats its
//! leases, and gives each lease back when its port is done. docs/fleet.md tells the whole
//! story; [`crate::fleet_api`] is what it says.
//!
//! In fleet mode the store replaces the JSON journal: a work leased again after its controller
//! died comes with what the store recorded of its ONUs, and the campaign resumes from that
//! ([`Campaign::resume`]): an ONU with a final result is never touched again.
//!
//! Threads: the driver runs on this thread's tokio runtime; the HTTP calls are blocking and run
//! on a reporter thread (`link`), which the driver hears through a channel.
//!
//! Fencing: a controller that has not had a heartbeat answered for a whole lease stops
//! touching its ports (it cannot know whether the fleet has given them to another).

mod client;
pub mod inventory;
mod link;

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use omci_codec::OnuId;
use sha2::Digest;

pub use client::{ClientError, FleetClient};

use crate::campaign::{Campaign, CampaignPlan, Setup, Stage};
use crate::driver::{self, Campaigns, DriverConfig, PonTarget};
use crate::engine::{MulticastConfig, PonPort};
use crate::fleet_api::{
    Claim, Claimed, Event, OnuReport, PackageRef, PonInventory, Register, Registered, Release,
    ResultsAnswer, Work,
};
use crate::image::UpgradeImage;
use crate::journal::{Journal, JournalOnu, JournalStage};
use crate::report::{OnuResult, reason};
use crate::session::SessionConfig;

/// What a controller is and drives.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// The fleet service (`http://HOST:PORT`).
    pub fleet: String,
    /// A controller's (or an operator's) token.
    pub token: String,
    /// The OLT's name.
    pub olt: String,
    /// Its region tag.
    pub region: String,
    /// This controller's name (unique per process).
    pub controller: String,
    /// The OLT's own address: its ONUs answer here.
    pub listen: SocketAddrV4,
    /// Each port's group and ONUs.
    pub pons: BTreeMap<PonPort, PonTarget>,
    /// Per-ONU timeouts and retries (the plan's health gate is set per work).
    pub session: SessionConfig,
    /// Where fetched images are kept (by SHA-256).
    pub cache_dir: PathBuf,
    /// Read the inventory again and re-register this often while idle.
    pub rescan: Duration,
}

/// Runs the controller until it is interrupted (SIGINT, SIGTERM): exit 0 then; 1 when the
/// fleet refuses it (a wrong token) or an image it is given does not check.
pub fn run(cfg: WorkerConfig) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = FleetClient::new(&cfg.fleet, &cfg.token, Duration::from_secs(10));
    std::fs::create_dir_all(&cfg.cache_dir)
        .with_context(|| format!("creating {}", cfg.cache_dir.display()))?;
    let stop = link::Stop::install()?;
    let Some(mut timing) = register(&runtime, &client, &cfg, &stop)? else {
        return Ok(ExitCode::SUCCESS);
    };
    event(
        &client,
        &cfg,
        None,
        "controller-started",
        &format!("{} ready", cfg.controller),
    );
    let mut last_scan = Instant::now();
    loop {
        if stop.stopped() {
            eprintln!("olt worker: stopping");
            return Ok(ExitCode::SUCCESS);
        }
        let claim = Claim {
            controller: cfg.controller.clone(),
            olt: cfg.olt.clone(),
        };
        let claimed: Result<Claimed, ClientError> = client.post("/api/controllers/claim", &claim);
        let works = match claimed {
            Ok(c) => c.work,
            Err(ClientError::Refused {
                status, message, ..
            }) if status == 401 || status == 403 => {
                bail!("the fleet refuses this controller: {message}");
            }
            Err(e) => {
                tracing::warn!("{e}");
                Vec::new()
            }
        };
        if works.is_empty() {
            if last_scan.elapsed() >= cfg.rescan {
                match register(&runtime, &client, &cfg, &stop)? {
                    Some(t) => timing = t,
                    None => return Ok(ExitCode::SUCCESS),
                }
                last_scan = Instant::now();
            }
            stop.sleep(Duration::from_millis(timing.poll_ms));
            continue;
        }
        run_works(&runtime, &client, &cfg, &timing, works, &stop)?;
        // The ONUs' versions changed: tell the inventory now.
        match register(&runtime, &client, &cfg, &stop)? {
            Some(t) => timing = t,
            None => return Ok(ExitCode::SUCCESS),
        }
        last_scan = Instant::now();
    }
}

/// Reads the ONUs and registers with the fleet, asking again while it does not answer. None:
/// stopped meanwhile.
fn register(
    runtime: &tokio::runtime::Runtime,
    client: &FleetClient,
    cfg: &WorkerConfig,
    stop: &link::Stop,
) -> Result<Option<Registered>> {
    let onus: BTreeMap<PonPort, BTreeMap<OnuId, SocketAddrV4>> =
        cfg.pons.iter().map(|(p, t)| (*p, t.onus.clone())).collect();
    let found = runtime.block_on(inventory::read(
        cfg.listen,
        &onus,
        cfg.session.timeout.min(Duration::from_secs(1)),
        cfg.session.retries.max(2),
    ));
    // Another controller of this OLT (the active one; this is its standby) holds the OLT's
    // address: register without reading.
    let in_use = |e: &anyhow::Error| {
        e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
        })
    };
    let (read, found) = match found {
        Ok(f) => (true, f),
        Err(e) if in_use(&e) => (false, BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let reg = Register {
        controller: cfg.controller.clone(),
        olt: cfg.olt.clone(),
        region: cfg.region.clone(),
        host: hostname(),
        read,
        pons: found
            .into_iter()
            .map(|(p, onus)| PonInventory { pon: p.0, onus })
            .collect(),
    };
    loop {
        match client.post::<_, Registered>("/api/controllers/register", &reg) {
            Ok(t) => return Ok(Some(t)),
            Err(ClientError::Unreachable { .. }) if !stop.stopped() => {
                tracing::warn!("the fleet at {} does not answer yet", client.base());
                stop.sleep(Duration::from_secs(1));
            }
            Err(ClientError::Unreachable { .. }) => return Ok(None),
            Err(e) => bail!("registering: {e}"),
        }
    }
}

/// This host's name, as it names itself.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Sends an event; the fleet not answering loses it (telemetry, not state).
fn event(client: &FleetClient, cfg: &WorkerConfig, pon: Option<u8>, kind: &str, detail: &str) {
    let e = Event {
        olt: cfg.olt.clone(),
        pon,
        kind: kind.to_string(),
        detail: detail.to_string(),
    };
    if let Err(e) = client.post::<_, serde_json::Value>("/api/events", &e) {
        tracing::warn!("event {kind}: {e}");
    }
}

/// The image of `work`, from the cache or the fleet, checked against its SHA-256.
fn image(client: &FleetClient, cfg: &WorkerConfig, work: &Work) -> Result<UpgradeImage> {
    let image = fetch(client, cfg, &work.package)?;
    if image.is_delta() {
        bail!(
            "package {} is a delta package: a campaign rolls out a full image",
            work.package.id
        );
    }
    Ok(image)
}

/// The package `p`, from the cache or the fleet, checked against its SHA-256.
fn fetch(client: &FleetClient, cfg: &WorkerConfig, p: &PackageRef) -> Result<UpgradeImage> {
    let want = &p.sha256;
    let path = cfg.cache_dir.join(format!("{want}.img"));
    let bytes = match std::fs::read(&path) {
        Ok(b) if hex::encode(sha2::Sha256::digest(&b)) == *want => b,
        _ => {
            let b = client
                .get_bytes(&format!("/api/packages/{}/image", p.id))
                .with_context(|| format!("fetching package {}", p.id))?;
            let got = hex::encode(sha2::Sha256::digest(&b));
            if got != *want {
                bail!(
                    "package {}: the image fetched has SHA-256 {got}, the work says {want}",
                    p.id
                );
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &b)?;
            std::fs::rename(&tmp, &path)?;
            b
        }
    };
    UpgradeImage::new(bytes).map_err(|e| anyhow::anyhow!("package {}: {e}", p.id))
}

/// The work's delta packages that rebuild exactly `image`, one per base (the first the store
/// listed, its newest); each one left out is said in an event (`delta-refused`), and the
/// campaign goes on without it: those ONUs get the full image.
fn deltas(
    client: &FleetClient,
    cfg: &WorkerConfig,
    work: &Work,
    image: &UpgradeImage,
) -> Vec<UpgradeImage> {
    let mut out: Vec<UpgradeImage> = Vec::new();
    for d in &work.deltas {
        let refused = |why: String| {
            event(
                client,
                cfg,
                Some(work.pon),
                "delta-refused",
                &format!(
                    "package {}: {why}; its ONUs get the full image",
                    d.package.id
                ),
            );
        };
        let pkg = match fetch(client, cfg, &d.package) {
            Ok(p) => p,
            Err(e) => {
                refused(format!("{e:#}"));
                continue;
            }
        };
        let Some(h) = pkg.delta.as_ref() else {
            refused("a full image, not a delta package".into());
            continue;
        };
        if h.target_sha256 != image.sha256 {
            refused(format!(
                "it rebuilds another build of {} {} (its target's SHA-256 is not package {}'s)",
                h.target.model, h.target.version, work.package.id
            ));
            continue;
        }
        if h.base_version != d.base_version {
            refused(format!(
                "it applies over {}, the store says {}",
                h.base_version, d.base_version
            ));
            continue;
        }
        if out.iter().any(|o| {
            o.delta
                .as_ref()
                .is_some_and(|o| o.base_version == h.base_version)
        }) {
            refused(format!(
                "a newer delta from {} is used instead",
                h.base_version
            ));
            continue;
        }
        out.push(pkg);
    }
    out
}

/// The journal a work's recorded results make, for [`Campaign::resume`]; None when nothing
/// was recorded yet (a fresh start, with its survey).
pub fn journal_of(work: &Work, image: &UpgradeImage) -> Option<Journal> {
    let fresh = work
        .results
        .iter()
        .all(|r| r.result == OnuResult::Pending && r.from_version.is_none());
    if fresh {
        return None;
    }
    Some(Journal {
        format: Journal::FORMAT,
        image_sha256: hex::encode(image.sha256),
        image_version: image.header.version.clone(),
        stage: JournalStage::Wave,
        wave: 0,
        halt_reason: None,
        waves: vec![work.onus.clone()],
        onus: work
            .results
            .iter()
            .map(|r| {
                (
                    r.onu_id,
                    JournalOnu {
                        result: r.result,
                        reason: r.reason.clone(),
                        wave: Some(0),
                        serial: None,
                        from_version: r.from_version.clone(),
                        committed_version: r.committed_version.clone(),
                        active_version: r.active_version.clone(),
                    },
                )
            })
            .collect(),
    })
}

/// Each ONU's record in `c` as the fleet takes it.
pub fn reports(c: &Campaign) -> Vec<OnuReport> {
    c.records()
        .iter()
        .map(|(id, r)| {
            let (result, why) = if c.finished() {
                OnuResult::at_end(r, c.stage())
            } else {
                (
                    OnuResult::of(r.outcome.as_ref()),
                    reason(r.outcome.as_ref()),
                )
            };
            OnuReport {
                onu_id: id.0,
                result,
                reason: why,
                model: r.model.clone(),
                from_version: r.from_version.clone(),
                committed_version: r.committed_version.clone(),
                active_version: r.active_version.clone(),
                package: r.package.as_ref().map(|p| {
                    if r.fell_back {
                        format!("{} (delta refused)", p.words())
                    } else {
                        p.words()
                    }
                }),
            }
        })
        .collect()
}

/// Runs the works leased (one per port) together, until each port's campaign ends or its lease
/// is lost; gives back each lease held at the end.
fn run_works(
    runtime: &tokio::runtime::Runtime,
    client: &FleetClient,
    cfg: &WorkerConfig,
    timing: &Registered,
    works: Vec<Work>,
    stop: &link::Stop,
) -> Result<()> {
    let now = Instant::now();
    let mut campaigns = Campaigns::new();
    let mut pons = BTreeMap::new();
    let mut held: BTreeMap<PonPort, i64> = BTreeMap::new();
    for w in &works {
        let pon = PonPort(w.pon);
        let Some(target) = cfg.pons.get(&pon) else {
            // A port this controller does not drive: give it back for another.
            give_back(client, cfg, w.id, false, Vec::new());
            continue;
        };
        let image = match image(client, cfg, w) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("olt worker: {e:#}");
                give_back(client, cfg, w.id, false, Vec::new());
                event(client, cfg, Some(w.pon), "image-refused", &format!("{e:#}"));
                continue;
            }
        };
        let setup = Setup {
            // A work to wind down downloads nothing: its deltas are not fetched.
            deltas: if w.halt.is_some() {
                Vec::new()
            } else {
                deltas(client, cfg, w, &image)
            },
            image_sha256: hex::encode(image.sha256),
            image: image.clone(),
            mode: w.plan.mode,
            session: cfg.session.clone(),
            multicast: MulticastConfig::default(),
            plan: CampaignPlan {
                model: Some(w.package.model.clone()),
                canary_percent: 0,
                kill_threshold: w.plan.kill_threshold,
                gate: true,
                health_settle: Duration::from_millis(w.plan.health_settle_ms),
                pace: w.plan.pace,
                serials: None,
                // A fleet PON whose ONUs are all on bases with a delta gets the deltas; one
                // that needs the full image anyway gets it in one download.
                delta_policy: crate::campaign::DeltaPolicy::WhenSaving,
            },
        };
        let ids: Vec<OnuId> = w.onus.iter().map(|id| OnuId(*id)).collect();
        let onus: BTreeMap<OnuId, SocketAddrV4> = target
            .onus
            .iter()
            .filter(|(id, _)| w.onus.contains(&id.0))
            .map(|(id, a)| (*id, *a))
            .collect();
        let mut c = match journal_of(w, &image) {
            Some(j) => {
                let done = j
                    .onus
                    .values()
                    .filter(|o| o.result != OnuResult::Pending)
                    .count();
                event(
                    client,
                    cfg,
                    Some(w.pon),
                    "pon-resumed",
                    &format!(
                        "wave {}: {} resumes from the store ({done} of {} ONUs recorded)",
                        w.wave + 1,
                        cfg.controller,
                        ids.len()
                    ),
                );
                Campaign::resume(&j, &setup, &ids, false, now)
            }
            None => Campaign::new(&setup, &ids, now),
        };
        if let Some(why) = &w.halt {
            c.abort(now, why);
        }
        eprintln!(
            "olt worker: wave {} of campaign {}: PON {} ({} {}){}",
            w.wave + 1,
            w.campaign,
            w.pon,
            ids.len(),
            if ids.len() == 1 { "ONU" } else { "ONUs" },
            if w.halt.is_some() {
                ", winding down"
            } else {
                ""
            }
        );
        campaigns.insert(pon, c);
        pons.insert(
            pon,
            PonTarget {
                group: target.group,
                onus,
                // A fleet controller speaks the lab's framing (multicast needs it).
                framing: pon::transport::Framing::Lab,
            },
        );
        held.insert(pon, w.id);
    }
    if campaigns.is_empty() {
        return Ok(());
    }
    let dcfg = DriverConfig {
        listen: cfg.listen,
        pons,
        pcap: None,
        progress: false,
        journal: None,
    };
    let mut link = link::FleetLink::start(
        client.clone(),
        cfg.controller.clone(),
        cfg.olt.clone(),
        held.clone(),
        timing,
        stop.clone(),
    );
    let result = runtime.block_on(driver::run_linked(
        campaigns,
        &dcfg,
        || Box::pin(std::future::pending()),
        Some(&mut link),
    ));
    let ended = link.finish();
    let campaigns = result?;
    for (pon, work) in held {
        if ended.lost.contains(&pon) {
            event(
                client,
                cfg,
                Some(pon.0),
                "lease-lost",
                &format!(
                    "{} stopped touching PON {} (lease lost)",
                    cfg.controller, pon.0
                ),
            );
            continue;
        }
        let Some(c) = campaigns.get(&pon) else {
            // Dropped by the operator's stop: given back as it stands, for another to carry on.
            let last = ended.last.get(&pon).cloned().unwrap_or_default();
            give_back(client, cfg, work, false, last);
            continue;
        };
        let finished = c.finished();
        if let Stage::Halted(why) = c.stage() {
            event(client, cfg, Some(pon.0), "pon-halted", why);
        }
        if finished && let Some(words) = packages_words(c) {
            event(client, cfg, Some(pon.0), "pon-packages", &words);
        }
        give_back(client, cfg, work, finished, reports(c));
    }
    Ok(())
}

/// What a finished campaign with delta packages sent, in one line: how many ONUs got each
/// package, and the bytes against what the campaign would have sent without deltas. None
/// without deltas.
fn packages_words(c: &Campaign) -> Option<String> {
    if c.deltas().is_empty() {
        return None;
    }
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for r in c.records().values() {
        if let Some(p) = &r.package {
            *by.entry(p.words()).or_default() += 1;
        }
    }
    let fell_back = c.records().values().filter(|r| r.fell_back).count();
    let onus = |n: usize| if n == 1 { "ONU" } else { "ONUs" };
    let mut parts: Vec<String> = by
        .iter()
        .map(|(p, n)| format!("{p} to {n} {}", onus(*n)))
        .collect();
    if fell_back > 0 {
        parts.push(format!(
            "{fell_back} {} refused the delta and got the full image",
            onus(fell_back)
        ));
    }
    let b = c.package_bytes();
    Some(format!(
        "packages: {}; {} bytes sent, {} without deltas ({:.0} %)",
        if parts.is_empty() {
            "none sent".to_string()
        } else {
            parts.join(", ")
        },
        b.sent,
        b.full_image_cost,
        100.0 * b.sent as f64 / b.full_image_cost.max(1) as f64
    ))
}

/// Gives a lease back (asking again a while if the fleet does not answer).
fn give_back(
    client: &FleetClient,
    cfg: &WorkerConfig,
    work: i64,
    finished: bool,
    onus: Vec<OnuReport>,
) {
    let r = Release {
        controller: cfg.controller.clone(),
        finished,
        onus,
    };
    let path = format!("/api/work/{work}/release");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.post::<_, ResultsAnswer>(&path, &r) {
            Ok(a) => {
                if !a.accepted {
                    tracing::warn!(work, "the release was refused: the lease was lost");
                }
                return;
            }
            Err(ClientError::Unreachable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                tracing::warn!(work, "releasing: {e}");
                return;
            }
        }
    }
}
