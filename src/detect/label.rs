//! What the detector's classes mean for fallwatch: a small vocabulary ([`Vocab`]) that model
//! classes map to, a track's label voted over a few crops ([`TrackLabeler`]), and the bird veto.
//!
//! COCO classes map by name (so a user's YOLOv8 model trained on COCO names maps too); ImageNet
//! classes by index range in the standard 1000-class order.

use serde::{Deserialize, Serialize};

use crate::detect::Detection;

/// The vocabulary of event labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vocab {
    /// A person (only reported by the person search, never as an object label).
    Person,
    /// A bird (vetoes a weak candidate).
    Bird,
    /// An insect (ImageNet classifier only).
    Insect,
    /// A bottle (glass or plastic).
    Bottle,
    /// A cup, mug or glass.
    Cup,
    /// A bag, backpack or suitcase.
    Bag,
    /// A box or carton.
    #[serde(rename = "box")]
    BoxLike,
    /// A phone.
    Phone,
    /// Fruit.
    Fruit,
    /// A ball.
    Ball,
    /// A book.
    Book,
    /// Anything else the models know: not worth a label.
    Other,
}

impl Vocab {
    /// The label as written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Vocab::Person => "person",
            Vocab::Bird => "bird",
            Vocab::Insect => "insect",
            Vocab::Bottle => "bottle",
            Vocab::Cup => "cup",
            Vocab::Bag => "bag",
            Vocab::BoxLike => "box",
            Vocab::Phone => "phone",
            Vocab::Fruit => "fruit",
            Vocab::Ball => "ball",
            Vocab::Book => "book",
            Vocab::Other => "object",
        }
    }

    /// The vocabulary word of a COCO class name (or any detector using COCO's names).
    pub fn from_coco_name(name: &str) -> Vocab {
        match name.trim().to_ascii_lowercase().as_str() {
            "person" => Vocab::Person,
            "bird" => Vocab::Bird,
            "bottle" => Vocab::Bottle,
            "cup" | "wine glass" => Vocab::Cup,
            "handbag" | "backpack" | "suitcase" => Vocab::Bag,
            "cell phone" | "remote" => Vocab::Phone,
            "banana" | "apple" | "orange" => Vocab::Fruit,
            "sports ball" => Vocab::Ball,
            "book" => Vocab::Book,
            _ => Vocab::Other,
        }
    }

    /// The vocabulary word of an ImageNet-1k class index (standard order, e.g. torchvision's).
    pub fn from_imagenet_index(i: u32) -> Vocab {
        match i {
            7..=24 | 80..=100 | 127..=146 => Vocab::Bird,
            300..=326 => Vocab::Insect,
            440 | 720 | 737 | 898 | 899 | 901 | 907 => Vocab::Bottle,
            504 | 968 | 572 => Vocab::Cup,
            414 | 728 | 748 | 636 => Vocab::Bag,
            478 => Vocab::BoxLike,
            487 => Vocab::Phone,
            948..=957 => Vocab::Fruit,
            _ => Vocab::Other,
        }
    }
}

/// Thresholds for labels and the bird veto.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    /// A crop's detection counts for the track only when its box centre lies within this fraction
    /// of the crop side from the crop centre (the candidate is at the centre). Default: 0.25.
    pub centre_tolerance: f32,
    /// A label is given when its score-weighted share of the votes is at least this. Default: 0.5.
    pub min_share: f32,
    /// ... and its mean score over the crops that voted for it is at least this. Default: 0.35.
    pub min_mean_score: f32,
    /// Bird veto: mean bird score over the crops at least this. Default: 0.6.
    pub veto_bird_score: f32,
    /// Bird veto: at least this many crops seen. Default: 2.
    pub veto_min_crops: u32,
    /// Bird veto: at least this share of the crops called bird. Default: 0.6.
    pub veto_min_bird_share: f32,
    /// Bird veto: only when the physics score is below this (a clean free-fall is never vetoed).
    /// Default: 0.8.
    pub veto_max_physics_score: f64,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig {
            centre_tolerance: 0.25,
            min_share: 0.5,
            min_mean_score: 0.35,
            veto_bird_score: 0.6,
            veto_min_crops: 2,
            veto_min_bird_share: 0.6,
            veto_max_physics_score: 0.8,
        }
    }
}

/// Votes of one track's crops: per vocabulary word, the sum of the best score per crop.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrackLabelScores {
    /// Crops that were classified (with or without a detection).
    pub crops: u32,
    /// Per word: (crops that voted for it, sum of their scores).
    pub votes: Vec<(Vocab, u32, f32)>,
}

impl TrackLabelScores {
    fn entry(&mut self, v: Vocab) -> &mut (Vocab, u32, f32) {
        match self.votes.iter().position(|e| e.0 == v) {
            Some(i) => &mut self.votes[i],
            None => {
                self.votes.push((v, 0, 0.0));
                self.votes.last_mut().expect("just pushed")
            }
        }
    }

    /// Mean score of `v` over all crops (crops without a vote for it count 0).
    pub fn mean_score(&self, v: Vocab) -> f32 {
        if self.crops == 0 {
            return 0.0;
        }
        self.votes
            .iter()
            .find(|e| e.0 == v)
            .map_or(0.0, |e| e.2 / self.crops as f32)
    }

    /// Share of the crops that voted for `v`.
    pub fn share(&self, v: Vocab) -> f32 {
        if self.crops == 0 {
            return 0.0;
        }
        self.votes
            .iter()
            .find(|e| e.0 == v)
            .map_or(0.0, |e| e.1 as f32 / self.crops as f32)
    }
}

/// Collects the detections of a track's crops and decides its label.
#[derive(Clone, Debug, Default)]
pub struct TrackLabeler {
    cfg: LabelConfig,
    scores: TrackLabelScores,
}

impl TrackLabeler {
    /// An empty labeler.
    pub fn new(cfg: LabelConfig) -> Self {
        TrackLabeler {
            cfg,
            scores: TrackLabelScores::default(),
        }
    }

    /// Adds one crop's detections (boxes in the crop's pixels, crop `crop_px` square, the
    /// candidate at its centre). The crop votes for the word of its best detection near the centre
    /// (person detections do not vote: a person is context, not the object).
    pub fn add_crop(&mut self, detections: &[Detection], crop_px: u32) {
        self.scores.crops += 1;
        let c = crop_px as f32 / 2.0;
        let tol = self.cfg.centre_tolerance * crop_px as f32;
        let best = detections
            .iter()
            .filter(|d| d.vocab != Vocab::Person)
            .filter(|d| {
                let (x, y) = d.box_px.centre();
                (x - c).abs() <= tol && (y - c).abs() <= tol
            })
            .max_by(|a, b| a.score.total_cmp(&b.score));
        if let Some(d) = best {
            let e = self.scores.entry(d.vocab);
            e.1 += 1;
            e.2 += d.score;
        }
    }

    /// The votes so far.
    pub fn scores(&self) -> &TrackLabelScores {
        &self.scores
    }

    /// The event label: the word with the largest score-weighted share when it is clear enough
    /// (`min_share`, `min_mean_score`), else `"object"`. Birds and insects give `"bird"` /
    /// `"insect"`; the caller decides about them with [`veto`].
    pub fn label(&self) -> &'static str {
        let total: f32 = self.scores.votes.iter().map(|e| e.2).sum();
        let Some(best) = self
            .scores
            .votes
            .iter()
            .filter(|e| e.0 != Vocab::Other)
            .max_by(|a, b| a.2.total_cmp(&b.2))
        else {
            return Vocab::Other.as_str();
        };
        let clear = total > 0.0
            && best.2 / total >= self.cfg.min_share
            && best.2 / best.1.max(1) as f32 >= self.cfg.min_mean_score;
        if clear {
            best.0.as_str()
        } else {
            Vocab::Other.as_str()
        }
    }
}

/// The bird veto: true when a candidate should be dropped as a bird. Only when the detector is
/// confident (mean bird score over the crops >= `veto_bird_score`, with at least `veto_min_crops`
/// crops and `veto_min_bird_share` of them called bird) AND the physics is not sure
/// (`physics_score < veto_max_physics_score`). A strong free-fall fit is never vetoed: a bottle
/// that looks like a bird in a blurred crop still falls like a bottle.
pub fn veto(scores: &TrackLabelScores, physics_score: f64, cfg: &LabelConfig) -> bool {
    scores.crops >= cfg.veto_min_crops
        && scores.mean_score(Vocab::Bird) >= cfg.veto_bird_score
        && scores.share(Vocab::Bird) >= cfg.veto_min_bird_share
        && physics_score < cfg.veto_max_physics_score
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::crop::BoxPx;
    use std::sync::Arc;

    fn det(v: Vocab, score: f32, cx: f32) -> Detection {
        Detection {
            class_id: 0,
            class: Arc::from(v.as_str()),
            vocab: v,
            score,
            box_px: BoxPx {
                x: cx - 10.0,
                y: 150.0,
                w: 20.0,
                h: 20.0,
            },
        }
    }

    #[test]
    fn mapping_of_model_classes() {
        assert_eq!(Vocab::from_coco_name("bird"), Vocab::Bird);
        assert_eq!(Vocab::from_coco_name("Handbag"), Vocab::Bag);
        assert_eq!(Vocab::from_coco_name("cell phone"), Vocab::Phone);
        assert_eq!(Vocab::from_coco_name("giraffe"), Vocab::Other);
        assert_eq!(Vocab::from_imagenet_index(15), Vocab::Bird); // robin
        assert_eq!(Vocab::from_imagenet_index(898), Vocab::Bottle); // water bottle
        assert_eq!(Vocab::from_imagenet_index(728), Vocab::Bag); // plastic bag
        assert_eq!(Vocab::from_imagenet_index(0), Vocab::Other);
        assert_eq!(serde_json::to_string(&Vocab::BoxLike).unwrap(), "\"box\"");
    }

    #[test]
    fn label_is_a_score_weighted_majority_near_the_centre() {
        let mut l = TrackLabeler::new(LabelConfig::default());
        l.add_crop(
            &[det(Vocab::Bottle, 0.7, 160.0), det(Vocab::Bird, 0.9, 10.0)],
            320,
        );
        l.add_crop(&[det(Vocab::Bottle, 0.6, 165.0)], 320);
        l.add_crop(&[det(Vocab::Bird, 0.4, 160.0)], 320);
        l.add_crop(&[], 320);
        assert_eq!(l.scores().crops, 4);
        assert_eq!(l.label(), "bottle");
        // Unsure: two words tie.
        let mut u = TrackLabeler::new(LabelConfig::default());
        u.add_crop(&[det(Vocab::Bottle, 0.5, 160.0)], 320);
        u.add_crop(&[det(Vocab::Bag, 0.5, 160.0)], 320);
        u.add_crop(&[det(Vocab::Phone, 0.4, 160.0)], 320);
        assert_eq!(u.label(), "object");
        // Unsure: one word, but weak.
        let mut w = TrackLabeler::new(LabelConfig::default());
        w.add_crop(&[det(Vocab::Bottle, 0.31, 160.0)], 320);
        w.add_crop(&[det(Vocab::Bottle, 0.32, 160.0)], 320);
        assert_eq!(w.label(), "object");
        assert_eq!(TrackLabeler::default().label(), "object");
    }

    #[test]
    fn veto_needs_a_confident_bird_and_unsure_physics() {
        let cfg = LabelConfig::default();
        let mut l = TrackLabeler::new(cfg.clone());
        l.add_crop(&[det(Vocab::Bird, 0.8, 160.0)], 320);
        assert!(!veto(l.scores(), 0.2, &cfg), "one crop is not enough");
        l.add_crop(&[det(Vocab::Bird, 0.75, 160.0)], 320);
        l.add_crop(&[det(Vocab::Bird, 0.7, 160.0)], 320);
        assert!(veto(l.scores(), 0.5, &cfg));
        assert!(
            !veto(l.scores(), 0.9, &cfg),
            "clean free fall is never vetoed"
        );
        l.add_crop(&[], 320);
        l.add_crop(&[], 320);
        assert!(
            !veto(l.scores(), 0.5, &cfg),
            "bird in only 3 of 5 crops, mean 0.45"
        );
    }
}
