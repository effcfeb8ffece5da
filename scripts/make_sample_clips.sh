#!/usr/bin/env bash
# Regenerates sample_clips/ exactly (same seeds and options give byte-identical files on the same
# FFmpeg/x264 build). Each clip: NAME.mp4 + NAME.calib.toml + NAME.truth.json, under 2 MB.
# Usage: scripts/make_sample_clips.sh [OUT_DIR]   (default: sample_clips)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-sample_clips}"
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/fallwatch

clip() { # name seed options...
  local name="$1" seed="$2"
  shift 2
  "$bin" -q synth --out "$out" --name "$name" --seed "$seed" --fps 25 "$@"
}

# One thrown/dropped object each, different floors, bays, motions, distances and light.
clip day-drop-bottle        101 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --time-of-day day   --object-kind bottle --motion drop  --distance-m 30 --distractors bird
clip day-throw-brick-near   102 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --time-of-day day   --object-kind brick  --motion throw --distance-m 18 --distractors tree,shake
clip dusk-toss-can          103 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --time-of-day dusk  --object-kind can    --motion toss  --distance-m 38 --distractors lights,bird
clip night-ir-drop-phone    104 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --time-of-day night --object-kind phone  --motion drop  --distance-m 24 --infrared true  --distractors insect,lights
clip night-throw-bag-720p   105 --resolution 720p  --duration-s 8 --bitrate-kbps 1000 --time-of-day night --object-kind bag    --motion throw --distance-m 28 --infrared false --distractors lights
clip day-throw-box-cloud    106 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --time-of-day day   --object-kind box    --motion throw --distance-m 45 --distractors cloud_shadow,exposure,bird
# Named hard cases.
clip tiny-720p              107 --duration-s 8 --bitrate-kbps 1000 --preset tiny-720p
clip above-top-edge         108 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --preset above-top-edge
clip behind-tree            109 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --preset behind-tree
clip heavy-rain-720p        110 --resolution 720p  --duration-s 8 --bitrate-kbps 1200 --preset heavy-rain
# Distractors only: nothing may be reported here.
clip birds-only             111 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --preset birds-only
clip leaves-only            112 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --preset leaves-only
clip night-insects          113 --resolution 1080p --duration-s 8 --bitrate-kbps 1500 --preset night-insects

# The table of clips and their truth.
if command -v python3 > /dev/null; then
  python3 scripts/sample_clips_readme.py "$out"
fi
