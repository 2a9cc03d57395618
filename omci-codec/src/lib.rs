//! # omci-codec: OMCI messages on the wire (ITU-T G.988 clause 11 and Annex A)
//!
//! The OLT and the ONUs of this lab speak OMCI, the ONU management and control interface of
//! G.988. This crate turns the bytes of one OMCI frame into a typed [`Message`] and back, and
//! does nothing else: no sockets, no clock, no async. Every other crate of the workspace stands
//! on it.
//!
//! ## Map
//! - [`frame`]: the frame. [`Header`], [`Message`], the baseline (0x0A) and extended (0x0B)
//!   formats, the CRC-32 or MIC trailer, [`parse`] and [`emit`], and [`Codec`] for settings.
//! - [`contents`]: the typed contents of each message the lab uses (software download, Get,
//!   MIB reset, MIB upload, Get all alarms, Reboot, attribute value change) and the raw form
//!   of every other.
//! - [`software_image`]: the Software image ME (class 7): instance numbering and attributes.
//! - [`message_type`], [`result`], [`ids`]: the message type field, result codes and the
//!   identifier newtypes.
//! - [`crc`]: CRC-32/BZIP2, for trailers, images and windows.
//! - [`render`] and [`json`]: a protocol-analyser view of a message, and its JSON form.
//! - [`cli`]: the command-line conventions the lab's tools share (one-line usage errors).
//! - [`pcap`]: OMCI frames in Ethernet captures (EtherType 0x88B5), pcapng written, each
//!   packet's transport envelope kept as its comment.
//! - [`windowing`]: how a download cuts an image into windows and sections ([`Windowing`]),
//!   the window CRC and the multicast contract's window horizon.
//! - [`envelope`]: the 16-byte envelope that stands for the GEM layer when the lab carries a
//!   frame in a UDP datagram (ONU-ID, GEM port, and the multicast download's window fields).
//! - [`obbaa`]: the Broadband Forum's OB-BAA framing (a 32-byte header, `cterm_name` and
//!   ONU-ID, then the frame without its trailer), for interoperation with the OB-BAA tools.
//!
//! ## Example
//! ```
//! use omci_codec::{parse, emit, Contents, Format, MeClass, MeId, Message, Tci};
//! use omci_codec::contents::StartSoftwareDownloadRequest;
//!
//! let start = Message::new(
//!     Tci(4),
//!     Format::Baseline,
//!     MeId::new(MeClass::SOFTWARE_IMAGE, 1),
//!     Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
//!         window_size_minus_one: 255,
//!         image_size: 1_000_000,
//!         instances: [1u16].into_iter().collect(),
//!     }),
//! );
//! let mut frame = [0u8; 48];
//! assert_eq!(emit(&start, &mut frame).unwrap(), 48);
//! assert_eq!(parse(&frame).unwrap(), start);
//! ```

pub mod cli;
pub mod contents;
pub mod crc;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod ids;
pub mod json;
pub mod message_type;
pub mod obbaa;
pub mod pcap;
pub mod render;
pub mod result;
pub mod software_image;
pub mod windowing;

pub use contents::Contents;
pub use envelope::{Envelope, EnvelopeError};
pub use error::{EmitError, ParseError, ParseErrorKind};
pub use frame::{
    Codec, Decoded, ExtendedTrailer, Format, Header, Integrity, Message, MicKey, emit, parse,
};
pub use ids::{GemPort, MeClass, MeId, OnuId, Tci, WindowNo};
pub use message_type::MessageType;
pub use result::ResultCode;
pub use software_image::{SoftwareImageAttributes, SoftwareImageId};
pub use windowing::Windowing;
