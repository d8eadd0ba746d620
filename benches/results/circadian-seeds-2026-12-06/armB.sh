#!/bin/bash
# armB.sh RUN_DIR DATASET TASK FLAGS… — re-runs each fold's fine-tuning of a finished
# benchmark with extra flags (same encoder, split, seed), exports its last epoch and
# scores it on the fold's held-out samples, as the benchmark does.
set -e
A=/root/bench/aam-v12; R=$1; DS=$2; T=$3; shift 3; X="$*"; tag=$(echo "$X" | tr -d ' -' )
D=/work/shared/data/$DS
for B in $R/$DS/fold-*/$T; do
  f=$(basename $(dirname $B)); O=$R/arm-$tag/$f; mkdir -p $O
  [ -f $O/evaluate/metrics.tsv ] && continue
  cmd=$(grep "^aam train .*--output $B/train " $R/commands.sh | head -1)
  cmd=${cmd#aam }; cmd=${cmd//"--output $B/train"/"--output $O/train"}; cmd=${cmd% --overwrite}; cmd=${cmd% --resume}
  (cd /work/main && $A $cmd $X --overwrite > $O/train.log 2>&1)
  (cd /work/main && $A export --last --checkpoint $O/train --output $O/export --overwrite > $O/export.log 2>&1)
  (cd /work/main && $A evaluate --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $T --split $B/train/split.tsv --output $O/evaluate --seed 42 --overwrite --model $O/export > $O/evaluate.log 2>&1)
  cmp <(cut -f1 $O/train/split.tsv) <(cut -f1 $B/train/split.tsv)
  echo "$f done"
done
