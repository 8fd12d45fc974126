"""Search spaces over the block language: every candidate is a spec string (and a resolution) that
``roofline.zoo.builder.build_network`` builds as ONNX.

- ``UibSpace``: MobileNetV4-style. A fixed stem and head; per stage, the depth (blocks), the width
  (output channels), and per stage the expansion, the start and middle depthwise kernels of the UIB
  (0 = none, 3, 5: IB, ConvNext, ExtraDW, FFN variants), and in stages that allow it, Mobile MQA
  blocks interleaved after each UIB, or FusedIB blocks instead of UIBs (MobileNetV4's early
  stages: a full k x k conv, dear in MACs, cheap in bytes); plus the input resolution. With
  ``per_block_kernels=True`` every block has its own start and middle kernel genes (``s{i}.b{j}.start_k``,
  ``s{i}.b{j}.middle_k`` for the deepest option's blocks; those beyond the chosen depth are unused), as
  MobileNetV4's fine-grained search needs; the default genome (per stage kernels) is unchanged.
- ``ScalingSpace``: width, depth (repeats) and resolution multipliers of any zoo network, as in
  EfficientNet / TinyNets.

A candidate is a tuple of option indices, one per decision (``decisions()``); ``spec(genes)`` gives
its network. Spaces are small enough to sample uniformly (``sample``) and, when tiny, to enumerate;
``active(genes)`` names the decisions that matter for a candidate.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from roofline import zoo
from roofline.errors import InvalidParameterError
from roofline.zoo.blocks import Block, decode, encode, make_divisible

__all__ = ["Stage", "UibSpace", "ScalingSpace", "MnasSpace", "MNV2_BLOCKS", "Candidate", "scale"]


@dataclass(frozen=True)
class Candidate:
    """One network of a space: its genes, spec and input resolution."""

    genes: tuple[int, ...]
    spec: str
    resolution: int


@dataclass(frozen=True)
class Stage:
    """Choices of one UIB stage (its first block has stride ``stride``)."""

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    stride: int = 2
    expansions: tuple[float, ...] = (3.0, 4.0, 6.0)
    start_kernels: tuple[int, ...] = (0, 3, 5)
    middle_kernels: tuple[int, ...] = (0, 3, 5)
    mqa: tuple[bool, ...] = (False,)  # (False, True): the stage may interleave Mobile MQA blocks
    fused: tuple[bool, ...] = (False,)  # (False, True): the stage may be FusedIB blocks (k x k conv, e)


class _Space(abc.ABC):
    """What every space gives: its decisions (name, options) and the candidate of a gene vector."""

    @abc.abstractmethod
    def decisions(self) -> list[tuple[str, tuple]]: ...

    @abc.abstractmethod
    def candidate(self, genes) -> Candidate: ...

    @property
    def size(self) -> int:
        """Number of distinct gene vectors."""
        return math.prod(len(options) for _, options in self.decisions())

    def _check(self, genes) -> tuple[int, ...]:
        genes = tuple(int(g) for g in genes)
        decisions = self.decisions()
        if len(genes) != len(decisions) or any(not 0 <= g < len(o) for g, (_, o) in zip(genes, decisions)):
            raise InvalidParameterError(
                f"genes {genes} do not fit this space: {len(decisions)} decisions with "
                f"{[len(o) for _, o in decisions]} options"
            )
        return genes

    def sample(self, n: int, seed: int = 0) -> list[Candidate]:
        """``n`` candidates drawn uniformly (repeatable with ``seed``)."""
        rng = np.random.default_rng(seed)
        sizes = [len(o) for _, o in self.decisions()]
        return [self.candidate(tuple(int(rng.integers(k)) for k in sizes)) for _ in range(n)]

    def enumerate(self, limit: int = 100_000) -> list[Candidate]:
        """Every candidate, for spaces of at most ``limit``."""
        if self.size > limit:
            raise InvalidParameterError(f"the space has {self.size} candidates, more than limit={limit}")
        return [self.candidate(g) for g in itertools.product(*(range(len(o)) for _, o in self.decisions()))]

    def active(self, genes, among=None) -> list[int]:
        """Indices of the decisions (all, or those in ``among``) that matter for ``genes``: another option
        of the decision gives another candidate (a block beyond its stage's depth, the start kernel of a
        FusedIB stage... do not)."""
        base = self.candidate(genes)
        genes, decisions = base.genes, self.decisions()
        out = []
        for i in range(len(decisions)) if among is None else among:
            for g in range(len(decisions[i][1])):
                if g != genes[i]:
                    other = self.candidate(genes[:i] + (g,) + genes[i + 1 :])
                    if (other.spec, other.resolution) != (base.spec, base.resolution):
                        out.append(i)
                        break
        return out


@dataclass(frozen=True)
class UibSpace(_Space):
    """A MobileNetV4-style space (defaults: roughly MNv4-Conv-S/M sized, MQA allowed in the last stage)."""

    stages: tuple[Stage, ...] = (
        Stage(depths=(1, 2), widths=(48, 64, 80), fused=(False, True)),
        Stage(depths=(2, 3, 4), widths=(80, 96, 128)),
        Stage(depths=(2, 3, 4, 5), widths=(128, 160, 192), mqa=(False, True)),
    )
    resolutions: tuple[int, ...] = (192, 224, 256)
    stem: str = "conv_k3_s2_c32 fused_k3_s2_e4_c48"
    head: str = "head_c960_f1280_n1000_bn"
    mqa_heads: int = 4
    mqa_dim: int = 64
    per_block_kernels: bool = False  # True: each block's own start / middle kernel genes (s{i}.b{j}.start_k, ...)

    def decisions(self) -> list[tuple[str, tuple]]:
        out = []
        for i, s in enumerate(self.stages):
            out += [(f"s{i}.depth", s.depths), (f"s{i}.width", s.widths), (f"s{i}.expansion", s.expansions)]
            if self.per_block_kernels:  # block j's kernels (blocks beyond the stage's depth: unused genes)
                for j in range(max(s.depths)):
                    out += [(f"s{i}.b{j}.start_k", s.start_kernels), (f"s{i}.b{j}.middle_k", s.middle_kernels)]
            else:
                out += [(f"s{i}.start_k", s.start_kernels), (f"s{i}.middle_k", s.middle_kernels)]
            out += [(f"s{i}.mqa", s.mqa), (f"s{i}.fused", s.fused)]
        return [*out, ("resolution", self.resolutions)]

    def candidate(self, genes) -> Candidate:
        genes = self._check(genes)
        chosen = iter(options[g] for g, (_, options) in zip(genes, self.decisions()))
        blocks = [self.stem]
        for s in self.stages:
            depth, width, e = next(chosen), next(chosen), next(chosen)
            n = max(s.depths) if self.per_block_kernels else 1
            kernels = [(next(chosen), next(chosen)) for _ in range(n)]
            mqa, fused = next(chosen), next(chosen)
            if not self.per_block_kernels:
                kernels *= depth
            for j in range(depth):
                a, k = kernels[j]
                stride = s.stride if j == 0 else 1
                if a == 0 and k == 0 and (s.stride > 1 if not self.per_block_kernels else stride > 1):
                    k = 3  # a strided block needs a depthwise conv to stride: FFN blocks cannot open a stage
                    # (per stage, the whole stage then gets the 3x3; per block, only its opener)
                if fused:  # FusedIB: the middle kernel (or 3) as a full conv; the start kernel is unused
                    blocks.append(f"fused_k{k or 3}_s{stride}_e{e:g}_c{width}")
                else:
                    blocks.append(f"uib_a{a}_k{k}_s{stride}_e{e:g}_c{width}")
                if mqa and j > 0:
                    blocks.append(f"mqa_h{self.mqa_heads}_d{self.mqa_dim}_c{width}")
        blocks.append(self.head)
        return Candidate(genes, " ".join(_canonical(b) for b in blocks), int(next(chosen)))


@dataclass(frozen=True)
class ScalingSpace(_Space):
    """Width, depth and resolution multipliers of a zoo network (EfficientNet / TinyNets scaling)."""

    model: str = "mobilenet_v2"
    widths: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25)
    depths: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5)
    resolutions: tuple[int, ...] = (128, 160, 192, 224)

    @property
    def base_resolution(self) -> int:
        """The zoo network's own resolution (multiplier 1 of TinyNets' r)."""
        return zoo.get(self.model).resolution

    def decisions(self) -> list[tuple[str, tuple]]:
        return [("width", self.widths), ("depth", self.depths), ("resolution", self.resolutions)]

    def candidate(self, genes) -> Candidate:
        w, d, r = (options[g] for g, (_, options) in zip(self._check(genes), self.decisions()))
        return Candidate(tuple(genes), encode(scale(decode(zoo.get(self.model).spec), w, d)), int(r))


# MobileNetV2's seven blocks (stages) between stem and head: (output channels, layers, stride), as in MnasNet
MNV2_BLOCKS = ((16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))


@dataclass(frozen=True)
class MnasSpace(_Space):
    """MnasNet's factorised hierarchical space (Tan et al. 2019, Sec. 4.1) around MobileNetV2's seven blocks.

    Per block ``s{i}``: ``op`` (``conv``: a regular k x k conv; ``ds``: depthwise separable, dw k x k and a
    linear 1x1 as MnasNet's SepConv, spelled ``ir_e1``; ``mbconv``: mobile inverted bottleneck),
    ``expansion`` (3 or 6; only mbconv), ``kernel`` (3, 5), ``se`` (0 or 0.25 of the block's input channels,
    MnasNet's squeeze-excite; not on conv), ``skip`` (``identity``: a residual wherever stride 1 and equal
    channels allow, as every block of the language has; ``none``; not on conv, which has none), ``width``
    (filters, times MobileNetV2's, rounded to 8) and ``depth`` (layers, MobileNetV2's -1/0/+1; a stride-1
    block may vanish, a strided one keeps one layer); then the resolution. MnasNet's pooling skip op is
    not expressible in the block language and is left out. ``baseline_genes()`` is MobileNetV2 (with
    ``act="r6"`` and ``MnasSpace.mobilenet_v2()`` exactly the zoo's spec)."""

    blocks: tuple[tuple[int, int, int], ...] = MNV2_BLOCKS
    ops: tuple[str, ...] = ("conv", "ds", "mbconv")
    expansions: tuple[float, ...] = (3.0, 6.0)
    kernels: tuple[int, ...] = (3, 5)
    se_ratios: tuple[float, ...] = (0.0, 0.25)
    skips: tuple[str, ...] = ("identity", "none")
    widths: tuple[float, ...] = (0.75, 1.0, 1.25)
    depth_deltas: tuple[int, ...] = (-1, 0, 1)
    resolutions: tuple[int, ...] = (224,)
    stem: str = "conv_k3_s2_c32"
    head: str = "head_c1280_n1000"
    act: str = "re"  # MnasNet's ReLU ("r6": MobileNetV2's ReLU6)

    @classmethod
    def mobilenet_v2(cls, **changes) -> MnasSpace:
        """The space with MobileNetV2's stem, head and ReLU6: ``baseline_genes()`` is then the zoo's MobileNetV2."""
        return cls(**{"stem": "conv_k3_s2_c32_r6", "head": "head_c1280_n1000_r6", "act": "r6", **changes})

    def decisions(self) -> list[tuple[str, tuple]]:
        out = []
        for i, (_, n, _) in enumerate(self.blocks):
            out += [(f"s{i}.op", self.ops), (f"s{i}.expansion", self.expansions), (f"s{i}.kernel", self.kernels),
                    (f"s{i}.se", self.se_ratios), (f"s{i}.skip", self.skips), (f"s{i}.width", self.widths),
                    (f"s{i}.depth", tuple(n + d for d in self.depth_deltas))]  # fmt: skip
        return [*out, ("resolution", self.resolutions)]

    def baseline_genes(self) -> tuple[int, ...]:
        """MobileNetV2's genome: a ds first block, then MBConv6 3x3, no SE, identity skips, widths and depths x 1."""
        want = {"op": None, "expansion": 6.0, "kernel": 3, "se": 0.0, "skip": "identity", "width": 1.0}
        genes = []
        for name, options in self.decisions():
            kind = name.split(".")[-1]
            if kind == "op":
                genes.append(options.index("ds" if name == "s0.op" else "mbconv"))
            elif kind == "depth":
                genes.append(options.index(self.blocks[int(name[1:].split(".")[0])][1]))
            elif kind == "resolution":
                genes.append(options.index(224) if 224 in options else len(options) - 1)
            else:
                genes.append(options.index(want[kind]))
        return tuple(genes)

    def candidate(self, genes) -> Candidate:
        genes = self._check(genes)
        chosen = iter(options[g] for g, (_, options) in zip(genes, self.decisions()))
        blocks = decode(self.stem)
        for c, _, stride in self.blocks:
            op, e, k, se, skip, width, depth = (next(chosen) for _ in range(7))
            depth = max(depth, 1 if stride > 1 else 0)  # a strided block keeps a layer: the sizes stay MobileNetV2's
            if depth == 0:
                continue
            c = make_divisible(c * width)
            if op == "conv":  # no squeeze-excite, no residual in a plain conv block
                blocks.append(Block("conv", c=c, k=k, s=stride, act=self.act, x=depth))
            else:
                blocks.append(Block("ir", c=c, k=k, s=stride, e=e if op == "mbconv" else 1.0, sei=se, act=self.act,
                                    noskip=skip == "none", x=depth))  # fmt: skip
        blocks += decode(self.head)
        return Candidate(genes, encode(blocks), int(next(chosen)))


@lru_cache(maxsize=4096)
def _canonical(blocks: str) -> str:
    return encode(decode(blocks))


def scale(blocks: list[Block], width: float, depth: float) -> list[Block]:
    """Blocks with channels times ``width`` (rounded to 8; not the classifier) and repeats times
    ``depth`` (rounded up, at least 1; stem and head blocks keep theirs)."""
    out = []
    for b in blocks:
        changes = {}
        if b.c and b.type != "head":
            changes["c"] = make_divisible(b.c * width)
        if b.type == "head" and b.c:
            changes["c"] = make_divisible(b.c * max(1.0, width))
        if b.type not in ("conv", "head"):
            changes["x"] = max(1, math.ceil(b.x * depth))
        out.append(dataclasses.replace(b, **changes) if changes else b)
    return out
