"""The roofline simulator: ModelTime = sum_i max(MACs_i / PeakMACs, Bytes_i / PeakMemBW).

Written with the ridge point RP = PeakMACs / PeakMemBW, a layer's time is
max(MACs_i, Bytes_i * RP) / PeakMACs, so a device known only by its ridge point still ranks
networks: its latency is in MAC-equivalents (units of 1 / PeakMACs). Everything is vectorised over
layers x devices (or ridge points) with numpy. A fitted spec (``calibration``) prices with the full
latency model of ``roofline.devices.latency``: per-kind peaks, bandwidths and overheads, cold weights, layout
conversions and a per-network constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from roofline.counting.fuse import FUSE_MODES
from roofline.counting.table import Layers, price
from roofline.devices.latency import LatencyModel, roofline_seconds
from roofline.devices.registry import load_devices
from roofline.devices.spec import DeviceSpec
from roofline.errors import InvalidParameterError, check_choice
from roofline.ir import Graph, ModelLike
from roofline.ir.load import load_graph

__all__ = ["Prediction", "predict", "roofline_time"]


def roofline_time(macs: np.ndarray, bytes_: np.ndarray, peak: np.ndarray, ridge: np.ndarray):
    """Per-layer roofline times (:func:`roofline.devices.latency.roofline_seconds`), broadcast over a
    trailing device axis, each device given by its peak and ridge point.

    Args:
        macs: MACs per layer, shape (L,) (NaN for layers without a counting rule: they count as memory only).
        bytes_: bytes per layer, shape (L,) or (L, D).
        peak: peak MACs/s per device, shape (D,) (1.0 for a relative device: times come out in MACs).
        ridge: ridge point per device in MACs/byte, shape (D,).

    Returns:
        (time, compute_time, memory_time), each shape (L, D).
    """
    macs = np.asarray(macs, dtype=float)[:, None]
    peak = np.asarray(peak, dtype=float)
    bytes_ = np.asarray(bytes_, dtype=float)
    if bytes_.ndim == 1:
        bytes_ = bytes_[:, None]
    shape = (macs.shape[0], np.size(peak))
    if np.all(peak == peak.flat[0]):  # e.g. a ridge-point sweep: one compute column serves every device
        peak = peak.flat[0]
    time, compute, memory = roofline_seconds(macs, bytes_, peak, ridge=np.asarray(ridge, dtype=float))
    return time, np.broadcast_to(compute, shape), memory


@dataclass
class Prediction:
    """Per-layer and total roofline latency of one model on several devices (or ridge points).

    ``time`` is (layers x devices): seconds on absolute devices, MAC-equivalents on relative ones.
    """

    layers: pd.DataFrame  # the layer table (bytes at the first device's precision)
    info: pd.DataFrame  # one row per device: display_name, kind, precision, ridge_macs_per_byte, provenance
    bytes: np.ndarray  # (L, D) bytes each device moves per layer (at its precision)
    compute: np.ndarray  # (L, D)
    memory: np.ndarray  # (L, D)
    time: np.ndarray  # (L, D): overhead + max(compute, memory)
    peak: np.ndarray  # (D,) MACs/s, NaN on relative devices
    overhead: np.ndarray | float = 0.0  # (L, D) fixed per-layer costs of fitted specs (roofline.devices.latency)
    network: np.ndarray | float = 0.0  # (D,) per-network seconds of fitted specs: constant, layout conversions

    @property
    def relative(self) -> np.ndarray:
        return np.isnan(self.peak)

    @property
    def precisions(self) -> list[str]:
        return list(self.info["precision"])

    @cached_property
    def totals(self) -> pd.DataFrame:
        """One row per device: latency (ms, or MAC-equivalents when relative) and what bounds it."""
        total = self.time.sum(axis=0) + self.network
        memory_bound = ~(self.compute >= self.memory)  # layers without MACs (unknown ops) are memory-bound
        with np.errstate(invalid="ignore", divide="ignore"):
            mem_share = np.where(total > 0, np.sum(self.memory, axis=0, where=memory_bound) / total, 0.0)
        out = self.info.copy()
        out["latency_ms"] = np.where(self.relative, np.nan, total * 1e3)
        out["latency_mac_equiv"] = total * np.where(self.relative, 1.0, self.peak)
        out["relative"] = self.relative
        out["memory_bound_time_share"] = mem_share
        out["memory_bound_layers"] = np.count_nonzero(memory_bound, axis=0)
        out["macs"] = np.nansum(self.layers["macs"].to_numpy(float))
        out["bytes"] = self.bytes.sum(axis=0)
        return out

    def _overhead(self, j: int) -> np.ndarray:
        return np.broadcast_to(self.overhead, self.time.shape)[:, j]

    def _bound(self, j: int) -> np.ndarray:
        """Which term bounds each layer on device ``j``: compute, memory, or the fixed overhead."""
        c, m = self.compute[:, j], self.memory[:, j]
        bound = np.where(c >= m, "compute", "memory")
        return np.where(self._overhead(j) > np.fmax(c, m), "overhead", bound)

    def per_layer(self, device: str | None = None) -> pd.DataFrame:
        """Tidy per-layer table (one row per layer per device): times, latency and bound."""
        names = list(self.info.index)
        if device is not None and device not in names:
            raise InvalidParameterError(f"device {device!r} is not part of this prediction; it has {names}")
        frames = []
        for j in range(len(names)) if device is None else [names.index(device)]:
            rel = bool(self.relative[j])
            scale = 1.0 if rel else 1e3
            frames.append(
                pd.DataFrame(
                    {
                        "device": names[j],
                        "name": self.layers["name"].to_numpy(),
                        "kind": self.layers["kind"].to_numpy(),
                        "macs": self.layers["macs"].to_numpy(),
                        "bytes": self.bytes[:, j],
                        "latency_ms": np.nan if rel else self.time[:, j] * 1e3,
                        "latency_mac_equiv": self.time[:, j] * (1.0 if rel else self.peak[j]),
                        "compute_time": self.compute[:, j] * scale,
                        "memory_time": self.memory[:, j] * scale,
                        "overhead_time": self._overhead(j) * scale,
                        "bound": self._bound(j),
                        "unit": "MAC-eq" if rel else "ms",
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def fusion_policy(specs, fuse: str | None = None, model=None) -> str:
    """How to group nodes into layers for ``specs``: ``fuse`` if given, else the policy their specs name
    (``fusion``), else "runtime". A spec priced with another policy than it was fitted with, devices
    that disagree, or a layer table counted with another policy are errors, never silently mixed."""
    if fuse is not None:
        check_choice(fuse, FUSE_MODES, "fuse")
    named = {d.name: d.fusion for d in specs if d.fusion}
    policies = set(named.values()) | ({fuse} if fuse else set())
    if len(policies) > 1:
        detail = ", ".join(f"{n}: {f}" for n, f in named.items())
        asked = f"; fuse={fuse!r} asked" if fuse else ""
        raise InvalidParameterError(f"these devices' specs were fitted with other fusion policies ({detail}{asked}): "
                                    "predict them one at a time, without --fuse")  # fmt: skip
    policy = fuse or next(iter(policies), "runtime")
    counted = model.attrs.get("fuse") if isinstance(model, pd.DataFrame) else None
    if named and counted and counted != policy:
        raise InvalidParameterError(f"the layer table was counted with fuse={counted!r}; the device's spec fuses "
                                    f"{policy!r}: count it with fuse={policy!r}, or pass the model")  # fmt: skip
    return policy


def predict(
    model: ModelLike | Graph | pd.DataFrame,
    devices: str | DeviceSpec | Sequence[str | DeviceSpec] | None = None,
    *,
    ridge_points: Sequence[float] | np.ndarray | None = None,
    precision: str | None = None,
    fuse: str | None = None,
    input_shapes=None,
    on_unknown: str = "raise",
) -> Prediction:
    """Roofline latency of a model on one or many devices (or ridge points) at once.

    Args:
        model: a model (path, bytes, ModelProto), a loaded Graph, or a layer table from ``count``
            (whose bytes are then used as counted, for every device).
        devices: device names, spec paths or DeviceSpecs; None means every built-in device (unless
            ``ridge_points`` is given).
        ridge_points: ridge points (MACs/byte) to simulate as relative devices, e.g. a sweep 0..500.
        precision: precision for every device (default: each device's own default precision;
            "int8" for ridge points).
        fuse: "runtime" or "none", as in ``count``; default: the fusion policy the devices' specs name
            (``fusion``, which they must agree on), else "runtime".
    """
    specs = [] if devices is None and ridge_points is not None else load_devices(devices)
    fuse = fusion_policy(specs, fuse, model)
    precisions = [d.resolve_precision(precision) for d in specs]
    info = pd.DataFrame(
        {
            "display_name": [d.display_name for d in specs],
            "kind": [d.kind for d in specs],
            "precision": precisions,
            "ridge_macs_per_byte": [d.ridge(p) for d, p in zip(specs, precisions)],
            "provenance": [d.provenance for d in specs],
        },
        index=pd.Index([d.name for d in specs], name="device"),
    )
    peak = np.array([d.peak(p) or np.nan for d, p in zip(specs, precisions)], float)
    if ridge_points is not None:
        rp = np.asarray(ridge_points, dtype=float).ravel()
        if rp.size and (not np.all(np.isfinite(rp)) or rp.min() < 0):
            raise InvalidParameterError("the 'ridge_points' parameter must hold finite values >= 0 MACs/byte")
        p = precision or "int8"
        names = [f"rp_{r:g}" for r in rp]
        sweep = pd.DataFrame(
            {
                "display_name": names,
                "kind": "ridge-point",
                "precision": p,
                "ridge_macs_per_byte": rp,
                "provenance": "sweep",
            },
            index=pd.Index(names, name="device"),
        )
        info = pd.concat([info, sweep]) if len(info) else sweep
        peak = np.concatenate([peak, np.full(rp.size, np.nan)])
        precisions += [p] * rp.size
    if not len(info):
        raise InvalidParameterError("predict needs at least one device or ridge point")
    ridge = info["ridge_macs_per_byte"].to_numpy(float)

    distinct = list(dict.fromkeys(precisions))
    models = [LatencyModel.of(d, p) for d, p in zip(specs, precisions)]
    graph = None
    if isinstance(model, pd.DataFrame):
        first = model
        per_precision = np.repeat(model["bytes"].to_numpy(float)[:, None], len(distinct), axis=1)
        if "weight_bytes" in model.columns:
            weights = np.repeat(model["weight_bytes"].to_numpy(float)[:, None], len(distinct), axis=1)
        elif any(m.weights_bandwidth_bytes_per_s for m in models):
            raise InvalidParameterError("a spec here prices cold weights: the layer table needs a weight_bytes column")
        else:
            weights = np.zeros((len(model), len(distinct)))
    else:
        graph = model if isinstance(model, Graph) else load_graph(model, input_shapes)
        layers = Layers.build(graph, fuse, on_unknown)
        first = layers.table(distinct[0], distinct[0])
        priced = [price(layers.traffic, p, p) for p in distinct]
        per_precision = np.stack([b.sum(axis=1) for b in priced], axis=1)
        weights = np.stack([b[:, 0] for b in priced], axis=1)
    if len(distinct) == 1:  # a view, not a (layers x devices) copy: sweeps stay cheap
        bytes_ = np.broadcast_to(per_precision, (per_precision.shape[0], len(precisions)))
    else:
        bytes_ = per_precision[:, [distinct.index(p) for p in precisions]]
    macs = first["macs"].to_numpy(float)
    time, compute, memory = roofline_time(macs, bytes_, np.where(np.isnan(peak), 1.0, peak), ridge)
    overhead = np.zeros(len(info))
    fitted = [j for j, m in enumerate(models) if not m.plain]
    network = np.zeros(len(info))
    if fitted:  # per-kind fits, overheads, memory models and network terms: the latency model, device by device
        time, compute, memory = np.array(time), np.array(compute), np.array(memory)
        bytes_ = np.array(bytes_)
        overhead = np.zeros_like(time)
        for j in fitted:
            m = models[j]
            w = weights[:, distinct.index(m.precision)]
            if m.keeps:  # only what crosses the bus costs bandwidth
                external = _external_bytes(graph, first, m.precision, specs[j])
                bytes_[:, j] = m.traffic(w, bytes_[:, j] - w, external)
            t, c, mem, o = m.layer_times(first["kind"], macs, bytes_[:, j], w)
            time[:, j], compute[:, j], memory[:, j], overhead[:, j] = t, c, mem, o
            network[j] = m.network_s + m.conversion_seconds(_conversion_bytes(graph, first, m, specs[j]))
    return Prediction(first, info, bytes_, compute, memory, time, peak, overhead, network)


def _external_bytes(graph: Graph | None, table: pd.DataFrame, precision: str, spec: DeviceSpec) -> np.ndarray:
    """Per layer, the bytes of the model's inputs it reads and of the model's outputs it writes."""
    if graph is None:
        raise InvalidParameterError(
            f"device {spec.name!r} has a memory model, which needs the model's graph (which tensors the host "
            "writes and reads): predict the model (file, ModelProto or Graph), not a layer table"
        )
    from roofline.dtypes import PRECISION_BYTES, onnx_is_float

    ends = set(graph.inputs) | set(graph.outputs)
    by_name = {n.name: n for n in graph.nodes}
    out = np.zeros(len(table))
    for k, names in enumerate(table["nodes"]):
        seen = set()
        for node in (by_name[n] for n in names):
            for t in (*node.inputs, *node.outputs):
                if t is not None and t.name in ends and t.name not in seen and t.shape is not None:
                    seen.add(t.name)
                    out[k] += t.numel * (PRECISION_BYTES[precision] if onnx_is_float(t.elem_type) else t.itemsize)
    return out


def _conversion_bytes(graph: Graph | None, table: pd.DataFrame, model: LatencyModel, spec: DeviceSpec) -> list[float]:
    """Bytes each onnxruntime layout conversion of the network reads and writes (when the spec fitted them)."""
    if model.layout is None:
        return []
    if graph is None:
        raise InvalidParameterError(
            f"device {spec.name!r} prices onnxruntime's layout conversions, which need the model's graph: "
            "predict the model (file, ModelProto or Graph), not a layer table"
        )
    from roofline.counting.ort_layout import reorders
    from roofline.dtypes import PRECISION_BYTES

    size = PRECISION_BYTES[model.precision]
    return [2.0 * r.numel * size for r in reorders(graph, table)]
