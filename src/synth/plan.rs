//! Planning a clip from its options and seed: the building, the camera, the light, the thrown
//! objects (simulated), the distractors, the calibration rectangle and the ground truth. Every
//! random choice is drawn here, in a fixed order, from one seeded ChaCha generator; rendering
//! afterwards is a pure function of the plan.

use rand::RngExt as _;
use rand::SeedableRng as _;

use super::camera::{Camera, Shake, V3};
use super::distractors::{
    Bird, BirdMode, CloudShadow, DistractorKind, ExposureJumps, Flutter, Insect, LightSchedule,
    Rain,
};
use super::objects::{Body, Flight, Motion, ObjectKind};
use super::presets::Preset;
use super::scene::{Building, Column};
use super::sky::{Lighting, Rgb, TimeOfDay};
use super::tree::Tree;
use super::truth::{DistractorTruth, ObjectTruth, SceneTruth, TRUTH_FORMAT, TrackTruth, Truth};
use super::{SynthOptions, SynthRng};
use crate::calib::{Calibration, CameraSection, Facade, Floors, IgnoreRegion, Windows};
use crate::err;
use crate::error::Result;

/// The calibrated facade rectangle, world metres.
#[derive(Clone, Debug)]
pub struct Rect {
    /// Left edge, world x.
    pub x0_m: f64,
    /// Right edge, world x.
    pub x1_m: f64,
    /// Bottom edge, height above ground.
    pub base_m: f64,
    /// Top edge.
    pub top_m: f64,
    /// Window bays across it.
    pub bays: u32,
}

/// A thrown or dropped object with its simulated flight.
#[derive(Clone, Debug)]
pub struct PlannedObject {
    /// The body.
    pub body: Body,
    /// How it was released.
    pub motion: Motion,
    /// Release point, world.
    pub p0: V3,
    /// Release velocity, m/s.
    pub v0: V3,
    /// The flight.
    pub flight: Flight,
}

/// Everything needed to render a clip and write its truth.
#[derive(Clone, Debug)]
pub struct ClipPlan {
    /// Resolved options.
    pub opts: SynthOptions,
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// Frames.
    pub frames: u32,
    /// The camera.
    pub camera: Camera,
    /// The building.
    pub building: Building,
    /// The light.
    pub light: Lighting,
    /// The calibration rectangle.
    pub rect: Rect,
    /// Thrown objects.
    pub objects: Vec<PlannedObject>,
    /// Birds.
    pub birds: Vec<Bird>,
    /// Leaves and paper.
    pub flutters: Vec<Flutter>,
    /// Rain.
    pub rain: Option<Rain>,
    /// Insects at the lens.
    pub insects: Vec<Insect>,
    /// Room lights.
    pub lights: LightSchedule,
    /// A cloud shadow edge.
    pub cloud: Option<CloudShadow>,
    /// Exposure jumps.
    pub exposure_jumps: ExposureJumps,
    /// Foreground tree.
    pub tree: Option<Tree>,
    /// Whether the calibration lists the tree as an ignore region.
    pub tree_ignored: bool,
    /// Camera shake.
    pub shake: Shake,
    /// Exposure time, seconds.
    pub exposure_s: f64,
    /// Sensor noise: read noise (fraction of mid-grey) and shot-noise gain.
    pub noise: (f32, f32),
    /// White balance error, per channel.
    pub white_balance: Rgb,
    /// Colour saturation of the camera's processing.
    pub saturation: f32,
    /// Edge sharpening of the camera's processing.
    pub sharpen: f32,
    /// Corner darkening.
    pub vignette: f32,
    /// Contrast loss (haze, rain): fraction of the picture replaced by veiling light.
    pub veil: f32,
    /// Seed of per-frame sensor noise.
    pub noise_seed: u64,
    /// Distractors as listed in the truth.
    pub distractor_truth: Vec<DistractorTruth>,
    /// Tags.
    pub tags: Vec<String>,
    /// Keyframe interval.
    pub gop_frames: u32,
    /// Date and time stamp (None: the camera shows none).
    pub osd: Option<super::osd::Osd>,
    /// Bitrate, kbit/s.
    pub bitrate_kbps: u32,
}

fn has(list: &[DistractorKind], k: DistractorKind) -> bool {
    list.contains(&k)
}

impl ClipPlan {
    /// Plans a clip. Deterministic in `opts`.
    pub fn new(opts: &SynthOptions) -> Result<ClipPlan> {
        let mut rng = SynthRng::seed_from_u64(opts.seed);
        let preset = opts.preset;
        let (width, height) = opts.resolution.size(preset);
        let fps = opts.fps;
        if !(1..=60).contains(&fps) {
            return Err(err!(InvalidInput, "fps {fps} out of range 1-60"));
        }
        if !(opts.duration_s > 0.5 && opts.duration_s <= 600.0) {
            return Err(err!(
                InvalidInput,
                "duration {} s out of range (0.5-600 s]",
                opts.duration_s
            ));
        }
        let frames = (opts.duration_s * f64::from(fps)).round() as u32;
        let duration_s = f64::from(frames) / f64::from(fps);

        // Time of day.
        let time = opts.time_of_day.unwrap_or(match preset {
            Some(Preset::NightFarSmall | Preset::NightInsects) => TimeOfDay::Night,
            Some(Preset::LowContrast | Preset::HeavyRain) => {
                if rng.random_bool(0.7) {
                    TimeOfDay::Day
                } else {
                    TimeOfDay::Dusk
                }
            }
            _ => match rng.random_range(0..10) {
                0..=4 => TimeOfDay::Day,
                5..=6 => TimeOfDay::Dusk,
                _ => TimeOfDay::Night,
            },
        });
        let infrared =
            time == TimeOfDay::Night && opts.infrared.unwrap_or_else(|| rng.random_bool(0.5));

        // Objects and distractors.
        let n_objects = opts.objects.unwrap_or(match preset {
            Some(p) if p.distractors_only() => 0,
            _ => 1,
        });
        let mut kinds: Vec<DistractorKind> = match (&opts.distractors, preset) {
            (Some(list), _) => list.clone(),
            (None, Some(Preset::BirdsOnly)) => vec![DistractorKind::Bird],
            (None, Some(Preset::LeavesOnly)) => {
                vec![
                    DistractorKind::Leaf,
                    DistractorKind::Paper,
                    DistractorKind::Tree,
                ]
            }
            (None, Some(Preset::NightInsects)) => {
                vec![DistractorKind::Insect, DistractorKind::Lights]
            }
            (None, Some(Preset::ShakeAndLight)) => vec![
                DistractorKind::Shake,
                DistractorKind::CloudShadow,
                DistractorKind::Exposure,
            ],
            (None, Some(Preset::HeavyRain)) => vec![DistractorKind::Rain],
            (None, Some(Preset::BehindTree)) => vec![DistractorKind::Tree],
            (None, _) => {
                let mut v = Vec::new();
                let p = |k: DistractorKind| -> f64 {
                    match k {
                        DistractorKind::Bird => 0.5,
                        DistractorKind::Leaf => 0.25,
                        DistractorKind::Paper => 0.1,
                        DistractorKind::Rain => 0.12,
                        DistractorKind::Insect => {
                            if time == TimeOfDay::Night {
                                0.4
                            } else {
                                0.1
                            }
                        }
                        DistractorKind::Lights => {
                            if time == TimeOfDay::Day {
                                0.0
                            } else {
                                0.7
                            }
                        }
                        DistractorKind::CloudShadow => {
                            if time == TimeOfDay::Day {
                                0.5
                            } else {
                                0.0
                            }
                        }
                        DistractorKind::Exposure => 0.25,
                        DistractorKind::Tree => 0.4,
                        DistractorKind::Shake => 0.4,
                    }
                };
                for k in DistractorKind::ALL {
                    if rng.random_bool(p(k)) {
                        v.push(k);
                    }
                }
                if n_objects == 0 && v.is_empty() {
                    v.push(DistractorKind::Bird);
                }
                v
            }
        };
        if n_objects == 0 && opts.distractors.is_none() && preset.is_none() {
            // A distractor-only clip gets at least two kinds.
            if kinds.len() < 2 {
                let extra = if time == TimeOfDay::Night {
                    DistractorKind::Insect
                } else {
                    DistractorKind::Leaf
                };
                if !kinds.contains(&extra) {
                    kinds.push(extra);
                }
                if !kinds.contains(&DistractorKind::Bird) {
                    kinds.push(DistractorKind::Bird);
                }
            }
        }

        // Building and camera.
        let building = Building::random(&mut rng, time);
        let far = matches!(preset, Some(Preset::NightFarSmall | Preset::Tiny720p));
        let wind = V3::new(
            rng.random_range(-3.0..3.0),
            0.0,
            rng.random_range(-1.0..1.0),
        );
        // A camera placement, then the objects; when the objects cannot be placed in view, the
        // camera is placed anew.
        let mut placements = 0;
        let (camera, rect, objects) = 'place: loop {
            placements += 1;
            let mut attempt = 0;
            let (camera, rect) = loop {
                attempt += 1;
                if attempt > 200 {
                    return Err(err!(
                        Internal,
                        "seed {}: no usable camera placement",
                        opts.seed
                    ));
                }
                let dist = opts.distance_m.unwrap_or_else(|| {
                    if far {
                        rng.random_range(45.0..60.0)
                    } else {
                        rng.random_range(15.0..55.0)
                    }
                });
                let hfov: f64 = if far {
                    rng.random_range(40.0..60.0)
                } else {
                    rng.random_range(50.0..90.0)
                };
                let focal = f64::from(width) / 2.0 / (hfov.to_radians() / 2.0).tan();
                let vfov = 2.0 * (f64::from(height) / 2.0 / focal).atan().to_degrees();
                let cam_h = rng.random_range(1.2..4.0);
                let w = building.width_m();
                let cx = rng.random_range(0.25..0.75) * w;
                let pitch = vfov / 2.0 + rng.random_range(1.0..12.0);
                let aim_x = rng.random_range(0.3..0.7) * w;
                let yaw = ((aim_x - cx) / dist).atan().to_degrees() + rng.random_range(-6.0..6.0);
                let roll = rng.random_range(-1.5..1.5);
                let cam = Camera::new(
                    V3::new(cx, cam_h, dist),
                    yaw,
                    pitch,
                    roll,
                    focal,
                    width,
                    height,
                );
                if preset == Some(Preset::AboveTopEdge) {
                    // The building must rise well above the picture.
                    let top = V3::new(w / 2.0, building.roof_m(), 0.0);
                    if cam
                        .project(&top)
                        .is_none_or(|(p, _)| p.y > -0.3 * f64::from(height))
                    {
                        continue;
                    }
                }
                if let Some(rect) = calibration_rect(&cam, &building) {
                    break (cam, rect);
                }
            };
            let mut objects = Vec::new();
            for k in 0..n_objects {
                match plan_object(
                    &mut rng, opts, &camera, &building, &rect, &wind, duration_s, n_objects, k,
                ) {
                    Ok(obj) => objects.push(obj),
                    Err(e) if placements >= 8 => return Err(e),
                    Err(_) => continue 'place,
                }
            }
            break (camera, rect, objects);
        };

        let mut light = Lighting::random(&mut rng, time, &camera.pos, &camera.forward(), infrared);
        let low_contrast = preset == Some(Preset::LowContrast);
        if low_contrast {
            light.cloud_cover = 1.0;
            light.sun_rgb = light.sun_rgb.map(|c| c * 0.2);
        }
        let rain_int = if has(&kinds, DistractorKind::Rain) {
            if preset == Some(Preset::HeavyRain) {
                rng.random_range(0.8..1.0)
            } else {
                rng.random_range(0.25..0.8)
            }
        } else {
            0.0
        };
        if rain_int > 0.0 {
            light.cloud_cover = light.cloud_cover.max(0.85);
            light.sun_rgb = light.sun_rgb.map(|c| c * 0.15);
        }
        let veil = (if low_contrast {
            rng.random_range(0.25..0.4)
        } else {
            rng.random_range(0.0..0.08)
        } + 0.18 * rain_int) as f32;

        // Exposure and sensor.
        let exposure_s = match time {
            TimeOfDay::Day => 1.0 / rng.random_range(200.0..1000.0),
            TimeOfDay::Dusk => 1.0 / rng.random_range(30.0..100.0),
            TimeOfDay::Night => rng.random_range(0.5..1.0) / f64::from(fps),
        };
        let noise = match time {
            TimeOfDay::Day => (
                rng.random_range(0.0015..0.004),
                rng.random_range(0.0003..0.001),
            ),
            TimeOfDay::Dusk => (
                rng.random_range(0.005..0.01),
                rng.random_range(0.0015..0.004),
            ),
            TimeOfDay::Night => (
                rng.random_range(0.012..0.025),
                rng.random_range(0.004..0.01),
            ),
        };

        // Distractors.
        let mut distractor_truth = Vec::new();
        let mut birds = Vec::new();
        if has(&kinds, DistractorKind::Bird) {
            let n = if preset == Some(Preset::BirdsOnly) {
                rng.random_range(3..8)
            } else {
                rng.random_range(1..5)
            };
            for i in 0..n {
                let mode = (preset == Some(Preset::BirdsOnly) && i == 0).then_some(BirdMode::Swoop);
                birds.push(Bird::random(&mut rng, &camera, duration_s, mode));
            }
            distractor_truth.push(count("bird", n));
        }
        let mut flutters = Vec::new();
        for (kind, paper) in [(DistractorKind::Leaf, false), (DistractorKind::Paper, true)] {
            if has(&kinds, kind) {
                let n = if paper {
                    rng.random_range(1..4)
                } else {
                    rng.random_range(3..14)
                };
                for _ in 0..n {
                    flutters.push(Flutter::random(&mut rng, &camera, duration_s, paper, None));
                }
                distractor_truth.push(count(kind.name(), n));
            }
        }
        let rain = (rain_int > 0.0).then(|| Rain::random(&mut rng, rain_int));
        if rain.is_some() {
            distractor_truth.push(intensity("rain", rain_int));
        }
        let mut insects = Vec::new();
        if has(&kinds, DistractorKind::Insect) {
            let n = rng.random_range(1..4);
            for _ in 0..n {
                insects.push(Insect::random(
                    &mut rng,
                    width,
                    height,
                    duration_s,
                    time == TimeOfDay::Night,
                ));
            }
            distractor_truth.push(count("insect", n));
        }
        let n_windows = building.openings.len();
        let mut lights = LightSchedule {
            on: (0..=n_windows)
                .map(|i| i > 0 && rng.random_bool(light.lit_window_fraction))
                .collect(),
            ..Default::default()
        };
        if time != TimeOfDay::Day && has(&kinds, DistractorKind::Lights) {
            let n = rng.random_range(2..8);
            for _ in 0..n {
                let win = rng.random_range(1..=n_windows as u32);
                let on = !lights.on[win as usize];
                lights.switches.push((
                    win,
                    rng.random_range(0.3..duration_s),
                    on,
                    rng.random_bool(0.4),
                ));
            }
            for _ in 0..rng.random_range(0..3) {
                lights
                    .tv
                    .push((rng.random_range(1..=n_windows as u32), rng.random()));
            }
            distractor_truth.push(count("lights", n));
        }
        let cloud = (has(&kinds, DistractorKind::CloudShadow) && light.has_sun()).then(|| {
            let c = CloudShadow::random(&mut rng, duration_s);
            distractor_truth.push(intensity("cloud_shadow", f64::from(c.strength)));
            c
        });
        let exposure_jumps = if has(&kinds, DistractorKind::Exposure) {
            let j = ExposureJumps::random(&mut rng, duration_s);
            distractor_truth.push(count("exposure", j.jumps.len() as u32));
            j
        } else {
            ExposureJumps::default()
        };
        let shake = if has(&kinds, DistractorKind::Shake) {
            let s = Shake {
                amplitude_px: rng.random_range(0.8..4.0) * f64::from(height) / 1080.0,
                rotation_deg: rng.random_range(0.02..0.15),
                seed: rng.random(),
                freq_hz: rng.random_range(0.8..3.0),
            };
            distractor_truth.push(intensity("shake", (s.amplitude_px / 4.0).min(1.0)));
            s
        } else {
            Shake::none()
        };
        let mut tree = None;
        let mut tree_ignored = false;
        if has(&kinds, DistractorKind::Tree) {
            let mut t = if preset == Some(Preset::BehindTree) && !objects.is_empty() {
                // Put the crown across the middle of the first fall.
                let o = &objects[0];
                let mid = o
                    .flight
                    .at(o.flight.t0_s + (o.flight.end_s() - o.flight.t0_s) * 0.5);
                let target = mid
                    .and_then(|p| camera.project(&p))
                    .map(|(px, _)| px)
                    .unwrap_or(nalgebra::Vector2::new(
                        f64::from(width) / 2.0,
                        f64::from(height) / 2.0,
                    ));
                let y = target
                    .y
                    .clamp(0.2 * f64::from(height), 0.85 * f64::from(height));
                let reach = 1.0 - y / f64::from(height) + 0.15;
                Tree::random_at(&mut rng, width, height, reach, &light, Some(target.x))
            } else {
                let reach = rng.random_range(0.3..0.75);
                Tree::random_at(&mut rng, width, height, reach, &light, None)
            };
            if has(&kinds, DistractorKind::Leaf) {
                // Some leaves come off the tree, close to the camera.
                for _ in 0..rng.random_range(1..4) {
                    flutters.push(Flutter::random(
                        &mut rng,
                        &camera,
                        duration_s,
                        false,
                        Some(f64::from(t.depth_m)),
                    ));
                }
            }
            t.depth_m = t.depth_m.min(14.0);
            tree_ignored = rng.random_bool(0.5);
            tree = Some(t);
            distractor_truth.push(count("tree", 1));
        }

        let mut tags = Vec::new();
        if time != TimeOfDay::Day {
            tags.push(time.name().to_string());
        }
        if infrared {
            tags.push("infrared".into());
        }
        if rain.is_some() {
            tags.push("rain".into());
        }
        if camera.pos.z >= 45.0 {
            tags.push("far".into());
        }
        if low_contrast {
            tags.push("low_contrast".into());
        }
        if shake.amplitude_px > 0.0 {
            tags.push("shake".into());
        }
        if n_objects == 0 {
            tags.push("distractors_only".into());
        }
        if let Some(p) = preset {
            tags.push(format!("preset:{}", p.name()));
        }
        let bitrate_kbps = opts.bitrate_kbps.unwrap_or_else(|| {
            let base = match height {
                h if h <= 720 => 2500.0,
                h if h <= 1080 => 3500.0,
                _ => 4500.0,
            };
            (base * rng.random_range(0.8..1.3f64)).round() as u32
        });
        let plan = ClipPlan {
            opts: opts.clone(),
            width,
            height,
            frames,
            rect,
            objects,
            birds,
            flutters,
            rain,
            insects,
            lights,
            cloud,
            exposure_jumps,
            tree,
            tree_ignored,
            shake,
            exposure_s,
            noise,
            white_balance: [
                rng.random_range(0.94..1.06),
                1.0,
                rng.random_range(0.92..1.08),
            ],
            saturation: if infrared {
                0.0
            } else {
                rng.random_range(0.75..1.05)
            },
            sharpen: rng.random_range(0.2..0.7),
            vignette: rng.random_range(0.15..0.4),
            veil,
            noise_seed: rng.random(),
            distractor_truth,
            tags,
            gop_frames: 2 * fps,
            osd: opts.osd.then(|| {
                let hour = match time {
                    TimeOfDay::Day => rng.random_range(8.0..16.5),
                    TimeOfDay::Dusk => rng.random_range(17.0..18.5),
                    TimeOfDay::Night => (rng.random_range(20.0..29.0f64)) % 24.0,
                };
                super::osd::Osd {
                    start_s: (hour * 3600.0f64).floor() + rng.random_range(0.0..1.0),
                    date: format!(
                        "2026-{:02}-{:02}",
                        rng.random_range(1..13),
                        rng.random_range(1..29)
                    ),
                    scale: (height as usize / 360).max(1),
                }
            }),
            bitrate_kbps,
            camera,
            building,
            light,
        };
        Ok(plan)
    }

    /// Media time of frame `i`, seconds.
    pub fn frame_time(&self, i: u32) -> f64 {
        f64::from(i) / f64::from(self.opts.fps)
    }

    /// Duration, seconds.
    pub fn duration_s(&self) -> f64 {
        f64::from(self.frames) / f64::from(self.opts.fps)
    }

    /// The pixel of facade point (`x_m` from the rectangle's left edge, `height_m`).
    pub fn facade_px(&self, x_m: f64, height_m: f64) -> [f64; 2] {
        let (p, _) = self
            .camera
            .project(&V3::new(self.rect.x0_m + x_m, height_m, 0.0))
            .expect("facade in front of the camera");
        [p.x, p.y]
    }

    /// The calibration file's content.
    pub fn calibration(&self) -> Calibration {
        let r = &self.rect;
        let w = r.x1_m - r.x0_m;
        let h = r.top_m - r.base_m;
        let corners = [
            self.facade_px(0.0, r.top_m),
            self.facade_px(w, r.top_m),
            self.facade_px(w, r.base_m),
            self.facade_px(0.0, r.base_m),
        ];
        let ignore = match (&self.tree, self.tree_ignored) {
            (Some(t), true) => vec![IgnoreRegion {
                polygon_px: t.outline(self.width, self.height),
            }],
            _ => Vec::new(),
        };
        Calibration {
            camera: CameraSection {
                id: format!("synth-{}", self.opts.seed),
            },
            facade: Facade {
                corners_px: corners,
                width_m: round6(w),
                height_m: round6(h),
                base_height_m: round6(r.base_m),
            },
            floors: Floors {
                first_storey_m: self.building.first_storey_m,
                storey_m: self.building.storey_m,
            },
            windows: Windows { bays: r.bays },
            ignore,
        }
    }

    /// The ground truth.
    pub fn truth(&self) -> Truth {
        let calib = self.calibration();
        let name = &self.opts.name;
        let objects = self
            .objects
            .iter()
            .map(|o| self.object_truth(o, &calib))
            .collect();
        let mut tags = self.tags.clone();
        for o in &self.objects {
            let above = self.camera.project(&o.p0).is_some_and(|(p, _)| p.y < 0.0);
            if above && !tags.iter().any(|t| t == "above_top_edge") {
                tags.push("above_top_edge".into());
            }
        }
        let truth_objects: Vec<ObjectTruth> = objects;
        if truth_objects.iter().any(|o| {
            o.track
                .iter()
                .any(|p| !p.visible && in_frame(p, self.width, self.height))
        }) && self.tree.is_some()
        {
            tags.push("behind_tree".into());
        }
        if truth_objects.iter().any(|o| {
            let mut s: Vec<f64> = o
                .track
                .iter()
                .filter(|p| p.visible)
                .map(|p| p.size_px)
                .collect();
            s.sort_by(f64::total_cmp);
            !s.is_empty() && s[s.len() / 2] < 5.0
        }) {
            tags.push("small".into());
        }
        Truth {
            format: TRUTH_FORMAT.into(),
            seed: self.opts.seed,
            generator: format!("fallwatch synth {}", env!("CARGO_PKG_VERSION")),
            clip: format!("{name}.mp4"),
            calib: format!("{name}.calib.toml"),
            width: self.width,
            height: self.height,
            fps: f64::from(self.opts.fps),
            frames: self.frames,
            duration_s: self.duration_s(),
            scene: SceneTruth {
                time_of_day: self.light.time.name().into(),
                camera_distance_m: round6(self.camera.pos.z),
                camera_height_m: round6(self.camera.pos.y),
                pitch_deg: round6(self.camera.pitch_deg),
                yaw_deg: round6(self.camera.yaw_deg),
                focal_px: round6(self.camera.focal_px),
                floors: self.building.floors,
                bays: self.rect.bays,
                bitrate_kbps: self.bitrate_kbps,
                gop_frames: self.gop_frames,
                roll_deg: round6(self.camera.roll_deg),
                infrared: self.light.infrared,
                exposure_s: round6(self.exposure_s),
            },
            objects: truth_objects,
            distractors: self.distractor_truth.clone(),
            tags,
        }
    }

    fn object_truth(&self, o: &PlannedObject, calib: &Calibration) -> ObjectTruth {
        let x_m = o.p0.x - self.rect.x0_m;
        let height_m = o.p0.y;
        let release_s = o.flight.t0_s;
        let fps = f64::from(self.opts.fps);
        let first = (release_s * fps - 1e-9).ceil().max(0.0) as u32;
        let mut track = Vec::new();
        let mut was_inside = false;
        for i in first..self.frames {
            let t = self.frame_time(i);
            let Some(p) = o.flight.at(t) else { break };
            let Some((px, depth)) = self.camera.project(&p) else {
                break;
            };
            let shaken = self.shake.at(t, self.width, self.height).apply(px);
            let dist = (p - self.camera.pos).norm();
            let size_px = self.camera.focal_px * o.body.size_m() / depth;
            let inside = shaken.x >= 0.0
                && shaken.y >= 0.0
                && shaken.x < f64::from(self.width)
                && shaken.y < f64::from(self.height);
            if was_inside && !inside {
                break;
            }
            was_inside |= inside;
            let hidden_by_tree = self.tree.as_ref().is_some_and(|tr| tr.covers(&px, t));
            let dir = (p - self.camera.pos) / dist;
            let hit = self.building.trace(&self.camera.pos, &dir, 1e-3, dist);
            let hidden_by_building = hit.t < dist - 0.05 && hit.s != super::scene::Surface::Sky;
            track.push(TrackTruth {
                t_s: round6(t),
                x_px: round3(shaken.x),
                y_px: round3(shaken.y),
                size_px: round3(size_px),
                visible: inside && !hidden_by_tree && !hidden_by_building,
            });
        }
        let end_s = track.last().map_or(release_s, |p| p.t_s);
        ObjectTruth {
            kind: o.body.kind.name().into(),
            size_m: round6(o.body.size_m()),
            motion: o.motion.name().into(),
            release_s: round6(release_s),
            floor: calib.floor_at(height_m),
            bay: calib.bay_at(x_m),
            height_m: round6(height_m),
            x_m: round6(x_m),
            wall_distance_m: round6(o.p0.z),
            release_px: {
                let p = self.facade_px(x_m, height_m);
                [round3(p[0]), round3(p[1])]
            },
            end_s,
            track,
        }
    }
}

fn in_frame(p: &TrackTruth, w: u32, h: u32) -> bool {
    p.x_px >= 0.0 && p.y_px >= 0.0 && p.x_px < f64::from(w) && p.y_px < f64::from(h)
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}
fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

fn count(kind: &str, n: u32) -> DistractorTruth {
    DistractorTruth {
        kind: kind.into(),
        count: Some(n),
        intensity: None,
    }
}
fn intensity(kind: &str, v: f64) -> DistractorTruth {
    DistractorTruth {
        kind: kind.into(),
        count: None,
        intensity: Some(round6(v)),
    }
}

/// The largest rectangle of whole bays and storeys whose corners are well inside the image.
fn calibration_rect(cam: &Camera, b: &Building) -> Option<Rect> {
    let (w, h) = (f64::from(cam.width), f64::from(cam.height));
    let margin = 0.03 * h;
    let inside = |x: f64, y: f64| -> bool {
        cam.project(&V3::new(x, y, 0.0)).is_some_and(|(p, _)| {
            p.x > margin && p.y > margin && p.x < w - margin && p.y < h - margin
        })
    };
    let levels: Vec<f64> = (1..=b.floors).map(|i| b.floor_base_m(i)).collect();
    let mut best: Option<(f64, Rect)> = None;
    for a in 0..b.bays {
        for c in (a + 2)..=b.bays {
            let (x0, x1) = (f64::from(a) * b.bay_w_m, f64::from(c) * b.bay_w_m);
            for (i, &y0) in levels.iter().enumerate() {
                if !(inside(x0, y0) && inside(x1, y0)) {
                    continue;
                }
                for &y1 in levels.iter().skip(i + 2).rev() {
                    if inside(x0, y1) && inside(x1, y1) {
                        let area = (x1 - x0) * (y1 - y0);
                        if best.as_ref().is_none_or(|(s, _)| area > *s) {
                            best = Some((
                                area,
                                Rect {
                                    x0_m: x0,
                                    x1_m: x1,
                                    base_m: y0,
                                    top_m: y1,
                                    bays: c - a,
                                },
                            ));
                        }
                        break;
                    }
                }
            }
        }
    }
    best.map(|(_, r)| r)
}

#[allow(clippy::too_many_arguments)]
fn plan_object(
    rng: &mut SynthRng,
    opts: &SynthOptions,
    cam: &Camera,
    b: &Building,
    rect: &Rect,
    wind: &V3,
    duration_s: f64,
    n_objects: u32,
    index: u32,
) -> Result<PlannedObject> {
    let preset = opts.preset;
    let (w, h) = (f64::from(cam.width), f64::from(cam.height));
    let first_bay = (rect.x0_m / b.bay_w_m).round() as u32;
    // Why candidates were refused: position, early landing, never in view, too briefly, too
    // long for the clip.
    let mut refused = [0u32; 5];
    for attempt in 0..600 {
        let kind = opts.object_kind.unwrap_or_else(|| match preset {
            Some(Preset::SlowBag) => ObjectKind::Bag,
            Some(Preset::NightFarSmall | Preset::Tiny720p) => {
                [ObjectKind::Can, ObjectKind::Phone, ObjectKind::Fruit][rng.random_range(0..3)]
            }
            Some(Preset::LowContrast) => {
                [ObjectKind::Brick, ObjectKind::Box][rng.random_range(0..2)]
            }
            _ => ObjectKind::ALL[rng.random_range(0..ObjectKind::ALL.len())],
        });
        let mut body = Body::random(rng, kind);
        if preset == Some(Preset::LowContrast) {
            // The colour of the wall, give or take.
            body.rgb = b.palette.wall.map(|c| c * rng.random_range(0.85f32..1.15));
        }
        let motion = opts
            .motion
            .unwrap_or_else(|| match rng.random_range(0..10) {
                0..=3 => Motion::Drop,
                4..=7 => Motion::Throw,
                _ => Motion::Toss,
            });
        let bay = first_bay + rng.random_range(0..rect.bays);
        let floor_idx = match opts.floor {
            Some(f) => f.saturating_sub(1).clamp(1, b.floors - 1),
            None => rng.random_range(1..b.floors),
        };
        let base = b.floor_base_m(floor_idx);
        let x_bay = f64::from(bay) * b.bay_w_m;
        let (p0, _col) = match b.columns[bay as usize] {
            Column::Balcony => {
                let x = x_bay + rng.random_range(0.4..b.bay_w_m - 0.4);
                let y = base + rng.random_range((b.railing_h_m + 0.05).min(1.5)..1.6);
                let z = b.balcony_depth_m + rng.random_range(0.08..0.35);
                (V3::new(x, y, z), Column::Balcony)
            }
            Column::Window => {
                let op = b.openings.iter().find(|o| {
                    o.x0 >= x_bay - 1e-9
                        && o.x1 <= x_bay + b.bay_w_m + 1e-9
                        && o.y0 > base
                        && o.y0 < base + 1.5
                });
                let (xa, xb) = op.map_or((x_bay + 0.5, x_bay + b.bay_w_m - 0.5), |o| {
                    (o.x0 + 0.1, o.x1 - 0.1)
                });
                let x = rng.random_range(xa..xb.max(xa + 0.01));
                let y = base + rng.random_range(0.9..1.6);
                let min_z = b.protrusion_below(x - 0.3, x + 0.3, y) + 0.15;
                let z = rng.random_range(
                    0.2f64.max(min_z)..(min_z + 0.6).clamp(0.5, 1.5).max(min_z + 0.05),
                );
                (V3::new(x, y, z), Column::Window)
            }
        };
        let v0 = match motion {
            Motion::Drop => V3::new(
                rng.random_range(-0.15..0.15),
                rng.random_range(-0.1..0.1),
                rng.random_range(0.0..0.3),
            ),
            Motion::Throw => {
                let s = rng.random_range(0.5..4.0);
                V3::new(
                    s * rng.random_range(-0.3..0.3),
                    rng.random_range(-0.5..1.0),
                    s,
                )
            }
            Motion::Toss => V3::new(
                rng.random_range(-0.4..0.4),
                rng.random_range(1.5..4.0),
                rng.random_range(0.3..1.5),
            ),
        };
        let Some((px, _)) = cam.project(&p0) else {
            continue;
        };
        // Where must the release be in the picture?
        let ok_pos = match preset {
            Some(Preset::AboveTopEdge) => {
                // Both the release point and its foot on the wall above the picture.
                let foot = cam
                    .project(&V3::new(p0.x, p0.y, 0.0))
                    .map_or(0.0, |(f, _)| f.y);
                px.y < -0.02 * h && px.y > -0.5 * h && foot < 0.0
            }
            _ => px.y > 0.03 * h && px.y < 0.65 * h,
        } && px.x > 0.05 * w
            && px.x < 0.95 * w;
        if !ok_pos {
            refused[0] += 1;
            continue;
        }
        // Simulate from t = 0 to learn how long it stays in view.
        let solid = |p: &V3| b.solid_at(p);
        let probe = Flight::simulate(&body, p0, v0, *wind, 0.0, 20.0, &solid);
        let fall_m = p0.y - probe.pos.last().map_or(p0.y, |p| p.y);
        if fall_m < 2.0 * b.storey_m {
            refused[1] += 1;
            continue; // it landed on something right below
        }
        let mut t_leave = None;
        let mut entered = false;
        let mut k = 0.0;
        while k <= probe.end_s() {
            let p = probe.at(k).expect("inside flight");
            if let Some((q, _)) = cam.project(&p) {
                let inside = cam.in_image(&q);
                if inside {
                    entered = true;
                } else if entered {
                    t_leave = Some(k);
                    break;
                }
            }
            k += 0.02;
        }
        if !entered {
            refused[2] += 1;
            continue;
        }
        let visible_s = t_leave.unwrap_or(probe.end_s());
        if visible_s < 0.4 {
            refused[3] += 1;
            continue;
        }
        // Prefer falls that fit with 3 s before and 2 s after them; accept longer ones only
        // when nothing else fits.
        if n_objects <= 1 && attempt < 400 && visible_s > duration_s - 5.0 && duration_s >= 6.0 {
            refused[4] += 1;
            continue;
        }
        // The evidence clip needs 3 s before and 2 s after the fall.
        let release_s = if n_objects <= 1 {
            let lo = 3.0f64;
            let hi = duration_s - 2.0 - visible_s;
            if hi >= lo {
                rng.random_range(lo..=hi.min(lo + 1.5))
            } else {
                hi.max(0.5).min(lo)
            }
        } else {
            let slot = (duration_s - 1.0) / f64::from(n_objects);
            (0.5 + slot * f64::from(index) + rng.random_range(0.0..slot * 0.5))
                .min(duration_s - 0.5)
        };
        let release_s = (release_s * 1000.0).round() / 1000.0;
        let flight = Flight::simulate(
            &body,
            p0,
            v0,
            *wind,
            release_s,
            (duration_s - release_s + 1.0).max(0.1),
            &solid,
        );
        return Ok(PlannedObject {
            body,
            motion,
            p0,
            v0,
            flight,
        });
    }
    Err(err!(
        InvalidInput,
        "seed {}: could not place a thrown object in view (refused: {} out of place, {} landing \
         at once, {} never in view, {} in view too briefly); try another seed or fewer constraints",
        opts.seed,
        refused[0],
        refused[1],
        refused[2],
        refused[3]
    ))
}
