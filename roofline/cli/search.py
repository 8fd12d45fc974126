"""``roofline search``: a latency-aware search over a space, on one or more devices, with every output
written to a folder (results.csv as it goes, whole fsynced lines, so that ``--resume`` continues an
interrupted run; the other files replaced atomically)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from roofline import zoo
from roofline.cli.common import _console, nonnegative_float, positive_float, positive_int
from roofline.devices import PAPER_LOW_AND_HIGH_RIDGE_DEVICES
from roofline.errors import InvalidParameterError
from roofline.files import atomic_write, read_json
from roofline.search import STRATEGIES, ResultsError, append_results, pareto_front, parse_genes, read_results, search
from roofline.search.fasteval import Evaluator
from roofline.search.fronts import DEFAULT_TARGET_MODEL, FrontGap, default_targets, estimate_fronts
from roofline.search.objectives import Reward, load_accuracy
from roofline.search.space import MnasSpace, ScalingSpace, UibSpace


def parse_space(text: str):
    """``uib`` (MobileNetV4-style UIB space), ``uib-per-block`` (each block its own depthwise kernels, the
    space of the two-stage search's fine stage), ``mnas`` (MnasNet's factorised hierarchical space around
    MobileNetV2's seven blocks) or ``scaling:<zoo network>`` (width/depth/resolution)."""
    if text == "mnas":
        return MnasSpace()
    if text in ("uib", "uib-per-block"):
        return UibSpace(per_block_kernels=text == "uib-per-block")
    if text.startswith("scaling:"):
        zoo.get(text.split(":", 1)[1])  # a clear error for unknown names
        return ScalingSpace(text.split(":", 1)[1])
    raise InvalidParameterError(
        f"unknown space {text!r}; known: uib, uib-per-block, mnas, scaling:<zoo network> (e.g. scaling:mobilenet_v2)"
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
    return default_targets(ev, target_like or DEFAULT_TARGET_MODEL)


def _meta(args, reward) -> dict:
    return {"space": args.space, "strategy": args.strategy, "seed": args.seed, **reward.describe()}


def make_objective(args, space, ev: Evaluator, console=None):
    """``--objective front`` (default with several devices): a ``FrontGap`` on fronts estimated from
    ``--front-sample`` candidates; ``mnasnet`` (default with one device): a ``Reward``."""
    accuracy = load_accuracy(args.accuracy) if args.accuracy else None
    targets = resolve_targets(ev, args.target_ms, args.target_like)
    objective = args.objective or ("front" if len(ev.columns) > 1 else "mnasnet")
    if objective == "mnasnet":
        return Reward(ev, targets, accuracy=accuracy, combine=args.combine, constraint=args.constraint)
    if console is not None:
        n = min(args.front_sample, space.size)
        console.print(f"estimating each device's front from {n:,} candidates (then refined) ...")
    fronts = estimate_fronts(space, ev, accuracy, sample=args.front_sample, seed=args.seed)
    return FrontGap(ev, fronts, accuracy=accuracy, tolerance=args.tolerance, targets=targets)


def _known(out: Path, meta: dict, resume: bool, space, reward) -> pd.DataFrame | None:
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
    reward = make_objective(args, space, ev, console)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = _meta(args, reward)
    if args.storage or args.workers:
        return _distributed(args, space, reward, out, meta, console)
    options = {"device": args.slim_device or ev.columns[0]} if args.strategy in ("autoslim", "netadapt") else {}
    if args.start:
        options["start"] = _start(args, space)
        meta["start"] = " ".join(map(str, options["start"]))  # a resumed run starts from the same network
    known = _known(out, meta, args.resume, space, reward)
    atomic_write(out / "search.json", json.dumps(meta, indent=2))
    known_genes = set() if known is None else {parse_genes(g) for g in known["genes"]}
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


def _start(args, space) -> tuple[int, ...]:
    """``--start DIR``: the highest-score candidate of the search whose results.csv is in DIR."""
    if args.strategy not in ("autoslim", "netadapt"):
        raise InvalidParameterError(f"--start is for --strategy netadapt or autoslim, not {args.strategy!r}")
    path = Path(args.start) / "results.csv"
    if not path.is_file():
        raise InvalidParameterError(f"--start {args.start}: no results.csv there (give an earlier search's --out-dir)")
    earlier = read_results(path, space)
    if earlier.empty:
        raise InvalidParameterError(f"--start {args.start}: {path} holds no candidate")
    return parse_genes(earlier.loc[pd.to_numeric(earlier["score"]).idxmax(), "genes"])


def _distributed(args, space, reward, out: Path, meta: dict, console) -> int:
    """``--storage``/``--workers``: trials in an Optuna storage (``roofline.search.distributed``); the same
    command on every machine of a cluster; rerunning it resumes. results.csv is rewritten from the storage."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from roofline.search.distributed import default_storage, distributed_search, safe_url

    saved = read_json(out / "search.json", ResultsError) if (out / "search.json").exists() else {}
    if (out / "results.csv").exists() and "study" not in saved:
        raise InvalidParameterError(f"{out} holds a search without --storage: use another --out-dir")
    storage = args.storage or default_storage(out)
    settings = {k: v for k, v in meta.items() if k not in ("strategy", "seed")}  # a study's seed differs by worker
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{args.sampler} trials in {safe_url(storage)}", total=min(args.budget, space.size))
        try:
            df = distributed_search(space, reward, storage, args.budget, workers=args.workers or 1, study=args.study,
                                    sampler=args.sampler, seed=args.seed, settings=settings,
                                    on_progress=lambda done, total: progress.update(task, completed=done))  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"interrupted: {safe_url(storage)} keeps every trial; rerun the same command to continue")
            return 130
    if df.empty:
        raise InvalidParameterError(f"study {args.study!r} in {safe_url(storage)} has no evaluated candidate")
    meta = {**meta, "strategy": df.attrs["strategy"], "storage": safe_url(storage), "study": args.study}
    atomic_write(out / "search.json", json.dumps(meta, indent=2))
    atomic_write(out / "results.csv", _csv_rows(df.to_dict("records")).to_csv(index=False, lineterminator="\n"))
    write_outputs(df, reward, out, console)
    return 0


def write_outputs(df: pd.DataFrame, reward, out: Path, console) -> None:
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
    estimated = getattr(reward, "fronts", None)
    for j, (ax, column) in enumerate(zip(axes[0], reward.latency_columns)):
        front = None if estimated is None else (estimated.latency[j], estimated.accuracy[j])
        label = None if estimated is None else f"front of {estimated.sample:,} priced"
        plot.plot_search(df, column, ax, picks={"best": best}, accuracy_source=reward.accuracy_source, front=front,
                         front_label=label)  # fmt: skip
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
    gaps = list(getattr(reward, "gap_columns", []))
    for col in ("device", "latency", "target", "latency / target", *(["gap to front"] if gaps else []),
                "Pareto front size"):  # fmt: skip
        table.add_column(col, justify="right")
    for j, (column, target, front) in enumerate(zip(reward.latency_columns, reward.targets, fronts)):
        unit = "ms" if column.startswith("latency_ms") else "MAC-eq"
        gap = [f"{best[gaps[j]]:+.1%}"] if gaps else []
        table.add_row(column.split(":", 1)[1], f"{best[column]:.4g} {unit}", f"{target:.4g} {unit}",
                      f"{best[column] / target:.2f}", *gap, str(len(front)))  # fmt: skip
    console.print(table)
    over = [f"{c.split(':', 1)[1]} ({best[c] / t:.2f}x)" for c, t in zip(reward.latency_columns, reward.targets)
            if best[c] > t]  # fmt: skip
    if over and not gaps:
        console.print(f"over target on {', '.join(over)}: the soft reward trades latency for accuracy, or "
                      "the space cannot reach it (try --constraint hard or another space)", style="yellow")  # fmt: skip
    label = "PROXY top-1 (fit to log MACs and log params, not a trained accuracy)" if proxy else "top-1"
    if gaps:
        if over or best["worst_gap"] > reward.tolerance:
            console.print(f"no candidate found within {reward.tolerance:.0%} of every front and under every target; "
                          f"the pick is the least violating (over target: {', '.join(over) or 'none'})",
                          style="yellow")  # fmt: skip
        console.print(f"worst gap to a device's front {best['worst_gap']:+.1%} (tolerance {reward.tolerance:.0%}; "
                      f"fronts estimated from {reward.fronts.sample:,} candidates priced)")  # fmt: skip
    kind = "score (accuracy - penalty)" if gaps else "reward"
    console.print(
        f"{label}: {best['accuracy']:.2f}%   {kind} {best['score']:.3f}   resolution {int(best['resolution'])}"
    )
    console.print(f"spec: {best['spec']}")
    console.print(f"wrote {out}/results.csv, pareto.csv, search.png, sweep.png, best.onnx, search.json")


def add_commands(sub) -> None:
    from roofline.dtypes import PRECISION_BYTES

    s = sub.add_parser("search", help="latency-aware search (front distance or MnasNet reward) over a space")
    s.add_argument(
        "--space",
        default="uib",
        help="uib (default), uib-per-block (kernels per block: --strategy two_stage), mnas (MnasNet's "
        "space) or scaling:<zoo network>, e.g. scaling:mobilenet_v2",
    )
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
    s.add_argument("--objective", choices=("front", "mnasnet"),
                   help="front: the most accurate network within --tolerance of every device's front and under "
                        "every target (default with several devices); mnasnet: the MnasNet reward (default "
                        "with one device)")  # fmt: skip
    s.add_argument("--front-sample", type=positive_int, default=20000, metavar="N",
                   help="front objective: candidates sampled to estimate each device's front (default 20000; "
                        "then refined by local search)")  # fmt: skip
    s.add_argument("--tolerance", type=nonnegative_float, default=0.05,
                   help="front objective: allowed relative gap to each device's front (default 0.05)")  # fmt: skip
    s.add_argument("--accuracy", metavar="MODULE:FUNCTION|FILE.csv",
                   help="your top-1: a Python callable (spec, resolution) -> %% or a CSV with columns "
                        "spec,resolution,top1 (default: the labelled PROXY)")  # fmt: skip
    s.add_argument("--combine", choices=("geomean", "worst"), default="geomean",
                   help="mnasnet objective over devices: geometric mean (default) or the worst device")  # fmt: skip
    s.add_argument("--constraint", choices=("soft", "hard"), default="soft", help="MnasNet soft (default) or hard")
    s.add_argument(
        "--precision", choices=sorted(PRECISION_BYTES), default="int8", help="weights and activations (default int8)"
    )
    s.add_argument("--slim-device", help="autoslim, netadapt: the device whose target they meet (default: the first)")
    s.add_argument("--start", metavar="DIR",
                   help="netadapt, autoslim: start from the best candidate of an earlier search (DIR: its "
                        "--out-dir, same --space), e.g. a MnasNet search's pick (default: the space's)")  # fmt: skip
    s.add_argument("--out-dir", default="roofline-search", help="where results go (default ./roofline-search)")
    s.add_argument("--resume", action="store_true", help="continue the search whose results.csv is in --out-dir")
    s.add_argument("--storage", metavar="URL",
                   help="distributed trials in an Optuna storage: sqlite:///FILE.db (one machine) or a PostgreSQL/"
                        "MySQL URL (a cluster: the same command on every machine); rerun to resume "
                        "(default with --workers: sqlite in --out-dir)")  # fmt: skip
    s.add_argument("--workers", type=positive_int, metavar="N", help="distributed: local worker processes")
    s.add_argument("--study", default="roofline", help="distributed: the study's name in the storage")
    s.add_argument("--sampler", choices=("tpe", "nsga2"), default="tpe",
                   help="distributed: Optuna's TPE on the score (default) or NSGA-II on its objectives")  # fmt: skip
    s.set_defaults(func=cmd_search)
