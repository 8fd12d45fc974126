"""Every error the library raises, with one message recipe.

Each error also inherits the matching built-in exception, so ``except KeyError`` still catches an
unknown device. Messages name the parameter or file, show the bad value, say what is accepted and
suggest close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "RooflineError",
    "ModelLoadError",
    "ShapeError",
    "UnsupportedOpError",
    "UnknownDeviceError",
    "SpecError",
    "BlockSpecError",
    "InvalidParameterError",
    "CommandLineError",
    "did_you_mean",
    "require",
]


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(str(value), list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class RooflineError(Exception):
    """Base class of every error raised by roofline."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class ModelLoadError(ValueError, RooflineError):
    """A model file is missing, corrupt, or not an ONNX model."""


class ShapeError(ValueError, RooflineError):
    """A tensor shape is symbolic, missing or inconsistent."""


class UnsupportedOpError(ValueError, RooflineError):
    """A node has no counting rule."""

    def __init__(self, op_types: Iterable[str], supported: Iterable[str], example_nodes: dict[str, str]):
        self.op_types = sorted(set(op_types))
        self.supported = sorted(supported)
        hints = "".join(did_you_mean(op, self.supported) for op in self.op_types)
        where = ", ".join(f"{op} (node {example_nodes[op]!r})" for op in self.op_types)
        super().__init__(
            f"no counting rule for op type {where}{hints}; pass on_unknown='report' to keep such nodes "
            f"as unknown rows. Supported ops: {', '.join(self.supported)}"
        )


class UnknownDeviceError(KeyError, RooflineError):
    """A device name matches no spec file."""

    __str__ = RooflineError.__str__  # KeyError's would quote the message


class SpecError(ValueError, RooflineError):
    """A device spec (YAML file) has a bad or missing field; block specs raise ``BlockSpecError``."""


class InvalidParameterError(ValueError, RooflineError):
    """A function argument has a value outside what it accepts."""


class BlockSpecError(InvalidParameterError):
    """A network's block spec (``roofline.zoo.blocks``: ``conv_k3_s2_c32 ...``) has an unknown or malformed token."""


class CommandLineError(InvalidParameterError):
    """A command line the ``roofline`` command cannot parse: an unknown option, a missing argument, a bad choice."""


def check_choice(value, choices, parameter: str) -> None:
    """Raise InvalidParameterError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise InvalidParameterError(
            f"the {parameter!r} parameter must be one of {list(choices)}, got {value!r}"
            + did_you_mean(str(value), [str(c) for c in choices])
        )


def check_threads(threads) -> int:
    """Raise InvalidParameterError unless ``threads`` is a whole number >= 1 (a runner's thread count)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidParameterError(f"the 'threads' parameter must be a whole number >= 1, got {threads!r}")
    return threads


def require(module: str, purpose: str):
    """Import ``module`` (a dependency of roofline) or raise one line saying what needs it and how to get it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        package = {"sklearn": "scikit-learn"}.get(top, top.replace("_", "-"))
        raise InvalidParameterError(f"{purpose} needs {package}, a dependency of roofline missing here "
                                    f"(pip install {package})") from None  # fmt: skip
