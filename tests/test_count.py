"""Loading, shapes, fusion and dtype conventions on tiny graphs; totals on a whole MobileNetV2."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import make_model
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx import helper

import roofline
from roofline.errors import ModelLoadError, ShapeError, UnsupportedOpError

F = np.float32
Z = np.zeros


def conv_bn_relu(cin=4, cout=8, hw=8, extra=()):
    """x(1,cin,hw,hw) -> Conv 3x3 (no bias) -> BN -> Relu [-> extra nodes]."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn"),
        helper.make_node("Relu", ["n"], ["r"], name="relu"),
        *extra,
    ]
    consts = [("w", Z((cout, cin, 3, 3), F))] + [(k, Z(cout, F)) for k in "sbmv"]
    return make_model(nodes, [("x", (1, cin, hw, hw), "f32")], consts)


# ---- conventions, each with a hand-computed value ------------------------------------------------


def test_fused_conv_bn_relu_reads_folded_weights_and_writes_one_tensor():
    # raw: Conv MACs = 8*8*8 * 4*9 = 18432. Fused layer reads X (1x4x8x8 = 256 el), W (288 el) and a
    # folded bias of 8 el; it writes only the Relu output (512 el). int8: 256 + 296 + 512 bytes.
    model = conv_bn_relu()
    raw = roofline.count(model, weight_dtype="int8", activation_dtype="int8")
    fused = roofline.count(model, weight_dtype="int8", activation_dtype="int8", fuse="runtime")
    assert list(raw.op_type) == ["Conv", "BatchNormalization", "Relu"]
    assert len(fused) == 1 and fused.iloc[0].fused == "BatchNormalization+Relu"
    row = fused.iloc[0]
    assert (row.macs, row.input_bytes, row.weight_bytes, row.output_bytes) == (18432, 256, 296, 512)
    # raw: conv 256+288+512, BN 512 + 4*8 stats + 512, relu 512 + 512
    assert raw.bytes.sum() == (256 + 288 + 512) + (512 + 32 + 512) + (512 + 512)
    # params are a property of the model: conv weight 288 + BN scale and bias 16, in both views
    assert roofline.totals(raw)["params"] == roofline.totals(fused)["params"] == 304
    assert roofline.totals(raw)["macs"] == roofline.totals(fused)["macs"] == 18432


@pytest.mark.parametrize(
    "dtype,expect",
    [(None, (1024, 1184, 2048)), ("fp32", (1024, 1184, 2048)), ("fp16", (512, 592, 1024)), ("int8", (256, 296, 512))],
)
def test_bytes_scale_with_the_chosen_precision(dtype, expect):
    # the fused layer above: 256 activation elements in, 296 weight elements, 512 out
    row = roofline.count(conv_bn_relu(), weight_dtype=dtype, activation_dtype=dtype, fuse="runtime").iloc[0]
    assert (row.input_bytes, row.weight_bytes, row.output_bytes) == expect


def test_weights_and_activations_can_differ_in_precision():
    row = roofline.count(conv_bn_relu(), weight_dtype="int8", activation_dtype="fp16", fuse="runtime").iloc[0]
    assert (row.input_bytes, row.weight_bytes, row.output_bytes) == (512, 296, 1024)


def test_conv_with_bias_folds_bn_without_an_extra_bias():
    nodes = [
        helper.make_node("Conv", ["x", "w", "cb"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn"),
    ]
    consts = [("w", Z((8, 4, 1, 1), F)), ("cb", Z(8, F))] + [(k, Z(8, F)) for k in "sbmv"]
    model = make_model(nodes, [("x", (1, 4, 2, 2), "f32")], consts)
    row = roofline.count(model, fuse="runtime", weight_dtype="int8").iloc[0]
    assert row.weight_bytes == 32 + 8  # W 8x4 + the conv's own bias


def test_intermediate_read_elsewhere_is_not_fused():
    # the BN output also feeds a pool: Conv+BN fuse, but the Relu cannot (its input must be written)
    extra = [helper.make_node("MaxPool", ["n"], ["y"], name="pool", kernel_shape=[2, 2])]
    model = conv_bn_relu(extra=extra)
    model.graph.output.append(helper.make_tensor_value_info("r", onnx.TensorProto.FLOAT, None))
    fused = roofline.count(model, fuse="runtime")
    assert list(fused.op_type) == ["Conv", "Relu", "MaxPool"]
    assert fused.iloc[0].fused == "BatchNormalization"


def test_swish_and_hardswish_patterns_fuse():
    # Conv -> x * sigmoid(x)   and   Conv -> x * clip(x + 3, 0, 6) / 6
    swish = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Sigmoid", ["c"], ["g"], name="sig"),
        helper.make_node("Mul", ["c", "g"], ["y"], name="mul"),
    ]
    hswish = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "three"], ["a"], name="add3"),
        helper.make_node("Clip", ["a", "zero", "six"], ["k"], name="relu6"),
        helper.make_node("Mul", ["c", "k"], ["m"], name="mul"),
        helper.make_node("Div", ["m", "six"], ["y"], name="div6"),
    ]
    consts = [("w", Z((8, 4, 1, 1), F)), ("three", F(3)), ("zero", F(0)), ("six", F(6))]
    for nodes, fused_ops in ((swish, "Sigmoid+Mul"), (hswish, "Add+Clip+Mul+Div")):
        table = roofline.count(make_model(nodes, [("x", (1, 4, 2, 2), "f32")], consts), fuse="runtime")
        assert len(table) == 1 and table.iloc[0].fused == fused_ops
        # scalars are immediates: the fused layer reads only W (32 el) and X (16 el), writes Y (32 el)
        assert (table.iloc[0].weight_bytes, table.iloc[0].input_bytes, table.iloc[0].output_bytes) == (128, 64, 128)


def test_matmul_bias_gelu_fuses_and_attention_stays_apart():
    # linear: MatMul + bias Add + erf-GELU fuse; scores MatMul + scale Mul fuse; Softmax is its own layer
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
        helper.make_node("Add", ["h", "bias"], ["hb"], name="bias"),
        helper.make_node("Div", ["hb", "sqrt2"], ["d"], name="gelu_div"),
        helper.make_node("Erf", ["d"], ["e"], name="gelu_erf"),
        helper.make_node("Add", ["e", "one"], ["e1"], name="gelu_add"),
        helper.make_node("Mul", ["hb", "e1"], ["g"], name="gelu_mul"),
        helper.make_node("Mul", ["g", "half"], ["y"], name="gelu_half"),
        helper.make_node("Transpose", ["y"], ["yt"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["y", "yt"], ["s"], name="scores"),
        helper.make_node("Mul", ["s", "scale"], ["ss"], name="scale"),
        helper.make_node("Softmax", ["ss"], ["p"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["p", "y"], ["o"], name="values"),
    ]
    consts = [
        ("w", Z((16, 16), F)),
        ("bias", Z(16, F)),
        ("sqrt2", F(1.41)),
        ("one", F(1)),
        ("half", F(0.5)),
        ("scale", F(0.25)),
    ]
    model = make_model(nodes, [("x", (1, 10, 16), "f32")], consts)
    table = roofline.count(model, fuse="runtime")
    assert list(table.name) == ["fc", "t", "scores", "softmax", "values"]
    assert list(table.kind) == ["gemm", "data-movement", "matmul", "softmax", "matmul"]
    # fc: 1x10x16 * 16 = 2560 MACs; scores: 1x10x10 * 16 = 1600; values: 1x10x16 * 10 = 1600
    assert list(table.macs) == [2560, 0, 1600, 0, 1600]
    assert table.iloc[0].weight_bytes == (256 + 16) * 4  # weights plus the bias vector, no GELU constants


def test_reshape_like_nodes_are_free_in_the_fused_view():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1),
    ]
    model = make_model(nodes, [("x", (1, 8, 4, 4), "f32")], [("w", Z((10, 8), F)), ("b", Z(10, F))])
    raw, fused = roofline.count(model), roofline.count(model, fuse="runtime")
    assert list(raw.name) == ["gap", "flatten", "fc"] and list(fused.name) == ["gap", "fc"]
    assert fused.attrs["free_nodes"] == ["flatten"]
    assert raw.bytes.sum() - fused.bytes.sum() == 2 * 8 * 4  # the flatten copy (8 el in, 8 out)


def test_add_absorbs_a_following_relu():
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y"], name="relu"),
    ]
    model = make_model(nodes, [("a", (1, 4), "f32"), ("b", (1, 4), "f32")])
    fused = roofline.count(model, fuse="runtime")
    assert list(fused.fused) == ["Relu"] and fused.iloc[0].bytes == 3 * 16


# ---- loading and shapes --------------------------------------------------------------------------


def dynamic_model():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")]
    graph = helper.make_graph(
        nodes,
        "dyn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(Z((4, 3, 1, 1), F), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_missing_symbolic_dimension_is_named():
    with pytest.raises(ShapeError, match="symbolic dimension 'batch' at position 0"):
        roofline.count(dynamic_model())
    with pytest.raises(ShapeError, match="'height'"):
        roofline.count(dynamic_model(), input_shapes={"batch": 1})


def test_symbolic_dimensions_by_name_or_by_input():
    # Y 1x4x5x6 = 120 el; 120 * 3 = 360 MACs
    a = roofline.count(dynamic_model(), input_shapes={"batch": 1, "height": 5, "width": 6})
    b = roofline.count(dynamic_model(), input_shapes={"x": (1, 3, 5, 6)})
    assert a.macs.sum() == b.macs.sum() == 360


def test_input_shapes_typo_is_named():
    with pytest.raises(ShapeError, match=r"'btach'.*did you mean 'batch'"):
        roofline.count(dynamic_model(), input_shapes={"btach": 1})


def test_input_shapes_override_a_fixed_resolution():
    model = roofline.zoo.build("mobilenet_v2")
    big = roofline.count(model, input_shapes={"input": (1, 3, 448, 448)})
    full = roofline.count(model)
    # conv MACs scale with H*W (x4 at every stage); only the classifier (1.28 M MACs) does not
    assert big.macs.sum() - 1_280_000 == 4 * (full.macs.sum() - 1_280_000)


def test_shape_computed_reshape_target_is_resolved():
    # Reshape(x, Concat(Shape(x)[0:1], [-1])): the target is computed at run time from shapes
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w"], ["y"], name="fc"),
    ]
    consts = [("zero", np.array(0, np.int64)), ("axes", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64)),
              ("w", Z((48, 10), F))]  # fmt: skip
    table = roofline.count(make_model(nodes, [("x", (2, 3, 4, 4), "f32")], consts))
    assert list(table.name) == ["reshape", "fc"]  # the shape arithmetic is folded
    assert table.attrs["folded_nodes"] == 4
    assert table.macs.sum() == 2 * 10 * 48


def test_light_weights_from_constant_of_shape_count_as_weights():
    model = roofline.zoo.build("mobilenet_v2")
    assert not model.graph.initializer[0].dims or any(n.op_type == "ConstantOfShape" for n in model.graph.node)
    table = roofline.count(model)
    assert "ConstantOfShape" not in set(table.op_type)
    assert table.loc[table.name == "classifier", "weight_bytes"].item() == (1000 * 1280 + 1000) * 4


def test_path_bytes_and_proto_agree_and_proto_is_not_modified(tmp_model):
    model = dynamic_model()
    before = model.SerializeToString()
    path = tmp_model(model)
    shapes = {"x": (1, 3, 5, 6)}
    counts = [roofline.count(m, shapes).macs.sum() for m in (model, str(path), path, path.read_bytes())]
    assert counts == [360] * 4
    assert model.SerializeToString() == before


def test_external_data_is_not_needed(tmp_path):
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", (1, 64), "f32")],
                       [("w", np.ones((64, 64), F))])  # fmt: skip
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, location="m.data", size_threshold=0)
    assert (tmp_path / "m.data").stat().st_size == 64 * 64 * 4
    row = roofline.count(tmp_path / "m.onnx").iloc[0]
    assert (row.macs, row.weight_bytes, row.params) == (4096, 16384, 4096)


def test_bad_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00\xff" * 100)
    (tmp_path / "text.onnx").write_text("hello, I am not a model")
    with pytest.raises(ModelLoadError, match="does not exist"):
        roofline.count(tmp_path / "missing.onnx")
    for name in ("junk.onnx", "text.onnx"):
        with pytest.raises(ModelLoadError, match="not (a valid )?ONNX"):
            roofline.count(tmp_path / name)
    tfl = tmp_path / "m.tflite"
    tfl.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="TFLite"):
        roofline.count(tfl)


def test_unknown_op_raises_or_is_reported():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("FancyOp", ["r"], ["y"], name="fancy", domain="com.example"),
    ]
    model = make_model(nodes, [("x", (1, 4), "f32")])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpError, match=r"com.example::FancyOp \(node 'fancy'\).*Supported ops: .*Conv"):
        roofline.count(model)
    # reported: the node stays, with NaN MACs and its input bytes; y's shape is unknown so it writes nothing
    table = roofline.count(model, on_unknown="report")
    assert table.attrs["unknown_ops"] == ["FancyOp"] and table.attrs["totals"]["unknown_layers"] == 1
    row = table.iloc[1]
    assert row.kind == "unknown" and np.isnan(row.macs) and row.input_bytes == 16


def test_mobilenet_v2_totals_match_the_reference_and_run_in_onnxruntime():
    # reference (mobilenetv4.md): 3.505 M params, 300.8 M MACs at 224 px; the issue asks for 2%
    model = roofline.zoo.build("mobilenet_v2", weights="random")
    t = roofline.totals(roofline.count(model))
    assert abs(t["macs"] / 300.8e6 - 1) < 0.02 and abs(t["params"] / 3.505e6 - 1) < 0.02
    out = ort.InferenceSession(model.SerializeToString()).run(None, {"input": np.ones((1, 3, 224, 224), F)})[0]
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_fused_and_raw_views_agree_on_macs_and_params_of_a_whole_network():
    model = roofline.zoo.build("mobilenet_v2", width=0.5, resolution=160)
    raw, fused = roofline.count(model), roofline.count(model, fuse="runtime")
    assert raw.macs.sum() == fused.macs.sum()
    assert roofline.totals(raw)["params"] == roofline.totals(fused)["params"]
    assert fused.bytes.sum() < 0.5 * raw.bytes.sum()  # fusion removes the BN/activation round trips
    assert set(fused.op_type) == {"Conv", "Add", "GlobalAveragePool", "Gemm"}


@settings(max_examples=25, deadline=None)
@given(
    cin_per_group=st.integers(1, 4), groups=st.integers(1, 3), cout_per_group=st.integers(1, 4),
    k=st.integers(1, 5), stride=st.integers(1, 3), dilation=st.integers(1, 2), pad=st.integers(0, 2),
    hw=st.integers(6, 12),
)  # fmt: skip
def test_conv_macs_match_the_shape_onnxruntime_produces(
    cin_per_group, groups, cout_per_group, k, stride, dilation, pad, hw
):
    # property: MACs = numel(Y) * Cin/g * k*k, with Y's shape taken from a real onnxruntime run
    cin, cout = cin_per_group * groups, cout_per_group * groups
    assume((hw + 2 * pad - dilation * (k - 1) - 1) // stride + 1 >= 1)
    node = helper.make_node("Conv", ["x", "w"], ["y"], group=groups, strides=[stride] * 2, dilations=[dilation] * 2,
                            pads=[pad] * 4, kernel_shape=[k, k])  # fmt: skip
    model = make_model([node], [("x", (1, cin, hw, hw), "f32")], [("w", np.ones((cout, cin_per_group, k, k), F))])
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    y = ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.ones((1, cin, hw, hw), F)})[0]
    row = roofline.count(model).iloc[0]
    assert row.macs == y.size * cin_per_group * k * k
    assert row.output_bytes == y.size * 4 and row.weight_bytes == cout * cin_per_group * k * k * 4


def test_model_local_functions_are_counted_through_their_bodies():
    # exporters such as torch's dynamo emit local functions; their bodies are what runs
    body = [helper.make_node("MatMul", ["a", "w"], ["m"]), helper.make_node("Relu", ["m"], ["b"])]
    fn = helper.make_function("custom", "Block", ["a", "w"], ["b"], body, [helper.make_opsetid("", 17)])
    model = make_model([helper.make_node("Block", ["x", "w"], ["y"], domain="custom")], [("x", (2, 4), "f32")],
                       [("w", Z((4, 3), F))])  # fmt: skip
    model.opset_import.append(helper.make_opsetid("custom", 1))
    model.functions.append(fn)
    table = roofline.count(model)
    assert list(table.op_type) == ["MatMul", "Relu"] and table.macs.sum() == 2 * 3 * 4


def test_shape_arithmetic_beyond_data_propagation_is_folded(monkeypatch):
    # Div and ReduceProd on a shape are outside ONNX data propagation: the reshape target is only known
    # after evaluating the constant subgraph. x 1x8x4x4 -> target [2, (1*4*4*4)] = [2, 64] -> 2x64 @ 64x10
    import roofline.ir.onnx as graph

    calls = []
    fold = graph._fold_constants
    monkeypatch.setattr(graph, "_fold_constants", lambda *a: calls.append(fold(*a)) or calls[-1])
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Div", ["s", "two"], ["h"], name="half"),
        helper.make_node("ReduceProd", ["h"], ["n"], name="prod", keepdims=1),
        helper.make_node("Concat", ["one", "n"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w"], ["y"], name="fc"),
    ]
    consts = [("two", np.array([1, 2, 1, 1], np.int64)), ("one", np.array([2], np.int64)), ("w", Z((64, 10), F))]
    table = roofline.count(make_model(nodes, [("x", (1, 8, 4, 4), "f32")], consts))
    assert calls == [True]
    assert list(table.output_shapes) == ["2x64", "2x10"] and table.macs.sum() == 2 * 10 * 64


def test_shape_arithmetic_folds_over_several_rounds():
    # as in Swin's window partition: the pads of a Pad are computed (Transpose, not data-propagated), and a
    # Reshape target is computed from the padded shape: the second only resolves after the first is folded.
    # x 1x4x5x5 padded by 1 on H and W -> 1x4x7x7; target [7, -1] -> 7x28; @ 28x3: 7*3*28 = 588 MACs
    nodes = [
        helper.make_node("Transpose", ["pads_t"], ["pads_2d"], perm=[1, 0]),
        helper.make_node("Reshape", ["pads_2d", "minus1"], ["pads"]),
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad"),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Div", ["s", "win"], ["h"]),
        helper.make_node("Gather", ["h", "two"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["p", "target"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w"], ["y"], name="fc"),
    ]
    i64 = np.int64
    consts = [("pads_t", np.array([[0, 0], [0, 0], [1, 1], [1, 1]], i64)), ("minus1", np.array([-1], i64)),
              ("win", np.array([1, 1, 1, 7], i64)), ("two", np.array(2, i64)), ("zero", np.array([0], i64)),
              ("w", Z((28, 3), F))]  # fmt: skip
    table = roofline.count(make_model(nodes, [("x", (1, 4, 5, 5), "f32")], consts))
    assert list(table.name) == ["pad", "reshape", "fc"]
    assert list(table.output_shapes) == ["1x4x7x7", "7x28", "7x3"] and table.macs.sum() == 588


def test_nodes_out_of_topological_order_are_sorted():
    nodes = [
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
        helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
    ]
    table = roofline.count(make_model(nodes, [("x", (2, 4), "f32")], [("w", Z((4, 3), F))], outputs=["y"]))
    assert list(table.name) == ["fc", "relu"] and table.macs.sum() == 24
    dangling = [helper.make_node("Relu", ["nowhere"], ["y"], name="relu")]
    with pytest.raises(ModelLoadError, match="reads 'nowhere', which no node or input provides"):
        roofline.count(make_model(dangling, [("x", (2, 4), "f32")], outputs=["y"]))


# ---- onnxruntime's NCHWc layout: the block size is this machine's ------------------------------------------


def test_nchwc_block_follows_the_cpu_flags():
    from roofline.counting.ort_layout import AVX2_BLOCK, AVX512_BLOCK, block_for_flags, nchwc_block

    assert block_for_flags("processor\t: 0\nflags\t\t: fpu sse avx avx2 avx512f avx512bw\n") == AVX512_BLOCK == 16
    assert block_for_flags("flags\t\t: fpu sse avx avx2 fma\n") == AVX2_BLOCK == 8
    assert block_for_flags("flags\t\t: avx2 avx512fp16\n") == 8  # a flag's name, not a prefix of one
    assert block_for_flags("Features\t: fp asimd\n") == 8  # no x86 flags: MLAS's default
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            assert nchwc_block() == block_for_flags(f.read())
    except OSError:
        assert nchwc_block() == 8


def test_the_derived_nchwc_block_is_the_one_onnxruntime_uses():
    # 1x1 conv 32 -> 64, a 3x3 conv in 8 groups of 8 channels, 1x1 conv 64 -> 32, at 14 x 14: with blocks of 8
    # the grouped conv stays blocked (no conversion), with blocks of 16 it is converted out of and back into NCHWc
    import collections

    from roofline.counting.ort_layout import nchwc_block, reorders
    from roofline.profilers import get_runner
    from roofline.profilers.ort_trace import node_times

    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1"),
             helper.make_node("Conv", ["a", "w2"], ["b"], name="c2", group=8, pads=[1] * 4),
             helper.make_node("Conv", ["b", "w3"], ["y"], name="c3")]  # fmt: skip
    consts = [("w1", Z((64, 32, 1, 1), F)), ("w2", Z((64, 8, 3, 3), F)), ("w3", Z((32, 64, 1, 1), F))]
    model = make_model(nodes, [("x", (1, 32, 14, 14), "f32")], consts)
    model.graph.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT  # onnxruntime wants a typed output
    graph = roofline.load_graph(model)
    table = roofline.count(graph, fuse="runtime")

    def predicted(block):
        c = collections.Counter(r.direction for r in reorders(graph, table, block=block))
        return c["in"], c["out"]

    assert predicted(8) != predicted(16)  # the model tells the two block sizes apart
    traced = node_times(get_runner("onnxruntime").trace(model, runs=1, warmup=0)).op_type.value_counts()
    assert predicted(nchwc_block()) == (traced.get("ReorderInput", 0), traced.get("ReorderOutput", 0))
    assert predicted(None) == predicted(nchwc_block())
