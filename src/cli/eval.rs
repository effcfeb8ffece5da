//! `fallwatch eval <DIR>`: runs the analysis on every synthetic clip of a folder (each with its
//! calibration), matches the events to the ground truth and prints the accuracy table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use fallwatch::calib::Calibration;
use fallwatch::clock::RealClock;
use fallwatch::detect::DetectPool;
use fallwatch::eval::{self, ClipMetrics, MatchParams, Report};
use fallwatch::events::Event;
use fallwatch::ingest::{Cancel, FfmpegOpener};
use fallwatch::pipeline::{AnalyzeConfig, Counters, Pipeline, PipelineConfig, WrittenEvent};
use fallwatch::synth::Truth;

use super::{PipelineArgs, SourceArgs};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A folder of synthetic clips (NAME.mp4, NAME.calib.toml, NAME.truth.json).
    pub dir: PathBuf,
    /// Where event directories go (one sub-folder per clip; default: a temporary folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the per-clip and total metrics as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Smallest accepted median track distance, pixels.
    #[arg(long, default_value_t = 12.0)]
    pub min_dist_px: f64,
    /// Accepted median track distance as a multiple of the object's apparent size.
    #[arg(long, default_value_t = 3.0)]
    pub size_factor: f64,
    #[command(flatten)]
    pub src: SourceArgs,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

fn analyse(
    clip: &Path,
    calib: Calibration,
    out: PathBuf,
    src: &SourceArgs,
    shared: (&PipelineConfig, &Option<Arc<DetectPool>>),
    cancel: &Cancel,
) -> anyhow::Result<(Vec<Event>, f64)> {
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let cfg = AnalyzeConfig::new(src.spec(&clip.display().to_string()), calib);
    let pipeline = Pipeline::with_detector(
        &out,
        shared.0.clone(),
        Arc::new(RealClock::default()),
        shared.1.clone(),
    )?;
    let counters = Arc::new(Counters::default());
    let (tx, rx) = crossbeam_channel::unbounded::<WrittenEvent>();
    let started = Instant::now();
    pipeline
        .analyze(&cfg, &FfmpegOpener, cancel, &counters, &tx)
        .with_context(|| format!("analysing {}", clip.display()))?;
    pipeline.finish()?;
    let secs = started.elapsed().as_secs_f64();
    drop(tx);
    Ok((rx.iter().map(|w| w.event).collect(), secs))
}

pub fn run(args: EvalArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let files = Truth::files_in(&args.dir)?;
    // Without --out, events go to a temporary folder removed at the end.
    let (out_root, temporary) = match &args.out {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("fallwatch-eval-{}", std::process::id())),
            true,
        ),
    };
    let params = MatchParams {
        min_dist_px: args.min_dist_px,
        size_factor: args.size_factor,
    };
    let cancel = Cancel::new();
    super::install_ctrlc(cancel.clone());
    let pipeline_cfg = args.pipeline.config();
    let detect = if pipeline_cfg.detect.is_active() {
        Some(Arc::new(DetectPool::from_config(&pipeline_cfg.detect)?))
    } else {
        None
    };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(files.len() as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} clips {elapsed}")
            .expect("valid template"),
    );
    let mut clips: Vec<ClipMetrics> = Vec::new();
    for f in &files {
        if cancel.is_cancelled() {
            break;
        }
        let truth = Truth::load(f)?;
        let name = truth.clip.trim_end_matches(".mp4").to_string();
        bar.set_message(name.clone());
        let calib = Calibration::load(&args.dir.join(&truth.calib))?;
        let (events, secs) = analyse(
            &args.dir.join(&truth.clip),
            calib,
            out_root.join(&name),
            &args.src,
            (&pipeline_cfg, &detect),
            &cancel,
        )?;
        clips.push(eval::evaluate_clip(&name, &truth, &events, secs, &params));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if temporary {
        let _ = std::fs::remove_dir_all(&out_root);
    }
    let total = eval::summarize(&clips);
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", eval::table(&clips, &total)).ok();
    if let Some(p) = &args.json {
        let report = Report { clips, total };
        std::fs::write(p, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
