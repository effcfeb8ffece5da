//! Anti-aliased 2-D drawing of small things (objects, birds, leaves, drops) into a linear-RGB
//! frame. A [`Splat`] accumulates one thing's coverage and premultiplied colour over all of its
//! exposure sub-samples, then composites once: the result is the true time average over the
//! exposure (motion blur), depth-tested against the background.

use nalgebra::{Matrix2, Vector2};

use super::sky::Rgb;

/// A 2-D point or vector, pixels.
pub type P2 = Vector2<f64>;

/// The frame being composed: linear RGB plus the background's depth for occlusion.
pub struct Canvas<'a> {
    /// Pixels, row-major.
    pub img: &'a mut [Rgb],
    /// Background depth per pixel, metres.
    pub depth_m: &'a [f32],
    /// Width, pixels.
    pub width: usize,
    /// Height, pixels.
    pub height: usize,
}

/// Coverage and colour of one drawable over a pixel box, summed over sub-samples.
pub struct Splat {
    x0: i64,
    y0: i64,
    w: usize,
    h: usize,
    cov: Vec<f32>,
    col: Vec<Rgb>,
    samples: f32,
}

/// Coverage of a pixel whose centre is `sd` pixels outside an edge (negative inside).
#[inline]
fn edge_cov(sd: f64) -> f32 {
    (0.5 - sd).clamp(0.0, 1.0) as f32
}

impl Splat {
    /// An empty splat over the pixel box [x_min, x_max] x [y_min, y_max] (clipped to the image),
    /// for `samples` sub-samples. `None` when the box is outside the image.
    pub fn new(
        x_min: f64,
        y_min: f64,
        x_max: f64,
        y_max: f64,
        width: usize,
        height: usize,
        samples: usize,
    ) -> Option<Splat> {
        if !(x_min.is_finite() && x_max.is_finite() && y_min.is_finite() && y_max.is_finite()) {
            return None;
        }
        let x0 = (x_min.floor() as i64).max(0);
        let y0 = (y_min.floor() as i64).max(0);
        let x1 = (x_max.ceil() as i64).min(width as i64 - 1);
        let y1 = (y_max.ceil() as i64).min(height as i64 - 1);
        if x1 < x0 || y1 < y0 || (x1 - x0) > 4000 || (y1 - y0) > 4000 {
            return None;
        }
        let (w, h) = ((x1 - x0 + 1) as usize, (y1 - y0 + 1) as usize);
        Some(Splat {
            x0,
            y0,
            w,
            h,
            cov: vec![0.0; w * h],
            col: vec![[0.0; 3]; w * h],
            samples: samples.max(1) as f32,
        })
    }

    #[inline]
    fn put(&mut self, i: usize, c: f32, rgb: Rgb) {
        self.cov[i] += c;
        let p = &mut self.col[i];
        p[0] += rgb[0] * c;
        p[1] += rgb[1] * c;
        p[2] += rgb[2] * c;
    }

    fn range(&self, lo: P2, hi: P2) -> Option<(usize, usize, usize, usize)> {
        let xa = ((lo.x.floor() as i64) - self.x0).max(0);
        let ya = ((lo.y.floor() as i64) - self.y0).max(0);
        let xb = ((hi.x.ceil() as i64) - self.x0).min(self.w as i64 - 1);
        let yb = ((hi.y.ceil() as i64) - self.y0).min(self.h as i64 - 1);
        (xa <= xb && ya <= yb).then_some((xa as usize, ya as usize, xb as usize, yb as usize))
    }

    /// An ellipse `{c + L u : |u| <= 1}` with opacity `alpha`; `shade(q)` gets the pixel offset
    /// from the centre normalised so that the rim is at |q| = 1, in image directions.
    pub fn ellipse(&mut self, c: P2, l: Matrix2<f64>, alpha: f32, shade: impl Fn(P2) -> Rgb) {
        // Keep sub-pixel ellipses visible with their true energy: widen, dim.
        let cov = l * l.transpose();
        let widened = cov + Matrix2::identity() * 0.12;
        let energy = (cov.determinant().max(0.0) / widened.determinant()).sqrt() as f32;
        let Some(chol) = widened.cholesky() else {
            return;
        };
        let lw = chol.l();
        let Some(m) = lw.try_inverse() else { return };
        let ext = P2::new(widened[(0, 0)].sqrt() + 1.5, widened[(1, 1)].sqrt() + 1.5);
        let Some((xa, ya, xb, yb)) = self.range(c - ext, c + ext) else {
            return;
        };
        let alpha = alpha * energy;
        for y in ya..=yb {
            for x in xa..=xb {
                let p = P2::new(
                    (self.x0 + x as i64) as f64 + 0.5,
                    (self.y0 + y as i64) as f64 + 0.5,
                );
                let q = p - c;
                let u = m * q;
                let d = u.norm();
                let g = if d > 1e-9 {
                    (m.transpose() * (u / d)).norm()
                } else {
                    1.0
                };
                let cv = edge_cov((d - 1.0) / g.max(1e-9));
                if cv > 0.0 {
                    let qn = if q.norm() > 1e-9 {
                        q / q.norm() * d.min(1.0)
                    } else {
                        P2::zeros()
                    };
                    self.put(y * self.w + x, cv * alpha, shade(qn));
                }
            }
        }
    }

    /// A capsule (a segment `a`-`b` thickened by `r` pixels) with opacity `alpha`;
    /// `shade(across)` gets the signed offset across the axis in [-1, 1].
    pub fn capsule(&mut self, a: P2, b: P2, r: f64, alpha: f32, shade: impl Fn(f64) -> Rgb) {
        // Sub-pixel widths: draw 0.6 px wide with the energy kept.
        let rr = r.max(0.6);
        let alpha = alpha * (r / rr).min(1.0) as f32;
        let lo = P2::new(a.x.min(b.x), a.y.min(b.y)) - P2::new(rr + 1.0, rr + 1.0);
        let hi = P2::new(a.x.max(b.x), a.y.max(b.y)) + P2::new(rr + 1.0, rr + 1.0);
        let Some((xa, ya, xb, yb)) = self.range(lo, hi) else {
            return;
        };
        let ab = b - a;
        let len2 = ab.norm_squared();
        let perp = if len2 > 1e-12 {
            P2::new(-ab.y, ab.x) / len2.sqrt()
        } else {
            P2::new(1.0, 0.0)
        };
        for y in ya..=yb {
            for x in xa..=xb {
                let p = P2::new(
                    (self.x0 + x as i64) as f64 + 0.5,
                    (self.y0 + y as i64) as f64 + 0.5,
                );
                let ap = p - a;
                let t = if len2 > 1e-12 {
                    (ap.dot(&ab) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let dist = (ap - ab * t).norm();
                let cv = edge_cov(dist - rr);
                if cv > 0.0 {
                    let across = (ap.dot(&perp) / rr).clamp(-1.0, 1.0);
                    self.put(y * self.w + x, cv * alpha, shade(across));
                }
            }
        }
    }

    /// A convex polygon (any winding) of one colour with opacity `alpha`.
    pub fn polygon(&mut self, pts: &[P2], alpha: f32, rgb: Rgb) {
        if pts.len() < 3 {
            return;
        }
        let mut area2 = 0.0;
        for i in 0..pts.len() {
            let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
            area2 += p.x * q.y - q.x * p.y;
        }
        let sign = if area2 >= 0.0 { 1.0 } else { -1.0 };
        // Edges as (point, inward unit normal).
        let edges: Vec<(P2, P2)> = (0..pts.len())
            .filter_map(|i| {
                let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
                let e = q - p;
                let l = e.norm();
                (l > 1e-9).then(|| (p, P2::new(-e.y, e.x) * (sign / l)))
            })
            .collect();
        if edges.len() < 3 {
            return;
        }
        // Very thin polygons: keep their energy.
        let area = area2.abs() / 2.0;
        let perim: f64 = (0..pts.len())
            .map(|i| (pts[(i + 1) % pts.len()] - pts[i]).norm())
            .sum();
        let thickness = 2.0 * area / perim.max(1e-9);
        let (grow, alpha) = if thickness < 0.8 {
            (
                0.4 - thickness / 2.0,
                alpha * (thickness / 0.8).max(0.05) as f32,
            )
        } else {
            (0.0, alpha)
        };
        let mut lo = P2::new(f64::INFINITY, f64::INFINITY);
        let mut hi = -lo;
        for p in pts {
            lo = lo.inf(p);
            hi = hi.sup(p);
        }
        let Some((xa, ya, xb, yb)) = self.range(lo - P2::new(1.5, 1.5), hi + P2::new(1.5, 1.5))
        else {
            return;
        };
        for y in ya..=yb {
            for x in xa..=xb {
                let p = P2::new(
                    (self.x0 + x as i64) as f64 + 0.5,
                    (self.y0 + y as i64) as f64 + 0.5,
                );
                let inside = edges
                    .iter()
                    .map(|(o, n)| (p - o).dot(n))
                    .fold(f64::INFINITY, f64::min);
                let cv = edge_cov(-(inside + grow));
                if cv > 0.0 {
                    self.put(y * self.w + x, cv * alpha, rgb);
                }
            }
        }
    }

    /// A soft disc (defocused blob) of radius `r` with a soft edge of `soft` pixels.
    pub fn soft_disc(&mut self, c: P2, r: f64, soft: f64, alpha: f32, rgb: Rgb) {
        let ext = P2::new(r + soft + 1.0, r + soft + 1.0);
        let Some((xa, ya, xb, yb)) = self.range(c - ext, c + ext) else {
            return;
        };
        for y in ya..=yb {
            for x in xa..=xb {
                let p = P2::new(
                    (self.x0 + x as i64) as f64 + 0.5,
                    (self.y0 + y as i64) as f64 + 0.5,
                );
                let d = (p - c).norm();
                let t = ((r + soft - d) / (2.0 * soft).max(1e-6)).clamp(0.0, 1.0);
                let cv = (t * t * (3.0 - 2.0 * t)) as f32;
                if cv > 0.0 {
                    self.put(y * self.w + x, cv * alpha, rgb);
                }
            }
        }
    }

    /// Composites the time-averaged splat onto the canvas. Pixels whose background is nearer
    /// than `depth_m` are left alone (the thing is hidden there).
    pub fn composite(&self, canvas: &mut Canvas<'_>, depth_m: f32) {
        let inv = 1.0 / self.samples;
        for y in 0..self.h {
            let gy = self.y0 as usize + y;
            for x in 0..self.w {
                let i = y * self.w + x;
                let mut a = self.cov[i] * inv;
                if a <= 0.0 {
                    continue;
                }
                let gx = self.x0 as usize + x;
                let gi = gy * canvas.width + gx;
                if canvas.depth_m[gi] < depth_m {
                    continue;
                }
                let mut c = self.col[i].map(|v| v * inv);
                if a > 1.0 {
                    c = c.map(|v| v / a);
                    a = 1.0;
                }
                let d = &mut canvas.img[gi];
                for k in 0..3 {
                    d[k] = d[k] * (1.0 - a) + c[k];
                }
            }
        }
    }

    /// Total coverage (summed over sub-samples), for tests.
    pub fn total_coverage(&self) -> f32 {
        self.cov.iter().sum::<f32>() / self.samples
    }
}
