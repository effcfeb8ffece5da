//! Measures, in one run, the CPU time of decoding a clip (FFmpeg, one thread, as ingest does) and
//! of the analysis after it (motion detection + tracking) on every frame, and prints their ratio.
//! The budget: analysis at most 25% of decode, goal 10%.
//!
//!     cargo run --release --example motion_vs_decode -- CLIP.mp4 [CALIB.toml] [--repeat N]
//!
//! Without a calibration the whole frame is the region (the worst case). CPU time is this
//! thread's (`CLOCK_THREAD_CPUTIME_ID`), so other processes on a busy machine do not count.

use std::path::Path;

use fallwatch::calib::Calibration;
use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};
use fallwatch::motion::{MotionConfig, MotionDetector};
use fallwatch::track::{Tracker, TrackerConfig};

/// CPU time of the calling thread, nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn full_frame(w: u32, h: u32) -> Calibration {
    let text = format!(
        "[camera]\nid = \"full\"\n[facade]\ncorners_px = [[0, 0], [{w}, 0], [{w}, {h}], [0, {h}]]\n\
         width_m = 24.0\nheight_m = 42.0\nbase_height_m = 1.2\n[floors]\nfirst_storey_m = 3.6\n\
         storey_m = 3.0\n[windows]\nbays = 6\n"
    );
    Calibration::from_toml(&text).expect("full-frame calibration")
}

/// Writes the luma plane as a PNG with a white box around each candidate.
fn save_snapshot(
    luma: &fallwatch::ingest::Luma<'_>,
    cands: &[fallwatch::motion::Candidate],
    out: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = (luma.width(), luma.height());
    let mut img = image::GrayImage::new(w as u32, h as u32);
    for y in 0..h {
        for (x, &v) in luma.row(y).iter().enumerate() {
            img.put_pixel(x as u32, y as u32, image::Luma([v]));
        }
    }
    for c in cands {
        let (x0, y0) = (c.x_min_px.saturating_sub(3), c.y_min_px.saturating_sub(3));
        let (x1, y1) = (
            (c.x_max_px + 3).min(w as u32 - 1),
            (c.y_max_px + 3).min(h as u32 - 1),
        );
        for x in x0..=x1 {
            img.put_pixel(x, y0, image::Luma([255]));
            img.put_pixel(x, y1, image::Luma([255]));
        }
        for y in y0..=y1 {
            img.put_pixel(x0, y, image::Luma([255]));
            img.put_pixel(x1, y, image::Luma([255]));
        }
    }
    // SNAPSHOT_CROP=x,y,w,h,scale writes an enlarged crop instead.
    if let Ok(c) = std::env::var("SNAPSHOT_CROP") {
        let v: Vec<u32> = c.split(',').filter_map(|s| s.parse().ok()).collect();
        if let [x, y, cw, ch, k] = v[..] {
            let crop = image::imageops::crop_imm(&img, x, y, cw, ch).to_image();
            let big = image::imageops::resize(
                &crop,
                cw * k,
                ch * k,
                image::imageops::FilterType::Nearest,
            );
            big.save(out)?;
            return Ok(());
        }
    }
    img.save(out)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1usize;
    let mut verbose = false;
    let mut truth_path: Option<String> = None;
    let mut confirmed: Vec<fallwatch::track::Track> = Vec::new();
    let mut all_cands: Vec<(f64, f64, f64)> = Vec::new();
    let mut snapshot: Option<(u64, String)> = None;
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--repeat" {
            repeat = it.next().ok_or("--repeat needs a number")?.parse()?;
        } else if a == "--truth" {
            truth_path = Some(it.next().ok_or("--truth needs a file")?.clone());
        } else if a == "--verbose" {
            verbose = true;
        } else if a == "--snapshot" {
            // --snapshot FRAME OUT.png: the frame's luma with its candidates boxed.
            let f = it.next().ok_or("--snapshot needs FRAME OUT.png")?.parse()?;
            let out = it.next().ok_or("--snapshot needs FRAME OUT.png")?.clone();
            snapshot = Some((f, out));
        } else {
            paths.push(a.clone());
        }
    }
    let clip = paths
        .first()
        .ok_or("usage: motion_vs_decode CLIP [CALIB.toml] [--repeat N]")?;
    fallwatch::ingest::init_ffmpeg()?;
    let mut spec = SourceSpec::new(clip.clone());
    spec.keep_packets = false;
    spec.decoder_threads = 1;

    let (mut decode_ns, mut motion_ns, mut track_ns) = (0u64, 0u64, 0u64);
    let (mut frames, mut candidates, mut tracks, mut capped) = (0u64, 0u64, 0u64, 0u64);
    // Confirmed track lengths: <= 5, 6-10, 11-25, > 25 detections.
    let mut lengths = [0u64; 4];
    let mut bucket = |n: usize| {
        lengths[match n {
            0..=5 => 0,
            6..=10 => 1,
            11..=25 => 2,
            _ => 3,
        }] += 1
    };
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
        // MOTION_TOML="k_sigma = 6.0" tries other settings.
        let cfg: MotionConfig = match std::env::var("MOTION_TOML") {
            Ok(t) => toml::from_str(&t)?,
            Err(_) => MotionConfig::default(),
        };
        let mut det = MotionDetector::new(&calib, w, h, cfg)?;
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
                if truth_path.is_some() {
                    all_cands.extend(cands.iter().map(|c| (frame.pts_s, c.x_px, c.y_px)));
                }
                let t3 = thread_cpu_ns();
                let done = tr.update(frame.pts_s, cands);
                let t4 = thread_cpu_ns();
                if verbose {
                    let st = det.stats();
                    eprintln!(
                        "frame {} fg {} cands {} noise {:.2} gain {:.3} shift ({:.2},{:.2}) \
                         {}{}{}{}",
                        frame.index,
                        st.foreground_px,
                        st.candidates,
                        st.median_noise_grey,
                        st.median_gain,
                        st.shift.dx_px,
                        st.shift.dy_px,
                        if st.shift_compensated { "shaken " } else { "" },
                        if st.illumination_event {
                            "illumination "
                        } else {
                            ""
                        },
                        if st.flood { "flood " } else { "" },
                        if st.rebased { "rebased" } else { "" },
                    );
                }
                if let Some((f, out)) = &snapshot
                    && frame.index == *f
                {
                    save_snapshot(&frame.luma(), det.candidates(), out)?;
                }
                motion_ns += t3 - t2;
                track_ns += t4 - t3;
                frames += 1;
                candidates += n as u64;
                tracks += done.len() as u64;
                done.iter().for_each(|t| bucket(t.observations.len()));
                confirmed.extend(done);
                capped += u64::from(det.stats().dropped_over_cap > 0);
            }
        }
        let rest = tr.flush();
        tracks += rest.len() as u64;
        rest.iter().for_each(|t| bucket(t.observations.len()));
        confirmed.extend(rest);
        memory = det.memory_bytes();
        let st = det.stats();
        println!(
            "events: re-bases {} (floods {}, refreshes {}, light {}), shaken frames {}",
            st.total_rebases,
            st.total_floods,
            st.total_refreshes,
            st.total_illumination_events,
            st.total_shaken_frames
        );
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
        "candidates {:.1}/frame, capped frames {capped}, confirmed tracks {tracks} (<=5: {}, 6-10: {}, \
         11-25: {}, >25: {} detections), motion memory {:.1} MiB",
        candidates as f64 / frames.max(1) as f64,
        lengths[0],
        lengths[1],
        lengths[2],
        lengths[3],
        memory as f64 / 1048576.0
    );
    if verbose {
        for t in confirmed.iter().filter(|t| t.observations.len() > 25) {
            let (a, b) = (
                t.observations[0].point,
                t.observations[t.observations.len() - 1].point,
            );
            eprintln!(
                "long track {}: {:.2}-{:.2} s, {} points, from ({:.0},{:.0}) moved ({:.1},{:.1}) px, \
                 mean contrast {:.1}",
                t.id,
                t.start_s(),
                t.end_s(),
                t.observations.len(),
                a.x_px,
                a.y_px,
                b.x_px - a.x_px,
                b.y_px - a.y_px,
                t.observations
                    .iter()
                    .map(|o| f64::from(o.contrast))
                    .sum::<f64>()
                    / t.observations.len() as f64
            );
        }
    }
    if let Some(p) = truth_path {
        report_truth(&p, &confirmed, &all_cands, verbose)?;
    }
    Ok(())
}

/// For each object of a synth truth file: the confirmed track that follows it best (points
/// within 3 px of the truth at the same time), its first point and its coverage.
fn report_truth(
    path: &str,
    tracks: &[fallwatch::track::Track],
    cands: &[(f64, f64, f64)],
    verbose: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let truth: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let objects = truth["objects"].as_array().cloned().unwrap_or_default();
    for (k, o) in objects.iter().enumerate() {
        let pts: Vec<(f64, f64, f64)> = o["track"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["visible"].as_bool().unwrap_or(true))
                    .filter_map(|p| {
                        Some((p["t_s"].as_f64()?, p["x_px"].as_f64()?, p["y_px"].as_f64()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some(&(t0, _, _)) = pts.first() else {
            continue;
        };
        let mut detected = 0;
        for &(ts, x, y) in &pts {
            let d = cands
                .iter()
                .filter(|c| (c.0 - ts).abs() < 0.01)
                .map(|c| (c.1 - x).hypot(c.2 - y))
                .fold(f64::INFINITY, f64::min);
            detected += usize::from(d <= 3.0);
            if verbose {
                eprintln!("truth t {ts:.2} ({x:.1},{y:.1}) nearest candidate {d:.1} px");
            }
        }
        println!(
            "object {k}: a candidate within 3 px in {detected} of {} frames",
            pts.len()
        );
        let near = |t: &fallwatch::track::Track| {
            t.observations
                .iter()
                .filter(|ob| {
                    pts.iter().any(|&(ts, x, y)| {
                        (ts - ob.point.t_s).abs() < 0.01
                            && (x - ob.point.x_px).hypot(y - ob.point.y_px) <= 3.0
                    })
                })
                .count()
        };
        match tracks.iter().max_by_key(|t| near(t)) {
            Some(best) if near(best) > 0 => println!(
                "object {k} ({}): visible from {t0:.2} s for {} frames; best track {} starts \
                 {:.2} s, {} of its {} points on the object",
                o["kind"].as_str().unwrap_or("?"),
                pts.len(),
                best.id,
                best.start_s(),
                near(best),
                best.observations.len()
            ),
            _ => println!("object {k}: visible from {t0:.2} s, not tracked"),
        }
    }
    Ok(())
}
