#!/usr/bin/env bash
# The tuning figures of the README: generate the tuning set (seeds 100..189: 90 clips, 60 objects;
# never the held-out seeds of scripts/eval.sh; deterministic, so everyone gets the same clips) and
# run the `diagnose` example on it. It says, per object, at which stage it was lost (motion,
# tracker, physics and why) and, per false alarm, when, where and with what score; the last line
# totals them. Decide changes on this set; report the held-out set.
#
#   scripts/tune.sh [SET_DIR] [DIAGNOSE_ARGS...]   default SET_DIR: target/tuneset
#   ANALYSIS_TOML=$'[motion]\nk_sigma = 4.0' scripts/tune.sh   # try other analysis settings
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet --bin fallwatch --example diagnose
set_dir=${1:-target/tuneset}
shift || true
seeds=100..190
if [ ! -f "$set_dir/.complete-$seeds" ]; then
  echo "generating the tuning set ($seeds) into $set_dir (about 11 minutes on 2 cores)" >&2
  mkdir -p "$set_dir"
  target/release/fallwatch -q synth --set eval --seeds "$seeds" --out "$set_dir" \
    > "$set_dir/synth.jsonl"
  touch "$set_dir/.complete-$seeds"
fi
target/release/examples/diagnose "$set_dir" "$@" | tee "$set_dir/diagnose.txt" | grep '^TOTAL'
echo "per object and false alarm: $set_dir/diagnose.txt" >&2
