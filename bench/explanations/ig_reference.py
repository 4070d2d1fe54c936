"""The PyTorch reference of bench_explanations, run by it as a subprocess.

Integrated gradients of the same trained risk model, as one would write it in
PyTorch: P = sigmoid(logit) of the RiskMlp's hidden layers (Linear + ReLU) and
output Linear on the encoded inputs (standardized numerics and embeddings,
encoded by the C++ side and saved with the model), a plain midpoint Riemann
sum of torch.autograd.grad over N uniform steps from the baseline, batched so
that at most 2^18 path points are held at once. The completeness gap of each
row is |sum of attributions - (P(x) - P(b))|.

  ig_reference.py --state model.pt --inputs inputs.pt --threads T --steps 64,256,...

Prints one JSON object on stdout: per step count the seconds, ms per row and
the gap's median, 99th percentile and maximum.
"""
import argparse
import json
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", default="64,256,1024,4096")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = torch.load(args.state)
    inputs = torch.load(args.inputs)
    encoded, baseline = inputs["encoded"], inputs["baseline"]
    layers = []
    i = 0
    while f"hidden.{i}.weight" in state:
        layers.append((state[f"hidden.{i}.weight"], state[f"hidden.{i}.bias"]))
        i += 1
    out_w, out_b = state["output.weight"], state["output.bias"]

    def logit(x):
        for w, b in layers:
            x = torch.relu(torch.nn.functional.linear(x, w, b))
        return torch.nn.functional.linear(x, out_w, out_b).squeeze(1)

    with torch.no_grad():
        expected = torch.sigmoid(logit(encoded)) - torch.sigmoid(logit(baseline.unsqueeze(0)))
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "steps": {}}
    rows, width = encoded.shape
    for steps in [int(s) for s in args.steps.split(",")]:
        start = time.perf_counter()
        attributions = torch.empty_like(encoded)
        chunk = max(1, (1 << 18) // steps)
        t = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
        for begin in range(0, rows, chunk):
            x = encoded[begin:begin + chunk]
            delta = x - baseline
            path = (baseline + t.view(1, -1, 1) * delta.unsqueeze(1)).reshape(-1, width)
            path.requires_grad_(True)
            p = torch.sigmoid(logit(path)).sum()
            (grad,) = torch.autograd.grad(p, path)
            attributions[begin:begin + chunk] = grad.view(-1, steps, width).mean(1) * delta
        seconds = time.perf_counter() - start
        gap = (attributions.sum(1) - expected).abs().sort().values
        report["steps"][str(steps)] = {
            "seconds": seconds,
            "ms_per_row": 1000 * seconds / rows,
            "gap_median": gap[rows // 2].item(),
            "gap_p99": gap[min(rows - 1, int(rows * 0.99))].item(),
            "gap_max": gap[-1].item(),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
