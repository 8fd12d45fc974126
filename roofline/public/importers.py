"""Importers of the original downloads behind ``lut/``: each converts one source (a repository's data
files, a paper's table, a web page's table) into the long table the readers of ``roofline.public`` give
(``model``, ``device``, ``latency_ms`` and the source's extras); ``roofline.public.write_public``
stores it. ``lut/README.md`` says where each download comes from.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "import_help_nasbench201",
    "import_hw_nas_bench",
    "import_mnv4_table6",
    "import_coral_benchmarks",
    "import_qai_hub",
]


# -- HELP (HayeonLee/HELP): NAS-Bench-201 latencies, incl. HW-NAS-Bench's measured devices ---------
class _NoGlobals(pickle.Unpickler):
    """Plain Python data only (lists, dicts, numbers, strings): a data file needs nothing else."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is expected")


def _read_torch_plain(path: Path):
    """The object in a ``torch.save`` zip file that holds only plain Python data (no tensors)."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith("/data.pkl")]
        if len(names) != 1:
            raise ValueError(f"{path}: not a torch.save zip archive (no single */data.pkl)")
        return _NoGlobals(io.BytesIO(z.read(names[0]))).load()


def import_help_nasbench201(data_dir: str | Path, devices: list[str] | None = None) -> pd.DataFrame:
    """HELP's ``data/nasbench201`` folder -> long table (``arch_index``, ``model``, ``device``, ``latency_ms``).

    ``latency/<device>.pt`` holds one latency (ms) per NAS-Bench-201 architecture index,
    ``str_arch2idx.pt`` maps each architecture string to its index. ``devices``: file stems to keep
    (default: all).
    """
    data_dir = Path(data_dir)
    arch2idx = _read_torch_plain(data_dir / "str_arch2idx.pt")
    archs = np.empty(len(arch2idx), dtype=object)
    for arch, idx in arch2idx.items():
        archs[idx] = arch
    if any(a is None for a in archs):
        raise ValueError(f"{data_dir / 'str_arch2idx.pt'}: indices are not 0..{len(archs) - 1}")
    available = sorted(p.stem for p in (data_dir / "latency").glob("*.pt"))
    unknown = sorted(set(devices or []) - set(available))
    if unknown:
        raise KeyError(f"devices {unknown} not in {data_dir / 'latency'}; available: {available}")
    frames = []
    for device in devices or available:
        values = np.asarray(_read_torch_plain(data_dir / "latency" / f"{device}.pt"), dtype=float)
        if len(values) != len(archs):
            raise ValueError(f"{device}.pt: {len(values)} latencies for {len(archs)} architectures")
        frames.append(
            pd.DataFrame({"arch_index": np.arange(len(archs)), "model": archs, "device": device, "latency_ms": values})
        )
    return pd.concat(frames, ignore_index=True)


# -- HW-NAS-Bench (GATECH-EIC/HW-NAS-Bench): the pickle, format as read by hw_nas_bench_api --------
HW_NAS_BENCH_LATENCIES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")


def import_hw_nas_bench(
    pickle_path: str | Path, dataset: str = "cifar10", devices=HW_NAS_BENCH_LATENCIES
) -> pd.DataFrame:
    """``HW-NAS-Bench-v1_0.pickle`` -> long table for one dataset (NAS-Bench-201 space).

    The pickle is ``{"nasbench201": {dataset: {"<device>_latency": [...], "config": [{"arch_str": ...}, ...],
    ...}}, "fbnet": ...}`` (as ``hw_nas_bench_api.HWNASBenchAPI.query_by_index`` reads it). It is
    unpickled with the standard pickle module: load only the file from the HW-NAS-Bench repository.
    """
    with open(pickle_path, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - a data file the user downloaded from the named source
    space = data["nasbench201"]
    if dataset not in space:
        raise KeyError(f"dataset {dataset!r} not in {pickle_path}; available: {sorted(space)}")
    block = space[dataset]
    archs = [c["arch_str"] for c in block["config"]]
    frames = []
    for device in devices:
        values = np.asarray(block[f"{device}_latency"], dtype=float)
        frames.append(
            pd.DataFrame({"arch_index": np.arange(len(archs)), "model": archs, "device": device, "latency_ms": values})
        )
    return pd.concat(frames, ignore_index=True)


# -- MobileNetV4 paper, Table 6 (a markdown transcription) ----------------------------------------
MNV4_TABLE6_DEVICES = {
    "P6 CPU": "pixel6_cpu",
    "P8 EdgeTPU": "pixel8_edgetpu",
    "iPhone13 CoreML": "iphone13_coreml",
    "P4 Hexagon": "pixel4_hexagon",
    "P7 GPU": "pixel7_gpu",
    "S23 CPU": "s23_cpu",
    "S23 GPU": "s23_gpu",
}
# Table 6 row -> the project's zoo name, where the zoo builds that network
MNV4_TABLE6_ZOO = {
    "MobileNet-V1": "mobilenet_v1",
    "MobileNet-V2": "mobilenet_v2",
    "MobileNet-V2-0.5x": "mobilenet_v2_050",
    "MobileNet-V2-1.5x": "mobilenet_v2_150",
    "MobileNet-V2-2.0x": "mobilenet_v2_200",
    "MobileNet-V3L-0.5x": "mobilenet_v3_large_050",
    "MNv4-Conv-S": "mnv4_conv_s",
    "MNv4-Conv-M": "mnv4_conv_m",
    "MNv4-Conv-L": "mnv4_conv_l",
    "MNv4-Hybrid-M": "mnv4_hybrid_m",
    "MNv4-Hybrid-L": "mnv4_hybrid_l",
}
# per App. A and Tabs. 11-15 of the paper (the table itself does not print resolutions)
MNV4_RESOLUTION = {
    "MNv4-Conv-S": 224,
    "MNv4-Conv-M": 256,
    "MNv4-Hybrid-M": 256,
    "MNv4-Conv-L": 384,
    "MNv4-Hybrid-L": 384,
}


def _md_tables(text: str):
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            rows.append([c.strip() for c in line[1:-1].split("|")])
        elif rows:
            yield rows
            rows = []
    if rows:
        yield rows


def import_mnv4_table6(markdown: str) -> pd.DataFrame:
    """The markdown transcription of MobileNetV4 Table 6 -> long table.

    Columns: ``model`` (the paper's row name), ``device``, ``latency_ms``, ``zoo_name`` (empty where
    the zoo cannot build it), ``top1_pct``, ``params_m``, ``macs_g``, ``resolution`` (MNv4 rows only),
    ``status`` (``ok``, or ``failed`` where the paper says the model did not run: latency empty).
    "-" (not reported) cells are left out.
    """
    for rows in _md_tables(markdown):
        header = rows[0]
        if header[:2] == ["Model", "Top-1"] and all(d in header for d in MNV4_TABLE6_DEVICES):
            break
    else:
        raise ValueError("no Table 6 (a '| Model | Top-1 | ... |' table with the seven device columns) found")
    out = []
    for row in rows[2:]:
        cells = dict(zip(header, row))
        model = cells["Model"].replace("*", "").replace("†", "").strip()
        base = {
            "model": model,
            "zoo_name": MNV4_TABLE6_ZOO.get(model, ""),
            "top1_pct": float(cells["Top-1"]),
            "params_m": float(cells["Params M"]),
            "macs_g": float(cells["MACs G"]),
            "resolution": MNV4_RESOLUTION.get(model, 224 if model in MNV4_TABLE6_ZOO else np.nan),
        }
        for column, device in MNV4_TABLE6_DEVICES.items():
            value = cells[column]
            if value == "-":
                continue
            failed = value.lower() == "failed"
            latency = np.nan if failed else float(value)
            out.append({**base, "device": device, "latency_ms": latency, "status": "failed" if failed else "ok"})
    table = pd.DataFrame(out)
    return table[
        ["model", "device", "latency_ms", "status", "zoo_name", "top1_pct", "params_m", "macs_g", "resolution"]
    ]


# -- Coral Edge TPU benchmarks page (coral.ai/docs/edgetpu/benchmarks), Table 1 --------------------
CORAL_DEVICES = ("desktop_cpu", "desktop_cpu_usb_edgetpu", "embedded_cpu", "devboard_edgetpu")
CORAL_ZOO = {"MobileNet v1": "mobilenet_v1", "MobileNet v2": "mobilenet_v2"}
_CORAL_ROW = re.compile(r"^(?P<name>[^|]+?)\s*(?:\((?P<h>\d+)x(?P<w>\d+)\))?\s*\|\s*(?P<vals>[\d.\s|]+)\|?\s*$")


def import_coral_benchmarks(text: str) -> pd.DataFrame:
    """Table 1 of the Coral benchmarks page, as text with ``|``-separated cells -> long table.

    A row is ``Model (HxW) | desktop CPU | desktop CPU + USB Accelerator | embedded CPU | Dev Board``
    (ms per inference); a row may span two lines (name, then values). Columns: ``model``,
    ``device``, ``latency_ms``, ``resolution`` (empty where the page gives none), ``zoo_name``.
    """
    lines, out = [ln.strip() for ln in text.splitlines() if ln.strip()], []
    joined, pending = [], ""
    for ln in lines:
        if ln.endswith("|") and ln.count("|") == 1:
            pending = ln.rstrip("|").strip()  # a name line: "MobileNet v1 (224x224) |"
            continue
        joined.append(f"{pending} | {ln}" if pending else ln)
        pending = ""
    for ln in joined:
        m = _CORAL_ROW.match(ln)
        if not m:
            continue
        vals = [v.strip() for v in m["vals"].split("|") if v.strip()]
        if len(vals) != len(CORAL_DEVICES):
            continue
        name = m["name"].replace("*", "").strip()
        for device, v in zip(CORAL_DEVICES, vals):
            out.append(
                {
                    "model": name,
                    "device": device,
                    "latency_ms": float(v),
                    "resolution": float(m["h"]) if m["h"] else np.nan,
                    "zoo_name": CORAL_ZOO.get(name, ""),
                }
            )
    if not out:
        raise ValueError("no benchmark rows ('Model (HxW) | a | b | c | d |') found in the text")
    return pd.DataFrame(out)


# -- Qualcomm AI Hub Models (quic/ai-hub-models): per-model perf.yaml of its published jobs --------
def import_qai_hub(models_dir: str | Path) -> pd.DataFrame:
    """Every passed job in ``<models_dir>/<model>/perf.yaml`` of AI Hub Models -> long table.

    A perf.yaml holds ``precisions -> <precision> -> components -> <component> -> performance_metrics
    -> <device> -> <runtime> -> {inference_time_milliseconds, primary_compute_unit, job_status}``.
    Columns: ``model`` (the folder: AI Hub's model id), ``component``, ``device``, ``chipset`` (from
    ``devices_and_chipsets.yaml`` beside the folder, when there), ``precision`` (float, w8a8, ...),
    ``runtime`` (tflite, qnn_dlc, onnx, ...), ``compute_unit`` (NPU, GPU, CPU), ``latency_ms``.
    """
    models_dir = Path(models_dir)
    chipsets = {}
    for where in (models_dir.parent / "devices_and_chipsets.yaml", models_dir / "devices_and_chipsets.yaml"):
        if where.is_file():
            with open(where, encoding="utf-8") as f:
                devices = (yaml.safe_load(f) or {}).get("devices", {})
            chipsets = {name: d.get("chipset", "") for name, d in devices.items() if isinstance(d, dict)}
    rows = []
    for path in sorted(models_dir.glob("*/perf.yaml")):
        with open(path, encoding="utf-8") as f:
            perf = yaml.safe_load(f) or {}
        for precision, component, device, runtime, job in _qai_jobs(perf):
            ms = job.get("inference_time_milliseconds")
            if job.get("job_status", "Passed") != "Passed" or not isinstance(ms, (int, float)) or ms <= 0:
                continue
            rows.append({"model": path.parent.name, "component": component, "device": device,
                         "chipset": chipsets.get(device, ""), "precision": precision, "runtime": runtime,
                         "compute_unit": job.get("primary_compute_unit", ""), "latency_ms": float(ms)})  # fmt: skip
    if not rows:
        raise ValueError(f"{models_dir}: no <model>/perf.yaml with passed jobs found")
    return pd.DataFrame(rows)


def _qai_jobs(perf: dict):
    """(precision, component, device, runtime, job) of every job a perf.yaml lists."""
    for precision, p in (perf.get("precisions") or {}).items():
        for component, c in ((p or {}).get("components") or {}).items():
            for device, runtimes in ((c or {}).get("performance_metrics") or {}).items():
                for runtime, job in (runtimes or {}).items():
                    yield precision, component, device, runtime, job or {}
