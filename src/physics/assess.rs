//! Fall or not: fits a candidate track, computes features that tell falls from birds, leaves,
//! insects, rain and lights, and combines them with a logistic model into a score.
//!
//! Hard gates first (too few points, no motion, no descent, too short), then the fits, then the
//! score. The logistic coefficients are a [`ScoreModel`] ([`DEFAULT_SCORE_MODEL`] by default)
//! so they can be calibrated on a synthetic clip set without touching the code.

use serde::Serialize;

use crate::events::TrackPoint;

use super::facade::FacadeModel;
use super::fit::{
    BallisticFit, BallisticState, G_M_S2, LineFit, MIN_TERMINAL_M_S, Obs, PlaneFit,
    drag_of_terminal_speed, fit_ballistic, fit_ballistic_bounded,
};
use super::origin::{FallEstimate, estimate};

/// Shortest track whose end speed weighs its flutter penalties
/// ([`ScoreModel::flutter_speed_m_s`]), seconds. Default 1.0.
pub const FLUTTER_MIN_DURATION_S: f64 = 1.0;
/// Fewest track points assessed. Default 5.
pub const MIN_POINTS: usize = 5;
/// A track whose bounding box diagonal is below this does not move, pixels. Default 5.
pub const STATIC_EXTENT_PX: f64 = 5.0;
/// Shortest track accepted unless it fell [`MIN_DROP_STOREYS`], seconds. Default 0.4.
pub const MIN_DURATION_S: f64 = 0.4;
/// Storeys of fall that make a short track long enough. Default 2.
pub const MIN_DROP_STOREYS: f64 = 2.0;
/// Least descent from the highest point, metres (0.45 s of free fall): a jittery near-static track
/// whose last point jumps is not a fall. Default 1.0.
pub const MIN_DESCENT_M: f64 = 1.0;
/// A track seen for less than this ... Default 1.0 s.
pub const SHORT_TRACK_S: f64 = 1.0;
/// ... that descends less than this many storeys ... Default 1.0.
pub const SHORT_TRACK_STOREYS: f64 = 1.0;
/// ... is the first second of a fall at most, when drag has not yet slowed anything that falls
/// from a window: it must accelerate at least this share of g on the facade (birds and leaves
/// seen briefly do not). Default 0.75.
pub const SHORT_TRACK_MIN_G_RATIO: f64 = 0.75;
/// A track seen for less than this many seconds ... Default 1.5.
pub const SIDEWAYS_TRACK_S: f64 = 1.5;
/// ... that travels sideways more than this many times its descent (plus 0.5 m) is carried by the
/// air (a leaf, paper, a bird), not falling: in its first second and a half a fall from a window
/// drops further than any wind or sideways throw carries it. Default 1.2.
pub const SIDEWAYS_RATIO: f64 = 1.2;
/// Largest fall along the fitted path before the first sighting that lies in the picture (and
/// outside the calibration's ignored areas), metres (0.7 s of free fall from rest, or the 6
/// frames at 25 fps an object entering through the top edge at 15 m/s may take to be tracked:
/// the first frames after a release are slow and its first detections at an edge partial, so
/// they may be missed; a whole stretch of the picture is not). Default 2.5.
pub const MAX_UNSEEN_DROP_M: f64 = 2.5;
/// Fastest downward throw from a window, m/s: a track first seen in the middle of the picture
/// falling faster entered the view at full speed (rain, a diving bird). Default 7 (a firm
/// downward throw; 10 let night rain through: on the tuning clips 7 removed 5 of 9 false alarms
/// and no object).
pub const MAX_THROW_DOWN_M_S: f64 = 7.0;
/// Centroid noise assumed for every point, pixels. Default 1.0.
pub const BASE_NOISE_PX: f64 = 1.0;
/// Extra centroid noise per pixel of blob size (segmentation jitter of larger blobs).
/// Default 0.05.
pub const SIZE_NOISE_FRAC: f64 = 0.05;
/// Score at and above which a track is a fall. Default 0.5.
pub const ACCEPT_SCORE: f64 = 0.5;
/// Lowest terminal speed of a light object (a rubbish bag), m/s: accepted only when its release
/// was seen (see [`assess_with`]). Leaves and paper fall at 0.6-2 m/s. Default 3.5.
pub const LIGHT_MIN_TERMINAL_M_S: f64 = 3.5;
/// ... and its fitted terminal speed at most this, m/s (a heavier object's fall is judged by the
/// standard reading alone). Default 9.
pub const LIGHT_MAX_TERMINAL_M_S: f64 = 9.0;
/// A light object's track must last this long, seconds, and fall this many storeys. Defaults
/// 1.0 and 2.0.
pub const LIGHT_MIN_DURATION_S: f64 = 1.0;
/// See [`LIGHT_MIN_DURATION_S`].
pub const LIGHT_MIN_STOREYS: f64 = 2.0;
/// A light object's fitted downward speed at its first sighting is at most this fraction of its
/// terminal speed: it was seen speeding up from the release. Default 0.5.
pub const LIGHT_MAX_START_SPEED_FRAC: f64 = 0.5;

/// Why a track is not a fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Too few points, or too short in time and in height (rain streaks, fragments).
    TooShort,
    /// Does not move (lights, reflections).
    Static,
    /// Does not go down (climbing birds), or goes up again after falling (a bird pulling up).
    NotDescending,
    /// Moves at near-constant velocity (gliding birds, rain, objects already at terminal speed).
    NotAccelerating,
    /// Accelerates faster than gravity can explain at any plausible distance from the wall.
    ImplausibleAcceleration,
    /// Slow, near a terminal speed far below any falling object's (leaves, paper).
    TooSlow,
    /// The ballistic model does not fit (flapping flight, erratic insects).
    NonBallistic,
    /// Sideways oscillation around the fitted path (fluttering leaves, paper).
    Fluttering,
    /// Periodic size change (wing beats).
    SizeOscillation,
    /// Far too large for an object at the facade (an insect at the lens).
    TooLarge,
    /// Explaining the motion needs a distance from the wall or an outward speed outside the
    /// priors.
    ImplausibleDepth,
    /// The fit did not converge to finite numbers.
    FitFailed,
    /// The fitted release lies far up a stretch of the picture where nothing was seen: the
    /// track entered the view at full speed in the middle of the picture (rain drops, birds
    /// diving in), not from a window.
    UnseenStart,
}

/// The outcome for one track.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A fall, with its release point.
    Fall(Box<FallEstimate>),
    /// Not a fall, and the main reason.
    Reject(RejectReason),
}

/// Verdict, score and the features that led to it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// Fall or not.
    pub verdict: Verdict,
    /// Probability-like score in [0, 1] from the logistic model: 0 for tracks stopped by a hard
    /// gate; for tracks rejected before the 3-D fit (their other features already rule a fall
    /// out), the best score the fit could have given them.
    pub score: f64,
    /// The features (NaN where a stage did not run).
    pub features: Features,
}

impl Assessment {
    /// The fall estimate, when the verdict is a fall.
    pub fn fall(&self) -> Option<&FallEstimate> {
        match &self.verdict {
            Verdict::Fall(f) => Some(f),
            Verdict::Reject(_) => None,
        }
    }

    /// The reason, when the verdict is a rejection.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match &self.verdict {
            Verdict::Fall(_) => None,
            Verdict::Reject(r) => Some(*r),
        }
    }
}

/// What the score is computed from. Values a stage did not reach are NaN.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Features {
    /// Points used (finite, distinct times).
    pub n_points: usize,
    /// Time from the first to the last point, seconds.
    pub duration_s: f64,
    /// Diagonal of the track's bounding box, pixels.
    pub extent_px: f64,
    /// Highest to last observed point, on the facade, metres.
    pub descent_m: f64,
    /// `descent_m` in storeys.
    pub descent_storeys: f64,
    /// 3-D ballistic fit: root-mean-square residual, pixels.
    pub rmse_px: f64,
    /// 3-D fit: root-mean-square per-coordinate residual in noise sigmas, worst 10 % of points
    /// left out.
    pub fit_sigma: f64,
    /// 3-D fit: the same for the image-x component only (sideways motion for a falling object).
    pub lateral_sigma: f64,
    /// Sideways swings per second: reversals of the facade-x residual of the facade-plane fit
    /// (5-point smoothed) by more than 6 of its smoothed noise sigmas. Fluttering leaves and
    /// paper swing; falling objects do not.
    pub lateral_swings_hz: f64,
    /// Constant-velocity fit in pixels: root-mean-square residual, pixels.
    pub line_rmse_px: f64,
    /// `line_rmse_px / max(rmse_px, noise)`: how much better acceleration explains the track.
    pub accel_ratio: f64,
    /// Downward acceleration on the facade plane, m/s^2.
    pub g_fit_m_s2: f64,
    /// `g_fit_m_s2 / 9.81`.
    pub g_ratio: f64,
    /// Facade-plane speed at the last point, m/s.
    pub end_speed_m_s: f64,
    /// Observed descent over the least descent of any fall in the same time: from rest, with
    /// the lowest terminal speed a fall may have ([`MIN_TERMINAL_M_S`]). Below 1 is slower than
    /// any falling object (leaves, paper, a descending bird).
    pub descent_ratio: f64,
    /// Fitted wall distance at the first sighting, metres.
    pub wall_distance_m: f64,
    /// Fitted terminal speed, m/s (infinite: no drag).
    pub terminal_speed_m_s: f64,
    /// Violation of the wall-distance and outward-speed boxes, in box sigmas.
    pub box_violation: f64,
    /// Coefficient of variation of the blob size (smaller box side) about a linear trend.
    pub size_cv: f64,
    /// Median blob size on the facade, metres.
    pub size_m: f64,
    /// Fraction of 3-frame steps after the highest point that go up by more than the noise.
    pub rise_fraction: f64,
    /// Sideways travel along the facade from the first to the last point, metres.
    pub sideways_m: f64,
}

impl Features {
    /// The features that need no 3-D fit: descent, facade-plane acceleration and speeds, sideways
    /// swings, sizes, the constant-velocity fit.
    fn fill_before_fit(
        &mut self,
        model: &FacadeModel,
        pts: &[TrackPoint],
        obs: &[Obs],
        plane: &PlaneFit,
    ) {
        let t_last = obs[obs.len() - 1].t_s;
        let heights: Vec<f64> = obs
            .iter()
            .map(|o| model.image_to_facade(o.px).height_m)
            .collect();
        let (descent_m, top_idx) = descent(&heights);
        self.descent_m = descent_m;
        self.descent_storeys = descent_m / model.calibration().floors.storey_m;
        self.g_fit_m_s2 = plane.g_down_m_s2();
        self.g_ratio = self.g_fit_m_s2 / G_M_S2;
        let v_end = plane.velocity(t_last);
        self.end_speed_m_s = v_end[0].hypot(v_end[1]);
        self.sideways_m = (model.image_to_facade(obs[obs.len() - 1].px).x_m
            - model.image_to_facade(obs[0].px).x_m)
            .abs();
        let descent_s = t_last - obs[top_idx].t_s;
        self.descent_ratio = descent_m / least_fall_m(descent_s).max(1e-6);
        self.rise_fraction = rise_fraction(
            &heights[top_idx..],
            &obs[top_idx..],
            &plane.px_per_m[top_idx..],
        );
        self.lateral_swings_hz = lateral_swings_hz(plane, obs);
        (self.size_cv, self.size_m) = size_features(pts, &plane.px_per_m);
        self.line_rmse_px = LineFit::fit(obs).map_or(f64::NAN, |l| l.rmse_px);
    }

    /// The hard gates on descent and length.
    fn gate(&self) -> Option<RejectReason> {
        if self.descent_m < MIN_DESCENT_M {
            Some(RejectReason::NotDescending)
        } else if self.duration_s < MIN_DURATION_S && self.descent_storeys < MIN_DROP_STOREYS {
            Some(RejectReason::TooShort)
        } else if self.duration_s < SHORT_TRACK_S
            && self.descent_storeys < SHORT_TRACK_STOREYS
            && self.g_ratio < SHORT_TRACK_MIN_G_RATIO
        {
            Some(RejectReason::NotAccelerating)
        } else if self.duration_s < SIDEWAYS_TRACK_S
            && self.sideways_m > SIDEWAYS_RATIO * self.descent_m + 0.5
        {
            Some(RejectReason::Fluttering)
        } else {
            None
        }
    }

    fn empty() -> Features {
        Features {
            n_points: 0,
            duration_s: f64::NAN,
            extent_px: f64::NAN,
            descent_m: f64::NAN,
            descent_storeys: f64::NAN,
            rmse_px: f64::NAN,
            fit_sigma: f64::NAN,
            lateral_sigma: f64::NAN,
            lateral_swings_hz: f64::NAN,
            line_rmse_px: f64::NAN,
            accel_ratio: f64::NAN,
            g_fit_m_s2: f64::NAN,
            g_ratio: f64::NAN,
            end_speed_m_s: f64::NAN,
            descent_ratio: f64::NAN,
            wall_distance_m: f64::NAN,
            terminal_speed_m_s: f64::NAN,
            box_violation: f64::NAN,
            size_cv: f64::NAN,
            size_m: f64::NAN,
            rise_fraction: f64::NAN,
            sideways_m: f64::NAN,
        }
    }
}

/// Coefficients of the logistic score `1 / (1 + exp(-z))`, `z = bias + sum(weight * term)`.
/// Each term is a transformed feature, 0 for a textbook fall (penalties) or growing with the
/// evidence for one (evidence terms); see [`ScoreModel::terms`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ScoreModel {
    /// Constant.
    pub bias: f64,
    /// Penalty: `ln(max(fit_sigma / fit_sigma_ok, 1))`.
    pub w_fit: f64,
    /// Fit residual (in sigmas) tolerated without penalty (noise, blur streaks).
    pub fit_sigma_ok: f64,
    /// Penalty: `ln(max(lateral_sigma / fit_sigma_ok, 1))`.
    pub w_lateral: f64,
    /// Penalty: `max(0, lateral_swings_hz - swings_ok_hz)`.
    pub w_swings: f64,
    /// Sideways swings per second tolerated (noise, a bounce).
    pub swings_ok_hz: f64,
    /// Evidence: `min(ln(max(accel_ratio, 1)), accel_cap) * clamp(g_ratio / g_ratio_low, 0, 1)`.
    pub w_accel: f64,
    /// Cap of the acceleration evidence.
    pub accel_cap: f64,
    /// Penalty: `max(0, g_ratio_low - g_ratio) / g_ratio_low`.
    pub w_g_low: f64,
    /// Apparent g ratio below which the track is not accelerating like a fall (drag lowers it).
    pub g_ratio_low: f64,
    /// Penalty: `max(0, g_ratio - g_ratio_high) / 0.4`.
    pub w_g_high: f64,
    /// Apparent g ratio above which no wall distance explains it.
    pub g_ratio_high: f64,
    /// Penalty: `max(0, ln(descent_ratio_ok / descent_ratio))`.
    pub w_slow: f64,
    /// Descent ratio below which a track is too slow to be falling.
    pub descent_ratio_ok: f64,
    /// Penalty: `max(0, size_cv - size_cv_ok) / size_cv_ok`.
    pub w_size_cv: f64,
    /// Size variation tolerated (tumbling objects), as a coefficient of variation.
    pub size_cv_ok: f64,
    /// Penalty: `max(0, ln(size_m / size_m_ok))`.
    pub w_size_m: f64,
    /// Largest plausible object size at the facade, metres.
    pub size_m_ok: f64,
    /// Penalty: the box violation in sigmas.
    pub w_box: f64,
    /// Penalty: the rise fraction.
    pub w_rise: f64,
    /// Evidence: `min(descent_storeys, 4) / 4`.
    pub w_descent: f64,
    /// The flutter penalties (lateral residual, swings, size variation) apply in full up to
    /// this facade-plane end speed, m/s: leaves and paper never fall faster...
    pub flutter_speed_m_s: f64,
    /// ... and not at all from this one, m/s (linearly in between): a tumbling box whose
    /// outline and centroid jitter is fast.
    pub no_flutter_speed_m_s: f64,
}

/// Hand-set coefficients, chosen on the synthetic tracks of this module's tests; to be
/// recalibrated on the synthetic clip set.
pub const DEFAULT_SCORE_MODEL: ScoreModel = ScoreModel {
    bias: -0.5,
    w_fit: -3.0,
    fit_sigma_ok: 1.5,
    w_lateral: -1.0,
    w_swings: -2.0,
    swings_ok_hz: 0.5,
    w_accel: 2.0,
    accel_cap: 3.0,
    w_g_low: -5.0,
    g_ratio_low: 0.35,
    w_g_high: -5.0,
    g_ratio_high: 1.6,
    w_slow: -4.0,
    descent_ratio_ok: 0.9,
    w_size_cv: -1.2,
    size_cv_ok: 0.15,
    w_size_m: -4.0,
    size_m_ok: 1.5,
    w_box: -0.7,
    w_rise: -10.0,
    w_descent: 1.5,
    flutter_speed_m_s: 4.0,
    no_flutter_speed_m_s: 7.0,
};

/// One term of the score: its value, weight, and the reason it stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Term {
    /// The transformed feature.
    pub value: f64,
    /// Its weight.
    pub weight: f64,
    /// Largest value the term can take (evidence terms), or 0 for penalties.
    pub best_value: f64,
    /// The reason a shortfall in this term stands for.
    pub reason: RejectReason,
}

impl ScoreModel {
    /// The terms of the score for a set of features.
    pub fn terms(&self, f: &Features) -> [Term; 12] {
        let pen = |value: f64, weight: f64, reason| Term {
            value: if value.is_finite() {
                value.max(0.0)
            } else {
                0.0
            },
            weight,
            best_value: 0.0,
            reason,
        };
        let ev = |value: f64, cap: f64, weight: f64, reason| Term {
            value: if value.is_finite() {
                value.clamp(0.0, cap)
            } else {
                0.0
            },
            weight,
            best_value: cap,
            reason,
        };
        // What of the flutter penalties applies at this end speed (1 when unknown, and on a
        // track shorter than `FLUTTER_MIN_DURATION_S`: its speed is an extrapolation, and half a
        // swing of a leaf near the camera looks like the start of a fall).
        let flutter = if f.end_speed_m_s.is_finite() && f.duration_s >= FLUTTER_MIN_DURATION_S {
            ((self.no_flutter_speed_m_s - f.end_speed_m_s)
                / (self.no_flutter_speed_m_s - self.flutter_speed_m_s).max(1e-9))
            .clamp(0.0, 1.0)
        } else {
            1.0
        };
        [
            pen(
                (f.fit_sigma / self.fit_sigma_ok).max(1.0).ln(),
                self.w_fit,
                RejectReason::NonBallistic,
            ),
            pen(
                (f.lateral_sigma / self.fit_sigma_ok).max(1.0).ln(),
                self.w_lateral * flutter,
                RejectReason::Fluttering,
            ),
            pen(
                f.lateral_swings_hz - self.swings_ok_hz,
                self.w_swings * flutter,
                RejectReason::Fluttering,
            ),
            // Perspective bends a constant-velocity path in the image as much as gravity does
            // (rain at terminal speed, a gliding bird): acceleration in pixels counts only in
            // proportion to the acceleration measured on the facade.
            ev(
                f.accel_ratio.max(1.0).ln().min(self.accel_cap)
                    * (f.g_ratio / self.g_ratio_low).clamp(0.0, 1.0),
                self.accel_cap,
                self.w_accel,
                RejectReason::NotAccelerating,
            ),
            pen(
                (self.g_ratio_low - f.g_ratio) / self.g_ratio_low,
                self.w_g_low,
                RejectReason::NotAccelerating,
            ),
            pen(
                (f.g_ratio - self.g_ratio_high) / 0.4,
                self.w_g_high,
                RejectReason::ImplausibleAcceleration,
            ),
            pen(
                (self.descent_ratio_ok / f.descent_ratio.max(1e-3)).ln(),
                self.w_slow,
                RejectReason::TooSlow,
            ),
            pen(
                (f.size_cv - self.size_cv_ok) / self.size_cv_ok,
                self.w_size_cv * flutter,
                RejectReason::SizeOscillation,
            ),
            pen(
                (f.size_m / self.size_m_ok).ln(),
                self.w_size_m,
                RejectReason::TooLarge,
            ),
            pen(f.box_violation, self.w_box, RejectReason::ImplausibleDepth),
            pen(f.rise_fraction, self.w_rise, RejectReason::NotDescending),
            ev(
                f.descent_storeys / 4.0,
                1.0,
                self.w_descent,
                RejectReason::TooShort,
            ),
        ]
    }

    /// The best score the 3-D fit could give a track with these pre-fit features: fit terms at
    /// their best, the acceleration evidence measured against the noise instead of the fit.
    pub fn best_before_fit(&self, f: &Features, obs: &[Obs]) -> (f64, RejectReason) {
        let noise = noise_px(obs);
        self.score(&Features {
            fit_sigma: 0.0,
            lateral_sigma: 0.0,
            box_violation: 0.0,
            accel_ratio: f.line_rmse_px / noise,
            ..f.clone()
        })
    }

    /// The score and, when it is below [`ACCEPT_SCORE`], the reason whose term falls furthest
    /// short of a textbook fall's.
    pub fn score(&self, f: &Features) -> (f64, RejectReason) {
        let terms = self.terms(f);
        let z: f64 = self.bias + terms.iter().map(|t| t.weight * t.value).sum::<f64>();
        let worst = terms
            .iter()
            .map(|t| (t.weight * (t.value - t.best_value), t.reason))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(RejectReason::NonBallistic, |w| w.1);
        (1.0 / (1.0 + (-z).exp()), worst)
    }
}

/// Assesses a candidate track with the default score model.
pub fn assess(model: &FacadeModel, track: &[TrackPoint]) -> Assessment {
    assess_with(model, track, &DEFAULT_SCORE_MODEL)
}

/// Assesses a candidate track: fall (with release point) or not (with a reason), and a score.
///
/// A light object (a rubbish bag) reaches a terminal speed of 3.5-6 m/s within half a second and
/// then falls steadily, which in the picture is what a gliding bird or rain does: the evidence of
/// a fall is only in its first half second. A track rejected as not accelerating (or too slow)
/// is therefore a fall when the 3-D fit with terminal speeds down to
/// [`LIGHT_MIN_TERMINAL_M_S`] explains it, the track is long ([`LIGHT_MIN_DURATION_S`],
/// [`LIGHT_MIN_STOREYS`]), the fitted terminal speed is at most [`LIGHT_MAX_TERMINAL_M_S`] and
/// the fitted downward speed at its first sighting is under [`LIGHT_MAX_START_SPEED_FRAC`] of it:
/// it was seen leaving its release.
pub fn assess_with(model: &FacadeModel, track: &[TrackPoint], sm: &ScoreModel) -> Assessment {
    let pts = clean_track(track);
    let obs = observations(&pts);
    let standard = assess_standard(model, &pts, &obs, sm);
    let f = &standard.features;
    let light_candidate = matches!(
        standard.verdict,
        Verdict::Reject(RejectReason::NotAccelerating | RejectReason::TooSlow)
    ) && f.duration_s >= LIGHT_MIN_DURATION_S
        && f.descent_storeys >= LIGHT_MIN_STOREYS
        && f.end_speed_m_s >= 0.8 * LIGHT_MIN_TERMINAL_M_S;
    if light_candidate && let Some(light) = assess_light(model, &obs, sm, f) {
        return light;
    }
    standard
}

/// The light-object reading of a track the standard assessment rejected (see [`assess_with`]).
fn assess_light(
    model: &FacadeModel,
    obs: &[Obs],
    sm: &ScoreModel,
    before: &Features,
) -> Option<Assessment> {
    let plane = PlaneFit::fit(model, obs)?;
    let init = BallisticState {
        drag_per_m: drag_for_end_speed(before.end_speed_m_s, LIGHT_MIN_TERMINAL_M_S),
        ..initial_state(model, &plane)
    };
    let fit = fit_ballistic_bounded(model, obs, &init, LIGHT_MIN_TERMINAL_M_S)?;
    let mut f = before.clone();
    fill_fit_features(&mut f, &fit, obs);
    // Downward speed at the first sighting (a bag sails sideways, so only the vertical counts).
    let start_down_m_s = (-fit.state.vel_m_s[1]).max(0.0);
    let vt = f.terminal_speed_m_s;
    let seen_speeding_up = start_down_m_s <= LIGHT_MAX_START_SPEED_FRAC * vt;
    if !(seen_speeding_up && vt <= LIGHT_MAX_TERMINAL_M_S) {
        return None;
    }
    // The acceleration and slowness terms measure against a heavy object's fall; this one's
    // acceleration is accounted for by the fit's drag.
    let (score, _) = sm.score(&Features {
        g_ratio: f.g_ratio.max(sm.g_ratio_low),
        descent_ratio: f.descent_ratio.max(sm.descent_ratio_ok),
        ..f.clone()
    });
    if score < ACCEPT_SCORE {
        return None;
    }
    let est = estimate(model, &fit, &plane, obs[obs.len() - 1].t_s);
    if unseen_start(model, &est, obs) {
        return None;
    }
    Some(Assessment {
        verdict: Verdict::Fall(Box::new(est)),
        score,
        features: f,
    })
}

/// The drag of a terminal speed a little above a track's end speed (light objects reach theirs
/// within a second or two), at least `min_terminal_m_s`: a start for the 3-D fit.
fn drag_for_end_speed(v_end_m_s: f64, min_terminal_m_s: f64) -> f64 {
    drag_of_terminal_speed((1.1 * v_end_m_s).clamp(min_terminal_m_s, 40.0))
}

/// Fewest points a track needs: [`MIN_POINTS`], and detections over at least
/// [`MIN_DURATION_S`] at the track's frame rate (its shortest time step is one frame): a fall
/// is seen in most frames for that long, while clutter that lines up by chance is mostly a few
/// detections spread over coasted frames.
fn min_points(pts: &[TrackPoint]) -> usize {
    let frame_s = pts
        .windows(2)
        .map(|w| w[1].t_s - w[0].t_s)
        .filter(|&dt| dt > 0.0)
        .fold(f64::INFINITY, f64::min);
    if !frame_s.is_finite() {
        return MIN_POINTS;
    }
    MIN_POINTS.max((MIN_DURATION_S / frame_s).round() as usize)
}

/// The assessment of cleaned track points (`obs`: their observations) against a fall of an
/// object whose terminal speed is at least [`MIN_TERMINAL_M_S`].
fn assess_standard(
    model: &FacadeModel,
    pts: &[TrackPoint],
    obs: &[Obs],
    sm: &ScoreModel,
) -> Assessment {
    let mut f = Features::empty();
    f.n_points = pts.len();
    let verdict = |f: Features, score: f64, r| Assessment {
        verdict: Verdict::Reject(r),
        score,
        features: f,
    };
    if pts.len() < min_points(pts) {
        return verdict(f, 0.0, RejectReason::TooShort);
    }
    f.duration_s = obs[obs.len() - 1].t_s - obs[0].t_s;
    f.extent_px = extent_px(pts);
    if f.extent_px < STATIC_EXTENT_PX {
        return verdict(f, 0.0, RejectReason::Static);
    }
    let Some(plane) = PlaneFit::fit(model, obs) else {
        return verdict(f, 0.0, RejectReason::FitFailed);
    };
    f.fill_before_fit(model, pts, obs, &plane);
    if let Some(r) = f.gate() {
        return verdict(f, 0.0, r);
    }
    // Early exit: even the best the 3-D fit could do would not make this a fall.
    let (best_score, reason) = sm.best_before_fit(&f, obs);
    if best_score < ACCEPT_SCORE {
        return verdict(f, best_score, reason);
    }
    let init = initial_state(model, &plane);
    let mut fit = fit_ballistic(model, obs, &init);
    // Light objects (an empty bottle or can, a bag) reach a terminal speed of 5-15 m/s within a
    // second or two; the solver can stall far from such a fit when it starts from the generic
    // drag guess. Start again from the terminal speed the track's end suggests, and from no
    // drag, when the first fit is poor; keep the best.
    if fit.as_ref().is_none_or(|b| b.rmse_px > 2.0 * noise_px(obs)) {
        let v_end = f.end_speed_m_s;
        let retries = [
            (v_end.is_finite() && v_end > 1.0).then(|| BallisticState {
                drag_per_m: drag_for_end_speed(v_end, MIN_TERMINAL_M_S),
                ..init
            }),
            Some(BallisticState {
                drag_per_m: 0.0,
                ..init
            }),
        ];
        for start in retries.into_iter().flatten() {
            if let Some(b) = fit_ballistic(model, obs, &start)
                && fit.as_ref().is_none_or(|a| b.cost < a.cost)
            {
                fit = Some(b);
            }
        }
    }
    let Some(fit) = fit else {
        return verdict(f, 0.0, RejectReason::FitFailed);
    };
    fill_fit_features(&mut f, &fit, obs);
    let (score, reason) = sm.score(&f);
    if score < ACCEPT_SCORE {
        return verdict(f, score, reason);
    }
    let est = estimate(model, &fit, &plane, obs[obs.len() - 1].t_s);
    if unseen_start(model, &est, obs) {
        return verdict(f, score.min(ACCEPT_SCORE * 0.5), RejectReason::UnseenStart);
    }
    Assessment {
        verdict: Verdict::Fall(Box::new(est)),
        score,
        features: f,
    }
}

/// Finite points sorted by time, one per distinct time (the first kept).
fn clean_track(track: &[TrackPoint]) -> Vec<TrackPoint> {
    let mut pts: Vec<TrackPoint> = track
        .iter()
        .filter(|p| p.t_s.is_finite() && p.x_px.is_finite() && p.y_px.is_finite())
        .copied()
        .collect();
    pts.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    pts.dedup_by(|b, a| (b.t_s - a.t_s).abs() < 1e-6);
    pts
}

/// The fit's observations of cleaned track points.
fn observations(pts: &[TrackPoint]) -> Vec<Obs> {
    pts.iter()
        .map(|p| Obs {
            t_s: p.t_s,
            px: [p.x_px, p.y_px],
            sigma_px: point_sigma_px(p),
        })
        .collect()
}

/// Smaller box side, the size least affected by motion blur, pixels.
fn blob_size_px(p: &TrackPoint) -> f64 {
    let s = p.w_px.min(p.h_px);
    if s.is_finite() && s > 0.0 { s } else { 1.0 }
}

fn point_sigma_px(p: &TrackPoint) -> f64 {
    let s = (p.w_px.max(0.0) * p.h_px.max(0.0)).sqrt();
    let s = if s.is_finite() { s } else { 0.0 };
    (BASE_NOISE_PX * BASE_NOISE_PX + (SIZE_NOISE_FRAC * s).powi(2)).sqrt()
}

fn extent_px(pts: &[TrackPoint]) -> f64 {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for p in pts {
        x0 = x0.min(p.x_px);
        x1 = x1.max(p.x_px);
        y0 = y0.min(p.y_px);
        y1 = y1.max(p.y_px);
    }
    (x1 - x0).hypot(y1 - y0)
}

/// Descent from the highest point (3-point median, against single outliers) to the last point,
/// and the index of that highest point.
fn descent(heights: &[f64]) -> (f64, usize) {
    let n = heights.len();
    let med = |i: usize| -> f64 {
        let a = heights[i.saturating_sub(1)];
        let b = heights[i];
        let c = heights[(i + 1).min(n - 1)];
        a.max(b).min(a.min(b).max(c))
    };
    let mut top = 0;
    let mut top_h = f64::MIN;
    for i in 0..n {
        let h = med(i);
        if h > top_h {
            top_h = h;
            top = i;
        }
    }
    (top_h - med(n - 1), top)
}

/// The least distance any falling object falls from rest in `t_s`: quadratic drag with the
/// lowest allowed terminal speed, `v_t^2 / g * ln(cosh(g t / v_t))`.
fn least_fall_m(t_s: f64) -> f64 {
    let vt = MIN_TERMINAL_M_S;
    vt * vt / G_M_S2 * (G_M_S2 * t_s.max(0.0) / vt).cosh().ln()
}

/// Fraction of 3-frame steps (after the highest point) that rise by more than 3 sigma of the
/// height noise.
fn rise_fraction(heights: &[f64], obs: &[Obs], px_per_m: &[f64]) -> f64 {
    const LAG: usize = 3;
    if heights.len() <= LAG {
        return 0.0;
    }
    let mut up = 0usize;
    let mut total = 0usize;
    for i in 0..heights.len() - LAG {
        let sigma_m = obs[i].sigma_px / px_per_m[i].max(1e-9);
        let dy = heights[i + LAG] - heights[i];
        total += 1;
        if dy > 3.0 * std::f64::consts::SQRT_2 * sigma_m {
            up += 1;
        }
    }
    up as f64 / total as f64
}

/// Reversals per second of the (5-point smoothed) facade-x residual of the plane fit, counted
/// with a hysteresis of 6 sigmas of the smoothed noise.
fn lateral_swings_hz(plane: &PlaneFit, obs: &[Obs]) -> f64 {
    const HALF: usize = 2;
    let n = obs.len();
    if n < 2 * HALF + 3 {
        return 0.0;
    }
    let duration = obs[n - 1].t_s - obs[0].t_s;
    let smooth: Vec<(f64, f64)> = (HALF..n - HALF)
        .map(|i| {
            let w = &plane.residuals_m[i - HALF..=i + HALF];
            let mean = w.iter().map(|r| r[0]).sum::<f64>() / w.len() as f64;
            let sigma_m = obs[i].sigma_px / plane.px_per_m[i].max(1e-9);
            (mean, sigma_m / ((2 * HALF + 1) as f64).sqrt())
        })
        .collect();
    let mut reversals = 0usize;
    let mut dir = 0i8;
    let (mut hi, mut lo) = (smooth[0].0, smooth[0].0);
    for &(v, sigma) in &smooth[1..] {
        let delta = 6.0 * sigma;
        hi = hi.max(v);
        lo = lo.min(v);
        if dir >= 0 && hi - v > delta {
            if dir > 0 {
                reversals += 1;
            }
            dir = -1;
            lo = v;
        } else if dir <= 0 && v - lo > delta {
            if dir < 0 {
                reversals += 1;
            }
            dir = 1;
            hi = v;
        }
    }
    if duration > 0.0 {
        reversals as f64 / duration
    } else {
        0.0
    }
}

/// Coefficient of variation of the blob size about a linear trend in log size, and the median
/// size on the facade in metres.
fn size_features(pts: &[TrackPoint], px_per_m: &[f64]) -> (f64, f64) {
    let n = pts.len() as f64;
    let ls: Vec<f64> = pts.iter().map(|p| blob_size_px(p).ln()).collect();
    let tm = pts.iter().map(|p| p.t_s).sum::<f64>() / n;
    let lm = ls.iter().sum::<f64>() / n;
    let stt: f64 = pts.iter().map(|p| (p.t_s - tm).powi(2)).sum();
    let slope = if stt > 0.0 {
        pts.iter()
            .zip(&ls)
            .map(|(p, l)| (p.t_s - tm) * (l - lm))
            .sum::<f64>()
            / stt
    } else {
        0.0
    };
    let var = pts
        .iter()
        .zip(&ls)
        .map(|(p, l)| (l - lm - slope * (p.t_s - tm)).powi(2))
        .sum::<f64>()
        / n;
    let mut metres: Vec<f64> = pts
        .iter()
        .zip(px_per_m)
        .map(|(p, s)| blob_size_px(p) / s.max(1e-9))
        .collect();
    metres.sort_by(f64::total_cmp);
    (var.sqrt(), metres[metres.len() / 2])
}

/// Initial 3-D state from the facade-plane fit: the first fitted facade point pulled toward the
/// camera to a guessed wall distance, its velocity scaled to match, and a drag guess when the
/// apparent acceleration is well below g.
pub(crate) fn initial_state(model: &FacadeModel, plane: &PlaneFit) -> BallisticState {
    let c = model.camera().centre_m;
    let g_ratio = plane.g_down_m_s2() / G_M_S2;
    // Apparent g = g * D / (D - d): guess the depth from it when plausible.
    let z = if (1.0..1.3).contains(&g_ratio) {
        (c[2] * (1.0 - 1.0 / g_ratio)).clamp(0.0, 2.0)
    } else {
        0.5
    };
    let shrink = (c[2] - z) / c[2];
    let p = plane.position(plane.t0_s);
    let v = plane.velocity(plane.t0_s);
    let pos = [
        c[0] + (p[0] - c[0]) * shrink,
        c[1] + (p[1] - c[1]) * shrink,
        z,
    ];
    BallisticState {
        t_s: plane.t0_s,
        pos_m: pos,
        vel_m_s: [v[0] * shrink, v[1] * shrink, 0.0],
        drag_per_m: if g_ratio < 0.8 {
            G_M_S2 / 15.0f64.powi(2)
        } else {
            0.0
        },
        wind_x_m_s: 0.0,
    }
}

fn fill_fit_features(f: &mut Features, fit: &BallisticFit, obs: &[Obs]) {
    f.rmse_px = fit.rmse_px;
    let mut all: Vec<f64> = Vec::with_capacity(obs.len());
    let mut lat: Vec<f64> = Vec::with_capacity(obs.len());
    for (e, o) in fit.residuals_px.iter().zip(obs) {
        let (ex, ey) = (e[0] / o.sigma_px, e[1] / o.sigma_px);
        all.push(0.5 * (ex * ex + ey * ey));
        lat.push(ex * ex);
    }
    f.fit_sigma = trimmed_rms(&mut all);
    f.lateral_sigma = trimmed_rms(&mut lat);
    let noise = noise_px(obs);
    f.accel_ratio = f.line_rmse_px / fit.rmse_px.max(noise);
    f.wall_distance_m = fit.state.pos_m[2];
    f.terminal_speed_m_s = fit.state.terminal_speed_m_s();
    f.box_violation = fit.box_violation;
}

/// True when the track came from where it would have been seen: the fitted path before the
/// first sighting crosses a stretch of the picture (more than [`MAX_UNSEEN_DROP_M`] of fall) on
/// which nothing was tracked, or the track is "thrown down" (first seen in the picture already
/// falling fast) faster than a hand throws. Rain drops and diving birds enter the view at full
/// speed in the middle of the picture; an object from a window is seen from its release, or
/// enters through the picture's edge.
fn unseen_start(model: &FacadeModel, est: &FallEstimate, obs: &[Obs]) -> bool {
    if est.motion == super::origin::Motion::ThrowDown
        && -est.release_velocity_m_s[1] > MAX_THROW_DOWN_M_S
    {
        return true;
    }
    let (w, h) = model.image_size();
    // Visible: in the picture and not behind an ignored area (a tree, a sign) of the calibration.
    let ignored = &model.calibration().ignore;
    let inside = |px: &[f64; 2]| {
        px[0] >= 0.0
            && px[1] >= 0.0
            && px[0] < f64::from(w)
            && px[1] < f64::from(h)
            && !ignored.iter().any(|r| in_polygon(&r.polygon_px, *px))
    };
    // Walk the fitted path back from the first sighting while it stays in the picture.
    let first_t = obs[0].t_s;
    let mut entry: Option<[f64; 2]> = None;
    for (t, px) in est.trajectory_px.iter().rev() {
        if *t > first_t {
            continue;
        }
        if !inside(px) {
            break;
        }
        entry = Some(*px);
    }
    // Both through the homography alone (same frame, whatever the wall distance).
    entry.is_some_and(|e| {
        model.image_to_facade(e).height_m - model.image_to_facade(obs[0].px).height_m
            > MAX_UNSEEN_DROP_M
    })
}

/// Even-odd point-in-polygon test.
fn in_polygon(poly: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + n - 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1])
            && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0]
        {
            inside = !inside;
        }
    }
    inside
}

/// Mean centroid noise of the observations, pixels.
fn noise_px(obs: &[Obs]) -> f64 {
    obs.iter().map(|o| o.sigma_px).sum::<f64>() / obs.len().max(1) as f64
}

/// Square root of the mean of squared values with the largest 10 % left out.
fn trimmed_rms(sq: &mut [f64]) -> f64 {
    sq.sort_by(f64::total_cmp);
    let keep = ((sq.len() as f64) * 0.9).ceil().max(1.0) as usize;
    let keep = keep.min(sq.len());
    (sq[..keep].iter().sum::<f64>() / keep as f64).sqrt()
}

#[cfg(test)]
mod polygon_tests {
    use super::in_polygon;

    #[test]
    fn point_in_polygon_handles_concave_shapes_and_edges() {
        // An L shape.
        let l = [
            [0.0, 0.0],
            [10.0, 0.0],
            [10.0, 4.0],
            [4.0, 4.0],
            [4.0, 10.0],
            [0.0, 10.0],
        ];
        assert!(in_polygon(&l, [2.0, 2.0]));
        assert!(in_polygon(&l, [2.0, 8.0]));
        assert!(in_polygon(&l, [8.0, 2.0]));
        assert!(!in_polygon(&l, [8.0, 8.0]), "the notch");
        assert!(!in_polygon(&l, [-1.0, 5.0]));
        assert!(!in_polygon(&l, [11.0, 2.0]));
    }
}
