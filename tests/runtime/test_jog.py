"""Jogging: jerk-limited, reduced speed, dead-man lease, soft limits and clearance guard; over a real pty."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.planner.limits import axis_limits
from motionctl.runtime.jog import (
    FIRST_HOLD_S,
    JOG_ACCEL_FRACTION,
    JOG_SPEED_FRACTION,
    CameraJog,
    Jogger,
    JogRequest,
)
from motionctl.runtime.states import RunState, StreamerOptions

CALM = StreamerOptions(stale_feedback_s=0.5, stall_cycles=50, late_budget=0.5)
RATE = 250
NS = 1_000_000_000


def _run(jogger: Jogger, request: JogRequest | None, seconds: float, t0: int = 0, repeat_s: float = 0.04):
    """Step the jogger for ``seconds``, pressing ``request`` every ``repeat_s`` (a held key)."""
    out, next_press = [], t0
    for k in range(int(seconds * RATE)):
        now = t0 + k * NS // RATE
        if request is not None and now >= next_press:
            jogger.press(request, now)
            next_press = now + int(repeat_s * NS)
        out.append(jogger.step(now, inline_guard=True).copy())
    return np.array(out), t0 + int(seconds * NS)


def _derivatives(q: np.ndarray):
    v = np.diff(q, axis=0) * RATE
    a = np.diff(v, axis=0) * RATE
    j = np.diff(a, axis=0) * RATE
    return v, a, j


def test_axis_jog_stays_within_reduced_limits_and_stops_when_released(product_plan):
    rig = product_plan.rig
    start = np.concatenate([product_plan.trajectory.q[0], product_plan.trajectory.lens[0]])
    jogger = Jogger(rig, product_plan.stage, RATE, start)
    track = rig.axis_names.index("track")
    held, t = _run(jogger, JogRequest(+1, axis=track), 2.0)
    released, _ = _run(jogger, None, 2.0, t)
    q = np.vstack([start, held, released])
    v, a, j = _derivatives(q)
    limits = axis_limits(rig)
    for i, lim in enumerate(limits):
        assert np.max(np.abs(v[:, i])) <= lim.vmax * JOG_SPEED_FRACTION * (1 + 1e-6)
        assert np.max(np.abs(a[:, i])) <= lim.amax * JOG_ACCEL_FRACTION * (1 + 1e-3)
        assert np.max(np.abs(j[:, i])) <= lim.jmax * JOG_ACCEL_FRACTION * (1 + 1e-2)
    others = [i for i in range(len(start)) if i != track]
    assert np.allclose(q[:, others], start[others])        # only the jogged axis moved
    assert q[-1, track] > start[track] + 0.1               # it moved while held ...
    assert jogger.at_rest and np.all(np.abs(v[-50:, track]) < 1e-12)   # ... and stopped once released


def test_a_tap_is_a_short_nudge_and_a_lapsed_lease_brakes(product_plan):
    start = np.concatenate([product_plan.trajectory.q[0], product_plan.trajectory.lens[0]])
    jogger = Jogger(product_plan.rig, product_plan.stage, RATE, start)
    jogger.press(JogRequest(-1, axis=0), 0)
    q, _ = _run(jogger, None, 3.0)
    moving = np.flatnonzero(np.abs(np.diff(q[:, 0])) > 0)
    assert moving.size and moving[-1] / RATE < FIRST_HOLD_S + 1.0    # held the lease, then braked
    assert jogger.at_rest


def test_soft_limit_holds_a_jog_back(product_plan):
    rig = product_plan.rig
    limits = axis_limits(rig)
    start = np.concatenate([product_plan.trajectory.q[0], product_plan.trajectory.lens[0]])
    lens0 = len(rig.axes)                  # first lens axis: jog it towards its upper end for a long time
    jogger = Jogger(rig, product_plan.stage, RATE, start)
    q, _ = _run(jogger, JogRequest(+1, axis=lens0), 60.0)
    top = limits[lens0].upper - limits[lens0].margin
    assert q[:, lens0].max() <= top + 1e-9
    assert "soft limit" in jogger.blocked


def test_camera_pedestal_jog_moves_the_camera_up_without_turning_it(product_plan):
    from motionctl.kinematics import Kinematics

    rig = product_plan.rig
    kin = Kinematics(rig)
    start = np.concatenate([product_plan.trajectory.q[0], product_plan.trajectory.lens[0]])
    jogger = Jogger(rig, product_plan.stage, RATE, start)
    q, t = _run(jogger, JogRequest(+1, camera=CameraJog.PEDESTAL), 1.5)
    _run(jogger, None, 2.0, t)
    n = len(rig.axes)
    before, after = kin.camera(start[:n]), kin.camera(jogger.position[:n])
    rise = after[:3, 3] - before[:3, 3]
    assert rise[2] > 0.02
    assert np.hypot(rise[0], rise[1]) < 0.1 * rise[2]
    turn = np.degrees(np.arccos(np.clip((np.trace(before[:3, :3].T @ after[:3, :3]) - 1) / 2, -1, 1)))
    assert turn < 1.0


def test_clearance_guard_stops_short_of_the_floor(product_plan):
    """Pedestal down from the product shot's start until the guard refuses: never inside any margin."""
    from motionctl.collision import ClearanceChecker
    from motionctl.kinematics import Kinematics

    rig, stage = product_plan.rig, product_plan.stage
    start = np.concatenate([product_plan.trajectory.q[0], product_plan.trajectory.lens[0]])
    jogger = Jogger(rig, stage, RATE, start)
    q, _ = _run(jogger, JogRequest(-1, camera=CameraJog.PEDESTAL), 40.0)
    assert "would come within" in jogger.blocked or "soft limit" in jogger.blocked
    kin = Kinematics(rig)
    result = ClearanceChecker(rig, stage, kin.capsules).check(*kin.capsules_world(kin.link_frames(q[:, :len(rig.axes)])))
    assert not result.runs, result.runs
    # ... and once held back, a jog the other way is allowed again
    _run(jogger, JogRequest(+1, camera=CameraJog.PEDESTAL), 1.0, 10**12)
    assert jogger.blocked == ""


def test_jog_request_needs_one_target():
    with pytest.raises(ValueError):
        JogRequest(+1)
    with pytest.raises(ValueError):
        JogRequest(0, axis=1)


@pytest.fixture
def streaming(product_plan, sim_rig):
    """A streamer running the product shot on the serial simulator in simulated time, drives enabled, at rest."""
    return sim_rig().streamer(product_plan, options=CALM)


def test_streamer_jogs_then_returns_to_idle_and_must_go_to_start_again(product_plan, streaming):
    streamer = streaming
    before = streamer._measured_arm().copy()
    track = product_plan.rig.axis_names.index("track")
    for _ in range(30):                           # a held key: repeats every 40 ms (of simulated time)
        streamer.jog(JogRequest(+1, axis=track))
        streamer.clock.sleep(0.04)
    assert streamer.state is RunState.JOGGING
    assert streamer.wait_for({RunState.IDLE}, 10) is RunState.IDLE
    streamer.clock.sleep(0.3)
    after = streamer._measured_arm()
    assert after[track] > before[track] + 0.05
    assert np.allclose(np.delete(after, track), np.delete(before, track), atol=1e-3)
    streamer.arm()                                # moved off the start: arming is refused
    streamer.clock.sleep(0.1)
    assert streamer.state is RunState.IDLE


def test_estop_while_jogging(streaming):
    streamer = streaming
    streamer.jog(JogRequest(+1, axis=0))
    assert streamer.wait_for({RunState.JOGGING}, 2) is RunState.JOGGING
    streamer.estop()
    assert streamer.wait_for({RunState.ESTOPPED}, 2) is RunState.ESTOPPED
    streamer.jog(JogRequest(+1, axis=0))
    streamer.clock.sleep(0.1)
    assert streamer.state is RunState.ESTOPPED
    assert any("jog is not possible" in r for r in streamer.refusals)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from([*CameraJog, "track", "shoulder_lift", "elbow", "wrist_1"]),
                          st.sampled_from([-1, 1]), st.floats(0.2, 1.5)), min_size=2, max_size=5))
def test_random_jogs_never_breach_a_clearance_or_soft_limit(product_plan, jogs):
    """Property: whatever is held, for however long, every tick stays legal (exact clearance, soft limits)."""
    from motionctl.collision import ClearanceChecker
    from motionctl.kinematics import Kinematics

    rig, stage = product_plan.rig, product_plan.stage
    start = np.concatenate([np.array(rig.park), product_plan.trajectory.lens[0]])
    jogger = Jogger(rig, stage, RATE, start)
    path, t = [start], 0
    for target, direction, seconds in jogs:
        request = (JogRequest(direction, camera=target) if isinstance(target, CameraJog)
                   else JogRequest(direction, axis=rig.axis_names.index(target)))
        q, t = _run(jogger, request, seconds, t)
        path.append(q)
    q, _ = _run(jogger, None, 2.0, t)
    path.append(q)
    q = np.vstack(path)
    n = len(rig.axes)
    limits = axis_limits(rig)
    lo = np.array([l.lower + l.margin for l in limits])
    hi = np.array([l.upper - l.margin for l in limits])
    assert np.all(q >= lo - 1e-9) and np.all(q <= hi + 1e-9)
    kin = Kinematics(rig)
    result = ClearanceChecker(rig, stage, kin.capsules).check(*kin.capsules_world(kin.link_frames(q[:, :n])))
    assert not result.runs, [(result.pairs[r.pair].link, result.pairs[r.pair].other) for r in result.runs]
    assert jogger.at_rest
