"""TFLite operators as the ONNX operators with the same arithmetic, so every counting rule, fusion and
roofline applies unchanged (CONV_2D -> Conv, DEPTHWISE_CONV_2D -> Conv with group = channels,
FULLY_CONNECTED -> Gemm, MEAN -> ReduceMean, ...).

``translate(ctx)`` takes one operator (:class:`OpContext`) and returns ``(onnx op type, attributes,
inputs)``. 4-D activations arrive with their shapes in ONNX's NCHW order (``ctx.four_d`` names them),
so an axis attribute is remapped with :func:`_axis`; weights arrive in TFLite's layout (filters OHWI)
and a translation re-lays them into ONNX's (``ctx.tensors`` is the loader's tensor table). An operator
without an equivalent keeps its TFLite name (``TFLITE_<NAME>``), which counting reports as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roofline.graph import Tensor

__all__ = ["OpContext", "translate", "ACTIVATIONS"]

_NCHW = (0, 3, 1, 2)  # NCHW axis i holds NHWC axis _NCHW[i]


@dataclass
class OpContext:
    """One TFLite operator, as the loader hands it to its translation."""

    builtin: str  # BuiltinOperator name ("CONV_2D"), "CUSTOM" for custom operators
    options: object | None  # the builtin options (schema object API), None when the operator has none
    inputs: list[str | None]  # tensor names, None for an omitted optional input
    outputs: list[str]
    tensors: dict[str, Tensor]  # every tensor of the subgraph; a translation may re-lay a weight
    four_d: set[str]  # activations whose shape was remapped from NHWC to NCHW
    values: dict[str, np.ndarray] = field(default_factory=dict)  # small constants (axes, shapes)
    custom_code: str | None = None  # for CUSTOM operators
    custom_options: bytes | None = None


#: TFLite's fused activation functions (ActivationFunctionType) by code
ACTIVATIONS = {0: None, 1: "Relu", 2: "ReluN1To1", 3: "Relu6", 4: "Tanh", 5: "SignBit"}
# TFLite builtin -> ONNX op type, for operators whose semantics need no attribute translation
_SAME = {
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max", "MINIMUM": "Min", "POW": "Pow",
    "SQUARED_DIFFERENCE": "Sub", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "RELU": "Relu", "RELU6": "Clip",
    "RELU_N1_TO_1": "Clip", "HARD_SWISH": "HardSwish", "LEAKY_RELU": "LeakyRelu", "PRELU": "PRelu", "GELU": "Gelu",
    "EXP": "Exp", "SQRT": "Sqrt", "RSQRT": "Sqrt", "ABS": "Abs", "NEG": "Neg", "SQUARE": "Mul", "ELU": "Elu",
    "RESHAPE": "Reshape", "SQUEEZE": "Squeeze", "EXPAND_DIMS": "Unsqueeze", "QUANTIZE": "QuantizeLinear",
    "DEQUANTIZE": "DequantizeLinear", "PAD": "Pad", "PADV2": "Pad", "MIRROR_PAD": "Pad", "TRANSPOSE": "Transpose",
    "BATCH_MATMUL": "MatMul", "RESIZE_BILINEAR": "Resize", "RESIZE_NEAREST_NEIGHBOR": "Resize", "SLICE": "Slice",
    "STRIDED_SLICE": "Slice", "GATHER": "Gather", "CAST": "Cast", "SPLIT": "Split", "SPLIT_V": "Split",
    "PACK": "Concat", "TILE": "Tile", "SOFTMAX": "Softmax", "LOG_SOFTMAX": "LogSoftmax", "ADD_N": "Sum",
    "DEPTH_TO_SPACE": "DepthToSpace", "SPACE_TO_DEPTH": "SpaceToDepth", "BROADCAST_TO": "Expand",
    "ARG_MAX": "ArgMax", "ARG_MIN": "ArgMin",
}  # fmt: skip
_REDUCE = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax", "REDUCE_MIN": "ReduceMin",
           "REDUCE_PROD": "ReduceProd"}  # fmt: skip


def _axis(a: int, rank: int, is_4d: bool) -> int:
    a = a % rank if rank else a
    return _NCHW.index(a) if is_4d else a


def translate(ctx: OpContext) -> tuple[str, dict, list[str | None]]:
    """(ONNX op type, attributes, inputs) of one TFLite operator."""
    builtin, opts, ins, tensors, four_d, values = (
        ctx.builtin, ctx.options, ctx.inputs, ctx.tensors, ctx.four_d, ctx.values
    )  # fmt: skip
    x = ins[0] if ins else None
    if builtin in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        w = tensors[ins[1]]
        o, kh, kw, i = w.shape  # TFLite filters: OHWI (depthwise: 1 x kh x kw x C*multiplier)
        cin = tensors[x].shape[1]
        depthwise = builtin == "DEPTHWISE_CONV_2D"
        shape = (i, 1, kh, kw) if depthwise else (o, i, kh, kw)
        tensors[ins[1]] = Tensor(w.name, shape, w.elem_type, True)
        group = cin if depthwise else cin // i
        attrs = {"kernel_shape": [kh, kw], "strides": [opts.strideH, opts.strideW], "group": group,
                 "dilations": [opts.dilationHFactor or 1, opts.dilationWFactor or 1],
                 "auto_pad": "SAME_UPPER" if opts.padding == 0 else "VALID"}  # fmt: skip
        return "Conv", attrs, ins
    if builtin == "TRANSPOSE_CONV":  # inputs: output shape, filter (OHWI), input, bias
        w = tensors[ins[1]]
        o, kh, kw, i = w.shape
        tensors[ins[1]] = Tensor(w.name, (i, o, kh, kw), w.elem_type, True)
        attrs = {"kernel_shape": [kh, kw], "strides": [opts.strideH, opts.strideW]}
        return "ConvTranspose", attrs, [ins[2], ins[1], *(ins[3:4] if len(ins) > 3 else [])]
    if builtin == "FULLY_CONNECTED":
        t = tensors[x]
        k = tensors[ins[1]].shape[-1]
        flat = f"{x}:as_{t.numel // k}x{k}"  # TFLite flattens the input to (rows, K)
        tensors.setdefault(flat, Tensor(flat, (t.numel // k, k), t.elem_type, t.const))
        return "Gemm", {"transB": 1}, [flat, *ins[1:]]
    if builtin in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
        attrs = {"kernel_shape": [opts.filterHeight, opts.filterWidth], "strides": [opts.strideH, opts.strideW],
                 "auto_pad": "SAME_UPPER" if opts.padding == 0 else "VALID"}  # fmt: skip
        return {"MAX_POOL_2D": "MaxPool"}.get(builtin, "AveragePool"), attrs, ins
    if builtin in _REDUCE:
        rank = len(tensors[x].shape)
        axes = values.get(ins[1]) if len(ins) > 1 else None
        attrs = {"keepdims": int(bool(getattr(opts, "keepDims", False)))}
        if axes is not None:
            attrs["axes"] = sorted(_axis(int(a), rank, x in four_d) for a in np.atleast_1d(axes))
        return _REDUCE[builtin], attrs, ins[:1]
    if builtin == "CONCATENATION":
        rank = len(tensors[ins[0]].shape)
        return "Concat", {"axis": _axis(opts.axis, rank, ins[0] in four_d)}, ins
    if builtin in _SAME:
        return _SAME[builtin], {}, ins
    return f"TFLITE_{builtin}", {}, ins
