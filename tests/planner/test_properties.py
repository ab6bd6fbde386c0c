"""Hypothesis properties of the planner on random moves: limits, rest, keyframes, determinism."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from motionctl.kinematics import Kinematics
from motionctl.planner import ViolationKind, plan
from motionctl.planner.export import plan_csv
from motionctl.planner.limits import axis_limits
from motionctl.rotations import rotation_angle
from motionctl.spec.move import move_from_toml
from motionctl.spec.source import parse_toml
from tests.conftest import MOVES


def _random_move(data, rig) -> tuple:
    """A move of 2-4 camera keys in the reachable band in front of the track, with holds and lens."""
    count = data.draw(st.integers(2, 4))
    lines = ['name = "random"', 'rig = "../rigs/ur10e_track.toml"', f'fps = "{data.draw(st.sampled_from(["24", "25", "29.97df"]))}"',
             'start = "01:00:00:00"']
    frame = 0
    target = [data.draw(st.floats(-0.5, 0.5)), 2.0, 1.5]
    for i in range(count):
        x = data.draw(st.floats(-1.5, 1.5))
        y = data.draw(st.floats(-1.05, -0.6))
        z = data.draw(st.floats(1.2, 1.6))
        hold = data.draw(st.integers(0, 12))
        lines += ["[[key]]", f"frame = {frame}",
                  f"camera = {{ position = [{x:.4f}, {y:.4f}, {z:.4f}], look_at = [{target[0]:.3f}, 2.0, 1.5] }}",
                  f"lens = {{ focus = {data.draw(st.floats(1.0, 5.0)):.3f} }}", f"hold = {hold}"]
        frame += hold + data.draw(st.integers(30, 90))
    text = "\n".join(lines) + "\n"
    doc, source = parse_toml(text, str(MOVES / "random.toml"))
    return move_from_toml(doc, source, MOVES / "random.toml", rig)


@settings(derandomize=True, max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
@pytest.mark.parametrize("retime", ["stretch", "fastest"])
def test_random_moves_never_exceed_a_limit_in_the_csv(ur_rig, stage, retime, data):
    move = _random_move(data, ur_rig)
    result = plan(move, ur_rig, stage, 250, retime=retime)
    event("planned" if result.trajectory is not None else "unreachable")
    if result.trajectory is None:
        assert any(v.kind is ViolationKind.UNREACHABLE for v in result.report.violations)
        return
    kinds = {v.kind for v in result.report.violations}
    # Retiming fixes every rate limit; only the path itself (range, clearance) can still be illegal.
    assert not kinds & {ViolationKind.VELOCITY, ViolationKind.ACCELERATION, ViolationKind.JERK}
    rows = list(csv.reader(io.StringIO(plan_csv(result))))
    header, body = rows[0], rows[1:]
    names = list(ur_rig.axis_names) + [l.name for l in ur_rig.lens]
    columns = np.array([[float(r[header.index(n)]) for n in names] for r in body])
    rate = 250
    v = np.diff(columns, axis=0) * rate
    a = np.diff(v, axis=0) * rate
    j = np.diff(a, axis=0) * rate
    for i, lim in enumerate(axis_limits(ur_rig)):
        assert np.abs(v[:, i]).max() <= lim.vmax * 1.01, lim.name
        assert np.abs(a[:, i]).max() <= lim.amax * 1.01, lim.name
        assert np.abs(j[:, i]).max() <= lim.jmax * 1.01, lim.name
    # At rest at both ends.
    assert np.abs(v[0]).max() < 1e-3 and np.abs(v[-1]).max() < 1e-3
    # Through every camera key at its (retimed) instant.
    kin = Kinematics(ur_rig)
    frame = float(move.rate.frame_duration)
    for key in move.keys:
        pose = kin.camera(result.joint_path(np.array([key.frame * frame]))[0])
        assert np.linalg.norm(pose[:3, 3] - key.camera.position) <= 1e-4
        assert math.degrees(rotation_angle(pose[:3, :3], key.camera.rotation)) <= 0.01


def test_plan_is_deterministic(ur_rig, stage):
    from motionctl.spec import load_scene
    scene = load_scene(MOVES / "orbit.toml")
    first = plan_csv(plan(scene.move, scene.rig, scene.stage, 250))
    second = plan_csv(plan(scene.move, scene.rig, scene.stage, 250))
    assert first == second
