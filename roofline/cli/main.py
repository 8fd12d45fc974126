"""The ``roofline`` parser and entry point: every command's module adds its own subcommands."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from roofline.cli import measure, predict, search, sweep
from roofline.cli.common import DEFAULT_OUT, ArgumentParser, _console
from roofline.errors import RooflineError


def _cmd_default(args) -> int:
    argv = ["sweep", "--out-dir", DEFAULT_OUT]
    code = sweep.cmd_sweep(_parser().parse_args(argv))
    _console().print(
        "Next: roofline predict MODEL.onnx --device pixel8_edgetpu   |   roofline count MODEL.onnx   |   "
        "roofline plot roofline mnv4_conv_m --device jetson_orin_nano -o roofline.png   |   roofline --help"
    )
    return code


_DEBUG_HELP = "on an error, show the full traceback instead of one line (or set ROOFLINE_DEBUG=1)"


def _parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="roofline",
        description="Per-layer MACs and bytes of ONNX and TFLite models, and their roofline latency on mobile and edge "
        "devices. "
        "With no command, runs the MobileNetV4 ridge-point sweep of the built-in networks on the built-in devices "
        "(a PNG, a CSV and a table in ./roofline-out).",
    )
    p.set_defaults(func=_cmd_default)
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for module in (predict, sweep, measure, search):
        module.add_commands(sub)
    # --debug after a command too; SUPPRESS: a command that was not given it keeps the global one's value
    for command in {id(c): c for c in sub.choices.values()}.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return p


def _message(exc: BaseException) -> str:
    """The error as one line: what went wrong, naming the file or option."""
    if isinstance(exc, OSError) and not isinstance(exc, RooflineError):
        text = f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    else:
        text = str(exc)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``roofline`` console script; returns the exit code.

    Every error a user can cause (a RooflineError, among them a bad command line, or an OSError) is one
    line on stderr and exit code 2; ``--debug`` or ROOFLINE_DEBUG=1 shows its traceback instead. Anything
    else is a bug, and keeps its traceback.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = os.environ.get("ROOFLINE_DEBUG", "").strip() not in ("", "0") or "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        debug = debug or getattr(args, "debug", False)
        return args.func(args)
    except (RooflineError, OSError) as exc:
        if debug:
            traceback.print_exc()
        else:
            print(f"roofline: error: {_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
