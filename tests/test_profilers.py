"""Host profiling with the real onnxruntime: stable repeated timings, trace parsing and mapping."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import roofline
from roofline.profilers import get_runner
from roofline.profilers.ort_trace import ParseError, map_to_layers, node_times
from roofline.profilers.stats import measure, summarize


def fake_clock(durations):
    """A clock whose every timed call lasts the next of ``durations`` seconds."""
    it = itertools.cycle(durations)
    now = [0.0]

    def clock():
        return now[0]

    def fn():
        now[0] += next(it)

    return clock, fn


def test_measure_stops_when_the_median_settles():
    clock, fn = fake_clock([0.010, 0.011, 0.009])
    s = measure(fn, warmup=2, min_repeats=20, clock=clock)
    assert s.stable and s.repeats == 20 and s.median_ms == pytest.approx(10.0) and not s.noisy


def test_measure_flags_a_noisy_machine():
    clock, fn = fake_clock([0.010, 0.030, 0.010, 0.050])
    s = measure(fn, min_repeats=20, max_repeats=60, clock=clock)
    assert s.noisy and s.cv > 0.1 and s.p90_ms > 2 * s.p10_ms


def test_measure_respects_the_time_budget():
    clock, fn = fake_clock([0.01 * (i + 1) for i in range(10_000)])  # slower and slower: never stable
    s = measure(fn, warmup=0, min_repeats=10, max_repeats=10_000, max_seconds=20.0, clock=clock)
    assert not s.stable and s.repeats == 70  # 70 calls take 24.85 s: the first batch end past 20 s


def test_summarize_hand_computed():
    s = summarize([0.001, 0.002, 0.003, 0.004])
    assert (s.median_ms, s.mean_ms, s.repeats) == (2.5, 2.5, 4)
    assert s.cv == pytest.approx(np.std([1, 2, 3, 4]) / 2.5)


TRACE = [
    {"cat": "Session", "name": "model_run", "ts": 0, "dur": 100, "ph": "X"},
    {"cat": "Node", "name": "conv_1_kernel_time", "ts": 1, "dur": 40, "args": {"op_name": "FusedConv", "provider": "CPUExecutionProvider"}},
    {"cat": "Node", "name": "conv_1_kernel_time", "ts": 101, "dur": 60, "args": {"op_name": "FusedConv", "provider": "CPUExecutionProvider"}},
    {"cat": "Node", "name": "relu_2_out_nchwc_kernel_time", "ts": 2, "dur": 10, "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"}},
    {"cat": "Node", "name": "ReorderOutput_kernel_time", "ts": 3, "dur": 5, "args": {"op_name": "ReorderOutput", "provider": "CPUExecutionProvider"}},
]  # fmt: skip


def test_node_times_parses_a_recorded_trace():
    t = node_times(json.dumps(TRACE)).set_index("node")
    assert (
        t.loc["conv_1", "median_us"] == 50
        and t.loc["conv_1", "runs"] == 2
        and t.loc["conv_1", "op_name"] == "FusedConv"
    )
    assert list(t.index) == ["conv_1", "relu_2_out_nchwc", "ReorderOutput"]


@pytest.mark.parametrize("bad", ["{}", "[]", json.dumps([{"cat": "Node", "name": "x_kernel_time"}])])
def test_node_times_rejects_foreign_input(bad):
    with pytest.raises(ParseError):
        node_times(bad)


@pytest.fixture(scope="module")
def small_model():
    return roofline.zoo.build("mobilenet_v2", width=0.5, resolution=96, weights="random")


@pytest.mark.parametrize("optimization", ["basic", "extended", "all"])
def test_trace_maps_onto_the_fused_layers(small_model, optimization):
    runner = get_runner("onnxruntime", threads=1, optimization=optimization)
    times = node_times(runner.trace(small_model, runs=3, warmup=1))
    assert (times.runs == 3).all()
    graph = roofline.load_graph(small_model)
    table = roofline.count(graph, fuse="runtime")
    mapped, unmapped = map_to_layers(times, table, graph)
    convs = mapped[mapped.op_type == "Conv"]
    assert convs.measured_us.notna().all() and (convs.measured_us > 0).all()
    # what is left over: layout conversions and reshape-like nodes (free in the fused view)
    assert set(unmapped.op_name) <= {"ReorderInput", "ReorderOutput", "Flatten", "Reshape"}


def test_latency_records_its_conditions(small_model):
    m = get_runner("onnxruntime", threads=1).latency(small_model, min_repeats=10, max_seconds=2)
    assert m.stats.median_ms > 0 and m.stats.repeats >= 10
    assert m.conditions["threads"] == 1 and m.conditions["optimization"] == "all" and m.conditions["runtime_version"]


def test_unknown_runner_and_bad_options():
    with pytest.raises(ValueError, match="did you mean 'onnxruntime'"):
        get_runner("onnxruntim")
    with pytest.raises(ValueError, match="'optimization'"):
        get_runner("onnxruntime", optimization="max")


def test_a_spread_within_the_clock_resolution_is_not_noise():
    from roofline.profilers.stats import summarize

    samples = [4e-6, 5e-6, 6e-6, 5e-6, 4e-6, 6e-6]  # a 5 us kernel read off a 1 us trace clock
    assert summarize(samples).noisy and not summarize(samples, resolution_s=1e-6).noisy
    assert summarize([4e-6, 5e-6, 30e-6, 5e-6, 31e-6], resolution_s=1e-6).noisy  # a real spread still is


def test_machine_drift_is_reported_not_averaged():
    from roofline.profilers import get_runner
    from roofline.profilers.build import DRIFT_THRESHOLD, Drift

    drift = Drift(get_runner("onnxruntime"))
    assert drift.probe() > 0 and drift.spread == 0.0 and not drift.busy
    drift.medians_ms[:] = [1.00, 1.05, 0.95, 1.00, 1.02, 1.60]  # jitter, and one preempted probe
    assert not drift.busy and "steady" in drift.report()
    drift.medians_ms += [1.0 + 2 * DRIFT_THRESHOLD] * 4  # the machine slowed down for a while
    assert drift.busy and "busy or throttling" in drift.report()
