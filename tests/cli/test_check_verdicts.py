"""End-to-end: a move that cannot be planned as written is a verdict, and every move given is checked.

A file problem is exit 2; a verdict comes with its report (and its JSON); a move that the planner cannot
build (a 175 degree turn in one run of keys) is a verdict, so the legal move after it is still checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MOVES, RIGS


def motionctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", *args], capture_output=True, text=True, timeout=300)


def write_turn(path: Path) -> Path:
    """The camera pans 175 degrees in one run of two keys: more than the 170 a run may turn."""
    path.write_text(f'''name = "turn-175"
rig = "{RIGS / 'ur10e_track.toml'}"
fps = 25
start = "01:00:00:00"
[[key]]
frame = 0
camera = {{ position = [0.0, -1.1, 1.45], pan = -87.5, tilt = 0.0 }}
[[key]]
frame = 200
camera = {{ position = [0.0, -1.1, 1.45], pan = 87.5, tilt = 0.0 }}
''', encoding="utf-8")
    return path


def test_json_gives_one_object_per_move_and_checks_the_move_after_the_turn(tmp_path):
    turn_file = write_turn(tmp_path / "turn.toml")
    result = motionctl("check", str(turn_file), str(MOVES / "push_in.toml"), "--json")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    turn, push_in = (json.loads(line) for line in result.stdout.splitlines())
    assert turn["move"] == "turn-175" and turn["ok"] is False
    [violation] = turn["violations"]
    assert violation["kind"] == "path" and violation["subject"] == "orientation"
    assert (violation["first_frame"], violation["last_frame"]) == (0, 200)
    assert (violation["first_timecode"], violation["last_timecode"]) == ("01:00:00:00", "01:00:08:00")
    assert "175.0 degrees" in violation["message"]
    assert push_in["move"] == "push-in" and push_in["ok"] is True


def test_text_gives_the_report_of_the_turn_and_the_verdict_of_the_move_after_it(tmp_path):
    result = motionctl("check", str(write_turn(tmp_path / "turn.toml")), str(MOVES / "push_in.toml"))
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    turn, push_in = result.stdout.split("\n\npush-in  (")
    assert turn.startswith("turn-175  (")
    assert "ILLEGAL: 1 violation(s)" in turn
    assert ("[path] orientation, frames 0-200 (01:00:00:00 - 01:00:08:00): the camera turns 175.0 degrees"
            in turn)
    assert "LEGAL: every servo tick is within the limits and clearances" in push_in


def test_a_bad_file_is_exit_2_and_the_moves_around_it_still_get_their_verdicts(tmp_path):
    result = motionctl("check", str(write_turn(tmp_path / "turn.toml")), str(tmp_path / "nope.toml"),
                       str(MOVES / "push_in.toml"), "--json")
    assert result.returncode == 2
    assert [json.loads(line)["ok"] for line in result.stdout.splitlines()] == [False, True]
    assert result.stderr.count("\n") == 1 and "nope.toml" in result.stderr


@pytest.mark.parametrize("command", [
    ("plan", "--out", "{out}"),
    ("plan", "--out", "{out}", "--json"),
    ("export", "--format", "csv", "--out", "{out}"),
    ("preview", "--out", "{out}"),
    ("run",),
], ids=["plan", "plan-json", "export", "preview", "run"])
def test_the_other_commands_report_a_move_without_a_path_and_write_nothing(tmp_path, command):
    out = tmp_path / "out"
    args = [a.format(out=out) for a in command]
    result = motionctl(args[0], str(write_turn(tmp_path / "turn.toml")), *args[1:])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if "--json" in args:
        assert json.loads(result.stdout)["violations"][0]["kind"] == "path"
    else:
        assert "[path] orientation, frames 0-200" in result.stdout
    assert not out.exists()


def test_the_json_of_an_unplannable_move_has_every_key_of_a_planned_one():
    """issue 15 item 14: a pipeline reads the same keys from every report, null where unknown."""
    planned = json.loads(motionctl("check", str(MOVES / "push_in.toml"), "--json").stdout.splitlines()[0])
    unplannable = json.loads(motionctl("check", str(MOVES / "illegal" / "out_of_reach.toml"),
                                       "--json").stdout.splitlines()[0])
    assert sorted(unplannable) == sorted(planned)
    assert unplannable["min_clearance_m"] is None and unplannable["axis_peaks"] is None
