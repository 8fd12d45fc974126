"""A device spec and its validation: :class:`DeviceSpec` and :func:`validate_spec`.

A spec gives peak MACs/s per precision and DRAM bandwidth (bytes/s), hence the ridge point
RP = PeakMACs / PeakMemBW (MACs per byte); or, when a vendor publishes no peak, only the ridge point.
Predictions on a ridge-only spec are relative: latency in MAC-equivalents (units of 1/PeakMACs).
Every spec carries its provenance and sources. ``validate_spec`` checks a parsed spec field by field,
each error naming the file and the field; reading files is ``roofline.devices.registry``'s.
See ``docs/device_specs.md`` for the format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from roofline.counting.fuse import FUSE_MODES
from roofline.dtypes import PRECISION_BYTES
from roofline.errors import SpecError, did_you_mean

__all__ = ["DeviceSpec", "validate_spec", "KINDS", "PROVENANCES", "MEMORY_KEEPS"]

KINDS = ("cpu", "gpu", "dsp", "npu")
PROVENANCES = ("datasheet", "fitted", "measured")
_REQUIRED = ("name", "display_name", "kind", "default_precision", "provenance", "sources")
_OPTIONAL = ("peak_macs_per_s", "bandwidth_bytes_per_s", "ridge_macs_per_byte", "notes", "fingerprint", "calibration",
             "fit", "memory", "fusion", "efficiency")  # fmt: skip
#: what a memory model may keep on chip (``memory.keeps``)
MEMORY_KEEPS = ("weights", "activations")
# what a fitted spec's ``calibration`` gives per layer kind (see roofline.profilers.calibrate)
_CALIBRATION_FIELDS = ("peak_macs_per_s", "bandwidth_bytes_per_s", "overhead_s", "cache_bytes", "rows",
                       "median_abs_error")  # fmt: skip
_RIDGE_TOLERANCE = 0.01
# beyond these a number is a typo or a corrupt file, not a device: predictions would overflow or vanish
_MIN_RATE = 1.0  # peak MACs/s and bandwidths (bytes/s)
_RIDGE_RANGE = (1e-9, 1e12)  # MACs per byte
_SHARE_RANGE = (1e-6, 1e6)  # efficiency: shares of the peak and bandwidth reached


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


def _short(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message stays one readable line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(value, field_name: str, where: str, low: float = 0.0, high: float = math.inf) -> float:
    """A finite number in (``low``, ``high``] (``low`` = 0) or [``low``, ``high``]; YAML strings such as 1e9 count."""
    try:
        x = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x) or x <= 0:
        raise SpecError(f"{where}: field {field_name!r}: must be a positive number, got {_short(value)}")
    if x < low or x > high:
        accepted = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise SpecError(f"{where}: field {field_name!r}: must be {accepted}, got {_short(value)}")
    return x


def _string(data: dict, field_name: str, where: str, required: bool = True) -> str:
    value = data.get(field_name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise SpecError(f"{where}: field {field_name!r}: must be a string, got {_short(value)}")
    return value.strip()


def _per_precision(data, field_name: str, where: str, low: float = 0.0, high: float = math.inf) -> dict[str, float]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{where}: field {field_name!r}: must map precision to a number, got {_short(data)}")
    out = {}
    for p, v in data.items():
        if p not in PRECISION_BYTES:
            raise SpecError(
                f"{where}: field '{field_name}.{p}': unknown precision; known: {sorted(PRECISION_BYTES)}"
                + did_you_mean(str(p), PRECISION_BYTES)
            )
        out[p] = _number(v, f"{field_name}.{p}", where, low, high)
    return out


def _calibration(data, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in data.items()):
        raise SpecError(
            f"{where}: field 'calibration': must map a layer kind to its fitted numbers, got {_short(data)}"
        )
    out = {}
    for kind, fit in data.items():
        numbers = {}
        for key, value in fit.items():
            name = f"calibration.{kind}.{key}"
            if key not in _CALIBRATION_FIELDS:
                allowed = ", ".join(_CALIBRATION_FIELDS)
                raise SpecError(f"{where}: field {name!r}: unknown; allowed: {allowed}")
            if key in ("overhead_s", "median_abs_error"):
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                    raise SpecError(f"{where}: field {name!r}: must be a finite number >= 0, got {_short(value)}")
                numbers[key] = value
            elif value is None and key != "bandwidth_bytes_per_s":  # no peak: a kind without MACs
                numbers[key] = None
            elif key in ("peak_macs_per_s", "bandwidth_bytes_per_s"):
                numbers[key] = _number(value, name, where, _MIN_RATE)
            else:  # cache_bytes, rows: kept as written when whole numbers
                x = _number(value, name, where)
                numbers[key] = value if isinstance(value, int) else x
        if kind == "network" and "overhead_s" not in fit:
            raise SpecError(f"{where}: field 'calibration.network': missing overhead_s (the cost per inference)")
        if "bandwidth_bytes_per_s" not in fit and kind != "network":  # network: a constant per inference
            raise SpecError(f"{where}: field 'calibration.{kind}': missing bandwidth_bytes_per_s")
        out[kind] = numbers
    return out


def _efficiency(value, where: str, bandwidth) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not set(value) <= {"compute", "memory"}:
        raise SpecError(f"{where}: field 'efficiency': must map compute and/or memory to a share, got {_short(value)}")
    if bandwidth is None:
        raise SpecError(f"{where}: field 'efficiency': needs peak_macs_per_s and bandwidth_bytes_per_s to scale")
    return {k: _number(v, f"efficiency.{k}", where, *_SHARE_RANGE) for k, v in value.items()}


def _fusion(value, where: str) -> str | None:
    if value is not None and (not isinstance(value, str) or value not in FUSE_MODES):
        raise SpecError(f"{where}: field 'fusion': must be one of {list(FUSE_MODES)}, got {_short(value)}")
    return value


def _memory(data, where: str) -> dict:
    if data is None or data == {}:
        return {}
    if not isinstance(data, dict) or set(data) - {"on_chip_bytes", "keeps"}:
        raise SpecError(f"{where}: field 'memory': must map on_chip_bytes and keeps, got {_short(data)}")
    keeps = data.get("keeps")
    if not isinstance(keeps, list) or not keeps or not all(isinstance(k, str) and k in MEMORY_KEEPS for k in keeps):
        raise SpecError(f"{where}: field 'memory.keeps': must list some of {list(MEMORY_KEEPS)}, got {_short(keeps)}")
    return {"on_chip_bytes": _number(data.get("on_chip_bytes"), "memory.on_chip_bytes", where), "keeps": list(keeps)}


def _fit_record(data, where: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SpecError(f"{where}: field 'fit': must map names (data, rows, cv, ...) to values, got {_short(data)}")
    cv = data.get("cv")
    if cv is not None:
        if not isinstance(cv, dict):
            raise SpecError(f"{where}: field 'fit.cv': must map names (folds, within_10pct, ...) to values, "
                            f"got {_short(cv)}")  # fmt: skip
        for key, value in cv.items():
            if key != "folds" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise SpecError(f"{where}: field 'fit.cv.{key}': must be a number, got {_short(value)}")
    return dict(data)


def _fingerprint(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{where}: field 'fingerprint': must map names (soc, android, ...) to values, "
                        f"got {_short(value)}")  # fmt: skip
    return dict(value)


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
        if not isinstance(data[key], str) or data[key] not in choices:
            raise SpecError(
                f"{where}: field {key!r}: must be one of {list(choices)}, got {_short(data[key])}"
                + did_you_mean(str(data[key]), choices)
            )
    name, display_name = _string(data, "name", where), _string(data, "display_name", where)
    notes = _string(data, "notes", where, required=False)
    sources = data["sources"]
    if not isinstance(sources, list) or not all(isinstance(s, str) and s.strip() for s in sources):
        raise SpecError(f"{where}: field 'sources': must be a non-empty list of citations, got {_short(sources)}")
    peak = _per_precision(data.get("peak_macs_per_s"), "peak_macs_per_s", where, _MIN_RATE)
    ridge = _per_precision(data.get("ridge_macs_per_byte"), "ridge_macs_per_byte", where, *_RIDGE_RANGE)
    bw = data.get("bandwidth_bytes_per_s")
    bw = None if bw is None else _number(bw, "bandwidth_bytes_per_s", where, _MIN_RATE)
    if peak and bw is None:
        raise SpecError(f"{where}: field 'bandwidth_bytes_per_s': missing, but peak_macs_per_s is given")
    for p, macs in peak.items():
        derived = macs / bw  # type: ignore[operator]
        if not _RIDGE_RANGE[0] <= derived <= _RIDGE_RANGE[1]:
            raise SpecError(
                f"{where}: field 'peak_macs_per_s.{p}': {macs:g} / bandwidth_bytes_per_s {bw:g} = a ridge point "
                f"of {derived:.3g} MACs/byte, outside {_RIDGE_RANGE[0]:g} to {_RIDGE_RANGE[1]:g}: is a number mistyped?"
            )
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
        name=name,
        display_name=display_name,
        kind=data["kind"],
        default_precision=data["default_precision"],
        ridge_macs_per_byte=ridge,
        peak_macs_per_s=peak,
        bandwidth_bytes_per_s=bw,
        provenance=data["provenance"],
        sources=tuple(sources),
        notes=notes,
        fingerprint=_fingerprint(data.get("fingerprint"), where),
        calibration=_calibration(data.get("calibration"), where),
        fit=_fit_record(data.get("fit"), where),
        memory=_memory(data.get("memory"), where),
        fusion=_fusion(data.get("fusion"), where),
        efficiency=_efficiency(data.get("efficiency"), where, bw),
    )
