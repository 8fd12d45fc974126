"""Search strategies over a space (``roofline.space``), one registry: ``search(space, score, strategy=...)``.

``score`` maps a list of candidates to their scores (higher is better): an array, or a table with a
``score`` column and metric columns, as ``roofline.search.objectives.Reward`` gives (accuracy and one
latency per device; its ``objectives`` drive the multi-objective strategies). It is called in batches
so that evaluation stays vectorised. Every strategy is repeatable with ``seed`` and evaluates at most
``budget`` distinct candidates. Registered:

- ``random``: uniform sampling;
- ``evolution``: regularised evolution (Real et al. 2019: tournament selection, one-gene mutation,
  the oldest member dies);
- ``nsga2`` / ``nsga3``: Optuna's NSGA-II / NSGA-III samplers on the score's objectives;
- ``tinynets``: TinyNets' "Model Rubik's Cube" (Han et al. 2020) on a scaling space: sample,
  keep the accuracy-vs-MACs frontier, fit Gaussian processes of resolution and depth against the
  MAC ratio (scikit-learn), take width from the MAC ratio, evaluate the predictions, then refine
  them locally (the neighbours of the best so far);
- ``autoslim``: AutoSlim's greedy slimming (Yu & Huang 2019): from the widest network, step the
  channel decision whose slimming costs the least accuracy (by default per latency saved), until a
  device's latency target is met.

A search resumes from an earlier (interrupted) run's table with ``resume=``: the strategy replays
from the same seed, taking known candidates' results from the table instead of evaluating them, and
continues where the run stopped. The table on disk (``append_results`` / ``read_results``) grows
by whole, fsynced lines; reading it drops a last line cut short by a kill, keeps the first row of a
candidate written twice, and rejects anything else that is wrong (``ResultsError``, naming the file
and the line).
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from roofline.errors import InvalidParameterError, check_choice, did_you_mean, require
from roofline.files import append_lines, read_lines
from roofline.zoo.blocks import network_cost

__all__ = ["search", "register_strategy", "STRATEGIES", "pareto_front", "parse_genes", "read_results",
           "append_results", "ResultsError", "RESULT_COLUMNS"]  # fmt: skip

STRATEGIES: dict[str, Callable] = {}


def register_strategy(name: str):
    def deco(fn):
        STRATEGIES[name] = fn
        return fn

    return deco


def parse_genes(text) -> tuple[int, ...]:
    """Genes as written in a results table ("0 2 1" or "(0, 2, 1)") back to a tuple."""
    return text if isinstance(text, tuple) else tuple(int(g) for g in re.findall(r"\d+", str(text)))


class ResultsError(InvalidParameterError):
    """A search's results table (or its search.json) is damaged, foreign or inconsistent."""


#: the columns every results table has; the score's metric columns come between resolution and score
RESULT_COLUMNS = ("step", "genes", "spec", "resolution", "score")


def _genes_text(genes) -> str:
    return " ".join(map(str, genes)) if isinstance(genes, tuple) else str(genes)


def append_results(path, rows: list[dict]) -> None:
    """Append evaluated candidates (``search``'s rows) to the results table at ``path``: whole lines,
    fsynced, under a lock, with the header when the table is new; a line a kill left cut is dropped first."""
    if not rows:
        return
    df = pd.DataFrame(rows)
    df["genes"] = [_genes_text(g) for g in df["genes"]]
    text = df.to_csv(index=False, lineterminator="\n")
    header, body = text.split("\n", 1)
    path = Path(path)
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            first = f.readline()
        if first.endswith(b"\n") and first.decode("utf-8", "replace").rstrip("\n") != header:
            raise ResultsError(f"{path}: its columns are not this search's ({header}); use another folder")
    append_lines(path, body, header=header)


def read_results(path, space=None, columns=()) -> pd.DataFrame:
    """The results table at ``path``, checked line by line (``ResultsError`` naming the line).

    A last line without its newline (a kill cut it) is dropped; a candidate written twice keeps its
    first row. Every row needs a step, genes, spec, resolution, score and ``columns`` (the score's
    metrics), numbers where numbers belong, and with ``space`` genes of that space whose spec and
    resolution are the ones written. An empty file, or a header alone, is a table of no rows (a run
    killed before its first row).
    """
    path = Path(path)
    lines = read_lines(path, ResultsError)  # a line a kill cut short is dropped
    required = list(dict.fromkeys([*RESULT_COLUMNS, *columns]))
    if not lines:
        return pd.DataFrame(columns=required)
    header = _csv_fields(path, 1, lines[0])
    missing = [c for c in required if c not in header]
    if missing or len(set(header)) != len(header):
        what = f"lacks {', '.join(missing)}" if missing else "repeats a column"
        raise ResultsError(f"{path}: not a results table of this search (header {lines[0][:100]!r} {what})")
    decisions = [len(options) for _, options in space.decisions()] if space is not None else None
    rows, seen = [], set()
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = _csv_fields(path, number, line)
        if len(fields) != len(header):
            raise ResultsError(f"{path}: line {number} has {len(fields)} fields, expected {len(header)}: {line[:80]!r}")
        row = dict(zip(header, fields))
        problem = _check_result(row, decisions, space)
        if problem:
            raise ResultsError(f"{path}: line {number}: {problem}")
        if row["genes"] not in seen:
            seen.add(row["genes"])
            row["genes"] = " ".join(map(str, row["genes"]))
            rows.append(row)
    return pd.DataFrame(rows, columns=header)


def _csv_fields(path: Path, number: int, line: str) -> list[str]:
    try:
        (fields,) = list(csv.reader([line], strict=True))
    except (csv.Error, ValueError):
        raise ResultsError(f"{path}: line {number} is not a CSV row: {line[:80]!r}") from None
    return fields


def _check_result(row: dict, decisions, space) -> str | None:
    """Parse ``row``'s fields in place; what is wrong with it, or None."""
    inner = row["genes"].strip()
    if inner[:1] == "(" and inner[-1:] == ")":  # a tuple as pandas writes it
        inner = inner[1:-1]
    parts = [p for p in re.split(r"[\s,]+", inner) if p]
    if not parts or not all(re.fullmatch(r"[0-9]{1,9}", p) for p in parts):
        return f"genes {row['genes'][:40]!r} are not option numbers"
    genes = tuple(int(p) for p in parts)
    if decisions is not None and (len(genes) != len(decisions) or any(g >= k for g, k in zip(genes, decisions))):
        return f"genes {genes} are not a candidate of this space ({len(decisions)} decisions of {decisions} options)"
    row["genes"] = genes
    for col, value in row.items():
        if col in ("genes", "spec"):
            continue
        try:
            number = float(value)
        except ValueError:
            return f"{col} must be a number, got {value[:40]!r}"
        if not math.isfinite(number):
            return f"{col} must be a finite number, got {value[:40]!r}"
        if col in ("step", "resolution"):
            if not (number.is_integer() and 0 <= number < 2**31) or col == "resolution" and number < 1:
                return f"{col} must be a {'positive' if col == 'resolution' else 'non-negative'} integer, got {value!r}"
            number = int(number)
        elif col.startswith("latency") and not 0 < number < math.inf:
            return f"{col} must be finite and > 0, got {value!r}"
        row[col] = number
    if space is not None:
        cand = space.candidate(genes)
        if (cand.spec, cand.resolution) != (row["spec"], row["resolution"]):
            return f"spec and resolution are not those of genes {genes} in this space (another space's table?)"
    return None


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
    latency = latency or next(c for c in df.columns if c.startswith("latency"))
    ordered = df.sort_values([latency, accuracy], ascending=[True, False])
    best = np.maximum.accumulate(ordered[accuracy].to_numpy())
    keep = np.r_[True, ordered[accuracy].to_numpy()[1:] > best[:-1]]
    return ordered[keep]


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
    start = [_random_genes(rng, sizes) for _ in range(population)]  # not fewer for a small budget: runs of
    # different budgets (and an interrupted run's resumption) then share the same first steps
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


def _decision_index(space, name: str) -> int:
    names = [n for n, _ in space.decisions()]
    if name not in names:
        raise InvalidParameterError(f"this strategy needs a {name!r} decision; the space has {names}")
    return names.index(name)


@register_strategy("tinynets")
def _tinynets(space, evaluate, rng, samples: float = 0.5, ratios: int = 8) -> None:
    """Sample ``samples`` of the budget; GP-fit resolution and depth of the accuracy-vs-MACs frontier
    against log MAC ratio; evaluate the snapped predictions (width from MACs ~ d w^2 r^2) over
    ``ratios`` MAC ratios, then climb: the unevaluated neighbours of the best so far, while budget remains."""
    gaussian_process = require("sklearn.gaussian_process", "strategy 'tinynets'")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    decisions = space.decisions()
    _, idp, ir = (_decision_index(space, n) for n in ("width", "depth", "resolution"))  # all three needed
    base = (1.0, 1.0, float(getattr(space, "base_resolution", max(decisions[ir][1]))))
    base_cand = space.candidate(_nearest(space, base))
    base_macs = _macs(base_cand.spec, base_cand.resolution)
    sizes = _sizes(space)
    evaluate([_random_genes(rng, sizes) for _ in range(max(2, int(evaluate.left * samples)))])
    seen = list(evaluate.seen)
    ratio = np.array([_macs(evaluate.seen[g]["spec"], evaluate.seen[g]["resolution"]) / base_macs for g in seen])
    acc = np.array([evaluate.metric(g, "accuracy") for g in seen])
    order = np.argsort(ratio)
    front = order[np.r_[True, acc[order][1:] > np.maximum.accumulate(acc[order])[:-1]]]  # the frontier
    x = np.log(ratio[front])[:, None]
    kernel = ConstantKernel() * RBF(length_scale=1.0) + WhiteKernel(1e-3)
    fits = {}
    for name, i, scale in (("resolution", ir, base[2]), ("depth", idp, 1.0)):
        values = np.array([decisions[i][1][seen[j][i]] for j in front], dtype=float) / scale
        gp = gaussian_process.GaussianProcessRegressor(kernel, normalize_y=True, random_state=int(rng.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # few frontier points: bounds are often hit
            fits[name] = gp.fit(x, values)
    grid = np.linspace(x.min(), x.max(), ratios)
    r = fits["resolution"].predict(grid[:, None])
    d = np.clip(fits["depth"].predict(grid[:, None]), 1e-3, None)
    w = np.sqrt(np.exp(grid) / (d * r**2))  # MACs ~ d w^2 r^2 (r relative to the base resolution)
    picks = [_nearest(space, (wi, di, ri * base[2])) for wi, di, ri in zip(w, d, r)]
    evaluate(picks)
    _climb(evaluate, sizes)


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


def _nearest(space, wdr) -> tuple[int, ...]:
    """Genes of the options nearest (in log) to (width, depth, resolution); other decisions at 0."""
    decisions = space.decisions()
    genes = [0] * len(decisions)
    for name, value in zip(("width", "depth", "resolution"), wdr):
        i = _decision_index(space, name)
        opts = np.asarray(decisions[i][1], dtype=float)
        genes[i] = int(np.argmin(np.abs(np.log(opts) - math.log(max(value, 1e-9)))))
    return tuple(genes)


def _neighbours(genes, sizes) -> list[tuple[int, ...]]:
    out = []
    for i, k in enumerate(sizes):
        for step in (-1, 1):
            if 0 <= genes[i] + step < k:
                out.append(tuple(g + step if j == i else g for j, g in enumerate(genes)))
    return out


def _macs(spec: str, resolution: int) -> float:
    return float(network_cost(spec, int(resolution))[0])


@register_strategy("autoslim")
def _autoslim(space, evaluate, rng, device: int | str = 0, start=None, criterion: str = "drop_per_latency"):
    """Greedy slimming on ``device`` (index or name among the score's latency columns) to its target:
    every channel decision (names ending in "width" or "expansion") starts at its widest option (the
    others at ``start``'s, default their last); each step evaluates every one-option narrower
    neighbour and keeps the one that loses the least accuracy per latency saved on the device
    (``criterion="drop_per_latency"``) or, as in the paper, the least accuracy (``"drop"``)."""
    check_choice(criterion, ("drop_per_latency", "drop"), "criterion")
    score = evaluate.score
    columns = getattr(score, "latency_columns", None)
    if not columns:
        raise InvalidParameterError("autoslim needs a Reward score (latency columns and targets)")
    j = device if isinstance(device, int) else next((k for k, c in enumerate(columns) if c.endswith(f":{device}")), -1)
    if not 0 <= j < len(columns):
        raise InvalidParameterError(f"device {device!r} is not among the score's devices {score.evaluator.columns}")
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
