#!/usr/bin/python3
"""bench/real_tabular's judge and references.

Fits what an analyst would fit alone with scikit-learn -- a logistic
regression (standardized numerics, one-hot categoricals) and
HistGradientBoostingClassifier (native categorical splits), each on the pooled
training rows of every region and on each region's own training rows -- and
scores every region's hold-out, in every fold of the cross-validation. Then,
over every loan (each scored once, in the fold that held it out), computes, with one implementation for
every model (ours, scored by bench_real_tabular, and these), PR-AUC (average
precision) and ROC-AUC per region and their mean over regions, each with a
95 % bootstrap interval (hold-out rows resampled within each region, the
same resamples for every model), and the paired bootstrap interval of each
model's mean PR-AUC minus the best pooled scikit-learn model's.

  reference_models.py --data DIR --scores DIR --out results.json
DIR (data) is prepare_lending_club.py's output; --scores holds
<model>.csv files with columns region,id,label,score (hold-out rows only).
"""
import argparse
import csv
import glob
import json
import math
import os
import sys
import time

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler


def load(data_dir):
    """The folds: [{region: {"num", "cat", "y", "ids", "n_train"}}]."""
    schema = json.load(open(os.path.join(data_dir, "lending_club.schema.json")))
    split = json.load(open(os.path.join(data_dir, "split.json")))
    numeric = [(c["name"], c.get("log1p", False)) for c in schema["columns"]
               if c["role"] == "NUMERIC"]
    categorical = [c["name"] for c in schema["columns"] if c["role"] == "CATEGORICAL"]
    folds = []
    for k, fold in enumerate(split["folds"]):
        regions = {}
        for region, info in fold.items():
            path = os.path.join(data_dir, f"fold{k}", region, "declarations.csv")
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            x_num = np.array([[float(r[n]) for n, _ in numeric] for r in rows])
            for j, (_, log1p) in enumerate(numeric):
                if log1p:
                    x_num[:, j] = np.log1p(np.maximum(x_num[:, j], 0))
            x_cat = np.array([[r[c] for c in categorical] for r in rows], dtype=object)
            y = np.array([int(r["bad"]) for r in rows])
            regions[region] = {"num": x_num, "cat": x_cat, "y": y, "ids": [r["id"] for r in rows],
                               "n_train": info["rows"] - info["holdout_rows"]}
        folds.append(regions)
    return folds, len(numeric), len(categorical)


def fit_models(x, y, n_num, n_cat, seed):
    num = list(range(n_num))
    cat = list(range(n_num, n_num + n_cat))
    logistic = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), num),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), cat)]),
        LogisticRegression(max_iter=2000))
    boosting = make_pipeline(
        ColumnTransformer([("num", "passthrough", num),
                           ("cat", OrdinalEncoder(handle_unknown="use_encoded_value",
                                                  unknown_value=-1,
                                                  encoded_missing_value=-1), cat)]),
        HistGradientBoostingClassifier(categorical_features=list(range(n_num, n_num + n_cat)),
                                       random_state=seed))
    out = {}
    for name, model in (("logistic", logistic), ("hist_gradient_boosting", boosting)):
        start = time.time()
        model.fit(x, y)
        out[name] = (model, time.time() - start)
    return out


def reference_scores(folds, n_num, n_cat, seed):
    """{model name: {region: {id: score}}} over every fold's hold-outs, and the
    seconds each pooled model took to fit (summed over folds)."""
    scores, seconds = {}, {}

    def rows(regions, r, train):
        d = regions[r]
        k = slice(0, d["n_train"]) if train else slice(d["n_train"], None)
        return np.concatenate([d["num"][k], d["cat"][k]], axis=1), d["y"][k], d["ids"][k]

    def keep(key, regions, r, model):
        x, _, ids = rows(regions, r, False)
        scores.setdefault(key, {}).setdefault(r, {}).update(
            zip(ids, model.predict_proba(x)[:, 1]))

    for regions in folds:
        pooled = [rows(regions, r, True) for r in regions]
        x = np.concatenate([p[0] for p in pooled])
        y = np.concatenate([p[1] for p in pooled])
        for name, (model, s) in fit_models(x, y, n_num, n_cat, seed).items():
            key = f"sklearn {name} pooled"
            seconds[key] = seconds.get(key, 0) + s
            for r in regions:
                keep(key, regions, r, model)
        for r in regions:
            xr, yr, _ = rows(regions, r, True)
            for name, (model, s) in fit_models(xr, yr, n_num, n_cat, seed).items():
                keep(f"sklearn {name} local-only", regions, r, model)
    return scores, seconds


def read_ours(scores_dir):
    out = {}
    for path in sorted(glob.glob(os.path.join(scores_dir, "*.csv"))):
        by_region = {}
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                by_region.setdefault(row["region"], {})[row["id"]] = float(row["score"])
        out[os.path.basename(path)[:-4]] = by_region
    return out


def holdout_labels(folds):
    """{region: (ids, labels)} of every fold's hold-out, in fold order."""
    out = {}
    for regions in folds:
        for r, d in regions.items():
            ids, y = out.setdefault(r, ([], []))
            ids += d["ids"][d["n_train"]:]
            y += list(d["y"][d["n_train"]:])
    return {r: (ids, np.array(y)) for r, (ids, y) in out.items()}


def safe(metric, y, s):
    return metric(y, s) if 0 < y.sum() < len(y) else float("nan")


def judge(all_scores, holdouts, resamples, seed):
    rng = np.random.default_rng(seed)
    labels = {r: y for r, (_, y) in holdouts.items()}
    draws = {r: rng.integers(0, len(y), size=(resamples, len(y))) for r, y in labels.items()}
    results = {}
    boot_means = {}
    for name, by_region in all_scores.items():
        res = {}
        boot = np.zeros((resamples, 2))
        for r, y in labels.items():
            got = by_region.get(r, {})
            missing = [i for i in holdouts[r][0] if i not in got]
            if missing:
                sys.exit(f"reference_models: {name}: no score for {len(missing)} hold-out loans "
                         f"of {r} (first {missing[0]})")
            s = np.array([got[i] for i in holdouts[r][0]])
            pr = [safe(average_precision_score, y[i], s[i]) for i in draws[r]]
            roc = [safe(roc_auc_score, y[i], s[i]) for i in draws[r]]
            res[r] = {"pr_auc": average_precision_score(y, s), "roc_auc": roc_auc_score(y, s),
                      "pr_auc_ci": list(np.nanpercentile(pr, [2.5, 97.5])),
                      "roc_auc_ci": list(np.nanpercentile(roc, [2.5, 97.5]))}
            boot[:, 0] += np.nan_to_num(pr) / len(labels)
            boot[:, 1] += np.nan_to_num(roc) / len(labels)
        res["mean"] = {"pr_auc": float(np.mean([res[r]["pr_auc"] for r in labels])),
                       "roc_auc": float(np.mean([res[r]["roc_auc"] for r in labels])),
                       "pr_auc_ci": list(np.percentile(boot[:, 0], [2.5, 97.5])),
                       "roc_auc_ci": list(np.percentile(boot[:, 1], [2.5, 97.5]))}
        boot_means[name] = boot[:, 0]
        results[name] = res
    pooled = [n for n in results if n.startswith("sklearn") and n.endswith("pooled")]
    best = max(pooled, key=lambda n: results[n]["mean"]["pr_auc"])
    for name in results:
        diff = boot_means[name] - boot_means[best]
        results[name]["mean"]["vs_best_sklearn_pooled"] = {
            "reference": best,
            "difference": results[name]["mean"]["pr_auc"] - results[best]["mean"]["pr_auc"],
            "ci": list(np.percentile(diff, [2.5, 97.5]))}
    return results, best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--scores", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    folds, n_num, n_cat = load(a.data)
    holdouts = holdout_labels(folds)
    ours = read_ours(a.scores)
    theirs, seconds = reference_scores(folds, n_num, n_cat, a.seed)
    results, best = judge({**ours, **theirs}, holdouts, a.resamples, a.seed)
    import sklearn
    with open(a.out, "w") as f:
        json.dump({"regions": list(holdouts), "folds": len(folds), "best_sklearn_pooled": best,
                   "sklearn_version": sklearn.__version__, "fit_seconds": seconds,
                   "models": results}, f, indent=2)


if __name__ == "__main__":
    main()
