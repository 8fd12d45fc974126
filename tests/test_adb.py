"""Phones over adb, against the loopback test device: the transport (adb-shell, and Debian's adb client
as an independent check of the protocol), the benchmark_model runner, device LUTs and calibration, and
every fault: a drop mid-push and mid-run, a stalled reply, a malformed packet, a refused key."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
from fakes.loopback_adb import LoopbackDevice

import roofline
from roofline.cli import main
from roofline.profilers.adb import Device, DeviceError, DeviceGoneError, UnauthorizedError, fingerprint
from roofline.profilers.build import build_lut
from roofline.profilers.kernels import sample_kernels
from roofline.profilers.lut import open_lut
from roofline.profilers.runners.adb import AdbRunner
from roofline.profilers.tflite_writer import example_network

FAST = {"min_repeats": 5, "warmup": 1, "max_seconds": 0.05}


pytestmark = pytest.mark.usefixtures("home")  # a fresh user for every test (conftest.py)


def test_shell_status_push_pull_and_fingerprint(phone, tmp_path, home):
    with Device(phone.address, timeout_s=10) as device:
        assert device.run("echo hi; exit 3") == (3, "hi\n")  # the legacy shell service carries no status
        assert device.shell("getprop ro.build.version.release").strip() == "14"
        data = os.urandom(300_000)
        (tmp_path / "a.bin").write_bytes(data)
        device.push(tmp_path / "a.bin", "/data/local/tmp/a.bin")
        device.pull("/data/local/tmp/a.bin", tmp_path / "b.bin")
        assert (tmp_path / "b.bin").read_bytes() == data and device.size("/data/local/tmp/a.bin") == 300_000
        fp = fingerprint(device)
        with pytest.raises(DeviceError, match=r"`ls /nope` exited with status \d+: .*No such file"):
            device.shell("ls /nope")
    assert fp["device_model"] == "roofline Loopback Phone" and fp["android"] == "14" and fp["cpu_count"] >= 1
    assert (home / "roofline_adbkey").is_file()  # no user key: one was generated and kept


def test_the_users_adb_key_is_reused(phone, home):
    from adb_shell.auth.keygen import keygen

    (home / ".android").mkdir()
    keygen(str(home / ".android" / "adbkey"))
    with Device(phone.address) as device:
        assert device.key == home / ".android" / "adbkey" and device.shell("echo ok").strip() == "ok"
    assert not (home / "roofline_adbkey").exists()


@pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb client is not installed (apt-get install adb)")
def test_debians_adb_client_speaks_to_the_test_device(phone, tmp_path, home):
    with socket.socket() as s:  # a free port for this test's adb server: two test runs at once never share one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(port)}

    def adb(*args):
        r = subprocess.run(["adb", *args], env=env, capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    try:
        adb("start-server")
        adb("connect", phone.address)  # the first connect sends the new key: the device accepts it
        for _ in range(20):
            if f"{phone.address}\tdevice" in adb("devices")[1]:
                break
            subprocess.run(["sleep", "0.2"])
        assert adb("-s", phone.address, "shell", "getprop ro.product.model")[1].strip() == "Loopback Phone"
        (tmp_path / "x.bin").write_bytes(os.urandom(150_000))
        assert adb("-s", phone.address, "push", str(tmp_path / "x.bin"), "/data/local/tmp/x.bin")[0] == 0
        assert adb("-s", phone.address, "pull", "/data/local/tmp/x.bin", str(tmp_path / "y.bin"))[0] == 0
        assert (tmp_path / "y.bin").read_bytes() == (tmp_path / "x.bin").read_bytes()
        assert phone.path("/data/local/tmp/x.bin").read_bytes() == (tmp_path / "x.bin").read_bytes()
    finally:
        adb("kill-server")
    assert "sync:" in phone.log and any(s.startswith("shell:") for s in phone.log)


def test_unreachable_and_unauthorised_devices_fail_in_one_line(tmp_path):
    with pytest.raises(DeviceError, match=r"cannot reach device 127.0.0.1:1: .*adb tcpip 5555"):
        Device("127.0.0.1:1", timeout_s=2).connect()
    with pytest.raises(DeviceError, match="expected HOST:PORT"):
        Device("phone.local", timeout_s=2).connect()
    with LoopbackDevice(tmp_path / "strict", accept_new_keys=False) as strict:
        with pytest.raises(UnauthorizedError, match=r"accept the 'Allow USB debugging\?' prompt") as err:
            Device(strict.address, timeout_s=3, auth_timeout_s=1).connect()
    assert "\n" not in str(err.value)


def test_a_stalled_reply_times_out_and_the_next_call_reconnects(phone):
    with Device(phone.address, timeout_s=1) as device:
        phone.inject("stall", 3)
        with pytest.raises(DeviceGoneError, match="timed out"):
            device.shell("echo late")
        assert device.shell("echo back").strip() == "back"


def test_a_malformed_packet_is_a_clear_error(phone):
    with Device(phone.address, timeout_s=3) as device:
        phone.inject("malformed")
        with pytest.raises(DeviceGoneError, match=r"device 127.0.0.1:\d+: `echo x` (failed|timed out) \(\w+"):
            device.shell("echo x")


def test_the_benchmark_binary_is_asked_for_once_and_remembered(phone, binary):
    runner = AdbRunner(phone.address)
    with pytest.raises(DeviceError, match="no benchmark_model binary known for device LOOPBACK0001: download"):
        runner.latency(example_network("int8"), **FAST)
    AdbRunner(phone.address, benchmark_model=binary).latency(example_network("int8"), **FAST)
    m = AdbRunner(phone.address).latency(example_network("int8"), **FAST)  # remembered
    assert m.stats.median_ms > 0 and m.conditions["device_model"] == "roofline Loopback Phone"
    assert not list(phone.path("/data/local/tmp/roofline").glob("*.tflite"))  # cleaned up


def test_op_profiling_maps_onto_the_layer_table(phone, binary):
    from roofline.profilers.benchmark_output import map_ops_to_layers

    runner = AdbRunner(phone.address, benchmark_model=binary, affinity="1")
    data = example_network("fp32")
    summary, ops = runner.profile(data, runs=5)
    layers, unmapped = map_ops_to_layers(ops, roofline.count(data))
    assert summary["avg_us"] > 0 and len(ops) == 7 and unmapped.empty
    assert layers["measured_ms"].notna().all()
    assert any("taskset 1 /data/local/tmp/roofline/benchmark_model --graph=" in s for s in phone.log)
    with pytest.raises(DeviceError, match=r"benchmark_model failed .*status 1\): ERROR: Benchmarking failed"):
        AdbRunner(phone.address, delegate="gpu").latency(data, **FAST)


def test_profile_a_phone_then_calibrate_it(phone, binary, tmp_path, capsys):
    lut = tmp_path / "phone.csv"
    argv = ["profile", "--adb", phone.address, "--benchmark-model", str(binary), "--sample", "6", "--runs", "5",
            "--warmup", "1", "--seconds", "0.05", "--lut", str(lut)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "roofline Loopback Phone" in out and "6 kernels" in out
    table = open_lut(lut).table()
    meta = open_lut(lut).meta["conditions"]
    assert len(table) == 6 and meta["runtime"] == "benchmark_model" and meta["precision"] == "int8"
    assert meta["device_model"] == "roofline Loopback Phone" and meta["serial"] == "LOOPBACK0001"
    assert "cpu_model" not in meta and "system" not in meta  # the host's fingerprint is not the phone's
    assert main(["calibrate", str(lut), "-o", str(tmp_path / "phone.yaml")]) == 0
    spec = roofline.load_device(tmp_path / "phone.yaml")
    assert spec.provenance == "fitted" and spec.default_precision == "int8" and spec.calibration


def test_a_drop_mid_push_is_retried_and_the_lut_stays_whole(phone, binary, tmp_path):
    keys = sample_kernels(4, seed=3, precision="int8", kinds=("pwconv",))
    runner = AdbRunner(phone.address, benchmark_model=binary, timeout_s=5)  # a dead link is noticed in 5 s
    runner.latency(example_network("int8"), **FAST)  # binary pushed, connection up
    phone.inject("drop_push", 1000)
    lut = build_lut(keys, tmp_path / "l.csv", runner=runner, progress=False, probe_every=1000, **FAST)
    assert sorted(lut.table().key) == sorted(keys)
    assert not list(phone.path("/data/local/tmp/roofline").glob("*.partial"))
    extra = sample_kernels(8, seed=3, precision="int8", kinds=("pwconv",))  # starts with the same 4 keys
    for fault, value, upto in (("malformed", 1, 6), ("stall", 6, 8)):  # a garbled reply, a silent phone
        phone.inject(fault, value)
        build_lut(extra[:upto], tmp_path / "l.csv", runner=runner, progress=False, probe_every=1000, **FAST)
    table = open_lut(tmp_path / "l.csv").table()
    assert sorted(table.key) == sorted(extra) and (table.latency_ms > 0).all()


def test_a_drop_mid_run_stops_the_build_without_losing_a_row(phone, binary, tmp_path):
    keys = sample_kernels(5, seed=4, precision="int8", kinds=("pwconv", "dwconv"))
    path = tmp_path / "l.csv"
    runner = AdbRunner(phone.address, benchmark_model=binary, retries=0, timeout_s=5)
    build_lut(keys[:2], path, runner=runner, progress=False, **FAST)
    phone.inject("drop_run", 4)  # two probe runs, one kernel, then the phone goes away on the next
    with pytest.raises(DeviceGoneError, match="the device closed the connection.*went away.*3 measured kernel"):
        build_lut(keys, path, runner=runner, progress=False, **FAST)  # at once: EOF is not polled until the timeout
    kept = open_lut(path).table()
    assert sorted(kept.key) == sorted(keys[:3])  # every finished row, nothing half-written
    lut = build_lut(keys, path, runner=AdbRunner(phone.address), progress=False, **FAST)  # the rerun continues
    assert sorted(lut.table().key) == sorted(keys)


def test_a_phone_that_goes_away_is_noticed_at_once_and_the_same_command_resumes(binary, tmp_path, capsys):
    """Issue 13: a closed link fails the call at once (adb-shell alone polls the dead socket at full CPU
    until the timeout), reconnection gives up within seconds, and the one-line error says what is kept."""
    lut, timeout_s = tmp_path / "phone.csv", 30
    phone = LoopbackDevice(tmp_path / "phone").__enter__()
    argv = ["profile", "--adb", phone.address, "--benchmark-model", str(binary), "--sample", "6", "--runs", "5",
            "--warmup", "1", "--seconds", "0.05", "--timeout", str(timeout_s), "--lut", str(lut)]  # fmt: skip
    killed, done = {}, threading.Event()

    def kill_after_the_first_row():
        while not (lut.is_file() and lut.read_text().count("\n") >= 2):  # the header and a row
            if done.wait(0.02):
                return
        killed["wall_s"], killed["cpu_s"] = time.perf_counter(), time.process_time()
        phone.close()  # the listening socket and the open connection

    threading.Thread(target=kill_after_the_first_row, daemon=True).start()
    try:
        code = main(argv)
        wall_s, cpu_s = time.perf_counter() - killed["wall_s"], time.process_time() - killed["cpu_s"]
    finally:
        done.set()
        phone.close()
    err = capsys.readouterr().err.strip()
    kept = open_lut(lut).table()
    assert code == 2 and "\n" not in err and 1 <= len(kept) < 6
    assert re.search(r"failed \((ConnectionAbortedError: the device closed the connection|BrokenPipeError|"
                     r"ConnectionResetError).*3 attempts to reconnect over 3.5 s failed", err), err  # fmt: skip
    assert re.search(rf"; {len(kept)} measured kernel\(s\) kept in {re.escape(str(lut))} \({6 - len(kept)} of 6 to "
                     r"go\): run the same command again to resume$", err), err  # fmt: skip
    assert wall_s < timeout_s and cpu_s < 0.5 * wall_s, (wall_s, cpu_s)  # loose: the machine may be busy
    with LoopbackDevice(tmp_path / "phone", port=phone.port):  # the phone is back, at the same address
        assert main(argv) == 0
    table = open_lut(lut).table().set_index("key")
    assert len(table) == 6 and table.loc[list(kept.key), "measured_at"].tolist() == kept.measured_at.tolist()
