"""The intermediate representation every counting rule reads, and the loaders that build it.

This module holds only the classes: ``Tensor`` (static shape, element type, constant or not), ``Node``
(resolved inputs and outputs, attributes, bound and repeat) and ``Graph`` (a model's run-time nodes in
topological order); it imports no loader, so the op rules can import it. ``roofline.ir.load`` is the entry
point (``load_graph``, ``resolve_model``): it reads a file once, sniffs its format and hands it to
``roofline.ir.onnx`` (ONNX, with ``onnx_shapes``, ``fold``, ``onnx_flow``, ``onnx_bounds`` and
``onnx_inline``) or ``roofline.ir.tflite`` (TFLite, with ``tflite_ops``); ``roofline.ir.litert`` is where
LiteRT itself is touched, ``roofline.ir.checks`` what every loaded model must satisfy."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import onnx

from roofline.dtypes import onnx_itemsize
from roofline.errors import ShapeError

__all__ = ["Tensor", "Node", "Graph", "ModelLike"]

ModelLike = str | os.PathLike | bytes | onnx.ModelProto


@dataclass(frozen=True)
class Tensor:
    """One tensor as the counting rules see it."""

    name: str
    shape: tuple[int, ...] | None  # None when not statically known
    elem_type: int  # onnx.TensorProto element type
    const: bool  # known at load time (a weight), not an activation

    @cached_property
    def numel(self) -> int:
        if self.shape is None:
            raise ShapeError(f"tensor {self.name!r} has no static shape")
        return math.prod(self.shape)

    @property
    def itemsize(self) -> float:
        return onnx_itemsize(self.elem_type)

    def shape_str(self) -> str:
        if self.shape is None:
            return "?"
        return "x".join(str(d) for d in self.shape) if self.shape else "scalar"


@dataclass(frozen=True)
class Node:
    """One ONNX node with its resolved input and output tensors (optional inputs are None)."""

    name: str
    op_type: str
    domain: str
    attrs: Mapping[str, object]
    inputs: tuple[Tensor | None, ...]
    outputs: tuple[Tensor, ...]
    #: "" exact; "upper": sizes are upper bounds of data-dependent sizes; "lower": one iteration of a
    #: loop whose trip count is known only at run time
    bound: str = ""
    repeat: int = 1  # runs this many times per inference (a loop body with a constant trip count)

    def input(self, i: int) -> Tensor | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)


@dataclass
class Graph:
    """A model's run-time nodes in topological order, with constant subgraphs folded away."""

    name: str
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    folded: list[str] = field(default_factory=list)  # names of constant nodes a runtime folds at load
    opset: int = 0
    # values of the small constants (<= _MAX_VALUE_ELEMS elements) that running nodes read: axes, pads,
    # target shapes, scalars; what single-layer kernels are rebuilt from
    values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # "upper" / "lower" -> the nodes whose data-dependent size or run-time trip count makes rows bounds,
    # as "NonZero 'name'"
    bound_sources: dict[str, list[str]] = field(default_factory=dict)
    # sparse weights (TFLite): tensor name -> share of its elements that are not stored
    sparsity: dict[str, float] = field(default_factory=dict, repr=False)

    @cached_property
    def consumers(self) -> dict[str, list[int]]:
        """Tensor name -> indices (into ``nodes``) of the nodes that read it."""
        out: dict[str, list[int]] = {}
        for i, node in enumerate(self.nodes):
            for t in node.inputs:
                if t is not None:
                    out.setdefault(t.name, []).append(i)
        return out
