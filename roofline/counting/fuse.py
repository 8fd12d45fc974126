"""Group nodes into the layers a deployed runtime executes.

``fuse="none"`` keeps one layer per ONNX node. ``fuse="runtime"`` does what TFLite/XNNPACK and
onnxruntime do at load time:

- a Conv, ConvTranspose, Gemm, MatMul or Einsum absorbs the element-wise *epilogue* that follows it:
  BatchNormalization, bias adds, per-channel scales, activations, and activation patterns built from
  several nodes (swish ``x * sigmoid(x)``, hard-swish ``x * relu6(x + 3) / 6``, erf-GELU). BN and
  bias adds fold into the weights: the fused layer reads one bias vector instead of their tensors;
- an Add/Sub/Mul/Div, a MaxPool/AveragePool, a Concat or a standalone BatchNormalization absorbs a
  following Relu or Clip (TFLite's fused activation);
- views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) become free: they move no bytes and
  are not layers.

Which op plays which part is an op trait declared with its counting rule (``roofline.ops``:
``absorbs``, ``epilogue``, ``bias_input``, ``view``), read here when a graph is grouped.

An epilogue is only fused when the intermediate tensors are read by nobody else, so that the fused
layer writes exactly one tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.ir import Graph
from roofline.ops import Cost, Traits, op_traits, ops_with

__all__ = ["Layer", "group_layers", "FUSE_MODES"]

FUSE_MODES = ("none", "runtime")


def _traits(op_type: str) -> Traits:
    return op_traits(op_type) or Traits()  # an op type without a rule takes no part in fusion


@dataclass(frozen=True)
class Layer:
    """One executed layer: node indices (anchor first), constants folded away, bias the fold adds."""

    members: tuple[int, ...]
    folded: frozenset[str] = frozenset()
    bias: tuple[int, int] | None = None  # (elements, onnx element type) of a bias created by folding


def group_layers(graph: Graph, costs: list[Cost], fuse: str) -> tuple[list[Layer], list[str]]:
    """Return the layers in execution order and the names of the nodes made free."""
    if fuse == "none":
        return [Layer((i,)) for i in range(len(graph.nodes))], []
    views = ops_with(view=True)
    free = {i for i, n in enumerate(graph.nodes) if n.op_type in views and n.domain in ("", "ai.onnx")}
    taken: set[int] = set(free)
    layers = []
    for i, node in enumerate(graph.nodes):
        if i in taken:
            continue
        taken.add(i)
        epilogue: list[int] = []
        if len(node.outputs) == 1 and _traits(node.op_type).absorbs is not None:
            epilogue = _epilogue(graph, i, taken)
            taken.update(epilogue)
        layers.append(_fold(graph, (i, *epilogue)))
    return layers, [graph.nodes[i].name for i in sorted(free)]


def _eligible(graph: Graph, anchor: int, j: int) -> bool:
    node, op = graph.nodes[j], graph.nodes[j].op_type
    if len(node.outputs) != 1 or node.domain not in ("", "ai.onnx"):
        return False
    if node.repeat != graph.nodes[anchor].repeat:  # a loop body's layer never absorbs a node outside the loop
        return False
    role = _traits(op).epilogue
    if _traits(graph.nodes[anchor].op_type).absorbs == "clamp":
        return role == "clamp"
    return role is not None


def _epilogue(graph: Graph, anchor: int, taken: set[int]) -> list[int]:
    """The largest topological prefix of the element-wise closure after ``anchor`` writing one tensor."""
    x = graph.nodes[anchor].outputs[0]
    avail = {x.name}
    closure: list[int] = []
    queue = [x.name]
    while queue:
        t = queue.pop()
        for j in graph.consumers.get(t, ()):
            if j in taken or j in closure or not _eligible(graph, anchor, j):
                continue
            node = graph.nodes[j]
            if node.outputs[0].shape != x.shape:
                continue
            if all(u is None or u.const or u.name in avail for u in node.inputs):
                closure.append(j)
                avail.add(node.outputs[0].name)
                queue.append(node.outputs[0].name)
    closure.sort()
    outputs = set(graph.outputs)
    for k in range(len(closure), 0, -1):
        members = {anchor, *closure[:k]}
        produced = [x] + [graph.nodes[j].outputs[0] for j in closure[:k]]
        escaping = [
            t for t in produced if t.name in outputs or any(c not in members for c in graph.consumers.get(t.name, ()))
        ]
        if len(escaping) == 1:
            return closure[:k]
    return []


def _fold(graph: Graph, members: tuple[int, ...]) -> Layer:
    anchor = graph.nodes[members[0]]
    weights = [t for t in anchor.inputs if t is not None and t.const]
    head = _traits(anchor.op_type)
    if len(members) == 1 or head.absorbs != "epilogue" or not weights:
        return Layer(members)
    folded: set[str] = set()
    needs_bias = 0
    for j in members[1:]:
        node = graph.nodes[j]
        role = _traits(node.op_type).epilogue
        if role not in ("scale", "bias"):  # constants the head's weights and bias take in
            continue
        consts = [t for t in node.inputs if t is not None and t.const]
        folded.update(t.name for t in consts)
        if role == "bias":
            needs_bias = max([needs_bias] + [t.numel for t in consts])
    has_bias = head.bias_input is not None and anchor.input(head.bias_input) is not None
    bias = (needs_bias, weights[0].elem_type) if needs_bias > 1 and not has_bias else None
    return Layer(members, frozenset(folded), bias)
