"""Layer tables of the MobileNetV4 Table 6 networks that the zoo does not build, for bench_fidelity.

MobileOne, FastViT, MIT EfficientViT and ConvNeXt come from timm (re-parameterised for inference, as
they are deployed), exported to ONNX at the paper's resolutions, and counted once with roofline at the
paper's int8 (fused layers, as TFLite runs them). The counts are shipped in
``lut/mobilenetv4_table6/layers.csv.xz`` so the benchmark prices 19-22 networks per device without
torch. Not run by the tests (torch and timm are not dependencies of roofline)::

    pip install torch timm onnx                                  # in any environment
    python benches/table6_layers.py export --out exports/        # that environment
    python benches/table6_layers.py count exports/               # roofline's environment
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _layers import layers_cli  # noqa: E402

# Table 6 row -> (timm name, input resolution): the paper's MobileOne at 224, FastViT at its 256,
# EfficientViT at the resolution its row names, ConvNeXt at 224. MultiHardware-AVG/MAX have no public build.
NETWORKS = {
    "MobileOne-S0": ("mobileone_s0", 224),
    "MobileOne-S4": ("mobileone_s4", 224),
    "FastViT-T8": ("fastvit_t8", 256),
    "FastViT-S12": ("fastvit_s12", 256),
    "FastViT-SA12": ("fastvit_sa12", 256),
    "FastViT-SA24": ("fastvit_sa24", 256),
    "FastViT-SA36": ("fastvit_sa36", 256),
    "MIT-EfficientViT-B1-r224": ("efficientvit_b1", 224),
    "MIT-EfficientViT-B2-r256": ("efficientvit_b2", 256),
    "MIT-EfficientViT-B3-r224": ("efficientvit_b3", 224),
    "ConvNext-S": ("convnext_small", 224),
}


def export(out: Path) -> int:
    os.environ.setdefault("TIMM_FUSED_ATTN", "0")
    import timm
    import torch
    from timm.utils.model import reparameterize_model

    out.mkdir(parents=True, exist_ok=True)
    for label, (name, res) in NETWORKS.items():
        path = out / f"{name}_{res}.onnx"
        if not path.exists():
            model = reparameterize_model(timm.create_model(name, pretrained=False).eval())
            x = torch.randn(1, 3, res, res)
            torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False, input_names=["input"])
        print(f"{label}: {name} at {res} -> {path} (timm {timm.__version__})")
    return 0


def main(argv=None) -> int:
    files = {label: f"{name}_{res}.onnx" for label, (name, res) in NETWORKS.items()}
    return layers_cli(__doc__, "mobilenetv4_table6", export, lambda folder: {k: folder / f for k, f in files.items()},
                      argv)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
