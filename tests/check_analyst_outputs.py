"""Checks what the README's analyst commands wrote after the demos.

Usage: check_analyst_outputs.py DEMO_DIR XRAY_DEMO_DIR
  DEMO_DIR/scores.csv        fedcustoms score --explain 3 --counterfactual origin_country
  DEMO_DIR/report.json|html  fedcustoms report --by origin_country,office
  XRAY_DEMO_DIR/xray-scores.csv and heatmaps/   fedcustoms score --task xray --gradcam
"""
import csv
import json
import math
import os
import sys


def check_scores(demo):
    with open(os.path.join(demo, "data/EE/declarations.csv"), newline="") as f:
        data_rows = sum(1 for _ in csv.DictReader(f))
    with open(os.path.join(demo, "scores.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == data_rows, (len(rows), data_rows)
    flagged = [r for r in rows if r["flagged"] == "1"]
    assert len(flagged) == math.ceil(0.05 * data_rows), len(flagged)
    for r in rows:
        p = float(r["risk_probability"])
        assert 0 <= p <= 1, r
        assert abs(float(r["reason_1_contribution"])) >= abs(float(r["reason_3_contribution"])), r
        assert float(r["completeness_gap"]) <= 1e-3, r
    assert all(r["counterfactual_note"] for r in flagged)
    found = [r for r in flagged if r["counterfactual_to"]]
    for r in found:
        assert r["counterfactual_to"] != r["counterfactual_from"], r
    print(f"scores: {len(rows)} rows, {len(flagged)} flagged, counterfactual found for {len(found)}")


def check_report(demo):
    report = json.load(open(os.path.join(demo, "report.json")))
    assert report["format"] == "fedcustoms.group_report.v1", report.keys()
    names = [c["name"] for c in report["group_columns"]]
    assert names == ["origin_country", "office"], names
    for column in report["group_columns"]:
        assert sum(g["rows"] for g in column["groups"]) == report["overall"]["rows"], column["name"]
    sel = report["selection"]
    assert sel["random"]["unbiased"] is True and sel["random"]["rows"] > 0, sel
    assert sel["risk_selected"]["unbiased"] is False, sel
    html = open(os.path.join(demo, "report.html"), encoding="utf-8").read()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "origin_country" in html and "office" in html
    print(f"report: {report['overall']['rows']} rows, random controls {sel['random']['rows']}")


def check_xray(demo):
    with open(os.path.join(demo, "xray-scores.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, "no X-ray rows"
    for r in rows:
        assert os.path.getsize(os.path.join(demo, "heatmaps", r["heatmap"])) > 0, r["heatmap"]
        assert r["gradcam_class"] != "clear", r
    print(f"xray: {len(rows)} images with heatmaps")


def main():
    demo, xray = sys.argv[1], sys.argv[2]
    check_scores(demo)
    check_report(demo)
    check_xray(xray)


if __name__ == "__main__":
    main()
