"""Retiming keeps the path and honours every limit; fastest is compared with plain TOPP-RA."""

from __future__ import annotations

import numpy as np
import pytest

from motionctl.errors import PlanningError
from motionctl.planner import ViolationKind, plan_scene
from motionctl.planner.jerk_topp import JerkLimitedTopp
from motionctl.planner.limits import axis_limits, derivatives
from motionctl.spec import load_scene
from tests.conftest import MOVES, ROOT

BENCHMARK_MOVE = ROOT / "benchmarks" / "moves" / "sweep_60s.toml"


@pytest.mark.parametrize("name, rate", [("push_in", 250), ("crane_reveal", 250), ("product_shot", 250),
                                        ("orbit", 500),
                                        # a hold of 0.5005 s before the move: a fraction of a tick
                                        ("crane_reveal", 1000)])
def test_fastest_is_legal_no_slower_than_keyed_and_never_faster_than_toppra(name, rate):
    scene = load_scene(MOVES / f"{name}.toml")
    keyed = plan_scene(scene, rate)
    fast = plan_scene(scene, rate, retime="fastest")
    assert fast.ok, [v.message for v in fast.report.violations]
    info = fast.report.extra["retime"]
    assert info["toppra_duration_s"] <= fast.trajectory.duration_s + 1e-6
    assert fast.trajectory.duration_s <= keyed.trajectory.duration_s
    # Same path: every retimed sample is the keyed path at some instant.
    np.testing.assert_allclose(fast.trajectory.q, fast.joint_path(fast.trajectory.s), atol=0)
    values = np.concatenate([fast.trajectory.q, fast.trajectory.lens], axis=1)
    v, a, j = derivatives(values, rate)
    for i, lim in enumerate(axis_limits(scene.rig)):
        assert np.abs(v[:, i]).max() <= lim.vmax * (1 + 1e-9)
        assert np.abs(a[:, i]).max() <= lim.amax * (1 + 1e-9)
        assert np.abs(j[:, i]).max() <= lim.jmax * (1 + 1e-9)


def test_fastest_is_within_five_percent_of_toppra_on_the_benchmark_move():
    """The issue's target on benchmarks/moves/sweep_60s.toml: jerk-limited, yet within 5 % of TOPP-RA's
    velocity- and acceleration-only optimum (measured: 1.036 at 1 kHz)."""
    scene = load_scene(BENCHMARK_MOVE)
    fast = plan_scene(scene, 250, retime="fastest")
    assert fast.ok, [v.message for v in fast.report.violations]
    ratio = fast.trajectory.duration_s / fast.report.extra["retime"]["toppra_duration_s"]
    assert 1.0 <= ratio <= 1.05


def test_stretch_keeps_holds_and_scales_uniformly():
    scene = load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml")
    stretched = plan_scene(scene, 500, retime="stretch")
    kinds = {v.kind for v in stretched.report.violations}
    assert ViolationKind.VELOCITY not in kinds and ViolationKind.JERK not in kinds
    traj = stretched.trajectory
    factor = traj.t[1] / traj.s[1]
    assert factor > 1.0
    np.testing.assert_allclose(traj.s[traj.s < traj.s[-1]] * factor, traj.t[traj.s < traj.s[-1]], atol=1e-9)


def test_fastest_keeps_the_scaled_keyed_timing_where_the_program_fails(monkeypatch, caplog):
    def fail(self, start):
        raise PlanningError("simulated solver failure")

    monkeypatch.setattr(JerkLimitedTopp, "solve", fail)
    scene = load_scene(MOVES / "push_in.toml")
    fast = plan_scene(scene, 250, retime="fastest")
    assert fast.ok, [v.message for v in fast.report.violations]
    assert "keeps its keyed timing" in caplog.text
    # The keyed timing scaled uniformly: keyed instants advance at one constant rate while moving.
    traj = fast.trajectory
    moving = np.flatnonzero(np.any(np.abs(np.diff(traj.q, axis=0)) > 0, axis=1))
    steps = np.diff(traj.s)[moving[1:-1]]
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)
    assert fast.report.extra["retime"]["toppra_duration_s"] < traj.duration_s
