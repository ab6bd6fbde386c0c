"""Position limits are compared with a stated tolerance (``POSITION_TOLERANCE``, docs/formats.md).

A key written exactly on a limit must pass: -359.5 deg is one rounding step beyond the soft limit
-360 deg + 0.5 deg once both are in radians.  A value beyond the limit by more than the tolerance is
still rejected.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from motionctl.planner import ViolationKind, plan_scene
from motionctl.planner.keys import solve_keys
from motionctl.planner.limits import POSITION_TOLERANCE, AxisLimits, limit_violations
from motionctl.spec import load_scene
from motionctl.spec.move import Scene
from tests.conftest import RIGS

PARK = ("track = 0.5, shoulder_pan = -60.0, shoulder_lift = -90.0, elbow = 145.0, wrist_1 = 125.0, "
        "wrist_2 = -120.0")


def joint_move(tmp_path: Path, wrist_3: str) -> Path:
    """Park with wrist_3 at ``wrist_3`` degrees (held over the whole move), then a track travel."""
    path = tmp_path / "wrist3.toml"
    path.write_text(f'''name = "wrist3-on-its-soft-limit"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
[[key]]
frame = 0
joints = {{ {PARK}, wrist_3 = {wrist_3} }}
[[key]]
frame = 50
joints = {{ track = 1.0 }}
''', encoding="utf-8")
    return path


def test_a_joint_key_exactly_on_its_soft_limit_is_legal(tmp_path):
    on_key = math.radians(-359.5)
    soft = math.radians(-360.0) + math.radians(0.5)
    assert on_key < soft                                    # the rounding step of the issue...
    assert soft - on_key < POSITION_TOLERANCE               # ...is absorbed, and the tolerance is far finer
    assert POSITION_TOLERANCE <= 1e-3 * min(1e-6, 2 * math.pi / 2 ** 19)   # than a track count or 2^-19 turn
    plan = plan_scene(load_scene(joint_move(tmp_path, "-359.5")))
    assert [v.message for v in plan.report.violations] == []
    assert plan.ok


def test_a_joint_key_beyond_its_soft_limit_by_more_than_the_tolerance_is_rejected(tmp_path):
    plan = plan_scene(load_scene(joint_move(tmp_path, "-359.500001")))   # 1e-6 deg = 1.7e-8 rad beyond
    assert not plan.ok
    [violation] = plan.report.violations
    assert (violation.kind, violation.subject) == (ViolationKind.POSITION, "wrist_3")
    assert violation.limit == pytest.approx(math.radians(-359.5), abs=1e-12)
    # The value and the limit are told apart in the text, and the key is named.
    assert "-359.500001 deg" in violation.message and "-359.5 deg" in violation.message
    assert "key 0 at frame 0" in violation.message


def _limits(margin: float) -> list[AxisLimits]:
    return [AxisLimits("wrist_3", "rad", math.radians(-360), math.radians(360), margin, 10.0, 10.0, 100.0,
                       180 / math.pi, "deg")]


def test_the_per_tick_check_applies_the_tolerance_on_both_sides():
    limits = _limits(math.radians(0.5))
    lo, hi = limits[0].lower + limits[0].margin, limits[0].upper - limits[0].margin
    for excess, rejected in [(0.0, False), (0.5 * POSITION_TOLERANCE, False), (2 * POSITION_TOLERANCE, True),
                             (1e-6, True)]:
        for values in (np.full((5, 1), lo - excess), np.full((5, 1), hi + excess)):
            zero = np.zeros_like(values)
            found = limit_violations(values, zero, zero, zero, limits, lambda i: i, str)
            assert bool(found) is rejected, (excess, values[0, 0])


def _scene_with_elbow_key(value_rad: float) -> Scene:
    """push_in's scene with a joint key that sets the elbow to ``value_rad`` (SI) after the first key."""
    from tests.conftest import MOVES
    scene = load_scene(MOVES / "push_in.toml")
    move = scene.move
    second = replace(move.keys[1], camera=None, joints={"elbow": value_rad})
    return Scene(replace(move, keys=(move.keys[0], second)), scene.rig, scene.stage)


def test_keys_are_held_to_their_hard_range_with_the_same_tolerance():
    scene = _scene_with_elbow_key(0.0)
    elbow = scene.rig.axes[scene.rig.axis_index("elbow")]
    for excess, rejected in [(0.5 * POSITION_TOLERANCE, False), (10 * POSITION_TOLERANCE, True)]:
        _, violations = solve_keys(_scene_with_elbow_key(elbow.max + excess))
        assert any(v.kind is ViolationKind.POSITION and v.subject == "elbow" for v in violations) is rejected
