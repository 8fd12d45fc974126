"""Benchmark: kernels per minute of ``profile_farm`` on 1, 2, 4, 8 loopback phones whose ``benchmark_model`` sleeps.

    python benches/bench_farm.py [--phones 1 2 4 8] [--sleep-ms 300] [--kernels 32] [--engine threads|ray]
                                 [--repeats 3]

Every phone is a loopback adb device (tests/fakes/loopback_adb.py) with its own serial and the same model,
so the phones form one group sharing one kernel list. Their ``benchmark_model`` is a shell script that
sleeps ``--sleep-ms`` and prints the summary TFLite's tool prints: with one timed run and no warm-up
(``measure_options``), the sleep is the whole on-phone time of a kernel, so one phone's ceiling is
60000 / sleep_ms kernels per minute and N phones' is N times that. What is missing from the ceiling is
the host's cost: writing each TFLite kernel, pushing it over adb, the shell round trips, parsing, the LUT
row (and here the fake phones' own adb servers, which run in this process). The table gives, per N, the
median throughput and its spread over ``--repeats`` runs, the speed-up over one phone and its efficiency
(speed-up / N), the setup time (connecting the phones, measured alone with no kernel), and the host's
cost per kernel: wall time per kernel per phone minus the sleep (raw, and with the setup left out).
The host is the bottleneck from the first N whose efficiency is below 0.8.

This benchmark found most of that cost to be waiting, not computing: with Nagle's algorithm on, adb-shell's
header and payload writes and the phone's small replies each waited for a delayed ACK (~88 ms per ``shell``
call; 485 ms of host time per kernel). The adb transport and the loopback phone now set ``TCP_NODELAY``.

Everything runs under a temporary HOME (a fresh adb key, no remembered binaries): the user's own
configuration is never read or written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

EFFICIENT = 0.8  # below this efficiency the host, not the phones, sets the pace

_STANDIN = r"""#!/bin/sh
# bench_farm's benchmark_model: sleeps {sleep_s} s (the whole on-phone time), then prints the summary of
# TFLite's benchmark_model for one timed run and no warm-up run.
graph=""
for arg in "$@"; do
  case "$arg" in
    --graph=*) graph="${{arg#--graph=}}" ;;
    --use_gpu=true|--use_nnapi=true|--use_hexagon=true)
      echo "ERROR: ${{arg%%=*}} delegate is not supported on this device."
      echo "ERROR: Benchmarking failed."
      exit 1 ;;
    --*=*) ;;
    *) echo "ERROR: unrecognised argument $arg"; exit 1 ;;
  esac
done
if [ ! -f "$graph" ]; then
  echo "ERROR: File $graph does not exist"
  echo "ERROR: Benchmarking failed."
  exit 1
fi
sleep {sleep_s}
cat <<EOF
INFO: STARTING!
INFO: Graph: [$graph]
INFO: Loaded model $graph
INFO: Initialized session in 0.000ms.
INFO: Running benchmark for at least 0 iterations and at least 0.01 seconds but terminate if exceeding 150 seconds.
INFO: count=0

INFO: Running benchmark for at least 1 iterations and at least 0.01 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr={sleep_us}

INFO: Inference timings in us: Init: 0, First inference: {sleep_us}, Warmup (avg): 0, Inference (avg): {sleep_us}
INFO: Memory footprint delta from the start of the tool (MB): init=0 overall=0
EOF
"""


def write_sleep_standin(path: Path, sleep_ms: float) -> Path:
    """A ``benchmark_model`` that sleeps ``sleep_ms`` then prints the summary ``parse_summary`` reads."""
    path.write_text(_STANDIN.format(sleep_s=f"{sleep_ms / 1e3:.3f}", sleep_us=int(round(sleep_ms * 1e3))))
    path.chmod(0o755)
    return path


def fresh_user(root: Path) -> None:
    """HOME, the adb key and the roofline config under ``root`` (as the tests' ``home`` fixture)."""
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["HOME"] = str(home)
    os.environ["ROOFLINE_ADB_KEY"] = str(home / "roofline_adbkey")
    os.environ["ROOFLINE_CONFIG"] = str(home / "config")


#: one timed run, no warm-up: the stand-in's sleep is a kernel's whole time on the phone
MEASURE = {"min_repeats": 1, "warmup": 0, "max_seconds": 0.01}


def run_farm(phones, keys, out_dir: Path, engine: str, timeout_s: float):
    """(wall seconds, report) of one ``profile_farm`` of ``keys`` on ``phones`` into a fresh ``out_dir``."""
    from roofline.profilers.farm import profile_farm

    t0 = time.perf_counter()
    report = profile_farm(phones, keys, out_dir, engine=engine, measure_options=MEASURE, timeout_s=timeout_s)
    return time.perf_counter() - t0, report


def check(report, keys, n: int) -> str | None:
    """What went wrong in a run: not one group, a phone set aside, a kernel missing or measured twice."""
    aside = [s.phone.name for s in report.phones if s.state == "aside"]
    if aside:
        return f"set aside: {aside} ({report.phones[0].reason})"
    if keys and len(report.luts) != 1:
        return f"{len(report.luts)} groups, expected 1"
    for lut in report.luts.values():
        measured = list(lut.table()["key"]) if keys else []
        if sorted(measured) != sorted(keys):
            return f"{len(measured)} rows for {len(keys)} kernels ({n} phones)"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phones", type=int, nargs="+", default=[1, 2, 4, 8], help="farm sizes to run")
    ap.add_argument("--sleep-ms", type=float, default=300.0, help="the stand-in's on-phone time per kernel")
    ap.add_argument("--kernels", type=int, default=32, help="kernels per run (the same ones every run)")
    ap.add_argument("--engine", choices=("threads", "ray"), default="threads")
    ap.add_argument("--repeats", type=int, default=3, help="runs per farm size")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.phones))
    if sizes[0] < 1 or args.sleep_ms <= 0 or args.kernels < 1 or args.repeats < 1:
        ap.error("--phones, --kernels and --repeats must be >= 1 and --sleep-ms > 0")

    from fakes.loopback_adb import LoopbackDevice

    from roofline.profilers.farm_phones import Phone
    from roofline.profilers.kernels import sample_kernels

    root = Path(tempfile.mkdtemp(prefix="bench_farm_"))
    fresh_user(root)  # before anything reads HOME (and before Ray starts: its workers inherit it)
    keys = sample_kernels(args.kernels, seed=0, precision="int8", kinds=("pwconv", "dwconv", "gemm"))
    binary = write_sleep_standin(root / "benchmark_model", args.sleep_ms)
    timeout_s = max(30.0, 20 * args.sleep_ms / 1e3)
    ceiling = 60000.0 / args.sleep_ms
    print(f"profile_farm, engine {args.engine}: {len(keys)} int8 kernels, stand-in sleep {args.sleep_ms:g} ms "
          f"(ceiling {ceiling:.1f} kernels/min per phone), {args.repeats} run(s) per size, "
          f"os.cpu_count() = {os.cpu_count()}")  # fmt: skip

    ray = None
    if args.engine == "ray":
        import ray

        if not ray.is_initialized():
            ray.init(num_cpus=min(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False)
    rows, failures = [], []
    try:
        with ExitStack() as stack:
            props = [{"ro.serialno": f"BENCH{i:04d}", "ro.product.model": "Bench Phone"} for i in range(sizes[-1])]
            devices = [stack.enter_context(LoopbackDevice(root / f"phone{i}", props=p)) for i, p in enumerate(props)]
            phones = [Phone(address=d.address, benchmark_model=str(binary)) for d in devices]
            # warm-up (not timed): the adb key, imports, the binary pushed to every phone once
            _, report = run_farm(phones, keys[: len(phones)], root / "warmup", args.engine, timeout_s)
            if problem := check(report, keys[: len(phones)], len(phones)):
                print(f"warm-up: {problem}")
            for n in sizes:
                walls, setups = [], []
                for r in range(args.repeats):
                    setup, _ = run_farm(phones[:n], [], root / f"setup_{n}_{r}", args.engine, timeout_s)
                    wall, report = run_farm(phones[:n], keys, root / f"run_{n}_{r}", args.engine, timeout_s)
                    if problem := check(report, keys, n):
                        failures.append(f"{n} phone(s), run {r + 1}: {problem}")
                    walls.append(wall)
                    setups.append(setup)
                kpm = len(keys) / np.asarray(walls) * 60.0
                rows.append((n, kpm, float(np.median(walls)), float(np.median(setups))))
                print(f"  {n} phone(s): {', '.join(f'{w:.2f}' for w in walls)} s", flush=True)
    finally:
        if ray is not None:
            ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)

    base = float(np.median(rows[0][1])) / rows[0][0]  # per phone, at the smallest size (1 by default)
    titles = ["phones", "kernels/min", "spread (min-max)", "speed-up", "ideal", "efficiency", "ceiling/min",
              "setup s", "host ms/kernel", "excl. setup"]  # fmt: skip
    widths = [6, 11, 16, 8, 5, 10, 11, 7, 14, 11]
    head = "  ".join(f"{t:>{w}}" for t, w in zip(titles, widths))
    print()
    print(head)
    print("-" * len(head))
    bottleneck = None
    for n, kpm, wall, setup in rows:
        med = float(np.median(kpm))
        speedup = med / base  # vs one phone (the smallest size's rate per phone, times 1)
        efficiency = speedup / n
        host_ms = wall * n / len(keys) * 1e3 - args.sleep_ms
        host_excl = max(wall - setup, 0.0) * n / len(keys) * 1e3 - args.sleep_ms
        if bottleneck is None and efficiency < EFFICIENT:
            bottleneck = n
        cells = [n, f"{med:.1f}", f"{kpm.min():.1f}-{kpm.max():.1f}", f"{speedup:.2f}x", f"{n}x", f"{efficiency:.2f}",
                 f"{n * ceiling:.1f}", f"{setup:.2f}", f"{host_ms:.1f}", f"{host_excl:.1f}"]  # fmt: skip
        print("  ".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    print()
    if bottleneck is None:
        print(f"host bottleneck (efficiency < {EFFICIENT}): none up to {sizes[-1]} phones")
    else:
        print(f"host bottleneck (efficiency < {EFFICIENT}): from {bottleneck} phones")
    one = rows[0]
    print(f"host cost per kernel on {one[0]} phone(s): {one[2] * one[0] / len(keys) * 1e3 - args.sleep_ms:.1f} ms "
          f"(wall per kernel per phone - {args.sleep_ms:g} ms sleep; "
          f"{max(one[2] - one[3], 0) * one[0] / len(keys) * 1e3 - args.sleep_ms:.1f} ms without the setup); "
          f"os.cpu_count() = {os.cpu_count()}")  # fmt: skip
    if sizes[0] != 1:
        print(f"(speed-up is relative to {sizes[0]} phones' rate per phone)")
    for line in failures:
        print(f"PROBLEM: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
