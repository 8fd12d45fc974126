"""A small ONNX graph builder for mobile networks (NCHW, opset 17).

Weights are either seeded random initializers (``weights="random"``) or, to keep files small,
``ConstantOfShape`` nodes ("light" models, as in onnx's own light test models): counting only needs
the shapes, and onnxruntime still runs the model.
"""

from __future__ import annotations

import numbers

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from roofline.errors import InvalidParameterError, ShapeError, check_choice, did_you_mean
from roofline.ir.checks import MAX_TENSOR_ELEMS
from roofline.ops.conv import same_output_size, same_padding
from roofline.zoo.blocks import decode, expand, mid_channels, se_channels, widen
from roofline.zoo.blocks_shuffle import ghost_se_channels, shuffle1_widths

__all__ = ["GraphBuilder", "NetworkBuilder", "build_network", "OPSET"]

OPSET = 17
_WEIGHTS = ("light", "random")


class GraphBuilder:
    """Append layers to an NCHW graph; each method returns the name of the tensor it writes."""

    def __init__(self, name: str, input_shape: tuple[int, ...], weights: str = "light", seed: int = 0):
        check_choice(weights, _WEIGHTS, "weights")
        if (
            not isinstance(input_shape, (tuple, list))
            or not input_shape
            or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 1 <= d <= MAX_TENSOR_ELEMS
                   for d in input_shape)
        ):  # fmt: skip
            raise ShapeError(f"the input shape must be positive whole numbers up to 2**34, got {input_shape!r}")
        self.name, self.weights = name, weights
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {"input": tuple(input_shape)}
        self.input = "input"
        self._n = 0

    # -- plumbing -------------------------------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def node(self, op: str, inputs: list[str], shape: tuple[int, ...], name: str | None = None, **attrs) -> str:
        name = name or self._name(op.lower())
        if any(d <= 0 for d in shape):
            raise ShapeError(
                f"{op} layer {name!r} would have output shape {'x'.join(map(str, shape))}: the input "
                f"({'x'.join(map(str, self.shapes['input']))}) is too small for this network"
            )
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        self.shapes[out] = tuple(shape)
        return out

    def const(self, name: str, shape: tuple[int, ...], fill: float | None = None) -> str:
        """A float weight tensor: random or light (ConstantOfShape), or filled with ``fill``."""
        if fill is not None or self.weights == "random":
            value = np.full(shape, fill, np.float32) if fill is not None else self._random(shape)
            self.initializers.append(numpy_helper.from_array(value, name))
            return name
        dims = numpy_helper.from_array(np.array(shape, np.int64), f"{name}_shape")
        self.initializers.append(dims)
        value = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.01])
        self.nodes.append(helper.make_node("ConstantOfShape", [dims.name], [name], name=f"{name}_fill", value=value))
        return name

    def _random(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[1:])) or 1
        return (self.rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    # -- layers ---------------------------------------------------------------------------------
    def conv(self, x: str, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = False,
             bn: bool = True, act: str | None = "relu", name: str | None = None) -> str:  # fmt: skip
        n, cin, h, w = self.shapes[x]
        name = name or self._name("conv")
        pad = same_padding(k)
        ho, wo = same_output_size(h, k, stride), same_output_size(w, k, stride)
        inputs = [x, self.const(f"{name}.weight", (cout, cin // groups, k, k))]
        if bias:
            inputs.append(self.const(f"{name}.bias", (cout,)))
        y = self.node("Conv", inputs, (n, cout, ho, wo), name=name, kernel_shape=[k, k],
                      strides=[stride, stride], pads=[pad] * 4, group=groups)  # fmt: skip
        if bn:
            y = self.batch_norm(y, name=f"{name}.bn")
        return self.act(y, act)

    def batch_norm(self, x: str, name: str | None = None) -> str:
        name = name or self._name("bn")
        c = self.shapes[x][1]
        params = [
            self.const(f"{name}.{p}", (c,), 1.0 if p in ("scale", "var") else None)
            for p in ("scale", "bias", "mean", "var")
        ]
        return self.node("BatchNormalization", [x, *params], self.shapes[x], name=name, epsilon=1e-5)

    def act(self, x: str, act: str | None) -> str:
        shape = self.shapes[x]
        if act is None:
            return x
        if act == "relu":
            return self.node("Relu", [x], shape)
        if act == "relu6":
            lo, hi = self.scalar(0.0), self.scalar(6.0)
            return self.node("Clip", [x, lo, hi], shape)
        if act == "hswish":
            return self.node("HardSwish", [x], shape)
        if act == "hsigmoid":
            return self.node("HardSigmoid", [x], shape, alpha=1.0 / 6, beta=0.5)
        if act == "sigmoid":
            return self.node("Sigmoid", [x], shape)
        if act == "swish":
            return self.node("Mul", [x, self.node("Sigmoid", [x], shape)], shape)
        if act == "gelu":
            return self._gelu(x)
        known = ["relu", "relu6", "hswish", "hsigmoid", "sigmoid", "swish", "gelu"]
        raise InvalidParameterError(f"unknown activation {act!r}; known: {', '.join(known)}{did_you_mean(act, known)}")

    def _gelu(self, x: str) -> str:
        # erf form, as exporters write it for opset < 20: x * 0.5 * (1 + erf(x / sqrt(2)))
        s = self.shapes[x]
        e = self.node("Erf", [self.node("Div", [x, self.scalar(2**0.5)], s)], s)
        return self.node(
            "Mul", [self.node("Mul", [x, self.node("Add", [e, self.scalar(1.0)], s)], s), self.scalar(0.5)], s
        )

    def scalar(self, value: float) -> str:
        name = self._name("const")
        self.initializers.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name

    def add(self, a: str, b: str) -> str:
        return self.node("Add", [a, b], self.shapes[a])

    def mul(self, a: str, b: str) -> str:
        return self.node("Mul", [a, b], self.shapes[a])

    def pool(self, x: str, op: str, k: int, stride: int = 1, pad: int = 0, **attrs) -> str:
        """A ``MaxPool`` / ``AveragePool`` layer: a k x k window, ``pad`` on each side."""
        n, c, h, w = self.shapes[x]
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        pads = {"pads": [pad] * 4} if pad else {}
        return self.node(op, [x], (n, c, ho, wo), kernel_shape=[k, k], strides=[stride, stride], **pads, **attrs)

    def global_pool(self, x: str) -> str:
        n, c = self.shapes[x][:2]
        return self.node("GlobalAveragePool", [x], (n, c, 1, 1))

    def flatten(self, x: str) -> str:
        shape = self.shapes[x]
        return self.node("Flatten", [x], (shape[0], int(np.prod(shape[1:]))), axis=1)

    def gemm(self, x: str, cout: int, name: str | None = None, bias: bool = True) -> str:
        n, cin = self.shapes[x]
        name = name or self._name("fc")
        inputs = [x, self.const(f"{name}.weight", (cout, cin))]
        if bias:
            inputs.append(self.const(f"{name}.bias", (cout,)))
        return self.node("Gemm", inputs, (n, cout), name=name, transB=1)

    def model(self, output: str) -> onnx.ModelProto:
        shape = self.shapes[output]
        graph = helper.make_graph(
            self.nodes,
            self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, self.shapes["input"])],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
            self.initializers,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="roofline")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


class NetworkBuilder(GraphBuilder):
    """Builds the blocks of ``roofline.zoo.blocks`` (one method per block type, same layer order as the
    analytical costs in ``roofline.zoo.blocks.block_cost``)."""

    def block(self, x: str, b) -> str:
        return getattr(self, f"_{b.type}")(x, b)

    def _conv(self, x, b):
        return self.conv(x, b.c, k=b.k, stride=b.s, act=b.activation)

    def _ds(self, x, b):
        cin = self.shapes[x][1]
        y = self.conv(x, cin, k=b.k, stride=b.s, groups=cin, act=b.activation)
        return self.conv(y, b.c, act=b.activation)

    def _residual(self, x, y, b) -> str:
        if b.s == 1 and self.shapes[x][1] == b.c and not b.noskip:
            return self.add(x, y)
        return y

    def _layer_scale(self, y, b) -> str:
        return self.mul(y, self.const(self._name("gamma"), (b.c, 1, 1))) if b.ls else y

    def _ir(self, x, b):
        cin = self.shapes[x][1]
        mid = mid_channels(b, cin)
        y = self.conv(x, mid, act=b.activation) if b.e != 1 else x
        y = self.conv(y, mid, k=b.k, stride=b.s, groups=mid, act=b.activation)
        if b.se or b.sei:
            g = self.global_pool(y)
            g = self.conv(g, se_channels(b, cin, mid), bias=True, bn=False, act="relu" if b.se else b.activation)
            g = self.conv(g, mid, bias=True, bn=False, act="hsigmoid" if b.se else "sigmoid")
            y = self.mul(y, g)
        return self._residual(x, self.conv(y, b.c, act=None), b)

    def _fused(self, x, b):
        y = self.conv(x, mid_channels(b, self.shapes[x][1]), k=b.k, stride=b.s, act=b.activation)
        return self._residual(x, self.conv(y, b.c, act=None), b)

    def _uib(self, x, b):
        cin = self.shapes[x][1]
        y = x
        if b.a:  # start depthwise: BN, no activation; strided only when there is no middle one
            y = self.conv(y, cin, k=b.a, stride=1 if b.k else b.s, groups=cin, act=None)
        mid = mid_channels(b, cin)
        y = self.conv(y, mid, act=b.activation)
        if b.k:
            y = self.conv(y, mid, k=b.k, stride=b.s, groups=mid, act=b.activation)
        y = self._layer_scale(self.conv(y, b.c, act=None), b)
        return self._residual(x, y, b)

    def _reshape(self, x: str, shape: tuple[int, ...]) -> str:
        target = self.ints(shape)
        return self.node("Reshape", [x, target], shape)

    def _transpose(self, x: str, perm: list[int]) -> str:
        shape = tuple(self.shapes[x][i] for i in perm)
        return self.node("Transpose", [x], shape, perm=perm)

    def _mqa(self, x, b):
        n, c, h, w = self.shapes[x]
        xn = self.batch_norm(x)
        src = self.conv(xn, c, k=b.k, stride=b.q, groups=c, act=None) if b.q > 1 else xn
        hq, wq = self.shapes[src][2:]
        q = self.conv(src, b.h * b.d, bn=False, act=None)
        q = self._transpose(self._reshape(q, (n, b.h, b.d, hq * wq)), [0, 1, 3, 2])  # n, h, N, d
        kv = []
        for _ in ("key", "value"):
            s = self.conv(xn, c, k=b.k, stride=b.v, groups=c, act=None) if b.v > 1 else xn
            hk, wk = self.shapes[s][2:]
            kv.append(self._reshape(self.conv(s, b.d, bn=False, act=None), (n, 1, b.d, hk * wk)))  # n, 1, d, M
        k_t, v = kv[0], self._transpose(kv[1], [0, 1, 3, 2])
        m = self.shapes[k_t][3]
        scores = self.node("MatMul", [q, k_t], (n, b.h, hq * wq, m))
        scores = self.node("Mul", [scores, self.scalar(b.d**-0.5)], (n, b.h, hq * wq, m))
        attn = self.node("Softmax", [scores], (n, b.h, hq * wq, m), axis=-1)
        o = self.node("MatMul", [attn, v], (n, b.h, hq * wq, b.d))
        o = self._reshape(self._transpose(o, [0, 1, 3, 2]), (n, b.h * b.d, hq, wq))
        if b.q > 1:
            sizes = self.ints((n, b.h * b.d, h, w))  # sizes, not scales: exact on odd inputs
            o = self.node("Resize", [o, "", "", sizes], (n, b.h * b.d, h, w), mode="linear")
        y = self._layer_scale(self.conv(o, b.c, bn=False, act=None), b)
        return self._residual(x, y, b)

    def _head(self, x, b):
        if b.c:
            x = self.conv(x, b.c, act=b.activation)
        x = self.global_pool(x)
        if b.f:
            x = self.conv(x, b.f, bias=not b.bn, bn=b.bn, act=b.activation)
        return self.gemm(self.flatten(x), b.n, name="classifier")

    def _maxpool(self, x, b):
        return self.pool(x, "MaxPool", b.k, b.s, b.k // 2)

    def _channel_shuffle(self, x: str, groups: int) -> str:
        n, c, h, w = self.shapes[x]
        y = self._transpose(self._reshape(x, (n, groups, c // groups, h, w)), [0, 2, 1, 3, 4])
        return self._reshape(y, (n, c, h, w))

    def _shuffle2(self, x, b):
        n, cin, h, w = self.shapes[x]
        half = b.c // 2
        if b.s == 1 and cin == b.c:  # basic unit: split, one branch, concat, shuffle
            name = self._name("split")
            left, right = f"{name}_out0", f"{name}_out1"
            self.nodes.append(helper.make_node("Split", [x, self.ints((half, half))], [left, right], name=name, axis=1))
            self.shapes[left] = self.shapes[right] = (n, half, h, w)
        else:  # down-sampling unit: both branches read the whole input
            left = self.conv(x, cin, k=b.k, stride=b.s, groups=cin, act=None)
            left, right = self.conv(left, half, act=b.activation), x
        y = self.conv(right, half, act=b.activation)
        y = self.conv(y, half, k=b.k, stride=b.s, groups=half, act=None)
        y = self.conv(y, half, act=b.activation)
        return self._channel_shuffle(self.node("Concat", [left, y], (n, b.c, *self.shapes[y][2:]), axis=1), 2)

    def _shuffle1(self, x, b):
        cin = self.shapes[x][1]
        mid, out = shuffle1_widths(b, cin)
        y = self.conv(x, mid, groups=1 if b.dense else b.g, act=b.activation)
        if b.g > 1:
            y = self._channel_shuffle(y, b.g)
        y = self.conv(y, mid, k=b.k, stride=b.s, groups=mid, act=None)
        y = self.conv(y, out, groups=b.g, act=None)
        if out == cin and b.s == 1:
            return self.act(self.add(x, y), b.activation)
        shortcut = self.pool(x, "AveragePool", 3, b.s, 1)
        y = self.act(y, b.activation)
        return self.node("Concat", [shortcut, y], (self.shapes[y][0], b.c, *self.shapes[y][2:]), axis=1)

    def _ghost_module(self, x: str, c: int, act: str | None) -> str:
        init = -(-c // 2)
        p = self.conv(x, init, act=act)
        q = self.conv(p, init, k=3, groups=init, act=act)
        shape = self.shapes[p]
        y = self.node("Concat", [p, q], (shape[0], 2 * init, *shape[2:]), axis=1)
        if 2 * init > c:
            y = self.node("Slice", [y, self.ints([0]), self.ints([c]), self.ints([1])], (shape[0], c, *shape[2:]))
        return y

    def _ghost(self, x, b):
        cin = self.shapes[x][1]
        mid = mid_channels(b, cin)
        y = self._ghost_module(x, mid, b.activation)
        if b.s > 1:
            y = self.conv(y, mid, k=b.k, stride=b.s, groups=mid, act=None)
        if b.se:
            g = self.global_pool(y)
            g = self.conv(g, ghost_se_channels(mid, b.se), bias=True, bn=False, act="relu")
            y = self.mul(y, self.conv(g, mid, bias=True, bn=False, act="hsigmoid"))
        y = self._ghost_module(y, b.c, None)
        if b.s == 1 and cin == b.c:
            return self.add(x, y)
        shortcut = self.conv(x, cin, k=b.k, stride=b.s, groups=cin, act=None)
        return self.add(y, self.conv(shortcut, b.c, act=None))

    def ints(self, values) -> str:
        name = self._name("shape")
        self.initializers.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name


def build_network(spec, resolution: int, width: float = 1.0, name: str = "network", weights: str = "light",
                  seed: int = 0) -> onnx.ModelProto:  # fmt: skip
    """Build a network spec (a string or decoded blocks) as an ``onnx.ModelProto``."""
    blocks = decode(spec) if isinstance(spec, str) else list(spec)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or not 1 <= resolution <= 1 << 16:
        raise InvalidParameterError(
            f"the 'resolution' parameter must be a whole number from 1 to 65536, got {resolution!r}"
        )
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not 0 < width <= 64:
        raise InvalidParameterError(f"the 'width' parameter must be a number in (0, 64], got {width!r}")
    b = NetworkBuilder(name, (1, 3, resolution, resolution), weights, seed)
    x = b.input
    for block in expand(widen(blocks, width)):
        x = b.block(x, block)
    return b.model(x)
