//! Ingest: video sources (files and live RTSP streams) behind the [`FrameSource`] trait.
//!
//! A source yields, in stream order, the encoded [`Packet`]s it reads (for the pre-roll ring that
//! evidence clips are cut from) and the decoded [`Frame`]s (for analysis). A frame gives its luma
//! (Y) plane as a [`Luma`] view straight into the decoder's buffer: no copy, no conversion.
//!
//! Sources are made by an [`Opener`] so that the reconnect logic of the service can be tested
//! against files and a simulated clock, and so tests can feed synthetic frames.
//!
//! Media time (`pts_s`) is seconds since the first decoded frame of the source, which is 0.0.

mod ffmpeg;
pub mod ring;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use self::ffmpeg::{FfmpegOpener, init as init_ffmpeg};
use crate::error::Result;

/// What to open and how.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    /// A file path or a URL (`rtsp://...`).
    pub url: String,
    /// RTSP transport. Default: TCP.
    pub transport: Transport,
    /// Time allowed to open the source (connect, handshake, first stream info). Default: 10000 ms.
    pub connect_timeout_ms: u64,
    /// Longest wait for the next packet of a live stream. Default: 5000 ms.
    pub read_timeout_ms: u64,
    /// Decoder threads (frame threading); 1 is the most CPU-efficient. Default: 1.
    pub decoder_threads: usize,
    /// Hand out encoded packets (needed for evidence clips). Default: true.
    pub keep_packets: bool,
}

impl SourceSpec {
    /// A spec with the documented defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SourceSpec {
            url: url.into(),
            transport: Transport::Tcp,
            connect_timeout_ms: 10_000,
            read_timeout_ms: 5_000,
            decoder_threads: 1,
            keep_packets: true,
        }
    }

    /// True for network URLs (anything with a `scheme://`), false for local files.
    pub fn is_network(&self) -> bool {
        self.url.contains("://") && !self.url.starts_with("file://")
    }

    /// The URL with any `user:password@` removed, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// Removes credentials from a URL: `rtsp://user:pw@host/x` becomes `rtsp://host/x`.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// RTSP lower transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RTP interleaved in the RTSP TCP connection: survives NAT and loss. The default.
    #[default]
    Tcp,
    /// RTP over UDP.
    Udp,
}

/// A cooperative cancellation flag shared by a source and whoever wants to stop it. Blocking reads
/// notice it within one poll of FFmpeg's interrupt callback.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks everything holding this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    /// True once [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Opens sources. One opener serves many cameras and many reconnects.
pub trait Opener: Send + Sync {
    /// Opens `spec`; blocking reads give up when `cancel` is set.
    fn open(&self, spec: &SourceSpec, cancel: &Cancel) -> Result<Box<dyn FrameSource>>;
}

/// An open video source.
pub trait FrameSource: Send {
    /// What the source carries.
    fn info(&self) -> &StreamInfo;
    /// The next packet or frame; `Ok(None)` at the end of a file or a stream that ended cleanly.
    fn next_item(&mut self) -> Result<Option<Item>>;
    /// Counters so far.
    fn stats(&self) -> SourceStats;
}

/// One thing read from a source.
pub enum Item {
    /// An encoded packet of the video stream (only when `keep_packets`).
    Packet(Packet),
    /// A decoded frame.
    Frame(Frame),
}

/// Counters of a source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Video packets read.
    pub packets: u64,
    /// Encoded bytes read.
    pub bytes: u64,
    /// Frames decoded.
    pub frames: u64,
    /// Packets the decoder refused as corrupt (the stream goes on).
    pub corrupt_packets: u64,
}

/// The video stream of an open source.
#[derive(Clone, Debug)]
pub struct StreamInfo {
    /// Where it comes from (credentials removed).
    pub url: String,
    /// Coded picture width, pixels.
    pub width: u32,
    /// Coded picture height, pixels.
    pub height: u32,
    /// Nominal frame rate, frames per second (0 when unknown).
    pub fps: f64,
    /// Time base of packet timestamps, as numerator / denominator seconds.
    pub time_base: (i32, i32),
    /// Codec name, e.g. `h264`.
    pub codec: String,
    /// Frames the container announces (files only).
    pub frames_hint: Option<u64>,
    /// True for live network streams.
    pub is_live: bool,
    /// Files: the wall-clock time of the first frame, from the container's `creation_time`
    /// tag, else the file's modification time minus its duration (a recording is closed when it
    /// ends). Live streams: `None` (the pipeline stamps frames as they arrive).
    pub recorded_at: Option<std::time::SystemTime>,
    /// Codec parameters for stream-copy muxing of evidence clips (absent for synthetic sources).
    pub codec_params: Option<CodecParams>,
}

impl StreamInfo {
    /// Seconds per time-base tick.
    pub fn tick_s(&self) -> f64 {
        f64::from(self.time_base.0) / f64::from(self.time_base.1)
    }
}

/// FFmpeg codec parameters, shareable between threads (the evidence writer copies them).
#[derive(Clone)]
pub struct CodecParams(Arc<std::sync::Mutex<::ffmpeg_next::codec::Parameters>>);

impl CodecParams {
    /// Wraps parameters.
    pub fn new(p: ::ffmpeg_next::codec::Parameters) -> Self {
        CodecParams(Arc::new(std::sync::Mutex::new(p)))
    }
    /// A private copy of the parameters.
    pub fn get(&self) -> ::ffmpeg_next::codec::Parameters {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl std::fmt::Debug for CodecParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodecParams")
    }
}

/// An encoded video packet. Timestamps are in the stream's time base ([`StreamInfo::time_base`]).
#[derive(Clone, Debug)]
pub struct Packet {
    /// Presentation timestamp, ticks.
    pub pts: i64,
    /// Decoding timestamp, ticks.
    pub dts: i64,
    /// Duration, ticks (0 when unknown).
    pub duration: i64,
    /// Presentation time in media seconds (same origin as frames).
    pub pts_s: f64,
    /// Starts a GOP: a clip may begin here.
    pub is_key: bool,
    /// The encoded bytes, shared (the pre-roll ring and open recordings hold the same buffer).
    pub data: Arc<[u8]>,
}

/// A decoded picture with its media time.
pub struct Frame {
    /// 0-based index of the frame in the source.
    pub index: u64,
    /// Media time, seconds since the first decoded frame.
    pub pts_s: f64,
    data: FrameData,
}

enum FrameData {
    Av(::ffmpeg_next::frame::Video),
    Gray {
        pixels: Vec<u8>,
        width: usize,
        height: usize,
    },
}

impl Frame {
    /// A frame backed by a decoded FFmpeg picture. Its pixel format must have an 8-bit Y plane
    /// first (yuv420p, yuvj420p, nv12, yuv422p, yuv444p, gray, ...).
    pub(crate) fn from_av(index: u64, pts_s: f64, video: ::ffmpeg_next::frame::Video) -> Frame {
        Frame {
            index,
            pts_s,
            data: FrameData::Av(video),
        }
    }

    /// A frame from a plain 8-bit grey image (`width * height` bytes), for tests and synthetic input.
    pub fn from_gray(
        index: u64,
        pts_s: f64,
        width: usize,
        height: usize,
        pixels: Vec<u8>,
    ) -> Frame {
        assert_eq!(pixels.len(), width * height, "gray frame size");
        Frame {
            index,
            pts_s,
            data: FrameData::Gray {
                pixels,
                width,
                height,
            },
        }
    }

    /// The luma plane.
    pub fn luma(&self) -> Luma<'_> {
        match &self.data {
            FrameData::Av(v) => Luma::new(
                v.data(0),
                v.width() as usize,
                v.height() as usize,
                v.stride(0),
            ),
            FrameData::Gray {
                pixels,
                width,
                height,
            } => Luma::new(pixels, *width, *height, *width),
        }
    }

    /// The decoded FFmpeg picture, when there is one (for colour snapshots).
    pub fn av_frame(&self) -> Option<&::ffmpeg_next::frame::Video> {
        match &self.data {
            FrameData::Av(v) => Some(v),
            FrameData::Gray { .. } => None,
        }
    }
}

/// A read-only view of an 8-bit luma plane: `height` rows of `width` pixels, `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct Luma<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl<'a> Luma<'a> {
    /// A view of `data`. Panics when `data` is too short for the geometry.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize) -> Self {
        assert!(stride >= width, "stride {stride} < width {width}");
        assert!(
            height == 0 || data.len() >= stride * (height - 1) + width,
            "luma buffer of {} bytes too short for {width}x{height} stride {stride}",
            data.len()
        );
        Luma {
            data,
            width,
            height,
            stride,
        }
    }
    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Bytes from one row to the next.
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// Row `y` (exactly `width` pixels).
    #[inline]
    pub fn row(&self, y: usize) -> &'a [u8] {
        let start = y * self.stride;
        &self.data[start..start + self.width]
    }
    /// The pixel at (`x`, `y`).
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> u8 {
        self.data[y * self.stride + x]
    }
    /// The underlying bytes (rows `stride` apart; padding included).
    pub fn raw(&self) -> &'a [u8] {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_only() {
        assert_eq!(
            redact_url("rtsp://admin:secret@10.0.0.7:554/main"),
            "rtsp://10.0.0.7:554/main"
        );
        assert_eq!(redact_url("rtsp://10.0.0.7/main"), "rtsp://10.0.0.7/main");
        assert_eq!(redact_url("clips/a@b.mp4"), "clips/a@b.mp4");
        assert_eq!(redact_url("rtsp://h/p@x"), "rtsp://h/p@x");
    }

    #[test]
    fn luma_view_honours_stride() {
        let mut buf = vec![0u8; 8 * 3];
        buf[8 + 2] = 7;
        let l = Luma::new(&buf, 5, 3, 8);
        assert_eq!(l.row(1).len(), 5);
        assert_eq!(l.get(2, 1), 7);
        let f = Frame::from_gray(0, 0.0, 4, 2, vec![1; 8]);
        assert_eq!(f.luma().row(1), &[1, 1, 1, 1]);
    }
}
