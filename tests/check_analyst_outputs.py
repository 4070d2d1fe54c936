"""Checks what the analyst commands of docs/analyst.md wrote after the demos.

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
    # Rows above 1e-3 are refined up to max_steps; what is left is reported.
    gaps = sorted(float(r["completeness_gap"]) for r in rows)
    assert gaps[int(len(gaps) * 0.999)] <= 1e-3, gaps[-10:]
    assert gaps[-1] <= 1e-2, gaps[-10:]
    assert all(r["counterfactual_note"] for r in flagged)
    threshold = min(float(r["risk_probability"]) for r in flagged)
    found = [r for r in flagged if r["counterfactual_to"]]
    for r in found:
        assert float(r["counterfactual_score"]) < threshold, r
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
    classes = [k[2:] for k in rows[0] if k.startswith("p_")]
    boxes = {}
    with open(os.path.join(demo, "data/FI/labels.csv"), newline="") as f:
        for r in csv.DictReader(f):
            if r["x_min"]:
                boxes[os.path.basename(r["path"])] = (
                    r["label"], *(float(r[k]) for k in ("x_min", "y_min", "x_max", "y_max")))
    hits = explained = 0
    share = 0.0
    for r in rows:
        assert os.path.getsize(os.path.join(demo, "heatmaps", r["heatmap"])) > 0, r["heatmap"]
        total = sum(float(r["p_" + c]) for c in classes)
        assert abs(total - 1) < 1e-4, r
        box = boxes.get(os.path.basename(r["image"]))
        # The heatmap explains the most probable threat class; judge it where
        # that is the image's own threat.
        if box and r["gradcam_class"] == box[0]:
            explained += 1
            _, x0, y0, x1, y1 = box
            share += (x1 - x0) * (y1 - y0) / 64 ** 2
            if r["peak_x"] and x0 <= int(r["peak_x"]) + 0.5 < x1 and y0 <= int(r["peak_y"]) + 0.5 < y1:
                hits += 1
    assert explained >= 10, explained
    rate, chance = hits / explained, share / explained
    assert rate > 2 * chance, (rate, chance)
    print(f"xray: {len(rows)} images with heatmaps; peak in the threat's box on {rate:.3f} of "
          f"{explained} (chance {chance:.3f})")


def main():
    demo, xray = sys.argv[1], sys.argv[2]
    check_scores(demo)
    check_report(demo)
    check_xray(xray)


if __name__ == "__main__":
    main()
