"""``roofline profile``, ``lut``, ``calibrate`` and ``validate``: measuring on this machine (thin wrappers
over ``roofline.profilers``)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from roofline.cli.common import (
    DEFAULT_OUT,
    _console,
    _plt,
    count_int,
    figure_path,
    positive_float,
    positive_int,
    report_unknown_arg,
)
from roofline.errors import InvalidParameterError

DEFAULT_LUT = f"{DEFAULT_OUT}/host_lut.csv"
# share of noisy LUT rows above which the machine itself is reported busy
NOISY_SHARE = 0.3  # single kernels jitter: about a fifth of the rows spread > 25% on a quiet machine


def _runner(args):
    """The host runner named by ``--runtime`` (default onnxruntime), given the settings it takes."""
    from roofline.profilers import get_runner, runner_options

    name = getattr(args, "runtime", "onnxruntime")
    offered = {"threads": args.threads, "xnnpack": not getattr(args, "no_xnnpack", False)}
    return get_runner(name, **runner_options(name, **offered))


def _models(names: list[str]) -> dict:
    """Models by the name to show for them: zoo names, model files."""
    from roofline.ir.load import resolve_model

    return {label: model for model, label in map(resolve_model, names)}


def _host_spec(args):
    from roofline.devices import load_device
    from roofline.profilers.host import profile_host

    if getattr(args, "spec", None):
        return load_device(args.spec)
    spec, _ = profile_host(_runner(args))
    return spec


def cmd_profile(args) -> int:
    if args.devices or args.ray or args.ray_address or args.cooldown or len(args.adb or []) + len(args.usb or []) > 1:
        return cmd_profile_farm(args)
    if args.adb or args.usb:
        return cmd_profile_device(args)
    if args.targets != ["host"]:
        raise InvalidParameterError("profile: give `host`, or a phone with --adb HOST:PORT / --usb SERIAL and models")
    from roofline.devices import write_spec
    from roofline.profilers.host import profile_host

    spec, rows = profile_host(_runner(args), name=Path(args.output).stem)
    table = Table(title=f"host micro-benchmarks ({args.threads} thread(s))")
    for col in ("benchmark", "measures", "median ms", "cv", "GMAC/s", "GB/s"):
        table.add_column(col, justify="left" if col in ("benchmark", "measures") else "right")
    for r in rows:
        cv = f"{r['cv']:.3f}" + (" noisy" if r["noisy"] else "")
        gbps = f"{r['bytes_per_s'] / 1e9:.2f}" if r["bytes_per_s"] == r["bytes_per_s"] else "-"  # NaN: not measured
        table.add_row(r["benchmark"], r["measures"], f"{r['median_ms']:.2f}", cv, f"{r['macs_per_s'] / 1e9:.2f}", gbps)
    console = _console()
    console.print(table)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_spec(spec, args.output)
    for p in spec.precisions:
        console.print(f"{p}: peak {spec.peak(p) / 1e9:.2f} GMAC/s, bandwidth {spec.bandwidth_bytes_per_s / 1e9:.2f} "
                      f"GB/s, ridge {spec.ridge(p):.2f} MACs/byte")  # fmt: skip
    console.print(f"spec -> {args.output}")
    return 0


def _kernel_keys(args, models: dict, style: str) -> dict[str, str]:
    from roofline.profilers.kernels import kernels_of, sample_kernels

    keys: dict[str, str] = {k: "sample" for k in sample_kernels(args.sample, precision=args.precision)}
    for model in models.values():
        keys.update(kernels_of(model, precision=args.precision, style=style))
    return keys


def cmd_profile_device(args) -> int:
    """A phone's LUT: the structured kernels of models, the zoo or a sample, as TFLite, on the device."""
    from roofline import zoo
    from roofline.profilers import get_runner
    from roofline.profilers.adb import safe_name
    from roofline.profilers.build import build_lut

    names = [] if args.targets == ["host"] else args.targets  # "host" is only the default target
    models = _models(names or (zoo.list_models() if args.zoo else []))
    if not models and not args.sample:
        raise InvalidParameterError("profile --adb/--usb needs MODEL..., --zoo or --sample N")
    runner = get_runner("adb", address=(args.adb or [None])[0], serial=(args.usb or [None])[0],
                        benchmark_model=args.benchmark_model,
                        threads=args.threads, affinity=args.affinity, delegate=args.delegate,
                        timeout_s=args.timeout)  # fmt: skip
    console = _console()
    try:
        fp = runner.fingerprint()
        console.print(f"device {runner.device.name}: {fp['device_model']} ({fp['soc']}), Android {fp['android']}, "
                      f"{fp['cpu_count']} cores {fp['cpu_max_freqs_mhz']} MHz, governor {fp['governor']}")  # fmt: skip
        keys = _kernel_keys(args, models, "structured")
        lut_path = args.lut or f"{DEFAULT_OUT}/{safe_name(fp['serial'])}_{args.precision}_lut.csv"
        lut = build_lut(keys, lut_path, runner=runner, min_repeats=args.runs, warmup=args.warmup,
                        max_seconds=args.seconds)  # fmt: skip
    finally:
        runner.close()
    table = lut.table()
    console.print(f"{len(table)} kernels in {lut_path} ({len(keys)} asked for); {lut.drift.report()}")
    console.print(f"next: roofline calibrate {lut_path}")
    return 0


def cmd_profile_farm(args) -> int:
    """Several phones at once (``roofline.profilers.farm``): one LUT per group of identical phones."""
    from rich.live import Live

    from roofline import zoo
    from roofline.profilers.farm import profile_farm
    from roofline.profilers.farm_phones import Cooldown, Phone, load_phones

    if args.lut:
        raise InvalidParameterError("--lut names one phone's table: with several phones use --lut-dir")
    names = [] if args.targets == ["host"] else args.targets
    models = _models(names or (zoo.list_models() if args.zoo else []))
    if not models and not args.sample:
        raise InvalidParameterError("profile with phones needs MODEL..., --zoo or --sample N")
    cooldown = Cooldown(args.cooldown, args.cooldown_max_s, min(5.0, args.cooldown_max_s or 5.0))
    settings = {"benchmark_model": args.benchmark_model, "affinity": args.affinity, "delegate": args.delegate,
                "threads": args.threads, "cooldown": cooldown}  # fmt: skip
    phones = [Phone(address=a, **settings) for a in args.adb or []] + [Phone(usb=u, **settings) for u in args.usb or []]
    phones += load_phones(args.devices, cooldown) if args.devices else []
    if not phones:
        raise InvalidParameterError("--cooldown, --ray and --ray-address are for phones: add --adb, --usb or --devices")
    keys = _kernel_keys(args, models, "structured")
    engine = "ray" if args.ray or args.ray_address else "threads"
    console = _console()
    console.print(f"{len(keys)} kernels on {len(phones)} phone(s), {engine}; LUTs in {args.lut_dir}")
    options = {"min_repeats": args.runs, "warmup": args.warmup, "max_seconds": args.seconds}
    with Live(console=console, transient=True, refresh_per_second=2) as live:
        report = profile_farm(phones, keys, args.lut_dir, args.precision, engine, args.ray_address, options,
                              timeout_s=args.timeout, on_update=lambda r: live.update(_farm_table(r)))  # fmt: skip
    console.print(_farm_table(report))
    for group, lut in report.luts.items():
        left = report.left.get(group, 0)
        console.print(f"{group}: {len(lut.table())} kernels in {lut.path}" + (f", {left} left" if left else ""))
    for key, why in report.skipped.items():
        console.print(f"skipped {key}: {why}", style="yellow")
    unfinished = sum(report.left.values()) or not report.luts
    if unfinished:
        console.print("not every kernel measured: run the same command again to resume", style="yellow")
    return 1 if unfinished else 0


def _farm_table(report) -> Table:
    table = Table(title="phones")
    for col in ("phone", "serial", "LUT", "done", "queued", "temp C", "hot rows", "failures", "state"):
        table.add_column(
            col, justify="right" if col in ("done", "queued", "temp C", "hot rows", "failures") else "left"
        )
    for s in report.phones:
        temp = "-" if s.temperature_c is None else f"{s.temperature_c:.1f}"
        table.add_row(s.phone.name, s.serial or "-", s.group or "-", str(s.done), str(report.left.get(s.group, 0)),
                      temp, str(s.hot_rows), str(s.failures), s.reason if s.state == "aside" else s.state)  # fmt: skip
    return table


def cmd_lut(args) -> int:
    from roofline import zoo
    from roofline.profilers import RUNNERS, runner_names
    from roofline.profilers.build import build_lut

    tflite = RUNNERS[args.runtime].model_format == "tflite"  # kernels written as TFLite, timed whole
    if args.precision == "int8" and not tflite:
        raise InvalidParameterError(f"int8 kernels run on TFLite runners only (add --runtime "
                                    f"{' or '.join(runner_names('host', 'tflite'))})")  # fmt: skip
    models = _models(args.models or (zoo.list_models() if args.zoo else []))
    if not models and not args.sample:
        raise InvalidParameterError("lut build needs MODEL..., --zoo or --sample N")
    keys = _kernel_keys(args, models, "structured" if tflite else args.style)
    options = {"runs": args.runs, "warmup": args.warmup}
    if tflite:  # whole single-layer TFLite models
        options = {"min_repeats": args.runs, "warmup": args.warmup, "max_seconds": 2.0}
    lut = build_lut(keys, args.lut, runner=_runner(args), **options)
    table = lut.table()
    noisy = int(table["noisy"].sum())
    console = _console()
    console.print(f"{len(table)} kernels in {args.lut} ({len(keys)} asked for by {len(models)} model(s)); "
                  f"median cv {table['cv'].median():.3f}, {noisy} noisy row(s)")  # fmt: skip
    if lut.drift is not None and len(lut.drift.medians_ms) > 1:
        console.print(lut.drift.report())
    if noisy > NOISY_SHARE * len(table):
        console.print(f"warning: {noisy / len(table):.0%} of the rows spread more than the noise threshold: "
                      "the machine is busy; those rows are flagged (column noisy): rebuild them quiet")  # fmt: skip
    return 0


def cmd_calibrate(args) -> int:
    from roofline.devices import write_spec
    from roofline.profilers.calibrate import calibrate
    from roofline.profilers.lut import open_lut

    spec = calibrate(open_lut(args.lut), name=Path(args.output).stem)
    table = Table(title=f"calibration of {args.lut}")
    for col in ("kind", "kernels", "GMAC/s", "GB/s", "overhead us", "median |error|"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for kind, fit in spec.calibration.items():  # "weights" (measured streaming) has no rows or error
        peak, bw, err = fit.get("peak_macs_per_s"), fit.get("bandwidth_bytes_per_s"), fit.get("median_abs_error")
        table.add_row(kind, str(fit.get("rows", "-")), f"{peak / 1e9:.2f}" if peak else "-",
                      f"{bw / 1e9:.2f}" if bw else "-", f"{fit.get('overhead_s', 0.0) * 1e6:.1f}",
                      f"{err:.1%}" if err is not None else "-")  # fmt: skip
    console = _console()
    console.print(table)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_spec(spec, args.output)
    console.print(f"fitted spec -> {args.output}")
    return 0


def cmd_fit(args) -> int:
    from roofline.devices import write_spec
    from roofline.devices.fit import fit

    with open(args.measurements, encoding="utf-8", errors="replace") as f:
        header = f.readline()
    if header.startswith("key,"):  # a kernel LUT (roofline lut build / profile --adb): calibrate it
        args.lut = args.measurements
        return cmd_calibrate(args)
    out = Path(args.output)
    result = fit(args.measurements, args.precision, base=args.base, name=out.stem, kind=args.kind, fusion=args.fusion)
    table = Table(title=f"{args.measurements}: measured vs predicted when left out ({result.cv['folds']})")
    for col in ("model", "measured ms", "predicted ms", "held out ms", "held-out error"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in result.table.itertuples():
        label = Path(r.model).name if isinstance(r.model, str) else str(r.model)
        table.add_row(label, f"{r.measured_ms:.3g}", f"{r.predicted_ms:.3g}", f"{r.cv_predicted_ms:.3g}",
                      f"{r.cv_error:+.1%}")  # fmt: skip
    console = _console()
    console.print(table)
    console.print(result.summary())
    out.parent.mkdir(parents=True, exist_ok=True)
    write_spec(result.spec, out)
    console.print(f"fitted spec -> {out} (roofline predict MODEL --device {out})")
    return 0


def cmd_validate(args) -> int:
    from roofline.profilers.validate import PREDICTORS, summarize_errors, validate

    if args.device != "host":
        raise InvalidParameterError(f"validate --device {args.device!r}: only 'host' (this machine) can be measured")
    runner = _runner(args)
    df = validate(_models(args.models), args.lut, _host_spec(args), runner=runner,
                  kernel_options={"runs": args.runs, "warmup": args.warmup},
                  on_unknown="report" if args.report_unknown else "raise")  # fmt: skip
    table = Table(title=f"predicted vs measured on this machine ({args.threads} thread(s))")
    for col in ("model", "measured ms", "cv", *(f"{p} ms (err)" for p in PREDICTORS), "LUT share"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in df.itertuples():
        cells = [f"{getattr(r, f'{p}_ms'):.2f} ({getattr(r, f'{p}_error'):+.1%})" for p in PREDICTORS]
        table.add_row(r.model, f"{r.measured_ms:.2f}", f"{r.cv:.3f}" + (" noisy" if r.noisy else ""), *cells,
                      f"{r.lut_coverage:.0%}")  # fmt: skip
    console = _console()
    console.print(table)
    summary = summarize_errors(df)
    console.print(summary.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    console.print(df.attrs["drift"].report())
    if df["noisy"].any():
        console.print(f"warning: {int(df['noisy'].sum())} measurement(s) spread more than the noise threshold "
                      "((p90 - p10) / median > 0.25): the machine was busy; rerun on a quiet machine")  # fmt: skip
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "validate.csv", index=False)
    plot = _plt()
    fig = plot.plot_validation(df)
    path = args.output or str(out / "validate.png")
    plot.save(fig, path)
    console.print(f"table -> {out / 'validate.csv'}, scatter plot -> {path}")
    return 0


def add_commands(sub) -> None:
    from roofline.profilers import runner_names

    def runner_args(sp):
        sp.add_argument("--threads", type=positive_int, default=1, help="intra-op threads (default 1)")

    def kernel_args(sp):
        sp.add_argument("--lut", default=DEFAULT_LUT, help=f"the LUT (CSV, default {DEFAULT_LUT}), resumed")
        sp.add_argument("--runs", type=positive_int, default=30, help="timed runs per kernel (default 30)")
        sp.add_argument("--warmup", type=count_int, default=10, help="warm-up runs per kernel (default 10)")

    p = sub.add_parser("profile", help="host: this machine's roofline (a spec); --adb/--usb: a phone's kernel LUT")
    p.add_argument("targets", nargs="*", default=["host"], help="`host`, or with --adb/--usb: models")
    p.add_argument("-o", "--output", default=f"{DEFAULT_OUT}/host.yaml", help="host: the spec's path")
    p.add_argument("--adb", metavar="HOST:PORT", action="append",
                   help="a phone on the network (run `adb tcpip 5555` on it first); repeatable")  # fmt: skip
    p.add_argument("--usb", metavar="SERIAL", action="append",
                   help="a phone on USB (needs adb-shell[usb]; no adb server running); repeatable")  # fmt: skip
    p.add_argument("--devices", metavar="FILE", help="a devices file (YAML) of phones: see docs/measuring.md")
    p.add_argument("--ray", action="store_true", help="several phones: one Ray actor each, on a local Ray")
    p.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="several phones on a Ray cluster whose nodes have them attached (see docs/measuring.md)",
    )
    p.add_argument(
        "--lut-dir", default=DEFAULT_OUT, help=f"several phones: where their LUTs go (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--cooldown",
        type=positive_float,
        metavar="C",
        help="wait before each kernel while the phone's hottest zone is above C degrees Celsius",
    )
    p.add_argument(
        "--cooldown-max-s",
        type=positive_float,
        default=120.0,
        metavar="SECONDS",
        help="the longest cool-down wait before a kernel (default 120; the row is then flagged hot)",
    )
    p.add_argument("--benchmark-model", metavar="PATH", help="TFLite's benchmark_model for the phone (remembered)")
    p.add_argument("--affinity", metavar="MASK", help="taskset CPU mask on the phone, e.g. f0 for the big cores")
    p.add_argument("--delegate", choices=("xnnpack", "none", "gpu", "nnapi", "hexagon"), default="xnnpack")
    p.add_argument("--zoo", action="store_true", help="every zoo network's kernels")
    p.add_argument("--sample", type=count_int, default=0, help="N random conv/FC configurations")
    p.add_argument("--precision", choices=("fp32", "int8"), default="int8", help="phone kernels (default int8)")
    p.add_argument("--lut", help=f"the phone's LUT (default {DEFAULT_OUT}/<serial>_<precision>_lut.csv)")
    p.add_argument("--runs", type=positive_int, default=50, help="benchmark_model --num_runs per kernel (default 50)")
    p.add_argument("--warmup", type=count_int, default=5, help="benchmark_model --warmup_runs (default 5)")
    p.add_argument("--seconds", type=positive_float, default=1.0,
                   help="benchmark_model --min_secs per kernel (default 1)")  # fmt: skip
    p.add_argument("--timeout", type=positive_float, default=120.0, metavar="SECONDS",
                   help="longest wait for one adb call, such as a kernel's run, before the phone counts as gone "
                   "(default 120)")  # fmt: skip
    runner_args(p)
    p.set_defaults(func=cmd_profile)

    lut = sub.add_parser("lut", help="build a latency LUT of the kernels of models (resumable)")
    lut.add_argument("action", choices=("build",))
    lut.add_argument("models", nargs="*", help="zoo names, ONNX (.onnx) or TFLite (.tflite) files")
    lut.add_argument("--zoo", action="store_true", help="every zoo network")
    lut.add_argument(
        "--sample", type=count_int, default=0, help="add N random conv/FC configurations (structured keys)"
    )
    lut.add_argument("--runtime", choices=runner_names(target="host"), default="onnxruntime",
                     help="litert: structured kernels written as TFLite, timed whole")  # fmt: skip
    lut.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="int8: LiteRT only")
    lut.add_argument("--no-xnnpack", action="store_true", help="litert: the builtin kernels, not XNNPACK")
    lut.add_argument("--style", choices=("generic", "structured"), default="generic",
                     help="generic: every layer as in the model; structured: conv/FC configurations")  # fmt: skip
    kernel_args(lut)
    runner_args(lut)
    lut.set_defaults(func=cmd_lut)

    c = sub.add_parser("calibrate", help="fit per-kind throughput, bandwidth and overhead to a LUT (writes a spec)")
    c.add_argument("lut", help="the LUT (CSV)")
    c.add_argument("-o", "--output", default=f"{DEFAULT_OUT}/host_fitted.yaml", help="the fitted spec's path")
    c.set_defaults(func=cmd_calibrate)

    f = sub.add_parser("fit", help="fit the latency model to measured networks (or a kernel LUT): writes a spec")
    f.add_argument("measurements", help="a CSV with columns model,latency_ms (model: a file or zoo name), or a LUT")
    f.add_argument("--precision", choices=("int8", "fp16", "fp32"), default="int8", help="what the device ran")
    f.add_argument("--base", metavar="SPEC", help="scale this calibrated spec to the new device (3-5 networks)")
    f.add_argument("--kind", choices=("cpu", "gpu", "dsp", "npu"), default="cpu", help="the device's kind")
    f.add_argument("--fusion", choices=("runtime", "none", "auto"), default="runtime",
                   help="the runtime's fusion policy: runtime-fused layers (default; what search prices), every "
                   "node a layer, or auto (chosen by cross-validation)")  # fmt: skip
    f.add_argument("-o", "--output", default=f"{DEFAULT_OUT}/fitted.yaml", help="the fitted spec's path")
    f.set_defaults(func=cmd_fit)

    v = sub.add_parser("validate", help="measure models end to end and compare with the predictions")
    v.add_argument("models", nargs="+", help="zoo names, ONNX (.onnx) or TFLite (.tflite) files")
    v.add_argument("--device", default="host", help="where to measure (only 'host')")
    v.add_argument("--spec", help="the measured host spec for the raw roofline (default: profile now)")
    v.add_argument("--out-dir", default=DEFAULT_OUT, help=f"where the CSV and plot go (default ./{DEFAULT_OUT})")
    v.add_argument("-o", "--output", type=figure_path, help="the scatter plot's path")
    kernel_args(v)
    runner_args(v)
    report_unknown_arg(v)
    v.set_defaults(func=cmd_validate)
