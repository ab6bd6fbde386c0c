"""The planner on the shipped moves: legal ones pass, illegal ones are rejected with the right reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motionctl.kinematics import Kinematics
from motionctl.planner import ViolationKind, plan_scene
from motionctl.planner.limits import axis_limits, derivatives
from motionctl.rotations import rotation_angle
from motionctl.spec import load_scene
from tests.conftest import LEGAL_MOVES, MOVES


@pytest.fixture(scope="module", params=LEGAL_MOVES, ids=lambda p: p.stem)
def legal_plan(request):
    return plan_scene(load_scene(request.param), 500)


def test_legal_moves_are_legal_on_every_tick(legal_plan):
    assert legal_plan.ok, [v.message for v in legal_plan.report.violations]
    traj = legal_plan.trajectory
    values = np.concatenate([traj.q, traj.lens], axis=1)
    v, a, j = derivatives(values, traj.rate_hz)
    for i, lim in enumerate(axis_limits(legal_plan.rig)):
        assert np.abs(v[:, i]).max() <= lim.vmax * (1 + 1e-9), lim.name
        assert np.abs(a[:, i]).max() <= lim.amax * (1 + 1e-9), lim.name
        assert np.abs(j[:, i]).max() <= lim.jmax * (1 + 1e-9), lim.name
        assert values[:, i].min() >= lim.lower + lim.margin - 1e-12
        assert values[:, i].max() <= lim.upper - lim.margin + 1e-12


def test_report_has_every_measurement(legal_plan):
    report = legal_plan.report.to_dict()
    for key in ("ok", "duration_s", "frames", "rate_hz", "violations", "min_clearance_m", "min_clearance_at",
                "shortest_legal_duration_s", "peak_camera_speed_mps", "max_path_error_mm",
                "max_path_error_deg", "axes", "clearances", "axis_peaks"):
        assert key in report, key
    assert report["max_path_error_mm"] <= 0.1
    assert report["max_path_error_deg"] <= 0.01
    assert report["min_clearance_m"] > 0


def test_path_passes_through_every_camera_key_at_its_instant(legal_plan):
    move, rig = legal_plan.move, legal_plan.rig
    kin = Kinematics(rig)
    frame = float(move.rate.frame_duration)
    for key in move.keys:
        if key.camera is None:
            continue
        for f in {key.frame, key.frame + key.hold}:
            pose = kin.camera(legal_plan.joint_path(np.array([f * frame]))[0])
            assert np.linalg.norm(pose[:3, 3] - key.camera.position) <= 1e-4
            assert math.degrees(rotation_angle(pose[:3, :3], key.camera.rotation)) <= 0.01


def test_starts_and_ends_at_rest(legal_plan):
    traj = legal_plan.trajectory
    for i, lim in enumerate(axis_limits(legal_plan.rig)[: traj.q.shape[1]]):
        for row in (1, -1):
            assert abs(traj.qd[row, i]) <= 1e-3 * lim.vmax
            assert abs(traj.qdd[row, i]) <= 1e-2 * lim.amax


def test_holds_are_perfectly_still():
    plan = plan_scene(load_scene(MOVES / "push_in.toml"), 500)
    traj = plan.trajectory
    hold = (traj.s >= 0) & (traj.s <= 12 * float(plan.move.rate.frame_duration))
    assert hold.sum() > 100
    assert np.ptp(traj.q[hold], axis=0).max() == 0.0


def test_out_of_reach_move_names_the_key():
    plan = plan_scene(load_scene(MOVES / "illegal" / "out_of_reach.toml"))
    assert not plan.ok
    kinds = {(v.kind, v.subject) for v in plan.report.violations}
    assert (ViolationKind.UNREACHABLE, "key 1") in kinds
    assert (ViolationKind.POSITION, "elbow") in kinds


def test_too_fast_move_names_speed_and_the_plinth():
    plan = plan_scene(load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml"), 1000)
    assert not plan.ok
    violations = plan.report.violations
    speeding = {v.subject for v in violations if v.kind is ViolationKind.VELOCITY}
    assert "track" in speeding
    hits = [v for v in violations if v.kind is ViolationKind.COLLISION]
    assert any(v.subject.endswith("vs plinth") and v.peak <= 0 for v in hits)
    assert plan.report.extra["shortest_legal_duration_s"] is None
    assert plan.report.extra["min_clearance_at"]["other"] == "plinth"


def test_violation_runs_carry_frames_timecodes_peak_and_limit():
    plan = plan_scene(load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml"), 500)
    track_speed = [v for v in plan.report.violations if v.kind is ViolationKind.VELOCITY and v.subject == "track"]
    assert track_speed
    run = track_speed[0]
    assert 0 <= run.first_frame <= run.last_frame <= 12
    assert run.first_timecode.startswith("01:00:00:")
    assert abs(run.peak) > run.limit == pytest.approx(1.5)
