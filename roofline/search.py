"""Search strategies over a space (``roofline.space``), one registry: ``search(space, score, strategy=...)``.

``score`` maps a list of candidates to an array of scores (higher is better), e.g. a MnasNet reward
of proxy accuracy and ``Evaluator`` latencies; it is called in batches so that evaluation stays
vectorised. Every strategy is repeatable with ``seed`` and evaluates at most ``budget`` candidates
(each distinct candidate once). Registered: ``random``, ``evolution`` (regularised evolution, Real et
al. 2019: tournament selection, one-gene mutation, the oldest member dies).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import pandas as pd

from roofline.errors import InvalidParameterError, did_you_mean

__all__ = ["search", "register_strategy", "STRATEGIES"]

STRATEGIES: dict[str, Callable] = {}


def register_strategy(name: str):
    def deco(fn):
        STRATEGIES[name] = fn
        return fn

    return deco


class _Budget:
    """Scores candidates once each, in batches, and records them in evaluation order."""

    def __init__(self, space, score, budget: int):
        self.space, self.score, self.budget = space, score, min(budget, space.size)
        self.seen: dict[tuple, float] = {}
        self.rows: list[dict] = []

    @property
    def left(self) -> int:
        return self.budget - len(self.seen)

    def __call__(self, genes_list) -> list[float]:
        new = list(dict.fromkeys(g for g in genes_list if g not in self.seen))[: max(0, self.left)]
        if new:
            cands = [self.space.candidate(g) for g in new]
            for c, s in zip(cands, np.asarray(self.score(cands), dtype=float)):
                self.seen[c.genes] = float(s)
                self.rows.append({"step": len(self.rows), "genes": c.genes, "spec": c.spec,
                                  "resolution": c.resolution, "score": float(s)})  # fmt: skip
        return [self.seen.get(g, -np.inf) for g in genes_list]


def search(space, score, strategy: str = "random", budget: int = 100, seed: int = 0, **options) -> pd.DataFrame:
    """Evaluated candidates in order (step, genes, spec, resolution, score); ``attrs["best"]`` is the best row."""
    if strategy not in STRATEGIES:
        raise InvalidParameterError(
            f"unknown strategy {strategy!r}{did_you_mean(strategy, STRATEGIES)}; known: {sorted(STRATEGIES)}"
        )
    if budget < 1:
        raise InvalidParameterError(f"budget must be >= 1, got {budget}")
    evaluate = _Budget(space, score, budget)
    STRATEGIES[strategy](space, evaluate, np.random.default_rng(seed), **options)
    df = pd.DataFrame(evaluate.rows)
    df.attrs.update(strategy=strategy, budget=budget, seed=seed, best=df.loc[df["score"].idxmax()].to_dict())
    return df


def _sizes(space) -> list[int]:
    return [len(options) for _, options in space.decisions()]


def _random_genes(rng, sizes) -> tuple[int, ...]:
    return tuple(int(rng.integers(k)) for k in sizes)


@register_strategy("random")
def _random(space, evaluate, rng, batch: int = 64) -> None:
    sizes = _sizes(space)
    stall = 0
    while evaluate.left > 0 and stall < 100:
        before = evaluate.left
        evaluate([_random_genes(rng, sizes) for _ in range(min(batch, evaluate.left))])
        stall = stall + 1 if evaluate.left == before else 0


@register_strategy("evolution")
def _evolution(space, evaluate, rng, population: int = 20, sample: int = 5) -> None:
    sizes = _sizes(space)
    pop: deque[tuple[tuple[int, ...], float]] = deque()
    start = [_random_genes(rng, sizes) for _ in range(min(population, evaluate.left))]
    pop.extend(zip(start, evaluate(start)))
    stall = 0
    while evaluate.left > 0 and stall < 200:
        picks = rng.choice(len(pop), size=min(sample, len(pop)), replace=False)
        parent = max((pop[i] for i in picks), key=lambda p: p[1])[0]
        child = list(parent)
        gene = int(rng.integers(len(sizes)))
        if sizes[gene] > 1:
            child[gene] = int((child[gene] + rng.integers(1, sizes[gene])) % sizes[gene])  # a different option
        child = tuple(child)
        before = evaluate.left
        (score,) = evaluate([child])
        stall = stall + 1 if evaluate.left == before else 0
        pop.append((child, score))
        pop.popleft()  # regularised: the oldest dies, not the worst
