//! Cost of assessing one candidate track (`physics::assess`): the facade-plane fit, the 3-D
//! ballistic fit under both outward-speed hypotheses, the release point and the score.
//! Inputs are generated in-process from a synthetic camera (physics::sim).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use fallwatch::events::TrackPoint;
use fallwatch::physics::sim::{Distractor3, FallingObject, Observer, Scene, SceneSpec};
use fallwatch::physics::{FacadeModel, assess};

/// A fall track of exactly `n` points (1 px noise), sampled at `fps`.
fn fall_track(scene: &Scene, n: usize, fps: f64) -> Vec<TrackPoint> {
    let h = scene.floor_base_m(12) + 1.2;
    let fall = FallingObject::drop(0.013, [scene.bay_centre_m(4), h, 0.5], 35.0);
    let path = fall.path(fps, 10.0);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut track = Observer::default().observe(&scene.camera, &path, &mut rng);
    assert!(track.len() >= n, "only {} points", track.len());
    track.truncate(n);
    track
}

/// A throw outward at 3 m/s: the slowest case (both outward-speed hypotheses are fitted).
fn throw_track(scene: &Scene, n: usize, fps: f64) -> Vec<TrackPoint> {
    let h = scene.floor_base_m(12) + 1.2;
    let fall = FallingObject {
        vel_m_s: [0.0, 0.0, 3.0],
        ..FallingObject::drop(0.013, [scene.bay_centre_m(4), h, 0.3], 35.0)
    };
    let path = fall.path(fps, 10.0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut track = Observer::default().observe(&scene.camera, &path, &mut rng);
    assert!(track.len() >= n, "only {} points", track.len());
    track.truncate(n);
    track
}

fn bird_track(scene: &Scene, n: usize, fps: f64) -> Vec<TrackPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let path = Distractor3::BirdFlapping.path([12.0, 20.0, 6.0], fps, n as f64 / fps, &mut rng);
    let mut track = Observer::default().observe(&scene.camera, &path, &mut rng);
    track.truncate(n);
    track
}

fn bench_assess(c: &mut Criterion) {
    let scene = Scene::new(SceneSpec {
        pitch_deg: 28.0,
        ..SceneSpec::default()
    });
    let model = FacadeModel::new(&scene.calib, scene.spec.width_px, scene.spec.height_px)
        .expect("synthetic calibration is valid");
    let mut group = c.benchmark_group("physics_assess");
    // 40 points at 25 fps (1.6 s) and 100 points at 50 fps (2 s).
    for (n, fps) in [(40usize, 25.0), (100, 50.0)] {
        let fall = fall_track(&scene, n, fps);
        assert!(assess(&model, &fall).fall().is_some());
        group.bench_with_input(BenchmarkId::new("fall", n), &fall, |b, t| {
            b.iter(|| assess(&model, black_box(t)))
        });
        let throw = throw_track(&scene, n, fps);
        assert!(assess(&model, &throw).fall().is_some());
        group.bench_with_input(BenchmarkId::new("throw", n), &throw, |b, t| {
            b.iter(|| assess(&model, black_box(t)))
        });
        let bird = bird_track(&scene, n, fps);
        group.bench_with_input(BenchmarkId::new("bird", n), &bird, |b, t| {
            b.iter(|| assess(&model, black_box(t)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_assess);
criterion_main!(benches);
