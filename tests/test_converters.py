"""Real converter outputs (tests/data/converters) against an independent reference counter.

The corpus: MediaPipe's .tflite models (fp16 weights through DEQUANTIZE, sparse weights through
DENSIFY, custom ops), keras.applications networks converted by TFLiteConverter at fp32 / fp16 /
dynamic-range / int8 (one with an open input shape, one sparse), and weight-free TorchScript ONNX
exports of torchvision detection / segmentation / classification models, as exported, after onnxsim
and after onnxslim, at opsets 13 and 17. reference.json holds, for every file, what
tests/reference_counter.py counts (LiteRT's flatbuffer schema and interpreter, onnx shape
inference; no roofline code); tests/data/converters/make_reference.py regenerates it.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
from pathlib import Path

import pytest

import roofline
from roofline.errors import ShapeError

HERE = Path(__file__).parent / "data" / "converters"
REFERENCE = json.loads((HERE / "reference.json").read_text())
FILES = sorted(REFERENCE)
TFLITE = [k for k in FILES if REFERENCE[k]["format"] == "tflite"]
ONNX = [k for k in FILES if REFERENCE[k]["format"] == "onnx"]
OPEN = [k for k in TFLITE if REFERENCE[k]["open_input"]]
KERAS_NETWORKS = sorted({REFERENCE[k]["network"] for k in FILES if REFERENCE[k]["family"] == "keras"})
BACKBONES = [k for k in ONNX if REFERENCE[k]["backbone_macs"]]
MAC_KINDS = {"conv", "pointwise", "depthwise", "grouped", "conv-transpose", "gemm", "matmul"}

_COUNTS: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    """The path of a corpus file, .tflite.xz files decompressed once into a temporary directory."""
    tmp = tmp_path_factory.mktemp("converters")

    def path(key: str) -> Path:
        src = HERE / key
        if not key.endswith(".xz"):
            return src
        dst = tmp / key.replace("/", "__").removesuffix(".xz")
        if not dst.exists():
            dst.write_bytes(lzma.decompress(src.read_bytes()))
        return dst

    return path


def input_shapes(key: str) -> dict[str, tuple[int, ...]] | None:
    shapes = REFERENCE[key].get("count_input_shapes")
    return {name: tuple(shape) for name, shape in shapes.items()} if shapes else None


@pytest.fixture(scope="session")
def counted(corpus_path):
    """roofline.count of a corpus file (open-shape TFLite files at the reference's input size), cached."""

    def count(key: str, fuse: str = "none"):
        if (key, fuse) not in _COUNTS:
            shapes = input_shapes(key)
            kwargs = {"input_shapes": shapes} if shapes else {}
            _COUNTS[key, fuse] = roofline.count(corpus_path(key), fuse=fuse, **kwargs)
        return _COUNTS[key, fuse]

    return count


def mac_layer_macs(table) -> int:
    return int(table.loc[table.kind.isin(MAC_KINDS), "macs"].sum())


def test_every_corpus_file_has_an_up_to_date_reference():
    on_disk = sorted(p.relative_to(HERE).as_posix() for p in HERE.rglob("*")
                     if p.name.endswith((".tflite", ".tflite.xz", ".onnx")))  # fmt: skip
    assert on_disk == FILES
    for key in FILES:
        assert hashlib.sha256((HERE / key).read_bytes()).hexdigest() == REFERENCE[key]["sha256"], key


@pytest.mark.parametrize("key", ["mediapipe/face_detection_short_range.tflite",
                                 "keras/mobilenet_v3_small_open.fp16.tflite.xz",
                                 "torchvision/lraspp_mobilenet_v3_large.opset13.onnxsim.onnx"])  # fmt: skip
def test_the_reference_is_what_the_reference_counter_counts_today(key):
    # reference.json is not a stored answer: the independent counter gives it again from the file
    import sys

    sys.path.insert(0, str(HERE))
    import make_reference

    path = HERE / key
    entry = make_reference.tflite_entry(path) if ".tflite" in key else make_reference.onnx_entry(path, {})
    assert entry["macs"] == REFERENCE[key]["macs"] > 0
    if ".tflite" in key:
        assert entry["param_elements"] == REFERENCE[key]["param_elements"]
    else:
        assert entry["backbone_macs"] == REFERENCE[key]["backbone_macs"]


def test_the_corpus_covers_what_it_is_for():
    ops = {op for k in TFLITE for op in REFERENCE[k]["ops"]}
    custom = {op for k in TFLITE for op in REFERENCE[k]["custom_ops"]}
    assert {"Convolution2DTransposeBias", "TransformTensorBilinear", "TransformLandmarks",
            "Landmarks2TransformMatrix"} <= custom  # fmt: skip
    assert {"DEQUANTIZE", "DENSIFY", "PRELU", "TRANSPOSE_CONV", "BATCH_MATMUL", "FULLY_CONNECTED"} <= ops
    assert any(REFERENCE[k]["sparse_tensors"] for k in TFLITE if REFERENCE[k]["family"] == "keras")
    assert OPEN and BACKBONES
    # the reference is self-consistent: the walker agrees with fvcore on the torch modules
    for key in ONNX:
        ref = REFERENCE[key]
        assert ref["macs"] == ref["fvcore_macs"], key
        assert ref["backbone_macs"] == (ref["fvcore_backbone_macs"] or 0), key


@pytest.mark.parametrize("fuse", ["none", "runtime"])
@pytest.mark.parametrize("key", FILES)
def test_counts_with_the_reference_macs(counted, key, fuse):
    table = counted(key, fuse)
    assert mac_layer_macs(table) == REFERENCE[key]["macs"]
    assert roofline.totals(table)["macs"] == REFERENCE[key]["macs"]  # only MAC layers have MACs


@pytest.mark.parametrize("fuse", ["none", "runtime"])
@pytest.mark.parametrize("key", TFLITE)
def test_tflite_parameters_equal_the_reference(counted, key, fuse):
    # docs/conventions.md: every non-scalar float or quantised constant a layer reads, each once
    # (filters and biases, PRelu slopes, ...; fp16 / int8 / sparse weights counted at their
    # constant, not again at the DEQUANTIZE / DENSIFY output; a sparse tensor at its dense shape);
    # the int32 biases of int8 models are not parameters. Same in the raw and the fused view.
    # Counted per tensor: in the dynamic-range and int8 keras files the converter stores some
    # int8 filters that quantise to the same bytes in one buffer, but each tensor has its own scales
    # and is its own layer's weight (reference.json: shared_param_buffers).
    assert roofline.totals(counted(key, fuse))["params"] == REFERENCE[key]["param_elements"]


@pytest.mark.parametrize("network", KERAS_NETWORKS)
def test_precisions_of_one_keras_network_count_the_same_macs(counted, network):
    keys = [k for k in TFLITE if REFERENCE[k]["network"] == network]
    assert len(keys) >= 4 or network.endswith("_sparse75"), keys
    macs = {k: mac_layer_macs(counted(k)) for k in keys}
    assert len(set(macs.values())) == 1, macs
    assert len({REFERENCE[k]["macs"] for k in keys}) == 1


@pytest.mark.parametrize("key", OPEN)
def test_an_open_input_shape_must_be_given(corpus_path, key):
    (name,) = REFERENCE[key]["open_inputs"]
    with pytest.raises(ShapeError, match=re.escape(name)):
        roofline.count(corpus_path(key))


@pytest.mark.parametrize("key", BACKBONES)
def test_backbone_macs_equal_the_reference(counted, key):
    table = counted(key)
    backbone = table[table.name.str.contains("/backbone/", regex=False) & table.kind.isin(MAC_KINDS)]
    assert int(backbone.macs.sum()) == REFERENCE[key]["backbone_macs"]


@pytest.mark.parametrize("key", ONNX)
def test_onnx_exports_count_what_fvcore_counts(counted, key):
    macs = mac_layer_macs(counted(key))
    assert macs == pytest.approx(REFERENCE[key]["fvcore_macs"], rel=0.02)


def test_mediapipe_fp16_weights_count_once_at_two_bytes(counted):
    # the example: fp16 weights reach each conv through a DEQUANTIZE; MACs and parameters once,
    # 1x1 convolutions are pointwise (not depthwise), weights 2 bytes each
    table = counted("mediapipe/face_detection_short_range.tflite")
    assert roofline.totals(table)["macs"] == 30_760_960 and roofline.totals(table)["params"] == 101_390
    assert "DequantizeLinear" not in set(table.op_type)
    convs = table[table.op_type == "Conv"]
    assert set(convs.kind) == {"conv", "pointwise", "depthwise"}
    assert not convs[convs.kind == "depthwise"].weight_shapes.str.contains(r"x1x1(?:,|$)").any()
    assert convs.weight_bytes.sum() == 2 * roofline.totals(table)["params"]


def test_the_cli_counts_a_sparse_model_and_says_so(capsys):
    from roofline.cli import main

    assert main(["count", str(HERE / "mediapipe" / "face_detection_full_range_sparse.tflite")]) == 0
    assert "layers have sparse weights" in capsys.readouterr().out


@pytest.mark.parametrize("key", [k for k in ONNX if "ssdlite" in k])
def test_detection_post_processing_is_flagged_as_upper_bounds(counted, key):
    # NonZero, TopK with a run-time k and NonMaxSuppression: their sizes, and everything after them,
    # are the largest the static shapes allow; the backbone and heads stay exact
    table = counted(key)
    upper = table[table.bound == "upper"]
    assert len(upper) >= 100 and roofline.totals(table)["upper_bound_layers"] == len(upper)
    assert {"NonZero", "NonMaxSuppression", "TopK"} <= set(upper.op_type)
    assert upper.macs.sum() == 0 and table[table.bound == ""].macs.sum() == REFERENCE[key]["macs"]
    assert any(s.startswith("NonZero ") for s in table.attrs["bound_sources"]["upper"])
