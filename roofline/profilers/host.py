"""``profile_host``: micro-benchmarks that measure this machine's roofline (peak MACs/s, bandwidth).

Peak MACs/s is the faster of a large GEMM and a large 3x3 convolution; memory bandwidth the faster of
a large streaming add (two reads, one write) and a large streaming ReLU (one read, one write). Each
runs through the same runtime and thread count as the kernels it will be compared with, timed from
the runtime's trace (kernel time only). Where LiteRT is installed, the same convolution in fp32 and
full-integer int8 through LiteRT (XNNPACK) adds the int8 peak, which onnxruntime's CPU path lacks.
"""

from __future__ import annotations

import datetime as dt

import roofline
from roofline.devices import DeviceSpec, validate_spec
from roofline.errors import InvalidParameterError
from roofline.profilers.build import fingerprint, kernel_stats
from roofline.profilers.kernels import kernel_model
from roofline.profilers.runners.base import Runner, get_runner

__all__ = ["MICROBENCHMARKS", "profile_host"]

#: kernel key -> what it measures; sizes are far beyond the caches (the streams are 64-200 MB)
MICROBENCHMARKS = {
    "MatMul(512x1024,w1024x1024)_fp32": "compute",
    "conv_k3_s1_i128_o128_h56_w56_fp32": "compute",
    "Add(1x64x512x512,1x64x512x512)_fp32": "memory",
    "Relu(1x64x512x512)_fp32": "memory",
}


def profile_host(
    runner: Runner | None = None, runs: int = 10, warmup: int = 3, name: str = "host"
) -> tuple[DeviceSpec, list[dict]]:
    """Measure the host's roofline; returns the spec (provenance "measured") and one row per benchmark."""
    for parameter, value, low in (("runs", runs, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidParameterError(f"the {parameter!r} parameter must be a whole number >= {low}, got {value!r}")
    runner = runner or get_runner("onnxruntime", threads=1)
    rows = []
    for key, what in MICROBENCHMARKS.items():
        model = kernel_model(key)
        table = roofline.count(model, fuse="runtime")
        stats = kernel_stats(runner, model, runs=runs, warmup=warmup).stats
        seconds = stats.median_ms / 1e3
        macs, bytes_ = float(table["macs"].sum()), float(table["bytes"].sum())
        rows.append({"benchmark": key, "measures": what, "median_ms": stats.median_ms, "cv": stats.cv,
                     "noisy": stats.noisy, "macs_per_s": macs / seconds, "bytes_per_s": bytes_ / seconds})  # fmt: skip
    peaks = {"fp32": max(r["macs_per_s"] for r in rows if r["measures"] == "compute")}
    rows += _litert_rows(runner.threads)
    for r in rows[len(MICROBENCHMARKS) :]:
        precision = r["benchmark"].rsplit("_", 1)[-1]
        peaks[precision] = max(peaks.get(precision, 0.0), r["macs_per_s"])
    bandwidth = max(r["bytes_per_s"] for r in rows if r["measures"] == "memory")
    cond, fp = runner.conditions(), fingerprint()
    data = {
        "name": name,
        "display_name": f"{fp['cpu_model']} ({cond['runtime']} {cond['runtime_version']}, {cond['threads']} thread(s))",
        "kind": "cpu",
        "default_precision": "fp32",
        "provenance": "measured",
        "peak_macs_per_s": peaks,
        "bandwidth_bytes_per_s": bandwidth,
        "sources": [
            f"roofline profile host, {dt.date.today().isoformat()}: "
            + "; ".join(f"{r['benchmark']} {r['median_ms']:.2f} ms" for r in rows)
        ],  # fmt: skip
        "fingerprint": {**fp, **{k: cond[k] for k in ("runtime", "runtime_version", "threads", "optimization")}},
        "notes": "fp32 from onnxruntime kernels; int8 (when present) from LiteRT with XNNPACK, whole-model timing.",
    }
    return validate_spec(data, name), rows


def _litert_rows(threads: int) -> list[dict]:
    try:
        from roofline.profilers.tflite_writer import tflite_kernel

        runner = get_runner("litert", threads=threads)
        runner.conditions()
    except Exception:  # noqa: BLE001 - LiteRT not installed: fp32 from onnxruntime only
        return []
    rows = []
    for precision in ("fp32", "int8"):
        key = f"conv_k3_s1_i128_o128_h56_w56_{precision}"
        data = tflite_kernel(key)
        stats = runner.latency(data, min_repeats=10, max_seconds=3.0).stats
        macs = float(roofline.count(data)["macs"].sum())
        rows.append({"benchmark": f"litert {key}", "measures": "compute", "median_ms": stats.median_ms,
                     "cv": stats.cv, "noisy": stats.noisy, "macs_per_s": macs / (stats.median_ms / 1e3),
                     "bytes_per_s": float("nan")})  # fmt: skip
    return rows
