"""Load an ONNX model into a shape-annotated graph that counting rules read.

Shapes come from ONNX shape inference, once (``roofline.ir.onnx_shapes``); counting rules never re-derive
them. Tensors that a runtime computes once at load time are constant: weights, not activations, and the
nodes that compute them are folded away, as every runtime does (``roofline.ir.fold``). Data-dependent sizes
are bounded (``roofline.ir.onnx_bounds``) and control flow is inlined (``roofline.ir.onnx_inline``), a
round per nesting level. ``roofline.ir.load.load_graph`` is the entry point for every format; it reads the
file and hands ONNX models to ``load_onnx``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from google.protobuf.message import DecodeError
from onnx import helper

from roofline.errors import ModelLoadError, RooflineError
from roofline.ir import Graph, Node, Tensor
from roofline.ir.checks import check_attributes, check_graph, check_initializers, check_opset
from roofline.ir.fold import MAX_FOLD_ELEMS, const_outputs, constant_values
from roofline.ir.fold import fold_constants as _fold_constants  # a module global: tests watch it
from roofline.ir.onnx_bounds import bound_sizes
from roofline.ir.onnx_flow import FlowState, check_scopes, combine_bounds, node_inputs, outer_refs, propagate_taint
from roofline.ir.onnx_inline import flatten_control_flow
from roofline.ir.onnx_shapes import infer, same_shapes, set_input_shapes, value_infos

__all__ = ["load_onnx"]

_MAX_FOLD_ROUNDS = 64
# the largest constant whose value a Graph keeps
_MAX_VALUE_ELEMS = 64
# rounds of (shape inference, bounding data-dependent sizes, inlining control flow): one per nesting level
_MAX_FLOW_ROUNDS = 32


def load_onnx(model: bytes | onnx.ModelProto, input_shapes: Mapping[str, Sequence[int] | int] | None = None,
              path: str | None = None) -> Graph:  # fmt: skip
    """An ONNX model (its bytes, read from ``path`` if given, or a ModelProto, never edited) as a Graph: its
    input shapes fixed, every other shape inferred.

    External data is never read: counting needs only the shapes and element types of initializers,
    which the model file holds even when the weights live elsewhere.
    """
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)  # we edit shapes
        where, base_dir = f"model {getattr(model.graph, 'name', '')!r}", None
    else:
        proto = _parse(bytes(model), str(Path(path)) if path is not None else "the given bytes")
        where = f"model file {path!r}" if path is not None else "the given bytes"
        base_dir = str(Path(path).parent) if path is not None else None
    check_initializers(proto.graph, "the main graph")
    check_scopes(proto.graph)
    _sort_topologically(proto.graph)
    opset = check_opset(proto, where)
    if proto.functions:  # exporters (torch dynamo) may emit model-local functions: count their bodies
        try:
            proto = onnx.inliner.inline_local_functions(proto)
        except (RuntimeError, ValueError, TypeError) as exc:  # the C++ inliner on a malformed function
            raise ModelLoadError(f"{where}: cannot inline the model's local functions ({_first_line(exc)})") from None
    check_attributes(proto.graph, opset, where)
    changed = set_input_shapes(proto.graph, input_shapes)
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
                cache[name] = constant_values(inferred, infos, const, base_dir, wanted={name}).get(name)
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
        values = constant_values(inferred, infos, const, base_dir, wanted=small)
        graph.values = {k: np.asarray(values[k]) for k in small if k in values}
    return graph


def _settle(proto: onnx.ModelProto, weights: set[str], base_dir: str | None, state: FlowState):
    """Infer shapes, then fold constant shape arithmetic until no more shapes appear."""
    inferred = infer(proto, state.overrides)
    infos = value_infos(inferred)
    const = const_outputs(inferred, infos, weights)
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
        if not missing or not (_fold_constants(inferred, infos, const, base_dir) | same_shapes(inferred, infos)):
            break
        inferred = infer(inferred, state.overrides)
        infos = value_infos(inferred)
        const = const_outputs(inferred, infos, weights)
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
        sub = load_onnx(model)
        costs = node_costs(sub, "report")
    except RooflineError:
        return None
    macs = sum(c.macs for c in costs)
    moved = sum(e * t.itemsize for c in costs for t, e in (*c.reads, *c.writes))
    shapes = tuple(sub.tensors[o.name].shape if o.name in sub.tensors else None for o in branch.output)
    return macs, moved, shapes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
        if math.prod(t.dims) > MAX_FOLD_ELEMS or t.data_location == onnx.TensorProto.EXTERNAL
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
