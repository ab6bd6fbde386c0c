"""The rig side of the terminal UI without the screens: what may run after a teach (issue 15 item 1)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from motionctl.runtime.states import RunState
from motionctl.tui.controller import RigController, Settings
from motionctl.tui.library import Library
from tests.conftest import ROOT


@pytest.fixture
def controller(tmp_path: Path):
    shutil.copytree(ROOT / "rigs", tmp_path / "rigs")
    (tmp_path / "moves").mkdir()
    for name in ("orbit.toml", "push_in.toml"):
        shutil.copy(ROOT / "moves" / name, tmp_path / "moves" / name)
    made = RigController(Settings(sim=True, transport="serial", takes_dir=tmp_path / "takes", clock="sim"),
                         Library([tmp_path / "moves"]))
    yield made
    made.close()


def test_after_a_teach_that_makes_the_move_illegal_nothing_runs(controller, tmp_path):
    """Teaching the park pose at frame 49 of orbit takes the path out of reach: every screen calls the
    edited move illegal, so the rig must not go to start, arm or run the plan from before the teach."""
    orbit = tmp_path / "moves" / "orbit.toml"
    controller.select_move(orbit).result(120)
    assert controller.state is RunState.IDLE
    controller.frame_cursor = 49
    controller.teach().result(120)
    assert controller.plan is None and "since the teach" in controller.not_runnable
    controller.go_to_start().result(30)                   # refused, in words, in the log
    assert "orbit.toml is illegal since the teach" in controller.log[-1][1], list(controller.log)[-3:]
    controller.arm()
    controller.run()
    assert controller.state is RunState.IDLE
    assert not (tmp_path / "takes").exists() or not any((tmp_path / "takes").iterdir())
    # Loading a legal move runs that one, and its take names the exact file it was planned from.
    push_in = tmp_path / "moves" / "push_in.toml"
    controller.select_move(push_in).result(120)
    controller.go_to_start().result(30)
    controller.estop()
    (take,) = (tmp_path / "takes").iterdir()
    meta = json.loads((take / "meta.json").read_text())
    assert meta["move_file"].endswith("push_in.toml")
    assert meta["move_sha256"] == hashlib.sha256(push_in.read_bytes()).hexdigest()


def test_loading_an_illegal_move_unloads_the_previous_one_and_says_so(controller, tmp_path):
    """issue 15 item 3: the library's Enter on an illegal move was refused only in a log line, the status
    bar kept the previous move and g ran it.  Now the screens' move and the rig's agree: none is loaded,
    the status line says why, and g is refused."""
    (tmp_path / "moves" / "illegal").mkdir()
    illegal = tmp_path / "moves" / "illegal" / "too_fast_through_obstacle.toml"
    shutil.copy(ROOT / "moves" / "illegal" / illegal.name, illegal)
    controller.select_move(tmp_path / "moves" / "push_in.toml").result(120)
    assert controller.telemetry().move == "push-in"
    controller.select_move(illegal).result(120)
    telemetry = controller.telemetry()
    assert telemetry.move == "" and "too_fast_through_obstacle.toml is illegal" in telemetry.not_runnable
    controller.go_to_start().result(30)
    assert "not loaded" in controller.log[-1][1] and controller.state is RunState.IDLE


def test_a_refusal_repeated_by_auto_repeat_is_said_once(controller, tmp_path):
    """issue 15 item 6: every auto-repeat of a jog key while e-stopped logged the refusal again and pushed
    the reason of the stop out of the log."""
    from motionctl.runtime.jog import JogRequest
    controller.select_move(tmp_path / "moves" / "push_in.toml").result(120)
    controller.estop()
    controller.streamer.wait_for({RunState.ESTOPPED}, 5)
    for _ in range(30):
        controller.jog(JogRequest(+1, axis=0))
    assert controller.streamer.run_until(lambda: len(controller.streamer.refusals) >= 30, 5)
    controller.poll()
    refused = [text for _, text in controller.log if "jog" in text and "not possible" in text]
    assert len(refused) == 1, refused


def test_a_bad_file_is_called_a_bad_file(controller, tmp_path):
    bad = tmp_path / "moves" / "broken.toml"
    bad.write_text("this is = = not toml\n")
    controller.select_move(bad).result(60)
    assert any("broken.toml is a bad file" in text for _, text in controller.log), list(controller.log)[-2:]
    assert not any(" is bad file" in text for _, text in controller.log)
