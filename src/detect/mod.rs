//! Object detection with ONNX models (ONNX Runtime through `ort`): what a candidate track is
//! (a label from a few crops), whether it is a bird to veto, and whether a person stood at the
//! release point.
//!
//! Motion finds objects of 2-20 px; a detector run on a whole frame misses them. So the detector
//! runs on crops: a square window ~3.5x the object's size around a candidate, upscaled to the
//! model's input ([`crop`]). Crops go to a [`DetectPool`] shared by all cameras: N worker threads,
//! each with its own model session, fed by a bounded queue that never blocks the caller (a full
//! queue sheds the request and counts it for that camera), replying on the camera's own channel.
//!
//! Models ([`Detector`]): the shipped NanoDet-m (COCO-80), a user's YOLOv8-format detector, an
//! EfficientNet-Lite0 ImageNet classifier (supported, not shipped: it did not earn its place, see
//! docs/detect.md), or none (the caller then works on physics
//! alone). The ONNX Runtime library is found and loaded by [`runtime`]; a missing library is one
//! clear error, never a panic.
//!
//! Results: [`label::TrackLabeler`] and [`label::veto`] for events, [`persons::PersonSearch`] for
//! the optional `persons` event field.

pub mod crop;
pub mod decode;
pub mod label;
pub mod model;
pub mod persons;
pub mod pool;
pub mod runtime;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use serde::{Deserialize, Serialize};

pub use self::crop::{BoxPx, CropWindow};
pub use self::label::{LabelConfig, TrackLabeler, Vocab, veto};
pub use self::model::OnnxDetector;
pub use self::persons::{PersonSearch, PersonSighting};
pub use self::pool::{CameraDetector, DetectPool, DetectReply, DetectRequest, RequestKind};
use crate::error::Result;

/// One detected object.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Index in the model's class list.
    pub class_id: u32,
    /// The model's class name (`person`, `bird`, `water bottle`, ...).
    pub class: Arc<str>,
    /// What the class means for fallwatch.
    pub vocab: Vocab,
    /// Confidence in [0, 1].
    pub score: f32,
    /// The box, in the pixels of the image the detector was given.
    pub box_px: BoxPx,
}

impl Serialize for Detection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            class: &'a str,
            score: f64,
            box_px: [f64; 4],
        }
        Out {
            class: &self.class,
            score: (f64::from(self.score) * 1000.0).round() / 1000.0,
            box_px: self.box_px.to_array(),
        }
        .serialize(s)
    }
}

/// A detector: one model session, used by one thread at a time (`&mut self`).
pub trait Detector: Send {
    /// A short description for logs (`nanodet models/nanodet_m_416_dyn.onnx @320`).
    fn name(&self) -> &str;
    /// The square side, pixels, that crops should be made at (the model's input size).
    fn input_px(&self) -> u32;
    /// Largest number of images one call runs as a single batch (1 for fixed-batch models).
    fn max_batch(&self) -> usize;
    /// Detections for each image, boxes in that image's pixels. Images of another size than
    /// [`Detector::input_px`] are scaled (aspect kept, padded) first.
    fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>>;
}

/// The detector that is turned off: finds nothing, costs nothing.
#[derive(Clone, Debug, Default)]
pub struct NoDetector;

impl Detector for NoDetector {
    fn name(&self) -> &str {
        "none"
    }
    fn input_px(&self) -> u32 {
        32
    }
    fn max_batch(&self) -> usize {
        usize::MAX
    }
    fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>> {
        Ok(vec![Vec::new(); images.len()])
    }
}

/// Which model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The shipped NanoDet-m COCO-80 detector.
    #[default]
    Nanodet,
    /// A user's YOLOv8-format detector (raw `[1, 4 + classes, N]` output, no NMS inside).
    Yolov8,
    /// An EfficientNet-Lite0 ImageNet classifier (top-5 classes per crop; not shipped).
    Efficientnet,
    /// No model.
    None,
}

/// Detector configuration (the `[detect]` table of the service configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Run the detector at all. Default: true. When false (or `kind = "none"`) nothing is loaded
    /// and candidates are judged on physics alone.
    pub enabled: bool,
    /// Model kind. Default: `nanodet`.
    pub kind: ModelKind,
    /// Model file. Default for `nanodet`: the shipped `models/nanodet_m_416_dyn.onnx`, looked up
    /// relative to the working directory, the executable's directory and its
    /// `../share/fallwatch`, then the source tree. Required for `yolov8` and `efficientnet` (not
    /// shipped: see docs/detect.md).
    pub model_path: Option<PathBuf>,
    /// Class names, one per line (or a JSON list). Default: COCO-80 for detectors, the shipped
    /// `imagenet_classes.json` for `efficientnet`.
    pub classes_path: Option<PathBuf>,
    /// Model input side, pixels, for models whose input size is not fixed. Default: 320 for NanoDet
    /// crops (its input is size-dynamic; 416 is its training size), 640 for YOLOv8; ignored when the
    /// model fixes it.
    pub input_px: Option<u32>,
    /// ONNX Runtime intra-op threads per session. Default: 1 (one core per worker is the most
    /// efficient; use more workers rather than more threads).
    pub threads_per_session: usize,
    /// Worker threads, each with its own session. Default: 1.
    pub workers: usize,
    /// Detections below this score are dropped. Default: 0.3.
    pub min_score: f32,
    /// NMS IoU threshold. Default: 0.5.
    pub nms_iou: f32,
    /// Crop window side as a multiple of the object's size. Default: 3.5.
    pub crop_scale: f32,
    /// Smallest crop window side, frame pixels. Default: 40.
    pub min_crop_px: f32,
    /// Requests queued for the workers; beyond it requests are shed. Default: 64.
    pub queue_depth: usize,
    /// Requests one camera may have queued or running; beyond it its requests are shed, so a
    /// camera in heavy rain cannot crowd the others out. Default: 16.
    pub max_queued_per_camera: usize,
    /// Most requests one worker takes per wake-up and runs as one batch. Default: 8.
    pub max_batch: usize,
    /// Replies waiting per camera; beyond it replies are dropped and counted. Default: 256.
    pub reply_depth: usize,
    /// Labels and the bird veto (`[detect.label]`).
    pub label: LabelConfig,
    /// The person search at the release point (`[detect.persons]`).
    pub persons: PersonSearch,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            enabled: true,
            kind: ModelKind::Nanodet,
            model_path: None,
            classes_path: None,
            input_px: None,
            threads_per_session: 1,
            workers: 1,
            min_score: 0.3,
            nms_iou: 0.5,
            crop_scale: 3.5,
            min_crop_px: 40.0,
            queue_depth: 64,
            max_queued_per_camera: 16,
            max_batch: 8,
            reply_depth: 256,
            label: LabelConfig::default(),
            persons: PersonSearch::default(),
        }
    }
}

impl DetectConfig {
    /// True when a model is to be loaded.
    pub fn is_active(&self) -> bool {
        self.enabled && self.kind != ModelKind::None
    }

    /// Checks values a person may get wrong.
    pub fn validate(&self) -> Result<()> {
        if self.workers == 0 || self.threads_per_session == 0 {
            crate::bail!(
                InvalidInput,
                "detect: workers and threads_per_session must be >= 1"
            );
        }
        if self.queue_depth == 0 || self.max_batch == 0 || self.reply_depth == 0 {
            crate::bail!(
                InvalidInput,
                "detect: queue_depth, max_batch and reply_depth must be >= 1"
            );
        }
        if !(0.0..=1.0).contains(&self.min_score) || !(0.0..=1.0).contains(&self.nms_iou) {
            crate::bail!(
                InvalidInput,
                "detect: min_score and nms_iou must be in [0, 1]"
            );
        }
        if self.crop_scale < 1.0 || self.min_crop_px < 1.0 {
            crate::bail!(
                InvalidInput,
                "detect: crop_scale and min_crop_px must be >= 1"
            );
        }
        if self.kind == ModelKind::Yolov8 && self.model_path.is_none() {
            crate::bail!(
                InvalidInput,
                "detect: kind = \"yolov8\" needs model_path (no YOLOv8 model is shipped)"
            );
        }
        if let Some(px) = self.input_px
            && (px < 32 || px % 32 != 0)
        {
            crate::bail!(
                InvalidInput,
                "detect: input_px {px} must be a multiple of 32, at least 32"
            );
        }
        self.persons.validate()?;
        Ok(())
    }

    /// The shipped model file of `kind`, if there is one.
    pub fn shipped_model(kind: ModelKind) -> Option<&'static str> {
        match kind {
            ModelKind::Nanodet => Some("nanodet_m_416_dyn.onnx"),
            ModelKind::Yolov8 | ModelKind::Efficientnet | ModelKind::None => None,
        }
    }

    /// Loads `workers` detectors (one session each); `NoDetector`s when the detector is off.
    pub fn build_detectors(&self) -> Result<Vec<Box<dyn Detector>>> {
        self.validate()?;
        (0..self.workers)
            .map(|_| -> Result<Box<dyn Detector>> {
                if self.is_active() {
                    Ok(Box::new(OnnxDetector::load(self)?))
                } else {
                    Ok(Box::new(NoDetector))
                }
            })
            .collect()
    }
}

/// Finds a shipped file (`models/<name>`): working directory, next to the executable, the
/// executable's `../share/fallwatch/`, then the source tree. Returns the last candidate when none
/// exists (so the error names a real place).
pub fn find_model_file(name: &str) -> PathBuf {
    let mut candidates = vec![Path::new("models").join(name)];
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("models").join(name));
        candidates.push(dir.join("../share/fallwatch/models").join(name));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name),
    );
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| candidates.pop().expect("non-empty"))
}

/// The 80 COCO class names in the order COCO detectors (NanoDet, YOLOv8) use.
pub const COCO_CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: DetectConfig = toml::from_str("").unwrap();
        assert_eq!(c, DetectConfig::default());
        c.validate().unwrap();
        let c: DetectConfig =
            toml::from_str("enabled = false\nworkers = 2\n[label]\nveto_bird_score = 0.7").unwrap();
        assert!(!c.is_active());
        assert_eq!(c.label.veto_bird_score, 0.7);
        let e = toml::from_str::<DetectConfig>("treshold = 0.3").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let y: DetectConfig = toml::from_str("kind = \"yolov8\"").unwrap();
        assert_eq!(
            y.validate().unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn a_disabled_detector_loads_nothing_and_finds_nothing() {
        let c = DetectConfig {
            enabled: false,
            workers: 2,
            ..Default::default()
        };
        let mut ds = c.build_detectors().unwrap();
        assert_eq!(ds.len(), 2);
        let img = RgbImage::new(8, 8);
        assert_eq!(ds[0].detect(&[&img, &img]).unwrap(), vec![vec![], vec![]]);
        assert_eq!(ds[0].name(), "none");
    }
}
