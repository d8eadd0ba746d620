#!/usr/bin/env bash
# The project's single test command (README, .ci/run). Installs what the tests need on a
# fresh Debian machine, then runs the whole workspace test suite in the one build profile
# that the main job also uses (dependencies optimised, our crates incremental).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
# gcc/g++ build the few C parts of dependencies; present on the CI image, installed if not.
if ! command -v cc >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq build-essential
fi
if [ ! -d ../shared/data ]; then
  echo "warning: ../shared/data not found; the tests that read the shared datasets will fail" >&2
fi

# Python `onnx` (checker) and `onnxruntime` check the exported graphs, scikit-bio the
# distances, tritonclient's model-config schema the Triton repository, `tensorboard` and
# `mlflow` the experiment tracking: a local venv.
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3 python3-venv
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnx, onnxruntime, numpy, pytest, skbio, tritonclient, nbclient, ipykernel, matplotlib, tensorboard, mlflow" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi

# Training across processes (cargo feature `mpi`: `mpirun -np 2 aam pretrain …`, tested by
# crates/aam-cli/tests/mpi_group.rs) links the system's OpenMPI, and its bindings are
# generated with libclang. Installed when missing; without them the feature is left out,
# loudly, rather than failing everything else.
mpi_packages="libopenmpi-dev openmpi-bin libclang1-14 libclang-common-14-dev"
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1 \
  || ! compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends $mpi_packages \
    || echo "warning: could not install $mpi_packages: the mpi feature is not built or tested" >&2
fi
mpi_feature=""
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then
  mpi_feature=",aam-cli/mpi"
else
  echo "warning: OpenMPI (mpicc, mpirun) not found: the mpi feature is not built or tested" >&2
fi

# Where cargo builds (CARGO_TARGET_DIR if set), as an absolute path for the steps below.
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target" && target="$(cd "$target" && pwd)"
export AAM_TARGET_DIR="$target"

# The ONNX Runtime backend (cargo feature `ort`) is built and tested too; its library is the
# PyPI wheel's (installed above), loaded at run time through ORT_DYLIB_PATH.
export AAM_CARGO_FEATURES="--features aam-cli/ort,aam-capi/ort$mpi_feature"
ORT_DYLIB_PATH="$(.venv/bin/python -c 'import glob, os, onnxruntime as o; print(sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), "capi", "libonnxruntime.so.*")))[-1])')"
export ORT_DYLIB_PATH AAM_REQUIRE_ORT=1

# shellcheck disable=SC2086
cargo test --workspace --locked $AAM_CARGO_FEATURES "$@"

# The criterion benchmarks (benches/ of aam-data and aam-runtime) compile and run each
# measurement once in test mode; speed figures come from `cargo bench` and `aam bench`.
# shellcheck disable=SC2086
cargo test --workspace --locked $AAM_CARGO_FEATURES --benches

# The parity tests wrote each exported graph with its cases; check them with the ONNX tools.
# The shipped export's split graphs (asv_encoder.onnx + sample_model.onnx) are checked too.
.venv/bin/python scripts/check_onnx.py "$target/tmp/onnx-fixtures" --split models/circadian-exposure

# `aam export --triton`: the model repository against Triton's config schema and the graph.
"$target/debug/aam" export --checkpoint models/circadian-exposure --output "$target/tmp/triton-export" \
  --triton "$target/tmp/triton" --triton-tensorrt --triton-fp16 --overwrite
.venv/bin/python scripts/check_triton.py "$target/tmp/triton" aam

# `aam distance` (the --distance targets) equals scikit-bio on every shared dataset.
.venv/bin/python scripts/check_distances.py "$target/debug/aam" ../shared/data "$target/tmp/distances"

# Experiment tracking: `aam train --tensorboard --mlflow-uri` against a real MLflow server
# started on loopback, read back with the `tensorboard` and `mlflow` packages.
.venv/bin/python scripts/check_tracking.py "$target/debug/aam" "$target/tmp/tracking"

# The user guide (mdBook, docs/guide): every command line it shows is checked against the
# CLI's --help, then the book is built into the target directory. mdbook is installed from
# crates.io into the target directory when it is not on PATH (about 2 min, once).
mdbook="$(command -v mdbook || true)"
if [ -z "$mdbook" ]; then
  mdbook="$target/tools/bin/mdbook"
  if [ ! -x "$mdbook" ]; then
    cargo install mdbook --version 0.5.4 --locked --no-default-features --features search \
      --root "$target/tools" --quiet
  fi
fi
.venv/bin/python scripts/check_guide.py --self-test
.venv/bin/python scripts/check_guide.py "$target/debug/aam" docs/guide/src
"$mdbook" build docs/guide --dest-dir "$target/guide"

# The C ABI (its header is checked by a Rust test): C example, C tests, C++ and Python bindings.
bash scripts/test_capi.sh

# The four tutorial notebooks (notebooks/) over the wheel that test_capi.sh just installed
# (its own libaam.so, no AAM_LIBRARY), executed top to bottom (their cells assert what they
# show); executed copies and training runs go to the target directory.
env -u AAM_LIBRARY AAM_CLI="$target/debug/aam" \
  .venv/bin/python scripts/run_notebooks.py "$target/tmp/notebooks"

# What the Docker images run: the installation layout under a prefix, its predictions and
# `aam serve`'s readiness probe and SIGTERM (the images themselves are not built here).
# The same features as the test build (so nothing rebuilds); the Docker image builds without mpi.
bash scripts/build-dist.sh --features "aam-cli/ort,aam-capi/ort$mpi_feature" "$target/tmp/dist"

# The shipped model's graph imported into Burn by burn-import's code generation: its own
# workspace (protobuf ^3.7 vs onnx-protobuf's 3.4 pin), sharing the target directory.
(cd tests/burn-import-roundtrip && CARGO_TARGET_DIR="$target" cargo test --locked)

# GPU code is behind the `cuda` feature and is not run here (no GPU); it must still compile,
# and so must TLS for MLflow servers (`mlflow-tls`).
# cubecl/cudarc load CUDA at run time (NVRTC, dynamic loading), so no CUDA toolkit is needed.
# The API documentation is built with the same features (so it covers the GPU items and
# reuses this check's dependency metadata), every warning an error: broken links, bad
# code blocks. Missing doc comments already fail the build above (`deny(missing_docs)`).
all_features="--features aam-cli/cuda,aam-cli/ort,aam-cli/mlflow-tls,aam-capi/ort$mpi_feature"
# shellcheck disable=SC2086
cargo check --workspace --locked $all_features
# shellcheck disable=SC2086
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked $all_features

# Disk use of the build, for the CI log (a full run once filled the CI machine's disk).
du -sh "$target" || true
