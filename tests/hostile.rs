//! Hostile peers against a real `olt` process: the findings of the security review, each
//! reproduced over loopback UDP.
//!
//! - **Forged answers for another ONU**: a relay in the test stands between the OLT and a real
//!   `onu` process, and sends every answer of ONU 1 a second time as ONU 2's (the envelope's
//!   ONU-ID and GEM port rewritten, the OMCI frame unchanged). ONU 2 does not exist: it must
//!   fail, and the forgeries be counted (`totals.drops.wrong_onu_id`).
//! - **Answers from a stranger**: a socket on 127.0.0.2 sprays well-formed answers with ONU-ID 1
//!   and guessed TCIs at the OLT during a real rollout: dropped and counted
//!   (`totals.drops.unknown_sender`); the real ONU is upgraded.
//! - **Impossible states**: a scripted fake ONU claims software image states G.988 does not
//!   allow (both images committed and active; an active image that is not valid; after the
//!   reboot, both images active). The OLT must fail that ONU with "impossible software image
//!   state: ..." and never send it Start software download or Commit.
//!
//! Two of the impossible-state tests are ignored for now: they fail against the OLT as it is
//! (it sends Start into an image it was told is committed and active, and Commits an ONU that
//! said both images are active), because `Images::note` (olt/src/session/images.rs) makes the
//! other image's record agree with each new reading before the pair is checked. Run them with
//! `cargo test -p tests --test hostile -- --ignored`.
//!
//! Every process is stopped and every temporary directory removed however a test ends (the
//! guards' Drop); every helper thread is stopped and joined the same way; every OLT run is
//! bounded in time.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use olt::report::{OnuReport, OnuResult, Report};
use omci_codec::contents::{
    AttributeValues, Contents, DownloadSectionResponse, EndSoftwareDownloadResponse, GetResponse,
    InstanceResult, StartSoftwareDownloadResponse,
};
use omci_codec::envelope::Envelope;
use omci_codec::{
    Codec, ExtendedTrailer, Format, GemPort, MeClass, MeId, Message, OnuId, ResultCode,
    SoftwareImageAttributes, Tci,
};

use harness::process::{Proc, free_port};

harness::tools!();

/// Message type bytes (DB 0, AR 1, AK 0) of the requests that must never reach an ONU in an
/// impossible state.
const START_WITH_AR: u8 = 0x53;
const COMMIT_WITH_AR: u8 = 0x57;

/// How long one `olt rollout` may run before the test gives up on it.
const OLT_LIMIT: Duration = Duration::from_secs(25);

// ---------------------------------------------------------------------------------------------
// The bench: images, a real ONU, an OLT run, helper threads.

/// A temporary directory with the images (signed with the harness key, which the ONU trusts).
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let key = harness::images::key();
        std::fs::write(
            dir.path().join("lab.pub"),
            hex::encode(key.verifying_key().to_bytes()),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("v1.img"),
            harness::images::image("V1.0", 1, 3000, false),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("v2.img"),
            harness::images::image("V2.0", 2, 3000, false),
        )
        .unwrap();
        Bench { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    /// A real `onu run` process for ONU 1, listening on `listen`, answering to `olt`.
    fn start_onu(&self, listen: SocketAddrV4, olt: SocketAddr, group: &str) -> Proc {
        Proc(
            onu()
                .args(["run", "--onu-id", "1", "--supervise"])
                .args(["--busy-ms", "40", "--reboot-ms", "20"])
                .arg(format!("--listen={listen}"))
                .arg(format!("--olt={olt}"))
                .arg(format!("--group={group}"))
                .arg(format!("--state-dir={}", self.path("onu")))
                .arg(format!("--public-key={}", self.path("lab.pub")))
                .arg(format!("--golden={}", self.path("v1.img")))
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// `olt rollout` of V2.0 in unicast mode from `listen` with short timeouts, `extra` flags
    /// after these; run to its end (at most [`OLT_LIMIT`]). Returns the exit code, the report
    /// and the output (for messages).
    fn rollout(&self, listen: SocketAddrV4, extra: &[String]) -> (i32, Report, String) {
        let mut cmd = olt();
        cmd.args(["rollout", "--mode", "unicast"])
            .args(["--timeout-ms", "400", "--retries", "3"])
            .args(["--reboot-timeout-s", "10"])
            .arg(format!("--image={}", self.path("v2.img")))
            .arg(format!("--listen={listen}"))
            .arg(format!("--report={}", self.path("report.json")))
            .args(extra);
        let (code, output) = run_bounded(cmd, self.dir.path(), OLT_LIMIT);
        let text = std::fs::read_to_string(self.path("report.json"))
            .unwrap_or_else(|e| panic!("no report ({e}):\n{output}"));
        let report: Report = serde_json::from_str(&text).unwrap();
        (code, report, output)
    }
}

/// Runs `cmd` to its end, its output to files in `dir`; kills it after `limit`.
fn run_bounded(mut cmd: Command, dir: &Path, limit: Duration) -> (i32, String) {
    let out = dir.join("olt.out");
    let err = dir.join("olt.err");
    let mut child = Proc(
        cmd.env("RUST_LOG", "warn")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "olt rollout did not end within {limit:?}:\n{}\n{}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = format!(
        "{}\n{}",
        std::fs::read_to_string(&out).unwrap_or_default(),
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    (status.code().unwrap_or(-1), output)
}

/// A thread that runs until told to stop; stopped and joined when dropped (a failing test
/// leaves none behind).
struct Background<T> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
}

impl<T: Send + 'static> Background<T> {
    /// Runs `f` on a thread; `f` returns once the flag it is given is set.
    fn spawn(f: impl FnOnce(Arc<AtomicBool>) -> T + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Background {
            stop,
            handle: Some(std::thread::spawn(move || f(flag))),
        }
    }

    /// Stops the thread and takes what it returned.
    fn finish(mut self) -> T {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.take().unwrap().join() {
            Ok(t) => t,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl<T> Drop for Background<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A UDP socket on `ip`, port chosen by the kernel, with a short read timeout (so that a
/// thread looping on it sees its stop flag).
fn socket_on(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind((ip, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    s
}

fn v4(a: SocketAddr) -> SocketAddrV4 {
    match a {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => panic!("{a} is not IPv4"),
    }
}

/// A free port on loopback, as an address.
fn free_addr() -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, free_port())
}

fn onu_report(r: &Report, id: u16) -> &OnuReport {
    r.onus
        .iter()
        .find(|o| o.id == id)
        .unwrap_or_else(|| panic!("ONU {id} is not in the report: {r:?}"))
}

fn codec() -> Codec {
    Codec::new(ExtendedTrailer::Crc32)
}

fn sw(image: u16) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, image)
}

fn version(v: &str) -> [u8; 14] {
    let mut out = [0u8; 14];
    out[..v.len()].copy_from_slice(v.as_bytes());
    out
}

/// Software image attributes: committed, active, valid, version.
fn image(c: bool, a: bool, v: bool, ver: &str) -> SoftwareImageAttributes {
    SoftwareImageAttributes {
        version: Some(version(ver)),
        is_committed: Some(c),
        is_active: Some(a),
        is_valid: Some(v),
        ..Default::default()
    }
}

/// A datagram of ONU `onu`: the answer `contents` to `tci` from ME `me`.
fn answer(onu: u16, tci: Tci, me: MeId, contents: Contents<'_>) -> Vec<u8> {
    let msg = Message::new(tci, Format::Baseline, me, contents);
    Envelope::omcc(OnuId(onu)).wrap(&codec().to_vec(&msg).unwrap())
}

fn get_response(a: SoftwareImageAttributes) -> Contents<'static> {
    Contents::GetResponse(GetResponse {
        result: ResultCode::Success,
        attributes: AttributeValues::SoftwareImage(Box::new(a)),
        optional_attribute_mask: 0,
        attribute_execution_mask: 0,
    })
}

// ---------------------------------------------------------------------------------------------
// 1. Forged answers for another ONU.

/// What the relay did.
#[derive(Debug, Default)]
struct Relayed {
    /// Datagrams from the OLT passed to the ONU.
    down: u64,
    /// Answers of the ONU passed to the OLT.
    up: u64,
    /// Of those, copies sent again as ONU 2's.
    forged: u64,
}

/// The relay at address A (the OLT's ONU 1): the OLT's datagrams go to the real ONU; the ONU's
/// answers go to the OLT, from A, and once more as ONU 2's.
fn relay(
    socket: UdpSocket,
    onu: SocketAddrV4,
    olt: SocketAddrV4,
    seen_onu: Arc<AtomicBool>,
) -> impl FnOnce(Arc<AtomicBool>) -> Relayed {
    move |stop| {
        let mut done = Relayed::default();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue; // timeout (or an ICMP error of an earlier send)
            };
            let d = &buf[..n];
            if from == SocketAddr::V4(onu) {
                seen_onu.store(true, Ordering::SeqCst);
                let _ = socket.send_to(d, olt);
                done.up += 1;
                if let Ok((envelope, frame)) = Envelope::parse(d) {
                    let forged = Envelope {
                        onu_id: OnuId(2),
                        gem_port: GemPort::omcc(OnuId(2)),
                        ..envelope
                    };
                    let _ = socket.send_to(&forged.wrap(frame), olt);
                    done.forged += 1;
                }
            } else if from == SocketAddr::V4(olt) {
                let _ = socket.send_to(d, onu);
                done.down += 1;
            }
        }
        done
    }
}

#[test]
fn answers_forged_for_another_onu_are_dropped_and_that_onu_fails() {
    let bench = Bench::new();
    let olt_addr = free_addr();
    let onu_addr = free_addr();
    let relay_socket = socket_on("127.0.0.1");
    let a = v4(relay_socket.local_addr().unwrap());
    // ONU 2's address: nothing listens there.
    let b = v4(socket_on("127.0.0.3").local_addr().unwrap());
    let seen = Arc::new(AtomicBool::new(false));
    let relay = Background::spawn(relay(relay_socket, onu_addr, olt_addr, seen.clone()));
    // The ONU answers to the relay, which it takes for its OLT.
    let _onu = bench.start_onu(onu_addr, SocketAddr::V4(a), "239.255.11.1:47301");
    // Up once it has announced its boot (to the relay).
    let up_by = Instant::now() + Duration::from_secs(10);
    while !seen.load(Ordering::SeqCst) {
        assert!(Instant::now() < up_by, "the ONU process did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, report, output) = bench.rollout(
        olt_addr,
        &[
            format!("--onus=1@{a}"),
            format!("--onus=2@{b}"),
            "--group=239.255.11.1:47301".into(),
        ],
    );
    let relayed = relay.finish();
    let why = format!("{output}\nrelay: {relayed:?}\nreport: {report:#?}");
    let one = onu_report(&report, 1);
    assert_eq!(one.result, OnuResult::Upgraded, "{why}");
    let two = onu_report(&report, 2);
    assert_eq!(
        two.result,
        OnuResult::Failed,
        "ONU 2 (nobody at {b}) upgraded by forgeries: {why}"
    );
    assert!(two.reason.contains("no answer"), "{why}");
    assert!(relayed.forged > 0, "{why}");
    let drops = &report.totals.drops;
    assert!(
        drops.wrong_onu_id > 0 && drops.wrong_onu_id <= relayed.forged,
        "every forgery the OLT heard is counted: {why}"
    );
    assert_eq!(drops.unknown_sender, 0, "{why}");
    assert_eq!(code, 1, "an ONU failed: {why}");
}

// ---------------------------------------------------------------------------------------------
// 2. Answers from a stranger.

/// A socket on 127.0.0.2 sending the OLT answers "of ONU 1", one a millisecond, each to the
/// next TCI of the session range and of a kind that would derail an upgrade if taken (every
/// image done, every window complete, End, Activate and Commit succeeded). Returns how many
/// it sent.
fn stranger(olt: SocketAddrV4) -> impl FnOnce(Arc<AtomicBool>) -> u64 {
    move |stop| {
        let socket = socket_on("127.0.0.2");
        let mut sent = 0u64;
        let mut tci = 0u16;
        while !stop.load(Ordering::SeqCst) {
            tci = if tci >= 0x3FFF { 1 } else { tci + 1 };
            let contents = match tci % 5 {
                0 => get_response(image(true, true, true, "V2.0")),
                1 => Contents::DownloadSectionResponse(DownloadSectionResponse {
                    result: ResultCode::Success,
                    section_number: 31,
                }),
                2 => Contents::EndSoftwareDownloadResponse(EndSoftwareDownloadResponse {
                    result: ResultCode::Success,
                    instances: [InstanceResult {
                        me_instance: 1,
                        result: ResultCode::Success,
                    }]
                    .into_iter()
                    .collect(),
                }),
                3 => Contents::ActivateSoftwareResponse {
                    result: ResultCode::Success,
                },
                _ => Contents::CommitSoftwareResponse {
                    result: ResultCode::Success,
                },
            };
            let me = sw(u16::from(tci.is_multiple_of(2)));
            if socket
                .send_to(&answer(1, Tci(tci), me, contents), olt)
                .is_ok()
            {
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        sent
    }
}

#[test]
fn answers_from_a_stranger_are_dropped_and_the_real_onu_is_upgraded() {
    let bench = Bench::new();
    let olt_addr = free_addr();
    let onu_addr = free_addr();
    let _onu = bench.start_onu(onu_addr, SocketAddr::V4(olt_addr), "239.255.11.2:47302");
    // Let the process bind its socket (an OLT that starts first only retries sooner).
    std::thread::sleep(Duration::from_millis(500));
    let spray = Background::spawn(stranger(olt_addr));
    let (code, report, output) = bench.rollout(
        olt_addr,
        &[
            format!("--onus=1@{onu_addr}"),
            "--group=239.255.11.2:47302".into(),
        ],
    );
    let sent = spray.finish();
    let why = format!("{output}\nstranger sent {sent}\nreport: {report:#?}");
    assert_eq!(onu_report(&report, 1).result, OnuResult::Upgraded, "{why}");
    let drops = &report.totals.drops;
    assert!(
        drops.unknown_sender > 0 && drops.unknown_sender <= sent,
        "every datagram of the stranger the OLT heard is counted: {why}"
    );
    assert_eq!(drops.wrong_onu_id, 0, "{why}");
    assert_eq!(code, 0, "{why}");
    // The flash agrees: V2.0 committed and active.
    let out = onu()
        .args(["status", "--json"])
        .arg(format!("--state-dir={}", bench.path("onu")))
        .arg(format!("--public-key={}", bench.path("lab.pub")))
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed = s["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["committed"] == true)
        .unwrap_or_else(|| panic!("{s}"));
    assert_eq!(committed["version"], "V2.0", "{s}");
}

// ---------------------------------------------------------------------------------------------
// 3. Impossible states.

/// What a scripted ONU claims.
#[derive(Clone, Debug)]
enum Script {
    /// Gets answer these two images, whatever happens; nothing else is answered.
    Claims([SoftwareImageAttributes; 2]),
    /// A download that goes as it should (image 0 V1.0 runs committed; Start, windows, End and
    /// Activate succeed), until after the reboot the Gets claim both images active.
    BothActiveAfterReboot,
}

/// What the fake ONU received: the message type byte of every frame, in order.
type Received = Vec<u8>;

/// A fake ONU 1 on `socket` that answers as `script` says, to whoever asked.
fn fake_onu(socket: UdpSocket, script: Script) -> impl FnOnce(Arc<AtomicBool>) -> Received {
    move |stop| {
        let codec = codec();
        let mut received = Vec::new();
        let mut buf = [0u8; 2048];
        // The images as this ONU says they are, for the download script.
        let mut images = [
            image(true, true, true, "V1.0"),
            image(false, false, false, ""),
        ];
        while !stop.load(Ordering::SeqCst) {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok((_, frame)) = Envelope::parse(&buf[..n]) else {
                continue;
            };
            if let Some(&mt) = frame.get(2) {
                received.push(mt);
            }
            let Ok(msg) = codec.parse(frame) else {
                continue;
            };
            let instance = msg.me.instance;
            let reply = match (&script, &msg.contents) {
                // Who it is (ONU-G): an ME this fake does not have, as G.988 answers that.
                (_, Contents::GetRequest(_)) if msg.me.class != MeClass::SOFTWARE_IMAGE => {
                    Some(Contents::GetResponse(GetResponse {
                        result: ResultCode::UnknownMe,
                        attributes: AttributeValues::Raw {
                            attribute_mask: 0,
                            values: std::borrow::Cow::Owned(vec![0; 25]),
                        },
                        optional_attribute_mask: 0,
                        attribute_execution_mask: 0,
                    }))
                }
                (Script::Claims(claims), Contents::GetRequest(_))
                    if msg.me.class == MeClass::SOFTWARE_IMAGE && instance <= 1 =>
                {
                    Some(get_response(claims[usize::from(instance)].clone()))
                }
                (Script::Claims(_), _) => None,
                (Script::BothActiveAfterReboot, c) => match c {
                    Contents::GetRequest(_)
                        if msg.me.class == MeClass::SOFTWARE_IMAGE && instance <= 1 =>
                    {
                        Some(get_response(images[usize::from(instance)].clone()))
                    }
                    Contents::StartSoftwareDownloadRequest(r) => Some(
                        Contents::StartSoftwareDownloadResponse(StartSoftwareDownloadResponse {
                            result: ResultCode::Success,
                            window_size_minus_one: r.window_size_minus_one,
                            instances: r
                                .instances
                                .iter()
                                .map(|&me_instance| InstanceResult {
                                    me_instance,
                                    result: ResultCode::Success,
                                })
                                .collect(),
                        }),
                    ),
                    Contents::DownloadSectionRequest(r) if msg.ar => {
                        Some(Contents::DownloadSectionResponse(DownloadSectionResponse {
                            result: ResultCode::Success,
                            section_number: r.section_number,
                        }))
                    }
                    Contents::EndSoftwareDownloadRequest(r) => {
                        images[1] = image(false, false, true, "V2.0");
                        Some(Contents::EndSoftwareDownloadResponse(
                            EndSoftwareDownloadResponse {
                                result: ResultCode::Success,
                                instances: r
                                    .instances
                                    .iter()
                                    .map(|&me_instance| InstanceResult {
                                        me_instance,
                                        result: ResultCode::Success,
                                    })
                                    .collect(),
                            },
                        ))
                    }
                    Contents::ActivateSoftwareRequest(_) => {
                        // "Rebooted" into image 1, and (the lie) image 0 still runs too.
                        images[1] = image(false, true, true, "V2.0");
                        images[0] = image(true, true, true, "V1.0");
                        Some(Contents::ActivateSoftwareResponse {
                            result: ResultCode::Success,
                        })
                    }
                    Contents::CommitSoftwareRequest => Some(Contents::CommitSoftwareResponse {
                        result: ResultCode::Success,
                    }),
                    _ => None,
                },
            };
            if let Some(contents) = reply {
                let _ = socket.send_to(&answer(1, msg.tci, msg.me, contents), from);
            }
        }
        received
    }
}

/// How a rollout at a fake ONU ended.
struct Faked {
    /// The OLT's exit code.
    code: i32,
    /// The fake ONU's line of the report.
    onu: OnuReport,
    /// What the fake received.
    received: Received,
    /// Everything, for a failing assertion's message.
    why: String,
}

/// Runs `olt rollout` at a fake ONU playing `script`.
fn rollout_at_fake(script: Script, group: &str) -> Faked {
    let bench = Bench::new();
    let socket = socket_on("127.0.0.1");
    let fake_addr = v4(socket.local_addr().unwrap());
    let fake = Background::spawn(fake_onu(socket, script));
    let (code, report, output) = bench.rollout(
        free_addr(),
        &[format!("--onus=1@{fake_addr}"), format!("--group={group}")],
    );
    let received = fake.finish();
    let why = format!("{output}\nreceived {received:02x?}\nreport: {report:#?}");
    Faked {
        code,
        onu: onu_report(&report, 1).clone(),
        received,
        why,
    }
}

impl Faked {
    /// The ONU failed for an impossible state (the reason names `what`), was never sent
    /// Commit, and the OLT exited 1.
    fn assert_impossible(&self, what: &str) {
        let why = &self.why;
        assert_eq!(self.onu.result, OnuResult::Failed, "{why}");
        assert!(
            self.onu
                .reason
                .starts_with("impossible software image state:"),
            "{why}"
        );
        assert!(self.onu.reason.contains(what), "{what}: {why}");
        assert!(self.sent(0x49), "the fake was asked (Get): {why}");
        assert!(
            !self.sent(COMMIT_WITH_AR),
            "Commit sent to an ONU in an impossible state: {why}"
        );
        assert_eq!(self.code, 1, "an ONU failed: {why}");
    }

    /// The fake received a frame of message type byte `mt`.
    fn sent(&self, mt: u8) -> bool {
        self.received.contains(&mt)
    }
}

#[test]
fn an_onu_claiming_both_images_committed_and_active_fails_untouched() {
    let faked = rollout_at_fake(
        Script::Claims([
            image(true, true, true, "V1.0"),
            image(true, true, true, "V1.1"),
        ]),
        "239.255.11.3:47303",
    );
    faked.assert_impossible("both images are committed");
    assert!(
        !faked.sent(START_WITH_AR),
        "Start software download sent to an ONU in an impossible state: {}",
        faked.why
    );
}

#[test]
fn an_onu_claiming_an_active_image_that_is_not_valid_fails_untouched() {
    let faked = rollout_at_fake(
        Script::Claims([
            image(false, true, false, "V2.0"),
            image(true, false, true, "V1.0"),
        ]),
        "239.255.11.4:47304",
    );
    faked.assert_impossible("image 0 is active but not valid");
    assert!(
        !faked.sent(START_WITH_AR),
        "Start software download sent to an ONU in an impossible state: {}",
        faked.why
    );
}

#[test]
fn an_onu_claiming_both_images_active_after_the_reboot_is_never_committed() {
    let faked = rollout_at_fake(Script::BothActiveAfterReboot, "239.255.11.5:47305");
    // It got as far as the reboot: Start, End and Activate (with AR) were sent.
    for mt in [START_WITH_AR, 0x55, 0x56] {
        assert!(faked.sent(mt), "{mt:#04x} was sent: {}", faked.why);
    }
    faked.assert_impossible("both images are active");
}
