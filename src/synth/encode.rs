//! H.264 encoding with libx264 through FFmpeg, muxed to MP4 in-process, set up like an IP
//! camera: constrained bitrate (maxrate + buffer), a fixed GOP, no B-frames, yuv420p, BT.709.

use std::path::Path;

use ffmpeg_next as av;

use crate::err;
use crate::error::Result;

/// A planar 4:2:0 picture, 8 bits, limited range.
#[derive(Clone, Debug)]
pub struct YuvFrame {
    /// Width, pixels (even).
    pub width: usize,
    /// Height, pixels (even).
    pub height: usize,
    /// Luma, `width * height`.
    pub y: Vec<u8>,
    /// Cb, `width/2 * height/2`.
    pub u: Vec<u8>,
    /// Cr, `width/2 * height/2`.
    pub v: Vec<u8>,
}

/// Encoder settings.
#[derive(Clone, Debug)]
pub struct EncodeSettings {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Average bitrate, kbit/s (also the maximum; the buffer holds one second).
    pub bitrate_kbps: u32,
    /// Keyframe interval, frames.
    pub gop_frames: u32,
    /// x264 speed preset (`ultrafast` .. `medium`).
    pub x264_preset: String,
    /// The container's `creation_time` tag (RFC 3339 UTC): when media time 0 was recorded,
    /// matching the picture's time stamp. None: no tag.
    pub creation_time: Option<String>,
}

/// An MP4 file being written.
pub struct Mp4Writer {
    octx: av::format::context::Output,
    encoder: av::encoder::Video,
    frame: av::frame::Video,
    enc_tb: av::Rational,
    ost_tb: av::Rational,
    next_pts: i64,
    path: String,
}

impl Mp4Writer {
    /// Creates `path` and opens the encoder.
    pub fn create(path: &Path, s: &EncodeSettings) -> Result<Mp4Writer> {
        crate::ingest::init_ffmpeg()?;
        let p = path.display().to_string();
        let fail = |what: &str, e: av::Error| err!(Resource, "{p}: {what}").with_source(e);
        let mut octx = av::format::output(&path).map_err(|e| fail("cannot create", e))?;
        let global_header = octx
            .format()
            .flags()
            .contains(av::format::Flags::GLOBAL_HEADER);
        let codec = av::encoder::find_by_name("libx264")
            .ok_or_else(|| err!(Resource, "{p}: FFmpeg has no libx264 encoder"))?;
        let mut ost = octx
            .add_stream(codec)
            .map_err(|e| fail("cannot add stream", e))?;
        let mut enc = av::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| fail("cannot make encoder", e))?;
        let enc_tb = av::Rational::new(1, s.fps as i32);
        enc.set_width(s.width);
        enc.set_height(s.height);
        enc.set_format(av::format::Pixel::YUV420P);
        enc.set_time_base(enc_tb);
        enc.set_frame_rate(Some(av::Rational::new(s.fps as i32, 1)));
        enc.set_bit_rate(s.bitrate_kbps as usize * 1000);
        enc.set_max_bit_rate(s.bitrate_kbps as usize * 1000);
        enc.set_gop(s.gop_frames);
        enc.set_max_b_frames(0);
        enc.set_colorspace(av::color::Space::BT709);
        enc.set_color_range(av::color::Range::MPEG);
        enc.set_color_primaries(av::color::Primaries::BT709);
        enc.set_color_transfer_characteristic(av::color::TransferCharacteristic::BT709);
        if global_header {
            enc.set_flags(av::codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = av::Dictionary::new();
        opts.set("preset", &s.x264_preset);
        opts.set("profile", "main");
        opts.set("bufsize", &(s.bitrate_kbps as usize * 1000).to_string());
        // One thread: the output is then bit-identical from run to run.
        opts.set("threads", "1");
        opts.set(
            "x264-params",
            &format!(
                "keyint={g}:min-keyint={g}:scenecut=0:bframes=0",
                g = s.gop_frames
            ),
        );
        let encoder = enc
            .open_with(opts)
            .map_err(|e| fail("cannot open libx264", e))?;
        ost.set_parameters(&encoder);
        if let Some(t) = &s.creation_time {
            let mut meta = av::Dictionary::new();
            meta.set("creation_time", t);
            octx.set_metadata(meta);
        }
        octx.write_header()
            .map_err(|e| fail("cannot write header", e))?;
        let ost_tb = octx.stream(0).expect("stream 0").time_base();
        Ok(Mp4Writer {
            octx,
            encoder,
            frame: av::frame::Video::new(av::format::Pixel::YUV420P, s.width, s.height),
            enc_tb,
            ost_tb,
            next_pts: 0,
            path: p,
        })
    }

    /// Encodes the next frame.
    pub fn write(&mut self, yuv: &YuvFrame) -> Result<()> {
        let planes: [(&[u8], usize, usize); 3] = [
            (&yuv.y, yuv.width, yuv.height),
            (&yuv.u, yuv.width / 2, yuv.height / 2),
            (&yuv.v, yuv.width / 2, yuv.height / 2),
        ];
        for (i, (src, w, h)) in planes.into_iter().enumerate() {
            let stride = self.frame.stride(i);
            let dst = self.frame.data_mut(i);
            for y in 0..h {
                dst[y * stride..y * stride + w].copy_from_slice(&src[y * w..(y + 1) * w]);
            }
        }
        self.frame.set_pts(Some(self.next_pts));
        self.next_pts += 1;
        self.encoder
            .send_frame(&self.frame)
            .map_err(|e| err!(Resource, "{}: encoding failed", self.path).with_source(e))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<()> {
        let mut pkt = av::Packet::empty();
        while self.encoder.receive_packet(&mut pkt).is_ok() {
            pkt.set_stream(0);
            // One frame long: without it the muxer's edit list cuts the last frame.
            pkt.set_duration(1);
            pkt.rescale_ts(self.enc_tb, self.ost_tb);
            pkt.write_interleaved(&mut self.octx)
                .map_err(|e| err!(Resource, "{}: cannot write packet", self.path).with_source(e))?;
        }
        Ok(())
    }

    /// Flushes the encoder and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.encoder
            .send_eof()
            .map_err(|e| err!(Resource, "{}: encoder flush failed", self.path).with_source(e))?;
        self.drain()?;
        self.octx
            .write_trailer()
            .map_err(|e| err!(Resource, "{}: cannot finish file", self.path).with_source(e))
    }
}
