//! Synthetic scenes for tests and benches: a known pinhole camera in front of a facade, the
//! calibration it implies, 3-D trajectories (falls with drag, birds, leaves) and what a tracker
//! would report of them (pixels, boxes, noise, missed frames), plus image-space distractors
//! (insects at the lens, rain streaks, lights).
//!
//! Deliberately independent of the estimator: its own camera (built from angles, not from a
//! homography) and its own fine-step integrator.

use nalgebra::{Matrix3, Vector3};
use rand::RngExt;
use rand_distr::{Distribution, Normal};

use crate::calib::{Calibration, CameraSection, Facade, Floors, Windows};
use crate::events::TrackPoint;

use super::fit::G_M_S2;

/// A scene: camera pose and lens, the building's storeys and bays, the calibration rectangle.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneSpec {
    /// Camera distance in front of the facade plane, metres.
    pub distance_m: f64,
    /// Camera position along the facade (facade x), metres.
    pub camera_x_m: f64,
    /// Camera height above the ground, metres.
    pub camera_height_m: f64,
    /// Upward tilt of the optical axis, degrees.
    pub pitch_deg: f64,
    /// Turn of the optical axis to the right (toward +x), degrees.
    pub yaw_deg: f64,
    /// Roll about the optical axis, degrees.
    pub roll_deg: f64,
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Image width, pixels.
    pub width_px: u32,
    /// Image height, pixels.
    pub height_px: u32,
    /// Calibration rectangle width (x from 0), metres.
    pub rect_width_m: f64,
    /// Calibration rectangle height, metres.
    pub rect_height_m: f64,
    /// Height of the rectangle's bottom edge above the ground, metres.
    pub rect_base_m: f64,
    /// Ground-floor storey height, metres.
    pub first_storey_m: f64,
    /// Upper storey height, metres.
    pub storey_m: f64,
    /// Window bays across the rectangle.
    pub bays: u32,
}

impl Default for SceneSpec {
    /// The briefing's example scene: 1080p, 35 m from the facade, pitch 24 deg, yaw 4 deg.
    fn default() -> Self {
        SceneSpec {
            distance_m: 35.0,
            camera_x_m: 12.0,
            camera_height_m: 1.5,
            pitch_deg: 24.0,
            yaw_deg: 4.0,
            roll_deg: 0.0,
            focal_px: 1450.0,
            width_px: 1920,
            height_px: 1080,
            rect_width_m: 24.0,
            rect_height_m: 27.0,
            rect_base_m: 3.6,
            first_storey_m: 3.6,
            storey_m: 3.0,
            bays: 6,
        }
    }
}

/// A pinhole camera with known pose, in facade coordinates (x along, y up, z out of the wall).
#[derive(Clone, Debug)]
pub struct SimCamera {
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Principal point, pixels (the image centre).
    pub principal_px: [f64; 2],
    /// Facade-to-camera rotation (rows: right, down, forward).
    pub rotation: Matrix3<f64>,
    /// Camera centre, metres.
    pub centre_m: [f64; 3],
    /// Image size, pixels.
    pub size_px: [u32; 2],
}

impl SimCamera {
    /// Builds the camera of a scene.
    pub fn new(s: &SceneSpec) -> SimCamera {
        let (p, y, r) = (
            s.pitch_deg.to_radians(),
            s.yaw_deg.to_radians(),
            s.roll_deg.to_radians(),
        );
        // Level camera looking into the wall (-z), then pitch up, then yaw about the vertical.
        let fwd0 = Vector3::new(0.0, p.sin(), -p.cos());
        let fwd = Vector3::new(
            fwd0.x * y.cos() - fwd0.z * y.sin(),
            fwd0.y,
            fwd0.x * y.sin() + fwd0.z * y.cos(),
        );
        let up = Vector3::new(0.0, 1.0, 0.0);
        let right0 = fwd.cross(&up).normalize();
        let down0 = fwd.cross(&right0);
        // Roll: rotate right/down about the forward axis.
        let right = right0 * r.cos() + down0 * r.sin();
        let down = -right0 * r.sin() + down0 * r.cos();
        let rotation = Matrix3::from_rows(&[right.transpose(), down.transpose(), fwd.transpose()]);
        SimCamera {
            focal_px: s.focal_px,
            principal_px: [f64::from(s.width_px) / 2.0, f64::from(s.height_px) / 2.0],
            rotation,
            centre_m: [s.camera_x_m, s.camera_height_m, s.distance_m],
            size_px: [s.width_px, s.height_px],
        }
    }

    /// Camera coordinates of a facade point.
    fn to_camera(&self, p: [f64; 3]) -> Vector3<f64> {
        let c = self.centre_m;
        self.rotation * Vector3::new(p[0] - c[0], p[1] - c[1], p[2] - c[2])
    }

    /// Depth of a point along the optical axis, metres.
    pub fn depth(&self, p: [f64; 3]) -> f64 {
        self.to_camera(p).z
    }

    /// Image pixel of a point.
    pub fn project(&self, p: [f64; 3]) -> [f64; 2] {
        let x = self.to_camera(p);
        [
            self.principal_px[0] + self.focal_px * x.x / x.z,
            self.principal_px[1] + self.focal_px * x.y / x.z,
        ]
    }

    /// True when the point is in front of the camera and inside the image.
    pub fn sees(&self, p: [f64; 3]) -> bool {
        if self.depth(p) <= 0.1 {
            return false;
        }
        let q = self.project(p);
        q[0] >= 0.0
            && q[1] >= 0.0
            && q[0] < f64::from(self.size_px[0])
            && q[1] < f64::from(self.size_px[1])
    }
}

/// A scene: its spec, camera and the calibration an exact installer would write.
#[derive(Clone, Debug)]
pub struct Scene {
    /// The spec it was built from.
    pub spec: SceneSpec,
    /// The true camera.
    pub camera: SimCamera,
    /// The calibration (corners projected exactly).
    pub calib: Calibration,
}

impl Scene {
    /// Builds a scene and its exact calibration.
    pub fn new(spec: SceneSpec) -> Scene {
        let camera = SimCamera::new(&spec);
        let (b, t, w) = (
            spec.rect_base_m,
            spec.rect_base_m + spec.rect_height_m,
            spec.rect_width_m,
        );
        let corner = |x: f64, y: f64| camera.project([x, y, 0.0]);
        let calib = Calibration {
            camera: CameraSection {
                id: "sim".to_string(),
            },
            facade: Facade {
                corners_px: [corner(0.0, t), corner(w, t), corner(w, b), corner(0.0, b)],
                width_m: w,
                height_m: spec.rect_height_m,
                base_height_m: b,
            },
            floors: Floors {
                first_storey_m: spec.first_storey_m,
                storey_m: spec.storey_m,
            },
            windows: Windows { bays: spec.bays },
            ignore: Vec::new(),
        };
        Scene {
            spec,
            camera,
            calib,
        }
    }

    /// The facade x at the middle of bay `bay` (1-based).
    pub fn bay_centre_m(&self, bay: u32) -> f64 {
        let bw = self.spec.rect_width_m / f64::from(self.spec.bays);
        (f64::from(bay) - 0.5) * bw
    }

    /// Height of the bottom of floor `floor` (1-based), metres.
    pub fn floor_base_m(&self, floor: i32) -> f64 {
        self.calib.floor_base_m(floor)
    }
}

/// A sampled 3-D path: times and positions.
#[derive(Clone, Debug, Default)]
pub struct Path3 {
    /// Sample times, seconds.
    pub t_s: Vec<f64>,
    /// Positions, facade metres.
    pub pos_m: Vec<[f64; 3]>,
    /// Object size at each sample, metres (for box sizes).
    pub size_m: Vec<f64>,
}

/// A falling object: release state and drag.
#[derive(Clone, Copy, Debug)]
pub struct FallingObject {
    /// Release time, seconds.
    pub release_s: f64,
    /// Release position, facade metres (z = distance in front of the wall).
    pub pos_m: [f64; 3],
    /// Release velocity, m/s.
    pub vel_m_s: [f64; 3],
    /// Terminal speed, m/s (infinite: no drag).
    pub terminal_m_s: f64,
    /// Object size, metres.
    pub size_m: f64,
    /// Steady wind along the facade (+x), m/s.
    pub wind_x_m_s: f64,
}

impl FallingObject {
    /// A drop from rest.
    pub fn drop(release_s: f64, pos_m: [f64; 3], terminal_m_s: f64) -> FallingObject {
        FallingObject {
            release_s,
            pos_m,
            vel_m_s: [0.0; 3],
            terminal_m_s,
            size_m: 0.25,
            wind_x_m_s: 0.0,
        }
    }

    /// Samples the fall at the frames of a `fps` video from release until `until_s` or the
    /// ground, with a fine (1 ms) RK4 integration of gravity plus quadratic drag.
    pub fn path(&self, fps: f64, until_s: f64) -> Path3 {
        let k = if self.terminal_m_s.is_finite() {
            G_M_S2 / (self.terminal_m_s * self.terminal_m_s)
        } else {
            0.0
        };
        let w = self.wind_x_m_s;
        let acc = |v: [f64; 3]| -> [f64; 3] {
            let u = [v[0] - w, v[1], v[2]];
            let s = (u[0] * u[0] + u[1] * u[1] + u[2] * u[2]).sqrt();
            [-k * s * u[0], -G_M_S2 - k * s * u[1], -k * s * u[2]]
        };
        let mut p = self.pos_m;
        let mut v = self.vel_m_s;
        let mut t = self.release_s;
        let mut out = Path3::default();
        let mut frame = (self.release_s * fps).floor() as i64 + 1;
        let h_max = 1e-3;
        loop {
            let tf = frame as f64 / fps;
            if tf > until_s {
                break;
            }
            while t < tf - 1e-12 {
                let h = (tf - t).min(h_max);
                let add = |a: [f64; 3], b: [f64; 3], s: f64| {
                    [a[0] + s * b[0], a[1] + s * b[1], a[2] + s * b[2]]
                };
                let k1v = acc(v);
                let k1p = v;
                let k2v = acc(add(v, k1v, h / 2.0));
                let k2p = add(v, k1v, h / 2.0);
                let k3v = acc(add(v, k2v, h / 2.0));
                let k3p = add(v, k2v, h / 2.0);
                let k4v = acc(add(v, k3v, h));
                let k4p = add(v, k3v, h);
                for i in 0..3 {
                    p[i] += h / 6.0 * (k1p[i] + 2.0 * k2p[i] + 2.0 * k3p[i] + k4p[i]);
                    v[i] += h / 6.0 * (k1v[i] + 2.0 * k2v[i] + 2.0 * k3v[i] + k4v[i]);
                }
                t += h;
            }
            if p[1] < 0.0 {
                break;
            }
            out.t_s.push(tf);
            out.pos_m.push(p);
            out.size_m.push(self.size_m);
            frame += 1;
        }
        out
    }
}

/// How a tracker sees an object: centroid noise, missed frames, blur.
#[derive(Clone, Copy, Debug)]
pub struct Observer {
    /// Standard deviation of the centroid noise, pixels per coordinate.
    pub noise_px: f64,
    /// Probability that a frame's detection is missing.
    pub miss_rate: f64,
    /// Exposure time, seconds (motion blur lengthens the box along the motion).
    pub exposure_s: f64,
}

impl Default for Observer {
    /// 1 px noise, no missed frames, 1/100 s exposure.
    fn default() -> Self {
        Observer {
            noise_px: 1.0,
            miss_rate: 0.0,
            exposure_s: 0.01,
        }
    }
}

impl Observer {
    /// The track points of a path: visible samples only (in front of the camera, inside the
    /// image), with noise and missing frames drawn from `rng`.
    pub fn observe<R: RngExt + ?Sized>(
        &self,
        cam: &SimCamera,
        path: &Path3,
        rng: &mut R,
    ) -> Vec<TrackPoint> {
        let normal = Normal::new(0.0, self.noise_px.max(1e-12)).expect("valid sigma");
        let mut out = Vec::new();
        for i in 0..path.t_s.len() {
            let p = path.pos_m[i];
            if !cam.sees(p) {
                continue;
            }
            if self.miss_rate > 0.0 && rng.random::<f64>() < self.miss_rate {
                continue;
            }
            let q = cam.project(p);
            let size_px = (cam.focal_px * path.size_m[i] / cam.depth(p)).max(2.0);
            // Blur: image motion during the exposure, from the neighbouring sample.
            let j = if i + 1 < path.t_s.len() {
                i + 1
            } else {
                i.saturating_sub(1)
            };
            let (dt, q2) = (
                (path.t_s[j] - path.t_s[i]).abs().max(1e-6),
                cam.project(path.pos_m[j]),
            );
            let blur_x = (q2[0] - q[0]).abs() / dt * self.exposure_s;
            let blur_y = (q2[1] - q[1]).abs() / dt * self.exposure_s;
            out.push(TrackPoint {
                t_s: path.t_s[i],
                x_px: q[0] + normal.sample(rng),
                y_px: q[1] + normal.sample(rng),
                w_px: size_px + blur_x,
                h_px: size_px + blur_y,
            });
        }
        out
    }
}

/// Non-falling things that move in front of the facade, as 3-D paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distractor3 {
    /// A bird flapping across: wing beats bob it up and down and change its size.
    BirdFlapping,
    /// A bird gliding at near-constant velocity, slightly descending.
    BirdGliding,
    /// A bird climbing.
    BirdClimbing,
    /// A bird diving hard, then pulling up.
    BirdSwoop,
    /// A leaf or sheet of paper fluttering down at about 1.5 m/s.
    Leaf,
}

impl Distractor3 {
    /// Samples the distractor's path at `fps` for `duration_s`, starting at `start_m`.
    pub fn path<R: RngExt + ?Sized>(
        self,
        start_m: [f64; 3],
        fps: f64,
        duration_s: f64,
        rng: &mut R,
    ) -> Path3 {
        let n = (duration_s * fps).round() as usize;
        let mut out = Path3::default();
        let phase: f64 = rng.random_range(0.0..std::f64::consts::TAU);
        let dir = if rng.random::<bool>() { 1.0 } else { -1.0 };
        let mut p = start_m;
        let mut v = match self {
            Distractor3::BirdFlapping => [dir * rng.random_range(6.0..10.0), -0.3, 0.0],
            Distractor3::BirdGliding => [dir * rng.random_range(7.0..11.0), -1.5, 0.5],
            Distractor3::BirdClimbing => [dir * rng.random_range(4.0..7.0), 3.0, 0.0],
            Distractor3::BirdSwoop => [dir * 4.0, -0.5, 0.0],
            Distractor3::Leaf => [0.0, -1.5, 0.0],
        };
        let beat_hz: f64 = rng.random_range(4.0..7.0);
        let flutter_hz: f64 = rng.random_range(0.6..1.2);
        let dt = 1.0 / fps;
        let mut pulling_up = false;
        for i in 0..n {
            let t = i as f64 * dt;
            let mut pos = p;
            let mut size = 0.3;
            match self {
                Distractor3::BirdFlapping => {
                    pos[1] += 0.15 * (std::f64::consts::TAU * beat_hz * t + phase).sin();
                    size *= 1.0 + 0.4 * (std::f64::consts::TAU * beat_hz * t + phase).sin();
                }
                Distractor3::Leaf => {
                    let w = std::f64::consts::TAU * flutter_hz * t + phase;
                    pos[0] += 0.6 * w.sin();
                    pos[1] += 0.25 * (2.0 * w).sin();
                    size = 0.15 * (1.0 + 0.5 * (2.0 * w).cos().abs());
                }
                _ => {}
            }
            out.t_s.push(t);
            out.pos_m.push(pos);
            out.size_m.push(size);
            // Advance.
            if self == Distractor3::BirdSwoop {
                if !pulling_up && v[1] < -6.0 {
                    pulling_up = true;
                }
                v[1] += if pulling_up { 16.0 } else { -8.5 } * dt;
                if pulling_up && v[1] > 2.5 {
                    v[1] = 2.5;
                }
            }
            for k in 0..3 {
                p[k] += v[k] * dt;
            }
        }
        out
    }
}

/// Distractors that are easiest to describe in image space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distractor2 {
    /// An insect close to the lens: a large blurry blob moving erratically.
    Insect,
    /// A rain streak: seen in 2-3 frames, long and straight.
    Rain,
    /// A window light: does not move.
    Light,
}

impl Distractor2 {
    /// The track a tracker would report, starting near `start_px`, at `fps`.
    pub fn track<R: RngExt + ?Sized>(
        self,
        start_px: [f64; 2],
        fps: f64,
        rng: &mut R,
    ) -> Vec<TrackPoint> {
        let dt = 1.0 / fps;
        let mut out = Vec::new();
        let normal = Normal::new(0.0, 1.0).expect("valid sigma");
        match self {
            Distractor2::Insect => {
                let (mut x, mut y) = (start_px[0], start_px[1]);
                let (mut vx, mut vy): (f64, f64) = (
                    rng.random_range(-300.0..300.0),
                    rng.random_range(-300.0..300.0),
                );
                for i in 0..(fps * 1.2) as usize {
                    let size = rng.random_range(45.0..90.0);
                    out.push(TrackPoint {
                        t_s: i as f64 * dt,
                        x_px: x,
                        y_px: y,
                        w_px: size,
                        h_px: size * rng.random_range(0.7..1.3),
                    });
                    vx += 250.0 * normal.sample(rng);
                    vy += 250.0 * normal.sample(rng);
                    x += vx * dt;
                    y += vy * dt;
                }
            }
            Distractor2::Rain => {
                let vy = rng.random_range(600.0..1200.0);
                for i in 0..rng.random_range(2..4) {
                    out.push(TrackPoint {
                        t_s: i as f64 * dt,
                        x_px: start_px[0] + 0.1 * vy * dt * i as f64,
                        y_px: start_px[1] + vy * dt * i as f64,
                        w_px: 2.0,
                        h_px: vy * 0.01 + 2.0,
                    });
                }
            }
            Distractor2::Light => {
                for i in 0..(fps * 3.0) as usize {
                    out.push(TrackPoint {
                        t_s: i as f64 * dt,
                        x_px: start_px[0] + 0.3 * normal.sample(rng),
                        y_px: start_px[1] + 0.3 * normal.sample(rng),
                        w_px: 6.0,
                        h_px: 6.0,
                    });
                }
            }
        }
        out
    }
}
