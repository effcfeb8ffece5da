//! Accuracy evaluation against synthetic clips with ground truth (`fallwatch eval`).
//!
//! Pure functions over truth files ([`crate::synth::truth::Truth`]) and events
//! ([`crate::events::Event`]): events are matched to truth objects, then counted into per-clip
//! and total metrics (recall, precision, false alarms per hour, floor and bay accuracy, height
//! error, speed). Running the analysis itself is the caller's business (`src/cli/eval.rs`).
//!
//! Matching rule: an event matches an object when their time spans overlap and, over the frames
//! both have a track point in, the median distance between the event's points and the object's
//! true positions is below `max(min_dist_px, size_factor x the object's apparent size)`. Pairs
//! are taken greedily from the closest; each object and each event is used at most once. Events
//! left over are false alarms.

use serde::{Deserialize, Serialize};

use crate::events::Event;
use crate::synth::truth::{ObjectTruth, Truth};

/// Matching tolerances.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchParams {
    /// Smallest accepted median distance, pixels. Default: 12.
    pub min_dist_px: f64,
    /// Accepted median distance as a multiple of the object's apparent size. Default: 3.
    pub size_factor: f64,
}

impl Default for MatchParams {
    fn default() -> Self {
        MatchParams {
            min_dist_px: 12.0,
            size_factor: 3.0,
        }
    }
}

/// One event matched to one object.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Match {
    /// Index into the truth's objects.
    pub object: usize,
    /// Index into the events.
    pub event: usize,
    /// Median distance over the shared frames, pixels.
    pub median_dist_px: f64,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Median distance and median apparent size over the frames an event and an object share, or
/// `None` when they share none. `half_frame_s` is the time tolerance for "the same frame".
fn compare(ev: &Event, obj: &ObjectTruth, half_frame_s: f64) -> Option<(f64, f64)> {
    if ev.end_s < obj.release_s - half_frame_s || ev.start_s > obj.end_s + half_frame_s {
        return None;
    }
    let mut dists = Vec::new();
    let mut sizes = Vec::new();
    for tp in &ev.track {
        // Truth tracks are one entry per frame, sorted by time.
        let i = obj.track.partition_point(|p| p.t_s < tp.t_s - half_frame_s);
        if let Some(p) = obj.track.get(i)
            && (p.t_s - tp.t_s).abs() <= half_frame_s
        {
            dists.push(((p.x_px - tp.x_px).powi(2) + (p.y_px - tp.y_px).powi(2)).sqrt());
            sizes.push(p.size_px);
        }
    }
    Some((median(&mut dists)?, median(&mut sizes)?))
}

/// Matches `events` to the objects of `truth`.
pub fn match_events(truth: &Truth, events: &[Event], p: &MatchParams) -> Vec<Match> {
    let half_frame_s = 0.5 / truth.fps.max(1.0);
    let mut cands = Vec::new();
    for (oi, obj) in truth.objects.iter().enumerate() {
        for (ei, ev) in events.iter().enumerate() {
            if let Some((d, size)) = compare(ev, obj, half_frame_s)
                && d < p.min_dist_px.max(p.size_factor * size)
            {
                cands.push(Match {
                    object: oi,
                    event: ei,
                    median_dist_px: d,
                });
            }
        }
    }
    cands.sort_by(|a, b| {
        a.median_dist_px
            .total_cmp(&b.median_dist_px)
            .then(a.object.cmp(&b.object))
            .then(a.event.cmp(&b.event))
    });
    let mut used_o = vec![false; truth.objects.len()];
    let mut used_e = vec![false; events.len()];
    let mut out = Vec::new();
    for m in cands {
        if !used_o[m.object] && !used_e[m.event] {
            used_o[m.object] = true;
            used_e[m.event] = true;
            out.push(m);
        }
    }
    out.sort_by_key(|m| m.object);
    out
}

/// What one clip scored.
#[derive(Clone, Debug, Serialize)]
pub struct ClipMetrics {
    /// Clip name.
    pub name: String,
    /// Video duration, seconds.
    pub duration_s: f64,
    /// Objects in the truth.
    pub objects: usize,
    /// Objects matched by an event.
    pub detected: usize,
    /// Events reported.
    pub events: usize,
    /// Events matching no object.
    pub false_alarms: usize,
    /// Matched objects whose floor is exact.
    pub floor_exact: usize,
    /// Matched objects whose floor is off by at most one.
    pub floor_within_one: usize,
    /// Matched objects whose bay is exact.
    pub bay_exact: usize,
    /// |height error| of each matched object, metres.
    pub height_errors_m: Vec<f64>,
    /// Processing time, seconds.
    pub processing_s: f64,
    /// The matches.
    pub matches: Vec<Match>,
}

/// Scores one clip.
pub fn evaluate_clip(
    name: &str,
    truth: &Truth,
    events: &[Event],
    processing_s: f64,
    p: &MatchParams,
) -> ClipMetrics {
    let matches = match_events(truth, events, p);
    let mut m = ClipMetrics {
        name: name.to_string(),
        duration_s: truth.duration_s,
        objects: truth.objects.len(),
        detected: matches.len(),
        events: events.len(),
        false_alarms: events.len() - matches.len(),
        floor_exact: 0,
        floor_within_one: 0,
        bay_exact: 0,
        height_errors_m: Vec::new(),
        processing_s,
        matches: matches.clone(),
    };
    for mt in &matches {
        let (o, e) = (&truth.objects[mt.object], &events[mt.event]);
        m.floor_exact += usize::from(o.floor == e.origin.floor);
        m.floor_within_one += usize::from((o.floor - e.origin.floor).abs() <= 1);
        m.bay_exact += usize::from(o.bay == e.origin.bay);
        m.height_errors_m
            .push((o.height_m - e.origin.height_m).abs());
    }
    m
}

/// Totals over clips (rates are `None` when undefined, e.g. precision without events).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Clips.
    pub clips: usize,
    /// Video, seconds.
    pub duration_s: f64,
    /// Objects.
    pub objects: usize,
    /// Objects detected.
    pub detected: usize,
    /// detected / objects.
    pub recall: Option<f64>,
    /// Events.
    pub events: usize,
    /// False alarms.
    pub false_alarms: usize,
    /// (events - false alarms) / events.
    pub precision: Option<f64>,
    /// False alarms per hour of video.
    pub false_alarms_per_hour: Option<f64>,
    /// Share of detected objects with the exact floor.
    pub floor_exact: Option<f64>,
    /// Share of detected objects with the floor within one.
    pub floor_within_one: Option<f64>,
    /// Share of detected objects with the exact bay.
    pub bay_exact: Option<f64>,
    /// Median |height error| of detected objects, metres.
    pub median_height_error_m: Option<f64>,
    /// Processing seconds.
    pub processing_s: f64,
    /// Video seconds per processing second (above 1: faster than real time).
    pub speed_x_realtime: Option<f64>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Adds up clips.
pub fn summarize(clips: &[ClipMetrics]) -> Summary {
    let sum = |f: fn(&ClipMetrics) -> usize| clips.iter().map(f).sum::<usize>();
    let (objects, detected, events, fa) = (
        sum(|c| c.objects),
        sum(|c| c.detected),
        sum(|c| c.events),
        sum(|c| c.false_alarms),
    );
    let duration_s: f64 = clips.iter().map(|c| c.duration_s).sum();
    let processing_s: f64 = clips.iter().map(|c| c.processing_s).sum();
    let mut h: Vec<f64> = clips
        .iter()
        .flat_map(|c| c.height_errors_m.iter().copied())
        .collect();
    Summary {
        clips: clips.len(),
        duration_s,
        objects,
        detected,
        recall: ratio(detected, objects),
        events,
        false_alarms: fa,
        precision: ratio(events - fa, events),
        false_alarms_per_hour: (duration_s > 0.0).then(|| fa as f64 / (duration_s / 3600.0)),
        floor_exact: ratio(sum(|c| c.floor_exact), detected),
        floor_within_one: ratio(sum(|c| c.floor_within_one), detected),
        bay_exact: ratio(sum(|c| c.bay_exact), detected),
        median_height_error_m: median(&mut h),
        processing_s,
        speed_x_realtime: (processing_s > 0.0).then(|| duration_s / processing_s),
    }
}

/// The JSON form: every clip and the totals.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Per clip.
    pub clips: Vec<ClipMetrics>,
    /// Totals.
    pub total: Summary,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// A table for people: one row per clip, then the totals.
pub fn table(clips: &[ClipMetrics], total: &Summary) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{:<28} {:>5} {:>4} {:>4} {:>4} {:>4} {:>6} {:>6} {:>5} {:>7} {:>7}\n",
        "clip", "dur_s", "obj", "det", "ev", "fa", "floor", "floor1", "bay", "h_err_m", "speed"
    ));
    for c in clips {
        let one = summarize(std::slice::from_ref(c));
        s.push_str(&format!(
            "{:<28} {:>5.1} {:>4} {:>4} {:>4} {:>4} {:>6} {:>6} {:>5} {:>7} {:>7}\n",
            c.name,
            c.duration_s,
            c.objects,
            c.detected,
            c.events,
            c.false_alarms,
            pct(one.floor_exact),
            pct(one.floor_within_one),
            pct(one.bay_exact),
            num(one.median_height_error_m, 2),
            num(one.speed_x_realtime, 1).to_string() + "x",
        ));
    }
    s.push_str(&format!(
        "\nclips {}  video {:.1} min  objects {}  detected {}  recall {}  events {}  false alarms {} \
         ({} per hour)  precision {}\nfloor exact {}  floor within one {}  bay exact {}  median height \
         error {} m  speed {}x real time\n",
        total.clips,
        total.duration_s / 60.0,
        total.objects,
        total.detected,
        pct(total.recall),
        total.events,
        total.false_alarms,
        num(total.false_alarms_per_hour, 1),
        pct(total.precision),
        pct(total.floor_exact),
        pct(total.floor_within_one),
        pct(total.bay_exact),
        num(total.median_height_error_m, 2),
        num(total.speed_x_realtime, 1),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Fall, Origin, TrackPoint};
    use crate::synth::truth::{SceneTruth, TrackTruth};

    fn truth(objects: Vec<ObjectTruth>) -> Truth {
        Truth {
            format: crate::synth::truth::TRUTH_FORMAT.into(),
            seed: 1,
            generator: "test".into(),
            clip: "c.mp4".into(),
            calib: "c.calib.toml".into(),
            width: 1920,
            height: 1080,
            fps: 25.0,
            frames: 250,
            duration_s: 10.0,
            scene: SceneTruth {
                time_of_day: "day".into(),
                camera_distance_m: 30.0,
                camera_height_m: 1.5,
                pitch_deg: 25.0,
                yaw_deg: 0.0,
                focal_px: 1400.0,
                floors: 20,
                bays: 6,
                bitrate_kbps: 3000,
                gop_frames: 50,
                roll_deg: 0.0,
                infrared: false,
                exposure_s: 0.002,
            },
            objects,
            distractors: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// An object falling straight down from (x, y0) px, released at `t0`, 1 s long.
    fn object(t0: f64, x: f64, y0: f64, floor: i32, bay: i32, height_m: f64) -> ObjectTruth {
        let track: Vec<TrackTruth> = (0..25)
            .map(|i| {
                let t = t0 + f64::from(i) / 25.0;
                let dt = t - t0;
                TrackTruth {
                    t_s: t,
                    x_px: x,
                    y_px: y0 + 200.0 * dt * dt,
                    size_px: 4.0,
                    visible: true,
                }
            })
            .collect();
        ObjectTruth {
            kind: "bottle".into(),
            size_m: 0.25,
            motion: "drop".into(),
            release_s: t0,
            floor,
            bay,
            height_m,
            x_m: 10.0,
            wall_distance_m: 0.5,
            release_px: [x, y0],
            end_s: track.last().unwrap().t_s,
            track,
        }
    }

    /// An event seeing `obj` from frame `from` on, offset by (dx, dy) px.
    fn event_of(
        obj: &ObjectTruth,
        from: usize,
        dx: f64,
        dy: f64,
        floor: i32,
        bay: i32,
        h: f64,
    ) -> Event {
        let track: Vec<TrackPoint> = obj.track[from..]
            .iter()
            .map(|p| TrackPoint {
                t_s: p.t_s,
                x_px: p.x_px + dx,
                y_px: p.y_px + dy,
                w_px: 4.0,
                h_px: 4.0,
            })
            .collect();
        Event {
            id: "e".into(),
            camera: "c".into(),
            start_s: track[0].t_s,
            end_s: track.last().unwrap().t_s,
            wall_time: String::new(),
            label: "object".into(),
            score: 0.9,
            origin: Origin {
                floor,
                bay,
                height_m: h,
                x_m: 10.0,
                px: [0.0, 0.0],
            },
            fall: Fall {
                g_fit_m_s2: 9.8,
                drop_m: 10.0,
                rmse_px: 1.0,
            },
            track,
            clip: "clip.mp4".into(),
            snapshot: "snapshot.jpg".into(),
            clip_error: None,
            wall_distance_m: None,
            ..Default::default()
        }
    }

    #[test]
    fn events_match_objects_once_and_extras_are_false_alarms() {
        let a = object(2.0, 500.0, 100.0, 12, 3, 35.0);
        let b = object(6.0, 1200.0, 300.0, 8, 5, 23.0);
        let t = truth(vec![a.clone(), b.clone()]);
        let events = vec![
            event_of(&b, 3, 2.0, -1.0, 8, 4, 24.5), // b, close: floor right, bay wrong
            event_of(&a, 5, 5.0, 5.0, 13, 3, 37.0), // a, 7 px off: floor off by one
            event_of(&a, 5, 8.0, 8.0, 12, 3, 35.0), // a again (worse): false alarm
            event_of(&a, 0, 300.0, 0.0, 12, 3, 35.0), // far away: false alarm
        ];
        let m = match_events(&t, &events, &MatchParams::default());
        assert_eq!(
            m.iter().map(|m| (m.object, m.event)).collect::<Vec<_>>(),
            vec![(0, 1), (1, 0)]
        );
        let c = evaluate_clip("c", &t, &events, 5.0, &MatchParams::default());
        assert_eq!(
            (c.objects, c.detected, c.events, c.false_alarms),
            (2, 2, 4, 2)
        );
        assert_eq!((c.floor_exact, c.floor_within_one, c.bay_exact), (1, 2, 1));
        let s = summarize(&[c]);
        assert_eq!(s.recall, Some(1.0));
        assert_eq!(s.precision, Some(0.5));
        assert_eq!(s.false_alarms_per_hour, Some(2.0 / (10.0 / 3600.0)));
        assert_eq!(s.median_height_error_m, Some(1.75));
        assert_eq!(s.speed_x_realtime, Some(2.0));
        let text = table(
            &[evaluate_clip(
                "c",
                &t,
                &events,
                5.0,
                &MatchParams::default(),
            )],
            &s,
        );
        assert!(text.contains("recall 100%"), "{text}");
    }

    #[test]
    fn tolerance_grows_with_size_and_time_must_overlap() {
        let mut a = object(2.0, 500.0, 100.0, 12, 3, 35.0);
        let t = truth(vec![a.clone()]);
        // 15 px off: beyond 12 px for a 4 px object...
        let ev = vec![event_of(&a, 0, 15.0, 0.0, 12, 3, 35.0)];
        assert!(match_events(&t, &ev, &MatchParams::default()).is_empty());
        // ...within 3 x 6 px for a 6 px object.
        for p in &mut a.track {
            p.size_px = 6.0;
        }
        let t6 = truth(vec![a.clone()]);
        assert_eq!(match_events(&t6, &ev, &MatchParams::default()).len(), 1);
        // Same place, but a second later: no shared frames.
        let mut late = event_of(&a, 0, 0.0, 0.0, 12, 3, 35.0);
        for p in &mut late.track {
            p.t_s += 1.5;
        }
        late.start_s += 1.5;
        late.end_s += 1.5;
        assert!(match_events(&t6, &[late], &MatchParams::default()).is_empty());
        // No events at all: recall 0, precision undefined.
        let c = evaluate_clip("none", &t6, &[], 1.0, &MatchParams::default());
        let s = summarize(&[c]);
        assert_eq!((s.recall, s.precision), (Some(0.0), None));
        assert_eq!(s.false_alarms_per_hour, Some(0.0));
    }
}
