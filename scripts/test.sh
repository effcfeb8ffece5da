#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up (idempotent), formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
