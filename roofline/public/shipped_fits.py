"""The shipped specs fitted to public measurements: how ``device_specs/*_fitted.yaml`` are made.

Each device of the MobileNetV4 paper's Table 6 (``lut/mobilenetv4_table6``) gets a spec fitted with
``roofline.fit`` to the zoo networks the table lists, at the precision the paper ran it at (App. B:
CPUs, DSP and EdgeTPU int8; GPUs and CoreML fp16), with the cross-validated error in its ``fit`` record.
The ridge-point specs of the paper (``pixel6_cpu`` ...) stay as they are: these are their absolute,
fitted siblings. Regenerate (deterministic): ``python -m roofline.public.shipped_fits [DIR]``.

Phones of Qualcomm AI Hub (:data:`QAI_HUB`: ``lut/qai_hub``) get a spec fitted the same way to the
published times of the 23 torchvision classifiers AI Hub runs (float models, which its NPU runs in fp16).

The datasheet specs with published latencies of their device (:data:`DATASHEET`: ``lut/published_latencies``,
one runtime per device, or Table 6) keep their datasheet peak and bandwidth and gain two fitted numbers
(``roofline.fit(..., base=SPEC)``): an ``efficiency`` (the share of the datasheet's peak and bandwidth
that runtime reaches) and a fixed cost per inference. ``python -m roofline.public.shipped_fits --datasheet``
prints them and their leave-one-out errors; the spec files hold them by hand, with their comments.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd

import roofline
from roofline.devices import DeviceSpec, write_spec
from roofline.devices.fit import fit
from roofline.public import load_layers, load_public, public_meta
from roofline.public.reference_nets import reference_model

__all__ = ["TABLE6", "QAI_HUB", "DATASHEET", "fit_table6", "fit_qai_hub", "fit_datasheet", "main"]

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
        notes=f"Fitted by roofline/public/shipped_fits.py to the Table 6 latencies of the zoo networks {names} "
        f"(at their Table 6 resolutions). {result.summary()}. Use it for absolute milliseconds; the ridge-point "
        "spec of the paper (without _fitted) is the relative roofline.",
    )


#: AI Hub device -> (spec name, kind, AI Hub precision, runtime); fitted at fp16 (the NPU runs "float" so)
QAI_HUB = {"Samsung Galaxy S24": ("galaxy_s24_npu_fitted", "npu", "float", "tflite")}


def qai_hub_rows(device: str) -> pd.DataFrame:
    """AI Hub's published times of the classifiers whose layer tables ship (``lut/qai_hub``) on ``device``."""
    _, _, precision, runtime = QAI_HUB[device]
    tables = load_layers("qai_hub")
    table = load_public("qai_hub")
    rows = table[(table["device"] == device) & (table["precision"] == precision) & (table["runtime"] == runtime)
                 & (table["compute_unit"] == "NPU") & table["model"].isin(tables)]  # fmt: skip
    return pd.DataFrame({"model": [tables[m] for m in rows["model"]], "latency_ms": rows["latency_ms"].to_numpy(),
                         "label": list(rows["model"])})  # fmt: skip


def fit_qai_hub(device: str) -> DeviceSpec:
    """The spec of one AI Hub phone's NPU fitted to the classifiers' published times."""
    name, kind, precision, runtime = QAI_HUB[device]
    rows = qai_hub_rows(device)
    result = fit(rows[["model", "latency_ms"]], "fp16", name=name, kind=kind,
                 source=f"Qualcomm AI Hub Models perf.yaml, {device}, {runtime} {precision} on the NPU")  # fmt: skip
    return replace(
        result.spec,
        display_name=f"{public_meta('qai_hub')['devices'][device]['name']} NPU (fitted to Qualcomm AI Hub)",
        notes=f"Fitted by roofline/public/shipped_fits.py to AI Hub's published {runtime} times ({precision} models, "
        f"run in fp16 on the NPU) of the torchvision classifiers {', '.join(rows['label'])} at 224x224. "
        f"{result.summary()}.",
    )


#: datasheet spec -> (dataset, its device, the runtime whose rows are fitted (None: all))
DATASHEET = {
    "jetson_nano_gpu": ("published_latencies", "jetson_nano_gpu", "TensorRT"),
    "jetson_orin_nano": ("published_latencies", "jetson_orin_nano", "TensorRT"),
    "adreno_640": ("published_latencies", "adreno_640", "ncnn Vulkan"),
    "rpi4_cpu": ("published_latencies", "rpi4_cpu", "ncnn"),
    "snapdragon855_hexagon": ("mobilenetv4_table6", "pixel4_hexagon", None),
}


def datasheet_rows(spec: str) -> pd.DataFrame:
    """The published latencies a datasheet spec is fitted to: model (built), latency_ms, label."""
    dataset, device, runtime = DATASHEET[spec]
    table = load_public(dataset)
    rows = table[(table["device"] == device) & table["zoo_name"].notna()]
    if runtime is not None:
        rows = rows[rows["runtime"] == runtime]
    models = [reference_model(z, int(r)) for z, r in zip(rows["zoo_name"], rows["resolution"])]
    out = pd.DataFrame({"model": models, "latency_ms": rows["latency_ms"].to_numpy(), "label": list(rows["zoo_name"])})
    out.attrs["precision"] = rows["precision"].unique().item() if "precision" in rows else None
    return out


def fit_datasheet(spec: str):
    """The datasheet spec's efficiency and fixed cost fitted to its device's published latencies."""
    from roofline.devices import load_device

    base = load_device(spec)
    base = replace(base, efficiency={}, calibration={}, fit={}, provenance="datasheet")  # the datasheet part
    rows = datasheet_rows(spec)
    precision = rows.attrs["precision"] or base.default_precision  # the published rows' (Table 6: the spec's)
    return fit(rows[["model", "latency_ms"]], precision, base=base, name=spec, kind=base.kind,
               source=f"{DATASHEET[spec][0]} {DATASHEET[spec][1]}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--datasheet"]:
        for spec in DATASHEET:
            r = fit_datasheet(spec)
            e = r.spec.efficiency
            print(f"{spec}: efficiency compute {e['compute']:.4g}, memory {e['memory']:.4g}, fixed cost "
                  f"{r.spec.calibration['network']['overhead_s'] * 1e3:.4g} ms; {r.summary()}")  # fmt: skip
        return 0
    out = Path((argv or [str(Path(__file__).resolve().parents[2] / "device_specs")])[0])
    for spec in [*map(fit_table6, TABLE6), *map(fit_qai_hub, QAI_HUB)]:
        write_spec(spec, out / f"{spec.name}.yaml")
        print(f"{spec.name}: {spec.fit['cv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
