"""Benchmark: servo-loop jitter with the terminal UI on screen, against the plain command line, side by side.

Both dry-run ``benchmarks/moves/sweep_60s.toml`` at 250 Hz over the serial simulator (its own process, a
pty).  The CLI run is ``motionctl run --sim``; the UI run drives ``motionctl tui`` headless through
Textual's pilot (load, go to start, arm, run), refreshing at 10 Hz with the rig screen shown; its servo
loop runs in the UI's rig process.  Reported:
the take's loop lateness p50/p99/p99.9/max and missed deadlines, and the UI/CLI ratio.
"""

from __future__ import annotations

import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import machine_line

ROOT = Path(__file__).resolve().parent.parent
MOVE = ROOT / "benchmarks" / "moves" / "sweep_60s.toml"
sys.path.insert(0, str(ROOT))


def cli_run(takes: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "motionctl", "run", str(MOVE), "--sim", "--transport", "serial",
                             "--takes", str(takes), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    return json.loads(result.stdout)


def tui_run(takes: Path) -> dict:
    from motionctl.runtime.states import RunState
    from motionctl.tui.app import MotionctlApp
    from motionctl.tui.controller import Settings
    from motionctl.tui.library import Library
    from motionctl.tui.rig_process import RigProcess

    controller = RigProcess(Settings(sim=True, transport="serial", takes_dir=takes), Library([MOVE.parent]))
    app = MotionctlApp(controller, MOVE)

    async def until(pilot, condition, timeout):
        end = time.monotonic() + timeout
        while not condition() and time.monotonic() < end:
            await pilot.pause(0.1)

    async def flow():
        async with app.run_test(size=(150, 48)) as pilot:
            await until(pilot, lambda: controller.telemetry().connected, 120)
            await pilot.press("1", "g")
            await until(pilot, lambda: controller.state is RunState.AT_START, 120)
            await pilot.press("a")
            await until(pilot, lambda: controller.state is RunState.ARMED, 10)
            await pilot.press("r")
            await until(pilot, lambda: controller.state in (RunState.DONE, RunState.FAULTED, RunState.STOPPED), 200)
            await pilot.pause(1.0)
    asyncio.run(flow())
    controller.close()
    meta = json.loads(next(takes.iterdir()).joinpath("meta.json").read_text())
    if meta["summary"]["faults"]:
        print("  UI run fault:", meta["summary"]["faults"][0])
    return meta["summary"]


def main() -> None:
    print(f"{machine_line()}; Python {platform.python_version()}")
    rows = []
    for name, runner in (("command line", cli_run), ("terminal UI", tui_run)):
        with tempfile.TemporaryDirectory() as takes:
            summary = runner(Path(takes))
        rows.append((name, summary))
        print(f"{name:13s} {summary['state']:8s} p50 {summary['p50_late_us']:7.0f} us  p99 {summary['p99_late_us']:7.0f} us"
              f"  p99.9 {summary['p999_late_us']:7.0f} us  max {summary['max_late_us']:7.0f} us  "
              f"missed {summary['overruns']}  ticks {summary['ticks']}")
    cli, ui = rows[0][1], rows[1][1]
    print(f"UI / CLI: p99 {ui['p99_late_us'] / max(cli['p99_late_us'], 1):.1f}x, "
          f"max {ui['max_late_us'] / max(cli['max_late_us'], 1):.1f}x (period 4000 us)")


if __name__ == "__main__":
    main()
