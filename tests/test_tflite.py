"""TFLite: counting flatbuffers read with ai-edge-litert's schema (fp32 and int8), kernels written as
.tflite, and the LiteRT runner with XNNPACK on and off. The .tflite files are written by the tests."""

from __future__ import annotations

import pytest

import roofline
from roofline.cli import main
from roofline.errors import ModelLoadError
from roofline.profilers import get_runner
from roofline.profilers.kernels import kernel_model, kernels_of
from roofline.profilers.tflite_writer import example_network, tflite_kernel


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_counts_a_tflite_network_by_hand(precision):
    table = roofline.count(example_network(precision, resolution=32))
    assert list(table.op_type) == ["Conv", "Conv", "Conv", "Add", "ReduceMean", "Gemm", "Softmax"]
    assert list(table.kind) == ["conv", "depthwise", "pointwise", "elementwise", "reduce", "gemm", "softmax"]
    # conv 3x3/2 3->16 on 32x32: 16x16 outputs x 16 channels x 27; depthwise 3x3: 16*16*16*9; pointwise 16->16
    assert list(table.macs) == [16 * 16 * 16 * 27, 16 * 16 * 16 * 9, 16 * 16 * 16 * 16, 0, 0, 16 * 10, 0]
    size = {"fp32": 4, "int8": 1}[precision]
    weights = 16 * 27 + 16 * 9 + 16 * 16 + 16 * 10  # every filter element, biases apart (int32 / fp32: 4 B)
    biases = 16 + 16 + 16 + 10
    assert table.weight_bytes.sum() == weights * size + biases * 4
    assert table.input_bytes.iloc[0] == 32 * 32 * 3 * size and table.output_bytes.iloc[0] == 16 * 16 * 16 * size
    assert roofline.totals(table)["params"] == weights + (biases if precision == "fp32" else 0)


def test_tflite_and_onnx_kernels_count_the_same_macs():
    keys = [k for k in kernels_of(roofline.zoo.build("mobilenet_v2", width=0.5, resolution=64))
            if not k.startswith(("gconv", "gemm_m2"))]  # fmt: skip
    assert len(keys) >= 10
    for key in keys:
        onnx_macs = roofline.count(kernel_model(key)).macs.sum()
        tflite = roofline.count(tflite_kernel(key.replace("_fp32", "_int8")), fuse="runtime")
        assert tflite.macs.sum() == onnx_macs, key


def test_cli_counts_a_tflite_file(tmp_path, capsys):
    path = tmp_path / "net.tflite"
    path.write_bytes(example_network("int8"))
    assert main(["count", str(path), "--fuse", "runtime"]) == 0
    assert "depthwise" in capsys.readouterr().out


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8, "damaged TFLite flatbuffer"),
        (b"\x00" * 64, "not a valid ONNX model"),
    ],
)
def test_damaged_or_foreign_files_fail_in_one_line(tmp_path, data, message):
    path = tmp_path / "bad.tflite"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=message) as err:
        roofline.count(path)
    assert "\n" not in str(err.value)


def test_litert_runs_fp32_and_int8_with_and_without_xnnpack():
    times = {}
    for xnnpack in (True, False):
        runner = get_runner("litert", threads=1, xnnpack=xnnpack)
        for precision in ("fp32", "int8"):
            m = runner.latency(tflite_kernel(f"conv_k3_s1_i32_o32_h28_w28_{precision}"), max_seconds=1.0)
            assert m.conditions["xnnpack"] is xnnpack and m.conditions["threads"] == 1
            assert m.conditions["runtime_package"] == "ai-edge-litert"
            times[xnnpack, precision] = m.stats.median_ms
    assert all(t > 0 for t in times.values())
    net = get_runner("litert").latency(example_network("int8"), max_seconds=0.5)
    assert net.stats.repeats >= 20


def test_litert_rejects_what_it_cannot_load():
    with pytest.raises(Exception, match="LiteRT cannot load the model"):
        get_runner("litert").latency(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 8)


def test_a_litert_lut_of_sampled_int8_kernels(tmp_path):
    from roofline.profilers.build import build_lut
    from roofline.profilers.kernels import decode, sample_kernels
    from roofline.profilers.lut import open_lut

    keys = sample_kernels(4, seed=1, precision="int8", kinds=("pwconv", "gemm"))
    assert len(set(keys)) == 4 and all(decode(k).precision == "int8" for k in keys)
    lut = build_lut(keys, tmp_path / "l.csv", runner=get_runner("litert"), progress=False, min_repeats=10,
                    max_seconds=0.5)  # fmt: skip
    table = open_lut(tmp_path / "l.csv").table()
    assert sorted(table.key) == sorted(keys) and (table.latency_ms > 0).all()
    assert lut.meta["conditions"]["precision"] == "int8" and lut.meta["conditions"]["runtime"] == "litert"
    with pytest.raises(Exception, match="one LUT holds one precision"):
        build_lut([keys[0], keys[0].replace("_int8", "_fp32")], tmp_path / "m.csv", runner=get_runner("litert"))
