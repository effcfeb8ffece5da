//! Helpers for tests and benches (not part of the product API): test clips made with the ffmpeg
//! command-line tool from its built-in `testsrc2` pattern, read back through [`FfmpegOpener`].

use std::path::Path;
use std::process::Command;

use crate::error::Result;
use crate::ingest::{Cancel, FfmpegOpener, Item, Opener, Packet, SourceSpec, StreamInfo};
use crate::{bail, err};

/// How a test clip is made.
#[derive(Clone, Copy, Debug)]
pub struct TestClip {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval, frames.
    pub gop: u32,
    /// Length, seconds.
    pub seconds: f64,
    /// Target bitrate, kbit/s (sensor-like noise is added so the encoder reaches it).
    pub kbps: u32,
}

impl TestClip {
    /// 1280x720, 25 fps, GOP 50, 10 s, 2 Mbit/s.
    pub fn hd() -> Self {
        TestClip {
            width: 1280,
            height: 720,
            fps: 25,
            gop: 50,
            seconds: 10.0,
            kbps: 2000,
        }
    }

    /// Writes the clip (H.264 High, `yuv420p`, fixed GOP, no scene-cut keyframes) to `path` with
    /// the ffmpeg CLI.
    pub fn make(&self, path: &Path) -> Result<()> {
        let src = format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            self.width, self.height, self.fps, self.seconds
        );
        let kbps = format!("{}k", self.kbps);
        let out = Command::new("ffmpeg")
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
            ])
            .arg(&src)
            .args([
                "-vf",
                "noise=alls=12:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
            ])
            .args(["-pix_fmt", "yuv420p", "-g"])
            .arg(self.gop.to_string())
            .args(["-keyint_min"])
            .arg(self.gop.to_string())
            .args(["-sc_threshold", "0", "-b:v"])
            .arg(&kbps)
            .args(["-maxrate"])
            .arg(&kbps)
            .args(["-bufsize"])
            .arg(format!("{}k", self.kbps * 2))
            .arg(path)
            .output()
            .map_err(|e| err!(Resource, "cannot run ffmpeg").with_source(e))?;
        if !out.status.success() {
            bail!(
                Resource,
                "ffmpeg failed making {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Reads a file through [`FfmpegOpener`] (as the pipeline does) and returns its stream info and
/// every packet with its media time.
pub fn read_packets(path: &Path) -> Result<(StreamInfo, Vec<Packet>)> {
    let spec = SourceSpec::new(path.to_string_lossy());
    let mut src = FfmpegOpener.open(&spec, &Cancel::new())?;
    let info = src.info().clone();
    let mut packets = Vec::new();
    while let Some(item) = src.next_item()? {
        if let Item::Packet(p) = item {
            packets.push(p);
        }
    }
    Ok((info, packets))
}
