#!/usr/bin/env bash
# The accuracy figures of the README: generate the held-out synthetic evaluation set (seeds never
# used while tuning; deterministic, so everyone gets the same clips) and score fallwatch on it,
# with the object detector on and off.
#
#   scripts/eval.sh [SET_DIR]      default SET_DIR: target/evalset
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet
bin=target/release/fallwatch
set_dir=${1:-target/evalset}
seeds=1000..1042
if [ ! -f "$set_dir/.complete-$seeds" ]; then
  echo "generating the evaluation set ($seeds) into $set_dir (about 15 minutes on 2 cores)" >&2
  mkdir -p "$set_dir"
  "$bin" -q synth --set eval --seeds "$seeds" --out "$set_dir" > "$set_dir/synth.jsonl"
  touch "$set_dir/.complete-$seeds"
fi
echo "== detector on" >&2
"$bin" -q eval "$set_dir" --json "$set_dir/eval-detect.json"
echo "== detector off (physics alone)" >&2
"$bin" -q eval "$set_dir" --no-detect --json "$set_dir/eval-physics.json"
