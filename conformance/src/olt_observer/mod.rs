//! The OLT rules observer: while an OLT upgrades an ONU, every rule of the G.988 software
//! download the OLT breaks is recorded, with the frame that broke it.
//!
//! The observer sits beside an ONU, not inside it. The ONU's driver feeds it the datagrams
//! the ONU takes in ([`OltObserver::handle_downstream`]) and sends
//! ([`OltObserver::handle_upstream`]), and the few facts only the ONU knows
//! ([`OnuFact`]: it booted, it goes down, it discarded a download, End's CRC did not match
//! what it wrote). From the exchange it rebuilds what it needs: the download the ONU accepted
//! ([`download`]), the images' flags as the ONU announced them, the requests in flight
//! ([`requests`]). It reads no clock and does no I/O.
//!
//! The rules ([`Rule`]): AR set before a window's last section; a section beyond the agreed
//! window; section numbers that skip (a window's first pass on the ONU's own channel); an End
//! CRC that does not match the data the OLT sent; Activate of an image that is not valid;
//! Commit of an image that is not running; a TCI reused for another request while the first
//! may still be answered; no End retry after "device busy". A lossy link makes the skip rule
//! see gaps the OLT did not make: check OLTs on a clean link.
//!
//! What it keeps of the rules broken ([`tally`]) does not grow with how often they are
//! broken: per rule a count and the first and last violation ([`RuleSummary`]); every
//! violation only with [`Keep::Every`].

mod download;
mod requests;
mod tally;

use std::collections::VecDeque;
use std::time::Instant;

use omci_codec::contents::{AttributeValues, Contents};
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::software_image::{SoftwareImageAttributes, SoftwareImageId};
use omci_codec::{Codec, ExtendedTrailer, GemPort, MeClass, Message, OnuId, ResultCode};
use serde::{Deserialize, Serialize};

pub use requests::{BUSY_RETRY, IN_FLIGHT};
pub use tally::{Keep, RuleSummary};

use download::{Download, Section};
use requests::{Broken, Requests};
use tally::Tally;

/// A rule of the software download an OLT can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// AR is set on a Download section that is not its window's last (G.988 A.3.22, I.3).
    ArBeforeLast,
    /// A section number at or beyond the window agreed at Start (G.988 A.3.21, A.3.22).
    WindowExceeded,
    /// On a window's first pass on the ONU's own channel, a section number jumps past the
    /// next one (G.988 I.3: sections are sent in order).
    SectionsSkip,
    /// Every window was acknowledged, and End's CRC does not match the data those sections
    /// carried (G.988 A.3.23).
    EndCrcMismatch,
    /// Activate of an image that is not valid (G.988 A.3.25, I.3).
    ActivateInvalid,
    /// Commit of an image that is not running: its Activate has not completed (G.988 A.3.27,
    /// I.3).
    CommitBeforeActivate,
    /// A TCI used for another request within [`IN_FLIGHT`] of the first (G.988 11.1).
    TciReused,
    /// End was answered device busy and the OLT went on, or did not ask again within
    /// [`BUSY_RETRY`] (G.988 A.3.23, industry practice).
    NoBusyRetry,
}

impl Rule {
    /// The rule's id, as reports and logs spell it (`ar-before-last`).
    pub fn id(self) -> &'static str {
        match self {
            Rule::ArBeforeLast => "ar-before-last",
            Rule::WindowExceeded => "window-exceeded",
            Rule::SectionsSkip => "sections-skip",
            Rule::EndCrcMismatch => "end-crc-mismatch",
            Rule::ActivateInvalid => "activate-invalid",
            Rule::CommitBeforeActivate => "commit-before-activate",
            Rule::TciReused => "tci-reused",
            Rule::NoBusyRetry => "no-busy-retry",
        }
    }

    /// Where the rule is written: the clauses of G.988 (and practice, where G.988 is silent).
    pub fn source(self) -> &'static str {
        match self {
            Rule::ArBeforeLast => "G.988 A.3.22, I.3",
            Rule::WindowExceeded => "G.988 A.3.21, A.3.22",
            Rule::SectionsSkip => "G.988 I.3",
            Rule::EndCrcMismatch => "G.988 A.3.23",
            Rule::ActivateInvalid => "G.988 A.3.25, I.3",
            Rule::CommitBeforeActivate => "G.988 A.3.27, I.3",
            Rule::TciReused => "G.988 11.1",
            Rule::NoBusyRetry => "G.988 A.3.23, industry practice",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What happened.
    pub detail: String,
    /// The OMCI frame that broke it, hex (empty when time alone broke it).
    pub frame: String,
}

/// The observer's report (`onu run --check-olt --report FILE`): one entry per rule broken,
/// in the order each was first broken, and every violation when asked (`--check-olt-all`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OltReport {
    /// The ONU-ID of the ONU that watched.
    pub onu: u16,
    /// How many times a rule was broken (every violation counted).
    pub violations: u64,
    /// Each rule broken: its source, how many times, its first and last frame.
    pub rules: Vec<RuleSummary>,
    /// Every violation in order, when the observer kept them ([`Keep::Every`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Violation>>,
}

/// What only the ONU knows, told by its driver from the ONU's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnuFact {
    /// The ONU booted (at the start, and after every reboot): what it held in memory, a
    /// download or End's verification, is gone.
    Booted,
    /// The ONU goes down (a reboot it asked for, or a power cut): it takes nothing in until
    /// it boots.
    Down,
    /// The download in progress was discarded inside the ONU (a new Start, an abort, a failed
    /// End, or no traffic for its stale-download timeout).
    DownloadDiscarded,
    /// After every window was acknowledged, the CRC of the image the ONU wrote is not the one
    /// End carried.
    EndCrcMismatch {
        /// CRC-32/BZIP2 over what the ONU wrote.
        written: u32,
        /// The CRC of End software download.
        end: u32,
    },
}

/// The flags of one software image, as the ONU last announced them (unknown until then).
#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    is_committed: Option<bool>,
    is_active: Option<bool>,
    is_valid: Option<bool>,
}

impl Flags {
    fn update(&mut self, a: &SoftwareImageAttributes) {
        self.is_committed = a.is_committed.or(self.is_committed);
        self.is_active = a.is_active.or(self.is_active);
        self.is_valid = a.is_valid.or(self.is_valid);
    }
}

/// A request whose answer tells the observer something.
#[derive(Clone, Copy, Debug)]
enum Awaited {
    /// Start software download: success opens the download.
    Start {
        instance: u16,
        image_size: u32,
        format: omci_codec::Format,
    },
    /// End software download: any answer closes the download of its image; busy starts the
    /// wait for the retry.
    End { instance: u16 },
    /// The AR section of a window: success acknowledges it, processing error starts a repair.
    WindowClose { window: u32 },
}

/// Requests awaiting their answer at once: the ONU answers within the same input, so a few
/// suffice; older ones are forgotten.
const AWAITED: usize = 64;

/// The observer (see the module docs).
#[derive(Debug)]
pub struct OltObserver {
    onu: OnuId,
    codec: Codec,
    /// The ONU takes nothing in: it is going down, until it boots.
    down: bool,
    requests: Requests,
    /// Images 0 and 1, as the ONU announced them (attribute value changes, Get responses).
    images: [Flags; 2],
    download: Option<Download>,
    awaited: VecDeque<(u16, Awaited)>,
    /// The last End request's frame (End's CRC mismatch is known only later).
    last_end: Vec<u8>,
    /// The rules broken so far (kept across the ONU's reboots).
    tally: Tally,
}

impl OltObserver {
    /// An observer beside the ONU `onu`, whose extended frames end with `extended_trailer`,
    /// keeping `keep` of the rules broken.
    pub fn new(onu: OnuId, extended_trailer: ExtendedTrailer, keep: Keep) -> OltObserver {
        OltObserver {
            onu,
            codec: Codec::new(extended_trailer),
            down: false,
            requests: Requests::default(),
            images: [Flags::default(); 2],
            download: None,
            awaited: VecDeque::new(),
            last_end: Vec::new(),
            tally: Tally::new(keep),
        }
    }

    /// Every violation so far, in order, with [`Keep::Every`]; always empty with
    /// [`Keep::Summary`] (read [`OltObserver::summary`] then).
    pub fn violations(&self) -> &[Violation] {
        self.tally.every()
    }

    /// Per rule broken, in the order each was first broken: the count, the first and the last.
    pub fn summary(&self) -> &[RuleSummary] {
        self.tally.summary()
    }

    /// How many times `rule` was broken.
    pub fn count(&self, rule: Rule) -> u64 {
        self.tally.count(rule)
    }

    /// How many times a rule was broken, all rules together.
    pub fn total(&self) -> u64 {
        self.tally.total()
    }

    /// The first violation of a rule broken for the first time, not yet taken: once per rule,
    /// to warn of it as it happens (later ones are only counted).
    pub fn poll_rule_broken(&mut self) -> Option<Violation> {
        self.tally.poll_first()
    }

    /// The report: the summary per rule, and every violation with [`Keep::Every`].
    pub fn report(&self) -> OltReport {
        OltReport {
            onu: self.onu.0,
            violations: self.tally.total(),
            rules: self.tally.summary().to_vec(),
            all: (self.tally.keep() == Keep::Every).then(|| self.tally.every().to_vec()),
        }
    }

    /// When [`OltObserver::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.requests.poll_timeout()
    }

    /// Time has reached `now`: an End left unasked after busy shows.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(b) = self.requests.busy_not_retried(now, false) {
            self.broken(b, &[]);
        }
    }

    /// Something only the ONU knows. Tell the facts of one input before the datagrams the ONU
    /// sent for it (a new Start discards the old download, then answers).
    pub fn handle_fact(&mut self, fact: OnuFact) {
        match fact {
            OnuFact::Booted => {
                let keep = self.tally.keep();
                *self = OltObserver {
                    tally: std::mem::replace(&mut self.tally, Tally::new(keep)),
                    ..OltObserver::new(self.onu, self.codec.extended_trailer.clone(), keep)
                };
            }
            OnuFact::Down => self.down = true,
            OnuFact::DownloadDiscarded => self.download = None,
            OnuFact::EndCrcMismatch { written, end } => {
                let frame = std::mem::take(&mut self.last_end);
                self.record(
                    Rule::EndCrcMismatch,
                    format!(
                        "image CRC 0x{written:08x}, End says 0x{end:08x}: the End CRC does not match the sections the OLT sent"
                    ),
                    &frame,
                );
                self.last_end = frame;
            }
        }
    }

    /// A datagram from the OLT, exactly as the ONU takes it in (after any link faults).
    pub fn handle_downstream(&mut self, now: Instant, datagram: &[u8]) {
        if self.down {
            return;
        }
        let Ok((env, frame)) = Envelope::parse(datagram) else {
            return;
        };
        let multicast = env.onu_id == ALL_ONUS;
        if (multicast && env.gem_port != GemPort::MULTICAST_DOWNLOAD)
            || (!multicast && env.onu_id != self.onu)
        {
            return;
        }
        let Ok(msg) = self.codec.parse(frame) else {
            return; // the ONU answers or drops it; no rule of the download is at stake
        };
        if msg.ak() || msg.message_type().is_notification() {
            return;
        }
        let is_section = matches!(msg.contents, Contents::DownloadSectionRequest(_));
        if multicast && !is_section {
            return;
        }
        if let Some(b) = self.requests.request(now, msg.tci.0, frame) {
            self.broken(b, frame);
        }
        match &msg.contents {
            Contents::EndSoftwareDownloadRequest(_) => {
                self.requests.end_again();
                self.last_end = frame.to_vec();
            }
            Contents::DownloadSectionRequest(_) => {}
            _ => {
                if let Some(b) = self.requests.busy_not_retried(now, true) {
                    self.broken(b, frame);
                }
            }
        }
        self.request(&env, &msg, frame, multicast);
    }

    /// A datagram the ONU sent to the OLT.
    pub fn handle_upstream(&mut self, now: Instant, datagram: &[u8]) {
        let Ok((_, frame)) = Envelope::parse(datagram) else {
            return;
        };
        let Ok(msg) = self.codec.parse(frame) else {
            return;
        };
        if msg.me.class != MeClass::SOFTWARE_IMAGE || !is_own_image(msg.me.instance) {
            return;
        }
        let image = usize::from(SoftwareImageId::from_instance(msg.me.instance).image);
        match &msg.contents {
            Contents::AttributeValueChange(avc) => {
                if let AttributeValues::SoftwareImage(a) = &avc.attributes {
                    self.images[image].update(a);
                }
            }
            Contents::GetResponse(g) if g.result == ResultCode::Success => {
                if let AttributeValues::SoftwareImage(a) = &g.attributes {
                    self.images[image].update(a);
                }
            }
            _ => {
                if let Some(awaited) = self.take_awaited(&msg) {
                    self.answered(now, awaited, &msg.contents);
                }
            }
        }
    }

    /// A software download request the ONU will act on: the rules of its contents.
    fn request(&mut self, env: &Envelope, msg: &Message<'_>, frame: &[u8], multicast: bool) {
        let me = msg.me;
        if me.class != MeClass::SOFTWARE_IMAGE || !is_own_image(me.instance) {
            return; // refused as an unknown ME or instance: nothing happens
        }
        let image = SoftwareImageId::from_instance(me.instance).image;
        let flags = self.images[usize::from(image)];
        match &msg.contents {
            Contents::StartSoftwareDownloadRequest(r) => self.await_answer(
                msg,
                Awaited::Start {
                    instance: me.instance,
                    image_size: r.image_size,
                    format: msg.format,
                },
            ),
            Contents::EndSoftwareDownloadRequest(_) => self.await_answer(
                msg,
                Awaited::End {
                    instance: me.instance,
                },
            ),
            Contents::DownloadSectionRequest(s) => {
                let Some(d) = self.download.as_mut().filter(|d| d.instance == me.instance) else {
                    return;
                };
                let seen = d.section(&Section {
                    tci: msg.tci.0,
                    number: s.section_number,
                    ar: msg.ar,
                    len: s.data.len() as u32,
                    window_no: env.window_no.map(|w| w.0),
                    multicast,
                });
                for (rule, detail) in seen.broken {
                    self.record(rule, detail, frame);
                }
                if let Some(window) = seen.closes {
                    self.await_answer(msg, Awaited::WindowClose { window });
                }
            }
            Contents::ActivateSoftwareRequest(_) if flags.is_valid == Some(false) => {
                self.record(
                    Rule::ActivateInvalid,
                    format!("Activate of image {image}, which is not valid"),
                    frame,
                );
            }
            Contents::CommitSoftwareRequest
                if flags.is_active == Some(false) && flags.is_committed == Some(false) =>
            {
                self.record(
                    Rule::CommitBeforeActivate,
                    format!(
                        "Commit of image {image}, which is not running (its Activate has not completed)"
                    ),
                    frame,
                );
            }
            _ => {}
        }
    }

    fn await_answer(&mut self, msg: &Message<'_>, awaited: Awaited) {
        if self.awaited.len() >= AWAITED {
            self.awaited.pop_front();
        }
        self.awaited.push_back((msg.tci.0, awaited));
    }

    /// The request `answer` answers, if the observer awaits it.
    fn take_awaited(&mut self, answer: &Message<'_>) -> Option<Awaited> {
        let kind = |a: &Awaited| match a {
            Awaited::Start { .. } => {
                matches!(answer.contents, Contents::StartSoftwareDownloadResponse(_))
            }
            Awaited::End { .. } => {
                matches!(answer.contents, Contents::EndSoftwareDownloadResponse(_))
            }
            Awaited::WindowClose { .. } => {
                matches!(answer.contents, Contents::DownloadSectionResponse(_))
            }
        };
        let at = self
            .awaited
            .iter()
            .position(|(tci, a)| *tci == answer.tci.0 && kind(a))?;
        self.awaited.remove(at).map(|(_, a)| a)
    }

    /// The ONU answered an awaited request with `answer`.
    fn answered(&mut self, now: Instant, awaited: Awaited, answer: &Contents<'_>) {
        let Some(result) = answer.result() else {
            return;
        };
        match awaited {
            Awaited::Start {
                instance,
                image_size,
                format,
            } => {
                // The answer's window is the one the ONU keeps (it may lower the proposal).
                let Contents::StartSoftwareDownloadResponse(r) = answer else {
                    return;
                };
                if result != ResultCode::Success {
                    return;
                }
                let window_size = r.window_size();
                self.download = Some(Download::new(instance, image_size, window_size, format));
                let image = SoftwareImageId::from_instance(instance).image;
                self.images[usize::from(image)].is_valid = Some(false);
            }
            Awaited::End { instance } => {
                if result == ResultCode::DeviceBusy {
                    self.requests.busy(now, instance);
                }
                if self
                    .download
                    .as_ref()
                    .is_some_and(|d| d.instance == instance)
                {
                    self.download = None;
                }
            }
            Awaited::WindowClose { window } => {
                let Some(d) = self.download.as_mut() else {
                    return;
                };
                match result {
                    ResultCode::Success => d.acknowledged(window),
                    ResultCode::ProcessingError => d.refused(window),
                    _ => {}
                }
            }
        }
    }

    fn broken(&mut self, b: Broken, frame: &[u8]) {
        match b {
            Broken::TciReused => {
                let tci = frame.get(..2).map_or(0, |t| u16::from_be_bytes([t[0], t[1]]));
                self.record(
                    Rule::TciReused,
                    format!("TCI 0x{tci:04x} reused for another request within {IN_FLIGHT:?}"),
                    frame,
                );
            }
            Broken::NoBusyRetry { instance, went_on } => self.record(
                Rule::NoBusyRetry,
                if went_on {
                    format!(
                        "End of image {instance} was answered device busy; the OLT went on without asking again"
                    )
                } else {
                    format!(
                        "End of image {instance} was answered device busy; not asked again within {BUSY_RETRY:?}"
                    )
                },
                frame,
            ),
        }
    }

    fn record(&mut self, rule: Rule, detail: String, frame: &[u8]) {
        self.tally.record(Violation {
            rule,
            detail,
            frame: hex::encode(frame),
        });
    }
}

/// Slot 0's two images are the only software image instances of a lab ONU.
fn is_own_image(instance: u16) -> bool {
    let id = SoftwareImageId::from_instance(instance);
    id.slot == 0 && id.image <= 1
}

#[cfg(test)]
mod tests;
