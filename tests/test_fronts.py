"""Front-distance objective (``roofline.search.fronts``): fronts and gaps on a hand-made case, the
score's ordering, and ``roofline search --objective front`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from roofline.errors import InvalidParameterError
from roofline.search import search
from roofline.search.fasteval import Evaluator
from roofline.search.fronts import FrontGap, estimate_fronts, front_gaps
from roofline.search.space import Candidate, Stage, UibSpace, _Space

# five networks: top-1 and latency on devices A and B (hand-made)
NETS = {"n0": (70.0, 1.0, 4.0), "n1": (72.0, 2.0, 2.0), "n2": (71.0, 3.0, 1.0), "n3": (74.0, 4.0, 8.0),
        "n4": (73.0, 5.0, 3.0)}  # fmt: skip
# front A (latency up, accuracy up): n0 (1, 70), n1 (2, 72), n3 (4, 74); n2 and n4 are dominated
# front B: n2 (1, 71), n1 (2, 72), n4 (3, 73), n3 (8, 74); n0 (4, 70) is dominated by n2


class FiveSpace(_Space):
    def decisions(self):
        return [("net", tuple(NETS))]

    def candidate(self, genes):
        genes = self._check(genes)
        return Candidate(genes, f"n{genes[0]}", 224)


class FakeEvaluator:
    columns, relative, precision = ["A", "B"], np.array([False, False]), "int8"

    def latency(self, candidates):
        return np.array([NETS[c.spec][1:] for c in candidates])


def hand_accuracy(spec, resolution):
    return NETS[spec][0]


@pytest.mark.parametrize("sample", [100, 2])  # the whole space; a sample of 2 that the refinement completes
def test_fronts_latency_at_and_gaps_on_a_hand_made_case(sample):
    fronts = estimate_fronts(FiveSpace(), FakeEvaluator(), hand_accuracy, sample=sample, seed=0)
    assert fronts.sample == 5
    assert list(fronts.latency[0]) == [1, 2, 4] and list(fronts.accuracy[0]) == [70, 72, 74]
    assert list(fronts.latency[1]) == [1, 2, 3, 8] and list(fronts.accuracy[1]) == [71, 72, 73, 74]
    np.testing.assert_array_equal(fronts.latency_at(0, [69, 70, 71, 72.5, 74, 75]), [1, 1, 2, 4, 4, np.nan])
    np.testing.assert_array_equal(fronts.latency_at(1, [70, 71.5, 73, 74, 75, np.nan]), [1, 2, 3, 8, np.nan, np.nan])
    # 71.5% at 3 and 3: fronts 2 and 2 -> +50%; 75% is above both fronts -> 0; 70% at 0.5 and 2: -50%, +100%
    gaps = front_gaps(fronts, [71.5, 75.0, 70.0], [[3.0, 3.0], [10.0, 10.0], [0.5, 2.0]])
    np.testing.assert_allclose(gaps, [[0.5, 0.5], [0.0, 0.0], [-0.5, 1.0]])


def test_front_gap_prefers_accurate_near_front_networks_over_far_and_smallest_ones():
    fronts = estimate_fronts(FiveSpace(), FakeEvaluator(), hand_accuracy)
    objective = FrontGap(FakeEvaluator(), fronts, hand_accuracy, tolerance=0.05, targets=np.inf)
    # near: 73.5% at 4.1 and 8.2 (fronts 4 and 8: +2.5%, within tolerance) -> 73.5
    # far: 73.5% at 6 and 12 (+50%) -> 73.5 - 100 x 0.45 = 28.5; smallest: 70% at 1 and 1 (on both fronts) -> 70
    table = objective.score_table([73.5, 73.5, 70.0], [[4.1, 8.2], [6.0, 12.0], [1.0, 1.0]])
    np.testing.assert_allclose(table.score, [73.5, 28.5, 70.0])
    np.testing.assert_allclose(table["gap:B"], [0.025, 0.5, 0.0])
    assert list(table.columns) == ["accuracy", "latency_ms:A", "latency_ms:B", "gap:A", "gap:B", "worst_gap", "score"]
    # a target of 4 on A: the near network overshoots by 2.5% -> 73.5 - 2.5 = 71, still above the smallest
    targeted = FrontGap(FakeEvaluator(), fronts, hand_accuracy, tolerance=0.05, targets=[4.0, np.inf])
    np.testing.assert_allclose(targeted.score_table([73.5, 70.0], [[4.1, 8.2], [1.0, 1.0]]).score, [71.0, 70.0])
    with pytest.raises(InvalidParameterError, match="targets must be > 0"):
        FrontGap(FakeEvaluator(), fronts, targets=0.0)


def test_front_gap_search_picks_a_network_near_both_fronts_not_the_smallest():
    stages = (Stage(depths=(1, 2), widths=(32, 48), expansions=(2.0, 4.0), start_kernels=(0, 3), middle_kernels=(3, 5)),
              Stage(depths=(1, 3), widths=(64, 96), expansions=(3.0, 6.0), start_kernels=(0, 5), middle_kernels=(0, 3)),
              Stage(depths=(2, 4), widths=(96, 128), expansions=(4.0,), start_kernels=(0, 5), middle_kernels=(3, 5)))  # fmt: skip
    space = UibSpace(stages=stages, resolutions=(128, 160), stem="conv_k3_s2_c16", head="head_c512_f640_n1000_bn")
    ev = Evaluator(["pixel6_cpu", "pixel8_edgetpu"], precision="int8")
    fronts = estimate_fronts(space, ev, sample=1000, seed=0)
    objective = FrontGap(ev, fronts, tolerance=0.05, targets=np.inf)
    df = search(space, objective, "evolution", budget=300, seed=0)
    best = df.attrs["best"]
    assert best["worst_gap"] <= 0.05 and best["score"] == best["accuracy"]
    smallest = df.loc[df["latency_mac_eq:pixel6_cpu"].idxmin()]
    assert best["accuracy"] > smallest["accuracy"] + 0.5  # the smallest network (on every front) does not win


def test_cli_search_front_objective_writes_gaps_and_takes_user_accuracy(tmp_path, capsys):
    from roofline.cli import main

    module = tmp_path / "my_top1.py"
    module.write_text("def top1(spec, resolution):\n    return 60.0 + len(spec) / 100 + resolution / 100\n")
    args = ["search", "--space", "scaling:mobilenet_v2", "--device", "pixel6_cpu", "--device", "pixel8_edgetpu",
            "--budget", "30", "--front-sample", "500", "--objective", "front"]  # fmt: skip
    out = tmp_path / "front"
    assert main([*args, "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gap to front" in printed and "worst gap" in printed and "PROXY top-1" in printed
    results = pd.read_csv(out / "results.csv")
    assert {"gap:pixel6_cpu", "gap:pixel8_edgetpu", "worst_gap", "score"} <= set(results.columns)
    assert len(results) == 30
    meta = json.loads((out / "search.json").read_text())
    assert meta["objective"] == "front" and meta["front_sample"] == 64  # the whole scaling space (4 x 4 x 4)
    assert (out / "search.png").stat().st_size > 0

    user = tmp_path / "user"
    assert main([*args, "--out-dir", str(user), "--accuracy", f"{module}:top1"]) == 0
    assert set(pd.read_csv(user / "pareto.csv").accuracy_source) == {f"{module}:top1"}
    assert "PROXY" not in capsys.readouterr().out

    table = tmp_path / "top1.csv"
    table.write_text("spec,resolution,top1\nconv_k3_s2_c32,224,70.0\n")
    assert main([*args, "--out-dir", str(tmp_path / "csv"), "--accuracy", str(table)]) == 2
    assert f"--accuracy {table} has no top1 for spec" in capsys.readouterr().err
