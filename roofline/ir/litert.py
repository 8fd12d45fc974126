"""Where roofline meets LiteRT and the TFLite format: the file identifier that tells a flatbuffer from an
ONNX protobuf, the flatbuffer schema bindings that ``ai-edge-litert`` ships (read and write ``.tflite``
without TensorFlow), and a LiteRT interpreter (``ai-edge-litert``, else ``tflite-runtime``).

The packages import on first use: importing this module costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from roofline.errors import InvalidParameterError, ShapeError, require

__all__ = ["is_tflite", "schema", "interpreter_module", "interpreter", "resized_shapes"]

_WHY = "a dependency of roofline missing here: pip install ai-edge-litert (or tflite-runtime, numpy < 2)"


def is_tflite(data: bytes) -> bool:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at bytes 4-8."""
    return len(data) >= 8 and bytes(data[4:8]) == b"TFL3"


def schema():
    """The TFLite flatbuffer schema (``ai_edge_litert.schema_py_generated``), or one line saying how to get it."""
    return require("ai_edge_litert.schema_py_generated", "reading or writing .tflite")


def interpreter_module(purpose: str = "running a .tflite model"):
    """(LiteRT's ``interpreter`` module, the package it comes from): ``ai-edge-litert``, else ``tflite-runtime``."""
    try:
        from ai_edge_litert import interpreter as module

        return module, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as module  # the fallback

        return module, "tflite-runtime"
    except ImportError:
        raise InvalidParameterError(f"{purpose} needs ai-edge-litert ({_WHY})") from None


def interpreter(model: bytes | str | os.PathLike, threads: int | None = None, xnnpack: bool = True,
                purpose: str = "running a .tflite model"):  # fmt: skip
    """A LiteRT interpreter of ``model`` (bytes or a path), its tensors not yet allocated.

    Args:
        threads: interpreter threads; None leaves LiteRT's default.
        xnnpack: apply the default delegates (XNNPACK, LiteRT's CPU path) or only the builtin kernels.
        purpose: what needs LiteRT, for the message when no LiteRT package imports.

    LiteRT's own errors (ValueError, RuntimeError on a model it cannot read) pass through: callers say
    what failed in their terms.
    """
    module, _ = interpreter_module(purpose)
    data = Path(model).read_bytes() if isinstance(model, (str, os.PathLike)) else bytes(model)
    resolver = module.OpResolverType
    kind = resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    options = {} if threads is None else {"num_threads": threads}
    return module.Interpreter(model_content=data, experimental_op_resolver_type=kind, **options)


def resized_shapes(
    data: bytes, shapes: dict[int, tuple[int, ...]], count: int, where: str
) -> dict[int, tuple[int, ...]]:
    """The shapes of tensors 0 to ``count`` - 1 of the primary subgraph after LiteRT resizes the inputs
    ``shapes`` (tensor index -> shape) and propagates them (its own shape inference); a tensor it cannot
    describe (a resource or variant) is left out. ``where`` names the model in the ShapeError of a resize
    LiteRT refuses."""
    interpreter_module("resizing a .tflite model's inputs")  # a missing package is no ShapeError
    try:
        interp = interpreter(data, xnnpack=False)
        for i, shape in shapes.items():
            interp.resize_tensor_input(i, list(shape), strict=False)
        interp.allocate_tensors()
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ShapeError(
            f"{where}: LiteRT could not propagate the input shapes {list(shapes.values())}: {first}"
        ) from None
    out = {}
    for i in range(count):
        try:
            d = interp._get_tensor_details(i, 0)  # noqa: SLF001 - one at a time: a tensor it cannot describe
        except (ValueError, TypeError):  # (a resource or variant) keeps its stored shape
            continue
        out[i] = tuple(int(x) for x in d["shape"])
    return out
