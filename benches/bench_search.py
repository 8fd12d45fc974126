"""Benchmark: candidate-device latencies per second of the fast evaluator on the UIB search space.

    python benches/bench_search.py [--candidates 2000] [--repeats 5]

Reports the cold rate (every distinct block built and counted once), the warm rate (the same
candidates again: every block cached) and the rate on fresh candidates once the cache holds a first
sample's blocks (what a long search sees), medians and p10-p90 over repeats, for every built-in
device with an int8 roofline at once.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from roofline.devices import list_devices, load_device
from roofline.fasteval import Evaluator
from roofline.space import UibSpace


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    devices = [d for d in list_devices() if "int8" in load_device(d).precisions]
    space = UibSpace()
    ev = Evaluator(devices, precision="int8")
    t = time.perf_counter()
    first = space.sample(args.candidates, seed=0)
    ev.latency(first)
    cold = time.perf_counter() - t
    n = args.candidates * len(devices)
    print(f"{len(devices)} devices, {args.candidates} candidates: cold {n / cold:,.0f} latencies/s "
          f"({cold:.1f} s, {len(ev._cache)} distinct blocks counted)")  # fmt: skip
    fresh = [space.sample(args.candidates, seed=r + 1) for r in range(args.repeats)]
    for label, sets in (("warm", [first] * args.repeats), ("fresh", fresh)):
        rates = []
        for cands in sets:
            t = time.perf_counter()
            ev.latency(cands)
            rates.append(n / (time.perf_counter() - t))
        p10, p50, p90 = np.percentile(rates, [10, 50, 90])
        print(f"{label}: median {p50:,.0f} candidate-device latencies/s (p10 {p10:,.0f}, p90 {p90:,.0f}); "
              "target 10,000")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
