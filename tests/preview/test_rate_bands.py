"""The axes picture of a plan draws every servo tick: a spike between two shown frames keeps its height."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from motionctl import preview
from motionctl.planner import plan_scene
from motionctl.preview.pictures import runs_over
from motionctl.spec import load_scene
from tests.conftest import ROOT


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


def test_a_long_plans_bands_hold_every_tick_between_its_shown_frames():
    """60 s at 25 fps is more frames than a preview shows: the bands must still cover the skipped ones."""
    plan = plan_scene(load_scene(ROOT / "benchmarks" / "moves" / "sweep_60s.toml"), 250)
    data = preview.from_plan(plan)
    traj = plan.trajectory
    assert len(data.frames) < plan.report.frames                  # frames were skipped
    ticks = [round(f / data.fps * plan.rate_hz) for f in data.frames] + [len(traj)]
    for i in range(len(data.frames)):
        span = slice(ticks[i], max(ticks[i + 1], ticks[i] + 1))
        expected = [traj.qd[span].min(0), traj.qd[span].max(0), traj.qdd[span].min(0), traj.qdd[span].max(0)]
        np.testing.assert_array_equal(data.rate_bands[i], np.stack(expected, axis=1))


def test_a_spike_between_shown_frames_is_shaded_where_frame_differences_miss_it():
    rate, fps, limit = 250, 25, 1.0
    t = np.arange(0, 2.0, 1 / rate)
    qdd = np.zeros_like(t)
    qdd[[130, 131]] = 5 * limit, -5 * limit          # a 2-tick spike between frames 13 and 14
    qd = np.cumsum(qdd) / rate
    q = np.cumsum(qd) / rate
    shown = np.arange(0, 50, 1)                      # every frame shown
    ticks = shown * (rate // fps)
    bands = preview.rate_bands(qd[:, None], qdd[:, None], ticks)
    runs = runs_over(bands[:, 0, 2], bands[:, 0, 3], limit)
    assert runs == [(13, 14)]                        # exactly the frame holding the spike
    frame_t = shown / fps
    by_frames = np.gradient(np.gradient(q[ticks], frame_t), frame_t)
    assert np.abs(by_frames).max() < limit           # what differencing the frames would have drawn


def test_runs_over_finds_each_run_whole():
    hi = np.array([0.0, 2.0, 2.0, 0.0, 0.0, 3.0])
    lo = np.array([-3.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert runs_over(lo, hi, 1.0) == [(0, 3), (5, 6)]
    assert runs_over(lo * 0, hi * 0, 1.0) == []
