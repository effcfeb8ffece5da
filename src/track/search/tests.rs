//! Search tests on candidate lists: sparse and scattered sightings of a fall among clutter are
//! found; clutter, straight paths and static flicker are not.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::motion::Polarity;

const FPS: f64 = 25.0;
/// 20 pixels per metre.
const G_PX_S2: f64 = 196.2;
const W_PX: u32 = 1920;
const H_PX: u32 = 1080;

fn cand(x: f64, y: f64, size: f64) -> Candidate {
    let h = 0.5 * size;
    Candidate {
        x_px: x,
        y_px: y,
        x_min_px: (x - h).max(0.0) as u32,
        y_min_px: (y - h).max(0.0) as u32,
        x_max_px: (x + h).max(0.0) as u32,
        y_max_px: (y + h).max(0.0) as u32,
        area_px: (size * size) as u32,
        mass: 60.0,
        contrast: 12.0,
        peak_contrast: 15.0,
        polarity: Polarity::Brighter,
        length_px: size as f32,
        width_px: size as f32,
        orientation_rad: 0.0,
        fragments: 1,
    }
}

fn search() -> BallisticSearch {
    BallisticSearch::new(
        SearchConfig::default(),
        GravityField::uniform(G_PX_S2),
        W_PX,
        H_PX,
    )
    .unwrap()
}

/// Uniform clutter over the picture, `n` candidates.
fn clutter(rng: &mut ChaCha8Rng, n: usize) -> Vec<Candidate> {
    (0..n)
        .map(|_| {
            cand(
                rng.random_range(0.0..f64::from(W_PX)),
                rng.random_range(0.0..f64::from(H_PX)),
                rng.random_range(1.0..4.0),
            )
        })
        .collect()
}

/// Runs `frames` frames of `make(i, t_s)`; every track found, ended or flushed.
fn run(
    s: &mut BallisticSearch,
    frames: usize,
    mut make: impl FnMut(usize, f64) -> Vec<Candidate>,
) -> Vec<SearchTrack> {
    let mut out = Vec::new();
    for i in 0..frames {
        let t_s = i as f64 / FPS;
        out.extend(s.update(t_s, &make(i, t_s)));
    }
    out.extend(s.flush());
    out
}

/// A drop released at (900, 100) at 0.4 s, drifting 30 px/s sideways.
fn fall_at(t_s: f64) -> Option<[f64; 2]> {
    let dt = t_s - 0.4;
    (dt >= 0.0).then_some([900.0 + 30.0 * dt, 100.0 + 0.5 * G_PX_S2 * dt * dt])
}

/// Points of `track` within `tol` px of the fall.
fn on_fall(track: &SearchTrack, tol: f64) -> usize {
    track
        .points
        .iter()
        .filter(|p| fall_at(p.t_s).is_some_and(|q| (p.x_px - q[0]).hypot(p.y_px - q[1]) <= tol))
        .count()
}

/// The track with the most points on the fall (within `tol` px), and that count.
fn best_on_fall(tracks: &[SearchTrack], tol: f64) -> (&SearchTrack, usize) {
    let best = tracks
        .iter()
        .max_by_key(|t| on_fall(t, tol))
        .expect("a track");
    (best, on_fall(best, tol))
}

#[test]
fn a_fall_seen_in_one_frame_of_three_among_clutter_is_found() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut s = search();
    let tracks = run(&mut s, 75, |i, t_s| {
        let mut c = clutter(&mut rng, 150);
        if let Some(p) = fall_at(t_s).filter(|_| i % 3 == 0) {
            c.push(cand(p[0], p[1], 4.0));
        }
        c
    });
    let (best, on) = best_on_fall(&tracks, 1.0);
    // Sighted in 22 of the 65 frames after the release (before it leaves the picture).
    assert!(on >= 15, "{on} points on the fall");
    assert!(
        on * 10 >= best.points.len() * 8,
        "{on} of {} points on the fall",
        best.points.len()
    );
    // The rest of the clutter gives nothing that lasts.
    let others = tracks.iter().filter(|t| on_fall(t, 1.0) == 0).count();
    assert!(others <= 1, "{others} clutter tracks");
}

#[test]
fn a_large_object_seen_in_scattered_pieces_is_found() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut s = search();
    let tracks = run(&mut s, 60, |_, t_s| {
        let mut c = clutter(&mut rng, 50);
        if let Some(p) = fall_at(t_s).filter(|_| rng.random_bool(0.6)) {
            // A 20-px bottle: a piece anywhere within 8 px of its centre.
            let (dx, dy) = (rng.random_range(-8.0..8.0), rng.random_range(-8.0..8.0));
            c.push(cand(p[0] + dx, p[1] + dy, 20.0));
        }
        c
    });
    let (_, on) = best_on_fall(&tracks, 12.0);
    assert!(on >= 15, "{on} points on the fall");
}

#[test]
fn clutter_alone_gives_no_track() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut s = search();
    let tracks = run(&mut s, 125, |_, _| clutter(&mut rng, 200));
    assert!(
        tracks.is_empty(),
        "{} tracks: {:?}",
        tracks.len(),
        tracks.first()
    );
    assert!(
        s.stats().pairs > 1000,
        "the pairs were tried: {:?}",
        s.stats()
    );
}

#[test]
fn straight_paths_and_static_flicker_give_no_track() {
    let mut s = search();
    let tracks = run(&mut s, 75, |i, t_s| {
        let mut c = Vec::new();
        // A drop at its terminal speed, a gliding bird, a window light blinking.
        c.push(cand(300.0 + 5.0 * t_s, 50.0 + 180.0 * t_s, 3.0));
        c.push(cand(1500.0 - 150.0 * t_s, 600.0 + 20.0 * t_s, 6.0));
        if i % 2 == 0 {
            c.push(cand(1200.0, 400.0, 3.0));
        }
        c
    });
    assert!(tracks.is_empty(), "{:?}", tracks.first());
}

#[test]
fn a_bird_climbing_is_not_a_fall() {
    let mut s = search();
    // Upward acceleration (a bird taking off): the fit's acceleration points up.
    let tracks = run(&mut s, 50, |_, t_s| {
        vec![cand(
            700.0 + 60.0 * t_s,
            800.0 - 0.5 * G_PX_S2 * t_s * t_s,
            5.0,
        )]
    });
    assert!(tracks.is_empty(), "{:?}", tracks.first());
}

#[test]
fn the_fit_recovers_a_parabola_exactly() {
    let truth = Parabola {
        t0_s: 1.0,
        p_px: [10.0, 20.0],
        v_px_s: [3.0, -40.0],
        a_px_s2: [0.5, 300.0],
    };
    let pts: Vec<(f64, [f64; 2])> = (0..7)
        .map(|i| {
            let t = 1.0 + 0.04 * f64::from(i * i);
            (t, truth.at(t))
        })
        .collect();
    let m = Parabola::fit(&pts).unwrap();
    for t in [0.5, 1.3, 3.0] {
        let (a, b) = (m.at(t), truth.at(t));
        assert!(
            (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6,
            "{a:?} {b:?}"
        );
    }
    assert!(Parabola::fit(&pts[..2]).is_none());
}

#[test]
fn gravity_is_looked_up_per_cell() {
    let g = GravityField::sampled(100, 50, 10, |p| [p[0], p[1]]);
    assert_eq!(g.at([3.0, 4.0]), [5.0, 5.0]);
    assert_eq!(g.at([99.0, 49.0]), [95.0, 45.0]);
    // Outside the picture: the nearest cell.
    assert_eq!(g.at([-5.0, 500.0]), [5.0, 45.0]);
}

#[test]
fn bad_settings_are_refused_by_name() {
    let bad = |f: fn(&mut SearchConfig)| {
        let mut c = SearchConfig::default();
        f(&mut c);
        c.validate().unwrap_err().to_string()
    };
    assert!(bad(|c| c.gate_px = 0.0).contains("search.gate_px"));
    assert!(bad(|c| c.min_accel_frac = 2.0).contains("search.min_accel_frac"));
    assert!(bad(|c| c.pair_frames = vec![]).contains("search.pair_frames"));
    assert!(bad(|c| c.min_support = 2).contains("search.min_support"));
    assert!(SearchConfig::default().validate().is_ok());
}

#[test]
fn the_poisson_tail_matches_its_sum() {
    // P(X >= 2; 1) = 1 - 2/e.
    assert!((poisson_tail(2, 1.0) - (1.0 - 2.0 / std::f64::consts::E)).abs() < 1e-9);
    assert_eq!(poisson_tail(0, 3.0), 1.0);
    assert_eq!(poisson_tail(3, 0.0), 0.0);
    // Eight of eight by chance at 0.1 per frame is rare; at 5 per window it is not.
    assert!(poisson_tail(8, 0.8) < 1e-5);
    assert!(poisson_tail(8, 5.0) > 0.1);
}

#[test]
fn a_parabola_through_dense_clutter_needs_more_support() {
    // Clutter packed into one 200 x 200 patch: 60 candidates per frame (one per 670 px^2); a
    // fall through it, seen in half its frames, is no better than chance there.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut s = search();
    let tracks = run(&mut s, 50, |i, t_s| {
        let mut c: Vec<Candidate> = (0..60)
            .map(|_| {
                cand(
                    rng.random_range(800.0..1000.0),
                    rng.random_range(100.0..300.0),
                    3.0,
                )
            })
            .collect();
        if let Some(p) = fall_at(t_s).filter(|_| i % 2 == 0) {
            c.push(cand(p[0], p[1], 3.0));
        }
        c
    });
    assert!(tracks.is_empty(), "{} tracks", tracks.len());
}

/// The occupancy map against the plain answer: is some marked point within the square?
#[test]
fn the_occupancy_map_agrees_with_a_plain_scan() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (w, h) = (333.0, 201.0);
    let mut occ = Occupancy::new(w, h);
    let pts: Vec<[f64; 2]> = (0..40)
        .map(|_| [rng.random_range(0.0..w), rng.random_range(0.0..h)])
        .collect();
    for p in &pts {
        occ.mark(*p);
    }
    let cell = |v: f64| (v / OCCUPANCY_CELL_PX).floor();
    for _ in 0..5000 {
        let q = [
            rng.random_range(-30.0..w + 30.0),
            rng.random_range(-30.0..h + 30.0),
        ];
        let r = rng.random_range(0.5..40.0);
        // The reference: a marked point whose cell overlaps the square's cells.
        let plain = pts.iter().any(|p| {
            (cell(q[0] - r)..=cell(q[0] + r)).contains(&cell(p[0]))
                && (cell(q[1] - r)..=cell(q[1] + r)).contains(&cell(p[1]))
        });
        assert_eq!(occ.any_near(q, r), plain, "{q:?} r {r}");
    }
    // Nothing marked: nothing near.
    occ.clear();
    assert!(!occ.any_near([100.0, 100.0], 50.0));
}

/// A stream whose clock restarts: the live track ends at the jump and the window starts again
/// (nothing grows without bound, the fall after the jump is found on its own).
#[test]
fn a_clock_that_goes_back_ends_the_live_tracks() {
    let mut s = search();
    let mut ended = Vec::new();
    // The fall, frames `from` to 39.
    let fall_frames = |s: &mut BallisticSearch, ended: &mut Vec<SearchTrack>, from: i32| {
        for i in from..40 {
            let t_s = f64::from(i) / FPS;
            let c: Vec<Candidate> = fall_at(t_s)
                .map(|p| cand(p[0], p[1], 4.0))
                .into_iter()
                .collect();
            ended.extend(s.update(t_s, &c));
        }
    };
    fall_frames(&mut s, &mut ended, 0);
    assert!(
        ended.is_empty() && s.live_points().count() == 1,
        "one live track"
    );
    ended.extend(s.update(0.0, &[]));
    assert_eq!(ended.len(), 1, "ended at the jump");
    assert_eq!(s.live_points().count(), 0);
    fall_frames(&mut s, &mut ended, 1);
    assert_eq!(s.live_points().count(), 1, "found again");
    assert!(s.frames.len() <= 31, "{} frames kept", s.frames.len());
}
