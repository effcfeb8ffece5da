//! Thrown and dropped objects: kinds with their size, mass and drag, 3-D flight under gravity and
//! quadratic air drag (RK4), tumbling, and how a body looks in the picture at an instant
//! (projected shape, lit and dark sides, gloss).

use nalgebra::{Matrix2, UnitQuaternion};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::SynthRng;
use super::camera::{Camera, V3};
use super::noise;
use super::raster::{P2, Splat};
use super::sky::{Lighting, Rgb};

/// Standard gravity, m/s^2.
pub const G_M_S2: f64 = 9.81;
/// Air density, kg/m^3.
pub const AIR_KG_M3: f64 = 1.2;

/// What is thrown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// Glass or plastic bottle.
    Bottle,
    /// Drinks can.
    Can,
    /// Brick or stone.
    Brick,
    /// Mobile phone.
    Phone,
    /// Plastic rubbish bag.
    Bag,
    /// Cardboard box.
    Box,
    /// Apple, orange, melon.
    Fruit,
}

impl ObjectKind {
    /// All kinds.
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::Bottle,
        ObjectKind::Can,
        ObjectKind::Brick,
        ObjectKind::Phone,
        ObjectKind::Bag,
        ObjectKind::Box,
        ObjectKind::Fruit,
    ];

    /// The name used in truth files.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Bottle => "bottle",
            ObjectKind::Can => "can",
            ObjectKind::Brick => "brick",
            ObjectKind::Phone => "phone",
            ObjectKind::Bag => "bag",
            ObjectKind::Box => "box",
            ObjectKind::Fruit => "fruit",
        }
    }
}

/// How it leaves the hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    /// Let go with (almost) no speed.
    Drop,
    /// Thrown outward, toward the camera.
    Throw,
    /// Tossed upward.
    Toss,
}

impl Motion {
    /// All motions.
    pub const ALL: [Motion; 3] = [Motion::Drop, Motion::Throw, Motion::Toss];

    /// The name used in truth files.
    pub fn name(self) -> &'static str {
        match self {
            Motion::Drop => "drop",
            Motion::Throw => "throw",
            Motion::Toss => "toss",
        }
    }
}

/// How a body is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    /// A cylinder (can) or a cylinder with a neck (bottle).
    Cylinder {
        /// Has a neck.
        neck: bool,
    },
    /// A rectangular box.
    Cuboid,
    /// An ellipsoid (fruit; a bag when it deforms).
    Ellipsoid {
        /// Wobbles in shape (a bag).
        deform: bool,
    },
}

/// A physical object.
#[derive(Clone, Debug)]
pub struct Body {
    /// Kind.
    pub kind: ObjectKind,
    /// Full extents along the body axes (length, width, thickness), metres.
    pub dims_m: V3,
    /// Mass, kg.
    pub mass_kg: f64,
    /// Drag coefficient.
    pub cd: f64,
    /// Mean projected area while tumbling, m^2 (a quarter of the surface, Cauchy).
    pub area_m2: f64,
    /// Albedo.
    pub rgb: Rgb,
    /// Specular strength (0 matte .. 1 glossy).
    pub gloss: f32,
    /// Spin vector (axis times rate), rad/s.
    pub spin: V3,
    /// Orientation at release.
    pub q0: UnitQuaternion<f64>,
    /// Shape for drawing.
    pub shape: Shape,
    /// Seed for flutter and deformation.
    pub seed: u64,
}

impl Body {
    /// A random body of `kind`.
    pub fn random(rng: &mut SynthRng, kind: ObjectKind) -> Body {
        let pick = |rng: &mut SynthRng, cs: &[Rgb]| cs[rng.random_range(0..cs.len())];
        let (dims, mass, cd, rgb, gloss, shape): (V3, f64, f64, Rgb, f32, Shape) = match kind {
            ObjectKind::Bottle => {
                let l = rng.random_range(0.2..0.34);
                let d = l * rng.random_range(0.26..0.32);
                let full = rng.random_bool(0.5);
                let vol = std::f64::consts::PI * d * d / 4.0 * l * 0.8;
                let m = if full {
                    1000.0 * vol + 0.05
                } else {
                    0.04 * l / 0.25
                };
                let c = pick(
                    rng,
                    &[
                        [0.25, 0.45, 0.3],
                        [0.5, 0.6, 0.65],
                        [0.35, 0.22, 0.1],
                        [0.6, 0.65, 0.7],
                    ],
                );
                (
                    V3::new(l, d, d),
                    m,
                    0.85,
                    c,
                    0.8,
                    Shape::Cylinder { neck: true },
                )
            }
            ObjectKind::Can => {
                let l = rng.random_range(0.11..0.17);
                let d = l * 0.55;
                let m = if rng.random_bool(0.5) {
                    0.35 * l / 0.12
                } else {
                    0.015
                };
                let c = pick(
                    rng,
                    &[
                        [0.7, 0.7, 0.72],
                        [0.7, 0.1, 0.1],
                        [0.1, 0.25, 0.6],
                        [0.15, 0.5, 0.2],
                    ],
                );
                (
                    V3::new(l, d, d),
                    m,
                    1.0,
                    c,
                    0.7,
                    Shape::Cylinder { neck: false },
                )
            }
            ObjectKind::Brick => {
                let l = rng.random_range(0.19..0.25);
                let dims = V3::new(l, l * 0.48, l * 0.27);
                let m = 1800.0 * dims.x * dims.y * dims.z;
                let c = pick(
                    rng,
                    &[[0.42, 0.17, 0.1], [0.45, 0.44, 0.42], [0.55, 0.32, 0.2]],
                );
                (dims, m, 1.05, c, 0.05, Shape::Cuboid)
            }
            ObjectKind::Phone => {
                let l = rng.random_range(0.13..0.17);
                (
                    V3::new(l, l * 0.48, 0.009),
                    rng.random_range(0.14..0.23),
                    1.1,
                    pick(
                        rng,
                        &[[0.03, 0.03, 0.035], [0.6, 0.6, 0.62], [0.2, 0.25, 0.4]],
                    ),
                    0.6,
                    Shape::Cuboid,
                )
            }
            ObjectKind::Bag => {
                let l = rng.random_range(0.25..0.4);
                let m = if rng.random_bool(0.4) {
                    rng.random_range(0.03..0.15)
                } else {
                    rng.random_range(0.3..2.0)
                };
                (
                    V3::new(l, l * 0.8, l * 0.6),
                    m,
                    1.3,
                    pick(
                        rng,
                        &[
                            [0.05, 0.05, 0.05],
                            [0.75, 0.75, 0.72],
                            [0.1, 0.25, 0.55],
                            [0.6, 0.1, 0.1],
                        ],
                    ),
                    0.35,
                    Shape::Ellipsoid { deform: true },
                )
            }
            ObjectKind::Box => {
                let l = rng.random_range(0.15..0.4);
                let dims = V3::new(
                    l,
                    l * rng.random_range(0.6..1.0),
                    l * rng.random_range(0.4..0.9),
                );
                let m = rng.random_range(0.1..2.5) * (l / 0.3).powi(2);
                let c = pick(
                    rng,
                    &[[0.45, 0.32, 0.18], [0.6, 0.5, 0.35], [0.7, 0.7, 0.68]],
                );
                (dims, m, 1.05, c, 0.05, Shape::Cuboid)
            }
            ObjectKind::Fruit => {
                let l = if rng.random_bool(0.8) {
                    rng.random_range(0.06..0.11)
                } else {
                    rng.random_range(0.18..0.28)
                };
                let m = 900.0 * std::f64::consts::PI / 6.0 * l * l * l;
                let c = if l > 0.15 {
                    [0.15, 0.35, 0.1]
                } else {
                    pick(
                        rng,
                        &[
                            [0.6, 0.08, 0.05],
                            [0.85, 0.45, 0.05],
                            [0.5, 0.6, 0.1],
                            [0.8, 0.7, 0.15],
                        ],
                    )
                };
                (
                    V3::new(l, l * 0.95, l * 0.92),
                    m,
                    0.5,
                    c,
                    0.3,
                    Shape::Ellipsoid { deform: false },
                )
            }
        };
        let area = surface_area(shape, &dims) / 4.0;
        let spin_rate = match kind {
            ObjectKind::Bag => rng.random_range(0.5..4.0),
            ObjectKind::Fruit => rng.random_range(0.5..6.0),
            _ => rng.random_range(1.5..14.0),
        };
        let axis = V3::new(
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
            rng.random_range(-1.0..1.0),
        )
        .try_normalize(1e-6)
        .unwrap_or(V3::x());
        let q0 = UnitQuaternion::from_euler_angles(
            rng.random_range(0.0..std::f64::consts::TAU),
            rng.random_range(0.0..std::f64::consts::TAU),
            rng.random_range(0.0..std::f64::consts::TAU),
        );
        Body {
            kind,
            dims_m: dims,
            mass_kg: mass,
            cd,
            area_m2: area,
            rgb,
            gloss,
            spin: axis * spin_rate,
            q0,
            shape,
            seed: rng.random(),
        }
    }

    /// Largest dimension, metres.
    pub fn size_m(&self) -> f64 {
        self.dims_m.max()
    }

    /// Orientation at `t_s` seconds after release.
    pub fn orientation(&self, dt_s: f64) -> UnitQuaternion<f64> {
        UnitQuaternion::from_scaled_axis(self.spin * dt_s) * self.q0
    }

    /// Drag constant k in a = -k |v| v, 1/m.
    pub fn drag_per_m(&self) -> f64 {
        0.5 * AIR_KG_M3 * self.cd * self.area_m2 / self.mass_kg
    }

    /// Terminal speed in still air, m/s.
    pub fn terminal_m_s(&self) -> f64 {
        (G_M_S2 / self.drag_per_m()).sqrt()
    }
}

fn surface_area(shape: Shape, d: &V3) -> f64 {
    match shape {
        Shape::Cuboid => 2.0 * (d.x * d.y + d.y * d.z + d.z * d.x),
        Shape::Cylinder { .. } => {
            let r = d.y / 2.0;
            2.0 * std::f64::consts::PI * r * r + std::f64::consts::PI * d.y * d.x
        }
        Shape::Ellipsoid { .. } => {
            // Knud Thomsen's approximation.
            let (a, b, c) = (d.x / 2.0, d.y / 2.0, d.z / 2.0);
            let p = 1.6075;
            4.0 * std::f64::consts::PI
                * (((a * b).powf(p) + (a * c).powf(p) + (b * c).powf(p)) / 3.0).powf(1.0 / p)
        }
    }
}

/// A simulated flight: positions at a fixed step from release until it lands or leaves.
#[derive(Clone, Debug)]
pub struct Flight {
    /// Release time, media seconds.
    pub t0_s: f64,
    /// Step, seconds.
    pub dt_s: f64,
    /// Positions, world metres, one per step from release.
    pub pos: Vec<V3>,
    /// True when it stopped on the ground or on the building (false: ran out of time).
    pub landed: bool,
}

impl Flight {
    /// Simulates a flight from `p0` with velocity `v0` in a steady `wind` (m/s), for at most
    /// `max_s` seconds, stopping where `solid` says the body hit something.
    pub fn simulate(
        body: &Body,
        p0: V3,
        v0: V3,
        wind: V3,
        t0_s: f64,
        max_s: f64,
        solid: &dyn Fn(&V3) -> bool,
    ) -> Flight {
        let dt = 1e-3;
        let k = body.drag_per_m();
        let flutter = matches!(body.shape, Shape::Ellipsoid { deform: true });
        let seed = body.seed;
        let accel = |t: f64, v: &V3| -> V3 {
            let rel = v - wind;
            let mut a = V3::new(0.0, -G_M_S2, 0.0) - rel * (k * rel.norm());
            if flutter {
                // A bag sails: sideways forces that grow with the airspeed.
                let q = k * rel.norm_squared();
                a.x += q * 0.6 * noise::wobble(seed, t * 1.7, 2);
                a.z += q * 0.4 * noise::wobble(seed ^ 9, t * 1.3, 2);
            }
            a
        };
        let n_max = (max_s / dt).ceil() as usize;
        let mut pos = Vec::with_capacity(n_max.min(20_000) + 1);
        let (mut p, mut v) = (p0, v0);
        pos.push(p);
        let mut landed = false;
        for i in 0..n_max {
            let t = i as f64 * dt;
            // Classic RK4 on (p, v).
            // k*_v are velocities (derivatives of p), k*_a accelerations (derivatives of v).
            let k1_a = accel(t, &v);
            let k2_v = v + k1_a * (dt / 2.0);
            let k2_a = accel(t + dt / 2.0, &k2_v);
            let k3_v = v + k2_a * (dt / 2.0);
            let k3_a = accel(t + dt / 2.0, &k3_v);
            let k4_v = v + k3_a * dt;
            let k4_a = accel(t + dt, &k4_v);
            let np = p + (v + k2_v * 2.0 + k3_v * 2.0 + k4_v) * (dt / 6.0);
            let nv = v + (k1_a + k2_a * 2.0 + k3_a * 2.0 + k4_a) * (dt / 6.0);
            if np.y <= 0.0 || solid(&np) {
                landed = true;
                break;
            }
            p = np;
            v = nv;
            pos.push(p);
        }
        Flight {
            t0_s,
            dt_s: dt,
            pos,
            landed,
        }
    }

    /// Time of the last simulated position, media seconds.
    pub fn end_s(&self) -> f64 {
        self.t0_s + (self.pos.len() - 1) as f64 * self.dt_s
    }

    /// Position at media time `t_s`, or `None` outside the flight.
    pub fn at(&self, t_s: f64) -> Option<V3> {
        let u = (t_s - self.t0_s) / self.dt_s;
        if u < 0.0 || u > (self.pos.len() - 1) as f64 {
            return None;
        }
        let i = (u.floor() as usize).min(self.pos.len().saturating_sub(2));
        let f = u - i as f64;
        if self.pos.len() == 1 {
            return Some(self.pos[0]);
        }
        Some(self.pos[i] * (1.0 - f) + self.pos[i + 1] * f)
    }
}

/// The light on an object at a point: for shading small bodies.
pub struct ObjectLight<'a> {
    /// Scene lighting.
    pub light: &'a Lighting,
    /// 1 when the sun reaches the point, 0 in the building's shadow.
    pub sun_vis: f32,
    /// Where the body is.
    pub p: V3,
    /// Unit direction from the body to the camera.
    pub to_cam: V3,
}

impl ObjectLight<'_> {
    /// Radiance of a surface with albedo `rgb`, gloss and world normal `n`.
    pub fn shade(&self, rgb: Rgb, gloss: f32, n: &V3) -> Rgb {
        let l = self.light;
        let mut e = l.ambient(n);
        let lamps = l.lamps_at(&self.p, n);
        let sun_k = if l.has_sun() {
            (n.dot(&l.sun_dir).max(0.0) as f32) * self.sun_vis
        } else {
            0.0
        };
        for c in 0..3 {
            e[c] += lamps[c] + l.sun_rgb[c] * sun_k;
        }
        let mut out = [rgb[0] * e[0], rgb[1] * e[1], rgb[2] * e[2]];
        if gloss > 0.0 {
            // Reflection of the sky and a sun highlight.
            let r = n * (2.0 * n.dot(&self.to_cam)) - self.to_cam;
            let sky = l.sky(&r);
            let spec = if l.has_sun() {
                (r.dot(&l.sun_dir).max(0.0).powi(30) as f32) * self.sun_vis
            } else {
                0.0
            };
            for c in 0..3 {
                out[c] += gloss * (0.12 * sky[c] + 0.5 * spec * l.sun_rgb[c]);
            }
        }
        out
    }
}

/// Adds one exposure sub-sample of `body` at position `p` and `dt_s` after release.
pub fn draw_body(
    splat: &mut Splat,
    cam: &Camera,
    body: &Body,
    p: &V3,
    dt_s: f64,
    light: &ObjectLight<'_>,
    to_image: &dyn Fn(P2) -> P2,
) {
    let Some((c0, depth)) = cam.project(p) else {
        return;
    };
    let c = to_image(c0);
    let q = body.orientation(dt_s);
    let f_over_z = cam.focal_px / depth;
    let rt = cam.rot.transpose();
    // Normal in world coordinates for an image-plane offset q (|q| <= 1) on a rounded surface.
    let normal_at = |qx: f64, qy: f64| -> V3 {
        let z = (1.0 - qx * qx - qy * qy).max(0.0).sqrt();
        (rt * V3::new(qx, qy, -z)).normalize()
    };
    match body.shape {
        Shape::Ellipsoid { deform } => {
            let mut semi = body.dims_m / 2.0;
            if deform {
                let w = |k: u64| 1.0 + 0.18 * noise::wobble(body.seed ^ k, dt_s * 2.5, 2);
                semi = V3::new(semi.x * w(1), semi.y * w(2), semi.z * w(3));
            }
            let Some(j) = cam.jacobian(p) else { return };
            let rm = q.to_rotation_matrix();
            let a = j * rm.matrix() * nalgebra::Matrix3::from_diagonal(&semi);
            let cov = a * a.transpose();
            let Some(ch) = cov.cholesky() else { return };
            let l: Matrix2<f64> = ch.l();
            let (rgb, gloss) = (body.rgb, body.gloss);
            splat.ellipse(c, l, 1.0, |qn| {
                light.shade(rgb, gloss, &normal_at(qn.x, qn.y))
            });
        }
        Shape::Cylinder { neck } => {
            let axis = q * V3::x();
            let len = body.dims_m.x;
            let r = body.dims_m.y / 2.0;
            let body_len = if neck { len * 0.7 } else { len };
            let start = p - axis * (len / 2.0);
            let (Some((a0, _)), Some((a1, _))) =
                (cam.project(&start), cam.project(&(start + axis * body_len)))
            else {
                return;
            };
            let (a0, a1) = (to_image(a0), to_image(a1));
            let perp = {
                let d = a1 - a0;
                if d.norm() > 1e-9 {
                    P2::new(-d.y, d.x) / d.norm()
                } else {
                    P2::new(1.0, 0.0)
                }
            };
            let (rgb, gloss) = (body.rgb, body.gloss);
            let shade =
                |across: f64| light.shade(rgb, gloss, &normal_at(perp.x * across, perp.y * across));
            splat.capsule(a0, a1, r * f_over_z, 1.0, shade);
            if neck && let Some((n1, _)) = cam.project(&(start + axis * len)) {
                splat.capsule(a1, to_image(n1), r * 0.38 * f_over_z, 1.0, shade);
            }
        }
        Shape::Cuboid => {
            let h = body.dims_m / 2.0;
            let rm = q.to_rotation_matrix();
            let corner = |sx: f64, sy: f64, sz: f64| p + rm * V3::new(sx * h.x, sy * h.y, sz * h.z);
            for axis in 0..3 {
                for s in [-1.0, 1.0] {
                    let mut nl = V3::zeros();
                    nl[axis] = s;
                    let n = rm * nl;
                    let face_c = p + n * h[axis];
                    if n.dot(&(cam.pos - face_c)) <= 0.0 {
                        continue;
                    }
                    let (u, v) = ((axis + 1) % 3, (axis + 2) % 3);
                    let mut pts = Vec::with_capacity(4);
                    for (a, b) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)] {
                        let mut sv = V3::zeros();
                        sv[axis] = s;
                        sv[u] = a;
                        sv[v] = b;
                        let w = corner(sv.x, sv.y, sv.z);
                        if let Some((px, _)) = cam.project(&w) {
                            pts.push(to_image(px));
                        }
                    }
                    if pts.len() == 4 {
                        splat.polygon(&pts, 1.0, light.shade(body.rgb, body.gloss, &n));
                    }
                }
            }
        }
    }
}
