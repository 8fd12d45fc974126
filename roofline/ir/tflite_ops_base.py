"""The machinery of the TFLite -> ONNX operator translation (``roofline.ir.tflite_ops`` is the entry point,
which also imports the translation modules so that they register).

:class:`OpContext` is one TFLite operator as the loader hands it over; ``translate(ctx)`` returns
``(onnx op type, attributes, inputs)``. Two registries, one decorator each: :func:`builtin_op` for builtins
that need more than a name, :func:`custom_op` for CUSTOM operators by custom code. :data:`SAME` maps the
builtins that need only a name (a TFLite-side rename, many builtins to one ONNX op: not a trait of the ONNX
op, so it stays here). The helpers below are shared by ``tflite_ops_compute``, ``tflite_ops_movement`` and
``tflite_ops_custom``: :func:`_axis` / :func:`_dim` remap an axis of a 4-D activation loaded as NCHW,
:func:`_relay` gives a weight ONNX's layout, :func:`_opts` checks the options a translation needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from roofline.errors import ModelLoadError
from roofline.ir import Tensor

__all__ = ["OpContext", "Translation", "translate", "builtin_op", "custom_op", "ACTIVATIONS", "SAME", "CONTROL_FLOW"]

_NCHW = (0, 3, 1, 2)  # NCHW axis i holds NHWC axis _NCHW[i]


@dataclass
class OpContext:
    """One TFLite operator, as the loader hands it to its translation."""

    builtin: str  # BuiltinOperator name ("CONV_2D"), "CUSTOM" for custom operators
    # the builtin options (schema object API: builtinOptions, or builtinOptions2 for StableHLO), or None
    options: object | None
    inputs: list[str | None]  # tensor names, None for an omitted optional input
    outputs: list[str]
    tensors: dict[str, Tensor]  # every tensor of the subgraph; a translation may re-lay a weight
    four_d: set[str]  # activations whose shape was remapped from NHWC to NCHW
    values: dict[str, np.ndarray] = field(default_factory=dict)  # small constants (axes, shapes)
    custom_code: str | None = None  # for CUSTOM operators
    custom_options: bytes | None = None


Translation = Callable[[OpContext], tuple[str, dict, list]]

#: TFLite's fused activation functions (ActivationFunctionType) by code
ACTIVATIONS = {0: None, 1: "Relu", 2: "ReluN1To1", 3: "Relu6", 4: "Tanh", 5: "SignBit"}

#: builtins that subgraph inlining replaces (the loader's job); they keep their TFLITE_ name
CONTROL_FLOW = ("IF", "WHILE", "CALL", "CALL_ONCE", "STABLEHLO_WHILE", "STABLEHLO_CASE", "STABLEHLO_COMPOSITE")

#: TFLite builtin -> ONNX op type, for operators whose arithmetic needs no attribute or input translation
SAME = {
    # element-wise, binary (broadcast inputs read at their own size)
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max", "MINIMUM": "Min", "POW": "Pow",
    "SQUARED_DIFFERENCE": "Sub", "FLOOR_DIV": "Div", "FLOOR_MOD": "Mod", "LESS": "Less", "GREATER": "Greater",
    "GREATER_EQUAL": "GreaterOrEqual", "LESS_EQUAL": "LessOrEqual", "EQUAL": "Equal", "NOT_EQUAL": "Equal",
    "LOGICAL_OR": "Or", "LOGICAL_AND": "And", "SELECT": "Where", "SELECT_V2": "Where", "ATAN2": "Atan",
    "BITWISE_XOR": "BitwiseXor", "RIGHT_SHIFT": "BitShift", "BROADCAST_ARGS": "Max",
    "STABLEHLO_ADD": "Add", "STABLEHLO_SUBTRACT": "Sub", "STABLEHLO_MULTIPLY": "Mul", "STABLEHLO_DIVIDE": "Div",
    "STABLEHLO_MAXIMUM": "Max", "STABLEHLO_MINIMUM": "Min", "STABLEHLO_POWER": "Pow", "STABLEHLO_REMAINDER": "Mod",
    "STABLEHLO_AND": "And", "STABLEHLO_OR": "Or", "STABLEHLO_SELECT": "Where", "STABLEHLO_SHIFT_LEFT": "BitShift",
    # element-wise, unary; activations
    "EXP": "Exp", "SQRT": "Sqrt", "RSQRT": "Sqrt", "ABS": "Abs", "NEG": "Neg", "SQUARE": "Mul", "LOG": "Log",
    "SIN": "Sin", "COS": "Cos", "FLOOR": "Floor", "CEIL": "Ceil", "ROUND": "Round", "SIGN": "Sign",
    "LOGICAL_NOT": "Not", "COMPLEX_ABS": "Abs", "QUANTIZE": "QuantizeLinear", "DEQUANTIZE": "DequantizeLinear",
    "FAKE_QUANT": "QuantizeLinear", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "RELU": "Relu", "RELU6": "Clip",
    "RELU_N1_TO_1": "Clip", "RELU_0_TO_1": "Clip", "HARD_SWISH": "HardSwish", "LEAKY_RELU": "LeakyRelu",
    "PRELU": "PRelu", "GELU": "Gelu", "ELU": "Elu",
    "STABLEHLO_ABS": "Abs", "STABLEHLO_COSINE": "Cos", "STABLEHLO_EXPONENTIAL": "Exp", "STABLEHLO_FLOOR": "Floor",
    "STABLEHLO_LOG": "Log", "STABLEHLO_NEGATE": "Neg", "STABLEHLO_RSQRT": "Sqrt", "STABLEHLO_TANH": "Tanh",
    "STABLEHLO_LOGISTIC": "Sigmoid", "STABLEHLO_CBRT": "Pow",
    # data movement (metadata inputs such as shapes, pads, sizes are not read by these rules)
    "RESHAPE": "Reshape", "STABLEHLO_RESHAPE": "Reshape", "EXPAND_DIMS": "Unsqueeze", "PAD": "Pad", "PADV2": "Pad",
    "MIRROR_PAD": "Pad", "SLICE": "Slice", "STRIDED_SLICE": "Slice", "STABLEHLO_SLICE": "Slice", "TILE": "Tile",
    "CAST": "Cast", "STABLEHLO_CONVERT": "Cast", "BITCAST": "Cast", "REAL": "Cast", "IMAG": "Cast",
    "BROADCAST_TO": "Expand", "SPLIT_V": "Split", "CONCAT_EMBEDDINGS": "Concat", "SHAPE": "Shape", "RANK": "Size",
    "ZEROS_LIKE": "ConstantOfShape", "FILL": "ConstantOfShape", "RANGE": "Range", "HASHTABLE_SIZE": "Size",
    "HASHTABLE": "Constant", "VAR_HANDLE": "Constant", "GATHER_ND": "GatherND", "UNIQUE": "Unique",
    "NON_MAX_SUPPRESSION_V4": "NonMaxSuppression", "NON_MAX_SUPPRESSION_V5": "NonMaxSuppression",
    "REVERSE_SEQUENCE": "ReverseSequence", "STABLEHLO_SCATTER": "ScatterND", "RESIZE_BILINEAR": "Resize",
    "RESIZE_NEAREST_NEIGHBOR": "Resize", "ADD_N": "Sum", "TOPK_V2": "TopK",
    # TFLite-specific rules (roofline/ops/tflite.py)
    "LSH_PROJECTION": "TFLITE_LSH_PROJECTION", "SKIP_GRAM": "TFLITE_SKIP_GRAM", "BUCKETIZE": "TFLITE_BUCKETIZE",
    "DENSIFY": "TFLITE_DENSIFY", "EMBEDDING_LOOKUP_SPARSE": "TFLITE_EMBEDDING_LOOKUP_SPARSE",
    "RFFT2D": "TFLITE_RFFT2D", "READ_VARIABLE": "TFLITE_READ_VARIABLE", "ASSIGN_VARIABLE": "TFLITE_ASSIGN_VARIABLE",
}  # fmt: skip

_BUILTIN: dict[str, Translation] = {}
_CUSTOM: dict[str, Translation] = {}


def _registrar(table: dict[str, Translation], what: str):
    def register(*names: str) -> Callable[[Translation], Translation]:
        def deco(fn: Translation) -> Translation:
            for name in names:
                if name in table or (table is _BUILTIN and name in SAME):
                    raise ValueError(f"{what} {name!r} already has a translation")
                table[name] = fn
            return fn

        return deco

    return register


#: ``@builtin_op("CONV_2D")`` registers the translation of builtins that need attributes or re-laid inputs
builtin_op = _registrar(_BUILTIN, "TFLite builtin")
#: ``@custom_op("MaxUnpooling2D")`` registers the translation of a CUSTOM operator by its custom code
custom_op = _registrar(_CUSTOM, "TFLite custom op")


def translate(ctx: OpContext) -> tuple[str, dict, list[str | None]]:
    """(ONNX op type, attributes, inputs) of one TFLite operator."""
    if ctx.builtin == "CUSTOM":
        return _custom(ctx, ctx.custom_code)
    if ctx.builtin in _BUILTIN:
        return _BUILTIN[ctx.builtin](ctx)
    if ctx.builtin in SAME:
        return SAME[ctx.builtin], {}, list(ctx.inputs)
    return f"TFLITE_{ctx.builtin}", {}, list(ctx.inputs)


def _custom(ctx: OpContext, code: str | bytes | None) -> tuple[str, dict, list[str | None]]:
    code = code.decode() if isinstance(code, bytes) else code
    if code in _CUSTOM:
        return _CUSTOM[code](ctx)
    return f"TFLITE_CUSTOM:{code}" if code else "TFLITE_CUSTOM", {}, list(ctx.inputs)


# -- helpers ----------------------------------------------------------------------------------------------


def _axis(a: int, rank: int, is_4d: bool) -> int:
    a = a % rank if rank else a
    return _NCHW.index(a) if is_4d else a


def _opts(ctx: OpContext, *required: str):
    """The operator's options (builtinOptions, or builtinOptions2 for StableHLO), with ``required`` fields."""
    opts = ctx.options
    if required and (opts is None or any(not hasattr(opts, f) for f in required)):
        raise ModelLoadError(
            f"TFLite {ctx.builtin} operator writing {ctx.outputs[0] if ctx.outputs else '?'!r} has no options "
            f"(builtinOptions / builtinOptions2 with {', '.join(required)}); its arithmetic depends on them"
        )
    return opts


def _shape(ctx: OpContext, name: str) -> tuple[int, ...]:
    """A tensor's shape in TFLite's own dimension order (4-D activations were remapped to NCHW)."""
    s = ctx.tensors[name].shape or ()
    if name in ctx.four_d and len(s) == 4:
        nhwc = [0] * 4
        for i, a in enumerate(_NCHW):
            nhwc[a] = s[i]
        return tuple(nhwc)
    return tuple(s)


def _dim(ctx: OpContext, name: str, a: int) -> int:
    """Where TFLite axis ``a`` of tensor ``name`` sits in the loaded shape."""
    t = ctx.tensors[name]
    return _axis(int(a), len(t.shape or ()), name in ctx.four_d)


def _term(ctx: OpContext, name: str, letters: str) -> str:
    """Einsum letters (one per TFLite axis) reordered to the loaded shape's axes."""
    return "".join(letters[a] for a in _NCHW) if name in ctx.four_d and len(letters) == 4 else letters


def _relay(ctx: OpContext, name: str, shape: tuple[int, ...]) -> None:
    """Give a weight its ONNX layout (same elements; only the shape the rules read changes)."""
    w = ctx.tensors[name]
    ctx.tensors[name] = Tensor(w.name, tuple(int(d) for d in shape), w.elem_type, w.const)


def _value(ctx: OpContext, i: int):
    name = ctx.inputs[i] if i < len(ctx.inputs) else None
    return None if name is None else ctx.values.get(name)


def _ints(v) -> list[int]:
    """An options vector (a list, a numpy array or None) as ints: never truth-test an array."""
    return [] if v is None else [int(d) for d in np.ravel(v)]


def _pad(padding: int) -> str:
    return "SAME_UPPER" if padding == 0 else "VALID"  # TFLite Padding: SAME = 0, VALID = 1
