//! Scenario tests of the motion detector on synthetic frames.

use super::testutil::{Obj, Scene, calib_rect};
use super::*;
use crate::ingest::Luma;

const W: usize = 320;
const H: usize = 240;

fn detector(cfg: MotionConfig) -> MotionDetector {
    let calib = calib_rect(60.0, 30.0, 260.0, 200.0, &[]);
    MotionDetector::new(&calib, W, H, cfg).unwrap()
}

fn run(det: &mut MotionDetector, img: &[u8], i: usize) -> Vec<Candidate> {
    det.process(Luma::new(img, W, H, W), i as f64 / 25.0)
        .unwrap()
        .to_vec()
}

fn near(cands: &[Candidate], x: f64, y: f64, tol: f64) -> Option<Candidate> {
    cands
        .iter()
        .filter(|c| (c.x_px - x).hypot(c.y_px - y) <= tol)
        .min_by(|a, b| {
            (a.x_px - x)
                .hypot(a.y_px - y)
                .total_cmp(&(b.x_px - x).hypot(b.y_px - y))
        })
        .copied()
}

/// Truth of the slow-then-accelerating object: (x, y) at frame `i` (released at `r`).
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
fn region_covers_the_grown_facade_minus_ignored_areas() {
    let calib = calib_rect(60.0, 30.0, 260.0, 200.0, &[[0.0, 150.0, 100.0, 240.0]]);
    let det = MotionDetector::new(&calib, W, H, MotionConfig::default()).unwrap();
    let roi = det.region();
    let inside = |x: u32, y: usize| roi.row(y).iter().any(|s| s.x0 <= x && x < s.x1);
    assert!(inside(160, 100));
    // The margin: 25% of 200 px + 48 px beyond the left edge is clipped at 0.
    assert!(inside(5, 100));
    // Ignored corner.
    assert!(!inside(50, 200));
    assert!(inside(150, 200));
    // A facade far outside the image is refused with a clear message.
    let off = calib_rect(5000.0, 5000.0, 6000.0, 6000.0, &[]);
    let e = MotionDetector::new(&off, W, H, MotionConfig::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not overlap"), "{e}");
}

#[test]
fn small_slow_object_is_detected_from_an_early_frame() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 11);
    let release = 12;
    let mut first_hit = None;
    let mut hits = 0;
    let mut far_false = 0;
    let frames = 50;
    for i in 0..release + frames {
        let objs: Vec<Obj> = if i >= release {
            let (x, y) = slow_then_falling(i, release);
            vec![Obj::dot(x, y, 2.0, 15.0)]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 3.0, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= release {
            let (x, y) = slow_then_falling(i, release);
            if let Some(c) = near(&cands, x, y, 1.5) {
                hits += 1;
                first_hit.get_or_insert(i - release);
                assert_eq!(c.polarity, Polarity::Brighter);
            }
            far_false += cands
                .iter()
                .filter(|c| (c.x_px - x).hypot(c.y_px - y) > 6.0)
                .count();
        } else if i >= 8 {
            far_false += cands.len();
        }
    }
    assert!(first_hit.is_some_and(|f| f <= 2), "first hit {first_hit:?}");
    assert!(hits >= frames * 9 / 10, "hit {hits} of {frames} frames");
    // Single-window noise alarms at the 5-sigma threshold: about one frame in five here
    // (~75k windows), a couple per frame at 1080p; they never line up into tracks.
    assert!(far_false <= 15, "{far_false} false candidates");
}

/// Candidates near a tumbling box with a lit (upper) and a shaded (lower) face, each 6 px
/// across, moving down the picture; `face_gap_px` as configured.
fn box_faces(face_gap_px: i32) -> Vec<Vec<Candidate>> {
    let mut det = detector(MotionConfig {
        face_gap_px,
        ..MotionConfig::default()
    });
    let mut scene = Scene::new(W, H, 7);
    let mut out = Vec::new();
    for i in 0..30 {
        let (x, y) = (150.0, 60.0 + 2.0 * i as f64);
        let objs = if i >= 14 {
            vec![
                Obj::dot(x, y - 4.5, 6.0, 30.0),
                Obj::dot(x, y + 4.5, 6.0, -30.0),
            ]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 1.5, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= 16 {
            out.push(
                cands
                    .into_iter()
                    .filter(|c| (c.x_px - x).abs() < 10.0 && (c.y_px - y).abs() < 10.0)
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn a_lit_and_a_shaded_face_are_one_candidate() {
    // The difference crosses zero between the faces: they are two components, which the face
    // rule joins into one object centred between them.
    for frame in box_faces(-1) {
        assert_eq!(frame.len(), 2, "{frame:?}");
    }
    for frame in box_faces(MotionConfig::default().face_gap_px) {
        assert_eq!(frame.len(), 1, "{frame:?}");
        let c = frame[0];
        assert_eq!(c.fragments, 2);
        assert!(c.h_px() >= 12.0, "{c:?}");
    }
}

#[test]
fn centroid_is_sub_pixel_accurate() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 5);
    let mut errs = Vec::new();
    for i in 0..44 {
        let (x, y) = (100.25 + 0.7 * i as f64, 80.6 + 0.3 * i as f64);
        let objs = if i >= 14 {
            vec![Obj::dot(x, y, 4.0, 40.0)]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 2.0, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= 14 {
            let c = near(&cands, x, y, 3.0).expect("detected");
            errs.push((c.x_px - x).hypot(c.y_px - y));
        }
    }
    let mean = errs.iter().sum::<f64>() / errs.len() as f64;
    assert!(mean < 0.35, "mean centroid error {mean}");
}

#[test]
fn night_noise_with_a_dim_object() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 21);
    scene.level = 0.35;
    let release = 15;
    let frames = 40;
    let mut hits = 0;
    let mut false_cands = 0;
    for i in 0..release + frames {
        let objs = if i >= release {
            let (x, y) = slow_then_falling(i, release);
            vec![Obj::dot(x, y, 3.0, 35.0)]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 8.0, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= release {
            let (x, y) = slow_then_falling(i, release);
            hits += usize::from(near(&cands, x, y, 2.0).is_some());
            false_cands += cands
                .iter()
                .filter(|c| (c.x_px - x).hypot(c.y_px - y) > 6.0)
                .count();
        }
    }
    assert!(hits >= frames * 8 / 10, "hit {hits} of {frames}");
    // Noise sigma 8 over ~70k pixels: false candidates stay rare.
    assert!(false_cands <= frames / 2, "{false_cands} false candidates");
    let sigma = det.stats().median_noise_grey;
    // The tile noise estimate measures the difference noise (box sum / 8).
    assert!((6.0..12.0).contains(&sigma), "noise estimate {sigma}");
}

/// Rain: bright streaks all over the picture, new ones every frame. They fill the brighter tail
/// of the differences and the two-sided noise estimate with it; a dark object falling through
/// the rain must still be found, on the darker side's own threshold.
#[test]
fn a_dark_object_is_found_in_bright_rain() {
    use rand::RngExt;
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 23);
    let release = 30;
    let frames = 40;
    let (mut hits, mut bright) = (0, 0);
    for i in 0..release + frames {
        // The rain starts once the background has been learnt.
        let drops = if i >= 10 { RAIN_DROPS } else { 0 };
        let mut objs: Vec<Obj> = (0..drops)
            .map(|_| Obj {
                length_px: 7.0,
                angle_rad: 1.45,
                ..Obj::dot(
                    scene.rng.random_range(60.0..260.0),
                    scene.rng.random_range(30.0..200.0),
                    1.0,
                    scene.rng.random_range(20.0..50.0),
                )
            })
            .collect();
        if i >= release {
            let (x, y) = slow_then_falling(i, release);
            objs.push(Obj::dot(x, y, 3.0, -22.0));
        }
        let img = scene.frame(&objs, 2.0, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= release {
            let (x, y) = slow_then_falling(i, release);
            hits += usize::from(
                near(&cands, x, y, 2.0).is_some_and(|c| c.polarity == Polarity::Darker),
            );
            bright += cands
                .iter()
                .filter(|c| c.polarity == Polarity::Brighter)
                .count();
        }
    }
    // The drops stay under the brighter side's threshold: ~30 of the 100 per frame pass it
    // (~66 with both sides held to the darker side's threshold).
    assert!(
        bright <= frames * 40,
        "{bright} brighter candidates in {frames} frames"
    );
    // Without a threshold of its own, the darker side is held to the rain's: 0 of 40.
    assert!(hits >= frames / 2, "hit {hits} of {frames}");
}

/// Rain drops per frame in [`a_dark_object_is_found_in_bright_rain`].
const RAIN_DROPS: usize = 100;

#[test]
fn global_brightness_jump_gives_no_candidates() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 3);
    let mut after_jump = 0;
    for i in 0..40 {
        let gain = if i >= 20 { 1.4 } else { 1.0 };
        let img = scene.frame(&[], 3.0, gain, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        if i >= 20 {
            after_jump += cands.len();
        }
        if i == 20 {
            assert!(det.stats().illumination_event, "{:?}", det.stats());
        }
    }
    assert_eq!(after_jump, 0);
    assert_eq!(det.stats().total_illumination_events, 1);
}

#[test]
fn gradual_and_local_light_changes_are_compensated() {
    // A cloud shadow: the left part of the image darkens by 20% over 2 s, with a penumbra a
    // third of the image wide.
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 4);
    let mut total = 0;
    for i in 0..80 {
        let mut img = scene.frame(&[], 2.0, 1.0, 0.0, 0.0);
        let depth = 0.2 * ((i as f64 - 15.0) / 50.0).clamp(0.0, 1.0);
        for y in 0..H {
            for x in 0..W {
                let inside = 1.0 - ((x as f64 - 100.0) / 100.0).clamp(0.0, 1.0);
                let v = &mut img[y * W + x];
                *v = (f64::from(*v) * (1.0 - depth * inside)).round() as u8;
            }
        }
        let cands = run(&mut det, &img, i);
        if i >= 10 {
            // Allow the shadow edge (one tile column wide) but no flood of candidates.
            total += cands.len();
        }
    }
    assert!(total <= 15, "{total} candidates from a soft shadow");
    assert_eq!(det.stats().total_floods, 0);
}

#[test]
fn camera_shake_gives_no_spurious_candidates() {
    for &(dx, dy) in &[(3.0, 0.0), (0.0, -3.0), (2.0, 2.0), (1.5, -0.5)] {
        let mut det = detector(MotionConfig::default());
        let mut scene = Scene::new(W, H, 8);
        let mut spurious = 0;
        let mut compensated = 0;
        for i in 0..30 {
            let (sx, sy) = if (20..23).contains(&i) {
                (dx, dy)
            } else {
                (0.0, 0.0)
            };
            let img = scene.frame(&[], 2.0, 1.0, sx, sy);
            let cands = run(&mut det, &img, i);
            if i >= 10 {
                spurious += cands.len();
            }
            if (20..23).contains(&i) {
                let s = det.stats().shift;
                assert!(
                    (s.dx_px - dx).abs() < 0.35 && (s.dy_px - dy).abs() < 0.35,
                    "shift ({dx}, {dy}) estimated {s:?}"
                );
                compensated += usize::from(det.stats().shift_compensated);
            }
        }
        assert_eq!(compensated, 3);
        assert!(
            spurious <= 2,
            "shake ({dx},{dy}): {spurious} spurious candidates"
        );
    }
}

/// A pole-mounted camera in wind: a translation of up to 3 px and a rotation of up to 0.15
/// degrees (1.7 px at the corners of this 720p facade), oscillating for two seconds while an
/// object falls. Returns (frames the object was found in, frames registered, floods) over the
/// shaken frames; asserts the estimated motion when `check_shift`.
fn rotating_camera(cfg: MotionConfig, check_shift: bool) -> (usize, usize, u64) {
    const W: usize = 1280;
    const H: usize = 720;
    let calib = calib_rect(100.0, 60.0, 1180.0, 660.0, &[]);
    let mut det = MotionDetector::new(&calib, W, H, cfg).unwrap();
    let mut scene = Scene::new(W, H, 10);
    scene.edge_px = 2.5;
    let (mut hits, mut shaken) = (0, 0);
    let (cx, cy) = ((W as f64 - 1.0) / 2.0, (H as f64 - 1.0) / 2.0);
    for i in 0..70 {
        let t = i as f64 / 25.0;
        let on = if i >= 20 { 1.0 } else { 0.0 };
        let phase = 2.0 * std::f64::consts::PI * 1.3 * t;
        let (dx, dy) = (on * 3.0 * phase.sin(), on * 2.0 * (1.7 * phase).cos());
        let angle = on * 0.15f64.to_radians() * (0.8 * phase).sin();
        // The object, on the facade: where the shaken camera shows it.
        let (fx, fy) = (500.0 + 0.5 * i as f64, 100.0 + 0.1 * (i * i) as f64);
        let (sn, cs) = angle.sin_cos();
        let (u, v) = (fx - cx, fy - cy);
        let (ix, iy) = (cs * u - sn * v + cx + dx, sn * u + cs * v + cy + dy);
        let img = scene.frame_rotated(&[Obj::dot(ix, iy, 3.0, -45.0)], 2.0, 1.0, dx, dy, angle);
        let cands = det.process(Luma::new(&img, W, H, W), t).unwrap().to_vec();
        if i < 20 {
            continue;
        }
        shaken += usize::from(det.stats().shift_compensated);
        if check_shift {
            // The estimated offset matches the true one at the corners of the facade.
            let s = det.stats().shift;
            for (x, y) in [
                (100.0, 60.0),
                (1180.0, 60.0),
                (100.0, 660.0),
                (1180.0, 660.0),
            ] {
                let (ox, oy) = s.offset_at(x, y);
                let (u, v) = (x - cx, y - cy);
                let (tx, ty) = (cs * u - sn * v + cx + dx - x, sn * u + cs * v + cy + dy - y);
                assert!(
                    (ox - tx).abs() < 0.4 && (oy - ty).abs() < 0.4,
                    "frame {i} at ({x}, {y}): offset ({ox:.2}, {oy:.2}), true ({tx:.2}, {ty:.2})"
                );
            }
        }
        hits += usize::from(near(&cands, fx, fy, 1.5).is_some());
    }
    (hits, shaken, det.stats().total_floods)
}

/// The wind-shaken, rotating camera is registered: its motion is estimated to a few tenths of
/// a pixel at the facade's corners, no frame floods, and the object is found in (nearly) every
/// shaken frame, where without compensation it is lost in all of them. Known cost: the
/// resampling blur on window edges still gives spurious candidates (about 90 per frame here),
/// which the pipeline's temporal-change test and the tracker must absorb.
#[test]
fn rotating_and_shaking_camera_is_registered() {
    let (hits, shaken, floods) = rotating_camera(MotionConfig::default(), true);
    let off = MotionConfig {
        shake: false,
        ..MotionConfig::default()
    };
    let (hits_off, _, _) = rotating_camera(off, false);
    assert!(shaken >= 45, "{shaken} of 50 frames registered");
    assert_eq!(floods, 0);
    assert!(
        hits >= 45 && hits_off <= 5,
        "object in {hits} frames vs {hits_off}"
    );
}

/// A shaken frame is registered onto the background's geometry: the registered plane matches
/// the unshaken view far better than the raw frame does (the change test of the pipeline
/// compares registered frames), and a still frame has no registered plane.
#[test]
fn shaken_frame_is_registered_onto_the_still_view() {
    const W: usize = 1280;
    const H: usize = 720;
    let calib = calib_rect(100.0, 60.0, 1180.0, 660.0, &[]);
    let mut det = MotionDetector::new(&calib, W, H, MotionConfig::default()).unwrap();
    let mut scene = Scene::new(W, H, 11);
    scene.edge_px = 2.5;
    for i in 0..10 {
        let img = scene.frame(&[], 1.0, 1.0, 0.0, 0.0);
        det.process(Luma::new(&img, W, H, W), i as f64 / 25.0)
            .unwrap();
        assert!(det.registered().is_none());
    }
    let still = scene.frame(&[], 0.0, 1.0, 0.0, 0.0);
    let shaken = scene.frame_rotated(&[], 1.0, 1.0, 1.6, -0.7, 0.1f64.to_radians());
    det.process(Luma::new(&shaken, W, H, W), 0.4).unwrap();
    let reg = det.registered().expect("a shaken frame is registered");
    let mad = |img: &dyn Fn(usize, usize) -> u8| {
        let (mut sum, mut n) = (0u64, 0u64);
        for y in (80..640).step_by(2) {
            for x in (120..1160).step_by(2) {
                sum += u64::from(img(x, y).abs_diff(still[y * W + x]));
                n += 1;
            }
        }
        sum as f64 / n as f64
    };
    let raw = mad(&|x, y| shaken[y * W + x]);
    let registered = mad(&|x, y| reg.get(x, y));
    assert!(
        registered < 1.5 && registered * 5.0 < raw,
        "mean |difference| from the still view: registered {registered:.2}, raw {raw:.2}"
    );
}

#[test]
fn shake_without_compensation_would_flood() {
    // The same 3-px shake with compensation off: shows the test above can fail.
    let cfg = MotionConfig {
        shake: false,
        ..MotionConfig::default()
    };
    let mut det = detector(cfg);
    let mut scene = Scene::new(W, H, 8);
    let mut bad = 0;
    for i in 0..22 {
        let s = if i >= 20 { 3.0 } else { 0.0 };
        let img = scene.frame(&[], 2.0, 1.0, s, 0.0);
        bad += run(&mut det, &img, i).len() + usize::from(det.stats().flood) * 1000;
    }
    assert!(bad > 10);
}

#[test]
fn moving_object_detected_while_the_camera_shakes() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 9);
    let mut hits = 0;
    for i in 0..30 {
        let (sx, sy) = if i >= 20 { (2.0, 1.0) } else { (0.0, 0.0) };
        // The object moves on the facade; the camera shakes on top of that.
        let (x, y) = (200.0, 50.0 + 2.0 * i as f64);
        let img = scene.frame(&[Obj::dot(x + sx, y + sy, 3.0, -40.0)], 2.0, 1.0, sx, sy);
        let cands = run(&mut det, &img, i);
        // Reported in the calibration's frame: the shake removed.
        if i >= 20 && near(&cands, x, y, 1.0).is_some_and(|c| c.polarity == Polarity::Darker) {
            hits += 1;
        }
    }
    assert!(hits >= 9, "{hits} of 10 shaken frames");
}

/// Candidates in frames 80..120 of a scene with a blinking window and a swaying textured patch.
fn flicker_and_sway_candidates(cfg: MotionConfig) -> usize {
    let mut det = detector(cfg);
    let mut scene = Scene::new(W, H, 12);
    let mut late = 0;
    for i in 0..120 {
        let mut img = scene.frame(&[], 2.0, 1.0, 0.0, 0.0);
        let on = (i / 3) % 2 == 0;
        for y in 100..110 {
            for x in 200..212 {
                if on {
                    img[y * W + x] = img[y * W + x].saturating_add(60);
                }
            }
        }
        // Sway: a textured 20x20 patch jittering by +-2 px.
        let jx = [0i64, 2, -1, -2, 1][i % 5];
        for y in 140..160i64 {
            for x in 80..100i64 {
                let v = scene.texture((x - jx) as f64 * 3.0, y as f64 * 3.0);
                img[(y as usize) * W + x as usize] = v.clamp(0.0, 255.0) as u8;
            }
        }
        let cands = run(&mut det, &img, i);
        if i >= 80 {
            late += cands.len();
        }
    }
    late
}

#[test]
fn flicker_and_sway_are_suppressed_by_variability() {
    let with = flicker_and_sway_candidates(MotionConfig::default());
    let without = flicker_and_sway_candidates(MotionConfig {
        var_mult: 0,
        ..MotionConfig::default()
    });
    assert!(with <= 15, "{with} candidates from learned flicker/sway");
    assert!(
        without > 5 * with.max(10),
        "without suppression only {without}"
    );
}

#[test]
fn rain_is_capped_and_counted_not_flooded() {
    let cfg = MotionConfig {
        max_candidates: 20,
        ..MotionConfig::default()
    };
    let mut det = detector(cfg);
    let mut scene = Scene::new(W, H, 14);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut max_seen = 0;
    for i in 0..34 {
        // 30 streaks in 320x240 is ~800 in a 1080p frame: heavy rain.
        let drops: Vec<Obj> = if i >= 14 {
            (0..30)
                .map(|_| Obj {
                    x: rng.random_range(10.0..310.0),
                    y: rng.random_range(10.0..230.0),
                    size_px: 1.2,
                    contrast: 30.0,
                    length_px: 12.0,
                    angle_rad: 1.45,
                })
                .collect()
        } else {
            vec![]
        };
        let img = scene.frame(&drops, 2.0, 1.0, 0.0, 0.0);
        let cands = run(&mut det, &img, i);
        max_seen = max_seen.max(cands.len());
        if i >= 16 {
            assert!(det.stats().dropped_over_cap > 0, "{:?}", det.stats());
            // Streaks keep their shape: long and near-vertical.
            let streaky = cands
                .iter()
                .filter(|c| c.elongation() > 2.5 && f64::from(c.orientation_rad).abs() > 1.2)
                .count();
            assert!(streaky * 2 > cands.len(), "{streaky} of {}", cands.len());
        }
    }
    assert_eq!(max_seen, 20);
    assert!(det.stats().total_capped_frames >= 18);
    assert_eq!(det.stats().total_floods, 0);
}

#[test]
fn streak_gives_orientation_and_length() {
    let mut det = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 15);
    let mut got = None;
    for i in 0..14 {
        let objs = if i == 13 {
            vec![Obj {
                x: 160.0,
                y: 120.0,
                size_px: 3.0,
                contrast: 50.0,
                length_px: 20.0,
                angle_rad: 0.5,
            }]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 2.0, 1.0, 0.0, 0.0);
        got = near(&run(&mut det, &img, i), 160.0, 120.0, 2.0);
    }
    let c = got.expect("streak detected");
    assert!((f64::from(c.orientation_rad) - 0.5).abs() < 0.1, "{c:?}");
    assert!((18.0..28.0).contains(&c.length_px), "{c:?}");
    assert!(c.elongation() > 4.0);
}

#[test]
fn wrong_frame_size_is_an_error() {
    let mut det = detector(MotionConfig::default());
    let img = vec![0u8; 100 * 100];
    let e = det
        .process(Luma::new(&img, 100, 100, 100), 0.0)
        .unwrap_err();
    assert!(e.to_string().contains("100x100"));
}

#[test]
fn config_defaults_round_trip_and_unknown_fields_are_refused() {
    let cfg = MotionConfig::default();
    let text = toml::to_string(&cfg).unwrap();
    let back: MotionConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, cfg);
    let partial: MotionConfig = toml::from_str("k_sigma = 4.0").unwrap();
    assert_eq!(partial.k_sigma, 4.0);
    assert_eq!(partial.tile_w_px, 128);
    assert!(toml::from_str::<MotionConfig>("k_sigmaa = 4.0").is_err());
    let bad = MotionConfig {
        bg_rate: 0.5,
        ..MotionConfig::default()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("bg_rate"));
}

#[test]
fn memory_is_reported() {
    let det = detector(MotionConfig::default());
    let px = det.region().pixel_count();
    // At least the background and variability (a byte each) per region pixel.
    assert!(
        det.memory_bytes() >= 2 * px,
        "{} for {px} px",
        det.memory_bytes()
    );
}

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn probit_inverts_the_normal_cdf() {
    // Known quantiles.
    for &(p, z) in &[
        (0.5, 0.0),
        (0.841_344_746, 1.0),
        (0.975, 1.959_964),
        (0.001, -3.090_232),
    ] {
        assert!((super::probit(p) - z).abs() < 1e-5, "probit({p})");
        assert!((super::normal_cdf(z) - p).abs() < 1e-6, "cdf({z})");
    }
}

#[test]
fn row_stride_padding_changes_nothing() {
    // Decoders hand out planes whose rows are padded; the result must not depend on it.
    let mut a = detector(MotionConfig::default());
    let mut b = detector(MotionConfig::default());
    let mut scene = Scene::new(W, H, 40);
    let stride = W + 32;
    for i in 0..24 {
        let objs = if i >= 14 {
            vec![Obj::dot(100.0 + 3.0 * i as f64, 90.0, 3.0, 30.0)]
        } else {
            vec![]
        };
        let img = scene.frame(&objs, 2.0, 1.0, 0.0, 0.0);
        let mut padded = vec![7u8; stride * H];
        for y in 0..H {
            padded[y * stride..y * stride + W].copy_from_slice(&img[y * W..(y + 1) * W]);
        }
        let ca = a
            .process(Luma::new(&img, W, H, W), i as f64 / 25.0)
            .unwrap()
            .to_vec();
        let cb = b
            .process(Luma::new(&padded, W, H, stride), i as f64 / 25.0)
            .unwrap()
            .to_vec();
        assert_eq!(ca, cb, "frame {i}");
        if i >= 16 {
            assert!(!ca.is_empty());
        }
    }
}
