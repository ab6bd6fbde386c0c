"""The axes picture of a plan draws every servo tick: a spike between two shown frames keeps its height."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from motionctl import preview
from motionctl.planner import plan_scene
from motionctl.spec import load_scene
from tests.conftest import MOVES


@settings(max_examples=50, deadline=None, derandomize=True)
@given(ticks=st.integers(2, 400), shown=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_bands_hold_the_extremes_of_exactly_their_ticks(ticks, shown, seed):
    rng = np.random.default_rng(seed)
    qd, qdd = rng.normal(size=(ticks, 3)), rng.normal(size=(ticks, 3))
    starts = np.sort(rng.integers(0, ticks, size=shown))
    starts[0] = 0
    bands = preview.rate_bands(qd, qdd, starts)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else ticks
        span = slice(start, max(end, start + 1))       # a repeated start holds its own tick
        expected = [qd[span].min(0), qd[span].max(0), qdd[span].min(0), qdd[span].max(0)]
        np.testing.assert_array_equal(bands[i], np.stack(expected, axis=1))


def test_a_plans_bands_reach_its_peak_tick_rates_that_frame_differences_miss():
    plan = plan_scene(load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml"), 250)
    data = preview.from_plan(plan)
    traj = plan.trajectory
    first = int(round(data.frames[0] / data.fps * plan.rate_hz))
    peak_v = np.abs(traj.qd[first:]).max(axis=0)
    peak_a = np.abs(traj.qdd[first:]).max(axis=0)
    bands = data.rate_bands
    np.testing.assert_allclose(np.maximum(-bands[:, :, 0], bands[:, :, 1]).max(axis=0), peak_v)
    np.testing.assert_allclose(np.maximum(-bands[:, :, 2], bands[:, :, 3]).max(axis=0), peak_a)
    # what differencing the shown frames would draw stays below the ticks' peak acceleration
    t = np.asarray(data.frames, dtype=float) / data.fps
    by_frames = np.abs(np.gradient(np.gradient(data.joints, t, axis=0), t, axis=0)).max(axis=0)
    assert (by_frames < peak_a).any()
