//! The story of a rollout, told from the OLT's captures.
//!
//! ## Map
//!
//! Each file is one room; only this file's `pub use` is seen from outside.
//!
//! | file | what lives there | used by |
//! |---|---|---|
//! | `frame.rs` | [`Frame`], [`Body`], [`ImageState`]: one OMCI frame of a capture, owned | every room |
//! | `capture.rs` | [`read_frames`]: the capture files read into frames, with what each frame's envelope said; [`merge_captures`]: the files of every OLT life joined into one | the runner |
//! | `windows.rs` | the analysis: bursts of Download sections, their windows, the ONUs' answers, the events in capture order | `mermaid`, `explain`, `summary` |
//! | `phases.rs` | the phases of an upgrade and what the OLT has done with one ONU so far (`OnuState`), boot announcements | `mermaid`, `explain`, `prose` |
//! | `wording.rs` | words both outputs share: names of MEs, images, results, ranges, one line per frame or burst | every output room |
//! | `mermaid.rs` | [`mermaid`]: the sequence diagram | the runner |
//! | `explain.rs` | [`explain`]: the narration of one ONU, item by item | the runner |
//! | `prose.rs` | the narration's sentences: a frame in long words, why each phase exists, remarks after answers, paragraph wrapping | `explain`, `summary` |
//! | `summary.rs` | the download told by windows, in the narration | `explain` |
//! | `tests.rs` | a scripted rollout written to a capture, and what both outputs must say of it | |
//!
//! ## What it tells
//!
//! The scenario runner has the OLT write a capture of every OMCI frame it sent and received (one
//! file per OLT life: a restarted OLT writes a second file). This module reads those files
//! ([`read_frames`]) and tells what happened twice over:
//!
//! - [`mermaid`]: a Markdown ```` ```mermaid ```` sequence diagram of the whole upgrade as the
//!   OLT saw it, between the OLT, the multicast group and up to three ONUs. The Download
//!   sections of one window become one arrow, and the ONU's answer to the window one arrow
//!   back, so that a 1 MiB image stays readable; a diagram that would still hold more than
//!   about 400 arrows keeps its beginning and its end.
//! - [`explain`]: a plain-text walk through one ONU's upgrade for someone new to PON: each
//!   phase, why it exists, each message by its G.988 name, with times.
//!
//! Both stand on one analysis of the capture (`windows.rs`): the Download sections grouped
//! into windows, and each ONU's answer tied to the window it answers. The capture keeps each
//! frame's transport envelope (docs/wire.md), so the window numbers, window CRCs and missing
//! sections are the envelope's, read and not guessed; only a capture without envelopes
//! (strict G.988) has its windows counted, as a G.988 ONU counts them.

mod capture;
mod explain;
mod frame;
mod mermaid;
mod phases;
mod prose;
mod summary;
mod windows;
mod wording;

#[cfg(test)]
mod tests;

pub use capture::{merge_captures, read_frames};
pub use explain::explain;
pub use frame::{Body, Frame, ImageState};
pub use mermaid::mermaid;
