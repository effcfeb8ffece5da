//! Ballistic search cost per frame at 720p, 1080p and 1440p with 50 and 200 candidates per
//! frame: two falling objects seen in every second frame among random clutter, in steady state
//! (the window full, live tracks being extended, pairs tried on every free candidate).

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fallwatch::motion::Candidate;
use fallwatch::track::search::{BallisticSearch, GravityField, SearchConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::cand;

/// 250 frames of candidates for a `w` x `h` picture with gravity `g_px_s2`.
fn frames(w: f64, h: f64, g_px_s2: f64, per_frame: usize) -> Vec<Vec<Candidate>> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    (0..250)
        .map(|i| {
            let t = f64::from(i % 50) / 25.0;
            let mut c: Vec<Candidate> = Vec::new();
            if i % 2 == 0 {
                for k in 0..2 {
                    c.push(cand(
                        w * (0.3 + 0.4 * f64::from(k)),
                        0.1 * h + 0.5 * g_px_s2 * t * t,
                    ));
                }
            }
            while c.len() < per_frame {
                c.push(cand(rng.random_range(0.0..w), rng.random_range(0.0..h)));
            }
            c
        })
        .collect()
}

fn search(c: &mut Criterion) {
    let mut g = c.benchmark_group("search/update");
    for (name, w, h) in [
        ("720p", 1280u32, 720u32),
        ("1080p", 1920, 1080),
        ("1440p", 2560, 1440),
    ] {
        // About 10 pixels per metre at 1080p, scaled with the picture.
        let g_px_s2 = 98.1 * f64::from(h) / 1080.0;
        for n in [50usize, 200] {
            let fr = frames(f64::from(w), f64::from(h), g_px_s2, n);
            let mut s = BallisticSearch::new(
                SearchConfig::default(),
                GravityField::uniform(g_px_s2),
                w,
                h,
            )
            .unwrap();
            let mut i = 0usize;
            for f in &fr {
                s.update(i as f64 / 25.0, f);
                i += 1;
            }
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    let f = &fr[i % fr.len()];
                    let out = s.update(i as f64 / 25.0, f);
                    i += 1;
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
