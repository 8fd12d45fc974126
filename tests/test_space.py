"""Search spaces: every candidate is a valid spec that builds as ONNX and counts as its formulas say."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.errors import InvalidParameterError
from roofline.search.fasteval import Evaluator
from roofline.search.space import ScalingSpace, Stage, UibSpace
from roofline.zoo.blocks import Block, decode, encode, network_cost
from roofline.zoo.builder import build_network


def test_uib_candidates_build_and_count_as_their_formulas():
    space = UibSpace()
    per_stage = [
        2 * 3 * 3 * 3 * 3 * 2,
        3 * 3 * 3 * 3 * 3,
        4 * 3 * 3 * 3 * 3 * 2,
    ]  # depth, width, e, a, k (, fused / mqa)
    assert space.size == per_stage[0] * per_stage[1] * per_stage[2] * 3  # x 3 resolutions
    for cand in space.sample(4, seed=1):
        model = build_network(cand.spec, cand.resolution)
        counted = roofline.totals(roofline.count(model))
        macs, params = network_cost(decode(cand.spec), cand.resolution)
        assert counted["macs"] == macs and counted["params"] == params
    assert [c.spec for c in space.sample(3, seed=7)] == [c.spec for c in space.sample(3, seed=7)]  # repeatable


def test_mqa_and_strided_stage_openers():
    stage = Stage(depths=(2,), widths=(64,), expansions=(4.0,), start_kernels=(0,), middle_kernels=(0,), mqa=(True,))
    space = UibSpace(stages=(stage,), resolutions=(96,))
    (only,) = space.enumerate()
    blocks = decode(only.spec)
    assert [b.type for b in blocks] == ["conv", "fused", "uib", "uib", "mqa", "head"]
    assert (blocks[2].k, blocks[2].s) == (3, 2)  # an FFN cannot stride: the opener gets a 3x3 depthwise


def test_per_block_kernels_give_each_block_its_own_depthwise_choices():
    stage, plain = UibSpace(), UibSpace(per_block_kernels=True)
    names = [n for n, _ in plain.decisions()]
    assert [n for n, _ in stage.decisions()][:7] == ["s0.depth", "s0.width", "s0.expansion", "s0.start_k",
                                                      "s0.middle_k", "s0.mqa", "s0.fused"]  # fmt: skip
    assert names[:7] == ["s0.depth", "s0.width", "s0.expansion", "s0.b0.start_k", "s0.b0.middle_k",
                         "s0.b1.start_k", "s0.b1.middle_k"]  # fmt: skip
    assert len(names) == 3 * 5 + 2 * (2 + 4 + 5) + 1 and stage.size == 153_055_008  # the default genome unchanged
    index = {n: i for i, n in enumerate(names)}
    for cand in stage.sample(200, seed=2):  # the per-stage kernels on every block: the same network, except
        chosen = dict(zip([n for n, _ in stage.decisions()], cand.genes))  # FFN stages (a 3x3 only for the opener)
        genes = [chosen[n.split(".")[0] + "." + n.split(".")[-1]] if n.count(".") == 2 else chosen[n] for n in names]
        ffn = any(chosen[f"s{i}.start_k"] == chosen[f"s{i}.middle_k"] == 0 for i in range(3))
        assert ffn or plain.candidate(genes).spec == cand.spec
    genes = [0] * len(names)  # depth 1, 2, 2: no kernels of blocks beyond; every block an FFN (openers: 3x3)
    genes[index["s1.b1.start_k"]] = 2
    only = plain.candidate(genes)
    assert [(b.a, b.k) for b in decode(only.spec) if b.type == "uib"] == [(0, 3), (0, 3), (5, 0), (0, 3), (0, 0)]
    active = {names[i] for i in plain.active(genes)}
    assert {"s1.b1.start_k", "s2.b1.middle_k", "s0.b0.middle_k"} <= active
    assert not active & {"s0.b1.start_k", "s1.b2.start_k", "s2.b4.middle_k"}  # blocks beyond the depth
    genes[index["s0.fused"]] = 1
    assert "s0.b0.start_k" not in {names[i] for i in plain.active(genes)}  # a FusedIB has no start kernel
    model = build_network(only.spec, only.resolution)  # per-block candidates build and count as their formulas
    assert roofline.totals(roofline.count(model))["macs"] == network_cost(decode(only.spec), only.resolution)[0]


def test_genes_are_checked():
    with pytest.raises(InvalidParameterError, match="do not fit this space"):
        UibSpace().candidate((0,) * 3)


def test_scaling_space_scales_width_depth_resolution():
    space = ScalingSpace("mobilenet_v2", widths=(0.5, 1.0), depths=(1.0, 2.0), resolutions=(128, 224))
    cands = {c.genes: c for c in space.enumerate()}
    assert len(cands) == 8
    base = cands[(1, 0, 1)]
    assert network_cost(decode(base.spec), 224)[0] == pytest.approx(300.8e6, rel=0.01)  # MobileNetV2 1.0
    macs = {g: network_cost(decode(c.spec), c.resolution)[0] for g, c in cands.items()}
    assert macs[(0, 0, 1)] < macs[(1, 0, 1)] < macs[(1, 1, 1)] and macs[(1, 0, 0)] < macs[(1, 0, 1)]


def test_fast_evaluation_equals_predicting_the_built_network():
    from roofline.devices import validate_spec
    from roofline.search.fasteval import Evaluator

    # ridge-only, datasheet, a memory model plus a fitted constant (coral), and a fitted spec: per-kind
    # peaks, bandwidths and overheads, cold weights, a network constant
    phone = {
        "name": "phone", "display_name": "phone", "kind": "cpu", "default_precision": "int8", "provenance": "fitted",
        "sources": ["a test"], "peak_macs_per_s": {"int8": 5e10}, "bandwidth_bytes_per_s": 5e9,
        "calibration": {"conv": {"peak_macs_per_s": 4e10, "bandwidth_bytes_per_s": 6e9, "overhead_s": 2e-5},
                        "depthwise": {"peak_macs_per_s": 1e10, "bandwidth_bytes_per_s": 4e9, "overhead_s": 1e-5},
                        "softmax": {"bandwidth_bytes_per_s": 1e9, "overhead_s": 3e-5},
                        "weights": {"bandwidth_bytes_per_s": 8e9}, "network": {"overhead_s": 4e-4}}}  # fmt: skip
    fitted = validate_spec(phone, "phone")
    # the same phone with a measured cache: weights come cold only from networks that outgrow it
    cached = validate_spec({**phone, "name": "cached", "calibration": {
        **phone["calibration"], "weights": {"bandwidth_bytes_per_s": 8e9, "cache_bytes": 3e6}}}, "cached")  # fmt: skip
    devices = ["pixel6_cpu", "pixel4_dsp", "jetson_orin_nano", "coral_edgetpu", fitted, cached, "snapdragon855_hexagon"]
    ev = Evaluator(devices, precision="int8")
    cands = UibSpace().sample(3, seed=2) + ScalingSpace("mobilenet_v3_large").sample(2, seed=2)
    fast = ev.latency(cands)
    assert ev.columns == [
        "pixel6_cpu",
        "pixel4_dsp",
        "jetson_orin_nano",
        "coral_edgetpu",
        "phone",
        "cached",
        "snapdragon855_hexagon",
    ]  # the last: datasheet numbers with fitted efficiencies
    assert list(ev.relative) == [True, True, False, False, False, False, False]
    assert (fast[:, 5] < fast[:, 4]).any() and (fast[:, 5] == fast[:, 4]).any()  # both sides of the cache
    for row, cand in zip(fast, cands):
        pred = roofline.predict(build_network(cand.spec, cand.resolution), devices, precision="int8").totals
        slow = [pred.latency_mac_equiv.iloc[0], pred.latency_mac_equiv.iloc[1], *pred.latency_ms.iloc[2:]]
        assert row == pytest.approx(slow, rel=1e-9)


def test_mnasnet_reward_soft_and_hard_by_hand():
    from roofline.search.objectives import HARD, mnasnet_reward, multi_device_reward

    assert mnasnet_reward(0.75, 75.0, 75.0) == pytest.approx(0.75)
    assert mnasnet_reward(0.75, 150.0, 75.0) == pytest.approx(0.75 * 2**-0.07)  # soft: 2x slower costs ~5%
    assert mnasnet_reward(0.75, 37.5, 75.0) == pytest.approx(0.75 * 0.5**-0.07)
    assert mnasnet_reward(0.75, 37.5, 75.0, *HARD) == pytest.approx(0.75)  # hard: no bonus under T
    assert mnasnet_reward(0.75, 150.0, 75.0, *HARD) == pytest.approx(0.375)  # ... and 1/x over it
    lat = np.array([[50.0, 200.0], [100.0, 100.0]])
    worst = multi_device_reward([0.7, 0.7], lat, [100.0, 100.0], "worst", *HARD)
    assert worst == pytest.approx([0.35, 0.7])
    with pytest.raises(InvalidParameterError):
        mnasnet_reward(0.7, 0.0, 75.0)


def test_the_accuracy_proxy_is_monotone_in_size_and_near_the_zoo():
    from roofline.search.objectives import proxy_accuracy

    def spec(m):
        return m.network_spec

    zoo = [roofline.zoo.get(n) for n in roofline.zoo.list_models()]
    small = proxy_accuracy(spec(roofline.zoo.get("mobilenet_v2_050")), 224)
    assert small < proxy_accuracy(spec(roofline.zoo.get("mobilenet_v2")), 224)
    errors = [abs(proxy_accuracy(spec(m), m.resolution) - m.top1) for m in zoo if m.top1]
    assert len(errors) >= 8 and np.median(errors) < 3.0  # a size proxy: points, not fractions of a point


def test_mnas_space_is_mnasnets_factorised_space_around_mobilenet_v2():
    from roofline import zoo
    from roofline.search.space import MnasSpace

    space = MnasSpace()
    kinds = [n.split(".")[-1] for n, _ in space.decisions()]
    assert kinds[:7] == ["op", "expansion", "kernel", "se", "skip", "width", "depth"] and len(kinds) == 7 * 7 + 1
    assert space.size == 432**7  # per block 3 ops x 2 expansions x 2 kernels x 2 SE x 2 skips x 3 widths x 3 depths
    mnv2 = MnasSpace.mobilenet_v2()
    assert mnv2.candidate(mnv2.baseline_genes()).spec == encode(decode(zoo.get("mobilenet_v2").spec))
    base = decode(space.candidate(space.baseline_genes()).spec)  # MnasNet's ReLU: the same shapes
    assert [(b.type, b.c, b.k, b.s, b.e, b.x) for b in base] == [
        (b.type, b.c, b.k, b.s, b.e, b.x) for b in decode(zoo.get("mobilenet_v2").spec)
    ]
    for cand in space.sample(3, seed=4) + [space.candidate(space.baseline_genes())]:
        model = build_network(cand.spec, cand.resolution)  # candidates build and count as their formulas
        counted = roofline.totals(roofline.count(model))
        macs, params = network_cost(decode(cand.spec), cand.resolution)
        assert counted["macs"] == macs and counted["params"] == params
        ev = Evaluator(["pixel6_cpu", "pixel8_edgetpu"], precision="int8")  # and the fast evaluator prices them
        t = roofline.predict(model, ["pixel6_cpu", "pixel8_edgetpu"], precision="int8").totals
        np.testing.assert_allclose(ev.latency([cand])[0], np.where(t.relative, t.latency_mac_equiv, t.latency_ms),
                                   rtol=1e-9)  # fmt: skip


def test_mnas_space_decisions_map_to_blocks():
    from roofline.search.space import MnasSpace

    space = MnasSpace()
    names = [n for n, _ in space.decisions()]
    genes = list(space.baseline_genes())

    def block(i, **changes):
        g = list(genes)
        for kind, option in changes.items():
            g[names.index(f"s{i}.{kind}")] = space.decisions()[names.index(f"s{i}.{kind}")][1].index(option)
        return [b for b in decode(space.candidate(g).spec) if b.type != "head"][1:]

    assert block(3, op="conv", kernel=5)[3] == Block("conv", c=64, k=5, s=2, x=4)
    assert block(3, se=0.25, skip="none", expansion=3.0)[3] == Block("ir", c=64, s=2, e=3.0, sei=0.25, noskip=True, x=4)
    assert block(2, width=1.25, depth=4)[2] == Block("ir", c=40, s=2, e=6.0, x=4)
    assert len(block(0, depth=0)) == 6 and len(block(6, depth=0)) == 6  # stride-1 blocks of one layer may vanish
    assert block(1, depth=1, width=0.75)[1] == Block("ir", c=24, s=2, e=6.0)  # 18 channels round to 24
    conv = genes[:]
    conv[names.index("s3.op")] = 0
    active = {names[i] for i in space.active(conv)}
    assert {"s3.kernel", "s3.width"} <= active and not active & {"s3.se", "s3.skip", "s3.expansion"}
