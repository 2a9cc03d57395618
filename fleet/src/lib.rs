//! # fleet: one campaign across many OLTs
//!
//! The fleet service holds the inventory (OLTs, their PON ports, ONUs by serial number, as
//! their controllers report them), packages (a manifest and its image, full or delta),
//! campaigns (targets, a canary wave across the whole fleet, cascading groups, a health gate,
//! a fleet-wide kill switch, a scheduled start, a cap on PONs downloading at once), each ONU's
//! result with its times and reason, and the events the OLTs report. Its state lives in a
//! database: SQLite by default, PostgreSQL when given a URL. OLT controllers (`olt worker`)
//! claim their PONs' work under leases over HTTP; docs/fleet.md tells the whole story.
//!
//! ## Map
//! - [`model`]: the vocabulary: campaigns, waves, work, results; every state an enum.
//! - [`plan`]: the campaign logic, sans-IO: targets, waves, the next change of a campaign's
//!   rows at a given time, which work a controller may claim. No clock, no database.
//! - [`store`]: the database (sqlx, SQLite or PostgreSQL, one schema and its migrations): the
//!   rows [`plan`] reads, its changes applied in transactions, leases, results, the audit log.
//! - [`auth`]: the tokens (operator, controller, viewer), made at first start, kept 0600.
//! - [`api`]: the HTTP API (axum), the dashboard page, the ticker that drives campaigns.
//! - [`cli`]: the `fleet` command line (`fleet serve`, and the API's client commands, through
//!   the one client of the API, `olt::worker::FleetClient`).
//!
//! Only [`api`] reads the clock (once per request or tick); everything below takes `now`.

pub mod api;
pub mod auth;
pub mod cli;
pub mod model;
pub mod plan;
pub mod store;
