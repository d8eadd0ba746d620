"""R² of each fine-tuning seed and of their mean prediction, per fold, for
`moving-pictures` `days-since-experiment-start` (docs/benchmark/ablation.md, "A seed
ensemble for the regression"). RUN: the seed-42 `aam benchmark --folds 5` output
(default runs/cv5); the other seeds' runs from explore_seed_ensemble.sh in the current
folder."""
import csv, os, numpy as np
RUN = os.environ.get("RUN", "runs/cv5")
def load(p):
    r = {}
    for row in csv.DictReader(open(p), delimiter='\t'):
        r[row['sample_id']] = (float(row['true']), float(row['predicted']))
    return r
runs = {'42': RUN + '/moving-pictures/fold-{f}/days-since-experiment-start/evaluate/per_sample.tsv',
        '7': 's7-f{f}/evaluate/per_sample.tsv', '1': 's1-f{f}/evaluate/per_sample.tsv'}
def r2(t, p): return 1 - ((t-p)**2).sum()/((t-t.mean())**2).sum()
for f in (1, 2):
    d = {k: load(v.format(f=f)) for k, v in runs.items()}
    ids = sorted(d['42'])
    t = np.array([d['42'][i][0] for i in ids])
    ps = {k: np.array([d[k][i][1] for i in ids]) for k in d}
    for k in ps: print(f, 'seed', k, 'r2 %.3f mae %.1f' % (r2(t, ps[k]), np.abs(t-ps[k]).mean()))
    m = np.mean([ps[k] for k in ps], axis=0)
    print(f, 'mean of 3 seeds r2 %.3f mae %.1f' % (r2(t, m), np.abs(t-m).mean()))
