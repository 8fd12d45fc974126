"""The roofline simulator against hand-computed times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_model
from onnx import helper

import roofline
from roofline.devices import validate_spec
from roofline.devices.simulate import roofline_time

SPEC = dict(name="toy", display_name="Toy NPU", kind="npu", default_precision="int8", provenance="datasheet",
            sources=["hand-made for tests"])  # fmt: skip


def toy(peak_int8=1e9, peak_fp16=None, bw=1e8, **kw):
    peaks = {"int8": peak_int8} | ({"fp16": peak_fp16} if peak_fp16 else {})
    return validate_spec({**SPEC, "peak_macs_per_s": peaks, "bandwidth_bytes_per_s": bw, **kw})


def two_layers():
    # layer 1: 1x1 conv 16->32 on 8x8: MACs = 2048*16 = 32768; int8 bytes = 1024 in + 512 W + 2048 out = 3584
    # layer 2: Relu on 1x32x8x8: 0 MACs; int8 bytes = 2048 + 2048 = 4096 (not fused: fuse="none")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    return make_model(nodes, [("x", (1, 16, 8, 8), "f32")], [("w", np.zeros((32, 16, 1, 1), np.float32))])


def test_hand_computed_roofline():
    # peak 1e9 MAC/s, 1e8 B/s (ridge 10): conv max(32768/1e9, 3584/1e8) = 35.84 us (memory-bound);
    # relu 4096/1e8 = 40.96 us (memory-bound). Total 76.8 us = 0.0768 ms.
    pred = roofline.predict(two_layers(), toy(), fuse="none")
    total = pred.totals.loc["toy"]
    assert total.latency_ms == pytest.approx(0.0768)
    assert total.latency_mac_equiv == pytest.approx(76.8e-6 * 1e9)
    assert list(pred.per_layer("toy").bound) == ["memory", "memory"]
    assert total.memory_bound_time_share == pytest.approx(1.0)
    # with 10x the bandwidth (ridge 1) the conv becomes compute-bound: 32.768 us + 4.096 us
    fast = roofline.predict(two_layers(), toy(bw=1e9), fuse="none")
    assert fast.totals.loc["toy"].latency_ms == pytest.approx(0.036864)
    assert list(fast.per_layer().bound) == ["compute", "memory"]


def test_each_device_uses_its_own_precision():
    # fp16 doubles every byte: conv 7168 B, relu 8192 B; peak fp16 1e9, bw 1e8 -> 71.68 + 81.92 us
    dev = toy(peak_fp16=1e9, default_precision="fp16")
    pred = roofline.predict(two_layers(), [toy(), dev], fuse="none")
    assert list(pred.precisions) == ["int8", "fp16"]
    assert pred.totals.latency_ms.tolist() == pytest.approx([0.0768, 0.1536])
    assert roofline.predict(two_layers(), dev, precision="int8", fuse="none").totals.latency_ms.item() == pytest.approx(
        0.0768
    )


def test_ridge_only_device_is_relative_and_labelled():
    # ridge 10: latency = sum max(MACs, bytes * 10) = max(32768, 35840) + 40960 = 76800 MAC-equivalents
    rel = validate_spec({**SPEC, "ridge_macs_per_byte": {"int8": 10.0}})
    pred = roofline.predict(two_layers(), rel, fuse="none")
    row = pred.totals.loc["toy"]
    assert row.relative and np.isnan(row.latency_ms) and row.latency_mac_equiv == pytest.approx(76800)
    assert set(pred.per_layer().unit) == {"MAC-eq"}


def test_ridge_point_zero_is_a_mac_count():
    pred = roofline.predict(two_layers(), ridge_points=[0.0], fuse="none")
    assert pred.totals.latency_mac_equiv.item() == 32768


def test_sweep_matches_a_loop_over_devices():
    model = roofline.zoo.build("mobilenet_v2", width=0.5, resolution=128)
    table = roofline.count(model, weight_dtype="int8", activation_dtype="int8", fuse="runtime")
    ridges = np.linspace(0, 500, 101)
    swept = roofline.predict(table, ridge_points=ridges).totals.latency_mac_equiv.to_numpy()
    macs, b = table.macs.to_numpy(float), table.bytes.to_numpy(float)
    loop = [sum(max(m, x * r) for m, x in zip(macs, b)) for r in ridges]
    np.testing.assert_allclose(swept, loop)
    assert np.all(np.diff(swept) >= 0)  # latency never falls as memory gets relatively slower
    # from a model, predict counts at int8 itself and agrees with the table
    direct = roofline.predict(model, ridge_points=ridges).totals.latency_mac_equiv.to_numpy()
    np.testing.assert_allclose(direct, swept)


def test_unknown_layers_count_as_memory_only():
    t = roofline_time(np.array([np.nan, 100.0]), np.array([50.0, 1.0]), np.array([1.0]), np.array([1.0]))[0]
    assert t[:, 0].tolist() == [50.0, 100.0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="ridge_points"):
        roofline.predict(two_layers(), ridge_points=[-1.0])
    with pytest.raises(ValueError, match="'fuse'"):
        roofline.predict(two_layers(), toy(), fuse="aggressive")
    with pytest.raises(ValueError, match=r"no 'fp16' roofline"):
        roofline.predict(two_layers(), toy(), precision="fp16")


def test_prediction_of_a_layer_table_uses_its_bytes():
    table = roofline.count(two_layers(), weight_dtype="int8", activation_dtype="int8")
    assert isinstance(table, pd.DataFrame)
    assert roofline.predict(table, toy()).totals.latency_ms.item() == pytest.approx(0.0768)


def _two_convs():
    # x 1x8x16x16 -> conv A (8->8, 3x3, pads 1) -> conv B -> y; at int8 each weight is 576 B and each
    # activation 2048 B
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], pads=[1, 1, 1, 1], name="A"),
             helper.make_node("Conv", ["a", "wb"], ["y"], pads=[1, 1, 1, 1], name="B")]  # fmt: skip
    w = np.zeros((8, 8, 3, 3), np.float32)
    return make_model(nodes, [("x", (1, 8, 16, 16), "f32")], [("wa", w), ("wb", w)])


@pytest.mark.parametrize(
    "on_chip,traffic",
    [
        (1000, [0 + 4096, 576 + 4096]),  # A's weights fit, B's do not; no room left for 4096 B of activations
        (10_000, [2048, 2048]),  # everything fits: only the model's input (A) and output (B) cross the bus
    ],
)
def test_a_memory_model_moves_only_what_does_not_fit_on_chip(on_chip, traffic):
    spec = toy(peak_int8=1e12, bw=1e9, memory={"on_chip_bytes": on_chip, "keeps": ["weights", "activations"]})
    pred = roofline.predict(_two_convs(), spec)
    assert list(pred.bytes[:, 0]) == traffic
    macs = 16 * 16 * 8 * 8 * 9
    assert pred.totals["latency_ms"].iloc[0] == pytest.approx(sum(max(macs / 1e12, b / 1e9) for b in traffic) * 1e3)
    plain = roofline.predict(_two_convs(), toy(peak_int8=1e12, bw=1e9))
    assert list(plain.bytes[:, 0]) == [576 + 4096, 576 + 4096]


@pytest.mark.parametrize("cache_bytes,cold", [(10_000, False), (9_000, True), (None, True)])
def test_weights_come_cold_only_from_networks_that_outgrow_the_cache(cache_bytes, cold):
    # footprint at int8: 2 x 576 B of weights + twice the largest layer's activations (2048 in + 2048 out)
    assert 2 * 576 + 2 * 4096 == 9_344
    weights = {"bandwidth_bytes_per_s": 1e6} | ({"cache_bytes": cache_bytes} if cache_bytes else {})
    spec = toy(peak_int8=1e12, bw=1e9, provenance="fitted", calibration={"weights": weights})
    pred = roofline.predict(_two_convs(), spec)
    plain = roofline.predict(_two_convs(), toy(peak_int8=1e12, bw=1e9))
    extra = pred.totals["latency_ms"].iloc[0] - plain.totals["latency_ms"].iloc[0]
    assert extra == pytest.approx(1152 / 1e6 * 1e3 if cold else 0.0, abs=1e-12)


def test_a_memory_model_needs_the_graph_and_a_valid_spec():
    spec = toy(memory={"on_chip_bytes": 1000, "keeps": ["weights"]})
    with pytest.raises(roofline.RooflineError, match="memory model, which needs the model's graph"):
        roofline.predict(roofline.count(_two_convs()), spec)
    with pytest.raises(roofline.RooflineError, match="memory.keeps"):
        toy(memory={"on_chip_bytes": 1000, "keeps": ["registers"]})
