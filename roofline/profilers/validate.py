"""Validate predictions against end-to-end measurements on this machine.

For each model: its layers are written as single-layer kernels and measured into a LUT (never the
network itself); the LUT is calibrated; the model is then predicted three ways (raw roofline of the
measured host spec, calibrated roofline, LUT-backed) and finally measured end to end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd

import roofline
from roofline.devices import DeviceSpec
from roofline.profilers.build import Drift, build_lut
from roofline.profilers.calibrate import calibrate, predict_measured
from roofline.profilers.kernels import kernels_of
from roofline.profilers.runners.base import Runner, get_runner

__all__ = ["validate", "summarize_errors", "static_batch", "PREDICTORS"]

#: prediction columns of a validation table, best last
PREDICTORS = ("roofline", "calibrated", "lut")


def validate(models: dict, lut_path, host: DeviceSpec, runner: Runner | None = None, progress: bool = True,
             kernel_options: dict | None = None, measure_options: dict | None = None,
             on_unknown: str = "raise") -> pd.DataFrame:  # fmt: skip
    """Predict and measure each model of ``{name: model}``; one row per model.

    Columns: model, measured_ms, p10_ms, p90_ms, cv, noisy, then ``<predictor>_ms`` and
    ``<predictor>_error`` (relative: predicted / measured - 1) per predictor, and lut_coverage (the
    share of the LUT-backed prediction that comes from measured kernels). ``host`` is the measured
    host spec (``profile_host``) that the raw roofline uses. ``attrs["drift"]`` holds the probe
    kernel's timings through the kernels and the networks (see ``roofline.profilers.build.Drift``).
    """
    runner = runner or get_runner("onnxruntime", threads=1)
    kernel_options = kernel_options or {"runs": 30, "warmup": 10}
    models = {name: static_batch(model) for name, model in models.items()}
    for model in models.values():  # before anything is measured: an op without a rule stops here unless reported
        roofline.count(model, on_unknown=on_unknown)
    keys: dict[str, str] = {}
    for model in models.values():
        keys.update(kernels_of(model, style="generic"))
    drift = Drift(runner)  # one probe series over kernels and networks: their conditions must match
    lut = build_lut(keys, lut_path, runner=runner, progress=progress, drift=drift, **kernel_options)
    fitted = calibrate(lut)
    rows = []
    for name, model in models.items():
        table = roofline.count(model, fuse="runtime", on_unknown="report")
        raw = roofline.predict(table, host, precision="fp32").totals["latency_ms"].iloc[0]
        calibrated = predict_measured(model, None, fitted)
        backed = predict_measured(model, lut, fitted)
        stats = runner.latency(model, **(measure_options or {"max_seconds": 10.0})).stats
        drift.probe()
        row = {"model": name, "measured_ms": stats.median_ms, "p10_ms": stats.p10_ms, "p90_ms": stats.p90_ms,
               "cv": stats.cv, "noisy": stats.noisy, "roofline_ms": raw,
               "calibrated_ms": calibrated.attrs["total_ms"], "lut_ms": backed.attrs["total_ms"],
               "lut_coverage": backed.attrs["coverage"]["lut"]["time_share"]}  # fmt: skip
        for p in PREDICTORS:
            row[f"{p}_error"] = row[f"{p}_ms"] / stats.median_ms - 1
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(lut=str(Path(lut_path)), kernels=len(lut.table()), fitted=fitted, drift=drift)
    return out


def static_batch(model):
    """An ONNX model with every symbolic input dimension set to 1 (as the runners feed it); other
    models as they are. Exports often leave the batch dimension symbolic."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif str(model).endswith(".onnx"):
        proto = onnx.load(str(model), load_external_data=False)
    else:
        return model
    symbolic = [d for i in proto.graph.input for d in i.type.tensor_type.shape.dim if not d.HasField("dim_value")]
    if not symbolic:
        return model
    proto = onnx.ModelProto.FromString(proto.SerializeToString()) if proto is model else onnx.load(str(model))
    for i in proto.graph.input:
        for d in i.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.dim_value = 1
    return proto


def summarize_errors(df: pd.DataFrame) -> pd.DataFrame:
    """Per predictor: share within +-10% and +-5%, median |error|, Spearman rank correlation, count."""
    rows = []
    for p in PREDICTORS:
        err = df[f"{p}_error"].abs()
        spearman = df[f"{p}_ms"].rank().corr(df["measured_ms"].rank()) if len(df) > 1 else np.nan
        rows.append({"predictor": p, "within_10pct": float((err <= 0.10).mean()),
                     "within_5pct": float((err <= 0.05).mean()), "median_abs_error": float(err.median()),
                     "spearman": float(spearman), "models": len(df)})  # fmt: skip
    return pd.DataFrame(rows)
