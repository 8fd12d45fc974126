"""The entry point for every format: ``load_graph`` takes a model file, its bytes, an ``onnx.ModelProto`` or
a built-in network's name, reads it once, tells TFLite from ONNX by the file identifier and hands it to
``roofline.ir.onnx`` or ``roofline.ir.tflite``. ``resolve_model`` is the one place a name becomes a model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx

from roofline.errors import ModelLoadError, did_you_mean
from roofline.ir import Graph, ModelLike
from roofline.ir.checks import check_graph
from roofline.ir.litert import is_tflite
from roofline.ir.onnx import load_onnx

__all__ = ["load_graph", "resolve_model"]

_SUFFIXES = (".onnx", ".tflite")


def resolve_model(model: ModelLike) -> tuple[ModelLike, str]:
    """``model`` as the loaders take it, and the name to show for it.

    A built-in network's name (``"mobilenet_v2"``) becomes its built ONNX model; a path, bytes or ModelProto
    stays as it is, named by its file name without ``.onnx``/``.tflite`` (a ModelProto by its graph's name).
    A string that is no existing file, no built-in network and no path (no directory, no model suffix) is a
    ModelLoadError naming the close built-in networks.
    """
    if isinstance(model, str) and not Path(model).exists() and not model.endswith(_SUFFIXES):
        from roofline import zoo  # the zoo builds through onnx.helper only: no import circle

        if model in zoo.list_models():
            return zoo.build(model), model
        if "/" not in model and "\\" not in model:
            raise ModelLoadError(
                f"model {model!r} is neither a file nor a built-in network{did_you_mean(model, zoo.list_models())}; "
                f"built-in: {', '.join(zoo.list_models())}"
            )
    if isinstance(model, (str, os.PathLike)):
        name = Path(model).name
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        return model, name
    return model, getattr(getattr(model, "graph", None), "name", None) or "model"


def load_graph(model: ModelLike, input_shapes: Mapping[str, Sequence[int] | int] | None = None) -> Graph:
    """Load ``model`` (path, bytes, ModelProto or a built-in network's name), fix its input shapes and
    infer every other shape.

    External data is never read: counting needs only the shapes and element types of initializers,
    which the model file holds even when the weights live elsewhere. A TFLite flatbuffer (``.tflite``
    path or bytes) loads through ``roofline.ir.tflite``.
    """
    model, _ = resolve_model(model)
    if isinstance(model, onnx.ModelProto):
        return load_onnx(model, input_shapes)
    if isinstance(model, (bytes, bytearray)):
        data, path = bytes(model), None
    elif isinstance(model, (str, os.PathLike)):
        data, path = _read(Path(model)), str(model)
    else:
        raise ModelLoadError(
            f"the 'model' parameter must be a path, bytes or onnx.ModelProto, got {type(model).__name__}"
        )
    if not is_tflite(data):
        return load_onnx(data, input_shapes, path)
    from roofline.ir.tflite import load_tflite  # TFLite is opt-in: its reader loads on first use

    graph = load_tflite(data, path or "the given bytes", input_shapes=input_shapes)
    check_graph(graph)
    return graph


def _read(path: Path) -> bytes:
    if not path.is_file():
        hint = did_you_mean(path.name, [p.name for p in path.parent.glob("*.onnx")]) if path.parent.is_dir() else ""
        raise ModelLoadError(f"model file {str(path)!r} does not exist{hint}")
    return path.read_bytes()
