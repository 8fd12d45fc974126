"""Benchmark: candidate evaluations per second, and search wall time for a fixed budget.

    python benches/bench_search.py [--candidates 2000] [--repeats 5] [--budget 1000]

1. Candidate-device latencies per second of the fast evaluator (analytical per-layer formulas, blocks
   cached) on the UIB space, for every built-in device with an int8 roofline at once: cold (empty
   caches), fresh candidates once a first sample's blocks are cached (what a long search sees), and
   warm (the same candidates again). Side by side, the baseline it replaces: build each candidate as
   ONNX and ``roofline.predict`` it (the same numbers, tested equal), and the ratio.
2. Wall time of each strategy for a fixed budget on the UIB space, two devices (the MobileNetV4
   paper's low and high ridge points), MnasNet reward with the accuracy proxy.

Medians and p10-p90 over repeats: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from roofline.devices import PAPER_LOW_AND_HIGH_RIDGE_DEVICES, list_devices, load_device
from roofline.devices.simulate import predict
from roofline.search import search
from roofline.search.fasteval import Evaluator
from roofline.search.objectives import Reward
from roofline.search.space import ScalingSpace, UibSpace
from roofline.zoo.blocks import block_layers, expanded
from roofline.zoo.builder import build_network


def spread(values) -> str:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"median {p50:,.4g} (p10 {p10:,.4g}, p90 {p90:,.4g})"


def rates(args, devices) -> float:
    space = UibSpace()
    n = args.candidates * len(devices)
    cold, fresh, warm = [], [], []
    for r in range(args.repeats):
        block_layers.cache_clear(), expanded.cache_clear()  # really cold: formulas and spec parsing too
        ev = Evaluator(devices, precision="int8")
        first = space.sample(args.candidates, seed=100 + r)
        t = time.perf_counter()
        ev.latency(first)
        cold.append(n / (time.perf_counter() - t))
        more = space.sample(args.candidates, seed=200 + r)
        t = time.perf_counter()
        ev.latency(more)
        fresh.append(n / (time.perf_counter() - t))
        t = time.perf_counter()
        ev.latency(first)
        warm.append(n / (time.perf_counter() - t))
    base = []
    for cand in space.sample(args.baseline, seed=300):
        t = time.perf_counter()
        predict(build_network(cand.spec, cand.resolution), devices, precision="int8")
        base.append(len(devices) / (time.perf_counter() - t))
    print(f"{len(devices)} int8 devices; {args.candidates} candidates per repeat, {args.repeats} repeats "
          "(candidate-device latencies per second; target 10,000 on one core)")  # fmt: skip
    for label, values in (("cold ", cold), ("fresh", fresh), ("warm ", warm)):
        print(f"  fast evaluator, {label}: {spread(values)}  = {np.median(values) / np.median(base):,.0f}x baseline")
    print(f"  baseline (build ONNX + predict), {args.baseline} candidates: {spread(base)}")
    return float(np.median(fresh))


def wall_times(args) -> None:
    devices = list(PAPER_LOW_AND_HIGH_RIDGE_DEVICES)
    print(f"\nsearch wall time, budget {args.budget}, devices {' + '.join(devices)}, {args.repeats} seeds:")
    for strategy in ("random", "evolution", "nsga2", "nsga3", "autoslim", "tinynets"):
        space = UibSpace()
        if strategy == "tinynets":  # a scaling strategy: MobileNetV2 at 12 widths, 9 depths, 11 resolutions
            widths, depths = tuple(np.linspace(0.35, 1.5, 12).round(3)), tuple(np.linspace(0.5, 1.5, 9).round(3))
            space = ScalingSpace("mobilenet_v2", widths=widths, depths=depths, resolutions=tuple(range(96, 257, 16)))
        seconds, counts = [], []
        for seed in range(args.repeats):
            reward = Reward(Evaluator(devices, precision="int8"), [2.5e8, 3.0e9])  # fresh caches: cold start
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = search(space, reward, strategy=strategy, budget=args.budget, seed=seed)
            seconds.append(time.perf_counter() - t)
            counts.append(len(df))
        rate = np.median(counts) / np.median(seconds)
        name = f"{strategy} ({type(space).__name__})"
        print(f"  {name:28s} {spread(seconds)} s for {int(np.median(counts))} candidates "
              f"({rate:,.0f} candidates/s)")  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", type=int, default=20, help="candidates for the build-and-predict baseline")
    ap.add_argument("--budget", type=int, default=1000)
    args = ap.parse_args(argv)
    devices = [d for d in list_devices() if "int8" in load_device(d).precisions]
    fresh = rates(args, devices)
    wall_times(args)
    return 0 if fresh >= 10_000 else 1


if __name__ == "__main__":
    sys.exit(main())
