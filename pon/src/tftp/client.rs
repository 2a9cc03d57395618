//! A TFTP read, as a sans-IO state machine (RFC 1350, octet mode; RFC 2347 options with the
//! block size of RFC 2348 and the transfer size of RFC 2349 when the server offers them).
//!
//! [`Client::new`] queues the read request. The caller sends what [`Client::poll_transmit`]
//! yields, hands in every datagram that arrives ([`Client::handle_datagram`]) and the passing
//! of time ([`Client::handle_timeout`] at [`Client::poll_timeout`]), and takes the file's
//! blocks from [`Client::poll_event`] as they come, to write them where they belong: the
//! client keeps no block after handing it out, so memory stays one block whatever the file's
//! size. It reads no clock and owns no socket.
//!
//! The exchange (RFC 1350 section 4): the request goes to the server's well-known port; the
//! server answers from a port of its own (its *transfer ID*), and the rest of the transfer is
//! between the two: each DATA block is acknowledged by its number, a block shorter than the
//! block size ends the file. A lost packet is sent again after [`ClientConfig::timeout`], at
//! most [`ClientConfig::retries`] times in a row; the whole transfer gets at most
//! [`ClientConfig::transfer_limit`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::packet::{DEFAULT_BLKSIZE, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE, Packet};

/// How a read goes.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The block size asked for (RFC 2348, 8..=65464); 512 when the server does not negotiate.
    pub blksize: u16,
    /// Ask for the transfer size (RFC 2349), so that a file too large is refused at once.
    pub ask_tsize: bool,
    /// How long to wait for the next packet before sending the last one again.
    pub timeout: Duration,
    /// How many times in a row the last packet is sent again before the read fails.
    pub retries: u32,
    /// The largest file taken: a larger one fails the read (a slot's size).
    pub max_size: u64,
    /// The whole read must end within this (a server that trickles is given up on).
    pub transfer_limit: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            blksize: 1428,
            ask_tsize: true,
            timeout: Duration::from_secs(1),
            retries: 4,
            max_size: u64::from(u32::MAX),
            transfer_limit: Duration::from_secs(120),
        }
    }
}

/// What the read yields, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// The server agreed to these options (None: it answered with plain RFC 1350).
    Negotiated {
        /// The block size in use.
        blksize: u16,
        /// The file's size, if the server said it.
        tsize: Option<u64>,
    },
    /// The file's bytes at `offset`.
    Data {
        /// Where they go.
        offset: u64,
        /// The bytes (one block).
        data: Vec<u8>,
    },
    /// The whole file arrived: `size` bytes.
    Done {
        /// Its length.
        size: u64,
    },
    /// The read failed; nothing more comes.
    Failed(TransferError),
}

/// Why a read failed, in words a person reads.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// No answer to the same packet after every retry.
    #[error("no answer from the TFTP server {server} after {tries} tries, {waited_ms} ms apart")]
    Timeout {
        /// Whom it waited for.
        server: SocketAddr,
        /// Packets sent.
        tries: u32,
        /// The timeout.
        waited_ms: u64,
    },
    /// The transfer took longer than allowed.
    #[error("the TFTP transfer took longer than {0} s")]
    TooSlow(u64),
    /// The server sent an ERROR packet.
    #[error("the TFTP server said error {code}: {message}")]
    Server {
        /// Its code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The file is larger than the client takes.
    #[error("the file is {size} bytes or more, larger than the {max} bytes it may be")]
    TooLarge {
        /// What it is (at least).
        size: u64,
        /// The most taken.
        max: u64,
    },
    /// The server said one size and sent another.
    #[error("the server announced {announced} bytes and sent {sent}")]
    SizeMismatch {
        /// Its tsize.
        announced: u64,
        /// What came.
        sent: u64,
    },
    /// The server broke the protocol (a bad option answer, a packet out of place).
    #[error("the TFTP server broke the protocol: {0}")]
    Protocol(String),
    /// The caller gave up (its write failed, say).
    #[error("{0}")]
    Aborted(String),
}

/// Where the read stands; each phase carries what it needs.
#[derive(Clone, Debug)]
enum Phase {
    /// The request is out; the first answer decides the server's transfer ID.
    Requesting {
        /// Options were asked for (an ERROR 8 then means: ask again without).
        with_options: bool,
    },
    /// Blocks are coming from `peer`.
    Receiving {
        /// The server's transfer ID: its address for this transfer.
        peer: SocketAddr,
        /// The block size in use.
        blksize: u16,
        /// The last block acknowledged (0: none, or the OACK).
        last_block: u16,
        /// Bytes received so far.
        received: u64,
        /// What the server announced.
        tsize: Option<u64>,
    },
    /// Over (done or failed).
    Over,
}

/// One TFTP read.
#[derive(Debug)]
pub struct Client {
    cfg: ClientConfig,
    /// The server's well-known address (the request goes there).
    server: SocketAddr,
    filename: String,
    phase: Phase,
    /// The last packet sent, and to whom: sent again on a timeout.
    last_sent: Option<(SocketAddr, Vec<u8>)>,
    /// Datagrams to send.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<ClientEvent>,
    /// When the last packet goes again.
    resend_at: Instant,
    /// Packets sent in a row without an answer.
    tries: u32,
    /// The transfer's end at the latest.
    give_up_at: Instant,
}

impl Client {
    /// A read of `filename` from the server at `server`, starting `now`.
    pub fn new(now: Instant, server: SocketAddr, filename: &str, cfg: ClientConfig) -> Client {
        let mut c = Client {
            give_up_at: now + cfg.transfer_limit,
            resend_at: now,
            cfg,
            server,
            filename: filename.to_string(),
            phase: Phase::Over,
            last_sent: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            tries: 0,
        };
        c.request(now, true);
        c
    }

    fn request(&mut self, now: Instant, with_options: bool) {
        let mut options = Vec::new();
        if with_options {
            let blksize = self.cfg.blksize.clamp(MIN_BLKSIZE, MAX_BLKSIZE);
            if blksize != DEFAULT_BLKSIZE {
                options.push(("blksize".to_string(), blksize.to_string()));
            }
            if self.cfg.ask_tsize {
                options.push(("tsize".to_string(), "0".to_string()));
            }
        }
        let with_options = !options.is_empty();
        self.phase = Phase::Requesting { with_options };
        let rrq = Packet::Rrq {
            filename: self.filename.clone(),
            mode: "octet".into(),
            options,
        };
        self.send(now, self.server, rrq.emit());
    }

    fn send(&mut self, now: Instant, to: SocketAddr, bytes: Vec<u8>) {
        self.outbox.push_back((to, bytes.clone()));
        self.last_sent = Some((to, bytes));
        self.tries = 1;
        self.resend_at = now + self.cfg.timeout;
    }

    /// The next datagram to send, and where.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// True while a datagram waits in [`Client::poll_transmit`].
    pub fn poll_transmit_pending(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`Client::handle_timeout`] is due; None once the read is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Over => None,
            _ => Some(self.resend_at.min(self.give_up_at)),
        }
    }

    /// True once the read is over (done or failed).
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Over)
    }

    /// The caller gives up (`why`): the server is told, nothing more comes.
    pub fn abort(&mut self, why: &str) {
        if let Phase::Receiving { peer, .. } = self.phase {
            let e = Packet::Error {
                code: ErrorCode::NotDefined,
                message: why.into(),
            };
            self.outbox.push_back((peer, e.emit()));
        }
        self.fail(TransferError::Aborted(why.into()));
    }

    fn fail(&mut self, e: TransferError) {
        self.phase = Phase::Over;
        self.last_sent = None;
        self.events.push_back(ClientEvent::Failed(e));
    }

    /// Fails the transfer and tells the peer why with an ERROR packet.
    fn refuse(&mut self, peer: SocketAddr, code: ErrorCode, e: TransferError) {
        let p = Packet::Error {
            code,
            message: e.to_string(),
        };
        self.outbox.push_back((peer, p.emit()));
        self.fail(e);
    }

    /// Time passes: the last packet goes again, or the read fails.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_over() {
            return;
        }
        if now >= self.give_up_at {
            let limit = self.cfg.transfer_limit.as_secs();
            if let Phase::Receiving { peer, .. } = self.phase {
                self.refuse(peer, ErrorCode::NotDefined, TransferError::TooSlow(limit));
            } else {
                self.fail(TransferError::TooSlow(limit));
            }
            return;
        }
        if now < self.resend_at {
            return;
        }
        if self.tries > self.cfg.retries {
            let server = match self.phase {
                Phase::Receiving { peer, .. } => peer,
                _ => self.server,
            };
            self.fail(TransferError::Timeout {
                server,
                tries: self.tries,
                waited_ms: self.cfg.timeout.as_millis() as u64,
            });
            return;
        }
        if let Some((to, bytes)) = self.last_sent.clone() {
            self.outbox.push_back((to, bytes));
        }
        self.tries += 1;
        self.resend_at = now + self.cfg.timeout;
    }

    /// A datagram from `from` arrives.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        match self.phase.clone() {
            Phase::Over => {}
            Phase::Requesting { with_options } => {
                // The server answers from its own port, on the address the request went to.
                if from.ip() != self.server.ip() {
                    return;
                }
                match Packet::parse(bytes) {
                    Ok(Packet::Oack { options }) if with_options => {
                        self.negotiate(now, from, &options)
                    }
                    Ok(Packet::Data { block: 1, data }) => {
                        // A plain RFC 1350 answer: the options were ignored.
                        self.events.push_back(ClientEvent::Negotiated {
                            blksize: DEFAULT_BLKSIZE,
                            tsize: None,
                        });
                        self.phase = Phase::Receiving {
                            peer: from,
                            blksize: DEFAULT_BLKSIZE,
                            last_block: 0,
                            received: 0,
                            tsize: None,
                        };
                        self.take_block(now, 1, data);
                    }
                    Ok(Packet::Error {
                        code: ErrorCode::OptionsRefused,
                        ..
                    }) if with_options => self.request(now, false),
                    Ok(Packet::Error { code, message }) => self.fail(TransferError::Server {
                        code: code.raw(),
                        message,
                    }),
                    // Anything else before the transfer starts is noise: the timer decides.
                    _ => {}
                }
            }
            Phase::Receiving { peer, .. } => {
                if from != peer {
                    // RFC 1350 section 4: another transfer ID is answered and ignored.
                    let e = Packet::Error {
                        code: ErrorCode::UnknownTransferId,
                        message: "unknown transfer ID".into(),
                    };
                    self.outbox.push_back((from, e.emit()));
                    return;
                }
                match Packet::parse(bytes) {
                    Ok(Packet::Data { block, data }) => self.take_block(now, block, data),
                    Ok(Packet::Error { code, message }) => self.fail(TransferError::Server {
                        code: code.raw(),
                        message,
                    }),
                    // A repeated OACK (our ACK 0 was lost) is answered by the timer's resend.
                    _ => {}
                }
            }
        }
    }

    /// The server's OACK: each option must be one asked for, within what was asked.
    fn negotiate(&mut self, now: Instant, peer: SocketAddr, options: &[(String, String)]) {
        let mut blksize = DEFAULT_BLKSIZE;
        let mut tsize = None;
        for (name, value) in options {
            match name.as_str() {
                "blksize" => match value.parse::<u16>() {
                    Ok(b) if (MIN_BLKSIZE..=self.cfg.blksize.max(MIN_BLKSIZE)).contains(&b) => {
                        blksize = b
                    }
                    _ => {
                        let e = TransferError::Protocol(format!(
                            "block size {value:?} answered to {} asked for",
                            self.cfg.blksize
                        ));
                        return self.refuse(peer, ErrorCode::OptionsRefused, e);
                    }
                },
                "tsize" if self.cfg.ask_tsize => match value.parse::<u64>() {
                    Ok(t) => tsize = Some(t),
                    Err(_) => {
                        let e = TransferError::Protocol(format!("transfer size {value:?}"));
                        return self.refuse(peer, ErrorCode::OptionsRefused, e);
                    }
                },
                other => {
                    let e = TransferError::Protocol(format!("option {other:?} was not asked for"));
                    return self.refuse(peer, ErrorCode::OptionsRefused, e);
                }
            }
        }
        if let Some(t) = tsize.filter(|&t| t > self.cfg.max_size) {
            let e = TransferError::TooLarge {
                size: t,
                max: self.cfg.max_size,
            };
            return self.refuse(peer, ErrorCode::DiskFull, e);
        }
        self.events
            .push_back(ClientEvent::Negotiated { blksize, tsize });
        self.phase = Phase::Receiving {
            peer,
            blksize,
            last_block: 0,
            received: 0,
            tsize,
        };
        self.send(now, peer, Packet::Ack { block: 0 }.emit());
    }

    fn take_block(&mut self, now: Instant, block: u16, data: Vec<u8>) {
        let Phase::Receiving {
            peer,
            blksize,
            last_block,
            received,
            tsize,
        } = self.phase
        else {
            return;
        };
        if block == last_block && !(block == 0 && received == 0) {
            // Our ACK was lost and the block came again: acknowledge it again, take nothing.
            self.outbox.push_back((peer, Packet::Ack { block }.emit()));
            return;
        }
        if block != last_block.wrapping_add(1) {
            return; // out of place (an old duplicate): dropped
        }
        if data.len() > usize::from(blksize) {
            let e = TransferError::Protocol(format!(
                "a block of {} bytes, more than the block size {blksize}",
                data.len()
            ));
            return self.refuse(peer, ErrorCode::IllegalOperation, e);
        }
        let len = data.len() as u64;
        let total = received + len;
        if total > self.cfg.max_size {
            let e = TransferError::TooLarge {
                size: total,
                max: self.cfg.max_size,
            };
            return self.refuse(peer, ErrorCode::DiskFull, e);
        }
        if !data.is_empty() {
            self.events.push_back(ClientEvent::Data {
                offset: received,
                data,
            });
        }
        let last = len < u64::from(blksize);
        if last {
            // The final ACK is sent once; a lost one leaves the server to give up on its own.
            self.outbox.push_back((peer, Packet::Ack { block }.emit()));
            self.phase = Phase::Over;
            self.last_sent = None;
            match tsize {
                Some(t) if t != total => {
                    self.events
                        .push_back(ClientEvent::Failed(TransferError::SizeMismatch {
                            announced: t,
                            sent: total,
                        }))
                }
                _ => self.events.push_back(ClientEvent::Done { size: total }),
            }
            return;
        }
        self.phase = Phase::Receiving {
            peer,
            blksize,
            last_block: block,
            received: total,
            tsize,
        };
        self.send(now, peer, Packet::Ack { block }.emit());
    }
}
