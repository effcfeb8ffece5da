#!/usr/bin/env bash
# fallwatch set-up: everything a fresh Debian 12 machine needs to build, run and test fallwatch.
#
# Idempotent: a second run only checks. Downloads come from Debian's package archive and PyPI only
# (the ONNX Runtime shared library is taken out of the pinned `onnxruntime` wheel); nothing else.
#
#   scripts/setup.sh            build and run dependencies
#   scripts/setup.sh --test     plus what the test suite needs (GStreamer RTSP server for the RTSP test)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORT_VERSION=1.31.1
# sha256 of onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl on PyPI
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ORT_DIR="$here/third_party/onnxruntime"

with_test=0
for arg in "$@"; do
  case "$arg" in
    --test) with_test=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

# --- Debian packages -------------------------------------------------------------------------
pkgs=(pkg-config libclang-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
      libswresample-dev libavfilter-dev libavdevice-dev ffmpeg unzip)
if [ "$with_test" = 1 ]; then
  pkgs+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
         gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- ONNX Runtime shared library, from the PyPI wheel ---------------------------------------
lib="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$lib" ]; then
  log "fetching onnxruntime $ORT_VERSION from PyPI"
  py=python3
  if ! "$py" -m pip --version >/dev/null 2>&1; then
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    py=/usr/bin/python3
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$py" -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
    --python-version 3.11 --implementation cp "onnxruntime==$ORT_VERSION" -d "$tmp"
  wheel=$(ls "$tmp"/onnxruntime-"$ORT_VERSION"-*.whl)
  echo "$ORT_WHEEL_SHA256  $wheel" | sha256sum -c --quiet - \
    || { echo "setup.sh: onnxruntime wheel checksum mismatch" >&2; exit 1; }
  mkdir -p "$ORT_DIR"
  unzip -q -o -j "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp/x"
  mv "$tmp/x/libonnxruntime.so.$ORT_VERSION" "$lib.part"
  mv "$lib.part" "$lib"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
log "ready (ONNX Runtime at $ORT_DIR/libonnxruntime.so)"
