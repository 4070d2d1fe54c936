"""The NumPy reference of bench_aggregation, run by it as a subprocess.

FedAvg over the same updates as the C++ side (same deterministic values, the
same pool reused cyclically, the same sample counts), in three formulations:
  naive     acc += w * u                       (a temporary per update)
  out       np.multiply(u, w, out=tmp); np.add(acc, tmp, out=acc)
  chunked   the same in chunks of 2^16 values, so tmp stays in cache
each followed by acc *= 1 / total; acc += global. acc is zeroed (and touched)
before the clock starts, as FedAvg's running sum is. Best of the repeats.
Optionally np.median(stack, axis=0) over the n updates.

Prints one JSON object on stdout; writes the FedAvg result and the median as
raw float32 to the given directory for the C++ side to compare.

  numpy_fedavg.py --nodes N --params P --pool K --repeats R --out DIR [--median R2]
"""
import argparse
import json
import sys
import time

import numpy as np

CHUNK = 1 << 16


def values(key, params):
    """Update `key`'s P values in [-0.5, 0.5): bench_aggregation.cc's Values()."""
    x = np.arange(params, dtype=np.uint32)
    x *= np.uint32(0x9E3779B1)
    x += np.uint32(((key + 1) * 0x85EBCA77) & 0xFFFFFFFF)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x2C1B3C6D)
    x ^= x >> np.uint32(12)
    x >>= np.uint32(8)
    out = x.astype(np.float32)
    out *= np.float32(2.0**-24)
    out -= np.float32(0.5)
    return out


def sample_count(slot):
    """Node `slot`'s sample count: bench_aggregation.cc's SampleCount()."""
    return 50 + (slot * 7919) % 450


GLOBAL_KEY = 1_000_000


def fold_naive(acc, tmp, u, w):
    acc += w * u


def fold_out(acc, tmp, u, w):
    np.multiply(u, w, out=tmp)
    np.add(acc, tmp, out=acc)


def fold_chunked(acc, tmp, u, w):
    t = tmp[:CHUNK]
    for start in range(0, acc.size, CHUNK):
        end = min(start + CHUNK, acc.size)
        a = acc[start:end]
        tt = t[: end - start]
        np.multiply(u[start:end], w, out=tt)
        np.add(a, tt, out=a)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--params", type=int, required=True)
    parser.add_argument("--pool", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--median", type=int, default=0, help="median repeats; 0 = not run")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    n, p, k = args.nodes, args.params, args.pool

    pool = np.empty((k, p), dtype=np.float32)
    for key in range(k):
        pool[key] = values(key, p)
    glob = values(GLOBAL_KEY, p)
    weights = [np.float32(sample_count(slot)) for slot in range(n)]
    total = sum(sample_count(slot) for slot in range(n))
    inverse = np.float32(1.0 / total)

    acc = np.empty(p, dtype=np.float32)
    tmp = np.empty(p, dtype=np.float32)
    report = {"numpy": np.__version__, "fedavg_ms": {}}
    result = None
    for name, fold in (("naive", fold_naive), ("out", fold_out), ("chunked", fold_chunked)):
        best = float("inf")
        for _ in range(args.repeats):
            acc.fill(0)
            start = time.perf_counter()
            for slot in range(n):
                fold(acc, tmp, pool[slot % k], weights[slot])
            np.multiply(acc, inverse, out=acc)
            np.add(acc, glob, out=acc)
            best = min(best, time.perf_counter() - start)
        report["fedavg_ms"][name] = best * 1e3
        if result is None:
            result = acc.copy()
        elif not np.array_equal(result, acc):
            print(f"numpy_fedavg.py: formulation {name} differs from naive", file=sys.stderr)
            return 1
    result.tofile(f"{args.out}/fedavg.f32")
    del tmp, result

    if args.median > 0:
        stack = pool if k == n else pool[np.arange(n) % k]
        best = float("inf")
        for _ in range(args.median):
            start = time.perf_counter()
            median = np.median(stack, axis=0)
            best = min(best, time.perf_counter() - start)
        report["median_ms"] = best * 1e3
        median.astype(np.float32, copy=False).tofile(f"{args.out}/median.f32")
    json.dump(report, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
