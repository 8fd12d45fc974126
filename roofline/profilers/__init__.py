"""Measuring: runners (onnxruntime and LiteRT on the host, ``benchmark_model`` on a phone over adb), their
output parsers, and the statistics of repeated timings. Runners touch a runtime; parsers are pure functions
over what runners return.

One registry maps a backend name to its runner class (``roofline.profilers.runners.base``); built-in
backends are imported when first asked for, so importing this package loads no runtime.
"""

from __future__ import annotations

from roofline.profilers.runners.base import (
    RUNNERS,
    Measurement,
    Runner,
    get_runner,
    register_runner,
    runner_names,
    runner_options,
)

__all__ = ["register_runner", "get_runner", "runner_names", "runner_options", "RUNNERS", "Runner", "Measurement"]
