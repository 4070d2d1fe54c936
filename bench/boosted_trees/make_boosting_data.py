#!/usr/bin/python3
"""bench/boosted_trees's data: a table of the issue's size for timing trees.

Writes <out>/<admin>/declarations.csv for each administration (columns id,
label, x00..x<F-1>; the last fifth of each file is its hold-out) and
<out>/boosting.schema.json. The label is drawn from a logistic model with
interactions, thresholds and a smooth term, so that trees have structure to
find; each administration's features are shifted (non-IID). Made here, from a
seed: the timing benchmark needs size, not realism (bench/real_tabular judges
quality on real data)."""
import argparse
import json
import os

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=100000)
    p.add_argument("--features", type=int, default=30)
    p.add_argument("--admins", default="EE,FI,LV")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    admins = a.admins.split(",")
    per = a.rows // len(admins)
    summary = {}
    for k, admin in enumerate(admins):
        x = rng.normal(size=(per, a.features)) + 0.3 * k * (np.arange(a.features) % 3 == 0)
        logit = (-3.4 + 0.9 * x[:, 0] * x[:, 1] + 1.2 * (x[:, 2] > 1.0) - 0.8 * (x[:, 3] < -0.5)
                 + 0.7 * np.sin(2 * x[:, 4]) + 0.5 * x[:, 5] + 0.6 * (x[:, 6] > 0) * x[:, 7])
        y = (rng.random(per) < 1 / (1 + np.exp(-logit))).astype(int)
        os.makedirs(os.path.join(a.out, admin), exist_ok=True)
        header = ["id", "label"] + [f"x{j:02d}" for j in range(a.features)]
        with open(os.path.join(a.out, admin, "declarations.csv"), "w") as f:
            f.write(",".join(header) + "\n")
            for i in range(per):
                f.write(f"{admin}{i},{y[i]}," + ",".join(f"{v:.5f}" for v in x[i]) + "\n")
        summary[admin] = {"rows": per, "positives": int(y.sum())}
    columns = [{"name": "id", "role": "ID"}, {"name": "label", "role": "LABEL"}]
    columns += [{"name": f"x{j:02d}", "role": "NUMERIC"} for j in range(a.features)]
    with open(os.path.join(a.out, "boosting.schema.json"), "w") as f:
        json.dump({"columns": columns}, f, indent=2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
