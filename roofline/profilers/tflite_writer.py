"""Write TFLite flatbuffers with the schema bindings that ``ai-edge-litert`` ships (no TensorFlow):
single-layer kernels (fp32 or full-integer int8) and small test networks.

int8 follows TFLite's quantization spec: int8 activations (per-tensor scale and zero point), int8
weights symmetric per output channel, int32 biases with scale = input scale x weight scale.
"""

from __future__ import annotations

import numpy as np

from roofline.errors import InvalidParameterError
from roofline.ir import litert
from roofline.profilers.kernels import decode

__all__ = ["TfliteWriter", "tflite_kernel", "example_network"]

_TYPES = {"fp32": (0, np.float32), "fp16": (1, np.float16), "int32": (2, np.int32), "int8": (9, np.int8),
          "int64": (4, np.int64), "bool": (6, np.bool_)}  # fmt: skip
_ACT = {None: 0, "relu": 1, "relu6": 3}


class TfliteWriter:
    """Build subgraphs: tensors (with data for weights), operators, then ``finish`` to bytes. The first
    subgraph is the model's; ``subgraph`` closes one and starts the next (control-flow branches)."""

    def __init__(self):
        s = self.s = litert.schema()
        self.tensors, self.ops, self.codes, self.buffers = [], [], [], [s.BufferT()]  # buffer 0: empty
        self.done = []  # closed subgraphs

    def tensor(self, shape, dtype="fp32", data=None, scale=None, zero_point=0, axis=0, name=None,
               signature=None) -> int:  # fmt: skip
        """A tensor; ``signature`` is its shape_signature (-1 for a dynamic dimension)."""
        t = self.s.TensorT()
        t.shape, t.type, t.name = list(shape), _TYPES[dtype][0], name or f"t{len(self.tensors)}"
        t.shapeSignature = list(signature) if signature is not None else None
        t.buffer = 0
        if data is not None:
            b = self.s.BufferT()
            b.data = np.ascontiguousarray(data, dtype=_TYPES[dtype][1]).view(np.uint8).ravel()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = self.s.QuantizationParametersT()
            q.scale = [float(x) for x in np.atleast_1d(scale)]
            q.zeroPoint = [int(x) for x in np.broadcast_to(zero_point, len(q.scale))]
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, name: str, inputs, outputs, options_type: str | None = None, custom_code: str | None = None,
           **options) -> None:  # fmt: skip
        s = self.s
        code = (getattr(s.BuiltinOperator, name), custom_code)
        if code not in self.codes:
            self.codes.append(code)
        op = s.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = self.codes.index(code), list(inputs), list(outputs)
        if options_type:
            opt = getattr(s, f"{options_type}T")()
            for k, v in options.items():
                setattr(opt, k, v)
            op.builtinOptionsType, op.builtinOptions = getattr(s.BuiltinOptions, options_type), opt
        self.ops.append(op)

    def subgraph(self, inputs, outputs) -> int:
        """Close the current subgraph with its inputs and outputs, start the next; the closed one's index."""
        sub = self.s.SubGraphT()
        sub.tensors, sub.operators, sub.inputs, sub.outputs = self.tensors, self.ops, list(inputs), list(outputs)
        sub.name = f"subgraph_{len(self.done)}"
        self.done.append(sub)
        self.tensors, self.ops = [], []
        return len(self.done) - 1

    def finish(self, inputs=None, outputs=None) -> bytes:
        """The model's bytes; ``inputs``/``outputs`` close the current subgraph first."""
        import flatbuffers

        s = self.s
        if inputs is not None:
            self.subgraph(inputs, outputs)
        model = s.ModelT()
        model.version, model.subgraphs, model.buffers, model.description = 3, self.done, self.buffers, "roofline"
        model.operatorCodes = []
        for code, custom in self.codes:
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
            oc.customCode = custom
            model.operatorCodes.append(oc)
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    # -- layers (NHWC) -------------------------------------------------------------------------------

    def _q(self, int8: bool, scale: float = 0.05, zero_point: int = 0) -> dict:
        return {"dtype": "int8", "scale": scale, "zero_point": zero_point} if int8 else {}

    def conv(self, x: int, cout: int, k: int, stride: int = 1, depthwise: bool = False, act=None, rng=None) -> int:
        """A same-padded k x k convolution (or depthwise) with bias; returns the output tensor."""
        rng = rng or np.random.default_rng(0)
        n, h, w, cin = self.tensors[x].shape
        int8 = self.tensors[x].type == _TYPES["int8"][0]
        ho, wo = -(-h // stride), -(-w // stride)
        shape = (1, k, k, cin) if depthwise else (cout, k, k, cin)
        cout = cin if depthwise else cout
        weights = rng.standard_normal(shape) / np.sqrt(k * k * (1 if depthwise else cin))
        axis = 3 if depthwise else 0
        if int8:
            w_scale = np.abs(weights).max(axis=tuple(i for i in range(4) if i != axis)) / 127 + 1e-8
            q = np.round(weights / np.expand_dims(w_scale, tuple(i for i in range(4) if i != axis)))
            wt = self.tensor(shape, "int8", q.astype(np.int8), scale=w_scale, axis=axis)
            x_scale = self.tensors[x].quantization.scale[0]
            bt = self.tensor((cout,), "int32", np.zeros(cout), scale=x_scale * w_scale, axis=0)
        else:
            wt = self.tensor(shape, "fp32", weights)
            bt = self.tensor((cout,), "fp32", np.zeros(cout))
        y = self.tensor((n, ho, wo, cout), **self._q(int8))
        common = {"padding": 0, "strideH": stride, "strideW": stride, "dilationHFactor": 1, "dilationWFactor": 1,
                  "fusedActivationFunction": _ACT[act]}  # fmt: skip
        if depthwise:
            self.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], "DepthwiseConv2DOptions", depthMultiplier=1, **common)
        else:
            self.op("CONV_2D", [x, wt, bt], [y], "Conv2DOptions", **common)
        return y

    def fully_connected(self, x: int, n_out: int, rng=None) -> int:
        rng = rng or np.random.default_rng(0)
        k = self.tensors[x].shape[-1]
        int8 = self.tensors[x].type == _TYPES["int8"][0]
        weights = rng.standard_normal((n_out, k)) / np.sqrt(k)
        if int8:
            w_scale = np.abs(weights).max() / 127
            wt = self.tensor((n_out, k), "int8", np.round(weights / w_scale).astype(np.int8), scale=w_scale)
            bt = self.tensor((n_out,), "int32", np.zeros(n_out), scale=self.tensors[x].quantization.scale[0] * w_scale)
        else:
            wt = self.tensor((n_out, k), "fp32", weights)
            bt = self.tensor((n_out,), "fp32", np.zeros(n_out))
        y = self.tensor((1, n_out), **self._q(int8))
        self.op("FULLY_CONNECTED", [x, wt, bt], [y], "FullyConnectedOptions", fusedActivationFunction=0)
        return y


def tflite_kernel(key: str) -> bytes:
    """A single-layer TFLite model for a structured kernel key (conv, pwconv, dwconv, gemm), fp32 or int8."""
    k = decode(key)
    if k.kind == "gconv" or k.precision == "fp16":
        raise InvalidParameterError(f"kernel key {key!r}: TFLite kernels are conv, pwconv, dwconv, gemm in fp32/int8")
    tw = TfliteWriter()
    q = tw._q(k.precision == "int8")
    if k.kind == "gemm":
        if k["m"] != 1:
            raise InvalidParameterError(f"kernel key {key!r}: TFLite gemm kernels have m1")
        x = tw.tensor((1, k["k"]), **q)
        y = tw.fully_connected(x, k["n"])
    else:
        cin = k["c"] if k.kind == "dwconv" else k["i"]
        x = tw.tensor((1, k["h"], k["w"], cin), **q)
        ks = 1 if k.kind == "pwconv" else k["k"]
        y = tw.conv(x, k["c"] if k.kind == "dwconv" else k["o"], ks, k["s"], depthwise=k.kind == "dwconv", act="relu")
    return tw.finish([x], [y])


def example_network(precision: str = "fp32", resolution: int = 32, open_input: bool = False) -> bytes:
    """A small MobileNet-like TFLite network: conv 3x3/2, depthwise 3x3, pointwise, residual add,
    global mean, fully connected, softmax (int8: full-integer, as the TFLite converter writes it).
    ``open_input``: the input ``input`` has shape signature (-1, -1, -1, 3), as Keras exports write it."""
    if precision not in ("fp32", "int8"):
        raise InvalidParameterError(f"precision must be fp32 or int8, got {precision!r}")
    tw = TfliteWriter()
    int8 = precision == "int8"
    signature = (-1, -1, -1, 3) if open_input else None
    x = tw.tensor((1, resolution, resolution, 3), name="input", signature=signature, **tw._q(int8))
    y = tw.conv(x, 16, 3, 2, act="relu6")
    d = tw.conv(y, 16, 3, 1, depthwise=True, act="relu6")
    p = tw.conv(d, 16, 1, 1)
    s = tw.tensor(tw.tensors[p].shape, **tw._q(int8))
    tw.op("ADD", [y, p], [s], "AddOptions", fusedActivationFunction=0)
    axes = tw.tensor((2,), "int32", np.array([1, 2]))
    m = tw.tensor((1, 16), **tw._q(int8))
    tw.op("MEAN", [s, axes], [m], "ReducerOptions", keepDims=False)
    f = tw.fully_connected(m, 10)
    out = tw.tensor((1, 10), **({"dtype": "int8", "scale": 1 / 256, "zero_point": -128} if int8 else {}))
    tw.op("SOFTMAX", [f], [out], "SoftmaxOptions", beta=1.0)
    return tw.finish([x], [out])


def main(argv=None) -> int:
    """``python -m roofline.profilers.tflite_writer OUT.tflite``: write the example network (a .tflite to try)."""
    import argparse

    ap = argparse.ArgumentParser(description="Write a small MobileNet-like .tflite (no TensorFlow needed).")
    ap.add_argument("out", help="the .tflite path")
    ap.add_argument("--precision", choices=("fp32", "int8"), default="int8")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--open-input", action="store_true", help="input shape signature (-1, -1, -1, 3)")
    args = ap.parse_args(argv)
    data = example_network(args.precision, args.resolution, args.open_input)
    with open(args.out, "wb") as f:
        f.write(data)
    print(f"{args.out}: {len(data)} bytes, {args.precision}, input 1x{args.resolution}x{args.resolution}x3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
