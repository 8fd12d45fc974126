"""ONNX control flow and data-dependent sizes, turned into a flat graph that counting rules read.

- ``If``, ``Loop`` and ``Scan`` nodes are replaced by their bodies ("inlined"): an ``If`` with a constant
  condition by its chosen branch; with a run-time condition by its costlier branch (rows marked
  ``bound="upper"``). A ``Loop`` body runs ``repeat`` = trip count times when the count is constant, else
  once (rows marked ``bound="lower"``); a ``Scan`` body runs once per slice of the scanned axis.
- Outputs whose size depends on values (``NonZero``, ``NonMaxSuppression``, ``TopK`` with a run-time k,
  ``Unique``, ``Compress``, a ``Slice`` with run-time bounds) get the largest size the static shapes allow.
  Every tensor computed from such a size is *tainted*, and the nodes that read or write one are marked
  ``bound="upper"``.

Inlined bodies keep their tensor names; a name that a body redefines (onnxslim reuses constant names in
branches) is renamed inside that body first (``check_scopes``), so names stay unique once flattened.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from roofline.errors import ModelLoadError

__all__ = ["FlowState", "subgraphs", "outer_refs", "node_inputs", "check_scopes", "propagate_taint",
           "bound_sizes", "flatten_control_flow", "combine_bounds"]  # fmt: skip

CONTROL_FLOW = ("If", "Loop", "Scan")
# a Loop whose constant trip count may be cut short by its condition: at most this many iterations are
# taken as an upper bound; a larger count (torch's INT64_MAX "while" loops) is counted as one iteration
_MAX_BOUNDED_TRIPS = 1_000_000


def combine_bounds(kinds) -> str:
    """ "upper" if any is, else "lower" if any is, else "" (exact)."""
    kinds = set(kinds)
    return "upper" if "upper" in kinds else "lower" if "lower" in kinds else ""


@dataclass
class FlowState:
    """What flattening and bounding learnt, carried across rounds of shape inference."""

    # tensor name -> (shape, element type) given to shape inference as value_info (bounded sizes)
    overrides: dict[str, tuple[tuple[int, ...], int]] = field(default_factory=dict)
    # tensor name -> "upper" / "lower": its size (or a value it is computed from) is a bound
    taint: dict[str, str] = field(default_factory=dict)
    # first output name of an inlined node -> (repeat, bound)
    annot: dict[str, tuple[int, str]] = field(default_factory=dict)
    # (bound kind, op type, first output name, node name) of every node whose size or trip count is a bound
    sources: list[tuple[str, str, str, str]] = field(default_factory=list)
    counter: int = 0

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}__roofline{self.counter}"


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def outer_refs(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph (and the subgraphs inside it) reads from enclosing scopes."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    refs: set[str] = set()
    for n in graph.node:
        refs.update(n.input)
        for sg in subgraphs(n):
            refs |= outer_refs(sg)
        defined.update(n.output)
    refs.update(o.name for o in graph.output)
    return refs - defined


def node_inputs(node: onnx.NodeProto) -> list[str]:
    """A node's inputs, then the outer-scope names its subgraphs read (implicit inputs)."""
    if not node.attribute or node.op_type not in CONTROL_FLOW and not subgraphs(node):
        return list(node.input)
    implicit: set[str] = set()
    for sg in subgraphs(node):
        implicit |= outer_refs(sg)
    return list(node.input) + sorted(implicit - set(node.input))


def check_scopes(graph: onnx.GraphProto) -> None:
    """Make tensor names unique across scopes (inlining bodies needs SSA names), in place.

    A body may define a name an enclosing scope (or another body) already defines (onnxslim reuses
    constant names): inside that body the inner definition shadows the outer one, so the body's uses are
    renamed with it. Two nodes writing the same name in one scope are a ModelLoadError.
    """
    seen: set[str] = set()

    def walk(g: onnx.GraphProto, where: str) -> None:
        names = [i.name for i in g.input] + [t.name for t in g.initializer]
        outputs = [o for n in g.node for o in n.output if o]
        dup = (
            next((o for k, o in enumerate(outputs) if o in outputs[:k]), None)
            if len(set(outputs)) < len(outputs)
            else None
        )
        if dup is not None:
            raise ModelLoadError(f"tensor name {dup!r} is written by two nodes in {where}")
        clash = {n for n in names + outputs if n in seen} - {""}
        if clash and where != "the main graph":
            mapping = {n: f"{n}__{where_id(g)}" for n in clash}
            _rename_scope(g, mapping)
            names = [mapping.get(n, n) for n in names]
            outputs = [mapping.get(n, n) for n in outputs]
        seen.update(names, outputs)
        for n in g.node:
            for a in n.attribute:
                sgs = (
                    [a.g]
                    if a.type == AttributeProto.GRAPH
                    else list(a.graphs)
                    if a.type == AttributeProto.GRAPHS
                    else []
                )
                label = n.name or (n.output[0] if n.output else "?")
                for sg in sgs:
                    walk(sg, f"the {a.name!r} body of {n.op_type} node {label!r}")

    counter = iter(range(1 << 62))

    def where_id(g: onnx.GraphProto) -> str:
        return f"{g.name or 'body'}{next(counter)}"

    walk(graph, "the main graph")


def _rename_scope(g: onnx.GraphProto, mapping: dict[str, str]) -> None:
    """Rename ``mapping``'s names everywhere in ``g`` (definitions and uses, nested bodies included)."""
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.name in mapping:
            vi.name = mapping[vi.name]
    for t in g.initializer:
        if t.name in mapping:
            t.name = mapping[t.name]
    _rename(g.node, mapping)
    for n in g.node:
        for sg in subgraphs(n):
            for vi in [*sg.input, *sg.value_info]:
                if vi.name in mapping:
                    vi.name = mapping[vi.name]


def propagate_taint(nodes, taint: dict[str, str]) -> None:
    """Mark every output of a node that reads a tainted tensor (nodes in topological order)."""
    if not taint:
        return
    for n in nodes:
        kind = combine_bounds(taint[i] for i in node_inputs(n) if i in taint)
        if kind:
            for o in n.output:
                if o:
                    taint[o] = combine_bounds((kind, taint.get(o, "")))


# --------------------------------------------------------------------------------------------------
# data-dependent sizes


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


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


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
    axis = _attr(node, "axis")
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


# --------------------------------------------------------------------------------------------------
# control flow


def _rename(nodes, mapping: dict[str, str]) -> None:
    """Rename tensors in ``nodes`` and in the subgraphs inside them (in place)."""
    if not mapping:
        return
    for n in nodes:
        for k, i in enumerate(n.input):
            if i in mapping:
                n.input[k] = mapping[i]
        for k, o in enumerate(n.output):
            if o in mapping:
                n.output[k] = mapping[o]
        for sg in subgraphs(n):
            _rename(sg.node, mapping)
            for out in sg.output:
                if out.name in mapping:
                    out.name = mapping[out.name]


@dataclass
class _Inlined:
    nodes: list[onnx.NodeProto]
    initializers: list[onnx.TensorProto]


def _body(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    for a in node.attribute:
        if a.name == name and a.type == AttributeProto.GRAPH:
            return a.g
    raise ModelLoadError(f"{node.op_type} node {node.name!r} has no {name!r} body")


class _Inliner:
    def __init__(self, state: FlowState, parent: onnx.NodeProto, label: str, repeat: int, bound: str):
        self.state, self.parent, self.repeat, self.bound = state, parent, repeat, bound
        self.prefix = f"{parent.name or parent.output[0]}/{label}"
        outer = state.annot.get(parent.output[0], (1, "")) if parent.output else (1, "")
        self.outer_repeat, self.outer_bound = outer
        self.out = _Inlined([], [])

    def add(self, node: onnx.NodeProto, inner: bool = True) -> None:
        rep = self.outer_repeat * (self.repeat if inner else 1)
        bound = combine_bounds((self.outer_bound, self.bound))
        if node.output and (rep != 1 or bound):
            self.state.annot[node.output[0]] = (rep, bound)
        self.out.nodes.append(node)

    def const(self, stem: str, value) -> str:
        name = self.state.fresh(f"{self.prefix}/{stem}")
        self.out.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def body(self, graph: onnx.GraphProto, mapping: dict[str, str], outputs: list[tuple[str, str]]) -> None:
        """Inline ``graph``'s nodes with its formal inputs renamed by ``mapping``; ``outputs`` pairs each
        body output name with the outer name it becomes ("" to keep the body's name)."""
        nodes = []
        for k, n in enumerate(graph.node):
            c = onnx.NodeProto()
            c.CopyFrom(n)
            c.name = f"{self.prefix}/{n.name or f'{n.op_type}_{k}'}"
            nodes.append(c)
        _rename(nodes, mapping)
        produced = {o for n in nodes for o in n.output if o}
        out_map: dict[str, str] = {}
        extra = []
        for body_name, outer_name in outputs:
            src = mapping.get(body_name, body_name)
            if not outer_name:
                continue
            if src in produced and src not in out_map:
                out_map[src] = outer_name
            else:
                extra.append((out_map.get(src, src), outer_name))
        _rename(nodes, out_map)
        for n in nodes:
            self.add(n)
        for src, dst in extra:
            self.add(helper.make_node("Identity", [out_map.get(src, src)], [dst], name=f"{self.prefix}/{dst}"))
        for t in graph.initializer:
            self.out.initializers.append(t)


def _value(value_of, name: str):
    v = value_of(name) if name else None
    if v is None:
        return None
    arr = np.asarray(v).reshape(-1)
    return arr[0] if arr.size else None


def _stack(inl: _Inliner, src: str, dst: str, length: int, axis: int, rank: int | None, opset: int) -> bool:
    """Emit nodes writing ``dst`` = ``length`` copies of ``src`` stacked along ``axis`` (Loop and Scan outputs)."""
    if axis != 0 and rank is None:
        return False
    shape = inl.state.fresh(f"{inl.prefix}/{dst}_shape")
    target = inl.state.fresh(f"{inl.prefix}/{dst}_target")
    stacked = dst if axis == 0 else inl.state.fresh(f"{inl.prefix}/{dst}_stacked")
    inl.add(helper.make_node("Shape", [src], [shape], name=f"{inl.prefix}/{shape}"), inner=False)
    count = inl.const("count", np.array([length], np.int64))
    inl.add(helper.make_node("Concat", [count, shape], [target], axis=0, name=f"{inl.prefix}/{target}"), inner=False)
    inl.add(helper.make_node("Expand", [src, target], [stacked], name=f"{inl.prefix}/{dst}"), inner=False)
    if axis != 0:
        axis %= rank + 1
        perm = list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank + 1))
        inl.add(helper.make_node("Transpose", [stacked], [dst], perm=perm, name=f"{inl.prefix}/{dst}_transpose"),
                inner=False)  # fmt: skip
    return True


def _rank(graph: onnx.GraphProto, name: str) -> int | None:
    for vi in list(graph.output) + list(graph.value_info):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return None


def _cond_is_static(body: onnx.GraphProto) -> bool:
    """True when a Loop body's output condition is its input condition or a constant."""
    producer = {o: n for n in body.node for o in n.output}
    out = body.output[0].name
    for _ in range(len(body.node) + 1):  # through Identity and Cast chains
        if len(body.input) > 1 and out == body.input[1].name or out in {t.name for t in body.initializer}:
            return True
        node = producer.get(out)
        if node is None or not node.input or node.op_type not in ("Identity", "Cast", "Constant"):
            return False
        if node.op_type == "Constant":
            return True
        out = node.input[0]
    return False


def flatten_control_flow(proto: onnx.ModelProto, infos, const: set[str], state: FlowState, value_of,
                         branch_cost: Callable, force: bool = False) -> bool:  # fmt: skip
    """Replace each top-level If, Loop and Scan whose deciding sizes are known by its body; True if any.

    ``value_of(name)`` returns the value of a constant tensor or None; ``branch_cost(graph)`` returns
    (MACs, bytes, output shapes) of an If branch, or None. With ``force``, a run-time If whose branches
    cannot be costed takes its then-branch.
    """
    g = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    new_nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    changed = False
    for node in g.node:
        out = None
        if node.domain in ("", "ai.onnx") and node.op_type in CONTROL_FLOW and node.output:
            out = {"If": _if, "Loop": _loop, "Scan": _scan}[node.op_type](
                node, infos, const, state, value_of, branch_cost, force, opset
            )
        if out is None:
            new_nodes.append(node)
            continue
        changed = True
        new_nodes.extend(out.nodes)
        inits.extend(out.initializers)
    if changed:
        del g.node[:]
        g.node.extend(new_nodes)
        g.initializer.extend(inits)
    return changed


def _if(node, infos, const, state, value_of, branch_cost, force, opset) -> _Inlined | None:
    cond = node.input[0] if node.input else ""
    then, other = _body(node, "then_branch"), _body(node, "else_branch")
    bound, choice = "", None
    if cond in const and cond not in state.taint:
        v = _value(value_of, cond)
        if v is not None:
            choice = ("then", then) if bool(v) else ("else", other)
    if choice is None:
        refs = (outer_refs(then) | outer_refs(other)) - const
        if not force and any(infos.get(r, (None,))[0] is None for r in refs):
            return None  # wait until the values the branches read have shapes
        costs = [branch_cost(then), branch_cost(other)]
        if costs[0] is None and costs[1] is None and not force:
            return None
        pick = 1 if costs[1] is not None and (costs[0] is None or costs[1][:2] > costs[0][:2]) else 0
        choice = [("then", then), ("else", other)][pick]
        bound = "upper"
        state.sources.append(("upper", "If", node.output[0], node.name or node.output[0]))
        if costs[0] is None or costs[1] is None or costs[0][2] != costs[1][2]:
            for o in node.output:
                if o:
                    state.taint[o] = "upper"  # the branches' outputs differ in size: downstream is a bound
    inl = _Inliner(state, node, choice[0], 1, bound)
    inl.body(choice[1], {}, [(o.name, n) for o, n in zip(choice[1].output, node.output)])
    return inl.out


def _loop(node, infos, const, state, value_of, branch_cost, force, opset) -> _Inlined | None:
    body = _body(node, "body")
    trip = node.input[0] if node.input else ""
    cond = node.input[1] if len(node.input) > 1 else ""
    carried = list(node.input[2:])
    n = len(carried)
    if len(body.input) != n + 2 or len(body.output) < n + 1:
        raise ModelLoadError(
            f"Loop node {node.name!r}: its body has {len(body.input)} inputs and {len(body.output)} outputs for "
            f"{n} loop-carried values (expected {n + 2} inputs and at least {n + 1} outputs)"
        )
    m = _value(value_of, trip) if trip in const else None
    cond_value = _value(value_of, cond) if cond in const else None
    static_cond = (not cond or cond_value is not None and bool(cond_value)) and _cond_is_static(body)
    if m is not None and 0 < int(m) and (static_cond or int(m) <= _MAX_BOUNDED_TRIPS):
        repeat, bound = int(m), "" if static_cond and trip not in state.taint else "upper"
    else:
        repeat, bound = 1, "lower"
    if bound:
        state.sources.append((bound, "Loop", node.output[0], node.name or node.output[0]))
    inl = _Inliner(state, node, "body", repeat, bound)
    mapping = {body.input[0].name: inl.const("iteration", np.array(0, np.int64)),
               body.input[1].name: cond or inl.const("condition", np.array(True))}  # fmt: skip
    mapping.update({b.name: c for b, c in zip(body.input[2:], carried)})
    outs = [(b.name, o) for b, o in zip(body.output[1 : n + 1], node.output[:n])]
    inl.body(body, mapping, outs)
    for b, o in zip(body.output[n + 1 :], node.output[n:]):
        if o:
            src = mapping.get(b.name, b.name)
            _stack(inl, src, o, repeat, 0, None, opset)
            if bound == "lower":
                state.taint[o] = "lower"
    return inl.out


def _scan(node, infos, const, state, value_of, branch_cost, force, opset) -> _Inlined | None:
    if opset < 9:
        return None  # Scan-8 (batched, with sequence_lens): left as an unknown op
    body = _body(node, "body")
    k = int(_attr(node, "num_scan_inputs", 0) or 0)
    n = len(node.input) - k
    if k < 1 or n < 0 or len(body.input) != n + k or len(body.output) < n:
        raise ModelLoadError(
            f"Scan node {node.name!r}: num_scan_inputs={k} does not fit its {len(node.input)} inputs and its body's "
            f"{len(body.input)} inputs"
        )
    in_axes = list(_attr(node, "scan_input_axes", None) or [0] * k)
    out_axes = list(_attr(node, "scan_output_axes", None) or [0] * (len(body.output) - n))
    first = infos.get(node.input[n], (None,))[0]
    if first is None or len(in_axes) != k:
        return None  # the scanned length is not known yet
    if not first:
        raise ModelLoadError(f"Scan node {node.name!r}: scan input {node.input[n]!r} is a scalar")
    length = first[int(in_axes[0]) % len(first)]
    inl = _Inliner(state, node, "body", int(length), "")
    index = inl.const("slice", np.array(0, np.int64))
    for j in range(k):
        b = body.input[n + j].name
        inl.add(
            helper.make_node("Gather", [node.input[n + j], index], [b], axis=int(in_axes[j]), name=f"{inl.prefix}/{b}")
        )
    mapping = {b.name: c for b, c in zip(body.input[:n], node.input[:n])}
    inl.body(body, mapping, [(b.name, o) for b, o in zip(body.output[:n], node.output[:n])])
    for j, (b, o) in enumerate(zip(body.output[n:], node.output[n:])):
        if o:
            axis = int(out_axes[j]) if j < len(out_axes) else 0
            if not _stack(inl, mapping.get(b.name, b.name), o, int(length), axis, _rank(body, b.name), opset):
                return None
    return inl.out
