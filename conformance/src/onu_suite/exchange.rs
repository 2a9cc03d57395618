//! The exchange: what the suite's checks and its sans-IO face share, and the two things a check
//! can wait for. It does no I/O and reads no clock.
//!
//! The checks are sequential async code ([`super::checks`]). When one sends a request, the
//! datagram goes to the outbox, from which the face's caller takes it
//! ([`super::OnuSuite::poll_transmit`]). When one waits, for the ONU's next datagram or for a
//! moment to pass, it gets a future that stays pending until the face is fed a datagram
//! ([`super::OnuSuite::handle_datagram`]) or the time it is given reaches the deadline
//! ([`super::OnuSuite::handle_timeout`]); the face then polls the checks again, with a waker
//! that does nothing (nothing but the face ever resumes them).
//!
//! ```text
//!   caller ──datagram, now──▶ face ──▶ inbox ──▶ wait(deadline) ──▶ checks
//!   caller ◀──datagram─────── face ◀── outbox ◀── send ◀──────────── checks
//!   caller ◀──poll_timeout─── face ◀── wake_at (the deadline of the pending wait)
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::catalogue::CATALOGUE;
use super::report::{Check, RunEnd, Verdict};

/// The shared state. One per suite run; the face and the checks each hold an [`Exchange`].
#[derive(Debug)]
struct State {
    /// The time of the latest input: the suite's clock, never read from the system.
    now: Instant,
    /// Datagrams from the ONU that no wait has taken yet (a socket's receive queue: a datagram
    /// that arrives while a check sleeps is there for its next wait).
    inbox: VecDeque<Vec<u8>>,
    /// Datagrams for the ONU that the caller has not taken yet.
    outbox: VecDeque<Vec<u8>>,
    /// When the pending wait gives up: the face's next deadline.
    wake_at: Option<Instant>,
    /// Every check so far, with its verdict: what a report is made of at any moment, even when
    /// the run stops early.
    checks: Vec<Check>,
    /// How the run ended, once it has.
    end: Option<RunEnd>,
}

/// A handle on the exchange (cheap to clone; single-threaded, like the suite it serves).
#[derive(Clone, Debug)]
pub(super) struct Exchange(Rc<RefCell<State>>);

impl Exchange {
    /// An empty exchange whose clock starts at `now`.
    pub(super) fn new(now: Instant) -> Exchange {
        Exchange(Rc::new(RefCell::new(State {
            now,
            inbox: VecDeque::new(),
            outbox: VecDeque::new(),
            wake_at: None,
            checks: Vec::new(),
            end: None,
        })))
    }

    // ---------------------------------------------------------------- the checks' side

    /// The suite's clock.
    pub(super) fn now(&self) -> Instant {
        self.0.borrow().now
    }

    /// Queues `datagram` for the ONU.
    pub(super) fn send(&self, datagram: Vec<u8>) {
        self.0.borrow_mut().outbox.push_back(datagram);
    }

    /// The ONU's next datagram, or `None` once the clock reaches `deadline` without one.
    pub(super) fn recv_until(&self, deadline: Instant) -> Wait {
        Wait {
            exchange: self.clone(),
            until: deadline,
            for_datagram: true,
        }
    }

    /// Completes once `d` has passed on the suite's clock (datagrams meanwhile stay queued).
    pub(super) fn sleep(&self, d: Duration) -> Wait {
        Wait {
            exchange: self.clone(),
            until: self.now() + d,
            for_datagram: false,
        }
    }

    /// Records a check and its verdict.
    pub(super) fn record(&self, check: Check) {
        self.0.borrow_mut().checks.push(check);
    }

    /// How the run ended.
    pub(super) fn set_end(&self, end: RunEnd) {
        self.0.borrow_mut().end = Some(end);
    }

    /// How the run ended, once it has.
    pub(super) fn end(&self) -> Option<RunEnd> {
        self.0.borrow().end.clone()
    }

    /// Gives every check of the catalogue that has no verdict yet the error `why`, in
    /// catalogue order: a report is complete however the run ended.
    pub(super) fn fill_remaining(&self, why: &str) {
        for spec in CATALOGUE {
            if !self.has(spec.id) {
                self.record(Check {
                    id: spec.id.into(),
                    title: spec.title.into(),
                    source: spec.source.into(),
                    sent: String::new(),
                    verdict: Verdict::Error { why: why.into() },
                    seconds: 0.0,
                });
            }
        }
    }

    /// The id of the check recorded last.
    pub(super) fn last_id(&self) -> Option<String> {
        self.0.borrow().checks.last().map(|c| c.id.to_string())
    }

    /// Gives the check recorded last another verdict (an error: the target it judged had
    /// stopped answering).
    pub(super) fn amend_last(&self, verdict: Verdict) {
        if let Some(c) = self.0.borrow_mut().checks.last_mut() {
            c.verdict = verdict;
        }
    }

    /// True when a check of this id has a verdict.
    pub(super) fn has(&self, id: &str) -> bool {
        self.0.borrow().checks.iter().any(|c| c.id == id)
    }

    // ---------------------------------------------------------------- the face's side

    /// Moves the clock to `now` (never backwards).
    pub(super) fn advance(&self, now: Instant) {
        let mut s = self.0.borrow_mut();
        s.now = s.now.max(now);
    }

    /// A datagram from the ONU arrived.
    pub(super) fn deliver(&self, datagram: &[u8]) {
        self.0.borrow_mut().inbox.push_back(datagram.to_vec());
    }

    /// The next datagram for the ONU.
    pub(super) fn take_transmit(&self) -> Option<Vec<u8>> {
        self.0.borrow_mut().outbox.pop_front()
    }

    /// The deadline of the pending wait.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.0.borrow().wake_at
    }

    /// No wait is pending any more (the checks ended).
    pub(super) fn clear_wake(&self) {
        self.0.borrow_mut().wake_at = None;
    }

    /// The checks so far.
    pub(super) fn checks(&self) -> Vec<Check> {
        self.0.borrow().checks.clone()
    }
}

/// A wait for the ONU's next datagram (`for_datagram`) or for the clock alone, until `until`.
#[derive(Debug)]
pub(super) struct Wait {
    exchange: Exchange,
    until: Instant,
    for_datagram: bool,
}

impl Future for Wait {
    /// The datagram, for a datagram wait that got one.
    type Output = Option<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.exchange.0.borrow_mut();
        if self.for_datagram
            && let Some(d) = s.inbox.pop_front()
        {
            s.wake_at = None;
            return Poll::Ready(Some(d));
        }
        if s.now >= self.until {
            s.wake_at = None;
            return Poll::Ready(None);
        }
        // No waker is kept: the face polls the checks again after every input.
        s.wake_at = Some(self.until);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn a_wait_ends_with_a_datagram_or_at_its_deadline_and_never_before() {
        let t0 = Instant::now();
        let x = Exchange::new(t0);
        let mut w = x.recv_until(t0 + Duration::from_secs(1));
        assert_eq!(poll(&mut w), Poll::Pending);
        assert_eq!(x.wake_at(), Some(t0 + Duration::from_secs(1)));
        x.advance(t0 + Duration::from_millis(999));
        assert_eq!(poll(&mut w), Poll::Pending);
        x.deliver(b"answer");
        assert_eq!(poll(&mut w), Poll::Ready(Some(b"answer".to_vec())));
        assert_eq!(x.wake_at(), None);
        let mut w = x.recv_until(t0 + Duration::from_secs(1));
        x.advance(t0 + Duration::from_secs(1));
        assert_eq!(poll(&mut w), Poll::Ready(None));
    }

    #[test]
    fn a_sleep_leaves_datagrams_for_the_next_wait() {
        let t0 = Instant::now();
        let x = Exchange::new(t0);
        let mut s = x.sleep(Duration::from_millis(100));
        x.deliver(b"early");
        assert_eq!(poll(&mut s), Poll::Pending);
        x.advance(t0 + Duration::from_millis(100));
        assert_eq!(poll(&mut s), Poll::Ready(None));
        let mut w = x.recv_until(t0);
        assert_eq!(poll(&mut w), Poll::Ready(Some(b"early".to_vec())));
    }
}
