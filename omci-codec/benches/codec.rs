//! Codec speed per frame: decode (trailer CRC checked, contents typed) and encode (trailer CRC
//! computed) of the frames a software download is made of.
//!
//! Run: `cargo bench -p omci-codec --bench codec`. Results are recorded in docs/benchmarks.md.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use omci_codec::contents::{
    AttributeValues, Contents, DownloadSectionRequest, GetResponse, StartSoftwareDownloadRequest,
};
use omci_codec::software_image::{SoftwareImageAttributes, string_attribute};
use omci_codec::{Codec, ExtendedTrailer, Format, MeClass, MeId, Message, ResultCode, Tci};

fn frames() -> Vec<(&'static str, Message<'static>, Codec)> {
    let me = MeId::new(MeClass::SOFTWARE_IMAGE, 1);
    let data: Vec<u8> = (0..31).collect();
    let big: Vec<u8> = (0..1965u32).map(|i| i as u8).collect();
    vec![
        (
            "download_section_baseline",
            Message::new(
                Tci(8),
                Format::Baseline,
                me,
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: 0xCC,
                    data: Cow::Owned(data),
                }),
            )
            .with_ar(false),
            Codec::default(),
        ),
        (
            "start_request_baseline",
            Message::new(
                Tci(4),
                Format::Baseline,
                me,
                Contents::StartSoftwareDownloadRequest(StartSoftwareDownloadRequest {
                    window_size_minus_one: 255,
                    image_size: 1_000_000,
                    instances: [1u16].into_iter().collect(),
                }),
            ),
            Codec::default(),
        ),
        (
            "get_response_baseline",
            Message::new(
                Tci(0x35e),
                Format::Baseline,
                me,
                Contents::GetResponse(GetResponse {
                    result: ResultCode::Success,
                    attributes: AttributeValues::SoftwareImage(Box::new(SoftwareImageAttributes {
                        version: Some(string_attribute("V2.1.0").unwrap()),
                        is_committed: Some(false),
                        is_active: Some(false),
                        is_valid: Some(true),
                        ..Default::default()
                    })),
                    optional_attribute_mask: 0,
                    attribute_execution_mask: 0,
                }),
            ),
            Codec::default(),
        ),
        (
            "download_section_extended_1965_crc",
            Message::new(
                Tci(8),
                Format::Extended,
                me,
                Contents::DownloadSectionRequest(DownloadSectionRequest {
                    section_number: 7,
                    data: Cow::Owned(big),
                }),
            )
            .with_ar(false),
            Codec::new(ExtendedTrailer::Crc32),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    for (name, message, codec) in frames() {
        let bytes = codec.to_vec(&message).unwrap();
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("decode", |b| {
            b.iter(|| {
                let m = codec.parse(black_box(&bytes)).unwrap();
                black_box(m);
            })
        });
        let mut buf = vec![0u8; bytes.len()];
        group.bench_function("encode", |b| {
            b.iter(|| {
                let n = codec.emit(black_box(&message), &mut buf).unwrap();
                black_box(&buf[..n]);
            })
        });
        group.finish();
    }
    // Where the SIMD engine starts to pay (SIMD_THRESHOLD), against the crate's own loop.
    use omci_codec::crc::{CRC32_BZIP2, crc32_bzip2_simd, crc32_bzip2_sliced};
    let mut group = c.benchmark_group("crc32_bzip2");
    for len in [44usize, 128, 192, 256, 512, 1975] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        group.bench_function(format!("sliced/{len}"), |b| {
            b.iter(|| black_box(crc32_bzip2_sliced(black_box(&data))))
        });
        group.bench_function(format!("simd/{len}"), |b| {
            b.iter(|| black_box(crc32_bzip2_simd(black_box(&data))))
        });
        group.bench_function(format!("crc_crate/{len}"), |b| {
            b.iter(|| black_box(CRC32_BZIP2.checksum(black_box(&data))))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
