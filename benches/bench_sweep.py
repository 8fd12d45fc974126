"""Benchmark: build every zoo network as ONNX, count it, and sweep the whole zoo over 1,000 ridge points.

    python benches/bench_sweep.py [--repeats 7]

Prints medians and spreads (p10-p90): the machine is shared and noisy. Aim: the sweep of the whole zoo
over 1,000 ridge points (from counted tables) well under a second.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _timing import summary, timed

import roofline
from roofline import zoo
from roofline.analysis.sweep import sweep


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    names = zoo.list_models()
    models = {n: zoo.build(n) for n in names}
    nodes = sum(len(m.graph.node) for m in models.values())
    print(f"zoo: {len(names)} networks, {nodes} ONNX nodes in all; {args.repeats} repeats")
    build = timed(lambda: [zoo.build(n) for n in names], args.repeats)
    print(f"build every zoo network (ONNX, checked)      {summary(build)}")
    tables = {}

    def count_all():
        for n, m in models.items():
            tables[n] = roofline.count(m, weight_dtype="int8", activation_dtype="int8", fuse="runtime")

    count = timed(count_all, args.repeats)
    print(f"count every zoo network (fused, int8)        {summary(count)}")
    rps = np.linspace(0.0, 500.0, 1000)
    swept = timed(lambda: sweep(tables, rps, reference="mobilenet_v2"), args.repeats)
    print(f"sweep the zoo over 1,000 ridge points         {summary(swept)}  (aim: well under 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
