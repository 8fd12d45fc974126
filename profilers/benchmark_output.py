"""Parse TFLite ``benchmark_model`` output (pure functions over text).

- Summary lines: ``count=50 first=... curr=... min=... max=... avg=... std=...`` (microseconds; the
  warm-up line, then the timed line), ``Inference timings in us: Init: ..., First inference: ...,
  Warmup (avg): ..., Inference (avg): ...`` and ``Memory footprint delta ... (MB): init=... overall=...``.
- Op profiles (``--enable_op_profiling=true``), stdout mode: the block ``Operator-wise Profiling Info
  for Regular Benchmark Runs:`` and its ``Run Order`` table, in the older layout
  (``[node type] [start] [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]``) or the newer one
  (no ``[start]``; names ``[<name>]:<node index>``); CSV mode (``--op_profiling_output_mode=csv``).
- Delegates: XNNPACK rows carry XNNPACK operator names (``Convolution (NHWC, QC8) IGEMM``) aggregated
  over layers (``times called`` a multiple of the run count); GPU/NNAPI/Hexagon runs show one row for
  the whole delegate (``TfLiteGpuDelegateV2``). Such rows cannot be mapped to one layer.

Anything unreadable is a ``ParseError`` that quotes the line, never a zero.
"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pandas as pd

from profilers.ort_trace import ParseError

__all__ = ["parse_summary", "parse_op_profile", "map_ops_to_layers", "OP_COLUMNS"]

OP_COLUMNS = ["node_type", "start_ms", "first_ms", "avg_ms", "percent", "cdf_percent", "mem_kb", "times_called",
              "name", "node_index", "aggregated", "delegate"]  # fmt: skip
_COUNT = re.compile(r"count=(\S+) first=(\S+) curr=(\S+) min=(\S+) max=(\S+) avg=(\S+) std=(\S+)")
_TIMINGS = re.compile(r"Inference timings in us: Init: (\S+), First inference: (\S+), Warmup \(avg\): (\S+), "
                      r"Inference \(avg\): (\S+)")  # fmt: skip
_MEMORY = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=(\S+) overall=(\S+)")
_REGULAR = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_DELEGATE_TYPES = ("TfLiteXNNPackDelegate", "TfLiteGpuDelegateV2", "TfLiteNnapiDelegate", "TfLiteHexagonDelegate")


def _numbers(match: re.Match, line: str) -> list[float]:
    try:
        return [float(g.rstrip(",")) for g in match.groups()]
    except ValueError:
        raise ParseError(f"cannot read the numbers of benchmark_model line {line.strip()[:160]!r}") from None


def parse_summary(text: str) -> dict:
    """The timed runs' statistics (µs), inference timings and memory footprint of one run's stdout."""
    out: dict = {}
    counts = []
    for line in text.splitlines():
        if "Timings (microseconds):" in line:
            continue  # the op profile's own total
        if "count=" in line and "first=" in line:
            m = _COUNT.search(line)
            if not m:
                raise ParseError(f"cannot read benchmark_model summary line {line.strip()[:160]!r}")
            counts.append(_numbers(m, line))
        elif "Inference timings in us" in line:
            m = _TIMINGS.search(line)
            if not m:
                raise ParseError(f"cannot read benchmark_model timings line {line.strip()[:160]!r}")
            init, first, warm, avg = _numbers(m, line)
            out.update(init_us=init, first_inference_us=first, warmup_avg_us=warm, inference_avg_us=avg)
        elif "Memory footprint delta" in line:
            m = _MEMORY.search(line)
            if m:
                out["memory_init_mb"], out["memory_overall_mb"] = _numbers(m, line)
    if not counts and "inference_avg_us" not in out:
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "")
        raise ParseError(f"no benchmark summary in the output (last line: {last[:100]!r})")
    if counts:
        count, first, _curr, lo, hi, avg, std = counts[-1]
        out.update(count=int(count), first_us=first, min_us=lo, max_us=hi, avg_us=avg, std_us=std)
    else:
        out.update(count=0, first_us=out["first_inference_us"], min_us=np.nan, max_us=np.nan,
                   avg_us=out["inference_avg_us"], std_us=np.nan)  # fmt: skip
    return out


def _row(fields: list[str], has_start: bool) -> dict:
    node_type, rest = fields[0], fields[1:]
    k = 7 if has_start else 6
    numbers, name = rest[:k], " ".join(rest[k:])
    values = [float(x.rstrip("%")) for x in numbers]
    if not has_start:
        values = [np.nan, *values]
    start, first, avg, pct, cdf, mem, called = values
    index = -1
    m = re.fullmatch(r"\[(.*)\]:(\d+)", name)
    if m:
        name, index = m.group(1), int(m.group(2))
    return {"node_type": node_type, "start_ms": start, "first_ms": first, "avg_ms": avg, "percent": pct,
            "cdf_percent": cdf, "mem_kb": mem, "times_called": int(called), "name": name,
            "node_index": index}  # fmt: skip


def _finish(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=OP_COLUMNS[:-2])
    calls = df["times_called"]
    # a layer runs once per run: rows called more often than the fewest-called row aggregate layers
    df["aggregated"] = df["name"].str.startswith("Delegate/") | (calls > calls.min())
    df["delegate"] = df["node_type"].isin(_DELEGATE_TYPES) | df["node_type"].str.endswith("Delegate")
    return df


def parse_op_profile(text: str) -> pd.DataFrame:
    """The Run Order table of the regular runs (stdout mode), or a CSV profile; one row per op."""
    if text.lstrip().lower().startswith(("node type,", '"node type"')):
        return _parse_csv(text)
    start = text.find(_REGULAR)
    if start < 0:
        raise ParseError("no op profile in the output (run benchmark_model with --enable_op_profiling=true)")
    lines = text[start:].splitlines()
    try:
        header_at = next(i for i, ln in enumerate(lines) if "[node type]" in ln)
    except StopIteration:
        raise ParseError("the op profile has no Run Order table header") from None
    header = lines[header_at]
    has_start = "[start]" in header
    rows = []
    for line in lines[header_at + 1 :]:
        if not line.strip() or line.lstrip().startswith("="):
            break
        fields = line.strip().split("\t") if "\t" in line.strip() else None
        fields = [f.strip() for f in fields] if fields else _split_spaces(line, has_start)
        try:
            rows.append(_row(fields, has_start))
        except (ValueError, IndexError):
            raise ParseError(f"cannot read op profile row {line.strip()[:160]!r}") from None
    if not rows:
        raise ParseError("the op profile's Run Order table is empty")
    return _finish(rows)


def _split_spaces(line: str, has_start: bool) -> list[str]:
    """A space-aligned row: the node type may hold spaces (XNNPACK names), the numbers do not."""
    tokens = line.split()
    k = 7 if has_start else 6
    for i in range(1, len(tokens)):
        try:
            [float(t.rstrip("%")) for t in tokens[i : i + k]]
        except ValueError:
            continue
        if len(tokens[i : i + k]) == k:
            return [" ".join(tokens[:i]), *tokens[i : i + k], " ".join(tokens[i + k :])]
    raise ParseError(f"cannot read op profile row {line.strip()[:160]!r}")


def _parse_csv(text: str) -> pd.DataFrame:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader)]
    has_start = "start" in header
    rows = []
    for fields in reader:
        if not fields or not any(f.strip() for f in fields):
            continue
        try:
            rows.append(_row([f.strip() for f in fields[: len(header)]], has_start))
        except (ValueError, IndexError):
            raise ParseError(f"cannot read op profile CSV row {','.join(fields)[:160]!r}") from None
    if not rows:
        raise ParseError("the CSV op profile has no rows")
    return _finish(rows)


def map_ops_to_layers(ops: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach per-op avg times to a TFLite layer table (``roofline.count(tflite, fuse="none")``, whose
    names are ``<op>_<index>:<output tensor>``), by node index, else by output tensor name.

    Returns (table with ``measured_ms``, the rows that map to no single layer: delegates, aggregates).
    """
    index_of = {}
    tensor_of = {}
    for i, name in enumerate(table["name"]):
        op, _, tensor = str(name).partition(":")
        head, _, number = op.rpartition("_")
        if number.isdigit():
            index_of[int(number)] = i
        tensor_of[tensor] = i
    measured = np.full(len(table), np.nan)
    unmapped = []
    for k, r in ops.iterrows():
        layer = None
        if not (r["delegate"] or r["aggregated"]):
            layer = index_of.get(r["node_index"]) if r["node_index"] >= 0 else tensor_of.get(r["name"])
        if layer is None:
            unmapped.append(k)
            continue
        measured[layer] = np.nansum([measured[layer], r["avg_ms"]])
    out = table.copy()
    out["measured_ms"] = measured
    return out, ops.loc[unmapped].reset_index(drop=True)
