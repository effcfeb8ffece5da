//! [`DetectPool`]: the detector service shared by all cameras.
//!
//! N worker threads (`detect-<n>`), each owning its own [`Detector`] (an ONNX session runs with
//! `&mut self`), take requests from one bounded queue. A worker wakes on a request, takes up to
//! `max_batch - 1` more that are already queued, runs them as one batch (one model run when the
//! model's batch is dynamic, else one run each) and replies to each request's camera on that
//! camera's own channel.
//!
//! Nothing here blocks a camera: [`CameraDetector::submit`] is a `try_send`; when the queue is
//! full, or the camera already has `max_queued_per_camera` requests waiting or running (so one
//! camera in heavy rain cannot crowd the others out of the shared queue), the request is shed and
//! counted for that camera. Replies go with `try_send` too: a camera
//! that stops reading loses replies (counted), never stalls a worker.
//!
//! Shutdown: dropping the pool (or [`DetectPool::shutdown`]) closes the queue; workers finish the
//! batch in hand and exit, and are joined. Workers also exit when every sender is gone. Requests
//! still queued are dropped. Camera handles outlive the pool safely: their submits then return
//! [`Submitted::Closed`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError, bounded, select};
use image::RgbImage;
use serde::Serialize;

use crate::detect::crop::{BoxPx, CropWindow, crop_frame};
use crate::detect::{DetectConfig, Detection, Detector};
use crate::err;
use crate::error::Result;
use crate::ingest::Frame;

/// What a request is for (the reply carries it back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A crop around a candidate track: label and bird veto.
    Label,
    /// A window around a release point before the release: person search.
    Person,
}

/// One crop to run the detector on.
#[derive(Clone, Debug)]
pub struct DetectRequest {
    /// Track id (or, for person searches, the caller's event key).
    pub track_id: u64,
    /// Media time of the frame the crop is from, seconds.
    pub t_s: f64,
    /// What it is for.
    pub kind: RequestKind,
    /// Where the crop is in the frame.
    pub window: CropWindow,
    /// The crop (normally the detector's input size, square).
    pub crop: RgbImage,
}

/// The detector's answer to one request.
#[derive(Clone, Debug)]
pub struct DetectReply {
    /// The camera that asked.
    pub camera: Arc<str>,
    /// From the request.
    pub track_id: u64,
    /// From the request.
    pub t_s: f64,
    /// From the request.
    pub kind: RequestKind,
    /// From the request.
    pub window: CropWindow,
    /// Side of the crop the boxes refer to, pixels.
    pub crop_px: u32,
    /// Detections, boxes in crop pixels (see [`DetectReply::frame_box`]). Empty on error.
    pub detections: Vec<Detection>,
    /// Why the detector failed on this request, if it did.
    pub error: Option<String>,
    /// Requests in the model run this one was part of.
    pub batch: usize,
    /// Wall time of that run divided by its size, milliseconds.
    pub infer_ms: f64,
}

impl DetectReply {
    /// A detection's box in frame pixels.
    pub fn frame_box(&self, d: &Detection) -> BoxPx {
        self.window.to_frame(d.box_px, self.crop_px)
    }
}

/// What happened to a submitted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Queued; a reply will come on the camera's channel.
    Queued,
    /// The queue was full: dropped and counted.
    Shed,
    /// The detector is turned off: nothing to do.
    Disabled,
    /// The pool has shut down.
    Closed,
}

/// Counters of one camera.
#[derive(Debug, Default)]
struct CameraCounters {
    submitted: AtomicU64,
    shed: AtomicU64,
    in_flight: AtomicU64,
    completed: AtomicU64,
    errors: AtomicU64,
    replies_dropped: AtomicU64,
}

/// A snapshot of one camera's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DetectStats {
    /// Requests accepted into the queue.
    pub submitted: u64,
    /// Requests shed because the queue, or the camera's share of it, was full.
    pub shed: u64,
    /// Requests queued or running now.
    pub in_flight: u64,
    /// Requests the detector ran (with or without error).
    pub completed: u64,
    /// Requests the detector failed on.
    pub errors: u64,
    /// Replies dropped because the camera's reply channel was full.
    pub replies_dropped: u64,
}

impl CameraCounters {
    fn snapshot(&self) -> DetectStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DetectStats {
            submitted: l(&self.submitted),
            shed: l(&self.shed),
            in_flight: l(&self.in_flight),
            completed: l(&self.completed),
            errors: l(&self.errors),
            replies_dropped: l(&self.replies_dropped),
        }
    }
}

struct Job {
    camera: Arc<str>,
    req: DetectRequest,
    reply: Sender<DetectReply>,
    counters: Arc<CameraCounters>,
}

/// The detector pool shared by all cameras.
pub struct DetectPool {
    queue: Option<Sender<Job>>,
    stop: Option<Sender<()>>,
    workers: Vec<JoinHandle<()>>,
    cameras: std::sync::Mutex<Vec<(Arc<str>, Arc<CameraCounters>)>>,
    enabled: bool,
    input_px: u32,
    crop_scale: f32,
    min_crop_px: f32,
    reply_depth: usize,
    max_queued_per_camera: u64,
}

impl std::fmt::Debug for DetectPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectPool")
            .field("workers", &self.workers.len())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl DetectPool {
    /// Loads the configured model once per worker and starts the workers. With the detector
    /// turned off, no model is loaded and no thread started.
    pub fn from_config(cfg: &DetectConfig) -> Result<Self> {
        if !cfg.is_active() {
            cfg.validate()?;
            return Ok(Self::start(Vec::new(), cfg));
        }
        Ok(Self::start(cfg.build_detectors()?, cfg))
    }

    /// Starts one worker per detector (an empty list makes a disabled pool). Uses `cfg`'s queue,
    /// batch, reply and crop settings.
    pub fn start(detectors: Vec<Box<dyn Detector>>, cfg: &DetectConfig) -> Self {
        let enabled = !detectors.is_empty();
        let input_px = detectors.first().map_or(0, |d| d.input_px());
        let (tx, rx) = bounded::<Job>(cfg.queue_depth.max(1));
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let max_batch = cfg.max_batch.max(1);
        let workers = detectors
            .into_iter()
            .enumerate()
            .filter_map(|(n, det)| {
                let (rx, stop_rx) = (rx.clone(), stop_rx.clone());
                std::thread::Builder::new()
                    .name(format!("detect-{n}"))
                    .spawn(move || worker(det, rx, stop_rx, max_batch))
                    .map_err(|e| tracing::error!("cannot start detector thread detect-{n}: {e}"))
                    .ok()
            })
            .collect();
        DetectPool {
            queue: Some(tx),
            stop: Some(stop_tx),
            workers,
            cameras: std::sync::Mutex::new(Vec::new()),
            enabled,
            input_px,
            crop_scale: cfg.crop_scale,
            min_crop_px: cfg.min_crop_px,
            reply_depth: cfg.reply_depth.max(1),
            max_queued_per_camera: cfg.max_queued_per_camera.max(1) as u64,
        }
    }

    /// True when a model runs.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// A handle for camera `id`: its own reply channel and counters. Calling it again for the same
    /// camera (e.g. after a reconnect) gives a new reply channel and the same counters.
    pub fn camera(&self, id: &str) -> CameraDetector {
        let mut cams = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        let (camera, counters) = match cams.iter().find(|(c, _)| &**c == id) {
            Some((c, k)) => (c.clone(), k.clone()),
            None => {
                let entry = (Arc::<str>::from(id), Arc::new(CameraCounters::default()));
                cams.push(entry.clone());
                entry
            }
        };
        let (reply_tx, replies) = bounded(self.reply_depth);
        CameraDetector {
            camera,
            queue: self.queue.clone().filter(|_| self.enabled),
            reply_tx,
            replies,
            counters,
            input_px: self.input_px,
            crop_scale: self.crop_scale,
            min_crop_px: self.min_crop_px,
            max_queued: self.max_queued_per_camera,
        }
    }

    /// Every camera's counters.
    pub fn stats(&self) -> Vec<(String, DetectStats)> {
        let cams = self.cameras.lock().unwrap_or_else(|e| e.into_inner());
        cams.iter()
            .map(|(c, k)| (c.to_string(), k.snapshot()))
            .collect()
    }

    /// Stops the workers (they finish the batch in hand) and waits for them.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.queue.take();
        self.stop.take();
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                tracing::error!("a detector thread panicked");
            }
        }
    }
}

impl Drop for DetectPool {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn worker(mut det: Box<dyn Detector>, rx: Receiver<Job>, stop: Receiver<()>, max_batch: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(job) => batch.push(job),
                Err(_) => return,
            },
            recv(stop) -> _ => return,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let started = Instant::now();
        let result = {
            let images: Vec<&RgbImage> = batch.iter().map(|j| &j.req.crop).collect();
            det.detect(&images)
        };
        let per_ms = started.elapsed().as_secs_f64() * 1000.0 / batch.len() as f64;
        let n = batch.len();
        let (mut results, error) = match result {
            Ok(r) if r.len() == n => (r, None),
            Ok(r) => (
                Vec::new(),
                Some(format!(
                    "detector returned {} results for {n} crops",
                    r.len()
                )),
            ),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if let Some(e) = &error {
            tracing::warn!("{}: {e}", det.name());
        }
        results.resize(n, Vec::new());
        for (job, detections) in batch.drain(..).zip(results) {
            job.counters.completed.fetch_add(1, Ordering::Relaxed);
            job.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
            if error.is_some() {
                job.counters.errors.fetch_add(1, Ordering::Relaxed);
            }
            let reply = DetectReply {
                camera: job.camera,
                track_id: job.req.track_id,
                t_s: job.req.t_s,
                kind: job.req.kind,
                window: job.req.window,
                crop_px: job.req.crop.width(),
                detections,
                error: error.clone(),
                batch: n,
                infer_ms: per_ms,
            };
            if let Err(TrySendError::Full(_)) = job.reply.try_send(reply) {
                job.counters.replies_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One camera's handle on the pool: submit crops, read replies, read counters. Cheap to keep;
/// owned by the camera's analysis thread.
pub struct CameraDetector {
    camera: Arc<str>,
    queue: Option<Sender<Job>>,
    reply_tx: Sender<DetectReply>,
    replies: Receiver<DetectReply>,
    counters: Arc<CameraCounters>,
    input_px: u32,
    crop_scale: f32,
    min_crop_px: f32,
    max_queued: u64,
}

impl std::fmt::Debug for CameraDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraDetector")
            .field("camera", &self.camera)
            .finish_non_exhaustive()
    }
}

impl CameraDetector {
    /// True when a model runs (false: submit returns `Disabled`; use physics alone).
    pub fn is_enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// The camera id.
    pub fn camera(&self) -> &str {
        &self.camera
    }

    /// Side of the crops the model wants, pixels.
    pub fn input_px(&self) -> u32 {
        self.input_px
    }

    /// The crop window for an object of `size_px` at (`cx_px`, `cy_px`) in a `frame_w` x
    /// `frame_h` frame: `crop_scale` x its size, at least `min_crop_px`.
    pub fn window(
        &self,
        cx_px: f32,
        cy_px: f32,
        size_px: f32,
        frame_w: u32,
        frame_h: u32,
    ) -> CropWindow {
        CropWindow::around(
            cx_px,
            cy_px,
            size_px,
            self.crop_scale,
            self.min_crop_px,
            frame_w,
            frame_h,
        )
    }

    /// Crops the object at (`cx_px`, `cy_px`, `size_px`) out of `frame` and submits it for a
    /// label. The crop is only built when the queue has room.
    pub fn submit_track(
        &self,
        frame: &Frame,
        track_id: u64,
        cx_px: f32,
        cy_px: f32,
        size_px: f32,
    ) -> Submitted {
        let luma = frame.luma();
        let window = self.window(
            cx_px,
            cy_px,
            size_px,
            luma.width() as u32,
            luma.height() as u32,
        );
        self.submit_window(frame, track_id, RequestKind::Label, window)
    }

    /// Crops `window` out of `frame` and submits it.
    pub fn submit_window(
        &self,
        frame: &Frame,
        track_id: u64,
        kind: RequestKind,
        window: CropWindow,
    ) -> Submitted {
        match &self.queue {
            None => return Submitted::Disabled,
            Some(q)
                if q.is_full()
                    || self.counters.in_flight.load(Ordering::Relaxed) >= self.max_queued =>
            {
                self.counters.shed.fetch_add(1, Ordering::Relaxed);
                return Submitted::Shed;
            }
            Some(_) => {}
        }
        let crop = crop_frame(frame, &window, self.input_px);
        self.submit(DetectRequest {
            track_id,
            t_s: frame.pts_s,
            kind,
            window,
            crop,
        })
    }

    /// Submits a ready crop. Never blocks.
    pub fn submit(&self, req: DetectRequest) -> Submitted {
        let Some(q) = &self.queue else {
            return Submitted::Disabled;
        };
        // Reserve a slot of this camera's share first; give it back if the queue refuses.
        if self.counters.in_flight.fetch_add(1, Ordering::Relaxed) >= self.max_queued {
            self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.counters.shed.fetch_add(1, Ordering::Relaxed);
            return Submitted::Shed;
        }
        let job = Job {
            camera: self.camera.clone(),
            req,
            reply: self.reply_tx.clone(),
            counters: self.counters.clone(),
        };
        match q.try_send(job) {
            Ok(()) => {
                self.counters.submitted.fetch_add(1, Ordering::Relaxed);
                Submitted::Queued
            }
            Err(TrySendError::Full(_)) => {
                self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                self.counters.shed.fetch_add(1, Ordering::Relaxed);
                Submitted::Shed
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
                Submitted::Closed
            }
        }
    }

    /// The camera's replies (read with `try_iter()` each frame, or `recv_timeout`).
    pub fn replies(&self) -> &Receiver<DetectReply> {
        &self.replies
    }

    /// This camera's counters.
    pub fn stats(&self) -> DetectStats {
        self.counters.snapshot()
    }
}

/// Runs `detector` on one request synchronously (no pool): for tools and tests.
pub fn detect_now(
    detector: &mut dyn Detector,
    camera: &str,
    req: DetectRequest,
) -> Result<DetectReply> {
    let started = Instant::now();
    let mut out = detector.detect(&[&req.crop])?;
    let detections = out
        .pop()
        .ok_or_else(|| err!(Internal, "detector returned no result"))?;
    Ok(DetectReply {
        camera: Arc::from(camera),
        track_id: req.track_id,
        t_s: req.t_s,
        kind: req.kind,
        window: req.window,
        crop_px: req.crop.width(),
        detections,
        error: None,
        batch: 1,
        infer_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{BoxPx, Vocab};
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    /// A detector that blocks until the test opens its gate, then finds one "bird" per crop.
    struct GatedDetector {
        gate: Arc<(Mutex<bool>, Condvar)>,
        started: Sender<usize>,
    }

    impl Detector for GatedDetector {
        fn name(&self) -> &str {
            "gated"
        }
        fn input_px(&self) -> u32 {
            16
        }
        fn max_batch(&self) -> usize {
            4
        }
        fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>> {
            let _ = self.started.send(images.len());
            let (lock, cv) = &*self.gate;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            Ok(images
                .iter()
                .map(|_| {
                    vec![Detection {
                        class_id: 14,
                        class: Arc::from("bird"),
                        vocab: Vocab::Bird,
                        score: 0.9,
                        box_px: BoxPx {
                            x: 4.0,
                            y: 4.0,
                            w: 8.0,
                            h: 8.0,
                        },
                    }]
                })
                .collect())
        }
    }

    fn request(track_id: u64) -> DetectRequest {
        DetectRequest {
            track_id,
            t_s: track_id as f64 * 0.04,
            kind: RequestKind::Label,
            window: CropWindow {
                x0_px: 100.0,
                y0_px: 50.0,
                side_px: 32.0,
            },
            crop: RgbImage::new(16, 16),
        }
    }

    #[test]
    fn a_full_queue_sheds_and_counts_per_camera() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (started_tx, started_rx) = bounded(16);
        let det = GatedDetector {
            gate: gate.clone(),
            started: started_tx,
        };
        let cfg = DetectConfig {
            queue_depth: 2,
            max_batch: 1,
            ..Default::default()
        };
        let pool = DetectPool::start(vec![Box::new(det)], &cfg);
        let a = pool.camera("cam-a");
        let b = pool.camera("cam-b");
        // The worker takes the first request and blocks in the detector...
        assert_eq!(a.submit(request(1)), Submitted::Queued);
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        // ... the queue (depth 2) fills, then everything is shed, per camera.
        assert_eq!(a.submit(request(2)), Submitted::Queued);
        assert_eq!(b.submit(request(3)), Submitted::Queued);
        assert_eq!(a.submit(request(4)), Submitted::Shed);
        assert_eq!(b.submit(request(5)), Submitted::Shed);
        assert_eq!(b.submit(request(6)), Submitted::Shed);
        assert_eq!(a.stats().shed, 1);
        assert_eq!(b.stats().shed, 2);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let mut got_a: Vec<u64> = (0..2)
            .map(|_| {
                a.replies()
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap()
                    .track_id
            })
            .collect();
        got_a.sort();
        assert_eq!(got_a, vec![1, 2]);
        let rb = b.replies().recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((rb.track_id, &*rb.camera), (3, "cam-b"));
        // Boxes map back to frame pixels: crop 16 px for a 32 px window at (100, 50).
        assert_eq!(
            rb.frame_box(&rb.detections[0]),
            BoxPx {
                x: 108.0,
                y: 58.0,
                w: 16.0,
                h: 16.0
            }
        );
        let stats = pool.stats();
        assert_eq!(stats.len(), 2);
        let sa = stats.iter().find(|s| s.0 == "cam-a").unwrap().1;
        assert_eq!((sa.submitted, sa.shed, sa.completed), (2, 1, 2));
        pool.shutdown();
        assert_eq!(a.submit(request(7)), Submitted::Closed);
    }

    #[test]
    fn one_camera_cannot_take_the_whole_queue() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (started_tx, started_rx) = bounded(16);
        let det = GatedDetector {
            gate: gate.clone(),
            started: started_tx,
        };
        let cfg = DetectConfig {
            queue_depth: 8,
            max_batch: 1,
            max_queued_per_camera: 2,
            ..Default::default()
        };
        let pool = DetectPool::start(vec![Box::new(det)], &cfg);
        let (rainy, quiet) = (pool.camera("rainy"), pool.camera("quiet"));
        assert_eq!(rainy.submit(request(1)), Submitted::Queued);
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        assert_eq!(rainy.submit(request(2)), Submitted::Queued); // 1 running + 1 queued = its share
        for t in 3..10 {
            assert_eq!(rainy.submit(request(t)), Submitted::Shed);
        }
        assert_eq!(quiet.submit(request(100)), Submitted::Queued);
        assert_eq!(rainy.stats().shed, 7);
        assert_eq!(rainy.stats().in_flight, 2);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert_eq!(
            quiet
                .replies()
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .track_id,
            100
        );
        for _ in 0..2 {
            rainy
                .replies()
                .recv_timeout(Duration::from_secs(10))
                .unwrap();
        }
        assert_eq!(rainy.stats().in_flight, 0);
        assert_eq!(
            rainy.submit(request(11)),
            Submitted::Queued,
            "its share is free again"
        );
    }

    #[test]
    fn a_worker_batches_what_is_queued() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (started_tx, started_rx) = bounded(16);
        let det = GatedDetector {
            gate: gate.clone(),
            started: started_tx,
        };
        let cfg = DetectConfig {
            queue_depth: 8,
            max_batch: 4,
            ..Default::default()
        };
        let pool = DetectPool::start(vec![Box::new(det)], &cfg);
        let a = pool.camera("a");
        a.submit(request(1));
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        for t in 2..=6 {
            assert_eq!(a.submit(request(t)), Submitted::Queued);
        }
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        // Next wake-up takes 4 of the 5 waiting, then the last one.
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 4);
        assert_eq!(started_rx.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        let replies: Vec<DetectReply> = (0..6)
            .map(|_| a.replies().recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(replies.iter().filter(|r| r.batch == 4).count(), 4);
        drop(pool); // joins the worker
    }

    #[test]
    fn a_disabled_pool_does_nothing() {
        let pool = DetectPool::from_config(&DetectConfig {
            enabled: false,
            ..Default::default()
        })
        .unwrap();
        assert!(!pool.is_enabled());
        let c = pool.camera("x");
        assert!(!c.is_enabled());
        assert_eq!(c.submit(request(1)), Submitted::Disabled);
        let f = Frame::from_gray(0, 0.0, 64, 64, vec![0; 64 * 64]);
        assert_eq!(c.submit_track(&f, 1, 10.0, 10.0, 4.0), Submitted::Disabled);
    }
}
