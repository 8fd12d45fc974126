"""Matrix products. MACs = output elements x contracted dimension. With a constant operand the
layer is a ``gemm`` (a fully connected layer); between two activations it is a ``matmul``
(attention scores and values)."""

from __future__ import annotations

import math

from roofline.errors import ShapeError
from roofline.ir import Node, Tensor
from roofline.ops import Cost, cost, register_op


def _kind(*operands) -> str:
    return "gemm" if any(t is not None and t.const for t in operands) else "matmul"


@register_op("Gemm", absorbs="epilogue", bias_input=2)
def gemm(node: Node) -> Cost:
    # Y = alpha * A' B' + beta * C, A' is M x K
    a, b, y = node.inputs[0], node.inputs[1], node.outputs[0]
    k = a.shape[0] if node.attr("transA", 0) else a.shape[1]
    return cost(node, _kind(b), y.numel * k)


# where A and B sit among the inputs; other inputs are quantisation scales and zero points
_OPERANDS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}


@register_op("MatMul", absorbs="epilogue")
@register_op("MatMulInteger", "QLinearMatMul")
def matmul(node: Node) -> Cost:
    # numpy matmul semantics, batched and broadcast: K is A's last dimension
    ai, bi = _OPERANDS[node.op_type]
    a, b, y = node.inputs[ai], node.inputs[bi], node.outputs[0]
    k = a.shape[-1] if a.shape else 1
    return cost(node, _kind(a, b), max(y.numel, 1) * k, data=[ai, bi])


def einsum_macs(equation: str, shapes: list[tuple[int, ...]]) -> int:
    """MACs of an einsum contracted left to right, one pair at a time.

    For two operands this is the product of the sizes of every index letter, i.e. output elements
    times the contracted dimensions.
    """
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ShapeError(f"einsum {equation!r} names {len(terms)} operands, the node has {len(shapes)}")
    ell_rank = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ell = [chr(0x3B1 + i) for i in range(ell_rank)]  # greek letters stand for the ellipsis dims
    sizes: dict[str, int] = {}
    letters: list[str] = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            head, tail = term.split("...")
            n = len(shape) - len(head) - len(tail)
            term = head + "".join(ell[ell_rank - n :]) + tail
        if len(term) != len(shape):
            raise ShapeError(f"einsum {equation!r}: operand {term!r} does not match shape {shape}")
        for c, d in zip(term, shape):
            sizes[c] = max(sizes.get(c, 1), int(d))
        letters.append(term)
    if not arrow:  # implicit output: letters that appear once, sorted
        counts = {c: sum(t.count(c) for t in letters) for c in sizes}
        out = "".join(ell) + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))
    else:
        out = rhs.replace("...", "".join(ell))
    if len(letters) < 2:
        return 0
    macs, cur = 0, set(letters[0])
    for j in range(1, len(letters)):
        union = cur | set(letters[j])
        macs += math.prod(sizes[c] for c in union)
        later = set(out).union(*map(set, letters[j + 1 :]))
        cur = union & later
    return macs


@register_op("Einsum", absorbs="epilogue")
def einsum(node: Node) -> Cost:
    shapes = [t.shape for t in node.inputs if t is not None]
    macs = einsum_macs(node.attr("equation"), shapes)
    return cost(node, _kind(*node.inputs) if macs else "data-movement", macs)


def recurrent_macs(x: Tensor, matrices) -> int:
    """MACs of a recurrent layer: every weight matrix multiplies one vector per time step and batch row.

    ``x`` is the sequence (or single step) input, features last, so its rows are steps x batch."""
    rows = x.numel // x.shape[-1] if x.shape and x.shape[-1] else 1
    return rows * sum(w.numel for w in matrices if w is not None)


@register_op("LSTM", "GRU", "RNN")
def recurrent(node: Node) -> Cost:
    # X: seq x batch x input; W: dirs x gates*hidden x input; R: dirs x gates*hidden x hidden
    # -> seq * batch * dirs * gates * hidden * (input + hidden) MACs (gates: LSTM 4, GRU 3, RNN 1);
    # peepholes and biases are element-wise (not MACs); every input is read whole, every output written
    x, w, r = node.inputs[0], node.inputs[1], node.inputs[2]
    return cost(node, _kind(w, r), recurrent_macs(x, (w, r)))
