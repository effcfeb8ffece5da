//! Per-frame rendering: the background layers lit for this instant (cloud shadow, room lights),
//! the moving things composited with motion blur in depth order, then the camera: shake,
//! vignetting, auto-exposure, sensor noise, tone curve, sharpening and 4:2:0 YUV.
//!
//! Frames must be rendered in order (auto-exposure has state); each frame's pixels are computed
//! in parallel over rows and depend only on the plan and the frame index.

use rayon::prelude::*;

use super::background::{Background, CLOUD_UNIT_M};
use super::camera::{ImageTransform, V3};
use super::encode::YuvFrame;
use super::noise;
use super::objects::{ObjectLight, draw_body};
use super::plan::ClipPlan;
use super::raster::{Canvas, P2, Splat};
use super::scene::Surface;
use super::sky::{Rgb, TimeOfDay};

/// Rendering switches (tests turn parts off).
#[derive(Clone, Copy, Debug)]
pub struct RenderSettings {
    /// Rays per pixel for the background (1 or 4). Default: 4.
    pub samples: usize,
    /// Sensor noise. Default: true.
    pub noise: bool,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            samples: 4,
            noise: true,
        }
    }
}

/// Renders the frames of one planned clip.
pub struct Renderer<'a> {
    plan: &'a ClipPlan,
    bg: Background,
    cloud_edge: Vec<f32>,
    settings: RenderSettings,
    gain: f64,
    key: f32,
    tone: Vec<f32>,
    noise_sd: Vec<f32>,
    gauss: Vec<f32>,
    veil_rgb: Rgb,
    buf: Vec<Rgb>,
    last_frame: Option<u32>,
}

/// Tone and noise tables are indexed by the bits of an f32 (sign clear): exponent and the top
/// 10 mantissa bits, from 2^-16 up to 2^4 (20 octaves, 0.1 % steps), so no square root or
/// power is computed per pixel.
const LUT_LO_BITS: u32 = 0x3780_0000; // 2^-16
const LUT_HI_BITS: u32 = 0x4180_0000; // 2^4
const LUT_SHIFT: u32 = 13;
const LUT_N: usize = ((LUT_HI_BITS - LUT_LO_BITS) >> LUT_SHIFT) as usize + 1;

/// The camera's tone curve (reference): an ACES-like filmic curve, then a 2.2 gamma; linear
/// scene value after exposure to 0..255.
pub fn tone_reference(x: f32) -> f32 {
    let x = x.max(0.0);
    let y = (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14);
    y.clamp(0.0, 1.0).powf(1.0 / 2.2) * 255.0
}

/// The tone curve tabulated for [`lut_index`] (the fast path).
fn tone_table() -> Vec<f32> {
    (0..LUT_N)
        .map(|i| tone_reference(if i == 0 { 0.0 } else { lut_value(i) }))
        .collect()
}

/// Table index of a linear value (negative and tiny values go to entry 0).
#[inline]
fn lut_index(v: f32) -> usize {
    let b = v.to_bits();
    if (b as i32) < LUT_LO_BITS as i32 {
        0
    } else {
        ((b.min(LUT_HI_BITS) - LUT_LO_BITS) >> LUT_SHIFT) as usize
    }
}

/// The linear value at the centre of table entry `i`.
fn lut_value(i: usize) -> f32 {
    f32::from_bits(LUT_LO_BITS + ((i as u32) << LUT_SHIFT) + (1 << (LUT_SHIFT - 1)))
}

impl<'a> Renderer<'a> {
    /// Renders the static background and prepares the camera model.
    pub fn new(plan: &'a ClipPlan, settings: RenderSettings) -> Self {
        let mut bg =
            Background::render(&plan.camera, &plan.building, &plan.light, settings.samples);
        let cloud_edge = match &plan.cloud {
            Some(c) if !bg.cloud_uv.is_empty() => {
                // Centre the edge's sweep on the middle of the picture.
                let mid = bg.cloud_uv[(bg.height / 2) * bg.width + bg.width / 2];
                let centre = [f64::from(mid[0]), f64::from(mid[1])];
                bg.cloud_uv
                    .par_iter()
                    .map(|uv| c.edge_coord(*uv, centre, CLOUD_UNIT_M))
                    .collect()
            }
            _ => Vec::new(),
        };
        if cloud_edge.is_empty() && !bg.sun.is_empty() {
            // Sunlight never changes: fold it into the constant layer.
            for (a, s) in bg.amb.iter_mut().zip(&bg.sun) {
                for k in 0..3 {
                    a[k] += s[k];
                }
            }
            bg.sun = Vec::new();
            bg.cloud_uv = Vec::new();
        }
        let tone = tone_table();
        let noise_sd = (0..LUT_N)
            .map(|i| {
                let l = if i == 0 { 0.0 } else { lut_value(i) };
                (plan.noise.0 * plan.noise.0 + plan.noise.1 * l).sqrt()
            })
            .collect();
        let mut r = Renderer {
            plan,
            bg,
            cloud_edge,
            settings,
            gain: 1.0,
            key: 0.2,
            tone,
            noise_sd,
            gauss: (0..GAUSS_N as u64)
                .map(|k| noise::gauss_from_hash(noise::mix64(plan.noise_seed.wrapping_add(k))))
                .collect(),
            veil_rgb: [0.0; 3],
            buf: Vec::new(),
            last_frame: None,
        };
        let first = r.scene(0);
        r.gain = r.target_gain(&first);
        r.key = (0.18 / r.gain) as f32;
        r.veil_rgb = {
            let s = plan.light.sky(&V3::new(0.0, 0.3, 1.0).normalize());
            let k = 3.0 / (s[0] + s[1] + s[2]).max(1e-6);
            s.map(|c| c * k * r.key * 2.5)
        };
        r
    }

    /// The background layers.
    pub fn background(&self) -> &Background {
        &self.bg
    }

    /// Centre-weighted mean luminance of a scene image -> the gain that maps it to mid-grey.
    fn target_gain(&self, img: &[Rgb]) -> f64 {
        let (w, h) = (self.bg.width, self.bg.height);
        let step = (h / 90).max(1);
        let (mut sum, mut wsum) = (0.0f64, 0.0f64);
        for y in (step / 2..h).step_by(step) {
            for x in (step / 2..w).step_by(step) {
                let c = img[y * w + x];
                let l = f64::from(0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]);
                let (dx, dy) = (x as f64 / w as f64 - 0.5, y as f64 / h as f64 - 0.5);
                let wt = 1.0 - 1.2 * (dx * dx + dy * dy);
                // Highlights (sky, lamps) count less: cameras meter the subject.
                sum += wt * l.min(1.5);
                wsum += wt;
            }
        }
        let mean = (sum / wsum).max(1e-5);
        let target = match self.plan.light.time {
            TimeOfDay::Night => 0.12,
            _ => 0.2,
        };
        target / mean
    }

    /// The scene at frame `i` in linear light, before the camera (no shake, exposure or noise).
    pub fn scene(&self, i: u32) -> Vec<Rgb> {
        let mut img = Vec::new();
        self.compose_into(i, &mut img);
        img
    }

    fn compose_into(&self, i: u32, img: &mut Vec<Rgb>) {
        let plan = self.plan;
        let t = plan.frame_time(i);
        let (w, h) = (self.bg.width, self.bg.height);
        let bg = &self.bg;
        img.resize(w * h, [0.0; 3]);
        let cloud = plan.cloud.as_ref().filter(|_| !self.cloud_edge.is_empty());
        match cloud {
            Some(cl) if !bg.sun.is_empty() => {
                img.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
                    for (x, px) in row.iter_mut().enumerate() {
                        let idx = y * w + x;
                        let (c, s) = (bg.amb[idx], bg.sun[idx]);
                        let f = cl.factor(self.cloud_edge[idx], t);
                        *px = [c[0] + s[0] * f, c[1] + s[1] * f, c[2] + s[2] * f];
                    }
                });
            }
            _ => img
                .par_chunks_mut(w)
                .zip(bg.amb.par_chunks(w))
                .for_each(|(d, s)| d.copy_from_slice(s)),
        }
        // Room lights.
        let n_win = plan.building.openings.len() + 1;
        let levels: Vec<f32> = (0..n_win as u32)
            .map(|wn| plan.lights.level(wn, t))
            .collect();
        for e in &bg.emit {
            let l = levels[e.win as usize];
            if l > 0.0 {
                let p = &mut img[e.idx as usize];
                for k in 0..3 {
                    p[k] += e.rgb[k] * l;
                }
            }
        }
        let mut canvas = Canvas {
            img,
            depth_m: &bg.depth_m,
            width: w,
            height: h,
        };
        self.draw_things(&mut canvas, t);
    }

    fn draw_things(&self, canvas: &mut Canvas<'_>, t: f64) {
        let plan = self.plan;
        let cam = &plan.camera;
        let light = &plan.light;
        let exp = plan.exposure_s;
        let ident = |p: P2| p;
        let (w, h) = (canvas.width, canvas.height);
        // (depth, what): far things first.
        enum Thing {
            Object(usize),
            Bird(usize),
            Flutter(usize),
            Tree,
        }
        let mut things: Vec<(f64, Thing)> = Vec::new();
        for (k, o) in plan.objects.iter().enumerate() {
            if t + exp / 2.0 >= o.flight.t0_s && t - exp / 2.0 <= o.flight.end_s() {
                let p = o
                    .flight
                    .at(t.clamp(o.flight.t0_s, o.flight.end_s()))
                    .unwrap_or(o.p0);
                things.push(((p - cam.pos).norm(), Thing::Object(k)));
            }
        }
        for (k, b) in plan.birds.iter().enumerate() {
            things.push(((b.pos(t) - cam.pos).norm(), Thing::Bird(k)));
        }
        for (k, f) in plan.flutters.iter().enumerate() {
            things.push(((f.pos(t) - cam.pos).norm(), Thing::Flutter(k)));
        }
        if let Some(tr) = &plan.tree {
            things.push((f64::from(tr.depth_m), Thing::Tree));
        }
        things.sort_by(|a, b| b.0.total_cmp(&a.0));
        let sub_times = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| t + exp * ((i as f64 + 0.5) / n as f64 - 0.5))
                .collect()
        };
        for (depth, thing) in things {
            match thing {
                Thing::Object(k) => {
                    let o = &plan.objects[k];
                    let fl = &o.flight;
                    // Enough sub-samples that the blur streak is continuous.
                    let (pa, pb) = (
                        fl.at((t - exp / 2.0).clamp(fl.t0_s, fl.end_s())),
                        fl.at((t + exp / 2.0).clamp(fl.t0_s, fl.end_s())),
                    );
                    let motion_px = match (
                        pa.and_then(|p| cam.project(&p)),
                        pb.and_then(|p| cam.project(&p)),
                    ) {
                        (Some((a, _)), Some((b, _))) => (a - b).norm(),
                        _ => 0.0,
                    };
                    let n = ((motion_px / 0.5).ceil() as usize).clamp(3, 64);
                    let times = sub_times(n);
                    let pts: Vec<Option<V3>> = times.iter().map(|&ts| fl.at(ts)).collect();
                    let mut lo = P2::new(f64::INFINITY, f64::INFINITY);
                    let mut hi = -lo;
                    let mut any = false;
                    let mut max_r: f64 = 2.0;
                    for p in pts.iter().flatten() {
                        if let Some((q, d)) = cam.project(p) {
                            lo = lo.inf(&q);
                            hi = hi.sup(&q);
                            max_r = max_r.max(cam.focal_px * o.body.size_m() / d);
                            any = true;
                        }
                    }
                    if !any {
                        continue;
                    }
                    let pad = max_r + 3.0;
                    let Some(mut splat) =
                        Splat::new(lo.x - pad, lo.y - pad, hi.x + pad, hi.y + pad, w, h, n)
                    else {
                        continue;
                    };
                    let mid = pts.iter().flatten().next().copied().unwrap_or(o.p0);
                    let sun_vis = if light.has_sun() {
                        let hit = plan.building.trace(&mid, &light.sun_dir, 1e-3, 1e4);
                        if hit.s == Surface::Sky { 1.0 } else { 0.0 }
                    } else {
                        0.0
                    };
                    for (ts, p) in times.iter().zip(&pts) {
                        if let Some(p) = p {
                            let ol = ObjectLight {
                                light,
                                sun_vis,
                                p: *p,
                                to_cam: (cam.pos - p).normalize(),
                            };
                            draw_body(&mut splat, cam, &o.body, p, ts - fl.t0_s, &ol, &ident);
                        }
                    }
                    splat.composite(canvas, depth as f32);
                }
                Thing::Bird(k) => {
                    let b = &plan.birds[k];
                    let n = 4;
                    let p = b.pos(t);
                    let Some((c, d)) = cam.project(&p) else {
                        continue;
                    };
                    let ext = cam.focal_px * b.span_m / d + cam.focal_px * 15.0 * exp / d + 4.0;
                    let Some(mut s) =
                        Splat::new(c.x - ext, c.y - ext, c.x + ext, c.y + ext, w, h, n)
                    else {
                        continue;
                    };
                    for ts in sub_times(n) {
                        b.draw(&mut s, cam, ts, light, &ident);
                    }
                    s.composite(canvas, depth as f32);
                }
                Thing::Flutter(k) => {
                    let f = &plan.flutters[k];
                    let n = 2;
                    let p = f.pos(t);
                    let Some((c, d)) = cam.project(&p) else {
                        continue;
                    };
                    let ext = cam.focal_px * f.size_m / d + 4.0;
                    let Some(mut s) =
                        Splat::new(c.x - ext, c.y - ext, c.x + ext, c.y + ext, w, h, n)
                    else {
                        continue;
                    };
                    for ts in sub_times(n) {
                        f.draw(&mut s, cam, ts, light, &ident);
                    }
                    s.composite(canvas, depth as f32);
                }
                Thing::Tree => {
                    let tr = plan.tree.as_ref().expect("tree");
                    let n = V3::new(0.0, 0.3, 1.0).normalize();
                    let p = cam.pos + cam.forward() * f64::from(tr.depth_m);
                    let mut illum = light.ambient(&n);
                    let lamps = light.lamps_at(&p, &n);
                    let sun = if light.has_sun() {
                        (light.sun_dir.dot(&n).max(0.0) * 0.7) as f32
                    } else {
                        0.0
                    };
                    for k in 0..3 {
                        illum[k] += lamps[k] + light.sun_rgb[k] * sun;
                    }
                    tr.draw(canvas, t, illum);
                }
            }
        }
        if let Some(rain) = &plan.rain {
            rain.draw(canvas, cam, t, exp.max(1.0 / 120.0), light);
        }
        for ins in &plan.insects {
            ins.draw(canvas, t, exp.max(1.0 / 60.0), self.key);
        }
    }

    /// The camera's processing of frame `i` at exposure gain `gain`, over `scene`.
    fn camera_model<'s>(&'s self, i: u32, gain: f32, scene: &'s [Rgb]) -> CameraModel<'s> {
        let plan = self.plan;
        let t = plan.frame_time(i);
        let (w, h) = (self.bg.width, self.bg.height);
        CameraModel {
            w,
            h,
            shake: plan.shake.at(t, plan.width, plan.height),
            gain,
            wb: plan.white_balance,
            sat: plan.saturation,
            mono: plan.light.infrared,
            noise: self.settings.noise,
            noise_sd: &self.noise_sd,
            vig: plan.vignette,
            veil: plan.veil,
            veil_rgb: self.veil_rgb,
            inv_half_diag2: 4.0 / ((w * w + h * h) as f32),
            seed: plan.noise_seed ^ noise::mix64(u64::from(i) + 1),
            tone: &self.tone,
            gauss: &self.gauss,
            scene,
        }
    }

    /// Renders frame `i` as the camera delivers it. Frames must come in order.
    pub fn render(&mut self, i: u32) -> YuvFrame {
        let plan = self.plan;
        let t = plan.frame_time(i);
        let mut scene = std::mem::take(&mut self.buf);
        self.compose_into(i, &mut scene);
        // Auto-exposure follows the scene with a lag and a dead band.
        let target = self.target_gain(&scene);
        if self.last_frame.is_some() {
            let ratio = target / self.gain;
            if !(0.96..=1.04).contains(&ratio) {
                let dt = 1.0 / f64::from(plan.opts.fps);
                self.gain *= ratio.powf(1.0 - (-dt / 0.5f64).exp());
            }
        }
        self.last_frame = Some(i);
        let gain = (self.gain * plan.exposure_jumps.gain(t)) as f32;
        let (w, h) = (self.bg.width, self.bg.height);
        let cam = self.camera_model(i, gain, &scene);
        // Camera processing, two rows at a time (one chroma row): luma before sharpening, and
        // chroma averaged over 2x2 blocks.
        let (cw, ch) = (w / 2, h / 2);
        let mut yfull = vec![0.0f32; w * h];
        let mut u = vec![0u8; cw * ch];
        let mut v = vec![0u8; cw * ch];
        yfull
            .par_chunks_mut(2 * w)
            .zip(u.par_chunks_mut(cw).zip(v.par_chunks_mut(cw)))
            .enumerate()
            .for_each_init(
                || (RowScratch::new(w), RowScratch::new(w)),
                |(ra, rb), (cy, (ys, (ur, vr)))| {
                    cam.row(2 * cy, ra);
                    cam.row(2 * cy + 1, rb);
                    let (y0, y1) = ys.split_at_mut(w);
                    for x in 0..w {
                        y0[x] = 0.2126 * ra.r[x] + 0.7152 * ra.g[x] + 0.0722 * ra.b[x];
                        y1[x] = 0.2126 * rb.r[x] + 0.7152 * rb.g[x] + 0.0722 * rb.b[x];
                    }
                    for cx in 0..cw {
                        let (a, b) = (2 * cx, 2 * cx + 1);
                        let acc = [
                            (ra.r[a] + ra.r[b] + rb.r[a] + rb.r[b]) * 0.25,
                            (ra.g[a] + ra.g[b] + rb.g[a] + rb.g[b]) * 0.25,
                            (ra.b[a] + ra.b[b] + rb.b[a] + rb.b[b]) * 0.25,
                        ];
                        let (cb, cr) = chroma(acc);
                        ur[cx] = cb;
                        vr[cx] = cr;
                    }
                },
            );
        self.buf = scene;
        let mut frame = YuvFrame {
            width: w,
            height: h,
            y: sharpen_luma(&yfull, w, h, plan.sharpen),
            u,
            v,
        };
        if let Some(osd) = &plan.osd {
            osd.draw(&mut frame, t);
        }
        frame
    }
}

/// The camera's processing of one pixel, with everything it needs for one frame.
struct CameraModel<'a> {
    w: usize,
    h: usize,
    shake: ImageTransform,
    gain: f32,
    wb: Rgb,
    sat: f32,
    mono: bool,
    noise: bool,
    noise_sd: &'a [f32],
    vig: f32,
    veil: f32,
    veil_rgb: Rgb,
    inv_half_diag2: f32,
    seed: u64,
    tone: &'a [f32],
    gauss: &'a [f32],
    scene: &'a [Rgb],
}

impl CameraModel<'_> {
    /// Start of row `y`'s run in the noise table.
    fn row_noise(&self, y: usize) -> usize {
        (noise::mix64(self.seed ^ (y as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) as usize)
            & (GAUSS_N - 1)
    }

    fn sample(&self, x: f64, y: f64) -> Rgb {
        let (w, h) = (self.w, self.h);
        let (xf, yf) = (
            (x - 0.5).clamp(0.0, (w - 1) as f64),
            (y - 0.5).clamp(0.0, (h - 1) as f64),
        );
        let (x0, y0) = (xf as usize, yf as usize);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = ((xf - x0 as f64) as f32, (yf - y0 as f64) as f32);
        let s = self.scene;
        let (a, b, c, d) = (
            s[y0 * w + x0],
            s[y0 * w + x1],
            s[y1 * w + x0],
            s[y1 * w + x1],
        );
        let mut o = [0.0; 3];
        for k in 0..3 {
            let top = a[k] + (b[k] - a[k]) * fx;
            let bot = c[k] + (d[k] - c[k]) * fx;
            o[k] = top + (bot - top) * fy;
        }
        o
    }

    /// Row `y` processed, planar (the fast path; [`CameraModel::pixel`] is the reference).
    /// Each step is a simple loop over the row so the compiler can vectorise it; the arithmetic
    /// is the same, in the same order, as the reference.
    fn row(&self, y: usize, s: &mut RowScratch) {
        let w = self.w;
        let rn = self.row_noise(y);
        if self.shake.is_identity() {
            let src = &self.scene[y * w..(y + 1) * w];
            for (x, c) in src.iter().enumerate() {
                s.r[x] = c[0];
                s.g[x] = c[1];
                s.b[x] = c[2];
            }
        } else {
            for x in 0..w {
                let q = self.shake.invert(P2::new(x as f64 + 0.5, y as f64 + 0.5));
                let c = self.sample(q.x, q.y);
                s.r[x] = c[0];
                s.g[x] = c[1];
                s.b[x] = c[2];
            }
        }
        if self.veil > 0.0 {
            let (k, vr) = (1.0 - self.veil, self.veil_rgb.map(|c| c * self.veil));
            for x in 0..w {
                s.r[x] = s.r[x] * k + vr[0];
                s.g[x] = s.g[x] * k + vr[1];
                s.b[x] = s.b[x] * k + vr[2];
            }
        }
        let dy = y as f32 - self.h as f32 / 2.0;
        let half_w = self.w as f32 / 2.0;
        for x in 0..w {
            let dx = x as f32 - half_w;
            let v = (1.0 - self.vig * (dx * dx + dy * dy) * self.inv_half_diag2) * self.gain;
            s.r[x] *= v * self.wb[0];
            s.g[x] *= v * self.wb[1];
            s.b[x] *= v * self.wb[2];
            s.l[x] = 0.2126 * s.r[x] + 0.7152 * s.g[x] + 0.0722 * s.b[x];
        }
        if self.mono {
            s.r.copy_from_slice(&s.l);
            s.g.copy_from_slice(&s.l);
            s.b.copy_from_slice(&s.l);
        } else {
            let sat = self.sat;
            for x in 0..w {
                let l = s.l[x];
                s.r[x] = l + sat * (s.r[x] - l);
                s.g[x] = l + sat * (s.g[x] - l);
                s.b[x] = l + sat * (s.b[x] - l);
            }
        }
        if self.noise {
            let g = |i: usize| self.gauss[i & (GAUSS_N - 1)];
            for x in 0..w {
                let i = rn + 3 * x;
                let sd = self.noise_sd[lut_index(s.l[x])];
                let nl = g(i) * sd;
                if self.mono {
                    let l = s.l[x] + nl;
                    s.r[x] = l;
                    s.g[x] = l;
                    s.b[x] = l;
                } else {
                    let chroma = sd * 0.4;
                    let (n1, n2) = (g(i + 1), g(i + 2));
                    s.r[x] = s.r[x] + nl + n1 * chroma;
                    s.g[x] = s.g[x] + nl - (n1 + n2) * chroma * 0.4;
                    s.b[x] = s.b[x] + nl + n2 * chroma;
                }
            }
        }
        for v in s.r.iter_mut().chain(s.g.iter_mut()).chain(s.b.iter_mut()) {
            *v = self.tone[lut_index(*v)];
        }
    }

    /// The processed pixel, R'G'B' in 0..255 (the reference implementation of [`Self::row`]).
    #[cfg_attr(not(test), allow(dead_code))]
    fn pixel(&self, x: usize, y: usize, row_noise: usize) -> Rgb {
        let mut c = if self.shake.is_identity() {
            self.scene[y * self.w + x]
        } else {
            let q = self.shake.invert(P2::new(x as f64 + 0.5, y as f64 + 0.5));
            self.sample(q.x, q.y)
        };
        if self.veil > 0.0 {
            for k in 0..3 {
                c[k] = c[k] * (1.0 - self.veil) + self.veil_rgb[k] * self.veil;
            }
        }
        let (dx, dy) = (
            x as f32 - self.w as f32 / 2.0,
            y as f32 - self.h as f32 / 2.0,
        );
        let v = (1.0 - self.vig * (dx * dx + dy * dy) * self.inv_half_diag2) * self.gain;
        for k in 0..3 {
            c[k] *= v * self.wb[k];
        }
        let mut l = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        if self.mono {
            c = [l; 3];
        } else {
            for ck in &mut c {
                *ck = l + self.sat * (*ck - l);
            }
        }
        if self.noise {
            let i = row_noise + 3 * x;
            let g = |k: usize| self.gauss[(i + k) & (GAUSS_N - 1)];
            let sd = self.noise_sd[lut_index(l)];
            let nl = g(0) * sd;
            l += nl;
            if self.mono {
                c = [l; 3];
            } else {
                let chroma = sd * 0.4;
                let (n1, n2) = (g(1), g(2));
                c = [
                    c[0] + nl + n1 * chroma,
                    c[1] + nl - (n1 + n2) * chroma * 0.4,
                    c[2] + nl + n2 * chroma,
                ];
            }
        }
        c.map(|ck| self.tone[lut_index(ck)])
    }
}

/// One processed row, planar: R', G', B' in 0..255.
struct RowScratch {
    r: Vec<f32>,
    g: Vec<f32>,
    b: Vec<f32>,
    l: Vec<f32>,
}

impl RowScratch {
    fn new(w: usize) -> Self {
        RowScratch {
            r: vec![0.0; w],
            g: vec![0.0; w],
            b: vec![0.0; w],
            l: vec![0.0; w],
        }
    }
}

/// Limited-range Cb, Cr of an R'G'B' triple (0..255), BT.709.
#[inline]
fn chroma(acc: Rgb) -> (u8, u8) {
    let yl = 0.2126 * acc[0] + 0.7152 * acc[1] + 0.0722 * acc[2];
    let cb = (acc[2] - yl) * (1.0 / 1.8556);
    let cr = (acc[0] - yl) * (1.0 / 1.5748);
    (
        (128.5 + cb * (224.0 / 255.0)).clamp(16.0, 240.0) as u8,
        (128.5 + cr * (224.0 / 255.0)).clamp(16.0, 240.0) as u8,
    )
}

/// Entries of the Gaussian noise table (a power of two).
const GAUSS_N: usize = 1 << 18;

/// Limited-range luma with the camera's unsharp mask.
fn sharpen_luma(yfull: &[f32], w: usize, h: usize, sharpen: f32) -> Vec<u8> {
    let mut y = vec![0u8; w * h];
    y.par_chunks_mut(w).enumerate().for_each(|(row, out)| {
        let (ra, rb) = (row.saturating_sub(1), (row + 1).min(h - 1));
        let (up, mid, down) = (
            &yfull[ra * w..][..w],
            &yfull[row * w..][..w],
            &yfull[rb * w..][..w],
        );
        for x in 0..w {
            let (xa, xb) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let c = mid[x];
            let blur = (up[x] + down[x] + mid[xa] + mid[xb]) * 0.25;
            let v = c + sharpen * (c - blur);
            out[x] = (16.0 + v.clamp(0.0, 255.0) * (219.0 / 255.0) + 0.5) as u8;
        }
    });
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_fast_path_matches_the_per_pixel_reference() {
        use crate::synth::{DistractorKind, Resolution, SynthOptions, TimeOfDay};
        for (seed, ir, tod) in [(3u64, false, TimeOfDay::Day), (4, true, TimeOfDay::Night)] {
            let mut o = SynthOptions::new(seed, "r");
            o.resolution = Resolution::Custom(96, 64);
            o.time_of_day = Some(tod);
            o.infrared = Some(ir);
            o.distractors = Some(vec![DistractorKind::Shake, DistractorKind::Rain]);
            o.render = RenderSettings {
                samples: 1,
                noise: true,
            };
            let plan = crate::synth::ClipPlan::new(&o).unwrap();
            let r = Renderer::new(&plan, o.render);
            let scene = r.scene(5);
            let cam = r.camera_model(5, 1.3, &scene);
            assert!(!cam.shake.is_identity() && cam.veil > 0.0);
            let mut s = RowScratch::new(96);
            for y in 0..64 {
                cam.row(y, &mut s);
                let rn = cam.row_noise(y);
                for x in 0..96 {
                    let p = cam.pixel(x, y, rn);
                    let q = [s.r[x], s.g[x], s.b[x]];
                    for k in 0..3 {
                        assert!((p[k] - q[k]).abs() < 0.05, "({x}, {y}) {p:?} vs {q:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn lut_index_is_monotonic_and_close() {
        let mut last = 0;
        for k in 0..20_000 {
            let v = 1e-6 * 1.001f32.powi(k);
            let i = lut_index(v);
            assert!(i >= last);
            last = i;
            if v > 2.0f32.powi(-15) && v < 15.0 {
                let back = lut_value(i);
                assert!((back / v - 1.0).abs() < 2e-3, "{v} -> {back}");
            }
        }
        assert_eq!(lut_index(-1.0), 0);
        // The table-driven tone curve against the formula it tabulates (the reference).
        let tone = tone_table();
        for k in 0..2000 {
            let x = 0.001 + k as f32 * 0.004;
            assert!((tone[lut_index(x)] - tone_reference(x)).abs() < 0.3, "{x}");
        }
        assert_eq!(lut_index(1e9), LUT_N - 1);
    }
}
