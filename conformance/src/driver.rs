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
/// and its missing-section bitmap (or the OB-BAA header), with room to spare.
const DATAGRAM_MAX: usize = 4096;

/// Runs the suite against the ONU whose OMCC is at `onu`, receiving its answers on `socket`,
/// and returns it finished: its report has every check's verdict, whatever the target did. A
/// socket error ends the run there ([`OnuSuite::abandon`]: the checks not run are errors, the
/// run ends [`crate::RunEnd::Internal`]).
pub async fn run(target: Target, socket: UdpSocket, onu: SocketAddr) -> OnuSuite {
    let mut suite = OnuSuite::new(target, Instant::now());
    if let Err(e) = drive(&mut suite, &socket, onu).await {
        suite.abandon(&format!("the suite's socket failed: {e}"));
    }
    suite
}

async fn drive(suite: &mut OnuSuite, socket: &UdpSocket, onu: SocketAddr) -> std::io::Result<()> {
    let mut buf = vec![0u8; DATAGRAM_MAX];
    loop {
        while let Some(d) = suite.poll_transmit() {
            socket.send_to(&d, onu).await?;
        }
        if suite.is_finished() {
            return Ok(());
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
                let (n, from) = r?;
                // Only the target's answers: a datagram from anyone else is not the ONU's.
                if from == onu {
                    suite.handle_datagram(Instant::now(), &buf[..n]);
                }
            }
            () = sleep => suite.handle_timeout(Instant::now()),
        }
    }
}
