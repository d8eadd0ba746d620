#!/usr/bin/env bash
# Builds the C ABI (libaam.so / libaam.a), compiles the C example and the C test program with
# -Wall -Wextra -Werror and runs them on the shipped model; then the C++ example and the
# Python binding's tests. Called by scripts/test.sh after the Rust tests.
# The C example also runs under valgrind (memcheck) on the shipped model and a 2-sample table:
# no leak, no invalid access (capi_test checks that every handle is freed: aam_live_handles).
set -euo pipefail
cd "$(dirname "$0")/.."

# Where cargo builds: set by scripts/test.sh, else CARGO_TARGET_DIR or ./target.
target="${AAM_TARGET_DIR:-${CARGO_TARGET_DIR:-target}}"
mkdir -p "$target" && target="$(cd "$target" && pwd)"

# Same features and targets as `cargo test` (scripts/test.sh), so nothing is rebuilt: a plain
# `cargo build` leaves out the dev-dependencies, which changes the feature set that cargo
# resolves for shared dependencies (serde, tokio, …) and rebuilt most of them (12–17 min).
# shellcheck disable=SC2086
cargo build --workspace --locked --lib --bins --tests ${AAM_CARGO_FEATURES:-}
CFLAGS="-std=c11 -Wall -Wextra -Werror -O1 -g -I include"
cc $CFLAGS bindings/c/example.c -L "$target/debug" -laam -o "$target"/aam_example
cc $CFLAGS -pthread tests/capi/capi_test.c -L "$target/debug" -laam -o "$target"/capi_test
cc $CFLAGS -pthread tests/capi/soak.c -L "$target/debug" -laam -o "$target"/soak
export LD_LIBRARY_PATH="$target/debug${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
model=models/circadian-exposure
table=data/circadian-ihc/table.biom

# Every binding's labels and probabilities must equal `aam predict`'s on the same model and
# table (within the precision each prints: 4 decimals in C, 6 significant digits in C++).
rm -f "$target"/aam_predict.tsv "$target"/aam_predict_tiny.tsv
"$target"/debug/aam predict --model "$model" --table "$table" --output "$target"/aam_predict.tsv
"$target"/debug/aam predict --model "$model" --table tests/capi/tiny_table.tsv \
  --output "$target"/aam_predict_tiny.tsv

"$target"/aam_example "$model" "$table" > "$target"/aam_example.out
head -n 3 "$target"/aam_example.out
python3 scripts/compare_predictions.py "$target"/aam_predict.tsv "$target"/aam_example.out \
  --skip 1 --tolerance 6e-5  # after the version line

# Memcheck: definite/indirect leaks and every memory error fail the run. tests/capi/valgrind.supp
# says why two reports inside tract's graph optimisation are suppressed.
if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq valgrind
fi
valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --suppressions=tests/capi/valgrind.supp \
  "$target"/aam_example "$model" tests/capi/tiny_table.tsv > "$target"/aam_example_valgrind.out
python3 scripts/compare_predictions.py "$target"/aam_predict_tiny.tsv \
  "$target"/aam_example_valgrind.out --skip 1 --tolerance 6e-5
echo "valgrind: C example clean"

# 8 threads × 1,000 predictions each must equal the single-thread result.
"$target"/capi_test "$model" "$table" 1000

# FFI soak: 8 threads × 10,000 calls mixing valid and invalid inputs (about 1.5 min), resident
# memory within 5% of what it was after the warm-up; a short soak under valgrind (about 1 min).
"$target"/soak "$model" 10000
valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
  --show-leak-kinds=definite,indirect --suppressions=tests/capi/valgrind.supp \
  "$target"/soak "$model" 10 2
echo "valgrind: soak clean"

# The C++ RAII binding and its example.
c++ -std=c++17 -Wall -Wextra -Werror -O1 -I include -I bindings/cpp bindings/cpp/example.cpp \
  -L "$target/debug" -laam -o "$target"/aam_cpp_example
"$target"/aam_cpp_example "$model" "$table" > "$target"/aam_cpp_example.out
python3 scripts/compare_predictions.py "$target"/aam_predict.tsv "$target"/aam_cpp_example.out \
  --skip 1 --tolerance 2e-6  # after the header

# The Python binding as users install it: the wheel with libaam.so inside
# (scripts/build-wheel.sh), installed with pip into a fresh venv and run there with no
# AAM_LIBRARY (numpy and pandas come from the package index, or pip's cache); then into
# .venv, whose biom-format the biom.Table tests need, for the tests and the notebooks.
rm -rf "$target/tmp/wheel"
bash scripts/build-wheel.sh "$target/debug/libaam.so" "$target/tmp/wheel"
wheel="$(ls "$target"/tmp/wheel/aam-*.whl)"
rm -rf "$target/tmp/wheel-venv"
python3 -m venv "$target/tmp/wheel-venv"
"$target/tmp/wheel-venv/bin/pip" install --quiet --disable-pip-version-check "$wheel" pytest==9.2.0
env -u AAM_LIBRARY AAM_CLI="$target/debug/aam" \
  "$target/tmp/wheel-venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests
.venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
env -u AAM_LIBRARY AAM_CLI="$target/debug/aam" .venv/bin/python -m pytest -q bindings/python/tests
