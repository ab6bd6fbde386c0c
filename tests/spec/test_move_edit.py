"""Teaching a key into a move file: spliced in frame order, the rest of the text untouched, and it loads."""

from __future__ import annotations

import shutil

import pytest

from motionctl.errors import InputError
from motionctl.spec import load_scene
from motionctl.spec.move_edit import key_table, put_key
from tests.conftest import MOVES, ROOT


def _copy_move(tmp_path, name="crane_reveal.toml"):
    """The move, with its rig and stage beside it, as the relative paths expect."""
    shutil.copytree(ROOT / "rigs", tmp_path / "rigs")
    (tmp_path / "moves").mkdir()
    target = tmp_path / "moves" / name
    shutil.copy(MOVES / name, target)
    return target


def test_taught_key_goes_in_frame_order_and_the_file_still_loads(tmp_path):
    path = _copy_move(tmp_path)
    before = path.read_text()
    table = key_table(60, {"track": 1.5, "lift": 0.0}, {"focus": 4.0}, label="taught on set")
    after = put_key(before, table, 60)
    path.write_text(after)
    scene = load_scene(path)
    frames = [k.frame for k in scene.move.keys]
    assert frames == sorted(frames) and 60 in frames
    taught = next(k for k in scene.move.keys if k.frame == 60)
    assert taught.joints["track"] == pytest.approx(1.5) and taught.label == "taught on set"
    # everything else is byte for byte what it was
    assert after.replace(table + "\n", "") == before


def test_a_key_at_the_same_frame_is_replaced_and_one_after_the_end_appended(tmp_path):
    path = _copy_move(tmp_path)
    text = put_key(path.read_text(), key_table(120, {"track": 2.0}, {}), 120)
    text = put_key(text, key_table(400, {"track": 3.0}, {}), 400)
    path.write_text(text)
    keys = load_scene(path).move.keys
    assert [k.frame for k in keys] == [0, 120, 240, 400]
    assert keys[1].joints == {"track": 2.0}
    assert "# Joint-space crane reveal" in text          # comments survive


def test_unreadable_key_table_is_a_clear_error():
    with pytest.raises(InputError, match="line 2"):
        put_key('name = "x"\n[[key]]\nframe = "zero\n', key_table(1, {"a": 1.0}, {}), 1)
