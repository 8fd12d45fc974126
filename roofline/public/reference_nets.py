"""Reference networks that public latency tables report and the zoo does not build: ResNet-50 (v1) and
VGG16, as weight-free ONNX (weights are ConstantOfShape fills, so files stay small), for fitting and
checking device specs against published milliseconds (``roofline.public.shipped_fits``,
``benches/bench_fidelity.py``). Layer shapes follow torchvision's definitions; MACs: ResNet-50 4.09 G
at 224, VGG16 15.47 G (``tests/test_public_data.py``).
"""

from __future__ import annotations

import onnx

from roofline.errors import ShapeError
from roofline.zoo.builder import GraphBuilder

__all__ = ["resnet50", "vgg16", "REFERENCE_NETS", "reference_model"]


def _conv(g: GraphBuilder, x: str, cout: int, k: int = 3, s: int = 1, relu: bool = True) -> str:
    """A conv as these nets are counted: no bias, no BatchNorm (folded), then ReLU or not."""
    return g.conv(x, cout, k, s, bn=False, act="relu" if relu else None)


def vgg16(res: int = 224) -> onnx.ModelProto:
    g = GraphBuilder("vgg16", (1, 3, res, res))
    x = g.input
    for widths in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for c in widths:
            x = _conv(g, x, c)
        x = g.pool(x, "MaxPool", 2, stride=2)
    if g.shapes[x][1:] != (512, 7, 7):
        raise ShapeError(f"vgg16's classifier takes 512x7x7 features (224x224 inputs), got {res}x{res} inputs")
    x = g.flatten(x)
    for i, n in enumerate((4096, 4096, 1000)):
        x = g.gemm(x, n, bias=False)
        x = g.act(x, "relu" if i < 2 else None)
    return g.model(x)


def resnet50(res: int = 299) -> onnx.ModelProto:
    g = GraphBuilder("resnet50", (1, 3, res, res))
    x = g.pool(_conv(g, g.input, 64, 7, 2), "MaxPool", 3, stride=2, pad=1)
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = _conv(g, _conv(g, x, width, 1), width, 3, s)
            y = _conv(g, y, 4 * width, 1, relu=False)
            if b == 0:
                x = _conv(g, x, 4 * width, 1, s, relu=False)
            x = g.act(g.add(x, y), "relu")
    x = g.flatten(g.global_pool(x))
    return g.model(g.gemm(x, 1000, bias=False))


#: the builders by name, as public tables' ``zoo_name`` column names them
REFERENCE_NETS = {"resnet50": resnet50, "vgg16": vgg16}


def reference_model(name: str, resolution: int):
    """A zoo network or a reference network at ``resolution`` (a zoo name at its own resolution stays a name)."""
    import roofline

    if name in REFERENCE_NETS:
        return REFERENCE_NETS[name](resolution)
    return name if resolution == roofline.zoo.get(name).resolution else roofline.zoo.build(name, resolution=resolution)
