//! A small TFTP server: what the lab's scenario runner and tests serve golden images with.
//!
//! [`Transfer`] is one read, sans-IO: made from a read request and the file, it yields the
//! packets to send to the client and takes its acknowledgements and the passing of time.
//! [`TftpServer`] is its tokio driver: a socket on a loopback address for the requests, and a
//! socket of its own (a new transfer ID, RFC 1350 section 4) and a task for each read. It
//! serves the files of a [`Files`] table, which a test may change while it runs (a tampered
//! image replaced by a good one), and can be told to stop answering ([`Files::set_answering`])
//! to look like a server that is down.
//!
//! It serves reads in octet mode, with the block size (RFC 2348) and transfer size (RFC 2349)
//! options; writes and netascii are refused with an ERROR packet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::packet::{DEFAULT_BLKSIZE, ErrorCode, MAX_BLKSIZE, MIN_BLKSIZE, Packet};

/// How long a transfer waits for an acknowledgement before sending again.
pub const SERVER_TIMEOUT: Duration = Duration::from_millis(500);
/// How many times in a row a packet is sent before the transfer is given up.
pub const SERVER_RETRIES: u32 = 5;

/// What a transfer sends the client first: an error, or the first packet of a read.
#[derive(Debug)]
pub enum Answer {
    /// The request is refused with this packet.
    Refused(Vec<u8>),
    /// A read starts; send what [`Transfer::poll_transmit`] yields.
    Started(Transfer),
}

/// One read from the server's side.
#[derive(Debug)]
pub struct Transfer {
    file: Arc<[u8]>,
    blksize: usize,
    /// The block last sent (0: the OACK).
    block: u64,
    /// The packet last sent, sent again on a timeout.
    last: Vec<u8>,
    outbox: Option<Vec<u8>>,
    resend_at: Instant,
    tries: u32,
    /// The last block went and was acknowledged, or the transfer was given up.
    over: bool,
}

impl Transfer {
    /// Answers the request `bytes` with the file `lookup` finds for its name. `honour_options`
    /// false answers as a plain RFC 1350 server would.
    pub fn answer(
        now: Instant,
        bytes: &[u8],
        lookup: impl FnOnce(&str) -> Option<Arc<[u8]>>,
        honour_options: bool,
    ) -> Answer {
        let refuse = |code, message: &str| {
            Answer::Refused(
                Packet::Error {
                    code,
                    message: message.into(),
                }
                .emit(),
            )
        };
        let (filename, mode, options) = match Packet::parse(bytes) {
            Ok(Packet::Rrq {
                filename,
                mode,
                options,
            }) => (filename, mode, options),
            Ok(Packet::Wrq { .. }) => {
                return refuse(ErrorCode::AccessViolation, "this server only serves files");
            }
            _ => return refuse(ErrorCode::IllegalOperation, "expected a read request"),
        };
        if !mode.eq_ignore_ascii_case("octet") {
            return refuse(ErrorCode::NotDefined, "only octet mode is served");
        }
        let Some(file) = lookup(&filename) else {
            return refuse(ErrorCode::FileNotFound, "file not found");
        };
        let mut blksize = DEFAULT_BLKSIZE;
        let mut accepted = Vec::new();
        if honour_options {
            for (name, value) in options {
                match name.as_str() {
                    "blksize" => {
                        if let Ok(b) = value.parse::<u32>() {
                            blksize =
                                b.clamp(u32::from(MIN_BLKSIZE), u32::from(MAX_BLKSIZE)) as u16;
                            accepted.push((name, blksize.to_string()));
                        }
                    }
                    "tsize" => accepted.push((name, file.len().to_string())),
                    _ => {} // RFC 2347: options it does not know are left out of the OACK
                }
            }
        }
        let mut t = Transfer {
            file,
            blksize: usize::from(blksize),
            block: 0,
            last: Vec::new(),
            outbox: None,
            resend_at: now,
            tries: 0,
            over: false,
        };
        if accepted.is_empty() {
            t.send_block(now, 1);
        } else {
            t.send(now, Packet::Oack { options: accepted }.emit());
        }
        Answer::Started(t)
    }

    fn send(&mut self, now: Instant, p: Vec<u8>) {
        self.last = p.clone();
        self.outbox = Some(p);
        self.tries = 1;
        self.resend_at = now + SERVER_TIMEOUT;
    }

    fn send_block(&mut self, now: Instant, block: u64) {
        let start = (block as usize - 1).saturating_mul(self.blksize);
        let start = start.min(self.file.len());
        let end = start.saturating_add(self.blksize).min(self.file.len());
        self.block = block;
        let p = Packet::Data {
            block: block as u16, // wraps after 65535, as common servers do
            data: self.file[start..end].to_vec(),
        };
        self.send(now, p.emit());
    }

    /// The packet to send, if one is due.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.take()
    }

    /// When [`Transfer::handle_timeout`] is due, while the transfer lasts.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.over).then_some(self.resend_at)
    }

    /// True once the file went, or the transfer was given up.
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// The blocks sent so far (the last one sent included).
    pub fn blocks_sent(&self) -> u64 {
        self.block
    }

    /// Time passes: the last packet is sent again, or the transfer is given up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.over || now < self.resend_at {
            return;
        }
        if self.tries > SERVER_RETRIES {
            self.over = true;
            return;
        }
        self.outbox = Some(self.last.clone());
        self.tries += 1;
        self.resend_at = now + SERVER_TIMEOUT;
    }

    /// A packet from the client.
    pub fn handle_datagram(&mut self, now: Instant, bytes: &[u8]) {
        if self.over {
            return;
        }
        match Packet::parse(bytes) {
            Ok(Packet::Ack { block }) if block == self.block as u16 => {
                // The block that ends the file is the first shorter than the block size.
                let sent_end = (self.block as usize).saturating_mul(self.blksize);
                if self.block > 0 && sent_end > self.file.len() {
                    self.over = true;
                    return;
                }
                self.send_block(now, self.block + 1);
            }
            Ok(Packet::Error { .. }) => self.over = true,
            _ => {} // an old ACK (a duplicate): ignored, never answered (no Sorcerer's Apprentice)
        }
    }
}

/// The files a [`TftpServer`] serves, by name; shared with whoever runs it.
#[derive(Clone, Debug, Default)]
pub struct Files(Arc<Mutex<FilesInner>>);

#[derive(Debug)]
struct FilesInner {
    files: BTreeMap<String, Arc<[u8]>>,
    answering: bool,
    honour_options: bool,
    /// Stop a transfer after this many blocks (a server that dies mid-file).
    stall_after: Option<u64>,
}

impl Default for FilesInner {
    fn default() -> Self {
        FilesInner {
            files: BTreeMap::new(),
            answering: true,
            honour_options: true,
            stall_after: None,
        }
    }
}

impl Files {
    fn with<T>(&self, f: impl FnOnce(&mut FilesInner) -> T) -> T {
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }

    /// Serves `bytes` as `name` (replacing what was there).
    pub fn put(&self, name: &str, bytes: impl Into<Arc<[u8]>>) {
        let bytes = bytes.into();
        self.with(|f| f.files.insert(name.to_string(), bytes));
    }

    /// The file `name`, if served.
    pub fn get(&self, name: &str) -> Option<Arc<[u8]>> {
        self.with(|f| f.files.get(name).cloned())
    }

    /// False: the server takes requests and answers nothing (as if it were down).
    pub fn set_answering(&self, on: bool) {
        self.with(|f| f.answering = on);
    }

    /// Whether the server answers.
    pub fn answering(&self) -> bool {
        self.with(|f| f.answering)
    }

    /// False: the server answers as a plain RFC 1350 server (no OACK, 512-byte blocks).
    pub fn set_honour_options(&self, on: bool) {
        self.with(|f| f.honour_options = on);
    }

    /// Some(n): every transfer goes silent after `n` blocks (a server that dies mid-file).
    pub fn set_stall_after(&self, blocks: Option<u64>) {
        self.with(|f| f.stall_after = blocks);
    }

    fn honour_options(&self) -> bool {
        self.with(|f| f.honour_options)
    }

    fn stall_after(&self) -> Option<u64> {
        self.with(|f| f.stall_after)
    }
}

/// A TFTP server on a loopback address, its tasks on the current tokio runtime; stopped when
/// dropped.
#[derive(Debug)]
pub struct TftpServer {
    addr: SocketAddr,
    files: Files,
    task: tokio::task::JoinHandle<()>,
}

impl TftpServer {
    /// Serves `files` on `socket` (bound by the caller: port 0 in tests).
    pub fn start(socket: std::net::UdpSocket, files: Files) -> std::io::Result<TftpServer> {
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let task = tokio::spawn(serve(socket, files.clone()));
        Ok(TftpServer { addr, files, task })
    }

    /// Binds `addr` (loopback only: see [`crate::transport::bind_unicast`]) and serves `files`.
    pub fn bind(addr: std::net::SocketAddrV4, files: Files) -> std::io::Result<TftpServer> {
        TftpServer::start(crate::transport::bind_unicast(addr)?, files)
    }

    /// Where requests go.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The files it serves.
    pub fn files(&self) -> &Files {
        &self.files
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request loop: one task per read, each with a socket of its own.
async fn serve(socket: tokio::net::UdpSocket, files: Files) {
    let mut buf = vec![0u8; 2048];
    let mut transfers = tokio::task::JoinSet::new();
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if !files.answering() {
            continue;
        }
        let now = Instant::now();
        let answer = Transfer::answer(
            now,
            &buf[..n],
            |name| files.get(name),
            files.honour_options(),
        );
        let Ok(local) = socket.local_addr() else {
            continue;
        };
        let Ok(own) = tokio::net::UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await else {
            continue;
        };
        match answer {
            Answer::Refused(p) => {
                let _ = own.send_to(&p, from).await;
            }
            Answer::Started(t) => {
                transfers.spawn(run_transfer(own, from, t, files.clone()));
            }
        }
        // Reap finished transfers so the set does not grow.
        while transfers.try_join_next().is_some() {}
    }
}

async fn run_transfer(
    sock: tokio::net::UdpSocket,
    client: SocketAddr,
    mut t: Transfer,
    files: Files,
) {
    let mut buf = vec![0u8; 2048];
    let stall = files.stall_after();
    loop {
        while let Some(p) = t.poll_transmit() {
            if stall.is_some_and(|s| t.blocks_sent() > s) || !files.answering() {
                return; // gone silent mid-file
            }
            let _ = sock.send_to(&p, client).await;
        }
        let Some(at) = t.poll_timeout() else { return };
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => t.handle_timeout(Instant::now()),
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, from)) if from == client => t.handle_datagram(Instant::now(), &buf[..n]),
                Ok((_, from)) => {
                    let e = Packet::Error { code: ErrorCode::UnknownTransferId, message: "unknown transfer ID".into() };
                    let _ = sock.send_to(&e.emit(), from).await;
                }
                Err(_) => return,
            },
        }
    }
}
