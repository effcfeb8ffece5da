//! Physics: the facade homography, camera pose, ballistic fit, release point, and the fall /
//! not-fall assessment of candidate tracks.
//!
//! Build one [`FacadeModel`] per camera (calibration + frame size), then call [`assess()`] once per
//! candidate track:
//!
//! ```no_run
//! # fn demo(calib: &fallwatch::calib::Calibration, track: &[fallwatch::events::TrackPoint])
//! # -> fallwatch::Result<()> {
//! use fallwatch::physics::{FacadeModel, Verdict, assess};
//! let model = FacadeModel::new(calib, 1920, 1080)?;
//! let a = assess(&model, track);
//! match &a.verdict {
//!     Verdict::Fall(est) => { /* est.origin, est.fall, est.trajectory_px, a.score */ }
//!     Verdict::Reject(reason) => { /* log the reason */ }
//! }
//! # Ok(()) }
//! ```
//!
//! The model, equations, assumptions and failure modes are in `docs/physics.md`.

pub mod assess;
pub mod camera;
pub mod facade;
pub mod fit;
pub mod homography;
pub mod origin;
pub mod sim;

#[cfg(test)]
mod tests;

pub use assess::{
    ACCEPT_SCORE, Assessment, DEFAULT_SCORE_MODEL, Features, LIGHT_MIN_TERMINAL_M_S, RejectReason,
    ScoreModel, Verdict, assess, assess_with,
};
pub use camera::{Camera, FocalEstimate, FocalSource, Ray};
pub use facade::{FacadeModel, FacadePoint};
pub use fit::{G_M_S2, MIN_TERMINAL_M_S, OutwardHypothesis};
pub use homography::Homography;
pub use origin::{FallEstimate, Motion};
