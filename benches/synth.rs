//! Synthetic clip rendering: the per-frame cost (composite + camera model + 4:2:0) and the
//! background ray tracing, at 720p, 1080p and 1440p. Inputs are generated in-process.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fallwatch::synth::{
    ClipPlan, DistractorKind, RenderSettings, Renderer, Resolution, SynthOptions,
};

fn opts(res: Resolution) -> SynthOptions {
    let mut o = SynthOptions::new(7, "bench");
    o.resolution = res;
    o.duration_s = 60.0;
    o.distractors = Some(vec![DistractorKind::Bird, DistractorKind::Shake]);
    o.render = RenderSettings {
        samples: 1,
        noise: true,
    };
    o
}

fn bench(c: &mut Criterion) {
    let table = [
        ("720p", Resolution::P720),
        ("1080p", Resolution::P1080),
        ("1440p", Resolution::P1440),
    ];
    let mut g = c.benchmark_group("synth_frame");
    g.sample_size(10);
    for (name, res) in table {
        let o = opts(res);
        let plan = ClipPlan::new(&o).expect("plan");
        let mut r = Renderer::new(&plan, o.render);
        let mut i = 0u32;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) % plan.frames;
                r.render(i)
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("synth_background_1spp");
    g.sample_size(10);
    for (name, res) in table {
        let o = opts(res);
        let plan = ClipPlan::new(&o).expect("plan");
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| Renderer::new(&plan, o.render))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
