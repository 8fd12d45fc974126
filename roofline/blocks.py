"""A compact, strict block-spec language for mobile networks.

A network is a whitespace-separated list of blocks; a block is ``type_option_option...``:

====== ===================================================== ==================================
type   what                                                  options (default)
====== ===================================================== ==================================
conv   k x k conv + BN + act                                 k (3), s (1), c
ds     depthwise-separable (MobileNetV1): dw k x k + pw      k (3), s (1), c
ir     inverted bottleneck (MobileNetV2/V3, MnasNet,         k (3), s (1), e (1), c, se / sei
       EfficientNet): 1x1 expand, dw k x k, [SE], 1x1
fused  FusedIB: k x k conv to c_in*e, then 1x1 projection    k (3), s (1), e, c
uib    Universal Inverted Bottleneck: [start dw a x a],      a (0), k (0), s (1), e, c
       1x1 expand, [middle dw k x k], 1x1 project
       (a0_k3 = IB, a3_k0 = ConvNext, a3_k5 = ExtraDW, a0_k0 = FFN)
mqa    Mobile multi-query attention: h heads of key/value    h, d, k (3), v (1), q (1), c
       dim d, keys/values down-sampled by a stride-v k x k
       dw conv, queries by a stride-q one
head   [1x1 conv c + BN + act], global pool,                 c (0), f (0), n (1000)
       [1x1 conv f + act], classifier n
====== ===================================================== ==================================

Every block also takes ``x`` (repeats; only the first repeat is strided) and the flags ``re`` (ReLU,
default), ``r6`` (ReLU6), ``hs`` (hard-swish), ``sw`` (swish), ``ge`` (GELU); ``ls`` (layer scale,
uib and mqa), ``noskip`` (no residual, ir/fused/uib) and ``bn`` (head: BatchNorm instead of a bias
after the post-pool conv, as in MobileNetV4). ``se0.25`` is a MobileNetV3 squeeze-excite (width a
quarter of the expanded channels rounded to 8, ReLU, hard-sigmoid gate); ``sei0.25`` the
MnasNet/EfficientNet one (a quarter of the block's input channels, the block's activation, sigmoid).

Example, MobileNetV4-Conv-S: ``conv_k3_s2_c32 conv_k3_s2_c32 conv_k1_c32 ... uib_a5_k5_s2_e3_c96
uib_a0_k3_e2_c96_x4 ... head_c960_f1280_n1000_bn``. ``decode`` is strict (an unknown or malformed
token is an error pointing at it) and ``encode(decode(s))`` gives the canonical spelling of ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from roofline.errors import InvalidParameterError, did_you_mean

__all__ = ["Block", "decode", "encode", "SpecError", "make_divisible", "block_cost", "network_cost"]

ACTS = {"re": "relu", "r6": "relu6", "hs": "hswish", "sw": "swish", "ge": "gelu"}
_FLAGS = {"ls", "noskip", "bn"}
# option letters each block type takes (besides x and the activation flags), and which are required
_OPTIONS = {
    "conv": ({"k", "s", "c"}, {"c"}, set()),
    "ds": ({"k", "s", "c"}, {"c"}, set()),
    "ir": ({"k", "s", "e", "c", "se", "sei"}, {"c"}, {"noskip"}),
    "fused": ({"k", "s", "e", "c"}, {"c", "e"}, {"noskip"}),
    "uib": ({"a", "k", "s", "e", "c"}, {"c", "e"}, {"ls", "noskip"}),
    "mqa": ({"h", "d", "k", "v", "q", "c"}, {"h", "d", "c"}, {"ls"}),
    "head": ({"c", "f", "n"}, {"n"}, {"bn"}),
}
_DEFAULTS = {"k": 3, "s": 1, "e": 1.0, "a": 0, "v": 1, "q": 1, "c": 0, "f": 0, "n": 1000, "x": 1}
_ORDER = ("a", "k", "s", "e", "h", "d", "v", "q", "c", "f", "n", "se", "sei")
_TOKEN = re.compile(r"^([a-z]+?)(\d+(?:\.\d+)?)$")


class SpecError(InvalidParameterError):
    """A block spec has an unknown or malformed token."""


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never dropping below 90% (the MobileNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


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
    act: str = "re"
    ls: bool = False
    noskip: bool = False
    bn: bool = False
    x: int = 1

    @property
    def activation(self) -> str:
        return ACTS[self.act]


def _fail(spec: str, index: int, block: str, token: str, why: str) -> SpecError:
    return SpecError(f"block {index + 1} {block!r}: {why} (token {token!r} in spec {_excerpt(spec, block)})")


def _excerpt(spec: str, block: str) -> str:
    i = spec.find(block)
    lo, hi = max(0, i - 25), min(len(spec), i + len(block) + 25)
    return repr(("..." if lo else "") + spec[lo:hi] + ("..." if hi < len(spec) else ""))


def decode(spec: str) -> list[Block]:
    """Parse a network spec into blocks; every malformed or unknown token is an error naming it."""
    if not isinstance(spec, str) or not spec.split():
        raise SpecError(f"a network spec must be a non-empty string of blocks, got {spec!r}")
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

    if b.x < 1 or b.s < 1 or b.v < 1 or b.q < 1:
        bad(text, "repeats and strides must be >= 1")
    if b.type in ("conv", "ds", "ir", "fused", "uib", "mqa") and b.c < 1:
        bad(f"c{b.c}", "output channels must be >= 1")
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
        parts += [flag for flag in ("ls", "noskip", "bn") if getattr(b, flag)]
        if b.act != "re":
            parts.append(b.act)
        if b.x != 1:
            parts.append(f"x{b.x}")
        out.append("_".join(parts))
    return " ".join(out)


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
        else:
            out.append(replace(b, c=make_divisible(b.c * width)))
    return out


# ---- analytical costs: the formulas the built ONNX is checked against --------------------------


def _conv(cin: int, cout: int, k: int, hw: tuple[int, int], groups: int = 1, bias: bool = False) -> tuple[int, int]:
    """(MACs, params) of a k x k conv producing cout x H x W."""
    macs = cout * hw[0] * hw[1] * (cin // groups) * k * k
    return macs, cout * (cin // groups) * k * k + (cout if bias else 0)


def _down(hw: tuple[int, int], k: int, s: int) -> tuple[int, int]:
    pad = k // 2
    return tuple((x + 2 * pad - k) // s + 1 for x in hw)  # type: ignore[return-value]


def mid_channels(b: Block, cin: int) -> int:
    """Expanded width of an ir/fused/uib block (an ir block with e1 has no expansion conv)."""
    return cin if b.type == "ir" and b.e == 1 else make_divisible(cin * b.e)


def se_channels(b: Block, cin: int, mid: int) -> int:
    if b.se:
        return make_divisible(mid * b.se)
    return max(1, int(cin * b.sei))


def block_cost(b: Block, cin: int, hw: tuple[int, int]) -> tuple[int, int, int, tuple[int, int]]:
    """(MACs, params, output channels, output H x W) of one (unrepeated) block; BN counts 2 params
    per channel (scale and bias), MACs count convolutions and attention matrix products only."""
    macs = params = 0

    def add(cost, bn_channels=0):
        nonlocal macs, params
        macs += cost[0]
        params += cost[1] + 2 * bn_channels

    if b.type == "conv":
        out_hw = _down(hw, b.k, b.s)
        add(_conv(cin, b.c, b.k, out_hw), b.c)
        return macs, params, b.c, out_hw
    if b.type == "ds":
        out_hw = _down(hw, b.k, b.s)
        add(_conv(cin, cin, b.k, out_hw, groups=cin), cin)
        add(_conv(cin, b.c, 1, out_hw), b.c)
        return macs, params, b.c, out_hw
    if b.type == "ir":
        mid = mid_channels(b, cin)
        if b.e != 1:
            add(_conv(cin, mid, 1, hw), mid)
        out_hw = _down(hw, b.k, b.s)
        add(_conv(mid, mid, b.k, out_hw, groups=mid), mid)
        if b.se or b.sei:
            r = se_channels(b, cin, mid)
            add(_conv(mid, r, 1, (1, 1), bias=True))
            add(_conv(r, mid, 1, (1, 1), bias=True))
        add(_conv(mid, b.c, 1, out_hw), b.c)
        return macs, params, b.c, out_hw
    if b.type == "fused":
        mid = mid_channels(b, cin)
        out_hw = _down(hw, b.k, b.s)
        add(_conv(cin, mid, b.k, out_hw), mid)
        add(_conv(mid, b.c, 1, out_hw), b.c)
        return macs, params, b.c, out_hw
    if b.type == "uib":
        mid = mid_channels(b, cin)
        out_hw = hw
        if b.a:
            out_hw = _down(hw, b.a, 1 if b.k else b.s)
            add(_conv(cin, cin, b.a, out_hw, groups=cin), cin)
        add(_conv(cin, mid, 1, out_hw), mid)
        if b.k:
            out_hw = _down(out_hw, b.k, b.s)
            add(_conv(mid, mid, b.k, out_hw, groups=mid), mid)
        add(_conv(mid, b.c, 1, out_hw), b.c)
        params += b.c if b.ls else 0
        return macs, params, b.c, out_hw
    if b.type == "mqa":
        params += 2 * cin  # input BN
        q_hw = _down(hw, b.k, b.q) if b.q > 1 else hw
        if b.q > 1:
            add(_conv(cin, cin, b.k, q_hw, groups=cin), cin)
        add(_conv(cin, b.h * b.d, 1, q_hw))
        kv_hw = _down(hw, b.k, b.v) if b.v > 1 else hw
        for _ in ("key", "value"):
            if b.v > 1:
                add(_conv(cin, cin, b.k, kv_hw, groups=cin), cin)
            add(_conv(cin, b.d, 1, kv_hw))
        n, m = q_hw[0] * q_hw[1], kv_hw[0] * kv_hw[1]
        macs += 2 * n * b.h * b.d * m  # scores Q.K^T and weighted values P.V
        add(_conv(b.h * b.d, b.c, 1, hw))  # queries down-sampled by q are resized back to H x W first
        params += b.c if b.ls else 0
        return macs, params, b.c, hw
    if b.type == "head":
        c = cin
        if b.c:
            add(_conv(c, b.c, 1, hw), b.c)
            c = b.c
        if b.f:
            add(_conv(c, b.f, 1, (1, 1), bias=not b.bn), b.f if b.bn else 0)
            c = b.f
        add(_conv(c, b.n, 1, (1, 1), bias=True))
        return macs, params, b.n, (1, 1)
    raise SpecError(f"unknown block type {b.type!r}")


def network_cost(blocks: list[Block], resolution: int, in_channels: int = 3) -> tuple[int, int]:
    """Analytical (MACs, params) of a whole network at ``resolution`` x ``resolution``."""
    macs = params = 0
    c, hw = in_channels, (resolution, resolution)
    for b in expand(blocks):
        m, p, c, hw = block_cost(b, c, hw)
        macs, params = macs + m, params + p
    return macs, params
