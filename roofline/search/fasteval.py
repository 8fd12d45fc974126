"""Fast latency of many candidates on many devices from the analytical per-layer formulas.

A block's layers depend only on the block, its input channels and its input size, and the runtime's
fusion never crosses a block boundary; so a network's roofline time on each device is the sum of its
blocks' times. ``roofline.zoo.blocks.block_layers`` gives each block's fused layers (MACs, weight and
activation elements; equal to counting the built ONNX, tested) without building anything; each
distinct (block, channels, size) is priced on every device once and cached, and a candidate then
costs a few dictionary look-ups and one vector sum. Equal to ``roofline.predict`` of the whole built
network (tested).
"""

from __future__ import annotations

import numpy as np

from roofline.devices import load_devices
from roofline.devices.latency import LatencyModel
from roofline.devices.simulate import predict, roofline_time
from roofline.dtypes import precision_bytes
from roofline.errors import InvalidParameterError
from roofline.zoo.blocks import Block, block_layers, expanded

__all__ = ["Evaluator"]


class Evaluator:
    """Latency of candidates (spec strings or ``roofline.search.space.Candidate``) on ``devices`` (names,
    paths or specs) and/or ``ridge_points``, at ``precision`` (weights and activations).

    ``latency`` returns (candidates x devices): milliseconds on absolute devices, MAC-equivalents on
    relative ones (ridge points, ridge-only specs); ``columns`` names the devices, ``relative`` flags them.
    """

    def __init__(self, devices=None, ridge_points=None, precision: str = "int8"):
        self.devices, self.ridge_points, self.precision = devices, ridge_points, precision
        self._bytes = precision_bytes(precision)
        specs = [] if devices is None and ridge_points is not None else load_devices(devices)
        models = [LatencyModel.of(spec, precision) for spec in specs]
        for spec, m in zip(specs, models):
            if spec.fusion not in (None, "runtime"):  # the block formulas are runtime-fused layers
                raise InvalidParameterError(
                    f"device {spec.name!r} was fitted with fusion {spec.fusion!r}; the search evaluator prices "
                    "runtime-fused layers from block formulas: fit the device again on runtime-fused tables"
                )
            if m.layout is not None:  # never price a fitted spec with a term dropped
                raise InvalidParameterError(
                    f"device {spec.name!r} prices onnxruntime's layout conversions, which need each candidate's "
                    "graph; the search evaluator prices from block formulas: fit the device with roofline fit"
                )
        # fitted devices (per-kind peaks, bandwidths, overheads, cold weights): priced layer by layer with
        # the latency model; with a memory model (cached weights, on-chip activations) or a cache size per
        # candidate over its whole layer list, since what stays on chip depends on the network
        whole = [bool(m.keeps or m.cache_bytes) for m in models]  # priced over a candidate's whole layer list
        self._fitted = {j: m for j, m in enumerate(models) if not m.plain and not whole[j]}
        self._memory = {j: m for j, m in enumerate(models) if whole[j]}
        self._network = np.array([m.network_s for m in models] + [0.0] * (0 if ridge_points is None else
                                 np.size(ridge_points)))  # fmt: skip
        probe = predict(_PROBE, devices, ridge_points=ridge_points, precision=precision)  # resolves the devices
        self.columns, self.relative = list(probe.info.index), np.asarray(probe.relative)
        self._peak = np.where(self.relative, 1.0, probe.peak)
        self._ridge = probe.info["ridge_macs_per_byte"].to_numpy(float)
        self._scale = np.where(self.relative, 1.0, 1e3)  # ms on absolute devices, MAC-equivalents on relative
        self._cache: dict[tuple, tuple[np.ndarray, int, tuple[int, int]]] = {}
        # (block, cin, hw) -> its layers (L x [MACs, params, weights, reads, writes]) and kinds
        self._layers: dict[tuple, tuple[np.ndarray, list[str]]] = {}

    def block_time(self, block: Block, cin: int, hw: tuple[int, int]) -> tuple[np.ndarray, int, tuple[int, int]]:
        """(time per device, output channels, output size) of one block."""
        key = (block, cin, hw)
        hit = self._cache.get(key)
        if hit is None:
            layers, cout, out_hw = block_layers(block, cin, hw)
            a = np.array([lay[:5] for lay in layers], dtype=float).reshape(-1, 5)
            kinds = [lay.kind for lay in layers]
            self._layers[key] = (a, kinds)
            moved = (a[:, 2] + a[:, 3] + a[:, 4]) * self._bytes
            time = roofline_time(a[:, 0], moved, self._peak, self._ridge)[0].sum(axis=0) * self._scale
            for j, m in self._fitted.items():
                time[j] = float(np.sum(m.layer_times(kinds, a[:, 0], moved, a[:, 2] * self._bytes)[0])) * self._scale[j]
            hit = self._cache[key] = (time, cout, out_hw)
        return hit

    def latency(self, candidates, resolution: int | None = None) -> np.ndarray:
        rows = []
        for cand in candidates:
            spec, res = (cand, resolution) if isinstance(cand, str) else (cand.spec, cand.resolution)
            c, hw, times, keys = 3, (res, res), [], []
            for b in expanded(spec):
                keys.append((b, c, hw))
                t, c, hw = self.block_time(b, c, hw)
                times.append(t)
            row = np.add.reduce(times) + self._network * self._scale
            if self._memory:
                row = np.array(row, float)
                a = np.concatenate([self._layers[k][0] for k in keys])
                kinds = [kind for k in keys for kind in self._layers[k][1]]
                for j, m in self._memory.items():
                    row[j] = (self._memory_time(m, a, kinds) + m.network_s) * self._scale[j]
            rows.append(row)
        return np.array(rows).reshape(len(rows), len(self.columns))

    def _memory_time(self, m: LatencyModel, a: np.ndarray, kinds: list[str]) -> float:
        """Seconds of one network (its layers in order) under a memory model: the input is what the first
        layer reads, the output what the last one writes (the only activations the host moves)."""
        weights, acts = a[:, 2] * self._bytes, (a[:, 3] + a[:, 4]) * self._bytes
        external = np.zeros(len(a))
        external[0] += a[0, 3] * self._bytes
        external[-1] += a[-1, 4] * self._bytes
        return float(np.sum(m.layer_times(kinds, a[:, 0], m.traffic(weights, acts, external), weights)[0]))


def _probe():
    """A one-node model: enough for ``predict`` to resolve device names, precisions, peaks and ridge points
    (a model, not a layer table, so that devices with a memory model resolve too)."""
    from onnx import TensorProto, helper

    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1]) for n in "xy")
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


_PROBE = _probe()
