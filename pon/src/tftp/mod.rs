//! TFTP, as the modelled bootloader fetches its golden image with it: the packets
//! (`packet`, RFC 1350 and the option extension of RFC 2347), a sans-IO read ([`Client`],
//! with the block size of RFC 2348 and the transfer size of RFC 2349 when the server offers
//! them), and a small server ([`Transfer`] sans-IO, [`TftpServer`] its tokio driver) that the
//! scenario runner and the tests serve golden images with.
//!
//! The ONU uses the client only (`onu::recovery`); the server is here because the tools
//! above the ONU (scenarios, tests) need one and the ONU crate is no place for it.

mod client;
mod packet;
mod server;

pub use client::{Client, ClientConfig, ClientEvent, TransferError};
pub use packet::{DEFAULT_BLKSIZE, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE, Packet, PacketError};
pub use server::{Answer, Files, SERVER_RETRIES, SERVER_TIMEOUT, TftpServer, Transfer};

#[cfg(test)]
mod tests;
