//! Synthetic camera clips with exact ground truth (`fallwatch synth`).
//!
//! A clip is planned from a seed ([`plan::ClipPlan`]): a residential tower with storeys, bays,
//! recessed windows, balconies, AC units and stains ([`scene`]); a ground-level pinhole camera
//! 15-60 m from the wall, tilted up ([`camera`]); day, dusk or night light, possibly an infrared
//! monochrome picture ([`sky`]); thrown or dropped objects simulated in 3-D under gravity and
//! quadratic drag ([`objects`]); distractors ([`distractors`], [`tree`]). The static background is
//! ray-traced once, supersampled ([`background`]); each frame then composites what changes, with
//! motion blur, and models the camera: shake, vignetting, auto-exposure, noise, tone curve,
//! sharpening ([`render`]). Frames are encoded to H.264 in MP4 in-process ([`encode`]).
//!
//! Output per clip: `NAME.mp4`, `NAME.calib.toml` (the contract's calibration, computed by
//! projecting a facade rectangle of whole bays and storeys through the true camera) and
//! `NAME.truth.json` ([`truth`]). Everything is a deterministic function of the options: the
//! same seed and options give the same frames, byte for byte.

// Colour code loops over the three channels of several arrays at once; indexing reads best.
#![allow(clippy::needless_range_loop)]

pub mod background;
pub mod camera;
pub mod distractors;
pub mod encode;
pub mod noise;
pub mod objects;
pub mod osd;
pub mod plan;
pub mod presets;
pub mod raster;
pub mod render;
pub mod scene;
pub mod sky;
pub mod tree;
pub mod truth;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::Instant;

pub use self::distractors::DistractorKind;
pub use self::objects::{Motion, ObjectKind};
pub use self::plan::ClipPlan;
pub use self::presets::{EVAL_CYCLE, Preset, SetEntry, eval_entry};
pub use self::render::{RenderSettings, Renderer};
pub use self::sky::TimeOfDay;
pub use self::truth::{ObjectTruth, TrackTruth, Truth};

use crate::err;
use crate::error::Result;

/// `FromStr` by the names used on the command line and in truth files.
macro_rules! named_from_str {
    ($($t:ty),*) => {$(
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                <$t>::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = <$t>::ALL.iter().map(|v| v.name()).collect();
                        format!("{s:?}: expected one of {}", names.join(", "))
                    })
            }
        }
    )*};
}
named_from_str!(TimeOfDay, ObjectKind, Motion, DistractorKind, Preset);

/// The random generator of the synthesiser: ChaCha8, explicitly seeded.
pub type SynthRng = rand_chacha::ChaCha8Rng;

/// Picture size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// 1280 x 720.
    P720,
    /// 1920 x 1080.
    P1080,
    /// 2560 x 1440.
    P1440,
    /// Any even size (tests, experiments).
    Custom(u32, u32),
}

impl Resolution {
    /// Width and height; a preset may force its own.
    pub fn size(self, preset: Option<Preset>) -> (u32, u32) {
        if preset == Some(Preset::Tiny720p) {
            return (1280, 720);
        }
        match self {
            Resolution::P720 => (1280, 720),
            Resolution::P1080 => (1920, 1080),
            Resolution::P1440 => (2560, 1440),
            Resolution::Custom(w, h) => (w & !1, h & !1),
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "720p" => Ok(Resolution::P720),
            "1080p" => Ok(Resolution::P1080),
            "1440p" => Ok(Resolution::P1440),
            _ => {
                let (w, h) = s
                    .split_once('x')
                    .ok_or_else(|| format!("resolution {s:?}: use 720p, 1080p, 1440p or WxH"))?;
                let w: u32 = w.parse().map_err(|_| format!("bad width in {s:?}"))?;
                let h: u32 = h.parse().map_err(|_| format!("bad height in {s:?}"))?;
                if !(64..=4096).contains(&w) || !(64..=4096).contains(&h) {
                    return Err(format!("resolution {s:?} out of range 64-4096"));
                }
                Ok(Resolution::Custom(w, h))
            }
        }
    }
}

/// Everything that defines a clip. `None` fields are drawn from the seed.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// The seed.
    pub seed: u64,
    /// Base name of the output files.
    pub name: String,
    /// Picture size. Default: 1080p.
    pub resolution: Resolution,
    /// Frames per second (15-30 for camera-like clips). Default: 25.
    pub fps: u32,
    /// Duration, seconds. Default: 8.
    pub duration_s: f64,
    /// Time of day. Default: random (50 % day, 20 % dusk, 30 % night).
    pub time_of_day: Option<TimeOfDay>,
    /// Thrown objects. Default: 1 (0 for distractor-only presets).
    pub objects: Option<u32>,
    /// Distractors. Default: a random selection.
    pub distractors: Option<Vec<DistractorKind>>,
    /// Bitrate, kbit/s. Default: random, 2000-3250 (720p), 2800-4550 (1080p), 3600-5850 (1440p).
    pub bitrate_kbps: Option<u32>,
    /// A named hard case.
    pub preset: Option<Preset>,
    /// Force the object kind.
    pub object_kind: Option<ObjectKind>,
    /// Force the release motion.
    pub motion: Option<Motion>,
    /// Force the release floor.
    pub floor: Option<u32>,
    /// Force the camera's distance from the wall, metres.
    pub distance_m: Option<f64>,
    /// Force (or forbid) the infrared night picture.
    pub infrared: Option<bool>,
    /// x264 preset. Default: `superfast` (like a camera's hardware encoder).
    pub x264_preset: String,
    /// Burn a date/time stamp into the picture, like most cameras. Default: true.
    pub osd: bool,
    /// Rendering switches.
    pub render: RenderSettings,
}

impl SynthOptions {
    /// Options with the documented defaults.
    pub fn new(seed: u64, name: impl Into<String>) -> Self {
        SynthOptions {
            seed,
            name: name.into(),
            resolution: Resolution::P1080,
            fps: 25,
            duration_s: 8.0,
            time_of_day: None,
            objects: None,
            distractors: None,
            bitrate_kbps: None,
            preset: None,
            object_kind: None,
            motion: None,
            floor: None,
            distance_m: None,
            infrared: None,
            x264_preset: "superfast".into(),
            osd: true,
            render: RenderSettings::default(),
        }
    }
}

/// What generating one clip produced.
#[derive(Clone, Debug)]
pub struct ClipReport {
    /// The video.
    pub mp4: PathBuf,
    /// The calibration.
    pub calib: PathBuf,
    /// The truth.
    pub truth_path: PathBuf,
    /// The truth itself.
    pub truth: Truth,
    /// Seconds spent rendering the background.
    pub background_s: f64,
    /// Seconds spent in total.
    pub total_s: f64,
    /// Size of the video file, bytes.
    pub mp4_bytes: u64,
}

/// Generates one clip into `out_dir`. `progress(frame, frames)` is called after each frame.
pub fn generate_clip(
    opts: &SynthOptions,
    out_dir: &Path,
    progress: &(dyn Fn(u32, u32) + Sync),
) -> Result<ClipReport> {
    let started = Instant::now();
    if opts.name.is_empty() || opts.name.contains(['/', '\\']) {
        return Err(err!(
            InvalidInput,
            "clip name {:?} must be a plain file name",
            opts.name
        ));
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|e| err!(Resource, "cannot create {}", out_dir.display()).with_source(e))?;
    let plan = ClipPlan::new(opts)?;
    let truth = plan.truth();
    let calib = plan.calibration();
    calib
        .validate()
        .map_err(|e| e.context(format!("seed {}: generated calibration", opts.seed)))?;
    let mp4 = out_dir.join(format!("{}.mp4", opts.name));
    let calib_path = out_dir.join(format!("{}.calib.toml", opts.name));
    let truth_path = out_dir.join(format!("{}.truth.json", opts.name));

    let mut renderer = Renderer::new(&plan, opts.render);
    let background_s = started.elapsed().as_secs_f64();
    let settings = encode::EncodeSettings {
        width: plan.width,
        height: plan.height,
        fps: opts.fps,
        bitrate_kbps: plan.bitrate_kbps,
        gop_frames: plan.gop_frames,
        x264_preset: opts.x264_preset.clone(),
        // The stamp burnt into the picture is the camera's clock (taken as UTC): the container
        // says the same, so events' wall_time can be checked against the picture.
        creation_time: plan.osd.as_ref().map(|o| {
            let ms = (o.start_s * 1000.0).round() as u64;
            format!(
                "{}T{:02}:{:02}:{:02}.{:03}Z",
                o.date,
                ms / 3_600_000 % 24,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        }),
    };
    let mut writer = encode::Mp4Writer::create(&mp4, &settings)?;
    // Render on this thread (rayon inside), encode on another, overlapping.
    let (tx, rx) = crossbeam_channel::bounded::<encode::YuvFrame>(3);
    let encode_result = std::thread::scope(|s| -> Result<()> {
        let enc = std::thread::Builder::new()
            .name(format!("encode-{}", opts.name))
            .spawn_scoped(s, move || -> Result<encode::Mp4Writer> {
                for f in rx {
                    writer.write(&f)?;
                }
                Ok(writer)
            })
            .map_err(|e| err!(Resource, "cannot start encoder thread").with_source(e))?;
        for i in 0..plan.frames {
            let f = renderer.render(i);
            if tx.send(f).is_err() {
                break;
            }
            progress(i + 1, plan.frames);
        }
        drop(tx);
        let writer = enc
            .join()
            .map_err(|_| err!(Internal, "encoder thread panicked"))??;
        writer.finish()
    });
    encode_result?;
    std::fs::write(&calib_path, calib.to_toml())
        .map_err(|e| err!(Resource, "cannot write {}", calib_path.display()).with_source(e))?;
    truth.save(&truth_path)?;
    let mp4_bytes = std::fs::metadata(&mp4).map(|m| m.len()).unwrap_or(0);
    Ok(ClipReport {
        mp4,
        calib: calib_path,
        truth_path,
        truth,
        background_s,
        total_s: started.elapsed().as_secs_f64(),
        mp4_bytes,
    })
}

/// The options of the evaluation-set clip for `seed`, on top of `base` (resolution, fps,
/// duration, bitrate, encoder preset).
pub fn eval_options(base: &SynthOptions, seed: u64) -> SynthOptions {
    let mut o = base.clone();
    o.seed = seed;
    o.name = format!("eval-{seed:06}");
    o.preset = None;
    o.objects = None;
    o.distractors = None;
    match eval_entry(seed) {
        SetEntry::Typical => {}
        SetEntry::Preset(p) => o.preset = Some(p),
        SetEntry::DistractorsOnly => o.objects = Some(0),
    }
    o
}
