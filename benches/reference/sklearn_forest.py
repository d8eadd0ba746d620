"""scikit-learn's RandomForestClassifier on exactly the input of `aam baseline`: relative
abundances of the ASVs seen in the training samples of a split written by aam
(`split.tsv`), 500 trees, sqrt features, one thread. Prints the fit time and the
validation accuracy, macro-F1 and ROC-AUC (one-vs-rest macro; class 1's for two classes),
to set `aam baseline`'s forest against it.

usage: sklearn_forest.py TABLE.biom METADATA.tsv COLUMN SPLIT.tsv [--jobs N] [--seed S]
"""
import argparse
import time

import biom
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("table")
    ap.add_argument("metadata")
    ap.add_argument("column")
    ap.add_argument("split")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trees", type=int, default=500)
    a = ap.parse_args()
    table = biom.load_table(a.table)
    md = pd.read_csv(a.metadata, sep="\t", dtype=str, comment=None)
    md = md[~md.iloc[:, 0].str.startswith("#q2")].set_index(md.columns[0])
    split = pd.read_csv(a.split, sep="\t", dtype=str)
    side = dict(zip(split.iloc[:, 0], split.iloc[:, 1]))
    ids = [s for s in table.ids("sample") if s in side and pd.notna(md.loc[s, a.column]) and md.loc[s, a.column] != ""]
    counts = np.asarray(table.filter(ids, inplace=False).matrix_data.todense()).T  # samples × ASVs
    order = {s: i for i, s in enumerate(table.filter(ids, inplace=False).ids("sample"))}
    train = [s for s in ids if side[s] == "train"]
    valid = [s for s in ids if side[s] != "train"]
    x = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-300)
    xt = x[[order[s] for s in train]]
    seen = xt.sum(axis=0) > 0
    xt, xv = xt[:, seen], x[[order[s] for s in valid]][:, seen]
    classes = sorted(set(md.loc[ids, a.column]))
    yt = np.array([classes.index(md.loc[s, a.column]) for s in train])
    yv = np.array([classes.index(md.loc[s, a.column]) for s in valid])
    rf = RandomForestClassifier(n_estimators=a.trees, max_features="sqrt", n_jobs=a.jobs, random_state=a.seed)
    start = time.perf_counter()
    rf.fit(xt, yt)
    fit_s = time.perf_counter() - start
    p = np.zeros((len(valid), len(classes)))
    p[:, rf.classes_] = rf.predict_proba(xv)
    pred = p.argmax(axis=1)
    if len(classes) == 2:
        auc = roc_auc_score(yv, p[:, 1])
    else:
        aucs = [roc_auc_score(yv == c, p[:, c]) for c in range(len(classes)) if 0 < (yv == c).sum() < len(yv)]
        auc = float(np.mean(aucs))
    print(f"{len(train)} train × {xt.shape[1]} ASVs, {len(valid)} validation; fit {fit_s:.2f} s on {a.jobs} thread(s)")
    print(f"accuracy {accuracy_score(yv, pred):.4f} macro_f1 {f1_score(yv, pred, average='macro'):.4f} roc_auc {auc:.4f}")


if __name__ == "__main__":
    main()
