"""Element-wise ops, activations, normalisations and softmax: 0 MACs, they only move bytes.

Each reads its data inputs whole and writes its outputs whole. A constant scalar input (the 6 of a
Clip, the 3 of a hard-swish) is an immediate: it reads no bytes and is not a parameter.
"""

from __future__ import annotations

from roofline.ir import Node
from roofline.ops import Cost, cost, register_op

UNARY = (
    "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf",
    "BitwiseNot", "QuantizeLinear", "DequantizeLinear", "Shrink",
)  # fmt: skip
# binary ops without a trait (Add, Sub, Mul, Div, Pow and Sum have theirs below)
BINARY = (
    "Max", "Min", "Mean", "Mod", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor",
    "Where", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor",
)  # fmt: skip


# an activation's output has its input's shape and type; a conv or matrix product absorbs most of them
@register_op("Relu", epilogue="clamp", same_shape=True, layout="passthrough")
@register_op("Clip", epilogue="clamp", same_shape=True)
@register_op("LeakyRelu", "Sigmoid", "Tanh", epilogue="elementwise", same_shape=True, layout="passthrough")
@register_op(
    "PRelu", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Erf", "Gelu", "Softplus", "Mish",
    epilogue="elementwise", same_shape=True,
)  # fmt: skip
@register_op("Softsign", "ThresholdedRelu", same_shape=True)
def activation(node: Node) -> Cost:
    return cost(node, "activation")


# bias adds and per-channel scales fold into a conv's weights; an Add, Sub, Mul or Div absorbs a following clamp
@register_op("Add", absorbs="clamp", epilogue="bias", layout="passthrough")
@register_op("Sub", absorbs="clamp", epilogue="bias")
@register_op("Mul", "Div", absorbs="clamp", epilogue="scale")
@register_op("Pow", epilogue="elementwise")
@register_op("Sum", layout="passthrough")
@register_op(*UNARY, *BINARY)
def elementwise(node: Node) -> Cost:
    # broadcast inputs are read once at their own size; the output is written whole
    return cost(node, "elementwise")


@register_op("BatchNormalization", absorbs="clamp", epilogue="bias", same_shape=True, layout="passthrough")
def batch_norm(node: Node) -> Cost:
    # X, scale, B, mean, var: mean and var are running statistics, read but not learned parameters
    stats = frozenset(t.name for t in node.inputs[3:5] if t is not None)
    return cost(node, "norm", outputs=[0], buffers=stats)


@register_op(
    "LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization", "LRN", same_shape=True
)  # fmt: skip
def norm(node: Node) -> Cost:
    # only Y is written at inference (LayerNormalization's Mean / InvStdDev outputs are training-only)
    return cost(node, "norm", outputs=[0])


@register_op("Softmax", "LogSoftmax", "Hardmax", same_shape=True)
def softmax(node: Node) -> Cost:
    return cost(node, "softmax")
