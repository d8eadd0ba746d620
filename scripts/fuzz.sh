#!/usr/bin/env bash
# Coverage-guided fuzzing of aam with libFuzzer (cargo-fuzz): every target of
# crates/aam-fuzz (entry points in fuzz/fuzz_targets/) runs for SECONDS, starting from
# corpora cut from the real datasets in ../shared/data and the shipped model.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s, every target)
#
# Each finding (an input that panics, aborts, leaks past -rss_limit_mb or hangs past
# -timeout) is copied to fuzz/regressions/<target>/, where `cargo test -p aam-fuzz`
# replays it from then on, and the script fails. The working corpus grows in
# target/fuzz-corpus/<target> (AAM_FUZZ_CORPUS) across runs.
#
# Needs cargo-fuzz (installed from crates.io when missing) and a nightly toolchain for
# the sanitizer flags; without one, stable rustc is told to accept them
# (RUSTC_BOOTSTRAP=1). AAM_FUZZ_SANITIZER: address (default) or none.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
[ $# -gt 0 ] && shift
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz=(cargo fuzz)
fi
sanitizer="${AAM_FUZZ_SANITIZER:-address}"
corpus="${AAM_FUZZ_CORPUS:-target/fuzz-corpus}"

# Seeds from the real datasets and the shipped model (see crates/aam-fuzz/src/seeds.rs).
cargo run --locked --quiet -p aam-fuzz --bin aam-fuzz-seeds -- "$corpus/seeds"
"${fuzz[@]}" build --fuzz-dir fuzz --sanitizer "$sanitizer"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$corpus/$t" "target/fuzz-artifacts/$t"
  # Findings of earlier runs were copied to fuzz/regressions/ then; count this run's only.
  rm -f "target/fuzz-artifacts/$t"/{crash,oom,timeout,leak}-*
  echo "== $t: ${seconds} s"
  if ! "${fuzz[@]}" run --fuzz-dir fuzz --sanitizer "$sanitizer" "$t" "$corpus/$t" "$corpus/seeds/$t" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="target/fuzz-artifacts/$t/" 2>&1 | tee "target/fuzz-artifacts/$t/log.txt" | grep -E '^(#[0-9]+ *DONE|stat::|==[0-9]+==|SUMMARY|thread .* panicked|Done)' ; then
    :
  fi
  # Every kind of finding libFuzzer writes (`ls` of the four patterns together failed
  # whenever one kind was absent, and reported an out-of-memory finding as none).
  shopt -s nullglob
  found=("target/fuzz-artifacts/$t"/{crash,oom,timeout,leak}-*)
  shopt -u nullglob
  if [ ${#found[@]} -gt 0 ]; then
    mkdir -p "fuzz/regressions/$t"
    cp "${found[@]}" "fuzz/regressions/$t/"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "findings in: ${failed[*]} (copied to fuzz/regressions/; logs in target/fuzz-artifacts/<target>/log.txt)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets × ${seconds} s, no finding"
