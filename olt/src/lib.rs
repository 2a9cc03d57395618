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
//! - [`driver`]: the tokio process around the engine (sockets, timer, signals).
//!
//! Where it stands: both modes, the driver, `olt rollout` and `olt demo` work against real ONU
//! processes; campaigns (waves, health gate, kill switch, schedule, pacing, journal), the pcap
//! and the progress display come next (issue 4).

pub mod driver;
pub mod engine;
pub mod image;
pub mod session;
