//! Small helpers for running `fallwatch` and the test RTSP server, and for test clips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The built `fallwatch` binary.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fallwatch"));
    c.env_remove("RUST_LOG").env_remove("RUST_BACKTRACE");
    c
}

/// Runs `fallwatch` with `args`, bounded by `limit` (a hang is a failure, not a stuck CI).
pub fn run(args: &[&str], limit: Duration) -> Output {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fallwatch");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "fallwatch {args:?} still running after {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `fallwatch analyze SOURCE --calib CALIB --out OUT EXTRA...`, bounded by `limit`.
pub fn analyze(source: &str, calib: &Path, out: &Path, extra: &[&str], limit: Duration) -> Output {
    let mut args = vec![
        "analyze",
        source,
        "--calib",
        calib.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    run(&args, limit)
}

/// Asserts a failed run: non-zero exit, exactly one line on stderr starting with
/// `fallwatch: error:`, no panic, no backtrace; returns that line.
pub fn assert_one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert_ne!(out.status.code(), Some(101), "panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {stderr}");
    assert!(lines[0].starts_with("fallwatch: error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    // Events found before the failure stay written and reported: stdout holds only JSON lines.
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("stdout line is JSON");
        assert!(v["id"].is_string() && v["dir"].is_string(), "{l}");
    }
    lines[0].to_string()
}

/// A scratch directory removed at drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fallwatch-test-")
        .tempdir()
        .expect("tempdir")
}

/// A bundled sample clip and its calibration file: `sample_clips/NAME.mp4`, `NAME.calib.toml`.
pub fn sample(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_clips");
    let clip = dir.join(format!("{name}.mp4"));
    let calib = dir.join(format!("{name}.calib.toml"));
    assert!(
        clip.is_file() && calib.is_file(),
        "missing sample clip {name}"
    );
    (clip, calib)
}

/// The small 720p sample clip used where any real clip will do (200 frames, 25 fps, GOP 50).
pub fn small_clip() -> (PathBuf, PathBuf) {
    sample("tiny-720p")
}

/// Writes calibration text into `dir` and returns its path.
pub fn write_calib(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("calib.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The text of a sample clip's calibration.
pub fn calib_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// The GStreamer RTSP server (scripts/rtsp_server.py) serving one clip on 127.0.0.1; killed at
/// drop, whatever happens in the test.
pub struct RtspServer {
    child: Child,
    /// `rtsp://127.0.0.1:PORT/clip`
    pub url: String,
}

impl RtspServer {
    pub fn start(clip: &Path) -> RtspServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rtsp_server.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(clip)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the RTSP server (scripts/setup.sh --test installs GStreamer)");
        let stdout = child.stdout.take().unwrap();
        let mut server = RtspServer {
            child,
            url: String::new(),
        };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server output");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("RTSP server did not start: {line:?}"));
        server.url = format!("rtsp://127.0.0.1:{port}/clip");
        server
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a `--frame-log` file into (index, pts_s) pairs.
pub fn read_frame_log(path: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let (i, t) = l.split_once(',').unwrap();
            (i.parse().unwrap(), t.parse().unwrap())
        })
        .collect()
}
