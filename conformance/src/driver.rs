//! The tokio driver of the ONU suite: runs an [`OnuSuite`] against a real ONU over the lab's
//! UDP transport. One `select!` loop over the socket and the suite's next deadline; it owns
//! no state of the suite and is the one place of the crate that reads the clock.
//!
//! The caller hands in the bound socket (mini-redis `server::run(listener, ..)`): `olt conform
//! onu` binds the address the ONU answers to, a test binds port 0.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::{OnuSuite, Target};

/// The largest datagram the suite takes: an extended frame of 1980 bytes behind the envelope
/// and its missing-section bitmap, with room to spare.
const DATAGRAM_MAX: usize = 4096;

/// Runs the suite against the ONU whose OMCC is at `onu`, receiving its answers on `socket`;
/// returns the finished suite (its report, or why it stopped early). An error is the socket's.
pub async fn run(target: Target, socket: UdpSocket, onu: SocketAddr) -> std::io::Result<OnuSuite> {
    let mut suite = OnuSuite::new(target, Instant::now());
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        while let Some(d) = suite.poll_transmit() {
            socket.send_to(&d, onu).await?;
        }
        if suite.is_finished() {
            return Ok(suite);
        }
        let deadline = suite.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, _) = r?;
                suite.handle_datagram(Instant::now(), &buf[..n]);
            }
            () = sleep => suite.handle_timeout(Instant::now()),
        }
    }
}
