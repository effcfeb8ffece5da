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
use crate::events::TrackPoint;
use crate::events::{Event, event_id};
use crate::evidence::SnapshotOverlay;
use crate::ingest::{Frame, Luma};
use crate::motion::{Candidate, MotionConfig, MotionDetector};
use crate::physics::{
    Assessment, FacadeModel, FallEstimate, Features, RejectReason, Verdict, assess,
};
use crate::track::search::{BallisticSearch, GravityField, SearchConfig, SearchTrack};
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
    /// Temporal-change test: a motion candidate is kept only if some pixel of its box (grown by
    /// one pixel) changed since the previous frame by at least this many grey levels... Default: 4.
    /// 0 turns the test off (then set `motion.warmup_frames` back to about 12: its default of 4
    /// relies on the test to drop the ghosts of a young background).
    pub min_change_grey: Option<f64>,
    /// ...and by at least this fraction of the candidate's peak contrast (capped at 40 grey
    /// levels). Default: 0.35.
    pub min_change_frac: Option<f64>,
    /// The ballistic search beside the tracker (`[analysis.search]`). Default:
    /// `SearchConfig::default()`.
    pub search: SearchConfig,
}

impl AnalysisConfig {
    /// Checks the values (one clear line per mistake).
    pub fn validate(&self) -> Result<()> {
        self.motion.validate()?;
        self.search.validate()?;
        if let Some(g) = self.min_change_grey
            && !(g.is_finite() && (0.0..=255.0).contains(&g))
        {
            crate::bail!(
                InvalidInput,
                "analysis.min_change_grey must be in [0, 255] grey levels (0 turns the test off)"
            );
        }
        if let Some(f) = self.min_change_frac
            && !(f.is_finite() && (0.0..=1.0).contains(&f))
        {
            crate::bail!(InvalidInput, "analysis.min_change_frac must be in [0, 1]");
        }
        if let Some(t) = self.crop_interval_s
            && !(t.is_finite() && t >= 0.0)
        {
            crate::bail!(
                InvalidInput,
                "analysis.crop_interval_s must be seconds >= 0"
            );
        }
        Ok(())
    }

    fn crops_per_track(&self) -> u32 {
        self.crops_per_track.unwrap_or(3)
    }
    fn crop_interval_s(&self) -> f64 {
        self.crop_interval_s.unwrap_or(0.2)
    }
    fn label_wait(&self) -> Duration {
        Duration::from_millis(self.label_wait_ms.unwrap_or(1500))
    }
    fn change_gate(&self) -> ChangeGate {
        ChangeGate {
            min_grey: self.min_change_grey.unwrap_or(4.0),
            frac_of_peak: self.min_change_frac.unwrap_or(0.35),
        }
    }
}

/// The temporal-change test of motion candidates.
///
/// H.264 copies unchanged blocks of a P-frame exactly, so a candidate whose pixels did not
/// change since the previous frame is not something moving now: the background model's own
/// error on compressed texture (re-quantised at the last key frame), a ghost, a static
/// reflection. A moving object changes the pixels it arrives on by about its contrast. Measured
/// on the tuning clips: 70-95% of the candidates of a quiet scene go, the object's stay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeGate {
    /// Least change of the box's most-changed pixel, grey levels (0: the gate is off).
    pub min_grey: f64,
    /// And at least this fraction of the candidate's peak contrast (capped at 40).
    pub frac_of_peak: f64,
}

impl ChangeGate {
    /// True when `c` shows a change between `prev` and `cur` large enough to be motion.
    pub fn passes(&self, cur: &Luma, prev: &Luma, c: &Candidate) -> bool {
        if self.min_grey <= 0.0 {
            return true;
        }
        let need = self
            .min_grey
            .max(self.frac_of_peak * f64::from(c.peak_contrast.abs()).min(40.0));
        f64::from(max_change(cur, prev, c)) >= need
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
    /// Motion candidates over all frames (after the change test).
    pub candidates: u64,
    /// Candidates dropped by the temporal-change test.
    pub unchanged_candidates: u64,
    /// Confirmed tracks that ended.
    pub tracks: u64,
    /// Tracks the physics accepted as falls.
    pub falls: u64,
    /// Tracks the ballistic search found that ended.
    pub search_tracks: u64,
    /// Falls dropped because another track's fall, pending or written, is the same object (the
    /// tracker's and the search's tracks of one object).
    pub duplicates: u64,
    /// Tracks joined to another track of the same fall.
    pub stitched: u64,
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

/// A fall waiting for a possible continuation (a track broken by an occlusion) and for its
/// detector replies.
struct Pending {
    /// The observed points (of one track, or of several stitched together).
    points: Vec<TrackPoint>,
    /// The tracks it is made of (their detector crops vote together).
    track_ids: Vec<u64>,
    est: Box<FallEstimate>,
    score: f64,
    deadline: Instant,
    /// Facade speed at the first sighting, m/s (0 for stitched falls, seen over longer).
    entry_m_s: f64,
    /// Which finds it.
    source: Source,
}

/// Which part of the analysis found a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The frame-by-frame tracker.
    Tracker,
    /// The ballistic search.
    Search,
}

/// A recently finished track the physics rejected on its own: it may be the first part of a fall
/// whose rest comes as another track.
struct Fragment {
    points: Vec<TrackPoint>,
    track_id: u64,
}

/// What the analysis did with one finished track (kept only when tracing, for diagnosis: why
/// was a test drop missed, where did a false alarm come from).
#[derive(Clone, Debug, Serialize)]
pub struct TrackTrace {
    /// The tracker's id.
    pub track_id: u64,
    /// Its observed points.
    pub points: Vec<TrackPoint>,
    /// "fall", "stitched" (joined to a pending fall) or the physics' reject reason (Rust names,
    /// e.g. `UnseenStart`; the track may still have been joined to an earlier fragment).
    pub verdict: String,
    /// The physics' score: of the track on its own, or of the joined points for "stitched".
    pub score: f64,
}

/// One motion candidate (kept only when tracing).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CandidateTrace {
    /// Media time, seconds.
    pub t_s: f64,
    /// True when the temporal-change test dropped it (it never reached the tracker).
    pub unchanged: bool,
    /// The candidate.
    pub candidate: Candidate,
}

/// What the motion detector did with one frame (kept only when tracing).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FrameTrace {
    /// Media time, seconds.
    pub t_s: f64,
    /// The detector's statistics of the frame.
    pub motion: crate::motion::MotionStats,
}

/// Everything a traced analysis saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Trace {
    /// Every finished confirmed track, in the order judged.
    pub tracks: Vec<TrackTrace>,
    /// Every motion candidate, including those the change test dropped.
    pub candidates: Vec<CandidateTrace>,
    /// Every frame's motion statistics.
    pub frames: Vec<FrameTrace>,
}

/// One camera's analysis state.
pub struct CameraAnalysis {
    camera: String,
    cfg: AnalysisConfig,
    calib: Calibration,
    facade: FacadeModel,
    motion: MotionDetector,
    tracker: Tracker,
    search: BallisticSearch,
    detector: Option<CameraDetector>,
    label_cfg: LabelConfig,
    crops: HashMap<u64, TrackCrops>,
    pending: Vec<Pending>,
    /// Points of the falls written in the last [`RELEASED_KEEP_S`]: a later track of the same
    /// object is a duplicate.
    released: std::collections::VecDeque<Vec<TrackPoint>>,
    fragments: Vec<Fragment>,
    /// End times (media seconds) of recent tracks that entered the view already falling fast:
    /// many of them at once is rain (see [`RainContext`]).
    fast_entries: std::collections::VecDeque<f64>,
    /// End times of recent tracks that descended steadily without accelerating (rain drops
    /// followed one by one; see [`DRIZZLE_MIN_TRACKS`]).
    steady_descents: std::collections::VecDeque<f64>,
    /// Media time of the last frame processed.
    now_s: f64,
    /// Wall-clock time of media time 0, when known.
    wall_origin: Option<SystemTime>,
    stats: AnalysisStats,
    trace: Option<Trace>,
    /// The previous frame (for the temporal-change test of candidates).
    prev: Option<Frame>,
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
        cfg.validate().map_err(ctx)?;
        let facade = FacadeModel::new(calib, width_px, height_px).map_err(ctx)?;
        let motion = MotionDetector::new(
            calib,
            width_px as usize,
            height_px as usize,
            cfg.motion.clone(),
        )
        .map_err(ctx)?;
        let tracker_cfg = TrackerConfig::for_calibration(calib);
        let gravity = gravity_field(&facade, tracker_cfg.gravity_px_s2, width_px, height_px);
        let tracker = Tracker::new(tracker_cfg).map_err(ctx)?;
        let search =
            BallisticSearch::new(cfg.search.clone(), gravity, width_px, height_px).map_err(ctx)?;
        Ok(CameraAnalysis {
            camera: camera.clone(),
            cfg: cfg.clone(),
            calib: calib.clone(),
            facade,
            motion,
            tracker,
            search,
            detector: detector.filter(|d| d.is_enabled()),
            label_cfg,
            crops: HashMap::new(),
            pending: Vec::new(),
            released: std::collections::VecDeque::new(),
            fragments: Vec::new(),
            fast_entries: std::collections::VecDeque::new(),
            steady_descents: std::collections::VecDeque::new(),
            now_s: 0.0,
            wall_origin: None,
            stats: AnalysisStats::default(),
            trace: None,
            prev: None,
        })
    }

    /// Keeps every candidate and every judged track from now on (diagnosis; memory grows with
    /// the input).
    pub fn enable_trace(&mut self) {
        self.trace.get_or_insert_with(Trace::default);
    }

    /// What was traced so far (see [`CameraAnalysis::enable_trace`]).
    pub fn take_trace(&mut self) -> Option<Trace> {
        self.trace.take()
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

    /// Analyses one frame; falls whose evidence can be written now are appended to `out`. The
    /// frame is kept until the next one (candidates must differ from the previous frame).
    pub fn process(&mut self, frame: Frame, out: &mut Vec<Finding>) -> Result<()> {
        // The change test runs inside the motion detector, before its per-frame cap: static
        // texture must not crowd a faint moving object out.
        let gate = self.cfg.change_gate();
        let tracing = self.trace.is_some();
        let mut dropped: Vec<Candidate> = Vec::new();
        // Frames are compared in the background's geometry: the motion detector hands over the
        // previous frame registered when the camera shook on it.
        let prev_frame = self.prev.as_ref().map(|p| p.luma());
        let mut keep = |c: &Candidate, cur: Luma<'_>, prev_registered: Option<Luma<'_>>| {
            let prev = prev_registered.or(prev_frame);
            let pass = prev.is_none_or(|prev| gate.passes(&cur, &prev, c));
            if !pass && tracing {
                dropped.push(*c);
            }
            pass
        };
        let candidates = self
            .motion
            .process_filtered(frame.luma(), frame.pts_s, &mut keep)
            .map_err(|e| e.context(format!("camera {}", self.camera)))?
            .to_vec();
        self.stats.unchanged_candidates += u64::from(self.motion.stats().filtered);
        let candidates = &candidates[..];
        self.stats.frames += 1;
        self.stats.candidates += candidates.len() as u64;
        if let Some(trace) = &mut self.trace {
            let t_s = frame.pts_s;
            let tr = |unchanged: bool| {
                move |c: &Candidate| CandidateTrace {
                    t_s,
                    unchanged,
                    candidate: *c,
                }
            };
            trace.candidates.extend(candidates.iter().map(tr(false)));
            trace.candidates.extend(dropped.iter().map(tr(true)));
            trace.frames.push(FrameTrace {
                t_s,
                motion: self.motion.stats(),
            });
        }
        self.now_s = frame.pts_s;
        // A re-based or warming-up detector saw nothing: that is not a miss for the tracks.
        let m = self.motion.stats();
        let (finished, found) = if m.rebased || m.warming_up {
            // A re-base and the warm-up after it, plus one: the longest blind spell the motion
            // detector causes itself.
            let blind = self.cfg.motion.warmup_frames + 2;
            (
                self.tracker.skip(frame.pts_s, blind),
                self.search.skip(frame.pts_s),
            )
        } else {
            (
                self.tracker.update(frame.pts_s, candidates),
                self.search.update(frame.pts_s, candidates),
            )
        };
        if self.detector.is_some() {
            self.submit_crops(&frame);
            self.collect_replies();
        }
        for track in finished {
            self.judge(track);
        }
        for track in found {
            self.judge_search(track);
        }
        self.release_pending(false, out);
        self.prev = Some(frame);
        Ok(())
    }

    /// The ballistic search's counters (for diagnostics).
    pub fn search_stats(&self) -> crate::track::search::SearchStats {
        self.search.stats()
    }

    /// The tracker (for diagnostics: its live tracks).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// End of input: closes the live tracks, waits (bounded) for detector replies and appends
    /// the remaining falls to `out`.
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        for track in self.tracker.flush() {
            self.judge(track);
        }
        for track in self.search.flush() {
            self.judge_search(track);
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

    /// The physics' verdict on a finished track. A fall becomes a pending event; a track that
    /// continues a pending fall (or is continued by a fall) is stitched to it when the joined
    /// points still fit a fall.
    fn judge(&mut self, track: Track) {
        self.judge_track(track.id, track.track_points());
    }

    /// [`CameraAnalysis::judge`] on a track's id and points.
    fn judge_track(&mut self, track_id: u64, points: Vec<TrackPoint>) {
        // A track that coasted through a gap may have picked up something else on the far side
        // for its last few points (a bird, a leaf or a branch where the object's path led):
        // when the whole is not a fall, its parts are judged on their own (stitching may still
        // join them). The cut goes after the latest coast whose head is a fall, else after the
        // longest gap.
        let split = |points: &[TrackPoint], facade: &FacadeModel| {
            let cuts = coasted_cuts(points, SPLIT_MAX_TAIL_POINTS);
            if cuts.is_empty() || matches!(assess(facade, points).verdict, Verdict::Fall(_)) {
                return None;
            }
            cuts.iter()
                .rev()
                .copied()
                .find(|&at| matches!(assess(facade, &points[..at]).verdict, Verdict::Fall(_)))
                .or_else(|| longest_gap_among(points, &cuts, SPLIT_GAP_S))
        };
        if let Some(at) = split(&points, &self.facade) {
            let tail = points[at..].to_vec();
            let mut head = points;
            head.truncate(at);
            self.judge_points(track_id, head, Source::Tracker);
            self.judge_points(track_id, tail, Source::Tracker);
            return;
        }
        self.judge_points(track_id, points, Source::Tracker);
    }

    /// Judges a track of the ballistic search (its id offset by [`SEARCH_ID_BASE`], so traces
    /// tell it from the tracker's). It is not split at gaps: sparse sightings are its nature.
    fn judge_search(&mut self, track: SearchTrack) {
        self.stats.search_tracks += 1;
        self.judge_points(SEARCH_ID_BASE + track.id, track.points, Source::Search);
    }

    /// Judges one track's (or part's) points: stitching, rain, the physics' verdict, and one
    /// event per object. The search's tracks neither count as rain entries nor join fragments
    /// (the tracker's tracks of the same drops and objects do).
    fn judge_points(&mut self, track_id: u64, points: Vec<TrackPoint>, source: Source) {
        if source == Source::Tracker {
            self.stats.tracks += 1;
        }
        if points.is_empty() {
            return;
        }
        // The rest of a fall whose track broke (occlusion, a missed stretch)?
        for k in 0..self.pending.len() {
            if !continues(&self.pending[k].points, &points, MAX_GAP_S) {
                continue;
            }
            let joined = join_points(&self.pending[k].points, &points);
            if let Assessment {
                verdict: Verdict::Fall(est),
                score,
                ..
            } = assess(&self.facade, &joined)
            {
                self.record(track_id, &points, "stitched", score);
                let p = &mut self.pending[k];
                (p.points, p.est, p.score) = (joined, est, score);
                p.track_ids.push(track_id);
                self.stats.stitched += 1;
                return;
            }
        }
        let Assessment {
            verdict,
            score,
            features,
        } = assess(&self.facade, &points);
        // Rain: while many tracks enter the view already falling fast, one more that does is
        // rain too, however well it fits (drops near the camera chain into fall-like tracks).
        let entry_m_s = entry_speed_m_s(&features);
        let end_s = points.last().map_or(self.now_s, |p| p.t_s);
        forget_before(&mut self.fast_entries, end_s - RAIN_WINDOW_S);
        let raining = self.fast_entries.len() >= RAIN_MIN_TRACKS;
        forget_before(&mut self.steady_descents, end_s - RAIN_WINDOW_S);
        if source == Source::Tracker
            && matches!(verdict, Verdict::Reject(RejectReason::NotAccelerating))
            && features.descent_storeys >= 1.0
        {
            self.steady_descents.push_back(end_s);
        }
        // In rain, drops at different depths fall at different image speeds along one
        // direction, and the search chains them into accelerating paths: its tracks are not
        // trusted then, nor while many tracks descend steadily (drops the tracker follows one
        // by one, in rain too light to enter the view fast).
        let drizzle = self.steady_descents.len() >= DRIZZLE_MIN_TRACKS;
        if (raining || drizzle) && source == Source::Search {
            self.reject(track_id, &points, "Rain", score);
            return;
        }
        // A path assembled from sparse sightings must show its curvature plainly: chance
        // alignments of clutter fit a parabola only a little better than a line.
        if source == Source::Search
            && matches!(verdict, Verdict::Fall(_))
            && (features.accel_ratio.is_nan() || features.accel_ratio < SEARCH_MIN_ACCEL_RATIO)
        {
            self.reject(track_id, &points, "WeakCurvature", score);
            return;
        }
        if entry_m_s >= RAIN_ENTRY_M_S && features.descent_storeys >= 1.0 {
            if source == Source::Tracker {
                self.fast_entries.push_back(end_s);
            }
            if raining && matches!(verdict, Verdict::Fall(_)) {
                self.reject(track_id, &points, "Rain", score);
                self.fragments.push(Fragment { points, track_id });
                return;
            }
        }
        let what = match &verdict {
            Verdict::Fall(_) => "fall".to_string(),
            Verdict::Reject(r) => format!("{r:?}"),
        };
        self.record(track_id, &points, &what, score);
        // The first part of this fall may have ended as a fragment of its own; or this is the
        // rest of a fall whose parts are not falls alone (its start went unseen behind something
        // and the first part was too short). Either way the joined points decide.
        let fragment = match source {
            Source::Tracker => self.join_fragment(&points),
            Source::Search => None,
        };
        let (points, est, score, ids, entry_m_s) = match (fragment, verdict) {
            (Some(j), _) => {
                // Joined, the fall starts where the fragment did: in rain, drops chain into
                // fragments that join into a fall as readily as they do into one track. (The
                // joined fall is not counted as a fast entry: its parts were judged alone.)
                if raining && j.entry_m_s >= RAIN_ENTRY_M_S {
                    self.reject(track_id, &points, "Rain", score);
                    self.fragments.push(Fragment { points, track_id });
                    return;
                }
                let frag = self.fragments.swap_remove(j.fragment);
                self.stats.stitched += 1;
                let ids = vec![frag.track_id, track_id];
                (j.points, j.est, j.score, ids, j.entry_m_s)
            }
            (None, Verdict::Fall(est)) => (points, est, score, vec![track_id], entry_m_s),
            (None, Verdict::Reject(reason)) => {
                *self
                    .stats
                    .rejected
                    .entry(format!("{reason:?}"))
                    .or_default() += 1;
                tracing::trace!(camera = %self.camera, track = track_id, ?reason, "not a fall");
                if source == Source::Tracker {
                    self.fragments.push(Fragment { points, track_id });
                }
                return;
            }
        };
        if self.resolve_duplicate(&points, source) {
            self.stats.duplicates += 1;
            self.record(track_id, &points, "duplicate", score);
            return;
        }
        self.stats.falls += 1;
        tracing::debug!(
            camera = %self.camera,
            track = track_id,
            floor = est.origin.floor,
            bay = est.origin.bay,
            score,
            "fall"
        );
        self.pending.push(Pending {
            points,
            track_ids: ids,
            est,
            score,
            deadline: Instant::now() + self.cfg.label_wait(),
            entry_m_s,
            source,
        });
    }

    /// Counts a rejection for `reason` and traces it.
    fn reject(&mut self, track_id: u64, points: &[TrackPoint], reason: &str, score: f64) {
        *self.stats.rejected.entry(reason.to_string()).or_default() += 1;
        self.record(track_id, points, reason, score);
    }

    /// True when a new fall (from `source`) is to be dropped: it follows the same object as a
    /// fall written recently or pending. Of a pending pair the tracker's fall is kept: when the
    /// pending one is the search's, it is removed here and the new fall goes on (false).
    fn resolve_duplicate(&mut self, points: &[TrackPoint], source: Source) -> bool {
        if self.released.iter().any(|r| same_object(r, points)) {
            return true;
        }
        let Some(k) = self
            .pending
            .iter()
            .position(|p| same_object(&p.points, points))
        else {
            return false;
        };
        if source == Source::Tracker && self.pending[k].source == Source::Search {
            self.pending.swap_remove(k);
            self.stats.duplicates += 1;
            self.stats.falls = self.stats.falls.saturating_sub(1);
            return false;
        }
        true
    }

    /// A recent fragment that `points` continues and with which the joined points are a fall.
    fn join_fragment(&self, points: &[TrackPoint]) -> Option<Joined> {
        let f = self
            .fragments
            .iter()
            .position(|f| continues(&f.points, points, MAX_GAP_S))?;
        let joined = join_points(&self.fragments[f].points, points);
        match assess(&self.facade, &joined) {
            Assessment {
                verdict: Verdict::Fall(est),
                score,
                features,
            } => Some(Joined {
                fragment: f,
                entry_m_s: entry_speed_m_s(&features),
                points: joined,
                est,
                score,
            }),
            _ => None,
        }
    }

    fn record(&mut self, track_id: u64, points: &[TrackPoint], verdict: &str, score: f64) {
        if let Some(trace) = &mut self.trace {
            trace.tracks.push(TrackTrace {
                track_id,
                points: points.to_vec(),
                verdict: verdict.to_string(),
                score,
            });
        }
    }

    /// Emits pending falls that can no longer be continued and whose detector replies are in
    /// (or overdue), applying the label and the bird veto. At the end of input (`finishing`) it
    /// waits, bounded by each deadline, for missing replies.
    fn release_pending(&mut self, finishing: bool, out: &mut Vec<Finding>) {
        // Fragments older than the stitching window cannot be joined any more.
        let now_s = self.now_s;
        let crops = &mut self.crops;
        self.fragments.retain(|f| {
            let alive = !finishing && f.points.last().is_some_and(|p| now_s - p.t_s <= MAX_GAP_S);
            if !alive {
                crops.remove(&f.track_id);
            }
            alive
        });
        let mut i = 0;
        while i < self.pending.len() {
            let end_s = self.pending[i].points.last().map_or(0.0, |p| p.t_s);
            // Hold it while it may still be continued: within the gap, or while a live track
            // that started where it leads has not finished yet.
            let continued_by_live = || {
                self.tracker.active().iter().any(|t| {
                    t.confirmed
                        && t.observations.first().is_some_and(|o| {
                            continues(&self.pending[i].points, &[o.point], MAX_GAP_S)
                        })
                })
            };
            if !finishing && (now_s - end_s <= MAX_GAP_S || continued_by_live()) {
                i += 1;
                continue;
            }
            let ids = self.pending[i].track_ids.clone();
            let complete = |crops: &HashMap<u64, TrackCrops>| {
                ids.iter()
                    .all(|id| crops.get(id).is_none_or(|c| c.replies >= c.submitted))
            };
            while finishing && !complete(&self.crops) {
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
            let p = self.pending.swap_remove(i);
            // Rain that began just after this track entered the view fast: it was rain too.
            if p.entry_m_s >= RAIN_ENTRY_M_S {
                let others = self
                    .fast_entries
                    .iter()
                    .filter(|t| (**t - end_s).abs() <= RAIN_WINDOW_S)
                    .count()
                    .saturating_sub(1);
                if others >= RAIN_MIN_TRACKS {
                    *self.stats.rejected.entry("Rain".to_string()).or_default() += 1;
                    self.stats.falls = self.stats.falls.saturating_sub(1);
                    for id in &ids {
                        self.crops.remove(id);
                    }
                    continue;
                }
            }
            // The votes of the stitched tracks' crops: the track with the most crops speaks.
            let labeler = ids
                .iter()
                .filter_map(|id| self.crops.remove(id).and_then(|c| c.labeler))
                .max_by_key(|l| l.scores().crops);
            let mut label = "object".to_string();
            if let Some(l) = labeler {
                if veto(l.scores(), p.score, &self.label_cfg) {
                    self.stats.vetoed += 1;
                    tracing::debug!(camera = %self.camera, tracks = ?ids, "bird veto");
                    continue;
                }
                label = l.label().to_string();
            }
            self.released.push_back(p.points.clone());
            out.push(self.finding(p, label));
        }
        while self
            .released
            .front()
            .and_then(|r| r.last())
            .is_some_and(|q| now_s - q.t_s > RELEASED_KEEP_S)
        {
            self.released.pop_front();
        }
        out.sort_by(|a, b| a.event.start_s.total_cmp(&b.event.start_s));
    }

    /// The event record and snapshot overlay of a fall.
    fn finding(&self, p: Pending, label: String) -> Finding {
        let start_s = p.points.first().map_or(0.0, |q| q.t_s);
        let end_s = p.points.last().map_or(start_s, |q| q.t_s);
        let wall_time = self
            .wall_origin
            .map(|o| o + Duration::from_secs_f64(start_s.max(0.0)))
            .map(format_wall_time)
            .unwrap_or_default();
        let est = p.est;
        let event = Event {
            id: event_id(&self.camera, start_s, 1),
            camera: self.camera.clone(),
            start_s,
            end_s,
            wall_time,
            label,
            score: p.score,
            origin: est.origin.clone(),
            fall: est.fall.clone(),
            track: p.points,
            wall_distance_m: Some(est.wall_distance_m),
            ..Event::default()
        }
        .rounded();
        let overlay = SnapshotOverlay {
            trajectory_px: est.trajectory_px.iter().map(|(_, px)| *px).collect(),
            release_t_s: est.release_t_s,
            object_box_px: None,
        };
        Finding { event, overlay }
    }

    /// The calibration this analysis uses.
    pub fn calibration(&self) -> &Calibration {
        &self.calib
    }
}

/// Largest |difference| between two frames over a candidate's box grown by one pixel.
fn max_change(cur: &Luma, prev: &Luma, c: &Candidate) -> u8 {
    let (w, h) = (
        cur.width().min(prev.width()),
        cur.height().min(prev.height()),
    );
    if w == 0 || h == 0 {
        return 0;
    }
    let x0 = (c.x_min_px as usize).saturating_sub(1).min(w - 1);
    let x1 = (c.x_max_px as usize + 1).min(w - 1);
    let y0 = (c.y_min_px as usize).saturating_sub(1).min(h - 1);
    let y1 = (c.y_max_px as usize + 1).min(h - 1);
    let mut best = 0u8;
    for y in y0..=y1 {
        let (a, b) = (&cur.row(y)[x0..=x1], &prev.row(y)[x0..=x1]);
        for (p, q) in a.iter().zip(b) {
            best = best.max(p.abs_diff(*q));
        }
    }
    best
}

/// A fragment joined with a new track into a fall ([`CameraAnalysis::join_fragment`]).
struct Joined {
    /// Index of the fragment.
    fragment: usize,
    /// The fragment's points, then the track's ([`join_points`]: the track's where they overlap).
    points: Vec<TrackPoint>,
    /// The physics' estimate of the joined fall.
    est: Box<FallEstimate>,
    /// Its score.
    score: f64,
    /// The joined points' speed at their first sighting, m/s (see [`entry_speed_m_s`]).
    entry_m_s: f64,
}

/// Tracks ending within this many seconds of each other count together for [`RAIN_MIN_TRACKS`].
const RAIN_WINDOW_S: f64 = 4.0;
/// This many tracks entering the view at [`RAIN_ENTRY_M_S`] or faster within [`RAIN_WINDOW_S`]
/// is rain.
const RAIN_MIN_TRACKS: usize = 3;
/// This many tracks descending a storey or more without accelerating within
/// [`RAIN_WINDOW_S`] is rain too, for the ballistic search's tracks.
const DRIZZLE_MIN_TRACKS: usize = 5;
/// Speed at the first sighting, m/s, that an object seen from its release (or entering the view a
/// couple of storeys below it) does not have: rain drops near the camera do.
const RAIN_ENTRY_M_S: f64 = 12.0;

/// Facade-plane speed at a track's first sighting, m/s: the end speed less what the fitted
/// acceleration added over the track (0 when unknown).
fn entry_speed_m_s(f: &Features) -> f64 {
    let v = f.end_speed_m_s - f.g_fit_m_s2.max(0.0) * f.duration_s;
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

/// A gap in a track at least this long (a coast through missed frames) splits a track that is
/// not a fall as a whole, seconds.
const SPLIT_GAP_S: f64 = 0.2;

/// The split is made only when at most this many points follow the gap (a few detections of
/// something else, not the rest of a second object's track).
const SPLIT_MAX_TAIL_POINTS: usize = 4;

/// A coast at least this many frame intervals long (two missed frames) may end in something
/// else than the object: a track may be cut there ([`coasted_cuts`]).
const CUT_MIN_GAP_FRAMES: f64 = 2.5;

/// The indices after which a track may be cut: the first point after each coast of at least
/// [`CUT_MIN_GAP_FRAMES`] frame intervals (the track's median interval) with at most
/// `max_tail` points after it, in order.
fn coasted_cuts(points: &[TrackPoint], max_tail: usize) -> Vec<usize> {
    if points.len() < 3 {
        return Vec::new();
    }
    let mut dts: Vec<f64> = points.windows(2).map(|w| w[1].t_s - w[0].t_s).collect();
    let mid = dts.len() / 2;
    let frame_s = *dts.select_nth_unstable_by(mid, f64::total_cmp).1;
    (points.len().saturating_sub(max_tail).max(1)..points.len())
        .filter(|&i| points[i].t_s - points[i - 1].t_s >= CUT_MIN_GAP_FRAMES * frame_s)
        .collect()
}

/// Of the indices `at` (each the first point after a gap), the one after the longest gap of at
/// least `min_gap_s`.
fn longest_gap_among(points: &[TrackPoint], at: &[usize], min_gap_s: f64) -> Option<usize> {
    at.iter()
        .map(|&i| (i, points[i].t_s - points[i - 1].t_s))
        .filter(|&(_, gap)| gap >= min_gap_s)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Drops the times before `from_s` from the front of `times` (oldest first).
fn forget_before(times: &mut std::collections::VecDeque<f64>, from_s: f64) {
    while times.front().is_some_and(|&t| t < from_s) {
        times.pop_front();
    }
}

/// Offset of the ballistic search's track ids in traces (the tracker's count from 1).
pub const SEARCH_ID_BASE: u64 = 1 << 40;

/// Least ratio of a straight line's residual to the fitted fall's (the physics'
/// `accel_ratio`) for a track of the ballistic search to be a fall. The tracker's own tracks
/// are held to the physics' score alone; on the tuning sets the search's false alarms had 2.5-5.6
/// and its two finds 10.6 and 29.
const SEARCH_MIN_ACCEL_RATIO: f64 = 8.0;

/// How long the points of a written fall are kept to recognise a later track of the same object,
/// seconds (media time after its last point).
const RELEASED_KEEP_S: f64 = 10.0;

/// Two tracks follow one object when, over the time they share, the median distance of one's
/// points from the other's path is at most this, pixels, plus half the object's size.
const SAME_OBJECT_PX: f64 = 10.0;

/// True when `a` and `b` follow one object (see [`SAME_OBJECT_PX`]); at least 3 shared points.
fn same_object(a: &[TrackPoint], b: &[TrackPoint]) -> bool {
    /// Distances of `b`'s points within `a`'s time span from `a`'s path (linear between its
    /// points), and the objects' size.
    fn along(a: &[TrackPoint], b: &[TrackPoint]) -> Option<bool> {
        let (first, last) = (a.first()?, a.last()?);
        let mut d: Vec<f64> = Vec::new();
        let mut size_px: Vec<f64> = Vec::new();
        for p in b.iter().filter(|p| p.t_s >= first.t_s && p.t_s <= last.t_s) {
            let k = a.partition_point(|q| q.t_s < p.t_s).min(a.len() - 1);
            let q = if k == 0 || a[k].t_s == p.t_s {
                [a[k].x_px, a[k].y_px]
            } else {
                let (u, w) = (a[k - 1], a[k]);
                let f = (p.t_s - u.t_s) / (w.t_s - u.t_s);
                [
                    u.x_px + f * (w.x_px - u.x_px),
                    u.y_px + f * (w.y_px - u.y_px),
                ]
            };
            d.push((p.x_px - q[0]).hypot(p.y_px - q[1]));
            size_px.push(p.w_px.max(p.h_px).max(a[k].w_px.max(a[k].h_px)));
        }
        if d.len() < 3 {
            return None;
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Some(median(&mut d) <= SAME_OBJECT_PX + 0.5 * median(&mut size_px))
    }
    along(a, b).or_else(|| along(b, a)).unwrap_or(false)
}

/// Free-fall acceleration in the image at each place of a `width_px` x `height_px` picture: the
/// image step of one metre down the facade plane there, times 9.81, pixels/s^2. Where the
/// homography gives nothing sensible (far outside the facade), `mean_px_s2` straight down.
fn gravity_field(
    facade: &FacadeModel,
    mean_px_s2: f64,
    width_px: u32,
    height_px: u32,
) -> GravityField {
    GravityField::sampled(width_px, height_px, 32, |p| {
        let q = facade.image_to_facade(p);
        let a = facade.facade_to_image(q.x_m, q.height_m);
        let b = facade.facade_to_image(q.x_m, q.height_m - 1.0);
        let g = [9.81 * (b[0] - a[0]), 9.81 * (b[1] - a[1])];
        let norm = g[0].hypot(g[1]);
        let sane =
            norm.is_finite() && g[1] > 0.0 && norm >= 0.25 * mean_px_s2 && norm <= 4.0 * mean_px_s2;
        if sane { g } else { [0.0, mean_px_s2] }
    })
}

/// Longest gap between two tracks of one falling object (an occlusion by a balcony or a tree,
/// a stretch of missed detections) that stitching bridges, seconds.
const MAX_GAP_S: f64 = 0.8;

/// Longest time a track may overlap the fall it continues, seconds: as an object breaks into
/// pieces or its track coasts, a second track may start on it a frame or two before the first
/// one's last detection.
const MAX_OVERLAP_S: f64 = 0.2;

/// True when `b` starts after `a` ends (within `max_gap_s`, or overlapping its end by up to
/// [`MAX_OVERLAP_S`]) near where `a`'s motion leads: a quadratic (constant-acceleration) fit of
/// `a`'s last points, extrapolated (or interpolated) to `b`'s start.
fn continues(a: &[TrackPoint], b: &[TrackPoint], max_gap_s: f64) -> bool {
    let (Some(start), Some(last), Some(first)) = (a.first(), a.last(), b.first()) else {
        return false;
    };
    let gap_s = first.t_s - last.t_s;
    if !(gap_s > -MAX_OVERLAP_S && gap_s <= max_gap_s && first.t_s > start.t_s) {
        return false;
    }
    let gap_s = gap_s.max(0.0);
    let tail = &a[a.len().saturating_sub(10)..];
    let predicted = extrapolate(tail, first.t_s);
    let size_px = last.w_px.max(last.h_px).max(first.w_px.max(first.h_px));
    let tolerance_px = 15.0 + 3.0 * size_px + 40.0 * gap_s;
    (predicted[0] - first.x_px).hypot(predicted[1] - first.y_px) <= tolerance_px
}

/// The points of `a` and then of `b`, which [`continues`] it; where they overlap in time, `b`'s.
fn join_points(a: &[TrackPoint], b: &[TrackPoint]) -> Vec<TrackPoint> {
    let start_s = b.first().map_or(f64::INFINITY, |p| p.t_s);
    a.iter()
        .filter(|p| p.t_s < start_s)
        .chain(b)
        .copied()
        .collect()
}

/// Least-squares position at `t_s` of a constant-acceleration fit (constant velocity with fewer
/// than 4 points, the last position with one).
fn extrapolate(points: &[TrackPoint], t_s: f64) -> [f64; 2] {
    let t0 = points.last().map_or(0.0, |p| p.t_s);
    let degree = match points.len() {
        0 => return [0.0, 0.0],
        1 => 0,
        2 | 3 => 1,
        _ => 2,
    };
    let n = degree + 1;
    let mut ata = nalgebra::DMatrix::<f64>::zeros(n, n);
    let mut atb = nalgebra::DMatrix::<f64>::zeros(n, 2);
    for p in points {
        let t = p.t_s - t0;
        let basis: Vec<f64> = (0..n).map(|k| t.powi(k as i32)).collect();
        for r in 0..n {
            for c in 0..n {
                ata[(r, c)] += basis[r] * basis[c];
            }
            atb[(r, 0)] += basis[r] * p.x_px;
            atb[(r, 1)] += basis[r] * p.y_px;
        }
    }
    let Some(coef) = ata.lu().solve(&atb) else {
        let p = points.last().expect("non-empty");
        return [p.x_px, p.y_px];
    };
    let t = t_s - t0;
    let at = |col: usize| {
        (0..n)
            .map(|k| coef[(k, col)] * t.powi(k as i32))
            .sum::<f64>()
    };
    [at(0), at(1)]
}

/// RFC 3339 UTC with milliseconds, as the contract's `wall_time`.
pub fn format_wall_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fall_points(t0_s: f64, n: usize) -> Vec<TrackPoint> {
        // 500 px/s^2 down, 30 px/s sideways, from (100, 50) at t = 0.
        (0..n)
            .map(|i| {
                let t = t0_s + i as f64 * 0.04;
                TrackPoint {
                    t_s: t,
                    x_px: 100.0 + 30.0 * t,
                    y_px: 50.0 + 250.0 * t * t,
                    w_px: 4.0,
                    h_px: 4.0,
                }
            })
            .collect()
    }

    use crate::physics::sim::{FallingObject, Observer, Scene, SceneSpec};
    use rand::SeedableRng;

    /// The simulated camera of the judging tests (floors 3 to 13 in view).
    fn sim_scene() -> Scene {
        Scene::new(SceneSpec {
            pitch_deg: 28.0,
            ..SceneSpec::default()
        })
    }

    /// `fall` as the camera of `scene` tracks it at 25 fps until `until_s`, with noise seeded
    /// by `seed`.
    fn observed(scene: &Scene, fall: &FallingObject, until_s: f64, seed: u64) -> Vec<TrackPoint> {
        let path = fall.path(25.0, until_s);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Observer::default().observe(&scene.camera, &path, &mut rng)
    }

    /// A camera analysis of `scene` with the default settings and no detector.
    fn sim_analysis(scene: &Scene) -> CameraAnalysis {
        let (w, h) = (scene.spec.width_px, scene.spec.height_px);
        CameraAnalysis::new(
            &scene.calib,
            w,
            h,
            &AnalysisConfig::default(),
            None,
            LabelConfig::default(),
        )
        .unwrap()
    }

    /// The facade model of `scene`.
    fn sim_facade(scene: &Scene) -> FacadeModel {
        FacadeModel::new(&scene.calib, scene.spec.width_px, scene.spec.height_px).unwrap()
    }

    #[test]
    fn a_fall_broken_by_an_occlusion_continues() {
        let a = fall_points(0.0, 12); // 0.00 .. 0.44 s
        let b = fall_points(0.80, 10); // after a 0.36 s gap
        assert!(continues(&a, &b, MAX_GAP_S));
        let p = extrapolate(&a, 0.8);
        assert!((p[1] - (50.0 + 250.0 * 0.64)).abs() < 1e-6, "{p:?}");
    }

    #[test]
    fn unrelated_or_late_tracks_do_not_continue() {
        let a = fall_points(0.0, 12);
        let mut elsewhere = fall_points(0.8, 10);
        for p in &mut elsewhere {
            p.x_px += 200.0;
        }
        assert!(!continues(&a, &elsewhere, MAX_GAP_S));
        assert!(
            !continues(&a, &fall_points(1.5, 10), MAX_GAP_S),
            "gap too long"
        );
        assert!(
            !continues(&a, &fall_points(0.2, 10), MAX_GAP_S),
            "overlaps in time by more than a few frames"
        );
        assert!(
            !continues(&a, &fall_points(0.0, 10), MAX_GAP_S),
            "starts with it"
        );
    }

    /// A second track that starts on the object a frame or two before the first one's last
    /// detection continues it; joined, the overlap is the second track's.
    #[test]
    fn a_track_overlapping_the_end_of_a_fall_continues_it() {
        let a = fall_points(0.0, 12); // 0.00 .. 0.44 s
        let b = fall_points(0.40, 10); // from 0.40 s: overlaps a's last two points
        assert!(continues(&a, &b, MAX_GAP_S));
        let joined = join_points(&a, &b);
        assert_eq!(joined.len(), 10 + 10);
        assert!(
            joined.windows(2).all(|w| w[1].t_s > w[0].t_s),
            "in time order"
        );
        assert_eq!(joined[10], b[0]);
    }

    /// Two tracker tracks of the floor-12 drop, judged in order, make one stitched event from
    /// floor 12.
    fn assert_one_stitched_event_from_floor_12(
        scene: &Scene,
        first: Vec<TrackPoint>,
        second: Vec<TrackPoint>,
    ) {
        let mut an = sim_analysis(scene);
        an.judge_points(1, first, Source::Tracker);
        an.judge_points(2, second, Source::Tracker);
        let mut out = Vec::new();
        an.release_pending(true, &mut out);
        assert_eq!(out.len(), 1, "one event");
        assert_eq!(out[0].event.origin.floor, 12);
        assert_eq!(an.stats().stitched, 1);
    }

    /// One fall, tracked twice: the second track starts two frames before the first one's last
    /// detection (the object broke into pieces for a moment). One event, not two.
    #[test]
    fn a_fall_tracked_twice_with_an_overlap_is_one_event() {
        let scene = sim_scene();
        let all = floor_12_drop_until(&scene, 11.0, 3);
        let first: Vec<TrackPoint> = all.iter().copied().filter(|p| p.t_s < 2.0).collect();
        let second: Vec<TrackPoint> = all.iter().copied().filter(|p| p.t_s > 1.9).collect();
        assert!(second[0].t_s < first.last().unwrap().t_s);
        assert_one_stitched_event_from_floor_12(&scene, first, second);
    }

    /// A candidate with its box at `x0..=x1`, `y0..=y1` and the given peak contrast.
    fn candidate(x0: u32, y0: u32, x1: u32, y1: u32, peak: f32) -> Candidate {
        Candidate {
            x_px: f64::from(x0 + x1) / 2.0,
            y_px: f64::from(y0 + y1) / 2.0,
            x_min_px: x0,
            y_min_px: y0,
            x_max_px: x1,
            y_max_px: y1,
            area_px: (x1 - x0 + 1) * (y1 - y0 + 1),
            mass: 0.0,
            contrast: peak,
            peak_contrast: peak,
            polarity: crate::motion::Polarity::Brighter,
            length_px: 2.0,
            width_px: 2.0,
            orientation_rad: 0.0,
            fragments: 1,
        }
    }

    #[test]
    fn the_change_gate_keeps_a_moving_object_and_drops_static_texture() {
        let (w, h) = (32usize, 32usize);
        // A textured background (what the background model may get wrong after a key frame),
        // identical in both frames, as H.264 copies an unchanged block.
        let bg: Vec<u8> = (0..w * h).map(|i| (40 + (i * 7919) % 50) as u8).collect();
        let mut prev = bg.clone();
        let mut cur = bg.clone();
        // A 2 x 2 object of contrast 60: at (5, 5) before, at (6, 8) now.
        for (img, (x, y)) in [(&mut prev, (5, 5)), (&mut cur, (6, 8))] {
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                img[(y + dy) * w + x + dx] = 200;
            }
        }
        let (cur, prev) = (Luma::new(&cur, w, h, w), Luma::new(&prev, w, h, w));
        let gate = AnalysisConfig::default().change_gate();
        assert!(
            gate.passes(&cur, &prev, &candidate(6, 8, 7, 9, 60.0)),
            "the object"
        );
        assert!(
            !gate.passes(&cur, &prev, &candidate(20, 20, 22, 22, 30.0)),
            "unchanged texture"
        );
        // A small change does not carry a strong candidate (a ghost whose pixels barely moved).
        let mut nudged = bg.clone();
        nudged[21 * w + 21] += 5;
        let nudged = Luma::new(&nudged, w, h, w);
        let prev_bg = Luma::new(&bg, w, h, w);
        assert!(!gate.passes(&nudged, &prev_bg, &candidate(20, 20, 22, 22, 60.0)));
        assert!(gate.passes(&nudged, &prev_bg, &candidate(20, 20, 22, 22, 8.0)));
        // Off: everything passes.
        let off = ChangeGate {
            min_grey: 0.0,
            frac_of_peak: 0.0,
        };
        assert!(off.passes(&cur, &prev, &candidate(20, 20, 22, 22, 30.0)));
    }

    /// A fall seen for its first 0.35 s (too short to call), then hidden for 0.75 s (a balcony),
    /// then seen again falling fast (alone, it entered the picture at full speed): neither part is
    /// a fall on its own; together they are one, from the right floor.
    #[test]
    fn a_fall_whose_parts_are_not_falls_alone_is_stitched() {
        let scene = sim_scene();
        let release = [scene.bay_centre_m(3), scene.floor_base_m(12) + 1.2, 0.5];
        let all = observed(&scene, &FallingObject::drop(1.0, release, 35.0), 11.0, 7);
        let first: Vec<TrackPoint> = all.iter().copied().filter(|p| p.t_s < 1.4).collect();
        let rest: Vec<TrackPoint> = all.iter().copied().filter(|p| p.t_s > 2.1).collect();
        let facade = sim_facade(&scene);
        assert!(matches!(
            assess(&facade, &first).verdict,
            Verdict::Reject(_)
        ));
        assert!(matches!(assess(&facade, &rest).verdict, Verdict::Reject(_)));
        assert_one_stitched_event_from_floor_12(&scene, first, rest);
    }

    /// A drop from floor 12 (bay 3) of the judging tests' scene, as tracked until `until_s`
    /// (released at 1 s), with noise seeded by `seed`.
    fn floor_12_drop_until(scene: &Scene, until_s: f64, seed: u64) -> Vec<TrackPoint> {
        let release = [scene.bay_centre_m(3), scene.floor_base_m(12) + 1.2, 0.5];
        let all = observed(scene, &FallingObject::drop(1.0, release, 35.0), 11.0, seed);
        all.into_iter().filter(|p| p.t_s < until_s).collect()
    }

    /// The events of one track judged whole ([`CameraAnalysis::judge_track`]) by a fresh
    /// analysis of `scene`.
    fn events_of_track(scene: &Scene, points: Vec<TrackPoint>) -> Vec<Finding> {
        let mut an = sim_analysis(scene);
        an.judge_track(1, points);
        let mut out = Vec::new();
        an.release_pending(true, &mut out);
        out
    }

    /// A fall tracked for 1.6 s whose track then coasted 0.3 s and picked up three detections of
    /// something else off to the side: the whole is not a fall, the track before the gap is,
    /// from the right floor.
    #[test]
    fn a_track_that_picked_up_something_else_after_a_gap_is_judged_without_it() {
        let scene = sim_scene();
        let mut points = floor_12_drop_until(&scene, 1.6, 9);
        let last = *points.last().unwrap();
        for k in 0..3 {
            points.push(TrackPoint {
                t_s: last.t_s + 0.32 + 0.04 * k as f64,
                x_px: last.x_px - 70.0 - 6.0 * k as f64,
                y_px: last.y_px + 20.0 + 2.0 * k as f64,
                ..last
            });
        }
        assert!(
            matches!(
                assess(&sim_facade(&scene), &points).verdict,
                Verdict::Reject(_)
            ),
            "the whole track is not a fall"
        );
        let out = events_of_track(&scene, points);
        assert_eq!(out.len(), 1, "one event");
        assert_eq!(out[0].event.origin.floor, 12);
    }

    /// A fall tracked for 0.6 s whose object then went behind a tree: the track coasted three
    /// frames and took a branch for its last two points, standing still where the object had
    /// been heading. The whole is not a fall; cut after the short coast, its head is, from the
    /// right floor. (A cut only after gaps of 0.2 s or more would keep the branch.)
    #[test]
    fn a_track_that_took_a_still_thing_after_a_short_coast_is_judged_without_it() {
        let scene = sim_scene();
        let mut points = floor_12_drop_until(&scene, 1.6, 5);
        let last = *points.last().unwrap();
        for dt_s in [0.16, 0.24] {
            points.push(TrackPoint {
                t_s: last.t_s + dt_s,
                ..last
            });
        }
        let facade = sim_facade(&scene);
        assert!(
            matches!(assess(&facade, &points).verdict, Verdict::Reject(_)),
            "the whole track is not a fall"
        );
        assert_eq!(
            coasted_cuts(&points, SPLIT_MAX_TAIL_POINTS),
            vec![points.len() - 2]
        );
        let out = events_of_track(&scene, points);
        assert_eq!(out.len(), 1, "one event");
        assert_eq!(out[0].event.origin.floor, 12);
    }

    /// Only coasts of at least two missed frames near the end of a track are places to cut it.
    #[test]
    fn a_track_is_cut_only_after_a_coast_near_its_end() {
        let mut points = fall_points(0.0, 20);
        assert!(coasted_cuts(&points, 4).is_empty(), "no coast");
        // One missed frame (a 0.08 s gap) is not a coast to cut at; two are.
        for p in &mut points[17..] {
            p.t_s += 0.04;
        }
        assert!(coasted_cuts(&points, 4).is_empty());
        for p in &mut points[18..] {
            p.t_s += 0.08;
        }
        assert_eq!(coasted_cuts(&points, 4), vec![18]);
        // A coast with more than `max_tail` points after it is the rest of the track.
        assert!(coasted_cuts(&points, 1).is_empty());
    }

    /// A drop released at floor 24 of bay `bay` at `t0_s`, far above the picture of `scene`
    /// (floors 3 to 13 in view): it enters the picture already falling fast, as a rain drop near
    /// the camera does.
    fn fast_entry(scene: &Scene, bay: u32, t0_s: f64, seed: u64) -> Vec<TrackPoint> {
        let release = [scene.bay_centre_m(bay), scene.floor_base_m(24), 0.5];
        observed(
            scene,
            &FallingObject::drop(t0_s, release, 40.0),
            t0_s + 8.0,
            seed,
        )
    }

    /// Heavy rain near the camera chains drops into tracks that enter the picture already
    /// falling fast and fit a fall from high above. One such track alone is a fall (an object from
    /// above the picture); four within a few seconds are rain, and none is reported.
    #[test]
    fn in_rain_tracks_entering_at_full_speed_are_not_falls() {
        let scene = sim_scene();
        let fast = |bay, t0_s, seed| fast_entry(&scene, bay, t0_s, seed);
        let alone = fast(2, 0.0, 1);
        let a = assess(&sim_facade(&scene), &alone);
        assert!(matches!(a.verdict, Verdict::Fall(_)), "{:?}", a.features);
        assert!(
            entry_speed_m_s(&a.features) >= RAIN_ENTRY_M_S,
            "{:?}",
            a.features
        );

        let mut dry = sim_analysis(&scene);
        dry.judge_points(1, alone, Source::Tracker);
        let mut out = Vec::new();
        dry.release_pending(true, &mut out);
        assert_eq!(out.len(), 1, "dry: the fall is reported");

        let mut wet = sim_analysis(&scene);
        for k in 0..4u64 {
            wet.judge_points(
                k,
                fast(1 + k as u32, 0.4 * k as f64, 10 + k),
                Source::Tracker,
            );
        }
        let mut out = Vec::new();
        wet.release_pending(true, &mut out);
        assert!(out.is_empty(), "rain: {} events", out.len());
        assert_eq!(wet.stats().rejected.get("Rain"), Some(&4));
    }

    /// In rain, a drop's track may end in two fragments, neither a fall alone, that join into
    /// one: the joined fall entered the picture at full speed and is rain like the others.
    #[test]
    fn in_rain_joined_fragments_entering_at_full_speed_are_not_falls() {
        let scene = sim_scene();
        let fast = |bay, t0_s, seed| fast_entry(&scene, bay, t0_s, seed);
        let drop = fast(4, 1.2, 20);
        let (head, tail) = (drop[..6].to_vec(), drop[6..12].to_vec());
        let facade = sim_facade(&scene);
        for part in [&head, &tail] {
            let a = assess(&facade, part);
            assert!(!matches!(a.verdict, Verdict::Fall(_)), "{:?}", a.features);
        }
        let joined = [head.as_slice(), &tail].concat();
        let a = assess(&facade, &joined);
        assert!(matches!(a.verdict, Verdict::Fall(_)), "{:?}", a.features);
        assert!(entry_speed_m_s(&a.features) >= RAIN_ENTRY_M_S);

        let run = |raining: bool| {
            let mut an = sim_analysis(&scene);
            if raining {
                for k in 0..4u64 {
                    an.judge_points(
                        k,
                        fast(1 + k as u32, 0.4 * k as f64, 10 + k),
                        Source::Tracker,
                    );
                }
            }
            an.judge_points(10, head.clone(), Source::Tracker);
            an.judge_points(11, tail.clone(), Source::Tracker);
            let mut out = Vec::new();
            an.release_pending(true, &mut out);
            (out.len(), an.stats().rejected.get("Rain").copied())
        };
        assert_eq!(run(false), (1, None), "dry: the joined fall is reported");
        assert_eq!(run(true), (0, Some(5)), "rain: the joined fall is rain too");
    }

    /// The tracker and the search both follow one fall: one event, whichever ends first, and of
    /// a pending pair the tracker's is the one written.
    #[test]
    fn a_fall_found_by_the_tracker_and_the_search_is_one_event() {
        let scene = sim_scene();
        let all = floor_12_drop_until(&scene, 3.0, 4);
        // The search's track: every second detection (it keeps what it sees, sparse or not).
        let sparse: Vec<TrackPoint> = all.iter().copied().step_by(2).collect();
        for search_first in [false, true] {
            let mut an = sim_analysis(&scene);
            if search_first {
                an.judge_points(SEARCH_ID_BASE + 1, sparse.clone(), Source::Search);
                an.judge_points(1, all.clone(), Source::Tracker);
            } else {
                an.judge_points(1, all.clone(), Source::Tracker);
                an.judge_points(SEARCH_ID_BASE + 1, sparse.clone(), Source::Search);
            }
            let mut out = Vec::new();
            an.release_pending(true, &mut out);
            assert_eq!(out.len(), 1, "one event (search first: {search_first})");
            assert_eq!(out[0].event.track.len(), all.len(), "the tracker's");
            assert_eq!(an.stats().duplicates, 1);
            // A later track of the same object, after the event was written, is no new event.
            an.judge_points(SEARCH_ID_BASE + 2, sparse.clone(), Source::Search);
            an.release_pending(true, &mut out);
            assert_eq!(out.len(), 1, "written once");
        }
        // Another object's fall at the same time is its own event.
        let mut an = sim_analysis(&scene);
        let mut other = sparse.clone();
        for p in &mut other {
            p.x_px += 150.0;
        }
        an.judge_points(1, all.clone(), Source::Tracker);
        an.judge_points(SEARCH_ID_BASE + 1, other, Source::Search);
        let mut out = Vec::new();
        an.release_pending(true, &mut out);
        assert_eq!(out.len(), 2);
    }

    /// While many tracks descend steadily without accelerating (drops followed one by one), the
    /// search's fall-like chains of drops are not falls; the tracker's own falls still are.
    #[test]
    fn search_tracks_are_not_trusted_while_drops_stream_down() {
        let scene = sim_scene();
        let fall = floor_12_drop_until(&scene, 3.0, 5);
        // Drops: straight, steady descents of two storeys each, in 3 s.
        let drop = |k: u32| -> Vec<TrackPoint> {
            let x_m = scene.bay_centre_m(1 + k % 5);
            let path: Vec<TrackPoint> = (0..20)
                .map(|i| {
                    let t_s = 0.1 * f64::from(k) + f64::from(i) * 0.04;
                    let h_m = scene.floor_base_m(9) - 8.0 * (t_s - 0.1 * f64::from(k));
                    let px = scene.camera.project([x_m, h_m, 0.3]);
                    TrackPoint {
                        t_s,
                        x_px: px[0],
                        y_px: px[1],
                        w_px: 2.0,
                        h_px: 4.0,
                    }
                })
                .collect();
            path
        };
        let mut dry = sim_analysis(&scene);
        dry.judge_points(SEARCH_ID_BASE + 1, fall.clone(), Source::Search);
        let mut out = Vec::new();
        dry.release_pending(true, &mut out);
        assert_eq!(
            out.len(),
            1,
            "a clear fall found by the search alone is an event"
        );
        let mut wet = sim_analysis(&scene);
        for k in 0..DRIZZLE_MIN_TRACKS as u32 {
            wet.judge_points(u64::from(k) + 10, drop(k), Source::Tracker);
        }
        assert_eq!(wet.steady_descents.len(), DRIZZLE_MIN_TRACKS);
        wet.judge_points(SEARCH_ID_BASE + 1, fall.clone(), Source::Search);
        let mut out = Vec::new();
        wet.release_pending(true, &mut out);
        assert!(out.is_empty(), "{} events", out.len());
        wet.judge_points(1, fall, Source::Tracker);
        wet.release_pending(true, &mut out);
        assert_eq!(out.len(), 1, "the tracker's fall is");
    }

    /// A late stretch of a fall, seen for half a second, is nearly straight: the physics accepts
    /// it from the tracker, but from the search (sparse sightings) it needs plainer curvature.
    #[test]
    fn a_search_track_with_little_curvature_is_not_a_fall() {
        let scene = sim_scene();
        let facade = sim_facade(&scene);
        let all = floor_12_drop_until(&scene, 11.0, 6);
        let stretch = (0..40)
            .map(|k| {
                let t0_s = 0.5 + 0.05 * f64::from(k);
                let pts: Vec<TrackPoint> = all
                    .iter()
                    .copied()
                    .filter(|p| p.t_s >= t0_s && p.t_s < t0_s + 0.6)
                    .collect();
                pts
            })
            .find(|pts| {
                let a = assess(&facade, pts);
                matches!(a.verdict, Verdict::Fall(_))
                    && a.features.accel_ratio < SEARCH_MIN_ACCEL_RATIO
            })
            .expect("a stretch the physics accepts with little curvature");
        let mut out = Vec::new();
        let mut an = sim_analysis(&scene);
        an.judge_points(SEARCH_ID_BASE + 1, stretch.clone(), Source::Search);
        an.release_pending(true, &mut out);
        assert!(out.is_empty());
        assert_eq!(an.stats().rejected.get("WeakCurvature"), Some(&1));
        let mut an = sim_analysis(&scene);
        an.judge_points(1, stretch, Source::Tracker);
        an.release_pending(true, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn same_object_compares_paths_over_their_shared_time() {
        let a = fall_points(0.0, 20);
        let b: Vec<TrackPoint> = fall_points(0.2, 20).into_iter().step_by(3).collect();
        assert!(same_object(&a, &b) && same_object(&b, &a));
        let mut beside = b.clone();
        for p in &mut beside {
            p.x_px += 40.0;
        }
        assert!(!same_object(&a, &beside));
        // No shared time: not the same object as far as this test can tell.
        assert!(!same_object(&a, &fall_points(1.0, 10)));
    }

    #[test]
    fn wall_time_is_rfc3339_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_750_452_480);
        assert_eq!(format_wall_time(t), "2026-11-27T03:34:12.480Z");
    }
}
