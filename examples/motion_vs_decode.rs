//! Measures, in one run, the CPU time of decoding a clip (FFmpeg, one thread, as ingest does) and
//! of the analysis after it (motion detection + tracking) on every frame, and prints their ratio.
//! The budget: analysis at most 25% of decode, goal 10%.
//!
//!     cargo run --release --example motion_vs_decode -- CLIP.mp4 [CALIB.toml] [--repeat N]
//!
//! Without a calibration the whole frame is the region (the worst case). CPU time is this
//! thread's (`/proc/thread-self/schedstat`), so other processes on a busy machine do not count.

use std::path::Path;

use fallwatch::calib::Calibration;
use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};
use fallwatch::motion::{MotionConfig, MotionDetector};
use fallwatch::track::{Tracker, TrackerConfig};

/// CPU time of the calling thread, nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn full_frame(w: u32, h: u32) -> Calibration {
    let text = format!(
        "[camera]\nid = \"full\"\n[facade]\ncorners_px = [[0, 0], [{w}, 0], [{w}, {h}], [0, {h}]]\n\
         width_m = 24.0\nheight_m = 42.0\nbase_height_m = 1.2\n[floors]\nfirst_storey_m = 3.6\n\
         storey_m = 3.0\n[windows]\nbays = 6\n"
    );
    Calibration::from_toml(&text).expect("full-frame calibration")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1usize;
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--repeat" {
            repeat = it.next().ok_or("--repeat needs a number")?.parse()?;
        } else {
            paths.push(a.clone());
        }
    }
    let clip = paths.first().ok_or("usage: motion_vs_decode CLIP [CALIB.toml] [--repeat N]")?;
    fallwatch::ingest::init_ffmpeg()?;
    let mut spec = SourceSpec::new(clip.clone());
    spec.keep_packets = false;
    spec.decoder_threads = 1;

    let (mut decode_ns, mut motion_ns, mut track_ns) = (0u64, 0u64, 0u64);
    let (mut frames, mut candidates, mut tracks, mut capped) = (0u64, 0u64, 0u64, 0u64);
    let mut info_line = String::new();
    let mut memory = 0usize;
    for _ in 0..repeat {
        let mut source = FfmpegOpener.open(&spec, &Cancel::new())?;
        let info = source.info().clone();
        let calib = match paths.get(1) {
            Some(p) => Calibration::load(Path::new(p))?,
            None => full_frame(info.width, info.height),
        };
        let (w, h) = (info.width as usize, info.height as usize);
        let mut det = MotionDetector::new(&calib, w, h, MotionConfig::default())?;
        let mut tr = Tracker::new(TrackerConfig::for_calibration(&calib))?;
        info_line = format!(
            "{}x{} {}, region {:.0}% of the frame",
            w,
            h,
            info.codec,
            100.0 * det.region().pixel_count() as f64 / (w * h) as f64
        );
        loop {
            let t0 = thread_cpu_ns();
            let item = source.next_item()?;
            let t1 = thread_cpu_ns();
            decode_ns += t1 - t0;
            let Some(item) = item else { break };
            if let Item::Frame(frame) = item {
                let t2 = thread_cpu_ns();
                let cands = det.process(frame.luma(), frame.pts_s)?;
                let n = cands.len();
                let t3 = thread_cpu_ns();
                let done = tr.update(frame.pts_s, cands);
                let t4 = thread_cpu_ns();
                motion_ns += t3 - t2;
                track_ns += t4 - t3;
                frames += 1;
                candidates += n as u64;
                tracks += done.len() as u64;
                capped += u64::from(det.stats().dropped_over_cap > 0);
            }
        }
        tracks += tr.flush().len() as u64;
        memory = det.memory_bytes();
    }
    let per = |ns: u64| ns as f64 / 1e6 / frames.max(1) as f64;
    println!("{clip}: {info_line}, {frames} frames");
    println!("decode   {:.3} ms/frame (CPU)", per(decode_ns));
    println!("motion   {:.3} ms/frame (CPU)", per(motion_ns));
    println!("tracking {:.3} ms/frame (CPU)", per(track_ns));
    println!(
        "analysis / decode = {:.1}%  (motion {:.1}%, tracking {:.1}%)",
        100.0 * (motion_ns + track_ns) as f64 / decode_ns.max(1) as f64,
        100.0 * motion_ns as f64 / decode_ns.max(1) as f64,
        100.0 * track_ns as f64 / decode_ns.max(1) as f64
    );
    println!(
        "candidates {:.1}/frame, capped frames {capped}, confirmed tracks {tracks}, motion memory {:.1} MiB",
        candidates as f64 / frames.max(1) as f64,
        memory as f64 / 1048576.0
    );
    Ok(())
}
