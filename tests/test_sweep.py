"""The ridge-point sweep, its plots (data asserted on the Agg backend), and the MobileNetV4 paper's
roofline claims checked under this project's accounting (int8, runtime-fused layers)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import roofline  # noqa: E402
from roofline import plot, zoo  # noqa: E402
from roofline.analysis.sweep import device_ridge_points, pareto, stage_breakdown, sweep  # noqa: E402

DEVICE_RPS = device_ridge_points("int8")
RPS = np.union1d([0.0, 10.0, 100.0, 250.0, 500.0], list(DEVICE_RPS.values()))


@pytest.fixture(scope="module")
def zoo_sweep():
    return sweep(None, RPS, reference="mobilenet_v2")


# ---- the sweep --------------------------------------------------------------------------------------------


def test_at_ridge_point_zero_latency_is_macs_and_orders_models_by_macs(zoo_sweep):
    at0 = zoo_sweep[zoo_sweep.ridge_macs_per_byte == 0].set_index("model")
    np.testing.assert_array_equal(at0.latency_mac_equiv, at0.macs)
    assert list(at0.sort_values("latency_mac_equiv").index) == list(at0.sort_values("macs").index)


def test_latency_grows_with_the_ridge_point_and_is_relative_to_the_reference(zoo_sweep):
    for _, g in zoo_sweep.groupby("model"):
        assert np.all(np.diff(g.sort_values("ridge_macs_per_byte").latency_mac_equiv) >= 0)
    np.testing.assert_allclose(zoo_sweep.loc[zoo_sweep.model == "mobilenet_v2", "relative_latency"], 1.0)
    # at a high ridge point every layer is memory-bound: latency = bytes x RP
    hi = zoo_sweep[zoo_sweep.ridge_macs_per_byte == 500]
    np.testing.assert_allclose(hi.latency_mac_equiv, hi.bytes * 500)
    assert hi.memory_bound_time_share.min() == pytest.approx(1.0)


def test_sweep_marks_the_device_ridge_points(zoo_sweep):
    marks = zoo_sweep.attrs["devices"]
    assert marks["pixel6_cpu"] == 31.2 and marks["pixel8_edgetpu"] == 433.8 and "adreno_640" not in marks  # fp16 only


def test_sweep_of_files_and_tables_agrees(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(zoo.build("mobilenet_v3_small"), path)
    table = roofline.count(path, weight_dtype="int8", activation_dtype="int8", fuse="runtime")
    a = sweep([str(path)], [0, 100]).latency_mac_equiv.to_numpy()
    b = sweep({"t": table}, [0, 100]).latency_mac_equiv.to_numpy()
    c = sweep(table, [0, 100]).latency_mac_equiv.to_numpy()  # a single table, not its columns
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_stage_breakdown_shares_sum_to_one():
    bd = stage_breakdown("mnv4_conv_s", [0.0, 433.8])
    np.testing.assert_allclose(bd.groupby("ridge_macs_per_byte").share.sum(), 1.0)
    assert list(dict.fromkeys(bd.stage)) == ["112x112", "56x56", "28x28", "14x14", "7x7", "head"]


def test_pareto_flags_dominated_models():
    import pandas as pd

    df = pd.DataFrame({"model": ["a", "b", "c"], "ridge_macs_per_byte": 0.0, "latency_mac_equiv": [1.0, 2.0, 3.0],
                       "relative_latency": [1.0, 2.0, 3.0]})  # fmt: skip
    front = pareto(df, {"a": 70.0, "b": 75.0, "c": 74.0})  # c is slower and less accurate than b
    assert dict(zip(front.model, front.pareto)) == {"a": True, "b": True, "c": False}


# ---- the paper's claims -----------------------------------------------------------------------------------


def test_claim_v3_large_wins_at_low_ridge_points_v1_at_high():
    # MNv4 paper Sec. 3: MobileNetV3-Large-1.5x is favoured at low ridge points, MobileNetV1-1.5x at high ones
    models = {"v3l_150": zoo.build("mobilenet_v3_large", width=1.5), "v1_150": zoo.build("mobilenet_v1", width=1.5)}
    df = sweep(models, [0.0, 31.2, 39.7, 347.3, 433.8]).pivot(
        index="ridge_macs_per_byte", columns="model", values="latency_mac_equiv"
    )
    ratio = df.v3l_150 / df.v1_150
    assert (ratio[[0.0, 31.2, 39.7]] < 0.8).all()  # the CPUs: V3-L-1.5x at least 20% faster
    assert (ratio[[347.3, 433.8]] > 1.1).all()  # the DSP and the EdgeTPU: V1-1.5x at least 10% faster


def test_claim_stem_costly_at_low_ridge_points_head_at_high():
    # Sec. 3: MNv4's MAC-heavy early layers cost only at low RP; its big FC head only at high RP
    bd = stage_breakdown("mnv4_conv_s", [0.0, 433.8]).groupby(["ridge_macs_per_byte", "stage"]).share.sum()
    early = bd.loc[0.0][["112x112", "56x56"]].sum(), bd.loc[433.8][["112x112", "56x56"]].sum()
    head = bd.loc[0.0]["head"], bd.loc[433.8]["head"]
    assert early[0] > 1.4 * early[1]
    assert head[1] > 10 * head[0] and head[1] > 0.25


def test_claim_mnv4_is_pareto_optimal_at_every_ridge_point(zoo_sweep):
    # Sec. 3: MNv4 "mostly Pareto-optimal performance at all ridge points" (top-1 from Table 6)
    front = pareto(zoo_sweep)
    mnv4 = front[front.model.str.startswith("mnv4")]
    assert mnv4.pareto.all(), mnv4[~mnv4.pareto]


# ---- the plots --------------------------------------------------------------------------------------------


def test_plot_sweep_draws_one_line_per_model_and_marks_devices(zoo_sweep):
    ax = plot.plot_sweep(zoo_sweep)
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    assert set(lines) == set(zoo_sweep.model)
    g = zoo_sweep[zoo_sweep.model == "mnv4_conv_s"]
    np.testing.assert_allclose(lines["mnv4_conv_s"].get_ydata(), g.relative_latency)
    marked = {round(ln.get_xdata()[0], 3) for ln in ax.get_lines() if ln.get_label().startswith("_")}
    assert {round(v, 3) for v in DEVICE_RPS.values()} <= marked
    assert "ridge point" in ax.get_xlabel() and "relative" in ax.get_ylabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(zoo_sweep.model)
    plt.close(ax.figure)


def test_plot_roofline_places_layers_under_the_roof():
    pred = roofline.predict(zoo.build("mnv4_conv_s"), "jetson_orin_nano")
    ax = plot.plot_roofline(pred)
    points = np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    peak, ridge = 10.0e12, 10.0e12 / 68.0e9
    assert np.all(points[:, 1] <= np.minimum(peak, points[:, 0] * peak / ridge) * (1 + 1e-9))
    table = pred.layers[(pred.layers.macs > 0)]
    assert len(points) == len(table)
    assert "intensity" in ax.get_xlabel() and "MACs/s" in ax.get_ylabel()
    plt.close(ax.figure)


def test_plot_breakdown_bars_sum_to_one():
    bd = stage_breakdown("mnv4_conv_s", [0.0, 31.2, 433.8])
    ax = plot.plot_breakdown(bd)
    heights = {}
    for patch in ax.patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        heights[x] = heights.get(x, 0.0) + patch.get_height()
    assert sorted(heights) == [0, 1, 2] and all(h == pytest.approx(1.0) for h in heights.values())
    plt.close(ax.figure)


def test_plot_pareto_marks_the_front(zoo_sweep):
    front = pareto(zoo_sweep)
    ax = plot.plot_pareto(front, 433.8)
    step = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"][0]
    on_front = front[(front.ridge_macs_per_byte == 433.8) & front.pareto].sort_values("relative_latency")
    np.testing.assert_allclose(step.get_ydata(), on_front.top1)
    assert "top-1" in ax.get_ylabel()
    plt.close(ax.figure)


def test_save_writes_png_and_svg(tmp_path, zoo_sweep):
    for suffix in ("png", "svg"):
        path = plot.save(plot.plot_sweep(zoo_sweep), tmp_path / f"s.{suffix}")
        assert (tmp_path / f"s.{suffix}").stat().st_size > 1000 and path.endswith(suffix)
