#!/bin/bash
# The exploration runs of docs/benchmark/ablation.md ("What made it learn"), as run on
# 2026-12-05: one recipe, grouped folds, the last epoch exported and scored.
#
#   explore_recipe.sh NAME DATASET TARGET KIND MAX_BP "PRETRAIN FLAGS or -" "TRAIN FLAGS"
#
# FOLDS: split files (aam's split.tsv format) to run, e.g. the benchmark's
# runs/cv5/moving-pictures/folds/fold-*.tsv, or exploration folds written by
#   python: StratifiedGroupKFold(3, shuffle=True, random_state=7) over host_subject_id.
# PREALL=1 pretrains on every sample (--validation-fraction 0); BASELINE=1 also runs the
# forest on each fold; SEED sets --seed (42). AAM: the aam binary (default: aam on PATH).
# Example (row 3 of the table):
#   S="--embedding-dim 32 --attention-heads 2 --attention-layers 1 --token-limit 64 --batch-size 8 --lr 1e-3"
#   FOLDS="folds/circadian-ihc-x[123].tsv" BASELINE=1 ./explore_recipe.sh k6s circadian-ihc exposure_type categorical 90 - \
#     "$S --epochs 30 --token-limit-policy abundance --count-embedding add --abundance-pooling --kmer-size 6"
set -e
NAME=$1 DS=$2 T=$3 KIND=$4 BP=$5 PRE=$6 TR=$7
AAM=${AAM:-aam}
D=${DATA:-../shared/data}/$DS
OUT=runs/explore/$NAME/$DS-$T
mkdir -p $OUT
COMMON="--table $D/table.biom --unifrac-matrix $D/unifrac_unweighted.npy --unifrac-ids $D/unifrac_ids.txt --metadata $D/metadata.tsv --max-bp $BP --seed ${SEED:-42} --quiet --overwrite"
for F in $FOLDS; do
  k=$(basename $F .tsv)
  ENC=""
  if [ "$PRE" != "-" ]; then
    if [ -n "$PREALL" ]; then PSPLIT="--validation-fraction 0"; else PSPLIT="--split $F"; fi
    $AAM pretrain $PSPLIT $COMMON --output $OUT/$k/pretrain $PRE > $OUT/$k.pretrain.log 2>&1
    ENC="--pretrained-encoder $OUT/$k/pretrain"
  fi
  $AAM train --metadata-column $T --target-type $KIND --split $F $COMMON --output $OUT/$k/train $ENC $TR > $OUT/$k.train.log 2>&1
  $AAM export --last --checkpoint $OUT/$k/train --output $OUT/$k/export --overwrite > /dev/null 2>&1
  $AAM evaluate --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $T --split $F --output $OUT/$k/evaluate --seed 42 --overwrite --model $OUT/$k/export > $OUT/$k.eval.log 2>&1
  if [ -n "$BASELINE" ] && [ ! -f runs/explore/rf/$DS-$T/$k/metrics.tsv ]; then $AAM baseline --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $T --split $F --output runs/explore/rf/$DS-$T/$k --seed 42 --overwrite --target-type $KIND > /dev/null 2>&1; fi
  RF=""; [ -f runs/explore/rf/$DS-$T/$k/metrics.tsv ] && RF="| rf $(awk 'NR>1{printf "%s=%.3f ", $1, $2}' runs/explore/rf/$DS-$T/$k/metrics.tsv)"
  echo "$NAME $DS $T $k $(awk 'NR>1{printf "%s=%.3f ", $1, $2}' $OUT/$k/evaluate/metrics.tsv) $RF"
done
