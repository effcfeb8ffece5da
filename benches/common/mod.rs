//! Inputs shared by the benches.

use fallwatch::motion::{Candidate, Polarity};

/// A small, compact motion candidate centred at (`x`, `y`).
pub fn cand(x: f64, y: f64) -> Candidate {
    Candidate {
        x_px: x,
        y_px: y,
        x_min_px: (x - 1.0).max(0.0) as u32,
        y_min_px: (y - 1.0).max(0.0) as u32,
        x_max_px: (x + 1.0).max(0.0) as u32,
        y_max_px: (y + 1.0).max(0.0) as u32,
        area_px: 6,
        mass: 60.0,
        contrast: 12.0,
        peak_contrast: 15.0,
        polarity: Polarity::Brighter,
        length_px: 2.5,
        width_px: 2.2,
        orientation_rad: 0.0,
        fragments: 1,
    }
}
