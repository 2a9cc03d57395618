//! The PON: every ONU's session, what to send next, and when to wake up.
//!
//! Sans-IO like the sessions: datagrams in with `now` ([`Olt::handle_datagram`]), time
//! ([`Olt::handle_timeout`]), datagrams out ([`Olt::poll_transmit`], taken from the sessions in
//! turn so that every ONU progresses), the next deadline ([`Olt::poll_timeout`]).

use std::collections::BTreeMap;
use std::time::Instant;

use omci_codec::envelope::Envelope;
use omci_codec::{Codec, ExtendedTrailer, OnuId};

use crate::image::UpgradeImage;
use crate::session::{Outcome, Outgoing, Session, SessionConfig};

/// Counters of the whole PON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PonCounters {
    /// Datagrams that were not a response of a known ONU (dropped).
    pub dropped: u64,
    /// Responses taken in.
    pub responses: u64,
}

/// The OLT of one PON, upgrading every ONU it was given in parallel, each with its own
/// window stream (the unicast mode).
#[derive(Debug)]
pub struct Olt {
    sessions: BTreeMap<OnuId, Session>,
    codec: Codec,
    next: Option<OnuId>,
    counters: PonCounters,
}

impl Olt {
    /// Starts upgrading `onus` to `image` at `now`.
    pub fn new(image: &UpgradeImage, onus: &[OnuId], cfg: &SessionConfig, now: Instant) -> Olt {
        let sessions = onus
            .iter()
            .map(|&onu| (onu, Session::new(onu, image.clone(), cfg.clone(), now)))
            .collect();
        Olt {
            sessions,
            codec: Codec::new(ExtendedTrailer::Crc32),
            next: None,
            counters: PonCounters::default(),
        }
    }

    /// A datagram from the PON.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let Ok((envelope, frame)) = Envelope::parse(datagram) else {
            self.counters.dropped += 1;
            return;
        };
        let (Some(session), Ok(msg)) = (
            self.sessions.get_mut(&envelope.onu_id),
            self.codec.parse(frame),
        ) else {
            self.counters.dropped += 1;
            return;
        };
        self.counters.responses += 1;
        session.handle_response(now, &msg);
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for s in self.sessions.values_mut() {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.handle_timeout(now);
            }
        }
    }

    /// The next datagram, from each session in turn.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        let ids: Vec<OnuId> = self.sessions.keys().copied().collect();
        let start = self
            .next
            .and_then(|n| ids.iter().position(|i| *i >= n))
            .unwrap_or(0);
        for k in 0..ids.len() {
            let id = ids[(start + k) % ids.len()];
            if let Some(out) = self.sessions.get_mut(&id).and_then(Session::poll_transmit) {
                self.next = ids.get((start + k + 1) % ids.len()).copied();
                return Some(out);
            }
        }
        None
    }

    /// The earliest deadline of any session.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(Session::poll_timeout)
            .min()
    }

    /// True when every session has ended.
    pub fn finished(&self) -> bool {
        self.sessions.values().all(|s| s.outcome().is_some())
    }

    /// Every session, by ONU.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// How each session ended (or None while it runs).
    pub fn outcomes(&self) -> BTreeMap<OnuId, Option<Outcome>> {
        self.sessions
            .iter()
            .map(|(id, s)| (*id, s.outcome().cloned()))
            .collect()
    }

    /// PON counters.
    pub fn counters(&self) -> &PonCounters {
        &self.counters
    }
}
