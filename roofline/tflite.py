"""Read a TFLite flatbuffer into the same Graph that ONNX models load into, so that every counting
rule, fusion and roofline applies unchanged.

The file is parsed with the schema bindings that ``ai-edge-litert`` ships (no TensorFlow). Each TFLite
operator becomes the ONNX operator with the same arithmetic (CONV_2D -> Conv, DEPTHWISE_CONV_2D ->
Conv with group = channels, FULLY_CONNECTED -> Gemm, MEAN -> ReduceMean, ...). 4-D activations are
NHWC in TFLite; their shapes are given in ONNX's NCHW order (axes remapped) so the rules read channels
where they expect them. Tensor element types stay as stored: an int8-quantised model counts 1 byte per
weight and activation. A fused activation (RELU6 in a CONV_2D) is recorded as attribute
``fused_activation``: it costs no MACs and no traffic. An operator without an equivalent keeps its
TFLite name (``TFLITE_<NAME>``), which counting reports as unknown.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from roofline.errors import ModelLoadError
from roofline.graph import Graph, Node, Tensor
from roofline.tflite_ops import ACTIVATIONS, OpContext, translate

__all__ = ["is_tflite", "load_tflite"]

_ELEM = {0: TensorProto.FLOAT, 1: TensorProto.FLOAT16, 2: TensorProto.INT32, 3: TensorProto.UINT8,
         4: TensorProto.INT64, 6: TensorProto.BOOL, 7: TensorProto.INT16, 9: TensorProto.INT8,
         10: TensorProto.DOUBLE, 18: TensorProto.BFLOAT16}  # fmt: skip
_NP = {TensorProto.INT32: np.int32, TensorProto.INT64: np.int64, TensorProto.FLOAT: np.float32}
_NCHW = (0, 3, 1, 2)  # NCHW axis i holds NHWC axis _NCHW[i]


def is_tflite(data: bytes) -> bool:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at bytes 4-8."""
    return len(data) >= 8 and data[4:8] == b"TFL3"


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        raise ModelLoadError("reading .tflite needs ai-edge-litert (pip install 'roofline[tflite]')") from None
    return schema


def load_tflite(data: bytes, where: str = "<bytes>") -> Graph:
    """The first subgraph of a TFLite model as a Graph (see the module docstring)."""
    schema = _schema()
    if not is_tflite(data):
        raise ModelLoadError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises anything on a damaged file
        raise ModelLoadError(f"{where}: damaged TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    if not model.subgraphs:
        raise ModelLoadError(f"{where}: the TFLite model has no subgraph")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes or []]
    sub = model.subgraphs[0]
    raw = sub.tensors or []
    tensors: dict[str, Tensor] = {}
    values: dict[str, np.ndarray] = {}
    four_d: set[str] = set()

    def name_of(i: int) -> str:
        t = raw[i]
        return t.name.decode() if isinstance(t.name, bytes) else (t.name or f"tensor_{i}")

    for i, t in enumerate(raw):
        name = name_of(i)
        buf = model.buffers[t.buffer] if model.buffers and t.buffer < len(model.buffers) else None
        const = buf is not None and (buf.data is not None and len(buf.data) > 0 or buf.offset > 1)
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        elem = _ELEM.get(t.type, TensorProto.UNDEFINED)
        if len(shape) == 4 and not const:
            shape = tuple(shape[a] for a in _NCHW)
            four_d.add(name)
        tensors[name] = Tensor(name, shape, elem, const)
        if const and buf.data is not None and elem in _NP and int(np.prod(shape)) <= 64:
            values[name] = np.frombuffer(bytes(buf.data), dtype=_NP[elem]).reshape(shape)

    nodes: list[Node] = []
    for k, op in enumerate(sub.operators or []):
        code = codes[op.opcodeIndex] if op.opcodeIndex < len(codes) else -1
        builtin = names.get(code, f"CODE{code}")
        ins = [name_of(i) if i >= 0 else None for i in op.inputs]
        outs = [name_of(i) for i in op.outputs]
        opts = op.builtinOptions
        node_name = f"{builtin.lower()}_{k}:{outs[0] if outs else ''}"
        op_type, attrs, ins = translate(OpContext(builtin, opts, ins, outs, tensors, four_d, values))
        act = getattr(opts, "fusedActivationFunction", 0) if opts is not None else 0
        if act:
            attrs["fused_activation"] = ACTIVATIONS.get(act, str(act))
        nodes.append(Node(node_name, op_type, "", attrs, tuple(tensors.get(n) if n else None for n in ins),
                          tuple(tensors[n] for n in outs)))  # fmt: skip
    return Graph(name=(sub.name.decode() if isinstance(sub.name, bytes) else sub.name) or "tflite", nodes=nodes,
                 tensors=tensors, inputs=[name_of(i) for i in sub.inputs], outputs=[name_of(i) for i in sub.outputs],
                 opset=0, values=values)  # fmt: skip
