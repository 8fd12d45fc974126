"""TFLite operator translation (roofline.ir.tflite_ops): every builtin of the schema maps to an op type with
a counting rule; one-operator .tflite files written with the schema's object API count what hand
arithmetic says (recurrent, batched and StableHLO products, transposed and StableHLO convolutions,
mediapipe's and TF's custom operators)."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest

import roofline
from roofline.ir import Node, Tensor
from roofline.ir.tflite_ops import CONTROL_FLOW, OpContext, builtin_op, custom_op, translate
from roofline.ops import _RULES, KINDS
from roofline.profilers.tflite_writer import TfliteWriter

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")

NOT_OPERATORS = {"CUSTOM", "PLACEHOLDER_FOR_GREATER_OP_CODES", "DELEGATE", "STABLEHLO_CUSTOM_CALL"}
BUILTINS = sorted(k for k in vars(schema.BuiltinOperator) if not k.startswith("_"))


class Opts:
    """Options of any operator: a field not given is 1 (a stride, a flag, an axis, VALID padding)."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return 1


# options and shapes for builtins whose translation reads more than a stride or an axis
OPTIONS = {
    "STABLEHLO_CONVOLUTION": Opts(
        inputBatchDimension=0,
        inputFeatureDimension=3,
        inputSpatialDimensions=[1, 2],
        kernelInputFeatureDimension=2,
        kernelOutputFeatureDimension=3,
        kernelSpatialDimensions=[0, 1],
        windowStrides=[1, 1],
        lhsDilation=None,
        rhsDilation=None,
    ),  # fmt: skip
    "STABLEHLO_DOT_GENERAL": Opts(
        lhsBatchingDimensions=[0, 1],
        rhsBatchingDimensions=[0, 1],
        lhsContractingDimensions=[3],
        rhsContractingDimensions=[2],
    ),  # fmt: skip
    "STABLEHLO_REDUCE": Opts(dimensions=[1]),
    "STABLEHLO_REDUCE_WINDOW": Opts(windowDimensions=[1, 2, 2, 1], windowStrides=[1, 2, 2, 1]),
    "STABLEHLO_TRANSPOSE": Opts(permutation=[0, 2, 3, 1]),
}
N_INPUTS = {"LSTM": 24, "UNIDIRECTIONAL_SEQUENCE_LSTM": 24, "BIDIRECTIONAL_SEQUENCE_LSTM": 48,
            "BIDIRECTIONAL_SEQUENCE_RNN": 12}  # fmt: skip
WEIGHT_5D = {"CONV_3D", "CONV_3D_TRANSPOSE"}


def context(builtin: str, four_d: bool) -> OpContext:
    n = N_INPUTS.get(builtin, 5)
    ins = [f"in{i}" for i in range(n)]
    tensors = {name: Tensor(name, (2, 3, 4, 5), 1, False) for name in ins}
    tensors["y"] = Tensor("y", (2, 3, 4, 5), 1, False)
    if builtin in WEIGHT_5D:
        tensors["in1"] = Tensor("in1", (3, 3, 3, 4, 5), 1, True)
    elif builtin == "RFFT2D":
        tensors["y"] = Tensor("y", (2, 3, 4, 3), 14, False)
    return OpContext(builtin, OPTIONS.get(builtin, Opts()), ins, ["y"], tensors,
                     set(tensors) if four_d else set())  # fmt: skip


@pytest.mark.parametrize("four_d", [False, True], ids=["as-stored", "nchw"])
@pytest.mark.parametrize("builtin", [b for b in BUILTINS if b not in NOT_OPERATORS and b not in CONTROL_FLOW])
def test_every_builtin_translates_to_an_op_with_a_counting_rule(builtin, four_d):
    ctx = context(builtin, four_d)
    op_type, attrs, ins = translate(ctx)
    assert op_type in _RULES, f"{builtin} -> {op_type}"
    assert isinstance(attrs, dict) and all(n is None or n in ctx.tensors for n in ins)
    # the rule runs on what the translation gives it
    node = Node(builtin.lower(), op_type, "", attrs, tuple(ctx.tensors.get(n) if n else None for n in ins),
                tuple(ctx.tensors[n] for n in ctx.outputs))  # fmt: skip
    c = _RULES[op_type](node)
    assert c.kind in KINDS and c.macs >= 0


def test_control_flow_and_unknown_custom_ops_keep_their_tflite_names():
    for builtin in CONTROL_FLOW:
        assert translate(context(builtin, False))[0] == f"TFLITE_{builtin}"
    ctx = context("CUSTOM", False)
    ctx.custom_code = "MyVendorOp"
    assert translate(ctx)[0] == "TFLITE_CUSTOM:MyVendorOp"
    call = context("STABLEHLO_CUSTOM_CALL", False)
    call.options = Opts(callTargetName=b"my_target")
    assert translate(call)[0] == "TFLITE_CUSTOM:my_target"


def test_a_builtin_or_custom_code_has_one_translation():
    with pytest.raises(ValueError, match="already has a translation"):
        builtin_op("CONV_2D")(lambda ctx: None)
    with pytest.raises(ValueError, match="already has a translation"):
        builtin_op("ADD")(lambda ctx: None)  # a plain-name mapping counts too
    with pytest.raises(ValueError, match="already has a translation"):
        custom_op("MaxUnpooling2D")(lambda ctx: None)


def test_importing_the_translations_stays_cheap():
    code = "import sys, roofline.ir.tflite_ops; print(sorted(m for m in ('flatbuffers', 'ai_edge_litert') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- one-operator models, counted end to end ---------------------------------------------------------------


def _count(tw: TfliteWriter, inputs, outputs, litert: bool = False):
    """The one row of a one-operator model; ``litert``: LiteRT loads and runs the file too (a real layout)."""
    data = tw.finish(inputs, outputs)
    if litert:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=data)
        interpreter.allocate_tensors()
        interpreter.invoke()
    table = roofline.count(data)
    assert len(table) == 1, table
    return table.iloc[0]


def _const(tw: TfliteWriter, shape, dtype="fp32", value=None):
    data = np.zeros(shape) if value is None else np.asarray(value)
    return tw.tensor(shape, dtype, data)


def _options2(tw: TfliteWriter, kind: str, **fields) -> None:
    """Give the last operator StableHLO options (builtinOptions2), which TfliteWriter.op does not write."""
    opt = getattr(tw.s, f"{kind}T")()
    for k, v in fields.items():
        setattr(opt, k, v)
    tw.ops[-1].builtinOptions2Type, tw.ops[-1].builtinOptions2 = getattr(tw.s.BuiltinOptions2, kind), opt


def _custom_options(tw: TfliteWriter, raw: bytes) -> None:
    tw.ops[-1].customOptions = list(raw)


def test_a_sequence_lstm_counts_four_gates_per_step():
    # batch 1, 5 steps, 3 features, 4 units: per step 4 gates x 4 units x (3 inputs + 4 recurrent) = 112 MACs
    tw = TfliteWriter()
    x = tw.tensor((1, 5, 3), name="x")
    wx = [_const(tw, (4, 3)) for _ in range(4)]
    wh = [_const(tw, (4, 4)) for _ in range(4)]
    b = [_const(tw, (4,)) for _ in range(4)]
    states = [tw.tensor((1, 4)), tw.tensor((1, 4))]
    for s in states:
        tw.tensors[s].isVariable = True
    y = tw.tensor((1, 5, 4), name="y")
    ins = [x, *wx, *wh, -1, -1, -1, *b, -1, -1, *states, -1, -1, -1, -1]
    tw.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], "UnidirectionalSequenceLSTMOptions", timeMajor=False,
          fusedActivationFunction=4)  # fmt: skip
    row = _count(tw, [x], [y], litert=True)
    assert (row.op_type, row.kind, row.macs) == ("TFLITE_UNIDIRECTIONAL_SEQUENCE_LSTM", "gemm", 5 * 4 * 4 * (3 + 4))
    assert row.params == 4 * 12 + 4 * 16 + 4 * 4
    assert row.input_bytes == (15 + 4 + 4) * 4 and row.output_bytes == 20 * 4


@pytest.mark.parametrize("cell", ["LSTM", "RNN"])
def test_bidirectional_sequences_count_both_directions(cell):
    # 2 steps, batch 1, 3 features, 4 units, forward and backward: 2 x 2 x gates x 4 x (3 + 4) MACs
    t, i, u = 2, 3, 4
    tw = TfliteWriter()
    x = tw.tensor((t, 1, i))
    gates = 4 if cell == "LSTM" else 1
    if cell == "LSTM":  # per direction: 4 input, 4 recurrent weights, 3 peepholes, 4 biases, projection, its bias

        def direction():
            return [*[_const(tw, (u, i)) for _ in range(4)], *[_const(tw, (u, u)) for _ in range(4)], -1, -1, -1,
                    *[_const(tw, (u,)) for _ in range(4)], -1, -1]  # fmt: skip

        fw, bw = direction(), direction()
        states = [tw.tensor((1, u)) for _ in range(4)]
        ins, options = [x, *fw, *bw, *states, *[-1] * 9], "BidirectionalSequenceLSTMOptions"
    else:  # per direction: input weights, recurrent weights, bias, hidden state; then aux input and weights

        def direction():
            return [_const(tw, (u, i)), _const(tw, (u, u)), _const(tw, (u,)), tw.tensor((1, u))]

        fw, bw = direction(), direction()
        states = [fw[3], bw[3]]
        ins, options = [x, *fw, *bw, -1, -1, -1], "BidirectionalSequenceRNNOptions"
    for s in states:
        tw.tensors[s].isVariable = True
    outs = [tw.tensor((t, 1, u)), tw.tensor((t, 1, u))]
    tw.op(f"BIDIRECTIONAL_SEQUENCE_{cell}", ins, outs, options, timeMajor=True, mergeOutputs=False)
    table = roofline.count(tw.finish([x], outs))
    assert list(table.macs) == [t * 2 * gates * u * (i + u)]
    assert table.params.iloc[0] == 2 * gates * (u * i + u * u + u)


def test_batch_matmul_with_adjoint_and_with_nchw_remapped_operands():
    # [2,3,4] x [2,5,4]^T -> [2,3,5]: 2*3*5 outputs x K=4 = 120 MACs
    tw = TfliteWriter()
    a, b, y = tw.tensor((2, 3, 4)), tw.tensor((2, 5, 4)), tw.tensor((2, 3, 5))
    tw.op("BATCH_MATMUL", [a, b], [y], "BatchMatMulOptions", adjX=False, adjY=True)
    row = _count(tw, [a, b], [y])
    assert (row.op_type, row.kind, row.macs) == ("Einsum", "matmul", 120)
    # 4-D operands are stored NCHW by the loader: [1,2,3,4] x [1,2,4,5] -> [1,2,3,5], 30 outputs x K=4 per head
    tw = TfliteWriter()
    a, b, y = tw.tensor((1, 2, 3, 4)), tw.tensor((1, 2, 4, 5)), tw.tensor((1, 2, 3, 5))
    tw.op("BATCH_MATMUL", [a, b], [y], "BatchMatMulOptions", adjX=False, adjY=False)
    row = _count(tw, [a, b], [y])
    assert (row.kind, row.macs, row.input_bytes, row.output_bytes) == ("matmul", 2 * 3 * 5 * 4, 64 * 4, 30 * 4)


def test_transpose_conv_scatters_every_input_element():
    # input 1x4x4x4, filter OHWI 2x3x3x4, stride 2 -> 1x8x8x2; 16 pixels x 4 channels x 2 outputs x 9 = 1152 MACs
    tw = TfliteWriter()
    shape = _const(tw, (4,), "int32", [1, 8, 8, 2])
    w = _const(tw, (2, 3, 3, 4))
    x, y = tw.tensor((1, 4, 4, 4)), tw.tensor((1, 8, 8, 2))
    tw.op("TRANSPOSE_CONV", [shape, w, x], [y], "TransposeConvOptions", padding=0, strideH=2, strideW=2)
    row = _count(tw, [x], [y], litert=True)
    assert (row.op_type, row.kind, row.macs, row.params) == ("ConvTranspose", "conv-transpose", 1152, 72)


def test_stablehlo_dot_general_is_an_einsum_over_its_dimension_numbers():
    # batch 2, [3x4] x [4x5]: 2*3*5 outputs x 4 = 120 MACs; the rhs is a 2x4x5 constant (40 parameters)
    tw = TfliteWriter()
    a, b, y = tw.tensor((2, 3, 4)), _const(tw, (2, 4, 5)), tw.tensor((2, 3, 5))
    tw.op("STABLEHLO_DOT_GENERAL", [a, b], [y])
    _options2(tw, "StablehloDotGeneralOptions", lhsBatchingDimensions=[0], rhsBatchingDimensions=[0],
              lhsContractingDimensions=[2], rhsContractingDimensions=[1])  # fmt: skip
    row = _count(tw, [a], [y])
    assert (row.op_type, row.kind, row.macs, row.params) == ("Einsum", "gemm", 120, 40)


@pytest.mark.parametrize("group", [1, 3])
def test_stablehlo_convolution_nhwc_hwio(group):
    # 1x6x6x3 NHWC, HWIO 3x3x(3/group)x(8 or 3), valid -> 1x4x4xCout: 16 pixels x Cout x 3/group x 9 MACs
    cout = 8 if group == 1 else 3
    tw = TfliteWriter()
    x, w, y = tw.tensor((1, 6, 6, 3)), _const(tw, (3, 3, 3 // group, cout)), tw.tensor((1, 4, 4, cout))
    tw.op("STABLEHLO_CONVOLUTION", [x, w], [y])
    _options2(tw, "StablehloConvolutionOptions", windowStrides=[1, 1], inputBatchDimension=0, inputFeatureDimension=3,
              inputSpatialDimensions=[1, 2], kernelInputFeatureDimension=2, kernelOutputFeatureDimension=3,
              kernelSpatialDimensions=[0, 1], outputBatchDimension=0, outputFeatureDimension=3,
              outputSpatialDimensions=[1, 2], featureGroupCount=group, batchGroupCount=1)  # fmt: skip
    row = _count(tw, [x], [y])
    kind = "conv" if group == 1 else "depthwise"
    assert (row.op_type, row.kind, row.macs) == ("Conv", kind, 16 * cout * (3 // group) * 9)
    assert row.params == 9 * (3 // group) * cout


def test_mediapipe_transposed_convolution_with_bias():
    # input 1x4x4x8, weights OHWI 4x2x2x8, bias 4, stride 2 valid -> 1x8x8x4; 16 px x 8 x 4 x 4 = 2048 MACs
    tw = TfliteWriter()
    x, w, b, y = tw.tensor((1, 4, 4, 8)), _const(tw, (4, 2, 2, 8)), _const(tw, (4,)), tw.tensor((1, 8, 8, 4))
    tw.op("CUSTOM", [x, w, b], [y], custom_code="Convolution2DTransposeBias")
    _custom_options(tw, struct.pack("<3i", 2, 2, 2))  # TfLiteTransposeConvParams: padding VALID, strides 2, 2
    row = _count(tw, [x], [y])
    assert (row.op_type, row.kind, row.macs, row.params) == ("ConvTranspose", "conv-transpose", 2048, 132)


def test_mediapipe_max_pooling_with_argmax_and_unpooling():
    tw = TfliteWriter()
    x, y, idx = tw.tensor((1, 4, 4, 2)), tw.tensor((1, 2, 2, 2)), tw.tensor((1, 2, 2, 2), "fp32")
    u = tw.tensor((1, 4, 4, 2))
    pool = struct.pack("<6i", 1, 2, 2, 2, 2, 0)  # TfLitePoolParams: SAME, strides 2, 2, filter 2x2, no activation
    tw.op("CUSTOM", [x], [y, idx], custom_code="MaxPoolingWithArgmax2D")
    _custom_options(tw, pool)
    tw.op("CUSTOM", [y, idx], [u], custom_code="MaxUnpooling2D")
    _custom_options(tw, pool)
    table = roofline.count(tw.finish([x], [u]))
    assert list(table.op_type) == ["MaxPool", "MaxUnpool"] and list(table.kind) == ["pool", "resize"]
    # the pool writes values and indices (2 x 8 fp32); the unpooling reads both and writes 1x4x4x2
    assert list(table.output_bytes) == [64, 128] and list(table.input_bytes) == [128, 64]
    assert table.macs.sum() == 0


def test_detection_postprocess_writes_at_most_max_detections():
    from flatbuffers import flexbuffers

    tw = TfliteWriter()
    boxes, scores, anchors = tw.tensor((1, 10, 4)), tw.tensor((1, 10, 3)), _const(tw, (10, 4))
    outs = [tw.tensor(()), tw.tensor(()), tw.tensor(()), tw.tensor(())]  # shapes the converter left open
    tw.op("CUSTOM", [boxes, scores, anchors], outs, custom_code="TFLite_Detection_PostProcess")
    opts = {"max_detections": 5, "max_classes_per_detection": 1, "use_regular_nms": False, "num_classes": 2}
    _custom_options(tw, bytes(flexbuffers.Dumps(opts)))
    table = roofline.count(tw.finish([boxes, scores], outs))
    row = table.iloc[0]
    assert (row.op_type, row.kind, row.macs) == ("TFLITE_CUSTOM:TFLite_Detection_PostProcess", "data-movement", 0)
    # 5 boxes x 4 + 5 classes + 5 scores + 1 count, fp32; reads encodings and scores (70 x 4 B), anchors 160 B
    assert (row.output_bytes, row.input_bytes, row.weight_bytes) == ((20 + 5 + 5 + 1) * 4, 70 * 4, 160)


def test_mediapipe_landmark_ops():
    tw = TfliteWriter()
    img, m, crop = tw.tensor((1, 8, 8, 3)), tw.tensor((1, 1, 4, 4)), tw.tensor((1, 4, 4, 3))
    lm, out = tw.tensor((1, 5, 3)), tw.tensor((1, 5, 3))
    flat, matrix = tw.tensor((1, 1, 1, 15)), tw.tensor((1, 4, 4))
    tw.op("CUSTOM", [flat], [matrix], custom_code="Landmarks2TransformMatrix")
    tw.op("CUSTOM", [img, m], [crop], custom_code="TransformTensorBilinear")
    tw.op("CUSTOM", [lm, matrix], [out], custom_code="TransformLandmarks")
    table = roofline.count(tw.finish([flat, img, m, lm], [crop, out]))
    assert list(table.op_type) == ["TFLITE_CUSTOM:Landmarks2TransformMatrix", "GridSample",
                                   "TFLITE_CUSTOM:TransformLandmarks"]  # fmt: skip
    assert list(table.kind) == ["data-movement", "resize", "elementwise"] and table.macs.sum() == 0
    # the matrix from 15 landmark values; the crop reads the image (192 el) and the 4x4 matrix
    assert list(table.input_bytes) == [60, (192 + 16) * 4, (15 + 16) * 4]
    assert list(table.output_bytes) == [64, 48 * 4, 60]
