"""Consistency checks at load: a corrupt or contradictory model is an error naming the tensor or node,
never an absurd count. An ONNX model imports an opset the installed onnx knows, every attribute has the
type its operator declares and every initializer holds the data its dims say; on the loaded graph (ONNX
or TFLite) every shape is positive and sane, and convolutions and matrix products agree with their
operands."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import onnx

from roofline.dtypes import onnx_itemsize
from roofline.errors import ModelLoadError, ShapeError
from roofline.ir.onnx_flow import subgraphs

if TYPE_CHECKING:
    from roofline.ir import Graph, Node, Tensor

__all__ = ["MAX_TENSOR_ELEMS", "check_initializers", "check_graph", "check_opset", "check_attributes"]

#: beyond this a model is corrupt, not big: no count is ever absurd (64 GiB at fp32)
MAX_TENSOR_ELEMS = 2**34

# the TensorProto field that holds each element type's values when raw_data is not used, and how many
# field entries one element takes (complex: 2; 4-bit types pack two elements per entry)
_TYPED_FIELDS = {
    onnx.TensorProto.FLOAT: ("float_data", 1), onnx.TensorProto.COMPLEX64: ("float_data", 2),
    onnx.TensorProto.DOUBLE: ("double_data", 1), onnx.TensorProto.COMPLEX128: ("double_data", 2),
    onnx.TensorProto.INT64: ("int64_data", 1), onnx.TensorProto.STRING: ("string_data", 1),
    onnx.TensorProto.UINT32: ("uint64_data", 1), onnx.TensorProto.UINT64: ("uint64_data", 1),
}  # fmt: skip
_PACKED = {getattr(onnx.TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(onnx.TensorProto, n)}


def _check_tensor(t: onnx.TensorProto, what: str) -> None:
    dims = "x".join(str(d) for d in t.dims) or "scalar"
    if any(d < 0 for d in t.dims):
        raise ShapeError(f"{what} {t.name!r} has a negative dimension ({dims})")
    if t.data_type not in onnx.TensorProto.DataType.values() or t.data_type == onnx.TensorProto.UNDEFINED:
        raise ShapeError(f"{what} {t.name!r} has an unknown element type {t.data_type}")
    n = math.prod(t.dims)
    if n > MAX_TENSOR_ELEMS:
        raise ShapeError(f"{what} {t.name!r} has {n:.3g} elements ({dims}), more than 2**34: the file is corrupt")
    if t.data_location == onnx.TensorProto.EXTERNAL or t.data_type == onnx.TensorProto.STRING and not n:
        return
    if t.HasField("raw_data"):
        if t.data_type == onnx.TensorProto.STRING:
            raise ShapeError(f"{what} {t.name!r} is a string tensor stored as raw_data")
        try:
            expected = (n + 1) // 2 if t.data_type in _PACKED else n * int(onnx_itemsize(t.data_type))
        except (KeyError, TypeError, ValueError):  # an element type newer than this check: not checked
            return
        if len(t.raw_data) != expected:
            raise ShapeError(
                f"{what} {t.name!r} has dims {dims} ({n} elements, {expected} B) but stores {len(t.raw_data)} B "
                "of raw_data"
            )
        return
    field_name, per = _TYPED_FIELDS.get(t.data_type, ("int32_data", 1))
    stored = len(getattr(t, field_name))
    expected = (n + 1) // 2 if t.data_type in _PACKED else n * per
    if stored != expected:
        raise ShapeError(f"{what} {t.name!r} has dims {dims} ({n} elements) but stores {stored} values in {field_name}")


def check_initializers(graph: onnx.GraphProto, where: str) -> None:
    """Every initializer and Constant value, in every scope, holds as much data as its dims say."""
    for t in graph.initializer:
        _check_tensor(t, f"initializer (in {where})" if where != "the main graph" else "initializer")
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                _check_tensor(a.t, f"{node.op_type} node {node.name!r} attribute {a.name!r}, tensor")
        for sg in subgraphs(node):
            check_initializers(sg, f"a body of {node.op_type} node {node.name!r}")


def _fail(node: Node, why: str) -> None:
    raise ShapeError(f"{node.op_type} node {node.name!r}: {why}")


def _shape(t: Tensor | None) -> tuple[int, ...] | None:
    return None if t is None else t.shape


# where the data and weight operands of convolutions and matrix products sit
_CONV_OPERANDS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3), "ConvTranspose": (0, 1)}
_MATMUL_OPERANDS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "Gemm": (0, 1)}


def _check_node(node: Node) -> None:
    op = node.op_type
    if op in _CONV_OPERANDS:
        xi, wi = _CONV_OPERANDS[op]
        x, w = _shape(node.input(xi)), _shape(node.input(wi))
        if x is None or w is None:
            return
        wname = node.inputs[wi].name  # type: ignore[union-attr]
        group = node.attr("group", 1)
        if len(w) < 3 or len(w) != len(x):
            _fail(node, f"weight {wname!r} has shape {w}, input has shape {x}: ranks must match and be >= 3")
        if not isinstance(group, int) or group < 1:
            _fail(node, f"group must be a positive integer, got {group!r}")
        kernel = node.attr("kernel_shape")
        kernel = [kernel] if isinstance(kernel, int) else kernel  # a scalar stored as INT, not INTS
        if kernel is not None and tuple(kernel) != tuple(w[2:]):
            _fail(node, f"kernel_shape {list(kernel)} contradicts weight {wname!r} of shape {'x'.join(map(str, w))}")
        if op == "ConvTranspose":
            if w[0] != x[1] or x[1] % group:
                _fail(node, f"weight {wname!r} ({'x'.join(map(str, w))}) expects {w[0]} input channels in "
                            f"{group} group(s), the input has {x[1]}")  # fmt: skip
        elif w[1] * group != x[1] or w[0] % group:
            why = f"input channels, the input has {x[1]} ({w[0]} output channels must divide by the group)"
            _fail(node, f"weight {wname!r} ({'x'.join(map(str, w))}) x group {group} reads {w[1] * group} {why}")
    elif op in _MATMUL_OPERANDS:
        ai, bi = _MATMUL_OPERANDS[op]
        a, b = _shape(node.input(ai)), _shape(node.input(bi))
        if a is None or b is None:
            return
        if op == "Gemm":
            if len(a) != 2 or len(b) != 2:
                _fail(node, f"operands must be matrices, got shapes {a} and {b}")
            ka = a[0] if node.attr("transA", 0) else a[1]
            kb = b[1] if node.attr("transB", 0) else b[0]
        else:
            if not a or not b:
                _fail(node, f"operands must not be scalars, got shapes {a} and {b}")
            ka, kb = a[-1], b[-2] if len(b) >= 2 else b[0]
        if ka != kb:
            _fail(node, f"contracted dimensions disagree: {ka} (A {'x'.join(map(str, a))}) vs {kb} (B "
                        f"{'x'.join(map(str, b))})")  # fmt: skip


def check_graph(graph: Graph) -> None:
    """Shapes of the nodes that run are positive and sane, and operands agree: else a ShapeError naming them."""
    for node in graph.nodes:
        for t in (*node.inputs, *node.outputs):
            if t is None or t.shape is None:
                continue
            if any(d < 0 for d in t.shape) or (t in node.outputs and not t.const and any(d == 0 for d in t.shape)):
                _fail(node, f"tensor {t.name!r} has shape {t.shape_str()}: dimensions must be positive")
            if math.prod(t.shape) > MAX_TENSOR_ELEMS:
                _fail(node, f"tensor {t.name!r} has {math.prod(t.shape):.3g} elements ({t.shape_str()}), more than "
                            "2**34: the model's shapes are absurd")  # fmt: skip
        _check_node(node)


def check_opset(proto: onnx.ModelProto, where: str) -> int | None:
    """The default-domain opset the model imports, if any; outside what the installed onnx knows is an error
    (shape inference would otherwise take any version on trust)."""
    top = onnx.defs.onnx_opset_version()
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    for v in versions:
        if not 1 <= v <= top:
            raise ModelLoadError(
                f"{where} imports ONNX opset {v}; the installed onnx {onnx.__version__} supports opsets 1 to {top}"
            )
    return versions[0] if versions else None


def check_attributes(graph: onnx.GraphProto, opset: int | None, where: str) -> None:
    """Every attribute of a default-domain node (in every scope) has the type its operator's schema declares:
    the counting rules read ``kernel_shape`` as a list, ``group`` as an integer."""
    if opset is None:
        return
    names = onnx.AttributeProto.AttributeType.Name
    for node in graph.node:
        if node.domain in ("", "ai.onnx"):
            try:
                declared = onnx.defs.get_schema(node.op_type, opset, "").attributes
            except onnx.defs.SchemaError:  # an op this opset does not define: counting says so
                declared = {}
            for a in node.attribute:
                spec = declared.get(a.name)
                if spec is None or int(spec.type) in (a.type, onnx.AttributeProto.UNDEFINED):
                    continue
                got = names(a.type) if a.type in onnx.AttributeProto.AttributeType.values() else str(a.type)
                raise ModelLoadError(
                    f"{where}: {node.op_type} node {node.name!r} has attribute {a.name!r} of type {got}, but ONNX "
                    f"opset {opset} declares it {names(int(spec.type))}"
                )
        for sg in subgraphs(node):
            check_attributes(sg, opset, where)
