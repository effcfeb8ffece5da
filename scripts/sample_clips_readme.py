#!/usr/bin/env python3
"""Writes sample_clips/README.md (a table of every clip and its truth) from the truth files."""
import glob
import json
import os
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "sample_clips"
order = [l.split()[1] for l in open(os.path.join(os.path.dirname(__file__), "make_sample_clips.sh"))
         if l.startswith("clip ")]
rows = []
for f in glob.glob(os.path.join(d, "*.truth.json")):
    t = json.load(open(f))
    name = os.path.basename(f)[: -len(".truth.json")]
    size = os.path.getsize(os.path.join(d, name + ".mp4"))
    s = t["scene"]
    if t["objects"]:
        o = t["objects"][0]
        vis = [p for p in o["track"] if p["visible"]]
        sz = sorted(p["size_px"] for p in vis)
        msz = sz[len(sz) // 2] if sz else 0
        cells = [f"{o['kind']} {o['size_m'] * 100:.0f} cm, {o['motion']}", f"{o['release_s']:.2f}",
                 f"{o['end_s']:.2f}", f"{o['floor']} / {o['bay']}",
                 f"{o['height_m']:.1f} / {o['x_m']:.1f} / {o['wall_distance_m']:.2f}",
                 f"({o['release_px'][0]:.0f}, {o['release_px'][1]:.0f})", f"{len(vis)} / {msz:.1f}"]
    else:
        cells = ["none"] + ["-"] * 6
    dist = ", ".join(x["kind"] + (f" {x['count']}" if x.get("count") is not None else f" {x['intensity']:.2f}")
                     for x in t["distractors"]) or "-"
    tags = ", ".join(x for x in t["tags"] if not x.startswith("preset:")) or "-"
    light = s["time_of_day"] + (" IR" if s.get("infrared") else "")
    rows.append((order.index(name) if name in order else 99,
                 f"| `{name}` | {t['width']}x{t['height']} | {light} | {s['camera_distance_m']:.0f} | "
                 + " | ".join(cells) + f" | {dist} | {tags} | {size / 1e6:.2f} |"))
rows.sort()
with open(os.path.join(d, "README.md"), "w") as out:
    out.write("""# Sample clips

Regenerate exactly with `scripts/make_sample_clips.sh` (seeds and options are in the script; the
same FFmpeg/x264 build gives byte-identical files; this table is written by
`scripts/sample_clips_readme.py`). Each clip has `NAME.mp4` (H.264, 25 fps, 8 s, GOP 2 s, no
B-frames, 1.0-1.5 Mbit/s so that every clip stays under 2 MB), `NAME.calib.toml` (the contract's calibration) and `NAME.truth.json` (ground truth,
format `fallwatch-truth-1`, see `docs/synth.md`).

Clips without an object (`none`) contain distractors only: any event reported there is a false
alarm. Releases are placed 3 s or more into the clip where the fall leaves room for 2 s after it.

| clip | size | light | cam dist m | object | release s | end s | floor / bay | height / x / wall m | release px | visible frames / median px | distractors | tags | MB |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
""")
    out.write("\n".join(r for _, r in rows) + "\n")
    out.write("""
Columns: `height / x / wall` are the release point's height above the ground, its distance from
the calibration rectangle's left edge and its distance in front of the wall; `release px` is the
calibration homography of (x, height); floor and bay follow the contract's formulas. `end s` is
the last track entry (landing or leaving the picture). `visible frames` counts track entries with
`visible: true` (outside the picture or behind the tree or building they are false); `median px`
is the object's median apparent size in those frames.
""")
