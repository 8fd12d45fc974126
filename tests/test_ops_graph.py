"""Golden cases of the counting rules that ONNX shape inference cannot exercise (TFLite-only op types,
outputs whose size depends on data): each node is built directly as a Graph. Expected tuples are
(kind, macs, params, weight_bytes, input_bytes, output_bytes), worked out beside each case;
``tests/test_ops.py::test_every_rule_has_a_golden_case`` counts these too.
"""

from __future__ import annotations

import pytest

import roofline
from roofline.ir import Graph, Node, Tensor
from roofline.ops import KINDS


def graph_case(op, inputs, outputs, expect, attrs=None, id=None):
    """A node built as a Graph, for op types ONNX shape inference does not know (TFLite's) or cannot size
    (data-dependent outputs). inputs: (shape, dtype, const) or None (an omitted optional input);
    outputs: (shape, dtype)."""
    return pytest.param(op, inputs, outputs, attrs or {}, expect, id=id or op)


def W(*shape):  # a constant fp32 weight
    return (shape, "f32", True)


def A(*shape, dtype="f32"):  # an activation
    return (shape, dtype, False)


_ELEM = {"f32": 1, "u8": 2, "i32": 6, "i64": 7, "str": 8, "bool": 9, "c64": 14, "res": 0}

# the TFLite LSTM layout: 0 input, 1-4 input-to-{input,forget,cell,output} weights, 5-8 recurrent-to-*, 9-11
# peepholes, 12-15 gate biases, 16 projection weights, 17 projection bias, 18 activation state, 19 cell state
_CIFG_LSTM = [A(2, 3), None, W(4, 3), W(4, 3), W(4, 3), None, W(4, 2), W(4, 2), W(4, 2), None, None, None, None,
              W(4), W(4), W(4), W(2, 4), None, A(2, 2), A(2, 4)]  # fmt: skip
_SEQ_LSTM = [A(3, 1, 2), *[W(2, 2)] * 8, None, None, None, *[W(2)] * 4, None, None, A(1, 2), A(1, 2)]
_BI_LSTM = [A(2, 1, 2), *[W(2, 2)] * 8, *[None] * 9, *[W(2, 2)] * 8, *[None] * 9, *[A(1, 2)] * 4]

GRAPH_CASES = [
    # 2x3 bool (6 B) -> the coordinates of 4 true elements, 2x4 int64 (64 B)
    graph_case("NonZero", [A(2, 3, dtype="bool")], [((2, 4), "i64")], ("data-movement", 0, 0, 0, 6, 64)),
    # 6 fp32 (24 B) -> 4 unique values (16 B) + 6 int64 inverse indices (48 B)
    graph_case("Unique", [A(6)], [((4,), "f32"), ((6,), "i64")], ("data-movement", 0, 0, 0, 24, 64)),
    # 4 fp32 (16 B) + a 4-element bool condition (4 B) -> the 2 selected elements (8 B)
    graph_case("Compress", [A(4), A(4, dtype="bool")], [((2,), "f32")], ("data-movement", 0, 0, 0, 20, 8)),
    # boxes 1x5x4 (80 B) + scores 1x1x5 (20 B); max boxes and thresholds are scalars; 3 selected x 3 int64 = 72 B
    graph_case(
        "NonMaxSuppression",
        [A(1, 5, 4), A(1, 1, 5), ((), "i64", True), ((), "f32", True)],
        [((3, 3), "i64")],
        ("data-movement", 0, 0, 0, 100, 72),
    ),
    # CIFG LSTM step with projection, B=2, I=3, U=4, P=2: matrices 3x(4x3) + 3x(4x2) + 2x4 = 68 el, x 2 rows = 136
    # MACs; params 68 + 3 biases x 4 = 80 = 320 B; X 24 B + states 2x2 (16 B) + 2x4 (32 B); output 2x2 = 16 B
    graph_case(
        "TFLITE_LSTM",
        _CIFG_LSTM,
        [((2, 2), "f32")],
        ("gemm", 136, 80, 320, 72, 16),
        {"matrix_inputs": [2, 3, 4, 6, 7, 8, 16]},
    ),
    # T=3, B=1, I=U=2: 8 matrices x 4 el = 32, x 3 rows = 96 MACs; params 32 + 8 bias = 40 = 160 B;
    # X 24 B + states 16 B; output 3x1x2 = 24 B
    graph_case(
        "TFLITE_UNIDIRECTIONAL_SEQUENCE_LSTM",
        _SEQ_LSTM,
        [((3, 1, 2), "f32")],
        ("gemm", 96, 40, 160, 40, 24),
        {"matrix_inputs": [1, 2, 3, 4, 5, 6, 7, 8]},
    ),
    # T=2, B=1, I=U=2, forward and backward: 16 matrices x 4 el = 64, x 2 rows = 128 MACs; 64 params = 256 B;
    # X 16 B + 4 states x 8 B; outputs 2 x (2x1x2) = 32 B
    graph_case(
        "TFLITE_BIDIRECTIONAL_SEQUENCE_LSTM",
        _BI_LSTM,
        [((2, 1, 2), "f32"), ((2, 1, 2), "f32")],
        ("gemm", 128, 64, 256, 48, 32),
        {"matrix_inputs": [*range(1, 9), *range(18, 26)]},
    ),
    # B=2, I=3, U=4: 2 * (4x3 + 4x4) = 56 MACs; params 12 + 16 + 4 = 32 = 128 B; X 24 B + state 32 B; out 32 B
    graph_case(
        "TFLITE_RNN",
        [A(2, 3), W(4, 3), W(4, 4), W(4), A(2, 4)],
        [((2, 4), "f32")],
        ("gemm", 56, 32, 128, 56, 32),
        {"matrix_inputs": [1, 2]},
    ),
    # B=1, T=3 (batch major), I=U=2: 3 * (4 + 4) = 24 MACs; params 10 = 40 B; X 24 B + state 8 B; out 24 B
    graph_case(
        "TFLITE_UNIDIRECTIONAL_SEQUENCE_RNN",
        [A(1, 3, 2), W(2, 2), W(2, 2), W(2), A(1, 2)],
        [((1, 3, 2), "f32")],
        ("gemm", 24, 10, 40, 32, 24),
        {"matrix_inputs": [1, 2]},
    ),
    # T=2, B=1, I=2, U=3, two directions: 2 * 2 * (3x2 + 3x3) = 60 MACs; params 2 * (6 + 9 + 3) = 36 = 144 B;
    # X 16 B + 2 states x 12 B; outputs 2 x 24 B
    graph_case(
        "TFLITE_BIDIRECTIONAL_SEQUENCE_RNN",
        [A(2, 1, 2), W(3, 2), W(3, 3), W(3), A(1, 3), W(3, 2), W(3, 3), W(3), A(1, 3)],
        [((2, 1, 3), "f32"), ((2, 1, 3), "f32")],
        ("gemm", 60, 36, 144, 40, 48),
        {"matrix_inputs": [1, 2, 5, 6]},
    ),
    # B=2, I=3, 2 units x rank 2 = 4 filters, memory 5: 2 * (4x3 feature + 4x5 time) = 64 MACs; params 12 + 20 +
    # 2 bias = 34 = 136 B; X 24 B + state 2x20 (160 B); out 2x2 = 16 B
    graph_case(
        "TFLITE_SVDF",
        [A(2, 3), W(4, 3), W(4, 5), W(2), A(2, 20)],
        [((2, 2), "f32")],
        ("gemm", 64, 34, 136, 184, 16),
        {"matrix_inputs": [1, 2]},
    ),
    # 3 weighted ids into a 10x4 table: 3 rows x 4 = 12 MACs; reads the 3 rows (48 B; the table's 40 elements are
    # parameters) + int32 dense shape (8 B constant); ids 12 B + indices 24 B + weights 12 B; out 2x4 = 32 B
    graph_case(
        "TFLITE_EMBEDDING_LOOKUP_SPARSE",
        [A(3, dtype="i32"), A(3, 2, dtype="i32"), ((2,), "i32", True), A(3), W(10, 4)],
        [((2, 4), "f32")],
        ("gemm", 12, 40, 56, 48, 32),
    ),
    # 1x4x8 real -> 1x4x5 complex64 (160 B): rows 4 x 8 log2 8 = 96, columns 5 x 2 x 4 log2 4 = 80: 176 MACs;
    # reads the input (128 B), fft_length is metadata
    graph_case(
        "TFLITE_RFFT2D",
        [A(1, 4, 8), ((2,), "i32", True)],
        [((1, 4, 5), "c64")],
        ("matmul", 176, 0, 0, 128, 160),
    ),
    # element-wise: 2x3 fp32 (24 B) -> 2x3 int32 bucket ids (24 B)
    graph_case("TFLITE_BUCKETIZE", [A(2, 3)], [((2, 3), "i32")], ("elementwise", 0, 0, 0, 24, 24)),
    # 4x2 hash planes (8 params, 32 B) over a 3x5 input (60 B) -> 4 int32 signatures (16 B)
    graph_case("TFLITE_LSH_PROJECTION", [W(4, 2), A(3, 5)], [((4,), "i32")], ("elementwise", 0, 8, 32, 60, 16)),
    graph_case("TFLITE_DENSIFY", [A(2, 3)], [((2, 3), "f32")], ("elementwise", 0, 0, 0, 24, 24)),
    # 5 landmarks x 3 (60 B) and a 4x4 transform (64 B) -> 5x3 (60 B)
    graph_case(
        "TFLITE_CUSTOM:TransformLandmarks",
        [A(1, 5, 3), A(1, 4, 4)],
        [((1, 5, 3), "f32")],
        ("elementwise", 0, 0, 0, 124, 60),
    ),
    # strings have no fixed size: 0 B
    graph_case("TFLITE_SKIP_GRAM", [A(1, dtype="str")], [((3,), "str")], ("data-movement", 0, 0, 0, 0, 0)),
    # 10 landmarks x 3 (120 B, read whole: an upper bound) -> a 1x4x4 matrix (64 B)
    graph_case(
        "TFLITE_CUSTOM:Landmarks2TransformMatrix",
        [A(1, 1, 1, 30)],
        [((1, 4, 4), "f32")],
        ("data-movement", 0, 0, 0, 120, 64),
    ),
    # a resource handle (no bytes) -> the 2x3 fp32 variable copied out: 24 B read, 24 B written
    graph_case("TFLITE_READ_VARIABLE", [A(dtype="res")], [((2, 3), "f32")], ("data-movement", 0, 0, 0, 24, 24)),
    # handle + 2x3 fp32 value (24 B) copied into the variable (24 B); the operator has no outputs
    graph_case("TFLITE_ASSIGN_VARIABLE", [A(dtype="res"), A(2, 3)], [], ("data-movement", 0, 0, 0, 24, 24)),
    # box encodings 1x6x4 (96 B) + scores 1x6x3 (72 B) + anchors 6x4 (24 params, 96 B) -> 2 detections: boxes
    # 2x4 (32 B), classes and scores 2 each (8 + 8 B), count 1 (4 B), whatever shapes the file stores
    graph_case(
        "TFLITE_CUSTOM:TFLite_Detection_PostProcess",
        [A(1, 6, 4), A(1, 6, 3), W(6, 4)],
        [((), "f32"), ((), "f32"), ((), "f32"), ((), "f32")],
        ("data-movement", 0, 24, 96, 168, 52),
        {"detections": 2},
    ),
]


@pytest.mark.parametrize("op,inputs,outputs,attrs,expect", GRAPH_CASES)
def test_golden_graph(op, inputs, outputs, attrs, expect):
    ins = tuple(None if s is None else Tensor(f"x{i}", s[0], _ELEM[s[1]], s[2]) for i, s in enumerate(inputs))
    outs = tuple(Tensor(f"y{i}", shape, _ELEM[dtype], False) for i, (shape, dtype) in enumerate(outputs))
    node = Node("n", op, "", attrs, ins, outs)
    tensors = {t.name: t for t in ins + outs if t is not None}
    graph = Graph("g", [node], tensors, [t.name for t in ins if t is not None and not t.const], list(tensors)[-1:])
    table = roofline.count(graph)
    assert len(table) == 1, table
    row = table.iloc[0]
    got = (row.kind, row.macs, row.params, row.weight_bytes, row.input_bytes, row.output_bytes)
    assert got == expect
    assert row.flops == 2 * row.macs and row.kind in KINDS
