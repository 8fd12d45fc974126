"""Shared timing helpers for the benchmarks: repeated wall-clock runs, reported as median and spread."""

from __future__ import annotations

import time

import numpy as np


def timed(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` runs of ``fn`` after one warm-up run (imports, caches)."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def summary(xs: list[float]) -> str:
    q = np.percentile(np.asarray(xs) * 1e3, [10, 50, 90])
    return f"median {q[1]:8.2f} ms  (p10 {q[0]:.2f}, p90 {q[2]:.2f})"
