//! What a run derives from the OLT's captures (one per OLT process): the merged pcap, the
//! Mermaid sequence diagram, and the narration of one ONU's upgrade for the summary.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::RunOptions;
use crate::spec::Scenario;

/// Writes the pcap and the diagram `opts` asks for, from the captures `pcaps` of a run of `n`
/// ONUs; returns what the summary shows: the narration and the diagram `s` asks for.
pub(super) fn write(
    s: &Scenario,
    opts: &RunOptions,
    n: u16,
    pcaps: &[PathBuf],
) -> Result<Option<String>> {
    let frames = crate::narrate::read_frames(pcaps).unwrap_or_default();
    if let Some(out) = &opts.pcap {
        crate::narrate::merge_captures(pcaps, out)?;
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
    Ok(explanation)
}
