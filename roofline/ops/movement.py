"""Data movement: copies, views and gathers. 0 MACs.

In the raw view a view (``view=True``: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) is a copy
(it reads and writes its tensor); the fused view makes views free, as deployed runtimes do (see
``roofline.counting.fuse``).
"""

from __future__ import annotations

from roofline.ir import Node
from roofline.ops import Cost, cost, is_immediate, register_op

MOVE = "data-movement"


# views: they only re-label a tensor's shape (free in the fused view)
@register_op("Identity", "Dropout", view=True, same_shape=True)
@register_op("Reshape", "Flatten", "Squeeze", "Unsqueeze", view=True)
def reshape(node: Node) -> Cost:
    # input 1 (target shape / axes / dropout ratio) is metadata; Dropout's mask is not produced at inference
    return cost(node, MOVE, data=[0], outputs=[0])


@register_op("Concat", absorbs="clamp", layout="passthrough")
@register_op(
    "Transpose", "Cast", "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements", "OneHot",
    "ReverseSequence", "Multinomial", "NonZero", "Unique", "NonMaxSuppression", "Compress",
)  # fmt: skip
def copy(node: Node) -> Cost:
    # every input read whole (scalar immediates aside), every output written whole; NonZero, Unique,
    # NonMaxSuppression and Compress write outputs whose size depends on the data: their stored (or bounded)
    # shapes count
    return cost(node, MOVE)


@register_op("Split", "Pad", "Expand", "Tile", "CumSum", "Trilu", "CastLike")
def copy_first(node: Node) -> Cost:
    # split sizes, pads, target shapes, repeats, axis and CastLike's type donor are metadata;
    # Pad's constant value is a scalar
    return cost(node, MOVE, data=[0])


@register_op("Slice", "Gather", "GatherElements", "GatherND")
def gather(node: Node) -> Cost:
    # only the selected elements of the data input are read, plus the indices (if any) whole
    data, out = node.inputs[0], node.outputs[0]
    reads = ((data, out.numel),)
    if node.op_type != "Slice" and not is_immediate(node.inputs[1]):
        reads += ((node.inputs[1], node.inputs[1].numel),)
    return Cost(MOVE, 0, reads, ((out, out.numel),))


@register_op(
    "Shape", "Size", "Constant", "ConstantOfShape", "Range", "EyeLike", "RandomNormal", "RandomUniform",
    "RandomNormalLike", "RandomUniformLike",
)  # fmt: skip
def source(node: Node) -> Cost:
    # reads no tensor data (only shapes or scalars); usually folded at load time (random ones never are)
    return cost(node, MOVE, data=[])
