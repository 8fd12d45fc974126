"""NAS-Bench-201 networks as weight-free ONNX models, from their architecture strings.

The macro skeleton and the cell operations follow NAS-Bench-201's own definitions (Dong & Yang,
ICLR 2020; ``xautodl/models/cell_infers/tiny_network.py``, ``cells.py`` and ``cell_operations.py``
in D-X-Y/AutoDL-Projects):

- stem: Conv 3x3 (3 -> C=16, pad 1, no bias) + BatchNorm;
- three stages of N=5 cells at C = 16, 32, 64, separated by a residual reduction block
  (``ResNetBasicblock``, stride 2): ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus a shortcut
  AvgPool 2x2 (s2) -> Conv 1x1 (no bias, no BN), added;
- a cell has nodes 0..3; node i is the sum over its incoming edges ``op~j`` of ``op(node j)``, the
  cell's output is node 3. Operations: ``nor_conv_1x1`` / ``nor_conv_3x3`` = ReLU-Conv-BN (no conv
  bias), ``avg_pool_3x3`` = AveragePool 3x3, stride 1, pad 1, ``count_include_pad=False``,
  ``skip_connect`` = identity, ``none`` = the input times zero (``x.mul(0.0)``, as NAS-Bench-201's
  ``Zero`` module computes it);
- head: BatchNorm + ReLU, global average pool, fully connected to the classes (with bias).

Inputs: CIFAR-10 / CIFAR-100 32x32 (10 / 100 classes), ImageNet16-120 16x16 (120 classes).

NAS-Bench-201's reported "FLOP" is, despite its name, a multiply-accumulate count (its counter adds
``Cout*Hout*Wout*Cin*k*k/groups`` per convolution and ``in*out + out`` for the classifier, and no
pooling or BatchNorm), divided by 1e6; its "Params" are all trainable parameters (BatchNorm scale and
shift included, running statistics not) divided by 1e6. ``roofline.count`` follows the same
conventions, except that it does not count the classifier's bias adds (``classes`` MACs).
"""

from __future__ import annotations

import onnx

from roofline.zoo.builder import GraphBuilder

__all__ = ["OPS", "DATASETS", "parse_arch", "build_nasbench201", "arch_costs"]

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# dataset -> (input resolution, classes)
DATASETS = {"cifar10": (32, 10), "cifar100": (32, 100), "ImageNet16-120": (16, 120)}
C_STEM, N_CELLS = 16, 5


def parse_arch(arch: str) -> list[list[tuple[str, int]]]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> [[(op, 0)], [(op, 0), (op, 1)], [...]], strictly."""
    if not isinstance(arch, str):
        raise TypeError(f"the 'arch' parameter must be a str, got {type(arch).__name__}")
    nodes = arch.split("+")
    if len(nodes) != 3:
        raise ValueError(f"arch {arch!r}: expected 3 nodes separated by '+', got {len(nodes)}")
    cell = []
    for i, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"arch {arch!r}: node {i} {node!r} must start and end with '|'")
        edges = []
        for edge in node[1:-1].split("|"):
            op, sep, src = edge.partition("~")
            if not sep or op not in OPS or not src.isdigit():
                raise ValueError(f"arch {arch!r}: bad edge {edge!r}; expected OP~INDEX with OP one of {list(OPS)}")
            edges.append((op, int(src)))
        if sorted(src for _, src in edges) != list(range(i)):
            raise ValueError(f"arch {arch!r}: node {i} must have one edge from each of nodes 0..{i - 1}, got {node!r}")
        cell.append(edges)
    return cell


def _relu_conv_bn(g: GraphBuilder, x: str, cout: int, k: int, stride: int = 1) -> str:
    return g.conv(g.act(x, "relu"), cout, k, stride, act=None)


def _edge(g: GraphBuilder, op: str, x: str) -> str:
    if op == "skip_connect":
        return x
    if op == "none":
        return g.mul(x, g.scalar(0.0))
    if op == "avg_pool_3x3":
        return g.pool(x, "AveragePool", 3, pad=1, count_include_pad=0)
    return _relu_conv_bn(g, x, g.shapes[x][1], 3 if op == "nor_conv_3x3" else 1)


def _cell(g: GraphBuilder, cell: list[list[tuple[str, int]]], x: str) -> str:
    nodes = [x]
    for edges in cell:
        out, *rest = [_edge(g, op, nodes[src]) for op, src in edges]
        for t in rest:
            out = g.add(out, t)
        nodes.append(out)
    return nodes[-1]


def _reduction(g: GraphBuilder, x: str, cout: int) -> str:
    b = _relu_conv_bn(g, _relu_conv_bn(g, x, cout, 3, stride=2), cout, 3)
    short = g.conv(g.pool(x, "AveragePool", 2, stride=2), cout, bn=False, act=None)
    return g.add(short, b)


def build_nasbench201(arch: str, dataset: str = "cifar10") -> onnx.ModelProto:
    """The NAS-Bench-201 network of ``arch`` for ``dataset`` as an ONNX model (weights: ConstantOfShape fills)."""
    if dataset not in DATASETS:
        raise ValueError(f"the 'dataset' parameter must be one of {list(DATASETS)}, got {dataset!r}")
    cell = parse_arch(arch)
    resolution, classes = DATASETS[dataset]
    g = GraphBuilder(f"nasbench201_{dataset}", (1, 3, resolution, resolution))
    x = g.conv(g.input, C_STEM, 3, act=None)
    for stage in range(3):
        if stage:
            x = _reduction(g, x, 2 * g.shapes[x][1])
        for _ in range(N_CELLS):
            x = _cell(g, cell, x)
    x = g.flatten(g.global_pool(g.act(g.batch_norm(x), "relu")))
    model = g.model(g.gemm(x, classes, name="classifier"))
    model.doc_string = f"NAS-Bench-201 {dataset}: {arch}"
    return model


def arch_costs(arch: str, dataset: str = "cifar10") -> dict[str, int]:
    """Closed-form MACs and parameters, counted the way NAS-Bench-201 counts them (FC bias adds included).

    An independent check of :func:`build_nasbench201` + ``roofline.count``: this never builds a graph.
    """
    cell = parse_arch(arch)
    res, classes = DATASETS[dataset]
    macs = 3 * 9 * C_STEM * res * res
    params = 3 * 9 * C_STEM + 2 * C_STEM
    c = C_STEM
    for stage in range(3):
        if stage:
            res //= 2
            cin, c = c, 2 * c
            macs += (cin * 9 * c + c * 9 * c + cin * c) * res * res
            params += cin * 9 * c + 2 * c + c * 9 * c + 2 * c + cin * c
        for edges in cell:
            for op, _ in edges:
                if op.startswith("nor_conv"):
                    k2 = 9 if op == "nor_conv_3x3" else 1
                    macs += N_CELLS * c * c * k2 * res * res
                    params += N_CELLS * (c * c * k2 + 2 * c)
    macs += c * classes + classes
    params += 2 * c + c * classes + classes
    return {"macs": macs, "params": params}
