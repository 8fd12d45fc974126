"""Built-in example networks, by name.

For now the zoo holds MobileNetV2 (Sandler et al. 2018), built layer by layer from its published
spec: 3.50 M parameters and 300.8 M MACs at width 1.0 and 224 px.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx

from roofline.builder import GraphBuilder
from roofline.errors import did_you_mean

__all__ = ["list_models", "build", "make_divisible"]

_MODELS: dict[str, Callable[..., onnx.ModelProto]] = {}


def register_model(name: str):
    def deco(fn):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(_MODELS)


def build(name: str, **kwargs) -> onnx.ModelProto:
    """Build a zoo network as an ``onnx.ModelProto`` (light weights unless ``weights="random"``)."""
    try:
        fn = _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}{did_you_mean(name, _MODELS)}; known: {list_models()}") from None
    return fn(**kwargs)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never dropping below 90% (the MobileNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018, Table 2
_MNV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


@register_model("mobilenet_v2")
def mobilenet_v2(width: float = 1.0, resolution: int = 224, weights: str = "light", seed: int = 0) -> onnx.ModelProto:
    b = GraphBuilder(f"mobilenet_v2_{width:g}_{resolution}", (1, 3, resolution, resolution), weights, seed)
    x = b.conv(b.input, make_divisible(32 * width), k=3, stride=2, act="relu6")
    cin = make_divisible(32 * width)
    for t, c, n, s in _MNV2:
        cout = make_divisible(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            y = x if t == 1 else b.conv(x, cin * t, act="relu6")
            y = b.conv(y, cin * t, k=3, stride=stride, groups=cin * t, act="relu6")
            y = b.conv(y, cout, act=None)
            x = b.add(x, y) if stride == 1 and cin == cout else y
            cin = cout
    x = b.conv(x, make_divisible(1280 * max(1.0, width)), act="relu6")
    x = b.gemm(b.flatten(b.global_pool(x)), 1000, name="classifier")
    return b.model(x)
