"""Benchmark: count + predict a ~1,000-node network, next to onnx-tool's profiler on the same file,
and one network over 1,000 ridge points.

    python benches/bench_count.py [--repeats 15] [--blocks 60]

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for onnx-tool. Prints medians and spreads
(p10-p90) of wall time; the machine is shared, so compare the ratio, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from _timing import summary, timed

import roofline
from roofline.zoo.builder import GraphBuilder


def big_network(blocks: int) -> onnx.ModelProto:
    """A MobileNetV3-style stack: inverted residuals with squeeze-excite and swish, ~16 nodes a block."""
    b = GraphBuilder("bench_net", (1, 3, 224, 224), weights="random", seed=0)
    x = b.conv(b.input, 16, k=3, stride=2, act="swish")
    c = 16
    for i in range(blocks):
        stride = 2 if i in (2, 6, 12, 24) else 1
        cout = min(16 + 8 * (i // 6), 96)
        y = b.conv(x, c * 3, act="swish")
        y = b.conv(y, c * 3, k=3, stride=stride, groups=c * 3, act="swish")
        g = b.global_pool(y)
        g = b.conv(g, max(8, c // 4), bias=True, bn=False, act="relu")
        g = b.conv(g, c * 3, bias=True, bn=False, act="hsigmoid")
        y = b.mul(y, g)
        y = b.conv(y, cout, act=None)
        x = b.add(x, y) if stride == 1 and c == cout else y
        c = cout
    x = b.conv(x, 1280, act="hswish")
    return b.model(b.gemm(b.flatten(b.global_pool(x)), 1000))


def onnx_tool_profile(path: str) -> None:
    import onnx_tool

    with contextlib.redirect_stdout(io.StringIO()):
        m = onnx_tool.Model(path)
        g = m.graph
        g.graph_reorder_nodes()
        g.shape_infer()
        g.profile()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--blocks", type=int, default=60, help="inverted-residual blocks (~16 nodes each)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench_net.onnx")
        onnx.save(big_network(args.blocks), path)
        nodes = len(onnx.load(path, load_external_data=False).graph.node)
        devices = roofline.list_devices()
        table = roofline.count(path, fuse="runtime")
        print(f"network: {nodes} ONNX nodes, {len(table)} fused layers, "
              f"{roofline.totals(table)['macs'] / 1e6:.0f} M MACs; {args.repeats} repeats")  # fmt: skip

        ours_count = timed(lambda: roofline.count(path), args.repeats)
        ours_predict = timed(lambda: roofline.predict(path, devices), args.repeats)
        print(f"roofline count (raw view)              {summary(ours_count)}")
        print(f"roofline predict ({len(devices)} devices, fused)    {summary(ours_predict)}")
        try:
            theirs = timed(lambda: onnx_tool_profile(path), args.repeats)
        except ImportError:
            print("onnx-tool not installed (the bench extra: pip install '.[bench]'): no comparison")
            theirs = None
        if theirs:
            print(f"onnx-tool load+shape_infer+profile     {summary(theirs)}")
            r1 = statistics.median(theirs) / statistics.median(ours_count)
            r2 = statistics.median(theirs) / statistics.median(ours_predict)
            print(f"ratio onnx-tool / roofline: count {r1:.2f}x, count+predict {r2:.2f}x (>1 means roofline is faster)")

        ridges = np.linspace(0, 500, 1000)
        sweep = timed(lambda: roofline.predict(table, ridge_points=ridges).totals, args.repeats * 3)
        print(f"1,000 ridge points (predict + totals)  {summary(sweep)}  (aim: < 10 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
