"""A move that cannot be planned as written is a verdict (an illegal Plan with its report), not an error.

Only input that cannot be used (a servo rate that does not exist) raises; see docs/formats.md,
"Illegal moves and bad input".
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from motionctl.errors import InputError
from motionctl.planner import ViolationKind, plan, plan_scene
from motionctl.planner.plan import MAX_TICKS
from motionctl.spec import load_scene
from tests.conftest import RIGS


PARK = ("track = 0.5, shoulder_pan = -60.0, shoulder_lift = -90.0, elbow = 145.0, wrist_1 = 125.0, "
        "wrist_2 = -120.0, wrist_3 = 0.0")


def write_turn(path: Path, degrees: float = 175.0) -> Path:
    """The camera pans ``degrees`` in one run of two keys (about the first key, the run's middle)."""
    half = degrees / 2
    path.write_text(f'''name = "turn-{degrees:g}"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
start = "01:00:00:00"
[[key]]
frame = 0
camera = {{ position = [0.0, -1.1, 1.45], pan = {-half}, tilt = 0.0 }}
[[key]]
frame = 200
camera = {{ position = [0.0, -1.1, 1.45], pan = {half}, tilt = 0.0 }}
''', encoding="utf-8")
    return path


def test_a_turn_over_170_degrees_in_one_run_is_an_illegal_plan_with_its_reason(tmp_path):
    result = plan_scene(load_scene(write_turn(tmp_path / "turn.toml")))
    assert not result.ok and result.trajectory is None
    [violation] = result.report.violations
    assert violation.kind is ViolationKind.PATH
    assert (violation.first_frame, violation.last_frame) == (0, 200)
    assert (violation.first_timecode, violation.last_timecode) == ("01:00:00:00", "01:00:08:00")
    assert violation.peak == pytest.approx(math.radians(175.0))
    assert violation.limit == pytest.approx(math.radians(170.0)) and violation.unit == "rad"
    assert "turns 175.0 degrees between frame 0 and frame 200" in violation.message
    assert "add a hold or use look_at keys" in violation.message
    report = result.report.to_dict()
    assert report["ok"] is False and report["violations"][0]["kind"] == "path"
    assert [k["reached"] for k in report["keys"]] == [True, True]


def test_a_move_too_long_for_one_plan_is_an_illegal_plan(tmp_path):
    frames = MAX_TICKS // 250 * 25 + 25                  # one second more than 250 Hz can hold, at 25 fps
    path = tmp_path / "long.toml"
    path.write_text(f'''name = "too-long"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
[[key]]
frame = 0
joints = {{ {PARK} }}
[[key]]
frame = {frames}
joints = {{ track = 1.0 }}
''', encoding="utf-8")
    result = plan_scene(load_scene(path), 250)
    assert not result.ok and result.trajectory is None
    [violation] = result.report.violations
    assert violation.kind is ViolationKind.DURATION and violation.subject == "move"
    assert (violation.first_frame, violation.last_frame) == (0, frames)
    assert violation.limit == pytest.approx(MAX_TICKS / 250)
    assert "split it into moves shorter than 80 min" in violation.message


def test_a_servo_rate_that_does_not_exist_is_bad_input(tmp_path):
    scene = load_scene(write_turn(tmp_path / "turn.toml"))
    with pytest.raises(InputError, match="servo rate must be one of 250, 500, 1000 Hz, not 300"):
        plan(scene.move, scene.rig, scene.stage, 300)
