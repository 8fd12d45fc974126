"""ONNX outputs whose size depends on values (``NonZero``, ``NonMaxSuppression``, ``TopK`` with a run-time
k, ``Unique``, ``Compress``, a ``Slice`` with run-time bounds) get the largest size the static shapes allow.
Every tensor computed from such a size is *tainted* (``FlowState.taint``), and the nodes that read or write
one are marked ``bound="upper"``.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto

from roofline.ir.onnx_flow import FlowState, node_attr

__all__ = ["bound_sizes"]


def _partial_shapes(proto: onnx.ModelProto) -> dict[str, tuple[list[int | None], int]]:
    out: dict[str, tuple[list[int | None], int]] = {}
    g = proto.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]
            if vi.name not in out or all(d is not None for d in dims):
                out[vi.name] = (dims, tt.elem_type)
        elif vi.name not in out and vi.type.HasField("tensor_type"):
            out[vi.name] = (None, tt.elem_type)  # type: ignore[assignment]
    return out


def _bounded(node: onnx.NodeProto, shapes, partial, value_of) -> list[tuple[int, ...] | None]:
    """Largest static shape of each output of a data-dependent node (None where unknown)."""
    op = node.op_type
    x = shapes.get(node.input[0]) if node.input else None
    if x is None:
        return [None] * len(node.output)
    numel = math.prod(x)
    if op == "NonZero":
        return [(len(x), numel)]
    if op == "NonMaxSuppression":
        scores = shapes.get(node.input[1]) if len(node.input) > 1 else None
        if len(x) != 3 or scores is None or len(scores) != 3:
            return [None]
        per_class = x[1]
        if len(node.input) > 2 and node.input[2]:
            v = value_of(node.input[2])
            if v is not None and np.asarray(v).size:
                per_class = min(per_class, max(int(np.asarray(v).reshape(-1)[0]), 1))
        return [(x[0] * scores[1] * max(per_class, 1), 3)]
    axis = node_attr(node, "axis")
    if op == "Unique" and axis is None or op == "Compress" and axis is None:
        return [(numel,)] + [(numel,)] * (len(node.output) - 1)
    if op in ("Unique", "Compress"):
        a = int(axis) % len(x) if x else 0
        first = tuple(x)
        return [first] + [(x[a],)] * (len(node.output) - 1)
    # TopK with a run-time k, Slice with run-time bounds: never larger than the input along any axis
    out = []
    for o in node.output:
        dims = partial.get(o, (None, 0))[0]
        if dims is None or len(dims) != len(x):
            dims = list(x) if op in ("TopK", "Slice") else None
        out.append(None if dims is None else tuple(d if d is not None else x[i] for i, d in enumerate(dims)))
    return out


_DATA_DEPENDENT = {"NonZero", "NonMaxSuppression", "TopK", "Unique", "Compress", "Slice"}
_INDEX_OUTPUTS = {"NonZero": {0}, "NonMaxSuppression": {0}, "TopK": {1}, "Unique": {1, 2, 3}}


def bound_sizes(proto: onnx.ModelProto, infos, const: set[str], state: FlowState, value_of) -> bool:
    """Give each data-dependent output without a static shape its largest static shape; True if any."""
    partial = _partial_shapes(proto)
    shapes = {k: v[0] for k, v in infos.items() if v[0] is not None}
    changed = False
    for node in proto.graph.node:
        if node.op_type not in _DATA_DEPENDENT or node.domain not in ("", "ai.onnx") or not node.output:
            continue
        if all(o in const for o in node.output if o):
            continue
        todo = [k for k, o in enumerate(node.output) if o and infos.get(o, (None,))[0] is None]
        if not todo:
            continue
        bounds = _bounded(node, shapes, partial, value_of)
        done = False
        for k in todo:
            shape = bounds[k] if k < len(bounds) else None
            if shape is None:
                continue
            o = node.output[k]
            elem = partial.get(o, (None, 0))[1] or infos.get(o, (None, 0))[1]
            if not elem:
                elem = TensorProto.INT64 if k in _INDEX_OUTPUTS.get(node.op_type, ()) else infos[node.input[0]][1]
            state.overrides[o] = (tuple(int(d) for d in shape), elem)
            state.taint[o] = "upper"
            done = True
        if done:
            state.sources.append(("upper", node.op_type, node.output[0], node.name))
            changed = True
    return changed
