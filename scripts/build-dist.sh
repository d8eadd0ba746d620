#!/usr/bin/env bash
# Builds aam and lays out an installation under PREFIX, then checks it:
#
#   PREFIX/bin/aam                      the CLI (`aam serve` is what the Docker image runs)
#   PREFIX/lib/libaam.so, libaam.a      the C ABI; PREFIX/include/aam.h its header
#   PREFIX/share/aam/models/…           the shipped model (export directory)
#   PREFIX/share/aam/example/…          the example table and metadata, with their licence
#
#   bash scripts/build-dist.sh [--release] [--features F] PREFIX
#
# The Dockerfile runs exactly this (with --release); the test command runs it with the
# test build (no --release), so the steps the images depend on are tested on every CI run.
# The checks: the installed binary predicts the example table as recorded in the shipped
# model's predictions.tsv, and `aam serve` answers its readiness probe, then stops on
# SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=debug
cargo_args=(--locked)
# The test build also names the test targets: with them, cargo resolves the same features as
# `cargo test` (dev-dependencies included) and reuses its artifacts instead of rebuilding
# most dependencies with a narrower feature set. A release build leaves them out.
targets=(--lib --bins --tests)
while [ $# -gt 1 ]; do
  case "$1" in
    --release) profile=release; cargo_args+=(--release); targets=(); shift ;;
    --features) cargo_args+=(--features "$2"); shift 2 ;;
    *) echo "unknown option $1; usage: build-dist.sh [--release] [--features F] PREFIX" >&2; exit 2 ;;
  esac
done
prefix="${1:?usage: build-dist.sh [--release] [--features F] PREFIX}"

# The whole workspace, as the test command builds it (the same features, so nothing rebuilds).
cargo build --workspace "${cargo_args[@]}" "${targets[@]}"
target="${CARGO_TARGET_DIR:-target}/$profile"

rm -rf "$prefix"
mkdir -p "$prefix"/{bin,lib,include,share/aam/models,share/aam/example}
prefix="$(cd "$prefix" && pwd)"
install -m 755 "$target/aam" "$prefix/bin/aam"
install -m 755 "$target/libaam.so" "$prefix/lib/libaam.so"
install -m 644 "$target/libaam.a" "$prefix/lib/libaam.a"
install -m 644 include/aam.h "$prefix/include/aam.h"
cp -r models/circadian-exposure "$prefix/share/aam/models/"
cp data/circadian-ihc/{table.biom,metadata.tsv,LICENSE.md} "$prefix/share/aam/example/"

# The installed binary, outside the source tree, predicts as recorded.
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
if ! (cd "$out" && "$prefix/bin/aam" predict --model "$prefix/share/aam/models/circadian-exposure" \
  --table "$prefix/share/aam/example/table.biom" > predictions.tsv 2> predict.log); then
  echo "the installed aam predict failed:" >&2
  cat "$out/predict.log" >&2
  exit 1
fi
# Same rows and labels; probabilities within 1e-4 of the recorded ones (another engine).
recorded=models/circadian-exposure/predictions.tsv
if [ "$(wc -l < "$out/predictions.tsv")" != "$(wc -l < "$recorded")" ] || ! awk -F'\t' '
  NR == FNR { want[FNR] = $0; next }
  {
    n = split(want[FNR], w, "\t")
    if (n != NF) { print "line " FNR ": " NF " columns, recorded " n > "/dev/stderr"; exit 1 }
    for (i = 1; i <= NF; i++) {
      if ($i == w[i]) continue
      d = $i - w[i]
      if ($i ~ /^[-0-9.eE+]+$/ && w[i] ~ /^[-0-9.eE+]+$/ && d < 1e-4 && d > -1e-4) continue
      print "line " FNR ": " $0 " | recorded: " want[FNR] > "/dev/stderr"; exit 1
    }
  }' "$recorded" "$out/predictions.tsv"; then
  echo "the installed aam predicts otherwise than $recorded" >&2
  exit 1
fi

# `aam serve` on a free port: the image's healthcheck probe, then SIGTERM.
"$prefix/bin/aam" serve --port 0 2> "$out/serve.log" &
server=$!
port=""
for _ in $(seq 1 300); do
  port="$(sed -n 's|.*on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$out/serve.log" | head -1)"
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "aam serve did not start:" >&2; cat "$out/serve.log" >&2; kill "$server"; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
status="$(head -1 <&3)"
exec 3<&-
kill -TERM "$server"
wait "$server"
case "$status" in
  *" 200 "*) ;;
  *) echo "readiness probe answered: $status" >&2; exit 1 ;;
esac
echo "dist: $prefix ($profile build) predicts as recorded; aam serve ready on port $port and stopped on SIGTERM"
