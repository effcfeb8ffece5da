//! Ingest end to end: files and a live RTSP stream of the same clip decode to the same frames.

use std::time::Duration;

use crate::harness::*;

#[test]
fn rtsp_stream_decodes_like_the_file() {
    let dir = tempdir();
    let (clip, calib) = small_clip();
    let file_log = dir.path().join("file.csv");
    let rtsp_log = dir.path().join("rtsp.csv");
    let out = dir.path().join("out");

    let f = analyze(
        clip.to_str().unwrap(),
        &calib,
        &out,
        &["--frame-log", file_log.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(f.status.success(), "{}", String::from_utf8_lossy(&f.stderr));

    let server = RtspServer::start(&clip);
    let r = analyze(
        &server.url,
        &calib,
        &out,
        &["--frame-log", rtsp_log.to_str().unwrap()],
        Duration::from_secs(60),
    );
    drop(server);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));

    let file_frames = read_frame_log(&file_log);
    let rtsp_frames = read_frame_log(&rtsp_log);
    assert_eq!(file_frames.len(), 200, "8 s at 25 fps");
    assert_eq!(
        rtsp_frames.len(),
        file_frames.len(),
        "same frame count over RTSP"
    );
    for (a, b) in file_frames.iter().zip(&rtsp_frames) {
        assert_eq!(a.0, b.0);
        assert!(
            (a.1 - b.1).abs() < 1e-3,
            "frame {}: file {} s, rtsp {} s",
            a.0,
            a.1,
            b.1
        );
    }
}

#[test]
fn containers_decode_to_the_same_frames() {
    let dir = tempdir();
    let (clip, _) = small_clip();
    let mut logs = Vec::new();
    for ext in ["mp4", "mkv", "ts"] {
        let src = dir.path().join(format!("c.{ext}"));
        let st = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&clip)
            .args(["-c", "copy"])
            .arg(&src)
            .status()
            .unwrap();
        assert!(st.success());
        let out = run(
            &["probe", src.to_str().unwrap(), "--frames"],
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{ext}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let frames: Vec<serde_json::Value> = stdout
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        logs.push(frames);
    }
    assert_eq!(logs[0].len(), 200);
    for other in &logs[1..] {
        assert_eq!(other.len(), logs[0].len());
        for (a, b) in logs[0].iter().zip(other) {
            let (ta, tb) = (a["pts_s"].as_f64().unwrap(), b["pts_s"].as_f64().unwrap());
            assert!((ta - tb).abs() < 1e-3, "{a} vs {b}");
        }
    }
}
