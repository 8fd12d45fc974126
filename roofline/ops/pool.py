"""Pooling, reductions and resizing: 0 MACs (the window sums are not multiply-accumulates)."""

from __future__ import annotations

from roofline.ir import Node
from roofline.ops import Cost, cost, register_op

REDUCE = (
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin", "TopK",
)  # fmt: skip


@register_op("MaxPool", "AveragePool", absorbs="clamp", layout="passthrough")
@register_op("GlobalAveragePool", "GlobalMaxPool", layout="passthrough")
@register_op("LpPool", "GlobalLpPool")
def pool(node: Node) -> Cost:
    return cost(node, "pool")


@register_op(*REDUCE)
def reduce(node: Node) -> Cost:
    # input 1 (axes, or TopK's k) is metadata
    return cost(node, "reduce", data=[0])


@register_op("Resize", "Upsample", layout="passthrough")
def resize(node: Node) -> Cost:
    # roi, scales and sizes are metadata
    return cost(node, "resize", data=[0])


@register_op("GridSample")
def grid_sample(node: Node) -> Cost:
    # reads the input and the sampling grid whole, writes the output
    return cost(node, "resize")


@register_op("MaxUnpool")
def max_unpool(node: Node) -> Cost:
    # reads the pooled values and their indices whole, writes the (mostly zero) unpooled output whole;
    # input 2 (output_shape) is metadata
    return cost(node, "resize", data=[0, 1])
