"""`aam distance` against scikit-bio 0.7 on the shared datasets (issue: distance targets
beyond UniFrac must equal scikit-bio's values).

Usage: check_distances.py AAM_BINARY DATA_ROOT WORK_DIR

For each dataset and metric, aam writes the matrix from the BIOM table; scikit-bio
computes it from the same table read by the `biom` package (an independent reader):
Bray-Curtis and Jaccard with `skbio.diversity.beta_diversity` (Jaccard on
presence/absence, scikit-bio's rule for qualitative metrics), robust Aitchison as the
Euclidean distance between `skbio.stats.composition.rclr` profiles (its NaN at zero
counts taken as 0). Every value must agree within 1e-9.
"""

import subprocess
import sys
from pathlib import Path

import biom
import numpy as np
from scipy.spatial.distance import pdist, squareform
from skbio.diversity import beta_diversity
from skbio.stats.composition import rclr

DATASETS = ["moving-pictures", "circadian-ihc", "ibd-2538"]
METRICS = ["braycurtis", "jaccard", "aitchison"]


def reference(counts, ids, metric):
    if metric == "aitchison":
        profiles = np.nan_to_num(rclr(counts), nan=0.0)
        return squareform(pdist(profiles, "euclidean"))
    return beta_diversity(metric, counts, ids).data


def main():
    aam, root, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    work.mkdir(parents=True, exist_ok=True)
    failures = 0
    for dataset in DATASETS:
        table_path = root / dataset / "table.biom"
        table = biom.load_table(str(table_path))
        ids = list(table.ids(axis="sample"))
        counts = table.matrix_data.toarray().T  # samples × ASVs
        for metric in METRICS:
            out = work / f"{dataset}-{metric}.npy"
            subprocess.run(
                [aam, "distance", "--table", str(table_path), "--metric", metric,
                 "--output", str(out), "--overwrite"],
                check=True, capture_output=True,
            )
            got = np.load(out)
            got_ids = (work / f"{dataset}-{metric}_ids.txt").read_text().split("\n")[:-1]
            assert got_ids == ids, f"{dataset}: sample order differs"
            want = reference(counts, ids, metric)
            diff = float(np.max(np.abs(got - want)))
            ok = diff <= 1e-9
            failures += not ok
            print(f"{dataset:16s} {metric:10s} {len(ids):4d} samples  max |aam − scikit-bio| = {diff:.2e}  {'ok' if ok else 'FAILED'}")
    if failures:
        sys.exit(f"{failures} distance matrices differ from scikit-bio")


if __name__ == "__main__":
    main()
