"""Compares a binding's predictions with `aam predict`'s, sample by sample.

Usage: compare_predictions.py EXPECTED.tsv GOT.txt --skip N --tolerance T

EXPECTED.tsv is `aam predict` output (header `sample_id, prediction, probability_<class>…`).
GOT.txt is a binding's output: after its first N lines, one tab-separated row per sample,
`sample_id, label, probability…` in the same class order. Every sample must appear in the
same order with the same label, and every probability within T (the binding's printed
precision). Exits 1 naming the first differences.
"""

import argparse
import csv
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("expected")
    ap.add_argument("got")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--tolerance", type=float, required=True)
    a = ap.parse_args()
    with open(a.expected, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    classes = [c for c in rows[0] if c.startswith("probability_")]
    want = [(r["sample_id"], r["prediction"], [float(r[c]) for c in classes]) for r in rows]
    with open(a.got) as f:
        lines = [line.rstrip("\n") for line in f][a.skip:]
    got = []
    for line in lines:
        if not line:
            continue
        cells = line.split("\t")
        got.append((cells[0], cells[1], [float(x) for x in cells[2 : 2 + len(classes)]]))
    problems = []
    if len(got) != len(want):
        problems.append(f"{len(got)} samples in {a.got}, {len(want)} in {a.expected}")
    worst = 0.0
    for (sid, label, probs), (wsid, wlabel, wprobs) in zip(got, want):
        if sid != wsid or label != wlabel:
            problems.append(f"{sid} {label} against {wsid} {wlabel}")
            continue
        if len(probs) != len(wprobs):
            problems.append(f"{sid}: {len(probs)} probabilities against {len(wprobs)}")
            continue
        diff = max(abs(p - w) for p, w in zip(probs, wprobs))
        worst = max(worst, diff)
        if diff > a.tolerance:
            problems.append(f"{sid}: probabilities {probs} against {wprobs}")
    for p in problems[:10]:
        print(f"{a.got}: {p}")
    print(
        f"{a.got}: {len(got)} samples against aam predict, largest probability difference "
        f"{worst:.2e} (tolerance {a.tolerance:g}), {len(problems)} problems"
    )
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
