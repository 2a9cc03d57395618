//! The phases of an upgrade (as docs/olt.md names them), and what the OLT has done with one
//! ONU so far, which tells the phase of each of its frames.

use std::collections::BTreeMap;

use omci_codec::{MeClass, ResultCode};

use super::frame::{Body, Frame, ImageState};
use super::wording::result_words;

/// The phases of an upgrade, as docs/olt.md names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Phase {
    Discover,
    Start,
    Download,
    End,
    Verify,
    Activate,
    Reboot,
    Health,
    Commit,
    Inspect,
    Abort,
    Other,
}

impl Phase {
    pub(super) fn title(self) -> &'static str {
        match self {
            Phase::Discover => "Discovery",
            Phase::Start => "Start software download",
            Phase::Download => "Download",
            Phase::End => "End software download",
            Phase::Verify => "Verify",
            Phase::Activate => "Activate software",
            Phase::Reboot => "Reboot",
            Phase::Health => "Health check",
            Phase::Commit => "Commit software",
            Phase::Inspect => "Inspect",
            Phase::Abort => "Abort",
            Phase::Other => "Other messages",
        }
    }

    /// One line for the diagram's notes.
    pub(super) fn note(self, group: bool) -> &'static str {
        match self {
            Phase::Discover => {
                "Discovery: Get both Software image MEs. The target is the image neither active nor committed"
            }
            Phase::Start => {
                "Start software download: the ONU erases the target image and agrees on a window size"
            }
            Phase::Download if group => {
                "Download: each window once to the multicast group, AR on its last section. Each ONU answers on its own channel"
            }
            Phase::Download => {
                "Download: the image in windows of sections, AR on each window's last, one answer per window"
            }
            Phase::End => {
                "End software download: image CRC and size. Device busy = still writing flash, the OLT asks again"
            }
            Phase::Verify => "Verify: the target is valid, has the new version, is not active",
            Phase::Activate => {
                "Activate software: the ONU reboots into the new image (active, not yet committed)"
            }
            Phase::Reboot => {
                "Reboot: the ONU announces its boot (attribute value change), the OLT polls with Get"
            }
            Phase::Health => "Health check: still active on the new version",
            Phase::Commit => {
                "Commit software: the new image boots from now on, the anti-rollback floor rises"
            }
            Phase::Inspect => {
                "Inspect: after a failure the OLT reads both images, to report what the ONU runs"
            }
            Phase::Abort => "Abort: End software download with size 0 and CRC 0xFFFFFFFF",
            Phase::Other => "Other messages",
        }
    }
}

/// What the OLT has done with one ONU so far, to tell which phase a message belongs to.
#[derive(Clone, Debug, Default)]
pub(super) struct OnuState {
    /// The instance of the last Start (the target).
    pub(super) target: Option<u16>,
    pub(super) started: bool,
    pub(super) end_sent: bool,
    pub(super) end_ok: bool,
    pub(super) activated: bool,
    /// The target answered active after the Activate.
    pub(super) back: bool,
    pub(super) committed: bool,
    /// Last known values per image instance.
    pub(super) images: BTreeMap<u16, ImageState>,
    /// An Activate or a Reboot was sent and the boot not yet announced.
    pub(super) awaiting_boot: bool,
    /// Why the upgrade failed, once it did.
    pub(super) failure: Option<String>,
    /// The ONU came back from the Activate on its committed image.
    pub(super) fell_back: bool,
}

impl OnuState {
    fn fall_back(&mut self) {
        self.fell_back = true;
        self.failure = Some(
            "the ONU came back on its committed image: the new image did not boot, or the ONU \
             rebooted again before Commit"
                .to_string(),
        );
    }

    /// The phase of frame `f` for this ONU, updating the state.
    pub(super) fn step(&mut self, f: &Frame) -> Phase {
        match &f.body {
            Body::Get { .. } | Body::GetResponse { .. } => {
                if f.me_class == MeClass::SOFTWARE_IMAGE.0
                    && let Body::GetResponse {
                        image: Some(s),
                        result,
                        ..
                    } = &f.body
                    && result.is_success()
                {
                    self.images.entry(f.me_instance).or_default().merge(s);
                    if self.activated
                        && Some(f.me_instance) == self.target
                        && s.is_active == Some(true)
                        && !self.back
                    {
                        self.back = true;
                        // Activated again after falling back (it rebooted before Commit):
                        // this time it runs.
                        self.fell_back = false;
                        self.failure = None;
                        return Phase::Reboot;
                    }
                    if self.activated
                        && !self.awaiting_boot
                        && !self.back
                        && Some(f.me_instance) == self.target
                        && s.is_active == Some(false)
                    {
                        self.fall_back();
                    }
                }
                if self.failure.is_some() {
                    Phase::Inspect
                } else if self.committed {
                    Phase::Commit
                } else if self.back {
                    Phase::Health
                } else if self.activated {
                    Phase::Reboot
                } else if self.end_ok {
                    Phase::Verify
                } else if self.end_sent {
                    Phase::End
                } else if self.started {
                    Phase::Download
                } else {
                    Phase::Discover
                }
            }
            Body::StartDownload { .. } => {
                *self = OnuState {
                    target: Some(f.me_instance),
                    started: true,
                    images: std::mem::take(&mut self.images),
                    ..OnuState::default()
                };
                Phase::Start
            }
            Body::StartDownloadResponse { result, .. } => {
                if !result.is_success() {
                    self.failure = Some(format!(
                        "the ONU refused Start software download ({})",
                        result_words(*result)
                    ));
                }
                Phase::Start
            }
            Body::Section { .. } | Body::SectionResponse { .. } => Phase::Download,
            Body::EndDownload {
                crc, image_size, ..
            } => {
                if *image_size == 0 && *crc == 0xFFFF_FFFF {
                    Phase::Abort
                } else {
                    self.end_sent = true;
                    Phase::End
                }
            }
            Body::EndDownloadResponse { result } => {
                if self.end_sent {
                    if result.is_success() {
                        self.end_ok = true;
                    } else if *result != ResultCode::DeviceBusy {
                        self.failure = Some(format!(
                            "End software download was answered {}: the image did not verify",
                            result_words(*result)
                        ));
                    }
                    Phase::End
                } else {
                    Phase::Abort
                }
            }
            Body::Activate { .. } => {
                self.activated = true;
                self.back = false;
                self.awaiting_boot = true;
                Phase::Activate
            }
            Body::ActivateResponse { result } => {
                if result.is_success() {
                    self.failure = None;
                } else {
                    // Not activated: no reboot comes.
                    self.activated = false;
                    self.awaiting_boot = false;
                    self.failure = Some(if *result == ResultCode::DeviceBusy {
                        "Activate software was answered device busy (a call was in progress): \
                         the ONU would not reboot then"
                            .to_string()
                    } else {
                        format!("Activate software was answered {}", result_words(*result))
                    });
                }
                Phase::Activate
            }
            Body::Commit => {
                self.committed = true;
                Phase::Commit
            }
            Body::CommitResponse { .. } => Phase::Commit,
            Body::Reboot { .. } => {
                self.awaiting_boot = true;
                Phase::Other
            }
            Body::AttributeValueChange { image, .. } => {
                if f.me_class == MeClass::SOFTWARE_IMAGE.0
                    && let Some(s) = image
                {
                    self.images.entry(f.me_instance).or_default().merge(s);
                    // At boot both images are announced, the target last: the boot is then
                    // fully announced.
                    if self.awaiting_boot && self.target.is_none_or(|t| t == f.me_instance) {
                        self.awaiting_boot = false;
                        if self.activated && !self.back && s.is_active == Some(false) {
                            self.fall_back();
                        }
                    }
                }
                if self.committed {
                    Phase::Commit
                } else if self.activated {
                    Phase::Reboot
                } else if self.end_sent {
                    Phase::End
                } else if self.started {
                    Phase::Download
                } else {
                    Phase::Discover
                }
            }
            _ => Phase::Other,
        }
    }
}

/// What an attribute value change of the Software image ME says about a boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Boot {
    /// Not a boot announcement.
    No,
    /// The announcement of the boot an Activate (or a Reboot) asked for.
    Announced,
    /// A boot nobody asked for, in the middle of a download: the ONU lost power, say.
    Unexpected,
}

impl Boot {
    /// The kind of frame `f` for an ONU in state `st` (before `st` takes the frame).
    pub(super) fn of(st: &OnuState, f: &Frame) -> Boot {
        let Body::AttributeValueChange { image, .. } = &f.body else {
            return Boot::No;
        };
        if f.me_class != MeClass::SOFTWARE_IMAGE.0 {
            return Boot::No;
        }
        if st.awaiting_boot {
            return Boot::Announced;
        }
        // The old image announced as running and committed while a download was under way:
        // the ONU booted without being asked to.
        match image {
            Some(s)
                if st.started
                    && !st.activated
                    && st.target.is_some_and(|t| t != f.me_instance)
                    && s.is_active == Some(true)
                    && s.is_committed == Some(true) =>
            {
                Boot::Unexpected
            }
            _ => Boot::No,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Boot::No => "",
            Boot::Announced => " (boot announcement)",
            Boot::Unexpected => " (an unexpected boot: the ONU restarted)",
        }
    }
}
