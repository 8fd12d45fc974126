"""Per-layer MACs, parameters and bytes of an ONNX model: the layer table.

The conventions (what a MAC is, what counts as a parameter, what a layer reads and writes) are
written down once in ``docs/conventions.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from onnx import TensorProto

from roofline.counting.fuse import FUSE_MODES, Layer, group_layers
from roofline.dtypes import onnx_is_float, precision_bytes
from roofline.errors import check_choice
from roofline.ir import Graph, ModelLike, Tensor
from roofline.ir.load import load_graph
from roofline.ir.onnx_flow import combine_bounds
from roofline.ops import Cost, node_costs

__all__ = ["count", "totals", "price", "Layers", "COLUMNS"]

#: columns of the layer table, in order
COLUMNS = [
    "name", "op_type", "fused", "kind", "input_shapes", "weight_shapes", "output_shapes", "macs", "flops", "params",
    "sparsity", "weight_bytes", "input_bytes", "output_bytes", "bytes", "intensity_macs_per_byte", "bound",
    "nodes",
]  # fmt: skip
_ROLES = ("weight_bytes", "input_bytes", "output_bytes")
# the columns that do not depend on the precision
_STRUCTURE = [c for c in COLUMNS if c not in (*_ROLES, "flops", "bytes", "intensity_macs_per_byte")]
# constants of these integer types are quantised weights (not shape arithmetic): they count as parameters
_QUANTISED = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT4, TensorProto.UINT4}


def _params(c: Cost) -> dict[str, int]:
    weight = {t.name for t, _ in c.reads if t.const and (onnx_is_float(t.elem_type) or t.elem_type in _QUANTISED)}
    return {t.name: t.numel for t, _ in c.reads if t.name in weight and t.name not in c.buffers}


def _traffic(entries) -> list[float]:
    """A role's traffic in three parts that re-price cheaply: floating-point elements, the same at the
    element size stored in the model, and the bytes of other (integer, boolean) tensors."""
    float_elems = native = other = 0.0
    for t, e in entries:
        if onnx_is_float(t.elem_type):
            float_elems += e
            native += e * t.itemsize
        else:
            other += e * t.itemsize
    return [float_elems, native, other]


def _row(graph: Graph, costs: list[Cost], layer: Layer, outputs: set[str]) -> tuple[dict, list, dict]:
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
            if t.name not in produced and t.name not in layer.folded and e > reads.get(t.name, (t, -1))[1]:
                reads[t.name] = (t, e)
        for t, e in c.writes:
            consumers = graph.consumers.get(t.name, ())
            internal = consumers and all(j in members for j in consumers) and t.name not in outputs
            if not internal:
                writes[t.name] = (t, e)
    weights = [(t, e) for t, e in reads.values() if t.const]
    if layer.bias:
        elems, elem_type = layer.bias
        weights.append((Tensor("<folded bias>", (elems,), elem_type, True), elems))
    activations = [(t, e) for t, e in reads.values() if not t.const]
    # a sparse weight (TFLite DENSIFY) is counted dense: MACs and bytes as executed; its share of zeros apart
    dense = sum(e for t, e in weights)
    zeros = sum(e * graph.sparsity.get(t.name, 0.0) for t, e in weights)
    anchor = costs[members[0]]
    row = {
        "name": nodes[0].name,
        "op_type": nodes[0].op_type,
        "fused": "+".join(n.op_type for n in nodes[1:]),
        "kind": anchor.kind,
        "input_shapes": ", ".join(t.shape_str() for t, _ in activations),
        "weight_shapes": ", ".join(t.shape_str() for t, _ in reads.values() if t.const),
        "output_shapes": ", ".join(t.shape_str() for t, _ in writes.values()),
        "macs": np.nan if anchor.kind == "unknown" else sum(costs[i].macs for i in members),
        "params": sum(params.values()),
        "bound": combine_bounds(n.bound for n in nodes),
        "sparsity": zeros / dense if dense else 0.0,
        "nodes": tuple(n.name for n in nodes),
    }
    return row, [_traffic(weights), _traffic(activations), _traffic(writes.values())], params


def price(traffic: np.ndarray, weight_dtype: str | None, activation_dtype: str | None) -> np.ndarray:
    """Bytes per layer and role, shape (L, 3), from a (L, 3 roles, 3 parts) traffic array."""
    sizes = [precision_bytes(weight_dtype, "weight_dtype") if weight_dtype else None,
             precision_bytes(activation_dtype, "activation_dtype") if activation_dtype else None]  # fmt: skip
    sizes.append(sizes[1])
    out = np.empty(traffic.shape[:2])
    for r, size in enumerate(sizes):
        floats = traffic[:, r, 1] if size is None else traffic[:, r, 0] * size
        out[:, r] = floats + traffic[:, r, 2]
    return out


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
            runtime executes (see ``roofline.counting.fuse``).
        on_unknown: "raise" (default) stops at an op without a counting rule; "report" keeps such
            nodes as ``kind="unknown"`` rows with NaN MACs, listed in ``table.attrs["unknown_ops"]``.

    Returns:
        A DataFrame, one row per layer, with the columns of ``COLUMNS``. ``table.attrs`` holds the
        totals (``attrs["totals"]``, see :func:`totals`) and the counting settings.
    """
    check_choice(fuse, FUSE_MODES, "fuse")
    graph = model if isinstance(model, Graph) else load_graph(model, input_shapes)
    return Layers.build(graph, fuse, on_unknown).table(weight_dtype, activation_dtype)


@dataclass
class Layers:
    """The layers of a graph before pricing: structure, per-role traffic, and parameters."""

    graph: Graph
    rows: pd.DataFrame
    traffic: np.ndarray  # (L, 3 roles, 3 parts), see price()
    params: int
    free: list[str]
    fuse: str

    @classmethod
    def build(cls, graph: Graph, fuse: str = "none", on_unknown: str = "raise") -> Layers:
        check_choice(fuse, FUSE_MODES, "fuse")
        costs = node_costs(graph, on_unknown)
        layers, free = group_layers(graph, costs, fuse)
        outputs = set(graph.outputs)
        rows, traffic, params = [], [], {}
        for layer in layers:
            row, t, p = _row(graph, costs, layer, outputs)
            rows.append(row)
            traffic.append(t)
            params.update(p)
        df = pd.DataFrame(rows, columns=_STRUCTURE)
        if not df["macs"].isna().any():
            df["macs"] = df["macs"].astype("int64")
        return cls(graph, df, np.asarray(traffic, float).reshape(-1, 3, 3), sum(params.values()), free, fuse)

    def table(self, weight_dtype: str | None = None, activation_dtype: str | None = None) -> pd.DataFrame:
        """The layer table with bytes at the given precisions."""
        df = self.rows.copy()
        df["flops"] = 2 * df["macs"]
        priced = price(self.traffic, weight_dtype, activation_dtype)
        for r, col in enumerate(_ROLES):
            df[col] = priced[:, r]
        df["bytes"] = priced.sum(axis=1)
        df["intensity_macs_per_byte"] = df["macs"] / df["bytes"].where(df["bytes"] > 0)  # NaN for 0 bytes
        df = df[COLUMNS]
        df.attrs.update(
            model=self.graph.name,
            fuse=self.fuse,
            weight_dtype=weight_dtype or "model",
            activation_dtype=activation_dtype or "model",
            unknown_ops=sorted(set(df.loc[df["kind"] == "unknown", "op_type"])),
            free_nodes=self.free,
            folded_nodes=len(self.graph.folded),
            bound_sources={k: list(v) for k, v in self.graph.bound_sources.items()},
        )
        df.attrs["totals"] = {
            "macs": int(df["macs"].sum()),
            "flops": int(df["flops"].sum()),
            "params": int(self.params),
            **{col: float(df[col].sum()) for col in (*_ROLES, "bytes")},
            "layers": len(df),
            "unknown_layers": int((df["kind"] == "unknown").sum()),
            "upper_bound_layers": int((df["bound"] == "upper").sum()),
            "lower_bound_layers": int((df["bound"] == "lower").sum()),
        }
        return df


def totals(table: pd.DataFrame) -> dict:
    """Model totals of a layer table: MACs, FLOPs, parameters (shared weights once), bytes, layers."""
    if "totals" in table.attrs:
        return dict(table.attrs["totals"])
    return {
        c: table[c].sum() for c in ("macs", "flops", "params", "weight_bytes", "input_bytes", "output_bytes", "bytes")
    }
