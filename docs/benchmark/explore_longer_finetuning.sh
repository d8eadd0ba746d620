#!/bin/bash
# usage: SEED=7 bash docs/benchmark/explore_longer_finetuning.sh moving-pictures body-site subject 120
#        SEED=5 bash docs/benchmark/explore_longer_finetuning.sh circadian-ihc exposure_type host_subject_id 90
# Exploration on splits other than the benchmark's seed-42 split: does a longer fine-tuning
# past the plateau, with counts and a frozen cached encoder, approach the forest?
set -e
A=${AAM:-target/debug/aam}
ds=$1; col=$2; grp=$3; bp=$4
D=${DATA_ROOT:-../shared/data}/$ds
O=${OUT:-runs/explore}/$ds-$col
mkdir -p $O
common="--table $D/table.biom --unifrac-matrix $D/unifrac_unweighted.npy --unifrac-ids $D/unifrac_ids.txt --metadata $D/metadata.tsv --embedding-dim 32 --attention-heads 2 --attention-layers 1 --max-bp $bp --token-limit 64 --batch-size 8 --lr 1e-3 --seed $SEED --quiet --overwrite"
$A pretrain $common --group-column $grp --validation-fraction 0.25 --output $O/pre --epochs 10 --token-limit-policy abundance --count-embedding add > $O/pre.log 2>&1
$A baseline --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $col --split $O/pre/split.tsv --output $O/rf --overwrite --seed $SEED > $O/rf.log 2>&1
for v in "short:--epochs 6" "long:--epochs 40 --patience 0" "frozen:--epochs 40 --patience 0 --freeze-base"; do
  name=${v%%:*}; opts=${v#*:}
  $A train $common --metadata-column $col --split $O/pre/split.tsv --pretrained-encoder $O/pre --output $O/$name $opts > $O/$name.log 2>&1
  $A export --checkpoint $O/$name --output $O/$name-export --overwrite > /dev/null 2>&1
  $A evaluate --model $O/$name-export --table $D/table.biom --metadata $D/metadata.tsv --metadata-column $col --split $O/pre/split.tsv --output $O/$name-eval --overwrite --seed $SEED > $O/$name-eval.log 2>&1
done
echo "== $ds $col (seed-$SEED split)"
for n in rf short-eval long-eval frozen-eval; do printf "%-12s" $n; awk -F'\t' 'NR>1 && ($1=="accuracy"||$1=="macro_f1"||$1=="roc_auc"||$1=="r2"||$1=="spearman") {printf "%s %.3f  ", $1, $2}' $O/$n/metrics.tsv; echo; done
