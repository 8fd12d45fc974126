"""The phone runner: TFLite models timed by ``benchmark_model`` on an Android device over adb.

The user provides the ``benchmark_model`` binary once per device (it is not a pip package; see the
README, "Profile a phone"); its path is remembered in ``~/.config/roofline/devices.json`` under the
device's serial number. Each model is pushed under a content hash, run with the chosen threads, core
affinity (``taskset``), delegate and op profiling, parsed, and removed. A connection that drops is
retried once (reconnect, push again, run again); a second failure, or a device that does not take a
connection again within seconds (``Device.reconnect``), is a one-line ``DeviceGoneError``.

Every word of a device command that comes from the user or the device (the work folder, file names) is
quoted for the device's shell; ``threads``, ``affinity`` and ``workdir`` are checked first. The
remembered paths are written atomically; a cut or corrupt ``devices.json`` is ignored with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

from roofline.errors import InvalidParameterError, check_choice, check_threads
from roofline.files import atomic_write
from roofline.profilers.adb import (
    Device,
    DeviceError,
    DeviceGoneError,
    fingerprint,
    printable,
    private_dir,
    temperature_c,
)
from roofline.profilers.benchmark_output import parse_op_profile, parse_summary
from roofline.profilers.runners.base import Measurement, register_runner
from roofline.profilers.stats import NOISY_SPREAD, Stats

__all__ = ["AdbRunner", "DELEGATES", "remembered_binary"]

#: delegate name -> benchmark_model flags
DELEGATES = {
    "xnnpack": ["--use_xnnpack=true"],
    "none": ["--use_xnnpack=false"],
    "gpu": ["--use_gpu=true"],
    "nnapi": ["--use_nnapi=true"],
    "hexagon": ["--use_hexagon=true"],
}
_WHERE_TO_GET = ("download android_aarch64_benchmark_model from TensorFlow Lite's nightly tools (see the README, "
                 "'Profile a phone') and pass --benchmark-model PATH once")  # fmt: skip


def _config() -> Path:
    return Path(os.environ.get("ROOFLINE_CONFIG", Path.home() / ".config" / "roofline")).expanduser() / "devices.json"


def _known(config: Path) -> dict[str, str]:
    """The remembered binaries; a file that is cut off or not such a mapping counts as empty, with a
    warning on stderr (losing remembered paths costs one ``--benchmark-model``; the file is rewritten
    when one is next given)."""
    if not config.is_file():
        return {}
    try:
        known = json.loads(config.read_text(encoding="utf-8"))
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        known = None
    if not isinstance(known, dict):
        print(f"roofline: warning: {config} is not a JSON mapping of device serials to benchmark_model paths "
              "(cut off or edited?): ignoring it; pass --benchmark-model PATH again", file=sys.stderr)  # fmt: skip
        return {}
    return {k: v for k, v in known.items() if isinstance(v, str)}


def remembered_binary(serial: str, path=None) -> Path:
    """The local ``benchmark_model`` for a device: ``path`` (then remembered), else the remembered one."""
    config = _config()
    known = _known(config)
    if path is not None:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise DeviceError(f"benchmark_model binary {str(path)!r} does not exist; {_WHERE_TO_GET}")
        if known.get(serial) != str(path):
            known[serial] = str(path)
            private_dir(config.parent)
            atomic_write(config, json.dumps(known, indent=1, sort_keys=True) + "\n", mode=0o600)
        return path
    if serial not in known or not Path(known[serial]).is_file():
        raise DeviceError(f"no benchmark_model binary known for device {serial}: {_WHERE_TO_GET}")
    return Path(known[serial])


@register_runner("adb")
class AdbRunner:
    """Runs TFLite models with ``benchmark_model`` on an Android device.

    Args:
        address / serial: the device (TCP "host:port" after ``adb tcpip 5555``, or a USB serial).
        benchmark_model: local path of the binary (remembered per device; needed the first time).
        threads: ``--num_threads``. affinity: a ``taskset`` CPU mask such as "f0" (big cores).
        delegate: one of ``DELEGATES``. workdir: where files go on the device.
    """

    model_format, target = "tflite", "device"

    def __init__(self, address: str | None = None, serial: str | None = None, benchmark_model=None,
                 threads: int = 1, affinity: str | None = None, delegate: str = "xnnpack", key=None,
                 workdir: str = "/data/local/tmp/roofline", timeout_s: float = 120.0, retries: int = 1):  # fmt: skip
        check_choice(delegate, DELEGATES, "delegate")
        check_threads(threads)
        if affinity is not None and not (isinstance(affinity, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]+", affinity)):
            raise InvalidParameterError(f"the 'affinity' parameter must be a hexadecimal taskset CPU mask such as f0 "
                                        f"(the big cores of most phones), got {affinity!r}")  # fmt: skip
        if not (isinstance(workdir, str) and workdir.startswith("/") and workdir.strip("/")
                and printable(workdir) == workdir):  # fmt: skip
            raise InvalidParameterError(f"the 'workdir' parameter must be an absolute folder on the device, such as "
                                        f"/data/local/tmp/roofline, got {workdir!r}")  # fmt: skip
        self.device = Device(address, serial, key=key, timeout_s=timeout_s)
        self.threads, self.affinity, self.delegate = threads, affinity, delegate
        self.workdir, self.retries = workdir.rstrip("/"), retries
        self._binary_arg, self._fingerprint, self._binary_ready = benchmark_model, None, False

    # -- device state ----------------------------------------------------------------------------

    def fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.device)
        return self._fingerprint

    def temperature_c(self) -> float | None:
        """The phone's hottest thermal zone now (Celsius; None where unreadable)."""
        return temperature_c(self.device)

    def conditions(self) -> dict:
        fp = self.fingerprint()
        return {"runtime": "benchmark_model", "device": self.device.name, "threads": self.threads,
                "affinity": self.affinity, "delegate": self.delegate,
                **{k: v for k, v in fp.items() if k != "thermal_max_c"}}  # fmt: skip

    def _prepare(self) -> str:
        binary = f"{self.workdir}/benchmark_model"
        if not self._binary_ready:
            local = remembered_binary(self.fingerprint()["serial"], self._binary_arg)
            self.device.shell(f"mkdir -p {shlex.quote(self.workdir)}")
            if self.device.size(binary) != local.stat().st_size:
                self.device.push(local, binary)
            self.device.shell(f"chmod 755 {shlex.quote(binary)}")
            self._binary_ready = True
        return binary

    # -- running ---------------------------------------------------------------------------------

    def _command(self, binary: str, graph: str, profiling: bool, runs: int, warmup: int, min_secs: float) -> str:
        flags = [f"--graph={graph}", f"--num_threads={self.threads}", f"--num_runs={runs}", f"--warmup_runs={warmup}",
                 f"--warmup_min_secs={min(0.5, min_secs):g}", f"--min_secs={min_secs:g}",
                 *DELEGATES[self.delegate]]  # fmt: skip
        if profiling:
            flags.append("--enable_op_profiling=true")
        prefix = ["taskset", self.affinity] if self.affinity else []
        return " ".join(shlex.quote(word) for word in [*prefix, binary, *flags])

    def run(self, model, profiling: bool = False, runs: int = 50, warmup: int = 5, min_secs: float = 1.0) -> str:
        """Push ``model`` (.tflite path or bytes), run ``benchmark_model`` on it, clean up; its stdout."""
        data = Path(model).read_bytes() if isinstance(model, (str, os.PathLike)) else bytes(model)
        graph = f"{self.workdir}/{hashlib.sha1(data).hexdigest()[:16]}.tflite"
        for attempt in range(self.retries + 1):
            try:
                binary = self._prepare()
                with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
                    f.write(data)
                    f.flush()
                    self.device.push(f.name, graph)
                status, out = self.device.run(self._command(binary, graph, profiling, runs, warmup, min_secs))
                # removed apart, once the run answered: an attempt that stalled and finished after its retry had
                # pushed the same file would otherwise delete the retry's graph (tests/test_adb.py, "stall")
                self.device.run(f"rm -f {shlex.quote(graph)}")
                break
            except DeviceGoneError as exc:
                self._binary_ready = False
                if attempt == self.retries:
                    raise
                self.device.reconnect(after=exc)
        if status != 0:
            last = next((ln for ln in reversed(out.strip().splitlines()) if ln.strip()), "(no output)")
            raise DeviceError(f"benchmark_model failed on {self.device.name} (status {status}): {printable(last, 200)}")
        return out

    def latency(self, model, min_repeats: int = 50, warmup: int = 5, max_seconds: float = 1.0, **_) -> Measurement:
        """Whole-model latency from ``benchmark_model``'s summary (avg as the centre, min and max as the spread)."""
        out = self.run(model, runs=min_repeats, warmup=warmup, min_secs=max_seconds)
        s = parse_summary(out)
        avg, lo, hi = s["avg_us"] / 1e3, s["min_us"] / 1e3, s["max_us"] / 1e3
        cv = s["std_us"] / s["avg_us"] if s["avg_us"] else 0.0
        # benchmark_model gives no percentiles: p10..p90 of a normal spread is 2.563 standard deviations
        noisy = 2.563 * s["std_us"] > NOISY_SPREAD * s["avg_us"]
        stats = Stats(avg, lo, hi, avg, cv, int(s["count"]), warmup, True, bool(noisy))
        return Measurement(stats, self.conditions())

    def profile(self, model, runs: int = 50):
        """(summary dict, per-op table) of one model with op profiling on."""
        out = self.run(model, profiling=True, runs=runs)
        return parse_summary(out), parse_op_profile(out)

    def close(self) -> None:
        self.device.close()
