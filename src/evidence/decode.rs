//! Decoding pictures back out of a camera's pre-roll packets (for the snapshot and the person
//! search): from the last key frame at or before the earliest wanted time, one decoder thread,
//! stopping as soon as the caller has what it wants. At most a GOP plus the wanted span is decoded.

use ffmpeg_next as av;

use crate::error::Result;
use crate::ingest::{Packet, StreamInfo};
use crate::{bail, err};

/// Decodes `packets` (decode order) from the last key frame at or before `from_t_s` (or the first
/// key frame when none is that early), handing each picture and its media time to `on_frame` in
/// presentation order until it returns true (done) or the packets end. A corrupt packet costs at
/// most a frame. `what` names the purpose in errors ("snapshot", "person search").
pub(crate) fn decode_from_keyframe(
    stream: &StreamInfo,
    packets: &[Packet],
    from_t_s: f64,
    what: &str,
    mut on_frame: impl FnMut(av::frame::Video, f64) -> bool,
) -> Result<()> {
    crate::ingest::init_ffmpeg()?;
    let Some(params) = stream.codec_params.as_ref() else {
        bail!(
            InvalidInput,
            "{what}: the source has no codec parameters (synthetic source)"
        );
    };
    let start = packets
        .iter()
        .rposition(|p| p.is_key && p.pts_s <= from_t_s + 1e-6)
        .or_else(|| packets.iter().position(|p| p.is_key))
        .ok_or_else(|| err!(InvalidInput, "{what}: no key frame in the pre-roll"))?;
    let tick = stream.tick_s();
    let p0 = &packets[start];
    // Media time = ticks * tick + offset (the same for every packet of a session).
    let offset_s = p0.pts_s - p0.pts as f64 * tick;
    let ctx = av::codec::context::Context::from_parameters(params.get())
        .map_err(|e| err!(InvalidInput, "{what}: unsupported codec").with_source(e))?;
    let mut decoder = ctx
        .decoder()
        .video()
        .map_err(|e| err!(InvalidInput, "{what}: cannot open the decoder").with_source(e))?;
    let mut take = |decoder: &mut av::decoder::Video| -> bool {
        loop {
            let mut video = av::frame::Video::empty();
            if decoder.receive_frame(&mut video).is_err() {
                return false;
            }
            let Some(pts) = video.timestamp().or(video.pts()) else {
                continue;
            };
            if on_frame(video, pts as f64 * tick + offset_s) {
                return true;
            }
        }
    };
    for p in &packets[start..] {
        let mut pkt = av::Packet::copy(&p.data);
        pkt.set_pts(Some(p.pts));
        pkt.set_dts(Some(p.dts));
        if p.is_key {
            pkt.set_flags(av::packet::Flags::KEY);
        }
        let _ = decoder.send_packet(&pkt);
        if take(&mut decoder) {
            return Ok(());
        }
    }
    let _ = decoder.send_eof();
    take(&mut decoder);
    Ok(())
}
