//! The facade model of one camera: the calibration homography between facade metres and image
//! pixels, and the camera recovered from it.

use serde::Serialize;

use crate::calib::Calibration;
use crate::error::Result;

use super::camera::{Camera, Ray, focal_from_homography};
use super::homography::Homography;

/// Corner-click noise assumed when estimating how well the corners determine the focal length,
/// pixels (standard deviation per coordinate). Default 1.0.
pub const CORNER_SIGMA_PX: f64 = 1.0;

/// A point on the facade plane.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FacadePoint {
    /// Distance from the calibration rectangle's left edge, metres (to the right in the image).
    pub x_m: f64,
    /// Height above the ground, metres.
    pub height_m: f64,
}

/// Facade geometry of one camera: homography, camera, calibration and image size.
#[derive(Clone, Debug)]
pub struct FacadeModel {
    calib: Calibration,
    width_px: u32,
    height_px: u32,
    /// Facade `(x_m, height_m)` to image pixels.
    h: Homography,
    camera: Camera,
}

impl FacadeModel {
    /// Builds the model for a validated calibration and the video's frame size.
    ///
    /// Fails when the corners give a degenerate homography or put the camera behind the wall.
    /// A focal length the corners cannot determine (near fronto-parallel view) is not an error:
    /// it falls back to a blended or nominal value, logged and reported in
    /// [`Camera::focal`].
    pub fn new(calib: &Calibration, width_px: u32, height_px: u32) -> Result<FacadeModel> {
        let corners = calib.facade.corners_px;
        let src = facade_corners_m(calib);
        let ctx = || format!("camera {}: facade calibration", calib.camera.id);
        let h = Homography::from_correspondences(&src, &corners).map_err(|e| e.context(ctx()))?;
        let rel_sigma = focal_rel_sigma(&src, &corners, width_px, height_px);
        let camera = Camera::from_homography(&h, width_px, height_px, rel_sigma)
            .map_err(|e| e.context(ctx()))?;
        Ok(FacadeModel {
            calib: calib.clone(),
            width_px,
            height_px,
            h,
            camera,
        })
    }

    /// The calibration this model was built from.
    pub fn calibration(&self) -> &Calibration {
        &self.calib
    }

    /// Image width and height, pixels.
    pub fn image_size(&self) -> (u32, u32) {
        (self.width_px, self.height_px)
    }

    /// The facade-to-image homography.
    pub fn homography(&self) -> &Homography {
        &self.h
    }

    /// The recovered camera.
    pub fn camera(&self) -> &Camera {
        &self.camera
    }

    /// The facade point seen at an image pixel (the pixel's ray meets the facade plane there).
    pub fn image_to_facade(&self, px: [f64; 2]) -> FacadePoint {
        let q = self.h.apply_inverse(px);
        FacadePoint {
            x_m: q[0],
            height_m: q[1],
        }
    }

    /// The image pixel of a facade point.
    pub fn facade_to_image(&self, x_m: f64, height_m: f64) -> [f64; 2] {
        self.h.apply([x_m, height_m])
    }

    /// Pixels per metre on the facade around a facade point.
    pub fn px_per_m_at(&self, x_m: f64, height_m: f64) -> f64 {
        self.h.local_scale([x_m, height_m])
    }

    /// Projects a 3-D point in facade coordinates (x along the facade, y up, z out of the wall)
    /// to image pixels.
    pub fn project(&self, p_m: [f64; 3]) -> [f64; 2] {
        self.camera.project(p_m)
    }

    /// The ray through an image pixel, in facade coordinates.
    pub fn ray(&self, px: [f64; 2]) -> Ray {
        self.camera.ray(px)
    }

    /// True when a pixel lies inside the image.
    pub fn in_image(&self, px: [f64; 2]) -> bool {
        px[0] >= 0.0
            && px[1] >= 0.0
            && px[0] <= f64::from(self.width_px)
            && px[1] <= f64::from(self.height_px)
    }
}

/// The calibration rectangle's corners in facade metres, in the contract's corner order
/// (top-left, top-right, bottom-right, bottom-left).
pub fn facade_corners_m(calib: &Calibration) -> [[f64; 2]; 4] {
    let f = &calib.facade;
    let (b, t) = (f.base_height_m, f.base_height_m + f.height_m);
    [[0.0, t], [f.width_m, t], [f.width_m, b], [0.0, b]]
}

/// Relative standard error of the homography's focal length for [`CORNER_SIGMA_PX`] of noise on
/// each corner coordinate, by central differences. Infinite when some perturbation leaves the
/// equations without a solution.
fn focal_rel_sigma(src: &[[f64; 2]; 4], corners: &[[f64; 2]; 4], w: u32, h: u32) -> f64 {
    let principal = [f64::from(w) / 2.0, f64::from(h) / 2.0];
    let scale = f64::from(w.max(1));
    let focal = |c: &[[f64; 2]; 4]| -> Option<f64> {
        let hm = Homography::from_correspondences(src, c).ok()?;
        focal_from_homography(hm.matrix(), principal, scale)
    };
    let Some(f0) = focal(corners) else {
        return f64::INFINITY;
    };
    let step = 0.5;
    let mut var = 0.0;
    for i in 0..4 {
        for j in 0..2 {
            let mut plus = *corners;
            let mut minus = *corners;
            plus[i][j] += step;
            minus[i][j] -= step;
            let (Some(a), Some(b)) = (focal(&plus), focal(&minus)) else {
                return f64::INFINITY;
            };
            let d = (a - b) / (2.0 * step);
            var += d * d;
        }
    }
    var.sqrt() * CORNER_SIGMA_PX / f0
}
