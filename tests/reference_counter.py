"""A minimal, independent reference counter for the converter corpus (tests/data/converters).

It shares no code with `roofline`: TFLite files are read with LiteRT's generated flatbuffer schema
(`ai_edge_litert.schema_py_generated`, non-object API) and ONNX files with onnx's shape inference.
Only the multiply-accumulate layers are counted, with the formulas of docs/conventions.md:

    conv            MACs = output elements x (Cin / groups) x Kh x Kw
    depthwise conv  MACs = output elements x Kh x Kw                    (Cin / groups = 1)
    fully connected MACs = output elements x K
    matmul          MACs = output elements x K                           (K = contracted dimension)
    transposed conv MACs = input elements x (Cout / groups) x Kh x Kw
    bias adds       0 MACs

Everything here is deliberately plain; each formula is commented where it is applied.
"""

from __future__ import annotations

from collections import Counter
from math import prod
from pathlib import Path

import numpy as np

# ----------------------------------------------------------------------------------------------
# TFLite
# ----------------------------------------------------------------------------------------------

# Element types that hold parameters (docs/conventions.md: floating-point or quantised constants).
# int32 / int64 constants (shapes, axes, the int32 biases of int8 models) are not parameters.
_PARAM_TYPES = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64", "INT8", "UINT8", "INT4", "INT16"}
# Ops through which a constant weight reaches a layer at load time (the root constant is the weight).
_PASS_THROUGH = {"DEQUANTIZE", "DENSIFY"}
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
           "Convolution2DTransposeBias")  # fmt: skip


def read_tflite(path: str | Path) -> bytes:
    """The bytes of a .tflite file (or of a .tflite.xz, decompressed)."""
    data = Path(path).read_bytes()
    if str(path).endswith(".xz"):
        import lzma

        data = lzma.decompress(data)
    return data


def _schema():
    from ai_edge_litert import schema_py_generated as s

    return s


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _op_name(model, index: int) -> str:
    """The builtin op name of an OperatorCode, or its custom code for CUSTOM ops."""
    s = _schema()
    oc = model.OperatorCodes(index)
    # Newer files store the code in BuiltinCode (int32); old ones only in DeprecatedBuiltinCode (int8,
    # 127 = "look in BuiltinCode"). The effective code is the larger of the two.
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    name = _enum_names(s.BuiltinOperator)[code]
    if name == "CUSTOM":
        return oc.CustomCode().decode()
    return name


def open_inputs(path: str | Path) -> dict[str, list[int]]:
    """Inputs of subgraph 0 whose shape_signature has a -1: {name: shape_signature}."""
    s = _schema()
    model = s.Model.GetRootAs(read_tflite(path), 0)
    sg = model.Subgraphs(0)
    out = {}
    for i in range(sg.InputsLength()):
        t = sg.Tensors(sg.Inputs(i))
        sig = [] if t.ShapeSignatureIsNone() else t.ShapeSignatureAsNumpy().tolist()
        if -1 in sig:
            out[t.Name().decode()] = sig
    return out


def _interpreter_shapes(path: str | Path, input_shapes: dict[str, tuple[int, ...]]) -> dict[int, list[int]]:
    """Tensor shapes of subgraph 0 after resizing the inputs (LiteRT propagates them in allocate_tensors)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=read_tflite(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)  # fmt: skip
    for d in interp.get_input_details():
        if d["name"] in input_shapes:
            interp.resize_tensor_input(d["index"], list(input_shapes[d["name"]]), strict=False)
    interp.allocate_tensors()
    return {d["index"]: list(d["shape"]) for d in interp.get_tensor_details()}


def tflite_counts(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> dict:
    """Walk every subgraph of a .tflite file and count the MAC layers and the parameters.

    Shapes are the stored tensor shapes; with `input_shapes` (needed when an input's shape_signature
    has -1) subgraph 0's shapes come from the LiteRT interpreter after resizing those inputs.

    Returns macs (total and per op), the weight elements of the MAC layers (filters and biases, each
    root constant once, int32 biases excluded), all parameter elements (those, plus every other
    float or quantised constant of more than one element read by any op, each once), the op names
    present (custom codes for CUSTOM ops), the subgraph count, the open inputs.
    """
    s = _schema()
    type_names = _enum_names(s.TensorType)
    model = s.Model.GetRootAs(read_tflite(path), 0)
    interp_shapes = _interpreter_shapes(path, input_shapes) if input_shapes else {}

    macs_by_op: Counter[str] = Counter()
    ops: Counter[str] = Counter()
    layer_weights: set[tuple[int, int]] = set()  # (subgraph, root constant tensor) of MAC layers
    params: set[tuple[int, int]] = set()  # (subgraph, root constant tensor) of all param constants
    elements: dict[tuple[int, int], int] = {}
    sparse_tensors = 0

    for g in range(model.SubgraphsLength()):
        sg = model.Subgraphs(g)

        def shape(t: int, g=g, sg=sg) -> list[int]:
            if g == 0 and t in interp_shapes:
                return interp_shapes[t]
            return [] if sg.Tensors(t).ShapeIsNone() else sg.Tensors(t).ShapeAsNumpy().tolist()

        def is_const(t: int, sg=sg) -> bool:
            # A constant tensor points at a non-empty buffer (buffer 0 is the empty sentinel; big
            # models keep the data outside the flatbuffer, at Offset/Size).
            b = model.Buffers(sg.Tensors(t).Buffer())
            return b is not None and (b.DataLength() > 0 or b.Offset() > 1)

        # producer of each tensor, so a weight can be followed back through DEQUANTIZE / DENSIFY
        producer: dict[int, tuple[str, list[int]]] = {}
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            for t in op.OutputsAsNumpy().tolist():
                producer[t] = (_op_name(model, op.OpcodeIndex()), op.InputsAsNumpy().tolist())

        def root(t: int, producer=producer, is_const=is_const) -> int | None:
            """The constant a tensor is (or is dequantized / densified from), else None."""
            while not is_const(t):
                name, ins = producer.get(t, (None, []))
                if name not in _PASS_THROUGH:
                    return None
                t = ins[0]
            return t

        for j in range(sg.TensorsLength()):
            if sg.Tensors(j).Sparsity() is not None:
                sparse_tensors += 1

        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            name = _op_name(model, op.OpcodeIndex())
            ops[name] += 1
            ins = op.InputsAsNumpy().tolist() if not op.InputsIsNone() else []
            outs = op.OutputsAsNumpy().tolist()

            # parameters: every constant an op reads (a DEQUANTIZE/DENSIFY input is counted at the
            # op that reads its output, through root())
            if name not in _PASS_THROUGH:
                for t in ins:
                    r = root(t) if t >= 0 else None
                    if r is None:
                        continue
                    tt = sg.Tensors(r)
                    n = prod(tt.ShapeAsNumpy().tolist()) if not tt.ShapeIsNone() else 1  # dense shape
                    if type_names[tt.Type()] in _PARAM_TYPES and n > 1:  # scalars are immediates
                        params.add((g, r))
                        elements[(g, r)] = n

            if name not in MAC_OPS:
                continue
            out_elems = prod(shape(outs[0]))
            if name == "CONV_2D":
                # filter [Cout, Kh, Kw, Cin/groups]: each output element is Kh*Kw*(Cin/groups) MACs
                _, kh, kw, cin_g = shape(ins[1])
                macs = out_elems * kh * kw * cin_g
            elif name == "DEPTHWISE_CONV_2D":
                # filter [1, Kh, Kw, Cout]: each output element reads one input channel, Kh*Kw MACs
                _, kh, kw, _ = shape(ins[1])
                macs = out_elems * kh * kw
            elif name == "FULLY_CONNECTED":
                # weights [Nout, K]: each output element is a K-long dot product
                macs = out_elems * shape(ins[1])[-1]
            elif name == "BATCH_MATMUL":
                # x [..., M, K] (or [..., K, M] with adj_x): each output element is K MACs
                opts = s.BatchMatMulOptions()
                table = op.BuiltinOptions()
                adj_x = False
                if table is not None:
                    opts.Init(table.Bytes, table.Pos)
                    adj_x = bool(opts.AdjX())
                xs = shape(ins[0])
                macs = out_elems * (xs[-2] if adj_x else xs[-1])
            elif name == "TRANSPOSE_CONV":
                # inputs (output_shape, weights [Cout, Kh, Kw, Cin], input, [bias]): every input
                # element is scattered into a Kh x Kw patch of each of the Cout output channels
                cout, kh, kw, _ = shape(ins[1])
                macs = prod(shape(ins[2])) * cout * kh * kw
            else:  # mediapipe's Convolution2DTransposeBias: inputs (input, weights [Cout,Kh,Kw,Cin], bias)
                cout, kh, kw, _ = shape(ins[1])
                macs = prod(shape(ins[0])) * cout * kh * kw
            macs_by_op[name] += macs

            # weights of the layer: filter and bias (each root constant once; int32 biases excluded)
            if name == "BATCH_MATMUL":
                weight_inputs = ins[:2]  # either operand may be a constant
            elif name == "TRANSPOSE_CONV":
                weight_inputs = [ins[1], *ins[3:4]]  # weights, optional bias
            else:
                weight_inputs = [ins[1], *ins[2:3]]  # filter, optional bias
            for t in weight_inputs:
                r = root(t) if t >= 0 else None
                if r is None or type_names[sg.Tensors(r).Type()] not in _PARAM_TYPES:
                    continue  # not a constant, or an int32 bias
                # a layer's filter or bias is a parameter even with one element (the bias of a
                # one-channel conv): only other ops' one-element constants are immediates
                tt = sg.Tensors(r)
                elements[(g, r)] = prod(tt.ShapeAsNumpy().tolist()) if not tt.ShapeIsNone() else 1
                params.add((g, r))
                layer_weights.add((g, r))

    # the converter may store identical constants once (several tensors, one buffer): say so, since
    # "counted once" then depends on whether one counts tensors (as here) or buffers
    buffers = Counter(model.Subgraphs(g).Tensors(t).Buffer() for g, t in params)
    sg0 = model.Subgraphs(0)
    inputs = [sg0.Tensors(sg0.Inputs(i)) for i in range(sg0.InputsLength())]
    return {
        "macs": int(sum(macs_by_op.values())),
        "macs_by_op": {k: int(v) for k, v in sorted(macs_by_op.items())},
        "layer_weight_elements": int(sum(elements[k] for k in layer_weights)),
        "param_elements": int(sum(elements[k] for k in params)),
        "ops": dict(sorted(ops.items())),
        "custom_ops": sorted(k for k in ops if k not in _enum_names(s.BuiltinOperator).values()),
        "subgraphs": model.SubgraphsLength(),
        "shared_param_buffers": sum(1 for c in buffers.values() if c > 1),
        "sparse_tensors": sparse_tensors,
        "inputs": {t.Name().decode(): t.ShapeAsNumpy().tolist() for t in inputs},
        "open_inputs": open_inputs(path),
    }


# ----------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------


_MAT_NODES = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _runtime_shapes(model, names: list[str]) -> dict[str, list[int]]:
    """Shapes of the named tensors, observed by running the model once with onnxruntime on zeros.

    For graphs where static shape inference gives up (a detection model's resize computes its output
    size from the input's shape with float arithmetic), the shapes of the actual run are the truth.
    """
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto.FromString(model.SerializeToString())
    del m.graph.value_info[:]
    known = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in dict.fromkeys(names) if n not in known)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        dtype = np.float32 if i.type == "tensor(float)" else np.int64
        feeds[i.name] = np.zeros(i.shape, dtype)  # static input shapes only
    outs = sess.run(None, feeds)
    return {o.name: list(v.shape) for o, v in zip(sess.get_outputs(), outs)}


def onnx_counts(model, prefix: str | None = None, runtime_shapes: bool = False) -> dict:
    """MACs of Conv, ConvTranspose, Gemm and MatMul nodes of an ONNX model (path or ModelProto).

    Shapes come from onnx.shape_inference.infer_shapes(data_prop=True); a node whose shapes are
    not known is listed in `unknown` (and not counted), unless `runtime_shapes`: then the missing
    shapes are observed in one onnxruntime run (_runtime_shapes). A node whose inputs are all
    constants is folded at load time (docs/conventions.md) and not counted. With `prefix`, only
    nodes whose name contains it (e.g. "/backbone/") are counted. Only the main graph is walked
    (no Conv/Gemm/MatMul sits in the If/Loop bodies of the corpus).
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    g = model.graph
    shapes: dict[str, list[int] | None] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        known = vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims)
        shapes[vi.name] = [d.dim_value for d in dims] if known else None
    for t in g.initializer:
        shapes[t.name] = list(t.dims)

    # constants: initializers, Constant outputs, and what is computed only from those
    const = {t.name for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" or (n.input and all(i in const for i in n.input if i)):
            const.update(n.output)

    if runtime_shapes:
        missing = [t for n in g.node if n.op_type in _MAT_NODES for t in n.input[:2] + n.output[:1]
                   if shapes.get(t) is None]  # fmt: skip
        if missing:
            shapes.update(_runtime_shapes(model, missing))

    macs: Counter[str] = Counter()
    unknown = []
    for n in g.node:
        if n.op_type not in _MAT_NODES:
            continue
        if prefix is not None and prefix not in n.name:
            continue
        if all(i in const for i in n.input if i):
            continue  # folded at load time
        a, w, y = shapes.get(n.input[0]), shapes.get(n.input[1]), shapes.get(n.output[0])
        if a is None or w is None or y is None:
            unknown.append(n.name)
            continue
        if n.op_type == "Conv":
            # W [Cout, Cin/groups, k...]: output elements x Cin/groups x prod(k)
            m = prod(y) * prod(w[1:])
        elif n.op_type == "ConvTranspose":
            # W [Cin, Cout/groups, k...]: input elements x Cout/groups x prod(k)
            m = prod(a) * prod(w[1:])
        elif n.op_type == "Gemm":
            trans_a = next((at.i for at in n.attribute if at.name == "transA"), 0)
            m = prod(y) * (a[0] if trans_a else a[1])  # output elements x K
        else:  # MatMul: output elements x K, K = last dim of A (A 1-D: its only dim)
            m = prod(y) * a[-1]
        macs[n.op_type] += m
    return {"macs": int(sum(macs.values())), "macs_by_op": {k: int(v) for k, v in sorted(macs.items())},
            "unknown": unknown, "ops": dict(sorted(Counter(n.op_type for n in g.node).items()))}  # fmt: skip


def onnx_backbone_macs(model, prefix: str = "/backbone/", runtime_shapes: bool = False) -> int:
    """MACs of the nodes of the torch submodule `backbone` (TorchScript export names them .../backbone/...)."""
    return onnx_counts(model, prefix=prefix, runtime_shapes=runtime_shapes)["macs"]
