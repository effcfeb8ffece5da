//! Evidence costs: muxing one clip by stream copy (8 s of a 4 Mbit/s camera), one snapshot
//! (decode from the keyframe, RGB, drawing, JPEG), one whole event directory (clip + snapshot +
//! event.json, fsynced, renamed), over 720p / 1080p / 1440p; and the pre-roll ring's memory per
//! camera at 4 Mbit/s with the default configuration (printed).
//!
//! Inputs are generated at bench start with the ffmpeg CLI (`testsrc2` plus sensor-like noise,
//! H.264, 25 fps, GOP 50, 4 Mbit/s, 14 s).

use std::sync::Arc;
use std::time::SystemTime;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fallwatch::clock::SimulatedClock;
use fallwatch::events::{Event, Origin, TrackPoint, event_id};
use fallwatch::evidence::testing::{TestClip, cut, read_packets, render_snapshot, write_clip};
use fallwatch::evidence::{EventInput, EvidenceConfig, EvidenceWriter, SnapshotOverlay};
use fallwatch::ingest::{Packet, StreamInfo};

const RESOLUTIONS: [(&str, u32, u32); 3] = [
    ("720p", 1280, 720),
    ("1080p", 1920, 1080),
    ("1440p", 2560, 1440),
];
const KBPS: u32 = 4000;

fn source(w: u32, h: u32) -> (StreamInfo, Vec<Packet>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.mp4");
    TestClip {
        width: w,
        height: h,
        fps: 25,
        gop: 50,
        seconds: 14.0,
        kbps: KBPS,
    }
    .make(&path)
    .unwrap();
    read_packets(&path).unwrap()
}

fn event(w: u32, h: u32) -> EventInput {
    let (start_s, end_s) = (6.0, 9.0);
    let track: Vec<TrackPoint> = (0..=75)
        .map(|i| {
            let u = f64::from(i) / 75.0;
            TrackPoint {
                t_s: start_s + 3.0 * u,
                x_px: f64::from(w) * (0.5 + 0.05 * u),
                y_px: f64::from(h) * (0.2 + 0.6 * u * u),
                w_px: 6.0,
                h_px: 8.0,
            }
        })
        .collect();
    let trajectory_px = track.iter().map(|p| [p.x_px, p.y_px]).collect();
    EventInput {
        event: Event {
            id: event_id("bench", start_s, 1),
            camera: "bench".into(),
            start_s,
            end_s,
            wall_time: "2026-11-27T03:34:12.480Z".into(),
            label: "object".into(),
            score: 0.9,
            origin: Origin {
                floor: 12,
                bay: 4,
                height_m: 35.7,
                x_m: 13.1,
                px: [track[0].x_px, track[0].y_px],
            },
            track,
            ..Default::default()
        },
        overlay: SnapshotOverlay {
            trajectory_px,
            release_t_s: start_s,
            object_box_px: None,
        },
    }
}

fn benches(c: &mut Criterion) {
    let mut clip = c.benchmark_group("evidence_clip_8s_4mbps");
    clip.sample_size(20);
    let sources: Vec<_> = RESOLUTIONS
        .iter()
        .map(|&(name, w, h)| (name, w, h, source(w, h)))
        .collect();
    let out = tempfile::tempdir().unwrap();
    for (name, _, _, (stream, packets)) in &sources {
        // 8 s: keyframe at 2 s through 10 s.
        let p = cut(packets, 2.0, 10.0 - 0.001);
        let bytes: usize = p.iter().map(|p| p.data.len()).sum();
        let clip_s = 8.0;
        eprintln!(
            "{name}: 8 s clip = {} packets, {:.2} MB, {:.2} Mbit/s",
            p.len(),
            bytes as f64 / 1e6,
            bytes as f64 * 8.0 / clip_s / 1e6
        );
        let path = out.path().join(format!("{name}.mp4"));
        clip.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| write_clip(&path, stream, p).unwrap())
        });
    }
    clip.finish();

    let mut snap = c.benchmark_group("evidence_snapshot");
    snap.sample_size(10);
    for (name, _, _, (stream, packets)) in &sources {
        // Release on a keyframe (3 frames decoded) and 1.8 s into a GOP (46 frames decoded; the
        // worst case for GOP 50 is 51).
        for (case, t_s) in [("at_keyframe", 6.0), ("gop_end", 5.8)] {
            snap.bench_function(BenchmarkId::new(case, name), |b| {
                b.iter(|| render_snapshot(stream, packets, t_s, 90).unwrap())
            });
        }
    }
    snap.finish();

    let mut whole = c.benchmark_group("evidence_event_dir");
    whole.sample_size(10);
    let cfg = EvidenceConfig {
        retention_budget_bytes: None,
        retention_max_age_s: None,
        retention_min_age_s: 0,
        ..Default::default()
    };
    let clock = Arc::new(SimulatedClock::new(SystemTime::UNIX_EPOCH));
    for (name, w, h, (stream, packets)) in &sources {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = EvidenceWriter::new(dir.path(), cfg.clone(), clock.clone()).unwrap();
        let input = event(*w, *h);
        whole.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let done = writer.write_event(stream, packets, input.clone());
                assert!(done.error.is_none());
                std::fs::remove_dir_all(&done.dir).unwrap();
            })
        });
    }
    whole.finish();

    // Pre-roll ring memory per camera, default configuration, 4 Mbit/s 1080p.
    let (_, _, _, (_, packets)) = &sources[1];
    let cfg = EvidenceConfig::default();
    let ring = cfg.new_ring();
    let mut peak = 0usize;
    let mut span_s = 0.0f64;
    for p in packets {
        let mut r = ring.lock().unwrap();
        r.push(p.clone());
        if r.bytes() > peak {
            peak = r.bytes();
            span_s = r.span_s().map_or(0.0, |(a, b)| b - a);
        }
    }
    let total: usize = packets.iter().map(|p| p.data.len()).sum();
    let duration_s = packets.last().unwrap().pts_s + 0.04;
    eprintln!(
        "pre-roll ring at 1080p, {:.2} Mbit/s measured: keep {:.0} s (+1 GOP): peak {:.2} MB over {:.2} s held",
        total as f64 * 8.0 / duration_s / 1e6,
        cfg.ring_keep_s(),
        peak as f64 / 1e6,
        span_s
    );
}

criterion_group!(evidence, benches);
criterion_main!(evidence);
