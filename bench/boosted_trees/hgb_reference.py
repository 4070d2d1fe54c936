#!/usr/bin/python3
"""scikit-learn's HistGradientBoostingClassifier on the pooled training rows
of bench/boosted_trees (the first four fifths of each administration's file),
with the settings of our trees (100 trees of depth 6, learning rate 0.1, L2 1,
64 bins, no early stopping), timed, and scored on the pooled hold-outs.
Prints one JSON line."""
import argparse
import json
import os
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, roc_auc_score


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--admins", default="EE,FI,LV")
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--depth", type=int, default=6)
    a = p.parse_args()
    xs_train, ys_train, xs_test, ys_test = [], [], [], []
    for admin in a.admins.split(","):
        table = np.loadtxt(os.path.join(a.data, admin, "declarations.csv"), delimiter=",",
                           skiprows=1, usecols=None, dtype=str)
        y = table[:, 1].astype(int)
        x = table[:, 2:].astype(float)
        cut = len(y) - int(round(len(y) * a.holdout))
        xs_train.append(x[:cut]), ys_train.append(y[:cut])
        xs_test.append(x[cut:]), ys_test.append(y[cut:])
    x_train, y_train = np.vstack(xs_train), np.concatenate(ys_train)
    x_test, y_test = np.vstack(xs_test), np.concatenate(ys_test)
    model = HistGradientBoostingClassifier(max_iter=a.trees, max_depth=a.depth,
                                           learning_rate=0.1, l2_regularization=1.0,
                                           max_bins=63, early_stopping=False, random_state=0)
    start = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    score = model.predict_proba(x_test)[:, 1]
    print(json.dumps({"seconds": seconds, "train_rows": int(len(y_train)),
                      "pr_auc": float(average_precision_score(y_test, score)),
                      "roc_auc": float(roc_auc_score(y_test, score))}))


if __name__ == "__main__":
    main()
