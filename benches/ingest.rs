//! Ingest: demux + decode to Y planes through `FfmpegOpener`, on the bundled sample clips
//! (checked-in H.264 at 720p and 1080p, GOP 2 s, no B-frames, camera-like bitrates), with and
//! without keeping the encoded packets for the pre-roll ring. Throughput is reported in frames.
//!
//! The whole-process comparison with the ffmpeg CLI is `fallwatch bench decode CLIP`.

use std::path::{Path, PathBuf};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use fallwatch::evidence::EvidenceConfig;
use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};

fn clip(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_clips")
        .join(name)
}

/// Decodes the whole clip; touches one pixel per row of every frame; returns the frame count.
fn ingest(path: &Path, keep_packets: bool) -> u64 {
    let mut spec = SourceSpec::new(path.to_string_lossy());
    spec.keep_packets = keep_packets;
    let mut source = FfmpegOpener
        .open(&spec, &Cancel::new())
        .expect("open sample clip");
    let ring = EvidenceConfig::default().new_ring();
    let (mut frames, mut sum) = (0u64, 0u64);
    while let Some(item) = source.next_item().expect("decode") {
        match item {
            Item::Frame(f) => {
                let y = f.luma();
                sum += (0..y.height())
                    .map(|r| u64::from(y.row(r)[r % y.width()]))
                    .sum::<u64>();
                frames += 1;
            }
            Item::Packet(p) => ring.lock().unwrap().push(p),
        }
    }
    std::hint::black_box(sum);
    frames
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    for (label, name) in [("720p", "tiny-720p.mp4"), ("1080p", "day-drop-bottle.mp4")] {
        let path = clip(name);
        let frames = ingest(&path, false);
        g.throughput(Throughput::Elements(frames));
        g.bench_with_input(BenchmarkId::new("decode_y", label), &path, |b, p| {
            b.iter(|| ingest(p, false))
        });
        g.bench_with_input(
            BenchmarkId::new("decode_y_and_ring", label),
            &path,
            |b, p| b.iter(|| ingest(p, true)),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
