//! End-to-end tests of the evidence module on a real H.264 clip made at test time (ffmpeg CLI,
//! `testsrc2` 1280x720, 25 fps, GOP 50, 10 s), read through `FfmpegOpener` as ingest does, and
//! checked with `ffprobe` and by parsing the MP4 boxes.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crossbeam_channel::unbounded;
use image::RgbImage;

use super::testing::{TestClip, read_packets};
use super::writer::FailPoint;
use super::*;
use crate::clock::SimulatedClock;
use crate::events::{Event, Fall, Origin, TrackPoint, event_id};
use crate::ingest::ring::SharedRing;
use crate::ingest::{Packet, StreamInfo};

const FPS: f64 = 25.0;
const GOP_S: f64 = 2.0;

/// The test clip's stream and packets, made once per test process.
fn fixture() -> &'static (StreamInfo, Vec<Packet>) {
    static F: OnceLock<(StreamInfo, Vec<Packet>)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("src.mp4");
        TestClip::hd().make(&path).unwrap();
        read_packets(&path).unwrap()
    })
}

fn clock() -> Arc<SimulatedClock> {
    Arc::new(SimulatedClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
    ))
}

fn cfg() -> EvidenceConfig {
    EvidenceConfig {
        retention_budget_bytes: None,
        retention_max_age_s: None,
        retention_min_age_s: 0,
        post_roll_timeout_s: 600.0,
        poll_ms: 5,
        ..Default::default()
    }
}

/// Pixel position of the test object at media time `t_s` of an event starting at `start_s`.
fn object_px(start_s: f64, t_s: f64) -> [f64; 2] {
    let dt = t_s - start_s;
    [640.0 + 40.0 * dt, 200.0 + 200.0 * dt * dt]
}

fn event(camera: &str, start_s: f64, end_s: f64) -> Event {
    let n = ((end_s - start_s) * FPS).round() as usize;
    let track = (0..=n)
        .map(|i| {
            let t_s = start_s + i as f64 / FPS;
            let [x_px, y_px] = object_px(start_s, t_s);
            TrackPoint {
                t_s,
                x_px,
                y_px,
                w_px: 6.0,
                h_px: 8.0,
            }
        })
        .collect();
    Event {
        id: event_id(camera, start_s, 1),
        camera: camera.into(),
        start_s,
        end_s,
        wall_time: "2026-11-27T03:34:12.480Z".into(),
        label: "object".into(),
        score: 0.93,
        origin: Origin {
            floor: 12,
            bay: 4,
            height_m: 35.7,
            x_m: 13.1,
            px: object_px(start_s, start_s),
        },
        fall: Fall {
            g_fit_m_s2: 9.6,
            drop_m: 33.0,
            rmse_px: 1.2,
        },
        track,
        ..Default::default()
    }
}

fn overlay(e: &Event) -> SnapshotOverlay {
    SnapshotOverlay {
        trajectory_px: (0..=40)
            .map(|i| {
                object_px(
                    e.start_s,
                    e.start_s + (e.end_s - e.start_s) * i as f64 / 40.0,
                )
            })
            .collect(),
        release_t_s: e.start_s,
        object_box_px: None,
    }
}

fn input(e: Event) -> EventInput {
    let overlay = overlay(&e);
    EventInput { event: e, overlay }
}

fn dts_s(stream: &StreamInfo, p: &Packet) -> f64 {
    p.pts_s - (p.pts - p.dts) as f64 * stream.tick_s()
}

/// Pushes the fixture's packets into `ring` (as ingest would) while they decode at or before
/// `until_s`; `next` is the index of the next packet to push.
fn feed(ring: &SharedRing, next: &mut usize, until_s: f64) {
    let (stream, packets) = fixture();
    let mut r = ring.lock().unwrap();
    while *next < packets.len() && dts_s(stream, &packets[*next]) <= until_s {
        r.push(packets[*next].clone());
        *next += 1;
    }
}

/// Top-level MP4 box types in file order.
fn mp4_boxes(path: &Path) -> Vec<String> {
    let data = fs::read(path).unwrap();
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size32 = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (data.len() - at) as u64,
            1 => u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap()),
            s => s,
        };
        assert!(size >= 8, "bad box size {size} for {kind}");
        boxes.push(kind);
        at += size as usize;
    }
    assert_eq!(at, data.len(), "boxes must tile the file");
    boxes
}

struct Probe {
    format: String,
    codec: String,
    duration_s: f64,
    packets: u64,
    first_packet_flags: String,
    first_pts_s: f64,
}

fn ffprobe(path: &Path) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args([
            "-show_entries",
            "stream=codec_name,nb_read_packets:format=format_name,duration",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let first = String::from_utf8_lossy(&first.stdout).trim().to_string();
    let (pts, flags) = first.split_once(',').unwrap();
    Probe {
        format: v["format"]["format_name"].as_str().unwrap().into(),
        codec: v["streams"][0]["codec_name"].as_str().unwrap().into(),
        duration_s: v["format"]["duration"].as_str().unwrap().parse().unwrap(),
        packets: v["streams"][0]["nb_read_packets"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        first_packet_flags: flags.into(),
        first_pts_s: pts.parse().unwrap(),
    }
}

/// Media time of the source's last keyframe at or before `t_s`.
fn key_at_or_before(t_s: f64) -> f64 {
    let (_, packets) = fixture();
    packets
        .iter()
        .filter(|p| p.is_key && p.pts_s <= t_s.max(0.0) + 1e-6)
        .map(|p| p.pts_s)
        .fold(0.0, f64::max)
}

/// Frames of the source shown in `[from_s, to_s)`, counted from presentation times
/// (independently of how the writer cuts in decode order).
fn frames_shown(from_s: f64, to_s: f64) -> u64 {
    let (_, packets) = fixture();
    packets
        .iter()
        .filter(|p| p.pts_s >= from_s - 1e-6 && p.pts_s < to_s - 1e-6)
        .count() as u64
}

fn read_event(dir: &Path) -> Event {
    serde_json::from_slice(&fs::read(dir.join("event.json")).unwrap()).unwrap()
}

/// Names in `out` a reader would take for events (no dot-prefixed entries).
fn visible(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

fn all_entries(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Checks `clip` of the event `start_s..end_s` that event.json says covers `span_s` of the source.
fn assert_valid_clip(clip: &Path, start_s: f64, end_s: f64, span_s: (f64, f64)) {
    const SOURCE_END_S: f64 = 10.0;
    let boxes = mp4_boxes(clip);
    let moov = boxes.iter().position(|b| b == "moov").expect("moov box");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat box");
    assert!(moov < mdat, "faststart: moov before mdat, got {boxes:?}");
    let probe = ffprobe(clip);
    assert!(probe.format.contains("mp4"), "{}", probe.format);
    assert_eq!(probe.codec, "h264");
    assert!(
        probe.first_packet_flags.starts_with('K'),
        "first packet {:?}",
        probe.first_packet_flags
    );
    assert!(
        probe.first_pts_s.abs() < 1e-3,
        "rebased to 0, first pts {}",
        probe.first_pts_s
    );
    let from_s = start_s - 3.0;
    let to_s = end_s + 2.0;
    let want_s = to_s.min(SOURCE_END_S) - from_s.max(0.0);
    assert!(
        probe.duration_s >= want_s - 1e-3,
        "duration {} < {want_s}",
        probe.duration_s
    );
    // From a keyframe: at most one GOP and a few B-frames longer than asked.
    assert!(
        probe.duration_s <= want_s + GOP_S + 0.25,
        "duration {}",
        probe.duration_s
    );
    // event.json's span: from the keyframe, through the post-roll, every frame in between.
    assert!(
        (span_s.0 - key_at_or_before(from_s)).abs() < 1e-3,
        "clip starts at {}",
        span_s.0
    );
    assert!(
        span_s.1 >= to_s.min(SOURCE_END_S) - 1e-3,
        "clip ends at {}",
        span_s.1
    );
    assert!((probe.duration_s - (span_s.1 - span_s.0)).abs() < 0.01);
    assert_eq!(probe.packets, frames_shown(span_s.0, span_s.1));
    assert_eq!(probe.packets, ((span_s.1 - span_s.0) * FPS).round() as u64);
    // It decodes from start to end without a single error.
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(clip)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        decode.status.success() && decode.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );
}

fn span(e: &Event) -> (f64, f64) {
    (e.clip_start_s.unwrap(), e.clip_end_s.unwrap())
}

#[test]
fn a_clip_from_the_ring_is_faststart_h264_from_a_keyframe_covering_pre_and_post_roll() {
    let (stream, _) = fixture();
    let out = tempfile::tempdir().unwrap();
    let cfg = cfg();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("tower-3-east", 5.3, 6.9);
    // The event is known a little after its end; the writer gets the ring at end + post-roll.
    feed(&ring, &mut next, e.end_s + 2.5);
    let mut w = EvidenceWriter::new(out.path(), cfg, clock()).unwrap();
    let packets = ring.lock().unwrap().since(0.0);
    let done = w.write_event(stream, &packets, input(e.clone()));
    assert!(done.error.is_none(), "{:?}", done.error);
    assert_eq!(done.dir, out.path().join(&e.id));
    let clip = done.dir.join(CLIP_NAME);
    assert_valid_clip(&clip, e.start_s, e.end_s, span(&done.event));

    let written = read_event(&done.dir);
    // The file holds exactly the reported record.
    assert_eq!(
        fs::read(done.dir.join("event.json")).unwrap(),
        serde_json::to_vec_pretty(&done.event).unwrap()
    );
    assert_eq!(written.clip, "clip.mp4");
    assert_eq!(written.snapshot, "snapshot.jpg");
    assert_eq!(written.clip_error, None);
    assert_eq!(written.snapshot_error, None);
    // 5.3 - 3 = 2.3 s: the keyframe at 2.0 s; the clip plays from there.
    assert_eq!(written.clip_start_s, Some(2.0));
    assert!(written.clip_end_s.unwrap() >= e.end_s + 2.0);
    // The contract's fields are untouched.
    assert_eq!(written.track.len(), e.track.len());
    for (a, b) in written.track.iter().zip(&e.track) {
        assert!((a.t_s - b.t_s).abs() < 1e-9 && (a.y_px - b.y_px).abs() < 1e-9);
    }
    assert_eq!(written.origin, e.origin);
    assert!(done.dir.join(SNAPSHOT_NAME).exists());
    assert_eq!(visible(out.path()), vec![e.id.clone()]);
}

#[test]
fn the_service_waits_for_the_post_roll_and_stops_waiting_at_the_end_of_the_source() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = cfg();
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;

    // Event 1: known 0.5 s after its end; its post-roll has not arrived yet.
    let e1 = event("cam-a", 4.0, 5.2);
    feed(&ring, &mut next, e1.end_s + 0.5);
    client
        .submit(e1.clone(), overlay(&e1), stream, &ring, done_tx.clone())
        .unwrap();
    // Without the post-roll, the end of the source, a reconnect or the (600 s) timeout, the clip
    // cannot be complete: nothing may be reported yet.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        done_rx.try_recv().is_err(),
        "written before the post-roll arrived"
    );
    feed(&ring, &mut next, e1.end_s + 2.5);
    let d1 = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(d1.error.is_none(), "{:?}", d1.error);
    assert_valid_clip(
        &d1.dir.join(CLIP_NAME),
        e1.start_s,
        e1.end_s,
        span(&d1.event),
    );

    // Event 2 near the end of a 10 s source: the post-roll never comes; finish() ends the wait.
    let e2 = event("cam-a", 8.6, 9.2);
    feed(&ring, &mut next, 9.7);
    client
        .submit(e2.clone(), overlay(&e2), stream, &ring, done_tx.clone())
        .unwrap();
    feed(&ring, &mut next, 100.0);
    ring.lock().unwrap().finish();
    let d2 = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(d2.error.is_none(), "{:?}", d2.error);
    assert_valid_clip(
        &d2.dir.join(CLIP_NAME),
        e2.start_s,
        e2.end_s,
        span(&d2.event),
    );
    drop(client);
    let stats = service.join().unwrap();
    assert_eq!(stats.events, 2);
    assert_eq!(stats.clips_written, 2);
}

#[test]
fn an_event_near_the_start_of_the_source_gets_what_there_is() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = cfg();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("cam-s", 1.0, 1.6);
    feed(&ring, &mut next, 4.0);
    let mut w = EvidenceWriter::new(out.path(), cfg, clock()).unwrap();
    let packets = ring.lock().unwrap().since(0.0);
    let done = w.write_event(stream, &packets, input(e.clone()));
    assert_eq!(done.event.clip_start_s, Some(0.0));
    assert_valid_clip(
        &done.dir.join(CLIP_NAME),
        e.start_s,
        e.end_s,
        span(&done.event),
    );
}

#[test]
fn a_reconnect_ends_the_wait_with_what_arrived() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = cfg();
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("cam-r", 5.0, 5.5);
    feed(&ring, &mut next, 6.5);
    client
        .submit(e.clone(), overlay(&e), stream, &ring, done_tx)
        .unwrap();
    ring.lock().unwrap().restart();
    let d = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(d.error.is_none());
    assert_eq!(d.event.clip_error, None);
    let end = d.event.clip_end_s.unwrap();
    assert!(
        end > e.end_s && end < e.end_s + 2.0,
        "clip ends at the gap: {end}"
    );
    drop(client);
    service.join().unwrap();
}

#[test]
fn overlapping_events_share_one_clip_and_later_events_inside_it_link_it() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = cfg();
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;
    // Two objects 0.8 s apart; the second is known before the first's post-roll is in.
    let a = event("cam-o", 4.2, 5.0);
    let b = event("cam-o", 5.0, 5.8);
    feed(&ring, &mut next, a.end_s + 0.3);
    client
        .submit(a.clone(), overlay(&a), stream, &ring, done_tx.clone())
        .unwrap();
    feed(&ring, &mut next, b.end_s + 0.3);
    client
        .submit(b.clone(), overlay(&b), stream, &ring, done_tx.clone())
        .unwrap();
    feed(&ring, &mut next, b.end_s + 2.5);
    let da = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    let db = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(da.error.is_none() && db.error.is_none());
    let (ca, cb) = (da.dir.join(CLIP_NAME), db.dir.join(CLIP_NAME));
    let (ma, mb) = (fs::metadata(&ca).unwrap(), fs::metadata(&cb).unwrap());
    assert_eq!(
        ma.ino(),
        mb.ino(),
        "one clip, hard-linked into both directories"
    );
    assert_eq!(ma.nlink(), 2);
    // It covers both events.
    assert_valid_clip(&ca, a.start_s, b.end_s, span(&da.event));
    assert_eq!(da.event.clip_start_s, db.event.clip_start_s);
    // Each event keeps its own snapshot.
    let (sa, sb) = (
        fs::read(da.dir.join(SNAPSHOT_NAME)).unwrap(),
        fs::read(db.dir.join(SNAPSHOT_NAME)).unwrap(),
    );
    assert_ne!(sa, sb);

    // A third event inside the written clip, reported late: the same clip again.
    let c = event("cam-o", 4.6, 5.4);
    client
        .submit(c.clone(), overlay(&c), stream, &ring, done_tx.clone())
        .unwrap();
    let dc = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(dc.error.is_none());
    assert_eq!(
        fs::metadata(dc.dir.join(CLIP_NAME)).unwrap().ino(),
        ma.ino()
    );
    drop(client);
    let stats = service.join().unwrap();
    assert_eq!(stats.clips_written, 1);
    assert_eq!(stats.clips_shared, 2);
    assert_eq!(stats.events, 3);
}

#[test]
fn the_snapshot_shows_the_release_frame_with_the_trajectory_drawn_on_it() {
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let e = event("cam-j", 3.0, 4.4);
    let ov = overlay(&e);
    let mut w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
    let done = w.write_event(
        stream,
        packets,
        EventInput {
            event: e.clone(),
            overlay: ov.clone(),
        },
    );
    assert!(
        done.event.snapshot_error.is_none(),
        "{:?}",
        done.event.snapshot_error
    );
    let jpeg = fs::read(done.dir.join(SNAPSHOT_NAME)).unwrap();
    assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF], "JPEG magic");
    assert_eq!(
        image::guess_format(&jpeg).unwrap(),
        image::ImageFormat::Jpeg
    );
    let snap = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_eq!(snap.dimensions(), (1280, 720));
    let source = super::snapshot::decode_nearest(stream, packets, ov.release_t_s).unwrap();
    assert!((source.pts_s - ov.release_t_s).abs() <= 0.5 / FPS);
    let diff = |img: &RgbImage, x: f64, y: f64| -> f64 {
        let (a, b) = (
            img.get_pixel(x as u32, y as u32),
            source.image.get_pixel(x as u32, y as u32),
        );
        (0..3)
            .map(|c| (a[c] as f64 - b[c] as f64).abs())
            .sum::<f64>()
            / 3.0
    };
    // Along the drawn trajectory (segment midpoints) the snapshot differs from the frame.
    let on: Vec<f64> = ov
        .trajectory_px
        .windows(2)
        .skip(4)
        .map(|w| diff(&snap, (w[0][0] + w[1][0]) / 2.0, (w[0][1] + w[1][1]) / 2.0))
        .collect();
    let on_mean = on.iter().sum::<f64>() / on.len() as f64;
    // Away from every overlay it is the same frame, up to JPEG loss.
    let off: Vec<f64> = (0..20)
        .map(|i| diff(&snap, 200.0 + i as f64 * 10.0, 450.0))
        .chain((0..20).map(|i| diff(&snap, 950.0 + i as f64 * 5.0, 380.0)))
        .collect();
    let off_mean = off.iter().sum::<f64>() / off.len() as f64;
    assert!(
        on_mean > 50.0,
        "trajectory not drawn: mean difference {on_mean:.1}"
    );
    assert!(
        off_mean < 12.0,
        "not the release frame: mean difference {off_mean:.1}"
    );
}

#[test]
fn a_crash_before_the_rename_leaves_no_visible_event_and_the_next_start_cleans_up() {
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let e = event("cam-c", 4.0, 4.8);
    {
        let mut w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
        w.fail = Some(FailPoint::CrashBeforeRename);
        let r = super::clip::cut_range(packets, 1.0, 6.8);
        let done = w.write_group(stream, &packets[r], None, vec![input(e.clone())]);
        assert!(done.is_empty(), "a crashed write reports nothing");
        assert!(visible(out.path()).is_empty(), "{:?}", visible(out.path()));
        let tmp = out.path().join(format!(".tmp-{}", e.id));
        assert!(
            tmp.join("event.json").exists(),
            "the files were written under the temporary name"
        );
        assert!(tmp.join(CLIP_NAME).exists());
    }
    let w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
    assert_eq!(
        all_entries(out.path()),
        vec![".fallwatch-evidence.lock".to_string()]
    );
    assert_eq!(w.event_count(), 0);
}

#[test]
fn a_full_disk_still_yields_event_json_with_the_failure_recorded() {
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let mut w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();

    w.fail = Some(FailPoint::ClipNoSpace);
    let e = event("cam-f", 4.0, 4.8);
    let done = w.write_event(stream, packets, input(e.clone()));
    assert!(done.error.is_none(), "the event itself is written");
    let written = read_event(&done.dir);
    let msg = written.clip_error.clone().expect("clip_error");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert_eq!(written.clip_start_s, None);
    assert!(!done.dir.join(CLIP_NAME).exists());
    assert!(
        done.dir.join(SNAPSHOT_NAME).exists(),
        "the snapshot does not depend on the clip file"
    );
    assert_eq!(
        all_entries(&done.dir),
        vec!["event.json", "snapshot.jpg"],
        "no partial files"
    );

    w.fail = Some(FailPoint::SnapshotNoSpace);
    let e = event("cam-f", 6.0, 6.8);
    let done = w.write_event(stream, packets, input(e));
    let written = read_event(&done.dir);
    assert!(
        written
            .snapshot_error
            .unwrap()
            .contains("No space left on device")
    );
    assert_eq!(written.clip_error, None);
    assert_eq!(all_entries(&done.dir), vec!["clip.mp4", "event.json"]);

    // A synthetic source (no codec parameters): no clip, no snapshot, still an event.
    let mut synthetic = stream.clone();
    synthetic.codec_params = None;
    w.fail = None;
    let done = w.write_event(&synthetic, packets, input(event("cam-f", 8.0, 8.4)));
    let written = read_event(&done.dir);
    assert!(written.clip_error.is_some() && written.snapshot_error.is_some());
    assert_eq!(w.stats().events, 3);
}

#[test]
fn same_camera_and_millisecond_bumps_the_sequence_number() {
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let mut w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
    let e = event("cam-i", 4.0, 4.4);
    let d1 = w.write_event(stream, packets, input(e.clone()));
    let d2 = w.write_event(stream, packets, input(e.clone()));
    assert_eq!(d1.event.id, "cam-i-000004000-01");
    assert_eq!(d2.event.id, "cam-i-000004000-02");
    assert_eq!(read_event(&d2.dir).id, d2.event.id);
    assert_eq!(visible(out.path()).len(), 2);
}

#[test]
fn a_second_writer_on_the_same_directory_is_refused() {
    let out = tempfile::tempdir().unwrap();
    let _w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
    let e = EvidenceWriter::new(out.path(), cfg(), clock())
        .err()
        .unwrap();
    assert!(e.to_string().contains("in use"), "{e}");
}

#[test]
fn retention_deletes_the_oldest_first_and_never_an_event_younger_than_the_minimum_age() {
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let clock = clock();
    let hour = Duration::from_secs(3600);
    let starts = [3.5, 4.5, 5.5, 6.5];
    let mut names = Vec::new();
    {
        let mut w = EvidenceWriter::new(out.path(), cfg(), clock.clone()).unwrap();
        for (i, &s) in starts.iter().enumerate() {
            if i > 0 {
                clock.advance(hour);
            }
            let d = w.write_event(stream, packets, input(event("cam-t", s, s + 0.6)));
            names.push(d.event.id);
        }
    }
    // now = t0 + 3 h; ages 3 h, 2 h, 1 h, 0 h.
    let total = EvidenceWriter::new(out.path(), cfg(), clock.clone())
        .unwrap()
        .disk_bytes();

    // Over the budget by one byte: only the oldest goes.
    let budget = EvidenceConfig {
        retention_budget_bytes: Some(total - 1),
        ..cfg()
    };
    let w = EvidenceWriter::new(out.path(), budget, clock.clone()).unwrap();
    assert_eq!(w.event_names(), names[1..].to_vec());
    assert_eq!(visible(out.path()), names[1..].to_vec());
    drop(w);

    // A budget nothing fits in, but a minimum age of 90 min: the 2 h old one goes, the 1 h and
    // 0 h old ones stay.
    let tight = EvidenceConfig {
        retention_budget_bytes: Some(1),
        retention_min_age_s: 90 * 60,
        ..cfg()
    };
    let mut w = EvidenceWriter::new(out.path(), tight, clock.clone()).unwrap();
    assert_eq!(w.event_names(), names[2..].to_vec());
    // After each event too: a new event is written and kept (too young); nothing older than the
    // minimum age is left to delete.
    clock.advance(hour);
    let d = w.write_event(stream, packets, input(event("cam-t", 7.5, 8.0)));
    assert_eq!(w.event_names(), vec![names[3].clone(), d.event.id.clone()]);
    drop(w);

    // Maximum age: 10 h later, with a 10.5 h limit, only the (then 11 h old) event goes.
    clock.advance(hour * 10);
    let old = EvidenceConfig {
        retention_max_age_s: Some(10 * 3600 + 1800),
        ..cfg()
    };
    let w = EvidenceWriter::new(out.path(), old, clock.clone()).unwrap();
    assert_eq!(w.event_names(), vec![d.event.id.clone()]);
    assert_eq!(w.stats().pruned, 1);
}

/// Writes an example snapshot to `$FALLWATCH_SNAPSHOT_OUT` (for looking at it); skipped otherwise.
#[test]
fn example_snapshot_for_review() {
    let Ok(dest) = std::env::var("FALLWATCH_SNAPSHOT_OUT") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let (stream, packets) = fixture();
    let mut w = EvidenceWriter::new(out.path(), cfg(), clock()).unwrap();
    let done = w.write_event(stream, packets, input(event("tower-3-east", 3.0, 4.4)));
    fs::copy(done.dir.join(SNAPSHOT_NAME), PathBuf::from(dest)).unwrap();
}

#[test]
fn an_event_longer_than_the_ring_starts_at_the_oldest_keyframe_held() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    // A ring sized for no event at all: 3 s (+ one GOP).
    let cfg = EvidenceConfig {
        max_event_s: 0.0,
        analysis_lag_s: 0.0,
        ..cfg()
    };
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("cam-l", 3.1, 7.0);
    feed(&ring, &mut next, 7.5);
    let oldest = ring.lock().unwrap().span_s().unwrap().0;
    assert!(
        oldest > e.start_s - 3.0,
        "the ring lost the pre-roll: {oldest}"
    );
    client
        .submit(e.clone(), overlay(&e), stream, &ring, done_tx)
        .unwrap();
    feed(&ring, &mut next, 100.0);
    let d = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(d.error.is_none() && d.event.clip_error.is_none());
    // What there was: from the oldest keyframe held, through the full post-roll; event.json says so.
    assert_eq!(d.event.clip_start_s, Some(oldest));
    assert!(d.event.clip_end_s.unwrap() >= e.end_s + 2.0);
    drop(client);
    service.join().unwrap();
}

#[test]
fn a_stalled_live_source_is_cut_after_the_post_roll_timeout() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = EvidenceConfig {
        post_roll_timeout_s: 5.0,
        ..cfg()
    };
    let clock = clock();
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock.clone()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("cam-st", 5.0, 5.5);
    feed(&ring, &mut next, 6.0);
    // Only live sources time out (a file's ingest always ends with finish()).
    let mut live = stream.clone();
    live.is_live = true;
    client
        .submit(e.clone(), overlay(&e), &live, &ring, done_tx)
        .unwrap();
    // The (simulated) wall clock has not moved: the thread keeps waiting.
    std::thread::sleep(Duration::from_millis(50));
    assert!(done_rx.try_recv().is_err());
    clock.advance(Duration::from_secs(6));
    let d = done_rx.recv_timeout(Duration::from_secs(120)).unwrap();
    assert!(d.error.is_none() && d.event.clip_error.is_none());
    let end = d.event.clip_end_s.unwrap();
    // Fed up to 6.0 s of decoding time: with B-frames, a reference frame shown up to ~0.2 s later.
    assert!(end > e.end_s && end <= 6.25, "cut with what arrived: {end}");
    drop(client);
    service.join().unwrap();
}

#[test]
fn dropping_every_client_writes_pending_clips_with_what_arrived() {
    let out = tempfile::tempdir().unwrap();
    let (stream, _) = fixture();
    let cfg = cfg();
    let (service, client) = EvidenceService::spawn(out.path(), cfg.clone(), clock()).unwrap();
    let (done_tx, done_rx) = unbounded();
    let ring = cfg.new_ring();
    let mut next = 0;
    let e = event("cam-x", 5.0, 5.5);
    feed(&ring, &mut next, 6.0);
    client
        .submit(e.clone(), overlay(&e), stream, &ring, done_tx)
        .unwrap();
    drop(client);
    let stats = service.join().unwrap();
    assert_eq!(stats.events, 1);
    let d = done_rx.try_recv().unwrap();
    assert!(d.event.clip_error.is_none());
    assert!(d.event.clip_end_s.unwrap() < e.end_s + 2.0);
}
