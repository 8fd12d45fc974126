"""``roofline search``: a latency-aware search over a space, on one or more devices, with every output
written to a folder (results.csv as it goes, whole fsynced lines, so that ``--resume`` continues an
interrupted run; the other files replaced atomically)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from roofline import zoo
from roofline.cli.common import _console, positive_float, positive_int
from roofline.devices import PAPER_LOW_AND_HIGH_RIDGE_DEVICES
from roofline.errors import InvalidParameterError
from roofline.files import atomic_write, read_json
from roofline.search import STRATEGIES, ResultsError, append_results, pareto_front, parse_genes, read_results, search
from roofline.search.fasteval import Evaluator
from roofline.search.objectives import Reward
from roofline.search.space import ScalingSpace, UibSpace

DEFAULT_TARGET_MODEL = "mnv4_conv_s"


def parse_space(text: str):
    """``uib`` (MobileNetV4-style UIB space) or ``scaling:<zoo network>`` (width/depth/resolution)."""
    if text == "uib":
        return UibSpace()
    if text.startswith("scaling:"):
        zoo.get(text.split(":", 1)[1])  # a clear error for unknown names
        return ScalingSpace(text.split(":", 1)[1])
    raise InvalidParameterError(
        f"unknown space {text!r}; known: uib, scaling:<zoo network> (e.g. scaling:mobilenet_v2)"
    )


def resolve_targets(ev: Evaluator, target_ms, target_like: str | None) -> np.ndarray:
    """Per-device targets: ``target_ms`` (one, or one per device; absolute devices only), else the
    latency of the zoo network ``target_like`` on each device."""
    if target_ms:
        if len(target_ms) not in (1, len(ev.columns)):
            raise InvalidParameterError(
                f"give one --target-ms, or one per device ({len(ev.columns)}), not {len(target_ms)}"
            )
        relative = [c for c, r in zip(ev.columns, ev.relative) if r]
        if relative:
            raise InvalidParameterError(
                f"{', '.join(relative)} only has a ridge point (latency in MAC-equivalents, no ms): "
                "use --target-like MODEL (the latency of a zoo network on each device)"
            )
        return np.broadcast_to(np.asarray(target_ms, float), (len(ev.columns),)).copy()
    model = zoo.get(target_like or DEFAULT_TARGET_MODEL)
    return ev.latency([model.network_spec], resolution=model.resolution)[0]


def _meta(args, reward: Reward) -> dict:
    return {"space": args.space, "strategy": args.strategy, "seed": args.seed, **reward.describe()}


def _known(out: Path, meta: dict, resume: bool, space, reward: Reward) -> pd.DataFrame | None:
    """The earlier run's rows in ``out`` (``--resume``), checked against this search's settings."""
    results, saved = out / "results.csv", out / "search.json"
    if not results.exists():
        return None
    if not resume:
        raise InvalidParameterError(f"{results} exists: pass --resume to continue that search, or another --out-dir")
    if not saved.exists():
        raise ResultsError(f"cannot resume {results}: {saved.name} beside it is missing (which search wrote it?)")
    old = read_json(saved, ResultsError, f"cannot resume: {saved}")
    if not isinstance(old, dict):
        raise ResultsError(f"cannot resume: {saved} holds a JSON {type(old).__name__}, not an object")
    changed = [k for k in meta if old.get(k) != meta[k]]
    if changed:
        raise InvalidParameterError(
            f"cannot resume {results}: {', '.join(f'{k} was {old.get(k)!r}, now {meta[k]!r}' for k in changed)}"
        )
    return read_results(results, space, [c for c, _ in reward.objectives])


def _csv_rows(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["genes"] = [" ".join(map(str, g)) for g in df["genes"]]
    return df


def cmd_search(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = _console()
    space = parse_space(args.space)
    ev = Evaluator(args.device or list(PAPER_LOW_AND_HIGH_RIDGE_DEVICES), precision=args.precision)
    reward = Reward(ev, resolve_targets(ev, args.target_ms, args.target_like), combine=args.combine,
                    constraint=args.constraint)  # fmt: skip
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = _meta(args, reward)
    known = _known(out, meta, args.resume, space, reward)
    atomic_write(out / "search.json", json.dumps(meta, indent=2))
    known_genes = set() if known is None else {parse_genes(g) for g in known["genes"]}
    options = {"device": args.slim_device or ev.columns[0]} if args.strategy == "autoslim" else {}
    results = out / "results.csv"
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{args.strategy} on {args.space}", total=min(args.budget, space.size))

        def on_rows(rows, fresh):
            append_results(results, [r for r in rows if r["genes"] not in known_genes])  # whole lines, fsynced
            progress.advance(task, len(rows))

        try:
            df = search(space, reward, args.strategy, args.budget, args.seed, resume=known, on_rows=on_rows, **options)
        except KeyboardInterrupt:
            console.print(f"interrupted: {results} keeps every candidate evaluated; rerun with --resume to continue")
            return 130
    write_outputs(df, reward, out, console)
    return 0


def write_outputs(df: pd.DataFrame, reward: Reward, out: Path, console) -> None:
    """pareto.csv, search.png, sweep.png, best.onnx and a summary table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rich.table import Table

    from roofline import plot
    from roofline.analysis.sweep import sweep
    from roofline.zoo.builder import build_network

    best = pd.Series(df.attrs["best"])
    proxy = reward.accuracy_source == "proxy"
    fronts = [pareto_front(df, latency=c).assign(device=c.split(":", 1)[1]) for c in reward.latency_columns]
    pareto = _csv_rows(pd.concat(fronts).to_dict("records")).assign(accuracy_source=reward.accuracy_source)
    atomic_write(out / "pareto.csv", pareto.to_csv(index=False, lineterminator="\n"))
    fig, axes = plt.subplots(1, len(fronts), figsize=(6 * len(fronts), 4.5), layout="constrained", squeeze=False)
    for ax, column in zip(axes[0], reward.latency_columns):
        plot.plot_search(df, column, ax, picks={"best": best}, accuracy_source=reward.accuracy_source)
    plot.save(axes[0][0], out / "search.png")
    model = build_network(best["spec"], int(best["resolution"]), name="search_best")
    for key, value in {"roofline.spec": best["spec"], "roofline.resolution": str(int(best["resolution"])),
                       "roofline.accuracy_source": reward.describe()["accuracy_source"]}.items():  # fmt: skip
        model.metadata_props.add(key=key, value=value)
    atomic_write(out / "best.onnx", model.SerializeToString())
    zoo_names = [n for n in zoo.list_models() if n.startswith("mnv4")]
    swept = sweep({"search best": model, **{n: n for n in zoo_names}}, reference="search best")
    plot.save(plot.plot_sweep(swept), out / "sweep.png")

    table = Table(title=f"best of {len(df)} candidates ({df.attrs['strategy']}, seed {df.attrs['seed']})")
    for col in ("device", "latency", "target", "latency / target", "Pareto front size"):
        table.add_column(col, justify="right")
    for column, target, front in zip(reward.latency_columns, reward.targets, fronts):
        unit = "ms" if column.startswith("latency_ms") else "MAC-eq"
        table.add_row(column.split(":", 1)[1], f"{best[column]:.4g} {unit}", f"{target:.4g} {unit}",
                      f"{best[column] / target:.2f}", str(len(front)))  # fmt: skip
    console.print(table)
    over = [f"{c.split(':', 1)[1]} ({best[c] / t:.2f}x)" for c, t in zip(reward.latency_columns, reward.targets)
            if best[c] > t]  # fmt: skip
    if over:
        console.print(f"over target on {', '.join(over)}: the soft reward trades latency for accuracy, or "
                      "the space cannot reach it (try --constraint hard or another space)", style="yellow")  # fmt: skip
    label = "PROXY top-1 (fit to log MACs and log params, not a trained accuracy)" if proxy else "top-1"
    console.print(
        f"{label}: {best['accuracy']:.2f}%   reward {best['score']:.3f}   resolution {int(best['resolution'])}"
    )
    console.print(f"spec: {best['spec']}")
    console.print(f"wrote {out}/results.csv, pareto.csv, search.png, sweep.png, best.onnx, search.json")


def add_commands(sub) -> None:
    from roofline.dtypes import PRECISION_BYTES

    s = sub.add_parser("search", help="latency-aware search (MnasNet reward) over a UIB or scaling space")
    s.add_argument("--space", default="uib", help="uib (default) or scaling:<zoo network>, e.g. scaling:mobilenet_v2")
    s.add_argument("--device", action="append", metavar="NAME",
                   help="device name or spec .yaml; repeatable (default "
                        f"{' and '.join(PAPER_LOW_AND_HIGH_RIDGE_DEVICES)})")  # fmt: skip
    s.add_argument("--target-ms", type=positive_float, nargs="+", metavar="MS",
                   help="latency target(s): one for all devices or one per device (absolute devices only)")  # fmt: skip
    s.add_argument("--target-like", metavar="MODEL",
                   help=f"target: a zoo network's latency on each device (default {DEFAULT_TARGET_MODEL})")  # fmt: skip
    s.add_argument("--strategy", choices=sorted(STRATEGIES), default="evolution", help="default evolution")
    s.add_argument("--budget", type=positive_int, default=1000, help="candidates to evaluate (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="the same seed repeats the same search (default 0)")
    s.add_argument("--combine", choices=("geomean", "worst"), default="geomean",
                   help="reward over devices: geometric mean (default) or the worst device")  # fmt: skip
    s.add_argument("--constraint", choices=("soft", "hard"), default="soft", help="MnasNet soft (default) or hard")
    s.add_argument(
        "--precision", choices=sorted(PRECISION_BYTES), default="int8", help="weights and activations (default int8)"
    )
    s.add_argument("--slim-device", help="autoslim: the device whose target slimming meets (default: the first)")
    s.add_argument("--out-dir", default="roofline-search", help="where results go (default ./roofline-search)")
    s.add_argument("--resume", action="store_true", help="continue the search whose results.csv is in --out-dir")
    s.set_defaults(func=cmd_search)
