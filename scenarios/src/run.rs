//! Runs a scenario with real processes: ONU processes on loopback, the OLT, the faults, then
//! every ONU's flash read back and the expectations checked.
//!
//! The runner is the ONUs' power supply: it starts each ONU process, starts it again when it
//! dies (a power cut at a named point aborts the process; a SIGKILL fault kills it), and stops
//! them all at the end. It reads every ONU's JSON log to see its protocol events, which is how
//! a fault is triggered "at window 3 of ONU 5". Everything it starts is killed and everything it
//! writes is removed when it returns, on success, failure or Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use ed25519_dalek::SigningKey;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::{GemPort, WindowNo};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use onu::core::OnuEvent;

use crate::spec::{FaultKind, Mode, OnuSet, ResultExpect, Scenario, Trigger, kind_name};

/// How to run a scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run with this many ONUs instead of the file's (sets are cut to the ONUs that exist;
    /// count expectations are then not checked).
    pub onus: Option<u16>,
    /// Write the scenario report (the OLT's report, the flash of every ONU, the checks) here.
    pub report: Option<PathBuf>,
    /// Write every OMCI frame the OLT sent and received here.
    pub pcap: Option<PathBuf>,
    /// Write a Mermaid sequence diagram of the upgrade here.
    pub mermaid: Option<PathBuf>,
    /// Narrate the upgrade of one ONU for a learner.
    pub explain: bool,
    /// Keep the working directory (keys, images, flash, logs) here instead of removing it.
    pub keep: Option<PathBuf>,
    /// First port to try (the ONUs, then the OLT, take consecutive ports).
    pub port: Option<u16>,
    /// The multicast download group (default: one derived from the ports).
    pub group: Option<SocketAddrV4>,
    /// Print progress lines.
    pub progress: bool,
    /// The ONU that `explain` narrates and the diagram shows (default: ONU 1, and the first
    /// three in the diagram).
    pub follow: Option<u16>,
    /// Measure the processes (CPU seconds, peak RSS, from /proc) for the benchmark.
    pub measure: bool,
}

/// How a scenario went.
#[derive(Debug)]
pub struct RunOutcome {
    /// Every expectation held.
    pub passed: bool,
    /// The expectations that did not hold, each with why.
    pub failures: Vec<String>,
    /// The human summary.
    pub summary: String,
    /// The scenario report.
    pub report: Value,
}

/// What one ONU is at the start.
#[derive(Clone, Debug)]
struct OnuPlan {
    id: u16,
    model: String,
    version: String,
    busy_ms: u64,
    voice_call: bool,
    max_window: Option<u16>,
    link: Option<crate::spec::LinkSpec>,
    power_loss: Option<String>,
}

/// A fault waiting for its moment.
#[derive(Clone, Debug)]
struct Pending {
    index: usize,
    kind: FaultKind,
    targets: BTreeSet<u16>,
    at: Option<Duration>,
    on: Option<Trigger>,
    duration: Duration,
    forged: u32,
    corrupt: u32,
    done: BTreeSet<u16>,
    fired: bool,
}

/// A running ONU process.
struct OnuProc {
    child: Option<Child>,
    /// When it died and is to be started again.
    restart_at: Option<Instant>,
    /// Stopped (SIGSTOP) until then.
    resume_at: Option<Instant>,
    boots: u32,
    lives: u32,
}

/// A line of some process's log.
struct LogLine {
    onu: u16,
    line: String,
}

/// The deterministic choice of `share` of `ids` (the scenario's seed and the fault's index).
fn choose(ids: &[u16], share: f64, seed: u64) -> BTreeSet<u16> {
    let want = ((ids.len() as f64) * share).round() as usize;
    let mut order: Vec<(u64, u16)> = ids
        .iter()
        .map(|id| {
            let mut x = seed ^ (u64::from(*id).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 33;
            (x, *id)
        })
        .collect();
    order.sort();
    order.into_iter().take(want).map(|(_, id)| id).collect()
}

/// The lab's signing key for a seed, and a foreign one.
fn keys(seed: u64) -> (SigningKey, SigningKey) {
    let k = |tag: &str| {
        let d = Sha256::digest(format!("{tag}/{seed}").as_bytes());
        SigningKey::from_bytes(&d.into())
    };
    (k("omci-lab signing key"), k("a stranger's key"))
}

/// `n` consecutive free UDP ports on loopback from about `from`.
fn free_ports(from: u16, n: u16) -> Result<u16> {
    (0..400u16)
        .map(|i| from.wrapping_add(i.wrapping_mul(37)))
        .filter(|p| *p >= 20000 && u32::from(*p) + u32::from(n) < 65000)
        .find(|p| (0..n).all(|k| std::net::UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .context("no free range of loopback ports")
}

fn hex_sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Runs `s`. `program` runs this lab's tools: `[exe, "onu"]` and `[exe, "olt"]` are built
/// from it by appending the tool's name.
pub async fn run(s: &Scenario, opts: &RunOptions, program: &[OsString]) -> Result<RunOutcome> {
    let started = Instant::now();
    let n = opts.onus.unwrap_or(s.topology.onus.0).clamp(1, 128);
    let temp;
    let dir: PathBuf = match &opts.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix("scenario-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let say = |m: String| {
        if opts.progress {
            eprintln!("scenario: {m}");
        }
    };

    // ---- Keys and images
    let (key, foreign) = keys(s.seed);
    std::fs::write(
        dir.join("lab.pub"),
        hex::encode(key.verifying_key().to_bytes()) + "\n",
    )?;
    let plans = onu_plans(s, n);
    let mut goldens: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for p in plans.values() {
        let k = (p.model.clone(), p.version.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = goldens.entry(k) {
            let img = build_image(
                &p.model,
                &p.version,
                s.image.installed_security_version,
                16 * 1024,
                false,
                &key,
            )?;
            let path = dir.join(format!("golden-{}-{}.img", p.model, p.version));
            std::fs::write(&path, img)?;
            slot.insert(path);
        }
    }
    let model = s.image.model.clone().unwrap_or(s.topology.model.clone());
    let mut image = build_image(
        &model,
        &s.image.version,
        s.image.security_version,
        s.image.size,
        s.image.fails_to_boot,
        if s.image.foreign_key { &foreign } else { &key },
    )?;
    if s.image.tampered {
        // One payload byte, after signing: the signature no longer matches.
        let at = pon::firmware::HEADER_LEN + s.image.size / 2;
        if let Some(b) = image.get_mut(at) {
            *b ^= 0x01;
        }
    }
    let image_path = dir.join("image.img");
    std::fs::write(&image_path, &image)?;
    let sections = image.len().div_ceil(if s.olt.extended { 1965 } else { 31 }) as u64;
    let manifest_path = dir.join("image.json");
    let campaign = s.olt.campaign.clone();
    if let Some(c) = &campaign {
        let start = SystemTimeFmt::in_secs(c.start_in_s.unwrap_or(0));
        let manifest = pon::manifest::Manifest {
            device_model: model.clone(),
            version: s.image.version.clone(),
            build: 1,
            url: format!("file://{}", image_path.display()),
            checksum: format!("sha256:{}", hex_sha(&image)),
            signature: hex::encode(&image[image.len().saturating_sub(64)..]),
            kind: "full".into(),
            rollout: pon::manifest::Rollout {
                percent: s.image.rollout_percent,
                start,
            },
        };
        std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest)?)?;
    }

    // ---- Addresses
    let base = free_ports(
        opts.port.unwrap_or(41000 + (s.seed % 97) as u16 * 131),
        n + 1,
    )?;
    let olt_addr = SocketAddrV4::new(pon::transport::LOOPBACK, base + n);
    let group = opts.group.unwrap_or(SocketAddrV4::new(
        std::net::Ipv4Addr::new(239, 255, 60 + (base % 150) as u8, 1 + (base % 250) as u8),
        base + n + 1,
    ));

    // ---- Faults
    let ids: Vec<u16> = (1..=n).collect();
    let mut pending: Vec<Pending> = Vec::new();
    let mut plans = plans;
    for (i, f) in s.faults.iter().enumerate() {
        let mut targets: BTreeSet<u16> = match (&f.onus, f.share) {
            (Some(set), _) => set.resolve(n),
            (None, Some(share)) => choose(&ids, share.0, s.seed ^ (i as u64 + 1)),
            (None, None) => BTreeSet::new(),
        };
        if f.kind == FaultKind::PowerLoss {
            let point = f.point.unwrap_or(onu::faults::FaultPoint::MidSectionWrite);
            for id in &targets {
                if let Some(p) = plans.get_mut(id) {
                    p.power_loss = Some(format!("{point}@{}", f.occurrence.unwrap_or(1)));
                }
            }
            continue;
        }
        if matches!(f.kind, FaultKind::OltRestart | FaultKind::RogueSender) && f.on.is_some() {
            // The event of the first ONU named (ONU 1 by default).
            targets = targets.into_iter().take(1).collect();
            if targets.is_empty() {
                targets.insert(1);
            }
        }
        pending.push(Pending {
            index: i,
            kind: f.kind,
            targets,
            at: f.at_s.map(Duration::from_secs_f64),
            on: f.on.clone(),
            duration: Duration::from_secs_f64(f.duration_s.unwrap_or(1.0)),
            forged: f.forged,
            corrupt: f.corrupt,
            done: BTreeSet::new(),
            fired: false,
        });
    }

    // ---- ONU processes
    let tool = |name: &str| -> (OsString, Vec<OsString>) {
        let mut v = program.to_vec();
        v.push(name.into());
        let first = v.remove(0);
        (first, v)
    };
    let (onu_exe, onu_prefix) = tool("onu");
    let (olt_exe, olt_prefix) = tool("olt");
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<LogLine>();
    // The ONUs log one line per window at debug level: asked for only when a fault waits for
    // a window (a thousand lines per ONU and megabyte cost the ONUs and this runner CPU).
    let onu_log = if pending
        .iter()
        .any(|f| matches!(f.on, Some(Trigger::Window(_))))
    {
        "info,onu::driver=debug"
    } else {
        "info"
    };
    let onu_args = |p: &OnuPlan, first_life: bool| -> Vec<String> {
        let mut a = vec![
            "run".to_string(),
            format!("--onu-id={}", p.id),
            format!("--model={}", p.model),
            format!("--listen=127.0.0.1:{}", base + p.id - 1),
            format!("--olt={olt_addr}"),
            format!("--group={group}"),
            format!(
                "--state-dir={}",
                dir.join(format!("onu-{}", p.id)).display()
            ),
            format!("--public-key={}", dir.join("lab.pub").display()),
            format!(
                "--golden={}",
                goldens[&(p.model.clone(), p.version.clone())].display()
            ),
            format!("--busy-ms={}", p.busy_ms),
            format!("--reboot-ms={}", s.topology.reboot_ms),
            format!("--seed={}", s.seed.wrapping_add(u64::from(p.id))),
            "--supervise".into(),
            "--log-format=json".into(),
        ];
        if p.voice_call {
            a.push("--voice-call".into());
        }
        if let Some(w) = p.max_window {
            a.push(format!("--max-window={w}"));
        }
        if let Some(l) = &p.link {
            a.push(format!("--drop={}", l.drop.0));
            a.push(format!("--duplicate={}", l.duplicate.0));
            a.push(format!("--reorder={}", l.reorder.0));
            a.push(format!("--corrupt={}", l.corrupt.0));
            a.push(format!("--drop-upstream={}", l.drop_upstream.0));
            if let Some(on) = l.on.to_possible_value() {
                a.push(format!("--faults-on={}", on.get_name()));
            }
        }
        if first_life && let Some(f) = &p.power_loss {
            a.push(format!("--fault={f}"));
        }
        a
    };
    let spawn_onu = |p: &OnuPlan, first_life: bool| -> Result<Child> {
        let mut c = Command::new(&onu_exe);
        c.args(&onu_prefix)
            .args(onu_args(p, first_life))
            .env("RUST_LOG", onu_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c.spawn().context("starting an ONU process")?;
        if let Some(err) = child.stderr.take() {
            let tx = log_tx.clone();
            let id = p.id;
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if tx.send(LogLine { onu: id, line }).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(child)
    };
    say(format!(
        "{}: starting {n} ONU processes on 127.0.0.1:{base}..{} (group {group}); working directory {}",
        s.name,
        base + n - 1,
        dir.display()
    ));
    let mut procs: BTreeMap<u16, OnuProc> = BTreeMap::new();
    for p in plans.values() {
        procs.insert(
            p.id,
            OnuProc {
                child: Some(spawn_onu(p, true)?),
                restart_at: None,
                resume_at: None,
                boots: 0,
                lives: 1,
            },
        );
    }
    // Wait until every ONU has booted (its first "booted" line), at most 30 s.
    let boot_deadline = Instant::now() + Duration::from_secs(30);
    let mut booted = BTreeSet::new();
    while booted.len() < usize::from(n) {
        let left = boot_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("{} of {n} ONU processes booted within 30 s", booted.len());
        }
        match tokio::time::timeout(left, log_rx.recv()).await {
            Ok(Some(l)) => {
                if matches!(event_of(&l.line), Some(OnuEvent::Booted { .. })) {
                    booted.insert(l.onu);
                    if let Some(p) = procs.get_mut(&l.onu) {
                        p.boots += 1;
                    }
                }
            }
            _ => bail!("the ONU processes stopped logging before they all booted"),
        }
    }

    // ---- The OLT
    let journal = dir.join("journal.json");
    let mut olt_args: Vec<String> = vec![
        "rollout".into(),
        format!("--image={}", image_path.display()),
        format!("--onus=1-{n}@127.0.0.1:{base}"),
        format!("--listen={olt_addr}"),
        format!("--group={group}"),
        format!(
            "--mode={}",
            match s.olt.mode {
                Mode::Multicast => "multicast",
                Mode::Unicast => "unicast",
            }
        ),
        format!("--window={}", s.olt.window),
        format!("--timeout-ms={}", s.olt.timeout_ms),
        format!("--retries={}", s.olt.retries),
        "--reboot-timeout-s=30".into(),
        format!("--journal={}", journal.display()),
        format!("--report={}", dir.join("olt-report.json").display()),
    ];
    if s.olt.strict {
        olt_args.push("--strict".into());
    }
    if s.olt.extended {
        olt_args.push("--extended".into());
    }
    olt_args.push(format!("--activate-flags={}", s.olt.activate_flags));
    olt_args.push(format!(
        "--activate-defer-s={}",
        s.olt.activate_defer_s.max(1)
    ));
    if let Some(c) = &campaign {
        olt_args.push(format!("--manifest={}", manifest_path.display()));
        if let Some(p) = c.canary {
            olt_args.push(format!("--canary={p}"));
        }
        olt_args.push(format!("--kill-threshold={}", c.kill_threshold));
        olt_args.push(format!("--health-settle-ms={}", c.health_settle_ms));
        if let Some(p) = c.pace {
            olt_args.push(format!("--pace={p}"));
        }
        if c.start_in_s.is_none() {
            olt_args.push("--start-at=now".into());
        }
    }
    let mut olt_lives = 0u32;
    let mut pcaps: Vec<PathBuf> = Vec::new();
    let mut spawn_olt = |pcaps: &mut Vec<PathBuf>| -> Result<Child> {
        olt_lives += 1;
        let pcap = dir.join(format!("olt-{olt_lives}.pcap"));
        pcaps.push(pcap.clone());
        let mut c = Command::new(&olt_exe);
        c.args(&olt_prefix)
            .args(&olt_args)
            .arg(format!("--pcap={}", pcap.display()))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(
                dir.join(format!("olt-{olt_lives}.out")),
            )?)
            .stderr(std::fs::File::create(
                dir.join(format!("olt-{olt_lives}.err")),
            )?)
            .kill_on_drop(true);
        c.spawn().context("starting the OLT process")
    };
    say(format!("{}: the OLT starts the rollout", s.name));
    let olt_start = Instant::now();
    let mut olt = spawn_olt(&mut pcaps)?;
    let limit = Duration::from_secs(s.time_limit_s.max(10));
    let mut notes: Vec<String> = Vec::new();
    let mut last_progress = Instant::now();
    let mut events_seen = 0u64;
    let mut olt_usage: Option<Usage> = None;
    const TICK: Duration = Duration::from_millis(20);
    let mut next_tick = Instant::now();
    let olt_status = loop {
        // Housekeeping every 20 ms (not at every log line: with 128 ONUs that is 128 reaps
        // per line).
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + TICK;
            if opts.measure
                && let Some(u) = olt.id().and_then(usage)
            {
                // The largest sample: an exited process (a zombie) reads as nothing used.
                olt_usage = Some(match olt_usage {
                    Some(o) => Usage {
                        cpu_s: o.cpu_s.max(u.cpu_s),
                        user_s: o.user_s.max(u.user_s),
                        peak_rss_kib: o.peak_rss_kib.max(u.peak_rss_kib),
                    },
                    None => u,
                });
            }
            // Faults due by time.
            let elapsed = olt_start.elapsed();
            for f in pending.iter_mut() {
                if !f.fired && f.at.is_some_and(|at| elapsed >= at) {
                    f.fired = true;
                    let targets: Vec<u16> = f.targets.iter().copied().collect();
                    apply(
                        f, &targets, &mut procs, &mut olt, &mut notes, group, olt_start,
                    )
                    .await?;
                    if f.kind == FaultKind::OltRestart {
                        olt = spawn_olt(&mut pcaps)?;
                    }
                }
            }
            // ONU processes that died, and stopped ones due to resume.
            let now = Instant::now();
            for (id, p) in procs.iter_mut() {
                if let Some(c) = &mut p.child
                    && let Ok(Some(st)) = c.try_wait()
                {
                    p.child = None;
                    p.restart_at = Some(now + Duration::from_millis(s.topology.reboot_ms));
                    notes.push(format!(
                        "{:>6.2} s  ONU {id} process ended ({st}); the power supply starts it again",
                        olt_start.elapsed().as_secs_f64()
                    ));
                }
                if p.restart_at.is_some_and(|t| now >= t) {
                    p.restart_at = None;
                    p.lives += 1;
                    p.child = Some(spawn_onu(&plans[id], false)?);
                }
                if p.resume_at.is_some_and(|t| now >= t) {
                    p.resume_at = None;
                    if let Some(pid) = p.child.as_ref().and_then(Child::id) {
                        signal(pid, "CONT");
                    }
                }
            }
            if let Ok(Some(st)) = olt.try_wait() {
                break st;
            }
            if olt_start.elapsed() > limit {
                let _ = olt.start_kill();
                bail!(
                    "{}: the rollout did not end within time_limit_s = {} s",
                    s.name,
                    limit.as_secs()
                );
            }
            if opts.progress && last_progress.elapsed() > Duration::from_secs(5) {
                last_progress = Instant::now();
                say(format!(
                    "{:.0} s: {} ONU events so far{}",
                    olt_start.elapsed().as_secs_f64(),
                    events_seen,
                    progress_of(&dir.join(format!("olt-{}.err", pcaps.len())))
                ));
            }
        }
        // Log lines (events), or a short sleep.
        let wait = next_tick.saturating_duration_since(Instant::now());
        if let Ok(Some(l)) = tokio::time::timeout(wait, log_rx.recv()).await {
            let Some(event) = event_of(&l.line) else {
                continue;
            };
            events_seen += 1;
            if matches!(event, OnuEvent::Booted { .. })
                && let Some(p) = procs.get_mut(&l.onu)
            {
                p.boots += 1;
            }
            let boots = procs.get(&l.onu).map_or(0, |p| p.boots);
            for f in pending.iter_mut() {
                let Some(on) = &f.on else { continue };
                if f.fired || !f.targets.contains(&l.onu) || f.done.contains(&l.onu) {
                    continue;
                }
                if matches_trigger(on, &event, boots) {
                    f.done.insert(l.onu);
                    if matches!(f.kind, FaultKind::OltRestart | FaultKind::RogueSender)
                        || f.done.len() == f.targets.len()
                    {
                        f.fired = true;
                    }
                    apply(
                        f,
                        &[l.onu],
                        &mut procs,
                        &mut olt,
                        &mut notes,
                        group,
                        olt_start,
                    )
                    .await?;
                    if f.kind == FaultKind::OltRestart {
                        olt = spawn_olt(&mut pcaps)?;
                    }
                }
            }
        }
    };
    let rollout_s = olt_start.elapsed().as_secs_f64();
    say(format!(
        "{}: the OLT ended ({olt_status}) after {rollout_s:.1} s; reading every flash",
        s.name
    ));
    // ---- Measure the ONUs (still running), stop them (SIGTERM, then SIGKILL), read every flash.
    let onu_usage: Vec<Usage> = if opts.measure {
        procs
            .values()
            .filter_map(|p| p.child.as_ref().and_then(Child::id).and_then(usage))
            .collect()
    } else {
        Vec::new()
    };
    for p in procs.values_mut() {
        if let Some(pid) = p.child.as_ref().and_then(Child::id) {
            signal(pid, "CONT");
            signal(pid, "TERM");
        }
    }
    for p in procs.values_mut() {
        if let Some(c) = &mut p.child
            && tokio::time::timeout(Duration::from_secs(3), c.wait())
                .await
                .is_err()
        {
            let _ = c.kill().await;
        }
    }
    let mut flash: BTreeMap<u16, Value> = BTreeMap::new();
    for p in plans.values() {
        flash.insert(p.id, read_flash(&dir, p, &key, &goldens)?);
    }
    let olt_report: Value = std::fs::read_to_string(dir.join("olt-report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let olt_out =
        std::fs::read_to_string(dir.join(format!("olt-{olt_lives}.out"))).unwrap_or_default();

    // ---- Outputs derived from the captures.
    let frames = crate::narrate::read_frames(&pcaps).unwrap_or_default();
    if let Some(out) = &opts.pcap {
        merge_pcaps(&pcaps, out)?;
    }
    let followed = opts.follow.filter(|f| *f <= n).unwrap_or(1);
    let shown: Vec<u16> = match opts.follow {
        Some(f) if f <= n => vec![f],
        _ => (1..=n.min(3)).collect(),
    };
    if let Some(out) = &opts.mermaid {
        std::fs::write(out, crate::narrate::mermaid(&frames, &shown))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let mut explanation =
        (opts.explain || s.explain).then(|| crate::narrate::explain(&frames, followed));
    if s.diagram && opts.mermaid.is_none() {
        let d = crate::narrate::mermaid(&frames, &shown);
        explanation = Some(match explanation {
            Some(e) => format!("{e}\n{d}"),
            None => d,
        });
    }

    // ---- Expectations
    let checks = check(
        s,
        n,
        opts.onus.is_some(),
        &olt_report,
        &flash,
        &image,
        sections,
    );
    let failures: Vec<String> = checks
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, m)| m.clone())
        .collect();
    let summary = summarize(
        s,
        n,
        &olt_report,
        &flash,
        &checks,
        rollout_s,
        started.elapsed().as_secs_f64(),
        olt_lives,
        &notes,
        sections,
        explanation.as_deref(),
    );
    let report = json!({
        "scenario": s.name,
        "description": s.description,
        "onus": n,
        "passed": failures.is_empty(),
        "failures": failures,
        "checks": checks.iter().map(|(ok, m)| json!({"ok": ok, "check": m})).collect::<Vec<_>>(),
        "duration_s": started.elapsed().as_secs_f64(),
        "rollout_s": rollout_s,
        "olt_processes": olt_lives,
        "usage": json!({
            "olt_cpu_s": olt_usage.map(|u| u.cpu_s),
            "olt_user_cpu_s": olt_usage.map(|u| u.user_s),
            "olt_peak_rss_kib": olt_usage.map(|u| u.peak_rss_kib),
            "onu_cpu_s_total": (!onu_usage.is_empty()).then(|| onu_usage.iter().map(|u| u.cpu_s).sum::<f64>()),
            "onu_peak_rss_kib_max": onu_usage.iter().map(|u| u.peak_rss_kib).max(),
        }),
        "sections": sections,
        "olt_exit": olt_status.code(),
        "faults": notes,
        "olt": olt_report,
        "olt_summary": olt_out,
        "flash": flash.iter().map(|(id, f)| (id.to_string(), f.clone())).collect::<serde_json::Map<_, _>>(),
    });
    if let Some(out) = &opts.report {
        std::fs::write(out, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(RunOutcome {
        passed: failures.is_empty(),
        failures,
        summary,
        report,
    })
}

/// What a process has used so far: CPU seconds (user and system) and peak resident memory.
#[derive(Clone, Copy, Debug)]
struct Usage {
    cpu_s: f64,
    /// Of which in the process itself (the rest is the kernel's, for it).
    user_s: f64,
    peak_rss_kib: u64,
}

/// A process's usage, read from /proc (Linux); None when it is gone.
fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; clock
    // ticks of 1/100 s on Linux.
    let user: u64 = f.get(11)?.parse::<u64>().ok()?;
    let ticks: u64 = user + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(Usage {
        cpu_s: ticks as f64 / 100.0,
        user_s: user as f64 / 100.0,
        peak_rss_kib: hwm,
    })
}

/// An RFC 3339 time some seconds from now (the manifest's rollout start).
struct SystemTimeFmt;

impl SystemTimeFmt {
    fn in_secs(s: u64) -> String {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(s))
            .to_string()
    }
}

/// Each ONU's plan: the topology's defaults, then its groups in order.
fn onu_plans(s: &Scenario, n: u16) -> BTreeMap<u16, OnuPlan> {
    let t = &s.topology;
    (1..=n)
        .map(|id| {
            let mut p = OnuPlan {
                id,
                model: t.model.clone(),
                version: t.version.clone(),
                busy_ms: t.busy_ms,
                voice_call: false,
                max_window: None,
                link: None,
                power_loss: None,
            };
            for g in &t.groups {
                if g.onus.resolve(n).contains(&id) {
                    if let Some(m) = &g.model {
                        p.model = m.clone();
                    }
                    if let Some(v) = &g.version {
                        p.version = v.clone();
                    }
                    if let Some(b) = g.busy_ms {
                        p.busy_ms = b;
                    }
                    p.voice_call |= g.voice_call;
                    if g.max_window.is_some() {
                        p.max_window = g.max_window;
                    }
                    if g.link.is_some() {
                        p.link = g.link.clone();
                    }
                }
            }
            (id, p)
        })
        .collect()
}

fn build_image(
    model: &str,
    version: &str,
    security: u32,
    size: usize,
    fails: bool,
    key: &SigningKey,
) -> Result<Vec<u8>> {
    let spec = pon::firmware::BuildSpec {
        model: model.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot: fails,
    };
    let payload = pon::firmware::deterministic_payload(&format!("{model}/{version}"), size);
    pon::firmware::build(&spec, &payload, key)
        .with_context(|| format!("building the {model} {version} image"))
}

/// The event of a JSON log line of an ONU: its `event` field, the core's [`OnuEvent`] as
/// tagged JSON (lines without one are the ONU's other logs).
fn event_of(line: &str) -> Option<OnuEvent> {
    let v = serde_json::from_str::<Value>(line).ok()?;
    serde_json::from_str(v["fields"]["event"].as_str()?).ok()
}

/// Whether an ONU's event is the trigger (`boots`: the ONU's boots so far, this one counted).
fn matches_trigger(on: &Trigger, event: &OnuEvent, boots: u32) -> bool {
    match (on, event) {
        (Trigger::DownloadStarted, OnuEvent::DownloadStarted { .. })
        | (Trigger::ImageValid, OnuEvent::ImageValid { .. })
        | (Trigger::Activated, OnuEvent::Activated { .. })
        | (Trigger::Committed, OnuEvent::Committed { .. }) => true,
        (Trigger::Window(n), OnuEvent::WindowComplete { window }) => window.0 == *n,
        (Trigger::Booted, OnuEvent::Booted { .. }) => boots >= 2,
        _ => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Carries out fault `f` on `onus` (or on the OLT, or the group).
async fn apply(
    f: &Pending,
    onus: &[u16],
    procs: &mut BTreeMap<u16, OnuProc>,
    olt: &mut Child,
    notes: &mut Vec<String>,
    group: SocketAddrV4,
    olt_start: Instant,
) -> Result<()> {
    let t = olt_start.elapsed().as_secs_f64();
    match f.kind {
        FaultKind::Sigkill => {
            for id in onus {
                if let Some(p) = procs.get_mut(id)
                    && let Some(c) = &mut p.child
                {
                    let _ = c.start_kill();
                    notes.push(format!(
                        "{t:>6.2} s  fault {}: SIGKILL to ONU {id}",
                        f.index + 1
                    ));
                }
            }
        }
        FaultKind::Silent => {
            for id in onus {
                if let Some(p) = procs.get_mut(id)
                    && let Some(pid) = p.child.as_ref().and_then(Child::id)
                {
                    signal(pid, "STOP");
                    p.resume_at = Some(Instant::now() + f.duration);
                    notes.push(format!(
                        "{t:>6.2} s  fault {}: ONU {id} silent (SIGSTOP) for {:.1} s",
                        f.index + 1,
                        f.duration.as_secs_f64()
                    ));
                }
            }
        }
        FaultKind::OltRestart => {
            let _ = olt.start_kill();
            let _ = olt.wait().await;
            notes.push(format!(
                "{t:>6.2} s  fault {}: the OLT killed (SIGKILL) and started again",
                f.index + 1
            ));
        }
        FaultKind::RogueSender => {
            let sent = rogue(group, f.forged, f.corrupt, f.index as u64)?;
            notes.push(format!(
                "{t:>6.2} s  fault {}: a rogue sender put {sent} forged or corrupt Download sections on the group",
                f.index + 1
            ));
        }
        FaultKind::PowerLoss => {}
    }
    Ok(())
}

/// Sends `forged` well-formed Download sections with wrong data (and AR sections whose window
/// CRC matches the wrong data) and `corrupt` frames with a bad CRC to the multicast group, from
/// another socket than the OLT's.
fn rogue(group: SocketAddrV4, forged: u32, corrupt: u32, seed: u64) -> Result<u32> {
    use omci_codec::contents::{Contents, DownloadSectionRequest};
    use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, Tci};
    let sock =
        pon::transport::bind_multicast_sender(SocketAddrV4::new(pon::transport::LOOPBACK, 0))?;
    let codec = Codec::new(ExtendedTrailer::Crc32);
    let mut sent = 0;
    for i in 0..(forged + corrupt) {
        let window = (i / 4) % 8;
        let section = (i % 4) as u8;
        let data = vec![(seed as u8) ^ (i as u8) ^ 0xA5; 31];
        let msg = Message::new(
            Tci(0x4000 + (i as u16 % 0x3FFF)),
            Format::Baseline,
            MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(i % 2 == 0)),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: section,
                data: std::borrow::Cow::Owned(data.clone()),
            }),
        )
        .with_ar(section == 3);
        let mut frame = codec.to_vec(&msg)?;
        if i >= forged {
            let last = frame.len() - 1;
            frame[last] ^= 0xFF; // a bad CRC
        }
        let envelope = Envelope {
            onu_id: ALL_ONUS,
            gem_port: GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(WindowNo(window)),
            window_crc: (section == 3).then(|| omci_codec::crc::crc32_bzip2(&data)),
            missing: None,
        };
        sock.send_to(&envelope.wrap(&frame), group)?;
        sent += 1;
    }
    Ok(sent)
}

/// The OLT's last progress line (it writes one every 5 s when its output is not a terminal).
fn progress_of(olt_err: &Path) -> String {
    std::fs::read_to_string(olt_err)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| l.starts_with("olt: "))
                .map(|l| format!("; {}", l.trim_start_matches("olt: ")))
        })
        .unwrap_or_default()
}

/// One ONU's flash, read offline by the real bootloader code (`onu status`).
fn read_flash(
    dir: &Path,
    p: &OnuPlan,
    key: &SigningKey,
    goldens: &BTreeMap<(String, String), PathBuf>,
) -> Result<Value> {
    let mut flash = onu::flash::FileFlash::open(&dir.join(format!("onu-{}", p.id)))?;
    let golden = std::fs::read(&goldens[&(p.model.clone(), p.version.clone())])?;
    let cfg = onu::boot::BootConfig {
        model: p.model.clone(),
        public_key: key.verifying_key(),
        golden: Some(golden.into()),
        boot_attempts: 3,
    };
    let st = onu::status::status(&mut flash, &cfg)?;
    Ok(serde_json::to_value(&st)?)
}

/// The version of the slot with `flag` (committed, active) in an `onu status` record.
fn slot_version(f: &Value, flag: &str) -> Option<String> {
    f["slots"]
        .as_array()?
        .iter()
        .find(|s| s[flag] == true)
        .and_then(|s| s["version"].as_str())
        .map(str::to_string)
}

/// Every expectation, with whether it held.
fn check(
    s: &Scenario,
    n: u16,
    scaled: bool,
    olt: &Value,
    flash: &BTreeMap<u16, Value>,
    image: &[u8],
    sections: u64,
) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let e = &s.expect;
    // Never negotiable: every ONU boots.
    let bricked: Vec<u16> = flash
        .iter()
        .filter(|(_, f)| f["bootable"] != true)
        .map(|(id, _)| *id)
        .collect();
    out.push((
        bricked.is_empty(),
        format!("bricked = 0 (found {}: {:?})", bricked.len(), bricked),
    ));
    if olt.is_null() {
        out.push((false, "the OLT wrote a report".into()));
        return out;
    }
    let totals = &olt["totals"];
    if !scaled {
        for (name, want) in [
            ("upgraded", e.upgraded),
            ("failed", e.failed),
            ("skipped", e.skipped),
            ("refused", e.refused),
        ] {
            if let Some(want) = want {
                let got = totals[name].as_u64().unwrap_or(0);
                out.push((
                    got == u64::from(want),
                    format!("{name} = {want} (the OLT reports {got})"),
                ));
            }
        }
    }
    if let Some(want) = e.outcome {
        let got = olt["campaign"]["outcome"].as_str().unwrap_or("?");
        let want_s = match want {
            crate::spec::Outcome::Completed => "completed",
            crate::spec::Outcome::Halted => "halted",
        };
        out.push((
            got == want_s,
            format!(
                "outcome = {want_s} (the OLT reports {got}{})",
                olt["campaign"]["halt_reason"]
                    .as_str()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(max) = e.max_group_downloads {
        let got = totals["frames_multicast"].as_u64().unwrap_or(0) as f64 / sections as f64;
        out.push((
            got <= max,
            format!("frames on the group <= {max} downloads (sent {got:.3})"),
        ));
    }
    // Per ONU: the entries in order; ONUs no entry names must be upgraded.
    let results: BTreeMap<u16, String> = olt["onus"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["id"].as_u64().unwrap_or(0) as u16,
                        o["result"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut named: BTreeSet<u16> = BTreeSet::new();
    let mut entries = e.onus.clone();
    if !entries
        .iter()
        .any(|x| matches!(x.onus, OnuSet::Rest | OnuSet::All))
    {
        entries.push(crate::spec::OnuExpect {
            onus: OnuSet::Rest,
            result: ResultExpect::Upgraded,
            committed: Some(s.image.version.clone()),
            active: Some(s.image.version.clone()),
        });
    }
    let want_sha = hex_sha(image);
    for x in &entries {
        let ids: BTreeSet<u16> = match &x.onus {
            OnuSet::Rest => (1..=n).filter(|i| !named.contains(i)).collect(),
            other => other.resolve(n),
        };
        named.extend(ids.iter().copied());
        if ids.is_empty() {
            continue;
        }
        let label = format_set(&ids);
        let mut bad: Vec<String> = Vec::new();
        for id in &ids {
            let f = &flash[id];
            if let Some(w) = x.result.word() {
                let got = results.get(id).map_or("none", String::as_str);
                if got != w {
                    bad.push(format!("ONU {id} {got}"));
                    continue;
                }
            }
            for (flag, want) in [("committed", &x.committed), ("active", &x.active)] {
                if let Some(want) = want {
                    let got = slot_version(f, flag).unwrap_or_else(|| "none".into());
                    if &got != want {
                        bad.push(format!("ONU {id} {flag} {got}"));
                    }
                }
            }
            // An ONU that runs the new version runs exactly its bytes.
            if x.result == ResultExpect::Upgraded
                && let Some(slots) = f["slots"].as_array()
                && let Some(active) = slots.iter().find(|s| s["active"] == true)
                && active["sha256"].as_str() != Some(want_sha.as_str())
            {
                bad.push(format!("ONU {id} runs other bytes than the image"));
            }
        }
        let mut what = vec![];
        if let Some(w) = x.result.word() {
            what.push(w.to_string());
        }
        if let Some(c) = &x.committed {
            what.push(format!("committed {c}"));
        }
        if let Some(a) = &x.active {
            what.push(format!("active {a}"));
        }
        out.push((
            bad.is_empty(),
            format!(
                "ONUs {label}: {}{}",
                what.join(", "),
                if bad.is_empty() {
                    String::new()
                } else {
                    format!(" (but {})", bad.join(", "))
                }
            ),
        ));
    }
    out
}

/// `1-4,7` for a set of IDs.
pub fn format_set(ids: &BTreeSet<u16>) -> String {
    let mut parts = Vec::new();
    let mut it = ids.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap_or(b);
        }
        parts.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    parts.join(",")
}

/// The human summary.
#[allow(clippy::too_many_arguments)]
fn summarize(
    s: &Scenario,
    n: u16,
    olt: &Value,
    flash: &BTreeMap<u16, Value>,
    checks: &[(bool, String)],
    rollout_s: f64,
    total_s: f64,
    olt_lives: u32,
    notes: &[String],
    sections: u64,
    explanation: Option<&str>,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "Scenario {}: {}", s.name, s.description.trim());
    let _ = writeln!(
        o,
        "{n} ONUs, {} mode, image {} ({} sections); rollout {rollout_s:.1} s, {total_s:.1} s in all{}",
        olt["mode"].as_str().unwrap_or("?"),
        s.image.version,
        sections,
        if olt_lives > 1 {
            format!(", {olt_lives} OLT processes")
        } else {
            String::new()
        }
    );
    if !notes.is_empty() {
        let _ = writeln!(o, "\nFaults:");
        for n in notes.iter().take(40) {
            let _ = writeln!(o, "  {n}");
        }
        if notes.len() > 40 {
            let _ = writeln!(o, "  ... {} more", notes.len() - 40);
        }
    }
    // Outcomes: result x (committed, active) -> ONUs.
    let mut rows: BTreeMap<(String, String, String), BTreeSet<u16>> = BTreeMap::new();
    if let Some(a) = olt["onus"].as_array() {
        for x in a {
            let id = x["id"].as_u64().unwrap_or(0) as u16;
            let f = flash.get(&id).cloned().unwrap_or(Value::Null);
            rows.entry((
                x["result"].as_str().unwrap_or("?").to_string(),
                slot_version(&f, "committed").unwrap_or_else(|| "-".into()),
                slot_version(&f, "active").unwrap_or_else(|| "-".into()),
            ))
            .or_default()
            .insert(id);
        }
    }
    let _ = writeln!(
        o,
        "\n{:<11} {:<10} {:<10} {:>5}  ONUs",
        "result", "committed", "active", "count"
    );
    for ((r, c, a), ids) in &rows {
        let _ = writeln!(
            o,
            "{r:<11} {c:<10} {a:<10} {:>5}  {}",
            ids.len(),
            format_set(ids)
        );
    }
    // Why ONUs did not end upgraded, most common first.
    let mut why: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    if let Some(a) = olt["onus"].as_array() {
        for x in a.iter().filter(|x| x["result"] != "upgraded") {
            if let Some(r) = x["reason"].as_str().filter(|r| !r.is_empty()) {
                why.entry(r.to_string())
                    .or_default()
                    .insert(x["id"].as_u64().unwrap_or(0) as u16);
            }
        }
    }
    if !why.is_empty() {
        let mut why: Vec<_> = why.into_iter().collect();
        why.sort_by_key(|(_, ids)| std::cmp::Reverse(ids.len()));
        let _ = writeln!(o, "\nWhy:");
        for (r, ids) in why.iter().take(6) {
            let _ = writeln!(o, "  ONUs {}: {r}", format_set(ids));
        }
    }
    let t = &olt["totals"];
    let _ = writeln!(
        o,
        "\nFrames sent by the OLT: {} on the multicast group ({:.2} downloads), {} unicast",
        t["frames_multicast"].as_u64().unwrap_or(0),
        t["frames_multicast"].as_u64().unwrap_or(0) as f64 / sections as f64,
        t["frames_unicast"].as_u64().unwrap_or(0)
    );
    if let Some(r) = olt["campaign"]["halt_reason"].as_str() {
        let _ = writeln!(o, "Campaign halted: {r}");
    } else if olt["campaign"]["waves"]
        .as_array()
        .is_some_and(|w| w.len() > 1)
    {
        let _ = writeln!(
            o,
            "Campaign completed in {} waves",
            olt["campaign"]["waves"].as_array().map_or(0, Vec::len)
        );
    }
    let _ = writeln!(o, "\nExpectations:");
    for (ok, m) in checks {
        let _ = writeln!(o, "  [{}] {m}", if *ok { "ok" } else { "FAILED" });
    }
    if let Some(e) = explanation {
        let _ = writeln!(o, "\n{e}");
    }
    let failed = checks.iter().filter(|(ok, _)| !ok).count();
    let _ = writeln!(
        o,
        "\n{}",
        if failed == 0 {
            format!("PASSED: {} expectations held", checks.len())
        } else {
            format!(
                "FAILED: {failed} of {} expectations did not hold",
                checks.len()
            )
        }
    );
    let _ = kind_name;
    o
}

/// Writes the packets of `pcaps`, in order, into one capture.
fn merge_pcaps(pcaps: &[PathBuf], out: &Path) -> Result<()> {
    let file = std::fs::File::create(out).with_context(|| format!("writing {}", out.display()))?;
    let mut w = omci_codec::pcap::CaptureWriter::new(std::io::BufWriter::new(file))?;
    for p in pcaps {
        let Ok(f) = std::fs::File::open(p) else {
            continue;
        };
        let Ok(c) = omci_codec::pcap::read_capture(f) else {
            continue;
        };
        for pkt in &c.packets {
            if let Some(e) = omci_codec::pcap::parse_ethernet(&pkt.data)
                && let (Some(d), Some(peer)) = (e.direction, e.peer)
            {
                w.write(pkt.timestamp, d, peer, e.omci)?;
            }
        }
    }
    std::io::Write::flush(&mut w.into_inner())?;
    Ok(())
}
