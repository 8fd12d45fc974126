"""Where onnxruntime changes tensor layout inside a network (pure function of the graph).

At optimisation level "all" on x86, onnxruntime runs convolutions in a blocked NCHWc layout and
inserts a ``ReorderInput`` where an NCHW tensor enters a convolution and a ``ReorderOutput`` where an
NCHWc tensor leaves for an op that has no NCHWc kernel. A single-layer kernel pays both around every
convolution; a network pays them only at these boundaries, which this module finds.

The NCHWc block is the machine's: onnxruntime's MLAS picks it when it loads (``MlasNchwcGetBlockSize``,
set in ``onnxruntime/core/mlas/lib/platform.cpp``): 16 floats on a CPU with AVX-512F (and an OS that saves
its registers), 8 otherwise (AVX2 and older x86). :func:`nchwc_block` reads the CPU's flags from
``/proc/cpuinfo`` once (8 where it cannot). Which ops keep a blocked tensor blocked is an op trait
(``layout="passthrough"``, declared with the op's counting rule in ``roofline.ops``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from roofline.ir import Graph
from roofline.ops import ops_with

__all__ = ["Reorder", "reorders", "nchwc_block", "block_for_flags", "AVX2_BLOCK", "AVX512_BLOCK"]

#: channels per NCHWc block with AVX2 (8 floats in a 256-bit register); MLAS's x86 default
AVX2_BLOCK = 8
#: channels per NCHWc block with AVX-512F (16 floats in a 512-bit register)
AVX512_BLOCK = 16


@dataclass(frozen=True)
class Reorder:
    """One layout conversion: the tensor, its direction ("in" = to NCHWc, "out" = back), its size."""

    tensor: str
    direction: str
    numel: int


def block_for_flags(cpuinfo: str) -> int:
    """The NCHWc block MLAS picks on a CPU described by ``cpuinfo`` (the text of ``/proc/cpuinfo``):
    AVX512_BLOCK when its ``flags`` list ``avx512f``, else AVX2_BLOCK."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return AVX512_BLOCK if "avx512f" in value.split() else AVX2_BLOCK
    return AVX2_BLOCK


@functools.cache
def nchwc_block() -> int:
    """onnxruntime's NCHWc block on this machine (MlasNchwcGetBlockSize): 16 floats with AVX-512F, else 8
    (also where ``/proc/cpuinfo`` cannot be read). Read once, on first use."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return block_for_flags(f.read())
    except OSError:
        return AVX2_BLOCK


#: a blocked convolution's channels must be a multiple of this (it pads them to whole blocks)
CHANNEL_ALIGNMENT = 4


def _conv_channels(node) -> tuple[int, int, int] | None:
    x, w = node.inputs[0], node.inputs[1] if len(node.inputs) > 1 else None
    if node.op_type != "Conv" or x is None or x.shape is None or len(x.shape) != 4:
        return None
    cout = w.shape[0] if w is not None and w.shape else x.shape[1]
    return x.shape[1], cout, node.attr("group", 1)


def _native(node, block: int) -> bool:
    """A convolution onnxruntime runs in NCHWc (its output blocked): ungrouped with aligned or narrow
    input channels, depthwise with aligned channels, or grouped with whole blocks per group."""
    channels = _conv_channels(node)
    if channels is None:
        return False
    cin, cout, group = channels
    if group == 1:
        return cin < block or cin % CHANNEL_ALIGNMENT == 0
    if group == cin == cout:  # depthwise
        return cin % CHANNEL_ALIGNMENT == 0
    return (cin // group) % block == 0 and (cout // group) % block == 0


def _narrow(node, block: int) -> bool:
    """A blocked convolution with fewer input channels than a block: it reads its input as NCHW."""
    channels = _conv_channels(node)
    return channels is not None and channels[2] == 1 and channels[0] < block


def reorders(graph: Graph, table: pd.DataFrame, block: int | None = None) -> list[Reorder]:
    """The layout conversions onnxruntime inserts into ``graph`` (layers as in ``count(fuse="runtime")``),
    with NCHWc blocks of ``block`` channels (default: this machine's, :func:`nchwc_block`)."""
    block = nchwc_block() if block is None else block
    passthrough = ops_with(layout="passthrough")
    index = {n.name: i for i, n in enumerate(graph.nodes)}
    layer_of = {index[name]: k for k, names in enumerate(table["nodes"]) for name in names}
    producer = {t.name: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    blocked: set[str] = set()  # tensors onnxruntime holds in NCHWc
    native_layers, blocked_layers, nchw_readers = set(), set(), set()
    for k, names in enumerate(table["nodes"]):
        anchor = graph.nodes[index[names[0]]]
        acts = [t for n in names for t in graph.nodes[index[n]].inputs
                if t is not None and not t.const and producer.get(t.name) not in {index[m] for m in names}]  # fmt: skip
        if _native(anchor, block):
            native_layers.add(k)
            if _narrow(anchor, block):
                nchw_readers.add(k)
            outs = True
        elif anchor.op_type in passthrough and acts and all(t.name in blocked for t in acts):
            outs = anchor.op_type != "Concat" or all(t.shape[1] % block == 0 for t in acts)
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
