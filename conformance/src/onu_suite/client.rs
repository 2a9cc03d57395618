//! The client side of the suite: the requests an OLT sends, one at a time, each waiting for
//! its answer, over the [`Exchange`] (so with no socket and no clock of its own); and what the
//! run has learned about the target as it goes: whether it still answers, and which messages
//! it has shown it implements. The checks ([`super::checks`]) are written in these words.
//!
//! - **Liveness.** Every check that needs the target starts with [`Client::begin`], which
//!   asks a Get of ONU-G first. When that goes unanswered the target is *lost*: the check
//!   that was running when it stopped answering becomes an error if one of its own requests
//!   went unanswered (its verdict was reached on a silence the loss explains), every later
//!   check that needs the target is an error without traffic, and every request is answered
//!   "nothing" at once, so a dead target costs one probe, not a timeout per request.
//! - **Evidence.** A refusal proves nothing of an ONU that refuses everything. The client
//!   remembers each request type the target answered with success in this run
//!   ([`Client::shown`]); a refusal check is judged only if the target has shown it
//!   implements the message it refuses, and skipped with that reason otherwise.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use omci_codec::contents::{
    ActivateSoftwareRequest, AttributeValues, Contents, DownloadSectionRequest,
    EndSoftwareDownloadRequest, GetRequest, StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::{SoftwareImageAttributes, mask};
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, MessageType, ResultCode, Tci, WindowNo,
};
use pon::image::Cut;

use super::catalogue::CheckSpec;
use super::exchange::Exchange;
use super::report::{Check, Verdict};
use super::words;
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

/// ONU-G attribute 1 (vendor id): what the liveness probe asks.
const PROBE_MASK: u16 = 0x8000;

/// An answer, or nothing within the timeout.
pub(super) type Answer = Option<Message<'static>>;

/// The target stopped answering.
#[derive(Clone, Debug)]
pub(super) struct Lost {
    /// The check during (or after) which it did; empty before the first.
    pub(super) during: String,
    /// In a sentence: "the target stopped answering during DLS-04".
    pub(super) why: String,
}

/// The suite's side of the exchange with one ONU.
pub(super) struct Client {
    x: Exchange,
    /// The ONU and what to send it.
    pub(super) t: Target,
    codec: Codec,
    /// The last TCI used (the next is the one after it in [`TCIS`]).
    tci: u16,
    /// The request types the target has answered with success in this run (their codes).
    shown: BTreeSet<u8>,
    /// Requests that went unanswered since the last verdict.
    unanswered: u32,
    /// Requests of the check recorded last that went unanswered.
    last_unanswered: u32,
    /// Once the target stopped answering: when, and why in the words every later check's
    /// error uses.
    lost: Option<Lost>,
    /// The next [`Client::begin`] needs no probe: the target just answered one.
    fresh: bool,
    /// The target has shown an image valid, in its version, after a good End.
    shown_valid: bool,
}

impl Client {
    pub(super) fn new(x: Exchange, t: Target) -> Client {
        Client {
            x,
            t,
            codec: Codec::new(ExtendedTrailer::Crc32),
            tci: *TCIS.end(),
            shown: BTreeSet::new(),
            unanswered: 0,
            last_unanswered: 0,
            lost: None,
            fresh: false,
            shown_valid: false,
        }
    }

    /// The suite's clock.
    pub(super) fn now(&self) -> Instant {
        self.x.now()
    }

    pub(super) fn exchange(&self) -> &Exchange {
        &self.x
    }

    // ---------------------------------------------------------------- verdicts and liveness

    /// Records the verdict of `spec`, which started at `since`.
    pub(super) fn record(
        &mut self,
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
        self.last_unanswered = std::mem::take(&mut self.unanswered);
    }

    /// Records `spec` as skipped.
    pub(super) fn skip(
        &mut self,
        spec: CheckSpec,
        sent: impl Into<String>,
        why: impl Into<String>,
    ) {
        let now = self.now();
        self.record(spec, sent, Verdict::Skip { why: why.into() }, now);
    }

    /// Before a check that needs the target: true when it answers a Get of ONU-G (or has just
    /// answered one). When it does not, it is lost (see the module docs): the check that was
    /// running becomes an error if its own requests went unanswered, `spec` is recorded as an
    /// error, and false is returned: the check must not run.
    pub(super) async fn begin(&mut self, spec: CheckSpec, sent: &str) -> Result<bool, SuiteError> {
        if self.lost.is_none() && !std::mem::take(&mut self.fresh) && !self.probe().await? {
            self.mark_lost();
        }
        match self.lost.clone() {
            None => Ok(true),
            Some(lost) => {
                let now = self.now();
                self.record(spec, sent, Verdict::Error { why: lost.why }, now);
                Ok(false)
            }
        }
    }

    /// After the last check: judges it as [`Client::begin`] judges the one before a check.
    /// The run's end: completed (`None`), or lost.
    pub(super) async fn finish(&mut self) -> Result<Option<Lost>, SuiteError> {
        if self.lost.is_none() && !self.probe().await? {
            self.mark_lost();
        }
        Ok(self.lost.clone())
    }

    /// True when the target is lost.
    pub(super) fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// The target answers a Get of ONU-G (sent twice, as every request).
    async fn probe(&mut self) -> Result<bool, SuiteError> {
        let before = self.unanswered;
        let a = self
            .ask(
                MeId::new(MeClass::ONU_G, 0),
                Contents::GetRequest(GetRequest {
                    attribute_mask: PROBE_MASK,
                }),
            )
            .await?;
        // The probe's own silence is not the check's.
        self.unanswered = before;
        Ok(a.is_some())
    }

    /// The target stopped answering: the check recorded last is an error if a request of its
    /// own went unanswered.
    fn mark_lost(&mut self) {
        let lost = match self.x.last_id() {
            None => Lost {
                during: String::new(),
                why: "the target stopped answering before the first check".into(),
            },
            Some(id) if self.last_unanswered > 0 => {
                let why = format!("the target stopped answering during {id}");
                self.x.amend_last(Verdict::Error { why: why.clone() });
                Lost { during: id, why }
            }
            Some(id) => Lost {
                why: format!("the target stopped answering after {id}"),
                during: id,
            },
        };
        self.lost = Some(lost);
    }

    /// The target answers a Get of ONU-G or of software image 0: the first thing asked.
    pub(super) async fn reachable(&mut self) -> Result<bool, SuiteError> {
        let onu_g = self
            .get(MeId::new(MeClass::ONU_G, 0), PROBE_MASK)
            .await?
            .is_some();
        let ok = onu_g || self.image(0).await?.is_some();
        self.unanswered = 0;
        self.fresh = ok;
        Ok(ok)
    }

    // ---------------------------------------------------------------- evidence

    /// True when the target answered a request of `mt` with success in this run: it has shown
    /// it implements the message.
    pub(super) fn shown(&self, mt: MessageType) -> bool {
        self.shown.contains(&mt.code())
    }

    /// `Ok` when the target has shown it implements `mt`; else the skip reason of a check
    /// that needs it to.
    pub(super) fn needs_shown(&self, mt: MessageType, by: &str) -> Result<(), String> {
        if self.shown(mt) {
            Ok(())
        } else {
            Err(format!(
                "the target has not shown that it implements {mt} (no {mt} was answered with result 0, command processed successfully, {by}): a refusal from it proves nothing"
            ))
        }
    }

    /// True when the target has shown an image valid, in its version, after a good End.
    pub(super) fn shown_valid(&self) -> bool {
        self.shown_valid
    }

    // ---------------------------------------------------------------- requests

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
        let wire = self
            .t
            .framing
            .to_wire(env.wrap(&frame))
            .map_err(|e| SuiteError::Framing(e.to_string()))?;
        self.x.send(wire);
        Ok(())
    }

    /// Sends `msg` with its CRC-32 trailer damaged (its last byte inverted): on the lab's
    /// framing only (the OB-BAA framing carries no trailer).
    pub(super) fn send_damaged(&mut self, msg: &Message<'_>) -> Result<(), SuiteError> {
        let mut frame = self.codec.to_vec(msg)?;
        if let Some(last) = frame.last_mut() {
            *last ^= 0xFF;
        }
        self.x.send(Envelope::omcc(self.t.onu).wrap(&frame));
        Ok(())
    }

    /// Waits for the answer to `tci` (notifications, stray answers and datagrams that are not
    /// the target's are skipped).
    pub(super) async fn wait(&mut self, tci: Tci, within: Duration) -> Answer {
        if self.lost.is_some() {
            return None;
        }
        let deadline = self.now() + within;
        while let Some(d) = self.x.recv_until(deadline).await {
            let Ok(lab) = self.t.framing.from_wire(&d) else {
                continue;
            };
            let Ok((_, frame)) = Envelope::parse(&lab) else {
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
        if self.lost.is_some() {
            return Ok(None);
        }
        let tci = self.next_tci();
        let msg = Message::new(tci, format, me, contents);
        for _ in 0..SENDS_PER_REQUEST {
            self.send(Envelope::omcc(self.t.onu), &msg)?;
            if let Some(a) = self.wait(tci, self.t.timeout).await {
                if words::code_of(&a) == Some(ResultCode::Success) {
                    self.shown.insert(msg.message_type().code());
                }
                return Ok(Some(a));
            }
        }
        self.unanswered += 1;
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

    /// Both images' attributes, or why not (in words).
    pub(super) async fn images(
        &mut self,
    ) -> Result<Result<[SoftwareImageAttributes; 2], String>, SuiteError> {
        let a = self.image(0).await?;
        let b = self.image(1).await?;
        Ok(match (a, b) {
            (Some(a), Some(b)) => Ok([a, b]),
            (None, _) => Err("Get of software image 0 was not answered with its attributes".into()),
            (_, None) => Err("Get of software image 1 was not answered with its attributes".into()),
        })
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

    /// The window the ONU accepted at Start, or what it answered instead (in words).
    pub(super) async fn start_accepted(
        &mut self,
        instance: u16,
        size: u32,
        window: u16,
        format: Format,
    ) -> Result<Result<u16, String>, SuiteError> {
        let a = self.start(instance, size, window, format).await?;
        Ok(match a.as_ref().map(|m| &m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                Ok(r.window_size())
            }
            _ => Err(format!("Start software download {}", words::reply_to(&a))),
        })
    }

    /// Sends the sections `order` of window `w` (AR on the window's last section, whenever it
    /// comes in `order`), the envelope carrying the window number and CRC (`crc`, or the right
    /// one) unless `plain` or the framing cannot carry them; waits for the AR's answer.
    pub(super) async fn window(
        &mut self,
        instance: u16,
        cut: Cut,
        w: u32,
        order: &[usize],
        crc: Option<u32>,
        plain: bool,
    ) -> Result<Option<ResultCode>, SuiteError> {
        if self.lost.is_some() {
            return Ok(None);
        }
        let plain = plain || !self.t.framing.carries_window_fields();
        let img = self.t.image.clone();
        let count = img.sections_in(cut, w);
        let mut last = None;
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
                last = Some((tci, env, msg));
            }
        }
        let Some((tci, env, msg)) = last else {
            return Ok(None);
        };
        // An unanswered AR section is sent again, with its TCI, as an OLT does (its answer
        // may be what was lost); the window's other sections are not.
        let mut r = None;
        for i in 0..SENDS_PER_REQUEST {
            if i > 0 {
                self.send(env, &msg)?;
            }
            if let Some(m) = self.wait(tci, self.t.timeout).await {
                r = m.contents.result();
                break;
            }
        }
        match r {
            None => self.unanswered += 1,
            Some(ResultCode::Success) => {
                self.shown.insert(MessageType::DownloadSection.code());
            }
            Some(_) => {}
        }
        Ok(r)
    }

    /// The sections of window `w` in order.
    pub(super) fn in_order(&self, cut: Cut, w: u32) -> Vec<usize> {
        (0..self.t.image.sections_in(cut, w)).collect()
    }

    /// Windows `from..` in order; the first result that is not success (and its window), or
    /// success.
    pub(super) async fn windows_from(
        &mut self,
        instance: u16,
        cut: Cut,
        from: u32,
    ) -> Result<Result<(), String>, SuiteError> {
        let windows = self.t.image.windows(cut);
        for w in from..windows {
            let order = self.in_order(cut, w);
            let r = self.window(instance, cut, w, &order, None, false).await?;
            if r != Some(ResultCode::Success) {
                return Ok(Err(format!("window {w} of {windows} {}", words::reply(r))));
            }
        }
        Ok(Ok(()))
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

    /// End with the image's own CRC and size, then a Get of the image: `Ok` when End succeeded
    /// and the image is valid with the version the image carries (what a download that
    /// worked leaves), else what went wrong, in words.
    pub(super) async fn end_and_verify(
        &mut self,
        instance: u16,
        format: Format,
    ) -> Result<Result<(), String>, SuiteError> {
        let (crc, size) = (self.t.image.crc, self.t.image.len() as u32);
        match self.end(instance, crc, size, format).await? {
            (Some(ResultCode::Success), _) => {}
            (other, _) => {
                return Ok(Err(format!(
                    "End software download {}",
                    words::reply(other)
                )));
            }
        }
        let version = self.t.image.version();
        Ok(match self.image(instance).await? {
            Some(a) if a.is_valid == Some(true) && a.version == Some(version) => {
                self.shown_valid = true;
                Ok(())
            }
            Some(a) => Err(format!(
                "End answered result 0, command processed successfully, but Get of the image says {}",
                words::image(&a)
            )),
            None => Err("End answered result 0, but Get of the image was not answered".into()),
        })
    }

    /// A whole download of the image into `instance` with windows of `window`, End, and a Get
    /// that shows the image valid with its version: `Ok` when all of it worked, else what
    /// went wrong, in words.
    pub(super) async fn download(
        &mut self,
        instance: u16,
        window: u16,
        format: Format,
    ) -> Result<Result<(), String>, SuiteError> {
        let size = self.t.image.len() as u32;
        let accepted = match self.start_accepted(instance, size, window, format).await? {
            Ok(w) => w,
            Err(why) => return Ok(Err(why)),
        };
        let cut = self.t.image.cut(format, accepted, EXTENDED_SECTION_LEN);
        if let Err(why) = self.windows_from(instance, cut, 0).await? {
            return Ok(Err(why));
        }
        self.end_and_verify(instance, format).await
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
    pub(super) async fn abort(&mut self, instance: u16) -> Result<Option<ResultCode>, SuiteError> {
        Ok(self.end(instance, ABORT_CRC, 0, Format::Baseline).await?.0)
    }

    /// Waits until the ONU answers again after a reboot and `pred` holds of its images (for up
    /// to the target's reboot timeout).
    pub(super) async fn await_boot(
        &mut self,
        pred: impl Fn(&[SoftwareImageAttributes; 2]) -> bool,
    ) -> Result<Option<[SoftwareImageAttributes; 2]>, SuiteError> {
        let until = self.now() + self.t.reboot_timeout;
        self.sleep(BOOT_GRACE).await;
        while self.now() < until && !self.is_lost() {
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
