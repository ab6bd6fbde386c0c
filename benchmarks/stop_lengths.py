"""Benchmark: controlled stops from many ticks of every shipped move: how long they last, how long they
take to find.

For each shipped move, with each retiming at 250 Hz and the fastest at 1 kHz, a stop is asked for at
evenly spaced ticks (``--per-move`` of them for the fastest plans, a quarter as many for the others)
and found with :func:`motionctl.planner.governor.run_until_rest`, as the runtime's stop planner does.
Reports, per plan: the longest stop (seconds of motion from the tick it was asked for to rest), how many
stops ran on as planned before braking (see the governor's docstring), any tick with no stop at all, and
the longest time finding one took on this machine (the runtime gives up after 1 s and quick-stops).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from machine_info import machine_line

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from motionctl.planner import plan_scene  # noqa: E402
from motionctl.planner.governor import NoLegalTick, SpeedGovernor, run_until_rest  # noqa: E402
from motionctl.planner.transitions import plan_timeline  # noqa: E402
from motionctl.spec import load_scene  # noqa: E402

TIMINGS = [("none", 250), ("stretch", 250), ("fastest", 250), ("fastest", 1000)]


def scan(path: Path, retime: str, rate: int, count: int) -> str:
    plan = plan_scene(load_scene(path), rate, retime=retime)
    timeline = plan_timeline(plan)
    ticks = len(timeline.values)
    longest, at, coasted, slowest, stuck = 0.0, 0, 0, 0.0, []
    for tick in np.linspace(3, ticks - 1, count).astype(int):
        started = time.perf_counter()
        try:
            run = run_until_rest(SpeedGovernor(timeline, history=np.arange(tick - 2, tick + 1) / rate))
        except NoLegalTick:
            stuck.append(int(tick))
            continue
        slowest = max(slowest, time.perf_counter() - started)
        coasted += run.coast > 0
        if len(run.values) / rate > longest:
            longest, at = len(run.values) / rate, int(tick)
    return (f"| {path.name} | {retime} | {rate} | {count} | {longest:.2f} s (tick {at}) | {coasted} | "
            f"{stuck or 'none'} | {slowest * 1000:.0f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-move", type=int, default=200, help="stops per fastest plan (default 200)")
    parser.add_argument("moves", nargs="*", type=Path, help="moves (default: every shipped move)")
    args = parser.parse_args()
    moves = args.moves or sorted((ROOT / "moves").glob("*.toml"))
    print(machine_line())
    print("| move | retime | Hz | stops | longest stop | ran on first | no stop at | longest search |")
    print("|---|---|---|---|---|---|---|---|")
    for path in moves:
        for retime, rate in TIMINGS:
            count = args.per_move if retime == "fastest" else max(10, args.per_move // 4)
            print(scan(path, retime, rate, count), flush=True)


if __name__ == "__main__":
    main()
