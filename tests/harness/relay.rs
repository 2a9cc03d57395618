//! A relay between the OB-BAA framing and the lab's envelope, for process tests: it stands
//! where `onu run --transport obbaa` will, so that the OLT's and the suite's side of the
//! framing can be tested against the lab's own `onu` processes before the ONU speaks it.
//!
//! For each ONU, two loopback sockets: `wire`, which the OLT (or the suite) sends OB-BAA
//! datagrams to, and `lab`, which is the ONU's `--olt` address. A datagram on `wire` goes
//! through [`Framing::from_wire`] (the cterm must match, byte for byte) and on to the ONU; the
//! ONU's answer on `lab` goes through [`Framing::to_wire`] and back to whoever last sent on
//! `wire`, from `wire` (so its source address is the one the OLT knows the ONU by).

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use omci_codec::obbaa::CtermName;
use pon::transport::Framing;

/// A running relay; stopped when dropped.
pub struct ObbaaRelay {
    /// Where each ONU's OB-BAA datagrams go (its address for `--onus` / `--target`).
    pub wire: Vec<SocketAddrV4>,
    /// Each ONU's `--olt` address.
    pub lab: Vec<SocketAddrV4>,
    /// Datagrams refused on the wire side (another cterm, malformed).
    pub refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ObbaaRelay {
    /// A relay of channel termination `cterm` for the ONUs listening at `onus` (their
    /// `--listen` addresses).
    pub fn spawn(cterm: &str, onus: &[SocketAddrV4]) -> ObbaaRelay {
        let framing = Framing::obbaa(CtermName::new(cterm).expect("a cterm name"));
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let mut relay = ObbaaRelay {
            wire: Vec::new(),
            lab: Vec::new(),
            refused: refused.clone(),
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for onu in onus {
            let wire = UdpSocket::bind("127.0.0.1:0").unwrap();
            let lab = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = |s: &UdpSocket| match s.local_addr().unwrap() {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => unreachable!("bound on 127.0.0.1"),
            };
            relay.wire.push(addr(&wire));
            relay.lab.push(addr(&lab));
            for s in [&wire, &lab] {
                s.set_nonblocking(true).unwrap();
            }
            let (framing, stop, refused, onu) =
                (framing.clone(), stop.clone(), refused.clone(), *onu);
            relay.threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                let mut olt: Option<SocketAddr> = None;
                while !stop.load(Ordering::Relaxed) {
                    let mut idle = true;
                    while let Ok((n, from)) = wire.recv_from(&mut buf) {
                        idle = false;
                        olt = Some(from);
                        match framing.from_wire(&buf[..n]) {
                            Ok(d) => {
                                let _ = lab.send_to(&d, onu);
                            }
                            Err(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    while let Ok((n, _)) = lab.recv_from(&mut buf) {
                        idle = false;
                        if let Some(to) = olt
                            && let Ok(w) = framing.to_wire(buf[..n].to_vec())
                        {
                            let _ = wire.send_to(&w, to);
                        }
                    }
                    if idle {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                }
            }));
        }
        relay
    }
}

impl Drop for ObbaaRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
