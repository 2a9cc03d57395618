//! What a rollout has done so far, in one model that the live bar on a terminal, the plain
//! periodic lines otherwise, and the scenario runner all show: the stage (the wave), ONUs per
//! phase and per result, how much of the image has reached the ONUs (percent, rate, time
//! left), frames sent, repairs and retries.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::campaign::{Campaign, Stage};
use crate::engine::PonPort;
use crate::report::OnuResult;

/// A rollout's progress at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Progress {
    /// Each PON port's stage, in words ("wave 1/2 (4 ONUs)", "rollout", "halting", ...).
    pub stages: Vec<String>,
    /// ONUs in the rollout.
    pub onus: usize,
    /// ONUs whose upgrade has ended (whatever the result).
    pub finished: usize,
    /// ONUs still at work, per phase ("download", "end", "reboot", ...).
    pub phases: BTreeMap<&'static str, usize>,
    /// ONUs that ended, per result.
    pub results: BTreeMap<&'static str, usize>,
    /// Windows of the image the ONUs hold, and the windows there are to deliver (over every
    /// ONU: a multicast window reaching 128 ONUs counts 128 times).
    pub windows: (u64, u64),
    /// Bytes of the image.
    pub image_len: usize,
    /// Frames sent to the multicast groups.
    pub frames_group: u64,
    /// Frames sent to single ONUs.
    pub frames_unicast: u64,
    /// Windows sent again.
    pub repairs: u64,
    /// Requests sent again after a timeout.
    pub retries: u64,
}

impl Progress {
    /// The progress of every PON port's campaign.
    pub(crate) fn of(campaigns: &BTreeMap<PonPort, Campaign>) -> Progress {
        let mut p = Progress::default();
        for (pon, c) in campaigns {
            let stage = stage_words(c);
            p.stages.push(if campaigns.len() > 1 {
                format!("{pon} {stage}")
            } else {
                stage
            });
            p.onus += c.records().len();
            for r in c.records().values() {
                if r.outcome.is_some() {
                    p.finished += 1;
                    *p.results
                        .entry(OnuResult::of(r.outcome.as_ref()).word())
                        .or_insert(0) += 1;
                }
                p.repairs += r.stats.repaired_windows;
                p.retries += r.stats.retries;
                p.frames_unicast += r.stats.frames;
            }
            for s in c.olt().sessions().filter(|s| s.outcome().is_none()) {
                *p.phases.entry(s.phase_name()).or_insert(0) += 1;
                p.repairs += s.stats().repaired_windows;
                p.retries += s.stats().retries;
                p.frames_unicast += s.stats().frames;
            }
            let (held, of) = c.olt().delivered();
            p.windows.0 += held;
            p.windows.1 += of;
            p.frames_group += c.counters().frames_multicast;
            if let Some(i) = c.image() {
                p.image_len = i.len();
            }
        }
        p
    }

    /// The share of the image delivered, 0.0..=1.0 (1.0 when there is nothing to deliver).
    pub(crate) fn fraction(&self) -> f64 {
        match self.windows {
            (_, 0) => 1.0,
            (held, of) => (held as f64 / of as f64).min(1.0),
        }
    }

    /// The progress in one line, with `meter`'s rate and time left.
    pub(crate) fn line(&self, meter: &Meter) -> String {
        let mut o = format!("{}: ", self.stages.join(", "));
        let _ = write!(
            o,
            "image {:.0} % delivered to {} {}",
            self.fraction() * 100.0,
            self.onus,
            plural(self.onus, "ONU", "ONUs")
        );
        if let Some(rate) = meter.rate() {
            let bytes = rate * self.image_len as f64;
            let _ = write!(o, " ({}/s to each", human_bytes(bytes));
            if let Some(left) = meter.left(self.fraction()) {
                let _ = write!(o, ", about {} left", human_time(left));
            }
            o.push(')');
        }
        let running: Vec<String> = self
            .phases
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect();
        let done: Vec<String> = self
            .results
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        let _ = write!(
            o,
            " | {} | {} | frames: {} to the group, {} unicast; {} {}, {} {}",
            if running.is_empty() {
                "none at work".to_string()
            } else {
                running.join(", ")
            },
            if done.is_empty() {
                "none finished".to_string()
            } else {
                done.join(", ")
            },
            self.frames_group,
            self.frames_unicast,
            self.repairs,
            plural(self.repairs as usize, "repair", "repairs"),
            self.retries,
            plural(self.retries as usize, "retry", "retries"),
        );
        o
    }
}

/// Where a campaign is, in words.
fn stage_words(c: &Campaign) -> String {
    match c.stage() {
        Stage::Survey => "survey".to_string(),
        Stage::Wave(n) if c.waves().len() > 1 => format!(
            "wave {}/{} ({} {})",
            n + 1,
            c.waves().len(),
            c.waves()[*n].len(),
            plural(c.waves()[*n].len(), "ONU", "ONUs")
        ),
        Stage::Wave(_) => "rollout".to_string(),
        Stage::Halting(..) => "halting".to_string(),
        Stage::Halted(_) => "halted".to_string(),
        Stage::Completed => "completed".to_string(),
    }
}

/// The rate of progress, over the last [`Meter::SPAN`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Meter {
    samples: VecDeque<(Instant, f64)>,
}

impl Meter {
    /// How far back the rate looks.
    pub(crate) const SPAN: Duration = Duration::from_secs(10);

    /// The share delivered is `fraction` at `now`.
    pub(crate) fn update(&mut self, now: Instant, fraction: f64) {
        self.samples.push_back((now, fraction));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > Self::SPAN)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    /// Share of the image delivered per second, once there is something to measure.
    pub(crate) fn rate(&self) -> Option<f64> {
        let (t0, f0) = *self.samples.front()?;
        let (t1, f1) = *self.samples.back()?;
        let dt = t1.saturating_duration_since(t0).as_secs_f64();
        (dt >= 0.5 && f1 > f0).then(|| (f1 - f0) / dt)
    }

    /// The time left to deliver the rest, at the current rate.
    pub(crate) fn left(&self, fraction: f64) -> Option<Duration> {
        let rate = self.rate()?;
        Duration::try_from_secs_f64((1.0 - fraction).max(0.0) / rate).ok()
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

fn human_bytes(b: f64) -> String {
    if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn human_time(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_measures_a_rate_and_the_time_left() {
        let t = Instant::now();
        let mut m = Meter::default();
        m.update(t, 0.0);
        assert_eq!(m.rate(), None, "one sample says nothing");
        m.update(t + Duration::from_secs(2), 0.2);
        let rate = m.rate().unwrap();
        assert!((rate - 0.1).abs() < 1e-9, "{rate}");
        assert_eq!(m.left(0.2), Some(Duration::from_secs(8)));
        let p = Progress {
            stages: vec!["rollout".into()],
            onus: 1,
            windows: (1, 5),
            image_len: 100_000,
            repairs: 1,
            ..Progress::default()
        };
        let line = p.line(&m);
        assert!(
            line.contains("image 20 % delivered to 1 ONU (10 kB/s to each, about 8 s left)"),
            "{line}"
        );
        assert!(line.contains("1 repair, 0 retries"), "{line}");
    }
}
