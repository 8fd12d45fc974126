"""Element-wise ops, activations, normalisations and softmax: 0 MACs, they only move bytes.

Each reads its data inputs whole and writes its outputs whole. A constant scalar input (the 6 of a
Clip, the 3 of a hard-swish) is an immediate: it reads no bytes and is not a parameter.
"""

from __future__ import annotations

from roofline.ir import Node
from roofline.ops import Cost, cost, register_op

ACTIVATIONS = (
    "Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Erf", "Gelu", "Softplus", "Softsign", "Mish", "ThresholdedRelu",
)  # fmt: skip
UNARY = (
    "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
    "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Not", "IsNaN", "IsInf",
    "BitwiseNot", "QuantizeLinear", "DequantizeLinear", "Shrink",
)  # fmt: skip
BINARY = (
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Mod", "Equal", "Less",
    "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Where", "BitShift",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor",
)  # fmt: skip


@register_op(*ACTIVATIONS)
def activation(node: Node) -> Cost:
    return cost(node, "activation")


@register_op(*UNARY, *BINARY)
def elementwise(node: Node) -> Cost:
    # broadcast inputs are read once at their own size; the output is written whole
    return cost(node, "elementwise")


@register_op("BatchNormalization")
def batch_norm(node: Node) -> Cost:
    # X, scale, B, mean, var: mean and var are running statistics, read but not learned parameters
    stats = frozenset(t.name for t in node.inputs[3:5] if t is not None)
    return cost(node, "norm", outputs=[0], buffers=stats)


@register_op("LayerNormalization", "InstanceNormalization", "GroupNormalization", "LpNormalization", "LRN")
def norm(node: Node) -> Cost:
    # only Y is written at inference (LayerNormalization's Mean / InvStdDev outputs are training-only)
    return cost(node, "norm", outputs=[0])


@register_op("Softmax", "LogSoftmax", "Hardmax")
def softmax(node: Node) -> Cost:
    return cost(node, "softmax")
