#!/usr/bin/env python3
"""How well calibrated is the physics score? Reliability of the score on tracks with truth.

    DIAG_TERMS=TERMS_DIR cargo run --release --example diagnose -- DIR   # each tuning folder
    python3 scripts/score_calibration.py TERMS_DIR

`diagnose` with `DIAG_TERMS` writes, for every track the physics judged past its hard gates,
whether it follows a thrown object and each score term's value per unit of its weight
(`src/physics/assess.rs`, `ScoreModel::terms`). This script recomputes each track's logit
`z = bias + sum(weight * value)` with `DEFAULT_SCORE_MODEL` (read from the source) and prints a
reliability table (tracks per score band and how many follow an object) over all judged tracks
and over the accepted ones (z >= 0, the events). Tracks another check decides whatever their
score (`UnseenStart`, `Rain`) are left out.

It also fits a monotone recalibration `p = 1 / (1 + exp(-(scale * z + offset)))` (Platt scaling)
and prints its tables from 5-fold cross-validation by clip: whether remapping the score would
make events' scores more truthful. (It would not at stop 12: see docs/physics.md.) A tuning
tool: never feed it the held-out set. Needs numpy and scipy (`pip install numpy scipy`).
"""

import argparse
import csv
import glob
import os
import re
import sys

import numpy as np
from scipy.optimize import minimize

ASSESS_RS = os.path.join(os.path.dirname(__file__), "..", "src", "physics", "assess.rs")
BANDS = [(0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0001)]
DECIDED_ELSEWHERE = ("UnseenStart", "Rain")


def score_model():
    """The bias and weights of DEFAULT_SCORE_MODEL, from the Rust source."""
    src = open(ASSESS_RS, encoding="utf-8").read()
    block = re.search(r"pub const DEFAULT_SCORE_MODEL: ScoreModel = ScoreModel \{(.*?)\};", src, re.S)
    if not block:
        sys.exit("score_calibration: DEFAULT_SCORE_MODEL not found in " + ASSESS_RS)
    return {k: float(v) for k, v in re.findall(r"(\w+): (-?[\d.]+),", block.group(1))}


def load(terms_dir, model):
    rows = []
    for path in sorted(glob.glob(os.path.join(terms_dir, "*.terms.csv"))):
        rows += [r for r in csv.DictReader(open(path)) if r["verdict"] not in DECIDED_ELSEWHERE]
    if not rows:
        sys.exit(f"score_calibration: no *.terms.csv rows in {terms_dir}")
    names = [k for k in rows[0] if k.startswith("w_")]
    weights = np.array([model[n] for n in names])
    values = np.array([[float(r[n]) for n in names] for r in rows])
    z = model["bias"] + values @ weights
    y = np.array([int(r["object"]) for r in rows])
    clips = np.array([r["clip"] for r in rows])
    return z, y, clips


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))


def log_loss(p, y):
    return -(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)).mean()


def fit(z, y):
    return minimize(lambda ab: log_loss(sigmoid(ab[0] * z + ab[1]), y), [1.0, 0.0], method="Nelder-Mead").x


def cross_validated(z, y, clips, folds=5):
    """Each track's calibrated score from a fit on the other folds (folds by clip)."""
    names = sorted(set(clips))
    fold = np.array([names.index(c) % folds for c in clips])
    p = np.zeros(len(y))
    for k in range(folds):
        train = fold != k
        scale, offset = fit(z[train], y[train])
        p[~train] = sigmoid(scale * z[~train] + offset)
    return p


def table(title, p, y):
    print(f"{title}: {len(y)} tracks, {int(y.sum())} follow an object, log-loss {log_loss(p, y):.4f}")
    print("    score band   tracks  objects  mean score")
    for lo, hi in BANDS:
        s = (p >= lo) & (p < hi)
        mean = p[s].mean() if s.any() else float("nan")
        print(f"    {lo:.1f}-{min(hi, 1.0):.1f}    {int(s.sum()):7d}  {int(y[s].sum()):7d}  {mean:10.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("terms_dir")
    args = ap.parse_args()

    z, y, clips = load(args.terms_dir, score_model())
    raw = sigmoid(z)
    calibrated = cross_validated(z, y, clips)
    accepted = z >= 0
    table("raw score, all judged tracks", raw, y)
    table("recalibrated (cross-validated), all judged tracks", calibrated, y)
    table("raw score, accepted tracks", raw[accepted], y[accepted])
    table("recalibrated (cross-validated), accepted tracks", calibrated[accepted], y[accepted])
    scale, offset = fit(z, y)
    print(f"\nrecalibration fitted on all tracks: scale {scale:.3f}, offset {offset:.3f}")


if __name__ == "__main__":
    main()
