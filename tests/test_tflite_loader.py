"""The TFLite loader on files shaped as converters write them: weights behind DEQUANTIZE (fp16) and
DENSIFY (sparse), shared weights, open input shapes, control flow in several subgraphs, custom ops,
and damaged files. The files are written here with the schema's object API (roofline.profilers.tflite_writer);
real converter outputs are in tests/test_converters.py."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.errors import ModelLoadError, RooflineError, ShapeError, UnsupportedOpError
from roofline.profilers.tflite_writer import TfliteWriter

CONV = {"padding": 0, "strideH": 1, "strideW": 1, "dilationHFactor": 1, "dilationWFactor": 1,
        "fusedActivationFunction": 0}  # fmt: skip
# a 3x3 8->8 convolution on 16x16: 16*16 outputs x 8 channels x 8*9
CONV_MACS = 16 * 16 * 8 * 8 * 9


def _conv(tw, x, weight, bias=None):
    y = tw.tensor((1, 16, 16, 8))
    tw.op("CONV_2D", [x, weight, -1 if bias is None else bias], [y], "Conv2DOptions", **CONV)
    return y


def _fp16_or_fp32(storage: str) -> bytes:
    """conv(x, w) with w stored as fp32, or as fp16 behind a DEQUANTIZE (as the fp16 converter writes)."""
    tw = TfliteWriter()
    w = np.ones((8, 3, 3, 8))
    x = tw.tensor((1, 16, 16, 8))
    if storage == "fp16":
        half = tw.tensor((8, 3, 3, 8), "fp16", w, name="w_fp16")
        wt = tw.tensor((8, 3, 3, 8), name="w_dequantized")
        tw.op("DEQUANTIZE", [half], [wt])
    else:
        wt = tw.tensor((8, 3, 3, 8), "fp32", w, name="w")
    y = _conv(tw, x, wt)
    return tw.finish([x], [y])


def test_fp16_weights_behind_dequantize_are_the_conv_s_weights_at_two_bytes():
    fp32, fp16 = (roofline.count(_fp16_or_fp32(s)) for s in ("fp32", "fp16"))
    assert list(fp16.op_type) == ["Conv"] and list(fp16.kind) == ["conv"]  # DEQUANTIZE runs at load time
    assert fp16.macs.sum() == fp32.macs.sum() == CONV_MACS
    assert roofline.totals(fp16)["params"] == roofline.totals(fp32)["params"] == 8 * 3 * 3 * 8
    assert fp16.weight_bytes.sum() == 8 * 3 * 3 * 8 * 2 and fp32.weight_bytes.sum() == 8 * 3 * 3 * 8 * 4
    assert fp16.weight_shapes.iloc[0] == "8x8x3x3"  # OIHW, as for ONNX
    assert fp16.attrs["folded_nodes"] == 1


def test_a_weight_shared_by_two_convs_is_laid_out_once_and_counted_once():
    tw = TfliteWriter()
    x = tw.tensor((1, 16, 16, 8))
    w = tw.tensor((8, 3, 3, 8), "fp32", np.ones((8, 3, 3, 8)))
    y = _conv(tw, _conv(tw, x, w), w)
    table = roofline.count(tw.finish([x], [y]))
    assert list(table.macs) == [CONV_MACS, CONV_MACS]
    assert roofline.totals(table)["params"] == 8 * 3 * 3 * 8


def _sparse_fc(zeros: int) -> bytes:
    """FC 1x16 -> 8 whose 8x16 weight is sparse (block CSR) behind a DENSIFY, as the sparsity converter
    writes it: the buffer holds only the stored values."""
    s = TfliteWriter()
    x = s.tensor((1, 16))
    stored = 8 * 16 - zeros
    sp = s.tensor((8, 16), "fp32", np.ones(stored), name="w_sparse")
    meta = s.s.SparsityParametersT()
    meta.traversalOrder, meta.blockMap = [0, 1], []
    s.tensors[sp].sparsity = meta
    w = s.tensor((8, 16), name="w_dense")
    s.op("DENSIFY", [sp], [w])
    y = s.tensor((1, 8))
    s.op("FULLY_CONNECTED", [x, w, -1], [y], "FullyConnectedOptions", fusedActivationFunction=0)
    return s.finish([x], [y])


def test_sparse_weights_count_dense_with_their_share_of_zeros():
    table = roofline.count(_sparse_fc(zeros=96))
    assert list(table.op_type) == ["Gemm"] and table.macs.sum() == 8 * 16
    assert table.sparsity.iloc[0] == pytest.approx(96 / 128)
    assert table.weight_bytes.sum() == 8 * 16 * 4  # dense, as the runtime executes it after DENSIFY
    assert roofline.count(_fp16_or_fp32("fp32")).sparsity.eq(0).all()


def _open_shape(signature=(-1, -1, -1, 8)) -> bytes:
    tw = TfliteWriter()
    x = tw.tensor((1, 1, 1, 8), signature=signature, name="serving_default_x:0")
    w = tw.tensor((8, 3, 3, 8), "fp32", np.ones((8, 3, 3, 8)))
    b = tw.tensor((8,), "fp32", np.zeros(8))
    y = tw.tensor((1, 1, 1, 8), signature=(-1, -1, -1, 8))
    tw.op("CONV_2D", [x, w, b], [y], "Conv2DOptions", **CONV)
    return tw.finish([x], [y])


def test_open_input_shapes_are_set_by_input_name_in_nhwc():
    with pytest.raises(ShapeError, match=r"input 'serving_default_x:0' has an unnamed dynamic dimension") as err:
        roofline.count(_open_shape())
    assert "input_shapes=" in str(err.value) and "\n" not in str(err.value)
    table = roofline.count(_open_shape(), input_shapes={"serving_default_x:0": (1, 16, 16, 8)})
    assert table.macs.sum() == CONV_MACS and table.output_shapes.iloc[0] == "1x8x16x16"
    # a static model may be resized too; a name that is not an input is refused with the inputs listed
    static = roofline.count(_open_shape(signature=None), input_shapes={"serving_default_x:0": (1, 16, 16, 8)})
    assert static.macs.sum() == CONV_MACS
    with pytest.raises(ShapeError, match="batch.*not an input.*serving_default_x:0"):
        roofline.count(_open_shape(), input_shapes={"batch": 1})
    with pytest.raises(ShapeError, match="rank 3"):
        roofline.count(_open_shape(), input_shapes={"serving_default_x:0": (16, 16, 8)})


def _control_flow(kind: str, condition=None) -> bytes:
    """Subgraph 0 calls subgraphs 1 (a conv: the costly branch / loop body) and 2 (a relu) with IF,
    WHILE or CALL_ONCE; ``condition`` True/False stores the IF condition as a constant."""
    tw = TfliteWriter()
    x = tw.tensor((1, 16, 16, 8), name="x")
    if condition is None:
        cond = tw.tensor((1,), "bool", name="cond")
    else:
        cond = tw.tensor((1,), "bool", np.array([condition]), name="cond")
    y = tw.tensor((1, 16, 16, 8), name="y")
    if kind == "if":
        tw.op("IF", [cond, x], [y], "IfOptions", thenSubgraphIndex=1, elseSubgraphIndex=2)
    elif kind == "while":
        tw.op("WHILE", [x], [y], "WhileOptions", condSubgraphIndex=2, bodySubgraphIndex=1)
    else:
        tw.op("CALL_ONCE", [], [], "CallOnceOptions", initSubgraphIndex=1)
        tw.op("RELU", [x], [y])
    inputs = [x] if condition is not None or kind != "if" else [cond, x]
    tw.subgraph(inputs, [y])
    bx = tw.tensor((1, 16, 16, 8), name="bx")  # subgraph 1: conv
    w = tw.tensor((8, 3, 3, 8), "fp32", np.ones((8, 3, 3, 8)), name="w")
    by = _conv(tw, bx, w)
    tw.subgraph([bx], [by])
    cx = tw.tensor((1, 16, 16, 8), name="cx")  # subgraph 2: relu
    cy = tw.tensor((1, 16, 16, 8), name="cy")
    tw.op("RELU", [cx], [cy])
    return tw.finish([cx], [cy])


def test_if_with_a_constant_condition_is_its_branch_exactly():
    then = roofline.count(_control_flow("if", True))
    assert then.macs.sum() == CONV_MACS and list(then.op_type) == ["Conv"] and then.bound.eq("").all()
    other = roofline.count(_control_flow("if", False))
    assert other.macs.sum() == 0 and list(other.op_type) == ["Relu"]


def test_if_with_a_runtime_condition_counts_the_costlier_branch_as_an_upper_bound():
    table = roofline.count(_control_flow("if"))
    assert table.macs.sum() == CONV_MACS and list(table.bound) == ["upper"]
    assert roofline.totals(table)["upper_bound_layers"] == 1


def test_while_counts_one_iteration_as_a_lower_bound_and_call_once_is_initialisation():
    loop = roofline.count(_control_flow("while"))
    assert loop.macs.sum() == CONV_MACS and sorted(loop.op_type) == ["Conv", "Relu"]
    assert loop.bound.eq("lower").all()
    once = roofline.count(_control_flow("call_once"))
    assert list(once.op_type) == ["Relu"] and once.macs.sum() == 0 and once.attrs["folded_nodes"] == 1


def test_a_subgraph_that_calls_itself_is_refused():
    tw = TfliteWriter()
    x = tw.tensor((1, 4), name="x")
    y = tw.tensor((1, 4), name="y")
    tw.op("WHILE", [x], [y], "WhileOptions", condSubgraphIndex=0, bodySubgraphIndex=0)
    with pytest.raises(ModelLoadError, match="calls itself"):
        roofline.count(tw.finish([x], [y]))


def test_a_custom_op_without_a_rule_is_named_by_its_custom_code():
    tw = TfliteWriter()
    x = tw.tensor((1, 4), name="x")
    y = tw.tensor((1, 4), name="y")
    tw.op("CUSTOM", [x], [y], custom_code="MyVendorOp")
    with pytest.raises(UnsupportedOpError, match="TFLITE_CUSTOM:MyVendorOp"):
        roofline.count(tw.finish([x], [y]))


def test_a_constant_whose_buffer_disagrees_with_its_shape_is_refused():
    tw = TfliteWriter()
    x = tw.tensor((1, 16, 16, 8))
    w = tw.tensor((8, 3, 3, 8), "fp32", np.ones((8, 3, 3, 8)), name="w")
    tw.tensors[w].shape = [8, 3, 3, 80000]  # the dims a damaged file may carry
    y = _conv(tw, x, w)
    with pytest.raises(ShapeError, match=r"constant tensor 'w' has shape \[8, 3, 3, 80000\].*holds 2304 bytes"):
        roofline.count(tw.finish([x], [y]))


def test_a_conv_whose_filter_contradicts_its_input_is_refused():
    tw = TfliteWriter()
    x = tw.tensor((1, 16, 16, 8))
    w = tw.tensor((8, 3, 3, 3), "fp32", np.ones((8, 3, 3, 3)), name="w")  # 3 input channels, the input has 8
    y = _conv(tw, x, w)
    with pytest.raises(ShapeError, match=r"conv_2d_0.*weight 'w' \(8x3x3x3\).*the input has 8"):
        roofline.count(tw.finish([x], [y]))


def _mutants(data: bytes, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            at = int(rng.integers(8, len(b)))  # keep the TFL3 identifier: reach the reader, not the sniffing
            how = rng.integers(3)
            if how == 0:
                b[at] ^= 1 << int(rng.integers(8))
            elif how == 1:
                b[at : at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
            else:
                b[at : at + 4] = b"\xff\xff\xff\x7f"
        yield bytes(b)


@pytest.mark.parametrize("name", ["example_int8", "face_detection_short_range"])
def test_byte_mutated_tflite_files_give_a_sane_count_or_a_library_error(name):
    from pathlib import Path

    from roofline.profilers.tflite_writer import example_network

    if name == "example_int8":
        data = example_network("int8")
    else:
        data = (Path(__file__).parent / "data" / "converters" / "mediapipe" / f"{name}.tflite").read_bytes()
    outcomes = {"counted": 0, "refused": 0}
    for mutant in _mutants(data, 250, seed=7):
        try:
            table = roofline.count(mutant, on_unknown="report")
        except RooflineError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
            continue
        values = table[["macs", "weight_bytes", "input_bytes", "output_bytes"]].to_numpy(float)
        finite = values[~np.isnan(values[:, 0])]
        assert (finite >= 0).all() and np.isfinite(finite).all()
        assert roofline.totals(table)["macs"] < 1e15
        outcomes["counted"] += 1
    assert outcomes["counted"] > 0 and outcomes["refused"] > 0, outcomes


def test_the_format_is_told_by_the_bytes_and_a_name_resolves_in_one_place(tmp_path):
    from roofline.ir.load import resolve_model

    data = _fp16_or_fp32("fp32")
    misnamed = tmp_path / "conv.onnx"  # a flatbuffer behind an ONNX suffix still loads as TFLite
    misnamed.write_bytes(data)
    assert roofline.count(misnamed).macs.sum() == roofline.count(data).macs.sum() == CONV_MACS
    assert resolve_model(str(misnamed)) == (str(misnamed), "conv")
    assert resolve_model(data) == (data, "model")
    model, name = resolve_model("mobilenet_v2")
    assert name == "mobilenet_v2" and model.graph.node
    with pytest.raises(ModelLoadError, match=r"neither a file nor a built-in network.*mobilenet_v2"):
        resolve_model("mobilenet_v9")
