"""Host fidelity on networks outside the zoo: export timm networks to ONNX, then ``roofline validate`` them.

Not run by the tests (torch and timm are not dependencies of roofline)::

    pip install torch timm onnx          # in any environment
    python benches/host_validation.py export --out exports/
    roofline validate exports/*.onnx --device host --out-dir val/ --lut val/host_lut.csv

``validate`` measures every distinct layer as a kernel (never the networks themselves) into a LUT,
calibrates it, predicts each network from it, then times each network end to end and prints the share
within +-10% / +-5%, the median |error| and Spearman. The networks below (3 per family at most, from
0.5 to 27 ms on one core of a 2-core VM) include the small ones whose fixed costs matter and the
squeeze-excite, ghost, re-parameterisable and attention families.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

NETWORKS = (
    "mobilenetv3_small_050 mobilenetv3_small_075 mobilenetv3_small_100 mobilenetv3_large_075 lcnet_035 lcnet_050 "
    "lcnet_075 lcnet_100 tinynet_e tinynet_d tinynet_c mnasnet_small mnasnet_050 semnasnet_075 efficientnet_lite0 "
    "fbnetc_100 fbnetv3_b mixnet_s ghostnet_050 ghostnetv2_100 repghostnet_050 repvit_m0_9 mobileone_s0 regnetx_002 "
    "regnety_002 regnety_004 resnet10t resnet18 hardcorenas_a spnasnet_100 dla46_c rexnet_100 mobilevitv2_050 "
    "efficientvit_b0 edgenext_xx_small convnext_atto starnet_s1 levit_128s mobilenetv4_conv_small_050 "
    "efficientnet_b0 mobilenetv2_050 resnet14t dla34"
).split()


def export(out: Path, names: list[str]) -> int:
    os.environ.setdefault("TIMM_FUSED_ATTN", "0")
    import timm
    import torch

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = out / f"{name}.onnx"
        if path.exists():
            continue
        model = timm.create_model(name, pretrained=False).eval()
        x = torch.randn(1, *model.pretrained_cfg.get("input_size", (3, 224, 224)))
        torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False, input_names=["input"])
        print(f"{name}: {tuple(x.shape)} -> {path}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("export", "list"))
    ap.add_argument("--out", default="exports", help="where the ONNX files go (default ./exports)")
    ap.add_argument("names", nargs="*", help=f"timm names (default: the {len(NETWORKS)} listed here)")
    args = ap.parse_args(argv)
    if args.action == "list":
        print("\n".join(NETWORKS))
        return 0
    return export(Path(args.out), args.names or list(NETWORKS))


if __name__ == "__main__":
    sys.exit(main())
