"""The operator's flows, driven through the keyboard against the serial simulator (a real pty)."""

from __future__ import annotations

import io
import shutil
import json
import threading
import time

import numpy as np
import pytest
from textual.widgets import RichLog

from motionctl.hal.driver import DriveStatus
from motionctl.runtime.states import RunState
from motionctl.spec import load_scene
from tests.conftest import ROOT
from tests.tui.conftest import at_start, closed_take, connected, run, wait_until

SIZE = (150, 48)


def _log_text(app) -> str:
    log = app.get_screen("rig").query_one("#log", RichLog)
    return " ".join(line.text.strip() for line in log.lines)


def _rendered(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_load_check_go_to_start_and_run_to_the_end(make_app, workspace):
    app = make_app()

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await wait_until(pilot, lambda: c.telemetry().connected and c.plan is not None, 90, "the move to load")
            await pilot.press("3")
            summary = _rendered(app.screen.query_one("#summary").content)
            assert "LEGAL" in summary and "product-shot" in summary
            await at_start(pilot)
            await pilot.press("a")
            await wait_until(pilot, lambda: c.state is RunState.ARMED, 10, "armed")
            await pilot.press("r")
            await wait_until(pilot, lambda: c.state is RunState.DONE, 60, "the end of the move")
            await pilot.press("1")
            await wait_until(pilot, lambda: app.get_screen("rig").query_one("#takes").row_count > 0, 10, "takes")
    run(flow())
    takes = sorted((workspace / "takes").iterdir())
    assert len(takes) == 1
    meta = json.loads((takes[0] / "meta.json").read_text())
    assert meta["summary"]["state"] == "done" and meta["move"] == "product-shot"


def test_estop_during_a_run_stops_every_axis(make_app):
    app = make_app()

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await connected(pilot)
            await at_start(pilot)
            await pilot.press("a", "r")
            await wait_until(pilot, lambda: c.state is RunState.RUNNING and (c.telemetry().frame or 0) >= 40, 10,
                             "running")
            await pilot.press("space")
            await wait_until(pilot, lambda: c.state is RunState.ESTOPPED, 2, "e-stopped")
            await wait_until(pilot, lambda: c.telemetry().axes and all(
                row.status == DriveStatus.QUICK_STOP.value for row in c.telemetry().axes), 5, "every drive quick-stopped")
            await pilot.pause(0.8)
            speeds = np.abs([row.velocity for row in c.telemetry().axes])     # m/s or deg/s
            assert np.all(speeds < 1e-2), speeds
            await pilot.press("g")                       # latched: no go-to-start until reset
            await pilot.pause(0.3)
            assert c.state is RunState.ESTOPPED
            assert "E-STOP" in _log_text(app)
    run(flow())


def test_a_simulator_fault_shows_in_plain_words(make_app):
    app = make_app(faults=("drive:elbow@3=0x0010",))

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await wait_until(pilot, lambda: c.state is RunState.FAULTED, 90, "the drive fault")
            await pilot.pause(0.3)
            text = _log_text(app)
            assert "FAULT: drive fault on elbow: motor current too high" in text
            assert "press x to reset" in text
            status = _rendered(app.screen.query_one("#status").content)
            assert "FAULT" in status
    run(flow())


def test_jog_and_teach_write_a_move_file_that_reloads(make_app, workspace):
    app = make_app()
    path = workspace / "moves" / "product_shot.toml"

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await connected(pilot)
            await pilot.press("4")
            track = c.plan.rig.axis_names.index("track")
            for _ in range(track):
                await pilot.press("down")
            before = c.telemetry().axes[track].position
            # A held key: the terminal's auto-repeat, every 40 ms.  (simulate_key does not wait for the app to
            # go idle, which pilot.press does, for up to 2 s while the servo thread keeps the process busy.)
            for _ in range(25):
                app.simulate_key("right")
                await pilot.pause(0.04)
            await wait_until(pilot, lambda: c.state is RunState.IDLE, 10, "the jog to end")
            await pilot.pause(0.3)
            after = c.telemetry().axes[track].position
            assert after > before + 0.03
            await pilot.press("greater_than_sign")        # frame cursor to 24 ...
            for _ in range(6):                           # ... then 30
                app.simulate_key("full_stop")
            await wait_until(pilot, lambda: c.frame_cursor == 30, 5, "the frame cursor")
            original = path.read_text()
            await pilot.press("k")
            await wait_until(pilot, lambda: path.read_text() != original, 30, "the move file to be written")
            await wait_until(pilot, lambda: c.busy == "", 60, "the re-check")
            return after
    after = run(flow())
    scene = load_scene(path)                              # valid, and it re-loads
    taught = next(k for k in scene.move.keys if k.frame == 30)
    assert taught.joints["track"] == pytest.approx(after, abs=2e-4)
    assert (workspace / "moves" / "product_shot.toml.bak").read_text() != path.read_text()



def test_estop_reaches_the_runtime_within_one_refresh_while_the_ui_is_busy(make_app):
    """The UI thread is kept busy (a 30 ms job every 40 ms, and the library planning every move in the
    background); E-stop must still reach the streamer before the next telemetry refresh."""
    import threading
    import time

    app = make_app()

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await connected(pilot)
            await at_start(pilot)

            def hog() -> None:
                end = time.perf_counter() + 0.03
                while time.perf_counter() < end:
                    pass
            app.set_interval(0.04, hog)
            await pilot.press("2")                       # the library starts checking every move
            await pilot.press("a", "r")
            await wait_until(pilot, lambda: c.state is RunState.RUNNING, 10, "running")
            # A watcher thread notes the app's refresh count when the streamer reaches ESTOPPED (the UI
            # thread is the busy one, so it cannot be the one to look).
            seen: list[int] = []

            def watch() -> None:
                end = time.monotonic() + 10
                while c.state is not RunState.ESTOPPED and time.monotonic() < end:
                    time.sleep(0.001)
                seen.append(app.refreshes)
            watcher = threading.Thread(target=watch)
            watcher.start()
            refreshes = app.refreshes
            await pilot.press("space")
            watcher.join()
            assert c.state is RunState.ESTOPPED
            assert seen[0] - refreshes <= 1, f"E-stop took {seen[0] - refreshes} refreshes"
    run(flow())


def test_help_lists_every_bound_key(make_app):
    from motionctl.tui.keys import SCREENS, display

    app = make_app(move=None)

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("question_mark")
            text = _rendered(app.screen.query_one("#keys").content)
            for keys in SCREENS.values():
                for key in keys:
                    assert display(key.key) in text, key
            await pilot.press("escape")
            assert app.screen.__class__.__name__ == "LibraryScreen"
    run(flow())


def test_a_refresh_while_the_app_shuts_down_is_harmless(make_app, monkeypatch):
    """Shutting down empties the screen stack before the installed screens unmount; a refresh timer that
    fired in between once raised ScreenStackError (seen on CI, at the end of the help test)."""
    app = make_app(move=None)

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            assert app.rig_screen.is_mounted
            with monkeypatch.context() as patch:
                # the state shutdown passes through: Textual's own (private) stacks empty, screens still up
                patch.setattr(app, "_screen_stacks", {app.current_mode: []})
                before = app.refreshes
                app.refresh_telemetry()             # must neither raise nor touch a screen
                assert app.refreshes == before + 1
    run(flow())


def test_telemetry_keeps_flowing_while_the_ui_side_plans_a_loaded_move(make_app, workspace, monkeypatch):
    """The UI plans a move the rig process loaded (for its own screens) off the thread that reads the
    pipe: the rig's state on screen never freezes for the 0.3-2 s that takes."""
    controller = make_app(move=None).controller
    library = controller.library
    entered, release = threading.Event(), threading.Event()
    real_check = library.check

    def held_check(path):
        entered.set()
        release.wait(60)
        return real_check(path)
    monkeypatch.setattr(library, "check", held_check)
    loaded = controller.select_move(workspace / "moves" / "product_shot.toml")
    try:
        assert entered.wait(90), "the loaded move never reached the UI side"
        before = controller.latest
        deadline = time.monotonic() + 5
        while controller.latest is before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert controller.latest is not before, "no telemetry while the UI side planned"
        assert not loaded.done()                   # the call completes only once its plan is here
        assert controller.teach().done() and "still loading" in controller.log[-1][1]   # no teach meanwhile
    finally:
        release.set()
    loaded.result(timeout=90)
    assert controller.plan is not None and controller.plan.move.name == "product-shot"


def test_a_call_still_waiting_when_the_rig_process_dies_completes(make_app, workspace):
    """Nothing in the UI may wait forever on an answer that will never come."""
    controller = make_app(move=None).controller
    loading = controller.select_move(workspace / "moves" / "push_in.toml")   # planning takes the child > 0.3 s
    controller._process.kill()
    loading.result(timeout=30)                     # answered by the reader when the pipe closed
    controller._reader.join(5)
    controller.go_to_start().result(timeout=5)     # and a call after that is answered at once
    assert any("not running" in text for _, text in controller.log)


def test_arm_on_internal_timecode_starts_the_move_by_itself(make_app, workspace):
    app = make_app()

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await connected(pilot)
            await pilot.press("t")
            await wait_until(pilot, lambda: c.timecode_mode == "internal", 5, "the internal timecode")
            await at_start(pilot)
            await pilot.press("a")
            await wait_until(pilot, lambda: c.state is RunState.RUNNING, 10, "the move to start on timecode")
            assert c.telemetry().locked is True
            await wait_until(pilot, lambda: c.state is RunState.DONE, 30, "the end of the move")
            await wait_until(pilot, lambda: closed_take(workspace) is not None, 10, "the take to be closed")
    run(flow())
    meta = closed_take(workspace)
    assert meta["timecode"] == "internal" and abs(meta["summary"]["start_error_ticks"]) <= 1.0


def test_the_status_line_stays_live_under_the_help_overlay(make_app):
    """issue 15 item 2: with ? open the bar froze, and read IDLE after an E-stop from inside help.  Now
    help has the status line too, live, and so has the screen under it."""
    from motionctl.tui.screens import HelpScreen

    app = make_app()

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await connected(pilot)
            await at_start(pilot)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)

            def help_status() -> str:
                return _rendered(app.screen.query_one("#status").content)
            await wait_until(pilot, lambda: "AT START" in help_status(), 5, "the status in help")
            await pilot.press("space")                   # E-stop from inside help (a priority binding)
            await wait_until(pilot, lambda: "E-STOPPED" in help_status(), 5, "E-STOPPED in help")
            under = _rendered(app.screen_stack[-2].query_one("#status").content)
            assert "E-STOPPED" in under                   # the screen under the overlay is live too
    run(flow())


@pytest.mark.parametrize("move, wire", [("kuka_product_push.toml", "rsi://"), ("ur_rtde_push_in.toml", "group://")])
def test_the_new_arms_run_from_the_terminal_ui_on_their_own_wires(make_app, workspace, move, wire):
    """Issue 16: the KUKA rig (RSI) and the UR rig on three controllers (RTDE, CANopen, serial), each on
    its own simulated controllers, through the same keys: load, go to start, arm, run to the end."""
    shutil.copy(ROOT / "moves" / move, workspace / "moves" / move)
    app = make_app(move, transport=None)

    async def flow():
        async with app.run_test(size=SIZE) as pilot:
            c = app.controller
            await wait_until(pilot, lambda: c.telemetry().connected and c.plan is not None, 90, "the move to load")
            await at_start(pilot)
            await pilot.press("a")
            await wait_until(pilot, lambda: c.state is RunState.ARMED, 10, "armed")
            await pilot.press("r")
            await wait_until(pilot, lambda: c.state is RunState.DONE, 60, "the end of the move")
            await wait_until(pilot, lambda: closed_take(workspace) is not None, 10, "the take to be closed")
    run(flow())
    meta = closed_take(workspace)
    assert meta["summary"]["state"] == "done" and meta["transport"].startswith(wire), meta["transport"]
