"""Reference networks that public latency tables report and the zoo does not build: ResNet-50 (v1) and
VGG16, as weight-free ONNX (weights are ConstantOfShape fills, so files stay small), for fitting and
checking device specs against published milliseconds (``roofline.public.shipped_fits``,
``benches/bench_fidelity.py``). Layer shapes follow torchvision's definitions; MACs: ResNet-50 4.09 G
at 224, VGG16 15.47 G (``tests/test_public_data.py``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["resnet50", "vgg16", "REFERENCE_NETS", "reference_model"]


class _Net:
    """A weight-free ONNX network written layer by layer (weights are ConstantOfShape fills)."""

    def __init__(self, res: int):
        from onnx import helper

        self.h, self.nodes, self.inits, self.n = helper, [], [], 0
        self.x, self.c, self.res = "x", 3, res

    def _w(self, shape) -> str:
        from onnx import numpy_helper

        self.n += 1
        name = f"w{self.n}"
        self.inits.append(numpy_helper.from_array(np.array(shape, np.int64), f"{name}_shape"))
        self.nodes.append(self.h.make_node("ConstantOfShape", [f"{name}_shape"], [name]))
        return name

    def op(self, op, inputs, **attrs) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(self.h.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x, cout, k=3, s=1, relu=True) -> str:
        y = self.op("Conv", [x, self._w([cout, self.c, k, k])], pads=[k // 2] * 4, strides=[s, s])
        self.c = cout
        return self.op("Relu", [y]) if relu else y

    def model(self, y):
        from onnx import TensorProto

        h = self.h
        x = h.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, self.res, self.res])
        graph = h.make_graph(self.nodes, "net", [x], [h.make_tensor_value_info(y, TensorProto.FLOAT, None)], self.inits)
        return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def vgg16(res: int = 224):
    net, x = _Net(res), "x"
    for widths in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c in widths:
            x = net.conv(x, c)
        x = net.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = net.op("Flatten", [x])
    for i, (k, n) in enumerate(((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000))):
        x = net.op("Gemm", [x, net._w([n, k])], transB=1)
        x = net.op("Relu", [x]) if i < 2 else x
    return net.model(x)


def resnet50(res: int = 299):
    net = _Net(res)
    x = net.op("MaxPool", [net.conv("x", 64, 7, 2)], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s, cin = (stride if b == 0 else 1), net.c
            y = net.conv(net.conv(x, width, 1), width, 3, s)
            y = net.conv(y, 4 * width, 1, relu=False)
            if b == 0:
                net.c = cin
                x = net.conv(x, 4 * width, 1, s, relu=False)
            x = net.op("Relu", [net.op("Add", [x, y])])
    x = net.op("Flatten", [net.op("GlobalAveragePool", [x])])
    return net.model(net.op("Gemm", [x, net._w([1000, 2048])], transB=1))


#: the builders by name, as public tables' ``zoo_name`` column names them
REFERENCE_NETS = {"resnet50": resnet50, "vgg16": vgg16}


def reference_model(name: str, resolution: int):
    """A zoo network or a reference network at ``resolution`` (a zoo name at its own resolution stays a name)."""
    import roofline

    if name in REFERENCE_NETS:
        return REFERENCE_NETS[name](resolution)
    return name if resolution == roofline.zoo.get(name).resolution else roofline.zoo.build(name, resolution=resolution)
