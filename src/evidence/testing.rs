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

/// Muxes `packets` (decode order, from a keyframe) into an MP4 at `path`, as the writer does for
/// a clip (benches measure this alone).
pub fn write_clip(path: &Path, stream: &StreamInfo, packets: &[Packet]) -> Result<()> {
    super::clip::write_clip(path, stream, packets, None).map(|_| ())
}

/// Packets of a clip from `from_s` to `to_s`, cut as the writer cuts them.
pub fn cut(packets: &[Packet], from_s: f64, to_s: f64) -> &[Packet] {
    &packets[super::clip::cut_range(packets, from_s, to_s)]
}

/// Decodes the frame nearest `t_s`, draws a sample trajectory, track and label on it and encodes
/// the JPEG, as the writer does for a snapshot. Returns the JPEG bytes.
pub fn render_snapshot(
    stream: &StreamInfo,
    packets: &[Packet],
    t_s: f64,
    quality: u8,
) -> Result<Vec<u8>> {
    use super::snapshot;
    let frame = snapshot::decode_nearest(stream, packets, t_s)?;
    let mut image = frame.image;
    let (w, h) = (f64::from(stream.width), f64::from(stream.height));
    let trajectory: Vec<[f64; 2]> = (0..=40)
        .map(|i| {
            let u = f64::from(i) / 40.0;
            [w * (0.5 + 0.05 * u), h * (0.2 + 0.6 * u * u)]
        })
        .collect();
    let track: Vec<crate::events::TrackPoint> = trajectory
        .iter()
        .step_by(2)
        .map(|p| crate::events::TrackPoint {
            t_s,
            x_px: p[0],
            y_px: p[1],
            w_px: 6.0,
            h_px: 8.0,
        })
        .collect();
    let annotation = snapshot::Annotation {
        trajectory_px: &trajectory,
        track: &track,
        release_px: trajectory[0],
        object_box_px: Some([trajectory[0][0], trajectory[0][1], 6.0, 8.0]),
        title: "floor 12, bay 4, 03:34:12".into(),
        subtitle: "2026-11-27 UTC+00:00 \u{b7} bench \u{b7} t = 3.00 s".into(),
    };
    snapshot::render(&mut image, &annotation, &snapshot::font());
    snapshot::encode_jpeg(&image, quality)
}
