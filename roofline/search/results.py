"""A search's results table on disk: ``append_results`` grows it by whole, fsynced lines; ``read_results``
reads it back, dropping a last line cut short by a kill, keeping the first row of a candidate written
twice, and rejecting anything else that is wrong (``ResultsError``, naming the file and the line).
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pandas as pd

from roofline.errors import InvalidParameterError
from roofline.files import append_lines, read_lines

__all__ = ["RESULT_COLUMNS", "ResultsError", "append_results", "parse_genes", "read_results"]


def parse_genes(text) -> tuple[int, ...]:
    """Genes as written in a results table ("0 2 1" or "(0, 2, 1)") back to a tuple."""
    return text if isinstance(text, tuple) else tuple(int(g) for g in re.findall(r"\d+", str(text)))


class ResultsError(InvalidParameterError):
    """A search's results table (or its search.json) is damaged, foreign or inconsistent."""


#: the columns every results table has; the score's metric columns come between resolution and score
RESULT_COLUMNS = ("step", "genes", "spec", "resolution", "score")


def _genes_text(genes) -> str:
    return " ".join(map(str, genes)) if isinstance(genes, tuple) else str(genes)


def append_results(path, rows: list[dict]) -> None:
    """Append evaluated candidates (``search``'s rows) to the results table at ``path``: whole lines,
    fsynced, under a lock, with the header when the table is new; a line a kill left cut is dropped first."""
    if not rows:
        return
    df = pd.DataFrame(rows)
    df["genes"] = [_genes_text(g) for g in df["genes"]]
    text = df.to_csv(index=False, lineterminator="\n")
    header, body = text.split("\n", 1)
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            first = f.readline()
        if first.endswith(b"\n") and first.decode("utf-8", "replace").rstrip("\n") != header:
            raise ResultsError(f"{path}: its columns are not this search's ({header}); use another folder")
    append_lines(path, body, header=header)


def read_results(path, space=None, columns=()) -> pd.DataFrame:
    """The results table at ``path``, checked line by line (``ResultsError`` naming the line).

    A last line without its newline (a kill cut it) is dropped; a candidate written twice keeps its
    first row. Every row needs a step, genes, spec, resolution, score and ``columns`` (the score's
    metrics), numbers where numbers belong, and with ``space`` genes of that space whose spec and
    resolution are the ones written. An empty file, or a header alone, is a table of no rows (a run
    killed before its first row).
    """
    path = Path(path)
    lines = read_lines(path, ResultsError)  # a line a kill cut short is dropped
    required = list(dict.fromkeys([*RESULT_COLUMNS, *columns]))
    if not lines:
        return pd.DataFrame(columns=required)
    header = _csv_fields(path, 1, lines[0])
    missing = [c for c in required if c not in header]
    if missing or len(set(header)) != len(header):
        what = f"lacks {', '.join(missing)}" if missing else "repeats a column"
        raise ResultsError(f"{path}: not a results table of this search (header {lines[0][:100]!r} {what})")
    decisions = [len(options) for _, options in space.decisions()] if space is not None else None
    rows, seen = [], set()
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = _csv_fields(path, number, line)
        if len(fields) != len(header):
            raise ResultsError(f"{path}: line {number} has {len(fields)} fields, expected {len(header)}: {line[:80]!r}")
        row = dict(zip(header, fields))
        problem = _check_result(row, decisions, space)
        if problem:
            raise ResultsError(f"{path}: line {number}: {problem}")
        if row["genes"] not in seen:
            seen.add(row["genes"])
            row["genes"] = " ".join(map(str, row["genes"]))
            rows.append(row)
    return pd.DataFrame(rows, columns=header)


def _csv_fields(path: Path, number: int, line: str) -> list[str]:
    try:
        (fields,) = list(csv.reader([line], strict=True))
    except (csv.Error, ValueError):
        raise ResultsError(f"{path}: line {number} is not a CSV row: {line[:80]!r}") from None
    return fields


def _check_result(row: dict, decisions, space) -> str | None:
    """Parse ``row``'s fields in place; what is wrong with it, or None."""
    inner = row["genes"].strip()
    if inner[:1] == "(" and inner[-1:] == ")":  # a tuple as pandas writes it
        inner = inner[1:-1]
    parts = [p for p in re.split(r"[\s,]+", inner) if p]
    if not parts or not all(re.fullmatch(r"[0-9]{1,9}", p) for p in parts):
        return f"genes {row['genes'][:40]!r} are not option numbers"
    genes = tuple(int(p) for p in parts)
    if decisions is not None and (len(genes) != len(decisions) or any(g >= k for g, k in zip(genes, decisions))):
        return f"genes {genes} are not a candidate of this space ({len(decisions)} decisions of {decisions} options)"
    row["genes"] = genes
    for col, value in row.items():
        if col in ("genes", "spec"):
            continue
        try:
            number = float(value)
        except ValueError:
            return f"{col} must be a number, got {value[:40]!r}"
        if not math.isfinite(number):
            return f"{col} must be a finite number, got {value[:40]!r}"
        if col in ("step", "resolution"):
            if not (number.is_integer() and 0 <= number < 2**31) or col == "resolution" and number < 1:
                return f"{col} must be a {'positive' if col == 'resolution' else 'non-negative'} integer, got {value!r}"
            number = int(number)
        elif col.startswith("latency") and not 0 < number < math.inf:
            return f"{col} must be finite and > 0, got {value!r}"
        row[col] = number
    if space is not None:
        cand = space.candidate(genes)
        if (cand.spec, cand.resolution) != (row["spec"], row["resolution"]):
            return f"spec and resolution are not those of genes {genes} in this space (another space's table?)"
    return None
