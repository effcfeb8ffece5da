//! `fallwatch probe <SOURCE>`: what a source carries, as JSON on stdout. With `--frames`, also one
//! JSON line per decoded frame (`index`, `pts_s`): installers use it to check a camera stream,
//! tests use it to compare a file with the same clip served over RTSP.

use std::io::Write;
use std::process::ExitCode;

use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener};

use super::SourceArgs;

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// A video file or an rtsp:// URL.
    pub source: String,
    #[command(flatten)]
    pub src: SourceArgs,
    /// Decode the whole source and print every frame's index and media time.
    #[arg(long)]
    pub frames: bool,
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let cancel = Cancel::new();
    super::install_ctrlc(cancel.clone());
    let mut spec = args.src.spec(&args.source);
    spec.keep_packets = false;
    let mut source = FfmpegOpener.open(&spec, &cancel)?;
    let info = source.info().clone();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({
            "url": info.url, "codec": info.codec, "width": info.width, "height": info.height,
            "fps": info.fps, "frames": info.frames_hint, "live": info.is_live,
        })
    )?;
    if args.frames {
        while let Some(item) = source.next_item()? {
            if let Item::Frame(f) = item {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "index": f.index, "pts_s": f.pts_s })
                )?;
            }
        }
        let s = source.stats();
        tracing::info!(
            "{} frames, {} packets, {} corrupt",
            s.frames,
            s.packets,
            s.corrupt_packets
        );
    }
    Ok(ExitCode::SUCCESS)
}
