"""End-to-end: ``motionctl check`` as a pipeline or an operator runs it (a real subprocess)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import ILLEGAL_MOVES, LEGAL_MOVES, MOVES


def motionctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "motionctl", *args], capture_output=True, text=True, timeout=300)


def test_there_are_at_least_four_legal_moves_and_two_illegal_ones():
    assert len(LEGAL_MOVES) >= 4
    assert {p.name for p in ILLEGAL_MOVES} >= {"out_of_reach.toml", "too_fast_through_obstacle.toml"}


@pytest.mark.parametrize("move", LEGAL_MOVES, ids=lambda p: p.stem)
def test_every_legal_move_checks_clean(move):
    result = motionctl("check", str(move))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LEGAL" in result.stdout


def test_out_of_reach_move_is_rejected_naming_both_keys():
    result = motionctl("check", str(MOVES / "illegal" / "out_of_reach.toml"), "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False
    kinds = {(v["kind"], v["subject"], v["first_frame"]) for v in report["violations"]}
    assert ("unreachable", "key 1", 48) in kinds
    assert ("position", "elbow", 96) in kinds
    elbow = next(v for v in report["violations"] if v["subject"] == "elbow")
    assert elbow["peak"] == pytest.approx(math.radians(200.0))
    assert elbow["limit"] == pytest.approx(math.pi)
    assert elbow["first_timecode"] == "01:00:04:00"


def test_json_report_carries_the_axis_table_in_si_units():
    result = motionctl("check", str(MOVES / "push_in.toml"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    axes = {a["name"]: a for a in report["axes"]}
    assert set(axes) >= {"track", "shoulder_pan", "elbow", "wrist_3", "lens.focus", "lens.iris", "lens.zoom"}
    assert axes["track"] == pytest.approx({**axes["track"], "min": 0.0, "max": 6.0, "vmax": 1.5, "amax": 2.0,
                                           "jmax": 10.0})
    assert axes["track"]["unit"] == "m"
    assert axes["elbow"]["unit"] == "rad"
    assert axes["elbow"]["max"] == pytest.approx(math.pi)
    assert axes["shoulder_pan"]["vmax"] == pytest.approx(math.radians(120.0))
    for key in ("name", "unit", "min", "max", "vmax", "amax", "jmax"):
        assert all(key in a for a in report["axes"])
    assert report["fps"] == "23.976"
    assert report["start"] == "01:00:00:00"
    assert [k["frame"] for k in report["keys"]] == [0, 72, 144]


def test_several_moves_exit_with_the_worst_verdict():
    result = motionctl("check", str(MOVES / "push_in.toml"), str(MOVES / "illegal" / "out_of_reach.toml"))
    assert result.returncode == 1
    assert "push-in" in result.stdout and "out-of-reach" in result.stdout


def test_missing_file_is_one_line_and_exit_2(tmp_path):
    result = motionctl("check", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope.toml" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_is_exit_2():
    result = motionctl("check")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_help_and_messages_papercuts(tmp_path):
    """issue 15 item 6: no '==SUPPRESS==' in --help; sim, takes and hw say what they do; import --help
    gives the default mode; a misspelt required key is named as the likely cause."""
    top = motionctl("--help")
    assert "SUPPRESS" not in top.stdout and "tc-gen" not in top.stdout
    for command in ("sim", "takes", "hw"):
        helped = motionctl(command, "--help")
        assert helped.returncode == 0 and len(helped.stdout.split("\n\n")) >= 3, helped.stdout   # a description
    assert "default: fit" in motionctl("import", "--help").stdout
    text = (MOVES / "push_in.toml").read_text()
    assert "\nframe = " in text
    bad = tmp_path / "typo.toml"
    bad.write_text(text.replace("\nframe = ", "\nfrme = ", 1).replace('"../', '"' + str(MOVES.parent) + "/"))
    result = motionctl("check", str(bad))
    assert result.returncode == 2
    assert 'missing required key "frame" (is "frme" a misspelling of it?)' in result.stderr, result.stderr
