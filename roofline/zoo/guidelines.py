"""ShuffleNet V2's four guideline micro-benchmarks (Ma et al., ECCV 2018, arXiv:1807.11164, Sec. 2,
Tables 1-4) as ONNX networks, and the speeds the paper reports for them.

Every network takes a 56 x 56 input and stacks one building block 10 times (Sec. 2; Table 3's caption
gives the 56 x 56):

- ``G1`` equal channel width: two 1x1 convolutions per block, c1 -> c2 then c2 -> c1, four c1:c2 ratios
  at (about) equal MACs (Table 1).
- ``G2`` group convolution: one 1x1 convolution c -> c with g groups per block, c grown with g to keep
  the MACs (Table 2).
- ``G3`` fragmentation: one to four 1x1 convolutions per block, in series (each of width c / sqrt(k),
  the MACs of the 1-fragment block) or in parallel (k branches on the block's input, c -> c / k each,
  joined by a concat: the appendix figure as we read it, Inception-style) (Table 3).
- ``G4`` element-wise operations: ResNet's bottleneck (1x1 c -> c/4, 3x3, 1x1 c/4 -> c) with its ReLUs
  and its shortcut each kept or removed (Table 4; c / 4 is ResNet's bottleneck ratio, which matches the
  paper's ARM speeds at the throughput its other tables imply).

The convolutions are bare (no BatchNorm, no bias): the paper times convolutions with tensor fusion on.
Widths are the paper's for the platform (``"arm"``: Snapdragon 810, one thread, images/s; ``"gpu"``:
GTX 1080Ti with cuDNN 7, batches/s), times the size multiplier (x1, x2, x4: ``size`` 0, 1, 2). One
width the paper gives cannot be built exactly: c = 180 with 8 groups (ARM, x1) is not divisible by 8;
184 is used (MACs 3% over the other rows').
"""

from __future__ import annotations

import math

import onnx
import pandas as pd

from roofline.errors import InvalidParameterError, check_choice
from roofline.zoo.builder import GraphBuilder

__all__ = ["GUIDELINES", "PLATFORMS", "SOURCE", "guideline_networks", "paper_speeds"]

SOURCE = "Ma et al., ShuffleNet V2, ECCV 2018 (arXiv:1807.11164), Sec. 2, Tables 1-4"
GUIDELINES = ("G1", "G2", "G3", "G4")
PLATFORMS = ("arm", "gpu")
SIZES = (1, 2, 4)  # the tables' x1 / x2 / x4 columns (G3 and G4 give them as c = base, 2 base, 4 base)
RESOLUTION, REPEATS = 56, 10

# guideline -> variant -> ((widths at x1 on ARM), (on GPU), ARM images/s at x1/x2/x4, GPU batches/s at x1/x2/x4)
_TABLES = {
    "G1": {
        "1:1": ((32, 32), (128, 128), (76.2, 21.7, 5.3), (1480, 723, 232)),
        "1:2": ((22, 44), (90, 180), (72.9, 20.5, 5.1), (1296, 586, 206)),
        "1:6": ((13, 78), (52, 312), (69.1, 17.9, 4.6), (876, 489, 189)),
        "1:12": ((9, 108), (36, 432), (57.6, 15.1, 4.4), (748, 392, 163)),
    },
    "G2": {
        "g=1": ((64,), (128,), (40.0, 10.2, 2.3), (2451, 1289, 437)),
        "g=2": ((90,), (180,), (35.0, 9.5, 2.2), (1725, 873, 341)),
        "g=4": ((128,), (256,), (32.9, 8.7, 2.1), (1026, 644, 338)),
        "g=8": ((180,), (360,), (27.8, 7.5, 1.8), (634, 445, 230)),
    },
    "G3": {
        "1-fragment": ((64,), (128,), (40.2, 10.1, 2.3), (2446, 1274, 434)),
        "2-fragment-series": ((64,), (128,), (38.6, 10.1, 2.2), (1790, 909, 336)),
        "4-fragment-series": ((64,), (128,), (38.4, 10.1, 2.3), (752, 745, 349)),
        "2-fragment-parallel": ((64,), (128,), (33.4, 9.1, 2.2), (1537, 803, 320)),
        "4-fragment-parallel": ((64,), (128,), (35.0, 8.4, 2.1), (691, 572, 292)),
    },
    "G4": {
        "ReLU + shortcut": ((32,), (32,), (56.7, 16.9, 5.0), (2427, 2066, 1436)),
        "shortcut only": ((32,), (32,), (61.9, 18.8, 5.2), (2647, 2256, 1735)),
        "ReLU only": ((32,), (32,), (57.3, 18.2, 5.1), (2672, 2121, 1458)),
        "neither": ((32,), (32,), (66.3, 20.2, 5.4), (2842, 2376, 1782)),
    },
}


def paper_speeds() -> pd.DataFrame:
    """The paper's Tables 1-4, one row per guideline, variant, platform and size: columns guideline,
    variant, platform, size (1, 2, 4), widths (at that size), speed_per_s, unit, source."""
    rows = []
    for guideline, variants in _TABLES.items():
        for variant, (arm_w, gpu_w, arm, gpu) in variants.items():
            for platform, widths, speeds, unit in (("arm", arm_w, arm, "images/s"), ("gpu", gpu_w, gpu, "batches/s")):
                for size, speed in zip(SIZES, speeds):
                    rows.append({"guideline": guideline, "variant": variant, "platform": platform, "size": size,
                                 "widths": tuple(w * size for w in widths), "speed_per_s": float(speed),
                                 "unit": unit, "source": SOURCE})  # fmt: skip
    return pd.DataFrame(rows)


def guideline_networks(guideline: str, platform: str = "arm", size: int = 1, weights: str = "light"
                       ) -> dict[str, onnx.ModelProto]:  # fmt: skip
    """The paper's micro-benchmark networks for ``guideline`` (``"G1"``..``"G4"``), at the widths it
    used on ``platform`` (``"arm"`` or ``"gpu"``) times ``size`` (1, 2 or 4): variant label -> model."""
    check_choice(guideline, GUIDELINES, "guideline")
    check_choice(platform, PLATFORMS, "platform")
    if size not in SIZES:
        raise InvalidParameterError(f"size must be one of {SIZES} (the paper's x1, x2, x4), got {size!r}")
    out = {}
    for variant, (arm_w, gpu_w, _, _) in _TABLES[guideline].items():
        widths = tuple(w * size for w in (arm_w if platform == "arm" else gpu_w))
        cin, block = _BLOCKS[guideline](variant, widths)
        b = GraphBuilder(f"{guideline} {variant}", (1, cin, RESOLUTION, RESOLUTION), weights=weights)
        x = b.input
        for _ in range(REPEATS):
            x = block(b, x)
        out[variant] = b.model(x)
    return out


def _conv(b: GraphBuilder, x: str, cout: int, k: int = 1, groups: int = 1, relu: bool = False) -> str:
    return b.conv(x, cout, k=k, groups=groups, bn=False, act="relu" if relu else None)


# each guideline: (variant, widths) -> (the network's input channels, the block: (builder, x) -> y)
def _g1(variant, widths):
    c1, c2 = widths
    return c1, lambda b, x: _conv(b, _conv(b, x, c2), c1)


def _g2(variant, widths):
    g = int(variant.split("=")[1])
    c = widths[0] + (-widths[0]) % g  # the next multiple of g (180 with g = 8 -> 184)
    return c, lambda b, x: _conv(b, x, c, groups=g)


def _g3(variant, widths):
    c, k = widths[0], int(variant[0])
    if k == 1 or variant.endswith("series"):
        w = round(c / math.sqrt(k))  # k convolutions of w x w: the MACs of one c x c

        def series(b, x):
            for _ in range(k):
                x = _conv(b, x, w)
            return x

        return w, series

    def parallel(b, x):
        branches = [_conv(b, x, c // k) for _ in range(k)]
        n, _, h, w = b.shapes[branches[0]]
        return b.node("Concat", branches, (n, c, h, w), axis=1)

    return c, parallel


def _g4(variant, widths):
    c = widths[0]
    relu, shortcut = variant in ("ReLU + shortcut", "ReLU only"), variant in ("ReLU + shortcut", "shortcut only")

    def bottleneck(b, x):
        y = _conv(b, _conv(b, _conv(b, x, c // 4, relu=relu), c // 4, k=3, relu=relu), c)
        if shortcut:
            y = b.add(y, x)
        return b.act(y, "relu") if relu else y

    return c, bottleneck


_BLOCKS = {"G1": _g1, "G2": _g2, "G3": _g3, "G4": _g4}
