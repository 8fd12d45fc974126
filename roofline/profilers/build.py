"""Build a latency LUT of kernels on this machine: resumable, with a progress bar."""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rich.progress import Progress

from roofline.profilers.adb import DeviceGoneError, UnauthorizedError
from roofline.profilers.kernels import kernel_model
from roofline.profilers.lut import Lut, open_lut
from roofline.profilers.ort_trace import LAYOUT_OPS, node_count, run_totals
from roofline.profilers.runners.base import Runner, get_runner
from roofline.profilers.stats import Stats, summarize
from roofline.profilers.tflite_writer import tflite_kernel

__all__ = ["fingerprint", "build_lut", "kernel_stats", "measure_row", "takes_tflite"]


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


class KernelTiming(NamedTuple):
    stats: Stats  # the kernels' own time per run (traced)
    nodes: int  # trace nodes per run, layout conversions left out
    reorder_in_ms: float  # median ReorderInput time per run
    reorder_out_ms: float  # median ReorderOutput time per run


def kernel_stats(runner: Runner, model, runs: int = 50, warmup: int = 10) -> KernelTiming:
    """Time of a single-layer model's kernels alone, from onnxruntime's trace (``runner.trace``: the
    onnxruntime runner): without the per-run session overhead and the layout conversions that a whole
    network pays only where layouts change."""
    trace = runner.trace(model, runs=runs, warmup=warmup)
    stats = summarize(run_totals(trace) / 1e6, warmup=warmup, resolution_s=1e-6)  # the trace counts microseconds
    reorders = [float(np.median(run_totals(trace, only_ops=(op,)))) / 1e3 for op in LAYOUT_OPS]
    return KernelTiming(stats, round(node_count(trace)), reorders[0], reorders[1])


def trace_overhead_us(runner: Runner, nodes: int = 100, runs: int = 60) -> float:
    """What onnxruntime's profiler adds to each traced node's time (microseconds).

    A generated chain of ``nodes`` tiny Adds runs with and without profiling, interleaved: the traced
    node times minus the plain run time, per node. Kernel times are traced, whole networks are not:
    predictions subtract this once per node.
    """
    key = "+".join(["Add(1x16x8x8,w16x1x1)", *(f"Add(%{i},w16x1x1)" for i in range(nodes - 1))]) + "_fp32"
    plain, trace = runner.paired(kernel_model(key), runs=runs, warmup=10)
    return max(0.0, (float(np.median(run_totals(trace))) - float(np.median(plain)) * 1e6) / nodes)


def stream_bandwidth(runner: Runner, key: str = "Relu(1x64x512x512)_fp32", runs: int = 10) -> float:
    """Bytes/s of a streaming kernel far larger than the caches (64 MB in, 64 MB out): the rate at
    which a layer inside a network reads weights that other layers' traffic evicted since its last run."""
    import roofline

    model = kernel_model(key)
    seconds = kernel_stats(runner, model, runs=runs, warmup=3).stats.median_ms / 1e3
    return float(roofline.count(model)["bytes"].sum()) / seconds


#: footprints (input + output bytes) of the streaming kernels that find the cache's capacity
CACHE_FOOTPRINTS_MB = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96)


def cache_bytes(runner: Runner, stream_bytes_per_s: float, runs: int = 10) -> float | None:
    """The cache capacity a network's weights and activations must fit in to stay warm (bytes).

    A streaming ReLU is timed at growing footprints (input + output): its rate holds while the data stays
    in the caches and falls towards ``stream_bytes_per_s`` (DRAM) beyond them. The capacity is the
    footprint at which the rate crosses the geometric mean of the two (log-interpolated between the
    measured sizes); None when the rate never falls (caches larger than the sizes tried).
    """
    import roofline

    sizes, rates = [], []
    for mb in CACHE_FOOTPRINTS_MB:
        hw = max(1, int(round(np.sqrt(mb * 2**20 / 8 / 64))))  # fp32, 64 channels, in + out
        model = kernel_model(f"Relu(1x64x{hw}x{hw})_fp32")
        seconds = kernel_stats(runner, model, runs=runs, warmup=3).stats.median_ms / 1e3
        sizes.append(float(roofline.count(model)["bytes"].sum()))
        rates.append(sizes[-1] / seconds)
    threshold = np.sqrt(np.median(rates[:3]) * stream_bytes_per_s)
    below = [i for i, r in enumerate(rates) if r < threshold and i > 0]
    if not below:
        return None
    i = below[0]
    r0, r1 = np.log(rates[i - 1]), np.log(rates[i])
    f = (r0 - np.log(threshold)) / (r0 - r1) if r0 != r1 else 0.0
    return float(np.exp(np.log(sizes[i - 1]) + f * (np.log(sizes[i]) - np.log(sizes[i - 1]))))


#: the kernel timed now and then during a build: its drift is the machine's
PROBE_KEY = "conv_k3_s1_i32_o32_h28_w28_fp32"
#: spread of the probe's timings (see Drift.spread) above which the machine is reported busy or
#: throttling; a dozen back-to-back probes on a quiet 2-core VM spread up to about 9%
DRIFT_THRESHOLD = 0.12


def takes_tflite(runner) -> bool:
    """Whether ``runner`` times TFLite models (kernels are then written as .tflite for it), from its
    ``model_format`` (see ``roofline.profilers.runners.base.Runner``)."""
    from roofline.errors import InvalidParameterError
    from roofline.profilers.runners.base import MODEL_FORMATS

    model_format = getattr(runner, "model_format", None)
    if model_format not in MODEL_FORMATS:
        raise InvalidParameterError(f"the 'runner' parameter must be a roofline.profilers Runner with a model_format "
                                    f"(one of {list(MODEL_FORMATS)}), got {type(runner).__name__} "
                                    f"with {model_format!r}")  # fmt: skip
    return model_format == "tflite"


def _traces(runner) -> bool:
    """Whether ``runner`` gives onnxruntime traces (``trace``), which kernel timing needs."""
    return not takes_tflite(runner) and callable(getattr(runner, "trace", None))


class Drift:
    """Timings of the probe kernel taken during a measurement campaign, and what they say."""

    def __init__(self, runner):
        self.runner, self.medians_ms = runner, []
        self.tflite, self.traced = takes_tflite(runner), _traces(runner)

    def probe(self, sessions: int = 5) -> float:
        """Time the probe kernel; the mean of ``sessions`` fresh sessions, since a session's buffers
        land on faster or slower addresses (its median is bimodal, about 15% apart, on this VM)."""
        times = []
        for _ in range(sessions if self.traced else 2):  # untraced: a whole model run each, costlier
            if not self.traced:
                model = tflite_kernel(PROBE_KEY) if self.tflite else kernel_model(PROBE_KEY)
                stats = self.runner.latency(model, min_repeats=20, max_seconds=0.2).stats
            else:
                stats = kernel_stats(self.runner, kernel_model(PROBE_KEY), runs=20, warmup=5).stats
            times.append(stats.median_ms)
        self.medians_ms.append(float(np.mean(times)))
        return self.medians_ms[-1]

    @property
    def spread(self) -> float:
        """Range of the rolling median of 3 consecutive probes over their median: a lasting shift
        counts in full, a single outlying probe not at all."""
        m = np.asarray(self.medians_ms)
        if len(m) < 2:
            return 0.0
        rolling = np.array([np.median(m[i : i + 3]) for i in range(max(1, len(m) - 2))]) if len(m) >= 3 else m
        return float((rolling.max() - rolling.min()) / np.median(m))

    @property
    def busy(self) -> bool:
        return self.spread > DRIFT_THRESHOLD

    def report(self) -> str:
        m = self.medians_ms
        verdict = "the machine was busy or throttling: rerun on a quiet machine" if self.busy else "steady"
        return (f"machine drift: probe kernel {min(m):.3f}-{max(m):.3f} ms over {len(m)} probes "
                f"(spread {self.spread:.1%}, threshold {DRIFT_THRESHOLD:.0%}): {verdict}")  # fmt: skip


#: seconds between looks at keys that another builder of the same LUT is measuring
CLAIM_POLL_S = 0.2


def measure_row(runner, key: str, tflite: bool, timing: str, measure_options: dict) -> dict:
    """One LUT row: ``key`` measured now."""
    model = tflite_kernel(key) if tflite else kernel_model(key)
    nodes, reorder_in, reorder_out = 0, 0.0, 0.0
    if timing == "kernel":
        stats, nodes, reorder_in, reorder_out = kernel_stats(runner, model, **measure_options)
    else:
        stats = runner.latency(model, **measure_options).stats
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return {"key": key, "latency_ms": stats.median_ms, "p10_ms": stats.p10_ms, "p90_ms": stats.p90_ms,
            "cv": round(stats.cv, 4), "repeats": stats.repeats, "noisy": stats.noisy, "nodes": nodes,
            "reorder_in_ms": reorder_in, "reorder_out_ms": reorder_out, "measured_at": now}  # fmt: skip


def build_lut(keys, path, runner=None, progress: bool = True, timing: str | None = None, probe_every: int = 100,
              drift: Drift | None = None, **measure_options) -> Lut:  # fmt: skip
    """Measure every kernel key not yet in the LUT at ``path`` and append it (one durable row each).

    With onnxruntime (default runner), ``timing="kernel"`` (default) keeps only the kernels' own time
    (``kernel_stats``; options runs, warmup) and ``"model"`` times whole single-layer models
    (``roofline.profilers.stats.measure`` options). With a runner whose ``model_format`` is "tflite"
    (LiteRT, the phone), kernels are written as TFLite (structured keys, fp32 or int8) and timed as whole
    models. The options are recorded in the
    metadata with the runtime, its settings, the keys' precision and the machine's fingerprint. The
    phone runner (``AdbRunner``) works like LiteRT: a phone that goes away stops the build with every
    finished row kept, in a one-line ``DeviceGoneError`` (or ``UnauthorizedError``, a phone that wants
    the key accepted again) that says how many are kept; the same call again continues.

    A probe kernel is timed before, every ``probe_every`` kernels and after the build; ``lut.drift``
    (a ``Drift``, or the one given, to follow a longer campaign) says whether the machine's speed
    moved more than ``DRIFT_THRESHOLD`` meanwhile: a busy machine is reported, not averaged away.

    Builds of one LUT may run at once (several processes, or threads with their own runners): each
    key is claimed under the table's lock before it is measured (``Lut.claim``), so every key is
    measured once; a builder waits for the keys another live builder is measuring, and takes over
    those of a builder that died.
    """
    from roofline.errors import InvalidParameterError, check_choice

    keys = list(dict.fromkeys(keys))
    runner = runner or get_runner("onnxruntime", threads=1)
    tflite = takes_tflite(runner)
    timing = timing or ("kernel" if _traces(runner) else "model")
    check_choice(timing, ("kernel", "model") if _traces(runner) else ("model",), "timing")
    precisions = sorted({k.rsplit("_", 1)[-1] for k in keys}) or ["fp32"]
    if len(precisions) > 1:
        raise InvalidParameterError(f"one LUT holds one precision; these keys have {precisions}")
    machine = fingerprint() if runner.target == "host" else {}  # a phone's runner reports the phone's own
    meta = {**machine, **runner.conditions(), "precision": precisions[0], "timing": timing,
            "measure": dict(sorted(measure_options.items()))}  # fmt: skip
    if timing == "kernel" and not Path(path).exists():
        meta["trace_overhead_us"] = round(trace_overhead_us(runner), 3)
        meta["stream_bandwidth_bytes_per_s"] = round(stream_bandwidth(runner))
        cache = cache_bytes(runner, meta["stream_bandwidth_bytes_per_s"])
        if cache:
            meta["cache_bytes"] = round(cache)
    lut = open_lut(path, meta)
    todo = [k for k in keys if k not in lut.done()]
    lut.drift = drift or Drift(runner)
    try:
        lut.drift.probe()
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"measuring {len(todo)} kernels", total=len(todo))
            measured = 0
            while todo:
                waiting = []
                for key in todo:  # each key claimed under the table's lock: builders at once share the work
                    state = lut.claim(key)
                    if state == "taken":
                        waiting.append(key)
                        continue
                    if state == "ours":
                        lut.append([measure_row(runner, key, tflite, timing, measure_options)])
                        measured += 1
                        if measured % probe_every == 0:
                            lut.drift.probe()
                    bar.advance(task)
                if waiting:  # another live builder measures them: wait for its rows (or its death)
                    time.sleep(CLAIM_POLL_S)
                todo = waiting
        if measured:
            lut.drift.probe()
    except (DeviceGoneError, UnauthorizedError) as exc:  # the phone went away: say what is kept, how to go on
        done = lut.done()
        left = sum(k not in done for k in keys)
        exc.args = (f"{exc}; {len(done)} measured kernel(s) kept in {lut.path} ({left} of {len(keys)} to go): "
                    "run the same command again to resume",)  # fmt: skip
        raise
    finally:
        lut.release()
    return lut
