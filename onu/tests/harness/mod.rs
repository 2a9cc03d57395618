//! An OLT in a test: builds frames with the codec, passes them to an ONU core with a simulated
//! clock, and reboots or power-cycles the ONU from the same flash.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use omci_codec::contents::*;
use omci_codec::crc::crc32_bzip2;
use omci_codec::envelope::{ALL_ONUS, Envelope};
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{
    Codec, ExtendedTrailer, Format, GemPort, MeClass, MeId, Message, OnuId, ResultCode, Tci,
    WindowNo,
};
use onu::boot::BootError;
use onu::core::{Onu, OnuConfig, OnuEvent};
use onu::faults::{FaultPoint, Faults, PowerLossPlan};
use onu::flash::{Flash, MemFlash};
use pon::firmware::{BuildSpec, build, deterministic_payload};

pub const MODEL: &str = "LAB-ONU-1";
pub const ONU: OnuId = OnuId(7);

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

pub fn image(version: &str, security_version: u32, payload_len: usize) -> Vec<u8> {
    image_with(MODEL, version, security_version, payload_len, false, &key())
}

pub fn image_with(
    model: &str,
    version: &str,
    security_version: u32,
    payload_len: usize,
    fails_to_boot: bool,
    key: &SigningKey,
) -> Vec<u8> {
    let spec = BuildSpec {
        model: model.into(),
        version: version.into(),
        security_version,
        build: 1,
        fails_to_boot,
    };
    build(&spec, &deterministic_payload(version, payload_len), key).unwrap()
}

pub struct Lab<F: Flash = MemFlash> {
    pub cfg: OnuConfig,
    pub onu: Option<Onu<F>>,
    /// The flash of an ONU whose boot was cut short (a power cut during the bootloader).
    pub down: Option<F>,
    pub now: Instant,
    pub tci: u16,
    pub faults: Faults,
    /// Attribute value change notifications received.
    pub notifications: Vec<Message<'static>>,
    /// Every event the ONU reported.
    pub events: Vec<OnuEvent>,
    /// The envelope of every datagram the ONU sent, in order.
    pub envelopes: Vec<Envelope>,
    pub codec: Codec,
}

impl Default for Lab<MemFlash> {
    fn default() -> Self {
        Lab::new()
    }
}

impl Lab<MemFlash> {
    /// An ONU booted from a factory-fresh flash with golden image V1 (security version 1).
    pub fn new() -> Lab {
        Lab::with(|_| {})
    }

    pub fn with(tune: impl FnOnce(&mut OnuConfig)) -> Lab {
        Lab::on_flash(tune, MemFlash::default())
    }
}

impl<F: Flash + Clone> Lab<F> {
    /// An ONU booted from `flash` (a fresh one gets golden image V1).
    pub fn on_flash(tune: impl FnOnce(&mut OnuConfig), flash: F) -> Lab<F> {
        let mut cfg = OnuConfig::lab(ONU, MODEL, key().verifying_key());
        cfg.golden = Some(image("V1", 1, 500).into());
        cfg.busy_duration = Duration::from_millis(300);
        tune(&mut cfg);
        let mut lab = Lab {
            codec: Codec::new(cfg.extended_trailer.clone()),
            cfg,
            onu: None,
            down: None,
            now: Instant::now(),
            tci: 0,
            faults: Faults::none(),
            notifications: Vec::new(),
            events: Vec::new(),
            envelopes: Vec::new(),
        };
        lab.boot_from(flash);
        lab
    }

    pub fn onu(&mut self) -> &mut Onu<F> {
        self.onu.as_mut().expect("the ONU is up")
    }

    /// Boots (as often as a failing image needs) from `flash`.
    pub fn boot_from(&mut self, mut flash: F) {
        for _ in 0..10 {
            match Onu::boot(self.cfg.clone(), flash, std::mem::take(&mut self.faults)) {
                Ok(onu) => {
                    self.onu = Some(onu);
                    self.drain();
                    return;
                }
                Err((f, plan, BootError::ImageFailed { .. })) => {
                    flash = f;
                    self.faults = plan;
                }
                Err((f, _, BootError::Io(_))) => {
                    // The power went during the bootloader's own writes.
                    self.down = Some(f);
                    return;
                }
                Err((_, _, e)) => panic!("unbootable: {e}"),
            }
        }
        panic!("boot loop");
    }

    /// Cuts the power at `point` (its `occurrence`-th time) from now on.
    pub fn plan_power_loss(&mut self, point: FaultPoint, occurrence: u32) {
        let faults = Faults::power_loss(PowerLossPlan { point, occurrence });
        match self.onu.take() {
            // Faults live in the core: re-arm it by power-cycling into the same flash.
            Some(onu) => {
                self.faults = faults;
                let flash = onu.into_flash();
                self.boot_from(flash);
            }
            None => self.faults = faults,
        }
    }

    /// Power off and on: whatever state, the flash stays.
    pub fn power_cycle(&mut self) {
        let flash = self.onu.take().expect("an ONU").into_flash();
        self.boot_from(flash);
    }

    pub fn flash(&mut self) -> F {
        match &self.onu {
            Some(onu) => onu.flash().clone(),
            None => self.down.clone().expect("an ONU or its flash"),
        }
    }

    pub fn is_dead(&self) -> Option<FaultPoint> {
        self.onu.as_ref().and_then(|o| o.power_lost())
    }

    /// True when the ONU answers nothing more: its power was cut, or its boot was.
    pub fn stopped(&self) -> bool {
        self.onu.as_ref().is_none_or(|o| o.power_lost().is_some())
    }

    /// Collects what the ONU sent and reported; reboots it if it asked to.
    fn drain(&mut self) -> Vec<Message<'static>> {
        let mut responses = Vec::new();
        let onu = self.onu.as_mut().unwrap();
        while let Some(d) = onu.poll_transmit() {
            let (env, frame) = Envelope::parse(&d).unwrap();
            assert_eq!(env.onu_id, ONU);
            self.envelopes.push(env);
            let msg = self.codec.parse(frame).unwrap().into_owned();
            if msg.message_type().is_notification() {
                self.notifications.push(msg);
            } else {
                responses.push(msg);
            }
        }
        while let Some(e) = onu.poll_event() {
            self.events.push(e);
        }
        if onu.reboot_requested() && onu.power_lost().is_none() {
            let (flash, faults) = self.onu.take().unwrap().into_parts();
            self.faults = faults;
            self.boot_from(flash);
        }
        responses
    }

    pub fn next_tci(&mut self) -> Tci {
        self.tci = self.tci.wrapping_add(1);
        Tci(self.tci)
    }

    /// Sends one datagram; returns the responses.
    pub fn send_datagram(&mut self, datagram: &[u8]) -> Vec<Message<'static>> {
        if self.onu.is_none() {
            return Vec::new();
        }
        let now = self.now;
        self.onu().handle_datagram(now, datagram);
        self.drain()
    }

    pub fn send_with(&mut self, env: Envelope, msg: &Message<'_>) -> Vec<Message<'static>> {
        let frame = self.codec.to_vec(msg).unwrap();
        self.send_datagram(&env.wrap(&frame))
    }

    pub fn request(&mut self, me: MeId, contents: Contents<'_>) -> Vec<Message<'static>> {
        let msg = Message::new(self.next_tci(), Format::Baseline, me, contents);
        self.send_with(Envelope::omcc(ONU), &msg)
    }

    /// Sends a request and returns its one response's result.
    pub fn result_of(&mut self, me: MeId, contents: Contents<'_>) -> ResultCode {
        self.try_result_of(me, contents).expect("one response")
    }

    /// The result of a request's one response; `None` when it got no answer.
    pub fn try_result_of(&mut self, me: MeId, contents: Contents<'_>) -> Option<ResultCode> {
        let r = self.request(me, contents);
        assert!(r.len() <= 1, "at most one response expected, got {r:?}");
        r.first()
            .map(|m| m.contents.result().expect("a response with a result"))
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.onu.is_none() {
            return;
        }
        let now = self.now;
        self.onu().handle_timeout(now);
        self.drain();
    }

    pub fn get_sw(&mut self, image: u8) -> SoftwareImageAttributes {
        let r = self.request(
            sw(image),
            Contents::GetRequest(GetRequest {
                attribute_mask: 0xF000,
            }),
        );
        match &r[0].contents {
            Contents::GetResponse(GetResponse {
                result: ResultCode::Success,
                attributes: AttributeValues::SoftwareImage(a),
                ..
            }) => (**a).clone(),
            other => panic!("Get software image {image}: {other:?}"),
        }
    }

    /// (committed, active, valid) of image 0 and image 1, as Get reports them.
    pub fn state(&mut self) -> [(bool, bool, bool); 2] {
        [0, 1].map(|i| {
            let a = self.get_sw(i);
            (
                a.is_committed.unwrap(),
                a.is_active.unwrap(),
                a.is_valid.unwrap(),
            )
        })
    }

    pub fn version(&mut self, image: u8) -> String {
        let v = self.get_sw(image).version.unwrap();
        String::from_utf8_lossy(&v)
            .trim_end_matches('\0')
            .to_string()
    }

    pub fn start(&mut self, image: u8, size: usize, window: u16) -> Message<'static> {
        self.try_start(image, size, window)
            .expect("a Start response")
    }

    /// Start software download; `None` when the ONU did not answer (power cut).
    pub fn try_start(&mut self, image: u8, size: usize, window: u16) -> Option<Message<'static>> {
        let r = self.request(
            sw(image),
            Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                window_size_minus_one: (window - 1) as u8,
                image_size: size as u32,
                instances: [sw(image).instance].into_iter().collect(),
            }),
        );
        r.into_iter().next()
    }

    /// A baseline Download section of `data` (at most 31 bytes, zero padded).
    pub fn section(&mut self, image: u8, n: u8, data: &[u8], ar: bool) -> Message<'static> {
        let mut d = data.to_vec();
        d.resize(31, 0);
        Message::new(
            self.next_tci(),
            Format::Baseline,
            sw(image),
            Contents::DownloadSectionRequest(DownloadSectionRequest {
                section_number: n,
                data: Cow::Owned(d),
            }),
        )
        .with_ar(ar)
    }

    /// Sends window `w` of `img` (sections `skip` left out), unicast, as the lab's OLT does:
    /// the window number in every envelope, the window CRC in the AR section's; returns the AR
    /// section's response result (None if the AR section was skipped or dropped).
    pub fn send_window(
        &mut self,
        image: u8,
        img: &[u8],
        window: u16,
        w: u32,
        skip: &[u8],
    ) -> Option<ResultCode> {
        let chunks: Vec<&[u8]> = img.chunks(31).collect();
        let first = w as usize * window as usize;
        let last = (first + window as usize).min(chunks.len());
        let mut result = None;
        for (i, chunk) in chunks[first..last].iter().enumerate() {
            if skip.contains(&(i as u8)) {
                continue;
            }
            let ar = first + i + 1 == last;
            let msg = self.section(image, i as u8, chunk, ar);
            let crc = crc32_bzip2(&img[first * 31..(last * 31).min(img.len())]);
            let env = Envelope {
                window_no: Some(WindowNo(w)),
                window_crc: ar.then_some(crc),
                ..Envelope::omcc(ONU)
            };
            let r = self.send_with(env, &msg);
            if ar {
                result = r.first().and_then(|m| m.contents.result());
            }
        }
        result
    }

    pub fn end(&mut self, image: u8, img: &[u8]) -> ResultCode {
        self.end_with(image, crc32_bzip2(img), img.len() as u32)
    }

    pub fn end_with(&mut self, image: u8, crc: u32, size: u32) -> ResultCode {
        self.try_end_with(image, crc, size)
            .expect("an End response")
    }

    pub fn try_end_with(&mut self, image: u8, crc: u32, size: u32) -> Option<ResultCode> {
        self.try_result_of(
            sw(image),
            Contents::EndSoftwareDownloadRequest(EndSoftwareDownloadRequest {
                crc,
                image_size: size,
                instances: [sw(image).instance].into_iter().collect(),
            }),
        )
    }

    /// Start, every window, End until it stops answering busy. Returns End's last result.
    pub fn download(&mut self, image: u8, img: &[u8], window: u16) -> ResultCode {
        let start = self.start(image, img.len(), window);
        assert_eq!(
            start.contents.result(),
            Some(ResultCode::Success),
            "{start:?}"
        );
        let window = match &start.contents {
            Contents::StartSoftwareDownloadResponse(r) => r.window_size(),
            _ => unreachable!(),
        };
        let windows = img.len().div_ceil(31 * window as usize) as u32;
        for w in 0..windows {
            assert_eq!(
                self.send_window(image, img, window, w, &[]),
                Some(ResultCode::Success)
            );
        }
        self.finish_end(image, img)
    }

    pub fn finish_end(&mut self, image: u8, img: &[u8]) -> ResultCode {
        for _ in 0..20 {
            match self.end(image, img) {
                ResultCode::DeviceBusy => self.advance(Duration::from_millis(100)),
                other => return other,
            }
        }
        panic!("End stayed busy");
    }

    pub fn activate(&mut self, image: u8, flags: u8) -> ResultCode {
        self.try_activate(image, flags)
            .expect("an Activate response")
    }

    pub fn try_activate(&mut self, image: u8, flags: u8) -> Option<ResultCode> {
        self.try_result_of(
            sw(image),
            Contents::ActivateSoftwareRequest(ActivateSoftwareRequest {
                activate_flags: flags,
            }),
        )
    }

    pub fn commit(&mut self, image: u8) -> ResultCode {
        self.try_commit(image).expect("a Commit response")
    }

    pub fn try_commit(&mut self, image: u8) -> Option<ResultCode> {
        self.try_result_of(sw(image), Contents::CommitSoftwareRequest)
    }

    /// A whole upgrade of `img` into `image`: download, activate, commit.
    pub fn upgrade(&mut self, image: u8, img: &[u8]) {
        assert_eq!(self.download(image, img, 16), ResultCode::Success);
        assert_eq!(self.activate(image, 0), ResultCode::Success);
        assert_eq!(self.commit(image), ResultCode::Success);
    }

    /// A multicast datagram on the download port.
    pub fn multicast(
        &mut self,
        w: u32,
        crc: Option<u32>,
        msg: &Message<'_>,
    ) -> Vec<Message<'static>> {
        let env = Envelope {
            onu_id: ALL_ONUS,
            gem_port: GemPort::MULTICAST_DOWNLOAD,
            window_no: Some(WindowNo(w)),
            window_crc: crc,
            missing: None,
        };
        self.send_with(env, msg)
    }
}

pub fn sw(image: u8) -> MeId {
    MeId::new(MeClass::SOFTWARE_IMAGE, u16::from(image))
}

pub fn codec() -> Codec {
    Codec::new(ExtendedTrailer::Crc32)
}
