"""Device specs: one YAML file per device in ``device_specs/``, validated on load.

A spec gives peak MACs/s per precision and DRAM bandwidth (bytes/s), hence the ridge point
RP = PeakMACs / PeakMemBW (MACs per byte); or, when a vendor publishes no peak, only the ridge point.
Predictions on a ridge-only spec are relative: latency in MAC-equivalents (units of 1/PeakMACs).
Every spec carries its provenance and sources. See ``docs/device_specs.md`` for the format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from roofline.dtypes import PRECISION_BYTES
from roofline.errors import SpecError, UnknownDeviceError, did_you_mean
from roofline.fuse import FUSE_MODES

__all__ = ["DeviceSpec", "list_devices", "load_device", "load_devices", "device_table", "spec_dir", "write_spec"]

KINDS = ("cpu", "gpu", "dsp", "npu")
PROVENANCES = ("datasheet", "fitted", "measured")
_REQUIRED = ("name", "display_name", "kind", "default_precision", "provenance", "sources")
_OPTIONAL = ("peak_macs_per_s", "bandwidth_bytes_per_s", "ridge_macs_per_byte", "notes", "fingerprint", "calibration",
             "fit", "memory", "fusion", "efficiency")  # fmt: skip
#: what a memory model may keep on chip (``memory.keeps``)
MEMORY_KEEPS = ("weights", "activations")
# what a fitted spec's ``calibration`` gives per layer kind (see profilers.calibrate)
_CALIBRATION_FIELDS = ("peak_macs_per_s", "bandwidth_bytes_per_s", "overhead_s", "cache_bytes", "rows",
                       "median_abs_error")  # fmt: skip
_RIDGE_TOLERANCE = 0.01


@dataclass(frozen=True)
class DeviceSpec:
    """A device's roofline: peak MACs/s per precision, DRAM bandwidth, ridge points, and where they come from."""

    name: str
    display_name: str
    kind: str
    default_precision: str
    ridge_macs_per_byte: Mapping[str, float]
    peak_macs_per_s: Mapping[str, float] = field(default_factory=dict)
    bandwidth_bytes_per_s: float | None = None
    provenance: str = "datasheet"
    sources: tuple[str, ...] = ()
    notes: str = ""
    fingerprint: Mapping[str, object] = field(default_factory=dict)
    calibration: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # per layer kind, fitted
    # how a fitted spec was fitted: the data, its rows, the cross-validated errors (roofline.fit)
    fit: Mapping[str, object] = field(default_factory=dict)
    # on-chip memory: {"on_chip_bytes": N, "keeps": ["weights", "activations"]}; what fits stays on chip
    memory: Mapping[str, object] = field(default_factory=dict)
    # the fusion policy the spec was fitted with ("none", "runtime"); None: the caller's choice
    fusion: str | None = None
    # the share of the peak ("compute") and bandwidth ("memory") a runtime reaches, fitted to published
    # latencies; empty: the datasheet's numbers as they are
    efficiency: Mapping[str, float] = field(default_factory=dict)
    path: str = ""

    @property
    def precisions(self) -> list[str]:
        return sorted(self.ridge_macs_per_byte)

    def resolve_precision(self, precision: str | None = None) -> str:
        """``precision`` (default: the device default), checked to have a roofline on this device."""
        p = precision or self.default_precision
        if p not in self.ridge_macs_per_byte:
            raise SpecError(
                f"device {self.name!r} has no {p!r} roofline; it has {self.precisions}"
                + did_you_mean(p, self.precisions)
            )
        return p

    def ridge(self, precision: str | None = None) -> float:
        """Ridge point in MACs per byte at ``precision`` (default: the device's default precision)."""
        return self.ridge_macs_per_byte[self.resolve_precision(precision)]

    def reached_ridge(self, precision: str | None = None) -> float:
        """The ridge point the device's runtime reaches: peak and bandwidth scaled by ``efficiency``."""
        return self.ridge(precision) * self.efficiency.get("compute", 1.0) / self.efficiency.get("memory", 1.0)

    def peak(self, precision: str | None = None) -> float | None:
        """Peak MACs/s at ``precision``, or None when only the ridge point is known (relative device)."""
        p = self.resolve_precision(precision)
        return self.peak_macs_per_s.get(p) if self.bandwidth_bytes_per_s else None

    def is_relative(self, precision: str | None = None) -> bool:
        return self.peak(precision) is None


def spec_dir() -> Path:
    """The folder of built-in spec files (inside the installed package, or the checkout's ``device_specs/``)."""
    packaged = resources.files("roofline") / "_data" / "device_specs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "device_specs"


def _builtin() -> dict[str, Path]:
    return {p.stem: p for p in sorted(spec_dir().glob("*.yaml"))}


def list_devices() -> list[str]:
    """Names of the built-in device specs."""
    return sorted(_builtin())


def load_device(device: str | os.PathLike | DeviceSpec) -> DeviceSpec:
    """A device spec by built-in name (``"pixel6_cpu"``), or from a YAML file path."""
    if isinstance(device, DeviceSpec):
        return device
    text = str(device)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise UnknownDeviceError(f"device spec file {text!r} does not exist")
        return _load(str(path.resolve()))
    builtin = _builtin()
    if text not in builtin:
        raise UnknownDeviceError(
            f"unknown device {text!r}{did_you_mean(text, builtin)}; built-in devices: {', '.join(builtin)} "
            f"(or give the path of a .yaml spec)"
        )
    return _load(str(builtin[text]))


def load_devices(devices=None) -> list[DeviceSpec]:
    """Specs for a name, a path, a DeviceSpec or a list of them; None means every built-in device."""
    if devices is None:
        return [load_device(n) for n in list_devices()]
    if isinstance(devices, (str, os.PathLike, DeviceSpec)):
        devices = [devices]
    return [load_device(d) for d in devices]


@lru_cache(maxsize=256)
def _load(path: str) -> DeviceSpec:
    where = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{where}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    spec = validate_spec(data, where)
    if spec.name != Path(path).stem:
        raise SpecError(f"{where}: field 'name': must equal the file name {Path(path).stem!r}, got {spec.name!r}")
    return DeviceSpec(**{**spec.__dict__, "path": path})


def _number(value, field_name: str, where: str) -> float:
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or x <= 0:
        raise SpecError(f"{where}: field {field_name!r}: must be a positive number, got {value!r}")
    return x


def _per_precision(data, field_name: str, where: str) -> dict[str, float]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{where}: field {field_name!r}: must map precision to a number, got {data!r}")
    out = {}
    for p, v in data.items():
        if p not in PRECISION_BYTES:
            raise SpecError(
                f"{where}: field '{field_name}.{p}': unknown precision; known: {sorted(PRECISION_BYTES)}"
                + did_you_mean(str(p), PRECISION_BYTES)
            )
        out[p] = _number(v, f"{field_name}.{p}", where)
    return out


def _calibration(data, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SpecError(f"{where}: field 'calibration': must map a layer kind to its fitted numbers")
    out = {}
    for kind, fit in data.items():
        for key, value in fit.items():
            if key not in _CALIBRATION_FIELDS:
                allowed = ", ".join(_CALIBRATION_FIELDS)
                raise SpecError(f"{where}: field 'calibration.{kind}.{key}': unknown; allowed: {allowed}")
            if key == "overhead_s" or key == "median_abs_error":
                if not (isinstance(value, int | float) and value >= 0):
                    raise SpecError(f"{where}: field 'calibration.{kind}.{key}': must be a number >= 0, got {value!r}")
            elif value is not None:
                _number(value, f"calibration.{kind}.{key}", where)
        if "bandwidth_bytes_per_s" not in fit and kind != "network":  # network: a constant per inference
            raise SpecError(f"{where}: field 'calibration.{kind}': missing bandwidth_bytes_per_s")
        out[str(kind)] = dict(fit)
    return out


def _efficiency(value, where: str, bandwidth) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not set(value) <= {"compute", "memory"}:
        raise SpecError(f"{where}: field 'efficiency': must map compute and/or memory to a share, got {value!r}")
    if bandwidth is None:
        raise SpecError(f"{where}: field 'efficiency': needs peak_macs_per_s and bandwidth_bytes_per_s to scale")
    return {k: _number(v, f"efficiency.{k}", where) for k, v in value.items()}


def _fusion(value, where: str) -> str | None:
    if value is not None and value not in FUSE_MODES:
        raise SpecError(f"{where}: field 'fusion': must be one of {list(FUSE_MODES)}, got {value!r}")
    return value


def _memory(data, where: str) -> dict:
    if data is None or data == {}:
        return {}
    if not isinstance(data, dict) or set(data) - {"on_chip_bytes", "keeps"}:
        raise SpecError(f"{where}: field 'memory': must map on_chip_bytes and keeps, got {data!r}")
    keeps = data.get("keeps")
    if not isinstance(keeps, list) or not keeps or not set(keeps) <= set(MEMORY_KEEPS):
        raise SpecError(f"{where}: field 'memory.keeps': must list some of {list(MEMORY_KEEPS)}, got {keeps!r}")
    return {"on_chip_bytes": _number(data.get("on_chip_bytes"), "memory.on_chip_bytes", where), "keeps": list(keeps)}


def _fit_record(data, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SpecError(f"{where}: field 'fit': must map names (data, rows, cv, ...) to values, got {data!r}")
    return dict(data)


def validate_spec(data, where: str = "<spec>") -> DeviceSpec:
    """Check a parsed spec mapping field by field; every error names ``where`` and the field."""
    if not isinstance(data, dict):
        raise SpecError(f"{where}: must be a YAML mapping of fields, got {type(data).__name__}")
    for key in data:
        if key not in _REQUIRED + _OPTIONAL:
            raise SpecError(
                f"{where}: field {key!r}: unknown field{did_you_mean(str(key), _REQUIRED + _OPTIONAL)}; "
                f"allowed: {', '.join(_REQUIRED + _OPTIONAL)}"
            )
    for key in _REQUIRED:
        if data.get(key) in (None, "", []):
            raise SpecError(f"{where}: field {key!r}: missing (required fields: {', '.join(_REQUIRED)})")
    for key, choices in (("kind", KINDS), ("provenance", PROVENANCES), ("default_precision", tuple(PRECISION_BYTES))):
        if data[key] not in choices:
            raise SpecError(
                f"{where}: field {key!r}: must be one of {list(choices)}, got {data[key]!r}"
                + did_you_mean(str(data[key]), choices)
            )
    sources = data["sources"]
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        raise SpecError(f"{where}: field 'sources': must be a non-empty list of citations, got {sources!r}")
    peak = _per_precision(data.get("peak_macs_per_s"), "peak_macs_per_s", where)
    ridge = _per_precision(data.get("ridge_macs_per_byte"), "ridge_macs_per_byte", where)
    bw = data.get("bandwidth_bytes_per_s")
    bw = None if bw is None else _number(bw, "bandwidth_bytes_per_s", where)
    if peak and bw is None:
        raise SpecError(f"{where}: field 'bandwidth_bytes_per_s': missing, but peak_macs_per_s is given")
    for p, macs in peak.items():
        derived = macs / bw  # type: ignore[operator]
        if p in ridge and abs(ridge[p] - derived) > _RIDGE_TOLERANCE * derived:
            raise SpecError(
                f"{where}: field 'ridge_macs_per_byte.{p}': {ridge[p]:g} is inconsistent with "
                f"peak_macs_per_s.{p} / bandwidth_bytes_per_s = {derived:.4g} (tolerance 1%)"
            )
        ridge.setdefault(p, derived)
    if data["default_precision"] not in ridge:
        raise SpecError(
            f"{where}: field 'default_precision': {data['default_precision']!r} has neither a peak nor a ridge "
            f"point; the spec has {sorted(ridge) or 'none'}"
        )
    return DeviceSpec(
        name=str(data["name"]),
        display_name=str(data["display_name"]),
        kind=data["kind"],
        default_precision=data["default_precision"],
        ridge_macs_per_byte=ridge,
        peak_macs_per_s=peak,
        bandwidth_bytes_per_s=bw,
        provenance=data["provenance"],
        sources=tuple(sources),
        notes=str(data.get("notes") or "").strip(),
        fingerprint=dict(data.get("fingerprint") or {}),
        calibration=_calibration(data.get("calibration"), where),
        fit=_fit_record(data.get("fit"), where),
        memory=_memory(data.get("memory"), where),
        fusion=_fusion(data.get("fusion"), where),
        efficiency=_efficiency(data.get("efficiency"), where, bw),
    )


def device_table(devices=None) -> pd.DataFrame:
    """One row per device: kind, default precision, peak, bandwidth, ridge point, provenance."""
    rows = []
    for d in load_devices(devices):
        p = d.default_precision
        rows.append(
            {
                "name": d.name,
                "display_name": d.display_name,
                "kind": d.kind,
                "precision": p,
                "peak_macs_per_s": d.peak(p),
                "bandwidth_bytes_per_s": d.bandwidth_bytes_per_s,
                "ridge_macs_per_byte": d.ridge(p),
                "provenance": d.provenance,
            }
        )
    return pd.DataFrame(rows)


def write_spec(spec: DeviceSpec, path) -> None:
    """Write a spec as YAML (the format ``load_device`` reads), whole or not at all."""
    data = {
        "name": spec.name, "display_name": spec.display_name, "kind": spec.kind,
        "default_precision": spec.default_precision, "provenance": spec.provenance,
        "peak_macs_per_s": dict(spec.peak_macs_per_s), "bandwidth_bytes_per_s": spec.bandwidth_bytes_per_s,
        "ridge_macs_per_byte": None if spec.bandwidth_bytes_per_s else dict(spec.ridge_macs_per_byte),
        "sources": list(spec.sources), "fingerprint": dict(spec.fingerprint),
        "memory": dict(spec.memory), "fusion": spec.fusion,
        "efficiency": dict(spec.efficiency),
        "calibration": {k: dict(v) for k, v in spec.calibration.items()},
        "fit": dict(spec.fit), "notes": spec.notes,
    }  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump({k: v for k, v in data.items() if v not in (None, {}, "")}, f, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
