"""Convolutions. MACs = output elements x (Cin / groups) x kernel elements (bias adds not counted)."""

from __future__ import annotations

import math

from roofline.ir import Node
from roofline.ops import Cost, cost, register_op


def same_padding(kernel: int) -> int:
    """Padding on each side of a "same" conv as the zoo, the kernel models and the builders write it: k // 2."""
    return kernel // 2


def same_output_size(size: int, kernel: int, stride: int = 1) -> int:
    """Output size of a conv over ``size`` with ``same_padding(kernel)`` on each side: ceil(size / stride) for odd
    kernels, (size + 2 * (k // 2) - k) // stride + 1 in general."""
    return (size + 2 * same_padding(kernel) - kernel) // stride + 1


def conv_kind(cin: int, group: int, kernel: tuple[int, ...]) -> str:
    if group > 1:
        return "depthwise" if group == cin else "grouped"
    return "pointwise" if all(k == 1 for k in kernel) else "conv"


# where X, W and the bias sit among the inputs; other inputs are quantisation scales and zero points
_OPERANDS = {"Conv": (0, 1, 2), "ConvInteger": (0, 1, None), "QLinearConv": (0, 3, 8)}


@register_op("Conv", absorbs="epilogue", bias_input=2)
@register_op("ConvInteger", "QLinearConv")
def conv(node: Node) -> Cost:
    # Y: N x Cout x H' x W';  W: Cout x Cin/g x kh x kw  ->  MACs = numel(Y) * Cin/g * kh * kw
    xi, wi, bi = _OPERANDS[node.op_type]
    x, w, y = node.inputs[xi], node.inputs[wi], node.outputs[0]
    kernel = w.shape[2:]
    macs = y.numel * w.shape[1] * math.prod(kernel)
    data = [i for i in (xi, wi, bi) if i is not None]
    return cost(node, conv_kind(x.shape[1], node.attr("group", 1), kernel), macs, data=data)


@register_op("ConvTranspose", absorbs="epilogue", bias_input=2)
def conv_transpose(node: Node) -> Cost:
    # every input element is scattered into Cout/g x kh x kw outputs; W: Cin x Cout/g x kh x kw
    x, w = node.inputs[0], node.inputs[1]
    macs = x.numel * w.shape[1] * math.prod(w.shape[2:])
    return cost(node, "conv-transpose", macs)
