//! Deterministic hash noise: integer hashes, value noise and fractal sums.
//!
//! Everything here is a pure function of its inputs (no state, no thread order), so a pixel's
//! value never depends on which rayon thread rendered it. Hand-written rather than taken from a
//! crate because the per-pixel sensor noise needs a few nanoseconds per call and bit-exact
//! reproducibility across runs.

/// A 64-bit mixing hash (splitmix64 finaliser) of one value.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hash of a seed and three integer coordinates.
#[inline]
pub fn hash3(seed: u64, x: i64, y: i64, z: i64) -> u64 {
    mix64(
        seed ^ mix64(
            (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
                ^ (z as u64).wrapping_mul(0x1656_67b1_9e37_79f9),
        ),
    )
}

/// A uniform value in [0, 1) from a hash.
#[inline]
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform value in [0, 1) for a seed and integer coordinates.
#[inline]
pub fn rand3(seed: u64, x: i64, y: i64, z: i64) -> f64 {
    unit(hash3(seed, x, y, z))
}

#[inline]
fn smooth(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}

/// 2-D value noise in [0, 1), smooth, with unit lattice spacing.
pub fn value2(seed: u64, x: f64, y: f64) -> f64 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let (tx, ty) = (smooth(x - xf), smooth(y - yf));
    let a = rand3(seed, xi, yi, 0);
    let b = rand3(seed, xi + 1, yi, 0);
    let c = rand3(seed, xi, yi + 1, 0);
    let d = rand3(seed, xi + 1, yi + 1, 0);
    let top = a + (b - a) * tx;
    let bottom = c + (d - c) * tx;
    top + (bottom - top) * ty
}

/// 1-D value noise in [0, 1): a smooth random function of time, for wind gusts and wobbles.
pub fn value1(seed: u64, t: f64) -> f64 {
    let tf = t.floor();
    let ti = tf as i64;
    let a = rand3(seed, ti, 0, 1);
    let b = rand3(seed, ti + 1, 0, 1);
    a + (b - a) * smooth(t - tf)
}

/// Fractal sum of `octaves` layers of 2-D value noise, normalised to [0, 1).
pub fn fbm2(seed: u64, x: f64, y: f64, octaves: u32) -> f64 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * value2(seed.wrapping_add(u64::from(o) * 0x5851), x * f, y * f);
        norm += amp;
        amp *= 0.5;
        f *= 2.03;
    }
    sum / norm
}

/// Fractal 1-D noise centred on 0, roughly in [-1, 1].
pub fn wobble(seed: u64, t: f64, octaves: u32) -> f64 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * (value1(seed.wrapping_add(u64::from(o) * 0x9e37), t * f) * 2.0 - 1.0);
        norm += amp;
        amp *= 0.5;
        f *= 2.1;
    }
    sum / norm * 1.7
}

/// An approximately Gaussian value (mean 0, standard deviation 1) from one 64-bit hash: the
/// centred sum of four 16-bit uniforms (Irwin-Hall), cheap enough for per-pixel sensor noise.
#[inline]
pub fn gauss_from_hash(h: u64) -> f32 {
    let s = (h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48);
    // Sum of 4 U(0, 65536): mean 131070, sd 65536 * sqrt(4/12).
    (s as f32 - 131_070.0) * (1.0 / 37_837.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_bounded_and_deterministic() {
        for i in 0..1000 {
            let x = i as f64 * 0.173;
            let v = fbm2(7, x, x * 0.7, 4);
            assert!((0.0..1.0).contains(&v));
            assert_eq!(v, fbm2(7, x, x * 0.7, 4));
        }
        let n = 20_000;
        let (mut m, mut s2) = (0.0f64, 0.0f64);
        for i in 0..n {
            let g = f64::from(gauss_from_hash(mix64(i)));
            m += g;
            s2 += g * g;
        }
        m /= n as f64;
        let sd = (s2 / n as f64 - m * m).sqrt();
        assert!(m.abs() < 0.03, "mean {m}");
        assert!((sd - 1.0).abs() < 0.03, "sd {sd}");
    }
}
