"""The registry of device spec files: the built-in ones in ``device_specs/`` and a user's own ``.yaml``.

:func:`load_device` is the one resolver of "a name, a path or a DeviceSpec" into a spec; every path
(predict, sweep, search, validate, fit) goes through it. :func:`list_devices` names the built-in specs
(a spec's ``name`` must equal its file's stem, so no two files declare one name); the default devices
of the commands are named here too.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml

from roofline.devices.spec import DeviceSpec, validate_spec
from roofline.errors import SpecError, UnknownDeviceError, did_you_mean

__all__ = ["list_devices", "load_device", "load_devices", "device_table", "spec_dir", "write_spec",
           "PAPER_LOW_AND_HIGH_RIDGE_DEVICES", "PAPER_HIGH_RIDGE_DEVICE"]  # fmt: skip

# The default devices. ``None`` (``predict``, ``sweep``, ``device_table``, ``roofline predict``) means
# every built-in device (:func:`list_devices`); the commands that need a few name them here.
#: the MobileNetV4 paper's two ends of the ridge-point range (Table 16: Pixel 6 CPU 31.2 and Pixel 8
#: EdgeTPU 433.8 MACs/byte): what ``roofline search`` prices candidates on when no ``--device`` is given
PAPER_LOW_AND_HIGH_RIDGE_DEVICES = ("pixel6_cpu", "pixel8_edgetpu")
#: the paper's high ridge point: the device ``roofline plot roofline`` draws when none is given
PAPER_HIGH_RIDGE_DEVICE = PAPER_LOW_AND_HIGH_RIDGE_DEVICES[1]

#: what ``--device`` must not be given: a model, not a spec
_MODEL_SUFFIXES = (".onnx", ".tflite", ".ort", ".pb", ".pt", ".pth", ".h5", ".keras")


def spec_dir() -> Path:
    """The folder of built-in spec files (inside the installed package, or the checkout's ``device_specs/``)."""
    packaged = resources.files("roofline") / "_data" / "device_specs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "device_specs"


def _builtin() -> dict[str, Path]:
    """Built-in name -> spec file; two files for one name (``x.yaml`` and ``x.yml``, or names that differ
    only in case) are refused. That a file's ``name`` equals its stem is checked when it is loaded."""
    folder = spec_dir()
    out: dict[str, Path] = {}
    seen: dict[str, Path] = {}  # lower-case name -> file
    for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        other = seen.setdefault(p.stem.lower(), p)
        if other is not p:
            raise SpecError(f"{folder.name}: {other.name} and {p.name} both declare device {p.stem!r}: "
                            "one device, one spec file")  # fmt: skip
        out[p.stem] = p
    return out


def list_devices() -> list[str]:
    """Names of the built-in device specs."""
    return sorted(_builtin())


def load_device(device: str | os.PathLike | DeviceSpec) -> DeviceSpec:
    """A device spec by built-in name (``"pixel6_cpu"``), or from a YAML file path."""
    if isinstance(device, DeviceSpec):
        return device
    text = str(device)
    builtin = _builtin()
    if text not in builtin and text.lower().endswith(_MODEL_SUFFIXES):
        raise SpecError(f"{os.path.basename(text)}: a model file, not a device spec: a device is a built-in name "
                        f"({', '.join(builtin)}) or a spec .yaml")  # fmt: skip
    if text.endswith((".yaml", ".yml")) or os.sep in text or (os.altsep and os.altsep in text):
        path = Path(text)
        if path.is_dir():
            raise SpecError(f"device spec {text!r} is a folder; give a spec .yaml file")
        if not path.is_file():
            raise UnknownDeviceError(f"device spec file {text!r} does not exist")
        stat = path.stat()
        return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if text not in builtin:
        raise UnknownDeviceError(
            f"unknown device {text!r}{did_you_mean(text, builtin)}; built-in devices: {', '.join(builtin)} "
            f"(or give the path of a .yaml spec)"
        )
    return _load(str(builtin[text]))  # shipped specs do not change under a running process


def load_devices(devices=None) -> list[DeviceSpec]:
    """Specs for a name, a path, a DeviceSpec or a list of them; None means every built-in device.

    Two spec files that declare one name (a user's ``my/pixel6_cpu.yaml`` beside the built-in
    ``pixel6_cpu``) are refused: a prediction's devices are told apart by name."""
    if devices is None:
        return [load_device(n) for n in list_devices()]
    if isinstance(devices, (str, os.PathLike, DeviceSpec)):
        devices = [devices]
    specs = [load_device(d) for d in devices]
    files: dict[str, str] = {}
    for spec in specs:
        if spec.path and files.setdefault(spec.name, spec.path) != spec.path:
            raise SpecError(f"{files[spec.name]} and {spec.path} both declare device {spec.name!r}: rename one "
                            "(its name and its file)")  # fmt: skip
    return specs


@lru_cache(maxsize=256)
def _load(path: str, mtime_ns: int = 0, size: int = 0) -> DeviceSpec:
    """The spec at ``path``; ``mtime_ns`` and ``size`` key the cache, so that an edited file is read again."""
    where = os.path.basename(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{where}: not a UTF-8 text file (byte {exc.start} is {raw[exc.start]:#04x}); a device spec "
                        "is YAML text") from None  # fmt: skip
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML{_yaml_where(exc)}: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise SpecError(f"{where}: not valid YAML: nested too deeply") from None
    spec = validate_spec(data, where)
    if spec.name != Path(path).stem:
        raise SpecError(f"{where}: field 'name': must equal the file name {Path(path).stem!r}, got {spec.name!r}")
    return DeviceSpec(**{**spec.__dict__, "path": path})


def _yaml_where(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f" at line {mark.line + 1}"
    position = getattr(exc, "position", None)  # a ReaderError: a character YAML does not allow
    return f" at character {position}" if position is not None else ""


def _yaml_problem(exc) -> str:
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or type(exc).__name__
    return " ".join(str(problem).split())


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
    from roofline.files import atomic_write

    text = yaml.safe_dump({k: v for k, v in data.items() if v not in (None, {}, "")}, sort_keys=False)
    atomic_write(path, text)  # a temporary file beside it, fsynced, renamed over it
