//! The pinhole camera: pose (position, yaw, pitch, roll), focal length and principal point;
//! projection of world points to pixels and rays through pixels. Plus camera shake, a small
//! per-frame image-space similarity transform (wind on the pole).
//!
//! World frame (metres): x along the facade to the right as seen from the camera, y up (height
//! above the ground), z out of the wall toward the camera; the facade wall is the plane z = 0.

use nalgebra::{Matrix3, Vector2, Vector3};

use super::noise;

/// A 3-D point or direction, metres.
pub type V3 = Vector3<f64>;

/// An ideal pinhole camera (no distortion) with square pixels.
#[derive(Clone, Debug)]
pub struct Camera {
    /// Centre of projection, world metres.
    pub pos: V3,
    /// Rows: the camera's right, down and forward axes in world coordinates.
    pub rot: Matrix3<f64>,
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Principal point, pixels.
    pub cx_px: f64,
    /// Principal point, pixels.
    pub cy_px: f64,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Heading: positive turns the camera toward +x, degrees.
    pub yaw_deg: f64,
    /// Upward tilt, degrees.
    pub pitch_deg: f64,
    /// Roll about the optical axis, degrees (positive turns the image clockwise).
    pub roll_deg: f64,
}

impl Camera {
    /// A camera at `pos` looking toward -z, turned by `yaw_deg`, tilted up by `pitch_deg` and
    /// rolled by `roll_deg`.
    pub fn new(
        pos: V3,
        yaw_deg: f64,
        pitch_deg: f64,
        roll_deg: f64,
        focal_px: f64,
        width: u32,
        height: u32,
    ) -> Camera {
        let (yaw, pitch, roll) = (
            yaw_deg.to_radians(),
            pitch_deg.to_radians(),
            roll_deg.to_radians(),
        );
        let fwd = V3::new(
            yaw.sin() * pitch.cos(),
            pitch.sin(),
            -yaw.cos() * pitch.cos(),
        );
        let right0 = V3::new(yaw.cos(), 0.0, yaw.sin());
        let up0 = right0.cross(&fwd).normalize();
        let down0 = -up0;
        // Roll: rotate right/down about the forward axis.
        let (s, c) = roll.sin_cos();
        let right = right0 * c + down0 * s;
        let down = down0 * c - right0 * s;
        let rot = Matrix3::from_rows(&[right.transpose(), down.transpose(), fwd.transpose()]);
        Camera {
            pos,
            rot,
            focal_px,
            cx_px: f64::from(width) / 2.0,
            cy_px: f64::from(height) / 2.0,
            width,
            height,
            yaw_deg,
            pitch_deg,
            roll_deg,
        }
    }

    /// The camera's forward axis, world.
    pub fn forward(&self) -> V3 {
        self.rot.row(2).transpose()
    }

    /// Point in camera coordinates (right, down, forward), metres.
    pub fn to_cam(&self, p: &V3) -> V3 {
        self.rot * (p - self.pos)
    }

    /// Pixel of a world point and its depth along the optical axis; `None` behind the camera.
    pub fn project(&self, p: &V3) -> Option<(Vector2<f64>, f64)> {
        let c = self.to_cam(p);
        if c.z <= 1e-6 {
            return None;
        }
        Some((
            Vector2::new(
                self.cx_px + self.focal_px * c.x / c.z,
                self.cy_px + self.focal_px * c.y / c.z,
            ),
            c.z,
        ))
    }

    /// Unit world direction of the ray through pixel (`x_px`, `y_px`) (pixel centres at +0.5).
    pub fn ray(&self, x_px: f64, y_px: f64) -> V3 {
        let c = V3::new(
            (x_px - self.cx_px) / self.focal_px,
            (y_px - self.cy_px) / self.focal_px,
            1.0,
        );
        (self.rot.transpose() * c).normalize()
    }

    /// The 2x3 Jacobian of the projection at world point `p` (pixels per metre).
    pub fn jacobian(&self, p: &V3) -> Option<nalgebra::Matrix2x3<f64>> {
        let c = self.to_cam(p);
        if c.z <= 1e-6 {
            return None;
        }
        let f = self.focal_px;
        let jc = nalgebra::Matrix2x3::new(
            f / c.z,
            0.0,
            -f * c.x / (c.z * c.z),
            0.0,
            f / c.z,
            -f * c.y / (c.z * c.z),
        );
        Some(jc * self.rot)
    }

    /// True when the pixel lies inside the image.
    pub fn in_image(&self, px: &Vector2<f64>) -> bool {
        px.x >= 0.0 && px.y >= 0.0 && px.x < f64::from(self.width) && px.y < f64::from(self.height)
    }
}

/// Wind shake of the camera: a smooth small rotation and translation of the image per frame.
#[derive(Clone, Debug)]
pub struct Shake {
    /// Peak translation, pixels (0 = a rigid mount).
    pub amplitude_px: f64,
    /// Peak rotation, degrees.
    pub rotation_deg: f64,
    /// Noise seed.
    pub seed: u64,
    /// Dominant frequency, hertz.
    pub freq_hz: f64,
}

/// A similarity transform of the image about its centre: `p' = R (p - c) + c + t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageTransform {
    /// Translation, pixels.
    pub tx: f64,
    /// Translation, pixels.
    pub ty: f64,
    /// Rotation, radians.
    pub angle: f64,
    /// Rotation centre, pixels.
    pub cx: f64,
    /// Rotation centre, pixels.
    pub cy: f64,
}

impl ImageTransform {
    /// No motion.
    pub fn identity(cx: f64, cy: f64) -> Self {
        ImageTransform {
            tx: 0.0,
            ty: 0.0,
            angle: 0.0,
            cx,
            cy,
        }
    }

    /// Where an unshaken pixel lands in the shaken image.
    pub fn apply(&self, p: Vector2<f64>) -> Vector2<f64> {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (p.x - self.cx, p.y - self.cy);
        Vector2::new(
            c * dx - s * dy + self.cx + self.tx,
            s * dx + c * dy + self.cy + self.ty,
        )
    }

    /// Where a shaken pixel came from in the unshaken image.
    pub fn invert(&self, p: Vector2<f64>) -> Vector2<f64> {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (p.x - self.cx - self.tx, p.y - self.cy - self.ty);
        Vector2::new(c * dx + s * dy + self.cx, -s * dx + c * dy + self.cy)
    }

    /// True when the transform moves nothing.
    pub fn is_identity(&self) -> bool {
        self.tx == 0.0 && self.ty == 0.0 && self.angle == 0.0
    }
}

impl Shake {
    /// No shake.
    pub fn none() -> Shake {
        Shake {
            amplitude_px: 0.0,
            rotation_deg: 0.0,
            seed: 0,
            freq_hz: 1.0,
        }
    }

    /// The image transform at media time `t_s` for an image of `width` x `height`.
    pub fn at(&self, t_s: f64, width: u32, height: u32) -> ImageTransform {
        let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
        if self.amplitude_px == 0.0 && self.rotation_deg == 0.0 {
            return ImageTransform::identity(cx, cy);
        }
        // Gusts: a slow envelope times faster sway.
        let gust = 0.35 + 0.65 * noise::value1(self.seed ^ 0x61, t_s * 0.4);
        let f = self.freq_hz;
        let w = |k: u64| noise::wobble(self.seed.wrapping_add(k), t_s * f, 3);
        ImageTransform {
            tx: self.amplitude_px * gust * w(1),
            ty: self.amplitude_px * 0.6 * gust * w(2),
            angle: self.rotation_deg.to_radians() * gust * w(3),
            cx,
            cy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ray_and_projection_agree() {
        let cam = Camera::new(V3::new(10.0, 1.5, 35.0), 6.0, 24.0, 1.0, 1450.0, 1920, 1080);
        for (x, y) in [(100.5, 50.5), (960.0, 540.0), (1800.0, 1000.0)] {
            let d = cam.ray(x, y);
            let p = cam.pos + d * 40.0;
            let (px, _) = cam.project(&p).unwrap();
            assert!((px.x - x).abs() < 1e-9 && (px.y - y).abs() < 1e-9);
        }
        // Looking up: a point high on the wall is above the image centre.
        let (px, _) = cam.project(&V3::new(10.0, 60.0, 0.0)).unwrap();
        assert!(px.y < 540.0);
        let t = ImageTransform {
            tx: 2.0,
            ty: -1.0,
            angle: 0.01,
            cx: 960.0,
            cy: 540.0,
        };
        let p = Vector2::new(300.0, 700.0);
        let q = t.invert(t.apply(p));
        assert!((p - q).norm() < 1e-9);
    }
}
