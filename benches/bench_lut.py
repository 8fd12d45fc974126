"""Benchmark: build a latency LUT of every distinct kernel of the zoo on this machine.

    python benches/bench_lut.py [--runs 30] [--out /tmp/zoo_lut.csv] [--models mnv4_*] [--style structured]

Reports the build's wall time and the measurement spread (per-kernel CV, share of noisy rows).
A second run on the same --out resumes: it measures only what is missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roofline import zoo
from roofline.profilers.build import build_lut
from roofline.profilers.kernels import kernels_of


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="timed runs per kernel (after 10 warm-up runs)")
    ap.add_argument("--models", default="*", help="zoo pattern (default: every network)")
    ap.add_argument("--out", help="LUT path (default: a temporary file)")
    ap.add_argument("--style", choices=("generic", "structured"), default="generic",
                    help="generic: every layer as in the model (as validate); structured: conv/FC only")  # fmt: skip
    args = ap.parse_args(argv)
    keys: dict[str, str] = {}
    for name in zoo.list_models(args.models):
        keys.update(dict.fromkeys(kernels_of(zoo.build(name), style=args.style), name))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "zoo_lut.csv"
    print(f"{len(keys)} distinct {args.style} kernels in {len(zoo.list_models(args.models))} zoo networks -> {out}")
    t = time.perf_counter()
    lut = build_lut(list(keys), out, runs=args.runs, warmup=10)
    table = lut.table()
    wall = time.perf_counter() - t
    cv = table.cv.to_numpy()
    print(f"LUT build: {wall:.1f} s wall, {wall / max(1, len(table)) * 1e3:.0f} ms per kernel ({len(table)} rows)")
    p10, p50, p90 = np.percentile(cv, [10, 50, 90])
    print(
        f"spread: per-kernel CV median {p50:.3f} (p10 {p10:.3f}, p90 {p90:.3f}); "
        f"noisy rows ((p90 - p10) / median > 0.25): {table.noisy.mean():.0%}"
    )
    print(lut.drift.report())
    print(f"kernel latency: median {table.latency_ms.median():.3f} ms, total {table.latency_ms.sum():.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
