"""Regenerate tests/data/converters/torchvision: weight-free ONNX exports of torchvision models.

Not run by the tests (it needs torch, torchvision, onnxsim, onnxslim and fvcore). Outside the repo:

    python3.11 -m venv /tmp/gen-torch
    /tmp/gen-torch/bin/pip install torch==2.14.1 torchvision==0.29.1 onnx onnxsim onnxslim fvcore
    /tmp/gen-torch/bin/python tests/data/converters/torchvision/make_torchvision.py [NAME ...]
    .venv/bin/python tests/data/converters/make_reference.py     # then refresh ../reference.json

Every model (weights=None, weights_backbone=None: nothing is downloaded) is exported with the
TorchScript exporter (torch.onnx.export(..., dynamo=False)) at opsets 13 and 17, input 1x3xHxW, and
saved three ways: as exported (NAME.opsetN.onnx), after onnxsim (NAME.opsetN.onnxsim.onnx) and after
onnxslim (NAME.opsetN.onnxslim.onnx). Each file is then made weight-free ("light") exactly as
tests/data/make_realworld.py does: every constant with more than 16 elements becomes a
ConstantOfShape node, so the file keeps the graph and the shapes but not the weights. A combination
that fails is reported and skipped.

reference.json records fvcore's conv + linear + matmul MACs of each torch module (one fused
multiply-add per MAC, biases excluded) and of its `backbone` submodule, at the same input size.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import onnx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))  # tests/data: make_realworld.make_light
from make_realworld import make_light  # noqa: E402

MATOPS = {"conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm", "mm"}
OPSETS = (13, 17)
SIZES = {
    "ssdlite320_mobilenet_v3_large": 320,
    "deeplabv3_mobilenet_v3_large": 512,
    "lraspp_mobilenet_v3_large": 512,
    "mobilenet_v3_small": 224,
}


def build(name: str):
    import torchvision

    if name == "ssdlite320_mobilenet_v3_large":
        return torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None)
    if name == "mobilenet_v3_small":
        return torchvision.models.mobilenet_v3_small(weights=None)
    return getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)


def flat(out):
    """Model outputs as a flat tuple of tensors (detection: list of dicts, segmentation: a dict)."""
    import torch

    if isinstance(out, torch.Tensor):
        return (out,)
    if isinstance(out, dict):
        return tuple(t for v in out.values() for t in flat(v))
    return tuple(t for v in out for t in flat(v))


def wrap(model, detection: bool):
    """A module with the model as its `model` child (ONNX node names: /model/backbone/...)."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return flat(self.model(list(x) if detection else x))

    return Wrapped().eval()


def fvcore_macs(module, x) -> int:
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, x)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    return int(sum(v for k, v in fca.by_operator().items() if k in MATOPS))


def main() -> int:
    import torch

    torch.manual_seed(0)
    ref_path = HERE / "reference.json"
    reference = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    failures = []
    for name in sys.argv[1:] or list(SIZES):
        size = SIZES[name]
        detection = name.startswith("ssd")
        model = build(name).eval()
        wrapped = wrap(model, detection)
        x = torch.rand(1, 3, size, size)
        with torch.no_grad():
            macs = fvcore_macs(wrapped, (x,))
            backbone = None
            if hasattr(model, "backbone"):
                # what the backbone sees: SSD normalises and resizes (to 320x320, a no-op here) first
                bx = model.transform(list(x))[0].tensors if detection else x
                backbone = fvcore_macs(wrap(model.backbone, False), (bx,))
        reference[name] = {"conv_matmul_macs": macs, "backbone_conv_macs": backbone, "input": [1, 3, size, size],
                           "counter": "fvcore", "torch": torch.__version__}  # fmt: skip
        print(f"{name}: fvcore {macs / 1e6:.2f} M MACs, backbone {backbone}", flush=True)
        for opset in OPSETS:
            raw = HERE / f"{name}.opset{opset}.onnx"
            try:
                torch.onnx.export(wrapped, (x,), str(raw), opset_version=opset, dynamo=False,
                                  input_names=["input"])  # fmt: skip
                full = onnx.load(str(raw))
            except Exception as e:  # noqa: BLE001
                failures.append(f"{raw.name}: export {type(e).__name__}: {str(e)[:200]}")
                traceback.print_exc()
                continue
            variants = {raw: lambda m: m}

            def sim(m):
                import onnxsim

                out, ok = onnxsim.simplify(m)
                if not ok:
                    raise RuntimeError("onnxsim check failed")
                return out

            def slim(m):
                import onnxslim

                return onnxslim.slim(m)

            variants[HERE / f"{name}.opset{opset}.onnxsim.onnx"] = sim
            variants[HERE / f"{name}.opset{opset}.onnxslim.onnx"] = slim
            for path, fn in variants.items():
                try:
                    m = fn(onnx.ModelProto.FromString(full.SerializeToString()))
                    onnx.save(make_light(m), str(path))
                    print(f"  {path.name}: {path.stat().st_size / 1e3:.0f} kB", flush=True)
                except Exception as e:  # noqa: BLE001
                    path.unlink(missing_ok=True)
                    failures.append(f"{path.name}: {type(e).__name__}: {str(e)[:200]}")
                    print(f"  {path.name}: FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
    ref_path.write_text(json.dumps(dict(sorted(reference.items())), indent=1) + "\n")
    for f in failures:
        print("FAILED", f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
