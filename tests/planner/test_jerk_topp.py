"""The jerk-limited time-optimal program: its spline against scipy's, its optimum against ruckig's.

Along a one-axis path, time-optimal motion under velocity, acceleration and jerk limits is exactly what
ruckig computes in closed form for a rest-to-rest move, so ruckig is an independent reference: the program
must never beat it (that would break a limit) and must come within a fraction of a percent of it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruckig import InputParameter, Ruckig, Trajectory
from scipy.interpolate import BSpline

from motionctl.planner.jerk_topp import JerkLimitedTopp, SpeedSpline


def quintic_path(distance: float, keyed: float):
    """Derivatives of x(s) = distance * (10u^3 - 15u^4 + 6u^5), u = s / keyed: a rest-to-rest path, as the
    planner's segments are."""
    def path_derivatives(s):
        u = np.asarray(s, dtype=float) / keyed
        d1 = distance * (30 * u ** 2 - 60 * u ** 3 + 30 * u ** 4) / keyed
        d2 = distance * (60 * u - 180 * u ** 2 + 120 * u ** 3) / keyed ** 2
        d3 = distance * (60 - 360 * u + 360 * u ** 2) / keyed ** 3
        return d1[:, None], d2[:, None], d3[:, None]

    return path_derivatives


def ruckig_duration(distance: float, v: float, a: float, j: float) -> float:
    request = InputParameter(1)
    request.current_position, request.target_position = [0.0], [distance]
    request.max_velocity, request.max_acceleration, request.max_jerk = [v], [a], [j]
    result = Trajectory(1)
    Ruckig(1).calculate(request, result)
    return result.duration


def solve(distance, v, a, j, keyed=6.0, spans=150):
    path_derivatives = quintic_path(distance, keyed)
    program = JerkLimitedTopp(path_derivatives, np.array([v]), np.array([a]), np.array([j]), 0.0, keyed, spans,
                              virtual_speed=20.0, virtual_accel=400.0)
    return program, program.solve(start=lambda s: np.full(len(s), 400.0))


def test_speed_spline_matches_scipy_bspline():
    rng = np.random.default_rng(7)
    spline = SpeedSpline(1.5, 4.0, rng.uniform(0.0, 3.0, 23))
    h = spline.h
    knots = spline.s0 + h * np.arange(-3, spline.spans + 4)
    reference = BSpline(knots, spline.control, 3)
    s = np.concatenate([rng.uniform(spline.s0, spline.s1, 200), [spline.s0, spline.s1]])
    for order, matrix in enumerate(spline.design(s)):
        np.testing.assert_allclose(matrix @ spline.control, reference(s, nu=order), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("distance, v, a, j", [
    (1.0, 1.0, 2.0, 10.0),     # acceleration and jerk bound, no cruise
    (2.0, 0.8, 1.5, 5.0),      # cruises at the velocity limit
    (0.3, 0.5, 1.0, 20.0),     # short and jerk-bound
    (0.5, 1.2, 1.05, 4.2),     # a UR10e joint's ratios
])
def test_one_axis_path_reaches_ruckigs_time_optimum(distance, v, a, j):
    _, profile = solve(distance, v, a, j)
    _, duration = profile.time_law()
    optimum = ruckig_duration(distance, v, a, j)
    assert optimum * (1 - 1e-3) <= duration <= optimum * 1.005


@settings(max_examples=15, deadline=None, derandomize=True)
@given(distance=st.floats(0.05, 3.0), v=st.floats(0.2, 2.0), a=st.floats(0.5, 5.0), j=st.floats(2.0, 50.0))
def test_every_limit_holds_at_the_collocation_points_and_the_duration_is_ruckigs(distance, v, a, j):
    program, profile = solve(distance, v, a, j)
    # At the collocation points the real (non-linear) constraints hold: every iterate is feasible.
    b0, b1, b2 = profile.design(program.points)
    b, db, ddb = (m @ profile.control for m in (b0, b1, b2))
    d1, d2, d3 = (x[:, 0] for x in program.derivatives(program.points))
    speed = np.sqrt(np.maximum(b, 0.0))
    assert np.all(np.abs(d1) * speed <= v * (1 + 1e-6))
    assert np.all(np.abs(d1 * db / 2 + d2 * b) <= a * (1 + 1e-6))
    assert np.all(speed * np.abs(d1 * ddb / 2 + 1.5 * d2 * db + d3 * b) <= j * (1 + 1e-6))
    # Between collocation points a limit can be passed a little; retime samples every servo tick and adds
    # those instants (tests/planner/test_retime.py).  The duration is ruckig's optimum, never less.
    _, duration = profile.time_law()
    optimum = ruckig_duration(distance, v, a, j)
    assert optimum * (1 - 1e-3) <= duration <= optimum * 1.005
