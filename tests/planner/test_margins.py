"""The soft margin is kept by the whole path, keys included, and a key in it is named (docs/formats.md).

The margin is the buffer between what is commanded and the end of travel; a key is commanded and the
path passes through it, so a key inside the margin makes the move illegal, and the reason names the key
(index, frame, timecode), the axis, its value and the soft limit: the operator moves that key.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from motionctl.planner import ViolationKind, plan_scene
from motionctl.spec import load_scene
from tests.conftest import RIGS

ARM = ("shoulder_pan = -60.0, shoulder_lift = -90.0, elbow = 145.0, wrist_1 = 125.0, wrist_2 = -120.0, "
       "wrist_3 = 0.0")


def track_move(tmp_path: Path, track: str, extra: str = "") -> Path:
    """From park, the track travels to ``track`` m (held for 10 frames) and back."""
    path = tmp_path / "track.toml"
    path.write_text(f'''name = "track-to-its-end"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
[[key]]
frame = 0
joints = {{ track = 0.5, {ARM} }}
[[key]]
frame = 50
joints = {{ track = {track} }}
hold = 10
[[key]]
frame = 100
joints = {{ track = 0.5 }}
{extra}''', encoding="utf-8")
    return path


def test_a_track_key_inside_its_soft_margin_is_rejected_naming_the_key(tmp_path):
    on_the_soft_limit = plan_scene(load_scene(track_move(tmp_path, "0.02")))
    assert [v.message for v in on_the_soft_limit.report.violations] == []
    plan = plan_scene(load_scene(track_move(tmp_path, "0.0")))
    assert not plan.ok
    [violation] = plan.report.violations
    assert (violation.kind, violation.subject) == (ViolationKind.POSITION, "track")
    assert violation.first_frame <= 50 and violation.last_frame >= 60          # the key and its hold
    assert violation.limit == pytest.approx(0.02)
    text = violation.message
    assert text.startswith("key 1 at frame 50 (00:00:02:00) puts track at 0 m")
    assert "inside its 0.02 m soft margin" in text and "soft limit 0.02 m" in text


def test_a_key_in_a_margin_is_named_even_when_another_key_is_out_of_reach(tmp_path):
    """Without a trajectory the report still names every key it can, so one pass fixes them all."""
    far = '''[[key]]
frame = 150
camera = { position = [0.0, 3.0, 1.5], look_at = [0.0, 5.0, 1.5] }
'''
    plan = plan_scene(load_scene(track_move(tmp_path, "0.01", far)))
    assert plan.trajectory is None
    found = {(v.kind, v.subject, v.first_frame) for v in plan.report.violations}
    assert (ViolationKind.UNREACHABLE, "key 3", 150) in found
    assert (ViolationKind.POSITION, "track", 50) in found
    margin = next(v for v in plan.report.violations if v.subject == "track")
    assert margin.peak == pytest.approx(0.01) and margin.limit == pytest.approx(0.02)
    assert margin.message.startswith("key 1 at frame 50 (00:00:02:00) puts track at 0.01 m, inside its")


def test_a_joint_key_inside_its_angular_margin_gives_degrees(tmp_path):
    path = tmp_path / "wrist.toml"
    path.write_text(f'''name = "wrist-in-margin"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
[[key]]
frame = 0
joints = {{ track = 0.5, {ARM.replace("wrist_3 = 0.0", "wrist_3 = 359.8")} }}
[[key]]
frame = 50
joints = {{ track = 1.0 }}
''', encoding="utf-8")
    plan = plan_scene(load_scene(path))
    [violation] = plan.report.violations
    assert violation.subject == "wrist_3" and violation.limit == pytest.approx(math.radians(359.5))
    assert violation.message.startswith("key 0 at frame 0 (00:00:00:00) puts wrist_3 at 359.8 deg, inside "
                                        "its 0.5 deg soft margin (soft limit 359.5 deg, hard limit 360 deg)")
    assert "; so do key 1 (frame 50)" in violation.message      # key 1 holds wrist_3 where key 0 put it
