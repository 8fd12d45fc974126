"""The latency model: one module, used by every path that prices a network with a device spec
(``predict``, ``sweep``, ``validate``'s calibrated predictions, ``fit``).

Per layer ``l`` of kind ``k``, and per network::

    time = network_s
         + sum_l [ overhead_k + max(MACs_l / peak_k, bytes_l / bandwidth_k) ]
         + sum_l weight_bytes_l / weights_bandwidth          (weights come cold from DRAM, when the
                                                             network's footprint exceeds the cache)
         + sum_conversions [ overhead + bytes / bandwidth ]  (onnxruntime's NCHWc layout changes)

Every term is optional. A spec with peak and bandwidth only is the paper's roofline (no overheads);
with a ridge point only, a relative roofline whose times are MAC-equivalents (units of 1 / PeakMACs).
A spec's ``efficiency`` (fitted: ``compute``, ``memory``) scales its peak and bandwidth to what a runtime
reaches.
A fitted spec (``calibration``) gives per-kind peaks, bandwidths and overheads; kinds it does not
name use the spec's overall peak and bandwidth. A calibration is valid at the precision it was
fitted at: pricing another precision with it is an error, never a silent fallback. A memory model
(``memory``: on-chip bytes and what they keep) decides which bytes cross the bus (``traffic``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from roofline.devices.spec import DeviceSpec
from roofline.errors import SpecError

__all__ = ["KindFit", "LatencyModel", "SPECIAL_KINDS", "roofline_seconds"]

#: calibration entries that are not layer kinds: cold weights, layout conversions, the per-network constant
SPECIAL_KINDS = ("weights", "layout", "network")


def roofline_seconds(macs, bytes_, peak, bandwidth=None, overhead=0.0, *, ridge=None):
    """The roofline: ``overhead + max(macs / peak, bytes / bandwidth)``, and its compute and memory terms.

    The one place the formula is written: the simulator, the latency model and the fits (``roofline.fit``,
    the kernel calibration's grid search) all call it. numpy broadcasting throughout (layers x devices,
    or a grid of overheads x peaks x bandwidths x kernels); NaN MACs (layers without a counting rule)
    count as memory only. A device known by its ridge point RP = peak / bandwidth gives ``ridge``
    instead of ``bandwidth``: the memory term is then ``bytes * RP / peak`` (as the paper writes it,
    and what a relative device with peak 1 needs). Returns (time, compute, memory).
    """
    compute = np.divide(macs, peak)
    memory = np.divide(bytes_, bandwidth) if ridge is None else bytes_ * np.divide(ridge, peak)
    time = np.fmax(compute, memory)
    if not (np.isscalar(overhead) and overhead == 0):
        time = overhead + time
    return time, compute, memory


@dataclass(frozen=True)
class KindFit:
    """The fitted roofline of one layer kind: time = overhead + max(MACs / peak, bytes / bandwidth)."""

    peak_macs_per_s: float  # inf for kinds without MACs
    bandwidth_bytes_per_s: float
    overhead_s: float = 0.0

    @classmethod
    def of(cls, fit: Mapping[str, float]) -> KindFit:
        return cls(fit.get("peak_macs_per_s") or math.inf, fit["bandwidth_bytes_per_s"], fit.get("overhead_s", 0.0))


@dataclass(frozen=True)
class LatencyModel:
    """A device's latency model at one precision (see the module docstring)."""

    precision: str
    default: KindFit  # the spec's overall roofline (relative device: peak 1, bandwidth 1 / ridge)
    relative: bool = False
    kinds: Mapping[str, KindFit] = field(default_factory=dict)
    weights_bandwidth_bytes_per_s: float | None = None
    cache_bytes: float | None = None  # weights come cold only from networks whose footprint exceeds it
    layout: KindFit | None = None
    network_s: float = 0.0
    on_chip_bytes: float | None = None  # the memory model (``memory`` of the spec)
    keeps: frozenset[str] = frozenset()
    efficiency: tuple[float, float] = (1.0, 1.0)  # shares of peak and bandwidth reached (already in ``default``)

    @classmethod
    def of(cls, spec: DeviceSpec, precision: str | None = None) -> LatencyModel:
        p = spec.resolve_precision(precision)
        peak = spec.peak(p)
        if peak is None:
            default = KindFit(1.0, 1.0 / spec.ridge(p)) if spec.ridge(p) > 0 else KindFit(1.0, math.inf)
        else:
            ec, em = spec.efficiency.get("compute", 1.0), spec.efficiency.get("memory", 1.0)
            default = KindFit(peak * ec, peak / spec.ridge(p) * em)
        cal = spec.calibration
        memory = {"on_chip_bytes": spec.memory.get("on_chip_bytes"), "keeps": frozenset(spec.memory.get("keeps", ()))}
        efficiency = (spec.efficiency.get("compute", 1.0), spec.efficiency.get("memory", 1.0))
        if not cal:
            return cls(p, default, relative=peak is None, efficiency=efficiency, **memory)
        if p != spec.default_precision and set(cal) != {"network"}:  # a fixed cost alone holds at any precision
            raise SpecError(
                f"device {spec.name!r} was calibrated at {spec.default_precision}; its calibration cannot price "
                f"{p} (fit it again at {p}, or drop --precision)"
            )
        if peak is None:
            raise SpecError(f"device {spec.name!r}: a calibrated spec needs peak_macs_per_s and bandwidth_bytes_per_s")
        return cls(
            p,
            default,
            kinds={k: KindFit.of(v) for k, v in cal.items() if k not in SPECIAL_KINDS},
            weights_bandwidth_bytes_per_s=cal.get("weights", {}).get("bandwidth_bytes_per_s"),
            cache_bytes=cal.get("weights", {}).get("cache_bytes"),
            layout=KindFit.of(cal["layout"]) if "layout" in cal else None,
            network_s=float(cal.get("network", {}).get("overhead_s", 0.0)),
            efficiency=efficiency,
            **memory,
        )

    @property
    def plain(self) -> bool:
        """True when this is the plain roofline (no per-kind fits, overheads or extra terms)."""
        return not (self.kinds or self.weights_bandwidth_bytes_per_s or self.layout or self.network_s or self.keeps
                    or self.efficiency != (1.0, 1.0))  # fmt: skip

    def traffic(self, weight_bytes, activation_bytes, external_bytes) -> np.ndarray:
        """Bytes each layer moves across the memory bus under the memory model (all of them without one).

        Activations come first, as the Edge TPU compiler places them: a layer's activations stay on chip
        when they fit (``keeps`` activations), and then only what the host writes or reads (the model's
        inputs and outputs, ``external_bytes``) crosses; the largest such working set is reserved.
        Weights are cached in the rest, in execution order while they fit (``keeps`` weights); the others
        stream in at every inference.
        """
        w = np.asarray(weight_bytes, float)
        a = np.asarray(activation_bytes, float)
        if not self.keeps or not self.on_chip_bytes:
            return w + a
        act, reserve = a, 0.0
        if "activations" in self.keeps:
            on_chip = a <= self.on_chip_bytes
            act = np.where(on_chip, np.asarray(external_bytes, float), a)
            reserve = float(a[on_chip].max()) if on_chip.any() else 0.0
        cached = np.zeros(len(w), bool)
        if "weights" in self.keeps:
            cached = np.cumsum(w) <= self.on_chip_bytes - reserve
        return np.where(cached, 0.0, w) + act

    def cold_seconds(self, weight_bytes, bytes_) -> np.ndarray:
        """Seconds each layer spends streaming its weights in cold (zeros without a streaming bandwidth).

        Inside a network a layer reads weights that the other layers' traffic evicted since its last
        run, unless the whole network stays in the cache: with a measured ``cache_bytes``, weights come
        cold only when the network's footprint (all its weights and twice its largest layer's
        activations, the arena that holds inputs, outputs and kept tensors) exceeds it.
        """
        w = np.asarray(weight_bytes, float)
        if not self.weights_bandwidth_bytes_per_s:
            return np.zeros(len(w))
        if self.cache_bytes:
            activations = np.asarray(bytes_, float) - w
            footprint = w.sum() + 2.0 * (activations.max() if len(w) else 0.0)
            if footprint <= self.cache_bytes:
                return np.zeros(len(w))
        return w / self.weights_bandwidth_bytes_per_s

    def layer_times(self, kinds, macs, bytes_, weight_bytes=None) -> tuple[np.ndarray, ...]:
        """(time, compute, memory, overhead) seconds (MAC-equivalents when relative) per layer of one network.

        A layer's time is ``overhead + max(compute, memory)`` (:func:`roofline_seconds`); NaN MACs
        (unknown ops) count as memory only. ``overhead`` holds the fixed per-layer cost and, on a spec
        fitted with cold weights, the time to stream the layer's weights (measured to add to, not overlap
        with, the layer's own time; see :meth:`cold_seconds`, which needs the whole network's layers when
        the spec has a cache size).
        """
        kinds = np.asarray(kinds, dtype=object)
        macs = np.asarray(macs, float)
        bytes_ = np.asarray(bytes_, float)
        fits = [self.kinds.get(k, self.default) for k in kinds]
        peak = np.array([f.peak_macs_per_s for f in fits], float)
        bandwidth = np.array([f.bandwidth_bytes_per_s for f in fits], float)
        overhead = np.array([f.overhead_s for f in fits], float)
        if weight_bytes is not None:
            overhead = overhead + self.cold_seconds(weight_bytes, bytes_)
        time, compute, memory = roofline_seconds(macs, bytes_, peak, bandwidth, overhead)
        return time, compute, memory, overhead

    def conversion_seconds(self, conversion_bytes) -> float:
        """Seconds of the layout conversions (each reads and writes its tensor: ``bytes`` given whole)."""
        if self.layout is None:
            return 0.0
        b = np.asarray(conversion_bytes, float)
        return float(np.sum(self.layout.overhead_s + b / self.layout.bandwidth_bytes_per_s))
