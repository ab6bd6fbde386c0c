"""The pictures show the set (issue 15 item 10): people's keep-out zones inside every view, named, the
floor and a scale in the side views, and an animation that draws them under the moving rig."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image

from motionctl import preview
from motionctl.planner import plan_scene
from motionctl.preview import pictures
from motionctl.spec import load_scene
from motionctl.preview.scene import AMBER, GREEN
from tests.conftest import LEGAL_MOVES, MOVES


@functools.cache
def _data(move):
    return preview.from_plan(plan_scene(load_scene(move), 250))


@pytest.fixture(scope="module")
def stunt_cross():
    return _data(MOVES / "stunt_cross.toml")


@pytest.mark.parametrize("move", LEGAL_MOVES, ids=lambda p: p.stem)
@pytest.mark.parametrize("view", sorted(pictures.VIEWS))
def test_every_view_frames_every_person_and_the_whole_move(move, view):
    """Framed on the rig alone, the views cut people off (product_shot's top view: the actor's circle;
    every side view: the actor and the stunt lane)."""
    data = _data(move)
    h, v = pictures.VIEWS[view]
    (x0, x1), (y0, y1), _ = pictures._limits(data, h, v)
    people = [s for s in data.solids if s.kind == "keepout"]
    assert {s.name for s in people} == {"actor_mark_a", "stunt_lane"}
    for points in [pictures._points(s)[:, [h, v]] for s in people] + [data.capsules[..., [h, v]].reshape(-1, 2)]:
        assert points[:, 0].min() >= x0 and points[:, 0].max() <= x1
        assert points[:, 1].min() >= y0 and points[:, 1].max() <= y1


def _near(pixels: np.ndarray, hex_colour: str, tolerance: int = 40) -> int:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).max(axis=-1) <= tolerance).sum())


def test_the_animation_draws_people_floor_and_scale_under_the_moving_rig(stunt_cross, tmp_path):
    path = pictures.animation(stunt_cross, tmp_path / "side.gif", view="side", max_frames=6)
    gif = Image.open(path)
    assert gif.n_frames == 6 and gif.info["duration"] >= 20
    frames = []
    for k in range(gif.n_frames):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("RGB")).astype(int))
    for pixels in frames:
        assert _near(pixels, "#d7bce3", 30) > 2000          # keep-out zones: violet at alpha 0.3 on white
        assert _near(pixels, "#5d4037", 30) > 300           # the floor line
        assert _near(pixels, "#000000", 30) > 100           # the scale bar (and its label)
        rig = _near(pixels, pictures.COLOURS[0], 40) + _near(pixels, pictures.COLOURS[1], 40)
        assert rig > 500                                     # the rig, green or amber
    assert not np.array_equal(frames[0], frames[-1])         # it moves
    first_rig = (np.abs(frames[0] - frames[-1]).max(axis=-1) > 60).sum()
    assert first_rig > 500


@pytest.mark.parametrize("move", LEGAL_MOVES, ids=lambda p: p.stem)
def test_the_tightest_moment_is_the_checks(move):
    """One definition (issue 15 item 10): check put stunt_cross's tightest moment at one frame and the
    preview, measuring only the frames it shows, at the next.  The preview now says the check's, in
    words that do not contradict themselves, and shows that frame."""
    plan = plan_scene(load_scene(move), 250)
    tight = plan.report.extra["tightest_at"]
    data = _data(move)
    assert data.frames[data.min_frame_index] == tight["frame"]
    assert f"frame {tight['frame']} ({tight['timecode']})" in data.min_text
    assert f"{tight['link']} to {tight['other']}" in data.min_text
    words = "inside its margin by" if tight["spare_m"] < 0 else "clear of its margin by"
    assert f"{words} {abs(tight['spare_m']) * 1000:.0f} mm" in data.min_text
    assert "beyond" not in data.min_text and "-" not in data.min_text.split("by")[-1]


def test_people_come_first_with_the_checks_closest_approach(stunt_cross):
    """issue 15 item 9: per person and per obstacle, the closest approach, when, and by which link, from
    the check (every servo tick); people first, the arm against itself last."""
    plan = plan_scene(load_scene(MOVES / "stunt_cross.toml"), 250)
    approaches = stunt_cross.approaches
    kinds = [a.kind for a in approaches]
    assert kinds == sorted(kinds, key=lambda k: {"keepout": 0, "obstacle": 1, "self": 2}[k])
    assert [a.other for a in approaches if a.kind == "keepout"] == ["stunt_lane", "actor_mark_a"]
    lane = approaches[0]
    pairs = [c for c in plan.report.extra["clearances"] if c["other"] == "stunt_lane"]
    closest = min(pairs, key=lambda c: c["min_m"] - c["required_m"])
    assert (lane.link, lane.frame, lane.min_m, lane.required_m) == (closest["link"], closest["frame"],
                                                                       closest["min_m"], closest["required_m"])
    assert sum(a.kind == "self" for a in approaches) == 1 and approaches[-1].kind == "self"
    assert "closest to people: stunt_lane: 505 mm from flange (needs 500), frame 105" in preview.describe(stunt_cross)


def test_the_arm_near_itself_is_not_drawn_amber():
    """issue 15 item 9: orbit is legal with 12 mm to spare between two wrist links and nothing near a
    person or the set; it was drawn amber the whole time.  Amber is for people and the set."""
    data = _data(MOVES / "orbit.toml")
    assert data.approaches[-1].kind == "self" and data.approaches[-1].spare_m < 0.05
    assert all(a.spare_m > 0.05 for a in data.approaches if a.kind != "self")
    assert np.all(data.colours == GREEN)
    lane = _data(MOVES / "stunt_cross.toml")                       # 5 mm from the stunt lane's margin
    assert np.any(lane.colours == AMBER)


def test_the_page_lists_every_person_and_the_closest_obstacles(stunt_cross, tmp_path):
    from motionctl.preview.html import page
    text = page(stunt_cross, plan_scene(load_scene(MOVES / "stunt_cross.toml"), 250).rig)
    table = text[text.index('<table class="approach">'):text.index("</table>")]
    assert table.index("stunt lane") < table.index("actor mark a") < table.index("plinth") < table.index("the arm")
    assert "505 mm" in table and 'data-frame="105"' in table and "flange" in table
