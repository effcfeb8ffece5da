//! `fallwatch synth`: synthetic camera clips with exact ground truth, one clip or a whole
//! evaluation set. Prints one JSON line per clip on standard output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use fallwatch::synth::{
    self, DistractorKind, Motion, ObjectKind, Preset, RenderSettings, Resolution, SynthOptions,
    TimeOfDay,
};

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Random seed: same seed and options, same clip.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory (created if missing).
    #[arg(long, default_value = "synth-out")]
    pub out: PathBuf,
    /// Base name of the files (default: synth-<seed>).
    #[arg(long)]
    pub name: Option<String>,
    /// Picture size: 720p, 1080p, 1440p (or WxH).
    #[arg(long, default_value = "1080p")]
    pub resolution: Resolution,
    /// Frames per second (15-30).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(15..=30))]
    pub fps: u32,
    /// Duration, seconds.
    #[arg(long, default_value_t = 8.0)]
    pub duration_s: f64,
    /// Time of day: day, dusk, night (default: random).
    #[arg(long)]
    pub time_of_day: Option<TimeOfDay>,
    /// Thrown objects (0 = distractors only; default: 1, or 0 for distractor presets).
    #[arg(long)]
    pub objects: Option<u32>,
    /// Distractors: a comma-separated list (bird, leaf, paper, rain, insect, lights,
    /// cloud_shadow, exposure, tree, shake), "random" (default) or "none".
    #[arg(long, default_value = "random")]
    pub distractors: String,
    /// Target bitrate, kbit/s (default: random, 2000-3250 at 720p, 2800-4550 at 1080p, 3600-5850
    /// at 1440p).
    #[arg(long)]
    pub bitrate_kbps: Option<u32>,
    /// A named hard case: night-far-small, low-contrast, heavy-rain, above-top-edge, tiny-720p,
    /// behind-tree, slow-bag, birds-only, leaves-only, night-insects, shake-and-light.
    #[arg(long)]
    pub preset: Option<Preset>,
    /// Force the kind of object: bottle, can, brick, phone, bag, box, fruit.
    #[arg(long)]
    pub object_kind: Option<ObjectKind>,
    /// Force the release motion: drop, throw, toss.
    #[arg(long)]
    pub motion: Option<Motion>,
    /// Force the release floor.
    #[arg(long)]
    pub floor: Option<u32>,
    /// Force the camera's distance from the wall, metres.
    #[arg(long)]
    pub distance_m: Option<f64>,
    /// Force the infrared night picture on or off.
    #[arg(long)]
    pub infrared: Option<bool>,
    /// x264 speed preset.
    #[arg(long, default_value = "superfast")]
    pub x264_preset: String,
    /// No date/time stamp in the picture.
    #[arg(long)]
    pub no_osd: bool,
    /// Background rays per pixel (1 or 4).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// Generate a whole set instead of one clip: "eval" (the documented mix, cycled by seed).
    #[arg(long)]
    pub set: Option<String>,
    /// Seed range for --set, e.g. 1000..1040 (end exclusive).
    #[arg(long, default_value = "1000..1040")]
    pub seeds: String,
}

fn parse_distractors(s: &str) -> anyhow::Result<Option<Vec<DistractorKind>>> {
    match s {
        "random" => Ok(None),
        "none" | "" => Ok(Some(Vec::new())),
        _ => s
            .split(',')
            .map(|k| {
                k.trim()
                    .parse::<DistractorKind>()
                    .map_err(|e| anyhow::anyhow!("distractor {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some),
    }
}

fn parse_range(s: &str) -> anyhow::Result<std::ops::Range<u64>> {
    let (a, b) = s
        .split_once("..")
        .with_context(|| format!("seed range {s:?}: use START..END"))?;
    let (a, b): (u64, u64) = (a.trim().parse()?, b.trim().parse()?);
    if b <= a {
        bail!("seed range {s:?} is empty");
    }
    Ok(a..b)
}

pub fn run(args: SynthArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut base = SynthOptions::new(
        args.seed,
        args.name.clone().unwrap_or(format!("synth-{}", args.seed)),
    );
    base.resolution = args.resolution;
    base.fps = args.fps;
    base.duration_s = args.duration_s;
    base.time_of_day = args.time_of_day;
    base.objects = args.objects;
    base.distractors = parse_distractors(&args.distractors)?;
    base.bitrate_kbps = args.bitrate_kbps;
    base.preset = args.preset;
    base.object_kind = args.object_kind;
    base.motion = args.motion;
    base.floor = args.floor;
    base.distance_m = args.distance_m;
    base.infrared = args.infrared;
    base.x264_preset = args.x264_preset.clone();
    base.osd = !args.no_osd;
    base.render = RenderSettings {
        samples: args.samples,
        noise: true,
    };
    let jobs: Vec<SynthOptions> = match args.set.as_deref() {
        None => vec![base],
        Some("eval") => parse_range(&args.seeds)?
            .map(|seed| synth::eval_options(&base, seed))
            .collect(),
        Some(other) => bail!("unknown set {other:?} (known: eval)"),
    };
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} frames {elapsed}")
            .expect("valid template"),
    );
    let mut stdout = std::io::stdout().lock();
    let n = jobs.len();
    for (k, opts) in jobs.iter().enumerate() {
        bar.set_message(format!("{} ({}/{n})", opts.name, k + 1));
        bar.set_position(0);
        let progress = |i: u32, total: u32| {
            bar.set_length(u64::from(total));
            bar.set_position(u64::from(i));
        };
        let rep = synth::generate_clip(opts, &args.out, &progress)
            .with_context(|| format!("clip {}", opts.name))?;
        let t = &rep.truth;
        let line = serde_json::json!({
            "name": opts.name,
            "seed": opts.seed,
            "mp4": rep.mp4.display().to_string(),
            "calib": rep.calib.display().to_string(),
            "truth": rep.truth_path.display().to_string(),
            "width": t.width, "height": t.height, "frames": t.frames,
            "time_of_day": t.scene.time_of_day,
            "objects": t.objects.len(),
            "distractors": t.distractors.iter().map(|d| d.kind.clone()).collect::<Vec<_>>(),
            "tags": t.tags,
            "bytes": rep.mp4_bytes,
            "seconds": (rep.total_s * 100.0).round() / 100.0,
            "background_seconds": (rep.background_s * 100.0).round() / 100.0,
            "x_realtime": ((rep.total_s / t.duration_s) * 100.0).round() / 100.0,
        });
        writeln!(stdout, "{line}").ok();
    }
    bar.finish_and_clear();
    Ok(ExitCode::SUCCESS)
}
