"""Read a TFLite flatbuffer into the same Graph that ONNX models load into, so that every counting
rule, fusion and roofline applies unchanged.

The file is parsed with the schema bindings that ``ai-edge-litert`` ships (no TensorFlow). Each TFLite
operator becomes the ONNX operator with the same arithmetic (``roofline.ir.tflite_ops``). 4-D activations
are NHWC in TFLite; their shapes are given in ONNX's NCHW order (axes remapped) so the rules read
channels where they expect them. A fused activation (RELU6 in a CONV_2D) is recorded as attribute
``fused_activation``: it costs no MACs and no traffic.

Weights are counted as converters store them:

- a tensor with a buffer is a constant; an operator whose inputs are all constant runs once at load
  time and is folded away (``Graph.folded``), as LiteRT does;
- a DEQUANTIZE or DENSIFY of a constant (fp16 weights of most MediaPipe models, sparse weights) is a
  weight of its consumer at its *stored* element type (fp16 = 2 bytes, int8 = 1) and its dense shape,
  counted once; a sparse weight's share of elements that are not stored is ``Graph.sparsity``;
- element types stay as stored: an int8-quantised model counts 1 byte per weight and activation.

Input dimensions that are -1 in ``shape_signature`` are symbolic: ``input_shapes`` (by input name,
full NHWC shape as stored) sets them and LiteRT's own shape propagation gives every other tensor its
shape; left unset they are an error naming the input. Control flow follows the rules of ONNX's:
IF with a constant condition is its branch, with a run-time one its costlier branch (rows marked
``bound="upper"``); WHILE counts one iteration of its condition and body (``bound="lower"``); CALL and
STABLEHLO_COMPOSITE inline their subgraph; CALL_ONCE runs at initialisation and is folded. A custom
operator without a rule is reported as ``TFLITE_CUSTOM:<custom_code>``.
"""

from __future__ import annotations

import math
import struct
from collections import ChainMap
from collections.abc import Mapping, Sequence

import numpy as np
from onnx import TensorProto

from roofline.dtypes import onnx_itemsize
from roofline.errors import ModelLoadError, RooflineError, ShapeError, did_you_mean
from roofline.ir import Graph, Node, Tensor, litert
from roofline.ir.checks import MAX_TENSOR_ELEMS
from roofline.ir.tflite_ops import ACTIVATIONS, CONTROL_FLOW, OpContext, translate

__all__ = ["load_tflite"]

_ELEM = {0: TensorProto.FLOAT, 1: TensorProto.FLOAT16, 2: TensorProto.INT32, 3: TensorProto.UINT8,
         4: TensorProto.INT64, 5: TensorProto.STRING, 6: TensorProto.BOOL, 7: TensorProto.INT16,
         8: TensorProto.COMPLEX64, 9: TensorProto.INT8, 10: TensorProto.DOUBLE, 11: TensorProto.COMPLEX128,
         12: TensorProto.UINT64, 15: TensorProto.UINT32, 16: TensorProto.UINT16, 17: TensorProto.INT4,
         18: TensorProto.BFLOAT16, 20: TensorProto.UINT4}  # fmt: skip
_NP = {TensorProto.INT32: np.int32, TensorProto.INT64: np.int64, TensorProto.FLOAT: np.float32,
       TensorProto.BOOL: np.bool_}  # fmt: skip
_NCHW = (0, 3, 1, 2)  # NCHW axis i holds NHWC axis _NCHW[i]
# operators whose output is their input's values in another storage (fp16/int8 -> fp32, sparse -> dense):
# of a constant, the consumer reads the stored tensor
_STORAGE = {"DEQUANTIZE", "DENSIFY"}
# operators that are never folded, whatever their inputs
_STATEFUL = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL",
             "MULTINOMIAL", "CALL_ONCE", "WHILE", "IF", "CALL", "STABLEHLO_WHILE", "STABLEHLO_CASE",
             "STABLEHLO_COMPOSITE", "STABLEHLO_RNG_BIT_GENERATOR", "CUSTOM"}  # fmt: skip
_MAX_DEPTH = 16  # nesting of control flow


def load_tflite(data: bytes, where: str = "<bytes>", input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """A TFLite model as a Graph (see the module docstring)."""
    schema = litert.schema()
    if not litert.is_tflite(data):
        raise ModelLoadError(f"{where}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises anything on a damaged file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(f"{where}: damaged TFLite flatbuffer ({type(exc).__name__}: {detail})") from None
    if not model.subgraphs:
        raise ModelLoadError(f"{where}: the TFLite model has no subgraph")
    reader = _Reader(model, schema, data, where)
    try:
        shapes = reader.input_shapes(input_shapes)
        return reader.graph(
            litert.resized_shapes(data, shapes, len(model.subgraphs[0].tensors or []), where) if shapes else {}
        )
    # The reader checks what it reads (indices, buffers, option types), but a flatbuffer that decodes can still
    # hold a field of the wrong kind somewhere we do not look (None for a vector, a huge integer): one line
    # naming the file, not a traceback. Roofline's own errors pass through with their message.
    except (IndexError, KeyError, TypeError, AttributeError, UnicodeDecodeError, OverflowError, struct.error) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(
            f"{where}: corrupt or unsupported TFLite model ({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None


def _text(value, default: str = "") -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else default


class _Reader:
    """Turns the subgraphs of one model into Graph nodes, inlining control flow."""

    def __init__(self, model, schema, data: bytes, where: str):
        self.model, self.schema, self.data, self.where = model, schema, data, where
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self.ops = []  # (builtin name, custom code) per operator code
        for c in model.operatorCodes or []:
            code = max(c.builtinCode or 0, c.deprecatedBuiltinCode or 0)
            self.ops.append((names.get(code, f"CODE{code}"), _text(c.customCode, "?")))
        self.buffers = model.buffers or []
        self.tensors: dict[str, Tensor] = {}
        self.values: dict[str, np.ndarray] = {}
        self.sparsity: dict[str, float] = {}
        self.folded: list[str] = []

    def fail(self, message: str):
        raise ModelLoadError(f"{self.where}: {message}")

    # ---- inputs ------------------------------------------------------------------------------------
    def input_shapes(self, given: Mapping[str, Sequence[int]] | None) -> dict[int, tuple[int, ...]]:
        """Tensor index -> NHWC shape of every primary input that must be resized; checks ``given``."""
        sub = self.model.subgraphs[0]
        raw = sub.tensors or []
        inputs = {}
        for i in sub.inputs if sub.inputs is not None else []:
            if not 0 <= i < len(raw):
                self.fail(f"subgraph 0 names input tensor {i}, which does not exist")
            inputs[_text(raw[i].name, f"tensor_{i}")] = i
        aliases = {}  # signature input keys ("input_1") -> tensor names ("serving_default_input_1:0")
        for sig in self.model.signatureDefs or []:
            for m in sig.inputs or []:
                for name, i in inputs.items():
                    if i == m.tensorIndex and _text(m.name) and _text(m.name) not in inputs:
                        aliases[_text(m.name)] = name
        given = dict(given or {})
        out: dict[int, tuple[int, ...]] = {}
        for key, value in given.items():
            name = aliases.get(key, key)
            if name not in inputs:
                raise ShapeError(
                    f"input_shapes names {key!r}, which is not an input of the TFLite model; inputs: "
                    f"{list(inputs)} (TFLite dimensions have no names: give each input's whole NHWC shape)"
                    + did_you_mean(key, [*inputs, *aliases])
                )
            t = raw[inputs[name]]
            try:
                shape = tuple(int(d) for d in (value if isinstance(value, (list, tuple)) else [value]))
            except (TypeError, ValueError):
                raise ShapeError(f"input_shapes[{key!r}] must be a sequence of integers, got {value!r}") from None
            stored = [int(d) for d in t.shape] if t.shape is not None else []
            if len(shape) != len(stored):
                raise ShapeError(
                    f"input_shapes[{key!r}] has rank {len(shape)}, but the model input has rank {len(stored)} "
                    f"({'x'.join(map(str, stored))}, NHWC as stored)"
                )
            if any(d <= 0 or d > MAX_TENSOR_ELEMS for d in shape):
                raise ShapeError(f"input {name!r}: every dimension must be positive and sane, got {list(shape)}")
            if shape != tuple(stored):
                out[inputs[name]] = shape
        named = {aliases.get(k, k) for k in given}
        for name, i in inputs.items():
            sig = [int(d) for d in raw[i].shapeSignature] if raw[i].shapeSignature is not None else []
            stored = [int(d) for d in raw[i].shape] if raw[i].shape is not None else []
            if 0 in stored and name not in named and -1 not in sig:  # zero is a size, not "dynamic"
                example = tuple(d or 1 for d in stored)
                raise ShapeError(
                    f"{self.where}: input {name!r} has a zero-size dimension at position {stored.index(0)} (shape "
                    f"{'x'.join(map(str, stored))}, NHWC): a tensor without elements has nothing to count; set a "
                    f"positive size with input_shapes={{{name!r}: {example}}}"
                )
            if -1 in sig and name not in named:
                shape = "x".join("?" if d < 0 else str(d) for d in sig)
                pos = sig.index(-1)
                example = tuple(224 if d < 0 and p else (1 if d < 0 else d) for p, d in enumerate(sig))
                raise ShapeError(
                    f"input {name!r} has an unnamed dynamic dimension at position {pos} (shape {shape}, NHWC); "
                    f"set it with input_shapes={{{name!r}: {example}}} "
                    f"(command line: --input-shape {name}={'x'.join(map(str, example))})"
                )
        return out

    # ---- tensors -----------------------------------------------------------------------------------
    def _stored(self, t) -> bool:
        """True when a tensor has data in the file (a constant)."""
        b = t.buffer or 0
        if not 0 <= b < max(len(self.buffers), 1):
            self.fail(f"tensor {_text(t.name)!r} names buffer {b}, which does not exist")
        buf = self.buffers[b] if self.buffers else None
        return buf is not None and (buf.data is not None and len(buf.data) > 0 or (buf.offset or 0) > 1)

    def _tensor(self, t, name: str, const: bool, stored: bool, shape: tuple[int, ...] | None) -> Tensor:
        """One tensor; a 4-D activation's shape in NCHW order."""
        shape = shape if shape is not None else tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise ShapeError(f"{self.where}: tensor {name!r} has a negative dimension ({list(shape)})")
        numel = math.prod(shape)
        if numel > MAX_TENSOR_ELEMS:
            raise ShapeError(
                f"{self.where}: tensor {name!r} has {numel:.3g} elements ({list(shape)}): not a real model"
            )
        elem = _ELEM.get(t.type, TensorProto.UNDEFINED)
        if stored:
            buf = self.buffers[t.buffer or 0]
            self._check_buffer(t, buf, name, shape, elem)
            if buf.data is not None and elem in _NP and numel <= 64 and t.sparsity is None:
                self.values[name] = np.frombuffer(bytes(buf.data), dtype=_NP[elem]).reshape(shape)
        if len(shape) == 4 and not const:
            shape = tuple(shape[a] for a in _NCHW)
        return Tensor(name, shape, elem, const)

    def _check_buffer(self, t, buf, name: str, shape: tuple[int, ...], elem: int) -> None:
        numel = math.prod(shape)
        size = len(buf.data) if buf.data is not None else (buf.size or 0)
        item = onnx_itemsize(elem)
        if t.sparsity is not None:  # only the stored values (and their indices): the share not stored
            if item and size > numel * item:
                raise ShapeError(f"{self.where}: sparse tensor {name!r} stores more values than its dense shape holds")
            self.sparsity[name] = 1.0 - size / item / numel if item and numel else 0.0
            return
        if elem in (TensorProto.STRING, TensorProto.UNDEFINED):
            return
        need = math.ceil(numel * item)
        if size != need:
            raise ShapeError(
                f"{self.where}: constant tensor {name!r} has shape {list(shape)} ({need} bytes) but "
                f"its buffer holds {size} bytes"
            )

    # ---- subgraphs ---------------------------------------------------------------------------------
    def graph(self, runtime_shapes: dict[int, tuple[int, ...]]) -> Graph:
        sub = self.model.subgraphs[0]
        names: dict[int, str] = {}
        nodes = self.subgraph(0, {}, "", "", runtime_shapes, (), names)
        return Graph(
            name=_text(sub.name, "tflite") or "tflite",
            nodes=nodes,
            tensors=self.tensors,
            inputs=[names[i] for i in sub.inputs if i in names] if sub.inputs is not None else [],
            outputs=[names[i] for i in sub.outputs if i in names] if sub.outputs is not None else [],
            folded=self.folded,
            opset=0,
            values=self.values,
            sparsity=self.sparsity,
        )

    def subgraph(self, si, bind, prefix, bound, runtime_shapes, stack, names=None) -> list[Node]:
        """The nodes of subgraph ``si``, its tensors ``bind`` (index -> name) bound to the caller's tensors."""
        if not 0 <= si < len(self.model.subgraphs):
            self.fail(f"an operator calls subgraph {si}, which does not exist")
        if si in stack or len(stack) >= _MAX_DEPTH:
            self.fail(f"subgraph {si} calls itself (control flow nested {len(stack)} deep)")
        sub = self.model.subgraphs[si]
        raw = sub.tensors or []
        ops = sub.operators or []

        def idx(i: int, k: int) -> int:
            if i >= len(raw):
                self.fail(f"operator {k} of subgraph {si} names tensor {i}, which does not exist")
            return i

        # constants: stored tensors, and the outputs of operators that read only constants (run at load time)
        stored = {i for i, t in enumerate(raw) if i not in bind and self._stored(t)}
        const = set(stored) | {i for i, n in bind.items() if self.tensors[n].const}
        folded: set[int] = set()
        storage: dict[int, int] = {}  # a folded DEQUANTIZE/DENSIFY output -> the stored tensor it re-types
        for k, op in enumerate(ops):
            if not 0 <= op.opcodeIndex < len(self.ops):
                self.fail(f"operator {k} of subgraph {si} has opcode index {op.opcodeIndex}, which does not exist")
            ins = [idx(i, k) for i in (op.inputs if op.inputs is not None else []) if i >= 0]
            outs = [idx(i, k) for i in (op.outputs if op.outputs is not None else []) if i >= 0]
            builtin = self.ops[op.opcodeIndex][0]
            if builtin not in _STATEFUL and outs and all(i in const for i in ins):
                folded.add(k)
                const.update(outs)
                if builtin in _STORAGE and ins:
                    storage.update((o, storage.get(ins[0], ins[0])) for o in outs)
        names = {} if names is None else names
        seen: set[str] = set()
        for i, t in enumerate(raw):
            if i in bind:
                names[i] = bind[i]
                continue
            name = prefix + (_text(t.name) or f"tensor_{i}")
            if name in seen or name in self.tensors:  # converters may repeat a name: keep tensors apart
                name = f"{name}#{i}"
            seen.add(name)
            names[i] = name
        for i, t in enumerate(raw):
            if i not in bind and i not in storage:
                self.tensors[names[i]] = self._tensor(t, names[i], i in const, i in stored, runtime_shapes.get(i))
        for o, src in storage.items():  # consumers read the stored tensor, at the dense shape
            s = self.tensors[names[src]]
            shape = runtime_shapes.get(o) or tuple(int(d) for d in (raw[o].shape if raw[o].shape is not None else ()))
            self.tensors[names[o]] = Tensor(s.name, shape, s.elem_type, True)
            if s.name in self.sparsity:
                self.sparsity[names[o]] = self.sparsity[s.name]
        four_d = {n for n in names.values() if len(self.tensors[n].shape or ()) == 4 and not self.tensors[n].const}

        nodes: list[Node] = []
        for k, op in enumerate(ops):
            builtin, custom = self.ops[op.opcodeIndex]
            ins = [names[i] if i >= 0 else None for i in (op.inputs if op.inputs is not None else [])]
            outs = [names[i] for i in (op.outputs if op.outputs is not None else []) if i >= 0]
            node_name = f"{prefix}{builtin.lower()}_{k}:{outs[0] if outs else ''}"
            if k in folded:
                self.folded.append(node_name)
                continue
            opts = op.builtinOptions if op.builtinOptions is not None else op.builtinOptions2
            if builtin in CONTROL_FLOW:
                nodes += self._control(builtin, opts, ins, outs, node_name, bound, stack + (si,))
                continue
            custom_options = None
            if builtin == "CUSTOM":
                custom_options = bytes(op.customOptions) if op.customOptions is not None else b""
                if op.largeCustomOptionsSize:
                    start = op.largeCustomOptionsOffset or 0
                    custom_options = self.data[start : start + op.largeCustomOptionsSize]
            local = ChainMap({}, self.tensors)  # a translation re-lays weights for this operator only
            ctx = OpContext(builtin, opts, ins, outs, local, four_d, self.values, custom, custom_options)
            try:
                op_type, attrs, node_ins = translate(ctx)
            except (AttributeError, TypeError, IndexError, KeyError, ValueError, ZeroDivisionError) as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                kind = "" if isinstance(exc, RooflineError) else f"{type(exc).__name__}: "  # ours: already says what
                self.fail(f"operator {node_name!r} ({builtin}) is malformed: {kind}{detail}")
            for key, value in local.maps[0].items():
                self.tensors.setdefault(key, value)
            act = getattr(opts, "fusedActivationFunction", 0) if opts is not None else 0
            if act:
                attrs["fused_activation"] = ACTIVATIONS.get(act, str(act))
            inputs = tuple(local.get(n) if n else None for n in node_ins)
            outputs = tuple(self.tensors[n] for n in outs)
            nodes.append(Node(node_name, op_type, "", attrs, inputs, outputs, bound=bound))
        return nodes

    def _control(self, builtin, opts, ins, outs, node_name, bound, stack) -> list[Node]:
        """Inline a control-flow operator's subgraphs (see the module docstring)."""
        if builtin == "CALL_ONCE":  # initialisation: runs once per interpreter, not per inference
            self.folded.append(node_name)
            return []
        if opts is None:
            self.fail(f"operator {node_name!r} ({builtin}) has no options naming its subgraphs")
        try:
            if builtin in ("WHILE", "STABLEHLO_WHILE"):
                parts = [(opts.condSubgraphIndex, ins, []), (opts.bodySubgraphIndex, ins, outs)]
                return self._inline(parts, node_name, "lower" if bound != "upper" else bound, stack)
            if builtin in ("CALL", "STABLEHLO_COMPOSITE"):
                si = opts.subgraph if builtin == "CALL" else opts.decompositionSubgraphIndex
                return self._inline([(si, ins, outs)], node_name, bound, stack)
            branches = (
                [opts.thenSubgraphIndex, opts.elseSubgraphIndex]
                if builtin == "IF"
                else list(opts.branchSubgraphIndices)
            )
        except (AttributeError, TypeError) as exc:
            self.fail(f"operator {node_name!r} ({builtin}) has options of another operator ({exc})")
        cond = ins[0] if ins else None
        value = self.values.get(cond) if cond else None
        if value is not None and value.size == 1:  # a constant condition: its branch, exactly
            pick = (0 if bool(value.reshape(-1)[0]) else 1) if builtin == "IF" else int(value.reshape(-1)[0])
            pick = min(max(pick, 0), len(branches) - 1)
            return self._inline([(branches[pick], ins[1:], outs)], node_name, bound, stack)
        options = [self._inline([(b, ins[1:], outs)], f"{node_name}/branch{j}", "upper", stack, dry=True)
                   for j, b in enumerate(branches)]  # fmt: skip
        costs = [_cost(nodes) for nodes in options]
        pick = max(range(len(options)), key=lambda j: costs[j])
        return self._inline([(branches[pick], ins[1:], outs)], node_name, "upper", stack)

    def _inline(self, parts, node_name, bound, stack, dry=False) -> list[Node]:
        if dry:  # price a branch without keeping its tensors
            saved = (dict(self.tensors), dict(self.values), dict(self.sparsity), list(self.folded))
        nodes: list[Node] = []
        for si, ins, outs in parts:
            if not 0 <= si < len(self.model.subgraphs):
                self.fail(f"operator {node_name!r} calls subgraph {si}, which does not exist")
            sub = self.model.subgraphs[si]
            bind = {}
            for pos, i in enumerate(sub.inputs if sub.inputs is not None else []):
                if pos < len(ins) and ins[pos]:
                    bind[i] = ins[pos]
            for pos, i in enumerate(sub.outputs if sub.outputs is not None else []):
                if pos < len(outs) and outs[pos] and i not in bind:
                    bind[i] = outs[pos]
            nodes += self.subgraph(si, bind, f"{node_name}/", bound, {}, stack)
        if dry:
            self.tensors, self.values, self.sparsity, self.folded = saved
        return nodes


def _cost(nodes: list[Node]) -> tuple[int, int]:
    """(MACs, bytes moved) of a branch, to pick the costlier one."""
    from roofline.ops import rule_for

    macs = moved = 0
    for node in nodes:
        rule = rule_for(node)
        if rule is None:
            continue
        try:
            c = rule(node)
        except Exception:  # noqa: BLE001 - a branch that cannot be priced is not the costlier one
            continue
        macs += c.macs
        moved += sum(e * t.itemsize for t, e in (*c.reads, *c.writes))
    return macs, moved
