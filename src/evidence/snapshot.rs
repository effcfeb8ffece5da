//! Snapshots: the frame nearest the release, decoded from the clip's packets, in colour, with
//! what a guard needs drawn on it: the fitted trajectory, the observed track, the release point,
//! a label "floor N, bay M, HH:MM:SS" and an enlarged crop of the object in a corner.
//!
//! Sizes scale with the picture height (720p is the reference), so the overlay reads the same on
//! a 720p and a 1440p camera. Colours are drawn with a dark outline so they stay visible on a
//! bright sky and on a dark facade.

use ab_glyph::{FontRef, PxScale};
use ffmpeg_next as av;
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_circle_mut, draw_filled_rect_mut, draw_hollow_rect_mut, draw_polygon_mut,
    draw_text_mut, text_size,
};
use imageproc::point::Point;
use imageproc::rect::Rect;

use crate::error::Result;
use crate::events::TrackPoint;
use crate::ingest::{Packet, StreamInfo};
use crate::{bail, err};

/// The font of all snapshot text: DejaVu Sans Bold (licence: assets/fonts/DejaVu-LICENSE.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The shipped font.
pub(crate) fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the shipped DejaVu Sans Bold font parses")
}

/// What the analysis knows beyond the event record, for drawing the snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotOverlay {
    /// The fitted trajectory as image pixels, in time order (drawn as a polyline).
    pub trajectory_px: Vec<[f64; 2]>,
    /// Media time of the release; the snapshot shows the frame nearest it.
    pub release_t_s: f64,
    /// The object's box in that frame: centre x, centre y, width, height, pixels. `None`: the
    /// track point nearest `release_t_s` is used.
    pub object_box_px: Option<[f64; 4]>,
}

/// A decoded frame as RGB with its media time.
pub(crate) struct DecodedFrame {
    pub image: RgbImage,
    pub pts_s: f64,
}

/// Decodes the frame nearest `t_s` from `packets` (decode order, starting at a keyframe):
/// decoding starts at the last keyframe at or before `t_s`, so at most one GOP is decoded.
pub(crate) fn decode_nearest(
    stream: &StreamInfo,
    packets: &[Packet],
    t_s: f64,
) -> Result<DecodedFrame> {
    let frame_dt_s = if stream.fps > 0.0 {
        1.0 / stream.fps
    } else {
        0.04
    };
    let mut best: Option<(f64, av::frame::Video, f64)> = None;
    super::decode::decode_from_keyframe(stream, packets, t_s, "snapshot", |video, pts_s| {
        let diff = (pts_s - t_s).abs();
        if best.as_ref().is_none_or(|(d, _, _)| diff < *d) {
            best = Some((diff, video, pts_s));
        }
        // Frames leave the decoder in presentation order: past t_s + one frame, we are done.
        pts_s > t_s + frame_dt_s
    })?;
    let Some((_, video, pts_s)) = best else {
        bail!(Corrupt, "snapshot: no frame could be decoded");
    };
    Ok(DecodedFrame {
        image: to_rgb(&video)?,
        pts_s,
    })
}

/// Converts a decoded picture to packed RGB.
fn to_rgb(video: &av::frame::Video) -> Result<RgbImage> {
    let (w, h) = (video.width(), video.height());
    let mut scaler = av::software::scaling::Context::get(
        video.format(),
        w,
        h,
        av::format::Pixel::RGB24,
        w,
        h,
        av::software::scaling::Flags::BILINEAR,
    )
    .map_err(|e| err!(Internal, "snapshot: cannot convert to RGB").with_source(e))?;
    let mut rgb = av::frame::Video::empty();
    scaler
        .run(video, &mut rgb)
        .map_err(|e| err!(Internal, "snapshot: RGB conversion failed").with_source(e))?;
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let row = w as usize * 3;
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        pixels.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(w, h, pixels).ok_or_else(|| err!(Internal, "snapshot: bad RGB buffer"))
}

/// Everything drawn on a snapshot.
pub(crate) struct Annotation<'a> {
    pub trajectory_px: &'a [[f64; 2]],
    pub track: &'a [TrackPoint],
    pub release_px: [f64; 2],
    /// Centre x, centre y, width, height of the object, pixels.
    pub object_box_px: Option<[f64; 4]>,
    /// First label line: "floor N, bay M, HH:MM:SS".
    pub title: String,
    /// Second label line: date, zone, camera, media time.
    pub subtitle: String,
}

const YELLOW: Rgb<u8> = Rgb([255, 214, 0]);
const CYAN: Rgb<u8> = Rgb([0, 230, 255]);
const RED: Rgb<u8> = Rgb([255, 40, 40]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);

/// Draws `a` on `img`.
pub(crate) fn render(img: &mut RgbImage, a: &Annotation<'_>, font: &FontRef<'_>) {
    let s = (img.height() as f32 / 720.0).max(0.5);
    // The crop is taken before anything is drawn over the object.
    let inset = a.object_box_px.map(|b| Inset::cut(img, b, s));

    // Fitted trajectory: a dark outline under a bright line.
    let pts: Vec<(f32, f32)> = a
        .trajectory_px
        .iter()
        .filter(|p| p[0].is_finite() && p[1].is_finite())
        .map(|p| (p[0] as f32, p[1] as f32))
        .collect();
    polyline(img, &pts, 5.0 * s, BLACK);
    polyline(img, &pts, 2.5 * s, YELLOW);

    // Observed track: small dots on top of the fit, so a bad fit shows as dots off the line.
    for t in a.track {
        if !(t.x_px.is_finite() && t.y_px.is_finite()) {
            continue;
        }
        let c = (t.x_px as f32, t.y_px as f32);
        disc(img, c, 3.0 * s, BLACK);
        disc(img, c, 2.0 * s, CYAN);
    }

    // Release point: a red ring with four ticks outside it; the centre stays clear.
    let c = (a.release_px[0] as f32, a.release_px[1] as f32);
    let rr = 14.0 * s;
    let arm = 26.0 * s;
    for (color, w) in [(BLACK, 5.0 * s), (RED, 2.5 * s)] {
        ring(img, c, rr, w, color);
        thick_line(img, (c.0 - arm, c.1), (c.0 - rr, c.1), w, color);
        thick_line(img, (c.0 + rr, c.1), (c.0 + arm, c.1), w, color);
        thick_line(img, (c.0, c.1 - arm), (c.0, c.1 - rr), w, color);
        thick_line(img, (c.0, c.1 + rr), (c.0, c.1 + arm), w, color);
    }

    label(img, &a.title, &a.subtitle, s, font);
    if let Some(inset) = inset {
        inset.paste(img, &[a.release_px], &pts, s, font);
    }
}

/// A polyline of width `w`.
fn polyline(img: &mut RgbImage, pts: &[(f32, f32)], w: f32, color: Rgb<u8>) {
    for pair in pts.windows(2) {
        thick_line(img, pair[0], pair[1], w, color);
    }
    if pts.len() == 1 {
        disc(img, pts[0], w * 0.5, color);
    }
}

/// A line segment of width `w` with round ends.
fn thick_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), w: f32, color: Rgb<u8>) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    let half = (w * 0.5).max(0.5);
    if len >= 1.0 {
        let (nx, ny) = (-dy / len * half, dx / len * half);
        let quad = [
            Point::new((a.0 + nx).round() as i32, (a.1 + ny).round() as i32),
            Point::new((b.0 + nx).round() as i32, (b.1 + ny).round() as i32),
            Point::new((b.0 - nx).round() as i32, (b.1 - ny).round() as i32),
            Point::new((a.0 - nx).round() as i32, (a.1 - ny).round() as i32),
        ];
        if quad[0] != quad[3] && quad[0] != quad[1] {
            draw_polygon_mut(img, &quad, color);
        } else {
            imageproc::drawing::draw_line_segment_mut(img, a, b, color);
        }
    }
    disc(img, a, half, color);
    disc(img, b, half, color);
}

fn disc(img: &mut RgbImage, c: (f32, f32), r: f32, color: Rgb<u8>) {
    let r = r.round() as i32;
    let c = (c.0.round() as i32, c.1.round() as i32);
    if r <= 0 {
        if c.0 >= 0 && c.1 >= 0 && (c.0 as u32) < img.width() && (c.1 as u32) < img.height() {
            img.put_pixel(c.0 as u32, c.1 as u32, color);
        }
    } else {
        draw_filled_circle_mut(img, c, r, color);
    }
}

/// A circle outline of radius `r` and width `w` (an annulus), clipped to the image.
fn ring(img: &mut RgbImage, c: (f32, f32), r: f32, w: f32, color: Rgb<u8>) {
    let (r_in, r_out) = ((r - w * 0.5).max(0.0), r + w * 0.5);
    let (x0, x1) = ((c.0 - r_out).floor(), (c.0 + r_out).ceil());
    let (y0, y1) = ((c.1 - r_out).floor(), (c.1 + r_out).ceil());
    let (wd, ht) = (img.width() as f32, img.height() as f32);
    let mut y = y0.max(0.0);
    while y <= y1.min(ht - 1.0) {
        let mut x = x0.max(0.0);
        while x <= x1.min(wd - 1.0) {
            let d = ((x - c.0).powi(2) + (y - c.1).powi(2)).sqrt();
            if d >= r_in && d <= r_out {
                img.put_pixel(x as u32, y as u32, color);
            }
            x += 1.0;
        }
        y += 1.0;
    }
}

/// Darkens a rectangle (a backdrop for text), clipped to the image.
fn shade(img: &mut RgbImage, x: i32, y: i32, w: u32, h: u32) {
    let x0 = x.max(0) as u32;
    let y0 = y.max(0) as u32;
    let x1 = ((x + w as i32).max(0) as u32).min(img.width());
    let y1 = ((y + h as i32).max(0) as u32).min(img.height());
    for yy in y0..y1 {
        for xx in x0..x1 {
            let p = img.get_pixel_mut(xx, yy);
            for v in p.0.iter_mut() {
                *v = (*v as u16 * 2 / 5) as u8;
            }
        }
    }
}

/// The label in the top-left corner on a dark backdrop: title, subtitle and a colour legend.
fn label(img: &mut RgbImage, title: &str, subtitle: &str, s: f32, font: &FontRef<'_>) {
    let big = PxScale::from(34.0 * s);
    let small = PxScale::from(20.0 * s);
    let pad = (10.0 * s).round() as i32;
    let margin = (12.0 * s).round() as i32;
    let legend = [
        (YELLOW, "\u{2014} fitted path"),
        (CYAN, "\u{25cf} observed"),
        (RED, "\u{2295} release"),
    ];
    let gap = (14.0 * s).round() as u32;
    let (tw, th) = text_size(big, font, title);
    let (sw, sh) = text_size(small, font, subtitle);
    let lw: u32 = legend
        .iter()
        .map(|(_, t)| text_size(small, font, t).0 + gap)
        .sum::<u32>()
        - gap;
    let w = tw.max(sw).max(lw) as i32 + 2 * pad;
    let h = (th + 2 * sh) as i32 + 2 * pad + pad;
    shade(img, margin, margin, w as u32, h as u32);
    let x = margin + pad;
    let mut y = margin + pad;
    draw_text_mut(img, WHITE, x, y, big, font, title);
    y += th as i32 + pad / 2;
    draw_text_mut(img, Rgb([220, 220, 220]), x, y, small, font, subtitle);
    y += sh as i32 + pad / 2;
    let mut lx = x;
    for (color, text) in legend {
        draw_text_mut(img, color, lx, y, small, font, text);
        lx += (text_size(small, font, text).0 + gap) as i32;
    }
}

/// The enlarged crop of the object.
struct Inset {
    zoomed: RgbImage,
    zoom: u32,
    /// The source rectangle (x, y, side) in the frame.
    src: (i32, i32, u32),
}

impl Inset {
    /// Cuts the crop around the object box `b` (centre x, centre y, w, h) and enlarges it.
    fn cut(img: &RgbImage, b: [f64; 4], s: f32) -> Inset {
        let display = (160.0 * s).round() as u32;
        let mut zoom = 4u32;
        let mut side = display / zoom;
        let need = (b[2].max(b[3]) * 1.5).ceil() as u32;
        while need > side && zoom > 1 {
            zoom -= 1;
            side = display / zoom;
        }
        let side = side.min(img.width()).min(img.height()).max(1);
        let x = ((b[0] - side as f64 / 2.0).round() as i32).clamp(0, (img.width() - side) as i32);
        let y = ((b[1] - side as f64 / 2.0).round() as i32).clamp(0, (img.height() - side) as i32);
        let crop = image::imageops::crop_imm(img, x as u32, y as u32, side, side).to_image();
        let zoomed = image::imageops::resize(
            &crop,
            side * zoom,
            side * zoom,
            image::imageops::FilterType::Nearest,
        );
        Inset {
            zoomed,
            zoom,
            src: (x, y, side),
        }
    }

    /// Pastes the crop into the corner farthest from what it must not hide, frames it, and marks
    /// the source area in the frame.
    fn paste(
        &self,
        img: &mut RgbImage,
        keep_clear: &[[f64; 2]],
        trajectory: &[(f32, f32)],
        s: f32,
        font: &FontRef<'_>,
    ) {
        let (w, h) = (self.zoomed.width() as i32, self.zoomed.height() as i32);
        let margin = (12.0 * s).round() as i32;
        let (iw, ih) = (img.width() as i32, img.height() as i32);
        // Top-left holds the label.
        let corners = [
            (iw - w - margin, margin),
            (iw - w - margin, ih - h - margin),
            (margin, ih - h - margin),
        ];
        let src_c = (
            self.src.0 as f64 + self.src.2 as f64 / 2.0,
            self.src.1 as f64 + self.src.2 as f64 / 2.0,
        );
        let mut points: Vec<(f64, f64)> = keep_clear.iter().map(|p| (p[0], p[1])).collect();
        points.push(src_c);
        points.extend(trajectory.iter().map(|p| (p.0 as f64, p.1 as f64)));
        let clearance = |&(x, y): &(i32, i32)| -> f64 {
            points
                .iter()
                .map(|&(px, py)| {
                    let dx = (x as f64 - px).max(px - (x + w) as f64).max(0.0);
                    let dy = (y as f64 - py).max(py - (y + h) as f64).max(0.0);
                    (dx * dx + dy * dy).sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let &(x, y) = corners
            .iter()
            .max_by(|a, b| clearance(a).total_cmp(&clearance(b)))
            .expect("three corners");
        // Mark the source area in the frame.
        let (sx, sy, side) = self.src;
        draw_hollow_rect_mut(
            img,
            Rect::at(sx - 1, sy - 1).of_size(side + 2, side + 2),
            WHITE,
        );
        draw_hollow_rect_mut(
            img,
            Rect::at(sx - 2, sy - 2).of_size(side + 4, side + 4),
            BLACK,
        );
        // The crop with a white frame.
        let b = (3.0 * s).round().max(2.0) as i32;
        draw_filled_rect_mut(
            img,
            Rect::at(x - b, y - b).of_size((w + 2 * b) as u32, (h + 2 * b) as u32),
            WHITE,
        );
        image::imageops::overlay(img, &self.zoomed, x as i64, y as i64);
        let tag = format!("{}x", self.zoom);
        let scale = PxScale::from(22.0 * s);
        let (tw, th) = text_size(scale, font, &tag);
        let pad = (4.0 * s).round() as i32;
        draw_filled_rect_mut(
            img,
            Rect::at(x, y).of_size(tw + 2 * pad as u32, th + 2 * pad as u32),
            BLACK,
        );
        draw_text_mut(img, WHITE, x + pad, y + pad, scale, font, &tag);
    }
}

/// Encodes `img` as a baseline JPEG.
pub(crate) fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| err!(Internal, "snapshot: JPEG encoding failed").with_source(e))?;
    Ok(out)
}

/// The object box to crop: the given one, or the track point nearest `t_s`.
pub(crate) fn object_box(
    given: Option<[f64; 4]>,
    track: &[TrackPoint],
    t_s: f64,
) -> Option<[f64; 4]> {
    given.or_else(|| {
        track
            .iter()
            .min_by(|a, b| (a.t_s - t_s).abs().total_cmp(&(b.t_s - t_s).abs()))
            .map(|p| [p.x_px, p.y_px, p.w_px, p.h_px])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotation<'a>(traj: &'a [[f64; 2]], track: &'a [TrackPoint]) -> Annotation<'a> {
        Annotation {
            trajectory_px: traj,
            track,
            release_px: traj[0],
            object_box_px: Some([traj[0][0], traj[0][1], 6.0, 6.0]),
            title: "floor 12, bay 4, 03:34:12".into(),
            subtitle: "2026-11-27 UTC  tower-3-east  t=12.48 s".into(),
        }
    }

    #[test]
    fn drawing_marks_the_trajectory_and_stays_inside_the_image() {
        let mut img = RgbImage::from_pixel(1280, 720, Rgb([90, 90, 90]));
        let traj: Vec<[f64; 2]> = (0..40)
            .map(|i| [600.0 + i as f64 * 2.0, 150.0 + (i * i) as f64 * 0.3])
            .collect();
        let track: Vec<TrackPoint> = traj
            .iter()
            .step_by(4)
            .map(|p| TrackPoint {
                t_s: 0.0,
                x_px: p[0],
                y_px: p[1],
                w_px: 5.0,
                h_px: 5.0,
            })
            .collect();
        render(&mut img, &annotation(&traj, &track), &font());
        // Midway along a segment of the trajectory: the line colour.
        let (a, b) = (traj[22], traj[23]);
        let (mx, my) = (((a[0] + b[0]) / 2.0) as u32, ((a[1] + b[1]) / 2.0) as u32);
        let near = (mx - 1..=mx + 1).flat_map(|x| (my - 1..=my + 1).map(move |y| (x, y)));
        assert!(
            near.into_iter()
                .any(|(x, y)| *img.get_pixel(x, y) == YELLOW)
        );
        // The label backdrop darkened the top-left corner.
        assert!(img.get_pixel(20, 20).0[0] < 90);
        // Points off the image (a trajectory leaving the frame) do not panic.
        let traj = [[-50.0, -50.0], [1300.0, 800.0], [f64::NAN, 1.0]];
        let mut img = RgbImage::from_pixel(320, 180, Rgb([0, 0, 0]));
        render(&mut img, &annotation(&traj, &[]), &font());
    }

    #[test]
    fn the_inset_enlarges_the_object_4x() {
        let mut img = RgbImage::from_pixel(1280, 720, Rgb([50, 50, 50]));
        // A 4x4 white object at (300, 500).
        for y in 498..502 {
            for x in 298..302 {
                img.put_pixel(x, y, WHITE);
            }
        }
        let inset = Inset::cut(&img, [300.0, 500.0, 4.0, 4.0], 1.0);
        assert_eq!(inset.zoom, 4);
        assert_eq!(inset.zoomed.width(), 160);
        let white = inset.zoomed.pixels().filter(|p| **p == WHITE).count();
        assert_eq!(white, 16 * 16, "a 4x4 object becomes 16x16");
        // A box larger than the crop lowers the zoom instead of cutting the object.
        let big = Inset::cut(&img, [300.0, 500.0, 60.0, 30.0], 1.0);
        assert!(big.zoom < 4 && big.src.2 as f64 >= 60.0);
    }

    #[test]
    fn object_box_falls_back_to_the_nearest_track_point() {
        let track = [
            TrackPoint {
                t_s: 1.0,
                x_px: 10.0,
                y_px: 20.0,
                w_px: 3.0,
                h_px: 4.0,
            },
            TrackPoint {
                t_s: 2.0,
                x_px: 30.0,
                y_px: 40.0,
                w_px: 5.0,
                h_px: 6.0,
            },
        ];
        assert_eq!(object_box(None, &track, 1.9), Some([30.0, 40.0, 5.0, 6.0]));
        assert_eq!(
            object_box(Some([1.0, 2.0, 3.0, 4.0]), &track, 1.9),
            Some([1.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(object_box(None, &[], 1.0), None);
    }
}
