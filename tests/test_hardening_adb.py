"""Issue 14, hardening of the phone path: the generated adb key is private, a device's words (serial,
model) never choose a host path or run as commands, the user's words (work folder, affinity, threads) are
quoted or refused in one line, and the remembered-binaries file survives being cut off."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
from fakes.loopback_adb import LoopbackDevice

from roofline.cli import main
from roofline.errors import InvalidParameterError
from roofline.files import atomic_write
from roofline.profilers.adb import Device, DeviceError, adb_key, fingerprint, safe_name
from roofline.profilers.lut import open_lut
from roofline.profilers.runners.adb import AdbRunner, remembered_binary
from roofline.profilers.tflite_writer import example_network

FAST = {"min_repeats": 5, "warmup": 1, "max_seconds": 0.05}
FAST_CLI = ["--sample", "2", "--runs", "5", "--warmup", "1", "--seconds", "0.05"]


pytestmark = pytest.mark.usefixtures("home")  # a fresh user for every test (conftest.py)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # the usual umask, under which a plain open() makes a file 0644
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _pwned(phone) -> list:
    """Marker files a hostile string would have made, anywhere in the phone's sandbox."""
    return [p for p in phone.root.rglob("pwned") if p.is_file()]


# -- the key ---------------------------------------------------------------------------------------------


def test_the_generated_key_is_0600_in_a_0700_folder_from_the_start(home, monkeypatch, umask_022, tmp_path):
    import adb_shell.auth.keygen

    real, seen = adb_shell.auth.keygen.keygen, []

    def watched_keygen(path):  # where the key is written, while it is written
        real(path)
        seen.append((_mode(os.path.dirname(path)), _mode(path), (home / ".config" / "roofline" / "adbkey").exists()))

    monkeypatch.setattr(adb_shell.auth.keygen, "keygen", watched_keygen)
    monkeypatch.delenv("ROOFLINE_ADB_KEY")
    (home / ".android").mkdir(mode=0o755)  # the user's folder, without a key: left as it is
    key = adb_key()
    assert key == home / ".config" / "roofline" / "adbkey"
    assert seen == [(0o700, 0o644, False)]  # written 0644 by adb-shell, but inside a private temporary folder
    assert _mode(key) == 0o600 and _mode(f"{key}.pub") == 0o644
    assert _mode(home / ".config" / "roofline") == 0o700 and _mode(home / ".config") == 0o700
    assert _mode(home / ".android") == 0o755
    assert sorted(os.listdir(key.parent)) == ["adbkey", "adbkey.pub"]  # no temporary left behind
    assert adb_key() == key and len(seen) == 1  # made once

    monkeypatch.setenv("ROOFLINE_ADB_KEY", str(tmp_path / "keys" / "sub" / "k"))
    other = adb_key()
    assert _mode(other) == 0o600 and _mode(other.parent) == 0o700 and _mode(other.parent.parent) == 0o700


def test_the_public_key_matches_and_an_old_loose_key_is_tightened(home, tmp_path, umask_022):
    key = adb_key()
    with LoopbackDevice(tmp_path / "strict", authorized_keys=[(home / "roofline_adbkey.pub").read_text()],
                        accept_new_keys=False) as strict:  # fmt: skip
        with Device(strict.address, timeout_s=5, auth_timeout_s=2) as device:  # signed with the private key
            assert device.shell("echo ok").strip() == "ok"
    pub = (home / "roofline_adbkey.pub").read_text()
    key.chmod(0o644)  # as an older roofline left it
    os.unlink(f"{key}.pub")
    assert adb_key() == key and _mode(key) == 0o600
    assert (home / "roofline_adbkey.pub").read_text() == pub and _mode(f"{key}.pub") == 0o644  # derived again


# -- device-supplied strings -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["../../escaped", "..", ".", "", "/", "a/b", "a:b", "x" * 300, "-rf", ".hidden",
                                  "emulator-5554", "192.168.1.20:5555", "usb:ABC", "\x1b[2Jphone", "电话", "a\0b"])  # fmt: skip
def test_safe_name_is_one_harmless_recognisable_path_component(text):
    name = safe_name(text)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z0-9]", name), name
    assert len(name) <= 64 and name not in (".", "..") and safe_name(name) == name
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", text) and len(text) <= 64:
        assert name == text  # a plain serial stays itself
    else:
        assert re.search(r"-[0-9a-f]{8}$", name)
    core = re.sub(r"[^A-Za-z0-9]", "", text)[:20]
    assert core in re.sub(r"[^A-Za-z0-9]", "", name)  # recognisable: its letters and digits are kept


def test_safe_name_keeps_different_strings_apart():
    names = [safe_name(t) for t in ("a/b", "a:b", "a_b", "a b", "../a_b", "x" * 70, "x" * 71)]
    assert len(set(names)) == len(names) and safe_name("a_b") == "a_b" and safe_name("R58M123ABC") == "R58M123ABC"
    assert safe_name("../../escaped").startswith("escaped-")


def test_a_hostile_serial_cannot_choose_where_the_lut_goes(tmp_path, binary, monkeypatch, capsys):
    hostile = {"ro.serialno": "../../escaped", "ro.product.model": "Evil\x1b[2J\rPhone $(touch pwned)"}
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # roofline-out/../../escaped_int8_lut.csv would be tmp_path's
    with LoopbackDevice(tmp_path / "phone", props=hostile) as phone:
        with Device(phone.address) as device:
            fp = fingerprint(device)
        assert main(["profile", "--adb", phone.address, "--benchmark-model", str(binary), *FAST_CLI]) == 0
        assert not _pwned(phone)
    assert fp["serial"] == "../../escaped" and fp["device_model"] == "roofline Evil[2JPhone $(touch pwned)"
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*lut.csv*"))
    name = f"{safe_name('../../escaped')}_int8_lut.csv"
    assert name.startswith("escaped-") and written == [
        tmp_path.joinpath("work", "roofline-out", name).relative_to(tmp_path)
    ]
    lut = open_lut(tmp_path / "work" / "roofline-out" / name)
    assert len(lut.table()) == 2 and lut.meta["conditions"]["serial"] == "../../escaped"  # recorded as reported
    assert f"roofline-out/{name}" in capsys.readouterr().out


# -- the user's words on the device's shell --------------------------------------------------------------


@pytest.mark.parametrize("workdir", ["/data/local/tmp/x; touch /data/local/tmp/pwned", "/data/local/tmp/$(touch pwned)",
                                     "/data/local/tmp/`touch pwned` it's"])  # fmt: skip
def test_a_hostile_workdir_is_used_literally(phone, binary, workdir):
    runner = AdbRunner(phone.address, benchmark_model=binary, workdir=workdir, affinity="0x1")
    m = runner.latency(example_network("int8"), **FAST)
    assert m.stats.median_ms > 0 and not _pwned(phone)
    assert phone.path(f"{workdir}/benchmark_model").is_file()  # the folder of that literal name
    assert not list(phone.path(workdir).glob("*.tflite"))  # the model removed: `rm -f` got the literal name too


@pytest.mark.parametrize("options", [{"workdir": "$(touch pwned)"}, {"workdir": "data/local/tmp"}, {"workdir": "/"},
                                     {"workdir": ""}, {"workdir": "/data/local/tmp/x\ntouch /data/local/tmp/pwned"},
                                     {"affinity": "f0;reboot"}, {"affinity": "f0;touch /data/local/tmp/pwned"},
                                     {"affinity": "$(touch pwned)"}, {"affinity": ""}, {"affinity": "0x"},
                                     {"affinity": "f0 "}, {"affinity": 240}, {"threads": 0}, {"threads": -1},
                                     {"threads": 1.5}, {"threads": "2"}, {"threads": True}])  # fmt: skip
def test_hostile_workdir_affinity_and_threads_are_refused_in_one_line(phone, options):
    with pytest.raises(InvalidParameterError) as err:
        AdbRunner(phone.address, **options)
    (parameter,) = options
    assert f"the {parameter!r} parameter must be" in str(err.value) and "\n" not in str(err.value)
    assert phone.log == [] and not _pwned(phone)  # refused before anything reached the phone


def test_the_cli_refuses_a_hostile_affinity_with_exit_2(phone, binary, capsys):
    argv = ["profile", "--adb", phone.address, "--benchmark-model", str(binary), "--affinity", "f0;reboot", *FAST_CLI]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("roofline: error: the 'affinity' parameter must be a hexadecimal") and err.count("\n") == 1
    assert phone.log == [] and not _pwned(phone)
    assert main([*argv[: -len(FAST_CLI) - 2], "--threads", "0", *FAST_CLI]) == 2
    err = capsys.readouterr().err  # refused by the argument parser or by AdbRunner: either way one line
    assert re.fullmatch(r"roofline: error: .*threads.* a whole number >= 1, got '?0'?.*\n", err), err


# -- the remembered binaries -----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", [b'{"LOOPBACK0001": "/opt/bench', b"", b"[1, 2]", b"\xff\xfe{", b'{"S": 3}'])
def test_a_cut_or_corrupt_devices_json_is_ignored_with_a_warning_and_rewritten(home, binary, damage, capsys):
    config = home / "config" / "devices.json"
    config.parent.mkdir()
    config.write_bytes(damage)
    with pytest.raises(DeviceError, match="no benchmark_model binary known for device S: download"):
        remembered_binary("S")
    err = capsys.readouterr().err
    if damage != b'{"S": 3}':  # a mapping with a bad entry: that entry is ignored, quietly
        assert re.fullmatch(r"roofline: warning: .*devices.json is not a JSON mapping .* pass --benchmark-model "
                            r"PATH again\n", err), err  # fmt: skip
    assert remembered_binary("S", binary) == binary.resolve()  # warns again, then rewrites the file
    capsys.readouterr()
    assert json.loads(config.read_text()) == {"S": str(binary.resolve())} and _mode(config) == 0o600
    assert remembered_binary("S") == binary.resolve() and capsys.readouterr().err == ""
    assert sorted(os.listdir(config.parent)) == ["devices.json"]  # no temporary left behind


def test_the_config_folder_is_made_private_and_the_file_written_atomically(home, binary, monkeypatch):
    remembered_binary("A", binary)
    config = home / "config" / "devices.json"
    assert _mode(config.parent) == 0o700 and json.loads(config.read_text()) == {"A": str(binary.resolve())}
    before = config.read_bytes()

    def killed(fd):  # the process dies between writing the new file and renaming it
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", killed)
        with pytest.raises(KeyboardInterrupt):
            remembered_binary("B", binary)
    assert config.read_bytes() == before and sorted(os.listdir(config.parent)) == ["devices.json"]
    atomic_write(config, b"{}", 0o640)
    assert config.read_bytes() == b"{}" and _mode(config) == 0o640
