"""Previews: the offline page, the pictures and the animation, for a move, an illegal move and a take."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from motionctl import preview
from motionctl.cli import main
from motionctl.planner import plan_scene
from motionctl.preview.scene import AMBER, GREEN, RED
from motionctl.spec import load_scene
from tests.conftest import MOVES, dry_run


@pytest.fixture(scope="module")
def illegal(tmp_path_factory):
    out = tmp_path_factory.mktemp("illegal")
    code = main(["preview", str(MOVES / "illegal" / "too_fast_through_obstacle.toml"), "--out", str(out)])
    return code, out


def _busy(path) -> Image.Image:
    image = Image.open(path).convert("RGB")
    pixels = np.asarray(image)
    assert pixels.std() > 20, f"{path.name} looks blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50, f"{path.name} has almost no content"
    return image


def test_every_output_is_written_and_has_content(illegal):
    code, out = illegal
    assert code == 1                                          # illegal: exit 1, outputs still written
    sheet = _busy(out / "contact_sheet.png")
    assert sheet.size[0] > 1000 and sheet.size[1] > 600
    _busy(out / "clearance.png")
    _busy(out / "axes.png")
    gif = Image.open(out / "move_side.gif")
    assert gif.n_frames > 5


def test_an_illegal_move_shows_where_it_collides(illegal):
    _, out = illegal
    pixels = np.asarray(Image.open(out / "contact_sheet.png").convert("RGB")).astype(int)
    red = (pixels[..., 0] > 170) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 500                                    # capsules inside their margin, drawn red
    page = (out / "preview.html").read_text()
    assert "ILLEGAL" in page and "flange" in page and "plinth" in page


def test_the_page_is_self_contained(illegal):
    _, out = illegal
    page = (out / "preview.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page                      # the browser itself refuses any fetch


def test_colours_follow_the_clearance_against_the_margin():
    plan = plan_scene(load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml"), 250)
    data = preview.from_plan(plan)
    assert np.all((data.colours == RED) == (data.slack_m < 0))
    # Clear of every margin by the band: green; amber only within the band of a person's or the set's
    # margin (the arm near itself is not amber: tests/preview/test_pictures.py).
    assert np.all(data.colours[data.slack_m >= 0.05] == GREEN)
    assert (data.colours == AMBER).any() or (data.colours == GREEN).any()
    # the tightest moment is where the check found it, exactly
    assert data.frames[data.min_frame_index] == plan.report.extra["tightest_at"]["frame"]


def test_legal_move_preview_is_legal_and_exits_0(tmp_path):
    assert main(["preview", str(MOVES / "product_shot.toml"), "--out", str(tmp_path), "--view", "top"]) == 0
    assert "LEGAL" in (tmp_path / "preview.html").read_text()
    _busy(tmp_path / "move_top.gif")


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["preview", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.toml" in err


def test_a_take_and_a_move_overlaid_with_its_take(tmp_path):
    """A real dry run over the serial simulator, then the preview of the take and of the move over it."""
    move = MOVES / "product_shot.toml"
    ran = dry_run(str(move), "--transport", "serial", "--takes", str(tmp_path / "takes"))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    take = Path(json.loads(ran.stdout)["take"])
    assert main(["preview", str(take), "--out", str(tmp_path / "take")]) == 0
    page = (tmp_path / "take" / "preview.html").read_text()
    assert "TAKE" in page and take.name in page
    _busy(tmp_path / "take" / "contact_sheet.png")
    assert main(["preview", str(move), "--take", str(take), "--out", str(tmp_path / "overlay")]) == 0
    overlay = (tmp_path / "overlay" / "preview.html").read_text()
    assert '"ghost":[[' in overlay                              # the plan drawn under the take
    # a take of another move is refused, not drawn under this move's title (issue 15 item 11)
    assert main(["preview", str(MOVES / "orbit.toml"), "--take", str(take), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x" / "preview.html").exists()
    # the take's own motion follows the plan closely (following error of the simulated drives)
    plan = plan_scene(load_scene(move), 250)
    data = preview.from_plan(plan)
    from motionctl.runtime.takes import read_take
    from motionctl.vcam.tracks import take_joints
    frames, q, _ = take_joints(read_take(take), plan.rig)
    index = np.searchsorted(frames, data.frames).clip(0, len(frames) - 1)
    assert np.max(np.abs(q[index] - data.joints)) < 0.05


@pytest.mark.parametrize("move", sorted(p.name for p in MOVES.glob("*.toml")))
def test_every_bundled_move_previews(move, tmp_path):
    assert main(["preview", str(MOVES / move), "--out", str(tmp_path)]) == 0
    for name in ("preview.html", "contact_sheet.png", "clearance.png", "axes.png", "move_side.gif"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_the_page_lists_every_violation_check_reports_collisions_first(illegal):
    """issue 15 item 8: the page kept the first 8 (all limits) and dropped the 5 collisions with the plinth.
    Now the count matches check's, and obstacles (and people) come before limits."""
    _, out = illegal
    report = plan_scene(load_scene(MOVES / "illegal" / "too_fast_through_obstacle.toml"), 250).report
    assert len(report.violations) > 8
    page = (out / "preview.html").read_text()
    items = re.findall(r'<li class="bad">(.*?)</li>', page)
    assert len(items) == len(report.violations)
    kinds = [v.kind.value for v in preview.violations_first_things_first(report.violations)]
    first_limit = min(i for i, k in enumerate(kinds) if k in ("velocity", "acceleration", "jerk"))
    assert "collision" in kinds[:first_limit]
    assert "plinth" in items[0]
