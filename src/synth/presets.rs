//! Named hard cases (`--preset`) and the documented mix of an evaluation set (`--set eval`).

use serde::{Deserialize, Serialize};

/// A named hard case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Night, camera 45-60 m away, a small object.
    NightFarSmall,
    /// Overcast haze, an object the colour of the wall.
    LowContrast,
    /// Heavy rain.
    HeavyRain,
    /// Released above the top edge of the picture: it falls into view.
    AboveTopEdge,
    /// 720p, far camera, small object: 2-4 px.
    Tiny720p,
    /// A foreground tree hides part of the fall.
    BehindTree,
    /// No object: birds flapping, gliding and swooping.
    BirdsOnly,
    /// No object: falling leaves and paper, a swaying tree.
    LeavesOnly,
    /// No object: night, insects at the lens, lights switching.
    NightInsects,
    /// No object: camera shake, cloud shadows, exposure jumps.
    ShakeAndLight,
    /// A plastic bag: slow, sailing fall.
    SlowBag,
}

impl Preset {
    /// All presets.
    pub const ALL: [Preset; 11] = [
        Preset::NightFarSmall,
        Preset::LowContrast,
        Preset::HeavyRain,
        Preset::AboveTopEdge,
        Preset::Tiny720p,
        Preset::BehindTree,
        Preset::BirdsOnly,
        Preset::LeavesOnly,
        Preset::NightInsects,
        Preset::ShakeAndLight,
        Preset::SlowBag,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::NightFarSmall => "night-far-small",
            Preset::LowContrast => "low-contrast",
            Preset::HeavyRain => "heavy-rain",
            Preset::AboveTopEdge => "above-top-edge",
            Preset::Tiny720p => "tiny-720p",
            Preset::BehindTree => "behind-tree",
            Preset::BirdsOnly => "birds-only",
            Preset::LeavesOnly => "leaves-only",
            Preset::NightInsects => "night-insects",
            Preset::ShakeAndLight => "shake-and-light",
            Preset::SlowBag => "slow-bag",
        }
    }

    /// True for presets without a thrown object.
    pub fn distractors_only(self) -> bool {
        matches!(
            self,
            Preset::BirdsOnly | Preset::LeavesOnly | Preset::NightInsects | Preset::ShakeAndLight
        )
    }
}

/// What one clip of an evaluation set is: `None` = a random typical clip with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetEntry {
    /// A typical random clip with one object at the given time of day (None = random).
    Typical,
    /// A named preset.
    Preset(Preset),
    /// Distractors only, random ones.
    DistractorsOnly,
}

/// The evaluation mix, cycled by seed: 12 entries, 4 of them without any object (a third), the
/// others typical clips and every object-bearing hard case.
pub const EVAL_CYCLE: [SetEntry; 12] = [
    SetEntry::Typical,
    SetEntry::Preset(Preset::BirdsOnly),
    SetEntry::Preset(Preset::NightFarSmall),
    SetEntry::Preset(Preset::BehindTree),
    SetEntry::Preset(Preset::LeavesOnly),
    SetEntry::Preset(Preset::AboveTopEdge),
    SetEntry::Preset(Preset::LowContrast),
    SetEntry::Preset(Preset::NightInsects),
    SetEntry::Preset(Preset::HeavyRain),
    SetEntry::Preset(Preset::Tiny720p),
    SetEntry::DistractorsOnly,
    SetEntry::Preset(Preset::SlowBag),
];

/// The entry of the evaluation set for `seed`.
pub fn eval_entry(seed: u64) -> SetEntry {
    EVAL_CYCLE[(seed % EVAL_CYCLE.len() as u64) as usize]
}
