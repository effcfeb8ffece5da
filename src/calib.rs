//! The per-camera facade calibration: the contract's TOML file (see `docs/contract.md`), parsed,
//! validated and given the contract's floor and bay formulas.
//!
//! Everything downstream (motion region, physics, origin, snapshot labels) reads this one struct.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{bail, err};

/// One camera's calibration file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// `[camera]`: identity.
    pub camera: CameraSection,
    /// `[facade]`: the calibrated rectangle on the facade plane.
    pub facade: Facade,
    /// `[floors]`: storey heights.
    pub floors: Floors,
    /// `[windows]`: window bays across the rectangle.
    pub windows: Windows,
    /// `[[ignore]]`: image regions whose motion is ignored. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<IgnoreRegion>,
}

/// `[camera]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CameraSection {
    /// Used in event ids and paths: letters, digits, `-`, `_` and `.` only.
    pub id: String,
}

/// `[facade]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Facade {
    /// Image pixels of the rectangle's corners: top-left, top-right, bottom-right, bottom-left.
    pub corners_px: [[f64; 2]; 4],
    /// Real width of the rectangle, metres.
    pub width_m: f64,
    /// Real height of the rectangle, metres.
    pub height_m: f64,
    /// Height above the ground of the rectangle's bottom edge, metres.
    pub base_height_m: f64,
}

/// `[floors]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Floors {
    /// Height of floor 1 (the ground floor), metres.
    pub first_storey_m: f64,
    /// Height of each floor above it, metres.
    pub storey_m: f64,
}

/// `[windows]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Window bays of equal width across the rectangle, numbered 1.. from the image's left.
    pub bays: u32,
}

/// `[[ignore]]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRegion {
    /// Polygon vertices in image pixels (at least three).
    pub polygon_px: Vec<[f64; 2]>,
}

impl Calibration {
    /// Reads and validates a calibration file. Errors are one line naming the file.
    pub fn load(path: &Path) -> Result<Calibration> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            err!(InvalidInput, "calibration {}: cannot read", path.display()).with_source(e)
        })?;
        Calibration::from_toml(&text)
            .map_err(|e| e.context(format!("calibration {}", path.display())))
    }

    /// Parses and validates calibration TOML text.
    pub fn from_toml(text: &str) -> Result<Calibration> {
        let calib: Calibration = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let msg = e.message().trim().replace('\n', " ");
            match line {
                Some(l) => err!(InvalidInput, "line {l}: {msg}"),
                None => err!(InvalidInput, "{msg}"),
            }
        })?;
        calib.validate()?;
        Ok(calib)
    }

    /// Serialises to the contract's TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("calibration serialises")
    }

    /// Checks everything the contract implies: a usable id, positive sizes, and four corners that
    /// form a convex quadrilateral in the order top-left, top-right, bottom-right, bottom-left.
    pub fn validate(&self) -> Result<()> {
        let id = &self.camera.id;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || id.starts_with('.')
        {
            bail!(
                InvalidInput,
                "camera.id {id:?} must be non-empty and use only letters, digits, '-', '_' and '.'"
            );
        }
        let f = &self.facade;
        for (name, v) in [
            ("facade.width_m", f.width_m),
            ("facade.height_m", f.height_m),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!(
                    InvalidInput,
                    "{name} must be a positive number of metres, got {v}"
                );
            }
        }
        if !f.base_height_m.is_finite() {
            bail!(
                InvalidInput,
                "facade.base_height_m must be a finite number of metres"
            );
        }
        for (name, v) in [
            ("floors.first_storey_m", self.floors.first_storey_m),
            ("floors.storey_m", self.floors.storey_m),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!(
                    InvalidInput,
                    "{name} must be a positive number of metres, got {v}"
                );
            }
        }
        if self.windows.bays == 0 {
            bail!(InvalidInput, "windows.bays must be at least 1");
        }
        if f.corners_px.iter().flatten().any(|v| !v.is_finite()) {
            bail!(
                InvalidInput,
                "facade.corners_px must be finite pixel coordinates"
            );
        }
        if !is_convex_clockwise(&f.corners_px) {
            bail!(
                InvalidInput,
                "facade.corners_px do not form a convex quadrilateral in the order top-left, \
                 top-right, bottom-right, bottom-left"
            );
        }
        for (i, region) in self.ignore.iter().enumerate() {
            if region.polygon_px.len() < 3 {
                bail!(
                    InvalidInput,
                    "ignore[{i}].polygon_px needs at least 3 points"
                );
            }
            if region.polygon_px.iter().flatten().any(|v| !v.is_finite()) {
                bail!(
                    InvalidInput,
                    "ignore[{i}].polygon_px must be finite pixel coordinates"
                );
            }
        }
        Ok(())
    }

    /// The contract's floor number for a point `height_m` above the ground.
    pub fn floor_at(&self, height_m: f64) -> i32 {
        let fl = &self.floors;
        if height_m < fl.first_storey_m {
            1
        } else {
            // The epsilon keeps exact boundaries (6.6 m with 3.6 + 3.0) on the upper floor despite
            // binary rounding, as the contract's real-number formula says.
            2 + ((height_m - fl.first_storey_m) / fl.storey_m + 1e-9).floor() as i32
        }
    }

    /// The contract's bay number for a point `x_m` from the rectangle's left edge.
    pub fn bay_at(&self, x_m: f64) -> i32 {
        1 + (x_m / (self.facade.width_m / f64::from(self.windows.bays)) + 1e-9).floor() as i32
    }

    /// Height above the ground of the bottom of floor `floor` (1-based), metres.
    pub fn floor_base_m(&self, floor: i32) -> f64 {
        if floor <= 1 {
            0.0
        } else {
            self.floors.first_storey_m + f64::from(floor - 2) * self.floors.storey_m
        }
    }
}

/// True when the four points, in image coordinates (y down), turn the same way at every corner in
/// the clockwise-on-screen sense of TL, TR, BR, BL, with no degenerate (collinear) corner.
fn is_convex_clockwise(p: &[[f64; 2]; 4]) -> bool {
    let mut min_cross = f64::INFINITY;
    for i in 0..4 {
        let a = p[i];
        let b = p[(i + 1) % 4];
        let c = p[(i + 2) % 4];
        let cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
        min_cross = min_cross.min(cross);
    }
    // y points down, so TL -> TR -> BR turns with a positive cross product.
    min_cross > 1e-6
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
[camera]
id = "tower-3-east"

[facade]
corners_px = [[812.0, 96.0], [1410.0, 130.0], [1388.0, 1012.0], [836.0, 1040.0]]
width_m = 24.0
height_m = 42.0
base_height_m = 1.2

[floors]
first_storey_m = 3.6
storey_m = 3.0

[windows]
bays = 6

[[ignore]]
polygon_px = [[0.0, 900.0], [400.0, 900.0], [400.0, 1080.0], [0.0, 1080.0]]
"#;

    #[test]
    fn parses_the_contract_example() {
        let c = Calibration::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.camera.id, "tower-3-east");
        assert_eq!(c.windows.bays, 6);
        assert_eq!(c.ignore.len(), 1);
        let again = Calibration::from_toml(&c.to_toml()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn floor_and_bay_follow_the_contract_formulas() {
        let c = Calibration::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.floor_at(0.0), 1);
        assert_eq!(c.floor_at(3.59), 1);
        assert_eq!(c.floor_at(3.6), 2);
        assert_eq!(c.floor_at(6.59), 2);
        assert_eq!(c.floor_at(6.6), 3);
        assert_eq!(c.floor_at(35.7), 12);
        assert_eq!(c.bay_at(0.0), 1);
        assert_eq!(c.bay_at(3.99), 1);
        assert_eq!(c.bay_at(4.0), 2);
        assert_eq!(c.bay_at(13.1), 4);
        assert_eq!(c.floor_base_m(12), 3.6 + 10.0 * 3.0);
    }

    #[test]
    fn missing_field_is_one_line_with_its_name() {
        let text = EXAMPLE.replace("width_m = 24.0\n", "");
        let e = Calibration::from_toml(&text).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("width_m"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn corners_out_of_order_or_concave_are_refused() {
        // TR and TL swapped: a self-intersecting bow tie.
        let swapped = EXAMPLE.replace(
            "[[812.0, 96.0], [1410.0, 130.0]",
            "[[1410.0, 130.0], [812.0, 96.0]",
        );
        let e = Calibration::from_toml(&swapped).unwrap_err();
        assert!(e.to_string().contains("convex"), "{e}");
        // Counter-clockwise order (TL, BL, BR, TR).
        let ccw = EXAMPLE.replace(
            "[[812.0, 96.0], [1410.0, 130.0], [1388.0, 1012.0], [836.0, 1040.0]]",
            "[[812.0, 96.0], [836.0, 1040.0], [1388.0, 1012.0], [1410.0, 130.0]]",
        );
        assert!(Calibration::from_toml(&ccw).is_err());
        // A dent: the bottom-right corner pulled inside.
        let dent = EXAMPLE.replace("[1388.0, 1012.0]", "[1000.0, 300.0]");
        assert!(Calibration::from_toml(&dent).is_err());
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_refused() {
        let typo = EXAMPLE.replace("bays = 6", "bays = 6\nbay_width = 4");
        assert!(
            Calibration::from_toml(&typo)
                .unwrap_err()
                .to_string()
                .contains("bay_width")
        );
        let bad_id = EXAMPLE.replace("tower-3-east", "../etc");
        assert!(Calibration::from_toml(&bad_id).is_err());
        let zero = EXAMPLE.replace("storey_m = 3.0", "storey_m = 0.0");
        assert!(Calibration::from_toml(&zero).is_err());
    }
}
