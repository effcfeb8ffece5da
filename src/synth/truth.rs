//! Ground truth of a synthetic clip (`NAME.truth.json`, format `fallwatch-truth-1`) and the
//! calibration derived from the true camera (`NAME.calib.toml`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::err;
use crate::error::Result;

/// The truth file's format tag.
pub const TRUTH_FORMAT: &str = "fallwatch-truth-1";

/// A clip's ground truth.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    /// Always [`TRUTH_FORMAT`].
    pub format: String,
    /// The seed the clip was generated from.
    pub seed: u64,
    /// Generator name and version.
    pub generator: String,
    /// Video file name (next to the truth file).
    pub clip: String,
    /// Calibration file name (next to the truth file).
    pub calib: String,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// Frames in the clip.
    pub frames: u32,
    /// Duration, seconds.
    pub duration_s: f64,
    /// The scene.
    pub scene: SceneTruth,
    /// Thrown or dropped objects.
    pub objects: Vec<ObjectTruth>,
    /// Distractors present.
    pub distractors: Vec<DistractorTruth>,
    /// Tags of hard conditions (`night`, `rain`, `above_top_edge`, `behind_tree`, `far`,
    /// `low_contrast`, ...).
    pub tags: Vec<String>,
}

/// The scene and camera.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SceneTruth {
    /// `day`, `dusk` or `night`.
    pub time_of_day: String,
    /// Horizontal distance from the camera to the facade plane, metres.
    pub camera_distance_m: f64,
    /// Camera height above the ground, metres.
    pub camera_height_m: f64,
    /// Upward tilt, degrees.
    pub pitch_deg: f64,
    /// Heading relative to the facade normal, degrees.
    pub yaw_deg: f64,
    /// Focal length, pixels.
    pub focal_px: f64,
    /// Storeys of the building.
    pub floors: u32,
    /// Window bays in the calibration rectangle.
    pub bays: u32,
    /// Target bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Keyframe interval, frames.
    pub gop_frames: u32,
    /// Extension: roll about the optical axis, degrees.
    #[serde(default)]
    pub roll_deg: f64,
    /// Extension: night picture in infrared monochrome.
    #[serde(default)]
    pub infrared: bool,
    /// Extension: exposure time, seconds.
    #[serde(default)]
    pub exposure_s: f64,
}

/// One thrown or dropped object.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectTruth {
    /// `bottle`, `can`, `brick`, `phone`, `bag`, `box`, `fruit`.
    pub kind: String,
    /// Largest dimension, metres.
    pub size_m: f64,
    /// `drop`, `throw` or `toss`.
    pub motion: String,
    /// Release time, seconds.
    pub release_s: f64,
    /// Floor (contract formula) of the release point's foot on the facade.
    pub floor: i32,
    /// Bay (contract formula).
    pub bay: i32,
    /// Height of the release point above the ground, metres.
    pub height_m: f64,
    /// Distance of the release point's foot from the calibration rectangle's left edge, metres.
    pub x_m: f64,
    /// Distance of the release point in front of the facade plane, metres.
    pub wall_distance_m: f64,
    /// The calibration homography applied to (`x_m`, `height_m`), pixels.
    pub release_px: [f64; 2],
    /// Time of the last track entry (landing or leaving the frame), seconds.
    pub end_s: f64,
    /// One entry per frame from release to the end.
    pub track: Vec<TrackTruth>,
}

/// Where an object is in one frame.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrackTruth {
    /// Frame time, seconds.
    pub t_s: f64,
    /// Centre, pixels (camera shake included).
    pub x_px: f64,
    /// Centre, pixels.
    pub y_px: f64,
    /// Apparent size (largest dimension), pixels.
    pub size_px: f64,
    /// False when hidden (tree, building) or outside the frame.
    pub visible: bool,
}

/// A distractor present in the clip.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DistractorTruth {
    /// Kind name (`bird`, `leaf`, `paper`, `rain`, `insect`, `lights`, `cloud_shadow`,
    /// `exposure`, `tree`, `shake`).
    pub kind: String,
    /// How many, for countable distractors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Strength in 0..1, for continuous ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f64>,
}

impl Truth {
    /// The truth files (`*.truth.json`) in `dir`, sorted; an error when there are none.
    pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err!(InvalidInput, "cannot read {}", dir.display()).with_source(e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".truth.json"))
            .collect();
        v.sort();
        if v.is_empty() {
            return Err(err!(
                InvalidInput,
                "{}: no *.truth.json files",
                dir.display()
            ));
        }
        Ok(v)
    }

    /// Reads a truth file.
    pub fn load(path: &Path) -> Result<Truth> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            err!(InvalidInput, "truth {}: cannot read", path.display()).with_source(e)
        })?;
        let t: Truth = serde_json::from_str(&text)
            .map_err(|e| err!(InvalidInput, "truth {}: {e}", path.display()))?;
        if t.format != TRUTH_FORMAT {
            return Err(err!(
                InvalidInput,
                "truth {}: format {:?}, expected {TRUTH_FORMAT:?}",
                path.display(),
                t.format
            ));
        }
        Ok(t)
    }

    /// Writes the truth file (pretty JSON).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("truth serialises");
        std::fs::write(path, text + "\n")
            .map_err(|e| err!(Resource, "truth {}: cannot write", path.display()).with_source(e))
    }
}
