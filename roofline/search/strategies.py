"""The registered search strategies (``STRATEGIES``, filled by ``@register_strategy(name)``).

A strategy is ``fn(space, evaluate, rng, **options) -> genes | None``: it calls ``evaluate(list of
genes)`` (scores, -inf beyond the budget; ``evaluate.left``, ``.seen``, ``.metric``, ``.values`` and
``.objectives`` tell it what is known) until the budget is spent or it is done, draws every random
choice from ``rng``, and may return the genes of the network it picks (else the best score wins).
``roofline.search.search`` runs them. Registered:

- ``random``: uniform sampling;
- ``evolution``: regularised evolution (Real et al. 2019: tournament selection, one-gene mutation,
  the oldest member dies);
- ``nsga2`` / ``nsga3``: Optuna's NSGA-II / NSGA-III samplers on the score's objectives;
- ``tinynets`` (registered by ``roofline.search.tinynets``): TinyNets' "Model Rubik's Cube" (Han et
  al. 2020): scalings of one network sampled, Gaussian processes of resolution and depth fitted to the
  accuracy-vs-MACs frontier, width from the MAC ratio, then a local refinement; on a scaling space's
  multipliers or a factorised space's per-stage widths and depths, tied;
- ``autoslim``: AutoSlim's greedy slimming (Yu & Huang 2019): from the widest network, step the
  channel decision whose slimming costs the least accuracy (by default per latency saved), until a
  device's latency target is met;
- ``netadapt`` (registered by ``roofline.search.netadapt``): NetAdapt (Yang et al. 2018), channel
  decisions cut step by step to a device's latency target, the most accurate proposal kept each step;
- ``two_stage``: MobileNetV4's two-stage search (Qin et al. 2024, Sec. 6.1): a coarse stage over
  every decision but the blocks' depthwise kernels, held (default: start 3x3, middle none; the paper's
  IB with a 3x3, start none and middle 3x3, is ``fixed=PAPER_COARSE_KERNELS``), then a fine stage over
  the kernels that matter for the coarse best (per block in a ``UibSpace(per_block_kernels=True)``, per
  stage in the default genome), each stage a regularised evolution on its share of the budget.

A new strategy needs a case in ``tests/test_search.py`` (``STRATEGY_CASES``): the test fails otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Callable

import numpy as np

from roofline.errors import InvalidParameterError, check_choice, require

__all__ = ["STRATEGIES", "register_strategy", "COARSE_KERNELS", "PAPER_COARSE_KERNELS"]

STRATEGIES: dict[str, Callable] = {}


def register_strategy(name: str):
    """Decorator adding a strategy to ``STRATEGIES`` under ``name``; a name already taken is an error."""

    def deco(fn):
        if name in STRATEGIES:
            taken = STRATEGIES[name]
            raise InvalidParameterError(
                f"strategy {name!r} is taken (by {taken.__module__}.{taken.__qualname__}); use another name"
            )
        STRATEGIES[name] = fn
        return fn

    return deco


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
def _evolution(space, evaluate, rng, population: int = 20, sample: int = 5, initial=()) -> None:
    """``initial``: genes placed first in the starting population (the rest random)."""
    sizes = _sizes(space)
    pop: deque[tuple[tuple[int, ...], float]] = deque()
    start = [tuple(g) for g in initial][:population]
    start += [_random_genes(rng, sizes) for _ in range(population - len(start))]  # not fewer for a small
    # budget: runs of different budgets (and an interrupted run's resumption) then share the same first steps
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


def _nsga(space, evaluate, rng, name: str, population: int) -> None:
    optuna = require("optuna", f"strategy {name!r}")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cls = optuna.samplers.NSGAIISampler if name == "nsga2" else optuna.samplers.NSGAIIISampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # NSGA-III is marked experimental
        sampler = cls(population_size=population, seed=int(rng.integers(2**31)))
    study = optuna.create_study(directions=[d for _, d in evaluate.objectives], sampler=sampler)
    decisions = [(name, len(options)) for name, options in space.decisions()]
    stall = 0
    while evaluate.left > 0 and stall < 20:
        trials = [study.ask() for _ in range(population)]
        genes = [tuple(t.suggest_int(name, 0, k - 1) for name, k in decisions) for t in trials]
        before = evaluate.left
        evaluate(genes)
        stall = stall + 1 if evaluate.left == before else 0
        for t, g in zip(trials, genes):
            if g in evaluate.seen:
                study.tell(t, evaluate.values(g))
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)  # beyond the budget


@register_strategy("nsga2")
def _nsga2(space, evaluate, rng, population: int = 24) -> None:
    _nsga(space, evaluate, rng, "nsga2", population)


@register_strategy("nsga3")
def _nsga3(space, evaluate, rng, population: int = 24) -> None:
    _nsga(space, evaluate, rng, "nsga3", population)


def _climb(evaluate, sizes) -> None:
    """Spend the rest of the budget on the unevaluated one-step neighbours of the best candidates."""
    while evaluate.left > 0:
        for g in sorted(evaluate.seen, key=lambda g: -evaluate.seen[g]["score"]):
            todo = [n for n in _neighbours(g, sizes) if n not in evaluate.seen]
            if todo:
                evaluate(todo)
                break
        else:
            return


def _neighbours(genes, sizes) -> list[tuple[int, ...]]:
    out = []
    for i, k in enumerate(sizes):
        for step in (-1, 1):
            if 0 <= genes[i] + step < k:
                out.append(tuple(g + step if j == i else g for j, g in enumerate(genes)))
    return out


def device_column(score, device: int | str, strategy: str) -> tuple[int, list[str]]:
    """The index of ``device`` (an index or a device name) among the score's latency columns, and the columns."""
    columns = getattr(score, "latency_columns", None)
    if not columns:
        raise InvalidParameterError(f"{strategy} needs a score with latency columns (Reward or FrontGap)")
    j = device if isinstance(device, int) else next((k for k, c in enumerate(columns) if c.endswith(f":{device}")), -1)
    if not 0 <= j < len(columns):
        raise InvalidParameterError(f"device {device!r} is not among the score's latency columns {columns}")
    return j, columns


@register_strategy("autoslim")
def _autoslim(space, evaluate, rng, device: int | str = 0, start=None, criterion: str = "drop_per_latency"):
    """Greedy slimming on ``device`` (index or name among the score's latency columns) to its target:
    every channel decision (names ending in "width" or "expansion") starts at its widest option (the
    others at ``start``'s, default their last); each step evaluates every one-option narrower
    neighbour and keeps the one that loses the least accuracy per latency saved on the device
    (``criterion="drop_per_latency"``) or, as in the paper, the least accuracy (``"drop"``)."""
    check_choice(criterion, ("drop_per_latency", "drop"), "criterion")
    score = evaluate.score
    j, columns = device_column(score, device, "autoslim")
    target = float(score.targets[j])
    decisions = space.decisions()
    channels = [i for i, (name, _) in enumerate(decisions) if name.split(".")[-1] in ("width", "expansion")]
    if not channels:
        raise InvalidParameterError("autoslim needs channel decisions (width or expansion) in the space")
    genes = tuple(start) if start is not None else tuple(len(o) - 1 for _, o in decisions)
    genes = tuple(len(decisions[i][1]) - 1 if i in channels else g for i, g in enumerate(genes))
    evaluate([genes])
    while evaluate.left > 0 and genes in evaluate.seen and evaluate.metric(genes, columns[j]) > target:
        narrower = [tuple(g - 1 if k == i else g for k, g in enumerate(genes)) for i in channels if genes[i] > 0]
        if not narrower:
            break  # the narrowest network: the target is out of reach by slimming alone
        evaluate(narrower)
        done = [g for g in narrower if g in evaluate.seen]
        if not done:
            break
        acc, lat = evaluate.metric(genes, "accuracy"), evaluate.metric(genes, columns[j])
        if criterion == "drop":
            genes = max(done, key=lambda g: evaluate.metric(g, "accuracy"))
        else:  # accuracy lost per latency saved
            genes = min(done, key=lambda g: (acc - evaluate.metric(g, "accuracy"))
                        / max(lat - evaluate.metric(g, columns[j]), 1e-12))  # fmt: skip
    return genes  # the slimmed network (the first under the target, or the narrowest reached)


class _View:
    """The candidates of ``space`` equal to ``genes`` but in the decisions ``free``: a stage's sub-space,
    whose genes are those ``free`` decisions' options."""

    def __init__(self, space, genes, free):
        every = space.decisions()
        self.space, self.genes = space, tuple(genes)
        self.free = [i for i in free if len(every[i][1]) > 1]  # a single option is no choice: mutating it wastes steps
        self._decisions = [every[i] for i in self.free]

    def decisions(self) -> list[tuple[str, tuple]]:
        return self._decisions

    @property
    def size(self) -> int:
        return math.prod(len(options) for _, options in self._decisions)

    def full(self, sub) -> tuple[int, ...]:
        genes = list(self.genes)
        for i, g in zip(self.free, sub):
            genes[i] = int(g)
        return tuple(genes)

    def candidate(self, sub):
        return self.space.candidate(self.full(sub))


class _ViewBudget:
    """``evaluate`` seen through a ``_View``, spending at most ``cap`` of its budget (what the view's
    strategy sees as ``left``); every candidate goes to ``evaluate``, as genes of the whole space."""

    def __init__(self, evaluate, view: _View, cap: int):
        self.evaluate, self.view, self.cap, self.spent = evaluate, view, int(cap), 0
        self.objectives, self.score = evaluate.objectives, getattr(evaluate, "score", None)
        self.seen: dict[tuple, dict] = {}

    @property
    def left(self) -> int:
        return max(0, min(self.cap - self.spent, self.evaluate.left))

    def __call__(self, subs) -> list[float]:
        subs = [tuple(int(g) for g in s) for s in subs]
        full = [self.view.full(s) for s in subs]
        new = list(dict.fromkeys(f for f in full if f not in self.evaluate.seen))[: self.left]
        before = self.evaluate.left
        if new:
            self.evaluate(new)
        self.spent += before - self.evaluate.left
        for s, f in zip(subs, full):
            if f in self.evaluate.seen:
                self.seen[s] = self.evaluate.seen[f]
        return [self.evaluate.seen[f]["score"] if f in self.evaluate.seen else -np.inf for f in full]

    def values(self, sub) -> list[float]:
        return self.evaluate.values(self.view.full(sub))

    def metric(self, sub, column: str) -> float:
        return self.evaluate.metric(self.view.full(sub), column)


def _option(options: tuple, value) -> int:
    """Index of ``value`` among ``options``, else of the nearest numeric option."""
    if value in options:
        return options.index(value)
    return int(np.argmin([abs(float(o) - float(value)) for o in options]))


PAPER_COARSE_KERNELS = {"start_k": 0, "middle_k": 3}  # MobileNetV4's coarse stage: IB blocks, a 3x3 depthwise
COARSE_KERNELS = {"start_k": 3, "middle_k": 0}  # the default: ConvNext-like blocks, a 3x3 depthwise before expanding


@register_strategy("two_stage")
def _two_stage(space, evaluate, rng, split: float = 0.5, fine=("start_k", "middle_k"), fixed=None,
               strategy: str = "evolution", **options) -> None:  # fmt: skip
    """MobileNetV4's two-stage search. Decisions are named by kind (the last dotted part of their name:
    ``s1.b2.middle_k`` is a ``middle_k``). Coarse stage (``split`` of the budget): ``strategy`` over every
    decision whose kind is neither in ``fine`` nor in ``fixed``, with the ``fine`` kinds held at their
    ``fixed`` values (default ``COARSE_KERNELS``, start kernel 3, middle 0: a ConvNext-like block; the
    paper's IB with a 3x3 depthwise, start 0 and middle 3, is ``PAPER_COARSE_KERNELS``; options absent
    from a stage: the nearest) and other kinds named in ``fixed`` (e.g. ``{"expansion": 4.0}``, as the
    paper) held in both stages. Why not the paper's IB by default: a middle depthwise works on the
    expanded tensor, dear on a roofline, while these fronts are made of start-kernel blocks; widths and
    depths sized for IBs are a network the fine stage cannot repair (``benches/bench_two_stage.py``:
    the IB default ends 6.8% from the fronts, the start 3x3 default 4.9%, one-stage evolution 5.3%); a
    ``fine`` kind without a ``fixed`` value is held at its first option. Fine stage (the rest):
    ``strategy`` over the ``fine`` decisions that matter for the coarse best (``space.active``: blocks
    beyond a stage's depth do not), every other decision kept; evolution starts from the coarse best.
    Should the fine sub-space run out before the budget, the next-best coarse candidates get their fine
    stage in turn. ``options`` go to ``strategy``."""
    if not 0.0 <= split <= 1.0:
        raise InvalidParameterError(f"split must be in [0, 1] (the coarse stage's share of the budget), got {split}")
    if strategy not in STRATEGIES or strategy == "two_stage":
        raise InvalidParameterError(f"strategy must be another registered strategy, got {strategy!r}")
    fine = (fine,) if isinstance(fine, str) else tuple(fine)
    fixed = dict(COARSE_KERNELS if fixed is None else fixed)
    decisions = space.decisions()
    kinds = [name.split(".")[-1] for name, _ in decisions]
    fine_idx = [i for i, k in enumerate(kinds) if k in fine]
    base = tuple(_option(o, fixed[k]) if k in fixed else 0 for (_, o), k in zip(decisions, kinds))
    coarse = _View(space, base, [i for i, k in enumerate(kinds) if k not in fine and k not in fixed])
    run = STRATEGIES[strategy]
    share = split if fine_idx else 1.0  # nothing to fine-tune: the coarse stage is the whole search
    stage = _ViewBudget(evaluate, coarse, round(evaluate.left * share))
    if coarse.free and stage.left > 0:
        run(coarse, stage, rng, **options)
    ranked = sorted(stage.seen, key=lambda s: -stage.seen[s]["score"])  # stable: ties in evaluation order
    for genes in [coarse.full(s) for s in ranked] or [base]:
        if evaluate.left <= 0:
            break
        free = space.active(genes, fine_idx) if hasattr(space, "active") else fine_idx
        if not free:
            continue
        view = _View(space, genes, free)
        start = {"initial": [tuple(genes[i] for i in view.free)]} if strategy == "evolution" else {}
        run(view, _ViewBudget(evaluate, view, evaluate.left), rng, **{**start, **options})
