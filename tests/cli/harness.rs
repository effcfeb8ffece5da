//! Small helpers for running `fallwatch` and the test RTSP server, and for test clips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
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
    assert!(out.stdout.is_empty(), "nothing on stdout for a failed run");
    lines[0].to_string()
}

/// A scratch directory removed at drop.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fallwatch-test-")
        .tempdir()
        .expect("tempdir")
}

/// A 6 s 1280x720 25 fps H.264 clip without B-frames (like a camera's), GOP 50, made once per
/// test run with the ffmpeg CLI that the set-up installs.
pub fn lavfi_clip() -> &'static Path {
    static CLIP: OnceLock<PathBuf> = OnceLock::new();
    CLIP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fallwatch-test-clips-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("testsrc.mp4");
        let status = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1280x720:rate=25",
            ])
            .args([
                "-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "50",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&path)
            .status()
            .expect("run ffmpeg (scripts/setup.sh installs it)");
        assert!(status.success(), "ffmpeg failed to make the test clip");
        path
    })
}

/// The contract's example calibration, written to `dir`.
pub fn write_calib(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("calib.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A valid calibration for a 1280x720 frame.
pub const CALIB_720P: &str = r#"
[camera]
id = "test-cam"

[facade]
corners_px = [[400.0, 60.0], [900.0, 80.0], [880.0, 660.0], [420.0, 680.0]]
width_m = 24.0
height_m = 42.0
base_height_m = 1.2

[floors]
first_storey_m = 3.6
storey_m = 3.0

[windows]
bays = 6
"#;

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
