//! The story of a rollout, told from the OLT's captures.
//!
//! The scenario runner has the OLT write a pcap of every OMCI frame it sent and received (one
//! file per OLT life: a restarted OLT writes a second file). This module reads those files
//! ([`read_frames`]) and tells what happened twice over:
//!
//! - [`mermaid`]: a Markdown ```` ```mermaid ```` sequence diagram of the whole upgrade as the
//!   OLT saw it, between the OLT, the multicast group and up to three ONUs. The Download
//!   sections of one window become one arrow, and the ONU's answer to the window one arrow
//!   back, so that a 1 MiB image stays readable; a diagram that would still hold more than
//!   about 400 arrows keeps its beginning and its end.
//! - [`explain`]: a plain-text walk through one ONU's upgrade for someone new to PON: each
//!   phase, why it exists, each message by its G.988 name, with times.
//!
//! A capture holds only the OMCI frames, not the lab's transport envelope, so the absolute
//! window number the OLT puts in the envelope is not in it. G.988 numbers sections within a
//! window and never numbers windows, so this module recovers the window of every burst of
//! sections from their contents: the first time a window's sections are seen they open the
//! next window of their stream (the group, or one ONU), and a later burst that carries the
//! same bytes at the same section numbers is that window again (a repair).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use omci_codec::contents::AttributeValues;
use omci_codec::pcap::{Direction, Peer};
use omci_codec::software_image::{SoftwareImageAttributes, SoftwareImageId, mask};
use omci_codec::{Codec, Contents, ExtendedTrailer, MeClass, Message, ResultCode};

// ============================================================================================
// Frames

/// One OMCI frame of a capture, with everything this module needs, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Time since the first frame of the first capture file.
    pub time: Duration,
    /// Which capture file (0 for the first): a new file means the OLT was restarted.
    pub file: usize,
    /// Downstream (OLT to ONU or group) or upstream (ONU to OLT).
    pub direction: Direction,
    /// The ONU, or the multicast group, on the other end.
    pub peer: Peer,
    /// Transaction correlation identifier.
    pub tci: u16,
    /// The AR (acknowledge request) bit.
    pub ar: bool,
    /// ME class (7 = Software image).
    pub me_class: u16,
    /// ME instance (for class 7: `slot << 8 | image`).
    pub me_instance: u16,
    /// What the frame carries.
    pub body: Body,
}

/// The values of the Software image ME (class 7) a Get response or an attribute value change
/// carried; `None` for an attribute that was not in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageState {
    /// Version string, NUL padding cut.
    pub version: Option<String>,
    /// Is committed: the image the ONU boots by default.
    pub is_committed: Option<bool>,
    /// Is active: the image that runs.
    pub is_active: Option<bool>,
    /// Is valid: the image holds a complete, verified executable.
    pub is_valid: Option<bool>,
}

impl ImageState {
    fn from_attributes(a: &SoftwareImageAttributes) -> Self {
        Self {
            version: a.version.map(|v| printable(&v)),
            is_committed: a.is_committed,
            is_active: a.is_active,
            is_valid: a.is_valid,
        }
    }

    /// The attributes of `newer` that are present replace these.
    fn merge(&mut self, newer: &ImageState) {
        if newer.version.is_some() {
            self.version.clone_from(&newer.version);
        }
        self.is_committed = newer.is_committed.or(self.is_committed);
        self.is_active = newer.is_active.or(self.is_active);
        self.is_valid = newer.is_valid.or(self.is_valid);
    }

    /// `version V1.0, is_committed 1, is_active 1, is_valid 1` (the attributes present).
    fn compact(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(format!("version {}", version_text(v)));
        }
        for (name, value) in [
            ("is_committed", self.is_committed),
            ("is_active", self.is_active),
            ("is_valid", self.is_valid),
        ] {
            if let Some(b) = value {
                parts.push(format!("{name} {}", u8::from(b)));
            }
        }
        parts.join(", ")
    }

    /// `version "V1.0", committed, active, valid` (the attributes present).
    fn words(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = &self.version {
            parts.push(if v.is_empty() {
                "no version".to_string()
            } else {
                format!("version \"{v}\"")
            });
        }
        for (yes, no, value) in [
            ("committed", "not committed", self.is_committed),
            ("active", "not active", self.is_active),
            ("valid", "not valid", self.is_valid),
        ] {
            if let Some(b) = value {
                parts.push(if b { yes } else { no }.to_string());
            }
        }
        parts.join(", ")
    }
}

/// The contents of a frame, owned: the messages of a software upgrade typed, any other kept
/// by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Get request.
    Get {
        /// The attributes asked for.
        attribute_mask: u16,
    },
    /// Get response.
    GetResponse {
        /// The result.
        result: ResultCode,
        /// The attributes returned.
        attribute_mask: u16,
        /// The Software image values, when the ME is class 7 and they decoded.
        image: Option<ImageState>,
        /// The equipment ID (the ONU's model), when the ME is ONU2-G and it was asked for.
        equipment_id: Option<String>,
    },
    /// Start software download request.
    StartDownload {
        /// Sections per window the OLT proposes.
        window_size: u16,
        /// Image size in bytes.
        image_size: u32,
        /// Software image instances to download into.
        instances: Vec<u16>,
    },
    /// Start software download response.
    StartDownloadResponse {
        /// The result.
        result: ResultCode,
        /// Sections per window the ONU accepts.
        window_size: u16,
    },
    /// Download section request.
    Section {
        /// Section number within its window.
        number: u8,
        /// The image bytes it carries.
        data: Vec<u8>,
    },
    /// Download section response (the answer to a window's AR section).
    SectionResponse {
        /// Success (window complete) or processing error (sections missing).
        result: ResultCode,
        /// The section number acknowledged.
        number: u8,
    },
    /// End software download request.
    EndDownload {
        /// CRC-32/BZIP2 of the image.
        crc: u32,
        /// Image size in bytes (0 with CRC 0xFFFFFFFF: abort).
        image_size: u32,
        /// Software image instances.
        instances: Vec<u16>,
    },
    /// End software download response.
    EndDownloadResponse {
        /// The result (device busy: still writing flash, ask again).
        result: ResultCode,
    },
    /// Activate software request.
    Activate {
        /// Activate flags.
        flags: u8,
    },
    /// Activate software response.
    ActivateResponse {
        /// The result.
        result: ResultCode,
    },
    /// Commit software request.
    Commit,
    /// Commit software response.
    CommitResponse {
        /// The result.
        result: ResultCode,
    },
    /// MIB reset request.
    MibReset,
    /// MIB reset response.
    MibResetResponse {
        /// The result.
        result: ResultCode,
    },
    /// Reboot request.
    Reboot {
        /// Reboot condition.
        condition: u8,
    },
    /// Reboot response.
    RebootResponse {
        /// The result.
        result: ResultCode,
    },
    /// Attribute value change notification.
    AttributeValueChange {
        /// The attributes that changed.
        attribute_mask: u16,
        /// Their values, when the ME is class 7 and they decoded.
        image: Option<ImageState>,
    },
    /// Any other message.
    Other {
        /// Its G.988 name ("Set request", "MIB upload response").
        name: String,
        /// True for a response.
        ak: bool,
    },
}

impl Body {
    fn from_contents(contents: &Contents<'_>) -> Self {
        let image = |a: &AttributeValues<'_>| match a {
            AttributeValues::SoftwareImage(s) => Some(ImageState::from_attributes(s)),
            AttributeValues::Raw { .. } => None,
        };
        match contents {
            Contents::StartSoftwareDownloadRequest(r) => Body::StartDownload {
                window_size: r.window_size(),
                image_size: r.image_size,
                instances: r.instances.to_vec(),
            },
            Contents::StartSoftwareDownloadResponse(r) => Body::StartDownloadResponse {
                result: r.result,
                window_size: r.window_size(),
            },
            Contents::DownloadSectionRequest(r) => Body::Section {
                number: r.section_number,
                data: r.data.to_vec(),
            },
            Contents::DownloadSectionResponse(r) => Body::SectionResponse {
                result: r.result,
                number: r.section_number,
            },
            Contents::EndSoftwareDownloadRequest(r) => Body::EndDownload {
                crc: r.crc,
                image_size: r.image_size,
                instances: r.instances.to_vec(),
            },
            Contents::EndSoftwareDownloadResponse(r) => {
                Body::EndDownloadResponse { result: r.result }
            }
            Contents::ActivateSoftwareRequest(r) => Body::Activate {
                flags: r.activate_flags,
            },
            Contents::ActivateSoftwareResponse { result } => {
                Body::ActivateResponse { result: *result }
            }
            Contents::CommitSoftwareRequest => Body::Commit,
            Contents::CommitSoftwareResponse { result } => Body::CommitResponse { result: *result },
            Contents::GetRequest(r) => Body::Get {
                attribute_mask: r.attribute_mask,
            },
            Contents::GetResponse(r) => Body::GetResponse {
                result: r.result,
                attribute_mask: r.attributes.attribute_mask(),
                image: image(&r.attributes),
                equipment_id: match &r.attributes {
                    // ONU2-G attribute 1, equipment ID: 20 bytes (G.988 9.1.2).
                    AttributeValues::Raw {
                        attribute_mask,
                        values,
                    } if attribute_mask & 0x8000 != 0 && values.len() >= 20 => {
                        Some(printable(&values[..20]))
                    }
                    _ => None,
                },
            },
            Contents::MibResetRequest => Body::MibReset,
            Contents::MibResetResponse { result } => Body::MibResetResponse { result: *result },
            Contents::RebootRequest(r) => Body::Reboot {
                condition: r.reboot_condition,
            },
            Contents::RebootResponse { result } => Body::RebootResponse { result: *result },
            Contents::AttributeValueChange(a) => Body::AttributeValueChange {
                attribute_mask: a.attributes.attribute_mask(),
                image: image(&a.attributes),
            },
            other @ Contents::Other(o) => Body::Other {
                name: other.describe().into_owned(),
                ak: o.ak,
            },
        }
    }

    /// The result of a response.
    fn result(&self) -> Option<ResultCode> {
        match self {
            Body::GetResponse { result, .. }
            | Body::StartDownloadResponse { result, .. }
            | Body::SectionResponse { result, .. }
            | Body::EndDownloadResponse { result }
            | Body::ActivateResponse { result }
            | Body::CommitResponse { result }
            | Body::MibResetResponse { result }
            | Body::RebootResponse { result } => Some(*result),
            _ => None,
        }
    }

    /// True for a response (AK set).
    fn is_response(&self) -> bool {
        match self {
            Body::Other { ak, .. } => *ak,
            other => other.result().is_some(),
        }
    }

    /// The G.988 action, so that a response can be paired with its request.
    fn action(&self) -> &str {
        match self {
            Body::Get { .. } | Body::GetResponse { .. } => "Get",
            Body::StartDownload { .. } | Body::StartDownloadResponse { .. } => {
                "Start software download"
            }
            Body::Section { .. } | Body::SectionResponse { .. } => "Download section",
            Body::EndDownload { .. } | Body::EndDownloadResponse { .. } => "End software download",
            Body::Activate { .. } | Body::ActivateResponse { .. } => "Activate software",
            Body::Commit | Body::CommitResponse { .. } => "Commit software",
            Body::MibReset | Body::MibResetResponse { .. } => "MIB reset",
            Body::Reboot { .. } | Body::RebootResponse { .. } => "Reboot",
            Body::AttributeValueChange { .. } => "Attribute value change",
            Body::Other { name, .. } => name
                .strip_suffix(" request")
                .or_else(|| name.strip_suffix(" response"))
                .unwrap_or(name),
        }
    }
}

impl Frame {
    /// The frame of a decoded message.
    fn new(time: Duration, file: usize, direction: Direction, peer: Peer, m: &Message<'_>) -> Self {
        Self {
            time,
            file,
            direction,
            peer,
            tci: m.tci.0,
            ar: m.ar,
            me_class: m.me.class.0,
            me_instance: m.me.instance,
            body: Body::from_contents(&m.contents),
        }
    }

    fn onu(&self) -> Option<u16> {
        match self.peer {
            Peer::Onu(o) => Some(o.0),
            Peer::Multicast => None,
        }
    }
}

/// Reads the capture files in order and returns their OMCI frames, with times counted from the
/// first frame of the first file. Packets that are not OMCI, whose direction or peer the MAC
/// addresses do not tell, or whose frame does not decode are skipped; a file whose records are
/// damaged part way keeps the frames before the damage.
pub fn read_frames(paths: &[PathBuf]) -> anyhow::Result<Vec<Frame>> {
    let codec = Codec::new(ExtendedTrailer::Crc32);
    let mut frames = Vec::new();
    let mut origin: Option<Duration> = None;
    for (file, path) in paths.iter().enumerate() {
        let reader =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let capture = omci_codec::pcap::read_capture(std::io::BufReader::new(reader))
            .with_context(|| format!("reading {}", path.display()))?;
        for packet in capture.packets.iter().filter(|p| p.ethernet) {
            let Some(eth) = omci_codec::pcap::parse_ethernet(&packet.data) else {
                continue;
            };
            let (Some(direction), Some(peer)) = (eth.direction, eth.peer) else {
                continue;
            };
            // Cut the Ethernet padding of a short frame off: first as the header tells
            // (extended frames with their CRC-32 trailer), then as it is.
            let mut candidates = vec![eth.omci];
            if let Some(len) = omci_codec::pcap::omci_frame_len(eth.omci, 4)
                && len < eth.omci.len()
            {
                candidates.insert(0, &eth.omci[..len]);
            }
            let Some(message) = candidates.iter().find_map(|c| codec.parse(c).ok()) else {
                continue;
            };
            let origin = *origin.get_or_insert(packet.timestamp);
            let time = packet.timestamp.saturating_sub(origin);
            frames.push(Frame::new(time, file, direction, peer, &message));
        }
    }
    Ok(frames)
}

// ============================================================================================
// Analysis: bursts of sections, their windows, the ONUs' answers

/// Where a burst of Download sections went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Dest {
    Group,
    Onu(u16),
}

/// The consecutive Download sections of one window sent to one destination, closed by the
/// section with AR set (or by the end of the capture).
#[derive(Clone, Debug)]
struct Burst {
    dest: Dest,
    instance: u16,
    /// Frame indices of its sections, in order.
    frames: Vec<usize>,
    /// Their section numbers.
    sections: Vec<u8>,
    /// The AR section's number, when the burst was closed by one.
    ar: Option<u8>,
    /// The window, as recovered from the contents.
    window: Option<u32>,
    /// Sections 0..=AR, every one: a whole window.
    full: bool,
    /// The window was sent to this destination (or to the ONU's group) before.
    repeat: bool,
    /// CRC-32/BZIP2 of the window's image bytes (whole windows).
    crc: Option<u32>,
}

/// An ONU's Download section response, tied to the window it answers.
#[derive(Clone, Debug)]
struct Answer {
    frame: usize,
    onu: u16,
    /// The burst whose AR section it answers.
    burst: Option<usize>,
    window: Option<u32>,
    result: ResultCode,
    /// For a processing error: how many sections the OLT then sent again (the ONU's missing
    /// ones), when that could be told.
    missing: Option<usize>,
}

/// What happened, in capture order.
#[derive(Clone, Copy, Debug)]
enum Ev {
    /// A new capture file begins (the OLT was restarted) at this frame.
    FileStart(usize),
    /// A burst of sections (its index in `bursts`).
    Burst(usize),
    /// A Download section response (its index in `answers`).
    Answer(usize),
    /// Any other frame.
    Frame(usize),
}

/// Per stream (a destination and an image instance): the next window never sent, and the
/// windows sent.
#[derive(Default)]
struct Stream {
    next_new: u32,
    sent: HashSet<u32>,
}

/// Windows known by their contents, per window size.
#[derive(Default)]
struct Catalog {
    /// (window size, section number, hash of the data) -> windows holding it.
    index: HashMap<(u16, u8, u64), Vec<u32>>,
    /// (window size, window) -> number of sections, from a whole burst.
    sections: HashMap<(u16, u32), usize>,
}

/// A processing error waiting for the repair that tells how many sections were missing.
struct PendingRepair {
    answer: usize,
    sections: BTreeSet<u8>,
    last_ar: Option<u8>,
}

struct Analysis<'f> {
    frames: &'f [Frame],
    bursts: Vec<Burst>,
    answers: Vec<Answer>,
    events: Vec<Ev>,
    has_group: bool,
    /// Every ONU seen, ascending.
    onus: Vec<u16>,
}

fn data_hash(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

impl<'f> Analysis<'f> {
    fn new(frames: &'f [Frame]) -> Self {
        let mut b = Builder {
            frames,
            bursts: Vec::new(),
            answers: Vec::new(),
            events: Vec::new(),
            open: BTreeMap::new(),
            streams: HashMap::new(),
            catalog: Catalog::default(),
            onu_window: HashMap::new(),
            onu_target: HashMap::new(),
            group_window: HashMap::new(),
            image_size: HashMap::new(),
            ar_index: HashMap::new(),
            pending: HashMap::new(),
            group_restart: HashSet::new(),
        };
        for (i, f) in frames.iter().enumerate() {
            if i > 0 && f.file != frames[i - 1].file {
                // The OLT's first life ended: whatever it was sending stops here.
                let open: Vec<_> = b.open.keys().copied().collect();
                for key in open {
                    b.close(key);
                }
                b.events.push((i, Ev::FileStart(i)));
            }
            b.frame(i, f);
        }
        let open: Vec<_> = b.open.keys().copied().collect();
        for key in open {
            b.close(key);
        }
        for (_, p) in std::mem::take(&mut b.pending) {
            b.finish_repair(p, None);
        }
        b.events.sort_by_key(|(at, _)| *at);
        let onus: BTreeSet<u16> = frames.iter().filter_map(Frame::onu).collect();
        Analysis {
            frames,
            bursts: b.bursts,
            answers: b.answers,
            events: b.events.into_iter().map(|(_, e)| e).collect(),
            has_group: frames.iter().any(|f| f.peer == Peer::Multicast),
            onus: onus.into_iter().collect(),
        }
    }

    fn time(&self, frame: usize) -> Duration {
        self.frames[frame].time
    }
}

struct Builder<'f> {
    frames: &'f [Frame],
    bursts: Vec<Burst>,
    answers: Vec<Answer>,
    /// (anchor frame, event): sorted by anchor at the end.
    events: Vec<(usize, Ev)>,
    /// Open bursts by (destination, instance).
    open: BTreeMap<(Dest, u16), Burst>,
    streams: HashMap<(Dest, u16), Stream>,
    catalog: Catalog,
    /// Window size each ONU accepted.
    onu_window: HashMap<u16, u16>,
    /// The image instance each ONU downloads into.
    onu_target: HashMap<u16, u16>,
    /// Window size of the group of an instance.
    group_window: HashMap<u16, u16>,
    /// Image size by instance (last Start).
    image_size: HashMap<u16, u32>,
    /// (destination, instance, TCI) of an AR section -> its burst.
    ar_index: HashMap<(Dest, u16, u16), usize>,
    /// (ONU, window) -> a processing error waiting for its repair.
    pending: HashMap<(u16, u32), PendingRepair>,
    /// Instances a Start was sent for since their group last sent a section.
    group_restart: HashSet<u16>,
}

impl Builder<'_> {
    fn frame(&mut self, i: usize, f: &Frame) {
        match (&f.body, f.direction) {
            (Body::Section { number, .. }, Direction::Downstream) => {
                let dest = match f.peer {
                    Peer::Multicast => Dest::Group,
                    Peer::Onu(o) => Dest::Onu(o.0),
                };
                let key = (dest, f.me_instance);
                if self
                    .open
                    .get(&key)
                    .is_some_and(|b| b.sections.last().is_some_and(|&l| *number <= l))
                {
                    // Numbers go up within a window: this one begins another.
                    self.close(key);
                }
                let burst = self.open.entry(key).or_insert_with(|| Burst {
                    dest,
                    instance: f.me_instance,
                    frames: Vec::new(),
                    sections: Vec::new(),
                    ar: None,
                    window: None,
                    full: false,
                    repeat: false,
                    crc: None,
                });
                burst.frames.push(i);
                burst.sections.push(*number);
                if f.ar {
                    burst.ar = Some(*number);
                    self.close(key);
                }
            }
            (Body::SectionResponse { result, .. }, Direction::Upstream) => {
                let Some(onu) = f.onu() else { return };
                let inst = f.me_instance;
                let burst = [Dest::Onu(onu), Dest::Group]
                    .iter()
                    .filter_map(|d| self.ar_index.get(&(*d, inst, f.tci)).copied())
                    .max();
                let window = burst.and_then(|b| self.bursts[b].window);
                let id = self.answers.len();
                self.answers.push(Answer {
                    frame: i,
                    onu,
                    burst,
                    window,
                    result: *result,
                    missing: None,
                });
                self.events.push((i, Ev::Answer(id)));
                if let Some(w) = window {
                    if let Some(p) = self.pending.remove(&(onu, w)) {
                        self.finish_repair(p, Some(w));
                    }
                    if *result == ResultCode::ProcessingError {
                        self.pending.insert(
                            (onu, w),
                            PendingRepair {
                                answer: id,
                                sections: BTreeSet::new(),
                                last_ar: None,
                            },
                        );
                    }
                }
            }
            (
                Body::StartDownload {
                    window_size,
                    image_size,
                    ..
                },
                Direction::Downstream,
            ) => {
                if let Some(onu) = f.onu() {
                    let inst = f.me_instance;
                    self.close((Dest::Onu(onu), inst));
                    self.streams.remove(&(Dest::Onu(onu), inst));
                    // A Start may open a new group download (a new wave): the group's next
                    // whole window 0 then begins it (see `close`).
                    self.group_restart.insert(inst);
                    self.onu_target.insert(onu, inst);
                    self.onu_window.insert(onu, *window_size);
                    self.image_size.insert(inst, *image_size);
                    self.group_window.entry(inst).or_insert(*window_size);
                }
                self.events.push((i, Ev::Frame(i)));
            }
            (
                Body::StartDownloadResponse {
                    result,
                    window_size,
                },
                Direction::Upstream,
            ) => {
                if let Some(onu) = f.onu()
                    && result.is_success()
                {
                    self.onu_window.insert(onu, *window_size);
                    self.group_window.insert(f.me_instance, *window_size);
                }
                self.events.push((i, Ev::Frame(i)));
            }
            (Body::EndDownload { .. }, Direction::Downstream) => {
                if let Some(onu) = f.onu() {
                    self.close((Dest::Onu(onu), f.me_instance));
                }
                self.events.push((i, Ev::Frame(i)));
            }
            _ => self.events.push((i, Ev::Frame(i))),
        }
    }

    /// Closes the open burst of `key` (if any): recovers its window and records it.
    fn close(&mut self, key: (Dest, u16)) {
        let Some(mut b) = self.open.remove(&key) else {
            return;
        };
        let (dest, inst) = key;
        let ws = match dest {
            Dest::Group => self.group_window.get(&inst).copied(),
            Dest::Onu(o) => self.onu_window.get(&o).copied(),
        }
        .unwrap_or(0);
        let datas: Vec<&[u8]> = b
            .frames
            .iter()
            .map(|&i| match &self.frames[i].body {
                Body::Section { data, .. } => data.as_slice(),
                _ => &[],
            })
            .collect();
        let keys: Vec<(u16, u8, u64)> = b
            .sections
            .iter()
            .zip(&datas)
            .map(|(&s, d)| (ws, s, data_hash(d)))
            .collect();
        // Windows holding every section of the burst.
        let mut candidates: Option<BTreeSet<u32>> = None;
        for k in &keys {
            let has: BTreeSet<u32> = self
                .catalog
                .index
                .get(k)
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default();
            candidates = Some(match candidates {
                None => has,
                Some(c) => c.intersection(&has).copied().collect(),
            });
        }
        let candidates = candidates.unwrap_or_default();
        b.full = b.ar.is_some()
            && b.sections
                .iter()
                .enumerate()
                .all(|(n, &s)| usize::from(s) == n);
        let group_key = match dest {
            Dest::Onu(o) => self.onu_target.get(&o).map(|&t| (Dest::Group, t)),
            Dest::Group => None,
        };
        let stream = self.streams.entry(key).or_default();
        let next = stream.next_new;
        let sent_here = |w: &u32, streams: &HashMap<(Dest, u16), Stream>| {
            streams.get(&key).is_some_and(|s| s.sent.contains(w))
                || group_key.is_some_and(|g| streams.get(&g).is_some_and(|s| s.sent.contains(w)))
        };
        let window = if candidates.contains(&next) {
            Some(next)
        } else if !candidates.is_empty() {
            let sent: Vec<u32> = candidates
                .iter()
                .copied()
                .filter(|w| sent_here(w, &self.streams))
                .collect();
            if sent.is_empty() && b.full && !self.catalog.sections.contains_key(&(ws, next)) {
                // The same bytes as an older window, but a whole window never sent here: the
                // next one (an image with repeated contents).
                Some(next)
            } else {
                sent.last().copied().or_else(|| candidates.first().copied())
            }
        } else if b.full {
            Some(next)
        } else {
            None
        };
        if dest == Dest::Group && self.group_restart.remove(&inst) && window == Some(0) && b.full {
            // A whole window 0 after a Start: a new group download begins.
            self.streams.remove(&key);
        }
        if let Some(w) = window {
            b.repeat = sent_here(&w, &self.streams);
            let stream = self.streams.entry(key).or_default();
            if w >= stream.next_new {
                stream.next_new = w + 1;
            }
            stream.sent.insert(w);
            for k in keys {
                let v = self.catalog.index.entry(k).or_default();
                if !v.contains(&w) {
                    v.push(w);
                }
            }
            if b.full {
                self.catalog
                    .sections
                    .entry((ws, w))
                    .or_insert(b.sections.len());
                // The window CRC covers the window's image bytes: the zero padding of the
                // image's last section is not part of it.
                let mut bytes: Vec<u8> = datas.concat();
                if let (Some(&size), Some(first)) = (self.image_size.get(&inst), datas.first()) {
                    let start = u64::from(w) * u64::from(ws) * first.len() as u64;
                    let left = u64::from(size).saturating_sub(start);
                    if left < bytes.len() as u64 {
                        bytes.truncate(left as usize);
                    }
                }
                b.crc = Some(omci_codec::crc::crc32_bzip2(&bytes));
            }
        }
        b.window = window;
        let id = self.bursts.len();
        let anchor = *b.frames.last().unwrap_or(&0);
        if b.ar.is_some()
            && let Some(&last) = b.frames.last()
        {
            self.ar_index
                .insert((dest, inst, self.frames[last].tci), id);
        }
        // Repairs: sections sent again after an ONU said some were missing.
        if let Some(w) = window {
            for ((onu, pw), p) in self.pending.iter_mut() {
                let reaches = match dest {
                    Dest::Onu(o) => o == *onu,
                    Dest::Group => self.onu_target.get(onu) == Some(&inst),
                };
                if *pw == w && reaches {
                    p.sections.extend(b.sections.iter().copied());
                    if b.ar.is_some() {
                        p.last_ar = b.ar;
                    }
                }
            }
        }
        self.bursts.push(b);
        self.events.push((anchor, Ev::Burst(id)));
    }

    /// Tells a processing error how many sections its repair carried.
    fn finish_repair(&mut self, p: PendingRepair, window: Option<u32>) {
        let mut s = p.sections;
        let whole = window.and_then(|w| {
            let ws = self.onu_window.get(&self.answers[p.answer].onu).copied()?;
            self.catalog.sections.get(&(ws, w)).copied()
        });
        if s.is_empty() || whole.is_some_and(|n| s.len() >= n) {
            return; // nothing sent again, or the whole window: the count is unknown
        }
        // The closing AR section is sent again whether it was missing or not.
        if let Some(ar) = p.last_ar {
            s.remove(&ar);
        }
        if !s.is_empty() {
            self.answers[p.answer].missing = Some(s.len());
        }
    }
}

// ============================================================================================
// Phases

/// The phases of an upgrade, as docs/olt.md names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Phase {
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
    fn title(self) -> &'static str {
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
    fn note(self, group: bool) -> &'static str {
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
struct OnuState {
    /// The instance of the last Start (the target).
    target: Option<u16>,
    started: bool,
    end_sent: bool,
    end_ok: bool,
    activated: bool,
    /// The target answered active after the Activate.
    back: bool,
    committed: bool,
    /// Last known values per image instance.
    images: BTreeMap<u16, ImageState>,
    /// An Activate or a Reboot was sent and the boot not yet announced.
    awaiting_boot: bool,
    /// Why the upgrade failed, once it did.
    failure: Option<String>,
    /// The ONU came back from the Activate on its committed image.
    fell_back: bool,
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
    fn step(&mut self, f: &Frame) -> Phase {
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
enum Boot {
    /// Not a boot announcement.
    No,
    /// The announcement of the boot an Activate (or a Reboot) asked for.
    Announced,
    /// A boot nobody asked for, in the middle of a download: the ONU lost power, say.
    Unexpected,
}

impl Boot {
    /// The kind of frame `f` for an ONU in state `st` (before `st` takes the frame).
    fn of(st: &OnuState, f: &Frame) -> Boot {
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

    fn label(self) -> &'static str {
        match self {
            Boot::No => "",
            Boot::Announced => " (boot announcement)",
            Boot::Unexpected => " (an unexpected boot: the ONU restarted)",
        }
    }
}

// ============================================================================================
// Words shared by both outputs

fn printable(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    bytes[..end]
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

fn version_text(v: &str) -> String {
    if v.is_empty() {
        "(empty)".to_string()
    } else {
        v.to_string()
    }
}

fn image_name(instance: u16) -> String {
    let id = SoftwareImageId::from_instance(instance);
    if id.slot == 0 {
        format!("image {}", id.image)
    } else {
        id.to_string()
    }
}

fn image_list(instances: &[u16]) -> String {
    let names: Vec<String> = instances.iter().map(|&i| image_name(i)).collect();
    names.join(", ")
}

/// The ME a frame addresses: "Software image 1", "ONU2-G", "ME class 11 instance 3".
fn me_name(class: u16, instance: u16) -> String {
    if class == MeClass::SOFTWARE_IMAGE.0 {
        let id = SoftwareImageId::from_instance(instance);
        if id.slot == 0 {
            return format!("Software image {}", id.image);
        }
        return format!("Software image ({id})");
    }
    match MeClass(class).name() {
        Some(name) if instance == 0 => name.to_string(),
        Some(name) => format!("{name} {instance}"),
        None => format!("ME class {class} instance {instance}"),
    }
}

/// The attributes a Get asks for, by name for class 7.
fn attribute_names(class: u16, attribute_mask: u16) -> String {
    if class == MeClass::ONU2_G.0 && attribute_mask == 0x8000 {
        return "equipment ID".to_string();
    }
    if class != MeClass::SOFTWARE_IMAGE.0 {
        return format!("attribute mask 0x{attribute_mask:04x}");
    }
    let names: Vec<&str> = omci_codec::software_image::ATTRIBUTES
        .iter()
        .filter(|a| attribute_mask & a.mask != 0)
        .map(|a| a.name)
        .collect();
    let unknown = attribute_mask & !mask::ALL;
    let mut s = names.join(", ");
    if unknown != 0 {
        let _ = write!(
            s,
            "{}bits 0x{unknown:04x}",
            if s.is_empty() { "" } else { ", " }
        );
    }
    s
}

fn result_words(r: ResultCode) -> String {
    match r {
        ResultCode::Success => "success".to_string(),
        ResultCode::ProcessingError => "processing error".to_string(),
        ResultCode::DeviceBusy => "device busy".to_string(),
        ResultCode::Unknown(v) => format!("result {v} (reserved)"),
        other => other.description().to_string(),
    }
}

/// "0-31", "5-9, 12, 31".
fn ranges<I: IntoIterator<Item = u32>>(numbers: I) -> String {
    let set: BTreeSet<u32> = numbers.into_iter().collect();
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.into_iter().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(", ")
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn secs(t: Duration) -> String {
    format!("{:.3} s", t.as_secs_f64())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a burst carried: "window 3: sections 0-31, AR on 31, window CRC 0x1a2b3c4d".
fn burst_text(b: &Burst) -> String {
    let w = b
        .window
        .map_or_else(|| "window ?".to_string(), |w| format!("window {w}"));
    let secs = ranges(b.sections.iter().map(|&s| u32::from(s)));
    let n = b.sections.len();
    let mut s = if b.repeat && b.ar.is_some() && n == 1 {
        format!("{w}: section {secs} again, AR set (the answer is asked for again)")
    } else if b.repeat && b.full {
        format!("{w} again: sections {secs}")
    } else if b.repeat {
        format!(
            "{w} repair: {} {secs}",
            if n == 1 { "section" } else { "sections" }
        )
    } else {
        format!(
            "{w}: {} {secs}",
            if n == 1 { "section" } else { "sections" }
        )
    };
    if !(b.repeat && n == 1 && b.ar.is_some()) {
        match b.ar {
            Some(ar) => {
                let _ = write!(s, ", AR on {ar}");
            }
            None => s.push_str(", no AR section (cut short)"),
        }
    }
    if let Some(crc) = b.crc {
        let _ = write!(s, ", window CRC 0x{crc:08x}");
    }
    s
}

/// One line for a frame that is neither a section nor a section response.
fn frame_text(f: &Frame, boot: Boot) -> String {
    let me = me_name(f.me_class, f.me_instance);
    match &f.body {
        Body::Get { attribute_mask } => {
            format!("Get {me}: {}", attribute_names(f.me_class, *attribute_mask))
        }
        Body::GetResponse {
            result,
            image,
            attribute_mask,
            equipment_id,
        } => match image {
            Some(s) if result.is_success() => format!("Get response {me}: {}", s.compact()),
            Some(s) => format!(
                "Get response {me}: {}, {}",
                result_words(*result),
                s.compact()
            ),
            None => match equipment_id {
                Some(id) if f.me_class == MeClass::ONU2_G.0 => format!(
                    "Get response {me}: {}, equipment ID {}",
                    result_words(*result),
                    version_text(id)
                ),
                _ => format!(
                    "Get response {me}: {}, attribute mask 0x{attribute_mask:04x}",
                    result_words(*result)
                ),
            },
        },
        Body::StartDownload {
            window_size,
            image_size,
            instances,
        } => format!(
            "Start software download: {}, {image_size} bytes, windows of {window_size} sections",
            image_list(instances)
        ),
        Body::StartDownloadResponse {
            result,
            window_size,
        } => {
            if result.is_success() {
                format!("Start software download: success, window {window_size} sections")
            } else {
                format!("Start software download: {}", result_words(*result))
            }
        }
        Body::Section { number, .. } => format!("Download section {number}"),
        Body::SectionResponse { result, number } => {
            format!("Download section {number}: {}", result_words(*result))
        }
        Body::EndDownload {
            crc,
            image_size,
            instances,
        } => {
            if *image_size == 0 && *crc == 0xFFFF_FFFF {
                format!(
                    "End software download: abort {} (size 0, CRC 0xffffffff)",
                    image_list(instances)
                )
            } else {
                format!("End software download: CRC 0x{crc:08x}, {image_size} bytes")
            }
        }
        Body::EndDownloadResponse { result } => {
            format!("End software download: {}", result_words(*result))
        }
        Body::Activate { flags } => {
            if *flags == 0 {
                format!("Activate software {}", image_name(f.me_instance))
            } else {
                format!(
                    "Activate software {} (flags {flags})",
                    image_name(f.me_instance)
                )
            }
        }
        Body::ActivateResponse { result } => {
            format!("Activate software: {}", result_words(*result))
        }
        Body::Commit => format!("Commit software {}", image_name(f.me_instance)),
        Body::CommitResponse { result } => format!("Commit software: {}", result_words(*result)),
        Body::MibReset => format!("MIB reset ({me})"),
        Body::MibResetResponse { result } => format!("MIB reset: {}", result_words(*result)),
        Body::Reboot { condition } => {
            if *condition == 0 {
                format!("Reboot ({me})")
            } else {
                format!("Reboot ({me}, condition {condition})")
            }
        }
        Body::RebootResponse { result } => format!("Reboot: {}", result_words(*result)),
        Body::AttributeValueChange {
            image,
            attribute_mask,
        } => {
            let what = match image {
                Some(s) => format!("{}: {}", image_name(f.me_instance), s.compact()),
                None => format!("{me}, attribute mask 0x{attribute_mask:04x}"),
            };
            format!("Attribute value change{} {what}", boot.label())
        }
        Body::Other { name, .. } => format!("{name} ({me})"),
    }
}

// ============================================================================================
// The sequence diagram

/// Arrows beyond which the middle of the diagram is left out.
const MAX_ARROWS: usize = 400;

#[derive(Clone, Debug)]
enum Line {
    Arrow {
        from: String,
        to: String,
        dashed: bool,
        text: String,
        count: usize,
        window: Option<u32>,
        time: Duration,
    },
    Note(String),
}

/// A request arrow that identical requests may join ("×N").
#[derive(Clone, Debug)]
struct Run {
    request: usize,
    text: String,
    /// The arrow of the last answer, its text, and whether it lets the next identical request
    /// join (device busy, or no answer at all).
    response: Option<(usize, String)>,
    joinable: bool,
}

/// Mermaid text must not hold `;` (a statement end) or `#` (an entity).
fn clean(text: &str) -> String {
    text.replace(';', ",").replace('#', "no. ")
}

/// A Markdown document holding one Mermaid sequence diagram of the whole upgrade as the OLT
/// saw it: participants `OLT`, `Group` (when the capture has multicast frames) and the ONUs
/// in `onus` (at most 3 are shown; none given: the first 3 of the capture).
///
/// The Download sections of one window are one arrow ("window 3: sections 0-31, AR on 31,
/// window CRC ..."), the ONU's answer one arrow back; identical requests answered device busy
/// (or not answered) are one arrow marked "×N"; notes mark the phases. When more than about
/// 400 arrows would be drawn, the first and last 200 are kept and a note says how many were
/// left out. The text starts with ```` ```mermaid ```` and ends with the closing fence (no
/// newline after it).
pub fn mermaid(frames: &[Frame], onus: &[u16]) -> String {
    let a = Analysis::new(frames);
    let shown: Vec<u16> = if onus.is_empty() {
        a.onus.iter().copied().take(3).collect()
    } else {
        let mut v = Vec::new();
        for &o in onus {
            if !v.contains(&o) && v.len() < 3 {
                v.push(o);
            }
        }
        v
    };
    let pid = |o: u16| format!("ONU{o}");
    let last_participant = shown.last().map_or_else(
        || {
            if a.has_group {
                "Group".to_string()
            } else {
                "OLT".to_string()
            }
        },
        |&o| pid(o),
    );
    let note_over = if last_participant == "OLT" {
        "OLT".to_string()
    } else {
        format!("OLT,{last_participant}")
    };

    let mut lines: Vec<Line> = Vec::new();
    let mut states: HashMap<u16, OnuState> = HashMap::new();
    let mut noted: HashSet<Phase> = HashSet::new();
    let mut runs: HashMap<u16, Run> = HashMap::new();
    let note = |lines: &mut Vec<Line>, noted: &mut HashSet<Phase>, p: Phase, t: Duration| {
        if matches!(p, Phase::Other) {
            return;
        }
        if noted.insert(p) {
            lines.push(Line::Note(format!("{} ({})", p.note(a.has_group), secs(t))));
        }
    };

    for ev in &a.events {
        match *ev {
            Ev::FileStart(i) => {
                runs.clear();
                noted.clear();
                for st in states.values_mut() {
                    *st = OnuState {
                        images: std::mem::take(&mut st.images),
                        ..OnuState::default()
                    };
                }
                lines.push(Line::Note(format!(
                    "Capture file {} begins at {}: the OLT was restarted",
                    a.frames[i].file + 1,
                    secs(a.time(i))
                )));
            }
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                let to = match burst.dest {
                    Dest::Group => "Group".to_string(),
                    Dest::Onu(o) if shown.contains(&o) => pid(o),
                    Dest::Onu(_) => continue,
                };
                if let Dest::Onu(o) = burst.dest {
                    runs.remove(&o);
                }
                let last = *burst.frames.last().unwrap_or(&0);
                note(
                    &mut lines,
                    &mut noted,
                    Phase::Download,
                    a.time(burst.frames[0]),
                );
                lines.push(Line::Arrow {
                    from: "OLT".into(),
                    to,
                    dashed: false,
                    text: burst_text(burst),
                    count: 1,
                    window: burst.window,
                    time: a.time(last),
                });
            }
            Ev::Answer(x) => {
                let ans = &a.answers[x];
                if !shown.contains(&ans.onu) {
                    continue;
                }
                runs.remove(&ans.onu);
                let w = ans
                    .window
                    .map_or_else(|| "window ?".to_string(), |w| format!("window {w}"));
                let text = match (ans.result, ans.missing) {
                    (ResultCode::ProcessingError, Some(n)) => format!(
                        "{w}: processing error (missing {})",
                        plural(n, "section", "sections")
                    ),
                    (r, _) => format!("{w}: {}", result_words(r)),
                };
                lines.push(Line::Arrow {
                    from: pid(ans.onu),
                    to: "OLT".into(),
                    dashed: true,
                    text,
                    count: 1,
                    window: ans.window,
                    time: a.time(ans.frame),
                });
            }
            Ev::Frame(i) => {
                let f = &a.frames[i];
                let Some(onu) = f.onu() else { continue };
                if !shown.contains(&onu) {
                    continue;
                }
                let st = states.entry(onu).or_default();
                if matches!(f.body, Body::StartDownload { .. }) && (st.end_sent || st.activated) {
                    // This ONU begins a new download (a new wave, a retry): its phases
                    // are worth marking again.
                    noted.clear();
                }
                let boot = Boot::of(st, f);
                let phase = st.step(f);
                note(&mut lines, &mut noted, phase, f.time);
                let text = frame_text(f, boot);
                let upstream = f.direction == Direction::Upstream;
                if !upstream {
                    // A request: it joins the previous identical one if that one was answered
                    // device busy or not answered at all.
                    if let Some(run) = runs.get_mut(&onu)
                        && run.text == text
                        && run.joinable
                        && let Some(Line::Arrow { count, .. }) = lines.get_mut(run.request)
                    {
                        *count += 1;
                        run.joinable = true; // until its answer says otherwise
                        continue;
                    }
                    lines.push(Line::Arrow {
                        from: "OLT".into(),
                        to: pid(onu),
                        dashed: false,
                        text: text.clone(),
                        count: 1,
                        window: None,
                        time: f.time,
                    });
                    runs.insert(
                        onu,
                        Run {
                            request: lines.len() - 1,
                            text,
                            response: None,
                            joinable: true,
                        },
                    );
                } else {
                    let is_answer = f.body.is_response();
                    if is_answer && let Some(run) = runs.get_mut(&onu) {
                        let busy = f.body.result() == Some(ResultCode::DeviceBusy);
                        if let Some((arrow, rtext)) = &run.response
                            && *rtext == text
                            && busy
                            && let Some(Line::Arrow { count, .. }) = lines.get_mut(*arrow)
                        {
                            *count += 1;
                            run.joinable = true;
                            continue;
                        }
                        lines.push(Line::Arrow {
                            from: pid(onu),
                            to: "OLT".into(),
                            dashed: true,
                            text: text.clone(),
                            count: 1,
                            window: None,
                            time: f.time,
                        });
                        run.response = Some((lines.len() - 1, text));
                        run.joinable = busy;
                        continue;
                    }
                    if !is_answer {
                        // A notification breaks a run of identical requests only when it
                        // is not a boot announcement during the reboot polling.
                        if boot != Boot::Announced {
                            runs.remove(&onu);
                        }
                    }
                    lines.push(Line::Arrow {
                        from: pid(onu),
                        to: "OLT".into(),
                        dashed: true,
                        text,
                        count: 1,
                        window: None,
                        time: f.time,
                    });
                }
            }
        }
    }

    // Keep the first and the last arrows when there are too many.
    let arrows = lines
        .iter()
        .filter(|l| matches!(l, Line::Arrow { .. }))
        .count();
    let mut kept: Vec<Line> = Vec::new();
    if arrows > MAX_ARROWS {
        let head = MAX_ARROWS / 2;
        let tail = MAX_ARROWS - head;
        let mut seen = 0usize;
        let mut omitted = 0usize;
        let mut windows: BTreeSet<u32> = BTreeSet::new();
        let mut span: Option<(Duration, Duration)> = None;
        let mut marker_at = None;
        for line in lines {
            let is_arrow = matches!(line, Line::Arrow { .. });
            let keep = seen < head || seen >= arrows - tail;
            if is_arrow {
                seen += 1;
            }
            if keep || (!is_arrow && seen <= head) {
                kept.push(line);
                continue;
            }
            if let Line::Arrow {
                window,
                time,
                count,
                ..
            } = &line
            {
                omitted += count;
                windows.extend(*window);
                span = Some(span.map_or((*time, *time), |(a, _)| (a, *time)));
                if marker_at.is_none() {
                    marker_at = Some(kept.len());
                }
            }
        }
        if let Some(at) = marker_at {
            let mut text = format!("... {omitted} exchanges omitted");
            if let Some((t0, t1)) = span {
                let _ = write!(text, " ({} to {}", secs(t0), secs(t1));
                if !windows.is_empty() {
                    let first = windows.first().copied().unwrap_or(0);
                    let last = windows.last().copied().unwrap_or(0);
                    let _ = write!(text, ", windows {first}-{last}");
                }
                text.push(')');
            }
            text.push_str(" ...");
            kept.insert(at, Line::Note(text));
        }
    } else {
        kept = lines;
    }

    let mut out = String::from("```mermaid\nsequenceDiagram\n");
    out.push_str("    participant OLT\n");
    if a.has_group {
        out.push_str("    participant Group as Group (multicast)\n");
    }
    for &o in &shown {
        let _ = writeln!(out, "    participant {} as ONU {o}", pid(o));
    }
    for line in &kept {
        match line {
            Line::Arrow {
                from,
                to,
                dashed,
                text,
                count,
                ..
            } => {
                let arrow = if *dashed { "-->>" } else { "->>" };
                let times = if *count > 1 {
                    format!(" ×{count}")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "    {from}{arrow}{to}: {}{times}", clean(text));
            }
            Line::Note(text) => {
                let _ = writeln!(out, "    Note over {note_over}: {}", clean(text));
            }
        }
    }
    out.push_str("```");
    out
}

// ============================================================================================
// The explanation

/// One thing that happened to the explained ONU.
#[derive(Clone, Debug)]
enum Item {
    /// A request and its answer (if one came).
    Exchange {
        request: usize,
        response: Option<usize>,
    },
    /// A frame on its own: a notification, or an answer no request was seen for.
    Single(usize),
    /// The download: bursts and answers.
    Download(Vec<Ev>),
    /// A new capture file.
    FileStart(usize),
}

/// The story of one window for one ONU.
#[derive(Clone, Debug, Default)]
struct WindowStory {
    /// Bursts that reached the ONU (on the group or alone).
    bursts: Vec<usize>,
    answers: Vec<usize>,
}

/// A plain-text narration of ONU `onu`'s upgrade, in time order, for someone new to PON: each
/// phase and why it exists, each message by its G.988 name, with times in seconds from the
/// first frame of the capture. The download is summarised by windows.
pub fn explain(frames: &[Frame], onu: u16) -> String {
    let a = Analysis::new(frames);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "How ONU {onu} was upgraded, as the OLT's capture shows it"
    );
    let _ = writeln!(
        w,
        "(times are seconds since the capture's first frame; \"OLT -> ONU\" is downstream)"
    );
    let _ = writeln!(w);
    if !a.onus.contains(&onu) {
        let seen: Vec<String> = a.onus.iter().map(u16::to_string).collect();
        let _ = writeln!(
            w,
            "ONU {onu} does not appear in this capture ({} frames; ONUs seen: {}).",
            a.frames.len(),
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        );
        return out;
    }
    para(
        w,
        "",
        "The OLT manages each ONU with OMCI messages (ITU-T G.988): a request, answered by the \
         ONU with a response carrying the same transaction id (TCI). Each message addresses a \
         managed entity (ME); the software lives in the Software image ME (class 7). An ONU has \
         two of them, image 0 and image 1: at most one is active (it runs) and one is committed \
         (it boots by default). The new software goes into the other one, so that the ONU always \
         keeps a working image, whatever happens during the upgrade.",
    );
    if a.has_group {
        para(
            w,
            "",
            "This rollout used the multicast group: the OLT sends each window of the image once, \
             and that one copy reaches every ONU; each ONU answers on its own channel (its OMCC).",
        );
    }
    let others: Vec<u32> = a
        .onus
        .iter()
        .filter(|&&o| o != onu)
        .map(|&o| u32::from(o))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            w,
            "The capture also holds {} {}: only ONU {onu} is followed here.",
            if others.len() == 1 { "ONU" } else { "ONUs" },
            ranges(others)
        );
    }

    let items = collect_items(&a, onu);
    // The phase of every item, whether it is a boot announcement, and the state after it.
    let mut phases: Vec<Phase> = Vec::with_capacity(items.len());
    let mut boots: Vec<Boot> = Vec::with_capacity(items.len());
    let mut states: Vec<OnuState> = Vec::with_capacity(items.len());
    let mut st = OnuState::default();
    for item in &items {
        let mut boot = Boot::No;
        let phase = match item {
            Item::Exchange { request, response } => {
                let p = st.step(&a.frames[*request]);
                if let Some(r) = response {
                    st.step(&a.frames[*r]);
                }
                p
            }
            Item::Single(f) => {
                let fr = &a.frames[*f];
                boot = Boot::of(&st, fr);
                st.step(fr)
            }
            Item::Download(_) => Phase::Download,
            Item::FileStart(_) => {
                // A restarted OLT starts from a survey: what it did before is forgotten.
                st = OnuState {
                    images: std::mem::take(&mut st.images),
                    ..OnuState::default()
                };
                Phase::Other
            }
        };
        phases.push(phase);
        boots.push(boot);
        states.push(st.clone());
    }
    let mut current: Option<Phase> = None;
    let mut told: HashSet<Phase> = HashSet::new();
    let mut step_no = 0usize;
    let mut memo = DownloadMemo::default();
    let mut i = 0;
    while i < items.len() {
        if matches!(items[i], Item::FileStart(_))
            || matches!(items[i], Item::Exchange { request, .. }
                if matches!(a.frames[request].body, Body::StartDownload { .. }))
        {
            memo.seen.clear();
        }
        // Identical exchanges in a row, of one phase, are one line with "×N".
        let mut n = 1;
        if let Item::Exchange { request, response } = &items[i] {
            while let Some(Item::Exchange {
                request: r2,
                response: s2,
            }) = items.get(i + n)
            {
                let same_request = frame_text(&a.frames[*request], Boot::No)
                    == frame_text(&a.frames[*r2], Boot::No);
                let same_answer = match (response, s2) {
                    (None, None) => true,
                    (Some(x), Some(y)) => {
                        frame_text(&a.frames[*x], Boot::No) == frame_text(&a.frames[*y], Boot::No)
                    }
                    _ => false,
                };
                if same_request && same_answer && phases[i + n] == phases[i] {
                    n += 1;
                } else {
                    break;
                }
            }
        }
        let item = &items[i];
        let first = match item {
            Item::Exchange { request, .. } => Some(*request),
            Item::Single(f) => Some(*f),
            Item::Download(evs) => evs.first().map(|e| ev_frame(&a, *e)),
            Item::FileStart(_) => None,
        };
        let phase = phases[i];
        let boot = boots[i];
        let st = &states[i + n - 1];
        if let Item::FileStart(f) = item {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "{:>9}  Capture file {} begins: the OLT was restarted. A restarted OLT asks each ONU",
                secs(a.time(*f)),
                a.frames[*f].file + 1
            );
            let _ = writeln!(
                w,
                "           where it is (Get) and carries on from there: nothing already done is lost."
            );
            current = None;
            i += 1;
            continue;
        }
        if phase != Phase::Other && current != Some(phase) {
            step_no += 1;
            let again = !told.insert(phase);
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "{step_no}. {}{}",
                phase.title(),
                if again { " (again)" } else { "" }
            );
            if !again {
                intro(w, phase, st, &a, onu, first.map(|f| &a.frames[f]));
            }
            current = Some(phase);
        }
        match item {
            Item::Exchange { request, response } => {
                let req = &a.frames[*request];
                let times = if n > 1 {
                    let last = match &items[i + n - 1] {
                        Item::Exchange { request, .. } => a.time(*request),
                        _ => req.time,
                    };
                    format!("  (×{n}, until {})", secs(last))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    w,
                    "{:>9}  OLT -> ONU  {}{times}",
                    secs(req.time),
                    long_text(req)
                );
                match response {
                    Some(r) => {
                        let resp = &a.frames[*r];
                        let _ = writeln!(
                            w,
                            "{:>9}  ONU -> OLT  {}{}",
                            secs(resp.time),
                            long_text(resp),
                            if n > 1 {
                                format!("  (×{n})")
                            } else {
                                String::new()
                            }
                        );
                        comment(w, req, resp, n, st);
                    }
                    None => {
                        let _ = writeln!(
                            w,
                            "           (no answer{}{})",
                            if n > 1 { " to any of them" } else { "" },
                            match phase {
                                Phase::Reboot => ": the ONU is rebooting, the OLT asks again",
                                _ => ": the OLT's timeout sends the request again",
                            }
                        );
                    }
                }
            }
            Item::Single(f) => {
                let fr = &a.frames[*f];
                let dir = if fr.direction == Direction::Upstream {
                    "ONU -> OLT"
                } else {
                    "OLT -> ONU"
                };
                let mut text = frame_text(fr, boot);
                if let Body::AttributeValueChange { image: Some(s), .. } = &fr.body {
                    text = format!(
                        "Attribute value change{}: {} is now {}",
                        boot.label(),
                        image_name(fr.me_instance),
                        s.words()
                    );
                }
                let _ = writeln!(w, "{:>9}  {dir}  {text}", secs(fr.time));
                if boot == Boot::Unexpected {
                    para(
                        w,
                        "           ",
                        "The ONU booted without being asked to (a power cut, say): it came back \
                         on its committed image, and what it was downloading or verifying is \
                         lost. The OLT finds out from the ONU's next answers.",
                    );
                }
            }
            Item::Download(evs) => download_summary(w, &a, evs, &mut memo),
            Item::FileStart(_) => {}
        }
        i += n;
    }

    // The final state.
    step_no += 1;
    let _ = writeln!(w);
    let _ = writeln!(w, "{step_no}. Final state");
    if st.images.is_empty() {
        let _ = writeln!(
            w,
            "   The ONU reported no software image values in this capture."
        );
    } else {
        let _ = writeln!(w, "   As the ONU last reported them:");
        for (inst, s) in &st.images {
            let _ = writeln!(w, "   - {}: {}", image_name(*inst), s.words());
        }
    }
    let target = st.target.and_then(|t| st.images.get(&t).map(|s| (t, s)));
    let committed_image = st
        .images
        .iter()
        .find(|(_, s)| s.is_committed == Some(true))
        .map(|(i, s)| {
            format!(
                "{} ({})",
                image_name(*i),
                s.version.as_deref().map_or("?".into(), version_text)
            )
        });
    let verdict = match target {
        _ if st.fell_back => format!(
            "ONU {onu} was not upgraded: it came back on its committed image{} after the \
             Activate (the new image did not boot). Nothing is lost: the committed image was \
             never touched.",
            committed_image
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ),
        Some((_, s)) if st.failure.is_some() && s.is_active != Some(true) => format!(
            "ONU {onu} was not upgraded: {}. It runs its committed image{}.",
            st.failure.as_deref().unwrap_or_default(),
            committed_image
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ),
        Some((t, s))
            if s.is_active == Some(true) && s.is_committed == Some(true) && st.committed =>
        {
            format!(
                "ONU {onu} is upgraded: {} ({}) runs and is committed; the other image stays as \
                 the fallback for the next upgrade.",
                image_name(t),
                s.version
                    .as_deref()
                    .map_or("new version".into(), version_text)
            )
        }
        Some((t, s)) if s.is_active == Some(true) => format!(
            "ONU {onu} runs {} ({}), not committed: a reboot would bring back the committed image.",
            image_name(t),
            s.version
                .as_deref()
                .map_or("new version".into(), version_text)
        ),
        Some((t, s)) if s.is_valid == Some(true) => format!(
            "ONU {onu} holds the new software in {} (valid) but does not run it.",
            image_name(t)
        ),
        Some((t, _)) => format!(
            "ONU {onu} was not upgraded: {} is not a valid image; it runs its committed one.",
            image_name(t)
        ),
        None => format!("ONU {onu} was not sent a download in this capture."),
    };
    para(w, "   ", &verdict);
    out
}

fn ev_frame(a: &Analysis<'_>, e: Ev) -> usize {
    match e {
        Ev::Burst(b) => a.bursts[b].frames[0],
        Ev::Answer(x) => a.answers[x].frame,
        Ev::Frame(f) | Ev::FileStart(f) => f,
    }
}

/// The explained ONU's items in time order: exchanges paired by TCI, the download gathered.
fn collect_items(a: &Analysis<'_>, onu: u16) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    // (action, TCI) -> the item of the latest request still without an answer.
    let mut waiting: HashMap<(String, u16), usize> = HashMap::new();
    let mut target: Option<u16> = None;
    let mut downloading = false;
    // Windows this ONU holds (answered success) since its last Start: the group's repeats of
    // them are for other ONUs.
    let mut held: HashSet<u32> = HashSet::new();
    // Group bursts that are part of this ONU's story.
    let mut ours: HashSet<usize> = HashSet::new();
    for &ev in &a.events {
        match ev {
            Ev::FileStart(f) => {
                waiting.clear();
                downloading = false;
                items.push(Item::FileStart(f));
            }
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                let relevant = match burst.dest {
                    Dest::Onu(o) => o == onu,
                    Dest::Group => {
                        downloading
                            && target == Some(burst.instance)
                            && burst.window.is_none_or(|w| !held.contains(&w))
                    }
                };
                if relevant {
                    ours.insert(b);
                    match items.last_mut() {
                        Some(Item::Download(evs)) => evs.push(ev),
                        _ => items.push(Item::Download(vec![ev])),
                    }
                }
            }
            Ev::Answer(x) => {
                let ans = &a.answers[x];
                // An answer to a group repeat this ONU did not need is left out too.
                if ans.onu == onu && ans.burst.is_none_or(|b| ours.contains(&b)) {
                    if ans.result.is_success()
                        && let Some(w) = ans.window
                    {
                        held.insert(w);
                    }
                    match items.last_mut() {
                        Some(Item::Download(evs)) => evs.push(ev),
                        _ => items.push(Item::Download(vec![ev])),
                    }
                }
            }
            Ev::Frame(i) => {
                let f = &a.frames[i];
                if f.onu() != Some(onu) {
                    continue;
                }
                match &f.body {
                    Body::StartDownload { .. } => {
                        target = Some(f.me_instance);
                        downloading = true;
                        held.clear();
                    }
                    Body::EndDownload { .. } => downloading = false,
                    _ => {}
                }
                let key = (f.body.action().to_string(), f.tci);
                if f.direction == Direction::Downstream {
                    waiting.insert(key, items.len());
                    items.push(Item::Exchange {
                        request: i,
                        response: None,
                    });
                } else if f.body.is_response()
                    && let Some(at) = waiting.remove(&key)
                    && let Some(Item::Exchange { response, .. }) = items.get_mut(at)
                {
                    *response = Some(i);
                } else {
                    items.push(Item::Single(i));
                }
            }
        }
    }
    // An unanswered retransmission followed by the answered one: G.988 retransmissions keep
    // their TCI, so the answer went to the last; the earlier ones show as unanswered.
    items
}

/// A frame in words, with the G.988 message name.
fn long_text(f: &Frame) -> String {
    let me = me_name(f.me_class, f.me_instance);
    match &f.body {
        Body::Get { attribute_mask } => format!(
            "Get request, {me}: {}",
            attribute_names(f.me_class, *attribute_mask)
        ),
        Body::GetResponse {
            result,
            image: Some(s),
            ..
        } => format!(
            "Get response: {}, {} is {}",
            result_words(*result),
            image_name(f.me_instance),
            s.words()
        ),
        Body::GetResponse {
            result,
            equipment_id: Some(id),
            ..
        } if f.me_class == MeClass::ONU2_G.0 => format!(
            "Get response ({me}): {}, equipment ID \"{id}\" (the model: a campaign upgrades \
             only the model its image is built for)",
            result_words(*result)
        ),
        Body::GetResponse {
            result,
            attribute_mask,
            ..
        } => format!(
            "Get response ({me}): {}, attribute mask 0x{attribute_mask:04x}",
            result_words(*result)
        ),
        Body::StartDownload {
            window_size,
            image_size,
            instances,
        } => format!(
            "Start software download request: {image_size} bytes into {}, windows of {window_size} sections",
            image_list(instances)
        ),
        Body::StartDownloadResponse {
            result,
            window_size,
        } => format!(
            "Start software download response: {}, the ONU accepts windows of {window_size} sections",
            result_words(*result)
        ),
        Body::EndDownload {
            crc,
            image_size,
            instances,
        } => {
            if *image_size == 0 && *crc == 0xFFFF_FFFF {
                format!(
                    "End software download request with size 0 and CRC 0xffffffff: abort the download into {}",
                    image_list(instances)
                )
            } else {
                format!(
                    "End software download request: image CRC-32 0x{crc:08x}, {image_size} bytes, {}",
                    image_list(instances)
                )
            }
        }
        Body::EndDownloadResponse { result } => {
            format!("End software download response: {}", result_words(*result))
        }
        Body::Activate { flags } => format!(
            "Activate software request, {}{}",
            image_name(f.me_instance),
            match flags {
                0 => String::new(),
                1 => " (only if no voice call is in progress)".to_string(),
                2 => " (only if no emergency call is in progress)".to_string(),
                f => format!(" (flags {f})"),
            }
        ),
        Body::ActivateResponse { result } => {
            format!("Activate software response: {}", result_words(*result))
        }
        Body::Commit => format!("Commit software request, {}", image_name(f.me_instance)),
        Body::CommitResponse { result } => {
            format!("Commit software response: {}", result_words(*result))
        }
        Body::MibReset => format!(
            "MIB reset request ({me}): the ONU's configuration returns to its defaults; the software images are untouched"
        ),
        Body::MibResetResponse { result } => {
            format!("MIB reset response: {}", result_words(*result))
        }
        Body::Reboot { .. } => {
            format!("Reboot request ({me}): the ONU restarts, from its committed image")
        }
        Body::RebootResponse { result } => format!("Reboot response: {}", result_words(*result)),
        _ => frame_text(f, Boot::No),
    }
}

/// Why a phase exists, printed the first time it comes.
fn intro(
    w: &mut String,
    phase: Phase,
    st: &OnuState,
    a: &Analysis<'_>,
    onu: u16,
    first: Option<&Frame>,
) {
    let text: String = match phase {
        Phase::Discover => "The OLT reads both Software image MEs (Get): their version and \
             whether each is committed, active and valid. That tells it which image it may \
             overwrite."
            .into(),
        Phase::Start => {
            let mut t = String::new();
            if let Some(target) = first.map(|f| f.me_instance) {
                let other = SoftwareImageId::from_instance(target).other().instance();
                let other_state = st
                    .images
                    .get(&other)
                    .map(|s| format!(" ({} is {})", image_name(other), s.words()))
                    .unwrap_or_default();
                let _ = write!(
                    t,
                    "The target is {}: the image neither active nor committed{other_state}. \
                     Overwriting it disturbs neither the software running now nor the one the \
                     ONU would boot after a power cut. ",
                    image_name(target)
                );
            }
            t.push_str(
                "Start software download announces the image size; the ONU erases the target \
                 and says how many sections per window it accepts (it may lower the OLT's \
                 proposal, never raise it).",
            );
            t
        }
        Phase::Download => {
            let mut t = String::from(
                "The image travels in Download section messages (31 bytes of image each in a \
                 baseline frame), grouped in windows. Only a window's last section has AR \
                 (acknowledge request) set; the ONU answers it with success (it holds the whole \
                 window) or processing error (sections are missing). G.988 does not number \
                 windows (the lab's envelope does, and a capture does not show it): the window \
                 numbers below are recovered from the sections' contents.",
            );
            if a.has_group {
                t.push_str(
                    " On the multicast group one copy of each window serves every ONU; repairs \
                     go to the group when many ONUs miss a section, else to the ONU alone.",
                );
            }
            t
        }
        Phase::End => "End software download gives the CRC-32 and the size of the whole \
             image. The ONU checks the image it wrote (CRC, header, signature, anti-rollback \
             floor) before it answers success; while it is still writing and verifying flash it \
             answers device busy, and the OLT asks again with the same request."
            .into(),
        Phase::Verify => "The OLT reads the target back: it must be valid, carry the new \
             version and not be active."
            .into(),
        Phase::Activate => {
            let committed = st
                .images
                .iter()
                .find(|(_, s)| s.is_committed == Some(true))
                .map(|(i, _)| image_name(*i))
                .unwrap_or_else(|| "the committed image".into());
            format!(
                "Activate software makes the ONU reboot into the new image. It then runs \
                 (active) but is not committed: if it fails to boot, the ONU falls back to the \
                 committed image ({committed}), so a bad image cannot leave ONU {onu} without \
                 working software."
            )
        }
        Phase::Reboot => "While the ONU reboots it answers nothing. Back up, it announces \
             itself with attribute value changes of both images, and the OLT's Get confirms \
             which image runs."
            .into(),
        Phase::Health => "A while later the OLT checks again that the new image still runs, \
             before it commits it."
            .into(),
        Phase::Commit => "Commit software makes the new image the one that boots from now on; \
             the ONU raises its anti-rollback floor to the image's security version, so older, \
             vulnerable images are refused from then on. The OLT reads the image back to check \
             that it is committed."
            .into(),
        Phase::Inspect => {
            let why = st.failure.as_deref().unwrap_or("the upgrade failed");
            format!(
                "The upgrade failed ({why}). The OLT reads both images again, so that its report \
                 says what the ONU really runs."
            )
        }
        Phase::Abort => "End software download with size 0 and CRC 0xFFFFFFFF aborts: the ONU \
             discards the partial or unverified image and keeps running its committed one."
            .into(),
        Phase::Other => String::new(),
    };
    if !text.is_empty() {
        para(w, "   ", &text);
    }
}

/// Width the explanation's paragraphs are wrapped to.
const WIDTH: usize = 96;

/// Writes `text` wrapped to [`WIDTH`] columns, every line after `indent` (a text that starts
/// with "- " has its next lines indented under its first word).
fn para(w: &mut String, indent: &str, text: &str) {
    let rest = if text.starts_with("- ") {
        format!("{indent}  ")
    } else {
        indent.to_string()
    };
    let mut line = String::from(indent);
    let mut fresh = true;
    for word in text.split_whitespace() {
        if !fresh && line.chars().count() + 1 + word.chars().count() > WIDTH {
            let _ = writeln!(w, "{line}");
            line.clone_from(&rest);
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    if !fresh {
        let _ = writeln!(w, "{line}");
    }
}

/// A remark after an answer, where the answer needs one.
fn comment(w: &mut String, req: &Frame, resp: &Frame, n: usize, st: &OnuState) {
    const INDENT: &str = "           ";
    match (&req.body, &resp.body) {
        (Body::EndDownload { .. }, Body::EndDownloadResponse { result }) => {
            if *result == ResultCode::DeviceBusy {
                let times = if n > 1 {
                    format!(" {n} times")
                } else {
                    String::new()
                };
                para(
                    w,
                    INDENT,
                    &format!(
                        "device busy{times}: the ONU is still writing the image to flash and \
                         verifying it; the OLT waits and sends the same End software download \
                         again."
                    ),
                );
            } else if *result == ResultCode::ProcessingError {
                para(
                    w,
                    INDENT,
                    "processing error: the image is incomplete or did not verify; it stays \
                     invalid, and the ONU keeps running its committed image.",
                );
            }
        }
        (Body::Activate { flags }, Body::ActivateResponse { result }) if !result.is_success() => {
            let why = match (result, flags) {
                (ResultCode::DeviceBusy, 1) => {
                    "device busy: a voice call is in progress and the flags ask the ONU not to \
                     reboot during one; the OLT asks again later"
                }
                (ResultCode::DeviceBusy, 2) => {
                    "device busy: an emergency call is in progress and the flags ask the ONU not \
                     to reboot during one; the OLT asks again later"
                }
                (ResultCode::DeviceBusy, _) => "device busy: the ONU cannot reboot now",
                _ => "the ONU refused to activate the image: it stays where it was",
            };
            para(w, INDENT, why);
        }
        (Body::Get { .. }, Body::GetResponse { image: Some(s), .. })
            if Some(req.me_instance) == st.target && st.activated =>
        {
            match (s.is_active, s.is_committed) {
                (Some(true), Some(true)) => {
                    para(w, INDENT, "=> the new image runs and is committed.");
                }
                (Some(true), _) => para(
                    w,
                    INDENT,
                    "=> the ONU runs the new image: active, not yet committed.",
                ),
                (Some(false), _) if !st.awaiting_boot => para(
                    w,
                    INDENT,
                    "=> the new image is not running: the ONU came back on its committed image \
                     (the new one did not boot, or the ONU rebooted again before Commit; in the \
                     second case the OLT activates it again).",
                ),
                _ => {}
            }
        }
        _ => {}
    }
}

/// What the download summaries have told so far.
#[derive(Default)]
struct DownloadMemo {
    /// Windows of the current download already told of.
    seen: HashSet<u32>,
    /// Why windows are repeated has been explained.
    repair_told: bool,
}

/// The download, summarised by windows.
fn download_summary(w: &mut String, a: &Analysis<'_>, evs: &[Ev], memo: &mut DownloadMemo) {
    const INDENT: &str = "           ";
    let mut windows: BTreeMap<u32, WindowStory> = BTreeMap::new();
    let mut unknown_bursts = 0usize;
    let mut unknown_answers = 0usize;
    let mut on_group = 0usize;
    let mut alone = 0usize;
    let mut by_group: BTreeSet<u32> = BTreeSet::new();
    let mut by_unicast: BTreeSet<u32> = BTreeSet::new();
    let mut again: BTreeSet<u32> = BTreeSet::new();
    let mut sizes: BTreeMap<u32, usize> = BTreeMap::new();
    for &e in evs {
        match e {
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                match burst.dest {
                    Dest::Group => on_group += burst.sections.len(),
                    Dest::Onu(_) => alone += burst.sections.len(),
                }
                match burst.window {
                    Some(win) => {
                        let story = windows.entry(win).or_default();
                        if story.bursts.is_empty() {
                            if !memo.seen.insert(win) {
                                again.insert(win);
                            } else {
                                match burst.dest {
                                    Dest::Group => by_group.insert(win),
                                    Dest::Onu(_) => by_unicast.insert(win),
                                };
                            }
                        }
                        story.bursts.push(b);
                        if burst.full {
                            sizes.entry(win).or_insert(burst.sections.len());
                        }
                    }
                    None => unknown_bursts += 1,
                }
            }
            Ev::Answer(x) => match a.answers[x].window {
                Some(win) => windows.entry(win).or_default().answers.push(x),
                None => unknown_answers += 1,
            },
            _ => {}
        }
    }
    let (t0, t1) = (
        evs.first()
            .map(|e| a.time(ev_frame(a, *e)))
            .unwrap_or_default(),
        evs.last()
            .map(|e| a.time(ev_frame(a, *e)))
            .unwrap_or_default(),
    );
    let all: Vec<u32> = windows.keys().copied().collect();
    // The usual window length, and the last window's when it is shorter.
    let common = {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for n in sizes.values() {
            *counts.entry(*n).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(_, c)| *c).map(|(n, _)| n)
    };
    let mut shape = String::new();
    if let Some(n) = common {
        let _ = write!(shape, " ({n} sections each");
        if let Some((&lw, &ln)) = sizes.last_key_value()
            && ln != n
            && lw == *all.last().unwrap_or(&0)
        {
            let _ = write!(shape, ", the last {ln}");
        }
        shape.push(')');
    }
    let mut sent = Vec::new();
    if on_group > 0 {
        sent.push(format!("{on_group} on the group"));
    }
    if alone > 0 {
        sent.push(format!("{alone} to this ONU alone"));
    }
    let answers = evs.iter().filter(|e| matches!(e, Ev::Answer(_))).count();
    let _ = writeln!(
        w,
        "{:>9}  {}: Download sections: {}; {} from the ONU.",
        secs(t0),
        if secs(t1) != secs(t0) {
            format!("to {}", secs(t1))
        } else {
            "at once".to_string()
        },
        if sent.is_empty() {
            "none".to_string()
        } else {
            and_list(&sent)
        },
        plural(answers, "window answer", "window answers")
    );
    if !by_group.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}{shape} arrived on the multicast group.",
                if by_group.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(by_group.iter().copied())
            ),
        );
    }
    if !by_unicast.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}{} {} sent to this ONU alone (unicast).",
                if by_unicast.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(by_unicast.iter().copied()),
                if by_group.is_empty() {
                    shape.as_str()
                } else {
                    ""
                },
                if by_unicast.len() == 1 { "was" } else { "were" }
            ),
        );
    }
    if !again.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}, told of above, again.",
                if again.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(again.iter().copied())
            ),
        );
    }
    // Which windows needed more than one try, and their stories.
    let mut first_try: Vec<u32> = Vec::new();
    let mut repaired: Vec<(u32, String)> = Vec::new();
    let mut unanswered: Vec<u32> = Vec::new();
    for (&win, story) in &windows {
        let results: Vec<ResultCode> = story.answers.iter().map(|&x| a.answers[x].result).collect();
        let ar_bursts = story
            .bursts
            .iter()
            .filter(|&&b| a.bursts[b].ar.is_some())
            .count();
        if results == [ResultCode::Success] && ar_bursts <= 1 {
            first_try.push(win);
            continue;
        }
        if results.is_empty() {
            unanswered.push(win);
            continue;
        }
        let mut steps: Vec<(usize, String)> = Vec::new();
        for &b in story.bursts.iter().skip(1) {
            let burst = &a.bursts[b];
            let to = match burst.dest {
                Dest::Group => "to the group",
                Dest::Onu(_) => "to it alone",
            };
            let at = secs(a.time(burst.frames[0]));
            let what = if burst.sections.len() == 1 && burst.ar.is_some() {
                format!("{at} AR section sent again {to}")
            } else if burst.full {
                format!("{at} whole window sent again {to}")
            } else {
                format!(
                    "{at} sections {} sent again {to}",
                    ranges(burst.sections.iter().map(|&s| u32::from(s)))
                )
            };
            steps.push((burst.frames[0], what));
        }
        for &x in &story.answers {
            let ans = &a.answers[x];
            let at = secs(a.time(ans.frame));
            let what = match (ans.result, ans.missing) {
                (ResultCode::ProcessingError, Some(n)) => format!(
                    "{at} processing error ({} missing)",
                    plural(n, "section", "sections")
                ),
                (r, _) => format!("{at} {}", result_words(r)),
            };
            steps.push((ans.frame, what));
        }
        steps.sort_by_key(|(f, _)| *f);
        let mut parts: Vec<String> = Vec::new();
        let first_answer = story.answers.first().map(|&x| a.answers[x].frame);
        let first_retry = story.bursts.get(1).map(|&b| a.bursts[b].frames[0]);
        let first_sent = story.bursts.first().map(|&b| a.bursts[b].frames[0]);
        if let (Some(r), Some(fa), Some(fs)) = (first_retry, first_answer, first_sent)
            && r < fa
        {
            parts.push(format!("sent at {}, no answer", secs(a.time(fs))));
        }
        parts.extend(steps.into_iter().map(|(_, s)| s));
        repaired.push((win, parts.join(", ")));
    }
    if !first_try.is_empty() {
        let list = ranges(first_try.iter().copied());
        let text = if first_try.len() == all.len() {
            "Every window was answered success at the first try.".to_string()
        } else if list.len() <= 60 {
            format!(
                "{} ({list}) answered success at the first try.",
                plural(first_try.len(), "window", "windows"),
            )
        } else {
            format!(
                "{} of {} answered success at the first try.",
                first_try.len(),
                plural(all.len(), "window", "windows"),
            )
        };
        para(w, INDENT, &text);
    }
    if !repaired.is_empty() {
        let names: Vec<String> = repaired.iter().map(|(w, _)| w.to_string()).collect();
        let which = if names.len() > 8 {
            format!(
                "Windows {} ({} windows) needed",
                ranges(repaired.iter().map(|(w, _)| *w)),
                names.len()
            )
        } else if names.len() == 1 {
            format!("Window {} needed", names[0])
        } else {
            format!("Windows {} needed", and_list(&names))
        };
        let why = if memo.repair_told {
            ""
        } else {
            " A window is sent again when the ONU answers processing error (sections were lost \
             on the way: the OLT sends them again) or when no answer comes (the AR section or its \
             answer was lost: the OLT asks again)."
        };
        memo.repair_told = true;
        para(w, INDENT, &format!("{which} a repair.{why}"));
        const SHOWN: usize = 10;
        for (win, story) in repaired.iter().take(SHOWN) {
            para(w, INDENT, &format!("- window {win}: {story}."));
        }
        if repaired.len() > SHOWN {
            para(
                w,
                INDENT,
                &format!(
                    "- ... and {} more.",
                    plural(repaired.len() - SHOWN, "window", "windows")
                ),
            );
        }
    }
    if !unanswered.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "No answer was seen for {} {}.",
                if unanswered.len() == 1 {
                    "window"
                } else {
                    "windows"
                },
                ranges(unanswered.iter().copied())
            ),
        );
    }
    if unknown_bursts + unknown_answers > 0 {
        para(
            w,
            INDENT,
            &format!(
                "({} and {} could not be tied to a window.)",
                plural(unknown_bursts, "burst of sections", "bursts of sections"),
                plural(unknown_answers, "answer", "answers")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omci_codec::contents::{
        DownloadSectionRequest, DownloadSectionResponse, EndSoftwareDownloadRequest,
        EndSoftwareDownloadResponse, GetRequest, GetResponse, StartSoftwareDownloadRequest,
        StartSoftwareDownloadResponse,
    };
    use omci_codec::pcap::CaptureWriter;
    use omci_codec::{Format, MeId, OnuId, Tci};
    use std::borrow::Cow;

    const WS: u8 = 4;

    /// Writes a small multicast rollout to a pcap in memory: 2 ONUs, an image of 10 sections
    /// (windows of 4: 4 + 4 + 2), window 1 repaired for ONU 2, End answered busy twice.
    struct Script {
        w: CaptureWriter<Vec<u8>>,
        t: Duration,
    }

    impl Script {
        fn new() -> Self {
            Self {
                w: CaptureWriter::new(Vec::new()).unwrap(),
                t: Duration::from_secs(1_000_000),
            }
        }

        fn put(&mut self, dir: Direction, peer: Peer, m: Message<'_>) {
            self.t += Duration::from_millis(1);
            let mut buf = [0u8; 48];
            let n = omci_codec::emit(&m, &mut buf).unwrap();
            self.w.write(self.t, dir, peer, &buf[..n]).unwrap();
        }

        fn down(&mut self, onu: u16, m: Message<'_>) {
            self.put(Direction::Downstream, Peer::Onu(OnuId(onu)), m);
        }

        fn up(&mut self, onu: u16, m: Message<'_>) {
            self.put(Direction::Upstream, Peer::Onu(OnuId(onu)), m);
        }

        fn wait(&mut self, ms: u64) {
            self.t += Duration::from_millis(ms);
        }

        fn bytes(self) -> Vec<u8> {
            self.w.into_inner()
        }
    }

    fn msg(tci: u16, inst: u16, c: Contents<'static>) -> Message<'static> {
        Message::new(
            Tci(tci),
            Format::Baseline,
            MeId::new(MeClass::SOFTWARE_IMAGE, inst),
            c,
        )
    }

    fn section_data(window: u8, section: u8) -> Vec<u8> {
        (0..31u8)
            .map(|k| window.wrapping_mul(37) ^ section.wrapping_mul(11) ^ k)
            .collect()
    }

    fn section(tci: u16, window: u8, s: u8, ar: bool) -> Message<'static> {
        msg(
            tci,
            1,
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: s,
                data: Cow::Owned(section_data(window, s)),
            }),
        )
        .with_ar(ar)
    }

    fn get_resp(tci: u16, inst: u16, v: &str, c: bool, a: bool, ok: bool) -> Message<'static> {
        let mut version = [0u8; 14];
        version[..v.len()].copy_from_slice(v.as_bytes());
        msg(
            tci,
            inst,
            Contents::GetResponse(GetResponse {
                result: ResultCode::Success,
                attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                    version: Some(version),
                    is_committed: Some(c),
                    is_active: Some(a),
                    is_valid: Some(ok),
                    ..Default::default()
                })),
                optional_attribute_mask: 0,
                attribute_execution_mask: 0,
            }),
        )
    }

    fn avc(inst: u16, c: bool, a: bool, ok: bool) -> Message<'static> {
        msg(
            0,
            inst,
            Contents::AttributeValueChange(omci_codec::contents::AttributeValueChange {
                attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                    is_committed: Some(c),
                    is_active: Some(a),
                    is_valid: Some(ok),
                    ..Default::default()
                })),
            }),
        )
    }

    fn get(tci: u16, inst: u16) -> Message<'static> {
        msg(
            tci,
            inst,
            Contents::GetRequest(GetRequest {
                attribute_mask: 0xf000,
            }),
        )
    }

    fn answer(tci: u16, result: ResultCode) -> Message<'static> {
        msg(
            tci,
            1,
            Contents::DownloadSectionResponse(DownloadSectionResponse {
                result,
                section_number: WS - 1,
            }),
        )
    }

    /// Sections per window: 4, 4, 2.
    fn window_len(w: u8) -> u8 {
        if w == 2 { 2 } else { WS }
    }

    fn rollout() -> Vec<u8> {
        let mut s = Script::new();
        let onus = [1u16, 2];
        for &o in &onus {
            s.down(o, get(1, 0));
            s.up(o, get_resp(1, 0, "V1.0", true, true, true));
            s.down(o, get(2, 1));
            s.up(o, get_resp(2, 1, "", false, false, false));
            s.down(
                o,
                msg(
                    3,
                    1,
                    Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                        window_size_minus_one: WS - 1,
                        image_size: 310,
                        instances: [1u16].into_iter().collect(),
                    }),
                ),
            );
            s.up(
                o,
                msg(
                    3,
                    1,
                    Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                        result: ResultCode::Success,
                        window_size_minus_one: WS - 1,
                        instances: Default::default(),
                    }),
                ),
            );
        }
        let mut tci = 0x4000u16;
        for win in 0..3u8 {
            let n = window_len(win);
            for sec in 0..n {
                tci += 1;
                s.put(
                    Direction::Downstream,
                    Peer::Multicast,
                    section(tci, win, sec, sec == n - 1),
                );
            }
            s.up(1, answer(tci, ResultCode::Success));
            if win == 1 {
                // ONU 2 lost sections 1 and 2 of window 1: repaired by unicast.
                s.up(2, answer(tci, ResultCode::ProcessingError));
                for sec in [1u8, 2, 3] {
                    tci += 1;
                    s.down(2, section(tci, win, sec, sec == 3));
                }
            }
            s.up(2, answer(tci, ResultCode::Success));
        }
        for &o in &onus {
            let end = |t| {
                msg(
                    t,
                    1,
                    Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                        crc: 0x1234_5678,
                        image_size: 310,
                        instances: [1u16].into_iter().collect(),
                    }),
                )
            };
            let end_resp = |t, r| {
                msg(
                    t,
                    1,
                    Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                        result: r,
                        instances: Default::default(),
                    }),
                )
            };
            s.down(o, end(4));
            s.up(o, end_resp(4, ResultCode::DeviceBusy));
            s.wait(200);
            s.down(o, end(5));
            s.up(o, end_resp(5, ResultCode::DeviceBusy));
            s.wait(200);
            s.down(o, end(6));
            s.up(o, avc(1, false, false, true));
            s.up(o, end_resp(6, ResultCode::Success));
            s.down(o, get(7, 1));
            s.up(o, get_resp(7, 1, "V2.0", false, false, true));
            s.down(
                o,
                msg(
                    8,
                    1,
                    Contents::ActivateSoftwareRequest(
                        omci_codec::contents::ActivateSoftwareRequest { activate_flags: 0 },
                    ),
                ),
            );
            s.up(
                o,
                msg(
                    8,
                    1,
                    Contents::ActivateSoftwareResponse {
                        result: ResultCode::Success,
                    },
                ),
            );
            s.wait(300);
            s.up(o, avc(0, true, false, true));
            s.up(o, avc(1, false, true, true));
            s.down(o, get(9, 1));
            s.up(o, get_resp(9, 1, "V2.0", false, true, true));
            s.down(o, msg(10, 1, Contents::CommitSoftwareRequest));
            s.up(
                o,
                msg(
                    10,
                    1,
                    Contents::CommitSoftwareResponse {
                        result: ResultCode::Success,
                    },
                ),
            );
            s.down(o, get(11, 1));
            s.up(o, get_resp(11, 1, "V2.0", true, true, true));
        }
        s.bytes()
    }

    fn frames_of(bytes: &[u8]) -> Vec<Frame> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("olt.pcap");
        std::fs::write(&path, bytes).unwrap();
        read_frames(&[path]).unwrap()
    }

    #[test]
    fn reads_frames_with_times_from_the_first() {
        let frames = frames_of(&rollout());
        assert_eq!(frames[0].time, Duration::ZERO);
        assert_eq!(frames[0].peer, Peer::Onu(OnuId(1)));
        assert!(matches!(
            frames[0].body,
            Body::Get {
                attribute_mask: 0xf000
            }
        ));
        assert!(frames.iter().any(|f| f.peer == Peer::Multicast && f.ar));
        assert!(frames.windows(2).all(|p| p[0].time <= p[1].time));
    }

    #[test]
    fn sections_of_a_window_collapse_into_one_arrow() {
        let frames = frames_of(&rollout());
        let md = mermaid(&frames, &[1, 2]);
        assert!(md.starts_with("```mermaid\nsequenceDiagram\n"), "{md}");
        assert!(md.ends_with("```"), "{md}");
        assert!(md.contains("participant Group"));
        assert!(md.contains("participant ONU1 as ONU 1"));
        // One arrow per window on the group, none per section.
        assert!(
            md.contains("OLT->>Group: window 0: sections 0-3, AR on 3, window CRC 0x"),
            "{md}"
        );
        assert!(
            md.contains("OLT->>Group: window 1: sections 0-3, AR on 3"),
            "{md}"
        );
        assert!(
            md.contains("OLT->>Group: window 2: sections 0-1, AR on 1"),
            "{md}"
        );
        assert!(!md.contains("Download section 0"), "{md}");
        assert_eq!(md.matches("->>Group").count(), 3, "{md}");
        // The repair and its answers.
        assert!(
            md.contains("ONU2-->>OLT: window 1: processing error (missing 2 sections)"),
            "{md}"
        );
        assert!(
            md.contains("OLT->>ONU2: window 1 repair: sections 1-3, AR on 3"),
            "{md}"
        );
        assert!(md.contains("ONU2-->>OLT: window 1: success"), "{md}");
        assert!(md.contains("ONU1-->>OLT: window 2: success"), "{md}");
        assert!(!md.contains(';'));
    }

    #[test]
    fn the_window_crc_is_that_of_the_image_bytes() {
        let frames = frames_of(&rollout());
        let md = mermaid(&frames, &[1]);
        let mut last = Vec::new();
        for s in 0..2u8 {
            last.extend(section_data(2, s));
        }
        last.truncate(310 - 8 * 31);
        let crc = omci_codec::crc::crc32_bzip2(&last);
        assert!(
            md.contains(&format!(
                "window 2: sections 0-1, AR on 1, window CRC 0x{crc:08x}"
            )),
            "{md}"
        );
    }

    #[test]
    fn busy_answers_are_collapsed_and_explained() {
        let frames = frames_of(&rollout());
        let md = mermaid(&frames, &[1, 2]);
        assert!(
            md.contains("OLT->>ONU1: End software download: CRC 0x12345678, 310 bytes ×3"),
            "{md}"
        );
        assert!(
            md.contains("ONU1-->>OLT: End software download: device busy ×2"),
            "{md}"
        );
        assert!(
            md.contains("ONU1-->>OLT: End software download: success"),
            "{md}"
        );
        assert_eq!(
            md.matches("OLT->>ONU1: End software download").count(),
            1,
            "{md}"
        );
        let text = explain(&frames, 1);
        assert!(text.contains("(×2, until"), "{text}");
        assert!(text.contains("device busy 2 times"), "{text}");
        assert!(text.contains("still writing the image to flash"), "{text}");
    }

    #[test]
    fn the_explanation_names_the_phases_in_order() {
        let frames = frames_of(&rollout());
        let text = explain(&frames, 2);
        let mut at = 0;
        for heading in [
            "1. Discovery",
            "2. Start software download",
            "3. Download",
            "4. End software download",
            "5. Verify",
            "6. Activate software",
            "7. Reboot",
            "8. Commit software",
            "9. Final state",
        ] {
            let found = text[at..]
                .find(heading)
                .unwrap_or_else(|| panic!("{heading} after byte {at}:\n{text}"));
            at += found + heading.len();
        }
        assert!(
            text.contains("The target is image 1: the image neither active nor committed"),
            "{text}"
        );
        assert!(
            text.contains(
                "Windows 0-2 (4 sections each, the last 2) arrived on the multicast group"
            ),
            "{text}"
        );
        assert!(text.contains("Window 1 needed a repair"), "{text}");
        assert!(
            text.contains("processing error (2 sections missing)"),
            "{text}"
        );
        assert!(text.contains("falls back to the committed image"), "{text}");
        assert!(text.contains("anti-rollback floor"), "{text}");
        assert!(text.contains("boot announcement"), "{text}");
        assert!(text.contains("ONU 2 is upgraded"), "{text}");
        let text1 = explain(&frames, 1);
        assert!(
            text1.contains("Every window was answered success at the first try"),
            "{text1}"
        );
        assert!(explain(&frames, 9).contains("does not appear"));
    }

    #[test]
    fn a_long_diagram_keeps_its_ends() {
        // 300 windows of 4 sections by unicast to one ONU: 600 arrows.
        let mut s = Script::new();
        s.down(
            1,
            msg(
                1,
                1,
                Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                    window_size_minus_one: WS - 1,
                    image_size: 300 * 4 * 31,
                    instances: [1u16].into_iter().collect(),
                }),
            ),
        );
        let mut tci = 1u16;
        for win in 0..300u16 {
            for sec in 0..WS {
                tci += 1;
                let [hi, lo] = win.to_be_bytes();
                let data: Vec<u8> = (0..31u8)
                    .map(|k| match k {
                        0 => hi,
                        1 => lo,
                        2 => sec,
                        k => k,
                    })
                    .collect();
                s.down(
                    1,
                    msg(
                        tci,
                        1,
                        Contents::DownloadSectionRequest(DownloadSectionRequest {
                            section_number: sec,
                            data: Cow::Owned(data),
                        }),
                    )
                    .with_ar(sec == WS - 1),
                );
            }
            s.up(1, answer(tci, ResultCode::Success));
        }
        let frames = frames_of(&s.bytes());
        let md = mermaid(&frames, &[1]);
        let arrows = md.lines().filter(|l| l.contains("->>")).count();
        assert!(arrows <= 410, "{arrows}");
        assert!(md.contains("exchanges omitted"), "{md}");
        assert!(md.contains("OLT->>ONU1: window 0: sections 0-3"), "{md}");
        assert!(md.contains("OLT->>ONU1: window 299: sections 0-3"), "{md}");
        assert!(md.ends_with("```"));
        let text = explain(&frames, 1);
        assert!(
            text.contains("Windows 0-299 (4 sections each) were sent to this ONU alone"),
            "{text}"
        );
        assert!(text.lines().count() < 60, "{text}");
    }

    #[test]
    fn a_restarted_olt_writes_a_second_file() {
        let mut first = Script::new();
        first.down(1, get(1, 0));
        first.up(1, get_resp(1, 0, "V1.0", true, true, true));
        let mut second = Script::new();
        second.t = first.t + Duration::from_secs(2);
        second.down(1, get(1, 0));
        second.up(1, get_resp(1, 0, "V1.0", true, true, true));
        let dir = tempfile::tempdir().unwrap();
        let paths = [dir.path().join("olt-1.pcap"), dir.path().join("olt-2.pcap")];
        std::fs::write(&paths[0], first.bytes()).unwrap();
        std::fs::write(&paths[1], second.bytes()).unwrap();
        let frames = read_frames(&paths).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!((frames[1].file, frames[2].file), (0, 1));
        assert_eq!(frames[2].time, Duration::from_millis(2002));
        let md = mermaid(&frames, &[]);
        assert!(md.contains("participant ONU1 as ONU 1"), "{md}");
        assert!(!md.contains("participant Group"), "{md}");
        assert!(
            md.contains("Note over OLT,ONU1: Capture file 2 begins at 2.002 s"),
            "{md}"
        );
        let text = explain(&frames, 1);
        assert!(
            text.contains("Capture file 2 begins: the OLT was restarted"),
            "{text}"
        );
        assert!(text.contains("Discovery (again)"), "{text}");
        assert!(read_frames(&[dir.path().join("missing.pcap")]).is_err());
    }

    #[test]
    fn ranges_and_lists() {
        assert_eq!(ranges([0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(ranges(Vec::<u32>::new()), "");
        assert_eq!(
            and_list(&["a".into(), "b".into(), "c".into()]),
            "a, b and c"
        );
    }
}
