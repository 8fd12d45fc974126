"""A compact, strict block-spec language for mobile networks.

A network is a whitespace-separated list of blocks; a block is ``type_option_option...``:

======== ===================================================== ==================================
type     what                                                  options (default)
======== ===================================================== ==================================
conv     k x k conv + BN + act                                 k (3), s (1), c
ds       depthwise-separable (MobileNetV1): dw k x k + pw      k (3), s (1), c
ir       inverted bottleneck (MobileNetV2/V3, MnasNet,         k (3), s (1), e (1), c, se / sei
         EfficientNet): 1x1 expand, dw k x k, [SE], 1x1
fused    FusedIB: k x k conv to c_in*e, then 1x1 projection    k (3), s (1), e, c
uib      Universal Inverted Bottleneck: [start dw a x a],      a (0), k (0), s (1), e, c
         1x1 expand, [middle dw k x k], 1x1 project
         (a0_k3 = IB, a3_k0 = ConvNext, a3_k5 = ExtraDW, a0_k0 = FFN)
mqa      Mobile multi-query attention: h heads of key/value    h, d, k (3), v (1), q (1), c
         dim d, keys/values down-sampled by a stride-v k x k
         dw conv, queries by a stride-q one
head     [1x1 conv c + BN + act], global pool,                 c (0), f (0), n (1000)
         [1x1 conv f + act], classifier n
maxpool  k x k max pool, stride s (ShuffleNet stems)           k (3), s
shuffle2 ShuffleNet V2 unit: split, 1x1, dw k x k, 1x1 on      k (3), s (1), c (even)
         one half, concat, shuffle (both branches, dw +
         1x1 | 1x1, dw, 1x1, read all if s > 1 or c_in != c)
shuffle1 ShuffleNet V1 unit: 1x1 group conv to c/4, shuffle,   k (3), s (1), g, c
         dw k x k, 1x1 group conv, + input; if s > 1:
         concat with a 3x3 avg-pool of the input; act
ghost    GhostNet bottleneck: ghost module to m = c_in*e,      k (3), s (1), e (1), c, se
         [dw k x k if s > 1], [SE], ghost module to c (no
         act), + input (or dw k x k + 1x1 if shape changes);
         ghost module: 1x1 to ceil(m/2), dw 3x3, concat
======== ===================================================== ==================================

Every block also takes ``x`` (repeats; only the first repeat is strided) and the flags ``re`` (ReLU, default),
``r6`` (ReLU6), ``hs`` (hard-swish), ``sw`` (swish), ``ge`` (GELU); ``ls`` (layer scale, uib and mqa),
``noskip`` (no residual, ir/fused/uib), ``bn`` (head: BatchNorm instead of a bias after the post-pool conv,
as in MobileNetV4) and ``dense`` (shuffle1: the first 1x1 conv ungrouped, as in ShuffleNet V1's first unit).
``se0.25`` is a MobileNetV3 squeeze-excite (width a quarter of the expanded channels rounded to 8, ReLU,
hard-sigmoid gate), or on a ghost block GhostNet's (the same, rounded to 4); ``sei0.25`` the MnasNet/EfficientNet
one (a quarter of the block's input channels, the block's activation, sigmoid).

Example, MobileNetV4-Conv-S: ``conv_k3_s2_c32 conv_k3_s2_c32 conv_k1_c32 ... uib_a5_k5_s2_e3_c96
uib_a0_k3_e2_c96_x4 ... head_c960_f1280_n1000_bn``. ``decode`` is strict (an unknown or malformed
token is an error pointing at it) and ``encode(decode(s))`` gives the canonical spelling of ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

from roofline.errors import BlockSpecError, did_you_mean
from roofline.ops.conv import conv_kind, same_output_size
from roofline.zoo.blocks_shuffle import FAMILY_TYPES, family_layers, make_divisible

__all__ = ["Block", "decode", "encode", "BlockSpecError", "make_divisible", "block_cost", "block_layers", "expanded",
           "LayerCost", "network_cost"]  # fmt: skip

ACTS = {"re": "relu", "r6": "relu6", "hs": "hswish", "sw": "swish", "ge": "gelu"}
_FLAGS = {"ls", "noskip", "bn", "dense"}
# option letters each block type takes (besides x and the activation flags), and which are required
_OPTIONS = {
    "conv": ({"k", "s", "c"}, {"c"}, set()),
    "ds": ({"k", "s", "c"}, {"c"}, set()),
    "ir": ({"k", "s", "e", "c", "se", "sei"}, {"c"}, {"noskip"}),
    "fused": ({"k", "s", "e", "c"}, {"c", "e"}, {"noskip"}),
    "uib": ({"a", "k", "s", "e", "c"}, {"c", "e"}, {"ls", "noskip"}),
    "mqa": ({"h", "d", "k", "v", "q", "c"}, {"h", "d", "c"}, {"ls"}),
    "head": ({"c", "f", "n"}, {"n"}, {"bn"}),
    "maxpool": ({"k", "s"}, {"s"}, set()),
    "shuffle2": ({"k", "s", "c"}, {"c"}, set()),
    "shuffle1": ({"k", "s", "g", "c"}, {"c", "g"}, {"dense"}),
    "ghost": ({"k", "s", "e", "c", "se"}, {"c"}, set()),
}
_DEFAULTS = {"k": 3, "s": 1, "e": 1.0, "a": 0, "v": 1, "q": 1, "c": 0, "f": 0, "n": 1000, "x": 1, "g": 1}
_ORDER = ("a", "k", "s", "g", "e", "h", "d", "v", "q", "c", "f", "n", "se", "sei")
_TOKEN = re.compile(r"^([a-z]+?)(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Block:
    """One block of a network spec; see the module docstring for the meaning of each field."""

    type: str
    c: int = 0
    k: int = 3
    s: int = 1
    e: float = 1.0
    a: int = 0
    h: int = 0
    d: int = 0
    v: int = 1
    q: int = 1
    f: int = 0
    n: int = 1000
    se: float = 0.0
    sei: float = 0.0
    g: int = 1
    act: str = "re"
    ls: bool = False
    noskip: bool = False
    bn: bool = False
    dense: bool = False
    x: int = 1

    @property
    def activation(self) -> str:
        return ACTS[self.act]


def _fail(spec: str, index: int, block: str, token: str, why: str) -> BlockSpecError:
    return BlockSpecError(f"block {index + 1} {block!r}: {why} (token {token!r} in spec {_excerpt(spec, block)})")


def _excerpt(spec: str, block: str) -> str:
    i = spec.find(block)
    lo, hi = max(0, i - 25), min(len(spec), i + len(block) + 25)
    return repr(("..." if lo else "") + spec[lo:hi] + ("..." if hi < len(spec) else ""))


def decode(spec: str) -> list[Block]:
    """Parse a network spec into blocks; every malformed or unknown token is an error naming it."""
    if not isinstance(spec, str) or not spec.split():
        raise BlockSpecError(f"a network spec must be a non-empty string of blocks, got {spec!r}")
    blocks = []
    for index, text in enumerate(spec.split()):
        tokens = text.split("_")
        kind = tokens[0]
        if kind not in _OPTIONS:
            raise _fail(
                spec,
                index,
                text,
                kind,
                f"unknown block type{did_you_mean(kind, _OPTIONS)}; known: {', '.join(_OPTIONS)}",
            )
        allowed, required, flags = _OPTIONS[kind]
        values: dict[str, object] = {"type": kind}
        for token in tokens[1:]:
            if token in ACTS:
                key, value = "act", token
            elif token in _FLAGS:
                if token not in flags:
                    raise _fail(spec, index, text, token, f"{kind} blocks do not take the flag {token!r}")
                key, value = token, True
            else:
                m = _TOKEN.match(token)
                if not m or (m.group(1) not in allowed and m.group(1) != "x"):
                    names = sorted(allowed | {"x"}) + sorted(flags) + sorted(ACTS)
                    hint = did_you_mean(m.group(1) if m else token, names)
                    raise _fail(spec, index, text, token, f"unknown option{hint}; {kind} takes {', '.join(names)}")
                key, number = m.group(1), m.group(2)
                if key in ("e", "se", "sei"):
                    value = float(number)
                elif "." in number:
                    raise _fail(spec, index, text, token, f"option {key!r} takes a whole number")
                else:
                    value = int(number)
            if key in values:
                raise _fail(spec, index, text, token, f"option {key!r} given twice")
            values[key] = value
        if kind == "uib":
            values.setdefault("k", 0)  # a UIB's middle depthwise conv is absent unless given
        missing = sorted(required - values.keys())
        if missing:
            raise _fail(spec, index, text, text, f"{kind} blocks need option(s) {', '.join(missing)}")
        if values.get("se") and values.get("sei"):
            raise _fail(spec, index, text, text, "give either se or sei, not both")
        block = Block(**values)  # type: ignore[arg-type]
        _check(spec, index, text, block)
        blocks.append(block)
    return blocks


def _check(spec: str, index: int, text: str, b: Block) -> None:
    def bad(token, why):
        raise _fail(spec, index, text, token, why)

    if b.x < 1 or b.s < 1 or b.v < 1 or b.q < 1 or b.g < 1:
        bad(text, "repeats and strides must be >= 1")
    if b.type in ("conv", "ds", "ir", "fused", "uib", "mqa", "shuffle2", "shuffle1", "ghost") and b.c < 1:
        bad(f"c{b.c}", "output channels must be >= 1")
    if b.type == "shuffle2" and b.c % 2:
        bad(f"c{b.c}", "a shuffle2 unit's output channels must be even (two halves)")
    if b.type == "uib":
        for name, kernel in (("a", b.a), ("k", b.k)):
            if kernel not in (0, 3, 5, 7):
                bad(f"{name}{kernel}", "UIB depthwise kernels are 0 (absent), 3, 5 or 7")
    elif b.k < 1 or b.k % 2 == 0:
        bad(f"k{b.k}", "kernels must be odd and >= 1")
    if b.e <= 0 or b.se < 0 or b.sei < 0:
        bad(text, "expansion and SE ratios must be positive")
    if b.type == "mqa" and (b.h < 1 or b.d < 1):
        bad(text, "mqa needs h >= 1 heads and d >= 1 key dimensions")


def encode(blocks: list[Block]) -> str:
    """The canonical spec string of ``blocks`` (``decode(encode(b)) == b``)."""
    out = []
    for b in blocks:
        allowed, required, _ = _OPTIONS[b.type]
        parts = [b.type]
        for key in _ORDER:
            if key not in allowed:
                continue
            value = getattr(b, key)
            if key in required or key == "k" or (b.type == "uib" and key == "a") or value != _DEFAULTS.get(key, 0.0):
                parts.append(f"{key}{_num(value)}")
        parts += [flag for flag in ("ls", "noskip", "bn", "dense") if getattr(b, flag)]
        if b.act != "re":
            parts.append(b.act)
        if b.x != 1:
            parts.append(f"x{b.x}")
        out.append("_".join(parts))
    return " ".join(out)


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@lru_cache(maxsize=65536)
def expanded(spec: str) -> tuple[Block, ...]:
    """``expand(decode(spec))``, cached per block token: what fast evaluation reads."""
    return tuple(b for token in spec.split() for b in _expanded_token(token))


@lru_cache(maxsize=4096)
def _expanded_token(token: str) -> tuple[Block, ...]:
    return tuple(expand(decode(token)))


def expand(blocks: list[Block]) -> list[Block]:
    """One block per repeat: the first keeps the stride, the others have stride 1."""
    out = []
    for b in blocks:
        out.append(replace(b, x=1))
        out += [replace(b, x=1, s=1)] * (b.x - 1)
    return out


def widen(blocks: list[Block], width: float) -> list[Block]:
    """Scale every block's channels by ``width`` (rounded to 8); a head's pre-pool conv never shrinks."""
    if width == 1.0:
        return list(blocks)
    out = []
    for b in blocks:
        if b.type == "head":
            out.append(replace(b, c=max(b.c, make_divisible(b.c * width)) if b.c else 0))
        else:  # (a maxpool block has no channels of its own)
            out.append(replace(b, c=make_divisible(b.c * width) if b.c else 0))
    return out


# ---- analytical costs: the formulas the built ONNX is checked against --------------------------


def mid_channels(b: Block, cin: int) -> int:
    """Expanded width of an ir/fused/uib block (an ir block with e1 has no expansion conv)."""
    return cin if b.type == "ir" and b.e == 1 else make_divisible(cin * b.e)


def se_channels(b: Block, cin: int, mid: int) -> int:
    if b.se:
        return make_divisible(mid * b.se)
    return max(1, int(cin * b.sei))


class LayerCost(NamedTuple):
    """One layer a runtime executes (after ``fuse="runtime"``), in elements: MACs, trainable
    parameters (BN counts 2 per channel), weight elements it reads (BN folded into one bias), and
    activation elements read and written. Bytes = weights x weight size + (reads + writes) x
    activation size."""

    macs: int
    params: int
    weights: int
    reads: int
    writes: int
    kind: str = "elementwise"  # the layer kind, as ``roofline.count`` labels it


@lru_cache(maxsize=65536)
def block_layers(b: Block, cin: int, hw: tuple[int, int]) -> tuple[tuple[LayerCost, ...], int, tuple[int, int]]:
    """The layers of one (unrepeated) block as ``roofline.count(fuse="runtime")`` finds them in the
    ONNX the builder writes (same order), its output channels and output H x W."""
    layers, cout, out_hw = _block_layers(b, cin, tuple(hw))
    return tuple(layers), cout, out_hw


def _block_layers(b: Block, cin: int, hw: tuple[int, int]) -> tuple[list[LayerCost], int, tuple[int, int]]:
    layers: list[LayerCost] = []

    def conv(ci, co, k, size, s=1, groups=1, bn=True, bias=False):
        out = (same_output_size(size[0], k, s), same_output_size(size[1], k, s))
        w = co * (ci // groups) * k * k
        extra = co if (bn or bias) else 0  # a BN folds into one bias vector
        macs = co * out[0] * out[1] * (ci // groups) * k * k
        layers.append(LayerCost(macs, w + (2 * co if bn else extra), w + extra, ci * size[0] * size[1],
                                co * out[0] * out[1], conv_kind(ci, groups, (k, k))))  # fmt: skip
        return out

    def move(reads, writes, macs=0, params=0, weights=0, kind="elementwise"):
        layers.append(LayerCost(macs, params, weights, reads, writes, kind))

    def residual(c, size):
        if b.s == 1 and cin == c and not b.noskip:
            move(2 * c * size[0] * size[1], c * size[0] * size[1])

    pixels = hw[0] * hw[1]
    if b.type == "conv":
        return layers, b.c, conv(cin, b.c, b.k, hw, b.s)
    if b.type == "ds":
        out_hw = conv(cin, cin, b.k, hw, b.s, groups=cin)
        conv(cin, b.c, 1, out_hw)
        return layers, b.c, out_hw
    if b.type == "ir":
        mid = mid_channels(b, cin)
        if b.e != 1:
            conv(cin, mid, 1, hw)
        out_hw = conv(mid, mid, b.k, hw, b.s, groups=mid)
        if b.se or b.sei:
            r, n = se_channels(b, cin, mid), out_hw[0] * out_hw[1]
            move(mid * n, mid, kind="pool")  # global pool
            conv(mid, r, 1, (1, 1), bn=False, bias=True)
            conv(r, mid, 1, (1, 1), bn=False, bias=True)
            move(mid * n + mid, mid * n)  # gate
        conv(mid, b.c, 1, out_hw)
        residual(b.c, out_hw)
        return layers, b.c, out_hw
    if b.type == "fused":
        out_hw = conv(cin, mid_channels(b, cin), b.k, hw, b.s)
        conv(mid_channels(b, cin), b.c, 1, out_hw)
        residual(b.c, out_hw)
        return layers, b.c, out_hw
    if b.type == "uib":
        mid, out_hw = mid_channels(b, cin), hw
        if b.a:
            out_hw = conv(cin, cin, b.a, hw, 1 if b.k else b.s, groups=cin)
        conv(cin, mid, 1, out_hw)
        if b.k:
            out_hw = conv(mid, mid, b.k, out_hw, b.s, groups=mid)
        conv(mid, b.c, 1, out_hw)
        if b.ls:  # the layer scale folds into the projection: parameters, not traffic
            layers[-1] = layers[-1]._replace(params=layers[-1].params + b.c)
        residual(b.c, out_hw)
        return layers, b.c, out_hw
    if b.type == "mqa":
        hd = b.h * b.d
        move(cin * pixels, cin * pixels, params=2 * cin, weights=4 * cin, kind="norm")  # input BN, standalone
        q_hw = conv(cin, cin, b.k, hw, b.q, groups=cin) if b.q > 1 else hw
        n = q_hw[0] * q_hw[1]
        conv(cin, hd, 1, q_hw, bn=False)
        move(hd * n, hd * n, kind="data-movement")  # queries to (heads, N, d)
        for _ in ("key", "value"):
            kv_hw = conv(cin, cin, b.k, hw, b.v, groups=cin) if b.v > 1 else hw
            conv(cin, b.d, 1, kv_hw, bn=False)
        m = kv_hw[0] * kv_hw[1]
        move(b.d * m, b.d * m, kind="data-movement")  # values to (M, d)
        move(hd * n + b.d * m, b.h * n * m, macs=hd * n * m, kind="matmul")  # scores Q.K^T (scaled)
        move(b.h * n * m, b.h * n * m, kind="softmax")  # softmax
        move(b.h * n * m + b.d * m, hd * n, macs=hd * n * m, kind="matmul")  # weighted values P.V
        move(hd * n, hd * n, kind="data-movement")  # back to (h*d, N)
        if b.q > 1:
            move(hd * n, hd * pixels, kind="resize")  # queries resized back to H x W
        conv(hd, b.c, 1, hw, bn=False)
        if b.ls:
            layers[-1] = layers[-1]._replace(params=layers[-1].params + b.c)
        residual(b.c, hw)
        return layers, b.c, hw
    if b.type == "head":
        c = cin
        if b.c:
            conv(c, b.c, 1, hw)
            c = b.c
        move(c * pixels, c, kind="pool")  # global pool
        if b.f:
            conv(c, b.f, 1, (1, 1), bn=b.bn, bias=not b.bn)
            c = b.f
        move(c, b.n, macs=c * b.n, params=c * b.n + b.n, weights=c * b.n + b.n, kind="gemm")  # classifier
        return layers, b.n, (1, 1)
    if b.type in FAMILY_TYPES:  # maxpool, shuffle2, shuffle1, ghost
        return layers, *family_layers(b, cin, hw, conv, move, mid_channels)
    raise BlockSpecError(f"unknown block type {b.type!r}")


def block_cost(b: Block, cin: int, hw: tuple[int, int]) -> tuple[int, int, int, tuple[int, int]]:
    """(MACs, params, output channels, output H x W) of one (unrepeated) block; BN counts 2 params
    per channel (scale and bias), MACs count convolutions and attention matrix products only."""
    layers, cout, out_hw = block_layers(b, cin, hw)
    return sum(layer.macs for layer in layers), sum(layer.params for layer in layers), cout, out_hw


def network_cost(blocks: list[Block] | str, resolution: int, in_channels: int = 3) -> tuple[int, int]:
    """Analytical (MACs, params) of a whole network (blocks or a spec) at ``resolution`` x ``resolution``."""
    macs = params = 0
    c, hw = in_channels, (resolution, resolution)
    for b in expanded(blocks) if isinstance(blocks, str) else expand(blocks):
        m, p, c, hw = block_cost(b, c, hw)
        macs, params = macs + m, params + p
    return macs, params
