"""Shapes of an ONNX graph: the input shapes a caller fixes, ONNX shape inference, and the fallback for ops
it has no rule for.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, shape_inference

from roofline.errors import ShapeError, did_you_mean
from roofline.ir.checks import MAX_TENSOR_ELEMS
from roofline.ops import ops_with

__all__ = ["set_input_shapes", "infer", "value_infos", "same_shapes"]


def _dims(type_proto: onnx.TypeProto) -> list[int | str | None] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in type_proto.tensor_type.shape.dim]


def _given_dims(value, what: str, many: bool) -> list[int]:
    """A given shape (``many``) or dimension as integers, or a ShapeError naming it."""
    items = value if many and isinstance(value, (list, tuple, np.ndarray)) else [value]
    try:
        if isinstance(value, (str, bytes)) or any(isinstance(v, (float, str, bytes)) for v in items):
            raise TypeError
        return [int(v) for v in items]
    except (TypeError, ValueError, OverflowError):
        kind = "a sequence of integers" if many else "an integer"
        raise ShapeError(f"{what} must be {kind}, got {value!r}") from None


def set_input_shapes(graph: onnx.GraphProto, input_shapes: Mapping[str, object] | None) -> bool:
    """Fix every symbolic input dimension from ``input_shapes``; return True if a shape changed."""
    given = dict(input_shapes or {})
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    dim_names = {d for i in inputs for d in (_dims(i.type) or []) if isinstance(d, str)}
    for key in given:
        if key not in {i.name for i in inputs} and key not in dim_names:
            choices = [i.name for i in inputs] + sorted(dim_names)
            raise ShapeError(
                f"input_shapes names {key!r}, which is neither a model input nor a symbolic dimension; "
                f"model inputs: {[i.name for i in inputs]}{did_you_mean(key, choices)}"
            )
    changed = False
    for inp in inputs:
        dims = _dims(inp.type)
        if inp.name in given:
            new = _given_dims(given[inp.name], f"input_shapes[{inp.name!r}]", many=True)
            if dims is not None and len(dims) != len(new):
                raise ShapeError(
                    f"input_shapes[{inp.name!r}] has rank {len(new)}, but the model input has rank {len(dims)} "
                    f"({'x'.join(str(d) for d in dims)})"
                )
        else:
            if dims is None:
                raise ShapeError(
                    f"input {inp.name!r} has no shape in the model; pass input_shapes={{{inp.name!r}: (...)}}"
                )
            new = []
            for pos, d in enumerate(dims):
                if isinstance(d, int) and d > 0:
                    new.append(d)
                elif isinstance(d, str) and d in given:
                    new.append(_given_dims(given[d], f"input_shapes[{d!r}]", many=False)[0])
                elif d == 0:  # a stored size of zero is not "unknown": the input holds no element
                    raise ShapeError(
                        f"input {inp.name!r} has a zero-size dimension at position {pos} "
                        f"(shape {'x'.join(str(x) if x is not None else '?' for x in dims)}): a tensor without "
                        f"elements has nothing to count; set a positive size with input_shapes={{{inp.name!r}: (...)}}"
                    )
                else:
                    label = f"symbolic dimension {d!r}" if d else "an unnamed dynamic dimension"
                    fix = f"input_shapes={{{d!r}: N}} or " if d else ""
                    raise ShapeError(
                        f"input {inp.name!r} has {label} at position {pos} "
                        f"(shape {'x'.join(str(x) if x else '?' for x in dims)}); set it with "
                        f"{fix}input_shapes={{{inp.name!r}: (...)}}"
                    )
        if any(v <= 0 or v > MAX_TENSOR_ELEMS for v in new):
            raise ShapeError(f"input {inp.name!r}: every dimension must be positive and at most 2**34, got {new}")
        if dims != new:
            changed = True
            inp.type.tensor_type.shape.Clear()
            for v in new:
                inp.type.tensor_type.shape.dim.add().dim_value = v
    return changed


def infer(
    proto: onnx.ModelProto, overrides: Mapping[str, tuple[tuple[int, ...], int]] | None = None
) -> onnx.ModelProto:
    """``proto`` with ONNX's shapes inferred (data propagation on), ``overrides`` given as value_info first."""
    if overrides:  # bounded data-dependent sizes, given to inference as value_info
        keep = [vi for vi in proto.graph.value_info if vi.name not in overrides]
        del proto.graph.value_info[:]
        proto.graph.value_info.extend(keep)
        for name, (shape, elem) in overrides.items():
            proto.graph.value_info.append(helper.make_tensor_value_info(name, elem, list(shape)))
    try:
        return shape_inference.infer_shapes(proto, data_prop=True)
    except (shape_inference.InferenceError, onnx.checker.ValidationError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShapeError(f"ONNX shape inference failed: {first}") from None


def value_infos(proto: onnx.ModelProto) -> dict[str, tuple[tuple[int, ...] | None, int]]:
    """Tensor name -> (static shape or None, element type) of every input, value_info, output and initializer."""
    out: dict[str, tuple[tuple[int, ...] | None, int]] = {}
    g = proto.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = _dims(vi.type)
        shape = tuple(dims) if dims is not None and all(isinstance(d, int) for d in dims) else None
        known = out.get(vi.name)
        if known is None or shape is not None:  # never forget a shape another entry gave
            out[vi.name] = (shape, vi.type.tensor_type.elem_type or (known[1] if known else 0))
    for t in g.initializer:
        out[t.name] = (tuple(int(d) for d in t.dims), t.data_type)
    return out


def same_shapes(proto: onnx.ModelProto, infos) -> bool:
    """Give shape-preserving nodes without an inferred output shape their input's shape."""
    # ops whose output 0 has input 0's shape (their op trait): a fallback where ONNX shape inference has no
    # rule, e.g. for function ops such as GroupNormalization
    same_shape = ops_with(same_shape=True)
    added = False
    for node in proto.graph.node:
        if node.op_type in same_shape and node.input and node.output:
            shape, elem = infos.get(node.input[0], (None, 0))
            if shape is not None and infos.get(node.output[0], (None,))[0] is None:
                proto.graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem, shape))
                infos[node.output[0]] = (shape, elem)
                added = True
    return added
