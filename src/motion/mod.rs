//! Motion detection at full resolution over the calibrated facade region: a per-pixel background
//! model with illumination, noise, flicker and shake handling, and the candidates (connected
//! components of the foreground) that the tracker consumes.
//!
//! # Per frame
//! 1. **Pre-pass** (reads the region once): per-tile sums of the frame for the illumination gains,
//!    and row/column projection profiles for the shake estimate.
//! 2. **Shake**: the frame's global motion from the profiles ([`Shift`]: a translation and a
//!    small rotation, from the lags of the profiles' halves). Motions that move no corner of the
//!    region by [`MotionConfig::shake_min_px`] are ignored; larger ones are compensated by
//!    registering the frame onto the background (bilinear resampling, see `shake.rs`) and
//!    processing the registered frame as a still one, background update included, so a camera
//!    that shakes for minutes keeps its model; a run of shaken frames whose mean shift stays a
//!    pixel or more away from zero for [`MotionConfig::shake_rebase_frames`] frames means the
//!    camera moved: the background is re-based.
//! 3. **Illumination**: each tile's gain (frame mean / background mean), median-filtered over the
//!    3 x 3 tile neighbourhood so a large object cannot bias its own tile, then interpolated
//!    between tile centres into a per-pixel gain (no seams). A median gain change over
//!    [`MotionConfig::illumination_jump`] (exposure jump, lightning) re-bases the background
//!    instead of flooding candidates.
//! 4. **Main pass** (the only other pass over the pixels; 8/16-bit lanes on row buffers that stay
//!    in L1): the difference `d` of each pixel against the gain-compensated 8-bit background; the
//!    2 x 2 box sum of `d` (a 2-px object's energy collected, noise halved); the tile threshold
//!    test `box > t_tile` or `box < -t_dark` (`k_sigma` x the tile noise, each side its own when
//!    rain inflates one); on every other row (rows take turns) the background
//!    update (stochastically rounded running average: fast where the pixel looks like
//!    background, slow where it looks like foreground) and the variability update; the count of
//!    box sums over 2.5 x the tile noise, from which each tile's noise is re-estimated (a tail
//!    measure: robust to objects, honest about the heavy tails of compressed video). Foreground
//!    runs are recorded as they are found, after the per-pixel variability test
//!    (`|box| > var_mult x` the largest running mean |d| of the window's pixels: flicker, sway),
//!    which runs only where the tile test passed.
//! 5. **Frame events**: a foreground over [`MotionConfig::max_foreground_fraction`] of the region
//!    is a flood, and many tiles stepping at once a codec refresh (key frame): both re-base the
//!    background and give no candidates for the frame.
//! 6. **Candidates**: runs labelled by union-find; moments give centroid (weighted by |box|),
//!    box, area, length, width, orientation, contrast and polarity; collinear streak fragments
//!    are merged and two-lobed streaks split; too-small, too-large and over-the-cap components are
//!    counted and dropped.
//!
//! Coordinates: pixel centres sit on integer coordinates; a candidate's `x_px`, `y_px` are
//! sub-pixel positions in the background's frame, which is the calibration's: on a frame whose
//! shake was compensated the estimated shift is removed from them.
//!
//! See `docs/motion.md` for costs, memory and tuning.

pub mod kernels;
mod label;
pub mod roi;
mod shake;

use serde::{Deserialize, Serialize};

use self::kernels::{ThresholdParams, UpdateParams};
use self::label::{Components, Foreground, Moments};
use self::roi::{RowSpans, Span};
use self::shake::Profiles;
pub use self::shake::Shift;
use crate::bail;
use crate::calib::Calibration;
use crate::error::Result;
use crate::ingest::Luma;

/// Tuning of the motion detector. Every field has a documented default; unknown fields are
/// refused.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Each side of the facade quadrilateral is moved outward by this fraction of the facade's
    /// extent to catch objects thrown outward and falling past its edges. Default: 0.25.
    pub margin_frac: f64,
    /// And by at least this many pixels. Default: 48.
    pub margin_px: f64,
    /// Width of an illumination/noise tile, pixels. Default: 128 (the kernels run per tile
    /// segment: wider tiles mean fewer, longer calls).
    pub tile_w_px: u32,
    /// Height of an illumination/noise tile, pixels. Default: 32.
    pub tile_h_px: u32,
    /// Foreground threshold in noise standard deviations of the 2 x 2 box sum. Default: 5.0.
    pub k_sigma: f64,
    /// Lowest threshold, as the mean grey-level difference over a 2 x 2 window. Default: 5.0.
    pub min_threshold_grey: f64,
    /// Assumed pixel noise (grey levels) before the tiles have measured theirs. Default: 2.0.
    pub initial_noise_grey: f64,
    /// Tile noise estimates move this fraction towards each frame's measurement. Default: 0.1.
    pub noise_rate: f64,
    /// Background learning rate per frame where a pixel looks like background, in
    /// (0, 0.24]. Default: 1/32 (~1.3 s at 25 fps).
    pub bg_rate: f64,
    /// Background learning rate per frame where a pixel looks like foreground, in [0, 0.24].
    /// Default: 1/64 (a slow object leaks little; ghosts fade in a few seconds).
    pub fg_rate: f64,
    /// Learning rate per frame of each pixel's variability (running mean of |difference|), in
    /// (0, 0.24]. Default: 1/48 (flicker, sway and the dancing block noise of compressed video in
    /// flat areas are learnt in a second or two; an object must dwell on a pixel ~8 frames
    /// before its own variability hides it, and a falling object dwells far less).
    pub var_rate: f64,
    /// Each row's background and variability are written every `update_interleave`-th frame
    /// (rows take turns; the rate per update is scaled so the rate per frame holds). Reading the
    /// model is unavoidable, writing it every frame is not: 2 cuts the memory traffic of the
    /// main pass by a quarter. Default: 2.
    pub update_interleave: u32,
    /// Per-pixel threshold = variability x this (flicker and sway suppression), 0..=64; 0 turns
    /// it off. Default: 8 (well under the tile threshold for plain sensor and codec noise, so
    /// it only acts where a pixel is much noisier than its tile: flicker, sway).
    pub var_mult: u32,
    /// Frames after a (re)start or re-base during which the model learns and no candidate is
    /// given. Default: 4 (the pipeline drops what did not change since the previous frame, so the
    /// ghosts of a young background do not need a long warm-up).
    pub warmup_frames: u32,
    /// A median tile gain change beyond this fraction is a global illumination event: the
    /// background is re-based and the frame gives no candidate. Default: 0.15.
    pub illumination_jump: f64,
    /// A frame whose foreground covers more than this fraction of the region is a flood: no
    /// candidate, background re-based. Default: 0.03.
    pub max_foreground_fraction: f64,
    /// Estimate and compensate camera shake. Default: true.
    pub shake: bool,
    /// Largest shake searched, pixels. Default: 8.
    pub shake_radius_px: u32,
    /// Motions that move no corner of the region this far are ignored (normal processing),
    /// pixels. Default: 0.3.
    pub shake_min_px: f64,
    /// Lowest profile correlation that counts as a shift measurement. Default: 0.6.
    pub shake_min_score: f64,
    /// A run of shaken frames this long whose running mean shift is at least 1 px is a moved
    /// camera (a shaking one averages out): re-base. Default: 25.
    pub shake_rebase_frames: u32,
    /// A frame on which at least this fraction of the tiles shows a step (four times the
    /// expected noise exceedances) is a codec refresh (key frame): the background is re-based
    /// without a new warm-up and the frame gives no candidate. Default: 0.3.
    pub refresh_tile_fraction: f64,
    /// Components smaller than this many foreground pixels are dropped. Default: 1 (a 2-px
    /// object centred on a pixel may pass the threshold in one window only).
    pub min_area_px: u32,
    /// A component of a single window is kept only if its box sum exceeds the threshold by this
    /// factor (noise alarms are mostly lone windows just over it). Default: 1.0 (off: a 2-px
    /// object at 5 sigma often shows as one window). 1.25 cuts the candidates of compressed flat
    /// sky by a third but costs such an object a third of its detections.
    pub single_window_factor: f64,
    /// Components larger than this are dropped (cloud shadows, a passing truck). Default: 20000.
    pub max_area_px: u32,
    /// Largest number of candidates per frame; the strongest are kept. Default: 200.
    pub max_candidates: usize,
    /// Collinear streak fragments whose facing ends are this close are merged, pixels.
    /// Default: 3.0.
    pub merge_gap_px: f64,
    /// Largest angle between merged streak fragments, degrees. Default: 20.
    pub merge_angle_deg: f64,
    /// A streak whose weight along its axis dips below this fraction of both lobes is split in
    /// two; 0 turns splitting off. Default: 0.25.
    pub split_valley_frac: f64,
    /// A brighter and a darker component whose boxes come this close are one object (a lit and
    /// a shaded face: the difference crosses zero between them, which leaves a gap of a pixel
    /// or two in the foreground), pixels; negative turns it off. Default: 2.
    pub face_gap_px: i32,
    /// Faces are joined only while the joined box stays within this many pixels on each side.
    /// Default: 40.
    pub face_max_extent_px: u32,
}

impl Default for MotionConfig {
    fn default() -> Self {
        MotionConfig {
            margin_frac: 0.25,
            margin_px: 48.0,
            tile_w_px: 128,
            tile_h_px: 32,
            k_sigma: 5.0,
            min_threshold_grey: 5.0,
            initial_noise_grey: 2.0,
            noise_rate: 0.1,
            bg_rate: 1.0 / 32.0,
            fg_rate: 1.0 / 64.0,
            var_rate: 1.0 / 48.0,
            update_interleave: 2,
            var_mult: 8,
            warmup_frames: 4,
            illumination_jump: 0.15,
            max_foreground_fraction: 0.03,
            shake: true,
            shake_radius_px: 8,
            shake_min_px: 0.3,
            shake_min_score: 0.6,
            shake_rebase_frames: 25,
            refresh_tile_fraction: 0.3,
            min_area_px: 1,
            single_window_factor: 1.0,
            max_area_px: 20_000,
            max_candidates: 200,
            merge_gap_px: 3.0,
            merge_angle_deg: 20.0,
            split_valley_frac: 0.25,
            face_gap_px: 2,
            face_max_extent_px: 40,
        }
    }
}

impl MotionConfig {
    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let rates = [
            ("bg_rate", self.bg_rate, false),
            ("fg_rate", self.fg_rate, true),
            ("var_rate", self.var_rate, false),
        ];
        for (name, v, zero_ok) in rates {
            if !(v.is_finite() && v <= 0.24 && (v > 0.0 || zero_ok && v == 0.0)) {
                bail!(InvalidInput, "motion.{name} must be in (0, 0.24], got {v}");
            }
        }
        if !(1..=4).contains(&self.update_interleave) {
            bail!(
                InvalidInput,
                "motion.update_interleave must be in 1..=4, got {}",
                self.update_interleave
            );
        }
        if self.var_mult > kernels::MAX_VAR_MULT as u32 {
            bail!(
                InvalidInput,
                "motion.var_mult must be at most 64, got {}",
                self.var_mult
            );
        }
        if !(8..=1024).contains(&self.tile_w_px) || !(8..=1024).contains(&self.tile_h_px) {
            bail!(
                InvalidInput,
                "motion.tile_w_px and tile_h_px must be in 8..=1024"
            );
        }
        let positive = [
            ("k_sigma", self.k_sigma),
            ("min_threshold_grey", self.min_threshold_grey),
            ("initial_noise_grey", self.initial_noise_grey),
            ("max_foreground_fraction", self.max_foreground_fraction),
            ("illumination_jump", self.illumination_jump),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                bail!(InvalidInput, "motion.{name} must be positive, got {v}");
            }
        }
        if !(self.refresh_tile_fraction > 0.0 && self.refresh_tile_fraction <= 1.0) {
            bail!(
                InvalidInput,
                "motion.refresh_tile_fraction must be in (0, 1]"
            );
        }
        if !(self.noise_rate > 0.0 && self.noise_rate <= 1.0) {
            bail!(InvalidInput, "motion.noise_rate must be in (0, 1]");
        }
        let margins_ok = self.margin_frac.is_finite()
            && self.margin_frac >= 0.0
            && self.margin_px.is_finite()
            && self.margin_px >= 0.0;
        if !margins_ok {
            bail!(
                InvalidInput,
                "motion.margin_frac and margin_px must be >= 0"
            );
        }
        if self.shake_radius_px == 0 || self.shake_radius_px > 64 {
            bail!(InvalidInput, "motion.shake_radius_px must be in 1..=64");
        }
        if !(self.single_window_factor.is_finite() && self.single_window_factor >= 1.0) {
            bail!(
                InvalidInput,
                "motion.single_window_factor must be at least 1"
            );
        }
        if self.max_candidates == 0 {
            bail!(InvalidInput, "motion.max_candidates must be at least 1");
        }
        Ok(())
    }
}

/// Whether the object is brighter or darker than the background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    /// Brighter than the background.
    Brighter,
    /// Darker than the background.
    Darker,
}

/// A moving-object candidate: one connected component of a frame's foreground.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Centroid x, weighted by the difference, pixels (sub-pixel).
    pub x_px: f64,
    /// Centroid y, pixels.
    pub y_px: f64,
    /// Bounding box: first column.
    pub x_min_px: u32,
    /// Bounding box: first row.
    pub y_min_px: u32,
    /// Bounding box: last column (inclusive).
    pub x_max_px: u32,
    /// Bounding box: last row (inclusive).
    pub y_max_px: u32,
    /// Foreground pixels (2 x 2 windows over the threshold).
    pub area_px: u32,
    /// Sum over its pixels of |mean window difference|, grey levels x pixels.
    pub mass: f32,
    /// Signed mean difference against the background, grey levels.
    pub contrast: f32,
    /// Largest |mean difference| of a 2 x 2 window, grey levels.
    pub peak_contrast: f32,
    /// Brighter or darker than the background.
    pub polarity: Polarity,
    /// Extent along the major axis, pixels (a motion-blur streak's length).
    pub length_px: f32,
    /// Extent across it, pixels.
    pub width_px: f32,
    /// Major-axis angle from +x towards +y (image down), radians in (-pi/2, pi/2].
    pub orientation_rad: f32,
    /// Components merged into this one (1 unless streak fragments were joined).
    pub fragments: u16,
}

impl Candidate {
    /// Bounding-box width, pixels.
    pub fn w_px(&self) -> f64 {
        f64::from(self.x_max_px - self.x_min_px + 1)
    }
    /// Bounding-box height, pixels.
    pub fn h_px(&self) -> f64 {
        f64::from(self.y_max_px - self.y_min_px + 1)
    }
    /// Length over width (1 for a round blob).
    pub fn elongation(&self) -> f64 {
        f64::from(self.length_px) / f64::from(self.width_px.max(1.0))
    }
}

/// What the detector did with the last frame, plus running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MotionStats {
    /// Frames processed so far.
    pub frames: u64,
    /// Media time of the last frame.
    pub pts_s: f64,
    /// Foreground pixels (2 x 2 windows over the threshold) of the last frame.
    pub foreground_px: u32,
    /// Foreground runs of the last frame.
    pub runs: u32,
    /// Connected components of the last frame.
    pub components: u32,
    /// Candidates given for the last frame.
    pub candidates: u32,
    /// Components dropped as too small / too large in the last frame.
    pub rejected_small: u32,
    /// See `rejected_small`.
    pub rejected_large: u32,
    /// Candidates refused by the caller's filter in the last frame (see
    /// [`MotionDetector::process_filtered`]).
    pub filtered: u32,
    /// Candidates dropped by the per-frame cap in the last frame (after the filter).
    pub dropped_over_cap: u32,
    /// Streaks split / fragments merged in the last frame.
    pub splits: u32,
    /// See `splits`.
    pub merges: u32,
    /// The last frame's estimated motion (translation and rotation).
    pub shift: Shift,
    /// True when the last frame was registered onto the background (the camera shook).
    pub shift_compensated: bool,
    /// True when the last frame was a global illumination event.
    pub illumination_event: bool,
    /// True when the last frame's foreground was a flood.
    pub flood: bool,
    /// True when the background was re-based on the last frame.
    pub rebased: bool,
    /// True when the last frame was a codec refresh (key frame): re-based, no candidates.
    pub refresh: bool,
    /// True while the model is still learning (no candidates).
    pub warming_up: bool,
    /// Median tile gain of the last frame (1 = no change).
    pub median_gain: f32,
    /// Median tile noise, grey levels (pixel standard deviation).
    pub median_noise_grey: f32,
    /// Totals since creation.
    pub total_illumination_events: u64,
    /// See `total_illumination_events`.
    pub total_floods: u64,
    /// See `total_illumination_events`.
    pub total_rebases: u64,
    /// See `total_illumination_events`.
    pub total_refreshes: u64,
    /// See `total_illumination_events`.
    pub total_shaken_frames: u64,
    /// Frames on which the candidate cap was reached.
    pub total_capped_frames: u64,
}

/// Per-tile state: illumination gain and noise.
#[derive(Debug, Default)]
struct Tiles {
    tw: u32,
    th: u32,
    nx: usize,
    ny: usize,
    /// Region pixels per tile.
    count: Vec<u32>,
    sum_i: Vec<u32>,
    sum_b: Vec<u64>,
    raw_gain: Vec<f32>,
    gain_q11: Vec<u16>,
    /// Noise standard deviation of the box sum, box units.
    sigma_s: Vec<f32>,
    /// Threshold on a brighter window's box sum: `s > t_tile`.
    t_tile: Vec<i16>,
    /// Threshold on a darker window's box sum: `s < -t_dark`.
    t_dark: Vec<i16>,
    /// `NOISE_COUNT_LEVEL x sigma_s` rounded: the level whose exceedances are counted.
    noise_level: Vec<i16>,
    noise_sum: Vec<u64>,
    /// The darker side of `noise_sum` (`s < -noise_level`).
    noise_below: Vec<u64>,
    noise_cnt: Vec<u32>,
    /// One-sided noise estimates (brighter, darker side), box units.
    sigma_side: Vec<[f32; 2]>,
}

impl Tiles {
    fn memory_bytes(&self) -> usize {
        self.count.capacity() * 4
            + self.sum_i.capacity() * 4
            + self.sum_b.capacity() * 8
            + self.raw_gain.capacity() * 4
            + self.gain_q11.capacity() * 2
            + self.sigma_s.capacity() * 4
            + self.t_tile.capacity() * 2
            + self.t_dark.capacity() * 2
            + self.noise_level.capacity() * 2
            + self.noise_sum.capacity() * 8
            + self.noise_below.capacity() * 8
            + self.noise_cnt.capacity() * 4
            + self.sigma_side.capacity() * 8
    }
}

/// The pieces `(tile column, x0, x1)` of a span cut at tile boundaries.
#[derive(Clone, Copy)]
struct Segments {
    a: u32,
    end: u32,
    tw: u32,
}

impl Iterator for Segments {
    type Item = (usize, usize, usize);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.a >= self.end {
            return None;
        }
        let tx = self.a / self.tw;
        let b = ((tx + 1) * self.tw).min(self.end);
        let out = (tx as usize, self.a as usize, b as usize);
        self.a = b;
        Some(out)
    }
}

#[inline]
fn segments(span: Span, tw: u32) -> Segments {
    Segments {
        a: span.x0,
        end: span.x1,
        tw,
    }
}

/// The background model and candidate extraction of one camera.
pub struct MotionDetector {
    cfg: MotionConfig,
    width: usize,
    height: usize,
    /// Region spans (the pixels processed and modelled).
    roi: RowSpans,
    /// Anchor spans of unshifted frames (2 x 2 windows inside the region).
    anchors: RowSpans,
    /// Bounding box of the region: the model arrays cover it densely.
    bx0: usize,
    by0: usize,
    bw: usize,
    bh: usize,
    /// Background, grey levels.
    bg: Vec<u8>,
    /// Variability: running mean of min(|4 d|, 255).
    var: Vec<u8>,
    tiles: Tiles,
    roi_anchor_px: usize,
    // Row buffers, indexed by absolute column.
    d4: Vec<i16>,
    h_prev: Vec<i16>,
    h_cur: Vec<i16>,
    s_row: Vec<i16>,
    mask: Vec<u8>,
    bg_row: Vec<u8>,
    /// Dither bytes for the stochastic rounding of model updates (a row's slice starts at a
    /// pseudo-random offset each frame).
    dither: Vec<u8>,
    /// Per-pixel gain (x 2048) of the current row, interpolated between tile centres.
    gain_row: Vec<u16>,
    gain_cols: Vec<f64>,
    /// Shake profiles and their references.
    profiles: Profiles,
    /// The last shaken frame registered onto the background (allocated at the first shaken
    /// frame; valid while `last_registered`), and a spare plane for the next one.
    stabilized: Vec<u8>,
    stabilized_spare: Vec<u8>,
    /// True when the last frame was registered.
    last_registered: bool,
    /// Mean shift of the current run of shaken frames (a running average): far from zero, the
    /// camera moved rather than shook.
    run_shift_px: [f64; 2],
    // Foreground and candidates.
    fg: Foreground,
    comps: Components,
    moms: Vec<Moments>,
    candidates: Vec<Candidate>,
    /// Per-frame scratch of the candidate extraction (kept: no allocation per frame).
    scratch: CandidateScratch,
    since_base: u64,
    shaken_run: u32,
    /// This frame's learning rates, see [`MotionDetector::frame_rates`].
    rates: [i16; 3],
    stats: MotionStats,
}

/// Per-frame scratch of [`MotionDetector::extract_candidates`].
#[derive(Debug, Default)]
struct CandidateScratch {
    /// Every component's candidate.
    cands: Vec<Candidate>,
    /// The streak-like ones among them (the first 64).
    streaks: Vec<usize>,
    /// False once merged into another.
    alive: Vec<bool>,
}

impl CandidateScratch {
    fn memory_bytes(&self) -> usize {
        self.cands.capacity() * std::mem::size_of::<Candidate>()
            + self.streaks.capacity() * std::mem::size_of::<usize>()
            + self.alive.capacity()
    }
}

/// A run of shaken frames whose mean shift is at least this far from zero is a moved camera
/// (not a shaking one), pixels.
const MOVED_CAMERA_PX: f64 = 1.0;
/// The per-pixel gain row is recomputed every `GAIN_ROW_STEP` rows.
const GAIN_ROW_STEP: usize = 8;

impl MotionDetector {
    /// A detector for `width` x `height` frames of the camera calibrated by `calib`.
    pub fn new(
        calib: &Calibration,
        width: usize,
        height: usize,
        cfg: MotionConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let quad = roi::expanded_quad(&calib.facade.corners_px, cfg.margin_frac, cfg.margin_px);
        let mut rows = roi::polygon_spans(&quad, width, height);
        for ign in &calib.ignore {
            let holes = roi::polygon_spans(&ign.polygon_px, width, height);
            for (row, hole) in rows.iter_mut().zip(&holes) {
                if !hole.is_empty() {
                    *row = roi::subtract(row, hole);
                }
            }
        }
        for row in &mut rows {
            row.retain(|s| s.len() >= 2);
        }
        Self::with_region(RowSpans::from_rows(&rows), width, height, cfg)
            .map_err(|e| e.context(format!("camera {}", calib.camera.id)))
    }

    /// A detector over an explicit region (one span list per row).
    pub fn with_region(
        roi: RowSpans,
        width: usize,
        height: usize,
        cfg: MotionConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        if roi.height() != height {
            bail!(
                InvalidInput,
                "motion region has {} rows, frame {height}",
                roi.height()
            );
        }
        let (Some((by0, by1)), Some((bx0, bx1))) = (roi.row_range(), roi.col_range()) else {
            bail!(
                InvalidInput,
                "the motion region (facade plus margin, minus ignore regions) does not overlap \
                 the {width}x{height} image"
            );
        };
        let (bw, bh) = (bx1 - bx0, by1 - by0);
        let anchors = anchor_spans(&roi, height);
        let tw = cfg.tile_w_px;
        let th = cfg.tile_h_px;
        let nx = width.div_ceil(tw as usize);
        let ny = height.div_ceil(th as usize);
        let nt = nx * ny;
        let mut count = vec![0u32; nt];
        for y in by0..by1 {
            for &s in roi.row(y) {
                for (tx, a, b) in segments(s, tw) {
                    count[(y / th as usize) * nx + tx] += (b - a) as u32;
                }
            }
        }
        let sigma0 = (8.0 * cfg.initial_noise_grey) as f32;
        let mut tiles = Tiles {
            tw,
            th,
            nx,
            ny,
            count,
            sum_i: vec![0; nt],
            sum_b: vec![0; nt],
            raw_gain: vec![1.0; nt],
            gain_q11: vec![kernels::UNIT_GAIN_Q11; nt],
            sigma_s: vec![sigma0; nt],
            t_tile: vec![0; nt],
            t_dark: vec![0; nt],
            noise_level: vec![0; nt],
            noise_sum: vec![0; nt],
            noise_below: vec![0; nt],
            noise_cnt: vec![0; nt],
            sigma_side: vec![[sigma0; 2]; nt],
        };
        set_thresholds(&mut tiles, &cfg);
        let profiles = Profiles::new(&roi, bx0, by0, bw, bh, tw);
        let roi_anchor_px = anchors.pixel_count();
        Ok(MotionDetector {
            width,
            height,
            bx0,
            by0,
            bw,
            bh,
            bg: vec![0; bw * bh],
            var: vec![0; bw * bh],
            tiles,
            roi_anchor_px,
            d4: vec![0; width + 1],
            h_prev: vec![0; width + 1],
            h_cur: vec![0; width + 1],
            s_row: vec![0; width + 1],
            mask: vec![0; width + 1],
            bg_row: vec![0; width + 2],
            dither: dither_table(width + DITHER_SPAN),
            gain_row: vec![kernels::UNIT_GAIN_Q11; width + 1],
            gain_cols: vec![1.0; nx],
            profiles,
            stabilized: Vec::new(),
            stabilized_spare: Vec::new(),
            last_registered: false,
            run_shift_px: [0.0; 2],
            fg: Foreground::default(),
            comps: Components::default(),
            moms: Vec::new(),
            candidates: Vec::new(),
            scratch: CandidateScratch::default(),
            since_base: 0,
            shaken_run: 0,
            rates: [0; 3],
            stats: MotionStats::default(),
            roi,
            anchors,
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MotionConfig {
        &self.cfg
    }

    /// The processed region.
    pub fn region(&self) -> &RowSpans {
        &self.roi
    }

    /// The last frame registered onto the background, when the camera shook on it (`None` for
    /// a still frame, which is used as it is).
    pub fn registered(&self) -> Option<Luma<'_>> {
        (self.last_registered && self.stabilized.len() == self.width * self.height)
            .then(|| Luma::new(&self.stabilized, self.width, self.height, self.width))
    }

    /// The last frame's candidates (what [`MotionDetector::process`] returned).
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// What happened on the last frame, and totals.
    pub fn stats(&self) -> MotionStats {
        self.stats
    }

    /// Heap memory held by this detector (model, buffers, scratch), bytes.
    pub fn memory_bytes(&self) -> usize {
        self.bg.capacity()
            + self.dither.capacity()
            + self.var.capacity()
            + self.tiles.memory_bytes()
            + self.roi.memory_bytes()
            + self.anchors.memory_bytes()
            + self.stabilized.capacity()
            + self.stabilized_spare.capacity()
            + (self.d4.capacity() + self.h_prev.capacity() + self.h_cur.capacity()) * 2
            + self.s_row.capacity() * 2
            + self.mask.capacity()
            + self.bg_row.capacity()
            + self.gain_row.capacity() * 2
            + self.gain_cols.capacity() * 8
            + self.profiles.memory_bytes()
            + self.fg.memory_bytes()
            + self.comps.memory_bytes()
            + self.moms.capacity() * std::mem::size_of::<Moments>()
            + self.candidates.capacity() * std::mem::size_of::<Candidate>()
            + self.scratch.memory_bytes()
    }

    /// Analyses one frame; returns its candidates (empty while warming up and on illumination
    /// events, floods and re-bases).
    pub fn process(&mut self, luma: Luma<'_>, pts_s: f64) -> Result<&[Candidate]> {
        self.process_filtered(luma, pts_s, &mut |_, _, _| true)
    }

    /// As [`MotionDetector::process`], keeping only the candidates `keep` accepts, decided before
    /// the per-frame cap ([`MotionConfig::max_candidates`]) so that what `keep` refuses (static
    /// texture, say) never crowds out a faint moving object. `keep` sees each candidate with the
    /// frame as processed, in the background's geometry (registered when the camera shook, see
    /// [`MotionDetector::registered`]), and the previous frame's registered plane when that
    /// frame was registered (else the caller's own previous frame is in the same geometry).
    /// Refused candidates are counted in [`MotionStats::filtered`].
    pub fn process_filtered(
        &mut self,
        luma: Luma<'_>,
        pts_s: f64,
        keep: &mut dyn FnMut(&Candidate, Luma<'_>, Option<Luma<'_>>) -> bool,
    ) -> Result<&[Candidate]> {
        if luma.width() != self.width || luma.height() != self.height {
            bail!(
                InvalidInput,
                "frame is {}x{}, motion detector was made for {}x{}",
                luma.width(),
                luma.height(),
                self.width,
                self.height
            );
        }
        let totals = self.stats;
        self.stats = MotionStats {
            frames: totals.frames + 1,
            pts_s,
            total_illumination_events: totals.total_illumination_events,
            total_floods: totals.total_floods,
            total_rebases: totals.total_rebases,
            total_refreshes: totals.total_refreshes,
            total_shaken_frames: totals.total_shaken_frames,
            total_capped_frames: totals.total_capped_frames,
            median_gain: 1.0,
            ..MotionStats::default()
        };
        self.candidates.clear();
        self.fg.clear();

        self.prepass(luma);
        if totals.frames == 0 {
            self.rebase(luma);
            self.profiles.reset();
            self.stats.shift = self.profiles.still();
            self.stats.warming_up = true;
            self.finish_stats();
            return Ok(&self.candidates);
        }

        // Shake.
        let shift = if self.cfg.shake {
            let r = self.cfg.shake_radius_px as usize;
            self.profiles.estimate(r, self.cfg.shake_min_score)
        } else {
            self.profiles.still()
        };
        self.stats.shift = shift;
        let (x0, y0) = (self.bx0 as f64, self.by0 as f64);
        let (x1, y1) = (x0 + self.bw as f64 - 1.0, y0 + self.bh as f64 - 1.0);
        let shaken = shift.max_offset_px(x0, y0, x1, y1) >= self.cfg.shake_min_px;
        if shaken {
            self.shaken_run += 1;
            self.stats.total_shaken_frames += 1;
            let rate = 1.0 / f64::from(self.cfg.shake_rebase_frames.max(1));
            self.run_shift_px[0] += (shift.dx_px - self.run_shift_px[0]) * rate;
            self.run_shift_px[1] += (shift.dy_px - self.run_shift_px[1]) * rate;
            let mean = self.run_shift_px[0].hypot(self.run_shift_px[1]);
            if self.shaken_run > self.cfg.shake_rebase_frames && mean >= MOVED_CAMERA_PX {
                tracing::debug!(
                    dx = shift.dx_px,
                    dy = shift.dy_px,
                    "camera moved: re-basing"
                );
                self.rebase(luma);
                self.profiles.reset();
                self.last_registered = false;
                self.finish_stats();
                return Ok(&self.candidates);
            }
        } else {
            self.shaken_run = 0;
            self.run_shift_px = [0.0; 2];
            self.profiles.blend(0.1);
        }
        // The previous frame's registered plane, for `keep` (moved out while `self` works).
        let (w, h) = (self.width, self.height);
        let prev_buf = self
            .last_registered
            .then(|| std::mem::take(&mut self.stabilized));
        let prev = prev_buf.as_ref().map(|b| Luma::new(b, w, h, w));
        if !shaken {
            self.process_registered(luma, false, prev, keep);
            if let Some(b) = prev_buf {
                self.stabilized = b;
            }
            self.last_registered = false;
            return Ok(&self.candidates);
        }
        // Register the frame onto the background, then process it as a still one.
        let mut buf = std::mem::take(&mut self.stabilized_spare);
        buf.resize(w * h, 0);
        shake::stabilize(
            luma, &shift, &self.roi, &self.bg, self.bx0, self.by0, self.bw, &mut buf,
        );
        self.stats.shift_compensated = true;
        self.process_registered(Luma::new(&buf, w, h, w), true, prev, keep);
        // The planes swap roles: no copy.
        self.stabilized_spare = match prev_buf {
            Some(b) => b,
            None => std::mem::take(&mut self.stabilized),
        };
        self.stabilized = buf;
        self.last_registered = true;
        Ok(&self.candidates)
    }

    /// The rest of a frame, once it is in the background's geometry (`shaken`: it was
    /// registered).
    fn process_registered(
        &mut self,
        luma: Luma<'_>,
        shaken: bool,
        prev: Option<Luma<'_>>,
        keep: &mut dyn FnMut(&Candidate, Luma<'_>, Option<Luma<'_>>) -> bool,
    ) {
        // Illumination. On a shaken frame the tile sums of frame and background cover different
        // content: the previous frame's gains are kept, unless the median (robust to that)
        // says the light changed, which then applies to every tile.
        let previous = shaken.then(|| self.tiles.gain_q11.clone());
        let median_gain = self.compute_gains();
        if let Some(previous) = previous {
            if (median_gain - 1.0).abs() <= 0.02 {
                self.tiles.gain_q11 = previous;
            } else {
                let g = (median_gain * 2048.0)
                    .round()
                    .clamp(0.0, f64::from(kernels::MAX_GAIN_Q11)) as u16;
                self.tiles.gain_q11.fill(g);
            }
        }
        self.stats.median_gain = median_gain as f32;
        if (median_gain - 1.0).abs() > self.cfg.illumination_jump {
            self.stats.illumination_event = true;
            self.stats.total_illumination_events += 1;
            tracing::debug!(gain = median_gain, "global illumination change: re-basing");
            self.rebase(luma);
            self.finish_stats();
            return;
        }

        let collect = self.since_base >= u64::from(self.cfg.warmup_frames);
        self.stats.warming_up = !collect;
        let max_pixels =
            ((self.cfg.max_foreground_fraction * self.roi_anchor_px as f64) as usize).max(64);
        let fg_total = self.pass(luma, collect, max_pixels);
        self.since_base += 1;
        self.stats.foreground_px = fg_total;

        // While warming up the noise estimates are still converging: learn, never re-base.
        if fg_total as usize > max_pixels && collect {
            self.stats.flood = true;
            self.stats.total_floods += 1;
            tracing::debug!(foreground = fg_total, "foreground flood: re-basing");
            self.fg.clear();
            self.rebase(luma);
            self.finish_stats();
            return;
        }
        // A codec refresh (a key frame re-quantises the whole picture, and the frames after it
        // copy that): many tiles step at once by a little. Re-base quietly instead of tracking
        // the step for seconds while the background catches up. (Not on a registered frame:
        // its resampling smooths the noise the test counts.)
        if !shaken && collect && self.refresh_detected() {
            self.stats.refresh = true;
            self.stats.total_refreshes += 1;
            tracing::debug!("codec refresh: re-basing");
            self.fg.clear();
            self.rebase(luma);
            self.since_base = u64::from(self.cfg.warmup_frames.saturating_sub(2));
            self.finish_stats();
            return;
        }
        self.update_noise(!collect);
        if collect {
            self.extract_candidates(keep, luma, prev);
        }
        self.finish_stats();
    }

    /// True when at least [`MotionConfig::refresh_tile_fraction`] of the tiles saw, this frame,
    /// four times the share of noise-level exceedances that their noise estimate predicts.
    fn refresh_detected(&self) -> bool {
        let t = &self.tiles;
        let expected = 2.0 * (1.0 - normal_cdf(f64::from(NOISE_COUNT_LEVEL)));
        let (mut tiles, mut stepped) = (0usize, 0usize);
        for i in 0..t.noise_cnt.len() {
            let n = t.noise_cnt[i];
            if n >= 256 {
                tiles += 1;
                if t.noise_sum[i] as f64 > 4.0 * expected * f64::from(n) {
                    stepped += 1;
                }
            }
        }
        tiles > 0 && stepped as f64 >= self.cfg.refresh_tile_fraction * tiles as f64
    }

    fn finish_stats(&mut self) {
        self.stats.candidates = self.candidates.len() as u32;
        self.stats.runs = self.fg.runs.len() as u32;
        let mut sig: Vec<f32> = self
            .tiles
            .sigma_s
            .iter()
            .zip(&self.tiles.count)
            .filter(|(_, c)| **c > 0)
            .map(|(s, _)| *s / 8.0)
            .collect();
        if !sig.is_empty() {
            let mid = sig.len() / 2;
            sig.select_nth_unstable_by(mid, f32::total_cmp);
            self.stats.median_noise_grey = sig[mid];
        }
    }

    /// Tile sums of the frame and the shake profiles.
    fn prepass(&mut self, luma: Luma<'_>) {
        let t = &mut self.tiles;
        t.sum_i.iter_mut().for_each(|v| *v = 0);
        self.profiles.clear();
        let (by0, x_mid) = (self.by0, self.profiles.x_mid);
        for y in by0..by0 + self.bh {
            let irow = luma.row(y);
            if y + PREFETCH_ROWS < by0 + self.bh {
                for &s in self.roi.row(y + PREFETCH_ROWS) {
                    prefetch(&luma.row(y + PREFETCH_ROWS)[s.x0 as usize..s.x1 as usize]);
                }
            }
            let mut row_sum = [0u32; 2];
            for &s in self.roi.row(y) {
                for (tx, a, b) in segments(s, t.tw) {
                    let v = kernels::sum_u8(&irow[a..b]);
                    let i = (y / t.th as usize) * t.nx + tx;
                    t.sum_i[i] += v;
                    row_sum[usize::from(a >= x_mid)] += v;
                }
                let (a, b) = (s.x0 as usize, s.x1 as usize);
                self.profiles.add_cols(y, a, b, &irow[a..b]);
            }
            self.profiles.row_sum[0][y - by0] = row_sum[0];
            self.profiles.row_sum[1][y - by0] = row_sum[1];
        }
        self.profiles.finish();
    }

    /// Per-tile gains (median-filtered) into `gain_q11`; returns the median raw gain.
    fn compute_gains(&mut self) -> f64 {
        let t = &mut self.tiles;
        for i in 0..t.count.len() {
            let n = t.count[i];
            t.raw_gain[i] = if n == 0 {
                f32::NAN
            } else {
                let mean_b = t.sum_b[i] as f64 / f64::from(n);
                let mean_i = f64::from(t.sum_i[i]) / f64::from(n);
                if mean_b >= 4.0 {
                    (mean_i / mean_b).clamp(0.25, 4.0) as f32
                } else {
                    f32::NAN
                }
            };
        }
        let mut all: Vec<f32> = t
            .raw_gain
            .iter()
            .copied()
            .filter(|g| g.is_finite())
            .collect();
        let median = if all.is_empty() {
            1.0
        } else {
            let mid = all.len() / 2;
            *all.select_nth_unstable_by(mid, f32::total_cmp).1
        };
        let mut nb: Vec<f32> = Vec::with_capacity(9);
        for ty in 0..t.ny {
            for tx in 0..t.nx {
                nb.clear();
                for yy in ty.saturating_sub(1)..(ty + 2).min(t.ny) {
                    for xx in tx.saturating_sub(1)..(tx + 2).min(t.nx) {
                        let g = t.raw_gain[yy * t.nx + xx];
                        if g.is_finite() {
                            nb.push(g);
                        }
                    }
                }
                let g = if nb.is_empty() {
                    median
                } else {
                    let mid = nb.len() / 2;
                    *nb.select_nth_unstable_by(mid, f32::total_cmp).1
                };
                t.gain_q11[ty * t.nx + tx] = (f64::from(g) * 2048.0)
                    .round()
                    .clamp(0.0, f64::from(kernels::MAX_GAIN_Q11))
                    as u16;
            }
        }
        f64::from(median)
    }

    /// Background <- frame over the whole bounding box; restarts the warm-up.
    fn rebase(&mut self, luma: Luma<'_>) {
        for yy in 0..self.bh {
            let irow = &luma.row(self.by0 + yy)[self.bx0..self.bx0 + self.bw];
            let brow = &mut self.bg[yy * self.bw..(yy + 1) * self.bw];
            brow.copy_from_slice(irow);
        }
        for (sb, &si) in self.tiles.sum_b.iter_mut().zip(&self.tiles.sum_i) {
            *sb = u64::from(si);
        }
        self.tiles.gain_q11.fill(kernels::UNIT_GAIN_Q11);
        self.since_base = 0;
        self.shaken_run = 0;
        self.stats.rebased = true;
        self.stats.total_rebases += 1;
    }

    /// Rows updated this frame take turns: every row while warming up, else every
    /// `update_interleave`-th row.
    fn updates_row(&self, y: usize) -> bool {
        let k = self.interleave();
        k == 1 || (y as u64 + self.stats.frames).is_multiple_of(k)
    }

    fn interleave(&self) -> u64 {
        if self.since_base < u64::from(self.cfg.warmup_frames) {
            1
        } else {
            u64::from(self.cfg.update_interleave)
        }
    }

    /// This frame's learning rates (x 256 per update): background, foreground, variability.
    fn frame_rates(&self) -> [i16; 3] {
        let q8 =
            |rate: f64| (rate * 256.0 + 0.5).clamp(0.0, f64::from(kernels::MAX_RATE_Q8)) as i16;
        let k = self.interleave() as f64;
        if self.since_base < u64::from(self.cfg.warmup_frames) {
            // Warm-up: a running average (1/2, 1/3, ...) until the configured rate.
            let r = (1.0 / (self.since_base as f64 + 2.0)).max(self.cfg.bg_rate);
            [q8(r), q8(r), q8(self.cfg.var_rate * k).max(1)]
        } else {
            [
                q8(self.cfg.bg_rate * k).max(1),
                q8(self.cfg.fg_rate * k),
                q8(self.cfg.var_rate * k).max(1),
            ]
        }
    }

    fn update_params(&self, tile: usize) -> UpdateParams {
        UpdateParams {
            // Either side's threshold: a dark object in the rain, over the lower darker-side
            // threshold, is learnt at the slow rate too.
            fg_thr_q2: self.tiles.t_tile[tile].min(self.tiles.t_dark[tile]) / 4,
            rate_bg_q8: self.rates[0],
            rate_fg_q8: self.rates[1],
            rate_var_q8: self.rates[2],
            var_clip_q2: 255,
        }
    }

    fn threshold_params(&self, tile: usize) -> ThresholdParams {
        ThresholdParams {
            t_tile: self.tiles.t_tile[tile],
            t_dark: self.tiles.t_dark[tile],
            noise_level: self.tiles.noise_level[tile],
        }
    }

    /// The main pass (on a still or registered frame): difference, update, box sums, threshold,
    /// runs.
    fn pass(&mut self, luma: Luma<'_>, collect: bool, max_pixels: usize) -> u32 {
        let t_nx = self.tiles.nx;
        let th = self.tiles.th as usize;
        let tw = self.tiles.tw;
        self.tiles.sum_b.fill(0);
        self.tiles.noise_sum.fill(0);
        self.tiles.noise_below.fill(0);
        self.tiles.noise_cnt.fill(0);
        self.rates = self.frame_rates();
        let mut fg_total = 0u32;
        let (bx0, by0, bw) = (self.bx0, self.by0, self.bw);
        for y in by0..by0 + self.bh {
            if (y - by0) % GAIN_ROW_STEP == 0 {
                self.fill_gain_row(y);
            }
            let irow = luma.row(y);
            let off = (y - by0) * bw;
            // Ask for a later row's frame and model bytes now: the row loop is memory-bound and
            // each row's spans are too short for the hardware prefetcher to ramp up.
            let ahead = y + PREFETCH_ROWS;
            if ahead < by0 + self.bh {
                let aoff = (ahead - by0) * bw;
                for &s in self.roi.row(ahead) {
                    let (a, b) = (s.x0 as usize, s.x1 as usize);
                    prefetch(&luma.row(ahead)[a..b]);
                    prefetch(&self.bg[aoff + a - bx0..aoff + b - bx0]);
                    prefetch(&self.var[aoff + a - bx0..aoff + b - bx0]);
                }
            }
            let update = self.updates_row(y);
            let dith = dither_offset(y, self.stats.frames);
            for si in 0..self.roi.row(y).len() {
                let s = self.roi.row(y)[si];
                for (tx, a, b) in segments(s, tw) {
                    let tile = (y / th) * t_nx + tx;
                    let sb = if update {
                        let p = self.update_params(tile);
                        kernels::diff_update(
                            &irow[a..b],
                            &mut self.bg[off + a - bx0..off + b - bx0],
                            &mut self.var[off + a - bx0..off + b - bx0],
                            &mut self.d4[a..b],
                            &self.gain_row[a..b],
                            &self.dither[dith + a..dith + b],
                            p,
                        )
                    } else {
                        kernels::diff_only(
                            &irow[a..b],
                            &self.bg[off + a - bx0..off + b - bx0],
                            &self.gain_row[a..b],
                            &mut self.d4[a..b],
                        )
                    };
                    self.tiles.sum_b[tile] += u64::from(sb);
                }
                let (a, b) = (s.x0 as usize, s.x1 as usize);
                kernels::pair_sum(&self.d4[a..b], &mut self.h_cur[a..b - 1]);
            }
            if y > by0 {
                fg_total += self.threshold_row(y - 1, collect, max_pixels);
            }
            std::mem::swap(&mut self.h_prev, &mut self.h_cur);
        }
        fg_total
    }

    /// Box sums and threshold of anchor row `ya` (its `h` in `h_prev`, the next row's in
    /// `h_cur`).
    fn threshold_row(&mut self, ya: usize, collect: bool, max_pixels: usize) -> u32 {
        let th = self.tiles.th as usize;
        let tw = self.tiles.tw;
        let t_nx = self.tiles.nx;
        let n_spans = self.anchors.row(ya).len();
        let mut fg_total = 0;
        let vrow = (ya - self.by0) * self.bw;
        let vrow1 = vrow + self.bw;
        for si in 0..n_spans {
            let s = self.anchors.row(ya)[si];
            for (tx, a, b) in segments(s, tw) {
                let tile = (ya / th) * t_nx + tx;
                let p = self.threshold_params(tile);
                let va = vrow + a - self.bx0;
                let va1 = va - vrow + vrow1;
                let counts = kernels::box_threshold(
                    &self.h_prev[a..b],
                    &self.h_cur[a..b],
                    p,
                    &mut self.s_row[a..b],
                    &mut self.mask[a..b],
                );
                let mut fg = counts.over_threshold;
                if fg > 0 && self.cfg.var_mult > 0 {
                    fg = kernels::suppress_variable(
                        &mut self.mask[a..b],
                        &self.s_row[a..b],
                        &self.var[va..va + (b - a) + 1],
                        &self.var[va1..va1 + (b - a) + 1],
                        self.cfg.var_mult as i16,
                    );
                }
                self.tiles.noise_sum[tile] += u64::from(counts.over_noise);
                self.tiles.noise_below[tile] += u64::from(counts.below_noise);
                self.tiles.noise_cnt[tile] += (b - a) as u32;
                fg_total += fg;
                if fg > 0 && collect {
                    self.fg.add_row(
                        ya as u32,
                        a as u32,
                        &self.mask[a..b],
                        &self.s_row[a..b],
                        max_pixels,
                    );
                }
            }
        }
        fg_total
    }

    /// Fills `gain_row` over the region's columns for row `y`: tile gains bilinearly
    /// interpolated between tile centres (constant beyond the outermost centres), so gain
    /// corrections have no seams at tile boundaries.
    fn fill_gain_row(&mut self, y: usize) {
        let t = &self.tiles;
        let (tw, th) = (f64::from(t.tw), f64::from(t.th));
        let fy = ((y as f64 + 0.5) / th - 0.5).clamp(0.0, (t.ny - 1) as f64);
        let t0 = fy.floor() as usize;
        let t1 = (t0 + 1).min(t.ny - 1);
        let f = fy - t0 as f64;
        for (tx, g) in self.gain_cols.iter_mut().enumerate() {
            *g = f64::from(t.gain_q11[t0 * t.nx + tx]) * (1.0 - f)
                + f64::from(t.gain_q11[t1 * t.nx + tx]) * f;
        }
        let (x_lo, x_hi) = (self.bx0, self.bx0 + self.bw);
        let centre = |k: usize| (k as f64 + 0.5) * tw - 0.5;
        let first = (centre(0).ceil() as usize).clamp(x_lo, x_hi);
        let row = &mut self.gain_row;
        kernels::ramp(&mut row[x_lo..first], (self.gain_cols[0] * 256.0) as i32, 0);
        for k in 0..t.nx - 1 {
            let a = (centre(k).ceil() as usize).clamp(x_lo, x_hi);
            let b = (centre(k + 1).ceil() as usize).clamp(x_lo, x_hi);
            if b > a {
                let (g0, g1) = (self.gain_cols[k], self.gain_cols[k + 1]);
                let slope = (g1 - g0) / tw;
                let start = g0 + slope * (a as f64 - centre(k));
                kernels::ramp(
                    &mut row[a..b],
                    (start * 256.0 + 0.5) as i32,
                    (slope * 256.0 + 0.5).floor() as i32,
                );
            }
        }
        let last = (centre(t.nx - 1).ceil() as usize).clamp(x_lo, x_hi);
        kernels::ramp(
            &mut row[last..x_hi],
            (self.gain_cols[t.nx - 1] * 256.0) as i32,
            0,
        );
    }

    /// Moves each tile's noise estimate towards this frame's and sets next frame's thresholds.
    ///
    /// The estimate is robust: it counts how many box sums exceed `c = 2.5 x` the current
    /// estimate; for Gaussian noise of deviation `sigma` that fraction is
    /// `p = erfc(c / (sigma sqrt 2))` (1.2 %), so `sigma = c / probit(1 - p / 2)`. Flicker,
    /// objects and edges change `p` only by the area they cover, unlike a mean of |s| they would
    /// dominate; and because it measures the tail, the heavy-tailed differences of compressed
    /// video (most blocks unchanged, a few refreshed with errors of several levels) raise the
    /// estimate as they should instead of hiding under a small typical deviation.
    fn update_noise(&mut self, warming_up: bool) {
        let rate = if warming_up {
            (self.cfg.noise_rate as f32).max(0.5)
        } else {
            self.cfg.noise_rate as f32
        };
        let t = &mut self.tiles;
        for i in 0..t.sigma_s.len() {
            let n = t.noise_cnt[i];
            if n >= 32 {
                let c = f64::from(t.noise_level[i]);
                let p = (t.noise_sum[i] as f64 / f64::from(n)).clamp(1e-4, 0.5);
                let est = (c / probit(1.0 - p / 2.0)) as f32;
                t.sigma_s[i] += (est - t.sigma_s[i]) * rate;
                t.sigma_s[i] = t.sigma_s[i].clamp(1.0, 4000.0);
                // Each side's own tail: rain (bright drops) inflates only the brighter one. Both
                // are counted at the two-sided level, so a quiet side's share can be tiny: below
                // 1e-6 it reads as 1e-6, which floors its estimate at 0.53 x `c / 2.5`.
                let below = t.noise_below[i];
                let above = t.noise_sum[i] - below;
                for (side, count) in [above, below].into_iter().enumerate() {
                    let p = (count as f64 / f64::from(n)).clamp(1e-6, 0.25);
                    let est = (c / probit(1.0 - p)) as f32;
                    let sd = &mut t.sigma_side[i][side];
                    *sd = (*sd + (est - *sd) * rate).clamp(1.0, 4000.0);
                }
            }
        }
        set_thresholds(t, &self.cfg);
    }

    /// Labels the foreground and builds this frame's candidates.
    fn extract_candidates(
        &mut self,
        keep: &mut dyn FnMut(&Candidate, Luma<'_>, Option<Luma<'_>>) -> bool,
        luma: Luma<'_>,
        prev: Option<Luma<'_>>,
    ) {
        self.comps.label(&self.fg);
        self.stats.components = self.comps.moments.len() as u32;
        self.moms.clear();
        let cfg = &self.cfg;
        for c in 0..self.comps.moments.len() {
            let m = self.comps.moments[c];
            if m.area < cfg.min_area_px {
                self.stats.rejected_small += 1;
                continue;
            }
            // A lone window must clear the threshold by a margin: most noise alarms of compressed
            // video are single windows just over it.
            if m.area == 1 {
                let tile = (m.y_min as usize / self.tiles.th as usize) * self.tiles.nx
                    + m.x_min as usize / self.tiles.tw as usize;
                let t = f64::from(if m.signed >= 0.0 {
                    self.tiles.t_tile[tile]
                } else {
                    self.tiles.t_dark[tile]
                });
                if f64::from(m.peak) <= cfg.single_window_factor * t {
                    self.stats.rejected_small += 1;
                    continue;
                }
            }
            if m.area > cfg.max_area_px {
                self.stats.rejected_large += 1;
                continue;
            }
            if cfg.split_valley_frac > 0.0 {
                let cand = m.candidate();
                if cand.length_px >= 10.0
                    && cand.elongation() >= 3.0
                    && let Some((a, b)) =
                        label::split_two_lobes(&self.comps, &self.fg, c, cfg.split_valley_frac)
                {
                    self.stats.splits += 1;
                    for part in [a, b] {
                        if part.area >= cfg.min_area_px {
                            self.moms.push(part);
                        }
                    }
                    continue;
                }
            }
            self.moms.push(m);
        }
        // Merge collinear streak fragments (bounded work: only the first 64 streak-like ones).
        let max_angle = cfg.merge_angle_deg.to_radians();
        let CandidateScratch {
            cands,
            streaks,
            alive,
        } = &mut self.scratch;
        cands.clear();
        cands.extend(self.moms.iter().map(Moments::candidate));
        streaks.clear();
        streaks.extend(
            (0..cands.len())
                .filter(|&i| {
                    let c = &cands[i];
                    c.length_px >= 2.0 * c.width_px.max(1.0) && c.length_px >= 4.0
                })
                .take(64),
        );
        alive.clear();
        alive.resize(cands.len(), true);
        for (k, &i) in streaks.iter().enumerate() {
            if !alive[i] {
                continue;
            }
            for &j in &streaks[k + 1..] {
                if alive[j]
                    && label::collinear_fragments(&cands[i], &cands[j], cfg.merge_gap_px, max_angle)
                {
                    let mj = self.moms[j];
                    self.moms[i].merge(&mj);
                    cands[i] = self.moms[i].candidate();
                    alive[j] = false;
                    self.stats.merges += 1;
                }
            }
        }
        if cfg.face_gap_px >= 0 {
            self.stats.merges += label::join_faces(
                &mut self.moms,
                alive,
                cfg.face_gap_px,
                cfg.face_max_extent_px,
            );
            for (i, c) in cands.iter_mut().enumerate() {
                if alive[i] && self.moms[i].fragments > 1 {
                    *c = self.moms[i].candidate();
                }
            }
        }
        self.candidates.extend(
            cands
                .iter()
                .zip(alive.iter())
                .filter(|(_, a)| **a)
                .map(|(c, _)| *c),
        );
        let before = self.candidates.len();
        self.candidates.retain(|c| keep(c, luma, prev));
        self.stats.filtered = (before - self.candidates.len()) as u32;
        if self.candidates.len() > cfg.max_candidates {
            self.stats.dropped_over_cap = (self.candidates.len() - cfg.max_candidates) as u32;
            self.stats.total_capped_frames += 1;
            self.candidates
                .sort_unstable_by(|a, b| b.mass.total_cmp(&a.mass));
            self.candidates.truncate(cfg.max_candidates);
        }
        self.candidates
            .sort_unstable_by(|a, b| a.y_px.total_cmp(&b.y_px).then(a.x_px.total_cmp(&b.x_px)));
    }
}

/// When one side's noise estimate exceeds the other's by this factor, something one-sided inflates
/// it (rain, lit drops): the other side keeps its own threshold ([`set_thresholds`]).
const ONE_SIDED_RATIO: f32 = 1.5;

/// The standard normal quantile function (Acklam's rational approximation, relative error
/// below 1.2e-9 over (0, 1)).
#[allow(clippy::excessive_precision)]
fn probit(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Rows ahead whose bytes the main pass asks the memory system for.
const PREFETCH_ROWS: usize = 3;

/// Hints the processor to bring `bytes` into the cache (one request per 64-byte line); a no-op
/// where there is no such hint.
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for chunk in bytes.chunks(64) {
        // SAFETY: a prefetch is only a hint: it never faults and has no visible effect; the
        // pointer is inside a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                chunk.as_ptr().cast::<i8>(),
                std::arch::x86_64::_MM_HINT_T0,
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// The standard normal distribution function.
fn normal_cdf(z: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26 for erf (absolute error below 1.5e-7).
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// Tile noise is measured by counting box sums beyond this many current noise deviations.
const NOISE_COUNT_LEVEL: f32 = 2.5;

/// Dither bytes are read from `dither[offset + x]`, offset in `0..DITHER_SPAN`.
const DITHER_SPAN: usize = 256;

/// A fixed table of well-mixed bytes (SplitMix64 output).
fn dither_table(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// The dither table offset of row `y` on frame `frame`: different for every row and frame.
fn dither_offset(y: usize, frame: u64) -> usize {
    let h = (y as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(frame.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    ((h >> 32) as usize) % DITHER_SPAN
}

/// Sets each tile's thresholds from its noise: `k_sigma` times the two-sided estimate, except
/// that when one side's tail is [`ONE_SIDED_RATIO`] times the other's (rain: bright drops
/// everywhere), the quieter side is held to its own estimate (floored at 0.53 of the two-sided
/// one, see `update_noise`): a dark object in the rain then needs about half the contrast it
/// did, while the drops stay under the brighter side's threshold.
fn set_thresholds(t: &mut Tiles, cfg: &MotionConfig) {
    let floor = 16.0 * cfg.min_threshold_grey;
    let thr = |s: f32| (cfg.k_sigma * f64::from(s)).max(floor).clamp(1.0, 16000.0) as i16;
    for i in 0..t.t_tile.len() {
        let [bright, dark] = t.sigma_side[i];
        let s = t.sigma_s[i];
        t.t_tile[i] = thr(if dark > ONE_SIDED_RATIO * bright {
            bright.min(s)
        } else {
            s
        });
        t.t_dark[i] = thr(if bright > ONE_SIDED_RATIO * dark {
            dark.min(s)
        } else {
            s
        });
    }
    for (nl, &s) in t.noise_level.iter_mut().zip(&t.sigma_s) {
        *nl = (NOISE_COUNT_LEVEL * s + 0.5).clamp(1.0, 16000.0) as i16;
    }
}

/// Anchor spans: a window anchored at (x, y) needs pixels x..=x+1 of rows y and y+1.
fn anchor_spans(proc: &RowSpans, height: usize) -> RowSpans {
    let mut out = RowSpans::empty(0);
    out.clear();
    let mut a = Vec::new();
    let mut sh = Vec::new();
    for y in 0..height {
        if y + 1 < height {
            roi::shrink_right_into(proc.row(y), 1, &mut sh);
            a.clear();
            roi::intersect_into(&sh, proc.row(y + 1), 0, 1, &mut a);
            for &s in &a {
                out.push(s);
            }
        }
        out.end_row();
    }
    out
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
