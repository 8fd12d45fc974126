"""roofline: per-layer MACs and bytes of ONNX models, and their roofline latency on mobile and edge devices.

>>> import roofline
>>> table = roofline.count(roofline.zoo.build("mobilenet_v2"))
>>> round(roofline.totals(table)["macs"] / 1e6, 1)
300.8
"""

from __future__ import annotations

from roofline import zoo
from roofline.count import count, totals
from roofline.devices import DeviceSpec, device_table, list_devices, load_device
from roofline.errors import RooflineError
from roofline.graph import load_graph
from roofline.ops import register_op, supported_ops
from roofline.simulate import Prediction, predict

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


def __getattr__(name: str):
    """``roofline.plot``, ``roofline.sweep``, ``roofline.fit``: loaded on first use (matplotlib, scipy)."""
    if name in ("plot", "sweep", "fit", "search", "space", "fasteval", "objectives"):
        import importlib

        return importlib.import_module(f"roofline.{name}")
    raise AttributeError(f"module 'roofline' has no attribute {name!r}")
