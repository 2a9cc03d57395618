//! The ONU's MIB as an OLT reads it at activation (G.988 I.1.2): MIB reset, MIB upload and
//! MIB upload next until done, Get all alarms and Get all alarms next, each request and answer
//! through the codec, baseline and extended. The upload holds every ME of the MIB, each as a
//! Get shows it, and its software images follow the flash through an upgrade.

mod harness;

use std::collections::BTreeSet;

use harness::*;
use omci_codec::contents::*;
use omci_codec::envelope::Envelope;
use omci_codec::software_image::SoftwareImageAttributes;
use omci_codec::{Format, MeClass, MeId, Message, ResultCode};

fn onu_data() -> MeId {
    MeId::new(MeClass::ONU_DATA, 0)
}

/// The one answer to `contents` on `me`, in `format`.
fn ask(lab: &mut Lab, format: Format, me: MeId, contents: Contents<'_>) -> Message<'static> {
    let msg = Message::new(lab.next_tci(), format, me, contents);
    let mut r = lab.send_with(Envelope::omcc(ONU), &msg);
    assert_eq!(r.len(), 1, "one answer to {msg:?}: {r:?}");
    r.remove(0)
}

/// MIB upload, then MIB upload next 0.. as many as announced, in `format`: the records, each
/// command answered with one record of an ME (never class 0); one more command past the end
/// is answered with no ME.
fn upload(lab: &mut Lab, format: Format) -> Vec<MibUploadRecord<'static>> {
    let n = match ask(lab, format, onu_data(), Contents::MibUploadRequest).contents {
        Contents::MibUploadResponse(r) => r.subsequent_commands,
        other => panic!("MIB upload: {other:?}"),
    };
    assert!(n > 0 && n < 100, "{n} commands");
    let next = |lab: &mut Lab, k: u16| match ask(
        lab,
        format,
        onu_data(),
        Contents::MibUploadNextRequest(NextRequest {
            command_sequence_number: k,
        }),
    )
    .contents
    {
        Contents::MibUploadNextResponse(r) => r.records,
        other => panic!("MIB upload next {k}: {other:?}"),
    };
    let mut records = Vec::new();
    for k in 0..n {
        let r = next(lab, k);
        assert_eq!(r.len(), 1, "MIB upload next {k}: {r:?}");
        assert_ne!(r[0].me.class, MeClass(0), "MIB upload next {k}: {r:?}");
        if format == Format::Baseline {
            assert_eq!(r[0].values.len(), BASELINE_MIB_UPLOAD_VALUES_LEN);
        }
        records.extend(r);
    }
    let past = next(lab, n);
    assert!(
        matches!(&past[..], [one] if one.me.class == MeClass(0) && one.attribute_mask == 0),
        "{past:?}"
    );
    records
}

/// The software image `instance` as the upload has it, its records merged.
fn uploaded_image(records: &[MibUploadRecord<'_>], instance: u16) -> SoftwareImageAttributes {
    let mut m = SoftwareImageAttributes::default();
    for r in records
        .iter()
        .filter(|r| r.me == MeId::new(MeClass::SOFTWARE_IMAGE, instance))
    {
        let (a, _) = SoftwareImageAttributes::decode(r.attribute_mask, &r.values)
            .expect("a software image record that decodes");
        m.version = m.version.or(a.version);
        m.is_committed = m.is_committed.or(a.is_committed);
        m.is_active = m.is_active.or(a.is_active);
        m.is_valid = m.is_valid.or(a.is_valid);
        m.product_code = m.product_code.or(a.product_code);
        m.image_hash = m.image_hash.or(a.image_hash);
    }
    m
}

/// Every attribute of software image `image`, by Get: the flags and version in a baseline
/// Get, product code and image hash (41 bytes) in an extended one.
fn get_image(lab: &mut Lab, image: u8) -> SoftwareImageAttributes {
    let mut a = lab.get_sw(image);
    let r = ask(
        lab,
        Format::Extended,
        sw(image),
        Contents::GetRequest(GetRequest {
            attribute_mask: 0x0C00,
        }),
    );
    match r.contents {
        Contents::GetResponse(GetResponse {
            result: ResultCode::Success,
            attributes: AttributeValues::SoftwareImage(b),
            ..
        }) => {
            a.product_code = b.product_code;
            a.image_hash = b.image_hash;
        }
        other => panic!("Get software image {image}, product code and hash: {other:?}"),
    }
    a
}

/// The software images in the upload are both instances as Get shows them, attribute for
/// attribute, and as the flash has them (its metadata: the committed slot, each slot's version
/// and validity; the running slot).
fn assert_images_match(lab: &mut Lab, records: &[MibUploadRecord<'_>]) {
    for image in 0..2u8 {
        let got = get_image(lab, image);
        let up = uploaded_image(records, u16::from(image));
        assert_eq!(up, got, "software image {image}");
        let onu = lab.onu();
        let running = onu.running();
        let meta = onu.metadata().clone();
        let slot = &meta.slots[usize::from(image)];
        assert_eq!(
            (up.is_committed, up.is_active, up.is_valid, up.version),
            (
                Some(meta.committed == image),
                Some(running == image),
                Some(slot.valid),
                Some(slot.version)
            ),
            "software image {image} against the flash"
        );
        assert!(up.version.is_some() && up.product_code.is_some() && up.image_hash.is_some());
    }
}

#[test]
fn a_mib_upload_reads_back_every_me_each_as_get_shows_it() {
    let mut lab = Lab::new();
    let extended = upload(&mut lab, Format::Extended);
    let mes: BTreeSet<(u16, u16)> = extended
        .iter()
        .map(|r| (r.me.class.0, r.me.instance))
        .collect();
    assert_eq!(
        mes,
        BTreeSet::from([
            (2, 0),        // ONU data
            (6, 0x0180),   // circuit pack of the PON interface
            (7, 0),        // software image 0
            (7, 1),        // software image 1
            (256, 0),      // ONU-G
            (257, 0),      // ONU2-G
            (263, 0x8001), // ANI-G
        ])
    );
    // Each record's attributes are what an extended Get of the same mask answers, byte for
    // byte (software images compared typed, as the codec decodes their Get).
    for r in &extended {
        let a = ask(
            &mut lab,
            Format::Extended,
            r.me,
            Contents::GetRequest(GetRequest {
                attribute_mask: r.attribute_mask,
            }),
        );
        let Contents::GetResponse(g) = a.contents else {
            panic!("Get {}: {a:?}", r.me)
        };
        assert_eq!(g.result, ResultCode::Success, "Get {}", r.me);
        match g.attributes {
            AttributeValues::SoftwareImage(s) => {
                let (up, _) = SoftwareImageAttributes::decode(r.attribute_mask, &r.values).unwrap();
                assert_eq!(*s, up, "{}", r.me);
            }
            AttributeValues::Raw {
                attribute_mask,
                values,
            } => {
                assert_eq!(attribute_mask, r.attribute_mask, "{}", r.me);
                assert_eq!(&values[..], &r.values[..], "{}", r.me);
            }
        }
    }
    // The baseline upload is the same records, padded to the 26-byte area.
    let baseline = upload(&mut lab, Format::Baseline);
    assert_eq!(baseline.len(), extended.len());
    for (b, e) in baseline.iter().zip(&extended) {
        assert_eq!((b.me, b.attribute_mask), (e.me, e.attribute_mask));
        assert_eq!(&b.values[..e.values.len()], &e.values[..]);
        assert!(b.values[e.values.len()..].iter().all(|x| *x == 0));
    }
    // ONU-G and ONU2-G carry the ONU's identity.
    let onu_g = extended
        .iter()
        .find(|r| r.me == MeId::new(MeClass::ONU_G, 0))
        .unwrap();
    assert_eq!(onu_g.attribute_mask, 0xE000);
    assert_eq!(&onu_g.values[..4], b"LABS");
    assert_eq!(&onu_g.values[4..6], b"V1");
}

#[test]
fn the_uploaded_software_images_follow_the_flash_through_an_upgrade() {
    let mut lab = Lab::new();
    let before = upload(&mut lab, Format::Baseline);
    assert_images_match(&mut lab, &before);
    assert_eq!(
        uploaded_image(&before, 1).is_valid,
        Some(false),
        "image 1 is empty"
    );
    // S3: image 1 downloaded, valid, standby.
    let v2 = image("V2", 2, 2000);
    assert_eq!(lab.download(1, &v2, 16), ResultCode::Success);
    let s3 = upload(&mut lab, Format::Extended);
    assert_images_match(&mut lab, &s3);
    assert_eq!(uploaded_image(&s3, 1).is_valid, Some(true));
    // S4, then committed (S1'), then after a power cycle.
    assert_eq!(lab.activate(1, 0), ResultCode::Success);
    let s4 = upload(&mut lab, Format::Baseline);
    assert_images_match(&mut lab, &s4);
    assert_eq!(uploaded_image(&s4, 1).is_active, Some(true));
    assert_eq!(uploaded_image(&s4, 1).is_committed, Some(false));
    assert_eq!(lab.commit(1), ResultCode::Success);
    lab.power_cycle();
    let after = upload(&mut lab, Format::Baseline);
    assert_images_match(&mut lab, &after);
    let img1 = uploaded_image(&after, 1);
    assert_eq!(
        (img1.is_committed, img1.is_active, img1.is_valid),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(&img1.version.unwrap()[..2], b"V2");
    assert_eq!(uploaded_image(&after, 0).is_committed, Some(false));
    assert_ne!(before, after);
}

#[test]
fn mib_reset_zeroes_the_sync_and_a_snapshot_stays_as_it_was_taken() {
    let mut lab = Lab::new();
    let sync = |lab: &mut Lab| match ask(
        lab,
        Format::Baseline,
        onu_data(),
        Contents::GetRequest(GetRequest {
            attribute_mask: 0x8000,
        }),
    )
    .contents
    {
        Contents::GetResponse(GetResponse {
            result: ResultCode::Success,
            attributes: AttributeValues::Raw { values, .. },
            ..
        }) => values[0],
        other => panic!("Get ONU data: {other:?}"),
    };
    assert_eq!(sync(&mut lab), 0);
    assert_eq!(
        lab.result_of(onu_data(), Contents::MibResetRequest),
        ResultCode::Success
    );
    assert_eq!(sync(&mut lab), 0);
    // MIB reset elsewhere than ONU data: unknown ME / unknown instance, as it has a result.
    assert_eq!(
        lab.result_of(MeId::new(MeClass::ONU_G, 0), Contents::MibResetRequest),
        ResultCode::UnknownMe
    );
    assert_eq!(
        lab.result_of(MeId::new(MeClass::ONU_DATA, 1), Contents::MibResetRequest),
        ResultCode::UnknownInstance
    );
    // MIB upload elsewhere: its response has no result field, so no answer, a counted drop.
    let dropped = lab.onu().counters().dropped;
    let r = lab.request(MeId::new(MeClass::ONU_G, 0), Contents::MibUploadRequest);
    assert!(r.is_empty(), "{r:?}");
    assert_eq!(lab.onu().counters().dropped, dropped + 1);
    // MIB upload next before any MIB upload: no ME.
    let r = ask(
        &mut lab,
        Format::Baseline,
        onu_data(),
        Contents::MibUploadNextRequest(NextRequest {
            command_sequence_number: 0,
        }),
    );
    assert!(
        matches!(&r.contents, Contents::MibUploadNextResponse(n) if n.records[0].me.class == MeClass(0)),
        "{r:?}"
    );
}

#[test]
fn get_all_alarms_announces_no_alarm_and_next_names_no_me() {
    let mut lab = Lab::new();
    for format in [Format::Baseline, Format::Extended] {
        for mode in [0, 1] {
            let r = ask(
                &mut lab,
                format,
                onu_data(),
                Contents::GetAllAlarmsRequest(GetAllAlarmsRequest {
                    alarm_retrieval_mode: mode,
                }),
            );
            assert!(
                matches!(
                    r.contents,
                    Contents::GetAllAlarmsResponse(GetAllAlarmsResponse {
                        subsequent_commands: 0
                    })
                ),
                "{r:?}"
            );
            let r = ask(
                &mut lab,
                format,
                onu_data(),
                Contents::GetAllAlarmsNextRequest(NextRequest {
                    command_sequence_number: 0,
                }),
            );
            match r.contents {
                Contents::GetAllAlarmsNextResponse(n) => {
                    assert_eq!(n.records.len(), 1);
                    assert_eq!(n.records[0].me, MeId::new(MeClass(0), 0));
                    assert!(n.records[0].bitmap.iter().all(|b| *b == 0));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
