"""Retiming keeps the path and honours every limit; fastest is compared with plain TOPP-RA."""

from __future__ import annotations

import numpy as np
import pytest

from motionctl.planner import ViolationKind, plan_scene
from motionctl.planner.limits import axis_limits, derivatives
from motionctl.spec import load_scene
from tests.conftest import MOVES


@pytest.mark.parametrize("name", ["push_in", "crane_reveal", "product_shot"])
def test_fastest_is_legal_no_slower_than_keyed_and_never_faster_than_toppra(name):
    scene = load_scene(MOVES / f"{name}.toml")
    keyed = plan_scene(scene, 250)
    fast = plan_scene(scene, 250, retime="fastest")
    assert fast.ok, [v.message for v in fast.report.violations]
    info = fast.report.extra["retime"]
    assert info["toppra_duration_s"] <= fast.trajectory.duration_s + 1e-6
    assert fast.trajectory.duration_s <= keyed.trajectory.duration_s
    # Same path: every retimed sample is the keyed path at some instant.
    np.testing.assert_allclose(fast.trajectory.q, fast.joint_path(fast.trajectory.s), atol=0)
    values = np.concatenate([fast.trajectory.q, fast.trajectory.lens], axis=1)
    v, a, j = derivatives(values, 250)
    for i, lim in enumerate(axis_limits(scene.rig)):
        assert np.abs(j[:, i]).max() <= lim.jmax * (1 + 1e-9)


def test_stretch_keeps_holds_and_scales_uniformly():
    scene = load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml")
    stretched = plan_scene(scene, 500, retime="stretch")
    kinds = {v.kind for v in stretched.report.violations}
    assert ViolationKind.VELOCITY not in kinds and ViolationKind.JERK not in kinds
    traj = stretched.trajectory
    factor = traj.t[1] / traj.s[1]
    assert factor > 1.0
    np.testing.assert_allclose(traj.s[traj.s < traj.s[-1]] * factor, traj.t[traj.s < traj.s[-1]], atol=1e-9)
