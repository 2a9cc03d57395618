//! # pon: what the lab's OLT and ONUs share that is not OMCI
//!
//! The OLT controller (`olt`) and the ONU emulator (`onu`) meet only at the wire. Below them
//! stands the OMCI codec (`omci-codec`: frames, the envelope, window geometry) and this crate,
//! which holds the rest of what both sides must agree on:
//!
//! ## Map
//! - [`transport`]: the lab's UDP transport on this machine. Sockets bound where DESIGN.md
//!   section 4 says (unicast on 127.0.0.0/8, multicast joined on the loopback interface with
//!   TTL 0), batched sends and receives (UDP segmentation offload, `sendmmsg`, `recvmmsg`),
//!   and the address parsers of the command lines. Used by the tokio drivers only.
//! - [`link`]: seeded link faults on a datagram path (drop, duplicate, reorder, corrupt), and
//!   which downstream paths they apply to ([`link::Paths`]).
//! - [`firmware`]: the lab's signed firmware image format (header, payload, Ed25519ph
//!   signature): build, inspect, verify by streaming (docs/image-format.md).
//! - [`delta`]: delta packages: the signed differential package that rebuilds a target image
//!   from a base (build, inspect, verify), and the streaming patcher an ONU rebuilds with.
//! - [`manifest`]: the release manifest written beside an image, which an OLT campaign reads.
//! - [`image`]: an image ready to send ([`image::UpgradeImage`]: bytes once, header, CRC) and
//!   how a download cuts it into windows and sections ([`image::Cut`]), for the OLT and the
//!   conformance suite alike.
//! - [`tftp`]: TFTP (RFC 1350, options of RFC 2347-2349): the packets, a sans-IO read that the
//!   ONU's recovery mode fetches its golden image with, and a small server (sans-IO, with a
//!   tokio driver) that the scenario runner and the tests serve golden images from.
//! - [`limits`]: the ranges of the values a person gives (windows, ONU counts, busy and reboot
//!   times, power-loss occurrences, rates), shared by the command lines and the scenario files.
//!
//! Nothing here reads a clock or keeps state between calls, except the sockets of
//! [`transport`] and the TFTP server's driver ([`tftp::TftpServer`]).

pub mod delta;
pub mod firmware;
pub mod image;
pub mod limits;
pub mod link;
pub mod manifest;
pub mod tftp;
pub mod transport;
