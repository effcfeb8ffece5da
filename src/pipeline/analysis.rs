//! The analysis of one camera's frames: motion candidates, tracks, the free-fall test, detector
//! labels, and the finished event records with what their snapshot draws.
//!
//! It owns one camera's detector state and runs on that camera's analysis thread. Per frame it
//! costs one motion pass and a tracker update; physics runs once per finished track; the
//! detector (when on) gets a few crops of each descending track, answered asynchronously by the
//! shared pool, and is never waited for on the per-frame path.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::calib::Calibration;
use crate::detect::pool::Submitted;
use crate::detect::{CameraDetector, DetectReply, LabelConfig, TrackLabeler, veto};
use crate::error::Result;
use crate::events::{Event, event_id};
use crate::evidence::SnapshotOverlay;
use crate::ingest::Frame;
use crate::motion::{MotionConfig, MotionDetector};
use crate::physics::{Assessment, FacadeModel, Verdict, assess};
use crate::track::{Track, Tracker, TrackerConfig};

/// Settings of the per-camera analysis.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Motion detection (`[analysis.motion]`). Default: `MotionConfig::default()`.
    pub motion: MotionConfig,
    /// Detector crops per descending track. Default: 3.
    pub crops_per_track: Option<u32>,
    /// Least media time between two crops of one track, seconds. Default: 0.2.
    pub crop_interval_s: Option<f64>,
    /// Longest wall-clock wait for a track's detector replies before its event is written
    /// without them, milliseconds. Default: 1500.
    pub label_wait_ms: Option<u64>,
}

impl AnalysisConfig {
    fn crops_per_track(&self) -> u32 {
        self.crops_per_track.unwrap_or(3)
    }
    fn crop_interval_s(&self) -> f64 {
        self.crop_interval_s.unwrap_or(0.2)
    }
    fn label_wait(&self) -> Duration {
        Duration::from_millis(self.label_wait_ms.unwrap_or(1500))
    }
}

/// A fall ready for the evidence writer: the contract record (without `clip`/`snapshot`, which
/// the writer fills) and what the snapshot draws.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The event record.
    pub event: Event,
    /// Trajectory, release time and object box for the snapshot.
    pub overlay: SnapshotOverlay,
}

/// Counters of one camera's analysis.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AnalysisStats {
    /// Frames analysed.
    pub frames: u64,
    /// Motion candidates over all frames.
    pub candidates: u64,
    /// Confirmed tracks that ended.
    pub tracks: u64,
    /// Tracks the physics accepted as falls.
    pub falls: u64,
    /// Falls removed by the detector's bird veto.
    pub vetoed: u64,
    /// Tracks rejected by the physics, per reason.
    pub rejected: HashMap<String, u64>,
    /// Detector crops submitted / shed.
    pub crops_submitted: u64,
    /// Detector crops shed because the pool was busy.
    pub crops_shed: u64,
}

/// Detector bookkeeping of one live track.
#[derive(Debug, Default)]
struct TrackCrops {
    submitted: u32,
    last_t_s: f64,
    labeler: Option<TrackLabeler>,
    replies: u32,
}

/// A fall waiting for its detector replies.
struct Pending {
    finding: Finding,
    track_id: u64,
    physics_score: f64,
    deadline: Instant,
}

/// One camera's analysis state.
pub struct CameraAnalysis {
    camera: String,
    cfg: AnalysisConfig,
    calib: Calibration,
    facade: FacadeModel,
    motion: MotionDetector,
    tracker: Tracker,
    detector: Option<CameraDetector>,
    label_cfg: LabelConfig,
    crops: HashMap<u64, TrackCrops>,
    pending: Vec<Pending>,
    /// Wall-clock time of media time 0, when known.
    wall_origin: Option<SystemTime>,
    stats: AnalysisStats,
}

impl CameraAnalysis {
    /// Analysis for frames of `width_px` x `height_px` from the camera `calib` describes.
    /// `detector` is the camera's handle on the shared detector pool (None: physics alone).
    pub fn new(
        calib: &Calibration,
        width_px: u32,
        height_px: u32,
        cfg: &AnalysisConfig,
        detector: Option<CameraDetector>,
        label_cfg: LabelConfig,
    ) -> Result<CameraAnalysis> {
        let camera = calib.camera.id.clone();
        let ctx = |e: crate::Error| e.context(format!("camera {camera}"));
        let facade = FacadeModel::new(calib, width_px, height_px).map_err(ctx)?;
        let motion = MotionDetector::new(
            calib,
            width_px as usize,
            height_px as usize,
            cfg.motion.clone(),
        )
        .map_err(ctx)?;
        let tracker = Tracker::new(TrackerConfig::for_calibration(calib)).map_err(ctx)?;
        Ok(CameraAnalysis {
            camera: camera.clone(),
            cfg: cfg.clone(),
            calib: calib.clone(),
            facade,
            motion,
            tracker,
            detector: detector.filter(|d| d.is_enabled()),
            label_cfg,
            crops: HashMap::new(),
            pending: Vec::new(),
            wall_origin: None,
            stats: AnalysisStats::default(),
        })
    }

    /// Sets the wall-clock time of media time 0 (for the events' `wall_time`).
    pub fn set_wall_origin(&mut self, origin: SystemTime) {
        self.wall_origin = Some(origin);
    }

    /// The wall-clock origin, if set.
    pub fn wall_origin(&self) -> Option<SystemTime> {
        self.wall_origin
    }

    /// Counters so far.
    pub fn stats(&self) -> &AnalysisStats {
        &self.stats
    }

    /// Bytes of per-camera state held by the motion detector (the bulk of the analysis memory).
    pub fn memory_bytes(&self) -> usize {
        self.motion.memory_bytes()
    }

    /// Analyses one frame; falls whose evidence can be written now are appended to `out`.
    pub fn process(&mut self, frame: &Frame, out: &mut Vec<Finding>) -> Result<()> {
        let candidates = self
            .motion
            .process(frame.luma(), frame.pts_s)
            .map_err(|e| e.context(format!("camera {}", self.camera)))?;
        self.stats.frames += 1;
        self.stats.candidates += candidates.len() as u64;
        let finished = self.tracker.update(frame.pts_s, candidates);
        if self.detector.is_some() {
            self.submit_crops(frame);
            self.collect_replies();
        }
        for track in finished {
            self.judge(track);
        }
        self.release_pending(false, out);
        Ok(())
    }

    /// End of input: closes the live tracks, waits (bounded) for detector replies and appends
    /// the remaining falls to `out`.
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        for track in self.tracker.flush() {
            self.judge(track);
        }
        self.release_pending(true, out);
    }

    /// Sends crops of descending confirmed tracks to the detector, a few per track.
    fn submit_crops(&mut self, frame: &Frame) {
        let Some(det) = &self.detector else { return };
        let (per_track, interval_s) = (self.cfg.crops_per_track(), self.cfg.crop_interval_s());
        for track in self.tracker.active() {
            if !track.confirmed || track.missed > 0 || track.velocity_px_s()[1] <= 0.0 {
                continue;
            }
            let Some(last) = track.observations.last() else {
                continue;
            };
            if (last.point.t_s - frame.pts_s).abs() > 1e-6 {
                continue; // not seen in this frame: nothing to crop
            }
            let entry = self.crops.entry(track.id).or_default();
            if entry.submitted >= per_track
                || (entry.submitted > 0 && frame.pts_s - entry.last_t_s < interval_s)
            {
                continue;
            }
            let p = last.point;
            let size = p.w_px.max(p.h_px) as f32;
            match det.submit_track(frame, track.id, p.x_px as f32, p.y_px as f32, size) {
                Submitted::Queued => {
                    entry.submitted += 1;
                    entry.last_t_s = frame.pts_s;
                    self.stats.crops_submitted += 1;
                }
                Submitted::Shed => self.stats.crops_shed += 1,
                Submitted::Disabled | Submitted::Closed => {}
            }
        }
    }

    /// Moves the detector's replies into the tracks' labelers.
    fn collect_replies(&mut self) {
        let Some(det) = &self.detector else { return };
        let replies: Vec<DetectReply> = det.replies().try_iter().collect();
        for r in replies {
            self.add_reply(r);
        }
    }

    fn add_reply(&mut self, r: DetectReply) {
        let entry = self.crops.entry(r.track_id).or_default();
        entry.replies += 1;
        if r.error.is_none() {
            entry
                .labeler
                .get_or_insert_with(|| TrackLabeler::new(self.label_cfg.clone()))
                .add_crop(&r.detections, r.crop_px);
        }
    }

    /// The physics' verdict on a finished track; a fall becomes a pending event.
    fn judge(&mut self, track: Track) {
        self.stats.tracks += 1;
        let points = track.track_points();
        let Assessment { verdict, score, .. } = assess(&self.facade, &points);
        let est = match verdict {
            Verdict::Fall(est) => est,
            Verdict::Reject(reason) => {
                *self
                    .stats
                    .rejected
                    .entry(format!("{reason:?}"))
                    .or_default() += 1;
                self.crops.remove(&track.id);
                tracing::trace!(camera = %self.camera, track = track.id, ?reason, "not a fall");
                return;
            }
        };
        self.stats.falls += 1;
        let start_s = points.first().map_or(0.0, |p| p.t_s);
        let end_s = points.last().map_or(start_s, |p| p.t_s);
        let wall_time = self
            .wall_origin
            .map(|o| o + Duration::from_secs_f64(start_s.max(0.0)))
            .map(format_wall_time)
            .unwrap_or_default();
        let event = Event {
            id: event_id(&self.camera, start_s, 1),
            camera: self.camera.clone(),
            start_s,
            end_s,
            wall_time,
            label: "object".into(),
            score,
            origin: est.origin.clone(),
            fall: est.fall.clone(),
            track: points,
            wall_distance_m: Some(est.wall_distance_m),
            ..Event::default()
        }
        .rounded();
        let overlay = SnapshotOverlay {
            trajectory_px: est.trajectory_px.iter().map(|(_, px)| *px).collect(),
            release_t_s: est.release_t_s,
            object_box_px: None,
        };
        tracing::debug!(
            camera = %self.camera,
            track = track.id,
            floor = est.origin.floor,
            bay = est.origin.bay,
            score,
            "fall"
        );
        self.pending.push(Pending {
            finding: Finding { event, overlay },
            track_id: track.id,
            physics_score: score,
            deadline: Instant::now() + self.cfg.label_wait(),
        });
    }

    /// Emits pending falls whose detector replies are in (or overdue), applying the label and
    /// the bird veto. With `wait`, blocks (bounded by each deadline) for missing replies.
    fn release_pending(&mut self, wait: bool, out: &mut Vec<Finding>) {
        let mut i = 0;
        while i < self.pending.len() {
            let id = self.pending[i].track_id;
            let complete = |crops: &HashMap<u64, TrackCrops>| {
                crops.get(&id).is_none_or(|c| c.replies >= c.submitted)
            };
            while wait && !complete(&self.crops) {
                let left = self.pending[i]
                    .deadline
                    .saturating_duration_since(Instant::now());
                let Some(det) = &self.detector else { break };
                match det.replies().recv_timeout(left) {
                    Ok(r) => self.add_reply(r),
                    Err(_) => break,
                }
            }
            if !(complete(&self.crops) || Instant::now() >= self.pending[i].deadline) {
                i += 1;
                continue;
            }
            let mut p = self.pending.swap_remove(i);
            if let Some(labeler) = self.crops.remove(&id).and_then(|c| c.labeler) {
                if veto(labeler.scores(), p.physics_score, &self.label_cfg) {
                    self.stats.vetoed += 1;
                    tracing::debug!(camera = %self.camera, track = id, "bird veto");
                    continue;
                }
                p.finding.event.label = labeler.label().to_string();
            }
            out.push(p.finding);
        }
        out.sort_by(|a, b| a.event.start_s.total_cmp(&b.event.start_s));
    }

    /// The calibration this analysis uses.
    pub fn calibration(&self) -> &Calibration {
        &self.calib
    }
}

/// RFC 3339 UTC with milliseconds, as the contract's `wall_time`.
pub fn format_wall_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_is_rfc3339_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_750_452_480);
        assert_eq!(format_wall_time(t), "2026-11-27T03:34:12.480Z");
    }
}
