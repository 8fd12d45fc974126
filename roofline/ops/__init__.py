"""The registry of counting rules: ONNX op type -> pure function ``Node -> Cost``.

Adding an op is one decorated function plus one hand-computed golden test (``tests/test_ops.py``
fails for a registered op without a case). A duplicate registration raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from roofline.graph import Node, Tensor

__all__ = ["Cost", "register_op", "rule_for", "supported_ops", "cost", "is_immediate", "KINDS"]

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


# registration happens on import of the rule modules
from roofline.ops import conv, elementwise, linear, movement, pool, tflite  # noqa: E402,F401
