"""Element sizes of the precisions that counting and prediction talk about."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

__all__ = ["PRECISION_BYTES", "precision_bytes", "onnx_itemsize", "onnx_is_float"]

#: bytes per element of each precision a device spec or a count may name
PRECISION_BYTES: dict[str, float] = {"int4": 0.5, "int8": 1.0, "fp16": 2.0, "bf16": 2.0, "fp32": 4.0}

_FLOAT_TYPES = {
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.BFLOAT16,
    TensorProto.DOUBLE,
}
for _name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1"):
    if hasattr(TensorProto, _name):
        _FLOAT_TYPES.add(getattr(TensorProto, _name))

_SUB_BYTE = {getattr(TensorProto, n): 0.5 for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, n)}


def precision_bytes(precision: str, parameter: str = "precision") -> float:
    """Bytes per element of ``precision`` ("int8", "fp16", ...), or a clear error."""
    from roofline.errors import InvalidParameterError, did_you_mean

    try:
        return PRECISION_BYTES[precision]
    except KeyError:
        raise InvalidParameterError(
            f"the {parameter!r} parameter must be one of {sorted(PRECISION_BYTES)} or None, got {precision!r}"
            + did_you_mean(str(precision), PRECISION_BYTES)
        ) from None


def onnx_itemsize(elem_type: int) -> float:
    """Bytes per element of an ONNX tensor element type (0 for unknown/undefined)."""
    if elem_type in _SUB_BYTE:
        return _SUB_BYTE[elem_type]
    if elem_type in (TensorProto.UNDEFINED, TensorProto.STRING):
        return 0.0
    return float(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)


def onnx_is_float(elem_type: int) -> bool:
    """True for floating-point element types (the ones a precision override re-prices)."""
    return elem_type in _FLOAT_TYPES
