"""Latency-aware architecture search: ``search(space, score, strategy=...)`` runs a registered strategy.

The package: ``strategies`` (the registry ``STRATEGIES``, ``@register_strategy(name)`` and the
strategies: random, evolution, nsga2, nsga3, autoslim, two_stage; ``netadapt`` and ``tinynets`` register theirs),
``space``
(the spaces: ``UibSpace``, MobileNetV4-style stages, ``ScalingSpace``, width x depth x resolution of a zoo network,
and ``MnasSpace``, MnasNet's factorised hierarchical space),
``fasteval`` (``Evaluator``: many candidates' latency on many devices from per-block formulas, without
building ONNX), ``objectives`` (``Reward``: MnasNet rewards over one or more devices, with a labelled
accuracy proxy), ``results`` (the results table on disk: ``append_results``, ``read_results``,
``ResultsError``) and ``distributed`` (``distributed_search``: trials in a shared Optuna database, over
processes or machines). ``search`` and ``pareto_front`` live here; the registry's and the table's names are
re-exported, so ``from roofline.search import register_strategy, read_results`` works.

``score`` maps a list of candidates to their scores (higher is better): an array, or a table with a
``score`` column and metric columns, as ``Reward`` gives (accuracy and one latency per device; its
``objectives`` drive the multi-objective strategies). It is called in batches so that evaluation stays
vectorised. Every strategy is repeatable with ``seed`` and evaluates at most ``budget`` distinct
candidates. A search resumes from an earlier (interrupted) run's table with ``resume=``: the strategy
replays from the same seed, taking known candidates' results from the table instead of evaluating
them, and continues where the run stopped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from roofline.errors import InvalidParameterError, did_you_mean
from roofline.search import netadapt as _netadapt  # noqa: F401  (registers the "netadapt" strategy)
from roofline.search import tinynets as _tinynets  # noqa: F401  (registers the "tinynets" strategy)
from roofline.search.distributed import distributed_search
from roofline.search.results import RESULT_COLUMNS, ResultsError, append_results, parse_genes, read_results
from roofline.search.strategies import STRATEGIES, register_strategy

__all__ = ["search", "register_strategy", "STRATEGIES", "pareto_front", "parse_genes", "read_results",
           "append_results", "ResultsError", "RESULT_COLUMNS", "distributed_search"]  # fmt: skip


class _Budget:
    """Scores candidates once each, in batches, and records them in evaluation order."""

    def __init__(self, space, score, budget: int, known: pd.DataFrame | None = None, on_rows=None):
        self.space, self.score, self.budget, self.on_rows = space, score, min(budget, space.size), on_rows
        self.objectives = list(getattr(score, "objectives", [("score", "maximize")]))
        self.known = {parse_genes(r["genes"]): r for r in known.to_dict("records")} if known is not None else {}
        self.seen: dict[tuple, dict] = {}
        self.rows: list[dict] = []

    @property
    def left(self) -> int:
        return self.budget - len(self.seen)

    def __call__(self, genes_list) -> list[float]:
        """Scores of ``genes_list`` (-inf for those the budget could not take)."""
        new = list(dict.fromkeys(g for g in genes_list if g not in self.seen))[: max(0, self.left)]
        replayed = [g for g in new if g in self.known]
        fresh = [g for g in new if g not in self.known]
        rows = {g: {**self.known[g], "genes": g} for g in replayed}
        if fresh:
            cands = [self.space.candidate(g) for g in fresh]
            metrics = self.score(cands)
            if not isinstance(metrics, pd.DataFrame):
                metrics = pd.DataFrame({"score": np.asarray(metrics, dtype=float)})
            for c, m in zip(cands, metrics.to_dict("records")):
                rows[c.genes] = {"genes": c.genes, "spec": c.spec, "resolution": c.resolution, **m}
        added = []
        for g in new:  # evaluation order, whether replayed or fresh
            row = {"step": len(self.rows), **{k: v for k, v in rows[g].items() if k != "step"}}
            row["score"] = float(row["score"])
            self.seen[g] = row
            self.rows.append(row)
            added.append(row)
        if added and self.on_rows:
            self.on_rows(added, fresh=len(fresh))
        return [self.seen[g]["score"] if g in self.seen else -np.inf for g in genes_list]

    def values(self, genes) -> list[float]:
        return [float(self.seen[genes][col]) for col, _ in self.objectives]

    def metric(self, genes, column: str) -> float:
        row = self.seen[genes]
        return float(row[column] if column in row else row["score"])


def search(space, score, strategy: str = "random", budget: int = 100, seed: int = 0, resume=None, on_rows=None,
           **options) -> pd.DataFrame:  # fmt: skip
    """Evaluated candidates in order (step, genes, spec, resolution, metrics, score).

    ``attrs`` holds ``best`` (the row with the best score, or the network a strategy picks: AutoSlim's
    slimmed network), the strategy, budget and seed. ``resume`` is an earlier
    run's table (or CSV path) of the same space, score, strategy and seed; ``on_rows(rows, fresh=n)``
    is called after every batch (progress bars, incremental writing).
    """
    if strategy not in STRATEGIES:
        raise InvalidParameterError(
            f"unknown strategy {strategy!r}{did_you_mean(strategy, STRATEGIES)}; known: {sorted(STRATEGIES)}"
        )
    if budget < 1:
        raise InvalidParameterError(f"budget must be >= 1, got {budget}")
    if isinstance(resume, str) or hasattr(resume, "__fspath__"):
        resume = read_results(resume, space, [c for c, _ in getattr(score, "objectives", [])])
    known = resume
    evaluate = _Budget(space, score, budget, known, on_rows)
    pick = STRATEGIES[strategy](space, evaluate, np.random.default_rng(seed), **options)
    df = pd.DataFrame(evaluate.rows)
    best = evaluate.seen[pick] if pick in evaluate.seen else df.loc[df["score"].idxmax()].to_dict()
    df.attrs.update(strategy=strategy, budget=budget, seed=seed, best=dict(best))
    return df


def pareto_front(df: pd.DataFrame, accuracy: str = "accuracy", latency: str | None = None) -> pd.DataFrame:
    """Rows not dominated in (higher ``accuracy``, lower ``latency``), by increasing latency."""
    from roofline.search.fronts import front_index  # (fronts imports this package's modules)

    latency = latency or next(c for c in df.columns if c.startswith("latency"))
    return df.iloc[front_index(df[latency].to_numpy(float), df[accuracy].to_numpy(float))]
