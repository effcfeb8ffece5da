//! Trajectory fits of a track (pixels with times):
//!
//! - [`fit_ballistic`]: the 3-D model. Release state (position, velocity) at the first sighting,
//!   gravity fixed at [`G_M_S2`], quadratic drag with an unknown bounded terminal speed,
//!   projected through the camera and fitted to the pixels by damped Gauss-Newton
//!   (Levenberg-Marquardt) with a Huber loss and soft priors on the wall distance, the outward
//!   speed and the drag.
//! - [`PlaneFit`]: constant acceleration on the facade plane (the homography-only view), whose
//!   vertical acceleration is the contract's `g_fit_m_s2`.
//! - [`LineFit`]: constant velocity in pixels (the null model of "nothing is accelerating").
//!
//! All three are small dense problems solved with nalgebra.

use nalgebra::{SMatrix, SVector, Vector3};

use super::facade::FacadeModel;

/// Gravity, m/s^2, downward (-y).
pub const G_M_S2: f64 = 9.81;

/// Lowest terminal speed a fall may have, m/s (a rubbish bag is ~8-12; leaves and paper, 1-2,
/// are not falls). Bounds the drag. Default 6.
pub const MIN_TERMINAL_M_S: f64 = 6.0;

/// Drag prior: half-normal on `k = g / v_t^2` with this standard deviation, 1/m. Weak
/// (`g / 7^2`: a rubbish bag's drag is well inside it) so that it barely pulls the wall distance,
/// which trades off against drag. Default 0.2.
pub const DRAG_PRIOR_SIGMA_PER_M: f64 = G_M_S2 / (7.0 * 7.0);
/// Gaussian prior on the steady wind along the facade, m/s (a breeze; gusts are not modelled).
/// Default 3.
pub const WIND_PRIOR_SIGMA_M_S: f64 = 3.0;
/// Largest wind along the facade the fit may use, m/s. Default 10.
pub const MAX_WIND_M_S: f64 = 10.0;

/// Wall distance at the first sighting: soft box, metres. Default 0..3.
pub const WALL_BOX_M: (f64, f64) = (0.0, 3.0);
/// Outward speed: soft box, m/s. Default -1..5.
pub const OUTWARD_BOX_M_S: (f64, f64) = (-1.0, 5.0);
/// Softness of the boxes: standard deviation of the penalty outside them (metres, m/s).
/// Default 0.25.
pub const BOX_SIGMA: f64 = 0.25;
/// Gaussian prior on the wall distance at the first sighting: mean and sigma, metres
/// (windows ~0-0.5 m, balconies ~1-1.5 m). Default 0.5 +- 1.0.
pub const WALL_PRIOR_M: (f64, f64) = (0.5, 1.0);
/// Outward speed prior of the "no outward speed" hypothesis (drops, tosses, sideways throws):
/// mean and sigma, m/s. Default 0 +- 0.05.
pub const OUTWARD_PRIOR_DROP_M_S: (f64, f64) = (0.0, 0.05);
/// Outward speed prior of the "thrown outward" hypothesis: mean and sigma, m/s.
/// Default 1.5 +- 3.0 (weak; the box bounds it).
pub const OUTWARD_PRIOR_THROW_M_S: (f64, f64) = (1.5, 3.0);
/// How much lower (robust cost units, half a chi-square) the "thrown outward" fit must be to be
/// preferred over "no outward speed". Default 4 (about 2.8 sigma for the one extra freedom).
pub const OUTWARD_SELECT_DELTA: f64 = 4.0;

/// Which hypothesis about the outward speed a fit used.
///
/// The wall distance is measured by the scale of the apparent acceleration (`g D / (D - d)`), but
/// an outward speed makes that scale grow over the track and a small drag makes it shrink: with
/// all three free, the wall distance is undetermined (standard errors of 1-2 m at 1 px noise).
/// So two fits are made and the simpler one kept unless the data clearly need the outward speed;
/// see docs/physics.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutwardHypothesis {
    /// Outward speed near zero (tight prior): the wall distance comes from the data.
    NoOutwardSpeed,
    /// Outward speed free within its box: the wall distance leans on its prior.
    ThrownOutward,
}

impl OutwardHypothesis {
    fn prior(self) -> (f64, f64) {
        match self {
            OutwardHypothesis::NoOutwardSpeed => OUTWARD_PRIOR_DROP_M_S,
            OutwardHypothesis::ThrownOutward => OUTWARD_PRIOR_THROW_M_S,
        }
    }
}

/// Huber threshold in units of each point's noise sigma. Default 2.
pub const HUBER_K: f64 = 2.0;

/// Longest integration step, seconds. Default 0.05 (RK4 is exact for drag-free motion and
/// accurate to ~1e-6 m for a rubbish bag at this step).
const MAX_STEP_S: f64 = 0.05;
/// Levenberg-Marquardt iteration cap.
const MAX_ITERATIONS: usize = 40;

/// Number of parameters: position (3), velocity relative to the air (3), drag k, wind along x.
pub const N_PARAMS: usize = 8;

/// A parameter vector or its covariance.
pub type Params = SVector<f64, N_PARAMS>;
/// Covariance of the parameters.
pub type ParamCov = SMatrix<f64, N_PARAMS, N_PARAMS>;

/// One observation for the fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obs {
    /// Time, seconds.
    pub t_s: f64,
    /// Centre, pixels.
    pub px: [f64; 2],
    /// Expected centroid noise, pixels (per coordinate).
    pub sigma_px: f64,
}

/// The state of a ballistic object at a reference time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BallisticState {
    /// Reference time, seconds.
    pub t_s: f64,
    /// Position, facade metres (z = distance in front of the wall).
    pub pos_m: [f64; 3],
    /// Velocity, m/s.
    pub vel_m_s: [f64; 3],
    /// Drag coefficient `k = g / v_t^2`, 1/m (acceleration `-k |u| u` with `u` the velocity
    /// relative to the air).
    pub drag_per_m: f64,
    /// Steady wind along the facade (+x), m/s. Drag pulls a light object towards the wind's
    /// speed: an empty bottle drifts metres sideways in a 3 m/s breeze. In the air's frame the
    /// motion is the windless one, so the wind adds `wind * t` to the windless path of the
    /// air-relative velocity; `vel_m_s` is that air-relative velocity.
    pub wind_x_m_s: f64,
}

impl BallisticState {
    /// The state as a parameter vector.
    pub fn params(&self) -> Params {
        let (p, v) = (self.pos_m, self.vel_m_s);
        Params::from([
            p[0],
            p[1],
            p[2],
            v[0],
            v[1],
            v[2],
            self.drag_per_m,
            self.wind_x_m_s,
        ])
    }

    /// The state from a parameter vector.
    pub fn from_params(t_s: f64, x: &Params) -> BallisticState {
        BallisticState {
            t_s,
            pos_m: [x[0], x[1], x[2]],
            vel_m_s: [x[3], x[4], x[5]],
            drag_per_m: x[6],
            wind_x_m_s: x[7],
        }
    }

    /// Velocity over the ground, m/s (`vel_m_s` is relative to the air).
    pub fn ground_vel_m_s(&self) -> [f64; 3] {
        [
            self.vel_m_s[0] + self.wind_x_m_s,
            self.vel_m_s[1],
            self.vel_m_s[2],
        ]
    }

    /// Terminal speed, m/s (infinite without drag).
    pub fn terminal_speed_m_s(&self) -> f64 {
        if self.drag_per_m > 0.0 {
            (G_M_S2 / self.drag_per_m).sqrt()
        } else {
            f64::INFINITY
        }
    }

    /// The state at another time (forward or backward integration).
    pub fn at(&self, t_s: f64) -> BallisticState {
        let dt = t_s - self.t_s;
        let (p, v) = propagate(self.pos_m, self.vel_m_s, self.drag_per_m, dt);
        BallisticState {
            t_s,
            pos_m: [p[0] + self.wind_x_m_s * dt, p[1], p[2]],
            vel_m_s: v,
            ..*self
        }
    }

    /// Positions at sorted times (each at or after the reference time, or all before it in
    /// descending order), integrating once along them.
    pub fn positions(&self, times_s: &[f64], out: &mut Vec<[f64; 3]>) {
        out.clear();
        let (mut p, mut v, mut t) = (self.pos_m, self.vel_m_s, self.t_s);
        for &ti in times_s {
            let (p2, v2) = propagate(p, v, self.drag_per_m, ti - t);
            p = p2;
            v = v2;
            t = ti;
            out.push([p[0] + self.wind_x_m_s * (ti - self.t_s), p[1], p[2]]);
        }
    }

    /// The time (within `max_s` of the reference, in the direction the vertical speed says)
    /// where the vertical speed is zero, or None when it is not reached in that span.
    pub fn apex_time(&self, max_s: f64) -> Option<f64> {
        let vy0 = self.vel_m_s[1];
        if vy0 == 0.0 {
            return Some(self.t_s);
        }
        if self.drag_per_m == 0.0 {
            let dt = vy0 / G_M_S2;
            return (dt.abs() <= max_s).then_some(self.t_s + dt);
        }
        // Rising: the apex is ahead; falling: behind. The velocity does not depend on the
        // position, so only it is integrated.
        let h = 0.01 * vy0.signum();
        let (mut v, mut t) = (self.vel_m_s, self.t_s);
        while (t - self.t_s).abs() < max_s {
            let (_, v2) = rk4([0.0; 3], v, self.drag_per_m, h);
            if v2[1] * vy0 <= 0.0 {
                // Linear interpolation of vy between the two steps.
                let frac = v[1] / (v[1] - v2[1]);
                return Some(t + frac * h);
            }
            if v2.iter().any(|c| !c.is_finite() || c.abs() > 1e3) {
                return None;
            }
            v = v2;
            t += h;
        }
        None
    }
}

#[inline(always)]
fn accel(v: [f64; 3], k: f64) -> [f64; 3] {
    let s = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    let d = k * s;
    [-d * v[0], -G_M_S2 - d * v[1], -d * v[2]]
}

/// One classical Runge-Kutta step of gravity plus quadratic drag.
fn rk4(p: [f64; 3], v: [f64; 3], k: f64, h: f64) -> ([f64; 3], [f64; 3]) {
    let a1 = accel(v, k);
    let v2 = [
        v[0] + 0.5 * h * a1[0],
        v[1] + 0.5 * h * a1[1],
        v[2] + 0.5 * h * a1[2],
    ];
    let a2 = accel(v2, k);
    let v3 = [
        v[0] + 0.5 * h * a2[0],
        v[1] + 0.5 * h * a2[1],
        v[2] + 0.5 * h * a2[2],
    ];
    let a3 = accel(v3, k);
    let v4 = [v[0] + h * a3[0], v[1] + h * a3[1], v[2] + h * a3[2]];
    let a4 = accel(v4, k);
    let mut pn = p;
    let mut vn = v;
    for i in 0..3 {
        pn[i] += h / 6.0 * (v[i] + 2.0 * v2[i] + 2.0 * v3[i] + v4[i]);
        vn[i] += h / 6.0 * (a1[i] + 2.0 * a2[i] + 2.0 * a3[i] + a4[i]);
    }
    (pn, vn)
}

/// [`rk4`] on several independent trajectories at once (stage by stage across the lanes, so the
/// lanes' square roots and divisions overlap instead of waiting on each other).
#[inline]
fn rk4_lanes<const L: usize>(p: &mut [[f64; 3]; L], v: &mut [[f64; 3]; L], k: &[f64; L], h: f64) {
    #[inline(always)]
    fn acc<const L: usize>(v: &[[f64; 3]; L], k: &[f64; L], out: &mut [[f64; 3]; L]) {
        for l in 0..L {
            out[l] = accel(v[l], k[l]);
        }
    }
    #[inline(always)]
    fn stage<const L: usize>(
        v: &[[f64; 3]; L],
        a: &[[f64; 3]; L],
        s: f64,
        out: &mut [[f64; 3]; L],
    ) {
        for l in 0..L {
            for c in 0..3 {
                out[l][c] = v[l][c] + s * a[l][c];
            }
        }
    }
    let (mut a1, mut a2, mut a3, mut a4) =
        ([[0.0; 3]; L], [[0.0; 3]; L], [[0.0; 3]; L], [[0.0; 3]; L]);
    let (mut v2, mut v3, mut v4) = ([[0.0; 3]; L], [[0.0; 3]; L], [[0.0; 3]; L]);
    acc(v, k, &mut a1);
    stage(v, &a1, 0.5 * h, &mut v2);
    acc(&v2, k, &mut a2);
    stage(v, &a2, 0.5 * h, &mut v3);
    acc(&v3, k, &mut a3);
    stage(v, &a3, h, &mut v4);
    acc(&v4, k, &mut a4);
    let w = h / 6.0;
    for l in 0..L {
        for c in 0..3 {
            p[l][c] += w * (v[l][c] + 2.0 * v2[l][c] + 2.0 * v3[l][c] + v4[l][c]);
            v[l][c] += w * (a1[l][c] + 2.0 * a2[l][c] + 2.0 * a3[l][c] + a4[l][c]);
        }
    }
}

/// Integrates over `dt` seconds (either sign) in steps of at most [`MAX_STEP_S`].
fn propagate(p: [f64; 3], v: [f64; 3], k: f64, dt: f64) -> ([f64; 3], [f64; 3]) {
    if dt == 0.0 {
        return (p, v);
    }
    if k == 0.0 {
        // Exact.
        return (
            [
                p[0] + v[0] * dt,
                p[1] + v[1] * dt - 0.5 * G_M_S2 * dt * dt,
                p[2] + v[2] * dt,
            ],
            [v[0], v[1] - G_M_S2 * dt, v[2]],
        );
    }
    let n = (dt.abs() / MAX_STEP_S).ceil().max(1.0);
    let h = dt / n;
    let (mut p, mut v) = (p, v);
    for _ in 0..n as usize {
        (p, v) = rk4(p, v, k, h);
    }
    (p, v)
}

/// The result of the 3-D ballistic fit.
#[derive(Clone, Debug)]
pub struct BallisticFit {
    /// The fitted state at the first observation's time.
    pub state: BallisticState,
    /// Covariance of the parameters (position, velocity, drag, wind), scaled by the residual variance
    /// when that exceeds the assumed noise.
    pub cov: ParamCov,
    /// Root-mean-square pixel residual (Euclidean per point), pixels.
    pub rmse_px: f64,
    /// Per-point pixel residuals (model minus observation).
    pub residuals_px: Vec<[f64; 2]>,
    /// Root-mean-square violation of the soft boxes (wall distance, outward speed), in box
    /// sigmas; 0 when inside.
    pub box_violation: f64,
    /// Iterations used.
    pub iterations: usize,
    /// The robust cost at the solution (Huber on the residuals plus the priors).
    pub cost: f64,
    /// The outward-speed hypothesis used.
    pub hypothesis: OutwardHypothesis,
}

/// Problem data shared by the fit's evaluations.
struct Problem<'a> {
    model: &'a FacadeModel,
    hyp: OutwardHypothesis,
    obs: &'a [Obs],
    t0: f64,
}

/// Everything one evaluation of the model yields.
struct Eval {
    /// Normalised residuals (model - obs) / sigma, 2 per point.
    r: Vec<f64>,
    /// Prior residuals.
    prior: [f64; 6],
    /// Positions at the observation times.
    pos: Vec<[f64; 3]>,
}

impl Problem<'_> {
    fn eval_at(&self, times: &[f64], x: &Params, scratch: &mut Vec<[f64; 3]>) -> Eval {
        let st = BallisticState::from_params(self.t0, x);
        st.positions(times, scratch);
        let mut r = Vec::with_capacity(2 * self.obs.len());
        for (o, p) in self.obs.iter().zip(scratch.iter()) {
            let q = self.model.project(*p);
            r.push((q[0] - o.px[0]) / o.sigma_px);
            r.push((q[1] - o.px[1]) / o.sigma_px);
        }
        Eval {
            r,
            prior: prior_residuals(x, self.hyp),
            pos: scratch.clone(),
        }
    }

    /// Robust cost of an evaluation: Huber on each point's normalised residual norm, plus half
    /// the squared prior residuals.
    fn cost(e: &Eval) -> f64 {
        let mut c = 0.0;
        for pair in e.r.chunks_exact(2) {
            let s = (pair[0] * pair[0] + pair[1] * pair[1]).sqrt();
            c += if s <= HUBER_K {
                0.5 * s * s
            } else {
                HUBER_K * (s - 0.5 * HUBER_K)
            };
        }
        c + 0.5 * e.prior.iter().map(|v| v * v).sum::<f64>()
    }
}

/// Soft-box and Gaussian priors as residuals.
fn prior_residuals(x: &Params, hyp: OutwardHypothesis) -> [f64; 6] {
    let box_r = |v: f64, (lo, hi): (f64, f64)| (v - v.clamp(lo, hi)) / BOX_SIGMA;
    let vz = hyp.prior();
    [
        box_r(x[2], WALL_BOX_M),
        box_r(x[5], OUTWARD_BOX_M_S),
        (x[2] - WALL_PRIOR_M.0) / WALL_PRIOR_M.1,
        (x[5] - vz.0) / vz.1,
        x[6] / DRAG_PRIOR_SIGMA_PER_M,
        x[7] / WIND_PRIOR_SIGMA_M_S,
    ]
}

/// Jacobian of the prior residuals (each depends on one parameter).
fn prior_jacobian(x: &Params, hyp: OutwardHypothesis) -> [(usize, f64); 6] {
    let box_d = |v: f64, (lo, hi): (f64, f64)| {
        if v < lo || v > hi {
            1.0 / BOX_SIGMA
        } else {
            0.0
        }
    };
    [
        (2, box_d(x[2], WALL_BOX_M)),
        (5, box_d(x[5], OUTWARD_BOX_M_S)),
        (2, 1.0 / WALL_PRIOR_M.1),
        (5, 1.0 / hyp.prior().1),
        (6, 1.0 / DRAG_PRIOR_SIGMA_PER_M),
        (7, 1.0 / WIND_PRIOR_SIGMA_M_S),
    ]
}

/// Largest drag coefficient allowed, 1/m.
pub fn max_drag_per_m() -> f64 {
    drag_of_terminal_speed(MIN_TERMINAL_M_S)
}

/// The drag coefficient of an object whose terminal speed is `v_m_s`, 1/m.
pub(crate) fn drag_of_terminal_speed(v_m_s: f64) -> f64 {
    G_M_S2 / (v_m_s * v_m_s)
}

fn clamp_params(mut x: Params, max_drag: f64) -> Params {
    x[6] = x[6].clamp(0.0, max_drag);
    x[7] = x[7].clamp(-MAX_WIND_M_S, MAX_WIND_M_S);
    x
}

/// Fits the 3-D ballistic model to observations sorted by time, from an initial state.
///
/// The "no outward speed" hypothesis is fitted first. The "thrown outward" one is fitted only when
/// a Gauss-Newton prediction from the first solution says it could lower the cost by at least
/// half of [`OUTWARD_SELECT_DELTA`] (from a typical throw, and also from the first solution unless
/// the typical start already wins), and it is kept only when it actually lowers the cost by
/// [`OUTWARD_SELECT_DELTA`].
/// None when the problem is degenerate (fewer than 4 points, or no finite solution).
pub fn fit_ballistic(
    model: &FacadeModel,
    obs: &[Obs],
    init: &BallisticState,
) -> Option<BallisticFit> {
    fit_ballistic_bounded(model, obs, init, MIN_TERMINAL_M_S)
}

/// [`fit_ballistic`] with another lowest terminal speed (the drag's bound), m/s: the physics
/// allows light objects (a rubbish bag, 3.5-6 m/s) only when their release was seen.
pub fn fit_ballistic_bounded(
    model: &FacadeModel,
    obs: &[Obs],
    init: &BallisticState,
    min_terminal_m_s: f64,
) -> Option<BallisticFit> {
    if obs.len() < 4 || min_terminal_m_s.is_nan() || min_terminal_m_s <= 0.0 {
        return None;
    }
    let mut solver = Solver::new(model, obs, drag_of_terminal_speed(min_terminal_m_s));
    let init = solver.start(init);
    let throw_init = BallisticState {
        pos_m: [init.pos_m[0], init.pos_m[1], THROW_INIT.0],
        vel_m_s: [init.vel_m_s[0], init.vel_m_s[1], THROW_INIT.1],
        ..init
    };
    let drop = solver.fit(&init.params(), OutwardHypothesis::NoOutwardSpeed);
    let (drop_x, drop_cost) = match &drop {
        Some(d) => (d.state.params(), d.cost),
        None => (init.params(), f64::INFINITY),
    };
    let predicted = solver.predicted_cost(&drop_x, OutwardHypothesis::ThrownOutward);
    if drop_cost - predicted < 0.5 * OUTWARD_SELECT_DELTA {
        return drop;
    }
    // A typical throw first; from the drop solution only when that did not clearly win.
    let typical = solver.fit(&throw_init.params(), OutwardHypothesis::ThrownOutward);
    let throw = match typical {
        Some(t) if drop_cost - t.cost > OUTWARD_SELECT_DELTA => Some(t),
        typical => [
            typical,
            solver.fit(&drop_x, OutwardHypothesis::ThrownOutward),
        ]
        .into_iter()
        .flatten()
        .min_by(|a, b| a.cost.total_cmp(&b.cost)),
    };
    match (drop, throw) {
        (Some(d), Some(t)) => Some(if d.cost - t.cost > OUTWARD_SELECT_DELTA {
            t
        } else {
            d
        }),
        (d, t) => d.or(t),
    }
}

/// Wall distance (m) and outward speed (m/s) a thrown-outward fit also starts from.
const THROW_INIT: (f64, f64) = (0.3, 2.5);
/// After this many iterations a fit still this far from the data (root-mean-square residual in
/// sigmas) is abandoned: it is not ballistic, and the verdict will say so. Defaults 10 and 6.
const HOPELESS_AFTER: usize = 10;
const HOPELESS_RMS_SIGMA: f64 = 6.0;
/// A fit worse than this (root-mean-square residual in sigmas) that lowered its cost by less than
/// [`STALL_GAIN`] (relative) over the last [`STALL_WINDOW`] iterations stops there.
const STALL_RMS_SIGMA: f64 = 2.0;
const STALL_GAIN: f64 = 0.02;
const STALL_WINDOW: usize = 4;

/// The Levenberg-Marquardt solver for one track, with its buffers.
struct Solver<'a> {
    model: &'a FacadeModel,
    obs: &'a [Obs],
    times: Vec<f64>,
    t0: f64,
    scratch: Vec<[f64; 3]>,
    jac: Vec<[f64; N_PARAMS]>,
    /// Largest drag allowed, 1/m.
    max_drag: f64,
}

impl<'a> Solver<'a> {
    fn new(model: &'a FacadeModel, obs: &'a [Obs], max_drag: f64) -> Solver<'a> {
        Solver {
            model,
            obs,
            times: obs.iter().map(|o| o.t_s).collect(),
            t0: obs[0].t_s,
            scratch: Vec::with_capacity(obs.len()),
            jac: vec![[0.0; N_PARAMS]; 2 * obs.len()],
            max_drag,
        }
    }

    fn problem(&self, hyp: OutwardHypothesis) -> Problem<'a> {
        Problem {
            model: self.model,
            hyp,
            obs: self.obs,
            t0: self.t0,
        }
    }

    fn eval(&mut self, x: &Params, hyp: OutwardHypothesis) -> Eval {
        let prob = self.problem(hyp);
        prob.eval_at(&self.times, x, &mut self.scratch)
    }

    /// Normal equations at `x` (with its evaluation).
    fn linearise(&mut self, x: &Params, cur: &Eval, hyp: OutwardHypothesis) -> (ParamCov, Params) {
        let prob = self.problem(hyp);
        jacobian(&prob, &self.times, x, cur, &mut self.jac);
        normal_equations(cur, &self.jac, x, hyp)
    }

    /// The cost a Gauss-Newton step from `x` predicts under `hyp`.
    fn predicted_cost(&mut self, x: &Params, hyp: OutwardHypothesis) -> f64 {
        let cur = self.eval(x, hyp);
        let cost = Problem::cost(&cur);
        let (a, g) = self.linearise(x, &cur, hyp);
        let mut damped = a;
        for i in 0..N_PARAMS {
            damped[(i, i)] += 1e-9 * a[(i, i)].max(1e-9);
        }
        match damped.cholesky() {
            Some(ch) => cost - 0.5 * g.dot(&ch.solve(&g)),
            None => f64::NEG_INFINITY,
        }
    }

    /// Levenberg-Marquardt from `x0` under one hypothesis.
    /// `init` moved to the first observation's time, where the parameters are defined.
    fn start(&self, init: &BallisticState) -> BallisticState {
        if init.t_s == self.t0 {
            *init
        } else {
            init.at(self.t0)
        }
    }

    fn fit(&mut self, x0: &Params, hyp: OutwardHypothesis) -> Option<BallisticFit> {
        let n = self.obs.len();
        let mut x = clamp_params(*x0, self.max_drag);
        let mut cur = self.eval(&x, hyp);
        let mut cost = Problem::cost(&cur);
        if !cost.is_finite() {
            return None;
        }
        let mut lambda = 1e-3;
        let mut iterations = 0;
        let mut history = Vec::with_capacity(MAX_ITERATIONS);
        for it in 0..MAX_ITERATIONS {
            iterations = it + 1;
            let (mut a, mut g) = self.linearise(&x, &cur, hyp);
            // Drag at a bound with the gradient pushing past it: hold it (active set), or the
            // clamped step is not the step the model predicted and every first trial fails.
            // The same for the wind at its limit.
            let drag_held = (x[6] <= 0.0 && g[6] > 0.0) || (x[6] >= self.max_drag && g[6] < 0.0);
            let wind_held = x[7].abs() >= MAX_WIND_M_S && g[7] * x[7].signum() < 0.0;
            for k in hold(&mut a, [(6, drag_held), (7, wind_held)]) {
                g[k] = 0.0;
            }
            let mut improved = false;
            let mut converged = false;
            while lambda < 1e10 {
                let mut damped = a;
                for i in 0..N_PARAMS {
                    damped[(i, i)] += lambda * a[(i, i)].max(1e-9);
                }
                let Some(chol) = damped.cholesky() else {
                    lambda *= 10.0;
                    continue;
                };
                let step = chol.solve(&(-g));
                let cand = clamp_params(x + step, self.max_drag);
                let e = self.eval(&cand, hyp);
                let c = Problem::cost(&e);
                if c.is_finite() && c < cost {
                    converged = cost - c < 1e-3 + 1e-7 * cost;
                    x = cand;
                    cur = e;
                    cost = c;
                    lambda = (lambda / 3.0).max(1e-9);
                    improved = true;
                    break;
                }
                lambda *= 4.0;
            }
            tracing::trace!(it, cost, lambda, ?hyp, "ballistic fit iteration");
            if !improved || converged {
                break;
            }
            let ms = cur.r.iter().map(|v| v * v).sum::<f64>() / (2 * n) as f64;
            if it + 1 >= HOPELESS_AFTER && ms > HOPELESS_RMS_SIGMA.powi(2) {
                break;
            }
            // A poor fit crawling along a valley (Huber weights flipping, a hypothesis that
            // cannot represent the track) is stopped once it gains little.
            history.push(cost);
            if ms > STALL_RMS_SIGMA.powi(2) && history.len() > STALL_WINDOW {
                let before = history[history.len() - 1 - STALL_WINDOW];
                if before - cost < STALL_GAIN * cost {
                    break;
                }
            }
        }
        self.finish(x, cur, cost, iterations, hyp)
    }

    /// Covariance, residual summaries and the result record at the solution.
    fn finish(
        &mut self,
        x: Params,
        cur: Eval,
        cost: f64,
        iterations: usize,
        hyp: OutwardHypothesis,
    ) -> Option<BallisticFit> {
        let obs = self.obs;
        let n = obs.len();
        // Covariance from the undamped normal matrix at the solution.
        let (mut a, _) = self.linearise(&x, &cur, hyp);
        let dof = (2 * n).saturating_sub(N_PARAMS).max(1) as f64;
        let chi2: f64 = cur.r.iter().map(|v| v * v).sum();
        let scale = (chi2 / dof).max(1.0);
        // A drag at its bound is held there (an active constraint): its freedom would otherwise
        // inflate the covariance of everything it correlates with.
        let drag_at_bound = x[6] <= 0.0 || x[6] >= self.max_drag;
        let wind_at_bound = x[7].abs() >= MAX_WIND_M_S;
        let held = hold(&mut a, [(6, drag_at_bound), (7, wind_at_bound)]);
        let mut cov = a.try_inverse().map(|m| m * scale)?;
        for k in held {
            cov[(k, k)] = 0.0;
        }
        let mut sq = 0.0;
        let mut residuals_px = Vec::with_capacity(n);
        for (pair, o) in cur.r.chunks_exact(2).zip(obs) {
            let e = [pair[0] * o.sigma_px, pair[1] * o.sigma_px];
            sq += e[0] * e[0] + e[1] * e[1];
            residuals_px.push(e);
        }
        let box_violation = ((cur.prior[0].powi(2) + cur.prior[1].powi(2)) / 2.0).sqrt();
        if !(sq.is_finite() && x.iter().all(|v| v.is_finite())) {
            return None;
        }
        Some(BallisticFit {
            state: BallisticState::from_params(self.t0, &x),
            cov,
            rmse_px: (sq / n as f64).sqrt(),
            residuals_px,
            box_violation,
            iterations,
            cost,
            hypothesis: hyp,
        })
    }
}

/// Fits one hypothesis from an initial state (for tests and diagnostics).
pub fn fit_hypothesis(
    model: &FacadeModel,
    obs: &[Obs],
    init: &BallisticState,
    hyp: OutwardHypothesis,
) -> Option<BallisticFit> {
    if obs.len() < 4 {
        return None;
    }
    let mut solver = Solver::new(model, obs, max_drag_per_m());
    let init = solver.start(init);
    solver.fit(&init.params(), hyp)
}

/// Holds the parameters flagged `true` fixed in the normal matrix `a` (an active bound: their row
/// and column become the identity's) and returns their indices.
fn hold<const K: usize>(a: &mut ParamCov, flags: [(usize, bool); K]) -> Vec<usize> {
    let held: Vec<usize> = flags.iter().filter(|f| f.1).map(|f| f.0).collect();
    for &k in &held {
        for i in 0..N_PARAMS {
            a[(k, i)] = 0.0;
            a[(i, k)] = 0.0;
        }
        a[(k, k)] = 1.0;
    }
    held
}

/// Huber weight of a point with normalised residual norm `s`.
fn huber_weight(s: f64) -> f64 {
    if s <= HUBER_K { 1.0 } else { HUBER_K / s }
}

/// The Jacobian of the normalised residuals: analytic for the initial position (the trajectory
/// shifts rigidly), forward differences of the trajectory for velocity and drag, the
/// projection's derivative analytic.
fn jacobian(prob: &Problem, times: &[f64], x: &Params, cur: &Eval, jac: &mut [[f64; N_PARAMS]]) {
    // d position / d (v0, k) by forward differences, the four perturbed trajectories
    // integrated together (independent arithmetic overlaps in the CPU).
    let steps = [1e-6, 1e-6, 1e-6, 1e-7];
    let (mut p, mut v, mut k) = ([[x[0], x[1], x[2]]; 4], [[x[3], x[4], x[5]]; 4], [x[6]; 4]);
    for j in 0..3 {
        v[j][j] += steps[j];
    }
    k[3] += steps[3];
    let mut t = prob.t0;
    let mut dpos: Vec<[[f64; 3]; 4]> = Vec::with_capacity(times.len());
    for (&ti, base) in times.iter().zip(&cur.pos) {
        let dt = ti - t;
        if dt != 0.0 {
            let n = (dt.abs() / MAX_STEP_S).ceil().max(1.0);
            let h = dt / n;
            for _ in 0..n as usize {
                rk4_lanes(&mut p, &mut v, &k, h);
            }
            t = ti;
        }
        // The lanes integrate the air-frame path; the wind's drift is the same in all of them.
        let drift = x[7] * (ti - prob.t0);
        let mut d = [[0.0; 3]; 4];
        for j in 0..4 {
            for c in 0..3 {
                let lane = if c == 0 { p[j][c] + drift } else { p[j][c] };
                d[j][c] = (lane - base[c]) / steps[j];
            }
        }
        dpos.push(d);
    }
    let p = prob.model.camera();
    for (i, (o, pos)) in prob.obs.iter().zip(&cur.pos).enumerate() {
        let (_, d) = p.project_with_jacobian(*pos);
        let inv_s = 1.0 / o.sigma_px;
        for r in 0..2 {
            let row = &mut jac[2 * i + r];
            for c in 0..3 {
                row[c] = d[r][c] * inv_s;
            }
            for j in 0..4 {
                let dp = dpos[i][j];
                row[3 + j] = (d[r][0] * dp[0] + d[r][1] * dp[1] + d[r][2] * dp[2]) * inv_s;
            }
            // d position / d wind = (t - t0) along x.
            row[7] = d[r][0] * (prob.obs[i].t_s - prob.t0) * inv_s;
        }
    }
}

/// The IRLS-weighted normal equations `A = J^T W J + priors`, `g = J^T W r + priors`.
fn normal_equations(
    cur: &Eval,
    jac: &[[f64; N_PARAMS]],
    x: &Params,
    hyp: OutwardHypothesis,
) -> (ParamCov, Params) {
    let mut a = ParamCov::zeros();
    let mut g = Params::zeros();
    for (i, pair) in cur.r.chunks_exact(2).enumerate() {
        let s = (pair[0] * pair[0] + pair[1] * pair[1]).sqrt();
        let w = huber_weight(s);
        for r in 0..2 {
            let row = &jac[2 * i + r];
            let res = pair[r];
            for c in 0..N_PARAMS {
                g[c] += w * row[c] * res;
                for d in c..N_PARAMS {
                    a[(c, d)] += w * row[c] * row[d];
                }
            }
        }
    }
    for ((idx, d), r) in prior_jacobian(x, hyp).iter().zip(cur.prior.iter()) {
        a[(*idx, *idx)] += d * d;
        g[*idx] += d * r;
    }
    for c in 0..N_PARAMS {
        for d in 0..c {
            a[(c, d)] = a[(d, c)];
        }
    }
    (a, g)
}

/// Constant acceleration on the facade plane: each track point mapped through the inverse
/// homography, `q(t) = q0 + v t + a t^2 / 2` per axis, weighted so residuals count in pixels,
/// with Huber reweighting.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaneFit {
    /// Reference time (the first point's), seconds.
    pub t0_s: f64,
    /// Facade x: position (m), velocity (m/s), acceleration (m/s^2) at `t0_s`.
    pub x: [f64; 3],
    /// Height: position (m), velocity (m/s), acceleration (m/s^2) at `t0_s`.
    pub y: [f64; 3],
    /// Residuals of each point on the facade, metres.
    pub residuals_m: Vec<[f64; 2]>,
    /// Local pixels per metre at each point.
    pub px_per_m: Vec<f64>,
    /// Approximate root-mean-square residual, pixels.
    pub rmse_px: f64,
}

impl PlaneFit {
    /// Fits observations sorted by time (at least 3). None when degenerate.
    pub fn fit(model: &FacadeModel, obs: &[Obs]) -> Option<PlaneFit> {
        if obs.len() < 3 {
            return None;
        }
        let t0 = obs[0].t_s;
        let pts: Vec<[f64; 2]> = obs
            .iter()
            .map(|o| {
                let q = model.image_to_facade(o.px);
                [q.x_m, q.height_m]
            })
            .collect();
        if pts.iter().flatten().any(|v| !v.is_finite()) {
            return None;
        }
        let scale: Vec<f64> = pts.iter().map(|q| model.px_per_m_at(q[0], q[1])).collect();
        let base_w: Vec<f64> = scale
            .iter()
            .zip(obs)
            .map(|(s, o)| (s / o.sigma_px).powi(2))
            .collect();
        let mut w = base_w.clone();
        let mut cx = [0.0; 3];
        let mut cy = [0.0; 3];
        for _ in 0..4 {
            cx = weighted_quadratic(obs, &pts, &w, 0, t0)?;
            cy = weighted_quadratic(obs, &pts, &w, 1, t0)?;
            for i in 0..obs.len() {
                let tau = obs[i].t_s - t0;
                let ex = eval_quad(&cx, tau) - pts[i][0];
                let ey = eval_quad(&cy, tau) - pts[i][1];
                let s = (ex * ex + ey * ey).sqrt() * base_w[i].sqrt();
                w[i] = base_w[i] * huber_weight(s);
            }
        }
        let mut residuals_m = Vec::with_capacity(obs.len());
        let mut sq = 0.0;
        for i in 0..obs.len() {
            let tau = obs[i].t_s - t0;
            let e = [
                eval_quad(&cx, tau) - pts[i][0],
                eval_quad(&cy, tau) - pts[i][1],
            ];
            sq += (e[0] * e[0] + e[1] * e[1]) * scale[i] * scale[i];
            residuals_m.push(e);
        }
        Some(PlaneFit {
            t0_s: t0,
            x: cx,
            y: cy,
            residuals_m,
            px_per_m: scale,
            rmse_px: (sq / obs.len() as f64).sqrt(),
        })
    }

    /// Fitted facade position `[x_m, height_m]` at a time.
    pub fn position(&self, t_s: f64) -> [f64; 2] {
        let tau = t_s - self.t0_s;
        [eval_quad(&self.x, tau), eval_quad(&self.y, tau)]
    }

    /// Fitted facade velocity at a time, m/s.
    pub fn velocity(&self, t_s: f64) -> [f64; 2] {
        let tau = t_s - self.t0_s;
        [self.x[1] + self.x[2] * tau, self.y[1] + self.y[2] * tau]
    }

    /// Downward acceleration on the facade plane, m/s^2 (the contract's `g_fit_m_s2`).
    pub fn g_down_m_s2(&self) -> f64 {
        -self.y[2]
    }
}

fn eval_quad(c: &[f64; 3], tau: f64) -> f64 {
    c[0] + c[1] * tau + 0.5 * c[2] * tau * tau
}

/// Weighted least squares of one coordinate on `[1, t, t^2/2]`.
fn weighted_quadratic(
    obs: &[Obs],
    pts: &[[f64; 2]],
    w: &[f64],
    axis: usize,
    t0: f64,
) -> Option<[f64; 3]> {
    let mut a = nalgebra::Matrix3::<f64>::zeros();
    let mut b = Vector3::<f64>::zeros();
    for i in 0..obs.len() {
        let tau = obs[i].t_s - t0;
        let basis = Vector3::new(1.0, tau, 0.5 * tau * tau);
        a += w[i] * basis * basis.transpose();
        b += w[i] * pts[i][axis] * basis;
    }
    let sol = a.cholesky()?.solve(&b);
    sol.iter()
        .all(|v| v.is_finite())
        .then(|| [sol[0], sol[1], sol[2]])
}

/// Constant velocity in pixels, per axis, unweighted least squares.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFit {
    /// Root-mean-square residual (Euclidean per point), pixels.
    pub rmse_px: f64,
    /// Velocity, pixels per second.
    pub vel_px_s: [f64; 2],
}

impl LineFit {
    /// Fits observations (at least 2 with distinct times).
    pub fn fit(obs: &[Obs]) -> Option<LineFit> {
        let n = obs.len() as f64;
        if obs.len() < 2 {
            return None;
        }
        let tm = obs.iter().map(|o| o.t_s).sum::<f64>() / n;
        let stt: f64 = obs.iter().map(|o| (o.t_s - tm).powi(2)).sum();
        if stt.is_nan() || stt <= 0.0 {
            return None;
        }
        let mut vel = [0.0; 2];
        let mut mean = [0.0; 2];
        for ax in 0..2 {
            mean[ax] = obs.iter().map(|o| o.px[ax]).sum::<f64>() / n;
            vel[ax] = obs
                .iter()
                .map(|o| (o.t_s - tm) * (o.px[ax] - mean[ax]))
                .sum::<f64>()
                / stt;
        }
        let sq: f64 = obs
            .iter()
            .map(|o| {
                let ex = mean[0] + vel[0] * (o.t_s - tm) - o.px[0];
                let ey = mean[1] + vel[1] * (o.t_s - tm) - o.px[1];
                ex * ex + ey * ey
            })
            .sum();
        Some(LineFit {
            rmse_px: (sq / n).sqrt(),
            vel_px_s: vel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wind_adds_a_drift_and_integration_composes() {
        let s = BallisticState {
            t_s: 0.5,
            pos_m: [4.0, 30.0, 0.6],
            vel_m_s: [-2.0, 0.5, 0.3],
            drag_per_m: G_M_S2 / 12.0f64.powi(2),
            wind_x_m_s: 2.5,
        };
        // Stepping through an intermediate time gives the same state as one step.
        let (a, b) = (s.at(1.3).at(2.1), s.at(2.1));
        for k in 0..3 {
            assert!((a.pos_m[k] - b.pos_m[k]).abs() < 1e-6, "{a:?} {b:?}");
            assert!((a.vel_m_s[k] - b.vel_m_s[k]).abs() < 1e-6, "{a:?} {b:?}");
        }
        // The wind only shifts x by w t against the windless path of the same air velocity.
        let calm = BallisticState {
            wind_x_m_s: 0.0,
            ..s
        };
        let mut with = Vec::new();
        let mut without = Vec::new();
        s.positions(&[0.9, 1.7, 2.5], &mut with);
        calm.positions(&[0.9, 1.7, 2.5], &mut without);
        for ((p, q), t) in with.iter().zip(&without).zip([0.9, 1.7, 2.5]) {
            assert!((p[0] - q[0] - 2.5 * (t - 0.5)).abs() < 1e-9);
            assert!((p[1] - q[1]).abs() < 1e-9 && (p[2] - q[2]).abs() < 1e-9);
        }
        // An object dropped from rest over the ground drifts towards the wind's speed.
        let dropped = BallisticState {
            vel_m_s: [-2.5, 0.0, 0.0],
            ..s
        };
        let later = dropped.at(5.5);
        let gx = later.ground_vel_m_s()[0];
        assert!(gx > 2.0 && gx < 2.5, "ground x speed after 5 s {gx}");
    }

    #[test]
    fn integration_is_exact_without_drag_and_reversible_with_it() {
        let s = BallisticState {
            t_s: 1.0,
            pos_m: [1.0, 30.0, 0.5],
            vel_m_s: [0.5, 2.0, 1.0],
            drag_per_m: 0.0,
            wind_x_m_s: 0.0,
        };
        let a = s.at(2.5);
        let dt: f64 = 1.5;
        assert!((a.pos_m[1] - (30.0 + 2.0 * dt - 0.5 * G_M_S2 * dt * dt)).abs() < 1e-12);
        let apex = s.apex_time(5.0).unwrap();
        assert!((apex - (1.0 + 2.0 / G_M_S2)).abs() < 0.01 * 0.02);

        let d = BallisticState {
            drag_per_m: G_M_S2 / 100.0,
            ..s
        };
        let fwd = d.at(3.0);
        let back = fwd.at(1.0);
        for i in 0..3 {
            assert!((back.pos_m[i] - d.pos_m[i]).abs() < 1e-6);
        }
        // Falling long enough approaches the terminal speed (10 m/s).
        let late = d.at(8.0);
        assert!((late.vel_m_s[1] + 10.0).abs() < 0.1, "{:?}", late.vel_m_s);
    }

    #[test]
    fn line_fit_is_exact_on_a_line() {
        let obs: Vec<Obs> = (0..10)
            .map(|i| Obs {
                t_s: i as f64 * 0.04,
                px: [100.0 + 5.0 * i as f64, 50.0 - 2.0 * i as f64],
                sigma_px: 1.0,
            })
            .collect();
        let l = LineFit::fit(&obs).unwrap();
        assert!(l.rmse_px < 1e-9);
        assert!((l.vel_px_s[0] - 125.0).abs() < 1e-9);
    }
}
