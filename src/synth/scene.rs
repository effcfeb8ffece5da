//! The static 3-D scene: a residential tower (storeys, window bays, recessed windows with frames
//! and curtains, balconies with slabs and railings, air-conditioner boxes, floor bands, a cornice,
//! stains), neighbouring towers far behind, and the ground; ray intersection and shading.
//!
//! Geometry follows the world frame of [`super::camera`]: the facade wall is the plane z = 0,
//! spanning x in [0, width_m] and y in [0, top_m]; everything that protrudes (balconies, AC units,
//! bands) lies in 0 < z <= `max_protrusion_m` and is indexed by (storey, bay) cell so a ray only
//! tests the few boxes of the cells it crosses.

use rand::RngExt as _;

use super::SynthRng;
use super::camera::V3;
use super::noise;
use super::sky::{Lighting, Rgb, TimeOfDay};

/// An axis-aligned box.
#[derive(Clone, Copy, Debug)]
pub struct Aabb {
    /// Lower corner.
    pub min: V3,
    /// Upper corner.
    pub max: V3,
}

impl Aabb {
    /// Entry and exit distances and the entry face normal, when the ray meets the box in
    /// [`tmin`, `tmax`].
    #[inline]
    pub fn hit(&self, o: &V3, inv: &V3, tmin: f64, tmax: f64) -> Option<(f64, f64, V3)> {
        let mut t0 = tmin;
        let mut t1 = tmax;
        let mut n = V3::zeros();
        for a in 0..3 {
            let (mut ta, mut tb) = ((self.min[a] - o[a]) * inv[a], (self.max[a] - o[a]) * inv[a]);
            let mut sign = -1.0;
            if ta > tb {
                std::mem::swap(&mut ta, &mut tb);
                sign = 1.0;
            }
            if ta > t0 {
                t0 = ta;
                n = V3::zeros();
                n[a] = sign;
            }
            t1 = t1.min(tb);
            if t0 > t1 {
                return None;
            }
        }
        if n == V3::zeros() {
            // Origin inside the box: report the exit.
            return None;
        }
        Some((t0, t1, n))
    }
}

/// Materials of protruding parts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mat {
    /// Floor band / cornice: the accent colour.
    Band,
    /// Balcony slab (edge and soffit) and solid parapets.
    Slab,
    /// Metal balusters: see-through between bars.
    Bars,
    /// Glass railing or enclosure glazing: tinted, see-through, reflective.
    GlassRail,
    /// Air-conditioner outdoor unit.
    Ac,
    /// Laundry hanging on a balcony; the index picks a colour.
    Clothes(u8),
    /// Flower pot / plants on a balcony.
    Plant,
}

/// One protruding box.
#[derive(Clone, Debug)]
pub struct Part {
    /// Extent.
    pub bb: Aabb,
    /// Material.
    pub mat: Mat,
}

/// What occupies a bay, floor after floor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Column {
    /// A window per floor, often an AC unit under it.
    Window,
    /// A balcony per floor with a glass door behind it.
    Balcony,
}

/// Railing style of the building's balconies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Railing {
    /// Vertical metal bars.
    Bars,
    /// Solid parapet.
    Solid,
    /// Glass panels.
    Glass,
    /// A parapet with glazing up to the slab above (enclosed balcony).
    Enclosed,
}

/// A window or door opening in the wall.
#[derive(Clone, Debug)]
pub struct Opening {
    /// Left edge, world x.
    pub x0: f64,
    /// Right edge.
    pub x1: f64,
    /// Bottom (sill).
    pub y0: f64,
    /// Top (head).
    pub y1: f64,
    /// Depth of the glass behind the wall face, metres.
    pub recess_m: f64,
    /// Vertical panes.
    pub panes: u32,
    /// Height of a transom bar, if any.
    pub transom_y: Option<f64>,
    /// Curtain colour and the fraction of the width it covers (from the left or right).
    pub curtain: Option<(Rgb, f64, bool)>,
    /// Colour of the room seen through the glass.
    pub interior: Rgb,
    /// 1-based id of the window for the light schedule.
    pub id: u32,
    /// Light colour and brightness when the room light is on (dusk, night).
    pub light_rgb: Rgb,
}

/// Static colours of a building.
#[derive(Clone, Debug)]
pub struct Palette {
    /// Main wall.
    pub wall: Rgb,
    /// Bands, slabs, parapets.
    pub accent: Rgb,
    /// Window frames.
    pub frame: Rgb,
    /// Railings (bars).
    pub metal: Rgb,
    /// AC units.
    pub ac: Rgb,
    /// Glass reflectance at normal incidence.
    pub glass_f0: f64,
    /// Glass tint.
    pub glass_tint: Rgb,
    /// Strength of dirt streaks (0..1).
    pub stains: f64,
}

/// A neighbouring tower far behind (background only).
#[derive(Clone, Debug)]
pub struct Tower {
    /// Extent.
    pub bb: Aabb,
    /// Wall colour.
    pub wall: Rgb,
    /// Pattern seed.
    pub seed: u64,
}

/// The building and its surroundings.
#[derive(Clone, Debug)]
pub struct Building {
    /// Storeys (floor 1 is the ground floor).
    pub floors: u32,
    /// Height of the ground floor, metres.
    pub first_storey_m: f64,
    /// Height of each storey above it, metres.
    pub storey_m: f64,
    /// Bay width, metres.
    pub bay_w_m: f64,
    /// Bays across the facade.
    pub bays: u32,
    /// Column type of each bay.
    pub columns: Vec<Column>,
    /// Balcony depth, metres.
    pub balcony_depth_m: f64,
    /// Railing height above the balcony floor, metres.
    pub railing_h_m: f64,
    /// Railing style.
    pub railing: Railing,
    /// Depth of the building behind the facade, metres.
    pub depth_m: f64,
    /// Colours.
    pub palette: Palette,
    /// Texture seed.
    pub seed: u64,
    /// Protruding boxes.
    pub parts: Vec<Part>,
    /// Window and door openings.
    pub openings: Vec<Opening>,
    cell_parts: Vec<Vec<u32>>,
    cell_openings: Vec<Vec<u32>>,
    /// Largest protrusion in front of the wall, metres.
    pub max_protrusion_m: f64,
    /// Neighbouring towers.
    pub towers: Vec<Tower>,
}

/// What a ray hit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Surface {
    /// Nothing: the sky.
    Sky,
    /// The facade wall.
    Wall,
    /// The side face of a window recess.
    Reveal,
    /// Glass of opening `i`.
    Glass(u32),
    /// Frame of opening `i`.
    Frame(u32),
    /// Protruding part `i`.
    Part(u32),
    /// A side wall of the building.
    Side,
    /// The ground.
    Ground,
    /// Background tower `i`.
    Tower(u32),
}

/// A ray hit.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    /// Distance along the ray, metres.
    pub t: f64,
    /// Point.
    pub p: V3,
    /// Unit normal facing the ray.
    pub n: V3,
    /// Surface.
    pub s: Surface,
}

/// Radiance split by how it varies over a clip: `amb` is constant, `sun` is scaled by cloud
/// shadows, `emit` by the window light `win` (0 = none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Radiance {
    /// Constant part.
    pub amb: Rgb,
    /// Direct sunlight.
    pub sun: Rgb,
    /// Room light of window `win` when it is on.
    pub emit: Rgb,
    /// Window id of `emit` (0 = none).
    pub win: u32,
}

fn mul(a: Rgb, b: Rgb) -> Rgb {
    [a[0] * b[0], a[1] * b[1], a[2] * b[2]]
}
fn sc(a: Rgb, k: f32) -> Rgb {
    [a[0] * k, a[1] * k, a[2] * k]
}
fn add(a: Rgb, b: Rgb) -> Rgb {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn lerp3(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn jitter(rng: &mut SynthRng, c: Rgb, k: f32) -> Rgb {
    let g: f32 = rng.random_range(1.0 - k..1.0 + k);
    [
        c[0] * g * rng.random_range(0.97..1.03),
        c[1] * g * rng.random_range(0.97..1.03),
        c[2] * g * rng.random_range(0.97..1.03),
    ]
}

const WALLS: [Rgb; 7] = [
    [0.55, 0.47, 0.37],
    [0.46, 0.46, 0.45],
    [0.62, 0.60, 0.55],
    [0.58, 0.44, 0.40],
    [0.42, 0.40, 0.36],
    [0.66, 0.63, 0.58],
    [0.50, 0.52, 0.54],
];
const CLOTHES: [Rgb; 8] = [
    [0.45, 0.12, 0.12],
    [0.12, 0.18, 0.38],
    [0.62, 0.62, 0.58],
    [0.08, 0.08, 0.08],
    [0.22, 0.32, 0.25],
    [0.55, 0.45, 0.28],
    [0.4, 0.3, 0.38],
    [0.3, 0.4, 0.52],
];

impl Building {
    /// Height above the ground of the bottom of storey index `i` (0 = ground floor).
    pub fn floor_base_m(&self, i: u32) -> f64 {
        if i == 0 {
            0.0
        } else {
            self.first_storey_m + f64::from(i - 1) * self.storey_m
        }
    }

    /// Roof level, metres.
    pub fn roof_m(&self) -> f64 {
        self.floor_base_m(self.floors)
    }

    /// Top of the roof parapet, metres.
    pub fn top_m(&self) -> f64 {
        self.roof_m() + 1.3
    }

    /// Facade width, metres.
    pub fn width_m(&self) -> f64 {
        self.bay_w_m * f64::from(self.bays)
    }

    fn rows(&self) -> u32 {
        self.floors + 1
    }

    /// Storey index (0-based, the parapet is index `floors`) of height `y`.
    pub fn row_of(&self, y: f64) -> u32 {
        if y < self.first_storey_m {
            0
        } else {
            (1 + ((y - self.first_storey_m) / self.storey_m).floor().max(0.0) as u32)
                .min(self.floors)
        }
    }

    fn bay_of(&self, x: f64) -> i64 {
        (x / self.bay_w_m).floor() as i64
    }

    fn cell(&self, row: u32, bay: u32) -> usize {
        (row * self.bays + bay) as usize
    }

    /// A random building.
    pub fn random(rng: &mut SynthRng, time: TimeOfDay) -> Building {
        let floors = rng.random_range(14..34u32);
        let first_storey_m = (rng.random_range(3.6..5.0f64) * 20.0).round() / 20.0;
        let storey_m = (rng.random_range(2.8..3.2f64) * 20.0).round() / 20.0;
        let bay_w_m = (rng.random_range(3.0..4.4f64) * 10.0).round() / 10.0;
        let bays = rng.random_range(6..13u32);
        // A symmetric pattern of window and balcony columns.
        let half = bays.div_ceil(2);
        let mut pattern: Vec<Column> = (0..half)
            .map(|_| {
                if rng.random_bool(0.45) {
                    Column::Balcony
                } else {
                    Column::Window
                }
            })
            .collect();
        if !pattern.contains(&Column::Balcony) {
            pattern[0] = Column::Balcony;
        }
        let columns: Vec<Column> = (0..bays)
            .map(|b| {
                let i = b.min(bays - 1 - b) as usize;
                pattern[i.min(pattern.len() - 1)]
            })
            .collect();
        let railing = match rng.random_range(0..4) {
            0 => Railing::Bars,
            1 => Railing::Solid,
            2 => Railing::Glass,
            _ => Railing::Enclosed,
        };
        let wi = rng.random_range(0..WALLS.len());
        let wall = jitter(rng, WALLS[wi], 0.08);
        let accent = if rng.random_bool(0.5) {
            jitter(rng, [0.72, 0.71, 0.68], 0.06)
        } else {
            {
                let k = rng.random_range(0.6..1.25);
                jitter(rng, sc(wall, k), 0.05)
            }
        };
        let frame = match rng.random_range(0..3) {
            0 => [0.7, 0.7, 0.68],
            1 => [0.12, 0.12, 0.13],
            _ => [0.35, 0.35, 0.33],
        };
        let palette = Palette {
            wall,
            accent,
            frame,
            metal: if rng.random_bool(0.5) {
                [0.08, 0.08, 0.09]
            } else {
                [0.55, 0.56, 0.57]
            },
            ac: jitter(rng, [0.7, 0.7, 0.66], 0.05),
            glass_f0: rng.random_range(0.06..0.3),
            glass_tint: if rng.random_bool(0.4) {
                [0.75, 0.9, 0.92]
            } else {
                [0.9, 0.92, 0.9]
            },
            stains: rng.random_range(0.1..0.6),
        };
        let mut b = Building {
            floors,
            first_storey_m,
            storey_m,
            bay_w_m,
            bays,
            columns,
            balcony_depth_m: (rng.random_range(1.1..1.6f64) * 20.0).round() / 20.0,
            railing_h_m: rng.random_range(1.05..1.15),
            railing,
            depth_m: rng.random_range(12.0..20.0),
            palette,
            seed: rng.random(),
            parts: Vec::new(),
            openings: Vec::new(),
            cell_parts: Vec::new(),
            cell_openings: Vec::new(),
            max_protrusion_m: 0.0,
            towers: Vec::new(),
        };
        b.build(rng, time);
        b
    }

    fn add_part(&mut self, min: V3, max: V3, mat: Mat) {
        self.parts.push(Part {
            bb: Aabb { min, max },
            mat,
        });
    }

    fn add_opening(&mut self, rng: &mut SynthRng, x0: f64, x1: f64, y0: f64, y1: f64, door: bool) {
        let id = self.openings.len() as u32 + 1;
        let warm: f32 = rng.random_range(0.0..1.0);
        let light_rgb = sc(
            lerp3([1.0, 0.72, 0.42], [0.85, 0.93, 1.0], warm * warm),
            rng.random_range(0.25..0.9),
        );
        let curtain = rng.random_bool(0.45).then(|| {
            let k = rng.random_range(0..5);
            (
                jitter(
                    rng,
                    [
                        [0.75, 0.7, 0.6],
                        [0.5, 0.3, 0.25],
                        [0.3, 0.4, 0.6],
                        [0.8, 0.8, 0.78],
                        [0.55, 0.5, 0.35],
                    ][k],
                    0.1,
                ),
                rng.random_range(0.3..1.0),
                rng.random_bool(0.5),
            )
        });
        let h = y1 - y0;
        self.openings.push(Opening {
            x0,
            x1,
            y0,
            y1,
            recess_m: if door {
                0.1
            } else {
                rng.random_range(0.1..0.22)
            },
            panes: if door { 4 } else { rng.random_range(2..4) },
            transom_y: (!door && rng.random_bool(0.6)).then_some(y1 - h * 0.28),
            curtain,
            interior: jitter(rng, [0.35, 0.3, 0.26], 0.3),
            id,
            light_rgb,
        });
    }

    fn build(&mut self, rng: &mut SynthRng, time: TimeOfDay) {
        let _ = time;
        let bw = self.bay_w_m;
        let w = self.width_m();
        let bd = self.balcony_depth_m;
        let slab_t = 0.18;
        let win_w = bw * rng.random_range(0.45..0.7);
        let win_h = rng.random_range(1.4..1.8);
        let sill = rng.random_range(0.8..1.0);
        let ac_p = rng.random_range(0.3..0.8);
        for row in 0..self.floors {
            let base = self.floor_base_m(row);
            let next = self.floor_base_m(row + 1);
            if row > 0 {
                // Floor band across the facade.
                self.add_part(
                    V3::new(0.0, base - 0.12, 0.0),
                    V3::new(w, base + 0.1, 0.05),
                    Mat::Band,
                );
            }
            for bay in 0..self.bays {
                let x0 = f64::from(bay) * bw;
                let xc = x0 + bw / 2.0;
                if row == 0 {
                    // Ground floor: shop fronts / lobby glazing.
                    self.add_opening(rng, x0 + 0.3, x0 + bw - 0.3, 0.4, base.max(3.0) + 2.6, true);
                    continue;
                }
                match self.columns[bay as usize] {
                    Column::Window => {
                        let off = rng.random_range(-0.05..0.05) * bw;
                        self.add_opening(
                            rng,
                            xc - win_w / 2.0 + off,
                            xc + win_w / 2.0 + off,
                            base + sill,
                            base + sill + win_h,
                            false,
                        );
                        if rng.random_bool(ac_p) {
                            let side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
                            let ax = xc + side * rng.random_range(0.0..(bw / 2.0 - 0.5).max(0.01));
                            let top = base + sill - 0.1;
                            self.add_part(
                                V3::new(ax - 0.4, top - 0.56, 0.04),
                                V3::new(ax + 0.4, top, 0.34),
                                Mat::Ac,
                            );
                        }
                    }
                    Column::Balcony => {
                        let (bx0, bx1) = (x0 + 0.12, x0 + bw - 0.12);
                        self.add_part(
                            V3::new(bx0, base - slab_t, 0.0),
                            V3::new(bx1, base, bd),
                            Mat::Slab,
                        );
                        let rh = self.railing_h_m;
                        let (mat, thick) = match self.railing {
                            Railing::Bars => (Mat::Bars, 0.03),
                            Railing::Glass => (Mat::GlassRail, 0.02),
                            Railing::Solid | Railing::Enclosed => (Mat::Slab, 0.1),
                        };
                        let rail_h = if self.railing == Railing::Enclosed {
                            0.9
                        } else {
                            rh
                        };
                        self.add_part(
                            V3::new(bx0, base, bd - thick),
                            V3::new(bx1, base + rail_h, bd),
                            mat,
                        );
                        // Side walls of the balcony.
                        for sx in [bx0, bx1 - 0.1] {
                            self.add_part(
                                V3::new(sx, base, 0.0),
                                V3::new(sx + 0.1, base + rail_h, bd - thick),
                                Mat::Slab,
                            );
                        }
                        if self.railing == Railing::Enclosed {
                            self.add_part(
                                V3::new(bx0, base + rail_h, bd - 0.06),
                                V3::new(bx1, next - slab_t, bd - 0.04),
                                Mat::GlassRail,
                            );
                        }
                        // The glass door and window behind.
                        self.add_opening(
                            rng,
                            x0 + 0.35,
                            x0 + bw - 0.35,
                            base + 0.05,
                            base + 2.3,
                            true,
                        );
                        if rng.random_bool(0.18) {
                            let n = rng.random_range(1..3);
                            for _ in 0..n {
                                let cx = rng.random_range(bx0 + 0.4..bx1 - 0.4);
                                let hw = rng.random_range(0.15..0.35);
                                let len = rng.random_range(0.4..1.0);
                                let z = rng.random_range(0.4..(bd - 0.3).max(0.41));
                                let c = rng.random_range(0..CLOTHES.len()) as u8;
                                self.add_part(
                                    V3::new(cx - hw, next - slab_t - 0.15 - len, z),
                                    V3::new(cx + hw, next - slab_t - 0.15, z + 0.03),
                                    Mat::Clothes(c),
                                );
                            }
                        }
                        if rng.random_bool(0.08) {
                            let cx = rng.random_range(bx0 + 0.3..bx1 - 0.3);
                            self.add_part(
                                V3::new(cx - 0.25, base + rail_h - 0.1, bd - 0.45),
                                V3::new(cx + 0.25, base + rail_h + 0.35, bd - 0.12),
                                Mat::Plant,
                            );
                        }
                    }
                }
            }
        }
        // Cornice at the roof.
        let roof = self.roof_m();
        self.add_part(
            V3::new(0.0, roof - 0.2, 0.0),
            V3::new(w, roof + 0.5, 0.3),
            Mat::Band,
        );
        self.max_protrusion_m = self.parts.iter().map(|p| p.bb.max.z).fold(0.0, f64::max);
        // Index by cell.
        let cells = (self.rows() * self.bays) as usize;
        self.cell_parts = vec![Vec::new(); cells];
        self.cell_openings = vec![Vec::new(); cells];
        for (i, p) in self.parts.iter().enumerate() {
            let (r0, r1) = (self.row_of(p.bb.min.y), self.row_of(p.bb.max.y));
            let b0 = self.bay_of(p.bb.min.x).clamp(0, i64::from(self.bays) - 1) as u32;
            let b1 = self
                .bay_of(p.bb.max.x - 1e-9)
                .clamp(0, i64::from(self.bays) - 1) as u32;
            for r in r0..=r1 {
                for b in b0..=b1 {
                    let c = self.cell(r, b);
                    self.cell_parts[c].push(i as u32);
                }
            }
        }
        for (i, o) in self.openings.iter().enumerate() {
            let (r0, r1) = (self.row_of(o.y0), self.row_of(o.y1));
            let b0 = self.bay_of(o.x0).clamp(0, i64::from(self.bays) - 1) as u32;
            let b1 = self.bay_of(o.x1).clamp(0, i64::from(self.bays) - 1) as u32;
            for r in r0..=r1 {
                for b in b0..=b1 {
                    let c = self.cell(r, b);
                    self.cell_openings[c].push(i as u32);
                }
            }
        }
        // Neighbouring towers, far behind the facade on both sides.
        let n = rng.random_range(2..6);
        for _ in 0..n {
            let side = if rng.random_bool(0.5) { -1.0 } else { 1.0 };
            let cx = w / 2.0 + side * rng.random_range(w * 0.6 + 15.0..w + 160.0);
            let z1 = -rng.random_range(90.0..320.0);
            let hw = rng.random_range(10.0..25.0);
            let h = rng.random_range(30.0..110.0);
            self.towers.push(Tower {
                bb: Aabb {
                    min: V3::new(cx - hw, 0.0, z1 - 18.0),
                    max: V3::new(cx + hw, h, z1),
                },
                wall: {
                    let k = rng.random_range(0..WALLS.len());
                    jitter(rng, sc(WALLS[k], 0.7), 0.1)
                },
                seed: rng.random(),
            });
        }
    }

    /// The nearest surface along the ray `o + t d` (unit `d`) with `t` in (`tmin`, `tmax`).
    pub fn trace(&self, o: &V3, d: &V3, tmin: f64, tmax: f64) -> Hit {
        let inv = V3::new(1.0 / d.x, 1.0 / d.y, 1.0 / d.z);
        let mut best = Hit {
            t: tmax,
            p: o + d * tmax,
            n: -d,
            s: Surface::Sky,
        };
        // Protruding parts, possibly seen through bars.
        let mut t_from = tmin;
        for _ in 0..3 {
            match self.parts_hit(o, d, &inv, t_from, best.t) {
                Some((t, t_exit, n, i)) => {
                    let p = o + d * t;
                    if self.parts[i as usize].mat == Mat::Bars && self.bars_gap(i, &p) {
                        t_from = t_exit + 1e-6;
                        continue;
                    }
                    best = Hit {
                        t,
                        p,
                        n,
                        s: Surface::Part(i),
                    };
                    break;
                }
                None => break,
            }
        }
        // The wall and its openings.
        if d.z < 0.0 && o.z > 0.0 {
            let t = -o.z / d.z;
            if t > tmin && t < best.t {
                let p = o + d * t;
                if p.x >= 0.0 && p.x <= self.width_m() && p.y >= 0.0 && p.y <= self.top_m() {
                    best = self.wall_hit(o, d, t, p);
                }
            }
        }
        // Side walls.
        for (x, nx) in [(0.0, -1.0), (self.width_m(), 1.0)] {
            if (o.x - x) * nx > 0.0 && d.x * nx < 0.0 {
                let t = (x - o.x) / d.x;
                if t > tmin && t < best.t {
                    let p = o + d * t;
                    if p.z <= 0.0 && p.z >= -self.depth_m && p.y >= 0.0 && p.y <= self.top_m() {
                        best = Hit {
                            t,
                            p,
                            n: V3::new(nx, 0.0, 0.0),
                            s: Surface::Side,
                        };
                    }
                }
            }
        }
        if d.y < 0.0 && o.y > 0.0 {
            let t = -o.y / d.y;
            if t > tmin && t < best.t {
                best = Hit {
                    t,
                    p: o + d * t,
                    n: V3::new(0.0, 1.0, 0.0),
                    s: Surface::Ground,
                };
            }
        }
        for (i, tw) in self.towers.iter().enumerate() {
            if let Some((t, _, n)) = tw.bb.hit(o, &inv, tmin, best.t) {
                best = Hit {
                    t,
                    p: o + d * t,
                    n,
                    s: Surface::Tower(i as u32),
                };
            }
        }
        best
    }

    /// True when `p` is inside a protruding part or behind the wall (for collisions).
    pub fn solid_at(&self, p: &V3) -> bool {
        if p.x < 0.0 || p.x > self.width_m() || p.y > self.top_m() {
            return false;
        }
        if p.z <= 0.0 {
            return p.y >= 0.0;
        }
        if p.z > self.max_protrusion_m || p.y < 0.0 {
            return false;
        }
        let b = self.bay_of(p.x).clamp(0, i64::from(self.bays) - 1) as u32;
        let c = self.cell(self.row_of(p.y), b);
        self.cell_parts[c].iter().any(|&i| {
            let bb = &self.parts[i as usize].bb;
            (0..3).all(|a| p[a] >= bb.min[a] && p[a] <= bb.max[a])
        })
    }

    /// Largest protrusion of any part in the x-range [x0, x1] below height `y`, metres.
    pub fn protrusion_below(&self, x0: f64, x1: f64, y: f64) -> f64 {
        self.parts
            .iter()
            .filter(|p| p.bb.max.x > x0 && p.bb.min.x < x1 && p.bb.min.y < y && p.mat != Mat::Band)
            .map(|p| p.bb.max.z)
            .fold(0.05, f64::max)
    }

    fn bars_gap(&self, i: u32, p: &V3) -> bool {
        let bb = &self.parts[i as usize].bb;
        if p.y > bb.max.y - 0.06 || p.y < bb.min.y + 0.05 {
            return false;
        }
        let u = (p.x - bb.min.x).rem_euclid(0.12);
        u > 0.022
    }

    /// Nearest protruding part: (t entry, t exit, normal, index).
    fn parts_hit(
        &self,
        o: &V3,
        d: &V3,
        inv: &V3,
        tmin: f64,
        tmax: f64,
    ) -> Option<(f64, f64, V3, u32)> {
        let zmax = self.max_protrusion_m;
        // Interval of the ray inside the protrusion layer 0 <= z <= zmax.
        let (mut t0, mut t1) = (tmin, tmax);
        if d.z.abs() < 1e-12 {
            if o.z < 0.0 || o.z > zmax {
                return None;
            }
        } else {
            let (mut a, mut b) = (-o.z * inv.z, (zmax - o.z) * inv.z);
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            t0 = t0.max(a);
            t1 = t1.min(b);
        }
        if t0 > t1 || !t1.is_finite() {
            return None;
        }
        let (pa, pb) = (o + d * t0, o + d * t1);
        let (xl, xh) = (pa.x.min(pb.x), pa.x.max(pb.x));
        let (yl, yh) = (pa.y.min(pb.y), pa.y.max(pb.y));
        if xh < 0.0 || xl > self.width_m() || yh < 0.0 || yl > self.top_m() {
            return None;
        }
        let b0 = self.bay_of(xl).clamp(0, i64::from(self.bays) - 1) as u32;
        let b1 = self.bay_of(xh).clamp(0, i64::from(self.bays) - 1) as u32;
        let (r0, r1) = (self.row_of(yl.max(0.0)), self.row_of(yh.max(0.0)));
        let mut best: Option<(f64, f64, V3, u32)> = None;
        for r in r0..=r1 {
            for b in b0..=b1 {
                for &i in &self.cell_parts[self.cell(r, b)] {
                    let lim = best.map_or(t1, |h| h.0);
                    if let Some((t, te, n)) = self.parts[i as usize].bb.hit(o, inv, t0, lim)
                        && best.is_none_or(|h| t < h.0)
                    {
                        best = Some((t, te, n, i));
                    }
                }
            }
        }
        best
    }

    fn opening_at(&self, x: f64, y: f64) -> Option<u32> {
        if x < 0.0 || y < 0.0 || x > self.width_m() || y > self.top_m() {
            return None;
        }
        let b = self.bay_of(x).clamp(0, i64::from(self.bays) - 1) as u32;
        let c = self.cell(self.row_of(y), b);
        self.cell_openings[c].iter().copied().find(|&i| {
            let o = &self.openings[i as usize];
            x > o.x0 && x < o.x1 && y > o.y0 && y < o.y1
        })
    }

    fn wall_hit(&self, o: &V3, d: &V3, t: f64, p: V3) -> Hit {
        let Some(i) = self.opening_at(p.x, p.y) else {
            return Hit {
                t,
                p,
                n: V3::new(0.0, 0.0, 1.0),
                s: Surface::Wall,
            };
        };
        let op = &self.openings[i as usize];
        let tg = (-op.recess_m - o.z) / d.z;
        let pg = o + d * tg;
        if pg.x > op.x0 && pg.x < op.x1 && pg.y > op.y0 && pg.y < op.y1 {
            let s = if self.is_frame(op, &pg) {
                Surface::Frame(i)
            } else {
                Surface::Glass(i)
            };
            return Hit {
                t: tg,
                p: pg,
                n: V3::new(0.0, 0.0, 1.0),
                s,
            };
        }
        // The ray meets a reveal first.
        let mut best = (f64::INFINITY, V3::zeros());
        let cands = [
            (pg.x <= op.x0, op.x0, 0usize, 1.0),
            (pg.x >= op.x1, op.x1, 0, -1.0),
            (pg.y <= op.y0, op.y0, 1, 1.0),
            (pg.y >= op.y1, op.y1, 1, -1.0),
        ];
        for (applies, v, axis, sign) in cands {
            if applies && d[axis].abs() > 1e-12 {
                let tt = (v - o[axis]) / d[axis];
                if tt >= t - 1e-9 && tt < best.0 {
                    let mut n = V3::zeros();
                    n[axis] = sign;
                    best = (tt, n);
                }
            }
        }
        let tt = if best.0.is_finite() { best.0 } else { t };
        Hit {
            t: tt,
            p: o + d * tt,
            n: best.1,
            s: Surface::Reveal,
        }
    }

    fn is_frame(&self, op: &Opening, p: &V3) -> bool {
        let fw = 0.055;
        let (u, v) = (p.x - op.x0, p.y - op.y0);
        let (w, h) = (op.x1 - op.x0, op.y1 - op.y0);
        if u < fw || v < fw || w - u < fw || h - v < fw {
            return true;
        }
        let pane = w / f64::from(op.panes);
        let m = u.rem_euclid(pane);
        if m < fw * 0.5 || pane - m < fw * 0.5 {
            return true;
        }
        op.transom_y.is_some_and(|ty| (p.y - ty).abs() < fw * 0.5)
    }

    /// True when the straight path from `p` toward the sun leaves the facade unobstructed.
    pub fn sunlit(&self, p: &V3, n: &V3, sun: &V3) -> bool {
        if n.dot(sun) <= 0.0 {
            return false;
        }
        let o = p + n * 1e-4;
        let inv = V3::new(1.0 / sun.x, 1.0 / sun.y, 1.0 / sun.z);
        if self.parts_hit(&o, sun, &inv, 1e-6, 200.0).is_some() {
            return false;
        }
        // Inside a window recess: the reveal may shade the glass.
        if o.z < -1e-6 && sun.z > 0.0 {
            let t = -o.z / sun.z;
            let q = o + sun * t;
            if self.opening_at(q.x, q.y).is_none() {
                return false;
            }
        }
        true
    }

    fn wall_albedo(&self, p: &V3) -> Rgb {
        let s = self.seed;
        let big = noise::fbm2(s, p.x * 0.15, p.y * 0.12, 3) as f32;
        let fine = noise::value2(s ^ 7, p.x * 9.0, p.y * 9.0) as f32;
        let mut c = sc(self.palette.wall, 0.8 + 0.36 * big + 0.06 * fine);
        // Patches repainted or replaced at different times: per storey and bay.
        let cell = noise::rand3(s, self.bay_of(p.x), i64::from(self.row_of(p.y)), 9) as f32;
        if cell > 0.85 {
            c = sc(c, 0.9 + 0.25 * (cell - 0.85) / 0.15);
        }
        // Streaks of dirt running down from sills and AC units.
        let streak = noise::fbm2(s ^ 3, p.x * 3.5, p.y * 0.18, 3);
        if streak > 0.5 {
            let k = ((streak - 0.5) / 0.5).powf(1.1) * self.palette.stains;
            c = sc(c, 1.0 - 0.75 * k as f32);
        }
        // Grime near the ground and at the top.
        let ground = (-(p.y / 2.5)).exp() as f32;
        c = sc(c, 1.0 - 0.3 * ground);
        // Faint tile joints.
        let (tu, tv) = ((p.x / 0.24).fract(), (p.y / 0.06).fract());
        if tu < 0.05 || tv < 0.12 {
            c = sc(c, 0.93);
        }
        c
    }

    /// Reflectance of a surface point.
    fn albedo(&self, h: &Hit) -> Rgb {
        let pal = &self.palette;
        match h.s {
            Surface::Wall | Surface::Side => self.wall_albedo(&h.p),
            Surface::Reveal => sc(self.wall_albedo(&h.p), 0.9),
            Surface::Frame(_) => pal.frame,
            Surface::Part(i) => {
                let part = &self.parts[i as usize];
                let v = noise::value2(self.seed ^ 11, h.p.x * 2.0, h.p.y * 2.0) as f32;
                match part.mat {
                    Mat::Band | Mat::Slab => {
                        let mut c = sc(pal.accent, 0.9 + 0.2 * v);
                        if h.n.y < -0.5 {
                            // Soffits: water stains.
                            let st = noise::fbm2(self.seed ^ 5, h.p.x * 1.5, h.p.z * 1.5, 3);
                            c = sc(c, 1.0 - 0.4 * (st as f32 - 0.45).max(0.0));
                        }
                        c
                    }
                    Mat::Bars => pal.metal,
                    Mat::GlassRail => sc(pal.glass_tint, 0.2),
                    Mat::Ac => {
                        let bb = &part.bb;
                        let mut c = sc(pal.ac, 0.95 + 0.1 * v);
                        if h.n.z > 0.5 {
                            // Fan grille on the front.
                            let cx = bb.min.x + (bb.max.x - bb.min.x) * 0.38;
                            let cy = (bb.min.y + bb.max.y) / 2.0;
                            let r = ((h.p.x - cx).powi(2) + (h.p.y - cy).powi(2)).sqrt();
                            if r < 0.2 {
                                let ring = ((r * 60.0).fract() < 0.35) as u8 as f32;
                                c = sc(c, 0.35 + 0.25 * ring);
                            }
                        }
                        c
                    }
                    Mat::Clothes(k) => CLOTHES[k as usize % CLOTHES.len()],
                    Mat::Plant => {
                        let g = noise::value2(self.seed ^ 13, h.p.x * 25.0, h.p.y * 25.0) as f32;
                        [0.04 + 0.05 * g, 0.08 + 0.1 * g, 0.03 + 0.03 * g]
                    }
                }
            }
            Surface::Ground => {
                let g = noise::fbm2(self.seed ^ 17, h.p.x * 0.3, h.p.z * 0.3, 4) as f32;
                lerp3(
                    [0.12, 0.12, 0.12],
                    [0.2, 0.3, 0.12],
                    (g - 0.4).clamp(0.0, 1.0) * 2.0,
                )
            }
            Surface::Tower(i) => self.towers[i as usize].wall,
            Surface::Glass(_) | Surface::Sky => [0.0; 3],
        }
    }

    /// Radiance leaving the hit toward the camera, split into its time-varying parts.
    pub fn shade(&self, light: &Lighting, h: &Hit, d: &V3, depth: u32) -> Radiance {
        let mut r = Radiance::default();
        match h.s {
            Surface::Sky => {
                r.amb = light.sky(d);
                return r;
            }
            Surface::Glass(i) => return self.shade_glass(light, h, d, i),
            Surface::Tower(i) => return self.shade_tower(light, h, d, i),
            _ => {}
        }
        if let Surface::Part(i) = h.s
            && self.parts[i as usize].mat == Mat::GlassRail
            && depth < 2
        {
            // Tinted glass: what is behind, plus a reflection of the sky.
            let behind = self.trace(&h.p, d, 1e-4, 1e4);
            let mut r = self.shade(light, &behind, d, depth + 1);
            let tint = sc(self.palette.glass_tint, 0.78);
            r.amb = mul(r.amb, tint);
            r.sun = mul(r.sun, tint);
            r.emit = mul(r.emit, tint);
            let refl = V3::new(d.x, d.y, -d.z);
            r.amb = add(r.amb, sc(light.sky(&refl), 0.08));
            return r;
        }
        let albedo = self.albedo(h);
        let mut amb = light.ambient(&h.n);
        // Rough occlusion: recesses, the wall behind balconies, soffits.
        let occl = match h.s {
            Surface::Reveal => 0.65,
            Surface::Wall if self.under_balcony(&h.p) => 0.45,
            Surface::Frame(_) => 0.8,
            Surface::Part(i) if matches!(self.parts[i as usize].mat, Mat::Clothes(_)) => 0.7,
            _ => 1.0,
        };
        amb = sc(amb, occl);
        amb = add(amb, light.lamps_at(&h.p, &h.n));
        r.amb = mul(albedo, amb);
        if light.has_sun() && self.sunlit(&h.p, &h.n, &light.sun_dir) {
            let k = h.n.dot(&light.sun_dir) as f32;
            r.sun = mul(albedo, sc(light.sun_rgb, k));
        }
        if h.s == Surface::Ground || h.s == Surface::Side {
            // The side face is not indexed for sun occlusion: dim it a little.
            r.sun = sc(r.sun, 0.9);
        }
        r
    }

    fn under_balcony(&self, p: &V3) -> bool {
        let b = self.bay_of(p.x);
        if b < 0 || b >= i64::from(self.bays) || p.y < self.first_storey_m {
            return false;
        }
        self.columns[b as usize] == Column::Balcony
    }

    fn shade_glass(&self, light: &Lighting, h: &Hit, d: &V3, i: u32) -> Radiance {
        let op = &self.openings[i as usize];
        let pal = &self.palette;
        // Panes are never perfectly coplanar: tilt each pane's reflection a little.
        let pane = ((h.p.x - op.x0) / (op.x1 - op.x0) * f64::from(op.panes)).floor() as i64;
        let hv = noise::hash3(self.seed, i64::from(op.id), pane, 5);
        let tilt_x = (noise::unit(hv) - 0.5) * 0.06;
        let tilt_y = (noise::unit(noise::mix64(hv)) - 0.5) * 0.06;
        let refl = V3::new(d.x + tilt_x, d.y + tilt_y, -d.z).normalize();
        let cos = (-d.z).clamp(0.0, 1.0);
        let fres = (pal.glass_f0 + (1.0 - pal.glass_f0) * (1.0 - cos).powi(5)) as f32;
        let mut r = Radiance {
            amb: sc(mul(light.sky(&refl), pal.glass_tint), fres),
            ..Default::default()
        };
        if light.has_sun() && refl.dot(&light.sun_dir) > 0.9990 {
            r.sun = sc(light.sun_rgb, 6.0 * fres);
        }
        // The room behind: curtains near the glass, otherwise a dim interior that is brighter
        // toward the ceiling.
        let u = (h.p.x - op.x0) / (op.x1 - op.x0);
        let v = ((h.p.y - op.y0) / (op.y1 - op.y0)) as f32;
        let curtain = op.curtain.and_then(|(c, cover, left)| {
            let inside = if left { u < cover } else { u > 1.0 - cover };
            let fold = 0.8 + 0.2 * ((u * 60.0).sin() as f32);
            inside.then_some(sc(c, fold))
        });
        let through = 1.0 - fres;
        let daylight = sc(light.ambient(&V3::new(0.0, 0.0, 1.0)), 0.5);
        let room = match curtain {
            Some(c) => mul(c, sc(daylight, 0.45)),
            None => mul(op.interior, sc(daylight, 0.06 + 0.05 * v)),
        };
        r.amb = add(r.amb, sc(mul(room, pal.glass_tint), through));
        if light.time != TimeOfDay::Day {
            let pattern = match curtain {
                Some(c) => sc(c, 0.9),
                None => {
                    // A ceiling lamp: bright near the top, falling off downwards and sideways.
                    let du = (u - 0.5) as f32;
                    let k = 0.35 + 0.9 * v * v * (1.0 - du * du * 1.5).max(0.2);
                    sc(op.interior, k * 1.6)
                }
            };
            r.emit = sc(mul(mul(pattern, op.light_rgb), pal.glass_tint), through);
            r.win = op.id;
        }
        r
    }

    fn shade_tower(&self, light: &Lighting, h: &Hit, d: &V3, i: u32) -> Radiance {
        let tw = &self.towers[i as usize];
        // Window grid on the face.
        let (u, v) = if h.n.z.abs() > 0.5 {
            (h.p.x, h.p.y)
        } else {
            (h.p.z, h.p.y)
        };
        let (cu, cv) = ((u / 3.6).floor() as i64, (v / 3.0).floor() as i64);
        let (fu, fv) = ((u / 3.6).fract(), (v / 3.0).fract());
        let is_win = fu > 0.25 && fu < 0.8 && fv > 0.3 && fv < 0.8;
        let var = noise::rand3(tw.seed, cu, cv, 2) as f32;
        let mut c = if is_win {
            sc(light.sky(&V3::new(d.x, d.y.abs(), -d.z)), 0.12 + 0.35 * var)
        } else {
            mul(
                sc(
                    tw.wall,
                    0.8 + 0.35 * noise::fbm2(tw.seed, u * 0.05, v * 0.05, 3) as f32,
                ),
                add(
                    light.ambient(&h.n),
                    if light.has_sun() {
                        sc(light.sun_rgb, h.n.dot(&light.sun_dir).max(0.0) as f32)
                    } else {
                        [0.0; 3]
                    },
                ),
            )
        };
        if is_win
            && light.time != TimeOfDay::Day
            && noise::rand3(tw.seed, cu, cv, 1) < light.lit_window_fraction
        {
            c = add(c, [0.5, 0.38, 0.22]);
        }
        // Aerial perspective.
        let k = (1.0 - (-h.t / 500.0).exp()) as f32 * 0.8 + 0.15;
        let haze = light.sky(&V3::new(d.x, 0.02, d.z).normalize());
        Radiance {
            amb: lerp3(c, haze, k.min(0.9)),
            ..Default::default()
        }
    }
}
