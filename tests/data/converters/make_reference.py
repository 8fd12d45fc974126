"""Regenerate tests/data/converters/reference.json with the independent reference counter.

    .venv/bin/python tests/data/converters/make_reference.py

Uses only tests/reference_counter.py (LiteRT's flatbuffer schema and interpreter, onnx shape
inference, onnxruntime), never roofline. For every corpus file it records the MACs of the
conv / depthwise / fully-connected / transposed-conv / matmul layers, the weight elements of those
layers and all parameter elements (TFLite), the ops present (custom codes included), the subgraph
count and whether an input has an open shape (then the counts are at COUNT_SHAPE). ONNX files also
get their backbone MACs (nodes named .../backbone/...) and fvcore's counts from
torchvision/reference.json.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/
import reference_counter as rc  # noqa: E402

COUNT_SHAPE = (1, 224, 224, 3)  # NHWC, as stored; the size at which open-shape files are counted


def corpus() -> list[Path]:
    return sorted(p for p in HERE.rglob("*") if p.name.endswith((".tflite", ".tflite.xz", ".onnx")))


def tflite_entry(path: Path) -> dict:
    open_inputs = rc.open_inputs(path)
    shapes = {name: COUNT_SHAPE for name in open_inputs} or None
    r = rc.tflite_counts(path, input_shapes=shapes)
    r["open_input"] = bool(open_inputs)
    r["count_input_shapes"] = {k: list(v) for k, v in shapes.items()} if shapes else None
    r["format"] = "tflite"
    # same network, other precision: the MACs must not change (file stem without the variant)
    r["network"] = path.name.split(".")[0]
    return r


def onnx_entry(path: Path, fvcore: dict) -> dict:
    static = rc.onnx_counts(path)
    r = rc.onnx_counts(path, runtime_shapes=bool(static["unknown"]))
    r["shapes"] = "onnxruntime run" if static["unknown"] else "onnx shape inference"
    r["macs_static_inference_only"] = static["macs"]
    r["backbone_macs"] = rc.onnx_backbone_macs(path, runtime_shapes=bool(static["unknown"]))
    r["format"] = "onnx"
    r["network"] = path.name.split(".")[0]
    f = fvcore.get(r["network"], {})
    r["fvcore_macs"] = f.get("conv_matmul_macs")
    r["fvcore_backbone_macs"] = f.get("backbone_conv_macs")
    r["input"] = f.get("input")
    r["open_input"] = False
    return r


def main() -> int:
    fvcore_path = HERE / "torchvision" / "reference.json"
    fvcore = json.loads(fvcore_path.read_text()) if fvcore_path.exists() else {}
    out = {}
    for path in corpus():
        key = path.relative_to(HERE).as_posix()
        entry = tflite_entry(path) if ".tflite" in path.name else onnx_entry(path, fvcore)
        entry["family"] = key.split("/")[0]
        entry["file_bytes"] = path.stat().st_size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        out[key] = dict(sorted(entry.items()))
        print(f"{key}: {entry['macs'] / 1e6:.3f} M MACs", flush=True)
    (HERE / "reference.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
