//! Bad input ends with a non-zero exit and one clear line on stderr: never a panic, a backtrace
//! or a hang.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::harness::*;

/// `analyze` with short network timeouts (an unreachable camera must fail fast).
fn analyze_briefly(
    source: &str,
    calib: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    analyze(
        source,
        calib,
        out,
        &["--connect-timeout-ms", "2000", "--read-timeout-ms", "2000"],
        Duration::from_secs(30),
    )
}

#[test]
fn missing_file() {
    let dir = tempdir();
    let (_, calib) = small_clip();
    let missing = dir.path().join("nope.mp4");
    let line = assert_one_line_error(&analyze_briefly(
        missing.to_str().unwrap(),
        &calib,
        dir.path(),
    ));
    assert!(
        line.contains("nope.mp4") && line.contains("no such file"),
        "{line}"
    );
}

#[test]
fn not_a_video_file() {
    let dir = tempdir();
    let (_, calib) = small_clip();
    let text = dir.path().join("notes.mp4");
    std::fs::write(
        &text,
        "these are not the frames you are looking for\n".repeat(100),
    )
    .unwrap();
    let line = assert_one_line_error(&analyze_briefly(text.to_str().unwrap(), &calib, dir.path()));
    assert!(
        line.contains("notes.mp4") && line.contains("not a readable video"),
        "{line}"
    );
}

#[test]
fn truncated_mp4_without_index() {
    // The MP4 muxer writes the index (moov) at the end: a recording cut short has none.
    let dir = tempdir();
    let (clip, calib) = small_clip();
    let bytes = std::fs::read(&clip).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let line = assert_one_line_error(&analyze_briefly(cut.to_str().unwrap(), &calib, dir.path()));
    assert!(line.contains("cut.mp4"), "{line}");
}

#[test]
fn truncated_mp4_with_index_first() {
    // With the index first (fast start) the file opens, then the media data ends early.
    let dir = tempdir();
    let (clip, calib) = small_clip();
    let faststart = dir.path().join("fs.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(&faststart)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&faststart).unwrap();
    let cut = dir.path().join("cut-fs.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let line = assert_one_line_error(&analyze_briefly(cut.to_str().unwrap(), &calib, dir.path()));
    assert!(
        line.contains("cut-fs.mp4") && line.contains("ends early"),
        "{line}"
    );
}

#[test]
fn rtsp_connection_refused() {
    let dir = tempdir();
    let (_, calib) = small_clip();
    // Bind then drop: the port is (almost certainly) closed now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("rtsp://127.0.0.1:{port}/stream");
    let line = assert_one_line_error(&analyze_briefly(&url, &calib, dir.path()));
    assert!(line.contains(&url), "{line}");
}

#[test]
fn rtsp_server_that_never_answers_times_out() {
    let dir = tempdir();
    let (_, calib) = small_clip();
    // Accepts the TCP connection, then says nothing: only the timeout can end this.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(8));
        drop(conn);
    });
    let url = format!("rtsp://127.0.0.1:{port}/stream");
    let started = Instant::now();
    let line = assert_one_line_error(&analyze_briefly(&url, &calib, dir.path()));
    let took = started.elapsed();
    assert!(line.contains(&url), "{line}");
    assert!(
        took < Duration::from_secs(7),
        "gave up only after {took:?} (timeout 2 s)"
    );
    holder.join().unwrap();
}

#[test]
fn calibration_with_a_missing_field() {
    let dir = tempdir();
    let (clip, calib) = small_clip();
    let text = calib_text(&calib).replace("\nstorey_m = 3.1\n", "\n");
    let calib = write_calib(dir.path(), &text);
    let line = assert_one_line_error(&analyze_briefly(clip.to_str().unwrap(), &calib, dir.path()));
    assert!(
        line.contains("calib.toml") && line.contains("storey_m"),
        "{line}"
    );
}

#[test]
fn calibration_with_corners_not_convex_in_order() {
    let dir = tempdir();
    // Top-right and bottom-right swapped: the outline crosses itself.
    let (clip, calib) = small_clip();
    let mut c = fallwatch::calib::Calibration::load(&calib).unwrap();
    c.facade.corners_px.swap(1, 2);
    let calib = write_calib(dir.path(), &c.to_toml());
    let line = assert_one_line_error(&analyze_briefly(clip.to_str().unwrap(), &calib, dir.path()));
    assert!(line.contains("convex"), "{line}");
}
