"""Every zoo network builds, passes the checker, runs in onnxruntime and matches its references."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import roofline
from roofline import zoo


@pytest.mark.parametrize("name", zoo.list_models())
def test_zoo_model(name):
    m = zoo.get(name)
    model = zoo.build(name)
    onnx.checker.check_model(model, full_check=True)
    table = roofline.count(model)
    got = roofline.totals(table)
    for which in ("params", "macs"):
        value, tolerance = m.reference(which)
        assert abs(got[which] - value) <= tolerance, (which, got[which], m.__dict__[which])
    assert (got["macs"], got["params"]) == m.analytical()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, m.resolution, m.resolution), np.float32)
    assert session.run(None, {"input": x})[0].shape == (1, 1000)


def test_resolution_and_width_overrides():
    base = roofline.totals(roofline.count(zoo.build("mobilenet_v2")))["macs"]
    wide = roofline.totals(roofline.count(zoo.build("mobilenet_v2", width=1.5)))["macs"]
    assert wide == roofline.totals(roofline.count(zoo.build("mobilenet_v2_150")))["macs"] > base
    small = zoo.build("mnv4_conv_s", resolution=256)
    assert roofline.totals(roofline.count(small))["macs"] == zoo.get("mnv4_conv_s").analytical(resolution=256)[0]


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="did you mean 'mnv4_conv_s'"):
        zoo.build("mnv4_conv_ss")


def test_list_models_filters():
    assert zoo.list_models("mnv4_*") == ["mnv4_conv_l", "mnv4_conv_m", "mnv4_conv_s", "mnv4_hybrid_l", "mnv4_hybrid_m"]
    assert len(zoo.list_models()) == 21
    assert zoo.list_models("shufflenet_*") == ["shufflenet_v1_g3", "shufflenet_v2", "shufflenet_v2_050",
                                               "shufflenet_v2_150", "shufflenet_v2_200"]  # fmt: skip


@pytest.mark.parametrize(
    "name,params",
    [  # torchvision shufflenet_v2_x0_5 ... x2_0 and timm ghostnet_100, counted with sum(p.numel())
        ("shufflenet_v2_050", 1_366_792),
        ("shufflenet_v2", 2_278_604),
        ("shufflenet_v2_150", 3_503_624),
        ("shufflenet_v2_200", 7_393_996),
        ("ghostnet", 5_182_508),
    ],
)
def test_parameters_equal_the_reference_implementations_to_the_unit(name, params):
    assert zoo.get(name).analytical()[1] == params
