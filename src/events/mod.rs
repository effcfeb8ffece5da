//! Events: the contract's event record (`event.json` and one stdout line each) and how ids are made.
//!
//! Field names and meanings are fixed by the contract (`docs/contract.md`); fields beyond the
//! contract are optional and skipped when absent, so outside tools never see a renamed or
//! missing field.

use serde::{Deserialize, Serialize};

use crate::detect::PersonSighting;

/// One thrown or falling object, as written to `<out>/<id>/event.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `<camera>-<start in ms, 9 digits>-<sequence, 2 digits>`, e.g. `tower-3-east-000012480-01`.
    pub id: String,
    /// The calibration's camera id.
    pub camera: String,
    /// Media time of the first track point, seconds since the first decoded frame.
    pub start_s: f64,
    /// Media time of the last track point.
    pub end_s: f64,
    /// Wall-clock time of `start_s`, RFC 3339 UTC with milliseconds.
    pub wall_time: String,
    /// What the object detector says it is, or `"object"`.
    pub label: String,
    /// Probability that this is a real thrown/falling object, in [0, 1].
    pub score: f64,
    /// Where the object was released.
    pub origin: Origin,
    /// The ballistic fit.
    pub fall: Fall,
    /// The observed track, one point per frame the object was seen in.
    pub track: Vec<TrackPoint>,
    /// File name of the evidence clip inside the event's directory.
    pub clip: String,
    /// File name of the snapshot inside the event's directory.
    pub snapshot: String,
    /// Extension: why the clip could not be written (e.g. disk full), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_error: Option<String>,
    /// Extension: why the snapshot could not be written, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_error: Option<String>,
    /// Extension: media time (seconds since the source's first frame) of the clip's first frame,
    /// which plays at 0 in the clip: a moment `t_s` of the event is at `t_s - clip_start_s` in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_start_s: Option<f64>,
    /// Extension: media time of the end of the clip's last frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_end_s: Option<f64>,
    /// Extension: estimated distance of the release point in front of the facade, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_distance_m: Option<f64>,
    /// Extension: persons the detector saw near the release point in the seconds before the
    /// release, best first (`[]`: searched, nobody seen). Absent when the search did not run
    /// (detector off) or could not search a single frame (`persons_error` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons: Option<Vec<PersonSighting>>,
    /// Extension: the contract's floor number of the best sighting's box centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons_floor: Option<i32>,
    /// Extension: the contract's bay number of the best sighting's box centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons_bay: Option<i32>,
    /// Extension: why the person search failed, or searched only some of its frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persons_error: Option<String>,
}

/// `origin`: the release point on the facade.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Origin {
    /// Floor number by the contract's formula.
    pub floor: i32,
    /// Window bay by the contract's formula.
    pub bay: i32,
    /// Height above the ground, metres.
    pub height_m: f64,
    /// Distance from the rectangle's left edge, metres.
    pub x_m: f64,
    /// Image pixel of that point.
    pub px: [f64; 2],
}

/// `fall`: how well the track fits free fall.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Fall {
    /// Fitted acceleration on the facade plane, m/s^2.
    pub g_fit_m_s2: f64,
    /// Height fallen from release to the last track point, metres.
    pub drop_m: f64,
    /// Root-mean-square residual of the fit, pixels.
    pub rmse_px: f64,
}

/// One observation of the object.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrackPoint {
    /// Media time, seconds.
    pub t_s: f64,
    /// Centre x, pixels.
    pub x_px: f64,
    /// Centre y, pixels.
    pub y_px: f64,
    /// Box width, pixels.
    pub w_px: f64,
    /// Box height, pixels.
    pub h_px: f64,
}

impl Event {
    /// Rounds the numbers to what they mean (milliseconds, centimetres, hundredths of a pixel),
    /// so records read cleanly and compare stably. Floor and bay are not recomputed.
    pub fn rounded(mut self) -> Event {
        let r = |v: f64, d: f64| (v * d).round() / d;
        self.start_s = r(self.start_s, 1e3);
        self.end_s = r(self.end_s, 1e3);
        self.score = r(self.score, 1e3);
        let o = &mut self.origin;
        (o.height_m, o.x_m) = (r(o.height_m, 1e2), r(o.x_m, 1e2));
        o.px = [r(o.px[0], 1e2), r(o.px[1], 1e2)];
        let f = &mut self.fall;
        (f.g_fit_m_s2, f.drop_m, f.rmse_px) =
            (r(f.g_fit_m_s2, 1e2), r(f.drop_m, 1e2), r(f.rmse_px, 1e2));
        for p in &mut self.track {
            p.t_s = r(p.t_s, 1e3);
            (p.x_px, p.y_px, p.w_px, p.h_px) = (
                r(p.x_px, 1e2),
                r(p.y_px, 1e2),
                r(p.w_px, 1e2),
                r(p.h_px, 1e2),
            );
        }
        self.wall_distance_m = self.wall_distance_m.map(|v| r(v, 1e2));
        for p in self.persons.iter_mut().flatten() {
            p.t_s = r(p.t_s, 1e3);
            p.score = r(f64::from(p.score), 1e3) as f32;
        }
        self
    }
}

/// The contract's event id: camera, start time in whole milliseconds (9 digits), sequence (2 digits).
pub fn event_id(camera: &str, start_s: f64, seq: u32) -> String {
    let ms = (start_s.max(0.0) * 1000.0).round() as u64;
    format!("{camera}-{ms:09}-{seq:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_matches_the_contract_example() {
        assert_eq!(
            event_id("tower-3-east", 12.48, 1),
            "tower-3-east-000012480-01"
        );
        assert_eq!(event_id("c", 0.0, 2), "c-000000000-02");
    }

    #[test]
    fn contract_example_round_trips() {
        let json = r#"{
          "id": "tower-3-east-000012480-01", "camera": "tower-3-east",
          "start_s": 12.48, "end_s": 14.12, "wall_time": "2026-11-27T03:34:12.480Z",
          "label": "object", "score": 0.93,
          "origin": { "floor": 12, "bay": 4, "height_m": 35.7, "x_m": 13.1, "px": [1022.5, 176.0] },
          "fall": { "g_fit_m_s2": 9.6, "drop_m": 33.0, "rmse_px": 1.2 },
          "track": [ { "t_s": 12.48, "x_px": 1022.5, "y_px": 188.0, "w_px": 6.0, "h_px": 9.0 } ],
          "clip": "clip.mp4", "snapshot": "snapshot.jpg"
        }"#;
        let e: Event = serde_json::from_str(json).unwrap();
        let back: serde_json::Value = serde_json::to_value(&e).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
    }
}
