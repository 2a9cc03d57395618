//! # scenarios: scripted rollouts of the lab
//!
//! A scenario file (TOML, [`spec`]) says how many ONUs, which image, which faults and what
//! must hold at the end; [`run`] runs it with real `olt` and `onu` processes on loopback,
//! injects the faults, reads every ONU's flash back and checks the expectations; [`narrate`]
//! turns the OLT's capture into a sequence diagram and a step-by-step explanation; [`soak`]
//! runs many random fault cases; [`mod@bench`] measures rollouts against the machine's own limit;
//! [`library`] finds the scenarios of `scenarios/*.toml` by name.

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
