"""Latency lookup tables: a CSV of measured kernels plus a metadata file, built resumably.

- Every measured row is appended, flushed and fsynced under an exclusive file lock, so a build
  killed at any moment keeps every finished row, and two writers at once never interleave lines.
- A rerun skips the keys already in the table; builders running at once claim each key under the
  lock before measuring it (``Lut.claim``), so that every key is measured once; a claim by a process
  that died is void.
- The metadata is written atomically (``roofline.files.atomic_write``).
- Loading checks the header, every row and the metadata; a damaged or foreign table is rejected with
  the file and line named (impossible values too: a latency that is not finite, positive and under an
  hour, p10 > latency > p90, a negative CV or count). A line cut short by a kill (no trailing newline)
  is dropped.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from roofline.errors import RooflineError
from roofline.files import atomic_write, drop_partial_line, locked, read_json, read_lines

__all__ = ["LUT_COLUMNS", "DEVICE_COLUMNS", "LutError", "Lut", "open_lut"]

#: the columns of every LUT, in order (unit-suffixed)
LUT_COLUMNS = ["key", "latency_ms", "p10_ms", "p90_ms", "cv", "repeats", "noisy", "nodes", "reorder_in_ms",
               "reorder_out_ms", "measured_at"]  # fmt: skip
#: the columns a LUT measured on several phones adds after them: which phone measured the row, its hottest
#: thermal zone then (empty where unreadable) and whether that was above the cool-down threshold
DEVICE_COLUMNS = ["device", "temperature_c", "hot"]
_FORMAT = "roofline-lut-2"
# metadata that describes how rows were measured but may differ between runs that add to one table
_INFORMATIONAL = {"measure", "trace_overhead_us", "stream_bandwidth_bytes_per_s", "cache_bytes", "thermal_max_c"}


class LutError(ValueError, RooflineError):
    """A lookup table or its metadata is damaged, foreign or inconsistent."""


def _locked(path: Path, mode: str):
    return locked(path, mode)


@dataclass
class Lut:
    """A LUT on disk: ``path`` (CSV) and ``path.with_suffix('.meta.json')`` (conditions)."""

    path: Path
    meta: dict
    drift: object = None  # the machine's drift while this process added rows (see roofline.profilers.build.Drift)
    owner: str = field(default_factory=lambda: f"{os.getpid()}:{uuid.uuid4().hex[:12]}")  # who claims keys

    @property
    def meta_path(self) -> Path:
        return self.path.with_suffix(".meta.json")

    @property
    def claims_path(self) -> Path:
        return self.path.with_suffix(".claims.json")

    def table(self) -> pd.DataFrame:
        """The rows measured so far (validated), one per key (the first measurement of a key wins)."""
        return _read(self.path)

    def done(self) -> set[str]:
        return set(self.table()["key"])

    @functools.cached_property
    def columns(self) -> list[str]:
        """This table's columns: ``LUT_COLUMNS``, plus ``DEVICE_COLUMNS`` in a table of several phones (its
        header, read once: a header never changes)."""
        with open(self.path, encoding="utf-8") as f:
            return _columns(self.path, f.readline().rstrip("\n"))

    def append(self, rows: Iterable[dict]) -> int:
        """Append rows (dicts with the table's columns) durably; returns how many were written."""
        n = 0
        columns = self.columns
        with _locked(self.path, "a+") as f:
            drop_partial_line(f)
            writer = csv.DictWriter(f, columns, extrasaction="raise", lineterminator="\n")
            for row in rows:
                writer.writerow({c: "" if row[c] is None else row[c] for c in columns})
                n += 1
            f.flush()
            os.fsync(f.fileno())
        return n

    def claim(self, key: str) -> str:
        """Reserve ``key`` for this builder, under the table's lock: ``"done"`` (the table has it),
        ``"taken"`` (another live builder claimed it and measures it now) or ``"ours"`` (measure it).

        Claims live in ``<name>.claims.json`` beside the table (key -> owner, pid, host, process start,
        time); a claim by a process that is gone (killed, or on this host no longer running) is void.
        """
        with _locked(self.path, "a+"):
            if _has_key(self.path, key):
                return "done"
            claims = self._live_claims()
            other = claims.get(key)
            if other and other["owner"] != self.owner:
                return "taken"
            claims[key] = {"owner": self.owner, **_whoami()}
            self._write_claims(claims)
            return "ours"

    def release(self) -> None:
        """Drop this builder's claims (and any void ones)."""
        with _locked(self.path, "a+"):
            claims = self._live_claims()
            kept = {k: c for k, c in claims.items() if c["owner"] != self.owner}
            if kept != claims or self.claims_path.exists() and not kept:
                self._write_claims(kept)

    def _live_claims(self) -> dict:
        try:
            claims = json.loads(self.claims_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or damaged: a scratch file, rebuilt from live builders
            return {}
        if not isinstance(claims, dict):
            return {}
        return {k: c for k, c in claims.items() if isinstance(c, dict) and "owner" in c and _alive(c)}

    def _write_claims(self, claims: dict) -> None:
        if claims:
            atomic_write(self.claims_path, json.dumps(claims, indent=1, sort_keys=True) + "\n")
        else:
            self.claims_path.unlink(missing_ok=True)


#: a claim from another host (a shared folder) is void after this many seconds
CLAIM_MAX_AGE_S = 3600.0


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) from /proc, or None; "Z" for a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return "Z" if fields[0] in ("Z", "X") else fields[19]


def _whoami() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "start": _start_time(os.getpid()), "time": time.time()}


def _alive(claim: dict) -> bool:
    """Is the process that made ``claim`` still running (the same process, not a reused pid)?"""
    try:
        pid, host, start, since = int(claim["pid"]), claim["host"], claim.get("start"), float(claim["time"])
    except (KeyError, TypeError, ValueError):
        return False
    if host != socket.gethostname():
        return time.time() - since < CLAIM_MAX_AGE_S
    now = _start_time(pid)
    if now is not None or start is not None:
        return now is not None and now != "Z" and now == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _has_key(path: Path, key: str) -> bool:
    """Does a whole row of the table at ``path`` start with ``key``? (a text search, no parsing)"""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([key, ""])
    prefix = b"\n" + buf.getvalue()[:-1].encode("utf-8")
    data = path.read_bytes()
    return prefix in data[: data.rfind(b"\n") + 1]


def open_lut(path, meta: dict | None = None, devices: bool = False) -> Lut:
    """Open (or create) the LUT at ``path``; ``meta`` must match the stored metadata's conditions.

    Creating writes the header and the metadata; opening an existing table validates it, and refuses
    to mix measurements taken under different conditions (runtime, version, threads, precision...).
    ``devices``: a table of rows from several phones (``DEVICE_COLUMNS`` after the LUT columns).
    """
    path = Path(path)
    meta_path = path.with_suffix(".meta.json")
    if path.exists() and (meta is None or path.stat().st_size > 0):  # empty: a creation cut short
        _read(path)  # validates
        stored = _read_meta(path, meta_path)
        if meta is not None:
            conditions = stored["conditions"]
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
            if not meta_path.exists():  # the metadata first: a table never lacks it
                record = {"format": _FORMAT, "conditions": meta}
                atomic_write(meta_path, json.dumps(record, indent=1, sort_keys=True) + "\n")
            f.write(",".join(LUT_COLUMNS + (DEVICE_COLUMNS if devices else [])) + "\n")
            f.flush()
            os.fsync(f.fileno())
    return open_lut(path, meta)


def _read_meta(path: Path, meta_path: Path) -> dict:
    """The stored metadata, checked: a JSON object of this format whose conditions are an object."""
    try:
        stored = read_json(meta_path, LutError, meta_path.name)
    except FileNotFoundError:
        raise LutError(f"{path.name}: its metadata file {meta_path.name} is missing") from None
    if not isinstance(stored, dict):
        raise LutError(f"{meta_path.name}: expected a JSON object, got a {type(stored).__name__}")
    if stored.get("format") != _FORMAT:
        raise LutError(f"{meta_path.name}: not a roofline LUT (format {stored.get('format')!r}, expected {_FORMAT!r})")
    if not isinstance(stored.get("conditions"), dict):
        got = type(stored.get("conditions")).__name__
        raise LutError(f"{meta_path.name}: 'conditions' must be a JSON object, got a {got}")
    return stored


#: a latency above this (one hour) is no kernel's: a corrupt or foreign value
MAX_LATENCY_MS = 3.6e6
_TIMES = ("latency_ms", "p10_ms", "p90_ms", "reorder_in_ms", "reorder_out_ms")
_SLACK = 1e-9  # relative: p10 <= latency <= p90 up to the rounding of the written numbers


def _check_row(row: dict) -> str | None:
    """What is impossible about a parsed row, or None."""
    if not row["key"] or not row["key"].isprintable():
        return f"key {row['key']!r} is empty or has control characters"
    for c in _TIMES:
        if not 0 <= row[c] < MAX_LATENCY_MS:  # also NaN
            return f"{c} must be finite, >= 0 and < {MAX_LATENCY_MS:g} ms (an hour), got {row[c]}"
    if not row["latency_ms"] > 0:
        return f"latency_ms must be > 0, got {row['latency_ms']}"
    lat, slack = row["latency_ms"], row["latency_ms"] * _SLACK
    if not row["p10_ms"] <= lat + slack <= row["p90_ms"] + 2 * slack:
        return f"p10_ms <= latency_ms <= p90_ms must hold, got {row['p10_ms']}, {lat}, {row['p90_ms']}"
    if "temperature_c" in row and not (row["temperature_c"] is None or -50 <= row["temperature_c"] < 200):
        return f"temperature_c must be empty or a temperature in Celsius, got {row['temperature_c']}"
    if not 0 <= row["cv"] < 1e6:
        return f"cv must be finite and >= 0, got {row['cv']}"
    if row["repeats"] < 1 or row["nodes"] < 0:
        return f"repeats must be >= 1 and nodes >= 0, got {row['repeats']} and {row['nodes']}"
    return None


def _columns(path: Path, header: str) -> list[str]:
    """The columns a LUT's header line names (the LUT columns, with or without the device columns)."""
    for columns in (LUT_COLUMNS, LUT_COLUMNS + DEVICE_COLUMNS):
        if header == ",".join(columns):
            return columns
    raise LutError(f"{path.name}: not a roofline LUT (header {header[:80]!r}, expected {','.join(LUT_COLUMNS)!r})")


def _read(path: Path) -> pd.DataFrame:
    lines = read_lines(path, LutError, path.name)  # a row cut short by a kill: dropped
    columns = _columns(path, lines[0] if lines else "")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        try:
            (fields,) = list(csv.reader([line], strict=True))
        except (csv.Error, ValueError):
            raise LutError(f"{path.name}: line {number} is malformed: {line[:80]!r}") from None
        if len(fields) != len(columns):
            raise LutError(
                f"{path.name}: line {number} has {len(fields)} fields, expected {len(columns)}: {line[:80]!r}"
            )
        try:
            row = dict(zip(columns, fields))
            if "hot" in row:
                row["temperature_c"] = float(row["temperature_c"]) if row["temperature_c"] else None
                row["hot"] = {"True": True, "False": False}[row["hot"]]
            for c in ("latency_ms", "p10_ms", "p90_ms", "cv", "reorder_in_ms", "reorder_out_ms"):
                row[c] = float(row[c])
            row["repeats"] = int(row["repeats"])
            row["nodes"] = int(row["nodes"])
            row["noisy"] = {"True": True, "False": False}[row["noisy"]]
        except (ValueError, KeyError):
            raise LutError(f"{path.name}: line {number} is malformed: {line[:80]!r}") from None
        problem = _check_row(row)
        if problem:
            raise LutError(f"{path.name}: line {number}: {problem}")
        rows.append(row)
    df = pd.DataFrame(rows, columns=columns)
    return df.drop_duplicates("key", keep="first").reset_index(drop=True)
