//! The person search at the release point, run by the evidence thread: was somebody at that
//! window or balcony in the seconds before the object fell?
//!
//! Why here: the release time and point are known only once a fall is judged, after its track
//! ended, so the frames before the release are long gone from the analysis thread. The camera's
//! pre-roll ring still holds their packets, and the evidence request copies them out anyway. So
//! the evidence thread, when it accepts an event, decodes just the frames it needs (from the last
//! keyframe at or before the earliest one, one decoder thread, nothing re-encoded), takes the
//! frame nearest each of `before_release_s` before the release, crops the window around the
//! release point out of each (YUV to RGB for the window only, as every detector crop) and hands
//! the crops to the shared detector pool, which never blocks (a busy pool sheds; shed crops are
//! retried on every poll). Nothing is kept or done per frame for it: ingest and the per-frame
//! analysis never see it, and it serves all cameras of the process.
//!
//! The answers are collected when the event's directory is written (normally they are in long
//! before: the clip waits for its post-roll), waiting at most `wait_ms` from the search's start.
//! The event then gets `persons` (sightings, best first; `[]` when nobody was seen),
//! `persons_floor` / `persons_bay` (the best sighting's box centre on the facade), and
//! `persons_error` when the search failed (no `persons` then) or searched only some of its
//! frames. With the detector off there is no searcher and none of these fields appear.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bail;
use crate::detect::PersonSearch;
use crate::detect::crop::crop_frame;
use crate::detect::pool::{CameraDetector, DetectReply, DetectRequest, RequestKind, Submitted};
use crate::error::Result;
use crate::events::Event;
use crate::ingest::{Frame, Packet, StreamInfo};
use crate::physics::FacadeModel;

/// Name of the detector pool handle the evidence thread submits person searches under; its
/// counters appear under this name in `DetectPool::stats()`, and it has its own fair share of
/// the queue, so a camera in heavy rain does not crowd the person searches out.
pub const PERSONS_HANDLE: &str = "persons";

/// Longest pause between two retries of crops the pool shed, while waiting.
const RETRY: Duration = Duration::from_millis(20);

/// The evidence thread's person search: its configuration, its handle on the detector pool and
/// the searches in flight. Made by the pipeline when the detector runs; given to
/// [`EvidenceService::spawn_with_persons`](super::EvidenceService::spawn_with_persons).
pub struct PersonSearcher {
    cfg: PersonSearch,
    det: CameraDetector,
    jobs: HashMap<u64, Job>,
    next_key: u64,
}

impl std::fmt::Debug for PersonSearcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonSearcher")
            .field("jobs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

/// One event's search.
struct Job {
    event: String,
    /// Frames that should have been searched (distinct frames found plus times not found).
    wanted: usize,
    /// Crops the pool has not accepted yet (it was busy).
    unsent: Vec<DetectRequest>,
    /// Crops accepted whose answers have not come yet.
    in_flight: usize,
    replies: Vec<DetectReply>,
    /// Why frames could not be searched.
    problems: Vec<String>,
    facade: Arc<FacadeModel>,
    started: Instant,
    deadline: Instant,
    /// Wall time of decoding and cropping.
    prepare: Duration,
    /// When the last answer arrived.
    answered: Option<Instant>,
}

impl PersonSearcher {
    /// A searcher with `cfg` (`[detect.persons]`) submitting through `det` (normally
    /// `pool.camera(PERSONS_HANDLE)`).
    pub fn new(cfg: PersonSearch, det: CameraDetector) -> Self {
        PersonSearcher {
            cfg,
            det,
            jobs: HashMap::new(),
            next_key: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PersonSearch {
        &self.cfg
    }

    /// Starts the search for `event`, released at `release_t_s` at `event.origin.px`, in
    /// `packets` (decode order, from a keyframe, reaching back before the release). Decodes and
    /// crops now, submits without blocking; returns the key for [`PersonSearcher::finish`].
    pub(crate) fn start(
        &mut self,
        event: &Event,
        release_t_s: f64,
        facade: Arc<FacadeModel>,
        stream: &StreamInfo,
        packets: &[Packet],
    ) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        let started = Instant::now();
        let mut job = Job {
            event: event.id.clone(),
            wanted: 0,
            unsent: Vec::new(),
            in_flight: 0,
            replies: Vec::new(),
            problems: Vec::new(),
            facade,
            started,
            deadline: started + Duration::from_millis(self.cfg.wait_ms),
            prepare: Duration::ZERO,
            answered: None,
        };
        match self.prepare(key, event, release_t_s, &job.facade, stream, packets) {
            Ok((requests, missing)) => {
                job.wanted = requests.len() + missing;
                if missing > 0 {
                    job.problems
                        .push(format!("{missing} frame(s) not in the pre-roll"));
                }
                job.unsent = requests;
            }
            Err(e) => job.problems.push(e.to_string().replace('\n', " ")),
        }
        job.prepare = started.elapsed();
        send(&self.det, &mut job);
        self.jobs.insert(key, job);
        key
    }

    /// Decodes the frames nearest the sample times and crops the window out of each.
    fn prepare(
        &self,
        key: u64,
        event: &Event,
        release_t_s: f64,
        facade: &FacadeModel,
        stream: &StreamInfo,
        packets: &[Packet],
    ) -> Result<(Vec<DetectRequest>, usize)> {
        let times = self.cfg.sample_times(release_t_s);
        if times.is_empty() {
            bail!(
                InvalidInput,
                "no frame before the release (at {release_t_s:.2} s) to search"
            );
        }
        let frame_dt_s = if stream.fps > 0.0 {
            1.0 / stream.fps
        } else {
            0.04
        };
        let (frames, missing) = decode_near(stream, packets, &times, 1.5 * frame_dt_s)?;
        let Some(first) = frames.first() else {
            bail!(
                InvalidInput,
                "the pre-roll holds none of the frames before the release"
            );
        };
        let luma = first.luma();
        let o = &event.origin;
        let px_per_m = facade.px_per_m_at(o.x_m, o.height_m);
        let window = self
            .cfg
            .window(o.px, px_per_m, luma.width() as u32, luma.height() as u32);
        let px = self.det.input_px();
        let requests = frames
            .iter()
            .map(|f| DetectRequest {
                track_id: key,
                t_s: f.pts_s,
                kind: RequestKind::Person,
                window,
                crop: crop_frame(f, &window, px),
            })
            .collect();
        Ok((requests, missing))
    }

    /// Takes the detector's answers that arrived and retries crops the pool shed. Never blocks.
    pub(crate) fn pump(&mut self) {
        let replies: Vec<DetectReply> = self.det.replies().try_iter().collect();
        for r in replies {
            self.route(r);
        }
        for job in self.jobs.values_mut() {
            if !job.unsent.is_empty() {
                send(&self.det, job);
            }
        }
    }

    fn route(&mut self, r: DetectReply) {
        if let Some(job) = self.jobs.get_mut(&r.track_id) {
            job.in_flight = job.in_flight.saturating_sub(1);
            job.replies.push(r);
            job.answered = Some(Instant::now());
        }
    }

    /// Waits (at most until the search's deadline) for the search `key`'s answers and writes
    /// its outcome into `event`.
    pub(crate) fn finish(&mut self, key: u64, event: &mut Event) {
        loop {
            self.pump();
            let Some(job) = self.jobs.get(&key) else {
                return;
            };
            if job.unsent.is_empty() && job.in_flight == 0 {
                break;
            }
            let left = job.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if job.unsent.is_empty() {
                if let Ok(r) = self.det.replies().recv_timeout(left) {
                    self.route(r);
                }
            } else {
                std::thread::sleep(left.min(RETRY));
            }
        }
        let Some(job) = self.jobs.remove(&key) else {
            return;
        };
        self.conclude(job, event);
    }

    /// The outcome of a finished (or overdue) search, into the event's fields.
    fn conclude(&self, mut job: Job, event: &mut Event) {
        let mut detector_errors: Vec<&str> = job
            .replies
            .iter()
            .filter_map(|r| r.error.as_deref())
            .collect();
        detector_errors.sort_unstable();
        detector_errors.dedup();
        for e in detector_errors {
            job.problems.push(format!("detector: {e}"));
        }
        let unanswered = job.unsent.len() + job.in_flight;
        if unanswered > 0 {
            job.problems.push(format!(
                "{unanswered} frame(s) not searched within {} ms (detector busy)",
                self.cfg.wait_ms
            ));
        }
        let searched: Vec<&DetectReply> =
            job.replies.iter().filter(|r| r.error.is_none()).collect();
        let detector_ms: f64 = searched.iter().map(|r| r.infer_ms).sum();
        if searched.is_empty() {
            let why = if job.problems.is_empty() {
                "no frame searched".to_string()
            } else {
                job.problems.join("; ")
            };
            tracing::warn!(event = %job.event, "person search failed: {why}");
            event.persons_error = Some(format!("person search: {why}"));
            return;
        }
        let sightings = self.cfg.sightings(searched.iter().copied());
        if let Some(best) = sightings.first() {
            let [x, y, w, h] = best.box_px;
            let p = job.facade.image_to_facade([x + w / 2.0, y + h / 2.0]);
            let calib = job.facade.calibration();
            event.persons_floor = Some(calib.floor_at(p.height_m));
            event.persons_bay = Some(calib.bay_at(p.x_m));
        }
        if !job.problems.is_empty() {
            event.persons_error = Some(format!(
                "person search: searched {} of {} frames: {}",
                searched.len(),
                job.wanted,
                job.problems.join("; ")
            ));
        }
        tracing::debug!(
            event = %job.event,
            frames = searched.len(),
            persons = sightings.len(),
            best_score = sightings.first().map(|s| s.score),
            prepare_ms = job.prepare.as_secs_f64() * 1e3,
            detector_ms,
            answered_ms = job
                .answered
                .map(|t| t.duration_since(job.started).as_secs_f64() * 1e3),
            "person search"
        );
        event.persons = Some(sightings);
    }
}

/// Offers the job's unsent crops to the pool; what it sheds stays for the next try.
fn send(det: &CameraDetector, job: &mut Job) {
    let mut left = Vec::new();
    for req in job.unsent.drain(..) {
        match det.submit(req.clone()) {
            Submitted::Queued => job.in_flight += 1,
            Submitted::Shed => left.push(req),
            Submitted::Disabled | Submitted::Closed => {
                job.problems.push("the detector has shut down".into());
                left.clear();
                break;
            }
        }
    }
    job.unsent = left;
}

/// Decodes from `packets` (decode order) the frame nearest each of `times_s`, starting at the
/// last keyframe at or before the earliest time (one decoder thread; decoding stops after the
/// latest). A time whose nearest frame is farther than `tolerance_s` gets none (the pre-roll
/// does not reach back that far). Returns the distinct frames in time order and how many times
/// got none.
pub(crate) fn decode_near(
    stream: &StreamInfo,
    packets: &[Packet],
    times_s: &[f64],
    tolerance_s: f64,
) -> Result<(Vec<Rc<Frame>>, usize)> {
    let mut times: Vec<f64> = times_s.iter().copied().filter(|t| t.is_finite()).collect();
    times.sort_by(f64::total_cmp);
    let Some(&earliest) = times.first() else {
        return Ok((Vec::new(), 0));
    };

    struct Pick {
        times: Vec<f64>,
        tolerance_s: f64,
        /// Index of the first time not yet given a frame.
        next: usize,
        prev: Option<Rc<Frame>>,
        chosen: Vec<Rc<Frame>>,
        missing: usize,
        decoded: u64,
    }
    impl Pick {
        fn choose(&mut self, f: Option<Rc<Frame>>, t: f64) {
            match f {
                Some(f) if (f.pts_s - t).abs() <= self.tolerance_s => {
                    if !self.chosen.last().is_some_and(|c| Rc::ptr_eq(c, &f)) {
                        self.chosen.push(f);
                    }
                }
                _ => self.missing += 1,
            }
        }
        /// Takes the next decoded frame (presentation order); true when every time has one.
        fn push(&mut self, cur: Frame) -> bool {
            self.decoded += 1;
            let cur = Rc::new(cur);
            while self.next < self.times.len() && self.times[self.next] < cur.pts_s {
                let t = self.times[self.next];
                let prev_nearer = self
                    .prev
                    .as_ref()
                    .is_some_and(|p| t - p.pts_s <= cur.pts_s - t);
                let pick = if prev_nearer {
                    self.prev.clone()
                } else {
                    Some(cur.clone())
                };
                self.choose(pick, t);
                self.next += 1;
            }
            self.prev = Some(cur);
            self.next == self.times.len()
        }
        fn end(&mut self) {
            while self.next < self.times.len() {
                let t = self.times[self.next];
                self.choose(self.prev.clone(), t);
                self.next += 1;
            }
        }
    }

    let mut pick = Pick {
        times,
        tolerance_s,
        next: 0,
        prev: None,
        chosen: Vec::new(),
        missing: 0,
        decoded: 0,
    };
    let mut done = false;
    super::decode::decode_from_keyframe(
        stream,
        packets,
        earliest,
        "person search",
        |video, pts_s| {
            done = pick.push(Frame::from_av(pick.decoded, pts_s, video));
            done
        },
    )?;
    if !done {
        pick.end();
    }
    tracing::trace!(
        decoded = pick.decoded,
        frames = pick.chosen.len(),
        "person search frames"
    );
    Ok((pick.chosen, pick.missing))
}

#[cfg(test)]
mod tests;
