"""Files that survive kills, damage and concurrent writers: atomic whole-file writes, search results
that resume after a cut line, LUTs that refuse impossible rows, builders that share the work."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roofline.errors import RooflineError
from roofline.files import atomic_write
from roofline.profilers.lut import LUT_COLUMNS, MAX_LATENCY_MS, LutError, open_lut
from roofline.search import ResultsError, read_results
from roofline.search.space import ScalingSpace

ROOT = Path(__file__).resolve().parents[1]
META = {"runtime": "test", "threads": 1, "precision": "fp32"}
SEARCH = ["search", "--space", "scaling:mobilenet_v2", "--device", "pixel6_cpu", "--device", "pixel8_edgetpu",
          "--strategy", "evolution", "--seed", "1"]  # fmt: skip
OBJECTIVES = ["accuracy", "latency_mac_eq:pixel6_cpu", "latency_mac_eq:pixel8_edgetpu"]


def _row(n: int, **change) -> dict:
    return {"key": f"gemm_m1_k8_n{n}_fp32", "latency_ms": 0.1 * n, "p10_ms": 0.09 * n, "p90_ms": 0.12 * n,
            "cv": 0.05, "repeats": 10, "noisy": False, "nodes": 1, "reorder_in_ms": 0.0, "reorder_out_ms": 0.001,
            "measured_at": "2024-01-01T00:00:00+00:00", **change}  # fmt: skip


def _lut(tmp_path, n: int = 8) -> Path:
    path = tmp_path / "t.csv"
    open_lut(path, META).append([_row(i) for i in range(1, n + 1)])
    return path


# -- atomic writes ------------------------------------------------------------------------------------
KILLED_WRITER = """
import os, sys, time
from pathlib import Path
path, ready, what = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
def stalled_replace(src, dst):  # the new content is all in the temporary file: die before the rename
    ready.write_text(str(src))
    time.sleep(60)
os.replace = stalled_replace
if what == "bytes":
    from roofline.files import atomic_write
    atomic_write(path, b"new" * 3_000_000)
else:
    from roofline.devices import load_device, write_spec
    import dataclasses
    write_spec(dataclasses.replace(load_device("pixel8_edgetpu"), name="pixel6_cpu"), path)
"""


@pytest.mark.parametrize("what", ["bytes", "spec"])
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path, what):
    from roofline.devices import load_device, write_spec

    path, ready = tmp_path / ("big.bin" if what == "bytes" else "pixel6_cpu.yaml"), tmp_path / "ready"
    if what == "bytes":
        atomic_write(path, b"old" * 1_000_000)
    else:
        write_spec(load_device("pixel6_cpu"), path)
    before = path.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path), str(ready), what], cwd=ROOT)
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert ready.exists(), "the child never reached the rename"
    tmp = Path(ready.read_text())
    assert tmp.parent == path.parent and tmp.stat().st_size > 0  # the new content sat beside the file
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert path.read_bytes() == before  # the old file, whole
    if what == "spec":
        assert load_device(path).display_name == load_device("pixel6_cpu").display_name
    atomic_write(path, b"x")  # an ordinary write afterwards replaces it
    assert path.read_bytes() == b"x"


def test_atomic_write_leaves_no_temporary_file_on_failure(tmp_path):
    from roofline.files import atomic_path

    path = tmp_path / "f.txt"
    atomic_write(path, "one")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("two, half")
        raise RuntimeError
    assert path.read_text() == "one" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


# -- search results: cut lines, duplicates, damage ----------------------------------------------------
@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    from roofline.cli import main

    out = tmp_path_factory.mktemp("full")
    assert main([*SEARCH, "--budget", "24", "--out-dir", str(out)]) == 0
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_cut_last_line_is_dropped_and_resume_works_twice(tmp_path, full_run):
    from roofline.cli import main

    out = tmp_path / "part"
    assert main([*SEARCH, "--budget", "10", "--out-dir", str(out)]) == 0
    results = out / "results.csv"
    data = results.read_bytes()
    results.write_bytes(data[: data.rfind(b"\n", 0, -1) + 30])  # the 10th row cut 30 bytes in, as by a kill
    assert len(read_results(results)) == 9
    assert main([*SEARCH, "--budget", "16", "--out-dir", str(out), "--resume"]) == 0
    assert main([*SEARCH, "--budget", "24", "--out-dir", str(out), "--resume"]) == 0
    header = _lines(results)[0]
    assert all(line.count(",") == header.count(",") for line in _lines(results))  # no row glued to a cut one
    resumed, full = pd.read_csv(results), pd.read_csv(full_run / "results.csv")
    assert list(resumed.spec) == list(full.spec) and np.allclose(resumed.score, full.score)
    assert resumed.genes.is_unique


def test_duplicate_rows_keep_the_first_and_are_not_written_again(tmp_path, full_run):
    from roofline.cli import main

    out = tmp_path / "dup"
    assert main([*SEARCH, "--budget", "10", "--out-dir", str(out)]) == 0
    results = out / "results.csv"
    lines = _lines(results)
    results.write_text("\n".join([*lines, lines[3], lines[5]]) + "\n")  # two candidates written twice
    table = read_results(results)
    assert len(table) == 10 and table.genes.is_unique
    assert main([*SEARCH, "--budget", "24", "--out-dir", str(out), "--resume"]) == 0
    table = read_results(results, ScalingSpace("mobilenet_v2"), OBJECTIVES)
    assert list(table.spec) == list(pd.read_csv(full_run / "results.csv").spec)
    assert len(_lines(results)) == 1 + 24 + 2  # the 14 new rows once each; the old duplicates stay, ignored


DAMAGE = {
    "garbage results": ("results.csv", b"\x00\x01garbage\n\xff\xfe\n"),
    "foreign results": ("results.csv", b"a,b,c\n1,2,3\n"),
    "wrong columns": ("results.csv", b"step,genes,spec,resolution,score\n0,1 2 3,x,224,0.5\n"),
    "bad row": ("results.csv", None),
    "empty json": ("search.json", b""),
    "garbage json": ("search.json", b'{"space": "uib",,,'),
    "list json": ("search.json", b"[1, 2, 3]"),
    "non-UTF-8 json": ("search.json", b'{"space": "\xff"}'),
    "missing json": ("search.json", None),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_results_or_search_json_are_one_line_errors(tmp_path, full_run, capsys, case):
    from roofline.cli import main

    out = tmp_path / "out"
    shutil.copytree(full_run, out)
    name, data = DAMAGE[case]
    if case == "bad row":
        lines = _lines(out / name)
        at = lines[0].split(",").index("score")  # the front objective writes gap columns after it
        cells = lines[4].split(",")
        cells[at - len(lines[0].split(","))] = "not-a-score"  # counted from the end: genes hold no commas
        lines[4] = ",".join(cells)
        data = ("\n".join(lines) + "\n").encode()
    if data is None:
        (out / name).unlink()
    else:
        (out / name).write_bytes(data)
    capsys.readouterr()
    assert main([*SEARCH, "--budget", "30", "--out-dir", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("roofline: error: ") and name in err, err
    if case == "bad row":
        assert "line 5: score must be a number" in err


def test_a_header_alone_or_an_empty_file_is_a_table_of_no_rows(tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(b"")
    assert len(read_results(path)) == 0
    path.write_bytes(b"step,genes,spec,resolution,sc")  # the header itself cut by a kill
    assert len(read_results(path)) == 0
    path.write_bytes(b"step,genes,spec,resolution,score\n")
    assert len(read_results(path)) == 0


# -- LUT loading ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        ({"latency_ms": float("inf"), "p90_ms": float("inf")}, "latency_ms must be finite"),
        ({"latency_ms": 1e308, "p90_ms": 1e308}, "latency_ms must be finite, >= 0 and < 3.6e\\+06"),
        ({"latency_ms": float("nan")}, "latency_ms must be finite"),
        ({"latency_ms": 0.0, "p10_ms": 0.0}, "latency_ms must be > 0"),
        ({"latency_ms": -1.0}, "latency_ms must be finite"),
        ({"p10_ms": float("nan")}, "p10_ms must be finite"),
        ({"p90_ms": -0.5}, "p90_ms must be finite"),
        ({"p10_ms": 0.5}, "p10_ms <= latency_ms <= p90_ms"),
        ({"p90_ms": 0.05}, "p10_ms <= latency_ms <= p90_ms"),
        ({"cv": float("nan")}, "cv must be finite and >= 0"),
        ({"cv": -0.1}, "cv must be finite and >= 0"),
        ({"repeats": -3}, "repeats must be >= 1"),
        ({"repeats": 0}, "repeats must be >= 1"),
        ({"nodes": -1}, "nodes >= 0"),
        ({"reorder_in_ms": -0.2}, "reorder_in_ms must be finite"),
        ({"reorder_out_ms": float("inf")}, "reorder_out_ms must be finite"),
        ({"key": "gemm\x07_fp32"}, "control characters"),
    ],
)
def test_impossible_lut_rows_are_errors_naming_the_line(tmp_path, change, message):
    path = _lut(tmp_path, 2)
    open_lut(path).append([_row(3, **change)])
    with pytest.raises(LutError, match=rf"^t\.csv: line 4: .*{message}"):
        open_lut(path)


def test_an_inf_row_no_longer_reaches_calibration(tmp_path):
    path = _lut(tmp_path, 1)
    with open(path, "a") as f:
        f.write("dwconv_k3_s1_c32_h56_w56_fp32,inf,inf,inf,0.0,10,False,1,0,0,now\n")
    with pytest.raises(LutError, match=r"t\.csv: line 3: latency_ms must be finite"):
        open_lut(path).table()
    assert MAX_LATENCY_MS == 3.6e6


def test_damaged_lut_metadata_and_encoding_are_lut_errors(tmp_path):
    path = _lut(tmp_path, 2)
    meta = path.with_suffix(".meta.json")
    good = meta.read_text()
    meta.write_text("[1, 2]")
    with pytest.raises(LutError, match=r"t\.meta\.json: expected a JSON object, got a list"):
        open_lut(path, META)
    meta.write_text(json.dumps({"format": "roofline-lut-2", "conditions": "threads=1"}))
    with pytest.raises(LutError, match=r"'conditions' must be a JSON object, got a str"):
        open_lut(path, META)
    meta.write_bytes(b'{"format": "\xff"}')
    with pytest.raises(LutError, match=r"t\.meta\.json: not UTF-8"):
        open_lut(path)
    meta.write_text(good)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"gemm_m1_k8_n2", b"gemm_m1_k8_\xe9\xff"))
    with pytest.raises(LutError, match=r"t\.csv: line 3 is not UTF-8 text \(byte 0xe9\)"):
        open_lut(path)


def test_an_empty_table_left_by_a_cut_creation_is_created_again(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"")  # killed right after creating the file
    lut = open_lut(path, META)
    assert len(lut.table()) == 0 and lut.meta["conditions"] == META


# -- builders at once ---------------------------------------------------------------------------------
BUILDER = """
import sys, time
from pathlib import Path
from roofline.profilers.build import build_lut
from roofline.profilers.stats import Stats

class Runner:  # the Runner protocol (roofline.profilers.runners.base), timing nothing
    model_format, target, calls = "onnx", "host", 0
    def conditions(self):
        return {"runtime": "fake", "threads": 1}
    def latency(self, model, **_):
        Runner.calls += 1
        time.sleep(0.1)
        return type("M", (), {"stats": Stats(1.0, 0.9, 1.1, 1.0, 0.01, 10, 0, True, False)})()

class Drift:
    def probe(self):
        return 1.0

keys = [f"gemm_m1_k8_n{n}_fp32" for n in range(1, int(sys.argv[2]) + 1)]
Path(sys.argv[3]).touch()
while not all(Path(p).exists() for p in sys.argv[4:]):  # start together
    time.sleep(0.01)
build_lut(keys, sys.argv[1], runner=Runner(), progress=False, timing="model", drift=Drift())
print(Runner.calls)
"""


def test_two_builders_at_once_measure_each_key_once(tmp_path):
    path, n = tmp_path / "fake.csv", 12
    ready = [str(tmp_path / f"ready{i}") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", BUILDER, str(path), str(n), ready[i], *ready], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) for i in range(2)]  # fmt: skip
    calls = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sum(calls) == n and min(calls) > 0  # the work shared, nothing measured twice
    assert len(_lines(path)) == 1 + n  # one row per key on disk, not merely after dedup
    assert sorted(open_lut(path).table().key) == sorted(f"gemm_m1_k8_n{i}_fp32" for i in range(1, n + 1))
    assert not path.with_suffix(".claims.json").exists()  # claims cleaned up


def test_a_claim_by_a_dead_builder_does_not_block(tmp_path):
    from roofline.profilers.build import build_lut
    from roofline.profilers.stats import Stats

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "fake.csv"
    key = "gemm_m1_k8_n1_fp32"
    calls = []

    class Runner:
        model_format, target = "onnx", "host"

        def conditions(self):
            return {"runtime": "fake", "threads": 1}

        def latency(self, model, **_):
            calls.append(1)
            return type("M", (), {"stats": Stats(1.0, 0.9, 1.1, 1.0, 0.01, 10, 0, True, False)})()

    class Drift:
        def probe(self):
            return 1.0

    claim = {"owner": "x", "pid": dead.pid, "host": socket.gethostname(), "start": "1", "time": time.time()}
    claims = path.with_suffix(".claims.json")
    claims.write_text(json.dumps({key: claim, "gemm_m1_k8_n2_fp32": {**claim, "start": None}}))
    start = time.time()
    lut = build_lut([key, "gemm_m1_k8_n2_fp32"], path, runner=Runner(), progress=False, timing="model", drift=Drift())
    assert time.time() - start < 10 and len(calls) == 2 and lut.claims_path == claims
    lut.claims_path.write_text("garbage")  # a damaged claims file is scratch: ignored
    assert lut.claim("gemm_m1_k8_n3_fp32") == "ours" and lut.claim("gemm_m1_k8_n1_fp32") == "done"


# -- fuzz ---------------------------------------------------------------------------------------------
IMPOSSIBLE = [b"inf", b"-inf", b"nan", b"1e308", b"-1", b"-0.5", b"0", b"", b"1e400", b"x"]


def mutate(data: bytes, rng) -> bytes:
    """Byte flips, a truncation, a duplicated or deleted line, an impossible number, or inserted garbage."""
    lines = data.split(b"\n")
    kind = rng.integers(6)
    if kind == 0:
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        return bytes(b)
    if kind == 1:
        return data[: int(rng.integers(len(data) + 1))]
    if kind == 2:
        i, j = int(rng.integers(len(lines))), int(rng.integers(len(lines)))
        return b"\n".join(lines[:j] + [lines[i]] + lines[j:])
    if kind == 3:
        i = int(rng.integers(len(lines)))
        return b"\n".join(lines[:i] + lines[i + 1 :])
    numbers = [m.span() for m in re.finditer(rb"(?:(?<=,)|(?<=: ))-?[0-9][0-9.e+-]*(?=[,\n])", data)]
    if kind == 4 and numbers:
        s, e = numbers[int(rng.integers(len(numbers)))]
        return data[:s] + IMPOSSIBLE[int(rng.integers(len(IMPOSSIBLE)))] + data[e:]
    i = int(rng.integers(len(data) + 1))
    return data[:i] + rng.integers(0, 256, int(rng.integers(1, 20))).astype(np.uint8).tobytes() + data[i:]


def _fuzz(path: Path, good: bytes, load, check, seed: int, n: int = 300) -> dict:
    rng, outcomes = np.random.default_rng(seed), {"ok": 0, "error": 0}
    for _ in range(n):
        path.write_bytes(mutate(good, rng))
        try:
            table = load()
        except RooflineError:
            outcomes["error"] += 1
            continue
        check(table)
        outcomes["ok"] += 1
    return outcomes


def test_fuzzed_luts_load_valid_rows_or_raise_lut_errors(tmp_path):
    path = _lut(tmp_path)

    def check(t):
        assert set(t.columns) == set(LUT_COLUMNS) and t.key.is_unique
        t = t.astype({c: float for c in LUT_COLUMNS[1:6]})
        assert (np.isfinite(t.latency_ms) & (t.latency_ms > 0) & (t.latency_ms < MAX_LATENCY_MS)).all()
        assert ((t.p10_ms <= t.latency_ms * (1 + 1e-9)) & (t.latency_ms <= t.p90_ms * (1 + 1e-9))).all()
        assert ((t.cv >= 0) & (t.repeats >= 1) & (t.nodes >= 0) & (t.reorder_in_ms >= 0)).all()

    outcomes = _fuzz(path, path.read_bytes(), lambda: open_lut(path).table(), check, seed=0)
    assert outcomes["ok"] > 30 and outcomes["error"] > 30, outcomes
    meta = path.with_suffix(".meta.json")
    path.write_bytes(path.read_bytes())
    good_meta = meta.read_bytes()
    meta_outcomes = _fuzz(meta, good_meta + b"\n", lambda: open_lut(path, META), lambda lut: None, seed=1, n=100)
    assert meta_outcomes["error"] > 10, meta_outcomes


def test_fuzzed_results_load_valid_rows_or_raise_results_errors(tmp_path, full_run):
    space = ScalingSpace("mobilenet_v2")
    path = tmp_path / "results.csv"
    good = (full_run / "results.csv").read_bytes()
    decisions = [len(o) for _, o in space.decisions()]

    def check(t):
        assert t.genes.is_unique
        for row in t.to_dict("records"):
            genes = tuple(int(g) for g in row["genes"].split())
            assert len(genes) == len(decisions) and all(g < k for g, k in zip(genes, decisions))
            assert space.candidate(genes).spec == row["spec"] and np.isfinite(row["score"])

    outcomes = _fuzz(path, good, lambda: read_results(path, space, OBJECTIVES), check, seed=2)
    assert outcomes["ok"] > 30 and outcomes["error"] > 30, outcomes
    with pytest.raises(ResultsError):  # the search's own reader as well
        path.write_bytes(good.replace(b"\n1,", b"\n1,x", 1))
        read_results(path, space, OBJECTIVES)
