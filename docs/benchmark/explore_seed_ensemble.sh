#!/bin/bash
# Days regression: extra fine-tuning seeds (7, 1) on the seed-42 benchmark's folds and
# pretrained encoder, each exported at its last epoch and evaluated; then seed_ensemble.py.
# AAM: the aam binary; DATA: ../shared/data; RUN: the seed-42 `aam benchmark --folds 5`
# output (runs/cv5), whose commands.sh gives the fine-tuning command lines.
A=${AAM:-aam}
D=${DATA:-../shared/data}/moving-pictures
for seed in 7 1; do for f in 1 2; do
  cmd=$(grep "^aam train.*days-since-experiment-start.*fold-$f" ${RUN:-runs/cv5}/commands.sh | sed "s#^aam #$A #; s#--seed 42#--seed $seed#; s#${RUN:-runs/cv5}/moving-pictures/fold-$f/days-since-experiment-start/train#s$seed-f$f/train#")
  eval "$cmd --overwrite" > /dev/null 2>&1
  $A export --last --checkpoint s$seed-f$f/train --output s$seed-f$f/export --overwrite > /dev/null 2>&1
  $A evaluate --table $D/table.biom --metadata $D/metadata.tsv --metadata-column days-since-experiment-start --split s$seed-f$f/train/split.tsv --output s$seed-f$f/evaluate --overwrite --model s$seed-f$f/export > /dev/null 2>&1
  echo "s$seed f$f $(awk 'NR>1{printf "%s=%.3f ", $1, $2}' s$seed-f$f/evaluate/metrics.tsv)"
done; done
echo ENSDONE
