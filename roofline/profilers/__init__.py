"""Measuring: runners (onnxruntime and LiteRT on the host, ``benchmark_model`` on a phone over adb), their
output parsers, and the statistics of repeated timings. Runners touch a runtime; parsers are pure functions
over what runners return. ``build`` makes a resumable LUT on one machine or phone; ``farm`` (with
``farm_phones``: the devices file and the per-phone worker) drives many phones at once, on Ray or threads.

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
