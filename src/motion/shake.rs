//! Camera shake: the global motion of a frame against the background (a translation and a
//! small rotation), from row and column projection profiles, and the frame's registration onto
//! the background.
//!
//! Each frame's row profiles (mean grey level of each row, over the left and the right part of
//! the region) and column profiles (mean of each column over every fourth row, over the top and
//! the bottom part) cost a fraction of one pass and come out of the pre-pass that also sums the
//! illumination tiles. The shift along each axis is the lag that maximises the normalised
//! cross-correlation of a profile's first differences against a reference (an average of recent
//! unshaken frames): differences and normalisation make it blind to brightness and gain
//! changes. A parabola through the peak gives the sub-pixel part; a weak or flat peak (a
//! textureless view) gives no shift. A rotation moves the left and right parts vertically in
//! opposite senses (and the top and bottom parts horizontally): the difference of the halves'
//! lags over the distance of their centres is the angle.
//!
//! A shaken frame is registered ([`stabilize`]): resampled (bilinear, in chunks of
//! [`CHUNK_PX`] pixels that share one sub-pixel offset) into the background's geometry, so the
//! main pass, the background update and the candidates work as on a still frame.

use super::kernels;
use super::roi::RowSpans;
use crate::ingest::Luma;

/// Pixels of a row that share one resampling offset: the rotation changes the vertical offset
/// along a row by under 0.05 px over a chunk at the largest angle tracked.
pub(crate) const CHUNK_PX: usize = 64;

/// Largest rotation estimated, radians (about 0.6 degrees: wind shake of a pole-mounted camera).
const MAX_ROTATION_RAD: f64 = 0.01;

/// A frame's estimated motion relative to the background: the background point (x, y) shows in
/// the frame at (x, y) + [`Shift::offset_at`], i.e. translated by (`dx_px`, `dy_px`) and
/// rotated by `rotation_rad` about (`cx_px`, `cy_px`) (small-angle form).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Shift {
    /// Horizontal shift at the centre, pixels.
    pub dx_px: f64,
    /// Vertical shift at the centre, pixels.
    pub dy_px: f64,
    /// Rotation, radians (positive: clockwise on screen, y pointing down).
    pub rotation_rad: f64,
    /// Centre of the rotation (the region's centre), pixels.
    pub cx_px: f64,
    /// See `cx_px`.
    pub cy_px: f64,
    /// Normalised cross-correlation at the peak, the weaker of the two axes (1 = perfect).
    pub score: f64,
}

impl Shift {
    /// Where the background point (`x`, `y`) shows in the frame, as an offset from it, pixels.
    #[inline]
    pub fn offset_at(&self, x: f64, y: f64) -> (f64, f64) {
        let th = self.rotation_rad;
        (
            self.dx_px - th * (y - self.cy_px),
            self.dy_px + th * (x - self.cx_px),
        )
    }

    /// The largest displacement over the box `x0..x1` x `y0..y1`, pixels (per axis, the larger).
    pub fn max_offset_px(&self, x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
        [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
            .iter()
            .map(|&(x, y)| {
                let (ox, oy) = self.offset_at(x, y);
                ox.abs().max(oy.abs())
            })
            .fold(0.0, f64::max)
    }
}

/// The projection profiles of the region and their references, whole and in halves.
#[derive(Debug, Default)]
pub(crate) struct Profiles {
    bx0: usize,
    by0: usize,
    /// The column that splits the left part from the right (a tile boundary, so a tile segment
    /// is wholly on one side), and the row that splits top from bottom.
    pub x_mid: usize,
    pub y_mid: usize,
    /// Region pixels per row, left and right part; sampled pixels per column, top and bottom.
    row_n: [Vec<u32>; 2],
    col_n: [Vec<u32>; 2],
    /// This frame's sums: per row (left, right) and per column (top, bottom).
    pub row_sum: [Vec<u32>; 2],
    pub col_acc: [Vec<u32>; 2],
    /// Profiles: whole, first half, second half.
    rows: [Vec<f32>; 3],
    cols: [Vec<f32>; 3],
    ref_rows: [AxisProfile; 3],
    ref_cols: [AxisProfile; 3],
    /// Centres of the halves (x of left, right; y of top, bottom) and of the region.
    half_x: [f64; 2],
    half_y: [f64; 2],
    centre: [f64; 2],
}

/// Every `COL_STEP`-th row of the region feeds the column profiles.
pub(crate) const COL_STEP: usize = 4;

impl Profiles {
    /// Profiles of `roi` within its bounding box (`bx0`, `by0`, `bw` x `bh`), split at the
    /// multiple of `tile_w` nearest the box's centre and at its middle row.
    pub fn new(roi: &RowSpans, bx0: usize, by0: usize, bw: usize, bh: usize, tile_w: u32) -> Self {
        let tw = tile_w as usize;
        let x_mid = (((bx0 + bw / 2) + tw / 2) / tw * tw).clamp(bx0 + 1, bx0 + bw.max(2) - 1);
        let y_mid = by0 + bh / 2;
        let mut row_n = [vec![0u32; bh], vec![0u32; bh]];
        let mut col_n = [vec![0u32; bw], vec![0u32; bw]];
        let (mut sx, mut nx) = ([0f64; 2], [0f64; 2]);
        let (mut sy, mut ny) = ([0f64; 2], [0f64; 2]);
        let (mut cx, mut cy, mut n) = (0f64, 0f64, 0f64);
        for y in by0..by0 + bh {
            let top = usize::from(y >= y_mid);
            for &s in roi.row(y) {
                let (a, b) = (s.x0 as usize, s.x1 as usize);
                // Cut at tile boundaries, each piece to the half of its start, as the pre-pass
                // adds them up.
                let mut lo = a;
                while lo < b {
                    let hi = ((lo / tw + 1) * tw).min(b);
                    let half = usize::from(lo >= x_mid);
                    let len = (hi - lo) as f64;
                    row_n[half][y - by0] += (hi - lo) as u32;
                    sx[half] += len * (lo + hi - 1) as f64 / 2.0;
                    nx[half] += len;
                    lo = hi;
                }
                let len = (b - a) as f64;
                sy[top] += len * y as f64;
                ny[top] += len;
                cx += len * (a + b - 1) as f64 / 2.0;
                cy += len * y as f64;
                n += len;
                if (y - by0).is_multiple_of(COL_STEP) {
                    for c in &mut col_n[top][a - bx0..b - bx0] {
                        *c += 1;
                    }
                }
            }
        }
        let mean = |s: f64, n: f64| if n > 0.0 { s / n } else { 0.0 };
        Profiles {
            bx0,
            by0,
            x_mid,
            y_mid,
            row_n,
            col_n,
            row_sum: [vec![0; bh], vec![0; bh]],
            col_acc: [vec![0; bw], vec![0; bw]],
            rows: [vec![0.0; bh], vec![0.0; bh], vec![0.0; bh]],
            cols: [vec![0.0; bw], vec![0.0; bw], vec![0.0; bw]],
            ref_rows: Default::default(),
            ref_cols: Default::default(),
            half_x: [mean(sx[0], nx[0]), mean(sx[1], nx[1])],
            half_y: [mean(sy[0], ny[0]), mean(sy[1], ny[1])],
            centre: [mean(cx, n), mean(cy, n)],
        }
    }

    pub fn memory_bytes(&self) -> usize {
        let v = |a: &[Vec<u32>]| a.iter().map(|v| v.capacity() * 4).sum::<usize>();
        let f = |a: &[Vec<f32>]| a.iter().map(|v| v.capacity() * 4).sum::<usize>();
        let r = |a: &[AxisProfile]| a.iter().map(AxisProfile::memory_bytes).sum::<usize>();
        v(&self.row_n)
            + v(&self.col_n)
            + v(&self.row_sum)
            + v(&self.col_acc)
            + f(&self.rows)
            + f(&self.cols)
            + r(&self.ref_rows)
            + r(&self.ref_cols)
    }

    /// Zeroes this frame's sums.
    pub fn clear(&mut self) {
        for v in self.row_sum.iter_mut().chain(self.col_acc.iter_mut()) {
            v.fill(0);
        }
    }

    /// Adds the region pixels `a..b` of row `y` (`row` holds them) to the column profile of
    /// the row's half (on sampled rows only).
    #[inline]
    pub fn add_cols(&mut self, y: usize, a: usize, b: usize, row: &[u8]) {
        if (y - self.by0).is_multiple_of(COL_STEP) {
            let half = usize::from(y >= self.y_mid);
            let bx0 = self.bx0;
            kernels::add_cols(&mut self.col_acc[half][a - bx0..b - bx0], row);
        }
    }

    /// Turns this frame's sums into profiles (empty entries repeat the previous value).
    pub fn finish(&mut self) {
        fn fill(out: &mut [f32], parts: [(&[u32], &[u32]); 2], which: Option<usize>) {
            let mut last = 0.0f32;
            for (i, o) in out.iter_mut().enumerate() {
                let (mut s, mut n) = (0u64, 0u64);
                for (k, (sum, cnt)) in parts.iter().enumerate() {
                    if which.is_none_or(|w| w == k) {
                        s += u64::from(sum[i]);
                        n += u64::from(cnt[i]);
                    }
                }
                if n > 0 {
                    last = s as f32 / n as f32;
                }
                *o = last;
            }
        }
        let rp = [
            (&self.row_sum[0][..], &self.row_n[0][..]),
            (&self.row_sum[1][..], &self.row_n[1][..]),
        ];
        let cp = [
            (&self.col_acc[0][..], &self.col_n[0][..]),
            (&self.col_acc[1][..], &self.col_n[1][..]),
        ];
        for (k, which) in [None, Some(0), Some(1)].into_iter().enumerate() {
            fill(&mut self.rows[k], rp, which);
            fill(&mut self.cols[k], cp, which);
        }
    }

    /// The references become this frame's profiles.
    pub fn reset(&mut self) {
        for k in 0..3 {
            self.ref_rows[k].reset(&self.rows[k]);
            self.ref_cols[k].reset(&self.cols[k]);
        }
    }

    /// The references move towards this frame's profiles by `rate`.
    pub fn blend(&mut self, rate: f32) {
        for k in 0..3 {
            self.ref_rows[k].blend(&self.rows[k], rate);
            self.ref_cols[k].blend(&self.cols[k], rate);
        }
    }

    /// No motion, about the region's centre.
    pub fn still(&self) -> Shift {
        Shift {
            cx_px: self.centre[0],
            cy_px: self.centre[1],
            ..Shift::default()
        }
    }

    /// This frame's motion against the references: lags within `radius` pixels whose
    /// correlation reaches `min_score` count.
    pub fn estimate(&mut self, radius: usize, min_score: f64) -> Shift {
        let est =
            |r: &mut AxisProfile, cur: &[f32]| r.estimate(cur, radius).filter(|e| e.1 >= min_score);
        let ex: [Option<(f64, f64)>; 3] =
            std::array::from_fn(|k| est(&mut self.ref_cols[k], &self.cols[k]));
        let ey: [Option<(f64, f64)>; 3] =
            std::array::from_fn(|k| est(&mut self.ref_rows[k], &self.rows[k]));
        let mut shift = self.still();
        // Rotation: vertical lags of the left and right parts, horizontal ones of top and bottom.
        let (dx_halves, dy_halves) = (
            self.half_x[1] - self.half_x[0],
            self.half_y[1] - self.half_y[0],
        );
        let angles = [
            match (ey[1], ey[2]) {
                (Some(l), Some(r)) if dx_halves > 1.0 => Some((r.0 - l.0) / dx_halves),
                _ => None,
            },
            match (ex[1], ex[2]) {
                (Some(t), Some(b)) if dy_halves > 1.0 => Some(-(b.0 - t.0) / dy_halves),
                _ => None,
            },
        ];
        let (sum, n) = angles
            .iter()
            .flatten()
            .fold((0.0, 0.0), |(s, n), a| (s + a, n + 1.0));
        if n > 0.0 {
            shift.rotation_rad = (sum / n).clamp(-MAX_ROTATION_RAD, MAX_ROTATION_RAD);
        }
        // Translation at the centre: from both halves where both were measured (a rotation
        // smears the whole-width profile), else from the whole profile.
        let axis = |whole: Option<(f64, f64)>,
                    a: Option<(f64, f64)>,
                    b: Option<(f64, f64)>,
                    ca: f64,
                    cb: f64,
                    c: f64| {
            match (a, b) {
                (Some(a), Some(b)) if cb - ca > 1.0 => {
                    let w = (c - ca) / (cb - ca);
                    Some((a.0 + (b.0 - a.0) * w, a.1.min(b.1)))
                }
                _ => whole,
            }
        };
        let (cx, cy) = (self.centre[0], self.centre[1]);
        let x = axis(ex[0], ex[1], ex[2], self.half_y[0], self.half_y[1], cy);
        let y = axis(ey[0], ey[1], ey[2], self.half_x[0], self.half_x[1], cx);
        let mut score = 1.0f64;
        if let Some((dx, sc)) = x {
            shift.dx_px = dx;
            score = score.min(sc);
        }
        if let Some((dy, sc)) = y {
            shift.dy_px = dy;
            score = score.min(sc);
        }
        shift.score = if x.is_some() || y.is_some() {
            score
        } else {
            0.0
        };
        shift
    }
}

/// Registers `luma` onto the background: `out` (a `width` x `height` plane) gets, over the
/// region `roi`, the frame sampled at each background pixel's position in the frame under
/// `shift`. Where that position falls outside the frame the background's own value (`bg`, the
/// region's bounding box from (`bx0`, `by0`), `bw` wide) is written: no difference, no alarm.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stabilize(
    luma: Luma<'_>,
    shift: &Shift,
    roi: &RowSpans,
    bg: &[u8],
    bx0: usize,
    by0: usize,
    bw: usize,
    out: &mut [u8],
) {
    let (w, h) = (luma.width(), luma.height());
    debug_assert_eq!(out.len(), w * h);
    let Some((y0, y1)) = roi.row_range() else {
        return;
    };
    for y in y0..y1 {
        let orow = &mut out[y * w..(y + 1) * w];
        let brow = &bg[(y - by0) * bw..(y - by0 + 1) * bw];
        for &s in roi.row(y) {
            let (mut a, end) = (s.x0 as usize, s.x1 as usize);
            while a < end {
                let b = (a + CHUNK_PX).min(end);
                let (ox, oy) = shift.offset_at((a + b - 1) as f64 / 2.0, y as f64);
                let (ix, iy) = (ox.floor(), oy.floor());
                let wx = ((ox - ix) * 32768.0).round().min(32767.0) as i16;
                let wy = ((oy - iy) * 32768.0).round().min(32767.0) as i16;
                let (ix, sy) = (ix as isize, y as isize + iy as isize);
                // Columns whose samples x + ix and x + ix + 1 lie in the frame.
                let lo = (a as isize).max(-ix).min(b as isize) as usize;
                let hi = (b as isize).min(w as isize - 1 - ix).max(lo as isize) as usize;
                if sy < 0 || sy + 1 >= h as isize || hi == lo {
                    orow[a..b].copy_from_slice(&brow[a - bx0..b - bx0]);
                } else {
                    orow[a..lo].copy_from_slice(&brow[a - bx0..lo - bx0]);
                    orow[hi..b].copy_from_slice(&brow[hi - bx0..b - bx0]);
                    let (sa, sb) = ((lo as isize + ix) as usize, (hi as isize + ix) as usize + 1);
                    kernels::bilinear_row(
                        &luma.row(sy as usize)[sa..sb],
                        &luma.row(sy as usize + 1)[sa..sb],
                        wx,
                        wy,
                        &mut orow[lo..hi],
                    );
                }
                a = b;
            }
        }
    }
}

/// One axis's profile estimator.
#[derive(Clone, Debug, Default)]
pub(crate) struct AxisProfile {
    reference: Vec<f32>,
    has_reference: bool,
    grad_cur: Vec<f32>,
    grad_ref: Vec<f32>,
    /// Prefix sums of the squared reference gradient (scratch).
    prefix: Vec<f64>,
}

impl AxisProfile {
    pub fn memory_bytes(&self) -> usize {
        (self.reference.capacity() + self.grad_cur.capacity() + self.grad_ref.capacity()) * 4
            + self.prefix.capacity() * 8
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
        // Energy of every window of the reference from prefix sums; the products with four
        // independent sums (the loop runs once per lag over the whole profile).
        self.prefix.clear();
        self.prefix.push(0.0);
        let mut acc = 0.0f64;
        for &v in r {
            acc += f64::from(v) * f64::from(v);
            self.prefix.push(acc);
        }
        let mut scores = vec![0.0f64; 2 * radius + 1];
        for (k, sc) in scores.iter_mut().enumerate() {
            let lag = k as isize - radius as isize;
            // cur[i] ~ ref[i - lag].
            let (a0, a1) = ((lo as isize - lag) as usize, (hi as isize - lag) as usize);
            let num = dot(&g[lo..hi], &r[a0..a1]);
            let er = self.prefix[a1] - self.prefix[a0];
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

/// The dot product of `a` and `b` (equal lengths), in f64 with four independent sums.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut s = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            s[k] += f64::from(x[k]) * f64::from(y[k]);
        }
    }
    let tail: f64 = ra
        .iter()
        .zip(rb)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    s[0] + s[1] + s[2] + s[3] + tail
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
    fn dot_matches_the_plain_sum() {
        for n in [0usize, 1, 3, 4, 5, 1001] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 53) % 89) as f32 * 0.5 - 20.0)
                .collect();
            let plain: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!(
                (dot(&a, &b) - plain).abs() <= 1e-9 * plain.abs().max(1.0),
                "n {n}"
            );
        }
    }

    #[test]
    fn flat_profile_has_no_estimate() {
        let mut a = AxisProfile::default();
        a.reset(&vec![50.0; 300]);
        assert!(a.estimate(&vec![50.0; 300], 8).is_none());
    }
}
