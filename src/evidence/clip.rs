//! Evidence clips: encoded packets muxed into MP4 by stream copy (no re-encode, so the clip is
//! bit-for-bit what the camera sent), timestamps rebased so the clip starts at 0, `moov` before
//! `mdat` (`+faststart`) so a browser starts playing at once.

use std::path::Path;

use ffmpeg_next as av;

use crate::error::Result;
use crate::ingest::{Packet, StreamInfo};
use crate::{bail, err};

/// What a written clip covers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ClipSpan {
    /// Media time (source seconds) of the clip's first frame, which is at clip time 0.
    pub start_s: f64,
    /// Media time of the end of the clip's last frame.
    pub end_s: f64,
    /// Packets (frames) written.
    pub frames: usize,
    /// Encoded bytes written (payload only).
    pub bytes: usize,
}

/// Packets of `packets` that a clip from `from_s` to `to_s` needs: from the last keyframe at or
/// before `from_s` (or the first keyframe) up to the last packet, in decode order, whose frame
/// shows at or before `to_s`. Returns the index range.
pub(crate) fn cut_range(packets: &[Packet], from_s: f64, to_s: f64) -> std::ops::Range<usize> {
    const EPS: f64 = 1e-6;
    let first_key = packets.iter().position(|p| p.is_key);
    let Some(first_key) = first_key else {
        return 0..0;
    };
    let start = packets
        .iter()
        .rposition(|p| p.is_key && p.pts_s <= from_s + EPS)
        .unwrap_or(first_key)
        .max(first_key);
    let mut end = packets[start..]
        .iter()
        .rposition(|p| p.pts_s <= to_s + EPS)
        .map_or(start, |i| start + i + 1);
    // With B-frames, packets before `end` in decode order may show after `to_s` (references of
    // the frames shown before it). Take every frame shown up to the latest one included, so the
    // clip's frames are contiguous in presentation order (no skipped frame at the end).
    loop {
        let shown_to = end_pts_s(&packets[start..end]);
        let extended = packets[end..]
            .iter()
            .rposition(|p| p.pts_s <= shown_to + EPS)
            .map_or(end, |i| end + i + 1);
        if extended == end {
            return start..end;
        }
        end = extended;
    }
}

/// Latest presentation time among `packets`.
pub(crate) fn end_pts_s(packets: &[Packet]) -> f64 {
    packets
        .iter()
        .map(|p| p.pts_s)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Nominal duration of one frame in ticks of the stream's time base.
fn frame_ticks(stream: &StreamInfo) -> i64 {
    if stream.fps > 0.0 {
        (1.0 / (stream.fps * stream.tick_s())).round().max(1.0) as i64
    } else {
        1
    }
}

/// Writes `packets` (starting with a keyframe) to `path` as MP4 by stream copy.
///
/// `inject_error_after`: test hook, fails with ENOSPC after that many packets.
pub(crate) fn write_clip(
    path: &Path,
    stream: &StreamInfo,
    packets: &[Packet],
    inject_error_after: Option<usize>,
) -> Result<ClipSpan> {
    crate::ingest::init_ffmpeg()?;
    let Some(params) = stream.codec_params.as_ref() else {
        bail!(
            InvalidInput,
            "source has no codec parameters (synthetic source): no clip"
        );
    };
    let Some(first) = packets.first() else {
        bail!(InvalidInput, "no packets to write");
    };
    if !first.is_key {
        bail!(Internal, "clip does not start at a keyframe");
    }
    let in_tb = av::Rational::new(stream.time_base.0, stream.time_base.1);
    let mut params = params.get();
    // SAFETY: `params` is our own copy (CodecParams::get clones), the pointer is valid for its
    // lifetime, and codec_tag is a plain integer field. A tag of 0 lets the MP4 muxer pick the
    // right tag instead of keeping the source container's (e.g. MPEG-TS or RTP).
    unsafe {
        (*params.as_mut_ptr()).codec_tag = 0;
    }
    let io = |what: &str, e: av::Error| err!(Resource, "clip: {what}").with_source(e);
    let mut octx = av::format::output_as(path, "mp4").map_err(|e| io("cannot create", e))?;
    {
        let mut ost = octx
            .add_stream(av::encoder::find(av::codec::Id::None))
            .map_err(|e| io("cannot add the video stream", e))?;
        ost.set_parameters(params);
        ost.set_time_base(in_tb);
        if stream.fps > 0.0 {
            let rate = av::Rational::from(stream.fps);
            ost.set_avg_frame_rate(rate);
        }
    }
    let mut opts = av::Dictionary::new();
    opts.set("movflags", "+faststart");
    octx.write_header_with(opts)
        .map_err(|e| io("cannot write the header", e))?;
    // The muxer picks its own time base in write_header: read it back.
    let out_tb = octx
        .stream(0)
        .ok_or_else(|| err!(Internal, "clip: output stream vanished"))?
        .time_base();

    let origin = first.pts;
    let nominal = frame_ticks(stream);
    let mut bytes = 0usize;
    let mut last_end_ticks = 0i64;
    for (i, p) in packets.iter().enumerate() {
        if inject_error_after.is_some_and(|n| i >= n) {
            return Err(io(
                "write failed",
                av::Error::Other {
                    errno: av::util::error::ENOSPC,
                },
            ));
        }
        let mut pkt = av::Packet::copy(&p.data);
        let duration = if p.duration > 0 { p.duration } else { nominal };
        pkt.set_pts(Some(p.pts - origin));
        pkt.set_dts(Some(p.dts - origin));
        pkt.set_duration(duration);
        if p.is_key {
            pkt.set_flags(av::packet::Flags::KEY);
        }
        pkt.set_stream(0);
        pkt.set_position(-1);
        last_end_ticks = last_end_ticks.max(p.pts - origin + duration);
        pkt.rescale_ts(in_tb, out_tb);
        pkt.write_interleaved(&mut octx)
            .map_err(|e| io("write failed", e))?;
        bytes += p.data.len();
    }
    octx.write_trailer()
        .map_err(|e| io("cannot finish the file", e))?;
    drop(octx);
    let tick = stream.tick_s();
    Ok(ClipSpan {
        start_s: first.pts_s,
        end_s: first.pts_s + last_end_ticks as f64 * tick,
        frames: packets.len(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pkt(i: i64, key_every: i64) -> Packet {
        Packet {
            pts: i,
            dts: i,
            duration: 1,
            pts_s: i as f64 * 0.04,
            is_key: i % key_every == 0,
            data: Arc::from(vec![0u8; 4]),
        }
    }

    #[test]
    fn cut_starts_at_the_keyframe_before_and_ends_at_the_last_frame_in_range() {
        let packets: Vec<Packet> = (0..250).map(|i| pkt(i, 50)).collect();
        // from 5.0 s: keyframe at 4.0 s (index 100); to 8.0 s: frame 200 inclusive.
        let r = cut_range(&packets, 5.0, 8.0);
        assert_eq!(r, 100..201);
        // Before the first packet: from the first keyframe.
        assert_eq!(cut_range(&packets, -3.0, 1.0), 0..26);
        // Beyond the end: to the last packet.
        assert_eq!(cut_range(&packets, 8.0, 99.0), 200..250);
        // No keyframe at all: nothing.
        let none: Vec<Packet> = (1..40).map(|i| pkt(i, 1000)).collect();
        assert_eq!(cut_range(&none, 0.0, 1.0), 0..0);
    }

    #[test]
    fn b_frames_after_the_limit_in_decode_order_are_kept_when_they_show_before_it() {
        // Decode order I P B B P B B with pts 0 3 1 2 6 4 5 (ticks of 0.04 s).
        let order = [
            (0, true),
            (3, false),
            (1, false),
            (2, false),
            (6, false),
            (4, false),
            (5, false),
        ];
        let packets: Vec<Packet> = order
            .iter()
            .enumerate()
            .map(|(dts, &(pts, key))| Packet {
                pts,
                dts: dts as i64,
                duration: 1,
                pts_s: pts as f64 * 0.04,
                is_key: key,
                data: Arc::from(vec![0u8; 4]),
            })
            .collect();
        // Up to 0.08 s (pts 2): needs I, P(3) and both B frames; P(3) is shown too.
        assert_eq!(cut_range(&packets, 0.0, 0.08), 0..4);
        // Up to 0.16 s (pts 4): B(4) needs P(6), and then B(5) is taken so no frame is skipped.
        assert_eq!(cut_range(&packets, 0.0, 0.16), 0..7);
    }
}
