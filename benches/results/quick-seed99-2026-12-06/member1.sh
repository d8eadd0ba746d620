#!/bin/bash
# member1.sh RUN_DIR DATASET TASK — scores member 1 of each fold's ensemble alone (= one
# fine-tuning seed), on the same split, as the benchmark scores the ensemble; prints the
# ensemble's, member 1's and the forest's headline metrics per fold.
set -e
A=/root/bench/aam-v10; R=$1/$2; D=/work/shared/data/$2; T=$3
for B in $R/fold-*/$T; do
  [ -f $B/evaluate.done ] || continue
  f=$(basename $(dirname $B)); O=$1/member1/$2/$f/$T; mkdir -p $O
  [ -f $O/evaluate/metrics.tsv ] || {
    $A export --last --checkpoint $B/train --output $O/export --overwrite > $O/export.log 2>&1
    $A evaluate --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $T --split $B/train/split.tsv --output $O/evaluate --seed 99 --overwrite --model $O/export > $O/evaluate.log 2>&1; }
  m() { awk '$1=="macro_f1"||$1=="roc_auc"||$1=="r2"||$1=="accuracy"{printf "%s=%.3f ", $1, $2}' $1; }
  echo "$f member-1: $(m $O/evaluate/metrics.tsv)| ensemble: $(m $B/evaluate/metrics.tsv)| forest: $(m $B/baseline/metrics.tsv)"
done
