//! How visible is each thrown object in the encoded video? A miss of an object that is buried in
//! the noise is a limit of the picture; a miss of a plainly visible one is a fault of fallwatch.
//! This tells the two apart, so the accuracy report can say which is which.
//!
//!     cargo run --release --example visibility -- DIR [NAME-FILTER] [--eval EVAL.json] [--per-point]
//!
//! For every synthetic clip in DIR (NAME.mp4 and NAME.truth.json) with objects:
//! 1. the background is the per-pixel median of every third frame of the clip (an object passes
//!    through; the median does not see it);
//! 2. at every visible truth point, `d` = frame - background and the mean of `d` over a k x k box
//!    (k = the object's size, at least 3 px): the object's value is the largest |box mean| within
//!    2 px of the truth point;
//! 3. the same measure at 200 random places within 150 px (seeded) gives the noise: its median
//!    and its robust spread (1.4826 x the median absolute deviation);
//! 4. `z` = (object - noise median) / noise spread, per point; the object's visibility is the
//!    median `z` over its visible points, with the share of points over 3.
//!
//! An object whose median `z` is under 3 is not separable from the noise frame by frame after
//! compression and motion blur (look at one: it cannot be seen either). With `--eval` (the
//! `--json` output of `fallwatch eval` on the same folder) each object is also marked found or
//! missed, and the totals give the recall on visible objects. The per-point table of
//! `--per-point` shows where along the fall the object fades. Any folder may be measured: the
//! measure reads the truth only to know where to look, and changes nothing in the analysis.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fallwatch::ingest::{Cancel, FfmpegOpener, Item, Opener, SourceSpec};
use fallwatch::synth::truth::Truth;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Median `z` at or above which an object counts as visible.
const VISIBLE_Z: f64 = 3.0;

/// The clip's luma planes, `width * height` bytes each.
struct Planes {
    width: usize,
    height: usize,
    frames: Vec<Vec<u8>>,
}

fn decode(clip: &Path) -> Res<Planes> {
    let mut spec = SourceSpec::new(clip.display().to_string());
    spec.keep_packets = false;
    spec.decoder_threads = 1;
    let mut source = FfmpegOpener.open(&spec, &Cancel::new())?;
    let (width, height) = (source.info().width as usize, source.info().height as usize);
    let mut frames = Vec::new();
    while let Some(item) = source.next_item()? {
        if let Item::Frame(frame) = item {
            let l = frame.luma();
            let mut plane = Vec::with_capacity(width * height);
            for y in 0..height {
                plane.extend_from_slice(&l.row(y)[..width]);
            }
            frames.push(plane);
        }
    }
    Ok(Planes {
        width,
        height,
        frames,
    })
}

/// Per-pixel median of every third frame.
fn background(p: &Planes) -> Vec<f32> {
    let sample: Vec<&Vec<u8>> = p.frames.iter().step_by(3).collect();
    let mut hist = vec![0u8; sample.len()];
    (0..p.width * p.height)
        .map(|i| {
            for (h, f) in hist.iter_mut().zip(&sample) {
                *h = f[i];
            }
            let mid = hist.len() / 2;
            f32::from(*hist.select_nth_unstable(mid).1)
        })
        .collect()
}

/// The largest |mean of frame - background| over a k x k box whose centre lies within 2 px of
/// (x, y); `None` where the boxes leave the picture.
fn box_peak(p: &Planes, frame: &[u8], bg: &[f32], x: f64, y: f64, k: usize) -> Option<f64> {
    let (xc, yc) = (x.round() as i64, y.round() as i64);
    let half = (k / 2) as i64;
    let (w, h) = (p.width as i64, p.height as i64);
    if xc - 2 - half < 0 || yc - 2 - half < 0 || xc + 2 + half + 1 > w || yc + 2 + half + 1 > h {
        return None;
    }
    let mut best = 0.0f64;
    for cy in yc - 2..=yc + 2 {
        for cx in xc - 2..=xc + 2 {
            let mut s = 0.0f64;
            for yy in cy - half..cy - half + k as i64 {
                let row = (yy * w) as usize;
                for xx in cx - half..cx - half + k as i64 {
                    let i = row + xx as usize;
                    s += f64::from(frame[i]) - f64::from(bg[i]);
                }
            }
            best = best.max((s / (k * k) as f64).abs());
        }
    }
    Some(best)
}

/// A small deterministic generator (xorshift64*): the noise places are the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) % n
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mid = v.len() / 2;
    *v.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// One object's visibility: the per-point `z` values (time, z).
fn object_z(p: &Planes, bg: &[f32], truth: &Truth, oi: usize) -> Vec<(f64, f64)> {
    let obj = &truth.objects[oi];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (truth.seed << 8) ^ oi as u64);
    let mut out = Vec::new();
    for q in obj.track.iter().filter(|q| q.visible) {
        let i = (q.t_s * truth.fps).round() as usize;
        let Some(frame) = p.frames.get(i) else {
            continue;
        };
        let k = (q.size_px.round() as usize).max(3);
        let Some(value) = box_peak(p, frame, bg, q.x_px, q.y_px, k) else {
            continue;
        };
        let mut noise: Vec<f64> = (0..200)
            .filter_map(|_| {
                let dx = rng.below(301) as f64 - 150.0;
                let dy = rng.below(301) as f64 - 150.0;
                box_peak(p, frame, bg, q.x_px + dx, q.y_px + dy, k)
            })
            .collect();
        if noise.len() < 50 {
            continue;
        }
        let m = median(&mut noise);
        let mut dev: Vec<f64> = noise.iter().map(|v| (v - m).abs()).collect();
        let spread = (1.4826 * median(&mut dev)).max(1e-3);
        out.push((q.t_s, (value - m) / spread));
    }
    out
}

/// Objects found, per clip name, from `fallwatch eval --json`.
fn found_objects(path: &Path) -> Res<HashMap<String, Vec<usize>>> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let mut out = HashMap::new();
    for c in v["clips"].as_array().ok_or("no clips in the eval JSON")? {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        let objs = c["matches"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|m| m["object"].as_u64().map(|o| o as usize))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name, objs);
    }
    Ok(out)
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let per_point = args.iter().any(|a| a == "--per-point");
    let eval_path = args
        .iter()
        .position(|a| a == "--eval")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let pos: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--eval"))
        .map(|(_, a)| a)
        .collect();
    let dir = PathBuf::from(
        pos.first()
            .ok_or("usage: visibility DIR [NAME-FILTER] [--eval EVAL.json] [--per-point]")?,
    );
    let filter = pos.get(1).map(|s| s.as_str()).unwrap_or("");
    let found = eval_path.as_deref().map(found_objects).transpose()?;
    let names = Truth::files_in(&dir)?
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(filter));
    // (visible?, found?) counts.
    let mut tally: HashMap<(bool, Option<bool>), usize> = HashMap::new();
    for path in names {
        let truth = Truth::load(&path)?;
        if truth.objects.is_empty() {
            continue;
        }
        let planes = decode(&dir.join(&truth.clip))?;
        let bg = background(&planes);
        let stem = truth.clip.trim_end_matches(".mp4").to_string();
        for (oi, obj) in truth.objects.iter().enumerate() {
            let zs = object_z(&planes, &bg, &truth, oi);
            let mut z: Vec<f64> = zs.iter().map(|p| p.1).collect();
            let over = z.iter().filter(|&&v| v >= VISIBLE_Z).count();
            let med = median(&mut z);
            let visible = med >= VISIBLE_Z;
            let was_found = found
                .as_ref()
                .map(|f| f.get(&stem).is_some_and(|o| o.contains(&oi)));
            *tally.entry((visible, was_found)).or_default() += 1;
            println!(
                "{stem} object {oi}: {} {} {:.2} m, {} points, median z {med:.1}, {over} over {VISIBLE_Z} -> {}{}  [{}]",
                obj.kind,
                obj.motion,
                obj.size_m,
                zs.len(),
                if visible {
                    "visible"
                } else {
                    "below the noise"
                },
                match was_found {
                    Some(true) => ", found",
                    Some(false) => ", missed",
                    None => "",
                },
                truth.tags.join(" "),
            );
            if per_point {
                for (t, z) in &zs {
                    println!("    t {t:.2} z {z:.1}");
                }
            }
        }
    }
    let count = |v: bool, f: Option<bool>| tally.get(&(v, f)).copied().unwrap_or(0);
    if found.is_some() {
        let (vf, vm) = (count(true, Some(true)), count(true, Some(false)));
        let (nf, nm) = (count(false, Some(true)), count(false, Some(false)));
        println!(
            "TOTAL visible {} (found {vf}, missed {vm}) | below the noise {} (found {nf}, missed {nm})",
            vf + vm,
            nf + nm
        );
    } else {
        println!(
            "TOTAL visible {} | below the noise {}",
            count(true, None),
            count(false, None)
        );
    }
    Ok(())
}
