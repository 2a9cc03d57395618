//! Identifier newtypes, so that a transaction id can never be passed where an ME class is meant.

use std::fmt;

/// Transaction correlation identifier (G.988 clause 11.2.1): chosen by the OLT, echoed by the ONU
/// in the response. Bit 15 is the priority bit (1 = high priority).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Tci(pub u16);

impl Tci {
    /// True for a high-priority transaction (bit 15 set).
    pub fn is_high_priority(self) -> bool {
        self.0 & 0x8000 != 0
    }
}

impl fmt::Display for Tci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// Managed entity class (G.988 Table 11.2.4-1), e.g. 7 for Software image, 256 for ONU-G.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MeClass(pub u16);

impl MeClass {
    /// ONU data (class 2): the ME that MIB reset and MIB upload address.
    pub const ONU_DATA: MeClass = MeClass(2);
    /// Software image (class 7, G.988 clause 9.1.4).
    pub const SOFTWARE_IMAGE: MeClass = MeClass(7);
    /// ONU-G (class 256, G.988 clause 9.1.1).
    pub const ONU_G: MeClass = MeClass(256);
    /// ONU2-G (class 257, G.988 clause 9.1.2).
    pub const ONU2_G: MeClass = MeClass(257);
    /// ANI-G (class 263, G.988 clause 9.2.1).
    pub const ANI_G: MeClass = MeClass(263);

    /// The G.988 name of the classes this lab knows, for readable output.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            2 => "ONU data",
            5 => "Cardholder",
            6 => "Circuit pack",
            7 => "Software image",
            256 => "ONU-G",
            257 => "ONU2-G",
            263 => "ANI-G",
            _ => return None,
        })
    }
}

impl fmt::Display for MeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({})", self.0, name),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Managed entity identifier (G.988 clause 11.2.4): class and instance together name one ME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MeId {
    /// The ME class.
    pub class: MeClass,
    /// The ME instance within its class.
    pub instance: u16,
}

impl MeId {
    /// An ME id from its class and instance.
    pub const fn new(class: MeClass, instance: u16) -> Self {
        Self { class, instance }
    }
}

impl fmt::Display for MeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} instance 0x{:04x}", self.class, self.instance)
    }
}

/// ONU identifier on a PON (G.984.3 clause 10.1: 0..=253 on GPON). Carried by this lab's
/// transport envelope and used to derive the MAC addresses of captured frames.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct OnuId(pub u16);

impl fmt::Display for OnuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "onu-{}", self.0)
    }
}

/// GEM port identifier (G.984.3 clause 8.3: 12 bits on GPON). In this lab's transport envelope
/// it says which channel a frame travels on: an ONU's OMCC port, or the shared multicast
/// download port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GemPort(pub u16);

impl GemPort {
    /// The shared downstream port the multicast software download uses (a lab choice).
    pub const MULTICAST_DOWNLOAD: GemPort = GemPort(4000);

    /// The OMCC port of an ONU: by default equal to its ONU-ID (G.984.3 clause 10.2).
    pub const fn omcc(onu: OnuId) -> GemPort {
        GemPort(onu.0)
    }
}

impl fmt::Display for GemPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gem-{}", self.0)
    }
}

/// Absolute number of a software download window, counted from 0 at the image's first byte.
/// G.988 restarts section numbers in every window and never numbers windows; this lab's
/// transport envelope carries this number so that a repeated window is recognised.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct WindowNo(pub u32);

impl fmt::Display for WindowNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "window {}", self.0)
    }
}
