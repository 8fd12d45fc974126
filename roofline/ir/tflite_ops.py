"""TFLite operators as the ONNX operators with the same arithmetic, so every counting rule, fusion and
roofline applies unchanged (CONV_2D -> Conv, DEPTHWISE_CONV_2D -> Conv with group = channels,
FULLY_CONNECTED -> Gemm, MEAN -> ReduceMean, STABLEHLO_DOT_GENERAL -> Einsum, ...).

``translate(ctx)`` takes one operator (:class:`OpContext`) and returns ``(onnx op type, attributes,
inputs)``. 4-D activations arrive with their shapes in ONNX's NCHW order (``ctx.four_d`` names them),
so an axis attribute is remapped with :func:`_axis`; weights arrive in TFLite's layout (filters OHWI)
and a translation re-lays them into ONNX's (``ctx.tensors`` is the loader's tensor table).

Two registries, one decorator each: :func:`builtin_op` for builtins that need more than a name
(:data:`SAME` holds those that do not), :func:`custom_op` for CUSTOM operators by custom code. Operators
without an ONNX equivalent keep their TFLite name, ``TFLITE_<BUILTIN>`` or ``TFLITE_CUSTOM:<code>``:
those with a rule of their own (``roofline/ops/tflite.py``: LSTM, SVDF, ...) count, the others
(control flow, unknown custom codes) are reported as unknown by counting.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from roofline.errors import ModelLoadError
from roofline.ir import Tensor

__all__ = ["OpContext", "translate", "builtin_op", "custom_op", "ACTIVATIONS", "SAME", "CONTROL_FLOW"]

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


# -- convolutions and matrix products -----------------------------------------------------------------------


@builtin_op("CONV_2D", "DEPTHWISE_CONV_2D")
def _conv2d(ctx: OpContext):
    ins, opts = ctx.inputs, _opts(ctx, "strideH", "strideW")
    o, kh, kw, i = ctx.tensors[ins[1]].shape  # TFLite filters: OHWI (depthwise: 1 x kh x kw x C*multiplier)
    cin = ctx.tensors[ins[0]].shape[1]
    depthwise = ctx.builtin == "DEPTHWISE_CONV_2D"
    _relay(ctx, ins[1], (i, 1, kh, kw) if depthwise else (o, i, kh, kw))
    attrs = {
        "kernel_shape": [kh, kw],
        "strides": [opts.strideH, opts.strideW],
        "group": cin if depthwise else max(cin // i, 1),
        "dilations": [opts.dilationHFactor or 1, opts.dilationWFactor or 1],
        "auto_pad": _pad(opts.padding),
    }
    return "Conv", attrs, list(ins)


@builtin_op("CONV_3D")
def _conv3d(ctx: OpContext):
    # 5-D activations stay NDHWC (the loader remaps only 4-D); filters DHWIO -> ONNX O x I x D x H x W
    ins, opts = ctx.inputs, _opts(ctx, "strideD", "strideH", "strideW")
    kd, kh, kw, i, o = ctx.tensors[ins[1]].shape
    _relay(ctx, ins[1], (o, i, kd, kh, kw))
    cin = ctx.tensors[ins[0]].shape[-1]
    attrs = {
        "kernel_shape": [kd, kh, kw],
        "strides": [opts.strideD, opts.strideH, opts.strideW],
        "group": max(cin // i, 1),
        "dilations": [opts.dilationDFactor or 1, opts.dilationHFactor or 1, opts.dilationWFactor or 1],
        "auto_pad": _pad(opts.padding),
    }
    return "Conv", attrs, list(ins)


@builtin_op("TRANSPOSE_CONV")
def _transpose_conv(ctx: OpContext):
    # inputs: output shape, filter (OHWI), input, optional bias -> ConvTranspose(X, W: I x O x kh x kw, B)
    ins, opts = ctx.inputs, _opts(ctx, "strideH", "strideW")
    o, kh, kw, i = ctx.tensors[ins[1]].shape
    _relay(ctx, ins[1], (i, o, kh, kw))
    attrs = {"kernel_shape": [kh, kw], "strides": [opts.strideH, opts.strideW], "auto_pad": _pad(opts.padding)}
    return "ConvTranspose", attrs, [ins[2], ins[1], *(ins[3:4] if len(ins) > 3 else [])]


@builtin_op("CONV_3D_TRANSPOSE")
def _conv3d_transpose(ctx: OpContext):
    # inputs: output shape, filter (D x H x W x O x I), input, optional bias
    ins, opts = ctx.inputs, _opts(ctx, "strideD", "strideH", "strideW")
    kd, kh, kw, o, i = ctx.tensors[ins[1]].shape
    _relay(ctx, ins[1], (i, o, kd, kh, kw))
    attrs = {"kernel_shape": [kd, kh, kw], "strides": [opts.strideD, opts.strideH, opts.strideW],
             "auto_pad": _pad(opts.padding)}  # fmt: skip
    return "ConvTranspose", attrs, [ins[2], ins[1], *(ins[3:4] if len(ins) > 3 else [])]


@builtin_op("FULLY_CONNECTED")
def _fully_connected(ctx: OpContext):
    ins = ctx.inputs
    t = ctx.tensors[ins[0]]
    k = ctx.tensors[ins[1]].shape[-1]
    flat = f"{ins[0]}:as_{t.numel // k}x{k}"  # TFLite flattens the input to (rows, K)
    ctx.tensors.setdefault(flat, Tensor(flat, (t.numel // k, k), t.elem_type, t.const))
    return "Gemm", {"transB": 1}, [flat, *ins[1:]]


@builtin_op("BATCH_MATMUL")
def _batch_matmul(ctx: OpContext):
    a, b = ctx.inputs[0], ctx.inputs[1]
    y = ctx.outputs[0]
    opts = _opts(ctx)
    adj_x, adj_y = bool(getattr(opts, "adjX", False)), bool(getattr(opts, "adjY", False))
    if not (adj_x or adj_y or {a, b, y} & ctx.four_d):
        return "MatMul", {}, [a, b]
    # numpy matmul with broadcast batch dimensions, as an einsum over TFLite's axes
    ra, rb = len(_shape(ctx, a)), len(_shape(ctx, b))
    batch = "abcdefgh"[: max(ra, rb) - 2]
    ta = batch[len(batch) - (ra - 2) :] + ("ki" if adj_x else "ik")
    tb = batch[len(batch) - (rb - 2) :] + ("jk" if adj_y else "kj")
    eq = f"{_term(ctx, a, ta)},{_term(ctx, b, tb)}->{_term(ctx, y, batch + 'ij')}"
    return "Einsum", {"equation": eq}, [a, b]


@builtin_op("STABLEHLO_DOT_GENERAL")
def _dot_general(ctx: OpContext):
    opts = _opts(ctx, "lhsContractingDimensions", "rhsContractingDimensions")
    a, b, y = ctx.inputs[0], ctx.inputs[1], ctx.outputs[0]
    ra, rb = len(_shape(ctx, a)), len(_shape(ctx, b))
    lb, rbd = _ints(opts.lhsBatchingDimensions), _ints(opts.rhsBatchingDimensions)
    lc, rc = _ints(opts.lhsContractingDimensions), _ints(opts.rhsContractingDimensions)
    pool = iter("abcdefghijklmnopqrstuvwxyz")
    ta, tb = [""] * ra, [""] * rb
    for x, z in zip(lb, rbd):
        ta[x] = tb[z] = next(pool)
    for x, z in zip(lc, rc):
        ta[x] = tb[z] = next(pool)
    for t in (ta, tb):
        for d, c in enumerate(t):
            t[d] = c or next(pool)
    out = [ta[x] for x in lb] + [c for d, c in enumerate(ta) if d not in lb + lc]
    out += [c for d, c in enumerate(tb) if d not in rbd + rc]  # stablehlo: batch, lhs free, rhs free
    eq = f"{_term(ctx, a, ''.join(ta))},{_term(ctx, b, ''.join(tb))}->{_term(ctx, y, ''.join(out))}"
    return "Einsum", {"equation": eq}, [a, b]


@builtin_op("STABLEHLO_CONVOLUTION")
def _stablehlo_conv(ctx: OpContext):
    opts = _opts(ctx, "kernelInputFeatureDimension", "kernelOutputFeatureDimension")
    x, w = ctx.inputs[0], ctx.inputs[1]
    ks = _shape(ctx, w)
    spatial = [ks[d] for d in _ints(opts.kernelSpatialDimensions)]
    kin, kout = ks[opts.kernelInputFeatureDimension], ks[opts.kernelOutputFeatureDimension]
    group = int(opts.featureGroupCount or 1)
    strides = _ints(opts.windowStrides) or [1] * len(spatial)
    # the input with its feature axis at 1, as the Conv rule reads channels there (a view: same elements)
    xs = _shape(ctx, x)
    spatial_in = _ints(opts.inputSpatialDimensions)
    order = [int(opts.inputBatchDimension), int(opts.inputFeatureDimension), *spatial_in]
    if [_dim(ctx, x, a) for a in order] != list(range(len(xs))):
        t = ctx.tensors[x]
        view = f"{x}:as_" + "x".join(str(xs[d]) for d in order)
        ctx.tensors.setdefault(view, Tensor(view, tuple(xs[d] for d in order), t.elem_type, t.const))
        x = view
    lhs_dilation = _ints(opts.lhsDilation)
    if any(d > 1 for d in lhs_dilation):  # a transposed convolution: every input element scatters a kernel
        _relay(ctx, w, (kin * group, kout // group, *spatial))
        return "ConvTranspose", {"kernel_shape": spatial, "strides": lhs_dilation, "group": group}, [x, w]
    _relay(ctx, w, (kout, kin, *spatial))
    rhs_dilation = _ints(opts.rhsDilation) or [1] * len(spatial)
    attrs = {"kernel_shape": spatial, "strides": strides, "group": group, "dilations": rhs_dilation}
    return "Conv", attrs, [x, w]


# -- recurrent layers -----------------------------------------------------------------------------------------

# which inputs are weight matrices (each multiplies one vector per time step and batch row), by schema position
_LSTM_MATRICES = (1, 2, 3, 4, 5, 6, 7, 8, 16)  # input-to-{i,f,c,o}, recurrent-to-{i,f,c,o}, projection
_RECURRENT_MATRICES = {
    "LSTM": _LSTM_MATRICES,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _LSTM_MATRICES,
    # forward 1-8 and 16, backward 18-25 and 33, aux-input weights 40-43 (forward) and 44-47 (backward)
    "BIDIRECTIONAL_SEQUENCE_LSTM": (*_LSTM_MATRICES, *range(18, 26), 33, *range(40, 48)),
    "RNN": (1, 2),  # input weights, recurrent weights
    "UNIDIRECTIONAL_SEQUENCE_RNN": (1, 2),
    "BIDIRECTIONAL_SEQUENCE_RNN": (1, 2, 5, 6, 10, 11),  # fw, bw, fw aux, bw aux weights
    "SVDF": (1, 2),  # feature weights (filters x input), time weights (filters x memory)
}


@builtin_op(*_RECURRENT_MATRICES)
def _recurrent(ctx: OpContext):
    matrices = _RECURRENT_MATRICES[ctx.builtin]
    if ctx.builtin == "LSTM" and len(ctx.inputs) == 5:  # the basic kernel: one [4U, I+U] weight matrix
        matrices = (2,)
    matrices = [i for i in matrices if i < len(ctx.inputs) and ctx.inputs[i] is not None]
    return f"TFLITE_{ctx.builtin}", {"matrix_inputs": matrices}, list(ctx.inputs)


# -- pooling, reductions, normalisation, softmax ----------------------------------------------------------


@builtin_op("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D")
def _pool2d(ctx: OpContext):
    opts = _opts(ctx, "filterHeight", "filterWidth")
    attrs = {"kernel_shape": [opts.filterHeight, opts.filterWidth], "strides": [opts.strideH, opts.strideW],
             "auto_pad": _pad(opts.padding)}  # fmt: skip
    op = {"MAX_POOL_2D": "MaxPool", "L2_POOL_2D": "LpPool", "AVERAGE_POOL_2D": "AveragePool"}[ctx.builtin]
    if op == "LpPool":
        attrs["p"] = 2
    return op, attrs, list(ctx.inputs[:1])


_REDUCE_WINDOW = {1: "AveragePool", 2: "MaxPool", 3: "MaxPool", 4: "MaxPool", 5: "MaxPool", 6: "MaxPool"}


@builtin_op("REDUCE_WINDOW", "STABLEHLO_REDUCE_WINDOW")
def _reduce_window(ctx: OpContext):
    # a pooling window over every axis; inputs: operand(s), init value(s) (scalars), and for REDUCE_WINDOW the
    # window shape / strides / dilations as tensors. The reduction body is not inspected for StableHLO
    opts = _opts(ctx)
    if ctx.builtin == "REDUCE_WINDOW":
        op = _REDUCE_WINDOW.get(int(getattr(opts, "reduceFunction", 2) or 2), "MaxPool")
        window, strides = _value(ctx, 2), _value(ctx, 3)
    else:
        op = "MaxPool"
        window, strides = getattr(opts, "windowDimensions", None), getattr(opts, "windowStrides", None)
    attrs = {}
    if window is not None:
        attrs["kernel_shape"] = [int(d) for d in np.ravel(window)]
    if strides is not None:
        attrs["strides"] = [int(d) for d in np.ravel(strides)]
    return op, attrs, list(ctx.inputs[:1])


_REDUCE = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax", "REDUCE_MIN": "ReduceMin",
           "REDUCE_PROD": "ReduceProd", "REDUCE_ANY": "ReduceMax", "REDUCE_ALL": "ReduceMin"}  # fmt: skip


@builtin_op(*_REDUCE)
def _reduce(ctx: OpContext):
    x = ctx.inputs[0]
    rank = len(ctx.tensors[x].shape or ())
    axes = _value(ctx, 1)
    attrs = {"keepdims": int(bool(getattr(ctx.options, "keepDims", False)))}
    if axes is not None:
        attrs["axes"] = sorted({_axis(int(a), rank, x in ctx.four_d) for a in np.atleast_1d(axes)})
    return _REDUCE[ctx.builtin], attrs, [x]


@builtin_op("STABLEHLO_REDUCE")
def _stablehlo_reduce(ctx: OpContext):
    # operands..., init values...: the first operand is read (the body, usually add or max, is not inspected)
    opts = _opts(ctx)
    x = ctx.inputs[0]
    attrs = {"keepdims": 0}
    if getattr(opts, "dimensions", None) is not None:
        attrs["axes"] = sorted(_dim(ctx, x, a) for a in _ints(opts.dimensions))
    return "ReduceSum", attrs, [x]


@builtin_op("ARG_MAX", "ARG_MIN")
def _arg(ctx: OpContext):
    x, axis = ctx.inputs[0], _value(ctx, 1)
    attrs = {"keepdims": 0}
    if axis is not None:
        attrs["axis"] = _dim(ctx, x, int(np.ravel(axis)[0]))
    return {"ARG_MAX": "ArgMax", "ARG_MIN": "ArgMin"}[ctx.builtin], attrs, [x]


@builtin_op("SOFTMAX", "LOG_SOFTMAX")
def _softmax(ctx: OpContext):
    x = ctx.inputs[0]
    return {"SOFTMAX": "Softmax", "LOG_SOFTMAX": "LogSoftmax"}[ctx.builtin], {"axis": _dim(ctx, x, -1)}, [x]


@builtin_op("L2_NORMALIZATION")
def _l2_norm(ctx: OpContext):
    return "LpNormalization", {"p": 2, "axis": _dim(ctx, ctx.inputs[0], -1)}, [ctx.inputs[0]]


@builtin_op("LOCAL_RESPONSE_NORMALIZATION")
def _lrn(ctx: OpContext):
    opts = _opts(ctx, "radius")
    attrs = {"size": 2 * int(opts.radius) + 1, "alpha": float(opts.alpha), "beta": float(opts.beta),
             "bias": float(opts.bias)}  # fmt: skip
    return "LRN", attrs, [ctx.inputs[0]]


@builtin_op("CUMSUM")
def _cumsum(ctx: OpContext):
    opts = _opts(ctx)
    attrs = {"exclusive": int(bool(getattr(opts, "exclusive", 0))), "reverse": int(bool(getattr(opts, "reverse", 0)))}
    return "CumSum", attrs, list(ctx.inputs)


# -- data movement ---------------------------------------------------------------------------------------------


@builtin_op("CONCATENATION", "PACK", "STABLEHLO_CONCATENATE")
def _concat(ctx: OpContext):
    opts = _opts(ctx)
    axis = getattr(opts, "dimension" if ctx.builtin == "STABLEHLO_CONCATENATE" else "axis", 0) or 0
    x = ctx.inputs[0]
    if ctx.builtin == "PACK":  # stacks along a new axis of the output
        return "Concat", {"axis": _dim(ctx, ctx.outputs[0], axis)}, list(ctx.inputs)
    return "Concat", {"axis": _dim(ctx, x, axis)}, list(ctx.inputs)


@builtin_op("SPLIT")
def _split(ctx: OpContext):
    # inputs: axis, input
    x, axis = ctx.inputs[1], _value(ctx, 0)
    attrs = {"num_outputs": len(ctx.outputs)}
    if axis is not None:
        attrs["axis"] = _dim(ctx, x, int(np.ravel(axis)[0]))
    return "Split", attrs, [x]


@builtin_op("UNPACK")
def _unpack(ctx: OpContext):
    x = ctx.inputs[0]
    return "Split", {"axis": _dim(ctx, x, getattr(ctx.options, "axis", 0) or 0), "num_outputs": len(ctx.outputs)}, [x]


@builtin_op("SQUEEZE")
def _squeeze(ctx: OpContext):
    return "Squeeze", {}, [ctx.inputs[0]]


@builtin_op("TRANSPOSE", "STABLEHLO_TRANSPOSE")
def _transpose(ctx: OpContext):
    x, y = ctx.inputs[0], ctx.outputs[0]
    perm = _value(ctx, 1) if ctx.builtin == "TRANSPOSE" else getattr(_opts(ctx), "permutation", None)
    attrs = {}
    if perm is not None:
        perm = [int(p) for p in np.ravel(perm)]
        if len(perm) == 4 and x in ctx.four_d and y in ctx.four_d:  # both sides stored NCHW
            perm = [_NCHW.index(perm[_NCHW[i]]) for i in range(4)]
        attrs["perm"] = perm
    return "Transpose", attrs, [x]


@builtin_op("GATHER")
def _gather(ctx: OpContext):
    x = ctx.inputs[0]
    return "Gather", {"axis": _dim(ctx, x, getattr(ctx.options, "axis", 0) or 0)}, list(ctx.inputs[:2])


@builtin_op("EMBEDDING_LOOKUP")
def _embedding_lookup(ctx: OpContext):
    # inputs: ids, table -> rows of the table: Gather(table, ids)
    return "Gather", {"axis": 0}, [ctx.inputs[1], ctx.inputs[0]]


@builtin_op("HASHTABLE_LOOKUP")
def _hashtable_lookup(ctx: OpContext):
    # inputs: lookup keys, keys, values -> the rows of values found: Gather(values, lookup)
    return "Gather", {"axis": 0}, [ctx.inputs[2], ctx.inputs[0]]


@builtin_op("HASHTABLE_FIND")
def _hashtable_find(ctx: OpContext):
    # inputs: table handle, keys, default value -> one value per key
    return "Gather", {"axis": 0}, [ctx.inputs[0], ctx.inputs[1]]


@builtin_op("HASHTABLE_IMPORT")
def _hashtable_import(ctx: OpContext):
    # inputs: table handle, keys, values: reads keys and values (usually in an init subgraph run once)
    return "ScatterND", {}, [ctx.inputs[1], ctx.inputs[2]]


@builtin_op("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(ctx: OpContext):
    op = {"DEPTH_TO_SPACE": "DepthToSpace", "SPACE_TO_DEPTH": "SpaceToDepth"}[ctx.builtin]
    return op, {"blocksize": int(getattr(ctx.options, "blockSize", 1) or 1)}, [ctx.inputs[0]]


@builtin_op("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
def _space_batch(ctx: OpContext):
    # blocks of the spatial axes move into (out of) the batch, with padding (cropping): a copy of the input
    op = {"SPACE_TO_BATCH_ND": "SpaceToDepth", "BATCH_TO_SPACE_ND": "DepthToSpace"}[ctx.builtin]
    block = _value(ctx, 1)
    return op, {"blocksize": int(np.ravel(block)[0]) if block is not None else 1}, [ctx.inputs[0]]


@builtin_op("REVERSE_V2")
def _reverse(ctx: OpContext):
    return "Slice", {}, [ctx.inputs[0]]  # a slice with step -1: reads and writes every element


@builtin_op("STABLEHLO_DYNAMIC_SLICE", "STABLEHLO_GATHER")
def _stablehlo_gather(ctx: OpContext):
    if ctx.builtin == "STABLEHLO_DYNAMIC_SLICE":
        return "Slice", {}, [ctx.inputs[0]]
    return "GatherND", {}, [ctx.inputs[0], ctx.inputs[1]]  # operand, start indices


@builtin_op("DYNAMIC_UPDATE_SLICE", "STABLEHLO_DYNAMIC_UPDATE_SLICE")
def _dynamic_update_slice(ctx: OpContext):
    # inputs: operand, update, start indices -> the operand with the update written in (a copy of both)
    return "ScatterND", {}, [ctx.inputs[0], *ctx.inputs[2:], ctx.inputs[1]]


@builtin_op("SCATTER_ND")
def _scatter_nd(ctx: OpContext):
    # inputs: indices, updates, shape -> a zero tensor of that shape with the updates scattered in
    return "ScatterND", {}, [ctx.inputs[0], ctx.inputs[1]]


@builtin_op("SPARSE_TO_DENSE")
def _sparse_to_dense(ctx: OpContext):
    # inputs: indices, output shape, values, default value (a scalar)
    return "ScatterND", {}, [ctx.inputs[0], ctx.inputs[2]]


_SEGMENT = {"SEGMENT_SUM": "add", "UNSORTED_SEGMENT_SUM": "add", "UNSORTED_SEGMENT_PROD": "mul",
            "UNSORTED_SEGMENT_MAX": "max", "UNSORTED_SEGMENT_MIN": "min"}  # fmt: skip


@builtin_op(*_SEGMENT)
def _segment(ctx: OpContext):
    # inputs: data, segment ids (, number of segments) -> a scatter-reduce of data rows into segments
    return "ScatterElements", {"reduction": _SEGMENT[ctx.builtin]}, [ctx.inputs[1], ctx.inputs[0]]


@builtin_op("MATRIX_DIAG")
def _matrix_diag(ctx: OpContext):
    return "Expand", {}, [ctx.inputs[0]]  # reads the diagonal, writes the whole (mostly zero) matrix


@builtin_op("MATRIX_SET_DIAG")
def _matrix_set_diag(ctx: OpContext):
    return "ScatterND", {}, [ctx.inputs[0], ctx.inputs[1]]  # a copy of the input with the diagonal written in


@builtin_op("ONE_HOT")
def _one_hot(ctx: OpContext):
    # inputs: indices, depth, on value, off value (scalars)
    return "OneHot", {"axis": int(getattr(ctx.options, "axis", -1))}, list(ctx.inputs)


@builtin_op("WHERE")
def _where(ctx: OpContext):
    if len(ctx.inputs) == 1:  # the coordinates of the true elements
        return "NonZero", {}, list(ctx.inputs)
    return "Where", {}, list(ctx.inputs)


@builtin_op("DILATE", "STABLEHLO_PAD")
def _dilate(ctx: OpContext):
    return "Pad", {}, [ctx.inputs[0]]  # inputs: operand, (dilations,) padding value


@builtin_op("STABLEHLO_BROADCAST_IN_DIM")
def _broadcast_in_dim(ctx: OpContext):
    return "Expand", {}, [ctx.inputs[0]]


@builtin_op("STABLEHLO_IOTA")
def _iota(ctx: OpContext):
    return "Range", {}, []


@builtin_op("STABLEHLO_SORT")
def _sort(ctx: OpContext):
    return "TopK", {}, [ctx.inputs[0]]  # a full sort along one axis: reads the keys, writes every output


@builtin_op("STABLEHLO_CLAMP")
def _clamp(ctx: OpContext):
    lo, x, hi = ctx.inputs[:3]  # stablehlo order: min, operand, max
    return "Clip", {}, [x, lo, hi]


_COMPARE = {0: "Equal", 1: "Equal", 2: "GreaterOrEqual", 3: "Greater", 4: "LessOrEqual", 5: "Less"}


@builtin_op("STABLEHLO_COMPARE")
def _compare(ctx: OpContext):
    return _COMPARE.get(int(getattr(_opts(ctx), "comparisonDirection", 0) or 0), "Equal"), {}, list(ctx.inputs)


@builtin_op("RANDOM_STANDARD_NORMAL", "RANDOM_UNIFORM", "STABLEHLO_RNG_BIT_GENERATOR")
def _random(ctx: OpContext):
    # inputs: a shape (or a generator state): nothing is read, the output (and new state) is written
    return {"RANDOM_STANDARD_NORMAL": "RandomNormal"}.get(ctx.builtin, "RandomUniform"), {}, []


@builtin_op("MULTINOMIAL")
def _multinomial(ctx: OpContext):
    return "Multinomial", {}, [ctx.inputs[0]]  # inputs: logits, number of samples


@builtin_op("STABLEHLO_CUSTOM_CALL")
def _custom_call(ctx: OpContext):
    return _custom(ctx, getattr(_opts(ctx), "callTargetName", None))


# -- custom operators -------------------------------------------------------------------------------------------


def _struct(ctx: OpContext, fields: int) -> tuple[int, ...]:
    """The first ``fields`` int32 of a custom operator's options (a raw TfLite*Params C struct)."""
    raw = bytes(ctx.custom_options or b"")
    if len(raw) < 4 * fields:
        raise ModelLoadError(
            f"TFLite custom op {ctx.custom_code!r} writing {ctx.outputs[0] if ctx.outputs else '?'!r}: options are "
            f"{len(raw)} bytes, expected a struct of at least {fields} int32"
        )
    return struct.unpack_from(f"<{fields}i", raw)


def _struct_pad(padding: int) -> str:
    return "VALID" if padding == 2 else "SAME_UPPER"  # TfLitePadding: unknown 0, same 1, valid 2


def _flex(ctx: OpContext) -> dict:
    """A custom operator's flexbuffer map of options ({} when it has none)."""
    if not ctx.custom_options:
        return {}
    from flatbuffers import flexbuffers

    try:
        out = flexbuffers.Loads(bytes(ctx.custom_options))
    except Exception as exc:  # noqa: BLE001 - flexbuffers raises anything on damaged bytes
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"TFLite custom op {ctx.custom_code!r}: damaged flexbuffer options ({detail})") from None
    return out if isinstance(out, dict) else {}


@custom_op("Convolution2DTransposeBias")
def _mp_transpose_conv(ctx: OpContext):
    # mediapipe: inputs input, weights (OHWI), bias; options TfLiteTransposeConvParams {padding, stride_w, stride_h}
    padding, stride_w, stride_h = _struct(ctx, 3)
    x, w, b = ctx.inputs[:3]
    o, kh, kw, i = ctx.tensors[w].shape
    _relay(ctx, w, (i, o, kh, kw))
    attrs = {"kernel_shape": [kh, kw], "strides": [stride_h, stride_w], "auto_pad": _struct_pad(padding)}
    return "ConvTranspose", attrs, [x, w, b]


@custom_op("MaxPoolingWithArgmax2D")
def _mp_max_pool_argmax(ctx: OpContext):
    # mediapipe: outputs the pooled values and the argmax indices; options TfLitePoolParams
    # {padding, stride_w, stride_h, filter_w, filter_h, ...}
    padding, stride_w, stride_h, filter_w, filter_h = _struct(ctx, 5)
    attrs = {"kernel_shape": [filter_h, filter_w], "strides": [stride_h, stride_w], "auto_pad": _struct_pad(padding)}
    return "MaxPool", attrs, [ctx.inputs[0]]


@custom_op("MaxUnpooling2D")
def _mp_max_unpool(ctx: OpContext):
    # mediapipe: inputs values, argmax indices; options TfLitePoolParams
    padding, stride_w, stride_h, filter_w, filter_h = _struct(ctx, 5)
    return "MaxUnpool", {"kernel_shape": [filter_h, filter_w], "strides": [stride_h, stride_w]}, list(ctx.inputs[:2])


@custom_op("TransformTensorBilinear", "TransformTensor")
def _mp_transform_tensor(ctx: OpContext):
    # mediapipe: bilinear sampling of the input at an affine transform (4x4 matrix) of each output pixel:
    # GridSample's arithmetic (reads the input and the transform, writes the output)
    return "GridSample", {"mode": "linear"}, list(ctx.inputs[:2])


@custom_op("TransformLandmarks", "Landmarks2TransformMatrix")
def _mp_landmarks(ctx: OpContext):
    return f"TFLITE_CUSTOM:{ctx.custom_code}", {}, list(ctx.inputs)


@custom_op("TFLite_Detection_PostProcess")
def _detection_postprocess(ctx: OpContext):
    # inputs: box encodings, class predictions, anchors; outputs boxes, classes, scores, count. Fast NMS keeps
    # max_detections x max_classes_per_detection detections, regular NMS max_detections
    opts = _flex(ctx)
    n = int(opts.get("max_detections", 10))
    if not opts.get("use_regular_nms", False):
        n *= int(opts.get("max_classes_per_detection", 1))
    return f"TFLITE_CUSTOM:{ctx.custom_code}", {"detections": n}, list(ctx.inputs)
