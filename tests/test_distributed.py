"""Distributed trials (roofline.search.distributed): worker processes on one SQLite storage evaluate each
candidate once, spend one global budget, retry a killed worker's trial and resume without re-evaluating.

Every evaluation is logged by the process that made it (one file per process), so the tests count
evaluations, not trials. No timing bounds: only generous timeouts (heartbeat 1 s, grace 10 s: a live
worker's heartbeat thread, starved on a loaded machine, must not pass for a dead worker's).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optuna")

from roofline.errors import InvalidParameterError  # noqa: E402
from roofline.search.distributed import distributed_search, load_results, run_worker  # noqa: E402
from roofline.search.results import RESULT_COLUMNS  # noqa: E402
from roofline.search.space import ScalingSpace  # noqa: E402

TIMEOUT = 240  # s; a loaded 2-core machine

SPACE = "ScalingSpace('mobilenet_v2', widths=(0.35, 0.5, 0.75, 1.0), depths=(0.5, 1.0), resolutions=(96, 128, 160))"

WORKER = f"""
import os, sys, time
import numpy as np
from roofline.search.distributed import run_worker
from roofline.search.space import ScalingSpace

url, budget, logs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
space = {SPACE}

def log(kind, genes):
    with open(os.path.join(logs, f"{{kind}}-{{os.getpid()}}"), "a") as f:
        f.write(" ".join(map(str, genes)) + "\\n")

def score(cands):
    for c in cands:
        log("started", c.genes)
        while mode == "hang":  # the test kills this process here, mid-trial
            time.sleep(0.1)
        time.sleep(0.05)  # workers overlap
        log("done", c.genes)
    return np.array([sum(c.genes) + 0.1 * c.genes[0] for c in cands], dtype=float)

run_worker(space, score, url, budget, heartbeat=1, grace=10)
"""


def _space():
    return eval(SPACE)  # noqa: S307 - the same space as the worker script's


def _start(url, budget, logs, mode="normal"):
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(budget), str(logs), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _finish(procs):
    for p in procs:
        out, _ = p.communicate(timeout=TIMEOUT)
        assert p.returncode == 0, out


def _logged(logs: Path, kind: str = "done") -> list[str]:
    return [line for f in sorted(logs.glob(f"{kind}-*")) for line in f.read_text().splitlines()]


def _genomes(df) -> list[str]:
    return [" ".join(map(str, g)) for g in df.genes]


def _check(df, logs, budget):
    done = _logged(logs)
    assert len(done) == len(set(done)), "a candidate was evaluated twice"
    assert sorted(done) == sorted(_genomes(df)) and len(df) == budget  # the union is the budget, no more
    assert list(df.columns[:4]) == list(RESULT_COLUMNS[:4]) and df.columns[-1] == "score"
    assert list(df.step) == list(range(budget))
    np.testing.assert_allclose(df.score, [sum(g) + 0.1 * g[0] for g in df.genes])


def test_three_workers_evaluate_each_candidate_once_and_resume_to_a_larger_budget(tmp_path):
    url, logs = f"sqlite:///{tmp_path / 'search.db'}", tmp_path / "logs"
    logs.mkdir()
    _finish([_start(url, 14, logs) for _ in range(3)])  # 14 of 24 candidates
    df = load_results(url)
    _check(df, logs, 14)
    assert len(list(logs.glob("done-*"))) >= 2  # more than one worker did the work

    _finish([_start(url, 14, logs)])  # the same budget again: nothing to do
    assert len(_logged(logs)) == 14
    _finish([_start(url, 20, logs) for _ in range(2)])  # resume to a larger budget
    again = load_results(url)
    _check(again, logs, 20)
    assert _genomes(again)[:14] == _genomes(df)  # the first 14 are kept, in their order


def test_a_killed_worker_s_trial_is_retried_by_another(tmp_path):
    import optuna

    url, logs = f"sqlite:///{tmp_path / 'search.db'}", tmp_path / "logs"
    logs.mkdir()
    hung = _start(url, 6, logs, mode="hang")
    deadline = time.monotonic() + TIMEOUT
    while not list(logs.glob("started-*")):
        assert hung.poll() is None and time.monotonic() < deadline, hung.stdout.read() if hung.poll() else "timeout"
        time.sleep(0.1)
    os.kill(hung.pid, signal.SIGKILL)  # mid-trial: its candidate is claimed and half evaluated
    hung.wait(timeout=TIMEOUT)
    (killed,) = _logged(logs, "started")
    _finish([_start(url, 6, logs) for _ in range(2)])
    df = load_results(url)
    _check(df, logs, 6)
    assert killed in _genomes(df)  # retried, and evaluated once to completion
    trials = optuna.load_study(study_name="roofline", storage=url).get_trials(deepcopy=False)
    assert [t.state for t in trials].count(optuna.trial.TrialState.FAIL) == 1
    retried = [t for t in trials if "failed_trial" in t.system_attrs]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    assert " ".join(str(retried[0].params[n]) for n, _ in _space().decisions()) == killed


def _logging_score(logs: Path):
    def score(cands):
        for c in cands:
            with open(logs / f"done-{os.getpid()}", "a") as f:
                f.write(" ".join(map(str, c.genes)) + "\n")
        return np.array([sum(c.genes) + 0.1 * c.genes[0] for c in cands], dtype=float)

    return score


def test_distributed_search_runs_local_workers_and_refuses_another_search_s_study(tmp_path):
    url, logs = f"sqlite:///{tmp_path / 'search.db'}", tmp_path / "logs"
    logs.mkdir()
    space, score = _space(), _logging_score(logs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = distributed_search(space, score, url, budget=4, heartbeat=1, grace=10)  # in this process
        seen = []
        df = distributed_search(space, score, url, budget=10, workers=2, heartbeat=1, grace=10,
                                on_progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    _check(df, logs, 10)
    assert df.attrs["best"]["score"] == df.score.max() and seen and all(t == 10 for _, t in seen)
    with pytest.raises(InvalidParameterError, match="sampler was 'tpe', now 'nsga2'"):
        run_worker(space, score, url, 10, sampler="nsga2")
    with pytest.raises(InvalidParameterError, match="decisions was"):
        run_worker(ScalingSpace("mobilenet_v2", widths=(0.5, 1.0)), score, url, 10)
