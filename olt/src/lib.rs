//! # olt: the OLT controller of the lab
//!
//! The OLT drives the G.988 software download, activate and commit of every ONU on a PON.
//!
//! ## Map
//! - [`image`]: the image being rolled out, held once in memory whatever the ONU count.
//! - [`session`]: one ONU's upgrade, a sans-IO state machine: Get, Start, windows, End (busy
//!   retries), Get, Activate, the reboot, Get, Commit, Get; timeouts and retries per message.
//! - [`engine`]: the PON: every session, transaction ids, the next deadline, what to send.
//!
//! Where it stands: the unicast download (the standard per-ONU procedure of open OLT stacks,
//! all ONUs in parallel) runs in-process against real ONU cores. The multicast mode, campaigns,
//! the tokio driver and the `olt` binary come next (issue 4).

pub mod driver;
pub mod engine;
pub mod image;
pub mod session;
