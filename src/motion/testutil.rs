//! Synthetic frames for the motion and tracking tests: a textured facade (window grid, smooth
//! shading, fine texture) defined as a continuous function so it can be shifted by fractions of
//! a pixel, small anti-aliased objects and streaks, Gaussian noise, gain and shake.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::calib::Calibration;

/// A calibration whose facade rectangle spans `x0..x1`, `y0..y1` of the image.
pub(crate) fn calib_rect(x0: f64, y0: f64, x1: f64, y1: f64, ignore: &[[f64; 4]]) -> Calibration {
    let mut t = format!(
        "[camera]\nid = \"test\"\n[facade]\ncorners_px = [[{x0}, {y0}], [{x1}, {y0}], [{x1}, {y1}], [{x0}, {y1}]]\n\
         width_m = 24.0\nheight_m = 42.0\nbase_height_m = 1.2\n[floors]\nfirst_storey_m = 3.6\n\
         storey_m = 3.0\n[windows]\nbays = 6\n"
    );
    for r in ignore {
        t += &format!(
            "[[ignore]]\npolygon_px = [[{}, {}], [{}, {}], [{}, {}], [{}, {}]]\n",
            r[0], r[1], r[2], r[1], r[2], r[3], r[0], r[3]
        );
    }
    Calibration::from_toml(&t).expect("test calibration")
}

/// An object to draw: a disk of `size_px` diameter, or a capsule (motion-blur streak) of
/// `length_px` along `angle_rad` when `length_px > 0`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Obj {
    pub x: f64,
    pub y: f64,
    pub size_px: f64,
    pub contrast: f64,
    pub length_px: f64,
    pub angle_rad: f64,
}

impl Obj {
    pub fn dot(x: f64, y: f64, size_px: f64, contrast: f64) -> Obj {
        Obj {
            x,
            y,
            size_px,
            contrast,
            length_px: 0.0,
            angle_rad: 0.0,
        }
    }
}

/// A scene of `w` x `h` pixels.
pub(crate) struct Scene {
    pub w: usize,
    pub h: usize,
    pub rng: ChaCha8Rng,
    /// Overall brightness of the facade (wall level).
    pub level: f64,
    /// Width of the window edges, pixels (1: a pin-sharp lens; real optics and compression
    /// soften them to 2-3).
    pub edge_px: f64,
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

impl Scene {
    pub fn new(w: usize, h: usize, seed: u64) -> Scene {
        Scene {
            w,
            h,
            rng: ChaCha8Rng::seed_from_u64(seed),
            level: 1.0,
            edge_px: 1.0,
        }
    }

    /// The facade's grey level at continuous position (x, y): walls, a grid of windows with
    /// soft edges ([`Scene::edge_px`]), shading and a fine texture.
    pub fn texture(&self, x: f64, y: f64) -> f64 {
        let bay = 24.0;
        let floor = 20.0;
        let fx = x.rem_euclid(bay);
        let fy = y.rem_euclid(floor);
        let e = self.edge_px;
        let win = smoothstep(5.0, 5.0 + e, fx)
            * (1.0 - smoothstep(17.0, 17.0 + e, fx))
            * smoothstep(4.0, 4.0 + e, fy)
            * (1.0 - smoothstep(14.0, 14.0 + e, fy));
        let wall = 120.0 + 20.0 * (x * 0.013).sin() + 15.0 * (y * 0.021).cos();
        let glass = 50.0 + 25.0 * ((x / bay).floor() * 1.7 + (y / floor).floor() * 0.9).sin();
        let fine = 4.0 * (x * 0.9 + y * 0.4).sin() * (y * 0.7).cos();
        (wall * (1.0 - win) + glass * win + fine) * self.level
    }

    /// One frame: the facade shifted by (`dx`, `dy`) pixels, the objects, times `gain`, plus
    /// Gaussian noise of `sigma` grey levels; rounded and clamped to 8 bits.
    pub fn frame(&mut self, objs: &[Obj], sigma: f64, gain: f64, dx: f64, dy: f64) -> Vec<u8> {
        self.frame_rotated(objs, sigma, gain, dx, dy, 0.0)
    }

    /// As [`Scene::frame`], the facade also rotated by `angle_rad` about the image centre
    /// (clockwise on screen for a positive angle): facade point p shows at R (p - c) + c + d.
    pub fn frame_rotated(
        &mut self,
        objs: &[Obj],
        sigma: f64,
        gain: f64,
        dx: f64,
        dy: f64,
        angle_rad: f64,
    ) -> Vec<u8> {
        let mut img = vec![0f64; self.w * self.h];
        let (cx, cy) = ((self.w as f64 - 1.0) / 2.0, (self.h as f64 - 1.0) / 2.0);
        let (sn, cs) = angle_rad.sin_cos();
        for y in 0..self.h {
            for x in 0..self.w {
                let (u, v) = (x as f64 - cx - dx, y as f64 - cy - dy);
                let (fx, fy) = (cs * u + sn * v + cx, -sn * u + cs * v + cy);
                img[y * self.w + x] = self.texture(fx, fy);
            }
        }
        for o in objs {
            self.draw(&mut img, o);
        }
        let normal = Normal::new(0.0, sigma.max(1e-9)).expect("sigma");
        img.iter()
            .map(|&v| {
                let n = if sigma > 0.0 {
                    normal.sample(&mut self.rng)
                } else {
                    0.0
                };
                (v * gain + n).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    }

    /// Adds an object's contrast weighted by its coverage of each pixel (4 x 4 supersampling).
    fn draw(&self, img: &mut [f64], o: &Obj) {
        let r = o.size_px / 2.0;
        let (ux, uy) = (o.angle_rad.cos(), o.angle_rad.sin());
        let half = o.length_px / 2.0;
        let reach = r + half + 2.0;
        let x0 = (o.x - reach).floor().max(0.0) as usize;
        let x1 = ((o.x + reach).ceil() as usize).min(self.w.saturating_sub(1));
        let y0 = (o.y - reach).floor().max(0.0) as usize;
        let y1 = ((o.y + reach).ceil() as usize).min(self.h.saturating_sub(1));
        if o.x + reach < 0.0 || o.y + reach < 0.0 {
            return;
        }
        for py in y0..=y1 {
            for px in x0..=x1 {
                let mut cov = 0.0;
                for sy in 0..4 {
                    for sx in 0..4 {
                        // Pixel (px, py) covers [px - 0.5, px + 0.5).
                        let qx = px as f64 - 0.5 + (sx as f64 + 0.5) / 4.0 - o.x;
                        let qy = py as f64 - 0.5 + (sy as f64 + 0.5) / 4.0 - o.y;
                        let t = (qx * ux + qy * uy).clamp(-half, half);
                        let (ex, ey) = (qx - t * ux, qy - t * uy);
                        if ex * ex + ey * ey <= r * r {
                            cov += 1.0 / 16.0;
                        }
                    }
                }
                if cov > 0.0 {
                    img[py * self.w + px] += o.contrast * cov;
                }
            }
        }
    }
}
