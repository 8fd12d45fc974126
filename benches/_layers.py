"""What the layer-table scripts share: ``export DIR`` in an environment with torch, ``count DIR`` in
roofline's (``roofline.public.write_layers`` counts and stores them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def layers_cli(doc: str, dataset: str, export: Callable[[Path], int], files: Callable[[Path], dict], argv=None) -> int:
    """``export`` writes the ONNX exports into a folder; ``files(folder)`` maps each label to its export."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("action", choices=("export", "count"))
    ap.add_argument("dir", nargs="?", default="exports", help="the ONNX exports' folder (default ./exports)")
    ap.add_argument("--out", help="export: where the ONNX files go (default: dir)")
    args = ap.parse_args(argv)
    if args.action == "export":
        return export(Path(args.out or args.dir))
    from roofline.public import write_layers

    print(f"-> {write_layers(dataset, files(Path(args.dir)))}")
    return 0
