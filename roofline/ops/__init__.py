"""The registry of counting rules: ONNX op type -> pure function ``Node -> Cost``; ``node_costs``
applies them to a graph.

Adding an op is one decorated function plus one hand-computed golden test (``tests/test_ops.py``
fails for a registered op without a case). A duplicate registration raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from roofline.errors import ShapeError, UnsupportedOpError, check_choice
from roofline.ir import Graph, Node, Tensor

__all__ = ["Cost", "register_op", "rule_for", "supported_ops", "cost", "is_immediate", "node_costs", "KINDS",
           "MAX_LAYER_MACS", "MAX_MODEL_MACS"]  # fmt: skip

#: every layer kind a rule may return ("unknown" marks reported nodes without a rule)
KINDS = (
    "conv", "pointwise", "depthwise", "grouped", "conv-transpose", "gemm", "matmul", "pool", "reduce",
    "elementwise", "activation", "norm", "softmax", "resize", "data-movement", "unknown",
)  # fmt: skip


@dataclass(frozen=True)
class Cost:
    """What one node does: its kind, its MACs, and how many elements of each tensor it reads and writes."""

    kind: str
    macs: int = 0
    reads: tuple[tuple[Tensor, int], ...] = ()
    writes: tuple[tuple[Tensor, int], ...] = ()
    #: constant inputs that are read but are not learned parameters (BatchNorm running statistics)
    buffers: frozenset[str] = field(default_factory=frozenset)


Rule = Callable[[Node], Cost]


def is_immediate(t: Tensor) -> bool:
    """A constant scalar, which kernels take as an operand rather than read from memory."""
    return t.const and t.numel == 1


_RULES: dict[str, Rule] = {}


def register_op(*op_types: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the counting rule of each op type in ``op_types`` (default ONNX domain)."""

    def deco(fn: Rule) -> Rule:
        for op in op_types:
            if op in _RULES:
                raise ValueError(f"op type {op!r} already has a counting rule ({_RULES[op].__qualname__})")
            _RULES[op] = fn
        return fn

    return deco


def rule_for(node: Node) -> Rule | None:
    if node.domain not in ("", "ai.onnx"):
        return None
    return _RULES.get(node.op_type)


def supported_ops() -> list[str]:
    """Sorted op types that have a counting rule."""
    return sorted(_RULES)


def cost(
    node: Node,
    kind: str,
    macs: int = 0,
    data: Iterable[int] | None = None,
    outputs: Iterable[int] | None = None,
    **kw,
) -> Cost:
    """A Cost that reads whole data inputs (indices ``data``, default all) and writes whole outputs.

    Ops without MACs treat a constant scalar input (the 6 of a Clip) as an immediate: not read, not a
    parameter. A MAC op's constants are always weights, even with a single element.
    """
    idx = range(len(node.inputs)) if data is None else data
    ins = [t for t in (node.input(i) for i in idx) if t is not None]
    reads = tuple((t, t.numel) for t in ins if macs or not is_immediate(t))
    outs = node.outputs if outputs is None else [node.outputs[i] for i in outputs if i < len(node.outputs)]
    return Cost(kind, int(macs), reads, tuple((t, t.numel) for t in outs), **kw)


#: a layer with more MACs than this comes from a corrupt model (a whole LLM forward pass is ~1e13)
MAX_LAYER_MACS = 10**15
#: and a model with more than this (int64 holds 9.2e18: totals and layer sums stay exact)
MAX_MODEL_MACS = 10**17
_ON_UNKNOWN = ("raise", "report")


def node_costs(graph: Graph, on_unknown: str = "raise") -> list[Cost]:
    """Apply each node's counting rule. Unknown ops raise, or become ``kind="unknown"`` rows."""
    check_choice(on_unknown, _ON_UNKNOWN, "on_unknown")
    rules = [rule_for(n) for n in graph.nodes]
    unknown = {
        n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}": n.name
        for n, r in zip(graph.nodes, rules)
        if r is None
    }
    if unknown and on_unknown == "raise":
        raise UnsupportedOpError(unknown, supported_ops(), unknown)
    missing = [
        (n, t)
        for n, r in zip(graph.nodes, rules)
        if r is not None
        for t in n.inputs + n.outputs
        if t is not None and t.shape is None
    ]
    if missing:
        node, t = missing[0]
        raise ShapeError(
            f"shape of tensor {t.name!r} (read or written by {node.op_type} node {node.name!r}) is unknown after "
            f"shape inference; {len(missing)} tensor use(s) affected. Set the model's input shapes with "
            f"input_shapes=..., or check for ops whose output shape depends on data"
            + (f" (it may depend on ops without a counting rule: {', '.join(sorted(unknown))})" if unknown else "")
        )
    out = []
    for node, rule in zip(graph.nodes, rules):
        if rule is None:
            known = [t for t in node.inputs + node.outputs if t is not None and t.shape is not None]
            out.append(
                Cost(
                    "unknown",
                    0,
                    tuple((t, t.numel) for t in known if t in node.inputs),
                    tuple((t, t.numel) for t in known if t in node.outputs),
                )
            )
            if node.repeat != 1:
                out[-1] = _repeated(out[-1], node.repeat)
            continue
        try:
            c = rule(node)
        except (TypeError, IndexError, AttributeError, ValueError, ZeroDivisionError, ShapeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ShapeError(f"cannot count {node.op_type} node {node.name!r}: {detail}") from None
        out.append(_repeated(c, node.repeat) if node.repeat != 1 else c)
        if not 0 <= out[-1].macs <= MAX_LAYER_MACS:
            raise ShapeError(
                f"{node.op_type} node {node.name!r} would count {out[-1].macs:.3g} MACs (outside 0..1e15): its shapes "
                "are absurd; the model is corrupt or contradicts itself"
            )
    total = sum(int(c.macs) for c in out)  # Python integers: a sum never wraps around in int64
    if total > MAX_MODEL_MACS:
        raise ShapeError(
            f"the model would count {total:.3g} MACs in {len(out)} nodes (more than 1e17): its shapes are absurd; "
            "the model is corrupt or contradicts itself"
        )
    return out


def _repeated(c: Cost, repeat: int) -> Cost:
    """A node that runs ``repeat`` times per inference (a loop body): MACs and every byte it moves, multiplied."""
    return replace(
        c,
        macs=c.macs * repeat,
        reads=tuple((t, e * repeat) for t, e in c.reads),
        writes=tuple((t, e * repeat) for t, e in c.writes),
    )


# registration happens on import of the rule modules
from roofline.ops import conv, elementwise, linear, movement, pool, tflite  # noqa: E402,F401
