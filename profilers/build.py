"""Build a latency LUT of kernels on this machine: resumable, with a progress bar."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from rich.progress import Progress

from profilers.kernels import kernel_model
from profilers.lut import Lut, open_lut
from profilers.onnxruntime_runner import OrtRunner

__all__ = ["fingerprint", "build_lut"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def fingerprint() -> dict:
    """What identifies this machine's CPU: model, cores, frequency governor and max frequency where visible."""
    cpuinfo = _read("/proc/cpuinfo") or ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), None
    )
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    return {
        "cpu_model": model or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "max_freq_mhz": int(max_khz) / 1000 if max_khz and max_khz.isdigit() else None,
        "system": f"{platform.system()} {platform.release()}",
    }


def build_lut(keys, path, runner: OrtRunner | None = None, progress: bool = True, **measure_options) -> Lut:
    """Measure every kernel key not yet in the LUT at ``path`` and append it (one durable row each).

    ``measure_options`` go to ``profilers.stats.measure`` (warmup, min_repeats, max_seconds, ...) and
    are recorded in the metadata with the runtime, its settings and the machine's fingerprint.
    """
    runner = runner or OrtRunner(threads=1)
    meta = {
        **runner.conditions(),
        **fingerprint(),
        "precision": "fp32",
        "measure": dict(sorted(measure_options.items())),
    }
    lut = open_lut(path, meta)
    todo = [k for k in dict.fromkeys(keys) if k not in lut.done()]
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"measuring {len(todo)} kernels", total=len(todo))
        for key in todo:
            stats = runner.latency(kernel_model(key), **measure_options).stats
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            lut.append([{"key": key, "latency_ms": stats.median_ms, "p10_ms": stats.p10_ms, "p90_ms": stats.p90_ms,
                         "cv": round(stats.cv, 4), "repeats": stats.repeats, "noisy": stats.noisy,
                         "measured_at": now}])  # fmt: skip
            bar.advance(task)
    return lut
