"""Kernels: the distinct layer configurations of models, as readable reversible keys and as
single-layer ONNX models to measure (the lookup-table approach of FBNet / ProxylessNAS / nn-Meter).

Keys (strict, round-trip tested):

- ``conv_k3_s2_i32_o64_h112_w112_fp32``   dense k x k convolution, input 32 x 112 x 112
- ``pwconv_s1_i32_o64_h56_w56_fp32``      1 x 1 convolution
- ``dwconv_k5_s2_c96_h56_w56_fp32``       depthwise convolution
- ``gconv_k3_s1_i64_o64_g4_h28_w28_fp32`` grouped convolution
- ``gemm_m1_k1280_n1000_fp32``            fully connected layer (M x K times K x N)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from roofline.errors import InvalidParameterError

__all__ = ["Kernel", "encode", "decode", "kernels_of", "kernel_model"]

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


def decode(key: str) -> Kernel:
    """Parse a kernel key; anything but the exact grammar above is an error naming the part."""
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


def kernels_of(model, precision: str = "fp32") -> dict[str, str]:
    """Distinct kernel keys of a model's runtime-fused layers: {key: first layer name using it}.

    Only layers with MACs that have a kernel kind (conv family, fully connected) are keyed; the rest
    are left to the calibrated roofline.
    """
    import roofline

    graph = roofline.load_graph(model)
    table = roofline.count(graph, fuse="runtime")
    by_name = {n.name: n for n in graph.nodes}
    out: dict[str, str] = {}
    for name, op in zip(table["name"], table["op_type"]):
        node = by_name[name]
        kernel = None
        if op == "Conv":
            kernel = _conv_kernel(node, precision)
        elif op == "Gemm" and not node.attr("transA", 0) and len(node.inputs[0].shape) == 2:
            m, k = node.inputs[0].shape
            kernel = Kernel("gemm", (("m", m), ("k", k), ("n", node.outputs[0].shape[1])), precision)
        if kernel is not None:
            out.setdefault(encode(kernel), name)
    return out


def kernel_model(key: str, seed: int = 0) -> onnx.ModelProto:
    """A single-layer ONNX model for a kernel key: the layer with a bias and a ReLU (as runtimes fuse
    them), random weights, same padding."""
    k = decode(key)
    rng = np.random.default_rng(seed)
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
        ho, wo = ((d + 2 * (ks // 2) - ks) // s + 1 for d in (k["h"], k["w"]))
        out_shape = (1, cout, ho, wo)
        w = (rng.standard_normal((cout, cin // groups, ks, ks)) / np.sqrt(cin // groups * ks * ks)).astype(np.float32)
        op = helper.make_node("Conv", ["x", "w", "b"], ["y0"], kernel_shape=[ks, ks], strides=[s, s],
                              pads=[ks // 2] * 4, group=groups)  # fmt: skip
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
