//! The pipeline: the one place where the stages are wired together.
//!
//! One camera runs as an ingest thread (`ingest-<camera>`) that reads packets and frames from its
//! [`FrameSource`](crate::ingest::FrameSource), keeps packets in the camera's pre-roll ring and
//! hands frames to the analysis thread (`analyze-<camera>`) over a bounded channel. A live source
//! never waits for analysis: when the channel is full the frame is dropped and counted. A file
//! source waits instead, so every frame of a file is analysed.
//!
//! Nothing here assumes one camera or one run: every piece of state is per camera and owned by
//! the camera's threads; the caller supplies the opener, the cancellation flag and the counters.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, TrySendError, bounded};

use crate::calib::Calibration;
use crate::err;
use crate::error::Result;
use crate::ingest::ring::PacketRing;
use crate::ingest::{Cancel, Frame, Item, Opener, SourceSpec, SourceStats, StreamInfo};

/// Everything `fallwatch analyze` needs for one source.
#[derive(Clone, Debug)]
pub struct AnalyzeConfig {
    /// The source to read.
    pub source: SourceSpec,
    /// The camera's calibration.
    pub calib: Calibration,
    /// Where event directories go.
    pub out_dir: PathBuf,
    /// Decoded frames queued between ingest and analysis. Default: 8.
    pub frame_queue: usize,
    /// Seconds of packets the pre-roll ring keeps. Default: 8 (3 s before an event's start, one
    /// GOP to reach back to a keyframe, and the time it takes to recognise the event).
    pub pre_roll_s: f64,
    /// Cap on the pre-roll ring's memory. Default: 64 MiB.
    pub pre_roll_max_bytes: usize,
    /// Optional debugging aid: write `index,pts_s` of every analysed frame to this file.
    pub frame_log: Option<PathBuf>,
}

impl AnalyzeConfig {
    /// A configuration with the documented defaults.
    pub fn new(source: SourceSpec, calib: Calibration, out_dir: PathBuf) -> Self {
        AnalyzeConfig {
            source,
            calib,
            out_dir,
            frame_queue: 8,
            pre_roll_s: 8.0,
            pre_roll_max_bytes: 64 << 20,
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

/// An event whose directory is complete on disk.
#[derive(Clone, Debug)]
pub struct WrittenEvent {
    /// The event as in `event.json`.
    pub event: crate::events::Event,
    /// The event's directory.
    pub dir: PathBuf,
}

/// What a finished run did.
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
    /// Events written.
    pub events: u64,
}

/// Analyses one source to its end (or until `cancel`), writing events under `cfg.out_dir`.
///
/// When the source fails part-way, what was analysed before stays written and the error is
/// returned with the camera as context.
pub fn analyze(
    cfg: &AnalyzeConfig,
    opener: &dyn Opener,
    cancel: &Cancel,
    counters: &Arc<Counters>,
    events: &Sender<WrittenEvent>,
) -> Result<Summary> {
    let _ = events;
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
    let live = info.is_live;
    let ring = Arc::new(Mutex::new(PacketRing::new(
        cfg.pre_roll_s,
        cfg.pre_roll_max_bytes,
    )));
    let (frame_tx, frame_rx) = bounded::<Frame>(cfg.frame_queue.max(1));

    let frame_log = cfg
        .frame_log
        .as_ref()
        .map(|p| {
            std::fs::File::create(p)
                .map(std::io::BufWriter::new)
                .map_err(|e| {
                    err!(InvalidInput, "frame log {}: cannot create", p.display()).with_source(e)
                })
        })
        .transpose()?;

    let analysis = {
        let counters = counters.clone();
        std::thread::Builder::new()
            .name(format!("analyze-{camera}"))
            .spawn(move || -> Result<u64> {
                let mut log = frame_log;
                let mut analyzed = 0u64;
                for frame in frame_rx {
                    if let Some(log) = log.as_mut() {
                        writeln!(log, "{},{:.6}", frame.index, frame.pts_s).map_err(|e| {
                            err!(Resource, "frame log: write failed").with_source(e)
                        })?;
                    }
                    analyzed += 1;
                    counters.frames_analyzed.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(mut log) = log {
                    log.flush()
                        .map_err(|e| err!(Resource, "frame log: write failed").with_source(e))?;
                }
                Ok(analyzed)
            })
            .map_err(|e| err!(Resource, "cannot start analysis thread").with_source(e))?
    };

    // Ingest runs on this thread; it ends when the source ends, fails, or is cancelled.
    let mut dropped = 0u64;
    let mut last_pts_s = 0.0;
    let ingest_result: Result<()> = (|| {
        while let Some(item) = source.next_item()? {
            match item {
                Item::Packet(p) => ring.lock().unwrap_or_else(|e| e.into_inner()).push(p),
                Item::Frame(frame) => {
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
                        break;
                    }
                }
            }
        }
        Ok(())
    })();
    drop(frame_tx);
    let analyzed = analysis
        .join()
        .map_err(|_| err!(Internal, "analysis thread panicked"))??;
    let summary = Summary {
        stream: Some(info),
        source: source.stats(),
        frames_dropped: dropped,
        frames_analyzed: analyzed,
        last_pts_s,
        events: counters.events.load(Ordering::Relaxed),
    };
    match ingest_result {
        Ok(()) => Ok(summary),
        Err(e) if e.kind() == crate::ErrorKind::Cancelled => Ok(summary),
        Err(e) => Err(e.context(format!("camera {camera}: {}", cfg.source.redacted_url()))),
    }
}
