//! Connected components of the sparse foreground, built from runs (never a label image), and the
//! candidate features: weighted centroid, box, area, shape moments (length, width, orientation),
//! contrast and polarity; plus the streak rules (collinear fragments merged, two-lobed streaks
//! split).
//!
//! Foreground "pixels" are the anchors of 2 x 2 windows whose box sum passed the threshold; the
//! window anchored at `(x, y)` covers pixels `x..=x+1`, `y..=y+1`, so its centre is
//! `(x + 0.5, y + 0.5)` in image coordinates (pixel centres on integers).

/// A horizontal run of foreground anchors `[x0, x1)` on row `y`; `off` indexes its box sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub y: u32,
    pub x0: u32,
    pub x1: u32,
    pub off: u32,
}

/// The foreground of one frame, as runs in raster order with their box sums.
#[derive(Debug, Default)]
pub(crate) struct Foreground {
    pub runs: Vec<Run>,
    /// Box sums `s` (16 x the window's mean difference) of every run's anchors, concatenated.
    pub sums: Vec<i16>,
    /// Set when runs were dropped because a cap was reached.
    pub overflow: bool,
}

impl Foreground {
    pub fn clear(&mut self) {
        self.runs.clear();
        self.sums.clear();
        self.overflow = false;
    }

    /// Appends the runs of `mask` (non-zero = foreground) found on row `y`, whose first column
    /// is `x0`, with their box sums from `s`. Stops adding once `max_pixels` sums are stored.
    ///
    /// Reads the mask 64 bytes at a time as a bit set (a dense night foreground has many short
    /// runs: a byte loop mispredicts on every one).
    pub fn add_row(&mut self, y: u32, x0: u32, mask: &[u8], s: &[i16], max_pixels: usize) {
        let n = mask.len();
        // The run in progress (its first index), possibly from an earlier block.
        let mut start: Option<usize> = None;
        let mut base = 0;
        while base < n {
            let len = (n - base).min(64);
            let bits = nonzero_bits(&mask[base..base + len]);
            let mut p = 0;
            while p < len {
                let st = match start {
                    Some(st) => st,
                    None => {
                        let rest = bits >> p;
                        if rest == 0 {
                            break;
                        }
                        p += rest.trailing_zeros() as usize;
                        base + p
                    }
                };
                p += (bits >> p).trailing_ones() as usize;
                if p < 64 {
                    if !self.push_run(y, x0, st, base + p, s, max_pixels) {
                        return;
                    }
                    start = None;
                } else {
                    // All ones to the block's end: the run may go on in the next one.
                    start = Some(st);
                }
            }
            base += len;
        }
        if let Some(st) = start {
            self.push_run(y, x0, st, n, s, max_pixels);
        }
    }

    /// Appends the run `start..end` (indices into the row's `s`); false (and `overflow` set)
    /// when it would take the sums past `max_pixels`.
    #[inline]
    fn push_run(
        &mut self,
        y: u32,
        x0: u32,
        start: usize,
        end: usize,
        s: &[i16],
        max_pixels: usize,
    ) -> bool {
        if self.sums.len() + (end - start) > max_pixels {
            self.overflow = true;
            return false;
        }
        self.runs.push(Run {
            y,
            x0: x0 + start as u32,
            x1: x0 + end as u32,
            off: self.sums.len() as u32,
        });
        self.sums.extend_from_slice(&s[start..end]);
        true
    }

    /// Reference for [`Foreground::add_row`]: a byte loop. Appends the runs of `mask` (any
    /// non-zero byte is foreground) found on row `y`, whose first column is `x0`, with their box
    /// sums from `s`. Stops adding once `max_pixels` sums are stored.
    #[cfg(test)]
    pub fn add_row_ref(&mut self, y: u32, x0: u32, mask: &[u8], s: &[i16], max_pixels: usize) {
        let n = mask.len();
        let mut x = 0;
        while x < n {
            // Skip background quickly, 16 bytes at a time.
            while x + 16 <= n && u128::from_ne_bytes(mask[x..x + 16].try_into().unwrap()) == 0 {
                x += 16;
            }
            while x < n && mask[x] == 0 {
                x += 1;
            }
            if x >= n {
                break;
            }
            let start = x;
            while x < n && mask[x] != 0 {
                x += 1;
            }
            if self.sums.len() + (x - start) > max_pixels {
                self.overflow = true;
                return;
            }
            self.runs.push(Run {
                y,
                x0: x0 + start as u32,
                x1: x0 + x as u32,
                off: self.sums.len() as u32,
            });
            self.sums.extend_from_slice(&s[start..x]);
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.runs.capacity() * std::mem::size_of::<Run>() + self.sums.capacity() * 2
    }
}

/// Bit `j` set when `bytes[j]` is non-zero (at most 64 bytes).
#[inline]
fn nonzero_bits(bytes: &[u8]) -> u64 {
    debug_assert!(bytes.len() <= 64);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // Multiplying bytes of 0 or 1 by this gathers byte j's bit into bit 56 + j.
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut bits = 0u64;
    let mut chunks = bytes.chunks_exact(8);
    let mut shift = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        if w != 0 {
            // High bit of each byte: set when the byte is non-zero.
            let nz = (((w & LOW7) + LOW7) | w) & !LOW7;
            bits |= ((nz >> 7).wrapping_mul(GATHER) >> 56) << shift;
        }
        shift += 8;
    }
    for (j, &b) in chunks.remainder().iter().enumerate() {
        bits |= u64::from(b != 0) << (shift + j);
    }
    bits
}

/// Moments of a set of anchors; adding two sets adds their moments.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Moments {
    pub area: u32,
    /// Sum of |s|.
    pub w: f64,
    pub wx: f64,
    pub wy: f64,
    /// Sum of signed s.
    pub signed: f64,
    pub peak: u32,
    pub x: f64,
    pub y: f64,
    pub xx: f64,
    pub yy: f64,
    pub xy: f64,
    pub x_min: u32,
    pub x_max: u32,
    pub y_min: u32,
    pub y_max: u32,
    pub fragments: u16,
}

impl Moments {
    pub fn new() -> Self {
        Moments {
            x_min: u32::MAX,
            y_min: u32::MAX,
            fragments: 1,
            ..Default::default()
        }
    }

    #[inline]
    pub fn add(&mut self, x: u32, y: u32, s: i16) {
        let a = f64::from(s.unsigned_abs());
        let (fx, fy) = (f64::from(x), f64::from(y));
        self.area += 1;
        self.w += a;
        self.wx += a * fx;
        self.wy += a * fy;
        self.signed += f64::from(s);
        self.peak = self.peak.max(u32::from(s.unsigned_abs()));
        self.x += fx;
        self.y += fy;
        self.xx += fx * fx;
        self.yy += fy * fy;
        self.xy += fx * fy;
        self.x_min = self.x_min.min(x);
        self.x_max = self.x_max.max(x);
        self.y_min = self.y_min.min(y);
        self.y_max = self.y_max.max(y);
    }

    pub fn merge(&mut self, o: &Moments) {
        self.area += o.area;
        self.w += o.w;
        self.wx += o.wx;
        self.wy += o.wy;
        self.signed += o.signed;
        self.peak = self.peak.max(o.peak);
        self.x += o.x;
        self.y += o.y;
        self.xx += o.xx;
        self.yy += o.yy;
        self.xy += o.xy;
        self.x_min = self.x_min.min(o.x_min);
        self.x_max = self.x_max.max(o.x_max);
        self.y_min = self.y_min.min(o.y_min);
        self.y_max = self.y_max.max(o.y_max);
        self.fragments += o.fragments;
    }

    /// Eigen-decomposition of the (unweighted) covariance: (major variance, minor variance,
    /// major-axis angle in radians from +x, towards +y).
    pub fn shape(&self) -> (f64, f64, f64) {
        let n = f64::from(self.area.max(1));
        let mx = self.x / n;
        let my = self.y / n;
        let cxx = (self.xx / n - mx * mx).max(0.0);
        let cyy = (self.yy / n - my * my).max(0.0);
        let cxy = self.xy / n - mx * my;
        let tr = cxx + cyy;
        let det = cxx * cyy - cxy * cxy;
        let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
        let l1 = tr / 2.0 + disc;
        let l2 = (tr / 2.0 - disc).max(0.0);
        let angle = 0.5 * (2.0 * cxy).atan2(cxx - cyy);
        (l1, l2, angle)
    }

    pub fn candidate(&self) -> super::Candidate {
        let (l1, l2, angle) = self.shape();
        // A uniform run of n pixels has variance (n^2 - 1) / 12.
        let length = (12.0 * l1 + 1.0).sqrt();
        let width = (12.0 * l2 + 1.0).sqrt();
        let w = self.w.max(1e-9);
        let area = f64::from(self.area.max(1));
        super::Candidate {
            x_px: self.wx / w + 0.5,
            y_px: self.wy / w + 0.5,
            x_min_px: self.x_min,
            y_min_px: self.y_min,
            x_max_px: self.x_max + 1,
            y_max_px: self.y_max + 1,
            area_px: self.area,
            mass: (self.w / 16.0) as f32,
            contrast: (self.signed / 16.0 / area) as f32,
            peak_contrast: (f64::from(self.peak) / 16.0) as f32,
            polarity: if self.signed >= 0.0 {
                super::Polarity::Brighter
            } else {
                super::Polarity::Darker
            },
            length_px: length as f32,
            width_px: width as f32,
            orientation_rad: angle as f32,
            fragments: self.fragments,
        }
    }
}

/// Union-find over run indices.
#[derive(Debug, Default)]
pub(crate) struct Components {
    parent: Vec<u32>,
    comp_of_root: Vec<u32>,
    /// Per component: its moments and the first of its runs (`next_run` links the rest).
    pub moments: Vec<Moments>,
    pub first_run: Vec<u32>,
    pub next_run: Vec<u32>,
}

const NONE: u32 = u32::MAX;

impl Components {
    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let p = self.parent[i as usize];
            self.parent[i as usize] = self.parent[p as usize];
            i = p;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Keep the smaller index as root: deterministic labels.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }

    /// Labels the runs of `fg` (8-connectivity) and accumulates each component's moments.
    pub fn label(&mut self, fg: &Foreground) {
        let runs = &fg.runs;
        let n = runs.len();
        self.parent.clear();
        self.parent.extend(0..n as u32);
        // Runs are in raster order: sweep each row against the previous one.
        let mut prev = 0..0;
        let mut i = 0;
        while i < n {
            let y = runs[i].y;
            let start = i;
            while i < n && runs[i].y == y {
                i += 1;
            }
            let cur = start..i;
            if !prev.is_empty() && runs[prev.start].y + 1 == y {
                let mut p = prev.start;
                for c in cur.clone() {
                    let (cx0, cx1) = (runs[c].x0, runs[c].x1);
                    // Skip previous runs entirely left of this one (8-connected: touching
                    // diagonally counts, so a previous run ending at cx0 - 1 still connects).
                    while p < prev.end && runs[p].x1 < cx0 {
                        p += 1;
                    }
                    let mut q = p;
                    while q < prev.end && runs[q].x0 <= cx1 {
                        self.union(c as u32, q as u32);
                        q += 1;
                    }
                }
            }
            prev = cur;
        }
        self.comp_of_root.clear();
        self.comp_of_root.resize(n, NONE);
        self.moments.clear();
        self.first_run.clear();
        self.next_run.clear();
        self.next_run.resize(n, NONE);
        let mut last_run: Vec<u32> = Vec::new();
        for (r, &run) in runs.iter().enumerate() {
            let root = self.find(r as u32) as usize;
            let mut c = self.comp_of_root[root];
            if c == NONE {
                c = self.moments.len() as u32;
                self.comp_of_root[root] = c;
                self.moments.push(Moments::new());
                self.first_run.push(r as u32);
                last_run.push(r as u32);
            } else {
                self.next_run[last_run[c as usize] as usize] = r as u32;
                last_run[c as usize] = r as u32;
            }
            let m = &mut self.moments[c as usize];
            let sums = &fg.sums[run.off as usize..(run.off + run.x1 - run.x0) as usize];
            for (k, &s) in sums.iter().enumerate() {
                m.add(run.x0 + k as u32, run.y, s);
            }
        }
    }

    /// Calls `f(x, y, s)` for every anchor of component `c`.
    pub fn for_each_anchor(&self, fg: &Foreground, c: usize, mut f: impl FnMut(u32, u32, i16)) {
        let mut r = self.first_run[c];
        while r != NONE {
            let run = fg.runs[r as usize];
            let sums = &fg.sums[run.off as usize..(run.off + run.x1 - run.x0) as usize];
            for (k, &s) in sums.iter().enumerate() {
                f(run.x0 + k as u32, run.y, s);
            }
            r = self.next_run[r as usize];
        }
    }

    pub fn memory_bytes(&self) -> usize {
        (self.parent.capacity()
            + self.comp_of_root.capacity()
            + self.first_run.capacity()
            + self.next_run.capacity())
            * 4
            + self.moments.capacity() * std::mem::size_of::<Moments>()
    }
}

/// Tries to split a long component in two where its weight along the major axis has a deep
/// valley between two lobes. Returns the two halves' moments.
pub(crate) fn split_two_lobes(
    comps: &Components,
    fg: &Foreground,
    c: usize,
    valley_frac: f64,
) -> Option<(Moments, Moments)> {
    let m = &comps.moments[c];
    let (_, _, angle) = m.shape();
    let (ux, uy) = (angle.cos(), angle.sin());
    let n = f64::from(m.area);
    let (mx, my) = (m.x / n, m.y / n);
    let proj = |x: u32, y: u32| (f64::from(x) - mx) * ux + (f64::from(y) - my) * uy;
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    comps.for_each_anchor(fg, c, |x, y, _| {
        let p = proj(x, y);
        lo = lo.min(p);
        hi = hi.max(p);
    });
    let bins = (hi - lo).floor() as usize + 1;
    if !(6..=4096).contains(&bins) {
        return None;
    }
    let mut hist = vec![0.0f64; bins];
    comps.for_each_anchor(fg, c, |x, y, s| {
        let b = ((proj(x, y) - lo).floor() as usize).min(bins - 1);
        hist[b] += f64::from(s.unsigned_abs());
    });
    // Smooth with [1 1 1] so single-bin quantisation gaps do not count as valleys.
    let sm: Vec<f64> = (0..bins)
        .map(|i| hist[i.saturating_sub(1)] + hist[i] + hist[(i + 1).min(bins - 1)])
        .collect();
    // The deepest valley with a clearly higher peak on both sides.
    let mut best: Option<(usize, f64)> = None;
    let mut left_max = vec![0.0f64; bins];
    let mut acc = 0.0f64;
    for i in 0..bins {
        acc = acc.max(sm[i]);
        left_max[i] = acc;
    }
    let mut right_max = vec![0.0f64; bins];
    acc = 0.0;
    for i in (0..bins).rev() {
        acc = acc.max(sm[i]);
        right_max[i] = acc;
    }
    for i in 2..bins - 2 {
        let lobe = left_max[i].min(right_max[i]);
        if lobe > 0.0 && sm[i] < valley_frac * lobe {
            let depth = sm[i] / lobe;
            if best.is_none_or(|(_, d)| depth < d) {
                best = Some((i, depth));
            }
        }
    }
    let (cut, _) = best?;
    let cut_p = lo + cut as f64 + 0.5;
    let mut a = Moments::new();
    let mut b = Moments::new();
    comps.for_each_anchor(fg, c, |x, y, s| {
        if proj(x, y) < cut_p {
            a.add(x, y, s);
        } else {
            b.add(x, y, s);
        }
    });
    (a.area > 0 && b.area > 0).then_some((a, b))
}

/// Joins brighter and darker components whose boxes come within `gap_px` of each other (the
/// lit and the shaded face of one object: the difference crosses zero between them), as long
/// as the joined box stays within `max_extent_px` on each side. A face may join several of the
/// other polarity, and through them faces of its own. Joined moments go into the first of the
/// group (`alive` cleared for the others). Returns the number of joins.
///
/// Components are swept in order of their top row, and each is compared with the ones after it
/// that start at most its height plus the gap lower, in that order ([`join_faces_ref`] states
/// the rule plainly). Only those whose first column lies within reach can join (a component
/// as wide as `max_extent_px` never joins), so they are looked up in columns of cells
/// `max_extent_px + gap_px + 1` wide: near-linear where thousands of noise components fill the
/// frame at night, and the same joins in the same order as the plain sweep.
pub(crate) fn join_faces(
    moms: &mut [Moments],
    alive: &mut [bool],
    gap_px: i32,
    max_extent_px: u32,
) -> u32 {
    let order = sweep_order(moms, alive);
    if order.len() < 2 || max_extent_px == 0 {
        return 0;
    }
    let n = order.len();
    let gap = i64::from(gap_px.max(0));
    let max_extent = i64::from(max_extent_px);
    // What the sweep reads of each component, in sweep order (compact: the sweep jumps around).
    let mut boxes: Vec<FaceBox> = order
        .iter()
        .map(|&i| FaceBox::of(&moms[i as usize]))
        .collect();
    // Top rows in sweep order, as sorted (joins only ever move a top row up).
    let top: Vec<u32> = boxes.iter().map(|b| b.y_min).collect();
    let mut rank = vec![0u32; moms.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    // Columns of cells by first column: the ranks in each, ascending, and how many of them the
    // sweep has passed. A component whose first column moves left (it took in another) is added
    // to its new cell as well; stale entries are harmless, every pair is tested in full.
    let cell_w = max_extent + gap + 1;
    let x_max_all = boxes.iter().map(|b| i64::from(b.x_min)).max().unwrap_or(0);
    let n_cells = (x_max_all / cell_w + 1).min(MAX_FACE_CELLS) as usize;
    let cell = |x: i64| (x.max(0) / cell_w).min(n_cells as i64 - 1) as usize;
    let mut cells: Vec<Vec<u32>> = vec![Vec::new(); n_cells];
    let mut passed = vec![0usize; n_cells];
    for (r, b) in boxes.iter().enumerate() {
        cells[cell(i64::from(b.x_min))].push(r as u32);
    }
    // Each component's group (the index holding the group's moments), a small union-find.
    let mut group: Vec<u32> = (0..moms.len() as u32).collect();
    let mut joins = 0;
    let mut near: Vec<u32> = Vec::new();
    for k in 0..n {
        let (a, ma) = (order[k], boxes[k]);
        if !ma.within(max_extent) {
            continue;
        }
        let bottom = i64::from(ma.y_max) + gap + 1;
        // Ranks k + 1 .. band all start within reach below (a top row never moves down): the
        // sweep meets every one of them before it stops. Searched from k on (bands are short).
        let mut step = 1;
        let mut lo_r = k + 1;
        while lo_r + step <= n && i64::from(top[lo_r + step - 1]) <= bottom {
            lo_r += step;
            step *= 2;
        }
        let hi_r = (lo_r + step).min(n);
        let band = lo_r + top[lo_r..hi_r].partition_point(|&y| i64::from(y) <= bottom);
        // A component that can join has a box narrower than `max_extent`, so its first column
        // lies in `lo..=hi`; the others fail the column test or the extent test.
        let lo = i64::from(ma.x_min) - gap - max_extent;
        let hi = i64::from(ma.x_max) + gap + 1;
        near.clear();
        for c in cell(lo)..=cell(hi) {
            let list = &cells[c];
            let mut from = passed[c];
            while from < list.len() && list[from] as usize <= k {
                from += 1;
            }
            passed[c] = from;
            near.extend(list[from..].iter().take_while(|&&r| (r as usize) < band));
        }
        near.sort_unstable();
        near.dedup();
        // Then, as the sweep does, on past the band while the tops (moved up by joins) are
        // within reach.
        let (mut next_near, mut next_tail) = (0, band);
        loop {
            let r = if let Some(&r) = near.get(next_near) {
                next_near += 1;
                r as usize
            } else if next_tail < n && i64::from(boxes[next_tail].y_min) <= bottom {
                next_tail += 1;
                next_tail - 1
            } else {
                break;
            };
            if !ma.faces(&boxes[r], gap) {
                continue;
            }
            let (ra, rb) = (group_root(&mut group, a), group_root(&mut group, order[r]));
            if ra == rb {
                continue;
            }
            let joined = boxes[rank[ra as usize] as usize].join(&boxes[rank[rb as usize] as usize]);
            if !joined.within(max_extent) {
                continue;
            }
            let keep = merge_groups(moms, alive, &mut group, ra, rb);
            joins += 1;
            let rk = rank[keep as usize];
            let was = cell(i64::from(boxes[rk as usize].x_min));
            boxes[rk as usize] = FaceBox::of(&moms[keep as usize]);
            let now = cell(i64::from(boxes[rk as usize].x_min));
            if now != was {
                let list = &mut cells[now];
                let at = list.partition_point(|&r| r < rk);
                list.insert(at, rk);
            }
        }
    }
    joins
}

/// What [`join_faces`] reads of a component: its box and polarity.
#[derive(Clone, Copy)]
struct FaceBox {
    x_min: u32,
    x_max: u32,
    y_min: u32,
    y_max: u32,
    bright: bool,
}

impl FaceBox {
    fn of(m: &Moments) -> Self {
        FaceBox {
            x_min: m.x_min,
            x_max: m.x_max,
            y_min: m.y_min,
            y_max: m.y_max,
            bright: m.signed >= 0.0,
        }
    }

    /// True when the box spans less than `max_extent` pixels (from first to last column and
    /// row) on each side.
    fn within(&self, max_extent: i64) -> bool {
        i64::from(self.x_max - self.x_min) < max_extent
            && i64::from(self.y_max - self.y_min) < max_extent
    }

    /// True when `other` is of the other polarity and its columns come within `gap` of these.
    fn faces(&self, other: &FaceBox, gap: i64) -> bool {
        other.bright != self.bright
            && i64::from(other.x_min) <= i64::from(self.x_max) + gap + 1
            && i64::from(self.x_min) <= i64::from(other.x_max) + gap + 1
    }

    /// The box around both (the polarity is this one's).
    fn join(&self, other: &FaceBox) -> FaceBox {
        FaceBox {
            x_min: self.x_min.min(other.x_min),
            x_max: self.x_max.max(other.x_max),
            y_min: self.y_min.min(other.y_min),
            y_max: self.y_max.max(other.y_max),
            bright: self.bright,
        }
    }
}

/// The root of `i` in the union-find `group` (each entry the index of a member of its group
/// nearer the root), halving the path on the way.
fn group_root(group: &mut [u32], mut i: u32) -> u32 {
    while group[i as usize] != i {
        group[i as usize] = group[group[i as usize] as usize];
        i = group[i as usize];
    }
    i
}

/// Joins the groups rooted at `ra` and `rb`: the lower index takes the other's moments and
/// becomes the root; the other is no longer alive. Returns the root.
fn merge_groups(
    moms: &mut [Moments],
    alive: &mut [bool],
    group: &mut [u32],
    ra: u32,
    rb: u32,
) -> u32 {
    let (keep, gone) = (ra.min(rb), ra.max(rb));
    let mg = moms[gone as usize];
    moms[keep as usize].merge(&mg);
    alive[gone as usize] = false;
    group[gone as usize] = keep;
    keep
}

/// At most this many cell columns in [`join_faces`] (the last takes the rest).
const MAX_FACE_CELLS: i64 = 4096;

/// The live components in sweep order (by top row). [`join_faces`] and [`join_faces_ref`] both
/// take it from here: the same (unstable) sort of the same input, so the same order.
fn sweep_order(moms: &[Moments], alive: &[bool]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..moms.len() as u32)
        .filter(|&i| alive[i as usize])
        .collect();
    order.sort_unstable_by_key(|&i| moms[i as usize].y_min);
    order
}

/// Reference for [`join_faces`]: the plain sweep, each component against every later one that
/// starts at most its height plus the gap lower.
#[cfg(test)]
pub(crate) fn join_faces_ref(
    moms: &mut [Moments],
    alive: &mut [bool],
    gap_px: i32,
    max_extent_px: u32,
) -> u32 {
    let order = sweep_order(moms, alive);
    if order.len() < 2 {
        return 0;
    }
    let gap = i64::from(gap_px.max(0));
    let max_extent = i64::from(max_extent_px);
    // Each component's group (the index holding the group's moments), a small union-find.
    let mut group: Vec<u32> = (0..moms.len() as u32).collect();
    let mut joins = 0;
    for (k, &a) in order.iter().enumerate() {
        let ma = FaceBox::of(&moms[a as usize]);
        if !ma.within(max_extent) {
            continue;
        }
        for &b in &order[k + 1..] {
            let mb = FaceBox::of(&moms[b as usize]);
            if i64::from(mb.y_min) > i64::from(ma.y_max) + gap + 1 {
                break;
            }
            if !ma.faces(&mb, gap) {
                continue;
            }
            let (ra, rb) = (group_root(&mut group, a), group_root(&mut group, b));
            if ra == rb {
                continue;
            }
            let joined = FaceBox::of(&moms[ra as usize]).join(&FaceBox::of(&moms[rb as usize]));
            if !joined.within(max_extent) {
                continue;
            }
            merge_groups(moms, alive, &mut group, ra, rb);
            joins += 1;
        }
    }
    joins
}

/// True when two streak-like components lie on one line with a small gap between their ends.
pub(crate) fn collinear_fragments(
    ca: &super::Candidate,
    cb: &super::Candidate,
    max_gap_px: f64,
    max_angle_rad: f64,
) -> bool {
    // Too far apart for any gap to close.
    let reach = 0.5 * f64::from(ca.length_px + cb.length_px) + max_gap_px + 2.0;
    if (cb.x_px - ca.x_px).abs() > reach || (cb.y_px - ca.y_px).abs() > reach {
        return false;
    }
    let long = |c: &super::Candidate| c.length_px >= 2.0 * c.width_px.max(1.0);
    if !long(ca) && !long(cb) {
        return false;
    }
    // The axis of the longer one.
    let axis = if ca.length_px >= cb.length_px { ca } else { cb };
    let (ux, uy) = (
        f64::from(axis.orientation_rad).cos(),
        f64::from(axis.orientation_rad).sin(),
    );
    let ang_diff = |t: f64| {
        let d = (t - f64::from(axis.orientation_rad)).rem_euclid(std::f64::consts::PI);
        d.min(std::f64::consts::PI - d)
    };
    if long(ca)
        && long(cb)
        && (ang_diff(f64::from(ca.orientation_rad)) > max_angle_rad
            || ang_diff(f64::from(cb.orientation_rad)) > max_angle_rad)
    {
        return false;
    }
    let (dx, dy) = (cb.x_px - ca.x_px, cb.y_px - ca.y_px);
    let dist = (dx * dx + dy * dy).sqrt();
    if dist < 1e-9 {
        return true;
    }
    // The centres must lie along the axis...
    let along = (dx * ux + dy * uy).abs();
    let across = (dx * uy - dy * ux).abs();
    if across > (along * max_angle_rad.tan()).max(1.5) {
        return false;
    }
    // ...with a gap between the facing ends no larger than `max_gap_px`.
    let gap = along - 0.5 * f64::from(ca.length_px) - 0.5 * f64::from(cb.length_px);
    gap <= max_gap_px
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fg_from(mask: &[&str]) -> Foreground {
        let mut fg = Foreground::default();
        for (y, row) in mask.iter().enumerate() {
            let m: Vec<u8> = row.bytes().map(|b| u8::from(b == b'#')).collect();
            let s: Vec<i16> = m.iter().map(|&v| i16::from(v) * 160).collect();
            fg.add_row(y as u32, 0, &m, &s, usize::MAX);
        }
        fg
    }

    /// A reference: flood fill over the full mask with 8-connectivity.
    fn flood_count(mask: &[&str]) -> Vec<u32> {
        let h = mask.len();
        let w = mask[0].len();
        let g: Vec<Vec<bool>> = mask
            .iter()
            .map(|r| r.bytes().map(|b| b == b'#').collect())
            .collect();
        let mut seen = vec![vec![false; w]; h];
        let mut sizes = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if g[y][x] && !seen[y][x] {
                    let mut st = vec![(x, y)];
                    seen[y][x] = true;
                    let mut n = 0;
                    while let Some((cx, cy)) = st.pop() {
                        n += 1;
                        for dy in -1i64..=1 {
                            for dx in -1i64..=1 {
                                let (nx, ny) = (cx as i64 + dx, cy as i64 + dy);
                                if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
                                    let (nx, ny) = (nx as usize, ny as usize);
                                    if g[ny][nx] && !seen[ny][nx] {
                                        seen[ny][nx] = true;
                                        st.push((nx, ny));
                                    }
                                }
                            }
                        }
                    }
                    sizes.push(n);
                }
            }
        }
        sizes.sort();
        sizes
    }

    #[test]
    fn add_row_matches_reference() {
        use rand::{RngExt, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for case in 0..3000 {
            let n = [0usize, 1, 7, 8, 63, 64, 65, 128, 200, 1921][case % 10];
            let density = [0.0, 0.05, 0.5, 0.95, 1.0][case / 10 % 5];
            let mask: Vec<u8> = (0..n)
                .map(|_| {
                    if r.random_bool(density) {
                        // Mostly 1, sometimes any non-zero byte.
                        if r.random_bool(0.8) {
                            1
                        } else {
                            r.random_range(1..=255)
                        }
                    } else {
                        0
                    }
                })
                .collect();
            let s: Vec<i16> = (0..n).map(|_| r.random()).collect();
            let max_pixels = [usize::MAX, 0, 5, 100, n / 2][case / 50 % 5];
            let (mut a, mut b) = (Foreground::default(), Foreground::default());
            // Two rows, the second appended after the first (offsets carry over).
            for y in 0..2 {
                a.add_row(y, 17, &mask, &s, max_pixels);
                b.add_row_ref(y, 17, &mask, &s, max_pixels);
            }
            assert_eq!(
                (&a.runs, &a.sums, a.overflow),
                (&b.runs, &b.sums, b.overflow),
                "case {case}"
            );
        }
    }

    #[test]
    fn labels_match_flood_fill() {
        let cases: Vec<Vec<&str>> = vec![
            vec!["#..#..##", ".#..#..#", "..##...#", "#......#"],
            vec!["##.##.##", "........", "#.#.#.#.", ".#.#.#.#"],
            vec!["#######", "#.....#", "#.###.#", "#.....#", "#######"],
            vec!["#.", ".#", "#.", ".#"],
            vec!["........", "........"],
        ];
        for m in &cases {
            let fg = fg_from(m);
            let mut c = Components::default();
            c.label(&fg);
            let mut sizes: Vec<u32> = c.moments.iter().map(|m| m.area).collect();
            sizes.sort();
            assert_eq!(sizes, flood_count(m), "{m:?}");
        }
    }

    #[test]
    fn random_masks_match_flood_fill() {
        use rand::{RngExt, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let rows: Vec<String> = (0..12)
                .map(|_| {
                    (0..20)
                        .map(|_| if r.random_bool(0.35) { '#' } else { '.' })
                        .collect()
                })
                .collect();
            let m: Vec<&str> = rows.iter().map(String::as_str).collect();
            let fg = fg_from(&m);
            let mut c = Components::default();
            c.label(&fg);
            let mut sizes: Vec<u32> = c.moments.iter().map(|m| m.area).collect();
            sizes.sort();
            assert_eq!(sizes, flood_count(&m));
        }
    }

    #[test]
    fn shape_of_a_diagonal_streak() {
        let mut m = Moments::new();
        for i in 0..20u32 {
            m.add(10 + i, 5 + i, 100);
            m.add(11 + i, 5 + i, 100);
        }
        let c = m.candidate();
        assert!((f64::from(c.orientation_rad) - std::f64::consts::FRAC_PI_4).abs() < 0.05);
        assert!(c.length_px > 25.0 && c.length_px < 32.0, "{}", c.length_px);
        assert!(c.width_px < 3.0);
        assert_eq!(c.polarity, super::super::Polarity::Brighter);
        assert!((c.contrast - 100.0 / 16.0).abs() < 1e-6);
    }

    #[test]
    fn join_faces_matches_reference_on_random_components() {
        use rand::{RngExt, SeedableRng};
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut total_joins = 0;
        for case in 0..400 {
            let n = r.random_range(0..300usize);
            let (w, h) = ([40u32, 200, 700][case % 3], [30u32, 150, 400][case % 4 % 3]);
            let moms0: Vec<Moments> = (0..n)
                .map(|_| {
                    let mut m = Moments::new();
                    let (cx, cy) = (r.random_range(0..w), r.random_range(0..h));
                    let reach = [0u32, 1, 2, 4, 30][r.random_range(0..5usize)];
                    let sign = if r.random_bool(0.5) { 1 } else { -1 };
                    for _ in 0..r.random_range(1..6) {
                        let x = cx + r.random_range(0..=reach);
                        let y = cy + r.random_range(0..=reach);
                        // Mostly one polarity, sometimes mixed (a signed sum near zero).
                        let s = sign
                            * r.random_range(1..400i16)
                            * if r.random_bool(0.9) { 1 } else { -1 };
                        m.add(x, y, s);
                    }
                    m
                })
                .collect();
            let alive0: Vec<bool> = (0..n).map(|_| r.random_bool(0.9)).collect();
            let gap = [-1, 0, 2, 5][case % 4];
            let max_extent = [0u32, 1, 8, 40, 1000][case / 4 % 5];
            let (mut ma, mut mb) = (moms0.clone(), moms0);
            let (mut aa, mut ab) = (alive0.clone(), alive0);
            let ja = join_faces(&mut ma, &mut aa, gap, max_extent);
            let jb = join_faces_ref(&mut mb, &mut ab, gap, max_extent);
            assert_eq!(ja, jb, "case {case}");
            assert_eq!(aa, ab, "case {case}");
            assert_eq!(format!("{ma:?}"), format!("{mb:?}"), "case {case}");
            total_joins += ja;
        }
        assert!(total_joins > 1000, "{total_joins}");
    }

    #[test]
    fn two_lobes_split_and_fragments_merge() {
        // Two blobs joined by a faint thin bridge.
        let mut fg = Foreground::default();
        for y in 0..3u32 {
            let mut mask = vec![0u8; 30];
            let mut s = vec![0i16; 30];
            for x in 0..30 {
                let lobe = !(8..22).contains(&x);
                if lobe || y == 1 {
                    mask[x] = 1;
                    s[x] = if lobe { 400 } else { 20 };
                }
            }
            fg.add_row(y, 0, &mask, &s, usize::MAX);
        }
        let mut c = Components::default();
        c.label(&fg);
        assert_eq!(c.moments.len(), 1);
        let (a, b) = split_two_lobes(&c, &fg, 0, 0.25).expect("splits");
        let (ca, cb) = (a.candidate(), b.candidate());
        let (l, r) = if ca.x_px < cb.x_px {
            (ca, cb)
        } else {
            (cb, ca)
        };
        assert!(l.x_px < 8.0 && r.x_px > 21.0, "{l:?} {r:?}");

        // Two collinear pieces of one streak, 2 px apart: merged; a parallel offset one: not.
        let mut p = Moments::new();
        let mut q = Moments::new();
        let mut o = Moments::new();
        for i in 0..8u32 {
            p.add(10 + i, 10 + i, 100);
            q.add(20 + i, 20 + i, 100);
            o.add(20 + i, 30 + i, 100);
        }
        let (p, q, o) = (p.candidate(), q.candidate(), o.candidate());
        assert!(collinear_fragments(&p, &q, 3.0, 0.35));
        assert!(!collinear_fragments(&p, &o, 3.0, 0.35));
    }
}
