"""Universal networks: how far a joint search's pick is from each device's accuracy-vs-latency front.

On the full UIB space (153 million candidates), for two device sets with very different ridge points,
and seeds 0-5 (0-1 with ``--quick``): the front-distance objective (``FrontGap``: fronts from a
20,000-candidate sample of the seed, refined by local search; tolerance 5%; targets the latency of
mnv4_conv_s) and the old default, the geometric-mean MnasNet reward (same targets), each searched by
regularised evolution with a budget of 3,000. Each pick's gap to each device's REFERENCE front at its
accuracy: a separate 200,000-candidate sample (seed 1000) refined by the same local search (the
tightest front we have), and, for comparison, the raw 200,000 sample's front. Accuracy is the PROXY.

    python benches/bench_universal.py [--quick] [--plot docs/img/universal_fronts.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from roofline.search import search
from roofline.search.fasteval import Evaluator
from roofline.search.fronts import FrontGap, Fronts, _front, default_targets, estimate_fronts, front_gaps
from roofline.search.objectives import Reward
from roofline.search.space import UibSpace

DEVICE_SETS = {
    "CPU + Edge TPU": ["pixel6_cpu", "pixel8_edgetpu"],  # ridge points 31, 434 MACs/byte
    "CPU + DSP + Edge TPU": ["pixel6_cpu", "snapdragon855_hexagon", "pixel8_edgetpu"],  # 31, 102, 434
}
BUDGET, SAMPLE, REFERENCE_SAMPLE, REFERENCE_SEED, TOLERANCE = 3000, 20_000, 200_000, 1000, 0.05


def raw_fronts(ref: Fronts) -> Fronts:
    """The fronts of the reference's random sample alone (without its refinement rows)."""
    pts = ref.points.iloc[: ref.sample - ref.refined]
    fr = [_front(pts[c].to_numpy(), pts["accuracy"].to_numpy()) for c in ref.latency_columns]
    return Fronts(ref.devices, ref.latency_columns, [f[0] for f in fr], [f[1] for f in fr], len(pts), ref.seed)


def gaps(fronts: Fronts, row, columns) -> np.ndarray:
    return front_gaps(fronts, [row["accuracy"]], [[row[c] for c in columns]])[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="seeds 0-1 instead of 0-5")
    p.add_argument("--plot", help="write the first device set's fronts and seed 0's picks to this PNG")
    args = p.parse_args(argv)
    seeds = range(2 if args.quick else 6)
    space = UibSpace()
    print(f"UIB space, {space.size:,} candidates; evolution, budget {BUDGET}; objective fronts from {SAMPLE:,} "
          f"sampled (seed = search seed) + refinement; reference fronts from {REFERENCE_SAMPLE:,} sampled "
          f"(seed {REFERENCE_SEED}) + refinement; tolerance {TOLERANCE:.0%}; PROXY accuracy")  # fmt: skip
    rows = []
    for set_name, devices in DEVICE_SETS.items():
        ev = Evaluator(devices, precision="int8")
        t0 = time.perf_counter()
        ref = estimate_fronts(space, ev, sample=REFERENCE_SAMPLE, seed=REFERENCE_SEED)
        raw = raw_fronts(ref)
        targets = default_targets(ev)
        pts = ref.points
        lat = pts[ref.latency_columns].to_numpy()
        worst = front_gaps(ref, pts.accuracy, lat).max(axis=1)
        under = np.all(lat <= targets, axis=1)
        print(f"\n{set_name}: reference fronts from {ref.sample:,} priced ({ref.refined:,} by refinement) in "
              f"{time.perf_counter() - t0:.0f} s; proxy top-1 of the space's priced networks: "
              f"{pts.accuracy.min():.2f}-{pts.accuracy.max():.2f}%")  # fmt: skip
        print("  most accurate priced network under every target and within " + ", ".join(
            f"{tol:.0%}: {pts.accuracy[under & (worst <= tol)].max():.2f}%" for tol in (0.02, TOLERANCE, 0.1, 0.2)
        ) + " of every reference front")  # fmt: skip
        print("per seed: the pick's proxy top-1 and its gap to each device's reference front [raw 200k front]")
        for seed in seeds:
            t = time.perf_counter()
            fronts = estimate_fronts(space, ev, sample=SAMPLE, seed=seed)
            obj = FrontGap(ev, fronts, tolerance=TOLERANCE, targets=targets)
            df = search(space, obj, "evolution", BUDGET, seed)
            pick = df.attrs["best"]
            base = search(space, Reward(ev, targets, combine="geomean"), "evolution", BUDGET, seed).attrs["best"]
            g, b = gaps(ref, pick, obj.latency_columns), gaps(ref, base, obj.latency_columns)
            rows.append((set_name, seed, g.max(), b.max()))
            for label, row, gap in (("front", pick, g), ("geomean MnasNet", base, b)):
                raw_gap = gaps(raw, row, obj.latency_columns)
                cells = "  ".join(f"{d} {x:+.1%} [{y:+.1%}]" for d, x, y in zip(devices, gap, raw_gap))
                print(f"  seed {seed}  {label:>15}  top-1 {row['accuracy']:.2f}  {cells}  max {gap.max():+.1%}")
            print(f"  ({time.perf_counter() - t:.0f} s)")
            if args.plot and seed == 0 and set_name == next(iter(DEVICE_SETS)):
                plot_picks(args.plot, df, obj, ref, {"front-gap pick": pick, "geomean MnasNet pick": base})
        worst = max(r[2] for r in rows if r[0] == set_name)
        worst_base = max(r[3] for r in rows if r[0] == set_name)
        print(f"max over seeds and devices: front objective {worst:+.1%}, geomean MnasNet {worst_base:+.1%}")
    return 0


def plot_picks(path, df, obj, ref, picks) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from roofline import plot

    n = len(obj.latency_columns)
    fig, axes = plt.subplots(1, n, figsize=(6 * n, 4.5), layout="constrained", squeeze=False)
    for j, (ax, column) in enumerate(zip(axes[0], obj.latency_columns)):
        plot.plot_search(df, column, ax, picks=picks, front=(ref.latency[j], ref.accuracy[j]),
                         front_label=f"reference front ({ref.sample:,} priced)")  # fmt: skip
    plot.save(axes[0][0], path)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
