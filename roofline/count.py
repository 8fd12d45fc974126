"""Per-layer MACs, parameters and bytes of an ONNX model: the layer table.

The conventions (what a MAC is, what counts as a parameter, what a layer reads and writes) are
written down once in ``docs/conventions.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from roofline.dtypes import onnx_is_float, precision_bytes
from roofline.errors import ShapeError, UnsupportedOpError, check_choice
from roofline.fuse import FUSE_MODES, Layer, group_layers
from roofline.graph import Graph, ModelLike, Tensor, load_graph
from roofline.ops import Cost, rule_for, supported_ops

__all__ = ["count", "totals", "COLUMNS"]

#: columns of the layer table, in order
COLUMNS = [
    "name",
    "op_type",
    "fused",
    "kind",
    "input_shapes",
    "weight_shapes",
    "output_shapes",
    "macs",
    "flops",
    "params",
    "weight_bytes",
    "input_bytes",
    "output_bytes",
    "bytes",
    "intensity_macs_per_byte",
    "nodes",
]
_ON_UNKNOWN = ("raise", "report")


def node_costs(graph: Graph, on_unknown: str = "raise") -> list[Cost]:
    """Apply each node's counting rule. Unknown ops raise, or become ``kind="unknown"`` rows."""
    check_choice(on_unknown, _ON_UNKNOWN, "on_unknown")
    rules = [rule_for(n) for n in graph.nodes]
    unknown = {
        n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}": n.name
        for n, r in zip(graph.nodes, rules)
        if r is None
    }
    if unknown and on_unknown == "raise":
        raise UnsupportedOpError(unknown, supported_ops(), unknown)
    missing = [
        (n, t)
        for n, r in zip(graph.nodes, rules)
        if r is not None
        for t in n.inputs + n.outputs
        if t is not None and t.shape is None
    ]
    if missing:
        node, t = missing[0]
        raise ShapeError(
            f"shape of tensor {t.name!r} (read or written by {node.op_type} node {node.name!r}) is unknown after "
            f"shape inference; {len(missing)} tensor use(s) affected. Set the model's input shapes with "
            f"input_shapes=..., or check for ops whose output shape depends on data"
        )
    out = []
    for node, rule in zip(graph.nodes, rules):
        if rule is None:
            known = [t for t in node.inputs + node.outputs if t is not None and t.shape is not None]
            out.append(
                Cost(
                    "unknown",
                    0,
                    tuple((t, t.numel) for t in known if t in node.inputs),
                    tuple((t, t.numel) for t in known if t in node.outputs),
                )
            )
            continue
        try:
            out.append(rule(node))
        except (TypeError, IndexError, AttributeError, ShapeError) as exc:
            raise ShapeError(f"cannot count {node.op_type} node {node.name!r}: {exc}") from None
    return out


def _pricer(weight_dtype: str | None, activation_dtype: str | None):
    w = None if weight_dtype is None else precision_bytes(weight_dtype, "weight_dtype")
    a = None if activation_dtype is None else precision_bytes(activation_dtype, "activation_dtype")

    def price(t: Tensor, elems: int) -> float:
        override = w if t.const else a
        size = override if override is not None and onnx_is_float(t.elem_type) else t.itemsize
        return elems * size

    return price


def _params(c: Cost) -> dict[str, int]:
    return {t.name: t.numel for t, _ in c.reads if t.const and onnx_is_float(t.elem_type) and t.name not in c.buffers}


def _row(graph: Graph, costs: list[Cost], layer: Layer, price, outputs: set[str]) -> dict:
    members = layer.members
    nodes = [graph.nodes[i] for i in members]
    produced = {t.name for n in nodes for t in n.outputs}
    reads: dict[str, tuple[Tensor, int]] = {}
    writes: dict[str, tuple[Tensor, int]] = {}
    params: dict[str, int] = {}
    for i in members:
        c = costs[i]
        params.update(_params(c))
        for t, e in c.reads:
            if t.name not in produced and t.name not in layer.folded:
                reads[t.name] = max(reads.get(t.name, (t, 0)), (t, e), key=lambda p: p[1])
        for t, e in c.writes:
            consumers = graph.consumers.get(t.name, ())
            internal = consumers and all(j in members for j in consumers) and t.name not in outputs
            if not internal:
                writes[t.name] = (t, e)
    weight_bytes = sum(price(t, e) for t, e in reads.values() if t.const)
    if layer.bias:
        elems, elem_type = layer.bias
        weight_bytes += price(Tensor("<folded bias>", (elems,), elem_type, True), elems)
    anchor = costs[members[0]]
    unknown = anchor.kind == "unknown"
    return {
        "name": nodes[0].name,
        "op_type": nodes[0].op_type,
        "fused": "+".join(n.op_type for n in nodes[1:]),
        "kind": anchor.kind,
        "input_shapes": ", ".join(t.shape_str() for t, _ in reads.values() if not t.const),
        "weight_shapes": ", ".join(t.shape_str() for t, _ in reads.values() if t.const),
        "output_shapes": ", ".join(t.shape_str() for t, _ in writes.values()),
        "macs": np.nan if unknown else sum(costs[i].macs for i in members),
        "params": sum(params.values()),
        "weight_bytes": weight_bytes,
        "input_bytes": sum(price(t, e) for t, e in reads.values() if not t.const),
        "output_bytes": sum(price(t, e) for t, e in writes.values()),
        "nodes": tuple(n.name for n in nodes),
        "_params": params,
    }


def count(
    model: ModelLike | Graph,
    input_shapes: Mapping[str, Sequence[int] | int] | None = None,
    weight_dtype: str | None = None,
    activation_dtype: str | None = None,
    fuse: str = "none",
    on_unknown: str = "raise",
) -> pd.DataFrame:
    """Count MACs, parameters and bytes of every layer of an ONNX model.

    Args:
        model: a path to an ``.onnx`` file, its bytes, an ``onnx.ModelProto`` or a loaded Graph.
        input_shapes: fixes symbolic input dimensions, by input name (``{"x": (1, 3, 224, 224)}``) or by
            dimension name (``{"batch": 1}``). A symbolic dimension left unset is an error naming it.
        weight_dtype: precision at which floating-point weights are counted ("int8", "fp16", "fp32",
            ...); None counts every tensor at the element type stored in the model.
        activation_dtype: likewise for activations.
        fuse: "none" keeps one row per ONNX node; "runtime" groups nodes into the layers a deployed
            runtime executes (see ``roofline.fuse``).
        on_unknown: "raise" (default) stops at an op without a counting rule; "report" keeps such
            nodes as ``kind="unknown"`` rows with NaN MACs, listed in ``table.attrs["unknown_ops"]``.

    Returns:
        A DataFrame, one row per layer, with the columns of ``COLUMNS``. ``table.attrs`` holds the
        totals (``attrs["totals"]``, see :func:`totals`) and the counting settings.
    """
    check_choice(fuse, FUSE_MODES, "fuse")
    graph = model if isinstance(model, Graph) else load_graph(model, input_shapes)
    costs = node_costs(graph, on_unknown)
    layers, free = group_layers(graph, costs, fuse)
    return _table(graph, costs, layers, free, weight_dtype, activation_dtype, fuse)


def _table(graph, costs, layers, free, weight_dtype, activation_dtype, fuse) -> pd.DataFrame:
    price = _pricer(weight_dtype, activation_dtype)
    outputs = set(graph.outputs)
    rows = [_row(graph, costs, layer, price, outputs) for layer in layers]
    all_params: dict[str, int] = {}
    for r in rows:
        all_params.update(r.pop("_params"))
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("flops", "bytes", "intensity_macs_per_byte")])
    if not df["macs"].isna().any():
        df["macs"] = df["macs"].astype("int64")
    df["flops"] = 2 * df["macs"]
    df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    df["intensity_macs_per_byte"] = df["macs"] / df["bytes"].where(df["bytes"] > 0)  # NaN for 0 bytes
    df = df[COLUMNS]
    unknown = sorted(set(df.loc[df["kind"] == "unknown", "op_type"]))
    df.attrs.update(
        model=graph.name,
        fuse=fuse,
        weight_dtype=weight_dtype or "model",
        activation_dtype=activation_dtype or "model",
        unknown_ops=unknown,
        free_nodes=free,
        folded_nodes=len(graph.folded),
    )
    df.attrs["totals"] = {
        "macs": int(df["macs"].sum()),
        "flops": int(df["flops"].sum()),
        "params": int(sum(all_params.values())),
        "weight_bytes": float(df["weight_bytes"].sum()),
        "input_bytes": float(df["input_bytes"].sum()),
        "output_bytes": float(df["output_bytes"].sum()),
        "bytes": float(df["bytes"].sum()),
        "layers": len(df),
        "unknown_layers": int((df["kind"] == "unknown").sum()),
    }
    return df


def totals(table: pd.DataFrame) -> dict:
    """Model totals of a layer table: MACs, FLOPs, parameters (shared weights once), bytes, layers."""
    if "totals" in table.attrs:
        return dict(table.attrs["totals"])
    return {
        c: table[c].sum() for c in ("macs", "flops", "params", "weight_bytes", "input_bytes", "output_bytes", "bytes")
    }
