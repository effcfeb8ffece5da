//! Detector benches: the crop kernel (fast vs reference, 720p/1080p/1440p frames) and the shipped
//! NanoDet model's crops per second at batch 1, 8 and 32, as one batched run (the model is
//! batch-dynamic) and as single runs (what a fixed-batch model does), on 1 and 2 intra-op
//! threads, and through a `DetectPool` of 1 and 2 workers. Inputs are generated in-process or
//! checked in (tests/data/astronaut.png). Needs ONNX Runtime (scripts/setup.sh).
//!
//! Times are **CPU time of the process** (all its threads, `CLOCK_PROCESS_CPUTIME_ID`), so figures
//! stay meaningful on a machine shared with other work and show what the detector costs the other
//! stages; the `latency` group alone is wall time (batch 1, 1 vs 2 intra-op threads).
//!
//!     cargo bench --bench detect                 # everything (~10 min on 2 cores)
//!     cargo bench --bench detect -- crop         # the crop kernel only

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fallwatch::detect::crop::{
    Chroma, CropWindow, Plane, YuvMatrix, YuvView, crop_rgb, crop_rgb_reference,
};
use fallwatch::detect::pool::{DetectRequest, RequestKind};
use fallwatch::detect::{DetectConfig, DetectPool, Detector, OnnxDetector};
use image::RgbImage;

/// CPU time of the whole process, nanoseconds.
struct CpuTime;

fn process_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

impl Measurement for CpuTime {
    type Intermediate = f64;
    type Value = f64;
    fn start(&self) -> f64 {
        process_cpu_ns()
    }
    fn end(&self, start: f64) -> f64 {
        process_cpu_ns() - start
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical_ns >= 1e6 {
            (1e6, "ms cpu")
        } else {
            (1e3, "us cpu")
        };
        values.iter_mut().for_each(|v| *v /= div);
        unit
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
            _ => 1.0,
        };
        values.iter_mut().for_each(|v| *v = n * 1e9 / *v);
        "crops/cpu-s"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

const RESOLUTIONS: [(&str, usize, usize); 3] = [
    ("720p", 1280, 720),
    ("1080p", 1920, 1080),
    ("1440p", 2560, 1440),
];

fn yuv420(w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let y = (0..w * h)
        .map(|i| ((i * 7 + i / w * 3) % 251) as u8)
        .collect();
    let c = (w / 2) * (h / 2);
    let u = (0..c).map(|i| (96 + i % 64) as u8).collect();
    let v = (0..c).map(|i| (160 - i % 64) as u8).collect();
    (y, u, v)
}

fn crop_kernel(c: &mut Criterion<CpuTime>) {
    let mut g = c.benchmark_group("crop");
    for (name, w, h) in RESOLUTIONS {
        let (y, u, v) = yuv420(w, h);
        let view = YuvView {
            y: Plane::new(&y, w, h, w),
            chroma: Chroma::Planar {
                u: Plane::new(&u, w / 2, h / 2, w / 2),
                v: Plane::new(&v, w / 2, h / 2, w / 2),
                shift_x: 1,
                shift_y: 1,
            },
            matrix: YuvMatrix::BT709,
        };
        // A 24 px object: 84 px window upscaled to the 320 px model input.
        let win = CropWindow::around(
            w as f32 * 0.6,
            h as f32 * 0.3,
            24.0,
            3.5,
            40.0,
            w as u32,
            h as u32,
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("fast_320", name), |b| {
            b.iter(|| crop_rgb(black_box(&view), &win, 320))
        });
        g.bench_function(BenchmarkId::new("reference_320", name), |b| {
            b.iter(|| crop_rgb_reference(black_box(&view), &win, 320))
        });
    }
    g.finish();
}

fn crops(n: usize, px: u32) -> Vec<RgbImage> {
    let photo = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/astronaut.png"
    ))
    .expect("astronaut.png")
    .to_rgb8();
    (0..n)
        .map(|i| {
            let s = 200 + (i as u32 * 37) % 300;
            let sub = image::imageops::crop_imm(
                &photo,
                (i as u32 * 13) % (512 - s),
                (i as u32 * 29) % (512 - s),
                s,
                s,
            )
            .to_image();
            image::imageops::resize(&sub, px, px, image::imageops::FilterType::Triangle)
        })
        .collect()
}

fn nanodet(threads: usize, input_px: u32, max_batch: usize) -> OnnxDetector {
    OnnxDetector::load(&DetectConfig {
        input_px: Some(input_px),
        threads_per_session: threads,
        max_batch,
        ..DetectConfig::default()
    })
    .expect("shipped NanoDet and ONNX Runtime (scripts/setup.sh)")
}

fn model(c: &mut Criterion<CpuTime>) {
    let mut g = c.benchmark_group("nanodet");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (input_px, batches) in [(320u32, &[1usize, 8, 32][..]), (416, &[1][..])] {
        let imgs = crops(32, input_px);
        for threads in [1usize, 2] {
            for &batch in batches {
                let refs: Vec<&RgbImage> = imgs[..batch].iter().collect();
                g.throughput(Throughput::Elements(batch as u64));
                let mut batched = nanodet(threads, input_px, batch);
                g.bench_function(
                    BenchmarkId::new(format!("batched_{input_px}px_{threads}t"), batch),
                    |b| b.iter(|| batched.detect(black_box(&refs)).unwrap()),
                );
                if batch > 1 {
                    let mut single = nanodet(threads, input_px, 1);
                    g.bench_function(
                        BenchmarkId::new(format!("single_runs_{input_px}px_{threads}t"), batch),
                        |b| b.iter(|| single.detect(black_box(&refs)).unwrap()),
                    );
                }
            }
        }
    }
    g.finish();
}

fn pool(c: &mut Criterion<CpuTime>) {
    let mut g = c.benchmark_group("pool");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    let n = 16usize;
    let imgs = crops(n, 320);
    g.throughput(Throughput::Elements(n as u64));
    for (workers, max_batch) in [(1usize, 1usize), (2, 1), (2, 8)] {
        let cfg = DetectConfig {
            workers,
            max_batch,
            queue_depth: 64,
            input_px: Some(320),
            ..DetectConfig::default()
        };
        let pool = DetectPool::from_config(&cfg).expect("pool");
        let cam = pool.camera("bench");
        g.bench_function(
            BenchmarkId::new(format!("{workers}w_batch{max_batch}_320px"), n),
            |b| {
                b.iter(|| {
                    for (i, img) in imgs.iter().enumerate() {
                        let req = DetectRequest {
                            track_id: i as u64,
                            t_s: 0.0,
                            kind: RequestKind::Label,
                            window: CropWindow {
                                x0_px: 0.0,
                                y0_px: 0.0,
                                side_px: 84.0,
                            },
                            crop: img.clone(),
                        };
                        cam.submit(req);
                    }
                    for _ in 0..n {
                        black_box(cam.replies().recv().unwrap());
                    }
                })
            },
        );
        assert_eq!(cam.stats().shed, 0, "bench queue must not shed");
    }
    g.finish();
}

/// Wall-clock latency of one crop, 1 vs 2 intra-op threads (only meaningful on a quiet machine).
fn latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let imgs = crops(1, 320);
    let refs: Vec<&RgbImage> = imgs.iter().collect();
    for threads in [1usize, 2] {
        let mut det = nanodet(threads, 320, 1);
        g.bench_function(
            BenchmarkId::new("nanodet_320px", format!("{threads}t")),
            |b| b.iter(|| det.detect(black_box(&refs)).unwrap()),
        );
    }
    g.finish();
}

criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(CpuTime);
    targets = crop_kernel, model, pool
}
criterion_group!(wall, latency);
criterion_main!(cpu, wall);
