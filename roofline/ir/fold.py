"""Constant folding of ONNX graphs: which tensors a runtime knows at load time, and the values of the small
ones, evaluated with onnx's reference runtime.

Tensors that a runtime computes once at load time (initializers, ``Constant`` nodes, ``Shape`` of a static
tensor, and anything computed only from those) are constant: weights, not activations. Their values are
evaluated only when small (shape arithmetic, axes, pads), never a weight.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper

from roofline.errors import ModelLoadError, ShapeError
from roofline.ir.checks import MAX_TENSOR_ELEMS
from roofline.ir.onnx_flow import CONTROL_FLOW, node_inputs

__all__ = ["MAX_FOLD_ELEMS", "const_outputs", "constant_values", "fold_constants"]

# nodes whose output depends only on the *shape* of their input, never on its values
_SHAPE_ONLY_OPS = {"Shape", "Size"}
# nodes that are never constant, whatever their inputs
_RANDOM_PREFIXES = ("Random", "Multinomial", "Bernoulli")
# the largest constant we evaluate while resolving shapes (elements)
MAX_FOLD_ELEMS = 1 << 16
# ops whose output can be far larger than their (small, constant) inputs: folded only when inference says
# the output is small, so that a corrupt shape never allocates terabytes
_GROWING_OPS = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "OneHot", "EyeLike"}


def const_outputs(proto: onnx.ModelProto, infos, weights: set[str]) -> set[str]:
    """Names of every tensor known at load time."""
    const = {t.name for t in proto.graph.initializer} | weights | {""}
    for node in proto.graph.node:
        if node.op_type in _SHAPE_ONLY_OPS:
            shape = infos.get(node.input[0], (None, 0))[0] if node.input else None
            is_const = shape is not None
        else:  # control flow is inlined, never folded whole (a constant Loop may run for ever)
            is_const = node.op_type not in CONTROL_FLOW and all(i in const for i in node_inputs(node))
        if is_const and node.domain in ("", "ai.onnx") and not node.op_type.startswith(_RANDOM_PREFIXES):
            const.update(node.output)
    return const


def _shape_value(node: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    if any(d < 0 or d > MAX_TENSOR_ELEMS for d in shape) or math.prod(shape) > MAX_TENSOR_ELEMS:
        raise ShapeError(f"{node.op_type} node {node.name!r} reads a tensor of absurd shape {shape}")
    arr = np.array(shape, dtype=np.int64)
    if node.op_type == "Size":
        return np.array(math.prod(shape), dtype=np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(arr))
    if not isinstance(start, int) or not isinstance(end, int):
        raise ModelLoadError(f"Shape node {node.name!r}: start and end must be integers, got {start!r}, {end!r}")
    return arr[start:end]


def _evaluate(nodes: list[onnx.NodeProto], values: dict[str, np.ndarray], proto: onnx.ModelProto) -> dict:
    """Run ``nodes`` (constant, in order) on ``values`` with onnx's reference runtime: one model for all of
    them, or node by node when one of them cannot run (it then stays unfolded)."""
    from onnx.reference import ReferenceEvaluator

    def run(group):
        needed = sorted({i for n in group for i in node_inputs(n) if i and i in values})
        graph = helper.make_graph(
            group,
            "fold",
            [
                helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(values[i].dtype), values[i].shape)
                for i in needed
            ],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for n in group for o in n.output if o],
        )
        model = helper.make_model(graph, opset_imports=proto.opset_import, ir_version=proto.ir_version)
        outs = [o for n in group for o in n.output if o]
        return dict(zip(outs, ReferenceEvaluator(model).run(None, {i: values[i] for i in needed})))

    try:
        return run(nodes)
    except Exception:  # noqa: BLE001 - some op the reference runtime cannot run: go node by node
        out: dict[str, np.ndarray] = {}
        for node in nodes:
            if all(i == "" or i in values or i in out for i in node.input):
                try:
                    out.update(run([node]) if not out else _evaluate([node], {**values, **out}, proto))
                except Exception:  # noqa: BLE001 - leave this node unfolded
                    continue
        return out


def constant_values(proto: onnx.ModelProto, infos, const: set[str], base_dir: str | None,
                     wanted: set[str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Values of the small constants (initializers, and constant subgraphs evaluated with onnx's
    reference runtime); only those ``wanted`` tensors depend on, when given."""
    g = proto.graph
    nodes = [n for n in g.node if n.output and all(o in const for o in n.output)]
    if wanted is not None:  # keep only the ancestors of the wanted tensors
        need, keep = set(wanted), []
        for node in reversed(nodes):
            if any(o in need for o in node.output):
                keep.append(node)
                need.update(node_inputs(node))
        nodes, wanted = keep[::-1], need
    values: dict[str, np.ndarray] = {}
    for t in g.initializer:
        if math.prod(t.dims) <= MAX_FOLD_ELEMS and (wanted is None or t.name in wanted):
            try:
                values[t.name] = onnx.numpy_helper.to_array(t, base_dir or "")
            except Exception:  # noqa: BLE001 - external data we cannot read: leave unfolded
                pass
    todo, avail = [], set(values)
    for node in nodes:
        if node.op_type in _SHAPE_ONLY_OPS:
            values[node.output[0]] = _shape_value(node, infos[node.input[0]][0])
            avail.add(node.output[0])
        elif all(i == "" or i in avail for i in node_inputs(node)) and _small_outputs(node, infos):
            todo.append(node)
            avail.update(node.output)
    if todo:
        values.update(_evaluate(todo, values, proto))
    return values


def _small_outputs(node: onnx.NodeProto, infos) -> bool:
    """Whether evaluating ``node`` is cheap: every output small, or of unknown size from a non-growing op."""
    for o in node.output:
        shape = infos.get(o, (None, 0))[0] if o else ()
        if shape is None and node.op_type in _GROWING_OPS:
            return False
        if shape is not None and math.prod(shape) > MAX_FOLD_ELEMS:
            return False
    return True


def fold_constants(proto: onnx.ModelProto, infos, const: set[str], base_dir: str | None) -> bool:
    """Evaluate small constant subgraphs (shape arithmetic) and store them as initializers.

    Used only when shape inference left activations without a static shape, typically because a
    Reshape target is computed from ``Shape`` through ops that ONNX data propagation does not cover.
    Returns True when something was folded.
    """
    g = proto.graph
    values = constant_values(proto, infos, const, base_dir)
    small = {k for k, v in values.items() if np.asarray(v).size <= MAX_FOLD_ELEMS}
    folded = {o for n in g.node if n.output and all(o in small for o in n.output if o) for o in n.output}
    if not folded:
        return False
    keep = [n for n in g.node if not any(o in folded for o in n.output)]
    del g.node[:]
    g.node.extend(keep)
    existing = {t.name for t in g.initializer}
    used = {i for n in keep for i in n.input} | {o.name for o in g.output}
    for name in folded & used - existing:
        g.initializer.append(onnx.numpy_helper.from_array(np.asarray(values[name]), name))
    del g.value_info[:]
    return True
