"""Latency lookup tables: a CSV of measured kernels plus a metadata file, built resumably.

- Every measured row is appended, flushed and fsynced under an exclusive file lock, so a build
  killed at any moment keeps every finished row, and two writers at once never interleave lines.
- A rerun skips the keys already in the table.
- Loading checks the header, every row and the metadata; a damaged or foreign table is rejected with
  the file and line named. A line cut short by a kill (no trailing newline) is dropped, and reported.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from roofline.errors import RooflineError

__all__ = ["LUT_COLUMNS", "LutError", "Lut", "open_lut"]

#: the columns of every LUT, in order (unit-suffixed)
LUT_COLUMNS = ["key", "latency_ms", "p10_ms", "p90_ms", "cv", "repeats", "noisy", "nodes", "reorder_in_ms",
               "reorder_out_ms", "measured_at"]  # fmt: skip
_FORMAT = "roofline-lut-2"
# metadata that describes how rows were measured but may differ between runs that add to one table
_INFORMATIONAL = {"measure", "trace_overhead_us", "stream_bandwidth_bytes_per_s", "cache_bytes", "thermal_max_c"}


class LutError(ValueError, RooflineError):
    """A lookup table or its metadata is damaged, foreign or inconsistent."""


@contextmanager
def _locked(path: Path, mode: str):
    with open(path, mode, encoding="utf-8", newline="") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@dataclass
class Lut:
    """A LUT on disk: ``path`` (CSV) and ``path.with_suffix('.meta.json')`` (conditions)."""

    path: Path
    meta: dict
    drift: object = None  # the machine's drift while this process added rows (see profilers.build.Drift)

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".meta.json")

    def table(self) -> pd.DataFrame:
        """The rows measured so far (validated), one per key (the first measurement of a key wins)."""
        return _read(self.path)

    def done(self) -> set[str]:
        return set(self.table()["key"])

    def append(self, rows: Iterable[dict]) -> int:
        """Append rows (dicts with the LUT columns) durably; returns how many were written."""
        n = 0
        with _locked(self.path, "a+") as f:
            _drop_partial_line(f)
            writer = csv.DictWriter(f, LUT_COLUMNS, extrasaction="raise", lineterminator="\n")
            for row in rows:
                writer.writerow({c: row[c] for c in LUT_COLUMNS})
                n += 1
            f.flush()
            os.fsync(f.fileno())
        return n


def _drop_partial_line(f) -> None:
    """Cut off a last line that a killed writer left without its newline (it was never a whole row)."""
    f.flush()
    with open(f.name, "rb") as raw:
        data = raw.read()
    if data and not data.endswith(b"\n"):
        f.truncate(data.rfind(b"\n") + 1)
    f.seek(0, os.SEEK_END)


def open_lut(path, meta: dict | None = None) -> Lut:
    """Open (or create) the LUT at ``path``; ``meta`` must match the stored metadata's conditions.

    Creating writes the header and the metadata; opening an existing table validates it, and refuses
    to mix measurements taken under different conditions (runtime, version, threads, precision...).
    """
    path = Path(path)
    meta_path = path.with_suffix(".meta.json")
    if path.exists():
        _read(path)  # validates
        try:
            stored = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LutError(f"{path.name}: its metadata file {meta_path.name} is missing") from None
        except json.JSONDecodeError as exc:
            raise LutError(f"{meta_path.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if stored.get("format") != _FORMAT:
            raise LutError(
                f"{meta_path.name}: not a roofline LUT (format {stored.get('format')!r}, expected {_FORMAT!r})"
            )
        if meta is not None:
            conditions = stored.get("conditions", {})
            changed = {k: (conditions.get(k), v) for k, v in meta.items()
                       if k not in _INFORMATIONAL and conditions.get(k) != v}  # fmt: skip
            if changed:
                detail = ", ".join(f"{k}: {a!r} in the table, {b!r} now" for k, (a, b) in changed.items())
                raise LutError(f"{path.name}: measured under other conditions ({detail}); use another file")
        return Lut(path, stored)
    if meta is None:
        raise LutError(f"{path.name} does not exist (give its conditions to create it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path, "a+") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:  # another writer may have created it between our check and the lock
            f.write(",".join(LUT_COLUMNS) + "\n")
    record = {"format": _FORMAT, "conditions": meta}
    if not meta_path.exists():
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, meta_path)
    return open_lut(path, meta)


def _read(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    if not text.endswith("\n") and lines:
        lines = lines[:-1]  # a row cut short by a kill: dropped
    if not lines or lines[0] != ",".join(LUT_COLUMNS):
        head = lines[0][:80] if lines else ""
        raise LutError(f"{path.name}: not a roofline LUT (header {head!r}, expected {','.join(LUT_COLUMNS)!r})")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = next(csv.reader(io.StringIO(line)))
        if len(fields) != len(LUT_COLUMNS):
            raise LutError(
                f"{path.name}: line {number} has {len(fields)} fields, expected {len(LUT_COLUMNS)}: {line[:80]!r}"
            )
        try:
            row = dict(zip(LUT_COLUMNS, fields))
            for c in ("latency_ms", "p10_ms", "p90_ms", "cv", "reorder_in_ms", "reorder_out_ms"):
                row[c] = float(row[c])
            row["repeats"] = int(row["repeats"])
            row["nodes"] = int(row["nodes"])
            row["noisy"] = {"True": True, "False": False}[row["noisy"]]
        except (ValueError, KeyError):
            raise LutError(f"{path.name}: line {number} is malformed: {line[:80]!r}") from None
        if not row["latency_ms"] > 0:
            raise LutError(f"{path.name}: line {number}: latency_ms must be > 0, got {row['latency_ms']}")
        rows.append(row)
    df = pd.DataFrame(rows, columns=LUT_COLUMNS)
    return df.drop_duplicates("key", keep="first").reset_index(drop=True)
