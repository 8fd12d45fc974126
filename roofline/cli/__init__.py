"""The ``roofline`` command, one module per group of commands, none importing another but ``common``.

``main`` (the console script) parses with ``main._parser``: ``predict`` adds count, predict and devices;
``sweep`` adds sweep, plot and zoo; ``measure`` adds profile, lut, calibrate, validate and fit; ``search``
adds search. ``common`` holds what they share: the one-line argument parser and its number types, model
and shape arguments, number formatting, the console and pyplot. Each command is a thin wrapper over
the library.
"""

from roofline.cli.main import main

__all__ = ["main"]
