//! A session that halts (the campaign's kill switch, an operator's abort) or only undoes (an
//! abort job): abort a download, send an ONU running an uncommitted image back to its committed
//! one, and end with the ONU on its committed image.

use std::time::Instant;

use omci_codec::contents::{ActivateSoftwareRequest, Contents, EndSoftwareDownloadRequest};

use super::{Outcome, Phase, Session};

impl Session {
    /// Stops this ONU's upgrade, leaving it on its committed image: a download in progress is
    /// aborted (End download with size 0 and CRC 0xFFFFFFFF), an image activated but not
    /// committed is left for the committed one (Activate of the committed image: the ONU
    /// reboots into it), a rebooting ONU is waited for first. A Commit already sent finishes.
    pub fn halt(&mut self, now: Instant, reason: &str) {
        if self.outcome.is_some() || self.halting.is_some() {
            return;
        }
        self.halting = Some(reason.to_string());
        match self.phase {
            Phase::Identity | Phase::IdentityVersion | Phase::Model | Phase::Discover(_) => {
                self.halted(now, "stopped before the download began")
            }
            Phase::Start
            | Phase::Group
            | Phase::Window { .. }
            | Phase::End { .. }
            | Phase::VerifyValid => self.abort(now),
            Phase::CameBack | Phase::Confirm | Phase::Held | Phase::Recheck => self.revert(now),
            // Activate, the reboot: see where the ONU comes back. Commit: it finishes.
            _ => {}
        }
    }

    /// An abort job read both images: abort what is half done, or say there is nothing.
    pub(super) fn choose_undo(&mut self, now: Instant) {
        let yes = |v: Option<bool>| v == Some(true);
        let images: Vec<_> = (0..2u8)
            .filter_map(|i| self.images.get(i).cloned())
            .collect();
        if let Some(i) = images
            .iter()
            .position(|img| yes(img.is_active) && !yes(img.is_committed))
        {
            self.target = i as u8;
            return self.revert(now);
        }
        if let Some(i) = images
            .iter()
            .position(|img| !yes(img.is_active) && !yes(img.is_committed))
        {
            if yes(images[i].is_valid) {
                // A valid standby image: no download is in progress (Start invalidates it).
                return self.halted(
                    now,
                    "nothing to abort: the standby image is complete and valid, not active",
                );
            }
            self.target = i as u8;
            return self.abort(now);
        }
        self.halted(now, "nothing to abort")
    }

    pub(super) fn halted(&mut self, now: Instant, what: &str) {
        let why = self.halting.clone().unwrap_or_else(|| "halted".into());
        self.conclude(now, Outcome::Halted(format!("{why}: {what}")));
    }

    fn abort(&mut self, now: Instant) {
        self.enter(now, Phase::Abort);
        self.clear_out();
        self.request(
            now,
            self.sw(self.target),
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc: 0xFFFF_FFFF,
                image_size: 0,
                instances: [self.sw(self.target).instance].into_iter().collect(),
            }),
        );
    }

    /// Back to the committed image: Activate it (the ONU reboots into it).
    pub(super) fn revert(&mut self, now: Instant) {
        self.enter(
            now,
            Phase::Revert {
                answered: false,
                deadline: now + self.cfg.reboot_timeout,
            },
        );
        self.request(
            now,
            self.sw(1 - self.target),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
        );
    }

    /// The rollback's Activate was accepted: the ONU reboots into its committed image.
    pub(super) fn revert_answered(&mut self, _now: Instant) {
        if let Phase::Revert { deadline, .. } = self.phase {
            self.phase = Phase::Revert {
                answered: true,
                deadline,
            };
        }
    }
}
