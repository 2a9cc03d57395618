//! # conformance: the lab's conformance suites, as sans-IO state machines
//!
//! Protocol conformance is one reason to use the lab: point it at an ONU and get a verdict per
//! G.988 rule, or let an ONU watch an OLT upgrade it and record every rule the OLT breaks.
//! The suites live here, on the OMCI codec and the `pon` crate only: neither knows the lab's
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
//!
//! Who may touch what: the `olt` crate runs the ONU suite through [`driver`]; the in-process
//! tests drive its face directly. Nothing here reads the clock except [`driver`].

mod onu_suite;

pub mod driver;

pub use onu_suite::{
    CATALOGUE, Check, CheckSpec, OnuSuite, Report, Stopped, SuiteError, Target, Verdict,
};
