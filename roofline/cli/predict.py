"""``roofline count``, ``predict`` and ``devices``: the counting core and the device rooflines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.table import Table

from roofline.cli.common import _console, _model, _on_unknown, _shapes, _si, count_int, positive_int, report_unknown_arg
from roofline.counting.fuse import FUSE_MODES
from roofline.counting.table import count, totals
from roofline.devices import device_table, load_device
from roofline.devices.simulate import predict
from roofline.dtypes import PRECISION_BYTES

_BOUND_WHY = {"upper": "data-dependent sizes", "lower": "one iteration of a loop with a run-time trip count"}


def bound_lines(table) -> list[str]:
    """One line per kind of bounded row, naming the nodes that make them bounds."""
    out = []
    t = totals(table)
    for kind, why in _BOUND_WHY.items():
        n = t.get(f"{kind}_bound_layers", 0)
        if n:
            names = table.attrs.get("bound_sources", {}).get(kind, [])
            sources = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            sources = sources or "see the bound column"
            are = "layers are" if n != 1 else "layer is"
            out.append(f"{n} {are} {kind} bound{'s' if n != 1 else ''} ({why}: {sources})")
    return out


def cmd_count(args) -> int:
    table = count(
        _model(args.model),
        _shapes(args.input_shape),
        args.weight_dtype,
        args.activation_dtype,
        args.fuse,
        _on_unknown(args),
    )
    if args.csv:
        table.to_csv(args.csv, index=False)
    t = totals(table)
    shown = table if not args.top else table.nlargest(args.top, "bytes" if args.sort == "bytes" else "macs")
    out = Table(
        title=f"{Path(args.model).name}: {len(table)} layers (fuse={args.fuse}, "
        f"weights {table.attrs['weight_dtype']}, activations {table.attrs['activation_dtype']})"
    )
    for col in ("name", "op", "kind", "output", "MACs", "params", "weight B", "in B", "out B", "MACs/B"):
        out.add_column(col, justify="left" if col in ("name", "op", "kind", "output") else "right")
    for r in shown.itertuples():
        op = r.op_type + (f"+{r.fused}" if r.fused else "")
        out.add_row(
            r.name,
            op,
            r.kind,
            r.output_shapes,
            _si(r.macs),
            _si(r.params),
            _si(r.weight_bytes),
            _si(r.input_bytes),
            _si(r.output_bytes),
            f"{r.intensity_macs_per_byte:.3g}",
        )
    console = _console()
    console.print(out)
    console.print(
        f"total: {_si(t['macs'])} MACs, {_si(t['params'])} params, {_si(t['bytes'], 'B')} moved "
        f"(weights {_si(t['weight_bytes'], 'B')}, inputs {_si(t['input_bytes'], 'B')}, "
        f"outputs {_si(t['output_bytes'], 'B')})"
    )
    for line in bound_lines(table):
        console.print(line)
    sparse = table[table["sparsity"] > 0]
    if len(sparse):
        console.print(f"{len(sparse)} layers have sparse weights ({sparse['sparsity'].mean():.0%} of their weight "
                      "elements not stored, on average): counted dense, as the runtime executes them")  # fmt: skip
    if table.attrs["unknown_ops"]:
        console.print(f"unknown ops (no MACs counted): {', '.join(table.attrs['unknown_ops'])}", style="bold")
    if args.csv:
        console.print(f"wrote {args.csv}")
    return 0


def _predict_table(pred, title: str) -> Table:
    out = Table(title=title)
    for col in ("device", "name", "kind", "precision", "ridge MACs/B", "latency", "memory-bound", "provenance"):
        out.add_column(col, justify="right" if col in ("ridge MACs/B", "latency", "memory-bound") else "left")
    for name, r in pred.totals.iterrows():
        latency = f"{_si(r.latency_mac_equiv)} MAC-eq *" if r.relative else f"{r.latency_ms:.3g} ms"
        out.add_row(
            r.display_name,
            name,
            r.kind,
            r.precision,
            f"{r.ridge_macs_per_byte:.4g}",
            latency,
            f"{r.memory_bound_time_share:.0%}",
            r.provenance,
        )
    return out


def _print_prediction(pred, label: str, layers: int = 0) -> None:
    console = _console()
    t = totals(pred.layers)
    console.print(_predict_table(pred, f"{label}: {_si(t['macs'])} MACs, {_si(t['params'])} params"))
    if pred.relative.any():
        console.print(
            "* relative: the spec holds only a ridge point, so latency is in MAC-equivalents "
            "(latency x PeakMACs); compare it only with other MAC-eq numbers"
        )
    for dev in pred.totals.index if layers else []:
        rows = pred.per_layer(dev).nlargest(layers, "latency_mac_equiv")
        tab = Table(title=f"slowest {layers} layers on {dev}")
        for col in ("layer", "kind", "MACs", "bytes", "latency", "bound"):
            tab.add_column(col)
        for r in rows.itertuples():
            lat = f"{_si(r.latency_mac_equiv)} MAC-eq" if r.unit != "ms" else f"{r.latency_ms:.3g} ms"
            tab.add_row(r.name, r.kind, _si(r.macs), _si(r.bytes, "B"), lat, r.bound)
        console.print(tab)


def cmd_predict(args) -> int:
    devices = args.device or None
    pred = predict(
        _model(args.model),
        devices,
        precision=args.precision,
        fuse=args.fuse,
        input_shapes=_shapes(args.input_shape),
        on_unknown=_on_unknown(args),
    )
    if args.csv:
        pred.totals.to_csv(args.csv)
    _print_prediction(pred, Path(args.model).name, args.layers)
    return 0


def _per_kind(spec) -> bool:
    """A spec fitted per layer kind: its overall peak, bandwidth and ridge point mean nothing alone."""
    return any(k not in ("network", "weights", "layout") for k in spec.calibration)


def cmd_devices(args) -> int:
    console = _console()
    if args.name:
        d = load_device(args.name)
        console.print(f"{d.display_name} ({d.name}) - {d.kind}, provenance {d.provenance}", style="bold")
        if _per_kind(d):
            console.print(f"  {d.default_precision}: the latency model fitted per layer kind (no single ridge point):")
            fits = Table()
            for col in ("kinds", "peak MAC/s", "bandwidth B/s", "overhead"):
                fits.add_column(col)
            groups: dict[tuple, list[str]] = {}
            for kind, e in d.calibration.items():
                if kind not in ("network", "weights", "layout"):
                    key = (e.get("peak_macs_per_s"), e.get("bandwidth_bytes_per_s"), e.get("overhead_s", 0.0))
                    groups.setdefault(key, []).append(kind)
            for (peak, bw, overhead), kinds in groups.items():
                fits.add_row(", ".join(kinds), _si(peak) if peak else "-", _si(bw), f"{overhead * 1e6:.3g} us")
            console.print(fits)
        else:
            for p in d.precisions:
                peak = d.peak(p)
                line = f"  {p}: ridge {d.ridge(p):.4g} MACs/byte"
                if peak:
                    line += f", peak {_si(peak, 'MAC/s')}, bandwidth {_si(d.bandwidth_bytes_per_s, 'B/s')}"
                console.print(line + ("  (default)" if p == d.default_precision else ""))
        if d.efficiency:
            ec, em = d.efficiency.get("compute", 1.0), d.efficiency.get("memory", 1.0)
            console.print(f"  reached by its runtime (fitted): {ec:.0%} of the peak, {em:.0%} of the bandwidth "
                          f"(ridge {d.reached_ridge():.4g} MACs/byte at {d.default_precision})")  # fmt: skip
        if d.fusion:
            console.print(f"  fusion policy: {d.fusion}")
        if "network" in d.calibration:
            console.print(f"  fixed cost per inference: {d.calibration['network']['overhead_s'] * 1e3:.3g} ms")
        if d.memory:
            keeps = ", ".join(d.memory["keeps"])
            console.print(f"  on-chip memory: {_si(d.memory['on_chip_bytes'], 'B')}, keeps {keeps}")
        if d.fit:
            cv = d.fit.get("cv", {})
            spearman = cv.get("spearman", float("nan"))
            console.print(f"  fitted to {d.fit.get('rows')} measurements ({d.fit.get('data')}); {cv.get('folds')} "
                          f"cross-validation: {cv.get('within_10pct', 0):.0%} within +-10%, median |error| "
                          f"{cv.get('median_abs_error', 0):.1%}, Spearman {spearman:.3f}")  # fmt: skip
        console.print("sources:")
        for s in d.sources:
            console.print(f"  - {s}")
        if d.notes:
            console.print(f"notes: {d.notes}")
        return 0
    df = device_table()
    out = Table(title=f"{len(df)} built-in devices")
    for col in ("name", "device", "kind", "precision", "peak MAC/s", "bandwidth B/s", "ridge MACs/B", "provenance"):
        out.add_column(col)
    for r in df.itertuples():
        peak = None if r.peak_macs_per_s is None or pd.isna(r.peak_macs_per_s) else r.peak_macs_per_s
        bw = None if r.bandwidth_bytes_per_s is None or pd.isna(r.bandwidth_bytes_per_s) else r.bandwidth_bytes_per_s
        per_kind = _per_kind(load_device(r.name))
        out.add_row(
            r.name,
            r.display_name,
            r.kind,
            r.precision,
            "fitted per kind" if per_kind else _si(peak) if peak else "(not published)",
            "-" if per_kind or not bw else _si(bw),
            "-" if per_kind else f"{r.ridge_macs_per_byte:.4g}",
            r.provenance,
        )
    console.print(out)
    return 0


def add_commands(sub) -> None:
    dtypes = sorted(PRECISION_BYTES)

    def model_args(sp, fuse_default):
        sp.add_argument(
            "model", help="an ONNX (.onnx) or TFLite (.tflite) file, or a built-in network name (e.g. mobilenet_v2)"
        )
        sp.add_argument(
            "--fuse",
            choices=FUSE_MODES,
            default=fuse_default,
            help=f"'none': one row per ONNX node; 'runtime': fused layers as runtimes run them "
            f"(default {fuse_default or 'the fusion policy of the device specs, else runtime'})",
        )
        sp.add_argument(
            "--input-shape",
            action="append",
            metavar="NAME=DIMS",
            help="fix an input shape (input=1x3x224x224) or a symbolic dimension (batch=1); repeatable",
        )

    c = sub.add_parser("count", help="per-layer MACs, parameters and bytes of a model")
    model_args(c, "none")
    c.add_argument("--weight-dtype", choices=dtypes, help="count float weights at this precision (default: as stored)")
    c.add_argument(
        "--activation-dtype", choices=dtypes, help="count float activations at this precision (default: as stored)"
    )
    report_unknown_arg(c)
    c.add_argument("--csv", metavar="FILE", help="also write the full layer table as CSV")
    c.add_argument(
        "--top", type=positive_int, metavar="N", help="show only the N layers with the most MACs (or bytes, see --sort)"
    )
    c.add_argument("--sort", choices=("macs", "bytes"), default="macs", help="what --top ranks by")
    c.set_defaults(func=cmd_count)

    pr = sub.add_parser("predict", help="roofline latency of a model on one or more devices")
    model_args(pr, None)
    pr.add_argument(
        "--device",
        action="append",
        metavar="NAME",
        help="a built-in device name or a spec .yaml; repeatable (default: every built-in device)",
    )
    pr.add_argument("--precision", choices=dtypes, help="precision on every device (default: each device's own)")
    pr.add_argument("--layers", type=count_int, default=0, metavar="N",
                    help="also show the N slowest layers per device")  # fmt: skip
    pr.add_argument("--csv", metavar="FILE", help="also write the per-device totals as CSV")
    report_unknown_arg(pr)
    pr.set_defaults(func=cmd_predict)

    d = sub.add_parser("devices", help="list the built-in device specs, or show one")
    d.add_argument("name", nargs="?", help="a device name or spec .yaml to show in full")
    d.set_defaults(func=cmd_devices)
