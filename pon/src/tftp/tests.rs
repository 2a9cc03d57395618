//! The client against the server, in memory, on a virtual clock.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

const SERVER: &str = "127.0.0.1:69";
const TID: &str = "127.0.0.1:5000";

/// What a read ended with, the bytes written where the client said, and the packets sent.
struct Outcome {
    end: ClientEvent,
    file: Vec<u8>,
    sent: usize,
}

/// Runs a read of `file` with `cfg`; `drop` decides (by packet number) which packets are lost.
fn read(file: &[u8], cfg: ClientConfig, honour: bool, drop: impl Fn(usize) -> bool) -> Outcome {
    let server: SocketAddr = SERVER.parse().unwrap();
    let tid: SocketAddr = TID.parse().unwrap();
    let mut now = Instant::now();
    let mut c = Client::new(now, server, "golden.img", cfg);
    let file: Arc<[u8]> = file.into();
    let mut t: Option<Transfer> = None;
    let mut written = Vec::new();
    let mut n = 0;
    for _ in 0..100_000 {
        while let Some((to, p)) = c.poll_transmit() {
            n += 1;
            if drop(n) {
                continue;
            }
            if to == server {
                match Transfer::answer(now, &p, |_| Some(file.clone()), honour) {
                    Answer::Started(s) => t = Some(s),
                    Answer::Refused(e) => c.handle_datagram(now, tid, &e),
                }
            } else if let Some(s) = t.as_mut() {
                assert_eq!(to, tid);
                s.handle_datagram(now, &p);
            }
        }
        if let Some(s) = t.as_mut() {
            while let Some(p) = s.poll_transmit() {
                n += 1;
                if !drop(n) {
                    c.handle_datagram(now, tid, &p);
                }
            }
        }
        while let Some(e) = c.poll_event() {
            match e {
                ClientEvent::Data { offset, data } => {
                    let end = offset as usize + data.len();
                    if written.len() < end {
                        written.resize(end, 0);
                    }
                    written[offset as usize..end].copy_from_slice(&data);
                }
                ClientEvent::Negotiated { .. } => {}
                end => {
                    return Outcome {
                        end,
                        file: written,
                        sent: n,
                    };
                }
            }
        }
        if c.poll_transmit_pending() {
            continue;
        }
        let next = [
            c.poll_timeout(),
            t.as_ref().and_then(Transfer::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("a deadline while the read lasts");
        now = now.max(next);
        c.handle_timeout(now);
        if let Some(s) = t.as_mut() {
            s.handle_timeout(now);
        }
    }
    panic!("the read never ended");
}

fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn a_file_arrives_whole_with_the_block_size_asked_for() {
    for len in [0, 1, 1427, 1428, 1429, 10_000, 3 * 1428] {
        let f = file(len);
        let o = read(&f, ClientConfig::default(), true, |_| false);
        assert_eq!(o.end, ClientEvent::Done { size: len as u64 }, "{len} bytes");
        assert_eq!(o.file, f, "{len} bytes");
    }
}

#[test]
fn a_plain_rfc_1350_server_is_read_in_512_byte_blocks() {
    let f = file(5000);
    let o = read(&f, ClientConfig::default(), false, |_| false);
    assert_eq!(o.end, ClientEvent::Done { size: 5000 });
    assert_eq!(o.file, f);
    // The request, 10 blocks of 512 (the last 392 bytes), 9 ACKs before the end is seen.
    assert_eq!(o.sent, 20);
}

#[test]
fn lost_packets_are_sent_again_and_the_file_still_arrives() {
    let f = file(20_000);
    // Every fifth packet lost, either way.
    let o = read(&f, ClientConfig::default(), true, |n| n % 5 == 0);
    assert_eq!(o.end, ClientEvent::Done { size: 20_000 });
    assert_eq!(o.file, f);
}

#[test]
fn block_numbers_wrap_after_65535() {
    let cfg = ClientConfig {
        blksize: 8,
        ..ClientConfig::default()
    };
    let f = file(8 * 70_000 + 3);
    let o = read(&f, cfg, true, |_| false);
    assert_eq!(
        o.end,
        ClientEvent::Done {
            size: f.len() as u64
        }
    );
    assert_eq!(o.file, f);
}

#[test]
fn a_silent_server_fails_the_read_after_the_retries() {
    let cfg = ClientConfig::default();
    let o = read(&file(10), cfg.clone(), true, |_| true);
    assert_eq!(
        o.end,
        ClientEvent::Failed(TransferError::Timeout {
            server: SERVER.parse().unwrap(),
            tries: cfg.retries + 1,
            waited_ms: 1000,
        })
    );
    assert_eq!(o.sent, cfg.retries as usize + 1, "the request, retried");
}

#[test]
fn a_file_larger_than_allowed_is_refused_by_its_announced_size_or_its_bytes() {
    let cfg = ClientConfig {
        max_size: 4000,
        ..ClientConfig::default()
    };
    let o = read(&file(4001), cfg.clone(), true, |_| false);
    assert_eq!(
        o.end,
        ClientEvent::Failed(TransferError::TooLarge {
            size: 4001,
            max: 4000
        })
    );
    assert!(o.file.is_empty(), "refused before a byte");
    // Without tsize, at the first block past the limit (512-byte blocks: 4096).
    let o = read(&file(9000), cfg, false, |_| false);
    assert!(matches!(
        o.end,
        ClientEvent::Failed(TransferError::TooLarge { size: 4096, .. })
    ));
    assert_eq!(o.file.len(), 3584);
}

#[test]
fn another_transfer_id_is_answered_with_an_error_and_ignored() {
    let server: SocketAddr = SERVER.parse().unwrap();
    let now = Instant::now();
    let mut c = Client::new(now, server, "g", ClientConfig::default());
    c.poll_transmit();
    let tid: SocketAddr = TID.parse().unwrap();
    c.handle_datagram(
        now,
        tid,
        &Packet::Data {
            block: 1,
            data: vec![1; 512],
        }
        .emit(),
    );
    let stranger: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    c.handle_datagram(
        now,
        stranger,
        &Packet::Data {
            block: 2,
            data: vec![],
        }
        .emit(),
    );
    let _ack = c.poll_transmit();
    let (to, p) = c.poll_transmit().unwrap();
    assert_eq!(to, stranger);
    assert!(matches!(
        Packet::parse(&p),
        Ok(Packet::Error {
            code: ErrorCode::UnknownTransferId,
            ..
        })
    ));
    assert!(!c.is_over());
    // An answer from another machine before the transfer starts is not taken.
    let mut c = Client::new(now, server, "g", ClientConfig::default());
    c.handle_datagram(
        now,
        "127.0.0.2:7".parse().unwrap(),
        &Packet::Data {
            block: 1,
            data: vec![],
        }
        .emit(),
    );
    assert!(!c.is_over());
}

#[test]
fn a_server_error_ends_the_read_with_its_words() {
    let now = Instant::now();
    let mut c = Client::new(
        now,
        SERVER.parse().unwrap(),
        "nope",
        ClientConfig::default(),
    );
    let e = Packet::Error {
        code: ErrorCode::FileNotFound,
        message: "File not found".into(),
    };
    c.handle_datagram(now, TID.parse().unwrap(), &e.emit());
    let end = c.poll_event();
    assert_eq!(
        end.map(|e| match e {
            ClientEvent::Failed(f) => f.to_string(),
            other => format!("{other:?}"),
        }),
        Some("the TFTP server said error 1: File not found".into())
    );
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_trickling_server_is_given_up_at_the_transfer_limit() {
    let cfg = ClientConfig {
        transfer_limit: Duration::from_secs(3),
        ..ClientConfig::default()
    };
    let now = Instant::now();
    let mut c = Client::new(now, SERVER.parse().unwrap(), "g", cfg);
    let tid = TID.parse().unwrap();
    let mut t = now;
    for block in 1..10u16 {
        t += Duration::from_millis(900);
        c.handle_timeout(t);
        c.handle_datagram(
            t,
            tid,
            &Packet::Data {
                block,
                data: vec![0; 512],
            }
            .emit(),
        );
    }
    let failed = std::iter::from_fn(|| c.poll_event())
        .any(|e| e == ClientEvent::Failed(TransferError::TooSlow(3)));
    assert!(failed);
}
