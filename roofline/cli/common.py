"""What every command shares: argument types and the one-line parser, model arguments, number formatting,
the console (no markup: names from model files, specs and phones are printed as they are) and pyplot."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rich.console import Console

from roofline.errors import CommandLineError, InvalidParameterError

DEFAULT_OUT = "roofline-out"


def _si(x: float, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    x = float(f"{x:.3g}")  # rounded first: 999.6e3 prints as 1 M, not 1e+03 k
    for div, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def _console() -> Console:
    # no markup: names from model files, specs and phones are printed as they are, never interpreted
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False, markup=False)


def _shapes(items: list[str]) -> dict[str, tuple[int, ...] | int]:
    """Parse ``--input-shape input=1x3x224x224`` / ``batch=1`` items."""
    out: dict[str, tuple[int, ...] | int] = {}
    for item in items or []:
        name, sep, dims = item.partition("=")
        try:
            values = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            values = ()
        if not sep or not name or not values:
            raise InvalidParameterError(
                f"--input-shape {item!r}: expected NAME=1x3x224x224 (an input) or NAME=N (a symbolic dimension)"
            )
        from roofline.ir.checks import MAX_TENSOR_ELEMS  # here: this function is the only user in this module

        bad = [v for v in values if not 1 <= v <= MAX_TENSOR_ELEMS]
        if bad:
            raise InvalidParameterError(
                f"--input-shape {item!r}: every size must be a whole number from 1 to 2**34, got {bad[0]}"
                + (" (a tensor without elements has nothing to count)" if bad[0] == 0 else "")
            )
        out[name] = values if len(values) > 1 or "x" in dims else values[0]
    return out


def _model(arg: str):
    """A model file, or the name of a built-in zoo network as its built model (``resolve_model``)."""
    from roofline.ir.load import resolve_model

    return resolve_model(arg)[0]


def _on_unknown(args) -> str:
    return "report" if args.report_unknown else "raise"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose every error is one line: a CommandLineError that says where the help is.

    Its subparsers are of the same class (``add_subparsers`` makes them so), hence every command's too.
    """

    def parse_known_args(self, args=None, namespace=None):
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        prog = self.prog
        commands = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})
        command = next((t for t in getattr(self, "_argv", []) if not t.startswith("-")), None)
        if command in commands:  # an unrecognized argument of a command is found by the top parser
            prog = commands[command].prog
        raise CommandLineError(f"{message} (see {prog} --help)")


def _number_type(kind: type, low: float, strict: bool, what: str):
    """An argparse ``type`` that takes a finite ``kind`` above ``low`` (``strict``) or from ``low`` on."""

    def parse(text: str):
        try:
            x = kind(text)
        except ValueError:
            x = None
        if x is None or not math.isfinite(x) or (x <= low if strict else x < low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return x

    parse.__name__ = what
    return parse


positive_int = _number_type(int, 1, False, "a whole number >= 1")
count_int = _number_type(int, 0, False, "a whole number >= 0")
positive_float = _number_type(float, 0.0, True, "a positive number")
nonnegative_float = _number_type(float, 0.0, False, "a number >= 0")


def figure_path(text: str) -> str:
    """An argparse ``type``: a path whose suffix (if any) names a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    suffix = Path(text).suffix.lower().lstrip(".")
    if not text or (suffix and suffix not in formats):
        raise argparse.ArgumentTypeError(f"expected a figure file (.{', .'.join(formats)}), got {text!r}")
    return text


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    from roofline import plot

    return plot


def report_unknown_arg(sp) -> None:
    """The ``--report-unknown`` flag of every command that counts models."""
    sp.add_argument(
        "--report-unknown",
        action="store_true",
        help="keep ops without a counting rule as 'unknown' rows (bytes only, no MACs) instead of failing",
    )
