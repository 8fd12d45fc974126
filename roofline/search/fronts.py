"""Universal networks: how far a candidate is from each device's accuracy-vs-latency front.

``estimate_fronts`` prices a large uniform sample of a space (the whole space when it is no larger than
the sample; plus its smallest and largest corners) on every device of a fast ``Evaluator`` and keeps
each device's Pareto front. ``Fronts.latency_at(d, accuracy)`` is the smallest front latency on device
``d`` among the front points at least as accurate; ``front_gaps`` is a candidate's relative gap
``latency / latency_at(accuracy) - 1`` on every device (0 for a candidate more accurate than every front
point: it extends the front; negative when it beats the estimated front).

``FrontGap`` is a search objective like ``roofline.search.objectives.Reward``::

    violation = max(0, worst_gap - tolerance) + max(0, max over devices of latency / target - 1)
    score     = accuracy - penalty x 100 x violation

i.e. the most accurate network whose worst gap is within ``tolerance`` of every device's front and
whose latency meets every device's target scores its accuracy; beyond that, ``penalty`` accuracy
points are lost per percent of violation (default 1: far steeper than accuracy grows with latency, so
a feasible network beats an infeasible one of similar size). The smallest network is on every front but
is not the most accurate feasible one, so it does not win. Targets default to the latency of the zoo
network ``mnv4_conv_s`` on each device (the CLI's ``--target-like`` default); ``np.inf`` disables them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from roofline import zoo
from roofline.errors import InvalidParameterError
from roofline.search.objectives import PROXY_SOURCE, proxy_accuracy

__all__ = [
    "Fronts",
    "estimate_fronts",
    "front_gaps",
    "front_index",
    "FrontGap",
    "default_targets",
    "DEFAULT_TARGET_MODEL",
]

DEFAULT_TARGET_MODEL = "mnv4_conv_s"


@dataclass
class Fronts:
    """Per device, the Pareto front (latency and accuracy, both increasing) of the candidates priced."""

    devices: list[str]
    latency_columns: list[str]
    latency: list[np.ndarray]  # per device, front latencies (increasing)
    accuracy: list[np.ndarray]  # per device, front accuracies (strictly increasing)
    sample: int = 0  # candidates priced (distinct), the sample's and the refinement's
    seed: int = 0
    refined: int = 0  # of which priced by the refinement (the last rows of ``points``)
    accuracy_source: str = "proxy"
    points: pd.DataFrame | None = field(default=None, repr=False)  # the priced candidates (plots)

    def latency_at(self, device: int, accuracy) -> np.ndarray:
        """Smallest front latency on ``device`` (index) among front points with accuracy >= ``accuracy``;
        NaN where ``accuracy`` is above every front point (or NaN)."""
        acc = np.asarray(accuracy, dtype=float)
        front_acc, front_lat = self.accuracy[device], self.latency[device]
        idx = np.searchsorted(front_acc, np.nan_to_num(acc, nan=np.inf), side="left")
        out = front_lat[np.minimum(idx, len(front_lat) - 1)].astype(float)
        return np.where((idx < len(front_lat)) & ~np.isnan(acc), out, np.nan)

    def table(self) -> pd.DataFrame:
        """Every device's front as rows (device, latency column, latency, accuracy)."""
        return pd.concat([pd.DataFrame({"device": d, "column": c, "latency": lat, "accuracy": acc})
                          for d, c, lat, acc in zip(self.devices, self.latency_columns, self.latency,
                                                    self.accuracy)], ignore_index=True)  # fmt: skip


def front_index(latency: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points (lower latency, higher accuracy), by increasing latency."""
    order = np.lexsort((-accuracy, latency))  # by latency, the more accurate first among equals
    acc = accuracy[order]
    best = np.maximum.accumulate(acc)
    return order[np.r_[True, acc[1:] > best[:-1]]]


def _front(latency: np.ndarray, accuracy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i = front_index(latency, accuracy)
    return latency[i], accuracy[i]


def _latency_columns(evaluator) -> list[str]:
    return [f"{'latency_mac_eq' if rel else 'latency_ms'}:{name}" for name, rel in
            zip(evaluator.columns, evaluator.relative)]  # fmt: skip


def _source(accuracy) -> str:
    return "proxy" if accuracy is None else getattr(accuracy, "__name__", "user")


def estimate_fronts(space, evaluator, accuracy=None, sample: int = 20000, seed: int = 0, refine: int = 5) -> Fronts:
    """Each device's accuracy-vs-latency front from ``sample`` uniform candidates of ``space`` (all of it
    when it has at most ``sample``) and its two corners (every decision's first option, every last one),
    priced by ``evaluator``; ``accuracy(spec, resolution) -> top-1 %`` or None for the labelled proxy.

    Then up to ``refine`` rounds of local search: every one-decision change of every front point (of any
    device) is priced too and the fronts recomputed, until no front changes. A random sample's front lies
    a few percent above the space's (20,000 of the 153-million UIB space: 3-10% at equal accuracy);
    refining closes most of that for a fraction of the sample's cost (docs/search.md)."""
    if sample < 1:
        raise InvalidParameterError(f"sample must be >= 1 candidate, got {sample}")
    sizes = [len(o) for _, o in space.decisions()]
    if space.size <= sample:
        genes = [c.genes for c in space.enumerate(limit=sample)]
        refine = 0
    else:
        rand = np.random.default_rng(seed).integers(0, sizes, size=(sample, len(sizes)))
        corners = np.array([[0] * len(sizes), [k - 1 for k in sizes]])
        genes = [tuple(int(x) for x in g) for g in np.unique(np.vstack([rand, corners]), axis=0)]
    acc_fn = accuracy or proxy_accuracy
    seen: dict[tuple, int] = {}
    acc, lat = np.empty(0), np.empty((0, len(evaluator.columns)))
    rounds, drawn = 0, len(genes)
    while genes:
        cands = [space.candidate(g) for g in genes]
        seen.update((g, len(seen) + i) for i, g in enumerate(genes))
        acc = np.r_[acc, np.array([acc_fn(c.spec, c.resolution) for c in cands], dtype=float)]
        lat = np.vstack([lat, evaluator.latency(cands)])
        on_front = sorted(set().union(*(front_index(lat[:, j], acc) for j in range(lat.shape[1]))))
        if rounds >= refine:
            break
        rounds += 1
        keys = list(seen)
        genes = list(dict.fromkeys(
            g for i in on_front for d, k in enumerate(sizes) for o in range(k)
            if (g := (*keys[i][:d], o, *keys[i][d + 1:])) not in seen
        ))  # fmt: skip
    fronts = [_front(lat[:, j], acc) for j in range(lat.shape[1])]
    columns = _latency_columns(evaluator)
    points = pd.DataFrame(lat, columns=columns)
    points.insert(0, "accuracy", acc)
    return Fronts(list(evaluator.columns), columns, [f[0] for f in fronts], [f[1] for f in fronts], len(acc), seed,
                  len(acc) - drawn, _source(accuracy), points)  # fmt: skip


def front_gaps(fronts: Fronts, accuracy, latency_matrix) -> np.ndarray:
    """(candidates x devices) relative gaps ``latency / front latency at the candidate's accuracy - 1``;
    0 where the candidate is more accurate than every front point (it extends the front)."""
    acc = np.asarray(accuracy, dtype=float)
    lat = np.asarray(latency_matrix, dtype=float).reshape(len(acc), len(fronts.devices))
    at = np.column_stack([fronts.latency_at(j, acc) for j in range(len(fronts.devices))])
    gaps = lat / at - 1.0
    return np.where(np.isnan(at) & ~np.isnan(acc)[:, None], 0.0, gaps)


def default_targets(evaluator, model: str = DEFAULT_TARGET_MODEL) -> np.ndarray:
    """The latency of the zoo network ``model`` on each device of ``evaluator``."""
    m = zoo.get(model)
    return evaluator.latency([m.network_spec], resolution=m.resolution)[0]


class FrontGap:
    """What a search maximises for a universal network (see the module docstring for the score):
    accuracy, within ``tolerance`` of every device's front (``fronts``, from ``estimate_fronts``) and
    under every device's target (``targets``: one or one per device; None: ``mnv4_conv_s``'s latency on
    each; ``np.inf``: none). Calling it on candidates gives ``accuracy``, one latency column per device
    (as ``Reward``), ``gap:<device>``, ``worst_gap`` and ``score``; ``objectives``, ``accuracy_source`` and
    ``describe()`` as ``Reward``."""

    def __init__(self, evaluator, fronts: Fronts, accuracy=None, tolerance: float = 0.05, targets=None,
                 penalty: float = 1.0):  # fmt: skip
        if list(fronts.devices) != list(evaluator.columns):
            raise InvalidParameterError(f"fronts are for {fronts.devices}, the evaluator for {evaluator.columns}")
        if not tolerance >= 0 or not penalty > 0:
            raise InvalidParameterError(f"tolerance must be >= 0 and penalty > 0, got {tolerance} and {penalty}")
        self.evaluator, self.fronts, self.tolerance, self.penalty = evaluator, fronts, float(tolerance), float(penalty)
        targets = default_targets(evaluator) if targets is None else targets
        self.targets = np.broadcast_to(np.asarray(targets, dtype=float), (len(evaluator.columns),)).copy()
        if np.any(~(self.targets > 0)):
            raise InvalidParameterError(f"latency targets must be > 0, got {list(self.targets)}")
        self.accuracy = accuracy or proxy_accuracy
        self.accuracy_source = _source(accuracy)
        self.latency_columns = _latency_columns(evaluator)
        self.gap_columns = [f"gap:{d}" for d in evaluator.columns]
        self.objectives = [("accuracy", "maximize")] + [(c, "minimize") for c in self.latency_columns]

    def __call__(self, candidates) -> pd.DataFrame:
        acc = np.array([self.accuracy(c.spec, c.resolution) for c in candidates], dtype=float)
        lat = self.evaluator.latency(candidates)
        return self.score_table(acc, lat)

    def score_table(self, accuracy, latency) -> pd.DataFrame:
        """The table of ``__call__`` from accuracies and a (candidates x devices) latency matrix."""
        acc, lat = np.asarray(accuracy, dtype=float), np.asarray(latency, dtype=float)
        gaps = front_gaps(self.fronts, acc, lat)
        worst = gaps.max(axis=1)
        over = np.maximum(0.0, (lat / self.targets[None, :]).max(axis=1) - 1.0)
        violation = np.maximum(0.0, worst - self.tolerance) + over
        out = pd.DataFrame(lat, columns=self.latency_columns)
        out.insert(0, "accuracy", acc)
        for col, g in zip(self.gap_columns, gaps.T):
            out[col] = g
        out["worst_gap"] = worst
        out["score"] = acc - self.penalty * 100.0 * violation
        return out

    def describe(self) -> dict:
        """What produced the scores, for result files (``search.json``)."""
        return {
            "devices": list(self.evaluator.columns),
            "precision": self.evaluator.precision,
            "objective": "front",
            "targets": [float(t) for t in self.targets],
            "tolerance": self.tolerance,
            "penalty": self.penalty,
            "front_sample": int(self.fronts.sample),
            "front_seed": int(self.fronts.seed),
            "accuracy_source": PROXY_SOURCE if self.accuracy_source == "proxy" else self.accuracy_source,
        }
