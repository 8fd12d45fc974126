"""Load an ONNX model into a shape-annotated graph that counting rules read.

Shapes come from ONNX shape inference, once; counting rules never re-derive them. Tensors that a
runtime computes once at load time (initializers, ``Constant`` nodes, ``Shape`` of a static tensor,
and anything computed only from those) are marked constant: they are weights, not activations, and
the nodes that compute them are folded away, as every runtime does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import helper, shape_inference

from roofline.errors import ModelLoadError, RooflineError, ShapeError, did_you_mean
from roofline.ir import Graph, ModelLike, Node, Tensor
from roofline.ir.checks import MAX_TENSOR_ELEMS, check_graph, check_initializers
from roofline.ir.onnx_flow import (
    CONTROL_FLOW,
    FlowState,
    bound_sizes,
    check_scopes,
    combine_bounds,
    flatten_control_flow,
    node_inputs,
    outer_refs,
    propagate_taint,
    subgraphs,
)

__all__ = ["Tensor", "Node", "Graph", "load_graph", "ModelLike"]

# nodes whose output depends only on the *shape* of their input, never on its values
_SHAPE_ONLY_OPS = {"Shape", "Size"}
# ops whose output has their first input's shape (a fallback where ONNX shape inference has no rule,
# e.g. for function ops such as GroupNormalization)
_SAME_SHAPE_OPS = {
    "GroupNormalization", "LayerNormalization", "InstanceNormalization", "BatchNormalization", "Gelu", "Mish",
    "HardSwish", "Relu", "Sigmoid", "Tanh", "Erf", "Clip", "LeakyRelu", "Softmax", "Dropout", "Identity",
}  # fmt: skip
# nodes that are never constant, whatever their inputs
_RANDOM_PREFIXES = ("Random", "Multinomial", "Bernoulli")
_MAX_FOLD_ROUNDS = 64
# the largest constant we evaluate while resolving shapes (elements)
_MAX_FOLD_ELEMS = 1 << 16
# the largest constant whose value a Graph keeps
_MAX_VALUE_ELEMS = 64
# ops whose output can be far larger than their (small, constant) inputs: folded only when inference says
# the output is small, so that a corrupt shape never allocates terabytes
_GROWING_OPS = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "OneHot", "EyeLike"}
# rounds of (shape inference, bounding data-dependent sizes, inlining control flow): one per nesting level
_MAX_FLOW_ROUNDS = 32


def _read_model(model: ModelLike) -> tuple[onnx.ModelProto, str | None]:
    """Return a ModelProto (never the caller's object: we edit shapes) and its directory."""
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy, None
    if isinstance(model, (bytes, bytearray)):
        return _parse(bytes(model), "the given bytes"), None
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            hint = did_you_mean(path.name, [p.name for p in path.parent.glob("*.onnx")]) if path.parent.is_dir() else ""
            raise ModelLoadError(f"model file {str(path)!r} does not exist{hint}")
        return _parse(path.read_bytes(), str(path)), str(path.parent)
    raise ModelLoadError(f"the 'model' parameter must be a path, bytes or onnx.ModelProto, got {type(model).__name__}")


def _zoo_network(model):
    """A built-in network's name (``"mobilenet_v2"``) as its built ONNX model; anything else as it is."""
    if isinstance(model, str) and not Path(model).exists() and not model.endswith((".onnx", ".tflite")):
        from roofline import zoo  # the zoo builds through onnx.helper only: no import circle

        if model in zoo.list_models():
            return zoo.build(model)
        if "/" not in model and "\\" not in model:
            raise ModelLoadError(
                f"model {model!r} is neither a file nor a built-in network{did_you_mean(model, zoo.list_models())}; "
                f"built-in: {', '.join(zoo.list_models())}"
            )
    return model


def _tflite(model: ModelLike) -> tuple[bytes, str] | None:
    """The bytes of a TFLite model (and where they come from), or None for anything else."""
    if isinstance(model, (bytes, bytearray)) and bytes(model[4:8]) == b"TFL3":
        return bytes(model), "the given bytes"
    if isinstance(model, (str, os.PathLike)) and Path(model).is_file():
        with open(model, "rb") as f:
            head = f.read(8)
        if head[4:8] == b"TFL3":
            return Path(model).read_bytes(), str(model)
    return None


def _where(model) -> str:
    """How messages name a model: its path, or what it was given as."""
    if isinstance(model, (str, os.PathLike)):
        return f"model file {str(model)!r}"
    return "the given bytes" if isinstance(model, (bytes, bytearray)) else f"model {getattr(model.graph, 'name', '')!r}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_opset(proto: onnx.ModelProto, where: str) -> int | None:
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


def _check_attributes(graph: onnx.GraphProto, opset: int | None, where: str) -> None:
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
            _check_attributes(sg, opset, where)


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{where} is not a valid ONNX model (protobuf parse failed: {_first_line(exc)})") from None
    if proto.ir_version <= 0 or not proto.HasField("graph") or not proto.graph.node:
        raise ModelLoadError(f"{where} is not an ONNX model (no IR version or no graph nodes)")
    bad = _bad_string(proto, "model")
    if bad:
        raise ModelLoadError(f"{where} is not a valid ONNX model: {bad} is not valid UTF-8 text")
    return proto


def _bad_string(msg, path: str) -> str | None:
    """The path of the first text field holding undecodable bytes (protobuf then returns bytes), or None."""
    for fd, value in msg.ListFields():
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        if fd.type == fd.TYPE_STRING:
            if any(isinstance(v, bytes) for v in (value if repeated else [value])):
                return f"{path}.{fd.name}"
        elif fd.type == fd.TYPE_MESSAGE:
            for k, v in enumerate(value if repeated else [value]):
                bad = _bad_string(v, f"{path}.{fd.name}[{k}]" if repeated else f"{path}.{fd.name}")
                if bad:
                    return bad
    return None


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


def _set_input_shapes(graph: onnx.GraphProto, input_shapes: Mapping[str, object] | None) -> bool:
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


def _infer(
    proto: onnx.ModelProto, overrides: Mapping[str, tuple[tuple[int, ...], int]] | None = None
) -> onnx.ModelProto:
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


def _value_infos(proto: onnx.ModelProto) -> dict[str, tuple[tuple[int, ...] | None, int]]:
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


def _sort_topologically(graph: onnx.GraphProto) -> None:
    """Reorder nodes so that every tensor is written before it is read (some exporters do not)."""
    start = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    defined = set(start)
    for node in graph.node:
        if any(i not in defined for i in node_inputs(node)):
            break
        defined.update(node.output)
    else:
        return  # already in order
    defined, pending, ordered = set(start), [onnx.NodeProto() for _ in graph.node], []
    for copy, node in zip(pending, graph.node):
        copy.CopyFrom(node)
    while pending:
        ready = [n for n in pending if all(i in defined for i in node_inputs(n))]
        if not ready:
            missing = next(i for i in node_inputs(pending[0]) if i not in defined)
            raise ModelLoadError(
                f"node {pending[0].name or pending[0].op_type!r} reads {missing!r}, which no node or input provides"
            )
        for n in ready:
            defined.update(n.output)
        ordered += ready
        done = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)


def _strip_weights(graph: onnx.GraphProto) -> set[str]:
    """Turn large initializers into typed graph inputs, and return their names.

    Shape inference then never copies the weights (it serialises the model on every call), and
    nothing reads their values: only their shapes and element types matter for counting.
    """
    inputs = {i.name: i for i in graph.input}
    big = [
        t
        for t in graph.initializer
        if math.prod(t.dims) > _MAX_FOLD_ELEMS or t.data_location == onnx.TensorProto.EXTERNAL
    ]
    for t in big:
        if t.name in inputs:
            graph.input.remove(inputs[t.name])
        graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    names = {t.name for t in big}
    keep = [t for t in graph.initializer if t.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return names


def _const_outputs(proto: onnx.ModelProto, infos, weights: set[str]) -> set[str]:
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


def _constant_values(proto: onnx.ModelProto, infos, const: set[str], base_dir: str | None,
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
        if math.prod(t.dims) <= _MAX_FOLD_ELEMS and (wanted is None or t.name in wanted):
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
        if shape is not None and math.prod(shape) > _MAX_FOLD_ELEMS:
            return False
    return True


def _fold_constants(proto: onnx.ModelProto, infos, const: set[str], base_dir: str | None) -> bool:
    """Evaluate small constant subgraphs (shape arithmetic) and store them as initializers.

    Used only when shape inference left activations without a static shape, typically because a
    Reshape target is computed from ``Shape`` through ops that ONNX data propagation does not cover.
    Returns True when something was folded.
    """
    g = proto.graph
    values = _constant_values(proto, infos, const, base_dir)
    small = {k for k, v in values.items() if np.asarray(v).size <= _MAX_FOLD_ELEMS}
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


def _same_shapes(proto: onnx.ModelProto, infos) -> bool:
    """Give shape-preserving nodes without an inferred output shape their input's shape."""
    added = False
    for node in proto.graph.node:
        if node.op_type in _SAME_SHAPE_OPS and node.input and node.output:
            shape, elem = infos.get(node.input[0], (None, 0))
            if shape is not None and infos.get(node.output[0], (None,))[0] is None:
                proto.graph.value_info.append(helper.make_tensor_value_info(node.output[0], elem, shape))
                infos[node.output[0]] = (shape, elem)
                added = True
    return added


def load_graph(model: ModelLike, input_shapes: Mapping[str, Sequence[int] | int] | None = None) -> Graph:
    """Load ``model`` (path, bytes, ModelProto or a built-in network's name), fix its input shapes and
    infer every other shape.

    External data is never read: counting needs only the shapes and element types of initializers,
    which the model file holds even when the weights live elsewhere. A TFLite flatbuffer (``.tflite``
    path or bytes) loads through ``roofline.ir.tflite``.
    """
    model = _zoo_network(model)
    tflite = _tflite(model)
    if tflite is not None:
        from roofline.ir.tflite import load_tflite

        graph = load_tflite(*tflite, input_shapes=input_shapes)
        check_graph(graph)
        return graph
    proto, base_dir = _read_model(model)
    where = _where(model)
    check_initializers(proto.graph, "the main graph")
    check_scopes(proto.graph)
    _sort_topologically(proto.graph)
    opset = _check_opset(proto, where)
    if proto.functions:  # exporters (torch dynamo) may emit model-local functions: count their bodies
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except (RuntimeError, ValueError, TypeError) as exc:  # the C++ inliner on a malformed function
            raise ModelLoadError(f"{where}: cannot inline the model's local functions ({_first_line(exc)})") from None
    _check_attributes(proto.graph, opset, where)
    changed = _set_input_shapes(proto.graph, input_shapes)
    if changed:  # stale shapes from an exporter would contradict the new input shapes
        del proto.graph.value_info[:]
        for out in proto.graph.output:
            out.type.tensor_type.ClearField("shape")
    weights = _strip_weights(proto.graph)
    state = FlowState()
    # each round bounds the data-dependent sizes and inlines the control flow that the shapes known so far
    # allow; nested bodies and chains of data-dependent ops take one round per level
    for _ in range(_MAX_FLOW_ROUNDS):
        inferred, infos, const = _settle(proto, weights, base_dir, state)
        cache: dict[str, np.ndarray | None] = {}

        def value_of(name: str, inferred=inferred, infos=infos, const=const, cache=cache):
            if name not in cache:
                cache[name] = _constant_values(inferred, infos, const, base_dir, wanted={name}).get(name)
            return cache[name]

        def cost(branch, inferred=inferred, infos=infos, const=const, value_of=value_of):
            return _branch_cost(branch, inferred, infos, const, value_of)

        progressed = bound_sizes(inferred, infos, const, state, value_of)
        progressed |= flatten_control_flow(inferred, infos, const, state, value_of, cost)
        if not progressed:  # If nodes whose branches read tensors no round could give a shape
            progressed = flatten_control_flow(inferred, infos, const, state, value_of, cost, force=True)
        if not progressed:
            break
        proto = inferred
        weights |= _strip_weights(proto.graph)
        del proto.graph.value_info[:]
    propagate_taint(inferred.graph.node, state.taint)
    graph = _build(inferred, infos, const, weights, state)
    check_graph(graph)
    read = {t.name for n in graph.nodes for t in n.inputs if t is not None and t.const and t.name not in weights}
    small = {n for n in read if graph.tensors[n].shape is not None and graph.tensors[n].numel <= _MAX_VALUE_ELEMS}
    if small:
        values = _constant_values(inferred, infos, const, base_dir, wanted=small)
        graph.values = {k: np.asarray(values[k]) for k in small if k in values}
    return graph


def _settle(proto: onnx.ModelProto, weights: set[str], base_dir: str | None, state: FlowState):
    """Infer shapes, then fold constant shape arithmetic until no more shapes appear."""
    inferred = _infer(proto, state.overrides)
    infos = _value_infos(inferred)
    const = _const_outputs(inferred, infos, weights)
    # each round of folding can reveal shapes that make more shape arithmetic constant (e.g. a Pad whose
    # pads are computed, then a Reshape computed from the padded shape): repeat until nothing changes
    for _ in range(_MAX_FOLD_ROUNDS):
        propagate_taint(inferred.graph.node, state.taint)  # before folding removes the nodes that carry it
        missing = any(
            t and infos.get(t, (None,))[0] is None
            for n in inferred.graph.node
            if any(o not in const for o in n.output)  # a node that runs: every tensor it touches needs a shape
            for t in (*n.input, *n.output)
        )
        if not missing or not (_fold_constants(inferred, infos, const, base_dir) | _same_shapes(inferred, infos)):
            break
        inferred = _infer(inferred, state.overrides)
        infos = _value_infos(inferred)
        const = _const_outputs(inferred, infos, weights)
    return inferred, infos, const


def _branch_cost(branch: onnx.GraphProto, proto: onnx.ModelProto, infos, const: set[str], value_of):
    """(MACs, bytes, output shapes) of an If branch counted on its own, or None when it cannot be."""
    from roofline.ops import node_costs  # here: the rules import the IR, never this loader

    inputs, inits = [], []
    for ref in sorted(outer_refs(branch)):
        shape, elem = infos.get(ref, (None, 0))
        value = value_of(ref) if ref in const else None
        if value is not None:
            inits.append(onnx.numpy_helper.from_array(np.asarray(value), ref))
        elif shape is None or not elem:
            return None
        elif ref in const:  # a weight: its shape matters, never its data
            t = onnx.TensorProto(name=ref, data_type=elem, dims=shape, data_location=onnx.TensorProto.EXTERNAL)
            t.external_data.add(key="location", value="unread")
            inits.append(t)
        else:
            inputs.append(helper.make_tensor_value_info(ref, elem, list(shape)))
    outputs = [helper.make_tensor_value_info(o.name, onnx.TensorProto.UNDEFINED, None) for o in branch.output]
    graph = helper.make_graph(list(branch.node), "branch", inputs, outputs, inits + list(branch.initializer))
    model = helper.make_model(graph, opset_imports=proto.opset_import, ir_version=max(proto.ir_version, 4))
    try:
        sub = load_graph(model)
        costs = node_costs(sub, "report")
    except RooflineError:
        return None
    macs = sum(c.macs for c in costs)
    moved = sum(e * t.itemsize for c in costs for t, e in (*c.reads, *c.writes))
    shapes = tuple(sub.tensors[o.name].shape if o.name in sub.tensors else None for o in branch.output)
    return macs, moved, shapes


def _build(proto: onnx.ModelProto, infos, const: set[str], weights: set[str], state: FlowState | None = None) -> Graph:
    g = proto.graph
    tensors: dict[str, Tensor] = {}
    state = state or FlowState()

    def tensor(name: str) -> Tensor | None:
        if not name:
            return None
        t = tensors.get(name)
        if t is None:
            shape, elem = infos.get(name, (None, 0))
            t = tensors[name] = Tensor(name, shape, elem, name in const)
        return t

    nodes: list[Node] = []
    folded: list[str] = []
    counts: dict[str, int] = {}
    names: dict[str, str] = {}  # first output -> node name
    for node in g.node:
        name = node.name
        if not name:
            counts[node.op_type] = counts.get(node.op_type, -1) + 1
            name = f"{node.op_type}_{counts[node.op_type]}"
        if node.output:
            names[node.output[0]] = name
        if node.output and all(o in const for o in node.output if o):
            folded.append(name)
            continue
        attrs = {a.name: _attr(a) for a in node.attribute}
        repeat, bound = state.annot.get(node.output[0], (1, "")) if node.output else (1, "")
        touched = [t for t in (*node_inputs(node), *node.output) if t in state.taint]
        nodes.append(
            Node(
                name,
                node.op_type,
                node.domain,
                attrs,
                tuple(tensor(i) for i in node.input),
                tuple(t for t in (tensor(o) for o in node.output) if t is not None),
                bound=combine_bounds([bound, *(state.taint[t] for t in touched)]),
                repeat=repeat,
            )
        )
    sources: dict[str, list[str]] = {}
    for kind, op, out, name in state.sources:
        label = f"{op} {name or names.get(out) or out!r}"
        if label not in sources.setdefault(kind, []):
            sources[kind].append(label)
    inits = {t.name for t in g.initializer}
    return Graph(
        name=g.name or "model",
        nodes=nodes,
        tensors=tensors,
        inputs=[i.name for i in g.input if i.name not in inits and i.name not in weights],
        outputs=[o.name for o in g.output],
        folded=folded,
        opset=next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0),
        bound_sources=sources,
    )


def _attr(a: onnx.AttributeProto):
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", "replace") for x in v]
    return v
