//! The benchmark (`scenario bench`): the machine's own loopback multicast limit, then rollouts
//! at several ONU counts in both modes, side by side in one run, with a JSON file of the
//! figures, a Markdown table and an SVG plot.
//!
//! The raw limit: one sender blasts datagrams at a multicast group on loopback for a few
//! seconds; R receiver processes (`scenario bench-receive`) only count them. Deliveries per
//! second = datagrams received by all receivers / seconds.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;

use crate::run::{RunOptions, RunOutcome, run};
use crate::spec::parse;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// ONU counts of the rollouts, on each PON port.
    pub onus: Vec<u16>,
    /// PON ports of the one OLT of every rollout (1..=16), each with the ONU count.
    pub pons: u8,
    /// Receiver counts of the raw blaster.
    pub receivers: Vec<u16>,
    /// Datagram sizes of the raw blaster.
    pub datagram_sizes: Vec<usize>,
    /// Seconds each raw blast lasts.
    pub blast_s: f64,
    /// Baseline rollouts: image payload bytes.
    pub baseline_size: usize,
    /// Extended rollouts: image payload bytes (0: none).
    pub extended_size: usize,
    /// ONU counts of the extended rollouts.
    pub extended_onus: Vec<u16>,
    /// Sections per window of the baseline rollouts.
    pub window: u16,
    /// Sections per window of the extended rollouts.
    pub extended_window: u16,
    /// Modes.
    pub modes: Vec<&'static str>,
    /// The PON projection ([`crate::project`]): ONUs (0: none).
    pub pon_onus: u16,
    /// The PON projection: image payload bytes.
    pub pon_size: usize,
}

/// A receiver process: counts datagrams on `group` until `idle` passes without one (after
/// the first), or `limit`; prints the count. `batched`: every datagram waiting in one system
/// call (`recvmmsg`, as the ONU reads), else one `recvfrom` each.
///
/// `unicast`: no group; the receiver binds its own loopback port and says which ("ready
/// PORT"), as an ONU's own socket.
pub async fn receive(
    group: SocketAddrV4,
    idle: Duration,
    limit: Duration,
    batched: bool,
    unicast: bool,
) -> Result<u64> {
    let sock = if unicast {
        pon::transport::bind_unicast(SocketAddrV4::new(pon::transport::LOOPBACK, 0))?
    } else {
        pon::transport::bind_multicast_receiver(group)?
    };
    let sock = tokio::net::UdpSocket::from_std(sock)?;
    let port = sock.local_addr()?.port();
    let mut buf = vec![0u8; 65536];
    let mut inbox = pon::transport::RecvBatch::new();
    let mut n = 0u64;
    let start = Instant::now();
    println!("ready {port}");
    loop {
        let wait = if n == 0 { limit } else { idle };
        if batched {
            match tokio::time::timeout(wait, sock.readable()).await {
                Ok(Ok(())) => {
                    match sock.try_io(tokio::io::Interest::READABLE, || inbox.recv(&sock)) {
                        Ok(k) => n += k as u64,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => break,
                    }
                }
                _ => break,
            }
        } else {
            match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
                Ok(Ok(_)) => n += 1,
                _ => break,
            }
        }
        if start.elapsed() > limit {
            break;
        }
    }
    Ok(n)
}

/// Datagrams of one run of the raw blast: the most one segmented send carries (what the OLT
/// sends of a window of 64 sections or more in one system call).
const RUN: usize = 64;

/// One raw blast: `receivers` processes, datagrams of `size` bytes for `secs`. `batched`: the
/// sender sends runs of [`RUN`] in one segmented send and the receivers read with `recvmmsg`
/// (what the OLT and the ONUs do, see `pon::transport::send_batch`); else one system call per
/// datagram on both sides. `unicast`: each run goes to one receiver's own port, receiver after
/// receiver (a unicast rollout's deliveries: every datagram sent once per ONU), not once to
/// the group.
async fn blast(
    program: &[OsString],
    receivers: u16,
    size: usize,
    secs: f64,
    group: SocketAddrV4,
    batched: bool,
    unicast: bool,
) -> Result<Value> {
    let mut children = Vec::new();
    for _ in 0..receivers {
        let mut c = Command::new(&program[0]);
        // It dies with this process, however this one ends (see `run::die_with_parent`).
        c.arg(format!(
            "{}={}",
            crate::run::PARENT_FLAG,
            std::process::id()
        ))
        .args(&program[1..])
        .args(["bench-receive", &format!("--group={group}")])
        .args(batched.then_some("--batched"))
        .args(unicast.then_some("--unicast"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        children.push(c.spawn().context("starting a receiver")?);
    }
    // Wait until every receiver has joined ("ready PORT").
    let mut ports = Vec::new();
    for ch in &mut children {
        let out = ch.stdout.take().context("receiver stdout")?;
        let mut out = tokio::io::BufReader::new(out);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), out.read_line(&mut line))
            .await
            .context("a receiver did not start")??;
        let port: u16 = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .context("a receiver said no port")?;
        ports.push(SocketAddrV4::new(pon::transport::LOOPBACK, port));
        ch.stdout = Some(out.into_inner());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sender =
        pon::transport::bind_multicast_sender(SocketAddrV4::new(pon::transport::LOOPBACK, 0))?;
    sender.set_nonblocking(false)?;
    let payload = vec![0x5Au8; size];
    let start = Instant::now();
    let mut sent = 0u64;
    let until = Duration::from_secs_f64(secs);
    // Where each run goes: the group, or the receivers in turn.
    let targets = if unicast { ports } else { vec![group] };
    let runs: Vec<Vec<(&[u8], SocketAddrV4)>> = targets
        .iter()
        .map(|t| vec![(payload.as_slice(), *t); RUN])
        .collect();
    let mut next = 0;
    while start.elapsed() < until {
        for _ in 0..2 {
            let (run, to) = (&runs[next], targets[next]);
            next = (next + 1) % targets.len();
            if batched {
                sent += pon::transport::send_batch(&sender, run).unwrap_or(0) as u64;
            } else {
                for _ in 0..RUN {
                    if sender.send_to(&payload, to).is_ok() {
                        sent += 1;
                    }
                }
            }
        }
    }
    // A unicast datagram reaches one receiver: deliveries are what the receivers counted,
    // in both modes.
    let elapsed = start.elapsed().as_secs_f64();
    let mut received = 0u64;
    for ch in children {
        let out = ch.wait_with_output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        received += text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or(0);
    }
    Ok(json!({
        "receivers": receivers,
        "datagram_bytes": size,
        "batched": batched,
        "unicast": unicast,
        "seconds": elapsed,
        "sent": sent,
        "received": received,
        "deliveries_per_s": received as f64 / elapsed,
        "sent_per_s": sent as f64 / elapsed,
    }))
}

fn rollout_toml(n: u16, pons: u8, mode: &str, size: usize, extended: bool, window: u16) -> String {
    format!(
        "name = \"bench-{mode}-{pons}x{n}{}\"\ntime_limit_s = 1800\n[topology]\nonus = {n}\npons = {pons}\nbusy_ms = 200\n\
         [image]\nversion = \"V2.0\"\nsize = {size}\nsecurity_version = 2\n\
         [olt]\nmode = \"{mode}\"\nextended = {extended}\nwindow = {}\ntimeout_ms = 500\nretries = 8\n\
         [[expect.onus]]\nonus = \"all\"\nresult = \"upgraded\"\n",
        if extended { "-ext" } else { "" },
        window
    )
}

/// The phases of a session after its download, End software download to the committed image.
const AFTER_DOWNLOAD: [&str; 7] = [
    "end",
    "busy",
    "verify",
    "activate",
    "reboot",
    "commit",
    "verify-commit",
];

/// Runs the whole plan; writes `bench.json`, `bench.md` and `bench.svg` into `out`.
pub async fn bench(plan: &BenchPlan, program: &[OsString], out: &Path) -> Result<Value> {
    std::fs::create_dir_all(out)?;
    let machine = machine();
    eprintln!("bench: {machine}");
    let mut raw = Vec::new();
    // Multicast one call per datagram, multicast batched, then unicast batched (the same
    // deliveries, each datagram sent to each receiver's own port).
    for (batched, unicast) in [(false, false), (true, false), (true, true)] {
        for &size in &plan.datagram_sizes {
            for &r in &plan.receivers {
                let group = SocketAddrV4::new(std::net::Ipv4Addr::new(239, 255, 77, 1), 47770);
                let b = blast(program, r, size, plan.blast_s, group, batched, unicast).await?;
                eprintln!(
                    "bench: raw {size} B x {r} receivers{}{}: {:.0} deliveries/s",
                    if batched { ", batched" } else { "" },
                    if unicast { ", unicast" } else { "" },
                    b["deliveries_per_s"].as_f64().unwrap_or(0.0)
                );
                raw.push(b);
            }
        }
    }
    let mut rollouts = Vec::new();
    let mut cases: Vec<(u16, &str, usize, bool)> = Vec::new();
    for &n in &plan.onus {
        for &m in &plan.modes {
            cases.push((n, m, plan.baseline_size, false));
        }
    }
    if plan.extended_size > 0 {
        for &n in &plan.extended_onus {
            for &m in &plan.modes {
                cases.push((n, m, plan.extended_size, true));
            }
        }
    }
    for (n, mode, size, extended) in cases {
        let window = if extended {
            plan.extended_window
        } else {
            plan.window
        };
        let s = parse(&rollout_toml(n, plan.pons, mode, size, extended, window))
            .map_err(|e| anyhow::anyhow!("bench scenario: {e}"))?;
        let opts = RunOptions {
            measure: true,
            ..RunOptions::default()
        };
        let t = Instant::now();
        let r = run(&s, &opts, program).await?;
        let mut row = rollout_row(
            n,
            plan.pons,
            mode,
            size,
            extended,
            &r,
            t.elapsed().as_secs_f64(),
        );
        if let Some(o) = row.as_object_mut() {
            o.insert("window".into(), json!(window));
        }
        eprintln!(
            "bench: {mode} {} ONUs {}: {:.1} s, data {:.1} s, End to committed {:.1} s, OLT CPU {} s, {} + {} frames{}",
            u32::from(n) * u32::from(plan.pons),
            if extended { "extended" } else { "baseline" },
            row["wall_s"].as_f64().unwrap_or(0.0),
            row["data_phase_s"].as_f64().unwrap_or(0.0),
            row["end_to_commit_s"].as_f64().unwrap_or(0.0),
            row["olt_cpu_s"]
                .as_f64()
                .map_or("(not measured)".to_string(), |c| format!("{c:.1}")),
            row["frames_multicast"],
            row["frames_unicast"],
            if r.passed { "" } else { " (FAILED)" }
        );
        rollouts.push(row);
    }
    // The projection onto a real PON: CPU only, every core (nothing else runs now).
    let pon = if plan.pon_onus > 0 {
        let profiles = crate::project::default_profiles();
        let model = crate::projection::PonModel::default();
        let (onus, size) = (plan.pon_onus, plan.pon_size);
        tokio::task::spawn_blocking(move || {
            crate::project::projections(&model, &profiles, onus, size, false)
        })
        .await??
    } else {
        Value::Null
    };
    let result = json!({
        "machine": machine,
        "raw": raw,
        "rollouts": rollouts,
        "pon": pon,
    });
    std::fs::write(
        out.join("bench.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    std::fs::write(out.join("bench.md"), table(&result))?;
    std::fs::write(out.join("bench.svg"), svg(&result))?;
    Ok(result)
}

/// ONUs of the delta benchmark's projection.
const DELTA_ONUS: u64 = 128;
/// Bytes of a baseline OMCI frame.
const BASELINE_FRAME: u64 = 48;
/// Data bytes of a baseline Download section.
const BASELINE_SECTION: u64 = 31;

/// The delta benchmark (`scenario bench --delta`): for an image of `size` payload bytes and
/// each share of `shares` (percent, split half changed, a quarter inserted, a quarter
/// moved), the package's size and build time, the Download section frames and bytes on the
/// PON for the full image and the package, unicast (one download per ONU) and multicast (one
/// for all), projected from the section counts at `DELTA_ONUS` (128) ONUs, the downstream
/// airtime of those bytes on a GPON (2.48832 Gb/s, a 5-byte GEM header per frame), and the
/// rebuild: `onu image apply` run as its own process (the ONU's checks, the streamed
/// rebuild and the full image's verification), its time and peak RSS as it reports them.
pub async fn delta_bench(
    program: &[OsString],
    size: usize,
    shares: &[f64],
    out: &Path,
) -> Result<Value> {
    use pon::firmware::{BuildSpec, Derivation, build, derive_payload, deterministic_payload};
    std::fs::create_dir_all(out)?;
    let dir = tempfile::tempdir()?;
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let public = dir.path().join("lab.pub");
    std::fs::write(&public, hex::encode(key.verifying_key().to_bytes()) + "\n")?;
    let spec = |version: &str| BuildSpec {
        model: "LAB-ONU-1".into(),
        version: version.into(),
        security_version: 1,
        build: 1,
        fails_to_boot: false,
    };
    let old_payload = deterministic_payload("bench base", size);
    let base = build(&spec("V1"), &old_payload, &key)?;
    let base_path = dir.path().join("base.img");
    std::fs::write(&base_path, &base)?;
    let model = crate::projection::PonModel::default();
    let airtime = |frames: u64| {
        (frames * (BASELINE_FRAME + model.gem_header as u64) * 8) as f64 / model.downstream_bps
    };
    let mut rows = Vec::new();
    for &pct in shares {
        let how = Derivation {
            changed_pct: pct / 2.0,
            inserted_pct: pct / 4.0,
            moved_pct: pct / 4.0,
            seed: format!("bench {pct}"),
        };
        let target = build(&spec("V2"), &derive_payload(&old_payload, &how), &key)?;
        let started = Instant::now();
        let package = pon::delta::build(&base, &target, &key)?;
        let build_s = started.elapsed().as_secs_f64();
        let pkg_path = dir.path().join(format!("delta-{pct}.pkg"));
        std::fs::write(&pkg_path, &package)?;
        let rebuilt = dir.path().join(format!("rebuilt-{pct}.img"));
        let output = Command::new(&program[0])
            .args(&program[1..])
            .arg("onu")
            .args(["image", "apply", "--json"])
            .arg("--base")
            .arg(&base_path)
            .arg("--delta")
            .arg(&pkg_path)
            .arg("--public-key")
            .arg(&public)
            .arg("--out")
            .arg(&rebuilt)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running onu image apply")?;
        anyhow::ensure!(
            output.status.success(),
            "onu image apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let apply: Value =
            serde_json::from_slice(&output.stdout).context("reading onu image apply --json")?;
        anyhow::ensure!(
            std::fs::read(&rebuilt)? == target,
            "the rebuilt image is not the target"
        );
        let sections = |len: usize| (len as u64).div_ceil(BASELINE_SECTION);
        let (full_s, delta_s) = (sections(target.len()), sections(package.len()));
        let frames = |s: u64, per_onu: bool| if per_onu { s * DELTA_ONUS } else { s };
        let row = json!({
            "changed_percent": pct,
            "image_bytes": target.len(),
            "package_bytes": package.len(),
            "package_share_percent": 100.0 * package.len() as f64 / target.len() as f64,
            "diff_build_s": build_s,
            "frames": {
                "full_unicast": frames(full_s, true),
                "full_multicast": frames(full_s, false),
                "delta_unicast": frames(delta_s, true),
                "delta_multicast": frames(delta_s, false),
            },
            "bytes": {
                "full_unicast": frames(full_s, true) * BASELINE_FRAME,
                "full_multicast": frames(full_s, false) * BASELINE_FRAME,
                "delta_unicast": frames(delta_s, true) * BASELINE_FRAME,
                "delta_multicast": frames(delta_s, false) * BASELINE_FRAME,
            },
            "airtime_s": {
                "full_unicast": airtime(frames(full_s, true)),
                "full_multicast": airtime(frames(full_s, false)),
                "delta_unicast": airtime(frames(delta_s, true)),
                "delta_multicast": airtime(frames(delta_s, false)),
            },
            "rebuild": apply,
        });
        println!(
            "delta {pct} %: package {} of {} bytes ({:.2} %), rebuilt in {:.3} s, peak RSS {} KiB",
            package.len(),
            target.len(),
            100.0 * package.len() as f64 / target.len() as f64,
            row["rebuild"]["rebuild_s"].as_f64().unwrap_or(f64::NAN),
            row["rebuild"]["peak_rss_kib"]
        );
        rows.push(row);
    }
    let result = json!({
        "machine": machine(),
        "payload_bytes": size,
        "onus": DELTA_ONUS,
        "frames_are": "Download section frames (baseline, 31 data bytes), projected from the package and image sizes: once for all ONUs multicast, once per ONU unicast; Start, End, Get, Activate and Commit (a few frames per ONU) not counted",
        "rows": rows,
    });
    std::fs::write(
        out.join("delta.json"),
        serde_json::to_string_pretty(&result)? + "\n",
    )?;
    std::fs::write(out.join("delta.md"), delta_table(&result))?;
    Ok(result)
}

/// The delta benchmark's Markdown table.
pub fn delta_table(result: &Value) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| changed | image | package | Download section frames full / delta (unicast, {n} ONUs) | (multicast) | bytes full / delta (unicast) | (multicast) | airtime full / delta (unicast) | (multicast) | rebuild | rebuild + verify | peak RSS |",
        n = result["onus"]
    );
    let _ = writeln!(
        t,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in result["rows"].as_array().into_iter().flatten() {
        let pair = |k: &str, a: &str, b: &str| format!("{} / {}", r[k][a], r[k][b]);
        let secs = |a: &str, b: &str| {
            format!(
                "{:.3} s / {:.4} s",
                r["airtime_s"][a].as_f64().unwrap_or(f64::NAN),
                r["airtime_s"][b].as_f64().unwrap_or(f64::NAN)
            )
        };
        let _ = writeln!(
            t,
            "| {} % | {} B | {} B ({:.2} %) | {} | {} | {} | {} | {} | {} | {:.3} s | {:.3} s | {} KiB |",
            r["changed_percent"],
            r["image_bytes"],
            r["package_bytes"],
            r["package_share_percent"].as_f64().unwrap_or(f64::NAN),
            pair("frames", "full_unicast", "delta_unicast"),
            pair("frames", "full_multicast", "delta_multicast"),
            pair("bytes", "full_unicast", "delta_unicast"),
            pair("bytes", "full_multicast", "delta_multicast"),
            secs("full_unicast", "delta_unicast"),
            secs("full_multicast", "delta_multicast"),
            r["rebuild"]["rebuild_s"].as_f64().unwrap_or(f64::NAN),
            r["rebuild"]["rebuild_and_verify_s"]
                .as_f64()
                .unwrap_or(f64::NAN),
            r["rebuild"]["peak_rss_kib"],
        );
    }
    t
}

/// The benchmark's row of one rollout of `n` ONUs in `mode` (`size` payload bytes, extended
/// or baseline frames), run as `r` in `total_s` seconds in all.
fn rollout_row(
    n: u16,
    pons: u8,
    mode: &str,
    size: usize,
    extended: bool,
    r: &RunOutcome,
    total_s: f64,
) -> Value {
    let rep = &r.report;
    let olt = rep.olt.as_ref();
    // The data phase: the longest download of an ONU (the report's phases by name).
    let data_s = olt.map_or(0.0, |o| {
        o.onus
            .iter()
            .filter_map(|x| x.phases_s.get("download").copied())
            .fold(0.0, f64::max)
    });
    // After the download: End (and its busy answers) to the committed image, the longest of
    // any ONU (the phases after "download" in the report).
    let end_to_commit_s = olt.map_or(0.0, |o| {
        o.onus
            .iter()
            .map(|x| {
                AFTER_DOWNLOAD
                    .iter()
                    .filter_map(|p| x.phases_s.get(*p))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    });
    let reasons = olt.map(|o| {
        let mut v: Vec<&str> = o
            .onus
            .iter()
            .map(|x| x.reason.as_str())
            .filter(|x| !x.is_empty())
            .collect();
        v.sort_unstable();
        v.dedup();
        v.into_iter()
            .take(5)
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let totals = olt.map(|o| &o.totals);
    json!({
        "onus": u64::from(n) * u64::from(pons),
        "pons": pons,
        "onus_per_pon": n,
        "mode": mode,
        "format": if extended { "extended" } else { "baseline" },
        "image_bytes": size,
        "sections": rep.sections,
        "passed": r.passed,
        "failures": r.failures,
        "reasons": reasons,
        "wall_s": rep.rollout_s,
        "total_s": total_s,
        "data_phase_s": data_s,
        "end_to_commit_s": end_to_commit_s,
        "olt_cpu_s": rep.usage.olt_cpu_s,
        "olt_user_cpu_s": rep.usage.olt_user_cpu_s,
        "onu_cpu_s_total": rep.usage.onu_cpu_s_total,
        "olt_peak_rss_kib": rep.usage.olt_peak_rss_kib,
        "onu_peak_rss_kib_max": rep.usage.onu_peak_rss_kib_max,
        "frames_multicast": totals.map(|t| t.frames_multicast),
        "frames_unicast": totals.map(|t| t.frames_unicast),
        "bytes_sent": totals.map(|t| t.bytes_sent),
        "repaired_windows": olt.map(|o| o.onus.iter().map(|x| x.repaired_windows).sum::<u64>()),
    })
}

/// The machine, in a line.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} x {cpu}, Linux {}", kernel.trim())
}

/// The raw deliveries per second closest to `receivers` receivers of `bytes`-byte datagrams:
/// the better of the plain and the batched blast (the machine's limit is what it can do at
/// best).
fn raw_rate(result: &Value, receivers: u64, bytes: u64) -> Option<f64> {
    let rows: Vec<&Value> = result["raw"]
        .as_array()?
        .iter()
        .filter(|r| r["datagram_bytes"].as_u64() == Some(bytes))
        .filter(|r| !r["unicast"].as_bool().unwrap_or(false))
        .collect();
    let nearest = rows
        .iter()
        .map(|r| r["receivers"].as_u64().unwrap_or(0))
        .min_by_key(|n| n.abs_diff(receivers))?;
    rows.iter()
        .filter(|r| r["receivers"].as_u64() == Some(nearest))
        .filter_map(|r| r["deliveries_per_s"].as_f64())
        .reduce(f64::max)
}

/// The Markdown table of a result.
pub fn table(result: &Value) -> String {
    let mut o = format!("Machine: {}\n\n", result["machine"].as_str().unwrap_or("?"));
    o += "| datagram | receivers | deliveries/s, one system call each | deliveries/s, batched (segmented sends, recvmmsg) | deliveries/s, unicast batched (each run to one receiver's port) |\n|---:|---:|---:|---:|---:|\n";
    let raw = result["raw"].as_array().cloned().unwrap_or_default();
    let rate = |size: &Value, n: &Value, batched: bool, unicast: bool| {
        raw.iter()
            .find(|r| {
                &r["datagram_bytes"] == size
                    && &r["receivers"] == n
                    && r["batched"].as_bool().unwrap_or(false) == batched
                    && r["unicast"].as_bool().unwrap_or(false) == unicast
            })
            .and_then(|r| r["deliveries_per_s"].as_f64())
            .map_or("-".to_string(), |v| format!("{v:.0}"))
    };
    for r in raw
        .iter()
        .filter(|r| !r["batched"].as_bool().unwrap_or(false))
    {
        let (size, n) = (&r["datagram_bytes"], &r["receivers"]);
        let _ = writeln!(
            o,
            "| {size} B | {n} | {} | {} | {} |",
            rate(size, n, false, false),
            rate(size, n, true, false),
            rate(size, n, true, true)
        );
    }
    o += "\n| ONUs | mode | format | image | wall s | data s | End to committed s | OLT CPU s (of which user) | ONU CPU s | frames on the group | unicast frames | bytes sent | repaired windows | OLT peak RSS | ONU peak RSS | raw limit for the same deliveries |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for r in result["rollouts"].as_array().into_iter().flatten() {
        let n = r["onus"].as_u64().unwrap_or(0);
        // Each PON port is its own group: the raw rate is the one to a port's receivers.
        let pons = r["pons"].as_u64().unwrap_or(1).max(1);
        let label = if pons > 1 {
            format!("{n} ({pons} × {})", n / pons)
        } else {
            n.to_string()
        };
        let sections = r["sections"].as_u64().unwrap_or(0);
        let bytes = if r["format"] == "extended" { 2000 } else { 64 };
        let limit = raw_rate(result, n / pons, bytes)
            .map(|rate| format!("{:.2} s", (sections * n) as f64 / rate))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "| {label} | {} | {}{} | {} KiB | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {limit} |",
            r["mode"].as_str().unwrap_or("?"),
            r["format"].as_str().unwrap_or("?"),
            r["window"]
                .as_u64()
                .map_or(String::new(), |w| format!(", windows of {w}")),
            r["image_bytes"].as_u64().unwrap_or(0) / 1024,
            r["wall_s"].as_f64().unwrap_or(0.0),
            r["data_phase_s"].as_f64().unwrap_or(0.0),
            r["end_to_commit_s"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}")),
            r["olt_cpu_s"].as_f64().map_or("-".into(), |v| format!(
                "{v:.2} ({:.2})",
                r["olt_user_cpu_s"].as_f64().unwrap_or(f64::NAN)
            )),
            r["onu_cpu_s_total"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.1}")),
            r["frames_multicast"],
            r["frames_unicast"],
            r["bytes_sent"],
            r["repaired_windows"],
            r["olt_peak_rss_kib"]
                .as_u64()
                .map_or("-".into(), |v| format!("{} MiB", v / 1024)),
            r["onu_peak_rss_kib_max"]
                .as_u64()
                .map_or("-".into(), |v| format!("{} MiB", v / 1024)),
        );
    }
    if result["pon"]["runs"].is_array() {
        let first = &result["pon"]["runs"][0];
        let _ = write!(
            o,
            "\nProjected onto a GPON (`scenario project`, PON time, not this machine's): {} ONUs, {} MiB image, baseline frames, windows of 32\n\n{}",
            first["onus"],
            first["image_bytes"].as_u64().unwrap_or(0) >> 20,
            crate::project::table(&result["pon"])
        );
    }
    o
}

/// How a plotted line reads its value from a rollout row.
type Series<'a> = Box<dyn Fn(&Value) -> Option<f64> + 'a>;

/// The plot: wall time against ONU count (log scale), a line per mode (baseline images), and
/// the raw limit's time for the same deliveries.
pub fn svg(result: &Value) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 420.0, 70.0, 50.0, 30.0, 160.0);
    let rows: Vec<&Value> = result["rollouts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["format"] == "baseline")
        .collect();
    let ns: Vec<f64> = rows.iter().filter_map(|r| r["onus"].as_f64()).collect();
    let max_n = ns.iter().cloned().fold(1.0, f64::max).max(2.0);
    let limit = |r: &Value| {
        let n = r["onus"].as_u64().unwrap_or(1);
        raw_rate(result, n, 64).map(|rate| (r["sections"].as_u64().unwrap_or(0) * n) as f64 / rate)
    };
    let max_t = rows
        .iter()
        .filter_map(|r| r["wall_s"].as_f64())
        .chain(rows.iter().filter_map(|r| limit(r)))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |n: f64| left + (n.max(1.0).ln() / max_n.ln()) * (w - left - right);
    let y = |t: f64| h - bottom - (t / max_t) * (h - bottom - top);
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let _ = writeln!(
        o,
        "<text x=\"{left}\" y=\"18\" font-size=\"14\">Rollout wall time against ONU count (baseline image)</text>"
    );
    let _ = writeln!(
        o,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom,
        w - right,
        h - bottom
    );
    let _ = writeln!(
        o,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>",
        h - bottom
    );
    for n in [1.0, 8.0, 32.0, 128.0] {
        if n <= max_n {
            let _ = writeln!(
                o,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                x(n),
                h - bottom + 18.0
            );
        }
    }
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">ONUs (log scale)</text>",
        (left + w - right) / 2.0,
        h - 10.0
    );
    for k in 0..=4 {
        let t = max_t * f64::from(k) / 4.0;
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{t:.0} s</text>",
            left - 6.0,
            y(t) + 4.0
        );
    }
    let wall = |mode: &'static str| -> Series {
        Box::new(move |r: &Value| (r["mode"] == mode).then(|| r["wall_s"].as_f64()).flatten())
    };
    let series: [(&str, &str, Series); 3] = [
        ("multicast", "#1f77b4", wall("multicast")),
        ("unicast", "#d62728", wall("unicast")),
        (
            "raw limit, same deliveries",
            "#7f7f7f",
            Box::new(|r: &Value| (r["mode"] == "multicast").then(|| limit(r)).flatten()),
        ),
    ];
    for (i, (name, colour, f)) in series.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r["onus"].as_f64()?, f(r)?)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = pts
            .iter()
            .map(|(n, t)| format!("{:.1},{:.1}", x(*n), y(*t)))
            .collect();
        let dash = if i == 2 {
            " stroke-dasharray=\"5,4\""
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            path.join(" ")
        );
        for (n, t) in &pts {
            let _ = writeln!(
                o,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                x(*n),
                y(*t)
            );
        }
        let ly = top + 20.0 + 18.0 * i as f64;
        let _ = writeln!(
            o,
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{name}</text>",
            w - right + 10.0,
            w - right + 30.0,
            w - right + 34.0,
            ly + 4.0
        );
    }
    o += "</svg>\n";
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixtures::{report, run_report, upgraded};
    use olt::report::OnuResult;

    #[test]
    fn a_rollouts_row_reads_the_olts_report() {
        let mut olt = report(&[
            (1, OnuResult::Upgraded, ""),
            (2, OnuResult::Failed, "timeout"),
            (3, OnuResult::Failed, "timeout"),
        ]);
        for (o, (download, repaired)) in olt.onus.iter_mut().zip([(1.5, 1), (2.5, 0), (0.5, 2)]) {
            o.phases_s.insert("download".into(), download);
            o.phases_s.insert("end".into(), 9.0);
            o.repaired_windows = repaired;
        }
        olt.totals.bytes_sent = 4242;
        let mut rep = run_report(Some(olt), (1..=3).map(|id| (id, upgraded())).collect());
        rep.usage.olt_cpu_s = Some(0.75);
        let r = RunOutcome {
            passed: true,
            failures: Vec::new(),
            summary: String::new(),
            report: rep,
        };
        let row = rollout_row(3, 1, "multicast", 4096, false, &r, 4.0);
        assert_eq!(row["data_phase_s"], 2.5);
        assert_eq!(row["reasons"], json!(["timeout"]));
        assert_eq!(row["repaired_windows"], 3);
        assert_eq!(row["frames_multicast"], 100);
        assert_eq!(row["frames_unicast"], 15);
        assert_eq!(row["bytes_sent"], 4242);
        assert_eq!(row["wall_s"], 2.0);
        assert_eq!(row["sections"], 100);
        assert_eq!(row["olt_cpu_s"], 0.75);
        assert_eq!(row["onu_cpu_s_total"], Value::Null);
        // Without the OLT's report, its figures are null (the table prints a dash or null).
        let mut r = r;
        r.report.olt = None;
        let row = rollout_row(3, 1, "multicast", 4096, false, &r, 4.0);
        assert_eq!(row["data_phase_s"], 0.0);
        assert_eq!(row["frames_multicast"], Value::Null);
        assert_eq!(row["reasons"], Value::Null);
    }
}
