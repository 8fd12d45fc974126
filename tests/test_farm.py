"""Many phones at once: three loopback phones (two twins, one other model), one of the twins going away
mid-build and coming back, under a local Ray cluster and on threads without Ray; thermal control; the
devices file; the CLI."""

from __future__ import annotations

import csv
import threading
import time
from contextlib import ExitStack

import pytest
from fakes.loopback_adb import LoopbackDevice

from roofline.errors import InvalidParameterError
from roofline.profilers.farm import profile_farm
from roofline.profilers.farm_phones import Cooldown, Phone, PhoneWorker, load_phones
from roofline.profilers.kernels import sample_kernels
from roofline.profilers.lut import DEVICE_COLUMNS, LUT_COLUMNS, open_lut

FAST = {"min_repeats": 3, "warmup": 1, "max_seconds": 0.02}
pytestmark = pytest.mark.usefixtures("home")  # a fresh user for every test (conftest.py)


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _three_phones(stack: ExitStack, tmp_path) -> list[LoopbackDevice]:
    twin = {"ro.product.model": "Twin Phone"}
    return [stack.enter_context(LoopbackDevice(tmp_path / name, props={**props, "ro.serialno": serial}))
            for name, serial, props in (("a1", "TWIN0001", twin), ("a2", "TWIN0002", twin),
                                        ("b", "OTHER001", {"ro.product.model": "Other Phone"}))]  # fmt: skip


def _farm_case(engine: str, tmp_path, binary):
    keys = sample_kernels(12, seed=3, precision="int8", kinds=("pwconv", "dwconv", "gemm"))
    with ExitStack() as stack:
        devices = _three_phones(stack, tmp_path)
        devices[1].inject("away", 600.0)  # TWIN0002 goes away during its first kernel ...

        def come_back(report):  # ... and comes back once the controller has noticed (however slow the machine)
            if report.phones[1].state == "reconnecting":
                devices[1].away_until = 0.0

        phones = [Phone(address=d.address, benchmark_model=str(binary)) for d in devices]
        report = profile_farm(phones, keys, tmp_path / "luts", engine=engine, measure_options=FAST,
                              reconnect_wait_s=0.5, max_failures=30, on_update=come_back)  # fmt: skip
        went_away = devices[1].went_away
    luts = {p.name: p for p in (tmp_path / "luts").glob("*_lut.csv")}
    assert len(luts) == 2 and went_away == 1, report.phones
    twins = next(p for n, p in luts.items() if n.startswith("roofline_Twin_Phone"))
    other = next(p for n, p in luts.items() if n.startswith("roofline_Other_Phone"))
    for path, serials in ((twins, {"TWIN0001", "TWIN0002"}), (other, {"OTHER001"})):
        rows = _rows(path)
        assert sorted(r["key"] for r in rows) == sorted(keys), "every kernel exactly once"
        assert {r["device"] for r in rows} <= serials and list(rows[0]) == LUT_COLUMNS + DEVICE_COLUMNS
        assert len(open_lut(path).table()) == len(keys)  # and the table reads back
    by_phone = {s.phone.name: s for s in report.phones}
    dropped = by_phone[devices[1].address]
    assert dropped.reconnects >= 1 and dropped.state != "aside", dropped
    assert {r["device"] for r in _rows(twins)} == {"TWIN0001", "TWIN0002"} or dropped.done == 0
    assert report.left == {g: 0 for g in report.left} and not report.skipped
    return report


def test_three_phones_on_threads(tmp_path, binary):
    _farm_case("threads", tmp_path, binary)


def test_three_phones_on_a_local_ray_cluster(tmp_path, binary):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # the workers inherit this test's HOME
    try:
        _farm_case("ray", tmp_path, binary)
    finally:
        ray.shutdown()


def test_a_killed_controller_resumes_from_the_luts(tmp_path, binary):
    keys = sample_kernels(6, seed=5, precision="int8", kinds=("pwconv", "gemm"))
    with ExitStack() as stack:
        (device,) = [stack.enter_context(LoopbackDevice(tmp_path / "p"))]
        phones = [Phone(address=device.address, benchmark_model=str(binary))]
        first = profile_farm(phones, keys[:4], tmp_path / "luts", measure_options=FAST)
        (lut,) = first.luts.values()
        before = _rows(lut.path)
        again = profile_farm(phones, keys, tmp_path / "luts", measure_options=FAST)
    after = _rows(lut.path)
    assert after[:4] == before and sorted(r["key"] for r in after) == sorted(keys)  # the 4 kept, 2 added
    assert [s.done for s in again.phones] == [2]


def test_a_hot_phone_is_waited_for_and_its_rows_flagged(tmp_path, binary):
    keys = sample_kernels(2, seed=7, precision="int8", kinds=("gemm",))
    with LoopbackDevice(tmp_path / "p") as device:
        device.set_temperature(52.0, 38.5)  # hottest zone 52 C
        timer = threading.Timer(0.6, device.set_temperature, (39.0,))  # it cools down while the worker waits
        timer.start()
        cool = Phone(address=device.address, benchmark_model=str(binary), cooldown=Cooldown(45, 10, 0.1))
        t0 = time.monotonic()
        report = profile_farm([cool], keys[:1], tmp_path / "cool", measure_options=FAST)
        waited = time.monotonic() - t0
        timer.join()
        device.set_temperature(60.0)  # stays hot: a bounded wait, then the row is flagged
        hot = Phone(address=device.address, benchmark_model=str(binary), cooldown=Cooldown(45, 0.3, 0.1))
        hot_report = profile_farm([hot], keys[1:], tmp_path / "hot", measure_options=FAST)
    (row,) = _rows(next(iter(report.luts.values())).path)
    assert waited >= 0.6 and float(row["temperature_c"]) == 39.0 and row["hot"] == "False"
    (row,) = _rows(next(iter(hot_report.luts.values())).path)
    assert float(row["temperature_c"]) == 60.0 and row["hot"] == "True" and hot_report.phones[0].hot_rows == 1


def test_no_thermal_zone_reads_as_unknown(tmp_path, phone, binary):
    worker = PhoneWorker(Phone(address=phone.address, benchmark_model=str(binary), cooldown=Cooldown(45)), FAST)
    worker.connect()
    try:
        assert worker.cool_down() == (None, False)  # no zone readable: measured, not waited for
        phone.set_temperature(41.25, -273.0)  # a disconnected sensor's reading is left out
        assert worker.cool_down() == (41.25, False)
    finally:
        worker.close()


def test_a_phone_that_stays_away_is_set_aside_with_its_reason(tmp_path, binary):
    keys = sample_kernels(3, seed=9, precision="int8", kinds=("gemm",))
    with LoopbackDevice(tmp_path / "p") as device:
        address = device.address
    report = profile_farm([Phone(address=address, benchmark_model=str(binary))], keys, tmp_path / "luts",
                          measure_options=FAST, max_failures=1, reconnect_wait_s=0.05, timeout_s=2)  # fmt: skip
    (status,) = report.phones
    assert status.state == "aside" and "set aside after 2 failure(s)" in status.reason and "\n" not in status.reason
    assert not report.luts


def test_the_devices_file(tmp_path):
    path = tmp_path / "phones.yaml"
    path.write_text(
        "cooldown: {threshold_c: 45, max_wait_s: 60}\n"
        "phones:\n"
        "  - address: 192.168.1.20:5555\n    benchmark_model: ~/bm\n    affinity: f0\n"
        "  - usb: R58M123ABC\n    delegate: gpu\n    cooldown: {threshold_c: 40}\n"
    )
    a, b = load_phones(path)
    assert a.address == "192.168.1.20:5555" and a.affinity == "f0" and a.benchmark_model.endswith("/bm")
    assert a.cooldown == Cooldown(45, 60, 5.0) and b.cooldown == Cooldown(40, 60, 5.0) and b.delegate == "gpu"
    for text, message in (("phones: []", "non-empty list"), ("phones:\n  - {address: a:1, colour: red}", "colour"),
                          ("phones:\n  - {usb: X, delegate: tpu}", "delegate"),
                          ("phones:\n  - {address: a:1}\n  - {address: a:1}", "listed twice"),
                          ("phones:\n  - {}", "an address"), ("cooldown: {threshold_c: 500}\nphones: [{usb: X}]", "0-150"),
                          ("[", "not valid YAML")):  # fmt: skip
        path.write_text(text)
        with pytest.raises(InvalidParameterError, match=message):
            load_phones(path)


def test_the_command_line_profiles_several_phones(tmp_path, binary, capsys):
    from roofline.cli import main

    with ExitStack() as stack:
        a1, a2, b = _three_phones(stack, tmp_path)
        devices = tmp_path / "phones.yaml"
        devices.write_text(f"phones:\n  - address: {b.address}\n    benchmark_model: {binary}\n")
        argv = ["profile", "--adb", a1.address, "--adb", a2.address, "--devices", str(devices), "--benchmark-model",
                str(binary), "--sample", "4", "--runs", "3", "--warmup", "1", "--seconds", "0.02", "--lut-dir",
                str(tmp_path / "luts"), "--cooldown", "80"]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert main(argv) == 0  # again: nothing left to measure
        again = capsys.readouterr().out
        assert main(["profile", "--adb", a1.address, "--adb", a2.address, "--lut", "x.csv", "--sample", "1"]) == 2
    luts = sorted((tmp_path / "luts").glob("*_lut.csv"))
    assert len(luts) == 2 and all(len(_rows(p)) == 4 for p in luts)
    assert "TWIN0002" in out and "OTHER001" in out and "4 kernels in" in out
    assert "resume" not in again and "--lut-dir" in capsys.readouterr().err


def test_a_kernel_the_phone_refuses_is_skipped_and_a_failing_phone_set_aside(tmp_path, binary):
    keys = sample_kernels(4, seed=11, precision="int8", kinds=("gemm",))
    with LoopbackDevice(tmp_path / "p") as device:  # the stand-in has no GPU: every run fails, the phone stays up
        phones = [Phone(address=device.address, benchmark_model=str(binary), delegate="gpu")]
        report = profile_farm(phones, keys, tmp_path / "luts", measure_options=FAST, max_failures=3)
    (status,) = report.phones
    assert len(report.skipped) == 2 and all("benchmark_model failed" in why for why in report.skipped.values())
    assert status.state == "aside" and "set aside after 4 failure(s)" in status.reason
    assert sum(report.left.values()) == 2 and not _rows(next(iter(report.luts.values())).path)
