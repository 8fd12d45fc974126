"""What every measuring backend provides (``Runner``), what it returns (``Measurement``), and the one
registry that maps a backend's name to its runner class.

A backend is one module under ``roofline.profilers.runners`` whose class is decorated with
``@register_runner("name")`` and listed once in ``BUILTIN_RUNNERS``. The registry imports a built-in
module only when its runner is asked for (``get_runner``, ``RUNNERS``), so importing
``roofline.profilers`` loads no runtime.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from roofline.errors import InvalidParameterError, did_you_mean
from roofline.profilers.stats import Stats

__all__ = ["Runner", "Measurement", "register_runner", "get_runner", "runner_names", "runner_options", "RUNNERS",
           "BUILTIN_RUNNERS", "MODEL_FORMATS", "TARGETS"]  # fmt: skip

#: built-in backend name -> the module that registers it (imported on first use)
BUILTIN_RUNNERS = {
    "onnxruntime": "roofline.profilers.runners.onnxruntime",
    "litert": "roofline.profilers.runners.litert",
    "adb": "roofline.profilers.runners.adb",
}
#: what a runner's ``latency`` takes: ONNX models (file, ``ModelProto``) or TFLite flatbuffers (file, bytes)
MODEL_FORMATS = ("onnx", "tflite")
#: where a runner measures: this machine, or a device it connects to
TARGETS = ("host", "device")


@dataclass(frozen=True)
class Measurement:
    """A timing and the conditions it was taken under (``Runner.conditions()``, plus what the run saw)."""

    stats: Stats
    conditions: dict = field(default_factory=dict)


@runtime_checkable
class Runner(Protocol):
    """A measuring backend: times whole models in one runtime and says under which conditions.

    Class attributes: ``name`` (its registry key, set by ``register_runner``), ``model_format`` (one of
    ``MODEL_FORMATS``: what ``latency`` takes) and ``target`` (one of ``TARGETS``). Backends may offer
    more (onnxruntime: ``trace``/``paired`` for kernel timing; adb: ``profile`` for per-op tables); the
    measuring code (``build_lut``, ``validate``, ``Drift``) relies on this surface only.
    """

    name: ClassVar[str]
    model_format: ClassVar[str]
    target: ClassVar[str]

    def conditions(self) -> dict:
        """What the timings depend on: at least ``runtime`` (and its version where known) and ``threads``."""
        ...

    def latency(self, model, *, min_repeats: int = ..., warmup: int = ..., max_seconds: float = ...) -> Measurement:
        """Whole-model latency of ``model``: ``warmup`` runs, then at least ``min_repeats`` timed runs
        within about ``max_seconds``."""
        ...

    def close(self) -> None:
        """Release what the runner holds (a device connection); a no-op for host runners."""
        ...


class _Registry(Mapping):
    """Backend name -> runner class; built-in backends are imported on first lookup of their name, all of
    them on iteration."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}

    def _load(self, name: str) -> None:
        if name not in self._classes and name in BUILTIN_RUNNERS:
            importlib.import_module(BUILTIN_RUNNERS[name])

    def _load_all(self) -> None:
        for name in BUILTIN_RUNNERS:
            self._load(name)

    def __getitem__(self, name: str) -> type:
        self._load(name)
        return self._classes[name]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (name in self._classes or name in BUILTIN_RUNNERS)

    def __iter__(self) -> Iterator[str]:
        self._load_all()
        return iter(dict(sorted(self._classes.items())))

    def __len__(self) -> int:
        self._load_all()
        return len(self._classes)

    def known(self) -> list[str]:
        """Every name, without importing anything."""
        return sorted({*self._classes, *BUILTIN_RUNNERS})

    def __repr__(self) -> str:
        return f"RUNNERS({self.known()})"


#: the registry: backend name -> runner class (read-only; add with ``register_runner``)
RUNNERS = _Registry()


def register_runner(name: str):
    """Class decorator: register a ``Runner`` under ``name`` (sets ``cls.name``). A name taken, or a
    built-in name claimed by another module than the one ``BUILTIN_RUNNERS`` lists, is refused."""

    def deco(cls):
        taken = name in RUNNERS._classes
        builtin = BUILTIN_RUNNERS.get(name)
        if taken or (builtin is not None and cls.__module__ != builtin):
            where = RUNNERS._classes[name].__module__ if taken else builtin
            raise InvalidParameterError(f"runner {name!r} is already registered (by {where})")
        model_format, target = getattr(cls, "model_format", None), getattr(cls, "target", None)
        if model_format not in MODEL_FORMATS or target not in TARGETS:
            raise InvalidParameterError(f"runner {name!r} ({cls.__qualname__}) must declare model_format, one of "
                                        f"{list(MODEL_FORMATS)}, and target, one of {list(TARGETS)}; got "
                                        f"{model_format!r} and {target!r}")  # fmt: skip
        cls.name = name
        RUNNERS._classes[name] = cls
        return cls

    return deco


def _check_name(name) -> None:
    if not (isinstance(name, str) and name in RUNNERS):
        known = RUNNERS.known()
        raise InvalidParameterError(f"unknown runner {name!r}{did_you_mean(str(name), known)}; known: {known}")


def get_runner(name: str, **options) -> Runner:
    """A runner of the backend ``name`` (any of ``RUNNERS``), built with ``options``."""
    _check_name(name)
    return RUNNERS[name](**options)


def runner_names(target: str | None = None, model_format: str | None = None) -> list[str]:
    """Names of the registered runners, those measuring on ``target`` and taking ``model_format`` if given."""
    return [n for n, cls in RUNNERS.items()
            if target in (None, cls.target) and model_format in (None, cls.model_format)]  # fmt: skip


def runner_options(name: str, **candidates) -> dict:
    """The ``candidates`` that the runner ``name`` takes (by its constructor's parameters): lets a caller
    offer every setting it has (threads, xnnpack, ...) to whichever backend is chosen."""
    _check_name(name)
    parameters = inspect.signature(RUNNERS[name]).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return dict(candidates)
    return {k: v for k, v in candidates.items() if k in parameters}
