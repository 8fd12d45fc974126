"""Regenerate tests/data/realworld: weight-free ONNX exports of timm networks and reference MACs.

Not run by the tests (it needs torch, timm and fvcore, which are not dependencies):

    pip install torch timm fvcore onnx
    TIMM_FUSED_ATTN=0 python tests/data/make_realworld.py

Each model is exported with the TorchScript exporter at opset 17 and then made "light": every
constant with more than 16 elements becomes a ConstantOfShape node (as in onnx's light test models),
so the files keep the exact graph and shapes but not the weights. The reference MACs are
fvcore's conv + linear + matmul (+ bmm, einsum, addmm) counts of the same torch module: one fused
multiply-add per MAC, biases excluded.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = Path(__file__).parent / "realworld"
MODELS = ["mobilenetv4_hybrid_medium", "mobilevit_xs", "efficientformerv2_s0", "levit_128s", "swin_tiny_patch4_window7_224",
          "edgenext_xx_small", "convnext_atto", "vit_tiny_patch16_224", "fastvit_t8", "ghostnet_100", "mvitv2_tiny",
          "xcit_nano_12_p16_224"]  # fmt: skip
MATOPS = {"conv", "linear", "matmul", "bmm", "einsum", "addmm", "baddbmm", "mm"}


def _fill(name: str, arr: np.ndarray) -> tuple[onnx.TensorProto, onnx.NodeProto]:
    dims = numpy_helper.from_array(np.array(arr.shape, np.int64), f"{name}__shape")
    value = numpy_helper.from_array(np.array([1 if arr.dtype.kind in "iub" else 0.01], arr.dtype), "value")
    return dims, helper.make_node("ConstantOfShape", [dims.name], [name], value=value)


def make_light(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every constant of more than 16 elements (initializers and Constant nodes) by a fill."""
    g = model.graph
    inits, nodes = [], []
    for t in g.initializer:
        arr = numpy_helper.to_array(t)
        if arr.size > 16:  # shape constants are smaller; weights and index tables only need their shape
            dims, node = _fill(t.name, arr)
            inits.append(dims)
            nodes.append(node)
        else:
            inits.append(t)
    for n in g.node:
        value = next((a.t for a in n.attribute if a.name == "value"), None) if n.op_type == "Constant" else None
        if value is not None and numpy_helper.to_array(value).size > 16:
            dims, node = _fill(n.output[0], numpy_helper.to_array(value))
            inits.append(dims)
            nodes.append(node)
        else:
            nodes.append(n)
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.node[:]
    g.node.extend(nodes)
    return model


def main() -> int:
    os.environ.setdefault("TIMM_FUSED_ATTN", "0")  # plain matmuls, which fvcore counts
    import timm
    import torch
    from fvcore.nn import FlopCountAnalysis

    HERE.mkdir(exist_ok=True)
    ref_path = HERE / "reference.json"
    reference = json.loads(ref_path.read_text()) if ref_path.exists() else {}
    for name in sys.argv[1:] or MODELS:
        m = timm.create_model(name, pretrained=False).eval()
        size = m.pretrained_cfg.get("input_size", (3, 224, 224))
        x = torch.randn(1, *size)
        fca = FlopCountAnalysis(m, x)
        fca.unsupported_ops_warnings(False)
        macs = sum(v for k, v in fca.by_operator().items() if k in MATOPS)
        path = HERE / f"{name}.onnx"
        torch.onnx.export(m, x, str(path), opset_version=17, dynamo=False, input_names=["input"])
        onnx.save(make_light(onnx.load(str(path))), str(path))
        reference[name] = {
            "conv_matmul_macs": int(macs),
            "input": [1, *size],
            "counter": "fvcore",
            "timm": timm.__version__,
        }
        print(f"{name}: {macs / 1e6:.1f} M MACs, {path.stat().st_size / 1e3:.0f} kB")
    ref_path.write_text(json.dumps(dict(sorted(reference.items())), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
