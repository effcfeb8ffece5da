//! The release point: the fitted 3-D trajectory extrapolated back to where the object left the
//! building, and the contract's `origin` and `fall` records built from it.
//!
//! Rules (see docs/physics.md for the reasoning):
//! - rising at the first sighting (tossed up): the release is at or below the first sighting;
//!   the first sighting is taken (the apex, reported separately, would overstate the height);
//! - otherwise the time of zero vertical speed (the apex of the fitted path) is found, forward
//!   (a drop seen from the start) or backward (a drop first seen late);
//! - when the apex lies before the first sighting and outside the image (above its top edge),
//!   the object entered from above: the apex is taken (extrapolated, flagged as such);
//! - when the apex lies more than [`MAX_UNSEEN_S`] before the first sighting while inside the
//!   image, the object would have been seen there: it was thrown downward, and the first sighting
//!   is the release.

use serde::Serialize;

use crate::events::{Fall, Origin};

use super::facade::FacadeModel;
use super::fit::{BallisticFit, BallisticState, N_PARAMS, OutwardHypothesis, PlaneFit};

/// Vertical speed at the first sighting above which the object counts as tossed up, m/s, also
/// when that speed exceeds [`TOSS_MIN_SIGMAS`] of its standard error. Default 0.5.
pub const TOSS_MIN_VY_M_S: f64 = 0.5;
/// Standard errors by which the upward speed must be significant. Default 2.
pub const TOSS_MIN_SIGMAS: f64 = 2.0;
/// Longest time an in-image release may precede the first sighting (detection and tracking
/// delay, a short occlusion), seconds. Longer means thrown downward (at more than `g` times this,
/// about 5 m/s). Default 0.5.
pub const MAX_UNSEEN_S: f64 = 0.5;
/// Horizontal release speed from which a release counts as a throw, m/s. Default 1.0.
pub const THROW_MIN_SPEED_M_S: f64 = 1.0;
/// Furthest the fitted path is extrapolated back in time, seconds. Default 4.
pub const MAX_EXTRAPOLATION_S: f64 = 4.0;
/// Sampling step of the drawn trajectory, seconds. Default 0.02.
pub const TRAJECTORY_STEP_S: f64 = 0.02;

/// How the object left the building.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Motion {
    /// Released from rest (or nearly): the release is where the vertical speed was zero.
    Drop,
    /// Released with horizontal speed (outward or sideways) and no vertical speed.
    Throw,
    /// Seen rising first: the release is at (or just below) the first sighting.
    TossUp,
    /// Already falling fast where it would have been visible earlier: thrown downward, released
    /// at the first sighting.
    ThrowDown,
    /// Entered the image through its top edge (or a side edge) already falling: the release is
    /// extrapolated back to zero vertical speed, outside the image.
    FromAboveFrame,
}

/// Where and how a falling object was released, with the fit's quality and uncertainty.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FallEstimate {
    /// The contract's `origin` (floor, bay, facade point and its pixel).
    pub origin: Origin,
    /// The contract's `fall` (facade-plane acceleration, drop, residual).
    pub fall: Fall,
    /// Release time, seconds (media time).
    pub release_t_s: f64,
    /// Distance of the release point in front of the facade, metres.
    pub wall_distance_m: f64,
    /// Standard error of `origin.height_m`, metres (from the fit's covariance).
    pub height_sigma_m: f64,
    /// Standard error of `origin.x_m`, metres.
    pub x_sigma_m: f64,
    /// How it was released.
    pub motion: Motion,
    /// Which outward-speed hypothesis the 3-D fit kept.
    pub outward: OutwardHypothesis,
    /// Velocity over the ground at release, m/s (x along the facade, y up, z outward).
    pub release_velocity_m_s: [f64; 3],
    /// Fitted steady wind along the facade, m/s.
    pub wind_x_m_s: f64,
    /// Fitted terminal speed, m/s; None when the fit needed no drag.
    pub terminal_speed_m_s: Option<f64>,
    /// Height of the apex of the fitted path, metres (above the release when tossed up).
    pub apex_height_m: f64,
    /// What the homography alone would say: the facade-plane fit's height at the release time,
    /// metres (off by the parallax of the wall distance).
    pub plane_height_m: f64,
    /// The fitted trajectory from release to the last track point, as (time s, pixel), for
    /// drawing on the snapshot.
    pub trajectory_px: Vec<(f64, [f64; 2])>,
}

/// How the release time is chosen; fixed once decided so the uncertainty is computed for the
/// same rule.
#[derive(Clone, Copy, Debug, PartialEq)]
enum ReleaseRule {
    /// At the first sighting.
    FirstSighting,
    /// Where the vertical speed is zero.
    Apex,
}

/// Decides the release of a fitted trajectory and builds the estimate.
pub fn estimate(
    model: &FacadeModel,
    fit: &BallisticFit,
    plane: &PlaneFit,
    t_last_s: f64,
) -> FallEstimate {
    let st = fit.state;
    let t0 = st.t_s;
    let apex_t = st.apex_time(MAX_EXTRAPOLATION_S);
    let vy_sigma = fit.cov[(4, 4)].max(0.0).sqrt();
    let (motion, rule) = classify(model, &st, vy_sigma, apex_t);
    let release_t = release_time(&st, rule).unwrap_or(t0);
    let rel = st.at(release_t);
    let last = st.at(t_last_s);
    let apex_height_m = apex_t.map_or(st.pos_m[1].max(rel.pos_m[1]), |t| st.at(t).pos_m[1]);
    let motion = match motion {
        Motion::Drop
            if {
                let v = rel.ground_vel_m_s();
                v[0].hypot(v[2]) >= THROW_MIN_SPEED_M_S
            } =>
        {
            Motion::Throw
        }
        m => m,
    };
    let (x_m, height_m) = (rel.pos_m[0], rel.pos_m[1]);
    let calib = model.calibration();
    let (height_sigma_m, x_sigma_m) = release_sigmas(&st, &fit.cov, rule);
    let terminal = st.terminal_speed_m_s();
    FallEstimate {
        origin: Origin {
            floor: calib.floor_at(height_m),
            bay: calib.bay_at(x_m),
            height_m,
            x_m,
            px: model.facade_to_image(x_m, height_m),
        },
        fall: Fall {
            g_fit_m_s2: plane.g_down_m_s2(),
            drop_m: height_m - last.pos_m[1],
            rmse_px: fit.rmse_px,
        },
        release_t_s: release_t,
        wall_distance_m: rel.pos_m[2],
        height_sigma_m,
        x_sigma_m,
        motion,
        outward: fit.hypothesis,
        release_velocity_m_s: rel.ground_vel_m_s(),
        wind_x_m_s: rel.wind_x_m_s,
        terminal_speed_m_s: terminal.is_finite().then_some(terminal),
        apex_height_m,
        plane_height_m: plane.position(release_t)[1],
        trajectory_px: sample_trajectory(model, &st, release_t, t_last_s),
    }
}

/// The motion class and the release rule for a fitted state at the first sighting.
fn classify(
    model: &FacadeModel,
    st: &BallisticState,
    vy_sigma: f64,
    apex_t: Option<f64>,
) -> (Motion, ReleaseRule) {
    let vy0 = st.vel_m_s[1];
    if vy0 > TOSS_MIN_VY_M_S && vy0 > TOSS_MIN_SIGMAS * vy_sigma {
        return (Motion::TossUp, ReleaseRule::FirstSighting);
    }
    let Some(apex_t) = apex_t else {
        // Falling so fast the zero of vertical speed is out of reach: thrown down hard, or
        // entered from above long after release. Say which by where the first sighting is.
        let px = model.project(st.pos_m);
        return if px[1] <= edge_margin_px(model) {
            (Motion::FromAboveFrame, ReleaseRule::FirstSighting)
        } else {
            (Motion::ThrowDown, ReleaseRule::FirstSighting)
        };
    };
    let unseen_s = st.t_s - apex_t;
    if unseen_s > 0.0 && !model.in_image(model.project(st.at(apex_t).pos_m)) {
        return (Motion::FromAboveFrame, ReleaseRule::Apex);
    }
    if unseen_s <= MAX_UNSEEN_S {
        (Motion::Drop, ReleaseRule::Apex)
    } else {
        (Motion::ThrowDown, ReleaseRule::FirstSighting)
    }
}

/// How close to the top edge a first sighting counts as entering from above, pixels.
fn edge_margin_px(model: &FacadeModel) -> f64 {
    0.03 * f64::from(model.image_size().1)
}

fn release_time(st: &BallisticState, rule: ReleaseRule) -> Option<f64> {
    match rule {
        ReleaseRule::FirstSighting => Some(st.t_s),
        ReleaseRule::Apex => st.apex_time(MAX_EXTRAPOLATION_S),
    }
}

/// Standard errors of the release height and facade x, by propagating the parameter covariance
/// through the release rule with numerical derivatives.
fn release_sigmas(
    st: &BallisticState,
    cov: &super::fit::ParamCov,
    rule: ReleaseRule,
) -> (f64, f64) {
    let base = release_point(st, rule);
    let x = st.params();
    let mut gh = [0.0; N_PARAMS];
    let mut gx = [0.0; N_PARAMS];
    for j in 0..N_PARAMS {
        let h = (cov[(j, j)].sqrt() * 1e-2).max(1e-7);
        let mut xp = x;
        xp[j] += h;
        let p = release_point(&BallisticState::from_params(st.t_s, &xp), rule);
        gh[j] = (p[1] - base[1]) / h;
        gx[j] = (p[0] - base[0]) / h;
    }
    let quad = |g: &[f64; N_PARAMS]| {
        let mut s = 0.0;
        for a in 0..N_PARAMS {
            for b in 0..N_PARAMS {
                s += g[a] * cov[(a, b)] * g[b];
            }
        }
        s.max(0.0).sqrt()
    };
    (quad(&gh), quad(&gx))
}

fn release_point(st: &BallisticState, rule: ReleaseRule) -> [f64; 3] {
    let t = release_time(st, rule).unwrap_or(st.t_s);
    st.at(t).pos_m
}

/// The fitted path from release to the last sighting, projected, every
/// [`TRAJECTORY_STEP_S`] (plus both ends).
fn sample_trajectory(
    model: &FacadeModel,
    st: &BallisticState,
    from_s: f64,
    to_s: f64,
) -> Vec<(f64, [f64; 2])> {
    let span = (to_s - from_s).max(0.0);
    let n = ((span / TRAJECTORY_STEP_S).ceil() as usize).clamp(1, 1000);
    let times: Vec<f64> = (0..=n)
        .map(|i| from_s + span * i as f64 / n as f64)
        .collect();
    let start = st.at(from_s);
    let mut pos = Vec::with_capacity(times.len());
    start.positions(&times, &mut pos);
    times
        .into_iter()
        .zip(pos)
        .map(|(t, p)| (t, model.project(p)))
        .collect()
}
