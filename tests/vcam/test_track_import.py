"""Import of camera tracks into moves: round trips of the shipped moves (export, then import in either
mode) keep the rig's motion, not only the camera's path; a fit adds no wiggle."""

from __future__ import annotations

import shutil
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motionctl.planner import plan_scene
from motionctl.spec import load_scene
from motionctl.vcam.track_import import _Fit, import_track
from motionctl.vcam.tracks import CameraTrack, read_track, track_from_plan, write_track
from tests.conftest import LEGAL_MOVES, RIGS

RATE_HZ = 250


@pytest.fixture(scope="module")
def planned():
    """Each shipped move planned once for the module: name -> plan."""
    cache = {}

    def get(path):
        if path.stem not in cache:
            cache[path.stem] = plan_scene(load_scene(path), RATE_HZ)
            assert cache[path.stem].ok
        return cache[path.stem]
    return get


def _peaks(plan) -> dict[str, np.ndarray]:
    return {p["name"]: np.array([p["v_pct"], p["a_pct"], p["j_pct"]]) for p in plan.report.extra["axis_peaks"]}


@pytest.mark.parametrize("mode", ["keys", "fit"])
@pytest.mark.parametrize("move", LEGAL_MOVES, ids=lambda p: p.stem)
def test_a_round_trip_of_a_shipped_move_keeps_the_rigs_motion(move, mode, planned, tmp_path):
    """export -> CSV -> import: the same rig motion (every axis's peak speed, acceleration and jerk within
    a percentage point of its limit of the source's; the shortest legal duration within 1 %), legal."""
    source = planned(move)
    shutil.copytree(RIGS, tmp_path / "rigs")
    (tmp_path / "moves").mkdir()
    write_track(track_from_plan(source), tmp_path / "track.csv")
    track = read_track(tmp_path / "track.csv")
    assert set(track.follow) == set(source.rig.follow)                 # the track under the arm travels along
    doc = tomllib.loads(move.read_text())              # the copies at the same places relative to the move
    out = tmp_path / "moves" / "imported.toml"
    result = import_track(track, out.parent / doc["rig"], out.parent / doc["stage"], mode=mode, out_path=out)
    out.write_text(result.text)
    back = plan_scene(load_scene(out), RATE_HZ)
    assert back.ok, [v.message for v in back.report.violations]
    before, after = _peaks(source), _peaks(back)
    for axis, peaks in before.items():
        assert np.all(after[axis] <= peaks + 1.0), (axis, peaks, after[axis])
    shortest = source.report.extra["shortest_legal_duration_s"]
    assert back.report.extra["shortest_legal_duration_s"] == pytest.approx(shortest, rel=0.01)


@st.composite
def smooth_tracks(draw):
    """A CG camera of a few slow sines (position and pan/tilt), 2-6 s at 25 fps, moving at both ends."""
    n = draw(st.integers(50, 150))
    t = np.arange(n) / 25.0
    amp = st.floats(0.05, 1.5)
    freq = st.floats(0.05, 0.8)
    position = np.column_stack([draw(amp) * np.sin(2 * np.pi * draw(freq) * t + draw(st.floats(0, 3)))
                                for _ in range(3)]) + [0.0, -0.8, 1.3]
    pan = draw(st.floats(5, 60)) * np.sin(2 * np.pi * draw(freq) * t)
    tilt = draw(st.floats(1, 20)) * np.sin(2 * np.pi * draw(freq) * t + 1.0)
    return CameraTrack("25", "01:00:00:00", np.arange(n), position, np.column_stack([pan, tilt, 0 * t]))


@settings(derandomize=True, database=None, max_examples=25, deadline=None)
@given(track=smooth_tracks())
def test_a_fit_is_never_faster_than_its_source(track):
    """Bounded derivatives, not only position: at every frame the fitted camera's speed and turn rate
    exceed the source's (the channels through every frame, over the frame and its neighbours) by less than
    the tolerance per frame, and the fit keeps fewer keys than frames."""
    fit = _Fit(track, [], 0.0005, 0.05, None)
    kept, (position, angle, _) = fit.select("fit")
    _, _, _, speed_excess, turn_excess = fit._errors(kept)
    assert position.max() <= fit.tolerances[0] and angle.max() <= fit.tolerances[1]
    assert speed_excess.max() <= 0.0005 * 25 and turn_excess.max() <= 0.05 * 25
    assert kept.sum() < len(track)
