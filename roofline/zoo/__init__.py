"""Built-in networks, by name: ``list_models``, ``get`` and ``build`` (an ``onnx.ModelProto``).

The package: ``models.yaml`` (each network's block spec, native resolution, width, the published
parameter and MAC counts the tests hold each build to, top-1 accuracy and sources), ``blocks`` (the
block-spec language, ``decode``/``encode``, strict with ``BlockSpecError``, and the analytical per-block
MACs, parameters and bytes the search evaluates without building anything), ``builder`` (the ONNX
builder that turns a spec into a network whose counts equal those formulas) and ``guidelines``
(ShuffleNet V2's guideline micro-benchmarks and the speeds its paper reports).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import cache
from importlib import resources

import onnx
import yaml

from roofline.errors import InvalidParameterError, did_you_mean
from roofline.zoo.blocks import Block, decode, encode, network_cost, widen
from roofline.zoo.builder import build_network

__all__ = ["ZooModel", "list_models", "get", "build"]


@dataclass(frozen=True)
class ZooModel:
    """One built-in network: its spec and what it is checked against."""

    name: str
    spec: str
    resolution: int
    width: float = 1.0
    params: str = ""  # published parameter count ("3.505 M"): its digits say its precision
    macs: str = ""  # published MAC count ("0.1 G")
    tolerance: float = 0.01  # relative; 0.02 where a paper counts FLOPs a little differently (ShuffleNet)
    top1: float | None = None  # ImageNet top-1 (%), MobileNetV4 paper Table 6 (what the search's proxy fits)
    paper_top1: float | None = None  # ImageNet top-1 (%) in the network's own paper (its own training recipe)
    source: str = ""

    @property
    def blocks(self) -> list[Block]:
        return decode(self.spec)

    @property
    def network_spec(self) -> str:
        """The canonical spec with the width multiplier applied: what ``build`` builds."""
        return encode(widen(self.blocks, self.width))

    def reference(self, which: str) -> tuple[float, float]:
        """(value, tolerance) of the published ``params`` or ``macs``: 1% (or the entry's ``tolerance``), or
        half a unit of the last printed digit where the reference is rounded more coarsely (the MobileNetV4
        paper prints 0.1 G)."""
        number, unit = getattr(self, which).split()
        scale = {"M": 1e6, "G": 1e9}[unit]
        value = float(number) * scale
        return value, max(self.tolerance * value, 0.5 * 10.0 ** -len(number.partition(".")[2]) * scale)

    def analytical(self, resolution: int | None = None, width: float | None = None) -> tuple[int, int]:
        """(MACs, params) from the per-block formulas, without building anything."""
        blocks = widen(self.blocks, self.width if width is None else width)
        return network_cost(blocks, resolution or self.resolution)


@cache
def _models() -> dict[str, ZooModel]:
    text = (resources.files("roofline.zoo") / "models.yaml").read_text(encoding="utf-8")
    return {name: ZooModel(name=name, **entry) for name, entry in yaml.safe_load(text)["models"].items()}


def list_models(pattern: str = "*") -> list[str]:
    """Names of the built-in networks matching a shell-style ``pattern``, e.g. ``"mnv4_*"``."""
    return sorted(n for n in _models() if fnmatch.fnmatch(n, pattern))


def get(name: str) -> ZooModel:
    """The zoo entry of ``name``."""
    models = _models()
    if name not in models:
        raise InvalidParameterError(
            f"unknown zoo model {name!r}{did_you_mean(name, models)}; known: {', '.join(list_models())}"
        )
    return models[name]


def build(name: str, resolution: int | None = None, width: float | None = None, weights: str = "light",
          seed: int = 0) -> onnx.ModelProto:  # fmt: skip
    """Build a zoo network as an ``onnx.ModelProto`` (weight-free unless ``weights="random"``)."""
    m = get(name)
    resolution = resolution or m.resolution
    width = m.width if width is None else width
    if resolution < 32 or width <= 0:
        raise InvalidParameterError(f"resolution must be >= 32 and width > 0, got {resolution} and {width}")
    label = name if (resolution, width) == (m.resolution, m.width) else f"{name}_r{resolution}_w{width:g}"
    return build_network(m.spec, resolution, width, label, weights, seed)
