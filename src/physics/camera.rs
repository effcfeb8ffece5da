//! The camera: intrinsics and pose recovered from the facade homography, and the 3x4 projection
//! used to place points in front of the wall.
//!
//! Model: a pinhole with square pixels, no skew, no lens distortion, and the principal point at
//! the image centre, so the only unknown intrinsic is the focal length `f` (pixels). For a plane
//! `Z = 0`, the homography is `H ~ K [r1 r2 t]`; the orthogonality and equal length of `r1`, `r2`
//! give two equations in `w = 1/f^2` (see docs/physics.md), solved in the least-squares sense.
//!
//! Facade coordinates (metres): `X` along the facade from the rectangle's left edge (to the right
//! in the image), `Y` height above the ground, `Z` out of the wall toward the camera. The camera
//! centre therefore has `Z > 0`.

use nalgebra::{Matrix3, Matrix3x4, Vector3, Vector4};
use serde::Serialize;

use crate::bail;
use crate::error::Result;

use super::homography::Homography;

/// Default horizontal field of view assumed when the homography cannot tell the focal length
/// (near fronto-parallel views): 65 degrees, a typical fixed security camera lens.
pub const NOMINAL_HFOV_DEG: f64 = 65.0;

/// Relative standard error of `f` (for 1 px of corner noise) above which the homography's focal
/// length is blended with the nominal one instead of taken as is. Default 0.25.
pub const FOCAL_MAX_REL_SIGMA: f64 = 0.25;

/// Standard deviation, in natural-log units, of the nominal focal length used as a prior when
/// blending. Default 0.5 (a factor of about 1.65).
pub const FOCAL_PRIOR_LOG_SIGMA: f64 = 0.5;

/// Plausible focal lengths, as multiples of the image width: about 157 deg down to 3 deg of
/// horizontal field of view. A value outside is treated as undetermined.
pub const FOCAL_RANGE_WIDTHS: (f64, f64) = (0.1, 20.0);

/// Where the focal length came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FocalSource {
    /// Solved from the homography; well determined.
    Homography,
    /// Poorly determined by the homography: blended (in log space, by inverse variance) with the
    /// nominal focal length.
    Blended,
    /// Not determined at all (fronto-parallel view, inconsistent corners): the nominal focal
    /// length for [`NOMINAL_HFOV_DEG`].
    Nominal,
}

/// The focal length estimate and how much to trust it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FocalEstimate {
    /// The focal length used, pixels.
    pub focal_px: f64,
    /// The homography's own solution, when it has one (pixels).
    pub from_homography_px: Option<f64>,
    /// Relative standard error of the homography's solution for 1 px of corner noise
    /// (infinite when undetermined).
    pub rel_sigma: f64,
    /// Which of the above was used.
    pub source: FocalSource,
}

/// A ray in facade coordinates: `origin + s * direction`, `s >= 0`, direction of unit length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ray {
    /// The camera centre, metres.
    pub origin: [f64; 3],
    /// Unit direction from the camera into the scene.
    pub direction: [f64; 3],
}

impl Ray {
    /// The point where the ray meets the plane `Z = z_m` (None when parallel to it or behind).
    pub fn at_depth(&self, z_m: f64) -> Option<[f64; 3]> {
        let dz = self.direction[2];
        if dz.abs() < 1e-12 {
            return None;
        }
        let s = (z_m - self.origin[2]) / dz;
        if s < 0.0 {
            return None;
        }
        Some([
            self.origin[0] + s * self.direction[0],
            self.origin[1] + s * self.direction[1],
            z_m,
        ])
    }
}

/// A calibrated pinhole camera looking at the facade.
#[derive(Clone, Debug)]
pub struct Camera {
    /// Focal length and its provenance.
    pub focal: FocalEstimate,
    /// Principal point (the image centre), pixels.
    pub principal_px: [f64; 2],
    /// Rotation from facade to camera coordinates (rows: camera right, down, forward).
    pub rotation: Matrix3<f64>,
    /// Camera centre in facade coordinates, metres.
    pub centre_m: [f64; 3],
    /// The projection used by [`Camera::project`]: columns 1, 2 and 4 are the calibration
    /// homography itself, column 3 comes from the recovered pose. It therefore maps facade points
    /// exactly as the homography does, whatever the small inconsistencies of clicked corners.
    p: Matrix3x4<f64>,
    /// Inverse of the left 3x3 block of `p` (back-projection).
    m_inv: Matrix3<f64>,
    /// Centre of `p` (equal to `centre_m` for a consistent homography).
    p_centre: Vector3<f64>,
}

impl Camera {
    /// Recovers the camera from the facade-to-image homography for an image of the given size.
    /// `rel_sigma` is the focal length's relative standard error computed by the caller (who knows
    /// the corners); pass `f64::INFINITY` when unknown.
    pub fn from_homography(
        h: &Homography,
        width_px: u32,
        height_px: u32,
        rel_sigma: f64,
    ) -> Result<Camera> {
        if width_px == 0 || height_px == 0 {
            bail!(
                InvalidInput,
                "image size {width_px}x{height_px} must be positive"
            );
        }
        let (w, hgt) = (f64::from(width_px), f64::from(height_px));
        let principal = [w / 2.0, hgt / 2.0];
        let from_h = focal_from_homography(h.matrix(), principal, w);
        let nominal = nominal_focal_px(width_px);
        let focal = choose_focal(from_h, rel_sigma, nominal);
        if focal.source != FocalSource::Homography {
            tracing::warn!(
                focal_px = focal.focal_px,
                from_homography_px = ?focal.from_homography_px,
                rel_sigma = focal.rel_sigma,
                "focal length poorly determined by the facade corners (near fronto-parallel \
                 view?); using {:?}",
                focal.source
            );
        }
        Camera::with_focal(h, principal, focal)
    }

    /// Builds the pose for a given focal length.
    fn with_focal(h: &Homography, principal: [f64; 2], focal: FocalEstimate) -> Result<Camera> {
        let f = focal.focal_px;
        let k = intrinsic(f, principal);
        let k_inv = k.try_inverse().expect("focal length is positive");
        let hm = h.matrix();
        let b = k_inv * hm;
        let (b1, b2, b3) = (
            b.column(0).into_owned(),
            b.column(1).into_owned(),
            b.column(2).into_owned(),
        );
        let mut lambda = 2.0 / (b1.norm() + b2.norm());
        // The facade is in front of the camera: the image of a facade point has positive depth.
        if (lambda * b3).z < 0.0 {
            lambda = -lambda;
        }
        let r1 = lambda * b1;
        let r2 = lambda * b2;
        let r3 = r1.cross(&r2);
        let r0 = Matrix3::from_columns(&[r1, r2, r3]);
        let svd = r0.svd(true, true);
        let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
            bail!(Internal, "camera rotation SVD failed");
        };
        let mut rot_cols = u * v_t;
        if rot_cols.determinant() < 0.0 {
            bail!(InvalidInput, "facade corners imply a mirrored camera");
        }
        // Re-orthonormalised columns are the facade axes in camera coordinates; the rotation from
        // facade to camera has them as columns.
        if !rot_cols.iter().all(|v| v.is_finite()) {
            rot_cols = Matrix3::identity();
        }
        let rotation = rot_cols;
        let t = lambda * b3;
        let centre = -(rotation.transpose() * t);
        if centre.z <= 0.0 {
            bail!(
                InvalidInput,
                "facade corners put the camera behind the wall (corner order or mirrored image?)"
            );
        }
        // The hybrid projection: homography columns for X, Y and the constant, the pose for Z.
        let p3 = (k * rotation.column(2)) / lambda;
        let p = Matrix3x4::from_columns(&[
            hm.column(0).into_owned(),
            hm.column(1).into_owned(),
            p3,
            hm.column(2).into_owned(),
        ]);
        let m = p.fixed_view::<3, 3>(0, 0).into_owned();
        let Some(m_inv) = m.try_inverse() else {
            bail!(InvalidInput, "camera projection is singular");
        };
        let p_centre = -(m_inv * p.column(3));
        Ok(Camera {
            focal,
            principal_px: principal,
            rotation,
            centre_m: [centre.x, centre.y, centre.z],
            p,
            m_inv,
            p_centre,
        })
    }

    /// The intrinsic matrix `K`.
    pub fn intrinsic(&self) -> Matrix3<f64> {
        intrinsic(self.focal.focal_px, self.principal_px)
    }

    /// The camera's optical axis (unit vector, facade coordinates).
    pub fn forward(&self) -> [f64; 3] {
        let r = self.rotation.row(2);
        [r[0], r[1], r[2]]
    }

    /// Projects a point in facade coordinates (metres) to image pixels. Points behind the
    /// camera give the mirrored pixel; check [`Camera::depth`] when it matters.
    pub fn project(&self, p_m: [f64; 3]) -> [f64; 2] {
        let x = self.p * Vector4::new(p_m[0], p_m[1], p_m[2], 1.0);
        [x.x / x.z, x.y / x.z]
    }

    /// Projects a point and returns the 2x3 derivative of the pixel with respect to the point.
    pub fn project_with_jacobian(&self, p_m: [f64; 3]) -> ([f64; 2], [[f64; 3]; 2]) {
        let x = self.p * Vector4::new(p_m[0], p_m[1], p_m[2], 1.0);
        let (u, v) = (x.x / x.z, x.y / x.z);
        let row = |r: usize, q: f64| [0, 1, 2].map(|c| (self.p[(r, c)] - q * self.p[(2, c)]) / x.z);
        ([u, v], [row(0, u), row(1, v)])
    }

    /// Distance of a point in front of the camera along its optical axis, metres (negative
    /// behind it).
    pub fn depth(&self, p_m: [f64; 3]) -> f64 {
        let f = self.forward();
        (0..3).map(|i| f[i] * (p_m[i] - self.centre_m[i])).sum()
    }

    /// The ray through an image pixel.
    pub fn ray(&self, px: [f64; 2]) -> Ray {
        let mut d = self.m_inv * Vector3::new(px[0], px[1], 1.0);
        let fwd = self.forward();
        if d.x * fwd[0] + d.y * fwd[1] + d.z * fwd[2] < 0.0 {
            d = -d;
        }
        let d = d.normalize();
        Ray {
            origin: [self.p_centre.x, self.p_centre.y, self.p_centre.z],
            direction: [d.x, d.y, d.z],
        }
    }
}

/// `K` for square pixels and no skew.
fn intrinsic(f: f64, c: [f64; 2]) -> Matrix3<f64> {
    Matrix3::new(f, 0.0, c[0], 0.0, f, c[1], 0.0, 0.0, 1.0)
}

/// The nominal focal length for [`NOMINAL_HFOV_DEG`].
pub fn nominal_focal_px(width_px: u32) -> f64 {
    f64::from(width_px) / 2.0 / (NOMINAL_HFOV_DEG.to_radians() / 2.0).tan()
}

/// Least-squares focal length from the homography's first two columns, principal point known.
/// Computed in pixel coordinates centred on the principal point and divided by `scale_px` for
/// conditioning. None when the equations have no positive solution or are degenerate.
pub fn focal_from_homography(h: &Matrix3<f64>, principal: [f64; 2], scale_px: f64) -> Option<f64> {
    let s = scale_px;
    let t = Matrix3::new(
        1.0 / s,
        0.0,
        -principal[0] / s,
        0.0,
        1.0 / s,
        -principal[1] / s,
        0.0,
        0.0,
        1.0,
    );
    let hc = t * h;
    let hc = hc / hc.norm();
    let (h11, h21, h31) = (hc[(0, 0)], hc[(1, 0)], hc[(2, 0)]);
    let (h12, h22, h32) = (hc[(0, 1)], hc[(1, 1)], hc[(2, 1)]);
    // r1 . r2 = 0 and |r1| = |r2| with r = K^-1 h:  a_k w + b_k = 0, w = 1 / f^2.
    let a1 = h11 * h12 + h21 * h22;
    let b1 = h31 * h32;
    let a2 = h11 * h11 + h21 * h21 - h12 * h12 - h22 * h22;
    let b2 = h31 * h31 - h32 * h32;
    let den = a1 * a1 + a2 * a2;
    if den.is_nan() || den <= 1e-24 {
        return None;
    }
    let w = -(a1 * b1 + a2 * b2) / den;
    if !(w.is_finite() && w > 0.0) {
        return None;
    }
    let f = s / w.sqrt();
    f.is_finite().then_some(f)
}

/// Picks the focal length to use from the homography's solution, its relative error and the
/// nominal value.
fn choose_focal(from_h: Option<f64>, rel_sigma: f64, nominal: f64) -> FocalEstimate {
    let width = nominal * 2.0 * (NOMINAL_HFOV_DEG.to_radians() / 2.0).tan();
    let plausible =
        from_h.filter(|&f| f >= FOCAL_RANGE_WIDTHS.0 * width && f <= FOCAL_RANGE_WIDTHS.1 * width);
    match plausible {
        Some(f) if rel_sigma.is_finite() && rel_sigma <= FOCAL_MAX_REL_SIGMA => FocalEstimate {
            focal_px: f,
            from_homography_px: from_h,
            rel_sigma,
            source: FocalSource::Homography,
        },
        Some(f) if rel_sigma.is_finite() => {
            // Inverse-variance blend of log f with the nominal prior.
            let wh = 1.0 / (rel_sigma * rel_sigma);
            let wp = 1.0 / (FOCAL_PRIOR_LOG_SIGMA * FOCAL_PRIOR_LOG_SIGMA);
            let lf = (wh * f.ln() + wp * nominal.ln()) / (wh + wp);
            FocalEstimate {
                focal_px: lf.exp(),
                from_homography_px: from_h,
                rel_sigma,
                source: FocalSource::Blended,
            }
        }
        _ => FocalEstimate {
            focal_px: nominal,
            from_homography_px: from_h,
            rel_sigma: f64::INFINITY,
            source: FocalSource::Nominal,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_focal_prefers_a_determined_homography() {
        let a = choose_focal(Some(1500.0), 0.02, 1200.0);
        assert_eq!(a.source, FocalSource::Homography);
        assert_eq!(a.focal_px, 1500.0);
        let b = choose_focal(Some(1500.0), 0.6, 1200.0);
        assert_eq!(b.source, FocalSource::Blended);
        assert!(b.focal_px > 1200.0 && b.focal_px < 1500.0);
        let c = choose_focal(None, f64::INFINITY, 1200.0);
        assert_eq!(c.source, FocalSource::Nominal);
        assert_eq!(c.focal_px, 1200.0);
        // Absurd values count as undetermined.
        let d = choose_focal(Some(1e7), 0.01, 1200.0);
        assert_eq!(d.source, FocalSource::Nominal);
    }

    #[test]
    fn ray_meets_the_plane_ahead_only() {
        let r = Ray {
            origin: [0.0, 1.5, 30.0],
            direction: [0.0, 0.6, -0.8],
        };
        let p = r.at_depth(0.0).unwrap();
        assert!((p[1] - (1.5 + 30.0 * 0.75)).abs() < 1e-9);
        assert!(r.at_depth(40.0).is_none());
    }
}
