//! The region of interest: per image row, the x-spans of pixels the detector processes.
//!
//! The region is the calibrated facade quadrilateral grown by a margin (objects are thrown
//! outward, and fall past the facade's bottom edge), clipped to the image, minus the calibration's
//! `[[ignore]]` polygons. Pixel `(x, y)` belongs to a polygon when its centre, the point `(x, y)`
//! (pixel centres sit on integer coordinates), lies inside it.

/// A half-open run of columns `[x0, x1)` of one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// First column.
    pub x0: u32,
    /// One past the last column.
    pub x1: u32,
}

impl Span {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        (self.x1 - self.x0) as usize
    }
    /// True when the span holds no pixel.
    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0
    }
}

/// Spans of every row of an image, stored flat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowSpans {
    /// `spans[row_start[y]..row_start[y + 1]]` are row `y`'s spans, sorted and disjoint.
    row_start: Vec<u32>,
    spans: Vec<Span>,
}

impl RowSpans {
    /// No spans in any of `height` rows.
    pub fn empty(height: usize) -> Self {
        RowSpans {
            row_start: vec![0; height + 1],
            spans: Vec::new(),
        }
    }

    /// Builds from one list of spans per row.
    pub fn from_rows(rows: &[Vec<Span>]) -> Self {
        let mut out = RowSpans::empty(0);
        out.row_start.clear();
        out.row_start.push(0);
        for r in rows {
            out.spans
                .extend(r.iter().copied().filter(|s| !s.is_empty()));
            out.row_start.push(out.spans.len() as u32);
        }
        out
    }

    /// Clears and starts filling `height` rows in order with [`RowSpans::push`] / [`RowSpans::end_row`].
    pub fn clear(&mut self) {
        self.row_start.clear();
        self.row_start.push(0);
        self.spans.clear();
    }

    /// Appends a span to the row being filled.
    pub fn push(&mut self, s: Span) {
        if !s.is_empty() {
            self.spans.push(s);
        }
    }

    /// Closes the row being filled.
    pub fn end_row(&mut self) {
        self.row_start.push(self.spans.len() as u32);
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.row_start.len().saturating_sub(1)
    }

    /// The spans of row `y` (empty outside the image).
    #[inline]
    pub fn row(&self, y: usize) -> &[Span] {
        if y + 1 >= self.row_start.len() {
            return &[];
        }
        &self.spans[self.row_start[y] as usize..self.row_start[y + 1] as usize]
    }

    /// Total pixels covered.
    pub fn pixel_count(&self) -> usize {
        self.spans.iter().map(Span::len).sum()
    }

    /// First and one-past-last rows that have spans, or `None` when empty.
    pub fn row_range(&self) -> Option<(usize, usize)> {
        let h = self.height();
        let first = (0..h).find(|&y| !self.row(y).is_empty())?;
        let last = (0..h).rev().find(|&y| !self.row(y).is_empty())?;
        Some((first, last + 1))
    }

    /// Leftmost and one-past-rightmost columns of any span.
    pub fn col_range(&self) -> Option<(usize, usize)> {
        let x0 = self.spans.iter().map(|s| s.x0).min()?;
        let x1 = self.spans.iter().map(|s| s.x1).max()?;
        Some((x0 as usize, x1 as usize))
    }

    /// Bytes of heap memory held.
    pub fn memory_bytes(&self) -> usize {
        self.row_start.capacity() * 4 + self.spans.capacity() * std::mem::size_of::<Span>()
    }
}

/// Intersection of two sorted, disjoint span lists, each of `b` first shifted by `b_dx` columns
/// and shortened by `b_shrink` at its right end; appended to `out`.
pub fn intersect_into(a: &[Span], b: &[Span], b_dx: i64, b_shrink: u32, out: &mut Vec<Span>) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let bx0 = (i64::from(b[j].x0) + b_dx).max(0);
        let bx1 = (i64::from(b[j].x1) - i64::from(b_shrink) + b_dx).max(0);
        let lo = i64::from(a[i].x0).max(bx0);
        let hi = i64::from(a[i].x1).min(bx1);
        if hi > lo {
            out.push(Span {
                x0: lo as u32,
                x1: hi as u32,
            });
        }
        if i64::from(a[i].x1) < bx1 {
            i += 1;
        } else {
            j += 1;
        }
    }
}

/// Each span of `spans` shortened by `by` columns at its right end; empty ones dropped.
pub fn shrink_right_into(spans: &[Span], by: u32, out: &mut Vec<Span>) {
    out.clear();
    out.extend(
        spans
            .iter()
            .filter(|s| s.len() > by as usize)
            .map(|s| Span {
                x0: s.x0,
                x1: s.x1 - by,
            }),
    );
}

/// Pixels whose centres lie inside `poly` (any simple polygon, either orientation), per row of a
/// `width` x `height` image. Uses the even-odd rule with half-open vertex handling, so shared
/// edges of adjacent polygons assign each pixel to exactly one of them.
pub fn polygon_spans(poly: &[[f64; 2]], width: usize, height: usize) -> Vec<Vec<Span>> {
    let mut rows = vec![Vec::new(); height];
    if poly.len() < 3 {
        return rows;
    }
    let ymin = poly.iter().map(|p| p[1]).fold(f64::INFINITY, f64::min);
    let ymax = poly.iter().map(|p| p[1]).fold(f64::NEG_INFINITY, f64::max);
    let y_lo = ymin.ceil().max(0.0) as usize;
    let y_hi = (ymax.floor() + 1.0).clamp(0.0, height as f64) as usize;
    let mut xs: Vec<f64> = Vec::with_capacity(poly.len());
    for (y, row) in rows.iter_mut().enumerate().take(y_hi).skip(y_lo) {
        let yc = y as f64;
        xs.clear();
        for i in 0..poly.len() {
            let a = poly[i];
            let b = poly[(i + 1) % poly.len()];
            // Half-open in y: an edge covers [min y, max y).
            let (lo, hi) = if a[1] <= b[1] { (a, b) } else { (b, a) };
            if yc >= lo[1] && yc < hi[1] {
                let t = (yc - lo[1]) / (hi[1] - lo[1]);
                xs.push(lo[0] + t * (hi[0] - lo[0]));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixels with xa <= x < xb.
            let x0 = pair[0].ceil().clamp(0.0, width as f64) as u32;
            let x1 = pair[1].ceil().clamp(0.0, width as f64) as u32;
            if x1 > x0 {
                row.push(Span { x0, x1 });
            }
        }
        merge_sorted(row);
    }
    rows
}

/// Sorts and merges overlapping or touching spans in place.
fn merge_sorted(row: &mut Vec<Span>) {
    row.sort_by_key(|s| s.x0);
    let mut out: Vec<Span> = Vec::with_capacity(row.len());
    for s in row.drain(..) {
        match out.last_mut() {
            Some(last) if s.x0 <= last.x1 => last.x1 = last.x1.max(s.x1),
            _ => out.push(s),
        }
    }
    *row = out;
}

/// `a` minus `b`, both sorted and disjoint.
pub fn subtract(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::with_capacity(a.len() + 1);
    for s in a {
        let mut x = s.x0;
        for c in b {
            if c.x1 <= x || c.x0 >= s.x1 {
                continue;
            }
            if c.x0 > x {
                out.push(Span { x0: x, x1: c.x0 });
            }
            x = x.max(c.x1);
        }
        if x < s.x1 {
            out.push(Span { x0: x, x1: s.x1 });
        }
    }
    out
}

/// The facade quadrilateral scaled about its centroid so that each side moves outward by
/// `margin_frac` of the facade's extent, and additionally by at least `margin_px` pixels.
pub fn expanded_quad(corners: &[[f64; 2]; 4], margin_frac: f64, margin_px: f64) -> [[f64; 2]; 4] {
    let cx = corners.iter().map(|c| c[0]).sum::<f64>() / 4.0;
    let cy = corners.iter().map(|c| c[1]).sum::<f64>() / 4.0;
    let mut out = *corners;
    for c in &mut out {
        let dx = c[0] - cx;
        let dy = c[1] - cy;
        let nx = dx * (1.0 + 2.0 * margin_frac);
        let ny = dy * (1.0 + 2.0 * margin_frac);
        // The absolute margin, along each axis, away from the centre.
        c[0] = cx + nx + margin_px * dx.signum();
        c[1] = cy + ny + margin_px * dy.signum();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(poly: &[[f64; 2]], x: f64, y: f64) -> bool {
        // Even-odd ray casting, same half-open rule.
        let mut inside = false;
        for i in 0..poly.len() {
            let a = poly[i];
            let b = poly[(i + 1) % poly.len()];
            let (lo, hi) = if a[1] <= b[1] { (a, b) } else { (b, a) };
            if y >= lo[1] && y < hi[1] {
                let xi = lo[0] + (y - lo[1]) / (hi[1] - lo[1]) * (hi[0] - lo[0]);
                if x < xi {
                    inside = !inside;
                }
            }
        }
        inside
    }

    #[test]
    fn polygon_spans_match_point_in_polygon() {
        let polys: Vec<Vec<[f64; 2]>> = vec![
            vec![[3.2, 1.5], [40.7, 4.0], [37.1, 29.9], [5.0, 27.3]],
            vec![
                [-10.0, -5.0],
                [20.0, 10.0],
                [50.0, -5.0],
                [45.0, 50.0],
                [0.0, 33.3],
            ],
            vec![[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]],
        ];
        let (w, h) = (48, 36);
        for poly in &polys {
            let rows = polygon_spans(poly, w, h);
            for (y, row) in rows.iter().enumerate() {
                for x in 0..w {
                    let in_spans = row
                        .iter()
                        .any(|s| (s.x0 as usize..s.x1 as usize).contains(&x));
                    assert_eq!(
                        in_spans,
                        brute(poly, x as f64, y as f64),
                        "({x},{y}) {poly:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn subtract_and_intersect() {
        let a = [Span { x0: 0, x1: 10 }, Span { x0: 20, x1: 30 }];
        let b = [Span { x0: 5, x1: 22 }];
        assert_eq!(
            subtract(&a, &b),
            vec![Span { x0: 0, x1: 5 }, Span { x0: 22, x1: 30 }]
        );
        let mut out = Vec::new();
        intersect_into(&a, &b, 0, 0, &mut out);
        assert_eq!(out, vec![Span { x0: 5, x1: 10 }, Span { x0: 20, x1: 22 }]);
        out.clear();
        // b shifted right by 3 and shortened by 1: [8, 24).
        intersect_into(&a, &b, 3, 1, &mut out);
        assert_eq!(out, vec![Span { x0: 8, x1: 10 }, Span { x0: 20, x1: 24 }]);
    }

    #[test]
    fn expanded_quad_grows_each_side() {
        let q = [
            [100.0, 100.0],
            [200.0, 100.0],
            [200.0, 300.0],
            [100.0, 300.0],
        ];
        let e = expanded_quad(&q, 0.1, 5.0);
        assert_eq!(e[0], [100.0 - 10.0 - 5.0, 100.0 - 20.0 - 5.0]);
        assert_eq!(e[2], [200.0 + 10.0 + 5.0, 300.0 + 20.0 + 5.0]);
    }
}
