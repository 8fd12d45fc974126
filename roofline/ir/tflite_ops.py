"""TFLite operators as the ONNX operators with the same arithmetic, so every counting rule, fusion and
roofline applies unchanged (CONV_2D -> Conv, DEPTHWISE_CONV_2D -> Conv with group = channels,
FULLY_CONNECTED -> Gemm, MEAN -> ReduceMean, STABLEHLO_DOT_GENERAL -> Einsum, ...).

``translate(ctx)`` takes one operator (:class:`OpContext`) and returns ``(onnx op type, attributes,
inputs)``. 4-D activations arrive with their shapes in ONNX's NCHW order (``ctx.four_d`` names them),
so an axis attribute is remapped; weights arrive in TFLite's layout (filters OHWI) and a translation
re-lays them into ONNX's (``ctx.tensors`` is the loader's tensor table).

This module is the entry point the loader (``roofline.ir.tflite``) imports; the work is split by seam:

- ``tflite_ops_base``: ``OpContext``, the two registries (:func:`builtin_op` for builtins that need more
  than a name, :data:`SAME` for those that do not; :func:`custom_op` for CUSTOM operators by custom
  code), ``translate`` and the helpers the translations share;
- ``tflite_ops_compute``: convolutions, matrix products, recurrent layers, pooling, reductions,
  normalisation, softmax;
- ``tflite_ops_movement``: data movement and the remaining StableHLO operators;
- ``tflite_ops_custom``: custom codes (mediapipe, detection post-processing) and StableHLO custom calls.

Importing this module imports all three, so every translation is registered. Operators without an ONNX
equivalent keep their TFLite name, ``TFLITE_<BUILTIN>`` or ``TFLITE_CUSTOM:<code>``: those with a rule of
their own (``roofline/ops/tflite.py``: LSTM, SVDF, ...) count, the others (control flow, unknown custom
codes) are reported as unknown by counting.
"""

from __future__ import annotations

# the translation families register themselves on import
from roofline.ir import tflite_ops_compute, tflite_ops_custom, tflite_ops_movement  # noqa: F401
from roofline.ir.tflite_ops_base import (
    ACTIVATIONS,
    CONTROL_FLOW,
    SAME,
    OpContext,
    Translation,
    builtin_op,
    custom_op,
    translate,
)

__all__ = ["OpContext", "Translation", "translate", "builtin_op", "custom_op", "ACTIVATIONS", "SAME", "CONTROL_FLOW"]
