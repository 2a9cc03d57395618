//! The rules about requests as transactions: a TCI is not reused while its first request may
//! still be answered (`tci-reused`), and End answered device busy is asked again
//! (`no-busy-retry`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a TCI stays "in flight": a request answered later than this is not waited for.
pub const IN_FLIGHT: Duration = Duration::from_secs(2);

/// How long after "device busy" an OLT must ask End again.
pub const BUSY_RETRY: Duration = Duration::from_secs(10);

/// What the transaction rules remember.
#[derive(Debug, Default)]
pub(super) struct Requests {
    /// Requests seen lately: when, their TCI, a digest of the frame without its TCI.
    recent: VecDeque<(Instant, u16, u64)>,
    /// End of this image was answered busy at this time, and no End came since.
    busy_since: Option<(Instant, u16)>,
}

/// A broken transaction rule, for the observer to record.
pub(super) enum Broken {
    /// The TCI was used for another request within [`IN_FLIGHT`].
    TciReused,
    /// End of `instance` was answered busy; the OLT went on (`went_on`) or let
    /// [`BUSY_RETRY`] pass.
    NoBusyRetry { instance: u16, went_on: bool },
}

/// FNV-1a over the frame without its TCI (bytes 0-1) and its trailer (last 8 bytes): two
/// requests with the same digest are the same request (a retransmission).
fn digest(frame: &[u8]) -> u64 {
    let body = frame.get(2..frame.len().saturating_sub(8)).unwrap_or(&[]);
    body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Requests {
    /// A request with `tci` arrived: is the TCI reused for another request within
    /// [`IN_FLIGHT`]?
    pub(super) fn request(&mut self, now: Instant, tci: u16, frame: &[u8]) -> Option<Broken> {
        while self
            .recent
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > IN_FLIGHT)
        {
            self.recent.pop_front();
        }
        let d = digest(frame);
        let clash = self
            .recent
            .iter()
            .any(|(_, t, other)| *t == tci && *other != d);
        self.recent.retain(|(_, t, _)| *t != tci);
        self.recent.push_back((now, tci, d));
        clash.then_some(Broken::TciReused)
    }

    /// End was answered "device busy" for `instance`.
    pub(super) fn busy(&mut self, now: Instant, instance: u16) {
        self.busy_since = Some((now, instance));
    }

    /// End arrived again: the busy wait is over.
    pub(super) fn end_again(&mut self) {
        self.busy_since = None;
    }

    /// Another request (not End, not a Download section) arrived (`went_on`), or time passed:
    /// was End left unasked after busy?
    pub(super) fn busy_not_retried(&mut self, now: Instant, went_on: bool) -> Option<Broken> {
        let (since, instance) = self.busy_since?;
        let overdue = now.duration_since(since) >= BUSY_RETRY;
        if !went_on && !overdue {
            return None;
        }
        self.busy_since = None;
        Some(Broken::NoBusyRetry { instance, went_on })
    }

    /// When [`Requests::busy_not_retried`] must be asked, to notice an OLT that never asks.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.busy_since.map(|(t, _)| t + BUSY_RETRY)
    }
}
