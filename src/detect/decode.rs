//! Decoding model outputs into boxes: NanoDet (three levels of class scores and distance
//! distributions), YOLOv8 (one raw `[1, 4 + classes, N]` tensor), an ImageNet classifier (logits),
//! and the class-wise non-maximum suppression the detectors need.
//!
//! Everything here works on plain `f32` slices with their shapes, so it is tested on synthetic
//! tensors without ONNX Runtime.

use crate::bail;
use crate::detect::crop::BoxPx;
use crate::error::Result;

/// A box with a class index, before class names are attached. Coordinates in model-input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawDetection {
    /// Index into the model's class list.
    pub class_id: u32,
    /// Confidence in [0, 1].
    pub score: f32,
    /// The box, model-input pixels.
    pub box_px: BoxPx,
}

/// One output tensor of a model run: shape and row-major data.
#[derive(Clone, Copy, Debug)]
pub struct OutputTensor<'a> {
    /// Dimensions, outermost first.
    pub shape: &'a [usize],
    /// Row-major values.
    pub data: &'a [f32],
}

impl OutputTensor<'_> {
    fn check(&self) -> Result<()> {
        let n: usize = self.shape.iter().product();
        if n != self.data.len() {
            bail!(
                Internal,
                "output tensor of shape {:?} has {} values",
                self.shape,
                self.data.len()
            );
        }
        Ok(())
    }
}

/// Class-wise non-maximum suppression: keeps the best box of each overlapping group
/// (IoU > `iou_threshold`) of the same class; at most `max_keep` boxes, best first.
pub fn nms_classwise(
    mut dets: Vec<RawDetection>,
    iou_threshold: f32,
    max_keep: usize,
) -> Vec<RawDetection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<RawDetection> = Vec::new();
    for d in dets {
        if keep.len() >= max_keep {
            break;
        }
        let overlapped = keep
            .iter()
            .any(|k| k.class_id == d.class_id && k.box_px.iou(&d.box_px) > iou_threshold);
        if !overlapped {
            keep.push(d);
        }
    }
    keep
}

/// NanoDet-m: for each level, class scores `[B, N, classes]` (sigmoid applied) and box
/// distributions `[B, N, 4 * (reg_max + 1)]` (left, top, right, bottom; softmax over the bins,
/// expectation times the stride = distance from the cell centre). Levels are paired by `N`, never
/// by output name; the stride of a level is the one whose grid over the input has `N` cells.
#[derive(Clone, Debug)]
pub struct NanoDetDecoder {
    /// Number of classes (80 for COCO).
    pub num_classes: usize,
    /// Largest distance bin (10: 11 bins per side).
    pub reg_max: usize,
    /// Boxes below this class score are dropped before NMS.
    pub score_threshold: f32,
    /// IoU above which NMS suppresses a box of the same class.
    pub nms_iou: f32,
    /// Boxes kept after NMS.
    pub max_detections: usize,
}

impl NanoDetDecoder {
    /// The shipped model's layout (80 classes, 11 bins) with the given thresholds.
    pub fn new(score_threshold: f32, nms_iou: f32) -> Self {
        NanoDetDecoder {
            num_classes: 80,
            reg_max: 10,
            score_threshold,
            nms_iou,
            max_detections: 100,
        }
    }

    /// Boxes of image `b` of the batch, model-input pixels (`input_w` x `input_h`).
    pub fn decode(
        &self,
        outputs: &[OutputTensor<'_>],
        b: usize,
        input_w: usize,
        input_h: usize,
    ) -> Result<Vec<RawDetection>> {
        let bins = self.reg_max + 1;
        let mut scores = Vec::new();
        let mut dists = Vec::new();
        for o in outputs {
            o.check()?;
            if o.shape.len() != 3 || b >= o.shape[0] {
                bail!(
                    Internal,
                    "NanoDet output of shape {:?} (batch index {b})",
                    o.shape
                );
            }
            match o.shape[2] {
                k if k == self.num_classes => scores.push(*o),
                k if k == 4 * bins => dists.push(*o),
                _ => bail!(Internal, "NanoDet output of unexpected shape {:?}", o.shape),
            }
        }
        if scores.is_empty() || scores.len() != dists.len() {
            bail!(
                Internal,
                "NanoDet outputs: {} score and {} box tensors",
                scores.len(),
                dists.len()
            );
        }
        let mut found = Vec::new();
        let mut probs = vec![0f32; bins];
        for s in &scores {
            let n = s.shape[1];
            let Some(d) = dists.iter().find(|d| d.shape[1] == n) else {
                bail!(Internal, "NanoDet: no box tensor with N = {n}");
            };
            let Some((stride, gw)) = [8usize, 16, 32, 64, 128].iter().find_map(|&st| {
                let (gw, gh) = (input_w.div_ceil(st), input_h.div_ceil(st));
                (gw * gh == n).then_some((st, gw))
            }) else {
                bail!(
                    Internal,
                    "NanoDet: N = {n} matches no stride for a {input_w}x{input_h} input"
                );
            };
            let sc = &s.data[b * n * self.num_classes..(b + 1) * n * self.num_classes];
            let ds = &d.data[b * n * 4 * bins..(b + 1) * n * 4 * bins];
            for i in 0..n {
                let row = &sc[i * self.num_classes..(i + 1) * self.num_classes];
                let (class_id, &score) = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .expect("classes > 0");
                if score < self.score_threshold {
                    continue;
                }
                let mut side = [0f32; 4];
                for (k, sd) in side.iter_mut().enumerate() {
                    let logits = &ds[(i * 4 + k) * bins..(i * 4 + k + 1) * bins];
                    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for (p, &l) in probs.iter_mut().zip(logits) {
                        *p = (l - m).exp();
                        sum += *p;
                    }
                    let e: f32 = probs.iter().enumerate().map(|(j, p)| j as f32 * p).sum();
                    *sd = e / sum * stride as f32;
                }
                let cx = ((i % gw) as f32 + 0.5) * stride as f32;
                let cy = ((i / gw) as f32 + 0.5) * stride as f32;
                let clamp_x = |v: f32| v.clamp(0.0, input_w as f32);
                let clamp_y = |v: f32| v.clamp(0.0, input_h as f32);
                found.push(RawDetection {
                    class_id: class_id as u32,
                    score,
                    box_px: BoxPx::from_corners(
                        clamp_x(cx - side[0]),
                        clamp_y(cy - side[1]),
                        clamp_x(cx + side[2]),
                        clamp_y(cy + side[3]),
                    ),
                });
            }
        }
        Ok(nms_classwise(found, self.nms_iou, self.max_detections))
    }
}

/// A YOLOv8-format detector's raw output: `[B, 4 + classes, N]` (or `[B, N, 4 + classes]`), rows
/// cx, cy, w, h in input pixels, then one score per class; no NMS inside the model.
#[derive(Clone, Debug)]
pub struct Yolov8Decoder {
    /// Number of classes.
    pub num_classes: usize,
    /// Boxes below this class score are dropped before NMS.
    pub score_threshold: f32,
    /// IoU above which NMS suppresses a box of the same class.
    pub nms_iou: f32,
    /// Boxes kept after NMS.
    pub max_detections: usize,
}

impl Yolov8Decoder {
    /// Boxes of image `b` of the batch, model-input pixels.
    pub fn decode(&self, out: &OutputTensor<'_>, b: usize) -> Result<Vec<RawDetection>> {
        out.check()?;
        let rows = 4 + self.num_classes;
        if out.shape.len() != 3 || b >= out.shape[0] {
            bail!(
                Internal,
                "YOLOv8 output of shape {:?} (batch index {b})",
                out.shape
            );
        }
        // Channel-major [B, 4+C, N] is the standard export; [B, N, 4+C] is accepted too.
        let (n, channel_major) = if out.shape[1] == rows {
            (out.shape[2], true)
        } else if out.shape[2] == rows {
            (out.shape[1], false)
        } else {
            bail!(
                InvalidInput,
                "YOLOv8 model output has shape {:?}, expected [1, {rows}, N] for {} classes (check the class names file)",
                out.shape,
                self.num_classes
            );
        };
        let data = &out.data[b * rows * n..(b + 1) * rows * n];
        let at = |r: usize, i: usize| {
            if channel_major {
                data[r * n + i]
            } else {
                data[i * rows + r]
            }
        };
        let mut found = Vec::new();
        for i in 0..n {
            let (mut best, mut best_c) = (f32::NEG_INFINITY, 0);
            for c in 0..self.num_classes {
                let s = at(4 + c, i);
                if s > best {
                    best = s;
                    best_c = c;
                }
            }
            if best < self.score_threshold {
                continue;
            }
            let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
            found.push(RawDetection {
                class_id: best_c as u32,
                score: best,
                box_px: BoxPx {
                    x: cx - w / 2.0,
                    y: cy - h / 2.0,
                    w,
                    h,
                },
            });
        }
        Ok(nms_classwise(found, self.nms_iou, self.max_detections))
    }
}

/// The `k` most probable classes (softmax of `logits`) with probability >= `min_prob`, each as a
/// box covering the whole `input_w` x `input_h` input.
pub fn classify_top_k(
    logits: &[f32],
    k: usize,
    min_prob: f32,
    input_w: usize,
    input_h: usize,
) -> Vec<RawDetection> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - m).exp()).collect();
    let sum: f32 = exps.iter().sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| exps[b].total_cmp(&exps[a]));
    idx.into_iter()
        .take(k)
        .map(|i| RawDetection {
            class_id: i as u32,
            score: exps[i] / sum,
            box_px: BoxPx {
                x: 0.0,
                y: 0.0,
                w: input_w as f32,
                h: input_h as f32,
            },
        })
        .filter(|d| d.score >= min_prob)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits that put all the mass of a side's distribution on `bin`.
    fn one_hot(bins: usize, bin: usize) -> Vec<f32> {
        (0..bins)
            .map(|j| if j == bin { 30.0 } else { 0.0 })
            .collect()
    }

    #[test]
    fn nanodet_decodes_levels_paired_by_n_in_any_order() {
        // A 64x64 input: strides 8/16/32 -> N = 64, 16, 4.
        let dec = NanoDetDecoder {
            num_classes: 3,
            ..NanoDetDecoder::new(0.3, 0.5)
        };
        let bins = 11;
        let levels = [(8usize, 64usize), (16, 16), (32, 4)];
        let mut tensors: Vec<(Vec<usize>, Vec<f32>)> = Vec::new();
        for &(stride, n) in &levels {
            let mut s = vec![0.01f32; n * 3];
            let mut d = vec![0f32; n * 4 * bins];
            for i in 0..n {
                for k in 0..4 {
                    d[(i * 4 + k) * bins..(i * 4 + k + 1) * bins]
                        .copy_from_slice(&one_hot(bins, 1));
                }
            }
            if stride == 16 {
                // Cell 5 = column 1, row 1 of a 4x4 grid: centre (24, 24). Class 2, distances
                // left 2 bins, top 1, right 3, bottom 0.5 (split between bins 0 and 1).
                s[5 * 3 + 2] = 0.9;
                let sides = [one_hot(bins, 2), one_hot(bins, 1), one_hot(bins, 3)];
                for (k, l) in sides.iter().enumerate() {
                    d[(5 * 4 + k) * bins..(5 * 4 + k + 1) * bins].copy_from_slice(l);
                }
                let mut half = vec![0f32; bins];
                half[0] = 30.0;
                half[1] = 30.0;
                d[(5 * 4 + 3) * bins..(5 * 4 + 4) * bins].copy_from_slice(&half);
            }
            tensors.push((vec![1, n, 4 * bins], d));
            tensors.insert(0, (vec![1, n, 3], s));
        }
        let outs: Vec<OutputTensor> = tensors
            .iter()
            .map(|(shape, data)| OutputTensor { shape, data })
            .collect();
        let dets = dec.decode(&outs, 0, 64, 64).unwrap();
        assert_eq!(dets.len(), 1, "{dets:?}");
        let d = dets[0];
        assert_eq!(d.class_id, 2);
        assert!((d.score - 0.9).abs() < 1e-6);
        let b = d.box_px;
        let want = BoxPx::from_corners(24.0 - 32.0, 24.0 - 16.0, 24.0 + 48.0, 24.0 + 8.0);
        let want = BoxPx::from_corners(
            want.x.max(0.0),
            want.y,
            (want.x + want.w).min(64.0),
            want.y + want.h,
        );
        for (g, w) in [(b.x, want.x), (b.y, want.y), (b.w, want.w), (b.h, want.h)] {
            assert!((g - w).abs() < 1e-3, "{b:?} vs {want:?}");
        }
    }

    #[test]
    fn nanodet_rejects_outputs_that_do_not_pair() {
        let dec = NanoDetDecoder::new(0.3, 0.5);
        let s = vec![0f32; 4 * 80];
        let d = vec![0f32; 16 * 44];
        let outs = [
            OutputTensor {
                shape: &[1, 4, 80],
                data: &s,
            },
            OutputTensor {
                shape: &[1, 16, 44],
                data: &d,
            },
        ];
        let e = dec.decode(&outs, 0, 64, 64).unwrap_err();
        assert!(e.to_string().contains("no box tensor with N = 4"), "{e}");
    }

    #[test]
    fn yolov8_decodes_channel_major_and_transposed() {
        // 2 classes, 3 anchors: anchor 1 is class 1 at 0.8, centre (50, 40), 20x10.
        let (rows, n) = (6usize, 3usize);
        let mut cm = vec![0f32; rows * n];
        let set = |v: &mut Vec<f32>, r: usize, i: usize, x: f32| v[r * n + i] = x;
        for (r, x) in [
            (0, 50.0),
            (1, 40.0),
            (2, 20.0),
            (3, 10.0),
            (5, 0.8),
            (4, 0.1),
        ] {
            set(&mut cm, r, 1, x);
        }
        set(&mut cm, 4, 0, 0.2); // below threshold
        let dec = Yolov8Decoder {
            num_classes: 2,
            score_threshold: 0.25,
            nms_iou: 0.5,
            max_detections: 10,
        };
        let a = dec
            .decode(
                &OutputTensor {
                    shape: &[1, rows, n],
                    data: &cm,
                },
                0,
            )
            .unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].class_id, 1);
        assert_eq!(
            a[0].box_px,
            BoxPx {
                x: 40.0,
                y: 35.0,
                w: 20.0,
                h: 10.0
            }
        );
        let mut tr = vec![0f32; rows * n];
        for r in 0..rows {
            for i in 0..n {
                tr[i * rows + r] = cm[r * n + i];
            }
        }
        let b = dec
            .decode(
                &OutputTensor {
                    shape: &[1, n, rows],
                    data: &tr,
                },
                0,
            )
            .unwrap();
        assert_eq!(a, b);
        let bad = dec.decode(
            &OutputTensor {
                shape: &[1, 7, 2],
                data: &[0.0; 14],
            },
            0,
        );
        assert_eq!(bad.unwrap_err().kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn nms_is_per_class_and_keeps_the_best() {
        let b = |x: f32| BoxPx {
            x,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let d = |c: u32, s: f32, x: f32| RawDetection {
            class_id: c,
            score: s,
            box_px: b(x),
        };
        let kept = nms_classwise(
            vec![
                d(0, 0.5, 1.0),
                d(0, 0.9, 0.0),
                d(1, 0.6, 0.0),
                d(0, 0.4, 30.0),
            ],
            0.5,
            10,
        );
        assert_eq!(kept, vec![d(0, 0.9, 0.0), d(1, 0.6, 0.0), d(0, 0.4, 30.0)]);
        assert_eq!(nms_classwise(kept.clone(), 0.5, 2).len(), 2);
    }

    #[test]
    fn classifier_top_k_is_a_softmax() {
        let top = classify_top_k(&[0.0, 2.0, 1.0, -5.0], 2, 0.0, 8, 8);
        assert_eq!(
            top.iter().map(|d| d.class_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let z = 1.0 + 2f32.exp() + 1f32.exp() + (-5f32).exp();
        assert!((top[0].score - 2f32.exp() / z).abs() < 1e-6);
        assert_eq!(classify_top_k(&[0.0, 0.0], 2, 0.6, 8, 8).len(), 0);
    }
}
