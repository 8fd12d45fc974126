"""Where onnxruntime changes tensor layout inside a network (pure function of the graph).

At optimisation level "all" on x86, onnxruntime runs convolutions in a blocked NCHWc layout and
inserts a ``ReorderInput`` where an NCHW tensor enters a convolution and a ``ReorderOutput`` where an
NCHWc tensor leaves for an op that has no NCHWc kernel. A single-layer kernel pays both around every
convolution; a network pays them only at these boundaries, which this module finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from roofline.graph import Graph

__all__ = ["Reorder", "reorders", "BLOCK_CHANNELS"]

#: channels per NCHWc block on AVX2 machines (8 floats in a 256-bit register)
BLOCK_CHANNELS = 8
# ops that keep an NCHWc tensor in NCHWc when all their activation inputs are NCHWc
_PASSTHROUGH = {
    "Add", "Sum", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Relu", "Sigmoid",
    "Tanh", "LeakyRelu", "BatchNormalization", "Resize", "Upsample",
}  # fmt: skip


@dataclass(frozen=True)
class Reorder:
    """One layout conversion: the tensor, its direction ("in" = to NCHWc, "out" = back), its size."""

    tensor: str
    direction: str
    numel: int


def _native(node) -> bool:
    x = node.inputs[0]
    if node.op_type != "Conv" or x is None or x.shape is None or len(x.shape) != 4:
        return False
    group = node.attr("group", 1)
    return group == 1 or x.shape[1] % BLOCK_CHANNELS == 0


def reorders(graph: Graph, table: pd.DataFrame) -> list[Reorder]:
    """The layout conversions onnxruntime inserts into ``graph`` (layers as in ``count(fuse="runtime")``)."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    layer_of = {index[name]: k for k, names in enumerate(table["nodes"]) for name in names}
    producer = {t.name: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    blocked: set[str] = set()  # tensors onnxruntime holds in NCHWc
    native_layers, blocked_layers = set(), set()
    for k, names in enumerate(table["nodes"]):
        anchor = graph.nodes[index[names[0]]]
        acts = [t for n in names for t in graph.nodes[index[n]].inputs
                if t is not None and not t.const and producer.get(t.name) not in {index[m] for m in names}]  # fmt: skip
        if _native(anchor):
            native_layers.add(k)
            outs = True
        elif anchor.op_type in _PASSTHROUGH and acts and all(t.name in blocked for t in acts):
            outs = anchor.op_type != "Concat" or all(t.shape[1] % BLOCK_CHANNELS == 0 for t in acts)
        else:
            outs = False
        if outs:
            blocked_layers.add(k)
            last = graph.nodes[index[names[-1]]]
            blocked.update(t.name for t in last.outputs)
    out: list[Reorder] = []
    graph_outputs = set(graph.outputs)
    for name in sorted(blocked, key=lambda t: producer.get(t, -1)):
        readers = graph.consumers.get(name, [])
        leaves = name in graph_outputs or any(layer_of.get(i) not in blocked_layers for i in readers)
        if leaves:
            out.append(Reorder(name, "out", graph.tensors[name].numel))
    entering = {
        t.name
        for k in native_layers
        for t in [graph.nodes[index[table["nodes"].iloc[k][0]]].inputs[0]]
        if t.name not in blocked and t.shape[1] % BLOCK_CHANNELS == 0  # a narrow input (RGB) is read as NCHW
    }
    out.extend(Reorder(name, "in", graph.tensors[name].numel) for name in sorted(entering))
    return out
