"""TFLite translations of data-movement operators (concatenation, splits, transposes, gathers, scatters,
padding, ...) and of the remaining StableHLO operators, onto the ONNX ops with the same reads and writes.
"""

from __future__ import annotations

import numpy as np

from roofline.ir.tflite_ops_base import _NCHW, OpContext, _dim, _opts, _value, builtin_op

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
