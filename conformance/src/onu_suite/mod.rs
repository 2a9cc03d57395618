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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use omci_codec::{EmitError, OnuId};
use pon::image::UpgradeImage;

pub use catalogue::{CATALOGUE, CheckSpec};
pub use report::{Check, Report, Verdict};

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
}

/// Why a run ended before its last check. The checks that ran keep their verdicts
/// ([`OnuSuite::report`]).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// Neither Get of ONU-G nor of software image 0 was answered: nothing can be checked.
    #[error(
        "{target} does not answer (Get of ONU-G and of software image 0, {} ms each, twice)",
        timeout.as_millis()
    )]
    Silent {
        /// The target's name.
        target: String,
        /// The timeout of each Get.
        timeout: Duration,
    },
    /// SWI-01 failed: without both images nothing else can be checked.
    #[error("the ONU does not answer Get on both software images: nothing else can be checked")]
    NoSoftwareImages,
    /// A Get of a software image a later check needs was not answered with success.
    #[error("Get of software image {instance} failed")]
    GetFailed {
        /// The instance.
        instance: u16,
    },
    /// Both images are active or committed: there is nowhere to download to.
    #[error("no image is neither active nor committed")]
    NoStandby,
    /// The Start of the download the section checks go through was not accepted.
    #[error("Start software download answered {answer}: the download checks cannot run")]
    StartFailed {
        /// The answer, as the codec decoded it (or `None`).
        answer: String,
    },
    /// Without the extended message set, the download the activation checks need failed.
    #[error("the final download failed ({why}): the activation checks cannot run")]
    FinalDownloadFailed {
        /// What went wrong.
        why: String,
    },
    /// A request could not be encoded (a bug of the suite).
    #[error("encoding a request: {0}")]
    Encode(#[from] EmitError),
}

/// A run that ended early: why, and the verdicts of the checks that ran.
#[derive(Debug)]
pub struct Stopped {
    /// Why.
    pub error: SuiteError,
    /// The checks that ran.
    pub report: Report,
}

/// The checks, as the face polls them.
type Checks = Pin<Box<dyn Future<Output = Result<(), SuiteError>>>>;

/// One run of the ONU suite against one ONU (see the module docs).
pub struct OnuSuite {
    exchange: Exchange,
    /// The checks still running; `None` once they ended.
    checks: Option<Checks>,
    /// Why they ended early, if they did.
    error: Option<SuiteError>,
    /// The report's name for the target.
    target: String,
}

impl std::fmt::Debug for OnuSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnuSuite")
            .field("target", &self.target)
            .field("finished", &self.is_finished())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl OnuSuite {
    /// A run against `target` starting at `now`: its first request is ready to send.
    pub fn new(target: Target, now: Instant) -> OnuSuite {
        let exchange = Exchange::new(now);
        let name = target.name.clone();
        let client = client::Client::new(exchange.clone(), target);
        let mut suite = OnuSuite {
            exchange,
            checks: Some(Box::pin(checks::run(client))),
            error: None,
            target: name,
        };
        suite.resume();
        suite
    }

    /// A datagram from the ONU (envelope and OMCI frame) arrived at `now`.
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

    /// The next datagram for the ONU's OMCC.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.exchange.take_transmit()
    }

    /// When [`OnuSuite::handle_timeout`] must next be called; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.exchange.wake_at()
    }

    /// True once the last check ran, or the run stopped early ([`OnuSuite::error`]).
    pub fn is_finished(&self) -> bool {
        self.checks.is_none()
    }

    /// Why the run stopped early, if it did.
    pub fn error(&self) -> Option<&SuiteError> {
        self.error.as_ref()
    }

    /// The verdicts so far (all of them once finished).
    pub fn report(&self) -> Report {
        Report::new(self.target.clone(), self.exchange.checks())
    }

    /// The report of a finished run, or why it stopped early with the verdicts it had.
    pub fn finish(self) -> Result<Report, Box<Stopped>> {
        let report = self.report();
        match self.error {
            None => Ok(report),
            Some(error) => Err(Box::new(Stopped { error, report })),
        }
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
            self.error = end.err();
        }
    }
}
