//! What each answer, each silence and each boot of the ONU means in each phase of a session.

use std::time::{Duration, Instant};

use omci_codec::contents::{AttributeValues, Contents, GetRequest};
use omci_codec::envelope::Envelope;
use omci_codec::{MeClass, MeId, Message, MessageType, ResultCode, SoftwareImageAttributes};

use super::images::{Standing, describe, pair_contradiction, single_contradiction};
use super::{Job, Outcome, Phase, Session, Wait, version_text};

/// Which of a session's budgets a fresh start spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Budget {
    /// The download (or its check) was lost: [`super::SessionConfig::max_restarts`].
    Restart,
    /// The ONU came back on its committed image after booting the new one: two more
    /// activations.
    Reactivation,
}

/// Activations sent again after the ONU came back on its committed image before Commit.
const MAX_REACTIVATIONS: u32 = 2;

impl Session {
    /// A response or notification from this ONU, with the envelope it came in. False when it
    /// answers nothing the session has outstanding (a late duplicate, or a guess).
    pub fn handle_response(
        &mut self,
        now: Instant,
        envelope: &Envelope,
        msg: &Message<'_>,
    ) -> bool {
        if msg.message_type() == MessageType::AttributeValueChange && !msg.ak() {
            self.on_notification(now, msg);
            return true;
        }
        let Wait::Response { tci, .. } = &self.wait else {
            return false;
        };
        if msg.tci != *tci || !msg.ak() {
            return false; // a late or duplicated answer to an earlier request
        }
        self.take_response(now, envelope, msg);
        true
    }

    /// Why the ONU refused the image at End, with what the OLT knows of it and the check
    /// that would have caught it before the rollout.
    fn end_refused(&self, result: ResultCode) -> String {
        let Some(image) = self.job.image() else {
            return format!("End software download answered {result}");
        };
        let h = &image.header;
        format!(
            "End software download answered {result}: the ONU refused the image (model {}, version {}, security version {}, {} bytes, CRC-32 {:08x} as sent); an ONU refuses an image whose window CRCs or image CRC fail, or that is not of its model, is below its anti-rollback floor, or whose payload hash or signature does not verify. `onu image inspect IMAGE --public-key KEY` checks the image, and `olt rollout --public-key KEY` refuses such an image before the first frame",
            h.model,
            String::from_utf8_lossy(&image.version()).trim_end_matches('\0'),
            h.security_version,
            image.len(),
            image.crc
        )
    }

    /// The answer to the request outstanding.
    fn take_response(&mut self, now: Instant, envelope: &Envelope, msg: &Message<'_>) {
        let result = msg.contents.result();
        let image = match &msg.contents {
            Contents::GetResponse(g) if msg.me.class == MeClass::SOFTWARE_IMAGE => {
                software_image(g.result, &g.attributes).map(|a| (msg.me.instance as u8, a))
            }
            _ => None,
        };
        if let Some((i, a)) = &image {
            if let Some(why) = single_contradiction(*i, a) {
                return self.impossible(now, &why);
            }
            self.images.note(*i, a.clone());
        }
        let image = image.map(|(_, a)| a);
        match (self.phase.clone(), &msg.contents) {
            (Phase::Model, Contents::GetResponse(g)) => self.on_model(now, g.result, &g.attributes),
            (Phase::Identity, Contents::GetResponse(g)) => {
                if let (ResultCode::Success, AttributeValues::Raw { values, .. }) =
                    (g.result, &g.attributes)
                    && values.len() >= 12
                {
                    // Vendor id (4 bytes), then the serial number (8: its own vendor id and
                    // 4 bytes, written as 8 hex digits).
                    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                    self.identity = Some(super::Identity {
                        vendor: text(&values[..4]),
                        serial: format!(
                            "{}{}",
                            text(&values[4..8]),
                            hex::encode_upper(&values[8..12])
                        ),
                        version: None,
                    });
                }
                if matches!(self.job, Job::Status) {
                    // The ONU-G version too (14 bytes: it does not fit the same baseline Get).
                    self.enter(now, Phase::IdentityVersion);
                    self.request(
                        now,
                        MeId::new(MeClass::ONU_G, 0),
                        Contents::GetRequest(GetRequest {
                            attribute_mask: 0x4000,
                        }),
                    );
                } else {
                    self.after_identity(now);
                }
            }
            (Phase::IdentityVersion, Contents::GetResponse(g)) => {
                if let (ResultCode::Success, AttributeValues::Raw { values, .. }, Some(id)) =
                    (g.result, &g.attributes, self.identity.as_mut())
                    && values.len() >= 14
                {
                    id.version = Some(version_text(&values[..14]));
                }
                self.after_identity(now);
            }
            (Phase::Inspect { image: 0, outcome }, Contents::GetResponse(_)) => {
                self.phase = Phase::Inspect { image: 1, outcome };
                self.get(now, 1);
            }
            (Phase::Inspect { outcome, .. }, Contents::GetResponse(_)) => {
                self.finish(now, outcome)
            }
            (Phase::Discover(i), Contents::GetResponse(g)) => {
                if image.is_none() {
                    return self.fail(
                        now,
                        format!("Get of software image {i} answered {}", g.result),
                    );
                }
                if i == 0 {
                    self.phase = Phase::Discover(1);
                    return self.get(now, 1);
                }
                self.choose(now);
            }
            (Phase::Start, Contents::StartSoftwareDownloadResponse(r)) => {
                if r.result != ResultCode::Success {
                    return self.fail(
                        now,
                        format!("Start software download answered {}", r.result),
                    );
                }
                if r.window_size() > self.window_size {
                    return self.fail(
                        now,
                        format!(
                            "the ONU raised the window from {} to {} (G.988 lets it only lower it)",
                            self.window_size,
                            r.window_size()
                        ),
                    );
                }
                self.window_size = r.window_size();
                if self.in_group {
                    self.enter(now, Phase::Group);
                    self.wait = Wait::Nothing;
                    return;
                }
                self.enter(
                    now,
                    Phase::Window {
                        w: 0,
                        tries: 0,
                        blank: 0,
                    },
                );
                self.send_window(now, 0);
            }
            (Phase::Window { w, tries, blank }, Contents::DownloadSectionResponse(r)) => {
                if r.result == ResultCode::Success {
                    return self.next_window(now, w);
                }
                if envelope.missing.is_none() {
                    // Without the bitmap: this lab's ONU has no download in progress (it
                    // rebooted); another ONU may just not send bitmaps, so strictly G.988
                    // OLTs give it one more try.
                    let blank = blank + 1;
                    if self.cfg.envelope_extensions || blank >= 2 {
                        return self.start_again(
                            now,
                            &format!("the ONU answered window {w} as if it had no download in progress"),
                        );
                    }
                    self.phase = Phase::Window { w, tries, blank };
                }
                self.repeat_window(now, w, "a section was missing");
            }
            (Phase::End { busy }, Contents::EndSoftwareDownloadResponse(r)) => match r.result {
                ResultCode::Success => self.verify_valid(now),
                ResultCode::DeviceBusy if self.cfg.quirks.no_busy_retry => {
                    self.stats.busy += 1;
                    self.verify_valid(now);
                }
                ResultCode::DeviceBusy => {
                    self.stats.busy += 1;
                    if busy + 1 > self.cfg.max_busy {
                        return self.fail(now, "End software download stayed busy".into());
                    }
                    self.enter(now, Phase::End { busy: busy + 1 });
                    self.wait = Wait::Until(now + self.cfg.busy_interval);
                }
                other => {
                    let why = self.end_refused(other);
                    self.fail(now, why)
                }
            },
            (Phase::VerifyValid, Contents::GetResponse(g)) => match image {
                Some(a)
                    if a.is_valid == Some(true)
                        && a.is_active == Some(false)
                        && a.version.is_some()
                        && a.version == self.version() =>
                {
                    if !self.cfg.stages.activate {
                        return self.finish(
                            now,
                            Outcome::Downloaded(format!(
                                "valid in the standby image {}, not active",
                                self.target
                            )),
                        );
                    }
                    self.enter(now, Phase::Activate { since: now });
                    self.activate(now);
                }
                _ => self.fail(
                    now,
                    format!("after End the image reads {}", reading(g.result, image.as_ref())),
                ),
            },
            (Phase::Activate { since }, _) if result == Some(ResultCode::DeviceBusy) => {
                // Flags 1 or 2 and a call in progress: the ONU defers activation.
                self.stats.busy += 1;
                if now.saturating_duration_since(since) >= self.cfg.activate_defer {
                    return self.fail(
                        now,
                        format!(
                            "Activate deferred: a call stayed in progress for {:.0} s (the new image waits, valid, in the standby image)",
                            self.cfg.activate_defer.as_secs_f64()
                        ),
                    );
                }
                self.wait =
                    Wait::Until(now + self.cfg.busy_interval.max(Duration::from_millis(500)));
            }
            (Phase::Activate { .. }, _) if result.is_some() => {
                if let Some(r) = result.filter(|r| *r != ResultCode::Success) {
                    return self.fail(now, format!("Activate software answered {r}"));
                }
                self.await_reboot(now, false, false);
                self.wait = Wait::Until(now + self.cfg.reboot_poll);
            }
            (
                Phase::AwaitReboot {
                    went_down,
                    booted_new,
                    ..
                },
                Contents::GetResponse(g),
            ) => self.on_reboot_get(now, went_down, booted_new, g.result, image),
            (Phase::CameBack, Contents::GetResponse(_)) => {
                if let Some(why) = self.pair_problem() {
                    return self.impossible(now, &why);
                }
                self.came_back(now);
            }
            (Phase::Commit, _) if result.is_some() => {
                if let Some(r) = result.filter(|r| *r != ResultCode::Success) {
                    return self.fail(now, format!("Commit software answered {r}"));
                }
                self.enter(now, Phase::VerifyCommitted(0));
                self.get(now, self.target);
            }
            (Phase::VerifyCommitted(0), Contents::GetResponse(g)) => match image {
                Some(a) if a.is_committed == Some(true) && a.is_active == Some(true) => {
                    self.phase = Phase::VerifyCommitted(1);
                    self.get(now, 1 - self.target);
                }
                _ => self.fail(
                    now,
                    format!("after Commit the image reads {}", reading(g.result, image.as_ref())),
                ),
            },
            (Phase::VerifyCommitted(_), Contents::GetResponse(_)) => {
                if let Some(why) = self.pair_problem() {
                    return self.impossible(now, &why);
                }
                self.finish(now, Outcome::Upgraded);
            }
            (Phase::Recheck, Contents::GetResponse(_)) => {
                if self.runs_new(image.as_ref()) {
                    self.enter(now, Phase::Commit);
                    self.request(
                        now,
                        self.sw(self.target),
                        Contents::CommitSoftwareRequest,
                    );
                } else {
                    self.fail(
                        now,
                        "the health gate: the ONU left the new image while it was held, before Commit"
                            .into(),
                    );
                }
            }
            (Phase::Confirm, Contents::GetResponse(_)) => {
                if self.runs_new(image.as_ref()) {
                    self.came_back(now);
                } else {
                    self.fail(
                        now,
                        "the health gate: the ONU fell back to its committed image after booting the new one"
                            .into(),
                    );
                }
            }
            (Phase::Abort, Contents::EndSoftwareDownloadResponse(r)) => {
                if r.result == ResultCode::Success {
                    self.halted(
                        now,
                        "download aborted (End software download, abort convention)",
                    )
                } else {
                    self.halted(
                        now,
                        &format!("the abort (End software download) answered {}", r.result),
                    )
                }
            }
            (Phase::Revert { answered: false, .. }, _) if result.is_some() => {
                if let Some(r) = result.filter(|r| *r != ResultCode::Success) {
                    return self.fail(
                        now,
                        format!("the rollback's Activate of the committed image answered {r}"),
                    );
                }
                self.revert_answered(now);
                self.wait = Wait::Until(now + self.cfg.reboot_poll);
            }
            (Phase::Revert { answered: true, .. }, Contents::GetResponse(_)) => match image {
                Some(a) if a.is_active == Some(true) && a.is_committed == Some(true) => self
                    .halted(
                        now,
                        "rolled back, the ONU runs its committed image again (the new one stays valid, uncommitted, in the standby image)",
                    ),
                _ => self.poll_reboot(now),
            },
            _ => {}
        }
    }

    /// The version being rolled out, as the Software image ME reports it.
    fn version(&self) -> Option<[u8; 14]> {
        self.image().map(|i| i.version())
    }

    /// True when `a` (the target, as just read) runs the new version, valid.
    fn runs_new(&self, a: Option<&SoftwareImageAttributes>) -> bool {
        a.is_some_and(|a| {
            a.is_active == Some(true)
                && a.is_valid == Some(true)
                && a.version.is_some()
                && a.version == self.version()
        })
    }

    /// What is wrong with the two images as last read together, if anything.
    fn pair_problem(&self) -> Option<String> {
        let (Some(a), Some(b)) = (self.images.get(0), self.images.get(1)) else {
            return None;
        };
        pair_contradiction(a, b).map(|why| format!("{why} ({}; {})", describe(a), describe(b)))
    }

    /// The ONU reported a state G.988 does not allow: never progress, always a failure.
    fn impossible(&mut self, now: Instant, why: &str) {
        self.finish(
            now,
            Outcome::Failed(format!("impossible software image state: {why}")),
        );
    }

    fn on_model(&mut self, now: Instant, result: ResultCode, values: &AttributeValues<'_>) {
        let model = match (result, values) {
            (ResultCode::Success, AttributeValues::Raw { values, .. }) => {
                version_text(&values[..values.len().min(20)])
            }
            _ => {
                return self.conclude(
                    now,
                    Outcome::Refused(format!(
                        "its model could not be read (Get ONU2-G answered {result})"
                    )),
                );
            }
        };
        self.model = Some(model.clone());
        match &self.job {
            Job::Survey {
                model: Some(want), ..
            } if *want != model => {
                let why =
                    format!("it is a {model}, the image is for {want}: nothing was downloaded");
                self.conclude(now, Outcome::Refused(why))
            }
            _ => {
                self.enter(now, Phase::Discover(0));
                self.get(now, 0)
            }
        }
    }

    /// Both images read: where the ONU stands decides what comes next.
    fn choose(&mut self, now: Instant) {
        if let Some(why) = self.pair_problem() {
            return self.impossible(now, &why);
        }
        if self.from_version.is_none() {
            self.from_version = self.active_version();
        }
        if matches!(self.job, Job::Abort { .. }) {
            return self.choose_undo(now);
        }
        if matches!(self.job, Job::Status) {
            return self.finish(now, Outcome::Read);
        }
        let Some(version) = self.version() else {
            return;
        };
        let survey = matches!(self.job, Job::Survey { .. });
        let Some(standing) = self.images.standing(version) else {
            return;
        };
        match standing {
            Standing::Done(i) => {
                let target = self.image().map(|img| img.header.version.clone());
                if self.from_version != target {
                    // It ran another version when the session began: the session did it
                    // (its Commit took just before a reboot).
                    self.target = i;
                    return self.finish(now, Outcome::Upgraded);
                }
                self.finish(
                    now,
                    Outcome::Skipped(format!("already runs the version, committed, in image {i}")),
                )
            }
            _ if survey => {
                if standing == Standing::NoFreeImage {
                    return self.fail(
                        now,
                        "no image is free: one is active and the other committed".into(),
                    );
                }
                self.finish(now, Outcome::Eligible)
            }
            // An earlier, interrupted upgrade: the version runs uncommitted (S4, only Commit is
            // missing), or sits valid in the standby image (S3, Activate and Commit are missing).
            Standing::Uncommitted(i) => {
                self.target = i;
                self.enter(now, Phase::CameBack);
                self.came_back(now)
            }
            Standing::Standby(i) if !self.cfg.stages.activate && self.cfg.stages.download => {
                self.target = i;
                self.finish(
                    now,
                    Outcome::Downloaded(format!(
                        "already valid in the standby image {i}, not active"
                    )),
                )
            }
            Standing::Standby(i) | Standing::CommittedStandby(i) if self.cfg.stages.activate => {
                self.target = i;
                self.enter(now, Phase::Activate { since: now });
                self.activate(now)
            }
            Standing::Download(i) if self.cfg.stages.download => {
                self.target = i;
                self.start(now)
            }
            Standing::Standby(_) | Standing::CommittedStandby(_) | Standing::Download(_) => {
                let why = match standing {
                    Standing::Download(_) => format!(
                        "nothing to {}: the version is not valid in the standby image (olt download first)",
                        self.cfg.stages.verb()
                    ),
                    _ => format!(
                        "nothing to {}: the version is not running uncommitted (olt activate first)",
                        self.cfg.stages.verb()
                    ),
                };
                self.fail(now, why)
            }
            Standing::NoFreeImage => self.fail(
                now,
                "no image is free: one is active and the other committed".into(),
            ),
        }
    }

    /// An attribute value change. Only the announcement of a running image matters here: it
    /// is how a boot shows (the lab's ONU announces both images at every boot; the image that
    /// is active is the one that booted). Other changes (a slot invalidated by Start, made
    /// valid by End) say nothing the session does not know.
    fn on_notification(&mut self, now: Instant, msg: &Message<'_>) {
        if msg.me.class != MeClass::SOFTWARE_IMAGE || msg.me.instance > 1 {
            return;
        }
        let Contents::AttributeValueChange(avc) = &msg.contents else {
            return;
        };
        let AttributeValues::SoftwareImage(a) = &avc.attributes else {
            return;
        };
        if a.is_active == Some(true) {
            self.on_boot(now, msg.me.instance as u8);
        }
    }

    /// The ONU booted and runs image `active`: what that means depends on the phase.
    fn on_boot(&mut self, now: Instant, active: u8) {
        let new = active == self.target;
        match self.phase.clone() {
            // Nothing was under way yet (the model is asked again as it is).
            Phase::Over
            | Phase::Inspect { .. }
            | Phase::Abort
            | Phase::Model
            | Phase::Identity
            | Phase::IdentityVersion => {}
            // Nothing was under way yet: read the images again.
            Phase::Discover(_) => {
                self.images.forget();
                self.enter(now, Phase::Discover(0));
                self.get(now, 0);
            }
            Phase::Start | Phase::Window { .. } | Phase::Group => {
                self.start_again(now, "the ONU rebooted during the download")
            }
            Phase::End { .. } | Phase::VerifyValid => self.start_again(
                now,
                "the ONU rebooted while it checked the image (after End software download)",
            ),
            // It booted the new image: the activation happened, its answer was lost.
            Phase::Activate { .. } if new => {
                self.await_reboot(now, true, true);
                self.get(now, self.target);
            }
            Phase::Activate { .. } => {
                self.start_again(now, "the ONU rebooted before it took Activate")
            }
            Phase::AwaitReboot { booted_new, .. } => {
                self.await_reboot(now, true, booted_new || new);
                self.get(now, self.target);
            }
            Phase::CameBack if !new => self.resume(
                now,
                "the ONU rebooted before Commit and came back on its committed image",
                Budget::Reactivation,
            ),
            Phase::Confirm if !new => self.fail(
                now,
                "the health gate: the ONU fell back to its committed image after booting the new one"
                    .into(),
            ),
            Phase::Held | Phase::Recheck if !new => self.fail(
                now,
                "the health gate: the ONU left the new image while it was held, before Commit"
                    .into(),
            ),
            // Commit announces the new image itself (committed, active): only a boot of the
            // other image means the Commit did not take.
            Phase::Commit | Phase::VerifyCommitted(_) if !new => self.resume(
                now,
                "the ONU rebooted before its Commit took and came back on its committed image",
                Budget::Reactivation,
            ),
            Phase::Revert { deadline, .. } if !new => {
                self.phase = Phase::Revert {
                    answered: true,
                    deadline,
                };
                self.get(now, 1 - self.target);
            }
            _ => {}
        }
    }

    fn await_reboot(&mut self, now: Instant, went_down: bool, booted_new: bool) {
        let deadline = match self.phase {
            Phase::AwaitReboot { deadline, .. } => deadline,
            _ => now + self.cfg.reboot_timeout,
        };
        self.enter(
            now,
            Phase::AwaitReboot {
                deadline,
                went_down,
                booted_new,
            },
        );
    }

    /// A Get of the target while the ONU reboots into it.
    fn on_reboot_get(
        &mut self,
        now: Instant,
        went_down: bool,
        booted_new: bool,
        result: ResultCode,
        a: Option<SoftwareImageAttributes>,
    ) {
        let Some(a) = a else {
            return self.fail(
                now,
                format!("after Activate the image reads {}", reading(result, None)),
            );
        };
        if self.runs_new(Some(&a)) {
            // Back on the new image: read the other one too (both are checked together).
            self.enter(now, Phase::CameBack);
            return self.get(now, 1 - self.target);
        }
        if a.is_valid == Some(true) && a.is_active == Some(false) {
            if went_down && self.halting.is_some() {
                return self.halted(now, "the ONU is back on its committed image");
            }
            if went_down && booted_new {
                // It booted the new image, then rebooted before Commit (a power cut): the
                // bootloader went back to the committed image, as it must.
                return self.resume(
                    now,
                    "the ONU rebooted before Commit and came back on its committed image",
                    Budget::Reactivation,
                );
            }
            if went_down {
                return self.fail(
                    now,
                    "the ONU came back on its committed image: the new one did not boot".into(),
                );
            }
            // Not gone down yet: ask again.
            return self.poll_reboot(now);
        }
        self.fail(
            now,
            format!("after Activate the image reads {}", describe(&a)),
        )
    }

    fn verify_valid(&mut self, now: Instant) {
        self.enter(now, Phase::VerifyValid);
        self.get(now, self.target);
    }

    fn next_window(&mut self, now: Instant, w: u32) {
        let windows = self.cut().map_or(0, |c| c.windowing.windows());
        if w + 1 < windows {
            self.phase = Phase::Window {
                w: w + 1,
                tries: 0,
                blank: 0,
            };
            self.send_window(now, w + 1);
        } else {
            self.enter(now, Phase::End { busy: 0 });
            self.end(now);
        }
    }

    fn repeat_window(&mut self, now: Instant, w: u32, why: &str) {
        let Phase::Window { tries, blank, .. } = self.phase else {
            return;
        };
        let tries = tries + 1;
        if tries > self.cfg.window_retries {
            return self.fail(now, format!("window {w} failed {tries} times: {why}"));
        }
        self.phase = Phase::Window { w, tries, blank };
        self.stats.repaired_windows += 1;
        self.send_window(now, w);
    }

    /// The ONU lost its download (or the check of it): read both images again and go on from
    /// what it really holds, within the budget of restarts.
    pub(super) fn start_again(&mut self, now: Instant, why: &str) {
        self.resume(now, why, Budget::Restart);
    }

    fn resume(&mut self, now: Instant, why: &str, budget: Budget) {
        let (used, most) = match budget {
            Budget::Restart => (&mut self.restarts, self.cfg.max_restarts),
            Budget::Reactivation => (&mut self.reactivations, MAX_REACTIVATIONS),
        };
        if *used >= most {
            let times = *used + 1;
            return self.fail(now, format!("{why} ({times} times: the session gave up)"));
        }
        *used += 1;
        if budget == Budget::Restart {
            self.stats.restarts += 1;
        }
        tracing::info!(onu = self.onu.0, %why, "starting again from the ONU's images");
        self.window_tcis = (None, Vec::new());
        self.drop_queued();
        self.images.forget();
        self.enter(now, Phase::Discover(0));
        self.get(now, 0);
    }

    /// The ONU is back, active on the new version: the health gate's second look, then hold or
    /// Commit.
    fn came_back(&mut self, now: Instant) {
        if self.halting.is_some() {
            return self.revert(now);
        }
        if !self.cfg.stages.commit {
            return self.finish(
                now,
                Outcome::Activated(format!(
                    "runs the new image from image {}, not committed",
                    self.target
                )),
            );
        }
        if !self.cfg.health_settle.is_zero() && self.phase != Phase::Confirm {
            self.enter(now, Phase::Confirm);
            self.wait = Wait::Until(now + self.cfg.health_settle);
            return;
        }
        if self.cfg.hold_before_commit {
            self.enter(now, Phase::Held);
            self.wait = Wait::Nothing;
            return;
        }
        self.enter(now, Phase::Commit);
        self.request(now, self.sw(self.target), Contents::CommitSoftwareRequest);
    }

    /// A pause is over.
    pub(super) fn wake(&mut self, now: Instant) {
        match self.phase {
            Phase::End { .. } => self.end(now),
            Phase::Activate { .. } => self.activate(now),
            Phase::AwaitReboot { .. } | Phase::Confirm => self.get(now, self.target),
            Phase::Revert { .. } => self.get(now, 1 - self.target),
            _ => {}
        }
    }

    /// A request went unanswered through all its retries.
    pub(super) fn gave_up(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Window { w, .. } => {
                self.repeat_window(now, w, "no answer to the window's last section")
            }
            Phase::Revert {
                answered: false,
                deadline,
            } => {
                // As after Activate: the answer may have been lost as the ONU went down.
                self.phase = Phase::Revert {
                    answered: true,
                    deadline,
                };
                self.get(now, 1 - self.target);
            }
            Phase::Inspect { outcome, .. } => self.finish(now, outcome),
            Phase::Abort => {
                let why = self.halting.clone().unwrap_or_default();
                self.finish(
                    now,
                    Outcome::Halted(format!("{why}: the abort got no answer")),
                );
            }
            Phase::Activate { .. } => {
                // No answer to Activate: it may have been lost while the ONU went down to
                // reboot into the image. Whether it did, Get will tell.
                self.await_reboot(now, true, false);
                self.get(now, self.target);
            }
            // An ONU checking a large image may not answer End for a while (the check is the
            // busy phase, and a slow ONU may not even say busy): End is idempotent, so it is
            // asked again until the reboot timeout has passed since End was first sent.
            Phase::End { .. }
                if now.saturating_duration_since(self.phase_since) < self.cfg.reboot_timeout =>
            {
                self.end(now)
            }
            Phase::Commit | Phase::VerifyCommitted(_) => {
                // Whether the Commit took, the final Get may still tell.
                self.fail(now, "Commit software went unanswered".into())
            }
            p => self.fail(now, format!("no answer in the {} phase", p.name())),
        }
    }

    /// The ONU is rebooting (after Activate, or the rollback's): ask again until its deadline.
    pub(super) fn poll_reboot(&mut self, now: Instant) {
        let (deadline, what) = match self.phase {
            Phase::AwaitReboot { deadline, .. } => (deadline, "Activate"),
            Phase::Revert { deadline, .. } => (deadline, "the rollback to the committed image"),
            _ => return,
        };
        if now >= deadline {
            return self.fail(
                now,
                format!("no answer: the ONU did not come back after {what}"),
            );
        }
        self.wait = Wait::Until(now + self.cfg.reboot_poll);
    }
}

/// The Software image attributes of a successful Get response.
fn software_image(result: ResultCode, a: &AttributeValues<'_>) -> Option<SoftwareImageAttributes> {
    match (result, a) {
        (ResultCode::Success, AttributeValues::SoftwareImage(s)) => Some((**s).clone()),
        _ => None,
    }
}

/// What a Get of a software image said, in words.
fn reading(result: ResultCode, a: Option<&SoftwareImageAttributes>) -> String {
    match a {
        Some(a) => describe(a),
        None => format!("nothing: Get answered {result}"),
    }
}
