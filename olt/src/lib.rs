//! # olt: the OLT controller of the lab
//!
//! The OLT drives the G.988 software download, activate and commit of every ONU on a PON.
//!
//! ## Map
//! - [`image`]: the image being rolled out, held once in memory whatever the ONU count.
//! - [`session`]: one ONU's upgrade, a sans-IO state machine: Get, Start, windows, End (busy
//!   retries), Get, Activate, the reboot, Get, Commit, Get; timeouts and retries per message.
//! - [`engine`]: the PON: every session, transaction ids, the next deadline, what to send.
//! - [`campaign`]: waves over the engine: survey (model, version), canary wave, health gate,
//!   kill switch, and the journal a restarted OLT resumes from.
//! - [`driver`]: the tokio process around the engine (sockets, timer, signals).
//! - [`cli`]: the command line; `olt conform onu` runs the `conformance` crate's ONU suite.
//! - [`fleet_api`]: what a controller and the fleet service say to each other (HTTP/JSON).
//! - [`worker`]: `olt worker`, the OLT as one controller of a fleet: inventory, leases,
//!   results as they happen, the store in place of the journal.
//! - [`limits`]: the ranges of the OLT's settings, shared by its command line and the scenario
//!   files.
//!

pub mod campaign;
pub mod cli;
pub mod driver;
pub mod engine;
pub mod fleet_api;
pub mod image;
pub mod journal;
pub mod limits;
pub mod report;
pub mod session;
pub mod tci;
pub mod worker;
