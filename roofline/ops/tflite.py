"""Counting rules of TFLite operators that have no ONNX equivalent (op types ``TFLITE_<BUILTIN>`` and
``TFLITE_CUSTOM:<custom code>``, as ``roofline.ir.tflite_ops`` names them).

The recurrent family (LSTM, RNN, SVDF in their single-step, sequence and bidirectional forms) shares
one rule: every weight matrix multiplies one vector per time step and batch row. The translation says
which inputs are the matrices (attribute ``matrix_inputs``), since TFLite keeps one per gate.
"""

from __future__ import annotations

import math

from roofline.ir import Node, Tensor
from roofline.ops import Cost, cost, is_immediate, register_op
from roofline.ops.linear import _kind, recurrent_macs

MOVE = "data-movement"

#: TFLite recurrent builtins: weights per gate, peepholes, projections, layer norm, aux inputs
RECURRENT = (
    "TFLITE_LSTM", "TFLITE_UNIDIRECTIONAL_SEQUENCE_LSTM", "TFLITE_BIDIRECTIONAL_SEQUENCE_LSTM", "TFLITE_RNN",
    "TFLITE_UNIDIRECTIONAL_SEQUENCE_RNN", "TFLITE_BIDIRECTIONAL_SEQUENCE_RNN", "TFLITE_SVDF",
)  # fmt: skip


@register_op(*RECURRENT)
def tflite_recurrent(node: Node) -> Cost:
    # MACs = steps x batch x sum of the weight matrices' elements (input-to-gate, recurrent-to-gate,
    # projection, aux-input; SVDF: feature and time weights); states, biases, peepholes read whole
    matrices = [node.input(i) for i in node.attr("matrix_inputs", ())]
    matrices = [t for t in matrices if t is not None]
    return cost(node, _kind(*matrices), recurrent_macs(node.inputs[0], matrices))


@register_op("TFLITE_EMBEDDING_LOOKUP_SPARSE")
def embedding_lookup_sparse(node: Node) -> Cost:
    # inputs: ids, indices, dense_shape, weights, table. Each looked-up row is scaled by its weight and
    # accumulated into its output row: ids x row MACs; only the looked-up rows of the table are read
    ids, table = node.inputs[0], node.inputs[4]
    row = table.numel // table.shape[0] if table.shape and table.shape[0] else 1
    reads = tuple((t, t.numel) for t in node.inputs[:4] if t is not None and not is_immediate(t))
    reads += ((table, min(ids.numel * row, table.numel)),)
    return Cost(_kind(table), ids.numel * row, reads, tuple((t, t.numel) for t in node.outputs))


@register_op("TFLITE_RFFT2D")
def rfft2d(node: Node) -> Cost:
    # real 2-D FFT, output [..., Fh, Fw/2+1] complex. Radix-2 estimate: a complex FFT of length n is
    # n/2 log2 n butterflies of one complex multiply (4 real MACs) = 2 n log2 n MACs, a real-input one
    # half that. Rows: Fh real FFTs of length Fw; columns: Fw/2+1 complex FFTs of length Fh
    y = node.outputs[0]
    fh, half = y.shape[-2], y.shape[-1]
    fw = 2 * (half - 1)
    batch = y.numel // (fh * half)
    macs = batch * (fh * fw * math.log2(max(fw, 1)) + half * 2 * fh * math.log2(max(fh, 1)))
    return cost(node, "matmul", round(macs), data=[0])


@register_op("TFLITE_BUCKETIZE", "TFLITE_LSH_PROJECTION", "TFLITE_DENSIFY", "TFLITE_CUSTOM:TransformLandmarks")
def tflite_elementwise(node: Node) -> Cost:
    # element-wise maps: bucket boundaries, hash signatures of the input, a sparse-to-dense expansion of an
    # activation, mediapipe's affine transform of landmark points (2x4 per point, not counted as MACs)
    return cost(node, "elementwise")


@register_op("TFLITE_SKIP_GRAM", "TFLITE_CUSTOM:Landmarks2TransformMatrix")
def tflite_copy(node: Node) -> Cost:
    # n-grams of a string tensor; mediapipe's crop matrix from a few landmarks (read whole: an upper bound)
    return cost(node, MOVE)


def _variable(handle: Tensor, like: Tensor) -> Tensor:
    """The variable a resource handle names, shaped like the value read from or written to it."""
    return Tensor(f"{handle.name}:variable", like.shape, like.elem_type, False)


@register_op("TFLITE_READ_VARIABLE")
def read_variable(node: Node) -> Cost:
    # copies the variable into the output: reads as many elements as it writes
    y = node.outputs[0]
    return Cost(MOVE, 0, ((_variable(node.inputs[0], y), y.numel),), ((y, y.numel),))


@register_op("TFLITE_ASSIGN_VARIABLE")
def assign_variable(node: Node) -> Cost:
    # inputs: handle, value; no outputs: the value is copied into the variable
    value = node.inputs[1]
    return Cost(MOVE, 0, ((value, value.numel),), ((_variable(node.inputs[0], value), value.numel),))


@register_op("TFLITE_CUSTOM:TFLite_Detection_PostProcess")
def detection_postprocess(node: Node) -> Cost:
    # reads box encodings, class scores and anchors whole (decoding + NMS: no MACs); writes ``detections``
    # boxes (x4), classes and scores, and their count (TFLite sizes the outputs so, whatever the file stores;
    # the translation sets the attribute from max_detections)
    n = node.attr("detections")
    writes = tuple((t, b) for t, b in zip(node.outputs, (4 * n, n, n, 1)))
    return Cost(MOVE, 0, cost(node, MOVE).reads, writes)
