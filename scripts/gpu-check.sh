#!/usr/bin/env bash
# The GPU check of the training performance options (issue 7), for a machine with an NVIDIA
# GPU: builds aam with the `cuda` feature, then runs one short pretraining epoch on ibd-2538
# per variant (plain; without kernel fusion, and the speed-up fusion gives; gradient
# checkpointing; fused attention, which in Burn 0.21 changes the
# validation pass only: training steps use unfused ops) and prints samples/s, the data-wait
# share, peak host RSS and peak GPU memory (nvidia-smi, polled every 0.2 s); then bf16 and fp16
# mixed precision, all of them together, --auto-batch-size on GPU memory, and data parallel over two GPUs when there are two.
#
# Usage: bash scripts/gpu-check.sh [DATA_DIR] (default ../shared/data/ibd-2538). Output: one
# line per variant, plus each run's metrics.jsonl under $OUT (or a temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data/ibd-2538}"
out="${OUT:-$(mktemp -d)}"
command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this check needs an NVIDIA GPU and driver" >&2; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# Dependencies at opt-level 3 (the workspace's one profile), as the tests use.
cargo build -p aam-cli --features cuda --locked
aam=target/debug/aam

peak_gpu_mib() { # polls the GPU memory in use until the file $1 exists, prints the maximum
  local max=0 used
  while [ ! -e "$1" ]; do
    used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "${used:-0}" -gt "$max" ] && max=$used
    sleep 0.2
  done
  echo "$max"
}

run() { # NAME FLAGS...
  local name=$1; shift
  local dir="$out/$name"
  rm -rf "$dir" "$dir.done"
  peak_gpu_mib "$dir.done" > "$dir.gpu" &
  local poller=$!
  local started=$SECONDS
  timeout 150 "$aam" pretrain --device cuda --table "$data/table.biom" \
    --unifrac-matrix "$data/unifrac_unweighted.h5" --metadata "$data/metadata.tsv" \
    --group-column host_subject_id --output "$dir" --embedding-dim 128 --attention-layers 2 \
    --attention-heads 4 --max-bp 150 --token-limit 256 --token-limit-policy abundance \
    --dropout 0 --epochs 1 --batch-size 16 --quiet "$@" || echo "$name: the run failed" >&2
  touch "$dir.done"; wait "$poller"
  python3 - "$dir/metrics.jsonl" "$name" "$(cat "$dir.gpu")" "$((SECONDS - started))" <<'EOF'
import json, sys
path, name, gpu, secs = sys.argv[1:]
try:
    r = json.loads(open(path).readline())
except OSError:
    print(f"{name}: no metrics ({secs} s)"); sys.exit(0)
print(f"{name}: {r['samples_per_second']:.1f} samples/s, data wait {100 * r['data_wait_share']:.1f}%, "
      f"peak RSS {r.get('peak_rss_mib') or 0:.0f} MiB, peak GPU memory {gpu} MiB, "
      f"train loss {r['train']['total']:.4f} ({secs} s)")
EOF
}

run plain
# Burn's kernel fusion is on by default on the GPU; the same epoch without it.
run no-kernel-fusion --no-kernel-fusion
python3 - "$out" <<'EOF'
import json, sys
def rate(name):
    try:
        return json.loads(open(f"{sys.argv[1]}/{name}/metrics.jsonl").readline())["samples_per_second"]
    except (OSError, ValueError, KeyError):
        return None
fused, unfused = rate("plain"), rate("no-kernel-fusion")
if fused and unfused:
    print(f"kernel fusion: {fused / unfused:.2f}x the samples/s without it")
EOF
run checkpointing --gradient-checkpointing
run fused-validation --attention fused
run bf16 --mixed-precision bf16
run fp16 --mixed-precision fp16
run bf16-checkpointing-fused --mixed-precision bf16 --gradient-checkpointing --attention fused
# The batch size chosen against the GPU's memory (the driver's report, through cudarc).
run auto-batch-size --auto-batch-size --target-effective-batch-size 64
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
  run two-gpus --devices 0,1
  run two-gpus-bf16 --devices 0,1 --mixed-precision bf16
fi
echo "metrics under $out"
