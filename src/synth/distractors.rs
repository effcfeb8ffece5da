//! Things that move but are not thrown objects: birds (flapping, gliding, swooping dives that
//! pull up), falling leaves and paper, rain, insects at the lens, room lights switching, cloud
//! shadows sweeping the facade, auto-exposure jumps. (The foreground tree is in
//! [`super::tree`], camera shake in [`super::camera`].)

use nalgebra::UnitQuaternion;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::SynthRng;
use super::camera::{Camera, V3};
use super::noise;
use super::objects::ObjectLight;
use super::raster::{Canvas, P2, Splat};
use super::sky::{Lighting, Rgb, TimeOfDay};

/// A kind of distractor, as named on the command line and in truth files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistractorKind {
    /// Birds: flapping, gliding, swooping.
    Bird,
    /// Falling leaves.
    Leaf,
    /// Falling paper.
    Paper,
    /// Rain streaks.
    Rain,
    /// Insects close to the lens.
    Insect,
    /// Room lights switching on and off.
    Lights,
    /// Cloud shadows sweeping the facade.
    CloudShadow,
    /// Auto-exposure jumps.
    Exposure,
    /// A swaying tree in the foreground.
    Tree,
    /// Camera shake.
    Shake,
}

impl DistractorKind {
    /// All kinds.
    pub const ALL: [DistractorKind; 10] = [
        DistractorKind::Bird,
        DistractorKind::Leaf,
        DistractorKind::Paper,
        DistractorKind::Rain,
        DistractorKind::Insect,
        DistractorKind::Lights,
        DistractorKind::CloudShadow,
        DistractorKind::Exposure,
        DistractorKind::Tree,
        DistractorKind::Shake,
    ];

    /// The name used in truth files.
    pub fn name(self) -> &'static str {
        match self {
            DistractorKind::Bird => "bird",
            DistractorKind::Leaf => "leaf",
            DistractorKind::Paper => "paper",
            DistractorKind::Rain => "rain",
            DistractorKind::Insect => "insect",
            DistractorKind::Lights => "lights",
            DistractorKind::CloudShadow => "cloud_shadow",
            DistractorKind::Exposure => "exposure",
            DistractorKind::Tree => "tree",
            DistractorKind::Shake => "shake",
        }
    }
}

/// How a bird flies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BirdMode {
    /// Flapping flight.
    Flap,
    /// Gliding, wings still.
    Glide,
    /// A dive that accelerates downward, then pulls up.
    Swoop,
}

/// One bird.
#[derive(Clone, Debug)]
pub struct Bird {
    /// Position at `t0_s`.
    pub p0: V3,
    /// Cruise velocity, m/s.
    pub vel: V3,
    /// Flight mode.
    pub mode: BirdMode,
    /// Wingspan, metres.
    pub span_m: f64,
    /// Wingbeat frequency, hertz.
    pub flap_hz: f64,
    /// Start time, seconds.
    pub t0_s: f64,
    /// Dive start (after t0), duration and depth for a swoop.
    pub dive: (f64, f64, f64),
    /// Albedo.
    pub rgb: Rgb,
    seed: u64,
}

impl Bird {
    /// A random bird crossing the view of `cam` during `duration_s`.
    pub fn random(
        rng: &mut SynthRng,
        cam: &Camera,
        duration_s: f64,
        mode: Option<BirdMode>,
    ) -> Bird {
        let mode = mode.unwrap_or_else(|| match rng.random_range(0..10) {
            0..=4 => BirdMode::Flap,
            5..=6 => BirdMode::Glide,
            _ => BirdMode::Swoop,
        });
        let dist = rng.random_range(10.0..(cam.pos.z * 0.95).max(12.0));
        // Aim at a random pixel, then back off along the flight path so it crosses the view.
        let u = rng.random_range(0.1..0.9) * f64::from(cam.width);
        let v = rng.random_range(0.05..0.75) * f64::from(cam.height);
        let mid = cam.pos + cam.ray(u, v) * dist;
        let speed = match mode {
            BirdMode::Flap => rng.random_range(6.0..14.0),
            BirdMode::Glide => rng.random_range(7.0..12.0),
            BirdMode::Swoop => rng.random_range(5.0..10.0),
        };
        let heading: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        let vel = V3::new(
            heading.cos() * speed,
            rng.random_range(-0.8..0.8),
            heading.sin() * speed * 0.5,
        );
        let t_mid = rng.random_range(0.15..0.85) * duration_s;
        let span_m = rng.random_range(0.25..0.9);
        let dive_len = rng.random_range(0.7..1.5);
        let dive_drop = rng.random_range(4.0..14.0);
        let t0_s = (t_mid - duration_s).min(0.0);
        let p0 = mid - vel * (t_mid - t0_s);
        let dark: f32 = rng.random_range(0.06..0.3);
        Bird {
            p0,
            vel,
            mode,
            span_m,
            flap_hz: if span_m > 0.6 {
                rng.random_range(2.5..4.5)
            } else {
                rng.random_range(4.5..9.0)
            },
            t0_s,
            dive: (t_mid - t0_s - dive_len * 0.5, dive_len, dive_drop),
            rgb: if rng.random_bool(0.15) {
                [0.75, 0.75, 0.72]
            } else {
                [dark, dark * 0.95, dark * 0.9]
            },
            seed: rng.random(),
        }
    }

    /// Position at `t_s`.
    pub fn pos(&self, t_s: f64) -> V3 {
        let tau = t_s - self.t0_s;
        let mut p = self.p0 + self.vel * tau;
        p.y += 0.25 * (tau * 2.0 * std::f64::consts::PI * 0.4 + (self.seed % 7) as f64).sin();
        if self.mode == BirdMode::Swoop {
            let (ts, len, drop) = self.dive;
            let s = ((tau - ts) / len).clamp(0.0, 1.0);
            // Accelerating descent, then the pull-up; then a slow climb.
            let y = -drop * (1.0 - (std::f64::consts::PI * s).cos()) / 2.0;
            let climb = (tau - ts - len).max(0.0) * 1.5;
            p.y += y + climb;
        }
        p
    }

    fn wing(&self, t_s: f64) -> (f64, f64) {
        let ph = 2.0 * std::f64::consts::PI * self.flap_hz * t_s + (self.seed % 13) as f64;
        match self.mode {
            BirdMode::Flap => (0.95 * ph.sin() + 0.1, 1.0),
            BirdMode::Glide => (0.1 + 0.04 * (ph * 0.2).sin(), 1.0),
            BirdMode::Swoop => {
                let (ts, len, _) = self.dive;
                let tau = t_s - self.t0_s;
                if tau > ts && tau < ts + len {
                    (0.5, 0.45)
                } else {
                    (0.95 * ph.sin() + 0.1, 1.0)
                }
            }
        }
    }

    /// Adds one exposure sub-sample at `t_s`.
    pub fn draw(
        &self,
        splat: &mut Splat,
        cam: &Camera,
        t_s: f64,
        light: &Lighting,
        map: &dyn Fn(P2) -> P2,
    ) {
        let p = self.pos(t_s);
        let v = (self.pos(t_s + 0.01) - p) / 0.01;
        let h = V3::new(v.x, 0.0, v.z)
            .try_normalize(1e-6)
            .unwrap_or(V3::x());
        let side = V3::new(-h.z, 0.0, h.x);
        let up = V3::y();
        let (ang, fold) = self.wing(t_s);
        let s = self.span_m / 2.0 * fold;
        let ol = ObjectLight {
            light,
            sun_vis: 1.0,
            p,
            to_cam: (cam.pos - p).normalize(),
        };
        let under = ol.shade(self.rgb, 0.0, &V3::new(0.0, -1.0, 0.0));
        let over = ol.shade(self.rgb, 0.0, &up);
        let proj = |w: V3| cam.project(&w).map(|(q, _)| map(q));
        let Some((_, depth)) = cam.project(&p) else {
            return;
        };
        let body_l = self.span_m * 0.38;
        if let (Some(a), Some(b)) = (proj(p - h * body_l * 0.55), proj(p + h * body_l * 0.45)) {
            let r = cam.focal_px * self.span_m * 0.05 / depth;
            splat.capsule(a, b, r, 1.0, |_| under);
        }
        for sgn in [-1.0, 1.0] {
            let rf = p + h * (0.07 * self.span_m);
            let rb = p - h * (0.1 * self.span_m);
            let elbow =
                p + side * (sgn * s * 0.5 * (ang * 0.5).cos()) + up * (s * 0.5 * (ang * 0.5).sin());
            let tip = elbow + side * (sgn * s * 0.5 * ang.cos()) + up * (s * 0.5 * ang.sin())
                - h * (0.12 * self.span_m);
            let c = if ang > 0.2 { under } else { over };
            if let (Some(a), Some(b), Some(e), Some(t)) =
                (proj(rf), proj(rb), proj(elbow), proj(tip))
            {
                splat.polygon(&[a, e, b], 1.0, c);
                splat.polygon(&[e, t, b], 1.0, c);
            }
        }
    }
}

/// A falling leaf or sheet of paper: slow, near terminal speed, fluttering and drifting.
#[derive(Clone, Debug)]
pub struct Flutter {
    /// Paper (white rectangle) or a leaf.
    pub paper: bool,
    /// Size, metres.
    pub size_m: f64,
    /// Position at `t0_s`.
    pub p0: V3,
    /// Start time.
    pub t0_s: f64,
    /// Mean fall speed, m/s.
    pub fall_m_s: f64,
    /// Sideways swing amplitude, metres.
    pub swing_m: f64,
    /// Swing frequency, hertz.
    pub swing_hz: f64,
    /// Drift, m/s.
    pub drift: V3,
    spin: V3,
    q0: UnitQuaternion<f64>,
    /// Albedo.
    pub rgb: Rgb,
}

impl Flutter {
    /// A random leaf or paper falling through the view of `cam`.
    pub fn random(
        rng: &mut SynthRng,
        cam: &Camera,
        duration_s: f64,
        paper: bool,
        near: Option<f64>,
    ) -> Flutter {
        let dist = near.unwrap_or_else(|| rng.random_range(6.0..(cam.pos.z * 0.95).max(8.0)));
        let u = rng.random_range(0.05..0.95) * f64::from(cam.width);
        let v = rng.random_range(0.0..0.9) * f64::from(cam.height);
        let mid = cam.pos + cam.ray(u, v) * dist;
        let fall = if paper {
            rng.random_range(0.6..1.6)
        } else {
            rng.random_range(0.8..2.0)
        };
        let drift = V3::new(
            rng.random_range(-1.5..1.5),
            0.0,
            rng.random_range(-0.5..0.5),
        );
        let t_mid = rng.random_range(0.0..1.0) * duration_s;
        let p0 = mid + (V3::new(0.0, fall, 0.0) - drift) * t_mid;
        let rgb = if paper {
            let k = rng.random_range(0.6..0.85);
            [k, k, k * 0.97]
        } else {
            [
                [0.25, 0.35, 0.08],
                [0.45, 0.35, 0.1],
                [0.35, 0.2, 0.08],
                [0.5, 0.45, 0.15],
            ][rng.random_range(0..4)]
        };
        Flutter {
            paper,
            size_m: if paper {
                rng.random_range(0.15..0.32)
            } else {
                rng.random_range(0.05..0.12)
            },
            p0,
            t0_s: 0.0,
            fall_m_s: fall,
            swing_m: rng.random_range(0.2..0.9),
            swing_hz: rng.random_range(0.4..1.2),
            drift,
            spin: V3::new(
                rng.random_range(-6.0..6.0),
                rng.random_range(-3.0..3.0),
                rng.random_range(-6.0..6.0),
            ),
            q0: UnitQuaternion::from_euler_angles(
                rng.random_range(0.0..6.3),
                rng.random_range(0.0..6.3),
                rng.random_range(0.0..6.3),
            ),
            rgb,
        }
    }

    /// Position at `t_s`.
    pub fn pos(&self, t_s: f64) -> V3 {
        let tau = t_s - self.t0_s;
        let w = 2.0 * std::f64::consts::PI * self.swing_hz * tau;
        // Falling leaf: the swing speeds the fall at the bottom of each arc.
        self.p0
            + self.drift * tau
            + V3::new(
                self.swing_m * w.sin(),
                -self.fall_m_s * tau - 0.15 * self.swing_m * (2.0 * w).cos(),
                0.5 * self.swing_m * (0.8 * w).cos(),
            )
    }

    /// Adds one exposure sub-sample at `t_s`.
    pub fn draw(
        &self,
        splat: &mut Splat,
        cam: &Camera,
        t_s: f64,
        light: &Lighting,
        map: &dyn Fn(P2) -> P2,
    ) {
        let p = self.pos(t_s);
        let q = UnitQuaternion::from_scaled_axis(self.spin * (t_s - self.t0_s)) * self.q0;
        let (e1, e2) = (q * V3::x(), q * V3::y());
        let mut n = q * V3::z();
        let to_cam = (cam.pos - p).normalize();
        if n.dot(&to_cam) < 0.0 {
            n = -n;
        }
        let (a, b) = (
            self.size_m / 2.0,
            self.size_m * if self.paper { 0.35 } else { 0.25 },
        );
        let corners = if self.paper {
            vec![
                p + e1 * a + e2 * b,
                p - e1 * a + e2 * b,
                p - e1 * a - e2 * b,
                p + e1 * a - e2 * b,
            ]
        } else {
            vec![p + e1 * a, p + e2 * b, p - e1 * a, p - e2 * b]
        };
        let pts: Vec<P2> = corners
            .iter()
            .filter_map(|w| cam.project(w).map(|(q, _)| map(q)))
            .collect();
        if pts.len() == corners.len() {
            let ol = ObjectLight {
                light,
                sun_vis: 1.0,
                p,
                to_cam,
            };
            splat.polygon(&pts, 1.0, ol.shade(self.rgb, 0.1, &n));
        }
    }
}

/// Rain: drops in the whole view volume, streaked by the exposure; near drops big and blurry.
#[derive(Clone, Debug)]
pub struct Rain {
    /// 0..1.
    pub intensity: f64,
    drops: Vec<(f64, f64, f64, f64)>,
    /// Fall speed, m/s.
    pub speed_m_s: f64,
    /// Sideways wind, m/s.
    pub wind_m_s: f64,
}

impl Rain {
    /// Random rain of `intensity` (0..1).
    pub fn random(rng: &mut SynthRng, intensity: f64) -> Rain {
        let n = (200.0 + 2600.0 * intensity) as usize;
        let drops = (0..n)
            .map(|_| {
                (
                    rng.random_range(0.0..1.0),
                    rng.random_range(0.0..1.0),
                    0.4 + 45.0 * rng.random_range(0.0f64..1.0).powf(1.6),
                    rng.random_range(0.0..1.0),
                )
            })
            .collect();
        Rain {
            intensity,
            drops,
            speed_m_s: rng.random_range(6.0..9.0),
            wind_m_s: rng.random_range(-2.5..2.5),
        }
    }

    /// Draws the drops of the exposure [`t_s` - `exp_s`/2, `t_s` + `exp_s`/2].
    pub fn draw(
        &self,
        canvas: &mut Canvas<'_>,
        cam: &Camera,
        t_s: f64,
        exp_s: f64,
        light: &Lighting,
    ) {
        let (w, h) = (f64::from(cam.width), f64::from(cam.height));
        let scale = h / 1080.0;
        let up = V3::new(0.0, 1.0, 0.0);
        let base = {
            let s = light.sky(&up);
            let a = light.ambient(&V3::new(0.0, 0.0, 1.0));
            [s[0] * 0.5 + a[0], s[1] * 0.5 + a[1], s[2] * 0.5 + a[2]]
        };
        let exp = exp_s.max(0.004);
        for &(u, v, d, ph) in &self.drops {
            let span_y = d * h / cam.focal_px * 1.6 + 1.0;
            let span_x = d * w / cam.focal_px * 1.4 + 1.0;
            let anchor = cam.pos + cam.ray(u * w, v * h) * d;
            let at = |t: f64| {
                let fy = (self.speed_m_s * t + ph * span_y).rem_euclid(span_y);
                let fx = (self.wind_m_s * t + ph * 7.0 * span_x).rem_euclid(span_x);
                anchor + V3::new(fx - span_x / 2.0, span_y / 2.0 - fy, 0.0)
            };
            let (p0, p1) = (at(t_s - exp / 2.0), at(t_s + exp / 2.0));
            if (p0 - p1).norm() > self.speed_m_s * exp * 2.0 {
                continue; // wrapped inside this exposure
            }
            let (Some((a, da)), Some((b, _))) = (cam.project(&p0), cam.project(&p1)) else {
                continue;
            };
            let blur = 3.5 * scale * (1.0 / da - 1.0 / 40.0).abs();
            let r = (cam.focal_px * 0.0012 / da).max(0.3) + blur;
            // Thin far streaks are nearly opaque lines; near drops spread their light thinly.
            let alpha =
                (0.7 * (0.8 / r).min(1.0)).max(0.1) as f32 * (0.5 + 0.5 * self.intensity as f32);
            let lamp = light.lamps_at(&p0, &(cam.pos - p0).normalize());
            // Drops catch the bright sky and the lamps: brighter than what is behind them.
            let rgb = [
                (base[0] + lamp[0] * 2.0) * 1.6,
                (base[1] + lamp[1] * 2.0) * 1.6,
                (base[2] + lamp[2] * 2.0) * 1.6,
            ];
            if let Some(mut s) = Splat::new(
                a.x.min(b.x) - r - 2.0,
                a.y.min(b.y) - r - 2.0,
                a.x.max(b.x) + r + 2.0,
                a.y.max(b.y) + r + 2.0,
                canvas.width,
                canvas.height,
                1,
            ) {
                s.capsule(a, b, r, alpha, |_| rgb);
                s.composite(canvas, 0.0);
            }
        }
    }
}

/// An insect flying erratically right in front of the lens: a large, blurred blob.
#[derive(Clone, Debug)]
pub struct Insect {
    /// Centre of its wandering, pixels.
    pub c0: P2,
    /// Blob radius, pixels.
    pub r_px: f64,
    /// Wandering amplitude, pixels.
    pub roam_px: f64,
    /// Visible from, seconds.
    pub t_in_s: f64,
    /// Visible until, seconds.
    pub t_out_s: f64,
    /// Lit by the infrared illuminator (bright) or a dark silhouette.
    pub bright: bool,
    /// Opacity.
    pub alpha: f32,
    seed: u64,
}

impl Insect {
    /// A random insect for a `width` x `height` image.
    pub fn random(
        rng: &mut SynthRng,
        width: u32,
        height: u32,
        duration_s: f64,
        bright: bool,
    ) -> Insect {
        let (w, h) = (f64::from(width), f64::from(height));
        let t_in = rng.random_range(0.0..duration_s * 0.7);
        Insect {
            c0: P2::new(
                rng.random_range(0.1..0.9) * w,
                rng.random_range(0.1..0.9) * h,
            ),
            r_px: rng.random_range(12.0..70.0) * h / 1080.0,
            roam_px: rng.random_range(60.0..260.0) * h / 1080.0,
            t_in_s: t_in,
            t_out_s: (t_in + rng.random_range(1.0..4.0)).min(duration_s + 1.0),
            bright,
            alpha: rng.random_range(0.25..0.6),
            seed: rng.random(),
        }
    }

    /// Centre at `t_s`.
    pub fn pos(&self, t_s: f64) -> P2 {
        let s = self.seed;
        self.c0
            + P2::new(
                noise::wobble(s, t_s * 1.4, 3),
                noise::wobble(s ^ 1, t_s * 1.4, 3),
            ) * self.roam_px
            + P2::new(
                noise::wobble(s ^ 2, t_s * 9.0, 1),
                noise::wobble(s ^ 3, t_s * 9.0, 1),
            ) * (self.r_px * 0.5)
    }

    /// Draws the blob over the exposure (sub-sampled); `key` is the scene's mid-grey radiance.
    pub fn draw(&self, canvas: &mut Canvas<'_>, t_s: f64, exp_s: f64, key: f32) {
        if t_s < self.t_in_s || t_s > self.t_out_s {
            return;
        }
        let n = 4;
        let ps: Vec<P2> = (0..n)
            .map(|i| self.pos(t_s + exp_s * ((i as f64 + 0.5) / n as f64 - 0.5)))
            .collect();
        let ext = self.r_px * 1.6 + 2.0;
        let (mut lo, mut hi) = (ps[0], ps[0]);
        for p in &ps {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        let Some(mut s) = Splat::new(
            lo.x - ext,
            lo.y - ext,
            hi.x + ext,
            hi.y + ext,
            canvas.width,
            canvas.height,
            n,
        ) else {
            return;
        };
        let rgb = if self.bright {
            [key * 5.0; 3]
        } else {
            [key * 0.15, key * 0.13, key * 0.1]
        };
        for p in ps {
            s.soft_disc(p, self.r_px * 0.8, self.r_px * 0.35, self.alpha, rgb);
        }
        s.composite(canvas, 0.0);
    }
}

/// When room lights are on.
#[derive(Clone, Debug, Default)]
pub struct LightSchedule {
    /// Initial state by window id (index 0 unused).
    pub on: Vec<bool>,
    /// Switches: window id, time, new state, fluorescent flicker.
    pub switches: Vec<(u32, f64, bool, bool)>,
    /// Windows with a flickering television.
    pub tv: Vec<(u32, u64)>,
}

impl LightSchedule {
    /// Light level (0..1) of window `win` at `t_s`.
    pub fn level(&self, win: u32, t_s: f64) -> f32 {
        let mut on = self.on.get(win as usize).copied().unwrap_or(false);
        let mut level = if on { 1.0 } else { 0.0 };
        for &(w, ts, to, fluo) in &self.switches {
            if w != win || t_s < ts {
                continue;
            }
            on = to;
            let dt = t_s - ts;
            level = if on {
                if fluo && dt < 0.25 {
                    [1.0, 0.1, 0.8, 0.0, 1.0][((dt / 0.05) as usize).min(4)]
                } else {
                    1.0
                }
            } else {
                0.0
            };
        }
        if on && let Some(&(_, seed)) = self.tv.iter().find(|(w, _)| *w == win) {
            level *= (0.55 + 0.45 * noise::wobble(seed, t_s * 5.0, 2)).clamp(0.1, 1.0) as f32;
        }
        level
    }
}

/// The edge of a cloud shadow sweeping across the scene.
#[derive(Clone, Debug)]
pub struct CloudShadow {
    /// Direction of travel on the cloud plane (unit).
    pub dir: [f64; 2],
    /// Speed, m/s.
    pub speed_m_s: f64,
    /// Time the edge crosses the view's centre, seconds.
    pub t_mid_s: f64,
    /// Width of the soft edge, metres.
    pub edge_m: f64,
    /// Fraction of sunlight removed in the shadow.
    pub strength: f32,
    /// Shadow arriving (true) or leaving.
    pub arriving: bool,
    /// Seed of the edge's wiggles.
    pub seed: u64,
}

impl CloudShadow {
    /// A random cloud shadow during a clip of `duration_s`.
    pub fn random(rng: &mut SynthRng, duration_s: f64) -> CloudShadow {
        let a: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        CloudShadow {
            dir: [a.cos(), a.sin()],
            speed_m_s: rng.random_range(6.0..18.0),
            t_mid_s: rng.random_range(0.2..0.8) * duration_s,
            edge_m: rng.random_range(8.0..30.0),
            strength: rng.random_range(0.55..0.85),
            arriving: rng.random_bool(0.5),
            seed: rng.random(),
        }
    }

    /// The static per-pixel coordinate across the edge (metres) for cloud-plane point `uv`
    /// relative to `centre`.
    pub fn edge_coord(&self, uv: [f32; 2], centre: [f64; 2], unit_m: f64) -> f32 {
        let (du, dv) = (f64::from(uv[0]) - centre[0], f64::from(uv[1]) - centre[1]);
        let along = (du * self.dir[0] + dv * self.dir[1]) * unit_m;
        let wig = (noise::fbm2(
            self.seed,
            f64::from(uv[0]) * 12.0,
            f64::from(uv[1]) * 12.0,
            3,
        ) - 0.5)
            * 60.0;
        (along + wig) as f32
    }

    /// Sunlight factor (1 = full sun) for edge coordinate `e` at `t_s`.
    pub fn factor(&self, e: f32, t_s: f64) -> f32 {
        let x = f64::from(e) - self.speed_m_s * (t_s - self.t_mid_s);
        let s = (0.5 + x / (2.0 * self.edge_m)).clamp(0.0, 1.0);
        let s = (s * s * (3.0 - 2.0 * s)) as f32;
        // Positive x: the edge has not reached this point yet.
        let shade = if self.arriving { 1.0 - s } else { s };
        1.0 - self.strength * shade
    }
}

/// Sudden auto-exposure corrections.
#[derive(Clone, Debug, Default)]
pub struct ExposureJumps {
    /// Time and gain factor of each jump.
    pub jumps: Vec<(f64, f64)>,
}

impl ExposureJumps {
    /// Random jumps over a clip.
    pub fn random(rng: &mut SynthRng, duration_s: f64) -> Self {
        let n = rng.random_range(1..3);
        ExposureJumps {
            jumps: (0..n)
                .map(|_| {
                    (
                        rng.random_range(0.5..duration_s.max(1.0) - 0.3),
                        if rng.random_bool(0.5) {
                            rng.random_range(1.2..1.5)
                        } else {
                            rng.random_range(0.65..0.85)
                        },
                    )
                })
                .collect(),
        }
    }

    /// Gain multiplier at `t_s`: a jump, then the camera settles back over ~0.6 s.
    pub fn gain(&self, t_s: f64) -> f64 {
        self.jumps
            .iter()
            .filter(|(t, _)| t_s >= *t)
            .map(|(t, f)| 1.0 + (f - 1.0) * (-(t_s - t) / 0.6).exp())
            .product()
    }
}

/// Whether a time of day makes insects bright (lit by the camera's infrared LEDs).
pub fn insects_bright(light: &Lighting) -> bool {
    light.time == TimeOfDay::Night
}
