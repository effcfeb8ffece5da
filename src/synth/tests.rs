//! Tests of the generator as a whole: determinism, geometry of the truth, the rendered object
//! being where the truth says, the calibration, the physics, and a decodable clip.

use nalgebra::{SMatrix, SVector};

use super::objects::{Body, Flight, G_M_S2};
use super::*;
use crate::calib::Calibration;

fn small_opts(seed: u64) -> SynthOptions {
    let mut o = SynthOptions::new(seed, format!("t{seed}"));
    o.resolution = Resolution::Custom(480, 270);
    o.duration_s = 6.0;
    o.fps = 15;
    o.render = RenderSettings {
        samples: 1,
        noise: true,
    };
    o
}

fn hash_frame(f: &encode::YuvFrame) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in f.y.iter().chain(&f.u).chain(&f.v) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn frame_hashes(opts: &SynthOptions, frames: &[u32]) -> Vec<u64> {
    let plan = ClipPlan::new(opts).unwrap();
    let mut r = Renderer::new(&plan, opts.render);
    let mut out = Vec::new();
    for i in 0..=*frames.iter().max().unwrap() {
        let f = r.render(i);
        if frames.contains(&i) {
            out.push(hash_frame(&f));
        }
    }
    out
}

#[test]
fn same_seed_same_frames_other_seed_other_frames() {
    let mut o = small_opts(5);
    o.distractors = Some(vec![
        DistractorKind::Bird,
        DistractorKind::Rain,
        DistractorKind::Shake,
    ]);
    let a = frame_hashes(&o, &[0, 3]);
    let b = frame_hashes(&o, &[0, 3]);
    assert_eq!(a, b);
    o.seed = 6;
    let c = frame_hashes(&o, &[0, 3]);
    assert_ne!(a, c);
}

/// The homography from facade metres (x from the left edge, height above ground) to pixels,
/// solved from the calibration's four corners (DLT with h33 = 1).
fn homography(c: &Calibration) -> SMatrix<f64, 3, 3> {
    let f = &c.facade;
    let top = f.base_height_m + f.height_m;
    let world = [
        (0.0, top),
        (f.width_m, top),
        (f.width_m, f.base_height_m),
        (0.0, f.base_height_m),
    ];
    let mut a = SMatrix::<f64, 8, 8>::zeros();
    let mut b = SVector::<f64, 8>::zeros();
    for (k, ((x, y), [u, v])) in world.iter().zip(f.corners_px).enumerate() {
        let r = 2 * k;
        a.row_mut(r)
            .copy_from_slice(&[*x, *y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y]);
        a.row_mut(r + 1)
            .copy_from_slice(&[0.0, 0.0, 0.0, *x, *y, 1.0, -v * x, -v * y]);
        b[r] = u;
        b[r + 1] = v;
    }
    let h = a.lu().solve(&b).expect("corners in general position");
    SMatrix::<f64, 3, 3>::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0)
}

#[test]
fn release_px_is_the_calibration_homography_of_the_release_foot() {
    for seed in [1, 2, 3, 4] {
        let o = small_opts(seed);
        let plan = ClipPlan::new(&o).unwrap();
        let truth = plan.truth();
        let calib = Calibration::from_toml(&plan.calibration().to_toml()).unwrap();
        let h = homography(&calib);
        assert!(!truth.objects.is_empty());
        for obj in &truth.objects {
            let p = h * nalgebra::Vector3::new(obj.x_m, obj.height_m, 1.0);
            let (u, v) = (p.x / p.z, p.y / p.z);
            assert!(
                (u - obj.release_px[0]).abs() < 0.01 && (v - obj.release_px[1]).abs() < 0.01,
                "seed {seed}: homography ({u}, {v}) vs truth {:?}",
                obj.release_px
            );
            assert_eq!(obj.floor, calib.floor_at(obj.height_m));
            assert_eq!(obj.bay, calib.bay_at(obj.x_m));
            assert!(obj.bay >= 1 && obj.bay <= calib.windows.bays as i32);
            assert!(
                (0.2..=2.0).contains(&obj.wall_distance_m),
                "{}",
                obj.wall_distance_m
            );
            // Hand or railing height above the floor's level.
            let above = obj.height_m - calib.floor_base_m(obj.floor);
            assert!((0.9..=1.6).contains(&above), "{above}");
            // One track entry per frame, in order, starting at the release.
            let dt = 1.0 / truth.fps;
            assert!(
                obj.track[0].t_s >= obj.release_s - 1e-9 && obj.track[0].t_s < obj.release_s + dt
            );
            for w in obj.track.windows(2) {
                assert!((w[1].t_s - w[0].t_s - dt).abs() < 1e-6);
            }
            assert_eq!(obj.end_s, obj.track.last().unwrap().t_s);
        }
    }
}

#[test]
fn calibration_validates_and_round_trips() {
    for seed in 10..14 {
        let mut o = small_opts(seed);
        o.distractors = Some(vec![DistractorKind::Tree]);
        let plan = ClipPlan::new(&o).unwrap();
        let c = plan.calibration();
        c.validate().unwrap();
        let back = Calibration::from_toml(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        // Corners inside the image.
        for [x, y] in c.facade.corners_px {
            assert!(x > 0.0 && y > 0.0 && x < 480.0 && y < 270.0);
        }
        assert_eq!(c.floors.first_storey_m, plan.building.first_storey_m);
        assert_eq!(c.floors.storey_m, plan.building.storey_m);
    }
}

#[test]
fn the_object_is_rendered_at_its_truth_track() {
    let mut o = small_opts(21);
    o.resolution = Resolution::Custom(640, 360);
    // Shake moves the picture: the truth must move with it.
    o.distractors = Some(vec![DistractorKind::Shake]);
    o.distance_m = Some(16.0);
    o.object_kind = Some(ObjectKind::Box);
    o.time_of_day = Some(TimeOfDay::Day);
    o.render.noise = false;
    let with = ClipPlan::new(&o).unwrap();
    let mut without = with.clone();
    without.objects.clear();
    let truth = with.truth();
    let track = &truth.objects[0].track;
    // A few visible frames along the fall.
    let picks: Vec<&TrackTruth> = track
        .iter()
        .filter(|p| p.visible && p.size_px >= 3.0)
        .step_by(4)
        .take(4)
        .collect();
    assert!(
        !picks.is_empty(),
        "no visible frame with a big enough object"
    );
    let mut ra = Renderer::new(&with, o.render);
    let mut rb = Renderer::new(&without, o.render);
    let fps = truth.fps;
    let last = (picks.last().unwrap().t_s * fps).round() as u32;
    for i in 0..=last {
        let (fa, fb) = (ra.render(i), rb.render(i));
        let Some(p) = picks.iter().find(|p| ((p.t_s * fps).round() as u32) == i) else {
            continue;
        };
        // The centroid of the luma difference.
        let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
        for y in 0..fa.height {
            for x in 0..fa.width {
                let d =
                    (f64::from(fa.y[y * fa.width + x]) - f64::from(fb.y[y * fb.width + x])).abs();
                if d > 4.0 {
                    sx += d * (x as f64 + 0.5);
                    sy += d * (y as f64 + 0.5);
                    sw += d;
                }
            }
        }
        assert!(sw > 0.0, "frame {i}: the object changed nothing");
        let (cx, cy) = (sx / sw, sy / sw);
        let err = ((cx - p.x_px).powi(2) + (cy - p.y_px).powi(2)).sqrt();
        assert!(
            err < (0.5 * p.size_px).max(1.5),
            "frame {i}: difference centroid ({cx:.1}, {cy:.1}) vs truth ({:.1}, {:.1}), size {:.1}",
            p.x_px,
            p.y_px,
            p.size_px
        );
    }
}

#[test]
fn a_drop_without_drag_falls_g_over_2_in_the_first_second() {
    let mut rng = <SynthRng as rand::SeedableRng>::seed_from_u64(1);
    let mut body = Body::random(&mut rng, ObjectKind::Brick);
    body.cd = 0.0;
    let p0 = camera::V3::new(0.0, 100.0, 1.0);
    let f = Flight::simulate(
        &body,
        p0,
        camera::V3::zeros(),
        camera::V3::zeros(),
        2.0,
        3.0,
        &|_| false,
    );
    let p = f.at(3.0).unwrap();
    assert!(
        (p0.y - p.y - G_M_S2 / 2.0).abs() < 1e-6,
        "fell {}",
        p0.y - p.y
    );
    assert!((p.x - p0.x).abs() < 1e-12 && (p.z - p0.z).abs() < 1e-12);
    assert!(f.at(1.99).is_none());
    // With drag, a bag falls much more slowly than a brick.
    let brick = Body::random(&mut rng, ObjectKind::Brick);
    let mut bag = Body::random(&mut rng, ObjectKind::Bag);
    bag.mass_kg = 0.05;
    let fall = |b: &Body| {
        let f = Flight::simulate(
            b,
            p0,
            camera::V3::zeros(),
            camera::V3::zeros(),
            0.0,
            2.0,
            &|_| false,
        );
        p0.y - f.at(2.0).unwrap().y
    };
    let (fb, fg) = (fall(&brick), fall(&bag));
    assert!(fb > 18.0 && fb < G_M_S2 * 2.0, "brick fell {fb}");
    assert!(fg < 0.5 * fb, "bag fell {fg}, brick {fb}");
    assert!(bag.terminal_m_s() < 6.0 && brick.terminal_m_s() > 20.0);
}

#[test]
fn a_generated_clip_decodes_with_the_expected_frame_count() {
    use crate::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};
    let dir = tempfile::tempdir().unwrap();
    let mut o = small_opts(31);
    o.resolution = Resolution::Custom(320, 180);
    o.duration_s = 1.0;
    o.objects = Some(0);
    o.distractors = Some(vec![DistractorKind::Bird]);
    let rep = generate_clip(&o, dir.path(), &|_, _| {}).unwrap();
    assert_eq!(rep.truth.frames, 15);
    let mut src = FfmpegOpener
        .open(
            &SourceSpec::new(rep.mp4.display().to_string()),
            &Cancel::new(),
        )
        .unwrap();
    assert_eq!((src.info().width, src.info().height), (320, 180));
    assert_eq!(src.info().codec, "h264");
    let mut frames = 0;
    let mut keys = 0;
    while let Some(item) = src.next_item().unwrap() {
        match item {
            Item::Frame(f) => {
                assert!((f.pts_s - f64::from(frames) / 15.0).abs() < 1e-3);
                frames += 1;
            }
            Item::Packet(p) => keys += u32::from(p.is_key),
        }
    }
    assert_eq!(frames, 15);
    assert_eq!(keys, 1, "GOP of 2 s: one keyframe in 1 s");
    let t = Truth::load(&rep.truth_path).unwrap();
    assert_eq!(t, rep.truth);
    assert!(Calibration::load(&rep.calib).is_ok());
}

#[test]
fn presets_do_what_they_say() {
    let mut o = small_opts(41);
    o.preset = Some(Preset::AboveTopEdge);
    let t = ClipPlan::new(&o).unwrap().truth();
    assert!(t.objects[0].release_px[1] < 0.0);
    assert!(t.tags.iter().any(|x| x == "above_top_edge"));
    assert!(!t.objects[0].track[0].visible);
    assert!(t.objects[0].track.iter().any(|p| p.visible));
    o.preset = Some(Preset::BirdsOnly);
    let t = ClipPlan::new(&o).unwrap().truth();
    assert!(t.objects.is_empty());
    assert_eq!(t.distractors[0].kind, "bird");
    // A third of an evaluation set has no object.
    let base = small_opts(0);
    let none = (1000..1012)
        .filter(|s| {
            let e = eval_options(&base, *s);
            e.objects == Some(0) || e.preset.is_some_and(|p| p.distractors_only())
        })
        .count();
    assert_eq!(none, 4);
}

#[test]
fn object_kinds_have_sizes_of_4_to_40_cm_and_sensible_drag() {
    let mut rng = <SynthRng as rand::SeedableRng>::seed_from_u64(9);
    for kind in ObjectKind::ALL {
        let mut terminal = Vec::new();
        for _ in 0..200 {
            let b = Body::random(&mut rng, kind);
            assert!(
                (0.04..=0.40).contains(&b.size_m()),
                "{kind:?} {}",
                b.size_m()
            );
            assert!(b.mass_kg > 0.0 && b.area_m2 > 0.0 && b.cd > 0.0);
            terminal.push(b.terminal_m_s());
        }
        terminal.sort_by(f64::total_cmp);
        let median = terminal[terminal.len() / 2];
        match kind {
            ObjectKind::Brick => assert!(median > 35.0, "brick {median}"),
            ObjectKind::Bag => assert!(median < 20.0, "bag {median}"),
            _ => assert!(median > 5.0, "{kind:?} {median}"),
        }
    }
}
