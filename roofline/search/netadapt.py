"""NetAdapt (Yang et al., ECCV 2018) as a search strategy, registered as ``netadapt``.

From a given network, each iteration must cut the latency on one device by a step of a schedule
(geometric: ``step`` of the start's latency, times ``decay`` per iteration, never below the target).
For every channel decision that can still shrink (names ending in ``width`` or ``expansion``, whose
options are ordered narrow to wide, and that matter for the network: ``space.active``), the proposal is
the smallest reduction of that one decision that meets the iteration's latency: its next narrower
option, then the one after, until the latency is met (proposals are evaluated in rounds, one option per
decision, so evaluation stays batched). Of the proposals the most accurate is kept (the score's
``accuracy`` column; NetAdapt's short-term fine-tune is the accuracy function's business), and the
iterations repeat until the latency target holds. When no single decision meets a step (a discrete
space's options may be too coarse), the most accurate proposal that lowered the latency at all is kept;
when none lowers it, the target is out of reach and the strategy stops. NetAdapt's long-term fine-tune
of the final network is training, outside the search. It returns the adapted network: the first under
the target (or the smallest reached).
"""

from __future__ import annotations

from roofline.errors import InvalidParameterError
from roofline.search.strategies import device_column, register_strategy

__all__ = ["CHANNEL_KINDS", "netadapt"]

CHANNEL_KINDS = ("width", "expansion")  # decisions NetAdapt shrinks (ordered options, narrow first)


@register_strategy("netadapt")
def netadapt(space, evaluate, rng, device: int | str = 0, target: float | None = None, fraction: float = 0.5,
             start=None, step: float = 0.05, decay: float = 0.9, trace: list | None = None):  # fmt: skip
    """NetAdapt on ``device`` (index or name among the score's latency columns) from ``start`` (genes;
    default the space's ``baseline_genes()`` if it has them, MobileNetV2 in ``MnasSpace``, else its widest:
    every decision at its last option) down to ``target`` (in the column's
    unit, ms or MAC-equivalents; default the score's target for the device, or ``fraction`` of the start's
    latency when the score has none or an infinite one). Iteration ``i`` asks for a latency cut of
    ``step * decay**i`` of the start's latency (at least down to the target, never below it). ``trace``: a
    list to which every kept network is appended as a dict (iteration, genes, latency, accuracy, wanted)."""
    if not 0 < step <= 1 or not 0 < decay <= 1 or not 0 < fraction < 1:
        raise InvalidParameterError(f"need 0 < step <= 1, 0 < decay <= 1 and 0 < fraction < 1, got {step}, {decay}, "
                                    f"{fraction}")  # fmt: skip
    score = evaluate.score
    j, columns = device_column(score, device, "netadapt")
    column = columns[j]
    decisions = space.decisions()
    channels = [i for i, (name, _) in enumerate(decisions) if name.split(".")[-1] in CHANNEL_KINDS]
    if not channels:
        raise InvalidParameterError("netadapt needs channel decisions (width or expansion) in the space")
    if start is None:  # the space's own network (MnasSpace: MobileNetV2), else its widest
        start = space.baseline_genes() if hasattr(space, "baseline_genes") else [len(o) - 1 for _, o in decisions]
    genes = tuple(int(g) for g in start)
    evaluate([genes])
    if genes not in evaluate.seen:
        return None
    first = evaluate.metric(genes, column)
    if target is None:
        targets = getattr(score, "targets", None)
        target = float(targets[j]) if targets is not None and float(targets[j]) < float("inf") else fraction * first
    target = float(target)
    steps = 0
    if trace is not None:
        trace.append({"iteration": 0, "genes": genes, "latency": first,
                      "accuracy": evaluate.metric(genes, "accuracy"), "wanted": first})  # fmt: skip
    while evaluate.metric(genes, column) > target and evaluate.left > 0:
        latency = evaluate.metric(genes, column)
        wanted = max(target, latency - step * decay**steps * first)
        steps += 1
        met, lowered = _proposals(space, evaluate, genes, channels, column, wanted)
        pool = met or lowered
        if not pool:
            break  # no channel decision lowers the latency: the target is out of reach
        genes = max(pool, key=lambda g: evaluate.metric(g, "accuracy"))  # ties: the first proposed
        if trace is not None:
            trace.append({"iteration": steps, "genes": genes, "latency": evaluate.metric(genes, column),
                          "accuracy": evaluate.metric(genes, "accuracy"), "wanted": wanted})  # fmt: skip
    return genes


def _proposals(space, evaluate, genes, channels, column, wanted) -> tuple[list, list]:
    """Per channel decision, its smallest reduction with latency <= ``wanted`` (the ``met`` proposals),
    and, for decisions none of whose reductions meet it, the narrowest one that lowered the latency at
    all (``lowered``). Narrower options are tried in rounds, one per still-searching decision."""
    latency = evaluate.metric(genes, column)
    free = space.active(genes, channels) if hasattr(space, "active") else channels
    option = {i: genes[i] for i in free if genes[i] > 0}
    met, lowered = [], {}
    while option and evaluate.left > 0:
        option = {i: o - 1 for i, o in option.items()}
        batch = {i: tuple(o if k == i else g for k, g in enumerate(genes)) for i, o in option.items()}
        evaluate(list(batch.values()))
        for i, g in batch.items():
            if g not in evaluate.seen:
                continue
            lat = evaluate.metric(g, column)
            if lat <= wanted:
                met.append(g)
                option[i] = 0  # done: its smallest reduction that meets the step
            elif lat < latency:
                lowered[i] = g
        option = {i: o for i, o in option.items() if o > 0}
    done = {next(i for i in range(len(g)) if g[i] != genes[i]) for g in met}
    return met, [g for i, g in lowered.items() if i not in done]
