//! # scenarios: scripted rollouts of the lab
//!
//! A scenario file (TOML, [`spec`]) says how many ONUs, which image, which faults and what
//! must hold at the end; [`run`] runs it with real `olt` and `onu` processes on loopback,
//! injects the faults, reads every ONU's flash back and checks the expectations; [`narrate`]
//! turns the OLT's capture into a sequence diagram and a step-by-step explanation; [`soak`]
//! runs many random fault cases; [`mod@bench`] measures rollouts against the machine's own limit.
//!
//! ## Map
//! - [`spec`]: the scenario file (TOML): topology, image, OLT, faults, expectations; every value
//!   range-checked as it is read, errors with their line and key.
//! - [`run`]: the runner: plan, processes (the ONUs' power supply), faults, the OLT, the flash
//!   read back, the expectations checked, the summary.
//! - [`narrate`]: a capture made readable: decoding, windows, phases, wording, the Mermaid
//!   sequence diagram and the step-by-step explanation.
//! - [`soak`]: many random fault cases, each retried, counted (upgraded, bricked, data lost).
//! - [`mod@bench`]: the loopback multicast limit and rollouts at several ONU counts.
//! - [`projection`] and [`project`]: the real OLT engine and ONU cores over a GPON timing model
//!   on a virtual clock (`scenario project`).
//! - [`demo`]: `scenario demo`, the main job without a scenario file.
//! - [`library`]: the scenarios of `scenarios/*.toml`, found by name (`scenario list`, `run NAME`).
//! - [`cli`]: the `scenario` command line (it also carries the `olt` and `onu` tools).

pub mod bench;
pub mod cli;
pub mod demo;
pub mod library;
pub mod narrate;
pub mod project;
pub mod projection;
pub mod run;
pub mod soak;
pub mod spec;
