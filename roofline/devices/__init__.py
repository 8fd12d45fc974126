"""Devices: what a device is, and how long a network takes on it.

``spec`` holds :class:`DeviceSpec` (peak MACs/s per precision, DRAM bandwidth, ridge point, provenance
and sources) and :func:`validate_spec`, which checks a parsed spec field by field; ``registry`` finds
the built-in spec files in ``device_specs/`` (one YAML per device), resolves a name, a path or a
DeviceSpec into a spec (:func:`load_device`, the one resolver), tabulates and writes specs, and names
the default devices; ``latency`` is the latency model every path prices with (``overhead + max(MACs /
peak, bytes / bandwidth)`` per layer, plus per-kind fits, memory models and fixed costs); ``simulate``
predicts a network on many devices or ridge points at once (``predict``); ``fit`` fits a spec to
measured whole-network latencies. See ``docs/device_specs.md`` for the spec format.
"""

from __future__ import annotations

from roofline.devices.registry import (
    PAPER_HIGH_RIDGE_DEVICE,
    PAPER_LOW_AND_HIGH_RIDGE_DEVICES,
    device_table,
    list_devices,
    load_device,
    load_devices,
    spec_dir,
    write_spec,
)
from roofline.devices.spec import KINDS, MEMORY_KEEPS, PROVENANCES, DeviceSpec, validate_spec

__all__ = ["DeviceSpec", "list_devices", "load_device", "load_devices", "device_table", "spec_dir", "write_spec",
           "validate_spec", "KINDS", "PROVENANCES", "MEMORY_KEEPS", "PAPER_LOW_AND_HIGH_RIDGE_DEVICES",
           "PAPER_HIGH_RIDGE_DEVICE"]  # fmt: skip
