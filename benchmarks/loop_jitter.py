"""Benchmark: servo-loop jitter of 60 s dry runs at 250, 500 and 1000 Hz, with and without CPU load.

Each run is ``motionctl run benchmarks/moves/sweep_60s.toml --sim --transport serial --rate R --json``:
the real streamer, the real serial driver, a simulated controller in its own process on a pty.  "Load"
adds one more process spinning on a core for the whole run.  Jitter is how late each tick woke after
its absolute deadline; missed deadlines are ticks skipped entirely.  Also prints the CAN bus load of the
UR10e rig's axes at each rate against 1 Mbit/s.  Paste the output into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from machine_info import machine_line

ROOT = Path(__file__).resolve().parent.parent
MOVE = ROOT / "benchmarks" / "moves" / "sweep_60s.toml"


def _spin() -> None:
    while True:
        pass


def dry_run(rate: int, loaded: bool) -> dict:
    spinner = None
    if loaded:
        spinner = multiprocessing.Process(target=_spin, daemon=True)
        spinner.start()
    try:
        with tempfile.TemporaryDirectory() as takes:
            result = subprocess.run([sys.executable, "-m", "motionctl", "run", str(MOVE), "--sim", "--transport",
                                     "serial", "--rate", str(rate), "--takes", takes, "--json"],
                                    capture_output=True, text=True, cwd=ROOT, timeout=900)
    finally:
        if spinner is not None:
            spinner.terminate()
    if not result.stdout.strip():
        return {"state": "error: " + result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="250,500,1000")
    args = parser.parse_args()
    print(f"{machine_line()}; Python {platform.python_version()}")
    print()
    print("| rate | load | ended | ticks | p50 us | p99 us | p99.9 us | max us | p99 / period | missed deadlines |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate in (int(r) for r in args.rates.split(",")):
        for loaded in (False, True):
            s = dry_run(rate, loaded)
            if "ticks" not in s:
                print(f"| {rate} Hz | {'1 spinning process' if loaded else 'none'} | {s['state']} | | | | | | | |")
                continue
            period_us = 1e6 / rate
            print(f"| {rate} Hz | {'1 spinning process' if loaded else 'none'} | {s['state']} | {s['ticks']} | "
                  f"{s['p50_late_us']:.0f} | {s['p99_late_us']:.0f} | {s['p999_late_us']:.0f} | {s['max_late_us']:.0f} | "
                  f"{100 * s['p99_late_us'] / period_us:.1f} % | {s['overruns']} |")
    sys.path.insert(0, str(ROOT))
    from motionctl.hal.canopen.busload import describe_bus_load
    from motionctl.spec import load_rig
    rig = load_rig(ROOT / "rigs" / "ur10e_track.toml")
    axes = len(rig.hardware.address)
    print()
    for rate in (250, 500, 1000):
        print(describe_bus_load(axes, rate, 6, 6)[0])


if __name__ == "__main__":
    main()
