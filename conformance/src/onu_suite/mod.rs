//! The ONU suite as a sans-IO client: it checks one ONU against the G.988 software-download
//! rules by talking to it as an OLT would, and reports a verdict per check.
//!
//! [`OnuSuite`] takes the ONU's datagrams ([`OnuSuite::handle_datagram`]) and the passing of
//! time ([`OnuSuite::handle_timeout`]), both with `now` given by the caller, and yields the
//! datagrams to send to the ONU's OMCC ([`OnuSuite::poll_transmit`]) and its next deadline
//! ([`OnuSuite::poll_timeout`]). It owns no socket and reads no clock: the same run goes
//! against a real ONU through [`super::driver`], or against ONU cores in-process on virtual
//! time.
//!
//! Inside, the checks are plain sequential async code ([`checks`]) over a [`client::Client`]
//! whose [`exchange::Exchange`] does no I/O; the face polls them with a waker that does
//! nothing after every input, and they run until they wait for the next answer or moment.

mod catalogue;
mod checks;
mod client;
mod exchange;
mod report;
mod words;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use omci_codec::{EmitError, OnuId};
use pon::image::UpgradeImage;
use pon::transport::Framing;

pub use catalogue::{CATALOGUE, CheckSpec};
pub use report::{Check, FORMAT, FORMAT_VERSION, JUNIT_SUITE, Report, RunEnd, Verdict};

use exchange::Exchange;

/// The ONU under test and what to send it.
#[derive(Clone, Debug)]
pub struct Target {
    /// How the report names the ONU (e.g. `ONU 1 at 127.0.0.1:46001`).
    pub name: String,
    /// Its ONU-ID, in the envelope of every request.
    pub onu: OnuId,
    /// An image it accepts: its model, signed with a key it trusts, a security version at or
    /// above its anti-rollback floor. The suite downloads it several times and leaves the ONU
    /// running it, committed.
    pub image: UpgradeImage,
    /// How long to wait for an answer (a request goes twice before it counts as unanswered).
    pub timeout: Duration,
    /// How long the ONU may take to reboot.
    pub reboot_timeout: Duration,
    /// The ONU has a voice call in progress (`onu run --voice-call`): run ACT-02.
    pub call_in_progress: bool,
    /// The ONU has an emergency call in progress (`onu run --emergency-call`): run ACT-05.
    pub emergency_call_in_progress: bool,
    /// How the datagrams are framed: the lab's envelope, or the OB-BAA framing (on which the
    /// checks of the trailer and of the lab's window CRC are skipped).
    pub framing: Framing,
}

/// Why the suite could not go on: a bug of the suite, never the target's doing (what the
/// target does is in the verdicts). The report then ends [`RunEnd::Internal`], every check
/// not run an error.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A request could not be encoded.
    #[error("encoding a request: {0}")]
    Encode(#[from] EmitError),
    /// The framing refused a request the suite built for it.
    #[error("framing a request: {0}")]
    Framing(String),
}

/// The checks, as the face polls them.
type Checks = Pin<Box<dyn Future<Output = Result<(), SuiteError>>>>;

/// One run of the ONU suite against one ONU (see the module docs).
pub struct OnuSuite {
    exchange: Exchange,
    /// The checks still running; `None` once they ended.
    checks: Option<Checks>,
    /// The report's name for the target.
    target: String,
    /// The framing, for the report.
    transport: pon::transport::TransportKind,
}

impl std::fmt::Debug for OnuSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnuSuite")
            .field("target", &self.target)
            .field("finished", &self.is_finished())
            .field("end", &self.exchange.end())
            .finish_non_exhaustive()
    }
}

impl OnuSuite {
    /// A run against `target` starting at `now`: its first request is ready to send.
    pub fn new(target: Target, now: Instant) -> OnuSuite {
        let exchange = Exchange::new(now);
        let name = target.name.clone();
        let transport = target.framing.kind();
        let client = client::Client::new(exchange.clone(), target);
        let mut suite = OnuSuite {
            exchange,
            checks: Some(Box::pin(checks::run(client))),
            target: name,
            transport,
        };
        suite.resume();
        suite
    }

    /// A datagram from the ONU arrived at `now`, as it came off the wire (in the target's
    /// framing).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        if self.is_finished() {
            return;
        }
        self.exchange.advance(now);
        self.exchange.deliver(datagram);
        self.resume();
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_finished() {
            return;
        }
        self.exchange.advance(now);
        self.resume();
    }

    /// The next datagram for the ONU's OMCC, in the target's framing.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.exchange.take_transmit()
    }

    /// When [`OnuSuite::handle_timeout`] must next be called; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.exchange.wake_at()
    }

    /// True once every check has its verdict.
    pub fn is_finished(&self) -> bool {
        self.checks.is_none()
    }

    /// How many checks have a verdict so far.
    pub fn checks_done(&self) -> usize {
        self.exchange.checks().len()
    }

    /// The verdicts so far (every check's once finished) and how the run ended
    /// ([`RunEnd::Running`] until it has).
    pub fn report(&self) -> Report {
        let end = self.exchange.end().unwrap_or(RunEnd::Running);
        Report::new(
            self.target.clone(),
            self.transport,
            end,
            self.exchange.checks(),
        )
    }

    /// How the run ended, once it has.
    pub fn end(&self) -> Option<RunEnd> {
        self.exchange.end()
    }

    /// Stops the run where it is because the caller cannot go on (its socket failed): every
    /// check without a verdict gets the error `why`, and the run ends [`RunEnd::Internal`].
    pub fn abandon(&mut self, why: &str) {
        if self.is_finished() {
            return;
        }
        self.checks = None;
        self.exchange.clear_wake();
        self.exchange.fill_remaining(why);
        self.exchange.set_end(RunEnd::Internal { why: why.into() });
    }

    /// The report of a finished run (see [`OnuSuite::report`]).
    pub fn finish(self) -> Report {
        self.report()
    }

    /// Runs the checks until they wait for the next datagram or moment.
    fn resume(&mut self) {
        let Some(checks) = self.checks.as_mut() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(end) = checks.as_mut().poll(&mut cx) {
            self.checks = None;
            self.exchange.clear_wake();
            if let Err(e) = end {
                // A bug of the suite: every check not run yet says so.
                let why = format!("the suite stopped: {e}");
                self.exchange.fill_remaining(&why);
                self.exchange.set_end(RunEnd::Internal { why });
            }
        }
    }
}
