//! The summary `olt rollout` prints: one line per ONU, then the counts and the campaign's end.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::campaign::Stage;
use crate::driver::Campaigns;
use crate::engine::Mode;
use crate::image::UpgradeImage;
use crate::report::OnuResult;

/// Prints the summary of `campaigns` (one per PON port).
pub(super) fn print_summary(
    campaigns: &Campaigns,
    image: &UpgradeImage,
    mode: Mode,
    elapsed: Duration,
) {
    let several = campaigns.len() > 1;
    let total: usize = campaigns.values().map(|c| c.records().len()).sum();
    println!(
        "{} rollout of {} ({} bytes) to {} ONUs{} in {:.1} s",
        match mode {
            Mode::Multicast => "Multicast",
            Mode::Unicast => "Unicast",
        },
        image.header.version,
        image.len(),
        total,
        if several {
            format!(" on {} PON ports", campaigns.len())
        } else {
            String::new()
        },
        elapsed.as_secs_f64()
    );
    let waves = campaigns.values().any(|c| c.waves().len() > 1);
    println!(
        "{:>5} {:<12} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  note",
        "ONU", "serial", "wave", "result", "from", "committed", "active", "frames", "repairs"
    );
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut multicast, mut unicast) = (0, 0);
    for (pon, c) in campaigns {
        for (id, r) in c.records() {
            let (result, why) = OnuResult::at_end(r, c.stage());
            let name = result.word();
            *counts.entry(name).or_insert(0) += 1;
            let onu = if several {
                format!("{}/{}", pon.0, id.0)
            } else {
                id.0.to_string()
            };
            println!(
                "{onu:>5} {:<12} {:>4}  {:<10} {:<10} {:<10} {:<10} {:>7} {:>8}  {}",
                r.serial.as_deref().unwrap_or("?"),
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
        multicast += c.counters().frames_multicast;
        unicast += c.records().values().map(|r| r.stats.frames).sum::<u64>();
    }
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let mut line = format!(
        "{} upgraded, {} skipped, {} failed",
        n("upgraded"),
        n("skipped"),
        n("failed") + n("unfinished")
    );
    for k in ["downloaded", "activated", "refused", "halted", "untouched"] {
        if n(k) > 0 {
            line += &format!(", {} {k}", n(k));
        }
    }
    println!("{line}; frames sent: {multicast} multicast, {unicast} unicast");
    for (pon, c) in campaigns {
        let at = if several {
            format!(" ({pon})")
        } else {
            String::new()
        };
        match c.stage() {
            Stage::Halted(why) => println!("Campaign{at} HALTED: {why}"),
            Stage::Completed if c.waves().len() > 1 => println!(
                "Campaign{at} completed: canary wave of {}, then {}",
                c.waves()[0].len(),
                c.waves()[1..].iter().map(Vec::len).sum::<usize>()
            ),
            _ => {}
        }
        if !c.deltas().is_empty() {
            let bytes = c.package_bytes();
            let deltas = c
                .records()
                .values()
                .filter(|r| matches!(r.package, Some(crate::campaign::Package::Delta { .. })))
                .count();
            let fell_back = c.records().values().filter(|r| r.fell_back).count();
            println!(
                "Packages{at}: {deltas} ONUs kept a delta, {fell_back} fell back to the full image; {} bytes of packages sent, against {} without deltas",
                bytes.sent, bytes.full_image_cost
            );
        }
    }
}
