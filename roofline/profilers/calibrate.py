"""Calibrate the roofline to measured kernels, and predict whole networks from a LUT.

``calibrate(lut)`` fits, per layer kind, an effective peak (MACs/s), bandwidth (bytes/s) and a fixed
per-layer overhead to the LUT's kernels,

    time = overhead + max(MACs / peak, bytes / bandwidth),

plus the cost of onnxruntime's layout conversions (``layout``: overhead + bytes / bandwidth), and
returns a device spec with provenance "fitted" and the fit's error. Only kernels are ever used: never
a whole network. ``weights`` is the streaming bandwidth measured when the LUT was created: inside a
network a layer reads weights that the other layers' traffic evicted since its last run, so it takes
``weight bytes / bandwidth`` longer than alone with its weights in cache (measured on kernels: run
with the caches flushed before each run, the 1280 x 1000 classifier takes 0.35 ms more, its 5.1 MB
at 13.4 GB/s is 0.38 ms; see ``tests/test_calibrate.py``).

``predict_measured(model, lut, spec)`` then gives every layer the LUT's measurement when the LUT holds
that exact layer, else the calibrated roofline of its kind, adds the layout conversions the network
needs, and reports how much of the model each source covered.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from roofline.counting.ort_layout import reorders
from roofline.devices.latency import LatencyModel, roofline_seconds
from roofline.devices.spec import DeviceSpec, validate_spec
from roofline.errors import RooflineError
from roofline.profilers.kernels import is_generic, kernel_model, layer_keys
from roofline.profilers.lut import Lut
from roofline.profilers.tflite_writer import tflite_kernel

__all__ = ["CalibrationError", "kernel_features", "kernel_seconds", "fit_roofline", "calibrate", "predict_measured",
           "MIN_ROWS"]  # fmt: skip

#: kinds with fewer kernels than this share the fit of all kernels
MIN_ROWS = 4
_BYTES = 4  # fp32
_GRID = np.logspace(7, 13, 97)  # MACs/s and bytes/s
_OVERHEADS = np.concatenate([[0.0], np.logspace(-7, -4, 31)])  # seconds


class CalibrationError(ValueError, RooflineError):
    """Too little or unusable data to calibrate."""


def kernel_features(keys) -> pd.DataFrame:
    """MACs, bytes and kind of each kernel key (from its single-layer model), plus the sizes of the
    layout conversions around it: one row per key."""
    import roofline

    rows = []
    for key in keys:
        quantised = not is_generic(key) and not key.endswith("_fp32")  # phone kernels: count the TFLite model
        model = tflite_kernel(key) if quantised else kernel_model(key)
        table = roofline.count(model, fuse="runtime", on_unknown="report")
        main = table["macs"].fillna(0).idxmax() if table["macs"].fillna(0).any() else 0
        rows.append({
            "key": key, "kind": table["kind"].iloc[main], "macs": float(table["macs"].fillna(0).sum()),
            "bytes": float(table["bytes"].sum()), "in_bytes": float(table["input_bytes"].iloc[0]),
            "out_bytes": float(table["output_bytes"].iloc[-1]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def fit_roofline(macs, bytes_, seconds) -> dict:
    """Least-squares fit (in log time) of ``overhead + max(macs / peak, bytes / bandwidth)``.

    Returns peak_macs_per_s, bandwidth_bytes_per_s, overhead_s, rows and the fit's median absolute
    relative error. A kind without MACs gets no peak.
    """
    macs, bytes_, t = (np.asarray(a, float) for a in (macs, bytes_, seconds))
    if len(t) == 0 or not np.all(t > 0):
        raise CalibrationError("calibration needs measured times > 0")
    log_t = np.log(t)
    peaks = _GRID if macs.any() else np.array([np.inf])
    # every (overhead, peak, bandwidth) of the grid on every kernel: (O, P, B, N)
    pred = roofline_seconds(macs, bytes_, peaks[:, None, None], _GRID[:, None], _OVERHEADS[:, None, None, None])[0]
    loss = ((np.log(np.maximum(pred, 1e-12)) - log_t) ** 2).sum(axis=-1)
    o, p, b = np.unravel_index(np.argmin(loss), loss.shape)
    best = pred[o, p, b]
    return {
        "peak_macs_per_s": float(peaks[p]) if np.isfinite(peaks[p]) else None,
        "bandwidth_bytes_per_s": float(_GRID[b]),
        "overhead_s": float(_OVERHEADS[o]),
        "rows": int(len(t)),
        "median_abs_error": round(float(np.median(np.abs(best / t - 1))), 4),
    }


def kernel_seconds(lut: Lut) -> pd.Series:
    """The LUT's kernel times in seconds by key, less what the profiler added to each traced node
    (measured when the LUT was created, see ``roofline.profilers.build.trace_overhead_us``); never below a tenth."""
    table = lut.table()
    seconds = table["latency_ms"].to_numpy() / 1e3
    corrected = np.maximum(seconds - _trace_overhead_s(lut) * table["nodes"].to_numpy(), 0.1 * seconds)
    return pd.Series(corrected, index=table["key"])


def _trace_overhead_s(lut: Lut) -> float:
    return float(lut.meta.get("conditions", {}).get("trace_overhead_us", 0.0)) / 1e6


def _layout_fit(features: pd.DataFrame, table: pd.DataFrame, overhead_s: float) -> dict | None:
    sizes = np.concatenate([features["in_bytes"], features["out_bytes"]])
    raw = np.concatenate([table["reorder_in_ms"], table["reorder_out_ms"]]) / 1e3
    seen = raw > 0
    times = np.maximum(raw - overhead_s, 0.1 * raw)  # one traced node per conversion
    if seen.sum() < MIN_ROWS:
        return None
    return fit_roofline(np.zeros(seen.sum()), 2 * sizes[seen], times[seen])  # read + write


def calibrate(lut: Lut, name: str = "host_fitted", display_name: str | None = None) -> DeviceSpec:
    """A fitted device spec from the kernels in ``lut`` (see the module docstring)."""
    table = lut.table()
    if len(table) < MIN_ROWS:
        raise CalibrationError(f"{lut.path.name}: {len(table)} kernels; calibration needs at least {MIN_ROWS}")
    features = kernel_features(table["key"])
    seconds = kernel_seconds(lut).to_numpy()
    overall = fit_roofline(features["macs"], features["bytes"], seconds)
    kinds = {}
    for kind, idx in features.groupby("kind").groups.items():
        if len(idx) >= MIN_ROWS:
            kinds[kind] = fit_roofline(features.loc[idx, "macs"], features.loc[idx, "bytes"], seconds[idx])
    layout = _layout_fit(features, table, _trace_overhead_s(lut))
    if layout:
        kinds["layout"] = layout
    meta = lut.meta.get("conditions", {})
    if meta.get("stream_bandwidth_bytes_per_s"):  # measured when the LUT was created, not fitted
        kinds["weights"] = {"bandwidth_bytes_per_s": float(meta["stream_bandwidth_bytes_per_s"]), "overhead_s": 0.0}
        if meta.get("cache_bytes"):
            kinds["weights"]["cache_bytes"] = float(meta["cache_bytes"])
    peak = overall["peak_macs_per_s"] or _GRID[-1]
    data = {
        "name": name,
        "display_name": display_name
        or f"{meta.get('cpu_model', 'host')} ({meta.get('runtime', '?')}, "
        f"{meta.get('threads', '?')} thread(s), fitted)",
        "kind": "cpu",
        "default_precision": meta.get("precision", "fp32"),
        "provenance": "fitted",
        "peak_macs_per_s": {meta.get("precision", "fp32"): peak},
        "bandwidth_bytes_per_s": overall["bandwidth_bytes_per_s"],
        "sources": [
            f"{len(table)} kernels of the LUT {lut.path.name}, fitted "
            f"{dt.date.today().isoformat()} (median |error| of the overall fit "
            f"{overall['median_abs_error']:.1%})"
        ],  # fmt: skip
        "fingerprint": {
            k: meta[k]
            for k in (
                "cpu_model",
                "cpu_count",
                "governor",
                "max_freq_mhz",
                "runtime",
                "runtime_version",
                "threads",
                "optimization",
            )
            if k in meta
        },  # fmt: skip
        "calibration": kinds,
        "notes": "Per-kind effective peak, bandwidth and per-layer overhead fitted to single-layer kernels.",
    }
    return validate_spec(data, name)


def predict_measured(model, lut: Lut | None = None, spec: DeviceSpec | None = None) -> pd.DataFrame:
    """Per-layer latency (ms) of ``model``: the LUT's measurement where it has the exact layer, else the
    calibrated roofline of ``spec``; plus onnxruntime's layout conversions.

    Returns one row per layer (and per layout conversion) with name, kind, key, source ("lut",
    "calibrated", "roofline") and time_ms; ``attrs`` holds total_ms and coverage (share of layers and
    of predicted time per source).
    """
    import roofline

    if lut is None and spec is None:
        raise CalibrationError("predict_measured needs a LUT, a calibrated spec, or both")
    if spec is not None and spec.fusion not in (None, "runtime"):  # LUT kernels are runtime-fused layers
        raise CalibrationError(f"{spec.name!r} was fitted with fusion {spec.fusion!r}; LUT kernels are runtime-fused")
    graph = roofline.load_graph(model)
    table = roofline.count(graph, fuse="runtime", on_unknown="report")
    keys = layer_keys(graph)
    measured = {} if lut is None else (1e3 * kernel_seconds(lut)).to_dict()  # the table read once
    model_ = LatencyModel.of(spec) if spec is not None else None  # the one latency model that predict uses
    if model_ is not None:
        modelled = 1e3 * model_.layer_times(table["kind"], table["macs"], table["bytes"], table["weight_bytes"])[0]
        cold = 1e3 * model_.cold_seconds(table["weight_bytes"], table["bytes"])
    rows = []
    for i, (name, kind) in enumerate(zip(table["name"], table["kind"])):
        key = keys.get(name)
        if key in measured:  # measured warm, alone: its weights still come cold inside a network
            source, ms = "lut", measured[key] + (cold[i] if model_ is not None else 0.0)
        elif model_ is not None:
            source, ms = "calibrated" if kind in spec.calibration else "roofline", modelled[i]
        else:
            raise CalibrationError(f"layer {name!r} ({kind}) is not in the LUT and no calibrated spec was given")
        rows.append((name, kind, key, source, ms))
    if model_ is not None and model_.layout is not None:
        for r in reorders(graph, table):
            t = 1e3 * model_.conversion_seconds([2.0 * r.numel * _BYTES])
            rows.append((f"Reorder{r.direction.capitalize()}:{r.tensor}", "layout", None, "calibrated", t))
    if model_ is not None and model_.network_s:
        rows.append(("network", "network", None, "calibrated", 1e3 * model_.network_s))
    out = pd.DataFrame(rows, columns=["name", "kind", "key", "source", "time_ms"])
    total = float(out["time_ms"].sum())
    out.attrs["total_ms"] = total
    out.attrs["coverage"] = {
        source: {"layers": int((out["source"] == source).sum()),
                 "time_share": float(out.loc[out["source"] == source, "time_ms"].sum() / total) if total else 0.0}
        for source in ("lut", "calibrated", "roofline")
    }  # fmt: skip
    return out
