"""Profile many phones at once (``profile_farm``): one worker per phone, on Ray or on threads, one writer
per LUT.

- **Groups**: phones whose conditions match (``AdbRunner.conditions``: model, SoC, Android build, cores,
  governor, runner settings; the serial aside) share one LUT: its kernels go to whichever of them comes free,
  and each row names the phone that measured it (``DEVICE_COLUMNS``: serial, temperature, hot flag).
- **Engines**: ``"ray"``, one actor per phone (``ray_address``: a cluster, where each actor asks for the
  resource ``phone:<address or serial>`` so that it runs on the node the phone is attached to: start such a
  node with ``ray start --address ... --resources '{"phone:SERIAL": 1}'``); ``"threads"``, one thread per
  phone, without Ray. The controller alone writes the LUTs (``Lut.append``: locked, fsynced): a killed run
  resumes from the tables on disk.
- **Faults**: a phone that drops returns its kernel to its group's queue (for a twin, or for itself) and is
  reconnected after ``reconnect_wait_s``; after ``max_failures`` failures in a row it is set aside with one
  line saying why. A kernel that fails twice while its phone stays up is skipped and reported.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from roofline.errors import InvalidParameterError, require
from roofline.profilers.adb import DeviceGoneError, printable, safe_name
from roofline.profilers.farm_phones import Phone, PhoneWorker
from roofline.profilers.lut import Lut, open_lut

__all__ = ["profile_farm", "FarmReport", "PhoneStatus", "ENGINES", "phone_resource"]

ENGINES = ("threads", "ray")
#: conditions that differ between twins: left out of the group's identity and its LUT's conditions
_PER_PHONE = ("device", "serial")


def phone_resource(phone: Phone) -> str:
    """The Ray resource a node with ``phone`` attached advertises (``ray start --resources``)."""
    return f"phone:{phone.name}"


@dataclass
class PhoneStatus:
    """What the controller knows of one phone (the live table's row)."""

    phone: Phone
    state: str = "connecting"  # connecting, idle, busy, reconnecting, aside
    group: str | None = None
    serial: str | None = None
    done: int = 0
    failures: int = 0  # in a row
    reconnects: int = 0
    temperature_c: float | None = None
    hot_rows: int = 0
    reason: str = ""


@dataclass
class FarmReport:
    """The outcome: each group's LUT, each phone's status, the kernels left per group, the kernels skipped."""

    luts: dict[str, Lut] = field(default_factory=dict)
    phones: list[PhoneStatus] = field(default_factory=list)
    left: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class _Threads:
    """One worker per thread (calls on one phone run one after another)."""

    def __init__(self, phones, measure_options, timeout_s):
        self.workers = [PhoneWorker(p, measure_options, timeout_s) for p in phones]
        self.pools = [ThreadPoolExecutor(1, thread_name_prefix=f"phone-{i}") for i in range(len(phones))]

    def submit(self, i: int, method: str, *args):
        return self.pools[i].submit(getattr(self.workers[i], method), *args)

    def close(self) -> None:
        for worker, pool in zip(self.workers, self.pools):
            pool.shutdown(wait=True, cancel_futures=True)  # queued calls dropped, the running one finished
            worker.close()  # then the phone's connection (a close queued behind a call would be cancelled too)


class _Ray:
    """One worker per Ray actor (an actor runs its calls one after another)."""

    def __init__(self, phones, measure_options, timeout_s, address):
        self.ray = ray = require("ray", "roofline profile on Ray (pip install 'roofline[farm]')")
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        actor = ray.remote(num_cpus=0)(PhoneWorker)  # an actor waits on its phone: no host core of its own
        self.actors = [actor.options(**({"resources": {phone_resource(p): 1}} if address else {}))
                       .remote(p, measure_options, timeout_s) for p in phones]  # fmt: skip

    def submit(self, i: int, method: str, *args):
        return getattr(self.actors[i], method).remote(*args).future()

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.get(actor.close.remote(), timeout=10)
            except Exception:  # noqa: BLE001 - a dead actor or phone: nothing to close
                pass
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()


def _cause(exc: BaseException) -> BaseException:
    """The worker's own exception (Ray wraps it in a RayTaskError that keeps it as ``cause``)."""
    return getattr(exc, "cause", None) or exc


def _one_line(exc: BaseException) -> str:
    text = str(_cause(exc)).strip().splitlines()
    return printable(text[0] if text else type(_cause(exc)).__name__, 200)


def _group_of(conditions: dict) -> tuple[str, dict]:
    """A group's label (the phone model and a short hash of every shared condition) and those conditions."""
    shared = {k: v for k, v in sorted(conditions.items()) if k not in _PER_PHONE}
    digest = hashlib.sha1(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{safe_name(shared.get('device_model') or 'phone')}_{digest}", shared


def profile_farm(phones: list[Phone], keys, out_dir, precision: str = "int8", engine: str = "threads",
                 ray_address: str | None = None, measure_options: dict | None = None, max_failures: int = 3,
                 reconnect_wait_s: float = 2.0, timeout_s: float = 120.0, on_update=None) -> FarmReport:  # fmt: skip
    """Measure every kernel of ``keys`` (structured, at ``precision``) on every group of ``phones`` into
    ``out_dir/<group>_<precision>_lut.csv`` (resumed). ``measure_options``: ``AdbRunner.latency``'s
    (min_repeats, warmup, max_seconds). ``on_update(report)`` is called as work progresses (a live table)."""
    if engine not in ENGINES:
        raise InvalidParameterError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if not phones:
        raise InvalidParameterError("profile_farm needs at least one phone")
    keys = list(dict.fromkeys(keys))
    suffixes = {k.rsplit("_", 1)[-1] for k in keys}
    if suffixes - {precision}:
        raise InvalidParameterError(f"the kernels' precision {sorted(suffixes)} is not {precision!r}")
    options = dict(measure_options or {})
    runs = _Ray(phones, options, timeout_s, ray_address) if engine == "ray" else _Threads(phones, options, timeout_s)
    report = FarmReport(phones=[PhoneStatus(p) for p in phones])
    queues: dict[str, deque] = {}
    failed: Counter = Counter()
    inflight = {runs.submit(i, "connect"): (i, "connect", None) for i in range(len(phones))}
    try:
        while inflight:
            done, _ = wait(inflight, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in done:
                i, kind, key = inflight.pop(future)
                status = report.phones[i]
                exc = future.exception()
                if kind == "connect":
                    _connected(report, queues, status, future, exc, keys, out_dir, precision, max_failures, options)
                elif exc is None:  # a measured row: written here, the one writer of its LUT
                    row = future.result()
                    report.luts[status.group].append([row])
                    status.state, status.done, status.failures = "idle", status.done + 1, 0
                    status.temperature_c, status.hot_rows = row["temperature_c"], status.hot_rows + bool(row["hot"])
                else:
                    queues[status.group].appendleft(key)  # back to the queue: a twin, or this phone again
                    gone = isinstance(_cause(exc), (DeviceGoneError, ConnectionError, OSError))
                    if not gone:  # the phone is up but the kernel failed: twice, and it is skipped
                        failed[key] += 1
                        if failed[key] >= 2:
                            queues[status.group].popleft()
                            report.skipped[key] = _one_line(exc)
                    _failed(status, exc, max_failures, "idle" if not gone else "reconnecting")
                if status.state == "reconnecting":
                    inflight[runs.submit(i, "connect", reconnect_wait_s)] = (i, "connect", None)
            for i, status in enumerate(report.phones):  # every free phone takes its group's next kernel
                if status.state == "idle" and queues.get(status.group):
                    key = queues[status.group].popleft()
                    status.state = "busy"
                    inflight[runs.submit(i, "measure", key)] = (i, "measure", key)
            report.left = {g: len(q) for g, q in queues.items()}
            if on_update is not None:
                on_update(report)
    finally:
        runs.close()
    report.left = {g: len(q) for g, q in queues.items()}
    return report


def _connected(report, queues, status, future, exc, keys, out_dir, precision, max_failures, options) -> None:
    """A phone (re)connected, or failed to: join or create its group (and its LUT and queue)."""
    if exc is not None:
        _failed(status, exc, max_failures, "reconnecting")
        return
    group, shared = _group_of(future.result())
    if status.group is not None and status.group != group:  # another phone answers at this address now
        _failed(status, RuntimeError(f"{status.phone.name} is no longer the phone it was ({group})"), 0, "aside")
        return
    status.reconnects += status.group is not None
    status.group, status.serial, status.state, status.failures = group, future.result().get("serial"), "idle", 0
    if group not in report.luts:
        meta = {**shared, "precision": precision, "timing": "model", "measure": dict(sorted(options.items()))}
        lut = open_lut(Path(out_dir) / f"{group}_{precision}_lut.csv", meta, devices=True)
        report.luts[group] = lut
        done = lut.done()
        queues[group] = deque(k for k in keys if k not in done)


def _failed(status: PhoneStatus, exc, max_failures: int, then: str) -> None:
    status.failures += 1
    status.reason = _one_line(exc)
    status.state = "aside" if status.failures > max_failures or then == "aside" else then
    if status.state == "aside":
        status.reason = f"set aside after {status.failures} failure(s): {status.reason}"
