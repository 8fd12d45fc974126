"""The test suite on a busy machine: run it while other processes keep every core busy, twice in a row.

    python benches/suite_under_load.py              # a quiet run, then two runs under load
    python benches/suite_under_load.py --no-quiet   # only the two runs under load
    python benches/suite_under_load.py -- -k adb    # arguments after -- go to pytest

Each busy process spins a Python loop (one per core, as ``stress --cpu N`` would). The suite must pass
every time; the table shows each run's wall time, so a quiet-vs-loaded ratio and a growth from one run to
the next are visible. Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def _suite(pytest_args: list[str]) -> tuple[bool, float, str]:
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
                       cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    lines = r.stdout.strip().splitlines() or [""]
    for line in lines:  # which tests failed, as they fail: a loaded run's failure is the point of this script
        if line.startswith(("FAILED ", "ERROR ")):
            print(f"  {line}", flush=True)
    return r.returncode == 0, time.perf_counter() - start, lines[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-quiet", action="store_true", help="skip the quiet reference run")
    parser.add_argument("--runs", type=int, default=2, help="runs under load (default 2)")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="busy processes (default: one per core)")
    args, pytest_args = parser.parse_known_args(argv)
    pytest_args = [a for a in pytest_args if a != "--"]
    rows = []
    if not args.no_quiet:
        rows.append(("quiet", *_suite(pytest_args)))
    hogs = [mp.Process(target=_spin, daemon=True) for _ in range(args.busy)]
    for h in hogs:
        h.start()
    try:
        for i in range(args.runs):
            rows.append((f"busy x{args.busy} #{i + 1}", *_suite(pytest_args)))
            print(f"{rows[-1][0]}: {'passed' if rows[-1][1] else 'FAILED'} in {rows[-1][2]:.0f} s", flush=True)
    finally:
        for h in hogs:
            h.terminate()
    print(f"{'run':<14} {'result':<7} {'wall_s':>7}  pytest")
    for name, ok, wall_s, last in rows:
        print(f"{name:<14} {'pass' if ok else 'FAIL':<7} {wall_s:>7.0f}  {last}")
    return 0 if all(ok for _, ok, _, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
