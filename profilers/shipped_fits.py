"""The shipped specs fitted to public measurements: how ``device_specs/*_fitted.yaml`` are made.

Each device of the MobileNetV4 paper's Table 6 (``lut/mobilenetv4_table6``) gets a spec fitted with
``roofline.fit`` to the zoo networks the table lists, at the precision the paper ran it at (App. B:
CPUs, DSP and EdgeTPU int8; GPUs and CoreML fp16), with the cross-validated error in its ``fit`` record.
The ridge-point specs of the paper (``pixel6_cpu`` ...) stay as they are: these are their absolute,
fitted siblings. Regenerate (deterministic): ``python -m profilers.shipped_fits [DIR]``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

import roofline
from profilers.public_data import load_public, public_meta
from roofline.devices import DeviceSpec, write_spec
from roofline.fit import fit

__all__ = ["TABLE6", "fit_table6", "main"]

#: Table 6 column -> (spec name, kind, precision)
TABLE6 = {
    "pixel6_cpu": ("pixel6_cpu_fitted", "cpu", "int8"),
    "s23_cpu": ("galaxy_s23_cpu_fitted", "cpu", "int8"),
    "pixel4_hexagon": ("pixel4_dsp_fitted", "dsp", "int8"),
    "pixel8_edgetpu": ("pixel8_edgetpu_fitted", "npu", "int8"),
    "pixel7_gpu": ("pixel7_gpu_fitted", "gpu", "fp16"),
    "s23_gpu": ("galaxy_s23_gpu_fitted", "gpu", "fp16"),
    "iphone13_coreml": ("iphone13_ane_fitted", "npu", "fp16"),
}


def fit_table6(device: str) -> DeviceSpec:
    """The spec of one Table 6 device fitted to the zoo networks the table lists for it."""
    name, kind, precision = TABLE6[device]
    table = load_public("mobilenetv4_table6")
    rows = table[(table["device"] == device) & table["zoo_name"].notna()]
    models = [roofline.zoo.build(z, resolution=int(r)) for z, r in zip(rows["zoo_name"], rows["resolution"])]
    meta = public_meta("mobilenetv4_table6")["devices"][device]["name"]
    result = fit(pd.DataFrame({"model": models, "latency_ms": rows["latency_ms"].to_numpy()}), precision,
                 name=name, kind=kind, source=f"MobileNetV4 paper (arXiv 2404.10518) Table 6, {meta}")  # fmt: skip
    names = ", ".join(rows["zoo_name"])
    return replace(
        result.spec,
        display_name=f"{meta.split(',')[0]} (fitted to MobileNetV4 Table 6)",
        notes=f"Fitted by profilers/shipped_fits.py to the Table 6 latencies of the zoo networks {names} "
        f"(at their Table 6 resolutions). {result.summary()}. Use it for absolute milliseconds; the ridge-point "
        "spec of the paper (without _fitted) is the relative roofline.",
    )


def main(argv: list[str] | None = None) -> int:
    out = Path((argv or sys.argv[1:] or [str(Path(__file__).resolve().parent.parent / "device_specs")])[0])
    for device in TABLE6:
        spec = fit_table6(device)
        write_spec(spec, out / f"{spec.name}.yaml")
        print(f"{spec.name}: {spec.fit['cv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
