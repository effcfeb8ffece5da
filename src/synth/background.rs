//! The static background of a clip, rendered once: every pixel's ray is traced through the
//! scene (supersampled) and its radiance stored split by how it changes over the clip (constant,
//! direct sun under moving cloud shadows, switchable room lights), with its depth for occlusion.

use rayon::prelude::*;

use super::camera::{Camera, V3};
use super::scene::{Building, Radiance, Surface};
use super::sky::{Lighting, Rgb};

/// Height of the cloud layer whose shadows sweep the scene, metres.
pub const CLOUD_ALT_M: f64 = 1500.0;
/// Horizontal unit of cloud-plane coordinates, metres.
pub const CLOUD_UNIT_M: f64 = 900.0;

/// Room light of one pixel: pixel index, window id, radiance when on.
#[derive(Clone, Copy, Debug)]
pub struct EmitPx {
    /// Pixel index (row-major).
    pub idx: u32,
    /// Window id.
    pub win: u32,
    /// Radiance when the light is on.
    pub rgb: Rgb,
}

/// The rendered background layers.
#[derive(Clone, Debug)]
pub struct Background {
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
    /// Constant radiance per pixel.
    pub amb: Vec<Rgb>,
    /// Direct sunlight per pixel (empty when there is no sun).
    pub sun: Vec<Rgb>,
    /// Cloud-plane coordinates of the pixel's sunlit point (same length as `sun`).
    pub cloud_uv: Vec<[f32; 2]>,
    /// Room lights, by pixel.
    pub emit: Vec<EmitPx>,
    /// Distance along the pixel's centre ray to the first surface, metres (infinite for sky).
    pub depth_m: Vec<f32>,
    /// True where the centre ray sees sky.
    pub is_sky: Vec<bool>,
}

/// Sub-pixel sample positions (rotated grid).
const SS4: [(f64, f64); 4] = [
    (0.375, 0.125),
    (0.875, 0.375),
    (0.125, 0.625),
    (0.625, 0.875),
];

struct RowOut {
    amb: Vec<Rgb>,
    sun: Vec<Rgb>,
    uv: Vec<[f32; 2]>,
    emit: Vec<EmitPx>,
    depth: Vec<f32>,
    sky: Vec<bool>,
}

impl Background {
    /// Renders the background with `samples` rays per pixel (1 or 4).
    pub fn render(cam: &Camera, building: &Building, light: &Lighting, samples: usize) -> Self {
        let (w, h) = (cam.width as usize, cam.height as usize);
        let with_sun = light.has_sun();
        let offsets: &[(f64, f64)] = if samples >= 4 { &SS4 } else { &[(0.5, 0.5)] };
        let rows: Vec<RowOut> = (0..h)
            .into_par_iter()
            .map(|y| {
                let mut out = RowOut {
                    amb: Vec::with_capacity(w),
                    sun: Vec::with_capacity(if with_sun { w } else { 0 }),
                    uv: Vec::with_capacity(if with_sun { w } else { 0 }),
                    emit: Vec::new(),
                    depth: Vec::with_capacity(w),
                    sky: Vec::with_capacity(w),
                };
                for x in 0..w {
                    let mut acc = Radiance::default();
                    let mut win_acc: Option<(u32, Rgb, u32)> = None;
                    let mut centre_p = None;
                    let k = 1.0 / offsets.len() as f32;
                    for &(ox, oy) in offsets {
                        let d = cam.ray(x as f64 + ox, y as f64 + oy);
                        let hit = building.trace(&cam.pos, &d, 1e-3, 1e5);
                        let r = building.shade(light, &hit, &d, 0);
                        for c in 0..3 {
                            acc.amb[c] += r.amb[c] * k;
                            acc.sun[c] += r.sun[c] * k;
                        }
                        if r.win != 0 {
                            match &mut win_acc {
                                Some((id, rgb, n)) if *id == r.win => {
                                    for c in 0..3 {
                                        rgb[c] += r.emit[c] * k;
                                    }
                                    *n += 1;
                                }
                                None => win_acc = Some((r.win, r.emit.map(|v| v * k), 1)),
                                // A second window in one pixel: add its light as constant.
                                Some(_) => {}
                            }
                        }
                        if centre_p.is_none() {
                            centre_p = Some(hit);
                        }
                    }
                    let hit = centre_p.expect("one sample");
                    out.amb.push(acc.amb);
                    if with_sun {
                        out.sun.push(acc.sun);
                        let p = hit.p;
                        let s = light.sun_dir;
                        let k = (CLOUD_ALT_M - p.y) / s.y;
                        out.uv.push([
                            ((p.x + s.x * k) / CLOUD_UNIT_M) as f32,
                            ((p.z + s.z * k) / CLOUD_UNIT_M) as f32,
                        ]);
                    }
                    if let Some((win, rgb, _)) = win_acc {
                        out.emit.push(EmitPx {
                            idx: (y * w + x) as u32,
                            win,
                            rgb,
                        });
                    }
                    let sky = hit.s == Surface::Sky;
                    out.depth
                        .push(if sky { f32::INFINITY } else { hit.t as f32 });
                    out.sky.push(sky);
                }
                out
            })
            .collect();
        let mut bg = Background {
            width: w,
            height: h,
            amb: Vec::with_capacity(w * h),
            sun: Vec::with_capacity(if with_sun { w * h } else { 0 }),
            cloud_uv: Vec::with_capacity(if with_sun { w * h } else { 0 }),
            emit: Vec::new(),
            depth_m: Vec::with_capacity(w * h),
            is_sky: Vec::with_capacity(w * h),
        };
        for r in rows {
            bg.amb.extend(r.amb);
            bg.sun.extend(r.sun);
            bg.cloud_uv.extend(r.uv);
            bg.emit.extend(r.emit);
            bg.depth_m.extend(r.depth);
            bg.is_sky.extend(r.sky);
        }
        // Lens softness: a slight blur of the static layers.
        soften(&mut bg.amb, w, h);
        if with_sun {
            soften(&mut bg.sun, w, h);
        }
        bg
    }

    /// Depth of the background at a pixel (infinite outside the image).
    pub fn depth_at(&self, x: f64, y: f64) -> f32 {
        if x < 0.0 || y < 0.0 {
            return f32::INFINITY;
        }
        let (xi, yi) = (x as usize, y as usize);
        if xi >= self.width || yi >= self.height {
            return f32::INFINITY;
        }
        self.depth_m[yi * self.width + xi]
    }
}

/// A separable [0.2, 0.6, 0.2] blur, rows in parallel.
fn soften(img: &mut [Rgb], w: usize, h: usize) {
    const K: [f32; 3] = [0.2, 0.6, 0.2];
    let tmp: Vec<Rgb> = img
        .par_chunks(w)
        .flat_map_iter(|row| {
            (0..w).map(move |x| {
                let a = row[x.saturating_sub(1)];
                let b = row[x];
                let c = row[(x + 1).min(w - 1)];
                [
                    K[0] * a[0] + K[1] * b[0] + K[2] * c[0],
                    K[0] * a[1] + K[1] * b[1] + K[2] * c[1],
                    K[0] * a[2] + K[1] * b[2] + K[2] * c[2],
                ]
            })
        })
        .collect();
    img.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (ya, yc) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for (x, px) in row.iter_mut().enumerate() {
            let a = tmp[ya * w + x];
            let b = tmp[y * w + x];
            let c = tmp[yc * w + x];
            *px = [
                K[0] * a[0] + K[1] * b[0] + K[2] * c[0],
                K[0] * a[1] + K[1] * b[1] + K[2] * c[1],
                K[0] * a[2] + K[1] * b[2] + K[2] * c[2],
            ];
        }
    });
}

/// The world position seen at a pixel's centre (for tests and planning).
pub fn point_at(cam: &Camera, building: &Building, x: f64, y: f64) -> Option<V3> {
    let d = cam.ray(x, y);
    let h = building.trace(&cam.pos, &d, 1e-3, 1e5);
    (h.s != Surface::Sky).then_some(h.p)
}
