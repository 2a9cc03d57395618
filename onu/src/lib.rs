//! # onu: an emulated GPON ONU
//!
//! The ONU side of the lab: what a careful, real ONU does when an OLT upgrades its software
//! over OMCI, including what happens when power fails in the middle.
//!
//! ## Map
//! - [`core`]: the sans-IO state machine that answers OMCI (one room per job inside: the
//!   software download, the image checks at End, activate/commit/reboot, the Get answers,
//!   the answers on the wire, the plumbing).
//! - [`boot`]: the bootloader: which image runs, fallbacks, recovery with the golden image, and
//!   the anti-rollback floor's one rule (docs/decisions.md).
//! - [`meta`] and [`flash`]: the flash: the metadata record (two copies) and the two slots.
//! - [`faults`]: the named power-loss points.
//! - [`driver`]: the tokio driver of one ONU process (sockets, clock, signals), and what it
//!   feeds the `--check-olt` observer.
//! - [`status`]: `onu status`, the flash read offline by the real bootloader.
//! - The lab's firmware image format lives in `pon::firmware` (shared with the OLT).
//! - [`cli`]: the `onu` command line (run, image, status).
//!
//! The firmware image format itself is `pon::firmware` (shared with the OLT and the tools).
pub mod boot;
pub mod cli;
pub mod core;
pub mod driver;
pub mod faults;
pub mod flash;
pub mod meta;
pub mod status;
