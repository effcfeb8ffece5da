//! Motion detection cost per frame at 720p, 1080p and 1440p, on a generated textured facade with
//! sensor noise and a few moving objects; plus the main kernels, fast against reference.
//!
//! `facade`: the region a real calibration gives (facade plus margin, ~45% of the frame here);
//! `full`: the whole frame (the worst case). Compare with the decode baseline of
//! `shared/notes/baselines.md` (1080p: ~3.85 ms/frame, one thread) or, better, with
//! `examples/motion_vs_decode.rs`, which measures both in one run.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fallwatch::calib::Calibration;
use fallwatch::ingest::Luma;
use fallwatch::motion::{MotionConfig, MotionDetector, kernels};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

const RESOLUTIONS: [(&str, usize, usize); 3] = [
    ("720p", 1280, 720),
    ("1080p", 1920, 1080),
    ("1440p", 2560, 1440),
];
const FRAMES: usize = 8;

/// A textured facade (window grid, shading) as seen by a camera looking up, with noise.
fn frames(w: usize, h: usize) -> Vec<Vec<u8>> {
    let s = w as f64 / 1920.0;
    let mut base = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 / s, y as f64 / s);
            let bx = (fx % 48.0) as u32;
            let by = (fy % 40.0) as u32;
            let window = (10..38).contains(&bx) && (8..30).contains(&by);
            let wall = 130.0 + 25.0 * (fx * 0.004).sin() + 20.0 * (fy * 0.006).cos();
            let v = if window {
                60.0 + 30.0 * ((fx / 48.0).floor() * 1.3 + (fy / 40.0).floor() * 0.7).sin()
            } else {
                wall
            } + 5.0 * (fx * 0.9).sin() * (fy * 0.7).cos();
            base[y * w + x] = v as f32;
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let noise = Normal::new(0.0f32, 3.0).unwrap();
    (0..FRAMES)
        .map(|i| {
            let mut f: Vec<u8> = base
                .iter()
                .map(|&v| (v + noise.sample(&mut rng)).round().clamp(0.0, 255.0) as u8)
                .collect();
            // A few small moving objects.
            for k in 0..6 {
                let cx = (w / 3 + k * w / 20) as i64;
                let cy = (h / 5 + i * 9 * (k + 1)) as i64;
                for dy in -2..=2i64 {
                    for dx in -2..=2i64 {
                        let (x, y) = (cx + dx, cy + dy);
                        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                            let p = &mut f[y as usize * w + x as usize];
                            *p = p.saturating_add(40);
                        }
                    }
                }
            }
            f
        })
        .collect()
}

fn calibration(w: usize, h: usize, full: bool) -> Calibration {
    let s = w as f64 / 1920.0;
    let c = if full {
        [
            [0.0, 0.0],
            [w as f64, 0.0],
            [w as f64, h as f64],
            [0.0, h as f64],
        ]
    } else {
        [
            [700.0 * s, 60.0 * s],
            [1250.0 * s, 90.0 * s],
            [1230.0 * s, 1000.0 * s],
            [720.0 * s, 1030.0 * s],
        ]
    };
    let text = format!(
        "[camera]\nid = \"bench\"\n[facade]\ncorners_px = [[{}, {}], [{}, {}], [{}, {}], [{}, {}]]\n\
         width_m = 24.0\nheight_m = 42.0\nbase_height_m = 1.2\n[floors]\nfirst_storey_m = 3.6\n\
         storey_m = 3.0\n[windows]\nbays = 6\n",
        c[0][0], c[0][1], c[1][0], c[1][1], c[2][0], c[2][1], c[3][0], c[3][1]
    );
    Calibration::from_toml(&text).unwrap()
}

fn detect(c: &mut Criterion) {
    let mut g = c.benchmark_group("motion/detect");
    g.sample_size(30);
    for (name, w, h) in RESOLUTIONS {
        let fr = frames(w, h);
        for (region, full) in [("facade", false), ("full", true)] {
            let mut det =
                MotionDetector::new(&calibration(w, h, full), w, h, MotionConfig::default())
                    .unwrap();
            // Past the warm-up, so every stage runs.
            for (i, f) in fr.iter().cycle().take(24).enumerate() {
                det.process(Luma::new(f, w, h, w), i as f64 / 25.0).unwrap();
            }
            let px = det.region().pixel_count();
            let st = det.stats();
            eprintln!(
                "{name} {region}: region {:.0}% of the frame, model memory {:.1} MiB, \
                 {} candidates, re-bases {} (floods {}, refreshes {}, light {})",
                100.0 * px as f64 / (w * h) as f64,
                det.memory_bytes() as f64 / 1048576.0,
                st.candidates,
                st.total_rebases,
                st.total_floods,
                st.total_refreshes,
                st.total_illumination_events
            );
            g.throughput(Throughput::Elements(1));
            let mut i = 24usize;
            g.bench_function(BenchmarkId::new(region, name), |b| {
                b.iter(|| {
                    let f = &fr[i % FRAMES];
                    i += 1;
                    black_box(
                        det.process(Luma::new(f, w, h, w), i as f64 / 25.0)
                            .unwrap()
                            .len(),
                    )
                })
            });
        }
    }
    g.finish();
}

fn kernels_fast_vs_reference(c: &mut Criterion) {
    let mut g = c.benchmark_group("motion/kernel-1080p-frame");
    g.sample_size(20);
    let (w, h) = (1920usize, 1080usize);
    let img = frames(w, h).swap_remove(0);
    let mut bg: Vec<u8> = img.iter().map(|&v| v.saturating_add(1)).collect();
    let mut var = vec![4u8; w * h];
    let gain = vec![kernels::UNIT_GAIN_Q11; w];
    let dither: Vec<u8> = (0..w).map(|x| (x * 73 % 256) as u8).collect();
    let mut d4 = vec![0i16; w];
    let p = kernels::UpdateParams {
        fg_thr_q2: 30,
        rate_bg_q8: 16,
        rate_fg_q8: 8,
        rate_var_q8: 8,
        var_clip_q2: 255,
    };
    g.throughput(Throughput::Elements((w * h) as u64));
    g.bench_function("diff_update/fast", |b| {
        b.iter(|| {
            for y in 0..h {
                let r = y * w..(y + 1) * w;
                black_box(kernels::diff_update(
                    &img[r.clone()],
                    &mut bg[r.clone()],
                    &mut var[r],
                    &mut d4,
                    &gain,
                    &dither,
                    p,
                ));
            }
        })
    });
    g.bench_function("diff_update/reference", |b| {
        b.iter(|| {
            for y in 0..h {
                let r = y * w..(y + 1) * w;
                black_box(kernels::diff_update_ref(
                    &img[r.clone()],
                    &mut bg[r.clone()],
                    &mut var[r],
                    &mut d4,
                    &gain,
                    &dither,
                    p,
                ));
            }
        })
    });
    let hp = vec![10i16; w];
    let hc = vec![-7i16; w];
    let mut s = vec![0i16; w];
    let mut mask = vec![0u8; w];
    let tp = kernels::ThresholdParams {
        t_tile: 120,
        t_dark: 120,
        noise_level: 24,
    };
    g.bench_function("box_threshold/fast", |b| {
        b.iter(|| {
            for _ in 0..h - 1 {
                black_box(kernels::box_threshold(
                    &hp[..w - 1],
                    &hc[..w - 1],
                    tp,
                    &mut s[..w - 1],
                    &mut mask[..w - 1],
                ));
            }
        })
    });
    g.bench_function("box_threshold/reference", |b| {
        b.iter(|| {
            for _ in 0..h - 1 {
                black_box(kernels::box_threshold_ref(
                    &hp[..w - 1],
                    &hc[..w - 1],
                    tp,
                    &mut s[..w - 1],
                    &mut mask[..w - 1],
                ));
            }
        })
    });
    // A dense (night-like) foreground: a third of the windows over the tile threshold.
    let s_dense: Vec<i16> = (0..w).map(|x| ((x * 37 % 97) as i16 - 48) * 8).collect();
    let mask_dense: Vec<u8> = (0..w).map(|x| u8::from(x % 3 == 0)).collect();
    let (v0, v1) = (&var[..w], &var[w..2 * w]);
    for (name, fast) in [("fast", true), ("reference", false)] {
        g.bench_function(format!("suppress_variable/{name}"), |b| {
            b.iter(|| {
                for _ in 0..h - 1 {
                    mask.copy_from_slice(&mask_dense);
                    let f = if fast {
                        kernels::suppress_variable
                    } else {
                        kernels::suppress_variable_ref
                    };
                    black_box(f(&mut mask[..w - 1], &s_dense[..w - 1], v0, v1, 8));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, detect, kernels_fast_vs_reference);
criterion_main!(benches);
