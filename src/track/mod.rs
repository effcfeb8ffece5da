//! Multi-target tracking of motion candidates with a gravity-aware motion model.
//!
//! Each track carries a constant-acceleration Kalman filter in image space (position, velocity,
//! acceleration per axis; white-noise jerk sized so the accelerations a fall shows at this camera,
//! a bird's turn or a leaf's flutter are all followed). Per frame:
//!
//! 1. every track is predicted to the frame's time;
//! 2. candidates are gated per track by Mahalanobis distance of the position (the measurement
//!    covariance is elongated along a motion-blur streak: its centroid is the mid-exposure position
//!    but less certain along the streak), by a speed limit for tracks without a velocity yet, and by
//!    streak orientation (a streak must lie along the motion);
//! 3. confirmed tracks, then tentative ones, are assigned by minimum total cost (Kuhn-Munkres per
//!    cluster of mutually gated tracks and candidates; greedy for very large clusters);
//! 4. assigned tracks are updated (position; plus the speed a streak's length implies, once the
//!    camera's exposure time has been learnt from confirmed tracks); unassigned ones coast with
//!    growing uncertainty; unassigned candidates start tentative tracks;
//! 5. a tentative track keeps a score, the log-likelihood ratio of "object" against "clutter"
//!    (each detection adds `ln(Pd / (clutter density x 2 pi sqrt|S|)) - d^2 / 2`, each miss
//!    `ln(1 - Pd)`; the clutter density is measured from the candidates of recent frames, over the
//!    whole picture and per 64-px cell, the larger of the two counting), so in sparse scenes three
//!    detections confirm a track and in rain or compressed sky many consistent ones are needed.
//!    It is confirmed once it has [`TrackerConfig::confirm_hits`] detections, a score of
//!    [`TrackerConfig::confirm_score`] and moved at least
//!    [`TrackerConfig::confirm_min_displacement_px`] in a fairly straight line (static flicker
//!    such as window lights never starts a track); it is dropped when its score falls below
//!    [`TrackerConfig::drop_score`].
//!    A confirmed track survives up to [`TrackerConfig::max_missed_frames`] missed frames
//!    (balconies, trees) and is then finished and returned with its observations.
//!
//! A frame the motion detector could not see (re-based, warming up) is passed with
//! [`Tracker::skip`]: no candidates, but no miss either.
//!
//! Positions are pixels with pixel centres on integer coordinates (as the motion module's).
//!
//! Beside the tracker, [`search`] looks for falls over a window of frames as candidates on one
//! parabola with the local gravity: objects seen in too few frames, or in scattered pieces, for
//! a young track to survive.

mod assign;
mod kalman;
pub mod search;

use nalgebra::{Matrix2, Vector2};
use serde::{Deserialize, Serialize};

use self::assign::Pair;
use self::kalman::Kalman;
use crate::bail;
use crate::calib::Calibration;
use crate::error::Result;
use crate::events::TrackPoint;
use crate::motion::{Candidate, Polarity};

/// Tuning of the tracker. Every field has a documented default; unknown fields are refused.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Free-fall acceleration as it appears in the image near the facade, pixels/s^2 downward;
    /// 0 when unknown. New tracks start with half of it as their vertical acceleration guess.
    /// [`TrackerConfig::for_calibration`] sets it from the facade's pixels per metre.
    /// Default: 0.
    pub gravity_px_s2: f64,
    /// Deviation of a new track's acceleration around that guess, pixels/s^2 (at least the
    /// gravity itself is used). Default: 600.
    pub accel_sigma_px_s2: f64,
    /// Process noise: deviation of the change of acceleration over one second, pixels/s^3.
    /// Default: 1000.
    pub jerk_px_s3: f64,
    /// Deviation of a new track's unknown velocity, pixels/s. Default: 500.
    pub init_speed_sigma_px_s: f64,
    /// Fastest image motion accepted between a track's first two detections, pixels/s.
    /// Default: 2500 (100 px per frame at 25 fps).
    pub max_speed_px_s: f64,
    /// Deviation of a detection's position, pixels (grows with the blob's size). Default: 0.5.
    pub meas_sigma_px: f64,
    /// Mahalanobis gate (chi-square, 2 degrees of freedom). Default: 16 (99.97 %).
    pub gate_chi2: f64,
    /// A candidate this elongated (length / width) is treated as a motion-blur streak.
    /// Default: 2.5.
    pub streak_min_elongation: f64,
    /// Largest angle between a streak's axis and the track's motion, degrees; once the track
    /// has a velocity, only streaks at most 3 px wide are held to it (a wider elongated blob is
    /// an elongated object, tumbling at any angle). Default: 30.
    pub streak_max_angle_deg: f64,
    /// Probability that the motion detector finds a present object in a frame. Default: 0.9.
    pub detection_probability: f64,
    /// Score (log-likelihood ratio) a tentative track needs to be confirmed. Default: 12.
    pub confirm_score: f64,
    /// A tentative track whose score falls below this is dropped. Default: -2 (a track of one
    /// detection dies at its first miss).
    pub drop_score: f64,
    /// A confirmed track whose last 5 detections average less evidence (log-likelihood ratio)
    /// than this is finished, without them: it was kept alive by clutter. Default: 2.
    pub min_hit_llr: f64,
    /// Detections needed to confirm a track. Default: 3 (the earlier ones stay in the track).
    pub confirm_hits: u32,
    /// Net movement needed to confirm a track, pixels. Default: 3.
    pub confirm_min_displacement_px: f64,
    /// Net movement over path length needed to confirm a track (1 = a straight line).
    /// Default: 0.5.
    pub confirm_min_straightness: f64,
    /// A tentative track not confirmed after this many frames is dropped (static flicker).
    /// Default: 50.
    pub max_tentative_frames: u32,
    /// Consecutive misses that drop a tentative track whatever its score; also the shortest
    /// coasting allowed to a young confirmed track. Default: 2.
    pub max_missed_tentative: u32,
    /// Consecutive misses a confirmed track coasts through before it is finished. Default: 12.
    /// A young track may coast only as many frames as it has detections beyond
    /// `confirm_hits` (at least `max_missed_tentative`).
    pub max_missed_frames: u32,
    /// Most confirmed tracks at once; further confirmations wait. Default: 1000 (heavy rain
    /// keeps hundreds of drops tracked: at 64, `eval-000176` of the tuning set postponed 8568
    /// confirmations, and a falling object's track would have waited behind the drops).
    pub max_tracks: usize,
    /// Most tentative tracks at once; further births are skipped (streaks and the weakest
    /// first). Default: 1000.
    pub max_tentative: usize,
    /// A confirmed track this long is finished (and a new one may continue it). Default: 3000.
    pub max_track_points: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            gravity_px_s2: 0.0,
            accel_sigma_px_s2: 600.0,
            jerk_px_s3: 1000.0,
            init_speed_sigma_px_s: 500.0,
            max_speed_px_s: 2500.0,
            meas_sigma_px: 0.5,
            gate_chi2: 16.0,
            streak_min_elongation: 2.5,
            streak_max_angle_deg: 30.0,
            detection_probability: 0.9,
            confirm_score: 12.0,
            drop_score: -2.0,
            min_hit_llr: 2.0,
            confirm_hits: 3,
            confirm_min_displacement_px: 3.0,
            confirm_min_straightness: 0.5,
            max_tentative_frames: 50,
            max_missed_tentative: 2,
            max_missed_frames: 12,
            max_tracks: 1000,
            max_tentative: 1000,
            max_track_points: 3000,
        }
    }
}

impl TrackerConfig {
    /// The defaults with the gravity of `calib`'s facade: 9.81 m/s^2 times the facade's mean
    /// vertical pixels per metre.
    pub fn for_calibration(calib: &Calibration) -> Self {
        let c = &calib.facade.corners_px;
        let edge = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
        let px = 0.5 * (edge(c[0], c[3]) + edge(c[1], c[2]));
        TrackerConfig {
            gravity_px_s2: 9.81 * px / calib.facade.height_m,
            ..TrackerConfig::default()
        }
    }

    /// Checks ranges; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("accel_sigma_px_s2", self.accel_sigma_px_s2),
            ("jerk_px_s3", self.jerk_px_s3),
            ("init_speed_sigma_px_s", self.init_speed_sigma_px_s),
            ("max_speed_px_s", self.max_speed_px_s),
            ("meas_sigma_px", self.meas_sigma_px),
            ("gate_chi2", self.gate_chi2),
            ("streak_min_elongation", self.streak_min_elongation),
            ("streak_max_angle_deg", self.streak_max_angle_deg),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                bail!(InvalidInput, "track.{name} must be positive, got {v}");
            }
        }
        if !self.gravity_px_s2.is_finite() {
            bail!(InvalidInput, "track.gravity_px_s2 must be finite");
        }
        if !(self.detection_probability > 0.0 && self.detection_probability < 1.0) {
            bail!(
                InvalidInput,
                "track.detection_probability must be in (0, 1)"
            );
        }
        if !(self.confirm_score.is_finite()
            && self.drop_score.is_finite()
            && self.min_hit_llr.is_finite())
        {
            bail!(
                InvalidInput,
                "track.confirm_score, drop_score and min_hit_llr must be finite"
            );
        }
        if self.confirm_hits < 2 {
            bail!(InvalidInput, "track.confirm_hits must be at least 2");
        }
        if self.max_tracks == 0 || self.max_track_points < 2 {
            bail!(
                InvalidInput,
                "track.max_tracks and max_track_points must be positive"
            );
        }
        Ok(())
    }
}

/// One detection of a tracked object: the contract's track point plus features for later stages.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Time, centre and box (the contract's `TrackPoint`).
    pub point: TrackPoint,
    /// Foreground pixels.
    pub area_px: u32,
    /// Signed mean difference against the background, grey levels.
    pub contrast: f32,
    /// Largest 2 x 2 window mean difference, grey levels.
    pub peak_contrast: f32,
    /// Sum of |difference|, grey levels x pixels.
    pub mass: f32,
    /// Length along the major axis, pixels.
    pub length_px: f32,
    /// Width across it, pixels.
    pub width_px: f32,
    /// Major-axis angle, radians.
    pub orientation_rad: f32,
    /// Brighter or darker than the background.
    pub polarity: Polarity,
}

impl Observation {
    fn new(t_s: f64, c: &Candidate) -> Self {
        Observation {
            point: TrackPoint {
                t_s,
                x_px: c.x_px,
                y_px: c.y_px,
                w_px: c.w_px(),
                h_px: c.h_px(),
            },
            area_px: c.area_px,
            contrast: c.contrast,
            peak_contrast: c.peak_contrast,
            mass: c.mass,
            length_px: c.length_px,
            width_px: c.width_px,
            orientation_rad: c.orientation_rad,
            polarity: c.polarity,
        }
    }
}

/// A tracked object.
#[derive(Clone, Debug)]
pub struct Track {
    /// Unique within this tracker, increasing.
    pub id: u64,
    /// False while tentative.
    pub confirmed: bool,
    /// Its detections, one per frame it was seen in, in time order.
    pub observations: Vec<Observation>,
    /// Consecutive frames without a detection (coasting).
    pub missed: u32,
    /// Frames skipped unseen ([`Tracker::skip`]) since its last detection.
    pub blind_frames: u32,
    /// Frames since the track started.
    pub age_frames: u32,
    /// Frames it coasted through in total.
    pub coasted_frames: u32,
    /// Log-likelihood ratio of object against clutter (see the module documentation).
    pub score: f64,
    /// The log-likelihood ratio of each observation (same order), for the quality test.
    hit_llr: Vec<f32>,
    path_px: f64,
    kf: Kalman,
}

impl Track {
    /// The observations as the contract's track points.
    pub fn track_points(&self) -> Vec<TrackPoint> {
        self.observations.iter().map(|o| o.point).collect()
    }
    /// The log-likelihood ratio of each observation, in order.
    pub fn hit_llr(&self) -> &[f32] {
        &self.hit_llr
    }
    /// Time of the first detection.
    pub fn start_s(&self) -> f64 {
        self.observations.first().map_or(0.0, |o| o.point.t_s)
    }
    /// Time of the last detection.
    pub fn end_s(&self) -> f64 {
        self.observations.last().map_or(0.0, |o| o.point.t_s)
    }
    /// Filtered position now (predicted while coasting), pixels.
    pub fn position_px(&self) -> [f64; 2] {
        let p = self.kf.pos();
        [p[0], p[1]]
    }
    /// Filtered velocity, pixels/s.
    pub fn velocity_px_s(&self) -> [f64; 2] {
        let v = self.kf.vel();
        [v[0], v[1]]
    }
    /// Filtered acceleration, pixels/s^2.
    pub fn acceleration_px_s2(&self) -> [f64; 2] {
        let a = self.kf.acc();
        [a[0], a[1]]
    }
    /// Straight-line distance from the first to the last detection, pixels.
    pub fn displacement_px(&self) -> f64 {
        match (self.observations.first(), self.observations.last()) {
            (Some(a), Some(b)) => (b.point.x_px - a.point.x_px).hypot(b.point.y_px - a.point.y_px),
            _ => 0.0,
        }
    }
}

/// Counters of the tracker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TrackerStats {
    /// Frames processed.
    pub frames: u64,
    /// Tentative tracks started.
    pub births: u64,
    /// Births skipped because [`TrackerConfig::max_tentative`] was reached.
    pub births_capped: u64,
    /// Tracks confirmed.
    pub confirmations: u64,
    /// Confirmations postponed because [`TrackerConfig::max_tracks`] was reached.
    pub confirmations_capped: u64,
    /// Tentative tracks dropped.
    pub dropped_tentative: u64,
    /// Confirmed tracks finished.
    pub finished: u64,
    /// Frames the motion detector could not see, skipped without a miss ([`Tracker::skip`]).
    pub blind_frames: u64,
    /// The camera's exposure as a fraction of the frame interval, learnt from streaks.
    pub exposure_fraction: Option<f64>,
}

/// Learns the exposure (fraction of the frame interval) from streak lengths of confirmed tracks.
#[derive(Clone, Copy, Debug, Default)]
struct ExposureEstimate {
    value: f64,
    samples: u32,
}

impl ExposureEstimate {
    const MIN_SAMPLES: u32 = 8;
    fn add(&mut self, ratio: f64) {
        let ratio = ratio.clamp(0.0, 1.5);
        self.samples += 1;
        let rate = (1.0 / f64::from(self.samples)).max(0.05);
        self.value += (ratio - self.value) * rate;
    }
    fn get(&self) -> Option<f64> {
        (self.samples >= Self::MIN_SAMPLES && self.value > 0.05).then_some(self.value)
    }
}

/// The multi-target tracker of one camera.
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    /// Clutter density, candidates per square pixel (smoothed over frames).
    clutter_per_px2: f64,
    /// Candidates per frame in each grid cell, averaged over recent frames: the local clutter.
    cell_rate: std::collections::HashMap<(i32, i32), f32>,
    grid: std::collections::HashMap<(i32, i32), Vec<u32>>,
    next_id: u64,
    last_t_s: Option<f64>,
    /// Consecutive frames skipped by [`Tracker::skip`].
    blind_run: u32,
    exposure: ExposureEstimate,
    stats: TrackerStats,
}

impl Tracker {
    /// A tracker; panics never, refuses a bad configuration.
    pub fn new(cfg: TrackerConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Tracker {
            cfg,
            tracks: Vec::new(),
            clutter_per_px2: 1e-6,
            cell_rate: Default::default(),
            grid: Default::default(),
            next_id: 1,
            last_t_s: None,
            blind_run: 0,
            exposure: ExposureEstimate::default(),
            stats: TrackerStats::default(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Active tracks, tentative and confirmed (see [`Track::confirmed`]).
    pub fn active(&self) -> &[Track] {
        &self.tracks
    }

    /// Counters.
    pub fn stats(&self) -> TrackerStats {
        TrackerStats {
            exposure_fraction: self.exposure.get(),
            ..self.stats
        }
    }

    /// Ends every track (end of input): returns the confirmed ones.
    pub fn flush(&mut self) -> Vec<Track> {
        let mut out = Vec::new();
        for t in self.tracks.drain(..) {
            if t.confirmed {
                self.stats.finished += 1;
                out.push(t);
            } else {
                self.stats.dropped_tentative += 1;
            }
        }
        out
    }

    /// Measurement covariance of a candidate: round blobs get `sigma` growing with size, streaks
    /// a larger deviation along their axis.
    fn meas_cov(&self, c: &Candidate) -> Matrix2<f64> {
        let base = self.cfg.meas_sigma_px + 0.05 * f64::from(c.area_px).sqrt();
        let blur = (f64::from(c.length_px) - f64::from(c.width_px)).max(0.0);
        let along = base + 0.15 * blur;
        let th = f64::from(c.orientation_rad);
        let (cs, sn) = (th.cos(), th.sin());
        let r = Matrix2::new(cs, -sn, sn, cs);
        r * Matrix2::new(along * along, 0.0, 0.0, base * base) * r.transpose()
    }

    fn is_streak(&self, c: &Candidate) -> bool {
        c.elongation() >= self.cfg.streak_min_elongation && c.length_px >= 4.0
    }

    /// Angle between an axis (radians, undirected) and a direction vector, radians in [0, pi/2].
    fn axis_angle(axis_rad: f64, d: Vector2<f64>) -> f64 {
        let a = (d[1].atan2(d[0]) - axis_rad).rem_euclid(std::f64::consts::PI);
        a.min(std::f64::consts::PI - a)
    }

    /// The cost (`d^2 + ln|S|`) of candidate `c` for track `t` at time `t_s`, or `None` outside
    /// the gate.
    fn pair_cost(&self, t: &Track, c: &Candidate, t_s: f64) -> Option<f64> {
        let z = Vector2::new(c.x_px, c.y_px);
        let (d2, logdet) = t.kf.gate(z, self.meas_cov(c))?;
        if d2 > self.cfg.gate_chi2 {
            return None;
        }
        let max_angle = self.cfg.streak_max_angle_deg.to_radians();
        let last = t.observations.last().expect("tracks have observations");
        let dt = (t_s - last.point.t_s).max(1e-6);
        let disp = z - Vector2::new(last.point.x_px, last.point.y_px);
        if t.observations.len() == 1 {
            // No velocity yet: a speed limit, and streaks must lie along the jump between them.
            if disp.norm() > self.cfg.max_speed_px_s * dt + 3.0 {
                return None;
            }
            if disp.norm() > 3.0 {
                let first_streak = last.length_px >= 4.0
                    && f64::from(last.length_px)
                        >= self.cfg.streak_min_elongation * f64::from(last.width_px.max(1.0));
                if first_streak
                    && Self::axis_angle(f64::from(last.orientation_rad), disp) > max_angle
                {
                    return None;
                }
                if self.is_streak(c)
                    && Self::axis_angle(f64::from(c.orientation_rad), disp) > max_angle
                {
                    return None;
                }
            }
        } else if self.is_streak(c) && c.width_px <= THIN_STREAK_WIDTH_PX {
            let v = t.kf.vel();
            let frame_dt = dt / f64::from(t.missed + t.blind_frames + 1);
            if v.norm() * frame_dt >= 2.0
                && Self::axis_angle(f64::from(c.orientation_rad), v) > max_angle
            {
                return None;
            }
        }
        Some(d2 + logdet)
    }

    /// A frame the motion detector could not see (it re-based its background and is warming
    /// up again): no candidates, but no evidence of absence either. The tracks carry on as if
    /// the frame had not been, without a miss, for up to `max_blind_frames` frames in a
    /// row; a longer blind spell counts as misses (an empty [`Tracker::update`]), so nothing
    /// coasts through minutes of darkness. Returns the tracks that finished.
    pub fn skip(&mut self, t_s: f64, max_blind_frames: u32) -> Vec<Track> {
        if self.blind_run >= max_blind_frames {
            let finished = self.update(t_s, &[]);
            self.blind_run = max_blind_frames;
            return finished;
        }
        self.blind_run += 1;
        self.stats.blind_frames += 1;
        for t in &mut self.tracks {
            t.blind_frames += 1;
        }
        Vec::new()
    }

    /// Processes the candidates of the frame at `t_s`; returns the tracks that finished.
    pub fn update(&mut self, t_s: f64, candidates: &[Candidate]) -> Vec<Track> {
        self.blind_run = 0;
        self.stats.frames += 1;
        let t_s = match self.last_t_s {
            Some(last) if t_s <= last => last + 1e-3,
            _ => t_s,
        };
        self.last_t_s = Some(t_s);
        let q = self.cfg.jerk_px_s3 * self.cfg.jerk_px_s3;
        for t in &mut self.tracks {
            t.kf.predict(t_s, q);
            t.age_frames += 1;
        }

        // Clutter density from this frame's candidates (their spread, at least 10^5 px^2).
        if !candidates.is_empty() {
            let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for c in candidates {
                x0 = x0.min(c.x_px);
                y0 = y0.min(c.y_px);
                x1 = x1.max(c.x_px);
                y1 = y1.max(c.y_px);
            }
            let area = ((x1 - x0) * (y1 - y0)).max(1e5);
            let density = candidates.len() as f64 / area;
            self.clutter_per_px2 += (density - self.clutter_per_px2) * 0.3;
        } else {
            self.clutter_per_px2 *= 0.7;
        }
        self.clutter_per_px2 = self.clutter_per_px2.max(1e-7);
        // Candidates bucketed in a grid, so gating looks only at nearby ones.
        for cell in self.grid.values_mut() {
            cell.clear();
        }
        for (i, c) in candidates.iter().enumerate() {
            self.grid
                .entry(cell_of(c.x_px, c.y_px))
                .or_default()
                .push(i as u32);
        }
        // Local clutter: where candidates keep appearing (flat sky under compression, rain on
        // one side), a track needs more evidence than in a quiet part of the picture.
        for (cell, rate) in &mut self.cell_rate {
            let n = self.grid.get(cell).map_or(0, Vec::len) as f32;
            *rate += (n - *rate) * LOCAL_CLUTTER_RATE;
        }
        for (cell, idx) in &self.grid {
            if !idx.is_empty() && !self.cell_rate.contains_key(cell) {
                self.cell_rate
                    .insert(*cell, idx.len() as f32 * LOCAL_CLUTTER_RATE);
            }
        }
        self.cell_rate.retain(|_, r| *r > 1e-3);

        // Gate and assign: confirmed tracks first, then tentative ones on what is left.
        let mut cand_used = vec![false; candidates.len()];
        let mut near: Vec<u32> = Vec::new();
        let mut assigned: Vec<Option<usize>> = vec![None; self.tracks.len()];
        for confirmed in [true, false] {
            let idx: Vec<usize> = (0..self.tracks.len())
                .filter(|&i| self.tracks[i].confirmed == confirmed)
                .collect();
            let mut pairs = Vec::new();
            for (k, &ti) in idx.iter().enumerate() {
                let t = &self.tracks[ti];
                let radius = self.gate_radius(t, t_s);
                let p = t.kf.pos();
                let (a, b) = (
                    cell_of(p[0] - radius, p[1] - radius),
                    cell_of(p[0] + radius, p[1] + radius),
                );
                near.clear();
                if (b.0 - a.0 + 1) as i64 * (b.1 - a.1 + 1) as i64 > self.grid.len() as i64 {
                    near.extend(0..candidates.len() as u32);
                } else {
                    for gy in a.1..=b.1 {
                        for gx in a.0..=b.0 {
                            if let Some(cell) = self.grid.get(&(gx, gy)) {
                                near.extend_from_slice(cell);
                            }
                        }
                    }
                }
                for &ci in &near {
                    let ci = ci as usize;
                    let c = &candidates[ci];
                    if cand_used[ci] || (c.x_px - p[0]).hypot(c.y_px - p[1]) > radius {
                        continue;
                    }
                    if let Some(cost) = self.pair_cost(t, c, t_s) {
                        pairs.push(Pair {
                            track: k,
                            cand: ci,
                            cost,
                        });
                    }
                }
            }
            // Missing costs what a candidate at the gate's edge would.
            let miss: Vec<f64> = idx
                .iter()
                .map(|&ti| {
                    let t = &self.tracks[ti];
                    let r = Matrix2::identity() * self.cfg.meas_sigma_px.powi(2);
                    let det = (t.kf.pos_cov() + r).determinant().max(1e-12);
                    self.cfg.gate_chi2 + det.ln()
                })
                .collect();
            let a = assign::assign(&pairs, &miss, candidates.len());
            for (k, ci) in a.into_iter().enumerate() {
                if let Some(ci) = ci {
                    cand_used[ci] = true;
                    assigned[idx[k]] = Some(ci);
                }
            }
        }

        // Update, scoring tentative tracks.
        let ln_pd = self.cfg.detection_probability.ln();
        let ln_miss = (1.0 - self.cfg.detection_probability).ln();
        for (ti, ci) in assigned.iter().enumerate() {
            match ci {
                Some(ci) => {
                    let c = &candidates[*ci];
                    let t = &self.tracks[ti];
                    let local = self
                        .cell_rate
                        .get(&cell_of(c.x_px, c.y_px))
                        .map_or(0.0, |&r| f64::from(r) / (CELL_PX * CELL_PX));
                    let ln_clutter = self.clutter_per_px2.max(local).ln();
                    // An object rarely flips from brighter to darker than the background.
                    let flip = t
                        .observations
                        .last()
                        .is_some_and(|o| o.polarity != c.polarity);
                    let llr =
                        t.kf.gate(Vector2::new(c.x_px, c.y_px), self.meas_cov(c))
                            .map_or(0.0, |(d2, logdet)| {
                                ln_pd
                                    - ln_clutter
                                    - (2.0 * std::f64::consts::PI).ln()
                                    - 0.5 * logdet
                                    - 0.5 * d2
                                    - if flip { POLARITY_FLIP_PENALTY } else { 0.0 }
                            });
                    self.tracks[ti].score += llr;
                    self.tracks[ti].hit_llr.push(llr as f32);
                    self.apply(ti, c, t_s);
                }
                None => {
                    let t = &mut self.tracks[ti];
                    t.missed += 1;
                    t.coasted_frames += 1;
                    t.score += ln_miss;
                }
            }
        }

        // Confirm, drop, finish.
        let mut finished = Vec::new();
        let mut confirmed_now = self.tracks.iter().filter(|t| t.confirmed).count();
        let cfg = &self.cfg;
        let mut keep = Vec::with_capacity(self.tracks.len());
        for mut t in self.tracks.drain(..) {
            if !t.confirmed && t.missed == 0 && Self::ready(cfg, &t) {
                if confirmed_now < cfg.max_tracks {
                    t.confirmed = true;
                    confirmed_now += 1;
                    self.stats.confirmations += 1;
                } else {
                    self.stats.confirmations_capped += 1;
                }
            }
            let done = if t.confirmed {
                // A young track (perhaps clutter that lined up) may coast only briefly; an
                // established one up to `max_missed_frames`.
                let hits = t.observations.len() as u32;
                let allowed = hits.saturating_sub(cfg.confirm_hits).clamp(
                    cfg.max_missed_tentative,
                    cfg.max_missed_frames.max(cfg.max_missed_tentative),
                );
                t.missed > allowed
                    || t.observations.len() >= cfg.max_track_points
                    || Self::lost_quality(cfg, &mut t)
            } else {
                t.missed > cfg.max_missed_tentative
                    || t.age_frames > cfg.max_tentative_frames
                    || t.score < cfg.drop_score
            };
            if !done {
                keep.push(t);
            } else if t.confirmed {
                self.stats.finished += 1;
                finished.push(t);
            } else {
                self.stats.dropped_tentative += 1;
            }
        }
        self.tracks = keep;

        // Births from unused candidates, strongest first, up to the cap.
        let tentative = self.tracks.iter().filter(|t| !t.confirmed).count();
        let mut free: Vec<usize> = (0..candidates.len()).filter(|&i| !cand_used[i]).collect();
        free.sort_by(|&a, &b| {
            let (ca, cb) = (&candidates[a], &candidates[b]);
            self.is_streak(ca)
                .cmp(&self.is_streak(cb))
                .then(cb.mass.total_cmp(&ca.mass))
        });
        let room = self.cfg.max_tentative.saturating_sub(tentative);
        if free.len() > room {
            self.stats.births_capped += (free.len() - room) as u64;
            free.truncate(room);
        }
        free.sort_unstable();
        for ci in free {
            self.birth(&candidates[ci], t_s);
        }
        finished
    }

    /// True when the last [`QUALITY_WINDOW`] detections of a confirmed track were, on average,
    /// no better evidence than clutter (a track kept alive by hopping between noise candidates,
    /// typically after its object left); those detections are then removed from the track.
    fn lost_quality(cfg: &TrackerConfig, t: &mut Track) -> bool {
        let n = t.hit_llr.len();
        if t.missed > 0 || n < cfg.confirm_hits as usize + QUALITY_WINDOW {
            return false;
        }
        let recent = &t.hit_llr[n - QUALITY_WINDOW..];
        let mean = recent.iter().map(|&v| f64::from(v)).sum::<f64>() / QUALITY_WINDOW as f64;
        if mean >= cfg.min_hit_llr {
            return false;
        }
        // Drop the trailing detections that were no better than clutter.
        while t.observations.len() > 1
            && t.hit_llr
                .last()
                .is_some_and(|&v| f64::from(v) < cfg.min_hit_llr)
        {
            t.observations.pop();
            t.hit_llr.pop();
        }
        true
    }

    /// True when a tentative track has enough detections and score, and moved enough, in a line.
    fn ready(cfg: &TrackerConfig, t: &Track) -> bool {
        if (t.observations.len() as u32) < cfg.confirm_hits || t.score < cfg.confirm_score {
            return false;
        }
        let net = t.displacement_px();
        net >= cfg.confirm_min_displacement_px
            && net >= cfg.confirm_min_straightness * t.path_px.max(1e-9)
    }

    fn birth(&mut self, c: &Candidate, t_s: f64) {
        let g = self.cfg.gravity_px_s2;
        let kf = Kalman::new(
            t_s,
            Vector2::new(c.x_px, c.y_px),
            self.meas_cov(c),
            self.cfg.init_speed_sigma_px_s,
            Vector2::new(0.0, 0.5 * g),
            self.cfg.accel_sigma_px_s2.max(g.abs()),
        );
        self.tracks.push(Track {
            id: self.next_id,
            confirmed: false,
            observations: vec![Observation::new(t_s, c)],
            missed: 0,
            blind_frames: 0,
            age_frames: 0,
            coasted_frames: 0,
            score: 0.0,
            hit_llr: vec![0.0],
            path_px: 0.0,
            kf,
        });
        self.next_id += 1;
        self.stats.births += 1;
    }

    /// A radius around the predicted position outside which no candidate can pass the gate.
    fn gate_radius(&self, t: &Track, t_s: f64) -> f64 {
        let p = t.kf.pos_cov();
        let l_max = 0.5 * (p[(0, 0)] + p[(1, 1)])
            + (0.25 * (p[(0, 0)] - p[(1, 1)]).powi(2) + p[(0, 1)] * p[(1, 0)])
                .max(0.0)
                .sqrt();
        // The largest measurement deviation a candidate can have (a long streak).
        let r_max = 10.0 + self.cfg.meas_sigma_px;
        let mut radius = (self.cfg.gate_chi2 * (l_max + r_max * r_max)).sqrt();
        if t.observations.len() == 1 {
            let dt = (t_s - t.end_s()).max(0.0);
            radius = radius.min(self.cfg.max_speed_px_s * dt + 3.0);
        }
        radius
    }

    /// Updates track `ti` with candidate `c`.
    fn apply(&mut self, ti: usize, c: &Candidate, t_s: f64) {
        let r = self.meas_cov(c);
        let streak = self.is_streak(c);
        let exposure = self.exposure.get();
        let t = &mut self.tracks[ti];
        let last = *t.observations.last().expect("tracks have observations");
        let frame_dt = (t_s - last.point.t_s) / f64::from(t.missed + t.blind_frames + 1);
        t.kf.update_pos(Vector2::new(c.x_px, c.y_px), r);
        if streak && t.observations.len() >= 2 {
            let th = f64::from(c.orientation_rad);
            let mut u = Vector2::new(th.cos(), th.sin());
            let v = t.kf.vel();
            if v.dot(&u) < 0.0 {
                u = -u;
            }
            let blur = (f64::from(c.length_px) - f64::from(c.width_px)).max(0.0);
            let speed = v.dot(&u);
            let sigma_v = (u.transpose() * t.kf.vel_cov() * u)[0].max(0.0).sqrt();
            if let Some(f) = exposure {
                // Direction known: the streak's length tells the speed.
                if speed > 3.0 * sigma_v && frame_dt > 0.0 {
                    let meas = blur / (f * frame_dt);
                    t.kf.update_speed_along(u, meas, 0.25 * meas + 30.0);
                }
            }
            if t.confirmed && speed * frame_dt >= 4.0 && speed > 3.0 * sigma_v {
                self.exposure.add(blur / (speed * frame_dt));
            }
        }
        let t = &mut self.tracks[ti];
        t.path_px += (c.x_px - last.point.x_px).hypot(c.y_px - last.point.y_px);
        t.observations.push(Observation::new(t_s, c));
        t.missed = 0;
        t.blind_frames = 0;
    }
}

/// Only a streak this thin must lie along its track's motion: a wider elongated blob may be an
/// elongated object (a brick, a bottle) tumbling at any angle.
const THIN_STREAK_WIDTH_PX: f32 = 3.0;

/// Detections over which a confirmed track's evidence is averaged for [`Tracker::lost_quality`].
const QUALITY_WINDOW: usize = 5;
/// Log-likelihood penalty of a detection whose polarity differs from the previous one.
const POLARITY_FLIP_PENALTY: f64 = 3.0;

/// Side of the grid cells that index candidates and measure local clutter, pixels.
const CELL_PX: f64 = 64.0;
/// Local clutter rates move this fraction towards each frame's count.
const LOCAL_CLUTTER_RATE: f32 = 0.1;

/// Grid cell of the candidate index.
fn cell_of(x: f64, y: f64) -> (i32, i32) {
    (
        (x / CELL_PX).floor().clamp(-1e6, 1e6) as i32,
        (y / CELL_PX).floor().clamp(-1e6, 1e6) as i32,
    )
}

#[cfg(test)]
mod tests;
