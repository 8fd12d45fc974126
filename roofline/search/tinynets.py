"""TinyNets' "Model Rubik's Cube" (Han et al., NeurIPS 2020) as a search strategy, registered as ``tinynets``.

TinyNets shrinks one network along three axes, width w, depth d and resolution r: sample scalings,
keep the accuracy-vs-MACs frontier, fit Gaussian processes of r and d against the MAC ratio
(scikit-learn), take w from MACs ~ d w^2 r^2, evaluate the predictions, then refine them locally (the
neighbours of the best so far).

The axes of a space: a scaling space's own ``width``, ``depth`` and ``resolution`` decisions (its
options are the multipliers, 1 the unscaled network); or, in a factorised space (``MnasSpace``,
``UibSpace``), every per-stage ``s{i}.width`` and ``s{i}.depth`` decision tied, each option a multiple
of its option in the space's start network (``baseline_genes()``, MobileNetV2 in ``MnasSpace``, else
the widest: every decision at its last option), the other decisions held at the start's. The local
refinement then moves single decisions of the space.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from roofline.errors import InvalidParameterError, require
from roofline.search.strategies import _climb, _sizes, register_strategy
from roofline.zoo.blocks import network_cost

__all__ = ["tinynets", "Axes"]

AXES = ("width", "depth", "resolution")


@dataclass(frozen=True)
class Axes:
    """TinyNets' three axes over a space: per axis, its decisions and each one's reference option (the
    value multiplier 1 stands for); the resolution is absolute."""

    start: tuple[int, ...]  # genes of the unscaled network (the axes' decisions at their reference)
    decisions: dict  # axis -> [(decision index, reference value)]
    options: dict  # axis -> the sorted multipliers (resolutions) the axis offers
    base_resolution: float

    @classmethod
    def of(cls, space) -> Axes:
        decisions = space.decisions()
        names = [n for n, _ in decisions]
        if all(a in names for a in AXES):  # a scaling space: its decisions are the multipliers
            start = [0] * len(decisions)
            picked = {a: [(names.index(a), 1.0)] for a in AXES}
            base = float(getattr(space, "base_resolution", max(decisions[names.index("resolution")][1])))
        else:
            widest = [len(options) - 1 for _, options in decisions]
            start = list(space.baseline_genes() if hasattr(space, "baseline_genes") else widest)
            picked = {a: [(i, float(decisions[i][1][start[i]])) for i, n in enumerate(names)
                          if n.split(".")[-1] == a and float(decisions[i][1][start[i]]) > 0] for a in AXES}  # fmt: skip
            picked["resolution"] = [(i, 1.0) for i, _ in picked["resolution"]][:1]
            missing = [a for a in AXES if not picked[a]]
            if missing:
                raise InvalidParameterError(f"tinynets needs width, depth and resolution decisions (global or per "
                                            f"stage); the space has none for {missing}: {names}")  # fmt: skip
            base = float(decisions[picked["resolution"][0][0]][1][start[picked["resolution"][0][0]]])
        options = {a: sorted({float(decisions[i][1][g]) / ref for i, ref in picked[a]
                              for g in range(len(decisions[i][1])) if float(decisions[i][1][g]) > 0})
                   for a in AXES}  # fmt: skip
        return cls(tuple(start), picked, options, base)

    def genes(self, space, wdr) -> tuple[int, ...]:
        """The start's genes with every axis decision at the option nearest (in log) its reference x w, d (r:
        absolute)."""
        decisions = space.decisions()
        genes = list(self.start)
        for axis, value in zip(AXES, wdr):
            for i, ref in self.decisions[axis]:
                opts = np.maximum(np.asarray(decisions[i][1], dtype=float), 1e-9)
                genes[i] = int(np.argmin(np.abs(np.log(opts) - math.log(max(value * ref, 1e-9)))))
        return tuple(genes)

    def value(self, space, genes, axis: str) -> float:
        """The axis's multiplier (resolution: absolute) in ``genes``: the mean over its decisions."""
        decisions = space.decisions()
        return float(np.mean([float(decisions[i][1][genes[i]]) / ref for i, ref in self.decisions[axis]]))


@register_strategy("tinynets")
def tinynets(space, evaluate, rng, samples: float = 0.5, ratios: int = 8) -> None:
    """Sample ``samples`` of the budget as scalings (one option per axis, uniform); GP-fit resolution and
    depth of the accuracy-vs-MACs frontier against the log MAC ratio; evaluate the snapped predictions
    (width from MACs ~ d w^2 r^2) over ``ratios`` MAC ratios, then climb: the unevaluated neighbours of the
    best so far, while budget remains."""
    gaussian_process = require("sklearn.gaussian_process", "strategy 'tinynets'")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    axes = Axes.of(space)
    base = (1.0, 1.0, axes.base_resolution)
    base_cand = space.candidate(axes.genes(space, base))
    base_macs = _macs(base_cand.spec, base_cand.resolution)
    draws = max(2, int(evaluate.left * samples))
    evaluate([axes.genes(space, [opts[int(rng.integers(len(opts)))] for opts in axes.options.values()])
              for _ in range(draws)])  # fmt: skip
    seen = list(evaluate.seen)
    ratio = np.array([_macs(evaluate.seen[g]["spec"], evaluate.seen[g]["resolution"]) / base_macs for g in seen])
    acc = np.array([evaluate.metric(g, "accuracy") for g in seen])
    order = np.argsort(ratio)
    front = order[np.r_[True, acc[order][1:] > np.maximum.accumulate(acc[order])[:-1]]]  # the frontier
    x = np.log(ratio[front])[:, None]
    kernel = ConstantKernel() * RBF(length_scale=1.0) + WhiteKernel(1e-3)
    fits = {}
    for axis, scale in (("resolution", base[2]), ("depth", 1.0)):
        values = np.array([axes.value(space, seen[j], axis) for j in front], dtype=float) / scale
        gp = gaussian_process.GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(rng.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # few frontier points: bounds are often hit
            fits[axis] = gp.fit(x, values)
    grid = np.linspace(x.min(), x.max(), ratios)
    r = fits["resolution"].predict(grid[:, None])
    d = np.clip(fits["depth"].predict(grid[:, None]), 1e-3, None)
    w = np.sqrt(np.exp(grid) / (d * r**2))  # MACs ~ d w^2 r^2 (r relative to the base resolution)
    evaluate([axes.genes(space, (wi, di, ri * base[2])) for wi, di, ri in zip(w, d, r)])
    _climb(evaluate, _sizes(space))


def _macs(spec: str, resolution: int) -> float:
    return float(network_cost(spec, int(resolution))[0])
