"""Where onnxruntime changes tensor layout inside a network (pure function of the graph).

At optimisation level "all" on x86, onnxruntime runs convolutions in a blocked NCHWc layout and
inserts a ``ReorderInput`` where an NCHW tensor enters a convolution and a ``ReorderOutput`` where an
NCHWc tensor leaves for an op that has no NCHWc kernel. A single-layer kernel pays both around every
convolution; a network pays them only at these boundaries, which this module finds.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from roofline.ir import Graph

__all__ = ["Reorder", "reorders", "BLOCK_CHANNELS", "nchwc_block"]

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


def nchwc_block() -> int:
    """onnxruntime's NCHWc block on this machine (MlasNchwcGetBlockSize): 16 floats with AVX-512, else 8."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return 16 if " avx512f" in f.read() else BLOCK_CHANNELS
    except OSError:
        return BLOCK_CHANNELS


_BLOCK = nchwc_block()


#: a blocked convolution's channels must be a multiple of this (it pads them to whole blocks)
CHANNEL_ALIGNMENT = 4


def _conv_channels(node) -> tuple[int, int, int] | None:
    x, w = node.inputs[0], node.inputs[1] if len(node.inputs) > 1 else None
    if node.op_type != "Conv" or x is None or x.shape is None or len(x.shape) != 4:
        return None
    cout = w.shape[0] if w is not None and w.shape else x.shape[1]
    return x.shape[1], cout, node.attr("group", 1)


def _native(node) -> bool:
    """A convolution onnxruntime runs in NCHWc (its output blocked): ungrouped with aligned or narrow
    input channels, depthwise with aligned channels, or grouped with whole blocks per group."""
    channels = _conv_channels(node)
    if channels is None:
        return False
    cin, cout, group = channels
    if group == 1:
        return cin < _BLOCK or cin % CHANNEL_ALIGNMENT == 0
    if group == cin == cout:  # depthwise
        return cin % CHANNEL_ALIGNMENT == 0
    return (cin // group) % _BLOCK == 0 and (cout // group) % _BLOCK == 0


def _narrow(node) -> bool:
    """A blocked convolution with fewer input channels than a block: it reads its input as NCHW."""
    channels = _conv_channels(node)
    return channels is not None and channels[2] == 1 and channels[0] < _BLOCK


def reorders(graph: Graph, table: pd.DataFrame) -> list[Reorder]:
    """The layout conversions onnxruntime inserts into ``graph`` (layers as in ``count(fuse="runtime")``)."""
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    layer_of = {index[name]: k for k, names in enumerate(table["nodes"]) for name in names}
    producer = {t.name: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    blocked: set[str] = set()  # tensors onnxruntime holds in NCHWc
    native_layers, blocked_layers, nchw_readers = set(), set(), set()
    for k, names in enumerate(table["nodes"]):
        anchor = graph.nodes[index[names[0]]]
        acts = [t for n in names for t in graph.nodes[index[n]].inputs
                if t is not None and not t.const and producer.get(t.name) not in {index[m] for m in names}]  # fmt: skip
        if _native(anchor):
            native_layers.add(k)
            if _narrow(anchor):
                nchw_readers.add(k)
            outs = True
        elif anchor.op_type in _PASSTHROUGH and acts and all(t.name in blocked for t in acts):
            outs = anchor.op_type != "Concat" or all(t.shape[1] % _BLOCK == 0 for t in acts)
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
        leaves = name in graph_outputs or any(layer_of.get(i) not in blocked_layers or layer_of.get(i) in nchw_readers
                                              for i in readers)  # fmt: skip
        if leaves:
            out.append(Reorder(name, "out", graph.tensors[name].numel))
    entering = {
        t.name
        for k in native_layers - nchw_readers  # a narrow input (RGB) is read as NCHW
        for t in [graph.nodes[index[table["nodes"].iloc[k][0]]].inputs[0]]
        if t.name not in blocked
    }
    out.extend(Reorder(name, "in", graph.tensors[name].numel) for name in sorted(entering))
    return out
