//! The per-pixel kernels of motion detection, each in two versions: a fast one written for the
//! auto-vectoriser (16-bit lanes, no branches, compiled for AVX-512/AVX2/SSE4.1/NEON and chosen
//! at run time by `multiversion`) and a plain scalar reference (`*_ref`) that states the maths
//! one pixel at a time in 32-bit arithmetic. Tests check that both agree exactly.
//!
//! Fixed-point conventions:
//! - background `bg`: grey level x 128 (Q7), at most 255 x 128 = 32640;
//! - differences `d4`: grey level x 4 (Q2), `d4 = 4 I - gain * bg / 32`;
//! - tile gain `gain_q11`: gain x 2048, at most [`MAX_GAIN_Q11`] (gain 4);
//! - box sums `s`: sum of the four `d4` of a 2 x 2 window (so 16 x the window's mean difference);
//! - variability `var`: running mean of `min(|d4|, 255)`.

use multiversion::multiversion;

/// Largest tile gain the kernels accept (gain 4.0 in Q11). Keeps every lane inside 16 bits.
pub const MAX_GAIN_Q11: u16 = 8192;
/// Gain 1.0 in Q11.
pub const UNIT_GAIN_Q11: u16 = 2048;
/// Largest variability multiplier (keeps `var * var_mult` inside 16 bits).
pub const MAX_VAR_MULT: i16 = 64;
/// Largest update-rate shift (keeps the rounded update inside 16 bits).
pub const MAX_RATE_SHIFT: u32 = 7;

/// Parameters of [`diff_update`] for one tile segment.
#[derive(Clone, Copy, Debug)]
pub struct UpdateParams {
    /// A pixel with `|d4|` above this counts as foreground for the update (slower rate).
    pub fg_thr_q2: i16,
    /// Background learning rate 2^-shift for background pixels, 1..=7.
    pub shift_bg: u32,
    /// Background learning rate 2^-shift for foreground pixels, 1..=7.
    pub shift_fg: u32,
    /// Variability learning rate 2^-shift, 1..=7.
    pub shift_var: u32,
    /// `|d4|` is clipped here (0..=255) before it enters the variability, so a pixel that is
    /// foreground for a few frames (a slow object) raises it little, one that is often
    /// foreground (flicker, sway) raises it to this level.
    pub var_clip_q2: i16,
}

/// Parameters of [`box_threshold`] for one tile segment.
#[derive(Clone, Copy, Debug)]
pub struct ThresholdParams {
    /// The tile's threshold on `|s|`.
    pub t_tile: i16,
    /// Per-pixel threshold `max variability of the window's 4 pixels * var_mult` (flicker and
    /// sway suppression), at most [`MAX_VAR_MULT`].
    pub var_mult: i16,
    /// The noise level whose exceedances are counted (the tile's current noise estimate).
    pub noise_level: i16,
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
/// variability updates. Writes `d4`; returns the sum of the updated background (Q7).
///
/// Per pixel: `d4 = 4 I - (bg * gain) >> 16` with `gain` the pixel's gain x 2048 (at most
/// [`MAX_GAIN_Q11`]); `bg += round((128 I - bg) / 2^k)` with `k` the
/// foreground shift when `|d4| > fg_thr_q2`, else the background shift;
/// `var += round((min(|d4|, var_clip_q2) - var) / 2^shift_var)`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn diff_update(
    img: &[u8],
    bg: &mut [u16],
    var: &mut [u8],
    d4: &mut [i16],
    gain: &[u16],
    p: UpdateParams,
) -> u32 {
    debug_assert!((1..=MAX_RATE_SHIFT).contains(&p.shift_bg));
    debug_assert!((1..=MAX_RATE_SHIFT).contains(&p.shift_fg));
    debug_assert!((1..=MAX_RATE_SHIFT).contains(&p.shift_var));
    let n = img
        .len()
        .min(bg.len())
        .min(var.len())
        .min(d4.len())
        .min(gain.len());
    let (img, bg, var, d4, gain) = (
        &img[..n],
        &mut bg[..n],
        &mut var[..n],
        &mut d4[..n],
        &gain[..n],
    );
    let (kb, kf, kv) = (p.shift_bg, p.shift_fg, p.shift_var);
    let (rb, rf, rv) = (1i16 << (kb - 1), 1i16 << (kf - 1), 1i16 << (kv - 1));
    let thr = p.fg_thr_q2;
    let vclip = p.var_clip_q2.clamp(0, 255);
    let mut sum = 0u32;
    const L: usize = 64;
    let mut i = 0;
    while i + L <= n {
        let mut acc = [0u32; L];
        let (im, b, v, d, g) = (
            &img[i..i + L],
            &mut bg[i..i + L],
            &mut var[i..i + L],
            &mut d4[i..i + L],
            &gain[i..i + L],
        );
        for j in 0..L {
            let iv = i16::from(im[j]);
            let bj = b[j];
            let gb4 = ((u32::from(bj) * u32::from(g[j].min(MAX_GAIN_Q11))) >> 16) as i16;
            let dj = (iv << 2) - gb4;
            d[j] = dj;
            let a = dj.abs();
            let delta = (iv << 7) - bj as i16;
            let step_b = (delta + rb) >> kb;
            let step_f = (delta + rf) >> kf;
            let step = if a > thr { step_f } else { step_b };
            let nb = (bj as i16 + step) as u16;
            b[j] = nb;
            acc[j] = u32::from(nb);
            let vj = i16::from(v[j]);
            let dv = a.min(vclip) - vj;
            v[j] = (vj + ((dv + rv) >> kv)) as u8;
        }
        sum += acc.iter().sum::<u32>();
        i += L;
    }
    for j in i..n {
        let iv = i16::from(img[j]);
        let bj = bg[j];
        let gb4 = ((u32::from(bj) * u32::from(gain[j].min(MAX_GAIN_Q11))) >> 16) as i16;
        let dj = (iv << 2) - gb4;
        d4[j] = dj;
        let a = dj.abs();
        let delta = (iv << 7) - bj as i16;
        let step = if a > thr {
            (delta + rf) >> kf
        } else {
            (delta + rb) >> kb
        };
        let nb = (bj as i16 + step) as u16;
        bg[j] = nb;
        sum += u32::from(nb);
        let vj = i16::from(var[j]);
        let dv = a.min(vclip) - vj;
        var[j] = (vj + ((dv + rv) >> kv)) as u8;
    }
    sum
}

/// Reference for [`diff_update`].
pub fn diff_update_ref(
    img: &[u8],
    bg: &mut [u16],
    var: &mut [u8],
    d4: &mut [i16],
    gain: &[u16],
    p: UpdateParams,
) -> u32 {
    let mut sum = 0u32;
    for x in 0..img.len() {
        let i = i32::from(img[x]);
        let b = i32::from(bg[x]);
        let g = i32::from(gain[x].min(MAX_GAIN_Q11));
        let comp = (b * g) >> 16; // 4 * gain * bg / 128
        let d = 4 * i - comp;
        d4[x] = d as i16;
        let k = if d.abs() > i32::from(p.fg_thr_q2) {
            p.shift_fg
        } else {
            p.shift_bg
        };
        // Round half up: floor((delta + 2^(k-1)) / 2^k).
        let delta = 128 * i - b;
        let nb = b + (delta + (1 << (k - 1))).div_euclid(1 << k);
        bg[x] = nb as u16;
        sum += nb as u32;
        let v = i32::from(var[x]);
        let dv = d.abs().min(i32::from(p.var_clip_q2).clamp(0, 255)) - v;
        var[x] = (v + (dv + (1 << (p.shift_var - 1))).div_euclid(1 << p.shift_var)) as u8;
    }
    sum
}

/// Difference of one row segment against a background row without updating it (used when the
/// background was shifted to follow camera shake): `d4 = 4 I - (bg * gain) >> 16`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn diff_only(img: &[u8], bg: &[u16], gain: &[u16], d4: &mut [i16]) {
    for (((d, &i), &b), &g) in d4.iter_mut().zip(img).zip(bg).zip(gain) {
        *d = (i16::from(i) << 2) - ((u32::from(b) * u32::from(g.min(MAX_GAIN_Q11))) >> 16) as i16;
    }
}

/// Reference for [`diff_only`].
pub fn diff_only_ref(img: &[u8], bg: &[u16], gain: &[u16], d4: &mut [i16]) {
    for x in 0..img.len() {
        let comp = (i32::from(bg[x]) * i32::from(gain[x].min(MAX_GAIN_Q11))) >> 16;
        d4[x] = (4 * i32::from(img[x]) - comp) as i16;
    }
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
/// the foreground test `|s| > max(t_tile, var_mult * max(v0[x], v0[x+1], v1[x], v1[x+1]))` with
/// `v0`, `v1` the variability of the window's two rows (one longer than `s`). Writes `s` and
/// `mask` (1 foreground, 0 not); returns (foreground count, count of `|s| > noise_level`).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn box_threshold(
    h_prev: &[i16],
    h_cur: &[i16],
    v0: &[u8],
    v1: &[u8],
    p: ThresholdParams,
    s: &mut [i16],
    mask: &mut [u8],
) -> (u32, u32) {
    debug_assert!(p.var_mult <= MAX_VAR_MULT);
    let n = h_prev
        .len()
        .min(h_cur.len())
        .min(v0.len().saturating_sub(1))
        .min(v1.len().saturating_sub(1))
        .min(s.len())
        .min(mask.len());
    let (hp, hc, s, mask) = (&h_prev[..n], &h_cur[..n], &mut s[..n], &mut mask[..n]);
    let (a0, a1, b0, b1) = (&v0[..n], &v0[1..n + 1], &v1[..n], &v1[1..n + 1]);
    let mut fg = 0u32;
    let mut over = 0u32;
    const L: usize = 64;
    let mut i = 0;
    while i + L <= n {
        let mut cnt = [0u8; L];
        let mut ov = [0u8; L];
        for j in 0..L {
            let k = i + j;
            let sj = hp[k] + hc[k];
            s[k] = sj;
            let a = sj.abs();
            let v = a0[k].max(a1[k]).max(b0[k]).max(b1[k]);
            let t = p.t_tile.max(i16::from(v) * p.var_mult);
            let m = u8::from(a > t);
            mask[k] = m;
            cnt[j] = m;
            ov[j] = u8::from(a > p.noise_level);
        }
        fg += cnt.iter().map(|&c| u32::from(c)).sum::<u32>();
        over += ov.iter().map(|&c| u32::from(c)).sum::<u32>();
        i += L;
    }
    for k in i..n {
        let sj = hp[k] + hc[k];
        s[k] = sj;
        let a = sj.abs();
        let v = a0[k].max(a1[k]).max(b0[k]).max(b1[k]);
        let t = p.t_tile.max(i16::from(v) * p.var_mult);
        let m = u8::from(a > t);
        mask[k] = m;
        fg += u32::from(m);
        over += u32::from(a > p.noise_level);
    }
    (fg, over)
}

/// Reference for [`box_threshold`].
pub fn box_threshold_ref(
    h_prev: &[i16],
    h_cur: &[i16],
    v0: &[u8],
    v1: &[u8],
    p: ThresholdParams,
    s: &mut [i16],
    mask: &mut [u8],
) -> (u32, u32) {
    let mut fg = 0;
    let mut over = 0;
    for x in 0..s.len() {
        let v = i32::from(h_prev[x]) + i32::from(h_cur[x]);
        s[x] = v as i16;
        let var = [v0[x], v0[x + 1], v1[x], v1[x + 1]]
            .into_iter()
            .max()
            .unwrap();
        let t = i32::from(p.t_tile).max(i32::from(var) * i32::from(p.var_mult));
        if v.abs() > t {
            mask[x] = 1;
            fg += 1;
        } else {
            mask[x] = 0;
        }
        if v.abs() > i32::from(p.noise_level) {
            over += 1;
        }
    }
    (fg, over)
}

// --- shifted background for camera shake ----------------------------------------------------------

/// Bilinear sample of a background shifted by a fraction of a pixel:
/// `out[x] = lerp(lerp(r0[x], r0[x + 1], wx), lerp(r1[x], r1[x + 1], wx), wy)` with weights in
/// Q15 (`0..=32767`) and each lerp `a + ((b - a) w + 2^14) >> 15`. `r0`, `r1` are one longer
/// than `out`.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx2+avx+fma",
    "x86_64+avx2+avx+fma",
    "x86_64+sse4.1+ssse3",
    "aarch64+neon"
))]
pub fn bilinear_row(r0: &[u16], r1: &[u16], wx: i16, wy: i16, out: &mut [u16]) {
    let n = out
        .len()
        .min(r0.len().saturating_sub(1))
        .min(r1.len().saturating_sub(1));
    let (wx, wy) = (i32::from(wx), i32::from(wy));
    let (a0, a1, b0, b1) = (&r0[..n], &r0[1..n + 1], &r1[..n], &r1[1..n + 1]);
    for x in 0..n {
        let (p, q) = (i32::from(a0[x]), i32::from(a1[x]));
        let top = p + (((q - p) * wx + (1 << 14)) >> 15);
        let (p, q) = (i32::from(b0[x]), i32::from(b1[x]));
        let bot = p + (((q - p) * wx + (1 << 14)) >> 15);
        out[x] = (top + (((bot - top) * wy + (1 << 14)) >> 15)) as u16;
    }
}

/// Reference for [`bilinear_row`].
pub fn bilinear_row_ref(r0: &[u16], r1: &[u16], wx: i16, wy: i16, out: &mut [u16]) {
    let lerp = |a: i32, b: i32, w: i32| a + ((b - a) * w + 16384).div_euclid(32768);
    for x in 0..out.len() {
        let top = lerp(i32::from(r0[x]), i32::from(r0[x + 1]), i32::from(wx));
        let bot = lerp(i32::from(r1[x]), i32::from(r1[x + 1]), i32::from(wx));
        out[x] = lerp(top, bot, i32::from(wy)) as u16;
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
                _ => if x % 2 == 0 { 0 } else { 255 },
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
            for &(kb, kf) in &[(1u32, 1u32), (5, 7), (7, 7), (3, 6)] {
                for &fg_thr_q2 in &[0i16, 40, 4000] {
                    v.push((gain_q11, UpdateParams {
                        fg_thr_q2,
                        shift_bg: kb,
                        shift_fg: kf,
                        shift_var: 1 + kb % 7,
                        var_clip_q2: [0i16, 60, 255, 400][(kb % 4) as usize],
                    }));
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
                        0 => (0..n).map(|_| r.random()).collect(),
                        1 => structured_u8(n, 3),
                        _ => structured_u8(n, 1),
                    };
                    let bg0: Vec<u16> = match kind {
                        0 => (0..n).map(|_| r.random_range(0..=32640)).collect(),
                        1 => (0..n).map(|x| if x % 3 == 0 { 32640 } else { 0 }).collect(),
                        _ => vec![0; n],
                    };
                    let var0: Vec<u8> = (0..n).map(|_| r.random()).collect();
                    let (mut bg_a, mut bg_b) = (bg0.clone(), bg0.clone());
                    let (mut v_a, mut v_b) = (var0.clone(), var0.clone());
                    let (mut d_a, mut d_b) = (vec![0i16; n], vec![0i16; n]);
                    let sa = diff_update(&img, &mut bg_a, &mut v_a, &mut d_a, &gain, p);
                    let sb = diff_update_ref(&img, &mut bg_b, &mut v_b, &mut d_b, &gain, p);
                    assert_eq!(d_a, d_b, "d4 n={n} {p:?}");
                    assert_eq!(bg_a, bg_b, "bg n={n} {p:?}");
                    assert_eq!(v_a, v_b, "var n={n} {p:?}");
                    assert_eq!(sa, sb, "sum n={n} {p:?}");
                    assert!(bg_a.iter().all(|&b| b <= 32640));
                    let mut d_c = vec![0i16; n];
                    let mut d_d = vec![0i16; n];
                    diff_only(&img, &bg0, &gain, &mut d_c);
                    diff_only_ref(&img, &bg0, &gain, &mut d_d);
                    assert_eq!(d_c, d_d);
                }
            }
        }
    }

    #[test]
    fn background_converges_to_a_constant_image() {
        let img = vec![200u8; 70];
        let mut bg = vec![0u16; 70];
        let mut var = vec![0u8; 70];
        let mut d = vec![0i16; 70];
        let gain = vec![UNIT_GAIN_Q11; 70];
        let p = UpdateParams {
            fg_thr_q2: i16::MAX,
            shift_bg: 5,
            shift_fg: 7,
            shift_var: 4,
            var_clip_q2: 255,
        };
        for _ in 0..600 {
            diff_update(&img, &mut bg, &mut var, &mut d, &gain, p);
        }
        // Within the dead zone of the rounded update (2^(k-1) / 128 grey levels).
        assert!(bg.iter().all(|&b| (25600 - 16..=25600).contains(&b)), "{bg:?}");
        assert!(d.iter().all(|&v| v.abs() <= 1));
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
            for &(t_tile, var_mult, noise_level) in
                &[(0i16, 0i16, 0i16), (40, 10, 80), (16000, 64, 16320)]
            {
                let p = ThresholdParams {
                    t_tile,
                    var_mult,
                    noise_level,
                };
                let hp: Vec<i16> = (0..n).map(|_| r.random_range(-8160..=2040)).collect();
                let hc: Vec<i16> = (0..n).map(|_| r.random_range(-8160..=2040)).collect();
                let v0: Vec<u8> = (0..n + 1).map(|_| r.random()).collect();
                let v1: Vec<u8> = (0..n + 1).map(|_| r.random_range(0..8)).collect();
                let (mut s_a, mut s_b) = (vec![0i16; n], vec![0i16; n]);
                let (mut m_a, mut m_b) = (vec![9u8; n], vec![9u8; n]);
                let ra = box_threshold(&hp, &hc, &v0, &v1, p, &mut s_a, &mut m_a);
                let rb = box_threshold_ref(&hp, &hc, &v0, &v1, p, &mut s_b, &mut m_b);
                assert_eq!((ra, &s_a, &m_a), (rb, &s_b, &m_b), "n={n} {p:?}");
            }
            let d4: Vec<i16> = (0..n + 1).map(|_| r.random_range(-4080..=1020)).collect();
            let (mut h_a, mut h_b) = (vec![0i16; n], vec![0i16; n]);
            pair_sum(&d4, &mut h_a);
            pair_sum_ref(&d4, &mut h_b);
            assert_eq!(h_a, h_b);
        }
    }

    #[test]
    fn bilinear_matches_reference_and_interpolates() {
        let mut r = rng();
        for &n in &LENS {
            for &(wx, wy) in &[(0i16, 0i16), (32767, 0), (0, 32767), (16384, 8192), (123, 30000)] {
                let r0: Vec<u16> = (0..n + 1).map(|_| r.random_range(0..=32640)).collect();
                let r1: Vec<u16> = (0..n + 1).map(|_| r.random_range(0..=32640)).collect();
                let (mut a, mut b) = (vec![0u16; n], vec![0u16; n]);
                bilinear_row(&r0, &r1, wx, wy, &mut a);
                bilinear_row_ref(&r0, &r1, wx, wy, &mut b);
                assert_eq!(a, b, "n={n} wx={wx} wy={wy}");
                if wx == 0 && wy == 0 {
                    assert_eq!(&a[..], &r0[..n]);
                }
            }
        }
        // Half-way between 0 and 1000 is 500.
        let mut out = [0u16; 1];
        bilinear_row(&[0, 1000], &[0, 1000], 16384, 0, &mut out);
        assert_eq!(out[0], 500);
    }
}
