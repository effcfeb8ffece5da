//! Crops for the detector: a square window of the frame around a candidate, resampled (usually
//! upscaled) to the model's input size and converted from the decoded YUV picture to RGB, for the
//! window only. Whole frames are never converted.
//!
//! [`YuvView`] is a borrowed view of a decoded picture's planes (planar 4:2:0/4:2:2/4:4:4, NV12/NV21
//! or grey). [`crop_rgb`] is the fast path (per-axis tables, fixed-point bilinear, integer colour
//! matrix); [`crop_rgb_reference`] is the plain floating-point version it is tested against.
//!
//! Sampling: output pixel `(ox, oy)` samples the frame at `x0 + (ox + 0.5) * step - 0.5` (pixel
//! centres, `step = side / out`), bilinear, chroma sited at the centre of its luma block. Sample
//! points outside the picture become neutral grey (114, 114, 114), so windows at the frame's
//! edges keep their scale and the object keeps its place in the crop.

use image::RgbImage;

use crate::ingest::Frame;

/// Grey used outside the picture (the value YOLO-family models are trained to see as padding).
pub const PAD_GREY: u8 = 114;

/// A square window of a frame, in frame pixels. May extend beyond the frame.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CropWindow {
    /// Left edge, frame pixels.
    pub x0_px: f32,
    /// Top edge, frame pixels.
    pub y0_px: f32,
    /// Side length, frame pixels.
    pub side_px: f32,
}

impl CropWindow {
    /// A window of side `max(scale * object_px, min_side_px)` centred on (`cx_px`, `cy_px`), moved
    /// (not shrunk) to lie inside a `frame_w` x `frame_h` frame when it fits.
    pub fn around(
        cx_px: f32,
        cy_px: f32,
        object_px: f32,
        scale: f32,
        min_side_px: f32,
        frame_w: u32,
        frame_h: u32,
    ) -> Self {
        let side_px = (object_px.max(0.0) * scale).max(min_side_px).max(1.0);
        let place = |c: f32, size: f32| {
            let lo = c - side_px / 2.0;
            if side_px <= size {
                lo.clamp(0.0, size - side_px)
            } else {
                lo
            }
        };
        CropWindow {
            x0_px: place(cx_px, frame_w as f32),
            y0_px: place(cy_px, frame_h as f32),
            side_px,
        }
    }

    /// A box given in the pixels of this window's `out_px`-square crop, in frame pixels.
    pub fn to_frame(&self, b: BoxPx, out_px: u32) -> BoxPx {
        let s = self.side_px / out_px as f32;
        BoxPx {
            x: self.x0_px + b.x * s,
            y: self.y0_px + b.y * s,
            w: b.w * s,
            h: b.h * s,
        }
    }
}

/// An axis-aligned box: top-left corner and size, pixels.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BoxPx {
    /// Left, pixels.
    pub x: f32,
    /// Top, pixels.
    pub y: f32,
    /// Width, pixels.
    pub w: f32,
    /// Height, pixels.
    pub h: f32,
}

impl BoxPx {
    /// A box from its corners.
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        BoxPx {
            x: x1,
            y: y1,
            w: (x2 - x1).max(0.0),
            h: (y2 - y1).max(0.0),
        }
    }
    /// Area, square pixels.
    pub fn area(&self) -> f32 {
        self.w * self.h
    }
    /// Centre (x, y).
    pub fn centre(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
    /// Intersection over union with `o` (0 when either is empty).
    pub fn iou(&self, o: &BoxPx) -> f32 {
        let ix = (self.x + self.w).min(o.x + o.w) - self.x.max(o.x);
        let iy = (self.y + self.h).min(o.y + o.h) - self.y.max(o.y);
        if ix <= 0.0 || iy <= 0.0 {
            return 0.0;
        }
        let inter = ix * iy;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
    /// `[x, y, w, h]` rounded to 0.1 px, for JSON.
    pub fn to_array(&self) -> [f64; 4] {
        let r = |v: f32| (f64::from(v) * 10.0).round() / 10.0;
        [r(self.x), r(self.y), r(self.w), r(self.h)]
    }
}

/// One 8-bit plane: `height` rows of `width` samples, `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl<'a> Plane<'a> {
    /// A plane view. Panics when `data` is too short for the geometry.
    pub fn new(data: &'a [u8], width: usize, height: usize, stride: usize) -> Self {
        assert!(stride >= width, "stride {stride} < width {width}");
        assert!(
            height == 0 || data.len() >= stride * (height - 1) + width,
            "plane of {} bytes too short for {width}x{height} stride {stride}",
            data.len()
        );
        Plane {
            data,
            width,
            height,
            stride,
        }
    }
    #[inline]
    fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..y * self.stride + self.width]
    }
}

/// The chroma planes of a picture.
#[derive(Clone, Copy, Debug)]
pub enum Chroma<'a> {
    /// No chroma: a grey picture (taken as full-range grey).
    None,
    /// Separate U and V planes, subsampled by `1 << shift_x` and `1 << shift_y`.
    Planar {
        /// Cb.
        u: Plane<'a>,
        /// Cr.
        v: Plane<'a>,
        /// Horizontal subsampling, log2 (1 for 4:2:0 and 4:2:2).
        shift_x: u8,
        /// Vertical subsampling, log2 (1 for 4:2:0).
        shift_y: u8,
    },
    /// One interleaved plane at half resolution in both directions: NV12 (U first) or NV21.
    Interleaved {
        /// The interleaved plane; its `width` counts (U, V) pairs, its stride bytes.
        uv: Plane<'a>,
        /// True for NV21 (V first).
        v_first: bool,
    },
}

/// How Y'CbCr maps to RGB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YuvMatrix {
    /// Luma weight of red.
    pub kr: f32,
    /// Luma weight of blue.
    pub kb: f32,
    /// Full (0-255) rather than limited (16-235/240) range.
    pub full_range: bool,
}

impl YuvMatrix {
    /// BT.601, limited range (SD video, most JPEG-less camera streams below 720p).
    pub const BT601: YuvMatrix = YuvMatrix {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    /// BT.709, limited range (HD video).
    pub const BT709: YuvMatrix = YuvMatrix {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };

    /// (y scale, y offset, u->b, u->g, v->r, v->g): R = ys*(Y-yo) + vr*(V-128), etc.
    fn coefficients(&self) -> [f32; 6] {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, yo, cs) = if self.full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        [
            ys,
            yo,
            2.0 * (1.0 - self.kb) * cs,
            -2.0 * self.kb * (1.0 - self.kb) / kg * cs,
            2.0 * (1.0 - self.kr) * cs,
            -2.0 * self.kr * (1.0 - self.kr) / kg * cs,
        ]
    }
}

/// A borrowed view of a decoded picture: luma, chroma and colour matrix.
#[derive(Clone, Copy, Debug)]
pub struct YuvView<'a> {
    /// Luma.
    pub y: Plane<'a>,
    /// Chroma.
    pub chroma: Chroma<'a>,
    /// Colour matrix.
    pub matrix: YuvMatrix,
}

impl<'a> YuvView<'a> {
    /// The planes of a decoded frame. Pixel formats without usable chroma planes give a grey view
    /// of the luma plane (the detector still works, with less to go on).
    pub fn from_frame(frame: &'a Frame) -> YuvView<'a> {
        let luma = frame.luma();
        let y = Plane::new(luma.raw(), luma.width(), luma.height(), luma.stride());
        let grey = YuvView {
            y,
            chroma: Chroma::None,
            matrix: YuvMatrix::BT601,
        };
        let Some(av) = frame.av_frame() else {
            return grey;
        };
        use ffmpeg_next::format::Pixel as P;
        let fmt = av.format();
        let full_range = matches!(fmt, P::YUVJ420P | P::YUVJ422P | P::YUVJ444P | P::YUVJ440P)
            || av.color_range() == ffmpeg_next::color::Range::JPEG;
        let bt709 = match av.color_space() {
            ffmpeg_next::color::Space::BT709 => true,
            ffmpeg_next::color::Space::BT470BG | ffmpeg_next::color::Space::SMPTE170M => false,
            _ => y.height >= 720,
        };
        let base = if bt709 {
            YuvMatrix::BT709
        } else {
            YuvMatrix::BT601
        };
        let matrix = YuvMatrix { full_range, ..base };
        let plane = |i: usize| {
            Plane::new(
                av.data(i),
                av.plane_width(i) as usize,
                av.plane_height(i) as usize,
                av.stride(i),
            )
        };
        let planar = |shift_x: u8, shift_y: u8| Chroma::Planar {
            u: plane(1),
            v: plane(2),
            shift_x,
            shift_y,
        };
        let chroma = match fmt {
            P::YUV420P | P::YUVJ420P => planar(1, 1),
            P::YUV422P | P::YUVJ422P => planar(1, 0),
            P::YUV444P | P::YUVJ444P => planar(0, 0),
            P::YUV440P | P::YUVJ440P => planar(0, 1),
            P::YUV411P => planar(2, 0),
            P::YUV410P => planar(2, 2),
            P::NV12 | P::NV21 => Chroma::Interleaved {
                uv: plane(1),
                v_first: fmt == P::NV21,
            },
            _ => return grey,
        };
        YuvView { y, chroma, matrix }
    }

    /// Picture width, pixels.
    pub fn width(&self) -> usize {
        self.y.width
    }
    /// Picture height, pixels.
    pub fn height(&self) -> usize {
        self.y.height
    }

    fn chroma_shift(&self) -> (u8, u8) {
        match self.chroma {
            Chroma::None => (0, 0),
            Chroma::Planar {
                shift_x, shift_y, ..
            } => (shift_x, shift_y),
            Chroma::Interleaved { .. } => (1, 1),
        }
    }

    /// Chroma (U, V) at chroma-plane integer position.
    #[inline]
    fn uv_at(&self, cx: usize, cy: usize) -> (u8, u8) {
        match self.chroma {
            Chroma::None => (128, 128),
            Chroma::Planar { u, v, .. } => (u.row(cy)[cx], v.row(cy)[cx]),
            Chroma::Interleaved { uv, v_first } => {
                let i = cy * uv.stride + 2 * cx;
                let (a, b) = (uv.data[i], uv.data[i + 1]);
                if v_first { (b, a) } else { (a, b) }
            }
        }
    }

    fn chroma_size(&self) -> (usize, usize) {
        let (sx, sy) = self.chroma_shift();
        (
            self.width().div_ceil(1 << sx).max(1),
            self.height().div_ceil(1 << sy).max(1),
        )
    }
}

/// Sample position on an axis, in source pixel coordinates, of output index `o`.
#[inline]
fn sample_pos(start: f32, step: f32, o: usize) -> f32 {
    start + (o as f32 + 0.5) * step - 0.5
}

/// Chroma-plane coordinate of luma coordinate `s` with subsampling `shift`.
#[inline]
fn chroma_pos(s: f32, shift: u8) -> f32 {
    (s + 0.5) / (1u32 << shift) as f32 - 0.5
}

/// True when a luma sample position lies on the picture.
#[inline]
fn on_picture(s: f32, size: usize) -> bool {
    s >= -0.5 && s <= size as f32 - 0.5
}

/// Bilinear neighbours and weight of `s` on an axis of `size` samples (clamped at the edges).
#[inline]
fn neighbours(s: f32, size: usize) -> (usize, usize, f32) {
    let max = (size - 1) as f32;
    let s = s.clamp(0.0, max);
    let i0 = s.floor();
    let f = s - i0;
    let i0 = i0 as usize;
    (i0, (i0 + 1).min(size - 1), f)
}

/// Reference implementation: the RGB crop of `window`, `out_px` square, sampled in floating point
/// pixel by pixel. Slow; the definition [`crop_rgb`] is tested against.
pub fn crop_rgb_reference(view: &YuvView<'_>, window: &CropWindow, out_px: u32) -> RgbImage {
    let n = out_px as usize;
    let step = window.side_px / out_px as f32;
    let (w, h) = (view.width(), view.height());
    let (cw, ch) = view.chroma_size();
    let (sx, sy) = view.chroma_shift();
    let [ys, yo, ub, ug, vr, vg] = view.matrix.coefficients();
    let is_grey = matches!(view.chroma, Chroma::None);
    let mut img = RgbImage::new(out_px, out_px);
    for oy in 0..n {
        let py = sample_pos(window.y0_px, step, oy);
        for ox in 0..n {
            let px = sample_pos(window.x0_px, step, ox);
            if !on_picture(px, w) || !on_picture(py, h) {
                img.put_pixel(ox as u32, oy as u32, image::Rgb([PAD_GREY; 3]));
                continue;
            }
            let bil = |get: &dyn Fn(usize, usize) -> f32, x: f32, y: f32, sw: usize, sh: usize| {
                let (x0, x1, fx) = neighbours(x, sw);
                let (y0, y1, fy) = neighbours(y, sh);
                let top = get(x0, y0) * (1.0 - fx) + get(x1, y0) * fx;
                let bot = get(x0, y1) * (1.0 - fx) + get(x1, y1) * fx;
                top * (1.0 - fy) + bot * fy
            };
            let yv = bil(&|x, y| f32::from(view.y.row(y)[x]), px, py, w, h);
            let rgb = if is_grey {
                let g = yv.round().clamp(0.0, 255.0) as u8;
                [g, g, g]
            } else {
                let (cx, cy) = (chroma_pos(px, sx), chroma_pos(py, sy));
                let u = bil(&|x, y| f32::from(view.uv_at(x, y).0), cx, cy, cw, ch) - 128.0;
                let v = bil(&|x, y| f32::from(view.uv_at(x, y).1), cx, cy, cw, ch) - 128.0;
                let yy = ys * (yv - yo);
                let c = |f: f32| f.round().clamp(0.0, 255.0) as u8;
                [c(yy + vr * v), c(yy + ug * u + vg * v), c(yy + ub * u)]
            };
            img.put_pixel(ox as u32, oy as u32, image::Rgb(rgb));
        }
    }
    img
}

/// Per-axis sampling table: neighbour indices and 8-bit weights of the second neighbour.
struct Axis {
    i0: Vec<u32>,
    i1: Vec<u32>,
    w: Vec<u32>,
}

impl Axis {
    fn new(positions: impl Iterator<Item = f32>, size: usize) -> Axis {
        let (mut i0, mut i1, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for s in positions {
            let (a, b, f) = neighbours(s, size);
            i0.push(a as u32);
            i1.push(b as u32);
            w.push((f * 256.0).round() as u32);
        }
        Axis { i0, i1, w }
    }
}

/// Fixed-point bilinear value of a plane at (table x `k`, row pair), scaled by 256.
#[inline(always)]
fn lerp2(r0: &[u8], r1: &[u8], a: &Axis, k: usize, wy: u32, stride_mul: usize, off: usize) -> u32 {
    let (x0, x1, wx) = (
        a.i0[k] as usize * stride_mul + off,
        a.i1[k] as usize * stride_mul + off,
        a.w[k],
    );
    let top = u32::from(r0[x0]) * (256 - wx) + u32::from(r0[x1]) * wx;
    let bot = u32::from(r1[x0]) * (256 - wx) + u32::from(r1[x1]) * wx;
    (top * (256 - wy) + bot * wy + 128) >> 8
}

/// The RGB crop of `window`, `out_px` square: the fast path (tables per axis, fixed-point
/// bilinear, integer colour matrix). Matches [`crop_rgb_reference`] within 2 levels per channel.
pub fn crop_rgb(view: &YuvView<'_>, window: &CropWindow, out_px: u32) -> RgbImage {
    let n = out_px as usize;
    let step = window.side_px / out_px as f32;
    let (w, h) = (view.width(), view.height());
    let (cw, ch) = view.chroma_size();
    let (sx, sy) = view.chroma_shift();
    let xs: Vec<f32> = (0..n).map(|o| sample_pos(window.x0_px, step, o)).collect();
    let ys_pos: Vec<f32> = (0..n).map(|o| sample_pos(window.y0_px, step, o)).collect();
    // Output columns on the picture form one run [x_lo, x_hi); the rest is padding.
    let x_lo = xs.iter().position(|&p| on_picture(p, w)).unwrap_or(n);
    let x_hi = xs
        .iter()
        .rposition(|&p| on_picture(p, w))
        .map_or(x_lo, |i| i + 1);
    let lx = Axis::new(xs[x_lo..x_hi].iter().copied(), w);
    let cx = Axis::new(xs[x_lo..x_hi].iter().map(|&p| chroma_pos(p, sx)), cw);

    let [ys, yo, ub, ug, vr, vg] = view.matrix.coefficients();
    // Y, U, V arrive scaled by 256; coefficients by 256 => products by 65536.
    let k = |f: f32| (f * 256.0).round() as i32;
    let (kys, kub, kug, kvr, kvg) = (k(ys), k(ub), k(ug), k(vr), k(vg));
    let yoff = (yo * 256.0).round() as i32;
    let grey = matches!(view.chroma, Chroma::None);

    let mut img = RgbImage::from_pixel(out_px, out_px, image::Rgb([PAD_GREY; 3]));
    let buf: &mut [u8] = &mut img;
    for (oy, &py) in ys_pos.iter().enumerate() {
        if !on_picture(py, h) || x_lo == x_hi {
            continue;
        }
        let (y0, y1, fy) = neighbours(py, h);
        let wy = (fy * 256.0).round() as u32;
        let (r0, r1) = (view.y.row(y0), view.y.row(y1));
        let out = &mut buf[(oy * n + x_lo) * 3..(oy * n + x_hi) * 3];
        if grey {
            for (kx, px) in out.chunks_exact_mut(3).enumerate() {
                let v = ((lerp2(r0, r1, &lx, kx, wy, 1, 0) + 128) >> 8).min(255) as u8;
                px.copy_from_slice(&[v, v, v]);
            }
            continue;
        }
        let (c0, c1, fcy) = neighbours(chroma_pos(py, sy), ch);
        let wcy = (fcy * 256.0).round() as u32;
        let (u0, u1, v0, v1, mul, uo, vo) = match view.chroma {
            Chroma::Planar { u, v, .. } => (u.row(c0), u.row(c1), v.row(c0), v.row(c1), 1, 0, 0),
            Chroma::Interleaved { uv, v_first } => {
                let (uo, vo) = if v_first { (1, 0) } else { (0, 1) };
                let r0 = &uv.data[c0 * uv.stride..c0 * uv.stride + 2 * cw];
                let r1 = &uv.data[c1 * uv.stride..c1 * uv.stride + 2 * cw];
                (r0, r1, r0, r1, 2, uo, vo)
            }
            Chroma::None => unreachable!("grey handled above"),
        };
        for (kx, px) in out.chunks_exact_mut(3).enumerate() {
            let yv = lerp2(r0, r1, &lx, kx, wy, 1, 0) as i32 - yoff;
            let u = lerp2(u0, u1, &cx, kx, wcy, mul, uo) as i32 - 128 * 256;
            let v = lerp2(v0, v1, &cx, kx, wcy, mul, vo) as i32 - 128 * 256;
            let yy = kys * yv;
            let c = |s: i32| ((s + 32768) >> 16).clamp(0, 255) as u8;
            px[0] = c(yy + kvr * v);
            px[1] = c(yy + kug * u + kvg * v);
            px[2] = c(yy + kub * u);
        }
    }
    img
}

/// The crop of `window` from a frame, `out_px` square (fast path).
pub fn crop_frame(frame: &Frame, window: &CropWindow, out_px: u32) -> RgbImage {
    crop_rgb(&YuvView::from_frame(frame), window, out_px)
}

/// The crop of `window` from an RGB image (bilinear, grey outside), `out_px` square. For still
/// images (the `detect` command's tiles) and tests.
pub fn crop_image(img: &RgbImage, window: &CropWindow, out_px: u32) -> RgbImage {
    let n = out_px as usize;
    let step = window.side_px / out_px as f32;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut out = RgbImage::from_pixel(out_px, out_px, image::Rgb([PAD_GREY; 3]));
    if w == 0 || h == 0 {
        return out;
    }
    let xs: Vec<f32> = (0..n).map(|o| sample_pos(window.x0_px, step, o)).collect();
    let lx = Axis::new(xs.iter().copied(), w);
    let src: &[u8] = img;
    for oy in 0..n {
        let py = sample_pos(window.y0_px, step, oy);
        if !on_picture(py, h) {
            continue;
        }
        let (y0, y1, fy) = neighbours(py, h);
        let wy = (fy * 256.0).round() as u32;
        let (r0, r1) = (
            &src[y0 * w * 3..(y0 + 1) * w * 3],
            &src[y1 * w * 3..(y1 + 1) * w * 3],
        );
        for (ox, &px) in xs.iter().enumerate() {
            if !on_picture(px, w) {
                continue;
            }
            for c in 0..3 {
                let v = (lerp2(r0, r1, &lx, ox, wy, 3, c) + 128) >> 8;
                out.as_mut()[(oy * n + ox) * 3 + c] = v.min(255) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    struct Yuv420 {
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        w: usize,
        h: usize,
        ys: usize,
        cs: usize,
    }

    fn random_yuv420(w: usize, h: usize, seed: u64) -> Yuv420 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (ys, cs) = (w + 13, w.div_ceil(2) + 7);
        let ch = h.div_ceil(2);
        let mut f = |n: usize| (0..n).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
        Yuv420 {
            y: f(ys * h),
            u: f(cs * ch),
            v: f(cs * ch),
            w,
            h,
            ys,
            cs,
        }
    }

    impl Yuv420 {
        fn view(&self, matrix: YuvMatrix) -> YuvView<'_> {
            let (cw, ch) = (self.w.div_ceil(2), self.h.div_ceil(2));
            YuvView {
                y: Plane::new(&self.y, self.w, self.h, self.ys),
                chroma: Chroma::Planar {
                    u: Plane::new(&self.u, cw, ch, self.cs),
                    v: Plane::new(&self.v, cw, ch, self.cs),
                    shift_x: 1,
                    shift_y: 1,
                },
                matrix,
            }
        }
    }

    fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
        assert_eq!(a.dimensions(), b.dimensions());
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn fast_crop_matches_the_reference() {
        let pic = random_yuv420(97, 61, 7);
        let windows = [
            CropWindow {
                x0_px: 10.3,
                y0_px: 5.7,
                side_px: 24.0,
            }, // upscale
            CropWindow {
                x0_px: -8.0,
                y0_px: 40.0,
                side_px: 40.0,
            }, // past left and bottom edges
            CropWindow {
                x0_px: 0.0,
                y0_px: 0.0,
                side_px: 97.0,
            }, // downscale, whole width
            CropWindow {
                x0_px: 90.0,
                y0_px: -30.0,
                side_px: 12.0,
            },
        ];
        for matrix in [
            YuvMatrix::BT601,
            YuvMatrix {
                full_range: true,
                ..YuvMatrix::BT709
            },
        ] {
            let view = pic.view(matrix);
            for win in &windows {
                for out in [32, 45] {
                    let r = crop_rgb_reference(&view, win, out);
                    let f = crop_rgb(&view, win, out);
                    assert!(
                        max_diff(&r, &f) <= 2,
                        "{win:?} {out}: diff {}",
                        max_diff(&r, &f)
                    );
                }
            }
        }
    }

    #[test]
    fn nv12_and_planar_views_give_the_same_crop() {
        let pic = random_yuv420(40, 30, 3);
        let (cw, ch) = (20, 15);
        let mut uv = vec![0u8; cw * 2 * ch];
        for y in 0..ch {
            for x in 0..cw {
                uv[y * cw * 2 + 2 * x] = pic.u[y * pic.cs + x];
                uv[y * cw * 2 + 2 * x + 1] = pic.v[y * pic.cs + x];
            }
        }
        let nv12 = YuvView {
            y: Plane::new(&pic.y, pic.w, pic.h, pic.ys),
            chroma: Chroma::Interleaved {
                uv: Plane::new(&uv, cw, ch, cw * 2),
                v_first: false,
            },
            matrix: YuvMatrix::BT601,
        };
        let win = CropWindow {
            x0_px: 3.0,
            y0_px: 2.0,
            side_px: 20.0,
        };
        let a = crop_rgb(&pic.view(YuvMatrix::BT601), &win, 64);
        assert_eq!(crop_rgb(&nv12, &win, 64), a);
        assert!(max_diff(&crop_rgb_reference(&nv12, &win, 64), &a) <= 2);
    }

    #[test]
    fn colours_and_geometry_are_right() {
        // A red square (BT.601 limited: Y 81, U 90, V 240) on grey, 8x8 at (16, 16) in 48x48.
        let (w, h) = (48usize, 48usize);
        let mut y = vec![128u8; w * h];
        let mut u = vec![128u8; w * h / 4];
        let mut v = vec![128u8; w * h / 4];
        for r in 16..24 {
            y[r * w + 16..r * w + 24].fill(81);
        }
        for r in 8..12 {
            u[r * 24 + 8..r * 24 + 12].fill(90);
            v[r * 24 + 8..r * 24 + 12].fill(240);
        }
        let view = YuvView {
            y: Plane::new(&y, w, h, w),
            chroma: Chroma::Planar {
                u: Plane::new(&u, 24, 24, 24),
                v: Plane::new(&v, 24, 24, 24),
                shift_x: 1,
                shift_y: 1,
            },
            matrix: YuvMatrix::BT601,
        };
        let win = CropWindow::around(20.0, 20.0, 8.0, 3.0, 16.0, 48, 48);
        assert_eq!(
            win,
            CropWindow {
                x0_px: 8.0,
                y0_px: 8.0,
                side_px: 24.0
            }
        );
        let img = crop_rgb(&view, &win, 96);
        let centre = img.get_pixel(48, 48).0;
        assert!(
            centre[0] > 230 && centre[1] < 20 && centre[2] < 20,
            "{centre:?}"
        );
        let corner = img.get_pixel(2, 2).0;
        assert!(corner.iter().all(|&c| c.abs_diff(130) <= 3), "{corner:?}");
        // The square spans crop pixels 32..64 (frame 16..24 at 4x).
        assert!(img.get_pixel(33, 48).0[0] > 200 && img.get_pixel(28, 48).0[0] < 160);
        // A box in crop pixels maps back to the frame.
        let b = win.to_frame(
            BoxPx {
                x: 32.0,
                y: 32.0,
                w: 32.0,
                h: 32.0,
            },
            96,
        );
        assert_eq!(
            b,
            BoxPx {
                x: 16.0,
                y: 16.0,
                w: 8.0,
                h: 8.0
            }
        );
    }

    #[test]
    fn windows_stay_inside_the_frame_when_they_fit() {
        let w = CropWindow::around(5.0, 1075.0, 10.0, 4.0, 48.0, 1920, 1080);
        assert_eq!(
            w,
            CropWindow {
                x0_px: 0.0,
                y0_px: 1032.0,
                side_px: 48.0
            }
        );
        let big = CropWindow::around(50.0, 50.0, 100.0, 3.0, 48.0, 200, 100);
        assert_eq!(big.side_px, 300.0);
        assert_eq!(
            (big.x0_px, big.y0_px),
            (-100.0, -100.0),
            "too big: centred, not moved"
        );
    }

    #[test]
    fn image_crop_upscales_and_pads() {
        let mut src = RgbImage::new(4, 4);
        src.put_pixel(1, 1, image::Rgb([255, 0, 0]));
        let out = crop_image(
            &src,
            &CropWindow {
                x0_px: -4.0,
                y0_px: 0.0,
                side_px: 8.0,
            },
            8,
        );
        assert_eq!(out.get_pixel(0, 0).0, [PAD_GREY; 3]);
        assert_eq!(out.get_pixel(5, 1).0, [255, 0, 0]);
        assert_eq!(out.get_pixel(4, 0).0, [0, 0, 0]);
    }

    #[test]
    fn iou_of_boxes() {
        let a = BoxPx {
            x: 0.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        let b = BoxPx {
            x: 5.0,
            y: 0.0,
            w: 10.0,
            h: 10.0,
        };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&BoxPx { x: 20.0, ..a }), 0.0);
    }
}
