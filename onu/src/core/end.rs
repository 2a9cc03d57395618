//! End software download (G.988 A.3.23): "device busy" while the image is written and
//! verified, then the image checks that alone make a slot valid: CRC and size against what was
//! written, then the image's own (model, anti-rollback floor, payload SHA-256, signature),
//! streamed from flash; the abort convention; the outcome kept for a repeated End.

use std::time::Instant;

use omci_codec::contents::{
    Contents, EndSoftwareDownloadRequest, EndSoftwareDownloadResponse, InstanceResult,
};
use omci_codec::software_image::SoftwareImageId;
use omci_codec::{Message, ResultCode};

use super::{CrcMismatch, Onu, OnuEvent};
use crate::boot::slot_meta;
use crate::faults::FaultPoint;
use crate::flash::Flash;
use pon::firmware::{self as image, DevicePolicy, ImageError};

/// The state of End software download after the first End request.
#[derive(Clone, Debug)]
pub(super) enum Verification {
    /// Writing and verifying until `until` (`None`: a busy duration past what an `Instant`
    /// can hold, which never ends); End is answered busy.
    Busy {
        until: Option<Instant>,
        slot: u8,
        request: EndSoftwareDownloadRequest,
    },
    /// Done; End is answered with `result`.
    Done {
        slot: u8,
        request: EndSoftwareDownloadRequest,
        result: ResultCode,
    },
}

impl<F: Flash> Onu<F> {
    fn respond_end(&mut self, msg: &Message<'_>, result: ResultCode) {
        self.respond(
            msg,
            Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                result,
                instances: [InstanceResult {
                    me_instance: msg.me.instance,
                    result,
                }]
                .into_iter()
                .collect(),
            }),
        );
    }

    pub(super) fn on_end(
        &mut self,
        now: Instant,
        msg: &Message<'_>,
        r: &EndSoftwareDownloadRequest,
    ) {
        let slot = SoftwareImageId::from_instance(msg.me.instance).image;
        if r.is_abort() {
            // Abort what concerns the named image only; aborting nothing is no error.
            if self.download.as_ref().is_some_and(|d| d.slot == slot) {
                self.discard_download("aborted by the OLT (End with size 0 and CRC 0xFFFFFFFF)");
            }
            if let Some(Verification::Busy { slot: s, .. } | Verification::Done { slot: s, .. }) =
                &self.verification
                && *s == slot
            {
                self.verification = None;
                self.events.push_back(OnuEvent::DownloadDiscarded {
                    reason: "aborted by the OLT during verification".into(),
                });
            }
            return self.respond_end(msg, ResultCode::Success);
        }
        // A repeated End while (or after) verifying: busy, then the stored result.
        match &self.verification {
            Some(Verification::Busy { request, .. }) if request == r => {
                return self.respond_end(msg, ResultCode::DeviceBusy);
            }
            Some(Verification::Done {
                request, result, ..
            }) if request == r => {
                let result = *result;
                return self.respond_end(msg, result);
            }
            Some(Verification::Busy { slot: s, .. }) => {
                // Another End while verifying: the OLT and the ONU disagree on the image.
                let s = *s;
                self.verification = None;
                self.events.push_back(OnuEvent::ImageRefused {
                    slot: s,
                    reason: "a different End software download arrived during verification".into(),
                    crc_mismatch: None,
                });
                return self.respond_end(msg, ResultCode::ParameterError);
            }
            _ => {}
        }
        let Some(d) = self.download.as_ref() else {
            return self.respond_end(msg, ResultCode::ProcessingError);
        };
        if d.instance != msg.me.instance {
            return self.respond_end(msg, ResultCode::ParameterError);
        }
        let (slot, size, complete) = (d.slot, d.image_size, d.complete());
        let failure = if r.image_size != size {
            Some((
                ResultCode::ParameterError,
                format!("End says {} bytes, Start said {size}", r.image_size),
            ))
        } else if !complete {
            Some((
                ResultCode::ProcessingError,
                "not every window was received".to_string(),
            ))
        } else {
            None
        };
        if let Some((code, reason)) = failure {
            self.discard_download(&reason);
            self.events.push_back(OnuEvent::ImageRefused {
                slot,
                reason,
                crc_mismatch: None,
            });
            return self.respond_end(msg, code);
        }
        self.download = None;
        self.verification = Some(Verification::Busy {
            until: now.checked_add(self.cfg.busy_duration),
            slot,
            request: r.clone(),
        });
        if self.cfg.quirks.end_before_write {
            // The quirk: success before the flash is written or the image checked.
            return self.respond_end(msg, ResultCode::Success);
        }
        if self.cfg.busy_duration.is_zero() {
            self.finish_verification(slot, r.clone());
            let result = match &self.verification {
                Some(Verification::Done { result, .. }) => *result,
                _ => return,
            };
            return self.respond_end(msg, result);
        }
        self.respond_end(msg, ResultCode::DeviceBusy);
        self.fault(FaultPoint::DuringBusy);
    }

    /// The flash write is done: check CRC, size and the image itself, and record the outcome.
    pub(super) fn finish_verification(&mut self, slot: u8, request: EndSoftwareDownloadRequest) {
        // Streamed from flash: what was written is what is checked, and memory stays small.
        let policy = DevicePolicy {
            model: self.cfg.model.clone(),
            anti_rollback_floor: self.meta.anti_rollback_floor,
            public_key: self.cfg.public_key,
        };
        let flash = &mut self.flash;
        let size = u64::from(request.image_size);
        // A refusal: why, and whether it is End's CRC against what was written.
        let outcome = image::crc_from(size, &mut |o, b| flash.read_slot(slot, o, b))
            .map_err(|e| (format!("flash read failed: {e}"), None))
            .and_then(|crc| {
                if crc != request.crc {
                    return Err((
                        format!("image CRC 0x{crc:08x}, End says 0x{:08x}", request.crc),
                        Some(CrcMismatch {
                            written: crc,
                            end: request.crc,
                        }),
                    ));
                }
                image::verify_from(size, &mut |o, b| flash.read_slot(slot, o, b), &policy)
                    .map(|found| slot_meta(&found))
                    .map_err(|e: ImageError| (e.to_string(), None))
            });
        let result = match outcome {
            Ok(slot_meta) => {
                let version = String::from_utf8_lossy(&slot_meta.version)
                    .trim_end_matches('\0')
                    .to_string();
                let before = self.meta.slots[usize::from(slot)].clone();
                self.meta.slots[usize::from(slot)] = slot_meta;
                if !self.persist() {
                    if self.dead.is_some() {
                        return;
                    }
                    // The flash refused the record: the image is not valid after all.
                    self.meta.slots[usize::from(slot)] = before;
                    self.events.push_back(OnuEvent::ImageRefused {
                        slot,
                        reason: "the metadata could not be written".into(),
                        crc_mismatch: None,
                    });
                    self.verification = Some(Verification::Done {
                        slot,
                        request,
                        result: ResultCode::ProcessingError,
                    });
                    return;
                }
                self.events
                    .push_back(OnuEvent::ImageValid { slot, version });
                self.notify_flags(slot);
                ResultCode::Success
            }
            Err((reason, crc_mismatch)) => {
                self.events.push_back(OnuEvent::ImageRefused {
                    slot,
                    reason,
                    crc_mismatch,
                });
                ResultCode::ProcessingError
            }
        };
        self.verification = Some(Verification::Done {
            slot,
            request,
            result,
        });
    }
}
