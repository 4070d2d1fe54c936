"""Checks the summary of `fedcustoms demo --task risk --epsilon 8` against the
plain demo's: the signed manifest's privacy block (mechanism, every
administration's epsilon within the target, recomputable segments with the
statistics query) and issue 21's target, the private federated model's
hold-out PR-AUC above every administration's non-private local-only MLP.

    check_dp_demo.py DP_SUMMARY PLAIN_SUMMARY
"""
import json
import sys


def main(dp_path, plain_path):
    with open(dp_path) as f:
        dp = json.load(f)
    with open(plain_path) as f:
        plain = json.load(f)
    failures = []
    privacy = dp.get("privacy") or {}
    if privacy.get("mechanism") != "dp-sgd":
        failures.append(f"{dp_path}: privacy mechanism {privacy.get('mechanism')!r}, not dp-sgd")
    admins = privacy.get("administrations") or {}
    if sorted(admins) != sorted(dp["nodes"]):
        failures.append(f"{dp_path}: epsilon stated for {sorted(admins)}, nodes {sorted(dp['nodes'])}")
    for admin, entry in admins.items():
        eps = entry.get("epsilon")
        if not isinstance(eps, (int, float)) or not 0 < eps <= 8:
            failures.append(f"{admin}: epsilon {eps!r} is not in (0, 8]")
        rates = [s.get("sampling_rate") for s in entry.get("segments", [])]
        if 1.0 not in rates:
            failures.append(f"{admin}: no statistics query segment (sampling rate 1) in {rates}")
    for admin, node in dp["nodes"].items():
        fed = node["federated"]["pr_auc"]
        local_mlp = plain["nodes"][admin]["local_only"]["pr_auc"]
        print(f"{admin}: private federated PR-AUC {fed:.4f}, local-only MLP {local_mlp:.4f}, "
              f"local-only same model without DP {node['local_only']['pr_auc']:.4f}")
        if not fed > local_mlp:
            failures.append(f"{admin}: private federated PR-AUC {fed:.4f} does not beat the "
                            f"local-only MLP's {local_mlp:.4f}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
