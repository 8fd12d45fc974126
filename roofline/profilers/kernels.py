"""Kernels: the distinct layer configurations of models, as readable reversible keys and as
single-layer ONNX models to measure (the lookup-table approach of FBNet / ProxylessNAS / nn-Meter).

Keys (strict, round-trip tested):

- ``conv_k3_s2_i32_o64_h112_w112_fp32``   dense k x k convolution, input 32 x 112 x 112
- ``pwconv_s1_i32_o64_h56_w56_fp32``      1 x 1 convolution
- ``dwconv_k5_s2_c96_h56_w56_fp32``       depthwise convolution
- ``gconv_k3_s1_i64_o64_g4_h28_w28_fp32`` grouped convolution
- ``gemm_m1_k1280_n1000_fp32``            fully connected layer (M x K times K x N)

Every other layer gets a *generic* key that spells out its ONNX nodes, enough to rebuild it::

    layer  := node ("+" node)* "_" precision
    node   := OpType "(" [arg ("," arg)*] [";" attr ("," attr)*] ")" ["*" outputs]
    arg    := dims        an activation (float), e.g. 1x197x192 ("s" for a scalar)
            | "w" dims    a float weight (random values)
            | "#i" ints   an int64 constant, e.g. #i[0:2:1:3] (1-D) or #i2 (scalar)
            | "#f" float  a float scalar constant, e.g. #f6.0
            | "%" k       the first output of node k of this layer
            | "~"         an absent optional input
    attr   := name "=" ("i" ints | "f" floats | "s" text), lists ":"-separated

e.g. ``Softmax(1x3x197x197;axis=i-1)_fp32`` or ``MatMul(1x197x192,w192x576)+Add(w576,%0)_fp32``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from roofline.errors import InvalidParameterError
from roofline.ops.conv import same_output_size, same_padding

__all__ = ["Kernel", "encode", "decode", "kernels_of", "kernel_model", "layer_key", "is_generic", "sample_kernels"]

_FIELDS = {
    "conv": ("k", "s", "i", "o", "h", "w"),
    "pwconv": ("s", "i", "o", "h", "w"),
    "dwconv": ("k", "s", "c", "h", "w"),
    "gconv": ("k", "s", "i", "o", "g", "h", "w"),
    "gemm": ("m", "k", "n"),
}
_PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Kernel:
    kind: str
    params: tuple[tuple[str, int], ...]
    precision: str = "fp32"

    def __getitem__(self, name: str) -> int:
        return dict(self.params)[name]


def encode(k: Kernel) -> str:
    return "_".join([k.kind, *(f"{n}{v}" for n, v in k.params), k.precision])


def is_generic(key: str) -> bool:
    return "(" in key


def decode(key: str) -> Kernel:
    """Parse a structured kernel key; anything but the exact grammar above is an error naming the part."""
    if is_generic(key):
        raise InvalidParameterError(f"kernel key {key!r} is a generic layer key; see parse_layer()")
    parts = key.split("_")
    kind, fields = parts[0], _FIELDS.get(parts[0])
    if fields is None:
        raise InvalidParameterError(f"kernel key {key!r}: unknown kind {kind!r}; known: {', '.join(_FIELDS)}")
    if len(parts) != len(fields) + 2 or parts[-1] not in _PRECISIONS:
        expected = "_".join([kind, *(f"{f}N" for f in fields), "|".join(_PRECISIONS)])
        raise InvalidParameterError(f"kernel key {key!r}: expected {expected}")
    params = []
    for field, part in zip(fields, parts[1:-1]):
        m = re.fullmatch(rf"{field}([1-9][0-9]*)", part)
        if not m:
            raise InvalidParameterError(f"kernel key {key!r}: part {part!r} should be {field} and a positive number")
        params.append((field, int(m.group(1))))
    return Kernel(kind, tuple(params), parts[-1])


def sample_kernels(n: int, seed: int = 0, precision: str = "fp32",
                   kinds: tuple[str, ...] = ("conv", "pwconv", "dwconv", "gemm")) -> list[str]:  # fmt: skip
    """``n`` distinct structured keys drawn from MobileNet-like ranges: channels 8-960 (multiples of 8),
    inputs 7-112, kernels 3/5/7, strides 1/2; fully connected 1 x 64-1280 x 10-1280."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    sizes = (7, 14, 28, 56, 112)
    while len(out) < n:
        kind = kinds[rng.integers(len(kinds))]
        c = lambda lo=8, hi=960: int(rng.integers(lo // 8, hi // 8 + 1)) * 8  # noqa: E731
        h = int(rng.choice(sizes))
        s, k = int(rng.choice((1, 1, 2))), int(rng.choice((3, 5, 7)))
        params = {
            "conv": (("k", 3), ("s", s), ("i", c(8, 64)), ("o", c(16, 128)), ("h", max(h, 28)), ("w", max(h, 28))),
            "pwconv": (("s", 1), ("i", c()), ("o", c()), ("h", h), ("w", h)),
            "dwconv": (("k", k), ("s", s), ("c", c()), ("h", h), ("w", h)),
            "gemm": (("m", 1), ("k", c(64, 1280)), ("n", c(16, 1280))),
        }[kind]
        out[encode(Kernel(kind, params, precision))] = None
    return list(out)


def _conv_kernel(node, precision: str) -> Kernel | None:
    x, w = node.inputs[0], node.inputs[1]
    if len(x.shape) != 4 or node.attr("dilations", [1, 1]) not in ([1, 1], (1, 1)):
        return None
    cin, h, wd = x.shape[1:]
    cout, k, kw = w.shape[0], w.shape[2], w.shape[3]
    s = node.attr("strides", [1, 1])[0]
    g = node.attr("group", 1)
    if k != kw or node.attr("strides", [1, 1])[1] != s:
        return None
    if g == 1 and k == 1:
        return Kernel("pwconv", (("s", s), ("i", cin), ("o", cout), ("h", h), ("w", wd)), precision)
    if g == 1:
        return Kernel("conv", (("k", k), ("s", s), ("i", cin), ("o", cout), ("h", h), ("w", wd)), precision)
    if g == cin == cout:
        return Kernel("dwconv", (("k", k), ("s", s), ("c", cin), ("h", h), ("w", wd)), precision)
    return Kernel("gconv", (("k", k), ("s", s), ("i", cin), ("o", cout), ("g", g), ("h", h), ("w", wd)), precision)


def _dims(shape) -> str:
    return "x".join(map(str, shape)) if shape else "s"


def _num(v) -> str:
    return repr(float(v)) if isinstance(v, float | np.floating) else str(int(v))


def _const_arg(value: np.ndarray) -> str | None:
    if value.dtype.kind in "iu" and value.ndim <= 1:
        return "#i" + (_num(value) if value.ndim == 0 else "[" + ":".join(map(_num, value.tolist())) + "]")
    if value.dtype.kind == "f" and value.ndim == 0:
        return "#f" + _num(value.item())
    return None


def _attr_text(name: str, v) -> str | None:
    if isinstance(v, bool | int | np.integer):
        return f"{name}=i{int(v)}"
    if isinstance(v, float):
        return f"{name}=f{_num(v)}"
    if isinstance(v, str) and v and not set(v) & set("(),;=+_:"):
        return f"{name}=s{v}"
    if isinstance(v, list | tuple) and v and all(isinstance(x, int) for x in v):
        return f"{name}=i" + ":".join(map(str, v))
    if isinstance(v, list | tuple) and v and all(isinstance(x, float) for x in v):
        return f"{name}=f" + ":".join(map(_num, v))
    return None


def layer_key(graph, member_names, precision: str = "fp32") -> str | None:
    """The generic key of a layer (its nodes by name, anchor first), or None when it cannot be rebuilt
    alone (non-float activations, a constant too large to spell out, subgraph attributes)."""
    by_name = {n.name: n for n in graph.nodes}
    nodes = [by_name[m] for m in member_names]
    made = {t.name: k for k, n in enumerate(nodes) for t in n.outputs[:1]}
    parts = []
    for node in nodes:
        if node.domain not in ("", "ai.onnx"):
            return None
        args = []
        for t in node.inputs:
            if t is None:
                args.append("~")
            elif t.name in made:
                args.append(f"%{made[t.name]}")
            elif t.shape is None:
                return None
            elif t.name in graph.values:
                arg = _const_arg(graph.values[t.name])
                if arg is None and graph.values[t.name].dtype.kind == "f":
                    arg = "w" + _dims(t.shape)
                if arg is None:
                    return None
                args.append(arg)
            elif t.elem_type != TensorProto.FLOAT:
                return None
            else:
                args.append(("w" if t.const else "") + _dims(t.shape))
        attrs = [_attr_text(k, v) for k, v in sorted(node.attrs.items())]
        if None in attrs:
            return None
        outs = f"*{len(node.outputs)}" if len(node.outputs) > 1 else ""
        parts.append(f"{node.op_type}({','.join(args)}{';' if attrs else ''}{','.join(attrs)}){outs}")
    return "+".join(parts) + f"_{precision}"


def _parse_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(":")] if text else []


def _parse_attr(text: str):
    name, _, value = text.partition("=")
    kind, body = value[:1], value[1:]
    if kind == "i":
        ints = _parse_ints(body)
        return name, ints if ":" in body or name in _LIST_ATTRS else ints[0]
    if kind == "f":
        floats = [float(x) for x in body.split(":")]
        return name, floats if ":" in body or name in _LIST_ATTRS else floats[0]
    if kind == "s":
        return name, body
    raise InvalidParameterError(f"attribute {text!r}: the value must start with i, f or s")


# attributes that are lists even when they hold a single value
_LIST_ATTRS = {"perm", "axes", "pads", "strides", "kernel_shape", "dilations", "split", "starts", "ends", "scales",
               "sizes", "output_padding", "output_shape"}  # fmt: skip
_NODE = re.compile(r"([A-Za-z][A-Za-z0-9]*)\((.*?)\)(?:\*([0-9]+))?")


def parse_layer(key: str) -> tuple[list[tuple[str, list[str], dict, int]], str]:
    """Split a generic key into its nodes (op type, args, attrs, outputs) and precision."""
    body, _, precision = key.rpartition("_")
    if not body or precision not in _PRECISIONS:
        raise InvalidParameterError(f"layer key {key!r}: expected nodes then _fp32|_fp16|_int8")
    nodes = []
    for text in body.split("+"):
        m = _NODE.fullmatch(text)
        if not m:
            raise InvalidParameterError(f"layer key {key!r}: cannot read node {text!r}")
        op, inner, outs = m.groups()
        args, _, attrs = inner.partition(";")
        nodes.append((op, args.split(",") if args else [], dict(map(_parse_attr, attrs.split(","))) if attrs else {},
                      int(outs or 1)))  # fmt: skip
    return nodes, precision


def _generic_model(key: str, rng) -> onnx.ModelProto:
    nodes, precision = parse_layer(key)
    if precision != "fp32":
        raise InvalidParameterError(f"layer key {key!r}: only fp32 layers can be built for onnxruntime yet")
    inputs, inits, protos, consumed = [], [], [], set()
    for k, (op, args, attrs, n_out) in enumerate(nodes):
        names = []
        for j, arg in enumerate(args):
            name = f"n{k}_in{j}"
            if arg == "~":
                name = ""
            elif arg.startswith("%"):
                name = f"n{int(arg[1:])}_out0"
                consumed.add(name)
            elif arg.startswith("#i"):
                body = arg[2:]
                value = np.array(_parse_ints(body[1:-1]) if body.startswith("[") else int(body), np.int64)
                inits.append(numpy_helper.from_array(value, name))
            elif arg.startswith("#f"):
                inits.append(numpy_helper.from_array(np.array(float(arg[2:]), np.float32), name))
            elif arg.startswith("w"):
                shape = _parse_shape(arg[1:], key)
                inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name))
            else:
                inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, _parse_shape(arg, key)))
            names.append(name)
        outs = [f"n{k}_out{j}" for j in range(n_out)]
        protos.append(helper.make_node(op, names, outs, name=f"n{k}", **attrs))
    outputs = [o for p in protos for o in p.output if o not in consumed]
    for opset in (17, 18, 21, 13, 11):
        graph = helper.make_graph(protos, key[:64], inputs,
                                  [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
                                  inits)  # fmt: skip
        opsets = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name="roofline-kernels")
        model.ir_version = 8
        try:
            model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
            if all(o.type.tensor_type.elem_type for o in model.graph.output):
                onnx.checker.check_model(model)
                return model
        except Exception:  # noqa: BLE001 - the op's signature of another opset: try the next
            continue
    raise InvalidParameterError(f"layer key {key!r}: no ONNX opset accepts these nodes")


def _parse_shape(text: str, key: str) -> list[int]:
    if text == "s":
        return []
    try:
        return [int(d) for d in text.split("x")]
    except ValueError:
        raise InvalidParameterError(f"layer key {key!r}: {text!r} is not a shape such as 1x64x56x56") from None


def kernels_of(model, precision: str = "fp32", style: str = "structured") -> dict[str, str]:
    """Distinct kernel keys of a model's runtime-fused layers: {key: first layer name using it}.

    ``style="structured"`` keys convolutions and fully connected layers by their configuration (the
    rest are left to the calibrated roofline); ``"generic"`` keys every layer that can be rebuilt
    alone by its exact nodes, epilogue included.
    """
    out: dict[str, str] = {}
    for name, key in layer_keys(model, precision, style).items():
        if key is not None:
            out.setdefault(key, name)
    return out


def layer_keys(model, precision: str = "fp32", style: str = "generic") -> dict[str, str | None]:
    """Kernel key of every runtime-fused layer of a model: {layer name: key or None} (see kernels_of)."""
    import roofline
    from roofline.errors import check_choice
    from roofline.ir import Graph

    check_choice(style, ("structured", "generic"), "style")
    graph = model if isinstance(model, Graph) else roofline.load_graph(model)
    table = roofline.count(graph, fuse="runtime", on_unknown="report")  # an op without a rule is still measured
    by_name = {n.name: n for n in graph.nodes}
    out: dict[str, str | None] = {}
    for name, op, members in zip(table["name"], table["op_type"], table["nodes"]):
        node = by_name[name]
        kernel = None
        if style == "generic":
            out[name] = layer_key(graph, members, precision)
            continue
        if op == "Conv":
            kernel = _conv_kernel(node, precision)
        elif op == "Gemm" and not node.attr("transA", 0) and len(node.inputs[0].shape) == 2:
            m, k = node.inputs[0].shape
            kernel = Kernel("gemm", (("m", m), ("k", k), ("n", node.outputs[0].shape[1])), precision)
        out[name] = encode(kernel) if kernel is not None else None
    return out


def kernel_model(key: str, seed: int = 0) -> onnx.ModelProto:
    """A single-layer ONNX model for a kernel key. Structured keys: the layer with a bias and a ReLU
    (as runtimes fuse them), random weights, same padding. Generic keys: the nodes they spell out."""
    rng = np.random.default_rng(seed)
    if is_generic(key):
        return _generic_model(key, rng)
    k = decode(key)
    if k.precision != "fp32":
        raise InvalidParameterError(f"kernel key {key!r}: only fp32 kernels can be built for onnxruntime yet")
    if k.kind == "gemm":
        x_shape, out_shape = (k["m"], k["k"]), (k["m"], k["n"])
        w = (rng.standard_normal((k["n"], k["k"])) / np.sqrt(k["k"])).astype(np.float32)
        op = helper.make_node("Gemm", ["x", "w", "b"], ["y0"], transB=1)
        bias = np.zeros(k["n"], np.float32)
    else:
        cin = k["c"] if k.kind == "dwconv" else k["i"]
        cout = k["c"] if k.kind == "dwconv" else k["o"]
        groups = {"dwconv": cin, "gconv": k["g"] if k.kind == "gconv" else 1}.get(k.kind, 1)
        ks = 1 if k.kind == "pwconv" else k["k"]
        s = k["s"]
        x_shape = (1, cin, k["h"], k["w"])
        ho, wo = (same_output_size(d, ks, s) for d in (k["h"], k["w"]))
        out_shape = (1, cout, ho, wo)
        w = (rng.standard_normal((cout, cin // groups, ks, ks)) / np.sqrt(cin // groups * ks * ks)).astype(np.float32)
        op = helper.make_node("Conv", ["x", "w", "b"], ["y0"], kernel_shape=[ks, ks], strides=[s, s],
                              pads=[same_padding(ks)] * 4, group=groups)  # fmt: skip
        bias = np.zeros(cout, np.float32)
    graph = helper.make_graph(
        [op, helper.make_node("Relu", ["y0"], ["y"])],
        key,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="roofline-kernels")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
