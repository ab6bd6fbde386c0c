"""A workspace (moves, rigs, takes) in a temporary folder, and an app whose rig process drives the serial
simulator (exactly what ``motionctl tui --sim`` runs)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from motionctl.runtime.states import RunState, StreamerOptions
from motionctl.tui.app import MotionctlApp
from motionctl.tui.controller import Settings
from motionctl.tui.rig_process import RigProcess
from motionctl.tui.library import Library
from tests.conftest import ROOT

CALM = StreamerOptions(stale_feedback_s=0.5, stall_cycles=50, late_budget=0.5)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Moves and rigs copied (teach writes move files), takes in the same place."""
    shutil.copytree(ROOT / "rigs", tmp_path / "rigs")
    (tmp_path / "moves").mkdir()
    for name in ("product_shot.toml", "push_in.toml"):
        shutil.copy(ROOT / "moves" / name, tmp_path / "moves" / name)
    return tmp_path


@pytest.fixture
def make_app(workspace: Path):
    made: list[MotionctlApp] = []

    def make(move: str | None = "product_shot.toml", faults: tuple[str, ...] = (), transport: str = "serial"):
        settings = Settings(sim=True, transport=transport, takes_dir=workspace / "takes", faults=list(faults),
                            options=CALM, clock="sim")
        controller = RigProcess(settings, Library([workspace / "moves"]))
        app = MotionctlApp(controller, workspace / "moves" / move if move else None)
        made.append(app)
        return app

    yield make
    for app in made:
        app.controller.close()


async def wait_until(pilot, condition, timeout: float, what: str) -> None:
    """Let the app run until ``condition()`` holds (the app keeps refreshing meanwhile)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            from textual.widgets import RichLog
            lines = [line.text for line in pilot.app.get_screen("rig").query_one("#log", RichLog).lines]
            raise AssertionError(f"timed out waiting for {what}; the log says: {lines[-6:]}")
        await pilot.pause(0.05)


def run(coroutine):
    return asyncio.run(coroutine)


async def connected(pilot) -> None:
    """Until the rig process reports the rig connected (the move given to the app is loaded)."""
    await wait_until(pilot, lambda: pilot.app.controller.telemetry().connected, 90, "the rig")


def closed_take(workspace: Path) -> dict | None:
    """The meta.json of the one take in ``workspace`` once it is closed (its summary written), else None.
    DONE reaches the screen before the rig process has closed the take: a test that reads the take at DONE
    races it (seen with the suite on two cores)."""
    import json

    metas = list((workspace / "takes").glob("*/meta.json"))
    if len(metas) != 1:
        return None
    meta = json.loads(metas[0].read_text())
    return meta if "summary" in meta else None


async def at_start(pilot) -> None:
    """Press g and wait for the rig to be at the start of the move."""
    await pilot.press("g")
    await wait_until(pilot, lambda: pilot.app.controller.state is RunState.AT_START, 60, "at start")
