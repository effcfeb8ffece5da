//! `fallwatch detect <IMAGE>...`: runs the object detector on still images (JPEG, PNG) and prints
//! one JSON line per image: `{"image": path, "detections": [{"class", "score", "box_px": [x, y, w, h]}]}`
//! with boxes in the image's pixels. For checking a model (the shipped one or your own YOLOv8
//! export) and the ONNX Runtime installation.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use fallwatch::detect::crop::{CropWindow, crop_image};
use fallwatch::detect::decode::{RawDetection, nms_classwise};
use fallwatch::detect::{DetectConfig, Detection, Detector, ModelKind, OnnxDetector};

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindArg {
    Nanodet,
    Yolov8,
    Efficientnet,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    /// The whole image, scaled to the model's input (aspect kept).
    Whole,
    /// Overlapping square tiles of --tile-px, each scaled to the model's input (finds small objects).
    Tiles,
}

#[derive(clap::Args, Debug)]
pub struct DetectArgs {
    /// Images (JPEG or PNG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Model kind.
    #[arg(long, value_enum, default_value = "nanodet")]
    pub kind: KindArg,
    /// Model file (default: the shipped model of --kind; required for yolov8).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Class names file, one per line or a JSON list (default: COCO-80; ImageNet for efficientnet).
    #[arg(long)]
    pub classes: Option<PathBuf>,
    /// Model input side in pixels, for models whose input size is not fixed (multiple of 32;
    /// default 416 for NanoDet, 640 for YOLOv8).
    #[arg(long)]
    pub input_px: Option<u32>,
    /// Smallest score reported.
    #[arg(long, default_value_t = 0.3)]
    pub min_score: f32,
    /// Whole image or tiles.
    #[arg(long, value_enum, default_value = "whole")]
    pub mode: ModeArg,
    /// Tile side in image pixels (tiles mode); tiles overlap by a quarter.
    #[arg(long, default_value_t = 320)]
    pub tile_px: u32,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// One output line.
#[derive(serde::Serialize)]
struct ImageResult {
    image: String,
    detections: Vec<Detection>,
}

pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let cfg = DetectConfig {
        kind: match args.kind {
            KindArg::Nanodet => ModelKind::Nanodet,
            KindArg::Yolov8 => ModelKind::Yolov8,
            KindArg::Efficientnet => ModelKind::Efficientnet,
        },
        model_path: args.model.clone(),
        classes_path: args.classes.clone(),
        input_px: args.input_px.or(match args.kind {
            KindArg::Nanodet => Some(416),
            _ => None,
        }),
        threads_per_session: args.threads.max(1),
        min_score: args.min_score,
        ..DetectConfig::default()
    };
    cfg.validate()?;
    anyhow::ensure!(args.tile_px >= 16, "--tile-px must be at least 16");
    let mut detector = OnnxDetector::load(&cfg)?;
    tracing::debug!("{}", detector.name());
    let mut out = std::io::stdout().lock();
    let mut failed = 0usize;
    for path in &args.images {
        let result = image::open(path)
            .with_context(|| format!("{}: cannot read image", path.display()))
            .and_then(|img| {
                let img = img.to_rgb8();
                let dets = match args.mode {
                    ModeArg::Whole => detector.detect(&[&img])?.pop().unwrap_or_default(),
                    ModeArg::Tiles => detect_tiles(&mut detector, &img, args.tile_px, cfg.nms_iou)?,
                };
                Ok(dets)
            });
        match result {
            Ok(detections) => {
                let line = ImageResult {
                    image: path.display().to_string(),
                    detections,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?
            }
            Err(e) => {
                failed += 1;
                eprintln!("fallwatch: error: {e:#}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs the detector on overlapping tiles and merges the boxes (class-wise NMS in image pixels).
fn detect_tiles(
    detector: &mut OnnxDetector,
    img: &image::RgbImage,
    tile_px: u32,
    nms_iou: f32,
) -> anyhow::Result<Vec<Detection>> {
    let (w, h) = img.dimensions();
    let step = (tile_px * 3 / 4).max(1);
    let starts = |size: u32| -> Vec<u32> {
        let mut v: Vec<u32> = (0..size.saturating_sub(tile_px) + 1)
            .step_by(step as usize)
            .collect();
        if let Some(&last) = v.last()
            && last + tile_px < size
        {
            v.push(size - tile_px);
        }
        if v.is_empty() {
            v.push(0);
        }
        v
    };
    let input = detector.input_px();
    let mut windows = Vec::new();
    for y in starts(h) {
        for x in starts(w) {
            windows.push(CropWindow {
                x0_px: x as f32,
                y0_px: y as f32,
                side_px: tile_px as f32,
            });
        }
    }
    let tiles: Vec<image::RgbImage> = windows
        .iter()
        .map(|win| crop_image(img, win, input))
        .collect();
    let refs: Vec<&image::RgbImage> = tiles.iter().collect();
    let found = detector.detect(&refs)?;
    let mut all: Vec<Detection> = Vec::new();
    for (win, dets) in windows.iter().zip(found) {
        for mut d in dets {
            let b = win.to_frame(d.box_px, input);
            let x2 = (b.x + b.w).min(w as f32);
            let y2 = (b.y + b.h).min(h as f32);
            d.box_px = fallwatch::detect::BoxPx::from_corners(b.x, b.y, x2, y2);
            all.push(d);
        }
    }
    let raw: Vec<RawDetection> = all
        .iter()
        .map(|d| RawDetection {
            class_id: d.class_id,
            score: d.score,
            box_px: d.box_px,
        })
        .collect();
    let kept = nms_classwise(raw, nms_iou, 300);
    Ok(kept
        .into_iter()
        .filter_map(|k| {
            all.iter()
                .find(|d| d.class_id == k.class_id && d.box_px == k.box_px && d.score == k.score)
                .cloned()
        })
        .collect())
}
