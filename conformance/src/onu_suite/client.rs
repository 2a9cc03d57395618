//! The client side of the suite: the requests an OLT sends in a software download, one at a
//! time, each waiting for its answer, over the [`Exchange`] (so with no socket and no clock of
//! its own). The checks ([`super::checks`]) are written in these words.

use std::borrow::Cow;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use omci_codec::contents::{
    ActivateSoftwareRequest, AttributeValues, Contents, DownloadSectionRequest,
    EndSoftwareDownloadRequest, GetRequest, StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::{SoftwareImageAttributes, mask};
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, ResultCode, Tci, WindowNo,
};
use pon::image::Cut;

use super::catalogue::CheckSpec;
use super::exchange::Exchange;
use super::report::{Check, Verdict};
use super::{SuiteError, Target};

/// The TCIs the suite uses, in turn: the range the OLT's unicast sessions use (G.988 11.2.1:
/// bit 15 clear, low priority; 0x4000..=0x7FFF is the OLT's multicast group's; TCI 0 is the
/// ONU's own, on its attribute value changes).
pub(super) const TCIS: RangeInclusive<u16> = 0x0001..=0x3FFF;

/// How often a request is sent when it goes unanswered.
const SENDS_PER_REQUEST: usize = 2;

/// How long End software download is asked again while the ONU answers device busy.
const BUSY_PATIENCE: Duration = Duration::from_secs(60);
/// The pause between two End requests answered busy.
const BUSY_PAUSE: Duration = Duration::from_millis(100);

/// The pause after a reboot starts before the first Get.
const BOOT_GRACE: Duration = Duration::from_millis(200);
/// The pause between two Gets while the ONU reboots.
const BOOT_POLL: Duration = Duration::from_millis(250);

/// The section size of the extended downloads (the largest a 1980-byte frame carries).
pub(super) const EXTENDED_SECTION_LEN: usize = 1965;

/// An answer, or nothing within the timeout.
pub(super) type Answer = Option<Message<'static>>;

/// The suite's side of the exchange with one ONU.
pub(super) struct Client {
    x: Exchange,
    /// The ONU and what to send it.
    pub(super) t: Target,
    codec: Codec,
    /// The last TCI used (the next is the one after it in [`TCIS`]).
    tci: u16,
}

impl Client {
    pub(super) fn new(x: Exchange, t: Target) -> Client {
        Client {
            x,
            t,
            codec: Codec::new(ExtendedTrailer::Crc32),
            tci: *TCIS.end(),
        }
    }

    /// The suite's clock.
    pub(super) fn now(&self) -> Instant {
        self.x.now()
    }

    /// Records the verdict of `spec`, which started at `since`.
    pub(super) fn record(
        &self,
        spec: CheckSpec,
        sent: impl Into<String>,
        verdict: Verdict,
        since: Instant,
    ) {
        self.x.record(Check {
            id: spec.id.into(),
            title: spec.title.into(),
            source: spec.source.into(),
            sent: sent.into(),
            verdict,
            seconds: self.now().saturating_duration_since(since).as_secs_f64(),
        });
    }

    pub(super) async fn sleep(&self, d: Duration) {
        self.x.sleep(d).await;
    }

    pub(super) fn next_tci(&mut self) -> Tci {
        self.tci = if self.tci >= *TCIS.end() {
            *TCIS.start()
        } else {
            self.tci + 1
        };
        Tci(self.tci)
    }

    fn send(&mut self, env: Envelope, msg: &Message<'_>) -> Result<(), SuiteError> {
        let frame = self.codec.to_vec(msg)?;
        self.x.send(env.wrap(&frame));
        Ok(())
    }

    /// Sends `msg` with its CRC-32 trailer damaged (its last byte inverted).
    pub(super) fn send_damaged(&mut self, msg: &Message<'_>) -> Result<(), SuiteError> {
        let mut frame = self.codec.to_vec(msg)?;
        if let Some(last) = frame.last_mut() {
            *last ^= 0xFF;
        }
        self.x.send(Envelope::omcc(self.t.onu).wrap(&frame));
        Ok(())
    }

    /// Waits for the answer to `tci` (notifications and stray answers are skipped).
    pub(super) async fn wait(&mut self, tci: Tci, within: Duration) -> Answer {
        let deadline = self.now() + within;
        while let Some(d) = self.x.recv_until(deadline).await {
            let Ok((_, frame)) = Envelope::parse(&d) else {
                continue;
            };
            if let Ok(m) = self.codec.parse(frame)
                && m.tci == tci
                && m.ak()
            {
                return Some(m.into_owned());
            }
        }
        None
    }

    /// Sends a request and waits for its answer (sent again if the first goes unanswered).
    pub(super) async fn ask(
        &mut self,
        me: MeId,
        contents: Contents<'_>,
    ) -> Result<Answer, SuiteError> {
        self.ask_as(Format::Baseline, me, contents).await
    }

    pub(super) async fn ask_as(
        &mut self,
        format: Format,
        me: MeId,
        contents: Contents<'_>,
    ) -> Result<Answer, SuiteError> {
        let tci = self.next_tci();
        let msg = Message::new(tci, format, me, contents);
        for _ in 0..SENDS_PER_REQUEST {
            self.send(Envelope::omcc(self.t.onu), &msg)?;
            if let Some(a) = self.wait(tci, self.t.timeout).await {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    pub(super) async fn get(
        &mut self,
        me: MeId,
        attribute_mask: u16,
    ) -> Result<Answer, SuiteError> {
        self.ask(me, Contents::GetRequest(GetRequest { attribute_mask }))
            .await
    }

    /// The flags and version of software image `instance`.
    pub(super) async fn image(
        &mut self,
        instance: u16,
    ) -> Result<Option<SoftwareImageAttributes>, SuiteError> {
        let a = self
            .get(
                sw(instance),
                mask::VERSION | mask::IS_COMMITTED | mask::IS_ACTIVE | mask::IS_VALID,
            )
            .await?;
        Ok(a.and_then(|m| match m.contents {
            Contents::GetResponse(g) if g.result == ResultCode::Success => match g.attributes {
                AttributeValues::SoftwareImage(s) => Some(*s),
                _ => None,
            },
            _ => None,
        }))
    }

    /// Both images' attributes.
    pub(super) async fn images(&mut self) -> Result<[SoftwareImageAttributes; 2], SuiteError> {
        let a = self
            .image(0)
            .await?
            .ok_or(SuiteError::GetFailed { instance: 0 })?;
        let b = self
            .image(1)
            .await?
            .ok_or(SuiteError::GetFailed { instance: 1 })?;
        Ok([a, b])
    }

    /// The instance neither active nor committed.
    pub(super) async fn standby(&mut self) -> Result<u16, SuiteError> {
        let imgs = self.images().await?;
        (0..2u16)
            .find(|i| {
                let a = &imgs[usize::from(*i)];
                a.is_active != Some(true) && a.is_committed != Some(true)
            })
            .ok_or(SuiteError::NoStandby)
    }

    pub(super) async fn start(
        &mut self,
        instance: u16,
        size: u32,
        window: u16,
        format: Format,
    ) -> Result<Answer, SuiteError> {
        self.ask_as(
            format,
            sw(instance),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (window.clamp(1, 256) - 1) as u8,
                image_size: size,
                instances: [instance].into_iter().collect(),
            }),
        )
        .await
    }

    /// Sends the sections `order` of window `w` (AR on the window's last section, whenever it
    /// comes in `order`), the envelope carrying the window number and CRC (`crc`, or the right
    /// one) unless `plain`; waits for the AR's answer.
    pub(super) async fn window(
        &mut self,
        instance: u16,
        cut: Cut,
        w: u32,
        order: &[usize],
        crc: Option<u32>,
        plain: bool,
    ) -> Result<Option<ResultCode>, SuiteError> {
        let img = self.t.image.clone();
        let count = img.sections_in(cut, w);
        let mut ar_tci = None;
        for &n in order {
            let ar = n + 1 == count;
            let tci = self.next_tci();
            let msg = Message::new(
                tci,
                cut.format,
                sw(instance),
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: n as u8,
                    data: Cow::Owned(img.section(cut, w, n)),
                }),
            )
            .with_ar(ar);
            let env = Envelope {
                window_no: (!plain).then_some(WindowNo(w)),
                window_crc: if ar && !plain {
                    Some(crc.unwrap_or_else(|| img.window_crc(cut, w)))
                } else {
                    None
                },
                ..Envelope::omcc(self.t.onu)
            };
            self.send(env, &msg)?;
            if ar {
                ar_tci = Some(tci);
            }
        }
        let Some(tci) = ar_tci else {
            return Ok(None);
        };
        Ok(self
            .wait(tci, self.t.timeout)
            .await
            .and_then(|m| m.contents.result()))
    }

    /// The sections of window `w` in order.
    pub(super) fn in_order(&self, cut: Cut, w: u32) -> Vec<usize> {
        (0..self.t.image.sections_in(cut, w)).collect()
    }

    /// Every window in order; the first result that is not success, or success.
    pub(super) async fn all_windows(
        &mut self,
        instance: u16,
        cut: Cut,
    ) -> Result<Option<ResultCode>, SuiteError> {
        let windows = self.t.image.windows(cut);
        for w in 0..windows {
            let order = self.in_order(cut, w);
            let r = self.window(instance, cut, w, &order, None, false).await?;
            if r != Some(ResultCode::Success) {
                return Ok(r);
            }
        }
        Ok(Some(ResultCode::Success))
    }

    /// End software download, asked again while the ONU answers busy (for up to
    /// [`BUSY_PATIENCE`]). Returns the final result and how many busy answers came first.
    pub(super) async fn end(
        &mut self,
        instance: u16,
        crc: u32,
        size: u32,
        format: Format,
    ) -> Result<(Option<ResultCode>, u32), SuiteError> {
        let mut busy = 0;
        let until = self.now() + BUSY_PATIENCE;
        loop {
            let a = self
                .ask_as(
                    format,
                    sw(instance),
                    Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                        crc,
                        image_size: size,
                        instances: [instance].into_iter().collect(),
                    }),
                )
                .await?;
            match a.and_then(|m| m.contents.result()) {
                Some(ResultCode::DeviceBusy) if self.now() < until => {
                    busy += 1;
                    self.sleep(BUSY_PAUSE).await;
                }
                r => return Ok((r, busy)),
            }
        }
    }

    /// A whole download of the image into `instance` with windows of `window`: `Ok` when every
    /// window and End succeeded, else what went wrong.
    pub(super) async fn download(
        &mut self,
        instance: u16,
        window: u16,
        format: Format,
    ) -> Result<Result<(), String>, SuiteError> {
        let size = self.t.image.len() as u32;
        let start = self.start(instance, size, window, format).await?;
        let accepted = match start.map(|m| m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                r.window_size()
            }
            other => return Ok(Err(format!("Start software download answered {other:?}"))),
        };
        let cut = self.t.image.cut(format, accepted, EXTENDED_SECTION_LEN);
        match self.all_windows(instance, cut).await? {
            Some(ResultCode::Success) => {}
            other => return Ok(Err(format!("a window answered {other:?}"))),
        }
        let crc = self.t.image.crc;
        match self.end(instance, crc, size, format).await? {
            (Some(ResultCode::Success), _) => Ok(Ok(())),
            (other, _) => Ok(Err(format!("End software download answered {other:?}"))),
        }
    }

    /// Activate software of `instance` with `flags`.
    pub(super) async fn activate(
        &mut self,
        instance: u16,
        flags: u8,
    ) -> Result<Answer, SuiteError> {
        self.ask(
            sw(instance),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                activate_flags: flags,
            }),
        )
        .await
    }

    /// Commit software of `instance`.
    pub(super) async fn commit(&mut self, instance: u16) -> Result<Answer, SuiteError> {
        self.ask(sw(instance), Contents::CommitSoftwareRequest)
            .await
    }

    /// The abort convention of open OLT stacks: End with size 0 and CRC 0xFFFFFFFF.
    pub(super) async fn abort(&mut self, instance: u16) -> Result<(), SuiteError> {
        self.end(instance, ABORT_CRC, 0, Format::Baseline).await?;
        Ok(())
    }

    /// Waits until the ONU answers again after a reboot and `pred` holds of its images (for up
    /// to the target's reboot timeout).
    pub(super) async fn await_boot(
        &mut self,
        pred: impl Fn(&[SoftwareImageAttributes; 2]) -> bool,
    ) -> Result<Option<[SoftwareImageAttributes; 2]>, SuiteError> {
        let until = self.now() + self.t.reboot_timeout;
        self.sleep(BOOT_GRACE).await;
        while self.now() < until {
            if let (Some(a), Some(b)) = (self.image(0).await?, self.image(1).await?) {
                let imgs = [a, b];
                if pred(&imgs) {
                    return Ok(Some(imgs));
                }
            }
            self.sleep(BOOT_POLL).await;
        }
        Ok(None)
    }
}

/// The CRC of End's abort convention (with size 0).
pub(super) const ABORT_CRC: u32 = 0xFFFF_FFFF;

/// Software image `instance` (slot 0: the ONU-G's own images, 0 and 1).
pub(super) fn sw(instance: u16) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, instance)
}
