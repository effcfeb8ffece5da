//! The pipeline end to end on a bundled sample clip (`sample_clips/tiny-720p.mp4`: a can thrown
//! at 3.29 s): the person search is wired in when the detector runs and absent when it is off.
//! The detector-on test needs the shipped NanoDet model and ONNX Runtime (`scripts/setup.sh`).

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::unbounded;

use super::*;
use crate::clock::RealClock;
use crate::ingest::FfmpegOpener;

/// Runs the sample clip through a pipeline with `detect`; returns each event's `event.json`.
fn run_sample(detect: DetectConfig) -> Vec<serde_json::Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_clips");
    let calib = Calibration::load(&dir.join("tiny-720p.calib.toml")).unwrap();
    let source = SourceSpec::new(dir.join("tiny-720p.mp4").to_string_lossy());
    let out = tempfile::tempdir().unwrap();
    let cfg = PipelineConfig {
        evidence: EvidenceConfig {
            retention_budget_bytes: None,
            retention_max_age_s: None,
            retention_min_age_s: 0,
            ..Default::default()
        },
        detect,
    };
    let pipeline = Pipeline::start(out.path(), cfg, Arc::new(RealClock::default())).unwrap();
    let (tx, rx) = unbounded();
    let summary = pipeline
        .analyze(
            &AnalyzeConfig::new(source, calib),
            &FfmpegOpener,
            &Cancel::new(),
            &Arc::new(Counters::default()),
            &tx,
        )
        .unwrap();
    pipeline.finish().unwrap();
    drop(tx);
    let events: Vec<serde_json::Value> = rx
        .iter()
        .map(|done| {
            assert!(done.error.is_none(), "{:?}", done.error);
            let text = std::fs::read_to_string(done.dir.join("event.json")).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    assert!(
        !events.is_empty(),
        "the sample's throw was not found: {summary:?}"
    );
    events
}

#[test]
fn with_the_detector_on_every_event_has_its_person_search() {
    for e in run_sample(DetectConfig::default()) {
        assert!(e.get("persons_error").is_none(), "{e}");
        // Nobody stands at the synthetic facade's windows: searched, nobody seen.
        let persons = e["persons"].as_array().expect("a persons list");
        for p in persons {
            assert!(p["score"].as_f64().unwrap() >= 0.5, "{p}");
        }
        assert_eq!(e.get("persons_floor").is_some(), !persons.is_empty());
    }
}

#[test]
fn with_the_detector_off_events_have_no_person_fields() {
    let off = DetectConfig {
        enabled: false,
        ..Default::default()
    };
    for e in run_sample(off) {
        for key in ["persons", "persons_floor", "persons_bay", "persons_error"] {
            assert!(e.get(key).is_none(), "{key} in {e}");
        }
    }
}
