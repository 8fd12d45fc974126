"""The onnxruntime host runner: whole-model latency and per-node profiling traces."""

from __future__ import annotations

import json
import os
import platform
import tempfile

import numpy as np
import onnx

from roofline.errors import require
from roofline.profilers.runners.base import Measurement, register_runner
from roofline.profilers.stats import measure

__all__ = ["OrtRunner", "Measurement", "OPT_LEVELS"]  # Measurement: re-exported from runners.base

OPT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
              "all": "ORT_ENABLE_ALL"}  # fmt: skip
_NP = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(bool)": np.bool_,
}  # fmt: skip


def _after_warmup(events: list[dict], warmup: int) -> list[dict]:
    """The events of the model runs after the first ``warmup``."""
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    cut = starts[warmup] if len(starts) > warmup else 0
    return [e for e in events if e.get("ts", 0) >= cut]


@register_runner("onnxruntime")
class OrtRunner:
    """Runs ONNX models with onnxruntime on the host CPU.

    Args:
        threads: intra-op threads (1 = the single-core latency phones are usually quoted at).
        optimization: graph optimisation level, one of ``OPT_LEVELS`` ("all" fuses and re-lays out).
        execution_mode: "sequential" or "parallel".
    """

    model_format, target = "onnx", "host"

    def __init__(self, threads: int = 1, optimization: str = "all", execution_mode: str = "sequential"):
        from roofline.errors import check_choice, check_threads

        check_choice(optimization, OPT_LEVELS, "optimization")
        check_choice(execution_mode, ("sequential", "parallel"), "execution_mode")
        check_threads(threads)
        self.threads, self.optimization, self.execution_mode = threads, optimization, execution_mode

    def _session(self, model, profile_prefix: str | None = None):
        ort = require("onnxruntime", "the onnxruntime runner")

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[self.optimization])
        so.execution_mode = getattr(ort.ExecutionMode, f"ORT_{self.execution_mode.upper()}")
        so.log_severity_level = 3
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

    @staticmethod
    def _inputs(session, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        feeds = {}
        for i in session.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
            dtype = _NP.get(i.type, np.float32)
            feeds[i.name] = (
                rng.standard_normal(shape).astype(dtype)
                if dtype in (np.float32, np.float16)
                else np.zeros(shape, dtype)
            )
        return feeds

    def conditions(self) -> dict:
        ort = require("onnxruntime", "the onnxruntime runner")

        return {
            "runtime": "onnxruntime",
            "runtime_version": ort.__version__,
            "threads": self.threads,
            "optimization": self.optimization,
            "execution_mode": self.execution_mode,
            "provider": "CPUExecutionProvider",
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        }

    def latency(self, model, **measure_options) -> Measurement:
        """Whole-model latency (warm-up, then repeats until the median is stable)."""
        session = self._session(model)
        feeds = self._inputs(session)
        stats = measure(lambda: session.run(None, feeds), **measure_options)
        return Measurement(stats, self.conditions())

    def paired(self, model, runs: int = 50, warmup: int = 10) -> tuple[np.ndarray, list[dict]]:
        """Plain run times (seconds) and a profiling trace of the same model, runs interleaved so that
        both see the same machine: (plain times of the timed runs, trace events of the timed runs)."""
        import time

        with tempfile.TemporaryDirectory() as tmp:
            plain, traced = self._session(model), self._session(model, os.path.join(tmp, "ort"))
            feeds = self._inputs(plain)
            times = []
            for _ in range(warmup + runs):
                t = time.perf_counter()
                plain.run(None, feeds)
                times.append(time.perf_counter() - t)
                traced.run(None, feeds)
            with open(traced.end_profiling(), encoding="utf-8") as f:
                events = json.load(f)
        return np.array(times[warmup:]), _after_warmup(events, warmup)

    def close(self) -> None:
        """Nothing to release (sessions live inside each call)."""

    def trace(self, model, runs: int = 20, warmup: int = 5, flush_bytes: int = 0) -> list[dict]:
        """onnxruntime's profiling trace (Chrome-trace events) of ``runs`` runs after ``warmup``.

        ``flush_bytes`` > 0 writes that many bytes before each run (evicting the caches), then re-reads
        the inputs: the layer meets its weights cold and its input warm, as inside a network.
        """
        flusher = np.zeros(flush_bytes // 8) if flush_bytes else None
        with tempfile.TemporaryDirectory() as tmp:
            session = self._session(model, os.path.join(tmp, "ort"))
            feeds = self._inputs(session)
            for _ in range(warmup + runs):
                if flusher is not None:
                    flusher += 1.0
                    for value in feeds.values():
                        value.sum()
                session.run(None, feeds)
            with open(session.end_profiling(), encoding="utf-8") as f:
                events = json.load(f)
        return _after_warmup(events, warmup)
