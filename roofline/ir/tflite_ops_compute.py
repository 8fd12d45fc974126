"""TFLite translations of compute operators: convolutions, matrix products, recurrent layers, pooling,
reductions, normalisation and softmax (weights re-laid from TFLite's layout into ONNX's).
"""

from __future__ import annotations

import numpy as np

from roofline.ir import Tensor
from roofline.ir.tflite_ops_base import (
    OpContext,
    _axis,
    _dim,
    _ints,
    _opts,
    _pad,
    _relay,
    _shape,
    _term,
    _value,
    builtin_op,
)

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
