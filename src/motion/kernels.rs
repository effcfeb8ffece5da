//! The per-pixel kernels of motion detection, each in two versions: a fast one written for the
//! auto-vectoriser (8/16-bit lanes, no branches, compiled for AVX-512/AVX2/SSE4.1/NEON and chosen
//! at run time by `multiversion`) and a plain scalar reference (`*_ref`) that states the maths
//! one pixel at a time in 32-bit arithmetic. Tests check that both agree exactly.
//!
//! Fixed-point conventions:
//! - background `bg`: grey levels, 8 bits. Updates use stochastic rounding with a dither byte per
//!   pixel, so a slow running average is unbiased without wider storage (memory traffic, not
//!   arithmetic, bounds these passes);
//! - differences `d4`: grey level x 4 (Q2), `d4 = 4 I - (128 bg * gain) >> 16`;
//! - pixel gain `gain`: gain x 2048 (Q11), at most [`MAX_GAIN_Q11`] (gain 4);
//! - box sums `s`: sum of the four `d4` of a 2 x 2 window (so 16 x the window's mean difference);
//! - variability `var`: running mean of `min(|d4|, clip)`;
//! - rates: Q8 (`rate / 256` per update), 0..=[`MAX_RATE_Q8`].

// The references index on purpose: one pixel at a time, as the maths is written.
#![allow(clippy::needless_range_loop)]

use multiversion::multiversion;

/// Largest tile gain the kernels accept (gain 4.0 in Q11). Keeps every lane inside 16 bits.
pub const MAX_GAIN_Q11: u16 = 8192;
/// Gain 1.0 in Q11.
pub const UNIT_GAIN_Q11: u16 = 2048;
/// Largest variability multiplier (keeps `var * var_mult` inside 16 bits).
pub const MAX_VAR_MULT: i16 = 64;
/// Largest learning rate, x 256 (keeps the dithered update inside 16 bits).
pub const MAX_RATE_Q8: i16 = 127;

/// Parameters of [`diff_update`] for one tile segment.
#[derive(Clone, Copy, Debug)]
pub struct UpdateParams {
    /// A pixel with `|d4|` above this counts as foreground for the update (slower rate).
    pub fg_thr_q2: i16,
    /// Background learning rate x 256 where the pixel looks like background, 0..=127.
    pub rate_bg_q8: i16,
    /// Background learning rate x 256 where the pixel looks like foreground, 0..=127.
    pub rate_fg_q8: i16,
    /// Variability learning rate x 256, 0..=127.
    pub rate_var_q8: i16,
    /// `|d4|` is clipped here (0..=255) before it enters the variability.
    pub var_clip_q2: i16,
}

/// Parameters of [`box_threshold`] for one tile segment.
#[derive(Clone, Copy, Debug)]
pub struct ThresholdParams {
    /// The tile's threshold on a brighter window: `s > t_tile`.
    pub t_tile: i16,
    /// The tile's threshold on a darker window: `s < -t_dark` (lower than `t_tile` when only
    /// the brighter side is noisy: rain, lit drops).
    pub t_dark: i16,
    /// The noise level whose exceedances are counted (the tile's current noise estimate).
    pub noise_level: i16,
}

/// Counts of one [`box_threshold`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThresholdCounts {
    /// Windows over their threshold (the mask's ones).
    pub over_threshold: u32,
    /// Windows with `|s| > noise_level`.
    pub over_noise: u32,
    /// Windows with `s < -noise_level` (the darker side of `over_noise`).
    pub below_noise: u32,
}

// --- sum of a row -------------------------------------------------------------------------------

/// Sum of the bytes of `row`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn sum_u8(row: &[u8]) -> u32 {
    // Sum in u16 lanes over chunks of up to 256 bytes (no overflow), then widen.
    let mut total = 0u32;
    for chunk in row.chunks(256) {
        let mut acc = [0u16; 32];
        let mut it = chunk.chunks_exact(32);
        for c in &mut it {
            for (a, &v) in acc.iter_mut().zip(c) {
                *a += u16::from(v);
            }
        }
        let mut s: u32 = acc.iter().map(|&a| u32::from(a)).sum();
        s += it.remainder().iter().map(|&v| u32::from(v)).sum::<u32>();
        total += s;
    }
    total
}

/// Reference for [`sum_u8`].
pub fn sum_u8_ref(row: &[u8]) -> u32 {
    let mut s = 0u32;
    for &v in row {
        s += u32::from(v);
    }
    s
}

/// `acc[i] += row[i]` for every column.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn add_cols(acc: &mut [u32], row: &[u8]) {
    for (a, &v) in acc.iter_mut().zip(row) {
        *a += u32::from(v);
    }
}

/// Reference for [`add_cols`].
pub fn add_cols_ref(acc: &mut [u32], row: &[u8]) {
    for i in 0..acc.len().min(row.len()) {
        acc[i] += u32::from(row[i]);
    }
}

// --- difference against the background, with the background update ------------------------------

/// Difference of one row segment against the gain-compensated background, and the background and
/// variability updates. Writes `d4`; returns the sum of the background before the update.
///
/// Per pixel, with `u` the pixel's dither byte:
/// `d4 = 4 I - (128 bg * gain) >> 16`;
/// `bg += floor(((I - bg) * r + u) / 256)` with `r` the foreground rate when `|d4| > fg_thr_q2`,
/// else the background rate (unbiased: the expected step is `(I - bg) r / 256`);
/// `var += floor(((min(|d4|, var_clip_q2) - var) * rate_var + u) / 256)`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn diff_update(
    img: &[u8],
    bg: &mut [u8],
    var: &mut [u8],
    d4: &mut [i16],
    gain: &[u16],
    dither: &[u8],
    p: UpdateParams,
) -> u32 {
    debug_assert!(
        [p.rate_bg_q8, p.rate_fg_q8, p.rate_var_q8]
            .iter()
            .all(|r| (0..=MAX_RATE_Q8).contains(r))
    );
    debug_assert!((0..=255).contains(&p.var_clip_q2));
    let n = img
        .len()
        .min(bg.len())
        .min(var.len())
        .min(d4.len())
        .min(gain.len())
        .min(dither.len());
    /// Parameters as plain values: a select between two fields read through a reference
    /// compiles to a gather of addresses, a select between two values to a blend.
    #[derive(Clone, Copy)]
    struct Q {
        thr: i16,
        rb: i16,
        rf: i16,
        rv: i16,
        clip: i16,
    }
    #[inline(always)]
    fn one(i: u8, b: u8, v: u8, g: u16, u: u8, q: Q) -> (i16, u8, u8) {
        let b16 = u16::from(b) << 7;
        let gb4 = ((u32::from(b16) * u32::from(g.min(MAX_GAIN_Q11))) >> 16) as i16;
        let d = (i16::from(i) << 2) - gb4;
        let a = d.abs();
        let r = if a > q.thr { q.rf } else { q.rb };
        let u = i16::from(u);
        // |(I - bg) r| + u <= 255 * 127 + 255: inside 16 bits.
        let step = ((i16::from(i) - i16::from(b)) * r + u) >> 8;
        let nb = (i16::from(b) + step) as u8;
        let vv = i16::from(v);
        let vstep = ((a.min(q.clip) - vv) * q.rv + u) >> 8;
        (d, nb, (vv + vstep) as u8)
    }
    let q = Q {
        thr: p.fg_thr_q2,
        rb: p.rate_bg_q8,
        rf: p.rate_fg_q8,
        rv: p.rate_var_q8,
        clip: p.var_clip_q2,
    };
    const L: usize = 64;
    let mut sum = 0u32;
    let blocks = n / L;
    for k in 0..blocks {
        let r = k * L..(k + 1) * L;
        let im: &[u8; L] = img[r.clone()].try_into().expect("block");
        let gn: &[u16; L] = gain[r.clone()].try_into().expect("block");
        let dt: &[u8; L] = dither[r.clone()].try_into().expect("block");
        let b: &mut [u8; L] = (&mut bg[r.clone()]).try_into().expect("block");
        let v: &mut [u8; L] = (&mut var[r.clone()]).try_into().expect("block");
        let d: &mut [i16; L] = (&mut d4[r]).try_into().expect("block");
        let mut acc = [0u16; L];
        for j in 0..L {
            acc[j] = u16::from(b[j]);
            let (dj, nb, nv) = one(im[j], b[j], v[j], gn[j], dt[j], q);
            d[j] = dj;
            b[j] = nb;
            v[j] = nv;
        }
        sum += acc.iter().map(|&a| u32::from(a)).sum::<u32>();
    }
    for j in blocks * L..n {
        sum += u32::from(bg[j]);
        let (dj, nb, nv) = one(img[j], bg[j], var[j], gain[j], dither[j], q);
        d4[j] = dj;
        bg[j] = nb;
        var[j] = nv;
    }
    sum
}

/// Reference for [`diff_update`].
pub fn diff_update_ref(
    img: &[u8],
    bg: &mut [u8],
    var: &mut [u8],
    d4: &mut [i16],
    gain: &[u16],
    dither: &[u8],
    p: UpdateParams,
) -> u32 {
    let mut sum = 0u32;
    for x in 0..img.len() {
        let i = i32::from(img[x]);
        let b = i32::from(bg[x]);
        sum += b as u32;
        let g = i32::from(gain[x].min(MAX_GAIN_Q11));
        let d = 4 * i - (128 * b * g) / 65536; // 4 * gain * bg
        d4[x] = d as i16;
        let r = if d.abs() > i32::from(p.fg_thr_q2) {
            p.rate_fg_q8
        } else {
            p.rate_bg_q8
        };
        let u = i32::from(dither[x]);
        bg[x] = (b + ((i - b) * i32::from(r) + u).div_euclid(256)) as u8;
        let v = i32::from(var[x]);
        let target = d.abs().min(i32::from(p.var_clip_q2));
        var[x] = (v + ((target - v) * i32::from(p.rate_var_q8) + u).div_euclid(256)) as u8;
    }
    sum
}

/// Difference of one row segment against a background row without updating it:
/// `d4 = 4 I - (128 bg * gain) >> 16`. Returns the sum of the background.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn diff_only(img: &[u8], bg: &[u8], gain: &[u16], d4: &mut [i16]) -> u32 {
    let n = img.len().min(bg.len()).min(gain.len()).min(d4.len());
    const L: usize = 64;
    let mut sum = 0u32;
    let blocks = n / L;
    for k in 0..blocks {
        let r = k * L..(k + 1) * L;
        let im: &[u8; L] = img[r.clone()].try_into().expect("block");
        let b: &[u8; L] = bg[r.clone()].try_into().expect("block");
        let gn: &[u16; L] = gain[r.clone()].try_into().expect("block");
        let d: &mut [i16; L] = (&mut d4[r]).try_into().expect("block");
        let mut acc = [0u16; L];
        for j in 0..L {
            acc[j] = u16::from(b[j]);
            let gb4 = ((u32::from(b[j]) * 128 * u32::from(gn[j].min(MAX_GAIN_Q11))) >> 16) as i16;
            d[j] = (i16::from(im[j]) << 2) - gb4;
        }
        sum += acc.iter().map(|&a| u32::from(a)).sum::<u32>();
    }
    for j in blocks * L..n {
        sum += u32::from(bg[j]);
        let gb4 = ((u32::from(bg[j]) * 128 * u32::from(gain[j].min(MAX_GAIN_Q11))) >> 16) as i16;
        d4[j] = (i16::from(img[j]) << 2) - gb4;
    }
    sum
}

/// Reference for [`diff_only`].
pub fn diff_only_ref(img: &[u8], bg: &[u8], gain: &[u16], d4: &mut [i16]) -> u32 {
    let mut sum = 0;
    for x in 0..img.len() {
        sum += u32::from(bg[x]);
        let comp = (128 * i32::from(bg[x]) * i32::from(gain[x].min(MAX_GAIN_Q11))) / 65536;
        d4[x] = (4 * i32::from(img[x]) - comp) as i16;
    }
    sum
}

/// A linear ramp: `out[i] = (start_q8 + step_q8 * i) >> 8`, for per-pixel gains interpolated
/// between tile centres. The caller keeps every value inside `0..=u16::MAX`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn ramp(out: &mut [u16], start_q8: i32, step_q8: i32) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = ((start_q8 + step_q8 * i as i32) >> 8) as u16;
    }
}

/// Reference for [`ramp`].
pub fn ramp_ref(out: &mut [u16], start_q8: i32, step_q8: i32) {
    for i in 0..out.len() {
        out[i] = (i64::from(start_q8) + i64::from(step_q8) * i as i64).div_euclid(256) as u16;
    }
}

// --- 2 x 2 box sums and the threshold ---------------------------------------------------------------

/// Horizontal pair sums: `h[x] = d4[x] + d4[x + 1]` for `x < h.len()` (`d4` is one longer).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn pair_sum(d4: &[i16], h: &mut [i16]) {
    let n = h.len().min(d4.len().saturating_sub(1));
    let (a, b) = (&d4[..n], &d4[1..n + 1]);
    for ((o, &x), &y) in h[..n].iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// Reference for [`pair_sum`].
pub fn pair_sum_ref(d4: &[i16], h: &mut [i16]) {
    for x in 0..h.len() {
        h[x] = (i32::from(d4[x]) + i32::from(d4[x + 1])) as i16;
    }
}

/// 2 x 2 box sums `s = h_prev + h_cur` (the window anchored at the pixel of the previous row) and
/// the tile threshold test `s > t_tile || s < -t_dark`. Writes `s` and `mask` (1 over, 0 not);
/// returns the counts over the threshold and beyond the noise level on either side
/// ([`ThresholdCounts`]). The per-pixel variability threshold is applied afterwards, only where
/// this mask is set ([`suppress_variable`]).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn box_threshold(
    h_prev: &[i16],
    h_cur: &[i16],
    p: ThresholdParams,
    s: &mut [i16],
    mask: &mut [u8],
) -> ThresholdCounts {
    let n = h_prev.len().min(h_cur.len()).min(s.len()).min(mask.len());
    let (hp, hc, s, mask) = (&h_prev[..n], &h_cur[..n], &mut s[..n], &mut mask[..n]);
    let (t, td, nl) = (p.t_tile, p.t_dark, p.noise_level);
    const L: usize = 64;
    let mut fg = 0u32;
    let mut over = 0u32;
    let mut below = 0u32;
    let blocks = n / L;
    for k in 0..blocks {
        let r = k * L..(k + 1) * L;
        let hp: &[i16; L] = hp[r.clone()].try_into().expect("block");
        let hc: &[i16; L] = hc[r.clone()].try_into().expect("block");
        let sb: &mut [i16; L] = (&mut s[r.clone()]).try_into().expect("block");
        let mb: &mut [u8; L] = (&mut mask[r]).try_into().expect("block");
        let mut ov = [0u8; L];
        let mut bl = [0u8; L];
        for j in 0..L {
            let sj = hp[j] + hc[j];
            let a = sj.abs();
            sb[j] = sj;
            mb[j] = u8::from(sj > t) | u8::from(sj < -td);
            ov[j] = u8::from(a > nl);
            bl[j] = u8::from(sj < -nl);
        }
        // Lanes hold 0 or 1: 64 of them sum in u8 without overflow.
        fg += u32::from(mb.iter().sum::<u8>());
        over += u32::from(ov.iter().sum::<u8>());
        below += u32::from(bl.iter().sum::<u8>());
    }
    for j in blocks * L..n {
        let sj = hp[j] + hc[j];
        let a = sj.abs();
        s[j] = sj;
        let m = u8::from(sj > t) | u8::from(sj < -td);
        mask[j] = m;
        fg += u32::from(m);
        over += u32::from(a > nl);
        below += u32::from(sj < -nl);
    }
    ThresholdCounts {
        over_threshold: fg,
        over_noise: over,
        below_noise: below,
    }
}

/// Reference for [`box_threshold`].
pub fn box_threshold_ref(
    h_prev: &[i16],
    h_cur: &[i16],
    p: ThresholdParams,
    s: &mut [i16],
    mask: &mut [u8],
) -> ThresholdCounts {
    let mut fg = 0;
    let mut over = 0;
    let mut below = 0;
    for x in 0..s.len() {
        let v = i32::from(h_prev[x]) + i32::from(h_cur[x]);
        s[x] = v as i16;
        if v > i32::from(p.t_tile) || v < -i32::from(p.t_dark) {
            mask[x] = 1;
            fg += 1;
        } else {
            mask[x] = 0;
        }
        if v.abs() > i32::from(p.noise_level) {
            over += 1;
        }
        if v < -i32::from(p.noise_level) {
            below += 1;
        }
    }
    ThresholdCounts {
        over_threshold: fg,
        over_noise: over,
        below_noise: below,
    }
}

/// The per-pixel variability threshold, applied where `mask` is set: clears `mask[x]` when
/// `|s[x]| <= var_mult * max(v0[x], v0[x+1], v1[x], v1[x+1])`, the largest variability of the
/// window's four pixels (`v0`, `v1` its two rows, one longer than `mask`). Returns how many stay
/// set. Branch-free (the night foreground is dense: a skip over clear stretches mispredicts
/// there); `var_mult` is in `0..=`[`MAX_VAR_MULT`].
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn suppress_variable(mask: &mut [u8], s: &[i16], v0: &[u8], v1: &[u8], var_mult: i16) -> u32 {
    debug_assert!((0..=MAX_VAR_MULT).contains(&var_mult));
    let n = mask
        .len()
        .min(s.len())
        .min(v0.len().saturating_sub(1))
        .min(v1.len().saturating_sub(1));
    // var_mult <= 64 and var <= 255: the product fits in 16 bits, and so does |s|.
    let vm16 = var_mult.clamp(0, MAX_VAR_MULT) as u16;
    #[inline(always)]
    fn one(m: u8, s: i16, a: u8, b: u8, c: u8, d: u8, vm16: u16) -> u8 {
        let v = u16::from(a.max(b).max(c.max(d)));
        if s.unsigned_abs() > v * vm16 { m } else { 0 }
    }
    const L: usize = 64;
    let mut kept = 0u32;
    let blocks = n / L;
    for k in 0..blocks {
        let x0 = k * L;
        let mb: &mut [u8; L] = (&mut mask[x0..x0 + L]).try_into().expect("block");
        let sb: &[i16; L] = s[x0..x0 + L].try_into().expect("block");
        let a: &[u8; L] = v0[x0..x0 + L].try_into().expect("block");
        let b: &[u8; L] = v0[x0 + 1..x0 + L + 1].try_into().expect("block");
        let c: &[u8; L] = v1[x0..x0 + L].try_into().expect("block");
        let d: &[u8; L] = v1[x0 + 1..x0 + L + 1].try_into().expect("block");
        let mut set = [0u8; L];
        for j in 0..L {
            let m = one(mb[j], sb[j], a[j], b[j], c[j], d[j], vm16);
            mb[j] = m;
            set[j] = u8::from(m != 0);
        }
        // Lanes hold 0 or 1: 64 of them sum in u8 without overflow.
        kept += u32::from(set.iter().sum::<u8>());
    }
    for x in blocks * L..n {
        let m = one(mask[x], s[x], v0[x], v0[x + 1], v1[x], v1[x + 1], vm16);
        mask[x] = m;
        kept += u32::from(m != 0);
    }
    kept
}

/// Reference for [`suppress_variable`].
pub fn suppress_variable_ref(
    mask: &mut [u8],
    s: &[i16],
    v0: &[u8],
    v1: &[u8],
    var_mult: i16,
) -> u32 {
    let mut kept = 0;
    for x in 0..mask.len() {
        if mask[x] != 0 {
            let vm = v0[x].max(v0[x + 1]).max(v1[x]).max(v1[x + 1]);
            if i32::from(s[x]).abs() <= i32::from(vm) * i32::from(var_mult) {
                mask[x] = 0;
            } else {
                kept += 1;
            }
        }
    }
    kept
}

// --- resampling a shaken frame onto the background ------------------------------------------

/// Bilinear sample of a row pair shifted by a fraction of a pixel (a shaken frame registered
/// onto the background, see `shake::stabilize`):
/// `out[x] = round(lerp(lerp(r0[x], r0[x + 1], wx), lerp(r1[x], r1[x + 1], wx), wy))` with
/// weights in Q15 (`0..=32767`), computed in Q7 with each lerp `a + ((b - a) w + 2^14) >> 15`.
/// `r0`, `r1` are one longer than `out`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn bilinear_row(r0: &[u8], r1: &[u8], wx: i16, wy: i16, out: &mut [u8]) {
    let n = out
        .len()
        .min(r0.len().saturating_sub(1))
        .min(r1.len().saturating_sub(1));
    let (wx, wy) = (i32::from(wx), i32::from(wy));
    let (a0, a1, b0, b1) = (&r0[..n], &r0[1..n + 1], &r1[..n], &r1[1..n + 1]);
    for x in 0..n {
        let (p, q) = (i32::from(a0[x]) << 7, i32::from(a1[x]) << 7);
        let top = p + (((q - p) * wx + (1 << 14)) >> 15);
        let (p, q) = (i32::from(b0[x]) << 7, i32::from(b1[x]) << 7);
        let bot = p + (((q - p) * wx + (1 << 14)) >> 15);
        let v = top + (((bot - top) * wy + (1 << 14)) >> 15);
        out[x] = ((v + 64) >> 7) as u8;
    }
}

/// Reference for [`bilinear_row`].
pub fn bilinear_row_ref(r0: &[u8], r1: &[u8], wx: i16, wy: i16, out: &mut [u8]) {
    let lerp = |a: i32, b: i32, w: i32| a + ((b - a) * w + 16384).div_euclid(32768);
    for x in 0..out.len() {
        let top = lerp(
            128 * i32::from(r0[x]),
            128 * i32::from(r0[x + 1]),
            i32::from(wx),
        );
        let bot = lerp(
            128 * i32::from(r1[x]),
            128 * i32::from(r1[x + 1]),
            i32::from(wx),
        );
        out[x] = (lerp(top, bot, i32::from(wy)) + 64).div_euclid(128) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    /// Lengths that exercise full blocks, remainders and empty input.
    const LENS: [usize; 7] = [0, 1, 31, 64, 65, 200, 1921];

    fn structured_u8(n: usize, kind: usize) -> Vec<u8> {
        (0..n)
            .map(|x| match kind {
                0 => 0,
                1 => 255,
                2 => (x * 37 % 256) as u8,
                _ => {
                    if x % 2 == 0 {
                        0
                    } else {
                        255
                    }
                }
            })
            .collect()
    }

    #[test]
    fn sums_match_reference() {
        let mut r = rng();
        for &n in &LENS {
            for kind in 0..5 {
                let row: Vec<u8> = if kind == 4 {
                    (0..n).map(|_| r.random()).collect()
                } else {
                    structured_u8(n, kind)
                };
                assert_eq!(sum_u8(&row), sum_u8_ref(&row), "n={n} kind={kind}");
                let mut a = vec![5u32; n];
                let mut b = a.clone();
                add_cols(&mut a, &row);
                add_cols_ref(&mut b, &row);
                assert_eq!(a, b);
            }
        }
    }

    fn params_cases() -> Vec<(u16, UpdateParams)> {
        let mut v = Vec::new();
        for &gain_q11 in &[0u16, 1, 1536, UNIT_GAIN_Q11, 3000, MAX_GAIN_Q11, u16::MAX] {
            for &(rb, rf) in &[(0i16, 0i16), (8, 4), (MAX_RATE_Q8, MAX_RATE_Q8), (64, 1)] {
                for &fg_thr_q2 in &[0i16, 40, 4000] {
                    v.push((
                        gain_q11,
                        UpdateParams {
                            fg_thr_q2,
                            rate_bg_q8: rb,
                            rate_fg_q8: rf,
                            rate_var_q8: [4i16, 127, 0, 16][(rb % 4) as usize],
                            var_clip_q2: [0i16, 60, 255][(rf % 3) as usize],
                        },
                    ));
                }
            }
        }
        v
    }

    #[test]
    fn diff_update_matches_reference_on_random_and_extreme_input() {
        let mut r = rng();
        for &n in &LENS {
            for (g, p) in params_cases() {
                for kind in 0..4 {
                    let gain: Vec<u16> = if kind == 3 {
                        (0..n).map(|_| r.random_range(0..=MAX_GAIN_Q11)).collect()
                    } else {
                        vec![g; n]
                    };
                    let img: Vec<u8> = match kind {
                        0 | 3 => (0..n).map(|_| r.random()).collect(),
                        1 => structured_u8(n, 3),
                        _ => structured_u8(n, 1),
                    };
                    let bg0: Vec<u8> = match kind {
                        0 | 3 => (0..n).map(|_| r.random()).collect(),
                        1 => (0..n).map(|x| if x % 3 == 0 { 255 } else { 0 }).collect(),
                        _ => vec![0; n],
                    };
                    let var0: Vec<u8> = (0..n).map(|_| r.random()).collect();
                    let dither: Vec<u8> = if kind == 2 {
                        vec![255; n]
                    } else {
                        (0..n).map(|_| r.random()).collect()
                    };
                    let (mut bg_a, mut bg_b) = (bg0.clone(), bg0.clone());
                    let (mut v_a, mut v_b) = (var0.clone(), var0.clone());
                    let (mut d_a, mut d_b) = (vec![0i16; n], vec![0i16; n]);
                    let sa = diff_update(&img, &mut bg_a, &mut v_a, &mut d_a, &gain, &dither, p);
                    let sb =
                        diff_update_ref(&img, &mut bg_b, &mut v_b, &mut d_b, &gain, &dither, p);
                    assert_eq!(d_a, d_b, "d4 n={n} {p:?}");
                    assert_eq!(bg_a, bg_b, "bg n={n} {p:?}");
                    assert_eq!(v_a, v_b, "var n={n} {p:?}");
                    assert_eq!(sa, sb, "sum n={n} {p:?}");
                    let mut d_c = vec![0i16; n];
                    let mut d_d = vec![0i16; n];
                    let sc = diff_only(&img, &bg0, &gain, &mut d_c);
                    let sd = diff_only_ref(&img, &bg0, &gain, &mut d_d);
                    assert_eq!((sc, d_c), (sd, d_d));
                }
            }
        }
    }

    #[test]
    fn dithered_background_tracks_a_fractional_mean() {
        // Alternating 100 and 101: the running mean is 100.5, which an 8-bit background can only
        // hold on average. Rate 1/32, a different dither pattern per frame.
        let n = 4096;
        let mut bg = vec![0u8; n];
        let mut var = vec![0u8; n];
        let mut d = vec![0i16; n];
        let gain = vec![UNIT_GAIN_Q11; n];
        let mut r = rng();
        let p = UpdateParams {
            fg_thr_q2: i16::MAX,
            rate_bg_q8: 8,
            rate_fg_q8: 8,
            rate_var_q8: 4,
            var_clip_q2: 255,
        };
        let mut mean_late = 0.0;
        for f in 0..800 {
            let img = vec![100u8 + (f % 2) as u8; n];
            let dither: Vec<u8> = (0..n).map(|_| r.random()).collect();
            diff_update(&img, &mut bg, &mut var, &mut d, &gain, &dither, p);
            if f >= 600 {
                mean_late += bg.iter().map(|&b| f64::from(b)).sum::<f64>() / n as f64 / 200.0;
            }
        }
        assert!((mean_late - 100.5).abs() < 0.1, "mean {mean_late}");
    }

    #[test]
    fn ramp_matches_reference() {
        for &n in &LENS {
            for &(start, step) in &[(0, 0), (2048 << 8, 37), (8192 << 8, -4000), (100, 1 << 12)] {
                let (mut a, mut b) = (vec![0u16; n], vec![0u16; n]);
                ramp(&mut a, start, step);
                ramp_ref(&mut b, start, step);
                assert_eq!(a, b, "n={n} start={start} step={step}");
            }
        }
    }

    #[test]
    fn box_threshold_matches_reference() {
        let mut r = rng();
        for &n in &LENS {
            for &(t_tile, t_dark, noise_level) in &[
                (0i16, 0i16, 0i16),
                (40, 40, 80),
                (16000, 16000, 16320),
                (300, 300, 20),
                (300, 120, 100),
                (50, 16000, 60),
            ] {
                let p = ThresholdParams {
                    t_tile,
                    t_dark,
                    noise_level,
                };
                let hp: Vec<i16> = (0..n).map(|_| r.random_range(-8160..=2040)).collect();
                let hc: Vec<i16> = (0..n).map(|_| r.random_range(-8160..=2040)).collect();
                let (mut s_a, mut s_b) = (vec![0i16; n], vec![0i16; n]);
                let (mut m_a, mut m_b) = (vec![9u8; n], vec![9u8; n]);
                let ra = box_threshold(&hp, &hc, p, &mut s_a, &mut m_a);
                let rb = box_threshold_ref(&hp, &hc, p, &mut s_b, &mut m_b);
                assert_eq!((ra, &s_a, &m_a), (rb, &s_b, &m_b), "n={n} {p:?}");
                // Variability suppression against the full per-pixel rule.
                let v0: Vec<u8> = (0..n + 1).map(|_| r.random_range(0..40)).collect();
                let v1: Vec<u8> = (0..n + 1).map(|_| r.random_range(0..40)).collect();
                let kept = suppress_variable(&mut m_a, &s_a, &v0, &v1, 12);
                for x in 0..n {
                    let vm = v0[x].max(v0[x + 1]).max(v1[x]).max(v1[x + 1]);
                    let side = if s_a[x] > 0 { t_tile } else { t_dark };
                    let t = i32::from(side).max(12 * i32::from(vm));
                    assert_eq!(m_a[x] == 1, i32::from(s_a[x]).abs() > t, "x={x}");
                }
                assert_eq!(kept as usize, m_a.iter().filter(|&&m| m == 1).count());
            }
            let d4: Vec<i16> = (0..n + 1).map(|_| r.random_range(-4080..=1020)).collect();
            let (mut h_a, mut h_b) = (vec![0i16; n], vec![0i16; n]);
            pair_sum(&d4, &mut h_a);
            pair_sum_ref(&d4, &mut h_b);
            assert_eq!(h_a, h_b);
        }
    }

    #[test]
    fn suppress_variable_matches_reference_on_random_and_extreme_input() {
        let mut r = rng();
        for &n in &LENS {
            for kind in 0..5 {
                for &var_mult in &[0i16, 1, 8, 12, MAX_VAR_MULT] {
                    let mask: Vec<u8> = match kind {
                        0 => (0..n).map(|_| u8::from(r.random_bool(0.3))).collect(),
                        1 => vec![1; n],
                        2 => (0..n).map(|_| r.random()).collect(),
                        _ => (0..n).map(|x| u8::from(x % 7 != 0)).collect(),
                    };
                    let s: Vec<i16> = match kind {
                        0 | 2 => (0..n).map(|_| r.random()).collect(),
                        1 => (0..n)
                            .map(|x| [i16::MIN, i16::MAX, 0, -1, 16320, -16320][x % 6])
                            .collect(),
                        3 => (0..n).map(|_| r.random_range(-16320..=4080)).collect(),
                        _ => (0..n).map(|x| (x as i16 % 256) * 64).collect(),
                    };
                    let v: Vec<Vec<u8>> = (0..2)
                        .map(|_| match kind {
                            1 => vec![255; n + 1],
                            4 => (0..n + 1).map(|x| (x % 256) as u8).collect(),
                            3 => (0..n + 1).map(|_| r.random_range(0..40)).collect(),
                            _ => (0..n + 1).map(|_| r.random()).collect(),
                        })
                        .collect();
                    let (mut m_a, mut m_b) = (mask.clone(), mask.clone());
                    let ka = suppress_variable(&mut m_a, &s, &v[0], &v[1], var_mult);
                    let kb = suppress_variable_ref(&mut m_b, &s, &v[0], &v[1], var_mult);
                    assert_eq!((ka, &m_a), (kb, &m_b), "n={n} kind={kind} mult={var_mult}");
                }
            }
        }
    }

    #[test]
    fn bilinear_matches_reference_and_interpolates() {
        let mut r = rng();
        for &n in &LENS {
            for &(wx, wy) in &[
                (0i16, 0i16),
                (32767, 0),
                (0, 32767),
                (16384, 8192),
                (123, 30000),
            ] {
                let r0: Vec<u8> = (0..n + 1).map(|_| r.random()).collect();
                let r1: Vec<u8> = (0..n + 1).map(|_| r.random()).collect();
                let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                bilinear_row(&r0, &r1, wx, wy, &mut a);
                bilinear_row_ref(&r0, &r1, wx, wy, &mut b);
                assert_eq!(a, b, "n={n} wx={wx} wy={wy}");
                if wx == 0 && wy == 0 {
                    assert_eq!(&a[..], &r0[..n]);
                }
            }
        }
        // Half-way between 0 and 200 is 100.
        let mut out = [0u8; 1];
        bilinear_row(&[0, 200], &[0, 200], 16384, 0, &mut out);
        assert_eq!(out[0], 100);
    }
}
