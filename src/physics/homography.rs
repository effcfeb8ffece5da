//! Plane-to-plane homographies: the direct linear transform (DLT) with Hartley normalisation,
//! point mapping both ways, and the local scale (pixels per metre) of the map.
//!
//! Points are `[f64; 2]`; the matrix maps homogeneous source points `(x, y, 1)` to homogeneous
//! destination points. Four correspondences in general position determine it exactly; more are
//! fitted in the algebraic least-squares sense.

use nalgebra::{DMatrix, Matrix3, Vector3};

use crate::bail;
use crate::error::Result;

/// A 3x3 projective map between two planes, with its inverse.
#[derive(Clone, Debug, PartialEq)]
pub struct Homography {
    /// The forward matrix, scaled to unit Frobenius norm with a positive last element when possible.
    m: Matrix3<f64>,
    /// Its inverse, scaled the same way.
    inv: Matrix3<f64>,
}

impl Homography {
    /// Builds a homography from a matrix; fails when the matrix is singular or not finite.
    pub fn from_matrix(m: Matrix3<f64>) -> Result<Homography> {
        if m.iter().any(|v| !v.is_finite()) {
            bail!(InvalidInput, "homography has non-finite entries");
        }
        let m = normalise_scale(m);
        let Some(inv) = m.try_inverse() else {
            bail!(InvalidInput, "homography is singular");
        };
        // A nearly singular map (collinear corners) gives an inverse with huge entries.
        let cond = m.norm() * inv.norm();
        if !cond.is_finite() || cond > 1e12 {
            bail!(
                InvalidInput,
                "homography is degenerate (condition {cond:.3e})"
            );
        }
        Ok(Homography {
            m,
            inv: normalise_scale(inv),
        })
    }

    /// The DLT estimate from at least four correspondences `src[i] -> dst[i]`, with both point
    /// sets normalised (centroid at the origin, mean distance sqrt 2) for conditioning.
    pub fn from_correspondences(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Result<Homography> {
        if src.len() != dst.len() || src.len() < 4 {
            bail!(
                InvalidInput,
                "homography needs at least 4 point pairs, got {} and {}",
                src.len(),
                dst.len()
            );
        }
        let ts = normalising_transform(src)?;
        let td = normalising_transform(dst)?;
        if n_collinear_triples(src, &ts) > 0 || n_collinear_triples(dst, &td) > 0 {
            bail!(
                InvalidInput,
                "homography points have three (nearly) on one line"
            );
        }
        let n = src.len();
        // 2n equations in the 9 entries; pad to at least 9 rows so the SVD yields the full
        // right singular basis (the null vector of an exact 4-point system).
        let rows = (2 * n).max(9);
        let mut a = DMatrix::<f64>::zeros(rows, 9);
        for i in 0..n {
            let s = ts * Vector3::new(src[i][0], src[i][1], 1.0);
            let d = td * Vector3::new(dst[i][0], dst[i][1], 1.0);
            let (x, y, w) = (s.x, s.y, s.z);
            let (u, v, q) = (d.x, d.y, d.z);
            // d x (H s) = 0: two independent rows.
            let r0 = [0.0, 0.0, 0.0, -q * x, -q * y, -q * w, v * x, v * y, v * w];
            let r1 = [q * x, q * y, q * w, 0.0, 0.0, 0.0, -u * x, -u * y, -u * w];
            for j in 0..9 {
                a[(2 * i, j)] = r0[j];
                a[(2 * i + 1, j)] = r1[j];
            }
        }
        let svd = a.svd(false, true);
        let Some(v_t) = svd.v_t else {
            bail!(
                Internal,
                "homography SVD produced no right singular vectors"
            );
        };
        let (k, _) = svd
            .singular_values
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .expect("nine singular values");
        let h = v_t.row(k);
        let hn = Matrix3::new(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]);
        let Some(td_inv) = td.try_inverse() else {
            bail!(Internal, "normalising transform is singular");
        };
        Homography::from_matrix(td_inv * hn * ts)
    }

    /// The forward matrix.
    pub fn matrix(&self) -> &Matrix3<f64> {
        &self.m
    }

    /// The inverse matrix.
    pub fn inverse_matrix(&self) -> &Matrix3<f64> {
        &self.inv
    }

    /// The inverse map as a homography of its own.
    pub fn inverse(&self) -> Homography {
        Homography {
            m: self.inv,
            inv: self.m,
        }
    }

    /// Maps a source point to the destination plane. Points on the horizon line map to
    /// non-finite coordinates.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        apply(&self.m, p)
    }

    /// Maps a destination point back to the source plane.
    pub fn apply_inverse(&self, p: [f64; 2]) -> [f64; 2] {
        apply(&self.inv, p)
    }

    /// The 2x2 Jacobian of the forward map at `p`, as rows `[[du/dx, du/dy], [dv/dx, dv/dy]]`.
    pub fn jacobian(&self, p: [f64; 2]) -> [[f64; 2]; 2] {
        let m = &self.m;
        let x = Vector3::new(p[0], p[1], 1.0);
        let h = m * x;
        let (u, v, w) = (h.x, h.y, h.z);
        let w2 = w * w;
        [
            [
                (m[(0, 0)] * w - u * m[(2, 0)]) / w2,
                (m[(0, 1)] * w - u * m[(2, 1)]) / w2,
            ],
            [
                (m[(1, 0)] * w - v * m[(2, 0)]) / w2,
                (m[(1, 1)] * w - v * m[(2, 1)]) / w2,
            ],
        ]
    }

    /// Local linear scale of the forward map at `p` (destination units per source unit): the
    /// square root of the Jacobian's absolute determinant. For facade-to-image, pixels per metre.
    pub fn local_scale(&self, p: [f64; 2]) -> f64 {
        let j = self.jacobian(p);
        (j[0][0] * j[1][1] - j[0][1] * j[1][0]).abs().sqrt()
    }
}

/// Applies a homogeneous 3x3 matrix to a 2-D point.
pub(crate) fn apply(m: &Matrix3<f64>, p: [f64; 2]) -> [f64; 2] {
    let h = m * Vector3::new(p[0], p[1], 1.0);
    [h.x / h.z, h.y / h.z]
}

/// For exactly four points: how many of the four triples are (nearly) collinear after
/// normalisation. More points are not checked (the least-squares fit copes with some).
fn n_collinear_triples(pts: &[[f64; 2]], t: &Matrix3<f64>) -> usize {
    if pts.len() != 4 {
        return 0;
    }
    let q: Vec<[f64; 2]> = pts.iter().map(|p| apply(t, *p)).collect();
    let area = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        ((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])).abs() * 0.5
    };
    [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
        .iter()
        .filter(|&&(i, j, k)| area(q[i], q[j], q[k]) < 1e-6)
        .count()
}

/// Scales a matrix to unit Frobenius norm with a non-negative (3,3) element.
fn normalise_scale(m: Matrix3<f64>) -> Matrix3<f64> {
    let n = m.norm();
    let s = if m[(2, 2)] < 0.0 { -n } else { n };
    if s == 0.0 { m } else { m / s }
}

/// Hartley's normalisation: translate the centroid to the origin and scale the mean distance
/// from it to sqrt 2.
fn normalising_transform(pts: &[[f64; 2]]) -> Result<Matrix3<f64>> {
    let n = pts.len() as f64;
    let cx = pts.iter().map(|p| p[0]).sum::<f64>() / n;
    let cy = pts.iter().map(|p| p[1]).sum::<f64>() / n;
    let mean_d = pts
        .iter()
        .map(|p| ((p[0] - cx).powi(2) + (p[1] - cy).powi(2)).sqrt())
        .sum::<f64>()
        / n;
    if !(mean_d.is_finite() && mean_d > 0.0) {
        bail!(InvalidInput, "homography points are all the same point");
    }
    let s = std::f64::consts::SQRT_2 / mean_d;
    Ok(Matrix3::new(
        s,
        0.0,
        -s * cx,
        0.0,
        s,
        -s * cy,
        0.0,
        0.0,
        1.0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 2], b: [f64; 2], tol: f64) -> bool {
        (a[0] - b[0]).abs() <= tol && (a[1] - b[1]).abs() <= tol
    }

    #[test]
    fn four_points_are_reproduced_exactly_and_round_trip() {
        let src = [[0.0, 43.2], [24.0, 43.2], [24.0, 1.2], [0.0, 1.2]];
        let dst = [
            [812.0, 96.0],
            [1410.0, 130.0],
            [1388.0, 1012.0],
            [836.0, 1040.0],
        ];
        let h = Homography::from_correspondences(&src, &dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            assert!(close(h.apply(*s), *d, 1e-8), "{:?} vs {d:?}", h.apply(*s));
            assert!(close(h.apply_inverse(*d), *s, 1e-10));
        }
        // Interior points round-trip too.
        for p in [[3.0, 7.0], [12.5, 30.0], [20.0, 2.0]] {
            let back = h.apply_inverse(h.apply(p));
            assert!(close(back, p, 1e-9), "{back:?} vs {p:?}");
            let back2 = h.inverse().apply(h.apply(p));
            assert!(close(back2, p, 1e-9));
        }
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let src = [[0.0, 10.0], [10.0, 10.0], [10.0, 0.0], [0.0, 0.0]];
        let dst = [[100.0, 50.0], [700.0, 90.0], [650.0, 800.0], [130.0, 760.0]];
        let h = Homography::from_correspondences(&src, &dst).unwrap();
        let p = [4.0, 6.0];
        let j = h.jacobian(p);
        let e = 1e-6;
        for c in 0..2 {
            let mut q = p;
            q[c] += e;
            let a = h.apply(q);
            let b = h.apply(p);
            for r in 0..2 {
                let fd = (a[r] - b[r]) / e;
                assert!(
                    (fd - j[r][c]).abs() < 1e-3 * fd.abs().max(1.0),
                    "{fd} vs {}",
                    j[r][c]
                );
            }
        }
        assert!(h.local_scale(p) > 0.0);
    }

    #[test]
    fn degenerate_input_is_refused() {
        let src = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]];
        let dst = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::from_correspondences(&src, &dst).is_err());
        assert!(Homography::from_correspondences(&src[..3], &dst[..3]).is_err());
        let same = [[5.0, 5.0]; 4];
        assert!(Homography::from_correspondences(&same, &dst).is_err());
    }
}
