//! Hostile peers against a real `onu` process: the ONU's findings of the security review, each
//! reproduced over loopback UDP.
//!
//! - **OMCI from a stranger on the ONU's own port**: a socket on 127.0.0.2 (and one on
//!   127.0.0.1 at another port than the OLT's) sends the ONU a Reboot, a Start software
//!   download into its valid standby image, and a whole window with AR. The ONU takes OMCI
//!   only from its `--olt` address: none of them is answered (the answer would go to the OLT's
//!   socket, which hears nothing), the process does not reboot, the standby image stays valid
//!   (`onu status --json`), and the forged window is not written (the real download that
//!   follows completes and verifies).
//! - **Children that outlive their supervisor**: SIGKILL to `onu run --count` takes its
//!   children with it; their ports are free again within seconds.
//!
//! Every process is stopped and every temporary directory removed however a test ends (the
//! guards' Drop).

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use omci_codec::contents::{
    AttributeValues, Contents, DownloadSectionRequest, EndSoftwareDownloadRequest, GetRequest,
    GetResponse, RebootRequest, StartSoftwareDownloadRequest,
};
use omci_codec::crc::crc32_bzip2;
use omci_codec::envelope::Envelope;
use omci_codec::{
    Codec, ExtendedTrailer, Format, MeClass, MeId, Message, OnuId, ResultCode, Tci, WindowNo,
};
use pon::firmware::{BuildSpec, build, deterministic_payload};
use serde_json::Value;
use sha2::{Digest, Sha256};

use harness::process::{Proc, free_port, free_ports};

harness::tools!();

const MODEL: &str = "LAB-ONU-1";
const ONU: OnuId = OnuId(4);
/// Sections per window of these downloads.
const WINDOW: usize = 8;
/// How long the tests listen for an answer that must not come.
const QUIET: Duration = Duration::from_millis(800);

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn image(version: &str, security: u32) -> Vec<u8> {
    let spec = BuildSpec {
        model: MODEL.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot: false,
    };
    build(&spec, &deterministic_payload(version, 2000), &key()).unwrap()
}

fn sw(image: u16) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, image)
}

/// A temporary lab: the public key, the golden image, the ONU's flash; the OLT's socket (the
/// ONU's `--olt`) and a stranger's on 127.0.0.2.
struct Bench {
    dir: tempfile::TempDir,
    listen: SocketAddrV4,
    group: SocketAddrV4,
    olt: UdpSocket,
    stranger: UdpSocket,
    codec: Codec,
    tci: u16,
}

impl Bench {
    fn new(group_port: u16) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("lab.pub"),
            hex::encode(key().verifying_key().to_bytes()),
        )
        .unwrap();
        std::fs::write(dir.path().join("golden.img"), image("V1", 1)).unwrap();
        let olt = UdpSocket::bind("127.0.0.1:0").unwrap();
        olt.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        Bench {
            dir,
            listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port()),
            group: SocketAddrV4::new(Ipv4Addr::new(239, 255, 13, 1), group_port),
            olt,
            stranger: UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 on loopback"),
            codec: Codec::new(ExtendedTrailer::Crc32),
            tci: 0,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `onu run` for this bench's ONU (no --supervise: a reboot ends the process with 75).
    fn start_onu(&mut self) -> Proc {
        let child = onu()
            .args(["run", "--busy-ms", "40"])
            .arg(format!("--onu-id={}", ONU.0))
            .arg(format!("--state-dir={}", self.path("state").display()))
            .arg(format!("--listen={}", self.listen))
            .arg(format!("--olt={}", self.olt.local_addr().unwrap()))
            .arg(format!("--group={}", self.group))
            .arg(format!("--public-key={}", self.path("lab.pub").display()))
            .arg(format!("--golden={}", self.path("golden.img").display()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.try_get(0, Duration::from_millis(50)).is_none() {
            assert!(Instant::now() < deadline, "the ONU process did not answer");
        }
        // Whatever the boot announced is read: from now on the OLT's socket hears answers only.
        while self.next_datagram(Duration::from_millis(100)).is_some() {}
        Proc(child)
    }

    fn next_tci(&mut self) -> Tci {
        self.tci = self.tci.wrapping_add(1).max(1);
        Tci(self.tci)
    }

    fn datagram(&self, env: Envelope, msg: &Message<'_>) -> Vec<u8> {
        env.wrap(&self.codec.to_vec(msg).unwrap())
    }

    /// The next message the OLT's socket hears within `patience`.
    fn next_datagram(&self, patience: Duration) -> Option<Message<'static>> {
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            let Ok((n, _)) = self.olt.recv_from(&mut buf) else {
                continue;
            };
            if let Ok((_, frame)) = Envelope::parse(&buf[..n])
                && let Ok(m) = self.codec.parse(frame)
            {
                return Some(m.into_owned());
            }
        }
        None
    }

    /// The answer to TCI `tci` the OLT's socket hears within `patience`.
    fn answer(&self, tci: Tci, patience: Duration) -> Option<Message<'static>> {
        let deadline = Instant::now() + patience;
        while let Some(m) = self.next_datagram(deadline.saturating_duration_since(Instant::now())) {
            if m.tci == tci && m.ak() {
                return Some(m);
            }
        }
        None
    }

    /// Sends `contents` to the ONU from the OLT's socket; its answer's result.
    fn request(&mut self, me: MeId, contents: Contents<'_>) -> Option<ResultCode> {
        let msg = Message::new(self.next_tci(), Format::Baseline, me, contents);
        for _ in 0..3 {
            self.olt
                .send_to(&self.datagram(Envelope::omcc(ONU), &msg), self.listen)
                .unwrap();
            if let Some(m) = self.answer(msg.tci, Duration::from_millis(400)) {
                return m.contents.result();
            }
        }
        None
    }

    /// Sends `forged` to the ONU from the stranger's socket, then from a second socket on
    /// 127.0.0.1 (the OLT's address, another port); true when the OLT's socket hears anything
    /// within [`QUIET`].
    fn spoof(&self, forged: &[(Envelope, Message<'_>)]) -> bool {
        let neighbour = UdpSocket::bind("127.0.0.1:0").unwrap();
        for from in [&self.stranger, &neighbour] {
            for (env, msg) in forged {
                from.send_to(&self.datagram(*env, msg), self.listen)
                    .unwrap();
            }
        }
        self.next_datagram(QUIET).is_some()
    }

    /// (committed, active, valid, version) of image `image` by Get; `None` without an answer.
    fn try_get(&mut self, image: u16, patience: Duration) -> Option<(bool, bool, bool, String)> {
        let msg = Message::new(
            self.next_tci(),
            Format::Baseline,
            sw(image),
            Contents::GetRequest(GetRequest {
                attribute_mask: 0xF000,
            }),
        );
        self.olt
            .send_to(&self.datagram(Envelope::omcc(ONU), &msg), self.listen)
            .unwrap();
        match self.answer(msg.tci, patience)?.contents {
            Contents::GetResponse(GetResponse {
                attributes: AttributeValues::SoftwareImage(a),
                ..
            }) => Some((
                a.is_committed?,
                a.is_active?,
                a.is_valid?,
                String::from_utf8_lossy(&a.version?)
                    .trim_end_matches('\0')
                    .to_string(),
            )),
            _ => None,
        }
    }

    fn start_request(&mut self, img_len: usize) -> Message<'static> {
        Message::new(
            self.next_tci(),
            Format::Baseline,
            sw(1),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: WINDOW as u8 - 1,
                image_size: img_len as u32,
                instances: [1u16].into_iter().collect(),
            }),
        )
    }

    /// Window `w` of `img` as the lab's OLT sends it: every section with its window number,
    /// the last with AR and the window CRC.
    fn window(&mut self, img: &[u8], w: usize) -> Vec<(Envelope, Message<'static>)> {
        let chunks: Vec<&[u8]> = img.chunks(31).collect();
        let (first, last) = (w * WINDOW, ((w + 1) * WINDOW).min(chunks.len()));
        let crc = crc32_bzip2(&img[first * 31..(last * 31).min(img.len())]);
        (first..last)
            .map(|i| {
                let mut data = chunks[i].to_vec();
                data.resize(31, 0);
                let ar = i + 1 == last;
                let msg = Message::new(
                    self.next_tci(),
                    Format::Baseline,
                    sw(1),
                    Contents::DownloadSectionRequest(DownloadSectionRequest {
                        section_number: (i - first) as u8,
                        data: Cow::Owned(data),
                    }),
                )
                .with_ar(ar);
                let env = Envelope {
                    window_no: Some(WindowNo(w as u32)),
                    window_crc: ar.then_some(crc),
                    ..Envelope::omcc(ONU)
                };
                (env, msg)
            })
            .collect()
    }

    /// Sends window `w` of `img` from the OLT's socket; the AR section's answer.
    fn send_window(&mut self, img: &[u8], w: usize) -> Option<ResultCode> {
        let sections = self.window(img, w);
        let (ar_env, ar) = sections.last().cloned().unwrap();
        for (env, msg) in &sections[..sections.len() - 1] {
            self.olt
                .send_to(&self.datagram(*env, msg), self.listen)
                .unwrap();
        }
        for _ in 0..3 {
            self.olt
                .send_to(&self.datagram(ar_env, &ar), self.listen)
                .unwrap();
            if let Some(m) = self.answer(ar.tci, Duration::from_millis(400)) {
                return m.contents.result();
            }
        }
        None
    }

    /// Every window of `img` (Start already answered), then End until it stops being busy.
    fn finish_download(&mut self, img: &[u8]) -> Option<ResultCode> {
        for w in 0..img.len().div_ceil(31 * WINDOW) {
            assert_eq!(
                self.send_window(img, w),
                Some(ResultCode::Success),
                "window {w}"
            );
        }
        let end = Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
            crc: crc32_bzip2(img),
            image_size: img.len() as u32,
            instances: [1u16].into_iter().collect(),
        });
        for _ in 0..50 {
            match self.request(sw(1), end.clone()) {
                Some(ResultCode::DeviceBusy) => std::thread::sleep(Duration::from_millis(20)),
                other => return other,
            }
        }
        None
    }

    /// A whole download of `img` into image 1 from the OLT's socket: End's result.
    fn download(&mut self, img: &[u8]) -> Option<ResultCode> {
        let start = self.start_request(img.len());
        let env = Envelope::omcc(ONU);
        self.olt
            .send_to(&self.datagram(env, &start), self.listen)
            .unwrap();
        let answer = self.answer(start.tci, Duration::from_secs(2))?;
        assert_eq!(answer.contents.result(), Some(ResultCode::Success));
        self.finish_download(img)
    }

    /// `onu status --json` on the (stopped) ONU's flash.
    fn status(&self) -> Value {
        let out = onu()
            .args(["status", "--json"])
            .arg(format!("--state-dir={}", self.path("state").display()))
            .arg(format!("--public-key={}", self.path("lab.pub").display()))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Stops `onu` with SIGTERM and waits for it (at most 5 s).
fn stop(mut onu: Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &onu.0.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while onu.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the ONU did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_reboot_from_a_stranger_is_not_answered_and_reboots_nothing() {
    let mut b = Bench::new(47601);
    let mut onu = b.start_onu();
    let reboot = Message::new(
        b.next_tci(),
        Format::Baseline,
        MeId::new(MeClass::ONU_G, 0),
        Contents::RebootRequest(RebootRequest {
            reboot_condition: 0,
        }),
    );
    assert!(
        !b.spoof(&[(Envelope::omcc(ONU), reboot.clone())]),
        "the ONU answered (or announced a boot after) a stranger's Reboot"
    );
    assert!(
        onu.0.try_wait().unwrap().is_none(),
        "the ONU rebooted (without --supervise it ends with 75)"
    );
    assert_eq!(
        b.try_get(0, Duration::from_millis(400)),
        Some((true, true, true, "V1".into()))
    );
    // The same Reboot from the OLT: answered, and the process ends to be started again.
    let d = b.datagram(Envelope::omcc(ONU), &reboot);
    b.olt.send_to(&d, b.listen).unwrap();
    assert_eq!(
        b.answer(reboot.tci, Duration::from_secs(2))
            .and_then(|m| m.contents.result()),
        Some(ResultCode::Success)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = onu.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the OLT's Reboot did not reboot");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(75));
}

#[test]
fn a_start_from_a_stranger_leaves_the_valid_standby_image_valid() {
    let mut b = Bench::new(47611);
    let onu = b.start_onu();
    let v2 = image("V2", 2);
    assert_eq!(b.download(&v2), Some(ResultCode::Success));
    assert_eq!(
        b.try_get(1, Duration::from_millis(400)),
        Some((false, false, true, "V2".into())),
        "S3: a valid standby image"
    );
    let start = b.start_request(v2.len());
    assert!(
        !b.spoof(&[(Envelope::omcc(ONU), start)]),
        "the ONU answered a stranger's Start"
    );
    assert_eq!(
        b.try_get(1, Duration::from_millis(400)),
        Some((false, false, true, "V2".into())),
        "the stranger's Start invalidated the standby image"
    );
    stop(onu);
    let s = b.status();
    let slot1 = &s["slots"][1];
    assert_eq!(slot1["valid"], true, "{s}");
    assert_eq!(slot1["verifies"], true, "{s}");
    assert_eq!(slot1["sha256"], hex::encode(Sha256::digest(&v2)), "{s}");
}

#[test]
fn a_window_from_a_stranger_is_not_acknowledged_nor_written() {
    let mut b = Bench::new(47621);
    let onu = b.start_onu();
    let v2 = image("V2", 2);
    let start = b.start_request(v2.len());
    let d = b.datagram(Envelope::omcc(ONU), &start);
    b.olt.send_to(&d, b.listen).unwrap();
    assert_eq!(
        b.answer(start.tci, Duration::from_secs(2))
            .and_then(|m| m.contents.result()),
        Some(ResultCode::Success)
    );
    // A whole window 0 of other data, its window CRC right for that data.
    let forged: Vec<u8> = v2.iter().map(|x| x ^ 0x5A).collect();
    let window = b.window(&forged, 0);
    assert!(!b.spoof(&window), "the ONU answered a stranger's window");
    // The OLT's download: had the forged window been taken, window 0 would be held already
    // (never rewritten) and End's CRC would not match what was written.
    assert_eq!(b.finish_download(&v2), Some(ResultCode::Success));
    stop(onu);
    let s = b.status();
    assert_eq!(s["slots"][1]["valid"], true, "{s}");
    assert_eq!(
        s["slots"][1]["sha256"],
        hex::encode(Sha256::digest(&v2)),
        "{s}"
    );
}

/// The processes whose parent is `parent` now (from /proc: every process's stat).
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat(*pid).is_some_and(|(_, ppid)| ppid == parent))
        .collect()
}

/// (state, parent) of process `pid`; `None` once it is gone.
fn stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": the command may hold spaces and parentheses.
    let mut rest = text[text.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// Gone, or dead and waiting for whoever adopted it to reap it.
fn exited(pid: u32) -> bool {
    stat(pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X'))
}

#[test]
fn sigkill_to_the_count_supervisor_takes_its_children_with_it() {
    let mut b = Bench::new(47631);
    let base = free_ports(43100, 3);
    let mut parent = Proc(
        onu()
            .args(["run", "--count=3", "--base-id=20", "--supervise"])
            .arg(format!("--listen=127.0.0.1:{base}"))
            .arg(format!("--olt={}", b.olt.local_addr().unwrap()))
            .arg(format!("--group={}", b.group))
            .arg(format!("--state-dir={}", b.path("many").display()))
            .arg(format!("--public-key={}", b.path("lab.pub").display()))
            .arg(format!("--golden={}", b.path("golden.img").display()))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Every child answers on its port.
    for k in 0..3u16 {
        let onu = OnuId(20 + k);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "ONU {} never answered", onu.0);
            let get = Message::new(
                b.next_tci(),
                Format::Baseline,
                MeId::new(MeClass::ONU_G, 0),
                Contents::GetRequest(GetRequest {
                    attribute_mask: 0x2000,
                }),
            );
            let d = b.datagram(Envelope::omcc(onu), &get);
            b.olt.send_to(&d, ("127.0.0.1", base + k)).unwrap();
            if b.answer(get.tci, Duration::from_millis(100)).is_some() {
                break;
            }
        }
    }
    let children = children_of(parent.0.id());
    assert_eq!(children.len(), 3, "one process per ONU: {children:?}");
    parent.0.kill().unwrap(); // SIGKILL: no cleanup of its own
    parent.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: Vec<u32> = children.iter().copied().filter(|c| !exited(*c)).collect();
        let bound: Vec<u16> = (0..3)
            .map(|k| base + k)
            .filter(|p| UdpSocket::bind(("127.0.0.1", *p)).is_err())
            .collect();
        if running.is_empty() && bound.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            // Do not leave them behind for the next test.
            for c in &running {
                let _ = Command::new("kill")
                    .args(["-KILL", &c.to_string()])
                    .status();
            }
            panic!("children {running:?} outlived their supervisor; ports {bound:?} still bound");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
