#!/usr/bin/python3
"""Checks bench_real_tabular's results.json (the ctest's small run): every
model judged on every region with figures in [0, 1], and the federated
logistic model and the federated and pooled trees above a mean ROC-AUC of
0.6."""
import json
import sys

EXPECTED = ["logistic federated", "logistic local-only", "logistic pooled", "trees federated",
            "trees pooled", "trees local-only", "sklearn logistic pooled", "sklearn logistic local-only",
            "sklearn hist_gradient_boosting pooled", "sklearn hist_gradient_boosting local-only"]


def main():
    results = json.load(open(sys.argv[1]))
    failures = []
    for name in EXPECTED:
        model = results["models"].get(name)
        if model is None:
            failures.append(f"{name}: not judged")
            continue
        for region in results["regions"] + ["mean"]:
            for metric in ("pr_auc", "roc_auc"):
                value = model[region][metric]
                if not 0 <= value <= 1:
                    failures.append(f"{name} {region} {metric} = {value}, not in [0, 1]")
    for name in ("logistic federated", "trees federated", "trees pooled"):
        roc = results["models"].get(name, {}).get("mean", {}).get("roc_auc", 0)
        if roc <= 0.6:
            failures.append(f"{name}: mean ROC-AUC {roc:.3f}, expected above 0.6")
    for f in failures:
        print("FAIL:", f)
    print(f"{len(EXPECTED) - len([f for f in failures if 'not judged' in f])} models judged on "
          f"{len(results['regions'])} regions; {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
