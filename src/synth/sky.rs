//! Light: the time of day, the sun, the sky dome with clouds, street lights and the infrared
//! illuminator of a camera in night mode. Radiance is in one linear, relative unit; the camera's
//! auto-exposure maps it to pixel values later.

use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::SynthRng;
use super::camera::V3;
use super::noise;

/// Linear RGB radiance or reflectance.
pub type Rgb = [f32; 3];

/// When the clip is filmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeOfDay {
    /// Daylight: sun or overcast, cloud shadows.
    Day,
    /// Low sun, orange sky, some windows lit, street lights on.
    Dusk,
    /// Dark sky, lit windows, street lights; often an infrared monochrome picture.
    Night,
}

impl TimeOfDay {
    /// All times of day.
    pub const ALL: [TimeOfDay; 3] = [TimeOfDay::Day, TimeOfDay::Dusk, TimeOfDay::Night];

    /// The name used in truth files and tags.
    pub fn name(self) -> &'static str {
        match self {
            TimeOfDay::Day => "day",
            TimeOfDay::Dusk => "dusk",
            TimeOfDay::Night => "night",
        }
    }
}

/// A point light (street lamp, infrared illuminator).
#[derive(Clone, Debug)]
pub struct PointLight {
    /// Position, world metres.
    pub pos: V3,
    /// Radiant intensity (irradiance at 1 m), per channel.
    pub rgb: Rgb,
    /// A spot light's axis and beam exponent (intensity times cos^k off the axis).
    pub spot: Option<(V3, i32)>,
}

/// Everything that lights the scene.
#[derive(Clone, Debug)]
pub struct Lighting {
    /// Time of day.
    pub time: TimeOfDay,
    /// Unit vector toward the sun (below the horizon at night).
    pub sun_dir: V3,
    /// Sun irradiance on a surface facing it.
    pub sun_rgb: Rgb,
    /// Sky colour at the zenith.
    pub zenith_rgb: Rgb,
    /// Sky colour at the horizon.
    pub horizon_rgb: Rgb,
    /// Light reflected by the ground onto surfaces facing down.
    pub ground_rgb: Rgb,
    /// Sky irradiance on a surface facing up.
    pub sky_amb_rgb: Rgb,
    /// 0 = clear, 1 = overcast.
    pub cloud_cover: f64,
    /// Cloud pattern seed.
    pub cloud_seed: u64,
    /// Cloud brightness (lit side).
    pub cloud_rgb: Rgb,
    /// Street lamps and the like.
    pub lamps: Vec<PointLight>,
    /// Night-mode infrared picture (monochrome).
    pub infrared: bool,
    /// Extra contrast loss (rain, haze): 0 = clear air.
    pub haze: f64,
    /// Probability that a window is lit (dusk, night).
    pub lit_window_fraction: f64,
}

fn scale(c: Rgb, k: f64) -> Rgb {
    [c[0] * k as f32, c[1] * k as f32, c[2] * k as f32]
}

fn lerp(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = t as f32;
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

impl Lighting {
    /// Random lighting for `time`. `camera_pos` and `camera_fwd` place the lamps and the
    /// infrared illuminator.
    pub fn random(
        rng: &mut SynthRng,
        time: TimeOfDay,
        camera_pos: &V3,
        camera_fwd: &V3,
        infrared: bool,
    ) -> Self {
        // The sun's azimuth relative to the facade normal (+z): it may light the wall or not.
        let az: f64 = rng.random_range(-150.0f64..150.0).to_radians();
        let (elev_deg, sun_rgb, zenith, horizon, cover) = match time {
            TimeOfDay::Day => {
                let overcast = rng.random_bool(0.3);
                let cover = if overcast {
                    rng.random_range(0.75..1.0)
                } else {
                    rng.random_range(0.0..0.6)
                };
                let k = if overcast { 0.25 } else { 1.0 };
                (
                    rng.random_range(20.0..65.0),
                    scale([3.2, 3.05, 2.8], k),
                    if overcast {
                        [0.85, 0.88, 0.92]
                    } else {
                        [0.22, 0.38, 0.75]
                    },
                    if overcast {
                        [1.0, 1.0, 1.02]
                    } else {
                        [0.75, 0.82, 0.95]
                    },
                    cover,
                )
            }
            TimeOfDay::Dusk => (
                rng.random_range(0.5..7.0),
                [1.1, 0.55, 0.25],
                [0.06, 0.09, 0.2],
                [0.75, 0.42, 0.22],
                rng.random_range(0.1..0.7),
            ),
            TimeOfDay::Night => (
                -20.0,
                [0.0, 0.0, 0.0],
                [0.004, 0.005, 0.009],
                [0.025, 0.018, 0.012],
                rng.random_range(0.2..0.9),
            ),
        };
        let el = f64::to_radians(elev_deg);
        let sun_dir = V3::new(az.sin() * el.cos(), el.sin(), az.cos() * el.cos()).normalize();
        let sky_amb = lerp(zenith, horizon, 0.4);
        let ground = match time {
            TimeOfDay::Day => lerp(scale(sky_amb, 0.25), scale(sun_rgb, 0.08 * el.sin()), 0.5),
            TimeOfDay::Dusk => scale(horizon, 0.12),
            TimeOfDay::Night => [0.004, 0.0032, 0.0025],
        };
        let cloud_rgb = match time {
            TimeOfDay::Day => lerp([1.25, 1.25, 1.25], [0.75, 0.77, 0.8], cover),
            TimeOfDay::Dusk => [0.95, 0.55, 0.45],
            TimeOfDay::Night => [0.02, 0.015, 0.011],
        };
        let mut lamps = Vec::new();
        if time != TimeOfDay::Day {
            let n = rng.random_range(1..4);
            let sodium = rng.random_bool(0.5);
            for _ in 0..n {
                let pos = V3::new(
                    camera_pos.x + rng.random_range(-30.0..30.0),
                    rng.random_range(5.0..9.0),
                    rng.random_range(4.0..(camera_pos.z * 0.8).max(6.0)),
                );
                let k = rng.random_range(15.0..45.0);
                let rgb = if sodium {
                    [1.0, 0.62, 0.25]
                } else {
                    [0.9, 0.95, 1.0]
                };
                lamps.push(PointLight {
                    pos,
                    rgb: scale(rgb, k),
                    spot: None,
                });
            }
        }
        if infrared {
            // The camera's own LEDs: a beam along the view, falling off with distance.
            lamps.push(PointLight {
                pos: *camera_pos,
                rgb: scale([1.0, 1.0, 1.0], rng.random_range(30.0..90.0)),
                spot: Some((*camera_fwd, rng.random_range(6..16))),
            });
        }
        let lit = match time {
            TimeOfDay::Day => 0.0,
            TimeOfDay::Dusk => rng.random_range(0.1..0.35),
            TimeOfDay::Night => rng.random_range(0.25..0.6),
        };
        Lighting {
            time,
            sun_dir,
            sun_rgb,
            zenith_rgb: zenith,
            horizon_rgb: horizon,
            ground_rgb: ground,
            sky_amb_rgb: sky_amb,
            cloud_cover: cover,
            cloud_seed: rng.random(),
            cloud_rgb,
            lamps,
            infrared,
            haze: 0.0,
            lit_window_fraction: lit,
        }
    }

    /// True when the sun lights anything.
    pub fn has_sun(&self) -> bool {
        self.sun_dir.y > 0.0 && self.sun_rgb.iter().any(|&c| c > 0.0)
    }

    /// Cloud density (0..1) seen along a ray of direction `d` going up.
    pub fn cloud_density(&self, d: &V3) -> f64 {
        if d.y <= 0.01 {
            return 0.0;
        }
        let k = 1500.0 / d.y;
        let (u, v) = (d.x * k / 900.0, d.z * k / 900.0);
        self.cloud_at(u, v)
    }

    /// Cloud density at cloud-plane coordinates (units of 900 m).
    pub fn cloud_at(&self, u: f64, v: f64) -> f64 {
        let n = noise::fbm2(self.cloud_seed, u, v * 1.6, 5);
        let thr = 0.72 - 0.42 * self.cloud_cover;
        ((n - thr) / 0.16).clamp(0.0, 1.0)
    }

    /// Radiance of the sky in direction `d` (unit).
    pub fn sky(&self, d: &V3) -> Rgb {
        let el = d.y.max(-0.2);
        let t = (1.0 - el.max(0.0)).powi(4);
        let mut c = lerp(self.zenith_rgb, self.horizon_rgb, t);
        if self.has_sun() {
            let cosang = d.dot(&self.sun_dir).max(0.0);
            let glow = cosang.powi(24) * 0.8 + cosang.powi(600) * 30.0;
            let k = (1.0 - self.cloud_cover) * glow;
            c = [
                c[0] + self.sun_rgb[0] * k as f32 * 0.25,
                c[1] + self.sun_rgb[1] * k as f32 * 0.25,
                c[2] + self.sun_rgb[2] * k as f32 * 0.25,
            ];
        }
        let dens = self.cloud_density(d);
        if dens > 0.0 {
            // Thicker clouds are darker underneath; far clouds fade into the horizon haze.
            let shade = 1.0 - 0.25 * dens;
            let fade = (d.y * 4.0).clamp(0.0, 1.0);
            let cloud = scale(self.cloud_rgb, shade);
            c = lerp(c, cloud, dens * fade * 0.95);
        }
        if self.time == TimeOfDay::Night {
            // City glow near the horizon.
            let g = (1.0 - el.max(0.0) * 3.0).clamp(0.0, 1.0) as f32;
            c = [c[0] + 0.012 * g, c[1] + 0.008 * g, c[2] + 0.005 * g];
        }
        c
    }

    /// Irradiance from sky and ground on a surface with unit normal `n`.
    pub fn ambient(&self, n: &V3) -> Rgb {
        let up = (0.5 + 0.5 * n.y) as f32;
        let down = 1.0 - up;
        [
            self.sky_amb_rgb[0] * up + self.ground_rgb[0] * down,
            self.sky_amb_rgb[1] * up + self.ground_rgb[1] * down,
            self.sky_amb_rgb[2] * up + self.ground_rgb[2] * down,
        ]
    }

    /// Irradiance from the point lights at `p` with normal `n` (no shadows).
    pub fn lamps_at(&self, p: &V3, n: &V3) -> Rgb {
        let mut c = [0.0f32; 3];
        for l in &self.lamps {
            let d = l.pos - p;
            let r2 = d.norm_squared().max(1.0);
            let r = r2.sqrt();
            let cos = (n.dot(&d) / r).max(0.0);
            let beam = match &l.spot {
                Some((axis, e)) => (-(d.dot(axis)) / r).max(0.0).powi(*e),
                None => 1.0,
            };
            let k = (cos * beam / r2) as f32;
            for (ci, li) in c.iter_mut().zip(l.rgb) {
                *ci += li * k;
            }
        }
        c
    }
}
