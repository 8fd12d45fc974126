"""Fast latency of many candidates on many devices: per-block roofline times, cached, summed.

A block's layers depend only on the block, its input channels and its input size, and the runtime's
fusion never crosses a block boundary; so a network's roofline time on each device is the sum of its
blocks' times. Each distinct (block, channels, size) is built alone as ONNX and counted once with
``roofline.count(fuse="runtime")``, then priced on every device at once; a candidate then costs a few
dictionary look-ups and one vector sum. Equal to ``roofline.predict`` of the whole built network
(tested).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from roofline.blocks import Block, block_cost, decode, expand
from roofline.builder import NetworkBuilder
from roofline.count import count
from roofline.simulate import predict

__all__ = ["Evaluator"]


class Evaluator:
    """Latency of candidates (spec strings or ``roofline.space.Candidate``) on ``devices`` (names,
    paths or specs) and/or ``ridge_points``, at ``precision`` (weights and activations).

    ``latency`` returns (candidates x devices): milliseconds on absolute devices, MAC-equivalents on
    relative ones (ridge points, ridge-only specs); ``columns`` names the devices, ``relative`` flags them.
    """

    def __init__(self, devices=None, ridge_points=None, precision: str = "int8"):
        self.devices, self.ridge_points, self.precision = devices, ridge_points, precision
        probe = self._price(NetworkBuilder("probe", (1, 8, 8, 8)), Block("conv", c=8, k=1))
        self.columns, self.relative = probe[1], probe[2]
        self._cache: dict[tuple, np.ndarray] = {}

    def _price(self, builder: NetworkBuilder, block: Block):
        x = builder.block(builder.input, block)
        table = count(builder.model(x), fuse="runtime", weight_dtype=self.precision, activation_dtype=self.precision)
        pred = predict(table, self.devices, ridge_points=self.ridge_points, precision=self.precision)
        scale = np.where(pred.relative, 1.0, 1e3)  # ms on absolute devices, MAC-equivalents on relative ones
        return pred.time.sum(axis=0) * scale, list(pred.info.index), np.asarray(pred.relative)

    def block_time(self, block: Block, cin: int, hw: tuple[int, int]) -> tuple[np.ndarray, int, tuple[int, int]]:
        """(time per device, output channels, output size) of one block."""
        key = (block, cin, hw)
        hit = self._cache.get(key)
        if hit is None:
            t = self._price(NetworkBuilder("block", (1, cin, *hw)), block)[0]
            hit = self._cache[key] = (t, *block_cost(block, cin, hw)[2:])
        return hit

    def latency(self, candidates, resolution: int | None = None) -> np.ndarray:
        out = np.zeros((len(candidates), len(self.columns)))
        for i, cand in enumerate(candidates):
            spec, res = (cand, resolution) if isinstance(cand, str) else (cand.spec, cand.resolution)
            c, hw, times = 3, (res, res), []
            for b in _blocks(spec):
                t, c, hw = self.block_time(b, c, hw)
                times.append(t)
            out[i] = np.sum(times, axis=0)
        return out


@lru_cache(maxsize=65536)
def _blocks(spec: str) -> tuple[Block, ...]:
    return tuple(expand(decode(spec)))
