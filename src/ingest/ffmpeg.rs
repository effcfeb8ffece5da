//! The FFmpeg-backed source: files (mp4, mkv, ts, ...) and network streams (RTSP) through
//! libavformat, decoded by libavcodec. Every blocking call is bounded by FFmpeg's interrupt
//! callback, which checks a deadline and the cancellation flag.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime};

use ffmpeg_next as av;

use super::{
    Cancel, CodecParams, Frame, FrameSource, Item, Opener, Packet, SourceSpec, SourceStats,
    StreamInfo, Transport,
};
use crate::error::{Error, ErrorKind, Result};
use crate::{bail, err};

/// Initialises FFmpeg once per process and silences its own logging (fallwatch reports errors
/// itself, on one line). Set `FALLWATCH_FFMPEG_LOG=warning` (or `info`, `debug`) to see FFmpeg's.
pub fn init() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        if let Err(e) = av::init() {
            result = Err(err!(Resource, "cannot initialise FFmpeg").with_source(e));
            return;
        }
        let level = match std::env::var("FALLWATCH_FFMPEG_LOG").as_deref() {
            Ok("error") => av::util::log::Level::Error,
            Ok("warning") => av::util::log::Level::Warning,
            Ok("info") => av::util::log::Level::Info,
            Ok("debug") => av::util::log::Level::Debug,
            _ => av::util::log::Level::Quiet,
        };
        av::util::log::set_level(level);
    });
    result
}

/// Opens files and streams with FFmpeg.
#[derive(Clone, Copy, Debug, Default)]
pub struct FfmpegOpener;

impl Opener for FfmpegOpener {
    fn open(&self, spec: &SourceSpec, cancel: &Cancel) -> Result<Box<dyn FrameSource>> {
        let source =
            FfmpegSource::open(spec, cancel).map_err(|e| e.context(spec.redacted_url()))?;
        Ok(Box::new(source))
    }
}

/// Deadline checked by FFmpeg's interrupt callback (polled during every blocking operation).
struct Interrupt {
    origin: Instant,
    /// Milliseconds since `origin` after which blocking calls abort; 0 = no deadline.
    deadline_ms: AtomicU64,
    cancel: Cancel,
}

impl Interrupt {
    fn arm(&self, timeout: Duration) {
        let at = self.origin.elapsed() + timeout;
        self.deadline_ms
            .store(at.as_millis().max(1) as u64, Ordering::Relaxed);
    }
    fn disarm(&self) {
        self.deadline_ms.store(0, Ordering::Relaxed);
    }
    fn should_abort(&self) -> bool {
        if self.cancel.is_cancelled() {
            return true;
        }
        let d = self.deadline_ms.load(Ordering::Relaxed);
        d != 0 && self.origin.elapsed().as_millis() as u64 >= d
    }
}

/// When a file's first frame was recorded: the container's `creation_time`, else the file's
/// modification time minus the container's duration.
fn recorded_at(input: &av::format::context::Input, url: &str) -> Option<SystemTime> {
    if let Some(t) = input.metadata().get("creation_time")
        && let Ok(t) = chrono::DateTime::parse_from_rfc3339(t)
    {
        return Some(SystemTime::from(t));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let duration_us = input.duration().max(0) as u64; // AV_TIME_BASE = 1 µs
    mtime.checked_sub(Duration::from_micros(duration_us))
}

/// Pixel formats whose first plane is 8-bit luma at full resolution.
fn has_8bit_luma(fmt: av::format::Pixel) -> bool {
    use av::format::Pixel as P;
    matches!(
        fmt,
        P::YUV420P
            | P::YUVJ420P
            | P::YUV422P
            | P::YUVJ422P
            | P::YUV444P
            | P::YUVJ444P
            | P::NV12
            | P::NV21
            | P::GRAY8
            | P::YUV440P
            | P::YUVJ440P
            | P::YUV411P
            | P::YUV410P
    )
}

struct FfmpegSource {
    input: av::format::context::Input,
    decoder: av::decoder::Video,
    stream_index: usize,
    info: StreamInfo,
    interrupt: Arc<Interrupt>,
    read_timeout: Duration,
    keep_packets: bool,
    /// Items ready to hand out.
    out: VecDeque<Item>,
    /// Packets read before the first frame fixed the media-time origin.
    unstamped: Vec<Packet>,
    origin_pts: Option<i64>,
    last_frame_pts: Option<i64>,
    last_dts: Option<i64>,
    /// Live streams: packets are skipped until the first keyframe.
    synced: bool,
    input_done: bool,
    decoder_done: bool,
    /// An error to report once everything decoded before it has been handed out.
    pending_error: Option<Error>,
    stats: SourceStats,
}

impl FfmpegSource {
    fn open(spec: &SourceSpec, cancel: &Cancel) -> Result<FfmpegSource> {
        init()?;
        let network = spec.is_network();
        if !network {
            let path = std::path::Path::new(spec.url.strip_prefix("file://").unwrap_or(&spec.url));
            match std::fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    bail!(InvalidInput, "no such file")
                }
                Err(e) => return Err(err!(InvalidInput, "cannot read").with_source(e)),
                Ok(m) if m.is_dir() => bail!(InvalidInput, "is a directory, not a video file"),
                Ok(m) if m.len() == 0 => bail!(InvalidInput, "empty file"),
                Ok(_) => {}
            }
        }
        let interrupt = Arc::new(Interrupt {
            origin: Instant::now(),
            deadline_ms: AtomicU64::new(0),
            cancel: cancel.clone(),
        });
        let mut opts = av::Dictionary::new();
        if spec.url.starts_with("rtsp://") || spec.url.starts_with("rtsps://") {
            opts.set(
                "rtsp_transport",
                match spec.transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                },
            );
            // Socket I/O timeout in microseconds (FFmpeg 5 renamed `stimeout` to `timeout`).
            opts.set("timeout", &(spec.read_timeout_ms * 1000).to_string());
        } else if network {
            opts.set("rw_timeout", &(spec.read_timeout_ms * 1000).to_string());
        }
        if network {
            interrupt.arm(Duration::from_millis(spec.connect_timeout_ms));
        }
        let cb = interrupt.clone();
        let input = av::format::input_with_interrupt_and_dictionary(
            &spec
                .url
                .strip_prefix("file://")
                .unwrap_or(&spec.url)
                .to_string(),
            move || cb.should_abort(),
            opts,
        );
        interrupt.disarm();
        let input = input.map_err(|e| {
            if cancel.is_cancelled() {
                err!(Cancelled, "cancelled while opening")
            } else if network {
                match e {
                    av::Error::Exit => {
                        err!(Timeout, "no answer within {} ms", spec.connect_timeout_ms)
                    }
                    e => err!(Unavailable, "cannot open stream").with_source(e),
                }
            } else {
                err!(InvalidInput, "not a readable video file").with_source(e)
            }
        })?;

        let stream = input
            .streams()
            .best(av::media::Type::Video)
            .ok_or_else(|| err!(InvalidInput, "no video stream"))?;
        let stream_index = stream.index();
        let time_base = stream.time_base();
        if time_base.numerator() <= 0 || time_base.denominator() <= 0 {
            bail!(InvalidInput, "video stream has no valid time base");
        }
        let params = stream.parameters();
        let mut ctx = av::codec::context::Context::from_parameters(params.clone())
            .map_err(|e| err!(InvalidInput, "unsupported video codec").with_source(e))?;
        let threads = spec.decoder_threads.max(1);
        ctx.set_threading(av::codec::threading::Config {
            kind: if threads > 1 {
                av::codec::threading::Type::Frame
            } else {
                av::codec::threading::Type::None
            },
            count: threads,
            ..Default::default()
        });
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| err!(InvalidInput, "cannot open the video decoder").with_source(e))?;
        let rate = stream.avg_frame_rate();
        let rate = if rate.denominator() > 0 && rate.numerator() > 0 {
            rate
        } else {
            stream.rate()
        };
        let fps = if rate.denominator() > 0 {
            f64::from(rate)
        } else {
            0.0
        };
        let codec = decoder
            .codec()
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let frames = stream.frames();
        let recorded_at = if network {
            None
        } else {
            recorded_at(&input, &spec.url)
        };
        let info = StreamInfo {
            url: spec.redacted_url(),
            width: decoder.width(),
            height: decoder.height(),
            fps,
            time_base: (time_base.numerator(), time_base.denominator()),
            codec,
            frames_hint: (!network && frames > 0).then_some(frames as u64),
            is_live: network,
            recorded_at,
            codec_params: Some(CodecParams::new(params)),
        };
        if info.width == 0 || info.height == 0 {
            bail!(InvalidInput, "video stream has no picture size");
        }
        Ok(FfmpegSource {
            input,
            decoder,
            stream_index,
            info,
            interrupt,
            read_timeout: Duration::from_millis(spec.read_timeout_ms),
            keep_packets: spec.keep_packets,
            out: VecDeque::new(),
            unstamped: Vec::new(),
            origin_pts: None,
            last_frame_pts: None,
            last_dts: None,
            synced: !network,
            input_done: false,
            decoder_done: false,
            pending_error: None,
            stats: SourceStats::default(),
        })
    }

    fn pts_s(&self, pts: i64) -> f64 {
        // Multiply before dividing: 10800 * 1 / 90000 is exactly 0.12, 10800 * (1 / 90000) is not.
        let (num, den) = self.info.time_base;
        (pts - self.origin_pts.unwrap_or(0)) as f64 * f64::from(num) / f64::from(den)
    }

    /// Moves every frame the decoder has ready into `out`.
    fn receive_frames(&mut self) -> Result<()> {
        loop {
            let mut video = av::frame::Video::empty();
            match self.decoder.receive_frame(&mut video) {
                Ok(()) => {}
                Err(av::Error::Other { errno }) if errno == av::util::error::EAGAIN => {
                    return Ok(());
                }
                Err(av::Error::Eof) => {
                    self.decoder_done = true;
                    return Ok(());
                }
                Err(_) => {
                    self.stats.corrupt_packets += 1;
                    continue;
                }
            }
            if !has_8bit_luma(video.format()) {
                bail!(
                    InvalidInput,
                    "unsupported pixel format {:?} (need 8-bit YUV)",
                    video.format()
                );
            }
            let pts = match video.timestamp().or(video.pts()) {
                Some(p) if self.last_frame_pts.is_none_or(|last| p > last) => p,
                // Missing or non-increasing: one nominal frame after the previous.
                _ => {
                    let step = if self.info.fps > 0.0 {
                        (1.0 / (self.info.fps * self.info.tick_s()))
                            .round()
                            .max(1.0) as i64
                    } else {
                        1
                    };
                    self.last_frame_pts.map_or(0, |l| l + step)
                }
            };
            if self.origin_pts.is_none() {
                self.origin_pts = Some(pts);
                for mut p in std::mem::take(&mut self.unstamped) {
                    p.pts_s = self.pts_s(p.pts);
                    self.out.push_back(Item::Packet(p));
                }
            }
            self.last_frame_pts = Some(pts);
            let frame = Frame::from_av(self.stats.frames, self.pts_s(pts), video);
            self.stats.frames += 1;
            self.out.push_back(Item::Frame(frame));
        }
    }

    /// Reads one packet and feeds it to the decoder. Sets `input_done` at the end of input.
    fn read_packet(&mut self) -> Result<()> {
        let mut packet = av::Packet::empty();
        if self.info.is_live {
            self.interrupt.arm(self.read_timeout);
        }
        let r = packet.read(&mut self.input);
        self.interrupt.disarm();
        match r {
            Ok(()) => {}
            Err(av::Error::Eof) => {
                self.input_done = true;
                return Ok(());
            }
            Err(av::Error::Exit) if self.interrupt.cancel.is_cancelled() => {
                bail!(Cancelled, "cancelled")
            }
            Err(av::Error::Exit) => {
                bail!(Timeout, "no data for {} ms", self.read_timeout.as_millis())
            }
            Err(e) => {
                self.input_done = true;
                let kind = if self.info.is_live {
                    ErrorKind::Unavailable
                } else {
                    ErrorKind::Corrupt
                };
                self.pending_error = Some(
                    Error::new(
                        kind,
                        format!("read failed after {} frames", self.stats.frames),
                    )
                    .with_source(e),
                );
                return Ok(());
            }
        }
        if packet.stream() != self.stream_index {
            return Ok(());
        }
        if !self.synced {
            // Join a live stream at a keyframe: what comes before cannot be decoded.
            if !packet.is_key() {
                return Ok(());
            }
            self.synced = true;
        }
        self.stats.packets += 1;
        self.stats.bytes += packet.size() as u64;
        if self.keep_packets {
            self.keep(&packet);
        }
        match self.decoder.send_packet(&packet) {
            Ok(()) => {}
            Err(av::Error::InvalidData) | Err(av::Error::Other { .. }) => {
                self.stats.corrupt_packets += 1
            }
            Err(e) => return Err(err!(Corrupt, "decoder failed").with_source(e)),
        }
        Ok(())
    }

    /// Copies a packet for the pre-roll ring, with timestamps made safe for muxing: DTS strictly
    /// increasing and PTS never before DTS.
    fn keep(&mut self, packet: &av::Packet) {
        let Some(data) = packet.data() else { return };
        let mut dts = packet
            .dts()
            .or(packet.pts())
            .unwrap_or(self.last_dts.map_or(0, |d| d + 1));
        if let Some(last) = self.last_dts
            && dts <= last
        {
            dts = last + 1;
        }
        self.last_dts = Some(dts);
        let pts = packet.pts().unwrap_or(dts).max(dts);
        let p = Packet {
            pts,
            dts,
            duration: packet.duration(),
            pts_s: 0.0,
            is_key: packet.is_key(),
            data: Arc::from(data),
        };
        if self.origin_pts.is_some() {
            let p = Packet {
                pts_s: self.pts_s(pts),
                ..p
            };
            self.out.push_back(Item::Packet(p));
        } else {
            self.unstamped.push(p);
        }
    }
}

impl FrameSource for FfmpegSource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_item(&mut self) -> Result<Option<Item>> {
        loop {
            if let Some(item) = self.out.pop_front() {
                return Ok(Some(item));
            }
            if self.decoder_done {
                if let Some(e) = self.pending_error.take() {
                    return Err(e);
                }
                if let Some(expected) = self.info.frames_hint
                    && self.stats.frames + 1 < expected
                {
                    bail!(
                        Corrupt,
                        "file ends early: decoded {} of {expected} frames (truncated?)",
                        self.stats.frames
                    );
                }
                return Ok(None);
            }
            if self.input_done {
                // Flush: the decoder still holds the last frames.
                let _ = self.decoder.send_eof();
                self.receive_frames()?;
                if !self.decoder_done && self.out.is_empty() {
                    self.decoder_done = true;
                }
                continue;
            }
            self.read_packet()?;
            self.receive_frames()?;
        }
    }

    fn stats(&self) -> SourceStats {
        self.stats
    }
}
