//! Real `onu` processes on loopback, upgraded by an OLT in the test over UDP (unicast and the
//! multicast group), killed with SIGKILL at random moments and cut at every named power-loss
//! point; `onu status` then reads their flash offline.
//!
//! Every process is killed and every temporary directory removed when a test ends, passed or
//! failed (the guards' Drop).

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use omci_codec::contents::*;
use omci_codec::crc::crc32_bzip2;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::{
    Codec, ExtendedTrailer, Format, GemPort, MeClass, MeId, Message, OnuId, ResultCode, Tci,
    WindowNo,
};
use pon::firmware::{BuildSpec, build, deterministic_payload};
use serde_json::Value;
use sha2::{Digest, Sha256};

harness::tools!();
const MODEL: &str = "LAB-ONU-1";
const ONU: OnuId = OnuId(3);

/// Distinct multicast groups per test, so that parallel tests never hear each other.
static NEXT_GROUP: AtomicU16 = AtomicU16::new(1);

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn image(version: &str, security: u32) -> Vec<u8> {
    image_that(version, security, false)
}

fn image_that(version: &str, security: u32, fails_to_boot: bool) -> Vec<u8> {
    let spec = BuildSpec {
        model: MODEL.into(),
        version: version.into(),
        security_version: security,
        build: 1,
        fails_to_boot,
    };
    build(
        &spec,
        &deterministic_payload(version, 3000),
        &SigningKey::from_bytes(&[5; 32]),
    )
    .unwrap()
}

/// A temporary lab: keys, golden image, state directory, and the ONU process (killed on drop).
struct Bench {
    dir: tempfile::TempDir,
    child: Option<Child>,
    listen: SocketAddrV4,
    group: SocketAddrV4,
    olt: UdpSocket,
    sender: UdpSocket,
    tci: u16,
    codec: Codec,
    /// How long to wait for one response.
    patience: Duration,
    /// How often a request (or a window repair) is tried.
    tries: u32,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[5; 32]);
        std::fs::write(
            dir.path().join("lab.pub"),
            hex::encode(key.verifying_key().to_bytes()),
        )
        .unwrap();
        std::fs::write(dir.path().join("golden.img"), image("V1", 1)).unwrap();
        // One socket, as an OLT has: the ONU takes OMCI from its --olt address only, on its
        // own port and on the group alike.
        let olt = pon::transport::bind_multicast_sender(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .unwrap();
        olt.set_nonblocking(false).unwrap();
        olt.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let n = NEXT_GROUP.fetch_add(1, Ordering::SeqCst);
        let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 7, n as u8), 47100 + n);
        let sender = olt.try_clone().unwrap();
        Bench {
            dir,
            child: None,
            listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port()),
            group,
            olt,
            sender,
            tci: 0,
            codec: Codec::new(ExtendedTrailer::Crc32),
            patience: Duration::from_millis(400),
            tries: 3,
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `onu run` for this bench's ONU, its flags set; `extra` flags come after them.
    fn onu_command(&self, extra: &[&str]) -> Command {
        let olt = self.olt.local_addr().unwrap();
        let mut cmd = onu();
        cmd.args(["run", "--supervise", "--busy-ms", "40", "--reboot-ms", "20"])
            .arg(format!("--onu-id={}", ONU.0))
            .arg(format!("--state-dir={}", self.state_dir().display()))
            .arg(format!("--listen={}", self.listen))
            .arg(format!("--olt={olt}"))
            .arg(format!("--group={}", self.group))
            .arg(format!(
                "--public-key={}",
                self.dir.path().join("lab.pub").display()
            ))
            .arg(format!(
                "--golden={}",
                self.dir.path().join("golden.img").display()
            ))
            .args(extra);
        cmd
    }

    /// Starts the ONU process (with `extra` flags) and waits until it answers.
    fn start_onu(&mut self, extra: &[&str]) {
        let child = self
            .onu_command(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        // Poll quickly until the process has bound its socket and answers.
        self.patience = Duration::from_millis(30);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.try_get_state().is_some() {
                self.patience = Duration::from_millis(400);
                return;
            }
        }
        panic!("the ONU process did not answer");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True once the process has died (a power-loss point aborts it).
    fn died(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    fn next_tci(&mut self) -> Tci {
        self.tci = self.tci.wrapping_add(1).max(1);
        Tci(self.tci)
    }

    fn send(&self, env: Envelope, msg: &Message<'_>) {
        let frame = self.codec.to_vec(msg).unwrap();
        self.olt.send_to(&env.wrap(&frame), self.listen).unwrap();
    }

    /// The response to `msg` (same TCI), retried as an OLT does (3 tries, 400 ms each).
    fn request(&mut self, me: MeId, contents: Contents<'_>) -> Option<Message<'static>> {
        let msg = Message::new(self.next_tci(), Format::Baseline, me, contents);
        for _ in 0..self.tries {
            self.send(Envelope::omcc(ONU), &msg);
            if let Some(r) = self.wait_for(msg.tci) {
                return Some(r);
            }
            if self.died() {
                return None;
            }
        }
        None
    }

    fn wait_for(&self, tci: Tci) -> Option<Message<'static>> {
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + self.patience;
        while Instant::now() < deadline {
            // The socket's read timeout is short so that this deadline is kept.
            let n = match self.olt.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("OLT socket: {e}"),
            };
            let Ok((_, frame)) = Envelope::parse(&buf[..n]) else {
                continue;
            };
            if let Ok(m) = self.codec.parse(frame)
                && m.tci == tci
                && m.ak()
            {
                return Some(m.into_owned());
            }
        }
        None
    }

    fn result(&mut self, me: MeId, contents: Contents<'_>) -> Option<ResultCode> {
        self.request(me, contents).and_then(|m| m.contents.result())
    }

    fn try_get_state(&mut self) -> Option<[(bool, bool, bool, String); 2]> {
        let mut out = Vec::new();
        for image in 0..2u16 {
            let msg = Message::new(
                self.next_tci(),
                Format::Baseline,
                MeId::new(MeClass::SOFTWARE_IMAGE, image),
                Contents::GetRequest(GetRequest {
                    attribute_mask: 0xF000,
                }),
            );
            self.send(Envelope::omcc(ONU), &msg);
            let r = self.wait_for(msg.tci)?;
            match r.contents {
                Contents::GetResponse(GetResponse {
                    attributes: AttributeValues::SoftwareImage(a),
                    ..
                }) => out.push((
                    a.is_committed?,
                    a.is_active?,
                    a.is_valid?,
                    String::from_utf8_lossy(&a.version?)
                        .trim_end_matches('\0')
                        .to_string(),
                )),
                _ => return None,
            }
        }
        out.try_into().ok()
    }

    /// Sends window `w` (window size 8): inner sections to the multicast group when
    /// `multicast`, the AR section unicast; returns the AR section's answer.
    fn window(&mut self, img: &[u8], w: usize, multicast: bool) -> Option<ResultCode> {
        let chunks: Vec<&[u8]> = img.chunks(31).collect();
        let (first, last) = (w * 8, ((w + 1) * 8).min(chunks.len()));
        let crc = crc32_bzip2(&img[first * 31..(last * 31).min(img.len())]);
        for (i, chunk) in chunks.iter().enumerate().take(last).skip(first) {
            let mut data = chunk.to_vec();
            data.resize(31, 0);
            let ar = i + 1 == last;
            let msg = Message::new(
                self.next_tci(),
                Format::Baseline,
                MeId::new(MeClass::SOFTWARE_IMAGE, 1),
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: (i - first) as u8,
                    data: Cow::Owned(data),
                }),
            )
            .with_ar(ar);
            if ar {
                let env = Envelope {
                    window_no: Some(WindowNo(w as u32)),
                    window_crc: Some(crc),
                    ..Envelope::omcc(ONU)
                };
                for _ in 0..self.tries {
                    self.send(env, &msg);
                    if let Some(r) = self.wait_for(msg.tci) {
                        return r.contents.result();
                    }
                    if self.died() {
                        return None;
                    }
                }
                return None;
            }
            let frame = self.codec.to_vec(&msg).unwrap();
            let env = if multicast {
                Envelope {
                    onu_id: ALL_ONUS,
                    gem_port: GemPort::MULTICAST_DOWNLOAD,
                    window_no: Some(WindowNo(w as u32)),
                    window_crc: None,
                    missing: None,
                }
            } else {
                Envelope {
                    window_no: Some(WindowNo(w as u32)),
                    ..Envelope::omcc(ONU)
                }
            };
            let to = if multicast { self.group } else { self.listen };
            self.sender.send_to(&env.wrap(&frame), to).unwrap();
        }
        None
    }

    /// The whole upgrade to `img`, `budget` requests at most; returns true when committed.
    fn upgrade(&mut self, img: &[u8], mut budget: usize) -> bool {
        let sw1 = MeId::new(MeClass::SOFTWARE_IMAGE, 1);
        let mut spend = || {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            true
        };
        // Where an earlier, interrupted upgrade left off: already committed, or running
        // uncommitted (only Commit is missing).
        if let Some(s) = self.try_get_state()
            && s[1].1
            && s[1].3 == "V2"
        {
            return s[1].0
                || (spend()
                    && self.result(sw1, Contents::CommitSoftwareRequest)
                        == Some(ResultCode::Success));
        }
        if !spend() {
            return false;
        }
        let start = self.result(
            sw1,
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: 7,
                image_size: img.len() as u32,
                instances: [1u16].into_iter().collect(),
            }),
        );
        if start != Some(ResultCode::Success) {
            return false;
        }
        let windows = img.len().div_ceil(31 * 8);
        for w in 0..windows {
            // Every window: once on the group; repaired by unicast if the ONU missed it.
            if !spend() {
                return false;
            }
            let mut ok = self.window(img, w, true) == Some(ResultCode::Success);
            for _ in 1..self.tries {
                if ok || self.died() {
                    break;
                }
                ok = self.window(img, w, false) == Some(ResultCode::Success);
            }
            if !ok {
                return false;
            }
        }
        loop {
            if !spend() {
                return false;
            }
            match self.result(
                sw1,
                Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                    crc: crc32_bzip2(img),
                    image_size: img.len() as u32,
                    instances: [1u16].into_iter().collect(),
                }),
            ) {
                Some(ResultCode::DeviceBusy) => std::thread::sleep(Duration::from_millis(20)),
                Some(ResultCode::Success) => break,
                _ => return false,
            }
        }
        if !spend()
            || self.result(
                sw1,
                Contents::ActivateSoftwareRequest(ActivateSoftwareRequest { activate_flags: 0 }),
            ) != Some(ResultCode::Success)
        {
            return false;
        }
        // Wait for the reboot: image 1 active.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.died() || Instant::now() > deadline {
                return false;
            }
            if let Some(s) = self.try_get_state()
                && s[1].1
            {
                break;
            }
        }
        spend() && self.result(sw1, Contents::CommitSoftwareRequest) == Some(ResultCode::Success)
    }

    /// `onu status --json` on the (stopped) ONU's flash.
    fn status(&self) -> Value {
        let out = onu()
            .args(["status", "--json"])
            .arg(format!("--state-dir={}", self.state_dir().display()))
            .arg(format!(
                "--public-key={}",
                self.dir.path().join("lab.pub").display()
            ))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status: {e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// What `onu status` must say of any flash, whatever happened to the ONU.
fn assert_bootable_and_allowed(s: &Value, case: &str) {
    assert_eq!(s["bootable"], true, "{case}: {s}");
    let slots = s["slots"].as_array().unwrap();
    let committed: Vec<&Value> = slots.iter().filter(|x| x["committed"] == true).collect();
    assert_eq!(committed.len(), 1, "{case}: one committed image: {s}");
    assert_eq!(
        committed[0]["valid"], true,
        "{case}: the committed image is valid: {s}"
    );
    assert_eq!(committed[0]["verifies"], true, "{case}: {s}");
    let active: Vec<&Value> = slots.iter().filter(|x| x["active"] == true).collect();
    assert_eq!(active.len(), 1, "{case}: one image boots next: {s}");
}

fn assert_upgraded(s: &Value, img: &[u8], case: &str) {
    let slot1 = &s["slots"][1];
    assert_eq!(slot1["committed"], true, "{case}: {s}");
    assert_eq!(slot1["active"], true, "{case}: {s}");
    assert_eq!(slot1["version"], "V2", "{case}: {s}");
    assert_eq!(
        slot1["sha256"],
        hex::encode(Sha256::digest(img)),
        "{case}: {s}"
    );
}

#[test]
fn a_real_onu_process_is_upgraded_over_udp_and_multicast() {
    let mut b = Bench::new();
    b.start_onu(&[]);
    let v2 = image("V2", 2);
    assert!(b.upgrade(&v2, usize::MAX));
    let s = b.try_get_state().unwrap();
    assert_eq!(
        (s[1].0, s[1].1, s[1].2, s[1].3.as_str()),
        (true, true, true, "V2")
    );
    b.kill();
    let status = b.status();
    assert_bootable_and_allowed(&status, "clean upgrade");
    assert_upgraded(&status, &v2, "clean upgrade");
}

#[test]
fn every_named_power_loss_point_leaves_a_bootable_onu_that_can_finish() {
    let v2 = image("V2", 2);
    for point in [
        "mid-section-write",
        "after-window-ack@3",
        "during-busy",
        "mid-metadata-write@2",
        "after-activate",
        "after-reboot-before-commit",
    ] {
        let mut b = Bench::new();
        b.start_onu(&[&format!("--fault={point}")]);
        assert!(
            !b.upgrade(&v2, usize::MAX),
            "{point}: the upgrade should be cut"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while !b.died() {
            assert!(
                Instant::now() < deadline,
                "{point}: the process did not die"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        b.child = None;
        let s = b.status();
        assert_bootable_and_allowed(&s, point);
        // Power back, no fault: the OLT finishes the upgrade.
        b.start_onu(&[]);
        assert!(b.upgrade(&v2, usize::MAX), "{point}: the retry failed");
        b.kill();
        let s = b.status();
        assert_bootable_and_allowed(&s, point);
        assert_upgraded(&s, &v2, point);
    }
}

#[test]
fn sigkill_at_random_moments_never_bricks_and_the_upgrade_finishes() {
    let v2 = image("V2", 2);
    let cases: u64 = std::env::var("ONU_SIGKILL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut b = Bench::new();
    for seed in 1..=cases {
        let case = format!("seed {seed}");
        // A fresh flash every tenth case; otherwise the flash the last case left.
        if seed % 10 == 1 {
            b = Bench::new();
        }
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        let budget = (x % 20) as usize;
        let extra_ms = (x >> 8) % 4;
        b.start_onu(&[]);
        b.upgrade(&v2, budget);
        std::thread::sleep(Duration::from_millis(extra_ms));
        b.kill(); // SIGKILL
        let s = b.status();
        assert_bootable_and_allowed(&s, &case);
        // Every few cases the OLT is allowed to finish, and must be able to.
        if seed % 5 == 0 {
            b.start_onu(&[]);
            assert!(
                b.upgrade(&v2, usize::MAX),
                "{case}: the upgrade could not finish"
            );
            b.kill();
            let s = b.status();
            assert_upgraded(&s, &v2, &case);
            // Start over from the golden image for the next cases.
            b = Bench::new();
        }
    }
}

#[test]
fn a_lossy_duplicating_reordering_corrupting_link_is_survived() {
    let mut b = Bench::new();
    b.tries = 10;
    b.start_onu(&[
        "--drop=0.05",
        "--duplicate=0.05",
        "--reorder=0.05",
        "--corrupt=0.02",
        "--drop-upstream=0.03",
        "--duplicate-upstream=0.03",
        "--seed=9",
    ]);
    let v2 = image("V2", 2);
    assert!(
        b.upgrade(&v2, usize::MAX),
        "the upgrade did not finish over a lossy link"
    );
    b.kill();
    let s = b.status();
    assert_bootable_and_allowed(&s, "lossy");
    assert_upgraded(&s, &v2, "lossy");
}

#[test]
fn count_starts_one_process_per_onu_and_sigterm_stops_them_all() {
    let b = Bench::new();
    // Three consecutive free ports.
    let base = (0..200)
        .map(|i| 42000 + 37 * i)
        .find(|p| (0..3).all(|k| UdpSocket::bind(("127.0.0.1", p + k)).is_ok()))
        .expect("three free ports");
    let olt = &b.olt;
    let mut parent = onu()
        .args(["run", "--count=3", "--base-id=10", "--supervise"])
        .arg(format!("--listen=127.0.0.1:{base}"))
        .arg(format!("--olt={}", olt.local_addr().unwrap()))
        .arg(format!("--group={}", b.group))
        .arg(format!(
            "--state-dir={}",
            b.dir.path().join("many").display()
        ))
        .arg(format!(
            "--public-key={}",
            b.dir.path().join("lab.pub").display()
        ))
        .arg(format!(
            "--golden={}",
            b.dir.path().join("golden.img").display()
        ))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = parent.id();
    let codec = Codec::new(ExtendedTrailer::Crc32);
    for k in 0..3u16 {
        let onu = OnuId(10 + k);
        let get = Message::new(
            Tci(100 + k),
            Format::Baseline,
            MeId::new(MeClass::ONU_G, 0),
            Contents::GetRequest(GetRequest {
                attribute_mask: 0x2000,
            }),
        );
        let datagram = Envelope::omcc(onu).wrap(&codec.to_vec(&get).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            assert!(Instant::now() < deadline, "ONU {} never answered", onu.0);
            olt.send_to(&datagram, ("127.0.0.1", base + k)).unwrap();
            let mut buf = [0u8; 256];
            let until = Instant::now() + Duration::from_millis(50);
            let mut found = None;
            while Instant::now() < until {
                if let Ok((n, _)) = olt.recv_from(&mut buf)
                    && let Ok((env, frame)) = Envelope::parse(&buf[..n])
                    && let Ok(m) = codec.parse(frame)
                    && m.tci == get.tci
                {
                    found = Some((env, m.into_owned()));
                    break;
                }
            }
            if let Some(f) = found {
                break f;
            }
        };
        assert_eq!(answer.0.onu_id, onu);
        match answer.1.contents {
            Contents::GetResponse(g) => match g.attributes {
                AttributeValues::Raw { values, .. } => {
                    assert_eq!(&values[..4], b"LABS");
                    assert_eq!(
                        u32::from_be_bytes(values[4..8].try_into().unwrap()),
                        u32::from(onu.0)
                    );
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while parent.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the parent did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _reaped = Reap(parent);
    // The children are gone: their ports are free again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(0..3).all(|k| UdpSocket::bind(("127.0.0.1", base + k)).is_ok()) {
        assert!(Instant::now() < deadline, "a child ONU is still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_supervised_onu_survives_an_image_that_fails_to_boot() {
    let mut b = Bench::new();
    b.start_onu(&[]);
    let bad = image_that("V2", 2, true);
    // Download and Activate succeed; the reboot into V2 crashes three times; the process lives
    // on, back on V1, with V2 still valid (S3).
    assert!(!b.upgrade(&bad, usize::MAX));
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        if let Some(s) = b.try_get_state()
            && s[0].1
        {
            break s;
        }
        assert!(Instant::now() < deadline, "the ONU did not come back");
        assert!(!b.died(), "the supervised process ended");
    };
    assert_eq!((s[0].0, s[0].1, s[0].3.as_str()), (true, true, "V1"));
    assert_eq!((s[1].0, s[1].1, s[1].2), (false, false, true));
}

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let b = Bench::new();
    let child = b
        .onu_command(&["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{text}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    assert!(text.contains("booted"), "{text}");
}
