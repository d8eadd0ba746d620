#!/bin/bash
# Training throughput of 1 process against a group of 2 (`mpirun -np 2`, OpenMPI over shared
# memory on this one machine): `aam pretrain` on ibd-2538, two epochs, the second timed
# (`samples_per_second` of metrics.jsonl). Needs `target/debug/aam` built with
# `--features aam-cli/mpi` and ../shared/data. Usage: bash benches/collective-engines/throughput.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
data=../shared/data/ibd-2538
args=(pretrain --table "$data/table.biom" --unifrac-matrix "$data/unifrac_unweighted.npy"
  --unifrac-ids "$data/unifrac_ids.txt" --embedding-dim 64 --attention-heads 4
  --attention-layers 2 --token-limit 128 --max-bp 100 --batch-size 16 --epochs 2 --seed 1
  --quiet --dropout=0 --validation-fraction 0)
out=$(mktemp -d)
report() {
  python3 -c "
import json, sys
last = [json.loads(l) for l in open(sys.argv[1])][-1]
print('%-28s %6.1f samples/s, peak RSS %.0f MiB (rank 0)' % (sys.argv[2], last['samples_per_second'], last['peak_rss_mib']))
" "$1/metrics.jsonl" "$2"
}
target/debug/aam "${args[@]}" --output "$out/one"
report "$out/one" "1 process, 2 threads"
mpirun -np 2 --oversubscribe --bind-to none target/debug/aam "${args[@]}" --output "$out/two"
report "$out/two" "2 processes, 2 threads each"
mpirun -np 2 --oversubscribe --bind-to none -x RAYON_NUM_THREADS=1 target/debug/aam "${args[@]}" --output "$out/two1"
report "$out/two1" "2 processes, 1 thread each"
rm -rf "$out"
