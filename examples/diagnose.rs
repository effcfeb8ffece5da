//! Where does the analysis lose a thrown object, and where do its false alarms come from?
//!
//!     cargo run --release --example diagnose -- DIR [NAME-FILTER] [--verbose]
//!
//! For every synthetic clip in DIR (NAME.mp4, NAME.calib.toml, NAME.truth.json) it runs the
//! per-camera analysis exactly as `analyze --no-detect` does, with tracing on, and reports per
//! object: the share of its visible frames with a motion candidate within 4 px (or its size),
//! the tracks that follow it and the physics' verdict on each, and whether an event matched it;
//! per false alarm: its time, place, length and score; per clip, the tracker's counters (births,
//! confirmations, and those the caps held back) and the ballistic search's (pairs tried, refits,
//! tracks found; its tracks' ids start at 2^40 = 1099511627776). Totals at the end say which stage loses most.
//! A tuning tool: never run it on the held-out evaluation set.
//!
//! `--verbose` adds the physics features and score terms of events, false alarms and tracks
//! lost in the physics; `DIAG_POINTS=1` also prints those tracks' points against the truth;
//! `DIAG_FRAMES=1` prints every frame's motion statistics (shift, refresh, warm-up, foreground);
//! `DIAG_NEAR=1` prints, for every visible truth point of an object lost at motion or tracking,
//! the nearest candidate (distance, position, dropped by the change test); `DIAG_ALL=1` every
//! candidate within 25 px of it (box, area, contrast, shape, the tracks it joined);
//! `DIAG_TRACKS=1` after every frame the live tracks within 60 px of each object (tentative or
//! confirmed, detections, misses, score, the last detections' evidence); `DIAG_CSV=DIR` writes
//! every candidate of each clip to `DIR/NAME.csv` with its distance to the truth;
//! `DIAG_TERMS=DIR` writes every judged track's score terms to `DIR/NAME.terms.csv` (the input
//! of `scripts/score_calibration.py`);
//! `ANALYSIS_TOML=$'[motion]\nk_sigma = 4.0'` (a TOML document) tries other analysis settings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fallwatch::calib::Calibration;
use fallwatch::detect::LabelConfig;
use fallwatch::eval::{MatchParams, match_events};
use fallwatch::events::{Event, TrackPoint};
use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};
use fallwatch::pipeline::analysis::{Trace, TrackTrace};
use fallwatch::pipeline::{AnalysisConfig, CameraAnalysis};
use fallwatch::synth::truth::{ObjectTruth, Truth};
use fallwatch::track::TrackerStats;
use fallwatch::track::search::SearchStats;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Per visible truth point of each object: the object's signal, |mean grey over a 2 x 2 window
/// at the truth position now - the same window `CONTRAST_LAG` frames earlier| (the object has
/// moved on by then unless it is crawling), and the same measure beside it (noise alone).
type Contrast = Vec<Vec<(f64, f64)>>;

const CONTRAST_LAG: usize = 8;

fn window_mean(l: &fallwatch::ingest::Luma<'_>, x: f64, y: f64) -> Option<f64> {
    let (x0, y0) = ((x - 0.5).floor(), (y - 0.5).floor());
    if x0 < 0.0 || y0 < 0.0 || x0 + 2.0 > l.width() as f64 || y0 + 2.0 > l.height() as f64 {
        return None;
    }
    let (x0, y0) = (x0 as usize, y0 as usize);
    let s: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
        .iter()
        .map(|&(dx, dy)| u32::from(l.get(x0 + dx, y0 + dy)))
        .sum();
    Some(f64::from(s) / 4.0)
}

/// What one clip's analysis gave: its events, its trace, the objects' contrast and the tracker's
/// and the search's counters.
type Analysed = (Vec<Event>, Trace, Contrast, TrackerStats, SearchStats);

fn analyse(clip: &Path, calib: &Calibration, truth: &Truth) -> Res<Analysed> {
    let mut spec = SourceSpec::new(clip.display().to_string());
    spec.keep_packets = false;
    spec.decoder_threads = 1;
    let mut source = FfmpegOpener.open(&spec, &Cancel::new())?;
    let info = source.info().clone();
    let cfg: AnalysisConfig = match std::env::var("ANALYSIS_TOML") {
        Ok(t) => toml::from_str(&t)?,
        Err(_) => AnalysisConfig::default(),
    };
    let mut an = CameraAnalysis::new(
        calib,
        info.width,
        info.height,
        &cfg,
        None,
        LabelConfig::default(),
    )?;
    an.enable_trace();
    let mut found = Vec::new();
    let mut contrast: Contrast = vec![Vec::new(); truth.objects.len()];
    let mut past: std::collections::VecDeque<fallwatch::ingest::Frame> = Default::default();
    let half_frame_s = 0.5 / truth.fps;
    let show_tracks = std::env::var("DIAG_TRACKS").is_ok();
    while let Some(item) = source.next_item()? {
        if let Item::Frame(frame) = item {
            if past.len() == CONTRAST_LAG {
                let old = &past[0];
                for (oi, obj) in truth.objects.iter().enumerate() {
                    for q in obj
                        .track
                        .iter()
                        .filter(|q| q.visible && (q.t_s - frame.pts_s).abs() <= half_frame_s)
                    {
                        let diff = |x: f64, y: f64| {
                            let now = window_mean(&frame.luma(), x, y)?;
                            Some((now - window_mean(&old.luma(), x, y)?).abs())
                        };
                        // The same measure 24 px to either side: what noise alone gives.
                        let side = [-24.0, 24.0].map(|dx| diff(q.x_px + dx, q.y_px));
                        if let (Some(c), [Some(a), Some(b)]) = (diff(q.x_px, q.y_px), side) {
                            contrast[oi].push((c, 0.5 * (a + b)));
                        }
                    }
                }
            }
            // Keep a grey copy: the analysis takes the frame.
            let l = frame.luma();
            let copy = fallwatch::ingest::Frame::from_gray(
                frame.index,
                frame.pts_s,
                l.width(),
                l.height(),
                (0..l.height())
                    .flat_map(|y| l.row(y).iter().copied())
                    .collect(),
            );
            if past.len() == CONTRAST_LAG {
                past.pop_front();
            }
            past.push_back(copy);
            let t_s = frame.pts_s;
            an.process(frame, &mut found)?;
            if show_tracks {
                for obj in &truth.objects {
                    let Some(q) = obj
                        .track
                        .iter()
                        .find(|q| q.visible && (q.t_s - t_s).abs() <= half_frame_s)
                    else {
                        continue;
                    };
                    println!("      t {t_s:.2} truth ({:.0},{:.0})", q.x_px, q.y_px);
                    for t in an.tracker().active() {
                        let p = t.position_px();
                        if (p[0] - q.x_px).hypot(p[1] - q.y_px) > 60.0 {
                            continue;
                        }
                        let llr = t.hit_llr();
                        println!(
                            "        track #{} {} n {} missed {} score {:.1} pos ({:.0},{:.0}) v ({:.0},{:.0}) llr {:?}",
                            t.id,
                            if t.confirmed { "conf" } else { "tent" },
                            t.observations.len(),
                            t.missed,
                            t.score,
                            p[0],
                            p[1],
                            t.velocity_px_s()[0],
                            t.velocity_px_s()[1],
                            &llr[llr.len().saturating_sub(6)..]
                        );
                    }
                }
            }
        }
    }
    an.finish(&mut found);
    let tracker = an.tracker().stats();
    let search = an.search_stats();
    let trace = an.take_trace().unwrap_or_default();
    Ok((
        found.into_iter().map(|f| f.event).collect(),
        trace,
        contrast,
        tracker,
        search,
    ))
}

/// Points of `pts` that lie on the object (same frame, within its tolerance).
fn on_object(obj: &ObjectTruth, pts: &[TrackPoint], half_frame_s: f64) -> usize {
    pts.iter()
        .filter(|p| {
            let i = obj.track.partition_point(|q| q.t_s < p.t_s - half_frame_s);
            obj.track.get(i).is_some_and(|q| {
                (q.t_s - p.t_s).abs() <= half_frame_s
                    && (q.x_px - p.x_px).hypot(q.y_px - p.y_px) <= 4.0f64.max(q.size_px)
            })
        })
        .count()
}

#[derive(Default)]
struct Totals {
    objects: usize,
    motion_half: usize,
    tracked_half: usize,
    accepted: usize,
    matched: usize,
    false_alarms: usize,
    seconds: f64,
    lost_reasons: BTreeMap<String, usize>,
}

/// One character per visible frame of an object lost at motion or tracking: `C` a candidate on it, `u` one on
/// it that the change test dropped, `R` re-based, `F` flood, `K` codec refresh, `I` illumination
/// event, `W` warming up, `X` the candidate cap was hit, `s` shaken (compensated), `.` nothing;
/// then its median contrast against the median tile noise.
fn print_motion_frames(trace: &Trace, obj: &ObjectTruth, contrast: &[(f64, f64)], half: f64) {
    let mut codes = String::new();
    let mut noise = Vec::new();
    let (mut kept, mut filtered, mut capped) = (Vec::new(), Vec::new(), Vec::new());
    for q in obj.track.iter().filter(|q| q.visible) {
        let near = |c: &&fallwatch::pipeline::analysis::CandidateTrace| {
            (c.t_s - q.t_s).abs() <= half
                && (c.candidate.x_px - q.x_px).hypot(c.candidate.y_px - q.y_px)
                    <= 4.0f64.max(q.size_px)
        };
        let hit = trace
            .candidates
            .iter()
            .filter(near)
            .map(|c| c.unchanged)
            .min();
        let f = trace.frames.iter().find(|f| (f.t_s - q.t_s).abs() <= half);
        if std::env::var("DIAG_NEAR").is_ok() {
            let best = trace
                .candidates
                .iter()
                .filter(|c| (c.t_s - q.t_s).abs() <= half)
                .map(|c| {
                    (
                        (c.candidate.x_px - q.x_px).hypot(c.candidate.y_px - q.y_px),
                        c,
                    )
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            println!(
                "      t {:.2} truth ({:.0},{:.0}) size {:.1}: nearest {:?}",
                q.t_s,
                q.x_px,
                q.y_px,
                q.size_px,
                best.map(|(d, c)| (
                    format!("{d:.1}"),
                    c.candidate.x_px as i32,
                    c.candidate.y_px as i32,
                    c.unchanged
                ))
            );
        }
        if std::env::var("DIAG_ALL").is_ok() {
            for c in trace.candidates.iter().filter(|c| {
                (c.t_s - q.t_s).abs() <= half
                    && (c.candidate.x_px - q.x_px).hypot(c.candidate.y_px - q.y_px) <= 25.0
            }) {
                let k = &c.candidate;
                let tracks: Vec<u64> = trace
                    .tracks
                    .iter()
                    .filter(|t| {
                        t.points.iter().any(|p| {
                            (p.t_s - c.t_s).abs() < 1e-6
                                && (p.x_px - c.candidate.x_px).hypot(p.y_px - c.candidate.y_px)
                                    < 0.01
                        })
                    })
                    .map(|t| t.track_id)
                    .collect();
                println!(
                    "        cand ({:.1},{:.1}) d {:.1} box {}x{} area {} contrast {:.1} len {:.1} wid {:.1} unchanged {} tracks {:?}",
                    c.candidate.x_px,
                    c.candidate.y_px,
                    (c.candidate.x_px - q.x_px).hypot(c.candidate.y_px - q.y_px),
                    k.w_px(),
                    k.h_px(),
                    k.area_px,
                    k.contrast,
                    k.length_px,
                    k.width_px,
                    c.unchanged,
                    tracks
                );
            }
        }
        let code = match (hit, f.map(|f| f.motion)) {
            (Some(false), _) => 'C',
            (Some(true), _) => 'u',
            (None, None) => '?',
            (None, Some(m)) => {
                noise.push(m.median_noise_grey);
                kept.push(f64::from(m.candidates));
                filtered.push(f64::from(m.filtered));
                capped.push(f64::from(m.dropped_over_cap));
                if m.refresh {
                    'K'
                } else if m.flood {
                    'F'
                } else if m.illumination_event {
                    'I'
                } else if m.rebased {
                    'R'
                } else if m.warming_up {
                    'W'
                } else if m.dropped_over_cap > 0 {
                    'X'
                } else if m.shift_compensated {
                    's'
                } else {
                    '.'
                }
            }
        };
        codes.push(code);
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let c = med(contrast.iter().map(|c| c.0).collect());
    let beside = med(contrast.iter().map(|c| c.1).collect());
    let n = med(noise.iter().map(|&n| f64::from(n)).collect());
    println!(
        "    frames {codes}  contrast {c:.1} grey (beside it {beside:.1}), tile noise {n:.1} grey; \
         frames without it: median candidates {:.0}, unchanged {:.0}, over the cap {:.0}",
        med(kept),
        med(filtered),
        med(capped)
    );
}

/// The physics features and each score term's shortfall from a textbook fall.
fn print_features(f: &fallwatch::physics::Features) {
    println!("    features {f:?}");
    let terms = fallwatch::physics::DEFAULT_SCORE_MODEL.terms(f);
    println!(
        "    terms {:?}",
        terms
            .iter()
            .map(|t| format!("{:?}:{:.2}", t.reason, t.weight * (t.value - t.best_value)))
            .collect::<Vec<_>>()
    );
}

/// `DIAG_TERMS=DIR`: per finished track of the clip, into `DIR/NAME.terms.csv`, whether it
/// follows an object (at least half its points on one), its score and verdict, and each score
/// term's value per unit of its weight in the default model (the flutter weighting folded in),
/// from the full 3-D fit (the early exit is skipped): what `scripts/score_calibration.py` reads.
/// Tracks a hard gate stopped before the fit are left out: their score never decides.
fn write_terms_csv(
    dir: &Path,
    truth: &Truth,
    trace: &Trace,
    model: &fallwatch::physics::FacadeModel,
) -> Res<()> {
    use fallwatch::physics::{DEFAULT_SCORE_MODEL, ScoreModel, assess_with};
    use std::fmt::Write as _;
    let half_frame_s = 0.5 / truth.fps;
    // A bias no track can fall short of: the fit always runs, the features are complete.
    let always_fit = ScoreModel {
        bias: 100.0,
        ..DEFAULT_SCORE_MODEL
    };
    let sm = &DEFAULT_SCORE_MODEL;
    // Each term's weight field: the values are written per unit of it (the flutter weighting
    // folded into the value), so a fit of the weights is linear in them.
    let weights = [
        ("w_fit", sm.w_fit),
        ("w_lateral", sm.w_lateral),
        ("w_swings", sm.w_swings),
        ("w_accel", sm.w_accel),
        ("w_g_low", sm.w_g_low),
        ("w_g_high", sm.w_g_high),
        ("w_slow", sm.w_slow),
        ("w_size_cv", sm.w_size_cv),
        ("w_size_m", sm.w_size_m),
        ("w_box", sm.w_box),
        ("w_rise", sm.w_rise),
        ("w_descent", sm.w_descent),
    ];
    let mut out = String::from("clip,track_id,object,score,verdict,n_points");
    for (name, _) in weights {
        write!(out, ",{name}")?;
    }
    out.push('\n');
    for t in &trace.tracks {
        let a = assess_with(model, &t.points, &always_fit);
        if !a.features.fit_sigma.is_finite() {
            continue;
        }
        let object = truth
            .objects
            .iter()
            .any(|o| 2 * on_object(o, &t.points, half_frame_s) >= t.points.len());
        write!(
            out,
            "{},{},{},{:.4},{},{}",
            truth.clip,
            t.track_id,
            u8::from(object),
            t.score,
            t.verdict,
            t.points.len()
        )?;
        for (term, (_, w)) in sm.terms(&a.features).iter().zip(weights) {
            let per_unit = if w == 0.0 {
                0.0
            } else {
                term.weight * term.value / w
            };
            write!(out, ",{per_unit:.5}")?;
        }
        out.push('\n');
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{}.terms.csv", truth.clip)), out)?;
    Ok(())
}

/// `DIAG_CSV=DIR`: every candidate of the clip (the tracker's and those the change test
/// dropped) into `DIR/NAME.csv`, with its distance to the nearest visible truth point.
fn write_candidates_csv(dir: &Path, truth: &Truth, trace: &Trace) -> Res<()> {
    use std::fmt::Write as _;
    let half_frame_s = 0.5 / truth.fps;
    let mut out = String::from(
        "t_s,x_px,y_px,brighter,area_px,w_px,h_px,length_px,width_px,orientation_deg,\
         contrast,peak,mass,fragments,unchanged,truth_dist_px\n",
    );
    for c in &trace.candidates {
        let k = &c.candidate;
        let dist = truth
            .objects
            .iter()
            .flat_map(|o| o.track.iter())
            .filter(|q| q.visible && (q.t_s - c.t_s).abs() <= half_frame_s)
            .map(|q| (q.x_px - k.x_px).hypot(q.y_px - k.y_px))
            .fold(f64::INFINITY, f64::min);
        writeln!(
            out,
            "{:.3},{:.1},{:.1},{},{},{:.0},{:.0},{:.1},{:.1},{:.0},{:.1},{:.1},{:.0},{},{},{:.1}",
            c.t_s,
            k.x_px,
            k.y_px,
            u8::from(k.polarity == fallwatch::motion::Polarity::Brighter),
            k.area_px,
            k.w_px(),
            k.h_px(),
            k.length_px,
            k.width_px,
            f64::from(k.orientation_rad).to_degrees(),
            k.contrast,
            k.peak_contrast,
            k.mass,
            k.fragments,
            u8::from(c.unchanged),
            dist
        )?;
    }
    std::fs::create_dir_all(dir)?;
    let name = Path::new(&truth.clip).with_extension("csv");
    std::fs::write(dir.join(name.file_name().ok_or("clip name")?), out)?;
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "--verbose");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let dir = PathBuf::from(
        pos.first()
            .ok_or("usage: diagnose DIR [NAME-FILTER] [--verbose]")?,
    );
    let filter = pos.get(1).map(|s| s.as_str()).unwrap_or("");
    fallwatch::ingest::init_ffmpeg()?;
    let files = Truth::files_in(&dir)?
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(filter));
    let mut tot = Totals::default();
    for f in files {
        let truth = Truth::load(&f)?;
        let calib = Calibration::load(&dir.join(&truth.calib))?;
        let (events, trace, contrast, tracker, search) =
            analyse(&dir.join(&truth.clip), &calib, &truth)?;
        let half_frame_s = 0.5 / truth.fps;
        if let Ok(csv_dir) = std::env::var("DIAG_CSV") {
            write_candidates_csv(&PathBuf::from(csv_dir), &truth, &trace)?;
        }
        let model = fallwatch::physics::FacadeModel::new(&calib, truth.width, truth.height)?;
        if let Ok(terms_dir) = std::env::var("DIAG_TERMS") {
            write_terms_csv(&PathBuf::from(terms_dir), &truth, &trace, &model)?;
        }
        let matches = match_events(&truth, &events, &MatchParams::default());
        tot.seconds += truth.duration_s;
        println!(
            "== {} ({}, {} objects, tags {:?}): {} events, {:.0} candidates/frame, {} tracks, \
             {} frames registered, {} refreshes",
            truth.clip,
            truth.scene.time_of_day,
            truth.objects.len(),
            truth.tags,
            events.len(),
            trace.candidates.len() as f64 / f64::from(truth.frames.max(1)),
            trace.tracks.len(),
            trace
                .frames
                .iter()
                .filter(|f| f.motion.shift_compensated)
                .count(),
            trace.frames.iter().filter(|f| f.motion.refresh).count()
        );
        println!(
            "    tracker: {} births ({} capped), {} confirmations ({} postponed at the cap)",
            tracker.births,
            tracker.births_capped,
            tracker.confirmations,
            tracker.confirmations_capped
        );
        println!(
            "    search: {} pairs, {} refits, {} tracks found ({} waited at the cap)",
            search.pairs, search.refits, search.found, search.capped
        );
        if std::env::var("DIAG_FRAMES").is_ok() {
            for f in &trace.frames {
                let m = &f.motion;
                println!(
                    "    frame t {:.2}: shift ({:+.2},{:+.2}) rot {:+.5} score {:.2} comp {} refresh {} \
                     rebased {} warm {} fg {} cands {} noise {:.1}",
                    f.t_s,
                    m.shift.dx_px,
                    m.shift.dy_px,
                    m.shift.rotation_rad,
                    m.shift.score,
                    m.shift_compensated,
                    m.refresh,
                    m.rebased,
                    m.warming_up,
                    m.foreground_px,
                    m.candidates,
                    m.median_noise_grey
                );
            }
        }
        for (oi, obj) in truth.objects.iter().enumerate() {
            tot.objects += 1;
            let visible: Vec<&_> = obj.track.iter().filter(|p| p.visible).collect();
            let seen = visible
                .iter()
                .filter(|q| {
                    trace.candidates.iter().any(|c| {
                        !c.unchanged
                            && (c.t_s - q.t_s).abs() <= half_frame_s
                            && (c.candidate.x_px - q.x_px).hypot(c.candidate.y_px - q.y_px)
                                <= 4.0f64.max(q.size_px)
                    })
                })
                .count();
            let followers: Vec<(&TrackTrace, usize)> = trace
                .tracks
                .iter()
                .map(|t| (t, on_object(obj, &t.points, half_frame_s)))
                .filter(|(_, n)| *n >= 3)
                .collect();
            let covered: usize = followers.iter().map(|(_, n)| n).sum();
            let matched = matches.iter().find(|m| m.object == oi);
            let accepted = followers
                .iter()
                .any(|(t, _)| t.verdict == "fall" || t.verdict == "stitched");
            tot.motion_half += usize::from(2 * seen >= visible.len());
            tot.tracked_half += usize::from(2 * covered >= visible.len());
            tot.accepted += usize::from(accepted);
            tot.matched += usize::from(matched.is_some());
            let size_med = {
                let mut s: Vec<f64> = visible.iter().map(|p| p.size_px).collect();
                s.sort_by(f64::total_cmp);
                s.get(s.len() / 2).copied().unwrap_or(0.0)
            };
            let fate = match matched {
                Some(m) => {
                    let e = &events[m.event];
                    if verbose {
                        print_features(&fallwatch::physics::assess(&model, &e.track).features);
                    }
                    format!(
                        "EVENT floor {} (truth {}) bay {} (truth {}) h {:.1} (truth {:.1})",
                        e.origin.floor,
                        obj.floor,
                        e.origin.bay,
                        obj.bay,
                        e.origin.height_m,
                        obj.height_m
                    )
                }
                None => {
                    let why = if 2 * seen < visible.len() {
                        print_motion_frames(&trace, obj, &contrast[oi], half_frame_s);
                        "motion".to_string()
                    } else if followers.is_empty() {
                        print_motion_frames(&trace, obj, &contrast[oi], half_frame_s);
                        "tracker".to_string()
                    } else if accepted {
                        "matching".to_string()
                    } else {
                        let best = followers.iter().max_by_key(|(_, n)| *n).expect("non-empty");
                        if std::env::var("DIAG_NEAR").is_ok() {
                            print_motion_frames(&trace, obj, &contrast[oi], half_frame_s);
                        }
                        if verbose {
                            let a = fallwatch::physics::assess(&model, &best.0.points);
                            print_features(&a.features);
                            if std::env::var("DIAG_POINTS").is_ok() {
                                for r in obj.track.iter().step_by(5) {
                                    let f = model.image_to_facade([r.x_px, r.y_px]);
                                    println!(
                                        "      truth t {:.2} px ({:.1},{:.1}) -> facade x {:.2} m h {:.2} m",
                                        r.t_s, r.x_px, r.y_px, f.x_m, f.height_m
                                    );
                                }
                                println!(
                                    "      object x_m {} height_m {} wall {}",
                                    obj.x_m, obj.height_m, obj.wall_distance_m
                                );
                                for q in &best.0.points {
                                    let i =
                                        obj.track.partition_point(|r| r.t_s < q.t_s - half_frame_s);
                                    let tr = obj.track.get(i);
                                    println!(
                                        "      t {:.2} ({:.1},{:.1}) {}x{}  truth {:?}",
                                        q.t_s,
                                        q.x_px,
                                        q.y_px,
                                        q.w_px,
                                        q.h_px,
                                        tr.map(|r| (r.t_s, r.x_px, r.y_px))
                                    );
                                }
                            }
                        }
                        format!("physics:{}", best.0.verdict)
                    };
                    *tot.lost_reasons.entry(why.clone()).or_default() += 1;
                    format!("MISSED ({why})")
                }
            };
            println!(
                "  object {oi} {} {} {:.2} m size {size_med:.1} px, t {:.2}-{:.2}: candidates in {seen}/{} \
                 frames, tracks {} ({covered} pts) -> {fate}",
                obj.kind,
                obj.motion,
                obj.size_m,
                obj.release_s,
                obj.end_s,
                visible.len(),
                followers
                    .iter()
                    .map(|(t, n)| format!(
                        "#{}[{}/{} {} {:.2}]",
                        t.track_id,
                        n,
                        t.points.len(),
                        t.verdict,
                        t.score
                    ))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        let used: Vec<usize> = matches.iter().map(|m| m.event).collect();
        for (ei, e) in events.iter().enumerate() {
            if used.contains(&ei) {
                continue;
            }
            tot.false_alarms += 1;
            let (a, b) = (&e.track[0], &e.track[e.track.len() - 1]);
            println!(
                "  FALSE ALARM {:.2}-{:.2} s from ({:.0},{:.0}) to ({:.0},{:.0}), {} pts, floor {} bay {} \
                 score {:.2} g {:.1} rmse {:.2}",
                e.start_s,
                e.end_s,
                a.x_px,
                a.y_px,
                b.x_px,
                b.y_px,
                e.track.len(),
                e.origin.floor,
                e.origin.bay,
                e.score,
                e.fall.g_fit_m_s2,
                e.fall.rmse_px
            );
            if verbose {
                let a = fallwatch::physics::assess(&model, &e.track);
                print_features(&a.features);
            }
        }
        if verbose {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for t in &trace.tracks {
                *by.entry(t.verdict.as_str()).or_default() += 1;
            }
            println!("  verdicts {by:?}");
        }
    }
    println!(
        "TOTAL objects {} | motion>=50% {} | tracked>=50% {} | accepted {} | matched {} | false alarms {} \
         ({:.1}/h over {:.0} s) | lost {:?}",
        tot.objects,
        tot.motion_half,
        tot.tracked_half,
        tot.accepted,
        tot.matched,
        tot.false_alarms,
        tot.false_alarms as f64 * 3600.0 / tot.seconds.max(1.0),
        tot.seconds,
        tot.lost_reasons
    );
    Ok(())
}
