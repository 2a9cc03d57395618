//! ONU conformance: the G.988 software-download rules, checked one by one against a running
//! ONU (ours, or any that speaks the lab's UDP transport, docs/wire.md), each with a verdict a
//! CI system can read.
//!
//! The suite talks to one ONU as an OLT would: it listens on the address the ONU answers to,
//! sends requests on the ONU's OMCC, and waits for the answer to each TCI. It needs an image
//! the ONU accepts (`--image`: its model, signed with a key it trusts, a security version at
//! or above its floor) and leaves the ONU running that image, committed. The checks run in an
//! order that builds on the state the previous ones left; one that cannot run says why.

use std::borrow::Cow;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use omci_codec::contents::{
    ActivateSoftwareRequest, AttributeValues, Contents, DownloadSectionRequest,
    EndSoftwareDownloadRequest, GetRequest, OtherMessage, RebootRequest,
    StartSoftwareDownloadRequest,
};
use omci_codec::envelope::Envelope;
use omci_codec::software_image::{SoftwareImageAttributes, mask};
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, MessageType, OnuId, ResultCode, Tci,
    WindowNo,
};
use serde::Serialize;
use tokio::net::UdpSocket;

use crate::image::{Cut, UpgradeImage};

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule is broken.
    Fail {
        /// What G.988 (or practice) expects.
        expected: String,
        /// What the ONU did.
        observed: String,
    },
    /// The check could not run.
    Skip {
        /// Why.
        why: String,
    },
}

/// One check of the suite.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Stable id, e.g. `SWI-01`.
    pub id: &'static str,
    /// What it checks.
    pub title: &'static str,
    /// Where the rule comes from: a G.988 clause, or "industry practice", or this lab.
    pub source: &'static str,
    /// What was sent.
    pub sent: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long it took (s).
    pub seconds: f64,
}

/// Where the ONU is and what to send it.
#[derive(Clone, Debug)]
pub struct Target {
    /// The ONU's OMCC address.
    pub addr: SocketAddrV4,
    /// The address the ONU answers to (its OLT address).
    pub listen: SocketAddrV4,
    /// Its ONU-ID.
    pub onu: OnuId,
    /// An image it accepts.
    pub image: UpgradeImage,
    /// How long to wait for an answer.
    pub timeout: Duration,
    /// How long the ONU may take to reboot.
    pub reboot_timeout: Duration,
    /// The ONU has a voice call in progress (`onu run --voice-call`): run the deferral check.
    pub call_in_progress: bool,
    /// The ONU has an emergency call in progress (`onu run --emergency-call`).
    pub emergency_call_in_progress: bool,
}

/// The client side of the suite: one request at a time.
struct Client {
    sock: UdpSocket,
    t: Target,
    codec: Codec,
    tci: u16,
}

/// An answer, or nothing within the timeout.
type Answer = Option<Message<'static>>;

impl Client {
    fn next_tci(&mut self) -> Tci {
        self.tci = if self.tci >= 0x3FFF { 1 } else { self.tci + 1 };
        Tci(self.tci)
    }

    async fn send(&mut self, env: Envelope, msg: &Message<'_>) -> Result<()> {
        let frame = self.codec.to_vec(msg)?;
        self.sock.send_to(&env.wrap(&frame), self.t.addr).await?;
        Ok(())
    }

    /// Waits for the answer to `tci` (notifications and stray answers are skipped).
    async fn wait(&mut self, tci: Tci, within: Duration) -> Result<Answer> {
        let deadline = Instant::now() + within;
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let Ok(r) = tokio::time::timeout(left, self.sock.recv_from(&mut buf)).await else {
                return Ok(None);
            };
            let (n, _) = r?;
            let Ok((_, frame)) = Envelope::parse(&buf[..n]) else {
                continue;
            };
            if let Ok(m) = self.codec.parse(frame)
                && m.tci == tci
                && m.ak()
            {
                return Ok(Some(m.into_owned()));
            }
        }
    }

    /// Sends a request and waits for its answer (sent twice if the first goes unanswered).
    async fn ask(&mut self, me: MeId, contents: Contents<'_>) -> Result<Answer> {
        self.ask_as(Format::Baseline, me, contents).await
    }

    async fn ask_as(&mut self, format: Format, me: MeId, contents: Contents<'_>) -> Result<Answer> {
        let tci = self.next_tci();
        let msg = Message::new(tci, format, me, contents);
        for _ in 0..2 {
            self.send(Envelope::omcc(self.t.onu), &msg).await?;
            if let Some(a) = self.wait(tci, self.t.timeout).await? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }

    async fn get(&mut self, me: MeId, attribute_mask: u16) -> Result<Answer> {
        self.ask(me, Contents::GetRequest(GetRequest { attribute_mask }))
            .await
    }

    async fn image(&mut self, instance: u16) -> Result<Option<SoftwareImageAttributes>> {
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
    async fn images(&mut self) -> Result<[SoftwareImageAttributes; 2]> {
        let a = self
            .image(0)
            .await?
            .context("Get of software image 0 failed")?;
        let b = self
            .image(1)
            .await?
            .context("Get of software image 1 failed")?;
        Ok([a, b])
    }

    /// The instance neither active nor committed.
    async fn standby(&mut self) -> Result<u16> {
        let imgs = self.images().await?;
        (0..2u16)
            .find(|i| {
                let a = &imgs[usize::from(*i)];
                a.is_active != Some(true) && a.is_committed != Some(true)
            })
            .context("no image is neither active nor committed")
    }

    async fn start(
        &mut self,
        instance: u16,
        size: u32,
        window: u16,
        format: Format,
    ) -> Result<Answer> {
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
    /// comes in `order`), the envelope carrying the window number and CRC unless `plain`; waits
    /// for the AR's answer.
    #[allow(clippy::too_many_arguments)]
    async fn window(
        &mut self,
        instance: u16,
        cut: Cut,
        w: u32,
        order: &[usize],
        crc: Option<u32>,
        plain: bool,
    ) -> Result<Option<ResultCode>> {
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
            self.send(env, &msg).await?;
            if ar {
                ar_tci = Some(tci);
            }
        }
        let Some(tci) = ar_tci else {
            return Ok(None);
        };
        Ok(self
            .wait(tci, self.t.timeout)
            .await?
            .and_then(|m| m.contents.result()))
    }

    /// Every window in order; the first result that is not success, or success.
    async fn all_windows(&mut self, instance: u16, cut: Cut) -> Result<Option<ResultCode>> {
        let windows = self.t.image.windows(cut);
        for w in 0..windows {
            let order: Vec<usize> = (0..self.t.image.sections_in(cut, w)).collect();
            let r = self.window(instance, cut, w, &order, None, false).await?;
            if r != Some(ResultCode::Success) {
                return Ok(r);
            }
        }
        Ok(Some(ResultCode::Success))
    }

    /// End software download, asked again while the ONU answers busy (up to 60 s). Returns the
    /// final result and how many busy answers came first.
    async fn end(
        &mut self,
        instance: u16,
        crc: u32,
        size: u32,
        format: Format,
    ) -> Result<(Option<ResultCode>, u32)> {
        let mut busy = 0;
        let until = Instant::now() + Duration::from_secs(60);
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
                Some(ResultCode::DeviceBusy) if Instant::now() < until => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return Ok((r, busy)),
            }
        }
    }

    /// A whole download of the image into `instance` with windows of `window`; the End result.
    async fn download(
        &mut self,
        instance: u16,
        window: u16,
        format: Format,
    ) -> Result<Result<(), String>> {
        let size = self.t.image.len() as u32;
        let start = self.start(instance, size, window, format).await?;
        let accepted = match start.map(|m| m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                r.window_size()
            }
            other => return Ok(Err(format!("Start software download answered {other:?}"))),
        };
        let cut = self.t.image.cut(format, accepted, 1965);
        match self.all_windows(instance, cut).await? {
            Some(ResultCode::Success) => {}
            other => return Ok(Err(format!("a window answered {other:?}"))),
        }
        match self.end(instance, self.t.image.crc, size, format).await? {
            (Some(ResultCode::Success), _) => Ok(Ok(())),
            (other, _) => Ok(Err(format!("End software download answered {other:?}"))),
        }
    }

    /// Activate software of `instance` with `flags`.
    async fn activate(&mut self, instance: u16, flags: u8) -> Result<Answer> {
        self.ask(
            sw(instance),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                activate_flags: flags,
            }),
        )
        .await
    }

    async fn abort(&mut self, instance: u16) -> Result<()> {
        self.end(instance, 0xFFFF_FFFF, 0, Format::Baseline).await?;
        Ok(())
    }

    /// Waits until the ONU answers again after a reboot and `pred` holds of its images.
    async fn await_boot(
        &mut self,
        pred: impl Fn(&[SoftwareImageAttributes; 2]) -> bool,
    ) -> Result<Option<[SoftwareImageAttributes; 2]>> {
        let until = Instant::now() + self.t.reboot_timeout;
        tokio::time::sleep(Duration::from_millis(200)).await;
        while Instant::now() < until {
            if let (Ok(Some(a)), Ok(Some(b))) = (self.image(0).await, self.image(1).await) {
                let imgs = [a, b];
                if pred(&imgs) {
                    return Ok(Some(imgs));
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(None)
    }
}

fn sw(instance: u16) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, instance)
}

/// The result code of an answer: the typed one, or, for a message the codec keeps raw, its
/// first content byte (where G.988 puts every response's result).
fn code(a: &Answer) -> Option<ResultCode> {
    let m = a.as_ref()?;
    m.contents.result().or(match &m.contents {
        Contents::Other(o) if o.ak => o.contents.first().map(|b| ResultCode::from(*b)),
        _ => None,
    })
}

/// Passes when the ONU answered with an error result (a refusal).
fn refused(a: &Answer) -> Verdict {
    pass_if(
        code(a).is_some_and(|r| r != ResultCode::Success),
        "an error result",
        result_of(a),
    )
}

fn result_of(a: &Answer) -> String {
    match (a, code(a)) {
        (None, _) => "no answer".into(),
        (Some(_), Some(r)) => format!("{r}"),
        (Some(m), None) => format!("{:?}", m.message_type()),
    }
}

fn fmt_img(a: &SoftwareImageAttributes) -> String {
    let v = a
        .version
        .map(|v| {
            String::from_utf8_lossy(&v)
                .trim_end_matches('\0')
                .to_string()
        })
        .unwrap_or_default();
    format!(
        "version {v:?}, committed {}, active {}, valid {}",
        a.is_committed == Some(true),
        a.is_active == Some(true),
        a.is_valid == Some(true)
    )
}

/// The suite's results.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The ONU.
    pub target: String,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Counts.
    pub passed: usize,
    /// See `passed`.
    pub failed: usize,
    /// See `passed`.
    pub skipped: usize,
}

/// Collects the checks as they run.
struct Suite {
    checks: Vec<Check>,
}

impl Suite {
    fn add(
        &mut self,
        id: &'static str,
        title: &'static str,
        source: &'static str,
        sent: impl Into<String>,
        verdict: Verdict,
        since: Instant,
    ) {
        self.checks.push(Check {
            id,
            title,
            source,
            sent: sent.into(),
            verdict,
            seconds: since.elapsed().as_secs_f64(),
        });
    }
}

fn pass_if(ok: bool, expected: impl Into<String>, observed: impl Into<String>) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail {
            expected: expected.into(),
            observed: observed.into(),
        }
    }
}

/// Runs the suite against `t`.
pub async fn run(t: Target) -> Result<Report> {
    let sock = UdpSocket::from_std(
        pon::transport::bind_unicast(t.listen).with_context(|| format!("binding {}", t.listen))?,
    )?;
    let mut c = Client {
        sock,
        codec: Codec::new(ExtendedTrailer::Crc32),
        tci: 0,
        t: t.clone(),
    };
    let mut s = Suite { checks: Vec::new() };
    // Does the target answer at all? If not, stop here with one clear error.
    if c.get(MeId::new(MeClass::ONU_G, 0), 0x8000).await?.is_none() && c.image(0).await?.is_none() {
        bail!(
            "ONU {} at {} does not answer (Get of ONU-G and of software image 0, {} ms each, twice); is it running, with --olt {}?",
            t.onu.0,
            t.addr,
            t.timeout.as_millis(),
            t.listen
        );
    }
    let size = t.image.len() as u32;
    let img_crc = t.image.crc;

    // ---------------------------------------------------------------- Software image ME
    let now = Instant::now();
    let (a0, a1) = (c.image(0).await?, c.image(1).await?);
    s.add(
        "SWI-01",
        "Both Software image instances exist",
        "G.988 9.1.4",
        "Get software image 0 and 1 (version, committed, active, valid)",
        pass_if(
            a0.is_some() && a1.is_some(),
            "both answer success",
            format!("image 0: {}, image 1: {}", a0.is_some(), a1.is_some()),
        ),
        now,
    );
    let (Some(a0), Some(a1)) = (a0, a1) else {
        bail!("the ONU does not answer Get on both software images: nothing else can be checked");
    };
    let now = Instant::now();
    s.add(
        "SWI-02",
        "Never both images committed",
        "G.988 9.1.4",
        "Get both images",
        pass_if(
            !(a0.is_committed == Some(true) && a1.is_committed == Some(true)),
            "at most one committed",
            format!("{} / {}", fmt_img(&a0), fmt_img(&a1)),
        ),
        now,
    );
    let now = Instant::now();
    s.add(
        "SWI-03",
        "Never both images active",
        "G.988 9.1.4",
        "Get both images",
        pass_if(
            !(a0.is_active == Some(true) && a1.is_active == Some(true)),
            "at most one active",
            format!("{} / {}", fmt_img(&a0), fmt_img(&a1)),
        ),
        now,
    );
    let now = Instant::now();
    let one_active = [a0.is_active, a1.is_active]
        .iter()
        .filter(|x| **x == Some(true))
        .count()
        == 1;
    s.add(
        "SWI-04",
        "Exactly one image is active",
        "G.988 9.1.4",
        "Get both images",
        pass_if(
            one_active,
            "one active image",
            format!("{} / {}", fmt_img(&a0), fmt_img(&a1)),
        ),
        now,
    );
    // Get by mask: only what was asked comes back.
    let now = Instant::now();
    let a = c.get(sw(0), mask::IS_ACTIVE).await?;
    let v = match a.as_ref().map(|m| &m.contents) {
        Some(Contents::GetResponse(g)) => {
            let m = g.attributes.attribute_mask();
            pass_if(
                g.result == ResultCode::Success && m == mask::IS_ACTIVE,
                "success, attribute mask 0x0800 only (is_active)",
                format!("{}, mask 0x{m:04x}", g.result),
            )
        }
        _ => pass_if(false, "a Get response", result_of(&a)),
    };
    s.add(
        "SWI-05",
        "Get returns exactly the attributes asked for",
        "G.988 A.3.13",
        "Get software image 0, mask is_active",
        v,
        now,
    );
    let now = Instant::now();
    let a = c.get(sw(0), mask::VERSION).await?;
    let v = match a.as_ref().map(|m| &m.contents) {
        Some(Contents::GetResponse(g)) => match &g.attributes {
            AttributeValues::SoftwareImage(x) => {
                pass_if(x.version.is_some(), "a 14-byte version", "no version")
            }
            AttributeValues::Raw { values, .. } => pass_if(
                values.len() >= 14,
                "14 bytes of version",
                format!("{} bytes", values.len()),
            ),
        },
        _ => pass_if(false, "a Get response", result_of(&a)),
    };
    s.add(
        "SWI-06",
        "The version attribute is 14 bytes",
        "G.988 9.1.4",
        "Get software image 0, mask version",
        v,
        now,
    );

    // ---------------------------------------------------------------- Errors
    let now = Instant::now();
    let a = c.get(MeId::new(MeClass(9999), 0), 0x8000).await?;
    s.add(
        "ERR-01",
        "An unknown ME class gives result 4",
        "G.988 A.1.1 (result codes)",
        "Get ME class 9999",
        pass_if(
            code(&a) == Some(ResultCode::UnknownMe),
            "4 (unknown managed entity)",
            result_of(&a),
        ),
        now,
    );
    let now = Instant::now();
    let a = c.get(sw(7), mask::VERSION).await?;
    s.add(
        "ERR-02",
        "An unknown instance gives result 5",
        "G.988 A.1.1 (result codes)",
        "Get software image instance 7",
        pass_if(
            code(&a) == Some(ResultCode::UnknownInstance),
            "5 (unknown managed entity instance)",
            result_of(&a),
        ),
        now,
    );
    let now = Instant::now();
    let a = c
        .ask(
            sw(0),
            Contents::Other(OtherMessage {
                message_type: MessageType::Test,
                ak: false,
                contents: Cow::Owned(vec![0; 32]),
            }),
        )
        .await?;
    s.add(
        "ERR-03",
        "An unsupported message type gives result 2",
        "G.988 A.1.1 (result codes)",
        "Test on software image 0",
        pass_if(
            code(&a) == Some(ResultCode::NotSupported),
            "2 (command not supported)",
            result_of(&a),
        ),
        now,
    );
    let now = Instant::now();
    let before = c.images().await?;
    let a = c
        .ask(MeId::new(MeClass::ONU_DATA, 0), Contents::MibResetRequest)
        .await?;
    let after = c.images().await?;
    s.add(
        "ERR-04",
        "A MIB reset leaves the software images unchanged",
        "G.988 9.1.3, I.1",
        "MIB reset on ONU data, then Get both images",
        pass_if(
            a.is_some() && before == after,
            "answered, images as before",
            format!(
                "{}; before {} / {}, after {} / {}",
                result_of(&a),
                fmt_img(&before[0]),
                fmt_img(&before[1]),
                fmt_img(&after[0]),
                fmt_img(&after[1])
            ),
        ),
        now,
    );

    // ---------------------------------------------------------------- End without Start
    let standby = c.standby().await?;
    let active = (0..2u16)
        .find(|i| before[usize::from(*i)].is_active == Some(true))
        .unwrap_or(1 - standby);
    c.abort(standby).await?;
    let now = Instant::now();
    let (r, _) = c.end(standby, img_crc, size, Format::Baseline).await?;
    s.add(
        "END-01",
        "End software download without Start is refused",
        "G.988 I.3",
        format!("End software download of image {standby}, no download in progress"),
        pass_if(
            r.is_some() && r != Some(ResultCode::Success),
            "an error result",
            format!("{r:?}"),
        ),
        now,
    );

    // ---------------------------------------------------------------- Start
    let now = Instant::now();
    let a = c.start(active, size, 32, Format::Baseline).await?;
    s.add(
        "STA-01",
        "Start into the active image is refused",
        "G.988 I.3",
        format!("Start software download of image {active} (active)"),
        refused(&a),
        now,
    );
    let committed = (0..2u16)
        .find(|i| before[usize::from(*i)].is_committed == Some(true))
        .unwrap_or(active);
    let now = Instant::now();
    // Often the same image as the active one (STA-01); asked again for its own verdict.
    let a = c.start(committed, size, 32, Format::Baseline).await?;
    s.add(
        "STA-02",
        "Start into the committed image is refused",
        "G.988 I.3",
        format!("Start software download of image {committed} (committed)"),
        refused(&a),
        now,
    );
    let now = Instant::now();
    let a = c.start(standby, 0x7FFF_FFFF, 32, Format::Baseline).await?;
    s.add(
        "STA-03",
        "An image too large for the slot is refused at Start",
        "G.988 A.3.21, industry practice",
        "Start software download of 2 GiB",
        refused(&a),
        now,
    );
    for (id, title, proposed) in [
        (
            "STA-04",
            "Window negotiation: a proposal of 256 is answered with at most 256",
            256u16,
        ),
        (
            "STA-05",
            "The ONU may lower the window, never raise it (proposal 8)",
            8,
        ),
    ] {
        let now = Instant::now();
        let a = c.start(standby, size, proposed, Format::Baseline).await?;
        let v = match a.as_ref().map(|m| &m.contents) {
            Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
                pass_if(
                    r.window_size() <= proposed,
                    format!("a window of at most {proposed}"),
                    format!("{}", r.window_size()),
                )
            }
            _ => pass_if(false, "success", result_of(&a)),
        };
        s.add(
            id,
            title,
            "G.988 A.3.21",
            format!("Start software download, window {proposed}"),
            v,
            now,
        );
        c.abort(standby).await?;
    }
    // Start during a download discards the partial image.
    let now = Instant::now();
    let _ = c.start(standby, size, 8, Format::Baseline).await?;
    let cut8 = t.image.cut(Format::Baseline, 8, 1965);
    let first: Vec<usize> = (0..t.image.sections_in(cut8, 0)).collect();
    // Plain G.988 frames (no window number or CRC in the envelope): G.988's own rules.
    let _ = c.window(standby, cut8, 0, &first, None, true).await?;
    let _ = c.start(standby, size, 8, Format::Baseline).await?;
    // Only window 0's AR section again: a fresh download misses the rest.
    let last = t.image.sections_in(cut8, 0) - 1;
    let r = c.window(standby, cut8, 0, &[last], None, true).await?;
    s.add(
        "STA-06",
        "Start during a download discards the partial image",
        "G.988 I.3",
        "Start, window 0, Start again, then window 0's AR section alone",
        pass_if(
            r == Some(ResultCode::ProcessingError),
            "processing error (window 0 is incomplete again)",
            format!("{r:?}"),
        ),
        now,
    );
    c.abort(standby).await?;

    // ---------------------------------------------------------------- Windows of 1..256
    for (id, w) in [
        ("DLS-01", 1u16),
        ("DLS-02", 16),
        ("DLS-03", 32),
        ("DLS-04", 64),
        ("DLS-05", 256),
    ] {
        let now = Instant::now();
        let r = c.download(standby, w, Format::Baseline).await?;
        s.add(
            id,
            match w {
                1 => "A download in windows of 1 section",
                16 => "A download in windows of 16 sections",
                32 => "A download in windows of 32 sections",
                64 => "A download in windows of 64 sections",
                _ => "A download in windows of 256 sections",
            },
            "G.988 I.3, A.3.22",
            format!("the whole image in windows of {w} (or the ONU's lower choice), End"),
            pass_if(
                r.is_ok(),
                "every window and End success",
                r.err().unwrap_or_default(),
            ),
            now,
        );
        c.abort(standby).await?;
    }
    // Within one download: missing, out of order, duplicated, bad CRC, short last window.
    let accepted = match c
        .start(standby, size, 16, Format::Baseline)
        .await?
        .map(|m| m.contents)
    {
        Some(Contents::StartSoftwareDownloadResponse(r)) if r.result == ResultCode::Success => {
            r.window_size()
        }
        other => {
            bail!("Start software download answered {other:?}: the download checks cannot run")
        }
    };
    let cut = t.image.cut(Format::Baseline, accepted, 1965);
    let windows = t.image.windows(cut);
    let n0 = t.image.sections_in(cut, 0);
    let now = Instant::now();
    let missing: Vec<usize> = (0..n0).filter(|n| *n != 1 || n0 == 1).collect();
    // Plain G.988 frames: the answer must come from the sections the ONU tracked, not from the
    // lab's window CRC.
    let r1 = c.window(standby, cut, 0, &missing, None, true).await?;
    let all0: Vec<usize> = (0..n0).collect();
    let r2 = c.window(standby, cut, 0, &all0, None, true).await?;
    s.add(
        "DLS-06",
        "A missing section gives processing error on the AR section; the repeat succeeds",
        "G.988 I.3, A.3.22",
        "window 0 without section 1, then window 0 whole",
        pass_if(
            (n0 == 1 || r1 == Some(ResultCode::ProcessingError)) && r2 == Some(ResultCode::Success),
            "processing error, then success",
            format!("{r1:?}, then {r2:?}"),
        ),
        now,
    );
    let now = Instant::now();
    let v = if windows > 1 {
        let n = t.image.sections_in(cut, 1);
        let mut order: Vec<usize> = (0..n).rev().collect();
        order.rotate_left(1); // AR section last, the others reversed
        let r = c.window(standby, cut, 1, &order, None, false).await?;
        pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
    } else {
        Verdict::Skip {
            why: "the image has one window".into(),
        }
    };
    s.add(
        "DLS-07",
        "Sections out of order within a window are accepted",
        "G.988 I.3",
        "window 1 with its sections in reverse order",
        v,
        now,
    );
    let now = Instant::now();
    let v = if windows > 2 {
        let n = t.image.sections_in(cut, 2);
        let mut order: Vec<usize> = Vec::new();
        for k in 0..n {
            order.push(k);
            if k + 1 < n {
                order.push(k);
            }
        }
        let r = c.window(standby, cut, 2, &order, None, false).await?;
        pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
    } else {
        Verdict::Skip {
            why: "the image has fewer than 3 windows".into(),
        }
    };
    s.add(
        "DLS-08",
        "Duplicated sections are accepted",
        "G.988 I.3",
        "window 2 with every section twice",
        v,
        now,
    );
    // A frame with a bad CRC: no answer at all.
    let now = Instant::now();
    let tci = c.next_tci();
    let msg = Message::new(
        tci,
        Format::Baseline,
        sw(0),
        Contents::GetRequest(GetRequest {
            attribute_mask: mask::VERSION,
        }),
    );
    let mut frame = c.codec.to_vec(&msg)?;
    let l = frame.len();
    frame[l - 1] ^= 0xFF;
    c.sock
        .send_to(&Envelope::omcc(t.onu).wrap(&frame), t.addr)
        .await?;
    let a = c.wait(tci, t.timeout).await?;
    s.add(
        "DLS-09",
        "A frame with a bad CRC is dropped without a response",
        "G.988 11.2 (trailer), industry practice",
        "Get with its CRC-32 trailer damaged",
        pass_if(a.is_none(), "no answer", result_of(&a)),
        now,
    );
    // The lab's window CRC.
    let now = Instant::now();
    let v = if windows > 3 {
        let n = t.image.sections_in(cut, 3);
        let order: Vec<usize> = (0..n).collect();
        let r = c
            .window(
                standby,
                cut,
                3,
                &order,
                Some(t.image.window_crc(cut, 3) ^ 1),
                false,
            )
            .await?;
        let ok = c.window(standby, cut, 3, &order, None, false).await?;
        pass_if(
            r == Some(ResultCode::ProcessingError) && ok == Some(ResultCode::Success),
            "processing error, then success with the right CRC",
            format!("{r:?}, then {ok:?}"),
        )
    } else {
        Verdict::Skip {
            why: "the image has fewer than 4 windows".into(),
        }
    };
    s.add(
        "DLS-10",
        "A window whose CRC does not match what was written is refused",
        "this lab's envelope (docs/wire.md)",
        "window 3 with a wrong window CRC, then with the right one",
        v,
        now,
    );
    // The rest, including the image's short last window.
    let now = Instant::now();
    let mut r = Some(ResultCode::Success);
    for w in 4.min(windows)..windows {
        let order: Vec<usize> = (0..t.image.sections_in(cut, w)).collect();
        r = c.window(standby, cut, w, &order, None, false).await?;
        if r != Some(ResultCode::Success) {
            break;
        }
    }
    let short = t.image.sections_in(cut, windows - 1) < usize::from(accepted);
    s.add(
        "DLS-11",
        "A short last window is accepted",
        "G.988 I.3",
        format!(
            "the remaining windows; the last has {} of {accepted} sections",
            t.image.sections_in(cut, windows - 1)
        ),
        if short {
            pass_if(r == Some(ResultCode::Success), "success", format!("{r:?}"))
        } else {
            Verdict::Skip {
                why: "the image fills its last window".into(),
            }
        },
        now,
    );

    // ---------------------------------------------------------------- End
    let now = Instant::now();
    let (bad, _) = c
        .end(standby, img_crc ^ 0xDEAD_BEEF, size, Format::Baseline)
        .await?;
    s.add(
        "END-02",
        "End with a wrong CRC gives an error",
        "G.988 A.3.23",
        "End software download with the image CRC changed",
        pass_if(
            bad.is_some() && bad != Some(ResultCode::Success),
            "an error result",
            format!("{bad:?}"),
        ),
        now,
    );
    let now = Instant::now();
    let after = c.image(standby).await?;
    s.add(
        "END-03",
        "After a failed End the image is not valid",
        "G.988 9.1.4, I.3",
        format!("Get software image {standby}"),
        pass_if(
            after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
            "is_valid = 0",
            after.as_ref().map(fmt_img).unwrap_or("no answer".into()),
        ),
        now,
    );
    let now = Instant::now();
    // A complete, verified download first: the End checks below start from the state it
    // leaves.
    let _ = c.download(standby, 32, Format::Baseline).await?;
    c.abort(standby).await?;
    let _ = c.start(standby, size, 32, Format::Baseline).await?;
    let cut32 = t.image.cut(Format::Baseline, 32, 1965);
    let _ = c.all_windows(standby, cut32).await?;
    let (bad_size, _) = c.end(standby, img_crc, size + 31, Format::Baseline).await?;
    s.add(
        "END-04",
        "End with a wrong size gives an error",
        "G.988 A.3.23",
        "a whole download, End with the size 31 bytes too large",
        pass_if(
            bad_size.is_some() && bad_size != Some(ResultCode::Success),
            "an error result",
            format!("{bad_size:?}"),
        ),
        now,
    );
    c.abort(standby).await?;
    let now = Instant::now();
    let _ = c.start(standby, size, 32, Format::Baseline).await?;
    let w = c.all_windows(standby, cut32).await?;
    let (ok, busy) = c.end(standby, img_crc, size, Format::Baseline).await?;
    s.add(
        "END-05",
        "End answers device busy while it writes, then success",
        "G.988 A.3.23, I.3",
        "a whole download, End asked again while busy",
        pass_if(
            w == Some(ResultCode::Success) && ok == Some(ResultCode::Success),
            "success (after any number of busy answers)",
            format!("{ok:?} after {busy} busy answers"),
        ),
        now,
    );
    let now = Instant::now();
    let valid = c.image(standby).await?;
    s.add(
        "END-06",
        "After a successful End the image is valid, not active",
        "G.988 9.1.4",
        format!("Get software image {standby}"),
        pass_if(
            valid.as_ref().is_some_and(|a| {
                a.is_valid == Some(true)
                    && a.is_active == Some(false)
                    && a.version == Some(t.image.version())
            }),
            "valid, not active, the image's version",
            valid.as_ref().map(fmt_img).unwrap_or("no answer".into()),
        ),
        now,
    );
    let now = Instant::now();
    let _ = c.start(standby, size, 32, Format::Baseline).await?;
    let _ = c
        .window(
            standby,
            cut32,
            0,
            &(0..t.image.sections_in(cut32, 0)).collect::<Vec<_>>(),
            None,
            false,
        )
        .await?;
    let (ab, _) = c.end(standby, 0xFFFF_FFFF, 0, Format::Baseline).await?;
    let after = c.image(standby).await?;
    s.add(
        "END-07",
        "The abort convention (size 0, CRC 0xFFFFFFFF) discards the download",
        "industry practice (open OLT stacks)",
        "Start, window 0, End with size 0 and CRC 0xFFFFFFFF",
        pass_if(
            ab == Some(ResultCode::Success)
                && after.as_ref().is_some_and(|a| a.is_valid == Some(false)),
            "success, image not valid",
            format!(
                "{ab:?}, {}",
                after.as_ref().map(fmt_img).unwrap_or_default()
            ),
        ),
        now,
    );

    // ---------------------------------------------------------------- Activate / Commit of an invalid image
    let now = Instant::now();
    let a = c.activate(standby, 0).await?;
    s.add(
        "ACT-01",
        "Activate of an image that is not valid is refused",
        "G.988 A.3.25",
        format!("Activate software image {standby} (not valid)"),
        refused(&a),
        now,
    );
    let now = Instant::now();
    let a = c.ask(sw(standby), Contents::CommitSoftwareRequest).await?;
    s.add(
        "COM-01",
        "Commit of an image that is not valid is refused",
        "G.988 A.3.27",
        format!("Commit software image {standby} (not valid)"),
        refused(&a),
        now,
    );

    // ---------------------------------------------------------------- Extended message set
    let now = Instant::now();
    let omcc = c.get(MeId::new(MeClass::ONU2_G, 0), 0x4000).await?;
    let extended = matches!(omcc.as_ref().map(|m| &m.contents), Some(Contents::GetResponse(g)) if matches!(&g.attributes, AttributeValues::Raw { values, .. } if values.first().is_some_and(|v| *v >= 0x96)));
    let v = if extended {
        let r = c.download(standby, 8, Format::Extended).await?;
        pass_if(
            r.is_ok(),
            "every window and End success",
            r.err().unwrap_or_default(),
        )
    } else {
        Verdict::Skip {
            why: format!(
                "the ONU's OMCC version ({}) does not announce the extended message set",
                result_of(&omcc)
            ),
        }
    };
    s.add(
        "EXT-01",
        "A download with the extended message set",
        "G.988 A.3 (extended), 9.1.2 (OMCC version)",
        "the whole image in extended frames of 1965-byte sections, End",
        v,
        now,
    );
    if !extended {
        let r = c.download(standby, 32, Format::Baseline).await?;
        if let Err(e) = r {
            bail!("the final download failed ({e}): the activation checks cannot run");
        }
    }

    // ---------------------------------------------------------------- Activate, reboot, fallback, Commit
    // Activate flags 1 and 2 defer activation during a call: checked when the ONU has one.
    for (id, title, flags, call, why) in [
        (
            "ACT-02",
            "Activate with flag 1 during a voice call answers busy",
            1u8,
            t.call_in_progress,
            "needs an ONU with a voice call in progress (`onu run --voice-call`, then --call-in-progress here)",
        ),
        (
            "ACT-05",
            "Activate with flag 2 during an emergency call answers busy",
            2,
            t.emergency_call_in_progress,
            "needs an ONU with an emergency call in progress (`onu run --emergency-call`, then --emergency-call-in-progress here)",
        ),
    ] {
        let now = Instant::now();
        let v = if call {
            let a = c.activate(standby, flags).await?;
            pass_if(
                code(&a) == Some(ResultCode::DeviceBusy),
                "6 (device busy)",
                result_of(&a),
            )
        } else {
            Verdict::Skip { why: why.into() }
        };
        s.add(
            id,
            title,
            "G.988 A.3.25 (activate flags)",
            format!("Activate software image {standby}, flags {flags}"),
            v,
            now,
        );
    }
    let now = Instant::now();
    let a = c.activate(standby, 0).await?;
    let booted = c
        .await_boot(|i| i[usize::from(standby)].is_active == Some(true))
        .await?;
    s.add(
        "ACT-03",
        "Activate of a valid image reboots into it: active, not committed",
        "G.988 9.1.4, I.3",
        format!("Activate software image {standby}, flags 0; Get until back"),
        pass_if(
            a.is_some()
                && booted
                    .as_ref()
                    .is_some_and(|i| i[usize::from(standby)].is_committed == Some(false)),
            "active, not committed",
            booted
                .as_ref()
                .map(|i| format!("{} / {}", fmt_img(&i[0]), fmt_img(&i[1])))
                .unwrap_or_else(|| {
                    format!(
                        "{}; not back on the new image within {:?}",
                        result_of(&a),
                        t.reboot_timeout
                    )
                }),
        ),
        now,
    );
    let now = Instant::now();
    let v = if booted.is_some() {
        let r = c
            .ask(
                MeId::new(MeClass::ONU_G, 0),
                Contents::RebootRequest(RebootRequest {
                    reboot_condition: 0,
                }),
            )
            .await?;
        let back = c
            .await_boot(|i| i[usize::from(1 - standby)].is_active == Some(true))
            .await?;
        pass_if(
            back.is_some(),
            "back on the committed image",
            back.map(|i| format!("{} / {}", fmt_img(&i[0]), fmt_img(&i[1])))
                .unwrap_or_else(|| {
                    format!(
                        "{}; still on the uncommitted image after {:?}",
                        result_of(&r),
                        t.reboot_timeout
                    )
                }),
        )
    } else {
        Verdict::Skip {
            why: "ACT-03 did not leave the new image active".into(),
        }
    };
    s.add(
        "ACT-04",
        "A reboot before Commit falls back to the committed image",
        "G.988 I.3 (activate then commit), industry practice",
        "Reboot (ONU-G) with the new image active, not committed",
        v,
        now,
    );
    // Activate again (if it fell back), then Commit.
    let imgs = c.images().await?;
    if imgs[usize::from(standby)].is_active != Some(true) {
        let _ = c.activate(standby, 0).await?;
        let _ = c
            .await_boot(|i| i[usize::from(standby)].is_active == Some(true))
            .await?;
    }
    let now = Instant::now();
    let a = c.ask(sw(standby), Contents::CommitSoftwareRequest).await?;
    let after = c.image(standby).await?;
    s.add(
        "COM-02",
        "Commit makes the running image committed",
        "G.988 A.3.27, 9.1.4",
        format!("Commit software image {standby}"),
        pass_if(
            code(&a) == Some(ResultCode::Success)
                && after
                    .as_ref()
                    .is_some_and(|x| x.is_committed == Some(true) && x.is_active == Some(true)),
            "success; committed and active",
            format!(
                "{}; {}",
                result_of(&a),
                after.as_ref().map(fmt_img).unwrap_or_default()
            ),
        ),
        now,
    );
    let now = Instant::now();
    let _ = c
        .ask(
            MeId::new(MeClass::ONU_G, 0),
            Contents::RebootRequest(RebootRequest {
                reboot_condition: 0,
            }),
        )
        .await?;
    let back = c
        .await_boot(|i| {
            i[usize::from(standby)].is_active == Some(true)
                && i[usize::from(standby)].is_committed == Some(true)
        })
        .await?;
    s.add(
        "COM-03",
        "After Commit the image boots after a reboot",
        "G.988 9.1.4",
        "Reboot (ONU-G), Get until back",
        pass_if(
            back.is_some(),
            "the committed new image active",
            back.map(|i| format!("{} / {}", fmt_img(&i[0]), fmt_img(&i[1])))
                .unwrap_or_else(|| "not back on it".into()),
        ),
        now,
    );
    let now = Instant::now();
    let imgs = c.images().await?;
    s.add(
        "SWI-07",
        "After the upgrade: one committed, one active, the same image",
        "G.988 9.1.4",
        "Get both images",
        pass_if(
            imgs.iter().filter(|a| a.is_committed == Some(true)).count() == 1
                && imgs[usize::from(standby)].is_committed == Some(true)
                && imgs[usize::from(standby)].is_active == Some(true),
            "image {standby} committed and active, the other neither",
            format!("{} / {}", fmt_img(&imgs[0]), fmt_img(&imgs[1])),
        ),
        now,
    );

    let passed = s
        .checks
        .iter()
        .filter(|c| c.verdict == Verdict::Pass)
        .count();
    let failed = s
        .checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail { .. }))
        .count();
    let skipped = s.checks.len() - passed - failed;
    Ok(Report {
        target: format!("ONU {} at {}", t.onu.0, t.addr),
        checks: s.checks,
        passed,
        failed,
        skipped,
    })
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Report {
    /// JUnit XML: one testcase per check.
    pub fn junit(&self) -> String {
        let total: f64 = self.checks.iter().map(|c| c.seconds).sum();
        let mut o = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"omci-lab ONU conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n",
            self.checks.len(),
            self.failed,
            self.skipped,
            xml(&self.target),
            self.checks.len(),
            self.failed,
            self.skipped
        );
        for c in &self.checks {
            o += &format!(
                "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">\n",
                xml(c.source),
                c.id,
                xml(c.title),
                c.seconds
            );
            match &c.verdict {
                Verdict::Pass => {}
                Verdict::Fail { expected, observed } => {
                    o += &format!(
                        "      <failure message=\"expected {}; observed {}\">sent: {}</failure>\n",
                        xml(expected),
                        xml(observed),
                        xml(&c.sent)
                    );
                }
                Verdict::Skip { why } => {
                    o += &format!("      <skipped message=\"{}\"/>\n", xml(why));
                }
            }
            o += "    </testcase>\n";
        }
        o += "  </testsuite>\n</testsuites>\n";
        o
    }

    /// A table for a terminal, and the count line.
    pub fn table(&self) -> String {
        let mut o = format!("ONU conformance: {}\n", self.target);
        for c in &self.checks {
            let (word, more) = match &c.verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::Fail { expected, observed } => (
                    "FAIL",
                    format!("\n          expected {expected}\n          observed {observed}"),
                ),
                Verdict::Skip { why } => ("skip", format!("\n          {why}")),
            };
            o += &format!(
                "  {word:<4}  {:<7} {}  [{}]{more}\n",
                c.id, c.title, c.source
            );
        }
        o += &format!(
            "{} checks: {} passed, {} failed, {} skipped\n",
            self.checks.len(),
            self.passed,
            self.failed,
            self.skipped
        );
        o
    }
}
