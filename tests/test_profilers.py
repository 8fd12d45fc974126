"""Host profiling with the real onnxruntime: stable repeated timings, trace parsing and mapping."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import roofline
from roofline.profilers import get_runner
from roofline.profilers.ort_trace import ParseError, map_to_layers, node_times
from roofline.profilers.stats import OP_TIME_COLUMNS, measure, summarize


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
    t = node_times(json.dumps(TRACE))
    assert list(t.columns[:3]) == OP_TIME_COLUMNS
    t = t.set_index("name")
    assert (
        t.loc["conv_1", "time_ms"] == 0.050  # the median of 40 and 60 us, in ms
        and t.loc["conv_1", "total_ms"] == 0.100
        and t.loc["conv_1", "runs"] == 2
        and t.loc["conv_1", "op_type"] == "FusedConv"
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
    assert convs.measured_ms.notna().all() and (convs.measured_ms > 0).all()
    # what is left over: layout conversions and reshape-like nodes (free in the fused view)
    assert set(unmapped.op_type) <= {"ReorderInput", "ReorderOutput", "Flatten", "Reshape"}


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


# -- the runner registry and the contract every backend keeps ----------------------------------------

CONTRACT_KEY = "conv_k3_s1_i8_o8_h8_w8_fp32"  # a tiny convolution, written as ONNX or TFLite by the test


def _adb_runner(request):
    request.getfixturevalue("home")  # a fresh user: the binary is remembered under a temporary config
    phone, binary = request.getfixturevalue("phone"), request.getfixturevalue("binary")
    return get_runner("adb", address=phone.address, benchmark_model=binary, threads=1)


#: one case per registered runner: how the contract test builds it (a new backend adds its line here)
RUNNER_CASES = {
    "onnxruntime": lambda request: get_runner("onnxruntime", threads=1),
    "litert": lambda request: get_runner("litert", threads=1),
    "adb": _adb_runner,  # the loopback phone (tests/fakes/loopback_adb.py) with the benchmark_model stand-in
}


def test_every_registered_runner_has_a_contract_case():
    from roofline.profilers import RUNNERS

    missing = sorted(set(RUNNERS) - set(RUNNER_CASES))
    assert not missing, f"runners without a case in RUNNER_CASES (tests/test_profilers.py): {missing}"
    assert not set(RUNNER_CASES) - set(RUNNERS), "a case for a runner that is not registered"


@pytest.mark.parametrize("name", sorted(__import__("roofline.profilers", fromlist=["RUNNERS"]).RUNNERS))
def test_runner_contract(name, request, tmp_path):
    """Every backend: a ``Runner`` that says its conditions, times a small model into a ``Measurement``
    that carries them, and builds a one-kernel LUT."""
    from roofline.profilers import RUNNERS, Measurement, Runner
    from roofline.profilers.build import build_lut
    from roofline.profilers.kernels import kernel_model
    from roofline.profilers.runners.base import MODEL_FORMATS, TARGETS
    from roofline.profilers.tflite_writer import tflite_kernel

    assert name in RUNNER_CASES, f"no contract case for runner {name!r}: add one to RUNNER_CASES"
    runner = RUNNER_CASES[name](request)
    try:
        assert isinstance(runner, Runner) and type(runner) is RUNNERS[name] and runner.name == name
        assert runner.model_format in MODEL_FORMATS and runner.target in TARGETS
        conditions = runner.conditions()
        assert conditions["runtime"] and conditions["threads"] == 1
        model = tflite_kernel(CONTRACT_KEY) if runner.model_format == "tflite" else kernel_model(CONTRACT_KEY)
        m = runner.latency(model, min_repeats=5, warmup=1, max_seconds=0.2)
        assert isinstance(m, Measurement) and m.stats.median_ms > 0 and m.stats.repeats >= 5
        assert conditions.items() <= m.conditions.items()  # measurements carry their conditions
        lut = build_lut([CONTRACT_KEY], tmp_path / "l.csv", runner=runner, progress=False, timing="model",
                        min_repeats=5, warmup=1, max_seconds=0.2)  # fmt: skip
        row = lut.table().iloc[0]
        assert (
            row["key"] == CONTRACT_KEY
            and row["latency_ms"] > 0
            and lut.meta["conditions"]["runtime"] == conditions["runtime"]
        )
    finally:
        runner.close()


def test_the_registry_imports_built_in_runners_when_asked():
    """``import roofline.profilers`` loads no backend; ``get_runner("adb")`` needs no import first."""
    import subprocess
    import sys

    code = ("import sys, roofline.profilers as p\n"
            "assert not [m for m in sys.modules if m.startswith('roofline.profilers.runners.') and "
            "not m.endswith('.base')], sorted(sys.modules)\n"
            "assert 'onnxruntime' not in sys.modules\n"
            "print(type(p.get_runner('adb', address='127.0.0.1:9')).__name__, p.runner_names('host'))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["AdbRunner", "['litert',", "'onnxruntime']"]


def test_the_registry_refuses_duplicates_and_undeclared_runners(monkeypatch):
    from roofline.errors import InvalidParameterError
    from roofline.profilers import RUNNERS, register_runner
    from roofline.profilers.runners.base import get_runner

    class Fake:
        model_format, target = "onnx", "host"

    with pytest.raises(InvalidParameterError, match="'onnxruntime' is already registered"):
        register_runner("onnxruntime")(Fake)
    with pytest.raises(InvalidParameterError, match="'adb' is already registered .*runners.adb"):
        register_runner("adb")(Fake)  # a built-in name, whether or not its module was imported yet
    with pytest.raises(InvalidParameterError, match="must declare model_format"):
        register_runner("undeclared")(type("Bare", (), {}))
    monkeypatch.setattr(RUNNERS, "_classes", dict(RUNNERS._classes))  # the test's registration goes away after
    assert register_runner("fake")(Fake) is Fake and Fake.name == "fake" and isinstance(get_runner("fake"), Fake)
    with pytest.raises(InvalidParameterError, match="'fake' is already registered"):
        register_runner("fake")(Fake)


def test_unknown_runner_is_one_line_naming_the_known_ones():
    from roofline.errors import RooflineError

    with pytest.raises(RooflineError) as info:
        get_runner("tflite")
    message = str(info.value)
    assert "\n" not in message and "known: ['adb', 'litert', 'onnxruntime']" in message
