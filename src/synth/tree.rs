//! A tree in the foreground: trunk, branches and a few thousand leaf clusters in image space,
//! swaying in the wind (more at the top) with leaves fluttering. It may hide part of a fall.

use rand::RngExt as _;

use super::SynthRng;
use super::noise;
use super::raster::{Canvas, P2, Splat};
use super::sky::{Lighting, Rgb, TimeOfDay};

#[derive(Clone, Debug)]
struct Branch {
    a: P2,
    b: P2,
    r_px: f64,
}

#[derive(Clone, Debug)]
struct Leaf {
    c: P2,
    r_px: f64,
    /// Direction of the leaf's long axis.
    dir: P2,
    rgb: Rgb,
    phase: f64,
}

/// The foreground tree.
#[derive(Clone, Debug)]
pub struct Tree {
    branches: Vec<Branch>,
    leaves: Vec<Leaf>,
    /// Bottom of the trunk (below the image), pixels.
    pub base: P2,
    /// Height of the crown top above the base, pixels.
    pub height_px: f64,
    /// Sway at the crown top, pixels.
    pub sway_px: f64,
    /// Distance from the camera, metres (for drawing order).
    pub depth_m: f32,
    seed: u64,
    bark: Rgb,
}

impl Tree {
    /// A random tree standing at the bottom edge of a `width` x `height` image, with its crown
    /// reaching up to `reach` (0..1) of the image height, its trunk near `x_px` when given.
    pub fn random_at(
        rng: &mut SynthRng,
        width: u32,
        height: u32,
        reach: f64,
        light: &Lighting,
        x_px: Option<f64>,
    ) -> Tree {
        let (w, h) = (f64::from(width), f64::from(height));
        let left = rng.random_bool(0.5);
        let base_x = match x_px {
            Some(x) => x + rng.random_range(-0.06..0.06) * w,
            None if left => rng.random_range(0.05..0.4) * w,
            None => rng.random_range(0.6..0.95) * w,
        };
        let base = P2::new(base_x, h + 0.05 * h);
        let height_px = (reach * h + 0.05 * h).max(0.2 * h);
        let scale = h / 1080.0;
        let mut branches = Vec::new();
        let trunk_top = base - P2::new(rng.random_range(-0.05..0.05) * w, height_px * 0.45);
        let trunk_r = rng.random_range(9.0..18.0) * scale;
        branches.push(Branch {
            a: base,
            b: trunk_top,
            r_px: trunk_r,
        });
        // Recursive branching.
        let mut stack = vec![(
            trunk_top,
            -std::f64::consts::FRAC_PI_2,
            height_px * 0.3,
            trunk_r * 0.75,
            0,
        )];
        let mut tips = Vec::new();
        while let Some((p, ang, len, r, depth)) = stack.pop() {
            let n = if depth == 0 {
                4
            } else {
                rng.random_range(2..4)
            };
            for _ in 0..n {
                let a = ang + rng.random_range(-0.75..0.75);
                let l = len * rng.random_range(0.6..1.0);
                let q = p + P2::new(a.cos(), a.sin()) * l;
                branches.push(Branch {
                    a: p,
                    b: q,
                    r_px: r.max(0.8),
                });
                if depth < 3 {
                    stack.push((q, a, l * 0.62, r * 0.6, depth + 1));
                } else {
                    tips.push(q);
                }
            }
        }
        // Leaf clusters around the outer branches.
        let night = light.time == TimeOfDay::Night;
        let base_green: Rgb = if light.infrared {
            [0.75, 0.75, 0.75]
        } else {
            [
                rng.random_range(0.06..0.12),
                rng.random_range(0.14..0.24),
                rng.random_range(0.04..0.08),
            ]
        };
        let mut leaves = Vec::new();
        let per_tip = (4200.0 / tips.len().max(1) as f64).ceil() as usize;
        let crown_top = base.y - height_px;
        for tip in &tips {
            let spread = height_px * 0.13;
            for _ in 0..per_tip {
                // Clumped: most leaves near the twig ends, some further in.
                let r: f64 = rng.random_range(0.0f64..1.0).sqrt();
                let a: f64 = rng.random_range(0.0..std::f64::consts::TAU);
                let c = tip + P2::new(a.cos(), a.sin() * 0.8) * (r * spread);
                // Lit from above and from the sun side; darker inside the crown.
                let up = ((base.y - c.y) / height_px).clamp(0.0, 1.0) as f32;
                let top_lit = 1.0 - ((c.y - crown_top) / height_px).clamp(0.0, 1.0) as f32;
                let k = rng.random_range(0.35..1.3) * (0.55 + 0.65 * top_lit) * (0.8 + 0.2 * up);
                let a: f64 = rng.random_range(0.0..std::f64::consts::PI);
                let tint: f32 = rng.random_range(0.85..1.15);
                leaves.push(Leaf {
                    c,
                    r_px: rng.random_range(0.0035f64..0.011) * height_px.max(200.0 * scale),
                    dir: P2::new(a.cos(), a.sin()),
                    rgb: [
                        base_green[0] * k * tint,
                        base_green[1] * k,
                        base_green[2] * k / tint,
                    ],
                    phase: rng.random_range(0.0..100.0),
                });
            }
        }
        let bark = if light.infrared {
            [0.35, 0.35, 0.35]
        } else if night {
            [0.05, 0.045, 0.04]
        } else {
            [0.12, 0.09, 0.07]
        };
        Tree {
            branches,
            leaves,
            base,
            height_px,
            sway_px: rng.random_range(1.5..7.0) * scale,
            depth_m: rng.random_range(6.0..14.0),
            seed: rng.random(),
            bark,
        }
    }

    fn displacement(&self, p: &P2, t_s: f64, flutter: f64) -> P2 {
        let k = ((self.base.y - p.y) / self.height_px)
            .clamp(0.0, 1.2)
            .powf(1.6);
        let gust = 0.4 + 0.6 * noise::value1(self.seed, t_s * 0.3);
        let sway = noise::wobble(self.seed ^ 1, t_s * 0.7, 3) * self.sway_px * gust;
        let fl = if flutter > 0.0 {
            let s = self.seed ^ (flutter.to_bits());
            P2::new(
                noise::wobble(s, t_s * 3.0, 2),
                noise::wobble(s ^ 5, t_s * 3.0, 2),
            ) * (0.9 * gust * self.height_px / 1000.0)
        } else {
            P2::zeros()
        };
        P2::new(sway * k, sway.abs() * k * 0.08) + fl
    }

    /// Draws the tree as it is at `t_s`, lit by irradiance `illum`.
    pub fn draw(&self, canvas: &mut Canvas<'_>, t_s: f64, illum: Rgb) {
        let lit = |c: Rgb| [c[0] * illum[0], c[1] * illum[1], c[2] * illum[2]];
        let (w, h) = (canvas.width, canvas.height);
        let mut lo = P2::new(f64::INFINITY, f64::INFINITY);
        let mut hi = -lo;
        for l in &self.leaves {
            lo = lo.inf(&l.c);
            hi = hi.sup(&l.c);
        }
        for b in &self.branches {
            lo = lo.inf(&b.a).inf(&b.b);
            hi = hi.sup(&b.a).sup(&b.b);
        }
        let pad = P2::new(self.sway_px + 40.0, self.sway_px + 40.0);
        let Some(mut splat) = Splat::new(
            lo.x - pad.x,
            lo.y - pad.y,
            hi.x + pad.x,
            hi.y + pad.y,
            w,
            h,
            1,
        ) else {
            return;
        };
        let bark = lit(self.bark);
        for b in &self.branches {
            let (a, bb) = (
                b.a + self.displacement(&b.a, t_s, 0.0),
                b.b + self.displacement(&b.b, t_s, 0.0),
            );
            splat.capsule(a, bb, b.r_px, 1.0, |across| {
                let k = 0.7 + 0.3 * (1.0 - across.abs()) as f32;
                bark.map(|v| v * k)
            });
        }
        for l in &self.leaves {
            let c = l.c + self.displacement(&l.c, t_s, l.phase);
            let rgb = lit(l.rgb);
            // A leaf: an elongated blob along its axis, lighter along the middle.
            let half = l.dir * (l.r_px * 0.6);
            splat.capsule(c - half, c + half, l.r_px * 0.5, 1.0, |across| {
                let k = 1.0 - 0.25 * (across * across) as f32;
                [rgb[0] * k, rgb[1] * k, rgb[2] * k]
            });
        }
        splat.composite(canvas, 0.0);
    }

    /// True when the tree covers the (unshaken) pixel `p` at `t_s`.
    pub fn covers(&self, p: &P2, t_s: f64) -> bool {
        self.leaves.iter().any(|l| {
            let c = l.c + self.displacement(&l.c, t_s, l.phase);
            let half = l.dir * (l.r_px * 0.6);
            let (a, ab) = (c - half, half * 2.0);
            let t = ((p - a).dot(&ab) / ab.norm_squared().max(1e-9)).clamp(0.0, 1.0);
            (p - (a + ab * t)).norm() < l.r_px * 0.5
        }) || self.branches.iter().any(|b| {
            let (a, bb) = (
                b.a + self.displacement(&b.a, t_s, 0.0),
                b.b + self.displacement(&b.b, t_s, 0.0),
            );
            let ab = bb - a;
            let t = ((p - a).dot(&ab) / ab.norm_squared().max(1e-9)).clamp(0.0, 1.0);
            (p - (a + ab * t)).norm() < b.r_px
        })
    }

    /// A polygon around everything the tree may cover while swaying (for `[[ignore]]`).
    pub fn outline(&self, width: u32, height: u32) -> Vec<[f64; 2]> {
        let mut lo = P2::new(f64::INFINITY, f64::INFINITY);
        let mut hi = -lo;
        for l in &self.leaves {
            lo = lo.inf(&(l.c - P2::new(l.r_px, l.r_px)));
            hi = hi.sup(&(l.c + P2::new(l.r_px, l.r_px)));
        }
        let m = self.sway_px * 2.0 + 6.0;
        let (w, h) = (f64::from(width), f64::from(height));
        let x0 = (lo.x - m).clamp(0.0, w);
        let x1 = (hi.x + m).clamp(0.0, w);
        let y0 = (lo.y - m).clamp(0.0, h);
        let trunk_x0 = (self.base.x - 40.0).clamp(0.0, w);
        let trunk_x1 = (self.base.x + 40.0).clamp(0.0, w);
        vec![
            [x0, y0],
            [x1, y0],
            [x1, (hi.y + m).min(h)],
            [trunk_x1, h],
            [trunk_x0, h],
            [x0, (hi.y + m).min(h)],
        ]
    }
}
