#!/usr/bin/env bash
# The demo: set up (idempotent), build, and run `fallwatch analyze` on every bundled sample clip
# with its calibration. Events go to out/<clip>/<event-id>/ (event.json, clip.mp4, snapshot.jpg);
# their JSON lines are printed as they are found.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
bin=target/release/fallwatch
out=${1:-out}
mkdir -p "$out"
total=0
for clip in sample_clips/*.mp4; do
  name=$(basename "$clip" .mp4)
  echo "== $name" >&2
  n=$("$bin" -q analyze "$clip" --calib "sample_clips/$name.calib.toml" --out "$out/$name" \
        | tee "$out/$name.jsonl" | wc -l)
  cat "$out/$name.jsonl"
  total=$((total + n))
done
echo "$total events; event directories under $out/<clip>/, one JSON line each in $out/<clip>.jsonl" >&2
