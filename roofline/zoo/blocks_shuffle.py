"""Analytical layers of the ShuffleNet V1/V2 units, GhostNet's ghost bottleneck and the max-pool stem
block (see ``roofline.zoo.blocks`` for the language), and the MobileNet channel rounding ``make_divisible``;
kept apart from ``blocks`` to keep modules small.

The functions take the block and the ``conv``/``move`` layer recorders of ``blocks._block_layers``, so this
module imports nothing from ``blocks``.
"""

from __future__ import annotations

from roofline.errors import ShapeError

__all__ = ["family_layers", "ghost_se_channels", "make_divisible", "shuffle1_widths", "FAMILY_TYPES"]

FAMILY_TYPES = ("maxpool", "shuffle2", "shuffle1", "ghost")


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never dropping below 90% (the MobileNet rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def ghost_se_channels(mid: int, ratio: float) -> int:
    """GhostNet's squeeze-excite width: ``ratio`` of the expanded channels rounded to 4."""
    return make_divisible(mid * ratio, 4)


def shuffle1_widths(b, cin: int) -> tuple[int, int]:
    """(bottleneck width, branch output width) of a ShuffleNet V1 unit: a quarter of the unit's output,
    and the output less the input channels when the avg-pool shortcut is concatenated."""
    mid, concat = b.c // 4, b.s > 1 or cin != b.c
    out = b.c - cin if concat else b.c
    groups_in = 1 if b.dense else b.g
    if out < 1 or mid < 1 or mid % b.g or out % b.g or cin % groups_in:
        raise ShapeError(
            f"a shuffle1 unit with g{b.g} cannot go from {cin} to {b.c} channels: the bottleneck ({mid}), the "
            f"branch output ({out}) and the input ({cin}, unless dense) must be positive multiples of g"
        )
    return mid, out


def family_layers(b, cin: int, hw: tuple[int, int], conv, move, mid_channels) -> tuple[int, tuple[int, int]]:
    """Record the layers of one maxpool/shuffle2/shuffle1/ghost block with ``conv`` and ``move`` (in
    the order the builder writes them); return its output channels and H x W."""
    pixels = hw[0] * hw[1]

    def shuffle(c, size):  # reshape (free) -> transpose -> reshape (free)
        move(c * size[0] * size[1], c * size[0] * size[1], kind="data-movement")

    def concat(parts, size):
        n = size[0] * size[1]
        move(sum(parts) * n, sum(parts) * n, kind="data-movement")

    if b.type == "maxpool":
        out_hw = (-(-hw[0] // b.s), -(-hw[1] // b.s))
        move(cin * pixels, cin * out_hw[0] * out_hw[1], kind="pool")
        return cin, out_hw
    if b.type == "shuffle2":
        half = b.c // 2
        if b.s == 1 and cin == b.c:
            move(cin * pixels, cin * pixels, kind="data-movement")  # split (reads and writes it all)
            src, out_hw = half, hw
        else:
            out_hw = conv(cin, cin, b.k, hw, b.s, groups=cin)
            conv(cin, half, 1, out_hw)
            src = cin
        conv(src, half, 1, hw)
        conv(half, half, b.k, hw, b.s, groups=half)
        conv(half, half, 1, out_hw)
        concat((half, half), out_hw)
        shuffle(b.c, out_hw)
        return b.c, out_hw
    if b.type == "shuffle1":
        mid, out = shuffle1_widths(b, cin)
        conv(cin, mid, 1, hw, groups=1 if b.dense else b.g)
        if b.g > 1:
            shuffle(mid, hw)
        out_hw = conv(mid, mid, b.k, hw, b.s, groups=mid)
        conv(mid, out, 1, out_hw, groups=b.g)
        n = out_hw[0] * out_hw[1]
        if out == b.c and b.s == 1:
            move(2 * out * n, out * n)  # add (+ ReLU)
        else:
            move(cin * pixels, cin * n, kind="pool")  # 3x3 avg-pool shortcut
            concat((cin, out), out_hw)
        return b.c, out_hw
    if b.type == "ghost":
        mid = mid_channels(b, cin)

        def ghost_module(ci, c, size):
            init = -(-c // 2)
            conv(ci, init, 1, size)
            conv(init, init, 3, size, groups=init)
            concat((init, init), size)
            if 2 * init > c:
                move(c * size[0] * size[1], c * size[0] * size[1], kind="data-movement")  # slice

        ghost_module(cin, mid, hw)
        out_hw = hw
        if b.s > 1:
            out_hw = conv(mid, mid, b.k, hw, b.s, groups=mid)
        n = out_hw[0] * out_hw[1]
        if b.se:
            r = ghost_se_channels(mid, b.se)
            move(mid * n, mid, kind="pool")  # global pool
            conv(mid, r, 1, (1, 1), bn=False, bias=True)
            conv(r, mid, 1, (1, 1), bn=False, bias=True)
            move(mid * n + mid, mid * n)  # gate
        ghost_module(mid, b.c, out_hw)
        if b.s > 1 or cin != b.c:
            conv(cin, cin, b.k, hw, b.s, groups=cin)
            conv(cin, b.c, 1, out_hw)
        move(2 * b.c * n, b.c * n)  # residual add
        return b.c, out_hw
    raise ValueError(f"not a block type of this module: {b.type!r}")
