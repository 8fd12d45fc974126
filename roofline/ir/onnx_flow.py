"""What ONNX control flow and data-dependent sizes share: the state carried across rounds of shape
inference (``FlowState``), the scopes of subgraphs and their names, and the taint of bounded sizes.

Bounding data-dependent sizes lives in ``roofline.ir.onnx_bounds``; replacing ``If``, ``Loop`` and ``Scan``
by their bodies in ``roofline.ir.onnx_inline``. Inlined bodies keep their tensor names; a name that a body
redefines (onnxslim reuses constant names in branches) is renamed inside that body first
(``check_scopes``), so names stay unique once flattened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
from onnx import AttributeProto, helper

from roofline.errors import ModelLoadError

__all__ = ["CONTROL_FLOW", "FlowState", "subgraphs", "node_attr", "outer_refs", "node_inputs", "check_scopes",
           "rename", "propagate_taint", "combine_bounds"]  # fmt: skip

CONTROL_FLOW = ("If", "Loop", "Scan")


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
    """The bodies of a node (If branches, Loop and Scan bodies, any graph attribute)."""
    out = []
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def node_attr(node: onnx.NodeProto, name: str, default=None):
    """The value of a node's attribute ``name``, or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


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
    rename(g.node, mapping)
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


def rename(nodes, mapping: dict[str, str]) -> None:
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
            rename(sg.node, mapping)
            for out in sg.output:
                if out.name in mapping:
                    out.name = mapping[out.name]
