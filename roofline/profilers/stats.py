"""Repeated timings until the estimate is stable, and their summary (median, p10, p90, CV)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Stats", "measure", "summarize", "NOISY_SPREAD", "OP_TIME_COLUMNS"]

#: the columns that every per-op timing table starts with, whichever parser made it
#: (``ort_trace.node_times``: onnxruntime traces; ``benchmark_output.parse_op_profile``: ``benchmark_model``):
#: ``name`` the op as the runtime names it, ``op_type`` its kernel or node type, ``time_ms`` its time per
#: call in milliseconds (the median of the traced calls, or benchmark_model's average); backend-specific
#: columns follow, times always ``*_ms``
OP_TIME_COLUMNS = ["name", "op_type", "time_ms"]

#: relative spread (p90 - p10) / median above which a measurement is flagged as noisy; robust to the
#: rare outlier (a preempted run) that inflates the coefficient of variation without moving the median
NOISY_SPREAD = 0.25


@dataclass(frozen=True)
class Stats:
    """Summary of repeated timings, in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    cv: float  # standard deviation / mean
    repeats: int
    warmup: int
    stable: bool  # the median settled before the budget ran out
    noisy: bool  # spread above NOISY_SPREAD: the machine was busy, do not trust this row blindly

    @property
    def spread(self) -> float:
        """(p90 - p10) / median."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(samples_s, warmup: int = 0, stable: bool = True, resolution_s: float = 0.0) -> Stats:
    """Stats of timings given in seconds. A spread within twice the clock's ``resolution_s`` is the
    clock's, not the machine's, and is never flagged noisy."""
    ms = np.asarray(samples_s, dtype=float) * 1e3
    if ms.size == 0:
        raise ValueError("no timings to summarize")
    mean = float(ms.mean())
    cv = float(ms.std() / mean) if mean > 0 else 0.0
    p10, med, p90 = np.percentile(ms, [10, 50, 90])
    noisy = (p90 - p10) > NOISY_SPREAD * med and (p90 - p10) > 2e3 * resolution_s
    return Stats(float(med), float(p10), float(p90), mean, cv, int(ms.size), warmup, stable, noisy)


def measure(
    fn: Callable[[], object],
    warmup: int = 5,
    min_repeats: int = 20,
    max_repeats: int = 1000,
    max_seconds: float = 10.0,
    tolerance: float = 0.01,
    batch: int = 10,
    clock: Callable[[], float] = time.perf_counter,
) -> Stats:
    """Time ``fn`` after ``warmup`` calls, in batches, until the running median moves by less than
    ``tolerance`` (relative) from one batch to the next, or ``max_repeats`` / ``max_seconds`` run out."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start, previous, stable = clock(), None, False
    while len(samples) < max_repeats:
        for _ in range(batch):
            t = clock()
            fn()
            samples.append(clock() - t)
        median = float(np.median(samples))
        if len(samples) >= min_repeats and previous is not None and abs(median - previous) <= tolerance * previous:
            stable = True
            break
        previous = median
        if clock() - start > max_seconds:
            break
    return summarize(samples, warmup, stable)
