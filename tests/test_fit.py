"""``roofline fit``: the latency model fitted to whole-network latencies, cross-validated, written as a
spec that ``predict`` prices exactly as the fit did. The measurements are tables the tests write from
a known latency model (so what the fit should recover is known), never timed here."""

from __future__ import annotations

import pandas as pd
import pytest

import roofline
from roofline.cli import main
from roofline.devices import validate_spec
from roofline.devices.fit import FitError, fit

NETWORKS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v2_050", "mobilenet_v3_small", "mobilenet_v3_large",
            "mnv4_conv_s", "mnasnet_a1", "efficientnet_b0"]  # fmt: skip


def truth(scale: float = 1.0, **kinds):
    """A phone-like latency model: per-kind peaks, bandwidths and overheads, and a per-network constant
    (``kinds``: more kinds' (bandwidth, overhead))."""
    fits = {"conv": (4e10, 6e9, 2e-5), "pointwise": (6e10, 6e9, 1e-5), "depthwise": (1e10, 4e9, 1.5e-5)}
    calibration = {k: {"peak_macs_per_s": p / scale, "bandwidth_bytes_per_s": b / scale, "overhead_s": o * scale}
                   for k, (p, b, o) in fits.items()}  # fmt: skip
    calibration |= {k: {"bandwidth_bytes_per_s": b, "overhead_s": o} for k, (b, o) in kinds.items()}
    calibration["network"] = {"overhead_s": 5e-4 * scale}
    return validate_spec({"name": "truth", "display_name": "truth", "kind": "cpu", "default_precision": "int8",
                          "provenance": "fitted", "sources": ["the tests' known model"],
                          "peak_macs_per_s": {"int8": 5e10 / scale, "fp16": 2.5e10 / scale},
                          "bandwidth_bytes_per_s": 5e9 / scale,
                          "calibration": calibration}, "truth")  # fmt: skip


def measurements(spec, resolutions=(128, 224)) -> pd.DataFrame:
    rows = []
    for name in NETWORKS:
        for res in resolutions:
            model = roofline.zoo.build(name, resolution=res) if res != roofline.zoo.get(name).resolution else name
            rows.append({"model": model, "latency_ms": roofline.predict(model, spec).totals["latency_ms"].iloc[0]})
    return pd.DataFrame(rows)


def test_fit_recovers_a_known_latency_model_within_its_cross_validated_error():
    result = fit(measurements(truth()), "int8", name="phone")
    assert result.cv["folds"] == "leave-one-out" and len(result.table) == 16
    assert result.cv["within_10pct"] >= 0.9 and result.cv["spearman"] > 0.97
    assert (result.table["predicted_ms"] / result.table["measured_ms"] - 1).abs().max() < 0.1
    # the spec says how it was fitted, and predict prices the fitted networks exactly as the fit did
    assert result.spec.provenance == "fitted" and result.spec.fit["cv"]["within_10pct"] == pytest.approx(
        result.cv["within_10pct"], abs=1e-4)  # fmt: skip
    assert result.spec.calibration["network"]["overhead_s"] >= 0
    again = roofline.predict("mobilenet_v2", result.spec).totals["latency_ms"].iloc[0]
    row = result.table["model"].map(lambda m: isinstance(m, str) and m == "mobilenet_v2")
    assert again == pytest.approx(result.table.loc[row, "predicted_ms"].iloc[0], rel=1e-12)


def test_cross_validation_chooses_the_fusion_policy_and_how_finely_kinds_are_grouped(tmp_path):
    # a device whose element-wise layers cost far more than its other layers without MACs: the fit
    # separates them only when the held-out networks say it pays
    device = truth(elementwise=(2e8, 2e-4), activation=(2e10, 1e-6))
    result = fit(measurements(device), "int8")
    # (runtime-fused zoo networks have no layers of the other kinds: they share a fitted group's roofline)
    method = result.spec.fit["method"]
    assert method.startswith("fusion runtime, groups macs, pool, elementwise (four, chosen by leave-one-out")
    assert "among two, four" in method and result.cv["within_10pct"] >= 0.9
    elementwise = result.spec.calibration["elementwise"]
    assert elementwise["overhead_s"] == pytest.approx(2e-4, rel=0.2)
    assert elementwise["bandwidth_bytes_per_s"] == pytest.approx(2e8, rel=0.2)
    few = fit(measurements(device).iloc[:6], "int8")  # 6 networks: only the coarsest grouping is tried
    assert "(two, chosen by leave-one-out among two)" in few.spec.fit["method"]

    # a runtime that runs every node apart (activations, BN, bias adds: each a layer with its overhead)
    unfused = validate_spec({**_spec_dict(truth(activation=(2e10, 3e-5), elementwise=(2e9, 3e-5))),
                             "fusion": "none"}, "unfused")  # fmt: skip
    data = measurements(unfused)
    result = fit(data, "int8", fusion="auto")  # the policy chosen by cross-validation too
    assert result.spec.fusion == "none" and result.spec.fit["method"].startswith("fusion none")
    assert "among none/two, none/four, runtime/two, runtime/four" in result.spec.fit["method"]
    model = data["model"].iloc[3]
    assert roofline.predict(model, result.spec).totals["latency_ms"].iloc[0] == pytest.approx(
        result.table["predicted_ms"].iloc[3], rel=1e-12)  # fmt: skip
    with pytest.raises(roofline.RooflineError, match="fusion policies"):
        roofline.predict(model, [result.spec, device.__class__(**{**device.__dict__, "fusion": "runtime"})])
    with pytest.raises(roofline.RooflineError, match="fusion policies"):
        roofline.predict(model, result.spec, fuse="runtime")
    # paths that price runtime-fused layers only refuse it; the policy survives the file
    from roofline.devices import write_spec
    from roofline.search.fasteval import Evaluator

    with pytest.raises(roofline.RooflineError, match="fitted with fusion 'none'"):
        Evaluator([result.spec])
    write_spec(result.spec, tmp_path / "fitted.yaml")
    assert roofline.load_device(tmp_path / "fitted.yaml").fusion == "none"
    with pytest.raises(roofline.RooflineError, match="field 'fusion'"):
        validate_spec({**_spec_dict(device), "fusion": "compiler"}, "bad")


def _spec_dict(spec) -> dict:
    keys = ("name", "display_name", "kind", "default_precision", "provenance", "peak_macs_per_s",
            "bandwidth_bytes_per_s")  # fmt: skip
    return {**{k: getattr(spec, k) for k in keys}, "sources": list(spec.sources),
            "calibration": {k: dict(v) for k, v in spec.calibration.items()}}  # fmt: skip


def test_the_command_line_fit_then_predict_gives_the_fit_s_own_prediction(tmp_path, capsys):
    df = measurements(truth(), resolutions=(224,))
    df = df[df["model"].map(lambda m: isinstance(m, str))]
    csv = tmp_path / "pixel_ms.csv"
    df.to_csv(csv, index=False)
    spec_path = tmp_path / "my_phone.yaml"
    assert main(["fit", str(csv), "--precision", "int8", "-o", str(spec_path)]) == 0
    out = capsys.readouterr().out
    cv = roofline.load_device(spec_path).fit["cv"]  # the summary printed is the spec's own cross-validation
    assert cv["folds"] == "leave-one-out" and f"{cv['within_10pct']:.0%} within +-10%" in out
    assert main(["predict", "mnv4_conv_s", "--device", str(spec_path), "--csv", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")["latency_ms"].iloc[0]
    spec = roofline.load_device(spec_path)
    assert spec.fit["rows"] == len(df) and spec.fit["data"] == "pixel_ms.csv"
    expected = fit(csv, "int8").table.set_index("model")["predicted_ms"]
    assert predicted == pytest.approx(expected[[m for m in expected.index if m.endswith("mnv4_conv_s")][0]])


def test_a_new_device_from_a_few_networks_by_scaling_a_calibrated_spec(tmp_path):
    # the same phone family, 2.5x slower: four measured networks are enough to scale the spec
    slow = measurements(truth(scale=2.5), resolutions=(224,)).iloc[:4]
    result = fit(slow, "int8", base=truth(), name="slow_phone")
    assert result.spec.fit["method"] == "scaled truth"
    check = measurements(truth(scale=2.5), resolutions=(160,))
    for model, ms in zip(check["model"], check["latency_ms"]):  # networks the fit never saw
        assert roofline.predict(model, result.spec).totals["latency_ms"].iloc[0] == pytest.approx(ms, rel=0.02)


@pytest.mark.parametrize(
    "text,message",
    [
        ("model,ms\nmobilenet_v2,3\n", "needs columns model,latency_ms; missing \\['latency_ms'\\]"),
        (
            "model,latency_ms\nmobilenet_v2,-3\nmobilenet_v1,2\nmnv4_conv_s,1\n",
            "row 2: latency_ms must be a number > 0",
        ),
        ("model,latency_ms\nmobilenet_v2,3\nmobilenet_v1,2\n", "at least 3 measured networks"),
    ],
)
def test_bad_measurements_get_one_line(tmp_path, capsys, text, message):
    csv = tmp_path / "m.csv"
    csv.write_text(text)
    with pytest.raises(FitError, match=message):
        fit(csv)
    assert main(["fit", str(csv), "-o", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "x.yaml").exists()


def test_a_datasheet_spec_fitted_at_another_precision_than_its_default():
    # the Orin Nano's default is int8, its published times fp16: fit and held-out predictions are at fp16
    from dataclasses import replace

    sheet = replace(roofline.load_device("jetson_orin_nano"), efficiency={}, calibration={}, fit={})
    truth_spec = replace(
        sheet, efficiency={"compute": 0.5, "memory": 0.3}, calibration={"network": {"overhead_s": 1e-3}}
    )
    nets = ["mobilenet_v2_050", "mobilenet_v2", "mnv4_conv_s", "mobilenet_v1", "mnv4_conv_m"]
    ms = [roofline.predict(n, truth_spec, precision="fp16").totals["latency_ms"].item() for n in nets]
    result = fit(pd.DataFrame({"model": nets, "latency_ms": ms}), "fp16", base=sheet)
    assert result.spec.default_precision == "fp16" and result.cv["median_abs_error"] < 0.01
    assert result.table["predicted_ms"].to_numpy() == pytest.approx(ms, rel=0.01)  # (compute barely binds here)
    # a fixed cost and efficiencies alone price any precision the datasheet has
    shipped = roofline.predict("mobilenet_v2", "jetson_orin_nano", precision="int8").totals["latency_ms"].item()
    assert shipped > roofline.load_device("jetson_orin_nano").calibration["network"]["overhead_s"] * 1e3


def test_a_calibration_is_not_silently_used_at_another_precision():
    with pytest.raises(roofline.RooflineError, match="calibrated at int8; its calibration cannot price fp16"):
        roofline.predict("mobilenet_v2", truth(), precision="fp16")


def test_a_fitted_spec_drives_the_search_evaluator():
    # fit a phone, then search for it: the evaluator prices candidates with the fit (equality with
    # predict is tested in test_space); a term it cannot price (layout conversions) is refused
    from dataclasses import replace

    from roofline.search.fasteval import Evaluator

    ev = Evaluator([truth(), truth(scale=2.0)])
    fast = ev.latency(["conv_k3_s2_c16 ds_k3_c32 head_n10"], resolution=96)
    assert fast[0, 1] == pytest.approx(2.0 * fast[0, 0])  # the 2x slower phone, every term scaled
    layout = replace(truth(), calibration={**truth().calibration, "layout": {"bandwidth_bytes_per_s": 1e9}})
    with pytest.raises(roofline.RooflineError, match="layout conversions"):
        Evaluator([layout])


def test_published_phone_latencies_fit_predict_and_search_end_to_end(tmp_path, capsys):
    # the documented flow on real measurements: the MobileNetV4 paper's Pixel 6 CPU column (Table 6,
    # shipped in lut/) -> roofline fit -> predict a network it never saw -> search for that phone
    from roofline.public import load_public

    table6 = load_public("mobilenetv4_table6")
    rows = table6[(table6["device"] == "pixel6_cpu") & table6["zoo_name"].notna()]
    csv = tmp_path / "pixel6_ms.csv"
    rows[["zoo_name", "latency_ms"]].rename(columns={"zoo_name": "model"}).to_csv(csv, index=False)
    spec = tmp_path / "pixel6.yaml"
    assert main(["fit", str(csv), "-o", str(spec)]) == 0
    fitted = roofline.load_device(spec)
    assert fitted.fit["rows"] == len(rows) == 11
    assert fitted.fit["cv"]["within_10pct"] >= 0.7 and fitted.fit["cv"]["spearman"] >= 0.95  # measured: 82%, 0.991
    unseen = roofline.predict("mobilenet_v3_small", fitted).totals["latency_ms"].iloc[0]
    assert 0.5 < unseen < roofline.predict("mobilenet_v2", fitted).totals["latency_ms"].iloc[0]
    capsys.readouterr()
    out_dir = tmp_path / "search"
    assert main(["search", "--device", str(spec), "--target-ms", "3", "--budget", "16", "--out-dir", str(out_dir)]) == 0
    assert "pixel6" in capsys.readouterr().out and (out_dir / "results.csv").exists()
    # a sibling phone from four of its smallest networks: the S23 CPU, scaled from the Pixel 6 fit, then judged
    # on its published networks it never saw (measured: MNv4-Conv-L +12%, MNv4-Conv-M +5%, MobileNetV2-2.0x -1%)
    s23 = table6[(table6["device"] == "s23_cpu") & table6["zoo_name"].notna()].set_index("zoo_name")["latency_ms"]
    four = tmp_path / "s23_four.csv"
    s23.iloc[:4].rename_axis("model").to_frame().to_csv(four)
    assert main(["fit", str(four), "--base", str(spec), "-o", str(tmp_path / "s23.yaml")]) == 0
    sibling = roofline.load_device(tmp_path / "s23.yaml")
    for name in ("mnv4_conv_l", "mnv4_conv_m", "mobilenet_v2_200"):
        assert name not in set(s23.index[:4])
        predicted = roofline.predict(name, sibling).totals["latency_ms"].iloc[0]
        assert predicted == pytest.approx(s23[name], rel=0.15), name
