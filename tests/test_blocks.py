"""The block-spec language: strict decoding, canonical round trips, and the analytical per-block
formulas against what the built ONNX counts."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roofline
from roofline.dtypes import PRECISION_BYTES
from roofline.ops.conv import same_output_size, same_padding
from roofline.zoo.blocks import ACTS, Block, BlockSpecError, block_layers, decode, encode, network_cost
from roofline.zoo.builder import NetworkBuilder, build_network

# one network per block type and variant: a stem, the block under test, a head
VARIANTS = {
    "conv": "conv_k5_s2_c24",
    "ds": "ds_k3_s2_c48",
    "ir": "ir_k3_e6_c32",
    "ir-e1": "ir_k5_s2_c40",
    "ir-se": "ir_k5_e3_c32_se0.25_hs",
    "ir-sei": "ir_k3_s2_e6_c48_sei0.25_sw",
    "ir-noskip": "ir_k3_e4_c32_noskip",
    "fused": "fused_k3_s2_e4_c48",
    "uib-ib": "uib_a0_k3_e4_c32",
    "uib-convnext": "uib_a5_k0_s2_e4_c48",
    "uib-extradw": "uib_a3_k5_s2_e4_c48_ls",
    "uib-ffn": "uib_a0_k0_e2_c32_ls",
    "mqa": "mqa_h4_d16_c32_ls",
    "mqa-kv2": "mqa_h2_d16_k3_v2_c32",
    "mqa-q2": "mqa_h2_d8_v2_q2_c32_ls",
    "maxpool": "maxpool_k3_s2",
    "shuffle2": "shuffle2_c32",
    "shuffle2-s2": "shuffle2_s2_c48",
    "shuffle2-widen": "shuffle2_k5_c48",
    "shuffle1": "shuffle1_g4_c32",
    "shuffle1-s2": "shuffle1_s2_g2_c80_hs",
    "shuffle1-dense": "shuffle1_s2_g4_c64_dense",
    "ghost": "ghost_e3_c32",
    "ghost-s2-se": "ghost_k5_s2_e3_c40_se0.25",
    "ghost-odd": "ghost_k3_e1.5_c27_se0.25",
    "head-mnv4": "head_c64_f96_n10_bn",
    "head-v3": "head_f96_n10_hs",
    "head-v1": "head_n10",
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_built_block_counts_like_its_formula_and_runs(variant):
    spec = f"conv_k3_s2_c32 {VARIANTS[variant]}" + ("" if variant.startswith("head") else " head_n10")
    model = build_network(spec, 64, weights="random")
    table = roofline.count(model)
    macs, params = network_cost(decode(spec), 64)
    assert (table.macs.sum(), roofline.totals(table)["params"]) == (macs, params)
    out = ort.InferenceSession(model.SerializeToString()).run(None, {"input": np.ones((1, 3, 64, 64), np.float32)})[0]
    assert out.shape == (1, 10) and np.isfinite(out).all()


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_block_layers_equal_the_counted_runtime_layers(variant, precision):
    # layer by layer, in order: MACs, weight bytes and activation bytes of the fused layers
    (block,) = decode(VARIANTS[variant])
    second = block.c // 2 if block.type == "shuffle1" and block.s > 1 else block.c or 24  # s2: c_in < c
    for cin, hw in ((32, (16, 16)), (second, (9, 7))):
        b = NetworkBuilder("block", (1, cin, *hw))
        out = b.block(b.input, block)
        table = roofline.count(b.model(out), fuse="runtime", weight_dtype=precision, activation_dtype=precision)
        layers, cout, out_hw = block_layers(block, cin, hw)
        size = PRECISION_BYTES[precision]
        got = [(lay.kind, lay.macs, lay.weights * size, (lay.reads + lay.writes) * size) for lay in layers]
        want = list(zip(table.kind, table.macs, table.weight_bytes, table.input_bytes + table.output_bytes))
        assert got == want, variant
        assert b.shapes[out] == (1, cout, *out_hw) or block.type == "head"  # (a channel shuffle ends in a view)


def test_hand_computed_uib_extradw():
    # 32 -> uib a3 k5 s2 e4 c48 on 16x16: start dw 3x3 on 32 ch at 16x16 = 73,728; expand 1x1 32->128 at
    # 16x16 = 1,048,576; middle dw 5x5 s2 on 128 ch at 8x8 = 204,800; project 128->48 at 8x8 = 393,216
    blocks = decode("uib_a3_k5_s2_e4_c48")
    macs, params = network_cost(blocks, 16, in_channels=32)
    assert macs == 73_728 + 1_048_576 + 204_800 + 393_216
    # weights 288 + 4096 + 3200 + 6144, BN 2 x (32 + 128 + 128 + 48)
    assert params == 288 + 4096 + 3200 + 6144 + 2 * (32 + 128 + 128 + 48)


def test_hand_computed_mqa():
    # c32 on 8x8 (N = 64), h2 d16, kv stride 2 (M = 16): q 64*32*32 = 65,536; k and v: dw 3x3 16*32*9 = 4,608
    # and 1x1 16*32*16 = 8,192 each; scores and values 2 * 64*2*16*16 = 65,536; out 64*32*32 = 65,536
    macs, _ = network_cost(decode("mqa_h2_d16_v2_c32"), 8, in_channels=32)
    assert macs == 65_536 + 2 * (4_608 + 8_192) + 65_536 + 65_536


def test_hand_computed_shuffle2_and_ghost():
    # shuffle2 c32 on 16x16 (256 px): the branch sees one half, 16 ch: 1x1 16*16*256 = 65,536, dw 3x3
    # 16*9*256 = 36,864, 1x1 65,536; weights 256 + 144 + 256, BN 2 x 48
    assert network_cost(decode("shuffle2_c32"), 16, in_channels=32) == (65_536 + 36_864 + 65_536, 656 + 96)
    # ghost e3 c32 on 8x8 (64 px), m = 96: primary 1x1 32->48 = 98,304, cheap dw 3x3 48 = 27,648; then
    # primary 1x1 96->16 = 98,304, cheap dw 3x3 16 = 9,216; identity shortcut
    macs, _ = network_cost(decode("ghost_e3_c32"), 8, in_channels=32)
    assert macs == 98_304 + 27_648 + 98_304 + 9_216


@pytest.mark.parametrize(
    "spec,message",
    [
        ("uib_a3_k5_z2_c80", r"block 1 'uib_a3_k5_z2_c80': unknown option.*token 'z2'"),
        ("conv_k3_c32 uib_a4_k3_e4_c32", r"block 2 .*UIB depthwise kernels are 0 \(absent\), 3, 5 or 7.*token 'a4'"),
        ("conv_k3_c32 iib_k3_c32", r"block 2 'iib_k3_c32': unknown block type \(did you mean 'uib'\?\).*token 'iib'"),
        ("conv_k3_c32 uib_a3_k3_c32", r"uib blocks need option\(s\) e"),
        ("conv_k3_k5_c32", r"option 'k' given twice.*token 'k5'"),
        ("conv_k2_c32", r"kernels must be odd.*token 'k2'"),
        ("conv_k3_s1.5_c32", r"option 's' takes a whole number.*token 's1.5'"),
        ("conv_k3_c32_ls", r"conv blocks do not take the flag 'ls'"),
        ("ir_k3_e6_c32_se0.25_sei0.25", r"either se or sei"),
        ("conv_k3_c32_relu", r"unknown option.*token 'relu'"),
        ("shuffle2_s2_c33", r"must be even.*token 'c33'"),
        ("shuffle1_s2_c240", r"shuffle1 blocks need option\(s\) g"),
        ("maxpool_k3", r"maxpool blocks need option\(s\) s"),
        ("ghost_e3_c32_dense", r"ghost blocks do not take the flag 'dense'"),
        ("", r"non-empty string"),
    ],
)
def test_malformed_specs_name_the_bad_token(spec, message):
    with pytest.raises(BlockSpecError, match=message):
        decode(spec)


def test_block_spec_errors_are_parameter_errors_not_device_spec_errors():
    from roofline.errors import InvalidParameterError, SpecError

    with pytest.raises(BlockSpecError) as info:
        decode("conv_k2_c32")
    assert isinstance(info.value, InvalidParameterError) and not isinstance(info.value, SpecError)


def test_same_padding_keeps_ceil_size_over_stride_for_odd_kernels():
    # the one rule the analytical costs, the builder and the kernel models share: pads k // 2 each side
    sizes = [(n, k, s) for n in range(1, 20) for k in (1, 3, 5, 7) for s in (1, 2, 3)]
    assert [same_output_size(n, k, s) for n, k, s in sizes] == [-(-n // s) for n, _, s in sizes]
    assert [same_padding(k) for k in (1, 3, 5, 7)] == [0, 1, 2, 3]


def test_cli_reports_a_bad_spec_in_one_line(capsys):
    from roofline.cli import main

    assert main(["zoo", "show", "conv_k3_c32 uib_a3_k5_z2_c80"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "token 'z2'" in err


blocks = st.one_of(
    st.builds(Block, type=st.just("conv"), c=st.integers(1, 512), k=st.sampled_from([1, 3, 5, 7]), s=st.integers(1, 2),
              act=st.sampled_from(sorted(ACTS)), x=st.integers(1, 4)),
    st.builds(Block, type=st.just("ir"), c=st.integers(1, 512), k=st.sampled_from([3, 5]), s=st.integers(1, 2),
              e=st.sampled_from([1.0, 2.5, 4.0, 6.0]), se=st.sampled_from([0.0, 0.25]), noskip=st.booleans()),
    st.builds(Block, type=st.just("uib"), c=st.integers(1, 512), a=st.sampled_from([0, 3, 5]), k=st.sampled_from([0, 3, 5]),
              s=st.integers(1, 2), e=st.sampled_from([2.0, 4.0]), ls=st.booleans(), x=st.integers(1, 5)),
    st.builds(Block, type=st.just("mqa"), c=st.integers(1, 512), h=st.integers(1, 8), d=st.integers(8, 64),
              v=st.integers(1, 2), q=st.integers(1, 2), ls=st.booleans()),
    st.builds(Block, type=st.just("maxpool"), k=st.sampled_from([1, 3, 5]), s=st.integers(1, 3)),
    st.builds(Block, type=st.just("shuffle2"), c=st.integers(1, 512).map(lambda c: 2 * c), k=st.sampled_from([3, 5]),
              s=st.integers(1, 2), x=st.integers(1, 8)),
    st.builds(Block, type=st.just("shuffle1"), c=st.integers(1, 960), g=st.integers(1, 8), s=st.integers(1, 2),
              dense=st.booleans(), act=st.sampled_from(sorted(ACTS))),
    st.builds(Block, type=st.just("ghost"), c=st.integers(1, 512), k=st.sampled_from([3, 5]), s=st.integers(1, 2),
              e=st.sampled_from([1.0, 2.3, 3.0, 6.0]), se=st.sampled_from([0.0, 0.25])),
    st.builds(Block, type=st.just("head"), c=st.integers(0, 960), f=st.integers(0, 1280), n=st.integers(1, 1000),
              bn=st.booleans(), act=st.sampled_from(sorted(ACTS))),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(blocks, min_size=1, max_size=6))
def test_decode_encode_round_trip(bs):
    text = encode(bs)
    assert decode(text) == bs
    assert encode(decode(text)) == text


def test_zoo_specs_are_canonical_up_to_spelling():
    for name in roofline.zoo.list_models():
        spec = roofline.zoo.get(name).spec
        assert decode(encode(decode(spec))) == decode(spec)
