"""The LiteRT host runner: whole-model latency of ``.tflite`` models, XNNPACK on or off, thread count.

Uses ``ai-edge-litert``; ``tflite-runtime`` is the fallback where it imports (it needs numpy < 2).
"""

from __future__ import annotations

import os
import platform

import numpy as np

from roofline.errors import InvalidParameterError, check_threads
from roofline.ir import litert
from roofline.profilers.runners.base import Measurement, register_runner
from roofline.profilers.stats import measure

__all__ = ["LiteRtRunner"]


@register_runner("litert")
class LiteRtRunner:
    """Runs TFLite models with LiteRT on the host CPU.

    Args:
        threads: interpreter threads (1 = the single-core latency phones are usually quoted at).
        xnnpack: apply the XNNPACK delegate (LiteRT's default CPU path) or run the builtin kernels.
    """

    model_format, target = "tflite", "host"

    def __init__(self, threads: int = 1, xnnpack: bool = True):
        check_threads(threads)
        self.threads, self.xnnpack = threads, bool(xnnpack)

    def _interpreter(self, model):
        litert.interpreter_module("the LiteRT runner")  # a missing package is its own error, not a load failure
        try:
            it = litert.interpreter(model, threads=self.threads, xnnpack=self.xnnpack, purpose="the LiteRT runner")
            it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidParameterError(f"LiteRT cannot load the model: {first}") from None
        rng = np.random.default_rng(0)
        for d in it.get_input_details():
            dtype = np.dtype(d["dtype"])
            if dtype.kind == "f":
                value = rng.standard_normal(d["shape"]).astype(dtype)
            else:
                info = np.iinfo(dtype)
                value = rng.integers(max(info.min, -64), min(info.max, 64), d["shape"], endpoint=True).astype(dtype)
            it.set_tensor(d["index"], value)
        return it

    def conditions(self) -> dict:
        _, package = litert.interpreter_module("the LiteRT runner")
        from importlib.metadata import PackageNotFoundError, version

        try:
            runtime_version = version(package)
        except PackageNotFoundError:
            runtime_version = "unknown"
        return {
            "runtime": "litert",
            "runtime_package": package,
            "runtime_version": runtime_version,
            "threads": self.threads,
            "xnnpack": self.xnnpack,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        }

    def latency(self, model, **measure_options) -> Measurement:
        """Whole-model latency (warm-up, then repeats until the median is stable)."""
        it = self._interpreter(model)
        stats = measure(it.invoke, **measure_options)
        return Measurement(stats, self.conditions())

    def close(self) -> None:
        """Nothing to release (an interpreter lives inside each call)."""
