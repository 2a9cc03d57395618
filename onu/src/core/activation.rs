//! Activate, Commit and Reboot (G.988 A.3.24 to A.3.27, I.3): which image boots next, the
//! voice and emergency call conditions, and the reboot the core asks its driver for.

use omci_codec::software_image::SoftwareImageId;
use omci_codec::{MeClass, Message, ResultCode};

use super::{Onu, OnuEvent, unknown};
use crate::faults::FaultPoint;
use crate::flash::Flash;

impl<F: Flash> Onu<F> {
    fn call_blocks(&self, condition: u8) -> Option<ResultCode> {
        match condition {
            0 => None,
            1 if self.cfg.voice_call_in_progress => Some(ResultCode::DeviceBusy),
            2 if self.cfg.emergency_call_in_progress => Some(ResultCode::DeviceBusy),
            1 | 2 => None,
            _ => Some(ResultCode::ParameterError),
        }
    }

    pub(super) fn on_activate(&mut self, msg: &Message<'_>, flags: u8) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        if !self.meta.slots[usize::from(slot)].valid {
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        if let Some(code) = self.call_blocks(flags) {
            return self.respond_code(msg, code);
        }
        if slot == self.running {
            return self.respond_code(msg, ResultCode::Success);
        }
        self.meta.pending = Some(slot);
        self.meta.boot_tries = 0;
        if !self.persist() {
            return;
        }
        self.events.push_back(OnuEvent::Activated { slot });
        self.respond_code(msg, ResultCode::Success);
        if self.fault(FaultPoint::AfterActivate) {
            return;
        }
        self.request_reboot();
    }

    pub(super) fn on_commit(&mut self, msg: &Message<'_>) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        let s = &self.meta.slots[usize::from(slot)];
        if !s.valid {
            return self.respond_code(msg, ResultCode::ParameterError);
        }
        if self.meta.committed != slot {
            // The anti-rollback floor rises only to an image that booted and is committed
            // (docs/decisions.md): the running one now, a standby one when it boots
            // (`boot::boot`). A committed image that never booted may yet be abandoned.
            if slot == self.running {
                self.meta.anti_rollback_floor =
                    s.security_version.max(self.meta.anti_rollback_floor);
            }
            let before = self.meta.committed;
            self.meta.committed = slot;
            if !self.persist() {
                return;
            }
            self.events.push_back(OnuEvent::Committed { slot });
            self.respond_code(msg, ResultCode::Success);
            self.notify_flags(slot);
            self.notify_flags(before);
        } else {
            self.respond_code(msg, ResultCode::Success);
        }
    }

    pub(super) fn on_reboot(&mut self, msg: &Message<'_>, condition: u8) {
        if msg.me.class != MeClass::ONU_G {
            return self.respond_code(msg, unknown(msg.me, MeClass::ONU_G));
        }
        if msg.me.instance != 0 {
            return self.respond_code(msg, ResultCode::UnknownInstance);
        }
        if let Some(code) = self.call_blocks(condition) {
            return self.respond_code(msg, code);
        }
        self.respond_code(msg, ResultCode::Success);
        if self.cfg.quirks.no_fallback && self.running != self.meta.committed {
            // The quirk: boot the uncommitted running image again instead of the committed one.
            self.meta.pending = Some(self.running);
            self.meta.boot_tries = 0;
            if !self.persist() {
                return;
            }
        }
        self.request_reboot();
    }

    fn request_reboot(&mut self) {
        self.reboot = true;
        self.events.push_back(OnuEvent::RebootRequested);
    }
}
