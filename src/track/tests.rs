//! Tracker tests: on candidate lists (exact control of clutter, crossings, occlusions) and end to
//! end on synthetic frames through the motion detector.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::ingest::Luma;
use crate::motion::testutil::{Obj, Scene, calib_rect};
use crate::motion::{MotionConfig, MotionDetector};

const FPS: f64 = 25.0;

fn cand(x: f64, y: f64) -> Candidate {
    Candidate {
        x_px: x,
        y_px: y,
        x_min_px: (x - 1.0).max(0.0) as u32,
        y_min_px: (y - 1.0).max(0.0) as u32,
        x_max_px: (x + 1.0) as u32,
        y_max_px: (y + 1.0) as u32,
        area_px: 6,
        mass: 60.0,
        contrast: 12.0,
        peak_contrast: 15.0,
        polarity: Polarity::Brighter,
        length_px: 2.5,
        width_px: 2.2,
        orientation_rad: 0.0,
        fragments: 1,
    }
}

fn streak(x: f64, y: f64, len: f64, angle: f64) -> Candidate {
    Candidate {
        length_px: len as f32,
        width_px: 2.0,
        orientation_rad: angle as f32,
        area_px: (2.0 * len) as u32,
        ..cand(x, y)
    }
}

/// Runs `frames` frames whose candidates come from `make(i)`; returns every confirmed track,
/// finished or flushed.
fn run(
    tracker: &mut Tracker,
    frames: usize,
    mut make: impl FnMut(usize) -> Vec<Candidate>,
) -> Vec<Track> {
    let mut out = Vec::new();
    for i in 0..frames {
        out.extend(tracker.update(i as f64 / FPS, &make(i)));
    }
    out.extend(tracker.flush());
    out
}

/// The track whose observations stay within `tol` px of `truth` for the most frames.
fn best_track(
    tracks: &[Track],
    truth: impl Fn(f64) -> Option<(f64, f64)>,
    tol: f64,
) -> Option<(&Track, usize)> {
    tracks
        .iter()
        .map(|t| {
            let good = t
                .observations
                .iter()
                .filter(|o| {
                    truth(o.point.t_s)
                        .is_some_and(|(x, y)| (o.point.x_px - x).hypot(o.point.y_px - y) <= tol)
                })
                .count();
            (t, good)
        })
        .max_by_key(|(_, g)| *g)
}

/// Every observation of `t` lies within `tol` of `truth`.
fn clean(t: &Track, truth: impl Fn(f64) -> Option<(f64, f64)>, tol: f64) -> bool {
    t.observations.iter().all(|o| {
        truth(o.point.t_s).is_some_and(|(x, y)| (o.point.x_px - x).hypot(o.point.y_px - y) <= tol)
    })
}

fn fall(t: f64) -> (f64, f64) {
    // Released at t = 0.4 s from (900, 120): slow outward drift, 450 px/s^2 downward.
    let u = t - 0.4;
    (900.0 + 15.0 * u, 120.0 + 10.0 * u + 0.5 * 450.0 * u * u)
}

#[test]
fn falling_object_is_one_clean_track_from_its_first_detection() {
    let mut tr = Tracker::new(TrackerConfig {
        gravity_px_s2: 450.0,
        ..TrackerConfig::default()
    })
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let tracks = run(&mut tr, 75, |i| {
        let t = i as f64 / FPS;
        let mut c = Vec::new();
        if t >= 0.4 {
            let (x, y) = fall(t);
            c.push(cand(
                x + rng.random_range(-0.3..0.3),
                y + rng.random_range(-0.3..0.3),
            ));
        }
        c
    });
    assert_eq!(tracks.len(), 1, "{tracks:#?}");
    let t = &tracks[0];
    assert_eq!(t.observations.len(), 65);
    assert!(
        (t.start_s() - 0.4).abs() < 1e-9,
        "starts at the first detection"
    );
    assert!(clean(t, |s| (s >= 0.4).then(|| fall(s)), 0.5));
    // The filter found gravity.
    assert!(
        (t.acceleration_px_s2()[1] - 450.0).abs() < 80.0,
        "{:?}",
        t.acceleration_px_s2()
    );
}

#[test]
fn ten_frame_occlusion_is_bridged() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let tracks = run(&mut tr, 75, |i| {
        let t = i as f64 / FPS;
        if t >= 0.4 && !(30..40).contains(&i) {
            let (x, y) = fall(t);
            vec![cand(x, y)]
        } else {
            vec![]
        }
    });
    assert_eq!(tracks.len(), 1, "{} tracks", tracks.len());
    assert_eq!(tracks[0].observations.len(), 65 - 10);
    assert_eq!(tracks[0].coasted_frames, 10);
}

#[test]
fn a_longer_occlusion_ends_the_track() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let tracks = run(&mut tr, 75, |i| {
        let t = i as f64 / FPS;
        if t >= 0.4 && !(25..45).contains(&i) {
            let (x, y) = fall(t);
            vec![cand(x, y)]
        } else {
            vec![]
        }
    });
    // Shows the bridging test above can fail: 20 missed frames exceed the default 12.
    assert_eq!(tracks.len(), 2);
}

/// Blind frames the tests let [`Tracker::skip`] pass over (the pipeline's for the default
/// motion warm-up of 4 frames).
const MAX_BLIND: u32 = 6;

/// Runs the fall of [`fall`] (from frame 10) with frames `blind` unseen by the motion detector,
/// handed to the tracker through `blind_frame`; returns the confirmed tracks (finished or
/// flushed) and the tracker's statistics.
fn fall_with_blind_frames(
    blind: std::ops::Range<usize>,
    blind_frame: impl Fn(&mut Tracker, f64) -> Vec<Track>,
) -> (Vec<Track>, TrackerStats) {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut out = Vec::new();
    for i in 0..75 {
        let t = i as f64 / FPS;
        if blind.contains(&i) {
            out.extend(blind_frame(&mut tr, t));
        } else {
            let c = if t >= 0.4 {
                vec![cand(fall(t).0, fall(t).1)]
            } else {
                vec![]
            };
            out.extend(tr.update(t, &c));
        }
    }
    out.extend(tr.flush());
    (out, tr.stats())
}

/// A codec refresh re-bases the motion detector: a frame and two of warm-up without candidates,
/// two frames after the object appeared. Skipped, they cost the young track nothing; counted as
/// misses (an empty update), they end it and the track starts again after them.
#[test]
fn frames_the_detector_could_not_see_are_skipped_not_missed() {
    let (tracks, stats) = fall_with_blind_frames(12..15, |tr, t| tr.skip(t, MAX_BLIND));
    assert_eq!(tracks.len(), 1, "{} tracks", tracks.len());
    assert_eq!(tracks[0].observations.len(), 65 - 3);
    assert_eq!(tracks[0].coasted_frames, 0);
    assert!((tracks[0].start_s() - 0.4).abs() < 1e-9);
    assert_eq!(stats.blind_frames, 3);

    let (missed, _) = fall_with_blind_frames(12..15, |tr, t| tr.update(t, &[]));
    assert_eq!(missed.len(), 1);
    assert!(missed[0].start_s() > 0.5, "the young track died in the gap");
}

/// A long blind spell counts as misses after `max_blind_frames`: the track does not coast
/// through it for ever.
#[test]
fn a_long_blind_spell_ends_the_track() {
    let (tracks, stats) = fall_with_blind_frames(25..45, |tr, t| tr.skip(t, MAX_BLIND));
    assert_eq!(tracks.len(), 2, "{} tracks", tracks.len());
    assert_eq!(stats.blind_frames, u64::from(MAX_BLIND));
}

#[test]
fn crossing_objects_keep_their_identities() {
    let a = |t: f64| (400.0 + 120.0 * t, 300.0 + 80.0 * t + 0.5 * 300.0 * t * t);
    let b = |t: f64| (640.0 - 120.0 * t, 300.0 + 80.0 * t + 0.5 * 300.0 * t * t);
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let tracks = run(&mut tr, 50, |i| {
        let t = i as f64 / FPS;
        let (pa, pb) = (a(t), b(t));
        if (pa.0 - pb.0).abs() < 3.0 {
            // Merged into one blob while they overlap.
            vec![cand(0.5 * (pa.0 + pb.0), pa.1)]
        } else {
            vec![cand(pa.0, pa.1), cand(pb.0, pb.1)]
        }
    });
    assert_eq!(tracks.len(), 2, "{} tracks", tracks.len());
    for t in &tracks {
        let first = t.observations[0].point;
        let truth: &dyn Fn(f64) -> (f64, f64) = if first.x_px < 520.0 { &a } else { &b };
        assert!(clean(t, |s| Some(truth(s)), 2.0), "track {} switched", t.id);
        assert!(t.observations.len() >= 47);
    }
}

#[test]
fn static_flicker_never_starts_a_track() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let tracks = run(&mut tr, 200, |i| {
        let mut c = Vec::new();
        // A window light blinking, its centroid jittering by noise.
        if (i / 4) % 2 == 0 {
            c.push(cand(
                300.0 + rng.random_range(-0.5..0.5),
                200.0 + rng.random_range(-0.5..0.5),
            ));
        }
        // A steady lamp.
        c.push(cand(500.0 + rng.random_range(-0.3..0.3), 250.0));
        c
    });
    assert!(tracks.is_empty(), "{} tracks from flicker", tracks.len());
    assert!(tr.stats().births >= 2);
}

#[test]
fn rain_streaks_do_not_create_long_tracks() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let tracks = run(&mut tr, 100, |_| {
        (0..200)
            .map(|_| {
                streak(
                    rng.random_range(0.0..1920.0),
                    rng.random_range(0.0..1080.0),
                    rng.random_range(10.0..30.0),
                    1.4 + rng.random_range(-0.1..0.1),
                )
            })
            .collect()
    });
    let longest = tracks
        .iter()
        .map(|t| t.observations.len())
        .max()
        .unwrap_or(0);
    assert!(longest <= 4, "a rain track of {longest} points");
    assert!(tracks.len() <= 10, "{} rain tracks", tracks.len());
}

#[test]
fn an_elongated_object_tumbling_across_its_path_stays_on_its_track() {
    // A brick seen side-on: a 14 x 5 px blob lying across its downward path. Elongated, but too
    // wide to be a motion-blur streak, so its axis says nothing about its motion.
    let mut tr = Tracker::new(TrackerConfig {
        gravity_px_s2: 450.0,
        ..TrackerConfig::default()
    })
    .unwrap();
    let tracks = run(&mut tr, 75, |i| {
        let t = i as f64 / FPS;
        if t < 0.4 {
            return Vec::new();
        }
        let (x, y) = fall(t);
        vec![Candidate {
            length_px: 14.0,
            width_px: 5.0,
            orientation_rad: 0.3 * (i % 3) as f32,
            area_px: 60,
            ..cand(x, y)
        }]
    });
    let (best, good) = best_track(&tracks, |s| (s >= 0.4).then(|| fall(s)), 1.0).unwrap();
    assert!(good >= 60, "{good} of 65 points");
    assert!(clean(best, |s| (s >= 0.4).then(|| fall(s)), 1.0));
}

#[test]
fn a_falling_object_is_tracked_through_rain() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let tracks = run(&mut tr, 75, |i| {
        let t = i as f64 / FPS;
        let mut c: Vec<Candidate> = (0..150)
            .map(|_| {
                streak(
                    rng.random_range(0.0..1920.0),
                    rng.random_range(0.0..1080.0),
                    rng.random_range(10.0..30.0),
                    1.4,
                )
            })
            .collect();
        if t >= 0.4 {
            let (x, y) = fall(t);
            c.push(cand(x, y));
        }
        c
    });
    let (best, good) = best_track(&tracks, |s| (s >= 0.4).then(|| fall(s)), 1.0).unwrap();
    assert!(good >= 60, "{good} of 65 points");
    assert!(clean(best, |s| (s >= 0.4).then(|| fall(s)), 1.0));
}

#[test]
fn bird_and_leaf_paths_are_tracked_cleanly() {
    // A bird: fast, curving, speeding up and slowing down.
    let bird = |t: f64| {
        (
            200.0 + 300.0 * t + 40.0 * (3.0 * t).sin(),
            500.0 - 60.0 * t + 30.0 * (2.0 * t).cos() + 8.0 * (12.0 * t).sin(),
        )
    };
    // A leaf: slow descent, zigzag.
    let leaf = |t: f64| (1200.0 + 25.0 * (4.0 * t).sin(), 300.0 + 35.0 * t);
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let tracks = run(&mut tr, 100, |i| {
        let t = i as f64 / FPS;
        let (bx, by) = bird(t);
        let (lx, ly) = leaf(t);
        let mut c = vec![cand(bx, by), cand(lx, ly)];
        // Sparse clutter.
        for _ in 0..5 {
            c.push(cand(
                rng.random_range(0.0..1920.0),
                rng.random_range(0.0..1080.0),
            ));
        }
        c
    });
    for (name, truth) in [
        ("bird", &bird as &dyn Fn(f64) -> (f64, f64)),
        ("leaf", &leaf),
    ] {
        let (t, good) = best_track(&tracks, |s| Some(truth(s)), 1.0).unwrap();
        assert!(good >= 95, "{name}: {good} of 100 points in one track");
        assert!(
            clean(t, |s| Some(truth(s)), 1.0),
            "{name} track picked up clutter"
        );
    }
}

#[test]
fn fast_streaky_fall_is_tracked_and_exposure_learnt() {
    // Exposure half the frame interval: a streak is half the distance moved per frame.
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let traj = |t: f64| (700.0 + 60.0 * t, 50.0 + 300.0 * t + 0.5 * 600.0 * t * t);
    let tracks = run(&mut tr, 50, |i| {
        let t = i as f64 / FPS;
        let (x, y) = traj(t);
        let (vx, vy) = (60.0, 300.0 + 600.0 * t);
        let len = 0.5 * (vx * vx + vy * vy).sqrt() / FPS + 2.0;
        vec![streak(x, y, len, vy.atan2(vx))]
    });
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].observations.len(), 50);
    let f = tr.stats().exposure_fraction.expect("exposure learnt");
    assert!((f - 0.5).abs() < 0.1, "exposure fraction {f}");
}

#[test]
fn caps_hold_and_are_counted() {
    let mut tr = Tracker::new(TrackerConfig {
        max_tentative: 20,
        ..TrackerConfig::default()
    })
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    run(&mut tr, 10, |_| {
        (0..100)
            .map(|_| cand(rng.random_range(0.0..1920.0), rng.random_range(0.0..1080.0)))
            .collect()
    });
    assert!(tr.stats().births_capped > 0);
    assert!(tr.active().len() <= 20 + 64);
}

#[test]
fn gravity_from_calibration() {
    let calib = calib_rect(100.0, 100.0, 500.0, 940.0, &[]);
    // 840 px for 42 m: 20 px/m, so g is 196 px/s^2.
    let cfg = TrackerConfig::for_calibration(&calib);
    assert!((cfg.gravity_px_s2 - 196.2).abs() < 0.1);
    assert!(toml::from_str::<TrackerConfig>("gate = 3").is_err());
    let partial: TrackerConfig = toml::from_str("max_missed_frames = 20").unwrap();
    assert_eq!(partial.max_missed_frames, 20);
    assert_eq!(partial.confirm_hits, 3);
}

// --- end to end: synthetic frames -> motion -> tracks -------------------------------------------

const W: usize = 320;
const H: usize = 240;

fn pipeline() -> (MotionDetector, Tracker) {
    let calib = calib_rect(60.0, 30.0, 260.0, 200.0, &[]);
    (
        MotionDetector::new(&calib, W, H, MotionConfig::default()).unwrap(),
        Tracker::new(TrackerConfig::default()).unwrap(),
    )
}

/// Runs frames from `make(i) -> (objects, noise sigma, gain, shift x, shift y)`; returns the
/// confirmed tracks.
fn run_frames(
    scene: &mut Scene,
    frames: usize,
    mut make: impl FnMut(usize) -> (Vec<Obj>, f64, f64, f64, f64),
) -> Vec<Track> {
    let (mut det, mut tr) = pipeline();
    let mut out = Vec::new();
    for i in 0..frames {
        let (objs, sigma, gain, dx, dy) = make(i);
        let img = scene.frame(&objs, sigma, gain, dx, dy);
        let t = i as f64 / FPS;
        let cands = det.process(Luma::new(&img, W, H, W), t).unwrap();
        out.extend(tr.update(t, cands));
    }
    out.extend(tr.flush());
    out
}

fn slow_then_falling(i: usize, r: usize) -> (f64, f64) {
    let t = (i - r) as f64;
    let y = if t <= 10.0 {
        60.0 + 0.5 * t
    } else {
        let u = t - 10.0;
        65.0 + 0.5 * u + 0.5 * 0.15 * u * u
    };
    (150.3 + 0.2 * t, y)
}

#[test]
fn end_to_end_small_slow_object_tracked_to_the_end() {
    let release = 12;
    let frames = release + 50;
    let mut scene = Scene::new(W, H, 31);
    let tracks = run_frames(&mut scene, frames, |i| {
        let objs = if i >= release {
            let (x, y) = slow_then_falling(i, release);
            vec![Obj::dot(x, y, 2.0, 15.0)]
        } else {
            vec![]
        };
        (objs, 3.0, 1.0, 0.0, 0.0)
    });
    let truth = |t: f64| {
        let i = (t * FPS).round() as usize;
        (i >= release).then(|| slow_then_falling(i, release))
    };
    let (t, good) = best_track(&tracks, truth, 1.5).expect("a track");
    assert!(good >= 45, "{good} of 50 frames in the track");
    assert!(
        t.start_s() <= (release + 2) as f64 / FPS,
        "starts at {}",
        t.start_s()
    );
    assert!(
        t.end_s() >= (frames - 2) as f64 / FPS,
        "ends at {}",
        t.end_s()
    );
    assert!(clean(t, truth, 1.5));
    assert_eq!(tracks.len(), 1, "{} tracks", tracks.len());
}

#[test]
fn end_to_end_brightness_jump_and_shake_make_no_tracks() {
    let mut scene = Scene::new(W, H, 32);
    let tracks = run_frames(&mut scene, 80, |i| {
        let gain = if i >= 30 { 1.4 } else { 1.0 };
        let (dx, dy) = if (50..54).contains(&i) {
            (3.0, -1.0)
        } else {
            (0.0, 0.0)
        };
        (vec![], 3.0, gain, dx, dy)
    });
    assert!(tracks.is_empty(), "{} tracks", tracks.len());
}

#[test]
fn end_to_end_night_dim_object() {
    let release = 15;
    let frames = release + 40;
    let mut scene = Scene::new(W, H, 33);
    scene.level = 0.35;
    let tracks = run_frames(&mut scene, frames, |i| {
        let objs = if i >= release {
            let (x, y) = slow_then_falling(i, release);
            vec![Obj::dot(x, y, 3.0, 35.0)]
        } else {
            vec![]
        };
        (objs, 8.0, 1.0, 0.0, 0.0)
    });
    let truth = |t: f64| {
        let i = (t * FPS).round() as usize;
        (i >= release).then(|| slow_then_falling(i, release))
    };
    let (t, good) = best_track(&tracks, truth, 2.0).expect("a track");
    assert!(good >= 32, "{good} of 40 frames");
    assert!(clean(t, truth, 2.0));
    assert!(tracks.len() <= 2, "{} tracks at night", tracks.len());
}

#[test]
fn end_to_end_rain_makes_no_long_tracks() {
    let mut scene = Scene::new(W, H, 34);
    let mut rng = ChaCha8Rng::seed_from_u64(35);
    let tracks = run_frames(&mut scene, 60, |i| {
        let drops = if i >= 10 {
            (0..25)
                .map(|_| Obj {
                    x: rng.random_range(10.0..310.0),
                    y: rng.random_range(10.0..230.0),
                    size_px: 1.2,
                    contrast: 30.0,
                    length_px: 14.0,
                    angle_rad: 1.45,
                })
                .collect()
        } else {
            vec![]
        };
        (drops, 2.0, 1.0, 0.0, 0.0)
    });
    let longest = tracks
        .iter()
        .map(|t| t.observations.len())
        .max()
        .unwrap_or(0);
    assert!(longest <= 4, "rain track of {longest} points");
}

#[test]
fn a_track_does_not_live_on_in_clutter_after_its_object_leaves() {
    // An object moves for 30 frames, then vanishes into dense clutter around its path.
    let path = |t: f64| (600.0 + 150.0 * t, 400.0 + 100.0 * t);
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let tracks = run(&mut tr, 80, |i| {
        let t = i as f64 / FPS;
        let mut c: Vec<Candidate> = (0..120)
            .map(|_| {
                let mut k = cand(
                    rng.random_range(550.0..950.0),
                    rng.random_range(350.0..750.0),
                );
                if rng.random_bool(0.5) {
                    k.polarity = Polarity::Darker;
                    k.contrast = -k.contrast;
                }
                k
            })
            .collect();
        if i < 30 {
            let (x, y) = path(t);
            c.push(cand(x, y));
        }
        c
    });
    let (best, good) = best_track(&tracks, |s| Some(path(s)), 1.0).expect("tracked");
    assert!(good >= 25, "{good} points on the object");
    let extra = best.observations.len() - good;
    assert!(
        extra <= 3,
        "{extra} clutter points appended to the object's track"
    );
    // Clutter alone forms few confirmed tracks, and short ones.
    let long_clutter = tracks
        .iter()
        .filter(|t| t.id != best.id && t.observations.len() > 8)
        .count();
    assert!(long_clutter <= 3, "{long_clutter} long clutter tracks");
}

#[test]
fn dropped_frames_are_handled_by_time_not_count() {
    // A live source drops every third frame: the tracker sees uneven time steps.
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let mut out = Vec::new();
    for i in (0..75).filter(|i| i % 3 != 2) {
        let t = i as f64 / FPS;
        let c = if t >= 0.4 {
            let (x, y) = fall(t);
            vec![cand(x, y)]
        } else {
            vec![]
        };
        out.extend(tr.update(t, &c));
    }
    out.extend(tr.flush());
    assert_eq!(out.len(), 1, "{} tracks", out.len());
    assert!(clean(&out[0], |s| (s >= 0.4).then(|| fall(s)), 0.5));
    assert_eq!(out[0].coasted_frames, 0);
}

#[test]
fn detector_and_tracker_can_move_to_a_camera_thread() {
    fn send<T: Send + 'static>() {}
    send::<MotionDetector>();
    send::<Tracker>();
    send::<Track>();
}
