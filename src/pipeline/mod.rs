//! The pipeline: the one place where the stages are wired together.
//!
//! A [`Pipeline`] holds what a process shares between cameras: the evidence thread (`evidence`)
//! writing into one output directory, and the detector pool (`detect-<n>`). Each camera runs
//! [`Pipeline::analyze`]:
//!
//! ```text
//! ingest (the calling thread)          FrameSource: packets + frames
//!   | packets -> the camera's pre-roll ring (shared with the evidence thread)
//!   | frames  -> bounded channel: a live source never waits (full: drop and count),
//!   |            a file waits (every frame of a file is analysed)
//! analyze-<camera>                     CameraAnalysis: motion -> tracks -> physics (+ detector)
//!   | findings -> evidence thread (clip from the ring, snapshot, event.json; atomic; with the
//!   |             detector on, the person search in the frames before the release, decoded
//!   |             from the same ring's packets and sent to the detector pool)
//! events-<camera>                      forwards each written event to the caller, counts it
//! ```
//!
//! Shutdown: the source ends (or is cancelled) -> the ring is marked finished (no post-roll
//! will come) -> the frame channel closes -> analysis finishes its tracks and exits -> the
//! evidence thread answers the last events -> the forwarder ends. Nothing here assumes one camera
//! or one run: all state is per camera or owned by the [`Pipeline`].

pub mod analysis;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Sender, TrySendError, bounded, unbounded};

use crate::calib::Calibration;
use crate::clock::{Clock, thread_cpu_time};
use crate::detect::{DetectConfig, DetectPool};
use crate::error::Result;
use crate::evidence::{
    EvidenceClient, EvidenceConfig, EvidenceDone, EvidenceService, PERSONS_HANDLE, PersonSearcher,
};
use crate::ingest::{Cancel, Frame, Item, Opener, SourceSpec, SourceStats, StreamInfo};
use crate::physics::FacadeModel;
use crate::{ErrorKind, err};

pub use self::analysis::{AnalysisConfig, AnalysisStats, CameraAnalysis, Finding};

/// An event whose directory is complete on disk (or, with `error`, could not be written: the
/// event is still reported).
pub type WrittenEvent = EvidenceDone;

/// Everything one camera's analysis run needs.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    /// The source to read.
    pub source: SourceSpec,
    /// The camera's calibration.
    pub calib: Calibration,
    /// Motion, tracking and detector-use settings.
    pub analysis: AnalysisConfig,
    /// Decoded frames queued between ingest and analysis. Default: 8.
    pub frame_queue: usize,
    /// Optional debugging aid: write `index,pts_s` of every decoded frame to this file.
    pub frame_log: Option<PathBuf>,
}

impl AnalyzeConfig {
    /// A configuration with the documented defaults.
    pub fn new(source: SourceSpec, calib: Calibration) -> Self {
        AnalyzeConfig {
            source,
            calib,
            analysis: AnalysisConfig::default(),
            frame_queue: 8,
            frame_log: None,
        }
    }
}

/// Live counters of one camera, readable from any thread (progress bars, metrics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames decoded by ingest.
    pub frames_decoded: AtomicU64,
    /// Frames dropped because analysis was behind (live sources only).
    pub frames_dropped: AtomicU64,
    /// Frames analysed.
    pub frames_analyzed: AtomicU64,
    /// Events written.
    pub events: AtomicU64,
    /// Media time of the last decoded frame, milliseconds.
    pub media_ms: AtomicU64,
}

/// What a finished run of one camera did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// The stream that was read.
    pub stream: Option<StreamInfo>,
    /// Source counters at the end.
    pub source: SourceStats,
    /// Frames dropped because analysis was behind.
    pub frames_dropped: u64,
    /// Frames analysed.
    pub frames_analyzed: u64,
    /// Media time of the last frame, seconds.
    pub last_pts_s: f64,
    /// Events reported.
    pub events: u64,
    /// The analysis' counters.
    pub analysis: AnalysisStats,
    /// Bytes of per-camera analysis state (motion model).
    pub analysis_memory_bytes: usize,
    /// CPU time of the ingest thread (demux, decode, pre-roll ring), seconds.
    pub ingest_cpu_s: f64,
    /// CPU time of the analysis thread (motion, tracking, physics, detector crops), seconds.
    pub analysis_cpu_s: f64,
}

/// Process-wide settings of the shared stages.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    /// Evidence clips, snapshots, retention.
    pub evidence: EvidenceConfig,
    /// The object detector; `enabled = false` judges on physics alone.
    pub detect: DetectConfig,
}

/// The stages a process shares between its cameras.
pub struct Pipeline {
    cfg: PipelineConfig,
    clock: Arc<dyn Clock>,
    evidence: EvidenceService,
    client: EvidenceClient,
    detect: Option<Arc<DetectPool>>,
    /// The evidence thread searches for persons before the release.
    persons: bool,
}

impl Pipeline {
    /// Starts the evidence thread for `out_dir` and, when enabled, the detector pool (fails with
    /// one clear line when ONNX Runtime or the model is missing).
    pub fn start(out_dir: &Path, cfg: PipelineConfig, clock: Arc<dyn Clock>) -> Result<Pipeline> {
        let detect = if cfg.detect.is_active() {
            Some(Arc::new(DetectPool::from_config(&cfg.detect)?))
        } else {
            None
        };
        Pipeline::with_detector(out_dir, cfg, clock, detect)
    }

    /// As [`Pipeline::start`], sharing an existing detector pool (several output directories in
    /// one process, e.g. `fallwatch eval`).
    pub fn with_detector(
        out_dir: &Path,
        cfg: PipelineConfig,
        clock: Arc<dyn Clock>,
        detect: Option<Arc<DetectPool>>,
    ) -> Result<Pipeline> {
        cfg.evidence.validate()?;
        cfg.detect.persons.validate()?;
        let searcher = detect
            .as_ref()
            .filter(|pool| pool.is_enabled() && cfg.detect.persons.enabled)
            .map(|pool| {
                PersonSearcher::new(cfg.detect.persons.clone(), pool.camera(PERSONS_HANDLE))
            });
        let persons = searcher.is_some();
        let (evidence, client) = EvidenceService::spawn_with_persons(
            out_dir,
            cfg.evidence.clone(),
            clock.clone(),
            searcher,
        )?;
        Ok(Pipeline {
            cfg,
            clock,
            evidence,
            client,
            detect,
            persons,
        })
    }

    /// True when the detector runs.
    pub fn detector_enabled(&self) -> bool {
        self.detect.is_some()
    }

    /// Waits for the evidence thread to finish what it was given.
    pub fn finish(self) -> Result<()> {
        drop(self.client);
        self.evidence.join().map(|_| ())
    }

    /// Analyses one source to its end (or until `cancel`), sending every event to `events` as
    /// soon as its directory is written. Returns when every event of the run is reported.
    ///
    /// When the source fails part-way, the events found before stay written and the error is
    /// returned with the camera as context.
    pub fn analyze(
        &self,
        cfg: &AnalyzeConfig,
        opener: &dyn Opener,
        cancel: &Cancel,
        counters: &Arc<Counters>,
        events: &Sender<WrittenEvent>,
    ) -> Result<Summary> {
        let camera = cfg.calib.camera.id.clone();
        let mut source = opener.open(&cfg.source, cancel)?;
        let info = source.info().clone();
        tracing::debug!(
            camera = %camera,
            url = %info.url,
            "{}x{} {} {:.2} fps{}",
            info.width,
            info.height,
            info.codec,
            info.fps,
            info.frames_hint.map(|n| format!(", {n} frames")).unwrap_or_default()
        );
        let detector = self.detect.as_ref().map(|p| p.camera(&camera));
        let mut analysis = CameraAnalysis::new(
            &cfg.calib,
            info.width,
            info.height,
            &cfg.analysis,
            detector,
            self.cfg.detect.label.clone(),
        )?;
        // The person search places its window and sightings with the facade model.
        let facade = if self.persons {
            Some(Arc::new(FacadeModel::new(
                &cfg.calib,
                info.width,
                info.height,
            )?))
        } else {
            None
        };
        // Media time 0 on the wall clock: a file's recording time, or for a live stream the
        // moment its first frame arrived (set by ingest below).
        let live_origin: Arc<OnceLock<SystemTime>> = Arc::new(OnceLock::new());
        if let Some(t) = info.recorded_at {
            analysis.set_wall_origin(t);
        }
        let ring = self.cfg.evidence.new_ring();
        let (frame_tx, frame_rx) = bounded::<Frame>(cfg.frame_queue.max(1));
        let (done_tx, done_rx) = unbounded::<EvidenceDone>();
        let frame_log = cfg
            .frame_log
            .as_ref()
            .map(|p| {
                std::fs::File::create(p)
                    .map(std::io::BufWriter::new)
                    .map_err(|e| {
                        err!(InvalidInput, "frame log {}: cannot create", p.display())
                            .with_source(e)
                    })
            })
            .transpose()?;

        let forwarder = {
            let (events, counters) = (events.clone(), counters.clone());
            std::thread::Builder::new()
                .name(format!("events-{camera}"))
                .spawn(move || {
                    let mut n = 0u64;
                    for done in done_rx {
                        if let Some(e) = &done.error {
                            tracing::error!("event {} could not be written: {e}", done.event.id);
                        }
                        n += 1;
                        counters.events.fetch_add(1, Ordering::Relaxed);
                        // The receiver may be gone (caller stopped listening): files are written.
                        let _ = events.send(done);
                    }
                    n
                })
                .map_err(|e| err!(Resource, "cannot start a thread").with_source(e))?
        };

        let analysis_thread = {
            let (counters, client, ring) = (counters.clone(), self.client.clone(), ring.clone());
            let (info, live_origin) = (info.clone(), live_origin.clone());
            let facade = facade.clone();
            std::thread::Builder::new()
                .name(format!("analyze-{camera}"))
                .spawn(move || -> Result<(CameraAnalysis, Duration)> {
                    let cpu0 = thread_cpu_time();
                    let mut findings = Vec::new();
                    let submit = |findings: &mut Vec<Finding>| -> Result<()> {
                        for f in findings.drain(..) {
                            client.submit_with_facade(
                                f.event,
                                f.overlay,
                                facade.clone(),
                                &info,
                                &ring,
                                done_tx.clone(),
                            )?;
                        }
                        Ok(())
                    };
                    for frame in frame_rx {
                        if analysis.wall_origin().is_none()
                            && let Some(t) = live_origin.get()
                        {
                            analysis.set_wall_origin(*t);
                        }
                        analysis.process(frame, &mut findings)?;
                        counters.frames_analyzed.fetch_add(1, Ordering::Relaxed);
                        submit(&mut findings)?;
                    }
                    analysis.finish(&mut findings);
                    submit(&mut findings)?;
                    Ok((analysis, thread_cpu_time().saturating_sub(cpu0)))
                })
                .map_err(|e| err!(Resource, "cannot start the analysis thread").with_source(e))?
        };

        // Ingest runs on this thread; it ends when the source ends, fails, or is cancelled.
        let live = info.is_live;
        let (mut dropped, mut last_pts_s) = (0u64, 0.0);
        let mut log = frame_log;
        let ingest_cpu0 = thread_cpu_time();
        let ingest_result: Result<()> = (|| {
            while let Some(item) = source.next_item()? {
                match item {
                    Item::Packet(p) => ring.lock().unwrap_or_else(|e| e.into_inner()).push(p),
                    Item::Frame(frame) => {
                        if live && live_origin.get().is_none() {
                            let since_origin =
                                std::time::Duration::from_secs_f64(frame.pts_s.max(0.0));
                            let _ = live_origin.set(self.clock.wall() - since_origin);
                        }
                        if let Some(log) = log.as_mut() {
                            writeln!(log, "{},{:.6}", frame.index, frame.pts_s).map_err(|e| {
                                err!(Resource, "frame log: write failed").with_source(e)
                            })?;
                        }
                        counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
                        counters
                            .media_ms
                            .store((frame.pts_s * 1000.0) as u64, Ordering::Relaxed);
                        last_pts_s = frame.pts_s;
                        if live {
                            match frame_tx.try_send(frame) {
                                Ok(()) => {}
                                Err(TrySendError::Full(_)) => {
                                    dropped += 1;
                                    counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(TrySendError::Disconnected(_)) => break,
                            }
                        } else if frame_tx.send(frame).is_err() {
                            break; // analysis failed; its error is reported below
                        }
                    }
                }
            }
            if let Some(log) = log.as_mut() {
                log.flush()
                    .map_err(|e| err!(Resource, "frame log: write failed").with_source(e))?;
            }
            Ok(())
        })();
        let ingest_cpu = thread_cpu_time().saturating_sub(ingest_cpu0);
        // No post-roll will come after this: clips waiting for it are cut with what is there.
        ring.lock().unwrap_or_else(|e| e.into_inner()).finish();
        drop(frame_tx);
        let analysis_result = analysis_thread
            .join()
            .map_err(|_| err!(Internal, "camera {camera}: analysis thread panicked"))?;
        let reported = forwarder
            .join()
            .map_err(|_| err!(Internal, "camera {camera}: event thread panicked"))?;
        let (analysis, analysis_cpu) = analysis_result?;
        let summary = Summary {
            stream: Some(info),
            source: source.stats(),
            frames_dropped: dropped,
            frames_analyzed: analysis.stats().frames,
            last_pts_s,
            events: reported,
            analysis: analysis.stats().clone(),
            analysis_memory_bytes: analysis.memory_bytes(),
            ingest_cpu_s: ingest_cpu.as_secs_f64(),
            analysis_cpu_s: analysis_cpu.as_secs_f64(),
        };
        match ingest_result {
            Ok(()) => Ok(summary),
            Err(e) if e.kind() == ErrorKind::Cancelled => Ok(summary),
            Err(e) => Err(e.context(format!("camera {camera}: {}", cfg.source.redacted_url()))),
        }
    }
}

#[cfg(test)]
mod tests;
