"""A plan run backwards: the same poses in reverse, within the same limits, stoppable along its path."""

from __future__ import annotations

import numpy as np

from motionctl.planner import plan_scene
from motionctl.planner.limits import axis_limits, peaks, time_scale_needed
from motionctl.planner.reverse import reverse_plan
from motionctl.planner.transitions import stop_along_path
from motionctl.spec import load_scene
from tests.conftest import MOVES


def test_reversed_plan_is_the_forward_samples_backwards_and_as_legal():
    plan = plan_scene(load_scene(MOVES / "crane_reveal.toml"), 250)
    back = reverse_plan(plan)
    traj, rev = plan.trajectory, back.trajectory
    assert np.array_equal(rev.q, traj.q[::-1]) and np.array_equal(rev.lens, traj.lens[::-1])
    assert np.array_equal(rev.t, traj.t)
    # the path functions agree with the samples (the runtime interpolates them at a speed override)
    assert np.allclose(back.joint_path(rev.s), rev.q, atol=1e-9)
    assert np.allclose(back.reference.lens_values(rev.s), rev.lens, atol=1e-9)
    limits = axis_limits(plan.rig)
    forward = time_scale_needed(peaks(traj.qd, traj.qdd, traj.qddd), limits[: len(plan.rig.axes)])
    backward = time_scale_needed(peaks(rev.qd, rev.qdd, rev.qddd), limits[: len(plan.rig.axes)])
    assert backward <= 1.0 and abs(backward - forward) < 0.02
    assert "backwards" in back.move.name


def test_a_reversed_plan_stops_along_its_own_path():
    plan = plan_scene(load_scene(MOVES / "crane_reveal.toml"), 250)
    back = reverse_plan(plan)
    mid = len(back.trajectory) // 2
    stop = stop_along_path(back, back.trajectory.t[mid - 2: mid + 1])
    assert stop.clear
    assert np.allclose(stop.values[0, : len(plan.rig.axes)], back.trajectory.q[mid], atol=1e-9)
    # it keeps heading the reversed way: towards the forward plan's start
    assert np.all(np.diff(stop.tau) >= 0.0)
