//! Ballistic search: a falling object found as the candidates of a window of frames that lie on
//! one parabola with the local gravity, whatever happened in the frames between them.
//!
//! The frame-by-frame [`Tracker`](super::Tracker) needs a detection in most frames of a young
//! track. An object seen in a third of its frames (flickering around the threshold, crossing lit
//! and dark windows, passing behind leaves, crowded out by rain) or in pieces scattered over its
//! outline gets short tracks that die before they are confirmed. Gravity is a strong constraint
//! instead: given two sightings and the acceleration the calibration predicts at that place, the
//! whole path is known, and random clutter rarely lands on it in many frames. Per frame:
//!
//! 1. each live search track takes the free candidate nearest to its parabola's prediction,
//!    within its gate, and is refitted on its recent points; a track without support for
//!    [`SearchConfig::max_gap_s`], or whose prediction left the picture, ends and is returned;
//! 2. every free candidate of the newest frame is paired with the free candidates
//!    [`SearchConfig::pair_frames`] back whose displacement a fall allows (speed limits sideways,
//!    up and down, in metres per second at the local scale). The pair and the local gravity give a
//!    parabola;
//! 3. two cheap tests on a map of occupied 4-px cells per frame (most pairs end here): a
//!    [`SearchConfig::min_between_frac`] share of the frames between the pair, then
//!    [`SearchConfig::min_support`] frames of the whole window, must have a candidate near the
//!    parabola;
//! 4. the supporters (the free candidate nearest the parabola in each frame of the window, within
//!    its gate) are gathered and the parabola refitted with a free acceleration (least squares,
//!    per axis), twice. It must keep [`SearchConfig::min_support`] supporters, a small residual,
//!    a descent of [`SearchConfig::min_descent_gates`] gates, an acceleration that points down
//!    at a plausible fraction of gravity (a light object falls slower, one released in front of
//!    the wall looks faster; rain and birds keep no such acceleration), and a chance under
//!    [`SearchConfig::max_chance`] that clutter of the local density (counted per 16-px cell over
//!    the window) gives as many supporters. It then becomes a live track that holds them.
//!
//! Ends where the clutter is so dense that a window full of it would pass are not tried, and a
//! thin streak longer than the path moves in a frame interval is never a supporter (rain drops
//! near the camera).
//!
//! A candidate serves one search track at most. The tracks found here are judged by the physics
//! like the tracker's, and the pipeline keeps one event per object when both find it.

use std::collections::VecDeque;

use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

use crate::bail;
use crate::error::Result;
use crate::events::TrackPoint;
use crate::motion::Candidate;

/// Free-fall acceleration, m/s^2.
const G_M_S2: f64 = 9.81;

/// Tuning of the ballistic search. Every field has a documented default; unknown fields are
/// refused.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Run the search. Default: true.
    pub enabled: bool,
    /// Frames of candidates searched, seconds. Default: 1.2.
    pub window_s: f64,
    /// Frames with a supporting candidate a new track needs (the pair included). Default: 8.
    pub min_support: usize,
    /// Spacings of the pairs tried, frames back from the newest (an object seen in every
    /// second or third frame pairs at 4, 6 or 9). Default: [4, 6, 9].
    pub pair_frames: Vec<usize>,
    /// Share of the frames between a pair (rounded down, at least one) that must have a
    /// candidate near its parabola before the parabola is tested in full (a cheap first test on
    /// a map of occupied 4-px cells). Default: 0.25.
    pub min_between_frac: f64,
    /// Gate around a prediction, pixels, before the object's size is added. Default: 3.
    pub gate_px: f64,
    /// Share of the object's size (its larger box side) added to the gate: an object seen in
    /// pieces shows them anywhere on its outline. Default: 0.6.
    pub gate_size_frac: f64,
    /// Largest gate, pixels. Default: 20.
    pub max_gate_px: f64,
    /// Fastest motion across gravity, metres/s at the facade's scale. Default: 6.
    pub max_side_m_s: f64,
    /// Fastest upward motion, metres/s. Default: 6.
    pub max_up_m_s: f64,
    /// Fastest downward motion, metres/s. Default: 30.
    pub max_down_m_s: f64,
    /// Least acceleration along gravity, as a fraction of the local gravity. Default: 0.35.
    pub min_accel_frac: f64,
    /// Largest acceleration along gravity, as a fraction of the local gravity. Default: 1.6.
    pub max_accel_frac: f64,
    /// Largest acceleration across gravity, as a fraction of the local gravity. Default: 0.5.
    pub max_side_accel_frac: f64,
    /// Least extent of a new track's supporters along gravity, in gates: a fall moves, clutter
    /// hot spots stay. Default: 3.
    pub min_descent_gates: f64,
    /// Largest root-mean-square distance of the supporters from the fitted parabola, as a share
    /// of the gate. Default: 0.5.
    pub max_rms_gate_frac: f64,
    /// Largest chance that clutter alone supports a new track as well: the probability of at
    /// least its number of supporters when each frame's gate catches a clutter candidate with
    /// the probability the local candidate density gives (Poisson). Default: 1e-8 (thousands of
    /// parabolas are tried per frame).
    pub max_chance: f64,
    /// A live track without support for this long ends, seconds. Default: 0.4.
    pub max_gap_s: f64,
    /// Points of a live track its prediction is fitted on (the most recent). Default: 12.
    pub fit_points: usize,
    /// Most live tracks at once; further finds wait. Default: 32.
    pub max_live: usize,
    /// Most points of one track; a longer one ends. Default: 3000.
    pub max_points: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            enabled: true,
            window_s: 1.2,
            min_support: 8,
            pair_frames: vec![4, 6, 9],
            min_between_frac: 0.25,
            gate_px: 3.0,
            gate_size_frac: 0.6,
            max_gate_px: 20.0,
            max_side_m_s: 6.0,
            max_up_m_s: 6.0,
            max_down_m_s: 30.0,
            min_accel_frac: 0.35,
            max_accel_frac: 1.6,
            max_side_accel_frac: 0.5,
            min_descent_gates: 3.0,
            max_rms_gate_frac: 0.5,
            max_chance: 1e-8,
            max_gap_s: 0.4,
            fit_points: 12,
            max_live: 32,
            max_points: 3000,
        }
    }
}

impl SearchConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("window_s", self.window_s),
            ("gate_px", self.gate_px),
            ("max_gate_px", self.max_gate_px),
            ("max_side_m_s", self.max_side_m_s),
            ("max_down_m_s", self.max_down_m_s),
            ("max_accel_frac", self.max_accel_frac),
            ("max_side_accel_frac", self.max_side_accel_frac),
            ("max_rms_gate_frac", self.max_rms_gate_frac),
            ("max_gap_s", self.max_gap_s),
            ("max_chance", self.max_chance),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                bail!(InvalidInput, "search.{name} must be positive, got {v}");
            }
        }
        let non_negative = [
            ("gate_size_frac", self.gate_size_frac),
            ("max_up_m_s", self.max_up_m_s),
            ("min_accel_frac", self.min_accel_frac),
            ("min_descent_gates", self.min_descent_gates),
            ("min_between_frac", self.min_between_frac),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                bail!(InvalidInput, "search.{name} must be zero or more, got {v}");
            }
        }
        if self.min_accel_frac >= self.max_accel_frac {
            bail!(
                InvalidInput,
                "search.min_accel_frac must be below search.max_accel_frac"
            );
        }
        if self.min_support < 4 || self.fit_points < 4 {
            bail!(
                InvalidInput,
                "search.min_support and search.fit_points must be at least 4"
            );
        }
        if self.pair_frames.is_empty() || self.pair_frames.contains(&0) {
            bail!(
                InvalidInput,
                "search.pair_frames must list spacings of one frame or more"
            );
        }
        if self.max_live == 0 || self.max_points < self.min_support {
            bail!(
                InvalidInput,
                "search.max_live must be positive and search.max_points at least min_support"
            );
        }
        Ok(())
    }
}

/// Free-fall acceleration as it appears in the image, per place: pixels/s^2, a vector pointing
/// along the facade's vertical (which converges in a camera looking up).
#[derive(Clone, Debug)]
pub struct GravityField {
    cell_px: f64,
    cols: usize,
    rows: usize,
    g_px_s2: Vec<[f64; 2]>,
}

impl GravityField {
    /// The same gravity everywhere, straight down the image, `g_px_s2` pixels/s^2.
    pub fn uniform(g_px_s2: f64) -> Self {
        GravityField {
            cell_px: f64::INFINITY,
            cols: 1,
            rows: 1,
            g_px_s2: vec![[0.0, g_px_s2]],
        }
    }

    /// Gravity sampled from `f` at the centre of each `cell_px` cell of a `width_px` x
    /// `height_px` picture.
    pub fn sampled(
        width_px: u32,
        height_px: u32,
        cell_px: u32,
        f: impl Fn([f64; 2]) -> [f64; 2],
    ) -> Self {
        let cell = cell_px.max(1);
        let cols = width_px.div_ceil(cell).max(1) as usize;
        let rows = height_px.div_ceil(cell).max(1) as usize;
        let c = f64::from(cell);
        let mut g_px_s2 = Vec::with_capacity(cols * rows);
        for r in 0..rows {
            for k in 0..cols {
                g_px_s2.push(f([(k as f64 + 0.5) * c, (r as f64 + 0.5) * c]));
            }
        }
        GravityField {
            cell_px: c,
            cols,
            rows,
            g_px_s2,
        }
    }

    /// Gravity at an image point (the nearest cell's), pixels/s^2.
    pub fn at(&self, p: [f64; 2]) -> [f64; 2] {
        let cell = |v: f64, n: usize| ((v / self.cell_px).max(0.0) as usize).min(n - 1);
        self.g_px_s2[cell(p[1], self.rows) * self.cols + cell(p[0], self.cols)]
    }
}

/// A path with constant acceleration: `p + v (t - t0_s) + a (t - t0_s)^2 / 2`, pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Parabola {
    /// Reference time, seconds.
    pub t0_s: f64,
    /// Position at `t0_s`, pixels.
    pub p_px: [f64; 2],
    /// Velocity at `t0_s`, pixels/s.
    pub v_px_s: [f64; 2],
    /// Acceleration, pixels/s^2.
    pub a_px_s2: [f64; 2],
}

impl Parabola {
    /// Position at `t_s`, pixels.
    pub fn at(&self, t_s: f64) -> [f64; 2] {
        let dt = t_s - self.t0_s;
        [0, 1].map(|i| self.p_px[i] + self.v_px_s[i] * dt + 0.5 * self.a_px_s2[i] * dt * dt)
    }

    /// Velocity at `t_s`, pixels/s.
    pub fn velocity(&self, t_s: f64) -> [f64; 2] {
        let dt = t_s - self.t0_s;
        [0, 1].map(|i| self.v_px_s[i] + self.a_px_s2[i] * dt)
    }

    /// The least-squares parabola through timed points (per axis, independent); None with fewer
    /// than three distinct times.
    pub fn fit(points: &[(f64, [f64; 2])]) -> Option<Parabola> {
        let n = points.len();
        if n < 3 {
            return None;
        }
        let t0_s = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
        let mut m = Matrix3::<f64>::zeros();
        let mut b = [Vector3::<f64>::zeros(); 2];
        for &(t, p) in points {
            let d = t - t0_s;
            let row = Vector3::new(1.0, d, 0.5 * d * d);
            m += row * row.transpose();
            for i in 0..2 {
                b[i] += row * p[i];
            }
        }
        let lu = m.lu();
        let x = lu.solve(&b[0])?;
        let y = lu.solve(&b[1])?;
        let ok = |v: &Vector3<f64>| v.iter().all(|c| c.is_finite());
        (ok(&x) && ok(&y) && m.determinant().abs() > 1e-12).then(|| Parabola {
            t0_s,
            p_px: [x[0], y[0]],
            v_px_s: [x[1], y[1]],
            a_px_s2: [x[2], y[2]],
        })
    }
}

/// A track the search found, returned when it ended.
#[derive(Clone, Debug)]
pub struct SearchTrack {
    /// Unique among this search's tracks, increasing.
    pub id: u64,
    /// Its detections, one per frame it was seen in, in time order.
    pub points: Vec<TrackPoint>,
}

/// Counters of the search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SearchStats {
    /// Pairs whose parabola was tested.
    pub pairs: u64,
    /// Parabolas refitted (enough support in the first count).
    pub refits: u64,
    /// Tracks found.
    pub found: u64,
    /// Finds skipped at the cap on live tracks.
    pub capped: u64,
}

/// One candidate as the search sees it.
#[derive(Clone, Copy, Debug)]
struct Spot {
    point: TrackPoint,
    /// The larger box side, pixels.
    size_px: f64,
    /// Length along the major axis and width across it, pixels.
    length_px: f64,
    width_px: f64,
}

/// Widest candidate, pixels, that counts as a thin motion-blur streak (see
/// [`FrameSpots::nearest_free`]).
const THIN_STREAK_PX: f64 = 3.0;

/// Elongation (length / width) from which a thin candidate is a streak.
const STREAK_ELONGATION: f64 = 2.5;

/// The candidates of one frame, sorted by row, and which ones a track holds.
struct FrameSpots {
    t_s: f64,
    spots: Vec<Spot>,
    claimed: Vec<bool>,
    /// Which [`OCCUPANCY_CELL_PX`] cells hold a candidate's centre.
    occupied: Occupancy,
}

/// Side of the cells of [`Occupancy`], pixels.
const OCCUPANCY_CELL_PX: f64 = 4.0;

/// A bit per cell of the picture: does a candidate's centre lie in it?
struct Occupancy {
    cols: usize,
    rows: usize,
    words: Vec<u64>,
}

impl Occupancy {
    fn new(width_px: f64, height_px: f64) -> Self {
        let cols = (width_px / OCCUPANCY_CELL_PX).ceil().max(1.0) as usize;
        let rows = (height_px / OCCUPANCY_CELL_PX).ceil().max(1.0) as usize;
        Occupancy {
            cols,
            rows,
            words: vec![0; (cols * rows).div_ceil(64)],
        }
    }

    fn clear(&mut self) {
        self.words.fill(0);
    }

    fn cell(v: f64, n: usize) -> Option<usize> {
        (v >= 0.0 && v < n as f64 * OCCUPANCY_CELL_PX).then_some((v / OCCUPANCY_CELL_PX) as usize)
    }

    fn mark(&mut self, p: [f64; 2]) {
        if let (Some(c), Some(r)) = (Self::cell(p[0], self.cols), Self::cell(p[1], self.rows)) {
            let i = r * self.cols + c;
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    /// True when some cell overlapping the square of half-side `r_px` around `p` is marked (a
    /// superset of the candidates within `r_px`).
    fn any_near(&self, p: [f64; 2], r_px: f64) -> bool {
        // Truncation is the floor here: negative ends are clamped first.
        let span = |v: f64, n: usize| {
            let hi = v + r_px;
            if hi < 0.0 {
                return None;
            }
            let lo = ((v - r_px).max(0.0) / OCCUPANCY_CELL_PX) as usize;
            let hi = ((hi / OCCUPANCY_CELL_PX) as usize).min(n - 1);
            (lo <= hi).then_some((lo, hi))
        };
        let (Some((c0, c1)), Some((r0, r1))) = (span(p[0], self.cols), span(p[1], self.rows))
        else {
            return false;
        };
        (r0..=r1).any(|r| self.any_in(r * self.cols + c0, r * self.cols + c1))
    }

    /// True when a bit in `lo..=hi` is set (a row's run of cells: a word or two).
    fn any_in(&self, lo: usize, hi: usize) -> bool {
        let (w0, w1) = (lo / 64, hi / 64);
        let low_mask = u64::MAX << (lo % 64);
        let high_mask = u64::MAX >> (63 - hi % 64);
        if w0 == w1 {
            return self.words[w0] & low_mask & high_mask != 0;
        }
        self.words[w0] & low_mask != 0
            || self.words[w0 + 1..w1].iter().any(|&w| w != 0)
            || self.words[w1] & high_mask != 0
    }
}

impl FrameSpots {
    /// The free spot nearest to `model`'s position in this frame within `gate_px`. A thin
    /// streak is a blur of one exposure: it is refused when it is longer than the path moves in
    /// a whole frame interval (`frame_dt_s`) plus its width (rain drops near the camera streak
    /// far more than a falling object their chain might imitate).
    fn nearest_free(&self, model: &Parabola, gate_px: f64, frame_dt_s: f64) -> Option<usize> {
        let p = model.at(self.t_s);
        let v = model.velocity(self.t_s);
        let max_streak_px = v[0].hypot(v[1]) * frame_dt_s + 2.0;
        let lo = self
            .spots
            .partition_point(|s| s.point.y_px < p[1] - gate_px);
        let mut best: Option<(usize, f64)> = None;
        for (i, s) in self.spots.iter().enumerate().skip(lo) {
            let dy = s.point.y_px - p[1];
            if dy > gate_px {
                break;
            }
            let d2 = (s.point.x_px - p[0]).powi(2) + dy * dy;
            let streak = s.width_px <= THIN_STREAK_PX
                && s.length_px >= STREAK_ELONGATION * s.width_px
                && s.length_px > max_streak_px + s.width_px;
            if d2 <= gate_px * gate_px
                && !self.claimed[i]
                && !streak
                && best.is_none_or(|b| d2 < b.1)
            {
                best = Some((i, d2));
            }
        }
        best.map(|b| b.0)
    }
}

/// A track being followed.
struct Live {
    id: u64,
    points: Vec<TrackPoint>,
    model: Parabola,
    gate_px: f64,
    last_support_s: f64,
}

/// The ballistic search of one camera.
pub struct BallisticSearch {
    cfg: SearchConfig,
    gravity: GravityField,
    width_px: f64,
    height_px: f64,
    frames: VecDeque<FrameSpots>,
    /// The frame interval, seconds (the latest, within 1/120 .. 0.2 s).
    frame_dt_s: f64,
    /// Candidates per [`DENSITY_CELL_PX`] cell over the frames of the window.
    density: DensityGrid,
    live: Vec<Live>,
    next_id: u64,
    stats: SearchStats,
}

/// Side of the cells the candidate density is counted in, pixels.
const DENSITY_CELL_PX: f64 = 16.0;

/// Candidate counts per cell over the frames of the window: the local clutter.
struct DensityGrid {
    cols: usize,
    rows: usize,
    counts: Vec<u32>,
    /// Frames counted that had candidates (a blind frame adds none).
    frames: u32,
}

impl DensityGrid {
    fn new(width_px: u32, height_px: u32) -> Self {
        let n = |v: u32| (f64::from(v) / DENSITY_CELL_PX).ceil().max(1.0) as usize;
        let (cols, rows) = (n(width_px), n(height_px));
        DensityGrid {
            cols,
            rows,
            counts: vec![0; cols * rows],
            frames: 0,
        }
    }

    fn cell(&self, p: [f64; 2]) -> (usize, usize) {
        let c = |v: f64, n: usize| ((v / DENSITY_CELL_PX).max(0.0) as usize).min(n - 1);
        (c(p[0], self.cols), c(p[1], self.rows))
    }

    /// Adds (`add`) or removes a frame's spots.
    fn count(&mut self, spots: &[Spot], add: bool) {
        if spots.is_empty() {
            return;
        }
        for s in spots {
            let (c, r) = self.cell([s.point.x_px, s.point.y_px]);
            let n = &mut self.counts[r * self.cols + c];
            *n = if add { *n + 1 } else { n.saturating_sub(1) };
        }
        self.frames = if add {
            self.frames + 1
        } else {
            self.frames.saturating_sub(1)
        };
    }

    /// Chance that a gate of `gate_px` around `p` catches some clutter candidate in one frame:
    /// the larger of the density of its cell (less the object's own candidate) and of the 3 x 3
    /// cells around it (clutter comes in hot spots: a textured window edge, a swaying branch),
    /// Poisson.
    fn hit_chance(&self, p: [f64; 2], gate_px: f64) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        let (c, r) = self.cell(p);
        let own = self.counts[r * self.cols + c];
        let mut n = 0u32;
        let mut cells = 0u32;
        for rr in r.saturating_sub(1)..=(r + 1).min(self.rows - 1) {
            for cc in c.saturating_sub(1)..=(c + 1).min(self.cols - 1) {
                n += self.counts[rr * self.cols + cc];
                cells += 1;
            }
        }
        // The cell's own count less one: the object itself passes through it.
        let per_cell = (f64::from(n) / f64::from(cells)).max(f64::from(own.saturating_sub(1)));
        let per_px2 = per_cell / (DENSITY_CELL_PX * DENSITY_CELL_PX * f64::from(self.frames));
        1.0 - (-per_px2 * std::f64::consts::PI * gate_px * gate_px).exp()
    }
}

/// Probability of `k` or more events of a Poisson count with mean `lambda`.
fn poisson_tail(k: usize, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    // The terms from k on, summed until they no longer matter.
    let ln_first = k as f64 * lambda.ln() - lambda - ln_factorial(k);
    let mut term = 1.0;
    let mut sum = 0.0;
    for j in k.. {
        sum += term;
        term *= lambda / (j + 1) as f64;
        if term < 1e-12 * sum {
            break;
        }
    }
    (ln_first + sum.ln()).exp().min(1.0)
}

/// ln(n!).
fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|i| (i as f64).ln()).sum()
}

impl BallisticSearch {
    /// A search over `width_px` x `height_px` frames with the camera's gravity field; refuses a
    /// bad configuration.
    pub fn new(
        cfg: SearchConfig,
        gravity: GravityField,
        width_px: u32,
        height_px: u32,
    ) -> Result<Self> {
        cfg.validate()?;
        Ok(BallisticSearch {
            cfg,
            gravity,
            width_px: f64::from(width_px),
            height_px: f64::from(height_px),
            frames: VecDeque::new(),
            frame_dt_s: 0.04,
            density: DensityGrid::new(width_px, height_px),
            live: Vec::new(),
            next_id: 1,
            stats: SearchStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> SearchStats {
        self.stats
    }

    /// Live tracks' points (for diagnostics).
    pub fn live_points(&self) -> impl Iterator<Item = &[TrackPoint]> {
        self.live.iter().map(|l| &l.points[..])
    }

    /// A frame the motion detector could not see: no candidates, no search.
    pub fn skip(&mut self, t_s: f64) -> Vec<SearchTrack> {
        if !self.cfg.enabled {
            return Vec::new();
        }
        let mut ended = self.restart_if_time_went_back(t_s);
        self.push_frame(t_s, &[]);
        ended.extend(self.extend_live());
        ended
    }

    /// One frame's candidates; returns the tracks that ended.
    pub fn update(&mut self, t_s: f64, candidates: &[Candidate]) -> Vec<SearchTrack> {
        if !self.cfg.enabled {
            return Vec::new();
        }
        let mut ended = self.restart_if_time_went_back(t_s);
        self.push_frame(t_s, candidates);
        ended.extend(self.extend_live());
        self.search();
        ended
    }

    /// A frame time at or before the last one (a stream that restarted its clock) ends every
    /// live track and empties the window: the paths cannot span the jump.
    fn restart_if_time_went_back(&mut self, t_s: f64) -> Vec<SearchTrack> {
        match self.frames.back() {
            Some(last) if t_s <= last.t_s => self.flush(),
            _ => Vec::new(),
        }
    }

    /// Ends every live track (end of input) and returns them.
    pub fn flush(&mut self) -> Vec<SearchTrack> {
        while let Some(f) = self.frames.pop_front() {
            self.density.count(&f.spots, false);
        }
        self.live
            .drain(..)
            .map(|l| SearchTrack {
                id: l.id,
                points: l.points,
            })
            .collect()
    }

    fn push_frame(&mut self, t_s: f64, candidates: &[Candidate]) {
        if let Some(last) = self.frames.back() {
            let dt = t_s - last.t_s;
            if dt > 0.0 {
                self.frame_dt_s = dt.clamp(1.0 / 120.0, 0.2);
            }
        }
        let mut spots: Vec<Spot> = candidates
            .iter()
            .map(|c| Spot {
                point: TrackPoint {
                    t_s,
                    x_px: c.x_px,
                    y_px: c.y_px,
                    w_px: c.w_px(),
                    h_px: c.h_px(),
                },
                size_px: c.w_px().max(c.h_px()),
                length_px: f64::from(c.length_px),
                width_px: f64::from(c.width_px),
            })
            .collect();
        spots.sort_by(|a, b| a.point.y_px.total_cmp(&b.point.y_px));
        self.density.count(&spots, true);
        let claimed = vec![false; spots.len()];
        // The oldest frame's map is reused.
        let mut occupied = None;
        while self
            .frames
            .front()
            .is_some_and(|f| t_s - f.t_s >= self.cfg.window_s)
        {
            if let Some(f) = self.frames.pop_front() {
                self.density.count(&f.spots, false);
                occupied = Some(f.occupied);
            }
        }
        let mut occupied =
            occupied.unwrap_or_else(|| Occupancy::new(self.width_px, self.height_px));
        occupied.clear();
        for s in &spots {
            occupied.mark([s.point.x_px, s.point.y_px]);
        }
        self.frames.push_back(FrameSpots {
            t_s,
            spots,
            claimed,
            occupied,
        });
    }

    /// Extends the live tracks into the newest frame; returns those that ended.
    fn extend_live(&mut self) -> Vec<SearchTrack> {
        let Some(frame) = self.frames.back_mut() else {
            return Vec::new();
        };
        let t_s = frame.t_s;
        let frame_dt_s = self.frame_dt_s;
        let mut ended = Vec::new();
        // Older tracks choose first.
        let mut k = 0;
        while k < self.live.len() {
            let l = &mut self.live[k];
            let pred = l.model.at(t_s);
            if let Some(i) = frame.nearest_free(&l.model, l.gate_px, frame_dt_s) {
                frame.claimed[i] = true;
                l.points.push(frame.spots[i].point);
                l.last_support_s = t_s;
                if let Some(m) = refit(&self.cfg, &self.gravity, &l.points) {
                    l.model = m;
                }
            }
            let margin = l.gate_px;
            let outside = pred[1] > self.height_px + margin
                || pred[0] < -margin
                || pred[0] > self.width_px + margin;
            if outside
                || t_s - l.last_support_s > self.cfg.max_gap_s
                || l.points.len() >= self.cfg.max_points
            {
                let l = self.live.swap_remove(k);
                ended.push(SearchTrack {
                    id: l.id,
                    points: l.points,
                });
            } else {
                k += 1;
            }
        }
        ended.sort_by_key(|t| t.id);
        ended
    }

    /// Looks for new tracks ending at the newest frame's free candidates.
    fn search(&mut self) {
        let newest = self.frames.len() - 1;
        let n_spots = self.frames[newest].spots.len();
        for e in 0..n_spots {
            if self.frames[newest].claimed[e] {
                continue;
            }
            if self.live.len() >= self.cfg.max_live {
                self.stats.capped += 1;
                return;
            }
            if self.too_cluttered(&self.frames[newest].spots[e]) {
                continue;
            }
            for ki in 0..self.cfg.pair_frames.len() {
                let k = self.cfg.pair_frames[ki];
                if k > newest {
                    break;
                }
                if self.try_pairs(newest - k, newest, e) {
                    break;
                }
            }
        }
    }

    /// True where clutter is so dense that a full window of it would pass the chance test: no
    /// track can be found from this end (it may be from where the object goes next).
    fn too_cluttered(&self, end: &Spot) -> bool {
        let cfg = &self.cfg;
        let gate_px = (cfg.gate_px + cfg.gate_size_frac * end.size_px).min(cfg.max_gate_px);
        let p = [end.point.x_px, end.point.y_px];
        let chance = self.density.hit_chance(p, gate_px) * self.frames.len() as f64;
        poisson_tail(cfg.min_support, chance) > cfg.max_chance
    }

    /// Tries every free candidate of frame `s` with candidate `e` of frame `n` (the newest);
    /// true when a track was found.
    fn try_pairs(&mut self, s: usize, n: usize, e: usize) -> bool {
        let cfg = &self.cfg;
        let end = self.frames[n].spots[e];
        let pe = [end.point.x_px, end.point.y_px];
        let dt = self.frames[n].t_s - self.frames[s].t_s;
        if dt <= 0.0 {
            return false;
        }
        let g = self.gravity.at(pe);
        let g_norm = g[0].hypot(g[1]);
        if g_norm <= 0.0 {
            return false;
        }
        let down = [g[0] / g_norm, g[1] / g_norm];
        let px_per_m = g_norm / G_M_S2;
        let fall_px = 0.5 * g_norm * dt * dt;
        // Where the start may lie, as a row range and a column reach (bounding the speed box).
        let reach_down = cfg.max_down_m_s * px_per_m * dt + fall_px;
        let reach_up = cfg.max_up_m_s * px_per_m * dt;
        let reach_side = cfg.max_side_m_s * px_per_m * dt + fall_px;
        let start = &self.frames[s];
        let lo = start
            .spots
            .partition_point(|q| q.point.y_px < pe[1] - reach_down);
        let mut found = None;
        for (i, q) in start.spots.iter().enumerate().skip(lo) {
            if q.point.y_px > pe[1] + reach_up {
                break;
            }
            if start.claimed[i] || (q.point.x_px - pe[0]).abs() > reach_side {
                continue;
            }
            let ps = [q.point.x_px, q.point.y_px];
            // The start's velocity given the pair and the local gravity.
            let v = [0, 1].map(|a| (pe[a] - ps[a]) / dt - 0.5 * g[a] * dt);
            let v_down = v[0] * down[0] + v[1] * down[1];
            let v_side = (v[0] * down[1] - v[1] * down[0]).abs();
            let v_end = v_down + g_norm * dt;
            if v_side > cfg.max_side_m_s * px_per_m
                || v_down < -cfg.max_up_m_s * px_per_m
                || v_end > cfg.max_down_m_s * px_per_m
            {
                continue;
            }
            self.stats.pairs += 1;
            let model = Parabola {
                t0_s: start.t_s,
                p_px: ps,
                v_px_s: v,
                a_px_s2: g,
            };
            let size_px = q.size_px.max(end.size_px);
            let gate_px = (cfg.gate_px + cfg.gate_size_frac * size_px).min(cfg.max_gate_px);
            // First test: candidates near the parabola in the frames between the pair.
            let between = n - s - 1;
            let needed = ((cfg.min_between_frac * between as f64) as usize).max(1);
            let mut misses_left = between - needed.min(between);
            let mut support = 0;
            for f in self.frames.range(s + 1..n) {
                if f.occupied.any_near(model.at(f.t_s), gate_px) {
                    support += 1;
                } else if misses_left == 0 {
                    break;
                } else {
                    misses_left -= 1;
                }
            }
            if support < needed {
                continue;
            }
            // Second test: enough frames of the window with a candidate near it at all.
            let mut misses_left = self.frames.len().saturating_sub(cfg.min_support);
            let mut near = 0;
            for f in &self.frames {
                if f.occupied.any_near(model.at(f.t_s), gate_px) {
                    near += 1;
                    if near >= cfg.min_support {
                        break;
                    }
                } else if misses_left == 0 {
                    break;
                } else {
                    misses_left -= 1;
                }
            }
            if near < cfg.min_support {
                continue;
            }
            self.stats.refits += 1;
            if let Some((model, claims)) = self.confirm(model, gate_px) {
                found = Some((model, gate_px, claims));
                break;
            }
        }
        let Some((model, gate_px, claims)) = found else {
            return false;
        };
        let points = self.points_of(&claims);
        for (j, i) in claims {
            self.frames[j].claimed[i] = true;
        }
        self.stats.found += 1;
        let last_support_s = points.last().map_or(0.0, |p| p.t_s);
        self.live.push(Live {
            id: self.next_id,
            points,
            model,
            gate_px,
            last_support_s,
        });
        self.next_id += 1;
        true
    }

    /// The points of (frame, spot) pairs of the window.
    fn points_of(&self, claims: &[(usize, usize)]) -> Vec<TrackPoint> {
        claims
            .iter()
            .map(|&(j, i)| self.frames[j].spots[i].point)
            .collect()
    }

    /// Gathers a parabola's supporters over the window and refits, twice; the refitted model and
    /// the (frame, spot) pairs the track would claim, when it holds.
    fn confirm(
        &self,
        mut model: Parabola,
        gate_px: f64,
    ) -> Option<(Parabola, Vec<(usize, usize)>)> {
        let cfg = &self.cfg;
        let mut claims = Vec::new();
        let mut points = Vec::new();
        for _ in 0..2 {
            claims.clear();
            for (j, f) in self.frames.iter().enumerate() {
                if let Some(i) = f.nearest_free(&model, gate_px, self.frame_dt_s) {
                    claims.push((j, i));
                }
            }
            if claims.len() < cfg.min_support {
                return None;
            }
            points = self.points_of(&claims);
            model = fit_checked(cfg, &self.gravity, &points)?;
        }
        let rms_px = rms_distance(&model, &points);
        if rms_px > cfg.max_rms_gate_frac * gate_px {
            return None;
        }
        let g = self.gravity.at(model.at(model.t0_s));
        let g_norm = g[0].hypot(g[1]);
        let depth = |p: &TrackPoint| (p.x_px * g[0] + p.y_px * g[1]) / g_norm;
        let (lo, hi) = points
            .iter()
            .map(depth)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| {
                (lo.min(d), hi.max(d))
            });
        if hi - lo < cfg.min_descent_gates * gate_px {
            return None;
        }
        // As many supporters by chance, given the clutter along the path?
        let lambda: f64 = self
            .frames
            .iter()
            .filter(|f| !f.spots.is_empty())
            .map(|f| self.density.hit_chance(model.at(f.t_s), gate_px))
            .sum();
        (poisson_tail(claims.len(), lambda) <= cfg.max_chance).then_some((model, claims))
    }
}

/// The parabola fitted to `points` when its acceleration is a fall's (see the module
/// documentation).
fn fit_checked(
    cfg: &SearchConfig,
    gravity: &GravityField,
    points: &[TrackPoint],
) -> Option<Parabola> {
    let timed: Vec<(f64, [f64; 2])> = points.iter().map(|p| (p.t_s, [p.x_px, p.y_px])).collect();
    let m = Parabola::fit(&timed)?;
    let g = gravity.at(m.at(m.t0_s));
    let g_norm = g[0].hypot(g[1]);
    if g_norm <= 0.0 {
        return None;
    }
    let a = m.a_px_s2;
    let along = (a[0] * g[0] + a[1] * g[1]) / (g_norm * g_norm);
    let across = (a[0] * g[1] - a[1] * g[0]).abs() / (g_norm * g_norm);
    (along >= cfg.min_accel_frac
        && along <= cfg.max_accel_frac
        && across <= cfg.max_side_accel_frac)
        .then_some(m)
}

/// A live track's model refitted on its most recent points (None: keep the old one).
fn refit(cfg: &SearchConfig, gravity: &GravityField, points: &[TrackPoint]) -> Option<Parabola> {
    let from = points.len().saturating_sub(cfg.fit_points);
    fit_checked(cfg, gravity, &points[from..])
}

/// Root-mean-square distance of points from a parabola, pixels.
fn rms_distance(model: &Parabola, points: &[TrackPoint]) -> f64 {
    if points.is_empty() {
        return 0.0;
    }
    let sum: f64 = points
        .iter()
        .map(|p| {
            let q = model.at(p.t_s);
            (p.x_px - q[0]).powi(2) + (p.y_px - q[1]).powi(2)
        })
        .sum();
    (sum / points.len() as f64).sqrt()
}

#[cfg(test)]
mod tests;
