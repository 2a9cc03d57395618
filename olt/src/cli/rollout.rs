//! `olt rollout` and `olt abort`: read and check the inputs, build the campaign, run it with
//! the driver, print the summary and write the report.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use omci_codec::OnuId;
use omci_codec::obbaa::CtermName;
use pon::transport::{Framing, TransportKind};

use super::args::{AbortArgs, RolloutArgs, StartAt, default_group, onu_map};
use super::summary::print_summary;
use super::{ctrl_c, usage};
use crate::campaign::{Campaign, CampaignPlan, Setup, Stage};
use crate::driver::{self, Campaigns, DriverConfig, PonTarget};
use crate::engine::PonPort;
use crate::engine::{Mode, MulticastConfig};
use crate::image::{ImageFileError, UpgradeImage};
use crate::journal::{JournalFile, JournalStage};
use crate::report::{AbortReport, AbortedOnu, OnuResult, Report, RunInfo, reason};
use crate::session::{Outcome, SessionConfig, Stages};

/// `olt rollout`, and the staged verbs (`olt download`, `activate`, `commit`): `stages` says
/// which stages; `until` ends an activation's maintenance window.
pub(super) fn rollout(a: RolloutArgs, stages: Stages, until: Option<String>) -> Result<ExitCode> {
    let obbaa = a.transport == TransportKind::Obbaa;
    if obbaa && a.mode == Some(Mode::Multicast) {
        return Ok(usage(
            "--mode multicast needs --transport lab: the OB-BAA framing is unicast only (the multicast download needs the lab's envelope)",
        ));
    }
    let mode = a.mode.unwrap_or(if obbaa {
        Mode::Unicast
    } else {
        Mode::Multicast
    });
    if a.strict && mode == Mode::Multicast {
        return Ok(usage(
            "--strict needs --mode unicast: the multicast download carries window numbers in the envelope",
        ));
    }
    if obbaa && !a.group.is_empty() {
        return Ok(usage(
            "--group needs --transport lab: the OB-BAA framing has no multicast group",
        ));
    }
    if !obbaa && !a.cterm.is_empty() {
        return Ok(usage("--cterm needs --transport obbaa"));
    }
    // Where the page goes is checked before anything is sent.
    if let Some(path) = &a.html
        && let Err(why) = crate::html::check_output(path)
    {
        return Ok(usage(&format!("--html {}: {why}", path.display())));
    }
    // The image is checked before anything is sent.
    let image = match open_image(&a.image)? {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    if image.is_delta() {
        return Ok(usage(&format!(
            "--image {} is a delta package: give the full image as --image and the package as --delta",
            a.image.display()
        )));
    }
    let deltas = match open_deltas(&a.deltas, &image)? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let onus = onu_map(a.onus)?;

    let mut cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        window_size: a.window,
        reboot_timeout: Duration::from_secs(a.reboot_timeout_s),
        // The OB-BAA framing has no room for the envelope's window fields: plain G.988.
        envelope_extensions: !a.strict && !obbaa,
        activate_flags: a.activate_flags,
        activate_defer: Duration::from_secs(a.activate_defer_s),
        stages,
        format: if a.extended {
            omci_codec::Format::Extended
        } else {
            omci_codec::Format::Baseline
        },
        tci_seed: tci_seed(),
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
            let text = match read_input("--manifest", path) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let m: pon::manifest::Manifest = match serde_json::from_str(&text) {
                Ok(m) => m,
                Err(e) => {
                    return Ok(usage(&format!(
                        "--manifest {} is not a release manifest ({e}): give the manifest `onu image build --manifest` wrote",
                        path.display()
                    )));
                }
            };
            if m.sha256() != Some(image.sha256) {
                return Ok(usage(&format!(
                    "--image {} does not match the checksum of --manifest {} ({}): refusing to roll it out",
                    a.image.display(),
                    path.display(),
                    m.checksum
                )));
            }
            if m.device_model != image.header.model {
                return Ok(usage(&format!(
                    "--image {} is for model {}, --manifest {} targets model {}: refusing to roll it out",
                    a.image.display(),
                    image.header.model,
                    path.display(),
                    m.device_model
                )));
            }
            Some(m)
        }
        None => None,
    };
    if let Some(key) = &a.public_key
        && let Err(why) = check_signature(&image, key)
    {
        return Ok(usage(&format!("--image {}: {why}", a.image.display())));
    }
    if let Some(key) = &a.public_key {
        for (d, path) in deltas.iter().zip(&a.deltas) {
            if let Err(why) = check_signature(d, key) {
                return Ok(usage(&format!("--delta {}: {why}", path.display())));
            }
        }
    }
    let canary = a
        .canary
        .or(manifest.as_ref().map(|m| m.rollout.percent))
        .unwrap_or(0);
    let serials = (!a.serials.is_empty()).then(|| {
        a.serials
            .iter()
            .flatten()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    });
    let campaign = manifest.is_some() || a.canary.is_some();
    let plan = if campaign {
        CampaignPlan {
            model: manifest.as_ref().map(|m| m.device_model.clone()),
            canary_percent: canary,
            kill_threshold: f64::from(a.kill_threshold) / 100.0,
            gate: true,
            health_settle: Duration::from_millis(a.health_settle_ms),
            pace: a.pace,
            serials: serials.clone(),
            delta_policy: a.delta_policy,
        }
    } else {
        CampaignPlan {
            pace: a.pace,
            serials: serials.clone(),
            delta_policy: a.delta_policy,
            ..CampaignPlan::rollout()
        }
    };
    // --start-at is read by its value parser (a bad one is a usage error); the manifest's
    // start is the manifest's, checked here.
    let start_at = match a.start_at {
        Some(StartAt::Now) => None,
        Some(StartAt::At(t)) => Some(t),
        None => manifest
            .as_ref()
            .map(|m| {
                humantime::parse_rfc3339_weak(&m.rollout.start).with_context(|| {
                    format!(
                        "the manifest's rollout start {:?} is not an RFC 3339 time (e.g. 2026-11-23T06:00:00Z)",
                        m.rollout.start
                    )
                })
            })
            .transpose()?,
    };
    if let Some(until) = until {
        let Ok(end) = humantime::parse_rfc3339_weak(&until) else {
            return Ok(usage(&format!(
                "--until {until:?} is not an RFC 3339 time (e.g. 2026-11-23T06:00:00Z)"
            )));
        };
        let from = start_at.unwrap_or_else(std::time::SystemTime::now);
        let Ok(window) = end.duration_since(from) else {
            return Ok(usage(&format!(
                "--until {until}: the maintenance window ends before it starts"
            )));
        };
        cfg.activate_defer = window;
    }
    if let Some(m) = &manifest
        && image.header.version != m.version
    {
        return Ok(usage(&format!(
            "--manifest says version {} but the image is {}",
            m.version, image.header.version
        )));
    }
    let mut groups: BTreeMap<PonPort, SocketAddrV4> = BTreeMap::new();
    for (pon, g) in &a.group {
        if groups.insert(*pon, *g).is_some() {
            return Ok(usage(&format!("--group: {pon} is given two groups")));
        }
    }
    if let Some(pon) = groups.keys().find(|p| !onus.contains_key(p)) {
        return Ok(usage(&format!("--group names {pon}, which has no --onus")));
    }
    let mut cterms: BTreeMap<PonPort, CtermName> = BTreeMap::new();
    for (pon, name) in &a.cterm {
        if cterms.insert(*pon, *name).is_some() {
            return Ok(usage(&format!("--cterm: {pon} is given two names")));
        }
    }
    if let Some(pon) = cterms.keys().find(|p| !onus.contains_key(p)) {
        return Ok(usage(&format!("--cterm names {pon}, which has no --onus")));
    }
    if obbaa && let Some(pon) = onus.keys().find(|p| !cterms.contains_key(p)) {
        return Ok(usage(&format!(
            "--transport obbaa needs --cterm [PON/]NAME for each PON port: {pon} has none"
        )));
    }
    let pons = onus
        .into_iter()
        .map(|(pon, onus)| {
            let group = groups
                .get(&pon)
                .copied()
                .unwrap_or_else(|| default_group(pon));
            let framing = match cterms.get(&pon) {
                Some(cterm) => Framing::obbaa(*cterm),
                None => Framing::Lab,
            };
            (
                pon,
                PonTarget {
                    group,
                    onus,
                    framing,
                },
            )
        })
        .collect();
    let target = Target {
        deltas,
        mode,
        listen: a.listen,
        pons,
        pcap: a.pcap,
        journal: a.journal,
        retry_failed: a.retry_failed,
        start_at,
    };
    let outputs = Outputs {
        report: a.report,
        html: a.html,
    };
    run_rollout(image, target, &cfg, &plan, &outputs)
}

/// Where a rollout writes its report and its picture.
struct Outputs {
    report: Option<PathBuf>,
    html: Option<PathBuf>,
}

/// The image of `--image`, checked before anything is sent: a regular file (a device or a pipe
/// has no length to check: `--image /dev/zero` was read until memory ran out) holding a whole
/// image of this lab under 4 GiB. `Ok(Err(code))`: a usage error, said in one line.
pub(super) fn open_image(path: &std::path::Path) -> Result<Result<UpgradeImage, ExitCode>> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(Err(usage(&format!(
            "--image {} is not a file: give an image from `onu image build`",
            path.display()
        ))));
    }
    match UpgradeImage::open(path) {
        Ok(i) => Ok(Ok(i)),
        Err(ImageFileError::Io { path, source }) => Ok(Err(usage(&format!(
            "--image {path}: {}",
            omci_codec::cli::io_words(&source)
        )))),
        Err(e) => Ok(Err(usage(&format!("--image: {e}")))),
    }
}

/// The packages of `--delta`, each checked against `image` before anything is sent: a delta
/// package whose target is exactly `image` (its SHA-256), one per base version.
fn open_deltas(
    paths: &[std::path::PathBuf],
    image: &UpgradeImage,
) -> Result<Result<Vec<UpgradeImage>, ExitCode>> {
    let mut deltas: Vec<UpgradeImage> = Vec::new();
    for path in paths {
        let shown = path.display();
        let d = match UpgradeImage::open(path) {
            Ok(d) => d,
            Err(ImageFileError::Io { path, source }) => {
                return Ok(Err(usage(&format!(
                    "--delta {path}: {}",
                    omci_codec::cli::io_words(&source)
                ))));
            }
            Err(e) => return Ok(Err(usage(&format!("--delta: {e}")))),
        };
        let Some(h) = d.delta.as_ref() else {
            return Ok(Err(usage(&format!(
                "--delta {shown} is a full image, not a delta package (`onu image delta` makes one)"
            ))));
        };
        if h.target_sha256 != image.sha256 {
            return Ok(Err(usage(&format!(
                "--delta {shown} rebuilds {} {}, not --image (its SHA-256 differs)",
                h.target.model, h.target.version
            ))));
        }
        if deltas.iter().any(|o| {
            o.delta
                .as_ref()
                .is_some_and(|o| o.base_version == h.base_version)
        }) {
            return Ok(Err(usage(&format!(
                "--delta {shown}: two packages from base {}: give one per base",
                h.base_version
            ))));
        }
        deltas.push(d);
    }
    Ok(Ok(deltas))
}

/// The text of the file a person named with `flag`; one that cannot be read is their input
/// error (`Err`: the exit code, the line said).
fn read_input(flag: &str, path: &std::path::Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        usage(&format!(
            "{flag} {}: {}",
            path.display(),
            omci_codec::cli::io_words(&e)
        ))
    })
}

/// The pre-check of `--public-key`: the image's payload matches its SHA-256 and its signature
/// verifies with the key in `key_file`. `Err`: why not, in words for the person.
fn check_signature(image: &UpgradeImage, key_file: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(key_file).map_err(|e| {
        format!(
            "--public-key {}: {}",
            key_file.display(),
            omci_codec::cli::io_words(&e)
        )
    })?;
    let key = pon::firmware::parse_public_key(&text)
        .map_err(|why| format!("--public-key {} {why}", key_file.display()))?;
    let found = image
        .inspect(Some(&key))
        .map_err(|e| format!("not a whole image of this lab: {e}"))?;
    if !found.hash_ok {
        return Err(
            "its payload does not match the SHA-256 in its header: the image is damaged, every ONU would refuse it at End"
                .into(),
        );
    }
    if found.signature_ok != Some(true) {
        return Err(format!(
            "its signature does not verify with --public-key {}: it was not signed by that key's secret key, and ONUs that trust this key would refuse it at End",
            key_file.display()
        ));
    }
    Ok(())
}

/// `olt abort`.
pub(super) fn abort(a: AbortArgs) -> Result<ExitCode> {
    let onus = onu_map(a.onus)?;
    let cfg = SessionConfig {
        timeout: Duration::from_millis(a.timeout_ms),
        retries: a.retries,
        tci_seed: tci_seed(),
        ..SessionConfig::default()
    };
    let started = Instant::now();
    let mut campaigns = Campaigns::new();
    let mut pons = BTreeMap::new();
    for (pon, onus) in onus {
        let ids: Vec<OnuId> = onus.keys().copied().collect();
        campaigns.insert(
            pon,
            Campaign::abort_only(&ids, &cfg, "aborted by the operator", started),
        );
        pons.insert(
            pon,
            PonTarget {
                group: default_group(pon),
                onus,
                framing: Framing::Lab,
            },
        );
    }
    let several = pons.len() > 1;
    let dcfg = DriverConfig {
        listen: a.listen,
        pons,
        pcap: None,
        progress: false,
        journal: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let campaigns = runtime.block_on(driver::run(campaigns, &dcfg, ctrl_c))?;
    let total: usize = campaigns.values().map(|c| c.records().len()).sum();
    println!(
        "Abort of {total} ONUs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!(
        "{:>5}  {:<8} {:<12} {:<12}  note",
        "ONU", "result", "committed", "active"
    );
    let mut ok = true;
    let mut aborted = Vec::new();
    for (pon, campaign) in &campaigns {
        for (id, r) in campaign.records() {
            ok &= matches!(r.outcome, Some(Outcome::Halted(_)));
            let name = if several {
                format!("{}/{}", pon.0, id.0)
            } else {
                id.0.to_string()
            };
            println!(
                "{name:>5}  {:<8} {:<12} {:<12}  {}",
                OnuResult::of(r.outcome.as_ref()).word(),
                r.committed_version.as_deref().unwrap_or("?"),
                r.active_version.as_deref().unwrap_or("?"),
                reason(r.outcome.as_ref())
            );
            aborted.push(AbortedOnu {
                pon: *pon,
                id: id.0,
                result: OnuResult::of(r.outcome.as_ref()),
                reason: reason(r.outcome.as_ref()),
                committed_version: r.committed_version.clone(),
                active_version: r.active_version.clone(),
            });
        }
    }
    if let Some(path) = &a.report {
        let report = AbortReport { onus: aborted };
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
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
    /// The delta packages beside the image (`--delta`).
    deltas: Vec<UpgradeImage>,
    mode: Mode,
    listen: SocketAddrV4,
    pons: BTreeMap<PonPort, PonTarget>,
    pcap: Option<PathBuf>,
    journal: Option<PathBuf>,
    /// With the journal: try the ONUs it records as failed again.
    retry_failed: bool,
    start_at: Option<std::time::SystemTime>,
}

/// Where this run's TCIs start (docs/decisions.md, Attribution): drawn at random by the
/// standard library's hasher seed, so that two runs never start at the same TCIs.
pub(super) fn tci_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Runs one rollout (or campaign) of `bytes`, prints the summary, writes the report; exit 1 if
/// any ONU failed or the campaign halted.
fn run_rollout(
    image: UpgradeImage,
    t: Target,
    cfg: &SessionConfig,
    plan: &CampaignPlan,
    outputs: &Outputs,
) -> Result<ExitCode> {
    let sha256 = hex::encode(image.sha256);
    let mode = t.mode;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let journal = match &t.journal {
        Some(path) if path.exists() => {
            let text = match read_input("--journal", path) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let j = match JournalFile::parse(&text) {
                Ok(j) => j,
                Err(e) => {
                    return Ok(usage(&format!(
                        "--journal {} is not a campaign journal ({e}): give the file an earlier `olt rollout --journal` wrote, or a new path",
                        path.display()
                    )));
                }
            };
            if let Some((_, other)) = j
                .journals()
                .into_iter()
                .find(|(_, j)| j.image_sha256 != sha256)
            {
                return Ok(usage(&format!(
                    "--journal {} records a campaign of another image (version {}); remove it to start a new one",
                    path.display(),
                    other.image_version
                )));
            }
            if let Some((pon, _)) = j
                .journals()
                .into_iter()
                .find(|(p, _)| !t.pons.contains_key(p))
            {
                return Ok(usage(&format!(
                    "--journal {} records a campaign on {pon}, which has no --onus",
                    path.display()
                )));
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
        deltas: t.deltas.clone(),
        image: image.clone(),
        image_sha256: sha256.clone(),
        mode,
        session: cfg.clone(),
        multicast: MulticastConfig::default(),
        plan: plan.clone(),
    };
    let several = t.pons.len() > 1;
    let mut campaigns = Campaigns::new();
    for (pon, target) in &t.pons {
        let ids: Vec<OnuId> = target.onus.keys().copied().collect();
        let at = if several {
            format!(" ({pon})")
        } else {
            String::new()
        };
        let campaign = match journal.as_ref().and_then(|j| j.pon(*pon)) {
            Some(j) => {
                println!(
                    "Resuming the campaign journaled in {}{at} (stage {}, wave {})",
                    t.journal
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    j.stage.word(),
                    j.wave + 1
                );
                if t.retry_failed && matches!(j.stage, JournalStage::Halted | JournalStage::Halting)
                {
                    println!(
                        "The campaign{at} halted ({}): its failed ONUs are not tried again; start a new campaign to override the kill switch.",
                        j.halt_reason.as_deref().unwrap_or("no reason recorded")
                    );
                }
                Campaign::resume(j, &setup, &ids, t.retry_failed, started)
            }
            None => Campaign::new(&setup, &ids, started),
        };
        campaigns.insert(*pon, campaign);
    }
    let dcfg = DriverConfig {
        listen: t.listen,
        pons: t.pons,
        pcap: t.pcap,
        progress: true,
        journal: t.journal.clone(),
    };
    let started_at = std::time::SystemTime::now() - started.elapsed();
    let campaigns = runtime.block_on(driver::run(campaigns, &dcfg, ctrl_c))?;
    let elapsed = started.elapsed();
    print_summary(&campaigns, &image, mode, elapsed);
    let info = RunInfo {
        started_at: Some(started_at),
        listen: dcfg.listen.to_string(),
        groups: dcfg
            .pons
            .iter()
            .map(|(p, t)| (*p, t.group.to_string()))
            .collect(),
        tci_seed: cfg.tci_seed,
    };
    let report = Report::new(&campaigns, &image, &sha256, mode, elapsed, &info);
    if let Some(path) = &outputs.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &outputs.html {
        let page = crate::html::render(&crate::html::Page::of_report(&report));
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let failed = campaigns
        .values()
        .flat_map(|c| c.records().values())
        .any(|r| {
            !matches!(
                r.outcome,
                Some(
                    Outcome::Upgraded
                        | Outcome::Skipped(_)
                        | Outcome::Refused(_)
                        | Outcome::Downloaded(_)
                        | Outcome::Activated(_)
                )
            )
        });
    let completed = campaigns
        .values()
        .all(|c| matches!(c.stage(), Stage::Completed));
    Ok(if failed || !completed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
