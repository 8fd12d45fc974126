"""Kernel keys, single-layer kernel models, and latency LUTs that survive kills and concurrent writers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

import roofline
from roofline.profilers.build import build_lut
from roofline.profilers.kernels import decode, encode, kernel_model, kernels_of
from roofline.profilers.lut import LUT_COLUMNS, LutError, open_lut

FAST = {"warmup": 2, "runs": 10}
META = {"runtime": "test", "threads": 1, "precision": "fp32"}


@pytest.fixture(scope="module")
def keys():
    return list(kernels_of(roofline.zoo.build("mobilenet_v2", width=0.5, resolution=64)))


def test_keys_round_trip_and_rebuild_the_layer(keys):
    assert len(keys) >= 10 and {decode(k).kind for k in keys} >= {"conv", "pwconv", "dwconv", "gemm"}
    for key in keys:
        assert encode(decode(key)) == key
        model = kernel_model(key)
        macs = roofline.count(model).macs.sum()
        k = decode(key)
        if k.kind == "dwconv":  # hand formula: output elements x kernel area
            ho = (k["h"] + 2 * (k["k"] // 2) - k["k"]) // k["s"] + 1
            assert macs == k["c"] * ho * ho * k["k"] ** 2


@pytest.mark.parametrize(
    "key,message",
    [
        ("dwconv_k3_s1_c16_h48_fp32", "expected dwconv_kN_sN_cN_hN_wN"),
        ("dwconv_k3_s1_c16_h48_w48_int4", "expected"),
        ("conv_k3_s2_i3_o0_h96_w96_fp32", "part 'o0'"),
        ("conv_k3_s2_x3_o16_h96_w96_fp32", "part 'x3' should be i"),
        ("deconv_k3_fp32", "unknown kind 'deconv'"),
    ],
)
def test_bad_keys_are_rejected(key, message):
    with pytest.raises(ValueError, match=message):
        decode(key)


def test_kernel_timing_leaves_out_layout_conversions_and_run_overhead(keys):
    from roofline.profilers import get_runner
    from roofline.profilers.build import kernel_stats

    runner = get_runner("onnxruntime", threads=1)
    model = kernel_model(next(k for k in keys if k.startswith("pwconv")))
    kernel, nodes, reorder_in, reorder_out = kernel_stats(runner, model, runs=30, warmup=5)
    whole = runner.latency(model, min_repeats=30, max_seconds=2).stats
    assert 0 < kernel.median_ms < whole.median_ms and kernel.repeats == 30
    assert reorder_in > 0 and reorder_out > 0  # onnxruntime converts a lone conv's input and output to NCHWc
    assert nodes == 1  # conv, bias and ReLU: one fused node


def test_run_totals_sums_nodes_inside_each_run():
    from roofline.profilers.ort_trace import run_totals

    trace = [
        {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
        {"cat": "Node", "name": "a_kernel_time", "ts": 10, "dur": 30, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "b_kernel_time", "ts": 50, "dur": 5, "args": {"op_name": "ReorderOutput"}},
        {"cat": "Node", "name": "a_kernel_time", "ts": 210, "dur": 40, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "c_kernel_time", "ts": 260, "dur": 2, "args": {"op_name": "Relu"}},
    ]
    assert run_totals(trace).tolist() == [30.0, 42.0]


def test_build_then_rerun_skips_what_is_done(tmp_path, keys):
    path = tmp_path / "host.csv"
    lut = build_lut(keys[:3], path, progress=False, **FAST)
    first = lut.table()
    assert list(first.key) == keys[:3] and (first.latency_ms > 0).all() and (first.repeats == 10).all()
    meta = json.loads((tmp_path / "host.meta.json").read_text())["conditions"]
    assert meta["threads"] == 1 and meta["runtime"] == "onnxruntime" and meta["cpu_model"]
    lut = build_lut(keys[:5], path, progress=False, **FAST)
    table = lut.table()
    assert list(table.key) == keys[:5]
    assert table.iloc[:3].equals(first)  # nothing measured twice, nothing lost


SCRIPT = """
import sys, roofline
from roofline.profilers.build import build_lut
from roofline.profilers.kernels import kernels_of
keys = list(kernels_of(roofline.zoo.build("mobilenet_v2", width=0.5, resolution=64)))
build_lut(keys, sys.argv[1], progress=False, warmup=2, runs=int(sys.argv[2]))
"""


def _rows(path):
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


# the killed build: every row waits 0.3 s before it is written, so the kill lands mid-build however fast
# the kernels run (a quick machine could otherwise finish the build between two polls)
SLOW_SCRIPT = (
    """
import time
from roofline.profilers.lut import Lut
append = Lut.append
Lut.append = lambda self, rows: (time.sleep(0.3), append(self, rows))[1]
"""
    + SCRIPT
)


def test_a_killed_build_keeps_every_finished_row_and_resumes(tmp_path, keys):
    path = tmp_path / "host.csv"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SCRIPT, str(path), "40"])
    deadline = time.time() + 120
    while _rows(path) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = open_lut(path).table()
    assert 3 <= len(kept) < len(keys)  # killed part-way, every finished row readable
    lut = build_lut(keys, path, progress=False, **FAST)
    table = lut.table()
    assert sorted(table.key) == sorted(keys)
    assert table.set_index("key").loc[list(kept.key)].latency_ms.tolist() == kept.latency_ms.tolist()


def test_two_writers_at_once_do_not_corrupt_the_table(tmp_path, keys):
    path = tmp_path / "host.csv"
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(path), "10"]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    table = open_lut(path).table()  # every line parses
    assert sorted(table.key) == sorted(keys)


def test_damaged_or_foreign_tables_are_rejected(tmp_path):
    path = tmp_path / "t.csv"
    lut = open_lut(path, META)
    lut.append([{"key": "gemm_m1_k8_n4_fp32", "latency_ms": 0.1, "p10_ms": 0.1, "p90_ms": 0.1, "cv": 0.0,
                 "repeats": 10, "noisy": False, "nodes": 1, "reorder_in_ms": 0.0, "reorder_out_ms": 0.0, "measured_at": "now"}])  # fmt: skip
    with open(path, "a") as f:
        f.write("gemm_m1_k8_n8_fp32,0.2,0.1")  # a row cut short by a kill: dropped, not fatal
    lut = open_lut(path)
    assert list(lut.table().key) == ["gemm_m1_k8_n4_fp32"]
    lut.append([{"key": "gemm_m1_k8_n5_fp32", "latency_ms": 0.2, "p10_ms": 0.1, "p90_ms": 0.3, "cv": 0.1,
                 "repeats": 10, "noisy": False, "nodes": 1, "reorder_in_ms": 0.0, "reorder_out_ms": 0.0, "measured_at": "now"}])  # fmt: skip
    assert list(open_lut(path).table().key) == ["gemm_m1_k8_n4_fp32", "gemm_m1_k8_n5_fp32"]  # partial row cut off
    with open(path, "a") as f:
        f.write("gemm_m1_k8_n9_fp32,fast,0.1,0.1,0,1,False,1,0,0,now\n")
    with pytest.raises(LutError, match=r"t.csv: line 4 is malformed"):
        open_lut(path)
    foreign = tmp_path / "f.csv"
    foreign.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(LutError, match=r"f.csv: not a roofline LUT \(header 'a,b,c'"):
        open_lut(foreign)
    other = tmp_path / "o.csv"
    open_lut(other, META)
    with pytest.raises(LutError, match=r"o.csv: measured under other conditions \(threads: 1 in the table, 4 now\)"):
        open_lut(other, {**META, "threads": 4})
    assert LUT_COLUMNS[1] == "latency_ms"
