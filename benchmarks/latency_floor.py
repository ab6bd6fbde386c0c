"""Benchmark: how late this machine wakes a real-time loop, in C and in Python, with and without load.

Issue 13 asks for no gap between setpoints longer than 1.5 periods.  That cannot be better than the
machine's own wake-up latency, so this measures the floor under the servo loop: a C loop at SCHED_FIFO
(``latency_floor.c``, built here with the system's C compiler) at 1 kHz, and motionctl's own
:class:`~motionctl.runtime.clock.ServoClock` doing nothing else at 250 and 1000 Hz, each quiet and beside
``--busy`` processes spinning on a core.  "gap" is the longest time between two consecutive wake-ups.
Paste the output into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine_line

HERE = Path(__file__).resolve().parent


def _spin() -> None:
    while True:
        pass


def c_floor(seconds: int) -> str:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler: skipped"
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "latency_floor"
        subprocess.run([compiler, "-O2", "-o", str(binary), str(HERE / "latency_floor.c")], check=True)
        return subprocess.run([str(binary), "1000000", str(seconds)], capture_output=True, text=True,
                              check=True).stdout.strip()


def python_floor(rate_hz: int, seconds: int) -> str:
    from motionctl.runtime.clock import (SERVO_RT_PRIORITY, ServoClock, _fifo, quiet_garbage_collector,
                                         realtime_process)
    scheduling = realtime_process()
    _fifo(SERVO_RT_PRIORITY)
    quiet_garbage_collector()
    clock = ServoClock(rate_hz)
    clock.start()
    last = time.monotonic_ns()
    longest = 0
    for _ in range(rate_hz * seconds):
        clock.wait_next()
        now = time.monotonic_ns()
        longest, last = max(longest, now - last), now
    return (f"{rate_hz} Hz: longest gap {longest / 1e6:.2f} ms ({longest / clock.period_ns:.2f} periods), "
            f"max late {clock.stats.max_late_ns / 1e6:.2f} ms, missed {clock.stats.overruns} ({scheduling})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the loaded runs")
    args = parser.parse_args()
    print(machine_line())
    for busy in (0, args.busy):
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
        for s in spinners:
            s.start()
        try:
            print(f"busy processes: {busy}")
            print(f"  C, 1000 Hz: {c_floor(args.seconds)}")
            for rate in (250, 1000):
                line = subprocess.run([sys.executable, __file__, "--python-only", str(rate), str(args.seconds)],
                                      capture_output=True, text=True, check=True).stdout.strip()
                print(f"  Python ServoClock, {line}")
        finally:
            for s in spinners:
                s.terminate()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--python-only":
        print(python_floor(int(sys.argv[2]), int(sys.argv[3])))
        sys.exit(0)
    sys.exit(main())
