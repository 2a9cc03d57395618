//! Recovery mode: when nothing in flash can boot and the golden image lives on a TFTP server,
//! the bootloader hands the flash over ([`crate::boot::BootError::RecoveryNeeded`]) and this
//! sans-IO state machine fetches the image, checks it, and commits it.
//!
//! One attempt: the slot is erased; a TFTP read ([`pon::tftp::Client`]) brings the file a
//! block at a time, each block written into the slot at once (memory stays one block); when
//! the file is whole, [`crate::boot::install_golden`] verifies it from the slot (format,
//! length, model, the anti-rollback floor, SHA-256, the signature with the ONU's key) and only
//! then commits it in the metadata. Until then the metadata calls the slot not valid, so a
//! power cut at any moment leaves an ONU that enters recovery mode again at its next boot.
//!
//! A failed attempt (the server silent or slow, an ERROR from it, a file too large, an image
//! that fails a check) is reported with its reason ([`OnuEvent::RecoveryFailed`]); the local
//! fallback file, if there is one, is then tried; otherwise the next attempt starts after a
//! backoff that doubles from [`RecoveryConfig::first_backoff`] up to
//! [`RecoveryConfig::max_backoff`]. The ONU stays in recovery mode for as long as it takes:
//! it never boots an image that did not pass every check.
//!
//! Like the core, it takes `now` from its caller and owns no socket: the driver
//! (`crate::driver`) sends what [`Recovery::poll_transmit`] yields from a UDP socket on
//! loopback and hands in what arrives.

use std::collections::VecDeque;
use std::fmt;
use std::net::{SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pon::tftp::{Client, ClientConfig, ClientEvent};

use crate::boot::{self, BootConfig};
use crate::core::OnuEvent;
use crate::faults::{FaultPoint, Faults};
use crate::flash::Flash;

/// Where the golden image is fetched from: `tftp://127.0.0.1:PORT/NAME` (loopback only; port
/// 69 when not given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TftpUrl {
    /// The server's request port.
    pub server: SocketAddrV4,
    /// The file's name on the server.
    pub filename: String,
}

impl FromStr for TftpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("tftp://")
            .ok_or_else(|| format!("{s:?} is not a tftp://127.0.0.1:PORT/NAME address"))?;
        let (host, filename) = rest
            .split_once('/')
            .filter(|(_, f)| !f.is_empty())
            .ok_or_else(|| format!("{s:?} names no file (tftp://127.0.0.1:PORT/NAME)"))?;
        let host = if host.contains(':') {
            host.to_string()
        } else {
            format!("{host}:69")
        };
        let server = pon::transport::parse_loopback(&host)?;
        if server.port() == 0 {
            return Err(format!("{s:?} has port 0"));
        }
        if filename.len() > 255 || filename.contains('\0') {
            return Err(format!(
                "{s:?}: the file name is longer than 255 bytes or has a NUL"
            ));
        }
        Ok(TftpUrl {
            server,
            filename: filename.to_string(),
        })
    }
}

impl fmt::Display for TftpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tftp://{}/{}", self.server, self.filename)
    }
}

/// How recovery mode fetches the golden image.
#[derive(Clone, Debug)]
pub struct RecoveryConfig {
    /// The TFTP server and file.
    pub url: TftpUrl,
    /// A local golden image tried after a failed network attempt (the "USB stick").
    pub fallback: Option<Arc<[u8]>>,
    /// The TFTP read's block size, timeout, retries and limits (the size limit is the slot).
    pub tftp: ClientConfig,
    /// The wait after the first failed attempt; each further failure doubles it.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl RecoveryConfig {
    /// Recovery from `url` with the lab's defaults: 1428-byte blocks, 1 s timeout, 4 retries,
    /// 2 min per transfer, at most `slot_size` bytes, backoff 1 s doubling to 30 s.
    pub fn lab(url: TftpUrl, slot_size: u64) -> RecoveryConfig {
        RecoveryConfig {
            url,
            fallback: None,
            tftp: ClientConfig {
                max_size: slot_size,
                ..ClientConfig::default()
            },
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// The wait after failed attempt `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max_backoff)
    }
}

/// Where recovery stands; each phase carries what it needs.
#[derive(Debug)]
enum Phase {
    /// A TFTP read is under way.
    Fetching(Box<Client>),
    /// The attempt failed; the next starts then.
    Waiting(Instant),
    /// The golden image is committed: boot.
    Restored,
    /// The power was cut here.
    Dead(FaultPoint),
}

/// Recovery mode on `flash`.
#[derive(Debug)]
pub struct Recovery<F: Flash> {
    cfg: RecoveryConfig,
    boot: BootConfig,
    flash: F,
    faults: Faults,
    /// The slot the golden image goes into.
    slot: u8,
    /// The floor it must meet (what the metadata held).
    floor: u32,
    phase: Phase,
    /// Attempts started.
    attempt: u32,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<OnuEvent>,
}

impl<F: Flash> Recovery<F> {
    /// Enters recovery mode at `now`: the first attempt starts at once. `slot` and `floor`
    /// are what the bootloader said ([`crate::boot::BootError::RecoveryNeeded`]).
    pub fn new(
        now: Instant,
        cfg: RecoveryConfig,
        boot: BootConfig,
        flash: F,
        faults: Faults,
        slot: u8,
        floor: u32,
    ) -> Recovery<F> {
        let mut r = Recovery {
            cfg,
            boot,
            flash,
            faults,
            slot,
            floor,
            phase: Phase::Waiting(now),
            attempt: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        };
        r.start(now);
        r
    }

    fn start(&mut self, now: Instant) {
        self.attempt += 1;
        self.events.push_back(OnuEvent::RecoveryStarted {
            slot: self.slot,
            source: self.cfg.url.to_string(),
            attempt: self.attempt,
        });
        // What an earlier attempt wrote goes first: the file is written from nothing.
        if let Err(e) = self
            .flash
            .erase_slot(self.slot)
            .and_then(|()| self.flash.sync_slot(self.slot))
        {
            return self.failed(now, format!("erasing slot {}: {e}", self.slot));
        }
        let server = SocketAddr::V4(self.cfg.url.server);
        self.phase = Phase::Fetching(Box::new(Client::new(
            now,
            server,
            &self.cfg.url.filename,
            self.cfg.tftp.clone(),
        )));
        self.drain(now);
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<OnuEvent> {
        self.events.pop_front()
    }

    /// When [`Recovery::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Fetching(c) => c.poll_timeout(),
            Phase::Waiting(at) => Some(*at),
            Phase::Restored | Phase::Dead(_) => None,
        }
    }

    /// True once the golden image is committed: boot again.
    pub fn restored(&self) -> bool {
        matches!(self.phase, Phase::Restored)
    }

    /// The point at which the power was cut, if it was.
    pub fn power_lost(&self) -> Option<FaultPoint> {
        match self.phase {
            Phase::Dead(p) => Some(p),
            _ => None,
        }
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The flash, to look at.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// The flash and the fault plan, for the bootloader (or the next power-on).
    pub fn into_parts(self) -> (F, Faults) {
        (self.flash, self.faults)
    }

    /// Time passes.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Fetching(c) => {
                c.handle_timeout(now);
                self.drain(now);
            }
            Phase::Waiting(at) if now >= *at => self.start(now),
            _ => {}
        }
    }

    /// A datagram from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if let Phase::Fetching(c) = &mut self.phase {
            c.handle_datagram(now, from, bytes);
            self.drain(now);
        }
    }

    /// Takes what the TFTP read produced: its datagrams, then its blocks (written at once).
    fn drain(&mut self, now: Instant) {
        loop {
            let Phase::Fetching(c) = &mut self.phase else {
                return;
            };
            while let Some(t) = c.poll_transmit() {
                self.outbox.push_back(t);
            }
            let Some(event) = c.poll_event() else {
                return;
            };
            match event {
                ClientEvent::Negotiated { .. } => {}
                ClientEvent::Data { offset, data } => {
                    if self.faults.reach(FaultPoint::MidGoldenRestore) {
                        // Half the block reaches the flash, then nothing.
                        let _ = self
                            .flash
                            .write_slot(self.slot, offset, &data[..data.len() / 2]);
                        self.phase = Phase::Dead(FaultPoint::MidGoldenRestore);
                        self.outbox.clear();
                        self.events.push_back(OnuEvent::PowerLost {
                            point: FaultPoint::MidGoldenRestore,
                        });
                        return;
                    }
                    if let Err(e) = self.flash.write_slot(self.slot, offset, &data) {
                        let why = format!("writing slot {}: {e}", self.slot);
                        c.abort(&why);
                        while let Some(t) = c.poll_transmit() {
                            self.outbox.push_back(t);
                        }
                        return self.failed(now, why);
                    }
                }
                ClientEvent::Done { size } => return self.arrived(now, size),
                ClientEvent::Failed(e) => {
                    return self.failed(now, format!("{}: {e}", self.cfg.url));
                }
            }
        }
    }

    /// Syncs the slot, verifies it and commits it (every check, before the metadata moves);
    /// the version committed.
    fn install(&mut self) -> Result<String, String> {
        self.flash
            .sync_slot(self.slot)
            .map_err(|e| format!("syncing slot {}: {e}", self.slot))?;
        let found = boot::install_golden(&mut self.flash, &self.boot, self.slot, self.floor)
            .map_err(|e| e.to_string())?;
        self.phase = Phase::Restored;
        Ok(found.header.version)
    }

    fn restored_from(&mut self, version: String, source: String) {
        self.events.push_back(OnuEvent::GoldenRestored {
            slot: self.slot,
            version,
            source,
        });
    }

    /// The file arrived whole: it is committed only if it passes every check.
    fn arrived(&mut self, now: Instant, size: u64) {
        let source = self.cfg.url.to_string();
        match self.install() {
            Ok(version) => self.restored_from(version, source),
            Err(why) => self.failed(now, format!("{size} bytes from {source}: {why}")),
        }
    }

    /// An attempt failed: the fallback file, if any, else the next attempt after the backoff.
    fn failed(&mut self, now: Instant, reason: String) {
        let mut reason = reason;
        if let Some(fallback) = self.cfg.fallback.clone() {
            let written = self
                .flash
                .erase_slot(self.slot)
                .and_then(|()| self.flash.write_slot(self.slot, 0, &fallback))
                .map_err(|e| e.to_string());
            match written.and_then(|()| self.install()) {
                Ok(version) => {
                    self.events.push_back(OnuEvent::RecoveryFailed {
                        attempt: self.attempt,
                        reason: format!("{reason}; the fallback file is used"),
                        retry_in_ms: 0,
                    });
                    return self.restored_from(version, "the fallback file".into());
                }
                Err(why) => reason = format!("{reason}; the fallback file: {why}"),
            }
        }
        // Nothing refused stays in the slot (the metadata already calls it not valid).
        let _ = self.flash.erase_slot(self.slot);
        let wait = self.cfg.backoff(self.attempt);
        self.events.push_back(OnuEvent::RecoveryFailed {
            attempt: self.attempt,
            reason,
            retry_in_ms: wait.as_millis() as u64,
        });
        self.phase = Phase::Waiting(now + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_loopback_tftp_with_a_file() {
        let u: TftpUrl = "tftp://127.0.0.1:6969/golden.img".parse().unwrap();
        assert_eq!(u.server.port(), 6969);
        assert_eq!(u.filename, "golden.img");
        assert_eq!(u.to_string(), "tftp://127.0.0.1:6969/golden.img");
        assert_eq!(
            "tftp://127.0.0.1/g"
                .parse::<TftpUrl>()
                .unwrap()
                .server
                .port(),
            69
        );
        for bad in [
            "http://127.0.0.1/g",
            "tftp://127.0.0.1:69/",
            "tftp://10.0.0.1:69/g",
            "tftp://127.0.0.1:0/g",
            "tftp://nowhere/g",
        ] {
            assert!(bad.parse::<TftpUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_bound() {
        let cfg = RecoveryConfig::lab("tftp://127.0.0.1:69/g".parse().unwrap(), 1 << 20);
        let waits: Vec<u64> = (1..=8).map(|a| cfg.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(cfg.backoff(u32::MAX), Duration::from_secs(30));
    }
}
