#!/usr/bin/env bash
# Builds the Python wheel with libaam inside: bash scripts/build-wheel.sh LIBAAM OUT_DIR
#   LIBAAM   the libaam.so that cargo built (e.g. target/release/libaam.so after
#            `cargo build --release -p aam-capi`; add `--features ort` for ONNX Runtime)
#   OUT_DIR  where aam-<version>-py3-none-<platform>.whl is written
# `pip install OUT_DIR/aam-*.whl` then works in any venv of this platform with no
# environment variable. The library is stripped of its debug information on the way
# (binutils' strip, when there is one).
set -euo pipefail
lib="$(realpath "$1")"
out="$(mkdir -p "$2" && realpath "$2")"
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -r "$here/bindings/python/." "$stage/"
rm -rf "$stage/build" "$stage"/src/*.egg-info "$stage/tests"
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug -o "$stage/src/aam/libaam.so" "$lib"
else
  cp "$lib" "$stage/src/aam/libaam.so"
fi
rm -f "$out"/aam-*.whl
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out" "$stage"
ls "$out"/aam-*-py3-none-*.whl
