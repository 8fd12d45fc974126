"""Data-dependent sizes, control flow (If, Loop, Scan), load-time consistency checks and a mutation fuzz."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_model
from onnx import TensorProto, helper

import roofline
from roofline.cli import main
from roofline.errors import ModelLoadError, RooflineError, ShapeError

V = helper.make_tensor_value_info
W64 = np.zeros((64, 64, 3, 3), np.float32)
# a 64->64 3x3 conv (pads 1) on 1x64x56x56: 64 * 56 * 56 outputs x 64 * 9 = 115,605,504 MACs
CONV_MACS = 64 * 56 * 56 * 64 * 9
X56 = [("x", (1, 64, 56, 56), "f32")]


def _if(cond: str, name="if") -> onnx.NodeProto:
    then = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["t_out"], pads=[1, 1, 1, 1], name="conv")],
        "then",
        [],
        [V("t_out", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e_out"], name="relu")], "else", [], [V("e_out", 1, None)]
    )
    return helper.make_node("If", [cond], ["y"], then_branch=then, else_branch=other, name=name)


def test_if_with_a_constant_condition_counts_its_chosen_branch_inline():
    table = roofline.count(make_model([_if("c")], X56, [("c", np.array(True)), ("w", W64)], ["y"]))
    assert table["macs"].tolist() == [CONV_MACS] == [115_605_504]
    assert table["name"].tolist() == ["if/then/conv"] and table["bound"].tolist() == [""]
    # false: the Relu branch, 0 MACs, 1x64x56x56 fp32 read and written
    other = roofline.count(make_model([_if("c")], X56, [("c", np.array(False)), ("w", W64)], ["y"]))
    assert other["op_type"].tolist() == ["Relu"] and other["bytes"].tolist() == [2 * 64 * 56 * 56 * 4]


def test_if_whose_condition_is_folded_from_shapes_is_evaluated():
    # Shape(x)[1] == 64 is true at load time: the conv branch
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "one"], ["ch"], axis=0),
        helper.make_node("Equal", ["ch", "c64"], ["c"]),
        _if("c"),
    ]
    consts = [("one", np.array(1, np.int64)), ("c64", np.array(64, np.int64)), ("w", W64)]
    table = roofline.count(make_model(nodes, X56, consts, ["y"]))
    assert roofline.totals(table)["macs"] == CONV_MACS and set(table["bound"]) == {""}


def test_if_with_a_runtime_condition_counts_the_costlier_branch_as_an_upper_bound():
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0, name="sum"),
        helper.make_node("Greater", ["s", "z"], ["c"], name="gt"),
        _if("c", "choose"),
    ]
    table = roofline.count(make_model(nodes, X56, [("z", np.array(0, np.float32)), ("w", W64)], ["y"]))
    assert dict(zip(table["name"], table["bound"])) == {"sum": "", "gt": "", "choose/then/conv": "upper"}
    t = roofline.totals(table)
    assert (t["macs"], t["upper_bound_layers"], t["lower_bound_layers"]) == (CONV_MACS, 1, 0)
    assert table.attrs["bound_sources"] == {"upper": ["If 'choose'"]}


def _loop_model(trip_nodes, trip_consts, nested=False):
    """x (1x8x10x10) -> Loop: conv 8->8 3x3 (8 * 100 * 8 * 9 = 57,600 MACs) -> relu, scan output the relu."""
    body_nodes = [
        helper.make_node("Conv", ["x_in", "w"], ["x_out"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["x_out"], ["r"], name="relu"),
        helper.make_node("Identity", ["c_in"], ["c_out"], name="cond"),
    ]
    if nested:  # a constant If inside the body, whose then-branch is a second conv
        then = helper.make_graph(
            [helper.make_node("Conv", ["x_out", "w"], ["ib"], pads=[1, 1, 1, 1], name="iconv")],
            "t",
            [],
            [V("ib", 1, None)],
        )
        other = helper.make_graph([helper.make_node("Relu", ["x_out"], ["ie"])], "e", [], [V("ie", 1, None)])
        body_nodes[1:2] = [
            helper.make_node("If", ["true"], ["xi"], then_branch=then, else_branch=other, name="inner"),
            helper.make_node("Relu", ["xi"], ["r"], name="relu"),
        ]
    body = helper.make_graph(
        body_nodes,
        "body",
        [V("i", TensorProto.INT64, []), V("c_in", TensorProto.BOOL, []), V("x_in", 1, None)],
        [V("c_out", TensorProto.BOOL, []), V("x_out", 1, None), V("r", 1, None)],
    )
    loop = helper.make_node("Loop", ["M", "", "x"], ["xf", "rs"], body=body, name="loop")
    consts = [("w", np.zeros((8, 8, 3, 3), np.float32)), ("true", np.array(True)), *trip_consts]
    return make_model([*trip_nodes, loop], [("x", (1, 8, 10, 10), "f32")], consts, ["xf", "rs"])


def test_loop_with_a_constant_trip_count_repeats_its_body():
    table = roofline.count(_loop_model([], [("M", np.array(4, np.int64))]))
    rows = table.set_index("name")
    assert rows.loc["loop/body/conv", "macs"] == 4 * 57_600
    # relu: 800 fp32 read + written per iteration, 4 iterations: 4 * 6400 B
    assert rows.loc["loop/body/relu", "bytes"] == 4 * 6400
    # the scan output stacks the 4 iterations: 4x1x8x10x10
    assert rows.loc["loop/body/rs", "output_shapes"] == "4x1x8x10x10"
    assert set(table["bound"]) == {""} and roofline.totals(table)["macs"] == 230_400
    fused = roofline.count(_loop_model([], [("M", np.array(4, np.int64))]), fuse="runtime")
    assert roofline.totals(fused)["macs"] == 230_400


def test_loop_with_a_runtime_trip_count_counts_one_iteration_as_a_lower_bound():
    trip = [
        helper.make_node("ReduceMax", ["x"], ["mx"], keepdims=0, name="max"),
        helper.make_node("Cast", ["mx"], ["M"], to=TensorProto.INT64, name="trips"),
    ]
    table = roofline.count(_loop_model(trip, []))
    assert dict(zip(table["name"], table["bound"])) == {
        "max": "", "trips": "", "loop/body/conv": "lower", "loop/body/relu": "lower", "loop/body/rs": "lower",
    }  # fmt: skip
    t = roofline.totals(table)
    assert (t["macs"], t["lower_bound_layers"], t["upper_bound_layers"]) == (57_600, 3, 0)
    assert table.attrs["bound_sources"] == {"lower": ["Loop 'loop'"]}


def test_nested_control_flow_multiplies_repeats():
    table = roofline.count(_loop_model([], [("M", np.array(3, np.int64))], nested=True))
    rows = table.set_index("name")["macs"]
    assert rows["loop/body/conv"] == rows["loop/body/inner/then/iconv"] == 3 * 57_600


def test_scan_runs_its_body_once_per_slice():
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["sl", "W"], ["p"], name="mm"),
            helper.make_node("Add", ["st", "p"], ["st2"], name="add"),
            helper.make_node("Identity", ["st2"], ["so"], name="out"),
        ],
        "body",
        [V("st", 1, [1, 8]), V("sl", 1, [1, 8])],
        [V("st2", 1, [1, 8]), V("so", 1, [1, 8])],
    )
    scan = helper.make_node("Scan", ["s0", "seq"], ["sf", "ys"], body=body, num_scan_inputs=1, name="scan")
    model = make_model(
        [scan], [("s0", (1, 8), "f32"), ("seq", (5, 1, 8), "f32")], [("W", np.zeros((8, 8), np.float32))]
    )
    table = roofline.count(model)
    rows = table.set_index("name")
    # 5 slices x (1x8 @ 8x8 = 64 MACs)
    assert rows.loc["scan/body/mm", "macs"] == 320 and roofline.totals(table)["macs"] == 320
    assert rows.loc["scan/body/ys", "output_shapes"] == "5x1x8"
    # params are a property of the model, not of how often a layer runs
    assert roofline.totals(table)["params"] == 64


def test_a_name_redefined_in_a_body_shadows_the_outer_one():
    # onnxslim reuses constant names across scopes: the branch's own 'k' (2.0) shadows the main graph's (3.0)
    k_inner = helper.make_node("Constant", [], ["k"], value=helper.make_tensor("v", 1, [4], [2.0] * 4))
    then = helper.make_graph(
        [k_inner, helper.make_node("Mul", ["x", "k"], ["t"], name="mul")], "t", [], [V("t", 1, None)]
    )
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "e", [], [V("e", 1, None)])
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="if"),
        helper.make_node("Add", ["y", "k"], ["z"], name="add"),
    ]
    table = roofline.count(
        make_model(nodes, [("x", (1, 4), "f32")], [("c", np.array(True)), ("k", np.full(4, 3.0, np.float32))])
    )
    assert table["name"].tolist() == ["if/then/mul", "add"]
    graph = roofline.ir.load.load_graph(
        make_model(nodes, [("x", (1, 4), "f32")], [("c", np.array(True)), ("k", np.full(4, 3.0, np.float32))])
    )
    mul, add = graph.nodes
    assert mul.inputs[1].name != "k" and add.inputs[1].name == "k"
    two = make_model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])], [("x", (2,), "f32")]
    )
    with pytest.raises(ModelLoadError, match="tensor name 'y' is written by two nodes in the main graph"):
        roofline.count(two)


def _detector():
    """scores > 0.5 -> NonZero -> GatherND -> TopK (run-time k) -> ...; NonMaxSuppression (10 per class)."""
    nodes = [
        helper.make_node("Greater", ["scores", "thr"], ["mask"], name="gt"),
        helper.make_node("NonZero", ["mask"], ["nz"], name="nz"),
        helper.make_node("Transpose", ["nz"], ["idx"], perm=[1, 0], name="idx"),
        helper.make_node("GatherND", ["scores", "idx"], ["sel"], name="sel"),
        helper.make_node("ReduceMax", ["scores"], ["mx"], keepdims=0, name="max"),
        helper.make_node("Cast", ["mx"], ["k0"], to=TensorProto.INT64, name="k0"),
        helper.make_node("Reshape", ["k0", "one"], ["k"], name="k"),
        helper.make_node("TopK", ["sel", "k"], ["tv", "ti"], name="topk"),
        helper.make_node("NonMaxSuppression", ["boxes", "scores3", "per_class"], ["keep"], name="nms"),
        helper.make_node("Gather", ["keep", "two"], ["kb"], axis=1, name="box_index"),
    ]
    inputs = [("scores", (1, 100), "f32"), ("boxes", (1, 100, 4), "f32"), ("scores3", (1, 3, 100), "f32")]
    consts = [("thr", np.array(0.5, np.float32)), ("one", np.array([1], np.int64)),
              ("per_class", np.array([10], np.int64)), ("two", np.array(2, np.int64))]  # fmt: skip
    return make_model(nodes, inputs, consts, ["tv", "kb"])


def test_data_dependent_sizes_are_bounded_and_marked_downstream():
    table = roofline.count(_detector(), on_unknown="report")
    rows = table.set_index("name")
    # NonZero of a 1x100 mask: at most 100 coordinates of rank 2 -> 2x100 int64
    assert rows.loc["nz", "output_shapes"] == "2x100"
    # TopK with a run-time k: k <= the axis size (100)
    assert rows.loc["topk", "output_shapes"] == "100, 100"
    # NMS: batch 1 x 3 classes x min(10 per class, 100 boxes) = 30 selected (batch, class, box) triples
    assert rows.loc["nms", "output_shapes"] == "30x3" and rows.loc["box_index", "output_shapes"] == "30"
    assert rows.loc["nms", "output_bytes"] == 30 * 3 * 8
    bounded = {n for n, b in zip(table["name"], table["bound"]) if b == "upper"}
    assert bounded == {"nz", "idx", "sel", "topk", "nms", "box_index"}
    t = roofline.totals(table)
    assert (t["upper_bound_layers"], t["unknown_layers"]) == (6, 0)
    assert table.attrs["bound_sources"]["upper"] == ["NonZero 'nz'", "NonMaxSuppression 'nms'", "TopK 'topk'"]


def test_a_shape_computed_from_a_bounded_size_is_marked_too():
    # Reshape(x, Shape(NonZero(m))) : the target shape is a constant, but one derived from a bound
    nodes = [
        helper.make_node("NonZero", ["m"], ["nz"], name="nz"),
        helper.make_node("Shape", ["nz"], ["s"], name="shape"),
        helper.make_node("ReduceProd", ["s"], ["n"], keepdims=1, name="n"),
        helper.make_node("Reshape", ["v", "n"], ["out"], name="reshape"),
    ]
    table = roofline.count(make_model(nodes, [("m", (4, 6), "bool"), ("v", (2, 24), "f32")]))
    assert dict(zip(table["name"], table["bound"])) == {"nz": "upper", "reshape": "upper"}


def test_compress_and_unique_are_bounded_by_their_input():
    nodes = [
        helper.make_node("Compress", ["x", "keep"], ["c"], axis=0, name="compress"),
        helper.make_node("Unique", ["c"], ["u", "ui", "uinv", "ucount"], name="unique"),
    ]
    table = roofline.count(make_model(nodes, [("x", (5, 3), "f32"), ("keep", (5,), "bool")], outputs=["u"]))
    rows = table.set_index("name")
    assert rows.loc["compress", "output_shapes"] == "5x3"  # at most every row kept
    assert rows.loc["unique", "output_shapes"].startswith("15")  # at most every one of 15 elements unique
    assert set(table["bound"]) == {"upper"}


def test_cli_says_which_nodes_make_rows_bounds(tmp_model, capsys):
    assert main(["count", str(tmp_model(_detector())), "--report-unknown"]) == 0
    out = capsys.readouterr().out
    assert "6 layers are upper bounds (data-dependent sizes: NonZero 'nz', NonMaxSuppression 'nms', TopK 'topk')" in out


def test_csv_has_the_bound_column(tmp_model, tmp_path):
    csv = tmp_path / "t.csv"
    assert main(["count", str(tmp_model(_detector())), "--report-unknown", "--csv", str(csv)]) == 0
    import pandas as pd

    df = pd.read_csv(csv, keep_default_na=False)
    assert "bound" in df.columns and (df["bound"] == "upper").sum() == 6


# --- consistency checks ----------------------------------------------------------------------------


def _conv(w_shape, x_shape=(1, 8, 8, 8), **attrs):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    return make_model([node], [("x", x_shape, "f32")], [("w", np.zeros(w_shape, np.float32))])


@pytest.mark.parametrize(
    "model,match",
    [
        (lambda: _conv((8, 8, 3, 3), kernel_shape=[5, 5]), r"Conv node 'conv': kernel_shape \[5, 5\] contradicts"),
        (lambda: _conv((8, 4, 3, 3)), "reads 4 input channels, the input has 8"),
        (lambda: _conv((8, 4, 3, 3), group=3), "reads 12 input channels"),
    ],
    ids=["kernel_shape", "channels", "group"],
)
def test_contradictory_convolutions_name_the_node(model, match, tmp_model, capsys):
    with pytest.raises(ShapeError, match=match):
        roofline.count(model())
    from roofline.cli import main

    assert main(["count", str(tmp_model(model()))]) == 2  # the command line: one line, exit 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conv" in err


def test_contradictory_matmul_names_the_node():
    node = helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")
    model = make_model([node], [("a", (2, 5), "f32")], [("b", np.zeros((7, 3), np.float32))])
    with pytest.raises(ShapeError, match="MatMul node 'mm': contracted dimensions disagree: 5"):
        roofline.count(model)


def test_initializer_whose_dims_contradict_its_data_is_an_error():
    model = _conv((8, 8, 3, 3))
    w = model.graph.initializer[0]
    w.dims[0] = 8000  # 8000x8x3x3 fp32 would be 2.3 MB; the file stores 2304 B
    with pytest.raises(ShapeError, match=r"initializer 'w' has dims 8000x8x3x3 \(576000 elements, 2304000 B\)"):
        roofline.count(model)
    typed = make_model([helper.make_node("Relu", ["x"], ["y"])], [("x", (2,), "f32")])
    typed.graph.initializer.append(helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0]))
    typed.graph.initializer[0].dims[0] = 4
    with pytest.raises(ShapeError, match="initializer 't' has dims 4 .4 elements. but stores 2 values in float_data"):
        roofline.count(typed)


def test_absurd_sizes_are_errors_not_counts():
    # 2**20 x 2**20 x 2**20 elements from a tiny file
    node = helper.make_node("Expand", ["x", "s"], ["y"], name="expand")
    model = make_model([node], [("x", (1, 1, 1), "f32")], [("s", np.array([2**20] * 3, np.int64))])
    with pytest.raises(ShapeError, match="expand.*more than 2\\*\\*34"):
        roofline.count(model)


# --- mutation fuzz ---------------------------------------------------------------------------------


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind, pos = rng.randrange(4), rng.randrange(len(b))
        if kind == 0:
            b[pos] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[pos] = rng.randrange(256)
        elif kind == 2:
            b[pos:pos] = bytes([rng.randrange(256)])
        else:
            del b[pos]
    return bytes(b)


def test_mutated_onnx_files_count_sanely_or_raise_a_roofline_error():
    data = roofline.zoo.build("mobilenet_v2", width=0.35, resolution=96).SerializeToString()
    start, tried, counted = time.monotonic(), 0, 0
    for seed in range(300):
        if time.monotonic() - start > 6.0:  # a time budget, not a timing assertion: a busy machine tries fewer
            break
        mutated = _mutate(data, random.Random(seed))
        tried += 1
        for fuse in ("none", "runtime"):
            try:
                table = roofline.count(mutated, fuse=fuse, on_unknown="report")
            except RooflineError:
                continue
            counted += 1
            for col in ("macs", "weight_bytes", "input_bytes", "output_bytes", "bytes"):
                values = table[col].dropna().to_numpy(float)
                assert np.isfinite(values).all() and (values >= 0).all(), (seed, fuse, col)
            t = roofline.totals(table)
            assert 0 <= t["macs"] < 1e16 and 0 <= t["bytes"] < 1e16 and math.isfinite(t["bytes"]), (seed, fuse, t)
    assert tried >= 20 and counted >= 1, (tried, counted)


def test_invalid_utf8_in_a_name_is_a_load_error():
    model = _conv((8, 8, 3, 3))
    data = model.SerializeToString().replace(b"Conv", b"C\xffnv", 1)
    with pytest.raises(ModelLoadError, match="not valid UTF-8"):
        roofline.count(data)


SSDLITE = Path(__file__).parent / "data/converters/torchvision/ssdlite320_mobilenet_v3_large.opset17.onnx"


@pytest.mark.skipif(not SSDLITE.exists(), reason="the torchvision converter corpus is not generated")
def test_torchvision_ssdlite_with_nms_and_a_runtime_if_counts():
    table = roofline.count(SSDLITE, fuse="runtime")
    t = roofline.totals(table)
    # torchvision's model card: 0.58 GFLOPS (it counts MACs); every MAC is in the exact backbone and heads
    assert t["macs"] == 583_171_904 and table.loc[table["bound"] == "", "macs"].sum() == t["macs"]
    assert t["upper_bound_layers"] > 0 and t["unknown_layers"] == 0
    assert any(s.startswith("NonMaxSuppression") for s in table.attrs["bound_sources"]["upper"])
