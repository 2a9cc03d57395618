//! End software download (G.988 A.3.23): "device busy" while the image is written and
//! verified, then the image checks that alone make a slot valid: CRC and size against what was
//! written, then the image's own (model, anti-rollback floor, payload SHA-256, signature),
//! streamed from flash; the abort convention; the outcome kept for a repeated End.
//!
//! A delta package (docs/onu.md, "Delta packages") passes the same CRC check, then its own
//! (signature, and its base is the committed image by SHA-256); the target is then rebuilt
//! into the rebuild area a bounded step at a time, with End still answered "device busy",
//! verified there exactly as a downloaded image, and only then swapped into the slot and
//! recorded valid. The base image is only ever read.

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
use pon::delta::{self, DeltaHeader, PatchIo, Patcher};
use pon::firmware::{self as image, DevicePolicy, ImageError};

/// Bytes of the target a rebuild writes per step unless configured otherwise; between steps the driver reads the PON, so
/// that End is answered "device busy" while the rebuild goes on.
pub(super) const REBUILD_STEP: u64 = 256 << 10;
/// The pause after each rebuild step (lets the driver's sockets in before the next step).
pub(super) const REBUILD_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// A delta rebuild under way: the package's header and the patcher's place.
#[derive(Debug)]
pub(super) struct Rebuild {
    header: DeltaHeader,
    patcher: Patcher,
}

/// The patcher's view of the flash: the package in `package`'s slot, the base in the
/// committed slot, the target into the rebuild area.
struct RebuildIo<'a, F: Flash> {
    flash: &'a mut F,
    package: u8,
    base: u8,
}

impl<F: Flash> PatchIo for RebuildIo<'_, F> {
    fn read_package(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.flash.read_slot(self.package, offset, buf)
    }
    fn read_base(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.flash.read_slot(self.base, offset, buf)
    }
    fn write_target(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.flash.write_rebuild(offset, data)
    }
}

/// The state of End software download after the first End request.
#[derive(Debug)]
pub(super) enum Verification {
    /// Writing and verifying until `until` (`None`: a busy duration past what an `Instant`
    /// can hold, which never ends); End is answered busy.
    Busy {
        until: Option<Instant>,
        slot: u8,
        request: EndSoftwareDownloadRequest,
    },
    /// Rebuilding a delta package's target; End is answered busy. The next step at `next`.
    Rebuilding {
        next: Instant,
        slot: u8,
        request: EndSoftwareDownloadRequest,
        rebuild: Box<Rebuild>,
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
            if let Some(
                Verification::Busy { slot: s, .. }
                | Verification::Rebuilding { slot: s, .. }
                | Verification::Done { slot: s, .. },
            ) = &self.verification
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
            Some(Verification::Busy { request, .. } | Verification::Rebuilding { request, .. })
                if request == r =>
            {
                return self.respond_end(msg, ResultCode::DeviceBusy);
            }
            Some(Verification::Done {
                request, result, ..
            }) if request == r => {
                let result = *result;
                return self.respond_end(msg, result);
            }
            Some(Verification::Busy { slot: s, .. } | Verification::Rebuilding { slot: s, .. }) => {
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
            self.finish_verification(now, slot, r.clone());
            let result = match &self.verification {
                Some(Verification::Done { result, .. }) => *result,
                Some(Verification::Rebuilding { .. }) => ResultCode::DeviceBusy,
                _ => return,
            };
            return self.respond_end(msg, result);
        }
        self.respond_end(msg, ResultCode::DeviceBusy);
        self.fault(FaultPoint::DuringBusy);
    }

    /// The flash write is done: check CRC, size and the image itself, and record the outcome
    /// (or, for a delta package that passes its checks, start its rebuild).
    pub(super) fn finish_verification(
        &mut self,
        now: Instant,
        slot: u8,
        request: EndSoftwareDownloadRequest,
    ) {
        // Streamed from flash: what was written is what is checked, and memory stays small.
        let policy = DevicePolicy {
            model: self.cfg.model.clone(),
            anti_rollback_floor: self.meta.anti_rollback_floor,
            public_key: self.cfg.public_key,
        };
        let flash = &mut self.flash;
        let size = u64::from(request.image_size);
        let mut magic = [0u8; 8];
        let is_delta = flash.read_slot(slot, 0, &mut magic).is_ok() && delta::is_delta(&magic);
        let read_failed = |e: std::io::Error| (format!("flash read failed: {e}"), None);
        let crc_checked = |crc: u32| {
            if crc == request.crc {
                return Ok(());
            }
            Err((
                format!("image CRC 0x{crc:08x}, End says 0x{:08x}", request.crc),
                Some(CrcMismatch {
                    written: crc,
                    end: request.crc,
                }),
            ))
        };
        // A refusal: why, and whether it is End's CRC against what was written. Streamed from
        // flash, in one pass for an image (its checks and End's CRC read the same bytes):
        // what was written is what is checked, and memory stays small. A delta package's own
        // checks come at its rebuild.
        let outcome = if is_delta {
            image::crc_from(size, &mut |o, b| flash.read_slot(slot, o, b))
                .map_err(read_failed)
                .and_then(crc_checked)
                .map(|()| None)
        } else {
            image::verify_and_crc_from(size, &mut |o, b| flash.read_slot(slot, o, b), &policy)
                .map_err(read_failed)
                .and_then(|(crc, found)| {
                    crc_checked(crc)?;
                    found
                        .map(|found| Some(slot_meta(&found)))
                        .map_err(|e: ImageError| (e.to_string(), None))
                })
        };
        let result = match outcome {
            Ok(None) => return self.start_rebuild(now, slot, request),
            // With `sync_every_window`, what was written is made durable before the metadata
            // calls it valid. Without, the page cache keeps it across the lab's power cuts (a
            // process killed); should a host crash lose it, the bootloader's check of every
            // image before it runs refuses the slot and falls back (docs/onu.md, "Durability").
            Ok(Some(slot_meta)) => match self.sync_if_strict(slot) {
                Ok(()) => self.record_valid(slot, slot_meta),
                Err(e) => {
                    self.events.push_back(OnuEvent::ImageRefused {
                        slot,
                        reason: format!("flash sync failed: {e}"),
                        crc_mismatch: None,
                    });
                    Some(ResultCode::ProcessingError)
                }
            },
            Err((reason, crc_mismatch)) => {
                self.events.push_back(OnuEvent::ImageRefused {
                    slot,
                    reason,
                    crc_mismatch,
                });
                Some(ResultCode::ProcessingError)
            }
        };
        if let Some(result) = result {
            self.verification = Some(Verification::Done {
                slot,
                request,
                result,
            });
        }
    }

    /// Syncs `slot` when every write is to be durable at once (`sync_every_window`).
    fn sync_if_strict(&mut self, slot: u8) -> std::io::Result<()> {
        if self.cfg.sync_every_window {
            self.flash.sync_slot(slot)
        } else {
            Ok(())
        }
    }

    /// Records `slot` valid with `slot_meta`: the result for End, or `None` when the power
    /// was cut (or the refusal is already recorded).
    fn record_valid(&mut self, slot: u8, slot_meta: crate::meta::SlotMeta) -> Option<ResultCode> {
        {
            {
                let version = String::from_utf8_lossy(&slot_meta.version)
                    .trim_end_matches('\0')
                    .to_string();
                let before = self.meta.slots[usize::from(slot)].clone();
                self.meta.slots[usize::from(slot)] = slot_meta;
                if !self.persist() {
                    if self.dead.is_some() {
                        return None;
                    }
                    // The flash refused the record: the image is not valid after all.
                    self.meta.slots[usize::from(slot)] = before;
                    self.events.push_back(OnuEvent::ImageRefused {
                        slot,
                        reason: "the metadata could not be written".into(),
                        crc_mismatch: None,
                    });
                    return Some(ResultCode::ProcessingError);
                }
                self.events
                    .push_back(OnuEvent::ImageValid { slot, version });
                self.notify_flags(slot);
                Some(ResultCode::Success)
            }
        }
    }

    /// A delta package in `slot` passed End's CRC: check its signature and its base, then
    /// start rebuilding its target (End stays busy), or refuse it.
    fn start_rebuild(&mut self, now: Instant, slot: u8, request: EndSoftwareDownloadRequest) {
        let base = self.meta.committed;
        let base_meta = self.meta.slots[usize::from(base)].clone();
        let key = self.cfg.public_key;
        let flash = &mut self.flash;
        let size = u64::from(request.image_size);
        let checked = delta::verify_from(
            size,
            &mut |o, b| flash.read_slot(slot, o, b),
            &key,
            &base_meta.image_sha256,
        )
        .map_err(|e| e.to_string())
        .and_then(|header| {
            let t = &header.target;
            if t.model != self.cfg.model {
                return Err(ImageError::WrongModel {
                    image: t.model.clone(),
                    device: self.cfg.model.clone(),
                }
                .to_string());
            }
            if t.security_version < self.meta.anti_rollback_floor {
                return Err(ImageError::Downgrade {
                    image: t.security_version,
                    floor: self.meta.anti_rollback_floor,
                }
                .to_string());
            }
            if header.target_len() > self.cfg.slot_size {
                return Err(format!(
                    "the rebuilt image ({} bytes) would be larger than the slot ({} bytes)",
                    header.target_len(),
                    self.cfg.slot_size
                ));
            }
            self.flash
                .erase_rebuild()
                .map_err(|e| format!("flash erase failed: {e}"))?;
            Ok(header)
        });
        match checked {
            Ok(header) => {
                self.events.push_back(OnuEvent::DeltaRebuildStarted {
                    slot,
                    base_version: header.base_version.clone(),
                    target_version: header.target.version.clone(),
                    target_len: header.target_len(),
                });
                let patcher = Patcher::new(&header, base_meta.image_len);
                self.verification = Some(Verification::Rebuilding {
                    next: now,
                    slot,
                    request,
                    rebuild: Box::new(Rebuild { header, patcher }),
                });
            }
            Err(reason) => self.refuse_delta(slot, request, reason),
        }
    }

    /// The delta package in `slot` is refused: is valid stays 0, End gets processing error.
    fn refuse_delta(&mut self, slot: u8, request: EndSoftwareDownloadRequest, reason: String) {
        self.events.push_back(OnuEvent::ImageRefused {
            slot,
            reason,
            crc_mismatch: None,
        });
        self.verification = Some(Verification::Done {
            slot,
            request,
            result: ResultCode::ProcessingError,
        });
    }

    /// One step of the rebuild under way, at `now`; at its end the checks, the swap and the
    /// metadata.
    pub(super) fn rebuild_step(&mut self, now: Instant) {
        let Some(Verification::Rebuilding {
            slot,
            request,
            mut rebuild,
            ..
        }) = self.verification.take()
        else {
            return;
        };
        let mut io = RebuildIo {
            flash: &mut self.flash,
            package: slot,
            base: self.meta.committed,
        };
        let done = match rebuild.patcher.step(&mut io, self.cfg.rebuild_step.max(1)) {
            Ok(done) => done,
            Err(e) => return self.refuse_delta(slot, request, e.to_string()),
        };
        if self.fault(FaultPoint::MidDeltaRebuild) {
            return;
        }
        if !done {
            self.verification = Some(Verification::Rebuilding {
                next: now + REBUILD_PAUSE,
                slot,
                request,
                rebuild,
            });
            return;
        }
        // The whole target is in the rebuild area: verify it there, exactly as a downloaded
        // image, and that it is the very image the package promised.
        let policy = DevicePolicy {
            model: self.cfg.model.clone(),
            anti_rollback_floor: self.meta.anti_rollback_floor,
            public_key: self.cfg.public_key,
        };
        let len = rebuild.header.target_len();
        let flash = &mut self.flash;
        let verified = image::verify_from(len, &mut |o, b| flash.read_rebuild(o, b), &policy)
            .map_err(|e| format!("the rebuilt image: {e}"))
            .and_then(|found| {
                if found.file_sha256 == rebuild.header.target_sha256 {
                    Ok(found)
                } else {
                    Err("the rebuilt image's SHA-256 is not the package's target's".into())
                }
            });
        let found = match verified {
            Ok(found) => found,
            Err(reason) => return self.refuse_delta(slot, request, reason),
        };
        if self.fault(FaultPoint::DeltaRebuiltBeforeSwap) {
            return;
        }
        if let Err(e) = self.flash.promote_rebuild(slot) {
            return self.refuse_delta(slot, request, format!("flash write failed: {e}"));
        }
        if self.fault(FaultPoint::DeltaSwappedBeforeMetadata) {
            return;
        }
        if let Some(result) = self.record_valid(slot, slot_meta(&found)) {
            self.verification = Some(Verification::Done {
                slot,
                request,
                result,
            });
        }
    }
}
