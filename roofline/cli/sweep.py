"""``roofline sweep``, ``roofline plot ...`` and ``roofline zoo ...``: thin wrappers over the library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from roofline import zoo
from roofline.cli.common import (
    DEFAULT_OUT,
    _console,
    _model,
    _plt,
    _si,
    figure_path,
    nonnegative_float,
    positive_float,
    positive_int,
    report_unknown_arg,
)
from roofline.dtypes import PRECISION_BYTES
from roofline.errors import InvalidParameterError
from roofline.zoo.blocks import decode, encode, expand, network_cost


def sweep_table(df, precision: str) -> Table:
    """Relative latency of every model at RP 0 and at each built-in device's ridge point (those in ``df``)."""
    swept = set(df.ridge_macs_per_byte)
    devices = {k: v for k, v in df.attrs["devices"].items() if v in swept}
    columns = [("MACs only", 0.0)] + sorted(devices.items(), key=lambda kv: kv[1])
    out = Table(title=f"latency relative to {df.attrs.get('reference') or 'each model at RP 0'} ({precision})")
    out.add_column("model")
    out.add_column("MACs", justify="right")
    for name, rp in columns:
        out.add_column(f"{name}\n{rp:.4g}", justify="right")
    at = df[df.ridge_macs_per_byte.isin([rp for _, rp in columns])]
    grid = at.pivot(index="model", columns="ridge_macs_per_byte", values="relative_latency")
    for model in df.drop_duplicates("model").sort_values("macs").model:
        cells = [f"{grid.at[model, rp]:.2f}" for _, rp in columns]
        out.add_row(model, _si(df.loc[df.model == model, "macs"].iloc[0]), *cells)
    return out


def sweep_grid(max_ridge: float, precision: str) -> np.ndarray:
    """0, 1, ..., max_ridge MACs/byte, plus the built-in devices' ridge points in that range."""
    from roofline.analysis.sweep import device_ridge_points

    extra = [rp for rp in device_ridge_points(precision).values() if rp <= max_ridge]
    return np.union1d(np.arange(0.0, max_ridge + 1.0), extra)


def _with_reference(models, reference):
    """The models to sweep: the reference joins a user's list, so that latency can be relative to it."""
    if models and reference and reference not in models:
        return [reference, *models]
    return models or None


def cmd_sweep(args) -> int:
    from roofline.analysis.sweep import sweep

    df = sweep(
        _with_reference(args.models, args.reference),
        sweep_grid(args.max_ridge, args.precision),
        args.precision,
        args.reference,
        on_unknown="report" if args.report_unknown else "raise",
    )
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = Path(args.csv) if args.csv else out_dir / "roofline_sweep.csv"
    png = Path(args.output) if args.output else out_dir / "roofline_sweep.png"
    df.to_csv(csv, index=False)
    plot = _plt()
    plot.save(plot.plot_sweep(df), png)
    console = _console()
    console.print(sweep_table(df, args.precision))
    console.print(f"Wrote {png} and {csv} ({len(df)} rows: every model at every ridge point 0..{args.max_ridge:g}).")
    return 0


def cmd_plot(args) -> int:
    from roofline.analysis.sweep import device_ridge_points, pareto, stage_breakdown, sweep
    from roofline.devices.simulate import predict

    plot = _plt()
    if args.figure == "sweep":
        ax = plot.plot_sweep(
            sweep(args.models or None, sweep_grid(500.0, args.precision), args.precision, args.reference)
        )
    elif args.figure == "roofline":
        pred = predict(_model(args.model), args.device, precision=args.precision)
        ax = plot.plot_roofline(pred)
    elif args.figure == "breakdown":
        devices = device_ridge_points(args.precision, args.device)
        labels = {0.0: "MACs only (RP 0)"} | {rp: f"{name} ({rp:.4g})" for name, rp in devices.items()}
        ax = plot.plot_breakdown(stage_breakdown(_model(args.model), list(labels), args.precision), labels=labels)
    else:
        rp = args.ridge if args.ridge is not None else device_ridge_points(args.precision, args.device)
        rp = rp if isinstance(rp, float) else next(iter(rp.values()), None)
        if rp is None:
            raise InvalidParameterError("plot pareto needs --ridge RP or a --device with an int8 ridge point")
        df = sweep(None, [rp], args.precision, args.reference)
        ax = plot.plot_pareto(pareto(df), rp)
    _console().print(f"wrote {plot.save(ax, args.output)}")
    return 0


def cmd_zoo(args) -> int:
    console = _console()
    if args.action == "list":
        out = Table(title=f"{len(zoo.list_models())} built-in networks")
        for col in ("name", "resolution", "width", "MACs", "params", "top-1 %", "reference (MACs / params)"):
            out.add_column(col)
        for name in zoo.list_models():
            m = zoo.get(name)
            macs, params = m.analytical()
            out.add_row(name, str(m.resolution), f"{m.width:g}", _si(macs), _si(params),
                        "-" if m.top1 is None else f"{m.top1:g}", f"{m.macs} / {m.params}")  # fmt: skip
        console.print(out)
        return 0
    if args.action == "show":
        text = zoo.get(args.name).spec if args.name in zoo.list_models() else args.name
        blocks = decode(text)
        res = args.resolution or (zoo.get(args.name).resolution if args.name in zoo.list_models() else 224)
        out = Table(title=f"{args.name if args.name in zoo.list_models() else 'spec'} at {res} px")
        for col in ("#", "block", "out", "MACs", "params"):
            out.add_column(col)
        c, hw = 3, (res, res)
        from roofline.zoo.blocks import block_cost

        for i, b in enumerate(expand(blocks)):
            macs, params, c, hw = block_cost(b, c, hw)
            out.add_row(str(i), encode([b]), f"{c}x{hw[0]}x{hw[1]}", _si(macs), _si(params))
        console.print(out)
        macs, params = network_cost(blocks, res)
        console.print(f"total: {_si(macs)} MACs, {_si(params)} params; canonical spec:\n{encode(blocks)}")
        return 0
    import onnx

    model = zoo.build(args.name, args.resolution, args.width, args.weights)
    onnx.save(model, args.output)
    console.print(
        f"wrote {args.output} ({Path(args.output).stat().st_size / 1e6:.2f} MB, {len(model.graph.node)} nodes)"
    )
    return 0


def add_commands(sub) -> None:
    dtypes = sorted(PRECISION_BYTES)

    s = sub.add_parser("sweep", help="the MobileNetV4 ridge-point sweep: PNG, CSV and a table (default: the zoo)")
    s.add_argument(
        "models", nargs="*", help="zoo names, ONNX (.onnx) or TFLite (.tflite) files (default: every zoo network)"
    )
    s.add_argument(
        "--reference", default="mobilenet_v2", help="latency is relative to this model (default mobilenet_v2)"
    )
    s.add_argument("--precision", choices=dtypes, default="int8", help="weights and activations (default int8)")
    s.add_argument(
        "--max-ridge", type=nonnegative_float, default=500.0, help="sweep 0..N MACs/byte in steps of 1 (default 500)"
    )
    s.add_argument("--out-dir", default=DEFAULT_OUT, help=f"where the PNG and CSV go (default ./{DEFAULT_OUT})")
    s.add_argument("-o", "--output", type=figure_path, help="the figure's path (.png, .svg, .pdf)")
    s.add_argument("--csv", help="the tidy CSV's path")
    report_unknown_arg(s)
    s.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plot", help="write a figure: sweep, roofline, breakdown or pareto")
    p.add_argument("figure", choices=("sweep", "roofline", "breakdown", "pareto"))
    p.add_argument("model", nargs="?", help="a zoo name, an ONNX or TFLite file (roofline, breakdown)")
    p.add_argument("--models", nargs="*", help="models for the sweep (default: the zoo)")
    p.add_argument("--device", action="append", help="device(s) to show (roofline: one; breakdown/pareto: several)")
    p.add_argument("--ridge", type=nonnegative_float, help="pareto: the ridge point (instead of a device)")
    p.add_argument("--reference", default="mobilenet_v2", help="sweep/pareto: latency relative to this model")
    p.add_argument("--precision", choices=dtypes, default="int8")
    p.add_argument("-o", "--output", type=figure_path, required=True, help="the figure's path (.png, .svg, .pdf)")
    p.set_defaults(func=_check_plot)

    z = sub.add_parser("zoo", help="the built-in networks: list, show a spec block by block, export as ONNX")
    z.add_argument("action", choices=("list", "show", "export"))
    z.add_argument("name", nargs="?", help="a zoo name (show also takes a spec string)")
    z.add_argument("-o", "--output", help="export: the .onnx path")
    z.add_argument("--resolution", type=positive_int, help="input size (default: the network's native one)")
    z.add_argument("--width", type=positive_float, help="channel multiplier (default: the network's own)")
    z.add_argument("--weights", choices=("light", "random"), default="light",
                   help="light: weight-free fills (small files); random: seeded random weights")  # fmt: skip
    z.set_defaults(func=_check_zoo)


def _check_plot(args) -> int:
    if args.figure in ("roofline", "breakdown") and not args.model:
        raise InvalidParameterError(f"plot {args.figure} needs a MODEL (a zoo name or an .onnx file)")
    if args.figure == "roofline" and args.device and len(args.device) > 1:
        raise InvalidParameterError("plot roofline shows one --device")
    if args.figure == "roofline" and not args.device:
        from roofline.devices import PAPER_HIGH_RIDGE_DEVICE

        args.device = [PAPER_HIGH_RIDGE_DEVICE]
    return cmd_plot(args)


def _check_zoo(args) -> int:
    if args.action in ("show", "export") and not args.name:
        raise InvalidParameterError(f"zoo {args.action} needs a NAME")
    if args.action == "export" and not args.output:
        raise InvalidParameterError("zoo export needs -o FILE.onnx")
    return cmd_zoo(args)
