"""Benchmark: time you can trust (issue 13): simulated time, real time under load, host stalls.

1. The 60 s benchmark move (``benchmarks/moves/sweep_60s.toml``) as a whole take in simulated time
   (``motionctl run --sim --clock sim``) over serial and CAN: wall seconds, and the take's simulated
   seconds per wall second.
2. Real-time dry runs of the same move over serial (``--sim`` alone, the operator's rehearsal) at 250, 500
   and 1000 Hz with 0, 1 and 2 CPU-bound processes beside them: how the run ended, missed deadlines, the
   longest gap between setpoints while the drives were enabled, and the largest following error.
3. An injected host stall (``--fault host-stall@T+D``) of half and of twice the serial link's lookahead
   (protocol 1.1, 60 ms by default), in simulated time (exact) and on the wall clock.

Every run is a fresh ``motionctl`` process.  Paste the output into ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine_line

ROOT = Path(__file__).resolve().parent.parent
MOVE = ROOT / "benchmarks" / "moves" / "sweep_60s.toml"


def _spin() -> None:
    while True:
        pass


def run(*args: str, hogs: int = 0) -> tuple[dict, float]:
    """``motionctl run MOVE --sim --json ARGS`` with ``hogs`` CPU-bound processes beside it."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(hogs)]
    for spinner in spinners:
        spinner.start()
    try:
        with tempfile.TemporaryDirectory() as takes:
            started = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "motionctl", "run", str(MOVE), "--sim", "--json",
                                     "--takes", takes, *args], capture_output=True, text=True, cwd=ROOT, timeout=1800)
            wall = time.perf_counter() - started
    finally:
        for spinner in spinners:
            spinner.terminate()
    if not result.stdout.strip():
        return {"state": "error: " + (result.stderr.strip().splitlines() or ["?"])[-1]}, wall
    return json.loads(result.stdout), wall


def _ferr(summary: dict) -> str:
    worst = summary.get("max_following_error") or {}
    linear = [v for k, v in worst.items() if k == "track"]
    return f"{max(linear) * 1000:.2f} mm" if linear else "-"


def simulated_time() -> None:
    print("### Simulated time: the 60 s move as a whole take (go to start, run)")
    print()
    print("| transport | rate | ended | ticks | simulated s | wall s | simulated s per wall s |")
    print("|---|---|---|---|---|---|---|")
    for transport, rate in (("serial", 250), ("can", 250), ("serial", 1000)):
        summary, wall = run("--clock", "sim", "--transport", transport, "--rate", str(rate))
        ticks = summary.get("ticks", 0)
        simulated = ticks / rate
        print(f"| {transport} | {rate} | {summary.get('state')} | {ticks} | {simulated:.1f} | {wall:.1f} | "
              f"{simulated / wall:.2f} |")
    print()


def real_time(rates: list[int], loads: list[int]) -> None:
    print("### Real time over serial (the rehearsal), with CPU-bound processes beside it")
    print()
    print("| rate | busy processes | ended | missed deadlines | p99 late us | max late us | longest setpoint gap ms | "
          "max following error (track) | scheduling |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in rates:
        for hogs in loads:
            s, _ = run("--transport", "serial", "--rate", str(rate), hogs=hogs)
            gap = (s.get("link") or {}).get("longest_gap_ms")
            fault = f" ({s['faults'][0][:60]})" if s.get("faults") else ""
            print(f"| {rate} | {hogs} | {s.get('state')}{fault} | {s.get('overruns', '-')} | "
                  f"{s.get('p99_late_us', 0):.0f} | {s.get('max_late_us', 0):.0f} | "
                  f"{gap if gap is None else f'{gap:.1f}'} | {_ferr(s)} | {s.get('scheduling', '-')} |")
    print()


def host_stalls(rate: int, lookahead_ms: float = 60.0) -> None:
    """Half the lookahead must change nothing; twice the lookahead must end in the device's own stop."""
    print(f"### Injected host stalls at {rate} Hz over serial 1.1 (lookahead {lookahead_ms:.0f} ms, the default)")
    print()
    print("| clock | stall ms | ended | faults | longest setpoint gap ms |")
    print("|---|---|---|---|---|")
    for clock in ("sim", "wall"):
        for stall_ms in (lookahead_ms / 2, lookahead_ms * 2):
            s, _ = run("--clock", clock, "--transport", "serial", "--rate", str(rate), "--fault",
                       f"host-stall@5+{stall_ms / 1000:.4f}")
            gap = (s.get("link") or {}).get("longest_gap_ms")
            print(f"| {clock} | {stall_ms:.0f} | {s.get('state')} | {'; '.join(s.get('faults') or []) or '-'} | "
                  f"{gap if gap is None else f'{gap:.1f}'} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--loads", default="0,1,2")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: sim, real, stall")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"{machine_line()}; Python {platform.python_version()}")
    print()
    if "sim" not in skip:
        simulated_time()
    if "real" not in skip:
        real_time([int(r) for r in args.rates.split(",")], [int(n) for n in args.loads.split(",")])
    if "stall" not in skip:
        host_stalls(250)


if __name__ == "__main__":
    main()
