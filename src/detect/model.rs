//! [`OnnxDetector`]: one ONNX Runtime session of a NanoDet, YOLOv8 or EfficientNet model, with its
//! pre-processing (RGB -> normalised NCHW float, letterboxed when an image is not the input size)
//! and its output decoding ([`crate::detect::decode`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::detect::crop::PAD_GREY;
use crate::detect::decode::{
    NanoDetDecoder, OutputTensor, RawDetection, Yolov8Decoder, classify_top_k,
};
use crate::detect::runtime::{environment, one_line};
use crate::detect::{
    COCO_CLASSES, DetectConfig, Detection, Detector, ModelKind, Vocab, find_model_file,
};
use crate::error::Result;
use crate::{bail, err};

/// How a model wants its input: `(pixel / 255 - mean) / std` per RGB channel.
#[derive(Clone, Copy, Debug)]
struct Normalize {
    mean: [f32; 3],
    std: [f32; 3],
}

enum Decoder {
    NanoDet(NanoDetDecoder),
    Yolov8(Yolov8Decoder),
    Classifier { top_k: usize, min_prob: f32 },
}

/// A detector backed by an ONNX model.
pub struct OnnxDetector {
    session: Session,
    name: String,
    input_px: u32,
    /// `None` when the batch dimension is dynamic, else the fixed batch size.
    fixed_batch: Option<usize>,
    max_batch: usize,
    classes: Vec<Arc<str>>,
    vocab: Vec<Vocab>,
    norm: Normalize,
    decoder: Decoder,
    buf: Vec<f32>,
}

impl std::fmt::Debug for OnnxDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxDetector")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn load_classes(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        err!(
            InvalidInput,
            "class names file {}: cannot read",
            path.display()
        )
        .with_source(e)
    })?;
    let names: Vec<String> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).map_err(|e| {
            err!(
                InvalidInput,
                "class names file {}: not a JSON list of strings",
                path.display()
            )
            .with_source(e)
        })?
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    };
    if names.is_empty() {
        bail!(
            InvalidInput,
            "class names file {}: no names",
            path.display()
        );
    }
    Ok(names)
}

fn dims(shape: Option<&ort::value::Shape>) -> Vec<i64> {
    shape.map(|s| s.to_vec()).unwrap_or_default()
}

impl OnnxDetector {
    /// Loads the model `cfg` names (ONNX Runtime is loaded on first use; its absence is a
    /// `Resource` error). One session with `cfg.threads_per_session` intra-op threads.
    pub fn load(cfg: &DetectConfig) -> Result<Self> {
        let path: PathBuf = match (&cfg.model_path, DetectConfig::shipped_model(cfg.kind)) {
            (Some(p), _) => p.clone(),
            (None, Some(name)) => find_model_file(name),
            (None, None) => bail!(InvalidInput, "detect: kind {:?} needs model_path", cfg.kind),
        };
        if !path.is_file() {
            bail!(
                InvalidInput,
                "model file {} not found (the shipped models are in the repository's models/)",
                path.display()
            );
        }
        let env = environment()?;
        let ctx = |e: ort::Error<ort::session::builder::SessionBuilder>| {
            err!(
                Resource,
                "model {}: {}",
                path.display(),
                one_line(&e.to_string())
            )
        };
        let session = Session::builder(env)
            .map_err(|e| {
                err!(
                    Resource,
                    "ONNX Runtime session: {}",
                    one_line(&e.to_string())
                )
            })?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ctx)?
            .with_intra_threads(cfg.threads_per_session.max(1))
            .map_err(ctx)?
            .with_inter_threads(1)
            .map_err(ctx)?
            // Idle intra-op threads must not spin: the cores are shared with the decoders.
            .with_intra_op_spinning(false)
            .map_err(ctx)?
            .commit_from_file(&path)
            .map_err(|e| {
                err!(
                    InvalidInput,
                    "model {}: cannot load: {}",
                    path.display(),
                    one_line(&e.to_string())
                )
            })?;
        if session.inputs().len() != 1 {
            bail!(
                InvalidInput,
                "model {}: expected one input, found {}",
                path.display(),
                session.inputs().len()
            );
        }
        let input = &session.inputs()[0];
        let in_dims = dims(input.dtype().tensor_shape());
        if in_dims.len() != 4 || in_dims[1] != 3 {
            bail!(
                InvalidInput,
                "model {}: input {:?} is not [N, 3, H, W]",
                path.display(),
                in_dims
            );
        }
        let fixed_batch = (in_dims[0] > 0).then_some(in_dims[0] as usize);
        let default_px = match cfg.kind {
            ModelKind::Yolov8 => 640,
            ModelKind::Efficientnet => 224,
            _ => 320,
        };
        let input_px = match (in_dims[2], in_dims[3]) {
            (h, w) if h > 0 && w > 0 => {
                if h != w {
                    bail!(
                        InvalidInput,
                        "model {}: input {h}x{w} is not square",
                        path.display()
                    );
                }
                if let Some(px) = cfg.input_px
                    && px as i64 != h
                {
                    tracing::warn!(
                        "model {} has a fixed {h}px input; input_px {px} ignored",
                        path.display()
                    );
                }
                h as u32
            }
            _ => cfg.input_px.unwrap_or(default_px),
        };

        let class_names: Vec<String> = match (&cfg.classes_path, cfg.kind) {
            (Some(p), _) => load_classes(p)?,
            (None, ModelKind::Efficientnet) => {
                load_classes(&find_model_file("imagenet_classes.json"))?
            }
            (None, _) => COCO_CLASSES.iter().map(|s| s.to_string()).collect(),
        };
        let vocab: Vec<Vocab> = class_names
            .iter()
            .enumerate()
            .map(|(i, n)| match cfg.kind {
                ModelKind::Efficientnet if class_names.len() == 1000 => {
                    Vocab::from_imagenet_index(i as u32)
                }
                _ => Vocab::from_coco_name(n),
            })
            .collect();
        let decoder = match cfg.kind {
            ModelKind::Nanodet => {
                let mut d = NanoDetDecoder::new(cfg.min_score, cfg.nms_iou);
                d.num_classes = class_names.len();
                Decoder::NanoDet(d)
            }
            ModelKind::Yolov8 => {
                let out = session.outputs();
                if out.len() != 1 {
                    bail!(
                        InvalidInput,
                        "YOLOv8 model {}: expected one output, found {}",
                        path.display(),
                        out.len()
                    );
                }
                let od = dims(out[0].dtype().tensor_shape());
                let rows = 4 + class_names.len() as i64;
                if od.len() != 3 || (od[1] > 0 && od[1] != rows && od[2] > 0 && od[2] != rows) {
                    bail!(
                        InvalidInput,
                        "YOLOv8 model {}: output {:?} does not fit {} classes (expected [1, {rows}, N]; check classes_path)",
                        path.display(),
                        od,
                        class_names.len()
                    );
                }
                Decoder::Yolov8(Yolov8Decoder {
                    num_classes: class_names.len(),
                    score_threshold: cfg.min_score,
                    nms_iou: cfg.nms_iou,
                    max_detections: 100,
                })
            }
            ModelKind::Efficientnet => Decoder::Classifier {
                top_k: 5,
                min_prob: cfg.min_score.min(0.05),
            },
            ModelKind::None => bail!(Internal, "OnnxDetector::load with kind none"),
        };
        let norm = match cfg.kind {
            ModelKind::Efficientnet => Normalize {
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
            },
            _ => Normalize {
                mean: [0.0; 3],
                std: [1.0; 3],
            },
        };
        let max_batch = fixed_batch.unwrap_or(cfg.max_batch.max(1));
        let name = format!(
            "{} {} @{}px",
            format!("{:?}", cfg.kind).to_lowercase(),
            path.display(),
            input_px
        );
        tracing::debug!(model = %name, batch = ?fixed_batch, "detector loaded");
        Ok(OnnxDetector {
            session,
            name,
            input_px,
            fixed_batch,
            max_batch,
            classes: class_names.into_iter().map(Arc::from).collect(),
            vocab,
            norm,
            decoder,
            buf: Vec::new(),
        })
    }

    /// Class names, index order.
    pub fn classes(&self) -> &[Arc<str>] {
        &self.classes
    }

    /// Writes `img` into slot `slot` of the input buffer; returns the scale from image pixels to
    /// input pixels.
    fn fill(&mut self, slot: usize, img: &RgbImage) -> f32 {
        let s = self.input_px as usize;
        let plane = s * s;
        let resized;
        let (src, scale) = if img.width() as usize == s && img.height() as usize == s {
            (img, 1.0)
        } else {
            let scale =
                (s as f32 / img.width().max(1) as f32).min(s as f32 / img.height().max(1) as f32);
            let nw = ((img.width() as f32 * scale).round() as u32).clamp(1, s as u32);
            let nh = ((img.height() as f32 * scale).round() as u32).clamp(1, s as u32);
            let small = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
            let mut padded = RgbImage::from_pixel(s as u32, s as u32, image::Rgb([PAD_GREY; 3]));
            image::imageops::replace(&mut padded, &small, 0, 0);
            resized = padded;
            (&resized, scale)
        };
        let dst = &mut self.buf[slot * 3 * plane..(slot + 1) * 3 * plane];
        let (r, rest) = dst.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        let k: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.norm.std[c]));
        let o: [f32; 3] = std::array::from_fn(|c| self.norm.mean[c] / self.norm.std[c]);
        for (i, px) in src.as_raw().chunks_exact(3).enumerate() {
            r[i] = f32::from(px[0]) * k[0] - o[0];
            g[i] = f32::from(px[1]) * k[1] - o[1];
            b[i] = f32::from(px[2]) * k[2] - o[2];
        }
        scale
    }

    fn run_batch(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>> {
        let s = self.input_px as usize;
        let n = self.fixed_batch.unwrap_or(images.len());
        self.buf.clear();
        self.buf.resize(n * 3 * s * s, 0.0);
        let scales: Vec<f32> = images
            .iter()
            .enumerate()
            .map(|(i, img)| self.fill(i, img))
            .collect();
        let input = TensorRef::from_array_view(([n, 3, s, s], &self.buf[..]))
            .map_err(|e| err!(Internal, "input tensor: {}", one_line(&e.to_string())))?;
        let outputs = self.session.run(ort::inputs![input]).map_err(|e| {
            err!(
                Internal,
                "{}: inference failed: {}",
                self.name,
                one_line(&e.to_string())
            )
        })?;
        let mut shapes: Vec<Vec<usize>> = Vec::new();
        let mut datas: Vec<&[f32]> = Vec::new();
        for k in 0..outputs.len() {
            let (shape, data) = outputs[k].try_extract_tensor::<f32>().map_err(|e| {
                err!(
                    Internal,
                    "{}: output: {}",
                    self.name,
                    one_line(&e.to_string())
                )
            })?;
            shapes.push(shape.iter().map(|&d| d.max(0) as usize).collect());
            datas.push(data);
        }
        let tensors: Vec<OutputTensor<'_>> = shapes
            .iter()
            .zip(&datas)
            .map(|(shape, data)| OutputTensor { shape, data })
            .collect();
        let mut all = Vec::with_capacity(images.len());
        for (b, (img, scale)) in images.iter().zip(&scales).enumerate() {
            let raw: Vec<RawDetection> = match &self.decoder {
                Decoder::NanoDet(d) => d.decode(&tensors, b, s, s)?,
                Decoder::Yolov8(d) => d.decode(&tensors[0], b)?,
                Decoder::Classifier { top_k, min_prob } => {
                    let t = &tensors[0];
                    let k = t.shape.last().copied().unwrap_or(0);
                    classify_top_k(&t.data[b * k..(b + 1) * k], *top_k, *min_prob, s, s)
                }
            };
            let (w, h) = (img.width() as f32, img.height() as f32);
            let dets = raw
                .into_iter()
                .filter_map(|r| {
                    let i = r.class_id as usize;
                    let class = self.classes.get(i)?.clone();
                    let b = r.box_px;
                    let x1 = (b.x / scale).clamp(0.0, w);
                    let y1 = (b.y / scale).clamp(0.0, h);
                    let x2 = ((b.x + b.w) / scale).clamp(0.0, w);
                    let y2 = ((b.y + b.h) / scale).clamp(0.0, h);
                    Some(Detection {
                        class_id: r.class_id,
                        class,
                        vocab: self.vocab[i],
                        score: r.score,
                        box_px: crate::detect::BoxPx::from_corners(x1, y1, x2, y2),
                    })
                })
                .collect();
            all.push(dets);
        }
        Ok(all)
    }
}

impl Detector for OnnxDetector {
    fn name(&self) -> &str {
        &self.name
    }
    fn input_px(&self) -> u32 {
        self.input_px
    }
    fn max_batch(&self) -> usize {
        self.max_batch
    }
    fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch.max(1)) {
            out.extend(self.run_batch(chunk)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! These load the shipped NanoDet model and need ONNX Runtime (`scripts/setup.sh`).
    use super::*;
    use crate::detect::crop::{CropWindow, crop_frame};
    use crate::ingest::Frame;

    fn astronaut() -> RgbImage {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/astronaut.png");
        image::open(path)
            .expect("tests/data/astronaut.png")
            .to_rgb8()
    }

    fn nanodet(input_px: u32) -> OnnxDetector {
        OnnxDetector::load(&DetectConfig {
            input_px: Some(input_px),
            ..Default::default()
        })
        .expect("shipped NanoDet and ONNX Runtime (run scripts/setup.sh)")
    }

    fn best_person(dets: &[Detection]) -> Option<&Detection> {
        dets.iter()
            .filter(|d| d.vocab == Vocab::Person)
            .max_by(|a, b| a.score.total_cmp(&b.score))
    }

    #[test]
    fn nanodet_finds_the_astronaut() {
        let mut det = nanodet(416);
        assert_eq!(det.input_px(), 416);
        assert!(det.max_batch() > 1, "the shipped model is batch-dynamic");
        let img = astronaut();
        let dets = det.detect(&[&img]).unwrap().pop().unwrap();
        let p = best_person(&dets).expect("a person");
        assert!(p.score >= 0.5, "{p:?}");
        // She fills the left two thirds of the 512x512 photo, head near the top.
        let b = p.box_px;
        assert!(
            b.x < 60.0 && b.y < 60.0 && b.w > 250.0 && b.h > 400.0,
            "{b:?}"
        );
    }

    #[test]
    fn a_batch_gives_the_same_boxes_as_single_runs() {
        let mut det = nanodet(320);
        let img = astronaut();
        let flipped = image::imageops::flip_horizontal(&img);
        let small = image::imageops::resize(&img, 200, 200, image::imageops::FilterType::Triangle);
        let batch = det.detect(&[&img, &flipped, &small]).unwrap();
        for (i, im) in [&img, &flipped, &small].into_iter().enumerate() {
            let single = det.detect(&[im]).unwrap().pop().unwrap();
            assert_eq!(single.len(), batch[i].len());
            for (a, b) in single.iter().zip(&batch[i]) {
                assert_eq!(a.class_id, b.class_id);
                assert!((a.score - b.score).abs() < 1e-4);
                assert!(a.box_px.iou(&b.box_px) > 0.99);
            }
        }
    }

    /// A 1280x720 yuv420p frame: mid grey with `obj` pasted at (x, y), converted with BT.709.
    fn frame_with(obj: &RgbImage, x: u32, y: u32) -> Frame {
        let (w, h) = (1280u32, 720u32);
        let mut av = ffmpeg_next::frame::Video::new(ffmpeg_next::format::Pixel::YUV420P, w, h);
        av.set_color_space(ffmpeg_next::color::Space::BT709);
        let rgb_at = |px: u32, py: u32| {
            if px >= x && py >= y && px < x + obj.width() && py < y + obj.height() {
                obj.get_pixel(px - x, py - y).0
            } else {
                [120, 125, 130]
            }
        };
        let yuv = |p: [u8; 3]| {
            let [r, g, b] = p.map(f32::from);
            let yy = 0.2126 * r + 0.7152 * g + 0.0722 * b;
            let u = (b - yy) / 1.8556;
            let v = (r - yy) / 1.5748;
            (
                16.0 + yy * 219.0 / 255.0,
                128.0 + u * 224.0 / 255.0,
                128.0 + v * 224.0 / 255.0,
            )
        };
        let (ys, us, vs) = (av.stride(0), av.stride(1), av.stride(2));
        for py in 0..h {
            for px in 0..w {
                av.data_mut(0)[py as usize * ys + px as usize] =
                    yuv(rgb_at(px, py)).0.round() as u8;
            }
        }
        for cy in 0..h / 2 {
            for cx in 0..w / 2 {
                let (_, u, v) = yuv(rgb_at(cx * 2, cy * 2));
                av.data_mut(1)[cy as usize * us + cx as usize] = u.round() as u8;
                av.data_mut(2)[cy as usize * vs + cx as usize] = v.round() as u8;
            }
        }
        Frame::from_av(0, 0.0, av)
    }

    #[test]
    fn a_small_person_is_found_in_an_upscaled_crop_of_a_yuv_frame() {
        let small =
            image::imageops::resize(&astronaut(), 64, 64, image::imageops::FilterType::Triangle);
        let frame = frame_with(&small, 700, 300);
        let mut det = nanodet(320);
        let win = CropWindow::around(732.0, 332.0, 64.0, 3.5, 40.0, 1280, 720);
        let crop = crop_frame(&frame, &win, 320);
        let dets = det.detect(&[&crop]).unwrap().pop().unwrap();
        let p = best_person(&dets).expect("a person in the crop");
        assert!(p.score >= 0.4, "{p:?}");
        let b = win.to_frame(p.box_px, 320);
        let (cx, cy) = b.centre();
        assert!(
            (cx - 732.0).abs() < 24.0 && (cy - 332.0).abs() < 24.0,
            "{b:?}"
        );
    }
}
