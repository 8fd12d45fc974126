"""ONNX control flow replaced by its bodies ("inlined"), so that counting rules read a flat graph.

An ``If`` with a constant condition becomes its chosen branch; with a run-time condition its costlier
branch (rows marked ``bound="upper"``). A ``Loop`` body runs ``repeat`` = trip count times when the count is
constant, else once (rows marked ``bound="lower"``); a ``Scan`` body runs once per slice of the scanned axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import AttributeProto, helper, numpy_helper

from roofline.errors import ModelLoadError
from roofline.ir.onnx_flow import CONTROL_FLOW, FlowState, combine_bounds, node_attr, outer_refs, rename

__all__ = ["flatten_control_flow"]

# a Loop whose constant trip count may be cut short by its condition: at most this many iterations are
# taken as an upper bound; a larger count (torch's INT64_MAX "while" loops) is counted as one iteration
_MAX_BOUNDED_TRIPS = 1_000_000


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
        rename(nodes, mapping)
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
        rename(nodes, out_map)
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
    k = int(node_attr(node, "num_scan_inputs", 0) or 0)
    n = len(node.input) - k
    if k < 1 or n < 0 or len(body.input) != n + k or len(body.output) < n:
        raise ModelLoadError(
            f"Scan node {node.name!r}: num_scan_inputs={k} does not fit its {len(node.input)} inputs and its body's "
            f"{len(body.input)} inputs"
        )
    in_axes = list(node_attr(node, "scan_input_axes", None) or [0] * k)
    out_axes = list(node_attr(node, "scan_output_axes", None) or [0] * (len(body.output) - n))
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
