"""Go-to-start and controlled stop: jerk-limited, within limits on every tick, collision-checked."""

from __future__ import annotations

import numpy as np
import pytest

from motionctl.kinematics import IKTracker, Kinematics
from motionctl.planner import plan_scene
from motionctl.planner.limits import axis_limits, derivatives
from motionctl.rotations import homogeneous, ptr_to_matrix
from motionctl.planner.transitions import GOTO_SPEED_FRACTION, controlled_stop, go_to_start
from motionctl.spec import load_scene
from tests.conftest import MOVES


@pytest.fixture(scope="module")
def orbit():
    return plan_scene(load_scene(MOVES / "orbit.toml"), 500)


def _within(values, rate, limits, fraction=1.0, skip=0):
    v, a, j = (d[skip:] for d in derivatives(values, rate))
    for i, lim in enumerate(limits):
        assert np.abs(v[:, i]).max() <= lim.vmax * fraction * (1 + 1e-6), lim.name
        assert np.abs(a[:, i]).max() <= lim.amax * fraction * (1 + 1e-6), lim.name
        assert np.abs(j[:, i]).max() <= lim.jmax * fraction * (1 + 1e-6), lim.name


def test_go_to_start_from_park_is_reduced_speed_and_lands_on_the_first_sample(orbit):
    move = go_to_start(orbit, np.array(orbit.rig.park))
    assert move.clear and not move.via_park
    np.testing.assert_allclose(move.values[-1, : len(orbit.rig.axes)], orbit.trajectory.q[0], atol=1e-9)
    np.testing.assert_allclose(move.values[0, : len(orbit.rig.axes)], orbit.rig.park, atol=1e-9)
    _within(move.values, orbit.rate_hz, axis_limits(orbit.rig), GOTO_SPEED_FRACTION * 1.01)


def test_go_to_start_goes_via_park_when_the_direct_path_collides(tmp_path):
    """From a camera high on the near side of the plinth to a move starting low beside it: the straight
    joint-space move sweeps the camera through the plinth, the detour over the park pose does not."""
    rigs = MOVES.parent / "rigs"
    path = tmp_path / "beside_plinth.toml"
    path.write_text(f"""name = "beside-plinth"
rig = "{rigs / 'ur10e_track.toml'}"
stage = "{rigs / 'stages' / 'led_volume.toml'}"
fps = "25"
[[key]]
frame = 0
camera = {{ position = [1.0386, -0.8491, 0.7355], pan = -68.67, tilt = 2.93 }}
hold = 25
""")
    target = plan_scene(load_scene(path), 250)
    assert target.ok
    rig = target.rig
    kin = Kinematics(rig)
    here = IKTracker(kin).solve(homogeneous(ptr_to_matrix(*np.radians([19.72, -35.29, 0.0])),
                                            [0.4713, -0.7579, 1.1609]), np.array(rig.park)).q
    move = go_to_start(target, here)
    assert move.via_park
    assert move.clear
    assert any("via the park pose" in note for note in move.notes)
    reached = kin.camera(move.values[-1, : len(rig.axes)])
    np.testing.assert_allclose(reached, target.trajectory.camera[0], atol=1e-9)
    _within(move.values, target.rate_hz, axis_limits(rig), GOTO_SPEED_FRACTION * 1.01)


@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.5, 0.8])
def test_controlled_stop_from_any_sample(orbit, fraction):
    traj = orbit.trajectory
    tick = int(fraction * (len(traj) - 1))
    stop = controlled_stop(orbit, tick)
    assert stop.clear
    lead = traj.q[max(0, tick - 3): tick]
    joints = np.concatenate([lead, stop.values[:, : traj.q.shape[1]]])
    lens = np.concatenate([traj.lens[max(0, tick - 3): tick], stop.values[:, traj.q.shape[1]:]])
    _within(np.concatenate([joints, lens], axis=1), orbit.rate_hz, axis_limits(orbit.rig), skip=3)
    # It ends at rest...
    v, a, _ = derivatives(stop.values, orbit.rate_hz)
    assert np.abs(v[-1]).max() < 1e-6
    # ...on the planned path (every stop sample is a pose of the path).
    path_q = orbit.joint_path(np.linspace(traj.s[tick], orbit.joint_path.duration, 4000))
    for row in stop.values[:: max(1, len(stop.values) // 20), : traj.q.shape[1]]:
        assert np.min(np.linalg.norm(path_q - row, axis=1)) < 2e-3
