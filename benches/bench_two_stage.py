"""Benchmark: MobileNetV4's two-stage search against a one-stage search, same space, objective and budget.

    python benches/bench_two_stage.py [--budgets 500 1000 2000] [--seeds 8] [--objective front|reward]

The space is ``UibSpace(per_block_kernels=True)`` (the default MobileNetV4-style stages, each block with
its own start / middle depthwise kernel), on the Pixel 6 CPU and the Pixel 8 Edge TPU (int8, the paper's
low and high ridge points). The one-stage search is regularised evolution over every decision; the
two-stage search (``strategy="two_stage"``) is a regularised evolution over depths, widths, expansions,
MQA / FusedIB and resolution with every block an IB with a 3x3 depthwise (half the budget), then over the
per-block kernels of the coarse best (the other half).

Objectives: ``front`` (default): ``roofline.search.fronts.FrontGap``, the accuracy of a network within 5%
of each device's estimated accuracy-vs-latency front and under MobileNetV4-Conv-S's latency on each
device (the fronts from ``estimate_fronts`` on 20,000 samples of the same space, refined); reported: the
pick's score and its worst gap to the two fronts (its front distance). ``reward``: the MnasNet soft reward
(geometric mean over the devices, targets MobileNetV4-Conv-S's latency); the gaps are still reported
against the same fronts. The accuracy is the labelled proxy (size, not architecture quality: it cannot
reward a kernel choice for accuracy, only for latency).

For each budget: median and range over seeds of the pick's score and worst gap, the number of seeds on
which two-stage is at least as good as one-stage, and the evaluations two-stage needed to reach the
one-stage run's final score (median; "never" when it does not within the budget).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from roofline.devices import PAPER_LOW_AND_HIGH_RIDGE_DEVICES
from roofline.search import search
from roofline.search.fasteval import Evaluator
from roofline.search.fronts import FrontGap, default_targets, estimate_fronts, front_gaps
from roofline.search.objectives import Reward
from roofline.search.space import UibSpace


def summary(values, fmt: str = "{:.3f}") -> str:
    v = np.asarray(values, dtype=float)
    return f"{fmt.format(np.median(v))} [{fmt.format(v.min())}, {fmt.format(v.max())}]"


def reached(df, target: float) -> float:
    """Evaluations until the running best score first reaches ``target`` (inf: never)."""
    hit = np.flatnonzero(np.maximum.accumulate(df.score.to_numpy()) >= target - 1e-9)
    return float(hit[0] + 1) if len(hit) else np.inf


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, nargs="+", default=[500, 1000, 2000])
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--objective", choices=("front", "reward"), default="front")
    p.add_argument("--split", type=float, default=0.5, help="two-stage: the coarse stage's share of the budget")
    p.add_argument(
        "--coarse-kernels",
        nargs="+",
        default=["3,0", "0,3"],
        metavar="A,K",
        help="two-stage runs with these coarse-stage blocks (start, middle kernel); default: the "
        "strategy's default (3,0: ConvNext-like) and the paper's IB (0,3)",
    )
    args = p.parse_args(argv)

    devices = list(PAPER_LOW_AND_HIGH_RIDGE_DEVICES)
    space = UibSpace(per_block_kernels=True)
    ev = Evaluator(devices, precision="int8")
    t = time.perf_counter()
    fronts = estimate_fronts(space, ev, sample=20000, seed=0)
    print(f"space: UibSpace(per_block_kernels=True), {space.size:.3g} gene vectors; devices {devices} (int8)")
    print(f"fronts: {fronts.sample} candidates priced in {time.perf_counter() - t:.1f} s, "
          f"{[len(f) for f in fronts.latency]} front points")  # fmt: skip
    targets = default_targets(ev)
    if args.objective == "front":
        score = FrontGap(ev, fronts)
        print(f"objective: FrontGap (tolerance 5%, targets mnv4_conv_s: {np.round(targets, 4).tolist()})")
    else:
        score = Reward(ev, targets)
        print(f"objective: MnasNet soft reward, geometric mean, targets mnv4_conv_s: {np.round(targets, 4).tolist()}")
    print("accuracy: the proxy (size only)\n")

    def pick(df):
        best = df.attrs["best"]
        lat = [[best[c] for c in score.latency_columns]]
        return best["score"], float(front_gaps(fronts, [best["accuracy"]], lat).max())

    coarse = [tuple(int(x) for x in text.split(",")) for text in args.coarse_kernels]
    header = f"{'budget':>6}  {'strategy':<16} {'score: median [min, max]':<30} {'worst gap: median [min, max]':<30}"
    print(header + "  two-stage >= one-stage (score / gap)  evals to one-stage score")
    for budget in args.budgets:
        one, twos = [], {ak: [] for ak in coarse}
        for seed in range(args.seeds):
            df = search(space, score, "evolution", budget=budget, seed=seed)
            one.append((*pick(df), budget))
            for a, k in coarse:
                two = search(space, score, "two_stage", budget=budget, seed=seed, split=args.split,
                             fixed={"start_k": a, "middle_k": k})  # fmt: skip
                twos[a, k].append((*pick(two), reached(two, df.attrs["best"]["score"])))
        one = np.array(one)
        print(f"{budget:>6}  {'one-stage':<16} {summary(one[:, 0]):<30} {summary(one[:, 1], '{:+.3%}'):<30}")
        for (a, k), rows in twos.items():
            two, n = np.array(rows), args.seeds
            better, closer = int((two[:, 0] >= one[:, 0] - 1e-9).sum()), int((two[:, 1] <= one[:, 1] + 1e-9).sum())
            evals = np.median(two[:, 2])
            wins, evals = f"{better}/{n} / {closer}/{n}", "never" if np.isinf(evals) else round(evals)
            print(f"{budget:>6}  {f'two-stage a{a},k{k}':<16} {summary(two[:, 0]):<30} "
                  f"{summary(two[:, 1], '{:+.3%}'):<30}  {wins:<37} {evals}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
