"""Real exporter output: weight-free ONNX exports (opset 17) of timm CNNs and hybrid attention networks.

The files and their reference MACs (fvcore's conv + linear + matmul counts of the torch modules) are
made by ``tests/data/make_realworld.py``. Every one must count without error, with MACs within 2%.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import roofline

DATA = Path(__file__).parent / "data" / "realworld"
REFERENCE = json.loads((DATA / "reference.json").read_text())
MAC_KINDS = {"conv", "pointwise", "depthwise", "grouped", "conv-transpose", "gemm", "matmul"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_counts_like_a_standard_counter(name):
    path = DATA / f"{name}.onnx"
    raw = roofline.count(path)
    fused = roofline.count(path, fuse="runtime", weight_dtype="int8", activation_dtype="int8")
    macs = raw.loc[raw.kind.isin(MAC_KINDS), "macs"].sum()
    assert macs == pytest.approx(REFERENCE[name]["conv_matmul_macs"], rel=0.02)
    assert raw.macs.sum() == fused.macs.sum() == macs  # only conv/matmul layers have MACs
    assert roofline.totals(raw)["params"] == roofline.totals(fused)["params"] > 0
    assert fused.bytes.sum() < raw.bytes.sum()
    assert not raw.kind.eq("unknown").any()


def test_predicts_every_network_on_every_device():
    pred = [roofline.predict(DATA / f"{name}.onnx") for name in sorted(REFERENCE)]
    for p in pred:
        assert (p.totals.latency_mac_equiv > 0).all()
