"""Layer tables of the Qualcomm AI Hub classifiers, for bench_fidelity's AI Hub section.

AI Hub Models (github.com/quic/ai-hub-models) build these classifiers from torchvision at 224x224
(``qai_hub_models/models/<id>/model.py``); the same torchvision networks are exported to ONNX here and
counted once with roofline at int8 (fused layers, as the w8a8 TFLite models run), shipped in
``lut/qai_hub/layers.csv.xz`` so the benchmark needs no torch. Not run by the tests::

    pip install torch torchvision onnx                           # in any environment
    python benches/qai_hub_layers.py export --out exports/       # that environment
    python benches/qai_hub_layers.py count exports/              # roofline's environment
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _layers import layers_cli  # noqa: E402

# AI Hub model id -> torchvision builder (and keyword arguments), as its model.py builds it
NETWORKS = {
    "convnext_tiny": ("convnext_tiny", {}),
    "convnext_base": ("convnext_base", {}),
    "densenet121": ("densenet121", {}),
    "efficientnet_b0": ("efficientnet_b0", {}),
    "efficientnet_b4": ("efficientnet_b4", {}),
    "efficientnet_v2_s": ("efficientnet_v2_s", {}),
    "googlenet": ("googlenet", {"transform_input": False, "aux_logits": False, "init_weights": False}),
    "inception_v3": ("inception_v3", {"transform_input": False, "aux_logits": False, "init_weights": False}),
    "mnasnet05": ("mnasnet0_5", {}),
    "mobilenet_v2": ("mobilenet_v2", {}),
    "mobilenet_v3_large": ("mobilenet_v3_large", {}),
    "mobilenet_v3_small": ("mobilenet_v3_small", {}),
    "regnet": ("regnet_x_3_2gf", {}),
    "regnet_y_800mf": ("regnet_y_800mf", {}),
    "resnet18": ("resnet18", {}),
    "resnet50": ("resnet50", {}),
    "resnet101": ("resnet101", {}),
    "resnext50": ("resnext50_32x4d", {}),
    "resnext101": ("resnext101_32x8d", {}),
    "shufflenet_v2": ("shufflenet_v2_x0_5", {}),
    "squeezenet1_1": ("squeezenet1_1", {}),
    "wideresnet50": ("wide_resnet50_2", {}),
    "vit": ("vit_b_16", {}),
}
RESOLUTION = 224  # AI Hub's IMAGENET_DIM for every one of them


def export(out: Path) -> int:
    import torch
    import torchvision

    out.mkdir(parents=True, exist_ok=True)
    for name, (builder, kwargs) in NETWORKS.items():
        path = out / f"{name}.onnx"
        if not path.exists():
            model = getattr(torchvision.models, builder)(weights=None, **kwargs).eval()
            x = torch.randn(1, 3, RESOLUTION, RESOLUTION)
            torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False, input_names=["image_tensor"])
        print(f"{name}: torchvision {torchvision.__version__} {builder} -> {path}", flush=True)
    return 0


def main(argv=None) -> int:
    files = {name: f"{name}.onnx" for name in NETWORKS}
    return layers_cli(__doc__, "qai_hub", export, lambda folder: {k: folder / f for k, f in files.items()}, argv)


if __name__ == "__main__":
    sys.exit(main())
