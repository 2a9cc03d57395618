//! The rollout, watched from the OLT's start to its end: every 20 ms the faults due by time,
//! the power supply's round (ONUs that died, ONUs to resume), the OLT's end, the time limit
//! and a progress line; between those rounds, the ONUs' events and the faults they trigger.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::RunOptions;
use super::faults::{self, Pending};
use super::picture::Happenings;
use super::plan::Ports;
use super::processes::{OltProcess, Onus};
use super::usage::Usage;
use crate::spec::Scenario;

/// Housekeeping every 20 ms (not at every log line: with 128 ONUs that is 128 reaps per line).
const TICK: Duration = Duration::from_millis(20);

/// How the rollout went.
pub(super) struct Rollout {
    /// How the (last) OLT process ended.
    pub(super) status: ExitStatus,
    /// Seconds from the OLT's start to its end.
    pub(super) seconds: f64,
    /// The faults and deaths, as they happened, and the ONUs' events worth a mark.
    pub(super) happenings: Happenings,
    /// The largest sample of the OLT's usage (with `measure`).
    pub(super) olt_usage: Option<Usage>,
}

/// Watches the rollout of `olt` (just started) until the OLT ends, carrying out `faults`;
/// their times count from the rollout's start.
pub(super) async fn watch(
    s: &Scenario,
    opts: &RunOptions,
    ports: &Ports,
    faults: &mut [Pending],
    onus: &mut Onus,
    olt: &mut OltProcess,
) -> Result<Rollout> {
    let olt_start = olt.rollout_started();
    // Counted from the OLT's start (docs/scenarios.md); 1 s to a day, by the file's reader.
    let limit = Duration::from_secs(s.time_limit_s);
    let mut notes = Happenings::default();
    let mut last_progress = Instant::now();
    let mut events_seen = 0u64;
    let mut olt_usage: Option<Usage> = None;
    let mut next_tick = Instant::now();
    // A staged upgrade's next step, waiting for its start.
    let mut next_step: Option<Instant> = None;
    let status = loop {
        if Instant::now() >= next_tick {
            next_tick = Instant::now() + TICK;
            if opts.measure
                && let Some(u) = olt.usage()
            {
                olt_usage = Some(olt_usage.map_or(u, |o| o.max(u)));
            }
            // Faults due by time.
            let elapsed = olt_start.elapsed();
            for f in faults.iter_mut() {
                if f.due_by_time(elapsed) {
                    let targets: Vec<u16> = f.targets.iter().copied().collect();
                    let t = olt_start.elapsed().as_secs_f64();
                    faults::apply(f, &targets, onus, olt, ports.group, t, &mut notes).await?;
                }
            }
            onus.tend(olt_start.elapsed().as_secs_f64(), &mut notes)?;
            if let Some(at) = next_step
                && Instant::now() >= at
            {
                next_step = None;
                olt.start()?;
            }
            if next_step.is_none()
                && let Some(st) = olt.try_wait()
            {
                // A step that ended (whatever its ONUs' results: those it could not take
                // stay where they are) hands over to the next.
                let t = olt_start.elapsed().as_secs_f64();
                match olt.next_step() {
                    Some((verb, wait)) if st.code().is_some() => {
                        notes.note(
                            t,
                            None,
                            format!(
                                "the OLT's step ended ({st}); `olt {verb}` starts {:.1} s later",
                                wait.as_secs_f64()
                            ),
                        );
                        next_step = Some(Instant::now() + wait);
                    }
                    _ => break st,
                }
            }
            if olt_start.elapsed() > limit {
                olt.start_kill();
                bail!(
                    "{}: the rollout did not end within time_limit_s = {} s",
                    s.name,
                    limit.as_secs()
                );
            }
            if opts.progress && last_progress.elapsed() > Duration::from_secs(5) {
                last_progress = Instant::now();
                // The OLT's own progress line (the same model as its bar on a terminal).
                let said = olt.progress();
                opts.say(format!(
                    "{:.0} s: {}",
                    olt_start.elapsed().as_secs_f64(),
                    if said.is_empty() {
                        format!("{events_seen} ONU events so far; the OLT has not said more yet")
                    } else {
                        said.trim_start_matches("; ").to_string()
                    }
                ));
            }
        }
        // The ONUs' events, or a short sleep.
        let wait = next_tick.saturating_duration_since(Instant::now());
        let Some((onu, event)) = onus.next_event(wait).await else {
            continue;
        };
        events_seen += 1;
        let boots = onus.boots(onu);
        notes.event(olt_start.elapsed().as_secs_f64(), onu, &event, boots);
        for f in faults.iter_mut() {
            if f.due_by_event(onu, &event, boots) {
                let t = olt_start.elapsed().as_secs_f64();
                faults::apply(f, &[onu], onus, olt, ports.group, t, &mut notes).await?;
            }
        }
    };
    Ok(Rollout {
        status,
        seconds: olt_start.elapsed().as_secs_f64(),
        happenings: notes,
        olt_usage,
    })
}
