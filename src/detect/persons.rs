//! Person search at the release point: was somebody at that window or balcony in the seconds
//! before the object fell?
//!
//! The window around the release point is sized from the facade's scale (pixels per metre at the
//! release point): `window_m` metres square (default 5 m: a bay and a storey and a half, enough for
//! a person standing behind a railing), centred `centre_up_m` above the release pixel (the hand is
//! below the head). It is upscaled to the model's input like every crop, so a person of 1.7 m at
//! 20 px/m (34 px tall on the frame) is ~115 px tall in a 320 px crop.
//!
//! Event field (optional, absent when the search did not run; `[]` when it ran and saw nobody):
//! `"persons": [{"t_s": 12.1, "score": 0.81, "box_px": [1010.0, 150.0, 22.0, 41.0]}]`: each a
//! person seen in one searched frame, box in frame pixels `[x, y, w, h]`, best first. The
//! evidence thread runs the search (`crate::evidence`'s person search): it decodes the frames
//! from the camera's pre-roll packets, so nothing is kept or done per frame for it.

use serde::{Deserialize, Serialize};

use crate::detect::crop::{CropWindow, crop_frame};
use crate::detect::pool::{DetectReply, RequestKind};
use crate::detect::{Detector, Vocab};
use crate::error::Result;
use crate::ingest::Frame;

/// One person seen near the release point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PersonSighting {
    /// Media time of the frame, seconds.
    pub t_s: f64,
    /// Detector score.
    pub score: f32,
    /// Box in frame pixels: `[x, y, w, h]`.
    pub box_px: [f64; 4],
}

/// Where and when to look for a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PersonSearch {
    /// Search for persons at all (needs the detector). Default: true.
    pub enabled: bool,
    /// Side of the searched window, metres on the facade. Default: 5.0.
    pub window_m: f64,
    /// The window's centre is this far above the release point, metres. Default: 0.3.
    pub centre_up_m: f64,
    /// Smallest window side, frame pixels. Default: 48.
    pub min_window_px: f64,
    /// Seconds before the release at which frames are searched. Default: [2.0, 1.0, 0.5, 0.2].
    pub before_release_s: Vec<f64>,
    /// Persons below this score are not reported. Default: 0.5.
    pub min_score: f32,
    /// At most this many sightings are reported. Default: 4.
    pub max_sightings: usize,
    /// Longest wall-clock wait for the detector's answers, from the search's start, before the
    /// event is written without them (`persons_error`), milliseconds. Default: 3000.
    pub wait_ms: u64,
}

impl Default for PersonSearch {
    fn default() -> Self {
        PersonSearch {
            enabled: true,
            window_m: 5.0,
            centre_up_m: 0.3,
            min_window_px: 48.0,
            before_release_s: vec![2.0, 1.0, 0.5, 0.2],
            min_score: 0.5,
            max_sightings: 4,
            wait_ms: 3000,
        }
    }
}

impl PersonSearch {
    /// The window around `release_px` for a facade scale of `px_per_m` at that point.
    pub fn window(
        &self,
        release_px: [f64; 2],
        px_per_m: f64,
        frame_w: u32,
        frame_h: u32,
    ) -> CropWindow {
        let side = (self.window_m * px_per_m).max(self.min_window_px);
        let cy = release_px[1] - self.centre_up_m * px_per_m;
        CropWindow::around(
            release_px[0] as f32,
            cy as f32,
            side as f32,
            1.0,
            self.min_window_px as f32,
            frame_w,
            frame_h,
        )
    }

    /// Media times of the frames to search for a release at `release_t_s` (only times >= 0).
    pub fn sample_times(&self, release_t_s: f64) -> Vec<f64> {
        self.before_release_s
            .iter()
            .map(|d| release_t_s - d)
            .filter(|t| *t >= 0.0)
            .collect()
    }

    /// How far before the release the search reaches, seconds (0 when it is off).
    pub fn reach_s(&self) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        self.before_release_s
            .iter()
            .copied()
            .filter(|d| d.is_finite())
            .fold(0.0, f64::max)
    }

    /// Checks values a person may get wrong.
    pub fn validate(&self) -> Result<()> {
        if !(self.window_m > 0.0 && self.min_window_px >= 1.0) {
            crate::bail!(
                InvalidInput,
                "detect.persons: window_m must be > 0 and min_window_px >= 1"
            );
        }
        if self
            .before_release_s
            .iter()
            .any(|d| !(d.is_finite() && *d >= 0.0))
        {
            crate::bail!(
                InvalidInput,
                "detect.persons: before_release_s must be seconds >= 0"
            );
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            crate::bail!(InvalidInput, "detect.persons: min_score must be in [0, 1]");
        }
        if !self.centre_up_m.is_finite() {
            crate::bail!(
                InvalidInput,
                "detect.persons: centre_up_m must be a number of metres"
            );
        }
        // The evidence thread waits this long at most for a busy detector: it must not stall the
        // other cameras' clips.
        if self.wait_ms > 10_000 {
            crate::bail!(
                InvalidInput,
                "detect.persons: wait_ms must be at most 10000"
            );
        }
        Ok(())
    }

    /// The persons in the replies to `Person` requests (boxes in frame pixels), best first.
    pub fn sightings<'a>(
        &self,
        replies: impl IntoIterator<Item = &'a DetectReply>,
    ) -> Vec<PersonSighting> {
        let mut out: Vec<PersonSighting> = replies
            .into_iter()
            .filter(|r| r.kind == RequestKind::Person)
            .flat_map(|r| {
                r.detections
                    .iter()
                    .filter(|d| d.vocab == Vocab::Person && d.score >= self.min_score)
                    .map(move |d| PersonSighting {
                        t_s: r.t_s,
                        score: d.score,
                        box_px: r.frame_box(d).to_array(),
                    })
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(self.max_sightings);
        out
    }

    /// Searches `frames` synchronously with `detector` (for tools, tests, and a pipeline that
    /// prefers to run the search on its evidence thread).
    pub fn search(
        &self,
        detector: &mut dyn Detector,
        frames: &[&Frame],
        window: CropWindow,
    ) -> Result<Vec<PersonSighting>> {
        let px = detector.input_px();
        let crops: Vec<image::RgbImage> =
            frames.iter().map(|f| crop_frame(f, &window, px)).collect();
        let refs: Vec<&image::RgbImage> = crops.iter().collect();
        let found = detector.detect(&refs)?;
        let replies: Vec<DetectReply> = frames
            .iter()
            .zip(found)
            .map(|(f, detections)| DetectReply {
                camera: std::sync::Arc::from(""),
                track_id: 0,
                t_s: f.pts_s,
                kind: RequestKind::Person,
                window,
                crop_px: px,
                detections,
                error: None,
                batch: frames.len(),
                infer_ms: 0.0,
            })
            .collect();
        Ok(self.sightings(&replies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{BoxPx, Detection};
    use std::sync::Arc;

    #[test]
    fn window_scales_with_the_facade() {
        let s = PersonSearch::default();
        let w = s.window([1000.0, 500.0], 20.0, 1920, 1080);
        assert_eq!(w.side_px, 100.0);
        assert_eq!((w.x0_px, w.y0_px), (950.0, 444.0));
        let far = s.window([1000.0, 500.0], 2.0, 1920, 1080);
        assert_eq!(far.side_px, 48.0);
        assert_eq!(s.sample_times(1.0), vec![0.0, 0.5, 0.8]);
    }

    #[test]
    fn sightings_are_persons_above_threshold_in_frame_pixels() {
        let s = PersonSearch::default();
        let d = |v: Vocab, score: f32| Detection {
            class_id: 0,
            class: Arc::from(v.as_str()),
            vocab: v,
            score,
            box_px: BoxPx {
                x: 32.0,
                y: 64.0,
                w: 32.0,
                h: 96.0,
            },
        };
        let reply = |kind, t_s, dets| DetectReply {
            camera: Arc::from("c"),
            track_id: 1,
            t_s,
            kind,
            window: CropWindow {
                x0_px: 900.0,
                y0_px: 400.0,
                side_px: 160.0,
            },
            crop_px: 320,
            detections: dets,
            error: None,
            batch: 1,
            infer_ms: 1.0,
        };
        let replies = [
            reply(
                RequestKind::Person,
                1.0,
                vec![d(Vocab::Person, 0.6), d(Vocab::Bird, 0.9)],
            ),
            reply(
                RequestKind::Person,
                1.5,
                vec![d(Vocab::Person, 0.8), d(Vocab::Person, 0.3)],
            ),
            reply(RequestKind::Label, 1.6, vec![d(Vocab::Person, 0.99)]),
        ];
        let got = s.sightings(&replies);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            PersonSighting {
                t_s: 1.5,
                score: 0.8,
                box_px: [916.0, 432.0, 16.0, 48.0]
            }
        );
        assert_eq!(got[1].t_s, 1.0);
        let json = serde_json::to_value(got[0]).unwrap();
        assert_eq!(
            json["box_px"],
            serde_json::json!([916.0, 432.0, 16.0, 48.0])
        );
    }
}
