//! Tracker cost per frame with 0, 10 and 100 candidates per frame: a few real falling objects
//! among random clutter, on a 1080p-sized field, in steady state (tracks alive, tentative tracks
//! being born and dropped).

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fallwatch::motion::Candidate;
use fallwatch::track::{Tracker, TrackerConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::cand;

/// 250 frames of candidates: up to 3 falling objects, the rest random clutter.
fn frames(per_frame: usize) -> Vec<Vec<Candidate>> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    (0..250)
        .map(|i| {
            let t = f64::from(i % 50) / 25.0;
            let mut c: Vec<Candidate> = (0..per_frame.min(3))
                .map(|k| cand(500.0 + 400.0 * k as f64, 100.0 + 0.5 * 450.0 * t * t))
                .collect();
            while c.len() < per_frame {
                c.push(cand(
                    rng.random_range(0.0..1920.0),
                    rng.random_range(0.0..1080.0),
                ));
            }
            c
        })
        .collect()
}

fn tracker(c: &mut Criterion) {
    let mut g = c.benchmark_group("track/update");
    for n in [0usize, 10, 100] {
        let fr = frames(n);
        let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
        let mut i = 0usize;
        // Reach a steady state first.
        for f in &fr {
            tr.update(i as f64 / 25.0, f);
            i += 1;
        }
        g.bench_function(BenchmarkId::new("candidates", n), |b| {
            b.iter(|| {
                let f = &fr[i % fr.len()];
                let out = tr.update(i as f64 / 25.0, f);
                i += 1;
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, tracker);
criterion_main!(benches);
