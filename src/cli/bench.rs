//! `fallwatch bench`: whole-process speed figures measured as ratios in one run (the machine is
//! shared and noisy: runs are interleaved and medians quoted).
//!
//! `fallwatch bench decode CLIP` compares fallwatch's ingest (demux, decode to Y planes, packets
//! kept for the pre-roll ring, exactly what `analyze` does before analysis) with
//! `ffmpeg -threads 1 -i CLIP -f null -`, both as separate processes on one decoder thread.

use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};
use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// fallwatch's decode to Y planes vs `ffmpeg -threads 1 -f null`, interleaved runs.
    Decode {
        /// An H.264 clip (e.g. a 1080p sample clip).
        clip: PathBuf,
        /// Runs of each program.
        #[arg(long, default_value_t = 7)]
        runs: usize,
    },
    /// CPU time of the analysis (motion, tracking, physics) against the decoding of the same
    /// frames, per clip and in total, measured per thread in one run (detector off).
    Analyze {
        /// H.264 clips, each with NAME.calib.toml next to it (e.g. sample_clips/*.mp4).
        #[arg(required = true)]
        clips: Vec<PathBuf>,
        /// Runs per clip (medians are reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Internal: decode CLIP to Y planes once and print the frame count (what `decode` times).
    #[command(hide = true)]
    DecodeOnce { clip: PathBuf },
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Decode { clip, runs } => decode(&clip, runs),
        BenchWhat::Analyze { clips, runs } => analyze(&clips, runs),
        BenchWhat::DecodeOnce { clip } => {
            let frames = decode_once(&clip)?;
            println!("{frames}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Demux + decode + keep packets, touching every Y plane, as `analyze` does.
fn decode_once(clip: &std::path::Path) -> anyhow::Result<u64> {
    let spec = SourceSpec::new(clip.to_string_lossy());
    let mut source = FfmpegOpener.open(&spec, &Cancel::new())?;
    let mut frames = 0u64;
    let mut checksum = 0u64;
    let mut packet_bytes = 0usize;
    while let Some(item) = source.next_item()? {
        match item {
            Item::Frame(f) => {
                let y = f.luma();
                // Touch the plane the way analysis would start: one byte per row.
                checksum = (0..y.height())
                    .fold(checksum, |acc, r| acc + u64::from(y.row(r)[r % y.width()]));
                frames += 1;
            }
            Item::Packet(p) => packet_bytes += p.data.len(),
        }
    }
    std::hint::black_box((checksum, packet_bytes));
    Ok(frames)
}

/// CPU seconds (user + system) used by waited-for children so far.
fn children_cpu_s() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

struct Run {
    wall_s: f64,
    cpu_s: f64,
}

fn time_child(cmd: &mut Command) -> anyhow::Result<(Run, String)> {
    let cpu0 = children_cpu_s();
    let t0 = Instant::now();
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output()?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = children_cpu_s() - cpu0;
    if !out.status.success() {
        bail!(
            "{:?} failed: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok((
        Run { wall_s, cpu_s },
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn decode(clip: &std::path::Path, runs: usize) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let frames: u64 = time_child(Command::new(&exe).args(["bench", "decode-once"]).arg(clip))?
        .1
        .parse()
        .context("decode-once output")?;
    if frames == 0 {
        bail!("{}: no frames decoded", clip.display());
    }
    let (mut fw, mut ff) = (Vec::new(), Vec::new());
    for i in 0..runs.max(1) {
        // Interleave, alternating which goes first, so drifts in machine load hit both alike.
        let order: [bool; 2] = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for ours in order {
            let run = if ours {
                time_child(Command::new(&exe).args(["bench", "decode-once"]).arg(clip))?.0
            } else {
                time_child(
                    Command::new("ffmpeg")
                        .args([
                            "-hide_banner",
                            "-nostats",
                            "-loglevel",
                            "error",
                            "-threads",
                            "1",
                            "-i",
                        ])
                        .arg(clip)
                        .args(["-f", "null", "-"]),
                )
                .context("running the ffmpeg CLI (scripts/setup.sh installs it)")?
                .0
            };
            if ours { fw.push(run) } else { ff.push(run) }
        }
    }
    let fps = |v: &[Run]| median(v.iter().map(|r| frames as f64 / r.wall_s).collect());
    let cpu_ms = |v: &[Run]| median(v.iter().map(|r| r.cpu_s * 1000.0 / frames as f64).collect());
    let (fw_fps, ff_fps) = (fps(&fw), fps(&ff));
    let (fw_cpu, ff_cpu) = (cpu_ms(&fw), cpu_ms(&ff));
    println!(
        "{}",
        serde_json::json!({
            "clip": clip.display().to_string(), "frames": frames, "runs": runs,
            "fallwatch_fps": fw_fps, "ffmpeg_fps": ff_fps, "fps_ratio": fw_fps / ff_fps,
            "fallwatch_cpu_ms_per_frame": fw_cpu, "ffmpeg_cpu_ms_per_frame": ff_cpu,
            "cpu_ratio": ff_cpu / fw_cpu,
        })
    );
    eprintln!(
        "{frames} frames, medians of {runs} interleaved runs: fallwatch {fw_fps:.0} fps ({fw_cpu:.2} CPU ms/frame), \
         ffmpeg -threads 1 {ff_fps:.0} fps ({ff_cpu:.2} CPU ms/frame): fallwatch runs at {:.3}x ffmpeg's fps",
        fw_fps / ff_fps
    );
    Ok(ExitCode::SUCCESS)
}

/// Per clip: median over runs of decode (ingest thread) and analysis (analysis thread) CPU time.
fn analyze(clips: &[PathBuf], runs: usize) -> anyhow::Result<ExitCode> {
    use fallwatch::calib::Calibration;
    use fallwatch::clock::RealClock;
    use fallwatch::pipeline::{AnalyzeConfig, Counters, Pipeline, PipelineConfig};
    use std::sync::Arc;

    let mut cfg = PipelineConfig::default();
    cfg.detect.enabled = false;
    let out = tempfile::Builder::new()
        .prefix("fallwatch-bench-")
        .tempdir()?;
    let (mut total_decode, mut total_analysis, mut total_frames) = (0.0, 0.0, 0u64);
    for clip in clips {
        let calib_path = clip.with_extension("calib.toml");
        let calib = Calibration::load(&calib_path)?;
        let (mut dec, mut ana, mut frames, mut res, mut mem) =
            (Vec::new(), Vec::new(), 0, (0, 0), 0);
        for _ in 0..runs.max(1) {
            let pipeline =
                Pipeline::start(out.path(), cfg.clone(), Arc::new(RealClock::default()))?;
            let acfg = AnalyzeConfig::new(SourceSpec::new(clip.to_string_lossy()), calib.clone());
            let (tx, rx) = crossbeam_channel::unbounded();
            let s = pipeline.analyze(
                &acfg,
                &FfmpegOpener,
                &Cancel::new(),
                &Arc::new(Counters::default()),
                &tx,
            )?;
            pipeline.finish()?;
            drop((tx, rx));
            frames = s.frames_analyzed;
            dec.push(s.ingest_cpu_s);
            ana.push(s.analysis_cpu_s);
            mem = s.analysis_memory_bytes;
            res = s.stream.map_or((0, 0), |i| (i.width, i.height));
        }
        let (d, a) = (median(dec), median(ana));
        total_decode += d;
        total_analysis += a;
        total_frames += frames;
        println!(
            "{}",
            serde_json::json!({
                "clip": clip.display().to_string(), "width": res.0, "height": res.1, "frames": frames,
                "decode_cpu_ms_per_frame": d * 1e3 / frames.max(1) as f64,
                "analysis_cpu_ms_per_frame": a * 1e3 / frames.max(1) as f64,
                "analysis_over_decode": a / d, "analysis_memory_mb": mem as f64 / 1e6,
            })
        );
        eprintln!(
            "{}: {}x{}, decode {:.2} ms/frame, analysis {:.2} ms/frame = {:.1}% of decode",
            clip.display(),
            res.0,
            res.1,
            d * 1e3 / frames.max(1) as f64,
            a * 1e3 / frames.max(1) as f64,
            100.0 * a / d
        );
    }
    eprintln!(
        "total: {total_frames} frames, analysis CPU = {:.1}% of decode CPU (medians of {runs} runs per clip)",
        100.0 * total_analysis / total_decode
    );
    Ok(ExitCode::SUCCESS)
}
