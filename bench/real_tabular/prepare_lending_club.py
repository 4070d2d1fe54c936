#!/usr/bin/python3
"""bench/real_tabular's data: Lending Club loans split by US Census region.

The table is `lending_club` from Debian's r-cran-modeldata (9 857 loans issued
in 2016 Q1, 23 columns, 517 "bad" = 5.2 %; the data set of the R package
modeldata, exported with Rscript). Each census region (Northeast, Midwest,
South, West) is one "administration": a natural split with different sizes and
default rates, as customs administrations differ.

Hold-outs of a few hundred loans hold 13 to 47 defaults, too few for a stable
PR-AUC, so the benchmark cross-validates: rows are shuffled within a region
with a fixed seed and cut into --folds folds; in fold k the region's file lists
every other fold first and fold k last, so each node's deterministic split
(the last holdout_fraction = 1/folds of its rows,
common/data/declarations_csv.h) holds out exactly fold k. Every loan is then
scored once, by models that never saw it.

Writes, under --out:
  lending_club.schema.json             the schema every node uses
  fold<k>/<REGION>/declarations.csv    one region's loans (id, features, bad)
  fold<k>/pooled/declarations.csv      every region's training rows, then
                                       every region's hold-out rows
  split.json                           folds, rows and hold-out rows per
                                       region and fold
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile

REGIONS = {
    "NE": "CT ME MA NH RI VT NJ NY PA",
    "MW": "IL IN MI OH WI IA KS MN MO NE ND SD",
    "SO": "DE FL GA MD NC SC VA DC WV AL KY MS TN AR LA OK TX",
    "WE": "AZ CO ID MT NV NM UT WY AK CA HI OR WA",
}
STATE_REGION = {s: r for r, states in REGIONS.items() for s in states.split()}

# (column, log1p): amounts and counts with long right tails get log1p.
NUMERIC = [
    ("funded_amnt", True), ("int_rate", False), ("annual_inc", True), ("delinq_2yrs", True),
    ("inq_last_6mths", True), ("revol_util", False), ("acc_now_delinq", True),
    ("open_il_6m", True), ("open_il_12m", True), ("open_il_24m", True), ("total_bal_il", True),
    ("all_util", False), ("inq_fi", True), ("inq_last_12m", True), ("delinq_amnt", True),
    ("num_il_tl", True), ("total_il_high_credit_limit", True),
]
# (column, hash buckets): about twice the levels, so few collide.
CATEGORICAL = [("term", 4), ("sub_grade", 64), ("verification_status", 8),
               ("emp_length", 32), ("addr_state", 128)]


def export_from_r(path):
    script = ('data(lending_club, package="modeldata"); '
              f'write.csv(lending_club, "{path}", row.names = FALSE)')
    try:
        subprocess.run(["Rscript", "-e", script], check=True, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("prepare_lending_club: Rscript not found: apt-get install r-cran-modeldata")
    except subprocess.CalledProcessError as e:
        sys.exit("prepare_lending_club: Rscript could not export modeldata::lending_club "
                 f"(apt-get install r-cran-modeldata): {e.stderr.strip()}")


def schema():
    columns = [{"name": "id", "role": "ID"}]
    for name, log1p in NUMERIC:
        c = {"name": name, "role": "NUMERIC"}
        if log1p:
            c["log1p"] = True
        columns.append(c)
    for name, buckets in CATEGORICAL:
        columns.append({"name": name, "role": "CATEGORICAL", "hash_buckets": buckets})
    columns.append({"name": "bad", "role": "LABEL"})
    return {"columns": columns}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "lending_club.csv")
        export_from_r(raw)
        with open(raw, newline="") as f:
            rows = list(csv.DictReader(f))
    fields = ["id"] + [n for n, _ in NUMERIC] + [n for n, _ in CATEGORICAL] + ["bad"]
    by_region = {r: [] for r in REGIONS}
    for i, row in enumerate(rows):
        out = {"id": f"LC{i + 1:05d}", "bad": 1 if row["Class"] == "bad" else 0}
        for name in fields[1:-1]:
            out[name] = row[name]
        by_region[STATE_REGION[row["addr_state"]]].append(out)
    if a.folds < 2:
        sys.exit("prepare_lending_club: --folds must be at least 2")
    rng = random.Random(a.seed)
    for region_rows in by_region.values():
        rng.shuffle(region_rows)
    folds = []
    for k in range(a.folds):
        fold = {}
        train_rows, holdout_rows = [], []
        for region, region_rows in by_region.items():
            n = len(region_rows)
            lo, hi = n * k // a.folds, n * (k + 1) // a.folds
            rest, held = region_rows[:lo] + region_rows[hi:], region_rows[lo:hi]
            fold[region] = {"rows": n, "holdout_rows": len(held),
                            "positives": sum(r["bad"] for r in region_rows),
                            "holdout_positives": sum(r["bad"] for r in held)}
            train_rows += rest
            holdout_rows += held
            write_csv(os.path.join(a.out, f"fold{k}", region, "declarations.csv"), fields,
                      rest + held)
        write_csv(os.path.join(a.out, f"fold{k}", "pooled", "declarations.csv"), fields,
                  train_rows + holdout_rows)
        folds.append(fold)
    with open(os.path.join(a.out, "lending_club.schema.json"), "w") as f:
        json.dump(schema(), f, indent=2)
    with open(os.path.join(a.out, "split.json"), "w") as f:
        json.dump({"folds": folds, "seed": a.seed}, f, indent=2)


def write_csv(path, fields, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
