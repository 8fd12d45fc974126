"""Whole-network measurements to fit the latency model to: a ``model,latency_ms`` CSV (a model file,
relative to the CSV, or a zoo name), read and checked (``roofline.devices.fit``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from roofline.errors import RooflineError

__all__ = ["FitError", "read_measurements", "checked_measurements"]


class FitError(ValueError, RooflineError):
    """Measurements that cannot be fitted: too few, non-positive, or unreadable."""


def read_measurements(path) -> pd.DataFrame:
    """A ``model,latency_ms`` CSV, model paths made absolute (relative ones are relative to the CSV)."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FitError(f"{path}: not a readable CSV ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return checked_measurements(df, str(path), base_dir=path.parent)


def checked_measurements(df: pd.DataFrame, where: str, base_dir: Path | None = None) -> pd.DataFrame:
    """``model,latency_ms`` rows checked (latencies finite and > 0), paths relative to ``base_dir`` resolved,
    a network measured twice kept once at its median."""
    missing = {"model", "latency_ms"} - set(df.columns)
    if missing:
        raise FitError(f"{where}: needs columns model,latency_ms; missing {sorted(missing)} (has {list(df.columns)})")
    df = df[["model", "latency_ms"]].copy()
    df["latency_ms"] = pd.to_numeric(df["latency_ms"], errors="coerce")
    bad = df[~(np.isfinite(df["latency_ms"]) & (df["latency_ms"] > 0))]
    if len(bad):
        row = bad.index[0]
        raise FitError(f"{where}: row {row + 2}: latency_ms must be a number > 0, got {df.loc[row, 'latency_ms']!r}")
    if base_dir is not None:
        df["model"] = [str(base_dir / m) if (base_dir / str(m)).exists() else str(m) for m in df["model"]]
    named = df["model"].map(lambda m: isinstance(m, str))  # ModelProtos and tables are not hashable
    if named.all() and df["model"].duplicated().any():  # the same network measured twice: its median
        df = df.groupby("model", as_index=False, sort=False)["latency_ms"].median()
    return df.reset_index(drop=True)
