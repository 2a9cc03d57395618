//! The summary `olt rollout` prints: one line per ONU, then the counts and the campaign's end.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::campaign::{Campaign, Stage};
use crate::engine::Mode;
use crate::image::UpgradeImage;
use crate::report::OnuResult;

/// Prints the summary of `c`.
pub(super) fn print_summary(c: &Campaign, image: &UpgradeImage, mode: Mode, elapsed: Duration) {
    println!(
        "{} rollout of {} ({} bytes) to {} ONUs in {:.1} s",
        match mode {
            Mode::Multicast => "Multicast",
            Mode::Unicast => "Unicast",
        },
        image.header.version,
        image.len(),
        c.records().len(),
        elapsed.as_secs_f64()
    );
    let waves = c.waves().len() > 1;
    println!(
        "{:>5} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  note",
        "ONU", "wave", "result", "from", "committed", "active", "frames", "repairs"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, r) in c.records() {
        let (result, why) = OnuResult::at_end(r, c.stage());
        let name = result.word();
        *counts.entry(name).or_insert(0) += 1;
        println!(
            "{:>5} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  {}",
            id.0,
            match (waves, r.wave) {
                (true, Some(w)) => (w + 1).to_string(),
                _ => "-".into(),
            },
            name,
            r.from_version.as_deref().unwrap_or("?"),
            r.committed_version.as_deref().unwrap_or("?"),
            r.active_version.as_deref().unwrap_or("?"),
            r.stats.frames,
            r.stats.repaired_windows,
            why
        );
    }
    let counters = c.counters();
    let unicast: u64 = c.records().values().map(|r| r.stats.frames).sum();
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let mut line = format!(
        "{} upgraded, {} skipped, {} failed",
        n("upgraded"),
        n("skipped"),
        n("failed") + n("unfinished")
    );
    for k in ["refused", "halted", "untouched"] {
        if n(k) > 0 {
            line += &format!(", {} {k}", n(k));
        }
    }
    println!(
        "{line}; frames sent: {} multicast, {} unicast",
        counters.frames_multicast, unicast
    );
    match c.stage() {
        Stage::Halted(why) => println!("Campaign HALTED: {why}"),
        Stage::Completed if waves => println!(
            "Campaign completed: canary wave of {}, then {}",
            c.waves()[0].len(),
            c.waves()[1..].iter().map(Vec::len).sum::<usize>()
        ),
        _ => {}
    }
}
