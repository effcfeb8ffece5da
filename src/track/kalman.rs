//! A constant-acceleration Kalman filter in image space: state `[x, vx, ax, y, vy, ay]` in
//! pixels, pixels/s and pixels/s^2, white-noise jerk as process noise (the acceleration itself
//! wanders: drag, perspective, a bird's wing beat), position measurements with a full 2 x 2
//! covariance (elongated for motion-blur streaks) and an optional speed measurement along an axis.

use nalgebra::{Matrix2, SMatrix, SVector, Vector2};

pub(crate) type State = SVector<f64, 6>;
pub(crate) type Cov = SMatrix<f64, 6, 6>;

/// Filter state at time `t_s`.
#[derive(Clone, Debug)]
pub(crate) struct Kalman {
    pub x: State,
    pub p: Cov,
    pub t_s: f64,
}

impl Kalman {
    /// Starts at position `z` (covariance `r`), unknown velocity (deviation `vel_sigma`) and an
    /// acceleration around `acc_mean` (deviation `acc_sigma`).
    pub fn new(
        t_s: f64,
        z: Vector2<f64>,
        r: Matrix2<f64>,
        vel_sigma: f64,
        acc_mean: Vector2<f64>,
        acc_sigma: f64,
    ) -> Self {
        let mut x = State::zeros();
        x[0] = z[0];
        x[3] = z[1];
        x[2] = acc_mean[0];
        x[5] = acc_mean[1];
        let mut p = Cov::zeros();
        p[(0, 0)] = r[(0, 0)];
        p[(0, 3)] = r[(0, 1)];
        p[(3, 0)] = r[(1, 0)];
        p[(3, 3)] = r[(1, 1)];
        for i in [1, 4] {
            p[(i, i)] = vel_sigma * vel_sigma;
        }
        for i in [2, 5] {
            p[(i, i)] = acc_sigma * acc_sigma;
        }
        Kalman { x, p, t_s }
    }

    /// Moves the state to `t_s` with white-noise jerk of spectral density `jerk_psd`.
    pub fn predict(&mut self, t_s: f64, jerk_psd: f64) {
        let dt = (t_s - self.t_s).max(0.0);
        self.t_s = t_s;
        if dt == 0.0 {
            return;
        }
        let mut f = Cov::identity();
        let mut q = Cov::zeros();
        let (d2, d3, d4, d5) = (dt * dt, dt.powi(3), dt.powi(4), dt.powi(5));
        let qb = [
            [d5 / 20.0, d4 / 8.0, d3 / 6.0],
            [d4 / 8.0, d3 / 3.0, d2 / 2.0],
            [d3 / 6.0, d2 / 2.0, dt],
        ];
        for o in [0, 3] {
            f[(o, o + 1)] = dt;
            f[(o, o + 2)] = d2 / 2.0;
            f[(o + 1, o + 2)] = dt;
            for i in 0..3 {
                for j in 0..3 {
                    q[(o + i, o + j)] = jerk_psd * qb[i][j];
                }
            }
        }
        self.x = f * self.x;
        self.p = f * self.p * f.transpose() + q;
    }

    /// Position.
    pub fn pos(&self) -> Vector2<f64> {
        Vector2::new(self.x[0], self.x[3])
    }
    /// Velocity, pixels/s.
    pub fn vel(&self) -> Vector2<f64> {
        Vector2::new(self.x[1], self.x[4])
    }
    /// Acceleration, pixels/s^2.
    pub fn acc(&self) -> Vector2<f64> {
        Vector2::new(self.x[2], self.x[5])
    }
    /// Covariance of the position.
    pub fn pos_cov(&self) -> Matrix2<f64> {
        Matrix2::new(
            self.p[(0, 0)],
            self.p[(0, 3)],
            self.p[(3, 0)],
            self.p[(3, 3)],
        )
    }
    /// Covariance of the velocity.
    pub fn vel_cov(&self) -> Matrix2<f64> {
        Matrix2::new(
            self.p[(1, 1)],
            self.p[(1, 4)],
            self.p[(4, 1)],
            self.p[(4, 4)],
        )
    }

    /// Innovation and its covariance for a position measurement `z` with covariance `r`.
    pub fn innovation(&self, z: Vector2<f64>, r: Matrix2<f64>) -> (Vector2<f64>, Matrix2<f64>) {
        (z - self.pos(), self.pos_cov() + r)
    }

    /// Mahalanobis distance squared and log-determinant of the innovation covariance.
    pub fn gate(&self, z: Vector2<f64>, r: Matrix2<f64>) -> Option<(f64, f64)> {
        let (y, s) = self.innovation(z, r);
        let inv = s.try_inverse()?;
        let det = s.determinant();
        (det > 0.0).then(|| ((y.transpose() * inv * y)[0], det.ln()))
    }

    /// Position update.
    pub fn update_pos(&mut self, z: Vector2<f64>, r: Matrix2<f64>) {
        let mut h = SMatrix::<f64, 2, 6>::zeros();
        h[(0, 0)] = 1.0;
        h[(1, 3)] = 1.0;
        let (y, s) = self.innovation(z, r);
        let Some(s_inv) = s.try_inverse() else {
            return;
        };
        let k = self.p * h.transpose() * s_inv;
        self.x += k * y;
        self.joseph(&(k * h), &(k * r * k.transpose()));
    }

    /// Update with a measured speed `speed` (deviation `sigma`) along the unit axis `u`.
    pub fn update_speed_along(&mut self, u: Vector2<f64>, speed: f64, sigma: f64) {
        let mut h = SMatrix::<f64, 1, 6>::zeros();
        h[(0, 1)] = u[0];
        h[(0, 4)] = u[1];
        let y = speed - (h * self.x)[0];
        let s = (h * self.p * h.transpose())[0] + sigma * sigma;
        if s <= 0.0 {
            return;
        }
        let k = self.p * h.transpose() / s;
        self.x += k * y;
        self.joseph(&(k * h), &(k * k.transpose() * (sigma * sigma)));
    }

    /// `P = (I - KH) P (I - KH)' + K R K'`, which keeps `P` symmetric and positive.
    fn joseph(&mut self, kh: &Cov, krk: &Cov) {
        let a = Cov::identity() - kh;
        self.p = a * self.p * a.transpose() + krk;
        self.p = (self.p + self.p.transpose()) * 0.5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_constant_acceleration() {
        // y = 100 + 20 t + 0.5 * 400 t^2, sampled at 25 fps with no noise.
        let r = Matrix2::identity() * 0.25;
        let mut k = Kalman::new(
            0.0,
            Vector2::new(50.0, 100.0),
            r,
            500.0,
            Vector2::zeros(),
            800.0,
        );
        for i in 1..40 {
            let t = i as f64 / 25.0;
            k.predict(t, 1000.0 * 1000.0);
            k.update_pos(Vector2::new(50.0, 100.0 + 20.0 * t + 200.0 * t * t), r);
        }
        let t = 39.0 / 25.0;
        assert!(
            (k.vel()[1] - (20.0 + 400.0 * t)).abs() < 15.0,
            "{}",
            k.vel()[1]
        );
        assert!((k.acc()[1] - 400.0).abs() < 60.0, "{}", k.acc()[1]);
        assert!(k.vel()[0].abs() < 5.0);
        // The prediction one frame ahead lands within a pixel.
        let mut ahead = k.clone();
        ahead.predict(t + 0.04, 1e6);
        let tt = t + 0.04;
        assert!((ahead.pos()[1] - (100.0 + 20.0 * tt + 200.0 * tt * tt)).abs() < 1.0);
    }

    #[test]
    fn speed_measurement_sets_speed_along_its_axis() {
        let r = Matrix2::identity();
        let mut k = Kalman::new(0.0, Vector2::zeros(), r, 500.0, Vector2::zeros(), 100.0);
        let u = Vector2::new(0.6, 0.8);
        k.update_speed_along(u, 300.0, 10.0);
        assert!((k.vel().dot(&u) - 300.0).abs() < 5.0);
    }
}
