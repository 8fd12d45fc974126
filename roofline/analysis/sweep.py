"""The ridge-point sweep of the MobileNetV4 paper (Sec. 3, "Ridge Point Sweep Analysis").

With only a ridge point RP known, a network's latency is expressed in MAC-equivalents:
latency x PeakMACs = sum_i max(MACs_i, Bytes_i x RP). Sweeping RP from 0 (MACs only) to 500 MACs/byte
(an accelerator starved for bandwidth) shows which networks suit which hardware.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from roofline import zoo
from roofline.counting.table import count
from roofline.devices import load_devices
from roofline.devices.simulate import predict
from roofline.errors import InvalidParameterError
from roofline.ir.load import resolve_model

__all__ = ["sweep", "device_ridge_points", "stage_breakdown", "pareto", "DEFAULT_RIDGE_POINTS"]

#: 0 to 500 MACs/byte in steps of 1, the paper's range
DEFAULT_RIDGE_POINTS = np.arange(0.0, 501.0)


def _tables(models, precision: str, fuse: str, on_unknown: str = "raise") -> dict[str, pd.DataFrame]:
    """Layer tables by label, from zoo names, files, ModelProtos or layer tables (a dict gives labels)."""
    if models is None:
        models = zoo.list_models()
    if isinstance(models, (str, bytes, pd.DataFrame)) or not isinstance(models, (Mapping, Iterable)):
        models = [models]
    items = models.items() if isinstance(models, Mapping) else ((None, m) for m in models)
    out = {}
    for label, m in items:
        if isinstance(m, pd.DataFrame):
            out[str(m.attrs.get("model", "model")) if label is None else label] = m
            continue
        m, name = resolve_model(m)  # a zoo name as its built model, named as given
        table = count(m, weight_dtype=precision, activation_dtype=precision, fuse=fuse, on_unknown=on_unknown)
        out[name if label is None else label] = table
    if not out:
        raise InvalidParameterError("sweep needs at least one model")
    return out


def device_ridge_points(precision: str = "int8", devices=None) -> dict[str, float]:
    """Ridge point of every built-in device that has a roofline at ``precision`` (name -> MACs/byte).

    Specs fitted per layer kind are left out unless named: they have no single ridge point. A spec with
    fitted efficiencies marks the ridge point its runtime reaches (peak and bandwidth scaled by them)."""
    from roofline.devices.latency import SPECIAL_KINDS

    out = {}
    for d in load_devices(devices or None):  # None: every built-in device
        per_kind = any(k not in SPECIAL_KINDS for k in d.calibration)
        if precision in d.ridge_macs_per_byte and (devices or not per_kind):
            out[d.name] = d.reached_ridge(precision)
    return out


def sweep(
    models=None,
    ridge_points=None,
    precision: str = "int8",
    reference: str | None = None,
    fuse: str = "runtime",
    on_unknown: str = "raise",
) -> pd.DataFrame:
    """Latency of each model at each ridge point, as a tidy DataFrame.

    Args:
        models: zoo names, model files, ModelProtos or layer tables (a dict maps labels to them);
            None sweeps the whole zoo.
        ridge_points: MACs/byte to simulate (default 0, 1, ..., 500).
        precision: element size for weights and activations (the paper uses int8).
        reference: a model label; ``relative_latency`` is then latency / reference latency at each RP.
        fuse: layer view, as in ``count`` (the fused view is what a runtime executes).
        on_unknown: as in ``count``: "report" prices ops without a counting rule by their bytes alone.

    Returns:
        Columns model, ridge_macs_per_byte, latency_mac_equiv (latency x PeakMACs), relative_latency,
        macs, bytes, memory_bound_time_share. ``df.attrs["devices"]`` holds the built-in devices'
        ridge points at ``precision``, for marking on plots.
    """
    rp = DEFAULT_RIDGE_POINTS if ridge_points is None else np.asarray(ridge_points, dtype=float).ravel()
    tables = _tables(models, precision, fuse, on_unknown)
    if reference is not None and reference not in tables:
        raise InvalidParameterError(f"reference {reference!r} is not one of the swept models {list(tables)}")
    frames = []
    for label, table in tables.items():
        totals = predict(table, ridge_points=rp).totals
        frames.append(
            pd.DataFrame(
                {
                    "model": label,
                    "ridge_macs_per_byte": rp,
                    "latency_mac_equiv": totals["latency_mac_equiv"].to_numpy(),
                    "macs": float(np.nansum(table["macs"])),
                    "bytes": float(table["bytes"].sum()),
                    "memory_bound_time_share": totals["memory_bound_time_share"].to_numpy(),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    if reference is not None:
        ref = df.loc[df.model == reference].set_index("ridge_macs_per_byte")["latency_mac_equiv"]
        df["relative_latency"] = df["latency_mac_equiv"] / df["ridge_macs_per_byte"].map(ref).to_numpy()
    else:
        df["relative_latency"] = df["latency_mac_equiv"] / df.groupby("model")["latency_mac_equiv"].transform("first")
    df.attrs.update(devices=device_ridge_points(precision), precision=precision, reference=reference)
    return df


def _stage(shape: str) -> str:
    """A layer's stage, named by the spatial size of its output ('112x112'; 'head' once it is 1x1)."""
    dims = shape.split(",")[0].strip().split("x")
    return "head" if len(dims) < 4 or dims[2:] == ["1", "1"] else f"{dims[2]}x{dims[3]}"


def stage_breakdown(model, ridge_points, precision: str = "int8", fuse: str = "runtime") -> pd.DataFrame:
    """Share of a model's latency per stage (output resolution) and bound, at each ridge point.

    Returns columns ridge_macs_per_byte, stage, bound (compute|memory), share (of that RP's latency).
    """
    table = next(iter(_tables([model], precision, fuse).values()))
    pred = predict(table, ridge_points=ridge_points)
    per = pred.per_layer()
    per["stage"] = np.tile(table["output_shapes"].map(_stage).to_numpy(), len(pred.info))
    per["ridge_macs_per_byte"] = np.repeat(pred.info["ridge_macs_per_byte"].to_numpy(), len(table))
    g = per.groupby(["ridge_macs_per_byte", "stage", "bound"], sort=False)["latency_mac_equiv"].sum().reset_index()
    g["share"] = g["latency_mac_equiv"] / g.groupby("ridge_macs_per_byte")["latency_mac_equiv"].transform("sum")
    order = {s: i for i, s in enumerate(dict.fromkeys(table["output_shapes"].map(_stage)))}
    g["stage_order"] = g["stage"].map(order)
    return (
        g.sort_values(["ridge_macs_per_byte", "stage_order", "bound"])
        .drop(columns="stage_order")
        .reset_index(drop=True)
    )


def pareto(df: pd.DataFrame, accuracy: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Latency vs top-1 per ridge point, with the Pareto front marked.

    Args:
        df: a ``sweep`` result.
        accuracy: top-1 (%) by model label; default the zoo's (MobileNetV4 paper, Table 6).

    Returns:
        The rows of ``df`` for models with an accuracy, plus columns top1 and pareto (True when no
        other model is both at least as fast and at least as accurate, and better in one).
    """
    if accuracy is None:
        accuracy = {n: zoo.get(n).top1 for n in zoo.list_models() if zoo.get(n).top1 is not None}
    out = df[df.model.isin(accuracy)].copy()
    out["top1"] = out.model.map(accuracy)
    flags = []
    for _, g in out.groupby("ridge_macs_per_byte", sort=False):
        lat, acc = g["latency_mac_equiv"].to_numpy(), g["top1"].to_numpy()
        dominated = ((lat[None, :] <= lat[:, None]) & (acc[None, :] >= acc[:, None])
                     & ((lat[None, :] < lat[:, None]) | (acc[None, :] > acc[:, None]))).any(axis=1)  # fmt: skip
        flags.append(pd.Series(~dominated, index=g.index))
    out["pareto"] = pd.concat(flags)
    return out
