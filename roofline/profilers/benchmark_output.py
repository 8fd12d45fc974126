"""Parse the output of TensorFlow Lite / LiteRT ``benchmark_model`` (pure functions over text).

Summary (``BenchmarkModel::Run`` and ``BenchmarkLoggingListener``; microseconds; lines may carry an
``INFO: `` or logcat prefix)::

    Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
    count=32 first=19834 curr=15648 min=14936 max=21608 avg=15997.4 std=1663        <- warm-up runs
    Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
    count=64 first=16067 curr=15102 min=14661 max=17579 avg=15517.6 std=551         <- timed runs
    Inference timings in us: Init: 32163, First inference: 19834, Warmup (avg): 15997.4, Inference (avg): 15517.6
    Memory footprint delta from the start of the tool (MB): init=22.0273 overall=34.8281

``tensorflow::Stat`` prints ``count=1 curr=X`` (or ``count=N curr=X(all same)``) when every value is equal
and ``count=0`` when there is none; ``avg`` may be in exponent form (``2.95034e+06``). Older TF 2.x releases
printed ``Peak memory footprint (MB): init=... overall=...`` instead of the ``Memory footprint delta`` line.

Op profiles (``--enable_op_profiling=true``) come in blocks ``Profiling Info for Benchmark Initialization:``
and ``Operator-wise Profiling Info for Regular Benchmark Runs:`` (TF 1.x printed the tables without
headings), each with the tables ``Run Order``, ``Top by Computation Time`` and ``Summary by node type``
(``tensorflow::StatsCalculator``). Only the regular runs' Run Order table is read (of the primary graph
when a model has several subgraphs). Its rows are tab-separated, right-aligned, in ms with 3 decimals:

- older layout: ``[node type] [start] [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]``, names
  ``[<output tensors>]`` (TF 1.x) or ``[<output tensors>]:<node index>`` (later TF 2.x);
- newer layout (``xla/tsl`` StatsCalculator, LiteRT): no ``[start]``, names ``[<output tensors>]:<node index>``.

Operators run inside a delegate that profiles them (XNNPACK in recent releases) are rows named
``Delegate/<delegate op>:<k>`` whose node type is the delegate's op name (``Convolution (NHWC, F32) IGEMM``)
and ``k`` the delegate's own operator index (so equal names of several partitions merge, ``times called``
> 1). A delegate that does not profile its operators shows one row per partition (``TfLiteGpuDelegateV2``,
``TfLiteXNNPackDelegate`` in older releases) named after the partition's outputs and its new node index.

CSV mode (``--op_profiling_output_mode=csv``) writes the same blocks with the header
``node type, first, avg_ms, %, cdf%, mem KB, times called, name`` (older: ``node type, start, first, ...``),
``, ``-separated unquoted fields, numbers in C++ default notation and ``%`` signs; node types are not escaped
(``Convolution (NHWC, QC8) IGEMM`` holds a comma) and names have their commas replaced by tabs.

Anything unreadable is a ``ParseError`` quoting the line, never a zero.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from roofline.profilers.ort_trace import ParseError
from roofline.profilers.stats import OP_TIME_COLUMNS

__all__ = ["parse_summary", "parse_op_profile", "map_ops_to_layers", "OP_COLUMNS", "DELEGATE_TYPES"]

#: columns of ``parse_op_profile``: ``OP_TIME_COLUMNS`` (name, op_type, time_ms), then benchmark_model's own
OP_COLUMNS = [*OP_TIME_COLUMNS, "first_ms", "start_ms", "percent", "cdf_percent", "mem_kb", "times_called",
              "node_index", "aggregated", "delegate"]  # fmt: skip
#: node types of rows that stand for a whole delegate partition (so does any type ending in "delegate")
DELEGATE_TYPES = ("TfLiteXNNPackDelegate", "TfLiteGpuDelegateV2", "TfLiteNnapiDelegate", "TfLiteHexagonDelegate")

_NUM = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf)"
_STAT = [  # the three shapes of tensorflow::Stat::OutputToStream
    re.compile(r"count=(?P<count>\d+)"),
    re.compile(rf"count=(?P<count>\d+) curr=(?P<curr>{_NUM})(?:\(all same\))?"),
    re.compile(rf"count=(?P<count>\d+) first=(?P<first>{_NUM}) curr=(?P<curr>{_NUM}) min=(?P<min>{_NUM}) "
               rf"max=(?P<max>{_NUM}) avg=(?P<avg>{_NUM}) std=(?P<std>{_NUM})"),
]  # fmt: skip
_COUNT_AT = re.compile(r"(?:.*:\s+)?(count=)")  # at the start, after any log prefix ("INFO: ")
_TIMINGS = re.compile(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                      rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})\s*$")  # fmt: skip
_MEMORY = re.compile(rf"\(MB\): init=({_NUM}) overall=({_NUM})\s*$")
_PEAK = re.compile(rf"via periodic monitoring: ({_NUM})\s*$")
_REGULAR = "Operator-wise Profiling Info for Regular Benchmark Runs:"
_INIT = "Profiling Info for Benchmark Initialization:"
_HEADERS = {  # column titles of the Run Order table -> (csv, has_start)
    ("node type", "start", "first", "avg ms", "%", "cdf%", "mem KB", "times called", "Name"): (False, True),
    ("node type", "first", "avg ms", "%", "cdf%", "mem KB", "times called", "Name"): (False, False),
    ("node type", "start", "first", "avg_ms", "%", "cdf%", "mem KB", "times called", "name"): (True, True),
    ("node type", "first", "avg_ms", "%", "cdf%", "mem KB", "times called", "name"): (True, False),
}


def _quote(line: str, limit: int = 200) -> str:
    line = line.strip()
    return repr(line if len(line) <= limit else line[:limit] + "...")


def _stat(line: str, at: int) -> dict:
    """The numbers of a ``count=...`` line (from position ``at``); ParseError if they cannot be read."""
    text = line[at:].strip()
    for pattern in _STAT:
        m = pattern.fullmatch(text)
        if m:
            g = {k: float(v) for k, v in m.groupdict().items()}
            if "first" not in g:  # all values equal (or none): curr is each of them
                curr = g.get("curr", np.nan)
                g.update(first=curr, min=curr, max=curr, avg=curr, std=0.0 if g["count"] else np.nan)
            return g
    raise ParseError(f"cannot read the numbers of benchmark_model summary line {_quote(line)}")


def parse_summary(text: str) -> dict:
    """The timed runs' statistics and the inference timings (µs) and memory footprint (MB) of one run's output.

    Keys: ``avg_us min_us max_us std_us count first_us`` (from the timed runs' ``count=`` line: the last one,
    and when the ``Running benchmark ...`` lines are present, one after the second of them),
    ``init_us first_inference_us warmup_avg_us inference_avg_us`` (``Inference timings in us``), and when
    printed ``memory_init_mb memory_overall_mb`` (the ``Memory footprint delta`` or older ``Peak memory
    footprint`` line) and ``memory_peak_mb`` (``--report_peak_memory_footprint``). A line that is absent
    leaves its keys NaN (``count`` None); without a timed ``count=`` line ``avg_us`` is ``Inference (avg)``.
    """
    out: dict = dict.fromkeys(["init_us", "first_inference_us", "warmup_avg_us", "inference_avg_us"], np.nan)
    phase, stats = 0, []  # phase: how many "Running benchmark for at least" lines came before
    for line in text.splitlines():
        if "Running benchmark for at least" in line:
            phase += 1
        elif "Timings (microseconds):" in line or "Memory (bytes):" in line:
            continue  # the op profile's own totals
        elif m := _COUNT_AT.match(line):
            stats.append((phase, _stat(line, m.start(1))))
        elif "Inference timings in us:" in line:
            if not (m := _TIMINGS.search(line)):
                raise ParseError(f"cannot read the numbers of benchmark_model timings line {_quote(line)}")
            out.update(zip(["init_us", "first_inference_us", "warmup_avg_us", "inference_avg_us"],
                           map(float, m.groups())))  # fmt: skip
        elif "via periodic monitoring:" in line:
            if not (m := _PEAK.search(line)):
                raise ParseError(f"cannot read the numbers of benchmark_model memory line {_quote(line)}")
            out["memory_peak_mb"] = float(m.group(1))
        elif "Memory footprint delta from the start of the tool (MB):" in line or "Peak memory footprint (MB):" in line:
            if not (m := _MEMORY.search(line)):
                raise ParseError(f"cannot read the numbers of benchmark_model memory line {_quote(line)}")
            out["memory_init_mb"], out["memory_overall_mb"] = map(float, m.groups())
    timed = [s for p, s in stats if p >= 2] if phase else [s for _, s in stats]
    if not timed and np.isnan(out["inference_avg_us"]):
        last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), None)
        if last is None:
            raise ParseError("no benchmark summary in the output: it is empty")
        raise ParseError(f"no benchmark summary in the output (last line: {last[:100]!r})")
    if timed:
        s = timed[-1]
        out.update(count=int(s["count"]), first_us=s["first"], min_us=s["min"], max_us=s["max"], avg_us=s["avg"],
                   std_us=s["std"])  # fmt: skip
    else:
        out.update(count=None, first_us=np.nan, min_us=np.nan, max_us=np.nan, avg_us=out["inference_avg_us"],
                   std_us=np.nan)  # fmt: skip
    return out


def _header(line: str) -> tuple[bool, bool] | None:
    """(csv, has_start) when ``line`` is the header of a Run Order table, else None."""
    if "[node type]" in line and "[first]" in line:
        titles = tuple(re.findall(r"\[([^\]]+)\]", line))
    elif re.match(r"\s*node type\s*,", line) and "first" in line:
        titles = tuple(t.strip() for t in line.split(","))
    else:
        return None
    if titles not in _HEADERS:
        raise ParseError(f"unknown op profile header {_quote(line)}")
    return _HEADERS[titles]


def _row_pattern(csv: bool, has_start: bool) -> re.Pattern:
    sep = r"\s*,\s*" if csv else r"\s+"
    fields = [rf"({_NUM})"] * (3 if has_start else 2) + [rf"({_NUM})%"] * 2 + [rf"({_NUM})", r"(\d+)"]
    return re.compile(r"\s*(\S.*?)" + sep + sep.join(fields) + sep + r"(\S.*?)\s*")


def _name(field: str, csv: bool) -> tuple[str, int]:
    """(name, node index) of a Name field; a ``Delegate/<op>:<k>`` name is kept whole (k is not a node)."""
    if csv:
        field = field.strip('"').replace("\t", ",")  # the CSV writer turned the name's commas into tabs
    if not field.startswith("Delegate/"):
        if m := re.fullmatch(r"\[(.*)\]:(\d+)", field):
            return m.group(1), int(m.group(2))
        if m := re.fullmatch(r"\[(.*)\]", field):
            return m.group(1), -1
    return field, -1


def parse_op_profile(text: str) -> pd.DataFrame:
    """The regular runs' Run Order table of an op profile (stdout or CSV mode, either layout), one row per op.

    Columns ``OP_COLUMNS``: ``name`` (the Name field: output tensors, or ``Delegate/<op>:<k>``), ``op_type``
    (the node type), ``time_ms`` (the ``avg ms`` column: per run), then ``first_ms``, ``start_ms`` (NaN in
    the newer layout), ``percent``, ``cdf_percent``, ``mem_kb``, ``times_called``, ``node_index`` (-1 where
    the name has none). ``delegate``: the row stands for a whole delegate partition (a type in
    ``DELEGATE_TYPES`` or ending in "delegate", any case). ``aggregated``: the row is not one TFLite node run
    once: its name starts with ``Delegate/`` (an operator of a delegate's own graph, after the delegate fused
    and rewrote layers, indexed by the delegate) or its ``times called`` per run is above 1 (several nodes or
    invocations merged).
    """
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _REGULAR in ln), None)
    if start is None:
        if any(_INIT in ln for ln in lines):
            raise ParseError("the output has an op profile of the initialization only, none of the regular runs")
        start = 0  # TF 1.x: tables without headings
    found = next(((i, h) for i in range(start, len(lines)) if (h := _header(lines[i]))), None)
    if found is None:
        raise ParseError("no op profile table in the output (was benchmark_model run with --enable_op_profiling=true?)")
    at, (csv, has_start) = found
    pattern = _row_pattern(csv, has_start)
    rows = []
    for line in lines[at + 1 :]:
        if not line.strip() or line.lstrip().startswith("="):
            break
        if not (m := pattern.fullmatch(line)):
            raise ParseError(f"cannot read op profile row {_quote(line)}")
        g = list(m.groups())
        numbers = [float(x) for x in g[1:-2]]
        if not has_start:
            numbers.insert(0, np.nan)
        start_ms, first_ms, avg_ms, percent, cdf_percent, mem_kb = numbers
        name, index = _name(g[-1], csv)
        rows.append({"name": name, "op_type": g[0].strip(), "time_ms": avg_ms, "first_ms": first_ms,
                     "start_ms": start_ms, "percent": percent, "cdf_percent": cdf_percent, "mem_kb": mem_kb,
                     "times_called": int(g[-2]), "node_index": index})  # fmt: skip
    if not rows:
        raise ParseError("the op profile's Run Order table has no rows")
    df = pd.DataFrame(rows, columns=OP_COLUMNS[:-2])
    df["aggregated"] = df["name"].str.startswith("Delegate/") | (df["times_called"] > 1)
    df["delegate"] = df["op_type"].isin(DELEGATE_TYPES) | df["op_type"].str.lower().str.endswith("delegate")
    return df


def map_ops_to_layers(ops: pd.DataFrame, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach per-op times (``parse_op_profile``'s ``time_ms``) to a TFLite layer table (``roofline.count(tflite)``).

    A layer table names a TFLite node ``<builtin>_<op index>:<first output tensor>`` (its ``nodes`` column
    lists them when layers are fused). An op row maps to the layer holding its node index (when the output
    tensors agree), else to the one holding its first output tensor (older layout, no index); the times of
    several ops on one layer add up.

    Returns (a copy of ``table`` with ``measured_ms``, NaN where no op maps; the op rows that map to no one
    layer, with a ``reason``: "delegate", "aggregated" or "no layer").
    """
    by_index: dict[int, tuple[int, str]] = {}
    by_tensor: dict[str, int] = {}
    nodes = table["nodes"] if "nodes" in table.columns else table["name"]
    for row, names in enumerate(nodes):
        for node in (names,) if isinstance(names, str) else names:
            op, _, tensor = str(node).partition(":")
            _, _, number = op.rpartition("_")
            if number.isdigit():
                by_index[int(number)] = (row, tensor)
            if tensor:
                by_tensor[tensor] = row
    measured = np.full(len(table), np.nan)
    unmapped, reasons = [], []
    for k, r in ops.iterrows():
        reason = "delegate" if r["delegate"] else "aggregated" if r["aggregated"] else None
        layer = None if reason else _layer_of(str(r["name"]), int(r["node_index"]), by_index, by_tensor)
        if layer is None:
            unmapped.append(k)
            reasons.append(reason or "no layer")
        else:
            measured[layer] = r["time_ms"] if np.isnan(measured[layer]) else measured[layer] + r["time_ms"]
    out = table.copy()
    out["measured_ms"] = measured
    return out, ops.loc[unmapped].assign(reason=reasons).reset_index(drop=True)


def _layer_of(name: str, index: int, by_index: dict, by_tensor: dict) -> int | None:
    first = name.split(", ")[0]  # a node's first output tensor
    row, tensor = by_index.get(index, (None, ""))
    if row is not None and tensor in ("", first):
        return row
    return by_tensor.get(first)
