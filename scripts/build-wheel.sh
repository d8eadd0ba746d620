#!/usr/bin/env bash
# Builds the Python wheel with libaam inside: bash scripts/build-wheel.sh LIBAAM OUT_DIR
#   LIBAAM   the libaam.so that cargo built (e.g. target/release/libaam.so after
#            `cargo build --release -p aam-capi`; add `--features ort` for ONNX Runtime)
#   OUT_DIR  where aam-<version>-py3-none-<platform>.whl is written
# `pip install OUT_DIR/aam-*.whl` then works in any venv of this platform with no
# environment variable. The library is stripped of its debug information on the way
# (binutils' strip, when there is one).
set -euo pipefail
if [ $# -ne 2 ] || [ ! -f "$1" ]; then
  echo "usage: bash scripts/build-wheel.sh LIBAAM OUT_DIR (LIBAAM: the libaam.so cargo built)" >&2
  exit 2
fi
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
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$stage/dist" "$stage"
wheel="$(ls "$stage"/dist/aam-*-py3-none-*.whl)"
if [ -e "$out/$(basename "$wheel")" ]; then
  echo "$out/$(basename "$wheel") already exists; remove it or choose another OUT_DIR" >&2
  exit 1
fi
cp "$wheel" "$out/"
echo "$out/$(basename "$wheel")"
