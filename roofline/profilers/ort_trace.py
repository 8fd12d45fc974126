"""Parse onnxruntime profiling traces (pure functions) and map their nodes onto a layer table.

onnxruntime fuses and renames nodes: at "basic" nodes keep their names; at "extended" a FusedConv
keeps its anchor's name; at "all" (NCHWc layout) a node is named after the tensor its fused group
writes, plus ``_nchwc``, and layout conversions (ReorderInput/ReorderOutput) appear. Every trace node
is mapped to the layer that holds the ONNX node it stands for; what cannot be mapped is reported.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from roofline.errors import RooflineError
from roofline.profilers.stats import OP_TIME_COLUMNS

__all__ = ["ParseError", "node_times", "run_totals", "node_count", "map_to_layers", "LAYOUT_OPS", "NODE_COLUMNS"]

#: columns of ``node_times``: ``OP_TIME_COLUMNS`` (name, op_type, time_ms), then onnxruntime's own
NODE_COLUMNS = [*OP_TIME_COLUMNS, "p10_ms", "p90_ms", "total_ms", "runs", "provider"]


class ParseError(ValueError, RooflineError):
    """A profiling output is not what the parser expects."""


def node_times(trace) -> pd.DataFrame:
    """Per-node kernel time over the runs in a trace (a JSON string, a path's text, or parsed events).

    Returns one row per node, columns ``NODE_COLUMNS``: ``name`` (the trace's node name, without
    ``_kernel_time``), ``op_type`` (onnxruntime's ``op_name``: the kernel, e.g. FusedConv), ``time_ms`` (median
    over the node's events), ``p10_ms``, ``p90_ms``, ``total_ms`` (their sum), ``runs`` (how many events),
    ``provider``. The trace counts microseconds; the table, like every per-op table, milliseconds.
    """
    events = json.loads(trace) if isinstance(trace, str) else trace
    if not isinstance(events, list):
        raise ParseError(f"an onnxruntime trace is a JSON array of events, got {type(events).__name__}")
    rows = []
    for e in events:
        if not isinstance(e, dict) or e.get("cat") != "Node":
            continue
        name = e.get("name", "")
        if not name.endswith("_kernel_time"):
            continue
        if "dur" not in e or "args" not in e:
            raise ParseError(f"trace node event {name!r} has no 'dur' or 'args'")
        rows.append((name.removesuffix("_kernel_time"), e["args"].get("op_name", ""), e["args"].get("provider", ""),
                     float(e["dur"])))  # fmt: skip
    if not rows:
        raise ParseError("the trace has no node events (was profiling enabled, and did the model run?)")
    df = pd.DataFrame(rows, columns=["name", "op_type", "provider", "dur_us"])
    df["dur_ms"] = df["dur_us"] / 1e3
    g = df.groupby("name", sort=False)
    out = g.agg(op_type=("op_type", "first"), time_ms=("dur_ms", "median"), total_ms=("dur_ms", "sum"),
                runs=("dur_ms", "size"), provider=("provider", "first"))  # fmt: skip
    out["p10_ms"] = g["dur_ms"].quantile(0.1)
    out["p90_ms"] = g["dur_ms"].quantile(0.9)
    return out.reset_index()[NODE_COLUMNS]


LAYOUT_OPS = ("ReorderInput", "ReorderOutput")


def _runs(events) -> list[tuple[float, float]]:
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    if not runs:
        raise ParseError("the trace has no model_run events")
    return runs


def node_count(trace, exclude_ops: tuple[str, ...] = LAYOUT_OPS) -> float:
    """Node events per model run (layout conversions left out by default)."""
    events = json.loads(trace) if isinstance(trace, str) else trace
    nodes = sum(1 for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")
                and e.get("args", {}).get("op_name") not in exclude_ops)  # fmt: skip
    return nodes / len(_runs(events))


def run_totals(trace, exclude_ops: tuple[str, ...] = LAYOUT_OPS, only_ops: tuple[str, ...] | None = None) -> np.ndarray:
    """Kernel time per model run (microseconds): the node events inside each ``model_run`` event, summed,
    leaving out layout conversions by default (which a single-layer model has and a whole network pays
    only where the layout changes); ``only_ops`` sums only those ops instead."""
    events = json.loads(trace) if isinstance(trace, str) else trace
    runs = _runs(events)
    starts = np.array([a for a, _ in runs])
    totals = np.zeros(len(runs))
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name")
            if (op not in only_ops) if only_ops is not None else (op in exclude_ops):
                continue
            i = int(np.searchsorted(starts, e["ts"], side="right")) - 1
            if i >= 0 and e["ts"] <= runs[i][1]:
                totals[i] += float(e["dur"])
    return totals


def map_to_layers(times: pd.DataFrame, table: pd.DataFrame, graph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attach measured kernel time to the layers of ``table`` (from ``roofline.count`` of ``graph``).

    Returns (per-layer table with ``measured_ms``, NaN where no node maps, and ``trace_nodes``; the
    unmapped rows of ``times``).
    """
    node_layer = {n: i for i, nodes in enumerate(table["nodes"]) for n in nodes}
    producer = {t.name: node.name for node in graph.nodes for t in node.outputs}
    measured = np.zeros(len(table))
    names: list[list[str]] = [[] for _ in range(len(table))]
    unmapped = []
    for k, r in zip(times.index, times.itertuples(index=False)):
        node = r.name if r.name in node_layer else producer.get(r.name.removesuffix("_nchwc"))
        if node is None and r.name.endswith("Fusion/"):  # e.g. "<node>/QuickGeluFusion/": a fused activation
            node = r.name[: r.name.rstrip("/").rfind("/")]
        layer = node_layer.get(node) if node else None
        if layer is None:
            unmapped.append(k)
            continue
        measured[layer] += r.time_ms
        names[layer].append(r.name)
    out = table.copy()
    out["measured_ms"] = np.where([bool(n) for n in names], measured, np.nan)
    out["trace_nodes"] = [tuple(n) for n in names]
    return out, times.loc[unmapped].reset_index(drop=True)
