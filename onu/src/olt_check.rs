//! The OLT conformance checker (`onu run --check-olt`): while an OLT upgrades this ONU, every
//! rule of the G.988 software download it breaks is recorded, with the frame that broke it.
//!
//! The rules: AR set before a window's last section; a section beyond the agreed window;
//! section numbers that skip (a window's first pass on the ONU's own channel); an End CRC that
//! does not match the data the OLT sent; Activate of an image that is not valid; Commit of an
//! image that is not running (before its Activate completed); a TCI reused for another request
//! while the first may still be answered; no End retry after "device busy". A lossy link makes
//! the skip rule see gaps the OLT did not make: check OLTs on a clean link.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    /// The rule, as a short id (e.g. `ar-before-last`).
    pub rule: std::borrow::Cow<'static, str>,
    /// What happened.
    pub detail: String,
    /// The OMCI frame that broke it, hex.
    pub frame: String,
}

/// The checker's memory.
#[derive(Debug, Default)]
pub struct OltCheck {
    /// Requests seen lately: (when, TCI, a digest of the frame without its TCI).
    recent: VecDeque<(Instant, u16, u64)>,
    /// End answered busy at this time, for this image, and no End since.
    busy_since: Option<(Instant, u16)>,
    found: Vec<Violation>,
}

/// How long a TCI stays "in flight": a request answered later than this is not waited for.
pub const IN_FLIGHT: Duration = Duration::from_secs(2);

/// How long after "device busy" an OLT must ask End again.
pub const BUSY_RETRY: Duration = Duration::from_secs(10);

fn digest(frame: &[u8]) -> u64 {
    // FNV-1a over the frame without its TCI (bytes 0-1) and its trailer (last 8 bytes).
    let body = frame.get(2..frame.len().saturating_sub(8)).unwrap_or(&[]);
    body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl OltCheck {
    /// Records a violation.
    pub fn found(&mut self, rule: &'static str, detail: String, frame: &[u8]) -> Violation {
        let v = Violation {
            rule: rule.into(),
            detail,
            frame: hex::encode(frame),
        };
        self.found.push(v.clone());
        v
    }

    /// Every violation so far.
    pub fn violations(&self) -> &[Violation] {
        &self.found
    }

    /// A request arrived: a TCI reused for another request within [`IN_FLIGHT`]. Returns the
    /// violation if there is one.
    pub fn request(&mut self, now: Instant, tci: u16, frame: &[u8]) -> Option<Violation> {
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
        clash.then(|| {
            self.found(
                "tci-reused",
                format!("TCI 0x{tci:04x} reused for another request within {IN_FLIGHT:?}"),
                frame,
            )
        })
    }

    /// End was answered "device busy" for `instance`.
    pub fn busy(&mut self, now: Instant, instance: u16) {
        self.busy_since = Some((now, instance));
    }

    /// End arrived again: the busy wait is over.
    pub fn end_again(&mut self) {
        self.busy_since = None;
    }

    /// Another request for the image that answered busy (Get, Activate, Commit) before End
    /// was asked again, or no End within [`BUSY_RETRY`] at `now`.
    pub fn busy_not_retried(&mut self, now: Instant, frame: Option<&[u8]>) -> Option<Violation> {
        let (since, instance) = self.busy_since?;
        let overdue = now.duration_since(since) >= BUSY_RETRY;
        if frame.is_none() && !overdue {
            return None;
        }
        self.busy_since = None;
        Some(self.found(
            "no-busy-retry",
            match frame {
                Some(_) => format!(
                    "End of image {instance} was answered device busy; the OLT went on without asking again"
                ),
                None => format!(
                    "End of image {instance} was answered device busy; not asked again within {BUSY_RETRY:?}"
                ),
            },
            frame.unwrap_or(&[]),
        ))
    }

    /// When [`OltCheck::busy_not_retried`] must be called to notice an OLT that never asks.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.busy_since.map(|(t, _)| t + BUSY_RETRY)
    }
}
