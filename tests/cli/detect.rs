//! `fallwatch detect` end to end: the shipped model on a real photograph, a user's YOLOv8-format
//! model, and the errors a person meets when ONNX Runtime is missing or wrong.

use std::path::{Path, PathBuf};
use std::process::Output;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn fallwatch(args: &[&str], ort_dylib: Option<&Path>) -> Output {
    let mut cmd = crate::harness::bin();
    cmd.args(args);
    if let Some(p) = ort_dylib {
        cmd.env("ORT_DYLIB_PATH", p);
    }
    cmd.output().expect("run fallwatch")
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn best(line: &serde_json::Value, class: &str) -> Option<(f64, Vec<f64>)> {
    line["detections"]
        .as_array()?
        .iter()
        .filter(|d| d["class"] == class)
        .map(|d| {
            let b = d["box_px"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (d["score"].as_f64().unwrap(), b)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

#[test]
fn the_shipped_model_finds_the_astronaut() {
    let img = data("astronaut.png");
    let out = fallwatch(&["detect", img.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["image"], img.to_str().unwrap());
    let (score, b) = best(&lines[0], "person").expect("a person");
    assert!(score >= 0.5, "person score {score}");
    assert!(
        b[0] < 60.0 && b[1] < 60.0 && b[2] > 250.0 && b[3] > 400.0,
        "{b:?}"
    );
}

#[test]
fn tiles_mode_finds_her_too_and_bad_images_are_reported() {
    let img = data("astronaut.png");
    let missing = data("no-such-image.png");
    let out = fallwatch(
        &[
            "detect",
            "--mode",
            "tiles",
            "--tile-px",
            "384",
            "--input-px",
            "320",
            missing.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "one image failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-image.png: cannot read image"),
        "{err}"
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "the good image is still reported");
    let (score, _) = best(&lines[0], "person").expect("a person");
    assert!(score >= 0.5, "person score {score}");
}

#[test]
fn a_users_yolov8_model_is_decoded_with_its_class_names() {
    let (model, classes) = (data("fake_yolov8.onnx"), data("fake_yolov8.classes.txt"));
    let img = data("astronaut.png");
    let args = [
        "detect",
        "--kind",
        "yolov8",
        "--model",
        model.to_str().unwrap(),
    ];
    let mut with_classes = args.to_vec();
    with_classes.extend([
        "--classes",
        classes.to_str().unwrap(),
        img.to_str().unwrap(),
    ]);
    let out = fallwatch(&with_classes, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = &json_lines(&out)[0];
    // The model's box (cx 32, cy 24, 16 x 8 on its 64 px input) on the 512 px photo (x 8).
    assert_eq!(
        line["detections"],
        serde_json::json!([{"class": "bottle", "score": 0.8, "box_px": [192.0, 160.0, 128.0, 64.0]}])
    );
    // Without the names file, COCO's 80 classes do not fit its 2: a clear error, not garbage.
    let mut without = args.to_vec();
    without.push(img.to_str().unwrap());
    let out = fallwatch(&without, None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not fit 80 classes"), "{err}");
}

fn assert_one_line_resource_error(out: &Output, expect: &str) {
    assert_eq!(out.status.code(), Some(1), "exit status");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("fallwatch: error: "), "{err}");
    assert!(err.contains(expect), "{err}");
    assert!(
        err.contains("scripts/setup.sh"),
        "says how to fix it: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_onnx_runtime_is_one_clear_line() {
    let img = data("astronaut.png");
    let out = fallwatch(
        &["detect", img.to_str().unwrap()],
        Some(Path::new("/nonexistent/libonnxruntime.so")),
    );
    assert_one_line_resource_error(
        &out,
        "ONNX Runtime library not found (looked at ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so (missing))",
    );
}

#[test]
fn a_file_that_is_not_onnx_runtime_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library\n").unwrap();
    let img = data("astronaut.png");
    let out = fallwatch(&["detect", img.to_str().unwrap()], Some(&fake));
    assert_one_line_resource_error(&out, "cannot use ONNX Runtime library");
}
