"""Public latency measurements of real devices: the readers of what ``lut/`` ships.

Each dataset lives in ``lut/<dataset>/`` as a CSV (optionally xz/gz-compressed) plus a ``meta.yaml``
with its provenance; ``lut/README.md`` says where each came from and how it was converted.

- :func:`load_public` reads a shipped dataset as a long DataFrame: one row per (model, device),
  columns ``model``, ``device``, ``latency_ms`` and the dataset's own extras.
- :func:`load_layers` reads the layer tables a dataset ships for networks the zoo does not build
  (``layers:`` in its ``meta.yaml``), counted once from exports that need torch, to price without it.
- :func:`write_public` stores a long table the way ``lut/`` does; the importers that make one from an
  original download (a repository's data files, a paper's table, a web page's table) are
  ``roofline.public.importers`` (``import_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

__all__ = [
    "LUT_DIR",
    "list_public",
    "public_meta",
    "load_public",
    "load_layers",
    "write_layers",
    "write_public",
]


def _lut_dir() -> Path:
    """The shipped tables: inside the installed package, or the checkout's ``lut/``."""
    from importlib import resources

    packaged = resources.files("roofline") / "_data" / "lut"
    return Path(str(packaged)) if packaged.is_dir() else Path(__file__).resolve().parents[2] / "lut"


LUT_DIR = _lut_dir()
REQUIRED = ("model", "device", "latency_ms")


# -- reading what is shipped ----------------------------------------------------------------------
def list_public() -> list[str]:
    """Names of the shipped datasets (folders of ``lut/`` with a ``meta.yaml``)."""
    return sorted(p.parent.name for p in LUT_DIR.glob("*/meta.yaml"))


def public_meta(dataset: str) -> dict:
    """The provenance record (``meta.yaml``) of a shipped dataset."""
    path = LUT_DIR / dataset / "meta.yaml"
    if not path.is_file():
        raise KeyError(f"unknown public dataset {dataset!r}; known: {list_public()}")
    with open(path, encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    for key in ("source", "file", "layout", "devices", "units"):
        if key not in meta:
            raise ValueError(f"{path}: missing key {key!r}")
    return meta


def load_public(dataset: str) -> pd.DataFrame:
    """A shipped dataset as a long DataFrame: ``model``, ``device``, ``latency_ms`` plus its extras.

    ``layout: wide`` files hold one row per model and one column per device (named as in
    ``meta.yaml``'s ``devices``); ``layout: long`` files are already one row per measurement.
    Missing measurements (empty cells) are dropped, never read as zero.
    """
    meta = public_meta(dataset)
    path = LUT_DIR / dataset / meta["file"]
    table = pd.read_csv(path)  # compression from the suffix
    devices = list(meta["devices"])
    if meta["layout"] == "wide":
        missing = [d for d in devices if d not in table.columns]
        if missing:
            raise ValueError(f"{path}: device columns {missing} named in meta.yaml are missing")
        ids = [c for c in table.columns if c not in devices]
        table = table.melt(id_vars=ids, value_vars=devices, var_name="device", value_name="latency_ms")
    elif meta["layout"] != "long":
        raise ValueError(f"{path.parent / 'meta.yaml'}: layout must be 'wide' or 'long', got {meta['layout']!r}")
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    table = table.dropna(subset=["latency_ms"]).reset_index(drop=True)
    table["latency_ms"] = table["latency_ms"].astype(float)
    front = list(REQUIRED)
    return table[front + [c for c in table.columns if c not in front]]


LAYER_COLUMNS = ("model", "op_type", "kind", "macs", "weight_bytes", "input_bytes", "output_bytes", "bytes")


def load_layers(dataset: str) -> dict[str, pd.DataFrame]:
    """The shipped layer tables of a dataset's networks (``roofline.count`` output), by model name.

    They are what ``roofline.count`` gave on the exports that ``meta.yaml``'s ``layers`` names; each
    carries the counting options (``fuse``, ``weight_dtype``, ``activation_dtype``) in ``attrs`` so that
    ``roofline.predict`` and ``roofline.fit`` take it as they take a counted model.
    """
    meta = public_meta(dataset)
    if "layers" not in meta:
        raise KeyError(f"public dataset {dataset!r} ships no layer tables")
    info = meta["layers"]
    path = LUT_DIR / dataset / info["file"]
    table = pd.read_csv(path)
    missing = [c for c in LAYER_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    numbers = table[list(LAYER_COLUMNS[3:])]
    if (numbers.fillna(0) < 0).any().any() or not np.isfinite(numbers.fillna(0).to_numpy(float)).all():
        raise ValueError(f"{path}: MACs and bytes must be finite and >= 0")
    out = {}
    for model, rows in table.groupby("model", sort=False):
        t = rows.drop(columns="model").reset_index(drop=True)
        t.attrs.update(model=model, **{k: info[k] for k in ("fuse", "weight_dtype", "activation_dtype")})
        out[model] = t
    return out


def write_layers(dataset: str, models: Mapping[str, str | Path]) -> Path:
    """Count ``models`` (label -> model file) as ``meta.yaml``'s ``layers`` says and store the tables
    that :func:`load_layers` reads (how the shipped layer tables are made, from exports that need torch)."""
    import roofline

    info = public_meta(dataset)["layers"]
    tables = []
    for label, model in models.items():
        t = roofline.count(model, fuse=info["fuse"], weight_dtype=info["weight_dtype"],
                           activation_dtype=info["activation_dtype"])  # fmt: skip
        tables.append(t.assign(model=label)[list(LAYER_COLUMNS)])
        gmacs, mb = t["macs"].sum() / 1e9, t["weight_bytes"].sum() / 1e6
        print(f"{label:<26} {len(t):4d} layers  {gmacs:6.2f} GMACs  {mb:6.1f} MB of weights")
    return write_public(pd.concat(tables), LUT_DIR / dataset / info["file"])


def write_public(table: pd.DataFrame, path: str | Path, layout: str = "long", id_columns=("model",)) -> Path:
    """Store a long table as ``lut/`` does (``layout="wide"``: one column per device). Written atomically."""
    path = Path(path)
    if layout == "wide":
        table = table.pivot_table(index=list(id_columns), columns="device", values="latency_ms", sort=False)
        table = table.reset_index()
        table.columns.name = None
    from roofline.files import atomic_path

    compression = {".xz": "xz", ".gz": "gzip"}.get(path.suffix)
    with atomic_path(path) as tmp:  # a temporary file beside it, fsynced, renamed over it
        table.to_csv(tmp, index=False, compression=compression, float_format="%.10g")
    return path
