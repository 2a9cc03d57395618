//! # harness: what the end-to-end suites share
//!
//! - [`sim`]: one simulated PON for every in-process test (a controller, the OLT engine or the
//!   ONU conformance suite, and real ONU cores, each with an OLT observer if asked, over a
//!   seeded lossy network, on a virtual clock that jumps to the next deadline).
//! - [`images`]: signed test images built on the fly.
//! - [`targets`]: scripted targets for the conformance suite (an ONU that answers "not
//!   supported" to the software download, the MIB our ONU does not have yet, with flaws,
//!   garbage), in front of real ONU cores.
//! - [`browser`]: a real headless Chromium for the tests that check a page (found on the
//!   PATH; skipped in one line without it, unless `LAB_REQUIRE_BROWSER=1`).
//! - [`process`]: real processes on loopback: the lab's tools built with the tests
//!   ([`tools!`]), children stopped however a test ends, free ports, the scenario library.
//! - [`relay`]: a relay between the OB-BAA framing and the lab's envelope, standing where the
//!   ONU's own OB-BAA framing will, so that the OLT's and the suite's side can be tested
//!   against the lab's `onu` processes.
//!
//! The suites themselves are the files beside this folder: `pon.rs` (the OLT engine against ONU
//! cores), `sweep.rs` (recovery from a fault at every moment), `conformance_sim.rs` (the
//! conformance suites against ONU cores), and `processes.rs`, `campaigns.rs`,
//! `conformance.rs`, `onu_processes.rs`, `library.rs`, `hostile.rs` (forged and impossible
//! answers against a real OLT) and `quickstart.rs` (real processes).

#![allow(missing_docs)]

pub mod browser;
pub mod fleet;
pub mod images;
pub mod process;
pub mod relay;
pub mod sim;
pub mod targets;
