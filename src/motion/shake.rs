//! Camera shake: the global translation of a frame against the background, from row and column
//! projection profiles.
//!
//! Each frame's row profile (mean grey level of each row of the region) and column profile (mean
//! of each column over every fourth row) cost a fraction of one pass and come out of the
//! pre-pass that also sums the illumination tiles. The shift along each axis is the lag that
//! maximises the normalised cross-correlation of the profiles' first differences against a
//! reference (an average of recent unshaken frames): differences and normalisation make it blind
//! to brightness and gain changes. A parabola through the peak gives the sub-pixel part; a weak
//! or flat peak (a textureless view) gives no shift.

/// A frame's estimated translation relative to the background, pixels (content moved by
/// `+dx_px`, `+dy_px`).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Shift {
    /// Horizontal shift, pixels.
    pub dx_px: f64,
    /// Vertical shift, pixels.
    pub dy_px: f64,
    /// Normalised cross-correlation at the peak, the weaker of the two axes (1 = perfect).
    pub score: f64,
}

/// One axis's profile estimator.
#[derive(Clone, Debug, Default)]
pub(crate) struct AxisProfile {
    reference: Vec<f32>,
    has_reference: bool,
    grad_cur: Vec<f32>,
    grad_ref: Vec<f32>,
}

impl AxisProfile {
    pub fn memory_bytes(&self) -> usize {
        (self.reference.capacity() + self.grad_cur.capacity() + self.grad_ref.capacity()) * 4
    }

    /// Replaces the reference with `cur`.
    pub fn reset(&mut self, cur: &[f32]) {
        self.reference.clear();
        self.reference.extend_from_slice(cur);
        self.has_reference = true;
    }

    /// Moves the reference towards `cur` by `rate`.
    pub fn blend(&mut self, cur: &[f32], rate: f32) {
        if !self.has_reference || self.reference.len() != cur.len() {
            self.reset(cur);
            return;
        }
        for (r, &c) in self.reference.iter_mut().zip(cur) {
            *r += (c - *r) * rate;
        }
    }

    /// The lag of `cur` against the reference within `radius`, with its correlation score, or
    /// `None` without a reference or texture.
    pub fn estimate(&mut self, cur: &[f32], radius: usize) -> Option<(f64, f64)> {
        if !self.has_reference || cur.len() != self.reference.len() || cur.len() < 4 * radius + 8 {
            return None;
        }
        grad(cur, &mut self.grad_cur);
        grad(&self.reference, &mut self.grad_ref);
        let (g, r) = (&self.grad_cur, &self.grad_ref);
        let n = g.len();
        let (lo, hi) = (radius, n - radius);
        let energy_c: f64 = g[lo..hi].iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        if energy_c <= 1e-6 {
            return None;
        }
        let mut scores = vec![0.0f64; 2 * radius + 1];
        for (k, sc) in scores.iter_mut().enumerate() {
            let lag = k as isize - radius as isize;
            // cur[i] ~ ref[i - lag].
            let rr = &r[(lo as isize - lag) as usize..(hi as isize - lag) as usize];
            let mut num = 0.0f64;
            let mut er = 0.0f64;
            for (&a, &b) in g[lo..hi].iter().zip(rr) {
                num += f64::from(a) * f64::from(b);
                er += f64::from(b) * f64::from(b);
            }
            *sc = if er > 1e-6 {
                num / (energy_c * er).sqrt()
            } else {
                0.0
            };
        }
        let (best, &peak) = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("non-empty");
        let mut lag = best as f64 - radius as f64;
        if best > 0 && best + 1 < scores.len() {
            let (m, p) = (scores[best - 1], scores[best + 1]);
            let den = m - 2.0 * peak + p;
            if den < -1e-12 {
                lag += (0.5 * (m - p) / den).clamp(-0.5, 0.5);
            }
        }
        Some((lag, peak))
    }
}

/// First differences of a profile.
fn grad(p: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.extend(p.windows(2).map(|w| w[1] - w[0]));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texture(n: usize, shift: f64) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let x = i as f64 - shift;
                (100.0
                    + 30.0 * (x * 0.21).sin()
                    + 20.0 * (x * 0.057).cos()
                    + 10.0 * (x * 0.73).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn finds_integer_and_fractional_lags() {
        let mut a = AxisProfile::default();
        a.reset(&texture(400, 0.0));
        for &s in &[0.0, 3.0, -5.0, 1.4, -2.6] {
            let (lag, score) = a.estimate(&texture(400, s), 8).unwrap();
            assert!((lag - s).abs() < 0.2, "shift {s} estimated {lag}");
            assert!(score > 0.9);
        }
        // Gain and offset changes do not move the estimate.
        let bright: Vec<f32> = texture(400, 2.0).iter().map(|v| v * 1.4 + 10.0).collect();
        let (lag, _) = a.estimate(&bright, 8).unwrap();
        assert!((lag - 2.0).abs() < 0.2);
    }

    #[test]
    fn flat_profile_has_no_estimate() {
        let mut a = AxisProfile::default();
        a.reset(&vec![50.0; 300]);
        assert!(a.estimate(&vec![50.0; 300], 8).is_none());
    }
}
