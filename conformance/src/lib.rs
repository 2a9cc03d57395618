//! # conformance: the lab's conformance suites, as sans-IO state machines
//!
//! Protocol conformance is one reason to use the lab: point it at an ONU and get a verdict per
//! G.988 rule, or let an ONU watch an OLT upgrade it and record every rule the OLT breaks.
//! Both suites live here, on the OMCI codec and the `pon` crate only: neither knows the lab's
//! own OLT or ONU, so they judge any implementation that speaks the lab's transport
//! (docs/wire.md), and run in-process on virtual time as well as against real processes.
//!
//! ## Map
//! - `onu_suite`: the ONU suite (`olt conform onu`), a sans-IO client. [`OnuSuite`] takes
//!   the ONU's datagrams and the time, and yields requests for it and its next deadline; the
//!   44 checks run in order and build on one another. Inside, private rooms:
//!   - `catalogue`: every check's id, title and G.988 source, in order ([`CATALOGUE`]);
//!   - `checks`: the checks themselves, one file per topic (software image ME, errors,
//!     Start, Download section, End, activation), sequential async code;
//!   - `client`: the requests an OLT sends, each waiting for its answer;
//!   - `exchange`: what the checks and the face share (outbox, inbox, clock, the pending
//!     wait's deadline, the verdicts so far), and the waits that stay pending until the face
//!     is fed;
//!   - `report`: [`Report`], [`Check`], [`Verdict`], and the table, JUnit and JSON outputs.
//! - [`driver`]: the tokio driver that runs the ONU suite against a real ONU on a socket the
//!   caller binds (one `select!` over the socket and the next deadline).
//! - `olt_observer`: the OLT rules observer (`onu run --check-olt`). [`OltObserver`] is fed,
//!   by an ONU's driver, the datagrams the ONU takes in and sends and the few [`OnuFact`]s only
//!   the ONU knows; it counts every [`Violation`] of a [`Rule`] ([`RuleSummary`] per rule,
//!   every violation with [`Keep::Every`]), reported as an [`OltReport`]. Inside: `download`
//!   (the download rebuilt from the exchange, for the section rules), `requests` (TCI reuse
//!   and busy retries) and `tally` (what is kept of the rules broken).
//!
//! Who may touch what: the `olt` crate runs the ONU suite through [`driver`]; the `onu`
//! crate's driver feeds an [`OltObserver`]; the in-process tests drive both faces directly
//! (`tests/conformance_sim.rs`). Nothing here reads the clock except [`driver`].

mod olt_observer;
mod onu_suite;

pub mod driver;

pub use olt_observer::{
    BUSY_RETRY, IN_FLIGHT, Keep, OltObserver, OltReport, OnuFact, Rule, RuleSummary, Violation,
};
pub use onu_suite::{
    CATALOGUE, Check, CheckSpec, OnuSuite, Report, Stopped, SuiteError, Target, Verdict,
};
