"""The registry of counting rules: ONNX op type -> pure function ``Node -> Cost``; ``node_costs``
applies them to a graph.

Adding an op is one decorated function plus one hand-computed golden test (``tests/test_ops.py``
fails for a registered op without a case). What the rest of the package needs to know about an op is
declared in the same decorator as *traits* (:class:`Traits`), so no other module keeps a list of op types:

- ``absorbs`` / ``epilogue`` / ``bias_input`` / ``view``: its part in ``fuse="runtime"``
  (``roofline.counting.fuse``);
- ``same_shape``: output 0 has input 0's shape and element type (the ONNX loader's shape fallback);
- ``layout``: how onnxruntime's x86 NCHWc layout treats it (``roofline.counting.ort_layout``).

``op_traits(op_type)`` and ``ops_with(trait=value, ...)`` query them. A duplicate registration, an
unknown trait value and contradicting traits raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace

from roofline.errors import InvalidParameterError, ShapeError, UnsupportedOpError, check_choice
from roofline.ir import Graph, Node, Tensor

__all__ = ["Cost", "Traits", "register_op", "rule_for", "supported_ops", "op_traits", "ops_with", "cost",
           "is_immediate", "node_costs", "KINDS", "ABSORBS", "EPILOGUES", "LAYOUTS", "MAX_LAYER_MACS",
           "MAX_MODEL_MACS"]  # fmt: skip

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


#: ``absorbs``: what a ``fuse="runtime"`` layer headed by the op takes in after it
ABSORBS = {
    "epilogue": "every epilogue op (a compute layer: Conv, Gemm, MatMul); with constant weights it folds its "
    "'scale' and 'bias' epilogues into them",
    "clamp": "only an epilogue 'clamp' (TFLite's fused activation after an Add, a pooling, a Concat)",
}
#: ``epilogue``: the op's part when it follows a layer's head (element-wise, on the head's output)
EPILOGUES = {
    "clamp": "a clamp (Relu, Clip): absorbed by any head with an ``absorbs`` trait",
    "elementwise": "absorbed by an absorbs='epilogue' head, and kept as an operation",
    "scale": "absorbed by an absorbs='epilogue' head, whose constant weights take in its constant operands",
    "bias": "as 'scale', and the folded layer gains a bias vector if its head has none",
}
#: ``layout``: how onnxruntime's NCHWc optimisation (x86, level "all") treats the op
LAYOUTS = {
    "passthrough": "runs on NCHWc tensors: its output stays blocked when all its activation inputs are",
}


@dataclass(frozen=True)
class Traits:
    """What the package needs to know about an op type besides its counting rule (see ``register_op``)."""

    #: a key of ABSORBS: the op heads a fused layer that takes in what follows it
    absorbs: str | None = None
    #: a key of EPILOGUES: the op's part in a fused layer headed by another op
    epilogue: str | None = None
    #: the input index of the head's own bias (absorbs="epilogue" only): a folded bias adds no tensor then
    bias_input: int | None = None
    #: the op only re-labels its input (Reshape, Identity): free in the fused view, no layer at all
    view: bool = False
    #: output 0 has input 0's shape and element type (the ONNX loader's fallback where inference has no rule)
    same_shape: bool = False
    #: a key of LAYOUTS
    layout: str | None = None


_TRAIT_NAMES = tuple(f.name for f in fields(Traits))
_RULES: dict[str, Rule] = {}
_TRAITS: dict[str, Traits] = {}


def _check_traits(t: Traits) -> None:
    """Raise InvalidParameterError for an unknown trait value or traits that contradict each other."""
    for name, accepted in (("absorbs", ABSORBS), ("epilogue", EPILOGUES), ("layout", LAYOUTS)):
        if getattr(t, name) is not None:
            check_choice(getattr(t, name), tuple(accepted), name)
    for name in ("view", "same_shape"):
        if not isinstance(getattr(t, name), bool):
            raise InvalidParameterError(f"the {name!r} trait must be True or False, got {getattr(t, name)!r}")
    index = t.bias_input
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise InvalidParameterError(f"the 'bias_input' trait must be an input index >= 0, got {index!r}")
    if index is not None and t.absorbs != "epilogue":
        raise InvalidParameterError("the 'bias_input' trait needs absorbs='epilogue': only such a head folds a bias")
    if t.view and (t.absorbs or t.epilogue):
        raise InvalidParameterError("a view=True op is no layer in the fused view: it cannot absorb or be absorbed")


def register_op(
    *op_types: str,
    absorbs: str | None = None,
    epilogue: str | None = None,
    bias_input: int | None = None,
    view: bool = False,
    same_shape: bool = False,
    layout: str | None = None,
) -> Callable[[Rule], Rule]:
    """Register ``fn`` as the counting rule of each op type in ``op_types`` (default ONNX domain), with the
    given traits (:class:`Traits`; ``ABSORBS``, ``EPILOGUES`` and ``LAYOUTS`` list the accepted values).

    Op types of one rule with different traits take one decorator each, stacked on the function. An
    op type registered twice, an unknown trait value or contradicting traits raise; nothing is
    registered then.
    """
    traits = Traits(absorbs, epilogue, bias_input, view, same_shape, layout)
    _check_traits(traits)

    def deco(fn: Rule) -> Rule:
        for i, op in enumerate(op_types):
            if op in _RULES:
                raise ValueError(f"op type {op!r} already has a counting rule ({_RULES[op].__qualname__})")
            if op in op_types[:i]:
                raise ValueError(f"op type {op!r} is named twice in one registration")
        for op in op_types:
            _RULES[op] = fn
            _TRAITS[op] = traits
        return fn

    return deco


def rule_for(node: Node) -> Rule | None:
    if node.domain not in ("", "ai.onnx"):
        return None
    return _RULES.get(node.op_type)


def supported_ops() -> list[str]:
    """Sorted op types that have a counting rule."""
    return sorted(_RULES)


def op_traits(op_type: str) -> Traits | None:
    """The traits registered with ``op_type``'s counting rule, None for an op type without a rule."""
    return _TRAITS.get(op_type)


def ops_with(**traits) -> frozenset[str]:
    """Op types whose traits have all the given values: ``ops_with(epilogue="clamp") == {"Relu", "Clip"}``.

    Asked at call time, so ops registered later (``roofline.register_op``) take part."""
    for name in traits:
        check_choice(name, _TRAIT_NAMES, "trait")
    return frozenset(op for op, t in _TRAITS.items() if all(getattr(t, k) == v for k, v in traits.items()))


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
