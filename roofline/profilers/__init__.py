"""Measuring: host runners (onnxruntime, LiteRT), their output parsers, and the statistics
of repeated timings. Runners touch a runtime; parsers are pure functions over what runners return.

One registry maps a backend name to its runner class.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["register_runner", "get_runner", "RUNNERS"]

RUNNERS: dict[str, Callable] = {}


def register_runner(name: str):
    def deco(cls):
        if name in RUNNERS:
            raise ValueError(f"runner {name!r} is already registered")
        RUNNERS[name] = cls
        return cls

    return deco


def get_runner(name: str, **options):
    from roofline.errors import InvalidParameterError, did_you_mean

    if name not in RUNNERS:
        raise InvalidParameterError(f"unknown runner {name!r}{did_you_mean(name, RUNNERS)}; known: {sorted(RUNNERS)}")
    return RUNNERS[name](**options)


from roofline.profilers.runners import litert, onnxruntime  # noqa: E402,F401  (register "litert", "onnxruntime")
