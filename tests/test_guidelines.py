"""ShuffleNet V2's guideline micro-benchmarks: built as the paper describes them, counted as its equations say."""

from __future__ import annotations

import onnx
import pytest

import roofline
from roofline.errors import InvalidParameterError
from roofline.zoo.guidelines import GUIDELINES, PLATFORMS, guideline_networks, paper_speeds


def _counted(models):
    return {
        v: roofline.count(m, fuse="runtime", weight_dtype="fp32", activation_dtype="fp32") for v, m in models.items()
    }


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("guideline", GUIDELINES)
def test_each_table_holds_its_macs(guideline, platform):
    """Within a table the paper fixed the MACs; its widths hold them within 6% (G1's own widths: 5.5%)."""
    for size in (1, 2, 4):
        models = guideline_networks(guideline, platform, size)
        assert list(models) == list(paper_speeds().query("guideline == @guideline").variant.unique())
        for model in models.values():
            onnx.checker.check_model(model, full_check=True)
            assert model.graph.input[0].type.tensor_type.shape.dim[2].dim_value == 56
        macs = {v: t.macs.sum() for v, t in _counted(models).items()}
        first = next(iter(macs.values()))
        assert all(abs(m / first - 1) < 0.06 for m in macs.values()), macs


def test_g1_bytes_are_eq1():
    """Bytes of each 1x1 convolution at fp32 = 4 x (hw(c1 + c2) + c1 c2), the paper's Eq. 1."""
    paper = paper_speeds().query("guideline == 'G1' and platform == 'gpu' and size == 2")
    for (variant, table), (c1, c2) in zip(_counted(guideline_networks("G1", "gpu", 2)).items(), paper.widths):
        assert len(table) == 20 and (table.kind == "pointwise").all()
        assert table.bytes.sum() == 4 * 10 * 2 * (56 * 56 * (c1 + c2) + c1 * c2), variant


def test_g2_groups_and_the_width_that_is_not_divisible():
    models = guideline_networks("G2", "arm", 1)
    for variant, model in models.items():
        groups = {a.i for n in model.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"}
        assert groups == {int(variant.split("=")[1])}
    widths = {v: m.graph.input[0].type.tensor_type.shape.dim[1].dim_value for v, m in models.items()}
    assert widths == {"g=1": 64, "g=2": 90, "g=4": 128, "g=8": 184}  # 180 is not a multiple of 8


def test_g3_fragments_and_g4_elementwise_ops():
    for variant, model in guideline_networks("G3", "arm", 1).items():
        ops = [n.op_type for n in model.graph.node]
        k = int(variant[0])
        assert ops.count("Conv") == 10 * k and ops.count("Concat") == (10 if "parallel" in variant else 0)
    bytes_ = {}
    for variant, model in guideline_networks("G4", "arm", 1).items():
        ops = [n.op_type for n in model.graph.node]
        assert ops.count("Add") == (10 if "shortcut" in variant else 0)
        assert ops.count("Relu") == (30 if "ReLU" in variant else 0)
        bytes_[variant] = roofline.count(model, fuse="runtime").bytes.sum()
    assert bytes_["ReLU + shortcut"] == bytes_["shortcut only"] > bytes_["ReLU only"] == bytes_["neither"]


def test_paper_speeds_table():
    table = paper_speeds()
    assert len(table) == (4 + 4 + 5 + 4) * 2 * 3 and table.speed_per_s.gt(0).all()
    arm = table.query("platform == 'arm' and size == 1").set_index(["guideline", "variant"]).speed_per_s
    assert arm["G1", "1:1"] == 76.2 and arm["G4", "neither"] == 66.3  # Tables 1 and 4's ARM columns
    assert set(table.unit) == {"images/s", "batches/s"} and table.source.str.contains("1807.11164").all()


@pytest.mark.parametrize("args", [("G5",), ("G1", "cpu"), ("G1", "arm", 3)])
def test_bad_arguments(args):
    with pytest.raises(InvalidParameterError):
        guideline_networks(*args)
