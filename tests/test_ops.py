"""One hand-computed golden case per registered op (raw view, fp32 unless stated), and the op traits.

Each expected tuple is (kind, macs, params, weight_bytes, input_bytes, output_bytes), worked out in the
comment beside it. A registered op without a case fails ``test_every_rule_has_a_golden_case``. The traits
declared with the rules (``register_op(..., absorbs=, epilogue=, same_shape=, ...)``) must agree with
what the rules count: ``test_traits_agree_with_the_rules``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model
from onnx import helper
from test_ops_graph import GRAPH_CASES

import roofline
from roofline.errors import InvalidParameterError
from roofline.ir import Node, Tensor
from roofline.ops import (
    _RULES,
    _TRAITS,
    ABSORBS,
    EPILOGUES,
    KINDS,
    LAYOUTS,
    Traits,
    op_traits,
    ops_with,
    rule_for,
    supported_ops,
)

F = np.float32
Z = np.zeros
I64 = np.int64


def case(op, inputs, expect, acts=None, consts=None, attrs=None, opset=17, outputs=1, id=None):
    return pytest.param(op, inputs, expect, acts or {}, consts or {}, attrs or {}, opset, outputs, id=id or op)


X = {"x": ((1, 8, 4, 4), "f32")}  # 128 elements, 512 bytes
UNARY_FLOAT = (
    "Sqrt",
    "Exp",
    "Log",
    "Neg",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Sin",
    "Cos",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Shrink",
)
ACTS = ("Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "Tanh", "Erf", "Softplus",
        "Softsign", "ThresholdedRelu")  # fmt: skip
BINARY_FLOAT = ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum")
COMPARE = ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual")

CASES = [
    # --- convolutions: MACs = numel(Y) * Cin/g * kh * kw ---------------------------------------
    # Y 1x4x8x8 = 256; 256*3*9 = 6912 MACs; W 4*3*3*3 = 108 params = 432 B; X 192*4 = 768 B; Y 1024 B
    case(
        "Conv",
        ["x", "w"],
        ("conv", 6912, 108, 432, 768, 1024),
        {"x": ((1, 3, 8, 8), "f32")},
        {"w": Z((4, 3, 3, 3), F)},
        {"pads": [1, 1, 1, 1]},
        id="Conv-dense-padded",
    ),  # fmt: skip
    # Y 1x16x4x4 = 256; 256*8 = 2048 MACs; W 128 + B 16 = 144 params = 576 B; X 512 B; Y 1024 B
    case(
        "Conv",
        ["x", "w", "b"],
        ("pointwise", 2048, 144, 576, 512, 1024),
        X,
        {"w": Z((16, 8, 1, 1), F), "b": Z(16, F)},
        id="Conv-1x1-bias",
    ),  # fmt: skip
    # stride 2, pad 1: Y 1x8x3x3 = 72; 72*1*9 = 648 MACs; W 72 params = 288 B; X 288*4 = 1152 B; Y 288 B
    case(
        "Conv",
        ["x", "w"],
        ("depthwise", 648, 72, 288, 1152, 288),
        {"x": ((1, 8, 6, 6), "f32")},
        {"w": Z((8, 1, 3, 3), F)},
        {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]},
        id="Conv-depthwise",
    ),  # fmt: skip
    # group 2: Y 1x8x4x4 = 128; 128*4*9 = 4608 MACs; W 8*4*9 = 288 params = 1152 B
    case(
        "Conv",
        ["x", "w"],
        ("grouped", 4608, 288, 1152, 512, 512),
        X,
        {"w": Z((8, 4, 3, 3), F)},
        {"group": 2, "pads": [1, 1, 1, 1]},
        id="Conv-grouped",
    ),  # fmt: skip
    # dilation 2, no pad: 7 - 2*(3-1) = 3 -> Y 1x2x3x3 = 18; 18*2*9 = 324 MACs; W 36 = 144 B; X 98*4 = 392 B
    case(
        "Conv",
        ["x", "w"],
        ("conv", 324, 36, 144, 392, 72),
        {"x": ((1, 2, 7, 7), "f32")},
        {"w": Z((2, 2, 3, 3), F)},
        {"dilations": [2, 2]},
        id="Conv-dilated",
    ),  # fmt: skip
    # Conv1d: Y 1x4x8 = 32; 32*2*3 = 192 MACs; W 24 = 96 B; X 16*4 = 64 B; Y 128 B
    case(
        "Conv",
        ["x", "w"],
        ("conv", 192, 24, 96, 64, 128),
        {"x": ((1, 2, 8), "f32")},
        {"w": Z((4, 2, 3), F)},
        {"pads": [1, 1]},
        id="Conv-1d",
    ),  # fmt: skip
    # int8 conv: X 1x3x8x8 uint8 = 192 B, W 4x3x3x3 int8 = 108 B (108 quantised params), Y int32 1x4x6x6 = 576 B;
    # 144 * 3 * 9 = 3888 MACs; the zero points are scalars
    case(
        "ConvInteger",
        ["x", "w", "xz"],
        ("conv", 3888, 108, 108, 192, 576),
        {"x": ((1, 3, 8, 8), "u8")},
        {"w": Z((4, 3, 3, 3), np.int8), "xz": np.uint8(0)},
    ),  # fmt: skip
    # QLinearConv 1x1: Y 1x16x4x4 = 256 el; 256 * 8 = 2048 MACs; W 128 B int8 + int32 bias 16 * 4 = 64 B; X 128 B; Y 256 B
    case(
        "QLinearConv",
        ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"],
        ("pointwise", 2048, 128, 192, 128, 256),
        {"x": ((1, 8, 4, 4), "u8")},
        {
            "xs": F(0.1),
            "xz": np.uint8(0),
            "w": Z((16, 8, 1, 1), np.int8),
            "ws": F(0.1),
            "wz": np.int8(0),
            "ys": F(0.1),
            "yz": np.uint8(0),
            "b": Z(16, np.int32),
        },
    ),  # fmt: skip
    # X 1x4x3x3 = 36, W 4x2x2x2 (Cout/g = 2), stride 2 -> Y 1x2x6x6; 36*2*4 = 288 MACs; W 32 = 128 B; Y 288 B
    case(
        "ConvTranspose",
        ["x", "w"],
        ("conv-transpose", 288, 32, 128, 144, 288),
        {"x": ((1, 4, 3, 3), "f32")},
        {"w": Z((4, 2, 2, 2), F)},
        {"strides": [2, 2]},
    ),  # fmt: skip
    # --- matrix products: MACs = numel(Y) * K ----------------------------------------------------
    # Y 2x4, K 8: 64 MACs; B 32 + C 4 = 36 params = 144 B; A 64 B; Y 32 B
    case(
        "Gemm",
        ["a", "b", "c"],
        ("gemm", 64, 36, 144, 64, 32),
        {"a": ((2, 8), "f32")},
        {"b": Z((4, 8), F), "c": Z(4, F)},
        {"transB": 1},
    ),  # fmt: skip
    # transA: A' = 3x5 from A 5x3, B 5x2 activation: Y 3x2 = 6; 6*5 = 30 MACs; no weights
    case(
        "Gemm",
        ["a", "b"],
        ("matmul", 30, 0, 0, 100, 24),
        {"a": ((5, 3), "f32"), "b": ((5, 2), "f32")},
        attrs={"transA": 1},
        id="Gemm-transA-activations",
    ),  # fmt: skip
    # batched attention scores: Y 2x3x4x6 = 144; 144*5 = 720 MACs; A 120*4 = 480 B, B 180*4 = 720 B
    case(
        "MatMul", ["a", "b"], ("matmul", 720, 0, 0, 1200, 576), {"a": ((2, 3, 4, 5), "f32"), "b": ((2, 3, 5, 6), "f32")}
    ),
    # linear layer: Y 1x10x32 = 320; 320*16 = 5120 MACs; W 512 params = 2048 B; A 160*4 = 640 B; Y 1280 B
    case(
        "MatMul",
        ["a", "w"],
        ("gemm", 5120, 512, 2048, 640, 1280),
        {"a": ((1, 10, 16), "f32")},
        {"w": Z((16, 32), F)},
        id="MatMul-weights",
    ),  # fmt: skip
    # broadcast batch: A 2x1x4x5, B 3x5x6 -> Y 2x3x4x6 = 144; 720 MACs; A 160 B, B 360 B
    case(
        "MatMul",
        ["a", "b"],
        ("matmul", 720, 0, 0, 520, 576),
        {"a": ((2, 1, 4, 5), "f32"), "b": ((3, 5, 6), "f32")},
        id="MatMul-broadcast",
    ),  # fmt: skip
    # int8 linear: Y 2x4 int32 = 32 B; 2*4*8 = 64 MACs; A 16 B uint8, B 32 B int8
    case("MatMulInteger", ["a", "b"], ("gemm", 64, 32, 32, 16, 32), {"a": ((2, 8), "u8")}, {"b": Z((8, 4), np.int8)}),
    case(
        "QLinearMatMul",
        ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
        ("gemm", 64, 32, 32, 16, 8),
        {"a": ((2, 8), "u8")},
        {
            "as": F(0.1),
            "az": np.uint8(0),
            "b": Z((8, 4), np.int8),
            "bs": F(0.1),
            "bz": np.int8(0),
            "ys": F(0.1),
            "yz": np.uint8(0),
        },
    ),  # fmt: skip
    # q.k: out 1x2x4x5 = 40, contracted d = 8: 320 MACs; q 64*4 = 256 B, k 80*4 = 320 B; out 160 B
    case(
        "Einsum",
        ["q", "k"],
        ("matmul", 320, 0, 0, 576, 160),
        {"q": ((1, 2, 4, 8), "f32"), "k": ((1, 2, 5, 8), "f32")},
        attrs={"equation": "bhqd,bhkd->bhqk"},
        id="Einsum-scores",
    ),  # fmt: skip
    # attn.v: out 1x2x4x8 = 64, contracted k = 5: 320 MACs; a 160 B, v 320 B; out 256 B
    case(
        "Einsum",
        ["a", "v"],
        ("matmul", 320, 0, 0, 480, 256),
        {"a": ((1, 2, 4, 5), "f32"), "v": ((1, 2, 5, 8), "f32")},
        attrs={"equation": "bhqk,bhkd->bhqd"},
        id="Einsum-values",
    ),  # fmt: skip
    # ellipsis with weights: out 2x3x6 = 36, contracted j = 4: 144 MACs; W 24 = 96 B; x 96 B; out 144 B
    case(
        "Einsum",
        ["x", "w"],
        ("gemm", 144, 24, 96, 96, 144),
        {"x": ((2, 3, 4), "f32")},
        {"w": Z((4, 6), F)},
        attrs={"equation": "...ij,jk->...ik"},
        id="Einsum-ellipsis",
    ),  # fmt: skip
    # implicit output "ij,jk" -> "ik": 3x5 out, j = 4: 60 MACs
    case(
        "Einsum",
        ["a", "b"],
        ("matmul", 60, 0, 0, 128, 60),
        {"a": ((3, 4), "f32"), "b": ((4, 5), "f32")},
        attrs={"equation": "ij,jk"},
        id="Einsum-implicit",
    ),  # fmt: skip
    # one operand (a transpose): no MACs
    case(
        "Einsum",
        ["x"],
        ("data-movement", 0, 0, 0, 96, 96),
        {"x": ((2, 3, 4), "f32")},
        attrs={"equation": "bij->bji"},
        id="Einsum-transpose",
    ),  # fmt: skip
    # --- normalisation: 0 MACs, reads its statistics -------------------------------------------
    # X 16 el = 64 B; scale, B, mean, var 4 each = 64 B; params = scale + B = 8
    case(
        "BatchNormalization",
        ["x", "s", "b", "m", "v"],
        ("norm", 0, 8, 64, 64, 64),
        {"x": ((1, 4, 2, 2), "f32")},
        {"s": Z(4, F), "b": Z(4, F), "m": Z(4, F), "v": Z(4, F)},
    ),  # fmt: skip
    # X 1x3x8 = 24 el = 96 B; scale 8 + B 8 = 16 params = 64 B
    case(
        "LayerNormalization",
        ["x", "s", "b"],
        ("norm", 0, 16, 64, 96, 96),
        {"x": ((1, 3, 8), "f32")},
        {"s": Z(8, F), "b": Z(8, F)},
        {"axis": -1},
    ),  # fmt: skip
    case(
        "InstanceNormalization",
        ["x", "s", "b"],
        ("norm", 0, 8, 32, 64, 64),
        {"x": ((1, 4, 2, 2), "f32")},
        {"s": Z(4, F), "b": Z(4, F)},
    ),  # fmt: skip
    # opset 18: scale and bias have num_groups = 2 elements each
    case(
        "GroupNormalization",
        ["x", "s", "b"],
        ("norm", 0, 4, 16, 64, 64),
        {"x": ((1, 4, 2, 2), "f32")},
        {"s": Z(2, F), "b": Z(2, F)},
        {"num_groups": 2},
        opset=18,
    ),  # fmt: skip
    case("LpNormalization", ["x"], ("norm", 0, 0, 0, 64, 64), {"x": ((2, 8), "f32")}),
    case("LRN", ["x"], ("norm", 0, 0, 0, 64, 64), {"x": ((1, 4, 2, 2), "f32")}, attrs={"size": 3}),
    # --- activations and element-wise: 0 MACs; X 512 B in, 512 B out -----------------------------
    *[case(op, ["x"], ("activation", 0, 0, 0, 512, 512), X) for op in ACTS],
    case("HardSwish", ["x"], ("activation", 0, 0, 0, 512, 512), X, opset=14),
    case("Mish", ["x"], ("activation", 0, 0, 0, 512, 512), X, opset=18),
    case("Gelu", ["x"], ("activation", 0, 0, 0, 512, 512), X, opset=20),
    # min and max are scalar constants: immediates, no bytes, not parameters
    case("Clip", ["x", "lo", "hi"], ("activation", 0, 0, 0, 512, 512), X, {"lo": F(0), "hi": F(6)}),
    # per-channel slope: 8 params = 32 B
    case("PRelu", ["x", "s"], ("activation", 0, 8, 32, 512, 512), X, {"s": Z((8, 1, 1), F)}),
    *[case(op, ["x"], ("elementwise", 0, 0, 0, 512, 512), X) for op in UNARY_FLOAT],
    # float in, bool out (1 byte per element)
    case("IsNaN", ["x"], ("elementwise", 0, 0, 0, 512, 128), X),
    case("IsInf", ["x"], ("elementwise", 0, 0, 0, 512, 128), X),
    case("Not", ["x"], ("elementwise", 0, 0, 0, 128, 128), {"x": ((1, 8, 4, 4), "bool")}),
    case("BitwiseNot", ["x"], ("elementwise", 0, 0, 0, 512, 512), {"x": ((1, 8, 4, 4), "i32")}, opset=18),
    # scale and zero point are scalars; uint8 output = 128 B
    case("QuantizeLinear", ["x", "s", "z"], ("elementwise", 0, 0, 0, 512, 128), X, {"s": F(0.1), "z": np.uint8(0)}),
    case(
        "DequantizeLinear", ["x", "s"], ("elementwise", 0, 0, 0, 128, 512), {"x": ((1, 8, 4, 4), "u8")}, {"s": F(0.1)}
    ),
    # broadcast: a 512 B + b 1x8x1x1 = 32 B read; 512 B written
    *[
        case(
            op, ["a", "b"], ("elementwise", 0, 0, 0, 544, 512), {"a": ((1, 8, 4, 4), "f32"), "b": ((1, 8, 1, 1), "f32")}
        )
        for op in BINARY_FLOAT
    ],  # fmt: skip
    *[
        case(
            op, ["a", "b"], ("elementwise", 0, 0, 0, 544, 128), {"a": ((1, 8, 4, 4), "f32"), "b": ((1, 8, 1, 1), "f32")}
        )
        for op in COMPARE
    ],  # fmt: skip
    *[
        case(
            op,
            ["a", "b"],
            ("elementwise", 0, 0, 0, 256, 128),
            {"a": ((1, 8, 4, 4), "bool"), "b": ((1, 8, 4, 4), "bool")},
        )
        for op in ("And", "Or", "Xor")
    ],  # fmt: skip
    *[
        case(
            op,
            ["a", "b"],
            ("elementwise", 0, 0, 0, 1024, 512),
            {"a": ((1, 8, 4, 4), "i32"), "b": ((1, 8, 4, 4), "i32")},
            opset=18,
        )
        for op in ("BitwiseAnd", "BitwiseOr", "BitwiseXor")
    ],  # fmt: skip
    case(
        "Mod", ["a", "b"], ("elementwise", 0, 0, 0, 1024, 512), {"a": ((1, 8, 4, 4), "i32"), "b": ((1, 8, 4, 4), "i32")}
    ),
    case(
        "BitShift",
        ["a", "b"],
        ("elementwise", 0, 0, 0, 256, 128),
        {"a": ((1, 8, 4, 4), "u8"), "b": ((1, 8, 4, 4), "u8")},
        attrs={"direction": "LEFT"},
    ),  # fmt: skip
    # condition 128 B (bool) + x 512 B + y 512 B; 512 B out
    case(
        "Where",
        ["c", "a", "b"],
        ("elementwise", 0, 0, 0, 1152, 512),
        {"c": ((1, 8, 4, 4), "bool"), "a": ((1, 8, 4, 4), "f32"), "b": ((1, 8, 4, 4), "f32")},
    ),  # fmt: skip
    *[
        case(op, ["x"], ("softmax", 0, 0, 0, 128, 128), {"x": ((2, 16), "f32")})
        for op in ("Softmax", "LogSoftmax", "Hardmax")
    ],
    # --- pooling, reductions, resize ---------------------------------------------------------------
    # X 1x2x4x4 = 32 el = 128 B; 2x2 stride 2 -> 1x2x2x2 = 8 el = 32 B
    *[
        case(
            op,
            ["x"],
            ("pool", 0, 0, 0, 128, 32),
            {"x": ((1, 2, 4, 4), "f32")},
            attrs={"kernel_shape": [2, 2], "strides": [2, 2]},
        )
        for op in ("MaxPool", "AveragePool", "LpPool")
    ],  # fmt: skip
    *[
        case(op, ["x"], ("pool", 0, 0, 0, 128, 8), {"x": ((1, 2, 4, 4), "f32")})
        for op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
    ],  # fmt: skip
    # X 2x3x4 = 96 B; reduce the last axis, keepdims -> 2x3x1 = 24 B
    *[
        case(op, ["x"], ("reduce", 0, 0, 0, 96, 24), {"x": ((2, 3, 4), "f32")}, attrs={"axes": [2]})
        for op in (
            "ReduceMean",
            "ReduceMax",
            "ReduceMin",
            "ReduceProd",
            "ReduceL1",
            "ReduceL2",
            "ReduceSumSquare",
            "ReduceLogSum",
            "ReduceLogSumExp",
        )
    ],  # fmt: skip
    # ReduceSum takes axes as an input (opset 13+): metadata, not read
    case(
        "ReduceSum", ["x", "axes"], ("reduce", 0, 0, 0, 96, 24), {"x": ((2, 3, 4), "f32")}, {"axes": np.array([2], I64)}
    ),
    # int64 indices out: 2x3x1 = 6 el = 48 B
    *[
        case(op, ["x"], ("reduce", 0, 0, 0, 96, 48), {"x": ((2, 3, 4), "f32")}, attrs={"axis": 2})
        for op in ("ArgMax", "ArgMin")
    ],
    # values 2x3 (24 B) + int64 indices 2x3 (48 B)
    case("TopK", ["x", "k"], ("reduce", 0, 0, 0, 64, 72), {"x": ((2, 8), "f32")}, {"k": np.array([3], I64)}, outputs=2),
    # X 1x2x4x4 (128 B) + grid 1x3x3x2 (72 B) -> 1x2x3x3 (72 B)
    case(
        "GridSample", ["x", "g"], ("resize", 0, 0, 0, 200, 72), {"x": ((1, 2, 4, 4), "f32"), "g": ((1, 3, 3, 2), "f32")}
    ),
    # 1x2x4x4 -> 1x2x8x8: 128 B in, 512 B out (roi and scales are metadata)
    case(
        "Resize",
        ["x", "", "s"],
        ("resize", 0, 0, 0, 128, 512),
        {"x": ((1, 2, 4, 4), "f32")},
        {"s": np.array([1, 1, 2, 2], F)},
    ),  # fmt: skip
    case(
        "Upsample",
        ["x", "s"],
        ("resize", 0, 0, 0, 128, 512),
        {"x": ((1, 2, 4, 4), "f32")},
        {"s": np.array([1, 1, 2, 2], F)},
        opset=9,
    ),  # fmt: skip
    # --- data movement: 0 MACs; X 2x3x4 = 96 B unless stated ----------------------------------------
    case(
        "Reshape",
        ["x", "s"],
        ("data-movement", 0, 0, 0, 96, 96),
        {"x": ((2, 3, 4), "f32")},
        {"s": np.array([6, 4], I64)},
    ),
    case("Flatten", ["x"], ("data-movement", 0, 0, 0, 96, 96), {"x": ((2, 3, 4), "f32")}),
    case(
        "Squeeze", ["x", "a"], ("data-movement", 0, 0, 0, 96, 96), {"x": ((2, 1, 12), "f32")}, {"a": np.array([1], I64)}
    ),
    case(
        "Unsqueeze",
        ["x", "a"],
        ("data-movement", 0, 0, 0, 96, 96),
        {"x": ((2, 3, 4), "f32")},
        {"a": np.array([0], I64)},
    ),
    case("Identity", ["x"], ("data-movement", 0, 0, 0, 96, 96), {"x": ((2, 3, 4), "f32")}),
    case("Dropout", ["x"], ("data-movement", 0, 0, 0, 96, 96), {"x": ((2, 3, 4), "f32")}),
    # 1x2x4 (32 B) + 1x3x4 (48 B) -> 1x5x4 (80 B)
    case(
        "Concat",
        ["a", "b"],
        ("data-movement", 0, 0, 0, 80, 80),
        {"a": ((1, 2, 4), "f32"), "b": ((1, 3, 4), "f32")},
        attrs={"axis": 1},
    ),  # fmt: skip
    case("Transpose", ["x"], ("data-movement", 0, 0, 0, 96, 96), {"x": ((2, 3, 4), "f32")}, attrs={"perm": [2, 0, 1]}),
    # fp32 -> fp16: 96 B in, 48 B out
    case("Cast", ["x"], ("data-movement", 0, 0, 0, 96, 48), {"x": ((2, 3, 4), "f32")}, attrs={"to": 10}),
    case("CastLike", ["x", "t"], ("data-movement", 0, 0, 0, 96, 48), {"x": ((2, 3, 4), "f32"), "t": ((1,), "f16")}),
    case(
        "DepthToSpace",
        ["x"],
        ("data-movement", 0, 0, 0, 128, 128),
        {"x": ((1, 8, 2, 2), "f32")},
        attrs={"blocksize": 2},
    ),
    case(
        "SpaceToDepth",
        ["x"],
        ("data-movement", 0, 0, 0, 128, 128),
        {"x": ((1, 2, 4, 4), "f32")},
        attrs={"blocksize": 2},
    ),
    # data 4x4 (64 B) + updates 2x4 (32 B) read as activations; int64 indices 2x1 are a constant (16 B); 64 B out
    case(
        "ScatterND",
        ["x", "i", "u"],
        ("data-movement", 0, 0, 16, 96, 64),
        {"x": ((4, 4), "f32"), "u": ((2, 4), "f32")},
        {"i": np.array([[0], [2]], I64)},
    ),  # fmt: skip
    case(
        "ScatterElements",
        ["x", "i", "u"],
        ("data-movement", 0, 0, 16, 72, 64),
        {"x": ((4, 4), "f32"), "u": ((1, 2), "f32")},
        {"i": np.array([[1, 3]], I64)},
    ),  # fmt: skip
    # indices 3 x int64 = 24 B; depth is a scalar; values [off, on] 2 x fp32 = 8 B (not float params? they are: 2)
    case(
        "OneHot",
        ["i", "d", "v"],
        ("data-movement", 0, 2, 8, 24, 60),
        {"i": ((3,), "i64")},
        {"d": np.array(5, I64), "v": np.array([0, 1], F)},
    ),  # fmt: skip
    # 2x6 (48 B) split in two 2x3 outputs (24 B each)
    case(
        "Split",
        ["x"],
        ("data-movement", 0, 0, 0, 48, 48),
        {"x": ((2, 6), "f32")},
        attrs={"axis": 1, "num_outputs": 2},
        opset=18,
        outputs=2,
    ),  # fmt: skip
    # 1x2x3x3 (72 B) padded by 1 on H and W -> 1x2x5x5 (200 B)
    case(
        "Pad",
        ["x", "p"],
        ("data-movement", 0, 0, 0, 72, 200),
        {"x": ((1, 2, 3, 3), "f32")},
        {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], I64)},
    ),  # fmt: skip
    case(
        "Expand",
        ["x", "s"],
        ("data-movement", 0, 0, 0, 12, 96),
        {"x": ((1, 3, 1), "f32")},
        {"s": np.array([2, 3, 4], I64)},
    ),
    case("Tile", ["x", "r"], ("data-movement", 0, 0, 0, 24, 96), {"x": ((2, 3), "f32")}, {"r": np.array([2, 2], I64)}),
    case("CumSum", ["x", "a"], ("data-movement", 0, 0, 0, 24, 24), {"x": ((2, 3), "f32")}, {"a": np.array(1, I64)}),
    case("Trilu", ["x"], ("data-movement", 0, 0, 0, 64, 64), {"x": ((4, 4), "f32")}),
    # only the 2x3 slice of the 4x6 input is read: 6 el = 24 B
    case(
        "Slice",
        ["x", "s", "e"],
        ("data-movement", 0, 0, 0, 24, 24),
        {"x": ((4, 6), "f32")},
        {"s": np.array([0, 0], I64), "e": np.array([2, 3], I64)},
    ),  # fmt: skip
    # 2 rows of a 5x4 activation: 8 el = 32 B, + int64 indices 2 el = 16 B (a constant); 32 B out
    case(
        "Gather", ["x", "i"], ("data-movement", 0, 0, 16, 32, 32), {"x": ((5, 4), "f32")}, {"i": np.array([0, 2], I64)}
    ),
    # embedding lookup: 3 rows of a 10x4 table (12 el = 48 B of weights, params = whole table 40); indices 24 B
    case(
        "Gather",
        ["w", "i"],
        ("data-movement", 0, 40, 48, 24, 48),
        {"i": ((1, 3), "i64")},
        {"w": Z((10, 4), F)},
        id="Gather-embedding",
    ),  # fmt: skip
    # 6 selected elements (24 B) + 3x2 int64 indices (48 B); 24 B out
    case(
        "GatherElements", ["x", "i"], ("data-movement", 0, 0, 0, 72, 24), {"x": ((3, 3), "f32"), "i": ((3, 2), "i64")}
    ),
    # 2 selected elements (8 B) + 2x2 int64 indices (32 B); 8 B out
    case("GatherND", ["x", "i"], ("data-movement", 0, 0, 0, 40, 8), {"x": ((2, 2), "f32"), "i": ((2, 2), "i64")}),
    # identity matrix shaped like a 3x3 activation: reads nothing, writes 36 B
    case("EyeLike", ["x"], ("data-movement", 0, 0, 0, 0, 36), {"x": ((3, 3), "f32")}),
    # random tensors read nothing and write theirs: 2x3 fp32 = 24 B
    case("RandomNormal", [], ("data-movement", 0, 0, 0, 0, 24), attrs={"shape": [2, 3]}),
    case("RandomUniform", [], ("data-movement", 0, 0, 0, 0, 24), attrs={"shape": [2, 3]}),
    case("RandomNormalLike", ["x"], ("data-movement", 0, 0, 0, 0, 24), {"x": ((2, 3), "f32")}),
    case("RandomUniformLike", ["x"], ("data-movement", 0, 0, 0, 0, 24), {"x": ((2, 3), "f32")}),
    # 2x5 fp32 probabilities (40 B) -> 2x3 int32 samples (24 B)
    case("Multinomial", ["x"], ("data-movement", 0, 0, 0, 40, 24), {"x": ((2, 5), "f32")}, attrs={"sample_size": 3}),
    # 4x2x3 fp32 (96 B) reversed per batch row; the two int64 lengths are a constant (16 B, not parameters)
    case(
        "ReverseSequence",
        ["x", "l"],
        ("data-movement", 0, 0, 16, 96, 96),
        {"x": ((4, 2, 3), "f32")},
        {"l": np.array([4, 3], I64)},
    ),  # fmt: skip
    # pooled 1x2x2x2 fp32 (32 B) + int64 indices (64 B) -> 1x2x4x4 fp32 (128 B)
    case(
        "MaxUnpool",
        ["x", "i"],
        ("resize", 0, 0, 0, 96, 128),
        {"x": ((1, 2, 2, 2), "f32"), "i": ((1, 2, 2, 2), "i64")},
        attrs={"kernel_shape": [2, 2], "strides": [2, 2]},
    ),  # fmt: skip
    # --- recurrent: per step and batch row, every weight matrix multiplies one vector ------------------
    # LSTM, T=3, B=2, I=4, H=5: 3*2 * 4 gates * 5 * (4 + 5) = 1080 MACs; W 80 + R 100 + B 40 = 220 params = 880 B;
    # X 24 el = 96 B; Y 3x1x2x5 = 120 B, Y_h 1x2x5 = 40 B, Y_c 40 B
    case(
        "LSTM",
        ["x", "w", "r", "b"],
        ("gemm", 1080, 220, 880, 96, 200),
        {"x": ((3, 2, 4), "f32")},
        {"w": Z((1, 20, 4), F), "r": Z((1, 20, 5), F), "b": Z((1, 40), F)},
        {"hidden_size": 5},
        outputs=3,
    ),  # fmt: skip
    # GRU bidirectional, T=2, B=1, I=3, H=4: 2*1 * 2 dirs * 3 gates * 4 * (3 + 4) = 336 MACs; W 72 + R 96 = 168
    # params = 672 B; X 24 B; Y 2x2x1x4 = 64 B, Y_h 2x1x4 = 32 B
    case(
        "GRU",
        ["x", "w", "r"],
        ("gemm", 336, 168, 672, 24, 96),
        {"x": ((2, 1, 3), "f32")},
        {"w": Z((2, 12, 3), F), "r": Z((2, 12, 4), F)},
        {"hidden_size": 4, "direction": "bidirectional"},
        outputs=2,
    ),  # fmt: skip
    # RNN, T=4, B=1, I=2, H=3: 4 * 3 * (2 + 3) = 60 MACs; W 6 + R 9 + B 6 = 21 params = 84 B; X 32 B; Y 48 B, Y_h 12 B
    case(
        "RNN",
        ["x", "w", "r", "b"],
        ("gemm", 60, 21, 84, 32, 60),
        {"x": ((4, 1, 2), "f32")},
        {"w": Z((1, 3, 2), F), "r": Z((1, 3, 3), F), "b": Z((1, 6), F)},
        {"hidden_size": 3},
        outputs=2,
    ),  # fmt: skip
]


# ops that only ever compute constants in a real graph (folded at load time): tested on their rule directly
SOURCE_OPS = {"Shape": (3,), "Size": (), "Constant": (2, 3), "ConstantOfShape": (2, 3), "Range": (5,)}


@pytest.mark.parametrize("op,inputs,expect,acts,consts,attrs,opset,outputs", CASES)
def test_golden(op, inputs, expect, acts, consts, attrs, opset, outputs):
    outs = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, inputs, outs, name="n", **attrs)
    model = make_model([node], [(n, *acts[n]) for n in inputs if n in acts], list(consts.items()), outs, opset)
    table = roofline.count(model)
    assert len(table) == 1, table
    row = table.iloc[0]
    got = (row.kind, row.macs, row.params, row.weight_bytes, row.input_bytes, row.output_bytes)
    assert got == expect
    assert row.flops == 2 * row.macs and row.kind in KINDS


@pytest.mark.parametrize("op", sorted(SOURCE_OPS))
def test_source_ops_read_nothing_and_write_their_output(op):
    # Shape of a 1x3x8 tensor writes 3 int64 = 24 B; Constant/ConstantOfShape write a 2x3 fp32 = 24 B; Range 5 el
    x = Tensor("x", (1, 3, 8), 1, False)
    out = Tensor("y", SOURCE_OPS[op], 7 if op in ("Shape", "Size") else 1, False)
    node = Node("n", op, "", {}, (x,) if op in ("Shape", "Size") else (), (out,))
    c = rule_for(node)(node)
    assert (c.kind, c.macs, c.reads) == ("data-movement", 0, ())
    assert c.writes == ((out, out.numel),)


def test_every_rule_has_a_golden_case():
    covered = {p.values[0] for p in CASES + GRAPH_CASES} | set(SOURCE_OPS)
    assert set(supported_ops()) - covered == set()


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already has a counting rule"):
        roofline.register_op("Conv")(lambda node: None)


def test_duplicate_or_half_registration_leaves_the_registry_unchanged():
    before = (dict(_RULES), dict(_TRAITS))
    with pytest.raises(ValueError, match="already has a counting rule"):
        roofline.register_op("BrandNewOp", "Conv")(lambda node: None)  # no half registration
    with pytest.raises(ValueError, match="already has a counting rule"):
        roofline.register_op("Relu", epilogue="elementwise")(lambda node: None)  # a second set of traits
    with pytest.raises(ValueError, match="named twice"):
        roofline.register_op("BrandNewOp", "BrandNewOp")(lambda node: None)
    assert (_RULES, _TRAITS) == before and op_traits("BrandNewOp") is None


# --- op traits --------------------------------------------------------------------------------------------

#: kinds of a rule that reads its input element by element and writes one element per input element
ELEMENTWISE_KINDS = {"activation", "elementwise", "norm", "softmax", "data-movement"}


def _apply(op: str, shape=(1, 8, 4, 4)):
    """The op's rule on a node x -> y of one shape (what an element-wise op does)."""
    x, y = Tensor("x", shape, 1, False), Tensor("y", shape, 1, False)
    node = Node("n", op, "", {}, (x,), (y,))
    return rule_for(node)(node), y


def test_traits_agree_with_the_rules():
    assert set(_TRAITS) == set(_RULES)  # every op with a part in fusion or layout has a counting rule
    for op in ops_with(absorbs="epilogue"):  # a compute head: MACs, and input 1 a weight
        w = Tensor("w", (8, 8, 1, 1), 1, True)
        node = Node("n", op, "", {"equation": "nchw,kchw->nkhw"}, (Tensor("x", (1, 8, 4, 4), 1, False), w),
                    (Tensor("y", (1, 8, 4, 4), 1, False),))  # fmt: skip
        assert rule_for(node)(node).macs > 0, op
    for op in ops_with(view=True):
        assert _apply(op)[0].kind == "data-movement", op
    for op in {o for o in supported_ops() if op_traits(o).epilogue} | ops_with(same_shape=True):
        c, y = _apply(op)
        assert (c.kind in ELEMENTWISE_KINDS, c.macs, c.writes[:1]) == (True, 0, ((y, y.numel),)), op
    assert ops_with(epilogue="clamp") == {"Relu", "Clip"}
    assert all(op_traits(o).absorbs == "epilogue" for o in supported_ops() if op_traits(o).bias_input is not None)


def test_traits_are_queried_by_op_type_or_by_value():
    assert op_traits("Relu") == Traits(epilogue="clamp", same_shape=True, layout="passthrough")
    assert op_traits("Conv") == Traits(absorbs="epilogue", bias_input=2)
    assert op_traits("Add") == Traits(absorbs="clamp", epilogue="bias", layout="passthrough")
    assert op_traits("NoSuchOp") is None
    assert {"Conv", "Gemm", "MatMul"} <= ops_with(absorbs="epilogue")
    assert ops_with(view=True, same_shape=True) == {"Identity", "Dropout"}
    assert "Reshape" in ops_with(view=True) and "Reshape" not in ops_with(same_shape=True)
    with pytest.raises(InvalidParameterError, match="'trait' parameter"):
        ops_with(fusion="epilogue")
    for values in (ABSORBS, EPILOGUES, LAYOUTS):
        assert all(isinstance(k, str) and v for k, v in values.items())


@pytest.mark.parametrize(
    "traits,message",
    [
        ({"epilogue": "clmap"}, "'epilogue' parameter must be one of .*did you mean 'clamp'\\?"),
        ({"absorbs": "everything"}, "'absorbs' parameter must be one of"),
        ({"layout": "nchwc"}, "'layout' parameter must be one of"),
        ({"view": "yes"}, "'view' trait must be True or False"),
        ({"same_shape": 1}, "'same_shape' trait must be True or False"),
        ({"absorbs": "epilogue", "bias_input": -1}, "input index >= 0"),
        ({"bias_input": 2}, "needs absorbs='epilogue'"),  # contradicting traits
        ({"absorbs": "clamp", "bias_input": 2}, "needs absorbs='epilogue'"),
        ({"view": True, "epilogue": "clamp"}, "cannot absorb or be absorbed"),
        ({"view": True, "absorbs": "clamp"}, "cannot absorb or be absorbed"),
    ],
)
def test_a_bad_or_contradicting_trait_raises_and_registers_nothing(traits, message):
    with pytest.raises(InvalidParameterError, match=message):
        roofline.register_op("BrandNewOp", **traits)(lambda node: None)
    assert op_traits("BrandNewOp") is None and "BrandNewOp" not in supported_ops()


def test_an_unknown_trait_name_raises():
    with pytest.raises(TypeError):
        roofline.register_op("BrandNewOp", fusion="epilogue")(lambda node: None)
