//! # onu: an emulated GPON ONU
//!
//! The ONU side of the lab: what a careful, real ONU does when an OLT upgrades its software
//! over OMCI, including what happens when power fails in the middle.
//!
//! ## Map
//! - The lab's firmware image format lives in `pon::firmware` (shared with the OLT).
//! - [`cli`]: the `onu` command line (run, image, status).
pub mod boot;
pub mod cli;
pub mod core;
pub mod driver;
pub mod faults;
pub mod flash;
pub mod meta;
pub mod status;
