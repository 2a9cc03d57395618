//! The runner's children: the ONU processes, for which the runner is the power supply, and the
//! OLT process.
//!
//! [`Onus`] starts every ONU, reads its JSON log (the protocol events that trigger faults),
//! starts it again when it dies (a power cut at a named point aborts the process; a SIGKILL
//! fault kills it), stops and resumes it for a silent fault, and stops them all at the end.
//! [`OltProcess`] starts the OLT's rollout, kills and starts it again for a restart fault (a
//! campaign resumes from its journal), and reads what it wrote: its report, its table, its
//! captures. Every child is started through [`super::lifecycle`]: in a process group of its
//! own, asking for SIGKILL when the runner dies, killed when its handle is dropped, and
//! stopped with the others when a signal ends the runner.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use onu::core::OnuEvent;

use super::images::Images;
use super::lifecycle::{self, Child};
use super::plan::{OnuPlan, Plan};
use super::usage::Usage;
use crate::spec::{Scenario, Step, Verb};

/// How this lab's tools are run: `[exe, "onu"]` and `[exe, "olt"]` are built from the
/// program by appending the tool's name.
#[derive(Clone, Debug)]
pub(super) struct Tools(Vec<OsString>);

impl Tools {
    /// The tools of `program`.
    pub(super) fn new(program: &[OsString]) -> Tools {
        Tools(program.to_vec())
    }

    /// A command running tool `name` as a child of this runner: `[exe, --die-with-parent=PID,
    /// prefix.., name]` (the program is this lab's `scenario` tool, whose `main` takes the
    /// option off before it runs the tool; see [`lifecycle`]).
    fn command(&self, name: &str) -> Command {
        match self.0.split_first() {
            Some((exe, prefix)) => {
                let mut c = Command::new(exe);
                c.arg(lifecycle::parent_arg()).args(prefix).arg(name);
                c
            }
            None => Command::new(name),
        }
    }
}

/// Sends `sig` (a name: STOP, CONT, TERM) to process `pid`.
fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A line of an ONU's log.
struct LogLine {
    onu: u16,
    line: String,
}

/// The event of a JSON log line of an ONU: its `event` field, the core's [`OnuEvent`] as
/// tagged JSON (lines without one are the ONU's other logs).
fn event_of(line: &str) -> Option<OnuEvent> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    serde_json::from_str(v["fields"]["event"].as_str()?).ok()
}

/// How often the power supply looks at the ONUs while they boot.
const BOOT_TICK: Duration = Duration::from_millis(50);

/// One ONU process and what the power supply knows of it.
struct OnuProc {
    /// Its command line, every life.
    args: Vec<String>,
    /// Added in its first life only: the power cut (`--fault=POINT@N`).
    first_life: Option<String>,
    /// The process, while it runs.
    child: Option<Child>,
    /// When it died and is to be started again.
    restart_at: Option<Instant>,
    /// Stopped (SIGSTOP) until then.
    resume_at: Option<Instant>,
    /// Its boots so far (its "booted" events).
    boots: u32,
}

/// What starts an ONU process: the tool, its log level, where its log goes.
struct Launcher {
    tools: Tools,
    /// RUST_LOG of every ONU.
    log: &'static str,
    log_tx: mpsc::UnboundedSender<LogLine>,
}

impl Launcher {
    /// Starts ONU `id`'s process (in its first life: with its power cut), its log read into
    /// the channel.
    fn spawn(&self, id: u16, p: &OnuProc, first_life: bool) -> Result<Child> {
        let mut c = self.tools.command("onu");
        c.args(&p.args)
            .args(p.first_life.iter().filter(|_| first_life))
            .env("RUST_LOG", self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = lifecycle::spawn(&mut c).context("starting an ONU process")?;
        if let Some(err) = child.take_stderr() {
            let tx = self.log_tx.clone();
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
    }
}

/// The ONU processes: their power supply and their logs.
pub(super) struct Onus {
    launcher: Launcher,
    procs: BTreeMap<u16, OnuProc>,
    /// A dead ONU is started again after this (its reboot time).
    reboot: Duration,
    log_rx: mpsc::UnboundedReceiver<LogLine>,
    /// The last error line an ONU process wrote (`onu: ...`), with its ONU-ID, for a boot
    /// that does not come.
    last_error: Option<(u16, String)>,
    /// What recovery mode did before every ONU was up, one line per event.
    pub(super) recovery: Vec<String>,
}

impl Onus {
    /// Starts an ONU process for every ONU of `plan`.
    pub(super) fn start(
        s: &Scenario,
        plan: &Plan,
        images: &Images,
        dir: &Path,
        tools: &Tools,
    ) -> Result<Onus> {
        let (log_tx, log_rx) = mpsc::unbounded_channel();
        // The ONUs log one line per window at debug level: asked for only when a fault waits
        // for a window (a thousand lines per ONU and megabyte cost the ONUs and this runner
        // CPU).
        let log = if plan.faults.iter().any(|f| f.waits_for_a_window()) {
            "info,onu::driver=debug"
        } else {
            "info"
        };
        let launcher = Launcher {
            tools: tools.clone(),
            log,
            log_tx,
        };
        let mut procs = BTreeMap::new();
        for p in plan.onus.values() {
            let mut proc = OnuProc {
                args: onu_args(s, p, plan, images, dir),
                first_life: p
                    .power_loss
                    .map(|f| format!("--fault={}@{}", f.point, f.occurrence)),
                child: None,
                restart_at: None,
                resume_at: None,
                boots: 0,
            };
            proc.child = Some(launcher.spawn(p.id, &proc, true)?);
            procs.insert(p.id, proc);
        }
        Ok(Onus {
            launcher,
            procs,
            reboot: Duration::from_millis(s.topology.reboot_ms),
            log_rx,
            last_error: None,
            recovery: Vec::new(),
        })
    }

    /// Waits until every ONU has booted (its first "booted" event) or reported that it stays
    /// in recovery mode (its first failed recovery attempt), at most 30 s. Meanwhile it is the
    /// ONUs' power supply, as during the rollout: an ONU whose power fails while it boots (a
    /// power cut halfway through restoring its golden image, say) is started again after its
    /// reboot time. What happened to them is returned, as notes timed from the ONUs' start.
    pub(super) async fn wait_booted(&mut self) -> Result<Vec<String>> {
        let n = self.procs.len();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(30);
        let mut booted = BTreeSet::new();
        let mut notes = super::picture::Happenings::default();
        while booted.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "{} of {n} ONU processes booted within 30 s{}",
                    booted.len(),
                    self.said()
                );
            }
            self.tend(started.elapsed().as_secs_f64(), &mut notes)?;
            match tokio::time::timeout(left.min(BOOT_TICK), self.log_rx.recv()).await {
                Err(_) => {}
                Ok(Some(l)) => match event_of(&l.line) {
                    Some(e) => {
                        self.count(l.onu, &e);
                        match &e {
                            OnuEvent::PowerLost { point } => notes.note(
                                started.elapsed().as_secs_f64(),
                                Some(l.onu),
                                format!("ONU {} lost power ({})", l.onu, point.name()),
                            ),
                            OnuEvent::GoldenRestored {
                                version, source, ..
                            } => self.recovery.push(format!(
                                "ONU {} was in recovery mode: golden image {version} restored from {source}",
                                l.onu
                            )),
                            OnuEvent::RecoveryFailed { reason, .. } => {
                                self.recovery.push(format!(
                                    "ONU {} stays in recovery mode: {reason}",
                                    l.onu
                                ));
                                booted.insert(l.onu);
                            }
                            OnuEvent::Booted { .. } => {
                                booted.insert(l.onu);
                            }
                            _ => {}
                        }
                    }
                    None => {
                        if let Some(said) = last_said(&l.line, "onu: ")
                            .filter(|_| !l.line.trim_start().starts_with('{'))
                        {
                            self.last_error = Some((l.onu, said));
                        }
                    }
                },
                Ok(None) => bail!(
                    "the ONU processes stopped logging before they all booted{}",
                    self.said()
                ),
            }
        }
        Ok(notes.notes)
    }

    /// `; ONU n said: ...` when an ONU process wrote an error line, or nothing.
    fn said(&self) -> String {
        self.last_error
            .as_ref()
            .map(|(id, line)| format!("; ONU {id} said: {line}"))
            .unwrap_or_default()
    }

    /// The next event of some ONU, if one comes within `wait` (None also for a log line
    /// without an event).
    pub(super) async fn next_event(&mut self, wait: Duration) -> Option<(u16, OnuEvent)> {
        let l = tokio::time::timeout(wait, self.log_rx.recv())
            .await
            .ok()??;
        let e = event_of(&l.line)?;
        self.count(l.onu, &e);
        Some((l.onu, e))
    }

    /// Counts a boot.
    fn count(&mut self, onu: u16, e: &OnuEvent) {
        if matches!(e, OnuEvent::Booted { .. })
            && let Some(p) = self.procs.get_mut(&onu)
        {
            p.boots += 1;
        }
    }

    /// ONU `id`'s boots so far.
    pub(super) fn boots(&self, id: u16) -> u32 {
        self.procs.get(&id).map_or(0, |p| p.boots)
    }

    /// The power supply's round: ONU processes that died are noted (at `t` s) and started
    /// again after their reboot time; stopped ones due to resume get SIGCONT.
    pub(super) fn tend(&mut self, t: f64, notes: &mut super::picture::Happenings) -> Result<()> {
        let now = Instant::now();
        for (id, p) in self.procs.iter_mut() {
            if let Some(c) = &mut p.child
                && let Ok(Some(st)) = c.try_wait()
            {
                p.child = None;
                // The reboot time is at most a minute (the file's reader): no overflow.
                p.restart_at = Some(now.checked_add(self.reboot).unwrap_or(now));
                notes.note(
                    t,
                    Some(*id),
                    format!("ONU {id} process ended ({st}); the power supply starts it again"),
                );
            }
            if p.restart_at.is_some_and(|at| now >= at) {
                p.restart_at = None;
                p.child = Some(self.launcher.spawn(*id, p, false)?);
            }
            if p.resume_at.is_some_and(|at| now >= at) {
                p.resume_at = None;
                if let Some(pid) = p.child.as_ref().and_then(Child::id) {
                    signal(pid, "CONT");
                }
            }
        }
        Ok(())
    }

    /// Kills ONU `id` (SIGKILL); false when it is not running.
    pub(super) fn kill(&mut self, id: u16) -> bool {
        match self.procs.get_mut(&id).and_then(|p| p.child.as_mut()) {
            Some(c) => {
                let _ = c.start_kill();
                true
            }
            None => false,
        }
    }

    /// Stops ONU `id` (SIGSTOP) for `how_long`; false when it is not running.
    pub(super) fn silence(&mut self, id: u16, how_long: Duration) -> bool {
        let Some(p) = self.procs.get_mut(&id) else {
            return false;
        };
        let Some(pid) = p.child.as_ref().and_then(Child::id) else {
            return false;
        };
        signal(pid, "STOP");
        let now = Instant::now();
        // At most an hour (the file's reader): no overflow; were there one, it resumes now.
        p.resume_at = Some(now.checked_add(how_long).unwrap_or(now));
        true
    }

    /// What the running ONU processes have used.
    pub(super) fn usage(&self) -> Vec<Usage> {
        self.procs
            .values()
            .filter_map(|p| p.child.as_ref().and_then(Child::id).and_then(Usage::of))
            .collect()
    }

    /// Stops every ONU: SIGCONT and SIGTERM, then SIGKILL after 3 s.
    pub(super) async fn stop(&mut self) {
        for p in self.procs.values() {
            if let Some(pid) = p.child.as_ref().and_then(Child::id) {
                signal(pid, "CONT");
                signal(pid, "TERM");
            }
        }
        for p in self.procs.values_mut() {
            if let Some(c) = &mut p.child
                && tokio::time::timeout(Duration::from_secs(3), c.wait())
                    .await
                    .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }
}

/// The command line of ONU `p` (`onu run ...`), but its power cut.
fn onu_args(s: &Scenario, p: &OnuPlan, plan: &Plan, images: &Images, dir: &Path) -> Vec<String> {
    let mut a = vec![
        "run".to_string(),
        format!("--onu-id={}", p.onu_id),
        format!("--model={}", p.model),
        format!("--listen={}", plan.ports.onu(p.id)),
        format!("--olt={}", plan.ports.olt),
        format!("--group={}", plan.ports.groups[usize::from(p.pon - 1)]),
        format!(
            "--state-dir={}",
            dir.join(format!("onu-{}", p.id)).display()
        ),
        format!("--public-key={}", images.public_key.display()),
        format!("--golden={}", images.golden_arg(p)),
        format!("--busy-ms={}", p.busy_ms),
        format!("--reboot-ms={}", s.topology.reboot_ms),
        format!("--seed={}", s.seed.wrapping_add(u64::from(p.id))),
        "--supervise".into(),
        "--log-format=json".into(),
    ];
    if s.topology.sync_every_window {
        a.push("--sync-every-window".into());
    }
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
    a
}

/// The OLT process (each restart a new life, with its own output and capture).
pub(super) struct OltProcess {
    tools: Tools,
    /// Its command line, every life of the current step.
    args: Vec<String>,
    /// The current step's maintenance window (s), passed as `--until` when it starts.
    window_s: Option<f64>,
    /// The steps still to come (a staged upgrade): each one's command line, window, and the
    /// seconds to wait after the previous one ended.
    steps: std::collections::VecDeque<(Vec<String>, Option<f64>, f64)>,
    /// Steps started so far (1 for a plain rollout).
    step: usize,
    /// The working directory: its outputs, one set per life.
    dir: PathBuf,
    /// Processes started so far.
    lives: u32,
    /// The capture of each life.
    pcaps: Vec<PathBuf>,
    /// The process of the last life.
    child: Option<Child>,
    /// When the rollout started (the first life): fault times count from here.
    rollout_started: Instant,
    /// The same moment on the wall clock (the OLT's report counts from its own start).
    rollout_started_at: std::time::SystemTime,
}

impl OltProcess {
    /// Starts the OLT's rollout of `images` to the ONUs of `plan`.
    pub(super) fn start_rollout(
        s: &Scenario,
        plan: &Plan,
        images: &Images,
        dir: &Path,
        tools: &Tools,
    ) -> Result<OltProcess> {
        let mut steps: std::collections::VecDeque<(Vec<String>, Option<f64>, f64)> =
            if s.olt.steps.is_empty() {
                [(olt_args(s, plan, images, dir, None), None, 0.0)].into()
            } else {
                s.olt
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| {
                        (
                            olt_args(s, plan, images, dir, Some((i + 1, st))),
                            st.window_s,
                            st.after_s.unwrap_or(0.0),
                        )
                    })
                    .collect()
            };
        let (args, window_s, _) = steps.pop_front().unwrap_or_default();
        let mut olt = OltProcess {
            tools: tools.clone(),
            args,
            window_s,
            steps,
            step: 1,
            dir: dir.to_path_buf(),
            lives: 0,
            pcaps: Vec::new(),
            child: None,
            rollout_started: Instant::now(),
            rollout_started_at: std::time::SystemTime::now(),
        };
        olt.start()?;
        Ok(olt)
    }

    /// Starts a new life (after [`OltProcess::kill`]).
    pub(super) fn start(&mut self) -> Result<()> {
        self.lives += 1;
        let pcap = self.dir.join(format!("olt-{}.pcap", self.lives));
        self.pcaps.push(pcap.clone());
        let mut c = self.tools.command("olt");
        c.args(&self.args);
        if let Some(w) = self.window_s {
            // The maintenance window closes this long after the step starts.
            let until = std::time::SystemTime::now()
                + Duration::try_from_secs_f64(w).unwrap_or(Duration::ZERO);
            c.arg(format!(
                "--until={}",
                humantime::format_rfc3339_millis(until)
            ));
        }
        c.arg(format!("--pcap={}", pcap.display()))
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(self.output("out"))?)
            .stderr(std::fs::File::create(self.output("err"))?);
        self.child = Some(lifecycle::spawn(&mut c).context("starting the OLT process")?);
        Ok(())
    }

    /// A staged upgrade's next step, when one is left: it becomes the current one (start it
    /// with [`OltProcess::start`]); returns its name and how long to wait before it.
    pub(super) fn next_step(&mut self) -> Option<(String, Duration)> {
        let (args, window_s, after) = self.steps.pop_front()?;
        self.args = args;
        self.window_s = window_s;
        self.step += 1;
        let verb = self.args.first().cloned().unwrap_or_default();
        Some((
            verb,
            Duration::try_from_secs_f64(after).unwrap_or(Duration::ZERO),
        ))
    }

    /// The file of this life's standard output (`out`) or error (`err`).
    fn output(&self, which: &str) -> PathBuf {
        self.dir.join(format!("olt-{}.{which}", self.lives))
    }

    /// Kills it (SIGKILL) and reaps it.
    pub(super) async fn kill(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// Sends it SIGKILL, not waiting.
    pub(super) fn start_kill(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
    }

    /// How it ended, once it has.
    pub(super) fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok()?
    }

    /// What it has used so far (None once it is gone).
    pub(super) fn usage(&self) -> Option<Usage> {
        self.child.as_ref()?.id().and_then(Usage::of)
    }

    /// When the rollout started.
    pub(super) fn rollout_started(&self) -> Instant {
        self.rollout_started
    }

    /// When the rollout started, on the wall clock.
    pub(super) fn rollout_started_at(&self) -> std::time::SystemTime {
        self.rollout_started_at
    }

    /// Processes started.
    pub(super) fn lives(&self) -> u32 {
        self.lives
    }

    /// The captures, one per life, in order.
    pub(super) fn pcaps(&self) -> &[PathBuf] {
        &self.pcaps
    }

    /// Its last progress line (it writes one every 5 s when its output is not a terminal),
    /// as `; ...`, or nothing.
    pub(super) fn progress(&self) -> String {
        std::fs::read_to_string(self.output("err"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .rev()
                    .find(|l| l.starts_with("olt: "))
                    .map(|l| format!("; {}", l.trim_start_matches("olt: ")))
            })
            .unwrap_or_default()
    }

    /// What its last life printed: the table of every ONU.
    pub(super) fn summary(&self) -> String {
        std::fs::read_to_string(self.output("out")).unwrap_or_default()
    }

    /// What its last life said when it failed: the last `olt:` line of its standard error (the
    /// error it ended with), else its last line (a panic's), at most 400 characters; `None`
    /// when it wrote nothing.
    pub(super) fn error_line(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.output("err")).ok()?;
        last_said(&text, "olt: ")
    }

    /// Its report (`--report`), or why there is none.
    pub(super) fn report(&self) -> Result<olt::report::Report, String> {
        let path = self.dir.join(REPORT);
        let text = std::fs::read_to_string(&path).map_err(|_| "none found".to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("{REPORT} does not read: {e}"))
    }
}

/// The last line of `text` that starts with `prefix` (a tool's own error line), else a panic's
/// place and message, else its last line that is not empty; at most 400 characters.
fn last_said(text: &str, prefix: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let line = match lines.iter().rev().find(|l| l.starts_with(prefix)) {
        Some(l) => l.to_string(),
        None => match lines.iter().position(|l| l.contains("panicked at")) {
            Some(i) => format!("{} {}", lines[i], lines.get(i + 1).unwrap_or(&"")),
            None => lines
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())?
                .to_string(),
        },
    };
    let line = line.trim();
    Some(match line.char_indices().nth(400) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_string(),
    })
}

/// The OLT's report in the working directory.
pub(super) const REPORT: &str = "olt-report.json";

/// The command line of the OLT (`olt rollout ...`, or a staged upgrade's step `n`), but its
/// capture.
fn olt_args(
    s: &Scenario,
    plan: &Plan,
    images: &Images,
    dir: &Path,
    step: Option<(usize, &Step)>,
) -> Vec<String> {
    // Each step is a campaign of its own, with its own journal.
    let journal = match step {
        Some((n, _)) => format!("journal-{n}.json"),
        None => "journal.json".into(),
    };
    let mut a: Vec<String> = vec![
        step.map_or(Verb::Rollout, |(_, st)| st.verb).name().into(),
        format!("--image={}", images.image.display()),
        format!("--listen={}", plan.ports.olt),
        format!("--mode={}", s.olt.mode.name()),
        format!("--window={}", s.olt.window),
        format!("--timeout-ms={}", s.olt.timeout_ms),
        format!("--retries={}", s.olt.retries),
        "--reboot-timeout-s=30".into(),
        format!("--journal={}", dir.join(journal).display()),
        format!("--report={}", dir.join(REPORT).display()),
    ];
    a.extend(
        images
            .deltas
            .iter()
            .map(|d| format!("--delta={}", d.display())),
    );
    if !images.deltas.is_empty() && step.is_none() {
        a.push(format!("--delta-policy={}", s.olt.delta_policy.name()));
    }
    if let Some((_, st)) = step {
        if st.activate_on_success && st.verb == Verb::Download {
            a.push("--activate-on-success".into());
        }
        if st.commit_on_success && matches!(st.verb, Verb::Download | Verb::Activate) {
            a.push("--commit-on-success".into());
        }
    }
    // One port: the plain form (`--onus=1-N@ADDR`); several: each port's ONUs and group.
    let prefix = |pon: u8| {
        if plan.pons > 1 {
            format!("{pon}/")
        } else {
            String::new()
        }
    };
    for pon in 1..=plan.pons {
        let first = plan.number(pon, 1);
        a.push(format!(
            "--onus={}1-{}@{}",
            prefix(pon),
            plan.per_pon,
            plan.ports.onu(first)
        ));
        a.push(format!(
            "--group={}{}",
            prefix(pon),
            plan.ports.groups[usize::from(pon - 1)]
        ));
    }
    if s.olt.strict {
        a.push("--strict".into());
    }
    if s.olt.extended {
        a.push("--extended".into());
    }
    if s.olt.retry_failed {
        a.push("--retry-failed".into());
    }
    a.push(format!("--activate-flags={}", s.olt.activate_flags));
    a.push(format!("--activate-defer-s={}", s.olt.activate_defer_s));
    if let Some(c) = &s.olt.campaign {
        if let Some(manifest) = &images.manifest {
            a.push(format!("--manifest={}", manifest.display()));
        }
        if let Some(p) = c.canary {
            a.push(format!("--canary={p}"));
        }
        a.push(format!("--kill-threshold={}", c.kill_threshold));
        a.push(format!("--health-settle-ms={}", c.health_settle_ms));
        if let Some(p) = c.pace {
            a.push(format!("--pace={p}"));
        }
        if c.start_in_s.is_none() {
            a.push("--start-at=now".into());
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunOptions;
    use crate::spec::parse;

    const LINKED: &str = r#"
name = "t"
[topology]
onus = 3
[[topology.groups]]
onus = "2"
voice_call = true
link = { drop = 0.25, on = "multicast" }
[image]
version = "V2.0"
size = 4096
[olt]
mode = "unicast"
extended = true
[olt.campaign]
canary = 30
[[faults]]
kind = "power-loss"
onus = "3"
point = "after-window-ack"
occurrence = 2
"#;

    #[test]
    fn the_command_lines_say_what_the_plan_says() {
        let s = parse(LINKED).unwrap();
        let plan = Plan::new(&s, &RunOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let images = Images::write(&s, &plan.onus, dir.path()).unwrap();
        let two = onu_args(&s, &plan.onus[&2], &plan, &images, dir.path());
        for want in [
            "--onu-id=2".to_string(),
            format!("--listen=127.0.0.1:{}", plan.ports.base + 1),
            format!("--group={}", plan.ports.group),
            "--voice-call".into(),
            "--drop=0.25".into(),
            "--faults-on=multicast".into(),
        ] {
            assert!(two.contains(&want), "{want} in {two:?}");
        }
        let one = onu_args(&s, &plan.onus[&1], &plan, &images, dir.path());
        assert!(!one.iter().any(|a| a.starts_with("--faults-on")), "{one:?}");
        let cut = plan.onus[&3].power_loss.unwrap();
        assert_eq!(
            format!("--fault={}@{}", cut.point, cut.occurrence),
            "--fault=after-window-ack@2"
        );
        let olt = olt_args(&s, &plan, &images, dir.path(), None);
        for want in [
            "--mode=unicast".to_string(),
            "--extended".into(),
            format!("--onus=1-3@127.0.0.1:{}", plan.ports.base),
            format!("--listen=127.0.0.1:{}", plan.ports.base + 3),
            "--canary=30".into(),
            "--start-at=now".into(),
        ] {
            assert!(olt.contains(&want), "{want} in {olt:?}");
        }
        assert!(olt.iter().any(|a| a.starts_with("--manifest=")), "{olt:?}");
    }

    #[test]
    fn a_tools_error_line_is_its_last_own_line() {
        let err = "olt: 5 s: 3 of 8 ONUs\nolt: --image x.img is not a file\n\n";
        assert_eq!(
            last_said(err, "olt: ").as_deref(),
            Some("olt: --image x.img is not a file")
        );
        let panic = "thread 'main' panicked at x.rs:1:1:\nboom\nnote: run with RUST_BACKTRACE=1\n";
        assert_eq!(
            last_said(panic, "olt: ").as_deref(),
            Some("thread 'main' panicked at x.rs:1:1: boom")
        );
        assert_eq!(last_said("one\ntwo\n", "olt: ").as_deref(), Some("two"));
        assert_eq!(last_said("\n \n", "olt: "), None);
        let long = format!("olt: {}", "é".repeat(1000));
        assert_eq!(last_said(&long, "olt: ").unwrap().chars().count(), 403);
    }

    #[test]
    fn an_event_is_the_tagged_json_in_a_log_lines_event_field() {
        let line = r#"{"level":"INFO","fields":{"message":"window","event":"{\"event\":\"window-complete\",\"window\":3}"}}"#;
        assert_eq!(
            event_of(line),
            Some(OnuEvent::WindowComplete {
                window: omci_codec::WindowNo(3)
            })
        );
        assert_eq!(event_of(r#"{"fields":{"message":"hello"}}"#), None);
        assert_eq!(event_of("not json"), None);
    }
}
