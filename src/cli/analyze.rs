//! `fallwatch analyze <SOURCE> --calib <CALIB.toml> --out <DIR>`: the contract's command.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fallwatch::calib::Calibration;
use fallwatch::clock::RealClock;
use fallwatch::ingest::{Cancel, FfmpegOpener};
use fallwatch::pipeline::{AnalyzeConfig, Counters, Pipeline, WrittenEvent};

use super::{PipelineArgs, SourceArgs};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A video file (mp4, mkv, ts, ...) or an rtsp:// URL.
    pub source: String,
    /// The camera's calibration file (TOML).
    #[arg(long)]
    pub calib: PathBuf,
    /// Directory for event directories (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub src: SourceArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Debugging: write `index,pts_s` of every decoded frame to this file.
    #[arg(long)]
    pub frame_log: Option<PathBuf>,
}

pub fn run(args: AnalyzeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let calib = Calibration::load(&args.calib)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory {}", args.out.display()))?;
    let mut cfg = AnalyzeConfig::new(args.src.spec(&args.source), calib);
    cfg.frame_log = args.frame_log.clone();
    let pipeline = Pipeline::start(
        &args.out,
        args.pipeline.config(),
        Arc::new(RealClock::default()),
    )?;
    if !pipeline.detector_enabled() {
        tracing::info!("object detector off: judging on physics alone");
    }

    let cancel = Cancel::new();
    super::install_ctrlc(cancel.clone());
    let counters = Arc::new(Counters::default());
    let (tx, rx) = crossbeam_channel::unbounded::<WrittenEvent>();
    let started = Instant::now();
    let worker = {
        let (cfg, cancel, counters) = (cfg.clone(), cancel.clone(), counters.clone());
        std::thread::Builder::new()
            .name(format!("ingest-{}", cfg.calib.camera.id))
            .spawn(move || {
                let summary = pipeline.analyze(&cfg, &FfmpegOpener, &cancel, &counters, &tx);
                let finished = pipeline.finish();
                let summary = summary?;
                finished.map(|()| summary)
            })?
    };

    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::no_length()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
            .expect("valid template"),
    );
    let mut stdout = std::io::stdout().lock();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(w) => {
                let line = event_line(&w)?;
                if writeln!(stdout, "{line}")
                    .and_then(|()| stdout.flush())
                    .is_err()
                {
                    // stdout closed (e.g. piped into `head`): keep analysing, files still get written.
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        let frames = counters.frames_analyzed.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{frames} frames, {:.1} s of video, {:.0} fps, {} events",
            counters.media_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            frames as f64 / secs,
            counters.events.load(Ordering::Relaxed)
        ));
        bar.tick();
    }
    bar.finish_and_clear();
    let summary = worker
        .join()
        .map_err(|_| anyhow::anyhow!("pipeline thread panicked"))??;
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        "analysed {} frames ({:.1} s of video) in {:.1} s, {:.0} fps; {} dropped, {} corrupt packets; \
         {} tracks, {} falls, {} vetoed; {} detector crops ({} shed); {} events in {}",
        summary.frames_analyzed,
        summary.last_pts_s,
        secs,
        summary.frames_analyzed as f64 / secs.max(1e-3),
        summary.frames_dropped,
        summary.source.corrupt_packets,
        summary.analysis.tracks,
        summary.analysis.falls,
        summary.analysis.vetoed,
        summary.analysis.crops_submitted,
        summary.analysis.crops_shed,
        summary.events,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The contract's stdout line: the event JSON plus `"dir"`.
fn event_line(w: &WrittenEvent) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(&w.event)?;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert(
            "dir".into(),
            serde_json::Value::String(w.dir.display().to_string()),
        );
    }
    Ok(serde_json::to_string(&v)?)
}
