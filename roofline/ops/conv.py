"""Convolutions. MACs = output elements x (Cin / groups) x kernel elements (bias adds not counted)."""

from __future__ import annotations

import math

from roofline.graph import Node
from roofline.ops import Cost, cost, register_op


def conv_kind(cin: int, group: int, kernel: tuple[int, ...]) -> str:
    if group > 1:
        return "depthwise" if group == cin else "grouped"
    return "pointwise" if all(k == 1 for k in kernel) else "conv"


@register_op("Conv")
def conv(node: Node) -> Cost:
    # Y: N x Cout x H' x W';  W: Cout x Cin/g x kh x kw  ->  MACs = numel(Y) * Cin/g * kh * kw
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    kernel = w.shape[2:]
    macs = y.numel * w.shape[1] * math.prod(kernel)
    return cost(node, conv_kind(x.shape[1], node.attr("group", 1), kernel), macs)


@register_op("ConvTranspose")
def conv_transpose(node: Node) -> Cost:
    # every input element is scattered into Cout/g x kh x kw outputs; W: Cin x Cout/g x kh x kw
    x, w = node.inputs[0], node.inputs[1]
    macs = x.numel * w.shape[1] * math.prod(w.shape[2:])
    return cost(node, "conv-transpose", macs)
