"""The phones of a farm: the devices file (``load_phones``), and the worker that drives one phone
(``PhoneWorker``: a Ray actor's class, or a thread's object without Ray).

A devices file (YAML)::

    cooldown: {threshold_c: 45, max_wait_s: 120, poll_s: 5}   # every phone's default (optional)
    phones:
      - address: 192.168.1.20:5555                          # or usb: SERIAL
        benchmark_model: ~/Downloads/android_aarch64_benchmark_model
        affinity: f0                                        # taskset mask (optional)
        delegate: xnnpack                                   # xnnpack (default), none, gpu, nnapi, hexagon
        cooldown: {threshold_c: 40}                         # this phone's own (optional)

Before each kernel the worker reads the phone's hottest thermal zone and, above ``threshold_c``, waits
(``poll_s`` between looks, ``max_wait_s`` at most); every row keeps the temperature it started at, and a
row measured still above the threshold is flagged ``hot``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import InvalidParameterError, check_choice

__all__ = ["Cooldown", "Phone", "PhoneWorker", "load_phones"]

_PHONE_FIELDS = {"address", "usb", "benchmark_model", "affinity", "delegate", "threads", "cooldown"}


@dataclass(frozen=True)
class Cooldown:
    """Wait before a kernel while the phone's hottest zone is above ``threshold_c`` (None: never wait)."""

    threshold_c: float | None = None
    max_wait_s: float = 120.0
    poll_s: float = 5.0

    def __post_init__(self):
        t, w, p = self.threshold_c, self.max_wait_s, self.poll_s
        if t is not None and not (isinstance(t, (int, float)) and 0 < t < 150):
            raise InvalidParameterError(f"cooldown threshold_c must be a temperature in Celsius (0-150), got {t!r}")
        if not (isinstance(w, (int, float)) and w >= 0) or not (isinstance(p, (int, float)) and p > 0):
            raise InvalidParameterError(f"cooldown max_wait_s must be >= 0 and poll_s > 0 seconds, got {w!r}, {p!r}")


@dataclass(frozen=True)
class Phone:
    """One phone of the farm and how to drive it (the single-phone ``roofline profile`` options)."""

    address: str | None = None  # HOST:PORT (adb over TCP)
    usb: str | None = None  # a USB serial
    benchmark_model: str | None = None
    affinity: str | None = None
    delegate: str = "xnnpack"
    threads: int = 1
    cooldown: Cooldown = field(default_factory=Cooldown)

    def __post_init__(self):
        if (self.address is None) == (self.usb is None):
            raise InvalidParameterError(f"a phone needs an address (HOST:PORT) or a usb serial, not both: {self}")

    @property
    def name(self) -> str:
        return self.address or self.usb


def load_phones(path, cooldown: Cooldown | None = None) -> list[Phone]:
    """The phones of a devices file (module docstring); ``cooldown``: the default where the file gives none."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidParameterError(f"devices file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidParameterError(f"devices file {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("phones"), list) or not data["phones"]:
        raise InvalidParameterError(f"devices file {path}: expected a mapping with a non-empty list 'phones'")
    default = _cooldown(path, data.get("cooldown"), cooldown or Cooldown())
    phones = []
    for i, entry in enumerate(data["phones"], start=1):
        if not isinstance(entry, dict) or set(entry) - _PHONE_FIELDS:
            unknown = sorted(set(entry) - _PHONE_FIELDS) if isinstance(entry, dict) else entry
            raise InvalidParameterError(f"devices file {path}: phone {i}: unknown fields {unknown} "
                                        f"(known: {sorted(_PHONE_FIELDS)})")  # fmt: skip
        entry = dict(entry)
        entry["cooldown"] = _cooldown(path, entry.get("cooldown"), default)
        if entry.get("benchmark_model"):
            entry["benchmark_model"] = str(Path(entry["benchmark_model"]).expanduser())
        check_choice(entry.get("delegate", "xnnpack"), ("xnnpack", "none", "gpu", "nnapi", "hexagon"), "delegate")
        try:
            phones.append(Phone(**entry))
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"devices file {path}: phone {i}: {exc}") from None
    names = [p.name for p in phones]
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"devices file {path}: a phone is listed twice: {names}")
    return phones


def _cooldown(path: Path, value, default: Cooldown) -> Cooldown:
    if value is None:
        return default
    if not isinstance(value, dict) or set(value) - {"threshold_c", "max_wait_s", "poll_s"}:
        raise InvalidParameterError(f"devices file {path}: cooldown must map threshold_c, max_wait_s, poll_s, "
                                    f"got {value!r}")  # fmt: skip
    return Cooldown(**{**default.__dict__, **value})


class PhoneWorker:
    """Drives one phone: connects, says what it is, measures one kernel at a time (after cooling down),
    reconnects. One per phone, each in its own Ray actor or thread: calls on one worker never overlap."""

    def __init__(self, phone: Phone, measure_options: dict, timeout_s: float = 120.0):
        self.phone, self.measure_options, self.timeout_s = phone, dict(measure_options), timeout_s
        self.runner = None

    def connect(self, wait_s: float = 0.0) -> dict:
        """Connect (again, after ``wait_s``) and return the phone's conditions (``AdbRunner.conditions``)."""
        from roofline.profilers import get_runner

        time.sleep(wait_s)
        if self.runner is not None:
            self.runner.close()
        p = self.phone
        self.runner = get_runner("adb", address=p.address, serial=p.usb, benchmark_model=p.benchmark_model,
                                 threads=p.threads, affinity=p.affinity, delegate=p.delegate,
                                 timeout_s=self.timeout_s)  # fmt: skip
        return self.runner.conditions()

    def cool_down(self) -> tuple[float | None, bool]:
        """Wait (bounded) while the phone is above its threshold: (temperature now, still hot)."""
        c = self.phone.cooldown
        temp = self.runner.temperature_c()
        deadline = time.monotonic() + c.max_wait_s
        while c.threshold_c is not None and temp is not None and temp > c.threshold_c and time.monotonic() < deadline:
            time.sleep(min(c.poll_s, max(0.0, deadline - time.monotonic())))
            temp = self.runner.temperature_c()
        return temp, bool(c.threshold_c is not None and temp is not None and temp > c.threshold_c)

    def measure(self, key: str) -> dict:
        """One LUT row of ``key`` measured on this phone, with its serial, temperature and hot flag."""
        from roofline.profilers.build import measure_row

        temp, hot = self.cool_down()
        row = measure_row(self.runner, key, True, "model", self.measure_options)
        return {**row, "device": self.runner.fingerprint()["serial"], "temperature_c": temp, "hot": hot}

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
