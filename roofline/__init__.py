"""roofline: per-layer MACs and bytes of ONNX models, and their roofline latency on mobile and edge devices.

>>> import roofline
>>> table = roofline.count(roofline.zoo.build("mobilenet_v2"))
>>> round(roofline.totals(table)["macs"] / 1e6, 1)
300.8
"""

from __future__ import annotations

from roofline import zoo
from roofline.counting.table import count, totals
from roofline.devices import DeviceSpec, device_table, list_devices, load_device
from roofline.devices.simulate import Prediction, predict
from roofline.errors import RooflineError
from roofline.ir.load import load_graph
from roofline.ops import register_op, supported_ops

__version__ = "0.1.0"

__all__ = [
    "count",
    "totals",
    "predict",
    "Prediction",
    "DeviceSpec",
    "device_table",
    "list_devices",
    "load_device",
    "load_graph",
    "register_op",
    "supported_ops",
    "RooflineError",
    "zoo",
]


_LAZY = {
    "plot": "roofline.analysis.plot",
    "sweep": "roofline.analysis.sweep",
    "fit": "roofline.devices.fit",
    "search": "roofline.search",
    "space": "roofline.search.space",
    "fasteval": "roofline.search.fasteval",
    "objectives": "roofline.search.objectives",
}


def __getattr__(name: str):
    """``roofline.plot``, ``roofline.sweep``, ``roofline.fit``: loaded on first use (matplotlib, scipy)."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'roofline' has no attribute {name!r}")
