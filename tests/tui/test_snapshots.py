"""SVG snapshots of the main screens (pytest-textual-snapshot); regenerate with --snapshot-update.

Only screens whose content is deterministic are snapshotted: the rig screen before a rig is connected,
the library with every verdict in, the move screen of a bundled move, the jog screen and the help.
"""

from __future__ import annotations

import time

import pytest

from motionctl.tui.app import MotionctlApp
from motionctl.tui.controller import RigController, Settings
from motionctl.tui.library import Library, Verdict
from tests.conftest import ROOT

SIZE = (140, 44)


@pytest.fixture
def offline_app(tmp_path):
    """The repository's moves, no rig connected (loading is not triggered), takes in an empty folder."""
    controller = RigController(Settings(sim=True, takes_dir=tmp_path / "takes"), Library([ROOT / "moves"]))
    app = MotionctlApp(controller, None)
    yield app
    controller.close()


async def _checked(pilot) -> None:
    library = pilot.app.controller.library
    deadline = time.monotonic() + 120
    while any(e.verdict is Verdict.UNCHECKED for e in library.entries()) and time.monotonic() < deadline:
        await pilot.pause(0.2)
    await pilot.pause(0.3)


def test_library_screen(snap_compare, offline_app):
    assert snap_compare(offline_app, terminal_size=SIZE, run_before=_checked)


def test_help_screen(snap_compare, offline_app):
    assert snap_compare(offline_app, press=["question_mark"], terminal_size=SIZE)


def test_rig_screen_before_connecting(snap_compare, offline_app):
    assert snap_compare(offline_app, press=["1"], terminal_size=SIZE)


def test_move_screen(snap_compare, offline_app):
    async def select(pilot) -> None:
        entry = pilot.app.controller.library.check(ROOT / "moves" / "illegal" / "too_fast_through_obstacle.toml")
        pilot.app.controller.shown_plan = entry.plan    # show it without connecting a rig
        await pilot.press("3")
        await pilot.pause(0.3)
    assert snap_compare(offline_app, terminal_size=SIZE, run_before=select)


def test_jog_screen(snap_compare, offline_app):
    assert snap_compare(offline_app, press=["4"], terminal_size=SIZE)
