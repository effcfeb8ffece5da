//! The person search on a real H.264 clip made at test time: a textured facade with a real
//! person photograph (tests/data/astronaut.png, public domain) composited at the release window
//! from 1.0 s to 2.6 s, a release at 3.2 s (frames searched at 1.2, 2.2, 2.7 and 3.0 s). Needs the
//! shipped NanoDet model and ONNX Runtime (`scripts/setup.sh`), like the detector's own tests.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::unbounded;
use image::RgbImage;

use super::*;
use crate::calib::Calibration;
use crate::clock::SimulatedClock;
use crate::detect::{DetectConfig, DetectPool};
use crate::events::{Fall, Origin, TrackPoint, event_id};
use crate::evidence::testing::read_packets;
use crate::evidence::{EvidenceConfig, EvidenceService, SnapshotOverlay};
use crate::synth::encode::{EncodeSettings, Mp4Writer, YuvFrame};

const W: usize = 1280;
const H: usize = 720;
const FPS: u32 = 25;
/// Where the photo is pasted (top-left) and its side, pixels.
const PERSON_X: usize = 620;
const PERSON_Y: usize = 230;
const PERSON_PX: usize = 96;
/// The person is there from `SHOWN_S.0` to before `SHOWN_S.1`.
const SHOWN_S: (f64, f64) = (1.0, 2.6);
const RELEASE_T_S: f64 = 3.2;
/// The release pixel: below the person's hands, on the facade (40 px/m).
const RELEASE_PX: [f64; 2] = [668.0, 330.0];

/// 24 m x 14 m of facade seen straight on at 40 px/m: x_m = (px - 160) / 40,
/// height_m = (640 - py) / 40. Floors: 1 below 3.6 m, then every 3 m; bays of 4 m.
const CALIB: &str = r#"
[camera]
id = "persons-test"

[facade]
corners_px = [[160.0, 80.0], [1120.0, 80.0], [1120.0, 640.0], [160.0, 640.0]]
width_m = 24.0
height_m = 14.0
base_height_m = 0.0

[floors]
first_storey_m = 3.6
storey_m = 3.0

[windows]
bays = 6
"#;

fn facade() -> Arc<FacadeModel> {
    let calib = Calibration::from_toml(CALIB).unwrap();
    Arc::new(FacadeModel::new(&calib, W as u32, H as u32).unwrap())
}

fn person() -> RgbImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/astronaut.png");
    let img = image::open(path)
        .expect("tests/data/astronaut.png")
        .to_rgb8();
    image::imageops::resize(
        &img,
        PERSON_PX as u32,
        PERSON_PX as u32,
        image::imageops::FilterType::Triangle,
    )
}

/// BT.709 limited-range YUV of an RGB pixel.
fn yuv(p: [u8; 3]) -> [u8; 3] {
    let [r, g, b] = p.map(f32::from);
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let u = (b - y) / 1.8556;
    let v = (r - y) / 1.5748;
    [
        (16.0 + y * 219.0 / 255.0).round() as u8,
        (128.0 + u * 224.0 / 255.0).round() as u8,
        (128.0 + v * 224.0 / 255.0).round() as u8,
    ]
}

/// One frame: a facade of concrete and windows (a storey every 120 px, a bay every 160 px), with
/// the person pasted when `with_person`.
fn picture(person: &RgbImage, with_person: bool, t_s: f64) -> YuvFrame {
    let rgb_at = |x: usize, y: usize| -> [u8; 3] {
        if with_person
            && (PERSON_X..PERSON_X + PERSON_PX).contains(&x)
            && (PERSON_Y..PERSON_Y + PERSON_PX).contains(&y)
        {
            return person
                .get_pixel((x - PERSON_X) as u32, (y - PERSON_Y) as u32)
                .0;
        }
        let window = (x % 160) > 30 && (x % 160) < 130 && (y % 120) > 25 && (y % 120) < 100;
        // A little sensor noise that changes every frame, so the encoder has work to do.
        let n = ((x * 31 + y * 17 + (t_s * 1000.0) as usize * 7) % 9) as u8;
        if window {
            [60 + n, 70 + n, 85 + n]
        } else {
            [170 + n, 165 + n, 155 + n]
        }
    };
    let mut f = YuvFrame {
        width: W,
        height: H,
        y: vec![0; W * H],
        u: vec![0; W * H / 4],
        v: vec![0; W * H / 4],
    };
    for y in 0..H {
        for x in 0..W {
            f.y[y * W + x] = yuv(rgb_at(x, y))[0];
        }
    }
    for y in 0..H / 2 {
        for x in 0..W / 2 {
            let [_, u, v] = yuv(rgb_at(x * 2, y * 2));
            f.u[y * W / 2 + x] = u;
            f.v[y * W / 2 + x] = v;
        }
    }
    f
}

/// The clip (4 s, GOP 2 s, H.264 at 4 Mbit/s), read back as ingest reads it; made once.
fn clip() -> &'static (StreamInfo, Vec<Packet>) {
    static C: OnceLock<(StreamInfo, Vec<Packet>)> = OnceLock::new();
    C.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("person.mp4");
        let settings = EncodeSettings {
            width: W as u32,
            height: H as u32,
            fps: FPS,
            bitrate_kbps: 4000,
            gop_frames: 2 * FPS,
            x264_preset: "ultrafast".into(),
            creation_time: None,
        };
        let mut mp4 = Mp4Writer::create(&path, &settings).unwrap();
        let photo = person();
        for i in 0..4 * FPS {
            let t_s = f64::from(i) / f64::from(FPS);
            let shown = t_s >= SHOWN_S.0 - 1e-9 && t_s < SHOWN_S.1 - 1e-9;
            mp4.write(&picture(&photo, shown, t_s)).unwrap();
        }
        mp4.finish().unwrap();
        read_packets(&path).unwrap()
    })
}

fn pool() -> DetectPool {
    DetectPool::from_config(&DetectConfig::default())
        .expect("shipped NanoDet and ONNX Runtime (run scripts/setup.sh)")
}

/// A fall released at `RELEASE_PX` at `RELEASE_T_S`, rounded as the analysis rounds events.
fn event() -> Event {
    let start_s = RELEASE_T_S + 0.08;
    let track = (0..12)
        .map(|i| {
            let t_s = start_s + f64::from(i) * 0.04;
            let dt = t_s - RELEASE_T_S;
            TrackPoint {
                t_s,
                x_px: RELEASE_PX[0],
                y_px: RELEASE_PX[1] + 196.0 * dt * dt,
                w_px: 5.0,
                h_px: 5.0,
            }
        })
        .collect::<Vec<_>>();
    Event {
        id: event_id("persons-test", start_s, 1),
        camera: "persons-test".into(),
        start_s,
        end_s: track.last().unwrap().t_s,
        wall_time: "2026-11-27T03:34:12.480Z".into(),
        label: "object".into(),
        score: 0.9,
        origin: Origin {
            floor: 2,
            bay: 4,
            height_m: (640.0 - RELEASE_PX[1]) / 40.0,
            x_m: (RELEASE_PX[0] - 160.0) / 40.0,
            px: RELEASE_PX,
        },
        fall: Fall {
            g_fit_m_s2: 9.8,
            drop_m: 1.0,
            rmse_px: 0.5,
        },
        track,
        ..Default::default()
    }
    .rounded()
}

fn overlay(e: &Event) -> SnapshotOverlay {
    SnapshotOverlay {
        trajectory_px: e.track.iter().map(|p| [p.x_px, p.y_px]).collect(),
        release_t_s: RELEASE_T_S,
        object_box_px: None,
    }
}

/// The person, found where and when she was, and nowhere else.
fn assert_found_her(e: &Event) {
    assert_eq!(e.persons_error, None);
    let persons = e.persons.as_ref().expect("a persons field");
    assert!(!persons.is_empty(), "nobody found: {e:?}");
    let best = persons[0];
    assert!(best.score >= 0.5, "{best:?}");
    for p in persons {
        // Searched at 1.2, 2.2, 2.7, 3.0 s; she was there at 1.2 and 2.2 only.
        assert!(
            (p.t_s - 1.2).abs() < 0.021 || (p.t_s - 2.2).abs() < 0.021,
            "a sighting when nobody was there: {p:?}"
        );
        let [x, y, w, h] = p.box_px;
        let (cx, cy) = (x + w / 2.0, y + h / 2.0);
        let (x0, y0, side) = (PERSON_X as f64, PERSON_Y as f64, PERSON_PX as f64);
        assert!(
            cx > x0 && cx < x0 + side && cy > y0 && cy < y0 + side,
            "box {:?} not on the photo at ({x0}, {y0}), {side} px",
            p.box_px
        );
        assert!(h > 0.5 * side && h < 1.3 * side, "{p:?}");
    }
    // Her box centre is ~9 m up and ~12.7 m across: floor 3 (6.6-9.6 m), bay 4 (12-16 m).
    assert_eq!(e.persons_floor, Some(3));
    assert_eq!(e.persons_bay, Some(4));
}

#[test]
fn frames_nearest_the_wanted_times_are_decoded_from_the_packets() {
    let (stream, packets) = clip();
    let (frames, missing) =
        decode_near(stream, packets, &[3.0, 1.2, 2.21, 2.2, 9.0], 0.06).unwrap();
    let t: Vec<f64> = frames
        .iter()
        .map(|f| (f.pts_s * 100.0).round() / 100.0)
        .collect();
    // 2.21 and 2.2 share a frame; 9 s is past the end.
    assert_eq!(t, vec![1.2, 2.2, 3.0]);
    assert_eq!(missing, 1);
    // The person is in the 1.2 s frame and not in the 3.0 s one (luma of her face vs facade).
    let at = |f: &Frame| f.luma().get(PERSON_X + 40, PERSON_Y + 30);
    assert_ne!(at(&frames[0]).abs_diff(at(&frames[2])), 0);
    // Before the pre-roll: the packets from 2 s on do not hold 1.2 s.
    let from_2s = &packets[packets
        .iter()
        .position(|p| p.is_key && p.pts_s >= 1.9)
        .unwrap()..];
    let (frames, missing) = decode_near(stream, from_2s, &[1.2, 2.5], 0.06).unwrap();
    assert_eq!((frames.len(), missing), (1, 1));
}

#[test]
fn a_person_at_the_release_window_before_the_release_is_found() {
    let (stream, packets) = clip();
    let pool = pool();
    let mut searcher = PersonSearcher::new(PersonSearch::default(), pool.camera(PERSONS_HANDLE));
    let mut e = event();
    let started = Instant::now();
    let key = searcher.start(&e, RELEASE_T_S, facade(), stream, packets);
    let prepared = started.elapsed();
    searcher.finish(key, &mut e);
    let total = started.elapsed();
    tracing::info!(
        prepare_ms = prepared.as_secs_f64() * 1e3,
        total_ms = total.as_secs_f64() * 1e3,
        persons = ?e.persons,
        "person search"
    );
    assert_found_her(&e);
    assert!(searcher.jobs.is_empty());
    // The JSON field as documented.
    let json = serde_json::to_value(e.clone().rounded()).unwrap();
    let p0 = &json["persons"][0];
    assert!(p0["t_s"].is_f64() && p0["score"].is_f64(), "{json}");
    assert_eq!(p0["box_px"].as_array().unwrap().len(), 4);
    assert_eq!(json["persons_floor"], 3);
}

#[test]
fn nobody_at_the_window_gives_an_empty_list() {
    let (stream, packets) = clip();
    let pool = pool();
    let mut searcher = PersonSearcher::new(PersonSearch::default(), pool.camera(PERSONS_HANDLE));
    // Released at 4.0 s: frames at 2.0 (she is there, but the window is 8 m away), 3.0, 3.5, 3.8.
    let mut e = event();
    e.origin.px = [RELEASE_PX[0] + 320.0, RELEASE_PX[1]];
    e.origin.x_m += 8.0;
    let key = searcher.start(&e, 4.0, facade(), stream, packets);
    searcher.finish(key, &mut e);
    assert_eq!(e.persons, Some(vec![]));
    assert_eq!(
        (e.persons_floor, e.persons_bay, e.persons_error.clone()),
        (None, None, None)
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["persons"], serde_json::json!([]));
}

#[test]
fn a_search_that_cannot_run_says_why_and_the_event_stays() {
    let (stream, packets) = clip();
    let pool = pool();
    let mut searcher = PersonSearcher::new(PersonSearch::default(), pool.camera(PERSONS_HANDLE));
    // A synthetic source: nothing to decode.
    let mut synthetic = stream.clone();
    synthetic.codec_params = None;
    let mut e = event();
    let key = searcher.start(&e, RELEASE_T_S, facade(), &synthetic, packets);
    searcher.finish(key, &mut e);
    assert_eq!(e.persons, None);
    assert!(
        e.persons_error
            .as_deref()
            .unwrap()
            .contains("no codec parameters"),
        "{e:?}"
    );
    // A pool that has shut down.
    let closed = DetectPool::from_config(&DetectConfig::default()).unwrap();
    let handle = closed.camera(PERSONS_HANDLE);
    closed.shutdown();
    let mut searcher = PersonSearcher::new(PersonSearch::default(), handle);
    let mut e = event();
    let key = searcher.start(&e, RELEASE_T_S, facade(), stream, packets);
    searcher.finish(key, &mut e);
    assert_eq!(e.persons, None);
    assert!(
        e.persons_error.as_deref().unwrap().contains("shut down"),
        "{e:?}"
    );
}

fn evidence_cfg() -> EvidenceConfig {
    EvidenceConfig {
        retention_budget_bytes: None,
        retention_max_age_s: None,
        retention_min_age_s: 0,
        poll_ms: 5,
        ..Default::default()
    }
}

/// Runs one event through the evidence service (packets fed to the ring as ingest would,
/// `submit_with_facade` as the pipeline does) and returns its `event.json`.
fn through_the_service(persons: Option<PersonSearcher>) -> serde_json::Value {
    let (stream, packets) = clip();
    let out = tempfile::tempdir().unwrap();
    let clock = Arc::new(SimulatedClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
    ));
    let cfg = evidence_cfg();
    let (service, client) =
        EvidenceService::spawn_with_persons(out.path(), cfg.clone(), clock, persons).unwrap();
    let ring = cfg.new_ring();
    for p in packets {
        ring.lock().unwrap().push(p.clone());
    }
    ring.lock().unwrap().finish();
    let e = event();
    let (tx, rx) = unbounded();
    client
        .submit_with_facade(e.clone(), overlay(&e), Some(facade()), stream, &ring, tx)
        .unwrap();
    let done = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(done.error.is_none(), "{:?}", done.error);
    drop(client);
    service.join().unwrap();
    let text = std::fs::read_to_string(done.dir.join("event.json")).unwrap();
    let on_disk: Event = serde_json::from_str(&text).unwrap();
    assert_eq!(on_disk, done.event);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_evidence_thread_writes_the_persons_into_event_json() {
    let pool = pool();
    let searcher = PersonSearcher::new(PersonSearch::default(), pool.camera(PERSONS_HANDLE));
    let json = through_the_service(Some(searcher));
    let e: Event = serde_json::from_value(json.clone()).unwrap();
    assert_found_her(&e);
    assert!(json.get("clip_error").is_none() && json.get("snapshot_error").is_none());
    let persons = pool
        .stats()
        .into_iter()
        .find(|(c, _)| c == PERSONS_HANDLE)
        .unwrap()
        .1;
    assert_eq!(
        (persons.submitted, persons.completed),
        (4, 4),
        "{persons:?}"
    );
}

#[test]
fn with_the_detector_off_no_persons_fields_appear() {
    let json = through_the_service(None);
    for key in ["persons", "persons_floor", "persons_bay", "persons_error"] {
        assert!(json.get(key).is_none(), "{key} in {json}");
    }
    assert_eq!(json["clip"], "clip.mp4");
}
