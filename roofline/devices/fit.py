"""Fit the latency model (``roofline.devices.latency``) to a user's measurements of whole networks.

``fit(measurements, precision)`` takes networks and their measured latencies (a CSV with columns
``model,latency_ms``: a model file, relative to the CSV, or a zoo name) and fits, jointly over every
layer of every network,

    latency = network_s + sum_layers [ overhead_g + max(MACs / peak_g, bytes / bandwidth_g) ]

with one (peak, bandwidth, overhead) per group ``g`` of layer kinds, in log time with a robust loss
(scipy's ``least_squares``, soft L1) within physical bounds (overheads 0-10 ms). How finely kinds are
grouped (:data:`GROUPINGS`: MAC layers and the rest; MAC layers, pooling, element-wise and the rest;
every MAC kind apart) is chosen by cross-validation among the groupings with fewer parameters than
measurements (with ``fusion="auto"``, so is the fusion policy of the device's runtime, ``roofline.counting.fuse``:
every node a layer, or runtime-fused layers); a group the measurements never exercise shares its
nearest fitted group's roofline. The spec records its policy (``fusion``), and ``predict`` counts with it.
``base=SPEC`` instead fits a spec with peak and bandwidth to a new device through a few numbers,
enough for 3-5 measured networks: a calibrated spec gets one time scale, a datasheet spec the shares of
its peak and bandwidth its runtime reaches (``efficiency``, at most 1 each), both a fixed cost per
inference (0-10 ms); with ``scale_base=False`` only that fixed cost (the same device).

The fitted spec's errors are cross-validated (leave-one-out under 30 rows, else 5-fold): the share
of held-out networks within +-5% and +-10%, the median |error| and Spearman's rank correlation. They
are written into the spec (``fit``) with the data's source. ``roofline predict --device SPEC.yaml``
then prices exactly as the fit did: the in-sample predictions are ``roofline.predict`` of the spec.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from roofline.counting.fuse import FUSE_MODES
from roofline.counting.table import count
from roofline.devices.latency import LatencyModel, roofline_seconds
from roofline.devices.measurements import FitError, checked_measurements, read_measurements
from roofline.devices.registry import load_device
from roofline.devices.simulate import fusion_policy, predict
from roofline.devices.spec import DeviceSpec, validate_spec
from roofline.dtypes import PRECISION_BYTES
from roofline.errors import check_choice
from roofline.ir.load import load_graph
from roofline.ops import KINDS

__all__ = ["fit", "FitResult", "FitError", "read_measurements", "GROUPINGS"]

_MAC_KINDS = {"conv": ("conv", "grouped", "conv-transpose"), "pointwise": ("pointwise",),
              "depthwise": ("depthwise",), "gemm": ("gemm", "matmul")}  # fmt: skip
_SEPARATE = {"pool": ("pool", "reduce"), "elementwise": ("elementwise",)}


def _rest(*groups) -> tuple[str, ...]:
    used = {k for g in groups for kinds in g.values() for k in kinds}
    return tuple(k for k in KINDS if k not in used)


#: candidate groupings of layer kinds (each group shares one fitted peak, bandwidth and overhead),
#: coarse to fine; ``fit`` picks one by cross-validation
GROUPINGS = {
    "two": {"macs": sum(_MAC_KINDS.values(), ()), "other": _rest(_MAC_KINDS)},
    "four": {"macs": sum(_MAC_KINDS.values(), ()), **_SEPARATE, "other": _rest(_MAC_KINDS, _SEPARATE)},
    "kinds": {**_MAC_KINDS, **_SEPARATE, "other": _rest(_MAC_KINDS, _SEPARATE)},
}
_BOUNDS = {"peak": (1e7, 1e16), "bandwidth": (1e6, 1e13), "overhead": (0.0, 0.01), "network": (0.0, 1.0)}


@dataclass
class FitResult:
    """A fitted spec, its per-network predictions and its cross-validated errors."""

    spec: DeviceSpec
    table: pd.DataFrame  # model, measured_ms, predicted_ms (in-sample, = predict), cv_predicted_ms, cv_error
    cv: dict  # folds, within_5pct, within_10pct, median_abs_error, spearman

    def summary(self) -> str:
        c = self.cv
        return (f"{len(self.table)} networks, {c['folds']} cross-validation: {c['within_10pct']:.0%} within +-10%, "
                f"{c['within_5pct']:.0%} within +-5%, median |error| {c['median_abs_error']:.1%}, "
                f"Spearman {c['spearman']:.3f}")  # fmt: skip


def fit(
    measurements,
    precision: str = "int8",
    *,
    base: str | DeviceSpec | None = None,
    name: str = "fitted",
    display_name: str | None = None,
    kind: str = "cpu",
    source: str | None = None,
    seed: int = 0,
    scale_base: bool = True,
    fusion: str = "runtime",
) -> FitResult:
    """Fit a device spec to whole-network latencies (see the module docstring).

    Args:
        measurements: a ``model,latency_ms`` CSV path, or a DataFrame with those columns (models are
            files, ModelProtos, zoo names, or layer tables counted at ``precision`` with fuse="runtime").
        precision: the precision the device ran at; weights and activations are counted at it.
        base: a calibrated spec to scale to this device instead of fitting every group.
        name, display_name, kind: the new spec's.
        source: where the measurements come from (default: the CSV's name), written into the spec.
        scale_base: with ``base``, fit a time scale and a network constant (a new device); False fits
            the network constant alone (the same device: its fixed cost per inference).
        fusion: the fusion policy of the device's runtime: "runtime" (fused layers, default; what the
            search evaluator prices), "none" (every node a layer), or "auto" (chosen by cross-validation).
    """
    check_choice(precision, sorted(PRECISION_BYTES), "precision")
    check_choice(fusion, (*FUSE_MODES, "auto"), "fusion")
    if isinstance(measurements, (str, os.PathLike)):
        source = source or f"{Path(measurements).name}"
        df = read_measurements(measurements)
    else:
        df = checked_measurements(pd.DataFrame(measurements), "measurements")
    if len(df) < 3:
        raise FitError(f"fitting needs at least 3 measured networks, got {len(df)}")
    # graphs (loaded once) for prediction, their layer tables for the fit; a given table is both
    items = [m if isinstance(m, pd.DataFrame) else load_graph(m) for m in df["model"]]
    # the fusion policies to try: given tables were counted with theirs, models can be counted either way
    given = {m.attrs.get("fuse", "runtime") for m in items if isinstance(m, pd.DataFrame)}
    policies = list(FUSE_MODES) if fusion == "auto" else [fusion]
    if given:
        if len(given) > 1 or (fusion != "auto" and given != {fusion}):
            raise FitError(f"the layer tables were counted with fuse={sorted(given)}; fusion={fusion!r} was asked")
        policies = sorted(given)
    tables = {f: [m if isinstance(m, pd.DataFrame) else
                  count(m, weight_dtype=precision, activation_dtype=precision, fuse=f, on_unknown="report")
                  for m in items] for f in policies}  # fmt: skip
    seconds = df["latency_ms"].to_numpy(float) / 1e3
    base_spec = load_device(base) if base is not None else None
    n = len(df)
    if base_spec is not None:

        def scaled(idx) -> DeviceSpec:
            return _scaled(base_spec, [items[i] for i in idx], seconds[idx], precision, scale_base)

        candidates = {"scaled": scaled}
        calibrated = any(k != "network" for k in base_spec.calibration)
        how = "scaled " if calibrated else "compute and memory efficiencies and fixed cost on "
        method = f"{how if scale_base else 'network constant on '}{base_spec.name}"
    else:
        candidates, groupings = {}, {}
        for f in policies:
            for label, groups in _groupings(tables[f], n).items():
                key = f"{f}/{label}" if len(policies) > 1 else label
                candidates[key] = _grouped_fit(tables[f], seconds, groups, precision, f)
                groupings[key] = groups
    # each candidate's held-out predictions (the same folds); the lowest median |error| wins
    held_out = {label: _cross_validate(fitted, items, n, seed) for label, fitted in candidates.items()}
    label = min(held_out, key=lambda c: np.median(np.abs(held_out[c][0] / seconds - 1)))
    spec = candidates[label](np.arange(n))
    cv_pred, folds = held_out[label]
    if base_spec is None:
        method = (f"fusion {spec.fusion}, groups {', '.join(groupings[label])} ({label}, chosen by {folds} among "
                  f"{', '.join(held_out)})")  # fmt: skip
    errors = cv_pred / seconds - 1
    cv = {
        "folds": folds,
        "within_5pct": float(np.mean(np.abs(errors) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(errors) <= 0.10)),
        "median_abs_error": float(np.median(np.abs(errors))),
        "spearman": _spearman(cv_pred, seconds),
    }
    data = _spec_data(spec, name, display_name or f"{name} (fitted to {len(df)} networks)", kind, precision)
    scaled = "" if base_spec is None else f" {'by scaling' if scale_base else 'as the fixed cost of'} {base_spec.name}"
    data["sources"] = [f"{len(df)} whole-network latencies ({source or 'measurements'}), fitted "
                       f"{dt.date.today().isoformat()}{scaled}"]  # fmt: skip
    data["fit"] = {"data": source or "measurements", "rows": len(df), "precision": precision,
                   "method": method,
                   "cv": {k: round(v, 4) if isinstance(v, float) else v for k, v in cv.items()}}  # fmt: skip
    data["notes"] = "The latency model of roofline.devices.latency, fitted to whole-network latencies (roofline.fit)."
    spec = validate_spec(data, name)
    predicted = np.array([predict(m, spec).totals["latency_ms"].iloc[0] for m in items])
    table = pd.DataFrame({"model": df["model"], "measured_ms": seconds * 1e3, "predicted_ms": predicted,
                          "cv_predicted_ms": cv_pred * 1e3, "cv_error": errors})  # fmt: skip
    return FitResult(spec, table, cv)


# ---- the fit -------------------------------------------------------------------------------------


def _groupings(tables, n: int) -> dict[str, dict[str, tuple[str, ...]]]:
    """The candidate groupings for these measurements: each restricted to the groups their layers
    exercise, distinct, and (but for the coarsest) with fewer parameters than measurements."""
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for label, groups in GROUPINGS.items():
        g = _present(groups, tables)
        if g not in out.values() and (not out or 3 * len(g) + 1 < n):
            out[label] = g
    return out


def _present(groups: Mapping, tables) -> dict[str, tuple[str, ...]]:
    """``groups`` without those no measured layer belongs to; their kinds join the nearest fitted group
    (a MAC kind: the group with the most MACs; another kind: the non-MAC group with the most layers)."""
    kinds = pd.concat([t[["kind", "macs"]] for t in tables]).fillna({"macs": 0})
    layers = {g: int(kinds["kind"].isin(ks).sum()) for g, ks in groups.items()}
    macs = {g: float(kinds.loc[kinds["kind"].isin(ks), "macs"].sum()) for g, ks in groups.items()}
    kept = {g: list(ks) for g, ks in groups.items() if layers[g]}
    if not kept:
        raise FitError("the measured networks have no layers to fit")
    mac_kinds = set(sum(_MAC_KINDS.values(), ()))
    for g, ks in groups.items():
        if g in kept:
            continue
        if mac_kinds & set(ks) and any(macs[h] > 0 for h in kept):
            target = max(kept, key=macs.get)
        else:
            target = max(kept, key=lambda h: (macs[h] == 0, layers[h]))
        kept[target] += ks
    return {g: tuple(ks) for g, ks in kept.items()}


def _grouped_fit(tables, seconds: np.ndarray, groups: Mapping, precision: str, fusion: str):
    def fitted(idx) -> DeviceSpec:
        return _spec_from(_fit_groups([tables[i] for i in idx], seconds[idx], groups), groups, precision, fusion)

    return fitted


def _features(tables, groups) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per network: group index, MACs and bytes of every layer."""
    index = {k: g for g, kinds in enumerate(groups.values()) for k in kinds}
    gs = [np.array([index.get(k, len(groups) - 1) for k in t["kind"]]) for t in tables]
    return gs, [t["macs"].fillna(0).to_numpy(float) for t in tables], [t["bytes"].to_numpy(float) for t in tables]


def _fit_groups(tables, seconds: np.ndarray, groups: Mapping) -> dict:
    """(peak, bandwidth, overhead) per group and the network constant, least squares in log time."""
    from scipy.optimize import least_squares

    gs, macs, bytes_ = _features(tables, groups)
    n = len(groups)
    has_macs = np.array([any(m[g == j].sum() > 0 for g, m in zip(gs, macs)) for j in range(n)])

    def unpack(x):
        peak = 10.0 ** x[:n]
        bw = 10.0 ** x[n : 2 * n]
        return np.where(has_macs, peak, np.inf), bw, x[2 * n : 3 * n], x[3 * n]

    def predicted(x):
        peak, bw, ov, net = unpack(x)
        return np.array(
            [net + np.sum(roofline_seconds(m, b, peak[g], bw[g], ov[g])[0]) for g, m, b in zip(gs, macs, bytes_)]
        )

    def residuals(x):
        return np.log(np.maximum(predicted(x), 1e-12)) - np.log(seconds)

    lo = [math.log10(_BOUNDS["peak"][0])] * n + [math.log10(_BOUNDS["bandwidth"][0])] * n
    hi = [math.log10(_BOUNDS["peak"][1])] * n + [math.log10(_BOUNDS["bandwidth"][1])] * n
    lo += [_BOUNDS["overhead"][0]] * n + [_BOUNDS["network"][0]]
    hi += [_BOUNDS["overhead"][1]] * n + [_BOUNDS["network"][1]]
    best = None
    for peak0, bw0 in ((1e10, 1e10), (1e11, 1e9), (1e9, 1e11)):  # a few starts: max() makes the loss kinked
        x0 = np.array([math.log10(peak0)] * n + [math.log10(bw0)] * n + [1e-6] * n + [float(seconds.min()) / 10])
        r = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05, x_scale="jac")
        if best is None or r.cost < best.cost:
            best = r
    peak, bw, ov, net = unpack(best.x)
    return {"groups": {name: (float(peak[j]), float(bw[j]), float(ov[j])) for j, name in enumerate(groups)},
            "network_s": float(net)}  # fmt: skip


def _spec_from(fitted: dict, groups: Mapping, precision: str, fusion: str) -> DeviceSpec:
    calibration = {}
    for name, kinds in groups.items():
        peak, bw, ov = fitted["groups"][name]
        for k in kinds:
            calibration[k] = {"peak_macs_per_s": None if math.isinf(peak) else peak, "bandwidth_bytes_per_s": bw,
                              "overhead_s": ov}  # fmt: skip
    calibration["network"] = {"overhead_s": fitted["network_s"]}
    finite = [p for p, _, _ in fitted["groups"].values() if math.isfinite(p)] or [_BOUNDS["peak"][1]]
    data = {"name": "fit", "display_name": "fit", "kind": "cpu", "default_precision": precision,
            "provenance": "fitted", "sources": ["fit"], "peak_macs_per_s": {precision: max(finite)},
            "bandwidth_bytes_per_s": max(bw for _, bw, _ in fitted["groups"].values()),
            "calibration": calibration, "fusion": fusion}  # fmt: skip
    return validate_spec(data, "fit")


def _scaled(base: DeviceSpec, items, seconds: np.ndarray, precision: str, scale: bool = True) -> DeviceSpec:
    """``base`` fitted to the measurements through a few numbers, plus a fixed cost per inference (0-10 ms):

    - a calibrated base (per-kind fits): one time scale for all of it (a sibling device);
    - a datasheet base (peak and bandwidth only): the shares of its peak and of its bandwidth that the
      runtime reaches (``efficiency``, each at most 1: the datasheet is the ceiling);
    - ``scale=False``: the fixed cost alone (the same device).
    """
    from scipy.optimize import least_squares

    if base.is_relative(precision):
        raise FitError(f"--base {base.name!r} has only a ridge point: scale a spec with peak and bandwidth")
    kinds = [k for k in base.calibration if k != "network"]
    if scale and not kinds:
        return _efficiency_fit(base, items, seconds, precision)
    model = LatencyModel.of(base, precision)
    totals = np.array([predict(m, base, precision=precision).totals["latency_ms"].iloc[0] / 1e3 for m in items])
    body = totals - model.network_s

    def residuals(x):
        s = x[0] if scale else 1.0
        return np.log(x[-1] + s * body) - np.log(seconds)

    x0 = [float(np.median(seconds / totals)), 0.0] if scale else [max(float(np.median(seconds - body)), 0.0)]
    top = _BOUNDS["overhead"][1]
    bounds = ([1e-4, 0.0], [1e4, top]) if scale else ([0.0], [top])
    r = least_squares(residuals, np.minimum(x0, [b for b in bounds[1]]), bounds=bounds, loss="soft_l1", f_scale=0.05)
    s, net = (float(r.x[0]), float(r.x[1])) if scale else (1.0, float(r.x[0]))
    calibration = {}
    for kind, entry in base.calibration.items():
        e = dict(entry)
        if e.get("peak_macs_per_s"):
            e["peak_macs_per_s"] /= s
        if e.get("bandwidth_bytes_per_s"):
            e["bandwidth_bytes_per_s"] /= s
        if "overhead_s" in e:
            e["overhead_s"] *= s
        calibration[kind] = e
    calibration["network"] = {"overhead_s": net}
    # kinds the base calibrates scale through their entries, the others through the spec's efficiency
    ec, em = model.efficiency
    efficiency = {} if s == 1.0 else {"compute": ec / s, "memory": em / s}
    return replace(base, default_precision=precision, efficiency=efficiency, calibration=calibration, fit={})


def _efficiency_fit(base: DeviceSpec, items, seconds: np.ndarray, precision: str) -> DeviceSpec:
    """A datasheet spec's compute and memory efficiencies (<= 1) and fixed cost, fitted in log time."""
    from scipy.optimize import least_squares

    tables = [count(m, weight_dtype=precision, activation_dtype=precision, fuse=fusion_policy([base]),
                    on_unknown="report") if not isinstance(m, pd.DataFrame) else m for m in items]  # fmt: skip
    macs = [t["macs"].fillna(0).to_numpy(float) for t in tables]
    bytes_ = [t["bytes"].to_numpy(float) for t in tables]
    peak, bandwidth = base.peak(precision), base.bandwidth_bytes_per_s

    def predicted(x):
        ec, em, net = 10.0 ** x[0], 10.0 ** x[1], x[2]
        return np.array(
            [net + np.sum(roofline_seconds(m, b, peak * ec, bandwidth * em)[0]) for m, b in zip(macs, bytes_)]
        )

    def residuals(x):
        return np.log(predicted(x)) - np.log(seconds)

    bounds = ([-4.0, -4.0, 0.0], [0.0, 0.0, _BOUNDS["overhead"][1]])
    r = least_squares(residuals, [-1.0, -1.0, 1e-3], bounds=bounds, loss="soft_l1", f_scale=0.05)
    efficiency = {"compute": float(10.0 ** r.x[0]), "memory": float(10.0 ** r.x[1])}
    network = {"network": {"overhead_s": float(r.x[2])}}  # held-out networks are priced at the fit's precision
    return replace(base, default_precision=precision, efficiency=efficiency, calibration=network, fit={})


def _cross_validate(fitted, items, n: int, seed: int) -> tuple[np.ndarray, str]:
    """Held-out predictions (seconds): leave-one-out under 30 rows, else 5-fold."""
    order = np.random.default_rng(seed).permutation(n)
    k = n if n < 30 else 5
    out = np.empty(n)
    for f in range(k):
        test = order[f::k]
        train = np.setdiff1d(order, test)
        spec = fitted(train)
        out[test] = [predict(items[i], spec).totals["latency_ms"].iloc[0] / 1e3 for i in test]
    return out, "leave-one-out" if k == n else "5-fold"


def _spearman(a, b) -> float:
    ra, rb = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _spec_data(spec: DeviceSpec, name, display_name, kind, precision) -> dict:
    peak = spec.peak_macs_per_s.get(precision) or max(spec.peak_macs_per_s.values())
    return {"name": name, "display_name": display_name, "kind": kind, "default_precision": precision,
            "provenance": "fitted", "peak_macs_per_s": {precision: peak},
            "bandwidth_bytes_per_s": spec.bandwidth_bytes_per_s, "fingerprint": dict(spec.fingerprint),
            "memory": dict(spec.memory), "fusion": spec.fusion,
            "efficiency": dict(spec.efficiency),
            "calibration": {k: dict(e) for k, e in spec.calibration.items()}}  # fmt: skip
