"""Benchmark: NetAdapt against AutoSlim on channel spaces enumerable exhaustively, same start and target.

    python benches/bench_netadapt.py [--quantiles 0.1 0.3 0.5 0.7] [--budget 1000]

The space: the default ``UibSpace``'s 729 channel configurations (width and expansion of its three
stages; depths 2, 3, 3, MQA and FusedIB off, or the first stage FusedIB), from the widest (every
channel decision at its last option), on the Pixel 6 CPU and the Pixel 8 Edge TPU (int8). The target:
a latency quantile of the 729 on one device; both strategies stop at the first network under it.
Reported per case: the accuracy (labelled proxy) of each pick below the most accurate of the 729 under
the target, and the candidates each evaluated. Then NetAdapt on ``MnasSpace`` from MobileNetV2 to 70%
of its latency on each device (no exhaustive optimum there: the pick, its accuracy and evaluations).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from roofline.search import search
from roofline.search.fasteval import Evaluator
from roofline.search.objectives import Reward
from roofline.search.space import MnasSpace, UibSpace

DEVICES = ("pixel6_cpu", "pixel8_edgetpu")


def channel_configurations(space, fused: bool):
    decisions = space.decisions()
    start = tuple(1 if n.endswith("depth") else min(int(fused), len(o) - 1) if n.endswith("fused") else len(o) - 1
                  for n, o in decisions)  # fmt: skip
    channels = [i for i, (n, _) in enumerate(decisions) if n.endswith(("width", "expansion"))]
    out = []
    for combo in itertools.product(*(range(len(decisions[i][1])) for i in channels)):
        genes = list(start)
        for i, g in zip(channels, combo):
            genes[i] = g
        out.append(space.candidate(genes))
    return start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7])
    parser.add_argument("--budget", type=int, default=1000)
    args = parser.parse_args()
    space, ev = UibSpace(), Evaluator(list(DEVICES), precision="int8")
    gaps, evals = {"netadapt": [], "autoslim": []}, {"netadapt": [], "autoslim": []}
    print("fused  device           quantile  netadapt: below, evals  autoslim: below, evals")
    for fused in (False, True):
        start, cands = channel_configurations(space, fused)
        lat = ev.latency(cands)
        for j, device in enumerate(DEVICES):
            for q in args.quantiles:
                reward = Reward(ev, np.quantile(lat, q, axis=0))
                table = reward(cands)
                column, target = reward.latency_columns[j], reward.targets[j]
                best = table.accuracy[table[column] <= target].max()
                row = []
                for strategy in ("netadapt", "autoslim"):
                    df = search(space, reward, strategy=strategy, budget=args.budget, device=device, start=start)
                    pick = df.attrs["best"]
                    assert pick[column] <= target
                    gaps[strategy].append(best - pick["accuracy"])
                    evals[strategy].append(len(df))
                    row.append(f"{best - pick['accuracy']:6.3f} pt, {len(df):3d}")
                print(f"{fused!s:6} {device:16} {q:8.2f}  {row[0]:>22}  {row[1]:>22}")
    for strategy in gaps:
        g, n = np.array(gaps[strategy]), np.array(evals[strategy])
        print(f"{strategy}: below the best {g.min():.3f}-{g.max():.3f} points (median {np.median(g):.3f}); "
              f"evaluations {n.min()}-{n.max()} (median {np.median(n):.0f})")  # fmt: skip
    mnas = MnasSpace()
    base = mnas.baseline_genes()
    for device in DEVICES:
        t0 = time.perf_counter()
        reward = Reward(ev, ev.latency([mnas.candidate(base)])[0] * 0.7)
        df = search(mnas, reward, strategy="netadapt", budget=args.budget, device=device, start=base)
        pick = df.attrs["best"]
        print(f"MnasSpace, MobileNetV2 to 70% on {device}: {len(df)} evaluations, {time.perf_counter() - t0:.2f} s, "
              f"proxy top-1 {df.accuracy.iloc[0]:.2f} -> {pick['accuracy']:.2f}: {pick['spec']}")  # fmt: skip


if __name__ == "__main__":
    main()
