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
//! - [`journal`]: the campaign journal on disk (format 2: every PON port's ONUs, their stage and
//!   result as enums), what `olt rollout` resumes from after a crash or with `--retry-failed`.
//! - [`report`]: the typed report an OLT writes at the end of a job ([`report::Report`], format
//!   `olt-report` version 3: each ONU's phases on a timeline, each port's window progress),
//!   which the scenario runner and the benchmarks read back.
//! - [`html`]: the picture of a rollout, a self-contained HTML page drawn from a report
//!   (`olt rollout --html`, `scenario run --html`).
//! - `progress` (private): the progress bar and the five-second lines of a rollout.
//! - `tci` (private): the named transaction-id ranges (unicast sessions, group downloads) and
//!   their random start.
//!

pub mod campaign;
pub mod cli;
pub mod driver;
pub mod engine;
pub mod fleet_api;
pub mod html;
pub mod image;
pub mod journal;
pub mod limits;
mod progress;
pub mod report;
pub mod session;
mod tci;
pub mod worker;
