"""The PyTorch reference of bench_training_speed, run by it as a subprocess.

The node's two supervised models written as one would in PyTorch, trained with
a plain, fast loop (no DataLoader: the data sits in tensors, an epoch indexes
them with a randperm), with the same architecture, batch, optimizer (Adam, lr
1e-3, fresh for each run as the node makes it), loss and thread count as the
C++ side:

  risk   RiskMlp (common/models/risk_mlp.h): BatchNorm1d(affine=False) used
         as (x - running_mean) / sqrt(running_var + eps) with stored
         statistics, one Embedding per categorical column, Linear + ReLU +
         Dropout per hidden layer, Linear(1); BCE-with-logits with pos_weight.
  xray   XrayCnn (common/models/xray_cnn.h): standardized attenuation
         (-ln I - 0.75) / 0.3, conv 3x3 pad 1 + ReLU + max-pool 2
         per block, flatten, Linear hidden, ReLU, Dropout, Linear classes;
         weighted cross-entropy summed then divided by the batch size.
         Images are held as int16 (uint16 bits) and become float32 in [0, 1]
         one batch at a time, as the node holds them. With --augment each
         batch gets random horizontal and vertical flips (torch.where over
         flip()), a shift of up to size/16 pixels with edge replication
         (F.pad mode="replicate", then a per-image crop) and a gain in
         [0.9, 1.1] with clamp to [0, 1]: the node's AugmentXrayBatch does the
         same with two gathers.

Each run is one epoch over --samples examples; a warm-up epoch of
--warmup-samples comes first; the median of --repeats runs is reported. With
--profile-samples, one more epoch is timed phase by phase (gather, to float,
augment, forward, loss, zero_grad, backward, optimizer step, item).

Prints one JSON object on stdout.

  torch_training.py --model risk|xray --threads T --samples N --batch B
      [--augment] [--repeats 3] [--warmup-samples W] [--profile-samples P]
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# common/synth/declarations_synth.cc SyntheticDeclarationSchema(): 3 numeric
# columns, 6 categorical ones with these bucket counts.
RISK_NUMERIC = 3
RISK_BUCKETS = (1024, 256, 64, 4096, 256, 8)
XRAY_CLASSES = 4


class RiskMlp(nn.Module):
    def __init__(self, numeric_width, buckets, hidden=(64, 32), embedding_dim=8, p=0.1):
        super().__init__()
        self.standardize = nn.BatchNorm1d(numeric_width, affine=False, momentum=None)
        self.embeddings = nn.ModuleList(nn.Embedding(b, embedding_dim) for b in buckets)
        width = numeric_width + len(buckets) * embedding_dim
        layers = []
        for units in hidden:
            layers.append(nn.Linear(width, units))
            width = units
        self.hidden = nn.ModuleList(layers)
        self.dropout = nn.Dropout(p)
        self.output = nn.Linear(width, 1)

    def forward(self, numeric, categorical):
        s = self.standardize
        parts = [(numeric - s.running_mean) / torch.sqrt(s.running_var + s.eps)]
        parts += [e(categorical[:, j]) for j, e in enumerate(self.embeddings)]
        x = torch.cat(parts, 1)
        for layer in self.hidden:
            x = self.dropout(F.relu(layer(x)))
        return self.output(x).squeeze(1)


class XrayCnn(nn.Module):
    """As documented in common/models/xray_cnn.h."""

    def __init__(self, channels, input_channels, image_size, hidden, classes, p, center, scale):
        super().__init__()
        self.center, self.scale = center, scale
        widths = [input_channels] + channels
        self.conv = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(widths, widths[1:]))
        side = image_size >> len(channels)
        self.hidden = nn.Linear(channels[-1] * side * side, hidden)
        self.dropout = nn.Dropout(p)
        self.output = nn.Linear(hidden, classes)

    def forward(self, x):
        x = (-x.clamp_min(math.exp(-8)).log() - self.center) / self.scale
        for conv in self.conv:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = F.relu(self.hidden(x.flatten(1)))
        return self.output(self.dropout(x))


def unit_images(x):
    """int16 holding uint16 bits -> float32 in [0, 1]."""
    return x.to(torch.int32).bitwise_and_(0xFFFF).to(torch.float32).div_(65535.0)


def augment(x, g):
    b, _, h, w = x.shape
    m = min(h, w) // 16
    flip_x = torch.rand(b, generator=g) < 0.5
    flip_y = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip_x.view(b, 1, 1, 1), x.flip(3), x)
    x = torch.where(flip_y.view(b, 1, 1, 1), x.flip(2), x)
    if m > 0:
        dx = torch.randint(-m, m + 1, (b,), generator=g).tolist()
        dy = torch.randint(-m, m + 1, (b,), generator=g).tolist()
        padded = F.pad(x, (m, m, m, m), mode="replicate")
        x = torch.stack(
            [padded[i, :, m - dy[i] : m - dy[i] + h, m - dx[i] : m - dx[i] + w] for i in range(b)]
        )
    gain = torch.empty(b).uniform_(0.9, 1.1, generator=g)
    return x.mul_(gain.view(b, 1, 1, 1)).clamp_(0.0, 1.0)


class Timer:
    """Accumulates wall time per phase when enabled; a no-op otherwise."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.ms = {}
        self.last = time.perf_counter()

    def start(self):
        self.last = time.perf_counter()

    def lap(self, phase):
        if self.enabled:
            now = time.perf_counter()
            self.ms[phase] = self.ms.get(phase, 0.0) + (now - self.last) * 1e3
            self.last = now


class RiskTask:
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        # log1p of log-normal amounts: values around 8 +- 2, as the synthetic data.
        self.numeric = torch.randn(n, RISK_NUMERIC, generator=g) * 2 + 8
        self.categorical = torch.stack(
            [torch.randint(0, b, (n,), generator=g) for b in RISK_BUCKETS], 1
        )
        self.labels = (torch.rand(n, generator=g) < 0.05).to(torch.float32)

    def model(self, n):
        torch.manual_seed(1)
        model = RiskMlp(RISK_NUMERIC, RISK_BUCKETS)
        numeric = self.numeric[:n]
        with torch.no_grad():
            model.standardize.running_mean.copy_(numeric.mean(0))
            model.standardize.running_var.copy_(numeric.var(0, unbiased=True))
        positives = float(self.labels[:n].sum())
        pos_weight = min(((n - positives) / max(positives, 1.0)) ** 0.5, 30.0)
        self.pos_weight = torch.tensor([pos_weight])
        return model

    def step(self, model, index, timer):
        x_num = self.numeric[index]
        x_cat = self.categorical[index]
        y = self.labels[index]
        timer.lap("gather")
        logits = model(x_num, x_cat)
        timer.lap("forward")
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=self.pos_weight)
        timer.lap("loss")
        return loss


class XrayTask:
    def __init__(self, n, seed, augmented):
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(-32768, 32768, (n, 1, 64, 64), generator=g, dtype=torch.int16)
        # 70 % clear, 10 % of each threat class.
        u = torch.rand(n, generator=g)
        self.labels = torch.bucketize(u, torch.tensor([0.7, 0.8, 0.9]))
        self.augmented = augmented
        self.augment_generator = torch.Generator().manual_seed(seed + 1)

    def model(self, n):
        torch.manual_seed(1)
        model = XrayCnn([16, 32, 64], 1, 64, 128, XRAY_CLASSES, 0.0, 0.75, 0.3)
        counts = torch.bincount(self.labels[:n], minlength=XRAY_CLASSES).to(torch.float64)
        most = counts.max()
        weights = torch.where(counts > 0, (most / counts.clamp(min=1)).sqrt().clamp(max=30.0), 1.0)
        self.class_weights = weights.to(torch.float32)
        return model

    def step(self, model, index, timer):
        raw = self.images[index]
        y = self.labels[index]
        timer.lap("gather")
        x = unit_images(raw)
        timer.lap("to_float")
        if self.augmented:
            x = augment(x, self.augment_generator)
            timer.lap("augment")
        logits = model(x)
        timer.lap("forward")
        loss = F.cross_entropy(logits, y, weight=self.class_weights, reduction="sum") / len(index)
        timer.lap("loss")
        return loss


def train_epoch(task, n, batch, seed, timer):
    """One epoch over the first n examples with a fresh model and Adam; seconds."""
    model = task.model(n)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    order = torch.randperm(n, generator=shuffle)
    loss_sum = 0.0
    for first in range(0, n, batch):
        timer.start()
        index = order[first : first + batch]
        optimizer.zero_grad()
        timer.lap("zero_grad")
        loss = task.step(model, index, timer)
        value = loss.item()
        timer.lap("item")
        if value != value:
            raise RuntimeError(f"loss is nan at step {first // batch + 1}")
        loss.backward()
        timer.lap("backward")
        optimizer.step()
        timer.lap("step")
        loss_sum += value * len(index)
    return time.perf_counter() - start


def mapped_blas():
    """The BLAS and LAPACK libraries mapped into this process, as the C++ side lists them."""
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            slash = line.find("/")
            path = line[slash:].strip() if slash >= 0 else ""
            if ("blas" in path or "lapack" in path) and path not in found:
                found.append(path)
    return ", ".join(found) if found else "none found"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=("risk", "xray"), required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-samples", type=int, default=0)
    parser.add_argument("--profile-samples", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    n = max(args.samples, args.warmup_samples, args.profile_samples)
    if args.model == "risk":
        task = RiskTask(n, args.seed)
    else:
        task = XrayTask(n, args.seed, args.augment)

    off = Timer(False)
    if args.warmup_samples > 0:
        train_epoch(task, args.warmup_samples, args.batch, args.seed, off)
    seconds = [train_epoch(task, args.samples, args.batch, args.seed, off) for _ in range(args.repeats)]
    rates = [args.samples / s for s in seconds]
    report = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": mapped_blas(),
        "samples": args.samples,
        "seconds": seconds,
        "samples_per_s": rates,
        "median_samples_per_s": statistics.median(rates),
    }
    if args.profile_samples > 0:
        timer = Timer(True)
        total = train_epoch(task, args.profile_samples, args.batch, args.seed, timer)
        steps = (args.profile_samples + args.batch - 1) // args.batch
        report["profile_steps"] = steps
        report["profile_ms_per_step"] = {k: v / steps for k, v in timer.ms.items()}
        report["profile_total_ms_per_step"] = total * 1e3 / steps
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
